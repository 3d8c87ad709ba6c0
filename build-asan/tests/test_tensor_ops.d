build-asan/tests/test_tensor_ops.o: tests/test_tensor_ops.c \
 tests/gradcheck.h common/rng.h common/tensor.h common/rng.h \
 tests/test_suites.h build-asan/tests/suites.inc common/util.h
tests/gradcheck.h:
common/rng.h:
common/tensor.h:
common/rng.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
common/util.h:
