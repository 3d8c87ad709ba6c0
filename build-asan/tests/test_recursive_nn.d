build-asan/tests/test_recursive_nn.o: tests/test_recursive_nn.c \
 tests/gradcheck.h common/rng.h common/tensor.h common/rng.h \
 tests/../recursive_nn/recursive_nn.h common/checkpoint.h common/nn.h \
 common/tensor.h common/util.h common/cli.h common/data.h common/nn.h \
 common/plot.h common/util.h common/sentiment.h tests/test_suites.h \
 build-asan/tests/suites.inc
tests/gradcheck.h:
common/rng.h:
common/tensor.h:
common/rng.h:
tests/../recursive_nn/recursive_nn.h:
common/checkpoint.h:
common/nn.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/nn.h:
common/plot.h:
common/util.h:
common/sentiment.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
