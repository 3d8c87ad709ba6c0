/* recursive_nn/main.c: the command line of bin/recursive_nn.
 *
 *   bin/recursive_nn train   [--model rnn|rntn|bow] [--task sentiment|arith] ...
 *   bin/recursive_nn eval    evaluate a checkpoint on the task's dev/test/probe sets
 *   bin/recursive_nn predict label every node of trees or sentences (file or stdin)
 *   bin/recursive_nn plot    redraw the plots of a run directory
 *   bin/recursive_nn export  write the task's trees as SST files
 *   bin/recursive_nn bench   training speed on random trees
 *   bin/recursive_nn dump    weights, a batch, loss and gradients for the
 *                            PyTorch parity check (tests/parity/)
 *
 * Legend: B trees per batch, P nodes of one tree, K classes, d hidden size.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "recursive_nn.h"
#include "sentiment.h"

static const char USAGE[] =
    "usage: recursive_nn <command> [options]\n"
    "Recursive tree networks (TreeRNN, RNTN) and a bag-of-words baseline for sentiment.\n"
    "commands:\n"
    "  train     train on a task (--task sentiment|arith, or --data DIR / --train FILE)\n"
    "  eval      evaluate --checkpoint on the task's dev, test and negation-probe sets\n"
    "  predict   label every node of trees or plain sentences from --input or stdin\n"
    "  plot      redraw the plots of --out from its metrics.csv and checkpoint\n"
    "  export    write the task's trees as SST files train.txt dev.txt test.txt probe.txt in --out\n"
    "  bench     training speed: d=32, 5 classes, random trees of 7-11 leaves, 32 per step, Adam\n"
    "  dump      write weights, a batch, the loss and gradients (--out DIR) for the PyTorch parity check\n"
    "`recursive_nn <command> --help` lists the options with their defaults.";

/* ---- Options --------------------------------------------------------------------- */

enum { MODEL_OPTION_COUNT = 17, OPTION_COUNT = COMMON_OPTION_COUNT + MODEL_OPTION_COUNT };

static void settings_defaults(RecursiveSettings *s) {
    memset(s, 0, sizeof *s);
    s->common = (CommonOptions){.task = "sentiment", .steps = 1500, .batch = 32, .lr = 0.01f,
                                .seed = 1, .threads = 1};
    s->model = RECURSIVE_MODEL_RNN;
    s->dim = 32;
    s->optimizer = RECURSIVE_OPT_ADAM;
    s->l2 = 1e-5f;
    s->min_count = 1;
    s->eval_every = 100;
    s->draw = 4;
    s->data = (RecursiveDataOptions){.train_size = 4000, .dev_size = 500, .test_size = 1000,
                                     .probe_size = 400, .arith_depth = 3};
}

static void options_table(RecursiveSettings *s, Option *options) {
    common_options_table(&s->common, options);
    const Option mine[MODEL_OPTION_COUNT] = {
        {"model", OPTION_CHOICE, &s->model, "composition: TreeRNN, RNTN, or the bag-of-words baseline", "rnn|rntn|bow", 0, 0},
        {"dim", OPTION_INT, &s->dim, "d, the size of word vectors and node states", NULL, 1, 1024},
        {"optimizer", OPTION_CHOICE, &s->optimizer, "optimizer", "adam|adagrad", 0, 0},
        {"l2", OPTION_FLOAT, &s->l2, "L2 regularisation of the weight matrices and embeddings", NULL, 0, 1},
        {"min-count", OPTION_INT, &s->min_count, "training words seen fewer times map to <unk>", NULL, 1, 1000000},
        {"eval-every", OPTION_LONG, &s->eval_every, "steps between validation passes", NULL, 1, 1e9},
        {"draw", OPTION_INT, &s->draw, "trees to draw after training or predicting", NULL, 0, 100},
        {"embeddings", OPTION_STRING, &s->embeddings, "GloVe-format text file of pretrained word vectors (d values per word)", NULL, 0, 0},
        {"train", OPTION_STRING, &s->data.train_file, "training trees (SST format); implies --task files", NULL, 0, 0},
        {"dev", OPTION_STRING, &s->data.dev_file, "validation trees (SST format)", NULL, 0, 0},
        {"test", OPTION_STRING, &s->data.test_file, "test trees (SST format)", NULL, 0, 0},
        {"lowercase", OPTION_FLAG, &s->data.lowercase, "lowercase every word (e.g. for GloVe 6B vectors)", NULL, 0, 0},
        {"train-size", OPTION_INT, &s->data.train_size, "generated tasks: training trees", NULL, 1, 10000000},
        {"dev-size", OPTION_INT, &s->data.dev_size, "generated tasks: validation trees", NULL, 1, 10000000},
        {"test-size", OPTION_INT, &s->data.test_size, "generated tasks: test trees", NULL, 0, 10000000},
        {"probe-size", OPTION_INT, &s->data.probe_size, "sentiment: negation probe sentences, in pairs (an odd count is rounded down)", NULL, 0, 10000000},
        {"arith-depth", OPTION_INT, &s->data.arith_depth, "arith: deepest operator nesting", NULL, 1, 8},
    };
    memcpy(options + COMMON_OPTION_COUNT, mine, sizeof mine);
}

/* Checks the combination of options and fills in derived ones. */
static void settings_resolve(RecursiveSettings *s, const char *command, char *out_buffer, size_t size) {
    if (s->common.data != NULL || s->data.train_file != NULL || s->data.dev_file != NULL ||
        s->data.test_file != NULL) {
        s->task = RECURSIVE_TASK_FILES;
        s->data.data_dir = s->common.data;
        s->common.task = "files";
    } else if (strcmp(s->common.task, "sentiment") == 0) {
        s->task = RECURSIVE_TASK_SENTIMENT;
    } else if (strcmp(s->common.task, "arith") == 0) {
        s->task = RECURSIVE_TASK_ARITH;
    } else {
        fprintf(stderr, "recursive_nn %s: --task '%s': expected sentiment or arith (or --data DIR)\n",
                command, s->common.task);
        exit(EXIT_USAGE_ERROR);
    }
    if (s->common.data != NULL && path_is_directory(s->common.data) == false) {
        fprintf(stderr, "recursive_nn %s: --data %s: expected a directory holding train.txt, dev.txt, test.txt\n",
                command, s->common.data);
        exit(EXIT_USAGE_ERROR);
    }
    if (s->common.out == NULL) {
        snprintf(out_buffer, size, "runs/recursive_nn-%s", s->common.task);
        s->common.out = out_buffer;
    }
}

/* The options each command other than train reads: its --help lists only
 * these, and any other option is refused (exit 2) rather than silently
 * ignored.  --task and --data name the default run directory; eval and
 * plot regenerate the task's sets, so they take its sizes. */
#define TASK_SIZES "train-size", "dev-size", "test-size", "probe-size", "arith-depth"
static const char *const EVAL_OPTIONS[] = {"task", "data", "out", "checkpoint", "seed", "threads", "train",
                                           "dev", "test", TASK_SIZES, NULL};
static const char *const PREDICT_OPTIONS[] = {"task", "data", "input", "out", "checkpoint", "threads",
                                              "plot-term", "draw", NULL};
static const char *const PLOT_OPTIONS[] = {"task", "data", "out", "checkpoint", "seed", "plot-term", "draw",
                                           "train", "dev", "test", TASK_SIZES, NULL};
static const char *const EXPORT_OPTIONS[] = {"task", "out", "seed", TASK_SIZES, NULL};

/* Parses the command line against the options `names` (NULL: all). */
static void parse_or_exit(int argc, char **argv, RecursiveSettings *s, const char *const *names,
                          const char *usage) {
    Option all[OPTION_COUNT], selected[OPTION_COUNT];
    options_table(s, all);
    int count = names ? options_select(all, OPTION_COUNT, names, selected) : OPTION_COUNT;
    options_parse_or_exit(argc, argv, 2, names ? selected : all, count, usage);
}

static bool argument_given(int argc, char **argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 2; i < argc; i++)
        if (strncmp(argv[i], name, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '=')) return true;
    return false;
}

static int runtime_error(const Error *err) {
    fprintf(stderr, "tinyzoo: recursive_nn: %s\n", err->message);
    return EXIT_RUNTIME_ERROR;
}

/* ---- train ----------------------------------------------------------------------------- */

static int command_train(int argc, char **argv) {
    RecursiveSettings s;
    settings_defaults(&s);
    Option options[OPTION_COUNT];
    options_table(&s, options);
    options_parse_or_exit(argc, argv, 2, options, OPTION_COUNT,
                          "recursive_nn train [options]\nTrains a tree network; writes --out.");
    char out[4096];
    settings_resolve(&s, "train", out, sizeof out);
    return recursive_train(&s, options, OPTION_COUNT);
}

/* ---- Loading a trained model (eval, predict, plot) ------------------------------------ */

typedef struct {
    RecursiveModel model;
    Vocab vocab;
    Metadata meta;
    bool lowercase;
} Loaded;

static bool load_model(const RecursiveSettings *s, Loaded *loaded, Error *err) {
    char path[4096];
    if (s->common.checkpoint != NULL) snprintf(path, sizeof path, "%s", s->common.checkpoint);
    else snprintf(path, sizeof path, "%s/model.safetensors", s->common.out);
    if (!recursive_load(path, &loaded->model, NULL, &loaded->vocab, &loaded->meta, err)) return false;
    long lowercase = 0;
    Error ignored;
    metadata_get_int(&loaded->meta, "lowercase", &lowercase, &ignored);
    loaded->lowercase = lowercase != 0;
    return true;
}

static void loaded_free(Loaded *loaded) {
    recursive_model_free(&loaded->model);
    vocab_free(&loaded->vocab);
    metadata_free(&loaded->meta);
}

/* eval and plot use the checkpoint's task and seed unless given. */
static void settings_from_checkpoint(RecursiveSettings *s, const Loaded *loaded, int argc, char **argv,
                                     char *task_buffer, size_t size) {
    const char *task = metadata_get(&loaded->meta, "task");
    if (task != NULL && !argument_given(argc, argv, "--task") && !argument_given(argc, argv, "--data") &&
        !argument_given(argc, argv, "--test") && strcmp(task, "files") != 0) {
        snprintf(task_buffer, size, "%s", task);
        s->common.task = task_buffer;
        s->task = strcmp(task, "arith") == 0 ? RECURSIVE_TASK_ARITH : RECURSIVE_TASK_SENTIMENT;
    }
    long seed;
    Error ignored;
    if (!argument_given(argc, argv, "--seed") && metadata_get_int(&loaded->meta, "seed", &seed, &ignored))
        s->common.seed = seed;
    s->data.lowercase = loaded->lowercase;
}

/* ---- eval ------------------------------------------------------------------------------ */

static int command_eval(int argc, char **argv) {
    RecursiveSettings s;
    settings_defaults(&s);
    parse_or_exit(argc, argv, &s, EVAL_OPTIONS,
                  "recursive_nn eval [options]\nEvaluates --checkpoint (default <out>/model.safetensors) "
                  "on the dev, test and probe sets of the task it was trained on.");
    char out[4096], task[64];
    settings_resolve(&s, "eval", out, sizeof out);
    threads_set(s.common.threads);
    Error err;
    Loaded loaded;
    if (!load_model(&s, &loaded, &err)) return runtime_error(&err);
    settings_from_checkpoint(&s, &loaded, argc, argv, task, sizeof task);
    RecursiveData data;
    if (!recursive_data_load(&data, s.task, &s.data, (unsigned long)s.common.seed, &err)) {
        loaded_free(&loaded);
        return runtime_error(&err);
    }
    if (data.classes != loaded.model.config.classes) {
        error_set(&err, "the checkpoint has %d classes, the task %d", loaded.model.config.classes, data.classes);
        recursive_data_free(&data), loaded_free(&loaded);
        return runtime_error(&err);
    }
    Graph g;
    graph_init(&g, 1 << 22, 256);
    const char *names[4] = {"dev", "test", "probe", NULL};
    Treebank *sets[3] = {&data.dev, &data.test, &data.probe};
    printf("model %s, d=%d, task %s\n", recursive_model_names[loaded.model.config.kind],
           loaded.model.config.dim, s.common.task);
    for (int k = 0; k < 3; k++) {
        if (sets[k]->count == 0) continue;
        tree_set_words(sets[k], &loaded.vocab);
        RecursiveMetrics m;
        recursive_evaluate(&g, &loaded.model, sets[k], 64, &m, NULL);
        recursive_print_metrics(stdout, names[k], &m, k == 1);
        if (k == 2)
            printf("probe_accuracy=%.4f probe_binary=%.4f\n", recursive_metric(m.correct_roots, m.roots),
                   recursive_metric(m.binary_correct_roots, m.binary_roots));
    }
    graph_free(&g);
    recursive_data_free(&data);
    loaded_free(&loaded);
    return 0;
}

/* ---- predict ------------------------------------------------------------------------------ */

static int command_predict(int argc, char **argv) {
    RecursiveSettings s;
    settings_defaults(&s);
    s.draw = 0;
    parse_or_exit(argc, argv, &s, PREDICT_OPTIONS,
                  "recursive_nn predict [--input FILE] [--checkpoint FILE] [--draw N]\n"
                  "Reads trees (SST format, labels optional) or plain sentences, one per line, from\n"
                  "--input or stdin, and prints each tree with the predicted label of every node.\n"
                  "Plain sentences are read as right-branching trees (see recursive_nn/README.md).");
    char out[4096];
    settings_resolve(&s, "predict", out, sizeof out);
    threads_set(s.common.threads);
    Error err;
    Loaded loaded;
    if (!load_model(&s, &loaded, &err)) return runtime_error(&err);
    char *text;
    size_t size;
    const char *name = s.common.input != NULL ? s.common.input : "stdin";
    bool ok;
    if (s.common.input != NULL) {
        ok = file_read_all(s.common.input, DATA_MAX_FILE_BYTES, &text, &size, &err);
    } else { /* stdin, read whole */
        size_t capacity = 1 << 16;
        text = xmalloc(capacity);
        size = 0;
        size_t got;
        while ((got = fread(text + size, 1, capacity - size - 1, stdin)) > 0) {
            size += got;
            if (size + 1 == capacity) text = xrealloc(text, capacity *= 2);
        }
        text[size] = '\0';
        ok = true;
    }
    Treebank bank;
    treebank_init(&bank);
    ok = ok && tree_parse_input(text, size, name, loaded.model.config.classes, loaded.lowercase, &bank, &err);
    if (ok) free(text);
    if (!ok) {
        loaded_free(&loaded);
        return runtime_error(&err);
    }
    tree_set_words(&bank, &loaded.vocab);
    Graph g;
    graph_init(&g, 1 << 22, 256);
    int **predictions = xmalloc((size_t)bank.count * sizeof(int *));
    for (int t = 0; t < bank.count; t++) predictions[t] = xmalloc((size_t)bank.trees[t].count * sizeof(int));
    RecursiveMetrics m;
    recursive_evaluate(&g, &loaded.model, &bank, 64, &m, predictions);
    for (int t = 0; t < bank.count; t++) {
        tree_write(stdout, &bank.trees[t], predictions[t]);
        fputc('\n', stdout);
    }
    if (m.nodes > 0)
        fprintf(stderr, "against the gold labels in the input: nodes %.4f (%ld), roots %.4f (%ld)\n",
                recursive_metric(m.correct_nodes, m.nodes), m.nodes, recursive_metric(m.correct_roots, m.roots), m.roots);
    int status = 0;
    PlotTarget target = {.dir = s.common.out, .term = (PlotTerm)s.common.plot_term};
    for (int t = 0; t < s.draw && t < bank.count; t++) {
        char stem[64], title[64];
        snprintf(stem, sizeof stem, "predict_%d", t + 1);
        snprintf(title, sizeof title, "%s, input tree %d", recursive_model_names[loaded.model.config.kind], t + 1);
        if (!recursive_plot_tree(&target, stem, title, &bank.trees[t], predictions[t], loaded.model.config.classes, &err)) {
            status = runtime_error(&err);
            break;
        }
        fprintf(stderr, "drew %s/%s.{dat,gp%s}\n", s.common.out, stem, target.term == PLOT_TERM_PNG ? ",png" : "");
    }
    for (int t = 0; t < bank.count; t++) free(predictions[t]);
    free(predictions);
    graph_free(&g);
    treebank_free(&bank);
    loaded_free(&loaded);
    return status;
}

/* ---- plot --------------------------------------------------------------------------------- */

static int command_plot(int argc, char **argv) {
    RecursiveSettings s;
    settings_defaults(&s);
    parse_or_exit(argc, argv, &s, PLOT_OPTIONS,
                  "recursive_nn plot [--out DIR] [--checkpoint FILE]\n"
                  "Redraws loss/accuracy curves from DIR/metrics.csv, and the confusion matrix,\n"
                  "embeddings and --draw trees from the checkpoint.");
    char out[4096], task[64];
    settings_resolve(&s, "plot", out, sizeof out);
    Error err;
    if (!recursive_plot_curves(s.common.out, (PlotTerm)s.common.plot_term, &err)) return runtime_error(&err);
    Loaded loaded;
    if (!load_model(&s, &loaded, &err)) return runtime_error(&err);
    settings_from_checkpoint(&s, &loaded, argc, argv, task, sizeof task);
    RecursiveData data;
    if (!recursive_data_load(&data, s.task, &s.data, (unsigned long)s.common.seed, &err)) {
        loaded_free(&loaded);
        return runtime_error(&err);
    }
    Treebank *sets[4] = {&data.train, &data.dev, &data.test, &data.probe};
    for (int k = 0; k < 4; k++) tree_set_words(sets[k], &loaded.vocab);
    Graph g;
    graph_init(&g, 1 << 22, 256);
    Treebank *scored = data.test.count > 0 ? &data.test : &data.dev;
    Treebank *drawn = data.probe.count > 0 ? &data.probe : scored;
    RecursiveMetrics m, ignored;
    recursive_evaluate(&g, &loaded.model, scored, 64, &m, NULL);
    int **predictions = xmalloc((size_t)drawn->count * sizeof(int *));
    for (int t = 0; t < drawn->count; t++) predictions[t] = xmalloc((size_t)drawn->trees[t].count * sizeof(int));
    recursive_evaluate(&g, &loaded.model, drawn, 64, &ignored, predictions);
    PlotTarget target = {.dir = s.common.out, .term = (PlotTerm)s.common.plot_term};
    bool ok = recursive_plot_confusion(&target, &m, &err) &&
              recursive_plot_embeddings(&target, &loaded.model, &loaded.vocab, &data.train, &err);
    for (int t = 0; ok && t < s.draw && t < drawn->count; t++) {
        char stem[64], title[128];
        snprintf(stem, sizeof stem, "tree_%d", t + 1);
        snprintf(title, sizeof title, "%s tree %d (%s)", drawn == &data.probe ? "probe" : "test", t + 1,
                 recursive_model_names[loaded.model.config.kind]);
        ok = recursive_plot_tree(&target, stem, title, &drawn->trees[t], predictions[t], loaded.model.config.classes, &err);
    }
    for (int t = 0; t < drawn->count; t++) free(predictions[t]);
    free(predictions);
    graph_free(&g);
    recursive_data_free(&data);
    loaded_free(&loaded);
    if (!ok) return runtime_error(&err);
    printf("wrote plots in %s\n", s.common.out);
    return 0;
}

/* ---- export -------------------------------------------------------------------------------- */

static bool write_treebank(const char *dir, const char *name, const Treebank *bank, Error *err) {
    char *text = NULL, path[4096];
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL) fatal("open_memstream failed");
    for (int t = 0; t < bank->count; t++) {
        tree_write(out, &bank->trees[t], NULL);
        fputc('\n', out);
    }
    fclose(out);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    bool ok = file_write_atomic(path, text, size, err);
    free(text);
    return ok;
}

static int command_export(int argc, char **argv) {
    RecursiveSettings s;
    settings_defaults(&s);
    parse_or_exit(argc, argv, &s, EXPORT_OPTIONS,
                  "recursive_nn export --task sentiment|arith [--out DIR]\n"
                  "Writes the generated trees in SST format: DIR/train.txt dev.txt test.txt\n"
                  "(and probe.txt for sentiment); train on them again with --data DIR.");
    char out[4096];
    settings_resolve(&s, "export", out, sizeof out);
    Error err;
    RecursiveData data;
    if (!recursive_data_load(&data, s.task, &s.data, (unsigned long)s.common.seed, &err)) return runtime_error(&err);
    bool ok = make_directory(s.common.out, &err) && write_treebank(s.common.out, "train.txt", &data.train, &err) &&
              write_treebank(s.common.out, "dev.txt", &data.dev, &err) &&
              (data.test.count == 0 || write_treebank(s.common.out, "test.txt", &data.test, &err)) &&
              (data.probe.count == 0 || write_treebank(s.common.out, "probe.txt", &data.probe, &err));
    recursive_data_free(&data);
    if (!ok) return runtime_error(&err);
    printf("wrote %s/{train,dev,test%s}.txt\n", s.common.out, s.task == RECURSIVE_TASK_SENTIMENT ? ",probe" : "");
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "%s\n", USAGE);
        return argc < 2 ? EXIT_USAGE_ERROR : 0;
    }
    const struct { const char *name; int (*run)(int, char **); } commands[] = {
        {"train", command_train}, {"eval", command_eval}, {"predict", command_predict},
        {"plot", command_plot}, {"export", command_export}, {"bench", recursive_bench_command},
        {"dump", recursive_dump_command},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc, argv);
    fprintf(stderr, "recursive_nn: unknown command '%s'; expected train, eval, predict, plot, export, "
                    "bench or dump (see --help)\n", argv[1]);
    return EXIT_USAGE_ERROR;
}
