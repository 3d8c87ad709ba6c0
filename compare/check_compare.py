#!/usr/bin/env python3
"""compare/check_compare.py [DIR] [--mutation-test]: checks that every number
in the comparison tables of DIR (default runs/compare) comes from the runs.

For each <task>.md table it re-reads every run directory and checks, on its
own (it shares no code with compare.py):
  - each cell (parameters, steps, CPU seconds, every metric as mean ± std
    over the seeds) against the result.json files of that model's seeds;
  - each result.json against the programs' own files:
      parameters   = the tensors of model.safetensors, optimizer state excluded
      steps        = the last step of metrics.csv
      exact match  = recomputed from the predictions the program printed and
                     the target column of the shared TSV file
      accuracy, squared error = the program's final line in train.log and the
                     last validation row of its metrics.csv.
Exits 1 with one line per disagreement.

--mutation-test copies DIR, changes one table cell, then one result.json
value, then one prediction, and requires the check to fail each time: a
check that cannot fail proves nothing.
"""
import csv
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PCA_PARAMETERS = 784 * 32 + 784  # 32 axes of 784 pixels, and the mean image


def parse_table(path):
    """The header cells and the rows (lists of cells) of the table in a .md file."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("|") and not line.startswith("|---"):
                rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[0], rows[1:]


def cell_of(values, digits):
    if len(values) == 1:
        return "%.*f" % (digits, values[0])
    return "%.*f ± %.*f" % (digits, statistics.mean(values), digits, statistics.stdev(values))


def digits_of(cell):
    number = cell.split("±")[0].strip()
    return len(number.split(".")[1]) if "." in number else 0


def last_fields(path, prefix):
    fields = {}
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.startswith(prefix)]
    for name, value in re.findall(r"([A-Za-z_]\w*)=(\S+)", lines[-1] if lines else ""):
        fields[name] = value
    return fields


def metrics_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def last_value(rows, column):
    values = [row[column] for row in rows if row.get(column, "") not in ("", "nan")]
    return float(values[-1]) if values else None


def safetensors_parameters(path):
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return sum(math.prod(v["shape"]) for k, v in header.items()
               if k != "__metadata__" and not k.startswith("optimizer."))


def exact_match(predictions, pairs, longer_than=None):
    with open(pairs, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    with open(predictions, encoding="utf-8") as f:
        outputs = f.read().split("\n")
    chosen = [(i, r) for i, r in enumerate(rows) if longer_than is None or len(r[0]) > longer_than]
    return sum(outputs[i] == r[1] for i, r in chosen) / len(chosen)


def check_run(directory, result, problems):
    """result.json against the files the programs wrote."""
    where = os.path.relpath(directory, ROOT)
    model, metrics = result["model"], result["metrics"]

    def expect(what, claimed, actual, tolerance=0.0):
        if actual is None or abs(claimed - actual) > tolerance:
            problems.append("%s: %s is %s in result.json but %s in the run's files" % (
                where, what, claimed, actual))

    is_pca = model.startswith("PCA")
    expect("parameters", result["parameters"],
           PCA_PARAMETERS if is_pca else safetensors_parameters(os.path.join(directory, "model.safetensors")))
    rows = metrics_rows(os.path.join(directory, "metrics.csv"))
    expect("steps", result["steps"], last_value(rows, "step"))
    final = last_fields(os.path.join(directory, "train.log"), "final:")
    task = result["task"]
    if task in ("reverse", "dates"):
        data = os.path.join(os.path.dirname(os.path.dirname(directory)), "data", os.path.basename(directory))
        expect("exact_match", metrics["exact_match"],
               exact_match(os.path.join(directory, "predictions-val.txt"), os.path.join(data, "val.tsv")))
        if task == "reverse":
            expect("exact_match_longer", metrics["exact_match_longer"],
                   exact_match(os.path.join(directory, "predictions-length.txt"),
                               os.path.join(data, "length.tsv"), longer_than=10), 1e-12)
    elif task == "sentiment":
        column = "val_accuracy" if "transformer" in model else "val_root_accuracy"
        expect("accuracy", metrics["accuracy"], float(final.get(column, "nan")))
        expect("accuracy (metrics.csv)", metrics["accuracy"], last_value(rows, column), 5e-5)
        probe = last_fields(os.path.join(directory, "train.log"),
                            "negation:" if "transformer" in model else "final:")
        expect("probe_accuracy", metrics["probe_accuracy"], float(probe.get("probe_accuracy", "nan")))
    else:
        key = "pca_val_squared_error" if is_pca else "val_squared_error"
        expect("squared_error", metrics["squared_error"], float(final.get(key, "nan")))
        if not is_pca:
            expect("squared_error (metrics.csv)", metrics["squared_error"],
                   last_value(rows, "val_squared_error"), 5e-4)


def check(out):
    """Every problem found in DIR, as a list of lines, and the counts checked."""
    problems, tables, runs = [], 0, 0
    for name in sorted(os.listdir(out)):
        task = name[:-3]
        if not name.endswith(".md") or name == "README.md" or not os.path.isdir(os.path.join(out, task)):
            continue
        tables += 1
        header, rows = parse_table(os.path.join(out, name))
        results = {}
        for model_dir in sorted(os.listdir(os.path.join(out, task))):
            if model_dir == "data":
                continue
            for seed_dir in sorted(os.listdir(os.path.join(out, task, model_dir))):
                directory = os.path.join(out, task, model_dir, seed_dir)
                if not os.path.isdir(directory):
                    continue
                with open(os.path.join(directory, "result.json")) as f:
                    result = json.load(f)
                results.setdefault(result["model"], []).append(result)
                check_run(directory, result, problems)
                runs += 1
        if sorted(row[0] for row in rows) != sorted(results):
            problems.append("%s: the table's models %s are not the runs' %s" % (
                name, [row[0] for row in rows], sorted(results)))
        metric_keys = {"exact match, held out": "exact_match", "exact match, lengths 11-15": "exact_match_longer",
                       "root accuracy, dev": "accuracy", "negation probe accuracy": "probe_accuracy",
                       "val squared error per image": "squared_error"}
        for row in rows:
            seeds = sorted(results.get(row[0], []), key=lambda r: r["seed"])
            if not seeds:
                continue
            for heading, cell in zip(header[1:], row[1:]):
                if heading == "parameters":
                    expected = "%d" % seeds[0]["parameters"]
                elif heading == "training steps":
                    expected = cell if row[0].startswith("PCA") else "%d" % seeds[0]["steps"]
                elif heading == "CPU seconds":
                    expected = cell_of([r["cpu_seconds"] for r in seeds], digits_of(cell))
                elif heading in metric_keys:
                    expected = cell_of([r["metrics"][metric_keys[heading]] for r in seeds], digits_of(cell))
                else:
                    problems.append("%s: unknown column %r" % (name, heading))
                    continue
                if cell != expected:
                    problems.append("%s: %s, %s: the table says %r, the %d runs give %r" % (
                        name, row[0], heading, cell, len(seeds), expected))
    if tables == 0:
        problems.append("%s: no comparison tables (run `make compare` first)" % out)
    return problems, tables, runs


def mutation_test(out):
    """The check must fail on a copy of DIR with one number changed."""
    def mutate_table(copy):
        """The last digit of the mean in the first row's last cell, plus one."""
        path = os.path.join(copy, sorted(n for n in os.listdir(copy) if n.endswith(".md") and n != "README.md")[0])
        with open(path, encoding="utf-8") as f:
            text = f.read()
        _, rows = parse_table(path)
        line = next(l for l in text.splitlines() if l.startswith("| %s |" % rows[0][0]))
        cells = list(rows[0])
        mean = cells[-1].split(" ± ")[0]
        cells[-1] = cells[-1].replace(mean, mean[:-1] + str((int(mean[-1]) + 1) % 10), 1)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(line, "| " + " | ".join(cells) + " |", 1))

    def mutate_result(copy):
        for base, _, files in sorted(os.walk(copy)):
            if "result.json" in files:
                path = os.path.join(base, "result.json")
                with open(path) as f:
                    result = json.load(f)
                key = sorted(k for k, v in result["metrics"].items() if isinstance(v, float))[0]
                result["metrics"][key] += 0.01
                with open(path, "w") as f:
                    json.dump(result, f)
                return

    def mutate_prediction(copy):
        """The first prediction's right/wrong flipped: made equal to its
        target when it was wrong, or one character longer when it was right."""
        for base, _, files in sorted(os.walk(copy)):
            if "predictions-val.txt" in files:
                path = os.path.join(base, "predictions-val.txt")
                pairs = os.path.join(os.path.dirname(os.path.dirname(base)), "data", os.path.basename(base),
                                     "val.tsv")
                with open(pairs, encoding="utf-8") as f:
                    target = f.readline().rstrip("\n").split("\t")[1]
                with open(path, encoding="utf-8") as f:
                    lines = f.read().split("\n")
                lines[0] = target + "x" if lines[0] == target else target
                with open(path, "w", encoding="utf-8") as f:
                    f.write("\n".join(lines))
                return True
        return False

    failures = []
    for name, mutate in [("a table cell", mutate_table), ("a result.json metric", mutate_result),
                         ("a prediction", mutate_prediction)]:
        with tempfile.TemporaryDirectory() as temp:
            copy = os.path.join(temp, "compare")
            shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.safetensors", "*.png"),
                            symlinks=True)
            # the parameter counts need the checkpoints: link them back
            for base, _, files in os.walk(out):
                for file in files:
                    if file.endswith(".safetensors"):
                        os.symlink(os.path.join(base, file),
                                   os.path.join(copy, os.path.relpath(base, out), file))
            if mutate(copy) is False:
                print("mutation test: no transduction runs, skipped %s" % name)
                continue
            problems, _, _ = check(copy)
            if problems:
                print("mutation test: changing %s is caught: %s" % (name, problems[0]))
            else:
                failures.append("mutation test: changing %s went unnoticed" % name)
    return failures


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = os.path.abspath(args[0] if args else os.path.join(ROOT, "runs", "compare"))
    if not os.path.isdir(out):
        sys.exit("check_compare: %s is not a directory (run `make compare` first)" % out)
    problems, tables, runs = check(out)
    if "--mutation-test" in sys.argv and not problems:
        problems += mutation_test(out)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print("check_compare: %d tables agree with their %d runs in %s" % (tables, runs, os.path.relpath(out)))


if __name__ == "__main__":
    main()
