/* recursive_nn/bench.c: the `bench` and `dump` commands.
 *
 * Legend: B trees per step, P nodes of one tree, N nodes of a batch,
 *         d hidden size, K classes, V vocabulary.
 *
 * bench: training speed on random trees, the setting the issue fixes:
 *   d = 32, K = 5, V = 100 words ("w0".."w99"), random binary trees of 7 to
 *   11 leaves (every shape equally likely to be split at each merge), random
 *   labels on every node, B = 32 trees per step, a softmax loss on every
 *   node, Adam.  The trees are written to <out>/bench_trees.txt so that
 *   tests/bench/recursive_nn_torch.py trains PyTorch on exactly the same
 *   batches.  Reported: trees/s and microseconds per node (forward, backward
 *   and update included), the best of --repeats timed runs.
 *
 * dump: one batch for tests/parity/recursive_nn_parity.py.  Writes
 *   <out>/parity.safetensors holding every parameter under its name, its
 *   gradient as "grad.<name>", "loss" (1), and "node_logits" (N, K) and
 *   "node_states" (N, d) with the nodes in tree order (tree 0's nodes,
 *   children first, then tree 1's, ...); the trees and the vocabulary are in
 *   the metadata ("trees": one SST tree per line).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "recursive_nn.h"
#include "sentiment.h"

/* ---- Random trees ------------------------------------------------------------------ */

/* A random binary tree over `leaves` words: repeatedly merge two
 * neighbouring subtrees picked at random, until one is left. */
static void random_tree_text(FILE *out, int leaves, int vocab, int classes, Rng *rng) {
    char *parts[16]; /* (leaves) the current subtrees as text */
    for (int i = 0; i < leaves; i++) {
        char buffer[32];
        snprintf(buffer, sizeof buffer, "(%u w%u)", rng_below(rng, (uint32_t)classes), rng_below(rng, (uint32_t)vocab));
        parts[i] = xstrdup(buffer);
    }
    for (int count = leaves; count > 1; count--) {
        int i = (int)rng_below(rng, (uint32_t)count - 1); /* merge parts[i], parts[i+1] */
        size_t size = strlen(parts[i]) + strlen(parts[i + 1]) + 16;
        char *merged = xmalloc(size);
        snprintf(merged, size, "(%u %s %s)", rng_below(rng, (uint32_t)classes), parts[i], parts[i + 1]);
        free(parts[i]), free(parts[i + 1]);
        parts[i] = merged;
        memmove(parts + i + 1, parts + i + 2, (size_t)(count - i - 2) * sizeof(char *));
    }
    fputs(parts[0], out);
    fputc('\n', out);
    free(parts[0]);
}

/* ---- bench --------------------------------------------------------------------------- */

enum { BENCH_VOCAB = 100, BENCH_POOL = 1024, BENCH_MIN_LEAVES = 7, BENCH_MAX_LEAVES = 11 };

static bool bench_trees(const char *dir, uint64_t seed, Treebank *bank, Error *err) {
    Rng rng;
    rng_seed(&rng, seed, 301);
    char *text = NULL, path[4096];
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    for (int t = 0; t < BENCH_POOL; t++)
        random_tree_text(out, BENCH_MIN_LEAVES + (int)rng_below(&rng, BENCH_MAX_LEAVES - BENCH_MIN_LEAVES + 1),
                         BENCH_VOCAB, SENTIMENT_CLASSES, &rng);
    fclose(out);
    snprintf(path, sizeof path, "%s/bench_trees.txt", dir);
    bool ok = make_directory(dir, err) && file_write_atomic(path, text, size, err) &&
              tree_parse_text(text, size, path, SENTIMENT_CLASSES, TREE_LABELS_REQUIRED, false, bank, err);
    free(text);
    return ok;
}

/* Trains `steps` steps on consecutive batches of the pool; returns seconds. */
static double bench_run(RecursiveModel *model, Optimizer *opt, Graph *g, const Treebank *bank,
                        const Tree **trees, int batch, long steps, long *nodes) {
    double start = time_seconds();
    *nodes = 0;
    for (long step = 0; step < steps; step++) {
        graph_reset(g);
        params_zero_grad(&model->params);
        for (int i = 0; i < batch; i++) trees[i] = &bank->trees[(step * batch + i) % bank->count];
        TreeBatch *b = recursive_batch_build(g, trees, batch);
        Tensor *loss = recursive_loss(g, recursive_forward(g, model, b), b);
        graph_backward(g, loss);
        optimizer_step(opt, &model->params, 1e-3f);
        *nodes += b->nodes;
    }
    return time_seconds() - start;
}

/* The vocabulary of `bank` (words seen once or more), its trees' word ids,
 * and a freshly initialised model of s->model and s->dim: the setup that
 * bench and dump share. */
