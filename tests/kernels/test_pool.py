"""max_pool2d / avg_pool2d, forward and backward, against torch (``grader.reference``).

The hypothesis cases cover random batch sizes (1 included), channel counts, non-square
inputs and windows, strides below the kernel (overlapping windows), equal to it and above,
``stride=None``, paddings up to torch's limit of half the kernel, dilations (max pooling),
``count_include_pad`` both ways, ints and ``(h, w)`` pairs, float32 and float64. Inputs are
either continuous or drawn from a few integers (and -inf), so that windows often hold tied
maxima: the indices must then be torch's exactly. The 2x2/stride-2 kernels, which are
specialised, get their own cases; so do NaNs, non-contiguous and read-only inputs, and
windows that lie wholly in the padding.

Every argument error is checked with plain parametrized tests: the exception type and a
message that names the argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from cvcourse.kernels import _pool_numba
from cvcourse.kernels.pool import (
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from grader import reference

DTYPES = (np.float32, np.float64)

# Max pooling only selects and routes values, and the kernels follow torch's scan and
# accumulation order, so values, indices and gradients are compared exactly. Average
# pooling sums at most 16 taps (4x4 windows here) in the input's dtype; the kernels keep
# torch's order too and agree bit for bit in practice, but a sum of K terms of magnitude
# <= 3 may legitimately differ by a few ulp of K * 3 if the order ever changed: these
# tolerances allow that and nothing near an indexing error (off by O(1)).
TOLERANCE = {
    np.float32: dict(rtol=1e-5, atol=1e-5),
    np.float64: dict(rtol=1e-12, atol=1e-12),
}

# Window and input sizes: small, so that a case costs little and the padding, border and
# overlap cases are a large share of it.
MAX_KERNEL = 4
MAX_STRIDE = 4
MAX_DILATION = 3
MAX_EXTRA = 7  # input size beyond the smallest that fits the window


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _as_arg(draw, pair: tuple[int, int]):
    """The pair as an int when square and hypothesis says so, else as a tuple."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return pair[0]
    return pair


def _values(rng, shape, dtype, style: str) -> np.ndarray:
    if style == "ties":  # few distinct values: ties in most windows
        return rng.integers(-2, 3, size=shape).astype(dtype)
    if style == "inf":  # whole windows of -inf: the index must be the first tap
        return rng.choice(np.array([-np.inf, -np.inf, 0.0, 1.0]), size=shape).astype(dtype)
    return rng.uniform(-3, 3, size=shape).astype(dtype)


@dataclass
class PoolCase:
    x: np.ndarray
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] | None
    padding: int | tuple[int, int]
    dilation: int | tuple[int, int]
    seed: int  # of the random arrays: with the shapes, enough to rebuild a failing case

    @property
    def dtype(self):
        return self.x.dtype.type

    def out_hw(self) -> tuple[int, int]:
        k, p, d = _pair(self.kernel), _pair(self.padding), _pair(self.dilation)
        s = k if self.stride is None else _pair(self.stride)
        return tuple(
            (size + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1
            for i, size in enumerate(self.x.shape[2:])
        )

    def dy(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed + 1)
        shape = (*self.x.shape[:2], *self.out_hw())
        return rng.uniform(-1, 1, size=shape).astype(self.dtype)

    def has_empty_window(self) -> bool:
        """Does some window lie wholly in the padding (only possible with dilation)?"""
        k, p, d = _pair(self.kernel), _pair(self.padding), _pair(self.dilation)
        s = k if self.stride is None else _pair(self.stride)
        for axis, n_out in enumerate(self.out_hw()):
            size = self.x.shape[2 + axis]
            for o in range(n_out):
                taps = [o * s[axis] - p[axis] + t * d[axis] for t in range(k[axis])]
                if not any(0 <= tap < size for tap in taps):
                    return True
        return False


@st.composite
def pool_cases(draw, *, dilation: bool, styles=("uniform", "ties", "inf")) -> PoolCase:
    """A valid pooling case: the (dilated) window fits the padded input."""
    kernel = (draw(st.integers(1, MAX_KERNEL)), draw(st.integers(1, MAX_KERNEL)))
    stride = None
    if draw(st.booleans()):
        stride = (draw(st.integers(1, MAX_STRIDE)), draw(st.integers(1, MAX_STRIDE)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dil = (1, 1)
    if dilation:
        dil = (draw(st.integers(1, MAX_DILATION)), draw(st.integers(1, MAX_DILATION)))
    hw = []
    for i in range(2):
        span = dil[i] * (kernel[i] - 1) + 1
        smallest = max(1, span - 2 * padding[i])
        hw.append(draw(st.integers(smallest, smallest + MAX_EXTRA)))
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(DTYPES))
    style = draw(st.sampled_from(styles))
    seed = draw(st.integers(0, 2**32 - 1))
    x = _values(np.random.default_rng(seed), (n, c, *hw), dtype, style)
    return PoolCase(
        x=x,
        kernel=_as_arg(draw, kernel),
        stride=None if stride is None else _as_arg(draw, stride),
        padding=_as_arg(draw, padding),
        dilation=_as_arg(draw, dil),
        seed=seed,
    )


@st.composite
def cases_2x2(draw, styles=("uniform", "ties", "inf")) -> PoolCase:
    """The specialised geometry: 2x2 window, stride 2 (or None), no padding, odd sizes too."""
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    hw = (draw(st.integers(2, 13)), draw(st.integers(2, 13)))
    dtype = draw(st.sampled_from(DTYPES))
    style = draw(st.sampled_from(styles))
    seed = draw(st.integers(0, 2**32 - 1))
    x = _values(np.random.default_rng(seed), (n, c, *hw), dtype, style)
    stride = draw(st.sampled_from([None, 2, (2, 2), [2, 2]]))
    kernel = draw(st.sampled_from([2, (2, 2)]))
    return PoolCase(x=x, kernel=kernel, stride=stride, padding=0, dilation=1, seed=seed)


def _check_max_pool(case: PoolCase) -> None:
    """y, indices and dx equal torch's exactly; the input is not modified."""
    x_before = case.x.copy()
    kw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation)
    dy = case.dy()
    ref_y, ref_idx, ref_dx = reference.max_pool2d(case.x, dy, kernel_size=case.kernel, **kw)
    y, idx = max_pool2d(case.x, case.kernel, **kw, return_indices=True)
    assert y.dtype == case.dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(max_pool2d(case.x, case.kernel, **kw), ref_y)
    dx = max_pool2d_backward(dy, case.x, idx, case.kernel, **kw)
    assert dx.dtype == case.dtype
    np.testing.assert_array_equal(dx, ref_dx)
    np.testing.assert_array_equal(case.x, x_before)


def _check_avg_pool(case: PoolCase, count_include_pad: bool) -> None:
    """y and dx agree with torch within the dtype's tolerance; the input is not modified."""
    x_before = case.x.copy()
    kw = dict(stride=case.stride, padding=case.padding, count_include_pad=count_include_pad)
    dy = case.dy()
    ref_y, ref_dx = reference.avg_pool2d(case.x, dy, kernel_size=case.kernel, **kw)
    y = avg_pool2d(case.x, case.kernel, **kw)
    assert y.dtype == case.dtype
    np.testing.assert_allclose(y, ref_y, **TOLERANCE[case.dtype])
    dx = avg_pool2d_backward(dy, case.x.shape, case.kernel, **kw)
    assert dx.dtype == case.dtype and dx.shape == case.x.shape
    np.testing.assert_allclose(dx, ref_dx, **TOLERANCE[case.dtype])
    np.testing.assert_array_equal(case.x, x_before)


# --- agreement with torch -----------------------------------------------------------------


@given(pool_cases(dilation=True))
def test_max_pool2d_matches_torch(case):
    """General geometries, ties and -inf included: y, indices and dx are torch's exactly."""
    # torch's own gradient is wrong for windows wholly in the padding (see the dedicated test)
    assume(not case.has_empty_window())
    _check_max_pool(case)


@given(pool_cases(dilation=False), st.booleans())
def test_avg_pool2d_matches_torch(case, count_include_pad):
    """General geometries, both divisors: y and dx agree with torch."""
    _check_avg_pool(case, count_include_pad)


@given(cases_2x2())
def test_max_pool2d_2x2_matches_torch(case):
    """The specialised 2x2/stride-2 kernels, odd sizes and ties included, are exactly torch."""
    _check_max_pool(case)


@given(cases_2x2(), st.booleans())
def test_avg_pool2d_2x2_matches_torch(case, count_include_pad):
    """The specialised 2x2/stride-2 average kernels, odd sizes included, agree with torch."""
    _check_avg_pool(case, count_include_pad)


@given(st.one_of(pool_cases(dilation=True, styles=("uniform", "ties")), cases_2x2()), st.data())
def test_max_pool2d_nan_matches_torch(case, data):
    """A NaN in a window wins (the last NaN if several), in y, indices and dx, as in torch."""
    rng = np.random.default_rng(case.seed + 2)
    fraction = data.draw(st.sampled_from([0.05, 0.3, 0.8]))
    case.x[rng.random(case.x.shape) < fraction] = np.nan
    assume(not case.has_empty_window())
    _check_max_pool(case)


def _noncontiguous(array: np.ndarray, how: str) -> np.ndarray:
    """The same values as ``array``, in a non-C-contiguous or read-only array."""
    if how == "transposed":  # a view whose last axis has a large stride
        view = np.ascontiguousarray(array.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    elif how == "strided":  # every other element of a larger array
        big = np.zeros((*array.shape[:3], 2 * array.shape[3]), dtype=array.dtype)
        big[..., ::2] = array
        view = big[..., ::2]
    elif how == "fortran":
        view = np.asfortranarray(array)
    else:  # read-only (and C-contiguous)
        view = array.copy()
        view.flags.writeable = False
    np.testing.assert_array_equal(view, array)
    return view


GEOMETRIES = {  # (kernel, stride, padding) and the max pool's dilation
    "2x2": ((2, None, 0), 1),
    "general": ((3, 2, 1), 2),
}


@pytest.mark.parametrize("how", ["transposed", "strided", "fortran", "readonly"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_and_readonly_inputs(how, geometry, dtype):
    """Views (transposed, strided, Fortran-ordered) and read-only arrays give torch's results."""
    (kernel, stride, padding), dilation = GEOMETRIES[geometry]
    window = dict(kernel_size=kernel, stride=stride, padding=padding)
    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, size=(2, 3, 9, 8)).astype(dtype)
    xv = _noncontiguous(x, how)

    y, idx = max_pool2d(xv, **window, dilation=dilation, return_indices=True)
    dy = rng.uniform(-1, 1, size=y.shape).astype(dtype)
    ref_y, ref_idx, ref_dx = reference.max_pool2d(x, dy, **window, dilation=dilation)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    dyv, idxv = _noncontiguous(dy, how), _noncontiguous(idx, how)
    dx = max_pool2d_backward(dyv, xv, idxv, **window, dilation=dilation)
    np.testing.assert_array_equal(dx, ref_dx)

    y = avg_pool2d(xv, **window)
    dy = rng.uniform(-1, 1, size=y.shape).astype(dtype)
    ref_y, ref_dx = reference.avg_pool2d(x, dy, **window)
    np.testing.assert_allclose(y, ref_y, **TOLERANCE[dtype])
    dx = avg_pool2d_backward(_noncontiguous(dy, how), x.shape, **window)
    np.testing.assert_allclose(dx, ref_dx, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_window_wholly_in_padding(dtype):
    """A window with no tap inside the input (dilation 5 over 4 columns, padding 1).

    Forward: y is -inf and the index is torch's (which points outside the window). Backward:
    that window's gradient is dropped, since there is no input to route it to; torch instead
    adds it at its out-of-window index, into another row or even another plane.
    """
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(2, 2, 3, 4)).astype(dtype)
    kw = dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 5))
    ref_y, ref_idx, _ = reference.max_pool2d(x, **kw)
    y, idx = max_pool2d(x, **kw, return_indices=True)
    assert y.shape == (2, 2, 3, 1) and np.all(y == -np.inf)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    dx = max_pool2d_backward(np.ones_like(y), x, idx, **kw)
    np.testing.assert_array_equal(dx, np.zeros_like(x))


def test_dilated_windows_straddling_the_input():
    """Dilated windows whose taps fall on both sides of the input still find their one tap.

    (Along an axis, either every window has a tap in the input or none has, so a plane
    never mixes such windows with windows wholly in the padding.)
    """
    x = np.arange(1 * 1 * 1 * 4, dtype=np.float64).reshape(1, 1, 1, 4)
    kw = dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 4))
    ref_y, ref_idx, _ = reference.max_pool2d(x, **kw)
    y, idx = max_pool2d(x, **kw, return_indices=True)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    # taps at columns (-1, 3) and (0, 4): the first window sees only x[3], the second x[0]
    dy = np.array([[[[10.0, 20.0]]]])
    dx = max_pool2d_backward(dy, x, idx, **kw)
    np.testing.assert_array_equal(dx, reference.max_pool2d(x, dy, **kw)[2])


def test_overlapping_windows_accumulate():
    """With stride < kernel, one input that is the max of several windows sums their dy."""
    x = np.zeros((1, 1, 4, 4), dtype=np.float64)
    x[0, 0, 1, 1] = 5.0  # the max of the four 3x3 windows of a 4x4 input at stride 1
    y, idx = max_pool2d(x, 3, 1, return_indices=True)
    assert np.all(idx == 5)
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = max_pool2d_backward(dy, x, idx, 3, 1)
    assert dx[0, 0, 1, 1] == 10.0 and dx.sum() == 10.0
    np.testing.assert_array_equal(dx, reference.max_pool2d(x, dy, kernel_size=3, stride=1)[2])


@pytest.mark.parametrize("threads", [1, 2])
def test_results_do_not_depend_on_thread_count(threads):
    """Each plane is one thread's work: 1 and 2 threads give identical results."""
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("only one numba thread available")
    rng = np.random.default_rng(11)
    x = rng.integers(-2, 3, size=(3, 5, 10, 9)).astype(np.float32)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        for args in [(2, 2, 0, 1), (3, 2, 1, 2)]:
            y, idx = max_pool2d(x, *args, return_indices=True)
            dx = max_pool2d_backward(y, x, idx, *args)
            ref_y, ref_idx, ref_dx = reference.max_pool2d(
                x, y, kernel_size=args[0], stride=args[1], padding=args[2], dilation=args[3]
            )
            np.testing.assert_array_equal(idx, ref_idx)
            np.testing.assert_array_equal(dx, ref_dx)
    finally:
        numba.set_num_threads(previous)


