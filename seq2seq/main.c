/* seq2seq/main.c: the command line of bin/seq2seq.
 *
 *   bin/seq2seq train     --task reverse --attention bahdanau   train, plot, save
 *   bin/seq2seq eval      --checkpoint runs/x/model.safetensors  loss, accuracy, BLEU
 *   bin/seq2seq translate --checkpoint ... [--input FILE]         one output per line
 *   bin/seq2seq plot      --runs runs/a,runs/b                    accuracy vs length, runs compared
 *   bin/seq2seq export    --task reverse --out DIR                the task's data as TSV files
 *   bin/seq2seq bench     --cell gru --threads 2                  sequences/s and ms/step
 *   bin/seq2seq parity    --out DIR                               weights, batch, loss and
 *                                                                 gradients for the PyTorch check
 * `bin/seq2seq <command> --help` lists every option with its default.
 *
 * Legend: B batch, S source steps, T decoder steps, V vocabulary.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "matmul.h"
#include "seq2seq.h"

/* ---- Options: one table, each option tagged with the commands using it ---- */

enum { CMD_TRAIN = 1, CMD_EVAL = 2, CMD_TRANSLATE = 4, CMD_PLOT = 8, CMD_BENCH = 16, CMD_PARITY = 32,
       CMD_EXPORT = 64 };
enum { MAX_OPTIONS = 64 };

typedef struct {
    const char *name;
    int commands;
} OptionUse;

/* Which commands read each shared option. */
static const OptionUse COMMON_USE[] = {
    {"task", CMD_TRAIN | CMD_EVAL | CMD_EXPORT},
    {"data", CMD_TRAIN | CMD_EVAL | CMD_EXPORT}, /* export: only to refuse it */
    {"input", CMD_TRANSLATE},
    {"out", CMD_TRAIN | CMD_EVAL | CMD_TRANSLATE | CMD_PLOT | CMD_PARITY | CMD_EXPORT},
    {"checkpoint", CMD_TRAIN | CMD_EVAL | CMD_TRANSLATE},
    {"checkpoint-every", CMD_TRAIN}, {"steps", CMD_TRAIN | CMD_BENCH},
    {"batch", CMD_TRAIN | CMD_EVAL | CMD_BENCH | CMD_PARITY}, {"lr", CMD_TRAIN | CMD_BENCH},
    {"seed", CMD_TRAIN | CMD_EVAL | CMD_PLOT | CMD_BENCH | CMD_PARITY | CMD_EXPORT},
    {"threads", CMD_TRAIN | CMD_EVAL | CMD_TRANSLATE | CMD_PLOT | CMD_BENCH}, {"resume", CMD_TRAIN},
    {"plot-term", CMD_TRAIN | CMD_TRANSLATE | CMD_PLOT},
    {"quiet", CMD_TRAIN | CMD_EVAL | CMD_TRANSLATE | CMD_PLOT},
    {"check-numerics", CMD_TRAIN},
};

static int build_options(Seq2seqSettings *s, int command, Option *options) {
    Option common[COMMON_OPTION_COUNT];
    common_options_table(&s->common, common);
    const char *names[sizeof COMMON_USE / sizeof COMMON_USE[0] + 1]; /* NULL-terminated */
    int named = 0;
    for (size_t u = 0; u < sizeof COMMON_USE / sizeof COMMON_USE[0]; u++)
        if (COMMON_USE[u].commands & command) names[named++] = COMMON_USE[u].name;
    names[named] = NULL;
    int count = options_select(common, COMMON_OPTION_COUNT, names, options);
    for (int i = 0; command == CMD_EXPORT && i < count; i++) { /* what they mean to export */
        if (strcmp(options[i].name, "out") == 0)
            options[i].help = "directory for train.tsv, val.tsv and length.tsv (required; made like mkdir -p)";
        if (strcmp(options[i].name, "data") == 0)
            options[i].help = "refused: export writes a built-in --task's data, a --data file is data already";
    }
    const int MODEL = CMD_TRAIN | CMD_BENCH | CMD_PARITY, DECODE = CMD_EVAL | CMD_TRANSLATE;
    const int TASK = CMD_TRAIN | CMD_EXPORT, CHART = CMD_TRAIN | CMD_EVAL | CMD_PLOT | CMD_EXPORT;
    const struct { Option option; int commands; } own[] = {
        {{"cell", OPTION_CHOICE, &s->cell, "recurrent cell of encoder and decoder", "gru|lstm", 0, 0}, MODEL},
        {{"attention", OPTION_CHOICE, &s->attention,
          "none: the decoder sees only the final encoder state (the fixed-length context vector)",
          "none|bahdanau|luong", 0, 0}, MODEL},
        {{"layers", OPTION_INT, &s->layers, "stacked recurrent layers", NULL, 1, SEQ2SEQ_MAX_LAYERS}, MODEL},
        {{"embed", OPTION_INT, &s->embed, "token embedding size E", NULL, 1, 4096}, MODEL},
        {{"hidden", OPTION_INT, &s->hidden, "hidden size H of every recurrent layer", NULL, 1, 4096}, MODEL},
        {{"teacher-forcing", OPTION_FLOAT, &s->teacher_forcing,
          "probability that a decoder step reads the true previous token (else its own guess)", NULL, 0, 1},
         CMD_TRAIN},
        {{"lr-schedule", OPTION_CHOICE, &s->lr_schedule,
          "learning rate: constant, or a short warmup then cosine decay to lr/20", "constant|cosine", 0, 0},
         CMD_TRAIN},
        {{"stop-at", OPTION_LONG, &s->stop_at,
          "stop this session after this step of the --steps run (0: run to the end); --resume continues",
          NULL, 0, 1e9}, CMD_TRAIN},
        {{"clip", OPTION_FLOAT, &s->clip, "clip the global gradient norm to this (0: off)", NULL, 0, 1e6}, CMD_TRAIN},
        {{"min-length", OPTION_INT, &s->min_length, "shortest source of a built-in task", NULL, 1, 64}, TASK},
        {{"max-length", OPTION_INT, &s->max_length,
          "longest source of a built-in task (0: 10, or 32 for dates, which covers every format)", NULL, 0, 64},
         TASK},
        {{"symbols", OPTION_INT, &s->symbols, "alphabet size of copy/reverse/sort (letters a..)", NULL, 2, 26}, TASK},
        {{"val-size", OPTION_INT, &s->val_size, "held-out examples of a built-in task", NULL, 1, 1000000},
         CMD_TRAIN | CMD_EVAL | CMD_EXPORT},
        {{"train-size", OPTION_INT, &s->train_size,
          "training examples to write: the first ones train draws for this --seed", NULL, 1, 10000000},
         CMD_EXPORT},
        {{"val-fraction", OPTION_FLOAT, &s->val_fraction,
          "--data: held-out fraction of the pairs (ignored with --val-data)", NULL, 0, 0.9}, CMD_TRAIN},
        {{"val-data", OPTION_STRING, &s->val_data,
          "--data: read the held-out pairs from this TSV file instead of carving --val-fraction", NULL, 0, 0},
         CMD_TRAIN},
        {{"tokens", OPTION_CHOICE, &s->tokens, "--data: characters or space-separated words", "char|word", 0, 0}, CMD_TRAIN},
        {{"lowercase", OPTION_FLAG, &s->lowercase, "--data: lowercase both sides", NULL, 0, 0}, CMD_TRAIN},
        {{"max-tokens", OPTION_INT, &s->max_tokens, "--data: drop pairs with more tokens than this", NULL, 1, 10000},
         CMD_TRAIN | CMD_EVAL},
        {{"eval-every", OPTION_LONG, &s->eval_every, "steps between validation passes", NULL, 1, 1e9}, CMD_TRAIN},
        {{"eval-min-length", OPTION_INT, &s->eval_min_length, "accuracy-vs-length chart: shortest source", NULL, 1, 64},
         CHART},
        {{"eval-max-length", OPTION_INT, &s->eval_max_length,
          "accuracy-vs-length chart: longest source (0: 1.5 x --max-length, at most 64)", NULL, 0, 64},
         CHART},
        {{"eval-per-length", OPTION_INT, &s->eval_per_length, "examples per length on that chart", NULL, 1, 100000},
         CHART},
        {{"heatmaps", OPTION_INT, &s->heatmaps, "attention heatmaps of validation examples to plot", NULL, 0, 100}, CMD_TRAIN},
        {{"beam", OPTION_INT, &s->beam, "beam width (1: greedy decoding)", NULL, 1, 1000}, DECODE},
        {{"length-penalty", OPTION_FLOAT, &s->length_penalty,
          "beam: rank finished outputs by log p / length^this (0: no normalisation)", NULL, 0, 10}, DECODE},
        {{"show-attention", OPTION_FLAG, &s->show_attention,
          "print each alignment as text, unless --quiet (and plot it into --out when given)", NULL, 0, 0},
         CMD_TRANSLATE},
        {{"runs", OPTION_STRING, &s->runs, "comma-separated run directories to compare", NULL, 0, 0}, CMD_PLOT},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (own[i].commands & command) options[count++] = own[i].option;
    return count;
}

static void default_settings(Seq2seqSettings *s, int command) {
    memset(s, 0, sizeof *s);
    s->common = (CommonOptions){.task = "reverse", .steps = 3000, .batch = 64, .lr = 3e-3f,
                                .seed = 1, .threads = 1, .plot_term = PLOT_TERM_PNG};
    s->cell = SEQ2SEQ_GRU, s->attention = SEQ2SEQ_BAHDANAU, s->layers = 1;
    s->embed = 32, s->hidden = 128;
    s->teacher_forcing = 1.0f, s->clip = 1.0f, s->lr_schedule = 1;
    s->min_length = 1, s->max_length = 0, s->symbols = 10;
    s->eval_min_length = 1, s->eval_max_length = 0, s->eval_per_length = 200;
    s->val_size = 1000, s->train_size = 20000, s->val_fraction = 0.1f, s->max_tokens = 50;
    s->eval_every = 250, s->beam = 1, s->length_penalty = 1.0f, s->heatmaps = 3;
    if (command == CMD_BENCH) s->common.steps = 20, s->attention = SEQ2SEQ_NO_ATTENTION;
    if (command == CMD_PARITY) s->common.batch = 3, s->embed = 5, s->hidden = 6, s->layers = 1;
    if (command == CMD_EVAL) s->common.batch = 256;
}

static const char *default_out(const Seq2seqSettings *s, char *buffer, size_t size) {
    if (s->common.out) return s->common.out;
    if (s->common.data) {
        const char *base = strrchr(s->common.data, '/');
        base = base ? base + 1 : s->common.data;
        snprintf(buffer, size, "runs/seq2seq-%.*s", (int)strcspn(base, "."), base);
    } else {
        snprintf(buffer, size, "runs/seq2seq-%s", s->common.task);
    }
    return buffer;
}

/* The accuracy-against-length chart goes half as far again as the training
 * lengths, to show where a model stops generalising; dates stop at their
 * longest format. */
static int eval_max_default(int requested, int max_length, const char *task) {
    if (requested > 0) return requested;
    if (task && strcmp(task, "dates") == 0) return max_length;
    return max_length + max_length / 2 < 64 ? max_length + max_length / 2 : 64;
}

/* The lengths left at 0 (their task's default), shared by train and export
 * so that both see the same examples; false after a usage message. */
static bool resolve_task_lengths(Seq2seqSettings *s, const char *command) {
    if (s->max_length == 0) s->max_length = strcmp(s->common.task, "dates") == 0 ? 32 : 10;
    s->eval_max_length = eval_max_default(s->eval_max_length, s->max_length, s->common.task);
    if (s->eval_min_length > s->eval_max_length) {
        fprintf(stderr, "seq2seq %s: --eval-min-length %d is above --eval-max-length %d\n", command,
                s->eval_min_length, s->eval_max_length);
        return false;
    }
    if (s->common.data == NULL && seq2seq_task_from_name(s->common.task) < 0) {
        fprintf(stderr, "seq2seq %s: --task %s: expected copy, reverse, sort, add or dates\n",
                command, s->common.task);
        return false;
    }
    return true;
}

/* ---- train ------------------------------------------------------------------- */

static int command_train(Seq2seqSettings *s, const Option *options, int count) {
    char out[4096];
    s->common.out = default_out(s, out, sizeof out);
    if (s->val_data && s->common.data == NULL) {
        fprintf(stderr, "seq2seq train: --val-data %s needs --data FILE (a built-in task holds out "
                "its own examples; `seq2seq export` writes both as files)\n", s->val_data);
        return EXIT_USAGE_ERROR;
    }
    if (!resolve_task_lengths(s, "train")) return EXIT_USAGE_ERROR;
    return seq2seq_train(s, options, count);
}

/* ---- loading a trained model ------------------------------------------------------ */

typedef struct {
    Seq2seqModel model;
    Seq2seqVocabs vocabs;
    Metadata meta;
    int max_target; /* longest training target, from the metadata */
} Loaded;

static void load_or_exit(const Seq2seqSettings *s, Loaded *loaded) {
    char out[4096], path[4200];
    const char *file = s->common.checkpoint;
    if (file == NULL) {
        snprintf(path, sizeof path, "%s/model.safetensors", default_out(s, out, sizeof out));
        file = path;
    }
    Error err;
    if (!seq2seq_load(file, &loaded->model, &loaded->vocabs, &loaded->meta, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    long max_target = 32;
    if (!metadata_get_int(&loaded->meta, "data.max_target", &max_target, &err)) max_target = 32;
    loaded->max_target = (int)max_target;
}

static void loaded_free(Loaded *loaded) {
    seq2seq_model_free(&loaded->model);
    seq2seq_vocabs_free(&loaded->vocabs);
    metadata_free(&loaded->meta);
}

/* The task a checkpoint was trained on, as settings for seq2seq_data_build. */
static bool task_settings_from(const Metadata *meta, Seq2seqSettings *s, Error *err) {
    static char task[32];
    const char *name = metadata_get(meta, "data.task");
    long min_length, max_length, symbols;
    const char *val_data = metadata_get(meta, "data.val_data");
    if ((name == NULL || name[0] == '\0') && val_data && val_data[0])
        return error_set(err, "this checkpoint was trained on a --data file; pass --data FILE to "
                         "evaluate it (its held-out pairs came from --val-data %s)", val_data);
    if (name == NULL || name[0] == '\0')
        return error_set(err, "this checkpoint was trained on a --data file; pass --data FILE to "
                         "evaluate it");
    if (!metadata_get_int(meta, "data.min_length", &min_length, err) ||
        !metadata_get_int(meta, "data.max_length", &max_length, err) ||
        !metadata_get_int(meta, "data.symbols", &symbols, err))
        return false;
    snprintf(task, sizeof task, "%s", name);
    s->common.task = task, s->common.data = NULL;
    s->min_length = (int)min_length, s->max_length = (int)max_length, s->symbols = (int)symbols;
    return true;
}

/* ---- eval ------------------------------------------------------------------------ */

/* Every pair of a TSV file, tokenized with the checkpoint's vocabularies. */
static bool dataset_from_file(const char *path, const Loaded *loaded, int max_tokens,
                              Seq2seqDataset *d, Error *err) {
    const char *lowercase = metadata_get(&loaded->meta, "data.lowercase");
    PairList list;
    if (!tsv_read_pairs(path, 4096, lowercase && strcmp(lowercase, "1") == 0, &list, err)) return false;
    int *src = xmalloc((size_t)(max_tokens + 1) * sizeof(int)), *tgt = xmalloc((size_t)(max_tokens + 1) * sizeof(int));
    memset(d, 0, sizeof *d);
    for (int i = 0; i < list.count; i++) {
        bool words = loaded->vocabs.words;
        int ns = seq2seq_tokenize(&loaded->vocabs.source, words, list.pairs[i].source, src, max_tokens);
        int nt = seq2seq_tokenize(&loaded->vocabs.target, words, list.pairs[i].target, tgt, max_tokens);
        if (ns >= 1 && nt >= 0) seq2seq_dataset_add(d, src, ns, tgt, nt);
    }
    free(src), free(tgt);
    pair_list_free(&list);
    if (d->count == 0) return error_set(err, "%s: no pair with 1..%d tokens", path, max_tokens);
    return true;
}

static int command_eval(Seq2seqSettings *s) {
    threads_set(s->common.threads);
    Loaded loaded;
    load_or_exit(s, &loaded);
    Error err;
    Seq2seqData data = {0};
    Seq2seqDataset file_set = {0};
    const Seq2seqDataset *set;
    bool from_task = s->common.data == NULL;
    if (!from_task) {
        if (!dataset_from_file(s->common.data, &loaded, s->max_tokens, &file_set, &err))
            error_exit(&err, EXIT_RUNTIME_ERROR);
        set = &file_set;
    } else {
        if (!task_settings_from(&loaded.meta, s, &err) || !seq2seq_data_build(s, &data, &err))
            error_exit(&err, EXIT_RUNTIME_ERROR);
        set = &data.validation;
    }
    Graph g;
    graph_init(&g, 16 << 20, 4096);
    Seq2seqScores scores = seq2seq_evaluate(&g, &loaded.model, set, s->common.batch, s->beam, s->length_penalty);
    printf("eval: examples=%d beam=%d loss=%.4f token_accuracy=%.4f exact_match=%.4f bleu=%.4f\n",
           scores.count, s->beam, scores.loss, scores.token_accuracy, scores.exact_match, scores.bleu);
    if (from_task) {
        int low = s->eval_min_length, high = eval_max_default(s->eval_max_length, s->max_length, s->common.task);
        float *accuracy = xmalloc((size_t)(high - low + 1) * sizeof(float));
        Rng rng;
        rng_seed(&rng, (uint64_t)s->common.seed, 5);
        seq2seq_length_accuracy(&g, &loaded.model, &data, low, high, s->eval_per_length, s->beam,
                                s->length_penalty, &rng, accuracy);
        printf("source length  exact match (%s, %d examples each; trained on %d..%d)\n",
               s->beam > 1 ? "beam search, as above" : "greedy", s->eval_per_length, s->min_length,
               s->max_length);
        for (int length = low; length <= high; length++)
            if (accuracy[length - low] >= 0) printf("%13d  %.3f\n", length, (double)accuracy[length - low]);
        free(accuracy);
        seq2seq_data_free(&data);
    }
    seq2seq_dataset_free(&file_set);
    graph_free(&g);
    loaded_free(&loaded);
    return 0;
}

/* ---- translate --------------------------------------------------------------------- */

/* The alignment as text: one row per output token, one column per source
 * token, darker characters for larger weights. */
static void print_alignment(const Seq2seqVocabs *v, const int *source, int S, const int *output,
                            int n, const float *weights) {
    static const char SHADES[] = " .:-=+*#%@";
    int width = 1;
    for (int j = 0; j < S; j++) {
        int length = (int)strlen(v->source.tokens[source[j]]);
        if (length > width) width = length;
    }
    printf("%8s", "");
    for (int j = 0; j < S; j++) printf(" %*s", width, v->source.tokens[source[j]]);
    printf("\n");
    for (int i = 0; i <= n; i++) {
        printf("%8.8s", v->target.tokens[i < n ? output[i] : SEQ2SEQ_EOS]);
        for (int j = 0; j < S; j++) {
            float w = weights[(size_t)i * S + j];
            int shade = (int)lroundf(w * 9.0f);
            printf(" %*c", width, SHADES[shade < 0 ? 0 : shade > 9 ? 9 : shade]);
        }
        printf("\n");
    }
}

static int command_translate(Seq2seqSettings *s) {
    threads_set(s->common.threads);
    Loaded loaded;
    load_or_exit(s, &loaded);
    FILE *input = stdin;
    if (s->common.input && (input = fopen(s->common.input, "r")) == NULL) {
        fprintf(stderr, "tinyzoo: %s: cannot open the --input file\n", s->common.input);
        loaded_free(&loaded);
        return EXIT_RUNTIME_ERROR;
    }
    bool interactive = s->common.input == NULL && isatty(STDIN_FILENO);
    bool attention = loaded.model.config.attention != SEQ2SEQ_NO_ATTENTION;
    if (s->show_attention && !attention && !s->common.quiet)
        fprintf(stderr, "note: this model has no attention (--attention none); nothing to show\n");
    const char *lowercase = metadata_get(&loaded.meta, "data.lowercase");
    int max_steps = 2 * loaded.max_target + 2, capacity = 1024;
    int *source = xmalloc((size_t)capacity * sizeof(int)), *output = xmalloc((size_t)max_steps * sizeof(int));
    float *weights = xmalloc((size_t)max_steps * capacity * sizeof(float));
    char text[16384];
    char *line = NULL;
    size_t line_size = 0;
    Graph g;
    graph_init(&g, 4 << 20, 1024);
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    Error err;
    int number = 0, status = 0;
    if (interactive) fprintf(stderr, "Type a source line, Enter to translate, Ctrl-D to quit.\n> ");
    ssize_t length;
    while ((length = getline(&line, &line_size, input)) >= 0) {
        number++;
        while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) line[--length] = '\0';
        /* source<TAB>target lines (a --data or exported file) translate
         * their source: the text up to the first TAB. */
        char *tab = strchr(line, '\t');
        if (tab) *tab = '\0';
        if (lowercase && strcmp(lowercase, "1") == 0) text_lowercase(line); /* as --data was, at training */
        int S = seq2seq_tokenize(&loaded.vocabs.source, loaded.vocabs.words, line, source, capacity);
        if (S < 0) {
            fprintf(stderr, "tinyzoo: %s line %d: invalid UTF-8 or more than %d tokens\n",
                    s->common.input ? s->common.input : "stdin", number, capacity);
            status = EXIT_RUNTIME_ERROR;
            break;
        }
        int n = 0;
        if (S > 0) {
            bool show = s->show_attention && attention;
            if (s->beam > 1)
                n = seq2seq_beam_search(&g, &loaded.model, source, S, s->beam, s->length_penalty,
                                        max_steps, output, show ? weights : NULL);
            else
                seq2seq_greedy(&g, &loaded.model, source, &S, 1, S, max_steps, output, &n,
                               show ? weights : NULL);
        }
        seq2seq_detokenize(&loaded.vocabs.target, loaded.vocabs.words, output, n, text, sizeof text);
        printf("%s\n", text);
        if (S > 0 && s->show_attention && attention) {
            int rows = n < max_steps ? n : max_steps - 1; /* rows n+1 hold <eos> when it came */
            /* --quiet: stdout holds the outputs alone, one line per input line */
            if (!s->common.quiet) print_alignment(&loaded.vocabs, source, S, output, rows, weights);
            char stem[64];
            snprintf(stem, sizeof stem, "attention_line%d", number);
            if (s->common.out && !seq2seq_plot_attention(&target, stem, &loaded.vocabs, source, S,
                                                         output, rows, weights, &err))
                error_exit(&err, EXIT_RUNTIME_ERROR);
        }
        fflush(stdout);
        if (interactive) fprintf(stderr, "> ");
    }
    if (interactive) fprintf(stderr, "\n");
    free(line), free(source), free(output), free(weights);
    if (input != stdin) fclose(input);
    graph_free(&g);
    loaded_free(&loaded);
    return status;
}

/* ---- plot: accuracy against length, several runs on one chart --------------------- */

static const char *attention_label(int attention) {
    return attention == SEQ2SEQ_BAHDANAU ? "Bahdanau attention"
           : attention == SEQ2SEQ_LUONG  ? "Luong attention"
                                         : "no attention (context vector only)";
}

static int command_plot(Seq2seqSettings *s) {
    if (s->runs == NULL) {
        fprintf(stderr, "seq2seq plot: --runs DIR1,DIR2,... is required (see --help)\n");
        return EXIT_USAGE_ERROR;
    }
    threads_set(s->common.threads);
    enum { MAX_RUNS = 8 };
    char list[4096], names[MAX_RUNS][128];
    snprintf(list, sizeof list, "%s", s->runs);
    const char *dirs[MAX_RUNS];
    int runs = 0;
    for (char *dir = strtok(list, ","); dir && runs < MAX_RUNS; dir = strtok(NULL, ",")) dirs[runs++] = dir;
    float *accuracy[MAX_RUNS];
    const char *labels[MAX_RUNS];
    int low = s->eval_min_length, high = 0, train_max = 0;
    Graph g;
    graph_init(&g, 16 << 20, 4096);
    Error err;
    for (int r = 0; r < runs; r++) {
        Seq2seqSettings run = *s;
        run.common.checkpoint = NULL, run.common.out = dirs[r], run.val_size = 1;
        Loaded loaded;
        load_or_exit(&run, &loaded);
        Seq2seqData data;
        if (!task_settings_from(&loaded.meta, &run, &err) || !seq2seq_data_build(&run, &data, &err))
            error_exit(&err, EXIT_RUNTIME_ERROR);
        if (r == 0) high = eval_max_default(s->eval_max_length, run.max_length, run.common.task), train_max = run.max_length;
        if (low > high) low = high;
        accuracy[r] = xmalloc((size_t)(high - low + 1) * sizeof(float));
        Rng rng; /* the same examples for every run */
        rng_seed(&rng, (uint64_t)s->common.seed, 5);
        seq2seq_length_accuracy(&g, &loaded.model, &data, low, high, s->eval_per_length, 1, 0.0f,
                                &rng, accuracy[r]); /* greedy, as the chart of train */
        snprintf(names[r], sizeof names[r], "%s, %s", attention_label(loaded.model.config.attention),
                 seq2seq_cell_name(loaded.model.config.cell));
        labels[r] = names[r];
        seq2seq_data_free(&data);
        loaded_free(&loaded);
    }
    const char *out = s->common.out ? s->common.out : "runs/seq2seq-compare";
    if (!make_directory(out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    PlotTarget target = {.dir = out, .term = (PlotTerm)s->common.plot_term};
    if (!seq2seq_plot_length_chart(&target, "seq2seq: exact match against source length", low, high,
                                   (const float *const *)accuracy, labels, runs, train_max, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    printf("length");
    for (int r = 0; r < runs; r++) printf("  %s", dirs[r]);
    printf("\n");
    for (int length = low; length <= high; length++) {
        printf("%6d", length);
        for (int r = 0; r < runs; r++) printf("  %*.3f", (int)strlen(dirs[r]), (double)accuracy[r][length - low]);
        printf("\n");
    }
    if (!s->common.quiet) printf("wrote %s/length_accuracy.{dat,gp%s}\n", out,
                                 target.term == PLOT_TERM_PNG ? ",png" : "");
    for (int r = 0; r < runs; r++) free(accuracy[r]);
    graph_free(&g);
    return 0;
}

/* ---- export: a built-in task's data as TSV files ------------------------------------ */

/* Appends pairs as "source<TAB>target" lines.  A task's vocabularies hold
 * every character it writes, so ids -> text gives back the generated text. */
static void append_pairs(FILE *text, const Seq2seqVocabs *v, const Seq2seqPair *pairs, int count) {
    char source[512], target[512];
    for (int i = 0; i < count; i++) {
        seq2seq_detokenize(&v->source, false, pairs[i].source, pairs[i].source_length, source, sizeof source);
        seq2seq_detokenize(&v->target, false, pairs[i].target, pairs[i].target_length, target, sizeof target);
        fprintf(text, "%s\t%s\n", source, target);
    }
}

/* One file's text, built in memory and written whole (file_write_atomic). */
enum { EXPORT_FILES = 3 }; /* train.tsv, val.tsv, length.tsv */
typedef struct {
    const char *name;
    char *text;
    size_t size;
    int pairs;
} ExportFile;

static FILE *export_open(ExportFile *file, const char *name) {
    file->name = name, file->text = NULL, file->size = 0, file->pairs = 0;
    FILE *stream = open_memstream(&file->text, &file->size);
    if (stream == NULL) fatal("export_open: open_memstream failed for %s", name);
    return stream;
}

/* train.tsv: the first train_size examples that `train` draws for this
 * seed, in its order (lines 1..B are step 1's batch, and so on): the same
 * stream (seed, 1) and the same seq2seq_data_sample, so never a held-out one. */
static void export_train(const Seq2seqSettings *s, const Seq2seqData *d, ExportFile *file) {
    FILE *text = export_open(file, "train.tsv");
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 1);
    Seq2seqPair pair = {.source = xmalloc((size_t)d->max_source * sizeof(int)),
                        .target = xmalloc((size_t)d->max_target * sizeof(int))};
    for (; file->pairs < s->train_size; file->pairs++) {
        seq2seq_data_sample(d, &rng, &pair);
        append_pairs(text, &d->vocabs, &pair, 1);
    }
    free(pair.source), free(pair.target);
    fclose(text);
}

/* val.tsv: the validation set of train and eval, as seq2seq_data_build made it. */
static void export_validation(const Seq2seqData *d, ExportFile *file) {
    FILE *text = export_open(file, "val.tsv");
    append_pairs(text, &d->vocabs, d->validation.pairs, d->validation.count);
    file->pairs = d->validation.count;
    fclose(text);
}

/* length.tsv: the accuracy-against-length chart's examples, stream (seed, 5)
 * through the lengths in order, as seq2seq_length_accuracy draws them. */
static void export_length_set(const Seq2seqSettings *s, const Seq2seqData *d, ExportFile *file) {
    FILE *text = export_open(file, "length.tsv");
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 5);
    for (int length = s->eval_min_length; length <= s->eval_max_length; length++) {
        Seq2seqDataset set = {0};
        file->pairs += seq2seq_length_examples(d, length, s->eval_per_length, &rng, &set);
        append_pairs(text, &d->vocabs, set.pairs, set.count);
        seq2seq_dataset_free(&set);
    }
    fclose(text);
}

/* Creates dir (mkdir -p) and writes the files; on a failure removes those
 * already written, and dir itself when this call created it. */
static bool write_export(const char *dir, const ExportFile files[EXPORT_FILES], Error *err) {
    bool existed = path_is_directory(dir);
    if (!make_directory(dir, err)) return false;
    char path[EXPORT_FILES][4200];
    int written = 0;
    for (; written < EXPORT_FILES; written++) {
        snprintf(path[written], sizeof path[written], "%s/%s", dir, files[written].name);
        if (!file_write_atomic(path[written], files[written].text, files[written].size, err)) break;
    }
    if (written == EXPORT_FILES) return true;
    for (int f = 0; f < written; f++) remove(path[f]);
    if (!existed) rmdir(dir);
    return false;
}

static int command_export(Seq2seqSettings *s) {
    if (s->common.data) {
        fprintf(stderr, "seq2seq export: --data %s: export writes a built-in --task's data; a --data "
                "file is data already (train on it with --data and --val-data)\n", s->common.data);
        return EXIT_USAGE_ERROR;
    }
    if (s->common.out == NULL) {
        fprintf(stderr, "seq2seq export: --out DIR is required: where train.tsv, val.tsv and "
                "length.tsv go (see --help)\n");
        return EXIT_USAGE_ERROR;
    }
    if (!resolve_task_lengths(s, "export")) return EXIT_USAGE_ERROR;
    Error err;
    Seq2seqData data;
    if (!seq2seq_data_build(s, &data, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    ExportFile files[EXPORT_FILES];
    export_train(s, &data, &files[0]);
    export_validation(&data, &files[1]);
    export_length_set(s, &data, &files[2]);
    bool ok = write_export(s->common.out, files, &err);
    for (int f = 0; f < EXPORT_FILES; f++) {
        if (ok) printf("wrote %s/%s: %d pairs\n", s->common.out, files[f].name, files[f].pairs);
        free(files[f].text);
    }
    seq2seq_data_free(&data);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
    return 0;
}

/* ---- bench --------------------------------------------------------------------------- */

/* Random tokens in [SEQ2SEQ_SPECIALS, V): all sequences full length, as in
 * tests/bench/seq2seq_torch.py. */
static void random_pairs(Seq2seqPair *pairs, int B, int S, int T, int V, Rng *rng) {
    for (int b = 0; b < B; b++) {
        pairs[b].source_length = S, pairs[b].target_length = T;
        for (int t = 0; t < S; t++) pairs[b].source[t] = SEQ2SEQ_SPECIALS + (int)rng_below(rng, (uint32_t)(V - SEQ2SEQ_SPECIALS));
        for (int t = 0; t < T; t++) pairs[b].target[t] = SEQ2SEQ_SPECIALS + (int)rng_below(rng, (uint32_t)(V - SEQ2SEQ_SPECIALS));
    }
}

static int command_bench(Seq2seqSettings *s) {
    enum { LENGTH = 12, VOCAB = 32, REPEATS = 5, WARMUP = 3 };
    threads_set(s->common.threads);
    int B = s->common.batch;
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 1);
    Seq2seqConfig config = {s->cell, s->attention, s->layers, s->embed, s->hidden, VOCAB, VOCAB};
    Seq2seqModel model;
    seq2seq_model_build(&model, &config, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    Seq2seqPair *pairs = xcalloc((size_t)B, sizeof *pairs);
    for (int b = 0; b < B; b++)
        pairs[b].source = xmalloc(LENGTH * sizeof(int)), pairs[b].target = xmalloc(LENGTH * sizeof(int));
    random_pairs(pairs, B, LENGTH, LENGTH, VOCAB, &rng);
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, B, LENGTH, LENGTH);
    seq2seq_batch_fill(&batch, pairs, NULL, B);
    Graph g;
    graph_init(&g, 16 << 20, 4096);
    double best = INFINITY;
    float loss = 0;
    for (int round = 0; round < REPEATS + 1; round++) {
        long steps = round == 0 ? WARMUP : s->common.steps;
        double start = time_seconds();
        for (long step = 0; step < steps; step++) {
            graph_reset(&g);
            params_zero_grad(&model.params);
            Seq2seqOutput out = seq2seq_forward(&g, &model, &batch, 1.0f, NULL);
            loss = out.loss->data[0];
            graph_backward(&g, out.loss);
            optimizer_step(&opt, &model.params, s->common.lr);
        }
        double per_step = (time_seconds() - start) / (double)steps;
        if (round > 0 && per_step < best) best = per_step;
    }
    printf("tinyzoo seq2seq bench: cell=%s attention=%s layers=%d embed=%d hidden=%d vocab=%d "
           "length=%d batch=%d threads=%d: %.3f ms/step, %.0f seq/s (loss %.3f, best of %d x %ld steps)\n",
           seq2seq_cell_name(s->cell), seq2seq_attention_name(s->attention), s->layers, s->embed,
           s->hidden, VOCAB, LENGTH, B, s->common.threads, best * 1e3, B / best, (double)loss, REPEATS,
           s->common.steps);
    for (int b = 0; b < B; b++) free(pairs[b].source), free(pairs[b].target);
    free(pairs);
    seq2seq_batch_free(&batch);
    graph_free(&g);
    optimizer_free(&opt);
    seq2seq_model_free(&model);
    return 0;
}

/* ---- parity: one batch's loss and gradients, for tests/parity/seq2seq_parity.py ---- */

/* A tensor of the dump holding `count` ints as floats. */
static void dump_ints(ParamSet *dump, const char *name, const int *values, int rows, int cols) {
    Tensor *t = &dump->tensors[params_find(dump, name)];
    (void)rows, (void)cols;
    for (int i = 0; i < t->numel; i++) t->data[i] = (float)values[i];
}

static int command_parity(Seq2seqSettings *s) {
    const char *out = s->common.out ? s->common.out : "runs/seq2seq-parity";
    enum { VOCAB = 11, MAX_SOURCE = 6, MAX_TARGET = 5 };
    int B = s->common.batch;
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 7);
    Seq2seqConfig config = {s->cell, s->attention, s->layers, s->embed, s->hidden, VOCAB, VOCAB + 2};
    Seq2seqModel model;
    seq2seq_model_build(&model, &config, &rng);
    /* Different lengths in one batch, so padding and masks are exercised. */
    Seq2seqPair *pairs = xcalloc((size_t)B, sizeof *pairs);
    for (int b = 0; b < B; b++) {
        pairs[b].source = xmalloc(MAX_SOURCE * sizeof(int)), pairs[b].target = xmalloc(MAX_TARGET * sizeof(int));
        pairs[b].source_length = b == 0 ? MAX_SOURCE : 1 + (int)rng_below(&rng, MAX_SOURCE);
        pairs[b].target_length = b == 1 ? MAX_TARGET : (int)rng_below(&rng, MAX_TARGET + 1);
        for (int t = 0; t < pairs[b].source_length; t++) pairs[b].source[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, VOCAB - SEQ2SEQ_SPECIALS);
        for (int t = 0; t < pairs[b].target_length; t++) pairs[b].target[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, VOCAB + 2 - SEQ2SEQ_SPECIALS);
    }
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, B, MAX_SOURCE, MAX_TARGET);
    seq2seq_batch_fill(&batch, pairs, NULL, B);
    Graph g;
    graph_init(&g, 1 << 20, 1024);
    params_zero_grad(&model.params);
    Seq2seqOutput result = seq2seq_forward(&g, &model, &batch, 1.0f, NULL);
    graph_backward(&g, result.loss);

    /* One safetensors file: parameters, "grad.<name>", the batch, loss, logits. */
    ParamSet dump;
    params_init(&dump);
    char name[PARAM_NAME_MAX];
    for (int i = 0; i < model.params.count; i++) {
        const Tensor *p = &model.params.tensors[i];
        params_add(&dump, model.params.names[i], p->ndim, p->shape, false);
        snprintf(name, sizeof name, "grad.%s", model.params.names[i]);
        params_add(&dump, name, p->ndim, p->shape, false);
    }
    params_add_of(&dump, "batch.source", false, 2, batch.S, B);
    params_add_of(&dump, "batch.source_lengths", false, 1, B);
    params_add_of(&dump, "batch.decoder_inputs", false, 2, batch.T, B);
    params_add_of(&dump, "batch.targets", false, 2, batch.T, B);
    params_add_of(&dump, "loss", false, 1, 1);
    params_add_of(&dump, "logits", false, 2, batch.T * B, config.target_vocab);
    params_allocate(&dump);
    for (int i = 0; i < model.params.count; i++) {
        const Tensor *p = &model.params.tensors[i];
        memcpy(dump.tensors[2 * i].data, p->data, (size_t)p->numel * sizeof(float));
        memcpy(dump.tensors[2 * i + 1].data, p->grad, (size_t)p->numel * sizeof(float));
    }
    dump_ints(&dump, "batch.source", batch.source, batch.S, B);
    dump_ints(&dump, "batch.source_lengths", batch.source_lengths, 1, B);
    dump_ints(&dump, "batch.decoder_inputs", batch.decoder_inputs, batch.T, B);
    dump_ints(&dump, "batch.targets", batch.targets, batch.T, B);
    dump.tensors[params_find(&dump, "loss")].data[0] = result.loss->data[0];
    memcpy(dump.tensors[params_find(&dump, "logits")].data, result.logits->data,
           (size_t)result.logits->numel * sizeof(float));
    Metadata meta;
    metadata_init(&meta);
    seq2seq_config_to_metadata(&config, &meta);
    Error err;
    char path[4200];
    if (!make_directory(out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/parity.safetensors", out);
    if (!checkpoint_save(path, &dump, NULL, &meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    printf("wrote %s: loss %.6f\n", path, (double)result.loss->data[0]);
    metadata_free(&meta);
    params_free(&dump);
    for (int b = 0; b < B; b++) free(pairs[b].source), free(pairs[b].target);
    free(pairs);
    seq2seq_batch_free(&batch);
    graph_free(&g);
    seq2seq_model_free(&model);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int id;
    const char *usage;
} COMMANDS[] = {
    {"train", CMD_TRAIN, "seq2seq train [options]\nTrains an RNN encoder-decoder on a built-in task or a --data TSV file; writes the run directory."},
    {"eval", CMD_EVAL, "seq2seq eval [options]\nLoss, token accuracy, exact match and BLEU of a checkpoint on its task's held-out set or on --data."},
    {"translate", CMD_TRANSLATE, "seq2seq translate [options]\nReads source lines (--input or stdin) and prints one output per line; "
     "a line with a TAB is translated up to the TAB, so a source<TAB>target file can be the input."},
    {"plot", CMD_PLOT, "seq2seq plot --runs DIR1,DIR2 [options]\nExact match against source length for several runs, on one chart."},
    {"export", CMD_EXPORT, "seq2seq export --task TASK --out DIR [options]\nWrites a built-in task's data as "
     "source<TAB>target files: train.tsv (--train-size examples as train draws them), val.tsv (train's held-out set), "
     "length.tsv (the accuracy-against-length chart's examples)."},
    {"bench", CMD_BENCH, "seq2seq bench [options]\nTraining speed on random data: embed 32, hidden 128, vocabulary 32, length 12, batch 64, Adam."},
    {"parity", CMD_PARITY, "seq2seq parity [options]\nWrites parity.safetensors (weights, batch, loss, gradients) for tests/parity/seq2seq_parity.py."},
};

static void print_commands(FILE *out) {
    fprintf(out, "usage: seq2seq <command> [options]   (seq2seq <command> --help for its options)\n"
                 "An RNN encoder-decoder with a fixed-length context vector, attention and beam search.\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, strchr(COMMANDS[i].usage, '\n') + 1);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_commands(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE_ERROR : 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(argv[1], COMMANDS[i].name) != 0) continue;
        Seq2seqSettings s;
        Option options[MAX_OPTIONS];
        default_settings(&s, COMMANDS[i].id);
        int count = build_options(&s, COMMANDS[i].id, options);
        options_parse_or_exit(argc, argv, 2, options, count, COMMANDS[i].usage);
        switch (COMMANDS[i].id) {
        case CMD_TRAIN: return command_train(&s, options, count);
        case CMD_EVAL: return command_eval(&s);
        case CMD_TRANSLATE: return command_translate(&s);
        case CMD_PLOT: return command_plot(&s);
        case CMD_EXPORT: return command_export(&s);
        case CMD_BENCH: return command_bench(&s);
        default: return command_parity(&s);
        }
    }
    fprintf(stderr, "seq2seq: unknown command '%s'; expected train, eval, translate, plot, export, "
            "bench or parity (see --help)\n", argv[1]);
    return EXIT_USAGE_ERROR;
}
