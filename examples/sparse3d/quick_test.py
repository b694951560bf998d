"""Smoke test of `sparse3d run --quick`: the program completes and writes its
outputs, and what it reports agrees with an independent computation.

With nibabel and numpy (python3-nibabel, python3-numpy) it also checks that
  - every prediction is a 181 x 217 x 181 label volume with the T1 volume's
    affine, labels 0..3;
  - the annotation holds the AAL classes on z = 8, 24, ..., 168 and 255
    elsewhere;
  - the Dice of every method in results.csv equals the Dice recomputed here
    from its prediction file on the unannotated slices;
  - the interpolation baseline equals one recomputed here from the atlas.
Without them, it checks that the files exist and are gzip streams.
"""
import argparse
import csv
import gzip
import os
import shutil
import subprocess
import sys

TEMPLATES = "/usr/share/mricron/templates"
METHODS = ["unet3d", "unet2d", "interpolation"]
EVERY, OFFSET = 16, 8


def fail(msg):
    print("sparse3d quick: FAIL: " + msg)
    sys.exit(1)


def aal_classes(np, aal):
    lab = np.zeros(aal.shape, np.int64)
    brain = (aal >= 1) & (aal <= 90)
    lab[brain & (aal % 2 == 1)] = 1
    lab[brain & (aal % 2 == 0)] = 2
    lab[(aal >= 91) & (aal <= 116)] = 3
    return lab


def dice(np, pred, truth, mask):
    out = []
    for c in range(4):
        p, t = (pred == c) & mask, (truth == c) & mask
        s = p.sum() + t.sum()
        out.append(2.0 * (p & t).sum() / s if s else float("nan"))
    return out


def interpolation(np, truth, annotated):
    # One-hot labels interpolated linearly along z between annotated slices
    # (nearest annotated slice outside them), argmax with ties to the lower class.
    pred = np.empty_like(truth)
    onehot = np.eye(4)[truth[..., annotated]]  # x, y, k, 4
    for z in range(truth.shape[2]):
        hi = int(np.searchsorted(annotated, z))
        if hi == 0:
            w, a, b = 0.0, 0, 0
        elif hi == len(annotated):
            w, a, b = 0.0, hi - 1, hi - 1
        else:
            a, b = hi - 1, hi
            if annotated[hi] == z:
                a = b = hi
            w = 0.0 if a == b else (z - annotated[a]) / (annotated[b] - annotated[a])
        pred[:, :, z] = np.argmax((1 - w) * onehot[:, :, a] + w * onehot[:, :, b], axis=-1)
    return pred


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for name in ("ch2.nii.gz", "aal.nii.gz"):
        path = os.path.join(TEMPLATES, name)
        if not os.path.exists(path):
            fail(path + " is missing: the test needs Debian's mricron-data (apt-get install mricron-data)")
    shutil.rmtree(args.out, ignore_errors=True)
    run = subprocess.run([args.exe, "run", "--quick", "--threads", "2", "--out", args.out],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout.replace("\r", "\n")[-6000:])
    if run.returncode != 0:
        fail("sparse3d exited with %d" % run.returncode)
    if "Dice on the 170 unannotated axial slices" not in run.stdout:
        fail("the table of results is missing from the output")

    files = ["results.csv", "annotation.nii.gz"] + ["prediction_%s.nii.gz" % m for m in METHODS]
    for f in files:
        path = os.path.join(args.out, f)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            fail(path + " was not written")
        if f.endswith(".gz"):
            with gzip.open(path, "rb") as g:
                if len(g.read(348)) != 348:
                    fail(path + " is not a gzipped NIfTI file")
    with open(os.path.join(args.out, "results.csv")) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    if sorted(rows) != sorted(METHODS):
        fail("results.csv has rows %s, expected %s" % (sorted(rows), sorted(METHODS)))
    for m, r in rows.items():
        for c in ("dice_left_cerebrum", "dice_right_cerebrum", "dice_cerebellum", "mean_dice_brain"):
            v = float(r[c])
            if not 0 <= v <= 1:
                fail("results.csv: %s %s = %s is not a Dice" % (m, c, r[c]))
    for m in ("unet3d", "unet2d"):
        if int(rows[m]["iterations"]) < 1:
            fail("results.csv: %s trained no iteration" % m)

    try:
        import nibabel as nib
        import numpy as np
    except ImportError:
        print("sparse3d quick: nibabel or numpy missing, file contents not checked")
        print("sparse3d quick: OK")
        return
    t1 = nib.load(os.path.join(TEMPLATES, "ch2.nii.gz"))
    truth = aal_classes(np, np.asarray(nib.load(os.path.join(TEMPLATES, "aal.nii.gz")).dataobj).astype(np.int64))
    annotated = np.arange(OFFSET, truth.shape[2], EVERY)  # axial = NIfTI z = the last nibabel axis
    mask = np.ones(truth.shape, bool)
    mask[:, :, annotated] = False

    ann = nib.load(os.path.join(args.out, "annotation.nii.gz"))
    a = np.asarray(ann.dataobj).astype(np.int64)
    expected = np.full(truth.shape, 255, np.int64)
    expected[:, :, annotated] = truth[:, :, annotated]
    if a.shape != truth.shape or not np.array_equal(a, expected):
        fail("annotation.nii.gz is not the AAL classes on z = %d + %d k and 255 elsewhere" % (OFFSET, EVERY))
    for m in METHODS:
        img = nib.load(os.path.join(args.out, "prediction_%s.nii.gz" % m))
        if img.shape != truth.shape:
            fail("prediction_%s.nii.gz has shape %s, expected %s" % (m, img.shape, truth.shape))
        if not np.allclose(img.affine, t1.affine):
            fail("prediction_%s.nii.gz has affine\n%s\nthe T1 volume has\n%s" % (m, img.affine, t1.affine))
        p = np.asarray(img.dataobj).astype(np.int64)
        if p.min() < 0 or p.max() > 3:
            fail("prediction_%s.nii.gz has labels outside 0..3" % m)
        d = dice(np, p, truth, mask)
        for c, col in enumerate(("dice_background", "dice_left_cerebrum", "dice_right_cerebrum", "dice_cerebellum")):
            if abs(d[c] - float(rows[m][col])) > 1e-5:
                fail("%s %s: results.csv says %s, recomputed from the file %.6f" % (m, col, rows[m][col], d[c]))
    ref = dice(np, interpolation(np, truth, annotated), truth, mask)
    mean = (ref[1] + ref[2] + ref[3]) / 3
    if abs(mean - float(rows["interpolation"]["mean_dice_brain"])) > 1e-5:
        fail("interpolation: results.csv says mean Dice %s, recomputed here %.6f" % (rows["interpolation"]["mean_dice_brain"], mean))
    print("sparse3d quick: interpolation baseline recomputed: mean Dice %.4f" % mean)
    print("sparse3d quick: OK")


if __name__ == "__main__":
    main()
