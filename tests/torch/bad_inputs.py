#!/usr/bin/python3
"""Check that a ctseg example rejects broken inputs cleanly.

    bad_inputs.py --exe PATH --fixtures DIR --case NAME/VARIANT [--timeout S]

Starting from a good fixture (see make_fixtures.py), each check corrupts one
thing (weights file, input array, command line) and runs
`PATH infer --variant V --weights W --input I --output O`. The example must
exit with a non-zero status (not by a signal), print exactly one non-empty line
on stderr that names the offending file (and the tensor key, for tensor
errors) and contains no crash dump, and leave nothing in the output directory.
Prints one line per check; exit status 1 if any check fails.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402

CRASH_MARKERS = ("terminate called", "what():", "Traceback", "Segmentation fault", "Aborted",
                 "core dumped", "AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                 "Assertion", "stack trace", "#0 ")


class Check:
    def __init__(self, label, *, weights=None, inp=None, variant=None, extra=(), mentions=()):
        self.label = label
        self.weights = weights
        self.inp = inp
        self.variant = variant
        self.extra = list(extra)
        self.mentions = list(mentions)


def pick_keys(tensors):
    """Three distinct keys to corrupt: prefer conv kernels (rank >= 2) and a
    bias; spread over the sorted key list so the loader must check them all."""
    keys = sorted(tensors)
    kernels = [k for k in keys if tensors[k].ndim >= 2]
    biases = [k for k in keys if k.endswith(".bias") and tensors[k].ndim == 1]
    missing = kernels[-1]
    shape = kernels[len(kernels) // 2] if kernels[len(kernels) // 2] != missing else kernels[0]
    dtype = next((b for b in biases if b not in (missing, shape)), kernels[0])
    return missing, shape, dtype


def write_raw(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def build_checks(tmp, weights_path, input_path, variant):
    with open(weights_path, "rb") as f:
        wbytes = f.read()
    tensors, metadata = safetensors_io.decode(wbytes)
    (hlen,) = struct.unpack("<Q", wbytes[:8])
    x = safetensors_io.load_npy(input_path)
    missing, wrong_shape, wrong_dtype = pick_keys(tensors)
    checks = []

    def wfile(stem, data):
        return write_raw(os.path.join(tmp, stem + ".safetensors"), data)

    def ifile(stem, array=None, raw=None):
        p = os.path.join(tmp, stem + ".npy")
        if raw is not None:
            return write_raw(p, raw)
        np.save(p, array, allow_pickle=False)
        return p

    p = wfile("weights_truncated", wbytes[:len(wbytes) * 3 // 5])
    checks.append(Check("weights file truncated (data)", weights=p, mentions=[os.path.basename(p)]))
    p = wfile("weights_truncated_header", wbytes[:8 + hlen // 2])
    checks.append(Check("weights file truncated (header)", weights=p, mentions=[os.path.basename(p)]))
    p = wfile("weights_not_safetensors", b"this is not a safetensors file\n" * 4)
    checks.append(Check("weights file not safetensors", weights=p, mentions=[os.path.basename(p)]))

    t = dict(tensors)
    del t[missing]
    p = wfile("weights_missing_tensor", safetensors_io.encode(t, metadata))
    checks.append(Check(f"weights missing tensor {missing}", weights=p,
                        mentions=[os.path.basename(p), missing]))

    t = dict(tensors)
    t["extra_module.weight"] = np.ones((3,), np.float32)
    p = wfile("weights_extra_tensor", safetensors_io.encode(t, metadata))
    checks.append(Check("weights with unexpected tensor extra_module.weight", weights=p,
                        mentions=[os.path.basename(p), "extra_module.weight"]))

    t = dict(tensors)
    a = t[wrong_shape]
    t[wrong_shape] = np.concatenate([a, np.zeros((1,) + a.shape[1:], a.dtype)], axis=0)
    p = wfile("weights_wrong_shape", safetensors_io.encode(t, metadata))
    checks.append(Check(f"weights tensor {wrong_shape} of shape {list(t[wrong_shape].shape)} "
                        f"instead of {list(a.shape)}", weights=p,
                        mentions=[os.path.basename(p), wrong_shape]))

    t = dict(tensors)
    t[wrong_dtype] = t[wrong_dtype].astype(np.float64)
    p = wfile("weights_wrong_dtype", safetensors_io.encode(t, metadata))
    checks.append(Check(f"weights tensor {wrong_dtype} stored as F64", weights=p,
                        mentions=[os.path.basename(p), wrong_dtype]))

    p = ifile("input_wrong_rank", x.reshape(-1, x.shape[-1]))
    checks.append(Check(f"input of rank 2 {list(x.reshape(-1, x.shape[-1]).shape)}", inp=p,
                        mentions=[os.path.basename(p)]))
    y = np.concatenate([x, x[:, :1]], axis=1)
    p = ifile("input_wrong_channels", y)
    checks.append(Check(f"input with {y.shape[1]} channels instead of {x.shape[1]}", inp=p,
                        mentions=[os.path.basename(p)]))
    y = np.pad(x, [(0, 0), (0, 0)] + [(0, 1)] * (x.ndim - 2))
    p = ifile("input_wrong_spatial", y)
    checks.append(Check(f"input of spatial size {list(y.shape[2:])} instead of {list(x.shape[2:])}",
                        inp=p, mentions=[os.path.basename(p)]))
    good = os.path.join(tmp, "probe.npy")
    np.save(good, x, allow_pickle=False)
    with open(good, "rb") as f:
        ibytes = f.read()
    p = ifile("input_truncated", raw=ibytes[:len(ibytes) - x.nbytes // 2])
    checks.append(Check("input .npy truncated", inp=p, mentions=[os.path.basename(p)]))

    p = os.path.join(tmp, "no_such_weights.safetensors")
    checks.append(Check("nonexistent weights file", weights=p, mentions=[os.path.basename(p)]))
    p = os.path.join(tmp, "no_such_input.npy")
    checks.append(Check("nonexistent input file", inp=p, mentions=[os.path.basename(p)]))

    checks.append(Check("unknown option --no-such-option", extra=["--no-such-option"],
                        mentions=["--no-such-option"]))
    checks.append(Check("unknown variant no_such_variant", variant="no_such_variant",
                        mentions=["no_such_variant"]))
    return checks


def run_check(args, check, variant, weights, inp, tmp, index):
    outdir = os.path.join(tmp, f"out{index}")
    os.mkdir(outdir)
    out = os.path.join(outdir, "out.npy")
    cmd = [args.exe, "infer", "--variant", check.variant or variant,
           "--weights", check.weights or weights, "--input", check.inp or inp,
           "--output", out] + check.extra
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return [f"timed out after {args.timeout} s"], ""
    err = proc.stderr.decode(errors="replace")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    problems = []
    if proc.returncode == 0:
        problems.append("exit status 0")
    elif proc.returncode < 0:
        problems.append(f"killed by signal {-proc.returncode}")
    elif proc.returncode >= 128:
        problems.append(f"exit status {proc.returncode} (looks like a signal)")
    if not lines:
        problems.append("nothing on stderr")
    elif len(lines) > 1:
        problems.append(f"{len(lines)} lines on stderr, expected one")
    for marker in CRASH_MARKERS:
        if marker in err:
            problems.append(f"stderr contains {marker!r}")
    for m in check.mentions:
        if m not in err:
            problems.append(f"stderr does not mention {m!r}")
    left = os.listdir(outdir)
    if left:
        problems.append(f"left {', '.join(sorted(left))} in the output directory")
    return problems, err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--verbose", "-v", action="store_true", help="show every stderr")
    args = ap.parse_args(argv)

    name, sep, variant = args.case.partition("/")
    if not sep:
        ap.error("--case must be NAME/VARIANT")
    d = os.path.join(args.fixtures, f"{name}_{variant}")
    weights = os.path.join(d, "weights.safetensors")
    inp = os.path.join(d, "input.npy")
    for p in (weights, inp):
        if not os.path.isfile(p):
            print(f"{args.case}: missing fixture {p} (run make_fixtures.py)")
            return 1

    failures = 0
    with tempfile.TemporaryDirectory(prefix="ctseg-bad-") as tmp:
        checks = build_checks(tmp, weights, inp, variant)
        for i, check in enumerate(checks):
            problems, err = run_check(args, check, variant, weights, inp, tmp, i)
            first = err.strip().splitlines()[0] if err.strip() else ""
            if problems:
                failures += 1
                print(f"{args.case}: {check.label}: FAIL: {'; '.join(problems)}")
                for ln in err.rstrip().splitlines()[:20]:
                    print(f"    | {ln}")
            else:
                print(f"{args.case}: {check.label}: ok" + (f": {first}" if args.verbose else ""))
    print(f"{args.case}: {len(checks) - failures}/{len(checks)} bad-input checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
