/* tests/coursework/grade_autoencoder.c: grading of the VAE exercises
 * (autoencoder/model.c): the reparameterisation and the KL term, each a
 * forward and its backward.
 */
#include <math.h>

#include "../../autoencoder/autoencoder.h"
#include "grade.h"

enum { BATCH = 4, LATENT = 3, SAMPLES = 4000 };

/* mu (BATCH, LATENT) and logvar from a fixed seed; logvar in about [-1.5, 1.5]. */
static void seeded_gaussians(uint64_t seed, Tensor **mu, Tensor **logvar, float *eps) {
    Rng rng;
    rng_seed(&rng, seed, 1u);
    *mu = gradcheck_random_of("mu", 1.0f, &rng, 2, BATCH, LATENT);
    *logvar = gradcheck_random_of("logvar", 0.7f, &rng, 2, BATCH, LATENT);
    for (int i = 0; eps != NULL && i < BATCH * LATENT; i++) eps[i] = rng_normal(&rng);
}

/* ==== vae_reparameterize ========================================================= */

static Tensor *reparameterize(Graph *g, Tensor *const *in, void *context) {
    return autoencoder_op_reparameterize(g, in[0], in[1], context);
}

START_TEST(reparameterize_matches_reference) {
    Tensor *mu, *logvar;
    float eps[BATCH * LATENT];
    seeded_gaussians(71, &mu, &logvar, eps);
    Graph g;
    graph_init(&g, 1 << 16, 16);
    Tensor *z = autoencoder_op_reparameterize(&g, mu, logvar, eps);
    grade_require_implemented("vae_reparameterize");
    grade_compare_reference("vae_reparameterize", "z", z->data, z->numel, 1e-6f, 1e-4f);
    graph_free(&g);
    tensor_free(mu);
    tensor_free(logvar);
}
END_TEST

/* Behaviour: with mu = 1 and logvar = log 4, z over many eps ~ N(0, 1) has
 * mean 1 and standard deviation 2. */
START_TEST(reparameterize_samples_the_gaussian) {
    static float eps[SAMPLES];
    Rng rng;
    rng_seed(&rng, 72, 1u);
    for (int i = 0; i < SAMPLES; i++) eps[i] = rng_normal(&rng);
    Tensor *mu = tensor_alloc("mu", 2, (const int[]){SAMPLES, 1}, false);
    Tensor *logvar = tensor_alloc("logvar", 2, (const int[]){SAMPLES, 1}, false);
    for (int i = 0; i < SAMPLES; i++) mu->data[i] = 1.0f, logvar->data[i] = logf(4.0f);
    Graph g;
    graph_init(&g, 1 << 16, 16);
    Tensor *z = autoencoder_op_reparameterize(&g, mu, logvar, eps);
    grade_require_implemented("vae_reparameterize");
    double sum = 0, squares = 0;
    for (int i = 0; i < SAMPLES; i++) sum += z->data[i], squares += (double)z->data[i] * z->data[i];
    double mean = sum / SAMPLES, std = sqrt(squares / SAMPLES - mean * mean);
    ck_assert_msg(fabs(mean - 1.0) < 0.1 && fabs(std - 2.0) < 0.1,
                  "vae_reparameterize: %d samples of z with mu = 1, logvar = log 4 have mean %.3f "
                  "and standard deviation %.3f; expected about 1 and 2 (sigma = exp(logvar / 2))",
                  SAMPLES, mean, std);
    graph_free(&g);
    tensor_free(mu);
    tensor_free(logvar);
}
END_TEST

START_TEST(reparameterize_gradient) {
    Tensor *in[2];
    float eps[BATCH * LATENT];
    seeded_gaussians(73, &in[0], &in[1], eps);
    grade_gradcheck("vae_reparameterize", "z = reparameterize(mu, logvar, eps)", reparameterize,
                    eps, in, 2);
    tensor_free(in[0]);
    tensor_free(in[1]);
}
END_TEST

static void reparameterize_tests(TCase *tc) {
    tcase_add_test(tc, reparameterize_matches_reference);
    tcase_add_test(tc, reparameterize_samples_the_gaussian);
    tcase_add_test(tc, reparameterize_gradient);
}

/* ==== vae_kl ===================================================================== */

static Tensor *kl(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return autoencoder_op_kl(g, in[0], in[1]);
}

/* The KL of the seeded Gaussians, and of N(0, 1) itself. */
START_TEST(kl_matches_reference) {
    Tensor *mu, *logvar;
    seeded_gaussians(74, &mu, &logvar, NULL);
    Graph g;
    graph_init(&g, 1 << 16, 16);
    Tensor *value = autoencoder_op_kl(&g, mu, logvar);
    grade_require_implemented("vae_kl");
    grade_compare_reference("vae_kl", "kl", value->data, 1, 1e-6f, 1e-4f);
    for (int i = 0; i < mu->numel; i++) mu->data[i] = 0.0f, logvar->data[i] = 0.0f;
    value = autoencoder_op_kl(&g, mu, logvar);
    ck_assert_msg(fabsf(value->data[0]) < 1e-6f,
                  "vae_kl: KL(N(0, 1) || N(0, 1)) must be 0; got %g", (double)value->data[0]);
    graph_free(&g);
    tensor_free(mu);
    tensor_free(logvar);
}
END_TEST

/* The KL is averaged over the batch: two copies of a batch give the same value. */
START_TEST(kl_averages_over_the_batch) {
    Tensor *mu, *logvar;
    seeded_gaussians(75, &mu, &logvar, NULL);
    Tensor *mu2 = tensor_alloc("mu", 2, (const int[]){2 * BATCH, LATENT}, false);
    Tensor *logvar2 = tensor_alloc("logvar", 2, (const int[]){2 * BATCH, LATENT}, false);
    for (int i = 0; i < 2 * BATCH * LATENT; i++) {
        mu2->data[i] = mu->data[i % (BATCH * LATENT)];
        logvar2->data[i] = logvar->data[i % (BATCH * LATENT)];
    }
    Graph g;
    graph_init(&g, 1 << 16, 16);
    float once = autoencoder_op_kl(&g, mu, logvar)->data[0];
    float twice = autoencoder_op_kl(&g, mu2, logvar2)->data[0];
    grade_require_implemented("vae_kl");
    ck_assert_msg(once > 0.0f && fabsf(once - twice) <= 1e-5f * once,
                  "vae_kl: a batch and the same batch twice over give %g and %g; the KL is summed "
                  "over the latent dimensions and averaged over the batch (and is positive here)",
                  (double)once, (double)twice);
    graph_free(&g);
    tensor_free(mu);
    tensor_free(logvar);
    tensor_free(mu2);
    tensor_free(logvar2);
}
END_TEST

START_TEST(kl_gradient) {
    Tensor *in[2];
    seeded_gaussians(76, &in[0], &in[1], NULL);
    grade_gradcheck("vae_kl", "KL(N(mu, exp(logvar)) || N(0, 1))", kl, NULL, in, 2);
    tensor_free(in[0]);
    tensor_free(in[1]);
}
END_TEST

static void kl_tests(TCase *tc) {
    tcase_add_test(tc, kl_matches_reference);
    tcase_add_test(tc, kl_averages_over_the_batch);
    tcase_add_test(tc, kl_gradient);
}

const GradedExercise grade_autoencoder_exercises[] = {
    {"vae_reparameterize", 10, reparameterize_tests},
    {"vae_kl", 10, kl_tests},
    {NULL, 0, NULL},
};
