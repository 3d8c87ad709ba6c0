build-asan/transformer/parity.o: transformer/parity.c common/cli.h \
 common/util.h common/matmul.h transformer/transformer.h \
 common/checkpoint.h common/nn.h common/rng.h common/tensor.h \
 common/data.h common/nn.h common/rng.h common/tensor.h common/util.h
common/cli.h:
common/util.h:
common/matmul.h:
transformer/transformer.h:
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/data.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
