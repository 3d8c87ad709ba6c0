build-asan/common/examples/spiral.o: common/examples/spiral.c \
 common/checkpoint.h common/nn.h common/rng.h common/tensor.h \
 common/util.h common/cli.h common/data.h common/matmul.h common/nn.h \
 common/plot.h common/tensor.h common/util.h
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/matmul.h:
common/nn.h:
common/plot.h:
common/tensor.h:
common/util.h:
