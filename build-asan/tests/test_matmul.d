build-asan/tests/test_matmul.o: tests/test_matmul.c common/matmul.h \
 common/rng.h tests/test_suites.h build-asan/tests/suites.inc
common/matmul.h:
common/rng.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
