/* tests/coursework/grade_recursive_nn.c: grading of the TreeRNN exercises
 * (recursive_nn/model.c): the composition of a level of nodes from their
 * children, for the TreeRNN and the RNTN, and its backward.
 *
 * Both run on three small labelled trees of different shapes, so that a
 * level holds nodes of several trees and children come from several levels.
 */
#include <string.h>

#include "../../recursive_nn/recursive_nn.h"
#include "grade.h"

enum { DIM = 3, TREES = 3 };

static const char TREES_TEXT[] =
    "(3 (2 the) (3 (3 good) (2 film)))\n"
    "(1 (2 (2 not) (3 good)) (2 (2 at) (2 all)))\n"
    "(4 (3 very) (4 (4 good) (2 (2 and) (3 (3 fun) (2 film)))))\n";

typedef struct {
    Treebank bank;
    Vocab vocab;
    RecursiveModel model;
    const Tree *trees[TREES];
    Tensor *leaves; /* (L, DIM) the leaf vectors, with a gradient */
} Fixture;

static void fixture_init(Fixture *f, RecursiveModelKind kind, uint64_t seed) {
    treebank_init(&f->bank);
    Error err;
    if (!tree_parse_text(TREES_TEXT, strlen(TREES_TEXT), "grade", 5, TREE_LABELS_REQUIRED, false,
                         &f->bank, &err))
        ck_abort_msg("grade: the fixture trees do not parse: %s", err.message);
    for (int i = 0; i < TREES; i++) f->trees[i] = &f->bank.trees[i];
    vocab_init(&f->vocab);
    recursive_vocab_build(&f->vocab, &f->bank, 1);
    tree_set_words(&f->bank, &f->vocab);
    RecursiveConfig config = {.kind = kind, .dim = DIM, .classes = 5, .vocab = f->vocab.size};
    recursive_model_build(&f->model, &config);
    Rng rng;
    rng_seed(&rng, seed, 1u);
    recursive_model_init(&f->model, &rng);
    /* Weights large enough for tanh to curve, and a bias that matters. */
    for (int i = 0; i < f->model.compose->numel; i++) f->model.compose->data[i] = 0.8f * rng_normal(&rng);
    if (f->model.tensor != NULL)
        for (int i = 0; i < f->model.tensor->numel; i++) f->model.tensor->data[i] = 0.4f * rng_normal(&rng);
    int leaves = 0;
    for (int i = 0; i < TREES; i++) leaves += f->trees[i]->leaves;
    f->leaves = gradcheck_random_of("leaves", 1.0f, &rng, 2, leaves, DIM);
}

static void fixture_free(Fixture *f) {
    tensor_free(f->leaves);
    recursive_model_free(&f->model);
    vocab_free(&f->vocab);
    treebank_free(&f->bank);
}

/* in[0] is the leaves; the other inputs are the model's own parameters. */
static Tensor *compose(Graph *g, Tensor *const *in, void *context) {
    const Fixture *f = context;
    TreeBatch *batch = recursive_batch_build(g, f->trees, TREES);
    return recursive_compose(g, &f->model, batch, in[0]);
}

/* H (N, DIM) for the fixture, compared with the solution's. */
static void check_states(RecursiveModelKind kind, const char *name, uint64_t seed) {
    Fixture f;
    fixture_init(&f, kind, seed);
    Graph g;
    graph_init(&g, 1 << 18, 64);
    Tensor *H = compose(&g, &f.leaves, &f);
    grade_require_implemented("tree_compose");
    grade_compare_reference("tree_compose", name, H->data, H->numel, 1e-5f, 1e-3f);
    graph_free(&g);
    fixture_free(&f);
}

START_TEST(tree_rnn_states) { check_states(RECURSIVE_MODEL_RNN, "tree_rnn_states", 81); }
END_TEST

START_TEST(rntn_states) { check_states(RECURSIVE_MODEL_RNTN, "rntn_states", 82); }
END_TEST

static void compose_tests(TCase *tc) {
    tcase_add_test(tc, tree_rnn_states);
    tcase_add_test(tc, rntn_states);
}

static void check_gradient(RecursiveModelKind kind, const char *what, uint64_t seed) {
    Fixture f;
    fixture_init(&f, kind, seed);
    Graph g;
    graph_init(&g, 1 << 18, 64);
    compose(&g, &f.leaves, &f); /* (runs the forward's stub, if any) */
    graph_free(&g);
    grade_require_other("tree_compose_backward", "tree_compose");
    Tensor *inputs[3] = {f.leaves, f.model.compose, f.model.tensor};
    grade_gradcheck("tree_compose_backward", what, compose, &f, inputs, f.model.tensor ? 3 : 2);
    fixture_free(&f);
}

START_TEST(tree_rnn_gradient) {
    check_gradient(RECURSIVE_MODEL_RNN, "TreeRNN states wrt the leaves and [W | b]", 83);
}
END_TEST

START_TEST(rntn_gradient) {
    check_gradient(RECURSIVE_MODEL_RNTN, "RNTN states wrt the leaves, [W | b] and V", 84);
}
END_TEST

static void compose_backward_tests(TCase *tc) {
    tcase_add_test(tc, tree_rnn_gradient);
    tcase_add_test(tc, rntn_gradient);
}

const GradedExercise grade_recursive_nn_exercises[] = {
    {"tree_compose", 10, compose_tests},
    {"tree_compose_backward", 10, compose_backward_tests},
    {NULL, 0, NULL},
};
