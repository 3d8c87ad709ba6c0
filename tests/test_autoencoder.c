/* tests/test_autoencoder.c: the autoencoders of autoencoder/.
 *
 * Legend: B batch, D input features, Z code size, N images.
 *
 *   gradients   finite differences for ae, dae, vae (tied, untied, L1) and
 *               for each custom op on its own
 *   kl          the closed form against a Monte-Carlo estimate
 *   pca         a linear autoencoder reaches PCA's reconstruction error
 *   training    a tiny set is overfit; checkpoints round-trip; resuming and
 *               the thread count change nothing, bit for bit (the program)
 *   commands    every command runs on a trained checkpoint, and accepts and
 *               lists in its --help only the options it reads
 *   files       IDX (plain, gzip), PGM (P2, P5, 16-bit) and CSV round trips,
 *               and every kind of bad file gets a clear error
 *   anomaly     the ROC area on known cases
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../autoencoder/autoencoder.h"
#include "checkpoint.h"
#include "gradcheck.h"
#include "pca.h"
#include "program_runs.h"
#include "test_suites.h"

/* ==== Helpers ============================================================== */

static AutoencoderConfig config_of(AutoencoderKind kind, const char *layers, AutoencoderActivation activation,
                                   AutoencoderOutput output, bool tied) {
    AutoencoderConfig c = {.kind = kind, .activation = activation, .output = output, .tied = tied, .beta = 1.0f};
    Error err;
    ck_assert_msg(autoencoder_parse_layers(layers, &c, &err), "%s", err.message);
    return c;
}

static char *path_in(const char *dir, const char *name) {
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    return path;
}

static void write_bytes(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, size, f), size);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size + 1);
    ck_assert_uint_eq(fread(bytes, 1, *size, f), *size);
    fclose(f);
    return bytes;
}

/* Runs `bin/autoencoder <arguments>`, stderr to <dir>/stderr.txt; returns
 * the exit status and fills `stderr_text` (may be NULL). */
