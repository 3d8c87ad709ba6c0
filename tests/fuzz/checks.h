/* tests/fuzz/checks.h: what more than one fuzz target checks.  Linked into
 * every target (tests/fuzz/fuzz.mk). */
#ifndef TINYZOO_FUZZ_CHECKS_H
#define TINYZOO_FUZZ_CHECKS_H

#include "data.h"

/* Prints "fuzz: <message>" and aborts, which libFuzzer reports as a crash
 * and saves the input that caused it. */
_Noreturn void fuzz_fail(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Every token is found at its own id, and vocab_to_json -> vocab_from_json
 * gives the same tokens in the same order (a checkpoint's "vocab"). */
void fuzz_check_vocab(const Vocab *vocab);

#endif
