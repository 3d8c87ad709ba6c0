/* seq2seq/train.c: the data of a run, evaluation, checkpoints, and the
 * training loop.
 *
 * Legend: B batch, S source steps, T decoder steps, V vocabulary.
 *
 * Reading order: data (built-in task, or --data file with its held-out
 * pairs carved by --val-fraction or read from --val-data), evaluation (loss,
 * token accuracy, exact match, BLEU; accuracy against source length),
 * checkpoints, plots, then seq2seq_train.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "plot.h"
#include "seq2seq.h"

/* Lines longer than this in a --data file are skipped (and counted). */
enum { SEQ2SEQ_MAX_LINE_BYTES = 4096 };
/* Text buffers for one generated example. */
enum { TEXT_BYTES = 256 };

/* ======================================================================== */
/* Data: a built-in task                                                      */
/* ======================================================================== */

/* The held-out split of a generated task: an example is held out when a
 * hash of its key falls in one of HELD_OUT_BUCKETS buckets, so the same 5%
 * of every length's examples is reserved for validation and never trained
 * on.  The key is the source, except for dates, where it is the date
 * itself: a held-out date is never trained on in any of its formats.
 * (Holding out by drawing a validation sample instead would take all ten
 * one-letter strings of `reverse` away from training.) */
enum { HELD_OUT_BUCKETS = 20 };

static bool is_held_out(const Seq2seqTaskSpec *spec, const char *source, const char *target) {
    const char *key = spec->task == SEQ2SEQ_TASK_DATES ? target : source;
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) hash = (hash ^ *c) * 16777619u;
    return hash % HELD_OUT_BUCKETS == 0;
}

/* Tokenizes one generated example into pair's buffers (task vocabularies
 * cover every character a task writes, so there is no <unk>). */
static void encode_pair(const Seq2seqVocabs *v, const char *source, const char *target,
                        int max_source, int max_target, Seq2seqPair *pair) {
    pair->source_length = seq2seq_tokenize(&v->source, false, source, pair->source, max_source);
    pair->target_length = seq2seq_tokenize(&v->target, false, target, pair->target, max_target);
    if (pair->source_length < 1 || pair->target_length < 0)
        fatal("encode_pair: '%s' -> '%s' does not fit %d -> %d tokens", source, target,
              max_source, max_target);
}

static bool task_validate(const Seq2seqSettings *s, Seq2seqTaskSpec *spec, Error *err) {
    spec->task = seq2seq_task_from_name(s->common.task);
    if (spec->task < 0)
        return error_set(err, "--task %s: expected copy, reverse, sort, add or dates", s->common.task);
    spec->min_length = s->min_length, spec->max_length = s->max_length, spec->symbols = s->symbols;
    if (s->min_length > s->max_length)
        return error_set(err, "--min-length %d is larger than --max-length %d", s->min_length,
                         s->max_length);
    char source[TEXT_BYTES], target[TEXT_BYTES];
    Rng probe;
    rng_seed(&probe, 1, 99);
    if (!seq2seq_task_text(spec, &probe, source, target, sizeof source))
        return error_set(err, "--task %s has no example with a source length in %d..%d%s",
                         s->common.task, s->min_length, s->max_length,
                         spec->task == SEQ2SEQ_TASK_ADD ? " (add needs at least 3: \"1+2\")"
                         : spec->task == SEQ2SEQ_TASK_DATES ? " (dates are 6 to 28 characters)" : "");
    return true;
}

static bool data_from_task(const Seq2seqSettings *s, Seq2seqData *d, Error *err) {
    if (!task_validate(s, &d->spec, err)) return false;
    seq2seq_task_vocabs(&d->spec, &d->vocabs);
    d->max_source = d->spec.max_length;
    d->max_target = seq2seq_task_max_target(&d->spec);
    /* Validation: distinct held-out examples, from their own random stream. */
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 3);
    Vocab seen; /* the validation sources so far, to keep them distinct */
    vocab_init(&seen);
    char source[TEXT_BYTES], target[TEXT_BYTES];
    int *src = xmalloc((size_t)d->max_source * sizeof(int)), *tgt = xmalloc((size_t)d->max_target * sizeof(int));
    for (long attempt = 0; d->validation.count < s->val_size && attempt < 400L * s->val_size; attempt++) {
        seq2seq_task_text(&d->spec, &rng, source, target, sizeof source);
        if (!is_held_out(&d->spec, source, target) || vocab_find(&seen, source) >= 0) continue;
        vocab_add(&seen, source);
        Seq2seqPair pair = {.source = src, .target = tgt};
        encode_pair(&d->vocabs, source, target, d->max_source, d->max_target, &pair);
        seq2seq_dataset_add(&d->validation, pair.source, pair.source_length, pair.target,
                            pair.target_length);
    }
    free(src), free(tgt);
    vocab_free(&seen);
    /* A tiny task (say reverse of one letter out of two) may have (almost)
     * nothing held out, or nothing left to train on. */
    int usable = 0;
    for (int i = 0; i < 200; i++) {
        seq2seq_task_text(&d->spec, &rng, source, target, sizeof source);
        usable += !is_held_out(&d->spec, source, target);
    }
    if (usable < 20 || d->validation.count == 0)
        return error_set(err, "--task %s with lengths %d..%d has too few distinct examples for a "
                         "held-out split; raise --max-length or --symbols", s->common.task,
                         s->min_length, s->max_length);
    return true;
}

void seq2seq_data_sample(const Seq2seqData *d, Rng *rng, Seq2seqPair *pair) {
    char source[TEXT_BYTES], target[TEXT_BYTES];
    for (int attempt = 0; attempt < 100000; attempt++) {
        seq2seq_task_text(&d->spec, rng, source, target, sizeof source);
        if (is_held_out(&d->spec, source, target)) continue;
        encode_pair(&d->vocabs, source, target, d->max_source, d->max_target, pair);
        return;
    }
    fatal("seq2seq_data_sample: every example drawn is held out for validation");
}

