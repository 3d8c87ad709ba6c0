#!/usr/bin/env python3
"""tests/bench/autoencoder_torch.py: tinyzoo's autoencoder against PyTorch on CPU.

For each config and thread count, runs `bin/autoencoder bench` and the same
model in PyTorch, in the same run, and prints both with the ratio
(tinyzoo samples/s divided by PyTorch samples/s; above 1 means tinyzoo is
faster).  The models (autoencoder/bench.c):

  mnist  784-256-32-256-784, ReLU, sigmoid output, BCE, batch 128, Adam
  small  64-32-2-32-64, the same otherwise

One training step = zero_grad, forward, BCE with logits summed over pixels
and averaged over the batch, backward, Adam at lr 1e-3, on random images in
[0, 1] drawn from a pool of 1024.  Each side reports the best of its
repetitions: other processes share the machine and only ever slow a step
down.  Without torch, only tinyzoo's figures are printed.

usage: python3 tests/bench/autoencoder_torch.py --bin bin/autoencoder
           [--configs mnist,small] [--threads 1,2] [--steps 100] [--repeats 5]
"""
import argparse
import re
import subprocess
import sys
import time

CONFIGS = {"mnist": [784, 256, 32], "small": [64, 32, 2]}
BATCH, POOL = 128, 1024

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    torch = None


def build_torch_model(sizes):
    encoder, decoder = [], []
    for k in range(len(sizes) - 1):
        encoder.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            encoder.append(nn.ReLU())
    for k in reversed(range(len(sizes) - 1)):
        decoder.append(nn.Linear(sizes[k + 1], sizes[k]))
        if k > 0:
            decoder.append(nn.ReLU())
    return nn.Sequential(*encoder, *decoder)


def torch_bench(name, threads, steps, repeats, warmup=20):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    sizes = CONFIGS[name]
    model = build_torch_model(sizes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = torch.rand(POOL, sizes[0])
    position = 0

    def step():
        nonlocal position
        x = pool[position:position + BATCH]
        position = (position + BATCH) % (POOL - BATCH + 1)
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(model(x), x, reduction="sum") / BATCH
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return BATCH / best, best * 1e3


def tinyzoo_bench(binary, name, threads, steps, repeats):
    command = [binary, "bench", "--config", name, "--threads", str(threads), "--bench-steps", str(steps),
               "--repeats", str(repeats)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"samples_per_s=([0-9.]+) ms_per_step=([0-9.]+)", output)
    if not match:
        sys.exit(f"unexpected output from {' '.join(command)}:\n{output}")
    return float(match.group(1)), float(match.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="bin/autoencoder")
    parser.add_argument("--configs", default="mnist,small")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if torch is None:
        print("torch not installed: tinyzoo figures only")
    print(f"{'config':6} {'threads':>7} {'tinyzoo samples/s':>18} {'ms/step':>8} "
          f"{'torch samples/s':>16} {'ms/step':>8} {'ratio':>6}")
    for name in args.configs.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            ours, our_ms = tinyzoo_bench(args.bin, name, threads, args.steps, args.repeats)
            if torch is None:
                print(f"{name:6} {threads:7d} {ours:18.0f} {our_ms:8.3f}")
                continue
            theirs, their_ms = torch_bench(name, threads, args.steps, args.repeats)
            print(f"{name:6} {threads:7d} {ours:18.0f} {our_ms:8.3f} {theirs:16.0f} {their_ms:8.3f} "
                  f"{ours / theirs:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
