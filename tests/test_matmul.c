/* tests/test_matmul.c: matmul() in common/matmul.c against matmul_reference().
 *
 * Legend: op(A) is (M,K), op(B) is (K,N), C is (M,N); a batch holds `batch`
 * such products.  Every input is random (the project's Rng, fixed seeds),
 * including the padding past each row and between batch items, so reading
 * padding shows up as a wrong answer; and padding in C must come back
 * untouched, bit for bit.
 *
 * Tolerance.  matmul() sums in float: each of the K steps of a dot product
 * rounds with relative error at most u = 2^-24 (twice without a fused
 * multiply-add), so the classic bound for a dot product computed in order is
 *     |computed - exact| <= gamma * sum_k |a_ik| |b_kj|,  gamma ~ 2 K u,
 * plus one rounding of the old C when accumulating.  The reference sums in
 * double (error ~K 2^-53, negligible) and rounds once to float.  So each
 * element may differ by (K + 2) * FLT_EPSILON * bound (FLT_EPSILON = 2u),
 * where bound = sum_k |a_ik||b_kj| (+ |c_ij|), computed by the reference on
 * |A|, |B| and |C|.  A real bug (a wrong index, a skipped k, a tile written
 * twice) changes an element by about `bound` itself, far above that.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "rng.h"
#include "test_suites.h"

/* ---- One test problem ------------------------------------------------------------ */

/* The layout of one batched product, with optional padding everywhere. */
typedef struct {
    int batch, M, K, N;
    bool transpose_a, transpose_b, accumulate;
    int pad_a, pad_b, pad_c;  /* extra floats at the end of each stored row  */
    long gap;                 /* extra floats between batch items           */
    bool shared_a, shared_b;  /* stride 0: one A (or B) for every item      */
} Layout;

typedef struct {
    Layout layout;
    MatmulSpec spec;   /* C is NULL: each use sets it */
    float *a;          /* stored A for every item, with padding */
    float *b;
    float *c_initial;  /* C before the call, padding included */
    long a_count, b_count, c_count;
} Problem;

static float *random_floats(Rng *rng, long count) {
    float *data = malloc((size_t)count * sizeof(float));
    ck_assert_ptr_nonnull(data);
    for (long i = 0; i < count; i++) data[i] = 2.0f * rng_uniform(rng) - 1.0f;
    return data;
}

static float *copy_floats(const float *from, long count) {
    float *copy = malloc((size_t)count * sizeof(float));
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, from, (size_t)count * sizeof(float));
    return copy;
}

static Problem problem_build(const Layout *layout, uint64_t seed) {
    Problem problem = {.layout = *layout};
    MatmulSpec *spec = &problem.spec;
    int a_rows = layout->transpose_a ? layout->K : layout->M;  /* A stored (a_rows, lda) */
    int a_cols = layout->transpose_a ? layout->M : layout->K;
    int b_rows = layout->transpose_b ? layout->N : layout->K;  /* B stored (b_rows, ldb) */
    int b_cols = layout->transpose_b ? layout->K : layout->N;
    *spec = (MatmulSpec){
        .batch = layout->batch, .M = layout->M, .N = layout->N, .K = layout->K,
        .lda = a_cols + layout->pad_a, .transpose_a = layout->transpose_a,
        .ldb = b_cols + layout->pad_b, .transpose_b = layout->transpose_b,
        .ldc = layout->N + layout->pad_c, .accumulate = layout->accumulate,
    };
    long a_item = (long)a_rows * spec->lda + layout->gap;
    long b_item = (long)b_rows * spec->ldb + layout->gap;
    spec->stride_a = layout->shared_a ? 0 : a_item;
    spec->stride_b = layout->shared_b ? 0 : b_item;
    spec->stride_c = (long)layout->M * spec->ldc + layout->gap;
    problem.a_count = layout->shared_a ? a_item : a_item * layout->batch;
    problem.b_count = layout->shared_b ? b_item : b_item * layout->batch;
    problem.c_count = spec->stride_c * layout->batch;
    Rng rng;
    rng_seed(&rng, seed, 0);
    problem.a = random_floats(&rng, problem.a_count + 1);  /* +1: never a 0-byte malloc */
    problem.b = random_floats(&rng, problem.b_count + 1);
    problem.c_initial = random_floats(&rng, problem.c_count + 1);
    spec->A = problem.a;
    spec->B = problem.b;
    return problem;
}

static void problem_free(Problem *problem) {
    free(problem->a);
    free(problem->b);
    free(problem->c_initial);
}