static int run_program(const char *dir, const char *arguments, char *stderr_text, size_t size) {
    char command[4096];
    snprintf(command, sizeof command, "%s/autoencoder %s >%s/stdout.txt 2>%s/stderr.txt", test_bin_dir(), arguments,
             dir, dir);
    int status = system(command);
    if (stderr_text != NULL) {
        char path[1024];
        snprintf(path, sizeof path, "%s/stderr.txt", dir);
        size_t got = 0;
        unsigned char *bytes = read_bytes(path, &got);
        size_t n = got < size - 1 ? got : size - 1;
        memcpy(stderr_text, bytes, n);
        stderr_text[n] = '\0';
        free(bytes);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ==== Gradients ================================================================ */

typedef struct {
    Autoencoder *model;
    Tensor *input, *target; /* (B, D) malloc'd, no gradient */
    const float *eps;       /* (B, Z) or NULL                */
    float beta;
} PassContext;

static Tensor *loss_forward(Graph *g, Tensor *const *inputs, void *context) {
    (void)inputs; /* the parameters, which the model holds already */
    PassContext *c = context;
    return autoencoder_forward(g, c->model, c->input, c->target, c->eps, c->beta).loss;
}

/* Finite-difference check of every parameter of a small model on a batch
 * of images in [0, 1] (the dae's input corrupted).  Returns mismatches. */
static int check_model_gradients(AutoencoderConfig config, const char *label) {
    Autoencoder model;
    autoencoder_build(&model, &config);
    Rng rng;
    rng_seed(&rng, 7, 1);
    autoencoder_init(&model, &rng);
    const int B = 3, D = autoencoder_input_size(&config), Z = autoencoder_code_size(&config);
    Tensor *target = tensor_alloc("target", 2, (int[]){B, D}, false);
    Tensor *input = tensor_alloc("input", 2, (int[]){B, D}, false);
    for (int i = 0; i < B * D; i++) target->data[i] = rng_uniform(&rng);
    if (config.kind == AUTOENCODER_DAE)
        autoencoder_corrupt(config.noise, config.noise_level, target->data, input->data, B * D, &rng);
    else
        memcpy(input->data, target->data, sizeof(float) * (size_t)B * D);
    float eps[64];
    for (int i = 0; i < B * Z; i++) eps[i] = rng_normal(&rng);
    PassContext context = {&model, input, target, config.kind == AUTOENCODER_VAE ? eps : NULL, 0.7f};
    Tensor *params[PARAMS_MAX_TENSORS];
    for (int t = 0; t < model.params.count; t++) params[t] = &model.params.tensors[t];
    int mismatches = gradcheck_tensor(label, loss_forward, &context, params, model.params.count, GRADCHECK_DEFAULT);
    tensor_free(target);
    tensor_free(input);
    autoencoder_free(&model);
    return mismatches;
}

START_TEST(test_gradients_ae) {
    AutoencoderConfig c = config_of(AUTOENCODER_AE, "6,5,3", ACTIVATION_TANH, OUTPUT_SIGMOID_BCE, false);
    ck_assert_int_eq(check_model_gradients(c, "ae bce tanh"), 0);
    c = config_of(AUTOENCODER_AE, "6,4,4,2", ACTIVATION_GELU, OUTPUT_LINEAR_MSE, true);
    c.l1 = 0.3f;
    ck_assert_int_eq(check_model_gradients(c, "ae mse gelu tied l1"), 0);
    c = config_of(AUTOENCODER_AE, "5,4,2", ACTIVATION_SIGMOID, OUTPUT_SIGMOID_BCE, true);
    ck_assert_int_eq(check_model_gradients(c, "ae bce sigmoid tied"), 0);
}
END_TEST

START_TEST(test_gradients_dae) {
    AutoencoderConfig c = config_of(AUTOENCODER_DAE, "6,5,3", ACTIVATION_TANH, OUTPUT_SIGMOID_BCE, false);
    c.noise = NOISE_GAUSSIAN, c.noise_level = 0.4f;
    ck_assert_int_eq(check_model_gradients(c, "dae gaussian"), 0);
    c.noise = NOISE_MASKING, c.noise_level = 0.5f, c.output = OUTPUT_LINEAR_MSE;
    ck_assert_int_eq(check_model_gradients(c, "dae masking mse"), 0);
}
END_TEST

START_TEST(test_gradients_vae) {
    AutoencoderConfig c = config_of(AUTOENCODER_VAE, "6,5,3", ACTIVATION_TANH, OUTPUT_SIGMOID_BCE, false);
    ck_assert_int_eq(check_model_gradients(c, "vae"), 0);
    c = config_of(AUTOENCODER_VAE, "6,4,2", ACTIVATION_GELU, OUTPUT_LINEAR_MSE, true);
    c.l1 = 0.2f;
    ck_assert_int_eq(check_model_gradients(c, "vae tied mse l1"), 0);
}
END_TEST

/* The custom ops alone, with respect to their tensor inputs. */
typedef struct {
    int which; /* 0 reparameterize, 1 kl, 2 l1 */
    const float *eps;
} OpContext;

static Tensor *op_forward(Graph *g, Tensor *const *inputs, void *context) {
    OpContext *c = context;
    if (c->which == 0) return autoencoder_op_reparameterize(g, inputs[0], inputs[1], c->eps);
    if (c->which == 1) return autoencoder_op_kl(g, inputs[0], inputs[1]);
    return autoencoder_op_l1(g, inputs[0]);
}

START_TEST(test_gradients_custom_ops) {
    Rng rng;
    rng_seed(&rng, 3, 3);
    Tensor *mu = gradcheck_random_of("mu", 1.0f, &rng, 2, 4, 3);
    Tensor *logvar = gradcheck_random_of("logvar", 0.7f, &rng, 2, 4, 3);
    float eps[12];
    for (int i = 0; i < 12; i++) eps[i] = rng_normal(&rng);
    Tensor *both[2] = {mu, logvar};
    for (int which = 0; which < 3; which++) {
        OpContext context = {which, eps};
        ck_assert_int_eq(gradcheck_tensor(which == 0 ? "reparameterize" : which == 1 ? "kl" : "l1", op_forward,
                                          &context, both, which == 2 ? 1 : 2, GRADCHECK_DEFAULT), 0);
    }
    tensor_free(mu);
    tensor_free(logvar);
}
END_TEST

/* ==== KL: closed form against Monte Carlo ========================================= */

/* KL(q || p) = E_q[log q(z) - log p(z)] with q = N(mu, sigma^2), p = N(0, 1),
 * per dimension; log q(z) - log p(z) = -log sigma - (z-mu)^2/(2 sigma^2) + z^2/2.
 * With 400k draws the standard error is under 0.5% of these values. */
START_TEST(test_kl_matches_monte_carlo) {
    const float mu_values[3] = {0.5f, -1.2f, 0.0f}, logvar_values[3] = {-0.7f, 0.4f, 1.1f};
    Graph g;
    graph_init(&g, 1 << 16, 16);
    Tensor *mu = tensor_of(&g, false, 2, 1, 3), *logvar = tensor_of(&g, false, 2, 1, 3);
    memcpy(mu->data, mu_values, sizeof mu_values);
    memcpy(logvar->data, logvar_values, sizeof logvar_values);
    double closed = autoencoder_op_kl(&g, mu, logvar)->data[0];
    Rng rng;
    rng_seed(&rng, 99, 0);
    enum { DRAWS = 400000 };
    double sum = 0, sum_squares = 0;
    for (int n = 0; n < DRAWS; n++) {
        double value = 0;
        for (int j = 0; j < 3; j++) {
            double sigma = exp(0.5 * logvar_values[j]);
            double z = mu_values[j] + sigma * rng_normal(&rng);
            value += -log(sigma) - (z - mu_values[j]) * (z - mu_values[j]) / (2 * sigma * sigma) + z * z / 2;
        }
        sum += value, sum_squares += value * value;
    }
    double mean = sum / DRAWS, standard_error = sqrt((sum_squares / DRAWS - mean * mean) / DRAWS);
    ck_assert_msg(fabs(mean - closed) < 4 * standard_error,
                  "closed form %.5f, Monte Carlo %.5f +- %.5f", closed, mean, standard_error);
    ck_assert(closed > 0.5); /* the test is not about a vanishing KL */
    graph_free(&g);
}
END_TEST

/* ==== A linear autoencoder reaches PCA ================================================ */

/* Data of effective rank 3 plus isotropic noise in 12 dimensions.  A
 * linear autoencoder with a 3-wide code trained on squared error finds the
 * same subspace as PCA (Baldi and Hornik 1989), so its error reaches the
 * sum of the 9 discarded eigenvalues, and can never go below it. */
START_TEST(test_linear_autoencoder_matches_pca) {
    enum { N = 1024, D = 12, Z = 3, STEPS = 2000 };
    const float lr0 = 3e-2f;
    Rng rng;
    rng_seed(&rng, 21, 0);
    float *data = malloc(sizeof(float) * N * D);
    float basis[Z][D];
    for (int k = 0; k < Z; k++)
        for (int i = 0; i < D; i++) basis[k][i] = rng_normal(&rng) * (float)(Z - k);
    for (int n = 0; n < N; n++) {
        float z[Z];
        for (int k = 0; k < Z; k++) z[k] = rng_normal(&rng);
        for (int i = 0; i < D; i++) {
            float value = 0.5f + 0.3f * rng_normal(&rng); /* noise variance 0.09 */
            for (int k = 0; k < Z; k++) value += z[k] * basis[k][i];
            data[n * D + i] = value;
        }
    }
    Pca pca;
    pca_fit(&pca, data, N, D, Z, &rng);
    double pca_error = pca.total_variance;
    for (int k = 0; k < Z; k++) pca_error -= pca.variances[k];

    AutoencoderConfig config = config_of(AUTOENCODER_AE, "12,3", ACTIVATION_LINEAR, OUTPUT_LINEAR_MSE, false);
    Autoencoder model;
    autoencoder_build(&model, &config);
    autoencoder_init(&model, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    Graph g;
    graph_init(&g, 1 << 20, 64);
    for (int step = 0; step < STEPS; step++) {
        graph_reset(&g);
        params_zero_grad(&model.params);
        Tensor *x = tensor_of(&g, false, 2, N, D); /* full batch: no gradient noise at the end */
        memcpy(x->data, data, sizeof(float) * N * D);
        float lr = step < STEPS / 2 ? lr0 : step < 3 * STEPS / 4 ? lr0 / 10 : lr0 / 100;
        graph_backward(&g, autoencoder_forward(&g, &model, x, x, NULL, 0).loss);
        optimizer_step(&opt, &model.params, lr);
    }
    /* The per-image squared error on all the data, as PCA's. */
    graph_reset(&g);
    g.no_grad = true;
    Tensor *x = tensor_of(&g, false, 2, N, D);
    memcpy(x->data, data, sizeof(float) * N * D);
    double ae_error = autoencoder_forward(&g, &model, x, x, NULL, 0).recon_loss->data[0];
    double ratio = ae_error / pca_error;
    ck_assert_msg(ratio > 0.999 && ratio < 1.02, "linear AE error %.5f, PCA %.5f (ratio %.4f)", ae_error, pca_error, ratio);
    /* And the error is far below what the code could not explain at all. */
    ck_assert(pca_error < 0.1 * pca.total_variance);
    graph_free(&g);
    optimizer_free(&opt);
    autoencoder_free(&model);
    pca_free(&pca);
    free(data);
}
END_TEST

/* ==== Training ========================================================================= */

START_TEST(test_overfits_a_tiny_set) {
    enum { N = 8, S = 16, D = S * S };
    AutoencoderDataset data;
    Rng rng;
    rng_seed(&rng, 5, 0);
    autoencoder_glyphs_generate(&data, N, S, 0.0f, &rng);
    AutoencoderConfig config = config_of(AUTOENCODER_AE, "256,64,8", ACTIVATION_RELU, OUTPUT_SIGMOID_BCE, false);
    Autoencoder model;
    autoencoder_build(&model, &config);
    autoencoder_init(&model, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &model.params);
    Graph g;
    graph_init(&g, 1 << 20, 64);
    int all[N];
    for (int i = 0; i < N; i++) all[i] = i;
    double before = autoencoder_evaluate(&g, &model, &data, all, N, N, 1).squared;
    for (int step = 0; step < 600; step++) {
        graph_reset(&g);
        params_zero_grad(&model.params);
        Tensor *x = tensor_of(&g, false, 2, N, D);
        memcpy(x->data, data.images, sizeof(float) * N * D);
        graph_backward(&g, autoencoder_forward(&g, &model, x, x, NULL, 0).loss);
        optimizer_step(&opt, &model.params, 3e-3f);
    }
    double after = autoencoder_evaluate(&g, &model, &data, all, N, N, 1).squared;
    /* Per image: ~50 squared pixel errors before, under 1 after. */
    ck_assert_msg(after < 0.02 * before && after < 1.0, "squared error %.3f -> %.3f", before, after);
    graph_free(&g);
    optimizer_free(&opt);
    autoencoder_free(&model);
    autoencoder_dataset_free(&data);
}
END_TEST

START_TEST(test_checkpoint_round_trip) {
    const char *dir = test_temp_dir("ae-ckpt");
    char *path = path_in(dir, "model.safetensors");
    AutoencoderConfig config = config_of(AUTOENCODER_VAE, "20,7,3", ACTIVATION_GELU, OUTPUT_LINEAR_MSE, true);
    config.beta = 0.25f, config.beta_warmup = 17, config.l1 = 0.125f, config.noise = NOISE_MASKING;
    Autoencoder model;
    autoencoder_build(&model, &config);
    Rng rng;
    rng_seed(&rng, 8, 0);
    autoencoder_init(&model, &rng);
    Metadata meta;
    metadata_init(&meta);
    autoencoder_config_to_metadata(&config, &meta);
    Error err;
    ck_assert_msg(checkpoint_save(path, &model.params, NULL, &meta, &err), "%s", err.message);
    metadata_free(&meta);
    Autoencoder loaded;
    Metadata loaded_meta;
    autoencoder_load(path, &loaded, &loaded_meta);
    metadata_free(&loaded_meta);
    const AutoencoderConfig *c = &loaded.config;
    ck_assert_int_eq(c->kind, AUTOENCODER_VAE);
    ck_assert_int_eq(c->layer_count, 2);
    ck_assert_int_eq(c->sizes[1], 7);
    ck_assert(c->tied && c->activation == ACTIVATION_GELU && c->output == OUTPUT_LINEAR_MSE);
    ck_assert(c->beta == 0.25f && c->beta_warmup == 17 && c->l1 == 0.125f && c->noise == NOISE_MASKING);
    ck_assert_int_eq(loaded.params.count, model.params.count);
    ck_assert(memcmp(loaded.params.values, model.params.values, sizeof(float) * model.params.total) == 0);
    autoencoder_free(&loaded);
    autoencoder_free(&model);
    free(path);
}
END_TEST

/* Loads the parameter block of a checkpoint written by the program. */
static float *checkpoint_values(const char *path, size_t *total) {
    Autoencoder model;
    Metadata meta;
    autoencoder_load(path, &model, &meta);
    metadata_free(&meta);
    float *values = malloc(sizeof(float) * model.params.total);
    memcpy(values, model.params.values, sizeof(float) * model.params.total);
    *total = model.params.total;
    autoencoder_free(&model);
    return values;
}

static const char TINY_RUN[] = "train --glyph-size 16 --glyph-count 300 --layers 256,24,3 --batch 16 --eval-every 10 "
                               "--eval-images 20 --no-pca --plot-term none --quiet";

/* TINY_RUN with `options` (the model, the steps) into <dir>/run. */
static void train_tiny_run(const char *dir, const char *options) {
    char args[2048], message[2048];
    snprintf(args, sizeof args, "%s %s --out %s/run", TINY_RUN, options, dir);
    ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s: %s", args, message);
}

/* What the last run_program in `dir` printed on stdout (malloc'd). */
static char *program_stdout(const char *dir) {
    char path[700];
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    size_t size;
    char *out = (char *)read_bytes(path, &size);
    out[size] = '\0';
    return out;
}

/* N steps in one run give the same checkpoint (weights, Adam moments,
 * metadata) and metrics.csv as k steps, then --resume to N, bit for bit,
 * for the models that draw noise (dae, vae); and 2 threads give the same
 * weights as 1.  (k is a multiple of --eval-every: a run of k steps logs a
 * last row at k, which one run of N steps would not.) */
START_TEST(test_resume_and_threads_are_bit_identical) {
    static const char *const MODELS[2] = {"vae --beta-warmup 10", "dae --noise masking"};
    for (int m = 0; m < 2; m++) {
        char dir[512], args[2048], message[1024];
        snprintf(dir, sizeof dir, "%s", test_temp_dir("ae-resume"));
        snprintf(args, sizeof args, "%s --model %s --steps 30 --out %s/whole", TINY_RUN, MODELS[m], dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
        snprintf(args, sizeof args, "%s --model %s --steps 20 --out %s/parts", TINY_RUN, MODELS[m], dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
        snprintf(args, sizeof args, "%s --model %s --steps 30 --resume --out %s/parts", TINY_RUN, MODELS[m], dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
        snprintf(args, sizeof args, "%s --model %s --steps 30 --threads 2 --out %s/threads", TINY_RUN, MODELS[m], dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
        char path[600];
        size_t a, c;
        snprintf(path, sizeof path, "%s/whole/model.safetensors", dir);
        float *whole = checkpoint_values(path, &a);
        snprintf(path, sizeof path, "%s/threads/model.safetensors", dir);
        float *threads = checkpoint_values(path, &c);
        ck_assert(a == c);
        ck_assert_msg(memcmp(whole, threads, sizeof(float) * a) == 0, "%s: 2 threads differ from 1", MODELS[m]);
        free(whole), free(threads);
        char whole_dir[600], parts_dir[600], why[1024];
        snprintf(whole_dir, sizeof whole_dir, "%s/whole", dir);
        snprintf(parts_dir, sizeof parts_dir, "%s/parts", dir);
        ck_assert_msg(runs_identical(whole_dir, parts_dir, why, sizeof why), "%s: %s", MODELS[m], why);
    }
}
END_TEST

/* The program trains, and the inference commands run on its checkpoint. */
START_TEST(test_program_commands) {
    char dir[512], args[2048], message[2048];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("ae-program"));
    train_tiny_run(dir, "--model vae --steps 40 --holdout shapes");
    char path[700];
    char *out = program_stdout(dir);
    ck_assert_msg(strstr(out, "final: step=40 train_loss=") != NULL, "%s", out);
    free(out);
    /* --plot-term only where the command draws: the others refuse it. */
    static const char *const COMMANDS[] = {"eval", "encode --index 3", "reconstruct --index 5", "denoise --index 5",
                                           "sample --samples 4 --plot-term none", "anomaly --plot-term none",
                                           "plot --plot-term none"};
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
        snprintf(args, sizeof args, "%s --out %s/run", COMMANDS[i], dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s: %s", COMMANDS[i], message);
    }
    snprintf(path, sizeof path, "%s/run/reconstruction.png", dir);
    ck_assert(access(path, R_OK) == 0);
    /* Both anomaly modes use one threshold: the ROC mode's, then --input's. */
    double thresholds[2];
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0) snprintf(args, sizeof args, "anomaly --out %s/run --plot-term none", dir);
        else snprintf(args, sizeof args, "anomaly --input %s/run/reconstruction.pgm --out %s/run", dir, dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s: %s", args, message);
        out = program_stdout(dir);
        const char *at = strstr(out, "threshold=");
        ck_assert_msg(at != NULL && sscanf(at, "threshold=%lf", &thresholds[mode]) == 1, "%s", out);
        if (mode == 1)
            ck_assert_msg(strstr(out, "anomaly: input=") && strstr(out, "anomalous="), "%s", out);
        free(out);
    }
    ck_assert_double_eq(thresholds[0], thresholds[1]);
    /* sample needs a vae: an ae checkpoint gets a clear error. */
    snprintf(args, sizeof args, "%s --model ae --steps 2 --out %s/ae", TINY_RUN, dir);
    ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
    snprintf(args, sizeof args, "sample --out %s/ae", dir);
    ck_assert_int_eq(run_program(dir, args, message, sizeof message), 1);
    ck_assert_msg(strstr(message, "needs a vae") != NULL, "%s", message);
    snprintf(path, sizeof path, "%s/run/denoise-denoised.pgm", dir);
    float *pixels;
    int h, w;
    Error err;
    ck_assert_msg(autoencoder_read_pgm(path, &pixels, &h, &w, &err), "%s", err.message);
    ck_assert(h == 16 && w == 16);
    free(pixels);
    snprintf(path, sizeof path, "%s/run/anomaly.csv", dir);
    ck_assert(access(path, R_OK) == 0);
}
END_TEST

/* sample draws its grid under a name of its own: the samples.png that
 * training drew (here its .dat, with --plot-term none) stays as it was. */
START_TEST(test_sample_keeps_the_training_samples) {
    char dir[512], args[2048], message[2048], path[700];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("ae-sample"));
    train_tiny_run(dir, "--model vae --steps 5");
    snprintf(path, sizeof path, "%s/run/samples.dat", dir);
    size_t before_size, after_size;
    char *before = read_entire_file(path, &before_size);
    ck_assert_msg(before != NULL, "train drew no %s", path);
    snprintf(args, sizeof args, "sample --samples 7 --seed 9 --plot-term none --out %s/run", dir);
    ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
    char *after = read_entire_file(path, &after_size);
    ck_assert_msg(after != NULL && after_size == before_size && memcmp(before, after, before_size) == 0,
                  "sample overwrote the training run's %s", path);
    snprintf(path, sizeof path, "%s/run/sample-grid.dat", dir);
    ck_assert_msg(access(path, R_OK) == 0, "sample drew no %s", path);
    snprintf(path, sizeof path, "%s/run/sample-6.pgm", dir);
    ck_assert_msg(access(path, R_OK) == 0, "sample wrote no %s", path);
    free(before), free(after);
}
END_TEST

/* encode's rows, index,label,z1,...: an --input image is in no data set, so
 * its index and label are "-" (they were 0 and -1, which read as data); a
 * data set's image has both.  --input with --index is a usage error. */
START_TEST(test_encode_marks_what_an_input_image_lacks) {
    char dir[512], args[2048], message[2048], path[700];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("ae-encode"));
    train_tiny_run(dir, "--model ae --steps 2");
    snprintf(args, sizeof args, "reconstruct --index 5 --write %s/image --out %s/run", dir, dir);
    ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
    char input[600];
    snprintf(input, sizeof input, "--input %s/image.pgm", dir);
    const char *image[2] = {input, "--index 3"};
    const char *row_start[2] = {"-,-,", "3,3,"}; /* glyph classes come in turn: image 3 is a 3 */
    for (int c = 0; c < 2; c++) {
        snprintf(args, sizeof args, "encode %s --out %s/run", image[c], dir);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s: %s", args, message);
        char *out = program_stdout(dir);
        const char *row = strchr(out, '\n');
        ck_assert_msg(strncmp(out, "index,label,z1,z2,z3\n", 21) == 0 && row != NULL &&
                          strncmp(row + 1, row_start[c], strlen(row_start[c])) == 0,
                      "%s: the row should start \"%s\":\n%.600s", args, row_start[c], out);
        free(out);
    }
    snprintf(args, sizeof args, "encode --input %s/image.pgm --index 3 --write %s/codes.csv --out %s/run", dir, dir,
             dir);
    ck_assert_int_eq(run_program(dir, args, message, sizeof message), 2);
    ck_assert_msg(strstr(message, "--input and --index") != NULL, "%s", message);
    snprintf(path, sizeof path, "%s/codes.csv.tmp", dir);
    ck_assert_msg(access(path, F_OK) != 0, "the refused encode left %s behind", path);
}
END_TEST

/* Each command's --help lists the options it reads and no other; an option
 * it does not read is refused (exit 2) rather than ignored. */
START_TEST(test_command_help_lists_its_own_options) {
    char dir[512], message[2048];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("ae-help"));
    static const struct {
        const char *command;
        const char *lists[3], *omits[3];
    } CASES[] = {
        {"train", {"--steps", "--holdout", "--beta-warmup"}, {"--samples", "--index", "--percentile"}},
        {"sample", {"--samples", "--seed", "--plot-term"}, {"--steps", "--layers", "--holdout"}},
        {"encode", {"--index", "--input", "--write"}, {"--plot-term", "--lr", "--samples"}},
        {"bench", {"--config", "--bench-steps", "--threads"}, {"--out", "--checkpoint", "--model"}},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        char args[256];
        snprintf(args, sizeof args, "%s --help", CASES[c].command);
        ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s: %s", args, message);
        char *help = program_stdout(dir);
        for (int k = 0; k < 3; k++) {
            char option[64];
            snprintf(option, sizeof option, "  %s ", CASES[c].lists[k]);
            ck_assert_msg(strstr(help, option) != NULL, "%s lacks %s:\n%.600s", args, CASES[c].lists[k], help);
            snprintf(option, sizeof option, "  %s ", CASES[c].omits[k]);
            ck_assert_msg(strstr(help, option) == NULL, "%s lists %s:\n%.600s", args, CASES[c].omits[k], help);
        }
        free(help);
        snprintf(args, sizeof args, "%s %s 1", CASES[c].command, CASES[c].omits[0]);
        ck_assert_int_eq(run_program(dir, args, message, sizeof message), 2);
        ck_assert_msg(strstr(message, CASES[c].omits[0]) && strstr(message, "unknown option"), "%s: %s", args,
                      message);
    }
}
END_TEST

/* ==== Files: round trips ====================================================================== */

/* Glyphs quantised to multiples of 1/255, as 8-bit files store them. */
static void quantized_glyphs(AutoencoderDataset *data, int count, int size) {
    Rng rng;
    rng_seed(&rng, 4, 4);
    autoencoder_glyphs_generate(data, count, size, 0.05f, &rng);
    for (int i = 0; i < count * size * size; i++) data->images[i] = roundf(data->images[i] * 255.0f) / 255.0f;
}

static void assert_same_dataset(const AutoencoderDataset *a, const AutoencoderDataset *b) {
    ck_assert_int_eq(a->count, b->count);
    ck_assert_int_eq(a->height, b->height);
    ck_assert_int_eq(a->width, b->width);
    for (int i = 0; i < a->count * a->height * a->width; i++)
        ck_assert_msg(a->images[i] == b->images[i], "pixel %d: %g vs %g", i, a->images[i], b->images[i]);
    for (int n = 0; n < a->count; n++) ck_assert_int_eq(a->labels[n], b->labels[n]);
}

START_TEST(test_idx_round_trip_plain_and_gzip) {
    const char *dir = test_temp_dir("ae-idx");
    AutoencoderDataset data;
    quantized_glyphs(&data, 30, 16);
    for (int compress = 0; compress < 2; compress++) {
        char *images = path_in(dir, compress ? "images.idx.gz" : "images.idx");
        char *labels = path_in(dir, compress ? "labels.idx.gz" : "labels.idx");
        Error err;
        ck_assert_msg(autoencoder_write_idx_images(images, &data, compress, &err), "%s", err.message);
        ck_assert_msg(autoencoder_write_idx_labels(labels, &data, compress, &err), "%s", err.message);
        size_t size;
        unsigned char *bytes = read_bytes(images, &size);
        if (compress) ck_assert(bytes[0] == 0x1f && bytes[1] == 0x8b); /* gzip magic */
        else ck_assert_uint_eq(size, 16 + 30 * 256);
        free(bytes);
        AutoencoderDataset back;
        ck_assert_msg(autoencoder_read_idx_images(images, &back, &err), "%s", err.message);
        ck_assert_msg(autoencoder_read_idx_labels(labels, &back, &err), "%s", err.message);
        assert_same_dataset(&data, &back);
        ck_assert_int_eq(back.class_count, 14); /* labels up to 13 */
        autoencoder_dataset_free(&back);
        free(images), free(labels);
    }
    autoencoder_dataset_free(&data);
}
END_TEST

START_TEST(test_pgm_round_trip_and_variants) {
    const char *dir = test_temp_dir("ae-pgm");
    AutoencoderDataset data;
    quantized_glyphs(&data, 1, 28);
    char *path = path_in(dir, "a.pgm");
    Error err;
    ck_assert(autoencoder_write_pgm(path, data.images, 28, 28, &err));
    float *pixels;
    int h, w;
    ck_assert_msg(autoencoder_read_pgm(path, &pixels, &h, &w, &err), "%s", err.message);
    ck_assert(h == 28 && w == 28);
    for (int i = 0; i < 28 * 28; i++) ck_assert(pixels[i] == data.images[i]);
    free(pixels);
    /* P2 with comments, 3 wide and 2 high, maxval 4. */
    const char p2[] = "P2\n# a comment\n3 2 # trailing\n4\n0 1 2\n3 4 0\n";
    write_bytes(path, p2, strlen(p2));
    ck_assert_msg(autoencoder_read_pgm(path, &pixels, &h, &w, &err), "%s", err.message);
    ck_assert(h == 2 && w == 3 && pixels[1] == 0.25f && pixels[4] == 1.0f);
    free(pixels);
    /* P5 with 16-bit big-endian values. */
    const unsigned char p5[] = {'P', '5', ' ', '2', ' ', '1', ' ', '6', '5', '5', '3', '5', '\n', 0xff, 0xff, 0x80, 0x00};
    write_bytes(path, p5, sizeof p5);
    ck_assert_msg(autoencoder_read_pgm(path, &pixels, &h, &w, &err), "%s", err.message);
    ck_assert(h == 1 && w == 2 && pixels[0] == 1.0f && fabsf(pixels[1] - 32768.0f / 65535.0f) < 1e-7f);
    free(pixels);
    free(path);
    autoencoder_dataset_free(&data);
}
END_TEST

START_TEST(test_csv_round_trip) {
    const char *dir = test_temp_dir("ae-csv");
    AutoencoderDataset data;
    Rng rng;
    rng_seed(&rng, 6, 0);
    autoencoder_glyphs_generate(&data, 12, 16, 0.1f, &rng);
    char *path = path_in(dir, "glyphs.csv");
    Error err;
    ck_assert_msg(autoencoder_write_csv(path, &data, &err), "%s", err.message);
    AutoencoderDataset back;
    ck_assert_msg(autoencoder_read_csv(path, &back, &err), "%s", err.message);
    assert_same_dataset(&data, &back); /* %.9g keeps every float exactly */
    autoencoder_dataset_free(&back);
    /* 0..255 values, no header, a non-square row length. */
    const char text[] = "3,0,255,51\n7,102,0,0\n";
    write_bytes(path, text, strlen(text));
    ck_assert_msg(autoencoder_read_csv(path, &back, &err), "%s", err.message);
    ck_assert(back.count == 2 && back.height == 1 && back.width == 3 && back.labels[1] == 7);
    ck_assert(back.images[1] == 1.0f && fabsf(back.images[2] - 0.2f) < 1e-7f);
    autoencoder_dataset_free(&back);
    free(path);
    autoencoder_dataset_free(&data);
}
END_TEST

/* ==== Files: bad input =============================================================================== */

/* The read fails and the message names the file and contains `words`. */
static void idx_images_fail(const char *path, const char *words) {
    AutoencoderDataset data;
    Error err = {{0}};
    ck_assert_msg(!autoencoder_read_idx_images(path, &data, &err), "accepted %s", path);
    ck_assert_msg(strstr(err.message, path) && strstr(err.message, words), "message \"%s\" lacks \"%s\"", err.message,
                  words);
}

static void pgm_fails(const char *path, const void *bytes, size_t size, const char *words) {
    write_bytes(path, bytes, size);
    float *pixels = NULL;
    int h, w;
    Error err = {{0}};
    ck_assert_msg(!autoencoder_read_pgm(path, &pixels, &h, &w, &err), "accepted PGM %.*s", (int)size, (const char *)bytes);
    ck_assert_msg(strstr(err.message, words) != NULL, "message \"%s\" lacks \"%s\"", err.message, words);
}

START_TEST(test_bad_files_are_rejected) {
    const char *dir = test_temp_dir("ae-bad");
    char *path = path_in(dir, "bad.idx");
    /* A wrong magic (a label file's), a truncated file, huge dimensions. */
    const unsigned char wrong_magic[] = {0, 0, 8, 1, 0, 0, 0, 1, 5};
    write_bytes(path, wrong_magic, sizeof wrong_magic);
    idx_images_fail(path, "magic 0x00000801");
    const unsigned char truncated[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3};
    write_bytes(path, truncated, sizeof truncated);
    idx_images_fail(path, "truncated");
    const unsigned char huge[] = {0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0x10, 0, 0, 0, 0x10, 0};
    write_bytes(path, huge, sizeof huge);
    idx_images_fail(path, "limits");
    write_bytes(path, huge, 6);
    idx_images_fail(path, "truncated");
    /* A corrupt gzip stream: a valid gzip file with its middle overwritten. */
    AutoencoderDataset data;
    quantized_glyphs(&data, 20, 16);
    char *gz = path_in(dir, "bad.idx.gz");
    Error err;
    ck_assert(autoencoder_write_idx_images(gz, &data, true, &err));
    size_t size;
    unsigned char *bytes = read_bytes(gz, &size);
    for (size_t i = 20; i < size - 8 && i < 60; i++) bytes[i] ^= 0x5a;
    write_bytes(gz, bytes, size);
    idx_images_fail(gz, "gzip");
    write_bytes(gz, bytes, 12); /* and a gzip cut short */
    idx_images_fail(gz, "");
    free(bytes);
    /* Label and image counts that differ. */
    char *images = path_in(dir, "images.idx"), *labels = path_in(dir, "labels.idx");
    ck_assert(autoencoder_write_idx_images(images, &data, false, &err));
    data.count = 19;
    ck_assert(autoencoder_write_idx_labels(labels, &data, false, &err));
    data.count = 20;
    AutoencoderDataset back;
    ck_assert(autoencoder_read_idx_images(images, &back, &err));
    ck_assert(!autoencoder_read_idx_labels(labels, &back, &err));
    ck_assert_msg(strstr(err.message, "19 labels for 20 images") != NULL, "%s", err.message);
    autoencoder_dataset_free(&back);
    /* PGM: a bad magic, a bad header, maxval over 65535, short pixels. */
    char *pgm = path_in(dir, "bad.pgm");
    pgm_fails(pgm, "P6\n1 1\n255\n\0", 12, "P2 or P5");
    pgm_fails(pgm, "P5\n2 x\n255\n", 11, "bad PGM header");
    pgm_fails(pgm, "P2\n1 1\n70000\n5\n", 15, "maxval 70000");
    pgm_fails(pgm, "P5\n4 4\n255\nabc", 14, "truncated");
    pgm_fails(pgm, "P2\n2 1\n10\n3 11\n", 15, "above maxval");
    /* CSV: rows of different lengths. */
    char *csv = path_in(dir, "bad.csv");
    write_bytes(csv, "1,0,0\n2,0\n", 10);
    ck_assert(!autoencoder_read_csv(csv, &back, &err));
    ck_assert_msg(strstr(err.message, "line 2") != NULL, "%s", err.message);
    autoencoder_dataset_free(&data);
    free(path), free(gz), free(images), free(labels), free(pgm), free(csv);
}
END_TEST

/* The program exits non-zero with one line naming the file, and leaves
 * nothing behind: the run directory is made only once the data has loaded. */
START_TEST(test_program_rejects_bad_data) {
    char dir[512], args[2048], message[2048];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("ae-badprog"));
    char *images = path_in(dir, "images.idx"), *labels = path_in(dir, "labels.idx");
    AutoencoderDataset data;
    quantized_glyphs(&data, 20, 16);
    Error err;
    ck_assert(autoencoder_write_idx_images(images, &data, true, &err));
    data.count = 10;
    ck_assert(autoencoder_write_idx_labels(labels, &data, false, &err));
    data.count = 20;
    snprintf(args, sizeof args, "%s --data %s --labels %s --out %s/run", TINY_RUN, images, labels, dir);
    ck_assert_int_eq(run_program(dir, args, message, sizeof message), 1);
    ck_assert_msg(strstr(message, labels) && strstr(message, "10 labels for 20 images"), "%s", message);
    ck_assert_msg(strchr(message, '\n') == strrchr(message, '\n'), "more than one line: %s", message);
    char path[700];
    snprintf(path, sizeof path, "%s/run", dir);
    ck_assert_msg(access(path, F_OK) != 0, "a failed run left %s behind", path);
    snprintf(path, sizeof path, "%s/run/model.safetensors", dir);
    /* A usage error: the layers do not fit the images. */
    snprintf(args, sizeof args, "%s --data %s --layers 784,32 --out %s/run", TINY_RUN, images, dir);
    ck_assert_int_eq(run_program(dir, args, message, sizeof message), 2);
    ck_assert_msg(strstr(message, "--layers 256") != NULL, "%s", message);
    /* And the data trains when the files agree. */
    ck_assert(autoencoder_write_idx_labels(labels, &data, false, &err));
    snprintf(args, sizeof args, "%s --data %s --labels %s --steps 5 --out %s/run", TINY_RUN, images, labels, dir);
    ck_assert_msg(run_program(dir, args, message, sizeof message) == 0, "%s", message);
    ck_assert(access(path, F_OK) == 0);
    autoencoder_dataset_free(&data);
    free(images), free(labels);
}
END_TEST

/* ==== Small pieces ======================================================================================== */

START_TEST(test_roc_area_on_known_cases) {
    const float low[3] = {0.1f, 0.2f, 0.3f}, high[2] = {0.5f, 0.9f}, mixed[2] = {0.15f, 0.25f};
    float fpr[6], tpr[6];
    ck_assert(fabs(autoencoder_roc(low, 3, high, 2, fpr, tpr) - 1.0) < 1e-12);
    ck_assert(fpr[0] == 0 && tpr[0] == 0 && fpr[5] == 1 && tpr[5] == 1);
    ck_assert(fabs(autoencoder_roc(high, 2, low, 3, NULL, NULL) - 0.0) < 1e-12);
    /* 0.15 beats 1 of 3 normals, 0.25 beats 2: (1 + 2) / 6. */
    ck_assert(fabs(autoencoder_roc(low, 3, mixed, 2, NULL, NULL) - 0.5) < 1e-12);
    const float same[2] = {0.4f, 0.4f};
    ck_assert(fabs(autoencoder_roc(same, 2, same, 2, NULL, NULL) - 0.5) < 1e-12); /* ties count half */
}
END_TEST

START_TEST(test_glyphs_are_reproducible_and_varied) {
    AutoencoderDataset a, b;
    Rng rng;
    rng_seed(&rng, 12, 10);
    autoencoder_glyphs_generate(&a, 56, 28, 0.03f, &rng);
    rng_seed(&rng, 12, 10);
    autoencoder_glyphs_generate(&b, 56, 28, 0.03f, &rng);
    ck_assert(memcmp(a.images, b.images, sizeof(float) * 56 * 784) == 0);
    ck_assert_int_eq(a.class_count, GLYPH_CLASSES);
    ck_assert_str_eq(a.class_names[10], "circle");
    for (int n = 0; n < 56; n++) {
        ck_assert_int_eq(a.labels[n], n % GLYPH_CLASSES);
        double ink = 0;
        for (int i = 0; i < 784; i++) {
            ck_assert(a.images[n * 784 + i] >= 0 && a.images[n * 784 + i] <= 1);
            ink += a.images[n * 784 + i];
        }
        ck_assert_msg(ink > 20 && ink < 400, "image %d has %.1f ink", n, ink); /* a glyph, not a blank or a blot */
    }
    /* Two drawings of the same class differ (random pose and pen). */
    ck_assert(memcmp(a.images, a.images + 14 * 784, sizeof(float) * 784) != 0);
    autoencoder_dataset_free(&a);
    autoencoder_dataset_free(&b);
}
END_TEST

START_TEST(test_layers_and_classes_parsing) {
    AutoencoderConfig c = {0};
    Error err;
    ck_assert(autoencoder_parse_layers("784,256,32", &c, &err));
    ck_assert(c.layer_count == 2 && c.sizes[2] == 32);
    ck_assert(!autoencoder_parse_layers("784", &c, &err));
    ck_assert(!autoencoder_parse_layers("784,,3", &c, &err));
    ck_assert(!autoencoder_parse_layers("784,0", &c, &err));
    ck_assert(!autoencoder_parse_layers("784,32x", &c, &err));
    ck_assert(!autoencoder_parse_layers("1,2,3,4,5,6,7,8,9,10", &c, &err));
    AutoencoderDataset data;
    Rng rng;
    rng_seed(&rng, 1, 1);
    autoencoder_glyphs_generate(&data, 28, 16, 0, &rng);
    bool mask[AUTOENCODER_MAX_CLASSES];
    ck_assert(autoencoder_parse_classes("shapes", &data, mask, &err));
    ck_assert(!mask[9] && mask[10] && mask[13]);
    ck_assert(autoencoder_parse_classes("3,circle", &data, mask, &err));
    ck_assert(mask[3] && mask[10] && !mask[4]);
    ck_assert(!autoencoder_parse_classes("hexagon", &data, mask, &err));
    AutoencoderSplit split;
    ck_assert(autoencoder_parse_classes("shapes", &data, mask, &err));
    autoencoder_split(&data, 0.25f, mask, 1, &split);
    ck_assert_int_eq(split.holdout_count, 8);
    ck_assert_int_eq(split.train_count + split.validation_count, 20);
    for (int i = 0; i < split.train_count; i++) ck_assert(data.labels[split.train[i]] < 10);
    autoencoder_split_free(&split);
    autoencoder_dataset_free(&data);
    AutoencoderConfig warm = {.beta = 2.0f, .beta_warmup = 4};
    ck_assert(autoencoder_beta_at(&warm, 0) == 0.5f && autoencoder_beta_at(&warm, 3) == 2.0f &&
              autoencoder_beta_at(&warm, 100) == 2.0f);
}
END_TEST

Suite *autoencoder_suite(void) {
    Suite *suite = suite_create("autoencoder");
    TCase *gradients = tcase_create("gradients");
    tcase_add_test(gradients, test_gradients_ae);
    tcase_add_test(gradients, test_gradients_dae);
    tcase_add_test(gradients, test_gradients_vae);
    tcase_add_test(gradients, test_gradients_custom_ops);
    tcase_add_test(gradients, test_kl_matches_monte_carlo);
    suite_add_tcase(suite, gradients);
    TCase *training = tcase_create("training");
    tcase_set_timeout(training, 120);
    tcase_add_test(training, test_linear_autoencoder_matches_pca);
    tcase_add_test(training, test_overfits_a_tiny_set);
    tcase_add_test(training, test_checkpoint_round_trip);
    tcase_add_test(training, test_resume_and_threads_are_bit_identical);
    tcase_add_test(training, test_program_commands);
    tcase_add_test(training, test_command_help_lists_its_own_options);
    tcase_add_test(training, test_sample_keeps_the_training_samples);
    tcase_add_test(training, test_encode_marks_what_an_input_image_lacks);
    suite_add_tcase(suite, training);
    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 60);
    tcase_add_test(files, test_idx_round_trip_plain_and_gzip);
    tcase_add_test(files, test_pgm_round_trip_and_variants);
    tcase_add_test(files, test_csv_round_trip);
    tcase_add_test(files, test_bad_files_are_rejected);
    tcase_add_test(files, test_program_rejects_bad_data);
    suite_add_tcase(suite, files);
    TCase *pieces = tcase_create("pieces");
    tcase_add_test(pieces, test_roc_area_on_known_cases);
    tcase_add_test(pieces, test_glyphs_are_reproducible_and_varied);
    tcase_add_test(pieces, test_layers_and_classes_parsing);
    suite_add_tcase(suite, pieces);
    return suite;
}