/* ======================================================================== */
/* Data: a TSV file                                                           */
/* ======================================================================== */

/* Reads a TSV file; the lines it skips are counted in a warning, printed
 * even with --quiet. */
static bool read_pair_file(const char *path, bool lowercase, PairList *list, Error *err) {
    if (!tsv_read_pairs(path, SEQ2SEQ_MAX_LINE_BYTES, lowercase, list, err)) return false;
    pair_list_warn_skipped(list, path, SEQ2SEQ_MAX_LINE_BYTES);
    return true;
}

/* Tokenizes pairs[indices[i]] (indices NULL: pairs 0..count-1) into out,
 * dropping pairs over max_tokens; returns how many it dropped. */
static int add_file_pairs(const PairList *list, const int *indices, int count,
                          const Seq2seqVocabs *v, int max_tokens, Seq2seqDataset *out,
                          int *longest_source, int *longest_target) {
    int *src = xmalloc((size_t)(max_tokens + 1) * sizeof(int));
    int *tgt = xmalloc((size_t)(max_tokens + 1) * sizeof(int));
    int dropped = 0;
    for (int i = 0; i < count; i++) {
        const TextPair *p = &list->pairs[indices ? indices[i] : i];
        int ns = seq2seq_tokenize(&v->source, v->words, p->source, src, max_tokens);
        int nt = seq2seq_tokenize(&v->target, v->words, p->target, tgt, max_tokens);
        if (ns < 1 || nt < 0) {
            dropped++;
            continue;
        }
        seq2seq_dataset_add(out, src, ns, tgt, nt);
        if (ns > *longest_source) *longest_source = ns;
        if (nt > *longest_target) *longest_target = nt;
    }
    free(src), free(tgt);
    return dropped;
}

static void warn_dropped(const char *path, int dropped, int max_tokens) {
    if (dropped > 0) /* a warning, printed even with --quiet */
        fprintf(stderr, "%s: dropped %d pairs with an empty source or more than --max-tokens %d "
                "tokens\n", path, dropped, max_tokens);
}

/* Which pairs train and which are held out.  With --val-data, every pair
 * of --data trains and every pair of --val-data is held out; otherwise
 * --val-fraction of --data is held out, picked by its own random stream.
 * (indices NULL: every pair of the list.) */
typedef struct {
    PairList train_list, val_list; /* val_list: --val-data only           */
    int *train_idx, *val_idx;      /* --val-fraction split only, else NULL */
    int train_count, val_count;
} FileSplit;

static void file_split_free(FileSplit *split) {
    pair_list_free(&split->train_list);
    pair_list_free(&split->val_list);
    free(split->train_idx), free(split->val_idx);
}

static bool file_split(const Seq2seqSettings *s, FileSplit *split, Error *err) {
    memset(split, 0, sizeof *split);
    if (!read_pair_file(s->common.data, s->lowercase, &split->train_list, err)) return false;
    if (s->val_data) {
        if (!read_pair_file(s->val_data, s->lowercase, &split->val_list, err)) {
            pair_list_free(&split->train_list);
            return false;
        }
        split->train_count = split->train_list.count, split->val_count = split->val_list.count;
        return true;
    }
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 3);
    split_indices(split->train_list.count, s->val_fraction, &rng, &split->train_idx,
                  &split->train_count, &split->val_idx, &split->val_count);
    if (split->train_count == 0) {
        error_set(err, "%s: %d pairs leave none for training after --val-fraction %g",
                  s->common.data, split->train_list.count, (double)s->val_fraction);
        file_split_free(split);
        return false;
    }
    return true;
}

static bool data_from_file(const Seq2seqSettings *s, Seq2seqData *d, Error *err) {
    FileSplit split;
    if (!file_split(s, &split, err)) return false;
    const PairList *train = &split.train_list, *held_out = s->val_data ? &split.val_list : train;
    seq2seq_vocabs_init(&d->vocabs, s->tokens == 1);
    /* The vocabularies come from the training pairs alone; held-out tokens
     * never seen in training become <unk>, as they would for new text. */
    bool ok = true;
    for (int i = 0; ok && i < split.train_count; i++) {
        const TextPair *p = &train->pairs[split.train_idx ? split.train_idx[i] : i];
        ok = seq2seq_vocab_add_text(&d->vocabs.source, d->vocabs.words, p->source) &&
             seq2seq_vocab_add_text(&d->vocabs.target, d->vocabs.words, p->target);
        if (!ok) error_set(err, "%s: line %d: a word longer than 255 bytes", s->common.data, p->line);
    }
    if (ok) {
        int dropped = add_file_pairs(train, split.train_idx, split.train_count, &d->vocabs,
                                     s->max_tokens, &d->train, &d->max_source, &d->max_target);
        int held_out_dropped = add_file_pairs(held_out, split.val_idx, split.val_count, &d->vocabs,
                                              s->max_tokens, &d->validation, &d->max_source,
                                              &d->max_target);
        if (s->val_data) warn_dropped(s->val_data, held_out_dropped, s->max_tokens);
        else dropped += held_out_dropped;
        warn_dropped(s->common.data, dropped, s->max_tokens);
        if (d->train.count == 0)
            ok = error_set(err, "%s: no training pair has 1..%d tokens (see --max-tokens)",
                           s->common.data, s->max_tokens);
        else if (s->val_data && d->validation.count == 0)
            ok = error_set(err, "%s: no held-out pair has 1..%d tokens (see --max-tokens)",
                           s->val_data, s->max_tokens);
    }
    file_split_free(&split);
    return ok;
}

