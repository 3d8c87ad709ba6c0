#!/usr/bin/env python3
"""tests/bench/seq2seq_torch.py: training speed of the seq2seq model in
PyTorch next to tinyzoo's, measured in the same run.

The model is the one tests/parity/seq2seq_parity.py checks tinyzoo against
(torch.nn.Embedding, torch.nn.GRU/LSTM, torch.nn.Linear; without attention
the teacher-forced decoder is one nn.GRU call over the whole target, the
fastest way to write it in PyTorch).  Shapes as `bin/seq2seq bench`:
embedding 32, hidden 128, vocabulary 32, source and target length 12 (13
decoder steps with <eos>), batch 64, teacher forcing, Adam.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        /usr/bin/python3 tests/bench/seq2seq_torch.py --bin bin/seq2seq --cell gru --threads 2

Timing: one warm-up round, then REPEATS rounds of --steps steps; the
fastest round counts (other processes share the cores).  tinyzoo is run
through --bin (same cell, attention, threads), then PyTorch, and this pair
--rounds times (default 3): each side keeps its best.  On a shared virtual
machine the speed of both drifts by 20% and more from one minute to the
next; alternating gives both sides the same chances.  The last line gives
the ratio of the two bests.
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))

VOCAB, EMBED, HIDDEN, LENGTH, BATCH, REPEATS = 32, 32, 128, 12, 64, 5


def tinyzoo_ms(binary, cell, attention, threads, steps):
    """Runs `bin/seq2seq bench` and returns its ms/step (and its line)."""
    line = subprocess.run([binary, "bench", "--cell", cell, "--attention", attention,
                           "--threads", str(threads), "--steps", str(steps)],
                          check=True, capture_output=True, text=True).stdout.strip()
    return float(re.search(r"([0-9.]+) ms/step", line).group(1)), line


def torch_ms(cell, attention, threads, steps):
    import torch
    from seq2seq_parity import Seq2seq
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    meta = {"config.cell": cell, "config.attention": attention, "config.layers": "1",
            "config.embed": str(EMBED), "config.hidden": str(HIDDEN),
            "config.source_vocab": str(VOCAB), "config.target_vocab": str(VOCAB)}
    model = Seq2seq(meta)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    source = torch.randint(4, VOCAB, (LENGTH, BATCH))
    lengths = torch.full((BATCH,), LENGTH, dtype=torch.long)
    decoder_inputs = torch.randint(4, VOCAB, (LENGTH + 1, BATCH))
    targets = torch.randint(4, VOCAB, (LENGTH + 1, BATCH))
    best = float("inf")
    for round_ in range(REPEATS + 1):
        count = 3 if round_ == 0 else steps
        start = time.perf_counter()
        for _ in range(count):
            optimizer.zero_grad()
            loss, _ = model(source, lengths, decoder_inputs, targets)
            loss.backward()
            optimizer.step()
        if round_ > 0:
            best = min(best, (time.perf_counter() - start) / count)
    return best * 1e3, torch.__version__


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default="bin/seq2seq")
    parser.add_argument("--cell", default="gru", choices=["gru", "lstm"])
    parser.add_argument("--attention", default="none", choices=["none", "bahdanau", "luong"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate tinyzoo and PyTorch this many times, keep each one's best")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = None
    ours, theirs, line, version = float("inf"), float("inf"), "", ""
    for _ in range(max(1, args.rounds) if torch else 1):
        time.sleep(0.5)  # PyTorch's idle OpenMP threads spin for a while after a run
        ms, round_line = tinyzoo_ms(args.bin, args.cell, args.attention, args.threads, args.steps)
        if ms < ours:
            ours, line = ms, round_line
        if torch:
            ms, version = torch_ms(args.cell, args.attention, args.threads, args.steps)
            theirs = min(theirs, ms)
    print(line)
    if torch is None:
        print("pytorch: skipped (torch not installed)")
        return
    print(f"pytorch {version} seq2seq bench: cell={args.cell} attention={args.attention} "
          f"threads={args.threads}: {theirs:.3f} ms/step, {BATCH / theirs * 1e3:.0f} seq/s")
    print(f"seq2seq {args.cell}/{args.attention} threads={args.threads}: tinyzoo {ours:.2f} ms/step, "
          f"pytorch {theirs:.2f} ms/step: tinyzoo is {theirs / ours:.2f}x PyTorch's speed")


if __name__ == "__main__":
    main()
