/* tests/test_faults.c: the four model programs under crashes and faults.
 *
 *   - kill mid-save: a run that checkpoints after every step is killed
 *     with SIGKILL at random (seeded) moments, 13 times per architecture
 *     (52 in all): once its checkpoint has passed a random step, after a
 *     random part of a step, so that kills fall in every phase of a save.
 *     After each kill the checkpoint must load (the program's own `eval`
 *     reads it) and be the one seen before the kill or a newer one, never a
 *     torn file; the next run resumes from it.  At the end, the killed and
 *     resumed run must equal an uninterrupted one bit for bit: checkpoint
 *     (weights, optimizer moments, metadata) and metrics.csv.
 *   - full disk: a small tmpfs filled up, then a resume that cannot save
 *     its checkpoint; then the same tmpfs remounted read-only.  A clear
 *     error (exit 1, the path, the reason) and the previous checkpoint
 *     unchanged, byte for byte.  Mounting needs CAP_SYS_ADMIN; without it
 *     a file size limit (RLIMIT_FSIZE, EFBIG) stands in for the full disk,
 *     and a directory without write permission for the read-only one, which
 *     root ignores: as root without CAP_SYS_ADMIN that part says it is
 *     skipped.
 *   - numerics: a learning rate of 1e20 makes every model diverge.  With
 *     --check-numerics the run stops at the first NaN or Inf, naming the op,
 *     the tensor and the step; without it, at the first non-finite loss (or
 *     at a checkpoint it refuses to write), and no checkpoint written holds
 *     a NaN or an Inf.
 */
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "program_runs.h"
#include "rng.h"
#include "test_suites.h"
#include "util.h"

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static void sleep_seconds(double seconds) {
    struct timespec pause = {.tv_sec = (time_t)seconds,
                             .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) continue;
}

/* ==== Kill mid-save ============================================================ */

enum { KILLS_PER_ARCHITECTURE = 13, KILL_RUN_STEPS = 100 };

/* train --steps `steps` --checkpoint-every `every` (0: only at the end)
 * into out_dir, resuming from its checkpoint when there is one. */
static pid_t start_training(const TinyArchitecture *a, const char *dir, const char *out_dir, int steps,
                            int every) {
    char checkpoint[700], arguments[4096];
    snprintf(checkpoint, sizeof checkpoint, "%s/model.safetensors", out_dir);
    snprintf(arguments, sizeof arguments, "%s --steps %d --checkpoint-every %d --out %s%s", a->tiny, steps,
             every, out_dir, exists(checkpoint) ? " --resume" : "");
    return program_start(dir, a->program, arguments);
}

/* Seconds a program run of `steps` steps with a checkpoint after each takes. */
static double time_run(const TinyArchitecture *a, const char *dir, const char *out_dir, int steps) {
    ProgramResult r;
    double start = time_seconds();
    program_wait(start_training(a, dir, out_dir, steps, 1), dir, &r);
    ck_assert_msg(r.status == 0, "%s: a run of %d steps failed: %s", a->program, steps, r.err);
    return time_seconds() - start;
}

/* Waits until the checkpoint at `path` is at step `target` or later; false
 * when the program ended first or a minute went by. */
static bool wait_for_step(pid_t pid, const char *path, long target) {
    double deadline = time_seconds() + 60;
    while (checkpoint_step(path) < target) {
        siginfo_t info = {0};
        bool ended = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
        if (ended || time_seconds() > deadline) return false;
        sleep_seconds(2e-4);
    }
    return true;
}

