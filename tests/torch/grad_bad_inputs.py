#!/usr/bin/env python3
"""The grad command refuses bad training inputs with one clear line on stderr,
a non-zero exit and no output file: a target of the wrong shape, a label outside
[0, classes) that is not the ignore label, a weight map of the wrong shape, an
unknown loss, an ignore index that is not an integer.

  grad_bad_inputs.py --exe build/examples/unet2d --case unet2d/small --fixtures DIR
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    name, variant = args.case.split("/")
    d = os.path.join(args.fixtures, f"{name}_{variant}")
    target = np.load(os.path.join(d, "target.npy"))
    weight = np.load(os.path.join(d, "weight.npy"))
    classes = int(target.max()) + 1
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        def save(fname, arr):
            p = os.path.join(tmp, fname)
            np.save(p, arr)
            return p

        bad_label = target.copy()
        bad_label.flat[5] = classes + 3
        cases = [
            ("target of the wrong shape", ["--target", save("short_target.npy", target[..., :-1]), "--loss", "ce"], "short_target.npy"),
            ("label outside the classes", ["--target", save("bad_label.npy", bad_label), "--loss", "dice_ce"], "bad_label.npy"),
            ("label outside the classes, other than the ignore label",
             ["--target", save("bad_label2.npy", bad_label), "--loss", "ce", "--ignore-index", "255"], "bad_label2.npy"),
            ("weight map of the wrong shape", ["--target", os.path.join(d, "target.npy"), "--loss", "ce",
                                               "--weight-map", save("short_weight.npy", weight[:, :-1])], "short_weight.npy"),
            ("unknown loss", ["--target", os.path.join(d, "target.npy"), "--loss", "focal"], "focal"),
            ("ignore index not an integer", ["--target", os.path.join(d, "target.npy"), "--loss", "ce", "--ignore-index", "x"],
             "--ignore-index"),
        ]
        for what, extra, must_name in cases:
            out = os.path.join(tmp, "grads.safetensors")
            cmd = [args.exe, "grad", "--variant", variant, "--weights", os.path.join(d, "weights.safetensors"),
                   "--input", os.path.join(d, "input.npy"), "--output", out] + extra
            r = subprocess.run(cmd, capture_output=True, text=True)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            problems = []
            if not 0 < r.returncode < 128:
                problems.append(f"exit status {r.returncode}")
            if len(lines) != 1:
                problems.append(f"{len(lines)} stderr lines")
            elif must_name not in lines[0]:
                problems.append(f"message does not name {must_name!r}: {lines[0]}")
            if os.path.exists(out):
                problems.append("an output file was written")
            print(f"{args.case}: {what}: {'ok' if not problems else 'FAIL ' + '; '.join(problems)}"
                  + (f"  [{lines[0]}]" if lines and not problems else ""))
            failed += bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
