#!/usr/bin/python3
"""Performance report of ctseg against PyTorch on this machine.

    bench/performance.py --build build [--out docs/performance.md] [--quick]

In one run: measures the FMA peak (bench/fma_peak, 1 and T threads), then per
case, A/B interleaved (ctseg round, PyTorch round, ...):
  (a) unet2d/bench forward, batch 1
  (b) unet2d/bench training step (forward, dice_ce, backward, SGD), batch 4
  (c) unet3d/bench forward, batch 1
  (d) thread scaling: unet2d/bench forward with 1 and with T threads (ctseg only)
  (e) peak RSS of `unet2d infer --variant bench` on a random input (and of the
      same forward pass in PyTorch, for comparison)
  (f) heap allocations of unet2d/bench forward passes after the first
      (bench/forward_allocations), and the bytes of the arena each leases
Timing and FLOP counting reuse bench/bench_forward.py. Prints a table and
writes it, with the machine, the date, the command and an SVG bar chart
(next to the markdown, same stem), atomically (temp file + rename).
"""
import argparse
import datetime
import os
import platform
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_forward as bf  # noqa: E402  (also puts tests/torch on sys.path)
import reference_nets  # noqa: E402
import torch  # noqa: E402

ROOT = bf.ROOT


# ---------------------------------------------------------------------------- helpers

def log(msg):
    print(msg, flush=True)