bool seq2seq_data_build(const Seq2seqSettings *s, Seq2seqData *d, Error *err) {
    memset(d, 0, sizeof *d);
    d->from_file = s->common.data != NULL;
    bool ok = d->from_file ? data_from_file(s, d, err) : data_from_task(s, d, err);
    if (!ok) seq2seq_data_free(d);
    return ok;
}

void seq2seq_data_free(Seq2seqData *d) {
    seq2seq_vocabs_free(&d->vocabs);
    seq2seq_dataset_free(&d->train);
    seq2seq_dataset_free(&d->validation);
}

/* ======================================================================== */
/* Evaluation                                                                 */
/* ======================================================================== */

/* Output out (n tokens, then <eos>) against target (m tokens, then <eos>):
 * matching positions among the m + 1 reference positions. */
static int matching_positions(const int *out, int n, const int *target, int m) {
    int matches = 0;
    for (int i = 0; i <= m; i++) {
        int reference = i < m ? target[i] : SEQ2SEQ_EOS;
        int produced = i < n ? out[i] : i == n ? SEQ2SEQ_EOS : -1;
        matches += produced == reference;
    }
    return matches;
}

/* Decodes rows [first, first + B) of d: greedy as one batch, beam one by one. */
static void decode_chunk(Graph *g, const Seq2seqModel *m, const Seq2seqBatch *batch, int beam,
                         float length_penalty, int max_steps, int *outputs, int *lengths,
                         int *source_row) {
    if (beam <= 1) {
        seq2seq_greedy(g, m, batch->source, batch->source_lengths, batch->B, batch->S, max_steps,
                       outputs, lengths, NULL);
        return;
    }
    for (int b = 0; b < batch->B; b++) {
        int S = batch->source_lengths[b];
        for (int t = 0; t < S; t++) source_row[t] = batch->source[t * batch->B + b];
        lengths[b] = seq2seq_beam_search(g, m, source_row, S, beam, length_penalty, max_steps,
                                         outputs + (size_t)b * max_steps, NULL);
    }
}

Seq2seqScores seq2seq_evaluate(Graph *g, const Seq2seqModel *m, const Seq2seqDataset *d,
                               int batch_size, int beam, float length_penalty) {
    Seq2seqScores scores = {0};
    if (d->count == 0) return scores;
    int max_source = 1, max_target = 0;
    for (int i = 0; i < d->count; i++) {
        if (d->pairs[i].source_length > max_source) max_source = d->pairs[i].source_length;
        if (d->pairs[i].target_length > max_target) max_target = d->pairs[i].target_length;
    }
    int max_steps = 2 * max_target + 2; /* room to see an output run on */
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, batch_size, max_source, max_target);
    int *outputs = xmalloc((size_t)d->count * max_steps * sizeof(int)); /* (count, max_steps) */
    int *lengths = xmalloc((size_t)d->count * sizeof(int));             /* (count) */
    int *source_row = xmalloc((size_t)max_source * sizeof(int));       /* (S) */
    double loss_total = 0;
    long tokens = 0, token_matches = 0, exact = 0;
    bool no_grad = g->no_grad;
    for (int first = 0; first < d->count; first += batch_size) {
        int B = d->count - first < batch_size ? d->count - first : batch_size;
        seq2seq_batch_fill(&batch, d->pairs + first, NULL, B);
        graph_reset(g);
        g->no_grad = true;
        long batch_tokens = 0;
        for (int b = 0; b < B; b++) batch_tokens += batch.target_lengths[b];
        loss_total += (double)seq2seq_forward(g, m, &batch, 1.0f, NULL).loss->data[0] * (double)batch_tokens;
        tokens += batch_tokens;
        int *out = outputs + (size_t)first * max_steps;
        decode_chunk(g, m, &batch, beam, length_penalty, max_steps, out, lengths + first, source_row);
        for (int b = 0; b < B; b++) {
            const Seq2seqPair *p = &d->pairs[first + b];
            int n = lengths[first + b];
            int matches = matching_positions(out + (size_t)b * max_steps, n, p->target, p->target_length);
            token_matches += matches;
            exact += n == p->target_length && matches == p->target_length + 1;
        }
    }
    g->no_grad = no_grad;
    const int **candidates = xmalloc((size_t)d->count * sizeof(int *));
    const int **references = xmalloc((size_t)d->count * sizeof(int *));
    int *reference_lengths = xmalloc((size_t)d->count * sizeof(int));
    for (int i = 0; i < d->count; i++) {
        candidates[i] = outputs + (size_t)i * max_steps;
        references[i] = d->pairs[i].target;
        reference_lengths[i] = d->pairs[i].target_length;
    }
    scores.bleu = seq2seq_corpus_bleu(candidates, lengths, references, reference_lengths, d->count).bleu;
    scores.loss = loss_total / (double)tokens;
    scores.token_accuracy = (double)token_matches / (double)tokens;
    scores.exact_match = (double)exact / d->count;
    scores.count = d->count;
    free(candidates), free(references), free(reference_lengths);
    free(outputs), free(lengths), free(source_row);
    seq2seq_batch_free(&batch);
    return scores;
}

/* The chart's examples are drawn from the whole task, held out or not: at
 * lengths past --max-length none was trained on anyway.  `export` writes
 * them with this same function (length.tsv). */
