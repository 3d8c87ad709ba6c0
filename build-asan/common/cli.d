build-asan/common/cli.o: common/cli.c common/cli.h common/util.h
common/cli.h:
common/util.h:
