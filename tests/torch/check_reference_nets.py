#!/usr/bin/python3
"""Developer check: reference_nets.py against an external models.py.

    /usr/bin/python3 tests/torch/check_reference_nets.py /path/to/models.py [--all] [--case NAME/VARIANT ...]

The given models.py must define a VARIANTS table {name: {variant: (constructor,
input shape)}}. For every case, both networks are built, one perturbed
state_dict is loaded into both (strict: same keys, same shapes) and the eval
outputs on one random input must be identical. "paper" and "bench" variants
are skipped (except unet2d/paper) unless --all is given.
"""
import argparse
import importlib.util
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_nets  # noqa: E402
from make_fixtures import perturb  # noqa: E402


def load_module(path):
    spec = importlib.util.spec_from_file_location("external_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", help="path to the models.py to compare with")
    ap.add_argument("--all", action="store_true", help="include the heavy paper/bench variants")
    ap.add_argument("--case", action="append", default=[], help="only these cases (NAME/VARIANT)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    other = load_module(args.models)
    theirs = {f"{n}/{v}" for n, vs in other.VARIANTS.items() for v in vs}
    ours = set(reference_nets.all_cases())
    failures = 0
    if theirs != ours:
        print(f"case tables differ: only in models.py {sorted(theirs - ours)}, "
              f"only here {sorted(ours - theirs)}")
        failures += 1

    # The network cases only ever crop even surpluses; probe odd ones directly.
    if hasattr(other, "center_crop"):
        x = torch.arange(2 * 3 * 11 * 8 * 7, dtype=torch.float32).reshape(2, 3, 11, 8, 7)
        for want in [(11, 8, 7), (10, 7, 6), (8, 5, 2), (1, 1, 1), (6, 8, 4)]:
            like = torch.empty(1, 1, *want)
            if not torch.equal(reference_nets.crop_like(x, like), other.center_crop(x, like)):
                print(f"center crop differs for {tuple(x.shape[2:])} -> {want}")
                failures += 1
                break
        else:
            print("center crop: ok (odd and even surpluses)")

    cases = args.case or reference_nets.all_cases()
    for case in cases:
        name, variant = reference_nets.split_case(case)
        if not args.all and not args.case and variant in ("paper", "bench") and case != "unet2d/paper":
            print(f"{case}: skipped (heavy; use --all)")
            continue
        t0 = time.time()
        torch.manual_seed(1)
        mine, shape = reference_nets.build(case)
        perturb(mine)
        make, their_shape = other.VARIANTS[name][variant]
        ref = make()
        problems = []
        if tuple(their_shape) != shape:
            problems.append(f"input shape {tuple(their_shape)} != {shape}")
        a, b = mine.state_dict(), ref.state_dict()
        if list(a) != list(b):
            problems.append(f"state_dict keys differ: only here {sorted(set(a) - set(b))}, "
                            f"only there {sorted(set(b) - set(a))}, or order differs")
        for k in set(a) & set(b):
            if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype:
                problems.append(f"{k}: {tuple(a[k].shape)} {a[k].dtype} != {tuple(b[k].shape)} {b[k].dtype}")
        if not problems:
            ref.load_state_dict(a, strict=True)
            mine.eval()
            ref.eval()
            x = torch.randn(*shape)
            with torch.no_grad():
                y1 = mine(x)
                y2 = ref(x)
            if y1.shape != y2.shape:
                problems.append(f"output shape {tuple(y1.shape)} != {tuple(y2.shape)}")
            elif not torch.equal(y1, y2):
                diff = (y1 - y2).abs().max().item()
                problems.append(f"outputs differ: max|diff| {diff:.3g}, max|ref| {y2.abs().max().item():.3g}")
            else:
                out_shape = tuple(y1.shape)
        status = "ok" if not problems else "FAIL: " + "; ".join(problems)
        extra = f" {len(a)} tensors, out {out_shape}" if not problems else ""
        print(f"{case}: {status}{extra} ({time.time() - t0:.1f} s)", flush=True)
        failures += bool(problems)
    print("all identical" if not failures else f"{failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