int seq2seq_length_examples(const Seq2seqData *d, int length, int count, Rng *rng,
                            Seq2seqDataset *set) {
    enum { MAX_SOURCE = 64, MAX_TARGET = 128 }; /* a task's longest source and target */
    char source[TEXT_BYTES], target[TEXT_BYTES];
    int src[MAX_SOURCE], tgt[MAX_TARGET];
    Seq2seqTaskSpec spec = d->spec;
    spec.min_length = spec.max_length = length;
    int added = 0;
    for (; added < count && seq2seq_task_text(&spec, rng, source, target, sizeof source); added++) {
        Seq2seqPair pair = {.source = src, .target = tgt};
        encode_pair(&d->vocabs, source, target, MAX_SOURCE, MAX_TARGET, &pair);
        seq2seq_dataset_add(set, pair.source, pair.source_length, pair.target, pair.target_length);
    }
    return added;
}

void seq2seq_length_accuracy(Graph *g, const Seq2seqModel *m, const Seq2seqData *d, int low,
                             int high, int count, int beam, float length_penalty, Rng *rng,
                             float *accuracy) {
    for (int length = low; length <= high; length++) {
        Seq2seqDataset set = {0};
        seq2seq_length_examples(d, length, count, rng, &set);
        accuracy[length - low] =
            set.count ? (float)seq2seq_evaluate(g, m, &set, 256, beam, length_penalty).exact_match : -1.0f;
        seq2seq_dataset_free(&set);
    }
}

/* ======================================================================== */
/* Checkpoints                                                                */
/* ======================================================================== */

bool seq2seq_save(const char *path, const Seq2seqModel *m, const Optimizer *opt,
                  const Seq2seqVocabs *v, const Metadata *extra, Error *err) {
    Metadata meta;
    metadata_init(&meta);
    for (int i = 0; extra && i < extra->count; i++) metadata_set(&meta, extra->keys[i], extra->values[i]);
    seq2seq_config_to_metadata(&m->config, &meta);
    metadata_set(&meta, "data.tokens", v->words ? "word" : "char");
    char *json = vocab_to_json(&v->source);
    metadata_set(&meta, "vocab.source", json);
    free(json);
    json = vocab_to_json(&v->target);
    metadata_set(&meta, "vocab.target", json);
    free(json);
    bool ok = checkpoint_save(path, &m->params, opt, &meta, err);
    metadata_free(&meta);
    return ok;
}

bool seq2seq_load(const char *path, Seq2seqModel *m, Seq2seqVocabs *v, Metadata *meta,
                  Error *err) {
    Seq2seqConfig config;
    Error inner;
    if (!checkpoint_read_metadata(path, meta, err)) return false;
    if (!seq2seq_config_from_metadata(meta, &config, &inner))
        return error_set(err, "%s: %s", path, inner.message);
    const char *source = metadata_get(meta, "vocab.source"), *target = metadata_get(meta, "vocab.target");
    const char *tokens = metadata_get(meta, "data.tokens");
    if (source == NULL || target == NULL || tokens == NULL)
        return error_set(err, "%s: the metadata lacks vocab.source, vocab.target or data.tokens", path);
    seq2seq_vocabs_init(v, strcmp(tokens, "word") == 0);
    vocab_free(&v->source), vocab_free(&v->target);
    bool ok = vocab_from_json(&v->source, source, &inner) && vocab_from_json(&v->target, target, &inner);
    if (!ok) error_set(err, "%s: bad vocabulary: %s", path, inner.message);
    if (ok && (v->source.size != config.source_vocab || v->target.size != config.target_vocab))
        ok = error_set(err, "%s: vocabularies of %d and %d tokens, but config says %d and %d", path,
                       v->source.size, v->target.size, config.source_vocab, config.target_vocab);
    if (!ok) {
        seq2seq_vocabs_free(v);
        return false;
    }
    Rng rng;
    rng_seed(&rng, 0, 0);
    seq2seq_model_build(m, &config, &rng);
    metadata_free(meta);
    if (!checkpoint_load(path, &m->params, NULL, "seq2seq", meta, err)) {
        seq2seq_model_free(m);
        seq2seq_vocabs_free(v);
        return false;
    }
    return true;
}

/* ======================================================================== */
/* Plots                                                                      */
/* ======================================================================== */

/* Reads columns 0 and `column` of a CSV written by this program (a header
 * row, then numbers).  Returns the number of rows read into the arrays. */
static int read_csv_columns(const char *path, int column, float **x, float **y) {
    FILE *file = fopen(path, "r");
    int count = 0, capacity = 0;
    *x = *y = NULL;
    if (file == NULL) return 0;
    char line[1024];
    if (fgets(line, sizeof line, file) == NULL) line[0] = '\0'; /* header */
    while (fgets(line, sizeof line, file)) {
        char *field = line, *end;
        float first = strtof(field, &end), value = first;
        for (int c = 0; c < column && end != field; c++) {
            field = end + (*end == ',');
            value = strtof(field, &end);
        }
        if (end == field) continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            *x = xrealloc(*x, (size_t)capacity * sizeof(float));
            *y = xrealloc(*y, (size_t)capacity * sizeof(float));
        }
        (*x)[count] = first, (*y)[count++] = value;
    }
    fclose(file);
    return count;
}

/* Training loss of every batch (train_loss.csv) and validation loss
 * (metrics.csv), both kept across --resume. */
static bool plot_loss(const char *dir, PlotTerm term, Error *err) {
    char path[4096];
    float *steps, *train, *val_steps, *val;
    snprintf(path, sizeof path, "%s/train_loss.csv", dir);
    int train_count = read_csv_columns(path, 1, &steps, &train);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    int val_count = read_csv_columns(path, 2, &val_steps, &val);
    bool ok = true;
    if (train_count > 0) {
        PlotTarget target = {.dir = dir, .term = term};
        PlotSeries series[2] = {{"train (each batch)", steps, train, train_count},
                                {"validation", val_steps, val, val_count}};
        PlotAxes axes = {.title = "seq2seq: cross-entropy per target token", .x_label = "step",
                         .y_label = "loss", .log_y = true};
        ok = plot_lines(&target, "loss", &axes, series, val_count > 0 ? 2 : 1, err);
    }
    free(steps), free(train), free(val_steps), free(val);
    return ok;
}

