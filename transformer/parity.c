/* transformer/parity.c: `bin/transformer parity`, the C side of the
 * comparison with PyTorch (tests/parity/transformer_parity.py).
 *
 * Legend: B batch, T time, V vocabulary, K classes.
 *
 * Builds a model from the flags with random weights (every weight, bias
 * and LayerNorm gain perturbed, so that no part of the model is trivial),
 * runs one batch of random tokens forward and backward, and writes one
 * safetensors file holding:
 *   <param name>          every parameter, as in a checkpoint
 *   batch.ids             (B, T) token ids, as floats
 *   batch.targets         (B, T) targets (-1 = ignored), or (B) class labels
 *   batch.lengths         (B) real tokens per row (the encoder pads)
 *   out.logits            (B, T, V) or (B, K)
 *   out.loss              (1)
 *   grad.<param name>     d(loss)/d(param) for every parameter
 * and the model's hyperparameters in the metadata.  The script rebuilds the
 * model in PyTorch from these weights and compares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "matmul.h"
#include "transformer.h"

typedef struct {
    int mode, positions, layers, heads, d_model, d_ff, context, batch, vocab, classes, threads;
    bool tie_head, no_bias;
    long seed;
    const char *out;
} ParitySettings;

/* Declares one tensor of the dump (values are copied after allocation). */
static void dump_add(ParamSet *dump, const char *name, int ndim, const int *shape) {
    params_add(dump, name, ndim, shape, false);
}

int transformer_command_parity(int argc, char **argv) {
    ParitySettings s = {.mode = TRANSFORMER_GPT, .positions = TRANSFORMER_POS_LEARNED, .layers = 2,
                        .heads = 2, .d_model = 16, .d_ff = 0, .context = 8, .batch = 3,
                        .vocab = 11, .classes = 0, .threads = 1, .seed = 1, .out = "runs/transformer-parity"};
    const Option options[] = {
        {"mode", OPTION_CHOICE, &s.mode, "gpt or bert", "gpt|bert", 0, 0},
        {"pos", OPTION_CHOICE, &s.positions, "positional encoding", "sinusoidal|learned|none", 0, 0},
        {"layers", OPTION_INT, &s.layers, "blocks", NULL, 1, TRANSFORMER_MAX_LAYERS},
        {"heads", OPTION_INT, &s.heads, "heads", NULL, 1, 64},
        {"d-model", OPTION_INT, &s.d_model, "width", NULL, 2, 1024},
        {"d-ff", OPTION_INT, &s.d_ff, "feed-forward width; 0 = 4 d-model", NULL, 0, 4096},
        {"context", OPTION_INT, &s.context, "T", NULL, 1, 512},
        {"batch", OPTION_INT, &s.batch, "B", NULL, 1, 64},
        {"vocab", OPTION_INT, &s.vocab, "V", NULL, 2, 1000},
        {"classes", OPTION_INT, &s.classes, "K > 0: classify (bert) instead of predicting tokens", NULL, 0, 100},
        {"tie-head", OPTION_FLAG, &s.tie_head, "head = token embedding", NULL, 0, 0},
        {"no-bias", OPTION_FLAG, &s.no_bias, "no Linear biases", NULL, 0, 0},
        {"threads", OPTION_INT, &s.threads, "threads", NULL, 1, 256},
        {"seed", OPTION_LONG, &s.seed, "random seed", NULL, 0, 1e9},
        {"out", OPTION_STRING, &s.out, "directory for parity.safetensors", NULL, 0, 0},
    };
    options_parse_or_exit(argc, argv, 2, options, (int)(sizeof options / sizeof options[0]),
                          "transformer parity [options]\n"
                          "Writes weights, a batch, the loss, logits and gradients for "
                          "tests/parity/transformer_parity.py.");
    threads_set(s.threads);
    TransformerConfig c = {.vocab = s.vocab, .context = s.context, .layers = s.layers,
                           .heads = s.heads, .d_model = s.d_model,
                           .d_ff = s.d_ff ? s.d_ff : 4 * s.d_model, .classes = s.classes,
                           .positions = (TransformerPositions)s.positions,
                           .mode = (TransformerMode)s.mode, .tied_head = s.tie_head,
                           .bias = !s.no_bias};
    Error err;
    if (!transformer_config_check(&c, &err)) error_exit(&err, EXIT_USAGE_ERROR);
    Transformer m;
    Rng rng;
    rng_seed(&rng, (uint64_t)s.seed, 2);
    transformer_build(&m, &c);
    transformer_init(&m, &rng);
    for (size_t i = 0; i < m.params.total; i++) m.params.values[i] += 0.2f * rng_normal(&rng);

    /* the batch: random tokens; the encoder's rows have random lengths */
    int B = s.batch, T = s.context, V = s.vocab;
    bool classify = s.classes > 0;
    int *ids = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
    int *lengths = xmalloc((size_t)B * sizeof(int)), *labels = xmalloc((size_t)B * sizeof(int));
    for (int i = 0; i < B * T; i++) ids[i] = (int)rng_below(&rng, (uint32_t)V);
    for (int i = 0; i < B * T; i++) targets[i] = rng_uniform(&rng) < 0.2f ? -1 : (int)rng_below(&rng, (uint32_t)V);
    for (int b = 0; b < B; b++) {
        lengths[b] = c.mode == TRANSFORMER_BERT ? 1 + (int)rng_below(&rng, (uint32_t)T) : T;
        if (b == 0) lengths[b] = T;
        labels[b] = classify ? (int)rng_below(&rng, (uint32_t)s.classes) : 0;
        for (int t = lengths[b]; t < T; t++) targets[b * T + t] = -1; /* no loss on padding */
    }
    Graph g;
    graph_init(&g, (size_t)16 << 20, 256);
    params_zero_grad(&m.params);
    TransformerInput in = {.ids = ids, .lengths = c.mode == TRANSFORMER_BERT ? lengths : NULL,
                           .batch = B, .time = T};
    Tensor *hidden = transformer_forward(&g, &m, &in);
    Tensor *logits = classify ? transformer_class_logits(&g, &m, hidden, lengths)
                              : transformer_lm_logits(&g, &m, hidden);
    Tensor *loss = op_cross_entropy(&g, logits, classify ? labels : targets, TRANSFORMER_NO_TARGET);
    graph_backward(&g, loss);

    /* the dump: parameters, batch, outputs, gradients */
    ParamSet dump;
    params_init(&dump);
    for (int t = 0; t < m.params.count; t++)
        dump_add(&dump, m.params.names[t], m.params.tensors[t].ndim, m.params.tensors[t].shape);
    dump_add(&dump, "batch.ids", 2, (const int[]){B, T});
    dump_add(&dump, "batch.targets", classify ? 1 : 2, classify ? (const int[]){B} : (const int[]){B, T});
    dump_add(&dump, "batch.lengths", 1, (const int[]){B});
    dump_add(&dump, "out.logits", logits->ndim, logits->shape);
    dump_add(&dump, "out.loss", 1, (const int[]){1});
    for (int t = 0; t < m.params.count; t++) {
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "grad.%s", m.params.names[t]);
        dump_add(&dump, name, m.params.tensors[t].ndim, m.params.tensors[t].shape);
    }
    params_allocate(&dump);
    int n = 0;
    for (int t = 0; t < m.params.count; t++, n++)
        memcpy(dump.tensors[n].data, m.params.tensors[t].data, (size_t)m.params.tensors[t].numel * sizeof(float));
    for (int i = 0; i < B * T; i++) dump.tensors[n].data[i] = (float)ids[i];
    n++;
    for (int i = 0; i < (classify ? B : B * T); i++) dump.tensors[n].data[i] = (float)(classify ? labels[i] : targets[i]);
    n++;
    for (int b = 0; b < B; b++) dump.tensors[n].data[b] = (float)lengths[b];
    n++;
    memcpy(dump.tensors[n++].data, logits->data, (size_t)logits->numel * sizeof(float));
    dump.tensors[n++].data[0] = loss->data[0];
    for (int t = 0; t < m.params.count; t++, n++)
        memcpy(dump.tensors[n].data, m.params.tensors[t].grad, (size_t)m.params.tensors[t].numel * sizeof(float));

    Metadata meta;
    metadata_init(&meta);
    metadata_set(&meta, "architecture", "transformer-parity");
    metadata_set_int(&meta, "layers", c.layers);
    metadata_set_int(&meta, "heads", c.heads);
    metadata_set_int(&meta, "d_model", c.d_model);
    metadata_set_int(&meta, "d_ff", c.d_ff);
    metadata_set_int(&meta, "context", c.context);
    metadata_set_int(&meta, "vocab_size", c.vocab);
    metadata_set_int(&meta, "classes", c.classes);
    metadata_set(&meta, "positions", transformer_positions_name(c.positions));
    metadata_set(&meta, "mode", transformer_mode_name(c.mode));
    metadata_set_int(&meta, "tied_head", c.tied_head);
    metadata_set_int(&meta, "bias", c.bias);
    char path[4096];
    if (!make_directory(s.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s/parity.safetensors", s.out);
    if (!checkpoint_save(path, &dump, NULL, &meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    printf("wrote %s: loss %.6f\n", path, (double)loss->data[0]);
    metadata_free(&meta);
    params_free(&dump);
    graph_free(&g);
    free(ids), free(targets), free(lengths), free(labels);
    transformer_free(&m);
    return 0;
}
