/* tests/coursework/grade_transformer.c: grading of the transformer's
 * attention exercises (transformer/attention.c).
 *
 * attention_forward is graded without any mask (no causal mask, no
 * padding), so that its grade does not depend on causal_mask; causal_mask
 * is graded through the attention op, once attention_forward works, and
 * against generation's cached attention, which needs no mask.  Forward is
 * also checked against finite differences through the given backward.
 */
#include <stdio.h>

#include "../../transformer/transformer.h"
#include "grade.h"

enum { BATCH = 2, TIME = 5, HEADS = 2, HEAD_SIZE = 3, CHANNELS = HEADS * HEAD_SIZE };

typedef struct {
    bool causal;
    const int *lengths; /* (BATCH) or NULL */
} AttentionCase;

static Tensor *attention(Graph *g, Tensor *const *in, void *context) {
    const AttentionCase *c = context;
    return transformer_attention(g, in[0], HEADS, c->causal, c->lengths, NULL);
}

/* qkv (BATCH, TIME, 3C) from a fixed seed, scaled so the softmax is not flat. */
static Tensor *seeded_qkv(uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed, 1u);
    return gradcheck_random_of("qkv", 1.5f, &rng, 3, BATCH, TIME, 3 * CHANNELS);
}

/* Runs the op once; copies out (BATCH*TIME*C) and the probabilities (BATCH*H*T*T). */
static void run_attention(const AttentionCase *c, uint64_t seed, float *out, float *probabilities) {
    Tensor *qkv = seeded_qkv(seed);
    Graph g;
    graph_init(&g, 1 << 20, 64);
    float *p = NULL;
    Tensor *y = transformer_attention(&g, qkv, HEADS, c->causal, c->lengths, &p);
    for (int i = 0; i < y->numel; i++) out[i] = y->data[i];
    for (int i = 0; i < BATCH * HEADS * TIME * TIME; i++) probabilities[i] = p[i];
    graph_free(&g);
    tensor_free(qkv);
}

/* Every row of every head's probabilities sums to 1 over its visible keys. */
static void check_rows_sum_to_one(const char *id, const float *probabilities) {
    for (int row = 0; row < BATCH * HEADS * TIME; row++) {
        double sum = 0;
        for (int j = 0; j < TIME; j++) sum += probabilities[row * TIME + j];
        ck_assert_msg(sum > 0.999 && sum < 1.001,
                      "%s: the attention probabilities of query %d (batch row %d, head %d) sum to "
                      "%.6f, not 1", id, row % TIME, row / (HEADS * TIME), row / TIME % HEADS, sum);
    }
}

/* ==== attention_forward ========================================================== */

START_TEST(attention_matches_reference) {
    AttentionCase c = {.causal = false};
    float out[BATCH * TIME * CHANNELS], probabilities[BATCH * HEADS * TIME * TIME];
    run_attention(&c, 61, out, probabilities);
    grade_require_implemented("attention_forward");
    check_rows_sum_to_one("attention_forward", probabilities);
    grade_compare_reference("attention_forward", "attention_probabilities", probabilities,
                            BATCH * HEADS * TIME * TIME, 1e-5f, 1e-3f);
    grade_compare_reference("attention_forward", "attention_output", out, BATCH * TIME * CHANNELS,
                            1e-5f, 1e-3f);
}
END_TEST

START_TEST(attention_equal_keys_average_values) {
    /* Keys all equal: every query weighs the values equally, so each output
     * is the mean of the values of its head. */
    Tensor *qkv = seeded_qkv(62);
    for (int b = 0; b < BATCH; b++)
        for (int t = 1; t < TIME; t++)
            for (int k = 0; k < CHANNELS; k++) {
                float *row = qkv->data + ((size_t)b * TIME + t) * 3 * CHANNELS;
                row[CHANNELS + k] = qkv->data[(size_t)b * TIME * 3 * CHANNELS + CHANNELS + k];
            }
    Graph g;
    graph_init(&g, 1 << 20, 64);
    Tensor *y = transformer_attention(&g, qkv, HEADS, false, NULL, NULL);
    grade_require_implemented("attention_forward");
    for (int b = 0; b < BATCH; b++)
        for (int k = 0; k < CHANNELS; k++) {
            double mean = 0;
            for (int t = 0; t < TIME; t++) mean += qkv->data[((size_t)b * TIME + t) * 3 * CHANNELS + 2 * CHANNELS + k];
            mean /= TIME;
            for (int t = 0; t < TIME; t++) {
                float got = y->data[((size_t)b * TIME + t) * CHANNELS + k];
                ck_assert_msg(got > mean - 1e-4 && got < mean + 1e-4,
                              "attention_forward: with every key equal, output (batch %d, time %d, "
                              "channel %d) should be the mean of the values, %.6f; got %.6f",
                              b, t, k, mean, (double)got);
            }
        }
    graph_free(&g);
    tensor_free(qkv);
}
END_TEST

START_TEST(attention_gradient) {
    AttentionCase c = {.causal = false};
    Tensor *qkv = seeded_qkv(63);
    grade_gradcheck("attention_forward", "the given backward against your forward", attention, &c,
                    &qkv, 1);
    tensor_free(qkv);
}
END_TEST

/* Generation's one-query attention against the cache: the last position
 * sees every key, so it must give the last row of the full (unmasked) op. */
START_TEST(attention_cached_matches_full) {
    Tensor *qkv = seeded_qkv(67);
    Graph g;
    graph_init(&g, 1 << 20, 64);
    Tensor *full = transformer_attention(&g, qkv, HEADS, false, NULL, NULL); /* (B, T, C) */
    float keys[TIME * CHANNELS], values[TIME * CHANNELS], out[CHANNELS];
    for (int b = 0; b < BATCH; b++) {
        for (int t = 0; t < TIME; t++)
            transformer_attention_cached(qkv->data + ((size_t)b * TIME + t) * 3 * CHANNELS, keys,
                                         values, t, CHANNELS, HEADS, out, NULL);
        grade_require_implemented("attention_forward");
        const float *last = full->data + ((size_t)b * TIME + TIME - 1) * CHANNELS;
        for (int k = 0; k < CHANNELS; k++)
            ck_assert_msg(out[k] > last[k] - 1e-4f && out[k] < last[k] + 1e-4f,
                          "attention_forward: transformer_attention_cached at the last position "
                          "(batch row %d) gives %.6f in channel %d; the full attention gives %.6f",
                          b, (double)out[k], k, (double)last[k]);
    }
    graph_free(&g);
    tensor_free(qkv);
}
END_TEST

static void attention_tests(TCase *tc) {
    tcase_add_test(tc, attention_matches_reference);
    tcase_add_test(tc, attention_cached_matches_full);
    tcase_add_test(tc, attention_equal_keys_average_values);
    tcase_add_test(tc, attention_gradient);
}

/* ==== causal_mask ================================================================ */

/* Probability that query i gives key j, for batch row b and head h. */
static float probability(const float *p, int b, int h, int i, int j) {
    return p[(((size_t)b * HEADS + h) * TIME + i) * TIME + j];
}

/* No query attends to a key after it (nor past its row's length). */
static void check_no_future(const float *p, const int *lengths) {
    for (int b = 0; b < BATCH; b++)
        for (int h = 0; h < HEADS; h++)
            for (int i = 0; i < TIME; i++)
                for (int j = 0; j < TIME; j++) {
                    int length = lengths ? lengths[b] : TIME;
                    bool hidden = j > i || j >= length;
                    float value = probability(p, b, h, i, j);
                    ck_assert_msg(!hidden || value == 0.0f,
                                  "causal_mask: query %d (batch row %d, head %d) attends to key %d "
                                  "with probability %.4f; it must not see keys %s", i, b, h, j,
                                  (double)value, j > i ? "after itself" : "past its row's length");
                    ck_assert_msg(hidden || value > 0.0f,
                                  "causal_mask: query %d (batch row %d, head %d) gives key %d "
                                  "probability 0, but may see it", i, b, h, j);
                }
}