bool seq2seq_plot_attention(const PlotTarget *target, const char *stem, const Seq2seqVocabs *v,
                            const int *source, int S, const int *output, int n,
                            const float *weights, Error *err) {
    int rows = n + 1; /* the outputs and <eos> */
    const char **row_labels = xmalloc((size_t)rows * sizeof(char *));
    const char **col_labels = xmalloc((size_t)S * sizeof(char *));
    for (int i = 0; i < rows; i++) row_labels[i] = v->target.tokens[i < n ? output[i] : SEQ2SEQ_EOS];
    for (int j = 0; j < S; j++) col_labels[j] = v->source.tokens[source[j]];
    HeatmapData data = {.rows = rows, .cols = S, .values = weights, .row_labels = row_labels,
                        .col_labels = col_labels};
    PlotAxes axes = {.title = "attention: output token (row) vs source token (column)",
                     .x_label = "source", .y_label = "output"};
    bool ok = plot_heatmap(target, stem, &axes, &data, err);
    free(row_labels), free(col_labels);
    return ok;
}

/* Heatmaps of the first `count` validation examples, greedy decoding. */
static bool plot_heatmaps(Graph *g, const Seq2seqModel *m, const Seq2seqData *d,
                          const PlotTarget *target, int count, Error *err) {
    bool ok = true;
    for (int i = 0; ok && i < count && i < d->validation.count; i++) {
        const Seq2seqPair *p = &d->validation.pairs[i];
        int max_steps = 2 * p->target_length + 2, n;
        int *out = xmalloc((size_t)max_steps * sizeof(int));
        float *weights = xmalloc((size_t)max_steps * p->source_length * sizeof(float));
        seq2seq_greedy(g, m, p->source, &p->source_length, 1, p->source_length, max_steps, out, &n, weights);
        char stem[64];
        snprintf(stem, sizeof stem, "attention_%d", i + 1);
        ok = seq2seq_plot_attention(target, stem, &d->vocabs, p->source, p->source_length, out,
                                    n < max_steps ? n : max_steps - 1, weights, err);
        free(out), free(weights);
    }
    return ok;
}

bool seq2seq_plot_length_chart(const PlotTarget *target, const char *title, int low, int high,
                               const float *const *accuracy, const char *const *names, int runs,
                               int train_max, Error *err) {
    int count = high - low + 1;
    float *x = xmalloc((size_t)count * sizeof(float));
    float **ys = xmalloc((size_t)runs * sizeof(float *));
    PlotSeries *series = xmalloc((size_t)runs * sizeof(PlotSeries));
    for (int r = 0; r < runs; r++) {
        ys[r] = xmalloc((size_t)count * sizeof(float));
        int kept = 0;
        for (int i = 0; i < count; i++) {
            if (accuracy[r][i] < 0) continue; /* no example of this length */
            x[kept] = (float)(low + i); /* the same lengths for every run */
            ys[r][kept++] = 100.0f * accuracy[r][i];
        }
        series[r] = (PlotSeries){names[r], x, ys[r], kept};
    }
    char full_title[256];
    snprintf(full_title, sizeof full_title, "%s (trained on lengths up to %d)", title, train_max);
    /* Accuracy falls with length, so the lower left is where curves are not. */
    PlotAxes axes = {.title = full_title, .x_label = "source length (tokens)",
                     .y_label = "exact-match accuracy (%)", .legend = "bottom left"};
    bool ok = plot_lines(target, "length_accuracy", &axes, series, runs, err);
    for (int r = 0; r < runs; r++) free(ys[r]);
    free(ys), free(series), free(x);
    return ok;
}

/* ======================================================================== */
/* Training                                                                   */
/* ======================================================================== */

/* Everything a run needs besides the model: kept together so that saving
 * and resuming see the same state. */
typedef struct {
    Rng data_rng;          /* draws examples (tasks) or shuffles (files) */
    Rng teacher_rng;       /* teacher-forcing coins                        */
    BatchSampler sampler;  /* --data only                                  */
    long step;             /* steps done                                   */
    double loss_sum;       /* training loss since the last metrics row     */
    long loss_count;
} RunState;

static void data_metadata(const Seq2seqSettings *s, const Seq2seqData *d, Metadata *meta) {
    metadata_set(meta, "data.source", d->from_file ? s->common.data : "task");
    metadata_set(meta, "data.task", d->from_file ? "" : seq2seq_task_name(d->spec.task));
    metadata_set_int(meta, "data.min_length", d->spec.min_length);
    metadata_set_int(meta, "data.max_length", d->spec.max_length);
    metadata_set_int(meta, "data.symbols", d->spec.symbols);
    metadata_set_int(meta, "data.max_source", d->max_source);
    metadata_set_int(meta, "data.max_target", d->max_target);
    metadata_set(meta, "data.lowercase", s->lowercase ? "1" : "0");
    /* --val-data: where the held-out pairs came from ("" when carved from
     * --data by --val-fraction, or generated); eval and --resume read it. */
    metadata_set(meta, "data.val_data", s->val_data ? s->val_data : "");
    metadata_set_int(meta, "data.train_pairs", d->from_file ? d->train.count : 0);
    metadata_set_int(meta, "data.validation_pairs", d->validation.count);
}

