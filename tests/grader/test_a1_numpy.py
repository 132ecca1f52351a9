"""Assignment 1, NumPy warm-up: its notebook, hidden checks and planted mistakes.

Everything runs in this process (``grader.notebooks.run_in_process``), not through nbgrader
(``test_course_notebooks.py`` does that for every assignment at once):

- the source notebook runs top to bottom, every cell (public checks and demos too) without
  an error, and earns every graded cell;
- each planted mistake loses exactly its cells, and the first one names the mistake;
- a part that delegates (torch through an alias or an import inside the function,
  cvcourse.kernels.im2col, NumPy's sliding_window_view where as_strided is asked for) loses
  its cell and is told why;
- the released notebook (every solution body a NotImplementedError) earns nothing, and each
  check fails cleanly on a stub.

The authoring rules and the release as nbgrader makes it are checked for every assignment in
``test_course_notebooks.py``; the helpers are in ``assignment_tools.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader import notebooks
from grader.checks import a1_numpy as checks
from grader.checks.harness import GradingFailure
from grader.term.planted import a1_numpy as planted
from tests.grader.assignment_tools import (
    DELEGATION,
    every_cell_graded,
    exec_as_cell,
    failed,
    released,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "course" / "assignments" / "a1_numpy" / "numpy_warmup.ipynb"
POINTS = {
    "test_fancy_indexing": 1,
    "test_boolean_mask": 1,
    "test_pairwise_distances": 2,
    "test_confusion_matrix": 2,
    "test_views": 1,
    "test_sliding_windows": 2,
    "test_im2col": 2,
    "test_conv_as_matmul": 1,
}


# ---------------------------------------------------------------------------------------------
# The source notebook
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nb():
    return notebooks.load(NOTEBOOK)


@pytest.fixture(scope="module")
def source_run(nb):
    return notebooks.run_in_process(every_cell_graded(nb))


def test_the_source_notebook_runs_clean_and_earns_every_point(nb, source_run):
    broken = {k: r.output for k, r in source_run.items() if not r.passed}
    assert broken == {}
    for grade_id in POINTS:
        assert source_run[grade_id].output.startswith("\N{CHECK MARK}"), grade_id
    assert notebooks.points(nb) == POINTS
    assert sum(POINTS.values()) == 12


# ---------------------------------------------------------------------------------------------
# Planted mistakes and the release
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mistake", planted.MISTAKES, ids=lambda m: m.student)
def test_each_planted_mistake_loses_exactly_its_cells(nb, source_run, mistake):
    results = notebooks.run_in_process(notebooks.with_mistake(nb, mistake))
    assert failed(results) == set(mistake.loses)
    assert mistake.diagnosis in results[mistake.loses[0]].output


def test_the_required_mistakes_are_planted():
    students = {m.student: m.loses for m in planted.MISTAKES}
    assert students["im2col-wrong-order"] == ("test_im2col",)
    assert students["copy-not-view"] == ("test_views",)


def test_the_release_earns_nothing_and_says_why(nb, source_run):
    results = notebooks.run_in_process(released(nb))
    assert failed(results) == set(POINTS)
    for result in results.values():
        assert "NotImplementedError" in result.output


# ---------------------------------------------------------------------------------------------
# Delegation and stubs
# ---------------------------------------------------------------------------------------------

DELEGATING = {
    "im2col": (
        checks.im2col,
        "def im2col(x, kh, kw):\n"
        "    from cvcourse.kernels import im2col as unfold\n"
        "    return unfold(x[None], (kh, kw))[0]\n",
        "cvcourse.kernels",
    ),
    "sliding_windows": (
        checks.sliding_windows,
        "from numpy.lib.stride_tricks import sliding_window_view as windows\n"
        "def sliding_windows(x, k):\n"
        "    return windows(x, (k, k))\n",
        "sliding_window_view",
    ),
    "pairwise_sq_dists": (
        checks.pairwise_distances,
        "import numpy as np\n"
        "from torch import cdist as distances, from_numpy as tensor\n"
        "def pairwise_sq_dists(a, b):\n"
        "    return distances(tensor(np.ascontiguousarray(a)), tensor(b)).numpy() ** 2\n",
        "torch",
    ),
    "conv_from_columns": (
        checks.conv_as_matmul,
        "import numpy as np\n"
        "def conv_from_columns(cols, weight, bias, out_h, out_w):\n"
        "    import torch\n"
        "    w = torch.from_numpy(weight.reshape(weight.shape[0], -1))\n"
        "    out = (w @ torch.from_numpy(cols)).numpy() + bias[:, None]\n"
        "    return out.reshape(-1, out_h, out_w)\n",
        "torch",
    ),
}


@pytest.mark.parametrize("name", sorted(DELEGATING))
def test_a_delegating_part_earns_nothing_and_is_told_why(name):
    check, source, target = DELEGATING[name]
    function = exec_as_cell(source, f"delegate-{name}")[name]
    with pytest.raises(GradingFailure) as failure:
        check(function)
    message = str(failure.value)
    assert DELEGATION in message and target in message
    assert "line" in message  # the student's line that made the call
    if name == "sliding_windows":
        assert "as_strided" in message


def _stub(*args, **kwargs):
    raise NotImplementedError()


STUB_CALLS = {
    "fancy_indexing": lambda: checks.fancy_indexing(_stub),
    "boolean_mask": lambda: checks.boolean_mask(_stub),
    "pairwise_distances": lambda: checks.pairwise_distances(_stub),
    "confusion_matrix": lambda: checks.confusion_matrix(_stub),
    "views": lambda: checks.views(_stub, _stub),
    "sliding_windows": lambda: checks.sliding_windows(_stub),
    "im2col": lambda: checks.im2col(_stub),
    "conv_as_matmul": lambda: checks.conv_as_matmul(_stub),
}


def test_every_check_has_a_stub_case():
    assert set(STUB_CALLS) == set(checks.__all__)


@pytest.mark.parametrize("name", sorted(STUB_CALLS))
def test_each_check_fails_cleanly_on_a_stub(name):
    with pytest.raises(GradingFailure, match="is not implemented yet"):
        STUB_CALLS[name]()


# ---------------------------------------------------------------------------------------------
# Details of the checks
# ---------------------------------------------------------------------------------------------


def test_a_sliding_view_that_reads_past_the_array_fails_before_reading():
    def too_many_windows(x, k):
        h, w = x.shape
        s0, s1 = x.strides
        shape = (h, w, k, k)  # H windows instead of H - k + 1: past the end of x
        return np.lib.stride_tricks.as_strided(x, shape, (s0, s1, s0, s1))

    with pytest.raises(GradingFailure, match="reaching outside x's memory"):
        checks.sliding_windows(too_many_windows)


def test_a_copied_but_correct_sliding_window_array_is_told_to_be_a_view():
    def copied(x, k):
        x = np.ascontiguousarray(x)
        h, w = x.shape
        s0, s1 = x.strides
        view = np.lib.stride_tricks.as_strided(x, (h - k + 1, w - k + 1, k, k), (s0, s1, s0, s1))
        return view.copy()

    with pytest.raises(GradingFailure, match="returned a copy, not a view"):
        checks.sliding_windows(copied)


def test_transposed_windows_are_recognised():
    def transposed(x, k):
        h, w = x.shape
        s0, s1 = x.strides
        return np.lib.stride_tricks.as_strided(x, (h - k + 1, w - k + 1, k, k), (s0, s1, s1, s0))

    with pytest.raises(GradingFailure, match="last two strides are swapped"):
        checks.sliding_windows(transposed)


def test_an_im2col_with_kernel_offsets_swapped_is_recognised():
    def swapped(x, kh, kw):
        c, h, w = x.shape
        s = x.strides
        shape = (c, kw, kh, h - kh + 1, w - kw + 1)
        view = np.lib.stride_tricks.as_strided(x, shape, (s[0], s[2], s[1], s[1], s[2]))
        return view.reshape(c * kh * kw, -1)

    with pytest.raises(GradingFailure, match=r"ordered \(kx, ky\)"):
        checks.im2col(swapped)


def test_strides_assuming_a_contiguous_array_are_recognised():
    def from_shape(x, k):
        h, w = x.shape
        row, col = x.itemsize * w, x.itemsize  # right only for a contiguous x
        return np.lib.stride_tricks.as_strided(x, (h - k + 1, w - k + 1, k, k), (row, col) * 2)

    with pytest.raises(GradingFailure, match="instead of taken from x.strides") as failure:
        checks.sliding_windows(from_shape)
    assert "non-contiguous" in str(failure.value)
