build-asan/tests/test_pca.o: tests/test_pca.c common/pca.h common/rng.h \
 common/rng.h tests/test_suites.h build-asan/tests/suites.inc
common/pca.h:
common/rng.h:
common/rng.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
