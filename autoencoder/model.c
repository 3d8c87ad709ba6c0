/* autoencoder/model.c: the architecture: config, parameters, forward pass,
 * losses, and the four ops the autoencoders add to the autograd.
 *
 * Legend: B batch, D input features, Z code size, L encoder layers,
 * sizes[k] the width of layer k (sizes[0] = D, sizes[L] = Z).
 *
 * Reading order: config (layer list, metadata), parameters (build, init),
 * the custom ops (reparameterise, KL, L1, sigmoid + cross-entropy: each
 * forward then its backward), the encoder, the decoder, the losses, the
 * corruption of the dae.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"
#include "fastmath.h"

/* ==== Config ================================================================= */

bool autoencoder_parse_layers(const char *text, AutoencoderConfig *config, Error *err) {
    int sizes[AUTOENCODER_MAX_LAYERS + 1], count = 0;
    const char *p = text;
    for (;;) {
        char *end;
        long value = strtol(p, &end, 10);
        if (end == p || value < 1 || value > 65536)
            return error_set(err, "--layers '%s': expected sizes in [1, 65536] separated by commas, "
                                  "e.g. 784,256,32", text);
        if (count == AUTOENCODER_MAX_LAYERS + 1)
            return error_set(err, "--layers '%s': at most %d sizes (%d layers)", text,
                             AUTOENCODER_MAX_LAYERS + 1, AUTOENCODER_MAX_LAYERS);
        sizes[count++] = (int)value;
        if (*end == '\0') break;
        if (*end != ',') return error_set(err, "--layers '%s': unexpected '%c'", text, *end);
        p = end + 1;
    }
    if (count < 2)
        return error_set(err, "--layers '%s': need the input size and the code size at least", text);
    memcpy(config->sizes, sizes, sizeof(int) * (size_t)count);
    config->layer_count = count - 1;
    return true;
}

void autoencoder_layers_string(const AutoencoderConfig *config, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k <= config->layer_count && used < size; k++)
        used += (size_t)snprintf(out + used, size - used, k ? ",%d" : "%d", config->sizes[k]);
}

int autoencoder_code_size(const AutoencoderConfig *config) { return config->sizes[config->layer_count]; }
int autoencoder_input_size(const AutoencoderConfig *config) { return config->sizes[0]; }

static const char *const KIND_NAMES[] = {"ae", "dae", "vae"};
static const char *const ACTIVATION_NAMES[] = {"relu", "tanh", "sigmoid", "gelu", "linear"};
static const char *const OUTPUT_NAMES[] = {"bce", "mse"};
static const char *const NOISE_NAMES[] = {"gaussian", "masking"};

static int name_index(const char *const *names, int count, const char *value) {
    for (int i = 0; value != NULL && i < count; i++)
        if (strcmp(names[i], value) == 0) return i;
    return -1;
}

void autoencoder_config_to_metadata(const AutoencoderConfig *c, Metadata *meta) {
    char layers[256];
    autoencoder_layers_string(c, layers, sizeof layers);
    metadata_set(meta, "architecture", "autoencoder");
    metadata_set(meta, "model", KIND_NAMES[c->kind]);
    metadata_set(meta, "layers", layers);
    metadata_set(meta, "activation", ACTIVATION_NAMES[c->activation]);
    metadata_set(meta, "output", OUTPUT_NAMES[c->output]);
    metadata_set(meta, "tied", c->tied ? "true" : "false");
    metadata_set(meta, "noise", NOISE_NAMES[c->noise]);
    metadata_set_float(meta, "noise_level", c->noise_level);
    metadata_set_float(meta, "beta", c->beta);
    metadata_set_int(meta, "beta_warmup", c->beta_warmup);
    metadata_set_float(meta, "l1", c->l1);
}

/* Reads a metadata string that must be one of `names`. */
static bool metadata_choice(const Metadata *meta, const char *key, const char *const *names,
                            int count, int *value, Error *err) {
    int index = name_index(names, count, metadata_get(meta, key));
    if (index < 0)
        return error_set(err, "checkpoint metadata '%s' is %s%s%s; not an autoencoder checkpoint?",
                         key, metadata_get(meta, key) ? "'" : "missing",
                         metadata_get(meta, key) ? metadata_get(meta, key) : "",
                         metadata_get(meta, key) ? "'" : "");
    *value = index;
    return true;
}

bool autoencoder_config_from_metadata(const Metadata *meta, AutoencoderConfig *c, Error *err) {
    memset(c, 0, sizeof *c);
    /* Another model's checkpoint is named as such, not as a missing key. */
    const char *architecture = metadata_get(meta, "architecture");
    if (architecture == NULL || strcmp(architecture, "autoencoder") != 0)
        return error_set(err, "checkpoint is for architecture \"%s\", expected \"autoencoder\"",
                         architecture != NULL ? architecture : "(none)");
    int kind, activation, output, noise;
    if (!metadata_choice(meta, "model", KIND_NAMES, 3, &kind, err) ||
        !metadata_choice(meta, "activation", ACTIVATION_NAMES, 5, &activation, err) ||
        !metadata_choice(meta, "output", OUTPUT_NAMES, 2, &output, err) ||
        !metadata_choice(meta, "noise", NOISE_NAMES, 2, &noise, err))
        return false;
    c->kind = (AutoencoderKind)kind;
    c->activation = (AutoencoderActivation)activation;
    c->output = (AutoencoderOutput)output;
    c->noise = (AutoencoderNoise)noise;
    const char *layers = metadata_get(meta, "layers");
    const char *tied = metadata_get(meta, "tied");
    if (layers == NULL) return error_set(err, "checkpoint metadata has no 'layers'");
    if (!autoencoder_parse_layers(layers, c, err)) return false;
    if (tied == NULL || (strcmp(tied, "true") != 0 && strcmp(tied, "false") != 0))
        return error_set(err, "checkpoint metadata 'tied' must be true or false");
    c->tied = strcmp(tied, "true") == 0;
    return metadata_get_float(meta, "noise_level", &c->noise_level, err) &&
           metadata_get_float(meta, "beta", &c->beta, err) &&
           metadata_get_int(meta, "beta_warmup", &c->beta_warmup, err) &&
           metadata_get_float(meta, "l1", &c->l1, err);
}

/* ==== Parameters ============================================================== */

/* Names follow the layers: encoder.0 ... encoder.<L-1> (the vae's mean head
 * is encoder.<L-1>), encoder.logvar, decoder.<L-1> ... decoder.0, declared
 * in the order the data flows through them. */
void autoencoder_build(Autoencoder *model, const AutoencoderConfig *config) {
    memset(model, 0, sizeof *model);
    model->config = *config;
    const int L = config->layer_count;
    const int *sizes = config->sizes;
    params_init(&model->params);
    char name[PARAM_NAME_MAX];
    for (int k = 0; k < L; k++) {
        snprintf(name, sizeof name, "encoder.%d", k);
        model->encoder[k] = linear_declare(&model->params, name, sizes[k], sizes[k + 1], true);
    }
    if (config->kind == AUTOENCODER_VAE)
        model->logvar = linear_declare(&model->params, "encoder.logvar", sizes[L - 1], sizes[L], true);
    for (int k = L - 1; k >= 0; k--) {
        snprintf(name, sizeof name, "decoder.%d", k);
        if (config->tied) { /* only the bias is the decoder's own */
            snprintf(name, sizeof name, "decoder.%d.bias", k);
            model->decoder[k].bias = params_add_of(&model->params, name, false, 1, sizes[k]);
        } else {
            model->decoder[k] = linear_declare(&model->params, name, sizes[k + 1], sizes[k], true);
        }
    }
    params_allocate(&model->params);
}

/* PyTorch's nn.Linear default, U(-1/sqrt(In), 1/sqrt(In)), for every layer.
 * A tied decoder bias gets the same bound, from its own fan-in. */
void autoencoder_init(Autoencoder *model, Rng *rng) {
    const AutoencoderConfig *c = &model->config;
    for (int k = 0; k < c->layer_count; k++) linear_init(&model->encoder[k], rng);
    if (c->kind == AUTOENCODER_VAE) linear_init(&model->logvar, rng);
    for (int k = c->layer_count - 1; k >= 0; k--) {
        if (c->tied) {
            float bound = 1.0f / sqrtf((float)c->sizes[k + 1]);
            init_uniform(model->decoder[k].bias, -bound, bound, rng);
        } else {
            linear_init(&model->decoder[k], rng);
        }
    }
}

void autoencoder_free(Autoencoder *model) { params_free(&model->params); }

/* ==== Custom ops ================================================================ */

/* ---- Reparameterisation: z = mu + sigma * eps, sigma = exp(logvar / 2) ------- */

static void reparameterize_backward(TapeEntry *entry);

Tensor *autoencoder_op_reparameterize(Graph *g, Tensor *mu, Tensor *logvar, const float *eps) {
    tensor_check_shapes(tensor_same_shape(mu, logvar), "reparameterize", mu, logvar,
                        "mu and logvar must have the same shape");
    bool grad = graph_needs_grad(g, mu, logvar, NULL);
    Tensor *z = tensor_new(g, mu->ndim, mu->shape, grad); /* (B, Z) */
    z->name = "reparameterize";
    /* EXERCISE vae_reparameterize: z (zeros now) from mu, logvar and the noise eps, elementwise
     * STUB: (void)eps;
     * STUB: exercise_missing("vae_reparameterize"); */
    for (int i = 0; i < z->numel; i++) z->data[i] = mu->data[i] + expf(0.5f * logvar->data[i]) * eps[i];
    /* END EXERCISE */
    if (grad) graph_record_custom(g, "reparameterize", reparameterize_backward, z, mu, logvar, NULL);
    graph_check_finite(g, "reparameterize", z);
    return z;
}

/* EXERCISE vae_reparameterize: mu->grad and logvar->grad (either may be NULL) += dz/dmu and
 * dz/dlogvar times z->grad; eps is not kept, but z and mu are.
 * STUB: static void reparameterize_backward(TapeEntry *entry) {
 * STUB:     (void)entry;
 * STUB:     exercise_missing("vae_reparameterize");
 * STUB: } */
/* dz/dmu = 1;  dz/dlogvar = eps * exp(logvar / 2) / 2 = (z - mu) / 2.
 * The second form needs only the output and mu, both kept by the tape, so
 * eps itself need not be saved. */
static void reparameterize_backward(TapeEntry *entry) {
    Tensor *z = entry->out, *mu = entry->inputs[0], *logvar = entry->inputs[1];
    for (int i = 0; i < z->numel; i++) {
        if (mu->grad) mu->grad[i] += z->grad[i];
        if (logvar->grad) logvar->grad[i] += z->grad[i] * 0.5f * (z->data[i] - mu->data[i]);
    }
}
/* END EXERCISE */

/* ---- KL(N(mu, sigma^2) || N(0, 1)), summed over Z, averaged over B ------------ */

static void kl_backward(TapeEntry *entry);

/* For one dimension, KL = 1/2 (sigma^2 + mu^2 - 1 - log sigma^2)
 *                       = -1/2 (1 + logvar - mu^2 - exp(logvar)). */
Tensor *autoencoder_op_kl(Graph *g, Tensor *mu, Tensor *logvar) {
    tensor_check_shapes(tensor_same_shape(mu, logvar), "kl", mu, logvar,
                        "mu and logvar must have the same shape");
    bool grad = graph_needs_grad(g, mu, logvar, NULL);
    Tensor *out = tensor_of(g, grad, 1, 1); /* (1) */
    out->name = "kl";
    int batch = mu->shape[0];
    /* EXERCISE vae_kl: out->data[0] (zero now) = the KL above, summed over every element of
     * mu (B, Z) and divided by the batch size B; sum in double, as the sum is long
     * STUB: (void)batch;
     * STUB: exercise_missing("vae_kl"); */
    double total = 0.0;
    for (int i = 0; i < mu->numel; i++) {
        float m = mu->data[i], lv = logvar->data[i];
        total += -0.5 * (1.0 + lv - (double)m * m - exp((double)lv));
    }
    out->data[0] = (float)(total / batch);
    /* END EXERCISE */
    if (grad) graph_record_custom(g, "kl", kl_backward, out, mu, logvar, NULL);
    graph_check_finite(g, "kl", out);
    return out;
}

/* EXERCISE vae_kl: mu->grad and logvar->grad (either may be NULL) += dKL/dmu and dKL/dlogvar
 * times the gradient of the KL, entry->out->grad[0]
 * STUB: static void kl_backward(TapeEntry *entry) {
 * STUB:     (void)entry;
 * STUB:     exercise_missing("vae_kl");
 * STUB: } */
/* dKL/dmu = mu / B;  dKL/dlogvar = (exp(logvar) - 1) / (2 B). */
static void kl_backward(TapeEntry *entry) {
    Tensor *mu = entry->inputs[0], *logvar = entry->inputs[1];
    float scale = entry->out->grad[0] / (float)mu->shape[0];
    for (int i = 0; i < mu->numel; i++) {
        if (mu->grad) mu->grad[i] += scale * mu->data[i];
        if (logvar->grad) logvar->grad[i] += scale * 0.5f * (expf(logvar->data[i]) - 1.0f);
    }
}
/* END EXERCISE */

/* ---- L1 norm of the code, averaged over B ---------------------------------------- */

static void l1_backward(TapeEntry *entry);

Tensor *autoencoder_op_l1(Graph *g, Tensor *x) {
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = tensor_of(g, grad, 1, 1); /* (1) */
    out->name = "l1";
    double total = 0.0;
    for (int i = 0; i < x->numel; i++) total += fabsf(x->data[i]);
    out->data[0] = (float)(total / x->shape[0]);
    if (grad) graph_record_custom(g, "l1", l1_backward, out, x, NULL, NULL);
    graph_check_finite(g, "l1", out);
    return out;
}

/* d|x|/dx = sign(x), taken as 0 at 0 (the subgradient PyTorch uses). */
static void l1_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    float scale = entry->out->grad[0] / (float)x->shape[0];
    for (int i = 0; i < x->numel; i++) {
        float v = x->data[i];
        x->grad[i] += v > 0 ? scale : v < 0 ? -scale : 0.0f;
    }
}

/* ---- Sigmoid output and binary cross-entropy, fused ------------------------------ */

/* log(1 + e) for e in [0, 1]: with s = e / (2 + e) in [0, 1/3],
 * log(1 + e) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...); seven terms leave
 * an error under (1/9)^7 / 15 relative, and it stays accurate as e -> 0,
 * where log(1 + e) computed as a log of the float 1 + e would lose e. */
static inline float log1p_unit(float e) {
    float s = e / (2.0f + e), s2 = s * s;
    float series = 1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9 +
                                                  s2 * (1.0f / 11 + s2 * (1.0f / 13))))));
    return 2.0f * s * series;
}

static void sigmoid_bce_backward(TapeEntry *entry);

/* Per image: sum over D of -[t log p + (1 - t) log(1 - p)], p = sigmoid(x),
 * mean over the B rows; computed from the logits as
 *   max(x, 0) - x t + log(1 + exp(-|x|)),
 * which never takes the log of 0 nor the exp of a large number.  The same
 * exp(-|x|) gives p: 1 / (1 + e) for x >= 0, e / (1 + e) below.  p (B, D)
 * is returned in *probabilities and saved for backward. */
static Tensor *sigmoid_bce(Graph *g, Tensor *logits, const Tensor *target, Tensor **probabilities) {
    tensor_check_shapes(tensor_same_shape(logits, target), "sigmoid_bce", logits, target,
                        "logits and target must have the same shape");
    bool grad = graph_needs_grad(g, logits, NULL, NULL);
    Tensor *p = tensor_new(g, logits->ndim, logits->shape, false); /* (B, D) */
    p->name = "sigmoid";
    float *terms = arena_alloc(&g->arena, sizeof(float) * (size_t)logits->numel); /* (B*D) */
    const float *x = logits->data, *t = target->data;
    for (int i = 0; i < logits->numel; i++) { /* vectorized: no calls, no branches */
        float e = exp_fast(-fabsf(x[i])); /* common/fastmath.h: vectorised */
        float inverse = 1.0f / (1.0f + e);
        p->data[i] = x[i] >= 0 ? inverse : e * inverse;
        terms[i] = (x[i] > 0 ? x[i] : 0.0f) - x[i] * t[i] + log1p_unit(e);
    }
    /* Summed in double, in eight interleaved partial sums (independent
     * additions the processor overlaps, and the compiler vectorizes), then
     * added up in order: the same total on every run and thread count. */
    double partial[8] = {0};
    int i = 0;
    for (; i + 8 <= logits->numel; i += 8)
        for (int j = 0; j < 8; j++) partial[j] += terms[i + j];
    double total = 0.0;
    for (; i < logits->numel; i++) total += terms[i];
    for (int j = 0; j < 8; j++) total += partial[j];
    Tensor *out = tensor_of(g, grad, 1, 1); /* (1) */
    out->name = "sigmoid_bce";
    out->data[0] = (float)(total / logits->shape[0]);
    if (grad) graph_record_custom(g, "sigmoid_bce", sigmoid_bce_backward, out, logits, (Tensor *)target, p);
    graph_check_finite(g, "sigmoid_bce", out);
    *probabilities = p;
    return out;
}

/* dL/dx = (p - t) / B: the sigmoid's derivative p (1 - p) cancels against
 * the cross-entropy's 1 / (p (1 - p)), which is why the two are fused. */
static void sigmoid_bce_backward(TapeEntry *entry) {
    Tensor *logits = entry->inputs[0];
    const float *t = entry->inputs[1]->data, *p = entry->inputs[2]->data;
    float scale = entry->out->grad[0] / (float)logits->shape[0];
    float *dx = logits->grad;
    for (int i = 0; i < logits->numel; i++) dx[i] += scale * (p[i] - t[i]);
}

/* ==== Encoder and decoder ======================================================== */

static Tensor *activate(Graph *g, AutoencoderActivation activation, Tensor *x) {
    switch (activation) {
    case ACTIVATION_RELU: return op_relu(g, x);
    case ACTIVATION_TANH: return op_tanh(g, x);
    case ACTIVATION_SIGMOID: return op_sigmoid(g, x);
    case ACTIVATION_GELU: return op_gelu(g, x);
    default: return x; /* ACTIVATION_LINEAR */
    }
}

/* h_k = act(W_k h_{k-1} + b_k) for the hidden layers; the code layer (and the
 * vae's two heads) stay linear: a code squashed by an activation could not
 * take every value the decoder might need, and mu, logvar are unbounded. */
Tensor *autoencoder_encode(Graph *g, const Autoencoder *model, Tensor *x, Tensor **logvar) {
    const AutoencoderConfig *c = &model->config;
    Tensor *h = x; /* (B, D) */
    for (int k = 0; k < c->layer_count - 1; k++)
        h = activate(g, c->activation, linear_forward(g, &model->encoder[k], h)); /* (B, sizes[k+1]) */
    Tensor *mu = linear_forward(g, &model->encoder[c->layer_count - 1], h); /* (B, Z) */
    if (logvar != NULL)
        *logvar = c->kind == AUTOENCODER_VAE ? linear_forward(g, &model->logvar, h) : NULL;
    return mu;
}

/* One decoder layer, sizes[k+1] -> sizes[k]: its own weight (sizes[k],
 * sizes[k+1]) used as W^T like any Linear, or the tied encoder weight
 * (sizes[k+1], sizes[k]) used as it is: h @ W_enc = h @ (W_enc^T)^T. */
