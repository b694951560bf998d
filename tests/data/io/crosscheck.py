#!/usr/bin/env python3
"""Independent readers and writers for the image I/O tests (crosscheck.cpp).

  crosscheck.py write DIR     writes reference files with PIL, tifffile,
                              nibabel and NumPy, and DIR/manifest.json saying
                              what each holds
  crosscheck.py check DIR     reads the files the library wrote into DIR (as
                              listed in DIR/manifest.json) and checks every
                              value and the NIfTI geometry; exit status 1 on
                              any mismatch
  crosscheck.py nifti FILE    prints shape, dtype, zooms, affine, codes and
                              the sum of the values of a NIfTI file as JSON

Values follow one pattern over the library's layout (C-order channels x
extents, slowest first), computed identically by io_test::pattern in C++.
"""
import json
import os
import sys

import numpy as np

DTYPES = {'u8': np.uint8, 'u16': np.uint16, 'i16': np.int16, 'i32': np.int32, 'f32': np.float32, 'f64': np.float64}


def pattern(shape, kind):
    """The test pattern in the library's layout, shape = (channels,) + extents."""
    n = int(np.prod(shape))
    k = np.arange(n, dtype=np.int64)
    if kind == 'u8':
        v = (k * 7919 + 13) % 256
    elif kind == 'u16':
        v = (k * 7919 + 13) % 65536
    elif kind == 'i16':
        v = (k * 7919 + 13) % 65536 - 32768
    elif kind == 'i32':
        v = (k * 2654435761) % 4294967296 - 2147483648
    elif kind == 'f32':
        return (((k * 7919 + 13) % 20011) * 0.25 - 2000.5).astype(np.float32).reshape(shape)
    else:
        return (((k * 7919 + 13) % 1000003) * 0.125 - 50000.0 + 1.0 / 1024).reshape(shape)
    info = np.iinfo(DTYPES[kind])
    if n > 0:
        v[0] = info.min
    if n > 1:
        v[1] = info.max
    return v.astype(DTYPES[kind]).reshape(shape)


# Layout conversions: the library keeps channels first and NIfTI's x last.
def to_pil(a):  # (C, H, W) -> (H, W) or (H, W, C)
    return a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)


def to_tiff(a):  # (C, [D,] H, W) -> ([D,] H, W) or ([D,] H, W, C)
    return a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)


def to_nifti(a):  # (C, [Z,] Y, X) -> (X, Y[, Z]) or (X, Y, Z, C)
    return a[0].T if a.shape[0] == 1 else np.transpose(a, tuple(range(a.ndim - 1, 0, -1)) + (0,))


AFFINE = np.array([[0.0, -0.75, 0.0, 12.5],
                   [0.5, 0.0, 0.0, -30.25],
                   [0.0, 0.0, 2.0, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])


def write(d):
    from PIL import Image
    import nibabel as nib
    import tifffile
    manifest = []

    def add(name, kind, shape, **extra):
        manifest.append(dict(name=name, kind=kind, shape=list(shape), **extra))

    # PNG through PIL: 8-bit grey and RGB, 16-bit grey, a palette.
    a = pattern((1, 13, 17), 'u8'); Image.fromarray(to_pil(a)).save(os.path.join(d, 'pil_grey8.png')); add('pil_grey8.png', 'u8', a.shape)
    a = pattern((3, 11, 9), 'u8'); Image.fromarray(to_pil(a), 'RGB').save(os.path.join(d, 'pil_rgb8.png')); add('pil_rgb8.png', 'u8', a.shape)
    a = pattern((1, 12, 10), 'u16'); Image.fromarray(to_pil(a)).save(os.path.join(d, 'pil_grey16.png')); add('pil_grey16.png', 'u16', a.shape)
    idx = (np.arange(6 * 7).reshape(6, 7) * 5) % 7
    pal = Image.fromarray(idx.astype(np.uint8), 'P')
    colours = [(i * 30, 255 - i * 20, (i * 77) % 256) for i in range(7)]
    pal.putpalette([c for rgb in colours for c in rgb])
    pal.save(os.path.join(d, 'pil_palette.png'))
    rgb = np.array([[colours[i] for i in row] for row in idx], dtype=np.uint8)
    manifest.append(dict(name='pil_palette.png', kind='u8', shape=[3, 6, 7], values=np.moveaxis(rgb, -1, 0).ravel().tolist(),
                         labels=idx.ravel().tolist()))

    # TIFF through tifffile: stacks of every type, RGB, tiles, compression, byte order.
    for kind in ['u8', 'u16', 'i16', 'i32', 'f32', 'f64']:
        a = pattern((1, 4, 9, 7), kind)
        name = 'tf_stack_%s.tif' % kind
        tifffile.imwrite(os.path.join(d, name), to_tiff(a), photometric='minisblack'); add(name, kind, a.shape)
    a = pattern((3, 8, 6), 'u8'); tifffile.imwrite(os.path.join(d, 'tf_rgb.tif'), to_tiff(a), photometric='rgb'); add('tf_rgb.tif', 'u8', a.shape)
    a = pattern((3, 8, 6), 'u16')
    tifffile.imwrite(os.path.join(d, 'tf_rgb_planar.tif'), a, photometric='rgb', planarconfig='separate'); add('tf_rgb_planar.tif', 'u16', a.shape)
    a = pattern((1, 3, 40, 37), 'f32')
    tifffile.imwrite(os.path.join(d, 'tf_tiled_deflate.tif'), to_tiff(a), photometric='minisblack', tile=(16, 16), compression='zlib')
    add('tf_tiled_deflate.tif', 'f32', a.shape)
    a = pattern((1, 2, 30, 20), 'i16')
    tifffile.imwrite(os.path.join(d, 'tf_bigendian_lzma.tif'), to_tiff(a), photometric='minisblack', byteorder='>', compression='lzma',
                     rowsperstrip=7)
    add('tf_bigendian_lzma.tif', 'i16', a.shape)
    a = pattern((1, 3, 5, 6), 'u16')
    tifffile.imwrite(os.path.join(d, 'tf_bigtiff.tif'), to_tiff(a), photometric='minisblack', bigtiff=True); add('tf_bigtiff.tif', 'u16', a.shape)

    # NIfTI through nibabel: every datatype, 2D, 4D (channels), byte order, scaling.
    for kind in ['u8', 'u16', 'i16', 'i32', 'f32', 'f64']:
        a = pattern((1, 5, 6, 7), kind)
        img = nib.Nifti1Image(to_nifti(a), AFFINE)
        img.header.set_xyzt_units('mm', 'sec')
        name = 'nib_%s.nii.gz' % kind
        nib.save(img, os.path.join(d, name))
        add(name, kind, a.shape, zooms=[float(z) for z in img.header.get_zooms()], affine=AFFINE.tolist(), xyzt_units=int(img.header['xyzt_units']))
    a = pattern((1, 6, 5), 'i16')
    nib.save(nib.Nifti1Image(to_nifti(a), np.diag([0.25, 4.0, 1.0, 1.0])), os.path.join(d, 'nib_2d.nii')); add('nib_2d.nii', 'i16', a.shape, zooms=[0.25, 4.0])
    a = pattern((3, 2, 4, 5), 'f32')
    nib.save(nib.Nifti1Image(to_nifti(a), AFFINE), os.path.join(d, 'nib_4d.nii')); add('nib_4d.nii', 'f32', a.shape)
    a = pattern((1, 3, 4, 5), 'i32')
    nib.save(nib.Nifti1Image(to_nifti(a).astype('>i4'), AFFINE), os.path.join(d, 'nib_bigendian.nii')); add('nib_bigendian.nii', 'i32', a.shape)
    a = pattern((1, 3, 4, 5), 'u8')
    img = nib.Nifti1Image(to_nifti(a), AFFINE)
    img.header.set_slope_inter(0.5, -3.0)
    nib.save(img, os.path.join(d, 'nib_scaled.nii'))
    add('nib_scaled.nii', 'u8', a.shape, slope=0.5, inter=-3.0)

    # .npy through NumPy.
    for kind, shape in [('u8', (1, 9, 8)), ('i16', (1, 3, 9, 8)), ('f32', (2, 3, 4, 5)), ('f64', (1, 4, 4))]:
        a = pattern(shape, kind)
        name = 'np_%s_%d.npy' % (kind, len(shape))
        np.save(os.path.join(d, name), a[0] if shape[0] == 1 else a)
        add(name, kind, shape)

    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    print('wrote %d files' % len(manifest))


def check(d):
    from PIL import Image
    import nibabel as nib
    import tifffile
    with open(os.path.join(d, 'manifest.json')) as f:
        manifest = json.load(f)
    bad = []
    for entry in manifest:
        name, kind, shape = entry['name'], entry['kind'], tuple(entry['shape'])
        path = os.path.join(d, name)
        want = pattern(shape, kind)
        if name.endswith('.png'):
            with Image.open(path) as im:
                got = np.asarray(im)
            want = to_pil(want)
        elif name.endswith('.tif'):
            got = tifffile.imread(path)
            want = to_tiff(want)
        elif name.endswith('.npy'):
            got = np.load(path)
            want = want[0] if shape[0] == 1 else want
        else:
            img = nib.load(path)
            got = np.asanyarray(img.dataobj)
            want = to_nifti(want)
            if 'affine' in entry and not np.array_equal(img.affine, np.array(entry['affine'])):
                bad.append('%s: affine\n%s\nexpected\n%s' % (name, img.affine, np.array(entry['affine'])))
            if 'affine_close' in entry and not np.allclose(img.affine, np.array(entry['affine_close']), atol=1e-5):
                bad.append('%s: affine\n%s\nexpected about\n%s' % (name, img.affine, np.array(entry['affine_close'])))
            if 'zooms' in entry and list(map(float, img.header.get_zooms())) != entry['zooms']:
                bad.append('%s: zooms %s, expected %s' % (name, img.header.get_zooms(), entry['zooms']))
            for key in ['qform_code', 'sform_code', 'xyzt_units']:
                if key in entry and int(img.header[key]) != entry[key]:
                    bad.append('%s: %s %d, expected %d' % (name, key, int(img.header[key]), entry[key]))
        if name.endswith('.png') and got.dtype == np.int32 and want.dtype == np.uint16:
            got = got.astype(np.uint16)  # PIL opens 16-bit grey as 32-bit 'I' images
        if got.dtype != want.dtype:
            bad.append('%s: dtype %s, expected %s' % (name, got.dtype, want.dtype))
        elif got.shape != want.shape:
            bad.append('%s: shape %s, expected %s' % (name, got.shape, want.shape))
        elif not np.array_equal(got, want):
            bad.append('%s: %d values differ' % (name, int(np.sum(got != want))))
    for b in bad:
        print(b)
    print('checked %d files, %d problems' % (len(manifest), len(bad)))
    return 1 if bad else 0


def nifti_summary(path):
    import nibabel as nib
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    h = img.header
    print(json.dumps(dict(shape=list(img.shape), dtype=str(h.get_data_dtype()), zooms=[float(z) for z in h.get_zooms()],
                          affine=img.affine.tolist(), qform_code=int(h['qform_code']), sform_code=int(h['sform_code']),
                          sum=float(data.astype(np.float64).sum()),
                          # voxel [x, y, z] of a few places, in nibabel's order
                          probes=[[int(x), int(y), int(z), float(data[x, y, z])] for x, y, z in
                                  [(0, 0, 0), (90, 108, 90), (45, 150, 100), (180, 216, 180), (17, 3, 160)]
                                  if x < img.shape[0] and y < img.shape[1] and z < img.shape[2]])))


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('write', 'check', 'nifti'):
        sys.exit(__doc__)
    if sys.argv[1] == 'write':
        write(sys.argv[2])
    elif sys.argv[1] == 'check':
        sys.exit(check(sys.argv[2]))
    else:
        nifti_summary(sys.argv[2])
