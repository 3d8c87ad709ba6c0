build-asan/tests/test_transformer.o: tests/test_transformer.c \
 common/checkpoint.h common/nn.h common/rng.h common/tensor.h \
 common/util.h tests/gradcheck.h common/rng.h common/tensor.h \
 common/matmul.h tests/test_suites.h build-asan/tests/suites.inc \
 tests/../transformer/transformer.h common/cli.h common/data.h \
 common/nn.h common/util.h
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
tests/gradcheck.h:
common/rng.h:
common/tensor.h:
common/matmul.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
tests/../transformer/transformer.h:
common/cli.h:
common/data.h:
common/nn.h:
common/util.h:
