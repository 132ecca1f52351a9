"""Bad arguments of conv2d / conv2d_backward / im2col / col2im raise the right exception, with a
message that names the argument and shows the shapes (or the bad value) involved.

Every case starts from valid arguments and breaks exactly one thing, so the error checked is
the one that thing causes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from cvcourse.kernels import col2im, conv2d, conv2d_backward, im2col

RNG = np.random.default_rng(0)
# Valid base arguments: x (2, 3, 8, 7) and weight (4, 3, 3, 2) give y (2, 4, 6, 6).
X = RNG.standard_normal((2, 3, 8, 7))
W = RNG.standard_normal((4, 3, 3, 2))
B = RNG.standard_normal(4)
DY = RNG.standard_normal((2, 4, 6, 6))
DY_STRIDE2 = RNG.standard_normal((2, 4, 3, 3))  # the output shape for stride 2
# A 3x3 window over an 8x7 image with stride 1: 6 * 5 = 30 positions, 3 * 9 = 27 rows.
COLS = RNG.standard_normal((2, 27, 30))


def msg(*parts: str) -> str:
    """A ``match`` pattern: the literal ``parts`` in this order, anything in between."""
    return ".*".join(re.escape(part) for part in parts)


def run_conv2d(x=X, weight=W, bias=B, dy=None, **kwargs):
    del dy  # only the backward takes it
    return conv2d(x, weight, bias, **kwargs)


def run_conv2d_backward(x=X, weight=W, bias=None, dy=DY, **kwargs):
    del bias  # the backward takes no bias array, only whether there was one
    return conv2d_backward(dy, x, weight, **kwargs)


def test_base_arguments_are_valid():
    assert run_conv2d().shape == DY.shape
    dx, dweight, dbias = run_conv2d_backward()
    assert (dx.shape, dweight.shape, dbias.shape) == (X.shape, W.shape, B.shape)
    assert im2col(X, 3).shape == COLS.shape[:1] + (27, 30)
    assert col2im(COLS, (8, 7), 3).shape == (2, 3, 8, 7)


# --- conv2d and conv2d_backward: the arguments they share ------------------------------------

SHARED_CASES = [
    # rank
    pytest.param(
        dict(x=X[0]), ValueError, msg("x must be 4-D", "got shape (3, 8, 7)"), id="x-rank-3"
    ),
    pytest.param(
        dict(x=X[None]), ValueError, msg("x must be 4-D", "(1, 2, 3, 8, 7)"), id="x-rank-5"
    ),
    pytest.param(
        dict(weight=W[0]),
        ValueError,
        msg("weight must be 4-D (out_channels, in_channels // groups, kH, kW)", "(3, 3, 2)"),
        id="weight-rank-3",
    ),
    pytest.param(
        dict(weight=W.reshape(4, 3, 3, 2, 1)),
        ValueError,
        msg("weight must be 4-D", "(4, 3, 3, 2, 1)"),
        id="weight-rank-5",
    ),
    # channels and groups
    pytest.param(
        dict(weight=W[:, :2]),
        ValueError,
        msg("weight (4, 2, 3, 2) expects 2 input channels", "x (2, 3, 8, 7) has 3"),
        id="channel-mismatch",
    ),
    pytest.param(
        dict(weight=RNG.standard_normal((3, 2, 3, 2)), groups=3),
        ValueError,
        msg("weight (3, 2, 3, 2) expects 6 input channels", "groups=3", "x (2, 3, 8, 7) has 3"),
        id="channel-mismatch-grouped",
    ),
    pytest.param(
        dict(weight=W[:, :1], groups=2),
        ValueError,
        msg("groups=2 does not divide the 3 input channels of x (2, 3, 8, 7)"),
        id="groups-not-dividing-in-channels",
    ),
    pytest.param(
        dict(
            x=RNG.standard_normal((2, 4, 8, 7)),
            weight=RNG.standard_normal((3, 2, 3, 2)),
            bias=RNG.standard_normal(3),
            groups=2,
        ),
        ValueError,
        msg("groups=2 does not divide the 3 output channels of weight (3, 2, 3, 2)"),
        id="groups-not-dividing-out-channels",
    ),
    pytest.param(dict(groups=0), ValueError, msg("groups must be >= 1, got 0"), id="groups-0"),
    pytest.param(
        dict(groups=-1), ValueError, msg("groups must be >= 1, got -1"), id="groups-negative"
    ),
    pytest.param(
        dict(groups=1.0), TypeError, msg("groups must be an int, got float 1.0"), id="groups-float"
    ),
    pytest.param(
        dict(groups=True), TypeError, msg("groups must be an int, got bool True"), id="groups-bool"
    ),
    # stride, padding, dilation: values
    pytest.param(dict(stride=0), ValueError, msg("stride must be positive, got 0"), id="stride-0"),
    pytest.param(
        dict(stride=-1), ValueError, msg("stride must be positive, got -1"), id="stride-negative"
    ),
    pytest.param(
        dict(stride=(1, 0)),
        ValueError,
        msg("stride must be positive, got (1, 0)"),
        id="stride-pair-with-0",
    ),
    pytest.param(
        dict(dilation=0), ValueError, msg("dilation must be positive, got 0"), id="dilation-0"
    ),
    pytest.param(
        dict(dilation=(0, 1)),
        ValueError,
        msg("dilation must be positive, got (0, 1)"),
        id="dilation-pair-with-0",
    ),
    pytest.param(
        dict(padding=-1), ValueError, msg("padding must be >= 0, got -1"), id="padding-negative"
    ),
    pytest.param(
        dict(padding=[0, -2]),
        ValueError,
        msg("padding must be >= 0, got [0, -2]"),
        id="padding-pair-negative",
    ),
    # stride, padding, dilation: types
    pytest.param(
        dict(stride=1.0),
        TypeError,
        msg("stride must be an int or a pair of ints, got 1.0"),
        id="stride-float",
    ),
    pytest.param(
        dict(stride=(1, 2.0)),
        TypeError,
        msg("stride must be an int or a pair of ints, got (1, 2.0)"),
        id="stride-pair-with-float",
    ),
    pytest.param(
        dict(stride=True),
        TypeError,
        msg("stride must be an int or a pair of ints, got True"),
        id="stride-bool",
    ),
    pytest.param(
        dict(stride=(True, 1)),
        TypeError,
        msg("stride must be an int or a pair of ints, got (True, 1)"),
        id="stride-pair-with-bool",
    ),
    pytest.param(
        dict(stride=(1, 1, 1)),
        TypeError,
        msg("stride must be an int or a pair of ints, got (1, 1, 1)"),
        id="stride-triple",
    ),
    pytest.param(
        dict(stride="1"),
        TypeError,
        msg("stride must be an int or a pair of ints, got '1'"),
        id="stride-str",
    ),
    pytest.param(
        dict(padding=0.5),
        TypeError,
        msg("padding must be an int or a pair of ints, got 0.5"),
        id="padding-float",
    ),
    pytest.param(
        dict(padding=False),
        TypeError,
        msg("padding must be an int or a pair of ints, got False"),
        id="padding-bool",
    ),
    pytest.param(
        dict(dilation=2.0),
        TypeError,
        msg("dilation must be an int or a pair of ints, got 2.0"),
        id="dilation-float",
    ),
    # kernel larger than the padded input
    pytest.param(
        dict(weight=RNG.standard_normal((4, 3, 9, 2))),
        ValueError,
        msg("weight (4, 3, 9, 2) spans 9x2", "padded input is only 8x7", "input 8x7"),
        id="kernel-taller-than-input",
    ),
    pytest.param(
        dict(weight=RNG.standard_normal((4, 3, 3, 10)), padding=1),
        ValueError,
        msg("weight (4, 3, 3, 10) spans 3x10", "padded input is only 10x9", "padding (1, 1)"),
        id="kernel-wider-than-padded-input",
    ),
    pytest.param(
        dict(dilation=(1, 7)),
        ValueError,
        msg("weight (4, 3, 3, 2) spans 3x8", "dilation (1, 7)", "padded input is only 8x7"),
        id="dilated-kernel-larger-than-input",
    ),
    # dtypes
    pytest.param(
        dict(x=X.astype(np.int64)),
        TypeError,
        msg("x must be float32 or float64, got dtype int64"),
        id="x-int64",
    ),
    pytest.param(
        dict(x=X.astype(np.int32)),
        TypeError,
        msg("x must be float32 or float64, got dtype int32"),
        id="x-int32",
    ),
    pytest.param(
        dict(x=X.astype(np.float16)),
        TypeError,
        msg("x must be float32 or float64, got dtype float16"),
        id="x-float16",
    ),
    pytest.param(
        dict(x=X > 0), TypeError, msg("x must be float32 or float64, got dtype bool"), id="x-bool"
    ),
    pytest.param(
        dict(weight=W.astype(np.int64)),
        TypeError,
        msg("weight must be float32 or float64, got dtype int64"),
        id="weight-int64",
    ),
    pytest.param(
        dict(x=X.astype(np.float32)),
        TypeError,
        msg("weight has dtype float64 but x has dtype float32"),
        id="x-float32-weight-float64",
    ),
    pytest.param(
        dict(weight=W.astype(np.float32)),
        TypeError,
        msg("weight has dtype float32 but x has dtype float64"),
        id="x-float64-weight-float32",
    ),
    pytest.param(
        dict(x=[[[[1.0, 2.0]]], [[[1.0]]]]),
        TypeError,
        msg("x must be a numpy array, got list"),
        id="x-ragged-list",
    ),
    # empty arrays
    pytest.param(
        dict(x=X[:0]),
        ValueError,
        msg("x must not be empty, got shape (0, 3, 8, 7)"),
        id="x-empty-batch",
    ),
    pytest.param(
        dict(x=X[:, :, :0]),
        ValueError,
        msg("x must not be empty, got shape (2, 3, 0, 7)"),
        id="x-empty-height",
    ),
    pytest.param(
        dict(weight=W[:0], bias=B[:0]),
        ValueError,
        msg("weight must not be empty, got shape (0, 3, 3, 2)"),
        id="weight-empty",
    ),
    # algorithm
    pytest.param(
        dict(stride=2, algorithm="direct", dy=DY_STRIDE2),
        ValueError,
        msg("the direct algorithm needs stride 1, got stride (2, 2)"),
        id="direct-with-stride-2",
    ),
    pytest.param(
        dict(stride=(1, 2), algorithm="direct", dy=RNG.standard_normal((2, 4, 6, 3))),
        ValueError,
        msg("the direct algorithm needs stride 1, got stride (1, 2)"),
        id="direct-with-stride-1x2",
    ),
    pytest.param(
        dict(algorithm="fft"),
        ValueError,
        msg("algorithm must be one of ('auto', 'direct', 'gemm'), got 'fft'"),
        id="unknown-algorithm",
    ),
    pytest.param(
        dict(algorithm="GEMM"),
        ValueError,
        msg("algorithm must be one of", "got 'GEMM'"),
        id="algorithm-wrong-case",
    ),
    pytest.param(
        dict(algorithm=None),
        ValueError,
        msg("algorithm must be one of", "got None"),
        id="algorithm-none",
    ),
]


@pytest.mark.parametrize("run", [run_conv2d, run_conv2d_backward], ids=["forward", "backward"])
@pytest.mark.parametrize(("arguments", "error", "pattern"), SHARED_CASES)
def test_conv_rejects_bad_argument(run, arguments, error, pattern):
    with pytest.raises(error, match=pattern):
        run(**arguments)


# --- conv2d only: bias ----------------------------------------------------------------------

BIAS_CASES = [
    pytest.param(
        B[:3],
        ValueError,
        msg("bias has shape (3,) but weight (4, 3, 3, 2) has 4 output channels"),
        id="bias-too-short",
    ),
    pytest.param(
        np.zeros(5),
        ValueError,
        msg("bias has shape (5,) but weight (4, 3, 3, 2) has 4 output channels"),
        id="bias-too-long",
    ),
    pytest.param(
        B[:, None],
        ValueError,
        msg("bias must be 1-D (out_channels,)", "got shape (4, 1)"),
        id="bias-rank-2",
    ),
    pytest.param(
        np.float64(1.0),
        ValueError,
        msg("bias must be 1-D (out_channels,)", "got shape ()"),
        id="bias-scalar",
    ),
    pytest.param(B[:0], ValueError, msg("bias must not be empty, got shape (0,)"), id="bias-empty"),
    pytest.param(
        B.astype(np.int64),
        TypeError,
        msg("bias must be float32 or float64, got dtype int64"),
        id="bias-int64",
    ),
    pytest.param(
        B.astype(np.float32),
        TypeError,
        msg("bias has dtype float32 but x has dtype float64"),
        id="bias-float32-x-float64",
    ),
]


@pytest.mark.parametrize(("bias", "error", "pattern"), BIAS_CASES)
def test_conv2d_rejects_bad_bias(bias, error, pattern):
    with pytest.raises(error, match=pattern):
        conv2d(X, W, bias)


# --- conv2d_backward only: dy ---------------------------------------------------------------

DY_CASES = [
    pytest.param(
        dict(dy=DY[:, :, :5]),
        ValueError,
        msg(
            "dy has shape (2, 4, 5, 6) but the output of conv2d(x (2, 3, 8, 7), "
            "weight (4, 3, 3, 2)) has shape (2, 4, 6, 6)"
        ),
        id="dy-wrong-height",
    ),
    pytest.param(
        dict(dy=DY[:, :3]),
        ValueError,
        msg("dy has shape (2, 3, 6, 6)", "has shape (2, 4, 6, 6)"),
        id="dy-wrong-channels",
    ),
    pytest.param(
        dict(dy=DY[:1]),
        ValueError,
        msg("dy has shape (1, 4, 6, 6)", "has shape (2, 4, 6, 6)"),
        id="dy-wrong-batch",
    ),
    pytest.param(
        dict(dy=DY, stride=2),
        ValueError,
        msg("dy has shape (2, 4, 6, 6)", "has shape (2, 4, 3, 3)"),
        id="dy-of-stride-1-with-stride-2",
    ),
    pytest.param(
        dict(dy=DY[0]),
        ValueError,
        msg("dy must be 4-D (N, out_channels, H_out, W_out)", "(4, 6, 6)"),
        id="dy-rank-3",
    ),
    pytest.param(
        dict(dy=DY[:0]),
        ValueError,
        msg("dy must not be empty, got shape (0, 4, 6, 6)"),
        id="dy-empty",
    ),
    pytest.param(
        dict(dy=DY.astype(np.int64)),
        TypeError,
        msg("dy must be float32 or float64, got dtype int64"),
        id="dy-int64",
    ),
    pytest.param(
        dict(dy=DY.astype(np.float32)),
        TypeError,
        msg("dy has dtype float32 but x has dtype float64"),
        id="dy-float32-x-float64",
    ),
]


@pytest.mark.parametrize(("arguments", "error", "pattern"), DY_CASES)
def test_conv2d_backward_rejects_bad_dy(arguments, error, pattern):
    with pytest.raises(error, match=pattern):
        run_conv2d_backward(**arguments)


@pytest.mark.parametrize("flag", [np.ones(3), 1, "yes", None], ids=["array", "int", "str", "none"])
def test_conv2d_backward_bias_flag_must_be_a_bool(flag):
    """``bias`` says whether the forward had one; an array or a number there is a mistake."""
    with pytest.raises(TypeError, match=msg("bias must be True or False")):
        conv2d_backward(DY, X, W, bias=flag)


# --- im2col and col2im ----------------------------------------------------------------------

# Window arguments both take (defaults: kernel_size 3 on the 8x7 image).
WINDOW_CASES = [
    pytest.param(
        dict(kernel_size=0), ValueError, msg("kernel_size must be positive, got 0"), id="kernel-0"
    ),
    pytest.param(
        dict(kernel_size=(3, 0)),
        ValueError,
        msg("kernel_size must be positive, got (3, 0)"),
        id="kernel-pair-with-0",
    ),
    pytest.param(
        dict(kernel_size=2.5),
        TypeError,
        msg("kernel_size must be an int or a pair of ints, got 2.5"),
        id="kernel-float",
    ),
    pytest.param(
        dict(kernel_size=True),
        TypeError,
        msg("kernel_size must be an int or a pair of ints, got True"),
        id="kernel-bool",
    ),
    pytest.param(
        dict(kernel_size=(3,)),
        TypeError,
        msg("kernel_size must be an int or a pair of ints, got (3,)"),
        id="kernel-single-element-tuple",
    ),
    pytest.param(dict(stride=0), ValueError, msg("stride must be positive, got 0"), id="stride-0"),
    pytest.param(
        dict(stride=1.5),
        TypeError,
        msg("stride must be an int or a pair of ints, got 1.5"),
        id="stride-float",
    ),
    pytest.param(
        dict(stride=False),
        TypeError,
        msg("stride must be an int or a pair of ints, got False"),
        id="stride-bool",
    ),
    pytest.param(
        dict(padding=(-1, 0)),
        ValueError,
        msg("padding must be >= 0, got (-1, 0)"),
        id="padding-negative",
    ),
    pytest.param(
        dict(dilation=-1), ValueError, msg("dilation must be positive, got -1"), id="dilation-neg"
    ),
    pytest.param(
        dict(kernel_size=(9, 2)),
        ValueError,
        msg("the window spans 9x2 (kernel 9x2", "padded input is only 8x7 (input 8x7"),
        id="window-taller-than-input",
    ),
    pytest.param(
        dict(dilation=(1, 4)),
        ValueError,
        msg("the window spans 3x9", "dilation (1, 4)", "padded input is only 8x7"),
        id="dilated-window-wider-than-input",
    ),
]


@pytest.mark.parametrize(("arguments", "error", "pattern"), WINDOW_CASES)
def test_im2col_rejects_bad_window(arguments, error, pattern):
    arguments = dict(kernel_size=3) | arguments
    with pytest.raises(error, match=pattern):
        im2col(X, **arguments)


@pytest.mark.parametrize(("arguments", "error", "pattern"), WINDOW_CASES)
def test_col2im_rejects_bad_window(arguments, error, pattern):
    arguments = dict(kernel_size=3) | arguments
    with pytest.raises(error, match=pattern):
        col2im(COLS, (8, 7), **arguments)


IM2COL_X_CASES = [
    pytest.param(X[0], ValueError, msg("x must be 4-D", "got shape (3, 8, 7)"), id="x-rank-3"),
    pytest.param(
        X.astype(np.int64),
        TypeError,
        msg("x must be float32 or float64, got dtype int64"),
        id="x-int64",
    ),
    pytest.param(
        X[:, :0], ValueError, msg("x must not be empty, got shape (2, 0, 8, 7)"), id="x-empty"
    ),
]


@pytest.mark.parametrize(("x", "error", "pattern"), IM2COL_X_CASES)
def test_im2col_rejects_bad_x(x, error, pattern):
    with pytest.raises(error, match=pattern):
        im2col(x, 3)


COL2IM_CASES = [
    pytest.param(
        dict(cols=COLS[None]),
        ValueError,
        msg("cols must be 3-D (N, C*kh*kw, L)", "got shape (1, 2, 27, 30)"),
        id="cols-rank-4",
    ),
    pytest.param(
        dict(cols=COLS[0]),
        ValueError,
        msg("cols must be 3-D (N, C*kh*kw, L)", "got shape (27, 30)"),
        id="cols-rank-2",
    ),
    pytest.param(
        dict(cols=COLS[:, :26]),
        ValueError,
        msg(
            "cols has shape (2, 26, 30) but a 3x3 window over a 8x7 image (stride (1, 1), "
            "padding (0, 0), dilation (1, 1)) needs (N, C*9, 30)"
        ),
        id="cols-rows-not-multiple-of-taps",
    ),
    pytest.param(
        dict(cols=COLS[:, :, :29]),
        ValueError,
        msg("cols has shape (2, 27, 29)", "needs (N, C*9, 30)"),
        id="cols-wrong-positions",
    ),
    pytest.param(
        dict(stride=2),
        ValueError,
        msg("cols has shape (2, 27, 30)", "stride (2, 2)", "needs (N, C*9, 9)"),
        id="cols-of-stride-1-with-stride-2",
    ),
    pytest.param(
        dict(output_size=(8, 8)),
        ValueError,
        msg("cols has shape (2, 27, 30)", "over a 8x8 image", "needs (N, C*9, 36)"),
        id="cols-for-another-output-size",
    ),
    pytest.param(
        dict(cols=COLS[:0]),
        ValueError,
        msg("cols must not be empty, got shape (0, 27, 30)"),
        id="cols-empty",
    ),
    pytest.param(
        dict(cols=COLS.astype(np.int64)),
        TypeError,
        msg("cols must be float32 or float64, got dtype int64"),
        id="cols-int64",
    ),
    pytest.param(
        dict(output_size=0),
        ValueError,
        msg("output_size must be positive, got 0"),
        id="output-size-0",
    ),
    pytest.param(
        dict(output_size=(8, -7)),
        ValueError,
        msg("output_size must be positive, got (8, -7)"),
        id="output-size-negative",
    ),
    pytest.param(
        dict(output_size=8.0),
        TypeError,
        msg("output_size must be an int or a pair of ints, got 8.0"),
        id="output-size-float",
    ),
    pytest.param(
        dict(output_size=(8, 7, 1)),
        TypeError,
        msg("output_size must be an int or a pair of ints, got (8, 7, 1)"),
        id="output-size-triple",
    ),
    pytest.param(
        dict(output_size=(2, 7)),
        ValueError,
        msg("the window spans 3x3", "padded input is only 2x7 (input 2x7"),
        id="output-size-smaller-than-window",
    ),
]


@pytest.mark.parametrize(("arguments", "error", "pattern"), COL2IM_CASES)
def test_col2im_rejects_bad_cols_or_output_size(arguments, error, pattern):
    arguments = dict(cols=COLS, output_size=(8, 7), kernel_size=3) | arguments
    with pytest.raises(error, match=pattern):
        col2im(**arguments)


# --- valid edge cases are not rejected ------------------------------------------------------


@pytest.mark.parametrize(
    ("weight_shape", "padding", "out_hw"),
    [((4, 3, 8, 7), 0, (1, 1)), ((4, 3, 10, 9), 1, (1, 1)), ((4, 3, 1, 1), (2, 3), (12, 13))],
    ids=["kernel-as-large-as-input", "kernel-as-large-as-padded-input", "padding-beyond-kernel"],
)
def test_kernel_up_to_the_padded_input_size_is_valid(weight_shape, padding, out_hw):
    weight = RNG.standard_normal(weight_shape)
    y = conv2d(X, weight, padding=padding)
    assert y.shape == (2, 4, *out_hw)
    dx, dweight, _ = conv2d_backward(y, X, weight, padding=padding)
    assert dx.shape == X.shape and dweight.shape == weight.shape


def test_numpy_integers_and_lists_are_accepted_as_sizes():
    expected = conv2d(X, W, B, stride=(1, 2), padding=(1, 0), dilation=1, groups=1)
    y = conv2d(
        X,
        W,
        B,
        stride=[np.int64(1), np.int32(2)],
        padding=[1, np.int8(0)],
        dilation=np.int64(1),
        groups=np.int64(1),
    )
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(
        im2col(X, np.int64(3), stride=[1, 2]), im2col(X, 3, stride=(1, 2))
    )


@pytest.mark.parametrize(
    "n, error, match",
    [
        (True, TypeError, "n must be an int, got bool True"),
        (2.0, TypeError, "n must be an int, got float 2.0"),
        (0, ValueError, r"n must be between 1 and \d+ \(NUMBA_NUM_THREADS\), got 0"),
    ],
)
def test_threads_rejects_a_bad_count(n, error, match):
    from cvcourse.kernels import threads

    with pytest.raises(error, match=match), threads(n):
        pass
