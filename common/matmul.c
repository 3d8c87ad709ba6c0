/* common/matmul.c: C (=|+=) op(A) @ op(B), cache-blocked, packed, vectorized
 * and threaded.  The arguments are described in common/matmul.h.
 *
 * Legend:
 *   M, N, K   op(A) is (M,K), op(B) is (K,N), C is (M,N), all row-major
 *   MR, NR    the register tile: the micro-kernel keeps an (MR,NR) block of C
 *             in vector registers while it runs over K
 *   MC, KC    the cache blocks: an (MC,KC) block of op(A) and a (KC,N) panel
 *             of op(B) are copied ("packed") before the micro-kernel uses them
 *   sliver    MR rows of an A block, or NR columns of the B panel
 *
 * THE BLOCKING SCHEME (Goto and van de Geijn, "Anatomy of high-performance
 * matrix multiplication", 2008; the loop names follow BLIS)
 *
 *   for pc in 0..K step KC:                          product_run_serial
 *       pack op(B)[pc:pc+KC, 0:N] as NR-column slivers   -> B panel (KC,N)
 *       for ic in 0..M step MC:
 *           pack op(A)[ic:ic+MC, pc:pc+KC] as MR-row slivers -> A block (MC,KC)
 *           for jr in 0..N step NR:                  m_block_run
 *               for ir in 0..MC step MR:
 *                   C[ic+ir:+MR, jr:+NR] += A sliver @ B sliver   (micro_kernel)
 *
 * Why these sizes (AVX-512; this machine has 48 KiB of L1 data cache and
 * 2 MiB of L2 per core):
 *   - The micro-kernel does MR*NR multiply-adds for every MR+NR floats it
 *     loads, so the tile should be as big as the registers allow.  8 rows by
 *     2 vectors of 16 floats is 16 accumulators, plus 2 vectors of B and one
 *     broadcast of A, out of 32 vector registers; that is enough to keep both
 *     FMA units busy, and MR = 8 divides the power-of-two sizes models use,
 *     so few tiles fall on an edge.  (12 rows measured no faster.)
 *   - Inside the `ir` loop the same B sliver, KC*NR*4 = 24 KiB, is read again
 *     for every A sliver, so it must stay in L1 next to the A sliver that
 *     streams past it (KC*MR*4 = 6 KiB): KC = 192.
 *   - The A block, MC*KC*4 = 72 KiB for MC = 96, is read once per B sliver,
 *     so it must stay in L2.  L2 would hold more, but larger MC measured
 *     slower here (other threads and the B panel share L2).
 *   - There is no NC loop over column blocks of B: N is at most a few
 *     thousand here, so the whole B panel (768 KiB for N = 1024) sits in
 *     L2/L3 and every B sliver comes from there.
 *   - When C itself is larger than L2 and K has several blocks, the pc and
 *     ic loops swap (product_run_serial), so that C is not swept from
 *     memory once per K block; and each tile of C asks for the next one to
 *     be prefetched (c_tile_prefetch), since its rows are a page apart.
 * Packing copies a block so that the micro-kernel reads both operands
 * contiguously, in the order it uses them, whatever the transpose flags and
 * leading dimensions: the four transpose cases differ only in the packing
 * loops.  Slivers at the bottom and right edges are padded with zeros, so one
 * micro-kernel serves every shape; an edge tile of C is computed in a local
 * (MR,NR) tile and copied back.  One exception: when op(A) = A and N is
 * small, copying A would cost a sizeable fraction of the product, so the
 * micro-kernel reads MR rows of A where they are (ASliver describes both).
 * Likewise, when op(B) = B and M is small (attention's per-head products),
 * whole NR-column slivers of B are read where they are, with B's row stride.
 *
 * THE MICRO-KERNEL is plain C on GCC vector types (`vector_size`, which gcc
 * and clang both accept): the compiler maps a FloatVec to one SIMD register
 * (AVX-512, AVX2, or SSE/NEON, chosen below from the target macros) and
 * `acc += a * b` on vectors to a fused multiply-add.  ISO C mode (-std=c11)
 * stops gcc from fusing a multiply and an add, which would halve the speed,
 * so the micro-kernel alone is compiled with -ffp-contract=fast (clang fuses
 * `x += a * b` by default).  This is not -ffast-math: nothing is reordered.
 *
 * DETERMINISM.  Every element C[i][j] is one chain of multiply-adds over
 * k = 0, 1, ..., K-1, in that order, started from 0 (or from the old C when
 * accumulating): a K block resumes the chain where the previous one stopped,
 * since the micro-kernel loads the partial sums from C.  No block size, no
 * tile position and no thread count changes that chain, so the result is the
 * same bit for bit for any number of threads (tests/test_matmul.c checks it).
 *
 * THREADING (OpenMP).  One product is cut along its longer side into one
 * piece of C per thread (product_run_parallel); each thread runs the loops
 * above on its piece with its own buffers, and the threads meet only at the
 * end.  A batch with enough items is shared out by whole items instead.
 * Work below PARALLEL_MIN_WORK multiply-adds stays on the calling thread:
 * waking a second thread costs a few microseconds.
 *
 * MEMORY.  Packing buffers are reused from call to call (see PackBuffer):
 * a training step packs into pages that are already mapped and warm.
 *
 * TWO SHORTCUTS FOR LINEAR LAYERS.  A bias (spec->bias) starts the sums of
 * every row inside the micro-kernel, instead of a pass that copies it into
 * C first.  And a weight that a recurrent layer multiplies by at every time
 * step can be packed once (matmul_pack_b) and handed over as spec->packed_b:
 * with B = 64 rows and a (128, 512) W_hh, packing W_hh^T on every call cost
 * a third as much as the multiply itself.
 */
#include "matmul.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "util.h"
#if defined(__AVX512F__)
#include <immintrin.h> /* transpose_8x8, for packing */
#endif

/* ---- Sizes ------------------------------------------------------------------ */

/* One SIMD register of floats, and how many rows of accumulators fit in the
 * register file: 2*MR accumulators + 3 of 32 registers with AVX-512, of 16
 * otherwise. */
#if defined(__AVX512F__)
enum { VEC_FLOATS = 16, MR = 8 };
#elif defined(__AVX__)
enum { VEC_FLOATS = 8, MR = 6 };
#else
enum { VEC_FLOATS = 4, MR = 6 };
#endif
enum {
    NR_VECS = 2,                  /* vectors per row of the register tile   */
    NR = NR_VECS * VEC_FLOATS,    /* columns of the register tile           */
    KC_MAX = 192,                 /* K block: B sliver (KC,NR) fits in L1   */
    MC_MAX = 96,                  /* M block: A block (MC,KC) fits in L2    */
    PACK_A_MIN_N = 256,           /* below this, A is read in place         */
    PACK_B_MIN_M = 64,            /* at most this, op(B) = B is read in place */
};
/* A C up to this size stays in the 2 MiB L2 while it is swept once per K
 * block (see product_run_serial). */
static const size_t C_IN_L2_BYTES = 1024 * 1024;
/* Multiply-adds below which a product stays on one thread (~40 us on one core). */
static const double PARALLEL_MIN_WORK = 128.0 * 128.0 * 128.0;

typedef float FloatVec __attribute__((vector_size(VEC_FLOATS * sizeof(float))));

#if defined(__GNUC__) && !defined(__clang__)
#define FUSE_MULTIPLY_ADD __attribute__((optimize("fp-contract=fast")))
#else
#define FUSE_MULTIPLY_ADD
#endif

static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* ---- One product, described by strides ------------------------------------ */

/* op(X) seen as a plain matrix: element (row, col) is
 * data[row * row_stride + col * col_stride], which hides the transpose. */
typedef struct {
    const float *data;
    long row_stride;
    long col_stride;
} MatrixView;

/* One batch item: c (M,N) (=|+=) a (M,K) @ b (K,N). */
typedef struct {
    MatrixView a;  /* op(A) (M,K) */
    MatrixView b;  /* op(B) (K,N) */
    float *c;      /* (M,N), row stride ldc */
    long ldc;
    int M, N, K;
    bool accumulate;
    const float *bias; /* (N) the first value of every row of C, or NULL for 0 */
    /* op(B) packed in advance (matmul_pack_b), or NULL: K blocks, each of
     * b_packed_slivers slivers (kc,NR) of the whole B; this product's columns
     * start at sliver b_first_sliver (not 0 for a column part of a thread). */
    const float *b_packed;
    int b_packed_slivers;
    int b_first_sliver;
} Product;

static Product product_of_item(const MatmulSpec *spec, int item) {
    Product product = {
        .a = {spec->A + item * spec->stride_a, spec->transpose_a ? 1 : spec->lda,
              spec->transpose_a ? spec->lda : 1},
        .b = {spec->B + item * spec->stride_b, spec->transpose_b ? 1 : spec->ldb,
              spec->transpose_b ? spec->ldb : 1},
        .c = spec->C + item * spec->stride_c,
        .ldc = spec->ldc,
        .M = spec->M, .N = spec->N, .K = spec->K,
        .accumulate = spec->accumulate,
        .bias = spec->bias,
        .b_packed = spec->packed_b,
        .b_packed_slivers = ceil_div(spec->N, NR),
    };
    return product;
}

static inline float view_at(const MatrixView *view, int row, int col) {
    return view->data[row * view->row_stride + col * view->col_stride];
}

/* ---- Packing buffers ----------------------------------------------------------- */

/* Packing buffers wait on a shelf (a free list) between uses: each thread
 * takes one for the length of a call, grows it if the product is bigger than
 * any before, and puts it back.  So after the first training steps no call
 * allocates, and the pages it packs into are already mapped and warm.  A
 * buffer is always reachable, from the shelf or from the thread using it,
 * so LeakSanitizer does not report the buffers left at exit. */
typedef struct PackBuffer {
    float *data;              /* 64-byte aligned: a cache line, one AVX-512 vector */
    size_t capacity;          /* floats                                            */
    struct PackBuffer *next;  /* the next buffer on the shelf                      */
} PackBuffer;

typedef enum { SHELF_A_BLOCKS, SHELF_B_PANELS, SHELF_COUNT } Shelf;
static PackBuffer *shelves[SHELF_COUNT]; /* A blocks and B panels differ in size */

/* Returns room for `floats` floats, growing the buffer only when too small. */
static float *pack_buffer_reserve(PackBuffer *buffer, size_t floats) {
    if (floats > buffer->capacity) {
        size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        free(buffer->data);
        buffer->data = aligned_alloc(64, bytes);
        if (buffer->data == NULL) fatal("matmul: out of memory packing %zu bytes", bytes);
        buffer->capacity = bytes / sizeof(float);
    }
    return buffer->data;
}

static PackBuffer *pack_buffer_take(Shelf shelf) {
    PackBuffer *buffer = NULL;
    OMP("omp critical(matmul_shelves)")
    {
        buffer = shelves[shelf];
        if (buffer != NULL) shelves[shelf] = buffer->next;
    }
    return buffer != NULL ? buffer : xcalloc(1, sizeof(PackBuffer));
}

static void pack_buffer_put_back(Shelf shelf, PackBuffer *buffer) {
    OMP("omp critical(matmul_shelves)")
    {
        buffer->next = shelves[shelf];
        shelves[shelf] = buffer;
    }
}

/* ---- Packing ----------------------------------------------------------------- */

#if defined(__AVX512F__)
/* With AVX-512, MR = 8: packing MR rows of A is a transpose, done here 8x8
 * floats at a time in AVX registers (8 loads, 24 shuffles, 8 stores, where
 * the plain loop makes 64 scalar copies); and so is packing NR columns of
 * op(B) = B^T.  out[q*out_stride + i] = rows[i][p + q]:
 *   unpack:   pairs of rows interleaved     r0 r1 -> a0 b0 a1 b1 | a4 b4 a5 b5
 *   shuffle:  pairs of pairs                       -> a0 b0 c0 d0 | a4 b4 c4 d4
 *   permute:  the 128-bit halves of two of those   -> a0 b0 c0 d0 e0 f0 g0 h0 */
static void transpose_8x8(const float *const rows[8], int p, float *out, int out_stride) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(rows[i] + p);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     /* columns 0 1 | 4 5 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); /* columns 2 3 | 6 7 */
    }
    for (int h = 0; h < 8; h += 4) { /* rows 0-3, then rows 4-7 */
        u[h + 0] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0)); /* col 0 | 4 */
        u[h + 1] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2)); /* col 1 | 5 */
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0)); /* col 2 | 6 */
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2)); /* col 3 | 7 */
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(out + q * out_stride, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        _mm256_storeu_ps(out + (q + 4) * out_stride,
                         _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
    }
}

/* out[p*out_stride + i] = rows[i][p] for p < kc, i < 8: 8x8 blocks, then
 * the last kc % 8 values one by one. */
static void transpose_8_rows(const float *const rows[8], int kc, float *out, int out_stride) {
    int p = 0;
    for (; p + 8 <= kc; p += 8) transpose_8x8(rows, p, &out[p * out_stride], out_stride);
    for (; p < kc; p++)
        for (int i = 0; i < 8; i++) out[p * out_stride + i] = rows[i][p];
}
#endif

/* Copies b[k0:k0+kc, j0:j0+NR] to sliver (kc,NR): sliver[p*NR + j], zero
 * columns past N so the micro-kernel never needs a column count.
 * Both loops read memory in order: row by row when op(B) = B, and when
 * op(B) = B^T (a Linear's weight, stored (N,K)) column by column, each
 * column of op(B) being a contiguous row of the stored B.  The copies are
 * plain loops, not memcpy: at NR floats a call costs more than the copy. */
static void pack_b_sliver(const MatrixView *b, int N, int k0, int kc, int j0, float *sliver) {
    int width = min_int(NR, N - j0);
    if (width < NR) memset(sliver, 0, (size_t)kc * NR * sizeof(float));
    if (b->col_stride == 1) {   /* op(B) = B: rows are contiguous */
        const float *row = &b->data[(long)k0 * b->row_stride + j0];
        for (int p = 0; p < kc; p++, row += b->row_stride) {
            float *out = sliver + p * NR;
            if (width == NR) {
                for (int j = 0; j < NR; j++) out[j] = row[j];
            } else {
                for (int j = 0; j < width; j++) out[j] = row[j];
            }
        }
    } else {                    /* op(B) = B^T: column j of op(B) is row j of B */
#if defined(__AVX512F__)
        if (width == NR) {
            for (int jb = 0; jb < NR; jb += 8) { /* 8 columns of op(B) at a time */
                const float *rows[8];
                for (int i = 0; i < 8; i++)
                    rows[i] = &b->data[(long)(j0 + jb + i) * b->col_stride + k0];
                transpose_8_rows(rows, kc, &sliver[jb], NR);
            }
            return;
        }
#endif
        for (int j = 0; j < width; j++) {
            const float *column = &b->data[(long)(j0 + j) * b->col_stride + k0];
            for (int p = 0; p < kc; p++) sliver[p * NR + j] = column[p];
        }
    }
}


