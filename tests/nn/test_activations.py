"""LeakyReLU, Tanh, ELU, SELU and GELU: torch's values and gradients (also at the kink
x = 0), finite differences, stability for huge inputs, float32, argument checks."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
import torch

from cvcourse.gradcheck import check_gradients
from cvcourse.nn import ELU, GELU, SELU, LeakyReLU, Tanh

from .helpers import assert_matches_torch

PAIRS = {
    "leaky_relu": (lambda: LeakyReLU(), lambda: torch.nn.LeakyReLU()),
    "leaky_relu_0.2": (lambda: LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    "tanh": (lambda: Tanh(), lambda: torch.nn.Tanh()),
    "elu": (lambda: ELU(), lambda: torch.nn.ELU()),
    "elu_0.5": (lambda: ELU(0.5), lambda: torch.nn.ELU(0.5)),
    "selu": (lambda: SELU(), lambda: torch.nn.SELU()),
    "gelu": (lambda: GELU(), lambda: torch.nn.GELU()),
    "gelu_tanh": (lambda: GELU("tanh"), lambda: torch.nn.GELU(approximate="tanh")),
}


def inputs(shape, seed=0):
    """Normal values times 3, with exact zeros (the kink) and large values of both signs."""
    x = 3 * np.random.default_rng(seed).standard_normal(shape)
    flat = x.reshape(-1)
    flat[:3] = [0.0, 40.0, -40.0]
    return x


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4, 5)], ids=["2d", "nchw"])
@pytest.mark.parametrize("make", PAIRS.values(), ids=PAIRS.keys())
def test_activation_matches_torch_values_and_gradient_including_the_kink(make, shape):
    ours, theirs = make
    assert_matches_torch(ours(), theirs(), inputs(shape))


@pytest.mark.parametrize("make", PAIRS.values(), ids=PAIRS.keys())
def test_activation_passes_gradcheck_away_from_the_kink(make):
    x = np.random.default_rng(1).standard_normal((4, 6))
    x = np.where(np.abs(x) < 0.1, 0.5, x)  # no finite difference straddles x = 0
    report = check_gradients(make[0](), x)
    assert report, report


def test_elu_and_gelu_formulas_by_hand():
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    np.testing.assert_allclose(
        ELU(2.0).forward(x), [2 * (math.exp(-2) - 1), 2 * (math.exp(-0.5) - 1), 0, 1.5]
    )
    phi = [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(GELU().forward(x), x * np.array(phi), rtol=1e-14)
    selu = SELU()
    np.testing.assert_allclose(
        selu.forward(x), 1.0507009873554805 * ELU(1.6732632423543772).forward(x)
    )


@pytest.mark.parametrize("make", PAIRS.values(), ids=PAIRS.keys())
def test_huge_inputs_give_finite_values_and_no_warnings(make):
    x = np.array([[-1e30, -800.0, 800.0, 1e30]])
    layer = make[0]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    assert np.isfinite(y).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("make", PAIRS.values(), ids=PAIRS.keys())
def test_float32_in_float32_out_close_to_float64(make):
    x = inputs((3, 8), seed=2)
    layer = make[0]()
    y32 = layer.forward(x.astype(np.float32))
    dx32 = layer.backward(np.ones((3, 8), np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    layer64 = make[0]()
    np.testing.assert_allclose(y32, layer64.forward(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx32, layer64.backward(np.ones((3, 8))), rtol=1e-5, atol=1e-5)


def test_selu_keeps_mean_zero_and_variance_one_through_a_deep_stack():
    # The self-normalising property: 20 layers of LeCun-normal weights (variance 1 / fan_in)
    # and SELU keep standardised activations standardised; ReLU halves the variance each layer.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 100))
    h_selu, h_relu = x, x
    for _ in range(20):
        w = rng.standard_normal((100, 100)) / np.sqrt(100)
        h_selu = SELU().forward(h_selu @ w.T)
        h_relu = np.maximum(h_relu @ w.T, 0)
    assert abs(h_selu.mean()) < 0.1 and 0.8 < h_selu.var() < 1.2
    assert h_relu.var() < 1e-4


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: LeakyReLU("0.1"), TypeError, "negative_slope must be a real number"),
        (lambda: LeakyReLU(math.nan), ValueError, "negative_slope must be finite"),
        (lambda: ELU(0.0), ValueError, "alpha must be a finite number > 0"),
        (lambda: ELU(True), TypeError, "alpha must be a real number"),
        (lambda: GELU("erf"), ValueError, "approximate must be 'none' or 'tanh'"),
    ],
)
def test_bad_arguments_are_rejected(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("make", PAIRS.values(), ids=PAIRS.keys())
def test_input_checks_and_backward_before_forward(make):
    layer = make[0]()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 2)))
    with pytest.raises(TypeError, match="float32 or float64"):
        layer.forward(np.ones((2, 2), dtype=np.int64))
    layer.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        layer.backward(np.ones((2, 3)))
    copy = pickle.loads(pickle.dumps(layer))
    assert repr(copy) == repr(layer)
