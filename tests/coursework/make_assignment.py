#!/usr/bin/env python3
"""tests/coursework/make_assignment.py: writes a student tree from the reference code.

    make_assignment.py --list
    make_assignment.py --exercises "tanh_backward causal_mask" --out DIR [--reference FILE] [--tarball]
    make_assignment.py --set transformer --out DIR ...

An exercise is a region of the reference source between two comments:

    /* EXERCISE <id>: <one-line hint>
     * <more hint lines, optional>
     * STUB: <a line of the code that replaces the region>    (optional, repeatable)
     */
    ...the solution...
    /* END EXERCISE */

Comments only, so the reference builds, reads and steps in gdb as if they
were not there.  In the student tree, each chosen region keeps its opening
comment (the hint, without the STUB lines) and its END comment, and the
solution between them becomes the STUB lines, or `exercise_missing("<id>");`
when there are none.  exercise_missing (exercise.h, copied into common/)
says on stderr that the stub ran and lets the grader report "not
implemented".  Every other line of every file is copied unchanged, except
the `#include "exercise.h"` added after the last #include of a stubbed file.

The student tree leaves out what would give the solutions away: the unit
tests (tests/test_*.c), the PyTorch parity and benchmark scripts, this
generator and the set list.  It keeps the grader (tests/coursework/*.c) and
the reference values it compares against (--reference, written by the
grader of a tree with nothing stubbed: see coursework.mk).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SETS_FILE = os.path.join(HERE, "sets.txt")
# Folders whose .c and .h files may hold EXERCISE regions.
SOURCE_DIRS = ["common", "seq2seq", "recursive_nn", "autoencoder", "transformer"]

OPEN = re.compile(r"^(\s*)/\* EXERCISE ([a-z0-9_]+): (.*)$")
END = re.compile(r"^\s*/\* END EXERCISE( [a-z0-9_]+)? \*/\s*$")
STUB = re.compile(r"^\s*\* STUB:(?: (.*))?$")


class MarkerError(Exception):
    pass


class Region:
    def __init__(self, ident, path, first, last, indent, hint_lines, stub_lines):
        self.id = ident
        self.path = path              # relative to the root
        self.first, self.last = first, last  # 0-based lines of EXERCISE and END
        self.indent = indent
        self.hint_lines = hint_lines  # the opening comment without STUB lines
        self.stub_lines = stub_lines  # code, relative to indent


def parse_regions(path, lines):
    """The EXERCISE regions of one file, checked for well-formed markers."""
    regions, i = [], 0
    while i < len(lines):
        opening = OPEN.match(lines[i])
        if END.match(lines[i]):
            raise MarkerError(f"{path}:{i + 1}: END EXERCISE without an EXERCISE above it")
        if not opening:
            i += 1
            continue
        indent, ident = opening.group(1), opening.group(2)
        first, hint, stub = i, [], []
        text = lines[i]
        # The opening comment runs to the first line that closes it.
        while True:
            closes = "*/" in text
            body = text[:text.index("*/")].rstrip() if closes else text.rstrip()
            stub_match = STUB.match(body) if i > first else None
            if stub_match:
                stub.append(stub_match.group(1) or "")
            elif body.strip() not in ("", "*"):
                hint.append(body)
            if closes:
                break
            i += 1
            if i == len(lines):
                raise MarkerError(f"{path}:{first + 1}: the EXERCISE {ident} comment is never closed")
            text = lines[i]
        i += 1
        while i < len(lines) and not END.match(lines[i]):
            if OPEN.match(lines[i]):
                raise MarkerError(f"{path}:{i + 1}: EXERCISE inside EXERCISE {ident} (regions do not nest)")
            i += 1
        if i == len(lines):
            raise MarkerError(f"{path}:{first + 1}: EXERCISE {ident} has no END EXERCISE")
        end_id = END.match(lines[i]).group(1)
        if end_id and end_id.strip() != ident:
            raise MarkerError(f"{path}:{i + 1}: END EXERCISE{end_id} closes EXERCISE {ident}")
        regions.append(Region(ident, path, first, i, indent, hint, stub))
        i += 1
    return regions


def source_files():
    for folder in SOURCE_DIRS:
        directory = os.path.join(ROOT, folder)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name.endswith((".c", ".h")):
                yield os.path.join(folder, name)


def read_lines(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read().split("\n")


def all_regions():
    """Every region of the reference source, by id.  An exercise may have
    several regions: a forward and its backward, or a second implementation
    of the same equations (which would otherwise give the answer away)."""
    found = {}
    for path in source_files():
        for region in parse_regions(path, read_lines(path)):
            found.setdefault(region.id, []).append(region)
    return found


def read_sets():
    sets = {}
    with open(SETS_FILE, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, colon, ids = line.partition(":")
            if not colon:
                raise MarkerError(f"{SETS_FILE}:{number}: expected '<name>: <ids>'")
            sets[name.strip()] = ids.split()
    return sets


def graded_ids():
    """Ids that have a grading entry, {"<id>", ...} in tests/coursework/grade*.c."""
    ids = set()
    for name in os.listdir(HERE):
        if name.startswith("grade") and name.endswith(".c"):
            with open(os.path.join(HERE, name), encoding="utf-8") as f:
                ids.update(re.findall(r'^\s*\{"([a-z0-9_]+)", [0-9]+,', f.read(), re.M))
    return ids


def stubbed_lines(region):
    """What replaces lines first..last of the reference."""
    ind = region.indent
    out = [region.hint_lines[0]]
    out += region.hint_lines[1:]
    out.append(f"{ind} * Your code replaces the stub below; keep these two EXERCISE comments. */")
    stub = region.stub_lines or [f'exercise_missing("{region.id}");']
    out += [ind + line if line else "" for line in stub]
    out.append(f"{ind}/* END EXERCISE */")
    return out


def add_exercise_include(path, lines):
    last = max((i for i, line in enumerate(lines) if line.startswith("#include ")), default=None)
    if last is None:
        raise MarkerError(f"{path}: a stubbed file needs an #include to put exercise.h after")
    return lines[:last + 1] + ['#include "exercise.h"'] + lines[last + 1:]


def is_left_out(path):
    """Files of the reference tree that the student tree leaves out."""
    name, top = os.path.basename(path), path.split("/")[0]
    if top.startswith("build") or top in ("bin", "runs"):  # build output, even where not ignored
        return True
    if path.startswith("tests/") and path.count("/") == 1:
        return name.startswith("test_") and name.endswith(".c") and name != "test_helpers.c"
    return (path.startswith(("tests/parity/", "tests/bench/")) and name.endswith(".py")) or \
        path in ("tests/coursework/make_assignment.py", "tests/coursework/sets.txt",
                 "tests/coursework/exercise.c", "tests/coursework/exercise.h",
                 "tests/coursework/reference.txt", "tests/coursework/assignment.txt")


# What .gitignore leaves out, for a tree that is not a git checkout.
IGNORED_NAMES = ("__pycache__", ".ipynb_checkpoints", "compile_commands.json")


def walked_files():
    """Every file under ROOT but what .gitignore leaves out: the tree's files
    when it is not a git checkout (a release tarball)."""
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d != ".git" and d not in IGNORED_NAMES]
        for name in names:
            if name in IGNORED_NAMES or name.endswith(".o"):
                continue
            files.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return files


def tree_files():
    """The reference tree's files: what git tracks or would track (not build
    output); outside a git checkout, every file walked_files finds."""
    try:
        listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                 cwd=ROOT, check=True, capture_output=True).stdout.decode()
        files = [p for p in listing.split("\0") if p and os.path.isfile(os.path.join(ROOT, p))]
    except (OSError, subprocess.CalledProcessError):
        files = walked_files()
    return sorted(p for p in files if not is_left_out(p))


def write_tree(out, chosen, regions, reference, set_name):
    if os.path.exists(out):
        shutil.rmtree(out)
    by_file = {}
    for ident in chosen:
        for region in regions[ident]:
            by_file.setdefault(region.path, []).append(region)
    for path in tree_files():
        target = os.path.join(out, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if path not in by_file:
            shutil.copy2(os.path.join(ROOT, path), target)
            continue
        lines = read_lines(path)
        for region in sorted(by_file[path], key=lambda r: -r.first):  # bottom up: line numbers stay valid
            lines[region.first:region.last + 1] = stubbed_lines(region)
        lines = add_exercise_include(path, lines)
        with open(target, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        shutil.copymode(os.path.join(ROOT, path), target)
    for name in ("exercise.h", "exercise.c"):
        shutil.copy2(os.path.join(HERE, name), os.path.join(out, "common", name))
    with open(os.path.join(out, "tests/coursework/assignment.txt"), "w", encoding="utf-8") as f:
        f.write(f"# The exercises `make grade` grades (set: {set_name or 'custom'}).\n")
        for ident in chosen:
            f.write(f"{ident}\n")
    if reference:
        shutil.copy2(reference, os.path.join(out, "tests/coursework/reference.txt"))


def write_tarball(out):
    tarball = out.rstrip("/") + ".tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(out, arcname=os.path.basename(out.rstrip("/")))
    return tarball


def main():
    parser = argparse.ArgumentParser(description="Write a student tree with chosen exercises stubbed.")
    parser.add_argument("--list", action="store_true", help="print the exercises and the sets")
    parser.add_argument("--exercises", help="exercise ids, separated by spaces ('none': no stubs)")
    parser.add_argument("--set", help="a set of tests/coursework/sets.txt")
    parser.add_argument("--out", help="the student tree to write (replaced if it exists)")
    parser.add_argument("--reference", help="reference values for the grader (reference.txt)")
    parser.add_argument("--tarball", action="store_true", help="also write <out>.tar.gz")
    parser.add_argument("--list-files", action="store_true",
                        help="print the files a student tree copies (coursework-check compares "
                             "the lists made with and without git)")
    args = parser.parse_args()
    if args.list_files:
        print("\n".join(tree_files()))
        return 0
    try:
        regions, sets = all_regions(), read_sets()
        graded = graded_ids()
        for ident in regions:
            if ident not in graded:
                raise MarkerError(f"exercise {ident} ({regions[ident][0].path}) has no grading entry "
                                  f"in tests/coursework/grade*.c")
        for name, ids in sets.items():
            for ident in ids:
                if ident not in regions:
                    raise MarkerError(f"{SETS_FILE}: set {name} names {ident}, which no EXERCISE marks")
        if args.list:
            for ident, parts in regions.items():
                for region in parts:
                    hint = OPEN.match(region.hint_lines[0]).group(3).rstrip(" */")
                    print(f"{ident:24} {region.path}:{region.first + 1}  {hint}")
            for name, ids in sets.items():
                print(f"set {name}: {' '.join(ids)}")
            return 0
        if (args.exercises is None) == (args.set is None) or not args.out:
            parser.error("give --out and one of --exercises or --set")
        if args.set is not None:
            if args.set not in sets:
                raise MarkerError(f"no set named '{args.set}' in {SETS_FILE} (sets: {' '.join(sets)})")
            chosen = sets[args.set]
        else:
            chosen = [] if args.exercises.strip() == "none" else args.exercises.split()
            if not chosen and args.exercises.strip() != "none":
                parser.error("--exercises is empty (use 'none' for a tree with nothing stubbed)")
        for ident in chosen:
            if ident not in regions:
                raise MarkerError(f"no exercise '{ident}' (known: {' '.join(regions)})")
        if args.reference and not os.path.isfile(args.reference):
            raise MarkerError(f"reference values {args.reference}: no such file")
        write_tree(args.out, chosen, regions, args.reference, args.set)
        print(f"assignment: {args.out} ({len(chosen)} exercises stubbed: {' '.join(chosen) or 'none'})")
        if args.tarball:
            print(f"assignment: {write_tarball(args.out)}")
    except MarkerError as error:
        print(f"make_assignment: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
