/* transformer/transformer.h: a GPT-style decoder and a BERT-style encoder.
 *
 * Legend (every file of this folder uses it):
 *   B batch, T time (positions in the context), C d_model (channels),
 *   H heads, D head size (C / H), F d_ff (feed-forward width),
 *   V vocabulary, K classes (encoder classification), L layers,
 *   N examples in a data set, S tokens in a stream.
 *
 * Reading order of the folder:
 *   model.c      config, parameters, the forward pass (embedding, blocks,
 *                head), losses, and one step of generation with a KV cache
 *   attention.c  the fused multi-head attention op: forward and backward
 *   kernels.c    the other custom ops (embedding + positions, pooling) and
 *                the parallel pointwise layers the speed targets need
 *   tasks.c      data: copy/reverse/sort/add, source<TAB>target pairs, the
 *                toy farm language, text files, word lists, sentiment
 *                sentences; batches
 *   train.c      the training loop, evaluation, checkpoints
 *   generate.c   greedy and sampled decoding, with or without the cache
 *   plots.c      loss, learning rate, attention maps, positional encoding,
 *                embedding PCA
 *   bench.c      tokens/s against the configs of the issue
 *   main.c       the command line
 */
#ifndef TINYZOO_TRANSFORMER_H
#define TINYZOO_TRANSFORMER_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint.h"
#include "cli.h"
#include "data.h"
#include "nn.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

enum { TRANSFORMER_MAX_LAYERS = 32, TRANSFORMER_MAX_CONTEXT = 4096 };

/* ==== Model ============================================================== */

typedef enum {
    TRANSFORMER_POS_SINUSOIDAL, /* fixed sin/cos table (Vaswani et al. 2017)   */
    TRANSFORMER_POS_LEARNED,    /* a (T, C) parameter, as GPT-2               */
    TRANSFORMER_POS_NONE        /* no position signal (tests, demonstrations)  */
} TransformerPositions;

typedef enum {
    TRANSFORMER_GPT,  /* decoder: causal mask, predicts the next token      */
    TRANSFORMER_BERT  /* encoder: sees both sides, predicts masked tokens or
                         classifies the whole sequence                     */
} TransformerMode;

typedef struct {
    int vocab;        /* V, from the data                                   */
    int context;      /* longest sequence T the model accepts               */
    int layers;       /* L blocks                                           */
    int heads;        /* H; d_model must be a multiple of it                */
    int d_model;      /* C                                                  */
    int d_ff;         /* F, the feed-forward width (usually 4 C)            */
    int classes;      /* K for the encoder's classification head; 0 = none  */
    TransformerPositions positions;
    TransformerMode mode;
    bool tied_head;   /* the output head reuses the token embedding         */
    bool bias;        /* biases on every Linear                             */
    float dropout;    /* probability, 0 = off                               */
} TransformerConfig;

const char *transformer_positions_name(TransformerPositions positions);
const char *transformer_mode_name(TransformerMode mode);
/* False with a one-line message when sizes are out of range or inconsistent. */
bool transformer_config_check(const TransformerConfig *config, Error *err);

/* One pre-LayerNorm block:
 *   x = x + proj(attention(qkv(ln1(x))))
 *   x = x + fc_out(gelu(fc_in(ln2(x))))                                    */
typedef struct {
    LayerNorm ln1;  /* (C)                                                   */
    Linear qkv;     /* weight (3C, C): the rows of Wq, Wk, Wv stacked        */
    Linear proj;    /* weight (C, C): mixes the heads' outputs               */
    LayerNorm ln2;  /* (C)                                                   */
    Linear fc_in;   /* weight (F, C)                                         */
    Linear fc_out;  /* weight (C, F)                                         */
} TransformerBlock;

typedef struct {
    TransformerConfig config;
    ParamSet params;
    Embedding token_embedding;  /* table (V, C)                                */
    Tensor *position_embedding; /* (T, C): a parameter when learned, a fixed
                                   malloc'd table when sinusoidal, NULL when none */
    TransformerBlock blocks[TRANSFORMER_MAX_LAYERS];
    LayerNorm ln_final;         /* (C)                                         */
    Linear head;                /* weight (V, C), or NULL when tied; bias (V)   */
    Linear classifier;          /* weight (K, C), bias (K); only when classes > 0 */
} Transformer;

