"""Reading IDX files, the format of MNIST and Fashion-MNIST.

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is:

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    then        d sizes, each a big-endian uint32
    then        prod(sizes) elements, big-endian, row-major (the last axis fastest)

So MNIST's image files start with the magic number 0x00000803 = 2051 (uint8, 3-D:
count, rows, cols) and its label files with 0x00000801 = 2049 (uint8, 1-D: count).
Files may be gzipped (detected from the content, not the name).

    read_idx(path, ndim=None) -> numpy array of the file's shape and type (native byte order)

Every problem (truncated file, bad magic number, wrong number of dimensions, payload size
not matching the header, trailing bytes, broken gzip stream) raises ``ValueError`` naming
the file and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["IDX_TYPES", "read_idx"]

#: IDX element type code -> numpy dtype (big-endian, as stored).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped if it starts with the gzip magic bytes."""
    import gzip
    import zlib

    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(
            f"IDX file {path}: broken gzip stream ({type(exc).__name__}: {exc}); the file "
            "is truncated or corrupt, delete it and download it again"
        ) from exc


def read_idx(path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a numpy array.

    Parameters
    ----------
    path:
        The file (str or path-like).
    ndim:
        If given, the number of dimensions the file must have (3 for an image file,
        1 for a label file); anything else raises ``ValueError``.

    Returns
    -------
    A new array with the shape from the header and the element type of the file, in
    native byte order (e.g. ``uint8 (60000, 28, 28)`` for MNIST's training images).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The content is not a well-formed IDX file (the message says what was expected).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or Path), got {type(path).__name__}")
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(
            f"IDX file {path} is truncated: {len(data)} bytes, shorter than the 4-byte magic number"
        )
    zero, type_code, dims = data[:2], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != b"\x00\x00" or type_code not in IDX_TYPES:
        codes = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(
            f"IDX file {path} has bad magic number 0x{magic:08X}: expected 0x0000TTDD with "
            f"type code TT in ({codes}) and DD the number of dimensions (MNIST images: "
            "0x00000803 = 2051, labels: 0x00000801 = 2049); is it an IDX file?"
        )
    if ndim is not None and dims != ndim:
        raise ValueError(
            f"IDX file {path} has {dims} dimensions (magic 0x{magic:08X}) but {ndim} were "
            f"expected ({'images: count, rows, cols' if ndim == 3 else 'labels: count'})"
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError(
            f"IDX file {path} is truncated: {len(data)} bytes, shorter than its "
            f"{header}-byte header ({dims} dimensions)"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    dtype = IDX_TYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"IDX file {path} is {problem}: the header gives shape {shape} of {dtype.name} "
            f"({expected} bytes with the header) but the file has {len(data)} bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
