"""2-D convolution (torch's cross-correlation), forward and backward, in numba.

Two algorithms, chosen per shape by :func:`choose_algorithm` from measurements
(``bench/bench_kernels.py`` prints both):

* ``"direct"``: stride-1 shifted multiply-adds over the padded row pitch
  (``_conv_direct.py``), register-blocked over output channels and taps. It won on every
  stride-1 shape measured with kernels of 3 or more taps and planes of 128+ outputs, from
  one input channel (where a matrix product would be thin and memory-bound) to 64.
* ``"gemm"``: im2col + a BLAS matrix product per image (``columns.py``). Handles every
  stride, and wins for 1x1 kernels and small planes.

Both compute, with ``Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1`` (same for ``Wo``):

    y[n, g, oy, ox] = b[g] + sum_{c, ky, kx} w[g, c, ky, kx] * xpad[n, grp(g)*C_g + c,
                                                     oy*sh + ky*dh, ox*sw + kx*dw]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvcourse._checks import as_flag, as_int

from . import _conv_direct as direct
from ._validate import (
    as_float_array,
    as_pair,
    check_grad_shape,
    output_hw,
    same_dtype,
)
from .columns import col2im_cropped, im2col_padded, pad_input

ALGORITHMS = ("auto", "direct", "gemm")


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one convolution, validated. Shapes follow torch's NCHW layout."""

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_height: int
    out_width: int

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.out_channels, self.out_height, self.out_width)

    @property
    def taps(self) -> int:
        """Multiply-adds per output element: ``C_g * kh * kw``."""
        return self.in_per_group * self.kernel[0] * self.kernel[1]


def conv_geometry(x_shape, w_shape, stride, padding, dilation, groups) -> ConvGeometry:
    """Validate a convolution's arguments against each other and return its geometry."""
    stride = as_pair(stride, "stride", minimum=1)
    padding = as_pair(padding, "padding", minimum=0)
    dilation = as_pair(dilation, "dilation", minimum=1)
    groups = as_int(groups, "groups", low=1)
    n, c, h, w = x_shape
    g_out, cin_g, kh, kw = w_shape
    if c % groups:
        raise ValueError(f"groups={groups} does not divide the {c} input channels of x {x_shape}")
    if g_out % groups:
        raise ValueError(
            f"groups={groups} does not divide the {g_out} output channels of weight {w_shape}"
        )
    if cin_g * groups != c:
        raise ValueError(
            f"weight {w_shape} expects {cin_g * groups} input channels "
            f"(groups={groups} x {cin_g} per group) but x {x_shape} has {c}"
        )
    ho, wo = output_hw(x_shape, (kh, kw), stride, padding, dilation, f"weight {w_shape}")
    return ConvGeometry(n, c, h, w, g_out, (kh, kw), stride, padding, dilation, int(groups), ho, wo)


def choose_algorithm(geom: ConvGeometry) -> str:
    """The faster algorithm for ``geom``, from measurements on the course's machines.

    The direct kernel needs stride 1, and pays off when its contiguous loops are long and
    its weight-gradient blocking (three taps at a time) is full. Measured, 1 thread, float32
    (direct vs gemm, forward + backward, ms):

    =====================================  =============  ==============
    shape (N, C, H, W) -> G, kernel        direct         im2col + GEMM
    =====================================  =============  ==============
    64x1x28x28 -> 8, 3x3                   0.19 + 0.52    0.46 + 1.0
    64x3x32x32 -> 32, 3x3                  1.4 + 5.9      3.2 + 7.3
    32x64x16x16 -> 64, 3x3                 7.6 + 20       10 + 30
    64x8x28x28 -> 16, 5x5                  4.3 + 7.9      27 + 46
    32x256x16x16 -> 256, 1x1               11 + 80        11 + 27
    32x128x8x8 -> 128, 3x3                 11 + 40        8.0 + 24
    =====================================  =============  ==============
    """
    if geom.stride != (1, 1):
        return "gemm"
    kernel_taps = geom.kernel[0] * geom.kernel[1]
    plane = geom.out_height * geom.out_width
    if kernel_taps < DIRECT_MIN_KERNEL_TAPS or plane < DIRECT_MIN_PLANE:
        return "gemm"
    return "direct"


# Below these the direct kernel loses (see the table in choose_algorithm): with 1x1 or
# 1x2 kernels its weight gradient wastes most of its 2x3 blocking, and on planes of a few
# dozen outputs its loops are too short to amortise their setup.
DIRECT_MIN_KERNEL_TAPS = 3
DIRECT_MIN_PLANE = 128


def _resolve(algorithm: str, geom: ConvGeometry) -> str:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm == "auto":
        return choose_algorithm(geom)
    if algorithm == "direct" and geom.stride != (1, 1):
        raise ValueError(f"the direct algorithm needs stride 1, got stride {geom.stride}")
    return algorithm


