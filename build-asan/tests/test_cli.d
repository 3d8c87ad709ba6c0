build-asan/tests/test_cli.o: tests/test_cli.c common/cli.h common/util.h \
 tests/test_suites.h build-asan/tests/suites.inc
common/cli.h:
common/util.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
