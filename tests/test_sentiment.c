/* tests/test_sentiment.c: the generated sentiment treebank (common/sentiment.c).
 *
 * The checks re-derive every label independently of the generator: this
 * file parses each tree with its own small reader, classifies words by their
 * text (negations, intensifiers, "but"), and recomputes each internal node's
 * label from its children by the rules written in sentiment.c's comment.
 *
 * Legend: N nodes of one tree.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentiment.h"
#include "test_suites.h"

/* ---- A minimal reader for the generator's trees ----------------------------- */

enum { MAX_NODES = 128, MAX_WORD = 32 };

typedef struct {
    int label;            /* 0..4                        */
    int left, right;      /* child node ids, -1 for leaves */
    char word[MAX_WORD];  /* leaves only                  */
} Node;

typedef struct {
    Node nodes[MAX_NODES]; /* (N) */
    int count;             /* N   */
} Tree;

/* Parses "(L word)" or "(L left right)" at *p; returns the node id. */
static int parse_node(Tree *t, const char **p) {
    ck_assert_msg(**p == '(', "expected '(' at \"%.20s\"", *p);
    (*p)++;
    ck_assert_msg(**p >= '0' && **p <= '4', "expected a label 0..4 at \"%.20s\"", *p);
    ck_assert_int_lt(t->count, MAX_NODES);
    int id = t->count++;
    Node *n = &t->nodes[id];
    n->label = **p - '0';
    n->left = n->right = -1;
    (*p)++;
    ck_assert_msg(**p == ' ', "expected a space after the label at \"%.20s\"", *p);
    (*p)++;
    if (**p == '(') {
        int left = parse_node(t, p);
        ck_assert_msg(**p == ' ', "expected a space between children at \"%.20s\"", *p);
        (*p)++;
        int right = parse_node(t, p);
        t->nodes[id].left = left;
        t->nodes[id].right = right;
    } else {
        size_t len = strcspn(*p, " ()");
        ck_assert_msg(len > 0 && len < MAX_WORD, "bad word at \"%.20s\"", *p);
        memcpy(n->word, *p, len);
        n->word[len] = '\0';
        *p += len;
    }
    ck_assert_msg(**p == ')', "expected ')' at \"%.20s\"", *p);
    (*p)++;
    return id;
}

static void parse_tree(Tree *t, const char *text) {
    t->count = 0;
    const char *p = text;
    parse_node(t, &p);
    ck_assert_msg(*p == '\0', "text after the tree: \"%s\"", p);
}

/* The leaves, left to right, joined by spaces. */
static void leaves(const Tree *t, int id, char *out, size_t size) {
    const Node *n = &t->nodes[id];
    if (n->left < 0) {
        if (out[0] != '\0') strncat(out, " ", size - strlen(out) - 1);
        strncat(out, n->word, size - strlen(out) - 1);
        return;
    }
    leaves(t, n->left, out, size);
    leaves(t, n->right, out, size);
}

/* ---- The rules, restated ------------------------------------------------------ */

static bool is_word(const Node *n, const char *const *list, int count) {
    if (n->left >= 0) return false;
    for (int i = 0; i < count; i++)
        if (strcmp(n->word, list[i]) == 0) return true;
    return false;
}

static const char *const NEGATIONS[] = {"not", "never"};
static const char *const INTENSIFIERS[] = {"very", "really", "extremely"};
static const char *const BUT[] = {"but"};
static const char *const FUNCTION_WORDS[] = {"the", "this", "that", "it", "is", "was",
                                             "seems", "feels", "not", "never", "very",
                                             "really", "extremely", "but"};

static int sign_of(int s) { return (s > 0) - (s < 0); }

/* The score (label - 2) the rules give an internal node from its children. */
static int expected_score(const Tree *t, const Node *n) {
    const Node *left = &t->nodes[n->left], *right = &t->nodes[n->right];
    int l = left->label - 2, r = right->label - 2;
    if (is_word(left, NEGATIONS, 2)) return -sign_of(r);
    if (is_word(left, INTENSIFIERS, 3)) return 2 * sign_of(r);
    if (is_word(left, BUT, 1)) return r;
    /* (X (but Y)): Y dominates unless it is neutral. */
    if (right->left >= 0 && is_word(&t->nodes[right->left], BUT, 1)) return r != 0 ? r : l;
    /* A neutral word joined to the phrase on its right. */
    ck_assert_msg(left->left < 0 && left->label == 2,
                  "a left child that is neither a word of score 0 nor a clause");
    return r;
}

