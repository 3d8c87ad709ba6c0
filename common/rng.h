/* common/rng.h: one small seedable random number generator (PCG32).
 *
 * The state is always passed explicitly, never global, so a seed reproduces a
 * run bit for bit, and no thread ever touches another's generator.
 * PCG32 (O'Neill, 2014): a 64-bit linear congruential state, output through a
 * xorshift and a random rotation.  Two words of state, very good statistics.
 */
#ifndef TINYZOO_RNG_H
#define TINYZOO_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;     /* the LCG state, advanced on every draw            */
    uint64_t increment; /* odd; selects one of 2^63 independent streams      */
} Rng;

/* Seeds a generator.  Different `stream`s with the same seed give
 * independent sequences (used to give data and model their own streams). */
void rng_seed(Rng *rng, uint64_t seed, uint64_t stream);
uint32_t rng_u32(Rng *rng);
/* Uniform integer in [0, bound), without modulo bias. bound > 0. */
uint32_t rng_below(Rng *rng, uint32_t bound);
/* Uniform float in [0, 1), 24 random bits. */
float rng_uniform(Rng *rng);
/* Standard normal N(0, 1) by the Box-Muller transform. */
float rng_normal(Rng *rng);
/* Fisher-Yates shuffle of `count` ints in place. */
void rng_shuffle(Rng *rng, int *values, int count);

#endif
