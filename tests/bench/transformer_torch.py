#!/usr/bin/env python3
"""tests/bench/transformer_torch.py: tinyzoo's transformer against PyTorch on CPU.

For each config (tiny, base, medium) and thread count, runs
`bin/transformer bench` and the same model in PyTorch, in the same run, and
prints both with the ratio.  The model (transformer/bench.c has the table):
vocabulary 65, learned positions, pre-LayerNorm, biases on every Linear,
untied head, no dropout, exact GELU, MLP 4x, head size 32, AdamW at lr 3e-4,
gradient clipping at 1.  One training step = forward, cross-entropy,
backward, clip, AdamW, on random tokens.  Each side reports the best of
its timed steps (other processes share the machine and only ever slow a
step down), and the two are run one after the other --rounds times
(default 3), each keeping its best: on a shared virtual machine the speed
of both drifts by 20% and more from one minute to the next, and
alternating gives both the same chances.  Without torch, only tinyzoo's
figures are printed.

usage: python3 tests/bench/transformer_torch.py --bin bin/transformer
           [--configs tiny,base,medium] [--threads 1,2] [--steps 20]
"""
import argparse
import re
import subprocess
import sys
import time

CONFIGS = {  # name: (d_model, layers, heads, context T, batch B)
    "tiny": (64, 2, 2, 32, 32),
    "base": (128, 4, 4, 64, 16),
    "medium": (256, 6, 8, 128, 8),
}
VOCAB = 65

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    torch = None


def build_torch_model(C, L, H, T):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc_in, self.fc_out = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
            self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

        def forward(self, x):
            B, T_, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=-1)
            q, k, v = (z.view(B, T_, H, C // H).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / (C // H) ** 0.5)
            att = att.masked_fill(~self.mask[:T_, :T_], float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, T_, C)
            x = x + self.proj(y)
            return x + self.fc_out(F.gelu(self.fc_in(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(VOCAB, C), nn.Embedding(T, C)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.ln_final, self.head = nn.LayerNorm(C), nn.Linear(C, VOCAB)

        def forward(self, ids):
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_final(x))

    return GPT()


def torch_bench(name, threads, steps):
    C, L, H, T, B = CONFIGS[name]
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = build_torch_model(C, L, H, T)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    ids = torch.randint(0, VOCAB, (B, T))
    targets = torch.randint(0, VOCAB, (B, T))
    times = []
    for step in range(3 + steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids).view(-1, VOCAB), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= 3:
            times.append(time.perf_counter() - start)
    best = min(times)
    return {"ms_per_step": best * 1e3, "tokens_per_s": B * T / best}


def tinyzoo_bench(binary, name, threads, steps):
    # Through a shell that forks it (the command is not the shell's last):
    # getrusage's peak RSS survives exec, so a program started straight from
    # this Python process, which holds torch, would report Python's peak.
    command = [binary, "bench", "--config", name, "--threads", str(threads), "--steps", str(steps),
               "--quiet"]
    out = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh"] + command,
                         check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("bench:"))
    return {k: float(v) if re.fullmatch(r"[-0-9.e+]+", v) else v
            for k, v in (item.split("=") for item in line.split()[1:])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="bin/transformer")
    parser.add_argument("--configs", default="tiny,base,medium")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate tinyzoo and PyTorch this many times, keep each one's best")
    args = parser.parse_args()
    if torch is None:
        print("torch not installed: tinyzoo's figures only")
    else:
        print(f"torch {torch.__version__}, best of {args.steps} steps each")
    print(f"{'config':<7} {'thr':>3} {'tinyzoo tok/s':>13} {'torch tok/s':>11} {'ratio':>6} "
          f"{'tz ms/step':>10} {'torch ms':>9} {'gen tok/s cache':>15} {'no cache':>9} {'peak RSS':>10}")
    for name in args.configs.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            tz, th = None, None
            for _ in range(max(1, args.rounds) if torch else 1):
                time.sleep(0.5)  # PyTorch's idle OpenMP threads spin for a while after a run
                run = tinyzoo_bench(args.bin, name, threads, args.steps)
                if tz is None or run["ms_per_step"] < tz["ms_per_step"]:
                    tz = run
                if torch:
                    run = torch_bench(name, threads, args.steps)
                    if th is None or run["ms_per_step"] < th["ms_per_step"]:
                        th = run
            ratio = f"{tz['tokens_per_s'] / th['tokens_per_s']:.2f}x" if th else "-"
            print(f"{name:<7} {threads:>3} {tz['tokens_per_s']:>13.0f} "
                  f"{th['tokens_per_s'] if th else float('nan'):>11.0f} {ratio:>6} "
                  f"{tz['ms_per_step']:>10.2f} {th['ms_per_step'] if th else float('nan'):>9.2f} "
                  f"{tz['gen_cache_tok_s']:>15.0f} {tz['gen_nocache_tok_s']:>9.0f} "
                  f"{tz['peak_rss_kib'] / 1024:>7.0f} MiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