/* Copies a[i0:i0+MR, k0:k0+kc] to sliver (kc,MR): sliver[p*MR + i], so the
 * micro-kernel reads the MR values of one k together; rows past M are 0. */
static void pack_a_sliver(const MatrixView *a, int M, int k0, int kc, int i0, float *sliver) {
    int height = min_int(MR, M - i0);
    if (height < MR) memset(sliver, 0, (size_t)kc * MR * sizeof(float));
#if defined(__AVX512F__)
    _Static_assert(MR == 8, "transpose_8x8 packs slivers of 8 rows");
    if (a->col_stride == 1 && height == MR) {
        const float *rows[8];
        for (int i = 0; i < 8; i++) rows[i] = &a->data[(i0 + i) * a->row_stride + k0];
        transpose_8_rows(rows, kc, sliver, MR);
        return;
    }
#endif
    if (a->col_stride == 1) {   /* op(A) = A: read each row along k */
        for (int i = 0; i < height; i++) {
            const float *row = &a->data[(i0 + i) * a->row_stride + k0];
            for (int p = 0; p < kc; p++) sliver[p * MR + i] = row[p];
        }
    } else {                    /* op(A) = A^T: the MR values of one k are contiguous */
        const float *column = &a->data[(long)k0 * a->col_stride + i0];
        for (int p = 0; p < kc; p++, column += a->col_stride) {
            float *out = &sliver[p * MR];
            if (height == MR) { /* a fixed-size memcpy: one vector load and store */
                memcpy(out, column, MR * sizeof(float));
            } else {
                for (int i = 0; i < height; i++) out[i] = column[i];
            }
        }
    }
}

/* ---- The micro-kernel ------------------------------------------------------- */

/* Unaligned vector loads and stores, through a vector type that may sit at
 * any float's address and alias floats.  (memcpy into a FloatVec does the
 * same, but taking the accumulators' addresses made gcc keep a copy of them
 * on the stack.) */
typedef float UnalignedFloatVec
    __attribute__((vector_size(VEC_FLOATS * sizeof(float)), aligned(sizeof(float)), may_alias));

static inline FloatVec vec_load(const float *from) { return *(const UnalignedFloatVec *)from; }

static inline void vec_store(float *to, FloatVec v) { *(UnalignedFloatVec *)to = v; }

/* Where the micro-kernel finds an (MR,kc) sliver of A: element (i,p) at
 * data[i * row_stride + p * k_stride].  A packed sliver has strides (1,MR);
 * MR rows of A read in place have strides (lda,1). */
typedef struct {
    const float *data;
    long row_stride;
    long k_stride;
} ASliver;

/* c (MR,NR), row stride ldc:  c = (load_c ? c : bias ? bias : 0) + a @ b,
 * with bias (NR) added to each row, a (MR,kc)
 * and b (kc,NR), row stride ldb: a packed sliver (ldb = NR) or NR columns
 * of op(B) read in place.  The MR*NR_VECS accumulators are a local
 * array indexed only by constants once the loops over i and v are unrolled,
 * so the compiler keeps them all in registers.  For each k: load NR values
 * of B (NR_VECS vectors), then for each of the MR rows broadcast one value
 * of A and multiply-add it into that row: MR*NR_VECS fused multiply-adds
 * for NR_VECS + MR loads. */
FUSE_MULTIPLY_ADD
static inline void micro_kernel(int kc, ASliver a, const float *restrict b, long ldb,
                                float *restrict c, long ldc, bool load_c, const float *bias) {
    /* The starting sums, row i at start[i * start_stride]: C itself, the
     * bias in every row, or zeros.  One unconditional load per accumulator,
     * so that the compiler keeps them in registers from here on (a choice
     * per accumulator made gcc build them on the stack and reload them). */
    static const float zeros[NR];
    const float *start = load_c ? c : bias ? bias : zeros;
    long start_stride = load_c ? ldc : 0;
    FloatVec acc[MR][NR_VECS];
    for (int i = 0; i < MR; i++) {
        for (int v = 0; v < NR_VECS; v++) {
            acc[i][v] = vec_load(&start[i * start_stride + v * VEC_FLOATS]);
        }
    }
    const float *restrict a_data = a.data;
    /* kc >= 1 always (K = 0 never reaches a kernel): a do-while says so, and
     * spares gcc a path around the loop that kept the sums on the stack. */
    int p = 0;
    do {
        FloatVec b_row[NR_VECS];
        for (int v = 0; v < NR_VECS; v++) b_row[v] = vec_load(&b[p * ldb + v * VEC_FLOATS]);
        for (int i = 0; i < MR; i++) {
            const float a_value = a_data[i * a.row_stride + p * a.k_stride];
            for (int v = 0; v < NR_VECS; v++) acc[i][v] += a_value * b_row[v];
        }
    } while (++p < kc);
    for (int i = 0; i < MR; i++) {
        for (int v = 0; v < NR_VECS; v++) vec_store(&c[i * ldc + v * VEC_FLOATS], acc[i][v]);
    }
}

/* The micro-kernel compiled once for each way of reading A, with the
 * strides known where they can be: a packed sliver, or rows of A in place. */
