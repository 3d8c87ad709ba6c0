#!/usr/bin/python3
"""tests/bench/recursive_nn_torch.py: tinyzoo's tree networks against PyTorch, same trees.

Runs `bin/recursive_nn bench` (which writes its random trees to
<out>/bench_trees.txt), then trains PyTorch on exactly those trees, in the
same consecutive batches, with the same model, loss and optimizer:
  d = 32, 5 classes, vocabulary 100 (+ <unk>), 7-11 leaves per tree,
  32 trees per step, a softmax cross-entropy on every node summed per tree
  and averaged over the batch, Adam (lr 1e-3).
Two PyTorch formulations:
  node by node    the textbook recursion: one small op per node (what most
                  PyTorch tree-LSTM/TreeRNN code does);
  level by level  all nodes of the same height across the batch in one
                  matmul, like tinyzoo (the index tensors describing each
                  batch's levels are built once, before timing: PyTorch's
                  best case; tinyzoo rebuilds its batch every step).
Timing covers forward, backward and the Adam update; the best of several
repetitions is reported, since other jobs may share the cores.
Usage: recursive_nn_torch.py --bin bin/recursive_nn --threads N [--model rnn]
"""
import argparse
import os
import re
import subprocess
import tempfile
import time


def run_tinyzoo(binary, model, threads, out):
    line = subprocess.run([binary, "bench", "--model", model, "--threads", str(threads), "--out", out],
                          check=True, capture_output=True, text=True).stdout.strip()
    fields = dict(re.findall(r"([a-z/]+)=([0-9.]+)", line))
    return float(fields["trees/s"]), float(fields["us/node"]), line


def parse_tree(text):
    """SST tree -> nodes children first (root last): (label, left, right, word)."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    nodes, stack, i = [], [], 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "(":
            stack.append([int(tokens[i]), []])
            i += 1
        elif token == ")":
            label, children = stack.pop()
            if isinstance(children[0], str):
                nodes.append((label, -1, -1, children[0]))
            else:
                nodes.append((label, children[0], children[1], None))
            if stack:
                stack[-1][1].append(len(nodes) - 1)
        else:
            stack[-1][1].append(token)
    return nodes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="bin/recursive_nn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="rnn", choices=["rnn", "rntn"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="tinyzoo-bench-")
    c_trees, c_us, c_line = run_tinyzoo(args.bin, args.model, args.threads, out)
    print(c_line)
    try:
        import torch
    except ImportError:
        print("PyTorch: skipped (torch not installed)")
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(os.path.join(out, "bench_trees.txt")) as f:
        pool = [parse_tree(line) for line in f if line.strip()]
    words = sorted({n[3] for t in pool for n in t if n[3] is not None})
    index = {w: i + 1 for i, w in enumerate(words)}  # 0 is <unk>, as in tinyzoo
    d, K, B = 32, 5, 32

    def make_params():
        params = {
            "E": torch.empty(len(words) + 1, d).uniform_(-0.5, 0.5),
            "W": torch.empty(d, 2 * d + 1).uniform_(-0.25, 0.25),
            "Ws": torch.empty(K, d).uniform_(-0.18, 0.18),
            "bs": torch.zeros(K),
        }
        if args.model == "rntn":
            params["V"] = torch.empty(d, 2 * d, 2 * d).uniform_(-0.5 / d, 0.5 / d)
        for p in params.values():
            p.requires_grad_(True)
        return params

    def batch_of(step):
        return [pool[(step * B + i) % len(pool)] for i in range(B)]

    def compose(p, x):  # x (n, 2d) -> (n, d)
        z = x @ p["W"][:, :2 * d].T + p["W"][:, 2 * d]
        if args.model == "rntn":
            z = z + torch.einsum("ni,kij,nj->nk", x, p["V"], x)
        return torch.tanh(z)

    # ---- node by node ----
    def step_node_by_node(p, opt, trees):
        losses = []
        for nodes in trees:
            h = []
            for label, left, right, word in nodes:
                if left < 0:
                    state = p["E"][index[word]]
                else:
                    state = compose(p, torch.cat([h[left], h[right]]).unsqueeze(0))[0]
                h.append(state)
                logits = p["Ws"] @ state + p["bs"]
                losses.append(torch.nn.functional.cross_entropy(logits.unsqueeze(0), torch.tensor([label]),
                                                                reduction="sum"))
        loss = torch.stack(losses).sum() / len(trees)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return sum(len(t) for t in trees)

    # ---- level by level ----
    def levels_of(trees):
        """Rows ordered by height; per level the rows of the children."""
        heights, rows = [], []
        for nodes in trees:
            hs = []
            for label, left, right, word in nodes:
                hs.append(0 if left < 0 else 1 + max(hs[left], hs[right]))
            heights.append(hs)
        top = max(max(hs) for hs in heights)
        order = [(h, t, i) for t, hs in enumerate(heights) for i, h in enumerate(hs)]
        order.sort()
        row = {(t, i): r for r, (h, t, i) in enumerate(order)}
        leaves = [index[trees[t][i][3]] for h, t, i in order if h == 0]
        labels = torch.tensor([trees[t][i][0] for h, t, i in order])
        per_level = []
        for level in range(1, top + 1):
            members = [(t, i) for h, t, i in order if h == level]
            left = torch.tensor([row[(t, trees[t][i][1])] for t, i in members])
            right = torch.tensor([row[(t, trees[t][i][2])] for t, i in members])
            per_level.append((left, right))
        return torch.tensor(leaves), labels, per_level

    def step_level_by_level(p, opt, structure, count):
        leaves, labels, per_level = structure
        states = p["E"][leaves]
        for left, right in per_level:
            x = torch.cat([states[left], states[right]], dim=1)
            states = torch.cat([states, compose(p, x)], dim=0)
        logits = states @ p["Ws"].T + p["bs"]
        loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum") / count
        opt.zero_grad()
        loss.backward()
        opt.step()
        return states.shape[0]

    def measure(run_step, steps, warmup):
        best = None
        for _ in range(args.repeats):
            p = make_params()
            opt = torch.optim.Adam(p.values(), lr=1e-3)
            for s in range(warmup):
                run_step(p, opt, s)
            nodes = 0
            start = time.perf_counter()
            for s in range(steps):
                nodes += run_step(p, opt, s)
            elapsed = time.perf_counter() - start
            if best is None or elapsed < best[0]:
                best = (elapsed, nodes)
        elapsed, nodes = best
        return steps * B / elapsed, 1e6 * elapsed / nodes

    node_steps = 4
    node_trees, node_us = measure(lambda p, o, s: step_node_by_node(p, o, batch_of(s)), node_steps, 2)
    structures = [levels_of(batch_of(s)) for s in range(64)]
    level_trees, level_us = measure(lambda p, o, s: step_level_by_level(p, o, structures[s % 64], B), 64, 5)

    print(f"recursive_nn {args.model} d={d} batch={B} threads={args.threads}, same trees:")
    print(f"  tinyzoo (C, level by level)   {c_trees:10.0f} trees/s  {c_us:8.3f} us/node")
    print(f"  PyTorch node by node          {node_trees:10.0f} trees/s  {node_us:8.3f} us/node"
          f"   tinyzoo {c_trees / node_trees:6.1f}x faster (target >= 20x)")
    print(f"  PyTorch level by level        {level_trees:10.0f} trees/s  {level_us:8.3f} us/node"
          f"   tinyzoo {c_trees / level_trees:6.1f}x faster (target > 1x)")


if __name__ == "__main__":
    main()
