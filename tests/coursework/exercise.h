/* exercise.h: what the stub of an unsolved coursework exercise calls.
 *
 * The assignment generator (tests/coursework/make_assignment.py) copies this
 * file and exercise.c into the student tree's common/ and includes it in
 * every file where it replaced an EXERCISE region by its stub.  The
 * reference tree never includes it.
 *
 * A stub must fail clearly but never crash the program around it: it calls
 * exercise_missing("<id>"), which says so on stderr (once per exercise) and
 * remembers it, then returns something harmless (zeros, an empty result).
 * The grader asks exercise_was_missing("<id>") after running the code, and
 * reports "not implemented" rather than a puzzling wrong number.
 */
#ifndef TINYZOO_EXERCISE_H
#define TINYZOO_EXERCISE_H

#include <stdbool.h>

void exercise_missing(const char *id);
/* True once the stub of exercise `id` has run in this process. */
bool exercise_was_missing(const char *id);

#endif
