#!/usr/bin/python3
"""Run a ctseg example on a PyTorch fixture and compare its logits.

    compare.py --exe PATH --case NAME/VARIANT --fixtures DIR [--tol 1e-4] [--timeout S]

Runs `PATH infer --variant VARIANT --weights DIR/NAME_VARIANT/weights.safetensors
--input DIR/NAME_VARIANT/input.npy --output TMP/out.npy` and passes when the
output has the expected shape and max|ctseg - torch| <= tol * max|torch|.
Exit status 0 on success, 1 on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402


def case_paths(fixtures, case):
    name, sep, variant = case.partition("/")
    if not sep or not name or not variant:
        raise SystemExit(f"compare.py: --case must be NAME/VARIANT, got {case!r}")
    d = os.path.join(fixtures, f"{name}_{variant}")
    return name, variant, {k: os.path.join(d, f) for k, f in
                           (("weights", "weights.safetensors"), ("input", "input.npy"),
                            ("expected", "expected.npy"))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed for the example")
    args = ap.parse_args(argv)

    name, variant, paths = case_paths(args.fixtures, args.case)
    for p in paths.values():
        if not os.path.isfile(p):
            print(f"{args.case}: missing fixture {p} (run make_fixtures.py)")
            return 1
    expected = safetensors_io.load_npy(paths["expected"])

    with tempfile.TemporaryDirectory(prefix="ctseg-compare-") as tmp:
        out = os.path.join(tmp, "out.npy")
        cmd = [args.exe, "infer", "--variant", variant, "--weights", paths["weights"],
               "--input", paths["input"], "--output", out]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{args.case}: FAIL: timed out after {args.timeout} s: {' '.join(cmd)}")
            return 1
        except OSError as e:
            print(f"{args.case}: FAIL: cannot run {args.exe}: {e}")
            return 1
        elapsed = time.time() - t0
        if proc.returncode != 0:
            how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exit status {proc.returncode}")
            print(f"{args.case}: FAIL: {how}: {' '.join(cmd)}")
            sys.stdout.write(proc.stderr.decode(errors="replace"))
            return 1
        if not os.path.isfile(out):
            print(f"{args.case}: FAIL: the example exited 0 but wrote no {out}")
            sys.stdout.write(proc.stderr.decode(errors="replace"))
            return 1
        try:
            got = safetensors_io.load_npy(out)
        except Exception as e:  # any unreadable .npy is a failure, not a crash
            print(f"{args.case}: FAIL: cannot read the example's output: {e}")
            return 1

    if got.shape != expected.shape:
        print(f"{args.case}: FAIL: output shape {got.shape} != expected {expected.shape}")
        return 1
    if got.dtype != np.float32:
        print(f"{args.case}: FAIL: output dtype {got.dtype} != float32")
        return 1
    if not np.all(np.isfinite(got)):
        print(f"{args.case}: FAIL: output has {int(np.sum(~np.isfinite(got)))} non-finite values")
        return 1
    diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    rel = diff / scale if scale > 0 else diff
    ok = rel <= args.tol
    print(f"{args.case}: max|diff| {diff:.2g}, max|torch| {scale:.2g}, rel {rel:.2g} "
          f"{'<=' if ok else '>'} {args.tol:g}: {'ok' if ok else 'FAIL'} ({elapsed:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
