#!/usr/bin/env python3
"""Lists the public headers: every .hpp under INCLUDE_DIR/ctseg, as the paths
that follow #include (ctseg/...), sorted, one a line.

  list_headers.py INCLUDE_DIR                 print the list
  list_headers.py INCLUDE_DIR --expect H...   exit 1 unless the list is H...
                                              (the list the build was configured with)
"""
import sys
from pathlib import Path


def headers(include_dir):
    root = Path(include_dir)
    return sorted(p.relative_to(root).as_posix() for p in (root / 'ctseg').rglob('*.hpp') if p.is_file())


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = headers(argv[1])
    if len(argv) == 2:
        print('\n'.join(found))
        return 0 if found else 1
    if argv[2] != '--expect':
        print(__doc__, file=sys.stderr)
        return 2
    expected = set(argv[3:])
    added = sorted(set(found) - expected)
    removed = sorted(expected - set(found))
    for h in added:
        print(f'new header not yet checked: {h}')
    for h in removed:
        print(f'header gone since configuration: {h}')
    if added or removed:
        print('the header list changed since the build was configured: reconfigure (meson setup --reconfigure BUILDDIR SOURCEDIR)')
        return 1
    print(f'{len(found)} headers, all checked')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
