"""Inverted dropout."""

from __future__ import annotations

import numbers

import numpy as np

from . import init
from .base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout (``torch.nn.Dropout``).

    In training mode each element is zeroed with probability ``p`` and the survivors are
    scaled by ``1 / (1 - p)``::

        mask = (u >= p) / (1 - p),   u ~ U[0, 1) per element;   y = x * mask

    so that ``E[y] = x`` and evaluation needs no rescaling: in evaluation mode (``eval()``)
    ``y = x``. ``backward`` applies the same mask, ``dx = dy * mask`` (the identity in eval
    mode). The mask is drawn from the layer's own generator (``seed=``/``rng=``), so a seeded
    layer drops the same elements on every run.

    Parameters
    ----------
    p : float
        Drop probability, ``0 <= p <= 1`` (``p = 1`` zeroes everything, as torch).
    seed, rng : int or np.random.Generator, optional
        The generator of the masks (an int, or an ``np.random.Generator``).
    """

    def __init__(self, p: float = 0.5, *, seed=None, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"Dropout: p must be a number in [0, 1], got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p!r}")
        self.p: float = float(p)
        self.rng: np.random.Generator = init.as_generator(seed, rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        if not self.training or self.p == 0.0:
            self._cache = (None, x.shape)
            return x
        if self.p == 1.0:
            mask = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = self.rng.random(x.shape) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        self._cache = (mask, x.shape)
        return x * mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        mask, shape = self._cached()
        dy = self._upstream(dy, shape)
        return dy if mask is None else dy * mask
