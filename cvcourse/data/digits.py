"""Handwritten digits that work offline: the 8x8 set, shipped in this package.

    load_digits(split="train")  -> LabelledImages(images (N, 1, 8, 8) float32, labels (N,) int64)

The data is the test part of the UCI "Optical Recognition of Handwritten Digits" set
(Alpaydin & Kaynak, 1998; CC BY 4.0): 1797 digits written by 43 people, scanned as 32x32
bitmaps and reduced to 8x8 by counting the ink pixels in each 4x4 block, so each pixel is
0..16. It is the copy scikit-learn bundles (``sklearn/datasets/data/digits.csv.gz``), which
``scripts/make_digits.py`` converted once into ``cvcourse/data/digits.npz``: two arrays,
``pixels`` uint8 ``(1797, 8, 8)`` (row 0 is the top) and ``labels`` uint8 ``(1797,)``, in
the CSV's row order. Loading the digits therefore needs neither scikit-learn nor SciPy.

Conventions:

* ``images = pixels / 16`` as float32, so values lie in ``[0, 1]``; row 0 is the top.
* The split is fixed and needs no random numbers (identical on every numpy version):
  within each class, taken in file order, every fifth digit (class ranks 4, 9, 14, ...)
  is a test digit; the others are training digits. That is a stratified 80/20 split:
  1442 training and 355 test digits, each class 34-36 of the test digits.
* ``split="all"`` returns all 1797 digits in file order (the order of
  ``sklearn.datasets.load_digits()``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ._validate import as_choice
from .labelled import LabelledImages

__all__ = ["DIGIT_CLASSES", "load_digits"]

#: Class names of :func:`load_digits`: label ``k`` is the digit ``k``.
DIGIT_CLASSES: tuple[str, ...] = tuple(str(k) for k in range(10))

_N_DIGITS = 1797
_N_TRAIN = 1442
_TEST_EVERY = 5  # every fifth digit of each class is a test digit
_FILE_NAME = "digits.npz"
_ARRAYS = ("pixels", "labels")

#: Set in the grading sandbox, where the bundled file holds the training digits only: the
#: grader measures accuracy on the test digits itself, on data the graded code never saw.
HELD_OUT_VARIABLE = "CVCOURSE_DIGITS_HELD_OUT"


class HeldOutError(ValueError):
    """The test digits are held out (the notebook is being graded)."""


def _held_out() -> bool:
    return os.environ.get(HELD_OUT_VARIABLE) == "1"


def _digits_file() -> Path:
    """Path of the bundled ``digits.npz`` (beside this module)."""
    path = Path(__file__).with_name(_FILE_NAME)
    if not path.is_file():
        raise FileNotFoundError(
            f"load_digits: file {path} not found in the cvcourse installation "
            "(reinstalling cvcourse restores it)"
        )
    return path


def _check_digits(pixels: np.ndarray, labels: np.ndarray, rows: int | None, where: str) -> None:
    """Raise ``ValueError`` unless ``pixels`` and ``labels`` are digits.

    ``pixels`` must be uint8 ``(rows, 8, 8)`` in 0..16 and ``labels`` integer ``(rows,)`` in
    0..9 (``rows=None``: any number, the same for both).
    """
    if pixels.dtype != np.uint8 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"load_digits: {where} holds pixels of dtype {pixels.dtype} and labels of dtype "
            f"{labels.dtype}, expected uint8 pixels and integer labels"
        )
    n = pixels.shape[0] if rows is None and pixels.ndim else rows
    if pixels.shape != (n, 8, 8) or labels.shape != (n,):
        expected = "N" if rows is None else str(rows)
        raise ValueError(
            f"load_digits: {where} holds pixels of shape {pixels.shape} and labels of shape "
            f"{labels.shape}, expected {expected} digits: ({expected}, 8, 8) and ({expected},)"
        )
    if pixels.max(initial=0) > 16 or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"load_digits: {where} has values outside pixels 0..16 / labels 0..9")


@functools.cache
def _read_all() -> tuple[np.ndarray, np.ndarray]:
    """All digits as read-only ``(pixels uint8 (1797, 8, 8), labels int64 (1797,))``.

    Only the 1442 training digits when the test split is held out (the grading sandbox).
    """
    import zipfile

    path = _digits_file()
    try:
        if not zipfile.is_zipfile(path):  # else np.load tries it as a pickle
            raise ValueError("it is not a zip archive")
        with np.load(path, allow_pickle=False) as npz:
            names = sorted(npz.files)
            if names != sorted(_ARRAYS):
                raise ValueError(f"it holds the arrays {names}, expected {sorted(_ARRAYS)}")
            pixels, labels = npz["pixels"], npz["labels"]
    except Exception as exc:  # a damaged zip raises BadZipFile, zlib.error, EOFError, ...
        raise ValueError(
            f"load_digits: cannot read {path} ({type(exc).__name__}: {exc}); expected a .npz "
            "of pixels uint8 (1797, 8, 8) and labels uint8 (1797,) (reinstalling cvcourse "
            "restores it)"
        ) from exc
    _check_digits(pixels, labels, _N_TRAIN if _held_out() else _N_DIGITS, str(path))
    labels = labels.astype(np.int64)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def write_digits_file(path: str | os.PathLike, pixels: np.ndarray, labels: np.ndarray) -> Path:
    """Write digits as the ``.npz`` :func:`load_digits` reads, atomically; ``path`` as a Path.

    ``pixels`` are uint8 ``(N, 8, 8)`` in 0..16, ``labels`` integers ``(N,)`` in 0..9 (stored
    as uint8).

    The archive is the one ``np.savez_compressed`` writes, except that its entries carry a
    fixed date (1980-01-01), so the same digits always give the same bytes.
    """
    import zipfile

    from ..fileio import atomic_path

    pixels, labels = np.asarray(pixels), np.asarray(labels)
    _check_digits(pixels, labels, None, "the digits to write")
    labels = labels.astype(np.uint8)
    path = Path(path)
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for name, array in zip(_ARRAYS, (pixels, labels), strict=True):
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            with archive.open(entry, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    return path


def write_training_digits(path: str | os.PathLike) -> Path:
    """Write the bundled file's training digits only, in its format, to ``path`` (``.npz``).

    This is what the grading sandbox shows in place of the whole file.
    """
    pixels, labels = _read_all()
    train = ~_test_mask(labels)
    return write_digits_file(path, pixels[train], labels[train])


def _test_mask(labels: np.ndarray) -> np.ndarray:
    """True for every fifth digit of each class, in file order (ranks 4, 9, 14, ...)."""
    rank = np.empty(labels.shape[0], dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(members.size)
    return rank % _TEST_EVERY == _TEST_EVERY - 1


def load_digits(split: str = "train") -> LabelledImages:
    """The 8x8 handwritten digits shipped with cvcourse, as an NCHW batch.

    Parameters
    ----------
    split:
        ``"train"`` (1442 digits), ``"test"`` (355 digits) or ``"all"`` (1797). The split
        is fixed and stratified: every fifth digit of each class is a test digit (module
        docstring).

    Returns
    -------
    :class:`LabelledImages` ``(images, labels)``: ``images`` is a new float32 array of
    shape ``(N, 1, 8, 8)`` with ``images = ink_count / 16`` in ``[0, 1]``; ``labels`` is
    ``(N,)`` int64 in ``0..9`` (class names: :data:`DIGIT_CLASSES`).

    Raises
    ------
    ValueError
        ``split`` is not one of the three names, or the bundled file is corrupt.
    HeldOutError
        (a ``ValueError``) ``split`` is not ``"train"`` while the notebook is graded.
    FileNotFoundError
        The bundled file is missing (a broken installation).
    """
    split = as_choice(split, "split", ("train", "test", "all"))
    pixels, labels = _read_all()
    if _held_out():
        if split != "train":
            raise HeldOutError(
                f"load_digits({split!r}): the test digits are held out while your notebook "
                "is graded; the grader measures your model's accuracy on them itself"
            )
        keep = np.ones(labels.shape[0], dtype=bool)
    elif split == "all":
        keep = np.ones(labels.shape[0], dtype=bool)
    else:
        test = _test_mask(labels)
        keep = test if split == "test" else ~test
    images = (pixels[keep].astype(np.float32) / np.float32(16.0))[:, None]
    return LabelledImages(np.ascontiguousarray(images), labels[keep].copy())
