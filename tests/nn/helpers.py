"""Shared helpers for the nn tests: run a torch module on our weights and inputs."""

from __future__ import annotations

import numpy as np
import torch


def load_into_torch(module: torch.nn.Module, layer) -> torch.nn.Module:
    """Copy ``layer``'s parameters into ``module`` (strict: the names must be torch's)."""
    state = {
        name: torch.from_numpy(np.array(p, dtype=np.float64)) for name, p in layer.params.items()
    }
    module.double().load_state_dict(state, strict=True)
    return module


def torch_forward_backward(module: torch.nn.Module, x: np.ndarray, dy: np.ndarray):
    """``(y, dx, {name: grad})`` of ``module`` at ``x`` for the upstream gradient ``dy``."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = module(xt)
    y.backward(torch.from_numpy(dy))
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return y.detach().numpy(), xt.grad.numpy(), grads


def assert_matches_torch(layer, module: torch.nn.Module, x: np.ndarray, *, seed: int = 0):
    """Forward values, the input gradient and every parameter gradient agree (float64)."""
    if layer.params:
        load_into_torch(module, layer)
    dy_shape = module(torch.from_numpy(np.ascontiguousarray(x))).shape
    dy = np.random.default_rng(seed).standard_normal(tuple(dy_shape))
    y_ref, dx_ref, grads_ref = torch_forward_backward(module, x, dy)
    y = layer.forward(x)
    dx = layer.backward(dy)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    assert sorted(layer.grads) == sorted(grads_ref)
    for name, ref in grads_ref.items():
        np.testing.assert_allclose(layer.grads[name], ref, rtol=1e-10, atol=1e-12, err_msg=name)
