"""Assignment 2 (fully connected layers and losses): notebook, hidden checks, planted mistakes.

Everything runs in this process (``grader.notebooks.run_in_process``), not through nbgrader:
the verdict of each graded cell is what the checks print or raise. The authoring rules and
the release as nbgrader makes it are checked for every assignment in
``test_course_notebooks.py``. The checks also run directly on classes: the solution computed
in float32 earns every part, a wrong float32 result is told why it fails, an in-place shift
costs one cell, and ``assert_close`` applies and explains its float32 rule.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from grader import notebooks
from grader.checks import a2_fc_losses as checks
from grader.checks import harness
from grader.checks.harness import GradingFailure
from grader.term.planted import PlantedMistake, mistakes_for
from tests.grader.assignment_tools import check_verdicts, exec_as_cell, lost, released

CHECKED_CLASS = {
    "numerical_gradient": "numerical_gradient",
    "relative_error": "relative_error",
    "linear_forward": "Linear",
    "linear_backward_input": "Linear",
    "linear_backward_weight": "Linear",
    "linear_backward_bias": "Linear",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax_forward": "Softmax",
    "softmax_large_logits": "Softmax",
    "softmax_backward": "Softmax",
    "softmax_jacobian": "softmax_jacobian",
    "mse_forward": "MSELoss",
    "mse_backward": "MSELoss",
    "cross_entropy_forward": "CrossEntropyLoss",
    "cross_entropy_backward": "CrossEntropyLoss",
    "cross_entropy_large_logits": "CrossEntropyLoss",
}

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "course" / "assignments" / "a2_fc_losses"
NOTEBOOK = FOLDER / "fc_losses.ipynb"
MISTAKES = mistakes_for("a2_fc_losses")
TEST_CELLS = (
    "test_numerical_gradient",
    "test_relative_error",
    "test_linear_forward",
    "test_linear_backward_input",
    "test_linear_backward_weight",
    "test_linear_backward_bias",
    "test_relu",
    "test_sigmoid",
    "test_softmax_forward",
    "test_softmax_large_logits",
    "test_softmax_backward",
    "test_softmax_jacobian",
    "test_mse_forward",
    "test_mse_backward",
    "test_cross_entropy_forward",
    "test_cross_entropy_backward",
    "test_cross_entropy_large_logits",
)

# More classic mistakes, beyond the planted ones, that must each cost exactly one cell: they
# exercise the checks' independence rules (a backward graded against the student's own
# forward, a large-logit check that accepts a stable result that is wrong elsewhere).
EXTRA_MISTAKES = [
    PlantedMistake(
        student="dw-transposed",
        cell="linear",
        old='self.grads["weight"] = dy.T @ self.x',
        new='self.grads["weight"] = self.x.T @ dy',
        loses=("test_linear_backward_weight",),
        diagnosis="dW transposed",
    ),
    PlantedMistake(
        student="softmax-over-batch-axis",
        cell="softmax",
        old=(
            "e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
            "        self.s = e / e.sum(axis=-1, keepdims=True)"
        ),
        new=(
            "e = np.exp(x - x.max(axis=0, keepdims=True))\n"
            "        self.s = e / e.sum(axis=0, keepdims=True)"
        ),
        loses=("test_softmax_forward",),
        diagnosis="softmax over axis 0",
    ),
    PlantedMistake(
        student="softmax-backward-diagonal",
        cell="softmax",
        old="return s * (dy - np.sum(dy * s, axis=-1, keepdims=True))",
        new="return dy * s * (1 - s)",
        loses=("test_softmax_backward",),
        diagnosis="only the diagonal of the Jacobian",
    ),
    PlantedMistake(
        student="ce-log-of-softmax",
        cell="cross_entropy_loss",
        old="log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
        new="log_probs = np.log(np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True))",
        loses=("test_cross_entropy_large_logits",),
        diagnosis="log-sum-exp",
    ),
    PlantedMistake(
        student="ce-summed",
        cell="cross_entropy_loss",
        old="self.target].mean())",
        new="self.target].sum())",
        loses=("test_cross_entropy_forward",),
        diagnosis="loss summed instead of averaged",
    ),
    PlantedMistake(
        student="mse-grad-not-divided",
        cell="mse_loss",
        old="return 2 * self.diff / self.diff.size",
        new="return 2 * self.diff",
        loses=("test_mse_backward",),
        diagnosis="gradient not divided by the number of elements",
    ),
    PlantedMistake(
        student="one-sided-differences",
        cell="gradient_check",
        old="(f_plus - f_minus) / (2 * h)",
        new="(f_plus - f(x)) / h",
        loses=("test_numerical_gradient",),
        diagnosis="one-sided difference",
    ),
    PlantedMistake(
        student="relative-error-zero-over-zero",
        cell="gradient_check",
        old="ratio = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)",
        new="ratio = diff / scale",
        loses=("test_relative_error",),
        diagnosis="0 / 0 where both values are 0",
    ),
    PlantedMistake(
        student="relu-in-place",
        cell="relu",
        old="return np.where(self.mask, x, 0.0)",
        new="x[~self.mask] = 0.0\n        return x",
        loses=("test_relu",),
        diagnosis="in place",
    ),
    PlantedMistake(
        student="jacobian-diagonal-only",
        cell="softmax_jacobian",
        old="np.diag(s) - np.outer(s, s)",
        new="np.diag(s * (1 - s))",
        loses=("test_softmax_jacobian",),
        diagnosis="only the diagonal",
    ),
]


# Public-check and demo cells of a notebook with a planted mistake may overflow (a diverging
# training demo): those cells are not graded, and their warnings are not what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def notebook():
    return notebooks.load(NOTEBOOK)


@pytest.fixture(scope="module")
def source_results(notebook):
    return notebooks.run_in_process(notebook)


def _student_namespace(nb) -> dict:
    """The setup and solution cells executed as a student's kernel would (no test cells)."""
    namespace: dict = {"__name__": "__main__"}
    for index, cell in enumerate(nb.cells):
        meta = notebooks.nbgrader_meta(cell)
        if cell.cell_type == "code" and (meta.get("solution") or cell.id == "setup"):
            exec_as_cell(cell.source, f"a2-{index}", namespace)
    return namespace


# ---------------------------------------------------------------------------------------------
# The source notebook
# ---------------------------------------------------------------------------------------------


def test_source_notebook_earns_full_marks(notebook, source_results):
    assert tuple(source_results) == TEST_CELLS
    failed = {k: r.output for k, r in source_results.items() if not r.passed}
    assert not failed
    for result in source_results.values():
        assert result.output.startswith("\N{CHECK MARK}"), result.output
    assert tuple(notebooks.points(notebook)) == TEST_CELLS
    assert sum(notebooks.points(notebook).values()) == 23


def test_graded_cells_write_nothing_to_stderr(notebook):
    # nbgrader scores a cell with anything on stderr as zero: the checks must stay silent,
    # also for a sigmoid whose exp overflows (a RuntimeWarning inside the student's code).
    namespace = _student_namespace(notebook)
    naive = exec_as_cell(
        "class NaiveSigmoid(Sigmoid):\n"
        "    def forward(self, x):\n"
        "        self.s = 1 / (1 + np.exp(-x))\n"
        "        return self.s\n",
        "naive-sigmoid",
        dict(namespace),
    )
    calls = [(getattr(checks, name), namespace[arg]) for name, arg in CHECKED_CLASS.items()]
    calls.append((checks.sigmoid, naive["NaiveSigmoid"]))
    for check, student in calls:
        out, err = io.StringIO(), io.StringIO()
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            # pytest records warnings itself: "always" makes any that escape show up here.
            warnings.simplefilter("always")
            check(student)
        assert err.getvalue() == "", (check.__name__, err.getvalue())
        assert [str(w.message) for w in caught] == [], check.__name__
        assert out.getvalue().count("\n") == 1, out.getvalue()


# ---------------------------------------------------------------------------------------------
# Planted mistakes: each costs exactly its cells, with the diagnosis
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mistake", MISTAKES + EXTRA_MISTAKES, ids=lambda m: m.student)
def test_mistake_costs_exactly_its_cells(notebook, mistake):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", mistake.student)
    results = notebooks.run_in_process(notebooks.with_mistake(notebook, mistake))
    failed = tuple(k for k, r in results.items() if not r.passed)
    assert failed == mistake.loses, {k: results[k].output for k in failed}
    first = results[mistake.loses[0]].output
    assert first.startswith("GradingFailure: "), first
    assert mistake.diagnosis in first, first


def test_the_planted_list_covers_the_required_mistakes():
    required = {
        "linear-transposed-weight": ("test_linear_forward",),
        "softmax-overflow": ("test_softmax_large_logits",),
        "loss-summed": ("test_mse_forward",),
        "linear-dbias-wrong-axis": ("test_linear_backward_bias",),
    }
    planted = {m.student: m.loses for m in MISTAKES}
    assert {k: planted.get(k) for k in required} == required
    assert len(planted) == len(MISTAKES)


def test_stable_but_wrong_results_pass_the_large_logit_cells_with_a_note(notebook):
    # ce-grad-not-divided: the gradient is N times too large everywhere, but stable.
    mistake = next(m for m in MISTAKES if m.student == "ce-grad-not-divided")
    results = notebooks.run_in_process(notebooks.with_mistake(notebook, mistake))
    large = results["test_cross_entropy_large_logits"]
    assert large.passed and "stable: it equals your result" in large.output


# ---------------------------------------------------------------------------------------------
# Delegation and unwritten parts
# ---------------------------------------------------------------------------------------------

_SKELETON = """
import numpy as np

class DelegatingLinear:
    def __init__(self, in_features, out_features, bias=True):
        self.params = {{"weight": np.zeros((out_features, in_features))}}
        if bias:
            self.params["bias"] = np.zeros(out_features)
        self.grads = {{}}

    def forward(self, x):
{body}
"""

_ALIAS = """
from torch import from_numpy as to_tensor
from torch.nn.functional import linear as fully_connected
""" + _SKELETON.format(
    body="""        bias = self.params.get("bias")
        bias = None if bias is None else to_tensor(bias)
        return fully_connected(to_tensor(x), to_tensor(self.params["weight"]), bias).numpy()"""
)

_IMPORT_INSIDE = _SKELETON.format(
    body="""        import torch

        bias = self.params.get("bias")
        bias = None if bias is None else torch.tensor(bias)
        weight = torch.tensor(self.params["weight"])
        return torch.nn.functional.linear(torch.tensor(x), weight, bias).numpy()"""
)


@pytest.mark.parametrize("source", [_ALIAS, _IMPORT_INSIDE], ids=["alias", "import-inside"])
def test_linear_delegating_to_torch_earns_nothing(source):
    namespace = exec_as_cell(source, "delegating-linear", {"__name__": "__main__"})
    with pytest.raises(GradingFailure) as failure:
        checks.linear_forward(namespace["DelegatingLinear"])
    message = str(failure.value)
    assert "Linear.forward called torch" in message
    assert "earns no points" in message
    assert "in forward(), line" in message


def test_numerical_gradient_delegating_to_cvcourse_earns_nothing():
    source = (
        "from cvcourse.gradcheck import numerical_gradient as library_gradient\n"
        "def numerical_gradient(f, x, h=1e-5):\n"
        "    return library_gradient(f, x, h=h)\n"
    )
    namespace = exec_as_cell(source, "delegating-gradient", {"__name__": "__main__"})
    with pytest.raises(GradingFailure, match="called cvcourse.gradcheck"):
        checks.numerical_gradient(namespace["numerical_gradient"])


def test_every_check_fails_cleanly_on_the_released_stubs(notebook):
    results = notebooks.run_in_process(released(notebook))
    assert tuple(results) == TEST_CELLS
    for grade_id, result in results.items():
        assert not result.passed, grade_id
        first_line = result.output.splitlines()[0]
        assert first_line.startswith("GradingFailure: "), (grade_id, result.output)
        assert "is not implemented yet (it raises NotImplementedError)" in first_line
        assert "case: " in result.output and "raise NotImplementedError()" in result.output


def test_wrong_shapes_and_missing_returns_are_named():
    source = """
import numpy as np

class ForgetfulSoftmax:
    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        np.exp(x)


class StoredInOut:
    def __init__(self, in_features, out_features, bias=True):
        self.params = {"weight": np.zeros((in_features, out_features))}
        self.params["bias"] = np.zeros(out_features)
        self.grads = {}

    def forward(self, x):
        return x @ self.params["weight"] + self.params["bias"]


class PerSampleLoss:
    def forward(self, pred, target):
        return np.mean((pred - target) ** 2, axis=-1)
"""
    namespace = exec_as_cell(source, "shapes", {"__name__": "__main__"})
    with pytest.raises(GradingFailure, match="forget to return"):
        checks.softmax_forward(namespace["ForgetfulSoftmax"])
    with pytest.raises(GradingFailure, match="weight stored as \\(in_features, out_features\\)"):
        checks.linear_forward(namespace["StoredInOut"])
    with pytest.raises(GradingFailure, match="expected one number"):
        checks.mse_forward(namespace["PerSampleLoss"])


