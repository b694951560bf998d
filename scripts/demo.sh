#!/usr/bin/env bash
# The main job: sets everything up on a fresh Debian 12 machine, builds the
# U-Net example, prints the paper network's compile-time summary and segments
# a synthetic 572x572 tile with freshly initialised weights.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --demo
build=build-demo
[ -f $build/build.ninja ] || meson setup $build --buildtype=release -Dtests=false >/dev/null
echo "== building the unet2d example"
time meson compile -C $build unet2d
exe=$build/examples/unet2d
out=$build/demo
mkdir -p $out
echo "== compile-time summary of the paper U-Net (572x572 tile)"
$exe summary --variant paper
echo "== weights as PyTorch would initialise them, and a synthetic cell image"
$exe init --variant paper --seed 1 --output $out/weights.safetensors
/usr/bin/python3 - "$out/input.npy" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(0)
y, x = np.mgrid[0:572, 0:572]
img = np.zeros((572, 572), np.float32)
for _ in range(40):  # bright blobs on a noisy background, like stained cells
    cy, cx, r = rng.uniform(0, 572), rng.uniform(0, 572), rng.uniform(10, 30)
    img += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r)).astype(np.float32)
img += rng.normal(0, 0.05, img.shape).astype(np.float32)
np.save(sys.argv[1], img[None, None])
PY
echo "== segmenting"
$exe infer --variant paper --weights $out/weights.safetensors --input $out/input.npy --output $out/logits.npy
/usr/bin/python3 - "$out/logits.npy" <<'PY'
import sys, numpy as np
y = np.load(sys.argv[1])
labels = y.argmax(1)
print(f"logits {y.shape} {y.dtype}; class fractions: " +
      ", ".join(f"{c}: {np.mean(labels == c):.3f}" for c in range(y.shape[1])))
PY
