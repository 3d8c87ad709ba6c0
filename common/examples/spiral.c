/* common/examples/spiral.c: the library's first demo.  A small MLP learns to
 * tell apart the arms of a 2-D spiral (the classic CS231n toy problem), then
 * plots its loss curve and its decision regions.
 *
 *   bin/spiral train [options]      train, plot, save runs/spiral/
 *   bin/spiral train --help         every option with its default
 *
 * Legend: P points, B batch, H hidden units, K classes (spiral arms).
 *
 * Reading order: data, model (declare, init, forward), one training step,
 * evaluation, plots, main.  Every piece comes from common/: this file is also
 * a template for the four models.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "data.h"
#include "matmul.h"
#include "nn.h"
#include "plot.h"
#include "tensor.h"
#include "util.h"

/* ---- Settings: every one is a flag (see options below) ------------------ */

typedef struct {
    int points_per_class; /* P / K                                     */
    int classes;          /* K arms                                    */
    float noise;          /* angular noise of the arms                 */
    int hidden;           /* H                                         */
    long steps;
    int batch;            /* B                                         */
    float lr;
    float weight_decay;
    long seed;
    int threads;
    long eval_every;
    const char *out;
    int plot_term;        /* PlotTerm                                  */
    bool quiet;
    bool check_numerics;
} Settings;

/* ---- Data: K interleaved spiral arms ---------------------------------------- */

typedef struct {
    float *xy;    /* (P, 2) coordinates */
    int *labels;  /* (P) arm index      */
    int count;    /* P                  */
} Dataset;

/* Point i of arm k: radius r = i / n in [0, 1), angle = 4 (k + r) + noise,
 * so each arm winds about 2/3 of a turn and arms interleave. */
static Dataset spiral_generate(int per_class, int classes, float noise, Rng *rng) {
    Dataset d = {.count = per_class * classes};
    d.xy = xmalloc((size_t)d.count * 2 * sizeof(float));
    d.labels = xmalloc((size_t)d.count * sizeof(int));
    for (int k = 0; k < classes; k++) {
        for (int i = 0; i < per_class; i++) {
            int p = k * per_class + i;
            float radius = (float)i / (float)per_class;
            float angle = 4.0f * ((float)k + radius) + noise * rng_normal(rng);
            d.xy[2 * p] = radius * sinf(angle);
            d.xy[2 * p + 1] = radius * cosf(angle);
            d.labels[p] = k;
        }
    }
    return d;
}

static void dataset_free(Dataset *d) {
    free(d->xy);
    free(d->labels);
}

/* ---- Model: 2 -> H -> H -> K, ReLU ------------------------------------------- */

typedef struct {
    ParamSet params;
    Linear layer1; /* weight (H, 2) */
    Linear layer2; /* weight (H, H) */
    Linear head;   /* weight (K, H) */
} Mlp;

static void mlp_build(Mlp *m, int hidden, int classes, Rng *rng) {
    params_init(&m->params);
    m->layer1 = linear_declare(&m->params, "layer1", 2, hidden, true);
    m->layer2 = linear_declare(&m->params, "layer2", hidden, hidden, true);
    m->head = linear_declare(&m->params, "head", hidden, classes, true);
    params_allocate(&m->params);
    linear_init(&m->layer1, rng);
    linear_init(&m->layer2, rng);
    linear_init(&m->head, rng);
}

/* xy (B, 2) -> logits (B, K) */
static Tensor *mlp_forward(Graph *g, const Mlp *m, Tensor *xy) {
    Tensor *h1 = op_relu(g, linear_forward(g, &m->layer1, xy)); /* (B, H) */
    Tensor *h2 = op_relu(g, linear_forward(g, &m->layer2, h1)); /* (B, H) */
    return linear_forward(g, &m->head, h2);                     /* (B, K) */
}

/* Copies the rows `indices` of the dataset into a (count, 2) tensor. */
static Tensor *gather_points(Graph *g, const Dataset *d, const int *indices, int count,
                             int *labels) {
    Tensor *xy = tensor_of(g, false, 2, count, 2); /* (B, 2) */
    for (int i = 0; i < count; i++) {
        xy->data[2 * i] = d->xy[2 * indices[i]];
        xy->data[2 * i + 1] = d->xy[2 * indices[i] + 1];
        labels[i] = d->labels[indices[i]];
    }
    return xy;
}

