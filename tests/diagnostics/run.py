#!/usr/bin/env python3
"""Compile one diagnostics snippet and check what the compiler says about it.

    run.py --cxx g++ --include include --snippet tests/diagnostics/concat_valid_unet_without_crop.cpp
    run.py --cxx ccache clang++ --include include --snippet FILE -- -std=c++20 -Wall

Everything after `--` is passed to the compiler; -std=c++20 is added unless a
-std= flag is given there, and -fsyntax-only always is.

A snippet states what it expects in `//` comment lines at its top:

    // expect: ctseg: concat: branches differ in spatial size
    // expect-path: net/seq[1]
    // expect-facts: shape<64, 568, 568> | shape<64, 560, 560>

or, for a positive control, `// expect: compiles`.

For a failing snippet the compilation must fail with exactly one `error:` line,
that line must be the static_assert carrying the `expect:` message (so no
unrelated error comes before it and none cascades after it), the layer path must
be inside the diag::check<...> condition the compiler prints, and every fact
(`|`-separated; several expect-facts lines add up) must appear in that condition
(or, for a static_assert without one, anywhere in the output). clang spells the
path as characters, path<'n', 'e', 't'>; it is read back as path<"net"> before
matching. A control must compile without any error.

Exit status 0 when every expectation holds, 1 otherwise (with the relevant
compiler lines), 2 for a snippet or command line that cannot be used.
"""

import argparse
import os
import re
import subprocess
import sys

DIRECTIVE = re.compile(r"^//\s*(expect(?:-[a-z]+)?)\s*:\s*(.*?)\s*$")
ERROR_LINE = re.compile(r"(?:^|: )(?:fatal )?error: ")
CHAR_PATH = re.compile(r"path<((?:'(?:\\.|[^'\\])+'(?:, )?)*)>")
CHAR = re.compile(r"'(\\.|[^'\\]+)'")
MAX_SHOWN = 40


class Expectations:
    def __init__(self):
        self.message = None      # the static_assert message, or None for a control
        self.compiles = False
        self.path = None
        self.facts = []


def read_expectations(path):
    exp = Expectations()
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("//"):
                break  # the header comment ends at the first line of code
            m = DIRECTIVE.match(stripped)
            if not m:
                continue
            key, value = m.group(1), m.group(2)
            if key == "expect":
                if value == "compiles":
                    exp.compiles = True
                else:
                    exp.message = value
            elif key == "expect-path":
                exp.path = value
            elif key == "expect-facts":
                exp.facts += [v.strip() for v in value.split("|") if v.strip()]
            else:
                raise ValueError(f"unknown directive '{key}'")
    if exp.compiles == (exp.message is not None):
        raise ValueError("give exactly one of '// expect: compiles' and '// expect: ctseg: ...'")
    if exp.compiles and (exp.path or exp.facts):
        raise ValueError("a control that compiles takes no expect-path or expect-facts")
    if exp.message is not None and not exp.message.startswith("ctseg:"):
        raise ValueError("an expected message starts with 'ctseg:'")
    return exp


def spell_paths(text):
    """clang's path<'n', 'e', 't'> read back as path<"net">."""
    def word(m):
        chars = []
        for c in CHAR.findall(m.group(1)):
            if len(c) == 2 and c[0] == "\\":
                c = {"n": "\n", "t": "\t", "0": "\0"}.get(c[1], c[1])
            chars.append(c)
        return 'path<"' + "".join(chars) + '">'
    return CHAR_PATH.sub(word, text)


def show(title, lines, width=400):
    print(title)
    for line in lines[:MAX_SHOWN]:
        print("    " + (line if len(line) <= width else line[:width] + " [...]"))
    if len(lines) > MAX_SHOWN:
        print(f"    ... {len(lines) - MAX_SHOWN} more lines")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cxx", metavar="COMMAND", help="the compiler command; every word up to the next option (e.g. ccache g++)")
    ap.add_argument("--include", required=True, help="the directory holding ctseg/")
    ap.add_argument("--snippet", required=True)
    ap.add_argument("--verbose", action="store_true", help="print the compiler output even when the snippet passes")
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    # --cxx takes every word up to the next option of ours, so that a compiler
    # command with flags of its own (meson's cmd_array()) passes whole.
    cxx = []
    if "--cxx" in argv:
        first = argv.index("--cxx")
        last = first + 1
        while last < len(argv) and argv[last] not in ("--cxx", "--include", "--snippet", "--verbose"):
            last += 1
        cxx, argv = argv[first + 1:last], argv[:first] + argv[last:]
    if not cxx:
        ap.error("--cxx needs the compiler command")
    args = ap.parse_args(argv)

    name = os.path.basename(args.snippet)
    try:
        exp = read_expectations(args.snippet)
    except (OSError, ValueError) as e:
        print(f"{name}: {e}")
        return 2

    flags = list(extra)
    if not any(f.startswith("-std=") for f in flags):
        flags.insert(0, "-std=c++20")
    cmd = cxx + flags + ["-fsyntax-only", "-fdiagnostics-color=never", "-I", args.include, args.snippet]
    # The C locale keeps the compilers' quotes plain ASCII.
    env = dict(os.environ, LC_ALL="C", LANG="C", LANGUAGE="")
    env.pop("GCC_COLORS", None)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                              errors="replace", timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"{name}: cannot run {' '.join(cmd)}: {e}")
        return 2
    output = proc.stdout
    lines = output.splitlines()
    readable = [spell_paths(l) for l in lines]
    errors = [i for i, l in enumerate(lines) if ERROR_LINE.search(l)]
    problems = []

    if exp.compiles:
        if proc.returncode != 0 or errors:
            problems.append(f"expected to compile, but the compiler exited with {proc.returncode}")
    else:
        if proc.returncode == 0:
            problems.append("expected a compile error, but the snippet compiled")
        if len(errors) != 1:
            problems.append(f"expected exactly one 'error:' line, found {len(errors)}")
        if errors:
            first = readable[errors[0]]
            if "static assert" not in first and "static_assert" not in first:
                problems.append("the first error is not a static_assert")
            if exp.message not in first:
                problems.append(f"the first error does not carry the message '{exp.message}'")
            # The condition: gcc prints it in a note after the error, clang on the error line.
            check = None
            if "check<false" in first:
                check = first
            else:
                for l in readable[errors[0] + 1:]:
                    if "check<false" in l and "evaluates to false" in l:
                        check = l
                        break
            if exp.path is not None:
                if check is None:
                    problems.append("no diag::check<false, ...> condition in the output")
                elif f'"{exp.path}"' not in check:
                    problems.append(f"the condition does not name the layer path \"{exp.path}\"")
            where = check if check is not None else "\n".join(readable)
            for fact in exp.facts:
                if fact not in where:
                    problems.append(f"'{fact}' is not in the {'condition' if check is not None else 'output'}")

    if problems:
        print(f"FAIL {name} with {' '.join(cxx)}")
        for p in problems:
            print(f"  - {p}")
        if exp.message:
            print(f"  expected message: {exp.message}")
            if exp.path:
                print(f"  expected path:    {exp.path}")
            if exp.facts:
                print(f"  expected facts:   {' | '.join(exp.facts)}")
        print(f"  command: {' '.join(cmd)}")
        # The error lines, the conditions, and where the snippet's own code led there.
        snippet = os.path.basename(args.snippet)
        relevant = [l for i, l in enumerate(readable)
                    if i in errors or ("check<false" in l and "evaluates to false" in l)
                    or (snippet in l and ("required from here" in l or "requested here" in l))]
        show("  relevant compiler lines:", relevant or readable)
        return 1
    if args.verbose:
        print("\n".join(readable))
    print(f"ok {name} with {' '.join(cxx)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
