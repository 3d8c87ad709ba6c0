build-asan/tests/test_checkpoint.o: tests/test_checkpoint.c \
 common/checkpoint.h common/nn.h common/rng.h common/tensor.h \
 common/util.h common/json.h common/nn.h tests/test_suites.h \
 build-asan/tests/suites.inc
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/json.h:
common/nn.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
