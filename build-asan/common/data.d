build-asan/common/data.o: common/data.c common/data.h common/rng.h \
 common/util.h common/json.h
common/data.h:
common/rng.h:
common/util.h:
common/json.h:
