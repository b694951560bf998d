#!/usr/bin/env python3
"""A checkpoint written by the trainer loads into the PyTorch reference module
with load_state_dict(strict=True), and both then compute the same output.

  checkpoint_torch.py --train-run build/tests/train/train_run --unet2d build/examples/unet2d --scratch DIR
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "torch"))
import reference_nets  # noqa: E402
import safetensors_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-run", required=True)
    ap.add_argument("--unet2d", required=True)
    ap.add_argument("--scratch", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    os.makedirs(args.scratch)
    ckpt = os.path.join(args.scratch, "run")
    r = subprocess.run([args.train_run, "--net", "unet2d_small", "--optimizer", "sgd", "--threads", "2", "--checkpoint", ckpt,
                        "--epochs", "2", "--output", os.path.join(args.scratch, "params.bin")], capture_output=True, text=True)
    if r.returncode != 0:
        print("train_run failed:", r.stderr)
        return 1
    weights = os.path.join(ckpt, "last.safetensors")
    model, shape = reference_nets.build("unet2d/small")
    state = {k: torch.from_numpy(np.array(v)) for k, v in safetensors_io.load_file(weights).items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    torch.manual_seed(0)
    x = torch.randn(*shape)
    with torch.no_grad():
        want = model(x).numpy()
    inp, out = os.path.join(args.scratch, "x.npy"), os.path.join(args.scratch, "y.npy")
    np.save(inp, x.numpy())
    r = subprocess.run([args.unet2d, "infer", "--variant", "small", "--weights", weights, "--input", inp, "--output", out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("unet2d infer failed:", r.stderr)
        return 1
    got = np.load(out)
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    ok = rel <= 1e-4
    print(f"checkpoint {weights}: loaded strictly into PyTorch ({len(state)} tensors); outputs agree to {rel:.2e}: "
          f"{'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
