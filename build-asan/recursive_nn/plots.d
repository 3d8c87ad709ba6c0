build-asan/recursive_nn/plots.o: recursive_nn/plots.c common/pca.h \
 common/rng.h recursive_nn/recursive_nn.h common/checkpoint.h common/nn.h \
 common/tensor.h common/util.h common/cli.h common/data.h common/nn.h \
 common/plot.h common/tensor.h common/util.h common/sentiment.h
common/pca.h:
common/rng.h:
recursive_nn/recursive_nn.h:
common/checkpoint.h:
common/nn.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/nn.h:
common/plot.h:
common/tensor.h:
common/util.h:
common/sentiment.h:
