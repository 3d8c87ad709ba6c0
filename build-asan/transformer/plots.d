build-asan/transformer/plots.o: transformer/plots.c common/pca.h \
 common/rng.h common/plot.h common/util.h transformer/transformer.h \
 common/checkpoint.h common/nn.h common/tensor.h common/cli.h \
 common/data.h common/nn.h common/rng.h common/tensor.h common/util.h
common/pca.h:
common/rng.h:
common/plot.h:
common/util.h:
transformer/transformer.h:
common/checkpoint.h:
common/nn.h:
common/tensor.h:
common/cli.h:
common/data.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
