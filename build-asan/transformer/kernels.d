build-asan/transformer/kernels.o: transformer/kernels.c \
 transformer/fastmath.h common/matmul.h transformer/transformer.h \
 common/checkpoint.h common/nn.h common/rng.h common/tensor.h \
 common/util.h common/cli.h common/data.h common/nn.h common/rng.h \
 common/tensor.h common/util.h
transformer/fastmath.h:
common/matmul.h:
transformer/transformer.h:
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