static void model_for_bank(const RecursiveSettings *s, Treebank *bank, Vocab *vocab,
                           RecursiveModel *model) {
    vocab_init(vocab);
    recursive_vocab_build(vocab, bank, 1);
    tree_set_words(bank, vocab);
    RecursiveConfig config = {.kind = s->model, .dim = s->dim, .classes = SENTIMENT_CLASSES,
                              .vocab = vocab->size};
    recursive_model_build(model, &config);
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 2);
    recursive_model_init(model, &rng);
}

int recursive_bench_command(int argc, char **argv) {
    RecursiveSettings s;
    memset(&s, 0, sizeof s);
    s.common = (CommonOptions){.task = "bench", .steps = 300, .batch = 32, .seed = 1, .threads = 1,
                               .out = "runs/bench"};
    s.model = RECURSIVE_MODEL_RNN;
    s.dim = 32;
    int repeats = 5;
    Option options[COMMON_OPTION_COUNT + 3];
    common_options_table(&s.common, options);
    options[COMMON_OPTION_COUNT] = (Option){"model", OPTION_CHOICE, &s.model, "composition", "rnn|rntn|bow", 0, 0};
    options[COMMON_OPTION_COUNT + 1] = (Option){"dim", OPTION_INT, &s.dim, "d", NULL, 1, 1024};
    options[COMMON_OPTION_COUNT + 2] = (Option){"repeats", OPTION_INT, &repeats, "timed runs; the best is reported", NULL, 1, 100};
    options_parse_or_exit(argc, argv, 2, options, COMMON_OPTION_COUNT + 3,
                          "recursive_nn bench [--threads N] [--model rnn|rntn|bow] [--steps S]\n"
                          "Training speed on random trees (d=32, 5 classes, 7-11 leaves, vocabulary 100,\n"
                          "32 trees per step, Adam); writes the trees to <out>/bench_trees.txt.");
    threads_set(s.common.threads);
    Error err;
    Treebank bank;
    treebank_init(&bank);
    if (!bench_trees(s.common.out, (uint64_t)s.common.seed, &bank, &err)) {
        fprintf(stderr, "tinyzoo: recursive_nn: %s\n", err.message);
        return EXIT_RUNTIME_ERROR;
    }
    Vocab vocab;
    RecursiveModel model;
    model_for_bank(&s, &bank, &vocab, &model);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    Graph g;
    graph_init(&g, 1 << 22, 256);
    const Tree **trees = xmalloc((size_t)s.common.batch * sizeof(Tree *));
    long nodes;
    bench_run(&model, &opt, &g, &bank, trees, s.common.batch, 20, &nodes); /* warm up: arena, pages */
    double best = INFINITY;
    for (int r = 0; r < repeats; r++) {
        double seconds = bench_run(&model, &opt, &g, &bank, trees, s.common.batch, s.common.steps, &nodes);
        best = seconds < best ? seconds : best;
    }
    double tree_count = (double)s.common.steps * s.common.batch;
    printf("recursive_nn bench: model=%s d=%d batch=%d threads=%d steps=%ld  trees/s=%.0f  us/node=%.3f  "
           "ms/step=%.3f  nodes/step=%.1f\n",
           recursive_model_names[s.model], s.dim, s.common.batch, s.common.threads, s.common.steps,
           tree_count / best, 1e6 * best / (double)nodes, 1e3 * best / (double)s.common.steps,
           (double)nodes / (double)s.common.steps);
    free(trees);
    graph_free(&g);
    optimizer_free(&opt);
    recursive_model_free(&model);
    vocab_free(&vocab);
    treebank_free(&bank);
    return 0;
}

/* ---- dump (for the PyTorch parity check) ----------------------------------------------- */

/* A ParamSet used only as a container of named tensors to save. */
static Tensor *dump_add(ParamSet *ps, const char *name, int ndim, const int *shape) {
    return params_add(ps, name, ndim, shape, false);
}

