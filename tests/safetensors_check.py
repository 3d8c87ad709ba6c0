#!/usr/bin/python3
"""tests/safetensors_check.py: read a tinyzoo .safetensors checkpoint with numpy alone.

    /usr/bin/python3 tests/safetensors_check.py runs/transformer/model.safetensors

Prints each tensor's name, shape and sum, then the metadata.  Exits 1 with a
one-line message when the file is malformed.  read_safetensors() is the whole
format: copy it into a notebook to inspect or plot weights.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    """Returns ({name: float32 array}, {key: string}); raises on a bad file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])  # header length, little-endian uint64
    if n > len(raw) - 8:
        raise ValueError(f"header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n])  # trailing padding spaces are valid JSON whitespace
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]  # offsets count from here
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if entry["dtype"] != "F32" or not 0 <= begin <= end <= len(data):
            raise ValueError(f"tensor {name}: dtype {entry['dtype']}, offsets {begin}..{end} of {len(data)}")
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"])
    return tensors, metadata


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: safetensors_check.py FILE.safetensors")
    path = sys.argv[1]
    try:
        tensors, metadata = read_safetensors(path)
    except Exception as error:  # any failure means a malformed file: one line, exit 1
        sys.exit(f"{path}: not a valid safetensors file: {error}")
    for name, array in tensors.items():
        print(f"{name} {array.shape} sum {array.sum(dtype=np.float64):.4f}")
    print("metadata:")
    for key, value in metadata.items():
        print(f"  {key} = {json.dumps(value, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
