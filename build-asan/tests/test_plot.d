build-asan/tests/test_plot.o: tests/test_plot.c common/plot.h \
 common/util.h tests/test_suites.h build-asan/tests/suites.inc
common/plot.h:
common/util.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