static void run_metadata(const RunState *run, bool from_file, Metadata *meta) {
    metadata_set_int(meta, "step", run->step);
    metadata_set_rng(meta, "rng.data", &run->data_rng);
    metadata_set_rng(meta, "rng.teacher_forcing", &run->teacher_rng);
    metadata_set_double(meta, "train.loss_sum", run->loss_sum);
    metadata_set_int(meta, "train.loss_count", run->loss_count);
    if (!from_file) return;
    metadata_set_int(meta, "sampler.position", run->sampler.position);
    metadata_set_int(meta, "sampler.epoch", run->sampler.epoch);
    /* The current permutation: the next epochs' shuffles start from it. */
    size_t size = (size_t)run->sampler.count * 12 + 1, used = 0;
    char *order = xmalloc(size);
    order[0] = '\0';
    for (int i = 0; i < run->sampler.count; i++)
        used += (size_t)snprintf(order + used, size - used, i ? ",%d" : "%d", run->sampler.order[i]);
    metadata_set(meta, "sampler.order", order);
    free(order);
}

static bool run_from_metadata(const Metadata *meta, bool from_file, RunState *run, Error *err) {
    if (!metadata_get_int(meta, "step", &run->step, err) ||
        !metadata_get_rng(meta, "rng.data", &run->data_rng, err) ||
        !metadata_get_rng(meta, "rng.teacher_forcing", &run->teacher_rng, err) ||
        !metadata_get_double(meta, "train.loss_sum", &run->loss_sum, err) ||
        !metadata_get_int(meta, "train.loss_count", &run->loss_count, err))
        return false;
    if (!from_file) return true;
    long position, epoch;
    const char *order = metadata_get(meta, "sampler.order");
    if (!metadata_get_int(meta, "sampler.position", &position, err) ||
        !metadata_get_int(meta, "sampler.epoch", &epoch, err))
        return false;
    if (order == NULL || position < 0 || position >= run->sampler.count)
        return error_set(err, "checkpoint sampler state does not match the data (%d pairs)",
                         run->sampler.count);
    char *end = (char *)order;
    for (int i = 0; i < run->sampler.count; i++) {
        long value = strtol(end + (i > 0), &end, 10);
        if (value < 0 || value >= run->sampler.count || (i + 1 < run->sampler.count && *end != ','))
            return error_set(err, "checkpoint sampler.order does not match the data (%d pairs)",
                             run->sampler.count);
        run->sampler.order[i] = (int)value;
    }
    run->sampler.position = (int)position;
    run->sampler.epoch = epoch;
    return true;
}

static void save_or_exit(const char *path, const Seq2seqModel *m, const Optimizer *opt,
                         const Seq2seqSettings *s, const Seq2seqData *d, const RunState *run) {
    Metadata meta;
    metadata_init(&meta);
    data_metadata(s, d, &meta);
    run_metadata(run, d->from_file, &meta);
    metadata_set_float(&meta, "train.teacher_forcing", s->teacher_forcing);
    Error err;
    bool ok = seq2seq_save(path, m, opt, &d->vocabs, &meta, &err);
    metadata_free(&meta);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
}

/* --val-data on resume as at the start: without it the held-out pairs
 * would be carved from --data again, changing the training set under the
 * saved sampler.  (The file itself may have moved: only its use is checked.) */
static bool same_held_out_source(const char *path, const Metadata *meta, const char *val_data,
                                 Error *err) {
    const char *saved = metadata_get(meta, "data.val_data");
    bool saved_used = saved != NULL && saved[0] != '\0';
    if (saved_used && val_data == NULL)
        return error_set(err, "%s: was trained with --val-data %s; resume with --val-data too",
                         path, saved);
    if (!saved_used && val_data != NULL)
        return error_set(err, "%s: was trained without --val-data (its held-out pairs came from "
                         "--val-fraction of --data); resume without --val-data %s", path, val_data);
    return true;
}

/* --resume: the checkpoint must come from the same settings and data. */
static bool resume_from(const char *path, Seq2seqModel *m, Optimizer *opt, const Seq2seqData *d,
                        const char *val_data, RunState *run, Error *err) {
    Metadata meta;
    Seq2seqConfig saved;
    Error inner;
    if (!checkpoint_read_metadata(path, &meta, err)) return false;
    bool ok = seq2seq_config_from_metadata(&meta, &saved, &inner);
    if (!ok) error_set(err, "%s: %s", path, inner.message);
    if (ok && memcmp(&saved, &m->config, sizeof saved) != 0)
        ok = error_set(err, "%s: was trained with other model options (%s, %s attention, %d layers, "
                       "embed %d, hidden %d); resume with the same ones", path,
                       seq2seq_cell_name(saved.cell), seq2seq_attention_name(saved.attention),
                       saved.layers, saved.embed, saved.hidden);
    if (ok) ok = same_held_out_source(path, &meta, val_data, err);
    char *source = vocab_to_json(&d->vocabs.source), *target = vocab_to_json(&d->vocabs.target);
    const char *saved_source = metadata_get(&meta, "vocab.source"), *saved_target = metadata_get(&meta, "vocab.target");
    if (ok && (!saved_source || !saved_target || strcmp(source, saved_source) || strcmp(target, saved_target)))
        ok = error_set(err, "%s: its vocabularies differ from this data's; resume with the same "
                       "--task/--data options", path);
    free(source), free(target);
    metadata_free(&meta);
    if (ok) ok = checkpoint_load(path, &m->params, opt, "seq2seq", &meta, err);
    if (ok && !run_from_metadata(&meta, d->from_file, run, &inner))
        ok = error_set(err, "%s: %s", path, inner.message);
    metadata_free(&meta);
    return ok;
}

