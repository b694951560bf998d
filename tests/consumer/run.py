#!/usr/bin/env python3
"""Builds and runs the outside project in tests/consumer/project against ctseg.

  run.py SOURCE_ROOT SCRATCH [--mode both|subproject|installed] [--meson CMD] [--cxx CMD]

subproject: copies the project to SCRATCH/subproject/src, links SOURCE_ROOT as
            its subprojects/ctseg and builds it with dependency('ctseg')
            resolved by the subproject fallback (meson.override_dependency).
installed:  installs ctseg (headers and ctseg.pc) into SCRATCH/installed/prefix,
            checks what was installed and what pkg-config reports, then builds
            the project with dependency('ctseg') found through PKG_CONFIG_PATH.

Both build the program and run it; it checks its own output and exits 0 when
everything holds. Exit status: 0 when every step passed.
"""
import argparse
import filecmp
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE / 'project'


class Failure(Exception):
    pass


def run(cmd, env=None, capture=False):
    print('+', shlex.join(str(c) for c in cmd), flush=True)
    r = subprocess.run([str(c) for c in cmd], env=env, text=True,
                       stdout=subprocess.PIPE if capture else None)
    if r.returncode != 0:
        raise Failure(f'command failed with exit status {r.returncode}: {shlex.join(str(c) for c in cmd)}')
    return r.stdout if capture else None


def check(ok, what):
    if not ok:
        raise Failure(what)
    print(f'ok: {what}', flush=True)


def fresh(path):
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def copy_project(dest):
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns('subprojects', 'build*', '__pycache__'))


def subprojects_of(meson, build):
    info = json.loads(run(meson + ['introspect', '--projectinfo', build], capture=True))
    return {s['name'] for s in info.get('subprojects', [])}


def build_and_run(meson, src, build, setup_args, env):
    run(meson + ['setup', build, src] + setup_args, env=env)
    run(meson + ['compile', '-C', build], env=env)
    out = run([build / 'consumer'], env=env, capture=True)
    print(out, end='', flush=True)
    check(out.rstrip().endswith('OK'), 'the consumer program reports OK')


def mode_subproject(args, meson, env):
    work = fresh(args.scratch / 'subproject')
    src = work / 'src'
    copy_project(src)
    (src / 'subprojects').mkdir()
    os.symlink(args.source_root, src / 'subprojects' / 'ctseg', target_is_directory=True)
    build = work / 'build'
    # Forced fallback: an installed ctseg.pc on this machine must not be picked.
    build_and_run(meson, src, build, ['--force-fallback-for=ctseg', '-Dctseg:native=false'], env)
    check('ctseg' in subprojects_of(meson, build), "dependency('ctseg') came from the ctseg subproject")


def installed_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob('*') if p.is_file() or p.is_symlink())


def mode_installed(args, meson, env):
    work = fresh(args.scratch / 'installed')
    prefix = work / 'prefix'
    build = work / 'ctseg-build'
    run(meson + ['setup', build, args.source_root, f'--prefix={prefix}', '--libdir=lib',
                 '-Dtests=false', '-Dtools=false', '-Dnative=false', '-Dtorch_tests=disabled'], env=env)
    # Nothing installed is built: the headers and the .pc files are all there is.
    run(meson + ['install', '-C', build, '--no-rebuild', '--quiet'], env=env)

    # Exactly the public headers (nested directories included) and ctseg.pc.
    src_inc = args.source_root / 'include' / 'ctseg'
    headers = ['include/ctseg/' + f for f in installed_files(src_inc)]
    check(any(h.count('/') > 2 for h in headers), f'{src_inc} has nested header directories')
    got = installed_files(prefix)
    expected = sorted(headers + ['share/pkgconfig/ctseg.pc', 'share/pkgconfig/ctseg-data.pc'])
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    check(not missing, f'every header under include/ctseg is installed (missing: {missing})')
    check(not extra, f'nothing but the headers, ctseg.pc and ctseg-data.pc is installed (extra: {extra})')
    differ = [h for h in headers if not filecmp.cmp(src_inc.parent.parent / h, prefix / h, shallow=False)]
    check(not differ, f'installed headers match the sources (differ: {differ})')

    penv = dict(env)
    pc_dir = str(prefix / 'share' / 'pkgconfig')
    penv['PKG_CONFIG_PATH'] = pc_dir + (os.pathsep + env['PKG_CONFIG_PATH'] if env.get('PKG_CONFIG_PATH') else '')
    pkgconfig = [args.pkg_config]
    run(pkgconfig + ['--exists', '--print-errors', 'ctseg'], env=penv)
    data_libs = shlex.split(run(pkgconfig + ['--libs', 'ctseg-data'], env=penv, capture=True))
    check({'-lniftiio', '-lpng16', '-ltbb'} <= set(data_libs),
          f'pkg-config --libs ctseg-data links niftilib, libpng and TBB (got {data_libs})')
    version = json.loads(run(meson + ['introspect', '--projectinfo', build], capture=True))['version']
    got_version = run(pkgconfig + ['--modversion', 'ctseg'], env=penv, capture=True).strip()
    check(got_version == version, f'ctseg.pc version {got_version!r} is the project version {version!r}')
    requires = set(run(pkgconfig + ['--print-requires', 'ctseg'], env=penv, capture=True).split())
    check({'tbb', 'nlohmann_json'} <= requires, f'ctseg.pc requires tbb and nlohmann_json (got {sorted(requires)})')
    cflags = shlex.split(run(pkgconfig + ['--cflags', 'ctseg'], env=penv, capture=True))
    check(f'-I{prefix / "include"}' in cflags, f'ctseg.pc cflags name the installed include directory (got {cflags})')
    libs = shlex.split(run(pkgconfig + ['--libs', 'ctseg'], env=penv, capture=True))
    check('-ltbb' in libs, f'pkg-config --libs ctseg links TBB (got {libs})')

    src = work / 'src'
    copy_project(src)
    cbuild = work / 'build'
    build_and_run(meson, src, cbuild, ['--wrap-mode=nofallback'], penv)
    check(not subprojects_of(meson, cbuild), "dependency('ctseg') came from pkg-config, not a subproject")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('source_root', type=Path, help='the ctseg source tree (holds meson.build)')
    ap.add_argument('scratch', type=Path, help='a directory for the builds; its subproject/ and installed/ are replaced')
    ap.add_argument('--mode', choices=['both', 'subproject', 'installed'], default='both')
    ap.add_argument('--meson', default=os.environ.get('MESON', 'meson'), help='the meson command (default: $MESON or meson)')
    ap.add_argument('--cxx', default=None, help='C++ compiler command for the builds (default: $CXX or meson\'s choice)')
    ap.add_argument('--pkg-config', default=os.environ.get('PKG_CONFIG', 'pkg-config'))
    args = ap.parse_args()
    args.source_root = args.source_root.resolve()
    args.scratch = args.scratch.resolve()
    if not (args.source_root / 'meson.build').is_file() or not (args.source_root / 'include' / 'ctseg').is_dir():
        print(f'{args.source_root} is not a ctseg source tree', file=sys.stderr)
        return 2

    meson = shlex.split(args.meson)
    env = dict(os.environ)
    if args.cxx:
        env['CXX'] = args.cxx
    args.scratch.mkdir(parents=True, exist_ok=True)
    try:
        if args.mode in ('both', 'subproject'):
            print('== ctseg as a subproject', flush=True)
            mode_subproject(args, meson, env)
        if args.mode in ('both', 'installed'):
            print('== ctseg installed, found with pkg-config', flush=True)
            mode_installed(args, meson, env)
    except Failure as e:
        print(f'FAIL: {e}', file=sys.stderr, flush=True)
        return 1
    print('consumer: all checks passed', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
