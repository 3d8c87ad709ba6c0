build-asan/tests/run_tests.o: tests/run_tests.c \
 build-asan/tests/suites.inc
build-asan/tests/suites.inc:
