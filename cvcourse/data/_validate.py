"""Argument checks shared by the data functions.

The generic checks (ints, reals, flags, choices, generators) are ``cvcourse._checks``'s,
re-exported here for the data modules; these add arrays, image batches, labels, folders and
loader dtypes. Each returns a normalised value or raises a ``ValueError``/``TypeError``
whose message names the argument and the shapes involved.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cvcourse._checks import as_choice, as_flag, as_int, as_real, as_rng

__all__ = [
    "as_array",
    "as_choice",
    "as_dir",
    "as_flag",
    "as_image_dtype",
    "as_images",
    "as_int",
    "as_labels",
    "as_real",
    "as_rng",
]


def as_array(x, name: str) -> np.ndarray:
    """``np.asarray`` that also takes a torch tensor (duck-typed: torch is never imported)."""
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from exc
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def as_images(x, name: str = "x", *, floating: bool = False) -> np.ndarray:
    """``x`` as a non-empty 4-D ``(N, C, H, W)`` numeric array (floating point if asked)."""
    x = as_array(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D (N, C, H, W) batch, got shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    if floating and x.dtype.kind != "f":
        raise TypeError(
            f"{name} must be floating point (float32 or float64), got dtype {x.dtype}; "
            f"convert with {name}.astype(np.float32)"
        )
    return x


def as_labels(y, name: str = "y", *, length: int | None = None, other: str = "x") -> np.ndarray:
    """``y`` as a 1-D int64 array of non-negative class indices (of ``length`` if given)."""
    y = as_array(y, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0, found {y.min()}")
    if length is not None and y.shape[0] != length:
        raise ValueError(
            f"{name} has {y.shape[0]} labels but {other} has {length} samples: "
            "they must have the same length"
        )
    return y.astype(np.int64)


def as_dir(root, name: str = "root") -> Path:
    """``root`` (a str or path-like) as a ``Path``."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or Path), got {type(root).__name__}")
    return Path(root).expanduser()


def as_image_dtype(dtype, name: str = "dtype") -> np.dtype:
    """The output dtype of a loader: float32 (scaled to [0, 1]) or uint8 (raw 0..255)."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be np.float32 or np.uint8, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.uint8)):
        raise ValueError(
            f"{name} must be np.float32 (scaled to [0, 1]) or np.uint8 (raw), got {dt}"
        )
    return dt
