build-asan/autoencoder/glyphs.o: autoencoder/glyphs.c \
 autoencoder/autoencoder.h common/checkpoint.h common/nn.h common/rng.h \
 common/tensor.h common/util.h common/cli.h common/nn.h common/plot.h \
 common/rng.h common/tensor.h common/util.h
autoencoder/autoencoder.h:
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
