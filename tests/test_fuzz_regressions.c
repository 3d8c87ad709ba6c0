/* tests/test_fuzz_regressions.c: every input the fuzzers (tests/fuzz/, see
 * README "Fuzzing") found to break a parser, fed to that parser again.
 *
 * Each test reads the saved input from tests/fuzz/regressions/<parser>/
 * (the tests run from tests/) and checks what the parser does with it now:
 * it rejects it with a message that names the problem, or it reads it
 * correctly.  A smaller hand-written case next to it shows the rule.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autoencoder/autoencoder.h"
#include "../recursive_nn/recursive_nn.h"
#include "data.h"
#include "test_suites.h"

static char *read_regression(const char *path, size_t *size) {
    char *text;
    Error err = {{0}};
    ck_assert_msg(file_read_all(path, DATA_MAX_FILE_BYTES, &text, size, &err), "%s", err.message);
    return text;
}

/* Writes the tree with a label on every node, as predict does, and reads it
 * back as a labelled treebank: it must be the same tree. */
static void assert_tree_round_trips(const Tree *tree) {
    int *labels = malloc((size_t)tree->count * sizeof(int));
    for (int i = 0; i < tree->count; i++) labels[i] = i % 5;
    char *text = tree_to_string(tree, labels);
    Treebank again;
    treebank_init(&again);
    Error err = {{0}};
    ck_assert_msg(tree_parse_text(text, strlen(text), "written", 5, TREE_LABELS_REQUIRED, false, &again, &err),
                  "the writer's output does not read back: %s\n%s", err.message, text);
    ck_assert_int_eq(again.count, 1);
    char *rewritten = tree_to_string(&again.trees[0], labels);
    ck_assert_str_eq(rewritten, text);
    free(rewritten);
    free(text);
    free(labels);
    treebank_free(&again);
}

/* ---- recursive_nn/tree.c: plain sentences -------------------------------------------- */

/* Found by fuzz_tree: in a plain sentence a bracket stayed inside its word
 * ("(the", "movie)"), and the tree predict writes for it, "(1 (the) ...",
 * could not be read back.  Brackets are now words of their own. */
START_TEST(test_sentence_brackets_are_words) {
    size_t size;
    char *text = read_regression("fuzz/regressions/tree/sentence_with_brackets.txt", &size);
    Treebank bank;
    treebank_init(&bank);
    Error err = {{0}};
    ck_assert_msg(tree_parse_input(text, size, "input", 5, true, &bank, &err), "%s", err.message);
    for (int i = 0; i < bank.count; i++) assert_tree_round_trips(&bank.trees[i]);
    treebank_free(&bank);
    free(text);

    const char sentence[] = "I liked it (a lot)";
    treebank_init(&bank);
    ck_assert_msg(tree_parse_input(sentence, strlen(sentence), "input", 5, false, &bank, &err), "%s",
                  err.message);
    ck_assert_int_eq(bank.count, 1);
    ck_assert_int_eq(bank.trees[0].leaves, 7); /* I liked it ( a lot ) */
    char *written = tree_to_string(&bank.trees[0], NULL);
    ck_assert_str_eq(written, "((I) ((liked) ((it) ((-LRB-) ((a) ((lot) (-RRB-)))))))");
    free(written);
    assert_tree_round_trips(&bank.trees[0]);
    treebank_free(&bank);
}
END_TEST

/* Found by fuzz_tree: a plain sentence could hold a word of any length,
 * while a tree may not (TREE_MAX_WORD_BYTES), so its written tree did not
 * read back.  Both now have the same limit. */
START_TEST(test_sentence_word_length_limit) {
    size_t size;
    char *text = read_regression("fuzz/regressions/tree/sentence_long_word.txt", &size);
    Treebank bank;
    treebank_init(&bank);
    Error err = {{0}};
    ck_assert_msg(!tree_parse_input(text, size, "input", 5, true, &bank, &err), "accepted a word over the limit");
    ck_assert_msg(strstr(err.message, "word longer than 256 bytes") != NULL, "message: %s", err.message);
    ck_assert_int_eq(bank.count, 0);
    free(text);

    char sentence[TREE_MAX_WORD_BYTES + 16] = "ok ";
    memset(sentence + 3, 'a', TREE_MAX_WORD_BYTES); /* exactly at the limit: accepted */
    sentence[3 + TREE_MAX_WORD_BYTES] = '\0';
    ck_assert_msg(tree_parse_input(sentence, strlen(sentence), "input", 5, false, &bank, &err), "%s",
                  err.message);
    ck_assert_int_eq(bank.count, 1);
    assert_tree_round_trips(&bank.trees[0]);
    treebank_free(&bank);
    strcat(sentence, "a"); /* one byte over */
    ck_assert(!tree_parse_input(sentence, strlen(sentence), "input", 5, false, &bank, &err));
    ck_assert_int_eq(bank.count, 0);
}
END_TEST

/* Found with fuzz_tree's round-trip check on a hand-made edge case (1001
 * words in one bracket): binarized to height 1000, the tree was accepted,
 * but its written form nests 1001 brackets, over the reader's limit of
 * TREE_MAX_DEPTH.  A tree may now have at most TREE_MAX_DEPTH levels. */
START_TEST(test_tree_height_limit_matches_the_nesting_limit) {
    size_t size;
    char *text = read_regression("fuzz/regressions/tree/height_at_depth_limit.txt", &size);
    Treebank bank;
    treebank_init(&bank);
    Error err = {{0}};
    ck_assert(!tree_parse_text(text, size, "deep.txt", 5, TREE_LABELS_REQUIRED, false, &bank, &err));
    ck_assert_msg(strstr(err.message, "deep.txt:1:1: tree deeper than 1000 levels") != NULL, "message: %s",
                  err.message);
    ck_assert_int_eq(bank.count, 0);
    free(text);

    /* 1000 words: height 999, 1000 levels, the most that reads back. */
    char *flat = malloc(2 * TREE_MAX_DEPTH + 8);
    strcpy(flat, "(2");
    for (int i = 0; i < TREE_MAX_DEPTH; i++) strcat(flat, " w");
    strcat(flat, ")");
    ck_assert_msg(tree_parse_text(flat, strlen(flat), "flat.txt", 5, TREE_LABELS_REQUIRED, false, &bank, &err),
                  "%s", err.message);
    assert_tree_round_trips(&bank.trees[0]);
    treebank_free(&bank);
    free(flat);
}
END_TEST

/* ---- autoencoder/data.c: IDX and CSV ----------------------------------------------------- */

/* Found by fuzz_idx: an IDX label of 96 was accepted, although classes are
 * named and counted in arrays of AUTOENCODER_MAX_CLASSES (64): the anomaly
 * command's CSV then looked up class_names[96].  The CSV reader accepted
 * labels up to 255 in the same way. */
START_TEST(test_labels_above_the_class_limit_are_rejected) {
    AutoencoderDataset data = {.count = 3, .height = 1, .width = 1};
    data.images = calloc(3, sizeof(float));
    data.labels = malloc(3 * sizeof(int));
    for (int n = 0; n < 3; n++) data.labels[n] = -1;
    Error err = {{0}};
    /* the file: magic 0x00000801, 3 labels: 96, 7, 9 */
    ck_assert(!autoencoder_read_idx_labels("fuzz/regressions/idx/label_above_classes.idx", &data, &err));
    ck_assert_msg(strstr(err.message, "label 96 of image 0 is above 63") != NULL, "message: %s", err.message);
    for (int n = 0; n < 3; n++) ck_assert_int_eq(data.labels[n], -1); /* left as they were */
    autoencoder_dataset_free(&data);

    const char *dir = test_temp_dir("fuzz-labels");
    char path[1024];
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs("63,0,1\n64,1,0\n", file);
    fclose(file);
    ck_assert(!autoencoder_read_csv(path, &data, &err));
    ck_assert_msg(strstr(err.message, "line 2: the label must be an integer in 0..63") != NULL, "message: %s",
                  err.message);
    test_remove_tree(dir);
}
END_TEST

/* Found by reading the CSV reader while writing fuzz_csv (no fuzzer
 * report): strtod skips newlines, so an empty last field read the next
 * line's label as a pixel, and "5,\n3,4" was two images instead of an
 * error. */
START_TEST(test_csv_empty_field_does_not_read_the_next_line) {
    const char text[] = "5,\n3,4\n";
    AutoencoderDataset data;
    Error err = {{0}};
    ck_assert_msg(!autoencoder_parse_csv(text, strlen(text), "empty.csv", &data, &err), "accepted %s", text);
    ck_assert_msg(strstr(err.message, "empty.csv: line 1: pixel 1 is not a number") != NULL, "message: %s",
                  err.message);
    const char spaced[] = "5, 7\n3,\t4\r\n"; /* blanks around a number are still fine */
    ck_assert_msg(autoencoder_parse_csv(spaced, strlen(spaced), "spaced.csv", &data, &err), "%s", err.message);
    ck_assert_int_eq(data.count, 2);
    ck_assert_int_eq(data.labels[1], 3);
    ck_assert_float_eq_tol(data.images[1] * 255.0f, 4.0f, 1e-4f);
    autoencoder_dataset_free(&data);
}
END_TEST

Suite *fuzz_regressions_suite(void) {
    Suite *suite = suite_create("fuzz_regressions");
    TCase *tree = tcase_create("tree");
    tcase_add_test(tree, test_sentence_brackets_are_words);
    tcase_add_test(tree, test_sentence_word_length_limit);
    tcase_add_test(tree, test_tree_height_limit_matches_the_nesting_limit);
    suite_add_tcase(suite, tree);
    TCase *files = tcase_create("autoencoder_files");
    tcase_add_test(files, test_labels_above_the_class_limit_are_rejected);
    tcase_add_test(files, test_csv_empty_field_does_not_read_the_next_line);
    suite_add_tcase(suite, files);
    return suite;
}
