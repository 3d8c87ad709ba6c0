/* seq2seq/seq2seq.h: an RNN encoder-decoder (Sutskever et al. 2014; Cho et
 * al. 2014) with an optional attention over the encoder states (Bahdanau et
 * al. 2015, Luong et al. 2015), greedy and beam-search decoding.
 *
 * Dimension legend (every file of this folder):
 *   B batch, S source length (encoder steps), T decoder steps (target + EOS),
 *   E embedding size, H hidden size, A attention size (= H here),
 *   G gates per cell (3 for a GRU: r z n; 4 for an LSTM: i f g o),
 *   P parts of a recurrent state (1 for a GRU: h; 2 for an LSTM: h and c),
 *   L layers, Vs / Vt source / target vocabulary, F decoder feature size
 *   (H, or 2H for Bahdanau's [s; c]), K beam width.
 *
 * Layout.  Sequences are stored time-major, (S, B) ids and (S, B, H) states,
 * like torch.nn.GRU's default (batch_first=False): the recurrence walks time,
 * and time-major makes every step's B rows one contiguous block, which a
 * matmul can use without copying.  Attention works batch-major, (B, S, H),
 * because each example attends over its own source.
 *
 * Files: cells.c (the fused recurrent and attention ops, forward and backward
 * side by side), model.c (parameters, encoder, decoder, loss, greedy and
 * beam search, checkpoints), tasks.c (tokens, vocabularies, built-in tasks,
 * TSV data, batches, metrics), train.c (training and evaluation), main.c (the
 * command line).
 */
#ifndef TINYZOO_SEQ2SEQ_H
#define TINYZOO_SEQ2SEQ_H

#include <stdbool.h>
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "data.h"
#include "nn.h"
#include "plot.h"
#include "tensor.h"
#include "util.h"

enum { SEQ2SEQ_MAX_LAYERS = 4 };

typedef enum { SEQ2SEQ_GRU, SEQ2SEQ_LSTM } Seq2seqCell;
typedef enum { SEQ2SEQ_NO_ATTENTION, SEQ2SEQ_BAHDANAU, SEQ2SEQ_LUONG } Seq2seqAttention;

/* Special tokens: the first ids of both vocabularies. */
enum { SEQ2SEQ_PAD = 0, SEQ2SEQ_BOS = 1, SEQ2SEQ_EOS = 2, SEQ2SEQ_UNK = 3, SEQ2SEQ_SPECIALS = 4 };
/* Loss targets at padded decoder positions (ignored by cross-entropy). */
enum { SEQ2SEQ_IGNORE = -1 };

/* ======================================================================== */
/* cells.c: fused ops (each with its backward next to it)                    */
/* ======================================================================== */

/* One GRU step for a batch, torch.nn.GRU's equations (gate order r, z, n):
 *   gx = W_ih x + b_ih  (B, 3H)      gh = W_hh h + b_hh  (B, 3H)
 *   r  = sigmoid(gx_r + gh_r)        z = sigmoid(gx_z + gh_z)
 *   n  = tanh(gx_n + r * gh_n)       h' = (1 - z) * n + z * h
 * state (1, B, H) holds h; returns h' (1, B, H).  Rows b with active[b] == 0
 * (padding) keep h.  active (B) may be NULL (every row active). */
Tensor *seq2seq_gru_step(Graph *g, Tensor *gx, Tensor *gh, Tensor *state, const int *active);
/* One LSTM step, torch.nn.LSTM's equations (gate order i, f, g, o):
 *   gates = W_ih x + b_ih + W_hh h + b_hh = gx + gh  (B, 4H)
 *   i, f, o = sigmoid(...), g = tanh(...)
 *   c' = f * c + i * g       h' = o * tanh(c')
 * state (2, B, H) holds [h, c]; the result is the new [h', c'] (2, B, H). */
Tensor *seq2seq_lstm_step(Graph *g, Tensor *gx, Tensor *gh, Tensor *state, const int *active);
/* One recurrent layer's parameters: torch.nn.GRU/LSTM's weight_ih_l<k>,
 * bias_ih_l<k>, weight_hh_l<k>, bias_hh_l<k>. */
typedef struct {
    Linear input_gates;  /* weight (G*H, In), bias (G*H) */
    Linear hidden_gates; /* weight (G*H, H),  bias (G*H) */
} Seq2seqRecurrentLayer;

/* A whole recurrent layer over a sequence whose inputs are all known in
 * advance (the encoder; the decoder under full teacher forcing), in one op
 * whose backward is backpropagation through time, like torch.nn.GRU/LSTM:
 *   gx_t = W_ih x_t + b_ih,  gh_t = W_hh h_{t-1} + b_hh,
 *   state_t = cell(gx_t, gh_t, state_{t-1}),  t = 0..S-1
 * cell SEQ2SEQ_GRU or SEQ2SEQ_LSTM (the equations above); x (S*B, In) the
 * inputs of every step, time-major; state0 (P, B, H); active (S, B) or
 * NULL (padded rows keep their state).  Returns every state_t,
 * (S, P, B, H): the same values as S calls of the step op. */
Tensor *seq2seq_recurrent_layer(Graph *g, int cell, const Seq2seqRecurrentLayer *weights,
                                Tensor *x, Tensor *state0, const int *active);
/* Bahdanau's additive score: keys (B, S, A) = U h_j, query (B, A) = W s,
 * v (A):  scores[b, j] = v . tanh(keys[b, j] + query[b])  -> (B, S). */
Tensor *seq2seq_additive_scores(Graph *g, Tensor *keys, Tensor *query, Tensor *v);
/* Luong's score: keys (B, S, H), query (B, H) -> scores[b, j] = keys[b, j] . query[b]. */
Tensor *seq2seq_dot_scores(Graph *g, Tensor *keys, Tensor *query);
/* The context vector of attention: weights (B, S), memory (B, S, H) ->
 * context[b] = sum_j weights[b, j] memory[b, j]  (B, H). */
Tensor *seq2seq_context(Graph *g, Tensor *weights, Tensor *memory);
/* The hidden states h out of recurrent states (S, P, B, H): part 0 of each
 * step, as (S, B, H) time-major or (B, S, H) batch-major. */
Tensor *seq2seq_hidden_states(Graph *g, Tensor *states, bool batch_major);
/* The vectorizable e^x and tanh x of the cells (relative error ~1e-7;
 * tanh absolute ~1e-7). */
float seq2seq_sigmoid(float x);
float seq2seq_tanh(float x);
/* Copies src into dst (a view into a larger tensor, e.g. one step of a
 * (T, B, F) stack) and returns dst; gradients flow back to src. */
Tensor *seq2seq_copy_into(Graph *g, Tensor *src, Tensor *dst);

/* ======================================================================== */
/* model.c: the encoder-decoder                                             */
/* ======================================================================== */

typedef struct {
    int cell;         /* Seq2seqCell                                  */
    int attention;    /* Seq2seqAttention                             */
    int layers;       /* L, 1..SEQ2SEQ_MAX_LAYERS                      */
    int embed;        /* E                                            */
    int hidden;       /* H                                            */
    int source_vocab; /* Vs                                           */
    int target_vocab; /* Vt                                           */
} Seq2seqConfig;

typedef struct {
    Seq2seqConfig config;
    ParamSet params;
    Embedding source_embedding;                          /* (Vs, E) */
    Embedding target_embedding;                          /* (Vt, E) */
    Seq2seqRecurrentLayer encoder[SEQ2SEQ_MAX_LAYERS];   /* In = E, then H */
    Seq2seqRecurrentLayer decoder[SEQ2SEQ_MAX_LAYERS];   /* In = E (+H for Bahdanau), then H */
    /* Bahdanau: score = v . tanh(W_q s + W_k h) */
    Linear attention_query;  /* weight (A, H), no bias */
    Linear attention_key;    /* weight (A, H), no bias */
    Tensor *attention_v;     /* (A) */
    /* Luong "general": score = s . (W_a h); h~ = tanh(W_c [c; s]) */
    Linear attention_score;   /* weight (H, H), no bias */
    Linear attention_combine; /* weight (H, 2H), no bias */
    Linear output;            /* weight (Vt, F), bias (Vt) */
} Seq2seqModel;

int seq2seq_gates(const Seq2seqConfig *c);       /* G */
int seq2seq_state_parts(const Seq2seqConfig *c); /* P */
int seq2seq_feature_size(const Seq2seqConfig *c); /* F */
const char *seq2seq_cell_name(int cell);
const char *seq2seq_attention_name(int attention);

/* Declares, allocates and initialises (PyTorch's default initialisation). */
void seq2seq_model_build(Seq2seqModel *m, const Seq2seqConfig *config, Rng *rng);
void seq2seq_model_free(Seq2seqModel *m);

