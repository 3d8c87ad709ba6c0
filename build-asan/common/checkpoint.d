build-asan/common/checkpoint.o: common/checkpoint.c common/checkpoint.h \
 common/nn.h common/rng.h common/tensor.h common/util.h common/json.h
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/json.h:
