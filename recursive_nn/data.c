/* recursive_nn/data.c: the tasks, the vocabulary and pretrained vectors.
 *
 * Legend: V vocabulary size, d embedding size, K classes.
 *
 * Tasks:
 *   sentiment  the generated treebank of common/sentiment.c: 5 classes, a
 *              label on every node, a negation probe set.
 *   arith      arithmetic expressions, (+ 3 (* 4 2)), written with the value
 *              mod 10 of each expression as its label (K = 10):
 *                  (1 + (3 3) (8 * (4 4) (2 2)))
 *              The reader binarizes (op a b) right-branching into
 *              (op (a b)); the operator leaf and the (a b) node have no
 *              label, so only digits and expressions are scored.
 *   files      any SST-format files: --data DIR reads DIR/train.txt,
 *              DIR/dev.txt, DIR/test.txt (the names of the SST's
 *              trainDevTestTrees_PTB.zip) and DIR/probe.txt when present;
 *              --train/--dev/--test name single files.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recursive_nn.h"
#include "json.h" /* StringBuilder */
#include "sentiment.h"

/* ---- The sentiment task ------------------------------------------------------ */

static bool parse_examples(const SentimentSet *set, Treebank *bank, Error *err) {
    for (int i = 0; i < set->count; i++) {
        const char *tree = set->examples[i].tree;
        if (!tree_parse_text(tree, strlen(tree), "sentiment", SENTIMENT_CLASSES,
                             TREE_LABELS_REQUIRED, false, bank, err))
            return false;
    }
    return true;
}

static bool sentiment_load(RecursiveData *data, const RecursiveDataOptions *opt,
                           unsigned long seed, Error *err) {
    SentimentTreebank generated;
    sentiment_generate(&generated, opt->train_size, opt->dev_size, opt->test_size,
                       opt->probe_size, seed);
    bool ok = parse_examples(&generated.train, &data->train, err) &&
              parse_examples(&generated.dev, &data->dev, err) &&
              parse_examples(&generated.test, &data->test, err) &&
              parse_examples(&generated.probe, &data->probe, err);
    sentiment_free(&generated);
    data->classes = SENTIMENT_CLASSES;
    return ok;
}

/* ---- The arithmetic task ------------------------------------------------------ */

enum { ARITH_CLASSES = 10 };

/* Writes a random expression of at most `depth` operator levels and
 * returns its value mod 10.  The label of a bracket (the value) is known
 * only once its operands are written, so they go to a scratch StringBuilder that is
 * then wrapped.  The recursion is at most --arith-depth (<= 8) deep. */
static int arith_expression(StringBuilder *out, int depth, bool is_root, Rng *rng) {
    char piece[16];
    if (depth == 0 || (!is_root && rng_uniform(rng) < 0.3f)) {
        int digit = (int)rng_below(rng, 10);
        snprintf(piece, sizeof piece, "(%d %d)", digit, digit);
        sb_append(out, piece);
        return digit;
    }
    static const char *const OPERATORS[] = {"+", "-", "*"};
    int op = (int)rng_below(rng, 3);
    StringBuilder operands = {0};
    int a = arith_expression(&operands, depth - 1, false, rng);
    sb_append(&operands, " ");
    int b = arith_expression(&operands, depth - 1, false, rng);
    int value = op == 0 ? a + b : op == 1 ? a - b : a * b;
    value = ((value % 10) + 10) % 10; /* -3 mod 10 = 7 */
    snprintf(piece, sizeof piece, "(%d %s ", value, OPERATORS[op]);
    sb_append(out, piece);
    sb_append(out, operands.data);
    sb_append(out, ")");
    free(operands.data);
    return value;
}

void recursive_arith_generate(Treebank *bank, int count, int max_depth, Rng *rng) {
    for (int i = 0; i < count; i++) {
        StringBuilder text = {0};
        arith_expression(&text, max_depth, true, rng);
        Error err;
        if (!tree_parse_text(text.data, text.length, "arith", ARITH_CLASSES, TREE_LABELS_REQUIRED,
                             false, bank, &err))
            fatal("arith generated a tree the reader rejects: %s", err.message);
        free(text.data);
    }
}

static void arith_load(RecursiveData *data, const RecursiveDataOptions *opt, unsigned long seed) {
    Rng rng;
    Treebank *sets[3] = {&data->train, &data->dev, &data->test};
    int sizes[3] = {opt->train_size, opt->dev_size, opt->test_size};
    for (int s = 0; s < 3; s++) { /* one stream per split, as sentiment.c does */
        rng_seed(&rng, seed, 201 + (uint64_t)s);
        recursive_arith_generate(sets[s], sizes[s], opt->arith_depth, &rng);
    }
    data->classes = ARITH_CLASSES;
}

/* ---- Files ------------------------------------------------------------------------ */

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static bool files_load(RecursiveData *data, const RecursiveDataOptions *opt, Error *err) {
    char paths[4][4096] = {{0}};
    const char *names[4] = {"train.txt", "dev.txt", "test.txt", "probe.txt"};
    if (opt->data_dir != NULL) {
        if (!path_is_directory(opt->data_dir))
            return error_set(err, "--data %s: not a directory (expected train.txt, dev.txt, test.txt in it)",
                             opt->data_dir);
        for (int s = 0; s < 4; s++) snprintf(paths[s], sizeof paths[s], "%s/%s", opt->data_dir, names[s]);
    }
    const char *overrides[3] = {opt->train_file, opt->dev_file, opt->test_file};
    for (int s = 0; s < 3; s++)
        if (overrides[s] != NULL) snprintf(paths[s], sizeof paths[s], "%s", overrides[s]);
    Treebank *sets[4] = {&data->train, &data->dev, &data->test, &data->probe};
    data->classes = SENTIMENT_CLASSES;
    for (int s = 0; s < 4; s++) {
        if (paths[s][0] == '\0') continue;
        /* train.txt and dev.txt must exist; test.txt and probe.txt may not. */
        if (s >= 2 && opt->data_dir != NULL && (s == 3 || overrides[s] == NULL) && !file_exists(paths[s]))
            continue;
        if (!tree_read_file(paths[s], data->classes, TREE_LABELS_REQUIRED, opt->lowercase, sets[s], err))
            return false;
    }
    return true;
}

bool recursive_data_load(RecursiveData *data, RecursiveTask task, const RecursiveDataOptions *opt,
                         unsigned long seed, Error *err) {
    memset(data, 0, sizeof *data);
    data->task = task;
    bool ok = true;
    if (task == RECURSIVE_TASK_SENTIMENT) ok = sentiment_load(data, opt, seed, err);
    else if (task == RECURSIVE_TASK_ARITH) arith_load(data, opt, seed);
    else ok = files_load(data, opt, err);
    if (!ok) recursive_data_free(data);
    return ok;
}

void recursive_data_free(RecursiveData *data) {
    treebank_free(&data->train);
    treebank_free(&data->dev);
    treebank_free(&data->test);
    treebank_free(&data->probe);
}

/* ---- Vocabulary ----------------------------------------------------------------------- */

void recursive_vocab_build(Vocab *vocab, const Treebank *train, int min_count) {
    Vocab seen;
    vocab_init(&seen);
    int *counts = NULL; /* (words seen) */
    int capacity = 0;
    for (int t = 0; t < train->count; t++) {
        const Tree *tree = &train->trees[t];
        for (int i = 0; i < tree->count; i++) {
            if (tree->nodes[i].left >= 0) continue;
            int id = vocab_add(&seen, tree->nodes[i].text);
            if (id >= capacity) {
                int old = capacity;
                capacity = 2 * (id + 16);
                counts = xrealloc(counts, (size_t)capacity * sizeof(int));
                for (int k = old; k < capacity; k++) counts[k] = 0;
            }
            counts[id]++;
        }
    }
    vocab_add(vocab, "<unk>");
    for (int id = 0; id < seen.size; id++)
        if (counts[id] >= min_count) vocab_add(vocab, seen.tokens[id]);
    free(counts);
    vocab_free(&seen);
}

void tree_set_words(Treebank *bank, const Vocab *vocab) {
    for (int t = 0; t < bank->count; t++)
        for (int i = 0; i < bank->trees[t].count; i++) {
            TreeNode *n = &bank->trees[t].nodes[i];
            if (n->left >= 0) continue;
            int id = vocab_find(vocab, n->text);
            n->word = id < 0 ? 0 : id;
        }
}

/* ---- Pretrained vectors (GloVe text format) ---------------------------------------- */

/* One line "word v1 ... vd".  Returns false with the reason in err. */
static bool parse_vector_line(char *line, int dim, char **word, float *values, const char *path,
                              long line_number, Error *err) {
    char *save = NULL;
    *word = strtok_r(line, " \t\r\n", &save);
    if (*word == NULL) return error_set(err, "%s:%ld: empty line, expected \"word v1 ... v%d\"", path, line_number, dim);
    int count = 0;
    for (char *field = strtok_r(NULL, " \t\r\n", &save); field != NULL;
         field = strtok_r(NULL, " \t\r\n", &save)) {
        char *end;
        float value = strtof(field, &end);
        if (*end != '\0' || !isfinite(value))
            return error_set(err, "%s:%ld: value %d of '%s' is \"%.20s\", not a number", path,
                             line_number, count + 1, *word, field);
        if (count < dim) values[count] = value;
        count++;
    }
    if (count != dim)
        return error_set(err, "%s:%ld: '%s' has %d values, expected %d (--dim)", path, line_number,
                         *word, count, dim);
    return true;
}

bool recursive_load_embeddings(const char *path, const Vocab *vocab, float *table, int dim,
                               int *found, Error *err) {
    FILE *file = fopen(path, "r");
    if (file == NULL) return error_set(err, "--embeddings %s: cannot open: %s", path, strerror(errno));
    /* Rows are gathered aside and copied only when the whole file is good. */
    float *rows = xmalloc((size_t)vocab->size * dim * sizeof(float)); /* (V, d) */
    bool *have = xcalloc((size_t)vocab->size, sizeof(bool));          /* (V)    */
    float *values = xmalloc((size_t)dim * sizeof(float));
    char *line = NULL;
    size_t capacity = 0;
    long line_number = 0;
    bool ok = true;
    *found = 0;
    while (ok && getline(&line, &capacity, file) > 0) {
        line_number++;
        char *word;
        ok = parse_vector_line(line, dim, &word, values, path, line_number, err);
        if (!ok) break;
        int id = vocab_find(vocab, word);
        if (id < 0 || have[id]) continue;
        memcpy(rows + (size_t)id * dim, values, (size_t)dim * sizeof(float));
        have[id] = true;
        (*found)++;
    }
    if (ok && line_number == 0) ok = error_set(err, "--embeddings %s: the file is empty", path);
    if (ok)
        for (int id = 0; id < vocab->size; id++)
            if (have[id]) memcpy(table + (size_t)id * dim, rows + (size_t)id * dim, (size_t)dim * sizeof(float));
    free(line), free(values), free(have), free(rows);
    fclose(file);
    return ok;
}
