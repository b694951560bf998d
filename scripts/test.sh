#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (PyTorch included, for the
# equivalence tests), builds with warnings as errors and runs every test suite.
# Ends with one line "N passed, N failed" counted from meson's test log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --with-torch || exit 1
build=${CTSEG_TEST_BUILD:-build-test}
if [ ! -f $build/build.ninja ]; then
  meson setup $build --buildtype=release -Dwerror=true -Dtorch_tests=enabled || { echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C $build || { echo "0 passed, 1 failed"; exit 1; }
meson test -C $build --print-errorlogs --num-processes 2
status=$?
/usr/bin/python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
