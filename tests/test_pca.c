/* tests/test_pca.c: principal component analysis (common/pca.c).
 *
 * Legend: N samples, D features, K components.
 *
 * The reference is independent of the code under test: the eigenvalues and
 * eigenvectors of the sample covariance found by the cyclic Jacobi method
 * (rotations that zero one off-diagonal entry at a time), written here in
 * the test, versus power iteration with deflation in pca.c.  The synthetic
 * data is built with known axes (the rows of a random rotation) and known
 * standard deviations along them, so the fit is also checked against the
 * truth it was generated from.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pca.h"
#include "rng.h"
#include "test_suites.h"

enum { D = 6, N = 4000 };
/* Standard deviation of the data along each true axis; distinct, so each
 * axis is well defined. */
static const double TRUE_STD[D] = {5.0, 3.0, 2.0, 1.0, 0.5, 0.2};
static const float TRUE_MEAN[D] = {1.0f, -2.0f, 0.5f, 3.0f, 0.0f, -1.0f};

/* A random orthonormal basis (D, D): Gram-Schmidt on Gaussian rows. */
static void random_rotation(double rotation[D][D], Rng *rng) {
    for (int r = 0; r < D; r++) {
        for (;;) {
            for (int i = 0; i < D; i++) rotation[r][i] = rng_normal(rng);
            for (int q = 0; q < r; q++) {
                double along = 0.0;
                for (int i = 0; i < D; i++) along += rotation[r][i] * rotation[q][i];
                for (int i = 0; i < D; i++) rotation[r][i] -= along * rotation[q][i];
            }
            double length = 0.0;
            for (int i = 0; i < D; i++) length += rotation[r][i] * rotation[r][i];
            length = sqrt(length);
            if (length < 1e-3) continue;
            for (int i = 0; i < D; i++) rotation[r][i] /= length;
            break;
        }
    }
}

/* data (N, D) = mean + sum_k TRUE_STD[k] z_k rotation[k], z ~ N(0, I). */
static float *synthetic_data(double rotation[D][D], Rng *rng) {
    float *data = malloc(sizeof(float) * N * D);
    for (int n = 0; n < N; n++) {
        double z[D];
        for (int k = 0; k < D; k++) z[k] = TRUE_STD[k] * rng_normal(rng);
        for (int i = 0; i < D; i++) {
            double value = TRUE_MEAN[i];
            for (int k = 0; k < D; k++) value += z[k] * rotation[k][i];
            data[n * D + i] = (float)value;
        }
    }
    return data;
}

static void sample_covariance(const float *data, double covariance[D][D]) {
    double mean[D] = {0};
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++) mean[i] += data[n * D + i];
    for (int i = 0; i < D; i++) mean[i] /= N;
    memset(covariance, 0, sizeof(double) * D * D);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
                covariance[i][j] += (data[n * D + i] - mean[i]) * (data[n * D + j] - mean[j]);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) covariance[i][j] /= N;
}

/* Cyclic Jacobi: values (D) sorted descending, vectors (D, D) as rows. */
static void jacobi_eigen(double matrix[D][D], double values[D], double vectors[D][D]) {
    double a[D][D], v[D][D];
    memcpy(a, matrix, sizeof a);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) v[i][j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0;
        for (int p = 0; p < D; p++)
            for (int q = p + 1; q < D; q++) off += a[p][q] * a[p][q];
        if (off < 1e-30) break;
        for (int p = 0; p < D; p++) {
            for (int q = p + 1; q < D; q++) {
                if (fabs(a[p][q]) < 1e-300) continue;
                /* The rotation angle that zeroes a[p][q]. */
                double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < D; k++) { /* columns p, q: a = a J */
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < D; k++) { /* rows p, q: a = J^T a */
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < D; k++) { /* accumulate V = V J */
                    double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
        }
    }
    int order[D];
    for (int i = 0; i < D; i++) order[i] = i;
    for (int i = 0; i < D; i++) /* selection sort by eigenvalue, descending */
        for (int j = i + 1; j < D; j++)
            if (a[order[j]][order[j]] > a[order[i]][order[i]]) {
                int swap = order[i];
                order[i] = order[j];
                order[j] = swap;
            }
    for (int r = 0; r < D; r++) {
        values[r] = a[order[r]][order[r]];
        for (int i = 0; i < D; i++) vectors[r][i] = v[i][order[r]]; /* column -> row */
    }
}

static double axis_dot(const float *axis, const double *other) {
    double sum = 0.0;
    for (int i = 0; i < D; i++) sum += axis[i] * other[i];
    return sum;
}

typedef struct {
    double rotation[D][D];
    float *data;
    double values[D];     /* exact eigenvalues of the sample covariance */
    double vectors[D][D]; /* and eigenvectors, as rows                  */
} Fixture;