/* Declares and allocates every parameter (the names match the PyTorch
 * module in tests/parity/transformer_parity.py). */
void transformer_build(Transformer *model, const TransformerConfig *config);
/* GPT-2's initialisation: weights N(0, 0.02^2), the two residual output
 * projections scaled by 1/sqrt(2L), biases 0, LayerNorm gains 1. */
void transformer_init(Transformer *model, Rng *rng);
void transformer_free(Transformer *model);
/* The sinusoidal table: PE[t, 2i] = sin(t / 10000^(2i/C)),
 * PE[t, 2i+1] = cos(t / 10000^(2i/C)).  table (T, C). */
void transformer_sinusoidal_table(float *table, int T, int C);

/* One batch of token ids for the forward pass. */
typedef struct {
    const int *ids;      /* (B, T)                                             */
    const int *lengths;  /* (B) real tokens in each row; the rest is padding
                            that attention ignores.  NULL = all T are real.    */
    int batch;           /* B                                                  */
    int time;            /* T <= context                                       */
    Rng *dropout_rng;    /* used when config.dropout > 0 and g->training       */
    float **attention;   /* out, optional: (L) pointers to each layer's
                            probabilities (B, H, T, T), valid until graph_reset */
} TransformerInput;

/* The hidden states after the final LayerNorm: (B, T, C). */
Tensor *transformer_forward(Graph *g, const Transformer *model, const TransformerInput *in);
/* hidden (B, T, C) -> logits (B, T, V): the language-model head. */
Tensor *transformer_lm_logits(Graph *g, const Transformer *model, Tensor *hidden);
/* hidden (B, T, C) -> logits (B, K): mean over the real tokens, then the
 * classifier. */
Tensor *transformer_class_logits(Graph *g, const Transformer *model, Tensor *hidden,
                                 const int *lengths);

/* ==== Custom ops (attention.c, kernels.c) ================================ */

/* Multi-head scaled dot-product attention, fused into one op.
 *   qkv (B, T, 3C): row (b, t) is [q | k | v], head h in columns h*D..h*D+D-1
 *   of each third.   -> out (B, T, C), head h's result in its D columns.
 * causal: position i sees keys j <= i.  lengths (B) or NULL: keys j >= length
 * are masked (padding).  *probabilities (optional) receives the softmax
 * weights (B, H, T, T), kept in the graph's arena. */
Tensor *transformer_attention(Graph *g, Tensor *qkv, int heads, bool causal, const int *lengths,
                              float **probabilities);
/* out (B, T, C) = table[ids] + positions[first_position + t]; positions (Tmax, C)
 * or NULL.  Gradients scatter into the table and sum over B into positions. */
Tensor *transformer_embed(Graph *g, Tensor *table, Tensor *positions, const int *ids, int B,
                          int T, int first_position);
/* x (B, T, C) -> (B, C): the mean over the first lengths[b] positions. */
Tensor *transformer_mean_pool(Graph *g, Tensor *x, const int *lengths);

/* ==== Generation with a key/value cache ================================== */

/* The keys and values of every position seen so far, for one sequence:
 * a new token attends to them instead of recomputing them. */
typedef struct {
    int capacity;   /* T: the model's context                               */
    int length;     /* positions cached                                     */
    float *keys;    /* (L, T, C)                                            */
    float *values;  /* (L, T, C)                                            */
} TransformerCache;

void transformer_cache_init(TransformerCache *cache, const TransformerConfig *config);
void transformer_cache_free(TransformerCache *cache);
/* Runs token `id` at position cache->length, appends its keys and values,
 * and writes the next-token logits (V).  Uses g (no gradients) for scratch. */
void transformer_cache_step(Graph *g, const Transformer *model, TransformerCache *cache, int id,
                            float *logits);
/* The same logits from a full forward pass over ids (count): logits (V) of
 * the last position.  What the cache saves us from. */