def test_padding_rule_matches_torch():
    """A padding is accepted exactly when torch accepts it (at most half the kernel size)."""
    x = np.zeros((1, 1, 5, 5), dtype=np.float32)
    xt = torch.from_numpy(x)
    for kernel in range(1, 5):
        for padding in range(0, 4):
            for dilation in (1, 2, 3):
                try:
                    torch.nn.functional.max_pool2d(xt, kernel, 1, padding, dilation)
                    torch_ok = True
                except RuntimeError:
                    torch_ok = False
                try:
                    max_pool2d(x, kernel, 1, padding, dilation)
                    ours_ok = True
                except ValueError:
                    ours_ok = False
                assert ours_ok == torch_ok, (kernel, padding, dilation)
            try:
                torch.nn.functional.avg_pool2d(xt, kernel, 1, padding)
                torch_ok = True
            except RuntimeError:
                torch_ok = False
            try:
                avg_pool2d(x, kernel, 1, padding)
                ours_ok = True
            except ValueError:
                ours_ok = False
            assert ours_ok == torch_ok, (kernel, padding)


def test_each_kernel_compiles_once_per_dtype():
    """Views, read-only arrays, numpy ints and lists reuse the same compiled kernels."""
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        x = rng.uniform(-1, 1, size=(2, 2, 6, 6)).astype(dtype)
        ro = x.copy()
        ro.flags.writeable = False
        for xv in (x, x[:, :, ::-1], ro):
            for args in [(2, 2, 0, 1), (np.int64(3), [2, 1], (1, 0), 2)]:
                y, idx = max_pool2d(xv, *args, return_indices=True)
                max_pool2d_backward(y[:, :, ::-1], xv, idx.astype(np.int32), *args)
                max_pool2d(xv, *args)
                a = avg_pool2d(xv, *args[:3], count_include_pad=False)
                avg_pool2d_backward(a, xv.shape, *args[:3], count_include_pad=np.bool_(True))
    for name in dir(_pool_numba):
        dispatcher = getattr(_pool_numba, name)
        if hasattr(dispatcher, "signatures"):
            assert len(dispatcher.signatures) <= len(DTYPES), (name, dispatcher.signatures)


# --- argument validation ------------------------------------------------------------------

