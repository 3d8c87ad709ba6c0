build-asan/tests/test_helpers.o: tests/test_helpers.c tests/test_suites.h \
 build-asan/tests/suites.inc
tests/test_suites.h:
build-asan/tests/suites.inc:
