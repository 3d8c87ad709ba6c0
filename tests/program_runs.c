/* tests/program_runs.c: running the programs and comparing checkpoints
 * (see program_runs.h). */
#include "program_runs.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "json.h"
#include "test_suites.h"

/* Validation every 1000 steps: these runs are shorter, so each validates
 * once, at its last step. */
const TinyArchitecture TINY_ARCHITECTURES[TINY_ARCHITECTURE_COUNT] = {
    {"transformer",
     "train --task reverse --task-length 3 --examples 100 --layers 1 --d-model 8 --heads 2 "
     "--context 8 --batch 4 --eval-every 1000 --eval-batches 1 --plot-term none --quiet",
     "--stop-after"},
    {"seq2seq",
     "train --task reverse --max-length 4 --hidden 8 --embed 4 --batch 4 --val-size 10 "
     "--eval-per-length 2 --eval-max-length 4 --heatmaps 0 --eval-every 1000 --plot-term none --quiet",
     "--stop-at"},
    {"recursive_nn",
     "train --task sentiment --train-size 50 --dev-size 10 --test-size 10 --probe-size 10 --dim 4 "
     "--batch 4 --eval-every 1000 --draw 0 --plot-term none --quiet",
     ""},
    {"autoencoder",
     "train --glyph-size 8 --glyph-count 40 --layers 64,8,2 --batch 4 --eval-every 1000 "
     "--eval-images 10 --no-pca --plot-term none --quiet",
     ""},
};

/* ---- Running a program ----------------------------------------------------------- */

pid_t program_start(const char *log_dir, const char *program, const char *arguments) {
    enum { MAX_ARGUMENTS = 128 };
    char path[1024], words[8192], out_path[1024], err_path[1024];
    snprintf(path, sizeof path, "%s/%s", test_bin_dir(), program);
    snprintf(words, sizeof words, "%s", arguments);
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", log_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", log_dir);
    char *argv[MAX_ARGUMENTS + 2];
    int argc = 0;
    argv[argc++] = path;
    for (char *word = strtok(words, " "); word != NULL && argc <= MAX_ARGUMENTS; word = strtok(NULL, " "))
        argv[argc++] = word;
    argv[argc] = NULL;
    fflush(NULL); /* the child must not write our buffered output again */
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (out < 0 || err < 0 || in < 0 || dup2(out, STDOUT_FILENO) < 0 ||
            dup2(err, STDERR_FILENO) < 0 || dup2(in, STDIN_FILENO) < 0)
            _exit(127);
        execv(path, argv);
        dprintf(STDERR_FILENO, "cannot run %s\n", path);
        _exit(127);
    }
    return pid;
}

static void read_log(const char *path, char *text, size_t size) {
    FILE *file = fopen(path, "rb");
    size_t used = file != NULL ? fread(text, 1, size - 1, file) : 0;
    text[used] = '\0';
    if (file != NULL) fclose(file);
}

void program_wait(pid_t pid, const char *log_dir, ProgramResult *result) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) continue; /* EINTR */
    result->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/stdout.txt", log_dir);
    read_log(path, result->out, sizeof result->out);
    snprintf(path, sizeof path, "%s/stderr.txt", log_dir);
    read_log(path, result->err, sizeof result->err);
}

void program_run(const char *log_dir, const char *program, const char *arguments,
                 ProgramResult *result) {
    program_wait(program_start(log_dir, program, arguments), log_dir, result);
}

/* ---- Checkpoints ----------------------------------------------------------------- */

long checkpoint_step(const char *path) {
    Metadata meta;
    Error err;
    long step = -1;
    if (checkpoint_read_metadata(path, &meta, &err) && !metadata_get_int(&meta, "step", &step, &err))
        step = -1;
    metadata_free(&meta);
    return step;
}

/* A checkpoint in memory: its parsed header and where the data starts. */
typedef struct {
    unsigned char *bytes;
    size_t size;
    JsonValue header;
    const unsigned char *data;
} LoadedFile;

static bool load_file(const char *path, LoadedFile *file, char *why, size_t size) {
    memset(file, 0, sizeof *file);
    FILE *f = fopen(path, "rb");
    struct stat info;
    if (f == NULL || fstat(fileno(f), &info) != 0 || info.st_size < 8) {
        if (f != NULL) fclose(f);
        snprintf(why, size, "%s: missing or shorter than 8 bytes", path);
        return false;
    }
    file->size = (size_t)info.st_size;
    file->bytes = malloc(file->size);
    bool read = fread(file->bytes, 1, file->size, f) == file->size;
    fclose(f);
    uint64_t length = 0;
    for (int i = 7; i >= 0; i--) length = length << 8 | file->bytes[i];
    Error err;
    if (!read || length > file->size - 8 ||
        !json_parse((const char *)file->bytes + 8, (size_t)length, &file->header, &err)) {
        snprintf(why, size, "%s: unreadable header", path);
        free(file->bytes);
        return false;
    }
    file->data = file->bytes + 8 + length;
    return true;
}

static void free_file(LoadedFile *file) {
    json_free(&file->header);
    free(file->bytes);
}

/* Entry `name` of b equals entry `value` of a: the same metadata strings,
 * or the same shape and data bytes. */
static bool same_entry(const LoadedFile *a, const LoadedFile *b, const char *name,
                       const JsonValue *value, char *why, size_t size) {
    const JsonValue *other = json_get(&b->header, name);
    if (other == NULL) return snprintf(why, size, "\"%s\" is missing from the second", name), false;
    if (strcmp(name, "__metadata__") == 0) {
        for (int i = 0; i < value->count; i++) {
            const JsonValue *mine = &value->items[i], *theirs = json_get(other, value->keys[i]);
            if (theirs == NULL || theirs->type != JSON_STRING || strcmp(mine->string, theirs->string) != 0)
                return snprintf(why, size, "metadata \"%s\": \"%s\" and \"%s\"", value->keys[i],
                                mine->string, theirs != NULL && theirs->type == JSON_STRING ? theirs->string : "(none)"),
                       false;
        }
        return value->count == other->count ||
               (snprintf(why, size, "the metadata have %d and %d keys", value->count, other->count), false);
    }
    const JsonValue *offsets_a = json_get(value, "data_offsets"), *offsets_b = json_get(other, "data_offsets");
    bool valid = offsets_a != NULL && offsets_b != NULL && offsets_a->count == 2 && offsets_b->count == 2;
    if (!valid) return snprintf(why, size, "tensor \"%s\" has no data_offsets", name), false;
    size_t begin_a = (size_t)offsets_a->items[0].number, end_a = (size_t)offsets_a->items[1].number;
    size_t begin_b = (size_t)offsets_b->items[0].number, end_b = (size_t)offsets_b->items[1].number;
    size_t available_a = a->size - (size_t)(a->data - a->bytes), available_b = b->size - (size_t)(b->data - b->bytes);
    if (begin_a > end_a || end_a > available_a || begin_b > end_b || end_b > available_b)
        return snprintf(why, size, "tensor \"%s\" lies outside its file's data", name), false;
    if (end_a - begin_a != end_b - begin_b)
        return snprintf(why, size, "tensor \"%s\" has %zu and %zu bytes", name, end_a - begin_a, end_b - begin_b),
               false;
    for (size_t i = 0; i < end_a - begin_a; i += 4)
        if (memcmp(a->data + begin_a + i, b->data + begin_b + i, 4) != 0) {
            float x, y;
            memcpy(&x, a->data + begin_a + i, 4), memcpy(&y, b->data + begin_b + i, 4);
            return snprintf(why, size, "tensor \"%s\" differs at element %zu: %.9g and %.9g", name, i / 4,
                            (double)x, (double)y),
                   false;
        }
    return true;
}

bool checkpoints_identical(const char *a, const char *b, char *why, size_t size) {
    LoadedFile fa, fb;
    if (!load_file(a, &fa, why, size)) return false;
    if (!load_file(b, &fb, why, size)) {
        free_file(&fa);
        return false;
    }
    bool same = fa.header.count == fb.header.count ||
                (snprintf(why, size, "%d and %d entries", fa.header.count, fb.header.count), false);
    for (int i = 0; same && i < fa.header.count; i++)
        same = same_entry(&fa, &fb, fa.header.keys[i], &fa.header.items[i], why, size);
    free_file(&fa);
    free_file(&fb);
    return same;
}

bool checkpoint_all_finite(const char *path, char *why, size_t size) {
    LoadedFile file;
    if (!load_file(path, &file, why, size)) return false;
    size_t available = file.size - (size_t)(file.data - file.bytes);
    bool finite = true;
    for (int i = 0; finite && i < file.header.count; i++) {
        const JsonValue *offsets = json_get(&file.header.items[i], "data_offsets");
        if (strcmp(file.header.keys[i], "__metadata__") == 0 || offsets == NULL || offsets->count != 2) continue;
        size_t begin = (size_t)offsets->items[0].number, end = (size_t)offsets->items[1].number;
        if (begin > end || end > available) {
            snprintf(why, size, "%s: tensor \"%s\" lies outside the data", path, file.header.keys[i]);
            finite = false;
        }
        for (size_t at = begin; finite && at + 4 <= end; at += 4) {
            float x;
            memcpy(&x, file.data + at, 4);
            if (!isfinite(x)) {
                snprintf(why, size, "%s: tensor \"%s\" holds %g at element %zu", path, file.header.keys[i],
                         (double)x, (at - begin) / 4);
                finite = false;
            }
        }
    }
    free_file(&file);
    return finite;
}

bool runs_identical(const char *dir_a, const char *dir_b, char *why, size_t size) {
    const char *files[] = {"model.safetensors", "metrics.csv", "train_loss.csv"};
    for (int f = 0; f < 3; f++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", dir_a, files[f]);
        snprintf(b, sizeof b, "%s/%s", dir_b, files[f]);
        if (f == 2 && access(a, F_OK) != 0) continue;
        bool same = f == 0 ? checkpoints_identical(a, b, why, size) : files_identical(a, b, why, size);
        if (!same) return false;
    }
    return true;
}

char *read_entire_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    char *text = NULL;
    size_t used = 0, capacity = 0, got;
    do {
        if (capacity - used < 4096) text = realloc(text, capacity = 2 * capacity + 4096);
        got = fread(text + used, 1, capacity - used - 1, file);
        used += got;
    } while (got > 0);
    fclose(file);
    text[used] = '\0';
    *size = used;
    return text;
}

bool files_identical(const char *a, const char *b, char *why, size_t size) {
    size_t na = 0, nb = 0;
    char *x = read_entire_file(a, &na), *y = read_entire_file(b, &nb);
    bool same = x != NULL && y != NULL && na == nb && memcmp(x, y, na) == 0;
    if (x == NULL || y == NULL) {
        snprintf(why, size, "%s is missing", x == NULL ? a : b);
    } else if (!same) {
        size_t at = 0, line_start = 0;
        while (at < na && at < nb && x[at] == y[at])
            if (x[at++] == '\n') line_start = at;
        snprintf(why, size, "%s and %s differ from byte %zu: \"%.80s\" and \"%.80s\"", a, b, at,
                 x + line_start, y + line_start);
    }
    free(x), free(y);
    return same;
}