void transformer_last_logits(Graph *g, const Transformer *model, const int *ids, int count,
                             float *logits);
/* Attention of one new position (B = 1) against the cache of one layer:
 * qkv (3C) of the new token; writes its k, v at row `position` of
 * keys/values (T, C), then out (C).  probabilities (H, position+1) optional. */
void transformer_attention_cached(const float *qkv, float *keys, float *values, int position,
                                  int C, int heads, float *out, float *probabilities);

/* ==== Data and tasks (tasks.c) =========================================== */

typedef enum {
    TRANSFORMER_TASK_COPY,
    TRANSFORMER_TASK_REVERSE,
    TRANSFORMER_TASK_SORT,
    TRANSFORMER_TASK_ADD,
    TRANSFORMER_TASK_TOY,       /* generated farm language, word level       */
    TRANSFORMER_TASK_TEXT,      /* --data FILE, character level              */
    TRANSFORMER_TASK_WORDS,     /* one word per line: invent new words       */
    TRANSFORMER_TASK_SENTIMENT, /* common/sentiment.h, encoder classification */
    TRANSFORMER_TASK_PAIRS,     /* --data FILE of source<TAB>target lines     */
    TRANSFORMER_TASK_COUNT
} TransformerTask;

/* "copy" ... "pairs"; false when unknown. */
bool transformer_task_parse(const char *name, TransformerTask *task);
const char *transformer_task_name(TransformerTask task);
/* The token between prompt and answer of the example tasks (">" for
 * copy/reverse/sort, "=" for add, "<sep>" for pairs); NULL for the others. */
const char *transformer_task_separator(TransformerTask task);

/* --task pairs: lines longer than this (bytes) are skipped and counted. */
enum { TRANSFORMER_PAIRS_MAX_LINE_BYTES = 4 * TRANSFORMER_MAX_CONTEXT };

typedef enum {
    TRANSFORMER_STREAM,   /* one long token sequence: language modelling     */
    TRANSFORMER_EXAMPLES, /* prompt, separator, answer: loss on the answer    */
    TRANSFORMER_CLASSIFY  /* a sentence and a label                          */
} TransformerDataKind;

typedef struct {
    TransformerTask task;
    const char *data_path;    /* --data, or NULL                            */
    const char *val_data_path; /* pairs: --val-data, or NULL                 */
    float val_fraction;       /* pairs without --val-data: held-out share    */
    int context;              /* pairs: longer examples are skipped (tokens) */
    int max_length;           /* copy/reverse/sort: symbols; add: digits     */
    int examples;             /* N generated examples / sentences            */
    uint64_t seed;
} TransformerDataOptions;

typedef struct {
    TransformerTask task;
    TransformerDataKind kind;
    bool word_level;          /* tokens are words (toy, sentiment) or chars  */
    Vocab vocab;
    int pad_id, mask_id;      /* -1 when the vocabulary has none            */
    int end_id;               /* ends an answer or a word; -1 when none       */
    /* TRANSFORMER_STREAM */
    int *stream;              /* (S) token ids                               */
    long stream_length;       /* S                                           */
    long train_end;           /* [0, train_end) trains, the rest validates    */
    /* TRANSFORMER_EXAMPLES and TRANSFORMER_CLASSIFY */
    int count;                /* N                                           */
    int width;                /* longest example, in tokens                 */
    int *tokens;              /* (N, width) ids, padded with pad_id          */
    int *lengths;             /* (N) tokens before the padding              */
    int *answer_start;        /* (N) position of the first answer token      */
    int *labels;              /* (N) class, TRANSFORMER_CLASSIFY only         */
    int *train;               /* (train_count) example indices               */
    int *validation;          /* (validation_count)                          */
    int train_count, validation_count;
    int classes;              /* K, TRANSFORMER_CLASSIFY only                 */
    bool *negated;            /* (N) sentiment: the sentence has a negation   */
    int *probe;               /* (probe_count) sentiment: the negation probe,
                                 pairs that differ by one "not"              */
    int probe_count;
    char **category_of_token; /* (V) word category for the toy language, or NULL */
} TransformerData;

