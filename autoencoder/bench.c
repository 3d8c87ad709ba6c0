/* autoencoder/bench.c: training speed, and the one-step dump that the
 * PyTorch parity script checks.
 *
 * Legend: B batch, D input features, Z code size, P pool of random images.
 *
 * bench --config mnist: 784-256-32-256-784, ReLU, sigmoid output, BCE, Adam;
 *       --config small: 64-32-2-32-64, the same otherwise.
 * Both train on a pool of random images in [0, 1]; the numbers do not
 * matter, only the work.  tests/bench/autoencoder_torch.py times the same
 * model, batch and optimizer in PyTorch.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"
#include "matmul.h"

enum { POOL = 1024 };

/* One Adam step on rows [first, first + B) of the pool (P, D). */
static float bench_step(Graph *g, Autoencoder *model, Optimizer *opt, const float *pool, int first, int B) {
    const int D = autoencoder_input_size(&model->config);
    graph_reset(g);
    params_zero_grad(&model->params);
    Tensor *x = tensor_of(g, false, 2, B, D); /* (B, D) */
    memcpy(x->data, pool + (size_t)first * D, sizeof(float) * (size_t)B * D);
    AutoencoderPass pass = autoencoder_forward(g, model, x, x, NULL, 1.0f);
    graph_backward(g, pass.loss);
    optimizer_step(opt, &model->params, 1e-3f);
    return pass.loss->data[0];
}

int autoencoder_bench(AutoencoderSettings *s) {
    threads_set(s->common.threads);
    AutoencoderConfig config = {.kind = AUTOENCODER_AE, .activation = ACTIVATION_RELU, .output = OUTPUT_SIGMOID_BCE};
    Error err;
    const char *layers = s->bench_config == 0 ? "784,256,32" : "64,32,2";
    if (!autoencoder_parse_layers(layers, &config, &err)) error_exit(&err, EXIT_USAGE_ERROR);
    const int B = s->common.batch, D = config.sizes[0];
    if (B > POOL) {
        fprintf(stderr, "autoencoder bench: --batch %d is above the pool of %d images\n", B, POOL);
        return EXIT_USAGE_ERROR;
    }
    Autoencoder model;
    autoencoder_build(&model, &config);
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 2);
    autoencoder_init(&model, &rng);
    float *pool = xmalloc(sizeof(float) * POOL * (size_t)D); /* (P, D) */
    for (int i = 0; i < POOL * D; i++) pool[i] = rng_uniform(&rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    Graph g;
    graph_init(&g, 16 << 20, 256);
    int position = 0;
    float loss = 0;
    for (int i = 0; i < s->bench_warmup; i++, position = (position + B) % (POOL - B + 1))
        loss = bench_step(&g, &model, &opt, pool, position, B);
    double best = INFINITY;
    for (int r = 0; r < s->bench_repeats; r++) {
        double start = time_seconds();
        for (int i = 0; i < s->bench_steps; i++, position = (position + B) % (POOL - B + 1))
            loss = bench_step(&g, &model, &opt, pool, position, B);
        double seconds = (time_seconds() - start) / s->bench_steps;
        if (seconds < best) best = seconds;
    }
    printf("bench: config=%s layers=%s threads=%d batch=%d samples_per_s=%.0f ms_per_step=%.3f loss=%.3f "
           "(best of %d x %d steps)\n", s->bench_config == 0 ? "mnist" : "small", layers, s->common.threads, B,
           B / best, best * 1e3, (double)loss, s->bench_repeats, s->bench_steps);
    graph_free(&g);
    optimizer_free(&opt);
    free(pool);
    autoencoder_free(&model);
    return 0;
}

/* ---- Parity dump ---------------------------------------------------------------------- */

/* Adds a tensor named `name` with the values of `data` to the dump. */
typedef struct {
    const char *name;
    int ndim, shape[2];
    const float *data;
} DumpItem;

int autoencoder_parity(AutoencoderSettings *s) {
    threads_set(s->common.threads);
    Autoencoder model;
    autoencoder_build(&model, &s->model);
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 2);
    autoencoder_init(&model, &rng);
    const AutoencoderConfig *c = &model.config;
    const int B = s->common.batch, D = autoencoder_input_size(c), Z = autoencoder_code_size(c);
    Graph g;
    graph_init(&g, 8 << 20, 256);
    Tensor *target = tensor_of(&g, false, 2, B, D); /* (B, D) images in [0, 1] */
    for (int i = 0; i < B * D; i++) target->data[i] = rng_uniform(&rng);
    Tensor *input = target;
    if (c->kind == AUTOENCODER_DAE) {
        input = tensor_of(&g, false, 2, B, D); /* (B, D) */
        autoencoder_corrupt(c->noise, c->noise_level, target->data, input->data, B * D, &rng);
    }
    float *eps = xmalloc(sizeof(float) * (size_t)B * Z); /* (B, Z) */
    for (int i = 0; i < B * Z; i++) eps[i] = rng_normal(&rng);
    params_zero_grad(&model.params);
    AutoencoderPass pass = autoencoder_forward(&g, &model, input, target, c->kind == AUTOENCODER_VAE ? eps : NULL, c->beta);
    graph_backward(&g, pass.loss);

    float kl = pass.kl ? pass.kl->data[0] : 0.0f, sparsity = pass.sparsity ? pass.sparsity->data[0] : 0.0f;
    DumpItem items[] = {
        {"input", 2, {B, D}, input->data},     {"target", 2, {B, D}, target->data},
        {"eps", 2, {B, Z}, eps},               {"logits", 2, {B, D}, pass.logits->data},
        {"mu", 2, {B, Z}, pass.mu->data},      {"loss", 1, {1, 0}, pass.loss->data},
        {"recon_loss", 1, {1, 0}, pass.recon_loss->data}, {"kl", 1, {1, 0}, &kl},
        {"sparsity", 1, {1, 0}, &sparsity},
    };
    int item_count = (int)(sizeof items / sizeof *items);
    ParamSet dump;
    params_init(&dump);
    for (int i = 0; i < item_count; i++) params_add(&dump, items[i].name, items[i].ndim, items[i].shape, false);
    char name[PARAM_NAME_MAX];
    for (int t = 0; t < model.params.count; t++) {
        Tensor *p = &model.params.tensors[t];
        snprintf(name, sizeof name, "param.%s", model.params.names[t]);
        params_add(&dump, name, p->ndim, p->shape, false);
        snprintf(name, sizeof name, "grad.%s", model.params.names[t]);
        params_add(&dump, name, p->ndim, p->shape, false);
    }
    params_allocate(&dump);
    for (int i = 0; i < item_count; i++)
        memcpy(dump.tensors[i].data, items[i].data, sizeof(float) * (size_t)dump.tensors[i].numel);
    for (int t = 0; t < model.params.count; t++) {
        Tensor *p = &model.params.tensors[t];
        memcpy(dump.tensors[item_count + 2 * t].data, p->data, sizeof(float) * (size_t)p->numel);
        memcpy(dump.tensors[item_count + 2 * t + 1].data, p->grad, sizeof(float) * (size_t)p->numel);
    }
    Metadata meta;
    metadata_init(&meta);
    autoencoder_config_to_metadata(c, &meta);
    metadata_set(&meta, "architecture", "autoencoder-parity");
    Error err;
    char path[1200];
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/parity.safetensors", s->common.out);
    if (!checkpoint_save(path, &dump, NULL, &meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    printf("parity: wrote %s (loss %.6f, recon %.6f, kl %.6f, sparsity %.6f)\n", path, (double)pass.loss->data[0],
           (double)pass.recon_loss->data[0], (double)kl, (double)sparsity);
    metadata_free(&meta);
    params_free(&dump);
    free(eps);
    graph_free(&g);
    autoencoder_free(&model);
    return 0;
}
