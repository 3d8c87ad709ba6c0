/* tests/test_recursive_nn.c: the tree reader and writer, the three models'
 * gradients through the structure, batching, training, checkpoints, where
 * the accuracy chart puts its key, and the program's handling of bad trees.
 *
 * Legend: d hidden size, K classes, P nodes of a tree, N nodes of a batch.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradcheck.h"
#include "../recursive_nn/recursive_nn.h"
#include "sentiment.h"
#include "program_runs.h"
#include "test_suites.h"

/* ---- Helpers ------------------------------------------------------------------------ */

static Treebank parse_ok(const char *text, int classes, TreeLabelMode mode) {
    Treebank bank;
    treebank_init(&bank);
    Error err = {{0}};
    ck_assert_msg(tree_parse_text(text, strlen(text), "t", classes, mode, false, &bank, &err),
                  "rejected \"%.60s\": %s", text, err.message);
    return bank;
}

/* The parse fails and the message contains `words`. */
static void parse_fails(const char *text, size_t size, TreeLabelMode mode, const char *words) {
    Treebank bank;
    treebank_init(&bank);
    Error err = {{0}};
    ck_assert_msg(!tree_parse_text(text, size, "t", 5, mode, false, &bank, &err), "accepted \"%.60s\"", text);
    ck_assert_msg(strstr(err.message, words) != NULL, "for \"%.40s\": message \"%s\" lacks \"%s\"", text,
                  err.message, words);
    ck_assert_int_eq(bank.count, 0);
    treebank_free(&bank);
}

static char *written(const Tree *tree, const int *labels) { return tree_to_string(tree, labels); }

/* ---- Reader and writer ------------------------------------------------------------------ */

START_TEST(test_tree_round_trip) {
    const char *lines[] = {
        "(3 (2 It) (4 (2 is) (4 good)))",
        "(1 (2 the) (1 (2 movie) (1 (2 is) (1 (2 not) (3 good)))))",
        "(2 (2 -LRB-) (2 (2 a) (2 -RRB-)))",
        "(4 wonderful)",
    };
    char text[512] = "";
    for (int i = 0; i < 4; i++) strcat(strcat(text, lines[i]), i % 2 ? "\n" : "  ");
    Treebank bank = parse_ok(text, 5, TREE_LABELS_REQUIRED);
    ck_assert_int_eq(bank.count, 4);
    for (int i = 0; i < 4; i++) {
        char *out = written(&bank.trees[i], NULL);
        ck_assert_str_eq(out, lines[i]);
        free(out);
    }
    /* The escapes are words "(" and ")" inside, written back escaped. */
    ck_assert_str_eq(bank.trees[2].nodes[0].text, "(");
    ck_assert_int_eq(bank.trees[1].leaves, 5);
    ck_assert_int_eq(bank.trees[1].count, 9);
    ck_assert_int_eq(bank.trees[1].nodes[8].label, 1); /* root last */
    ck_assert_int_eq(bank.trees[1].line, 1);
    ck_assert_int_eq(bank.trees[2].line, 2);
    /* Predicted labels replace the gold ones. */
    int predicted[5] = {0, 1, 2, 3, 4};
    char *out = written(&bank.trees[0], predicted);
    ck_assert_str_eq(out, "(4 (0 It) (3 (1 is) (2 good)))");
    free(out);
    treebank_free(&bank);
}
END_TEST

START_TEST(test_tree_binarizes_and_collapses) {
    /* n-ary: right-branching, new nodes unlabelled; unary brackets collapse. */
    Treebank bank = parse_ok("(3 (2 a) (2 b) (3 c) (2 d))\n(ROOT (S (NP the movie) (VP (VBZ is) (JJ fine))))\n"
                             "((the movie) (is good))\n(2 (3 (4 great)))",
                             5, TREE_LABELS_OPTIONAL);
    ck_assert_int_eq(bank.count, 4);
    char *out = written(&bank.trees[0], NULL);
    ck_assert_str_eq(out, "(3 (2 a) ((2 b) ((3 c) (2 d))))");
    free(out);
    out = written(&bank.trees[1], NULL); /* PTB categories are not labels: they read as words */
    ck_assert_str_eq(out, "((ROOT) ((S) (((NP) ((the) (movie))) ((VP) (((VBZ) (is)) ((JJ) (fine)))))))");
    free(out);
    out = written(&bank.trees[2], NULL);
    ck_assert_str_eq(out, "(((the) (movie)) ((is) (good)))");
    free(out);
    out = written(&bank.trees[3], NULL); /* the inner label wins */
    ck_assert_str_eq(out, "(4 great)");
    free(out);
    treebank_free(&bank);
}
END_TEST

START_TEST(test_tree_plain_sentences) {
    Treebank bank;
    treebank_init(&bank);
    Error err;
    const char *text = "the movie is not good\n\n  it was -LRB- fun -RRB-  \n";
    ck_assert(tree_parse_input(text, strlen(text), "in", 5, false, &bank, &err));
    ck_assert_int_eq(bank.count, 2);
    char *out = written(&bank.trees[0], NULL);
    ck_assert_str_eq(out, "((the) ((movie) ((is) ((not) (good)))))");
    free(out);
    ck_assert_int_eq(bank.trees[1].line, 3);
    ck_assert_str_eq(bank.trees[1].nodes[2].text, "(");
    /* The generator's single clauses have exactly this shape. */
    int labels[9] = {2, 2, 2, 2, 3, 1, 1, 1, 1};
    out = written(&bank.trees[0], labels);
    ck_assert_str_eq(out, "(1 (2 the) (1 (2 movie) (1 (2 is) (1 (2 not) (3 good)))))");
    free(out);
    /* Trees as input to predict, labels optional. */
    text = "  (3 (2 it) (3 good))\n((not) (bad))";
    ck_assert(tree_parse_input(text, strlen(text), "in", 5, false, &bank, &err));
    ck_assert_int_eq(bank.count, 4);
    ck_assert(!tree_parse_input("\n \n", 3, "in", 5, false, &bank, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "empty"));
    treebank_free(&bank);
}
END_TEST

START_TEST(test_tree_errors_name_line_and_column) {
    parse_fails("(3 (2 a) (2 b)", 14, TREE_LABELS_REQUIRED, "t:1:1: '(' is never closed");
    parse_fails("(3 (2 a)\n (2 b) (2 c)", 21, TREE_LABELS_REQUIRED, "t:1:1: '(' is never closed");
    parse_fails("(2 a))", 6, TREE_LABELS_REQUIRED, "t:1:6: unexpected ')'");
    parse_fails("(3 (2 a)\n   (b))", 16, TREE_LABELS_REQUIRED, "t:2:5: missing label");
    parse_fails("(3 (2 a) ((2 b) (2 c)))", 23, TREE_LABELS_REQUIRED, "t:1:11: missing label");
    parse_fails("(3 (7 a) (2 b))", 15, TREE_LABELS_REQUIRED, "t:1:5: label 7 out of range 0..4");
    parse_fails("", 0, TREE_LABELS_REQUIRED, "t:1:1: no trees");
    parse_fails("  \n\n ", 5, TREE_LABELS_REQUIRED, "t:3:2: no trees");
    parse_fails("()", 2, TREE_LABELS_OPTIONAL, "t:1:1: empty brackets");
    parse_fails("(3 (2))", 7, TREE_LABELS_REQUIRED, "t:1:4: a label with no word");
    parse_fails("word (2 a)", 10, TREE_LABELS_REQUIRED, "t:1:1: expected '(' to start a tree, found 'word'");
    parse_fails("(2 a)\n(2 b\x00 c)", 12, TREE_LABELS_REQUIRED, "t:2:5: binary data");
    parse_fails("(2 caf\xc3)", 8, TREE_LABELS_REQUIRED, "t:1:7: invalid UTF-8");
    /* Columns count characters, not bytes: "é" is one column. */
    parse_fails("(2 \xc3\xa9t\xc3\xa9 (9 x))", 15, TREE_LABELS_REQUIRED, "t:1:9: label 9");
    /* 100000 nested brackets: an error, not a stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 8);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++) deep[n++] = '(';
    deep[n++] = 'x';
    for (size_t i = 0; i < depth; i++) deep[n++] = ')';
    deep[n] = '\0';
    parse_fails(deep, n, TREE_LABELS_OPTIONAL, "t:1:1001: brackets nested deeper than 1000");
    free(deep);
    /* A flat bracket of many words is binarized into a tree that is too deep. */
    char *flat = malloc(4 * 1200 + 16);
    strcpy(flat, "(2");
    for (int i = 0; i < 1200; i++) strcat(flat, " w");
    strcat(flat, ")");
    parse_fails(flat, strlen(flat), TREE_LABELS_REQUIRED, "t:1:1: tree deeper than 1000");
    free(flat);
}
END_TEST

/* ---- The arithmetic task: every labelled node holds its value mod 10 ------------------------ */

START_TEST(test_arith_labels_are_values) {
    Treebank bank;
    treebank_init(&bank);
    Rng rng;
    rng_seed(&rng, 3, 1);
    recursive_arith_generate(&bank, 300, 3, &rng);
    int checked = 0;
    for (int t = 0; t < bank.count; t++) {
        const Tree *tree = &bank.trees[t];
        for (int i = 0; i < tree->count; i++) {
            const TreeNode *n = &tree->nodes[i];
            if (n->left < 0) {
                if (n->label >= 0) ck_assert_int_eq(n->label, atoi(n->text));
                else ck_assert(strchr("+-*", n->text[0]) != NULL);
                continue;
            }
            if (n->label < 0) continue; /* the (a b) node of (op (a b)) */
            const TreeNode *op = &tree->nodes[n->left], *pair = &tree->nodes[n->right];
            int a = tree->nodes[pair->left].label, b = tree->nodes[pair->right].label;
            int v = op->text[0] == '+' ? a + b : op->text[0] == '-' ? a - b : a * b;
            ck_assert_int_eq(n->label, ((v % 10) + 10) % 10);
            checked++;
        }
    }
    ck_assert_int_gt(checked, 300);
    treebank_free(&bank);
}
END_TEST

/* ---- A tiny model on a few sentiment trees ---------------------------------------------------- */

typedef struct {
    Treebank bank;
    Vocab vocab;
    RecursiveModel model;
    const Tree *trees[64];
} Fixture;

static void fixture_init(Fixture *f, RecursiveModelKind kind, int dim, int trees, uint64_t seed) {
    SentimentTreebank generated;
    sentiment_generate(&generated, trees, 0, 0, 0, seed);
    treebank_init(&f->bank);
    Error err;
    for (int i = 0; i < trees; i++) {
        const char *text = generated.train.examples[i].tree;
        ck_assert(tree_parse_text(text, strlen(text), "s", 5, TREE_LABELS_REQUIRED, false, &f->bank, &err));
        f->trees[i] = &f->bank.trees[i];
    }
    sentiment_free(&generated);
    vocab_init(&f->vocab);
    recursive_vocab_build(&f->vocab, &f->bank, 1);
    tree_set_words(&f->bank, &f->vocab);
    RecursiveConfig config = {.kind = kind, .dim = dim, .classes = 5, .vocab = f->vocab.size};
    recursive_model_build(&f->model, &config);
    Rng rng;
    rng_seed(&rng, seed, 2);
    recursive_model_init(&f->model, &rng);
    /* Larger weights than the default init, so that tanh is in its curved
     * range and every term of the gradient matters. */
    if (f->model.tensor != NULL)
        for (int i = 0; i < f->model.tensor->numel; i++) f->model.tensor->data[i] *= 3;
    if (f->model.compose != NULL)
        for (int i = 0; i < f->model.compose->numel; i++) f->model.compose->data[i] += 0.1f * (float)((i % 7) - 3);
}

static void fixture_free(Fixture *f) {
    recursive_model_free(&f->model);
    vocab_free(&f->vocab);
    treebank_free(&f->bank);
}

typedef struct {
    Fixture *fixture;
    int trees;
    bool loss; /* the scalar loss, or every node's logits */
} ForwardContext;

static Tensor *model_forward(Graph *g, Tensor *const *inputs, void *context) {
    (void)inputs; /* the inputs are the model's own parameters */
    ForwardContext *c = context;
    TreeBatch *b = recursive_batch_build(g, c->fixture->trees, c->trees);
    Tensor *logits = recursive_forward(g, &c->fixture->model, b);
    return c->loss ? recursive_loss(g, logits, b) : logits;
}

