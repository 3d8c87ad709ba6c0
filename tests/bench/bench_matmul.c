/* tests/bench/bench_matmul.c: how fast is matmul(), next to OpenBLAS sgemm?
 *
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bin/bench_matmul [--csv FILE]
 *
 * (`make bench` runs it that way: OPENBLAS_CORETYPE would pin OpenBLAS to
 * an older, slower kernel and make the comparison flattering.)
 *
 * For every shape and every thread count in --threads, prints GFLOP/s of
 * tinyzoo and of OpenBLAS (when the build found it; HAVE_OPENBLAS), measured
 * in the same run on the same data, and their ratio.  The shapes are square
 * sizes, then the products a small model's training step makes: a batch of
 * 1024 rows times weight matrices of 64..1024 columns, and batched
 * attention-sized products.
 *
 * Timing: a case is run once to warm caches, threads and packing buffers,
 * then in groups of calls long enough to time reliably; groups are repeated
 * until --seconds have passed, and the fastest group counts (the least
 * disturbed by other processes).  GFLOP/s = 2*batch*M*N*K / seconds / 1e9.
 *
 * Legend: op(A) is (M,K), op(B) is (K,N), C is (M,N); a shape is written
 * MxKxN, with "batch x" in front when there are several products.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "matmul.h"
#include "rng.h"
#include "util.h"

#ifdef HAVE_OPENBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads); /* in case cblas.h lacks it */
#endif

enum { MAX_THREAD_COUNTS = 8 };

/* ---- The shapes ---------------------------------------------------------------- */

typedef struct {
    const char *group;  /* "square", "train", "backward", "attention" or "recurrent" */
    int batch, M, K, N;
    bool transpose_a;   /* A stored (K,M)  */
    bool transpose_b;   /* B stored (N,K)  */
} BenchShape;

static const BenchShape SHAPES[] = {
    {"square", 1, 64, 64, 64, false, false},
    {"square", 1, 128, 128, 128, false, false},
    {"square", 1, 256, 256, 256, false, false},
    {"square", 1, 512, 512, 512, false, false},
    {"square", 1, 1024, 1024, 1024, false, false},
    /* A batch of 1024 rows (e.g. 32 sequences of 32 tokens) through linear
     * layers of K inputs and N outputs. */
    {"train", 1, 1024, 64, 64, false, false},
    {"train", 1, 1024, 64, 128, false, false},
    {"train", 1, 1024, 64, 256, false, false},
    {"train", 1, 1024, 128, 64, false, false},
    {"train", 1, 1024, 128, 128, false, false},
    {"train", 1, 1024, 128, 256, false, false},
    {"train", 1, 1024, 256, 64, false, false},
    {"train", 1, 1024, 256, 128, false, false},
    {"train", 1, 1024, 256, 256, false, false},
    {"train", 1, 1024, 256, 1024, false, false}, /* MLP up-projection   */
    {"train", 1, 1024, 1024, 256, false, false}, /* MLP down-projection */
    /* The backward pass of a (1024 rows, 256 in, 256 out) linear layer:
     * dW = X^T @ dY and dX = dY @ W^T (W stored (out, in)). */
    {"backward", 1, 256, 1024, 256, true, false},
    {"backward", 1, 1024, 256, 256, false, true},
    /* Small products: attention scores (T,d) @ (d,T) for 64 (sequence, head)
     * pairs with T = d = 32 in one batched call; one (64,128) @ (128,32). */
    {"attention", 64, 32, 32, 32, false, false},
    {"attention", 1, 64, 128, 32, false, false},
    /* One time step of the seq2seq bench's LSTM (batch 64, hidden 128, 4
     * gates): gh = h W_hh^T, then backward's dh = dgh W_hh and
     * dW_hh += dgh^T h; last, the alternative of dW_hh for all 12 steps in
     * one product (K = 12 * 64), which measured no faster. */
    {"recurrent", 1, 64, 128, 512, false, true},
    {"recurrent", 1, 64, 512, 128, false, false},
    {"recurrent", 1, 512, 64, 128, true, false},
    {"recurrent", 1, 512, 768, 128, true, false},
};
enum { SHAPE_COUNT = sizeof SHAPES / sizeof SHAPES[0] };

