"""Random augmentations of NCHW batches, each drawing from a numpy Generator you pass.

    horizontal_flip(x)                            mirror every image left-right
    random_horizontal_flip(x, p=0.5, rng=...)     mirror each image with probability p
    random_crop(x, size=None, padding=4, rng=...) zero-pad, then crop at a random place
    gaussian_noise(x, std, rng=..., clip=None)    add N(0, std^2) noise to every value

``rng`` is a ``numpy.random.Generator`` (advanced by each call, so consecutive batches get
different draws), an int seed, or ``None`` for fresh randomness. Every function returns a
new array and leaves ``x`` untouched. In a training loop::

    rng = np.random.default_rng(0)
    for xb, yb in loader:
        xb = random_crop(random_horizontal_flip(xb, rng=rng), padding=4, rng=rng)
"""

from __future__ import annotations

import numpy as np

from ._validate import as_images, as_int, as_real, as_rng

__all__ = ["gaussian_noise", "horizontal_flip", "random_crop", "random_horizontal_flip"]


def horizontal_flip(x) -> np.ndarray:
    """``out[n, c, h, w] = x[n, c, h, W - 1 - w]`` for a ``(N, C, H, W)`` batch."""
    x = as_images(x, "x")
    return np.ascontiguousarray(x[..., ::-1])


def random_horizontal_flip(x, p: float = 0.5, rng=None) -> np.ndarray:
    """Mirror each image of a ``(N, C, H, W)`` batch left-right with probability ``p``.

    Images are flipped independently: one uniform draw ``u`` per image, flipped where ``u < p``.
    """
    x = as_images(x, "x")
    p = as_real(p, "p", low=0.0, high=1.0)
    rng = as_rng(rng)
    flip = rng.random(x.shape[0]) < p
    out = np.array(x, copy=True)
    out[flip] = out[flip][..., ::-1]
    return out


def random_crop(x, size=None, padding: int = 4, rng=None) -> np.ndarray:
    """Zero-pad each image by ``padding`` pixels on every side, then cut a random window.

    Parameters
    ----------
    x:
        ``(N, C, H, W)`` batch.
    size:
        Window ``(h, w)`` or an int for a square; default ``(H, W)``, so the output has
        the input's shape (the classic CIFAR augmentation: pad 4, crop 32).
    padding:
        Zeros added on each side, >= 0.
    rng:
        Generator, seed or None. Each image gets its own top-left corner ``(i, j)``,
        uniform in ``0..H + 2*padding - h`` and ``0..W + 2*padding - w``.

    Returns
    -------
    ``(N, C, h, w)`` with ``out[n] = padded[n, :, i:i + h, j:j + w]``.
    """
    x = as_images(x, "x")
    padding = as_int(padding, "padding", low=0)
    n, _, height, width = x.shape
    if size is None:
        h, w = height, width
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        h, w = (as_int(s, "size", low=1) for s in size)
    else:
        h = w = as_int(size, "size", low=1)
    ph, pw = height + 2 * padding, width + 2 * padding
    if h > ph or w > pw:
        raise ValueError(
            f"crop size ({h}, {w}) is larger than the padded images ({ph}, {pw}) "
            f"(x {x.shape}, padding {padding})"
        )
    rng = as_rng(rng)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    top = rng.integers(0, ph - h + 1, size=n)
    left = rng.integers(0, pw - w + 1, size=n)
    rows = top[:, None] + np.arange(h)[None, :]  # (N, h)
    cols = left[:, None] + np.arange(w)[None, :]  # (N, w)
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def gaussian_noise(x, std: float, rng=None, clip=None) -> np.ndarray:
    """``out = x + std * z`` with ``z ~ N(0, 1)`` drawn independently for every value.

    ``x`` is a floating ``(N, C, H, W)`` batch (the result keeps its dtype); ``std >= 0``.
    ``clip=(low, high)`` clips the result to that range (e.g. ``(0, 1)`` for images).
    """
    x = as_images(x, "x", floating=True)
    std = as_real(std, "std", low=0.0, high=np.inf)
    rng = as_rng(rng)
    out = x + (std * rng.standard_normal(x.shape)).astype(x.dtype)
    if clip is not None:
        if not (isinstance(clip, (tuple, list)) and len(clip) == 2):
            raise TypeError(f"clip must be a pair (low, high) or None, got {clip!r}")
        low = as_real(clip[0], "clip[0]", low=-np.inf, high=np.inf)
        high = as_real(clip[1], "clip[1]", low=-np.inf, high=np.inf)
        if low > high:
            raise ValueError(f"clip must have low <= high, got {clip!r}")
        np.clip(out, low, high, out=out)
    return out
