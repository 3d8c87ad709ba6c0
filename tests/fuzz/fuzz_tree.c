/* tests/fuzz/fuzz_tree.c: libFuzzer target for the Penn Treebank / SST tree
 * reader (recursive_nn/tree.c).
 *
 * Each input is read three ways: as a labelled treebank (train and eval
 * data, 5 classes), and as predict's input (unlabelled trees or plain
 * sentences, lowercased).  Whatever the reader accepts must survive a round
 * trip: every tree, written with a label on every node as predict writes
 * it, reads back as the same tree.  A crash, a leak, a hang, an UBSan report
 * or a broken round trip is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../recursive_nn/recursive_nn.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { CLASSES = 5 };

/* Writes `tree` with labels on every node, reads it back and compares. */
static void check_round_trip(const Tree *tree) {
    int *labels = malloc((size_t)tree->count * sizeof(int));
    for (int i = 0; i < tree->count; i++) labels[i] = i % CLASSES;
    char *written = tree_to_string(tree, labels);
    Treebank again;
    treebank_init(&again);
    Error err;
    if (!tree_parse_text(written, strlen(written), "round-trip", CLASSES, TREE_LABELS_REQUIRED,
                         false, &again, &err)) {
        fuzz_fail("the reader rejects what the writer wrote: %s\n%s", err.message, written);
    }
    char *rewritten = again.count == 1 ? tree_to_string(&again.trees[0], labels) : NULL;
    if (rewritten == NULL || strcmp(written, rewritten) != 0) {
        fuzz_fail("round trip changed the tree (%d trees):\n%s\n%s", again.count, written,
                rewritten ? rewritten : "");
    }
    free(rewritten);
    free(written);
    free(labels);
    treebank_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    Error err;
    Treebank bank;
    treebank_init(&bank);
    if (tree_parse_text(text, size, "fuzz.txt", CLASSES, TREE_LABELS_REQUIRED, false, &bank, &err))
        for (int i = 0; i < bank.count; i++) check_round_trip(&bank.trees[i]);
    treebank_free(&bank);

    treebank_init(&bank);
    if (tree_parse_input(text, size, "fuzz.txt", CLASSES, true, &bank, &err))
        for (int i = 0; i < bank.count; i++) check_round_trip(&bank.trees[i]);
    treebank_free(&bank);
    return 0;
}
