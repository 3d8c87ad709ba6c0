/* tests/fuzz/fuzz_csv.c: libFuzzer target for the CSV image reader
 * (autoencoder/data.c autoencoder_parse_csv, behind autoencoder_read_csv).
 *
 * The reader expects its text followed by a NUL, as file_read_all leaves
 * it, so the input is copied into a buffer one byte longer.  An accepted
 * data set must hold at least one image, labels 0..AUTOENCODER_MAX_CLASSES-1
 * and pixels in [0, 1].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../autoencoder/autoencoder.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    AutoencoderDataset set;
    Error err;
    if (autoencoder_parse_csv(text, size, "fuzz.csv", &set, &err)) {
        if (set.count < 1 || set.height < 1 || set.width < 1) fuzz_fail("accepted an empty data set");
        for (int n = 0; n < set.count; n++)
            if (set.labels[n] < 0 || set.labels[n] >= AUTOENCODER_MAX_CLASSES)
                fuzz_fail("accepted label %d of image %d", set.labels[n], n);
        for (long i = 0; i < (long)set.count * set.height * set.width; i++)
            if (!(set.images[i] >= 0.0f && set.images[i] <= 1.0f))
                fuzz_fail("accepted pixel %ld = %g, outside [0, 1]", i, (double)set.images[i]);
        autoencoder_dataset_free(&set);
    }
    free(text);
    return 0;
}
