"""Handwritten digits that work offline: the 8x8 set scikit-learn ships.

    load_digits(split="train")  -> LabelledImages(images (N, 1, 8, 8) float32, labels (N,) int64)

The data is the test part of the UCI "Optical Recognition of Handwritten Digits" set
(Alpaydin & Kaynak, 1998): 1797 digits written by 43 people, scanned as 32x32 bitmaps and
reduced to 8x8 by counting the ink pixels in each 4x4 block, so each pixel is 0..16.
scikit-learn bundles it as ``sklearn/datasets/data/digits.csv.gz`` (one row per digit: 64
pixel values in row-major order, then the label). We read that file directly, through
``importlib.util.find_spec``, so that loading the digits never imports scikit-learn (nor
scipy behind it); scikit-learn is still the dependency that ships it.

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

#: Set in the grading sandbox, where the bundled file holds the training digits only: the
#: grader measures accuracy on the test digits itself, on data the graded code never saw.
HELD_OUT_VARIABLE = "CVCOURSE_DIGITS_HELD_OUT"


class HeldOutError(ValueError):
    """The test digits are held out (the notebook is being graded)."""


def _held_out() -> bool:
    return os.environ.get(HELD_OUT_VARIABLE) == "1"


def _digits_file() -> Path:
    """Path of scikit-learn's bundled ``digits.csv.gz``, without importing scikit-learn."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # top-level: finds the folder, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "load_digits reads the 8x8 digits that scikit-learn ships, but scikit-learn is "
            "not installed: pip install 'scikit-learn>=1.3'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(
            f"load_digits: file {path} not found in the scikit-learn installation "
            "(reinstalling scikit-learn restores it)"
        )
    return path


@functools.cache
def _read_all() -> tuple[np.ndarray, np.ndarray]:
    """All digits as read-only ``(pixels uint8 (1797, 8, 8), labels int64 (1797,))``."""
    import gzip

    path = _digits_file()
    try:
        with gzip.open(path, "rt", encoding="ascii") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    except Exception as exc:
        raise ValueError(
            f"load_digits: cannot parse {path} ({type(exc).__name__}: {exc}); expected a "
            "gzipped CSV of 1797 rows of 65 numbers (reinstalling scikit-learn restores it)"
        ) from exc
    rows = _N_TRAIN if _held_out() else _N_DIGITS
    if table.shape != (rows, 65):
        raise ValueError(
            f"load_digits: {path} holds a table of shape {table.shape}, expected "
            f"({rows}, 65): 64 pixels and a label per digit"
        )
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"load_digits: {path} has values outside pixels 0..16 / labels 0..9")
    pixels = pixels.astype(np.uint8).reshape(rows, 8, 8)
    labels = labels.astype(np.int64)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def write_training_digits(path: str | os.PathLike) -> Path:
    """Write the bundled file's training digits only, in its format, to ``path`` (a
    ``.csv.gz``): what the grading sandbox shows in place of the whole file."""
    import gzip

    pixels, labels = _read_all()
    train = ~_test_mask(labels)
    table = np.concatenate([pixels[train].reshape(-1, 64), labels[train, None]], axis=1)
    path = Path(path)
    with gzip.open(path, "wt", encoding="ascii") as f:
        np.savetxt(f, table.astype(np.float64), delimiter=",", fmt="%.1f")
    return path


def _test_mask(labels: np.ndarray) -> np.ndarray:
    """True for every fifth digit of each class, in file order (ranks 4, 9, 14, ...)."""
    rank = np.empty(labels.shape[0], dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(members.size)
    return rank % _TEST_EVERY == _TEST_EVERY - 1


def load_digits(split: str = "train") -> LabelledImages:
    """The 8x8 handwritten digits scikit-learn ships, as an NCHW batch.

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
    ModuleNotFoundError
        scikit-learn, which ships the file, is not installed.
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
