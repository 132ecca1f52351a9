"""Layers with parameters (``Linear``, ``Conv2d``) and ``Flatten``, torch's layouts.

``Conv2d`` runs on :mod:`cvcourse.kernels` (numba, torch's exact semantics). Default
initialisation is torch's (see :mod:`cvcourse.nn.init`). Gradients are overwritten by each
``backward``, not accumulated (see :mod:`cvcourse.nn.base`).
"""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_flag, as_int
from cvcourse.kernels import conv2d, conv2d_backward
from cvcourse.kernels._validate import as_pair

from . import init
from .base import Layer, as_param_dtype

__all__ = ["Conv2d", "Flatten", "Linear"]


class Linear(Layer):
    """Fully connected layer, ``y = x @ W.T + b`` (``torch.nn.Linear``).

    Shapes: ``x (N, *, in_features) -> y (N, *, out_features)``: the layer acts on the last
    axis, every leading axis is a batch axis (as in torch). ``params["weight"]`` is
    ``W (out_features, in_features)``, ``params["bias"]`` is ``b (out_features,)`` (absent
    with ``bias=False``).

    Backward, for ``dy = dL/dy`` of ``y``'s shape, with ``x2`` and ``dy2`` the inputs and
    upstream gradients as rows (every leading axis flattened: ``(M, in_features)``,
    ``(M, out_features)``)::

        dx = dy @ W            (N, *, in_features)
        dW = dy2.T @ x2        (out_features, in_features), summed over every example
        db = dy2.sum(axis=0)   (out_features,)

    Parameters
    ----------
    in_features, out_features : int
        Sizes of each input and output example.
    bias : bool
        Whether to add a learned bias.
    dtype : dtype
        Parameter dtype, float32 (default) or float64.
    seed, rng : int or np.random.Generator, optional
        Randomness of the default initialisation (an int, or a Generator).
    """

    def __init__(
        self, in_features, out_features, bias=True, *, dtype=np.float32, seed=None, rng=None
    ):
        super().__init__()
        self.in_features = as_int(in_features, "in_features", "Linear", low=1)
        self.out_features = as_int(out_features, "out_features", "Linear", low=1)
        bias = as_flag(bias, "bias", "Linear")
        weight, b = init.default_weight_and_bias(
            (self.out_features, self.in_features),
            bias,
            init.as_generator(seed, rng),
            as_param_dtype(dtype),
        )
        self.params["weight"] = weight
        if b is not None:
            self.params["bias"] = b

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={'bias' in self.params}"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``y = x @ W.T + b`` for ``x`` of shape ``(N, *, in_features)``."""
        x = self._input(x)
        weight = self.params["weight"]
        if x.ndim < 2:
            raise ValueError(
                f"{self!r}: x must be (N, *, in_features), at least 2-D, got shape {x.shape} "
                "(a single example is x[None])"
            )
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: x has shape {x.shape}, i.e. {x.shape[-1]} features on its last "
                f"axis, but weight {weight.shape} expects {self.in_features} "
                "(flatten images with Flatten() first)"
            )
        dtype = np.result_type(x, weight)
        y = x.astype(dtype, copy=False) @ weight.astype(dtype, copy=False).T
        if "bias" in self.params:
            y += self.params["bias"].astype(dtype, copy=False)
        self._cache = (x, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Return ``dx = dy @ W``; set ``grads["weight"]`` and ``grads["bias"]``.

        ``grads["weight"] = dy2.T @ x2``, ``grads["bias"] = dy2.sum(0)`` over every example
        (overwriting previous gradients).
        """
        x, out_shape = self._cached()
        dy = self._upstream(dy, out_shape)
        weight = self.params["weight"]
        dtype = np.result_type(x, weight, dy)
        dy_ = dy.astype(dtype, copy=False)
        dx = dy_ @ weight.astype(dtype, copy=False)
        # Rows of every example, whatever the leading axes (reshape copies only if needed).
        dy2 = dy_.reshape(-1, self.out_features)
        x2 = x.astype(dtype, copy=False).reshape(-1, self.in_features)
        self.grads["weight"] = (dy2.T @ x2).astype(weight.dtype)
        if "bias" in self.params:
            self.grads["bias"] = dy2.sum(axis=0).astype(self.params["bias"].dtype)
        return dx.astype(x.dtype, copy=False)


class Conv2d(Layer):
    """2-D convolution (cross-correlation), ``torch.nn.Conv2d`` with zero padding.

    Shapes: ``x (N, C_in, H, W) -> y (N, C_out, H_out, W_out)`` with
    ``H_out = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1`` (same for W);
    ``params["weight"]`` is ``(C_out, C_in // groups, kH, kW)``, ``params["bias"]`` is
    ``(C_out,)``. Forward::

        y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xpad[n, c', i*s + u*d, j*s + v*d]

    (``c'``: channel ``c`` of output channel ``o``'s group). Backward, for ``dy`` of ``y``'s
    shape::

        dW[o, c, u, v] = sum_{n, i, j} dy[n, o, i, j] * xpad[n, c', i*s + u*d, j*s + v*d]
        db[o]          = sum_{n, i, j} dy[n, o, i, j]
        dx             = the adjoint: each dy[n, o, i, j] sends W[o] * dy[n, o, i, j] back
                         to the inputs its window read (stride 1: full correlation of dy
                         with the 180-degree-rotated kernel)

    Both run on :func:`cvcourse.kernels.conv2d` / :func:`~cvcourse.kernels.conv2d_backward`.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts, each divisible by ``groups``.
    kernel_size, stride, padding, dilation : int or tuple of int
        An int or an ``(h, w)`` pair.
    groups : int
        Channels split into this many independent groups.
    bias : bool
        Whether to add a learned bias.
    dtype, seed, rng
        As for :class:`Linear`.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        *,
        dtype=np.float32,
        seed=None,
        rng=None,
    ):
        super().__init__()
        self.in_channels = as_int(in_channels, "in_channels", "Conv2d", low=1)
        self.out_channels = as_int(out_channels, "out_channels", "Conv2d", low=1)
        self.groups = as_int(groups, "groups", "Conv2d", low=1)
        try:
            self.kernel_size = as_pair(kernel_size, "kernel_size", minimum=1)
            self.stride = as_pair(stride, "stride", minimum=1)
            self.padding = as_pair(padding, "padding", minimum=0)
            self.dilation = as_pair(dilation, "dilation", minimum=1)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"Conv2d: {exc}") from exc
        for name, count in (("in_channels", in_channels), ("out_channels", out_channels)):
            if count % self.groups:
                raise ValueError(f"Conv2d: {name}={count} is not divisible by groups={groups}")
        bias = as_flag(bias, "bias", "Conv2d")
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        weight, b = init.default_weight_and_bias(
            shape, bias, init.as_generator(seed, rng), as_param_dtype(dtype)
        )
        self.params["weight"] = weight
        if b is not None:
            self.params["bias"] = b

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if "bias" not in self.params:
            text += ", bias=False"
        return text

    def _kernel_args(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int]:
        return self.stride, self.padding, self.dilation, self.groups

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The convolution of ``x (N, C_in, H, W)``; returns ``(N, C_out, H_out, W_out)``."""
        x = self._input(x, 4, "(N, C, H, W)")
        weight = self.params["weight"]
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r}: x has shape {x.shape} with {x.shape[1]} channels, but the layer "
                f"expects {self.in_channels} input channels (weight {weight.shape}, "
                f"groups={self.groups})"
            )
        dtype = np.result_type(x, weight)
        xc = x.astype(dtype, copy=False)
        bias = self.params.get("bias")
        with self._named_errors():
            y = conv2d(
                xc,
                weight.astype(dtype, copy=False),
                None if bias is None else bias.astype(dtype, copy=False),
                *self._kernel_args(),
            )
        self._cache = (xc, x.dtype, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Returns ``dx`` (``x``'s shape); sets ``grads["weight"]`` and ``grads["bias"]``."""
        xc, x_dtype, out_shape = self._cached()
        dy = self._upstream(dy, out_shape)
        weight = self.params["weight"]
        has_bias = "bias" in self.params
        with self._named_errors():
            dx, dweight, dbias = conv2d_backward(
                dy.astype(xc.dtype, copy=False),
                xc,
                weight.astype(xc.dtype, copy=False),
                *self._kernel_args(),
                bias=has_bias,
            )
        self.grads["weight"] = dweight.astype(weight.dtype, copy=False)
        if has_bias:
            self.grads["bias"] = dbias.astype(self.params["bias"].dtype, copy=False)
        return dx.astype(x_dtype, copy=False)


class Flatten(Layer):
    """Flatten dimensions ``start_dim..end_dim`` into one (``torch.nn.Flatten``).

    With the defaults, ``(N, C, H, W) -> (N, C*H*W)``. ``backward`` reshapes ``dy`` back to
    the input's shape. No parameters.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        start = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= start < x.ndim and 0 <= end < x.ndim) or start > end:
            raise ValueError(
                f"{self!r}: cannot flatten dimensions {self.start_dim}..{self.end_dim} of x "
                f"with shape {x.shape} ({x.ndim}-D)"
            )
        merged = int(np.prod(x.shape[start : end + 1]))
        y = x.reshape((*x.shape[:start], merged, *x.shape[end + 1 :]))
        self._cache = (x.shape, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x_shape, out_shape = self._cached()
        return self._upstream(dy, out_shape).reshape(x_shape)
