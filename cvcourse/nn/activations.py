"""Elementwise activations: ``ReLU`` and ``Sigmoid`` (any input shape, no parameters)."""

from __future__ import annotations

import numpy as np

from .base import Layer

__all__ = ["ReLU", "Sigmoid"]


class ReLU(Layer):
    """``y = max(x, 0)``; backward ``dx = dy * (x > 0)`` (gradient 0 at ``x = 0``, as torch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        self._cache = x > 0
        return np.where(self._cache, x, np.zeros((), dtype=x.dtype))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        positive = self._cached()
        dy = self._upstream(dy, positive.shape)
        return np.where(positive, dy, np.zeros((), dtype=dy.dtype))


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))``; backward ``dx = dy * y * (1 - y)``.

    Computed without overflow for any ``x``: with ``z = exp(-|x|)`` (at most 1),
    ``y = 1 / (1 + z)`` for ``x >= 0`` and ``y = z / (1 + z)`` for ``x < 0``.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        z = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1.0, z) / (1.0 + z)
        y = y.astype(x.dtype, copy=False)
        self._cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self._cached()
        dy = self._upstream(dy, y.shape)
        return dy * (y * (1 - y))
