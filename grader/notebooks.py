"""Reading assignment notebooks: their nbgrader cells, planted mistakes, fast execution.

nbgrader grades notebooks in a sandboxed Jupyter kernel (``grader.pipeline.autograde`` and
``grader.pipeline.worktask``); this module is for everything around that: finding cells by
``grade_id``, building a simulated submission by editing a solution cell, and running a
notebook's code in this process for tests that need the checks' verdicts per cell without
nbgrader's 6 s per notebook.
"""

from __future__ import annotations

import contextlib
import copy
import io
import linecache
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:  # only a type here: the pipeline reads notebooks without the simulated term
    from grader.term.planted import PlantedMistake

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


def load(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Read a notebook (nbformat 4), raising ``ValueError`` naming the file if it is not one."""
    try:
        return nbformat.read(os.fspath(path), as_version=4)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable notebook: {exc}") from None


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    """An autograded test cell: graded, code, not a solution."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.cell_type == "code"


def test_cells(nb) -> list:
    return [cell for cell in nb.cells if is_test_cell(cell)]


test_cells.__test__ = False  # a helper, not a pytest test, when a test module imports it


def points(nb) -> dict[str, float]:
    """``grade_id -> points`` of every autograded test cell, in notebook order."""
    return {grade_id(c): float(nbgrader_meta(c).get("points", 0)) for c in test_cells(nb)}


def cell(nb, wanted: str):
    """The cell whose ``grade_id`` is ``wanted``."""
    for candidate in nb.cells:
        if grade_id(candidate) == wanted:
            return candidate
    raise KeyError(f"no cell with grade_id {wanted!r}")


def with_mistake(nb, mistake: PlantedMistake):
    """A copy of ``nb`` with ``mistake`` planted in its solution cell."""
    planted = copy.deepcopy(nb)
    target = cell(planted, mistake.cell)
    count = target.source.count(mistake.old)
    if count != 1:
        raise ValueError(
            f"planted mistake {mistake.student!r}: {mistake.old!r} occurs {count} times in "
            f"cell {mistake.cell!r}, expected exactly once"
        )
    target.source = target.source.replace(mistake.old, mistake.new)
    return planted


@dataclass
class CellResult:
    """What one graded cell did when the notebook ran: passed, and its printed output."""

    grade_id: str
    passed: bool
    output: str


def _run_source(source: str, name: str, namespace: dict) -> tuple[bool, str]:
    # Register the source with linecache so tracebacks and the checks can quote its lines,
    # and name it as IPython names cells so the checks treat it as student code.
    filename = f"<ipython-input-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(source, filename, "exec"), namespace)
    except Exception as exc:
        return False, out.getvalue() + f"{type(exc).__name__}: {exc}"
    return True, out.getvalue()


_HAND_OVER = re.compile(r"""hand_over\(\s*["'](\w+)["']""")


def _assignment_of(nb) -> str | None:
    """The assignment whose checks module exports every part the test cells hand over."""
    import importlib

    from grader.term.planted import ASSIGNMENT_MODULES

    parts = {m.group(1) for c in test_cells(nb) for m in _HAND_OVER.finditer(c.source)}
    for assignment in ASSIGNMENT_MODULES:
        module = importlib.import_module(f"grader.checks.{assignment}")
        if parts and parts <= set(getattr(module, "__all__", ())):
            return assignment
    return None


def run_in_process(
    nb, workdir: str | os.PathLike | None = None, *, seed: int | None = 0
) -> dict[str, CellResult]:
    """Execute every code cell of ``nb`` in one fresh namespace, here; graded cells' results.

    Hidden-test markers are plain comments to Python, so the hidden tests run as well: each
    hands the student's code to a real judge (:mod:`grader.judge`) listening in this
    process, which grades it through the same channel as in autograding, with cases drawn
    from ``seed``. A test cell's result is the judge's record; any other cell passes if it
    raises nothing. Cells must not use IPython magics. Matplotlib runs on the Agg backend.
    ``workdir`` (default: the current one) is the working directory while the cells run.
    """
    import matplotlib

    from cvcourse.judge_link import SOCKET_VARIABLE
    from grader.judge.session import Judge

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__main__"}
    results: dict[str, CellResult] = {}
    previous = os.getcwd()
    previous_socket = os.environ.get(SOCKET_VARIABLE)
    judge = Judge(_assignment_of(nb), seed=seed)
    os.environ[SOCKET_VARIABLE] = judge.path
    os.chdir(workdir or previous)
    try:
        for index, code_cell in enumerate(nb.cells):
            if code_cell.cell_type != "code":
                continue
            part = grade_id(code_cell) if is_test_cell(code_cell) else None
            hands_over = part is not None and _HAND_OVER.search(code_cell.source)
            if hands_over:
                judge.expect(part, 600.0)
            ok, output = _run_source(
                code_cell.source, f"{index}-{code_cell.get('id', '')}", namespace
            )
            if hands_over:
                judge.finish(part)
                record = judge.records.get(part)
                if record is not None:
                    # As the feedback shows it: a failure is a GradingFailure error.
                    ok = record.passed
                    output = record.message if ok else f"GradingFailure: {record.message}"
                else:
                    ok, output = False, f"not graded: {output}"
            if is_test_cell(code_cell):
                results[grade_id(code_cell)] = CellResult(grade_id(code_cell), ok, output)
    finally:
        os.chdir(previous)
        judge.close()
        if previous_socket is None:
            os.environ.pop(SOCKET_VARIABLE, None)
        else:
            os.environ[SOCKET_VARIABLE] = previous_socket
        import matplotlib.pyplot as plt

        plt.close("all")  # figures the cells made with pyplot would otherwise pile up
    return results


def assignment_notebook(course_root: str | os.PathLike, assignment: str) -> Path:
    """The one source notebook of ``assignment`` under ``course_root/assignments``."""
    folder = Path(course_root) / "assignments" / assignment
    found = sorted(folder.glob("*.ipynb"))
    if len(found) != 1:
        raise ValueError(f"{folder} should hold exactly one notebook, found {len(found)}")
    return found[0]
