/* common/sentiment.h: a generated sentiment treebank with negation.
 *
 * Shared by recursive_nn/ (which trains on the trees) and transformer/
 * (whose encoder mode classifies the same sentences, flattened), so the two
 * can be compared on exactly the same data.
 *
 * Sentences are built from a small grammar over a lexicon of positive,
 * negative and neutral words, intensifiers ("very"), negation ("not"), which
 * flips or softens, and contrast ("X but Y", where Y dominates).  Every node
 * of every tree carries the label the composition rules give it, on the
 * Stanford Sentiment Treebank's 5-point scale:
 *   0 very negative, 1 negative, 2 neutral, 3 positive, 4 very positive.
 * Trees are binary and written in SST format, e.g.
 *   (1 (2 the) (1 (2 movie) (1 (2 is) (1 (2 not) (3 good)))))
 */
#ifndef TINYZOO_SENTIMENT_H
#define TINYZOO_SENTIMENT_H

#include <stdbool.h>
#include <stdint.h>

enum { SENTIMENT_CLASSES = 5 };

typedef struct {
    char *tree;     /* SST s-expression with a label on every node          */
    char *sentence; /* the leaves joined by single spaces                   */
    int label;      /* the root's label, 0..4                               */
    bool negated;   /* the sentence contains a negation word                 */
} SentimentExample;

typedef struct {
    SentimentExample *examples; /* (count) */
    int count;
} SentimentSet;

typedef struct {
    SentimentSet train, dev, test;
    /* The negation probe: pairs of sentences that differ by a negation
     * ("the plot is good" / "the plot is not good"), where a bag of words
     * sees nearly the same words but the label changes. */
    SentimentSet probe;
} SentimentTreebank;

/* Generates the four sets from `seed`; the same seed gives the same
 * treebank on every machine.  The probe holds whole pairs, so an odd
 * probe_count is rounded down. */
void sentiment_generate(SentimentTreebank *bank, int train_count, int dev_count, int test_count,
                        int probe_count, uint64_t seed);
void sentiment_free(SentimentTreebank *bank);

#endif
