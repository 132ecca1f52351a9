"""gradcheck_view: one heatmap per tensor of a gradient-check report."""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.gradcheck import check_gradients
from cvcourse.nn import Conv2d
from cvcourse.widgets import gradcheck_view
from cvcourse.widgets.drawing import mosaic
from cvcourse.widgets.errors import colour_bar_labels


@pytest.fixture(scope="module")
def report():
    layer = Conv2d(2, 3, 3, padding=1, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 2, 4, 5))
    return check_gradients(layer, x, max_samples=30)


def test_one_heatmap_per_tensor(ok, report):
    w = gradcheck_view(report)
    ok(w)
    assert list(w.heatmaps) == list(w.tensor_select.options) == ["x", "weight", "bias"]
    # (N, C, H, W) = (2, 2, 4, 5): 2 rows of 2 tiles with one-cell gaps
    assert w.heatmaps["x"].shape == (2 * 5 - 1, 2 * 6 - 1)
    assert w.heatmaps["weight"].shape == (3 * 4 - 1, 2 * 4 - 1)
    assert w.heatmaps["bias"].shape == (1, 3)
    for check in report:
        np.testing.assert_array_equal(w.heatmaps[check.name], mosaic(check.error_map()))
    # elements that were not sampled are NaN (drawn grey)
    assert np.isnan(w.heatmaps["x"]).sum() > 2 * 4 + 2 * 4  # more than the gaps
    before = bytes(w.view.value)
    w.tensor_select.value = "weight"
    ok(w)
    np.testing.assert_array_equal(w.error_map, report["weight"].error_map(), strict=True)
    assert bytes(w.view.value) != before
    assert "weight" in w.message.value and "good" in w.message.value


def test_a_wrong_gradient_shows_up():
    def f(x):
        return x**2

    def wrong(dy, x):  # missing the factor 2 on the last column
        g = 2 * x * dy
        g[:, -1] /= 2
        return g

    x = np.random.default_rng(1).normal(size=(4, 3)) + 3.0
    w = gradcheck_view(check_gradients(f, x, grad_fn=wrong))
    errors = w.heatmaps["x"]
    assert np.all(errors[:, -1] > 0.1) and np.all(errors[:, :-1] < 1e-6)
    assert "wrong" in w.message.value


def test_invalid_arguments(report):
    with pytest.raises(TypeError, match="GradCheckReport"):
        gradcheck_view({"x": np.zeros(3)})
    with pytest.raises(ValueError, match="no tensors"):
        gradcheck_view(type(report)((), report.thresholds, report.h, 0))


def test_colour_bar_names_each_zone_inside_its_band(report):
    # The zone names sit between the threshold lines that bound them, with both bounds in
    # the label, instead of on a line ("0.01: suspicious below" read either way).
    (edges, numbers), (middles, names) = colour_bar_labels((1e-7, 1e-4, 1e-2), 1e-9)
    assert edges == [1e-9, 1e-7, 1e-4, 1e-2, 2.0]
    assert numbers == ["1e-9", "1e-7", "1e-4", "1e-2", "2 (max)"]
    assert names == [
        "good: below 1e-7",
        "ok: 1e-7 to 1e-4",
        "suspicious: 1e-4 to 1e-2",
        "wrong: 1e-2 and above",
    ]
    for low, middle, high in zip(edges, middles, edges[1:], strict=False):
        assert low < middle < high
    with pytest.raises(ValueError, match="increasing"):
        colour_bar_labels((1e-4, 1e-7, 1e-2), 1e-9)

    # The drawn colour bar carries them: numbers on the lines, names inside the bands.
    w = gradcheck_view(report)
    bar = w._draw().axes[-1]
    (edges, numbers), (_, names) = colour_bar_labels(report.thresholds, w.lower)
    assert [t.get_text() for t in bar.get_yticklabels()] == numbers
    assert list(bar.get_yticks()) == pytest.approx(edges)
    drawn = {t.get_text(): t.get_position()[1] for t in bar.get_yticklabels(minor=True)}
    assert list(drawn) == names
    for (name, y), low, high in zip(drawn.items(), edges, edges[1:], strict=False):
        assert low < y < high, f"{name!r} drawn at {y}, outside its band {low}..{high}"
