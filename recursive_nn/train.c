/* recursive_nn/train.c: evaluation, optimizers, checkpoints, the training loop.
 *
 * Legend: B trees per batch, N nodes of a batch, K classes, V vocabulary,
 *         d hidden size.
 *
 * METRICS, as in the SST paper (Socher et al. 2013, table 1):
 *   fine-grained   accuracy over the K classes, at every labelled node
 *                  ("all") and at the root of each sentence ("root");
 *   binary         positive against negative, at the nodes whose gold
 *                  label is not neutral (2): the prediction is positive
 *                  when p(3) + p(4) > p(0) + p(1).  Sentiment only (K = 5).
 * The negation probe set is scored with the same code: its root accuracy,
 * and its binary root accuracy (all of its labels are non-neutral).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "recursive_nn.h"
#include "sentiment.h"

static const char ARCHITECTURE[] = "recursive_nn";
static const char *const OPTIMIZER_NAMES[] = {"adam", "adagrad"};

/* ---- Evaluation ------------------------------------------------------------------ */

double recursive_metric(long correct, long total) { return total > 0 ? (double)correct / (double)total : 0.0; }

/* Scores the nodes of one evaluated batch into m. */
static void score_batch(const TreeBatch *b, const Tensor *logits, const Tree *const *trees,
                        RecursiveMetrics *m, int **predictions) {
    int K = logits->shape[1];
    for (int t = 0; t < b->trees; t++) {
        for (int i = 0; i < trees[t]->count; i++) {
            int row = b->row_of[b->tree_start[t] + i];
            const float *z = logits->data + (size_t)row * K;
            int best = 0;
            for (int k = 1; k < K; k++) best = z[k] > z[best] ? k : best;
            if (predictions != NULL) predictions[t][i] = best;
            int gold = trees[t]->nodes[i].label;
            if (gold < 0) continue;
            /* log-softmax, shifted by the largest logit */
            double sum = 0, p[RECURSIVE_MAX_CLASSES];
            for (int k = 0; k < K; k++) sum += p[k] = exp((double)(z[k] - z[best]));
            for (int k = 0; k < K; k++) p[k] /= sum;
            m->loss_sum += -log(p[gold]);
            bool root = i == trees[t]->count - 1;
            m->nodes++, m->correct_nodes += best == gold;
            m->roots += root, m->correct_roots += root && best == gold;
            m->confusion[gold][best]++;
            if (K == SENTIMENT_CLASSES && gold != 2) {
                bool positive = p[3] + p[4] > p[0] + p[1], right = positive == (gold > 2);
                m->binary_nodes++, m->binary_correct_nodes += right;
                m->binary_roots += root, m->binary_correct_roots += root && right;
            }
        }
    }
}

void recursive_evaluate(Graph *g, const RecursiveModel *model, const Treebank *bank, int batch,
                        RecursiveMetrics *metrics, int **predictions) {
    memset(metrics, 0, sizeof *metrics);
    metrics->classes = model->config.classes;
    for (int first = 0; first < bank->count; first += batch) {
        int count = bank->count - first < batch ? bank->count - first : batch;
        graph_reset(g);
        g->no_grad = true;
        const Tree **trees = arena_alloc(&g->arena, (size_t)count * sizeof(Tree *)); /* (B) */
        for (int t = 0; t < count; t++) trees[t] = &bank->trees[first + t];
        TreeBatch *b = recursive_batch_build(g, trees, count);
        Tensor *logits = recursive_forward(g, model, b); /* (N, K) */
        score_batch(b, logits, trees, metrics, predictions ? predictions + first : NULL);
        g->no_grad = false;
    }
}

void recursive_print_metrics(FILE *out, const char *name, const RecursiveMetrics *m, bool confusion) {
    fprintf(out, "%-6s fine-grained: all nodes %.4f  roots %.4f", name,
            recursive_metric(m->correct_nodes, m->nodes), recursive_metric(m->correct_roots, m->roots));
    if (m->binary_nodes > 0)
        fprintf(out, "   binary: all nodes %.4f  roots %.4f",
                recursive_metric(m->binary_correct_nodes, m->binary_nodes),
                recursive_metric(m->binary_correct_roots, m->binary_roots));
    fprintf(out, "   (%ld roots, %ld nodes)\n", m->roots, m->nodes);
    if (!confusion) return;
    fprintf(out, "  confusion (rows gold, columns predicted):\n      ");
    for (int k = 0; k < m->classes; k++) fprintf(out, "%7d", k);
    fputc('\n', out);
    for (int gold = 0; gold < m->classes; gold++) {
        fprintf(out, "  %3d ", gold);
        for (int k = 0; k < m->classes; k++) fprintf(out, "%7ld", m->confusion[gold][k]);
        fputc('\n', out);
    }
}

/* ---- AdaGrad --------------------------------------------------------------------- */

void recursive_adagrad_step(Optimizer *opt, ParamSet *ps, float lr, float l2) {
    const float epsilon = 1e-8f;
    opt->step++;
    size_t offset = 0;
    for (int t = 0; t < ps->count; t++) {
        size_t n = (size_t)ps->tensors[t].numel;
        float decay = ps->decay[t] ? l2 : 0.0f;
        float *w = ps->values + offset, *G = opt->moment1 + offset;
        const float *grad = ps->grads + offset;
        for (size_t i = 0; i < n; i++) {
            float gi = grad[i] + decay * w[i];
            G[i] += gi * gi;
            w[i] -= lr * gi / (sqrtf(G[i]) + epsilon);
        }
        offset += n;
    }
}

/* ---- Checkpoints -------------------------------------------------------------------- */

bool recursive_save(const char *path, const RecursiveModel *model, const Optimizer *opt,
                    const Vocab *vocab, const RecursiveSettings *s, long step,
                    const RecursiveTrainState *state, Error *err) {
    Metadata meta;
    metadata_init(&meta);
    metadata_set(&meta, "architecture", ARCHITECTURE);
    metadata_set(&meta, "model", recursive_model_names[model->config.kind]);
    metadata_set_int(&meta, "dim", model->config.dim);
    metadata_set_int(&meta, "classes", model->config.classes);
    char *vocab_json = vocab_to_json(vocab);
    metadata_set(&meta, "vocab", vocab_json);
    free(vocab_json);
    metadata_set_int(&meta, "step", step);
    if (s != NULL) {
        metadata_set(&meta, "task", s->common.task);
        metadata_set_int(&meta, "lowercase", s->data.lowercase);
        metadata_set(&meta, "optimizer", OPTIMIZER_NAMES[s->optimizer]);
        metadata_set_float(&meta, "l2", s->l2);
        metadata_set_int(&meta, "batch", s->common.batch);
        metadata_set_int(&meta, "seed", s->common.seed);
    }
    if (state != NULL) {
        metadata_set_rng(&meta, "rng.data", &state->data_rng);
        metadata_set_double(&meta, "train.loss_sum", state->loss_sum);
        metadata_set_int(&meta, "train.loss_count", state->loss_count);
    }
    bool ok = checkpoint_save(path, &model->params, opt, &meta, err);
    metadata_free(&meta);
    return ok;
}

static bool parse_kind(const char *text, const char *const *names, int count, int *kind) {
    for (int k = 0; k < count; k++)
        if (text != NULL && strcmp(text, names[k]) == 0) return (*kind = k), true;
    return false;
}

static bool load_checked(const char *path, RecursiveModel *model, Optimizer *opt, Vocab *vocab,
                         Metadata *meta, Error *err) {
    metadata_init(meta);
    if (!checkpoint_read_metadata(path, meta, err)) return false;
    const char *architecture = metadata_get(meta, "architecture");
    if (architecture == NULL || strcmp(architecture, ARCHITECTURE) != 0)
        return error_set(err, "%s: architecture is '%s', expected '%s'", path,
                         architecture ? architecture : "(none)", ARCHITECTURE);
    RecursiveConfig config;
    int kind;
    long dim, classes;
    if (!parse_kind(metadata_get(meta, "model"), recursive_model_names, 3, &kind))
        return error_set(err, "%s: metadata \"model\" should be rnn, rntn or bow", path);
    if (!metadata_get_int(meta, "dim", &dim, err) || !metadata_get_int(meta, "classes", &classes, err))
        return false;
    if (dim < 1 || dim > 4096 || classes < 2 || classes > RECURSIVE_MAX_CLASSES)
        return error_set(err, "%s: dim %ld or classes %ld out of range", path, dim, classes);
    const char *vocab_json = metadata_get(meta, "vocab");
    vocab_init(vocab);
    if (vocab_json == NULL || !vocab_from_json(vocab, vocab_json, err) || vocab->size < 1) {
        vocab_free(vocab);
        return vocab_json == NULL ? error_set(err, "%s: no \"vocab\" in the metadata", path) : false;
    }
    config = (RecursiveConfig){.kind = kind, .dim = (int)dim, .classes = (int)classes, .vocab = vocab->size};
    recursive_model_build(model, &config);
    if (opt != NULL) {
        int optimizer = RECURSIVE_OPT_ADAM;
        parse_kind(metadata_get(meta, "optimizer"), OPTIMIZER_NAMES, 2, &optimizer);
        optimizer_init(opt, optimizer == RECURSIVE_OPT_ADAM ? OPTIMIZER_ADAM : OPTIMIZER_SGD, &model->params);
    }
    Metadata loaded;
    bool ok = checkpoint_load(path, &model->params, opt, ARCHITECTURE, &loaded, err);
    metadata_free(&loaded);
    if (!ok) {
        if (opt != NULL) optimizer_free(opt);
        recursive_model_free(model);
        vocab_free(vocab);
    }
    return ok;
}

bool recursive_load(const char *path, RecursiveModel *model, Optimizer *opt, Vocab *vocab,
                    Metadata *meta, Error *err) {
    bool ok = load_checked(path, model, opt, vocab, meta, err);
    if (!ok) metadata_free(meta); /* a failed load leaves the caller nothing to free */
    return ok;
}

/* ---- Training ------------------------------------------------------------------------ */

/* What a run holds besides its settings. */
typedef struct {
    RecursiveData data;
    Vocab vocab;
    RecursiveModel model;
    Optimizer opt;
    Graph graph;
    Rng data_rng, model_rng;
    BatchSampler sampler;
    long start_step;
    double loss_sum; /* training loss since the last metrics row */
    long loss_count;
    char checkpoint[4096];
} Run;

static int fail(const Error *err) {
    fprintf(stderr, "tinyzoo: recursive_nn: %s\n", err->message);
    return EXIT_RUNTIME_ERROR;
}