START_TEST(test_kill_mid_save) {
    const TinyArchitecture *a = &TINY_ARCHITECTURES[_i];
    char dir[512], reference[600], killed[600], checkpoint[700], arguments[4096];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("kill"));
    snprintf(reference, sizeof reference, "%s/reference", dir);
    snprintf(killed, sizeof killed, "%s/killed", dir);
    snprintf(checkpoint, sizeof checkpoint, "%s/model.safetensors", killed);
    /* How long a step takes with its save (fsync makes that the machine's
     * disk latency more than anything), from runs of 1 and 11 steps. */
    char timing[600];
    snprintf(timing, sizeof timing, "%s/timing-1", dir);
    double one_step = time_run(a, dir, timing, 1);
    snprintf(timing, sizeof timing, "%s/timing-11", dir);
    double step_time = (time_run(a, dir, timing, 11) - one_step) / 10;
    ProgramResult r;
    program_wait(start_training(a, dir, reference, KILL_RUN_STEPS, 0), dir, &r);
    ck_assert_msg(r.status == 0, "%s: the uninterrupted run failed: %s", a->program, r.err);
    /* Each kill waits for the checkpoint to pass a random step 1 to 5 steps
     * ahead, then for a random part of a step (most of which is the save:
     * opening, writing, fsync, rename), so the kills land at every phase of
     * a save, and 13 of them never reach the end of the run. */
    Rng rng;
    rng_seed(&rng, 20261128, (uint64_t)_i);
    long previous_step = 0;
    for (int kill_number = 0; kill_number < KILLS_PER_ARCHITECTURE; kill_number++) {
        long target = previous_step + 1 + (long)rng_below(&rng, 5);
        pid_t pid = start_training(a, dir, killed, KILL_RUN_STEPS, 1);
        bool reached = wait_for_step(pid, checkpoint, target);
        sleep_seconds((step_time > 0 ? step_time : 0) * rng_uniform(&rng));
        kill(pid, SIGKILL);
        program_wait(pid, dir, &r);
        ck_assert_msg(reached && r.signal == SIGKILL, "%s, kill %d: the run ended (status %d) before its "
                      "checkpoint reached step %ld: %s", a->program, kill_number, r.status, target, r.err);
        /* The checkpoint we saw at `target`, or a newer one: never torn. */
        long step = checkpoint_step(checkpoint);
        ck_assert_msg(step >= target && step <= KILL_RUN_STEPS, "%s, kill %d: the checkpoint's step is %ld "
                      "after %ld was seen: torn or lost", a->program, kill_number, step, target);
        previous_step = step;
        snprintf(arguments, sizeof arguments, "eval --checkpoint %s --out %s/eval", checkpoint, dir);
        ProgramResult eval;
        program_run(dir, a->program, arguments, &eval);
        ck_assert_msg(eval.status == 0, "%s, kill %d: the checkpoint of step %ld does not load: %s", a->program,
                      kill_number, step, eval.err);
    }
    program_wait(start_training(a, dir, killed, KILL_RUN_STEPS, 0), dir, &r);
    char final_line[64];
    snprintf(final_line, sizeof final_line, "final: step=%d ", KILL_RUN_STEPS);
    ck_assert_msg(r.status == 0 && strstr(r.out, final_line) != NULL,
                  "%s: the last resume did not finish (status %d): %s%s", a->program, r.status, r.out, r.err);
    char why[1024];
    ck_assert_msg(runs_identical(reference, killed, why, sizeof why),
                  "%s: the killed and resumed run differs from the uninterrupted one: %s", a->program, why);
    test_remove_tree(dir);
}
END_TEST

/* ==== Full disk, read-only directory ============================================ */

/* Fills the file system of `dir` until one page (4 KiB) is left: room for
 * config.txt, not for a checkpoint, so the run fails at its first save. */
static void fill_disk(const char *dir) {
    struct statvfs info;
    ck_assert(statvfs(dir, &info) == 0);
    unsigned long long free_bytes = (unsigned long long)info.f_bavail * info.f_frsize;
    char path[700];
    snprintf(path, sizeof path, "%s/filler", dir);
    FILE *file = fopen(path, "wb");
    ck_assert(file != NULL);
    static const char zeros[4096];
    for (unsigned long long left = free_bytes - 4096; left > 0;) {
        size_t chunk = left < sizeof zeros ? (size_t)left : sizeof zeros;
        ck_assert(fwrite(zeros, 1, chunk, file) == chunk);
        left -= chunk;
    }
    ck_assert(fclose(file) == 0);
}

