"""2-D max and average pooling, forward and backward: the public, validating layer.

Names, arguments and results follow ``torch.nn.functional`` (NCHW, float32 or float64):
:func:`max_pool2d` with torch's flat argmax indices, :func:`avg_pool2d`, and their
backward functions, which compute what torch's autograd computes. There is no
``ceil_mode`` and no ``divisor_override``.

Sizes: for an input ``(N, C, H, W)``, kernel ``(kh, kw)``, stride ``(sh, sw)``, padding
``(ph, pw)`` and dilation ``(dh, dw)`` (1 for average pooling), the output is
``(N, C, Ho, Wo)`` with

    Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1,   Wo likewise.

Every argument is checked here, before the compiled kernels in ``_pool_numba.py`` run,
since those do no bounds checking. Torch's limit on the padding applies: at most half the
kernel size in each dimension (``ph <= kh // 2``, ``pw <= kw // 2``).

The 2x2, stride-2, unpadded case (the course's networks) runs dedicated kernels; every other
geometry runs the general ones. Both give torch's results.
"""

from __future__ import annotations

import functools
import numbers
from typing import NamedTuple

import numpy as np

from cvcourse._checks import as_flag

from . import _pool_numba as kernels
from ._validate import as_float_array, as_pair, check_grad_shape, output_hw, same_dtype

__all__ = ["avg_pool2d", "avg_pool2d_backward", "max_pool2d", "max_pool2d_backward"]

# Stands in for ``indices`` when the 2x2 kernel is asked not to write them. Same type as a
# real indices array (4-D C-contiguous int64), so it does not compile a second version.
_NO_INDICES = np.zeros((1, 1, 1, 1), dtype=np.int64)


class PoolGeometry(NamedTuple):
    """A validated pooling window and the output size it gives.

    (A NamedTuple rather than a frozen dataclass: it is built on every call, and that is
    a few microseconds cheaper, which shows on the smallest workloads.)
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]

    @property
    def is_2x2(self) -> bool:
        """The specialised case: 2x2 window, stride 2, no padding, no dilation."""
        return (
            self.kernel == (2, 2)
            and self.stride == (2, 2)
            and self.padding == (0, 0)
            and self.dilation == (1, 1)
        )

    def output_shape(self, x_shape) -> tuple[int, int, int, int]:
        return (x_shape[0], x_shape[1], *self.out_hw)

    def window_args(self) -> tuple[int, int, int, int, int, int]:
        """``kh, kw, sh, sw, ph, pw`` as the general kernels take them."""
        return (*self.kernel, *self.stride, *self.padding)


def pool_geometry(x_shape, kernel_size, stride, padding, dilation, op: str) -> PoolGeometry:
    """Validate a pooling window against an input shape ``(N, C, H, W)``.

    ``stride=None`` means ``stride = kernel_size`` (torch's default). Raises ``TypeError``
    for non-integers, ``ValueError`` for non-positive sizes, a padding above half the
    kernel, or a window larger than the padded input.
    """
    kernel = as_pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else as_pair(stride, "stride", minimum=1)
    padding = as_pair(padding, "padding", minimum=0)
    dilation = as_pair(dilation, "dilation", minimum=1)
    # torch: "pad should be smaller than or equal to half of kernel size" (the undilated size)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most half of kernel_size (padding <= kernel_size // 2 in "
            f"each dimension, as in torch), got padding={padding} for kernel_size={kernel}"
        )
    out_hw = output_hw(x_shape, kernel, stride, padding, dilation, f"the {op} window")
    return PoolGeometry(kernel, stride, padding, dilation, out_hw)


def _is_plain(value) -> bool:
    """An exact ``int``, ``None`` or a 2-tuple of exact ints (bools and numpy ints are not)."""
    if value is None or type(value) is int:
        return True
    return type(value) is tuple and len(value) == 2 and all(type(v) is int for v in value)


@functools.lru_cache(maxsize=256)
def _cached_geometry(hw, kernel_size, stride, padding, dilation, op) -> PoolGeometry:
    return pool_geometry((0, 0, *hw), kernel_size, stride, padding, dilation, op)


def _geometry(x_shape, kernel_size, stride, padding, dilation, op) -> PoolGeometry:
    # Validating the window costs a few microseconds per call, which is noticeable on the
    # smallest course workloads, so valid geometries are remembered. Only plain ints are
    # keys: True == 1 with the same hash, so a cached 1 must never answer for True (which
    # validation rejects); anything else is validated afresh every time. Errors are not
    # cached (lru_cache does not store exceptions).
    if all(_is_plain(v) for v in (kernel_size, stride, padding, dilation)):
        return _cached_geometry(tuple(x_shape[2:]), kernel_size, stride, padding, dilation, op)
    return pool_geometry(x_shape, kernel_size, stride, padding, dilation, op)


def _for_kernel(array: np.ndarray) -> np.ndarray:
    # Read-only or misaligned arrays are distinct numba types and would compile another
    # copy of every kernel; a copy here is cheaper than that (and rare).
    if not (array.flags.writeable and array.flags.aligned):
        return array.copy()
    return array


def _check_indices(indices, expected_shape) -> np.ndarray:
    """``indices`` as C-contiguous int64 of the forward output's shape (values checked later)."""
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":  # signed or unsigned integers; not bool
        raise TypeError(
            f"indices must be an integer array (the int64 indices of max_pool2d), "
            f"got dtype {indices.dtype}"
        )
    if tuple(indices.shape) != tuple(expected_shape):
        raise ValueError(
            f"indices has shape {tuple(indices.shape)} but the output of max_pool2d has "
            f"shape {tuple(expected_shape)}: indices must match the forward output"
        )
    # Values beyond int64 wrap to negatives here, which the kernel rejects like any other.
    return _for_kernel(np.ascontiguousarray(indices, dtype=np.int64))


def _check_x_shape(x_shape) -> tuple[int, int, int, int]:
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4:
        raise TypeError(f"x_shape must be a tuple (N, C, H, W) of 4 ints, got {x_shape!r}")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in x_shape):
        raise TypeError(f"x_shape must be a tuple (N, C, H, W) of 4 ints, got {x_shape!r}")
    if min(x_shape) < 1:
        raise ValueError(f"x_shape must be 4 positive ints (N, C, H, W), got {tuple(x_shape)}")
    n, c, h, w = (int(s) for s in x_shape)
    return n, c, h, w


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, return_indices=False):
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    ``x`` is ``(N, C, H, W)``; the result ``y`` is ``(N, C, Ho, Wo)`` (see the module
    docstring) with

        y[n, c, oy, ox] = max over ky < kh, kx < kw of
                          xpad[n, c, oy*sh + ky*dh, ox*sw + kx*dw]

    where ``xpad`` is ``x`` padded with ``-inf``. A NaN in a window makes its output NaN.

    With ``return_indices=True`` also returns ``indices`` (int64, the shape of ``y``): the
    flat position ``ih*W + iw`` of each maximum within its input plane, exactly torch's
    (the first maximum in row-major window order on ties; the last NaN if there are NaNs).
    A window lying wholly in the padding (possible only with dilation) gives ``-inf`` and,
    like torch, an index that is not inside it.
    """
    x = _for_kernel(as_float_array(x, "x", 4))
    geom = _geometry(x.shape, kernel_size, stride, padding, dilation, "max_pool2d")
    return_indices = as_flag(return_indices, "return_indices")
    y = np.empty(geom.output_shape(x.shape), dtype=x.dtype)
    if geom.is_2x2:
        indices = np.empty(y.shape, dtype=np.int64) if return_indices else _NO_INDICES
        kernels.max_pool2d_2x2(x, y, indices, return_indices)
    else:
        indices = np.empty(y.shape, dtype=np.int64)
        kernels.max_pool2d_general(x, y, indices, *geom.window_args(), *geom.dilation)
    return (y, indices) if return_indices else y


def max_pool2d_backward(dy, x, indices, kernel_size, stride=None, padding=0, dilation=1):
    """Gradient of :func:`max_pool2d` with respect to ``x``, as torch's autograd computes it.

    ``dy`` is the upstream gradient, shaped like the forward output ``(N, C, Ho, Wo)``;
    ``x`` is the forward input (only its shape and dtype are used); ``indices`` are the
    indices the forward returned. Returns ``dx`` shaped like ``x``:

        dx[n, c].flat[i] = sum of dy[n, c, oy, ox] over the outputs whose indices[n, c, oy, ox] == i

    (overlapping windows accumulate). Every index must be a tap of its own window, else
    ``ValueError``. The gradient of a window lying wholly in the padding (output ``-inf``,
    only possible with dilation) is dropped: it has no input to go to. (Torch writes it to
    the out-of-window index it returned, which can land in another plane or outside.)
    """
    dy = _for_kernel(as_float_array(dy, "dy", 4))
    x = as_float_array(x, "x", 4)
    same_dtype(x, "x", dy=dy)
    geom = _geometry(x.shape, kernel_size, stride, padding, dilation, "max_pool2d")
    check_grad_shape(dy, geom.output_shape(x.shape), "max_pool2d")
    indices = _check_indices(indices, dy.shape)
    dx = np.empty(x.shape, dtype=dy.dtype)
    if geom.is_2x2:
        bad = kernels.max_pool2d_backward_2x2(dy, indices, dx)
    else:
        bad = kernels.max_pool2d_backward_general(
            dy, indices, dx, *geom.window_args(), *geom.dilation
        )
    if bad:
        height, width = x.shape[2:]
        raise ValueError(
            f"indices has {bad} of {indices.size} entries that are not a tap of their own "
            f"pooling window (values range {indices.min()}..{indices.max()}; valid indices "
            f"lie in [0, H*W) = [0, {height * width}) and inside the window): pass the "
            f"indices max_pool2d(..., return_indices=True) returned for the same arguments"
        )
    return dx


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` (no ceil_mode/divisor_override).

    ``x`` is ``(N, C, H, W)``; returns ``y`` of shape ``(N, C, Ho, Wo)`` (dilation 1) with

        y[n, c, oy, ox] = (sum of the window's taps inside x) / divisor

    where the window covers rows ``oy*sh - ph ... oy*sh - ph + kh - 1`` (columns likewise)
    and ``divisor = kh*kw`` if ``count_include_pad`` (padding counts as zeros), else the
    number of the window's taps inside ``x``.
    """
    x = _for_kernel(as_float_array(x, "x", 4))
    geom = _geometry(x.shape, kernel_size, stride, padding, 1, "avg_pool2d")
    count_include_pad = as_flag(count_include_pad, "count_include_pad")
    y = np.empty(geom.output_shape(x.shape), dtype=x.dtype)
    if geom.is_2x2:
        kernels.avg_pool2d_2x2(x, y)
    else:
        kernels.avg_pool2d_general(x, y, *geom.window_args(), count_include_pad)
    return y


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Gradient of :func:`avg_pool2d` with respect to its input, as torch's autograd.

    ``dy`` is the upstream gradient ``(N, C, Ho, Wo)``, ``x_shape`` the forward input's
    shape ``(N, C, H, W)``. Returns ``dx`` of shape ``x_shape`` and ``dy``'s dtype:

        dx[n, c, ih, iw] = sum over the windows containing (ih, iw) of dy[n, c, oy, ox] / divisor

    with each window's divisor as in :func:`avg_pool2d`; padding receives nothing.
    """
    dy = _for_kernel(as_float_array(dy, "dy", 4))
    x_shape = _check_x_shape(x_shape)
    geom = _geometry(x_shape, kernel_size, stride, padding, 1, "avg_pool2d")
    count_include_pad = as_flag(count_include_pad, "count_include_pad")
    check_grad_shape(dy, geom.output_shape(x_shape), "avg_pool2d")
    dx = np.empty(x_shape, dtype=dy.dtype)
    if geom.is_2x2:
        kernels.avg_pool2d_backward_2x2(dy, dx)
    else:
        kernels.avg_pool2d_backward_general(dy, dx, *geom.window_args(), count_include_pad)
    return dx
