"""Hidden tests of assignment 1, "NumPy warm-up": one function per graded test cell.

Each function takes the student's function, calls it through
:func:`grader.checks.harness.student_call` on seeded cases and edge cases, compares with a
reference (plain NumPy for the indexing exercises, torch through :mod:`grader.reference` for
``im2col`` and the convolution) and either prints one line (:func:`harness.passed`) or
raises :class:`harness.GradingFailure` naming the case and, where it can tell, the mistake
(the first of the case's recognised mistakes, ``{explanation: wrong answer}``, that the
student's answer reproduces).

Graded cell -> check:

    test_fancy_indexing      fancy_indexing(correct_class_scores)
    test_boolean_mask        boolean_mask(replace_outliers)
    test_pairwise_distances  pairwise_distances(pairwise_sq_dists)
    test_confusion_matrix    confusion_matrix(confusion_matrix)
    test_views               views(center_crop, to_chw)
    test_sliding_windows     sliding_windows(sliding_windows)
    test_im2col              im2col(im2col)
    test_conv_as_matmul      conv_as_matmul(conv_from_columns)
"""

from __future__ import annotations

import numpy as np

from cvcourse.judge_link import byte_span, memory_owner
from grader import reference
from grader.checks.harness import (
    GradingFailure,
    assert_close,
    assert_unchanged,
    matches,
    non_contiguous,
    passed,
    rng,
    student_call,
)

__all__ = [
    "boolean_mask",
    "confusion_matrix",
    "conv_as_matmul",
    "fancy_indexing",
    "im2col",
    "pairwise_distances",
    "sliding_windows",
    "views",
]

# The sliding-window part asks for as_strided by hand, so NumPy's ready-made view is off
# limits there. The guard sees the implementation's frame, whose module is the private one.
FORBID_SLIDING_WINDOW_VIEW = (
    "numpy.lib._stride_tricks_impl:sliding_window_view",
    "numpy.lib.stride_tricks:sliding_window_view",
)


# ---------------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------------


def fancy_indexing(correct_class_scores) -> None:
    """``correct_class_scores(scores (N, K), labels (N,)) -> (N,)``.

    ``out[i] = scores[i, labels[i]]``.
    """
    what = "correct_class_scores"
    g = rng("fancy_indexing")
    cases = [
        ("scores (6, 4), random labels", g.normal(size=(6, 4)), g.integers(0, 4, 6)),
        (
            "scores (5, 5), repeated labels [1, 1, 4, 1, 0]",
            g.normal(size=(5, 5)),
            np.array([1, 1, 4, 1, 0]),
        ),
        ("batch of 1, scores (1, 7)", g.normal(size=(1, 7)), np.array([6])),
        ("one class, scores (3, 1)", g.normal(size=(3, 1)), np.zeros(3, dtype=np.int64)),
        (
            "non-contiguous scores (4, 3), int32 labels",
            non_contiguous(g.normal(size=(4, 3))),
            np.array([2, 0, 1, 2], dtype=np.int32),
        ),
    ]
    for case, scores, labels in cases:
        before = scores.copy()
        out = student_call(what, case, correct_class_scores, scores, labels)
        n = scores.shape[0]
        expected = scores[np.arange(n), labels]
        columns = scores[:, labels]
        variants = {
            "scores[:, labels] takes whole columns (an (N, N) array); pair row i with "
            "labels[i] by indexing with two arrays: scores[np.arange(N), labels]": columns,
            "scores[labels] takes whole rows; index rows with np.arange(N) and columns with "
            "labels": lambda rows=scores, index=labels: rows[index],
        }
        assert_close(
            out,
            expected,
            what=f"{what} result",
            case=case,
            hint=variants,
            reference="the reference",
        )
        assert_unchanged(before, scores, what, case, name="array scores")
    passed(what, f"{len(cases)} cases, including repeated labels and a batch of 1")


def boolean_mask(replace_outliers) -> None:
    """``replace_outliers(x, k)``: a copy of ``x`` with ``|x - mean| > k * std`` set to the mean."""
    what = "replace_outliers"
    g = rng("boolean_mask")
    spikes = g.normal(size=20)
    spikes[[3, 11, 17]] = [9.0, -12.0, 15.0]
    cases = [
        ("1-D, 20 values with 3 spikes, k=2", spikes, 2.0),
        ("2-D (5, 6), k=1", g.normal(size=(5, 6)), 1.0),
        ("image batch (2, 3, 4, 4), k=1.5", g.uniform(0, 1, size=(2, 3, 4, 4)), 1.5),
        ("no outliers (k=100): result equals x but is a new array", g.normal(size=(3, 3)), 100.0),
        ("non-contiguous (4, 5), k=0.5", non_contiguous(g.normal(size=(4, 5))), 0.5),
    ]
    for case, x, k in cases:
        before = x.copy()
        out = student_call(what, case, replace_outliers, x, k)
        mean, std = before.mean(), before.std()
        outliers = np.abs(before - mean) > k * std
        expected = np.where(outliers, mean, before)
        variants = {
            "the standard deviation uses ddof=1; use x.std() (the population std, ddof=0)": (
                np.where(np.abs(before - mean) > k * before.std(ddof=1), mean, before)
            ),
            "outliers were set to 0; replace them with the mean of x": np.where(
                outliers, 0.0, before
            ),
            "values were clipped to mean +- k*std; replace the outliers by the mean itself": (
                np.clip(before, mean - k * std, mean + k * std)
            ),
            "the mask selects the values to keep: outliers are |x - mean| > k * std": (
                np.where(outliers, before, mean)
            ),
        }
        assert_close(
            out,
            expected,
            what=f"{what} result",
            case=case,
            hint=variants,
            reference="the reference",
        )
        assert_unchanged(before, x, what, case, name="array x")
        if isinstance(out, np.ndarray) and np.shares_memory(out, x):
            raise GradingFailure(
                f"{what} returned an array that shares memory with x\n  case: {case}\n"
                "  Likely mistake: the result must be a new array (x.copy()), so that changing "
                "it never changes the caller's data."
            )
    passed(what, f"{len(cases)} cases; the input is left unchanged")


# ---------------------------------------------------------------------------------------------
# Broadcasting and vectorising
# ---------------------------------------------------------------------------------------------


def pairwise_distances(pairwise_sq_dists) -> None:
    """``pairwise_sq_dists(a (M, D), b (N, D)) -> (M, N)``, ``out[i, j] = ||a[i] - b[j]||^2``."""
    what = "pairwise_sq_dists"
    g = rng("pairwise_distances")
    same = g.normal(size=(5, 3))
    cases = [
        ("a (4, 3), b (6, 3)", g.normal(size=(4, 3)), g.normal(size=(6, 3))),
        ("one point each, a (1, 5), b (1, 5)", g.normal(size=(1, 5)), g.normal(size=(1, 5))),
        ("one dimension, a (7, 1), b (2, 1)", g.normal(size=(7, 1)), g.normal(size=(2, 1))),
        ("a set against itself (5, 3): the diagonal is 0", same, same.copy()),
        (
            "non-contiguous a (3, 4), b (5, 4)",
            non_contiguous(g.normal(size=(3, 4))),
            g.normal(size=(5, 4)),
        ),
        ("larger: a (60, 8), b (40, 8)", g.normal(size=(60, 8)), g.normal(size=(40, 8))),
    ]
    for case, a, b in cases:
        a0, b0 = a.copy(), b.copy()
        out = student_call(what, case, pairwise_sq_dists, a, b)
        expected = ((a0[:, None, :] - b0[None, :, :]) ** 2).sum(axis=-1)
        variants = {
            "you returned distances, not squared distances (drop the square root)": np.sqrt(
                expected
            ),
            "the result is transposed: rows must index a and columns b, shape (M, N)": expected.T,
        }
        # The expansion ||a||^2 + ||b||^2 - 2 a.b loses a few ulps to cancellation.
        assert_close(
            out,
            expected,
            what=f"{what} result",
            case=case,
            atol=1e-9,
            rtol=1e-7,
            hint=variants,
            reference="the reference",
        )
        assert_unchanged(a0, a, what, case, name="array a")
        assert_unchanged(b0, b, what, case, name="array b")
    passed(what, f"{len(cases)} cases, including a set against itself")


def _confusion_reference(target, pred, num_classes):
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (target, pred), 1)
    return counts