/* C after one call of `multiply` (matmul or matmul_reference); caller frees. */
static float *problem_run(const Problem *problem, void (*multiply)(const MatmulSpec *)) {
    float *c = copy_floats(problem->c_initial, problem->c_count + 1);
    MatmulSpec spec = problem->spec;
    spec.C = c;
    multiply(&spec);
    return c;
}

/* sum_k |a_ik||b_kj| (+ |c_ij| when accumulating), for the tolerance. */
static float *problem_error_bound(const Problem *problem) {
    float *a = copy_floats(problem->a, problem->a_count + 1);
    float *b = copy_floats(problem->b, problem->b_count + 1);
    float *c = copy_floats(problem->c_initial, problem->c_count + 1);
    for (long i = 0; i <= problem->a_count; i++) a[i] = fabsf(a[i]);
    for (long i = 0; i <= problem->b_count; i++) b[i] = fabsf(b[i]);
    for (long i = 0; i <= problem->c_count; i++) c[i] = fabsf(c[i]);
    MatmulSpec spec = problem->spec;
    spec.A = a;
    spec.B = b;
    spec.C = c;
    matmul_reference(&spec);
    free(a);
    free(b);
    return c;
}

/* matmul() against the reference, element by element, and padding of C
 * untouched.  Names the layout and the first bad element on failure. */
static void problem_check(const Problem *problem) {
    const Layout *l = &problem->layout;
    const MatmulSpec *spec = &problem->spec;
    float *result = problem_run(problem, matmul);
    float *expected = problem_run(problem, matmul_reference);
    float *bound = problem_error_bound(problem);
    for (long index = 0; index < problem->c_count; index++) {
        long item = index / spec->stride_c, offset = index % spec->stride_c;
        long row = offset / spec->ldc, col = offset % spec->ldc;
        bool logical = row < l->M && col < l->N;
        float tolerance = logical ? (float)(l->K + 2) * FLT_EPSILON * bound[index] : 0.0f;
        float want = logical ? expected[index] : problem->c_initial[index];
        if (!(fabsf(result[index] - want) <= tolerance)) {
            ck_abort_msg("batch=%d M=%d K=%d N=%d ta=%d tb=%d acc=%d pads=%d,%d,%d gap=%ld "
                         "shared=%d,%d: C[item %ld][%ld][%ld] = %.9g, expected %.9g (tol %.3g)%s",
                         l->batch, l->M, l->K, l->N, l->transpose_a, l->transpose_b,
                         l->accumulate, l->pad_a, l->pad_b, l->pad_c, l->gap, l->shared_a,
                         l->shared_b, item, row, col, result[index], want, tolerance,
                         logical ? "" : " (padding changed)");
        }
    }
    free(result);
    free(expected);
    free(bound);
}

static void check_layout(const Layout *layout, uint64_t seed) {
    Problem problem = problem_build(layout, seed);
    problem_check(&problem);
    problem_free(&problem);
}

/* ---- Shapes and transposes ------------------------------------------------------- */

/* Sizes around the register tile (8x32 with AVX-512, 6x16 with AVX2) and
 * the cache blocks (KC = 192, MC = 96): 1, just past a tile, one below and
 * one past 128, and 300, which takes two K blocks and several M blocks. */
static const int ODD_SIZES[] = {1, 3, 17, 33, 65, 127, 129, 300};
enum { ODD_SIZE_COUNT = sizeof ODD_SIZES / sizeof ODD_SIZES[0] };

/* Loop index = transpose_a * 2 + transpose_b.  Every (M,N) pair of odd
 * sizes, K cycling through them too, accumulate off and on. */
START_TEST(test_matmul_odd_shapes_each_transpose) {
    bool transpose_a = (_i & 2) != 0, transpose_b = (_i & 1) != 0;
    for (int m = 0; m < ODD_SIZE_COUNT; m++) {
        for (int n = 0; n < ODD_SIZE_COUNT; n++) {
            int k = (m + 3 * n) % ODD_SIZE_COUNT;
            Layout layout = {.batch = 1, .M = ODD_SIZES[m], .K = ODD_SIZES[k], .N = ODD_SIZES[n],
                             .transpose_a = transpose_a, .transpose_b = transpose_b,
                             .accumulate = (m + n) % 2 == 1};
            check_layout(&layout, (uint64_t)(100 * m + n));
        }
    }
}
END_TEST

/* Large enough for several M blocks, K blocks and the threaded path. */
START_TEST(test_matmul_large_each_transpose) {
    bool transpose_a = (_i & 2) != 0, transpose_b = (_i & 1) != 0;
    Layout wide = {.batch = 1, .M = 517, .K = 403, .N = 291, .transpose_a = transpose_a,
                   .transpose_b = transpose_b, .accumulate = false};
    check_layout(&wide, 1);
    Layout tall = {.batch = 1, .M = 1024, .K = 128, .N = 128, .transpose_a = transpose_a,
                   .transpose_b = transpose_b, .accumulate = true};
    check_layout(&tall, 2);
    /* C over 1 MiB and several K blocks: the M blocks run outside the K blocks */
    Layout big_c = {.batch = 1, .M = 1030, .K = 390, .N = 300, .transpose_a = transpose_a,
                    .transpose_b = transpose_b, .accumulate = (_i & 1) != 0};
    check_layout(&big_c, 3);
}
END_TEST

/* Every stored row padded (lda, ldb, ldc larger than the logical width),
 * with random values in the padding that must be neither read nor written. */
START_TEST(test_matmul_leading_dimensions_larger_than_width) {
    for (int t = 0; t < 4; t++) {
        Layout layout = {.batch = 1, .M = 67, .K = 45, .N = 70, .transpose_a = (t & 2) != 0,
                         .transpose_b = (t & 1) != 0, .accumulate = t == 1,
                         .pad_a = 5, .pad_b = 19, .pad_c = 3};
        check_layout(&layout, 10 + (uint64_t)t);
        layout.M = 300, layout.K = 260, layout.N = 129;  /* the packed, threaded path */
        check_layout(&layout, 20 + (uint64_t)t);
    }
}
END_TEST

/* ---- Batches ------------------------------------------------------------------------ */

START_TEST(test_matmul_batched_shared_and_separate_operands) {
    for (int shared = 0; shared < 4; shared++) {
        /* Small items (the batch is split between threads) and big ones (each
         * item is split), A or B shared or not, a gap between items. */
        Layout small = {.batch = 64, .M = 32, .K = 32, .N = 32, .shared_a = (shared & 2) != 0,
                        .shared_b = (shared & 1) != 0, .gap = 7, .accumulate = shared == 2};
        check_layout(&small, 30 + (uint64_t)shared);
        Layout attention = {.batch = 6, .M = 33, .K = 16, .N = 33, .transpose_b = true,
                            .shared_a = (shared & 2) != 0, .shared_b = (shared & 1) != 0};
        check_layout(&attention, 40 + (uint64_t)shared);
        Layout big = {.batch = 3, .M = 150, .K = 130, .N = 140, .transpose_a = true,
                      .shared_a = (shared & 2) != 0, .shared_b = (shared & 1) != 0,
                      .pad_c = 2, .accumulate = true};
        check_layout(&big, 50 + (uint64_t)shared);
    }
}
END_TEST

/* ---- Degenerate sizes -------------------------------------------------------------- */

/* K = 0: an empty sum, so C = 0, or C unchanged when accumulating. */
START_TEST(test_matmul_k_zero_gives_zero_or_unchanged) {
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        float c[6] = {1, 2, 3, 4, 5, 6};  /* (2,3) */
        float dummy = 0.0f;
        MatmulSpec spec = {.batch = 1, .M = 2, .N = 3, .K = 0, .A = &dummy, .lda = 1,
                           .B = &dummy, .ldb = 3, .C = c, .ldc = 3, .accumulate = accumulate};
        matmul(&spec);
        for (int i = 0; i < 6; i++) ck_assert_float_eq(c[i], accumulate ? (float)(i + 1) : 0.0f);
    }
}
END_TEST

START_TEST(test_matmul_empty_output_writes_nothing) {
    Layout rows_zero = {.batch = 2, .M = 0, .K = 5, .N = 4};
    check_layout(&rows_zero, 60);
    Layout cols_zero = {.batch = 2, .M = 5, .K = 5, .N = 0, .pad_c = 3};
    check_layout(&cols_zero, 61);
}
END_TEST

/* A small hand-computed answer, so the reference itself is checked:
 * [1 2; 3 4] @ [5 6; 7 8] = [19 22; 43 50], and with B^T: [17 23; 39 53]. */
START_TEST(test_matmul_known_answer_2x2) {
    const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    const float plain[4] = {19, 22, 43, 50}, b_transposed[4] = {17, 23, 39, 53};
    for (int reference = 0; reference < 2; reference++) {
        for (int transpose_b = 0; transpose_b < 2; transpose_b++) {
            float c[4];
            MatmulSpec spec = {.batch = 1, .M = 2, .N = 2, .K = 2, .A = a, .lda = 2, .B = b,
                               .ldb = 2, .transpose_b = transpose_b, .C = c, .ldc = 2};
            if (reference) matmul_reference(&spec);
            else matmul(&spec);
            const float *want = transpose_b ? b_transposed : plain;
            for (int i = 0; i < 4; i++) ck_assert_float_eq(c[i], want[i]);
        }
    }
}
END_TEST

/* ---- Determinism -------------------------------------------------------------------- */

/* Products big enough for the threaded paths: split by blocks of C (several
 * shapes, one with more M blocks than threads, one short and wide) and split
 * by batch item.  With 1, 2 and 3 threads the bytes must be identical.
 * (Built without OpenMP, threads_set does nothing and this passes trivially.) */
START_TEST(test_matmul_same_bits_for_any_thread_count) {
    const Layout layouts[] = {
        {.batch = 1, .M = 512, .K = 512, .N = 512},
        {.batch = 1, .M = 1024, .K = 128, .N = 128},
        {.batch = 1, .M = 300, .K = 129, .N = 257, .transpose_a = true, .accumulate = true},
        {.batch = 1, .M = 20, .K = 700, .N = 1000, .transpose_b = true},
        {.batch = 8, .M = 64, .K = 64, .N = 64},
        {.batch = 3, .M = 200, .K = 200, .N = 200, .transpose_a = true, .transpose_b = true},
        {.batch = 1, .M = 600, .K = 400, .N = 520, .transpose_b = true}, /* C > 1 MiB */
    };
    int saved_threads = threads_get();
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        Problem problem = problem_build(&layouts[l], 70 + l);
        threads_set(1);
        float *single = problem_run(&problem, matmul);
        for (int threads = 2; threads <= 3; threads++) {
            threads_set(threads);
            float *multi = problem_run(&problem, matmul);
            ck_assert_msg(memcmp(single, multi, (size_t)problem.c_count * sizeof(float)) == 0,
                          "layout %zu (M=%d K=%d N=%d batch=%d): %d threads differ from 1",
                          l, layouts[l].M, layouts[l].K, layouts[l].N, layouts[l].batch,
                          threads);
            free(multi);
        }
        free(single);
        problem_free(&problem);
    }
    threads_set(saved_threads);
}
END_TEST

/* Each C[i][j] is one fixed chain of multiply-adds over k, whatever tile or
 * block it falls in: computing C one row at a time (every row an edge tile)
 * must give the same bits as computing it whole. */
START_TEST(test_matmul_row_by_row_equals_whole) {
    Layout layout = {.batch = 1, .M = 77, .K = 250, .N = 300};
    Problem problem = problem_build(&layout, 80);
    float *whole = problem_run(&problem, matmul);
    float *by_rows = copy_floats(problem.c_initial, problem.c_count + 1);
    for (int i = 0; i < layout.M; i++) {
        MatmulSpec row = problem.spec;
        row.M = 1;
        row.A = problem.a + (long)i * row.lda;
        row.C = by_rows + (long)i * row.ldc;
        matmul(&row);
    }
    ck_assert(memcmp(whole, by_rows, (size_t)problem.c_count * sizeof(float)) == 0);
    free(whole);
    free(by_rows);
    problem_free(&problem);
}
END_TEST

/* A B packed once by matmul_pack_b gives the same bits as B packed inside
 * each call: for several K blocks, ragged N, both layouts of B, a batch
 * sharing B, and 1 or 2 threads (2 threads cut C by rows or by columns, so
 * a thread starts in the middle of the packed B). */
START_TEST(test_matmul_packed_b_gives_the_same_bits) {
    const Layout layouts[] = {
        {.batch = 1, .M = 64, .K = 128, .N = 512, .transpose_b = true},
        {.batch = 1, .M = 64, .K = 500, .N = 77, .transpose_b = true, .pad_b = 3},
        {.batch = 1, .M = 300, .K = 129, .N = 257, .accumulate = true},
        {.batch = 1, .M = 20, .K = 700, .N = 1000, .transpose_b = true},
        {.batch = 1, .M = 3, .K = 17, .N = 33},
        {.batch = 4, .M = 33, .K = 65, .N = 127, .shared_b = true, .transpose_b = true},
        /* C > 1 MiB even when cut by columns for 2 threads */
        {.batch = 1, .M = 600, .K = 400, .N = 1300, .transpose_b = true},
    };
    int saved_threads = threads_get();
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        const Layout *layout = &layouts[l];
        Problem problem = problem_build(layout, 90 + l);
        float *packed = malloc(matmul_packed_b_floats(layout->K, layout->N) * sizeof(float));
        ck_assert_ptr_nonnull(packed);
        matmul_pack_b(problem.b, problem.spec.ldb, layout->transpose_b, layout->K, layout->N,
                      packed);
        for (int threads = 1; threads <= 2; threads++) {
            threads_set(threads);
            float *plain = problem_run(&problem, matmul);
            Problem with_packed = problem;
            with_packed.spec.packed_b = packed;
            float *prepacked = problem_run(&with_packed, matmul);
            ck_assert_msg(memcmp(plain, prepacked, (size_t)problem.c_count * sizeof(float)) == 0,
                          "layout %zu (M=%d K=%d N=%d tb=%d), %d threads: packed B differs",
                          l, layout->M, layout->K, layout->N, layout->transpose_b, threads);
            free(plain);
            free(prepacked);
        }
        free(packed);
        problem_free(&problem);
    }
    threads_set(saved_threads);
}
END_TEST

