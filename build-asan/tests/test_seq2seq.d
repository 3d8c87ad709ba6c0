build-asan/tests/test_seq2seq.o: tests/test_seq2seq.c tests/gradcheck.h \
 common/rng.h common/tensor.h common/rng.h tests/../seq2seq/seq2seq.h \
 common/checkpoint.h common/nn.h common/tensor.h common/util.h \
 common/cli.h common/data.h common/nn.h common/plot.h common/util.h \
 tests/test_suites.h build-asan/tests/suites.inc
tests/gradcheck.h:
common/rng.h:
common/tensor.h:
common/rng.h:
tests/../seq2seq/seq2seq.h:
common/checkpoint.h:
common/nn.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/nn.h:
common/plot.h:
common/util.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
