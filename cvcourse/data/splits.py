"""Splitting a labelled set into a training and a validation part.

    train_val_split(x, y, val_fraction=0.2, stratify=True, seed=0)
        -> (LabelledImages train, LabelledImages val)

Stratified (the default) means every class keeps its share: class ``c`` with ``n_c``
samples sends ``round(val_fraction * n_c)`` of them, chosen at random, to validation. So
the class histogram of both parts follows the whole set's, which matters for small sets.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_array, as_flag, as_labels, as_real, as_rng
from .labelled import LabelledImages

__all__ = ["split_indices", "train_val_split"]


def split_indices(labels, val_fraction: float, *, stratify: bool = True, seed=0):
    """Indices ``(train_idx, val_idx)`` of a random split, each sorted ascending.

    ``labels`` is ``(N,)`` class indices. Without ``stratify`` exactly
    ``round(val_fraction * N)`` random samples go to validation; with it, each class ``c``
    sends ``round(val_fraction * n_c)`` of its ``n_c`` samples. ``seed`` is an int or a
    ``numpy.random.Generator``; the same seed gives the same split.

    Raises ``ValueError`` when either part would be empty.
    """
    labels = as_labels(labels, "labels")
    val_fraction = as_real(val_fraction, "val_fraction", low=0.0, high=1.0)
    stratify = as_flag(stratify, "stratify")
    rng = as_rng(seed, "seed")
    n = labels.shape[0]
    if stratify:
        val_parts = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            k = int(round(val_fraction * members.size))
            val_parts.append(rng.permutation(members)[:k])
        val_idx = np.sort(np.concatenate(val_parts)) if val_parts else np.empty(0, np.int64)
    else:
        val_idx = np.sort(rng.permutation(n)[: int(round(val_fraction * n))])
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    train_idx = np.flatnonzero(mask)
    if val_idx.size == 0 or train_idx.size == 0:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} samples"
            + (" (rounded per class)" if stratify else "")
            + f" leaves {train_idx.size} for training and {val_idx.size} for validation; "
            "both parts must be non-empty"
        )
    return train_idx.astype(np.int64), val_idx.astype(np.int64)


def train_val_split(x, y, val_fraction: float = 0.2, *, stratify: bool = True, seed=0):
    """Split ``(x, y)`` into training and validation sets at random.

    Parameters
    ----------
    x:
        ``(N, ...)`` samples, e.g. an ``(N, C, H, W)`` batch of images.
    y:
        ``(N,)`` integer class labels.
    val_fraction:
        Share of the samples that go to validation, in ``[0, 1]``.
    stratify:
        Keep each class's share in both parts (see the module docstring).
    seed:
        int or ``numpy.random.Generator``; the same seed gives the same split.

    Returns
    -------
    ``(train, val)``, two :class:`LabelledImages` ``(images, labels)``, each in the
    original order of the samples: ``(x_tr, y_tr), (x_val, y_val) = train_val_split(x, y)``.
    The arrays are new copies.
    """
    x = as_array(x, "x")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (N, ...) array, got shape {x.shape}")
    y = as_labels(y, "y", length=x.shape[0])
    train_idx, val_idx = split_indices(y, val_fraction, stratify=stratify, seed=seed)
    return (
        LabelledImages(x[train_idx], y[train_idx]),
        LabelledImages(x[val_idx], y[val_idx]),
    )
