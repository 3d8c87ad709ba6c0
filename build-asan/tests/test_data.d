build-asan/tests/test_data.o: tests/test_data.c common/data.h \
 common/rng.h common/util.h tests/test_suites.h \
 build-asan/tests/suites.inc
common/data.h:
common/rng.h:
common/util.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