/* One batch: drawn fresh from a generated task, or the sampler's next rows. */
static void next_batch(const Seq2seqData *d, RunState *run, Seq2seqPair *pairs, int *rows,
                       int B, Seq2seqBatch *batch) {
    if (d->from_file) {
        batch_sampler_next(&run->sampler, &run->data_rng, rows, B);
        seq2seq_batch_fill(batch, d->train.pairs, rows, B);
        return;
    }
    for (int b = 0; b < B; b++) seq2seq_data_sample(d, &run->data_rng, &pairs[b]);
    seq2seq_batch_fill(batch, pairs, NULL, B);
}

static void print_final(const Seq2seqData *d, long step, double train_loss,
                        const Seq2seqScores *v) {
    printf("final: step=%ld train_loss=%.4f val_loss=%.4f val_token_accuracy=%.4f "
           "val_exact_match=%.4f", step, train_loss, v->loss, v->token_accuracy, v->exact_match);
    if (d->from_file) printf(" val_bleu=%.4f", v->bleu);
    printf("\n");
}

/* After training: loss curve, accuracy against length, attention maps. */
static void plot_run(Graph *g, const Seq2seqModel *m, const Seq2seqSettings *s,
                     const Seq2seqData *d) {
    Error err;
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    if (!plot_loss(s->common.out, target.term, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!d->from_file) {
        int low = s->eval_min_length, high = s->eval_max_length;
        float *accuracy = xmalloc((size_t)(high - low + 1) * sizeof(float));
        Rng rng;
        rng_seed(&rng, (uint64_t)s->common.seed, 5);
        seq2seq_length_accuracy(g, m, d, low, high, s->eval_per_length, 1, 0.0f, &rng, accuracy);
        char name[64];
        snprintf(name, sizeof name, "%s attention, %s", seq2seq_attention_name(m->config.attention),
                 seq2seq_cell_name(m->config.cell));
        const char *names[1] = {name};
        const float *curves[1] = {accuracy};
        if (!seq2seq_plot_length_chart(&target, "seq2seq: accuracy against source length", low,
                                       high, curves, names, 1, d->spec.max_length, &err))
            error_exit(&err, EXIT_RUNTIME_ERROR);
        free(accuracy);
    }
    if (m->config.attention != SEQ2SEQ_NO_ATTENTION && !plot_heatmaps(g, m, d, &target, s->heatmaps, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
}

/* Allocated once before the loop: a step then allocates nothing. */
typedef struct {
    Seq2seqBatch batch;
    Seq2seqPair *pairs; /* (B) generated examples   */
    int *rows;          /* (B) --data sampler rows  */
} StepBuffers;

static void step_buffers_init(StepBuffers *buffers, const Seq2seqData *d, int B) {
    seq2seq_batch_init(&buffers->batch, B, d->max_source, d->max_target);
    buffers->pairs = xcalloc((size_t)B, sizeof(Seq2seqPair));
    for (int b = 0; b < B; b++) {
        buffers->pairs[b].source = xmalloc((size_t)d->max_source * sizeof(int));
        buffers->pairs[b].target = xmalloc((size_t)(d->max_target > 0 ? d->max_target : 1) * sizeof(int));
    }
    buffers->rows = xmalloc((size_t)B * sizeof(int));
}

static void step_buffers_free(StepBuffers *buffers, int B) {
    for (int b = 0; b < B; b++) free(buffers->pairs[b].source), free(buffers->pairs[b].target);
    free(buffers->pairs), free(buffers->rows);
    seq2seq_batch_free(&buffers->batch);
}

/* --lr-schedule cosine: a short linear warmup, then cosine decay to lr/20,
 * which settles the last steps (constant: lr throughout).  A function of
 * the step alone, so a resumed run follows the same curve. */
static float learning_rate(const Seq2seqSettings *s, long step) {
    Schedule schedule = {.kind = s->lr_schedule == 1 ? SCHEDULE_WARMUP_COSINE : SCHEDULE_CONSTANT,
                         .base_lr = s->common.lr, .min_lr = s->common.lr / 20,
                         .warmup_steps = s->common.steps / 20 < 100 ? s->common.steps / 20 : 100,
                         .total_steps = s->common.steps};
    return schedule_lr(&schedule, step);
}

/* One optimisation step; returns the batch loss. */
static float train_step(Graph *g, Seq2seqModel *m, Optimizer *opt, const Seq2seqSettings *s,
                        const Seq2seqData *d, RunState *run, StepBuffers *buffers) {
    graph_reset(g);
    g->step = run->step;
    params_zero_grad(&m->params);
    next_batch(d, run, buffers->pairs, buffers->rows, s->common.batch, &buffers->batch);
    Seq2seqOutput out = seq2seq_forward(g, m, &buffers->batch, s->teacher_forcing, &run->teacher_rng);
    float loss = out.loss->data[0];
    if (!isfinite(loss)) return loss;
    graph_backward(g, out.loss);
    params_clip_grad_norm(&m->params, s->clip);
    optimizer_step(opt, &m->params, learning_rate(s, run->step));
    return loss;
}

/* The two files a session appends to. */
typedef struct {
    MetricsLog metrics; /* metrics.csv: a row every --eval-every steps */
    MetricsLog batches; /* train_loss.csv: a row every step            */
} RunLogs;

static void logs_open(const Seq2seqSettings *s, long step, RunLogs *logs) {
    char path[4096];
    Error err;
    snprintf(path, sizeof path, "%s/metrics.csv", s->common.out);
    if (s->common.resume && !metrics_truncate(path, step, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!metrics_open(&logs->metrics, path,
                      "step,train_loss,val_loss,val_token_accuracy,val_exact_match,val_bleu,lr",
                      s->common.resume, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/train_loss.csv", s->common.out);
    if (s->common.resume && !metrics_truncate(path, step, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!metrics_open(&logs->batches, path, "step,train_loss", s->common.resume, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
}

/* Steps up to `last`, with validation, metrics and checkpoints on the way.
 * False at a non-finite loss.  *val and *train_loss: the last evaluation. */
static bool run_session(Graph *g, Seq2seqModel *m, Optimizer *opt, const Seq2seqSettings *s,
                        const Seq2seqData *d, RunState *run, long last, const char *checkpoint,
                        Seq2seqScores *val, double *train_loss) {
    StepBuffers buffers;
    step_buffers_init(&buffers, d, s->common.batch);
    RunLogs logs;
    logs_open(s, run->step, &logs);
    Progress progress;
    progress_start(&progress, run->step, s->common.steps, "seq/s", s->common.quiet);
    bool finite = true;
    while (finite && run->step < last) {
        float loss = train_step(g, m, opt, s, d, run, &buffers);
        if (!(finite = isfinite(loss))) {
            progress_finish(&progress);
            fprintf(stderr, "tinyzoo: seq2seq: the training loss became %g at step %ld; lower --lr "
                    "or --clip, or find the op with --check-numerics\n", (double)loss, run->step + 1);
            break;
        }
        run->step++;
        run->loss_sum += loss, run->loss_count++;
        metrics_write(&logs.batches, (double[]){(double)run->step, loss}, 2);
        progress_update(&progress, run->step, loss, s->common.batch);
        /* Not at a --stop-at step: the resumed run logs what one run would. */
        if (run->step % s->eval_every == 0 || run->step == s->common.steps) {
            *val = seq2seq_evaluate(g, m, &d->validation, 256, 1, 0.0f);
            *train_loss = run->loss_sum / (double)run->loss_count;
            metrics_write(&logs.metrics, (double[]){(double)run->step, *train_loss, val->loss,
                                                    val->token_accuracy, val->exact_match, val->bleu,
                                                    learning_rate(s, run->step - 1)}, 7);
            run->loss_sum = 0, run->loss_count = 0;
        }
        if (s->common.checkpoint_every > 0 && run->step % s->common.checkpoint_every == 0)
            save_or_exit(checkpoint, m, opt, s, d, run);
    }
    if (finite) progress_finish(&progress);
    metrics_close(&logs.metrics);
    metrics_close(&logs.batches);
    step_buffers_free(&buffers, s->common.batch);
    return finite;
}

/* The run directory is created only once the data and any --resume
 * checkpoint have loaded, so bad input leaves nothing behind. */
static void create_run_directory(const Seq2seqSettings *s, const Option *options, int count) {
    char path[4096];
    Error err;
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/config.txt", s->common.out);
    if (!options_write_config(path, options, count, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
}

int seq2seq_train(const Seq2seqSettings *s, const Option *options, int option_count) {
    Error err;
    threads_set(s->common.threads);
    Seq2seqData data;
    if (!seq2seq_data_build(s, &data, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (data.from_file && s->common.batch > data.train.count && !s->common.quiet)
        fprintf(stderr, "note: --batch %d is larger than the %d training pairs; batches repeat pairs\n",
                s->common.batch, data.train.count);
    /* Separate random streams: data 1, initialisation 2, teacher forcing 4
     * (3 and 5 pick the validation and chart examples). */
    Seq2seqConfig config = {s->cell, s->attention, s->layers, s->embed, s->hidden,
                            data.vocabs.source.size, data.vocabs.target.size};
    RunState run = {0};
    Rng init_rng;
    rng_seed(&init_rng, (uint64_t)s->common.seed, 2);
    rng_seed(&run.data_rng, (uint64_t)s->common.seed, 1);
    rng_seed(&run.teacher_rng, (uint64_t)s->common.seed, 4);
    Seq2seqModel model;
    seq2seq_model_build(&model, &config, &init_rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    if (data.from_file) batch_sampler_init(&run.sampler, data.train.count, &run.data_rng);
    char checkpoint[4096];
    snprintf(checkpoint, sizeof checkpoint, "%s/model.safetensors", s->common.out);
    if (s->common.resume) {
        const char *from = s->common.checkpoint ? s->common.checkpoint : checkpoint;
        if (!resume_from(from, &model, &opt, &data, s->val_data, &run, &err))
            error_exit(&err, EXIT_RUNTIME_ERROR);
        if (!s->common.quiet) fprintf(stderr, "resuming %s at step %ld\n", from, run.step);
    }
    create_run_directory(s, options, option_count);
    Graph g;
    graph_init(&g, 16 << 20, 4096);
    g.check_numerics = s->common.check_numerics;
    /* --stop-at K ends this session at step K of the --steps schedule;
     * --resume continues it, exactly as if it had never stopped. */
    long last = s->stop_at > 0 && s->stop_at < s->common.steps ? s->stop_at : s->common.steps;
    Seq2seqScores val = {0};
    double train_loss = NAN;
    int status = EXIT_RUNTIME_ERROR;
    if (run_session(&g, &model, &opt, s, &data, &run, last, checkpoint, &val, &train_loss)) {
        if (val.count == 0 || (run.step != s->common.steps && run.step % s->eval_every != 0)) {
            /* A session stopped between two rows: report it without a row. */
            val = seq2seq_evaluate(&g, &model, &data.validation, 256, 1, 0.0f);
            if (run.loss_count > 0) train_loss = run.loss_sum / (double)run.loss_count;
        }
        save_or_exit(checkpoint, &model, &opt, s, &data, &run);
        plot_run(&g, &model, s, &data);
        print_final(&data, run.step, train_loss, &val);
        status = 0;
    }
    graph_free(&g);
    if (data.from_file) batch_sampler_free(&run.sampler);
    optimizer_free(&opt);
    seq2seq_model_free(&model);
    seq2seq_data_free(&data);
    return status;
}
