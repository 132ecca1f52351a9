"""The course's notebooks as committed, and the four assignments graded by real nbgrader.

- every notebook under course/ is committed clean: no outputs, stable unique cell ids, no
  IPython magics (DESIGN.md);
- every assignment follows docs/authoring.md: solution regions, hidden tests with points;
- the simulated term (``grader.term``: nbgrader release, the simulated class, parallel
  autograde, feedback) gives every submission exactly its expected grades: the instructor
  solution full marks, the untouched release zero, each planted mistake the points of all
  parts but its own, with its diagnosis in the feedback;
- the released notebooks hold none of the solution code and none of the hidden tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader.notebooks import is_test_cell, load, test_cells
from grader.term.planted import ASSIGNMENT_MODULES
from grader.term.run import run_term
from tests.grader.assignment_tools import convention_problems

COURSE = Path(__file__).resolve().parents[2] / "course"
NOTEBOOKS = sorted(p for p in COURSE.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
ASSIGNMENTS = sorted(p.parent.name for p in (COURSE / "assignments").glob("*/*.ipynb"))
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def test_the_course_has_the_four_assignments_the_planted_mistakes_name():
    assert ASSIGNMENTS == sorted(ASSIGNMENT_MODULES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_clean(path):
    nb = load(path)
    ids = [c.get("id") for c in nb.cells]
    assert all(ids), "every cell needs a stable id"
    assert len(set(ids)) == len(ids), "cell ids must be unique"
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"cell {c.id} has outputs"
            magics = [ln for ln in c.source.splitlines() if ln.lstrip().startswith(("%", "!"))]
            assert not magics, f"cell {c.id} uses IPython magics: {magics}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_cells_follow_the_authoring_rules(assignment):
    (path,) = (COURSE / "assignments" / assignment).glob("*.ipynb")
    nb = load(path)
    assert convention_problems(nb, assignment) == []
    assert len(test_cells(nb)) >= 5, "points are split across several test cells"


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    out = tmp_path_factory.mktemp("term")
    findings = run_term(out, jobs=2)
    return out / "course", findings


def test_the_simulated_class_gets_exactly_the_expected_grades(term):
    _, findings = term
    assert findings == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_hold_no_solution_or_hidden_test(term, assignment):
    root, _ = term
    (source_path,) = (root / "assignments" / assignment).glob("*.ipynb")
    released = (root / "release" / assignment / source_path.name).read_text()
    assert "BEGIN SOLUTION" not in released and "BEGIN HIDDEN TESTS" not in released
    source = load(source_path)
    for c in source.cells:
        for region in SOLUTION.findall(c.source):
            for line in region.splitlines():
                code = line.strip()
                # Lines long enough to be specific to the solution (not "return y").
                if len(code) > 25 and not code.startswith("#"):
                    assert code not in released, f"solution line leaked: {code}"
        if is_test_cell(c):
            hidden = c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            for line in hidden.strip().splitlines():
                if "checks." in line:
                    assert line.strip() not in released