def test_finite_difference_note_tells_shared_from_backward_mistakes():
    x = np.random.default_rng(0).standard_normal((3, 4))
    dy = np.ones_like(x)
    shared = harness.finite_difference_note(lambda v: 2 * v, x, dy, 2 * dy, "dx")
    wrong = harness.finite_difference_note(lambda v: 2 * v, x, dy, 3 * dy, "dx")
    assert "forward and backward share the mistake" in shared
    assert "also disagrees" in wrong


# ---------------------------------------------------------------------------------------------
# The checks on classes: float32, in-place changes charged once, accumulated gradients
# ---------------------------------------------------------------------------------------------


def _edited_namespace(notebook, edits: list[tuple[str, str, str]]) -> dict:
    """The solution's classes with ``(cell, old, new)`` edits, each ``old`` occurring once."""
    changed = notebook
    for index, (cell, old, new) in enumerate(edits):
        changed = notebooks.with_mistake(
            changed, PlantedMistake(f"edit-{index}", cell, old, new, ("unused",), "")
        )
    return _student_namespace(changed)


def _verdicts(namespace: dict) -> dict[str, str]:
    """Every check on the namespace's classes: part -> its passing line or "FAIL: " + message."""
    return check_verdicts(checks, {part: namespace[n] for part, n in CHECKED_CLASS.items()})


FLOAT32 = [
    # Every layer and loss computed in float32 (the inputs cast on the way in).
    (
        "linear",
        'y = x @ self.params["weight"].T',
        'x = x.astype(np.float32)\n        self.x = x\n        y = x @ self.params["weight"]'
        ".T.astype(np.float32)",
    ),
    ("linear", 'y = y + self.params["bias"]', 'y = y + self.params["bias"].astype(np.float32)'),
    (
        "linear",
        'self.grads["weight"] = dy.T @ self.x',
        'dy = dy.astype(np.float32)\n        self.grads["weight"] = dy.T @ self.x',
    ),
    (
        "linear",
        'return dy @ self.params["weight"]',
        'return dy @ self.params["weight"].astype(np.float32)',
    ),
    ("relu", "self.mask = x > 0", "x = x.astype(np.float32)\n        self.mask = x > 0"),
    (
        "relu",
        "return np.where(self.mask, dy, 0.0)",
        "return np.where(self.mask, dy.astype(np.float32), np.float32(0.0))",
    ),
    (
        "sigmoid",
        "self.s = np.exp(-np.logaddexp(0.0, -x))",
        "self.s = np.exp(-np.logaddexp(np.float32(0.0), -x.astype(np.float32)))",
    ),
    (
        "softmax",
        "e = np.exp(x - x.max(axis=-1, keepdims=True))",
        "x = x.astype(np.float32)\n        e = np.exp(x - x.max(axis=-1, keepdims=True))",
    ),
    ("softmax", "s = self.s\n", "s = self.s\n        dy = dy.astype(np.float32)\n"),
    (
        "softmax_jacobian",
        "return np.diag(s) - np.outer(s, s)",
        "s = s.astype(np.float32)\n    return np.diag(s) - np.outer(s, s)",
    ),
    ("mse_loss", "self.diff = pred - target", "self.diff = (pred - target).astype(np.float32)"),
    (
        "cross_entropy_loss",
        "n = logits.shape[0]\n",
        "n = logits.shape[0]\n        logits = logits.astype(np.float32)\n",
    ),
]


def test_the_solution_in_float32_earns_every_part(notebook):
    namespace = _edited_namespace(notebook, FLOAT32)
    layer = namespace["Linear"](3, 2)
    assert layer.forward(np.ones((1, 3))).dtype == np.float32
    assert lost(_verdicts(namespace)) == []


