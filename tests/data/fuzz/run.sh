#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the image readers with clang++-14
# (-fsanitize=fuzzer,address,undefined) and runs each for a while.
#
#   tests/data/fuzz/run.sh [seconds per reader, default 60] [png tiff nifti npy]
#
# Inputs found to crash, leak, time out or run out of memory land in
# $CTSEG_FUZZ_OUT/artifacts/<format>/ (default build-fuzz/ in the repository);
# copy each into regressions/<format>/ once the bug is fixed: the 'data io bad
# files' test reads every file there. The corpus grows in
# $CTSEG_FUZZ_OUT/corpus/<format>/, seeded from regressions/<format>/.
# Needs clang-14 and libclang-rt-14-dev (libFuzzer) besides ctseg's libraries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
seconds=${1:-60}
shift || true
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(png tiff nifti npy)
out=${CTSEG_FUZZ_OUT:-$root/build-fuzz}
cxx=${CXX_FUZZ:-clang++-14}
mkdir -p "$out"

flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/include" -I"$here" -isystem /usr/include/nifti $(pkg-config --cflags libpng libtiff-4 zlib))
libs=($(pkg-config --libs libpng libtiff-4 zlib) -lniftiio -lznz -lm)

status=0
for f in "${formats[@]}"; do
  echo "== $f: building"
  "$cxx" "${flags[@]}" "$here/${f}_fuzz.cpp" -o "$out/${f}_fuzz" "${libs[@]}"
  mkdir -p "$out/corpus/$f" "$out/artifacts/$f"
  echo "== $f: fuzzing for ${seconds}s"
  if ! "$out/${f}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$out/artifacts/$f/" "$out/corpus/$f" "$here/regressions/$f" 2>"$out/$f.log"; then
    status=1
    echo "== $f: FAILED, see $out/$f.log and $out/artifacts/$f/"
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE" "$out/$f.log" || true
done
exit $status
