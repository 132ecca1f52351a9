"""The reference layers against torch (float64, values and every gradient), finite
differences (``check_gradients``), and their argument checks."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cvcourse.gradcheck import check_gradients
from cvcourse.nn import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
)

from .helpers import assert_matches_torch

F64 = np.float64


def normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(shape, seed=0):
    """Random values with |x| >= 0.1, so that ReLU's kink is never within a gradcheck step."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


# --------------------------------------------------------------------------------- Linear


@pytest.mark.parametrize(
    "n, fan_in, fan_out, bias",
    [(1, 3, 2, True), (5, 7, 4, False), (8, 1, 1, True), (3, 16, 9, True)],
)
def test_linear_matches_torch_values_and_all_gradients(n, fan_in, fan_out, bias):
    layer = Linear(fan_in, fan_out, bias=bias, dtype=F64, seed=1)
    assert_matches_torch(layer, torch.nn.Linear(fan_in, fan_out, bias=bias), normal((n, fan_in)))


@pytest.mark.parametrize("shape", [(4, 3, 3, 8), (2, 5, 8), (3, 1, 1, 1, 8)])
def test_linear_on_leading_batch_axes_matches_torch(shape):
    # torch.nn.Linear acts on the last axis of (N, *, in_features); so does ours.
    layer = Linear(8, 5, dtype=F64, seed=2)
    assert_matches_torch(layer, torch.nn.Linear(8, 5), normal(shape, seed=4))


def test_linear_on_leading_batch_axes_passes_gradcheck():
    report = check_gradients(Linear(8, 3, dtype=np.float64, seed=0), normal((2, 3, 8)))
    assert report, report


def test_linear_passes_gradcheck_in_float64_and_float32():
    for dtype in (np.float64, np.float32):
        layer = Linear(6, 4, dtype=dtype, seed=0)
        report = check_gradients(layer, normal((3, 6)).astype(dtype))
        assert report, report
        assert layer.params["weight"].dtype == dtype  # the check leaves the layer as it was


def test_linear_weight_gradient_is_dy_transposed_times_x():
    layer = Linear(3, 2, dtype=F64, seed=0)
    x, dy = normal((4, 3)), normal((4, 2), seed=1)
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["weight"], dy.T @ x)
    np.testing.assert_allclose(layer.grads["bias"], dy.sum(axis=0))


def test_backward_overwrites_gradients_instead_of_accumulating():
    layer = Linear(3, 2, dtype=F64, seed=0)
    x, dy = normal((4, 3)), normal((4, 2), seed=1)
    layer.forward(x)
    layer.backward(dy)
    first = {k: v.copy() for k, v in layer.grads.items()}
    layer.backward(dy)
    for name, value in first.items():
        np.testing.assert_array_equal(layer.grads[name], value)


def test_grads_are_empty_before_backward_and_zero_grad_fills_zeros():
    layer = Linear(3, 2, seed=0)
    assert layer.grads == {}
    layer.zero_grad()
    assert set(layer.grads) == {"weight", "bias"}
    assert all(not g.any() for g in layer.grads.values())


# --------------------------------------------------------------------------------- Conv2d


CONV_CASES = {
    "batch1-nonsquare": dict(n=1, c=2, o=3, hw=(5, 7), k=3, stride=1, padding=1),
    "stride2-padding": dict(n=2, c=3, o=4, hw=(8, 6), k=3, stride=2, padding=1),
    "groups": dict(n=2, c=4, o=6, hw=(6, 6), k=3, stride=1, padding=0, groups=2),
    "depthwise": dict(n=1, c=3, o=3, hw=(5, 4), k=(2, 3), stride=(1, 2), padding=(1, 0), groups=3),
    "dilation": dict(n=2, c=2, o=2, hw=(9, 8), k=3, stride=1, padding=2, dilation=2),
    "no-bias-1x1": dict(n=3, c=5, o=2, hw=(4, 3), k=1, stride=1, padding=0, bias=False),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_matches_torch_values_and_all_gradients(case):
    case = dict(case)
    n, c, o, hw = case.pop("n"), case.pop("c"), case.pop("o"), case.pop("hw")
    k = case.pop("k")
    layer = Conv2d(c, o, k, **case, dtype=F64, seed=2)
    module = torch.nn.Conv2d(c, o, k, **case)
    assert_matches_torch(layer, module, normal((n, c, *hw), seed=3))


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 2))
    c = groups * draw(st.integers(1, 2))
    o = groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = [d * (kk - 1) + 1 for d, kk in zip(dilation, k, strict=True)]
    hw = tuple(
        max(1, s - 2 * p + draw(st.integers(0, 4))) for s, p in zip(span, padding, strict=True)
    )
    n = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return (
        n,
        c,
        o,
        hw,
        dict(
            kernel_size=k,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        ),
    )


@settings(max_examples=25)
@given(conv_configs())
def test_conv2d_matches_torch_on_random_configurations(config):
    n, c, o, hw, kwargs = config
    layer = Conv2d(c, o, dtype=F64, seed=0, **kwargs)
    assert_matches_torch(layer, torch.nn.Conv2d(c, o, **kwargs), normal((n, c, *hw), seed=1))


def test_conv2d_passes_gradcheck():
    layer = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, groups=1, dtype=F64, seed=0)
    report = check_gradients(layer, normal((2, 2, 5, 4)))
    assert report, report


def test_conv2d_float32_input_into_float64_layer_computes_in_float64():
    layer = Conv2d(1, 2, 3, dtype=F64, seed=0)
    x = normal((1, 1, 5, 5)).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == np.float64
    assert dx.dtype == np.float32
    assert layer.grads["weight"].dtype == np.float64


def test_float32_layer_keeps_float32_and_grads_match_param_dtype():
    layer = Conv2d(2, 2, 3, padding=1, seed=0)
    assert layer.params["weight"].dtype == np.float32
    y = layer.forward(normal((1, 2, 4, 4)).astype(np.float32))
    assert y.dtype == np.float32
    layer.backward(np.ones_like(y))
    assert {g.dtype for g in layer.grads.values()} == {np.dtype(np.float32)}


# -------------------------------------------------------------------------------- pooling


POOL_CASES = {
    "overlapping-3s2": dict(kernel_size=3, stride=2),
    "nonsquare-padding": dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)),
    "default-stride": dict(kernel_size=2),
    "stride1": dict(kernel_size=2, stride=1),
}


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
@pytest.mark.parametrize("n", [1, 3])
def test_max_pool_matches_torch(case, n):
    x = normal((n, 2, 7, 6), seed=n)
    assert_matches_torch(MaxPool2d(**case), torch.nn.MaxPool2d(**case), x)


def test_max_pool_with_dilation_matches_torch():
    case = dict(kernel_size=3, stride=1, padding=1, dilation=2)
    assert_matches_torch(MaxPool2d(**case), torch.nn.MaxPool2d(**case), normal((2, 2, 7, 8)))


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_matches_torch(case, count_include_pad):
    kwargs = dict(case, count_include_pad=count_include_pad)
    x = normal((2, 3, 6, 7))
    assert_matches_torch(AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), x)


@pytest.mark.parametrize("layer", [MaxPool2d(3, stride=2), AvgPool2d((2, 3), padding=1)], ids=repr)
def test_pooling_passes_gradcheck(layer):
    report = check_gradients(layer, normal((2, 2, 7, 6)))
    assert report, report


def test_max_pool_overlapping_windows_add_their_gradients():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the maximum of all four overlapping 2x2 windows
    layer = MaxPool2d(2, stride=1)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


# ------------------------------------------------------------------- activations, Flatten


@pytest.mark.parametrize("shape", [(1, 4), (3, 2, 5, 4)])
@pytest.mark.parametrize(
    "ours, theirs", [(ReLU, torch.nn.ReLU), (Sigmoid, torch.nn.Sigmoid)], ids=["relu", "sigmoid"]
)
def test_activations_match_torch(ours, theirs, shape):
    assert_matches_torch(ours(), theirs(), away_from_zero(shape) * 3)


@pytest.mark.parametrize("layer", [ReLU(), Sigmoid()], ids=repr)
def test_activations_pass_gradcheck(layer):
    report = check_gradients(layer, away_from_zero((3, 5)))
    assert report, report


def test_sigmoid_is_stable_for_huge_inputs():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        y = Sigmoid().forward(x)
    np.testing.assert_allclose(y, torch.sigmoid(torch.from_numpy(x)).numpy())
    assert np.isfinite(y).all()


