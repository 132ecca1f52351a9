"""Elementwise activations (any input shape).

Only ``LeakyReLU``, ``ELU`` and ``GELU`` take arguments; none has parameters.

=========  ==========================================  ===========================================
layer      forward ``y = f(x)``                        ``f'(x)`` (what backward multiplies by)
=========  ==========================================  ===========================================
ReLU       ``max(x, 0)``                               ``1`` if ``x > 0`` else ``0``
LeakyReLU  ``x`` if ``x > 0`` else ``a x``             ``1`` if ``x > 0`` else ``a``
Sigmoid    ``1 / (1 + exp(-x))``                       ``y (1 - y)``
Tanh       ``tanh(x)``                                 ``1 - y^2``
ELU        ``x`` if ``x > 0`` else ``a (exp(x) - 1)``  ``1`` if ``x > 0`` else ``a exp(x)``
SELU       ``scale * ELU(x)``, torch's constants      ``scale * ELU'(x)``
GELU       ``x Phi(x)``, Phi the normal CDF            ``Phi(x) + x phi(x)``
=========  ==========================================  ===========================================

At the kinks (``x = 0``) the derivatives are torch's: ReLU 0, LeakyReLU ``a``, ELU/SELU the
left-hand value. Every layer matches the ``torch.nn`` layer of the same name (tests/nn).
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from .base import Layer

__all__ = ["ELU", "GELU", "LeakyReLU", "ReLU", "SELU", "Sigmoid", "Tanh"]

# torch.nn.SELU's constants (Klambauer et al., 2017): the fixed point mean 0, variance 1.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _coefficient(value, name: str, who: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        need = "a finite number > 0" if positive else "finite"
        raise ValueError(f"{who}: {name} must be {need}, got {value!r}")
    return value


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


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise (``torch.nn.LeakyReLU``).

    A small slope (default 0.01) for negative inputs, so a unit that is negative for every
    input still passes a gradient and can recover (a "dead" ReLU cannot).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = _coefficient(negative_slope, "negative_slope", "LeakyReLU", False)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        self._cache = x > 0
        return np.where(self._cache, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        positive = self._cached()
        dy = self._upstream(dy, positive.shape)
        return np.where(positive, dy, dy * dy.dtype.type(self.negative_slope))


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


class Tanh(Layer):
    """``y = tanh(x)``, a sigmoid rescaled to ``(-1, 1)``: ``tanh(x) = 2 sigmoid(2x) - 1``.

    Backward ``dx = dy * (1 - y^2)`` (at most 1, at ``x = 0``).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.tanh(self._input(x))
        self._cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self._cached()
        dy = self._upstream(dy, y.shape)
        return dy * (1 - y * y)


class ELU(Layer):
    """Exponential linear unit (Clevert et al., 2016; ``torch.nn.ELU``).

    ::

        y = x                      (x > 0)        dy/dx = 1
        y = alpha (exp(x) - 1)     (x <= 0)       dy/dx = alpha exp(x)

    Smooth for ``alpha = 1``; negative outputs down to ``-alpha`` pull the mean activation
    towards 0. ``exp`` is only evaluated on ``min(x, 0)``, so large inputs cannot overflow.
    """

    _scale = 1.0

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _coefficient(alpha, "alpha", type(self).__name__, True)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        t = x.dtype.type
        positive = x > 0
        exp_neg = np.exp(np.minimum(x, 0))  # exp(x) where it is used, 1 elsewhere
        self._cache = (positive, exp_neg)
        negative = t(self.alpha) * np.expm1(np.minimum(x, 0))
        return t(self._scale) * np.where(positive, x, negative)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        positive, exp_neg = self._cached()
        dy = self._upstream(dy, positive.shape)
        t = dy.dtype.type
        slope = np.where(positive, t(1), t(self.alpha) * exp_neg.astype(dy.dtype, copy=False))
        return dy * (t(self._scale) * slope)


class SELU(ELU):
    """Scaled ELU (Klambauer et al., 2017; ``torch.nn.SELU``): ``y = scale * ELU_alpha(x)``.

    ``alpha = 1.6733`` and ``scale = 1.0507`` are the constants for which activations of
    mean 0 and variance 1 stay so from layer to layer (with LeCun-normal weights,
    variance ``1 / fan_in``): "self-normalising" networks without batch norm.
    """

    _scale = SELU_SCALE

    def __init__(self) -> None:
        super().__init__(alpha=SELU_ALPHA)

    def extra_repr(self) -> str:
        return ""


@functools.cache
def _erf():
    """``math.erf`` as a numpy ufunc (numba; numpy has no erf and scipy is not needed)."""
    import numba

    @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
    def erf(x):
        return math.erf(x)

    return erf


class GELU(Layer):
    """Gaussian error linear unit (Hendrycks & Gimpel, 2016; ``torch.nn.GELU``).

    The activation of BERT, GPT and vision transformers: ``y = x Phi(x)``, the input
    weighted by the probability that a standard normal variable is below it::

        Phi(x) = (1 + erf(x / sqrt(2))) / 2        dy/dx = Phi(x) + x phi(x)

    with ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)``. ``approximate="tanh"`` uses
    ``Phi(x) ~ (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2`` instead, as torch does.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        t = x.dtype.type
        if self.approximate == "tanh":
            k = t(math.sqrt(2 / math.pi))
            th = np.tanh(k * (x + t(0.044715) * x * x * x))
            cdf = t(0.5) * (1 + th)
            dcdf = t(0.5) * (1 - th * th) * k * (1 + t(3 * 0.044715) * x * x)  # d cdf / dx
        else:
            cdf = t(0.5) * (1 + _erf()(x * t(1 / math.sqrt(2))))
            dcdf = np.exp(t(-0.5) * x * x) * t(1 / math.sqrt(2 * math.pi))  # phi(x)
        self._cache = cdf + x * dcdf
        return x * cdf

    def backward(self, dy: np.ndarray) -> np.ndarray:
        slope = self._cached()
        dy = self._upstream(dy, slope.shape)
        return dy * slope.astype(dy.dtype, copy=False)