/* ---- One case: the matrices of one shape ------------------------------------- */

typedef struct {
    BenchShape shape;
    float *A;  /* (batch,M,K) */
    float *B;  /* (batch,K,N) */
    float *C;  /* (batch,M,N) */
} BenchCase;

static float *random_matrix(Rng *rng, long count) {
    /* Filling the buffer also touches every page before any timing. */
    float *data = xmalloc((size_t)count * sizeof(float));
    for (long i = 0; i < count; i++) data[i] = 2.0f * rng_uniform(rng) - 1.0f;
    return data;
}

static BenchCase bench_case_build(const BenchShape *shape, Rng *rng) {
    BenchCase bench = {.shape = *shape};
    long batch = shape->batch;
    bench.A = random_matrix(rng, batch * shape->M * shape->K);
    bench.B = random_matrix(rng, batch * shape->K * shape->N);
    bench.C = random_matrix(rng, batch * shape->M * shape->N);
    return bench;
}

static void bench_case_free(BenchCase *bench) {
    free(bench->A);
    free(bench->B);
    free(bench->C);
}

static void run_tinyzoo(const BenchCase *bench) {
    const BenchShape *s = &bench->shape;
    MatmulSpec spec = {
        .batch = s->batch, .M = s->M, .N = s->N, .K = s->K,
        .A = bench->A, .lda = s->transpose_a ? s->M : s->K, .stride_a = (long)s->M * s->K,
        .transpose_a = s->transpose_a,
        .B = bench->B, .ldb = s->transpose_b ? s->K : s->N, .stride_b = (long)s->K * s->N,
        .transpose_b = s->transpose_b,
        .C = bench->C, .ldc = s->N, .stride_c = (long)s->M * s->N,
    };
    matmul(&spec);
}

#ifdef HAVE_OPENBLAS
/* The batch as a loop of sgemm calls, as a caller without batched BLAS would. */
static void run_openblas(const BenchCase *bench) {
    const BenchShape *s = &bench->shape;
    for (int item = 0; item < s->batch; item++) {
        cblas_sgemm(CblasRowMajor, s->transpose_a ? CblasTrans : CblasNoTrans,
                    s->transpose_b ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f,
                    bench->A + (long)item * s->M * s->K, s->transpose_a ? s->M : s->K,
                    bench->B + (long)item * s->K * s->N, s->transpose_b ? s->K : s->N, 0.0f,
                    bench->C + (long)item * s->M * s->N, s->N);
    }
}
#endif

/* ---- Timing ------------------------------------------------------------------------ */

/* Seconds per call of run(bench): the fastest of repeated groups of calls,
 * each group long enough (about 1/20 of the budget) for the clock. */
static double seconds_per_call(void (*run)(const BenchCase *), const BenchCase *bench,
                               double budget) {
    run(bench); /* warm up: caches, thread pool, packing buffers */
    long calls = 1;
    double elapsed;
    for (;;) {
        double start = time_seconds();
        for (long i = 0; i < calls; i++) run(bench);
        elapsed = time_seconds() - start;
        if (elapsed >= budget / 20 || calls >= (1L << 24)) break;
        calls *= 2;
    }
    double best = elapsed / (double)calls;
    double deadline = time_seconds() + budget;
    for (int group = 0; group < 3 || time_seconds() < deadline; group++) {
        double start = time_seconds();
        for (long i = 0; i < calls; i++) run(bench);
        double per_call = (time_seconds() - start) / (double)calls;
        if (per_call < best) best = per_call;
    }
    return best;
}

static double gflops(const BenchShape *shape, double seconds) {
    return 2.0 * shape->batch * shape->M * shape->N * (double)shape->K / seconds / 1e9;
}

/* ---- Command line ------------------------------------------------------------------ */

typedef struct {
    bool quick;            /* short run: smaller time budget            */
    const char *csv_path;  /* also write results here ("" = no CSV)     */
    const char *threads;   /* comma-separated thread counts             */
    float seconds;         /* time budget per (shape, library, threads) */
} BenchOptions;

/* Parses "1,2" into counts; false with a message for anything else. */
static bool parse_thread_list(const char *text, int *counts, int *count, Error *err) {
    *count = 0;
    const char *cursor = text;
    while (*cursor != '\0') {
        char *end;
        long value = strtol(cursor, &end, 10);
        if (end == cursor || value < 1 || value > 1024 || (*end != ',' && *end != '\0')) {
            return error_set(err, "--threads: expected thread counts like 1,2, got '%s'", text);
        }
        if (*count == MAX_THREAD_COUNTS) {
            return error_set(err, "--threads: at most %d thread counts", MAX_THREAD_COUNTS);
        }
        counts[(*count)++] = (int)value;
        cursor = *end == ',' ? end + 1 : end;
    }
    if (*count == 0) return error_set(err, "--threads: expected thread counts like 1,2, got ''");
    return true;
}

/* ---- Results ----------------------------------------------------------------------- */

typedef struct {
    double tinyzoo;   /* GFLOP/s                                  */
    double openblas;  /* GFLOP/s, 0 without OpenBLAS              */
} BenchResult;

/* "MxKxN", "batchx(MxKxN)", with " A^T" / " B^T" for transposed operands. */
static void shape_name(const BenchShape *shape, char *name, size_t size) {
    const char *a_t = shape->transpose_a ? " A^T" : "", *b_t = shape->transpose_b ? " B^T" : "";
    if (shape->batch > 1) {
        snprintf(name, size, "%dx(%dx%dx%d)%s%s", shape->batch, shape->M, shape->K, shape->N, a_t,
                 b_t);
    } else {
        snprintf(name, size, "%dx%dx%d%s%s", shape->M, shape->K, shape->N, a_t, b_t);
    }
}

static void print_header(const int *threads, int thread_count) {
    printf("%-10s %-22s", "group", "MxKxN");
    for (int t = 0; t < thread_count; t++) printf("  tz %2dthr", threads[t]);
#ifdef HAVE_OPENBLAS
    for (int t = 0; t < thread_count; t++) printf("  ob %2dthr", threads[t]);
    for (int t = 0; t < thread_count; t++) printf("  tz/ob %2d", threads[t]);
#endif
    if (thread_count > 1) printf("  tz %d/%d", threads[thread_count - 1], threads[0]);
    printf("   (GFLOP/s)\n");
}

static void print_row(const BenchShape *shape, const BenchResult *results, int thread_count) {
    char name[64];
    shape_name(shape, name, sizeof name);
    printf("%-10s %-22s", shape->group, name);
    for (int t = 0; t < thread_count; t++) printf("  %9.1f", results[t].tinyzoo);
#ifdef HAVE_OPENBLAS
    for (int t = 0; t < thread_count; t++) printf("  %9.1f", results[t].openblas);
    for (int t = 0; t < thread_count; t++) {
        printf("  %9.2f", results[t].tinyzoo / results[t].openblas);
    }
#endif
    if (thread_count > 1) {
        printf("  %6.2fx", results[thread_count - 1].tinyzoo / results[0].tinyzoo);
    }
    printf("\n");
    fflush(stdout);
}

static void csv_write_row(FILE *csv, const BenchShape *shape, int threads,
                          const BenchResult *result) {
    fprintf(csv, "%s,%d,%d,%d,%d,%d,%d,%d,%.3f,", shape->group, shape->batch, shape->M, shape->K,
            shape->N, shape->transpose_a, shape->transpose_b, threads, result->tinyzoo);
    if (result->openblas > 0) {
        fprintf(csv, "%.3f,%.4f\n", result->openblas, result->tinyzoo / result->openblas);
    } else {
        fprintf(csv, ",\n");
    }
}

/* ---- Main -------------------------------------------------------------------------- */

#ifdef HAVE_OPENBLAS
/* Both libraries computed C from the same A and B: a wrong kernel would
 * make its speed meaningless, so say so.  Tolerance: K float roundings. */