def test_relu_gradient_at_zero_is_zero_like_torch():
    layer = ReLU()
    layer.forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (1, 2), (2, 3)])
def test_flatten_matches_torch(start_dim, end_dim):
    x = normal((2, 3, 4, 5))
    assert_matches_torch(Flatten(start_dim, end_dim), torch.nn.Flatten(start_dim, end_dim), x)


# -------------------------------------------------------------------------------- Dropout


def test_dropout_in_eval_mode_is_the_identity_forward_and_backward():
    layer = Dropout(0.5, seed=0).eval()
    x, dy = normal((4, 5)), normal((4, 5), seed=1)
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert check_gradients(layer, x)


def test_dropout_in_training_keeps_the_expectation():
    p = 0.3
    x = np.full((400, 500), 2.0)
    y = Dropout(p, seed=0).forward(x)
    dropped = np.mean(y == 0)
    # 200,000 Bernoulli draws: the standard error of the fraction is ~0.001
    assert abs(dropped - p) < 0.005
    np.testing.assert_allclose(np.unique(y), [0.0, 2.0 / (1 - p)])
    assert abs(y.mean() - 2.0) < 0.02  # E[y] = x; std of the mean ~0.003


def test_dropout_backward_uses_the_forward_mask():
    layer = Dropout(0.5, seed=4)
    x = away_from_zero((6, 7))
    y = layer.forward(x)
    dy = normal((6, 7), seed=2)
    dx = layer.backward(dy)
    mask = y / x
    np.testing.assert_allclose(dx, dy * mask)
    assert ((dx == 0) == (y == 0)).all()
    assert 0 < (y == 0).sum() < y.size


def test_dropout_seed_gives_the_same_masks_and_masks_change_between_calls():
    x = np.ones((10, 10))
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))


def test_dropout_extremes_p0_is_identity_and_p1_zeroes_everything():
    x = normal((3, 3))
    np.testing.assert_array_equal(Dropout(0.0).forward(x), x)
    assert not Dropout(1.0).forward(x).any()


# ---------------------------------------------------------------------- init and pickling


def test_default_init_is_torch_bound_one_over_sqrt_fan_in():
    layer = Linear(400, 300, seed=0)
    bound = 1 / np.sqrt(400)
    w, b = layer.params["weight"], layer.params["bias"]
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    conv = Conv2d(8, 16, 3, groups=2, seed=0)
    conv_bound = 1 / np.sqrt(4 * 9)  # fan_in = in_channels / groups * kH * kW
    assert conv_bound * 0.95 < np.abs(conv.params["weight"]).max() <= conv_bound


def test_seed_and_rng_make_initialisation_reproducible():
    a, b = Linear(5, 4, seed=3), Linear(5, 4, seed=3)
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    rng = np.random.default_rng(0)
    c, d = Linear(5, 4, rng=rng), Linear(5, 4, rng=rng)
    assert not np.array_equal(c.params["weight"], d.params["weight"])


LAYERS = [
    Linear(4, 3, seed=0),
    Conv2d(2, 2, 3, padding=1, seed=0),
    MaxPool2d(2),
    AvgPool2d(2),
    ReLU(),
    Sigmoid(),
    Flatten(),
    Dropout(0.5, seed=0).eval(),
]