static void fixture_make(Fixture *f, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed, 1);
    random_rotation(f->rotation, &rng);
    f->data = synthetic_data(f->rotation, &rng);
    double covariance[D][D];
    sample_covariance(f->data, covariance);
    jacobi_eigen(covariance, f->values, f->vectors);
}

START_TEST(test_pca_recovers_known_axes) {
    Fixture f;
    fixture_make(&f, 11);
    Pca pca;
    Rng rng;
    rng_seed(&rng, 5, 0);
    pca_fit(&pca, f.data, N, D, 3, &rng);
    ck_assert_int_eq(pca.features, D);
    ck_assert_int_eq(pca.components, 3);
    for (int k = 0; k < 3; k++) {
        /* Against the exact eigenvectors of the sample covariance: tight. */
        double exact = fabs(axis_dot(&pca.axes[k * D], f.vectors[k]));
        ck_assert_msg(exact > 1 - 1e-6, "axis %d: |cos| with the Jacobi eigenvector %.9f", k, exact);
        /* Against the generating axes: sampling noise only. */
        double truth = fabs(axis_dot(&pca.axes[k * D], f.rotation[k]));
        ck_assert_msg(truth > 0.995, "axis %d: |cos| with the true axis %.6f", k, truth);
        double norm = 0.0;
        for (int i = 0; i < D; i++) norm += (double)pca.axes[k * D + i] * pca.axes[k * D + i];
        ck_assert_msg(fabs(norm - 1.0) < 1e-6, "axis %d has squared length %.9f", k, norm);
        for (int j = 0; j < k; j++) {
            double cross = 0.0;
            for (int i = 0; i < D; i++) cross += (double)pca.axes[k * D + i] * pca.axes[j * D + i];
            ck_assert_msg(fabs(cross) < 1e-6, "axes %d and %d: dot %.3g", j, k, cross);
        }
    }
    for (int i = 0; i < D; i++) ck_assert_msg(fabs(pca.mean[i] - TRUE_MEAN[i]) < 0.3, "mean[%d]", i);
    pca_free(&pca);
    free(f.data);
}
END_TEST

START_TEST(test_pca_variances_match_eigenvalues) {
    Fixture f;
    fixture_make(&f, 12);
    Pca pca;
    Rng rng;
    rng_seed(&rng, 6, 0);
    pca_fit(&pca, f.data, N, D, D, &rng);
    double trace = 0.0;
    for (int k = 0; k < D; k++) {
        trace += f.values[k];
        ck_assert_msg(fabs(pca.variances[k] - f.values[k]) <= 1e-5 * f.values[0],
                      "variance %d: pca %.8f, Jacobi %.8f", k, pca.variances[k], f.values[k]);
        /* Near the generating variance: relative sampling error ~ sqrt(2/N) = 2%. */
        double expected = TRUE_STD[k] * TRUE_STD[k];
        ck_assert_msg(fabs(pca.variances[k] - expected) < 0.08 * expected,
                      "variance %d: %.4f, generated with %.4f", k, pca.variances[k], expected);
        if (k > 0) ck_assert(pca.variances[k] <= pca.variances[k - 1]);
    }
    ck_assert_msg(fabs(pca.total_variance - trace) < 1e-9 * trace, "total %.12f vs trace %.12f",
                  pca.total_variance, trace);

    /* The codes are uncorrelated and their variances are the eigenvalues. */
    float *codes = malloc(sizeof(float) * N * D);
    pca_project(&pca, f.data, N, codes);
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++) sum += (double)codes[n * D + a] * codes[n * D + b];
            sum /= N;
            double expected = a == b ? f.values[a] : 0.0;
            ck_assert_msg(fabs(sum - expected) < 1e-4 * f.values[0], "code covariance (%d,%d) %.6f", a, b, sum);
        }
    }
    free(codes);
    pca_free(&pca);
    free(f.data);
}
END_TEST

/* Mean squared reconstruction error per sample, summed over features. */
static double reconstruction_error(const Pca *pca, const float *data) {
    int K = pca->components;
    float *codes = malloc(sizeof(float) * N * K);
    float *rebuilt = malloc(sizeof(float) * N * D);
    pca_project(pca, data, N, codes);
    pca_reconstruct(pca, codes, N, rebuilt);
    double sum = 0.0;
    for (int i = 0; i < N * D; i++) sum += ((double)data[i] - rebuilt[i]) * ((double)data[i] - rebuilt[i]);
    free(codes);
    free(rebuilt);
    return sum / N;
}

