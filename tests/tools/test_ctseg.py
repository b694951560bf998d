#!/usr/bin/env python3
"""The ctseg command end to end on small data made here: every subcommand,
its errors (one line on stderr, non-zero exit), the geometry of what segment
writes (read back with nibabel), evaluate's numbers against numpy, and a
training run killed mid-way that resumes to the same bytes as one that was not.

usage: test_ctseg.py PATH/TO/ctseg [PATH/TO/tutorial_example docs/tutorial.md]
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
from PIL import Image

EXE = sys.argv[1]
TUTORIAL_EXE, TUTORIAL_PAGE = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else (None, None)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def ctseg(*args, timeout=120):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def expect_error(args, needle, what):
    """A mistake gives exactly one line on stderr, naming what is wrong, and a non-zero exit."""
    p = ctseg(*args)
    lines = p.stderr.splitlines()
    good = p.returncode != 0 and len(lines) == 1 and lines[0].startswith("ctseg: error: ") and needle in lines[0]
    check(good, f"{what}: rc {p.returncode}, stderr {p.stderr.strip()!r}")


# --- data -------------------------------------------------------------------

def discs(shape, rng, count=3):
    """An image of bright discs on a noisy background and its 0/1 labels."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    labels = np.zeros(shape, np.uint8)
    for _ in range(count):
        cy, cx, r = rng.uniform(5, shape[0] - 5), rng.uniform(5, shape[1] - 5), rng.uniform(3, 8)
        labels[(y - cy) ** 2 + (x - cx) ** 2 <= r * r] = 1
    image = np.clip(60 + 120 * labels + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)
    return image, labels


def make_png_folder(root, rng, n=5, shape=(40, 52)):
    img_dir, lab_dir = os.path.join(root, "images"), os.path.join(root, "labels")
    os.makedirs(img_dir)
    os.makedirs(lab_dir)
    for i in range(n):
        image, labels = discs(shape, rng)
        Image.fromarray(image).save(os.path.join(img_dir, f"cell{i}.png"))
        Image.fromarray(labels).save(os.path.join(lab_dir, f"cell{i}.png"))
    return img_dir, lab_dir


def make_volume(root, rng, shape_zyx=(12, 40, 36)):
    """A NIfTI volume (x, y, z on disk) with an oblique affine and anisotropic
    voxels, and its mask stored as 0/255 (as a brain-extracted image would)."""
    image = np.zeros(shape_zyx, np.uint8)
    labels = np.zeros(shape_zyx, np.uint8)
    for z in range(shape_zyx[0]):
        image[z], labels[z] = discs(shape_zyx[1:], rng, count=2)
    angle = 0.3
    affine = np.array([[0.9 * np.cos(angle), -1.1 * np.sin(angle), 0, -20.5],
                       [0.9 * np.sin(angle), 1.1 * np.cos(angle), 0, 11.0],
                       [0, 0, 2.0, -7.25],
                       [0, 0, 0, 1]])
    vol = os.path.join(root, "vol.nii.gz")
    mask = os.path.join(root, "vol_mask.nii.gz")
    for data, path in ((image, vol), (labels * 255, mask)):
        img = nib.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)), affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=2)
        nib.save(img, path)
    return vol, mask, labels, affine


# --- numpy references of the scores ------------------------------------------

def surface(obj):
    pad = np.pad(obj, 1, constant_values=False)
    inner = obj.copy()
    for axis in range(obj.ndim):
        for shift in (1, -1):
            inner &= np.roll(pad, shift, axis=axis)[tuple(slice(1, -1) for _ in range(obj.ndim))]
    return obj & ~inner


def hd95(a, b, spacing):
    sa, sb = np.argwhere(surface(a)) * spacing, np.argwhere(surface(b)) * spacing
    if len(sa) == 0 and len(sb) == 0:
        return float("nan")
    if len(sa) == 0 or len(sb) == 0:
        return float("inf")
    d = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))


def reference_scores(pairs, classes, ignore=None, spacing=(1.0, 1.0)):
    """Dice/IoU/pixel error over all pairs at once; HD95 the mean over pairs."""
    truth_n = np.zeros(classes)
    pred_n = np.zeros(classes)
    inter = np.zeros(classes)
    wrong = voxels = 0
    hd = [[] for _ in range(classes)]
    for p, t in pairs:
        keep = np.ones(t.shape, bool) if ignore is None else t != ignore
        voxels += keep.sum()
        wrong += (keep & (p != t)).sum()
        for c in range(classes):
            pc, tc = keep & (p == c), keep & (t == c)
            truth_n[c] += tc.sum()
            pred_n[c] += pc.sum()
            inter[c] += (pc & tc).sum()
            hd[c].append(hd95(pc, tc, np.array(spacing)))
    dice = 2 * inter / (truth_n + pred_n)
    iou = inter / (truth_n + pred_n - inter)
    hd_mean = []
    for c in range(classes):
        values = [v for v in hd[c] if not np.isnan(v)]
        hd_mean.append(float("inf") if any(np.isinf(values)) else (np.mean(values) if values else float("nan")))
    return dice, iou, wrong / voxels, hd_mean


def close(a, b, tol=1e-6):
    if a is None or b is None:
        return a is None and (b is None or np.isnan(b))
    if a == "inf" or b == "inf" or (isinstance(b, float) and np.isinf(b)):
        return str(a) == "inf" and np.isinf(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


# --- the tests ----------------------------------------------------------------

def test_help_and_usage_errors(tmp):
    for sub in ("info", "train", "segment", "evaluate"):
        p = ctseg(sub, "--help")
        check(p.returncode == 0 and "usage: ctseg" in p.stdout, f"{sub} --help")
    check(ctseg("--help").returncode == 0, "ctseg --help")
    expect_error([], "no command", "no command")
    expect_error(["frobnicate"], "unknown command 'frobnicate'", "unknown command")
    expect_error(["train", "--bogus", "1"], "unknown option '--bogus'", "unknown option")
    expect_error(["train", "--net", "unet2d", "--variant", "padded"], "--images is required", "missing option")
    expect_error(["train", "--net", "unet2d", "--variant", "padded", "--images", "a", "--labels", "b", "--out", "c", "--epochs", "ten"],
                 "--epochs needs an integer", "non-integer value")
    expect_error(["train", "--net", "unet2d", "--variant", "nope", "--images", "a", "--labels", "b", "--out", "c"],
                 "no variant 'nope'", "unknown variant")
    expect_error(["info", "--net", "resnet", "--variant", "x"], "unknown network 'resnet'", "unknown network")
    expect_error(["segment", "--weights", os.path.join(tmp, "missing.safetensors"), "--input", "x.png", "--output", "y.png",
                  "--net", "unet2d", "--variant", "padded"], "missing.safetensors", "missing weights")
    expect_error(["evaluate", "--pred", "p.png", "--truth", "t.png", "--slices", "every:0"], "every:0", "bad slice spec")
    expect_error(["evaluate", "--pred", "p.png", "--truth", "t.png", "--label-map", "1-3=1,2=0"], "overlaps", "bad label map")
    expect_error(["info", os.path.join(tmp, "missing.png")], "missing.png", "missing image file")
    corrupt = os.path.join(tmp, "corrupt.nii.gz")
    with open(corrupt, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00garbage" * 10)
    expect_error(["info", corrupt], "corrupt.nii.gz", "corrupt NIfTI")
    bad_png = os.path.join(tmp, "bad.png")
    with open(bad_png, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    expect_error(["info", bad_png], "bad.png", "corrupt PNG")


def test_info(tmp, vol):
    p = ctseg("info")
    check(p.returncode == 0 and "unet2d" in p.stdout and "brain" in p.stdout and "120,690" in p.stdout, "info lists variants")
    p = ctseg("info", "--net", "unet2d", "--variant", "small")
    check(p.returncode == 0 and "7,402 parameters" in p.stdout, "info --net --variant prints the summary")
    p = ctseg("info", vol)
    check(p.returncode == 0 and "12x40x36" in p.stdout and "2 x 1.1 x 0.9" in p.stdout and "u8" in p.stdout,
          f"info FILE: {p.stdout.strip()!r}")


def test_png_folder(tmp, rng):
    img_dir, lab_dir = make_png_folder(tmp, rng)
    run = os.path.join(tmp, "png_run")
    p = ctseg("train", "--net", "unet2d", "--variant", "padded", "--images", img_dir, "--labels", lab_dir, "--val-images", img_dir,
              "--val-labels", lab_dir, "--epochs", 2, "--tiles-per-epoch", 8, "--batch", 4, "--augment", "flip,rot90,elastic",
              "--border-weights", "--out", run)
    check(p.returncode == 0, f"train on a PNG folder: {p.stderr.strip()[-300:]!r}")
    for name in ("run.json", "last.safetensors", "best.safetensors", "last.optim.safetensors", "metrics.csv", "curves.svg"):
        check(os.path.exists(os.path.join(run, name)), f"train writes {name}")
    rows = open(os.path.join(run, "metrics.csv")).read().splitlines()
    check(len(rows) == 3 and rows[0].startswith("epoch,"), "metrics.csv has a row per epoch")
    svg = open(os.path.join(run, "curves.svg")).read()
    check(svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and "<path" in svg, "curves.svg is an SVG with curves")
    out, overlay = os.path.join(tmp, "png_out"), os.path.join(tmp, "png_overlay")
    p = ctseg("segment", "--weights", os.path.join(run, "last.safetensors"), "--input", img_dir, "--output", out, "--overlay", overlay,
              "--probabilities")
    check(p.returncode == 0, f"segment a PNG folder (net from run.json): {p.stderr.strip()!r}")
    names = sorted(os.listdir(img_dir))
    check(all(os.path.exists(os.path.join(out, n)) for n in names), "segment writes one mask per input, same names")
    mask = np.asarray(Image.open(os.path.join(out, names[0])))
    check(mask.shape == (40, 52) and set(np.unique(mask)) <= {0, 1}, f"PNG mask shape {mask.shape}, values {np.unique(mask)}")
    pic = Image.open(os.path.join(overlay, names[0]))
    check(pic.size == (52, 40) and pic.mode == "RGB", "overlay picture is RGB of the image's size")
    check(os.path.exists(os.path.join(out, names[0][:-4] + "_probabilities.tif")), "probabilities of a PNG go to a TIFF")
    expect_error(["segment", "--weights", os.path.join(run, "last.safetensors"), "--input", img_dir, "--output", img_dir],
                 "is the --input folder", "segmenting a folder into itself is refused")
    # evaluate the folder against its labels
    p = ctseg("evaluate", "--pred", out, "--truth", lab_dir, "--json", os.path.join(tmp, "png_eval.json"))
    check(p.returncode == 0 and "Dice" in p.stdout, "evaluate folders")
    got = json.load(open(os.path.join(tmp, "png_eval.json")))
    pairs = [(np.asarray(Image.open(os.path.join(out, n))).astype(int), np.asarray(Image.open(os.path.join(lab_dir, n))).astype(int))
             for n in names]
    dice, iou, err, hd = reference_scores(pairs, 2)
    check(got["files"] == len(names) and close(got["pixel_error"], err), "evaluate pixel error over folders = numpy")
    for c in range(2):
        check(close(got["classes"][c]["dice"], dice[c]) and close(got["classes"][c]["iou"], iou[c]) and
              close(got["classes"][c]["hd95"], hd[c]), f"evaluate class {c} on folders = numpy")
    return run


def test_volume(tmp, rng):
    vol, mask, labels, affine = make_volume(tmp, rng)
    test_info(tmp, vol)
    expect_error(["train", "--net", "unet2d", "--variant", "padded", "--images", vol, "--labels", mask, "--out",
                  os.path.join(tmp, "v_bad"), "--epochs", 1], "label 255", "labels outside the classes need --label-map")
    run = os.path.join(tmp, "vol_run")
    p = ctseg("train", "--net", "unet2d", "--variant", "padded", "--images", vol, "--labels", mask, "--label-map", "1-255=1",
              "--slices", "not-every:3", "--val-slices", "every:3", "--epochs", 2, "--batch", 4, "--out", run)
    check(p.returncode == 0 and "on 8 slices" in p.stdout and "validating on 4" in p.stdout,
          f"train a 2D net on volume slices: {p.stdout.splitlines()[:1]} {p.stderr.strip()[-200:]!r}")
    out = os.path.join(tmp, "vol_seg.nii.gz")
    overlay = os.path.join(tmp, "vol_overlay")
    p = ctseg("segment", "--weights", os.path.join(run, "last.safetensors"), "--input", vol, "--output", out, "--slices", "every:3",
              "--overlay", overlay, "--probabilities")
    check(p.returncode == 0, f"segment held-out slices of a volume: {p.stderr.strip()!r}")
    seg, src = nib.load(out), nib.load(vol)
    check(seg.shape == src.shape, f"mask shape {seg.shape} = volume shape {src.shape}")
    check(np.allclose(seg.affine, src.affine, atol=1e-5) and np.allclose(seg.header.get_zooms(), src.header.get_zooms()),
          "segment keeps spacing and affine")
    check(int(seg.header["sform_code"]) == 2 and int(seg.header["qform_code"]) == 1, "segment keeps the qform and sform codes")
    m = np.asarray(seg.dataobj).transpose(2, 1, 0)
    check(all(not m[z].any() for z in range(12) if z % 3), "slices not selected are labelled 0")
    check(sorted(os.listdir(overlay)) == [f"vol_z{z:03d}.png" for z in (0, 3, 6, 9)], "one picture per selected slice")
    prob = np.asarray(nib.load(os.path.join(tmp, "vol_seg_probabilities.nii.gz")).dataobj)
    total = prob.sum(axis=-1).transpose(2, 1, 0)
    check(np.allclose(total[::3], 1, atol=1e-5), "class probabilities sum to 1 on the segmented slices")

    # 3D network on the same volume: tiles overhang it on every axis
    run3 = os.path.join(tmp, "vol3_run")
    p = ctseg("train", "--net", "unet3d", "--variant", "small", "--images", vol, "--labels", mask, "--label-map", "0=0,*=1",
              "--epochs", 1, "--tiles-per-epoch", 2, "--batch", 1, "--out", run3)
    check(p.returncode == 0, f"train a 3D net on a volume: {p.stderr.strip()[-200:]!r}")
    out3 = os.path.join(tmp, "vol3_seg.nii")
    p = ctseg("segment", "--weights", os.path.join(run3, "last.safetensors"), "--input", vol, "--output", out3)
    check(p.returncode == 0 and nib.load(out3).shape == src.shape, "segment with a 3D net")
    expect_error(["segment", "--weights", os.path.join(run3, "last.safetensors"), "--input", vol, "--output", out3, "--slices", "1"],
                 "--slices is for 2D networks", "--slices with a 3D net")
    # failures leave no file behind: a volume cannot be a PNG, weights must be weights
    png_out = os.path.join(tmp, "vol_seg.png")
    expect_error(["segment", "--weights", os.path.join(run, "last.safetensors"), "--input", vol, "--output", png_out],
                 "vol_seg.png", "a volume written as PNG")
    check(not os.path.exists(png_out) and not [f for f in os.listdir(tmp) if f.startswith(".vol_seg.png")],
          "a failed write leaves neither the file nor a temporary")
    garbage = os.path.join(tmp, "garbage.safetensors")
    with open(garbage, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    expect_error(["segment", "--weights", garbage, "--net", "unet2d", "--variant", "padded", "--input", vol, "--output", out],
                 "garbage.safetensors", "corrupt weights")
    expect_error(["segment", "--weights", os.path.join(run3, "last.safetensors"), "--net", "unet2d", "--variant", "padded",
                  "--input", vol, "--output", out], "last.safetensors", "weights of another network")
    return vol, mask, labels


def test_evaluate(tmp, rng):
    # three classes, an ignore label, anisotropic spacing
    shape = (6, 30, 34)
    truth = rng.integers(0, 3, shape)
    truth[:, :10, :] = 0
    truth[:, 12:20, 5:25] = 2
    pred = truth.copy()
    flip = rng.random(shape) < 0.1
    pred[flip] = rng.integers(0, 3, flip.sum())
    truth_ign = truth.copy()
    truth_ign[:, :, :3] = 7
    spacing = (2.0, 1.1, 0.9)
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    for data, name in ((pred, "pred.nii.gz"), (truth_ign, "truth.nii.gz")):
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)).astype(np.int16), affine), os.path.join(tmp, name))
    js = os.path.join(tmp, "eval.json")
    p = ctseg("evaluate", "--pred", os.path.join(tmp, "pred.nii.gz"), "--truth", os.path.join(tmp, "truth.nii.gz"),
              "--ignore-label", 7, "--slices", "1-4", "--json", js)
    check(p.returncode == 0, f"evaluate volumes by slice: {p.stderr.strip()!r}")
    got = json.load(open(js))
    dice, iou, err, hd = reference_scores([(pred[z], truth_ign[z]) for z in range(1, 5)], 3, ignore=7, spacing=spacing[1:])
    check(got["slices"] == 4 and close(got["pixel_error"], err), f"pixel error {got['pixel_error']} = numpy {err}")
    for c in range(3):
        g = got["classes"][c]
        check(close(g["dice"], dice[c]) and close(g["iou"], iou[c]) and close(g["hd95"], hd[c], 1e-5),
              f"class {c}: Dice {g['dice']} IoU {g['iou']} HD95 {g['hd95']} = numpy {dice[c]:.6f} {iou[c]:.6f} {hd[c]:.6f}")
    expect_error(["evaluate", "--pred", os.path.join(tmp, "pred.nii.gz"), "--truth", os.path.join(tmp, "truth.nii.gz"),
                  "--classes", 3], "truth label 7", "a label beyond --classes names the file and the value")
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.int16), np.eye(4)), os.path.join(tmp, "small.nii.gz"))
    expect_error(["evaluate", "--pred", os.path.join(tmp, "small.nii.gz"), "--truth", os.path.join(tmp, "truth.nii.gz")],
                 "differ", "extents that differ")


def test_resume(tmp, rng):
    img_dir, lab_dir = make_png_folder(os.path.join(tmp, "resume_data"), rng, n=4, shape=(72, 90))
    args = ["train", "--net", "unet2d", "--variant", "padded", "--images", img_dir, "--labels", lab_dir, "--val-images", img_dir,
            "--val-labels", lab_dir, "--epochs", 8, "--tiles-per-epoch", 12, "--batch", 3, "--augment", "flip,scale", "--seed", 5]
    whole = os.path.join(tmp, "whole")
    p = ctseg(*args, "--out", whole)
    check(p.returncode == 0, "uninterrupted run")
    broken = os.path.join(tmp, "broken")
    proc = subprocess.Popen([EXE, *map(str, args), "--out", broken], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv = os.path.join(broken, "metrics.csv")
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(csv) and len(open(csv).read().splitlines()) >= 4:  # header + 3 epochs
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(open(csv).read().splitlines()) - 1
    check(killed and done < 8, f"run killed after {done} of 8 epochs")
    p = ctseg(*args, "--out", broken)
    check(p.returncode == 0, f"resumed run: {p.stderr.strip()!r}")
    for name in ("last.safetensors", "last.optim.safetensors"):
        same = open(os.path.join(whole, name), "rb").read() == open(os.path.join(broken, name), "rb").read()
        check(same, f"resumed {name} has the bytes of the uninterrupted run")
    strip = lambda f: [",".join(r.split(",")[:5]) for r in open(f).read().splitlines()]
    check(strip(os.path.join(whole, "metrics.csv")) == strip(os.path.join(broken, "metrics.csv")), "same metrics.csv (but times)")
    expect_error(args[:-2] + ["--seed", 6, "--out", broken], "seed", "resuming with another seed is refused")


def test_tutorial_example(tmp, rng):
    """The page's C++ runs: trains on a volume's slices, writes a mask with the geometry."""
    if TUTORIAL_EXE is None:
        return
    os.makedirs(os.path.join(tmp, "tutorial"))
    vol, mask, labels, affine = make_volume(os.path.join(tmp, "tutorial"), rng, shape_zyx=(8, 140, 132))
    out = os.path.join(tmp, "tutorial", "mask.nii.gz")
    p = subprocess.run([TUTORIAL_EXE, vol, mask, "2", os.path.join(tmp, "tutorial", "run"), out],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and "held-out Dice" in p.stdout, f"tutorial example runs: {p.stdout.strip()!r} {p.stderr.strip()[-200:]!r}")
    seg = nib.load(out)
    check(seg.shape == (132, 140, 8) and np.allclose(seg.affine, affine, atol=1e-5), "tutorial example keeps the geometry")
    m = np.asarray(seg.dataobj).transpose(2, 1, 0)
    check(not m[1:4].any() and not m[5:8].any(), "tutorial example segments only the held-out slices")
    page = open(TUTORIAL_PAGE).read()
    source = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tutorial_example.cpp")).read()
    blocks = re.findall(r"```cpp\n(.*?)```", page, re.S)
    check(blocks and all(b in source for b in blocks), f"docs/tutorial.md quotes tutorial_example.cpp verbatim ({len(blocks)} blocks)")


def main():
    start = time.time()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        test_help_and_usage_errors(tmp)
        test_png_folder(tmp, rng)
        test_volume(tmp, rng)
        test_evaluate(tmp, rng)
        test_resume(tmp, rng)
        test_tutorial_example(tmp, rng)
    print(f"{len(failures)} failure(s) in {time.time() - start:.1f} s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
