"""Every ```cpp block of the page (argv[1]) appears verbatim in the example (argv[2])."""
import re
import sys

page, example = open(sys.argv[1]).read(), open(sys.argv[2]).read()
blocks = re.findall(r"```cpp\n(.*?)```", page, re.S)
missing = [b for b in blocks if b not in example]
for b in missing:
    print(f"{sys.argv[1]}: not found verbatim in {sys.argv[2]}:\n{b}", file=sys.stderr)
print(f"{len(blocks)} cpp blocks, {len(missing)} not quoted verbatim")
sys.exit(1 if missing or not blocks else 0)
