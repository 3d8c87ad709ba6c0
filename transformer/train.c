/* transformer/train.c: the training loop, evaluation and checkpoints.
 *
 * Legend: B batch, T time, C d_model, V vocabulary, K classes.
 *
 * One step: graph_reset, sample a batch (seeded Rng), forward, loss,
 * backward, clip the gradient norm, AdamW at the scheduled learning rate
 * (linear warmup, then cosine decay).  Every --eval-every steps the
 * validation loss; every --checkpoint-every steps and at the end a
 * checkpoint with the optimizer state and every Rng, so that --resume
 * continues bit for bit: N steps in one run give exactly the weights of k
 * steps, a restart, and N - k more.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "matmul.h"
#include "plot.h"
#include "transformer.h"

/* Rng streams (rng_seed's second argument): independent sequences from one
 * seed, so adding dropout does not change the batches, and so on. */
enum { STREAM_DATA = 1, STREAM_INIT = 2, STREAM_DROPOUT = 3, STREAM_VALIDATION = 4,
       STREAM_BATCHES = 5 };

static const char ARCHITECTURE[] = "transformer";

/* ==== Loss of one batch ============================================================ */

/* The training objective for this data: next-token (GPT) or masked-token
 * (BERT) cross-entropy over the positions with a target, or the class
 * cross-entropy.  *logits_out receives the logits ((B,T,V) or (B,K)). */