def check_output(cmd, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(out)
        raise SystemExit(f"performance: exit status {proc.returncode}: {' '.join(cmd)}")
    return out


def build_targets(build):
    targets = ["bench/fma_peak", "bench/forward_allocations", "examples/unet2d", "examples/unet3d"]
    log(f"building {' '.join(targets)} in {build}")
    check_output(["meson", "compile", "-C", build] + targets)


def fma_peak(build, threads):
    out = check_output([os.path.join(build, "bench", "fma_peak"), str(threads)])
    vals = dict(ln.split()[:2] for ln in out.splitlines() if ln.startswith("peak_gflops_"))
    return float(vals["peak_gflops_1"]), float(vals["peak_gflops_T"])


def ctseg_args(exe, variant, batch, threads, runs, train, timeout=3600):
    """The namespace bench_forward.run_ctseg expects."""
    return argparse.Namespace(exe=exe, variant=variant, batch=batch, threads=threads, runs=runs,
                              train=train, timeout=timeout)


def torch_case(case, batch, train):
    """(model, input, target, FLOPs per pass or training step), as bench_forward.main sets them up."""
    torch.manual_seed(0)
    model, shape = reference_nets.build(case)
    model.eval()
    x = torch.randn(batch, *shape[1:])
    flops = bf.count_flops(model, x)
    if train:
        flops *= 3  # backward: data and weight gradients, each as costly as the forward pass
    with torch.no_grad():
        out_shape = model(x).shape
    target = torch.randint(0, out_shape[1], (out_shape[0],) + tuple(out_shape[2:]))
    return model, x, target, flops


def ab_case(label, build, name, variant, batch, train, threads, runs, rounds):
    """A/B interleaved: ctseg then PyTorch, `rounds` times; medians of per-round medians."""
    exe = os.path.join(build, "examples", name)
    model, x, target, flops = torch_case(f"{name}/{variant}", batch, train)
    a = ctseg_args(exe, variant, batch, threads, runs, train)
    log(f"{label}: {flops / 1e9:.2f} GFLOP per {'step' if train else 'pass'}, {threads} thread(s), "
        f"{runs} runs x {rounds} rounds")
    ct, pt = [], []
    for r in range(rounds):
        ct.append(bf.run_ctseg(a))
        pt.append(bf.run_torch_train(model, x, target, runs) if train else bf.run_torch(model, x, runs))
        log(f"  round {r + 1}: A ctseg {ct[-1]:.4g} s  B pytorch {pt[-1]:.4g} s")
    return dict(case=label, ctseg=statistics.median(ct), torch=statistics.median(pt), flops=flops, threads=threads,
                ctseg_rounds=ct, torch_rounds=pt)


def scaling_case(build, threads, runs, rounds):
    """ctseg only: unet2d/bench forward with 1 and with `threads` threads, interleaved."""
    exe = os.path.join(build, "examples", "unet2d")
    _, _, _, flops = torch_case("unet2d/bench", 1, False)
    log(f"thread scaling: unet2d/bench forward, 1 vs {threads} threads, {runs} runs x {rounds} rounds")
    one, many = [], []
    for r in range(rounds):
        one.append(bf.run_ctseg(ctseg_args(exe, "bench", 1, 1, runs, False)))
        many.append(bf.run_ctseg(ctseg_args(exe, "bench", 1, threads, runs, False)))
        log(f"  round {r + 1}: 1 thread {one[-1]:.4g} s  {threads} threads {many[-1]:.4g} s")
    return (dict(case="unet2d fwd x1, 1 thread", ctseg=statistics.median(one), torch=None, flops=flops, threads=1,
                 ctseg_rounds=one, torch_rounds=None),
            dict(case=f"unet2d fwd x1, {threads} threads", ctseg=statistics.median(many), torch=None, flops=flops,
                 threads=threads, ctseg_rounds=many, torch_rounds=None))


def write_npy_f32(path, shape, values):
    """A little-endian float32 .npy (format 1.0) without numpy."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join(f"{d}, " for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape))
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack(f"<{len(values)}f", *values))


# A child forked from this (large) process starts with its high-water RSS, and
# Linux keeps it across exec, so the child is started through a small
# exec'ed intermediate that forks it afresh: GNU time, or a bare python3 -S.
_RSS_HELPER = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT).returncode\n"
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
               "sys.exit(r)\n")


def child_max_rss_kib(cmd):
    """Peak RSS (KiB) of running cmd."""
    with tempfile.TemporaryDirectory(prefix="ctseg-rss-") as tmp:
        rep = os.path.join(tmp, "maxrss")
        if os.access("/usr/bin/time", os.X_OK):
            wrapped = ["/usr/bin/time", "-f", "%M", "-o", rep] + cmd
        else:
            wrapped = [sys.executable, "-S", "-c", _RSS_HELPER, rep] + cmd
        proc = subprocess.run(wrapped, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout.decode(errors="replace"))
            raise SystemExit(f"performance: exit status {proc.returncode}: {' '.join(cmd)}")
        with open(rep) as f:
            return int(f.read().split()[-1]), proc.stdout.decode(errors="replace")


_TORCH_RSS = """
import sys, torch
sys.path.insert(0, {tests!r})
import reference_nets
torch.set_num_threads({threads})
torch.manual_seed(0)
model, shape = reference_nets.build('unet2d/bench')
model.eval()
with torch.no_grad():
    model(torch.randn(*shape))
"""


def rss_case(build, threads):
    exe = os.path.join(build, "examples", "unet2d")
    shape = tuple(reference_nets.input_shape("unet2d/bench"))
    with tempfile.TemporaryDirectory(prefix="ctseg-perf-") as tmp:
        w, x, y = (os.path.join(tmp, n) for n in ("w.safetensors", "x.npy", "y.npy"))
        check_output([exe, "init", "--variant", "bench", "--output", w])
        g = torch.Generator().manual_seed(0)
        n = 1
        for d in shape:
            n *= d
        write_npy_f32(x, shape, torch.randn(n, generator=g).tolist())
        ct_kib, _ = child_max_rss_kib([exe, "infer", "--variant", "bench", "--weights", w, "--input", x, "--output", y])
    code = _TORCH_RSS.format(tests=os.path.join(ROOT, "tests", "torch"), threads=threads)
    pt_kib, _ = child_max_rss_kib([sys.executable, "-c", code])
    log(f"peak RSS, unet2d/bench infer {shape}: ctseg {ct_kib / 1024:.1f} MiB, "
        f"pytorch (whole python process) {pt_kib / 1024:.1f} MiB")
    return ct_kib, pt_kib, shape


def allocation_case(build, threads, passes=5):
    """{threads: (heap allocations per forward pass after the first, arena bytes)}."""
    out = check_output([os.path.join(build, "bench", "forward_allocations"), str(threads), str(passes)])
    res = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) == 8 and f[0] == "threads":
            res[int(f[1])] = (int(f[5]) / int(f[3]), int(f[7]))
    if threads not in res:
        raise SystemExit(f"performance.py: bench/forward_allocations printed no line for {threads} threads: {out!r}")
    log("heap allocations per forward pass after the first: " +
        ", ".join(f"{a:g} at {t} thread(s) (arena {b / 2**20:.1f} MiB)" for t, (a, b) in sorted(res.items())))
    return res


# ---------------------------------------------------------------------------- output

def percent_of_peak(r, seconds, peak1, peakT):
    """% of the FMA peak of case r run in `seconds` (1-thread cases against the 1-thread peak)."""
    return 100 * r["flops"] / seconds / 1e9 / (peak1 if r["threads"] == 1 else peakT)


def table_rows(results, peak1, peakT, rss, allocs):
    rows = []
    for r in results:
        c, p = r["ctseg"], r["torch"]
        rows.append((r["case"], f"{c * 1e3:.1f} ms", "-" if p is None else f"{p * 1e3:.1f} ms",
                     "-" if p is None else f"{p / c:.2f}x", f"{r['flops'] / c / 1e9:.1f}",
                     f"{percent_of_peak(r, c, peak1, peakT):.0f}%"))
    one = next(r for r in results if r["threads"] == 1 and r["torch"] is None)
    many = next(r for r in results if r["threads"] != 1 and r["torch"] is None)
    rows.append((f"thread scaling 1 -> {many['threads']}", "-", "-", f"{one['ctseg'] / many['ctseg']:.2f}x "
                 f"(of {many['threads']})", "-", "-"))
    ct_kib, pt_kib, _ = rss
    rows.append(("unet2d infer peak RSS", f"{ct_kib / 1024:.0f} MiB", f"{pt_kib / 1024:.0f} MiB",
                 f"{pt_kib / ct_kib:.2f}x less", "-", "-"))
    T = max(allocs)
    per_pass, arena = allocs[T]
    rows.append((f"unet2d fwd heap allocations ({T} threads)", f"{per_pass:g} per pass", "-",
                 f"arena {arena / 2**20:.1f} MiB", "-", "-"))
    return rows


HEADER = ("case", "ctseg median", "PyTorch median", "ratio (speed-up)", "ctseg GFLOP/s", "% of FMA peak")


def text_table(rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(HEADER), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def md_table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join([":---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def rounds_table(results, peak1, peakT):
    """Each case's per-round medians, and the spread of its % of the FMA peak."""
    def ms(ts):
        return ", ".join(f"{1e3 * t:.1f}" for t in ts)
    lines = ["| case | ctseg per-round medians (ms) | PyTorch per-round medians (ms) | ctseg % of FMA peak, per round |",
             "|:---|:---|:---|:---|"]
    for r in results:
        pct = [percent_of_peak(r, t, peak1, peakT) for t in r["ctseg_rounds"]]
        lo, hi = f"{min(pct):.0f}", f"{max(pct):.0f}"
        lines.append(f"| {r['case']} | {ms(r['ctseg_rounds'])} | {ms(r['torch_rounds']) if r['torch_rounds'] else '-'} "
                     f"| {lo if lo == hi else lo + '-' + hi}% |")
    return "\n".join(lines)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_chart(results, peak1, peakT):
    """Two horizontal bar panels: speed-up over PyTorch, and % of the FMA peak."""
    timed = [r for r in results if r["torch"] is not None]
    W, label_w, bar_h, gap, top = 760, 220, 22, 10, 40
    plot_w = W - label_w - 90

    def panel(y0, title, items, vmax, ref_line, unit):
        parts = [f'<text x="10" y="{y0 + 16}" font-size="15" font-weight="bold">{esc(title)}</text>']
        y = y0 + 28
        scale = plot_w / vmax
        for label, v, color in items:
            w = max(1.0, v * scale)
            parts.append(f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" font-size="12" '
                         f'text-anchor="end">{esc(label)}</text>')
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="12">'
                         f'{v:.2f}{unit}</text>' if unit == "x" else
                         f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="12">{v:.0f}{unit}</text>')
            y += bar_h + gap
        if ref_line is not None:
            x = label_w + ref_line * scale
            parts.append(f'<line x1="{x:.1f}" y1="{y0 + 22}" x2="{x:.1f}" y2="{y - gap + 4}" stroke="#333" '
                         f'stroke-dasharray="4,3"/>')
            parts.append(f'<text x="{x + 3:.1f}" y="{y + 8}" font-size="11" fill="#333">'
                         f'{"PyTorch = 1" if unit == "x" else "peak"}</text>')
        return parts, y + 14

    speed = [(r["case"], r["torch"] / r["ctseg"], "#2b7bb9" if r["torch"] >= r["ctseg"] else "#d9534f") for r in timed]
    effic = [(r["case"], percent_of_peak(r, r["ctseg"], peak1, peakT), "#5cb85c")
             for r in results]
    p1, y = panel(top, "Speed-up of ctseg over PyTorch (time ratio, higher is better)", speed,
                  max(1.2, max(v for _, v, _ in speed) * 1.15), 1.0, "x")
    p2, y = panel(y + 10, "ctseg GFLOP/s as % of the measured FMA peak", effic, 100.0 * 1.12, 100.0, "%")
    H = y + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="10" y="22" font-size="17" font-weight="bold">ctseg vs PyTorch on this machine '
           f'(FMA peak {peak1:.0f} / {peakT:.0f} GFLOP/s, 1 / T threads)</text>']
    out += p1 + p2 + ["</svg>"]
    return "\n".join(out) + "\n"


def atomic_write(path, text):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def machine_info(build):
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            fl = next((ln for ln in f if ln.startswith("flags")), "").split()
        flags = ", ".join(x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if x in fl)
    except OSError:
        pass
    try:
        gxx = subprocess.run(["g++", "--version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        gxx = "?"
    return dict(cpu=cpu, cores=os.cpu_count(), flags=flags, gxx=gxx, torch=torch.__version__,
                python=platform.python_version(), kernel=platform.release())


def markdown(rows, results, peak1, peakT, rss, allocs, info, cmd, svg_name, cfg):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    T = cfg["threads"]
    return f"""# Performance

Generated by `bench/performance.py` on {now}. The numbers below were measured
in one run on the machine described here; rerun the command on your machine
for numbers that apply to it.

![ctseg vs PyTorch]({svg_name})

{md_table(rows)}

- **ctseg median / PyTorch median**: median over {cfg['rounds']} rounds of each
  side's per-round median of {cfg['runs']} timed runs (training: {cfg['train_runs']}
  runs). Rounds alternate A (ctseg example `bench` command) and B (the same
  network from `tests/torch/reference_nets.py` in PyTorch, {T} thread(s)), so
  drifts in machine load fall on both sides.
- **ratio (speed-up)**: PyTorch time / ctseg time; above 1 means ctseg is faster.
  For the RSS row: PyTorch peak RSS / ctseg peak RSS.
- **ctseg GFLOP/s**: FLOPs = 2 x multiply-adds of the convolutions and
  transposed convolutions (training step: 3 x the forward pass).
- **% of FMA peak**: ctseg GFLOP/s over the FMA peak measured by
  `bench/fma_peak` in the same run: {peak1:.1f} GFLOP/s on 1 thread,
  {peakT:.1f} GFLOP/s on {T} threads (the 1-thread row uses the 1-thread peak).
- **thread scaling**: ctseg only, unet2d/bench forward, 1 thread vs {T}
  threads, interleaved. Scaling to 16 cores, against PyTorch, is in
  [thread-scaling.md](thread-scaling.md) (`bench/thread_scaling.sh`).
- **peak RSS**: `ru_maxrss` of `build/examples/unet2d infer --variant bench` on a
  random {tuple(rss[2])} input with weights from `unet2d init`; the PyTorch figure
  is a whole `python3` process (interpreter + torch) doing the same forward pass.
- **heap allocations**: `bench/forward_allocations` counts calls of the global
  `operator new` (through which every standard container allocates) during 5
  unet2d/bench forward passes after a first one:
  {"; ".join(f"{a:g} per pass with {t} thread{'s' if t > 1 else ''}" for t, (a, b) in sorted(allocs.items()))}. Each pass
  runs in one arena, leased from the network's pool and kept for the next
  pass: the planned values (`Bound::workspace_bytes`), then the kernels'
  working memory, one slot per thread; the whole arena is
  {" and ".join(f"{b / 2**20:.1f} MiB with {t} thread{'s' if t > 1 else ''}" for t, (a, b) in sorted(allocs.items()))}
  (`network::arena_bytes`). oneTBB's task objects come from its own
  per-thread pools and are not counted.

## Rounds

The same run round by round. A case's row in the table above is the median of
these; the spread shows how much the machine's load moved during the run.

{rounds_table(results, peak1, peakT)}

## Cases

| case | network | input | mode |
|:---|:---|:---|:---|
| unet2d fwd x1 | unet2d/bench (width 32, depth 4, padded) | 1x1x256x256 | forward, eval |
| unet2d train x4 | unet2d/bench | 4x1x256x256 | forward + dice_ce + backward + SGD |
| unet3d fwd x1 | unet3d/bench (width 16, depth 3, padded) | 1x1x64x64x64 | forward, eval |

## Machine

- CPU: {info['cpu']} ({info['cores']} logical cores; {info['flags']})
- Compiler: {info['gxx']}, `-O3 -march=native` (meson release build of the examples)
- PyTorch: {info['torch']} (Python {info['python']})
- Kernel: Linux {info['kernel']}

## Reproduce

```sh
{cmd}
```

It builds `bench/fma_peak` and the examples (`meson compile -C BUILD ...`),
runs every case and rewrites this file and `{svg_name}`. `--quick` takes fewer
runs and rounds. Kernel-level numbers come from the Google Benchmark
micro-benchmarks (`bench/micro/kernels.cpp`, built when `libbenchmark-dev` is
installed): `meson test -C build --benchmark --suite micro`.
"""


# ---------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="meson build directory")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    ap.add_argument("--quick", action="store_true", help="fewer runs and rounds")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="T (default: all cores)")
    ap.add_argument("--no-build", action="store_true", help="do not run meson compile first")
    args = ap.parse_args(argv)
    build = os.path.abspath(args.build)
    T = max(1, args.threads)
    cfg = dict(threads=T, runs=3 if args.quick else 10, rounds=2 if args.quick else 3,
               train_runs=2 if args.quick else 3, runs3d=2 if args.quick else 5)
    if not args.no_build:
        build_targets(build)

    torch.set_num_threads(T)
    peak1, peakT = fma_peak(build, T)
    log(f"FMA peak: {peak1:.1f} GFLOP/s (1 thread), {peakT:.1f} GFLOP/s ({T} threads)")

    results = [
        ab_case("unet2d fwd x1", build, "unet2d", "bench", 1, False, T, cfg["runs"], cfg["rounds"]),
        ab_case("unet2d train x4", build, "unet2d", "bench", 4, True, T, cfg["train_runs"], cfg["rounds"]),
        ab_case("unet3d fwd x1", build, "unet3d", "bench", 1, False, T, cfg["runs3d"], cfg["rounds"]),
    ]
    results += scaling_case(build, T, cfg["runs"], cfg["rounds"])
    rss = rss_case(build, T)
    allocs = allocation_case(build, T)
    # A second peak probe after the load: keep the higher (clock boost and noise).
    p1b, pTb = fma_peak(build, T)
    peak1, peakT = max(peak1, p1b), max(peakT, pTb)

    rows = table_rows(results, peak1, peakT, rss, allocs)
    print()
    print(text_table(rows))
    print(f"\nFMA peak: {peak1:.1f} GFLOP/s (1 thread), {peakT:.1f} GFLOP/s ({T} threads)")

    out = os.path.abspath(args.out)
    svg_path = os.path.splitext(out)[0] + ".svg"
    rel_build = os.path.relpath(build, ROOT)
    cmd = "/usr/bin/python3 bench/performance.py --build " + shlex.quote(rel_build)
    if os.path.abspath(args.out) != os.path.join(ROOT, "docs", "performance.md"):
        cmd += " --out " + shlex.quote(os.path.relpath(out, ROOT))
    if args.threads != (os.cpu_count() or 1):
        cmd += f" --threads {T}"
    if args.quick:
        cmd += " --quick"
    atomic_write(svg_path, svg_chart(results, peak1, peakT))
    atomic_write(out, markdown(rows, results, peak1, peakT, rss, allocs, machine_info(build), cmd,
                               os.path.basename(svg_path), cfg))
    log(f"wrote {out} and {svg_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