def _check_conv_inputs(x, weight):
    x = as_float_array(x, "x", ndim=4, layout="(N, C, H, W)")
    weight = as_float_array(
        weight, "weight", ndim=4, layout="(out_channels, in_channels // groups, kH, kW)"
    )
    same_dtype(x, "x", weight=weight)
    return x, weight


def conv2d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"
) -> np.ndarray:
    """2-D convolution (cross-correlation), like ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : np.ndarray
        Input ``(N, C, H, W)``, float32 or float64.
    weight : np.ndarray
        ``(G, C // groups, kh, kw)``, same dtype as ``x``.
    bias : np.ndarray or None
        ``(G,)`` or ``None``.
    stride, padding, dilation : int or tuple of int
        An int or an ``(h, w)`` pair; padding is zeros on both sides.
    groups : int
        Input and output channels split into this many independent groups.
    algorithm : {"auto", "direct", "gemm"}
        ``"auto"`` (measured choice), ``"direct"`` (stride 1 only) or ``"gemm"``.

    Returns
    -------
    y : np.ndarray
        Shape ``(N, G, Ho, Wo)``, ``Ho = floor((H + 2*ph - dh*(kh-1) - 1)/sh) + 1``,
        ``y[n, g] = bias[g] + sum_{c, ky, kx} weight[g, c, ky, kx] * xpad[n, c', oy*sh + ky*dh,
        ox*sw + kx*dw]`` with ``c'`` the channel ``c`` of ``g``'s group.
    """
    x, weight = _check_conv_inputs(x, weight)
    geom = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    if bias is not None:
        bias = as_float_array(bias, "bias", ndim=1, layout="(out_channels,)")
        same_dtype(x, "x", bias=bias)
        if bias.shape[0] != geom.out_channels:
            raise ValueError(
                f"bias has shape {bias.shape} but weight {weight.shape} has "
                f"{geom.out_channels} output channels"
            )
    if _resolve(algorithm, geom) == "direct":
        return _forward_direct(x, weight, bias, geom)
    return _forward_gemm(x, weight, bias, geom)


def conv2d_backward(
    dy, x, weight, stride=1, padding=0, dilation=1, groups=1, bias=True, *, algorithm="auto"
):
    """Gradients of :func:`conv2d` for the upstream gradient ``dy = dL/dy``.

    Parameters
    ----------
    dy : np.ndarray
        ``(N, G, Ho, Wo)``, the shape of the forward output.
    x, weight, stride, padding, dilation, groups
        As given to the forward.
    bias : bool
        Whether the forward had a bias (``dbias`` is ``None`` otherwise).

    Returns
    -------
    tuple of np.ndarray
        ``(dx, dweight, dbias)``:
        ``dweight[g, c, ky, kx] = sum_{n, oy, ox} dy[n, g, oy, ox] * xpad[n, c', oy*sh + ky*dh,
        ox*sw + kx*dw]`` (summed over the batch), ``dbias[g] = sum_{n, oy, ox} dy[n, g, oy, ox]``,
        and ``dx`` the adjoint: every ``dy`` element sends ``weight * dy`` back to the inputs its
        window read (for stride 1: ``dx = CC(pad(dy), rot180(weight))``).
    """
    bias = as_flag(bias, "bias")
    x, weight = _check_conv_inputs(x, weight)
    dy = as_float_array(dy, "dy", ndim=4, layout="(N, out_channels, H_out, W_out)")
    same_dtype(x, "x", dy=dy)
    geom = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    check_grad_shape(dy, geom.output_shape, f"conv2d(x {x.shape}, weight {weight.shape})")
    backward = _backward_direct if _resolve(algorithm, geom) == "direct" else _backward_gemm
    dx, dweight, dbias = backward(dy, x, weight, geom)
    return dx, dweight, dbias if bias else None


# --- direct (stride 1) --------------------------------------------------------------------


def _no_bias(dtype) -> np.ndarray:
    # numba needs an array of the right dtype even when there is no bias.
    return np.zeros(0, dtype=dtype)


def _padded_for_direct(x, padding, out_hw: tuple[int, int]) -> np.ndarray:
    """``x`` zero-padded, plus the bottom rows the direct kernels' rounded loops read."""
    wp = x.shape[3] + 2 * padding[1]
    return pad_input(x, padding, direct.extra_rows(*out_hw, wp))


def _forward_direct(x, weight, bias, geom: ConvGeometry) -> np.ndarray:
    has_bias = bias is not None
    return direct.conv2d_forward(
        _padded_for_direct(x, geom.padding, (geom.out_height, geom.out_width)),
        weight,
        bias if has_bias else _no_bias(x.dtype),
        has_bias,
        geom.out_height,
        geom.out_width,
        *geom.dilation,
        geom.groups,
    )


