/* common/sentiment.c: the generated sentiment treebank (see sentiment.h).
 *
 * Legend: W words in a clause, S sentiment score in {-2,-1,0,+1,+2}; the
 * SST label of a node is S + 2 (0 very negative ... 4 very positive).
 *
 * The grammar.  A sentence is one clause, or two joined by "but":
 *   sentence -> clause | clause "but" clause
 *   clause   -> subject verb [negation] [intensifier] adjective
 *   subject  -> determiner noun | "it"
 * e.g. "the plot is not very good", "it was dull but the ending is great".
 *
 * The trees.  A clause is binarized right-branching, as the header's example
 * shows: (the (movie (is (not good)))).  So every internal node of a clause
 * joins one word (its left child) to the phrase on its right, and its label
 * follows from that word's kind and the right phrase's score R:
 *   neutral word   (the, movie, is)      S = R
 *   intensifier    (very, really, ...)   S = 2 sign(R)    "very good" = +2
 *   negation       (not, never)          S = -sign(R)     flips, and softens
 *                                        a strong score:  "not good" = -1,
 *                                        "not bad" = +1, "not very bad" = +1,
 *                                        "not great" = -1
 * A contrast joins two clauses X and Y as (X (but Y)):
 *   (but Y)        S = S(Y)
 *   (X (but Y))    S = S(Y) when S(Y) != 0, else S(X): Y dominates.
 * Leaves carry the word's own score from the lexicon (function words 0).
 *
 * Each split (train, dev, test, probe) draws from its own Rng stream of the
 * seed, so the dev and test sets do not change when train_count does.
 */
#include "sentiment.h"
#include "json.h" /* StringBuilder */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "util.h"

/* ---- Lexicon --------------------------------------------------------------- */

typedef enum { WORD_NEUTRAL, WORD_INTENSIFIER, WORD_NEGATION } WordKind;

typedef struct {
    const char *text;
    int score; /* S of the leaf */
} LexiconWord;

static const LexiconWord ADJECTIVES[] = {
    {"good", 1},      {"fun", 1},      {"nice", 1},       {"enjoyable", 1}, {"charming", 1},
    {"clever", 1},    {"pleasant", 1}, {"great", 2},      {"excellent", 2}, {"brilliant", 2},
    {"wonderful", 2}, {"superb", 2},   {"bad", -1},       {"dull", -1},     {"boring", -1},
    {"weak", -1},     {"messy", -1},   {"slow", -1},      {"awful", -2},    {"terrible", -2},
    {"horrible", -2}, {"dreadful", -2}, {"painful", -2},  {"long", 0},      {"short", 0},
    {"new", 0},       {"french", 0},   {"quiet", 0},
};
static const char *const DETERMINERS[] = {"the", "this", "that"};
static const char *const NOUNS[] = {"movie", "film",   "plot",  "story",      "acting",
                                    "ending", "cast",  "script", "soundtrack", "dialogue"};
static const char *const VERBS[] = {"is", "was", "seems", "feels"};
static const char *const INTENSIFIERS[] = {"very", "really", "extremely"};
static const char *const NEGATIONS[] = {"not", "never"};

#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* Probabilities of the grammar's optional parts. */
static const float P_CONTRAST = 0.25f;    /* "X but Y"                      */
static const float P_NEGATION = 0.35f;    /* a negation in a clause         */
static const float P_INTENSIFIER = 0.35f; /* an intensifier in a clause     */
static const float P_PRONOUN = 0.15f;     /* subject "it" instead of "the X" */

static int sign_of(int score) { return (score > 0) - (score < 0); }

/* ---- Clauses ------------------------------------------------------------------ */

enum { CLAUSE_MAX_WORDS = 6 };

typedef struct {
    const char *words[CLAUSE_MAX_WORDS]; /* (W) */
    WordKind kinds[CLAUSE_MAX_WORDS];    /* (W) */
    int leaf_scores[CLAUSE_MAX_WORDS];   /* (W) */
    int count;                           /* W   */
    int verb;                            /* index of the verb in words */
} Clause;

static const char *pick(Rng *rng, const char *const *choices, int count) {
    return choices[rng_below(rng, (uint32_t)count)];
}

static void clause_push(Clause *c, const char *word, WordKind kind, int score) {
    c->words[c->count] = word;
    c->kinds[c->count] = kind;
    c->leaf_scores[c->count] = score;
    c->count++;
}

