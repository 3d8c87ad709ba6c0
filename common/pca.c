/* common/pca.c: principal component analysis by power iteration with
 * deflation, in double precision (API and conventions in pca.h).
 *
 * Legend: N samples, D features, K components (K <= D), S samples per chunk.
 *
 * The steps, each one function below:
 *   1. mean (D) and covariance C (D, D) = (1/N) sum_n (x_n - mean)(x_n - mean)^T
 *      [covariance_of]
 *   2. for k = 0..K-1, power iteration v <- C v / |C v| on the part of the
 *      space orthogonal to the axes already found [power_iterate].  Removing
 *      the earlier axes from C v at every iteration is deflation: it is the
 *      same as iterating with C - sum_j lambda_j v_j v_j^T, but stays exactly
 *      orthogonal in floating point, where subtracting lambda_j v_j v_j^T
 *      from C once would leave a residue that grows back.
 *   3. the variance along each axis is its Rayleigh quotient v^T C v.
 *
 * Why the reconstruction error is the sum of the discarded variances: for
 * orthonormal axes V (K, D), the residual of a centred sample is
 * (I - V^T V) x, and its mean squared norm is trace(C) - sum_k v_k^T C v_k.
 * With the top-K eigenvectors the subtracted terms are the K largest
 * eigenvalues, so what remains is the sum of the other D - K eigenvalues.
 */
#include "pca.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Power iteration stops when the residual |C v - lambda v| falls below
 * RESIDUAL_TOLERANCE times the largest variance (v is then an eigenvector to
 * that relative accuracy), or after MAX_ITERATIONS: two nearly equal
 * eigenvalues converge slowly, but any unit vector in their span then
 * captures nearly the same variance, so stopping early costs almost nothing. */
enum { MAX_ITERATIONS = 3000, CHUNK_SAMPLES = 64 };
static const double RESIDUAL_TOLERANCE = 1e-9;

/* ---- Step 1: mean and covariance --------------------------------------------- */

/* mean (D) and covariance (D, D), both double.  The N x D x D product is
 * done a chunk of S centred samples at a time: each thread owns some rows of
 * the covariance, and for each sample of the chunk adds x_i * x (an axpy
 * the compiler vectorizes; four samples at a time, to load and store the row
 * a quarter as often) to its row i while that row sits in L1.  Each
 * entry is summed by one thread, in sample order, so the result does not
 * depend on the thread count.  Only the upper triangle is summed. */
static void covariance_of(const float *data /* (N, D) */, int samples, int features,
                          double *mean /* (D) */, double *covariance /* (D, D) */) {
    const int D = features;
    memset(mean, 0, sizeof(double) * (size_t)D);
    for (int n = 0; n < samples; n++) {
        for (int i = 0; i < D; i++) mean[i] += data[(size_t)n * D + i];
    }
    for (int i = 0; i < D; i++) mean[i] /= samples;

    memset(covariance, 0, sizeof(double) * (size_t)D * D);
    double *chunk = xmalloc(sizeof(double) * (size_t)CHUNK_SAMPLES * D); /* (S, D) */
    for (int first = 0; first < samples; first += CHUNK_SAMPLES) {
        int count = samples - first < CHUNK_SAMPLES ? samples - first : CHUNK_SAMPLES;
        for (int s = 0; s < count; s++) {
            for (int i = 0; i < D; i++) {
                chunk[(size_t)s * D + i] = data[(size_t)(first + s) * D + i] - mean[i];
            }
        }
        /* Threads only pay off on wide data: starting them costs more than
         * a chunk of a few dozen features takes. */
        OMP("omp parallel for schedule(dynamic, 8) if (D >= 128)")
        for (int i = 0; i < D; i++) {
            double *row = &covariance[(size_t)i * D];
            int s = 0;
            for (; s + 4 <= count; s += 4) { /* four samples per pass over the row */
                const double *x0 = &chunk[(size_t)s * D], *x1 = x0 + D, *x2 = x1 + D, *x3 = x2 + D;
                double a0 = x0[i], a1 = x1[i], a2 = x2[i], a3 = x3[i];
                for (int j = i; j < D; j++) row[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j];
            }
            for (; s < count; s++) {
                const double *x = &chunk[(size_t)s * D];
                double xi = x[i];
                for (int j = i; j < D; j++) row[j] += xi * x[j];
            }
        }
    }
    free(chunk);
    for (int i = 0; i < D; i++) {
        for (int j = i; j < D; j++) {
            double value = covariance[(size_t)i * D + j] / samples;
            covariance[(size_t)i * D + j] = value;
            covariance[(size_t)j * D + i] = value;
        }
    }
}