/* ---- Evaluation: loss and accuracy on a set of points, without gradients -- */

static void evaluate(Graph *g, const Mlp *m, const Dataset *d, const int *indices, int count,
                     float *loss, float *accuracy) {
    graph_reset(g);
    g->no_grad = true;
    int *labels = arena_alloc(&g->arena, (size_t)count * sizeof(int));
    Tensor *logits = mlp_forward(g, m, gather_points(g, d, indices, count, labels)); /* (P, K) */
    *loss = op_cross_entropy(g, logits, labels, -1)->data[0];
    int K = logits->shape[1], correct = 0;
    for (int i = 0; i < count; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (logits->data[i * K + k] > logits->data[i * K + best]) best = k;
        correct += best == labels[i];
    }
    *accuracy = (float)correct / (float)count;
    g->no_grad = false;
}

/* ---- Plots ------------------------------------------------------------------- */

/* The class the model predicts at each point of a grid over [-1.1, 1.1]^2:
 * its decision regions, drawn under the data points. */
static void plot_decision_regions(Graph *g, const Mlp *m, const Dataset *d,
                                  const PlotTarget *target, int classes) {
    enum { GRID = 160 };
    const float extent = 1.1f;
    graph_reset(g);
    g->no_grad = true;
    Tensor *grid = tensor_of(g, false, 2, GRID * GRID, 2); /* (GRID*GRID, 2) */
    for (int row = 0; row < GRID; row++)
        for (int col = 0; col < GRID; col++) {
            int p = row * GRID + col;
            grid->data[2 * p] = -extent + 2 * extent * ((float)col + 0.5f) / GRID;
            grid->data[2 * p + 1] = -extent + 2 * extent * ((float)row + 0.5f) / GRID;
        }
    Tensor *logits = mlp_forward(g, m, grid); /* (GRID*GRID, K) */
    float *regions = xmalloc(GRID * GRID * sizeof(float)); /* (GRID, GRID) class ids */
    for (int p = 0; p < GRID * GRID; p++) {
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (logits->data[p * classes + k] > logits->data[p * classes + best]) best = k;
        regions[p] = (float)best;
    }
    float *xs = xmalloc((size_t)d->count * sizeof(float)), *ys = xmalloc((size_t)d->count * sizeof(float));
    for (int p = 0; p < d->count; p++) xs[p] = d->xy[2 * p], ys[p] = d->xy[2 * p + 1];
    ScatterData scatter = {
        .count = d->count, .x = xs, .y = ys, .classes = d->labels, .class_count = classes,
        .background = regions, .background_rows = GRID, .background_cols = GRID,
        .x_min = -extent, .x_max = extent, .y_min = -extent, .y_max = extent,
    };
    PlotAxes axes = {.title = "Spiral: decision regions and data", .x_label = "x", .y_label = "y"};
    Error err;
    if (!plot_scatter(target, "decision_regions", &axes, &scatter, &err)) error_exit(&err, 1);
    free(xs);
    free(ys);
    free(regions);
    g->no_grad = false;
}

/* ---- Training ------------------------------------------------------------------ */

typedef struct {
    float *steps, *train_loss, *val_steps, *val_loss; /* curves for the plot */
    int train_points, val_points;
} Curves;

static void save_model(const Mlp *m, const Optimizer *opt, const Settings *s, long step,
                       const char *path) {
    Metadata meta;
    metadata_init(&meta);
    metadata_set(&meta, "architecture", "spiral-mlp");
    metadata_set_int(&meta, "hidden", s->hidden);
    metadata_set_int(&meta, "classes", s->classes);
    metadata_set_int(&meta, "step", step);
    Error err;
    bool ok = checkpoint_save(path, &m->params, opt, &meta, &err);
    metadata_free(&meta);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
}