static void check_gradients(RecursiveModelKind kind) {
    Fixture f;
    /* seed 4: the first trees include a contrast ("X but Y"), deep trees */
    fixture_init(&f, kind, 4, 4, 4);
    Tensor *inputs[PARAMS_MAX_TENSORS];
    for (int i = 0; i < f.model.params.count; i++) inputs[i] = &f.model.params.tensors[i];
    ForwardContext context = {.fixture = &f, .trees = 4, .loss = false};
    char label[64];
    snprintf(label, sizeof label, "%s logits", recursive_model_names[kind]);
    ck_assert_int_eq(gradcheck_tensor(label, model_forward, &context, inputs, f.model.params.count,
                                      GRADCHECK_DEFAULT), 0);
    context.loss = true;
    snprintf(label, sizeof label, "%s loss", recursive_model_names[kind]);
    ck_assert_int_eq(gradcheck_tensor(label, model_forward, &context, inputs, f.model.params.count,
                                      GRADCHECK_DEFAULT), 0);
    fixture_free(&f);
}

START_TEST(test_gradients_tree_rnn) { check_gradients(RECURSIVE_MODEL_RNN); }
END_TEST
START_TEST(test_gradients_rntn) { check_gradients(RECURSIVE_MODEL_RNTN); }
END_TEST
START_TEST(test_gradients_bag_of_words) { check_gradients(RECURSIVE_MODEL_BOW); }
END_TEST

/* Each tree's logits are the same alone, in a batch, and in any order: bit
 * for bit (a matmul row never depends on the other rows). */
START_TEST(test_prediction_depends_only_on_the_tree) {
    for (int kind = 0; kind < 3; kind++) {
        Fixture f;
        fixture_init(&f, (RecursiveModelKind)kind, 6, 12, 9);
        Graph g;
        graph_init(&g, 1 << 20, 64);
        g.no_grad = true;
        float alone[12][64 * 5];
        for (int t = 0; t < 12; t++) {
            graph_reset(&g);
            TreeBatch *b = recursive_batch_build(&g, &f.trees[t], 1);
            Tensor *logits = recursive_forward(&g, &f.model, b);
            for (int i = 0; i < f.trees[t]->count; i++)
                memcpy(alone[t] + i * 5, logits->data + b->row_of[i] * 5, 5 * sizeof(float));
        }
        const Tree *shuffled[12];
        int order[12] = {7, 2, 11, 0, 5, 9, 1, 3, 10, 4, 8, 6};
        for (int i = 0; i < 12; i++) shuffled[i] = f.trees[order[i]];
        graph_reset(&g);
        TreeBatch *b = recursive_batch_build(&g, shuffled, 12);
        Tensor *logits = recursive_forward(&g, &f.model, b);
        for (int i = 0; i < 12; i++)
            for (int node = 0; node < shuffled[i]->count; node++) {
                int row = b->row_of[b->tree_start[i] + node];
                ck_assert_msg(memcmp(alone[order[i]] + node * 5, logits->data + row * 5, 5 * sizeof(float)) == 0,
                              "%s: tree %d node %d differs in a batch", recursive_model_names[kind], order[i], node);
            }
        graph_free(&g);
        fixture_free(&f);
    }
}
END_TEST

/* Adam on 8 trees: every node of every tree is learned. */
START_TEST(test_overfits_a_tiny_set) {
    for (int kind = 0; kind < 2; kind++) {
        Fixture f;
        fixture_init(&f, (RecursiveModelKind)kind, 12, 8, 21);
        Optimizer opt;
        optimizer_init(&opt, OPTIMIZER_ADAM, &f.model.params);
        Graph g;
        graph_init(&g, 1 << 20, 64);
        float loss = 0;
        for (int step = 0; step < 300; step++) {
            graph_reset(&g);
            params_zero_grad(&f.model.params);
            TreeBatch *b = recursive_batch_build(&g, f.trees, 8);
            Tensor *l = recursive_loss(&g, recursive_forward(&g, &f.model, b), b);
            loss = l->data[0];
            graph_backward(&g, l);
            optimizer_step(&opt, &f.model.params, 0.02f);
        }
        Treebank view = {.trees = f.bank.trees, .count = 8};
        RecursiveMetrics m;
        recursive_evaluate(&g, &f.model, &view, 8, &m, NULL);
        ck_assert_msg(m.correct_nodes == m.nodes, "%s: %ld of %ld nodes right, loss %g",
                      recursive_model_names[kind], m.correct_nodes, m.nodes, (double)loss);
        ck_assert_msg(loss < 0.05f, "loss per tree %g", (double)loss);
        graph_free(&g);
        optimizer_free(&opt);
        fixture_free(&f);
    }
}
END_TEST

