build-asan/common/sentiment.o: common/sentiment.c common/sentiment.h \
 common/rng.h common/util.h
common/sentiment.h:
common/rng.h:
common/util.h:
