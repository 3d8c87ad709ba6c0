/* tests/coursework/grade_seq2seq.c: grading of the seq2seq exercises: the
 * GRU cell (seq2seq/cells.c) and the candidate selection at the heart of
 * beam search (seq2seq/model.c).
 */
#include <math.h>
#include <stdio.h>

#include "../../seq2seq/seq2seq.h"
#include "grade.h"

enum { ROWS = 3, UNITS = 4, VOCAB = 9, SOURCES = 4, SOURCE_LENGTH = 5, MAX_STEPS = 8 };

/* ==== gru_cell =================================================================== */

/* gx, gh (ROWS, 3 UNITS) and the state (1, ROWS, UNITS) from a fixed seed. */
static void seeded_step_inputs(uint64_t seed, Tensor **in) {
    Rng rng;
    rng_seed(&rng, seed, 1u);
    in[0] = gradcheck_random_of("gx", 1.0f, &rng, 2, ROWS, 3 * UNITS);
    in[1] = gradcheck_random_of("gh", 1.0f, &rng, 2, ROWS, 3 * UNITS);
    in[2] = gradcheck_random_of("state", 1.0f, &rng, 3, 1, ROWS, UNITS);
}

static Tensor *gru_step(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return seq2seq_gru_step(g, in[0], in[1], in[2], NULL);
}

static void free_inputs(Tensor **in) {
    for (int i = 0; i < 3; i++) tensor_free(in[i]);
}

START_TEST(gru_matches_reference) {
    Tensor *in[3];
    seeded_step_inputs(91, in);
    Graph g;
    graph_init(&g, 1 << 16, 16);
    Tensor *h = gru_step(&g, in, NULL);
    grade_require_implemented("gru_cell");
    grade_compare_reference("gru_cell", "gru_new_state", h->data, h->numel, 1e-5f, 1e-4f);
    graph_free(&g);
    free_inputs(in);
}
END_TEST

START_TEST(gru_gradient) {
    Tensor *in[3];
    seeded_step_inputs(92, in);
    grade_gradcheck("gru_cell", "the given backward against your forward (check the saved r, z, n)",
                    gru_step, NULL, in, 3);
    free_inputs(in);
}
END_TEST

/* common/nn.c's GRU cell from autograd ops: the same equations. */
START_TEST(gru_from_ops_matches_reference) {
    Rng rng;
    rng_seed(&rng, 94, 1u);
    ParamSet ps;
    params_init(&ps);
    GRUCell cell = gru_cell_declare(&ps, "gru", 5, UNITS);
    params_allocate(&ps);
    gru_cell_init(&cell, &rng);
    Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 2, ROWS, 5);
    Tensor *h = gradcheck_random_of("h", 1.0f, &rng, 2, ROWS, UNITS);
    Graph g;
    graph_init(&g, 1 << 16, 64);
    Tensor *h_new = gru_cell_forward(&g, &cell, x, h);
    grade_require_implemented("gru_cell");
    grade_compare_reference("gru_cell", "gru_cell_forward_new_state", h_new->data, h_new->numel,
                            1e-5f, 1e-4f);
    graph_free(&g);
    tensor_free(x);
    tensor_free(h);
    params_free(&ps);
}
END_TEST

/* Behaviour: an encoder-decoder of GRU cells learns six reversals by heart
 * within 300 Adam steps (greedy decoding then reproduces every target). */
START_TEST(gru_learns_to_reverse) {
    Seq2seqConfig config = {SEQ2SEQ_GRU, SEQ2SEQ_BAHDANAU, 1, 8, 32, VOCAB, VOCAB};
    Rng rng;
    rng_seed(&rng, 93, 1u);
    Seq2seqModel m;
    seq2seq_model_build(&m, &config, &rng);
    Seq2seqDataset data = {0};
    const int lengths[6] = {1, 2, 3, 4, 5, 3};
    for (int i = 0; i < 6; i++) {
        int source[SOURCE_LENGTH], target[SOURCE_LENGTH];
        for (int t = 0; t < lengths[i]; t++)
            source[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, VOCAB - SEQ2SEQ_SPECIALS);
        for (int t = 0; t < lengths[i]; t++) target[t] = source[lengths[i] - 1 - t];
        seq2seq_dataset_add(&data, source, lengths[i], target, lengths[i]);
    }
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, 6, SOURCE_LENGTH, SOURCE_LENGTH);
    seq2seq_batch_fill(&batch, data.pairs, NULL, 6);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &m.params);
    Graph g;
    graph_init(&g, 1 << 20, 1024);
    float loss = 0;
    for (int step = 0; step < 300; step++) {
        graph_reset(&g);
        params_zero_grad(&m.params);
        Seq2seqOutput out = seq2seq_forward(&g, &m, &batch, 1.0f, NULL);
        loss = out.loss->data[0];
        graph_backward(&g, out.loss);
        optimizer_step(&opt, &m.params, 1e-2f);
    }
    grade_require_implemented("gru_cell");
    Seq2seqScores greedy = seq2seq_evaluate(&g, &m, &data, 6, 1, 1.0f);
    ck_assert_msg(greedy.exact_match == 1.0,
                  "gru_cell: after 300 steps on six pairs to reverse, the loss is %.4f and greedy "
                  "decoding gets %.0f%% of them exactly right; a working GRU gets all", (double)loss,
                  100 * greedy.exact_match);
    graph_free(&g);
    optimizer_free(&opt);
    seq2seq_batch_free(&batch);
    seq2seq_dataset_free(&data);
    seq2seq_model_free(&m);
}
END_TEST

static void gru_tests(TCase *tc) {
    tcase_add_test(tc, gru_matches_reference);
    tcase_add_test(tc, gru_gradient);
    tcase_add_test(tc, gru_from_ops_matches_reference);
    tcase_add_test(tc, gru_learns_to_reverse);
}

/* ==== beam_search ================================================================ */

/* An untrained LSTM model (so that this grade does not depend on gru_cell)
 * with larger output weights, so that its next-token
 * distributions are peaked enough for beam and greedy to part ways. */
static void decoding_model(Seq2seqModel *m) {
    Seq2seqConfig config = {SEQ2SEQ_LSTM, SEQ2SEQ_LUONG, 1, 6, 8, VOCAB, VOCAB};
    Rng rng;
    rng_seed(&rng, 101, 1u);
    seq2seq_model_build(m, &config, &rng);
    for (int i = 0; i < m->output.weight->numel; i++) m->output.weight->data[i] *= 4.0f;
}

static void seeded_source(int which, int *source) {
    Rng rng;
    rng_seed(&rng, 102, (uint64_t)which);
    for (int t = 0; t < SOURCE_LENGTH; t++)
        source[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, VOCAB - SEQ2SEQ_SPECIALS);
}

START_TEST(beam_of_one_is_greedy) {
    Seq2seqModel m;
    decoding_model(&m);
    Graph g;
    graph_init(&g, 1 << 20, 1024);
    for (int i = 0; i < SOURCES; i++) {
        int source[SOURCE_LENGTH], beam[MAX_STEPS], greedy[MAX_STEPS], greedy_length;
        seeded_source(i, source);
        int length = seq2seq_beam_search(&g, &m, source, SOURCE_LENGTH, 1, 1.0f, MAX_STEPS, beam, NULL);
        grade_require_implemented("beam_search");
        seq2seq_greedy(&g, &m, source, (const int[]){SOURCE_LENGTH}, 1, SOURCE_LENGTH, MAX_STEPS,
                       greedy, &greedy_length, NULL);
        ck_assert_msg(length == greedy_length,
                      "beam_search: a beam of width 1 must decode as greedy does; source %d gives "
                      "%d tokens, greedy %d", i, length, greedy_length);
        for (int t = 0; t < length; t++)
            ck_assert_msg(beam[t] == greedy[t],
                          "beam_search: a beam of width 1 must decode as greedy does; source %d, "
                          "token %d: got %d, greedy %d", i, t, beam[t], greedy[t]);
    }
    graph_free(&g);
    seq2seq_model_free(&m);
}
END_TEST

/* The outputs of beams of width 3 and 4 under two length penalties, as the
 * solution decodes them: for these sources and this model they differ from
 * greedy's and from each other, and only one of the eight is empty. */
static void check_beam(int width, float length_penalty, const char *name) {
    Seq2seqModel m;
    decoding_model(&m);
    Graph g;
    graph_init(&g, 1 << 20, 1024);
    float decoded[SOURCES * (MAX_STEPS + 1)]; /* per source: length, then the tokens (0 after) */
    for (int i = 0; i < SOURCES; i++) {
        int source[SOURCE_LENGTH], out[MAX_STEPS];
        seeded_source(i, source);
        int length = seq2seq_beam_search(&g, &m, source, SOURCE_LENGTH, width, length_penalty,
                                         MAX_STEPS, out, NULL);
        float *row = decoded + i * (MAX_STEPS + 1);
        row[0] = (float)length;
        for (int t = 0; t < MAX_STEPS; t++) row[t + 1] = t < length ? (float)out[t] : 0.0f;
    }
    grade_require_implemented("beam_search");
    grade_compare_reference("beam_search", name, decoded, SOURCES * (MAX_STEPS + 1), 0.0f, 0.0f);
    graph_free(&g);
    seq2seq_model_free(&m);
}

START_TEST(beam_of_three) { check_beam(3, 1.0f, "beam3_length_and_tokens_per_source"); }
END_TEST

START_TEST(beam_of_four_favouring_length) {
    check_beam(4, 1.2f, "beam4_penalty1.2_length_and_tokens_per_source");
}
END_TEST

static void beam_tests(TCase *tc) {
    tcase_add_test(tc, beam_of_one_is_greedy);
    tcase_add_test(tc, beam_of_three);
    tcase_add_test(tc, beam_of_four_favouring_length);
}

const GradedExercise grade_seq2seq_exercises[] = {
    {"gru_cell", 10, gru_tests},
    {"beam_search", 10, beam_tests},
    {NULL, 0, NULL},
};