def confusion_matrix(confusion_matrix) -> None:
    """``confusion_matrix(target (N,), pred (N,), num_classes) -> (K, K)`` counts."""
    what = "confusion_matrix"
    g = rng("confusion_matrix")
    cases = [
        ("50 samples, 5 classes", g.integers(0, 5, 50), g.integers(0, 5, 50), 5),
        ("one sample", np.array([2]), np.array([0]), 3),
        (
            "classes 4 and 5 never occur (num_classes=6)",
            g.integers(0, 4, 30),
            g.integers(0, 4, 30),
            6,
        ),
        (
            "every prediction right, 3 classes",
            np.array([0, 1, 2, 2, 1, 0, 0]),
            np.array([0, 1, 2, 2, 1, 0, 0]),
            3,
        ),
        ("10000 samples, 10 classes", g.integers(0, 10, 10000), g.integers(0, 10, 10000), 10),
    ]
    for case, target, pred, k in cases:
        t0, p0 = target.copy(), pred.copy()
        out = student_call(what, case, confusion_matrix, target, pred, k)
        expected = _confusion_reference(t0, p0, k)
        variants = {
            "repeated (target, pred) pairs were counted once: counts[target, pred] += 1 "
            "with index arrays does not accumulate duplicates; use np.add.at or np.bincount": (
                (expected > 0).astype(np.int64)
            ),
            "the matrix is transposed: rows are the true classes (target), columns the "
            "predictions": expected.T,
        }
        assert_close(
            out,
            expected,
            what=f"{what} result",
            case=case,
            atol=0,
            rtol=0,
            hint=variants,
            reference="the double loop",
        )
        assert_unchanged(t0, target, what, case, name="array target")
        assert_unchanged(p0, pred, what, case, name="array pred")
    passed(what, f"{len(cases)} cases agree with the double loop")


# ---------------------------------------------------------------------------------------------
# Views, strides, im2col
# ---------------------------------------------------------------------------------------------


def _require_view(out, x, what: str, case: str, how: str) -> None:
    if not (isinstance(out, np.ndarray) and np.shares_memory(out, x)):
        raise GradingFailure(
            f"{what} returned a copy, not a view: the result shares no memory with the input\n"
            f"  case: {case}\n  Likely mistake: {how}"
        )


def views(center_crop, to_chw) -> None:
    """``center_crop(img, h, w)`` and ``to_chw(img)`` must return views of ``img``."""
    g = rng("views")
    crop_cases = [
        ("(6, 8) image, crop (2, 4)", g.normal(size=(6, 8)), 2, 4),
        ("(3, 7, 5) channels first, crop (3, 3)", g.normal(size=(3, 7, 5)), 3, 3),
        ("(2, 3, 6, 6) batch, crop (4, 4)", g.normal(size=(2, 3, 6, 6)), 4, 4),
        ("(5, 4) image, crop to its full size", g.normal(size=(5, 4)), 5, 4),
        ("non-contiguous (5, 9) image, crop (1, 2)", non_contiguous(g.normal(size=(5, 9))), 1, 2),
    ]
    for case, img, h, w in crop_cases:
        out = student_call("center_crop", case, center_crop, img, h, w)
        height, width = img.shape[-2:]
        top, left = (height - h) // 2, (width - w) // 2
        expected = img[..., top : top + h, left : left + w]
        up, right = (height - h + 1) // 2, (width - w + 1) // 2
        variants = {
            "the window is off centre by one: top = (H - h) // 2 and left = (W - w) // 2 "
            "(round down)": img[..., up : up + h, right : right + w],
        }
        assert_close(
            out,
            expected,
            what="center_crop result",
            case=case,
            hint=variants,
            reference="the reference",
        )
        _require_view(
            out,
            img,
            "center_crop",
            case,
            "basic slicing img[..., top:top + h, left:left + w] already returns a view; "
            ".copy(), np.array(...), fancy indexing (index arrays) or np.ascontiguousarray "
            "make a copy",
        )
    chw_cases = [
        ("(4, 5, 3) RGB image", g.normal(size=(4, 5, 3))),
        ("(2, 2, 1) gray image", g.normal(size=(2, 2, 1))),
        ("(3, 6, 2) non-square", g.normal(size=(3, 6, 2))),
    ]
    for case, img in chw_cases:
        out = student_call("to_chw", case, to_chw, img)
        expected = img.transpose(2, 0, 1)
        variants = {
            "img.T (or transpose() without axes) reverses every axis, giving (C, W, H); use "
            "img.transpose(2, 0, 1)": img.T,
            "reshape keeps the memory order and regroups the numbers, it does not move axes; "
            "use img.transpose(2, 0, 1)": img.reshape(img.shape[2], img.shape[0], img.shape[1]),
        }
        assert_close(
            out,
            expected,
            what="to_chw result",
            case=case,
            hint=variants,
            reference="img.transpose(2, 0, 1)",
        )
        _require_view(
            out,
            img,
            "to_chw",
            case,
            "transpose returns a view with permuted strides; do not copy it "
            "(np.ascontiguousarray, .copy())",
        )
    passed("center_crop and to_chw", f"{len(crop_cases) + len(chw_cases)} cases, all views")


def _check_inside(out, x: np.ndarray, what: str, case: str) -> None:
    """Fail before reading ``out`` if it is a view reaching outside ``x``'s memory.

    as_strided does not check its arguments: wrong strides give a view over memory that
    belongs to something else, and reading it shows garbage or crashes the kernel.
    """
    if not isinstance(out, np.ndarray):
        return
    out_low, out_high = byte_span(out)
    own_low, own_high = byte_span(memory_owner(out))
    x_low, x_high = byte_span(x)
    buf_low, buf_high = byte_span(memory_owner(x))
    in_x_buffer = buf_low <= out.__array_interface__["data"][0] < buf_high
    outside_x = in_x_buffer and (out_low < x_low or out_high > x_high)
    if outside_x or out_low < own_low or out_high > own_high:
        raise GradingFailure(
            f"{what} returned a view reaching outside x's memory (shape {out.shape}, strides "
            f"{out.strides}; x has shape {x.shape}, strides {x.strides}, {x.itemsize}-byte "
            f"elements)\n  case: {case}\n"
            "  Likely mistake: as_strided does not check its arguments; the window count is "
            "H - k + 1 by W - k + 1 and every stride must come from x.strides."
        )


def _sliding_reference(x: np.ndarray, k: int) -> np.ndarray:
    h, w = x.shape
    return np.array([[x[i : i + k, j : j + k] for j in range(w - k + 1)] for i in range(h - k + 1)])


def _assumed_contiguous(x: np.ndarray, k: int) -> np.ndarray | None:
    """What strides computed from the shape (a contiguous float64 array) would read."""
    h, w = x.shape
    owner = memory_owner(x)
    if x.flags.c_contiguous and x.itemsize == 8:
        return None
    strides = (8 * w, 8, 8 * w, 8)
    view = np.lib.stride_tricks.as_strided(x, (h - k + 1, w - k + 1, k, k), strides)
    low, high = byte_span(view)
    olow, ohigh = byte_span(owner)
    if low < olow or high > ohigh:
        return None
    return np.array(view)


def sliding_windows(sliding_windows) -> None:
    """``sliding_windows(x (H, W), k) -> (H-k+1, W-k+1, k, k)`` view built with as_strided."""
    what = "sliding_windows"
    g = rng("sliding_windows")
    base = g.normal(size=(9, 20))
    cases = [
        ("(5, 7) float64, k=3", g.normal(size=(5, 7)), 3),
        ("(4, 4) float64, k=1", g.normal(size=(4, 4)), 1),
        ("(4, 6) float64, k=4 (one row of windows)", g.normal(size=(4, 6)), 4),
        (
            "(6, 6) int32 (4-byte elements), k=2",
            g.integers(-50, 50, size=(6, 6)).astype(np.int32),
            2,
        ),
        ("non-contiguous (5, 7) view x = base[::2, 1::3], k=2", base[::2, 1::3], 2),
    ]
    for case, x, k in cases:
        before = x.copy()
        try:
            out = student_call(what, case, sliding_windows, x, k, forbid=FORBID_SLIDING_WINDOW_VIEW)
        except GradingFailure as failure:
            if "sliding_window_view" in str(failure):
                raise GradingFailure(
                    f"{failure}\n  This part asks you to build the view yourself with "
                    "np.lib.stride_tricks.as_strided (sliding_window_view does it for you)."
                ) from None
            raise
        _check_inside(out, x, what, case)
        expected = _sliding_reference(before, k)
        variants = {
            "each window is transposed: the last two strides are swapped; windows[i, j, r, c] "
            "= x[i + r, j + c] needs strides (s0, s1, s0, s1)": expected.transpose(0, 1, 3, 2),
        }
        contiguous_guess = _assumed_contiguous(x, k)
        if contiguous_guess is not None and not matches(contiguous_guess, expected):
            variants[
                "the strides were computed from the shape (assuming a contiguous float64 "
                "array) instead of taken from x.strides, which describe any layout and dtype"
            ] = contiguous_guess
        assert_close(
            out,
            expected,
            what=f"{what} result",
            case=case,
            atol=0,
            rtol=0,
            hint=variants,
            reference="the reference",
        )
        assert_unchanged(before, x, what, case, name="array x")
        _require_view(
            out,
            x,
            what,
            case,
            "as_strided(x, shape, strides) returns a view of x; do not copy its result, and "
            "do not make x contiguous first (np.ascontiguousarray): use x.strides as they are",
        )
    passed(what, f"{len(cases)} cases, all views of x, including int32 and non-contiguous x")


