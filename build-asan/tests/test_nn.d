build-asan/tests/test_nn.o: tests/test_nn.c tests/gradcheck.h \
 common/rng.h common/tensor.h common/rng.h common/matmul.h common/nn.h \
 common/tensor.h tests/test_suites.h build-asan/tests/suites.inc
tests/gradcheck.h:
common/rng.h:
common/tensor.h:
common/rng.h:
common/matmul.h:
common/nn.h:
common/tensor.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