def _input_for(layer):
    return normal((2, 4) if isinstance(layer, Linear) else (2, 2, 4, 4)).astype(np.float32)


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_layers_survive_a_pickle_round_trip_without_their_cache(layer):
    x = _input_for(layer)
    y = layer.forward(x)
    clone = pickle.loads(pickle.dumps(layer))
    assert repr(clone) == repr(layer) and clone.training == layer.training
    for name, p in layer.params.items():
        np.testing.assert_array_equal(clone.params[name], p)
    with pytest.raises(RuntimeError, match="before forward"):
        clone.backward(y)
    np.testing.assert_array_equal(clone.forward(x), y)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_backward_before_forward_is_a_clear_runtime_error(layer):
    fresh = pickle.loads(pickle.dumps(layer))
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\)"):
        fresh.backward(np.ones((2, 3)))


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_non_float_input_is_a_type_error_naming_the_layer(layer):
    name = type(layer).__name__
    with pytest.raises(TypeError, match=name):
        layer.forward(np.ones((2, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy array"):
        layer.forward([[1.0, 2.0, 3.0, 4.0]])


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_dy_of_the_wrong_shape_is_a_value_error(layer):
    y = layer.forward(_input_for(layer))
    with pytest.raises(ValueError, match=r"dy has shape .* output .* has shape"):
        layer.backward(np.ones((*y.shape, 1), dtype=y.dtype))


def test_linear_wrong_rank_or_features_name_the_layer_and_shapes():
    layer = Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear\(in_features=4.*at least 2-D.*\(4,\)"):
        layer.forward(np.ones(4))
    with pytest.raises(ValueError, match=r"Linear.*\(2, 5\).*5 features.*expects 4"):
        layer.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"Linear.*\(2, 4, 1\).*1 features.*expects 4"):
        layer.forward(np.ones((2, 4, 1)))


def test_conv2d_channel_mismatch_and_too_small_input_name_the_layer():
    layer = Conv2d(3, 4, 5)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*\(2, 1, 8, 8\).*expects 3 input"):
        layer.forward(np.ones((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*spans 5x5.*only 3x3"):
        layer.forward(np.ones((1, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\)"):
        layer.forward(np.ones((3, 8, 8)))


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: Conv2d(3, 4, 3, groups=2), ValueError, "in_channels=3 is not divisible"),
        (lambda: Conv2d(4, 3, 3, groups=2), ValueError, "out_channels=3 is not divisible"),
        (lambda: Conv2d(1, 1, 0), ValueError, "Conv2d: kernel_size must be positive"),
        (lambda: Conv2d(1, 1, 3, stride=0), ValueError, "stride must be positive"),
        (lambda: Conv2d(1, 1, 2.5), TypeError, "kernel_size must be an int"),
        (lambda: Linear(0, 3), ValueError, "Linear: in_features must be >= 1, got 0"),
        (lambda: Linear(3, True), TypeError, "out_features"),
        (lambda: Linear(3, 2, bias=1), TypeError, "bias must be True or False"),
        (lambda: Linear(3, 2, dtype=np.int32), TypeError, "float32 or np.float64"),
        (lambda: Linear(3, 2, seed=1, rng=np.random.default_rng()), ValueError, "not both"),
        (lambda: Linear(3, 2, rng=3), TypeError, "Generator"),
        (lambda: MaxPool2d(2, padding=2), ValueError, "MaxPool2d: padding must be at most half"),
        (lambda: AvgPool2d(0), ValueError, "AvgPool2d: kernel_size must be positive"),
        (lambda: Dropout(1.5), ValueError, r"p must be in \[0, 1\]"),
        (lambda: Dropout("0.5"), TypeError, "p must be a number"),
        (lambda: Flatten(1.0), TypeError, "start_dim must be an int"),
    ],
)
def test_bad_constructor_arguments_are_rejected(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_pooling_window_larger_than_input_names_the_layer():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=\(5, 5\).*"):
        MaxPool2d(5).forward(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"AvgPool2d.*4-D"):
        AvgPool2d(2).forward(np.ones((3, 4, 4)))


def test_flatten_rejects_dimensions_the_input_does_not_have():
    with pytest.raises(ValueError, match=r"Flatten.*dimensions 2..3.*\(4, 5\)"):
        Flatten(2, 3).forward(np.ones((4, 5)))


def test_train_and_eval_set_the_mode_and_return_the_layer():
    layer = Dropout(0.2)
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    with pytest.raises(TypeError, match="mode must be True or False"):
        layer.train("no")


@pytest.mark.parametrize(
    "layer, module",
    [
        (Conv2d(3, 2, 3, padding=1, dtype=F64, seed=0), torch.nn.Conv2d(3, 2, 3, padding=1)),
        (MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (AvgPool2d(3, stride=1, padding=1), torch.nn.AvgPool2d(3, stride=1, padding=1)),
    ],
    ids=repr,
)
def test_non_contiguous_inputs_give_the_same_results(layer, module):
    x = normal((4, 3, 6, 2)).transpose(3, 1, 2, 0)[:, :, ::-1, :]  # (2, 3, 6, 4), strided
    assert not x.flags.c_contiguous
    assert_matches_torch(layer, module, x)


def test_importing_cvcourse_nn_does_not_import_torch():
    code = "import sys, cvcourse.nn; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