bool transformer_data_load(TransformerData *data, const TransformerDataOptions *options,
                           bool encoder, Error *err);
void transformer_data_free(TransformerData *data);
/* --task text from text[0..size) in memory (transformer_data_load reads
 * --data, then calls this): checks it is non-empty UTF-8 text without NUL
 * bytes, builds the character vocabulary into data->vocab (which may already
 * hold tokens) and the stream of ids.  `path` only names it in errors. */
bool transformer_text_parse(TransformerData *data, const char *path, const char *text,
                            size_t size, Error *err);
/* The sequence length T a batch of this data needs (at most `context`). */
int transformer_data_time(const TransformerData *data, int context);
/* The category of a word of the toy language ("animal", "plant", ...), or NULL. */
const char *transformer_toy_category(const char *word);

/* A target (or label) that gets no loss: passed to op_cross_entropy as its
 * ignore_index. */
enum { TRANSFORMER_NO_TARGET = -1 };

/* A batch: inputs, targets (-1 = no loss there), lengths, labels. */
typedef struct {
    int batch, time;  /* B, T                                               */
    int *ids;         /* (B, T)                                             */
    int *targets;     /* (B, T) next token (GPT) or original token (BERT)    */
    int *lengths;     /* (B)                                                */
    int *labels;      /* (B)                                                */
} TransformerBatch;

void transformer_batch_alloc(TransformerBatch *batch, int B, int T);
void transformer_batch_free(TransformerBatch *batch);
/* Fills a training batch, drawing everything from rng. */
void transformer_batch_sample(const TransformerData *data, bool encoder, Rng *rng,
                              TransformerBatch *batch);
/* Validation batch number `index` (deterministic; the encoder's masking
 * uses rng, which the caller re-seeds before each evaluation).  Returns the
 * number of rows filled (0 past the end); unfilled rows are padding. */
int transformer_batch_validation(const TransformerData *data, bool encoder, int index, int limit,
                                 Rng *rng, TransformerBatch *batch);

/* Text <-> ids with the data's tokenisation (characters or words).  The
 * special tokens of the vocabulary ("<mask>", "<sep>", ...) written in the
 * text are read as one token each.  Returns the count, or -1 with an Error
 * naming the unknown token. */
int transformer_encode(const TransformerData *data, const char *text, int *ids, int max_ids,
                       Error *err);
int transformer_encode_vocab(const Vocab *vocab, bool word_level, const char *text, int *ids,
                             int max_ids, Error *err);
/* Character-level ids of text[0..length) read literally ("<sep>" is five
 * characters here): a character missing from the vocabulary becomes <unk>
 * when the vocabulary has one (pairs), else it is an error, as is invalid
 * UTF-8 or more than max_ids characters.  Returns the count or -1. */
int transformer_encode_literal(const Vocab *vocab, const char *text, size_t length, int *ids,
                               int max_ids, Error *err);
/* ids -> text (words joined by spaces).  Returns out. */
char *transformer_decode(const Vocab *vocab, bool word_level, const int *ids, int count, char *out,
                         size_t size);

/* ==== Training, evaluation, checkpoints (train.c) ======================== */

typedef struct {
    TransformerConfig model;
    TransformerDataOptions data;
    long steps;
    int batch;
    float lr, min_lr_ratio, weight_decay, clip;
    long warmup;              /* 0 = steps / 20                              */
    long eval_every, log_every, checkpoint_every, stop_after;
    int eval_batches;
    int threads;
    bool resume, quiet, check_numerics;
    const char *out;
    const char *checkpoint;   /* NULL = <out>/model.safetensors             */
    int plot_term;            /* PlotTerm                                    */
    const Option *options;    /* the command line, for config.txt; or NULL   */
    int option_count;
} TransformerTrainSettings;

typedef struct {
    float loss;               /* mean cross-entropy                           */
    float accuracy;           /* exact match (tasks), next-token or masked-
                                 token accuracy (streams), class accuracy     */
    const char *metric;       /* its name in the final line                  */
} TransformerEval;