static int train(const Settings *s) {
    Error err;
    if (!make_directory(s->out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    threads_set(s->threads);
    Rng data_rng, model_rng;
    rng_seed(&data_rng, (uint64_t)s->seed, 1);
    rng_seed(&model_rng, (uint64_t)s->seed, 2);

    Dataset data = spiral_generate(s->points_per_class, s->classes, s->noise, &data_rng);
    int *train_idx, *val_idx, train_count, val_count;
    split_indices(data.count, 0.2f, &data_rng, &train_idx, &train_count, &val_idx, &val_count);
    Mlp model;
    mlp_build(&model, s->hidden, s->classes, &model_rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAMW, &model.params);
    opt.weight_decay = s->weight_decay;
    Graph g;
    graph_init(&g, 1 << 20, 64);
    g.check_numerics = s->check_numerics;
    BatchSampler sampler;
    batch_sampler_init(&sampler, train_count, &data_rng);

    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", s->out);
    MetricsLog log;
    if (!metrics_open(&log, path, "step,train_loss,val_loss,val_accuracy,lr", false, &err))
        error_exit(&err, EXIT_RUNTIME_ERROR);
    Curves curves = {0};
    curves.steps = xmalloc((size_t)s->steps * sizeof(float));
    curves.train_loss = xmalloc((size_t)s->steps * sizeof(float));
    curves.val_steps = xmalloc((size_t)s->steps * sizeof(float));
    curves.val_loss = xmalloc((size_t)s->steps * sizeof(float));
    int *batch_positions = xmalloc((size_t)s->batch * sizeof(int));
    int *batch_points = xmalloc((size_t)s->batch * sizeof(int));
    int *labels = xmalloc((size_t)s->batch * sizeof(int));

    /* Linear warmup then cosine decay: large steps early, fine ones late. */
    Schedule schedule = {.kind = SCHEDULE_WARMUP_COSINE, .base_lr = s->lr, .min_lr = s->lr / 100,
                         .warmup_steps = s->steps / 20, .total_steps = s->steps};
    Progress progress;
    progress_start(&progress, 0, s->steps, "pts/s", s->quiet);
    float loss_value = 0, val_loss = 0, val_accuracy = 0;
    for (long step = 0; step < s->steps; step++) {
        /* One step: reset, sample, forward, loss, backward, update. */
        graph_reset(&g);
        g.step = step;
        params_zero_grad(&model.params);
        batch_sampler_next(&sampler, &data_rng, batch_positions, s->batch);
        for (int i = 0; i < s->batch; i++) batch_points[i] = train_idx[batch_positions[i]];
        Tensor *xy = gather_points(&g, &data, batch_points, s->batch, labels); /* (B, 2) */
        Tensor *loss = op_cross_entropy(&g, mlp_forward(&g, &model, xy), labels, -1);
        loss_value = loss->data[0];
        if (!isfinite(loss_value)) {
            fprintf(stderr, "tinyzoo: spiral: loss became %g at step %ld; lower --lr\n",
                    (double)loss_value, step);
            return EXIT_RUNTIME_ERROR;
        }
        graph_backward(&g, loss);
        float lr = schedule_lr(&schedule, step);
        optimizer_step(&opt, &model.params, lr);
        curves.steps[curves.train_points] = (float)(step + 1);
        curves.train_loss[curves.train_points++] = loss_value;
        progress_update(&progress, step + 1, loss_value, s->batch);

        if ((step + 1) % s->eval_every == 0 || step + 1 == s->steps) {
            evaluate(&g, &model, &data, val_idx, val_count, &val_loss, &val_accuracy);
            curves.val_steps[curves.val_points] = (float)(step + 1);
            curves.val_loss[curves.val_points++] = val_loss;
            metrics_write(&log, (double[]){(double)(step + 1), loss_value, val_loss, val_accuracy, lr}, 5);
        }
    }
    progress_finish(&progress);
    metrics_close(&log);

    snprintf(path, sizeof path, "%s/model.safetensors", s->out);
    save_model(&model, &opt, s, s->steps, path);

    PlotTarget target = {.dir = s->out, .term = (PlotTerm)s->plot_term};
    PlotSeries series[2] = {
        {.name = "train (batch)", .x = curves.steps, .y = curves.train_loss, .count = curves.train_points},
        {.name = "validation", .x = curves.val_steps, .y = curves.val_loss, .count = curves.val_points},
    };
    PlotAxes axes = {.title = "Spiral MLP: cross-entropy loss", .x_label = "step",
                     .y_label = "loss", .log_y = true};
    if (!plot_lines(&target, "loss", &axes, series, 2, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    plot_decision_regions(&g, &model, &data, &target, s->classes);

    printf("final: step=%ld train_loss=%.4f val_loss=%.4f val_accuracy=%.4f\n", s->steps,
           (double)loss_value, (double)val_loss, (double)val_accuracy);
    if (!s->quiet)
        printf("wrote %s/{metrics.csv,model.safetensors,config.txt,loss.png,decision_regions.png}\n",
               s->out);

    free(batch_positions), free(batch_points), free(labels);
    free(curves.steps), free(curves.train_loss), free(curves.val_steps), free(curves.val_loss);
    batch_sampler_free(&sampler);
    graph_free(&g);
    optimizer_free(&opt);
    params_free(&model.params);
    free(train_idx), free(val_idx);
    dataset_free(&data);
    return 0;
}

/* ---- Command line ------------------------------------------------------------- */

static const char USAGE[] = "spiral train [options]\n"
                            "Trains a 2-layer MLP on a 2-D spiral and plots loss and decision regions.";

int main(int argc, char **argv) {
    Settings s = {
        .points_per_class = 200, .classes = 3, .noise = 0.2f, .hidden = 64, .steps = 1500,
        .batch = 64, .lr = 1e-2f, .weight_decay = 1e-4f, .seed = 1, .threads = 1,
        .eval_every = 50, .out = "runs/spiral", .plot_term = PLOT_TERM_PNG,
    };
    const Option options[] = {
        {"points", OPTION_INT, &s.points_per_class, "points per spiral arm", NULL, 10, 100000},
        {"classes", OPTION_INT, &s.classes, "number of spiral arms (classes)", NULL, 2, 10},
        {"noise", OPTION_FLOAT, &s.noise, "angular noise of the arms", NULL, 0, 2},
        {"hidden", OPTION_INT, &s.hidden, "hidden units per layer", NULL, 1, 4096},
        {"steps", OPTION_LONG, &s.steps, "training steps", NULL, 1, 10000000},
        {"batch", OPTION_INT, &s.batch, "points per step", NULL, 1, 100000},
        {"lr", OPTION_FLOAT, &s.lr, "peak AdamW learning rate (warmup, then cosine decay to lr/100)", NULL, 1e-7, 10},
        {"weight-decay", OPTION_FLOAT, &s.weight_decay, "AdamW weight decay", NULL, 0, 1},
        {"seed", OPTION_LONG, &s.seed, "random seed (data and model)", NULL, 0, 4294967295.0},
        {"threads", OPTION_INT, &s.threads, "threads for matmul", NULL, 1, 256},
        {"eval-every", OPTION_LONG, &s.eval_every, "steps between validation passes", NULL, 1, 10000000},
        {"out", OPTION_STRING, &s.out, "run directory for metrics, model and plots", NULL, 0, 0},
        {"plot-term", OPTION_CHOICE, &s.plot_term, "how to draw plots", "png|dumb|none", 0, 0},
        {"quiet", OPTION_FLAG, &s.quiet, "no progress output", NULL, 0, 0},
        {"check-numerics", OPTION_FLAG, &s.check_numerics, "stop at the first NaN/Inf and name the op", NULL, 0, 0},
    };
    int count = (int)(sizeof options / sizeof options[0]);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        options_print_help(argc < 2 ? stderr : stdout, USAGE, options, count);
        return argc < 2 ? EXIT_USAGE_ERROR : 0;
    }
    if (strcmp(argv[1], "train") != 0) {
        fprintf(stderr, "spiral: unknown command '%s'; expected 'train' (see --help)\n", argv[1]);
        return EXIT_USAGE_ERROR;
    }
    options_parse_or_exit(argc, argv, 2, options, count, USAGE);
    if (s.batch > s.points_per_class * s.classes * 4 / 5) {
        fprintf(stderr, "spiral train: --batch %d is larger than the %d training points\n",
                s.batch, s.points_per_class * s.classes * 4 / 5);
        return EXIT_USAGE_ERROR;
    }
    Error err;
    char config_path[4096];
    if (!make_directory(s.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(config_path, sizeof config_path, "%s/config.txt", s.out);
    if (!options_write_config(config_path, options, count, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    return train(&s);
}
