build-asan/seq2seq/train.o: seq2seq/train.c common/matmul.h common/plot.h \
 common/util.h seq2seq/seq2seq.h common/checkpoint.h common/nn.h \
 common/rng.h common/tensor.h common/cli.h common/data.h common/nn.h \
 common/tensor.h common/util.h
common/matmul.h:
common/plot.h:
common/util.h:
seq2seq/seq2seq.h:
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/cli.h:
common/data.h:
common/nn.h:
common/tensor.h:
common/util.h:
