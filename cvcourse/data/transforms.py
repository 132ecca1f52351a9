"""Deterministic transforms of whole datasets: per-channel normalisation and one-hot labels.

    normalize(x, mean=None, std=None)  -> (x_normalised, mean, std)
    one_hot(labels, num_classes=None)  -> (N, K) float32

Compute the statistics on the training set and apply them unchanged to the test set::

    x_train, mean, std = normalize(x_train)
    x_test, _, _ = normalize(x_test, mean, std)
"""

from __future__ import annotations

import numpy as np

from ._validate import as_array, as_images, as_int, as_labels, as_real

__all__ = ["normalize", "one_hot"]


def _channel_vector(value, name: str, channels: int) -> np.ndarray:
    v = as_array(value, name).astype(np.float64)
    if v.ndim == 0:
        v = np.full(channels, float(v))
    if v.shape != (channels,):
        raise ValueError(
            f"{name} must have one value per channel, shape ({channels},), got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def normalize(x, mean=None, std=None, *, eps: float = 1e-7):
    """Standardise each channel: ``out[n, c] = (x[n, c] - mean[c]) / std[c]``.

    Parameters
    ----------
    x:
        ``(N, C, H, W)`` floating-point images.
    mean, std:
        Per-channel statistics, shape ``(C,)`` (or scalars). Both ``None`` (the default):
        computed from ``x`` as ``mean[c] = x[:, c].mean()`` and the population standard
        deviation ``std[c] = sqrt(((x[:, c] - mean[c]) ** 2).mean())``, raised to ``eps``
        where a channel is constant. Give both to apply statistics computed on other data
        (e.g. the training set); ``std`` must then be positive.
    eps:
        Smallest standard deviation used (avoids dividing by zero), > 0.

    Returns
    -------
    ``(out, mean, std)``: ``out`` has ``x``'s shape and dtype; ``mean`` and ``std`` are
    float64 ``(C,)``, exactly what was applied.
    """
    x = as_images(x, "x", floating=True)
    eps = as_real(eps, "eps", low=0.0, high=np.inf)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    channels = x.shape[1]
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (statistics to apply) or neither")
    if mean is None:
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=(0, 2, 3))
        std = np.maximum(x64.std(axis=(0, 2, 3)), eps)
        if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
            raise ValueError("x contains NaN or infinity; its statistics are not finite")
    else:
        mean = _channel_vector(mean, "mean", channels)
        std = _channel_vector(std, "std", channels)
        if np.any(std <= 0):
            raise ValueError(f"std must be positive in every channel, got {std}")
    out = (x - mean[None, :, None, None]) / std[None, :, None, None]
    return out.astype(x.dtype, copy=False), mean, std


def one_hot(labels, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """One-hot encode class indices: ``out[i, k] = 1 if labels[i] == k else 0``.

    ``labels`` is ``(N,)`` integers in ``0..K-1``; ``num_classes`` is ``K`` (default
    ``labels.max() + 1``). Returns a new ``(N, K)`` array of ``dtype`` (float32 by default).
    """
    labels = as_labels(labels, "labels")
    if num_classes is None:
        if labels.size == 0:
            raise ValueError("one_hot of no labels needs num_classes")
        num_classes = int(labels.max()) + 1
    num_classes = as_int(num_classes, "num_classes", low=1)
    if labels.size and labels.max() >= num_classes:
        raise ValueError(
            f"labels has class {labels.max()} but num_classes={num_classes} allows only "
            f"0..{num_classes - 1}"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out
