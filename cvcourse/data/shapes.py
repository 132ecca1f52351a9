"""Procedurally drawn shapes: the "find the crosses and noughts" example of the first lecture.

    load_shapes(n, size=28, classes=SHAPE_CLASSES, noise=0.0, seed=0)
        -> LabelledImages(images (n, 1, size, size) float32 in {0, 1}, labels (n,) int64)

Each image is black (0) with one white (1) outline shape, drawn at a random scale and
position. With ``r`` the shape's half-width, ``(u, v)`` a pixel centre's offset from the
shape's centre (``v`` pointing down) and ``t`` the stroke width, a pixel is white when:

    cross     (an "x")  max(|u|, |v|) <= r  and  min(|u - v|, |u + v|) / sqrt(2) <= t / 2
    nought    (an "o")  | sqrt(u^2 + v^2) - (r - t / 2) | <= t / 2
    plus      (a "+")   (|u| <= t / 2 and |v| <= r)  or  (|v| <= t / 2 and |u| <= r)
    square    outline   r - t <= max(|u|, |v|) <= r
    triangle  outline   inside the triangle with apex (0, -r) and base corners (+-r, r),
                        and within t of one of its edges

Per image: ``r`` is uniform in ``[0.2, 0.45] * size``, ``t = max(1.5, r / 4)``, and the
centre is uniform over the positions that keep the shape's box inside the image. The labels
are balanced: the ``n`` labels are ``arange(n) % len(classes)`` in a random order, so every
class has ``n // K`` or ``n // K + 1`` images. ``noise`` flips each pixel independently
with that probability (salt-and-pepper), so the images stay binary.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments give the
same images on every run.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_int, as_real, as_rng
from .labelled import LabelledImages

__all__ = ["SHAPE_CLASSES", "load_shapes"]

#: Every shape :func:`load_shapes` can draw, in the default label order.
SHAPE_CLASSES: tuple[str, ...] = ("cross", "nought", "plus", "square", "triangle")

_MIN_SIZE = 10
_SCALE = (0.2, 0.45)  # half-width r as a fraction of the image size


def _draw(name: str, u: np.ndarray, v: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Boolean masks ``(M, S, S)`` of shape ``name``; ``r``, ``t`` are ``(M, 1, 1)``."""
    au, av = np.abs(u), np.abs(v)
    if name == "cross":
        diagonal = np.minimum(np.abs(u - v), np.abs(u + v)) / np.sqrt(2.0)
        return (np.maximum(au, av) <= r) & (diagonal <= t / 2)
    if name == "nought":
        return np.abs(np.hypot(u, v) - (r - t / 2)) <= t / 2
    if name == "plus":
        return ((au <= t / 2) & (av <= r)) | ((av <= t / 2) & (au <= r))
    if name == "square":
        box = np.maximum(au, av)
        return (box <= r) & (box >= r - t)
    # triangle: distances to its three edges (positive inside)
    base = r - v
    right = (v + r - 2 * u) / np.sqrt(5.0)
    left = (v + r + 2 * u) / np.sqrt(5.0)
    edge = np.minimum(np.minimum(base, right), left)
    return (edge >= 0) & (edge <= t)


def load_shapes(
    n: int,
    size: int = 28,
    classes=SHAPE_CLASSES,
    noise: float = 0.0,
    seed=0,
) -> LabelledImages:
    """Draw ``n`` binary images of simple shapes (crosses, noughts, ...) with their labels.

    Parameters
    ----------
    n:
        Number of images, >= 1.
    size:
        Height and width of each image in pixels, >= 10.
    classes:
        Which shapes to draw, a sequence of distinct names from :data:`SHAPE_CLASSES`
        (``"cross"``, ``"nought"``, ``"plus"``, ``"square"``, ``"triangle"``). Label ``k``
        means ``classes[k]``; e.g. ``classes=("cross", "nought")`` gives the two-class
        problem of the lecture.
    noise:
        Probability, in ``[0, 1]``, that each pixel is flipped (0 <-> 1).
    seed:
        int or ``numpy.random.Generator``; the same seed gives the same images.

    Returns
    -------
    :class:`LabelledImages` ``(images, labels)``: float32 ``(n, 1, size, size)`` with
    values 0 and 1 only (white shape on black), and int64 ``(n,)`` in ``0..K-1``, balanced
    across the ``K`` classes. The drawing rules are in the module docstring.
    """
    n = as_int(n, "n", low=1)
    size = as_int(size, "size", low=_MIN_SIZE)
    classes = _as_classes(classes)
    noise = as_real(noise, "noise", low=0.0, high=1.0)
    rng = as_rng(seed, "seed")

    labels = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)
    r = rng.uniform(_SCALE[0], _SCALE[1], size=n) * size
    t = np.maximum(1.5, r / 4)
    cx = rng.uniform(r, size - r)  # the box [c - r, c + r] stays inside [0, size]
    cy = rng.uniform(r, size - r)

    centres = np.arange(size, dtype=np.float64) + 0.5  # pixel centres
    images = np.zeros((n, size, size), dtype=bool)
    for k, name in enumerate(classes):
        idx = np.flatnonzero(labels == k)
        if idx.size == 0:
            continue
        u = centres[None, None, :] - cx[idx, None, None]
        v = centres[None, :, None] - cy[idx, None, None]
        images[idx] = _draw(name, u, v, r[idx, None, None], t[idx, None, None])
    if noise > 0:
        images ^= rng.random(images.shape) < noise
    return LabelledImages(images.astype(np.float32)[:, None], labels)


def _as_classes(classes) -> tuple[str, ...]:
    """``classes`` as a tuple of distinct, known shape names."""
    if isinstance(classes, str) or not hasattr(classes, "__iter__"):
        raise TypeError(
            f"classes must be a sequence of shape names such as ('cross', 'nought'), "
            f"got {classes!r}"
        )
    names = tuple(classes)
    unknown = [c for c in names if c not in SHAPE_CLASSES]
    if unknown:
        raise ValueError(
            f"classes has unknown shape(s) {unknown}; valid names: {', '.join(SHAPE_CLASSES)}"
        )
    if not names or len(set(names)) != len(names):
        raise ValueError(f"classes must name at least one shape, each once; got {names}")
    return names
