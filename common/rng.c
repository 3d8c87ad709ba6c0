/* common/rng.c: PCG32 (O'Neill 2014, "PCG: a family of simple fast
 * space-efficient statistically good algorithms for random number
 * generation"), written from the paper's description. */
#include "rng.h"

#include <math.h>

/* The 64-bit LCG multiplier recommended for PCG (Knuth's MMIX constant). */
static const uint64_t PCG_MULTIPLIER = 6364136223846793005ULL;

void rng_seed(Rng *rng, uint64_t seed, uint64_t stream) {
    rng->state = 0;
    rng->increment = (stream << 1u) | 1u; /* must be odd */
    rng_u32(rng);
    rng->state += seed;
    rng_u32(rng);
}

uint32_t rng_u32(Rng *rng) {
    uint64_t old = rng->state;
    rng->state = old * PCG_MULTIPLIER + rng->increment;
    /* Output: xorshift the high bits down, keep 32, rotate by the top 5. */
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rotation = (uint32_t)(old >> 59u);
    return (xorshifted >> rotation) | (xorshifted << ((-rotation) & 31u));
}

uint32_t rng_below(Rng *rng, uint32_t bound) {
    /* Reject the low values that would make some results more likely:
     * 2^32 mod bound of them. */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t value = rng_u32(rng);
        if (value >= threshold) return value % bound;
    }
}

float rng_uniform(Rng *rng) {
    /* The top 24 bits fill a float's mantissa exactly: values k / 2^24. */
    return (float)(rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

float rng_normal(Rng *rng) {
    /* Box-Muller: for u1 in (0,1], u2 in [0,1),
     *   sqrt(-2 ln u1) cos(2 pi u2) ~ N(0,1).
     * The sine half is discarded so the state stays two words. */
    float u1 = 1.0f - rng_uniform(rng); /* (0, 1]: log(u1) is finite */
    float u2 = rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

void rng_shuffle(Rng *rng, int *values, int count) {
    for (int i = count - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint32_t)i + 1u);
        int swap = values[i];
        values[i] = values[j];
        values[j] = swap;
    }
}
