"""Assignment 3, convolution and pooling: its notebook, hidden checks and planted mistakes.

Everything runs in this process (``grader.notebooks.run_in_process``), not through nbgrader
(``test_course_notebooks.py`` does that for every assignment at once):

- the source notebook runs top to bottom, every cell (public checks and demos too) without
  an error, and earns every graded cell (the authoring rules and nbgrader's own release
  are checked for every assignment in ``test_course_notebooks.py``);
- each planted mistake loses exactly its cells, and the first one names the mistake;
- a forward that delegates to torch (an alias, an import inside forward) or to
  cvcourse.kernels loses the forward cell and is told why;
- the released notebook (every solution body a NotImplementedError) earns nothing, and every
  graded cell says that the part is not implemented yet;
- the checks feed non-contiguous inputs where they say they do.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from grader import notebooks
from grader.checks import a3_conv_pool as checks
from grader.planted import a3_conv_pool as planted
from tests.grader.assignment_tools import DELEGATION, every_cell_graded, released

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "course" / "assignments" / "a3_conv_pool" / "conv_pool.ipynb"
POINTS = {
    "test_conv2d_forward": 3,
    "test_conv2d_backward_input": 3,
    "test_conv2d_backward_weight": 2,
    "test_conv2d_backward_bias": 1,
    "test_conv2d_stride": 2,
    "test_conv2d_even_kernel": 2,
    "test_conv2d_dilation": 2,
    "test_maxpool_forward": 2,
    "test_maxpool_backward": 2,
    "test_maxpool_ties": 1,
    "test_maxpool_overlap": 2,
    "test_avgpool_forward": 1,
    "test_avgpool_backward": 2,
}


@pytest.fixture(scope="module")
def nb():
    return notebooks.load(NOTEBOOK)


def _graded_only(nb):
    """Setup, solution and graded cells: what decides the grades, without demos."""
    trimmed = copy.deepcopy(nb)
    trimmed.cells = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and (
            c.id == "setup"
            or notebooks.nbgrader_meta(c).get("solution")
            or notebooks.is_test_cell(c)
        )
    ]
    return trimmed


@pytest.fixture(scope="module")
def source_run(nb):
    return notebooks.run_in_process(every_cell_graded(nb))


def test_source_notebook_runs_every_cell_and_earns_full_marks(nb, source_run):
    code_ids = [c.id for c in nb.cells if c.cell_type == "code"]
    assert list(source_run) == code_ids
    failed = {k: r.output for k, r in source_run.items() if not r.passed}
    assert failed == {}
    for grade_id in POINTS:
        assert source_run[grade_id].output.startswith("\N{CHECK MARK}"), grade_id
    assert "worked examples: OK" in source_run["check_conv2d_examples"].output
    assert "ratio:" in source_run["speed_comparison"].output


def test_graded_cells_carry_the_planned_points(nb):
    cells = notebooks.test_cells(nb)
    assert {notebooks.grade_id(c): notebooks.nbgrader_meta(c)["points"] for c in cells} == POINTS


@pytest.mark.parametrize("mistake", planted.MISTAKES, ids=lambda m: m.student)
def test_planted_mistake_costs_exactly_its_cells(nb, mistake):
    results = notebooks.run_in_process(notebooks.with_mistake(_graded_only(nb), mistake))
    lost = tuple(k for k, r in results.items() if not r.passed)
    assert lost == mistake.loses, {k: results[k].output for k in lost}
    assert mistake.diagnosis in results[mistake.loses[0]].output
    if mistake.student == "kernel-flipped":
        # The extensions are graded with the student's kernel convention, and say so.
        for part in ("test_conv2d_stride", "test_conv2d_even_kernel", "test_conv2d_dilation"):
            assert "your forward flips the kernel" in results[part].output
    if mistake.student in ("dweight-not-summed", "maxpool-overwrite"):
        assert "Finite differences: your dL/d" in results[mistake.loses[0]].output


TORCH_ALIAS = (
    "from torch import from_numpy as as_tensor\n"
    "from torch.nn.functional import conv2d as correlate\n",
    """
        self.cache = x
        bias = self.params.get("bias")
        y = correlate(
            as_tensor(np.ascontiguousarray(x)),
            as_tensor(self.params["weight"]),
            None if bias is None else as_tensor(bias),
            stride=self.stride, padding=self.padding, dilation=self.dilation,
        )
        return y.numpy()
""",
    "called torch",
)
TORCH_IMPORT_INSIDE = (
    "",
    """
        import torch
        import torch.nn.functional as F

        self.cache = x
        bias = self.params.get("bias")
        y = F.conv2d(
            torch.from_numpy(np.ascontiguousarray(x)),
            torch.from_numpy(self.params["weight"]),
            None if bias is None else torch.from_numpy(bias),
            stride=self.stride, padding=self.padding, dilation=self.dilation,
        )
        return y.numpy()
