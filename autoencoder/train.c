/* autoencoder/train.c: data preparation, evaluation, the training loop,
 * checkpoints and resuming.
 *
 * Legend: B batch, D input features, Z code size, N images.
 *
 * Randomness has one stream per purpose, so that each is reproducible on
 * its own and resuming repeats a run bit for bit:
 *   data   (seed, 10) glyph drawing; (seed, 11) the train/validation split
 *   init   (seed, 2)  the initial weights
 *   epoch  (seed, EPOCH_STREAM + e) the order of the training images in
 *          epoch e: a function of the step alone, nothing to save
 *   noise  (seed, 3)  the dae's corruption and the vae's eps, saved in the
 *          checkpoint as "rng.noise"
 *   eval   (seed, 20) fixed noise for every evaluation, so successive
 *          validation losses differ only because the model changed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"
#include "data.h"
#include "matmul.h"
#include "pca.h"

enum { EPOCH_STREAM = 1000, STREAM_INIT = 2, STREAM_NOISE = 3, STREAM_EVAL = 20 };

/* ==== Data ===================================================================== */

void autoencoder_data_prepare(const AutoencoderSettings *s, AutoencoderData *d) {
    memset(d, 0, sizeof *d);
    Error err;
    if (!autoencoder_load_dataset(&s->data, &d->data, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!autoencoder_parse_classes(s->holdout, &d->data, d->holdout_mask, &err)) error_exit(&err, EXIT_USAGE_ERROR);
    autoencoder_split(&d->data, s->validation_fraction, d->holdout_mask, s->data.seed, &d->split);
}

void autoencoder_data_free(AutoencoderData *d) {
    autoencoder_split_free(&d->split);
    autoencoder_dataset_free(&d->data);
}

void autoencoder_gather(const AutoencoderDataset *data, const int *indices, int count, float *out) {
    size_t D = (size_t)data->height * data->width;
    for (int i = 0; i < count; i++) memcpy(out + i * D, data->images + (size_t)indices[i] * D, D * sizeof(float));
}

/* ==== Evaluation ===================================================================== */

/* One no-gradient pass over images `indices` in chunks of `batch`: the
 * callback-free core of evaluation and scoring.  `scores` (count) receives
 * per-image squared errors when not NULL.  `noise` corrupts the dae's input
 * and draws the vae's eps; NULL means clean input and the vae's mean. */
static AutoencoderEval evaluate_pass(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                                     const int *indices, int count, int batch, Rng *noise, float *scores) {
    const AutoencoderConfig *c = &model->config;
    const int D = data->height * data->width, Z = autoencoder_code_size(c);
    AutoencoderEval total = {0};
    for (int first = 0; first < count; first += batch) {
        int B = count - first < batch ? count - first : batch;
        graph_reset(g);
        g->no_grad = true;
        Tensor *clean = tensor_of(g, false, 2, B, D); /* (B, D) */
        autoencoder_gather(data, indices + first, B, clean->data);
        Tensor *input = clean;
        float *eps = NULL;
        if (noise != NULL && c->kind == AUTOENCODER_DAE) {
            input = tensor_of(g, false, 2, B, D); /* (B, D) */
            autoencoder_corrupt(c->noise, c->noise_level, clean->data, input->data, B * D, noise);
        }
        if (noise != NULL && c->kind == AUTOENCODER_VAE) {
            eps = arena_alloc(&g->arena, sizeof(float) * (size_t)B * Z); /* (B, Z) */
            for (int i = 0; i < B * Z; i++) eps[i] = rng_normal(noise);
        }
        AutoencoderPass pass = autoencoder_forward(g, model, input, clean, eps, c->beta);
        total.loss += (double)pass.loss->data[0] * B;
        total.recon += (double)pass.recon_loss->data[0] * B;
        if (pass.kl) total.kl += (double)pass.kl->data[0] * B;
        for (int b = 0; b < B; b++) {
            double squared = 0;
            for (int i = 0; i < D; i++) {
                double e = (double)pass.reconstruction->data[(size_t)b * D + i] - clean->data[(size_t)b * D + i];
                squared += e * e;
            }
            total.squared += squared;
            if (scores) scores[first + b] = (float)squared;
        }
    }
    g->no_grad = false;
    if (count > 0) total.loss /= count, total.recon /= count, total.kl /= count, total.squared /= count;
    return total;
}

AutoencoderEval autoencoder_evaluate(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                                     const int *indices, int count, int batch, long seed) {
    Rng noise;
    rng_seed(&noise, (uint64_t)seed, STREAM_EVAL);
    return evaluate_pass(g, model, data, indices, count, batch, &noise, NULL);
}

void autoencoder_scores(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                        const int *indices, int count, int batch, float *scores) {
    evaluate_pass(g, model, data, indices, count, batch, NULL, scores);
}

/* ==== Checkpoints ===================================================================== */

static void data_to_metadata(const AutoencoderSettings *s, Metadata *meta) {
    metadata_set(meta, "data", s->data.data_path ? s->data.data_path : "");
    metadata_set(meta, "labels", s->data.labels_path ? s->data.labels_path : "");
    metadata_set_int(meta, "glyph_size", s->data.glyph_size);
    metadata_set_int(meta, "glyph_count", s->data.glyph_count);
    metadata_set_float(meta, "glyph_noise", s->data.glyph_noise);
    metadata_set_int(meta, "seed", s->common.seed);
    metadata_set(meta, "holdout", s->holdout ? s->holdout : "none");
    metadata_set_float(meta, "validation_fraction", s->validation_fraction);
}

/* The training loss summed since the last metrics.csv row: kept in the
 * checkpoint, so that a resumed run writes the same rows. */
typedef struct {
    double sum;
    long steps;
} LossSinceRow;

static void save_checkpoint(const AutoencoderSettings *s, const Autoencoder *model, const Optimizer *opt,
                            long step, const Rng *noise, const LossSinceRow *since_row, const char *path) {
    Metadata meta;
    metadata_init(&meta);
    autoencoder_config_to_metadata(&model->config, &meta);
    data_to_metadata(s, &meta);
    metadata_set_int(&meta, "step", step);
    metadata_set_rng(&meta, "rng.noise", noise);
    metadata_set_double(&meta, "train.loss_sum", since_row->sum);
    metadata_set_int(&meta, "train.loss_count", since_row->steps);
    Error err;
    bool ok = checkpoint_save(path, &model->params, opt, &meta, &err);
    metadata_free(&meta);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
}

const char *autoencoder_checkpoint_path(const AutoencoderSettings *s) {
    if (s->common.checkpoint != NULL) return s->common.checkpoint;
    snprintf((char *)s->checkpoint_buffer, sizeof s->checkpoint_buffer, "%s/model.safetensors", s->common.out);
    return s->checkpoint_buffer;
}

void autoencoder_load(const char *path, Autoencoder *model, Metadata *meta) {
    Error err;
    Metadata header;
    if (!checkpoint_read_metadata(path, &header, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    AutoencoderConfig config;
    bool ok = autoencoder_config_from_metadata(&header, &config, &err);
    metadata_free(&header);
    if (!ok) {
        Error named;
        error_set(&named, "%s: %s", path, err.message);
        error_exit(&named, EXIT_RUNTIME_ERROR);
    }
    autoencoder_build(model, &config);
    if (!checkpoint_load(path, &model->params, NULL, "autoencoder", meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
}

/* ==== Training ========================================================================= */

/* The order of the training images: epoch e is a shuffle drawn from its own
 * stream, so the batch of any step is known from the step alone. */
typedef struct {
    int *order; /* (count) the current epoch's permutation */
    int count;
    long epoch; /* which epoch `order` holds, -1 before the first */
    long seed;
} EpochOrder;

static void epoch_batch(EpochOrder *o, const int *train, long step, int batch, int *out) {
    for (int i = 0; i < batch; i++) {
        long position = step * (long)batch + i;
        long epoch = position / o->count;
        if (epoch != o->epoch) {
            Rng rng;
            rng_seed(&rng, (uint64_t)o->seed, EPOCH_STREAM + (uint64_t)epoch);
            for (int k = 0; k < o->count; k++) o->order[k] = train[k];
            rng_shuffle(&rng, o->order, o->count);
            o->epoch = epoch;
        }
        out[i] = o->order[position % o->count];
    }
}

/* What the loop needs, allocated once before the first step. */
typedef struct {
    int *batch_indices; /* (B)    */
    float *eps;         /* (B, Z) */
    EpochOrder order;
} StepBuffers;

/* One step: reset, batch, corrupt or sample, forward, backward, update.
 * Returns the loss (before the update). */
static float train_step(Graph *g, Autoencoder *model, Optimizer *opt, const AutoencoderData *d,
                        StepBuffers *buffers, int batch, long step, float lr, Rng *noise, float *kl) {
    const AutoencoderConfig *c = &model->config;
    const int D = autoencoder_input_size(c), Z = autoencoder_code_size(c), B = batch;
    graph_reset(g);
    g->step = step;
    params_zero_grad(&model->params);
    epoch_batch(&buffers->order, d->split.train, step, B, buffers->batch_indices);
    Tensor *clean = tensor_of(g, false, 2, B, D); /* (B, D) */
    autoencoder_gather(&d->data, buffers->batch_indices, B, clean->data);
    Tensor *input = clean;
    if (c->kind == AUTOENCODER_DAE) {
        input = tensor_of(g, false, 2, B, D); /* (B, D) the corrupted copy */
        autoencoder_corrupt(c->noise, c->noise_level, clean->data, input->data, B * D, noise);
    }
    if (c->kind == AUTOENCODER_VAE)
        for (int i = 0; i < B * Z; i++) buffers->eps[i] = rng_normal(noise);
    AutoencoderPass pass = autoencoder_forward(g, model, input, clean, c->kind == AUTOENCODER_VAE ? buffers->eps : NULL,
                                               autoencoder_beta_at(c, step));
    float loss = pass.loss->data[0];
    *kl = pass.kl ? pass.kl->data[0] : 0.0f;
    if (!isfinite(loss)) return loss;
    graph_backward(g, pass.loss);
    optimizer_step(opt, &model->params, lr);
    return loss;
}

/* Linear baseline: PCA with Z components fitted on (up to 5000) training
 * images; returns its mean per-image squared error on the validation images,
 * which for exact PCA is the variance it leaves out. */
static double pca_baseline(const AutoencoderData *d, int components, long seed, int eval_count) {
    const int D = d->data.height * d->data.width;
    int fit_count = d->split.train_count < 5000 ? d->split.train_count : 5000;
    float *fit = xmalloc(sizeof(float) * (size_t)fit_count * D);      /* (N, D) */
    autoencoder_gather(&d->data, d->split.train, fit_count, fit);
    Rng rng;
    rng_seed(&rng, (uint64_t)seed, 30);
    Pca pca;
    pca_fit(&pca, fit, fit_count, D, components, &rng);
    free(fit);
    float *images = xmalloc(sizeof(float) * (size_t)eval_count * D);  /* (N, D) */
    float *codes = xmalloc(sizeof(float) * (size_t)eval_count * components); /* (N, Z) */
    float *rebuilt = xmalloc(sizeof(float) * (size_t)eval_count * D); /* (N, D) */
    autoencoder_gather(&d->data, d->split.validation, eval_count, images);
    pca_project(&pca, images, eval_count, codes);
    pca_reconstruct(&pca, codes, eval_count, rebuilt);
    double total = 0;
    for (size_t i = 0; i < (size_t)eval_count * D; i++) total += ((double)images[i] - rebuilt[i]) * ((double)images[i] - rebuilt[i]);
    free(images), free(codes), free(rebuilt);
    pca_free(&pca);
    return eval_count > 0 ? total / eval_count : 0.0;
}

static const char METRICS_HEADER[] = "step,train_loss,val_loss,val_recon,val_kl,val_squared_error,beta,lr";

/* Restores weights, optimizer, step and noise stream from the checkpoint;
 * the architecture in it must be the one asked for. */
static long resume_from(const AutoencoderSettings *s, Autoencoder *model, Optimizer *opt, Rng *noise,
                        LossSinceRow *since_row) {
    const char *path = autoencoder_checkpoint_path(s);
    Error err;
    Metadata meta;
    if (!checkpoint_load(path, &model->params, opt, "autoencoder", &meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    AutoencoderConfig saved;
    long step = 0;
    char want[256], have[256];
    bool ok = autoencoder_config_from_metadata(&meta, &saved, &err) && metadata_get_int(&meta, "step", &step, &err) &&
              metadata_get_rng(&meta, "rng.noise", noise, &err) &&
              metadata_get_double(&meta, "train.loss_sum", &since_row->sum, &err) &&
              metadata_get_int(&meta, "train.loss_count", &since_row->steps, &err);
    autoencoder_layers_string(&model->config, want, sizeof want);
    autoencoder_layers_string(&saved, have, sizeof have);
    if (ok && (saved.kind != model->config.kind || strcmp(want, have) != 0 || saved.tied != model->config.tied ||
               saved.activation != model->config.activation || saved.output != model->config.output))
        ok = error_set(&err, "%s: --resume needs the same --model, --layers, --activation, --output and --tied "
                             "as the checkpoint (it has layers %s)", path, have);
    metadata_free(&meta);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
    return step;
}

/* Plots of a trained model: curves, reconstructions, latent space, and for
 * the vae the manifold and samples. */
static void plot_all(Graph *g, const AutoencoderSettings *s, const Autoencoder *model, const AutoencoderData *d) {
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    Error err;
    if (!autoencoder_plot_curves(&target, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    const AutoencoderConfig *c = &model->config;
    int columns = d->split.validation_count < 10 ? d->split.validation_count : 10;
    /* The dae is shown the corruption it was trained on; the others the
     * --noise and --noise-level settings, to compare them with a dae. */
    AutoencoderNoise noise = c->kind == AUTOENCODER_DAE ? c->noise : (AutoencoderNoise)s->noise;
    float level = c->kind == AUTOENCODER_DAE ? c->noise_level : s->noise_level;
    if (columns > 0)
        autoencoder_plot_reconstructions(g, model, &d->data, d->split.validation, columns, noise, level, &target, s->common.seed);
    int scatter = d->split.validation_count < 2000 ? d->split.validation_count : 2000;
    if (scatter > 1) autoencoder_plot_latent(g, model, &d->data, d->split.validation, scatter, &target, s->common.seed);
    if (c->kind == AUTOENCODER_VAE) {
        autoencoder_plot_manifold(g, model, d->data.height, d->data.width, &target);
        Rng rng;
        rng_seed(&rng, (uint64_t)s->common.seed, 40);
        autoencoder_plot_samples(g, model, d->data.height, d->data.width, 40, &target, "samples", &rng, NULL);
    }
}

int autoencoder_train(AutoencoderSettings *s, const Option *options, int option_count) {
    Error err;
    threads_set(s->common.threads);
    AutoencoderData d;
    autoencoder_data_prepare(s, &d);
    const int D = d.data.height * d.data.width;
    if (D != autoencoder_input_size(&s->model)) {
        fprintf(stderr, "autoencoder train: --layers starts with %d but the images have %d x %d = %d pixels; "
                        "try --layers %d,...\n", autoencoder_input_size(&s->model), d.data.height, d.data.width, D, D);
        autoencoder_data_free(&d);
        return EXIT_USAGE_ERROR;
    }
    if (d.split.train_count < 1 || d.split.validation_count < 1) {
        fprintf(stderr, "autoencoder train: %d training and %d validation images; need at least one of each "
                        "(check --validation and --holdout)\n", d.split.train_count, d.split.validation_count);
        autoencoder_data_free(&d);
        return EXIT_USAGE_ERROR;
    }

    Autoencoder model;
    autoencoder_build(&model, &s->model);
    Rng init_rng, noise;
    rng_seed(&init_rng, (uint64_t)s->common.seed, STREAM_INIT);
    rng_seed(&noise, (uint64_t)s->common.seed, STREAM_NOISE);
    autoencoder_init(&model, &init_rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    LossSinceRow since_row = {0};
    long first_step = s->common.resume ? resume_from(s, &model, &opt, &noise, &since_row) : 0;
    if (first_step > s->common.steps) {
        fprintf(stderr, "autoencoder train: the checkpoint is at step %ld, past --steps %ld\n", first_step, s->common.steps);
        return EXIT_USAGE_ERROR;
    }
    /* Only now, with the data and any --resume checkpoint loaded: bad input
     * leaves no run directory behind. */
    char path[2048];
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/config.txt", s->common.out);
    if (!options_write_config(path, options, option_count, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);

    Graph g;
    graph_init(&g, 8 << 20, 256);
    g.check_numerics = s->common.check_numerics;
    const int B = s->common.batch, Z = autoencoder_code_size(&s->model);
    StepBuffers buffers = {
        .batch_indices = xmalloc(sizeof(int) * (size_t)B),
        .eps = xmalloc(sizeof(float) * (size_t)B * Z),
        .order = {.order = xmalloc(sizeof(int) * (size_t)d.split.train_count), .count = d.split.train_count,
                  .epoch = -1, .seed = s->common.seed},
    };
    int eval_count = d.split.validation_count < s->eval_images ? d.split.validation_count : s->eval_images;

    snprintf(path, sizeof path, "%s/metrics.csv", s->common.out);
    MetricsLog log;
    if (s->common.resume && !metrics_truncate(path, first_step, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!metrics_open(&log, path, METRICS_HEADER, s->common.resume, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/model.safetensors", s->common.out);

    Progress progress;
    progress_start(&progress, first_step, s->common.steps, "img/s", s->common.quiet);
    float loss = 0, kl = 0, lr = s->common.lr;
    AutoencoderEval val = {0};
    for (long step = first_step; step < s->common.steps; step++) {
        loss = train_step(&g, &model, &opt, &d, &buffers, B, step, lr, &noise, &kl);
        if (!isfinite(loss)) {
            fprintf(stderr, "autoencoder train: the loss became %g at step %ld; lower --lr (now %g) "
                            "or use --check-numerics to find the op\n", (double)loss, step, (double)lr);
            return EXIT_RUNTIME_ERROR;
        }
        since_row.sum += loss, since_row.steps++;
        progress_update(&progress, step + 1, loss, B);
        bool last = step + 1 == s->common.steps;
        if ((step + 1) % s->eval_every == 0 || last) {
            val = autoencoder_evaluate(&g, &model, &d.data, d.split.validation, eval_count, B, s->common.seed);
            metrics_write(&log, (double[]){(double)(step + 1), since_row.sum / (double)since_row.steps, val.loss, val.recon,
                                           val.kl, val.squared, autoencoder_beta_at(&s->model, step), lr}, 8);
            since_row = (LossSinceRow){0};
        }
        if (last || (s->common.checkpoint_every > 0 && (step + 1) % s->common.checkpoint_every == 0))
            save_checkpoint(s, &model, &opt, step + 1, &noise, &since_row, path);
    }
    progress_finish(&progress);
    metrics_close(&log);
    if (first_step == s->common.steps) { /* nothing to train: evaluate what was loaded */
        val = autoencoder_evaluate(&g, &model, &d.data, d.split.validation, eval_count, B, s->common.seed);
    }

    plot_all(&g, s, &model, &d);
    char pca_text[64] = "";
    if (!s->no_pca)
        snprintf(pca_text, sizeof pca_text, " pca_val_squared_error=%.4f",
                 pca_baseline(&d, Z, s->common.seed, eval_count));
    printf("final: step=%ld train_loss=%.4f val_loss=%.4f val_recon=%.4f val_kl=%.4f val_squared_error=%.4f%s\n",
           s->common.steps, (double)loss, val.loss, val.recon, val.kl, val.squared, pca_text);

    free(buffers.batch_indices), free(buffers.eps), free(buffers.order.order);
    graph_free(&g);
    optimizer_free(&opt);
    autoencoder_free(&model);
    autoencoder_data_free(&d);
    return 0;
}
