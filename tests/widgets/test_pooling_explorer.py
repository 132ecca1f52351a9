"""pooling_explorer: forward values and routed gradients agree with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvcourse.widgets import pooling_explorer
from cvcourse.widgets.pooling import DEFAULT_GRID


def torch_pool(x, dy, mode, k, s, p):
    t = torch.tensor(x[None, None], dtype=torch.float64, requires_grad=True)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    y = pool(t, k, s, p)
    y.backward(torch.tensor(dy[None, None]))
    return y[0, 0].detach().numpy(), t.grad[0, 0].numpy()


GEOMETRIES = [(3, 1, 0), (3, 2, 1), (2, 1, 1), (4, 3, 2)]  # and the default (2, 2, 0)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_forward_and_backward_match_torch(ok, mode):
    w = pooling_explorer(mode=mode)
    for k, s, p in [(2, 2, 0), *GEOMETRIES]:
        if (k, s, p) != (2, 2, 0):
            with w.hold():
                w.kernel_size.value, w.stride.value, w.padding.value = k, s, p
        ok(w)
        y, dx = torch_pool(w.x, w.upstream, mode, k, s, p)
        np.testing.assert_allclose(w.output, y, err_msg=f"{mode} k={k} s={s} p={p}")
        np.testing.assert_allclose(w.grad_input, dx, atol=1e-12, err_msg=f"k={k} s={s} p={p}")
        # the upstream gradient has distinct values 1, 2, 3, ... so routing is visible
        np.testing.assert_array_equal(w.upstream.ravel(), np.arange(1, w.upstream.size + 1))


def test_ties_go_to_the_first_maximum_and_overlaps_add_up():
    w = pooling_explorer()  # 2x2, stride 2
    np.testing.assert_array_equal(w.x, DEFAULT_GRID)
    # window (0, 0) = [[1, 3], [4, 4]]: two maxima, the first in row-major order wins
    assert w.indices[0, 0] == 6 and w.routed_to == [(1, 0)]
    assert w.grad_input[1, 0] == 1 and w.grad_input[1, 1] == 0
    assert "first of 2 tied maxima" in w.message.value
    w.kernel_size.value, w.stride.value = 3, 1  # overlapping windows
    # the 6 at (2, 2) is the first maximum of the nine windows (oy, ox < 3) that contain it
    # (they also hold the tied 6 at (3, 2) or not): their gradients add up
    assert w.grad_input[2, 2] == sum(4 * oy + ox + 1 for oy in range(3) for ox in range(3))
    assert w.grad_input[3, 2] == 13 + 14 + 15  # the bottom row of windows, without (2, 2)
    assert "add up" in w.message.value


def test_selected_window_and_avg_routing():
    w = pooling_explorer(mode="avg")
    w.position.value = 4  # output (1, 1) of 3x3
    assert w.window_cell == (1, 1)
    assert w.window_cells == [(r, c) for r in (2, 3) for c in (2, 3)]
    assert w.routed_to == w.window_cells and w.indices is None
    w.upstream_select.value = "ones"
    np.testing.assert_allclose(w.grad_input, np.full((6, 6), 0.25))


def test_invalid_padding_is_explained(ok):
    w = pooling_explorer()
    before = w.view.value
    w.padding.value = 2  # > 2 // 2
    ok(w)
    assert not w.valid and w.output is None and w.grad_input is None
    assert "Invalid" in w.message.value and "half" in w.message.value
    assert w.view.value != before and w.position.disabled
    with pytest.raises(RuntimeError, match="half"):  # torch agrees
        F.max_pool2d(torch.zeros(1, 1, 6, 6), 2, 2, 2)
    w.kernel_size.value = 4
    assert w.valid


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"x must be 2-D"):
        pooling_explorer(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="mode"):
        pooling_explorer(mode="min")
    with pytest.raises(ValueError, match="kernel_size"):
        pooling_explorer(np.zeros((3, 3)), kernel_size=4)
    with pytest.raises(TypeError, match="stride"):
        pooling_explorer(stride=2.0)
