/* common/pca.h: principal component analysis, for 2-D views of embeddings
 * and latent codes, and as the linear baseline of the autoencoders.
 *
 * Legend: N samples, D features, K components (K <= D).
 * The components are the top-K eigenvectors of the covariance matrix
 * (1/N) sum_n (x_n - mean)(x_n - mean)^T, found by power iteration with
 * deflation, in double precision.  Each component's sign is fixed so its
 * largest-magnitude entry is positive, so results do not flip between runs.
 */
#ifndef TINYZOO_PCA_H
#define TINYZOO_PCA_H

#include "rng.h"

typedef struct {
    int features;      /* D                                                    */
    int components;    /* K                                                    */
    float *mean;       /* (D) per-feature mean of the data                     */
    float *axes;       /* (K, D) unit-length principal axes, by variance       */
    float *variances;  /* (K) variance of the data along each axis (eigenvalue) */
    double total_variance; /* trace of the covariance: sum over all D          */
} Pca;

/* Fits K components to data (N, D).  The Rng seeds power iteration. */
void pca_fit(Pca *pca, const float *data, int samples, int features, int components, Rng *rng);
void pca_free(Pca *pca);
/* codes (N, K) = (data - mean) @ axes^T */
void pca_project(const Pca *pca, const float *data, int samples, float *codes);
/* data (N, D) = codes @ axes + mean */
void pca_reconstruct(const Pca *pca, const float *codes, int samples, float *data);

#endif