X = np.zeros((2, 3, 6, 6), dtype=np.float32)
Y, INDICES = max_pool2d(X, 2, return_indices=True)  # (2, 3, 3, 3)
Y3, INDICES3 = max_pool2d(X, 3, 1, 1, return_indices=True)  # general path, (2, 3, 6, 6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(x=X.astype(np.int32)), TypeError, "x must be float32 or float64"),
        (dict(x=X[0]), ValueError, r"x must be 4-D.*\(3, 6, 6\)"),
        (dict(x=np.zeros((2, 0, 6, 6), np.float32)), ValueError, "x must not be empty"),
        (dict(kernel_size=0), ValueError, "kernel_size must be positive"),
        (dict(kernel_size=2.0), TypeError, "kernel_size must be an int or a pair"),
        (dict(kernel_size=(2,)), TypeError, "kernel_size must be an int or a pair"),
        (dict(kernel_size=True), TypeError, "kernel_size must be an int or a pair"),
        (dict(kernel_size=None), TypeError, "kernel_size must be an int or a pair"),
        (dict(stride=0), ValueError, "stride must be positive"),
        (dict(stride=(2, -1)), ValueError, "stride must be positive"),
        (dict(padding=-1), ValueError, r"padding must be >= 0"),
        (dict(kernel_size=3, padding=2), ValueError, r"padding must be at most half"),
        (dict(kernel_size=(3, 2), padding=(1, 2)), ValueError, r"padding must be at most half"),
        (dict(dilation=0), ValueError, "dilation must be positive"),
        (dict(dilation=(1, True)), TypeError, "dilation must be an int or a pair"),
        (dict(kernel_size=7), ValueError, r"max_pool2d window spans 7x7.*input 6x6"),
        (dict(kernel_size=3, dilation=3), ValueError, r"window spans 7x7.*padded input"),
        (dict(return_indices="yes"), TypeError, "return_indices must be True or False, got str"),
    ],
)
def test_max_pool2d_rejects(kwargs, error, match):
    """Each bad argument of max_pool2d raises the right exception, naming the argument."""
    args = dict(x=X, kernel_size=2) | kwargs
    with pytest.raises(error, match=match):
        max_pool2d(**args)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(x=X.astype(np.int64)), TypeError, "x must be float32 or float64"),
        (dict(kernel_size=(2, 0)), ValueError, "kernel_size must be positive"),
        (dict(stride=1.5), TypeError, "stride must be an int or a pair"),
        (dict(kernel_size=1, padding=1), ValueError, r"padding must be at most half"),
        (dict(kernel_size=(6, 8)), ValueError, r"avg_pool2d window spans 6x8"),
        (
            dict(count_include_pad=1),
            TypeError,
            "count_include_pad must be True or False, got int 1",
        ),
    ],
)
def test_avg_pool2d_rejects(kwargs, error, match):
    """Each bad argument of avg_pool2d raises the right exception, naming the argument."""
    args = dict(x=X, kernel_size=2) | kwargs
    with pytest.raises(error, match=match):
        avg_pool2d(**args)


def _swapped(indices: np.ndarray) -> np.ndarray:
    """Valid plane indices, but each given to another window."""
    out = indices.copy()
    out[0, 0, 0, 0], out[0, 0, -1, -1] = indices[0, 0, -1, -1], indices[0, 0, 0, 0]
    return out


def _with(indices: np.ndarray, value) -> np.ndarray:
    out = indices.copy()
    out[1, 2, 1, 1] = value
    return out


@pytest.mark.parametrize("general", [False, True], ids=["2x2", "general"])
@pytest.mark.parametrize(
    "corrupt, error, match",
    [
        (lambda i: i.astype(np.float64), TypeError, "indices must be an integer array"),
        (lambda i: i.astype(bool), TypeError, "indices must be an integer array"),
        (lambda i: i[:, :, :-1], ValueError, r"indices has shape .* but the output"),
        (lambda i: i[0], ValueError, r"indices has shape .* but the output"),
        (lambda i: _with(i, -1), ValueError, "indices has 1 of .* entries that are not a tap"),
        (lambda i: _with(i, 36), ValueError, r"indices has 1 of .*\[0, 36\)"),
        (lambda i: _with(i, 2**62), ValueError, "indices has 1 of"),
        (lambda i: _with(i.astype(np.uint64), 2**64 - 1), ValueError, "indices has 1 of"),
        (lambda i: _swapped(i), ValueError, "indices has 2 of"),
        (lambda i: i + 2, ValueError, r"not a tap of their own pooling window"),
    ],
)
def test_max_pool2d_backward_rejects_bad_indices(general, corrupt, error, match):
    """Corrupted indices (dtype, shape, out of range, another window's) raise, writing nothing
    out of bounds (the NUMBA_BOUNDSCHECK run would catch it)."""
    y, indices, geometry = (Y3, INDICES3, (3, 1, 1)) if general else (Y, INDICES, (2, 2, 0))
    with pytest.raises(error, match=match):
        max_pool2d_backward(np.ones_like(y), X, corrupt(indices), *geometry)


