/* tests/coursework/grade.c: the coursework grader.
 *
 *   build/coursework/grade                       grade the exercises of tests/coursework/assignment.txt
 *   build/coursework/grade --exercises "a b"     grade these ("all": every graded exercise)
 *   build/coursework/grade --write-reference F   store the solution's values in F (nothing stubbed)
 *   build/coursework/grade --expect zero|full    exit 1 unless every exercise scored 0 / full points
 *   CK_FORK=no gdb --args build/coursework/grade --exercises tanh_backward    step into a test
 *
 * `make grade` runs the first form from the root of the tree and prints a
 * table (exercise, points, status) and then every failure message.  Each
 * exercise is one Check test case whose tests run in forked processes, so a
 * stub or a bug that crashes, or exits through fatal(), loses those tests
 * and no more.  An exercise scores its points times the fraction of its
 * tests that pass.  What the tested code prints on stderr goes to a log
 * (--log, build/coursework/grade.log) so that the table stays readable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exercise.h"
#include "grade.h"
#include "util.h"

enum { MAX_SELECTED = 64, NAME_CHARS = 128 };

static const GradedExercise *const areas[] = {
    grade_common_exercises,       grade_seq2seq_exercises,     grade_recursive_nn_exercises,
    grade_autoencoder_exercises,  grade_transformer_exercises,
};

/* Set once in main, before any test is forked. */
static const char *reference_path = "tests/coursework/reference.txt";
static bool writing_reference;

static const GradedExercise *find_exercise(const char *id) {
    for (size_t a = 0; a < sizeof areas / sizeof areas[0]; a++)
        for (const GradedExercise *e = areas[a]; e->id != NULL; e++)
            if (strcmp(e->id, id) == 0) return e;
    return NULL;
}

/* ---- What the tests call ----------------------------------------------------- */

void grade_require_implemented(const char *id) {
    ck_assert_msg(!exercise_was_missing(id),
                  "%s: not implemented yet (its stub ran): write your code between the "
                  "EXERCISE %s comment and END EXERCISE", id, id);
}

void grade_require_other(const char *id, const char *needed) {
    ck_assert_msg(!exercise_was_missing(needed),
                  "%s: cannot be graded until %s is done (%s is not implemented yet)", id, needed,
                  needed);
}

void grade_gradcheck(const char *id, const char *what, GradcheckForward forward, void *context,
                     Tensor *const *inputs, int input_count) {
    GradcheckMismatch first;
    int wrong = gradcheck_tensor_first(id, forward, context, inputs, input_count,
                                       GRADCHECK_DEFAULT, &first);
    grade_require_implemented(id);
    if (wrong == 0) return;
    ck_assert_msg(first.input >= 0,
                  "%s: %s: every gradient is zero, in backward and in the finite differences alike",
                  id, what);
    const Tensor *input = inputs[first.input];
    ck_abort_msg("%s: %s: gradient of %s differs from finite differences at index %d: got %.6g, "
                 "expected %.6g (%d of the gradients differ)", id, what,
                 input->name ? input->name : "an input", first.index, first.analytic,
                 first.numeric, wrong);
}

/* Appends `name count v1 v2 ...` to the reference file. */
static void write_reference(const char *name, const float *values, int count) {
    FILE *file = fopen(reference_path, "a");
    if (file == NULL) fatal("grade: cannot append to %s", reference_path);
    fprintf(file, "%s %d", name, count);
    for (int i = 0; i < count; i++) fprintf(file, " %.9g", (double)values[i]);
    fprintf(file, "\n");
    if (fclose(file) != 0) fatal("grade: cannot write %s", reference_path);
}

