build-asan/seq2seq/model.o: seq2seq/model.c seq2seq/seq2seq.h \
 common/checkpoint.h common/nn.h common/rng.h common/tensor.h \
 common/util.h common/cli.h common/data.h common/nn.h common/plot.h \
 common/tensor.h common/util.h
seq2seq/seq2seq.h:
common/checkpoint.h:
common/nn.h:
common/rng.h:
common/tensor.h:
common/util.h:
common/cli.h:
common/data.h:
common/nn.h:
common/plot.h:
common/tensor.h:
common/util.h:
