/* transformer/main.c: the command line of bin/transformer.
 *
 *   bin/transformer train    [options]   train, evaluate, checkpoint, plot
 *   bin/transformer eval     [options]   validation loss and accuracy of a checkpoint
 *   bin/transformer generate [options]   continue a prompt, or answer each line of
 *                                        --input FILE (GPT checkpoints)
 *   bin/transformer fill     [options]   predict the <mask> tokens (BERT checkpoints)
 *   bin/transformer classify [options]   the sentiment of a sentence (BERT classifiers)
 *   bin/transformer plot     [options]   attention maps, positions, embeddings, curves
 *   bin/transformer bench    [options]   training and generation speed
 *   bin/transformer <command> --help     every option with its default
 *
 * Legend: T context, V vocabulary.
 * Usage errors (a bad flag or value, a bad prompt) exit 2; runtime errors
 * (a missing or malformed file) exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "matmul.h"
#include "plot.h"
#include "transformer.h"

/* ==== Settings shared by the commands ============================================= */

typedef struct {
    CommonOptions common;
    TransformerTrainSettings train;
    int mode, positions;        /* OPTION_CHOICE indices                       */
    bool tie_head, no_bias;
    int d_ff;                   /* 0 = 4 d_model                               */
    long seed;
    /* generation and plots */
    const char *prompt;
    int tokens;
    float temperature, top_p;
    int top_k;
    bool greedy, no_cache;
    /* bench */
    int bench_config;
    int bench_steps;
    char default_out[256];
    char default_checkpoint[512];
} Settings;

static void settings_defaults(Settings *s) {
    memset(s, 0, sizeof *s);
    s->common = (CommonOptions){.task = "reverse", .steps = 2000, .batch = 32, .lr = 1e-3f,
                                .seed = 1, .threads = 1, .plot_term = PLOT_TERM_PNG};
    TransformerTrainSettings *t = &s->train;
    t->model = (TransformerConfig){.context = 64, .layers = 2, .heads = 4, .d_model = 64,
                                   .dropout = 0.0f};
    t->data = (TransformerDataOptions){.max_length = 8, .examples = 20000, .val_fraction = 0.1f};
    t->weight_decay = 0.01f, t->clip = 1.0f, t->min_lr_ratio = 0.1f;
    t->eval_every = 200, t->log_every = 10, t->eval_batches = 20;
    s->mode = TRANSFORMER_GPT, s->positions = TRANSFORMER_POS_LEARNED;
    s->tokens = 200, s->temperature = 0.8f, s->top_p = 1.0f;
    s->bench_steps = 20;
}

/* Options of the model and the data, shared by train and bench. */
static int model_options(Settings *s, Option *o) {
    TransformerTrainSettings *t = &s->train;
    const Option table[] = {
        {"mode", OPTION_CHOICE, &s->mode, "gpt: decoder with a causal mask; bert: encoder, no mask",
         "gpt|bert", 0, 0},
        {"layers", OPTION_INT, &t->model.layers, "transformer blocks", NULL, 1, TRANSFORMER_MAX_LAYERS},
        {"heads", OPTION_INT, &t->model.heads, "attention heads (must divide --d-model)", NULL, 1, 256},
        {"d-model", OPTION_INT, &t->model.d_model, "width of the residual stream", NULL, 2, 4096},
        {"d-ff", OPTION_INT, &s->d_ff, "feed-forward width; 0 = 4 x d-model", NULL, 0, 16384},
        {"context", OPTION_INT, &t->model.context, "longest sequence, in tokens", NULL, 2,
         TRANSFORMER_MAX_CONTEXT},
        {"pos", OPTION_CHOICE, &s->positions, "positional encoding", "sinusoidal|learned|none", 0, 0},
        {"tie-head", OPTION_FLAG, &s->tie_head, "the output head reuses the token embedding", NULL, 0, 0},
        {"no-bias", OPTION_FLAG, &s->no_bias, "no biases in the Linear layers", NULL, 0, 0},
        {"dropout", OPTION_FLOAT, &t->model.dropout, "dropout probability (0 = off)", NULL, 0, 0.95},
        {"task-length", OPTION_INT, &t->data.max_length,
         "copy/reverse/sort: longest prompt; add: most digits per number", NULL, 1, 64},
        {"examples", OPTION_INT, &t->data.examples,
         "examples (tasks) or sentences (toy, sentiment) to generate", NULL, 10, 10000000},
        {"val-data", OPTION_STRING, &t->data.val_data_path,
         "pairs: held-out source<TAB>target file (default: --val-fraction of --data)", NULL, 0, 0},
        {"val-fraction", OPTION_FLOAT, &t->data.val_fraction,
         "pairs without --val-data: share of the --data lines held out", NULL, 0, 0.9},
    };
    memcpy(o, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

static int training_options(Settings *s, Option *o) {
    TransformerTrainSettings *t = &s->train;
    const Option table[] = {
        {"weight-decay", OPTION_FLOAT, &t->weight_decay, "AdamW weight decay (matrices only)", NULL, 0, 1},
        {"warmup", OPTION_LONG, &t->warmup, "warmup steps; 0 = steps / 20", NULL, 0, 1e9},
        {"min-lr-ratio", OPTION_FLOAT, &t->min_lr_ratio, "final learning rate / --lr (cosine)", NULL, 0, 1},
        {"clip", OPTION_FLOAT, &t->clip, "clip the gradient norm to this (0 = off)", NULL, 0, 1e6},
        {"eval-every", OPTION_LONG, &t->eval_every, "steps between validation passes", NULL, 1, 1e9},
        {"eval-batches", OPTION_INT, &t->eval_batches, "validation batches per pass", NULL, 1, 100000},
        {"log-every", OPTION_LONG, &t->log_every, "steps per metrics.csv row", NULL, 1, 1e9},
        {"stop-after", OPTION_LONG, &t->stop_after,
         "stop (with a checkpoint) after this step, as if interrupted; 0 = run to --steps", NULL, 0, 1e9},
    };
    memcpy(o, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

static int generation_options(Settings *s, Option *o) {
    const Option table[] = {
        {"prompt", OPTION_STRING, &s->prompt,
         "text to continue; \\n is a newline (default: one for the task)", NULL, 0, 0},
        {"tokens", OPTION_INT, &s->tokens, "tokens to generate at most", NULL, 1, 1000000},
        {"temperature", OPTION_FLOAT, &s->temperature, "sampling temperature; 0 = greedy", NULL, 0, 100},
        {"top-k", OPTION_INT, &s->top_k, "sample among the k most probable; 0 = all", NULL, 0, 1000000},
        {"top-p", OPTION_FLOAT, &s->top_p, "sample among the most probable with this mass", NULL, 1e-6, 1},
        {"greedy", OPTION_FLAG, &s->greedy, "always the most probable token (= --temperature 0)", NULL, 0, 0},
        {"no-cache", OPTION_FLAG, &s->no_cache, "recompute every position (no KV cache)", NULL, 0, 0},
    };
    memcpy(o, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

/* Copies the parsed choices into the settings and fills derived defaults. */
static void settings_finish(Settings *s) {
    TransformerTrainSettings *t = &s->train;
    CommonOptions *c = &s->common;
    t->model.mode = (TransformerMode)s->mode;
    t->model.positions = (TransformerPositions)s->positions;
    t->model.tied_head = s->tie_head;
    t->model.bias = !s->no_bias;
    t->model.d_ff = s->d_ff > 0 ? s->d_ff : 4 * t->model.d_model;
    t->steps = c->steps, t->batch = c->batch, t->lr = c->lr, t->threads = c->threads;
    t->resume = c->resume, t->quiet = c->quiet, t->check_numerics = c->check_numerics;
    t->checkpoint_every = c->checkpoint_every, t->plot_term = c->plot_term;
    t->data.seed = (uint64_t)c->seed;
    t->data.data_path = c->data;
    if (!transformer_task_parse(c->task, &t->data.task)) {
        fprintf(stderr, "transformer: --task %s: expected copy, reverse, sort, add, toy, text, "
                        "words, sentiment or pairs (see --help)\n", c->task);
        exit(EXIT_USAGE_ERROR);
    }
    TransformerTask task = t->data.task;
    if (c->data && task != TRANSFORMER_TASK_WORDS && task != TRANSFORMER_TASK_TEXT &&
        task != TRANSFORMER_TASK_PAIRS)
        t->data.task = TRANSFORMER_TASK_TEXT; /* --data FILE: character-level text */
    t->data.context = t->model.context; /* pairs longer than this are skipped */
    snprintf(s->default_out, sizeof s->default_out, "runs/transformer-%s",
             transformer_task_name(t->data.task));
    t->out = c->out ? c->out : s->default_out;
    snprintf(s->default_checkpoint, sizeof s->default_checkpoint, "%s/model.safetensors", t->out);
    t->checkpoint = c->checkpoint;
}

static const char *checkpoint_path(const Settings *s) {
    return s->common.checkpoint ? s->common.checkpoint : s->default_checkpoint;
}

/* ==== Commands ======================================================================= */

/* The options of --task pairs, checked before any file is read. */
static void pairs_options_check(const Settings *s) {
    const TransformerDataOptions *d = &s->train.data;
    const char *problem = NULL;
    if (d->task != TRANSFORMER_TASK_PAIRS && d->val_data_path)
        problem = "--val-data is for --task pairs (with --data FILE of source<TAB>target lines)";
    else if (d->task == TRANSFORMER_TASK_PAIRS && d->data_path == NULL)
        problem = "--task pairs needs --data FILE of source<TAB>target lines";
    else if (d->task == TRANSFORMER_TASK_PAIRS && s->train.model.mode == TRANSFORMER_BERT)
        problem = "--task pairs trains a decoder to write the target after the source: use "
                  "--mode gpt (the default)";
    if (problem == NULL) return;
    fprintf(stderr, "transformer train: %s\n", problem);
    exit(EXIT_USAGE_ERROR);
}

static int command_train(int argc, char **argv) {
    Settings s;
    settings_defaults(&s);
    Option options[64];
    common_options_table(&s.common, options);
    int count = COMMON_OPTION_COUNT;
    count += model_options(&s, options + count);
    count += training_options(&s, options + count);
    options_parse_or_exit(argc, argv, 2, options, count,
                          "transformer train [options]\n"
                          "Trains a GPT- or BERT-style transformer; writes metrics.csv, "
                          "model.safetensors, config.txt and plots to --out.\n"
                          "--task copy|reverse|sort|add|toy|text|words|sentiment, or --task pairs "
                          "--data FILE: source<TAB>target lines, learnt as "
                          "source<sep>target<end> (GPT only; characters; a pair longer than "
                          "--context tokens is skipped, with a count on stderr).");
    settings_finish(&s);
    pairs_options_check(&s);
    s.train.options = options;
    s.train.option_count = count;
    return transformer_train(&s.train);
}

/* Loads --checkpoint, or exits with the reason. */
static void load_or_exit(const Settings *s, Transformer *m, Metadata *meta) {
    Error err;
    if (!transformer_load(checkpoint_path(s), m, meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
}

static int command_eval(int argc, char **argv) {
    Settings s;
    settings_defaults(&s);
    Option options[64];
    common_options_table(&s.common, options);
    options_parse_or_exit(argc, argv, 2, options, COMMON_OPTION_COUNT,
                          "transformer eval [--checkpoint FILE] [options]\n"
                          "Validation loss and accuracy of a checkpoint, on the data it was trained on.");
    settings_finish(&s);
    threads_set(s.common.threads);
    Transformer m;
    Metadata meta;
    load_or_exit(&s, &m, &meta);
    TransformerDataOptions data_options;
    TransformerData data;
    Error err;
    if (!transformer_data_options_from_metadata(&meta, &data_options, &err) ||
        !transformer_data_load(&data, &data_options, m.config.mode == TRANSFORMER_BERT, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    if (data.vocab.size != m.config.vocab) {
        fprintf(stderr, "tinyzoo: %s: the data now has %d tokens, the model %d; the data changed\n",
                checkpoint_path(&s), data.vocab.size, m.config.vocab);
        return EXIT_RUNTIME_ERROR;
    }
    Graph g;
    graph_init(&g, (size_t)16 << 20, 512);
    TransformerBatch batch;
    transformer_batch_alloc(&batch, s.common.batch, transformer_data_time(&data, m.config.context));
    TransformerEval eval = transformer_evaluate(&g, &m, &data, 1 << 20, &batch);
    printf("eval: val_loss=%.4f %s=%.4f\n", (double)eval.loss, eval.metric, (double)eval.accuracy);
    transformer_batch_free(&batch);
    graph_free(&g);
    transformer_data_free(&data);
    metadata_free(&meta);
    transformer_free(&m);
    return 0;
}

/* "\n" and "\t" in a prompt typed on the command line become the characters. */
static void unescape(const char *text, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < size; p++) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 't')) {
            out[n++] = p[1] == 'n' ? '\n' : '\t';
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* The prompt's ids, or exit 2 naming the problem.  Returns the count. */
static int prompt_ids(const Settings *s, const Metadata *meta, const Vocab *vocab, bool word_level,
                      int context, int *ids) {
    const char *task = metadata_get(meta, "task");
    const char *fallback = "the";
    char letters[] = "abcdefg>";
    if (task && strcmp(task, "words") == 0) fallback = "\\n";
    else if (task && strcmp(task, "add") == 0) fallback = "123+45=";
    else if (task && (strcmp(task, "copy") == 0 || strcmp(task, "reverse") == 0 ||
                      strcmp(task, "sort") == 0)) {
        /* "abcdefg>", cut to the longest prompt the model was trained on */
        const char *trained = metadata_get(meta, "task_length");
        int length = trained ? atoi(trained) : 7;
        if (length >= 1 && length < 7) letters[length] = '>', letters[length + 1] = '\0';
        fallback = letters;
    } else if (task && strcmp(task, "text") == 0) {
        fallback = vocab->tokens[0];
    } else if (task && strcmp(task, "pairs") == 0) {
        fallback = "<sep>"; /* the empty source */
    }
    char text[8192];
    unescape(s->prompt ? s->prompt : fallback, text, sizeof text);
    Error err;
    int count = transformer_encode_vocab(vocab, word_level, text, ids, TRANSFORMER_MAX_CONTEXT, &err);
    if (count < 0) {
        fprintf(stderr, "transformer: --prompt: %s\n", err.message);
        exit(EXIT_USAGE_ERROR);
    }
    if (count == 0) {
        fprintf(stderr, "transformer: --prompt is empty; give at least one token\n");
        exit(EXIT_USAGE_ERROR);
    }
    if (count > context) {
        fprintf(stderr, "transformer: --prompt has %d tokens, more than the model's context of %d\n",
                count, context);
        exit(EXIT_USAGE_ERROR);
    }
    return count;
}

/* The options of the commands that load a checkpoint (generate, fill,
 * classify, plot): the common ones they read, plus the generation ones for
 * generate; fill, classify and plot read only --prompt of those (the
 * sampling options would be accepted and silently ignored). */
static void parse_inference_options(int argc, char **argv, const char *usage, bool generates,
                                    Settings *s) {
    settings_defaults(s);
    /* Only the common options these commands read: --task and --data name
     * the default run directory (runs/transformer-<task>), the others are
     * for training and would be silently ignored. */
    static const char *const read_by_inference[] = {"task",    "data",      "out",  "checkpoint",
                                                     "seed",    "threads",   "plot-term",
                                                     "quiet",   "input",     NULL};
    Option common[COMMON_OPTION_COUNT], options[64];
    common_options_table(&s->common, common);
    int count = options_select(common, COMMON_OPTION_COUNT, read_by_inference, options);
    for (int i = 0; i < count; i++) {
        if (strcmp(options[i].name, "input") != 0) continue;
        if (!generates) { /* only generate reads --input */
            memmove(options + i, options + i + 1, (size_t)(count - i - 1) * sizeof *options);
            count--;
            break;
        }
        options[i].help = "example tasks: a file of prompts, one per line (for pairs, the "
                          "source; a TAB ends it); prints one greedy answer per line; - = stdin";
    }
    int generation = generation_options(s, options + count); /* --prompt first */
    if (!generates) {
        generation = 1;
        options[count].help = "the text to run the model on; \\n is a newline (default: one for the task)";
    }
    count += generation;
    options_parse_or_exit(argc, argv, 2, options, count, usage);
    settings_finish(s);
}

/* The separator token of the checkpoint's task when it is an example task
 * (copy, reverse, sort, add, pairs), else exit 2: --input needs answers. */
static int separator_or_exit(const Metadata *meta, const Vocab *vocab) {
    const char *name = metadata_get(meta, "task");
    TransformerTask task;
    const char *separator = name && transformer_task_parse(name, &task)
                                ? transformer_task_separator(task) : NULL;
    if (separator == NULL) {
        fprintf(stderr, "transformer generate: --input answers the example tasks (copy, reverse, "
                        "sort, add, pairs); this checkpoint's task %s continues one --prompt\n",
                name ? name : "(none)");
        exit(EXIT_USAGE_ERROR);
    }
    int id = vocab_find(vocab, separator);
    if (id < 0) {
        fprintf(stderr, "tinyzoo: the checkpoint's vocabulary lacks the separator \"%s\" of its "
                        "task %s\n", separator, name);
        exit(EXIT_RUNTIME_ERROR);
    }
    return id;
}

/* generate --input: each line (up to a TAB, if any) is a prompt; prints
 * its greedy answer on one line.  One Graph, cache and buffers serve every
 * line.  A line that cannot be a prompt (a character outside the
 * vocabulary of a task without <unk>, invalid UTF-8, too long for the
 * context) prints an empty line and a warning on stderr, so that output
 * line n always answers input line n. */
static int generate_lines(const Settings *s, const Transformer *m, const Metadata *meta,
                          const Vocab *vocab, int end_id) {
    int separator = separator_or_exit(meta, vocab);
    const char *name = strcmp(s->common.input, "-") == 0 ? "stdin" : s->common.input;
    FILE *input = strcmp(s->common.input, "-") == 0 ? stdin : fopen(s->common.input, "r");
    if (input == NULL) {
        fprintf(stderr, "tinyzoo: %s: cannot open the --input file\n", s->common.input);
        return EXIT_RUNTIME_ERROR;
    }
    int T = m->config.context, V = m->config.vocab;
    int *ids = xmalloc((size_t)T * sizeof(int));             /* (T) prompt, then answer */
    float *logits = xmalloc((size_t)V * sizeof(float));      /* (V) */
    size_t text_size = (size_t)T * 16 + 1;                   /* a token is at most "<unk>" or 4 bytes */
    char *text = xmalloc(text_size);
    TransformerCache cache;
    if (!s->no_cache) transformer_cache_init(&cache, &m->config);
    Graph g;
    graph_init(&g, (size_t)4 << 20, 256);
    char *line = NULL;
    size_t line_size = 0;
    ssize_t length;
    int number = 0, bad = 0;
    double start = time_seconds();
    while ((length = getline(&line, &line_size, input)) >= 0) {
        number++;
        while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) line[--length] = '\0';
        char *tab = strchr(line, '\t');
        if (tab) *tab = '\0'; /* a source<TAB>target line: the source alone */
        Error err;
        /* room for the separator and at least one answer token */
        int count = transformer_encode_literal(vocab, line, strlen(line), ids, T - 2, &err);
        text[0] = '\0';
        if (count < 0) {
            fprintf(stderr, "%s line %d: %s (--context %d holds the prompt, the separator and "
                            "the answer); printed an empty line\n", name, number, err.message, T);
            bad++;
        } else {
            ids[count++] = separator;
            int answer = transformer_answer(&g, m, s->no_cache ? NULL : &cache, ids, count,
                                            end_id, logits);
            transformer_decode(vocab, false, ids + count, answer, text, text_size);
        }
        printf("%s\n", text);
    }
    double seconds = time_seconds() - start;
    if (!s->common.quiet)
        fprintf(stderr, "answered %d lines in %.3f s (%s)\n", number, seconds,
                s->no_cache ? "no cache" : "KV cache");
    if (bad > 0) fprintf(stderr, "%s: %d of %d lines were not prompts (empty answers)\n", name, bad, number);
    free(line), free(text), free(logits), free(ids);
    if (!s->no_cache) transformer_cache_free(&cache);
    graph_free(&g);
    if (input != stdin) fclose(input);
    return 0;
}

static int command_generate(int argc, char **argv) {
    Settings s;
    parse_inference_options(argc, argv,
                            "transformer generate [--checkpoint FILE] [--prompt TEXT | --input FILE] "
                            "[options]\n"
                            "Continues a prompt with a GPT checkpoint: greedy, or sampled with "
                            "temperature, top-k and top-p.\n"
                            "With --input FILE (example tasks: copy, reverse, sort, add, pairs): "
                            "appends the task's separator to each line, decodes greedily (always; "
                            "the sampling options and --tokens do not apply) until the end token "
                            "or the full context, and prints the answer alone, one line per "
                            "input line.",
                            true, &s);
    if (s.common.input && s.prompt) {
        fprintf(stderr, "transformer generate: --input and --prompt: give one of them\n");
        return EXIT_USAGE_ERROR;
    }
    threads_set(s.common.threads);
    Transformer m;
    Metadata meta;
    load_or_exit(&s, &m, &meta);
    if (m.config.mode != TRANSFORMER_GPT) {
        fprintf(stderr, "transformer: %s is an encoder (bert); generate needs a gpt model "
                        "(try `fill` with <mask> tokens)\n", checkpoint_path(&s));
        return EXIT_USAGE_ERROR;
    }
    Vocab vocab;
    bool word_level;
    Error err;
    long end_id;
    if (!transformer_vocab_from_metadata(&meta, &vocab, &word_level, &err) ||
        !metadata_get_int(&meta, "end_id", &end_id, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    if (s.common.input) {
        int status = generate_lines(&s, &m, &meta, &vocab, (int)end_id);
        vocab_free(&vocab);
        metadata_free(&meta);
        transformer_free(&m);
        return status;
    }
    int *ids = xmalloc((size_t)(TRANSFORMER_MAX_CONTEXT + s.tokens) * sizeof(int));
    int prompt_count = prompt_ids(&s, &meta, &vocab, word_level, m.config.context, ids);
    const char *task = metadata_get(&meta, "task");
    /* Example tasks end their answer with "."; text goes on for --tokens. */
    bool stops = task && strcmp(task, "toy") != 0 && strcmp(task, "text") != 0 &&
                 strcmp(task, "words") != 0;
    TransformerSampling sampling = {.temperature = s.greedy ? 0 : s.temperature, .top_k = s.top_k,
                                    .top_p = s.top_p};
    Rng rng;
    rng_seed(&rng, (uint64_t)s.common.seed, 6);
    Graph g;
    graph_init(&g, (size_t)4 << 20, 256);
    int *out = xmalloc((size_t)(prompt_count + s.tokens) * sizeof(int));
    double start = time_seconds();
    int total = transformer_generate(&g, &m, ids, prompt_count, s.tokens, stops ? (int)end_id : -1,
                                     &sampling, &rng, !s.no_cache, out);
    double seconds = time_seconds() - start;
    size_t size = (size_t)total * 64 + 16;
    char *text = xmalloc(size);
    printf("%s\n", transformer_decode(&vocab, word_level, out, total, text, size));
    if (!s.common.quiet)
        fprintf(stderr, "generated %d tokens in %.3f s (%.0f tok/s, %s)\n", total - prompt_count,
                seconds, (total - prompt_count) / (seconds > 0 ? seconds : 1e-9),
                s.no_cache ? "no cache" : "KV cache");
    free(text), free(out), free(ids);
    graph_free(&g);
    vocab_free(&vocab);
    metadata_free(&meta);
    transformer_free(&m);
    return 0;
}

/* The checkpoint's vocabulary and the prompt's ids (or exit). */
typedef struct {
    Transformer m;
    Metadata meta;
    Vocab vocab;
    bool word_level;
    int ids[TRANSFORMER_MAX_CONTEXT];
    int count;
} Loaded;

static void load_with_prompt(const Settings *s, Loaded *l) {
    load_or_exit(s, &l->m, &l->meta);
    Error err;
    if (!transformer_vocab_from_metadata(&l->meta, &l->vocab, &l->word_level, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    l->count = prompt_ids(s, &l->meta, &l->vocab, l->word_level, l->m.config.context, l->ids);
}

static void loaded_free(Loaded *l) {
    vocab_free(&l->vocab);
    metadata_free(&l->meta);
    transformer_free(&l->m);
}

/* Hidden states (1, T, C) of the prompt, no gradients. */
static Tensor *prompt_hidden(Graph *g, const Loaded *l) {
    g->no_grad = true, g->training = false;
    TransformerInput in = {.ids = l->ids, .batch = 1, .time = l->count};
    return transformer_forward(g, &l->m, &in);
}

static int command_fill(int argc, char **argv) {
    Settings s;
    parse_inference_options(argc, argv,
                            "transformer fill --checkpoint FILE --prompt 'the <mask> eats the hay'\n"
                            "Predicts every <mask> token of the prompt with a BERT (encoder) checkpoint.",
                            false, &s);
    Loaded l;
    load_with_prompt(&s, &l);
    int mask = vocab_find(&l.vocab, "<mask>");
    if (l.m.config.mode != TRANSFORMER_BERT || l.m.config.classes > 0 || mask < 0) {
        fprintf(stderr, "transformer: fill needs a bert checkpoint trained on masked tokens "
                        "(toy, text or words with --mode bert)\n");
        return EXIT_USAGE_ERROR;
    }
    Graph g;
    graph_init(&g, (size_t)4 << 20, 256);
    Tensor *logits = transformer_lm_logits(&g, &l.m, prompt_hidden(&g, &l)); /* (1, T, V) */
    int V = l.m.config.vocab, filled[TRANSFORMER_MAX_CONTEXT], masks = 0;
    memcpy(filled, l.ids, (size_t)l.count * sizeof(int));
    for (int t = 0; t < l.count; t++) {
        if (l.ids[t] != mask) continue;
        masks++;
        /* softmax of this position, then the three most probable tokens */
        const float *z = logits->data + (size_t)t * V;
        float highest = z[0], total = 0;
        for (int v = 1; v < V; v++) highest = z[v] > highest ? z[v] : highest;
        for (int v = 0; v < V; v++) total += expf(z[v] - highest);
        int best[3] = {-1, -1, -1};
        for (int k = 0; k < 3; k++)
            for (int v = 0; v < V; v++) {
                bool taken = v == mask || v == best[0] || v == best[1];
                if (!taken && (best[k] < 0 || z[v] > z[best[k]])) best[k] = v;
            }
        filled[t] = best[0];
        printf("position %d:", t);
        for (int k = 0; k < 3; k++)
            printf(" %s (%.2f)", l.vocab.tokens[best[k]], (double)(expf(z[best[k]] - highest) / total));
        printf("\n");
    }
    if (masks == 0) {
        fprintf(stderr, "transformer: --prompt has no <mask> token to fill\n");
        return EXIT_USAGE_ERROR;
    }
    char text[16384];
    printf("%s\n", transformer_decode(&l.vocab, l.word_level, filled, l.count, text, sizeof text));
    graph_free(&g);
    loaded_free(&l);
    return 0;
}

static int command_classify(int argc, char **argv) {
    Settings s;
    parse_inference_options(argc, argv,
                            "transformer classify --checkpoint FILE --prompt 'the plot is not good'\n"
                            "Sentiment of a sentence (0 very negative .. 4 very positive) with a "
                            "BERT classifier checkpoint.",
                            false, &s);
    Loaded l;
    load_with_prompt(&s, &l);
    if (l.m.config.classes <= 0) {
        fprintf(stderr, "transformer: classify needs a classifier checkpoint (--mode bert --task sentiment)\n");
        return EXIT_USAGE_ERROR;
    }
    Graph g;
    graph_init(&g, (size_t)4 << 20, 256);
    int lengths[1] = {l.count};
    Tensor *logits = transformer_class_logits(&g, &l.m, prompt_hidden(&g, &l), lengths); /* (1, K) */
    int K = l.m.config.classes, best = 0;
    float highest = logits->data[0], total = 0;
    for (int k = 1; k < K; k++) highest = logits->data[k] > highest ? logits->data[k] : highest;
    for (int k = 0; k < K; k++) total += expf(logits->data[k] - highest);
    printf("class probabilities:");
    for (int k = 0; k < K; k++) {
        printf(" %d:%.3f", k, (double)(expf(logits->data[k] - highest) / total));
        if (logits->data[k] > logits->data[best]) best = k;
    }
    printf("\nclass: %d\n", best);
    graph_free(&g);
    loaded_free(&l);
    return 0;
}

/* Where plot draws: --out, else the directory of --checkpoint (so a plot
 * lands beside the run it reads, never in runs/transformer-<task>, which
 * may hold another run), else the task's default run directory. */
static const char *plot_directory(const Settings *s, char *buffer, size_t size) {
    if (s->common.out || s->common.checkpoint == NULL) return s->train.out;
    snprintf(buffer, size, "%s", s->common.checkpoint);
    char *slash = strrchr(buffer, '/');
    if (slash == NULL) return ".";
    slash[slash == buffer ? 1 : 0] = '\0'; /* "/model.safetensors" -> "/" */
    return buffer;
}

static int command_plot(int argc, char **argv) {
    Settings s;
    parse_inference_options(argc, argv,
                            "transformer plot --checkpoint FILE [--prompt TEXT] [--out DIR]\n"
                            "Attention maps of every layer and head on the prompt, the positional "
                            "encodings, the embedding PCA, and (when --out has metrics.csv) the curves.\n"
                            "Without --out, the plots go to the checkpoint's directory.",
                            false, &s);
    Loaded l;
    load_with_prompt(&s, &l);
    Error err;
    TransformerData data; /* only what the plots read: vocabulary and tokenisation */
    memset(&data, 0, sizeof data);
    data.vocab = l.vocab;
    data.word_level = l.word_level;
    const char *task = metadata_get(&l.meta, "task");
    if (task) transformer_task_parse(task, &data.task);
    Graph g;
    graph_init(&g, (size_t)4 << 20, 256);
    char directory[2048];
    const char *dir = plot_directory(&s, directory, sizeof directory);
    int term = s.common.plot_term;
    if (!make_directory(dir, &err) ||
        !transformer_plot_attention(&g, &l.m, &data, l.ids, l.count, dir, term, &err) ||
        !transformer_plot_positions(&l.m, dir, term, &err) ||
        !transformer_plot_embeddings(&l.m, &data, dir, term, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    char metrics[4096];
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", dir);
    if (access(metrics, R_OK) == 0 && !transformer_plot_curves(dir, term, "Transformer", &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!s.common.quiet) fprintf(stderr, "plots written to %s/\n", dir);
    graph_free(&g);
    loaded_free(&l);
    return 0;
}

static int command_bench(int argc, char **argv) {
    Settings s;
    settings_defaults(&s);
    const Option options[] = {
        {"config", OPTION_CHOICE, &s.bench_config, "model size (see README)", "tiny|base|medium", 0, 0},
        {"threads", OPTION_INT, &s.common.threads, "worker threads", NULL, 1, 256},
        {"steps", OPTION_INT, &s.bench_steps, "timed training steps", NULL, 1, 100000},
        {"quiet", OPTION_FLAG, &s.common.quiet, "only the result lines", NULL, 0, 0},
    };
    int count = (int)(sizeof options / sizeof options[0]);
    options_parse_or_exit(argc, argv, 2, options, count,
                          "transformer bench [--config tiny|base|medium] [--threads N]\n"
                          "Times training steps on random tokens, then generation with and "
                          "without the KV cache.");
    const char *names[] = {"tiny", "base", "medium"};
    return transformer_bench(names[s.bench_config], s.common.threads, s.bench_steps, s.common.quiet);
}

/* ==== main ============================================================================ */

static const char USAGE[] =
    "usage: transformer <command> [options]\n"
    "A GPT-style decoder and a BERT-style encoder, trained on built-in tasks or a text file.\n"
    "commands:\n"
    "  train      train a model (--task copy|reverse|sort|add|toy|text|words|sentiment|pairs)\n"
    "  eval       validation loss and accuracy of a checkpoint\n"
    "  generate   continue a prompt (GPT); greedy or sampled, with a KV cache; or answer\n"
    "             each line of --input FILE (copy, reverse, sort, add, pairs)\n"
    "  fill       predict the <mask> tokens of a prompt (BERT, masked tokens)\n"
    "  classify   the sentiment class of a sentence (BERT classifier)\n"
    "  plot       attention maps for a prompt, positional encoding, embedding PCA, curves\n"
    "  bench      tokens/s of training and generation (--config tiny|base|medium)\n"
    "  parity     dump weights, a batch, loss and gradients for the PyTorch comparison\n"
    "`transformer <command> --help` lists the command's options with their defaults.";

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "%s\n", USAGE);
        return argc < 2 ? EXIT_USAGE_ERROR : 0;
    }
    const char *command = argv[1];
    if (strcmp(command, "train") == 0) return command_train(argc, argv);
    if (strcmp(command, "eval") == 0) return command_eval(argc, argv);
    if (strcmp(command, "generate") == 0) return command_generate(argc, argv);
    if (strcmp(command, "bench") == 0) return command_bench(argc, argv);
    if (strcmp(command, "fill") == 0) return command_fill(argc, argv);
    if (strcmp(command, "classify") == 0) return command_classify(argc, argv);
    if (strcmp(command, "plot") == 0) return command_plot(argc, argv);
    if (strcmp(command, "parity") == 0) return transformer_command_parity(argc, argv);
    fprintf(stderr, "transformer: unknown command '%s' (see --help)\n", command);
    return EXIT_USAGE_ERROR;
}
