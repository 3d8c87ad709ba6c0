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
#include <stddef.h>

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
    /* Optional (N): C = bias + op(A) op(B), the bias added to every row, as
     * the first term of each sum (so the same bits as C = bias, then
     * accumulate).  Not with accumulate. */
    const float *bias;
    /* Optional: op(B) already packed by matmul_pack_b, with the same K and N
     * (B must still be set, for checks and matmul_reference).  A weight that
     * many products in a row multiply by, such as a recurrent W_hh at every
     * time step, is then packed once instead of once per product.  Only for
     * a B shared by the whole batch (batch = 1 or stride_b = 0). */
    const float *packed_b;
} MatmulSpec;

/* C[i] (=|+=) op(A[i]) @ op(B[i]) for i in [0, batch). */
void matmul(const MatmulSpec *spec);

/* Floats needed to hold op(B) (K,N) packed: K * N rounded up to whole
 * column slivers of the micro-kernel. */
size_t matmul_packed_b_floats(int K, int N);

/* Packs op(B) (K,N) (B stored (N,K) when transpose_b, row stride ldb) into
 * `packed`, in the order the products of matmul() read it.  The result is
 * the same bit for bit as without packing: packing only moves floats. */
void matmul_pack_b(const float *B, int ldb, bool transpose_b, int K, int N, float *packed);

/* The plain triple loop, for tests and as documentation of what matmul()
 * computes.  Same arguments, no blocking, no threads, double accumulators. */
void matmul_reference(const MatmulSpec *spec);

/* Number of threads used by matmul and the other parallel loops (OpenMP);
 * 1 when built without OpenMP. */
void threads_set(int count);
int threads_get(void);

#endif