FUSE_MULTIPLY_ADD
static void micro_kernel_packed_a(int kc, const float *a, const float *b, long ldb, float *c,
                                  long ldc, bool load_c, const float *bias) {
    micro_kernel(kc, (ASliver){a, 1, MR}, b, ldb, c, ldc, load_c, bias);
}

FUSE_MULTIPLY_ADD
static void micro_kernel_rows_of_a(int kc, const float *a, long lda, const float *b, long ldb,
                                   float *c, long ldc, bool load_c, const float *bias) {
    micro_kernel(kc, (ASliver){a, lda, 1}, b, ldb, c, ldc, load_c, bias);
}

/* The (rows,cols) corner of a tile at the right or bottom edge of C goes
 * through a full (MR,NR) local tile, so the micro-kernel needs no bounds. */
static void micro_kernel_edge(int kc, ASliver a, const float *b, long ldb, float *c, long ldc,
                              bool load_c, const float *bias, int rows, int cols) {
    float tile[MR * NR]; /* (MR,NR) */
    for (int i = 0; i < rows && load_c; i++) {
        memcpy(&tile[i * NR], &c[i * ldc], (size_t)cols * sizeof(float));
    }
    for (int i = 0; i < rows && !load_c && bias; i++) {
        memcpy(&tile[i * NR], bias, (size_t)cols * sizeof(float));
    }
    micro_kernel(kc, a, b, ldb, tile, NR, load_c || bias, NULL);
    for (int i = 0; i < rows; i++) memcpy(&c[i * ldc], &tile[i * NR], (size_t)cols * sizeof(float));
}

/* ---- Blocks ---------------------------------------------------------------- */

/* How one product is cut into cache blocks.  Whatever the cut, each C[i][j]
 * is the same chain of multiply-adds (see DETERMINISM above). */
typedef struct {
    int kc;            /* K block, <= KC_MAX                                      */
    int m_slivers;     /* ceil(M / MR)                                            */
    int m_blocks;      /* the M slivers are cut in this many blocks, ~MC rows each */
    int mc;            /* rows of the largest M block                             */
    int n_slivers;     /* ceil(N / NR)                                            */
    bool pack_a;       /* copy A blocks, or read A in place                       */
    bool b_in_place;   /* read whole slivers of B in place, instead of copies    */
} Blocking;

/* Start of part `index` of `total` things cut in `parts` nearly equal parts. */
static int part_start(int index, int total, int parts) {
    return (int)((long)index * total / parts);
}

/* Equal K blocks: K = 300 gives 150 + 150 rather than 192 + 108. */
static int k_block_size(int K) {
    return ceil_div(K, ceil_div(K, KC_MAX));
}

static Blocking blocking_choose(const Product *product) {
    Blocking blocking;
    blocking.kc = k_block_size(product->K);
    blocking.m_slivers = ceil_div(product->M, MR);
    blocking.m_blocks = ceil_div(product->M, MC_MAX);
    blocking.mc = ceil_div(blocking.m_slivers, blocking.m_blocks) * MR;
    blocking.n_slivers = ceil_div(product->N, NR);
    /* Reading A in place saves copying it, which costs about as much as
     * computing 16 to 32 of its columns of C; but MR rows of A, lda apart,
     * can compete for the same few cache sets.  Copy when N is large. */
    blocking.pack_a = product->a.col_stride != 1 || product->N >= PACK_A_MIN_N;
    /* Likewise for B, whose copy is used by M / MR A slivers: with few rows
     * (attention's per-head products) copying B costs more than it saves.
     * Only op(B) = B can be read in place: the micro-kernel reads rows of B. */
    blocking.b_in_place = product->b_packed == NULL && product->b.col_stride == 1 &&
                          product->M <= PACK_B_MIN_M;
    return blocking;
}

/* The micro-kernel on one (MR,NR) tile of C at (i, j0), or on the part
 * inside C of a tile at the edge.  a_sliver is the packed A of rows i.. */
static void tile_run(const Product *product, const Blocking *blocking, int k0, int kc,
                     const float *a_sliver, int i, const float *b_sliver, long ldb, int j0) {
    int rows = min_int(MR, product->M - i), cols = min_int(NR, product->N - j0);
    float *c_tile = &product->c[i * product->ldc + j0];
    bool load_c = k0 > 0 || product->accumulate;
    const float *bias = product->bias && !load_c ? product->bias + j0 : NULL; /* (cols) */
    bool packed = blocking->pack_a || rows < MR; /* see m_block_run */
    long lda = product->a.row_stride;
    ASliver a = packed ? (ASliver){a_sliver, 1, MR}
                       : (ASliver){&product->a.data[i * lda + k0], lda, 1};
    if (rows < MR || cols < NR) {
        micro_kernel_edge(kc, a, b_sliver, ldb, c_tile, product->ldc, load_c, bias, rows, cols);
    } else if (packed) {
        micro_kernel_packed_a(kc, a.data, b_sliver, ldb, c_tile, product->ldc, load_c, bias);
    } else {
        micro_kernel_rows_of_a(kc, a.data, a.row_stride, b_sliver, ldb, c_tile, product->ldc,
                               load_c, bias);
    }
}