static Tensor *decoder_layer(Graph *g, const Autoencoder *model, int k, Tensor *h) {
    const Linear *layer = &model->decoder[k];
    if (!model->config.tied) return linear_forward(g, layer, h);
    Tensor *y = op_matmul(g, h, model->encoder[k].weight, NO_TRANSPOSE); /* (B, sizes[k]) */
    return op_add_bias(g, y, layer->bias);
}

/* The mirror of the encoder: z (B, Z) -> ... -> logits (B, D). */
Tensor *autoencoder_decode(Graph *g, const Autoencoder *model, Tensor *z) {
    const AutoencoderConfig *c = &model->config;
    Tensor *h = z;
    for (int k = c->layer_count - 1; k >= 1; k--)
        h = activate(g, c->activation, decoder_layer(g, model, k, h)); /* (B, sizes[k]) */
    return decoder_layer(g, model, 0, h); /* (B, D) */
}

/* ==== Losses ======================================================================== */

/* Reconstruction loss per image: sum over the D features, mean over the
 * batch.  Sigmoid outputs: the fused sigmoid_bce, which also gives the
 * reconstruction p = sigmoid(logits).  Linear outputs: op_mse averages over
 * all B*D elements, so multiplying by D turns its mean into a per-image sum,
 * and the reconstruction is the logits themselves. */
static Tensor *reconstruction_loss(Graph *g, AutoencoderOutput output, Tensor *logits, Tensor *target,
                                   Tensor **reconstruction) {
    if (output == OUTPUT_SIGMOID_BCE) return sigmoid_bce(g, logits, target, reconstruction);
    *reconstruction = logits;
    float D = (float)logits->shape[logits->ndim - 1];
    return op_scale(g, op_mse(g, logits, target), D); /* (1) */
}

AutoencoderPass autoencoder_forward(Graph *g, const Autoencoder *model, Tensor *input,
                                    Tensor *target, const float *eps, float beta) {
    const AutoencoderConfig *c = &model->config;
    AutoencoderPass pass = {0};
    pass.mu = autoencoder_encode(g, model, input, &pass.logvar); /* (B, Z) */
    pass.z = pass.mu;
    if (c->kind == AUTOENCODER_VAE && eps != NULL)
        pass.z = autoencoder_op_reparameterize(g, pass.mu, pass.logvar, eps);
    pass.logits = autoencoder_decode(g, model, pass.z); /* (B, D) */
    pass.recon_loss = reconstruction_loss(g, c->output, pass.logits, target, &pass.reconstruction);
    pass.loss = pass.recon_loss;
    if (c->kind == AUTOENCODER_VAE) {
        pass.kl = autoencoder_op_kl(g, pass.mu, pass.logvar);
        pass.loss = op_add(g, pass.loss, op_scale(g, pass.kl, beta));
    }
    if (c->l1 > 0) {
        pass.sparsity = autoencoder_op_l1(g, pass.mu);
        pass.loss = op_add(g, pass.loss, op_scale(g, pass.sparsity, c->l1));
    }
    return pass;
}

float autoencoder_beta_at(const AutoencoderConfig *config, long step) {
    if (config->beta_warmup <= 0 || step + 1 >= config->beta_warmup) return config->beta;
    return config->beta * (float)(step + 1) / (float)config->beta_warmup;
}

/* ==== The denoising autoencoder's corruption ============================================ */

/* Gaussian: x~ = x + level * n, n ~ N(0, 1), not clipped (the encoder can
 * take any value).  Masking: each feature is set to 0 with probability
 * level (Vincent et al. 2008), the rest kept as they are. */
void autoencoder_corrupt(AutoencoderNoise noise, float level, const float *clean, float *noisy,
                         int count, Rng *rng) {
    if (noise == NOISE_GAUSSIAN) {
        for (int i = 0; i < count; i++) noisy[i] = clean[i] + level * rng_normal(rng);
    } else {
        for (int i = 0; i < count; i++) noisy[i] = rng_uniform(rng) < level ? 0.0f : clean[i];
    }
}
