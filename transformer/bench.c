/* transformer/bench.c: how fast training steps and generation run.
 *
 * Legend: B batch, T context, C d_model, L layers, H heads, V vocabulary.
 *
 * The three configurations of the issue, the same as
 * tests/bench/transformer_torch.py builds in PyTorch: vocabulary 65, learned
 * positions, pre-norm, biases on every Linear, untied head, no dropout,
 * AdamW at lr 3e-4, MLP 4x, head size 32.
 *   config   C    L  H   T    B
 *   tiny     64   2  2   32   32
 *   base     128  4  4   64   16
 *   medium   256  6  8   128  8
 * A training step (forward, backward, clipping, AdamW) on random tokens is
 * timed after warmup steps; the best of the timed steps is reported, since
 * other processes share the machine and can only slow a step down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "transformer.h"

typedef struct {
    const char *name;
    int d_model, layers, heads, context, batch;
} BenchConfig;

static const BenchConfig CONFIGS[] = {
    {"tiny", 64, 2, 2, 32, 32},
    {"base", 128, 4, 4, 64, 16},
    {"medium", 256, 6, 8, 128, 8},
};

static double median(double *values, int n) {
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && values[j] < values[j - 1]; j--) {
            double swap = values[j];
            values[j] = values[j - 1], values[j - 1] = swap;
        }
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* Seconds to generate `count` tokens greedily after a one-token prompt. */
static double time_generation(Graph *g, const Transformer *m, int count, bool use_cache) {
    int *out = xmalloc((size_t)(count + 1) * sizeof(int));
    int prompt = 1;
    TransformerSampling greedy = {.temperature = 0};
    double start = time_seconds();
    transformer_generate(g, m, &prompt, 1, count, -1, &greedy, NULL, use_cache, out);
    double seconds = time_seconds() - start;
    free(out);
    return seconds;
}

int transformer_bench(const char *config_name, int threads, int steps, bool quiet) {
    const BenchConfig *b = NULL;
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        if (strcmp(CONFIGS[i].name, config_name) == 0) b = &CONFIGS[i];
    if (b == NULL) fatal("transformer_bench: unknown config %s", config_name);
    threads_set(threads);
    TransformerConfig config = {.vocab = 65, .context = b->context, .layers = b->layers,
                                .heads = b->heads, .d_model = b->d_model, .d_ff = 4 * b->d_model,
                                .positions = TRANSFORMER_POS_LEARNED, .mode = TRANSFORMER_GPT,
                                .bias = true};
    Transformer m;
    Rng rng;
    rng_seed(&rng, 1, 2);
    transformer_build(&m, &config);
    transformer_init(&m, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAMW, &m.params);
    opt.weight_decay = 0.01f;
    Graph g;
    graph_init(&g, (size_t)64 << 20, 512);
    int B = b->batch, T = b->context, V = config.vocab;
    int *ids = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
    for (int i = 0; i < B * T; i++) ids[i] = (int)rng_below(&rng, (uint32_t)V);
    for (int i = 0; i < B * T; i++) targets[i] = (int)rng_below(&rng, (uint32_t)V);
    enum { WARMUP = 3 };
    double *times = xmalloc((size_t)steps * sizeof(double));
    double *cpu_times = xmalloc((size_t)steps * sizeof(double));
    float loss_value = 0;
    for (int step = 0; step < WARMUP + steps; step++) {
        double start = time_seconds(), cpu_start = cpu_seconds();
        graph_reset(&g);
        params_zero_grad(&m.params);
        TransformerInput in = {.ids = ids, .batch = B, .time = T};
        Tensor *logits = transformer_lm_logits(&g, &m, transformer_forward(&g, &m, &in));
        Tensor *loss = op_cross_entropy(&g, logits, targets, TRANSFORMER_NO_TARGET);
        graph_backward(&g, loss);
        params_clip_grad_norm(&m.params, 1.0f);
        optimizer_step(&opt, &m.params, 3e-4f);
        loss_value = loss->data[0];
        if (step >= WARMUP) times[step - WARMUP] = time_seconds() - start;
        if (step >= WARMUP) cpu_times[step - WARMUP] = cpu_seconds() - cpu_start;
    }
    double best = times[0];
    for (int i = 1; i < steps; i++) best = times[i] < best ? times[i] : best;
    double typical = median(times, steps);
    /* CPU time of all threads per step: with one thread, a measure that
     * other processes on the machine do not inflate */
    double cpu = median(cpu_times, steps);
    /* generation: T tokens from a one-token prompt (the whole context) */
    int count = T - 1;
    double cached = time_generation(&g, &m, count, true);
    double uncached = time_generation(&g, &m, count, false);
    if (!quiet)
        fprintf(stderr, "config %s: C=%d L=%d H=%d T=%d B=%d, %zu parameters, loss %.3f\n", b->name,
                b->d_model, b->layers, b->heads, T, B, m.params.total, (double)loss_value);
    printf("bench: config=%s threads=%d ms_per_step=%.3f median_ms_per_step=%.3f "
           "cpu_ms_per_step=%.3f tokens_per_s=%.0f gen_cache_tok_s=%.0f gen_nocache_tok_s=%.0f "
           "peak_rss_kib=%ld\n",
           b->name, threads, best * 1e3, typical * 1e3, cpu * 1e3, B * T / best, count / cached,
           count / uncached, peak_rss_kib());
    free(times), free(cpu_times), free(ids), free(targets);
    graph_free(&g);
    optimizer_free(&opt);
    transformer_free(&m);
    return 0;
}
