build-asan/common/nn.o: common/nn.c common/nn.h common/rng.h \
 common/tensor.h common/util.h
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