def _flipped_transposed(weight, groups) -> np.ndarray:
    """``(G, C_g, kh, kw) -> (C, G_g, kh, kw)`` rotated 180 degrees: dx = conv(dy) uses it."""
    g_out, cin_g, kh, kw = weight.shape
    per_group = weight.reshape(groups, g_out // groups, cin_g, kh, kw)
    swapped = per_group.transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    return np.ascontiguousarray(swapped.reshape(groups * cin_g, g_out // groups, kh, kw))


def _crop(dy, amounts) -> np.ndarray:
    """``dy`` without ``amounts = (h, w)`` rows/columns on each side (no copy when zero)."""
    if amounts == (0, 0):
        return dy
    h, w = dy.shape[2], dy.shape[3]
    return np.ascontiguousarray(dy[:, :, amounts[0] : h - amounts[0], amounts[1] : w - amounts[1]])


def _backward_direct(dy, x, weight, geom: ConvGeometry):
    """``(dx, dweight, dbias)`` by the direct kernels (stride 1)."""
    out_hw = (geom.out_height, geom.out_width)
    xpad = _padded_for_direct(x, geom.padding, out_hw)
    dyp, dbias = direct.pitched_grad(dy, xpad.shape[3])
    dweight = direct.conv2d_grad_weight(xpad, dyp, *geom.kernel, *geom.dilation, geom.groups)
    # For stride 1 the input gradient is itself a stride-1 convolution: dy padded by
    # d*(k-1) - p on each side (cropped where that is negative) with the flipped, transposed
    # kernel, whose output is exactly (H, W).
    reach = [
        d * (k - 1) - p for d, k, p in zip(geom.dilation, geom.kernel, geom.padding, strict=True)
    ]
    dy_cropped = _crop(dy, (max(-reach[0], 0), max(-reach[1], 0)))
    in_hw = (geom.height, geom.width)
    dx = direct.conv2d_forward(
        _padded_for_direct(dy_cropped, (max(reach[0], 0), max(reach[1], 0)), in_hw),
        _flipped_transposed(weight, geom.groups),
        _no_bias(dy.dtype),
        False,
        *in_hw,
        *geom.dilation,
        geom.groups,
    )
    return dx, dweight, dbias


# --- im2col + GEMM --------------------------------------------------------------------------


def _columns(x, geom: ConvGeometry) -> np.ndarray:
    return im2col_padded(
        pad_input(x, geom.padding),
        *geom.kernel,
        *geom.stride,
        *geom.dilation,
        geom.out_height,
        geom.out_width,
    )


def _group_slices(geom: ConvGeometry):
    """Per group: (slice of output channels, slice of column rows)."""
    rows = geom.taps
    for grp in range(geom.groups):
        yield (
            slice(grp * geom.out_per_group, (grp + 1) * geom.out_per_group),
            slice(grp * rows, (grp + 1) * rows),
        )


def _forward_gemm(x, weight, bias, geom: ConvGeometry) -> np.ndarray:
    cols = _columns(x, geom)
    wmat = weight.reshape(geom.out_channels, geom.taps)
    y = np.empty((geom.batch, geom.out_channels, geom.out_height * geom.out_width), x.dtype)
    for out_rows, col_rows in _group_slices(geom):
        # (G_g, K) @ (N, K, HW) -> (N, G_g, HW): one BLAS product per image, written in place.
        np.matmul(wmat[out_rows], cols[:, col_rows], out=y[:, out_rows])
    if bias is not None:
        y += bias[None, :, None]
    return y.reshape(geom.output_shape)


def _backward_gemm(dy, x, weight, geom: ConvGeometry):
    """``(dx, dweight, dbias)`` by im2col + GEMM (any stride)."""
    cols = _columns(x, geom)
    dy3 = dy.reshape(geom.batch, geom.out_channels, geom.out_height * geom.out_width)
    wmat = weight.reshape(geom.out_channels, geom.taps)
    dweight = np.empty_like(wmat)
    dcols = np.empty_like(cols)
    for out_rows, col_rows in _group_slices(geom):
        # dW = sum_n dy[n] @ cols[n].T ; dcols[n] = W.T @ dy[n]
        dweight[out_rows] = np.matmul(dy3[:, out_rows], cols[:, col_rows].transpose(0, 2, 1)).sum(0)
        np.matmul(wmat[out_rows].T, dy3[:, out_rows], out=dcols[:, col_rows])
    dx = col2im_cropped(
        dcols,
        geom.in_channels,
        geom.height,
        geom.width,
        *geom.kernel,
        *geom.stride,
        *geom.padding,
        *geom.dilation,
        geom.out_height,
        geom.out_width,
    )
    return dx, dweight.reshape(weight.shape), dy.sum(axis=(0, 2, 3))
