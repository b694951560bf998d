#!/usr/bin/env python3
"""Every ```cpp block of DOC appears verbatim in SOURCE.

  check_doc.py DOC SOURCE
"""
import re
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    doc, source = open(argv[1]).read(), open(argv[2]).read()
    blocks = re.findall(r"```cpp\n(.*?)```", doc, re.S)
    missing = [b for b in blocks if b not in source]
    for b in missing:
        print(f"{argv[1]}: not found verbatim in {argv[2]}:\n{b}", file=sys.stderr)
    print(f"{argv[1]}: {len(blocks)} cpp blocks, {len(missing)} missing")
    return 1 if missing or not blocks else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
