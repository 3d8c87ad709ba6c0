build-asan/recursive_nn/tree.o: recursive_nn/tree.c common/data.h \
 common/rng.h common/util.h recursive_nn/recursive_nn.h \
 common/checkpoint.h common/nn.h common/tensor.h common/cli.h common/nn.h \
 common/plot.h common/tensor.h common/util.h
common/data.h:
common/rng.h:
common/util.h:
recursive_nn/recursive_nn.h:
common/checkpoint.h:
common/nn.h:
common/tensor.h:
common/cli.h:
common/nn.h:
common/plot.h:
common/tensor.h:
common/util.h:
