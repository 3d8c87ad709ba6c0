#!/usr/bin/env python3
"""tests/parity/seq2seq_parity.py: tinyzoo's seq2seq against PyTorch.

For each of several models (GRU and LSTM; no attention, Bahdanau, Luong;
one and two layers), `bin/seq2seq parity` writes one safetensors file with
the weights, a padded batch, and tinyzoo's loss, logits and every gradient
("grad.<name>").  This script rebuilds the same encoder-decoder from
torch.nn.Embedding, torch.nn.GRU / torch.nn.LSTM (with
pack_padded_sequence for the variable-length sources) and torch.nn.Linear,
loads the weights by name, runs the same batch with teacher forcing, and
compares loss, logits and gradients.

PyTorch runs in float64, so the differences are tinyzoo's float32 rounding.
Tolerances (exit 1 when exceeded):
  loss       relative difference <= 1e-5
  logits     max |a - b| <= 1e-4 * max |b|            (per model)
  gradients  max |a - b| <= 1e-4 * max |b| + 1e-7     (per tensor)

    /usr/bin/python3 tests/parity/seq2seq_parity.py --bin bin/seq2seq
Prints "skipped: torch not installed" and exits 0 without torch.
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    # the one numpy reader of the format, shared with tests/safetensors_check.py
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from safetensors_check import read_safetensors
except ImportError:
    print("skipped: torch not installed")
    sys.exit(0)

CONFIGS = [  # (cell, attention, layers)
    ("gru", "none", 1),
    ("gru", "bahdanau", 1),
    ("gru", "luong", 2),
    ("lstm", "none", 2),
    ("lstm", "bahdanau", 1),
    ("lstm", "luong", 1),
]
LOSS_RTOL, LOGITS_RTOL, GRAD_RTOL, GRAD_ATOL = 1e-5, 1e-4, 1e-4, 1e-7


class Seq2seq(nn.Module):
    """The model of seq2seq/model.c, written the PyTorch way."""

    def __init__(self, meta):
        super().__init__()
        self.cell = meta["config.cell"]
        self.attention = meta["config.attention"]
        layers, E, H = int(meta["config.layers"]), int(meta["config.embed"]), int(meta["config.hidden"])
        Vs, Vt = int(meta["config.source_vocab"]), int(meta["config.target_vocab"])
        rnn = nn.GRU if self.cell == "gru" else nn.LSTM
        self.src_embedding = nn.Embedding(Vs, E)
        self.encoder = rnn(E, H, num_layers=layers)
        self.tgt_embedding = nn.Embedding(Vt, E)
        self.decoder = rnn(E + H if self.attention == "bahdanau" else E, H, num_layers=layers)
        if self.attention == "bahdanau":
            self.query = nn.Linear(H, H, bias=False)
            self.key = nn.Linear(H, H, bias=False)
            self.v = nn.Parameter(torch.zeros(H))
        elif self.attention == "luong":
            self.score = nn.Linear(H, H, bias=False)
            self.combine = nn.Linear(2 * H, H, bias=False)
        self.output = nn.Linear(2 * H if self.attention == "bahdanau" else H, Vt)

    def tinyzoo_names(self):
        """tinyzoo's parameter name -> this module's parameter."""
        names = {"encoder.embedding.weight": self.src_embedding.weight,
                 "decoder.embedding.weight": self.tgt_embedding.weight,
                 "decoder.output.weight": self.output.weight,
                 "decoder.output.bias": self.output.bias}
        for prefix, module in (("encoder.rnn.", self.encoder), ("decoder.rnn.", self.decoder)):
            for name, parameter in module.named_parameters():
                names[prefix + name] = parameter  # weight_ih_l0, bias_hh_l1, ...
        if self.attention == "bahdanau":
            names["decoder.attention.query.weight"] = self.query.weight
            names["decoder.attention.key.weight"] = self.key.weight
            names["decoder.attention.v"] = self.v
        elif self.attention == "luong":
            names["decoder.attention.score.weight"] = self.score.weight
            names["decoder.attention.combine.weight"] = self.combine.weight
        return names

    def attend(self, state, memory, keys, mask):
        """state (B, H), memory (B, S, H), keys (B, S, A) -> context (B, H)."""
        if self.attention == "bahdanau":
            scores = torch.tanh(keys + self.query(state)[:, None, :]) @ self.v
        else:
            scores = torch.bmm(keys, state[:, :, None])[:, :, 0]
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights[:, None, :], memory)[:, 0]

    def top_hidden(self, state):
        return (state if self.cell == "gru" else state[0])[-1]

    def forward(self, source, lengths, decoder_inputs, targets):
        S, B = source.shape
        if bool((lengths == S).all()):  # no padding: no need to pack
            memory, state = self.encoder(self.src_embedding(source))
        else:
            packed = nn.utils.rnn.pack_padded_sequence(self.src_embedding(source), lengths,
                                                       enforce_sorted=False)
            outputs, state = self.encoder(packed)  # state: the context vector
            memory, _ = nn.utils.rnn.pad_packed_sequence(outputs, total_length=S)
        memory = memory.transpose(0, 1)  # (B, S, H)
        if self.attention == "none":  # teacher forcing: the whole target in one call
            out, _ = self.decoder(self.tgt_embedding(decoder_inputs), state)
            logits = self.output(out).reshape(-1, self.output.out_features)
            return nn.functional.cross_entropy(logits, targets.reshape(-1), ignore_index=-1), logits
        mask = torch.arange(S)[None, :] < lengths[:, None]
        keys = None
        if self.attention == "bahdanau":
            keys = self.key(memory)
        elif self.attention == "luong":
            keys = self.score(memory)
        features = []
        for t in range(decoder_inputs.shape[0]):
            x = self.tgt_embedding(decoder_inputs[t])
            if self.attention == "bahdanau":
                context = self.attend(self.top_hidden(state), memory, keys, mask)
                x = torch.cat([x, context], dim=1)
            out, state = self.decoder(x[None], state)
            s = out[0]
            if self.attention == "bahdanau":
                features.append(torch.cat([s, context], dim=1))
            elif self.attention == "luong":
                context = self.attend(s, memory, keys, mask)
                features.append(torch.tanh(self.combine(torch.cat([context, s], dim=1))))
            else:
                features.append(s)
        logits = self.output(torch.stack(features))  # (T, B, Vt)
        logits = logits.reshape(-1, logits.shape[-1])
        loss = nn.functional.cross_entropy(logits, targets.reshape(-1), ignore_index=-1)
        return loss, logits


def check(binary, cell, attention, layers, seed, workdir):
    out = os.path.join(workdir, f"{cell}-{attention}-{layers}")
    subprocess.run([binary, "parity", "--out", out, "--cell", cell, "--attention", attention,
                    "--layers", str(layers), "--batch", "4", "--embed", "5", "--hidden", "6",
                    "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    tensors, meta = read_safetensors(os.path.join(out, "parity.safetensors"))
    tensors = {name: array.astype(np.float64) for name, array in tensors.items()}
    torch.manual_seed(0)
    model = Seq2seq(meta).double()
    names = model.tinyzoo_names()
    with torch.no_grad():
        for name, parameter in names.items():
            if name not in tensors:
                raise SystemExit(f"{name}: missing from tinyzoo's file")
            parameter.copy_(torch.from_numpy(tensors[name]))
    missing = [n for n in tensors if not n.startswith(("grad.", "batch.", "loss", "logits")) and n not in names]
    if missing:
        raise SystemExit(f"tinyzoo parameters with no PyTorch counterpart: {missing}")
    as_long = lambda key: torch.from_numpy(tensors[key]).long()
    loss, logits = model(as_long("batch.source"), as_long("batch.source_lengths"),
                         as_long("batch.decoder_inputs"), as_long("batch.targets"))
    loss.backward()

    ok = True
    label = f"{cell:4s} {attention:8s} layers={layers}"
    expected_loss, got_loss = loss.item(), tensors["loss"][0]
    loss_rel = abs(got_loss - expected_loss) / abs(expected_loss)
    logits_diff = np.abs(tensors["logits"] - logits.detach().numpy()).max()
    logits_rel = logits_diff / np.abs(logits.detach().numpy()).max()
    worst_name, worst_abs, worst_rel = "", 0.0, 0.0
    for name, parameter in names.items():
        expected = parameter.grad.numpy()
        got = tensors["grad." + name]
        diff = np.abs(got - expected).max()
        scale = np.abs(expected).max()
        rel = diff / scale if scale > 0 else diff
        if diff > GRAD_RTOL * scale + GRAD_ATOL:
            print(f"  MISMATCH {label}: grad.{name}: max |diff| {diff:.3g}, max |grad| {scale:.3g}")
            ok = False
        if rel > worst_rel:
            worst_name, worst_abs, worst_rel = name, diff, rel
    if loss_rel > LOSS_RTOL:
        print(f"  MISMATCH {label}: loss {got_loss:.8g} vs torch {expected_loss:.8g}")
        ok = False
    if logits_rel > LOGITS_RTOL:
        print(f"  MISMATCH {label}: logits max |diff| {logits_diff:.3g}")
        ok = False
    print(f"{'ok  ' if ok else 'FAIL'} {label}  loss {got_loss:.6f} (rel diff {loss_rel:.1e})  "
          f"logits max abs diff {logits_diff:.1e}  gradients: max rel diff {worst_rel:.1e} "
          f"(abs {worst_abs:.1e}, {worst_name}) over {len(names)} tensors")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default="bin/seq2seq", help="the seq2seq program")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="tinyzoo-seq2seq-parity-") as workdir:
        results = [check(args.bin, cell, attention, layers, 1 + i, workdir)
                   for i, (cell, attention, layers) in enumerate(CONFIGS)]
    if not all(results):
        print("seq2seq parity: FAILED")
        sys.exit(1)
    print(f"seq2seq parity: {len(results)} models match PyTorch {torch.__version__} "
          f"(loss rtol {LOSS_RTOL}, logits and gradients rtol {GRAD_RTOL})")


if __name__ == "__main__":
    main()
