#!/usr/bin/python3
"""tests/parity/recursive_nn_parity.py: tinyzoo's tree networks against PyTorch.

For each model (rnn, rntn, bow), `bin/recursive_nn dump` writes one
safetensors file: the weights, a batch of sentiment trees (in the metadata),
tinyzoo's loss, every node's logits and state, and every gradient
("grad.<name>").  This script rebuilds the same model in PyTorch, evaluates
the trees node by node with plain recursion (the textbook formulation, not
tinyzoo's level-by-level batching), and compares everything.

Tolerance: PyTorch runs in float64 from the same float32 weights, so the
differences are tinyzoo's float32 rounding: |c - torch| <= 1e-5 + 1e-4 |torch|
for every element (about 1e-6 relative is typical).  A wrong gradient term is
off by a sizeable fraction of the gradient itself.

Exit status: 0 when everything matches (or torch is missing: "skipped"),
1 on any mismatch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    # the one numpy reader of the format, shared with tests/safetensors_check.py
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from safetensors_check import read_safetensors
except ImportError:
    print("skipped: torch not installed")
    sys.exit(0)

ATOL, RTOL = 1e-5, 1e-4


def parse_tree(text):
    """SST s-expression -> list of nodes in tinyzoo's order (children first,
    left before right, root last): dicts with label, left, right, word."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    nodes, stack, position = [], [], 0
    # Iterative: each frame is [label, children]; binary trees only here.
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token == "(":
            label = -1
            if tokens[position] not in "()" and tokens[position].isdigit():
                label = int(tokens[position])
                position += 1
            stack.append([label, []])
        elif token == ")":
            label, children = stack.pop()
            if len(children) == 1 and isinstance(children[0], str):
                nodes.append({"label": label, "left": -1, "right": -1, "word": children[0]})
                node = len(nodes) - 1
            elif len(children) == 2:
                nodes.append({"label": label, "left": children[0], "right": children[1], "word": None})
                node = len(nodes) - 1
            else:
                raise ValueError("parity trees are binary SST trees: " + text)
            if stack:
                stack[-1][1].append(node)
        else:
            word = {"-LRB-": "(", "-RRB-": ")"}.get(token, token)
            stack[-1][1].append(word)
    return nodes


def torch_forward(kind, params, vocab, trees):
    """Node by node: returns loss, per-node logits and states (tree order)."""
    E = params["embedding.weight"]
    Ws, bs = params["classifier.weight"], params["classifier.bias"]
    d = E.shape[1]
    index = {word: i for i, word in enumerate(vocab)}
    states, spans, all_logits, losses = [], [], [], []
    for nodes in trees:
        h, span = [], []
        for node in nodes:
            if node["left"] < 0:
                h.append(E[index.get(node["word"], 0)])
                span.append(1)
                continue
            hl, hr = h[node["left"]], h[node["right"]]
            if kind == "bow":
                sl, sr = span[node["left"]], span[node["right"]]
                h.append((sl * hl + sr * hr) / (sl + sr))
            else:
                W = params["compose.weight"]
                x = torch.cat([hl, hr])
                z = W[:, :2 * d] @ x + W[:, 2 * d]
                if kind == "rntn":
                    z = z + torch.einsum("i,kij,j->k", x, params["compose.tensor"], x)
                h.append(torch.tanh(z))
            span.append(span[node["left"]] + span[node["right"]])
        for node, state in zip(nodes, h):
            logits = Ws @ state + bs
            states.append(state)
            all_logits.append(logits)
            if node["label"] >= 0:
                losses.append(-torch.log_softmax(logits, dim=0)[node["label"]])
    loss = torch.stack(losses).sum() / len(trees)
    return loss, torch.stack(all_logits), torch.stack(states)


def compare(name, ours, theirs, report):
    theirs = theirs.detach().numpy()
    ours = ours.astype(np.float64).reshape(theirs.shape)
    diff = np.abs(ours - theirs)
    bad = diff > ATOL + RTOL * np.abs(theirs)
    rel = diff / np.maximum(np.abs(theirs), 1e-12)
    report.append((name, float(diff.max()), float(rel[np.abs(theirs) > 1e-6].max()) if (np.abs(theirs) > 1e-6).any() else 0.0, int(bad.sum())))
    return int(bad.sum())


def check_model(binary, kind, directory):
    out = os.path.join(directory, kind)
    subprocess.run([binary, "dump", "--model", kind, "--dim", "8", "--batch", "6", "--out", out],
                   check=True, stdout=subprocess.DEVNULL)
    tensors, meta = read_safetensors(os.path.join(out, "parity.safetensors"))
    vocab = json.loads(meta["vocab"])
    trees = [parse_tree(line) for line in meta["trees"].strip().split("\n")]
    names = [n for n in tensors if not n.startswith("grad.") and n not in ("loss", "node_logits", "node_states")]
    params = {n: torch.tensor(tensors[n], dtype=torch.float64, requires_grad=True) for n in names}
    loss, logits, states = torch_forward(kind, params, vocab, trees)
    loss.backward()
    report, failures = [], 0
    failures += compare("loss", tensors["loss"], loss.reshape(1), report)
    failures += compare("node_logits", tensors["node_logits"], logits, report)
    failures += compare("node_states", tensors["node_states"], states, report)
    for n in names:
        failures += compare("grad." + n, tensors["grad." + n], params[n].grad, report)
    nodes = sum(len(t) for t in trees)
    print(f"{kind}: {len(trees)} trees, {nodes} nodes, loss {float(loss):.6f}")
    for name, abs_diff, rel_diff, bad in report:
        print(f"  {name:32s} max abs diff {abs_diff:.2e}  max rel diff {rel_diff:.2e}  {'MISMATCH x%d' % bad if bad else 'ok'}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default="bin/recursive_nn")
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as directory:
        for kind in ("rnn", "rntn", "bow"):
            failures += check_model(args.bin, kind, directory)
    print(f"recursive_nn parity (tolerance |c - torch| <= {ATOL:g} + {RTOL:g} |torch|): "
          + ("all match" if failures == 0 else f"{failures} elements differ"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