/* Asks for the (MR,NR) tile of C at (i, j0) to be brought into cache while
 * the current tile computes.  Its rows are ldc apart, often a whole page,
 * which the hardware prefetchers do not follow; with C larger than L2 each
 * row would otherwise be a miss that stalls the tile's loads or stores. */
static void c_tile_prefetch(const Product *product, int i, int j0) {
#if defined(__GNUC__)
    int rows = min_int(MR, product->M - i);
    for (int r = 0; r < rows; r++) {
        const float *row = &product->c[(long)(i + r) * product->ldc + j0];
        __builtin_prefetch(row, 1, 3);               /* 1: for writing, 3: keep in all levels */
        __builtin_prefetch(row + NR - 1, 1, 3);      /* the tile's last column */
    }
#else
    (void)product, (void)i, (void)j0;
#endif
}

/* The `ic` loop body: rows [i0, i_end) of C for the K block at k0.  Packs
 * the A block (without pack_a, only a last partial sliver, padded with zero
 * rows), then walks its tiles of C, B sliver by B sliver.
 * b_panel: (kc, n_slivers*NR), sliver s at b_panel + s*kc*NR; with
 * b_in_place, only the last sliver is there (padded with zero columns) and the
 * others are read from B in place. */
static void m_block_run(const Product *product, const Blocking *blocking, int k0, int kc,
                        int i0, int i_end, const float *b_panel, float *a_block) {
    int rows = i_end - i0;
    for (int ir = 0; ir < rows; ir += MR) {
        if (blocking->pack_a || rows - ir < MR) {
            pack_a_sliver(&product->a, product->M, k0, kc, i0 + ir, &a_block[ir * kc]);
        }
    }
    for (int s = 0; s < blocking->n_slivers; s++) {           /* jr loop */
        const float *b_sliver = &b_panel[(size_t)s * kc * NR];
        long ldb = NR;
        if (blocking->b_in_place && (s + 1) * NR <= product->N) {
            b_sliver = &product->b.data[(long)k0 * product->b.row_stride + s * NR];
            ldb = product->b.row_stride;
        }
        for (int ir = 0; ir < rows; ir += MR) {               /* ir loop */
            if (ir + MR < rows) c_tile_prefetch(product, i0 + ir + MR, s * NR);
            tile_run(product, blocking, k0, kc, &a_block[ir * kc], i0 + ir, b_sliver, ldb,
                     s * NR);
        }
    }
}

/* ---- One product, on one thread or on several ------------------------------ */

/* All of op(B) (K,N), packed as product_run_serial's K blocks would pack it
 * one at a time, the blocks one after the other: block k0 starts at
 * packed + k0 * slivers * NR, and holds `slivers` slivers (kc,NR). */
static void pack_b_all(const MatrixView *b, int K, int N, float *packed) {
    int kc_max = K > 0 ? k_block_size(K) : 1, slivers = ceil_div(N, NR);
    for (int k0 = 0; k0 < K; k0 += kc_max) {
        int kc = min_int(kc_max, K - k0);
        float *block = packed + (size_t)k0 * slivers * NR;
        for (int s = 0; s < slivers; s++) pack_b_sliver(b, N, k0, kc, s * NR, &block[(size_t)s * kc * NR]);
    }
}

/* In op(B) packed by pack_b_all with `slivers` slivers per K block, the
 * panel of the K block at k0 from sliver `first` on. */
static const float *b_panel_at(const float *b_all, int slivers, int first, int k0, int kc) {
    return &b_all[(size_t)k0 * slivers * NR + (size_t)first * kc * NR];
}

/* The rows [i0, i_end) of M block m_block. */
static void m_block_rows(const Product *product, const Blocking *blocking, int m_block, int *i0,
                         int *i_end) {
    *i0 = part_start(m_block, blocking->m_slivers, blocking->m_blocks) * MR;
    *i_end = min_int(part_start(m_block + 1, blocking->m_slivers, blocking->m_blocks) * MR,
                     product->M);
}

/* The loops of the scheme at the top, on the calling thread, packing into
 * the buffers it holds.
 *
 * The order drawn at the top (pc outside ic) sweeps all of C once per K
 * block.  When C is larger than L2 can keep (1024x1024 floats is 4 MiB)
 * and K has several blocks, every sweep sends C to memory and back, which
 * halved the speed of such products.  Then the two loops swap: all of op(B)
 * is packed first, and each M block runs through every K block while its
 * rows of C, (MC,N), are still in L2.  For a smaller C the drawn order is
 * faster (only one K block's panel of B has to stay in cache).  Either way
 * each C[i][j] sees k = 0, 1, ... in order. */
static void product_run_serial(const Product *product, PackBuffer *a_buffer,
                               PackBuffer *b_buffer) {
    Blocking blocking = blocking_choose(product);
    float *a_block = pack_buffer_reserve(a_buffer, (size_t)blocking.mc * blocking.kc);
    size_t c_bytes = (size_t)product->M * product->N * sizeof(float);
    bool m_blocks_outside = product->K > blocking.kc && c_bytes > C_IN_L2_BYTES;
    /* op(B) packed as pack_b_all lays it out, `slivers` slivers per K block
     * of which this product's start at first_sliver: given (packed_b),
     * packed all at once here (m_blocks_outside), or else one K block at a
     * time just before use. */
    const float *b_all = product->b_packed;
    int slivers = product->b_packed_slivers, first_sliver = product->b_first_sliver;
    float *b_buffer_data = NULL;
    if (b_all == NULL) {
        b_buffer_data = pack_buffer_reserve(
            b_buffer, (size_t)(m_blocks_outside ? product->K : blocking.kc) * blocking.n_slivers * NR);
        slivers = blocking.n_slivers, first_sliver = 0;
        if (m_blocks_outside) {
            pack_b_all(&product->b, product->K, product->N, b_buffer_data);
            b_all = b_buffer_data;
            blocking.b_in_place = false;
        }
    }
    int i0, i_end;
    if (m_blocks_outside) {
        for (int m_block = 0; m_block < blocking.m_blocks; m_block++) {     /* ic loop */
            m_block_rows(product, &blocking, m_block, &i0, &i_end);
            for (int k0 = 0; k0 < product->K; k0 += blocking.kc) {       /* pc loop */
                int kc = min_int(blocking.kc, product->K - k0);
                m_block_run(product, &blocking, k0, kc, i0, i_end,
                            b_panel_at(b_all, slivers, first_sliver, k0, kc), a_block);
            }
        }
        return;
    }
    for (int k0 = 0; k0 < product->K; k0 += blocking.kc) {               /* pc loop */
        int kc = min_int(blocking.kc, product->K - k0);
        const float *b_panel = b_buffer_data; /* (kc, slivers*NR) */
        if (b_all != NULL) {
            b_panel = b_panel_at(b_all, slivers, first_sliver, k0, kc);
        } else {
            for (int s = 0; s < slivers; s++) {
                bool whole = (s + 1) * NR <= product->N; /* else padded: always packed */
                if (!blocking.b_in_place || !whole)
                    pack_b_sliver(&product->b, product->N, k0, kc, s * NR,
                                  &b_buffer_data[(size_t)s * kc * NR]);
            }
        }
        for (int m_block = 0; m_block < blocking.m_blocks; m_block++) {     /* ic loop */
            m_block_rows(product, &blocking, m_block, &i0, &i_end);
            m_block_run(product, &blocking, k0, kc, i0, i_end, b_panel, a_block);
        }
    }
}

/* Rows [first, end) of C (split_rows) or columns [first, end), as a product
 * of its own: a view into the same matrices. */
static Product product_part(const Product *product, bool split_rows, int first, int end) {
    Product part = *product;
    if (split_rows) {
        part.a.data += first * product->a.row_stride;
        part.c += first * product->ldc;
        part.M = end - first;
    } else {
        part.b.data += first * product->b.col_stride;
        part.b_first_sliver += first / NR; /* first is a whole number of slivers */
        if (part.bias) part.bias += first;
        part.c += first;
        part.N = end - first;
    }
    return part;
}

/* C cut into one piece per thread, along its longer side, in whole slivers;
 * each thread computes its piece alone, with its own packing buffers, from
 * start to end.  So the threads meet only once, at the end, and each keeps
 * its blocks in its own core's caches.  The cost: each thread packs its own
 * copy of B (rows cut) or of A (columns cut), about 1/(M or N per thread)
 * of the work. */
static void product_run_parallel(const Product *product, int threads) {
    bool split_rows = product->M >= product->N;
    int slivers = split_rows ? ceil_div(product->M, MR) : ceil_div(product->N, NR);
    int sliver_size = split_rows ? MR : NR;
    int length = split_rows ? product->M : product->N;
    int parts = min_int(threads, slivers);
    OMP("omp parallel for schedule(static) num_threads(parts)")
    for (int index = 0; index < parts; index++) {
        int first = part_start(index, slivers, parts) * sliver_size;
        int end = min_int(part_start(index + 1, slivers, parts) * sliver_size, length);
        Product part = product_part(product, split_rows, first, end);
        PackBuffer *a_buffer = pack_buffer_take(SHELF_A_BLOCKS);
        PackBuffer *b_buffer = pack_buffer_take(SHELF_B_PANELS);
        product_run_serial(&part, a_buffer, b_buffer);
        pack_buffer_put_back(SHELF_A_BLOCKS, a_buffer);
        pack_buffer_put_back(SHELF_B_PANELS, b_buffer);
    }
}

/* K = 0: op(A) @ op(B) is all zeros. */
static void product_zero_k(const Product *product) {
    if (product->accumulate) return;
    for (int i = 0; i < product->M; i++) {
        float *row = &product->c[i * product->ldc];
        if (product->bias) memcpy(row, product->bias, (size_t)product->N * sizeof(float));
        else memset(row, 0, (size_t)product->N * sizeof(float));
    }
}

/* ---- The entry points ------------------------------------------------------- */