/* What the decoder reads from the encoder. */
typedef struct {
    int B, S;
    Tensor *final_state[SEQ2SEQ_MAX_LAYERS]; /* (P, B, H) per layer: the context vector */
    Tensor *memory;  /* (B, S, H) top-layer states, batch-major; NULL without attention */
    Tensor *keys;    /* (B, S, A) Bahdanau W_k h_j or Luong W_a h_j; NULL without     */
    Tensor *mask;    /* (B, S) 1 for real source tokens, 0 for padding                  */
} Seq2seqEncoded;

/* source (S, B) ids time-major, lengths (B) in 1..S. */
Seq2seqEncoded seq2seq_encode(Graph *g, const Seq2seqModel *m, const int *source,
                              const int *lengths, int B, int S);

/* The decoder's running state between steps. */
typedef struct {
    Tensor *state[SEQ2SEQ_MAX_LAYERS]; /* (P, B, H) */
} Seq2seqDecoderState;

Seq2seqDecoderState seq2seq_decoder_start(const Seq2seqEncoded *enc, int layers);
/* One decoder step for every row: input_ids (B) are the previous tokens.
 * Updates st and returns the features (B, F) that the output layer reads.
 * attention (B, S), when not NULL, receives the attention weights. */
Tensor *seq2seq_decoder_step(Graph *g, const Seq2seqModel *m, const Seq2seqEncoded *enc,
                             Seq2seqDecoderState *st, const int *input_ids, float *attention);
/* features (N, F) -> logits (N, Vt) */
Tensor *seq2seq_logits(Graph *g, const Seq2seqModel *m, Tensor *features);

/* ======================================================================== */
/* tasks.c: tokens, vocabularies, built-in tasks, TSV data, batches         */
/* ======================================================================== */

typedef enum { SEQ2SEQ_TASK_COPY, SEQ2SEQ_TASK_REVERSE, SEQ2SEQ_TASK_SORT, SEQ2SEQ_TASK_ADD,
               SEQ2SEQ_TASK_DATES, SEQ2SEQ_TASK_COUNT } Seq2seqTask;

/* Both vocabularies start with <pad> <bos> <eos> <unk>. */
typedef struct {
    Vocab source;
    Vocab target;
    bool words; /* word-level tokens (split on spaces) rather than characters */
} Seq2seqVocabs;

void seq2seq_vocabs_init(Seq2seqVocabs *v, bool words);
void seq2seq_vocabs_free(Seq2seqVocabs *v);
/* Text -> ids (unknown tokens become <unk>).  Returns the count, or -1 when
 * there are more than max_ids tokens or the text is not valid UTF-8. */
int seq2seq_tokenize(const Vocab *vocab, bool words, const char *text, int *ids, int max_ids);
/* Adds every token of text (false on invalid UTF-8). */
bool seq2seq_vocab_add_text(Vocab *vocab, bool words, const char *text);
/* ids -> text, stopping at <eos>; tokens joined by ' ' when words. */
void seq2seq_detokenize(const Vocab *vocab, bool words, const int *ids, int count, char *out,
                        size_t out_size);

/* One example: token ids without <bos>/<eos>. */
typedef struct {
    int *source;       /* (source_length) */
    int source_length;
    int *target;       /* (target_length) */
    int target_length;
} Seq2seqPair;

typedef struct {
    Seq2seqPair *pairs; /* (count) */
    int count;
} Seq2seqDataset;

void seq2seq_dataset_free(Seq2seqDataset *d);
/* Appends a copy of the ids. */
void seq2seq_dataset_add(Seq2seqDataset *d, const int *source, int source_length,
                         const int *target, int target_length);

/* Built-in tasks.  Source lengths are drawn uniformly from
 * [min_length, max_length] (for `add` and `dates` the length of the whole
 * source string, e.g. "123+45" has length 6). */
typedef struct {
    int task;       /* Seq2seqTask */
    int min_length;
    int max_length;
    int symbols;    /* alphabet size for copy/reverse/sort: 'a'.. */
} Seq2seqTaskSpec;

const char *seq2seq_task_name(int task);
int seq2seq_task_from_name(const char *name); /* -1 when unknown */
/* The fixed character vocabularies of a task. */
void seq2seq_task_vocabs(const Seq2seqTaskSpec *spec, Seq2seqVocabs *v);
/* One random example as text (NUL-terminated, at most size-1 bytes each).
 * False when the spec's lengths admit no example (e.g. add with length < 3). */
bool seq2seq_task_text(const Seq2seqTaskSpec *spec, Rng *rng, char *source, char *target,
                       size_t size);
/* The longest target a spec can produce, in characters. */
int seq2seq_task_max_target(const Seq2seqTaskSpec *spec);
/* A "date as text" in one of the human formats, for the README and tests:
 * format index in [0, seq2seq_date_format_count()). */
int seq2seq_date_format_count(void);
void seq2seq_format_date(int year, int month, int day, int format, char *out, size_t size);

/* A padded batch, time-major, allocated once at its largest size. */
typedef struct {
    int capacity_batch, capacity_source, capacity_target;
    int B, S, T;          /* this batch: rows, source steps, decoder steps   */
    int *source;          /* (S, B) ids, <pad> after each length              */
    int *source_lengths;  /* (B)                                             */
    int *decoder_inputs;  /* (T, B) <bos> y1 .. yn, then <pad>                */
    int *targets;         /* (T, B) y1 .. yn <eos>, then SEQ2SEQ_IGNORE       */
    int *target_lengths;  /* (B) n + 1, counting <eos>                        */
} Seq2seqBatch;

void seq2seq_batch_init(Seq2seqBatch *batch, int max_batch, int max_source, int max_target);
void seq2seq_batch_free(Seq2seqBatch *batch);
/* Fills the batch with pairs[indices[i]] (indices NULL: pairs 0..count-1). */
void seq2seq_batch_fill(Seq2seqBatch *batch, const Seq2seqPair *pairs, const int *indices,
                        int count);

/* ---- Metrics ---------------------------------------------------------------- */

/* Corpus BLEU-4 (Papineni et al. 2002) with the brevity penalty, on token ids:
 * candidates[i] (cand_lengths[i]) against one reference each. */
typedef struct {
    double precision[4]; /* modified n-gram precisions p_1..p_4 */
    double brevity_penalty;
    double bleu;         /* in [0, 1] */
    long candidate_length, reference_length;
} Seq2seqBleu;
Seq2seqBleu seq2seq_corpus_bleu(const int *const *candidates, const int *cand_lengths,
                                const int *const *references, const int *ref_lengths,
                                int count);

/* ======================================================================== */
/* model.c: loss, decoding, checkpoints                                     */
/* ======================================================================== */

typedef struct {
    Tensor *loss;     /* (1) mean cross-entropy over real target tokens        */
    Tensor *logits;   /* (T*B, Vt) rows in time-major order                     */
    float *attention; /* (T, B, S) attention weights (NULL without attention)   */
} Seq2seqOutput;

/* Teacher forcing: at each decoder step, with probability teacher_forcing the
 * input is the true previous token, otherwise the model's own argmax
 * prediction (one coin per step for the whole batch, from rng). */
Seq2seqOutput seq2seq_forward(Graph *g, const Seq2seqModel *m, const Seq2seqBatch *batch,
                              float teacher_forcing, Rng *rng);

/* Greedy decoding of a batch: out (B, max_steps) ids ending with <eos> (not
 * stored), out_lengths (B) tokens before <eos>.  attention (B, max_steps, S)
 * may be NULL.  Runs in no-grad mode on g (which it resets). */
void seq2seq_greedy(Graph *g, const Seq2seqModel *m, const int *source, const int *lengths,
                    int B, int S, int max_steps, int *out, int *out_lengths, float *attention);

/* Beam search for one source (S): keeps the K best partial outputs by total
 * log-probability; a finished hypothesis is ranked by
 *     score = log p(y | x) / (length ^ length_penalty)
 * (length counts <eos>; length_penalty 0 disables normalisation).  Stops when
 * K hypotheses have finished or after max_steps.  Returns the length of the
 * best output written to out (max_steps); attention (max_steps, S) may be
 * NULL.  Width 1 is exactly greedy decoding. */
int seq2seq_beam_search(Graph *g, const Seq2seqModel *m, const int *source, int S, int width,
                        float length_penalty, int max_steps, int *out, float *attention);

/* Checkpoints: metadata holds the config under "config.*" keys, and
 * "architecture" = "seq2seq". */
void seq2seq_config_to_metadata(const Seq2seqConfig *c, Metadata *meta);
bool seq2seq_config_from_metadata(const Metadata *meta, Seq2seqConfig *c, Error *err);

/* ======================================================================== */
/* train.c: data, evaluation, training, checkpoints                          */
/* ======================================================================== */

