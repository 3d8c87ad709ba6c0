/* tests/fuzz/fuzz_pgm.c: libFuzzer target for the PGM reader
 * (autoencoder/data.c autoencoder_parse_pgm, behind autoencoder_read_pgm).
 *
 * An accepted image must have sides in 1..AUTOENCODER_MAX_SIDE and every
 * pixel in [0, 1].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../autoencoder/autoencoder.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *pixels = NULL;
    int height = 0, width = 0;
    Error err;
    if (!autoencoder_parse_pgm((const char *)data, size, "fuzz.pgm", &pixels, &height, &width, &err))
        return 0;
    if (height < 1 || width < 1 || height > AUTOENCODER_MAX_SIDE || width > AUTOENCODER_MAX_SIDE) {
        fuzz_fail("accepted a PGM of %d x %d", height, width);
    }
    for (long i = 0; i < (long)height * width; i++)
        if (!(pixels[i] >= 0.0f && pixels[i] <= 1.0f)) {
            fuzz_fail("pixel %ld is %g, outside [0, 1]", i, (double)pixels[i]);
        }
    free(pixels);
    return 0;
}
