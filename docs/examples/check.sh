#!/usr/bin/env bash
# Checks the code of the documentation:
#  1. every docs/examples/*.cpp compiles (g++ -std=c++20 -Iinclude -fsyntax-only);
#  2. quickstart, names and network are built and run (names' output must be
#     the one docs/dsl.md shows);
#  3. every ```cpp block of docs/*.md is quoted verbatim: from docs/examples/
#     (dsl.md), from include/ctseg/nets/ (networks.md), or from the added lines
#     of add_layer/avg_pool.patch and the files of add_layer/ (architecture.md);
#  4. the summary tables of docs/networks.md are what build/examples/NAME
#     summary prints (the build directory: $CTSEG_BUILD_DIR, default build);
#  5. add_layer/avg_pool.patch applies to a copy of include/, its tests build
#     and pass, and its diagnostics snippets fail as they announce.
# Run from anywhere: docs/examples/check.sh. Needs g++, oneTBB, Boost.Test,
# python3 and patch. Exit status 0 when everything holds.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
cxx=${CXX:-g++}
work=$(mktemp -d "${TMPDIR:-/tmp}/ctseg-docs-check.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

echo "== 1. syntax of docs/examples/*.cpp"
for f in docs/examples/*.cpp; do
    "$cxx" -std=c++20 -Iinclude -fsyntax-only "$f" || fail "$f does not compile"
done

echo "== 2. running quickstart, names, network"
for name in quickstart names network training; do
    "$cxx" -std=c++20 -O1 -Iinclude "docs/examples/$name.cpp" -o "$work/$name" -ltbb -pthread || { fail "$name does not build"; continue; }
done
[ -x "$work/quickstart" ] && { "$work/quickstart" || fail "quickstart exited $?"; }
[ -x "$work/training" ] && { (cd "$work" && ./training >/dev/null 2>&1) || fail "training exited $?"; }
if [ -x "$work/names" ]; then
    "$work/names" >"$work/names.out" || fail "names exited $?"
    python3 - "$work/names.out" docs/dsl.md <<'PY' || fail "docs/dsl.md does not show the output of names"
import sys
out, doc = open(sys.argv[1]).read(), open(sys.argv[2]).read()
sys.exit(0 if "```text\n" + out + "```" in doc else 1)
PY
fi
[ -x "$work/network" ] && { "$work/network" "$work" || fail "network exited $?"; }

echo "== 3. code blocks quoted verbatim"
python3 - <<'PY' || fail "a code block of the docs is not quoted verbatim"
import glob, re, sys

def read(paths):
    return "\n".join(open(p).read() for p in paths)

patch_added = "\n".join(line[1:] for line in open("docs/examples/add_layer/avg_pool.patch").read().split("\n")
                        if line.startswith("+") and not line.startswith("+++"))
sources = {
    "docs/dsl.md": read(sorted(glob.glob("docs/examples/*.cpp"))),
    "docs/training.md": read(sorted(glob.glob("docs/examples/*.cpp"))),
    "docs/networks.md": read(sorted(glob.glob("include/ctseg/nets/*.hpp")) + sorted(glob.glob("examples/*/main.cpp"))),
    "docs/architecture.md": patch_added + "\n" + read(sorted(glob.glob("docs/examples/add_layer/*.cpp"))
                                                      + sorted(glob.glob("docs/examples/*.cpp"))),
}
bad = 0
for doc, source in sources.items():
    text = open(doc).read()
    blocks = re.findall(r"```cpp\n(.*?)```", text, re.S)
    for b in blocks:
        if b not in source:
            bad += 1
            print(f"{doc}: not found verbatim:\n{b}", file=sys.stderr)
    print(f"{doc}: {len(blocks)} cpp blocks")
sys.exit(1 if bad else 0)
PY

echo "== 4. summaries in docs/networks.md against build/examples"
CTSEG_BUILD_DIR=${CTSEG_BUILD_DIR:-build} python3 - <<'PY' || fail "a summary in docs/networks.md differs from the program's output (regenerate it)"
import os, re, subprocess, sys
text = open("docs/networks.md").read()
bad = checked = 0
build = os.environ["CTSEG_BUILD_DIR"]
for cmd, block in re.findall(r"<!-- output of: (.*?) -->\n```text\n(.*?)```", text, re.S):
    cmd = re.sub(r"^build/", build + "/", cmd)
    exe = cmd.split()[0]
    if not os.access(exe, os.X_OK):
        print(f"skipped (not built): {cmd}")
        continue
    out = subprocess.run(cmd.split(), capture_output=True, text=True, check=True).stdout
    # Lines starting with "[..." stand for rows left out; the parts between them
    # must appear in the output in order.
    at = 0
    for part in re.split(r"^\[\.\.\..*\n", block, flags=re.M):
        i = out.find(part, at)
        if i < 0:
            bad += 1
            print(f"differs: {cmd}", file=sys.stderr)
            break
        at = i + len(part)
    checked += 1
print(f"docs/networks.md: {checked} summaries checked")
sys.exit(1 if bad else 0)
PY

echo "== 5. add_layer/avg_pool.patch"
mkdir -p "$work/tree" && cp -r include "$work/tree/"
if patch -s -p1 -d "$work/tree" <docs/examples/add_layer/avg_pool.patch; then
    inc="$work/tree/include"
    if "$cxx" -std=c++20 -O1 -Wall -Wextra -Wpedantic -Werror -DBOOST_TEST_DYN_LINK -I"$inc" -Itests/exec \
        docs/examples/add_layer/test_avg_pool.cpp -o "$work/test_avg_pool" -ltbb -lboost_unit_test_framework -pthread; then
        "$work/test_avg_pool" || fail "test_avg_pool failed"
    else
        fail "test_avg_pool does not build"
    fi
    if "$cxx" -std=c++20 -O1 -I"$inc" -Iexamples docs/examples/add_layer/example_main.cpp -o "$work/pooled" -ltbb -pthread; then
        "$work/pooled" summary --variant small >/dev/null || fail "the pooled example does not run"
    else
        fail "add_layer/example_main.cpp does not build"
    fi
    for snippet in docs/examples/add_layer/avg_pool_missing_kernel.cpp docs/examples/add_layer/avg_pool_padding.cpp; do
        python3 tests/diagnostics/run.py --cxx "$cxx" --include "$inc" --snippet "$snippet" || fail "$snippet"
    done
else
    fail "avg_pool.patch no longer applies to include/ (regenerate it)"
fi

[ $failed -eq 0 ] && echo "all documentation checks passed"
exit $failed
