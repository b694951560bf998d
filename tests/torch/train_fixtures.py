#!/usr/bin/python3
"""PyTorch reference values for ctseg's training maths (include/ctseg/train).

    train_fixtures.py --out DIR [--seed S] [--stamp FILE]

Everything is float64 and written as .npy files:

DIR/loss/CASE/ (CASE: 2d, logits 2x4x7x9, and 3d, logits 1x3x5x6x7)
    logits.npy, target.npy (int64, valid labels), target_ignore.npy (the same
    with some pixels set to the label in ignore.npy), weight.npy (per-pixel
    weights N x spatial), ignore.npy (int64, shape (1,)), and for every loss
    L in ce, dice, dice_ce, with or without the weight map and the ignore label:
    L[_weight][_ignore]_value.npy (shape (1,)) and L[_weight][_ignore]_grad.npy
    (d loss / d logits, by autograd).

DIR/optim/NAME/ (NAME: sgd, sgd_nesterov, sgd_nomomentum, adam, adamw; the
    hyperparameters are in HYPER below, the C++ test repeats them)
    for each parameter KEY in PARAMS: KEY.param.npy (initial values),
    KEY.grad1.npy, KEY.grad2.npy (gradients of steps 1 and 2), KEY.after1.npy,
    KEY.after2.npy (values after each step; step 2 runs with half the learning
    rate) and the optimizer state after step 2 under its PyTorch name:
    KEY.momentum_buffer.npy (SGD with momentum) or KEY.exp_avg.npy and
    KEY.exp_avg_sq.npy (Adam, AdamW).

Files are written atomically; --stamp touches FILE at the end (for build
systems).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5

LOSS_CASES = {"2d": ((2, 4, 7, 9), 255), "3d": ((1, 3, 5, 6, 7), -1)}

PARAMS = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "norm.weight": (6,)}

HYPER = {
    "sgd": ("sgd", dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)),
    "sgd_nesterov": ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    "sgd_nomomentum": ("sgd", dict(lr=0.1, momentum=0.0, weight_decay=1e-4)),
    "adam": ("adam", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)),
    "adamw": ("adamw", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)),
}


def save(path, array):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


# The loss definitions, in float64 (m: mask of non-ignored pixels).
def mask_of(target, ignore_index):
    if ignore_index is None:
        return torch.ones(target.shape, dtype=torch.float64)
    return (target != ignore_index).double()


def ce_loss(logits, target, weight, ignore_index):
    m = mask_of(target, ignore_index)
    safe = torch.where(m > 0, target, torch.zeros_like(target))
    per_pixel = F.cross_entropy(logits, safe, reduction="none")
    w = weight if weight is not None else torch.ones_like(per_pixel)
    return (m * w * per_pixel).sum() / m.sum().clamp(min=1)


def dice_loss(logits, target, ignore_index):
    m = mask_of(target, ignore_index).unsqueeze(1)
    safe = torch.where(m.squeeze(1) > 0, target, torch.zeros_like(target))
    g = F.one_hot(safe, logits.shape[1]).movedim(-1, 1).double()
    p = torch.softmax(logits, dim=1)
    dims = tuple(range(2, logits.dim()))
    inter = (m * p * g).sum(dims)
    denom = (m * p).sum(dims) + (m * g).sum(dims)
    return 1 - ((2 * inter + EPS) / (denom + EPS)).mean()


LOSSES = {
    "ce": lambda l, t, w, i: ce_loss(l, t, w, i),
    "dice": lambda l, t, w, i: dice_loss(l, t, i),
    "dice_ce": lambda l, t, w, i: ce_loss(l, t, w, i) + dice_loss(l, t, i),
}


def loss_fixtures(out, gen):
    for case, (shape, ignore) in LOSS_CASES.items():
        d = os.path.join(out, "loss", case)
        os.makedirs(d, exist_ok=True)
        n, c, spatial = shape[0], shape[1], shape[2:]
        logits = torch.randn(shape, generator=gen, dtype=torch.float64) * 2.0
        target = torch.randint(0, c, (n, *spatial), generator=gen, dtype=torch.int64)
        drop = torch.rand((n, *spatial), generator=gen, dtype=torch.float64) < 0.25
        target_ignore = torch.where(drop, torch.full_like(target, ignore), target)
        weight = 0.5 + 2.5 * torch.rand((n, *spatial), generator=gen, dtype=torch.float64)
        save(os.path.join(d, "logits.npy"), logits.numpy())
        save(os.path.join(d, "target.npy"), target.numpy())
        save(os.path.join(d, "target_ignore.npy"), target_ignore.numpy())
        save(os.path.join(d, "weight.npy"), weight.numpy())
        save(os.path.join(d, "ignore.npy"), np.array([ignore], dtype=np.int64))
        for name, fn in LOSSES.items():
            for use_w in (False, True):
                for use_i in (False, True):
                    stem = name + ("_weight" if use_w else "") + ("_ignore" if use_i else "")
                    x = logits.clone().requires_grad_(True)
                    value = fn(x, target_ignore if use_i else target, weight if use_w else None,
                               ignore if use_i else None)
                    value.backward()
                    save(os.path.join(d, stem + "_value.npy"), np.array([value.item()], dtype=np.float64))
                    save(os.path.join(d, stem + "_grad.npy"), x.grad.numpy())


def optim_fixtures(out, gen):
    init = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in PARAMS.items()}
    grads = [{k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in PARAMS.items()} for _ in range(2)]
    for name, (kind, hp) in HYPER.items():
        d = os.path.join(out, "optim", name)
        os.makedirs(d, exist_ok=True)
        params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
        opt = cls(list(params.values()), **hp)
        for k in PARAMS:
            save(os.path.join(d, k + ".param.npy"), init[k].numpy())
        for step in (1, 2):
            if step == 2:
                for group in opt.param_groups:
                    group["lr"] = hp["lr"] / 2
            for k, p in params.items():
                p.grad = grads[step - 1][k].clone()
                save(os.path.join(d, f"{k}.grad{step}.npy"), grads[step - 1][k].numpy())
            opt.step()
            for k, p in params.items():
                save(os.path.join(d, f"{k}.after{step}.npy"), p.detach().numpy())
        for k, p in params.items():
            for sname, value in opt.state[p].items():
                if sname == "step":
                    assert float(value) == 2.0
                    continue
                if value is None:
                    continue
                save(os.path.join(d, f"{k}.{sname}.npy"), value.numpy())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--stamp")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    loss_fixtures(args.out, gen)
    optim_fixtures(args.out, gen)
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
