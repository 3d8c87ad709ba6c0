#!/usr/bin/env python3
"""compare/compare.py: trains tinyzoo's architectures side by side on the same
toy tasks, and writes one Markdown table and one plot of learning curves per
task to runs/compare/.

    python3 compare/compare.py [--quick] [--seeds N] [--tasks LIST] [--jobs J]

The tasks, and the models compared on each:

    reverse, dates   sequence transduction: seq2seq without attention (the
                     fixed-length context vector), seq2seq with Bahdanau
                     attention, and a GPT-style transformer.  Both programs
                     train on the same exported TSV files (`seq2seq export`)
                     and are scored by this script on the same held-out file,
                     from the greedy outputs each program prints.  reverse
                     also gets exact match against source length, on lengths
                     beyond those trained on.
    sentiment        the generated treebank with negation: TreeRNN, RNTN, a
                     bag of words, and the transformer's encoder (BERT mode)
                     on the flattened sentences.  Both programs generate the
                     same sentences from the same seed and sizes.  Overall
                     (root) accuracy and negation-probe accuracy.
    reconstruction   the generated glyphs: ae, dae and vae against PCA at the
                     same code size (32): validation squared error per image.

Nothing here trains or scores a model by itself: every number comes from a
program in bin/ (its final line, its metrics.csv, or the outputs it printed),
and each run directory keeps the evidence next to a result.json that
compare/check_compare.py checks against the tables.

Runs are independent, so `--jobs 2` runs two at a time, each on one thread;
the results do not depend on --jobs (each program is bit-reproducible from
its seed).  CPU seconds are the user + system time of the training process.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK_NAMES = ["reverse", "dates", "sentiment", "reconstruction"]


# ==== Settings: the default run and the --quick one ================================

def settings(quick):
    """Steps and data sizes per task.  The defaults finish in about 15 minutes
    on 2 cores with 3 seeds; --quick only checks that everything runs."""
    if quick:
        return {
            "reverse": {"steps": 150, "batch": 64, "train_size": 3000, "val_size": 200, "per_length": 20},
            "dates": {"steps": 150, "batch": 64, "train_size": 3000, "val_size": 200},
            "sentiment": {"steps": 100, "batch": 32, "train_size": 1000},
            "reconstruction": {"steps": 100, "batch": 128, "glyphs": 2000},
        }
    return {
        "reverse": {"steps": 1500, "batch": 64, "train_size": 20000, "val_size": 500, "per_length": 100},
        "dates": {"steps": 2000, "batch": 64, "train_size": 20000, "val_size": 500},
        "sentiment": {"steps": 600, "batch": 32, "train_size": 4000},
        "reconstruction": {"steps": 1000, "batch": 128, "glyphs": 12000},
    }


# ==== Running a program ==============================================================

class RunFailed(Exception):
    pass


def program(name):
    return os.path.join(ROOT, "bin", name)


def run_program(args, log_path):
    """Runs one program, its stdout and stderr into log_path; returns
    (stdout text, CPU seconds of that process).  A failure raises RunFailed
    with the log's last lines, so no table is written from a broken run."""
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                   env=env, cwd=ROOT, text=True)
        output = process.stdout.read()
        # wait4 gives this child's own CPU time, even with other runs in flight.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        log.write(output)
    if process.returncode != 0:
        with open(log_path) as log:
            tail = log.read()[-2000:]
        raise RunFailed("%s exited with %d; %s ends with:\n%s" % (
            " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in args),
            process.returncode, log_path, tail))
    return output, usage.ru_utime + usage.ru_stime


def fields_of(output, prefix):
    """The name=value fields of the last output line starting with prefix."""
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    if not lines:
        raise RunFailed("no line starting with %r in the output" % prefix)
    fields = {}
    for word in lines[-1].split():
        if "=" in word:
            name, value = word.split("=", 1)
            try:
                fields[name] = float(value)
            except ValueError:
                fields[name] = value
    return fields


