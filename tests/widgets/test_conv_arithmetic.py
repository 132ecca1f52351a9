"""conv_arithmetic: output sizes by the formula and by torch; invalid settings explained."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cvcourse.widgets import ConvArithmetic, conv_arithmetic

CASES = [  # size, kernel, stride, padding, dilation (the widget starts at 5, 3, 2, 1, 1)
    (5, 3, 1, 0, 1),
    (7, 3, 2, 0, 1),
    (6, 3, 2, 1, 1),  # stride leaves a row uncovered
    (7, 3, 1, 0, 2),
    (10, 4, 3, 2, 1),
    (8, 2, 2, 0, 3),
    (1, 1, 1, 4, 1),  # padding wider than the kernel
    (5, 3, 2, 1, 1),
]


def set_geometry(w: ConvArithmetic, size, k, s, p, d) -> None:
    with w.hold():
        w.size.value, w.kernel_size.value, w.stride.value = size, k, s
        w.padding.value, w.dilation.value = p, d


def test_output_size_matches_the_formula_and_torch(ok):
    w = conv_arithmetic()
    for size, k, s, p, d in CASES:
        before = bytes(w.view.value)
        set_geometry(w, size, k, s, p, d)
        ok(w)
        by_hand = math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1
        by_torch = F.conv2d(
            torch.zeros(1, 1, size, size),
            torch.zeros(1, 1, k, k),
            stride=s,
            padding=p,
            dilation=d,
        ).shape[-1]
        assert w.valid and w.out_size == by_hand == by_torch
        assert w.position.max == w.play.max == by_hand**2 - 1
        assert f"= {by_hand}$$" in w.formula.value  # the numbers filled in, and the result
        assert f"{size} + 2\\cdot {p}" in w.formula.value
        assert bytes(w.view.value) != before


def test_default_and_kernel_positions(ok):
    w = conv_arithmetic()
    ok(w)
    assert (w.out_size, w.output_cell) == (3, (0, 0))
    # 5x5 input, padding 1, stride 2: output (0, 0) reads padded rows/cols -1..1
    assert w.taps[0] == (-1, -1) and w.taps[-1] == (1, 1) and len(w.taps) == 9
    w.position.value = 5  # row-major: output (1, 2)
    assert w.output_cell == (1, 2)
    assert w.taps[0] == (1, 3) and w.taps[-1] == (3, 5)
    w.play.value = 4  # the Play widget drives the slider
    assert w.position.value == 4 and w.output_cell == (1, 1)


def test_dilated_taps():
    w = conv_arithmetic(size=7, kernel_size=3, stride=1, padding=0, dilation=2)
    assert w.out_size == 3
    assert w.taps == [(r, c) for r in (0, 2, 4) for c in (0, 2, 4)]


def test_uncovered_rows_are_pointed_out():
    w = conv_arithmetic(size=6, kernel_size=3, stride=2, padding=0)
    assert w.unused == 1 and "never covered" in w.message.value


@pytest.mark.parametrize(("size", "k", "p", "d"), [(3, 5, 0, 1), (1, 3, 0, 1), (4, 3, 0, 3)])
def test_kernel_larger_than_padded_input_is_explained(ok, size, k, p, d):
    w = conv_arithmetic()
    set_geometry(w, size, k, 1, p, d)
    ok(w)  # no crash, a picture
    assert not w.valid and w.out_size is None and w.taps == []
    assert "Invalid" in w.message.value and f"<b>{d * (k - 1) + 1}</b>" in w.message.value
    assert w.position.disabled and w.play.disabled
    with pytest.raises(RuntimeError):  # torch refuses the same setting
        F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), padding=p, dilation=d)
    set_geometry(w, 5, 3, 1, 1, 1)  # and it recovers
    assert w.valid and w.out_size == 5 and not w.position.disabled


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"size": 0}, ValueError), ({"stride": 1.5}, TypeError), ({"dilation": True}, TypeError)],
)
def test_invalid_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        conv_arithmetic(**kwargs)