@pytest.mark.parametrize("between", [1, 6], ids=["column", "row"])
def test_max_pool2d_backward_rejects_index_between_dilated_taps(between):
    """An index inside a dilated window's extent but between its taps is not its tap."""
    kw = dict(kernel_size=2, stride=1, padding=0, dilation=2)  # taps 2 apart
    y, indices = max_pool2d(X, **kw, return_indices=True)
    assert indices[0, 0, 0, 0] == 0
    indices[0, 0, 0, 0] = between  # (0, 1) or (1, 0) of the 6x6 plane
    with pytest.raises(ValueError, match="indices has 1 of"):
        max_pool2d_backward(np.ones_like(y), X, indices, **kw)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(dy=Y.astype(np.float64)), TypeError, "dy has dtype float64 but x has dtype float32"),
        (dict(dy=Y[:, :, :2]), ValueError, r"dy has shape \(2, 3, 2, 3\) but the output"),
        (dict(dy=Y[0]), ValueError, "dy must be 4-D"),
        (dict(dy=Y.astype(np.int32)), TypeError, "dy must be float32 or float64"),
        (dict(x=X[:, :, :4]), ValueError, r"dy has shape .* but the output .* \(2, 3, 2, 3\)"),
        (dict(x=X.astype(np.float64)), TypeError, "dy has dtype float32 but x has dtype float64"),
        (dict(kernel_size=3), ValueError, "dy has shape"),
        (dict(padding=2), ValueError, "padding must be at most half"),
        (dict(stride=0), ValueError, "stride must be positive"),
    ],
)
def test_max_pool2d_backward_rejects(kwargs, error, match):
    """Each bad argument of max_pool2d_backward raises, naming the argument."""
    args = dict(dy=Y, x=X, indices=INDICES, kernel_size=2) | kwargs
    with pytest.raises(error, match=match):
        max_pool2d_backward(**args)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(dy=Y.astype(np.int32)), TypeError, "dy must be float32 or float64"),
        (dict(dy=Y[:, :, :2]), ValueError, r"dy has shape \(2, 3, 2, 3\) but the output"),
        (dict(x_shape=(2, 3, 6)), TypeError, "x_shape must be a tuple"),
        (dict(x_shape=(2, 3, 6, 6.0)), TypeError, "x_shape must be a tuple"),
        (dict(x_shape=(2, 3, 6, True)), TypeError, "x_shape must be a tuple"),
        (dict(x_shape=(2, 3, 0, 6)), ValueError, "x_shape must be 4 positive ints"),
        (dict(x_shape=X), TypeError, "x_shape must be a tuple"),
        (dict(x_shape=(2, 3, 1, 1)), ValueError, r"avg_pool2d window spans 2x2"),
        (dict(kernel_size=(2, 3)), ValueError, "dy has shape"),
        (dict(padding=(0, 2)), ValueError, "padding must be at most half"),
        (
            dict(count_include_pad="no"),
            TypeError,
            "count_include_pad must be True or False, got str",
        ),
    ],
)
def test_avg_pool2d_backward_rejects(kwargs, error, match):
    """Each bad argument of avg_pool2d_backward raises, naming the argument."""
    args = dict(dy=Y, x_shape=X.shape, kernel_size=2) | kwargs
    with pytest.raises(error, match=match):
        avg_pool2d_backward(**args)


def test_accepts_shape_lists_and_numpy_ints():
    """x_shape as a list of numpy ints, and kernel arguments as numpy ints or lists, work."""
    shape = [np.int64(s) for s in X.shape]
    dx = avg_pool2d_backward(Y, shape, np.int32(2), [2, 2], (0, 0))
    assert dx.shape == X.shape and dx.dtype == np.float32
