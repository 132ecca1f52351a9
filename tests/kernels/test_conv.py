"""conv2d / conv2d_backward against torch (``grader.reference``), on every algorithm.

The hypothesis cases cover random batch sizes (1 included), channel counts, groups dividing
both channel counts, non-square inputs and kernels (even sizes too), strides, paddings and
dilations given as ints or ``(h, w)`` pairs, with and without bias, in float32 and float64.
Every case is built valid (the dilated kernel always fits the padded input) and runs
``"gemm"``, ``"auto"`` and, when the stride is 1, ``"direct"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cvcourse.kernels import conv2d, conv2d_backward
from cvcourse.kernels.conv import DIRECT_MIN_KERNEL_TAPS, DIRECT_MIN_PLANE
from grader import reference

from .strategies import as_pair, int_or_pair

DTYPES = (np.float32, np.float64)

# Every input below is drawn uniformly from [-1, 1], so each product summed into an output
# element has magnitude <= 1. The rounding error of a K-term sum grows with K: with random
# signs the partial sums stay around sqrt(K) and each of the K additions rounds off about
# eps * sqrt(K), i.e. about K * eps in total. Both sides (ours: blocked / reassociated sums
# and BLAS; torch: its own blocking) carry such an error, so the absolute tolerance is a
# budget per summed term times the number of terms K of the output checked (see `_terms`).
# Measured over 400 random cases of `conv_cases`, the worst error was 0.7 * K * eps in both
# dtypes (and 3000 more cases pass); the budget is 8 * K * eps. The relative tolerance
# covers the large entries.
TOLERANCE = {
    np.float32: dict(rtol=1e-5, atol_per_term=8 * np.finfo(np.float32).eps),
    np.float64: dict(rtol=1e-12, atol_per_term=8 * np.finfo(np.float64).eps),
}

# How much each hypothesis case may cost: at most 3 images of 9 channels of about 25 x 25,
# and 18 output channels.
MAX_BATCH = 3
MAX_GROUPS = 3
MAX_IN_PER_GROUP = 3
# Up to 6 output channels per group: the direct kernel works on blocks of 4 output channels
# (and pairs for the weight gradient), so this reaches full blocks, remainders and both.
MAX_OUT_PER_GROUP = 6


@dataclass
class ConvCase:
    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    dy: np.ndarray
    stride: int | tuple[int, int]
    padding: int | tuple[int, int]
    dilation: int | tuple[int, int]
    groups: int
    seed: int  # of the random arrays: with the shapes, enough to rebuild a failing case

    @property
    def dtype(self):
        return self.x.dtype.type

    @property
    def kwargs(self) -> dict:
        return dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
        )

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Every algorithm that accepts this case: direct needs stride 1."""
        return ("gemm", "auto", "direct") if as_pair(self.stride) == (1, 1) else ("gemm", "auto")

    def __repr__(self) -> str:
        bias = None if self.bias is None else self.bias.shape
        return (
            f"ConvCase(dtype={self.x.dtype}, x={self.x.shape}, weight={self.weight.shape}, "
            f"bias={bias}, dy={self.dy.shape}, stride={self.stride!r}, "
            f"padding={self.padding!r}, dilation={self.dilation!r}, groups={self.groups}, "
            f"seed={self.seed})"
        )

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints a failing case
        printer.text(repr(self))


def _uniform(rng, shape, dtype) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


