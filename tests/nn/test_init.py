"""cvcourse.nn.init: torch's fans and gains, and the statistics of each initialiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cvcourse.nn import init

SHAPES = [(3, 5), (8, 3, 3, 3), (16, 4, 5, 1), (2, 3, 4, 5, 6), (1, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fans_equal_torchs_calculate_fan_in_and_fan_out(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(shape) == expected


def test_fans_need_at_least_two_dimensions_like_torch():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out((5,))


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
    ],
)
def test_gains_equal_torchs_calculate_gain(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-12)


BIG = (256, 128, 3, 3)  # fan_in 1152, fan_out 2304, 295k samples


def test_kaiming_normal_std_is_sqrt_2_over_fan_in_for_relu():
    w = init.kaiming_normal(BIG, nonlinearity="relu", seed=0)
    fan_in, _ = init.calculate_fan_in_and_fan_out(BIG)
    assert w.shape == BIG and w.dtype == np.float32
    assert w.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.01)
    assert abs(w.mean()) < 0.01 * w.std()


def test_kaiming_normal_fan_out_mode_uses_fan_out():
    w = init.kaiming_normal(BIG, mode="fan_out", nonlinearity="relu", seed=0)
    _, fan_out = init.calculate_fan_in_and_fan_out(BIG)
    assert w.std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.01)


@pytest.mark.parametrize("a", [0.0, math.sqrt(5)])
def test_kaiming_uniform_bound_and_std_match_torch(a):
    fan_in, _ = init.calculate_fan_in_and_fan_out(BIG)
    bound = init.calculate_gain("leaky_relu", a) * math.sqrt(3 / fan_in)
    ours = init.kaiming_uniform(BIG, a=a, seed=0)
    theirs = torch.nn.init.kaiming_uniform_(torch.empty(BIG), a=a).numpy()
    for w in (ours, theirs):
        assert 0.999 * bound < np.abs(w).max() <= bound
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_xavier_uniform_bounds():
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(BIG)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    w = init.xavier_uniform(BIG, gain=2.0, seed=0)
    assert 0.999 * bound < np.abs(w).max() <= bound
    theirs = torch.nn.init.xavier_uniform_(torch.empty(BIG), gain=2.0).numpy()
    assert np.abs(theirs).max() == pytest.approx(np.abs(w).max(), rel=1e-3)


def test_xavier_normal_std():
    fan_in, fan_out = init.calculate_fan_in_and_fan_out((600, 400))
    w = init.xavier_normal((600, 400), seed=0, dtype=np.float64)
    assert w.dtype == np.float64
    assert w.std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.01)


@pytest.mark.parametrize(
    "fn", [init.kaiming_uniform, init.kaiming_normal, init.xavier_uniform, init.xavier_normal]
)
def test_initialisers_are_reproducible_with_a_seed_and_advance_a_shared_rng(fn):
    np.testing.assert_array_equal(fn((4, 3), seed=5), fn((4, 3), seed=5))
    rng = np.random.default_rng(0)
    assert not np.array_equal(fn((4, 3), rng=rng), fn((4, 3), rng=rng))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: init.kaiming_normal((3, 4), mode="fan_mid"), ValueError, "fan_in' or 'fan_out"),
        (lambda: init.kaiming_uniform((3, 0)), ValueError, "fan_in is 0"),
        (lambda: init.kaiming_uniform((3, 4), nonlinearity="gelu"), ValueError, "unsupported"),
        (lambda: init.xavier_normal((3, 4), dtype=np.float16), TypeError, "float32 or"),
        (lambda: init.xavier_uniform("3x4"), TypeError, "shape must be a tuple of ints"),
        (lambda: init.kaiming_normal((3, 4), seed=1.5), TypeError, "seed must be an int"),
    ],
)
def test_bad_initialiser_arguments_are_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()