static Tensor *batch_loss(Graph *g, const Transformer *m, const TransformerData *d,
                          const TransformerBatch *batch, Rng *dropout_rng, Tensor **logits_out) {
    bool classify = d->kind == TRANSFORMER_CLASSIFY;
    TransformerInput in = {.ids = batch->ids, .batch = batch->batch, .time = batch->time,
                           .lengths = m->config.mode == TRANSFORMER_BERT ? batch->lengths : NULL,
                           .dropout_rng = dropout_rng};
    Tensor *hidden = transformer_forward(g, m, &in); /* (B, T, C) */
    Tensor *logits = classify ? transformer_class_logits(g, m, hidden, batch->lengths)
                              : transformer_lm_logits(g, m, hidden);
    if (logits_out) *logits_out = logits;
    return op_cross_entropy(g, logits, classify ? batch->labels : batch->targets, TRANSFORMER_NO_TARGET);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ==== Evaluation ===================================================================== */

/* Loss and accuracy on the validation part.  For the example tasks the
 * accuracy is exact match: every answer token (and the end mark) is the
 * argmax given the true prefix.  That is the same as greedy decoding: if
 * each step is right given a right prefix, greedy never leaves the right
 * path, and the first wrong step is wrong in both. */
TransformerEval transformer_evaluate(Graph *g, const Transformer *m, const TransformerData *d,
                                     int max_batches, TransformerBatch *batch) {
    bool saved_training = g->training, saved_no_grad = g->no_grad;
    Rng rng;
    rng_seed(&rng, 0x5eed, STREAM_VALIDATION); /* the same masking at every evaluation */
    double loss_sum = 0, loss_count = 0, correct = 0, total = 0;
    int V = m->config.vocab, K = m->config.classes, T = batch->time;
    int limit = max_batches * batch->batch;
    for (int index = 0; index < max_batches; index++) {
        int rows = transformer_batch_validation(d, m->config.mode == TRANSFORMER_BERT, index, limit,
                                                &rng, batch);
        if (rows == 0) break;
        graph_reset(g);
        g->no_grad = true;
        g->training = false;
        Tensor *logits;
        float loss = batch_loss(g, m, d, batch, NULL, &logits)->data[0];
        if (d->kind == TRANSFORMER_CLASSIFY) {
            for (int b = 0; b < rows; b++)
                correct += argmax(logits->data + (size_t)b * K, K) == batch->labels[b];
            loss_sum += (double)loss * rows, loss_count += rows, total += rows;
            continue;
        }
        double counted = 0; /* positions with a target in this batch */
        for (int b = 0; b < rows; b++) {
            bool all_right = true;
            for (int t = 0; t < T; t++) {
                int target = batch->targets[(size_t)b * T + t];
                if (target < 0) continue;
                bool right = argmax(logits->data + ((size_t)b * T + t) * V, V) == target;
                all_right = all_right && right;
                counted++;
                if (d->kind == TRANSFORMER_STREAM) correct += right, total++;
            }
            if (d->kind == TRANSFORMER_EXAMPLES) correct += all_right, total++;
        }
        loss_sum += (double)loss * counted, loss_count += counted;
    }
    g->training = saved_training;
    g->no_grad = saved_no_grad;
    TransformerEval result = {
        .loss = loss_count > 0 ? (float)(loss_sum / loss_count) : 0.0f,
        .accuracy = total > 0 ? (float)(correct / total) : 0.0f,
        .metric = d->kind == TRANSFORMER_EXAMPLES    ? "val_exact_match"
                  : d->kind == TRANSFORMER_CLASSIFY  ? "val_accuracy"
                  : m->config.mode == TRANSFORMER_BERT ? "val_masked_accuracy"
                                                     : "val_next_token_accuracy",
    };
    return result;
}

float transformer_class_accuracy(Graph *g, const Transformer *m, const TransformerData *d,
                                 const int *rows, int count, TransformerBatch *batch) {
    bool saved_training = g->training, saved_no_grad = g->no_grad;
    int B = batch->batch, T = batch->time, K = m->config.classes, correct = 0;
    for (int first = 0; first < count; first += B) {
        int n = count - first < B ? count - first : B;
        for (int b = 0; b < B; b++) { /* unused rows repeat the last example */
            int row = rows[first + (b < n ? b : n - 1)];
            memcpy(batch->ids + (size_t)b * T, d->tokens + (size_t)row * d->width, (size_t)T * sizeof(int));
            batch->lengths[b] = d->lengths[row];
        }
        graph_reset(g);
        g->no_grad = true, g->training = false;
        TransformerInput in = {.ids = batch->ids, .lengths = batch->lengths, .batch = B, .time = T};
        Tensor *logits = transformer_class_logits(g, m, transformer_forward(g, m, &in), batch->lengths);
        for (int b = 0; b < n; b++)
            correct += argmax(logits->data + (size_t)b * K, K) == d->labels[rows[first + b]];
    }
    g->training = saved_training, g->no_grad = saved_no_grad;
    return count > 0 ? (float)correct / (float)count : 0.0f;
}

/* ==== Checkpoint metadata ============================================================= */

void transformer_metadata_write(Metadata *meta, const Transformer *m, const TransformerData *d,
                                const TransformerDataOptions *o, long step) {
    const TransformerConfig *c = &m->config;
    metadata_set(meta, "architecture", ARCHITECTURE);
    metadata_set_int(meta, "vocab_size", c->vocab);
    metadata_set_int(meta, "context", c->context);
    metadata_set_int(meta, "layers", c->layers);
    metadata_set_int(meta, "heads", c->heads);
    metadata_set_int(meta, "d_model", c->d_model);
    metadata_set_int(meta, "d_ff", c->d_ff);
    metadata_set_int(meta, "classes", c->classes);
    metadata_set(meta, "positions", transformer_positions_name(c->positions));
    metadata_set(meta, "mode", transformer_mode_name(c->mode));
    metadata_set_int(meta, "tied_head", c->tied_head);
    metadata_set_int(meta, "bias", c->bias);
    metadata_set_float(meta, "dropout", c->dropout);
    char *vocab = vocab_to_json(&d->vocab);
    metadata_set(meta, "vocab", vocab);
    free(vocab);
    metadata_set(meta, "tokens", d->word_level ? "word" : "char");
    metadata_set_int(meta, "end_id", d->end_id);
    metadata_set(meta, "task", transformer_task_name(o->task));
    if (o->data_path) metadata_set(meta, "data", o->data_path);
    if (o->val_data_path) metadata_set(meta, "val_data", o->val_data_path);
    if (o->task == TRANSFORMER_TASK_PAIRS) metadata_set_float(meta, "val_fraction", o->val_fraction);
    metadata_set_int(meta, "task_length", o->max_length);
    metadata_set_int(meta, "examples", o->examples);
    metadata_set_int(meta, "seed", (long)o->seed);
    metadata_set_int(meta, "step", step);
}

static bool get_int_in(const Metadata *meta, const char *key, long low, long high, int *value,
                       Error *err) {
    long v;
    if (!metadata_get_int(meta, key, &v, err)) return false;
    if (v < low || v > high) return error_set(err, "checkpoint: %s = %ld outside [%ld, %ld]", key, v, low, high);
    *value = (int)v;
    return true;
}

bool transformer_config_from_metadata(const Metadata *meta, TransformerConfig *c, Error *err) {
    memset(c, 0, sizeof *c);
    const char *architecture = metadata_get(meta, "architecture");
    if (architecture == NULL || strcmp(architecture, ARCHITECTURE) != 0)
        return error_set(err, "checkpoint: architecture is \"%s\", expected \"%s\"",
                         architecture ? architecture : "(none)", ARCHITECTURE);
    int tied = 0, bias = 0;
    if (!get_int_in(meta, "vocab_size", 2, 1 << 24, &c->vocab, err) ||
        !get_int_in(meta, "context", 1, TRANSFORMER_MAX_CONTEXT, &c->context, err) ||
        !get_int_in(meta, "layers", 1, TRANSFORMER_MAX_LAYERS, &c->layers, err) ||
        !get_int_in(meta, "heads", 1, 1 << 12, &c->heads, err) ||
        !get_int_in(meta, "d_model", 1, 1 << 16, &c->d_model, err) ||
        !get_int_in(meta, "d_ff", 1, 1 << 18, &c->d_ff, err) ||
        !get_int_in(meta, "classes", 0, 1 << 16, &c->classes, err) ||
        !get_int_in(meta, "tied_head", 0, 1, &tied, err) ||
        !get_int_in(meta, "bias", 0, 1, &bias, err) ||
        !metadata_get_float(meta, "dropout", &c->dropout, err))
        return false;
    c->tied_head = tied, c->bias = bias;
    const char *positions = metadata_get(meta, "positions"), *mode = metadata_get(meta, "mode");
    if (positions == NULL || mode == NULL) return error_set(err, "checkpoint: positions or mode missing");
    if (strcmp(positions, "sinusoidal") == 0) c->positions = TRANSFORMER_POS_SINUSOIDAL;
    else if (strcmp(positions, "learned") == 0) c->positions = TRANSFORMER_POS_LEARNED;
    else if (strcmp(positions, "none") == 0) c->positions = TRANSFORMER_POS_NONE;
    else return error_set(err, "checkpoint: positions \"%s\" unknown", positions);
    if (strcmp(mode, "gpt") == 0) c->mode = TRANSFORMER_GPT;
    else if (strcmp(mode, "bert") == 0) c->mode = TRANSFORMER_BERT;
    else return error_set(err, "checkpoint: mode \"%s\" unknown", mode);
    return transformer_config_check(c, err);
}

bool transformer_data_options_from_metadata(const Metadata *meta, TransformerDataOptions *o,
                                            Error *err) {
    memset(o, 0, sizeof *o);
    const char *task = metadata_get(meta, "task");
    if (task == NULL || !transformer_task_parse(task, &o->task))
        return error_set(err, "checkpoint: task \"%s\" unknown", task ? task : "(none)");
    o->data_path = metadata_get(meta, "data");
    o->val_data_path = metadata_get(meta, "val_data");
    o->val_fraction = 0.1f; /* only pairs checkpoints record it */
    if (metadata_get(meta, "val_fraction") &&
        !metadata_get_float(meta, "val_fraction", &o->val_fraction, err))
        return false;
    if (!(o->val_fraction >= 0 && o->val_fraction <= 1))
        return error_set(err, "checkpoint: val_fraction = %g outside [0, 1]", (double)o->val_fraction);
    long seed;
    if (!get_int_in(meta, "context", 1, TRANSFORMER_MAX_CONTEXT, &o->context, err) ||
        !get_int_in(meta, "task_length", 0, 1 << 20, &o->max_length, err) ||
        !get_int_in(meta, "examples", 0, 1 << 30, &o->examples, err) ||
        !metadata_get_int(meta, "seed", &seed, err))
        return false;
    o->seed = (uint64_t)seed;
    return true;
}

bool transformer_vocab_from_metadata(const Metadata *meta, Vocab *vocab, bool *word_level,
                                     Error *err) {
    const char *json = metadata_get(meta, "vocab"), *tokens = metadata_get(meta, "tokens");
    if (json == NULL || tokens == NULL) return error_set(err, "checkpoint: no vocabulary");
    *word_level = strcmp(tokens, "word") == 0;
    vocab_init(vocab);
    return vocab_from_json(vocab, json, err);
}

bool transformer_load(const char *path, Transformer *m, Metadata *meta, Error *err) {
    metadata_init(meta);
    TransformerConfig config;
    if (!checkpoint_read_metadata(path, meta, err)) return false;
    if (!transformer_config_from_metadata(meta, &config, err)) {
        char reason[sizeof err->message];
        snprintf(reason, sizeof reason, "%s", err->message);
        metadata_free(meta);
        return error_set(err, "%s: %s", path, reason);
    }
    metadata_free(meta);
    transformer_build(m, &config);
    if (!checkpoint_load(path, &m->params, NULL, ARCHITECTURE, meta, err)) {
        transformer_free(m);
        return false;
    }
    return true;
}

/* ==== The training run ================================================================= */

/* Everything one run holds, allocated before the first step. */
typedef struct {
    const TransformerTrainSettings *s;
    TransformerDataOptions data_options;
    TransformerData data;
    Transformer model;
    Optimizer opt;
    Graph g;
    TransformerBatch batch, validation_batch;
    Rng batch_rng, dropout_rng;
    Schedule schedule;
    MetricsLog log;
    char checkpoint_path[4096];
    long step; /* steps done */
    double loss_sum; /* training loss since the last metrics row, kept across --resume */
    long loss_count;
} Run;

static void run_save(Run *r) {
    Metadata meta;
    metadata_init(&meta);
    transformer_metadata_write(&meta, &r->model, &r->data, &r->data_options, r->step);
    metadata_set_rng(&meta, "rng.batches", &r->batch_rng);
    metadata_set_rng(&meta, "rng.dropout", &r->dropout_rng);
    metadata_set_double(&meta, "train.loss_sum", r->loss_sum);
    metadata_set_int(&meta, "train.loss_count", r->loss_count);
    Error err;
    bool ok = checkpoint_save(r->checkpoint_path, &r->model.params, &r->opt, &meta, &err);
    metadata_free(&meta);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
}

static bool config_equal(const TransformerConfig *a, const TransformerConfig *b) {
    return a->vocab == b->vocab && a->context == b->context && a->layers == b->layers &&
           a->heads == b->heads && a->d_model == b->d_model && a->d_ff == b->d_ff &&
           a->classes == b->classes && a->positions == b->positions && a->mode == b->mode &&
           a->tied_head == b->tied_head && a->bias == b->bias && a->dropout == b->dropout;
}

/* Restores weights, optimizer, Rngs and the step from the checkpoint, which
 * must describe the same model and data as the flags. */
static void run_resume(Run *r, const char *path) {
    Metadata meta;
    Error err;
    if (!checkpoint_load(path, &r->model.params, &r->opt, ARCHITECTURE, &meta, &err)) {
        metadata_free(&meta);
        error_exit(&err, EXIT_RUNTIME_ERROR);
    }
    TransformerConfig saved;
    if (!transformer_config_from_metadata(&meta, &saved, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!config_equal(&saved, &r->model.config)) {
        fprintf(stderr, "tinyzoo: %s: the checkpoint's model differs from the flags "
                        "(layers, heads, d-model, d-ff, context, pos, mode, vocabulary...)\n", path);
        exit(EXIT_RUNTIME_ERROR);
    }
    long step;
    if (!metadata_get_int(&meta, "step", &step, &err) ||
        !metadata_get_rng(&meta, "rng.batches", &r->batch_rng, &err) ||
        !metadata_get_rng(&meta, "rng.dropout", &r->dropout_rng, &err) ||
        !metadata_get_double(&meta, "train.loss_sum", &r->loss_sum, &err) ||
        !metadata_get_int(&meta, "train.loss_count", &r->loss_count, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    metadata_free(&meta);
    r->step = step;
}

/* The run directory and config.txt, written only once the data and any
 * --resume checkpoint have loaded: a run that fails on bad input leaves no
 * files behind. */
static void run_directory_create(const TransformerTrainSettings *s) {
    Error err;
    if (!make_directory(s->out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (s->options == NULL) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.txt", s->out);
    if (!options_write_config(path, s->options, s->option_count, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
}

/* Data, model, optimizer and buffers; exits with a message on bad input. */
static void run_setup(Run *r, const TransformerTrainSettings *s) {
    Error err;
    r->s = s;
    r->data_options = s->data;
    bool encoder = s->model.mode == TRANSFORMER_BERT;
    if (!transformer_data_load(&r->data, &s->data, encoder, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    TransformerConfig config = s->model;
    config.vocab = r->data.vocab.size;
    config.classes = r->data.kind == TRANSFORMER_CLASSIFY ? r->data.classes : 0;
    if (!transformer_config_check(&config, &err)) error_exit(&err, EXIT_USAGE_ERROR);
    int T = transformer_data_time(&r->data, config.context);
    if (T > config.context) {
        fprintf(stderr, "tinyzoo: task %s has sequences of %d tokens: use --context %d or more\n",
                transformer_task_name(s->data.task), T, T);
        exit(EXIT_USAGE_ERROR);
    }
    if (r->data.kind == TRANSFORMER_STREAM &&
        (r->data.train_end < T + 2 || r->data.stream_length - r->data.train_end < T + 1)) {
        fprintf(stderr, "tinyzoo: %s: %ld tokens are too few for --context %d (the last tenth "
                        "validates, and each part needs more than %d tokens)\n",
                s->data.data_path ? s->data.data_path : transformer_task_name(s->data.task),
                r->data.stream_length, T, T + 1);
        exit(EXIT_RUNTIME_ERROR);
    }
    threads_set(s->threads);
    Rng init_rng;
    rng_seed(&init_rng, s->data.seed, STREAM_INIT);
    rng_seed(&r->batch_rng, s->data.seed, STREAM_BATCHES);
    rng_seed(&r->dropout_rng, s->data.seed, STREAM_DROPOUT);
    transformer_build(&r->model, &config);
    transformer_init(&r->model, &init_rng);
    optimizer_init(&r->opt, OPTIMIZER_ADAMW, &r->model.params);
    r->opt.weight_decay = s->weight_decay;
    graph_init(&r->g, (size_t)64 << 20, 512);
    r->g.check_numerics = s->check_numerics;
    transformer_batch_alloc(&r->batch, s->batch, T);
    transformer_batch_alloc(&r->validation_batch, s->batch, T);
    r->schedule = (Schedule){.kind = SCHEDULE_WARMUP_COSINE, .base_lr = s->lr,
                             .min_lr = s->lr * s->min_lr_ratio,
                             .warmup_steps = s->warmup > 0 ? s->warmup : s->steps / 20,
                             .total_steps = s->steps};
    if (r->schedule.warmup_steps >= s->steps) r->schedule.warmup_steps = s->steps / 2;
    snprintf(r->checkpoint_path, sizeof r->checkpoint_path, "%s/model.safetensors", s->out);
}

static void run_free(Run *r) {
    transformer_batch_free(&r->batch);
    transformer_batch_free(&r->validation_batch);
    graph_free(&r->g);
    optimizer_free(&r->opt);
    transformer_free(&r->model);
    transformer_data_free(&r->data);
}

/* One optimisation step; returns the batch loss. */
static float run_step(Run *r) {
    Graph *g = &r->g;
    graph_reset(g);
    g->step = r->step;
    params_zero_grad(&r->model.params);
    transformer_batch_sample(&r->data, r->model.config.mode == TRANSFORMER_BERT, &r->batch_rng,
                             &r->batch);
    Tensor *loss = batch_loss(g, &r->model, &r->data, &r->batch, &r->dropout_rng, NULL);
    float value = loss->data[0];
    if (!isfinite(value)) return value;
    graph_backward(g, loss);
    params_clip_grad_norm(&r->model.params, r->s->clip);
    optimizer_step(&r->opt, &r->model.params, schedule_lr(&r->schedule, r->step));
    r->step++;
    return value;
}

static const char METRICS_HEADER[] = "step,train_loss,val_loss,val_accuracy,lr";

int transformer_train(const TransformerTrainSettings *s) {
    Run r;
    memset(&r, 0, sizeof r);
    run_setup(&r, s);
    Error err;
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", s->out);
    if (s->resume) {
        run_resume(&r, s->checkpoint ? s->checkpoint : r.checkpoint_path);
        if (r.step >= s->steps) {
            fprintf(stderr, "tinyzoo: the checkpoint is at step %ld already; --steps %ld asks for "
                            "no more\n", r.step, s->steps);
            run_free(&r);
            return EXIT_USAGE_ERROR;
        }
        if (!metrics_truncate(path, r.step, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    }
    run_directory_create(s);
    if (!metrics_open(&r.log, path, METRICS_HEADER, s->resume, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    int T = r.batch.time;
    Progress progress;
    progress_start(&progress, r.step, s->steps, "tok/s", s->quiet);
    float last_loss = 0;
    TransformerEval eval = {0};
    long stop = s->stop_after > 0 && s->stop_after < s->steps ? s->stop_after : s->steps;
    while (r.step < stop) {
        float lr = schedule_lr(&r.schedule, r.step);
        last_loss = run_step(&r);
        if (!isfinite(last_loss)) {
            progress_finish(&progress);
            fprintf(stderr, "tinyzoo: transformer: the loss became %g at step %ld; try a lower "
                            "--lr or --clip\n", (double)last_loss, r.step);
            metrics_close(&r.log);
            run_free(&r);
            return EXIT_RUNTIME_ERROR;
        }
        r.loss_sum += last_loss, r.loss_count++;
        progress_update(&progress, r.step, last_loss, (double)s->batch * T);
        bool evaluate = r.step % s->eval_every == 0 || r.step == s->steps;
        if (evaluate) eval = transformer_evaluate(&r.g, &r.model, &r.data, s->eval_batches, &r.validation_batch);
        if (evaluate || r.step % s->log_every == 0) {
            double row[5] = {(double)r.step, r.loss_sum / (double)r.loss_count, evaluate ? eval.loss : NAN,
                             evaluate ? eval.accuracy : NAN, lr};
            metrics_write(&r.log, row, 5);
            r.loss_sum = 0, r.loss_count = 0;
        }
        if (s->checkpoint_every > 0 && r.step % s->checkpoint_every == 0) run_save(&r);
    }
    progress_finish(&progress);
    metrics_close(&r.log);
    run_save(&r);
    if (r.step < s->steps) {
        printf("stopped: step=%ld (--stop-after); continue with --resume\n", r.step);
        run_free(&r);
        return 0;
    }
    transformer_report(&r.g, &r.model, &r.data, s);
    printf("final: step=%ld train_loss=%.4f val_loss=%.4f %s=%.4f\n", r.step, (double)last_loss,
           (double)eval.loss, eval.metric, (double)eval.accuracy);
    run_free(&r);
    return 0;
}