/* ---- Step 2: power iteration with deflation --------------------------------- */

/* out (D) = C (D, D) @ v (D), as a sum of rows (C is symmetric): a chain of
 * axpys, which the compiler vectorizes, where a dot product per row would
 * stay scalar (it may not reorder a floating-point sum). */
static void covariance_times(const double *covariance, const double *v, int D, double *out) {
    memset(out, 0, sizeof(double) * (size_t)D);
    int j = 0;
    for (; j + 4 <= D; j += 4) { /* four rows per pass over out */
        const double *r0 = &covariance[(size_t)j * D], *r1 = r0 + D, *r2 = r1 + D, *r3 = r2 + D;
        double v0 = v[j], v1 = v[j + 1], v2 = v[j + 2], v3 = v[j + 3];
        for (int i = 0; i < D; i++) out[i] += v0 * r0[i] + v1 * r1[i] + v2 * r2[i] + v3 * r3[i];
    }
    for (; j < D; j++) {
        const double *row = &covariance[(size_t)j * D];
        double vj = v[j];
        for (int i = 0; i < D; i++) out[i] += vj * row[i];
    }
}

static double dot(const double *a, const double *b, int D) {
    double sum = 0.0;
    for (int i = 0; i < D; i++) sum += a[i] * b[i];
    return sum;
}

/* Removes from v (D) its components along the `count` orthonormal axes
 * (count, D).  Done twice ("twice is enough", Kahan): one pass leaves a
 * rounding residue proportional to how much was removed. */
static void orthogonalize(double *v, const double *axes, int count, int D) {
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < count; k++) {
            double along = dot(v, &axes[(size_t)k * D], D);
            for (int i = 0; i < D; i++) v[i] -= along * axes[(size_t)k * D + i];
        }
    }
}

/* Scales v (D) to unit length; returns its former length. */
static double normalize(double *v, int D) {
    double length = sqrt(dot(v, v, D));
    if (length > 0.0) {
        for (int i = 0; i < D; i++) v[i] /= length;
    }
    return length;
}

/* Finds axis `k` (D) orthogonal to axes 0..k-1 of `axes` (k, D), starting
 * from a random direction.  `scale` is the largest variance (or the trace
 * before the first axis is known); `work` is (D) scratch. */
static void power_iterate(const double *covariance, double *axes, int k, int D, double scale,
                          Rng *rng, double *work) {
    double *v = &axes[(size_t)k * D];
    do {
        for (int i = 0; i < D; i++) v[i] = rng_normal(rng);
        orthogonalize(v, axes, k, D);
    } while (normalize(v, D) == 0.0);

    for (int iteration = 0; iteration < MAX_ITERATIONS; iteration++) {
        covariance_times(covariance, v, D, work); /* work = C v */
        orthogonalize(work, axes, k, D);          /* deflation  */
        double lambda = dot(v, work, D);
        double residual = 0.0;
        for (int i = 0; i < D; i++) {
            double r = work[i] - lambda * v[i];
            residual += r * r;
        }
        if (sqrt(residual) <= RESIDUAL_TOLERANCE * scale) break;
        /* C v = 0 on what is left: every direction there has variance 0,
         * so the current v is as good an axis as any. */
        if (normalize(work, D) <= RESIDUAL_TOLERANCE * scale) break;
        memcpy(v, work, sizeof(double) * (size_t)D);
    }
}

/* Makes the largest-magnitude entry of v (D) positive (the first one on a
 * tie), so an axis and its negation, equally valid, always come out the same. */
static void fix_sign(double *v, int D) {
    int largest = 0;
    for (int i = 1; i < D; i++) {
        if (fabs(v[i]) > fabs(v[largest])) largest = i;
    }
    if (v[largest] < 0.0) {
        for (int i = 0; i < D; i++) v[i] = -v[i];
    }
}

/* ---- The API ------------------------------------------------------------------ */

void pca_fit(Pca *pca, const float *data, int samples, int features, int components, Rng *rng) {
    if (samples < 1 || features < 1 || components < 1 || components > features) {
        fatal("pca_fit: %d samples, %d features, %d components (expected samples >= 1 and "
              "1 <= components <= features)", samples, features, components);
    }
    const int D = features, K = components;
    double *mean = xmalloc(sizeof(double) * (size_t)D);                 /* (D)    */
    double *covariance = xmalloc(sizeof(double) * (size_t)D * D);       /* (D, D) */
    double *axes = xcalloc((size_t)K * D, sizeof(double));              /* (K, D) */
    double *work = xmalloc(sizeof(double) * (size_t)D);                 /* (D)    */
    covariance_of(data, samples, D, mean, covariance);

    double trace = 0.0;
    for (int i = 0; i < D; i++) trace += covariance[(size_t)i * D + i];

    pca->features = D;
    pca->components = K;
    pca->mean = xmalloc(sizeof(float) * (size_t)D);
    pca->axes = xmalloc(sizeof(float) * (size_t)K * D);
    pca->variances = xmalloc(sizeof(float) * (size_t)K);
    pca->total_variance = trace;

    double scale = trace > 0.0 ? trace : 1.0;
    for (int k = 0; k < K; k++) {
        power_iterate(covariance, axes, k, D, scale, rng, work);
        double *v = &axes[(size_t)k * D];
        fix_sign(v, D);
        covariance_times(covariance, v, D, work);
        double variance = dot(v, work, D); /* Rayleigh quotient v^T C v */
        if (k == 0 && variance > 0.0) scale = variance;
        pca->variances[k] = (float)(variance > 0.0 ? variance : 0.0);
        for (int i = 0; i < D; i++) pca->axes[(size_t)k * D + i] = (float)v[i];
    }
    for (int i = 0; i < D; i++) pca->mean[i] = (float)mean[i];
    free(mean);
    free(covariance);
    free(axes);
    free(work);
}

void pca_free(Pca *pca) {
    free(pca->mean);
    free(pca->axes);
    free(pca->variances);
    memset(pca, 0, sizeof *pca);
}

void pca_project(const Pca *pca, const float *data, int samples, float *codes) {
    const int D = pca->features, K = pca->components;
    for (int n = 0; n < samples; n++) {
        const float *x = &data[(size_t)n * D];
        for (int k = 0; k < K; k++) {
            const float *axis = &pca->axes[(size_t)k * D];
            double sum = 0.0;
            for (int i = 0; i < D; i++) sum += (double)(x[i] - pca->mean[i]) * axis[i];
            codes[(size_t)n * K + k] = (float)sum;
        }
    }
}

void pca_reconstruct(const Pca *pca, const float *codes, int samples, float *data) {
    const int D = pca->features, K = pca->components;
    for (int n = 0; n < samples; n++) {
        float *x = &data[(size_t)n * D];
        for (int i = 0; i < D; i++) {
            double sum = pca->mean[i];
            for (int k = 0; k < K; k++) sum += (double)codes[(size_t)n * K + k] * pca->axes[(size_t)k * D + i];
            x[i] = (float)sum;
        }
    }
}
