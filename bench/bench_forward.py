#!/usr/bin/python3
"""Forward-pass timing of a ctseg example against PyTorch, side by side.

    bench_forward.py --exe PATH --name unet2d --variant bench [--runs 10]
                     [--threads 2] [--rounds 3] [--batch 1]

Alternates rounds A B A B ...: A runs
`PATH bench --variant V --batch N --threads T --runs R`, which prints per-run
times and, as its last line, `median_s <seconds>`; B times the same network
from tests/torch/reference_nets.py in PyTorch (eval, no_grad, T threads, two
warm-up passes, then R timed passes). Alternating spreads drifts in machine
load over both sides. The table reports the median over rounds of each side's
per-round median, the speed-up torch/ctseg and the achieved GFLOP/s, with
FLOPs = 2 x multiply-adds of the convolutions and transposed convolutions.
Without --exe only the PyTorch side runs.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch"))
import reference_nets  # noqa: E402

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def count_flops(model, x):
    """2 x multiply-adds of every (transposed) convolution in one forward pass."""
    macs = [0]

    def conv_hook(m, inputs, out):
        per_output = (m.in_channels // m.groups) * math.prod(m.kernel_size)
        macs[0] += out.numel() * per_output

    def transposed_hook(m, inputs, out):
        per_input = (m.out_channels // m.groups) * math.prod(m.kernel_size)
        macs[0] += inputs[0].numel() * per_input

    handles = []
    for m in model.modules():
        if isinstance(m, _CONVS):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, _TRANSPOSED):
            handles.append(m.register_forward_hook(transposed_hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return 2 * macs[0]


def run_ctseg(args):
    cmd = [args.exe, "bench", "--variant", args.variant, "--batch", str(args.batch),
           "--threads", str(args.threads), "--runs", str(args.runs)] + (["--train"] if args.train else [])
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"bench_forward: timed out after {args.timeout} s: {' '.join(cmd)}")
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit(f"bench_forward: exit status {proc.returncode}: {' '.join(cmd)}")
    lines = [ln.split() for ln in out.splitlines() if ln.strip()]
    if not lines or len(lines[-1]) != 2 or lines[-1][0] != "median_s":
        sys.stderr.write(out)
        raise SystemExit(f"bench_forward: the last line of {' '.join(cmd)} is not 'median_s <seconds>'")
    try:
        return float(lines[-1][1])
    except ValueError:
        raise SystemExit(f"bench_forward: cannot parse {' '.join(lines[-1])!r}") from None


def run_torch(model, x, runs):
    times = []
    with torch.no_grad():
        for _ in range(2):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dice_ce(logits, target):
    """Soft Dice + cross-entropy, as ctseg's dice_ce (no weights, no ignore label)."""
    ce = torch.nn.functional.cross_entropy(logits, target)
    p = torch.softmax(logits, 1)
    g = torch.nn.functional.one_hot(target, logits.shape[1]).movedim(-1, 1).to(p.dtype)
    dims = tuple(range(2, logits.dim()))
    dice = 1 - ((2 * (p * g).sum(dims) + 1e-5) / (p.sum(dims) + g.sum(dims) + 1e-5)).mean()
    return ce + dice


def run_torch_train(model, x, target, runs):
    """Training steps: forward in train mode, dice_ce, backward, SGD (momentum 0.9)."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        dice_ce(model(x), target).backward()
        opt.step()
        if i:  # the first step is a warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fmt_s(v):
    return "-" if v is None else f"{v:.4g}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", help="ctseg example binary (omit for PyTorch only)")
    ap.add_argument("--name", required=True, help="network: " + ", ".join(reference_nets.CASES))
    ap.add_argument("--variant", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per ctseg round")
    ap.add_argument("--train", action="store_true",
                    help="time training steps (forward, dice_ce loss, backward, SGD) instead of forward passes")
    args = ap.parse_args(argv)
    if min(args.runs, args.threads, args.rounds, args.batch) < 1:
        ap.error("--runs, --threads, --rounds and --batch must be positive")
    case = f"{args.name}/{args.variant}"
    try:
        reference_nets.split_case(case)
    except KeyError as e:
        ap.error(e.args[0])

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, shape = reference_nets.build(case)
    model.eval()
    x = torch.randn(args.batch, *shape[1:])
    flops = count_flops(model, x)
    if args.train:
        flops *= 3  # backward: gradients of inputs and of weights, each as costly as the forward pass
    with torch.no_grad():
        out_shape = model(x).shape
    target = torch.randint(0, out_shape[1], (out_shape[0],) + tuple(out_shape[2:]))
    print(f"{case}: input {tuple(x.shape)}, {flops / 1e9:.3f} GFLOP per {'training step' if args.train else 'pass'}, "
          f"{args.threads} thread(s), {args.runs} runs x {args.rounds} rounds, torch {torch.__version__}",
          flush=True)

    ct, pt = [], []
    for r in range(args.rounds):
        if args.exe:
            ct.append(run_ctseg(args))
            print(f"  round {r + 1} A ctseg   median {ct[-1]:.4g} s", flush=True)
        pt.append(run_torch_train(model, x, target, args.runs) if args.train else run_torch(model, x, args.runs))
        print(f"  round {r + 1} B pytorch median {pt[-1]:.4g} s", flush=True)

    c = statistics.median(ct) if ct else None
    p = statistics.median(pt)
    header = ("case", "ctseg s", "pytorch s", "speed-up", "ctseg GFLOP/s", "pytorch GFLOP/s")
    row = (f"{case} x{args.batch}" + (" train step" if args.train else ""), fmt_s(c), fmt_s(p),
           "-" if c is None else f"{p / c:.2f}",
           "-" if c is None else f"{flops / c / 1e9:.1f}", f"{flops / p / 1e9:.1f}")
    widths = [max(len(h), len(v)) for h, v in zip(header, row)]
    print()
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
