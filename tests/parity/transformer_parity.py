#!/usr/bin/env python3
"""tests/parity/transformer_parity.py: tinyzoo's transformer against PyTorch.

For several configurations (GPT and BERT, learned / sinusoidal / no
positions, tied head, no biases, classification), `bin/transformer parity`
writes one safetensors file with random weights, a batch, and tinyzoo's
logits, loss and gradient of every parameter.  This script rebuilds the same
model in PyTorch (float64, so that its rounding is negligible), loads the
weights, runs the same batch and compares.

Tolerance: tinyzoo computes in float32, so for each compared tensor `a`
against PyTorch's `b`:
    |a - b| <= 1e-4 * |b| + 1e-5 * max|b|
elementwise: 1e-4 relative, plus an absolute floor scaled to the tensor, so
that elements that are nearly zero (where relative error means nothing)
pass when they are zero to float32 precision.  Exits 1 on any mismatch;
prints the largest absolute and relative difference of every tensor kind.
Prints "skipped: torch not installed" and exits 0 when torch is missing.

usage: python3 tests/parity/transformer_parity.py --bin bin/transformer
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    # the one numpy reader of the format, shared with tests/safetensors_check.py
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from safetensors_check import read_safetensors
except ImportError:
    print("skipped: torch not installed")
    sys.exit(0)

RTOL = 1e-4
ATOL_FRACTION = 1e-5

CONFIGS = [
    ["--mode", "gpt", "--pos", "learned"],
    ["--mode", "gpt", "--pos", "sinusoidal", "--tie-head", "--no-bias", "--layers", "3"],
    ["--mode", "gpt", "--pos", "learned", "--heads", "4", "--d-model", "32", "--context", "16",
     "--threads", "2"],
    ["--mode", "bert", "--pos", "learned", "--batch", "4"],
    ["--mode", "bert", "--pos", "none", "--tie-head"],
    ["--mode", "bert", "--pos", "sinusoidal", "--classes", "5", "--batch", "4"],
]


def sinusoidal(T, C):
    table = torch.zeros(T, C, dtype=torch.float64)
    t = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(C // 2, dtype=torch.float64)[None, :]
    angle = t / torch.pow(10000.0, 2 * i / C)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table


def forward(p, meta, ids, lengths):
    """The model of transformer/model.c, written with plain torch ops."""
    L, H, C = int(meta["layers"]), int(meta["heads"]), int(meta["d_model"])
    B, T = ids.shape
    D = C // H
    causal = meta["mode"] == "gpt"

    def linear(x, name):
        bias = p.get(name + ".bias")
        return F.linear(x, p[name + ".weight"], bias)

    def layernorm(x, name):
        return F.layer_norm(x, (C,), p[name + ".weight"], p[name + ".bias"], eps=1e-5)

    x = p["token_embedding.weight"][ids]  # (B, T, C)
    if meta["positions"] == "learned":
        x = x + p["position_embedding.weight"][:T]
    elif meta["positions"] == "sinusoidal":
        x = x + sinusoidal(T, C)
    allowed = torch.ones(B, 1, T, T, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.tril(torch.ones(T, T, dtype=torch.bool))
    keys = torch.arange(T)[None, :] < lengths[:, None]  # (B, T) key padding
    allowed = allowed & keys[:, None, None, :]
    for l in range(L):
        name = f"blocks.{l}"
        qkv = linear(layernorm(x, name + ".ln1"), name + ".attn.qkv")  # (B, T, 3C)
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (z.reshape(B, T, H, D).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D)
        scores = scores.masked_fill(~allowed, float("-inf"))
        heads = torch.softmax(scores, dim=-1) @ v  # (B, H, T, D)
        heads = heads.transpose(1, 2).reshape(B, T, C)
        x = x + linear(heads, name + ".attn.proj")
        hidden = F.gelu(linear(layernorm(x, name + ".ln2"), name + ".mlp.fc_in"))
        x = x + linear(hidden, name + ".mlp.fc_out")
    h = layernorm(x, "ln_final")
    if int(meta["classes"]) > 0:
        mask = keys[:, :, None].to(h.dtype)
        pooled = (h * mask).sum(1) / lengths[:, None].to(h.dtype)
        return linear(pooled, "classifier")
    if "head.weight" in p:
        return linear(h, "head")
    return F.linear(h, p["token_embedding.weight"], p.get("head.bias"))


def compare(label, a, b, worst):
    a, b = a.reshape(-1), b.reshape(-1)
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs()
    bad = diff > RTOL * b.abs() + ATOL_FRACTION * scale + 1e-12
    rel = (diff / (b.abs() + ATOL_FRACTION * scale + 1e-30)).max().item()
    kind = label.split("[")[0]
    old = worst.get(kind, (0.0, 0.0))
    worst[kind] = (max(old[0], diff.max().item()), max(old[1], rel))
    if bad.any():
        i = int(torch.nonzero(bad)[0])
        print(f"  MISMATCH {label}: element {i}: tinyzoo {a[i].item():.8g}, torch {b[i].item():.8g}")
        return False
    return True


def check(binary, flags, workdir):
    out = os.path.join(workdir, "run")
    subprocess.run([binary, "parity", "--out", out] + flags, check=True, stdout=subprocess.DEVNULL)
    t, meta = read_safetensors(os.path.join(out, "parity.safetensors"))
    t = {name: torch.from_numpy(array.astype(np.float64)) for name, array in t.items()}
    params = {k: v.clone().requires_grad_(True) for k, v in t.items()
              if not k.startswith(("batch.", "out.", "grad."))}
    ids = t["batch.ids"].long()
    targets = t["batch.targets"].long()
    lengths = t["batch.lengths"].long()
    logits = forward(params, meta, ids, lengths)
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    worst = {}
    ok = compare("loss", t["out.loss"], loss.detach().reshape(1), worst)
    ok &= compare("logits", t["out.logits"], logits.detach(), worst)
    for name, p in params.items():
        grad = p.grad if p.grad is not None else torch.zeros_like(p)  # unused (the LM head
        ok &= compare(f"grad[{name}]", t["grad." + name], grad, worst)  # of a classifier)
    summary = ", ".join(f"{k} abs {v[0]:.2e} rel {v[1]:.2e}" for k, v in worst.items())
    print(f"{'ok  ' if ok else 'FAIL'} {' '.join(flags)}: {len(params)} parameters; {summary}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="bin/transformer")
    args = parser.parse_args()
    print(f"transformer parity with torch {torch.__version__} (float64 reference); "
          f"tolerance |a-b| <= {RTOL:g}|b| + {ATOL_FRACTION:g} max|b|")
    ok = True
    with tempfile.TemporaryDirectory(prefix="tinyzoo-parity-") as workdir:
        for flags in CONFIGS:
            ok &= check(args.bin, flags, workdir)
    print("parity: all configurations agree" if ok else "parity: MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