/* A fresh model, or the one --resume continues. */
static bool run_prepare_model(Run *run, const RecursiveSettings *s, Error *err) {
    if (s->common.resume) {
        Metadata meta;
        if (!recursive_load(run->checkpoint, &run->model, &run->opt, &run->vocab, &meta, err)) return false;
        const RecursiveConfig *c = &run->model.config;
        bool same = (int)c->kind == s->model && c->dim == s->dim && c->classes == run->data.classes &&
                    (run->opt.kind == OPTIMIZER_ADAM) == (s->optimizer == RECURSIVE_OPT_ADAM);
        Rng saved;
        long step = 0;
        bool ok = metadata_get_int(&meta, "step", &step, err) && metadata_get_rng(&meta, "rng.data", &saved, err) &&
                  metadata_get_double(&meta, "train.loss_sum", &run->loss_sum, err) &&
                  metadata_get_int(&meta, "train.loss_count", &run->loss_count, err);
        metadata_free(&meta);
        if (!ok) return false;
        if (!same)
            return error_set(err, "--resume %s: the checkpoint is --model %s --dim %d --optimizer %s with %d classes; "
                             "this run asks for --model %s --dim %d --optimizer %s with %d", run->checkpoint,
                             recursive_model_names[c->kind], c->dim, run->opt.kind == OPTIMIZER_ADAM ? "adam" : "adagrad",
                             c->classes, recursive_model_names[s->model], s->dim, OPTIMIZER_NAMES[s->optimizer],
                             run->data.classes);
        /* The batches already drawn are drawn again (cheap: indices only),
         * which puts the sampler and the data Rng where they were. */
        run->start_step = step;
        int *skip = xmalloc((size_t)s->common.batch * sizeof(int));
        for (long k = 0; k < step; k++) batch_sampler_next(&run->sampler, &run->data_rng, skip, s->common.batch);
        free(skip);
        if (memcmp(&saved, &run->data_rng, sizeof saved) != 0)
            return error_set(err, "--resume %s: the data stream differs from the checkpoint's "
                             "(use the same --task, --seed, --batch and data as the first run)", run->checkpoint);
        if (run->start_step >= s->common.steps)
            return error_set(err, "--resume %s: the checkpoint is at step %ld, not before --steps %ld",
                             run->checkpoint, run->start_step, s->common.steps);
        return true;
    }
    vocab_init(&run->vocab);
    recursive_vocab_build(&run->vocab, &run->data.train, s->min_count);
    RecursiveConfig config = {.kind = s->model, .dim = s->dim, .classes = run->data.classes,
                              .vocab = run->vocab.size};
    recursive_model_build(&run->model, &config);
    recursive_model_init(&run->model, &run->model_rng);
    if (s->embeddings != NULL) {
        int found;
        if (!recursive_load_embeddings(s->embeddings, &run->vocab, run->model.embedding->data, s->dim,
                                       &found, err))
            return false;
        if (!s->common.quiet)
            printf("embeddings: %d of %d vocabulary words found in %s\n", found, run->vocab.size - 1,
                   s->embeddings);
    }
    optimizer_init(&run->opt, s->optimizer == RECURSIVE_OPT_ADAM ? OPTIMIZER_ADAM : OPTIMIZER_SGD,
                   &run->model.params);
    return true;
}

static bool run_prepare(Run *run, const RecursiveSettings *s, Error *err) {
    memset(run, 0, sizeof *run);
    if (s->common.checkpoint != NULL) snprintf(run->checkpoint, sizeof run->checkpoint, "%s", s->common.checkpoint);
    else snprintf(run->checkpoint, sizeof run->checkpoint, "%s/model.safetensors", s->common.out);
    if (!recursive_data_load(&run->data, s->task, &s->data, (unsigned long)s->common.seed, err)) return false;
    if (run->data.train.count == 0 || run->data.dev.count == 0)
        return error_set(err, "training needs training and validation trees (got %d and %d)",
                         run->data.train.count, run->data.dev.count);
    rng_seed(&run->data_rng, (uint64_t)s->common.seed, 1);
    rng_seed(&run->model_rng, (uint64_t)s->common.seed, 2);
    batch_sampler_init(&run->sampler, run->data.train.count, &run->data_rng);
    if (!run_prepare_model(run, s, err)) return false;
    run->opt.weight_decay = s->l2; /* Adam: L2 added to the gradient (AdaGrad: in its step) */
    Treebank *sets[4] = {&run->data.train, &run->data.dev, &run->data.test, &run->data.probe};
    for (int k = 0; k < 4; k++) tree_set_words(sets[k], &run->vocab);
    graph_init(&run->graph, 1 << 22, 256);
    run->graph.check_numerics = s->common.check_numerics;
    return true;
}

static void run_free(Run *run) {
    graph_free(&run->graph);
    batch_sampler_free(&run->sampler);
    optimizer_free(&run->opt);
    recursive_model_free(&run->model);
    vocab_free(&run->vocab);
    recursive_data_free(&run->data);
}

