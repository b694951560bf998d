#!/usr/bin/python3
"""Generate PyTorch reference fixtures for the ctseg examples.

    make_fixtures.py --out DIR --case NAME/VARIANT [--case ...] [--seed S] [--stamp FILE]
    make_fixtures.py --list

For each case writes DIR/NAME_VARIANT/{weights.safetensors, input.npy,
expected.npy}: the full state_dict (num_batches_tracked included, as an I64
scalar) of a seeded network whose eval-mode state has been perturbed so that
batch norm and PReLU are not identities, a random float32 input of the case's
shape, and the float32 logits of model.eval() under no_grad.

Files are written atomically. A case is skipped when its outputs exist, were
made with the same seed and are newer than the generating scripts. --stamp
touches FILE once every case is up to date (for build systems).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_nets  # noqa: E402
import safetensors_io  # noqa: E402

OUTPUTS = ("weights.safetensors", "input.npy", "expected.npy")
META = "fixture.json"
SOURCES = [os.path.join(HERE, f) for f in ("make_fixtures.py", "reference_nets.py", "safetensors_io.py")]


def perturb(model):
    """Randomise the eval-time state that default init leaves trivial, drawing
    from torch's global RNG: batch norm statistics and affine parameters, and
    PReLU slopes. Convolutions keep their default initialisation."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.5)
    return model


def case_dir(out, case):
    name, variant = reference_nets.split_case(case)
    return os.path.join(out, f"{name}_{variant}")


def up_to_date(directory, case, seed):
    try:
        with open(os.path.join(directory, META)) as f:
            meta = json.load(f)
        oldest = min(os.path.getmtime(os.path.join(directory, o)) for o in OUTPUTS + (META,))
    except (OSError, ValueError):
        return False
    if meta.get("case") != case or meta.get("seed") != seed:
        return False
    newest_source = max(os.path.getmtime(s) for s in SOURCES)
    return oldest >= newest_source


def generate(case, directory, seed):
    torch.manual_seed(seed)
    model, shape = reference_nets.build(case)
    perturb(model)
    model.eval()
    x = torch.randn(*shape, dtype=torch.float32)
    with torch.no_grad():
        y = model(x)
    state = model.state_dict()
    tensors = {k: v for k, v in state.items()}
    safetensors_io.save_file(tensors, os.path.join(directory, "weights.safetensors"),
                             metadata={"format": "pt", "case": case, "seed": str(seed)})
    safetensors_io.save_npy(os.path.join(directory, "input.npy"), x.numpy().astype("float32"))
    safetensors_io.save_npy(os.path.join(directory, "expected.npy"), y.numpy().astype("float32"))
    meta = {"case": case, "seed": seed, "input_shape": list(shape), "output_shape": list(y.shape),
            "torch": torch.__version__, "tensors": len(tensors),
            "parameters": int(sum(p.numel() for p in model.parameters()))}
    # written last: its presence and mtime certify the three outputs
    safetensors_io.atomic_write_bytes(os.path.join(directory, META),
                                      (json.dumps(meta, indent=1) + "\n").encode())
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="fixture root directory")
    ap.add_argument("--case", action="append", default=[], help="NAME/VARIANT (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stamp", help="file touched after success")
    ap.add_argument("--force", action="store_true", help="regenerate even when up to date")
    ap.add_argument("--list", action="store_true", help="print every known case and exit")
    args = ap.parse_args(argv)

    if args.list:
        for case in reference_nets.all_cases():
            print(case)
        return 0
    if not args.out or not args.case:
        ap.error("--out and at least one --case are required (or --list)")
    for case in args.case:
        try:
            reference_nets.split_case(case)
        except KeyError as e:
            ap.error(e.args[0])

    torch.set_num_threads(args.threads)
    for case in args.case:
        directory = case_dir(args.out, case)
        if not args.force and up_to_date(directory, case, args.seed):
            print(f"{case}: up to date ({directory})")
            continue
        t0 = time.time()
        meta = generate(case, directory, args.seed)
        size = os.path.getsize(os.path.join(directory, "weights.safetensors"))
        print(f"{case}: wrote {directory} (in {tuple(meta['input_shape'])} -> out "
              f"{tuple(meta['output_shape'])}, {meta['parameters']} params, {size / 1e6:.1f} MB) "
              f"in {time.time() - t0:.1f} s", flush=True)
    if args.stamp:
        safetensors_io.atomic_write_bytes(args.stamp, (" ".join(args.case) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
