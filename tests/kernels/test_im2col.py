"""im2col / col2im against torch's ``F.unfold`` / ``F.fold``, their adjointness, and conv2d as
``weight.reshape(G, -1) @ im2col(x)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cvcourse.kernels import col2im, conv2d, im2col

from .strategies import as_pair, int_or_pair

DTYPES = (np.float32, np.float64)
EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


@dataclass
class WindowCase:
    x: np.ndarray  # (N, C, H, W)
    cols: np.ndarray  # (N, C*kh*kw, Ho*Wo): random, of the shape im2col(x) has
    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int]
    padding: int | tuple[int, int]
    dilation: int | tuple[int, int]
    seed: int  # of the random x and cols: with the shapes, enough to rebuild a failing case

    @property
    def dtype(self):
        return self.x.dtype.type

    @property
    def output_size(self) -> tuple[int, int]:
        return self.x.shape[2], self.x.shape[3]

    @property
    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)

    def __repr__(self) -> str:
        return (
            f"WindowCase(dtype={self.x.dtype}, x={self.x.shape}, cols={self.cols.shape}, "
            f"kernel_size={self.kernel_size!r}, stride={self.stride!r}, "
            f"padding={self.padding!r}, dilation={self.dilation!r}, seed={self.seed})"
        )

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints a failing case
        printer.text(repr(self))


@st.composite
def window_cases(draw, dtypes=DTYPES) -> WindowCase:
    dtype = draw(st.sampled_from(dtypes))
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kernel_size = draw(int_or_pair(1, 5))
    stride = draw(int_or_pair(1, 3))
    padding = draw(int_or_pair(0, 3))
    dilation = draw(int_or_pair(1, 3))
    (kh, kw), (sh, sw) = as_pair(kernel_size), as_pair(stride)
    (ph, pw), (dh, dw) = as_pair(padding), as_pair(dilation)
    # The smallest input the dilated window fits once padded, plus a few rows and columns.
    height = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 10))
    width = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 10))
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return WindowCase(
        x=rng.uniform(-1, 1, (batch, channels, height, width)).astype(dtype),
        cols=rng.uniform(-1, 1, (batch, channels * kh * kw, out_h * out_w)).astype(dtype),
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        seed=seed,
    )


def _torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.copy())


@given(case=window_cases())
def test_im2col_equals_torch_unfold(case):
    x_before = case.x.copy()
    cols = im2col(case.x, case.kernel_size, **case.kwargs)
    expected = F.unfold(_torch(case.x), case.kernel_size, **case.kwargs).numpy()
    assert cols.dtype == case.x.dtype
    # A pure gather: every entry is copied, never computed, so the match is exact.
    np.testing.assert_array_equal(cols, expected)
    np.testing.assert_array_equal(case.x, x_before, err_msg="im2col modified x")


@given(case=window_cases())
def test_col2im_equals_torch_fold(case):
    cols_before = case.cols.copy()
    x = col2im(case.cols, case.output_size, case.kernel_size, **case.kwargs)
    expected = F.fold(_torch(case.cols), case.output_size, case.kernel_size, **case.kwargs)
    assert x.dtype == case.cols.dtype
    # Each pixel sums at most kh*kw column entries of magnitude <= 1, possibly in another
    # order than torch: allow a few eps per summed term.
    kh, kw = as_pair(case.kernel_size)
    np.testing.assert_allclose(x, expected.numpy(), rtol=0, atol=4 * kh * kw * EPS[case.dtype])
    np.testing.assert_array_equal(case.cols, cols_before, err_msg="col2im modified cols")


@given(case=window_cases(dtypes=(np.float64,)))
def test_col2im_is_the_adjoint_of_im2col(case):
    # <im2col(x), c> == <x, col2im(c)>: both sides sum the same products x[p] * c[q] over the
    # pairs (p, q) one window position links, only grouped differently.
    lhs = np.sum(im2col(case.x, case.kernel_size, **case.kwargs) * case.cols)
    rhs = np.sum(case.x * col2im(case.cols, case.output_size, case.kernel_size, **case.kwargs))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=case.cols.size * EPS[np.float64])


@settings(max_examples=30)
@given(case=window_cases(), out_channels=st.integers(1, 4), data=st.data())
def test_conv2d_equals_weight_matrix_times_im2col(case, out_channels, data):
    n, c, _, _ = case.x.shape
    kh, kw = as_pair(case.kernel_size)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    weight = rng.uniform(-1, 1, (out_channels, c, kh, kw)).astype(case.dtype)
    cols = im2col(case.x, case.kernel_size, **case.kwargs)
    expected = weight.reshape(out_channels, -1) @ cols  # (N, G, Ho*Wo)
    algorithms = ("gemm", "auto") + (("direct",) if as_pair(case.stride) == (1, 1) else ())
    for algorithm in algorithms:
        y = conv2d(case.x, weight, **case.kwargs, groups=1, algorithm=algorithm)
        # Same products, possibly summed in another order: a few eps per summed term.
        np.testing.assert_allclose(
            y.reshape(n, out_channels, -1),
            expected,
            rtol=0,
            atol=8 * c * kh * kw * EPS[case.dtype],
            err_msg=algorithm,
        )


def _strided_view(array: np.ndarray) -> np.ndarray:
    """``array``'s values as every other element, along every axis, of a NaN-filled buffer
    (so that reading a gap would show up as NaN)."""
    buffer = np.full(tuple(2 * size for size in array.shape), np.nan, dtype=array.dtype)
    view = buffer[(slice(None, None, 2),) * array.ndim]
    view[...] = array
    return view


@given(case=window_cases())
def test_noncontiguous_inputs_give_the_same_columns_and_images(case):
    x_view = _strided_view(case.x)
    cols_view = _strided_view(case.cols)
    # (numpy calls any single-element array contiguous, whatever its strides)
    assert case.x.size == 1 or not x_view.flags.c_contiguous
    assert case.cols.size == 1 or not cols_view.flags.c_contiguous
    np.testing.assert_array_equal(
        im2col(x_view, case.kernel_size, **case.kwargs),
        im2col(case.x, case.kernel_size, **case.kwargs),
    )
    np.testing.assert_array_equal(
        col2im(cols_view, case.output_size, case.kernel_size, **case.kwargs),
        col2im(case.cols, case.output_size, case.kernel_size, **case.kwargs),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_hand_worked_im2col_and_col2im(dtype):
    x = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    # Row (ky*2 + kx) holds tap (ky, kx) of every 2 x 2 window, windows in row-major order.
    expected = np.array(
        [
            [1, 2, 4, 5],  # tap (0, 0)
            [2, 3, 5, 6],  # tap (0, 1)
            [4, 5, 7, 8],  # tap (1, 0)
            [5, 6, 8, 9],  # tap (1, 1)
        ],
        dtype=dtype,
    ).reshape(1, 4, 4)
    np.testing.assert_array_equal(im2col(x, 2), expected)
    # Folding all-ones columns counts the windows covering each pixel.
    counts = col2im(np.ones((1, 4, 4), dtype=dtype), 3, 2)
    np.testing.assert_array_equal(counts[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))
    # An int output_size means a square image, as in torch.
    np.testing.assert_array_equal(counts, col2im(np.ones((1, 4, 4), dtype=dtype), (3, 3), 2))