/* The values stored under `name` (malloc'd), or NULL with *count = -1. */
static float *read_reference(const char *name, int *count) {
    FILE *file = fopen(reference_path, "r");
    *count = -1;
    if (file == NULL) return NULL;
    char key[NAME_CHARS];
    float *values = NULL;
    int n;
    while (values == NULL && fscanf(file, "%127s %d", key, &n) == 2 && n >= 0) {
        bool wanted = strcmp(key, name) == 0;
        float *read = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        int i = 0;
        while (i < n && fscanf(file, "%f", &read[i]) == 1) i++;
        if (wanted && i == n) values = read, *count = n;
        else free(read);
        if (i < n) break; /* a damaged file: stop at the damage */
    }
    fclose(file);
    return values;
}

void grade_compare_reference(const char *id, const char *name, const float *values, int count,
                             float atol, float rtol) {
    if (writing_reference) {
        write_reference(name, values, count);
        return;
    }
    int expected_count;
    float *expected = read_reference(name, &expected_count);
    ck_assert_msg(expected != NULL,
                  "%s: no reference values '%s' in %s: regenerate the assignment", id, name,
                  reference_path);
    ck_assert_msg(expected_count == count, "%s: %s has %d values, the reference %d", id, name,
                  count, expected_count);
    for (int i = 0; i < count; i++) {
        float got = values[i], want = expected[i];
        if (fabsf(got - want) <= atol + rtol * fabsf(want)) continue; /* false for NaN too */
        free(expected);
        ck_abort_msg("%s: %s differs from the reference at index %d: got %.6g, expected %.6g", id,
                     name, i, (double)got, (double)want);
    }
    free(expected);
}

/* ---- Running and reporting ---------------------------------------------------- */

typedef struct {
    const GradedExercise *exercise;
    int tests, passed, points;
    const char *status;
} Score;

/* Runs one exercise's tests (forked) and prints its failure messages into `log`. */
static Score grade_exercise(const GradedExercise *exercise, FILE *messages) {
    Suite *suite = suite_create(exercise->id);
    TCase *tc = tcase_create(exercise->id);
    tcase_set_timeout(tc, 120); /* behavioural checks train a little */
    exercise->add_tests(tc);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_SILENT);
    Score score = {.exercise = exercise, .tests = srunner_ntests_run(runner), .status = "pass"};
    TestResult **results = srunner_results(runner);
    bool missing = false, crashed = false, said_missing = false;
    for (int i = 0; i < score.tests; i++) {
        int kind = tr_rtype(results[i]);
        if (kind == CK_PASS) {
            score.passed++;
            continue;
        }
        const char *message = tr_msg(results[i]);
        bool stub_ran = strstr(message, "not implemented yet") != NULL;
        crashed |= kind == CK_ERROR;
        missing |= stub_ran;
        if (stub_ran && said_missing) continue; /* once per exercise is enough */
        said_missing |= stub_ran;
        /* Check's own messages (a signal, a timeout, an exit) lack the id. */
        if (strncmp(message, exercise->id, strlen(exercise->id)) == 0) fprintf(messages, "%s\n", message);
        else fprintf(messages, "%s: %s: %s (see the log)\n", exercise->id, tr_tcname(results[i]), message);
    }
    free(results);
    srunner_free(runner);
    score.points = score.tests > 0 ? exercise->points * score.passed / score.tests : 0;
    if (score.passed < score.tests)
        score.status = missing ? "not implemented" : crashed ? "crashed or timed out" : "fail";
    return score;
}