def count_parameters(checkpoint):
    """Parameters in a safetensors checkpoint: every tensor except the
    optimizer's moments, read from the header alone."""
    with open(checkpoint, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return sum(math.prod(info["shape"]) for name, info in header.items()
               if name != "__metadata__" and not name.startswith("optimizer."))


def read_pairs(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t")[:2] for line in f if line.strip()]


def exact_match(predictions_path, pairs_path):
    """Fraction of predicted lines equal to the target column of pairs_path,
    and the per-source-length counts {length: [right, total]}."""
    pairs = read_pairs(pairs_path)
    with open(predictions_path, encoding="utf-8") as f:
        predictions = f.read().split("\n")[:len(pairs)]
    if len(predictions) != len(pairs):
        raise RunFailed("%s has %d lines for %d pairs in %s" % (predictions_path, len(predictions),
                                                                len(pairs), pairs_path))
    by_length = {}
    for (source, target), predicted in zip(pairs, predictions):
        counts = by_length.setdefault(len(source), [0, 0])
        counts[0] += predicted == target
        counts[1] += 1
    right = sum(c[0] for c in by_length.values())
    return right / len(pairs), by_length


# ==== The runs of each task =========================================================
# A Run trains one model on one seed; its result is a dict of metrics saved as
# result.json in its directory, next to the program's own files.

class Run:
    def __init__(self, task, model, seed, directory, train, score, after=None):
        self.task, self.model, self.seed = task, model, seed
        self.directory = directory
        self.train = train      # the training command
        self.score = score      # fn(run, train_output) -> metrics dict
        self.after = after      # a Run whose data this one reads (or None)
        self.done = threading.Event()
        self.error = None


def transduction_runs(task, seeds, s, out):
    """reverse or dates: export the task once per seed, then train the three
    models on the exported files."""
    runs = []
    for seed in seeds:
        data = os.path.join(out, task, "data", "seed-%d" % seed)
        export = [program("seq2seq"), "export", "--task", task, "--seed", seed, "--out", data,
                  "--train-size", s["train_size"], "--val-size", s["val_size"]]
        if task == "reverse":
            # trained on lengths 1-10, scored up to 15 for the length chart
            export += ["--max-length", 10, "--eval-min-length", 1, "--eval-max-length", 15,
                       "--eval-per-length", s["per_length"]]
        exporter = Run(task, "data", seed, data, export, lambda run, output: {})
        runs.append(exporter)
        common = ["--data", os.path.join(data, "train.tsv"), "--val-data", os.path.join(data, "val.tsv"),
                  "--seed", seed] + training_options(s)
        # About 210 thousand parameters each: attention widens the decoder
        # GRU's input (it reads the context too) and adds the score's
        # matrices, so the model without it gets a wider state instead
        # (H=168 against 128), and the transformer a d_model of 92.
        models = {
            "seq2seq, no attention": [program("seq2seq"), "train", "--attention", "none",
                                      "--hidden", 168] + common,
            "seq2seq, Bahdanau attention": [program("seq2seq"), "train", "--attention", "bahdanau",
                                            "--hidden", 128] + common,
            "transformer (GPT)": [program("transformer"), "train", "--task", "pairs", "--mode", "gpt",
                                  "--d-model", 92, "--heads", 4, "--layers", 2] + common,
        }
        for model, command in models.items():
            directory = os.path.join(out, task, slug(model), "seed-%d" % seed)
            runs.append(Run(task, model, seed, directory, command + ["--out", directory],
                            score_transduction, after=exporter))
    return runs


def score_transduction(run, train_output):
    """Greedy outputs for the held-out pairs (and, for reverse, the length
    set), printed by the model's own inference command, scored here with one
    definition of exact match for every model."""
    data = run.after.directory
    checkpoint = os.path.join(run.directory, "model.safetensors")
    metrics = {}
    sets = [("val", "val.tsv")] + ([("length", "length.tsv")] if run.task == "reverse" else [])
    for name, file in sets:
        pairs_path = os.path.join(data, file)
        if run.model.startswith("seq2seq"):
            command = [program("seq2seq"), "translate", "--checkpoint", checkpoint, "--input", pairs_path,
                       "--quiet"]
        else:
            command = [program("transformer"), "generate", "--checkpoint", checkpoint, "--input",
                       pairs_path, "--greedy", "--quiet"]
        predictions = os.path.join(run.directory, "predictions-%s.txt" % name)
        output, _ = run_program([str(a) for a in command], predictions + ".log")
        with open(predictions, "w", encoding="utf-8") as f:
            f.write(output)
        accuracy, by_length = exact_match(predictions, pairs_path)
        if name == "val":
            metrics["exact_match"] = accuracy
        else:
            metrics["exact_match_by_length"] = {str(k): v[0] / v[1] for k, v in sorted(by_length.items())}
            longer = [v for k, v in by_length.items() if k > 10]
            metrics["exact_match_longer"] = sum(v[0] for v in longer) / sum(v[1] for v in longer)
    return metrics


def sentiment_runs(seeds, s, out):
    """The tree models generate train/dev/probe with --train-size, --dev-size
    and --probe-size; the transformer with --examples N makes a dev set of
    N/10 and a probe of 200 from the same generator: the same sentences."""
    runs = []
    size = s["train_size"]
    for seed in seeds:
        tree = ["--train-size", size, "--dev-size", size // 10, "--probe-size", 200, "--test-size", 0,
                "--dim", 32]
        common = ["--task", "sentiment", "--seed", seed] + training_options(s)
        models = {
            "TreeRNN": [program("recursive_nn"), "train", "--model", "rnn"] + tree + common,
            "RNTN": [program("recursive_nn"), "train", "--model", "rntn"] + tree + common,
            "bag of words": [program("recursive_nn"), "train", "--model", "bow"] + tree + common,
            "transformer (BERT)": [program("transformer"), "train", "--mode", "bert", "--examples", size,
                                   "--d-model", 32, "--heads", 2, "--layers", 1] + common,
        }
        for model, command in models.items():
            directory = os.path.join(out, "sentiment", slug(model), "seed-%d" % seed)
            runs.append(Run("sentiment", model, seed, directory, command + ["--out", directory],
                            score_sentiment))
    return runs


def score_sentiment(run, train_output):
    final = fields_of(train_output, "final:")
    if run.model == "transformer (BERT)":
        return {"accuracy": final["val_accuracy"],
                "probe_accuracy": fields_of(train_output, "negation:")["probe_accuracy"]}
    return {"accuracy": final["val_root_accuracy"], "probe_accuracy": final["probe_accuracy"]}


def reconstruction_runs(seeds, s, out):
    runs = []
    for seed in seeds:
        common = ["--glyph-count", s["glyphs"], "--seed", seed] + training_options(s)
        for kind in ["ae", "dae", "vae"]:
            directory = os.path.join(out, "reconstruction", kind, "seed-%d" % seed)
            command = [program("autoencoder"), "train", "--model", kind, "--layers", "784,256,32",
                       "--no-pca", "--out", directory] + common
            runs.append(Run("reconstruction", kind, seed, directory, command, score_reconstruction))
        # PCA has no training program of its own: `autoencoder train` fits it
        # at the end, so one step of a linear 784-32 ae is followed by the fit
        # on the same training images; its CPU time is nearly all the fit.
        directory = os.path.join(out, "reconstruction", "pca", "seed-%d" % seed)
        command = [program("autoencoder"), "train", "--model", "ae", "--layers", "784,32",
                   "--activation", "linear", "--out", directory] + common
        command[command.index("--steps") + 1] = 1
        runs.append(Run("reconstruction", "PCA (32 axes)", seed, directory, command, score_reconstruction))
    return runs


def score_reconstruction(run, train_output):
    final = fields_of(train_output, "final:")
    if run.model.startswith("PCA"):
        return {"squared_error": final["pca_val_squared_error"]}
    return {"squared_error": final["val_squared_error"]}


def training_options(s):
    """What every training run of a task shares: steps, batch size, one
    thread, quiet, no plots, and about ten validation passes, so every model
    has a learning curve."""
    return ["--steps", s["steps"], "--batch", s["batch"], "--eval-every", max(s["steps"] // 10, 1), "--threads", 1, "--quiet",
            "--plot-term", "none"]


def slug(model):
    return "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-").replace("--", "-")


# ==== Running everything ============================================================

def execute(run):
    """Trains, then scores, one run; writes its result.json."""
    if run.after:
        run.after.done.wait()
        if run.after.error:
            run.error = "its data export failed"
            return
    try:
        if os.path.isdir(run.directory):
            shutil.rmtree(run.directory)  # a stale run must not mix with this one
        os.makedirs(os.path.dirname(run.directory), exist_ok=True)
        if run.model != "data":
            os.makedirs(run.directory)
            log = os.path.join(run.directory, "train.log")
        else:
            log = run.directory + ".log"
        output, cpu = run_program([str(a) for a in run.train], log)
        if run.model == "data":
            return
        checkpoint = os.path.join(run.directory, "model.safetensors")
        # PCA keeps 32 axes of 784 numbers and the mean image, not the
        # linear autoencoder's weights that its run also trained.
        parameters = 784 * 32 + 784 if run.model.startswith("PCA") else count_parameters(checkpoint)
        result = {"task": run.task, "model": run.model, "seed": run.seed, "parameters": parameters,
                  "steps": int(fields_of(output, "final:")["step"]),
                  "cpu_seconds": round(cpu, 2), "command": " ".join(str(a) for a in run.train)}
        result["metrics"] = run.score(run, output)
        with open(os.path.join(run.directory, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    except (RunFailed, OSError, KeyError) as failure:
        run.error = str(failure) or repr(failure)
    finally:
        run.done.set()


def run_all(runs, jobs):
    """Runs in order, `jobs` at a time; prints one line per finished run."""
    pending = list(runs)
    lock = threading.Lock()
    finished = [0]
    started = time.time()

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                run = pending.pop(0)
            execute(run)
            with lock:
                finished[0] += 1
                status = "FAILED" if run.error else "ok"
                print("[%3d/%d %5.0f s] %-14s %-28s seed %d  %s" % (
                    finished[0], len(runs), time.time() - started, run.task, run.model, run.seed, status),
                    flush=True)

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [run for run in runs if run.error]


# ==== Tables and plots ==============================================================

def mean_std(values, digits):
    """'mean ± std' over seeds (sample standard deviation), or the value alone
    for one seed."""
    if len(values) == 1:
        return "%.*f" % (digits, values[0])
    return "%.*f ± %.*f" % (digits, statistics.mean(values), digits, statistics.stdev(values))


# The columns of each task's table after model, parameters, steps and CPU
# seconds: (heading, metric key, decimals).
METRIC_COLUMNS = {
    "reverse": [("exact match, held out", "exact_match", 3),
                ("exact match, lengths 11-15", "exact_match_longer", 3)],
    "dates": [("exact match, held out", "exact_match", 3)],
    "sentiment": [("root accuracy, dev", "accuracy", 3), ("negation probe accuracy", "probe_accuracy", 3)],
    "reconstruction": [("val squared error per image", "squared_error", 2)],
}


def load_results(out, task):
    """{model: [result, ...]} from every result.json of a task, in seed order."""
    results = {}
    task_dir = os.path.join(out, task)
    for model_dir in sorted(os.listdir(task_dir)):
        for seed_dir in sorted(os.listdir(os.path.join(task_dir, model_dir))):
            path = os.path.join(task_dir, model_dir, seed_dir, "result.json")
            if os.path.exists(path):
                with open(path) as f:
                    result = json.load(f)
                results.setdefault(result["model"], []).append(result)
    for model in results:
        results[model].sort(key=lambda r: r["seed"])
    return results


def write_table(out, task, order):
    """runs/compare/<task>.md from the result.json files."""
    results = load_results(out, task)
    columns = METRIC_COLUMNS[task]
    lines = ["| model | parameters | training steps | CPU seconds | "
             + " | ".join(c[0] for c in columns) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(columns)]
    for model in [m for m in order if m in results]:
        rows = results[model]
        steps = "%d" % rows[0]["steps"] if not model.startswith("PCA") else "— (fit)"
        cells = [model, "%d" % rows[0]["parameters"], steps,
                 mean_std([r["cpu_seconds"] for r in rows], 1)]
        cells += [mean_std([r["metrics"][key] for r in rows], digits) for _, key, digits in columns]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for rows in results.values() for r in rows})
    text = "\n".join(lines) + "\n\nMean ± standard deviation over seeds %s.\n" % ", ".join(map(str, seeds))
    with open(os.path.join(out, task + ".md"), "w") as f:
        f.write("# %s\n\n%s" % (task, text))
    return text


def curve_of(run_dir, column):
    """(step, value) pairs of a metrics.csv column, skipping empty/nan cells."""
    import csv
    points = []
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        for row in csv.DictReader(f):
            value = row.get(column, "")
            if value not in ("", "nan"):
                points.append((int(float(row["step"])), float(value)))
    return points


CURVE_COLUMNS = {  # each task's validation column in metrics.csv, and the plot's label
    "reverse": ("val_exact_match", "held-out exact match (greedy)"),
    "dates": ("val_exact_match", "held-out exact match (greedy)"),
    "sentiment": ("val_root_accuracy", "dev root accuracy"),
    "reconstruction": ("val_squared_error", "validation squared error per image"),
}


def curve_column(task, model):
    if model.startswith("transformer"):  # its metrics.csv calls every task's metric val_accuracy
        return "val_accuracy"
    return CURVE_COLUMNS[task][0]


def write_curves(out, task, order, plot_term):
    """One plot per task: each model's validation curve, averaged over seeds
    at the steps where every seed logged it."""
    results = load_results(out, task)
    blocks = []
    for model in [m for m in order if m in results]:
        if model.startswith("PCA"):  # no curve: a level line across the others
            level = statistics.mean(r["metrics"]["squared_error"] for r in results[model])
            steps = [step for _, points in blocks for step, _ in points]
            blocks.append((model, [(min(steps), level), (max(steps), level)]))
            continue
        curves = [dict(curve_of(os.path.join(out, task, slug(model), "seed-%d" % r["seed"]),
                                curve_column(task, model))) for r in results[model]]
        steps = sorted(set.intersection(*[set(c) for c in curves]))
        blocks.append((model, [(step, statistics.mean(c[step] for c in curves)) for step in steps]))
    write_plot(out, task + "_curves", blocks, "training step", CURVE_COLUMNS[task][1],
               "%s: validation curves, mean over seeds" % task, plot_term)


def write_length_chart(out, order, plot_term):
    results = load_results(out, "reverse")
    blocks = []
    for model in [m for m in order if m in results]:
        per_seed = [r["metrics"]["exact_match_by_length"] for r in results[model]]
        lengths = sorted(per_seed[0], key=int)
        blocks.append((model, [(int(k), statistics.mean(s[k] for s in per_seed)) for k in lengths]))
    write_plot(out, "reverse_length", blocks, "source length (trained on 1-10)", "exact match",
               "reverse: exact match against source length, mean over seeds", plot_term)


def write_plot(out, name, blocks, xlabel, ylabel, title, plot_term):
    """name.dat (one block per model) and name.gp; name.png when gnuplot is
    installed and plot_term is png."""
    with open(os.path.join(out, name + ".dat"), "w") as f:
        f.write("# %s\n# one block per model (gnuplot index i); columns: x y\n" % title)
        for model, points in blocks:
            f.write("# index: %s\n" % model)
            f.writelines("%g %g\n" % p for p in points)
            f.write("\n\n")
    plots = ", ".join("'%s.dat' index %d with linespoints title '%s'" % (name, i, model)
                      for i, (model, _) in enumerate(blocks))
    terminal = "set terminal pngcairo size 900,560\nset output '%s.png'\n" % name if plot_term == "png" \
        else "set terminal dumb size 100,30\n"
    with open(os.path.join(out, name + ".gp"), "w") as f:
        f.write(terminal + "set title '%s'\nset xlabel '%s'\nset ylabel '%s'\nset key bottom right\n"
                "set grid\nplot %s\n" % (title, xlabel, ylabel, plots))
    if plot_term != "none" and shutil.which("gnuplot"):
        subprocess.run(["gnuplot", name + ".gp"], cwd=out, check=True)


# ==== Main ==========================================================================

MODEL_ORDER = ["seq2seq, no attention", "seq2seq, Bahdanau attention", "transformer (GPT)",
               "TreeRNN", "RNTN", "bag of words", "transformer (BERT)", "ae", "dae", "vae", "PCA (32 axes)"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few steps on small data and 2 seeds: checks that everything runs (CI)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 1..N per model; the tables show mean ± std over them (default 3, quick 2)")
    parser.add_argument("--tasks", default=",".join(TASK_NAMES),
                        help="comma-separated subset of %s (default: all)" % ",".join(TASK_NAMES))
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every model on every task (default: per task, see settings())")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "compare"),
                        help="output directory (default runs/compare)")
    parser.add_argument("--plot-term", choices=["png", "dumb", "none"], default="png",
                        help="plots as PNG (gnuplot), as text, or only their .dat/.gp (default png)")
    a = parser.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    for task in tasks:
        if task not in TASK_NAMES:
            parser.error("--tasks: unknown task %r; expected some of %s" % (task, ",".join(TASK_NAMES)))
    seeds_count = a.seeds if a.seeds is not None else (2 if a.quick else 3)
    if not 1 <= seeds_count <= 100:
        parser.error("--seeds %d: expected 1 to 100" % seeds_count)
    if a.steps is not None and a.steps < 1:
        parser.error("--steps %d: expected at least 1" % a.steps)
    if a.jobs < 1:
        parser.error("--jobs %d: expected at least 1" % a.jobs)
    for name in ["seq2seq", "transformer", "recursive_nn", "autoencoder"]:
        if not os.access(program(name), os.X_OK):
            sys.exit("compare: %s is missing; run `make` first (or `make compare`)" % program(name))

    seeds = list(range(1, seeds_count + 1))
    s = settings(a.quick)
    for task_settings in s.values():
        task_settings["steps"] = a.steps or task_settings["steps"]
    out = os.path.abspath(a.out)
    runs = []
    for task in tasks:
        if os.path.isdir(os.path.join(out, task)):
            shutil.rmtree(os.path.join(out, task))
        if task in ("reverse", "dates"):
            runs += transduction_runs(task, seeds, s[task], out)
        elif task == "sentiment":
            runs += sentiment_runs(seeds, s[task], out)
        else:
            runs += reconstruction_runs(seeds, s[task], out)
    os.makedirs(out, exist_ok=True)
    print("compare: %d runs (%s), seeds %s, %d at a time, into %s" % (
        len(runs), ", ".join(tasks), ", ".join(map(str, seeds)), a.jobs, os.path.relpath(out, os.getcwd())))
    started = time.time()
    failed = run_all(runs, a.jobs)
    if failed:
        for run in failed:
            print("compare: %s, %s, seed %d failed: %s" % (run.task, run.model, run.seed, run.error),
                  file=sys.stderr)
        sys.exit(1)

    summary = ["# tinyzoo: architectures compared on the same toy tasks", "",
               "`python3 compare/compare.py%s%s --seeds %d` on %s, in %.0f s (%d runs, %d at a time)." % (
                   " --quick" if a.quick else "", " --steps %d" % a.steps if a.steps else "", seeds_count, time.strftime("%Y-%m-%d"),
                   time.time() - started, len(runs), a.jobs), ""]
    for task in tasks:
        table = write_table(out, task, MODEL_ORDER)
        write_curves(out, task, MODEL_ORDER, a.plot_term)
        if task == "reverse":
            write_length_chart(out, MODEL_ORDER, a.plot_term)
        summary += ["## " + task, "", table]
        print("\n## %s\n\n%s" % (task, table))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(summary))
    print("compare: wrote %s/README.md, one <task>.md table and one <task>_curves plot per task" %
          os.path.relpath(out, os.getcwd()))


if __name__ == "__main__":
    main()