/* One step: reset, sample B trees, forward, loss, backward, update. */
static float train_step(Run *run, const RecursiveSettings *s, int *indices, const Tree **trees) {
    Graph *g = &run->graph;
    graph_reset(g);
    params_zero_grad(&run->model.params);
    batch_sampler_next(&run->sampler, &run->data_rng, indices, s->common.batch);
    for (int i = 0; i < s->common.batch; i++) trees[i] = &run->data.train.trees[indices[i]];
    TreeBatch *batch = recursive_batch_build(g, trees, s->common.batch);
    Tensor *loss = recursive_loss(g, recursive_forward(g, &run->model, batch), batch);
    float value = loss->data[0];
    if (!isfinite(value)) return value;
    graph_backward(g, loss);
    if (s->optimizer == RECURSIVE_OPT_ADAGRAD)
        recursive_adagrad_step(&run->opt, &run->model.params, s->common.lr, s->l2);
    else
        optimizer_step(&run->opt, &run->model.params, s->common.lr);
    return value;
}

/* Evaluates the final model, prints the SST-style table, draws plots. */
static void final_report(Run *run, const RecursiveSettings *s, long steps, double train_loss) {
    Graph *g = &run->graph;
    RecursiveMetrics dev, test = {0}, probe = {0};
    recursive_evaluate(g, &run->model, &run->data.dev, 64, &dev, NULL);
    Treebank *drawn = run->data.probe.count > 0 ? &run->data.probe : run->data.test.count > 0 ? &run->data.test : &run->data.dev;
    int **predictions = xcalloc((size_t)drawn->count, sizeof(int *));
    for (int t = 0; t < drawn->count; t++) predictions[t] = xmalloc((size_t)drawn->trees[t].count * sizeof(int));
    if (run->data.test.count > 0)
        recursive_evaluate(g, &run->model, &run->data.test, 64, &test, drawn == &run->data.test ? predictions : NULL);
    if (run->data.probe.count > 0) recursive_evaluate(g, &run->model, &run->data.probe, 64, &probe, predictions);
    if (drawn == &run->data.dev) recursive_evaluate(g, &run->model, &run->data.dev, 64, &dev, predictions);
    if (!s->common.quiet) {
        printf("model %s, d=%d, %d parameters, vocabulary %d\n", recursive_model_names[s->model], s->dim,
               (int)run->model.params.total, run->vocab.size);
        recursive_print_metrics(stdout, "dev", &dev, false);
        if (test.roots > 0) recursive_print_metrics(stdout, "test", &test, true);
        if (probe.roots > 0) recursive_print_metrics(stdout, "probe", &probe, false);
    }
    Error err;
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    if (!recursive_plot_curves(s->common.out, target.term, &err) ||
        !recursive_plot_confusion(&target, test.roots > 0 ? &test : &dev, &err) ||
        !recursive_plot_embeddings(&target, &run->model, &run->vocab, &run->data.train, &err))
        fprintf(stderr, "tinyzoo: recursive_nn: plot: %s\n", err.message);
    for (int t = 0; t < s->draw && t < drawn->count; t++) {
        char stem[64], title[128];
        snprintf(stem, sizeof stem, "tree_%d", t + 1);
        snprintf(title, sizeof title, "%s tree %d (%s)", drawn == &run->data.probe ? "probe" : "test",
                 t + 1, recursive_model_names[s->model]);
        if (!recursive_plot_tree(&target, stem, title, &drawn->trees[t], predictions[t],
                                 run->model.config.classes, &err))
            fprintf(stderr, "tinyzoo: recursive_nn: plot: %s\n", err.message);
    }
    for (int t = 0; t < drawn->count; t++) free(predictions[t]);
    free(predictions);
    printf("final: step=%ld train_loss=%.4f val_loss=%.4f val_accuracy=%.4f val_root_accuracy=%.4f",
           steps, train_loss, dev.loss_sum / (dev.roots ? (double)dev.roots : 1),
           recursive_metric(dev.correct_nodes, dev.nodes), recursive_metric(dev.correct_roots, dev.roots));
    if (test.roots > 0)
        printf(" test_accuracy=%.4f test_root_accuracy=%.4f", recursive_metric(test.correct_nodes, test.nodes),
               recursive_metric(test.correct_roots, test.roots));
    if (test.binary_roots > 0)
        printf(" test_root_binary=%.4f", recursive_metric(test.binary_correct_roots, test.binary_roots));
    if (probe.roots > 0)
        printf(" probe_accuracy=%.4f probe_binary=%.4f", recursive_metric(probe.correct_roots, probe.roots),
               recursive_metric(probe.binary_correct_roots, probe.binary_roots));
    printf("\n");
}

