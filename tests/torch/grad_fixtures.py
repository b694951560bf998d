#!/usr/bin/env python3
"""Gradient fixtures: for one network variant, PyTorch's loss value and the
gradient of every parameter after one forward/backward in training mode, for
each loss configuration (ce, dice, dice_ce; with and without a per-pixel weight
map and an ignore label).

  grad_fixtures.py --out DIR --case unet2d/small [--seed 0] [--stamp FILE]

Writes DIR/NAME_VARIANT/{weights.safetensors, input.npy, target.npy,
weight.npy} and, per configuration, grads_<config>.safetensors (keys as
named_parameters()) with the loss in its metadata, then configs.json last.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fixtures  # noqa: E402
import reference_nets  # noqa: E402
import safetensors_io  # noqa: E402

EPS = 1e-5
IGNORE = 255

# name -> (loss, use weight map, use ignore label)
CONFIGS = {
    "ce": ("ce", False, False),
    "ce_weight": ("ce", True, False),
    "ce_ignore": ("ce", False, True),
    "dice": ("dice", False, False),
    "dice_ignore": ("dice", False, True),
    "dice_ce_weight_ignore": ("dice_ce", True, True),
}


def mask_of(target, ignore):
    return torch.ones_like(target, dtype=logits_dtype) if ignore is None else (target != ignore).to(logits_dtype)


logits_dtype = torch.float32


def ce_loss(logits, target, weight, ignore):
    m = mask_of(target, ignore)
    safe = torch.where(m > 0, target, torch.zeros_like(target))
    per_pixel = F.cross_entropy(logits, safe, reduction="none")
    w = weight if weight is not None else torch.ones_like(per_pixel)
    return (m * w * per_pixel).sum() / m.sum().clamp(min=1)


def dice_loss(logits, target, ignore):
    m = mask_of(target, ignore).unsqueeze(1)
    classes = logits.shape[1]
    safe = torch.where(m.squeeze(1) > 0, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, classes).movedim(-1, 1).to(logits.dtype)
    p = torch.softmax(logits, dim=1)
    dims = tuple(range(2, logits.dim()))
    inter = (m * p * onehot).sum(dims)
    denom = (m * p).sum(dims) + (m * onehot).sum(dims)
    return 1 - ((2 * inter + EPS) / (denom + EPS)).mean()


def loss_of(kind, logits, target, weight, ignore):
    if kind == "ce":
        return ce_loss(logits, target, weight, ignore)
    if kind == "dice":
        return dice_loss(logits, target, ignore)
    return ce_loss(logits, target, weight, ignore) + dice_loss(logits, target, ignore)


def generate(case, directory, seed):
    os.makedirs(directory, exist_ok=True)
    torch.manual_seed(seed)
    model, shape = reference_nets.build(case)
    make_fixtures.perturb(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(*shape, dtype=torch.float32)
    with torch.no_grad():
        out_shape = model.eval()(x).shape
    classes = out_shape[1]
    target = torch.randint(0, classes, (out_shape[0],) + tuple(out_shape[2:]), dtype=torch.int64)
    ignored = torch.rand(target.shape) < 0.25
    target_ignore = torch.where(ignored, torch.full_like(target, IGNORE), target)
    weight = torch.rand(target.shape, dtype=torch.float32) * 9 + 1
    safetensors_io.save_file(state, os.path.join(directory, "weights.safetensors"))
    safetensors_io.save_npy(os.path.join(directory, "input.npy"), x.numpy())
    safetensors_io.save_npy(os.path.join(directory, "target.npy"), target.numpy())
    safetensors_io.save_npy(os.path.join(directory, "target_ignore.npy"), target_ignore.numpy())
    safetensors_io.save_npy(os.path.join(directory, "weight.npy"), weight.numpy())
    configs = {}
    for name, (kind, use_weight, use_ignore) in CONFIGS.items():
        model.load_state_dict(state)
        model.train()
        model.zero_grad()
        logits = model(x)
        loss = loss_of(kind, logits, target_ignore if use_ignore else target, weight if use_weight else None,
                       IGNORE if use_ignore else None)
        loss.backward()
        grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
        safetensors_io.save_file(grads, os.path.join(directory, f"grads_{name}.safetensors"),
                                 metadata={"loss": repr(float(loss))})
        configs[name] = {"loss": kind, "weight": use_weight, "ignore": IGNORE if use_ignore else None,
                         "value": float(loss)}
    safetensors_io.atomic_write_bytes(os.path.join(directory, "configs.json"),
                                      (json.dumps({"case": case, "seed": seed, "configs": configs}, indent=1) + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stamp")
    args = ap.parse_args()
    torch.set_num_threads(2)
    name, variant = reference_nets.split_case(args.case)
    generate(args.case, os.path.join(args.out, f"{name}_{variant}"), args.seed)
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write(args.case + "\n")


if __name__ == "__main__":
    main()
