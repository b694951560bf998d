#!/usr/bin/env bash
# Thread scaling of the unet2d and unet3d `bench` variants, ctseg and PyTorch
# side by side, on every thread count up to the machine's cores; prints a
# Markdown table. Used for docs/thread-scaling.md on a 16-core machine:
#
#   bench/thread_scaling.sh BIN_DIR [THREADS...]
#
# BIN_DIR holds the unet2d and unet3d example programs (build/examples);
# PyTorch runs tests/torch/reference_nets.py through bench/bench_forward.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$1; shift
threads=("$@")
[ ${#threads[@]} -gt 0 ] || threads=(1 2 4 8 16)
python=${PYTHON:-python3}
median() { "$@" | awk '/^median_s/ { print $2 }'; }
torch_median() {
  OPENBLAS_NUM_THREADS=1 "$python" "$root/bench/bench_forward.py" "$@" --rounds 1 2>/dev/null |
    awk '/pytorch median/ { print $NF == "s" ? $(NF - 1) : $NF }' | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; torch $("$python" -c 'import torch; print(torch.__version__)')"
echo
echo "| case | threads | ctseg s | PyTorch s | speed-up vs PyTorch | ctseg scaling vs 1 thread |"
echo "|:---|---:|---:|---:|---:|---:|"
for case in "unet2d fwd" "unet3d fwd" "unet2d train"; do
  set -- $case
  net=$1 mode=$2 one=""
  for t in "${threads[@]}"; do
    if [ "$mode" = train ]; then
      c=$(median "$bin/$net" bench --variant bench --batch 4 --train --threads "$t" --runs 3)
      p=$(torch_median --name "$net" --variant bench --batch 4 --train --runs 3 --threads "$t")
    else
      runs=10; [ "$net" = unet3d ] && runs=3
      c=$(median "$bin/$net" bench --variant bench --threads "$t" --runs $runs)
      p=$(torch_median --name "$net" --variant bench --runs $runs --threads "$t")
    fi
    [ -n "$one" ] || one=$c
    awk -v n="$net $mode" -v t="$t" -v c="$c" -v p="$p" -v o="$one" \
      'BEGIN { printf "| %s | %d | %.4f | %s | %s | %.2fx |\n", n, t, c, p == "" ? "-" : sprintf("%.4f", p), p == "" ? "-" : sprintf("%.2fx", p / c), o / c }'
  done
done
