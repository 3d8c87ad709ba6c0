build-asan/common/pca.o: common/pca.c common/pca.h common/rng.h \
 common/util.h
common/pca.h:
common/rng.h:
common/util.h:
