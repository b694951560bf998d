#!/usr/bin/env python3
"""Reproducible training, checked through train_run:
  1. the same run with 1, 2 and 16 TBB threads ends with identical parameter bytes;
  2. a run killed mid-epoch (the process ends abruptly after an optimizer step)
     and started again resumes from its last checkpoint and ends with the bytes
     of the uninterrupted run, and the same metrics (timings aside);
  3. no temporary file is left in the checkpoint directory.

  resume.py --exe build/tests/train/train_run --scratch DIR
"""
import argparse
import csv
import filecmp
import os
import shutil
import subprocess
import sys


def run(exe, net, opt, threads, ckpt, out, epochs=4, crash=None):
    cmd = [exe, "--net", net, "--optimizer", opt, "--threads", str(threads), "--checkpoint", ckpt,
           "--epochs", str(epochs), "--output", out]
    if crash:
        cmd += ["--crash-after-iteration", str(crash)]
    return subprocess.run(cmd, capture_output=True, text=True)


def metrics(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--scratch", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    os.makedirs(args.scratch)
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    for net, opt in (("bn_unet", "adam"), ("unet2d_small", "sgd")):
        base = os.path.join(args.scratch, f"{net}_{opt}")
        ref = None
        for threads in (1, 2, 16):
            ckpt, out = f"{base}_t{threads}", f"{base}_t{threads}.bin"
            r = run(args.exe, net, opt, threads, ckpt, out)
            check(r.returncode == 0, f"{net}/{opt}: {threads} thread(s) runs ({r.stderr.strip()[:200]})")
            if ref is None:
                ref = out
            else:
                check(os.path.exists(out) and filecmp.cmp(ref, out, shallow=False),
                      f"{net}/{opt}: {threads} threads give the bytes of 1 thread")
        # 10 samples, batch 3: 4 iterations per epoch; 4 epochs. Kill during epoch 3, after iteration 10.
        ckpt, out = f"{base}_killed", f"{base}_killed.bin"
        r = run(args.exe, net, opt, 2, ckpt, out, crash=10)
        check(r.returncode == 137 and not os.path.exists(out), f"{net}/{opt}: killed run ended abruptly (exit {r.returncode})")
        done = [row["epoch"] for row in csv.DictReader(open(os.path.join(ckpt, "metrics.csv")))]
        check(done == ["1", "2"], f"{net}/{opt}: the killed run had checkpointed epochs {done} (want 1, 2)")
        r = run(args.exe, net, opt, 2, ckpt, out)
        check(r.returncode == 0, f"{net}/{opt}: resumed run finished ({r.stderr.strip()[:200]})")
        check(os.path.exists(out) and filecmp.cmp(ref, out, shallow=False),
              f"{net}/{opt}: killed and resumed run ends with the bytes of the uninterrupted one")
        check(metrics(os.path.join(ckpt, "metrics.csv")) == metrics(os.path.join(f"{base}_t1", "metrics.csv")),
              f"{net}/{opt}: resumed metrics equal the uninterrupted run's")
        leftovers = [f for f in os.listdir(ckpt) if f.startswith(".")]
        check(not leftovers, f"{net}/{opt}: no temporary files left ({leftovers})")
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
