"""Torch references: forward values and autograd gradients, as NumPy arrays.

The kernel tests and a3's hidden checks (``grader.checks.a3_conv_pool``) compare against
these (a1, a2 and a4's checks still call torch inline: issue 13 moves them here). Each
function runs torch in the dtype it is given (float64 for grading), with torch's own
functional op, and returns plain ``np.ndarray`` values, so that callers never handle
tensors.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F


def _leaf(array: np.ndarray) -> torch.Tensor:
    # .copy(): torch.from_numpy shares memory, and autograd must never write to the caller's data.
    return torch.from_numpy(np.array(array, copy=True)).requires_grad_(True)


def _grads(output: torch.Tensor, inputs: list[torch.Tensor], dy: np.ndarray | None):
    upstream = torch.from_numpy(np.array(dy, copy=True)) if dy is not None else None
    if upstream is None:
        return [None] * len(inputs)
    grads = torch.autograd.grad(output, inputs, upstream, allow_unused=True)
    return [None if g is None else g.numpy() for g in grads]


def conv2d(x, weight, bias=None, dy=None, *, stride=1, padding=0, dilation=1, groups=1):
    """``F.conv2d`` and, if ``dy`` is given, its gradients.

    Returns ``(y, dx, dweight, dbias)``; the gradients are ``None`` without ``dy`` and
    ``dbias`` is ``None`` without ``bias``.
    """
    xt, wt = _leaf(x), _leaf(weight)
    bt = _leaf(bias) if bias is not None else None
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    inputs = [xt, wt] + ([bt] if bt is not None else [])
    grads = _grads(y, inputs, dy) + ([None] if bt is None else [])
    return (y.detach().numpy(), *grads)


def max_pool2d(x, dy=None, *, kernel_size, stride=None, padding=0, dilation=1):
    """``F.max_pool2d(..., return_indices=True)``; returns ``(y, indices, dx)``."""
    xt = _leaf(x)
    y, indices = F.max_pool2d(
        xt, kernel_size, stride=stride, padding=padding, dilation=dilation, return_indices=True
    )
    (dx,) = _grads(y, [xt], dy)
    return y.detach().numpy(), indices.numpy(), dx


def avg_pool2d(x, dy=None, *, kernel_size, stride=None, padding=0, count_include_pad=True):
    """``F.avg_pool2d``; returns ``(y, dx)``."""
    xt = _leaf(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = F.avg_pool2d(
            xt, kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad
        )
    (dx,) = _grads(y, [xt], dy)
    return y.detach().numpy(), dx