/* Resumes the run in run_dir, which cannot be written (or, with
 * `file_size_limit` bytes, where no file may grow past that), and checks the
 * error and that the previous checkpoint is unchanged. */
static void assert_failed_save_keeps_checkpoint(const TinyArchitecture *a, const char *dir, const char *run_dir,
                                                const char *reason, rlim_t file_size_limit) {
    char checkpoint[700], arguments[4096];
    snprintf(checkpoint, sizeof checkpoint, "%s/model.safetensors", run_dir);
    size_t size_before, size_after;
    char *before = read_entire_file(checkpoint, &size_before);
    ck_assert_msg(before != NULL, "%s: no checkpoint %s", a->program, checkpoint);
    snprintf(arguments, sizeof arguments, "%s --steps 8 --checkpoint-every 1 --resume --out %s", a->tiny, run_dir);
    /* The limit and the ignored SIGXFSZ (else it kills the writer) pass on
     * to the program; the kernel then refuses its writes with EFBIG. */
    struct rlimit saved_limit, limit;
    ck_assert(getrlimit(RLIMIT_FSIZE, &saved_limit) == 0);
    limit = saved_limit;
    if (file_size_limit > 0) limit.rlim_cur = file_size_limit;
    void (*saved_handler)(int) = signal(SIGXFSZ, file_size_limit > 0 ? SIG_IGN : SIG_DFL);
    ck_assert(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    ProgramResult r;
    program_run(dir, a->program, arguments, &r);
    setrlimit(RLIMIT_FSIZE, &saved_limit);
    signal(SIGXFSZ, saved_handler);
    ck_assert_msg(r.signal == 0 && r.status == 1, "%s, %s: status %d (signal %d), expected 1: %s", a->program,
                  reason, r.status, r.signal, r.err);
    ck_assert_msg(strstr(r.err, run_dir) != NULL && strstr(r.err, reason) != NULL,
                  "%s: stderr should name %s and say \"%s\": %s", a->program, run_dir, reason, r.err);
    char *after = read_entire_file(checkpoint, &size_after);
    ck_assert_msg(after != NULL && size_before == size_after && memcmp(before, after, size_before) == 0,
                  "%s, %s: the previous checkpoint changed", a->program, reason);
    char tmp[720];
    snprintf(tmp, sizeof tmp, "%s.tmp", checkpoint);
    ck_assert_msg(!exists(tmp), "%s, %s: %s was left behind", a->program, reason, tmp);
    free(before), free(after);
}

/* A private tmpfs at `disk`: private to this test's process and the
 * programs it starts, so it disappears with them even if a check fails. */
static bool mount_private_tmpfs(const char *disk, char *why, size_t size) {
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", disk, "tmpfs", 0, "size=2m") != 0) {
        snprintf(why, size, "cannot mount a tmpfs (%s)", strerror(errno));
        return false;
    }
    return true;
}

START_TEST(test_full_disk_keeps_checkpoint) {
    const TinyArchitecture *a = &TINY_ARCHITECTURES[_i];
    char dir[512], disk[600], run_dir[700], arguments[4096], why[256];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("disk"));
    snprintf(disk, sizeof disk, "%s/disk", dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", disk);
    ck_assert(mkdir(disk, 0755) == 0);
    bool mounted = mount_private_tmpfs(disk, why, sizeof why);
    snprintf(arguments, sizeof arguments, "%s --steps 4 --out %s", a->tiny, run_dir);
    ProgramResult r;
    program_run(dir, a->program, arguments, &r);
    ck_assert_msg(r.status == 0, "%s: %s", a->program, r.err);
    if (mounted) {
        fill_disk(disk);
        assert_failed_save_keeps_checkpoint(a, dir, run_dir, "No space left on device", 0);
        ck_assert(mount(NULL, disk, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
        assert_failed_save_keeps_checkpoint(a, dir, run_dir, "Read-only file system", 0);
        ck_assert(umount(disk) == 0);
    } else {
        /* Without a tmpfs, a full disk as a file size limit of 4 KiB (the
         * checkpoints are larger), and a read-only directory as one without
         * write permission, unless we are root, whom permissions do not stop. */
        assert_failed_save_keeps_checkpoint(a, dir, run_dir, "File too large", 4096);
        ck_assert(chmod(run_dir, 0555) == 0);
        if (access(run_dir, W_OK) == 0)
            fprintf(stderr, "test_full_disk_keeps_checkpoint(%s): read-only directory skipped: %s, and as "
                            "root a directory without write permission is still writable\n", a->program, why);
        else
            assert_failed_save_keeps_checkpoint(a, dir, run_dir, "Permission denied", 0);
        chmod(run_dir, 0755);
    }
    test_remove_tree(dir);
}
END_TEST

/* ==== Numerics ================================================================== */

START_TEST(test_diverging_run_stops) {
    const TinyArchitecture *a = &TINY_ARCHITECTURES[_i / 2];
    bool check_numerics = _i % 2 == 1;
    char dir[512], arguments[4096], checkpoint[700], why[1024];
    snprintf(dir, sizeof dir, "%s", test_temp_dir("numerics"));
    snprintf(arguments, sizeof arguments, "%s --lr 1e20 --steps 50 --checkpoint-every 1 --out %s/run%s", a->tiny,
             dir, check_numerics ? " --check-numerics" : "");
    ProgramResult r;
    program_run(dir, a->program, arguments, &r);
    const char *mode = check_numerics ? "--check-numerics" : "no flag";
    ck_assert_msg(r.signal == 0 && r.status == 1, "%s, %s: status %d (signal %d), expected 1: %s%s", a->program,
                  mode, r.status, r.signal, r.out, r.err);
    if (check_numerics) /* "check-numerics: op linear produced Inf in the values of tensor 'linear' (4,2) at element 0, step 1" */
        ck_assert_msg(strstr(r.err, "check-numerics: op ") && strstr(r.err, " of tensor '") && strstr(r.err, ", step "),
                      "%s: the message should name the op, the tensor and the step: %s", a->program, r.err);
    else /* the loss, or a checkpoint refused, and the remedy */
        ck_assert_msg((strstr(r.err, "loss became") || strstr(r.err, "not saved")) && strstr(r.err, "lower --lr"),
                      "%s: the message should say the loss diverged: %s", a->program, r.err);
    snprintf(checkpoint, sizeof checkpoint, "%s/run/model.safetensors", dir);
    if (exists(checkpoint))
        ck_assert_msg(checkpoint_all_finite(checkpoint, why, sizeof why), "%s, %s: %s", a->program, mode, why);
    test_remove_tree(dir);
}
END_TEST

Suite *faults_suite(void) {
    Suite *s = suite_create("faults");
    TCase *kills = tcase_create("kill_mid_save");
    tcase_set_timeout(kills, 120);
    tcase_add_loop_test(kills, test_kill_mid_save, 0, TINY_ARCHITECTURE_COUNT);
    suite_add_tcase(s, kills);
    TCase *disk = tcase_create("full_disk");
    tcase_set_timeout(disk, 60);
    tcase_add_loop_test(disk, test_full_disk_keeps_checkpoint, 0, TINY_ARCHITECTURE_COUNT);
    suite_add_tcase(s, disk);
    TCase *numerics = tcase_create("numerics");
    tcase_set_timeout(numerics, 60);
    tcase_add_loop_test(numerics, test_diverging_run_stops, 0, 2 * TINY_ARCHITECTURE_COUNT);
    suite_add_tcase(s, numerics);
    return s;
}
