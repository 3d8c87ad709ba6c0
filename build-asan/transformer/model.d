build-asan/transformer/model.o: transformer/model.c \
 transformer/transformer.h common/checkpoint.h common/nn.h common/rng.h \
 common/tensor.h common/util.h common/cli.h common/data.h common/nn.h \
 common/rng.h common/tensor.h common/util.h
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
