#!/usr/bin/python3
"""tests/parity/autoencoder_parity.py: tinyzoo's autoencoders against PyTorch.

For each case below, `bin/autoencoder parity` writes one safetensors file:
the weights ("param.<name>"), a batch of images in [0, 1] (the input the
encoder saw, which is the corrupted one for the dae, and the clean target),
the vae's eps draws, tinyzoo's logits, code, loss terms and every gradient
("grad.<name>").  This script rebuilds the same model in PyTorch from those
weights, runs the same batch, and compares the loss terms, the logits, the
code and every gradient.

The PyTorch model is written from the equations, not from tinyzoo's code:
nn.Linear layers (a tied decoder uses F.linear with the encoder's weight
transposed), BCE with logits summed over pixels and averaged over the batch
(or squared error the same way), KL(N(mu, sigma^2) || N(0, 1)) in closed
form, z = mu + exp(logvar / 2) * eps, and L1 of the code.

Tolerance: PyTorch runs in float64 from the same float32 weights, so the
differences are tinyzoo's float32 rounding (and its polynomial exp/log in
the fused sigmoid-BCE, accurate to ~1e-7): every element must satisfy
|tinyzoo - torch| <= 1e-5 + 1e-4 |torch| (relative ~1e-6 is typical, and
the maximum differences are printed).  A wrong gradient term is off by a
sizeable fraction of the gradient itself.

Exit status: 0 when everything matches (or torch is missing: "skipped"),
1 on any mismatch.
"""
import argparse
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

ATOL, RTOL = 1e-5, 1e-4

# (label, flags): ae and vae as the issue asks, plus the variants.
CASES = [
    ("ae", "--model ae --layers 48,20,6 --activation relu --output bce"),
    ("vae", "--model vae --layers 48,20,4 --activation relu --output bce --beta 0.7"),
    ("ae tied mse tanh l1", "--model ae --layers 40,16,8,3 --activation tanh --output mse --tied --l1 0.05"),
    ("dae masking gelu", "--model dae --layers 36,12,5 --activation gelu --noise masking --noise-level 0.3"),
    ("vae tied sigmoid", "--model vae --layers 30,10,2 --activation sigmoid --tied --beta 2"),
]


ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "gelu": lambda x: F.gelu(x), "linear": lambda x: x}


def torch_pass(t, meta):
    """The loss terms, logits, code and parameter gradients, in float64."""
    sizes = [int(s) for s in meta["layers"].split(",")]
    L = len(sizes) - 1
    kind, tied = meta["model"], meta["tied"] == "true"
    act = ACTIVATIONS[meta["activation"]]
    params = {name[len("param."):]: torch.tensor(value, dtype=torch.float64, requires_grad=True)
              for name, value in t.items() if name.startswith("param.")}
    x = torch.tensor(t["input"], dtype=torch.float64)
    target = torch.tensor(t["target"], dtype=torch.float64)
    B = x.shape[0]

    h = x
    for k in range(L - 1):
        h = act(F.linear(h, params[f"encoder.{k}.weight"], params[f"encoder.{k}.bias"]))
    mu = F.linear(h, params[f"encoder.{L - 1}.weight"], params[f"encoder.{L - 1}.bias"])
    z = mu
    if kind == "vae":
        logvar = F.linear(h, params["encoder.logvar.weight"], params["encoder.logvar.bias"])
        z = mu + torch.exp(0.5 * logvar) * torch.tensor(t["eps"], dtype=torch.float64)

    def decoder(k, h):
        weight = params[f"encoder.{k}.weight"].t() if tied else params[f"decoder.{k}.weight"]
        return F.linear(h, weight, params[f"decoder.{k}.bias"])

    h = z
    for k in range(L - 1, 0, -1):
        h = act(decoder(k, h))
    logits = decoder(0, h)
    if meta["output"] == "bce":
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / B
    else:
        recon = ((logits - target) ** 2).sum() / B
    loss = recon
    kl = torch.zeros((), dtype=torch.float64)
    if kind == "vae":
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum() / B
        loss = loss + float(meta["beta"]) * kl
    sparsity = torch.zeros((), dtype=torch.float64)
    if float(meta["l1"]) > 0:
        sparsity = mu.abs().sum() / B
        loss = loss + float(meta["l1"]) * sparsity
    loss.backward()
    grads = {name: p.grad.numpy() for name, p in params.items()}
    values = {"loss": loss.detach().numpy().reshape(1), "recon_loss": recon.detach().numpy().reshape(1),
              "kl": kl.detach().numpy().reshape(1), "sparsity": sparsity.detach().numpy().reshape(1),
              "logits": logits.detach().numpy(), "mu": mu.detach().numpy()}
    return values, grads


def compare(label, name, ours, theirs, report):
    ours = ours.astype(np.float64)
    difference = np.abs(ours - theirs)
    allowed = ATOL + RTOL * np.abs(theirs)
    relative = difference / np.maximum(np.abs(theirs), 1e-12)
    report["max_abs"] = max(report["max_abs"], float(difference.max()))
    report["max_rel"] = max(report["max_rel"], float(relative[np.abs(theirs) > 1e-3].max(initial=0.0)))
    if ours.shape != theirs.shape or (difference > allowed).any():
        worst = int(np.argmax(difference - allowed))
        print(f"MISMATCH {label}: {name}: element {worst}: tinyzoo {ours.flat[worst]:.8g}, "
              f"torch {theirs.flat[worst]:.8g}")
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="bin/autoencoder")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        for index, (label, flags) in enumerate(CASES):
            out = os.path.join(directory, str(index))
            command = [args.bin, "parity", "--out", out, "--batch", "5", "--seed", str(11 + index)] + flags.split()
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"FAILED {label}: {' '.join(command)}\n{run.stderr}")
                ok = False
                continue
            t, meta = read_safetensors(os.path.join(out, "parity.safetensors"))
            values, grads = torch_pass(t, meta)
            report = {"max_abs": 0.0, "max_rel": 0.0}
            case_ok = all([compare(label, name, t[name], values[name], report) for name in values] +
                          [compare(label, "grad." + name, t["grad." + name], grads[name], report)
                           for name in sorted(grads)])
            ok &= case_ok
            print(f"{'ok' if case_ok else 'FAIL':4} {label:22} loss {float(t['loss'][0]):11.5f}  "
                  f"{len(grads)} gradients  max abs diff {report['max_abs']:.2e}  "
                  f"max rel diff {report['max_rel']:.2e}")
    if not ok:
        print("autoencoder parity: MISMATCH")
        sys.exit(1)
    print("autoencoder parity: all match")


if __name__ == "__main__":
    main()