""",
    "called torch",
)
KERNELS = (
    "from cvcourse.kernels import conv2d as fast_conv\n",
    """
        self.cache = x
        return fast_conv(
            np.ascontiguousarray(x), self.params["weight"], self.params.get("bias"),
            self.stride, self.padding, self.dilation,
        )
""",
    "called cvcourse.kernels",
)


def _with_forward(nb, header: str, body: str):
    """The notebook with Conv2d.forward's solution body replaced by ``body``."""
    changed = copy.deepcopy(nb)
    target = notebooks.cell(changed, "conv2d_solution")
    start = target.source.index("### BEGIN SOLUTION", target.source.index("def forward"))
    end = target.source.index("### END SOLUTION", start) + len("### END SOLUTION")
    target.source = header + target.source[:start] + body.strip() + target.source[end:]
    return changed


@pytest.mark.parametrize(
    "variant",
    [TORCH_ALIAS, TORCH_IMPORT_INSIDE, KERNELS],
    ids=["torch-alias", "torch-import-inside-forward", "cvcourse-kernels"],
)
def test_delegating_forward_loses_the_forward_cell(nb, variant):
    header, body, called = variant
    changed = _with_forward(nb, header, body)
    keep = {"setup", "conv_helpers", "conv2d_solution", "check_conv2d_examples"}
    changed.cells = [c for c in changed.cells if c.id in keep or c.id == "test_conv2d_forward"]
    results = notebooks.run_in_process(every_cell_graded(changed))
    # The delegating forward computes the right values (the public check passes) ...
    assert results["check_conv2d_examples"].passed, results["check_conv2d_examples"].output
    # ... and still earns nothing.
    forward = results["test_conv2d_forward"]
    assert not forward.passed
    assert called in forward.output and DELEGATION in forward.output
    assert "in forward()" in forward.output  # names the student's line


def test_released_notebook_earns_nothing_and_says_why(nb):
    results = notebooks.run_in_process(_graded_only(released(nb)))
    assert set(results) == set(POINTS)
    for grade_id, result in results.items():
        assert not result.passed, grade_id
        assert "(it raises NotImplementedError)" in result.output, (grade_id, result.output)
        assert "is not implemented yet" in result.output, grade_id


def _solution_classes(nb) -> dict:
    """The instructor's classes, executed as a notebook would define them."""
    namespace: dict = {"__name__": "__main__"}
    for c in nb.cells:
        if c.id == "setup" or notebooks.nbgrader_meta(c).get("solution"):
            exec(compile(c.source, f"<ipython-input-{c.id}>", "exec"), namespace)
    return namespace


NON_CONTIGUOUS = [
    ("conv2d_forward", "Conv2d"),
    ("conv2d_backward_input", "Conv2d"),
    ("conv2d_backward_weight", "Conv2d"),
    ("conv2d_backward_bias", "Conv2d"),
    ("conv2d_stride", "Conv2d"),
    ("conv2d_even_kernel", "Conv2d"),
    ("conv2d_dilation", "Conv2d"),
    ("maxpool_forward", "MaxPool2d"),
    ("maxpool_backward", "MaxPool2d"),
    ("maxpool_overlap", "MaxPool2d"),
    ("avgpool_forward", "AvgPool2d"),
    ("avgpool_backward", "AvgPool2d"),
]


@pytest.mark.parametrize(("check", "name"), NON_CONTIGUOUS, ids=[c for c, _ in NON_CONTIGUOUS])
def test_checks_feed_a_non_contiguous_input(nb, check, name, capsys):
    base = _solution_classes(nb)[name]
    seen: list[bool] = []

    class Recording(base):
        def forward(self, x):
            seen.append(bool(x.flags.c_contiguous))
            return super().forward(x)

    getattr(checks, check)(Recording)
    assert capsys.readouterr().out.startswith("\N{CHECK MARK}")
    assert False in seen, f"{check} never passes a non-contiguous x"


def test_finite_difference_note_tells_a_wrong_backward_from_a_shared_mistake():
    gen = np.random.default_rng(0)
    x, dy = gen.standard_normal((3, 4)), gen.standard_normal((3, 4))
    agrees = checks.finite_difference_note(lambda z: z**3, x, dy, 3 * x**2 * dy, "dL/dx")
    assert "agrees with finite differences" in agrees
    wrong = checks.finite_difference_note(lambda z: z**3, x, dy, 2 * x**2 * dy, "dL/dx")
    assert "also disagrees" in wrong
    assert checks.finite_difference_note(lambda z: z**3, x, dy, np.ones(5), "dL/dx") == ""
