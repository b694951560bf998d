#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: installs what is needed (with the
# MNI "ch2" brain MRI of the mricron-data package), builds the ctseg command,
# trains a 2D U-Net (width 8, depth 3) to find the brain on the axial slices
# of ch2.nii.gz whose index is not a multiple of 4 (the truth: ch2bet.nii.gz
# > 0, the same volume with everything but the brain removed), segments the
# held-out slices (index a multiple of 4), and prints their Dice over all
# their voxels. Writes pictures of the masks and the training curves.
# Deterministic: the same seed gives the same weights and the same Dice.
# CTSEG_DEMO_BUILD=DIR builds in DIR instead of build-demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --demo
build=${CTSEG_DEMO_BUILD:-build-demo}
[ -f $build/build.ninja ] || meson setup $build --buildtype=release -Dtests=false >/dev/null
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "== building the ctseg command"
t0=$(now)
meson compile -C $build ctseg >/dev/null
compile_s=$(seconds "$t0" "$(now)")
echo "built $build/tools/ctseg in $compile_s s"
ctseg=$build/tools/ctseg
templates=/usr/share/mricron/templates
out=$build/demo
rm -rf "$out"   # a fresh run (an existing run directory would be resumed)
mkdir -p "$out"

echo "== the data: a T1-weighted MRI volume (axis 0 = NIfTI z, axial) and its brain-extracted version"
$ctseg info $templates/ch2.nii.gz $templates/ch2bet.nii.gz

echo "== training on the slices z = 1, 2, 3, 5, 6, 7, ... (validation curve on the held-out slices z = 0, 4, 8, ...)"
t0=$(now)
$ctseg train --net unet2d --variant brain \
  --images $templates/ch2.nii.gz --labels $templates/ch2bet.nii.gz --label-map 1-255=1 \
  --slices not-every:4 --val-slices every:4 \
  --epochs 120 --batch 8 --lr 0.003 --seed 1 --out "$out/run"
train_s=$(seconds "$t0" "$(now)")

echo "== segmenting the held-out slices"
t0=$(now)
$ctseg segment --weights "$out/run/last.safetensors" --input $templates/ch2.nii.gz \
  --slices every:4 --output "$out/ch2_brain.nii.gz" --overlay "$out/pictures"
infer_s=$(seconds "$t0" "$(now)")

echo "== scoring them against ch2bet > 0"
$ctseg evaluate --pred "$out/ch2_brain.nii.gz" --truth $templates/ch2bet.nii.gz --label-map 1-255=1 \
  --slices every:4 --json "$out/scores.json" | tee "$out/scores.txt"
dice=$(awk '$1 == "1" && NF == 6 { print $4 }' "$out/scores.txt")

cat <<EOF
== summary
held-out brain Dice: $dice (46 axial slices, z a multiple of 4, all their voxels)
training: $train_s s (120 epochs); segmentation of the held-out slices: $infer_s s; building ctseg: $compile_s s
mask:     $out/ch2_brain.nii.gz (NIfTI, spacing and orientation of ch2.nii.gz)
pictures: $out/pictures/ch2_z*.png (mask over the image, one per held-out slice)
curves:   $out/run/curves.svg (loss and validation Dice per epoch; numbers in $out/run/metrics.csv)
EOF