static void check_against_openblas(const BenchCase *bench) {
    const BenchShape *s = &bench->shape;
    long count = (long)s->batch * s->M * s->N;
    float *expected = xmalloc((size_t)count * sizeof(float));
    run_openblas(bench);
    memcpy(expected, bench->C, (size_t)count * sizeof(float));
    run_tinyzoo(bench);
    double worst = 0.0;
    for (long i = 0; i < count; i++) worst = fmax(worst, fabs(bench->C[i] - expected[i]));
    /* Entries are sums of K products of values in [-1,1). */
    if (worst > 1e-5 * s->K) {
        fprintf(stderr, "bench_matmul: WARNING: %dx%dx%d differs from OpenBLAS by %g\n", s->M,
                s->K, s->N, worst);
    }
    free(expected);
}
#endif

static BenchResult bench_one(const BenchCase *bench, int threads, double budget) {
    BenchResult result = {0.0, 0.0};
    threads_set(threads);
    result.tinyzoo = gflops(&bench->shape, seconds_per_call(run_tinyzoo, bench, budget));
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads(threads);
    result.openblas = gflops(&bench->shape, seconds_per_call(run_openblas, bench, budget));
#endif
    return result;
}

int main(int argc, char **argv) {
    BenchOptions options = {.quick = false, .csv_path = "", .threads = "", .seconds = 0.2f};
    char default_threads[32];
    snprintf(default_threads, sizeof default_threads, "1,%d", threads_get());
    options.threads = threads_get() > 1 ? default_threads : "1";
    Option table[] = {
        {"quick", OPTION_FLAG, &options.quick, "short run (0.02 s per measurement)", NULL, 0, 0},
        {"csv", OPTION_STRING, &options.csv_path, "also write the results to this CSV file",
         NULL, 0, 0},
        {"threads", OPTION_STRING, &options.threads, "comma-separated thread counts to measure",
         NULL, 0, 0},
        {"seconds", OPTION_FLOAT, &options.seconds, "time budget per measurement", NULL, 0.001,
         60},
    };
    options_parse_or_exit(argc, argv, 1, table, (int)(sizeof table / sizeof table[0]),
                          "bench_matmul [options]");
    int threads[MAX_THREAD_COUNTS], thread_count;
    Error err;
    if (!parse_thread_list(options.threads, threads, &thread_count, &err)) {
        fprintf(stderr, "bench_matmul: %s (see --help)\n", err.message);
        return EXIT_USAGE_ERROR;
    }
    double budget = options.quick ? 0.02 : options.seconds;

    FILE *csv = NULL;
    if (options.csv_path[0] != '\0') {
        csv = fopen(options.csv_path, "w");
        if (csv == NULL) {
            fprintf(stderr, "bench_matmul: cannot write --csv %s\n", options.csv_path);
            return EXIT_RUNTIME_ERROR;
        }
        fprintf(csv, "group,batch,M,K,N,transpose_a,transpose_b,threads,tinyzoo_gflops,"
                     "openblas_gflops,ratio\n");
    }
    print_header(threads, thread_count);
    Rng rng;
    rng_seed(&rng, 1234, 0);
    for (int s = 0; s < SHAPE_COUNT; s++) {
        BenchCase bench = bench_case_build(&SHAPES[s], &rng);
#ifdef HAVE_OPENBLAS
        check_against_openblas(&bench);
#endif
        BenchResult results[MAX_THREAD_COUNTS];
        for (int t = 0; t < thread_count; t++) {
            results[t] = bench_one(&bench, threads[t], budget);
            if (csv != NULL) csv_write_row(csv, &SHAPES[s], threads[t], &results[t]);
        }
        print_row(&SHAPES[s], results, thread_count);
        bench_case_free(&bench);
    }
    if (csv != NULL && fclose(csv) != 0) {
        fprintf(stderr, "bench_matmul: error writing --csv %s\n", options.csv_path);
        return EXIT_RUNTIME_ERROR;
    }
    return EXIT_SUCCESS;
}
