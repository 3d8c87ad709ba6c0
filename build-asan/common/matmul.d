build-asan/common/matmul.o: common/matmul.c common/matmul.h common/util.h
common/matmul.h:
common/util.h:
