build-asan/tests/gradcheck.o: tests/gradcheck.c tests/gradcheck.h \
 common/rng.h common/tensor.h common/rng.h common/util.h
tests/gradcheck.h:
common/rng.h:
common/tensor.h:
common/rng.h:
common/util.h:
