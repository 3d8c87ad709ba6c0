/* tests/fuzz/fuzz_tsv.c: libFuzzer target for the tab-separated pairs reader
 * (common/data.c tsv_parse_pairs, behind tsv_read_pairs) and the seq2seq
 * tokenizer that reads its pairs.
 *
 * The input is read twice: as seq2seq reads --data (a line limit, no
 * lowercasing) and with no limit but lowercasing.  Every pair kept must
 * hold two non-empty columns of valid UTF-8 with no tab or newline; each is
 * then added to a word and a character vocabulary and tokenized back, which
 * must give ids inside the vocabulary.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "../../seq2seq/seq2seq.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* seq2seq's --data limits (seq2seq/train.c). */
enum { MAX_LINE_BYTES = 4096, MAX_IDS = 4096 };

static void check_column(const char *column) {
    size_t length = strlen(column);
    if (length == 0 || utf8_first_invalid(column, length) >= 0 || strchr(column, '\t') ||
        strchr(column, '\n')) {
        fuzz_fail("tsv_parse_pairs kept a bad column '%s'", column);
    }
}

/* Does the column spell one of the special tokens?  Such a word is read as
 * <unk> (seq2seq_tokenize), which is not a bug. */
static bool spells_special_token(const char *column) {
    static const char *const SPELLINGS[] = {"<pad>", "<bos>", "<eos>", "<unk>"};
    for (size_t i = 0; i < sizeof SPELLINGS / sizeof *SPELLINGS; i++)
        if (strstr(column, SPELLINGS[i]) != NULL) return true;
    return false;
}

/* Builds a vocabulary from the column as seq2seq's training does, then
 * tokenizes the column with it: no token may be unknown, and none may be
 * one of the control tokens <pad>, <bos>, <eos> that only the model writes. */
static void tokenize(const char *column, bool words) {
    Seq2seqVocabs vocabs;
    seq2seq_vocabs_init(&vocabs, words);
    int ids[MAX_IDS];
    if (seq2seq_vocab_add_text(&vocabs.source, words, column)) {
        int count = seq2seq_tokenize(&vocabs.source, words, column, ids, MAX_IDS);
        for (int i = 0; i < count; i++)
            if (ids[i] < SEQ2SEQ_UNK || ids[i] >= vocabs.source.size ||
                (ids[i] == SEQ2SEQ_UNK && !spells_special_token(column))) {
                fuzz_fail("seq2seq_tokenize: id %d of '%s': a control token, unknown, or "
                          "outside the vocabulary of %d", ids[i], column, vocabs.source.size);
            }
    }
    seq2seq_vocabs_free(&vocabs);
}

static void read_pairs(const char *text, size_t size, size_t max_line_bytes, bool lowercase) {
    PairList list;
    Error err;
    if (!tsv_parse_pairs(text, size, "fuzz.tsv", max_line_bytes, lowercase, &list, &err)) return;
    for (int i = 0; i < list.count; i++) {
        check_column(list.pairs[i].source);
        check_column(list.pairs[i].target);
        tokenize(list.pairs[i].source, true);
        tokenize(list.pairs[i].target, false);
    }
    pair_list_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    read_pairs((const char *)data, size, MAX_LINE_BYTES, false);
    read_pairs((const char *)data, size, 0, true);
    return 0;
}
