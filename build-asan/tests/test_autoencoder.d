build-asan/tests/test_autoencoder.o: tests/test_autoencoder.c \
 tests/../autoencoder/autoencoder.h common/checkpoint.h common/nn.h \
 common/rng.h common/tensor.h common/util.h common/cli.h common/nn.h \
 common/plot.h common/rng.h common/tensor.h common/util.h \
 tests/gradcheck.h common/pca.h tests/test_suites.h \
 build-asan/tests/suites.inc
tests/../autoencoder/autoencoder.h:
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/nn.h:
common/plot.h:
common/rng.h:
common/tensor.h:
common/util.h:
tests/gradcheck.h:
common/pca.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
