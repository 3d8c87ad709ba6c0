/* tests/fuzz/fuzz_idx.c: libFuzzer target for the IDX readers
 * (autoencoder/data.c autoencoder_read_idx_images and _labels).
 *
 * These readers stream a file through zlib's gz* functions (so that gzip
 * and plain files read alike), which need a file, not a buffer.  The input
 * is therefore put in an anonymous in-memory file (memfd_create: nothing
 * touches the disk) and passed by its /proc/self/fd path.
 *
 * An input whose magic says "labels" (0x00000801) is read as the labels of
 * a data set of as many images as its header claims (when that is small) or
 * of 3 images otherwise, so both the matching and the mismatched count are
 * reached.  Everything else is read as images.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../autoencoder/autoencoder.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The in-memory file, created once and rewritten for each input. */
static const char *memory_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.idx", 0);
        if (fd < 0) fuzz_fail("memfd_create: %s", strerror(errno));
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
        fuzz_fail("writing the in-memory file: %s", strerror(errno));
    return path;
}

static uint32_t big_endian32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = memory_file(data, size);
    Error err;
    AutoencoderDataset images;
    if (size >= 8 && big_endian32(data) == 0x801u) {
        uint32_t claimed = big_endian32(data + 4);
        memset(&images, 0, sizeof images);
        images.count = claimed <= 4096 ? (int)claimed : 3;
        images.height = images.width = 1;
        images.images = calloc((size_t)images.count + 1, sizeof(float));
        images.labels = calloc((size_t)images.count + 1, sizeof(int));
        if (autoencoder_read_idx_labels(path, &images, &err))
            for (int n = 0; n < images.count; n++)
                if (images.labels[n] < 0 || images.labels[n] > 255 || images.labels[n] >= images.class_count) {
                    fuzz_fail("label %d of image %d with %d classes", images.labels[n], n,
                            images.class_count);
                }
        autoencoder_dataset_free(&images);
        return 0;
    }
    if (autoencoder_read_idx_images(path, &images, &err)) {
        size_t total = (size_t)images.count * images.height * images.width;
        for (size_t i = 0; i < total; i++)
            if (!(images.images[i] >= 0.0f && images.images[i] <= 1.0f))
                fuzz_fail("pixel %zu is %g, outside [0, 1]", i, (double)images.images[i]);
        autoencoder_dataset_free(&images);
    }
    return 0;
}
