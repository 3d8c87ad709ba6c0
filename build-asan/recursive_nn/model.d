build-asan/recursive_nn/model.o: recursive_nn/model.c common/matmul.h \
 recursive_nn/recursive_nn.h common/checkpoint.h common/nn.h common/rng.h \
 common/tensor.h common/util.h common/cli.h common/data.h common/nn.h \
 common/plot.h common/tensor.h common/util.h
common/matmul.h:
recursive_nn/recursive_nn.h:
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/nn.h:
common/plot.h:
common/tensor.h:
common/util.h:
