"""Minimal safetensors and .npy I/O for the PyTorch interop tests.

safetensors layout: an 8-byte little-endian unsigned header length, a JSON
header {key: {"dtype", "shape", "data_offsets": [begin, end]}, optional
"__metadata__": {str: str}}, padded with spaces to a multiple of 8 bytes, then
the raw little-endian tensor bytes (offsets are relative to the data start).
Tensors are stored in sorted key order, packed without gaps.
"""
import json
import os
import struct
import tempfile

import numpy as np

# safetensors dtype name <-> numpy dtype (little endian)
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dt: name for name, dt in _DTYPES.items()}


class SafetensorsError(ValueError):
    pass


def _as_numpy(value):
    """Accept numpy arrays and torch tensors (without importing torch)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().contiguous().numpy()
    arr = np.asarray(value)
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    return np.asarray(arr, dtype=dt, order="C")  # keeps 0-d scalars 0-d


def dtype_name(arr):
    key = np.dtype(arr.dtype).newbyteorder("<") if arr.dtype.itemsize > 1 else np.dtype(arr.dtype)
    for dt, name in _NAMES.items():
        if dt == key:
            return name
    raise SafetensorsError(f"dtype {arr.dtype} has no safetensors name")


def encode(tensors, metadata=None):
    """Serialise {key: array} to safetensors bytes."""
    header = {}
    chunks = []
    offset = 0
    for key in sorted(tensors):
        if key == "__metadata__":
            raise SafetensorsError("'__metadata__' is reserved")
        arr = _as_numpy(tensors[key])
        raw = arr.tobytes(order="C")
        header[key] = {"dtype": dtype_name(arr), "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def atomic_write_bytes(path, data):
    """Write `data` to `path` through a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_file(tensors, path, metadata=None):
    atomic_write_bytes(path, encode(tensors, metadata))


def decode_header(data):
    """Return (header dict without metadata, metadata, data start offset)."""
    if len(data) < 8:
        raise SafetensorsError("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise SafetensorsError(f"header length {n} exceeds file size {len(data)}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"bad JSON header: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + n


def decode(data):
    """Parse safetensors bytes into ({key: numpy array}, metadata)."""
    header, metadata, start = decode_header(data)
    out = {}
    for key, info in header.items():
        if info.get("dtype") not in _DTYPES:
            raise SafetensorsError(f"{key}: unsupported dtype {info.get('dtype')!r}")
        dt = _DTYPES[info["dtype"]]
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(v) for v in info["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dt.itemsize or begin < 0 or start + end > len(data):
            raise SafetensorsError(f"{key}: data_offsets {begin}..{end} do not fit shape {list(shape)} "
                                   f"{info['dtype']} in a file of {len(data)} bytes")
        out[key] = np.frombuffer(data, dtype=dt, count=count, offset=start + begin).reshape(shape).copy()
    return out, metadata


def load_file(path):
    """Read a safetensors file into {key: numpy array} (metadata dropped)."""
    with open(path, "rb") as f:
        tensors, _ = decode(f.read())
    return tensors


def load_file_with_metadata(path):
    with open(path, "rb") as f:
        return decode(f.read())


def load_state_dict(path):
    """Read a safetensors file as {key: torch.Tensor}."""
    import torch
    return {k: torch.from_numpy(v) for k, v in load_file(path).items()}


def save_npy(path, array):
    """numpy.save through a temporary file, then rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, _as_numpy(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npy(path):
    return np.load(path, allow_pickle=False)
