build-asan/tests/test_rng.o: tests/test_rng.c common/rng.h \
 tests/test_suites.h build-asan/tests/suites.inc
common/rng.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
