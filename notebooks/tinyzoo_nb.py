"""notebooks/tinyzoo_nb.py: the few helpers every tinyzoo notebook uses.

The notebooks drive the real programs in bin/ and read the files they write;
nothing here reimplements a model.  Each helper is short enough to read:

    build()                      make the library and the programs (`make all`)
    run(program, *args)          run bin/<program> with arguments, show its output
    show_function(path, name)    print a C function from the source, with line numbers
    show_lines(path, first, last)  print a range of lines of any file
    show_struct(path, name)      print a C `typedef struct ... } name;`, with its comment
    show_between(path, start, end)  print the lines from one holding `start` to the next holding `end`
    show_image(path)             display a PNG that a program wrote
    read_safetensors(path)       the tensors and metadata of a checkpoint (numpy)
    read_metrics(path)           metrics.csv as a dict of columns
    parse_fields(line)           "final: step=10 loss=0.5" -> {"step": 10.0, "loss": 0.5}

Every path is relative to the repository root (the folder above notebooks/),
whatever the notebook's working directory is.
"""
import csv
import json
import os
import re
import struct
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def path_in_repo(path):
    """An absolute path for `path`, taken relative to the repository root."""
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def build():
    """Builds the library and every program with the Makefile's defaults."""
    result = subprocess.run(["make", "-s", "all"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("make all failed:\n" + result.stdout + result.stderr)
    print("built: " + ", ".join(sorted(os.listdir(path_in_repo("bin")))))


def run(program, *args, show=True, tail=25):
    """Runs bin/<program> with `args` from the repository root and returns its
    standard output.  Shows the last `tail` lines (all of them when tail=None).
    A non-zero exit raises, with the program's messages, so a notebook cell
    fails loudly instead of going on with missing files."""
    command = [path_in_repo(os.path.join("bin", program))] + [str(a) for a in args]
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError("bin/%s %s exited with %d:\n%s%s" % (program, " ".join(command[1:]),
                           result.returncode, result.stdout[-3000:], result.stderr[-3000:]))
    if show:
        lines = result.stdout.rstrip("\n").split("\n")
        if tail is not None and len(lines) > tail:
            print("... (%d lines before)" % (len(lines) - tail))
            lines = lines[-tail:]
        print("\n".join(lines))
    return result.stdout


def _numbered(lines, first):
    width = len(str(first + len(lines) - 1))
    return "\n".join("%*d | %s" % (width, first + i, line.rstrip("\n")) for i, line in enumerate(lines))


def show_lines(path, first, last):
    """Prints lines first..last (1-based, inclusive) of a file, numbered."""
    with open(path_in_repo(path), encoding="utf-8") as f:
        lines = f.readlines()
    print("%s:%d-%d" % (path, first, last))
    print(_numbered(lines[first - 1:last], first))


def find_function(path, name):
    """(first, last) line numbers of C function `name` in `path`: from the
    comment block just above its definition to its closing brace.  The
    definition is the line that starts (no indentation) with a type and
    `name(`, and that is not a declaration ending in ';'."""
    with open(path_in_repo(path), encoding="utf-8") as f:
        lines = f.readlines()
    pattern = re.compile(r"^[A-Za-z_].*\b" + re.escape(name) + r"\s*\(")
    for index, line in enumerate(lines):
        if not pattern.match(line) or line.rstrip().endswith(";"):
            continue
        # The signature may run over several lines: find the body's "{".
        body = index
        while body < len(lines) and "{" not in lines[body]:
            if lines[body].rstrip().endswith(";"):
                break
            body += 1
        if body == len(lines) or "{" not in lines[body]:
            continue
        depth, end = 0, body
        for end in range(body, len(lines)):
            depth += lines[end].count("{") - lines[end].count("}")
            if depth == 0:
                break
        start = index
        # Take the comment block (/* ... */ or // lines) right above.
        if start > 0 and lines[start - 1].rstrip().endswith("*/"):
            while start > 0 and "/*" not in lines[start - 1]:
                start -= 1
            start -= 1
        return start + 1, end + 1
    raise ValueError("no definition of %s( in %s" % (name, path))


def show_function(path, name):
    """Prints C function `name` from `path` with its comment and line
    numbers, read from the file now, so the text never drifts from the code."""
    first, last = find_function(path, name)
    show_lines(path, first, last)


def _comment_start(lines, start):
    """The index of the first line of the /* ... */ block that ends on the
    line just above lines[start], or start when there is none."""
    if start > 0 and lines[start - 1].rstrip().endswith("*/"):
        while start > 0 and "/*" not in lines[start - 1]:
            start -= 1
        start -= 1
    return start


def show_struct(path, name):
    """Prints the C type `name` defined as `typedef struct [tag] { ... } name;`
    (or enum/union) in `path`, with the comment block above it and line
    numbers, read from the file now."""
    with open(path_in_repo(path), encoding="utf-8") as f:
        lines = f.readlines()
    end_pattern = re.compile(r"^\}\s*" + re.escape(name) + r"\s*;")
    for end, line in enumerate(lines):
        if not end_pattern.match(line):
            continue
        start = end
        while start > 0 and not lines[start].startswith("typedef"):
            start -= 1
        first = _comment_start(lines, start)
        show_lines(path, first + 1, end + 1)
        return
    raise ValueError("no typedef ... } %s; in %s" % (name, path))


def show_between(path, start, end):
    """Prints the lines of `path` from the first one containing the text
    `start` through the next one (the same or a later line) containing `end`."""
    with open(path_in_repo(path), encoding="utf-8") as f:
        lines = f.readlines()
    for first, line in enumerate(lines):
        if start in line:
            for last in range(first, len(lines)):
                if end in lines[last]:
                    show_lines(path, first + 1, last + 1)
                    return
            raise ValueError("%r found in %s but no %r after it" % (start, path, end))
    raise ValueError("no line containing %r in %s" % (start, path))


def show_image(path, width=None):
    """Displays a PNG written by a program."""
    from IPython.display import Image, display
    display(Image(filename=path_in_repo(path), width=width))


_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """The tensors of a .safetensors file as numpy arrays, and its metadata.
    The format: an 8-byte little-endian header length, a JSON header that
    gives each tensor's dtype, shape and byte range, then the raw data."""
    with open(path_in_repo(path), "rb") as f:
        header_length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, metadata


def read_metrics(path):
    """metrics.csv as {column: list of values}; empty cells become None."""
    columns = {}
    with open(path_in_repo(path), newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                columns.setdefault(key, []).append(float(value) if value not in ("", None) else None)
    return columns


def parse_fields(line):
    """The name=value pairs of a line such as a program's `final:` line;
    values that read as numbers become floats."""
    fields = {}
    for name, value in re.findall(r"([A-Za-z_][\w.]*)=(\S+)", line):
        try:
            fields[name] = float(value)
        except ValueError:
            fields[name] = value
    return fields


def last_line_starting(output, prefix):
    """The last line of a program's output that starts with `prefix`."""
    lines = [line for line in output.split("\n") if line.startswith(prefix)]
    if not lines:
        raise ValueError("no line starting with %r in the output" % prefix)
    return lines[-1]