/* Checks every node of every tree of a set; the lexicon must give each
 * word one leaf label across the whole treebank (`word_labels`). */
static void check_set(const SentimentSet *set, char word_labels[][2][MAX_WORD], int *word_count) {
    static Tree t;
    for (int e = 0; e < set->count; e++) {
        const SentimentExample *ex = &set->examples[e];
        parse_tree(&t, ex->tree);
        ck_assert_int_eq(t.nodes[0].label, ex->label);
        char text[1024] = "";
        leaves(&t, 0, text, sizeof text);
        ck_assert_str_eq(text, ex->sentence);
        ck_assert_int_eq(ex->negated, strstr(ex->tree, " not)") != NULL ||
                                          strstr(ex->tree, " never)") != NULL);
        for (int i = 0; i < t.count; i++) {
            const Node *n = &t.nodes[i];
            if (n->left >= 0) {
                ck_assert_msg(n->label - 2 == expected_score(&t, n),
                              "node %d of \"%s\" has label %d, rules give %d", i, ex->tree,
                              n->label, expected_score(&t, n) + 2);
                continue;
            }
            if (is_word(n, FUNCTION_WORDS, (int)(sizeof FUNCTION_WORDS / sizeof FUNCTION_WORDS[0])))
                ck_assert_msg(n->label == 2, "function word '%s' has label %d", n->word, n->label);
            int w = 0;
            while (w < *word_count && strcmp(word_labels[w][0], n->word) != 0) w++;
            if (w == *word_count) {
                ck_assert_int_lt(w, 256);
                strcpy(word_labels[w][0], n->word);
                snprintf(word_labels[w][1], MAX_WORD, "%d", n->label);
                (*word_count)++;
            } else {
                ck_assert_msg(atoi(word_labels[w][1]) == n->label,
                              "word '%s' has leaf labels %s and %d", n->word, word_labels[w][1],
                              n->label);
            }
        }
    }
}

/* ---- Tests ------------------------------------------------------------------------ */

START_TEST(test_sentiment_same_seed_same_treebank) {
    SentimentTreebank a, b, c;
    sentiment_generate(&a, 200, 50, 50, 40, 7);
    sentiment_generate(&b, 200, 50, 50, 40, 7);
    sentiment_generate(&c, 200, 50, 50, 40, 8);
    const SentimentSet *sa[] = {&a.train, &a.dev, &a.test, &a.probe};
    const SentimentSet *sb[] = {&b.train, &b.dev, &b.test, &b.probe};
    const SentimentSet *sc[] = {&c.train, &c.dev, &c.test, &c.probe};
    int differ = 0;
    for (int s = 0; s < 4; s++) {
        ck_assert_int_eq(sa[s]->count, sb[s]->count);
        for (int i = 0; i < sa[s]->count; i++) {
            ck_assert_str_eq(sa[s]->examples[i].tree, sb[s]->examples[i].tree);
            ck_assert_str_eq(sa[s]->examples[i].sentence, sb[s]->examples[i].sentence);
            ck_assert_int_eq(sa[s]->examples[i].label, sb[s]->examples[i].label);
            differ += strcmp(sa[s]->examples[i].tree, sc[s]->examples[i].tree) != 0;
        }
    }
    ck_assert_msg(differ > 200, "seeds 7 and 8 gave nearly the same treebank (%d differ)", differ);
    /* The dev and test sets do not depend on the size of the training set. */
    SentimentTreebank d;
    sentiment_generate(&d, 10, 50, 50, 40, 7);
    for (int i = 0; i < 50; i++) {
        ck_assert_str_eq(d.dev.examples[i].tree, a.dev.examples[i].tree);
        ck_assert_str_eq(d.test.examples[i].tree, a.test.examples[i].tree);
    }
    sentiment_free(&a), sentiment_free(&b), sentiment_free(&c), sentiment_free(&d);
}
END_TEST

START_TEST(test_sentiment_every_node_follows_the_rules) {
    SentimentTreebank bank;
    sentiment_generate(&bank, 2000, 200, 200, 200, 3);
    static char word_labels[256][2][MAX_WORD];
    int word_count = 0;
    check_set(&bank.train, word_labels, &word_count);
    check_set(&bank.dev, word_labels, &word_count);
    check_set(&bank.test, word_labels, &word_count);
    check_set(&bank.probe, word_labels, &word_count);
    /* The data exercise every class and every construction. */
    int per_class[5] = {0}, negated = 0, contrast = 0;
    for (int i = 0; i < bank.train.count; i++) {
        per_class[bank.train.examples[i].label]++;
        negated += bank.train.examples[i].negated;
        contrast += strstr(bank.train.examples[i].sentence, " but ") != NULL;
    }
    for (int k = 0; k < 5; k++) ck_assert_msg(per_class[k] > 50, "class %d has %d roots", k, per_class[k]);
    ck_assert_int_gt(negated, 400);
    ck_assert_int_gt(contrast, 300);
    sentiment_free(&bank);
}
END_TEST

/* Two spot checks written out by hand, against the header's example. */
START_TEST(test_sentiment_known_phrases) {
    SentimentTreebank bank;
    sentiment_generate(&bank, 5000, 0, 0, 0, 11);
    bool saw_not_good = false, saw_not_very_bad = false;
    for (int i = 0; i < bank.train.count; i++) {
        const char *tree = bank.train.examples[i].tree;
        saw_not_good |= strstr(tree, "(1 (2 not) (3 good))") != NULL;
        saw_not_very_bad |= strstr(tree, "(3 (2 not) (0 (2 very) (1 bad)))") != NULL;
        ck_assert_ptr_null(strstr(tree, "(3 (2 not) (3 good))"));
    }
    ck_assert(saw_not_good);
    ck_assert(saw_not_very_bad);
    sentiment_free(&bank);
}
END_TEST

START_TEST(test_sentiment_probe_pairs_differ_by_a_negation) {
    SentimentTreebank bank;
    sentiment_generate(&bank, 0, 0, 0, 301, 5);
    ck_assert_int_eq(bank.probe.count, 300); /* odd counts round down to pairs */
    for (int p = 0; p < bank.probe.count / 2; p++) {
        const SentimentExample *base = &bank.probe.examples[2 * p];
        const SentimentExample *neg = &bank.probe.examples[2 * p + 1];
        ck_assert(!base->negated);
        ck_assert(neg->negated);
        ck_assert_int_ne(base->label, neg->label);
        ck_assert_int_ne(base->label, 2);
        /* Removing one negation word from the second gives the first. */
        char words[64][MAX_WORD];
        int n = 0;
        char copy[512];
        strcpy(copy, neg->sentence);
        for (char *w = strtok(copy, " "); w != NULL; w = strtok(NULL, " ")) strcpy(words[n++], w);
        char rebuilt[512] = "";
        int removed = 0;
        for (int i = 0; i < n; i++) {
            if (!removed && (strcmp(words[i], "not") == 0 || strcmp(words[i], "never") == 0)) {
                removed = 1;
                continue;
            }
            if (rebuilt[0] != '\0') strcat(rebuilt, " ");
            strcat(rebuilt, words[i]);
        }
        ck_assert_int_eq(removed, 1);
        ck_assert_str_eq(rebuilt, base->sentence);
        /* Polarity flips: a positive base becomes negative and back. */
        ck_assert_int_eq((base->label > 2), (neg->label < 2));
    }
    sentiment_free(&bank);
}
END_TEST

Suite *sentiment_suite(void) {
    Suite *s = suite_create("sentiment");
    TCase *tc = tcase_create("treebank");
    tcase_add_test(tc, test_sentiment_same_seed_same_treebank);
    tcase_add_test(tc, test_sentiment_every_node_follows_the_rules);
    tcase_add_test(tc, test_sentiment_known_phrases);
    tcase_add_test(tc, test_sentiment_probe_pairs_differ_by_a_negation);
    suite_add_tcase(s, tc);
    return s;
}
