/* tests/fuzz/fuzz_vocab.c: libFuzzer target for the vocabulary reader:
 * vocab_from_json (common/data.c) and the JSON parser under it
 * (common/json.c), which read a checkpoint's "vocab" metadata, and the
 * transformer's prompt encoder that uses the vocabulary it gives.
 *
 * An accepted vocabulary must survive vocab_to_json -> vocab_from_json with
 * the same tokens in the same order, and every token must be found at its
 * own id.  Each token is then encoded as a word-level and a character-level
 * prompt would be.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../transformer/transformer.h"
#include "checks.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_IDS = 256 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = strndup((const char *)data, size); /* vocab_from_json reads a C string */
    Vocab vocab;
    Error err;
    if (vocab_from_json(&vocab, json, &err)) {
        fuzz_check_vocab(&vocab);
        int ids[MAX_IDS];
        for (int id = 0; id < vocab.size && id < 64; id++) {
            transformer_encode_vocab(&vocab, true, vocab.tokens[id], ids, MAX_IDS, &err);
            transformer_encode_vocab(&vocab, false, vocab.tokens[id], ids, MAX_IDS, &err);
        }
        vocab_free(&vocab);
    }
    free(json);
    return 0;
}