@st.composite
def conv_cases(draw, dtypes=DTYPES) -> ConvCase:
    dtype = draw(st.sampled_from(dtypes))
    batch = draw(st.integers(1, MAX_BATCH))
    groups = draw(st.integers(1, MAX_GROUPS))
    in_channels = groups * draw(st.integers(1, MAX_IN_PER_GROUP))
    out_channels = groups * draw(st.integers(1, MAX_OUT_PER_GROUP))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    # Stride 1 half the time or so, so that the direct algorithm runs often.
    stride = draw(st.one_of(st.just(1), int_or_pair(1, 3)))
    padding = draw(int_or_pair(0, 3))
    dilation = draw(int_or_pair(1, 3))
    (sh, sw), (ph, pw), (dh, dw) = as_pair(stride), as_pair(padding), as_pair(dilation)
    # The smallest input the dilated kernel fits once padded, plus a few rows and columns
    # (drawn separately for H and W, so inputs are mostly non-square).
    height = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 12))
    width = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 12))
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    has_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return ConvCase(
        x=_uniform(rng, (batch, in_channels, height, width), dtype),
        weight=_uniform(rng, (out_channels, in_channels // groups, kh, kw), dtype),
        bias=_uniform(rng, (out_channels,), dtype) if has_bias else None,
        dy=_uniform(rng, (batch, out_channels, out_h, out_w), dtype),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        seed=seed,
    )


def _terms(case: ConvCase) -> dict[str, int]:
    """Products summed into one element of each output (the tolerance scales with it)."""
    out_channels, in_per_group, kh, kw = case.weight.shape
    batch, _, out_h, out_w = case.dy.shape
    return dict(
        y=in_per_group * kh * kw + 1,  # + 1: the bias
        dx=(out_channels // case.groups) * kh * kw,  # at most every tap of every output channel
        dweight=batch * out_h * out_w,
        dbias=batch * out_h * out_w,
    )


def _assert_close(actual, expected, *, dtype, terms: int, what: str) -> None:
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}, expected {dtype}"
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(
        actual, expected, rtol=tol["rtol"], atol=tol["atol_per_term"] * terms, err_msg=what
    )


def _inputs(case: ConvCase) -> dict[str, np.ndarray]:
    arrays = dict(x=case.x, weight=case.weight, dy=case.dy)
    if case.bias is not None:
        arrays["bias"] = case.bias
    return arrays


def _run(case: ConvCase, algorithm: str, *, x=None, weight=None, bias=None, dy=None):
    """Forward and backward of ``case`` with ``algorithm``; arrays default to the case's."""
    x = case.x if x is None else x
    weight = case.weight if weight is None else weight
    bias = case.bias if bias is None else bias
    dy = case.dy if dy is None else dy
    y = conv2d(x, weight, bias, **case.kwargs, algorithm=algorithm)
    dx, dweight, dbias = conv2d_backward(
        dy, x, weight, **case.kwargs, bias=case.bias is not None, algorithm=algorithm
    )
    return y, dx, dweight, dbias


@given(case=conv_cases())
def test_conv2d_and_backward_match_torch_for_every_algorithm(case):
    # Shown by --hypothesis-show-statistics: how often each path runs.
    event("algorithms: " + ", ".join(case.algorithms))
    event(f"groups > 1: {case.groups > 1}")
    event(f"output channels per group >= 4: {case.weight.shape[0] // case.groups >= 4}")
    y_ref, dx_ref, dw_ref, db_ref = reference.conv2d(
        case.x, case.weight, case.bias, case.dy, **case.kwargs
    )
    terms = _terms(case)
    originals = {name: array.copy() for name, array in _inputs(case).items()}
    for algorithm in case.algorithms:
        y, dx, dweight, dbias = _run(case, algorithm)
        check = dict(dtype=case.dtype)
        _assert_close(y, y_ref, **check, terms=terms["y"], what=f"{algorithm}: y")
        _assert_close(dx, dx_ref, **check, terms=terms["dx"], what=f"{algorithm}: dx")
        _assert_close(
            dweight, dw_ref, **check, terms=terms["dweight"], what=f"{algorithm}: dweight"
        )
        if case.bias is None:
            assert dbias is None, f"{algorithm}: dbias must be None when bias=False"
        else:
            _assert_close(dbias, db_ref, **check, terms=terms["dbias"], what=f"{algorithm}: dbias")
        for name, original in originals.items():
            np.testing.assert_array_equal(
                _inputs(case)[name], original, err_msg=f"{algorithm} modified its input {name}"
            )


# --- non-contiguous inputs -----------------------------------------------------------------


def _with_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``array`` in a non-C-contiguous view (for more than one element)."""
    if layout == "fortran":  # every axis transposed in memory
        return np.ascontiguousarray(array.T).T
    if layout == "swapped":  # first two axes swapped in memory (channels-first storage)
        if array.ndim < 2:
            return np.ascontiguousarray(array[::-1])[::-1]
        return np.ascontiguousarray(array.swapaxes(0, 1)).swapaxes(0, 1)
    if layout == "reversed":  # negative strides on the last axes
        flip = (slice(None),) * (array.ndim - 2) + (slice(None, None, -1),) * min(array.ndim, 2)
        return np.ascontiguousarray(array[flip])[flip]
    if layout == "strided":  # every other element of a NaN-filled buffer, along every axis
        buffer = np.full(tuple(2 * s for s in array.shape), np.nan, dtype=array.dtype)
        view = buffer[(slice(None, None, 2),) * array.ndim]
        view[...] = array
        return view
    raise AssertionError(layout)


LAYOUTS = ("fortran", "swapped", "reversed", "strided")


def test_with_layout_gives_noncontiguous_views_of_the_same_values():
    array = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    for layout in LAYOUTS:
        view = _with_layout(array, layout)
        assert not view.flags.c_contiguous, layout
        np.testing.assert_array_equal(view, array, err_msg=layout)


@given(case=conv_cases(), layouts=st.lists(st.sampled_from(LAYOUTS), min_size=4, max_size=4))
def test_noncontiguous_inputs_give_the_same_results_as_contiguous_ones(case, layouts):
    views = dict(
        x=_with_layout(case.x, layouts[0]),
        weight=_with_layout(case.weight, layouts[1]),
        bias=None if case.bias is None else _with_layout(case.bias, layouts[2]),
        dy=_with_layout(case.dy, layouts[3]),
    )
    originals = {name: v.copy() for name, v in views.items() if v is not None}
    for algorithm in case.algorithms:
        expected = _run(case, algorithm)
        actual = _run(case, algorithm, **views)
        for name, a, e in zip(("y", "dx", "dweight", "dbias"), actual, expected, strict=True):
            if e is None:
                assert a is None
            else:
                # The kernels copy non-contiguous inputs to C order first: bit-identical results.
                np.testing.assert_array_equal(a, e, err_msg=f"{algorithm}: {name} ({layouts})")
        for name, original in originals.items():
            np.testing.assert_array_equal(
                views[name], original, err_msg=f"{algorithm} modified its input {name}"
            )


# --- hand-worked examples ------------------------------------------------------------------

X3 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
K2 = np.array([[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["direct", "gemm", "auto"])
def test_hand_worked_3x3_input_2x2_kernel_is_cross_correlation(dtype, algorithm):
    x = X3.astype(dtype).reshape(1, 1, 3, 3)
    w = K2.astype(dtype).reshape(1, 1, 2, 2)
    # y[i, j] = sum_{a, b} w[a, b] * x[i + a, j + b]: the kernel slides unflipped.
    #   y[0, 0] = 1*1 + 2*2 + 3*4 + 4*5 = 37     y[0, 1] = 1*2 + 2*3 + 3*5 + 4*6 = 47
    #   y[1, 0] = 1*4 + 2*5 + 3*7 + 4*8 = 67     y[1, 1] = 1*5 + 2*6 + 3*8 + 4*9 = 77
    expected = np.array([[37.0, 47.0], [67.0, 77.0]], dtype=dtype).reshape(1, 1, 2, 2)
    y = conv2d(x, w, algorithm=algorithm)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)
    # A true convolution flips the kernel: y[0, 0] would be 4*1 + 3*2 + 2*4 + 1*5 = 23.
    flipped = conv2d(x, np.ascontiguousarray(w[..., ::-1, ::-1]), algorithm=algorithm)
    assert flipped[0, 0, 0, 0] == 23.0
    assert not np.array_equal(flipped, y)

    y_bias = conv2d(x, w, np.array([0.5], dtype=dtype), algorithm=algorithm)
    np.testing.assert_array_equal(y_bias, expected + dtype(0.5))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["gemm", "auto"])
def test_hand_worked_stride_2_padding_1(dtype, algorithm):
    x = X3.astype(dtype).reshape(1, 1, 3, 3)
    w = K2.astype(dtype).reshape(1, 1, 2, 2)
    # Padded input (5 x 5) has zeros around X3; Ho = (3 + 2 - 1 - 1) // 2 + 1 = 2 and the
    # windows start at rows/cols 0 and 2 of the padded input:
    #   y[0, 0] = [[0, 0], [0, 1]] . K2 = 4*1           = 4
    #   y[0, 1] = [[0, 0], [2, 3]] . K2 = 3*2 + 4*3     = 18
    #   y[1, 0] = [[0, 4], [0, 7]] . K2 = 2*4 + 4*7     = 36
    #   y[1, 1] = [[5, 6], [8, 9]] . K2 = 5 + 12 + 24 + 36 = 77
    expected = np.array([[4.0, 18.0], [36.0, 77.0]], dtype=dtype).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(conv2d(x, w, stride=2, padding=1, algorithm=algorithm), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["direct", "gemm", "auto"])
def test_hand_worked_backward_3x3_input_2x2_kernel(dtype, algorithm):
    x = X3.astype(dtype).reshape(1, 1, 3, 3)
    w = K2.astype(dtype).reshape(1, 1, 2, 2)
    dy = np.ones((1, 1, 2, 2), dtype=dtype)
    dx, dweight, dbias = conv2d_backward(dy, x, w, algorithm=algorithm)
    # dx[i, j] = sum of the kernel taps whose window covers (i, j): the centre sees all four.
    expected_dx = np.array([[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]])
    # dweight[a, b] = sum of the 2 x 2 block of x starting at (a, b).
    expected_dw = np.array([[1 + 2 + 4 + 5, 2 + 3 + 5 + 6], [4 + 5 + 7 + 8, 5 + 6 + 8 + 9.0]])
    np.testing.assert_array_equal(dx, expected_dx.astype(dtype).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(dweight, expected_dw.astype(dtype).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(dbias, np.array([4.0], dtype=dtype))
    assert dx.dtype == dweight.dtype == dbias.dtype == dtype


@pytest.mark.parametrize("algorithm", ["direct", "gemm", "auto"])
def test_backward_dbias_is_none_without_bias(algorithm):
    rng = np.random.default_rng(0)
    x = _uniform(rng, (2, 3, 6, 7), np.float64)
    w = _uniform(rng, (4, 3, 3, 2), np.float64)
    dy = _uniform(rng, (2, 4, 4, 6), np.float64)
    dx, dweight, dbias = conv2d_backward(dy, x, w, bias=False, algorithm=algorithm)
    assert dbias is None
    assert dx.shape == x.shape and dweight.shape == w.shape


# --- "auto" on planes large enough for the direct kernel -------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "padding", "dilation", "groups"),
    [
        ((1, 2, 16, 12), (3, 2, 3, 3), 1, 1, 1),
        ((2, 4, 13, 19), (10, 2, 2, 3), (0, 2), (2, 1), 2),
        ((1, 3, 20, 9), (6, 1, 5, 1), (2, 0), 1, 3),
    ],
    ids=["3x3-pad1", "2x3-grouped-dilated", "5x1-depthwise"],
)
def test_auto_on_large_planes_matches_torch(x_shape, w_shape, padding, dilation, groups, dtype):
    # Planes of at least DIRECT_MIN_PLANE outputs and kernels of at least DIRECT_MIN_KERNEL_TAPS
    # taps: the shapes for which "auto" picks the direct kernel, which the small hypothesis
    # cases above rarely reach.
    rng = np.random.default_rng(1)
    x, w = _uniform(rng, x_shape, dtype), _uniform(rng, w_shape, dtype)
    b = _uniform(rng, (w_shape[0],), dtype)
    kw = dict(padding=padding, dilation=dilation, groups=groups)
    y_shape = reference.conv2d(x, w, b, **kw)[0].shape
    assert y_shape[2] * y_shape[3] >= DIRECT_MIN_PLANE
    assert w_shape[2] * w_shape[3] >= DIRECT_MIN_KERNEL_TAPS
    dy = _uniform(rng, y_shape, dtype)
    case = ConvCase(x=x, weight=w, bias=b, dy=dy, stride=1, **kw, seed=1)
    expected = reference.conv2d(x, w, b, dy, **case.kwargs)
    terms = _terms(case)
    for algorithm in ("auto", "direct", "gemm"):
        actual = _run(case, algorithm)
        for name, a, e in zip(("y", "dx", "dweight", "dbias"), actual, expected, strict=True):
            _assert_close(a, e, dtype=dtype, terms=terms[name], what=f"{algorithm}: {name}")