/* Exercise ids from a string or, when it is NULL, tests/coursework/assignment.txt. */
static int select_exercises(const char *list, const GradedExercise **selected) {
    char buffer[4096] = "";
    if (list == NULL) {
        const char *path = "tests/coursework/assignment.txt";
        FILE *file = fopen(path, "r");
        if (file == NULL) {
            fprintf(stderr, "grade: cannot read %s: run me from the root of an assignment tree, "
                            "or name the exercises with --exercises\n", path);
            exit(EXIT_USAGE_ERROR);
        }
        char line[256];
        while (fgets(line, sizeof line, file))
            if (line[0] != '#' && strlen(buffer) + strlen(line) + 2 < sizeof buffer)
                strcat(strcat(buffer, " "), line);
        fclose(file);
        list = buffer;
    }
    int count = 0;
    if (strcmp(list, "all") == 0) {
        for (size_t a = 0; a < sizeof areas / sizeof areas[0]; a++)
            for (const GradedExercise *e = areas[a]; e->id != NULL && count < MAX_SELECTED; e++)
                selected[count++] = e;
        return count;
    }
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *id = strtok(copy, " \t\n"); id != NULL; id = strtok(NULL, " \t\n")) {
        const GradedExercise *e = find_exercise(id);
        if (e == NULL) {
            fprintf(stderr, "grade: no graded exercise '%s'\n", id);
            exit(EXIT_USAGE_ERROR);
        }
        if (count < MAX_SELECTED) selected[count++] = e;
    }
    return count;
}

static void usage(void) {
    fprintf(stderr, "usage: grade [--exercises \"id ...\"|all] [--reference FILE] "
                    "[--write-reference FILE] [--expect zero|full] [--log FILE]\n");
    exit(EXIT_USAGE_ERROR);
}

int main(int argc, char **argv) {
    const char *list = NULL, *expect = NULL, *log_path = "build/coursework/grade.log";
    for (int i = 1; i < argc; i++) {
        if (i + 1 == argc) usage();
        if (strcmp(argv[i], "--exercises") == 0) list = argv[++i];
        else if (strcmp(argv[i], "--reference") == 0) reference_path = argv[++i];
        else if (strcmp(argv[i], "--write-reference") == 0) reference_path = argv[++i], writing_reference = true;
        else if (strcmp(argv[i], "--expect") == 0) expect = argv[++i];
        else if (strcmp(argv[i], "--log") == 0) log_path = argv[++i];
        else usage();
    }
    if (expect && strcmp(expect, "zero") != 0 && strcmp(expect, "full") != 0) usage();
    const GradedExercise *selected[MAX_SELECTED];
    int count = select_exercises(list, selected);
    if (writing_reference) { /* start empty: each test appends its values */
        FILE *file = fopen(reference_path, "w");
        if (file == NULL || fclose(file) != 0) fatal("grade: cannot write %s", reference_path);
    }
    fflush(stdout);
    if (freopen(log_path, "w", stderr) == NULL) {
        fprintf(stdout, "grade: cannot write the log %s\n", log_path);
        return EXIT_RUNTIME_ERROR;
    }
    /* Failure messages wait in a temporary file so that the table comes first. */
    FILE *messages = tmpfile();
    if (messages == NULL) fatal("grade: cannot create a temporary file");
    printf("%-24s %7s  %s\n", "exercise", "points", "status");
    int earned = 0, possible = 0, unexpected = 0;
    for (int i = 0; i < count; i++) {
        Score s = grade_exercise(selected[i], messages);
        printf("%-24s %3d/%-3d  %s (%d of %d tests pass)\n", s.exercise->id, s.points,
               s.exercise->points, s.status, s.passed, s.tests);
        fflush(stdout);
        earned += s.points, possible += s.exercise->points;
        if (expect && (expect[0] == 'z' ? s.points != 0 || s.passed != 0 : s.passed != s.tests)) {
            fprintf(messages, "grade --expect %s: %s scored %d of %d\n", expect, s.exercise->id,
                    s.points, s.exercise->points);
            unexpected++;
        }
    }
    printf("%-24s %3d/%-3d\n", "total", earned, possible);
    if (ftell(messages) > 0) {
        printf("\n");
        rewind(messages);
        int c;
        while ((c = fgetc(messages)) != EOF) putchar(c);
        printf("(what the code printed is in %s)\n", log_path);
    }
    fclose(messages);
    if (writing_reference) printf("reference values written to %s\n", reference_path);
    return unexpected == 0 ? EXIT_SUCCESS : EXIT_RUNTIME_ERROR;
}