START_TEST(test_checkpoint_round_trip) {
    Fixture f;
    fixture_init(&f, RECURSIVE_MODEL_RNTN, 5, 6, 2);
    const char *dir = test_temp_dir("recursive");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    Error err;
    ck_assert_msg(recursive_save(path, &f.model, NULL, &f.vocab, NULL, 17, NULL, &err), "%s", err.message);
    RecursiveModel loaded;
    Vocab vocab;
    Metadata meta;
    ck_assert_msg(recursive_load(path, &loaded, NULL, &vocab, &meta, &err), "%s", err.message);
    ck_assert_int_eq(loaded.config.kind, RECURSIVE_MODEL_RNTN);
    ck_assert_int_eq(loaded.config.dim, 5);
    ck_assert_int_eq((int)loaded.params.total, (int)f.model.params.total);
    ck_assert(memcmp(loaded.params.values, f.model.params.values, f.model.params.total * sizeof(float)) == 0);
    ck_assert_int_eq(vocab.size, f.vocab.size);
    for (int i = 0; i < vocab.size; i++) ck_assert_str_eq(vocab.tokens[i], f.vocab.tokens[i]);
    long step;
    ck_assert(metadata_get_int(&meta, "step", &step, &err));
    ck_assert_int_eq(step, 17);
    metadata_free(&meta);
    vocab_free(&vocab);
    recursive_model_free(&loaded);
    /* A checkpoint of another architecture is refused with its name. */
    ParamSet other;
    params_init(&other);
    params_add_of(&other, "w", true, 1, 3);
    params_allocate(&other);
    Metadata wrong;
    metadata_init(&wrong);
    metadata_set(&wrong, "architecture", "spiral-mlp");
    ck_assert(checkpoint_save(path, &other, NULL, &wrong, &err));
    ck_assert(!recursive_load(path, &loaded, NULL, &vocab, &meta, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "spiral-mlp"));
    metadata_free(&meta);
    metadata_free(&wrong);
    params_free(&other);
    fixture_free(&f);
}
END_TEST

/* ---- The program ------------------------------------------------------------------------------ */

static void write_text(const char *path, const char *text, size_t size) {
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    fwrite(text, 1, size, file);
    fclose(file);
}