def _unfold(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """torch's columns of one image x ``(C, H, W)``: ``(C*kh*kw, H_out*W_out)``."""
    return reference.unfold(np.array(x, dtype=np.float64)[None], (kh, kw))[0]


def im2col(im2col) -> None:
    """``im2col(x (C, H, W), kh, kw) -> (C*kh*kw, H_out*W_out)`` in ``F.unfold``'s order."""
    what = "im2col"
    g = rng("im2col")
    cases = [
        ("x (2, 4, 5), kernel 3x3", g.normal(size=(2, 4, 5)), 3, 3),
        ("x (1, 5, 5), non-square kernel 2x3", g.normal(size=(1, 5, 5)), 2, 3),
        ("x (3, 6, 4), kernel 1x1", g.normal(size=(3, 6, 4)), 1, 1),
        ("x (2, 3, 4), kernel as large as the image (one column)", g.normal(size=(2, 3, 4)), 3, 4),
        ("non-contiguous x (3, 5, 6), kernel 2x2", non_contiguous(g.normal(size=(3, 5, 6))), 2, 2),
    ]
    for case, x, kh, kw in cases:
        before = x.copy()
        out = student_call(what, case, im2col, x, kh, kw)
        _check_inside(out, x, what, case)
        expected = _unfold(before, kh, kw)
        c = x.shape[0]
        rows = expected.reshape(c, kh, kw, -1)
        variants = {
            "the rows are ordered (kernel offset, channel); torch's order is channel first: "
            "row (c*kh + ky)*kw + kx, which is what weight.reshape(F, -1) lines up with": (
                rows.transpose(1, 2, 0, 3).reshape(c * kh * kw, -1)
            ),
            "the kernel offsets are ordered (kx, ky); within a channel the row is ky*kw + kx "
            "(row-major, like weight[f, c].ravel())": rows.transpose(0, 2, 1, 3).reshape(
                c * kh * kw, -1
            ),
            "the result is transposed: rows are the C*kh*kw window elements, columns the "
            "H_out*W_out positions": expected.T,
        }
        assert_close(out, expected, what=f"{what} result", case=case, hint=variants)
        assert_unchanged(before, x, what, case, name="array x")
    passed(what, f"{len(cases)} cases match torch's F.unfold, including non-square kernels")


def conv_as_matmul(conv_from_columns) -> None:
    """``conv_from_columns(cols, weight, bias, out_h, out_w) -> (F, out_h, out_w)``.

    ``weight`` is ``(F, C, kh, kw)``, ``bias`` ``(F,)``, ``cols`` ``(C*kh*kw, out_h*out_w)``.

    ``cols`` is torch's unfold of the input, so this part does not depend on ``im2col``.
    """
    what = "conv_from_columns"
    g = rng("conv_as_matmul")
    cases = [
        ("x (2, 5, 6), 3 filters 3x3", g.normal(size=(2, 5, 6)), g.normal(size=(3, 2, 3, 3))),
        ("x (1, 4, 6), 1 filter 2x3", g.normal(size=(1, 4, 6)), g.normal(size=(1, 1, 2, 3))),
        ("x (3, 4, 4), 5 filters 1x1", g.normal(size=(3, 4, 4)), g.normal(size=(5, 3, 1, 1))),
        ("x (2, 3, 7), 2 filters 3x2", g.normal(size=(2, 3, 7)), g.normal(size=(2, 2, 3, 2))),
    ]
    for case, x, weight in cases:
        f, c, kh, kw = weight.shape
        bias = g.normal(size=f)
        out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
        cols = _unfold(x, kh, kw)
        inputs = (cols.copy(), weight.copy(), bias.copy())
        out = student_call(what, case, conv_from_columns, *inputs, out_h, out_w)
        y = reference.conv2d(x[None], weight, bias)[0][0]
        no_bias = y - bias[:, None, None]
        flat = weight.transpose(0, 2, 3, 1).reshape(f, -1) @ cols + bias[:, None]
        variants = {
            "the bias is missing: add bias[f] to every output position of filter f": no_bias,
            "the weight was flattened in another order (axes moved before reshape); "
            "weight.reshape(F, -1) is already in the columns' row order (c, ky, kx)": (
                flat.reshape(f, out_h, out_w)
            ),
        }
        assert_close(out, y, what=f"{what} result", case=case, hint=variants)
    passed(what, f"{len(cases)} cases match torch's F.conv2d, including non-square kernels")