/* C = bias + op(A) op(B) is the same chain of sums as C = bias followed by
 * an accumulating product, so the same bits, edge tiles and K = 0 included;
 * and it matches the reference. */
START_TEST(test_matmul_bias_starts_every_row) {
    const Layout layouts[] = {
        {.batch = 1, .M = 77, .K = 250, .N = 300, .transpose_b = true},
        {.batch = 1, .M = 5, .K = 3, .N = 40},
        {.batch = 1, .M = 1024, .K = 128, .N = 128},
        {.batch = 1, .M = 9, .K = 0, .N = 33},
    };
    int saved_threads = threads_get();
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        const Layout *layout = &layouts[l];
        Problem problem = problem_build(layout, 100 + l);
        Rng rng;
        rng_seed(&rng, 110 + l, 0);
        float *bias = random_floats(&rng, layout->N);
        for (int threads = 1; threads <= 2; threads++) {
            threads_set(threads);
            /* C = bias in every row, then C += op(A) op(B) */
            Problem two_steps = problem;
            two_steps.c_initial = copy_floats(problem.c_initial, problem.c_count + 1);
            for (int i = 0; i < layout->M; i++)
                memcpy(two_steps.c_initial + (long)i * problem.spec.ldc, bias,
                       (size_t)layout->N * sizeof(float));
            two_steps.spec.accumulate = true;
            float *expected = problem_run(&two_steps, matmul);
            Problem fused = problem;
            fused.spec.bias = bias;
            float *result = problem_run(&fused, matmul);
            float *reference = problem_run(&fused, matmul_reference);
            for (long index = 0; index < problem.c_count; index++) {
                ck_assert_msg(result[index] == expected[index],
                              "layout %zu, %d threads: C[%ld] = %.9g, bias then accumulate gives %.9g",
                              l, threads, index, result[index], expected[index]);
                float tolerance = (float)(layout->K + 2) * FLT_EPSILON * (1.0f + (float)layout->K);
                ck_assert_msg(fabsf(result[index] - reference[index]) <= tolerance,
                              "layout %zu: C[%ld] = %.9g, reference %.9g", l, index,
                              result[index], reference[index]);
            }
            free(expected);
            free(result);
            free(reference);
            free(two_steps.c_initial);
        }
        free(bias);
        problem_free(&problem);
    }
    threads_set(saved_threads);
}
END_TEST

START_TEST(test_threads_set_then_get) {
    int saved = threads_get();
    ck_assert_int_ge(saved, 1);
    threads_set(2);
#ifdef _OPENMP
    ck_assert_int_eq(threads_get(), 2);
#else
    ck_assert_int_eq(threads_get(), 1);
#endif
    threads_set(saved);
    ck_assert_int_eq(threads_get(), saved);
}
END_TEST

Suite *matmul_suite(void) {
    Suite *suite = suite_create("matmul");
    TCase *tc = tcase_create("core");
    /* The reference is a plain triple loop; under sanitizers it is slow. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_matmul_known_answer_2x2);
    tcase_add_loop_test(tc, test_matmul_odd_shapes_each_transpose, 0, 4);
    tcase_add_loop_test(tc, test_matmul_large_each_transpose, 0, 4);
    tcase_add_test(tc, test_matmul_leading_dimensions_larger_than_width);
    tcase_add_test(tc, test_matmul_batched_shared_and_separate_operands);
    tcase_add_test(tc, test_matmul_k_zero_gives_zero_or_unchanged);
    tcase_add_test(tc, test_matmul_empty_output_writes_nothing);
    tcase_add_test(tc, test_matmul_same_bits_for_any_thread_count);
    tcase_add_test(tc, test_matmul_row_by_row_equals_whole);
    tcase_add_test(tc, test_matmul_packed_b_gives_the_same_bits);
    tcase_add_test(tc, test_matmul_bias_starts_every_row);
    tcase_add_test(tc, test_threads_set_then_get);
    suite_add_tcase(suite, tc);
    return suite;
}
