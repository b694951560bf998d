#!/usr/bin/env python3
"""Runs `EXE grad` for every loss configuration of a gradient fixture and
compares the loss and every parameter gradient with PyTorch's:
|loss - torch| <= tol * |torch| and, per tensor, max|g - torch| <= tol * scale,
scale = max(max|torch|, 1e-2 * the largest max|torch| of all tensors). The floor
matters for gradients that are zero up to rounding, such as the bias of a
convolution followed by a training-mode batch norm (which removes any constant).

  grad_compare.py --exe build/examples/unet2d --case unet2d/small --fixtures DIR [--tol 1e-3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    name, variant = args.case.split("/")
    d = os.path.join(args.fixtures, f"{name}_{variant}")
    configs = json.load(open(os.path.join(d, "configs.json")))["configs"]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for cfg, spec in configs.items():
            out = os.path.join(tmp, f"{cfg}.safetensors")
            cmd = [args.exe, "grad", "--variant", variant, "--weights", os.path.join(d, "weights.safetensors"),
                   "--input", os.path.join(d, "input.npy"),
                   "--target", os.path.join(d, "target_ignore.npy" if spec["ignore"] is not None else "target.npy"),
                   "--loss", spec["loss"], "--output", out]
            if spec["weight"]:
                cmd += ["--weight-map", os.path.join(d, "weight.npy")]
            if spec["ignore"] is not None:
                cmd += ["--ignore-index", str(spec["ignore"])]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{args.case} {cfg}: exit {r.returncode}: {r.stderr.strip()}")
                failed += 1
                continue
            lines = [l for l in r.stdout.splitlines() if l.startswith("loss ")]
            loss = float(lines[-1].split()[1]) if lines else float("nan")
            want = spec["value"]
            loss_ok = abs(loss - want) <= args.tol * abs(want)
            got = safetensors_io.load_file(out)
            ref = safetensors_io.load_file(os.path.join(d, f"grads_{cfg}.safetensors"))
            worst, worst_key, problems = 0.0, "", []
            floor = 1e-2 * max(float(np.abs(np.asarray(v, np.float64)).max()) for v in ref.values())
            if set(got) != set(ref):
                problems.append(f"keys differ: missing {sorted(set(ref) - set(got))[:3]}, extra {sorted(set(got) - set(ref))[:3]}")
            for k in sorted(set(got) & set(ref)):
                a, b = np.asarray(got[k], np.float64), np.asarray(ref[k], np.float64)
                if a.shape != b.shape:
                    problems.append(f"{k}: shape {a.shape} vs {b.shape}")
                    continue
                scale = max(float(np.abs(b).max()), floor, 1e-30)
                rel = float(np.abs(a - b).max() / scale)
                if rel > worst:
                    worst, worst_key = rel, k
            ok = loss_ok and not problems and worst <= args.tol
            print(f"{args.case} {cfg}: loss {loss:.7g} vs {want:.7g}; worst gradient {worst_key} rel {worst:.2e} "
                  f"<= {args.tol:g}: {'ok' if ok else 'FAIL'} {'; '.join(problems)}")
            failed += not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
