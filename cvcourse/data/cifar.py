"""CIFAR-10 from the python version of its batches, in a folder or still in the tar.gz.

    load_cifar10(root=None, split="train", download=False, dtype=np.float32)
        -> LabelledImages(images (N, 3, 32, 32), labels (N,) int64)

CIFAR-10 (Krizhevsky, 2009; https://www.cs.toronto.edu/~kriz/cifar.html) has 50000
training and 10000 test colour images of 32x32 pixels in 10 classes
(:data:`CIFAR10_CLASSES`). Its python version, ``cifar-10-python.tar.gz``, holds the folder
``cifar-10-batches-py`` with the pickled batches ``data_batch_1`` .. ``data_batch_5``
(10000 training images each) and ``test_batch``. Each batch is a dict with, among others,

    b"data"    uint8 array (10000, 3072): per image the 1024 red, then 1024 green, then
               1024 blue values, each plane row-major, so ``data.reshape(-1, 3, 32, 32)``
               is already NCHW
    b"labels"  list of 10000 ints in 0..9

``root`` may be: the extracted ``cifar-10-batches-py`` folder; a folder containing it; a
folder containing ``cifar-10-python.tar.gz`` (read without extracting); or the path of that
archive. ``root=None`` means ``data_home() / "cifar10"``. With ``download=True`` a missing
archive is downloaded there from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
and checked against its SHA-256
(6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce, 170498071 bytes; the
page publishes the MD5 c58f30108f718f92721af3b95e74349a).

The batches are pickles, and unpickling can run arbitrary code. They are therefore read
with an unpickler that only accepts plain containers and numpy arrays: a batch containing
anything else is refused with a ``ValueError``, never executed.

Images are float32 ``value / 255`` in ``[0, 1]`` (``dtype=np.uint8`` keeps 0..255).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ._validate import as_choice, as_dir, as_flag, as_image_dtype
from .download import RemoteFile, data_home, fetch
from .labelled import LabelledImages

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]

#: Class names of CIFAR-10, by label (``batches.meta``'s ``label_names``).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

_FOLDER = "cifar-10-batches-py"
_ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    170_498_071,
    "c58f30108f718f92721af3b95e74349a",
)
_BATCHES = {
    "train": tuple(f"data_batch_{k}" for k in range(1, 6)),
    "test": ("test_batch",),
}
_PIXELS = 3 * 32 * 32


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles containers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str):
        try:
            from numpy._core import multiarray, numeric
        except ImportError:  # numpy < 2
            from numpy.core import multiarray, numeric  # type: ignore[no-redef]
        import _codecs

        allowed = {
            ("_codecs", "encode"): _codecs.encode,  # bytes in protocol-2 pickles of Python 3
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            # numpy's private helper, named by the pickles of numpy arrays
            ("numpy.core.numeric", "_frombuffer"): numeric._frombuffer,  # type: ignore[attr-defined]
            ("numpy._core.numeric", "_frombuffer"): numeric._frombuffer,  # type: ignore[attr-defined]
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return allowed[(module, name)]


def _parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, 3, 32, 32), labels int64 (n,))`` from one pickled batch."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise ValueError(
            f"CIFAR-10 batch {where} cannot be unpickled ({type(exc).__name__}: {exc}); "
            "it is truncated, corrupt or not a CIFAR-10 python batch"
        ) from exc
    if not isinstance(batch, dict):
        raise ValueError(
            f"CIFAR-10 batch {where} holds a {type(batch).__name__}, expected a dict with "
            "keys b'data' and b'labels'"
        )
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        keys = sorted(map(repr, batch))
        raise ValueError(
            f"CIFAR-10 batch {where} has keys {', '.join(keys)}; expected b'data' and b'labels'"
        )
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise ValueError(
            f"CIFAR-10 batch {where}: b'data' is {data.dtype} of shape {data.shape}, "
            f"expected uint8 (n, {_PIXELS}) (3 x 32 x 32 per image)"
        )
    try:
        labels = np.asarray(labels)
    except Exception as exc:
        raise ValueError(f"CIFAR-10 batch {where}: b'labels' is not a list of ints") from exc
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"CIFAR-10 batch {where}: b'labels' is {labels.dtype} of shape {labels.shape}, "
            "expected a list of ints"
        )
    if labels.shape[0] != data.shape[0]:
        raise ValueError(
            f"CIFAR-10 batch {where} has {data.shape[0]} images but {labels.shape[0]} labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"CIFAR-10 batch {where} has labels from {labels.min()} to {labels.max()}, "
            "expected 0..9"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_from_folder(folder: Path, names: tuple[str, ...]) -> list[bytes]:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10: {folder} lacks {', '.join(missing)} (expected the batches "
            f"{', '.join(names)})"
        )
    return [(folder / n).read_bytes() for n in names]


def _read_from_archive(archive: Path, names: tuple[str, ...]) -> list[bytes]:
    """The named batches' bytes, read from the tar.gz in one pass, never extracted."""
    import tarfile
    import zlib

    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                parent = member.name[: -len(base)].strip("/")
                if member.isfile() and base in names and parent in ("", _FOLDER):
                    data = tar.extractfile(member)  # None only for what is not a regular file
                    if data is not None:
                        found[base] = data.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError(
            f"CIFAR-10 archive {archive} cannot be read ({type(exc).__name__}: {exc}); it is "
            "truncated or corrupt: delete it and download it again"
        ) from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(
            f"CIFAR-10 archive {archive} lacks {', '.join(f'{_FOLDER}/{n}' for n in missing)}; "
            "is it cifar-10-python.tar.gz (the python version)?"
        )
    return [found[n] for n in names]


def load_cifar10(
    root=None,
    split: str = "train",
    *,
    download: bool = False,
    dtype=np.float32,
    progress: bool = True,
) -> LabelledImages:
    """CIFAR-10 from its python batches (module docstring for ``root`` and the format).

    Parameters
    ----------
    root:
        The batches' folder, its parent, a folder with ``cifar-10-python.tar.gz``, or
        the archive itself; ``None`` for ``data_home()/cifar10``.
    split:
        ``"train"`` (50000 images, batches 1..5 in order) or ``"test"`` (10000).
    download:
        Download the archive (170 MB, SHA-256 checked) into ``root`` if no data is found.
    dtype:
        ``np.float32`` (``value / 255`` in ``[0, 1]``) or ``np.uint8`` (raw 0..255).
    progress:
        Show a progress bar while downloading.

    Returns
    -------
    :class:`LabelledImages` ``(images (N, 3, 32, 32) RGB, labels (N,) int64 in 0..9)``.

    Raises
    ------
    FileNotFoundError
        No batches and no archive found and ``download`` is false.
    ValueError
        A batch or the archive is truncated, corrupt or of the wrong format.
    DownloadError
        ``download=True`` and the download failed.
    """
    split = as_choice(split, "split", ("train", "test"))
    download = as_flag(download, "download")
    dtype = as_image_dtype(dtype)
    root = data_home() / "cifar10" if root is None else as_dir(root)
    names = _BATCHES[split]

    if root.is_file():
        archive = root
    else:
        for folder in (root / _FOLDER, root):
            if (folder / names[0]).is_file():
                raws = _read_from_folder(folder, names)
                return _assemble([str(folder / n) for n in names], raws, dtype)
        archive = root / _ARCHIVE.filename
        if not archive.is_file():
            if not download:
                raise FileNotFoundError(
                    f"CIFAR-10: no {names[0]} in {root / _FOLDER} or {root}, and no "
                    f"{_ARCHIVE.filename} in {root}; pass download=True to download it, "
                    "or root= the folder that holds it"
                )
            archive = fetch(_ARCHIVE, root, progress=progress)
    raws = _read_from_archive(archive, names)
    return _assemble([f"{archive}:{_FOLDER}/{n}" for n in names], raws, dtype)


def _assemble(wheres: list[str], raws: list[bytes], dtype: np.dtype) -> LabelledImages:
    """Parse and concatenate the batches; scale to float32 in [0, 1] unless uint8."""
    parts = [_parse_batch(raw, where) for where, raw in zip(wheres, raws, strict=True)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if dtype == np.float32:
        images = images.astype(np.float32) / np.float32(255.0)
    return LabelledImages(np.ascontiguousarray(images), labels)