/* Runs the whole training; returns the process exit status. */
int transformer_train(const TransformerTrainSettings *settings);
TransformerEval transformer_evaluate(Graph *g, const Transformer *model,
                                     const TransformerData *data, int max_batches,
                                     TransformerBatch *batch);

/* Classification accuracy on the examples `rows` (count), in batches. */
float transformer_class_accuracy(Graph *g, const Transformer *model, const TransformerData *data,
                                 const int *rows, int count, TransformerBatch *batch);

/* A checkpoint's metadata: every hyperparameter, the data description and
 * the vocabulary, so a model can be rebuilt from the file alone. */
void transformer_metadata_write(Metadata *meta, const Transformer *model,
                                const TransformerData *data, const TransformerDataOptions *options,
                                long step);
bool transformer_config_from_metadata(const Metadata *meta, TransformerConfig *config,
                                      Error *err);
bool transformer_data_options_from_metadata(const Metadata *meta,
                                            TransformerDataOptions *options, Error *err);
/* Reads the metadata of a checkpoint, builds the model it describes and
 * loads its weights.  meta receives the metadata (metadata_free it). */
bool transformer_load(const char *path, Transformer *model, Metadata *meta, Error *err);
/* The vocabulary and tokenisation recorded in a checkpoint's metadata. */
bool transformer_vocab_from_metadata(const Metadata *meta, Vocab *vocab, bool *word_level,
                                     Error *err);

/* ==== Generation (generate.c) ============================================ */

typedef struct {
    float temperature;  /* 0 = greedy (argmax)                               */
    int top_k;          /* keep the k most probable tokens; 0 = all          */
    float top_p;        /* keep the smallest set with this much mass; 0 or 1 = all */
} TransformerSampling;

/* Picks a token from logits (V) with the sampling rule.  scratch (2V). */
int transformer_sample(const float *logits, int V, const TransformerSampling *sampling, Rng *rng,
                       float *scratch);
/* Generates up to `count` tokens after prompt (prompt_count ids), stopping
 * after stop_id (when >= 0).  out receives prompt + generated ids (room for
 * prompt_count + count).  use_cache selects the KV cache or full forwards.
 * When the context fills up, the oldest half is dropped and the cache
 * rebuilt from the newest half.  Returns the total count. */
int transformer_generate(Graph *g, const Transformer *model, const int *prompt, int prompt_count,
                         int count, int stop_id, const TransformerSampling *sampling, Rng *rng,
                         bool use_cache, int *out);
/* The greedy answer to one prompt of an example task, made to be called
 * for many prompts in a row: cache (NULL = full forwards), logits (V) and
 * ids (T) belong to the caller and are reused.  ids[0..prompt_count) holds
 * the prompt; the argmax tokens are appended after it until stop_id (not
 * stored) or until the context is full.  Returns the answer's length. */
int transformer_answer(Graph *g, const Transformer *model, TransformerCache *cache, int *ids,
                       int prompt_count, int stop_id, float *logits);

/* ==== Plots (plots.c) ==================================================== */

/* The loss and learning-rate curves from <out>/metrics.csv. */
bool transformer_plot_curves(const char *dir, int term, const char *title, Error *err);
/* One heatmap per layer and head for the tokens of a prompt. */
bool transformer_plot_attention(Graph *g, const Transformer *model, const TransformerData *data,
                                const int *ids, int count, const char *dir, int term, Error *err);
bool transformer_plot_positions(const Transformer *model, const char *dir, int term, Error *err);
/* 2-D PCA of the token embeddings, labelled, coloured by category. */
bool transformer_plot_embeddings(const Transformer *model, const TransformerData *data,
                                 const char *dir, int term, Error *err);

/* After training: a few samples (GPT) and every plot into settings->out. */
void transformer_report(Graph *g, const Transformer *model, const TransformerData *data,
                        const TransformerTrainSettings *settings);

/* ==== Commands implemented outside main.c ================================ */

/* `parity`: weights, a batch, the loss, logits and gradients for the
 * PyTorch comparison (parity.c). */
int transformer_command_parity(int argc, char **argv);

/* ==== Benchmark (bench.c) ================================================ */

int transformer_bench(const char *config_name, int threads, int steps, bool quiet);

#endif
