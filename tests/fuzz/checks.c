/* tests/fuzz/checks.c: checks shared by the fuzz targets (see checks.h). */
#include "checks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    abort();
}

void fuzz_check_vocab(const Vocab *vocab) {
    for (int id = 0; id < vocab->size; id++)
        if (vocab_find(vocab, vocab->tokens[id]) != id)
            fuzz_fail("vocab_find(\"%s\") is not its id %d", vocab->tokens[id], id);
    char *json = vocab_to_json(vocab);
    Vocab back;
    Error err;
    if (!vocab_from_json(&back, json, &err)) fuzz_fail("vocab_from_json rejects vocab_to_json's %s: %s", json, err.message);
    if (back.size != vocab->size) fuzz_fail("the JSON round trip of %s changed the size", json);
    for (int id = 0; id < vocab->size; id++)
        if (strcmp(back.tokens[id], vocab->tokens[id]) != 0) fuzz_fail("the JSON round trip of %s changed token %d", json, id);
    vocab_free(&back);
    free(json);
}