def test_a_wrong_float32_result_is_told_about_float32(notebook):
    transposed = (
        "linear",
        'y = x @ self.params["weight"].T.astype(np.float32)',
        'y = x @ self.params["weight"].astype(np.float32)',
    )
    verdicts = _verdicts(_edited_namespace(notebook, [*FLOAT32, transposed]))
    assert lost(verdicts) == ["linear_forward"]
    message = verdicts["linear_forward"]
    assert "your output is float32; the checks compare in float64 at rtol 1e-6" in message
    assert checks.TRANSPOSED_WEIGHT in message


def test_a_correct_numerical_gradient_through_x_flat_passes_every_layout(notebook):
    through_flat = (
        "gradient_check",
        "    for index in np.ndindex(x.shape):\n"
        "        original = x[index]\n"
        "        x[index] = original + h\n"
        "        f_plus = f(x)\n"
        "        x[index] = original - h\n"
        "        f_minus = f(x)\n",
        "    for index in np.ndindex(x.shape):\n"
        "        i = np.ravel_multi_index(index, x.shape)\n"
        "        original = x.flat[i]\n"
        "        x.flat[i] = original + h\n"
        "        f_plus = f(x)\n"
        "        x.flat[i] = original - h\n"
        "        f_minus = f(x)\n",
    )
    verdicts = _verdicts(_edited_namespace(notebook, [through_flat]))
    assert "numerical_gradient" not in lost(verdicts)


def test_an_in_place_shift_in_softmax_costs_the_forward_cell_only(notebook):
    shift = (
        "softmax",
        "e = np.exp(x - x.max(axis=-1, keepdims=True))",
        "x -= x.max(axis=-1, keepdims=True)\n        e = np.exp(x)",
    )
    verdicts = _verdicts(_edited_namespace(notebook, [shift]))
    assert lost(verdicts) == ["softmax_forward"]
    assert "changed its input #1 in place" in verdicts["softmax_forward"]


def test_an_accumulating_bias_gradient_loses_the_bias_cell_only(notebook):
    accumulate = (
        "linear",
        'self.grads["bias"] = dy.sum(axis=0)',
        'self.grads["bias"] += dy.sum(axis=0)',
    )
    verdicts = _verdicts(_edited_namespace(notebook, [accumulate]))
    assert lost(verdicts) == ["linear_backward_bias"]
    assert "gradient accumulated across backward calls" in verdicts["linear_backward_bias"]


def test_an_unstable_softmax_forward_is_not_charged_again_by_the_backward_cell(notebook):
    overflow = next(m for m in MISTAKES if m.student == "softmax-overflow")
    verdicts = _verdicts(_edited_namespace(notebook, [(overflow.cell, overflow.old, overflow.new)]))
    assert lost(verdicts) == ["softmax_large_logits"]
    assert (
        "not graded at large logits where your forward is not finite"
        in (verdicts["softmax_backward"])
    )


def test_assert_close_compares_float32_at_float32_precision():
    gen = np.random.default_rng(0)
    reference = gen.standard_normal((5, 7)) * 3
    rounded = reference.astype(np.float32)
    harness.assert_close(rounded, reference, what="y", case="c")  # rounding passes
    # float32 rounding of the result is accepted; an error ten times larger than the
    # allowance is not, and the message says which rule applied.
    scale = np.max(np.abs(reference))
    off = (reference + 10 * harness.FLOAT32_RTOL * scale).astype(np.float32)
    with pytest.raises(GradingFailure) as failure:
        harness.assert_close(off, reference, what="y", case="c")
    message = str(failure.value)
    assert "your output is float32; the checks compare in float64 at rtol 1e-6" in message
    assert "rounding is not the reason" in message
    # The same values as float64 fail at rtol 1e-6, with a word on float32-sized errors.
    with pytest.raises(GradingFailure, match="as small as float32 rounding"):
        harness.assert_close(rounded.astype(np.float64) * (1 + 3e-6), reference, what="y", case="c")
    with pytest.raises(GradingFailure, match="your output is float16"):
        harness.assert_close(reference.astype(np.float16), reference, what="y", case="c")
    # A student's float32 layer whose float64-typed output carries float32 errors.
    harness.assert_close(rounded.astype(np.float64), reference, what="y", case="c", float32=True)
    assert harness.matches(rounded, reference) and not harness.matches(off, reference)
