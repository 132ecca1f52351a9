"""Classic mistakes in assignment 1 (NumPy warm-up), planted into the instructor's solutions.

Each edits one solution cell of ``course/assignments/a1_numpy/numpy_warmup.ipynb`` and must
cost exactly the test cells in ``loses`` (see :class:`grader.term.planted.PlantedMistake`).
"""

from __future__ import annotations

from grader.term.planted import PlantedMistake

MISTAKES = [
    PlantedMistake(
        student="im2col-wrong-order",
        cell="im2col_solution",
        old="    return windows.reshape(channels * kh * kw, out_h * out_w)",
        # Rows (i, j, c) instead of (c, i, j): the kernel offsets vary slowest.
        new=(
            "    return windows.transpose(1, 2, 0, 3, 4).reshape(channels * kh * kw, out_h * out_w)"
        ),
        loses=("test_im2col",),
        diagnosis="the rows are ordered (kernel offset, channel)",
    ),
    PlantedMistake(
        student="copy-not-view",
        cell="views_solution",
        old="    return img[..., top : top + h, left : left + w]",
        new="    return img[..., top : top + h, left : left + w].copy()",
        loses=("test_views",),
        diagnosis="returned a copy, not a view",
    ),
    PlantedMistake(
        student="confusion-not-accumulated",
        cell="confusion_matrix",
        old=(
            "    pair = np.asarray(target) * num_classes + np.asarray(pred)\n"
            "    counts = np.bincount(pair, minlength=num_classes * num_classes)\n"
            "    return counts.reshape(num_classes, num_classes)"
        ),
        new=(
            "    counts = np.zeros((num_classes, num_classes), dtype=np.int64)\n"
            "    counts[target, pred] += 1\n"
            "    return counts"
        ),
        loses=("test_confusion_matrix",),
        diagnosis="repeated (target, pred) pairs were counted once",
    ),
    PlantedMistake(
        student="distances-not-squared",
        cell="pairwise_sq_dists",
        old="    return np.maximum(sq_a + sq_b - 2.0 * (a @ b.T), 0.0)",
        new="    return np.sqrt(np.maximum(sq_a + sq_b - 2.0 * (a @ b.T), 0.0))",
        loses=("test_pairwise_distances",),
        diagnosis="you returned distances, not squared distances",
    ),
    PlantedMistake(
        student="strides-from-shape",
        cell="sliding_windows",
        old="    row_step, col_step = x.strides",
        new="    row_step, col_step = 8 * width, 8",
        loses=("test_sliding_windows",),
        diagnosis="returned a view reaching outside x's memory",
    ),
    PlantedMistake(
        student="outliers-in-place",
        cell="replace_outliers",
        old="    out = x.copy()",
        new="    out = x",
        loses=("test_boolean_mask",),
        diagnosis="changed its input array",
    ),
    PlantedMistake(
        student="class-scores-columns",
        cell="correct_class_scores",
        old="    return scores[np.arange(scores.shape[0]), labels]",
        new="    return scores[:, labels]",
        loses=("test_fancy_indexing",),
        diagnosis="scores[:, labels] takes whole columns",
    ),
]
