"""show_filters / show_feature_maps: grid sizes and the arrays behind them."""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.data import load_digits
from cvcourse.models import lenet_digits
from cvcourse.nn import Linear
from cvcourse.widgets import show_feature_maps, show_filters


@pytest.fixture(scope="module")
def model():
    return lenet_digits()


def test_first_layer_filters(ok, model):
    w = show_filters(model)  # the model's first conv layer: (8, 1, 3, 3)
    ok(w)
    assert w.weight.shape == (8, 1, 3, 3) and w.grid_shape == (3, 3) and w.tiles == 8
    assert w.picture.shape == (3 * 4 - 1, 3 * 4 - 1)
    peak = np.abs(w.weight[5]).max()
    np.testing.assert_allclose(w.picture[4:7, 8:11], w.weight[5, 0] / peak)  # tile 5 at (1, 2)
    before = bytes(w.view.value)
    w.scale.value = "shared"
    assert bytes(w.view.value) != before
    np.testing.assert_allclose(w.picture[4:7, 8:11], w.weight[5, 0] / np.abs(w.weight).max())


def test_multi_channel_and_rgb_filters(ok, model):
    w = show_filters(model.layers[3])  # a Conv2d layer: (16, 8, 3, 3)
    assert w.grid_shape == (16, 8) and w.tiles == 128 and w.picture.shape == (63, 31)
    w = show_filters(np.random.default_rng(0).normal(size=(70, 20, 3, 3)))
    ok(w)
    assert w.grid_shape == (64, 16) and "64 of 70 filters, 16 of 20" in w.message.value
    rgb = show_filters(np.random.default_rng(0).normal(size=(6, 3, 5, 5)))
    assert rgb.as_rgb.value and rgb.grid_shape == (2, 3) and rgb.picture.shape == (11, 17, 3)
    rgb.as_rgb.value = False
    assert rgb.grid_shape == (6, 3) and rgb.tiles == 18


def test_feature_maps(ok, model):
    x, _ = load_digits("test")
    w = show_feature_maps(model, x[0])
    ok(w)
    labels = list(w.activations)
    assert labels[0] == "input" and w.layer_select.value == labels[1]
    assert [w.activations[k].shape for k in labels] == [
        (1, 8, 8),
        (8, 8, 8),
        (8, 8, 8),
        (8, 4, 4),
        (16, 4, 4),
        (16, 4, 4),
        (16, 2, 2),
    ]
    assert w.grid_shape == (3, 3) and w.picture.shape == (3 * 9 - 1, 3 * 9 - 1)
    y = model.layers[0].forward(x[:1])  # the first conv layer's output, independently
    np.testing.assert_allclose(w.current, y[0], rtol=1e-5)
    w.layer_select.value = labels[4]
    assert w.grid_shape == (4, 4) and w.current.shape == (16, 4, 4)
    assert "flat outputs" in w.message.value
    assert model.training  # the model's mode is restored


def test_invalid_arguments(model):
    with pytest.raises(ValueError, match=r"4-D .* \(3, 3\)"):
        show_filters(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="Conv2d layer"):
        show_filters(Linear(3, 2))
    with pytest.raises(ValueError, match="finite"):
        show_filters(np.full((1, 1, 3, 3), np.nan))
    with pytest.raises(ValueError, match=r"one image.*\(2, 1, 8, 8\)"):
        show_feature_maps(model, np.zeros((2, 1, 8, 8)))
    with pytest.raises(TypeError, match="forward"):
        show_feature_maps(object(), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="layer 0 .*Conv2d"):
        show_feature_maps(model, np.zeros((3, 8, 8)))  # 3 channels into a 1-channel conv