/* Every setting of the program; each one is a flag (see main.c). */
typedef struct {
    CommonOptions common;
    int cell, attention, layers, embed, hidden;
    float teacher_forcing; /* probability of feeding the true previous token */
    float clip;            /* global gradient-norm clipping, 0 = off           */
    int lr_schedule;       /* 0 constant, 1 warmup then cosine decay            */
    long stop_at;          /* end this session at this step (0: at --steps)     */
    int min_length, max_length, symbols; /* built-in tasks                     */
    int eval_min_length, eval_max_length; /* accuracy-against-length chart      */
    int eval_per_length;   /* examples per length on that chart                 */
    int val_size;          /* generated validation examples                     */
    int train_size;        /* export: generated training examples written      */
    float val_fraction;    /* --data: held-out fraction                         */
    const char *val_data;  /* --data: held-out pairs from this file instead     */
    int tokens;            /* 0 char, 1 word                                    */
    bool lowercase;
    int max_tokens;        /* --data: drop pairs longer than this               */
    long eval_every;
    int beam;              /* beam width for eval/translate; 1 = greedy         */
    float length_penalty;  /* beam: score / length^alpha                        */
    bool show_attention;
    int heatmaps;          /* attention heatmaps written after training         */
    const char *runs;      /* plot: comma-separated run directories             */
} Seq2seqSettings;

/* Training and validation examples with their vocabularies. */
typedef struct {
    Seq2seqVocabs vocabs;
    bool from_file;        /* --data, else a built-in task                      */
    Seq2seqTaskSpec spec;  /* built-in task                                     */
    Seq2seqDataset train;  /* --data only: generated tasks draw fresh examples  */
    Seq2seqDataset validation;
    int max_source, max_target; /* longest sequences, in tokens                  */
} Seq2seqData;

/* Builds the data of a run; false with a one-line Error on bad input. */
bool seq2seq_data_build(const Seq2seqSettings *s, Seq2seqData *d, Error *err);
void seq2seq_data_free(Seq2seqData *d);
/* One training example of a generated task, never one held out for
 * validation: pair->source and ->target must hold max_source/max_target ids. */
void seq2seq_data_sample(const Seq2seqData *d, Rng *rng, Seq2seqPair *pair);
/* The examples of one source length on the accuracy-against-length chart:
 * up to `count` drawn from rng (none when the task has no example of that
 * length), appended to set.  Returns how many. */
int seq2seq_length_examples(const Seq2seqData *d, int length, int count, Rng *rng,
                            Seq2seqDataset *set);

/* Teacher-forced loss, and greedy (or beam) decoding scored three ways. */
typedef struct {
    double loss;           /* mean cross-entropy per target token (with <eos>)  */
    double token_accuracy; /* output token = reference token, by position       */
    double exact_match;    /* whole output = reference                          */
    double bleu;           /* corpus BLEU-4 of the outputs                      */
    int count;
} Seq2seqScores;
Seq2seqScores seq2seq_evaluate(Graph *g, const Seq2seqModel *m, const Seq2seqDataset *d,
                               int batch_size, int beam, float length_penalty);

/* Exact-match accuracy at each source length low..high (count examples each,
 * drawn from rng, decoded by beam search of this width: 1 is greedy);
 * accuracy[i] for length low + i, -1 where the task has no example of that
 * length. */
void seq2seq_length_accuracy(Graph *g, const Seq2seqModel *m, const Seq2seqData *d, int low,
                             int high, int count, int beam, float length_penalty, Rng *rng,
                             float *accuracy);

/* Writes model, optimizer (may be NULL) and metadata (config, vocabularies,
 * `extra`) atomically. */
bool seq2seq_save(const char *path, const Seq2seqModel *m, const Optimizer *opt,
                  const Seq2seqVocabs *v, const Metadata *extra, Error *err);
/* Rebuilds model and vocabularies from a checkpoint; `meta` receives its
 * metadata (freed by the caller). */
bool seq2seq_load(const char *path, Seq2seqModel *m, Seq2seqVocabs *v, Metadata *meta,
                  Error *err);

/* Plots: an attention heatmap (rows: the n outputs and <eos>; columns: the S
 * source tokens; weights (n + 1, S)), and accuracy against source length for
 * several runs on one chart (accuracy[r] (high - low + 1), -1 = no data). */
bool seq2seq_plot_attention(const PlotTarget *target, const char *stem, const Seq2seqVocabs *v,
                            const int *source, int S, const int *output, int n,
                            const float *weights, Error *err);
bool seq2seq_plot_length_chart(const PlotTarget *target, const char *title, int low, int high,
                               const float *const *accuracy, const char *const *names, int runs,
                               int train_max, Error *err);

/* The train command; writes config.txt from `options`; returns the exit status. */
int seq2seq_train(const Seq2seqSettings *s, const Option *options, int option_count);

#endif
