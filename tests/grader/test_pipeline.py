"""The TA pipeline end to end, through the real ``cvgrade`` command and real nbgrader.

A class of ten on the tiny course (``tiny_course.py``: ``double`` 2 points, ``triple``
1 point) arrives as a Canvas-style zip; each student breaks the grader in a different way.
``cvgrade run`` grades them with two workers; the tests then read the gradebook, the CSV,
the feedback and the notes, and re-run grading with one worker to check it gives the same.
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.notebooks import cell
from grader.pipeline.course import Course
from grader.pipeline.gradebook import cell_scores
from tests.grader.tiny_course import make_tiny_course, tiny_notebook

CVGRADE = [sys.executable, "-m", "grader.cli"]


def _solution_with(**sources):
    nb = tiny_notebook()
    for grade_id, source in sources.items():
        cell(nb, grade_id).source = source
    return nb


def _without_hidden_tests(nb):
    # What a student holds: the released version's test cells have no hidden part.
    nb = copy.deepcopy(nb)
    for test in nb.cells:
        test.source = test.source.split("### BEGIN HIDDEN TESTS")[0]
    return nb


STUB = "def {0}(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"

# student -> (what the zip holds, expected {cell: score})
CLASS = {
    "alice": (_solution_with(), {"test_double": 2, "test_triple": 1}),
    "bob": (
        _solution_with(double_impl=STUB.format("double"), triple_impl=STUB.format("triple")),
        {"test_double": 0, "test_triple": 0},
    ),
    # os._exit kills the kernel in triple's cell: double keeps its points.
    "carol": (
        _solution_with(triple_impl="import os\nos._exit(1)"),
        {"test_double": 2, "test_triple": 0},
    ),
    # An infinite loop costs the per-cell timeout, then the rest runs.
    "dave": (
        _solution_with(triple_impl="def triple(x):\n    while True:\n        pass"),
        {"test_double": 2, "test_triple": 0},
    ),
    "erin": (b"{this is not json", {"test_double": 0, "test_triple": 0}),
    "jack": (
        b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
        {"test_double": 0, "test_triple": 0},
    ),
    # Rewrites the test cell to define triple itself: nbgrader restores the cell.
    "frank": (
        _solution_with(triple_impl=STUB.format("triple"), test_triple="triple = lambda x: 3 * x"),
        {"test_double": 2, "test_triple": 0},
    ),
    # Deletes a test cell: add_missing_cells puts it back and grades it.
    "george": (None, {"test_double": 2, "test_triple": 1}),
    # Asks for 8 GiB: MemoryError under the kernel's limit, zero for that part only.
    "harry": (
        _solution_with(triple_impl="_hog = np.ones(2**30)\ndef triple(x):\n    return 3 * x"),
        {"test_double": 2, "test_triple": 0},
    ),
    "ivy": (_solution_with(), {"test_double": 2, "test_triple": 1}),
}


def _notebook_bytes(student: str) -> bytes:
    content, _ = CLASS[student]
    if isinstance(content, bytes):
        return content
    if content is None:  # george
        content = _solution_with()
        content.cells = [c for c in content.cells if c.get("id") != "test_double"]
    return nbformat.writes(_without_hidden_tests(content)).encode()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class, zipped Canvas-style, run through ``cvgrade run`` with two workers."""
    base = tmp_path_factory.mktemp("pipeline")
    root = make_tiny_course(base / "course")
    archive = base / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for number, student in enumerate(CLASS):
            zf.writestr(
                f"{student}_{1000 + number}_{5000 + number}_tiny.ipynb", _notebook_bytes(student)
            )
        # ivy also handed in an older attempt: the newer file must win.
        old = zipfile.ZipInfo("ivy_1008_4999_tiny-old.ipynb", date_time=(2020, 1, 1, 0, 0, 0))
        zf.writestr(old, b"{broken older attempt")
    collected = subprocess.run(
        [*CVGRADE, "--course", str(root), "collect", "tiny", str(archive)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    # A module beside a submission would shadow numpy in the kernel: the course ignores *.py.
    (root / "submitted" / "alice" / "tiny" / "numpy.py").write_text("raise ImportError('shadow')")
    run = subprocess.run(
        [
            *CVGRADE,
            "--course",
            str(root),
            "run",
            "tiny",
            "--jobs",
            "2",
            "--timeout",
            "5",
            "--memory-mb",
            "2048",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return root, run.stdout


def _scores(root: Path) -> dict[tuple[str, str], float | None]:
    return {(s.student, s.cell): s.score for s in cell_scores(Course(root), ["tiny"])}


def test_every_student_gets_exactly_the_expected_grades(graded):
    root, _ = graded
    scores = _scores(root)
    for student, (_, expected) in CLASS.items():
        for test, points in expected.items():
            assert scores[(student, test)] == points, (student, test)


def test_notes_report_each_way_a_submission_broke_the_grader(graded):
    root, stdout = graded
    notes = {
        p.stem: json.loads(p.read_text())["notes"]
        for p in (root / "grading" / "tiny").glob("*.json")
    }
    assert any("kernel died" in n for n in notes["carol"])
    assert any("timeout" in n for n in notes["dave"])
    assert any("not valid JSON" in n for n in notes["erin"])
    assert (root / "submitted" / "erin" / "tiny" / "tiny.ipynb.unreadable").exists()
    assert any("no list of cells" in n for n in notes["jack"])
    assert any("test_triple was modified" in n for n in notes["frank"])
    assert any("test_double was deleted" in n for n in notes["george"])
    assert any("out of memory" in n for n in notes["harry"])
    assert notes["alice"] == []
    assert "kernel died" in stdout


def test_shadowing_python_files_never_reach_the_kernel(graded):
    root, _ = graded
    assert not (root / "autograded" / "alice" / "tiny" / "numpy.py").exists()
    assert _scores(root)[("alice", "test_double")] == 2


def test_feedback_shows_scores_and_messages_but_no_hidden_tests(graded):
    root, _ = graded
    page = (root / "feedback" / "bob" / "tiny" / "tiny.html").read_text()
    assert "NotImplementedError" in page
    assert "assert triple(2) == 6" not in page  # the hidden test itself
    assert "BEGIN HIDDEN TESTS" not in page
    assert "Score: 0" in page or "0.0 / 3.0" in page or "0 / 3" in page


def test_grades_csv_has_every_part_and_the_totals(graded):
    root, _ = graded
    with open(root / "reports" / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(CLASS) | {"(max)"}
    assert float(rows["carol"]["tiny/test_double"]) == 2
    assert float(rows["carol"]["total"]) == 2
    assert float(rows["(max)"]["total"]) == 3
    assert (root / "reports" / "report.html").exists()
    assert (root / "reports" / "histogram.png").stat().st_size > 0


def test_regrading_with_one_worker_gives_the_same_grades_and_csv(graded):
    root, _ = graded
    before_scores = _scores(root)
    before_csv = (root / "reports" / "grades.csv").read_bytes()
    for args in (
        ["autograde", "tiny", "--force", "--jobs", "1", "--timeout", "5", "--memory-mb", "2048"],
        ["export"],
    ):
        run = subprocess.run(
            [*CVGRADE, "--course", str(root), *args], capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stdout + run.stderr
    assert _scores(root) == before_scores
    assert (root / "reports" / "grades.csv").read_bytes() == before_csv


def test_cvgrade_explains_a_bad_course_or_assignment(tmp_path):
    run = subprocess.run(
        [*CVGRADE, "--course", str(tmp_path), "export"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "no nbgrader_config.py" in run.stderr
    root = make_tiny_course(tmp_path / "c")
    for option, value in (("--jobs", "0"), ("--timeout", "0"), ("--memory-mb", "100")):
        run = subprocess.run(
            [*CVGRADE, "--course", str(root), "autograde", "tiny", option, value],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 2 and "must be at least" in run.stderr, (option, run.stderr)
    run = subprocess.run(
        [*CVGRADE, "--course", str(root), "autograde", "nope"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "unknown assignment 'nope'" in run.stderr