START_TEST(test_pca_reconstruction_error_is_discarded_variance) {
    Fixture f;
    fixture_make(&f, 13);
    for (int K = 1; K <= D; K++) {
        Pca pca;
        Rng rng;
        rng_seed(&rng, 7, (uint64_t)K);
        pca_fit(&pca, f.data, N, D, K, &rng);
        double discarded = 0.0;
        for (int k = K; k < D; k++) discarded += f.values[k];
        double error = reconstruction_error(&pca, f.data);
        /* float32 rounding of the data (~1e-7 relative to |x| ~ 5) bounds
         * how well an error of 0.04 (K = 5) can be measured. */
        ck_assert_msg(fabs(error - discarded) < 1e-4 * f.values[0] + 1e-3 * discarded,
                      "K=%d: reconstruction error %.8f, discarded eigenvalues %.8f", K, error, discarded);
        double from_pca = pca.total_variance;
        for (int k = 0; k < K; k++) from_pca -= pca.variances[k];
        ck_assert_msg(fabs(from_pca - discarded) < 1e-5 * f.values[0], "K=%d: total - kept %.8f vs %.8f", K,
                      from_pca, discarded);
        pca_free(&pca);
    }
    free(f.data);
}
END_TEST

/* The largest-magnitude entry of each axis is positive, whatever the
 * starting direction (seed) and even when the data is negated. */
START_TEST(test_pca_sign_convention_is_stable) {
    Fixture f;
    fixture_make(&f, 14);
    float *negated = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) negated[i] = -f.data[i];
    Pca first, second, flipped;
    Rng rng;
    rng_seed(&rng, 100, 0);
    pca_fit(&first, f.data, N, D, 4, &rng);
    rng_seed(&rng, 200, 3);
    pca_fit(&second, f.data, N, D, 4, &rng);
    pca_fit(&flipped, negated, N, D, 4, &rng);
    for (int k = 0; k < 4; k++) {
        const float *axis = &first.axes[k * D];
        int largest = 0;
        for (int i = 1; i < D; i++)
            if (fabsf(axis[i]) > fabsf(axis[largest])) largest = i;
        ck_assert_msg(axis[largest] > 0, "axis %d: largest entry %d is %f", k, largest, axis[largest]);
        for (int i = 0; i < D; i++) {
            ck_assert_msg(fabsf(axis[i] - second.axes[k * D + i]) < 1e-5, "axis %d differs by seed", k);
            ck_assert_msg(fabsf(axis[i] - flipped.axes[k * D + i]) < 1e-5, "axis %d differs on -data", k);
        }
    }
    pca_free(&first);
    pca_free(&second);
    pca_free(&flipped);
    free(negated);
    free(f.data);
}
END_TEST

/* Data of rank 2 in 6 dimensions: the extra axes still come out orthonormal,
 * with variance 0, and the reconstruction from 2 components is exact. */
START_TEST(test_pca_rank_deficient_data) {
    Rng rng;
    rng_seed(&rng, 15, 0);
    float *data = malloc(sizeof(float) * N * D);
    for (int n = 0; n < N; n++) {
        float a = rng_normal(&rng), b = rng_normal(&rng);
        for (int i = 0; i < D; i++) data[n * D + i] = a * (float)(i + 1) / 4.0f + b * (i % 2 ? 1.0f : -1.0f);
    }
    Pca pca;
    pca_fit(&pca, data, N, D, 4, &rng);
    ck_assert(pca.variances[1] > 0.5);
    ck_assert_msg(pca.variances[2] < 1e-6 && pca.variances[3] < 1e-6, "variances %g %g", pca.variances[2],
                  pca.variances[3]);
    for (int j = 0; j < 4; j++)
        for (int k = 0; k <= j; k++) {
            double sum = 0.0;
            for (int i = 0; i < D; i++) sum += (double)pca.axes[j * D + i] * pca.axes[k * D + i];
            ck_assert_msg(fabs(sum - (j == k)) < 1e-5, "axes %d,%d dot %g", j, k, sum);
        }
    pca_free(&pca);
    Pca two;
    pca_fit(&two, data, N, D, 2, &rng);
    ck_assert_msg(reconstruction_error(&two, data) < 1e-8 * two.total_variance, "rank-2 data not rebuilt");
    pca_free(&two);
    free(data);
}
END_TEST

Suite *pca_suite(void) {
    Suite *suite = suite_create("pca");
    TCase *fit = tcase_create("fit");
    tcase_add_test(fit, test_pca_recovers_known_axes);
    tcase_add_test(fit, test_pca_variances_match_eigenvalues);
    tcase_add_test(fit, test_pca_reconstruction_error_is_discarded_variance);
    tcase_add_test(fit, test_pca_sign_convention_is_stable);
    tcase_add_test(fit, test_pca_rank_deficient_data);
    suite_add_tcase(suite, fit);
    return suite;
}
