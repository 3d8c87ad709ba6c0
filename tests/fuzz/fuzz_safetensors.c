/* tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors
 * checkpoint loader (common/checkpoint.c checkpoint_load_from_memory,
 * behind checkpoint_load) with its header checks and JSON parser, and for
 * the readers of the metadata it returns: metadata_get_int/_float/_rng and
 * each model's config_from_metadata.
 *
 * The model is the one of tests/test_checkpoint.c: "w" (2,3) and "b" (3),
 * with Adam's moments.  Each input is loaded without and with the optimizer
 * state.  A load that fails must leave every value of the model and the
 * optimizer as it was (checkpoint.h promises it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../autoencoder/autoencoder.h"
#include "checkpoint.h"
#include "../../seq2seq/seq2seq.h"
#include "../../transformer/transformer.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ARCHITECTURE[] = "fuzz";

/* Fills every value with a pattern no checkpoint is likely to hold. */
static void fill(float *values, size_t count, float start) {
    for (size_t i = 0; i < count; i++) values[i] = start + (float)i;
}

static bool holds_pattern(const float *values, size_t count, float start) {
    for (size_t i = 0; i < count; i++)
        if (values[i] != start + (float)i) return false;
    return true;
}

/* Every reader of metadata values, on whatever the file held. */
static void read_metadata(const Metadata *meta) {
    Error err;
    long integer;
    float number;
    Rng rng;
    for (int i = 0; i < meta->count; i++) {
        metadata_get_int(meta, meta->keys[i], &integer, &err);
        metadata_get_float(meta, meta->keys[i], &number, &err);
        metadata_get_rng(meta, meta->keys[i], &rng, &err);
    }
    AutoencoderConfig autoencoder;
    autoencoder_config_from_metadata(meta, &autoencoder, &err);
    Seq2seqConfig seq2seq;
    seq2seq_config_from_metadata(meta, &seq2seq, &err);
    TransformerConfig transformer;
    transformer_config_from_metadata(meta, &transformer, &err);
    TransformerDataOptions options;
    transformer_data_options_from_metadata(meta, &options, &err);
    Vocab vocab;
    bool word_level;
    if (transformer_vocab_from_metadata(meta, &vocab, &word_level, &err)) vocab_free(&vocab);
}

static void load(const uint8_t *data, size_t size, ParamSet *ps, Optimizer *opt) {
    fill(ps->values, ps->total, 1000.0f);
    if (opt != NULL) {
        fill(opt->moment1, opt->total, 2000.0f);
        fill(opt->moment2, opt->total, 3000.0f);
        opt->step = 77;
    }
    Metadata meta;
    Error err;
    if (checkpoint_load_from_memory(data, size, "fuzz.safetensors", ps, opt,
                                    opt != NULL ? ARCHITECTURE : NULL, &meta, &err)) {
        read_metadata(&meta);
    } else if (!holds_pattern(ps->values, ps->total, 1000.0f) ||
               (opt != NULL && (!holds_pattern(opt->moment1, opt->total, 2000.0f) ||
                                !holds_pattern(opt->moment2, opt->total, 3000.0f) || opt->step != 77))) {
        fuzz_fail("a failed load changed the model: %s", err.message);
    }
    metadata_free(&meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ParamSet ps;
    static Optimizer opt;
    static bool ready = false;
    if (!ready) { /* the same model for every input, built once */
        params_init(&ps);
        params_add_of(&ps, "w", true, 2, 2, 3);
        params_add_of(&ps, "b", false, 1, 3);
        params_allocate(&ps);
        optimizer_init(&opt, OPTIMIZER_ADAM, &ps);
        ready = true;
    }
    load(data, size, &ps, NULL);
    load(data, size, &ps, &opt);
    return 0;
}
