"""A two-part course small enough to autograde in seconds, for the pipeline's tests.

It uses the real ``course/nbgrader_config.py`` and one assignment ``tiny`` whose notebook
``tiny.ipynb`` asks for ``double(x)`` (2 points) and ``triple(x)`` (1 point), each graded by
a hidden test, with a public check in between.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {
        "grade": grade,
        "solution": solution,
        "locked": locked,
        "grade_id": grade_id,
        "schema_version": 3,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _code(cell_id, source, **meta):
    cell = new_code_cell(source, metadata=_meta(cell_id, **meta))
    cell.id = cell_id
    return cell


def tiny_notebook() -> nbformat.NotebookNode:
    intro = new_markdown_cell("# Tiny\nImplement `double` and `triple`.")
    intro.id = "intro"
    nb = new_notebook(
        cells=[
            intro,
            _code("setup", "import numpy as np", locked=True),
            _code(
                "double_impl",
                "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                solution=True,
            ),
            _code("double_public", "assert double(0) == 0", locked=True),
            _code(
                "test_double",
                "# Graded: double\n### BEGIN HIDDEN TESTS\n"
                "from cvcourse.judge_link import hand_over\n\n"
                'hand_over("double", double)\n### END HIDDEN TESTS',
                grade=True,
                locked=True,
                points=2,
            ),
            _code(
                "triple_impl",
                "def triple(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION",
                solution=True,
            ),
            _code(
                "test_triple",
                "# Graded: triple\n### BEGIN HIDDEN TESTS\n"
                "from cvcourse.judge_link import hand_over\n\n"
                'hand_over("triple", triple)\n### END HIDDEN TESTS',
                grade=True,
                locked=True,
                points=1,
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


# The course's own checks (``<course>/checks/tiny.py``), run by the judge as the four
# assignments' checks in grader/checks are.
TINY_CHECKS = """
import numpy as np

from grader.checks.harness import assert_close, passed, student_call

__all__ = ["double", "triple"]


def _times(k, function, name):
    for x in (2.0, np.arange(3.0)):
        case = f"x = {x!r}"
        out = student_call(name, case, function, x)
        assert_close(out, k * x, what=f"{name}(x)", case=case, reference=f"{k} * x")
    passed(name, "2 cases")


def double(double):
    _times(2, double, "double")


def triple(triple):
    _times(3, triple, "triple")
"""


def make_tiny_course(root: Path) -> Path:
    """Create the course under ``root`` (which must not exist); returns ``root``."""
    (root / "assignments" / "tiny").mkdir(parents=True)
    (root / "checks").mkdir()
    (root / "checks" / "tiny.py").write_text(TINY_CHECKS)
    shutil.copy(REPO / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(tiny_notebook(), root / "assignments" / "tiny" / "tiny.ipynb")
    return root


def submit(root: Path, student: str, nb: nbformat.NotebookNode | str | bytes) -> Path:
    """Put ``nb`` (a notebook, or raw text/bytes) in submitted/<student>/tiny/tiny.ipynb."""
    folder = root / "submitted" / student / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.ipynb"
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    elif isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, path)
    return path
