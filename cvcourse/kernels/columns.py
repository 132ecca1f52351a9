"""im2col / col2im: convolution as a matrix product.

``im2col`` lays every receptive field of the input out as a column, so that a convolution
becomes one matrix product per image (torch's ``F.unfold`` layout):

    cols[n, (c*kh + ky)*kw + kx, oy*Wo + ox] = xpad[n, c, oy*sh + ky*dh, ox*sw + kx*dw]
    y[n] = weight.reshape(G, C*kh*kw) @ cols[n]              (G, Ho*Wo)

``col2im`` is its adjoint (torch's ``F.fold``): it adds every column entry back to the input
position it came from, so overlapping windows accumulate. It turns the gradient of the
columns into the gradient of the input.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import JitOptions
from ._validate import as_float_array, as_pair, output_hw

_JIT = JitOptions(cache=True, nogil=True, parallel=True)


@njit(**_JIT)
def im2col_padded(xpad, kh, kw, sh, sw, dh, dw, ho, wo):
    """Columns of an already zero-padded input: ``(N, C, Hp, Wp) -> (N, C*kh*kw, ho*wo)``."""
    n, c = xpad.shape[0], xpad.shape[1]
    cols = np.empty((n, c * kh * kw, ho * wo), dtype=xpad.dtype)
    for item in prange(n * c):
        b, ch = item // c, item % c
        plane = xpad[b, ch]
        for ky in range(kh):
            for kx in range(kw):
                row = cols[b, (ch * kh + ky) * kw + kx]
                for oy in range(ho):
                    src = plane[oy * sh + ky * dh]
                    dst = row[oy * wo : (oy + 1) * wo]
                    start = kx * dw
                    for ox in range(wo):
                        dst[ox] = src[start + ox * sw]
    return cols


@njit(**_JIT)
def col2im_cropped(cols, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Adjoint of ``im2col_padded`` followed by removing the padding: returns ``(N, c, h, w)``.

    Each work item owns one ``(image, channel)`` plane, so the accumulation has no races.
    """
    n = cols.shape[0]
    hp, wp = h + 2 * ph, w + 2 * pw
    out = np.empty((n, c, h, w), dtype=cols.dtype)
    for item in prange(n * c):
        b, ch = item // c, item % c
        plane = np.zeros((hp, wp), dtype=cols.dtype)
        for ky in range(kh):
            for kx in range(kw):
                row = cols[b, (ch * kh + ky) * kw + kx]
                for oy in range(ho):
                    dst = plane[oy * sh + ky * dh]
                    src = row[oy * wo : (oy + 1) * wo]
                    start = kx * dw
                    for ox in range(wo):
                        dst[start + ox * sw] += src[ox]
        for r in range(h):
            out[b, ch, r] = plane[r + ph, pw : pw + w]
    return out


@njit(**_JIT)
def pad_planes(x, ph, pw, extra_rows=0):
    """Zero-pad the last two axes: ``(N, C, H, W) -> (N, C, H + 2*ph + extra_rows, W + 2*pw)``.

    ``extra_rows`` more zero rows go at the bottom (the direct kernels read past the last
    output row when they round their loop length up).
    """
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * ph + extra_rows, w + 2 * pw), dtype=x.dtype)
    for item in prange(n * c):
        b, ch = item // c, item % c
        for r in range(h):
            out[b, ch, ph + r, pw : pw + w] = x[b, ch, r]
    return out


def pad_input(x: np.ndarray, padding: tuple[int, int], extra_rows: int = 0) -> np.ndarray:
    """``x`` zero-padded by ``padding = (ph, pw)`` on both sides, ``extra_rows`` more below.

    ``x`` itself when there is nothing to add.
    """
    if padding == (0, 0) and extra_rows == 0:
        return x
    return pad_planes(x, padding[0], padding[1], extra_rows)


_Pair = tuple[int, int]


def _window_args(
    x_shape, kernel_size, stride, padding, dilation, what
) -> tuple[_Pair, _Pair, _Pair, _Pair, int, int]:
    """``kernel, stride, padding, dilation`` as ``(h, w)`` pairs, and the output size."""
    kernel = as_pair(kernel_size, "kernel_size", minimum=1)
    stride = as_pair(stride, "stride", minimum=1)
    padding = as_pair(padding, "padding", minimum=0)
    dilation = as_pair(dilation, "dilation", minimum=1)
    ho, wo = output_hw(x_shape, kernel, stride, padding, dilation, what)
    return kernel, stride, padding, dilation, ho, wo


def im2col(x, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Unfold sliding windows into columns, like ``torch.nn.functional.unfold``.

    Parameters
    ----------
    x : np.ndarray
        ``(N, C, H, W)`` float32 or float64.
    kernel_size, stride, padding, dilation : int or tuple of int
        An int or an ``(h, w)`` pair.

    Returns
    -------
    cols : np.ndarray
        Shape ``(N, C*kh*kw, Ho*Wo)``, with
        ``cols[n, (c*kh + ky)*kw + kx, oy*Wo + ox] = xpad[n, c, oy*sh + ky*dh, ox*sw + kx*dw]``
        and ``Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1`` (same for ``Wo``).
    """
    x = as_float_array(x, "x", ndim=4)
    kernel, step, pad, dil, ho, wo = _window_args(
        x.shape, kernel_size, stride, padding, dilation, "the window"
    )
    return im2col_padded(pad_input(x, pad), *kernel, *step, *dil, ho, wo)


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Fold columns back into images, summing overlaps, like ``torch.nn.functional.fold``.

    The adjoint of :func:`im2col`: for any ``x`` and ``cols`` of matching shapes,
    ``sum(im2col(x) * cols) == sum(x * col2im(cols))``.

    Parameters
    ----------
    cols : np.ndarray
        ``(N, C*kh*kw, Ho*Wo)`` float32 or float64.
    output_size : int or tuple of int
        ``(H, W)`` of the image to rebuild (an int means square).
    kernel_size, stride, padding, dilation : int or tuple of int
        An int or an ``(h, w)`` pair, as given to im2col.

    Returns
    -------
    np.ndarray
        ``(N, C, H, W)``.
    """
    cols = as_float_array(cols, "cols", ndim=3, layout="(N, C*kh*kw, L)")
    height, width = as_pair(output_size, "output_size", minimum=1)
    kernel, step, pad, dil, ho, wo = _window_args(
        (height, width), kernel_size, stride, padding, dilation, "the window"
    )
    taps = kernel[0] * kernel[1]
    if cols.shape[1] % taps or cols.shape[2] != ho * wo:
        raise ValueError(
            f"cols has shape {cols.shape} but a {kernel[0]}x{kernel[1]} window over a "
            f"{height}x{width} image (stride {step}, padding {pad}, dilation {dil}) "
            f"needs (N, C*{taps}, {ho * wo})"
        )
    return col2im_cropped(
        cols, cols.shape[1] // taps, height, width, *kernel, *step, *pad, *dil, ho, wo
    )