int recursive_train(const RecursiveSettings *s, const Option *options, int count) {
    Error err;
    threads_set(s->common.threads);
    Run run;
    if (!run_prepare(&run, s, &err)) {
        run_free(&run);
        return fail(&err);
    }
    /* Only now, with the data and any --resume checkpoint loaded: bad input
     * leaves no run directory behind. */
    char path[4096];
    snprintf(path, sizeof path, "%s/config.txt", s->common.out);
    if (!make_directory(s->common.out, &err) || !options_write_config(path, options, count, &err)) {
        run_free(&run);
        return fail(&err);
    }
    snprintf(path, sizeof path, "%s/metrics.csv", s->common.out);
    MetricsLog log;
    bool kept = !s->common.resume || metrics_truncate(path, run.start_step, &err);
    if (!kept || !metrics_open(&log, path, "step,train_loss,val_loss,val_accuracy,val_root_accuracy,probe_binary,lr",
                      s->common.resume, &err)) {
        run_free(&run);
        return fail(&err);
    }
    int *indices = xmalloc((size_t)s->common.batch * sizeof(int));              /* (B) */
    const Tree **trees = xmalloc((size_t)s->common.batch * sizeof(Tree *));    /* (B) */
    Progress progress;
    progress_start(&progress, run.start_step, s->common.steps, "trees/s", s->common.quiet);
    double last_train_loss = 0;
    int status = 0;
    for (long step = run.start_step; step < s->common.steps; step++) {
        run.graph.step = step;
        float loss = train_step(&run, s, indices, trees);
        if (!isfinite(loss)) {
            progress_finish(&progress);
            fprintf(stderr, "tinyzoo: recursive_nn: loss became %g at step %ld; lower --lr\n", (double)loss, step);
            status = EXIT_RUNTIME_ERROR;
            break;
        }
        run.loss_sum += loss, run.loss_count++;
        progress_update(&progress, step + 1, loss, s->common.batch);
        bool last = step + 1 == s->common.steps;
        if ((step + 1) % s->eval_every == 0 || last) {
            RecursiveMetrics dev, probe = {0};
            recursive_evaluate(&run.graph, &run.model, &run.data.dev, 64, &dev, NULL);
            if (run.data.probe.count > 0) recursive_evaluate(&run.graph, &run.model, &run.data.probe, 64, &probe, NULL);
            last_train_loss = run.loss_sum / (double)run.loss_count;
            metrics_write(&log, (double[]){(double)(step + 1), last_train_loss, dev.loss_sum / (double)dev.roots,
                                           recursive_metric(dev.correct_nodes, dev.nodes),
                                           recursive_metric(dev.correct_roots, dev.roots),
                                           probe.binary_roots > 0 ? recursive_metric(probe.binary_correct_roots, probe.binary_roots) : -1,
                                           s->common.lr}, 7);
            run.loss_sum = 0, run.loss_count = 0;
        }
        bool save = last || (s->common.checkpoint_every > 0 && (step + 1) % s->common.checkpoint_every == 0);
        RecursiveTrainState state = {run.data_rng, run.loss_sum, run.loss_count};
        if (save && !recursive_save(run.checkpoint, &run.model, &run.opt, &run.vocab, s, step + 1, &state, &err)) {
            status = fail(&err);
            break;
        }
    }
    progress_finish(&progress);
    metrics_close(&log);
    if (status == 0) final_report(&run, s, s->common.steps, last_train_loss);
    free(indices);
    free(trees);
    run_free(&run);
    return status;
}
