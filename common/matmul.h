/* common/matmul.h: the matrix-multiply kernel behind op_matmul.
 *
 * Matmul is the hot loop of every model here, so it has a file of its own:
 * cache blocking, packing, and a register-tiled micro-kernel written so that
 * gcc vectorizes it, with OpenMP over blocks of the output.  Each output
 * element is computed by exactly one thread, summing over K in the same
 * order, so the result is identical bit for bit whatever the thread count.
 *
 * Legend: op(A) is (M,K), op(B) is (K,N), C is (M,N), all row-major with
 * leading dimensions (row strides) lda, ldb, ldc.  op(X) is X, or X^T when
 * the matching transpose flag is set (then A is stored (K,M), B is (N,K)).
 */
#ifndef TINYZOO_MATMUL_H
#define TINYZOO_MATMUL_H

#include <stdbool.h>

typedef struct {
    int batch;                /* number of independent products (>= 1)        */
    int M, N, K;
    const float *A;           /* first matrix of batch item 0                 */
    int lda;                  /* row stride of A as stored                    */
    long stride_a;            /* floats between batch items; 0 = shared A     */
    bool transpose_a;
    const float *B;
    int ldb;
    long stride_b;            /* 0 = the same B for every batch item          */
    bool transpose_b;
    float *C;
    int ldc;
    long stride_c;
    bool accumulate;          /* C += op(A) op(B) instead of C = op(A) op(B)  */
} MatmulSpec;

/* C[i] (=|+=) op(A[i]) @ op(B[i]) for i in [0, batch). */
void matmul(const MatmulSpec *spec);

/* The plain triple loop, for tests and as documentation of what matmul()
 * computes.  Same arguments, no blocking, no threads, double accumulators. */
void matmul_reference(const MatmulSpec *spec);

/* Number of threads used by matmul and the other parallel loops (OpenMP);
 * 1 when built without OpenMP. */
void threads_set(int count);
int threads_get(void);

#endif
