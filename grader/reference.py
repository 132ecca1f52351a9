"""Torch references: forward values and autograd gradients, as NumPy arrays.

The kernel tests and every hidden check (``grader.checks``) compare against these: no other
module of the checks imports torch. Each function runs torch in the dtype it is given
(float64 for grading), with torch's own op, and returns plain ``np.ndarray`` values (a loss
as a float), so that callers never handle tensors. A gradient is that of
``sum(output * dy)`` for the caller's upstream ``dy`` (of a loss: of the loss itself).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

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


# ---------------------------------------------------------------------------------------------
# Assignment 1: im2col and the convolution as a matrix product
# ---------------------------------------------------------------------------------------------


def unfold(x, kernel_size) -> np.ndarray:
    """``F.unfold``: x ``(N, C, H, W)`` -> columns ``(N, C*kH*kW, H_out*W_out)``.

    Row ``(c*kH + i)*kW + j`` of a column holds ``x[n, c, h + i, w + j]`` (stride 1, no
    padding), the order ``weight.reshape(F, -1)`` lines up with.
    """
    with torch.no_grad():
        return F.unfold(torch.from_numpy(np.array(x, copy=True)), kernel_size).numpy()


# ---------------------------------------------------------------------------------------------
# Assignment 2: fully connected layers, activations, losses
# ---------------------------------------------------------------------------------------------


def linear(x, weight, bias=None, dy=None):
    """``F.linear``: x ``(N, in)``, weight ``(out, in)``, bias ``(out,)`` -> y = x @ W.T + b.

    Returns ``(y, dx, dweight, dbias)``; the gradients are ``None`` without ``dy`` and
    ``dbias`` is ``None`` without ``bias``.
    """
    xt, wt = _leaf(x), _leaf(weight)
    bt = _leaf(bias) if bias is not None else None
    y = F.linear(xt, wt, bt)
    inputs = [xt, wt] + ([bt] if bt is not None else [])
    grads = _grads(y, inputs, dy) + ([None] if bt is None else [])
    return (y.detach().numpy(), *grads)


def relu(x, dy=None):
    """``torch.relu`` of x (any shape); returns ``(y, dx)``, dx 0 where x == 0."""
    return _elementwise(torch.relu, x, dy)


def sigmoid(x, dy=None):
    """``torch.sigmoid`` of x (any shape); returns ``(y, dx)``."""
    return _elementwise(torch.sigmoid, x, dy)


def softmax(z, dy=None):
    """``torch.softmax(z, dim=-1)``: z ``(..., K)``; returns ``(s, dz)``."""
    return _elementwise(lambda t: torch.softmax(t, dim=-1), z, dy)


def _elementwise(op: Callable, x, dy):
    xt = _leaf(x)
    y = op(xt)
    (dx,) = _grads(y, [xt], dy)
    return y.detach().numpy(), dx


def softmax_jacobian(z) -> np.ndarray:
    """The Jacobian of ``torch.softmax(z, dim=0)`` at z ``(K,)``, by autograd: ``(K, K)``,
    ``J[i, j] = d s_i / d z_j``."""
    zt = torch.from_numpy(np.array(z, copy=True))
    return torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=0), zt).numpy()


def mse_loss(pred, target) -> tuple[float, np.ndarray]:
    """``F.mse_loss`` (the mean over all elements), pred and target of one shape.

    Returns ``(loss, dpred)``.
    """
    pt = _leaf(pred)
    loss = F.mse_loss(pt, torch.from_numpy(np.array(target, copy=True)))
    (dpred,) = torch.autograd.grad(loss, [pt])
    return float(loss.detach()), dpred.numpy()


def cross_entropy(logits, target) -> tuple[float, np.ndarray]:
    """``F.cross_entropy`` (the mean over the batch): logits ``(N, K)``, integer target
    ``(N,)``. Returns ``(loss, dlogits)``."""
    lt = _leaf(logits)
    loss = F.cross_entropy(lt, torch.tensor(np.asarray(target), dtype=torch.long))
    (dlogits,) = torch.autograd.grad(loss, [lt])
    return float(loss.detach()), dlogits.numpy()


# The scalar functions a2's numerical_gradient is graded on (grader/checks/fixtures/
# graded_functions.py), in torch.
_SCALAR_FUNCTIONS: dict[str, Callable] = {
    "cube_sum": lambda t: torch.sum(t**3),
    "sin_times_x": lambda t: torch.sum(torch.sin(t) * t),
    "log_sum_exp": lambda t: torch.logsumexp(t.reshape(-1), dim=0),
}


def scalar_gradient(name: str, x) -> np.ndarray:
    """The autograd gradient, x's shape, of one scalar function of x (any shape):
    ``"cube_sum"`` sum(x**3), ``"sin_times_x"`` sum(sin(x) * x), ``"log_sum_exp"``
    ``torch.logsumexp`` over every element."""
    xt = _leaf(x)
    (dx,) = torch.autograd.grad(_SCALAR_FUNCTIONS[name](xt), [xt])
    return dx.numpy()


# ---------------------------------------------------------------------------------------------
# Assignment 4: optimizers
# ---------------------------------------------------------------------------------------------


def sgd_steps(init, grad_steps, *, lr: float, momentum: float = 0.0) -> list:
    """``torch.optim.SGD(lr, momentum)`` for ``len(grad_steps)`` steps (:func:`_steps`)."""
    return _steps(lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum), init, grad_steps)


def adam_steps(init, grad_steps, *, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> list:
    """``torch.optim.Adam(lr, betas, eps)`` for ``len(grad_steps)`` steps (:func:`_steps`)."""
    return _steps(lambda p: torch.optim.Adam(p, lr=lr, betas=betas, eps=eps), init, grad_steps)


def _steps(make: Callable, init: list[dict], grad_steps: list[list[dict]]) -> list:
    """The parameters after each ``step()`` of the optimizer ``make(parameters)``.

    ``init``: per layer, a dict name -> starting array; ``grad_steps[k][i][name]``: the
    gradient of layer i's ``name`` at step k. Returns ``history[k][i][name]``, copies.
    """
    tensors = [{n: torch.tensor(p, requires_grad=True) for n, p in layer.items()} for layer in init]
    flat = [t for layer in tensors for t in layer.values()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = make(flat)
        history = []
        for step_grads in grad_steps:
            for layer, layer_grads in zip(tensors, step_grads, strict=True):
                for name, gradient in layer_grads.items():
                    layer[name].grad = torch.from_numpy(gradient.copy())
            opt.step()
            history.append(
                [{n: t.detach().numpy().copy() for n, t in layer.items()} for layer in tensors]
            )
    return history