int recursive_dump_command(int argc, char **argv) {
    RecursiveSettings s;
    memset(&s, 0, sizeof s);
    s.common = (CommonOptions){.task = "sentiment", .batch = 4, .seed = 1, .threads = 1, .out = "runs/parity"};
    s.model = RECURSIVE_MODEL_RNN;
    s.dim = 8;
    Option options[COMMON_OPTION_COUNT + 2];
    common_options_table(&s.common, options);
    options[COMMON_OPTION_COUNT] = (Option){"model", OPTION_CHOICE, &s.model, "composition", "rnn|rntn|bow", 0, 0};
    options[COMMON_OPTION_COUNT + 1] = (Option){"dim", OPTION_INT, &s.dim, "d", NULL, 1, 256};
    options_parse_or_exit(argc, argv, 2, options, COMMON_OPTION_COUNT + 2,
                          "recursive_nn dump [--model M] [--dim D] [--batch B] [--out DIR]\n"
                          "Writes DIR/parity.safetensors: weights, B trees of the sentiment task, the loss,\n"
                          "per-node logits and states, and every gradient.");
    threads_set(s.common.threads);
    /* The first B training trees of the sentiment task; contrasts included. */
    SentimentTreebank generated;
    sentiment_generate(&generated, s.common.batch, 0, 0, 0, (uint64_t)s.common.seed);
    Treebank bank;
    treebank_init(&bank);
    Error err;
    for (int i = 0; i < generated.train.count; i++) {
        const char *text = generated.train.examples[i].tree;
        if (!tree_parse_text(text, strlen(text), "sentiment", SENTIMENT_CLASSES, TREE_LABELS_REQUIRED, false, &bank, &err))
            fatal("dump: %s", err.message);
    }
    sentiment_free(&generated);
    Vocab vocab;
    RecursiveModel model;
    model_for_bank(&s, &bank, &vocab, &model);

    Graph g;
    graph_init(&g, 1 << 20, 64);
    const Tree **trees = xmalloc((size_t)bank.count * sizeof(Tree *));
    for (int t = 0; t < bank.count; t++) trees[t] = &bank.trees[t];
    params_zero_grad(&model.params);
    TreeBatch *b = recursive_batch_build(&g, trees, bank.count);
    Embedding embedding = {.table = model.embedding};
    Tensor *leaves = embedding_forward(&g, &embedding, b->words, b->leaves);
    Tensor *H = recursive_compose(&g, &model, b, leaves);               /* (N, d) */
    Tensor *logits = linear_forward(&g, &model.classifier, H);          /* (N, K) */
    Tensor *loss = recursive_loss(&g, logits, b);
    graph_backward(&g, loss);

    ParamSet out;
    params_init(&out);
    int d = s.dim, K = SENTIMENT_CLASSES, N = b->nodes;
    for (int i = 0; i < model.params.count; i++) {
        char name[PARAM_NAME_MAX];
        const Tensor *p = &model.params.tensors[i];
        dump_add(&out, model.params.names[i], p->ndim, p->shape);
        snprintf(name, sizeof name, "grad.%s", model.params.names[i]);
        dump_add(&out, name, p->ndim, p->shape);
    }
    Tensor *loss_out = dump_add(&out, "loss", 1, (const int[]){1});
    Tensor *logits_out = dump_add(&out, "node_logits", 2, (const int[]){N, K});
    Tensor *states_out = dump_add(&out, "node_states", 2, (const int[]){N, d});
    params_allocate(&out);
    for (int i = 0; i < model.params.count; i++) {
        const Tensor *p = &model.params.tensors[i];
        memcpy(out.tensors[2 * i].data, p->data, (size_t)p->numel * sizeof(float));
        memcpy(out.tensors[2 * i + 1].data, p->grad, (size_t)p->numel * sizeof(float));
    }
    loss_out->data[0] = loss->data[0];
    for (int i = 0; i < N; i++) { /* rows back into tree order */
        int row = b->row_of[i];
        memcpy(logits_out->data + (size_t)i * K, logits->data + (size_t)row * K, (size_t)K * sizeof(float));
        memcpy(states_out->data + (size_t)i * d, H->data + (size_t)row * d, (size_t)d * sizeof(float));
    }
    Metadata meta;
    metadata_init(&meta);
    metadata_set(&meta, "architecture", "recursive_nn-parity");
    metadata_set(&meta, "model", recursive_model_names[s.model]);
    metadata_set_int(&meta, "dim", d);
    metadata_set_int(&meta, "classes", K);
    char *vocab_json = vocab_to_json(&vocab);
    metadata_set(&meta, "vocab", vocab_json);
    free(vocab_json);
    char *text = NULL;
    size_t size = 0;
    FILE *lines = open_memstream(&text, &size);
    for (int t = 0; t < bank.count; t++) {
        tree_write(lines, &bank.trees[t], NULL);
        fputc('\n', lines);
    }
    fclose(lines);
    metadata_set(&meta, "trees", text);
    free(text);
    float loss_value = loss->data[0];
    char path[4096];
    snprintf(path, sizeof path, "%s/parity.safetensors", s.common.out);
    bool ok = make_directory(s.common.out, &err) && checkpoint_save(path, &out, NULL, &meta, &err);
    metadata_free(&meta);
    params_free(&out);
    free(trees);
    graph_free(&g);
    recursive_model_free(&model);
    vocab_free(&vocab);
    treebank_free(&bank);
    if (!ok) {
        fprintf(stderr, "tinyzoo: recursive_nn: %s\n", err.message);
        return EXIT_RUNTIME_ERROR;
    }
    printf("wrote %s (loss %.6f, %d nodes)\n", path, (double)loss_value, N);
    return 0;
}
