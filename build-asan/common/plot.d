build-asan/common/plot.o: common/plot.c common/plot.h common/util.h
common/plot.h:
common/util.h:
