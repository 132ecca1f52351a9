"""Builders of small dataset files in the exact published formats, for the tests."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file: 0x00 0x00, type code, ndim, big-endian uint32 sizes, big-endian data."""
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + np.ascontiguousarray(array, dtype=dtypes[type_code]).tobytes()


def write_idx_pair(folder: Path, prefix: str, images, labels, *, gz: bool) -> tuple[Path, Path]:
    """Write ``{prefix}-images-idx3-ubyte`` and ``{prefix}-labels-idx1-ubyte`` (+ .gz)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in (
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ):
        data = idx_bytes(np.asarray(array, dtype=np.uint8))
        path = folder / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        paths.append(path)
    return paths[0], paths[1]


def mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=n, dtype=np.uint8),
    )


def cifar_batch(
    n: int, seed: int, *, label_key=b"labels", data_key=b"data"
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A pickled CIFAR-10 python batch of ``n`` images, with its data and labels."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    batch = {
        b"batch_label": b"testing batch",
        label_key: labels,
        data_key: data,
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }
    return pickle.dumps(batch, protocol=2), data, np.asarray(labels)


CIFAR_NAMES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]


def write_cifar_folder(folder: Path, n: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for k, name in enumerate(CIFAR_NAMES):
        raw, data, labels = cifar_batch(n, seed=k)
        (folder / name).write_bytes(raw)
        contents[name] = (data, labels)
    return contents


def write_cifar_archive(path: Path, n: int = 4, members: dict[str, bytes] | None = None):
    """A cifar-10-python.tar.gz with ``cifar-10-batches-py/<batch>`` members."""
    contents = {}
    if members is None:
        members = {}
        for k, name in enumerate(CIFAR_NAMES):
            raw, data, labels = cifar_batch(n, seed=k)
            members[name] = raw
            contents[name] = (data, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return contents
