build-asan/common/tensor.o: common/tensor.c common/tensor.h common/rng.h \
 common/matmul.h common/util.h
common/tensor.h:
common/rng.h:
common/matmul.h:
common/util.h:
