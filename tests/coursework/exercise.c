/* exercise.c: the record of which exercise stubs have run (see exercise.h). */
#include "exercise.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

enum { EXERCISE_MAX_RECORDED = 64 };

/* The ids whose stub has run, in the order they first ran.  The ids are
 * string literals in the stubs, so keeping the pointers is safe. */
static const char *missing_ids[EXERCISE_MAX_RECORDED];
static int missing_count;

static bool recorded(const char *id) {
    for (int i = 0; i < missing_count; i++)
        if (strcmp(missing_ids[i], id) == 0) return true;
    return false;
}

void exercise_missing(const char *id) {
    /* A stub may run inside an OpenMP loop: one thread at a time here. */
    OMP("omp critical(exercise_missing)")
    {
        if (!recorded(id) && missing_count < EXERCISE_MAX_RECORDED) {
            missing_ids[missing_count++] = id;
            fprintf(stderr, "exercise %s is not implemented yet: its stub ran\n", id);
        }
    }
}

bool exercise_was_missing(const char *id) {
    bool found;
    OMP("omp critical(exercise_missing)")
    found = recorded(id);
    return found;
}
