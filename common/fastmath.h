/* common/fastmath.h: exp and erf written so that the compiler can
 * vectorise loops that call them, and sums in a fixed, vectorisable order.
 *
 * libm's expf and erff are exact to the last bit but opaque calls: a loop
 * of them runs one element at a time.  Softmax, cross-entropy, the exact
 * GELU (common/tensor.c), the transformer's attention and the autoencoder's
 * sigmoid loss call them millions of times per step, so these versions use
 * only arithmetic, a rounding and an integer shift, which gcc turns into
 * SIMD code (see `-fopt-info-vec`).
 *
 * exp_fast: x = k ln2 + r with |r| <= ln2/2 (k an integer), so exp(x) = 2^k exp(r); exp(r)
 *   is its Taylor polynomial of degree 7 (error below 4e-9 relative), and
 *   2^k is built directly in the float's exponent bits.  Relative error
 *   about 2e-7 (a couple of float ulps); 0 below -87.
 * erf_fast: Abramowitz & Stegun 7.1.26,
 *   erf(x) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) exp(-x^2),
 *   t = 1 / (1 + p x) for x >= 0, odd symmetry for x < 0.  Absolute error
 *   1.5e-7 in exact arithmetic, 5e-7 measured in float: far inside the 1e-4
 *   of the PyTorch parity test.
 */
#ifndef TINYZOO_FASTMATH_H
#define TINYZOO_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* GCC compiles ISO C without fusing a * b + c into one instruction; the
 * polynomial-heavy loops that call exp_fast and erf_fast allow it with this
 * attribute (as common/matmul.c's micro-kernel does): nothing is reordered,
 * each a * b + c is just rounded once instead of twice.  The same build
 * gives the same bits for any thread count. */
#if defined(__GNUC__) && !defined(__clang__)
#define FUSE_MULTIPLY_ADD __attribute__((optimize("fp-contract=fast")))
#else
#define FUSE_MULTIPLY_ADD
#endif

/* On AVX-512 machines gcc still vectorises with 256-bit registers unless
 * told otherwise (wider ones used to slow the clock on older chips).  For
 * a loop of many transcendentals per element, such as a recurrent cell,
 * the 512-bit form measured 1.3x faster here; the micro-kernel in
 * common/matmul.c uses 512-bit registers already.  Nothing else changes:
 * each element is still computed by the same operations in the same order,
 * so the bits are the same either way. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#define WIDE_VECTORS __attribute__((target("prefer-vector-width=512")))
#else
#define WIDE_VECTORS
#endif

/* e^x for x already in [-87, 88], not NaN: the caller has clamped it.
 * exp_fast below is this plus the clamping; a caller that knows the range
 * of its argument (the recurrent cells' sigmoid) clamps more cheaply. */
static inline float exp_in_range(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
    /* k = round(x / ln2).  Adding and removing 1.5 * 2^23 rounds to the
     * nearest integer (the float has no bits left for a fraction); unlike
     * floorf() this needs no libm call, so the loop stays vectorised. */
    const float round_magic = 12582912.0f;
    float k = (x * log2e + round_magic) - round_magic;
    float r = (x - k * ln2_hi) - k * ln2_lo; /* |r| <= ln2/2, in two steps for accuracy */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23; /* the float 2^k */
    float two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    return p * two_k;
}

static inline float exp_fast(float x) {
    /* A NaN fails every comparison, so it is clamped to -87 here: the
     * integer conversion of k in exp_in_range must never see a NaN (that
     * is undefined behaviour); the NaN itself is returned at the end. */
    float clamped = x > -87.0f ? (x < 88.0f ? x : 88.0f) : -87.0f;
    float result = x < -87.0f ? 0.0f : exp_in_range(clamped);
    return x == x ? result : x; /* NaN in, NaN out, for --check-numerics */
}

/* erf(x) given exp(-x^2), for a caller that has it already. */
static inline float erf_from_exp(float x, float exp_minus_x2) {
    const float p = 0.3275911f, a1 = 0.254829592f, a2 = -0.284496736f, a3 = 1.421413741f,
                a4 = -1.453152027f, a5 = 1.061405429f;
    float t = 1.0f / (1.0f + p * fabsf(x));
    float poly = ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t;
    float y = 1.0f - poly * exp_minus_x2;
    return x < 0 ? -y : y;
}

static inline float erf_fast(float x) { return erf_from_exp(x, exp_fast(-x * x)); }

/* Sums in a fixed order that the compiler can vectorise: LANES running
 * partial sums (lane k takes elements k, k + LANES, ...), added together at
 * the end.  A plain `total += x[i]` loop is one long chain of dependent
 * additions that C forbids reordering; this order is just as deterministic
 * (it depends on n only, never on threads) and LANES times shorter. */
enum { LANES = 16 };

static inline float lanes_total(const float *lanes) {
    float total = 0.0f;
    for (int k = 0; k < LANES; k++) total += lanes[k];
    return total;
}

/* the largest of x[0..n), n >= 1 */
static inline float max_fast(const float *restrict x, int n) {
    float lanes[LANES];
    for (int k = 0; k < LANES; k++) lanes[k] = x[0];
    int blocked = n - n % LANES;
    for (int i = 0; i < blocked; i += LANES)
        for (int k = 0; k < LANES; k++) lanes[k] = x[i + k] > lanes[k] ? x[i + k] : lanes[k];
    for (int i = blocked; i < n; i++) lanes[0] = x[i] > lanes[0] ? x[i] : lanes[0];
    float highest = lanes[0];
    for (int k = 1; k < LANES; k++) highest = lanes[k] > highest ? lanes[k] : highest;
    return highest;
}

/* sum of x[0..n) */
static inline float sum_fast(const float *restrict x, int n) {
    float lanes[LANES] = {0};
    int blocked = n - n % LANES;
    for (int i = 0; i < blocked; i += LANES)
        for (int k = 0; k < LANES; k++) lanes[k] += x[i + k];
    for (int i = blocked; i < n; i++) lanes[i - blocked] += x[i];
    return lanes_total(lanes);
}

/* sum of x[i] y[i] over [0, n) */
static inline float dot_fast(const float *restrict x, const float *restrict y, int n) {
    float lanes[LANES] = {0};
    int blocked = n - n % LANES;
    for (int i = 0; i < blocked; i += LANES)
        for (int k = 0; k < LANES; k++) lanes[k] += x[i + k] * y[i + k];
    for (int i = blocked; i < n; i++) lanes[i - blocked] += x[i] * y[i];
    return lanes_total(lanes);
}

#endif
