/* tests/test_rng.c: the PCG32 generator in common/rng.c.
 *
 * Statistical checks use a fixed seed, so they are deterministic: the bounds
 * are set where a correct generator passes with a wide margin (p < 0.001 for
 * a fresh seed) and where the typical bug (modulo bias, an off-by-one in
 * Fisher-Yates, a wrong constant in Box-Muller) fails by a wide margin.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rng.h"
#include "test_suites.h"

/* Pearson's chi-square statistic sum (observed - expected)^2 / expected for
 * `bins` equally likely outcomes. */
static double chi_square_uniform(const long *observed, int bins, long draws) {
    double expected = (double)draws / bins;
    double statistic = 0.0;
    for (int i = 0; i < bins; i++) {
        double difference = (double)observed[i] - expected;
        statistic += difference * difference / expected;
    }
    return statistic;
}

/* Known answer: the first outputs of PCG32 seeded with (42, 54), computed
 * while writing this test by a separate 10-line Python implementation of
 * O'Neill's pcg32_srandom_r / pcg32_random_r (they also match the
 * reference pcg32-demo output). */
START_TEST(test_rng_known_answer_seed_42_stream_54) {
    static const uint32_t expected[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                         0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    Rng rng;
    rng_seed(&rng, 42, 54);
    for (int i = 0; i < 6; i++) ck_assert_uint_eq(rng_u32(&rng), expected[i]);
}
END_TEST

START_TEST(test_rng_same_seed_same_sequence) {
    Rng a, b;
    rng_seed(&a, 1234, 7);
    rng_seed(&b, 1234, 7);
    for (int i = 0; i < 1000; i++) ck_assert_uint_eq(rng_u32(&a), rng_u32(&b));
}
END_TEST

/* Independent 32-bit streams agree at a given draw with probability 2^-32,
 * so more than a couple of matches in 1000 draws means they are not
 * independent (e.g. the stream was ignored). */
START_TEST(test_rng_different_streams_and_seeds_differ) {
    Rng base, other_stream, other_seed;
    rng_seed(&base, 1234, 7);
    rng_seed(&other_stream, 1234, 8);
    rng_seed(&other_seed, 1235, 7);
    int same_stream_matches = 0, same_seed_matches = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t value = rng_u32(&base);
        same_stream_matches += value == rng_u32(&other_stream);
        same_seed_matches += value == rng_u32(&other_seed);
    }
    ck_assert_int_le(same_stream_matches, 2);
    ck_assert_int_le(same_seed_matches, 2);
}
END_TEST

START_TEST(test_rng_below_stays_under_bound) {
    static const uint32_t bounds[] = {1u, 2u, 3u, 7u, 1000u, 0x80000001u, 0xFFFFFFFFu};
    Rng rng;
    rng_seed(&rng, 5, 1);
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        uint32_t largest = 0;
        for (int i = 0; i < 20000; i++) {
            uint32_t value = rng_below(&rng, bounds[b]);
            if (value > largest) largest = value;
        }
        ck_assert_uint_lt(largest, bounds[b]);
    }
}
END_TEST

/* 10 bins, 100k draws: chi-square with 9 degrees of freedom has mean 9 and
 * its 99.9% quantile is 27.88. */
START_TEST(test_rng_below_is_uniform) {
    enum { BINS = 10, DRAWS = 100000 };
    long observed[BINS] = {0};
    Rng rng;
    rng_seed(&rng, 2024, 3);
    for (int i = 0; i < DRAWS; i++) observed[rng_below(&rng, BINS)]++;
    ck_assert_double_lt(chi_square_uniform(observed, BINS, DRAWS), 27.88);
}
END_TEST

/* With bound = 3 * 2^30, plain `u32 % bound` maps both [0, 2^30) and
 * [3 * 2^30, 2^32) onto the first third, making it twice as likely as the
 * others.  Unbiased draws put ~1/3 in each third (2 degrees of freedom:
 * 99.9% quantile 13.8); the biased ones give a statistic of thousands. */
START_TEST(test_rng_below_has_no_modulo_bias) {
    enum { THIRDS = 3, DRAWS = 30000 };
    const uint32_t bound = 0xC0000000u;
    long observed[THIRDS] = {0};
    Rng rng;
    rng_seed(&rng, 99, 4);
    for (int i = 0; i < DRAWS; i++) observed[rng_below(&rng, bound) >> 30]++;
    ck_assert_double_lt(chi_square_uniform(observed, THIRDS, DRAWS), 13.8);
}
END_TEST

/* The mean of n uniforms has standard deviation sqrt(1/12/n) = 0.00029 for
 * n = 1e6; we allow 5 of those. */
START_TEST(test_rng_uniform_in_unit_interval) {
    enum { DRAWS = 1000000 };
    Rng rng;
    rng_seed(&rng, 11, 0);
    double sum = 0.0;
    float smallest = 1.0f, largest = 0.0f;
    long not_on_grid = 0;
    for (int i = 0; i < DRAWS; i++) {
        float u = rng_uniform(&rng);
        /* 24 random bits: every value is a whole multiple of 2^-24. */
        not_on_grid += u * 16777216.0f != floorf(u * 16777216.0f);
        smallest = fminf(smallest, u);
        largest = fmaxf(largest, u);
        sum += u;
    }
    ck_assert_float_ge(smallest, 0.0f);
    ck_assert_float_lt(largest, 1.0f);
    ck_assert_int_eq(not_on_grid, 0);
    ck_assert_double_eq_tol(sum / DRAWS, 0.5, 5 * 0.00029);
    ck_assert_float_lt(smallest, 1e-4f); /* both ends of [0, 1) are reached */
    ck_assert_float_gt(largest, 1.0f - 1e-4f);
}
END_TEST

/* Over n = 1e5 draws from N(0,1): the sample mean has sd 1/sqrt(n) = 0.0032,
 * the sample variance sd sqrt(2/n) = 0.0045, and the fraction within one sd
 * of the mean (0.6827) has sd sqrt(p(1-p)/n) = 0.0015.  Bounds are 5 sd. */
START_TEST(test_rng_normal_moments) {
    enum { DRAWS = 100000 };
    Rng rng;
    rng_seed(&rng, 77, 2);
    double sum = 0.0, sum_squares = 0.0;
    long within_one = 0;
    for (int i = 0; i < DRAWS; i++) {
        double x = rng_normal(&rng);
        ck_assert(isfinite(x));
        sum += x;
        sum_squares += x * x;
        within_one += fabs(x) < 1.0;
    }
    double mean = sum / DRAWS;
    double variance = sum_squares / DRAWS - mean * mean;
    ck_assert_double_eq_tol(mean, 0.0, 5 * 0.0032);
    ck_assert_double_eq_tol(variance, 1.0, 5 * 0.0045);
    ck_assert_double_eq_tol((double)within_one / DRAWS, 0.6827, 5 * 0.0015);
}
END_TEST

START_TEST(test_rng_shuffle_is_a_permutation) {
    enum { COUNT = 1000 };
    int values[COUNT];
    int seen[COUNT] = {0};
    for (int i = 0; i < COUNT; i++) values[i] = i;
    Rng rng;
    rng_seed(&rng, 3, 3);
    rng_shuffle(&rng, values, COUNT);
    int fixed_points = 0;
    for (int i = 0; i < COUNT; i++) {
        ck_assert_int_ge(values[i], 0);
        ck_assert_int_lt(values[i], COUNT);
        seen[values[i]]++;
        fixed_points += values[i] == i;
    }
    for (int i = 0; i < COUNT; i++) ck_assert_int_eq(seen[i], 1);
    /* A random permutation has ~1 fixed point on average; 10 or more means
     * the shuffle barely moved anything. */
    ck_assert_int_lt(fixed_points, 10);
}
END_TEST

/* All 6 orders of 3 items must be equally likely.  An off-by-one such as
 * j = rng_below(i) instead of rng_below(i + 1) gives only the 2 cyclic
 * orders; 5 degrees of freedom: 99.9% quantile 20.5. */
START_TEST(test_rng_shuffle_is_uniform_over_orders) {
    enum { ORDERS = 6, DRAWS = 60000 };
    long observed[ORDERS] = {0};
    Rng rng;
    rng_seed(&rng, 8, 8);
    for (int i = 0; i < DRAWS; i++) {
        int values[3] = {0, 1, 2};
        rng_shuffle(&rng, values, 3);
        /* Number the order by its first two items: 3 * 2 choices. */
        int second = values[1] > values[0] ? values[1] - 1 : values[1];
        observed[values[0] * 2 + second]++;
    }
    ck_assert_double_lt(chi_square_uniform(observed, ORDERS, DRAWS), 20.5);
}
END_TEST

Suite *rng_suite(void) {
    Suite *suite = suite_create("rng");
    TCase *tcase = tcase_create("pcg32");
    tcase_add_test(tcase, test_rng_known_answer_seed_42_stream_54);
    tcase_add_test(tcase, test_rng_same_seed_same_sequence);
    tcase_add_test(tcase, test_rng_different_streams_and_seeds_differ);
    tcase_add_test(tcase, test_rng_below_stays_under_bound);
    tcase_add_test(tcase, test_rng_below_is_uniform);
    tcase_add_test(tcase, test_rng_below_has_no_modulo_bias);
    tcase_add_test(tcase, test_rng_uniform_in_unit_interval);
    tcase_add_test(tcase, test_rng_normal_moments);
    tcase_add_test(tcase, test_rng_shuffle_is_a_permutation);
    tcase_add_test(tcase, test_rng_shuffle_is_uniform_over_orders);
    suite_add_tcase(suite, tcase);
    return suite;
}