/* A malformed spec is a bug in the calling op, not a user error: fatal. */
static void spec_check(const MatmulSpec *spec) {
    if (spec->batch < 1 || spec->M < 0 || spec->N < 0 || spec->K < 0) {
        fatal("matmul: bad sizes batch=%d M=%d N=%d K=%d (expected batch >= 1, sizes >= 0)",
              spec->batch, spec->M, spec->N, spec->K);
    }
    int a_width = spec->transpose_a ? spec->M : spec->K;
    int b_width = spec->transpose_b ? spec->K : spec->N;
    if (spec->lda < a_width || spec->ldb < b_width || spec->ldc < spec->N) {
        fatal("matmul: leading dimension too small: lda=%d (need >= %d), ldb=%d (need >= %d), "
              "ldc=%d (need >= %d)", spec->lda, a_width, spec->ldb, b_width, spec->ldc, spec->N);
    }
    if (spec->bias != NULL && spec->accumulate) {
        fatal("matmul: bias starts each row of C; it cannot be combined with accumulate");
    }
    if (spec->packed_b != NULL && spec->batch > 1 && spec->stride_b != 0) {
        fatal("matmul: packed_b needs one B for the whole batch (stride_b = %ld)", spec->stride_b);
    }
    bool has_output = spec->M > 0 && spec->N > 0;
    if (has_output && (spec->C == NULL || (spec->K > 0 && (spec->A == NULL || spec->B == NULL)))) {
        fatal("matmul: NULL matrix for a %dx%dx%d product", spec->M, spec->K, spec->N);
    }
}

static int threads_available(void) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1; /* called from a parallel loop already */
#endif
    return threads_get();
}

/* Batch item `item` on this thread, packing into the buffers it holds. */
static void item_run_serial(const MatmulSpec *spec, int item, PackBuffer *a_buffer,
                            PackBuffer *b_buffer) {
    Product product = product_of_item(spec, item);
    if (product.K == 0) product_zero_k(&product);
    else product_run_serial(&product, a_buffer, b_buffer);
}

void matmul(const MatmulSpec *spec) {
    spec_check(spec);
    if (spec->M == 0 || spec->N == 0) return;
    double item_work = (double)spec->M * spec->N * spec->K;  /* multiply-adds */
    int threads = threads_available();
    bool serial = threads == 1 || item_work * spec->batch < PARALLEL_MIN_WORK;
    /* Whole items per thread when there are enough of them to share out
     * evenly, or when each is too small to split; never when they all
     * write the same C (stride_c = 0, summing a batch into one C). */
    bool by_item = !serial && spec->batch > 1 && spec->stride_c != 0 &&
                   (spec->batch >= 2 * threads || item_work < PARALLEL_MIN_WORK);
    if (by_item) {
        OMP("omp parallel num_threads(threads)")
        {
            PackBuffer *a_buffer = pack_buffer_take(SHELF_A_BLOCKS);
            PackBuffer *b_buffer = pack_buffer_take(SHELF_B_PANELS);
            OMP("omp for schedule(static)")
            for (int item = 0; item < spec->batch; item++) {
                item_run_serial(spec, item, a_buffer, b_buffer);
            }
            pack_buffer_put_back(SHELF_A_BLOCKS, a_buffer);
            pack_buffer_put_back(SHELF_B_PANELS, b_buffer);
        }
    } else if (!serial && item_work >= PARALLEL_MIN_WORK) {
        for (int item = 0; item < spec->batch; item++) {
            Product product = product_of_item(spec, item);
            if (product.K == 0) product_zero_k(&product);
            else product_run_parallel(&product, threads);
        }
    } else {
        PackBuffer *a_buffer = pack_buffer_take(SHELF_A_BLOCKS);
        PackBuffer *b_buffer = pack_buffer_take(SHELF_B_PANELS);
        for (int item = 0; item < spec->batch; item++) {
            item_run_serial(spec, item, a_buffer, b_buffer);
        }
        pack_buffer_put_back(SHELF_A_BLOCKS, a_buffer);
        pack_buffer_put_back(SHELF_B_PANELS, b_buffer);
    }
}

size_t matmul_packed_b_floats(int K, int N) {
    return (size_t)K * (size_t)ceil_div(N, NR) * NR;
}

void matmul_pack_b(const float *B, int ldb, bool transpose_b, int K, int N, float *packed) {
    MatrixView b = {B, transpose_b ? 1 : ldb, transpose_b ? ldb : 1};
    pack_b_all(&b, K, N, packed);
}

/* The definition of matmul(), in the most direct form: one double-precision
 * dot product per element of C. */
void matmul_reference(const MatmulSpec *spec) {
    spec_check(spec);
    for (int item = 0; item < spec->batch; item++) {
        Product product = product_of_item(spec, item);
        for (int i = 0; i < product.M; i++) {
            for (int j = 0; j < product.N; j++) {
                float *c = &product.c[i * product.ldc + j];
                double sum = product.accumulate ? *c : product.bias ? product.bias[j] : 0.0;
                for (int p = 0; p < product.K; p++) {
                    sum += (double)view_at(&product.a, i, p) * view_at(&product.b, p, j);
                }
                *c = (float)sum;
            }
        }
    }
}

void threads_set(int count) {
    if (count < 1) fatal("threads_set: %d threads (expected >= 1)", count);
#ifdef _OPENMP
    omp_set_num_threads(count);
#endif
}

int threads_get(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
