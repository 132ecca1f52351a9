"""conv_backprop_explorer: receptive fields by hand; gradients by the formulas and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvcourse.widgets import conv_backprop_explorer
from cvcourse.widgets.backprop import dilate_and_pad


def correlate(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Plain 'valid' cross-correlation, loops, as an independent reference."""
    kh, kw = k.shape
    return np.array(
        [
            [np.sum(a[r : r + kh, c : c + kw] * k) for c in range(a.shape[1] - kw + 1)]
            for r in range(a.shape[0] - kh + 1)
        ]
    )


def torch_grads(w, s, p):
    x = torch.tensor(w.input[None, None], requires_grad=True)
    k = torch.tensor(w.kernel[None, None], requires_grad=True)
    y = F.conv2d(x, k, stride=s, padding=p)
    y.backward(torch.tensor(w.upstream[None, None]))
    return y[0, 0].detach().numpy(), x.grad[0, 0].numpy(), k.grad[0, 0].numpy()


def test_receptive_field_hand_worked(ok):
    w = conv_backprop_explorer()  # 5x5 input, 3x3 kernel, stride 1, no padding
    ok(w)
    assert w.output.shape == (3, 3) and w.receptive_field[0] == (0, 0)
    with w.hold():
        w.out_row.value, w.out_col.value = 1, 2
    assert w.receptive_field == [(r, c) for r in (1, 2, 3) for c in (2, 3, 4)]
    assert "O[1,2]" in w.explanation.value
    with w.hold():  # output (0, 0) now hangs over the padding: 2x2 real cells
        w.padding.value, w.out_row.value, w.out_col.value = 1, 0, 0
    assert w.receptive_field == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with w.hold():  # stride 2: 3x3 output; output (2, 1) reads rows 3..5, cols 1..3
        w.stride.value, w.out_row.value, w.out_col.value = 2, 2, 1
    assert w.receptive_field == [(r, c) for r in (3, 4) for c in (1, 2, 3)]


def test_input_cell_meets_the_rotated_kernel(ok):
    w = conv_backprop_explorer(mode="input cell")
    assert (w.in_row.value, w.in_col.value) == (0, 0)  # a corner is read once, by K[0, 0]
    assert w.contributions == [((0, 0), (0, 0))]
    with w.hold():  # the centre: every output, entries reversed
        w.in_row.value, w.in_col.value = 2, 2
    ok(w)
    assert w.contributions == [((a, b), (2 - a, 2 - b)) for a in range(3) for b in range(3)]
    expected = sum(w.upstream[o] * w.kernel[uv] for o, uv in w.contributions)
    assert w.grad_input[2, 2] == expected
    assert "\\frac{\\partial L}{\\partial I}[2,2]" in w.explanation.value
    with w.hold():  # hand-worked: outputs (0|1, 0|1), entries 1 + 1 - 2*o
        w.stride.value, w.padding.value, w.in_row.value, w.in_col.value = 2, 1, 1, 1
    assert w.contributions == [
        ((0, 0), (2, 2)),
        ((0, 1), (2, 0)),
        ((1, 0), (0, 2)),
        ((1, 1), (0, 0)),
    ]


def test_kernel_entry_pairs():
    w = conv_backprop_explorer(stride=2, padding=1, mode="kernel entry")
    w.k_row.value = 1
    assert w.kernel_pairs[:3] == [((0, 0), (0, -1)), ((0, 1), (0, 1)), ((0, 2), (0, 3))]
    padded = np.pad(w.input, 1)
    expected = sum(w.upstream[o] * padded[r + 1, c + 1] for o, (r, c) in w.kernel_pairs)
    assert w.grad_kernel[1, 0] == expected


def test_gradients_are_the_two_correlations_and_match_torch(ok):
    w = conv_backprop_explorer()
    for s, p in [(1, 0), (1, 2), (2, 1), (3, 2)]:
        with w.hold():
            w.stride.value, w.padding.value = s, p
        ok(w)
        y, dx, dk = torch_grads(w, s, p)
        np.testing.assert_allclose(w.output, y)
        np.testing.assert_allclose(w.grad_input, dx)
        np.testing.assert_allclose(w.grad_kernel, dk)
        # dL/dI = CC(Z, rot180 K) with Z the dilated, padded upstream gradient
        z = dilate_and_pad(w.upstream, w.input.shape, w.kernel.shape, s, p)
        np.testing.assert_allclose(w.upstream_full, z)
        np.testing.assert_allclose(correlate(z, w.kernel[::-1, ::-1]), w.grad_input)
        if s == 1:  # dL/dK = CC(I_pad, G), and Z is G padded by k - 1 - p
            np.testing.assert_allclose(correlate(np.pad(w.input, p), w.upstream), w.grad_kernel)
            np.testing.assert_allclose(z, np.pad(w.upstream, 2 - p))


def test_invalid_geometry_is_explained(ok):
    w = conv_backprop_explorer(np.ones((2, 2)), np.ones((3, 3)))
    ok(w)
    assert not w.valid and w.output is None and "Increase the padding" in w.message.value
    w.padding.value = 1
    assert w.valid and w.output.shape == (2, 2)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.zeros((9, 9)),), {}, ValueError, "8x8"),
        ((np.zeros(5),), {}, ValueError, "x must be 2-D"),
        ((None, np.zeros((6, 6))), {}, ValueError, "5x5"),
        ((None, "sobel"), {}, TypeError, "kernel"),
        ((), {"stride": 0}, ValueError, "stride"),
        ((), {"mode": "kernel"}, ValueError, "mode"),
    ],
)
def test_invalid_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv_backprop_explorer(*args, **kwargs)