static void check_causal(const int *lengths, const char *name) {
    AttentionCase c = {.causal = true, .lengths = lengths};
    float out[BATCH * TIME * CHANNELS], probabilities[BATCH * HEADS * TIME * TIME];
    run_attention(&c, 64, out, probabilities);
    grade_require_implemented("causal_mask");
    grade_require_other("causal_mask", "attention_forward");
    check_no_future(probabilities, lengths);
    check_rows_sum_to_one("causal_mask", probabilities);
    char label[64];
    snprintf(label, sizeof label, "%s_output", name);
    grade_compare_reference("causal_mask", label, out, BATCH * TIME * CHANNELS, 1e-5f, 1e-3f);
}

START_TEST(causal_no_future) { check_causal(NULL, "causal"); }
END_TEST

START_TEST(causal_with_padding) {
    const int lengths[BATCH] = {TIME, 3};
    check_causal(lengths, "causal_padded");
}
END_TEST

START_TEST(padding_without_causal) {
    const int lengths[BATCH] = {4, 2};
    AttentionCase c = {.causal = false, .lengths = lengths};
    float out[BATCH * TIME * CHANNELS], probabilities[BATCH * HEADS * TIME * TIME];
    run_attention(&c, 65, out, probabilities);
    grade_require_implemented("causal_mask");
    grade_require_other("causal_mask", "attention_forward");
    for (int b = 0; b < BATCH; b++)
        for (int h = 0; h < HEADS; h++)
            for (int i = 0; i < TIME; i++)
                for (int j = 0; j < TIME; j++) {
                    float value = probability(probabilities, b, h, i, j);
                    ck_assert_msg((j >= lengths[b]) == (value == 0.0f),
                                  "causal_mask: without the causal flag, query %d (batch row %d, "
                                  "head %d) must see keys 0..%d and no more; key %d has "
                                  "probability %.4f", i, b, h, lengths[b] - 1, j, (double)value);
                }
}
END_TEST

/* Generation attends to the cached past only, with no mask at all: the
 * causal op's row t must equal the cached attention at position t. */
START_TEST(causal_matches_generation) {
    AttentionCase c = {.causal = true};
    float out[BATCH * TIME * CHANNELS], probabilities[BATCH * HEADS * TIME * TIME];
    run_attention(&c, 66, out, probabilities);
    grade_require_implemented("causal_mask");
    grade_require_other("causal_mask", "attention_forward");
    Tensor *qkv = seeded_qkv(66);
    float keys[TIME * CHANNELS], values[TIME * CHANNELS], steps[BATCH * TIME * CHANNELS];
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < TIME; t++)
            transformer_attention_cached(qkv->data + ((size_t)b * TIME + t) * 3 * CHANNELS, keys,
                                         values, t, CHANNELS, HEADS,
                                         steps + ((size_t)b * TIME + t) * CHANNELS, NULL);
    grade_require_other("causal_mask", "attention_forward"); /* (the cached one, too) */
    for (int r = 0; r < BATCH * TIME; r++)
        for (int k = 0; k < CHANNELS; k++) {
            float full = out[r * CHANNELS + k], step = steps[r * CHANNELS + k];
            ck_assert_msg(full > step - 1e-4f && full < step + 1e-4f,
                          "causal_mask: causal attention at position %d (batch row %d) gives %.6f "
                          "in channel %d, but generating token by token, which sees keys 0..%d "
                          "only, gives %.6f", r % TIME, r / TIME, (double)full, k, r % TIME,
                          (double)step);
        }
    tensor_free(qkv);
}
END_TEST

static void causal_tests(TCase *tc) {
    tcase_add_test(tc, causal_no_future);
    tcase_add_test(tc, causal_with_padding);
    tcase_add_test(tc, padding_without_causal);
    tcase_add_test(tc, causal_matches_generation);
}

const GradedExercise grade_transformer_exercises[] = {
    {"attention_forward", 10, attention_tests},
    {"causal_mask", 10, causal_tests},
    {NULL, 0, NULL},
};