START_TEST(test_program_rejects_bad_trees) {
    const char *dir = test_temp_dir("recursive-bad");
    char good[600], bad[600], command[2048], output[4096];
    snprintf(good, sizeof good, "%s/good.txt", dir);
    write_text(good, "(3 (2 it) (3 good))\n", 20);
    size_t depth = 100000; /* "(2 (2 (2 ..." */
    char *deep = malloc(3 * depth + 8);
    for (size_t i = 0; i < depth; i++) memcpy(deep + 3 * i, "(2 ", 3);
    deep[3 * depth] = '\0';
    const struct { const char *text; size_t size; const char *words; } cases[] = {
        {"(3 (2 it) (3 good)", 18, "bad.txt:1:1: '(' is never closed"},
        {"(3 (2 it)\n(good))", 17, "bad.txt:2:2: missing label"},
        {"(3 (2 it) (5 good))", 19, "bad.txt:1:12: label 5 out of range"},
        {"", 0, "bad.txt:1:1: no trees"},
        {deep, 3 * depth, "bad.txt:1:3001: brackets nested deeper than 1000"},
        {"\x7f" "ELF\x02\x01\x01\x00\x00\x00", 10, "bad.txt:1:8: binary data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(bad, sizeof bad, "%s/bad.txt", dir);
        write_text(bad, cases[i].text, cases[i].size);
        snprintf(command, sizeof command, "%s/recursive_nn train --train %s --dev %s --out %s/run --steps 2 --quiet",
                 test_bin_dir(), bad, good, dir);
        int status = test_run_command(command, output, sizeof output);
        ck_assert_msg(status == 1, "case %zu: exit status %d, output %s", i, status, output);
        ck_assert_msg(strstr(output, cases[i].words) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, output,
                      cases[i].words);
        ck_assert_msg(strchr(output, '\n') == strrchr(output, '\n'), "case %zu: more than one line: %s", i, output);
        snprintf(command, sizeof command, "%s/run/model.safetensors", dir);
        ck_assert_msg(access(command, F_OK) != 0, "case %zu left a checkpoint behind", i);
    }
    free(deep);
    snprintf(command, sizeof command, "%s/recursive_nn train --model lstm --quiet", test_bin_dir());
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    ck_assert_ptr_nonnull(strstr(output, "--model"));
}
END_TEST

/* GloVe text format: rows of vocabulary words are replaced, others kept;
 * a malformed file changes nothing. */
START_TEST(test_glove_embeddings) {
    Vocab vocab;
    vocab_init(&vocab);
    vocab_add(&vocab, "<unk>");
    vocab_add(&vocab, "good");
    vocab_add(&vocab, "bad");
    float table[3 * 2] = {9, 9, 9, 9, 9, 9}; /* (V, d) */
    const char *dir = test_temp_dir("recursive-glove");
    char path[600];
    snprintf(path, sizeof path, "%s/vectors.txt", dir);
    write_text(path, "the 0.5 0.25\ngood 1 -2\nunseen 3 3\n", 34);
    Error err;
    int found;
    ck_assert_msg(recursive_load_embeddings(path, &vocab, table, 2, &found, &err), "%s", err.message);
    ck_assert_int_eq(found, 1);
    float expected[6] = {9, 9, 1, -2, 9, 9};
    ck_assert(memcmp(table, expected, sizeof table) == 0);
    write_text(path, "bad 1 2\ngood 1\n", 15);
    ck_assert(!recursive_load_embeddings(path, &vocab, table, 2, &found, &err));
    ck_assert_msg(strstr(err.message, ":2: 'good' has 1 values, expected 2") != NULL, "%s", err.message);
    ck_assert(memcmp(table, expected, sizeof table) == 0); /* "bad" was not copied */
    write_text(path, "bad 1 x2\n", 9);
    ck_assert(!recursive_load_embeddings(path, &vocab, table, 2, &found, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "not a number"));
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_resume_is_bit_identical) {
    const char *models[2] = {"rntn", "rnn --optimizer adagrad --lr 0.05"};
    for (int m = 0; m < 2; m++) {
        const char *dir = test_temp_dir("recursive-resume");
        const char *common = "--train-size 120 --dev-size 30 --test-size 20 --probe-size 10 --dim 6 --batch 8 "
                             "--eval-every 10 --plot-term none --quiet --draw 0";
        char command[2048], output[8192], a[600], b[600];
        snprintf(command, sizeof command, "%s/recursive_nn train --model %s %s --steps 30 --out %s/straight",
                 test_bin_dir(), models[m], common, dir);
        ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
        snprintf(command, sizeof command, "%s/recursive_nn train --model %s %s --steps 20 --out %s/resumed",
                 test_bin_dir(), models[m], common, dir);
        ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
        snprintf(command, sizeof command, "%s/recursive_nn train --model %s %s --steps 30 --out %s/resumed --resume",
                 test_bin_dir(), models[m], common, dir);
        ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
        /* Weights, optimizer state, metadata and metrics.csv, bit for bit. */
        snprintf(a, sizeof a, "%s/straight", dir);
        snprintf(b, sizeof b, "%s/resumed", dir);
        char why[1024];
        ck_assert_msg(runs_identical(a, b, why, sizeof why), "%s: %s", models[m], why);
        /* A resume with another batch size is refused: its batches differ. */
        snprintf(command, sizeof command, "%s/recursive_nn train --model %s %s --steps 40 --batch 4 --out %s/resumed --resume",
                 test_bin_dir(), models[m], common, dir);
        ck_assert_int_eq(test_run_command(command, output, sizeof output), 1);
        ck_assert_ptr_nonnull(strstr(output, "data stream differs"));
    }
}
END_TEST

/* Reads "name=value" from a "final:" line. */
static double final_value(const char *output, const char *name) {
    const char *line = strstr(output, "final:");
    ck_assert_ptr_nonnull(line);
    char key[64];
    snprintf(key, sizeof key, " %s=", name);
    const char *at = strstr(line, key);
    ck_assert_msg(at != NULL, "no %s in %s", name, line);
    return atof(at + strlen(key));
}

/* The point of the model: on "X" / "not X" pairs the tree network gets the
 * polarity right, while a bag of words cannot do better than 3 pairs out
 * of 4 (it cannot make "not" flip both "good" and "bad"). */
START_TEST(test_negation_probe_tree_beats_bag_of_words) {
    const char *dir = test_temp_dir("recursive-probe");
    char command[2048], output[8192];
    double binary[2];
    const char *models[2] = {"rnn", "bow"};
    for (int m = 0; m < 2; m++) {
        snprintf(command, sizeof command,
                 "%s/recursive_nn train --model %s --train-size 1500 --dev-size 100 --test-size 100 "
                 "--probe-size 200 --steps 300 --dim 16 --plot-term none --quiet --draw 0 --out %s/%s",
                 test_bin_dir(), models[m], dir, models[m]);
        ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
        binary[m] = final_value(output, "probe_binary");
    }
    ck_assert_msg(binary[0] >= 0.95, "TreeRNN probe binary accuracy %.3f", binary[0]);
    ck_assert_msg(binary[1] <= 0.80, "bag of words probe binary accuracy %.3f", binary[1]);
}
END_TEST

/* The accuracy chart's key sits outside the plot area.  A bag of words
 * reaches 0.9 at all nodes within 200 steps (these rows are from a real
 * `train --model bow` run), so its curve runs along the top of the chart,
 * where a key inside it hid the curve. */
START_TEST(test_accuracy_key_is_outside_the_curves) {
    const char *dir = test_temp_dir("recursive-plot");
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *metrics = fopen(path, "w");
    ck_assert_ptr_nonnull(metrics);
    fputs("step,train_loss,val_loss,val_accuracy,val_root_accuracy,probe_binary,lr\n"
          "100,8.86,4.16,0.860,0.53,0.6375,0.01\n"
          "200,3.08,2.39,0.906,0.72,0.735,0.01\n"
          "800,1.80,1.70,0.923,0.774,0.7725,0.01\n"
          "1500,1.70,1.63,0.912,0.762,0.7425,0.01\n",
          metrics);
    ck_assert(fclose(metrics) == 0);
    Error err;
    ck_assert_msg(recursive_plot_curves(dir, PLOT_TERM_NONE, &err), "%s", err.message);
    snprintf(path, sizeof path, "%s/accuracy.gp", dir);
    size_t size;
    char *script = read_entire_file(path, &size);
    ck_assert_msg(script != NULL, "no %s", path);
    const char *key = strstr(script, "\nset key ");
    ck_assert_msg(key != NULL, "%s sets no key position", path);
    char words[64] = "";
    sscanf(key, "\nset key %63[a-z ]", words);
    static const char *const OUTSIDE[] = {"above", "below", "outside", "tmargin", "bmargin", "lmargin", "rmargin"};
    bool outside = false;
    for (size_t i = 0; i < sizeof OUTSIDE / sizeof *OUTSIDE; i++) outside |= strstr(words, OUTSIDE[i]) != NULL;
    ck_assert_msg(outside, "accuracy.gp: 'set key %s' puts the key over the curves", words);
    free(script);
}
END_TEST

Suite *recursive_nn_suite(void) {
    Suite *s = suite_create("recursive_nn");
    TCase *trees = tcase_create("trees");
    tcase_add_test(trees, test_tree_round_trip);
    tcase_add_test(trees, test_tree_binarizes_and_collapses);
    tcase_add_test(trees, test_tree_plain_sentences);
    tcase_add_test(trees, test_tree_errors_name_line_and_column);
    tcase_add_test(trees, test_arith_labels_are_values);
    suite_add_tcase(s, trees);
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 60);
    tcase_add_test(model, test_gradients_tree_rnn);
    tcase_add_test(model, test_gradients_rntn);
    tcase_add_test(model, test_gradients_bag_of_words);
    tcase_add_test(model, test_prediction_depends_only_on_the_tree);
    tcase_add_test(model, test_overfits_a_tiny_set);
    tcase_add_test(model, test_checkpoint_round_trip);
    tcase_add_test(model, test_accuracy_key_is_outside_the_curves);
    suite_add_tcase(s, model);
    TCase *program = tcase_create("program");
    tcase_set_timeout(program, 120);
    tcase_add_test(program, test_glove_embeddings);
    tcase_add_test(program, test_program_rejects_bad_trees);
    tcase_add_test(program, test_resume_is_bit_identical);
    tcase_add_test(program, test_negation_probe_tree_beats_bag_of_words);
    suite_add_tcase(s, program);
    return s;
}
