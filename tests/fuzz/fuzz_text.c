/* tests/fuzz/fuzz_text.c: libFuzzer target for the transformer's text
 * corpus reader (--task text: transformer_text_parse, behind
 * transformer_data_load) and the character vocabulary it builds
 * (common/data.c vocab_add_chars, vocab_encode_chars, vocab_decode).
 *
 * Whatever text is accepted must come back unchanged: decoding the stream of
 * ids gives the input bytes, and the vocabulary survives its JSON round trip
 * (the checkpoint's "vocab" metadata).  The input, cut at its first NUL, is
 * also encoded as a generation prompt would be.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../transformer/transformer.h"
#include "checks.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_stream_decodes_to(const TransformerData *d, const char *text, size_t size) {
    for (long i = 0; i < d->stream_length; i++)
        if (d->stream[i] < 0 || d->stream[i] >= d->vocab.size)
            fuzz_fail("stream id %d outside the vocabulary of %d", d->stream[i], d->vocab.size);
    size_t needed = vocab_decode(&d->vocab, d->stream, (int)d->stream_length, NULL, 0);
    char *decoded = malloc(needed + 1);
    vocab_decode(&d->vocab, d->stream, (int)d->stream_length, decoded, needed + 1);
    if (needed != size || memcmp(decoded, text, size) != 0) fuzz_fail("the stream does not decode to the input");
    free(decoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    TransformerData d;
    memset(&d, 0, sizeof d);
    vocab_init(&d.vocab);
    Error err;
    if (transformer_text_parse(&d, "fuzz.txt", text, size, &err)) {
        check_stream_decodes_to(&d, text, size);
        fuzz_check_vocab(&d.vocab);
        char *prompt = strndup(text, size);
        int *ids = malloc((size + 1) * sizeof(int));
        int count = transformer_encode_vocab(&d.vocab, false, prompt, ids, (int)size, &err);
        if (count != (int)d.stream_length)
            fuzz_fail("the prompt encodes to %d ids, the stream has %ld", count, d.stream_length);
        free(ids);
        free(prompt);
    }
    transformer_data_free(&d);
    return 0;
}