/* "never" reads well after "is"/"was" only ("it seems never good" does not). */
static const char *negation_for(Rng *rng, const char *verb) {
    const char *negation = pick(rng, NEGATIONS, COUNT_OF(NEGATIONS));
    if (strcmp(negation, "never") == 0 && strcmp(verb, "is") != 0 && strcmp(verb, "was") != 0)
        negation = "not";
    return negation;
}

/* subject verb [negation] [intensifier] adjective.  With `require_polar`
 * the adjective is never neutral and no negation is drawn (probe bases). */
static Clause clause_generate(Rng *rng, bool require_polar) {
    Clause c = {.count = 0};
    if (rng_uniform(rng) < P_PRONOUN) {
        clause_push(&c, "it", WORD_NEUTRAL, 0);
    } else {
        clause_push(&c, pick(rng, DETERMINERS, COUNT_OF(DETERMINERS)), WORD_NEUTRAL, 0);
        clause_push(&c, pick(rng, NOUNS, COUNT_OF(NOUNS)), WORD_NEUTRAL, 0);
    }
    const char *verb = pick(rng, VERBS, COUNT_OF(VERBS));
    c.verb = c.count;
    clause_push(&c, verb, WORD_NEUTRAL, 0);
    if (!require_polar && rng_uniform(rng) < P_NEGATION)
        clause_push(&c, negation_for(rng, verb), WORD_NEGATION, 0);
    if (rng_uniform(rng) < P_INTENSIFIER)
        clause_push(&c, pick(rng, INTENSIFIERS, COUNT_OF(INTENSIFIERS)), WORD_INTENSIFIER, 0);
    const LexiconWord *adjective;
    do {
        adjective = &ADJECTIVES[rng_below(rng, (uint32_t)COUNT_OF(ADJECTIVES))];
    } while (require_polar && adjective->score == 0);
    clause_push(&c, adjective->text, WORD_NEUTRAL, adjective->score);
    return c;
}

/* Inserts a negation just before the intensifier/adjective of a clause. */
static Clause clause_negate(const Clause *base, const char *negation) {
    Clause c = {.count = 0, .verb = base->verb};
    int insert_at = base->count - 1;
    if (base->count >= 2 && base->kinds[base->count - 2] == WORD_INTENSIFIER) insert_at--;
    for (int i = 0; i < base->count; i++) {
        if (i == insert_at) clause_push(&c, negation, WORD_NEGATION, 0);
        clause_push(&c, base->words[i], base->kinds[i], base->leaf_scores[i]);
    }
    return c;
}

/* The score of the phrase made of `word` (of `kind`) and the phrase to its
 * right, of score `right`: the composition rules of the file comment. */
static int compose_word(WordKind kind, int right) {
    switch (kind) {
    case WORD_INTENSIFIER: return 2 * sign_of(right);
    case WORD_NEGATION: return -sign_of(right);
    case WORD_NEUTRAL: break;
    }
    return right;
}

/* ---- Writing trees ---------------------------------------------------------------- */

static void text_append_label(StringBuilder *t, int score) {
    char buffer[16];
    snprintf(buffer, sizeof buffer, "(%d ", score + 2);
    sb_append(t, buffer);
}

/* Writes the right-branching tree of words [first, W) and returns its score. */
static int clause_write(StringBuilder *t, const Clause *c, int first) {
    if (first == c->count - 1) {
        text_append_label(t, c->leaf_scores[first]);
        sb_append(t, c->words[first]);
        sb_append(t, ")");
        return c->leaf_scores[first];
    }
    /* The node's label depends on the right phrase, written after it, so
     * the right phrase is written to a scratch StringBuilder first. */
    StringBuilder right = {0};
    int right_score = clause_write(&right, c, first + 1);
    int score = compose_word(c->kinds[first], right_score);
    text_append_label(t, score);
    text_append_label(t, c->leaf_scores[first]);
    sb_append(t, c->words[first]);
    sb_append(t, ") ");
    sb_append(t, right.data);
    sb_append(t, ")");
    free(right.data);
    return score;
}

static bool clause_is_negated(const Clause *c) {
    for (int i = 0; i < c->count; i++)
        if (c->kinds[i] == WORD_NEGATION) return true;
    return false;
}

static void sentence_append_words(StringBuilder *t, const Clause *c) {
    for (int i = 0; i < c->count; i++) {
        if (t->length > 0) sb_append(t, " ");
        sb_append(t, c->words[i]);
    }
}

/* One example from one clause, or from two joined by "but" (second != NULL). */
static SentimentExample example_make(const Clause *first, const Clause *second) {
    StringBuilder tree = {0}, sentence = {0};
    int score;
    if (second == NULL) {
        score = clause_write(&tree, first, 0);
    } else {
        StringBuilder left = {0}, right = {0};
        int left_score = clause_write(&left, first, 0);
        int right_score = clause_write(&right, second, 0);
        score = right_score != 0 ? right_score : left_score; /* Y dominates */
        text_append_label(&tree, score);
        sb_append(&tree, left.data);
        sb_append(&tree, " ");
        text_append_label(&tree, right_score); /* (but Y) has Y's score */
        sb_append(&tree, "(2 but) ");
        sb_append(&tree, right.data);
        sb_append(&tree, "))");
        free(left.data);
        free(right.data);
    }
    sentence_append_words(&sentence, first);
    if (second != NULL) {
        sb_append(&sentence, " but");
        sentence_append_words(&sentence, second);
    }
    return (SentimentExample){
        .tree = tree.data,
        .sentence = sentence.data,
        .label = score + 2,
        .negated = clause_is_negated(first) || (second != NULL && clause_is_negated(second)),
    };
}

/* ---- Sets ------------------------------------------------------------------------- */

static void set_generate(SentimentSet *set, int count, uint64_t seed, uint64_t stream) {
    Rng rng;
    rng_seed(&rng, seed, stream);
    set->count = count;
    set->examples = xcalloc((size_t)(count > 0 ? count : 1), sizeof(SentimentExample));
    for (int i = 0; i < count; i++) {
        Clause first = clause_generate(&rng, false);
        if (rng_uniform(&rng) < P_CONTRAST) {
            Clause second = clause_generate(&rng, false);
            set->examples[i] = example_make(&first, &second);
        } else {
            set->examples[i] = example_make(&first, NULL);
        }
    }
}

/* The probe: pairs (2i, 2i+1) where 2i is a clause with a polar adjective
 * and no negation ("the plot is very good", label 4) and 2i+1 is the same
 * clause with a negation inserted ("the plot is not very good", label 1).
 * The two differ by one word, and their labels always differ (a polar
 * score changes sign).  An odd probe_count loses its last example, so
 * probe.count is always even. */
static void probe_generate(SentimentSet *set, int count, uint64_t seed, uint64_t stream) {
    Rng rng;
    rng_seed(&rng, seed, stream);
    int pairs = count / 2;
    set->count = 2 * pairs;
    set->examples = xcalloc((size_t)(pairs > 0 ? 2 * pairs : 1), sizeof(SentimentExample));
    for (int p = 0; p < pairs; p++) {
        Clause base = clause_generate(&rng, true);
        Clause negated = clause_negate(&base, negation_for(&rng, base.words[base.verb]));
        set->examples[2 * p] = example_make(&base, NULL);
        set->examples[2 * p + 1] = example_make(&negated, NULL);
    }
}

void sentiment_generate(SentimentTreebank *bank, int train_count, int dev_count, int test_count,
                        int probe_count, uint64_t seed) {
    if (train_count < 0 || dev_count < 0 || test_count < 0 || probe_count < 0)
        fatal("sentiment_generate: negative count (%d, %d, %d, %d)", train_count, dev_count,
              test_count, probe_count);
    set_generate(&bank->train, train_count, seed, 101);
    set_generate(&bank->dev, dev_count, seed, 102);
    set_generate(&bank->test, test_count, seed, 103);
    probe_generate(&bank->probe, probe_count, seed, 104);
}

static void set_free(SentimentSet *set) {
    for (int i = 0; i < set->count; i++) {
        free(set->examples[i].tree);
        free(set->examples[i].sentence);
    }
    free(set->examples);
    set->examples = NULL;
    set->count = 0;
}

void sentiment_free(SentimentTreebank *bank) {
    set_free(&bank->train);
    set_free(&bank->dev);
    set_free(&bank->test);
    set_free(&bank->probe);
}
