"""Checks that docs/data-io.md (argv[1]) quotes the worked example (argv[2]):
each ```cpp block of the page must be a verbatim part of the example file."""
import re
import sys

doc_path, example_path = sys.argv[1], sys.argv[2]
with open(doc_path) as f:
    doc = f.read()
with open(example_path) as f:
    example = f.read()
blocks = re.findall(r"^```cpp\n(.*?)^```", doc, re.S | re.M)
if not blocks:
    sys.exit(f"{doc_path}: no ```cpp blocks")
stale = [b for b in blocks if b not in example]
for b in stale:
    print(f"{doc_path}: this block is not in {example_path}:\n{b}")
print(f"{len(blocks)} blocks, {len(stale)} not in the example")
sys.exit(1 if stale else 0)
