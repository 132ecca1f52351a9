"""Pooling layers, ``MaxPool2d`` and ``AvgPool2d``, on :mod:`cvcourse.kernels`.

Both take ``x (N, C, H, W)`` and return ``(N, C, H_out, W_out)`` with torch's output size
``H_out = floor((H + 2*padding - dilation*(k - 1) - 1) / stride) + 1`` (``stride`` defaults
to ``kernel_size``; ``padding <= kernel_size // 2`` as in torch; no ``ceil_mode``). They have
no parameters.
"""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_flag
from cvcourse.kernels import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from cvcourse.kernels._validate import as_pair

from .base import Layer

__all__ = ["AvgPool2d", "MaxPool2d"]


_Pair = tuple[int, int]


def _window(who, kernel_size, stride, padding, dilation=1) -> tuple[_Pair, _Pair, _Pair, _Pair]:
    try:
        kernel = as_pair(kernel_size, "kernel_size", minimum=1)
        stride = kernel if stride is None else as_pair(stride, "stride", minimum=1)
        padding = as_pair(padding, "padding", minimum=0)
        dilation = as_pair(dilation, "dilation", minimum=1)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{who}: {exc}") from exc
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{who}: padding must be at most half of kernel_size (as in torch), got "
            f"padding={padding} for kernel_size={kernel}"
        )
    return kernel, stride, padding, dilation


class MaxPool2d(Layer):
    """Max pooling (``torch.nn.MaxPool2d``).

    ::

        y[n, c, i, j] = max_{u, v} xpad[n, c, i*s + u*d, j*s + v*d]      (xpad: -inf padding)

    Backward routes each ``dy[n, c, i, j]`` to the position of its window's maximum (the
    first one in row-major order on ties, torch's choice); overlapping windows add up::

        dx[n, c].flat[k] = sum of dy[n, c, i, j] over the windows whose argmax is k

    Parameters
    ----------
    kernel_size, stride, padding, dilation : int or tuple of int
        An int or an ``(h, w)`` pair; ``stride`` defaults to ``kernel_size``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = _window(
            "MaxPool2d", kernel_size, stride, padding, dilation
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}"
        )

    def _args(self) -> tuple[_Pair, _Pair, _Pair, _Pair]:
        return self.kernel_size, self.stride, self.padding, self.dilation

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x, 4, "(N, C, H, W)")
        with self._named_errors():
            y, indices = max_pool2d(x, *self._args(), return_indices=True)
        self._cache = (x, indices)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, indices = self._cached()
        dy = self._upstream(dy, indices.shape)
        with self._named_errors():
            return max_pool2d_backward(dy.astype(x.dtype, copy=False), x, indices, *self._args())


class AvgPool2d(Layer):
    """Average pooling (``torch.nn.AvgPool2d``, no ``ceil_mode``/``divisor_override``).

    ::

        y[n, c, i, j] = (sum of the window's taps inside x) / divisor

    with ``divisor = kH*kW`` if ``count_include_pad`` (padding counts as zeros), else the
    number of taps inside ``x``. Backward spreads each ``dy[n, c, i, j] / divisor`` evenly
    over its window's taps inside ``x`` (overlapping windows add up).

    Parameters
    ----------
    kernel_size, stride, padding : int or tuple of int
        An int or an ``(h, w)`` pair; ``stride`` defaults to ``kernel_size``.
    count_include_pad : bool
        Whether padded zeros count in the divisor.
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding, _ = _window(
            "AvgPool2d", kernel_size, stride, padding
        )
        self.count_include_pad = as_flag(count_include_pad, "count_include_pad", "AvgPool2d")

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if not self.count_include_pad:
            text += ", count_include_pad=False"
        return text

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.count_include_pad

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x, 4, "(N, C, H, W)")
        with self._named_errors():
            y = avg_pool2d(x, *self._args())
        self._cache = (x.shape, x.dtype, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x_shape, x_dtype, out_shape = self._cached()
        dy = self._upstream(dy, out_shape)
        with self._named_errors():
            return avg_pool2d_backward(dy.astype(x_dtype, copy=False), x_shape, *self._args())
