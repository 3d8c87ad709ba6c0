build-asan/tests/bench/bench_matmul.o: tests/bench/bench_matmul.c \
 common/cli.h common/util.h common/matmul.h common/rng.h common/util.h \
 /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
 /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h
common/cli.h:
common/util.h:
common/matmul.h:
common/rng.h:
common/util.h:
/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h:
/usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h:
