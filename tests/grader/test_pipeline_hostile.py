"""Submissions that used to break the pipeline itself, graded through ``cvgrade`` and nbgrader.

On the tiny course (``double`` 2 points, ``triple`` 1 point), each student attacks the
grading machinery rather than the checks: tampered nbgrader metadata (nbgrader's sanitizer
crashed and the submission went ungraded), a cell that ignores SIGINT past its timeout
(nbgrader failed the whole submission), a 20 MB line of output (kept whole in the
autograded notebook and the feedback), HTML, SVG, JavaScript and Markdown links that ran in
the TA's browser. Each must get exactly the grade its code deserves, and the pipeline must
stay quiet and whole. A kernel that kills its grading worker is graded without the sandbox
(the sandbox stops the kill itself): it must cost only that submission, reported as
ungraded, never as 0.
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from grader.notebooks import cell
from grader.pipeline.course import Course
from grader.pipeline.gradebook import cell_scores
from tests.grader.test_preprocessors import dangerous_html
from tests.grader.tiny_course import make_tiny_course, submit, tiny_notebook

CVGRADE = [sys.executable, "-m", "grader.cli"]
FULL = {"test_double": 2.0, "test_triple": 1.0}
MiB = 2**20


def _solved():
    """The released notebook (no hidden tests) with both parts solved."""
    nb = tiny_notebook()
    for c in nb.cells:
        c.source = c.source.split("### BEGIN HIDDEN TESTS")[0]
    solution = tiny_notebook()
    for grade_id in ("double_impl", "triple_impl"):
        cell(nb, grade_id).source = cell(solution, grade_id).source
    return nb


def _solved_and(edit):
    nb = _solved()
    edit(nb)
    return nb


def _prepend(grade_id, code):
    def edit(nb):
        cell(nb, grade_id).source = code + "\n" + cell(nb, grade_id).source

    return edit


def _reflag(nb):
    cell(nb, "test_triple").metadata.nbgrader["solution"] = True


def _duplicate(nb):
    nb.cells.append(copy.deepcopy(cell(nb, "test_triple")))  # same id and grade id


def _rename_beside_forged(nb):
    test = cell(nb, "test_triple")
    test.metadata.nbgrader["grade_id"] = "renamed"
    forged = copy.deepcopy(test)
    forged.id = "forged"
    forged.metadata.nbgrader.update(grade_id="forged", points=100)
    forged.source = "pass"
    nb.cells.append(forged)


def _ignore_sigint(nb):
    cell(
        nb, "triple_impl"
    ).source = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"


XSS_OUTPUT = """from IPython.display import HTML, SVG, Javascript, Markdown, display
display(HTML('<script>alert(1)</script><img src=x onerror=alert(2)><iframe src=x></iframe>'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(3)"></svg>'))
display(Javascript('alert(4)'))
display(Markdown('[click](javascript:alert(5))'))"""


def _xss(nb):
    _prepend("double_impl", XSS_OUTPUT)(nb)
    nb.cells.append(new_markdown_cell('<a href="javascript:alert(6)">notes</a> [x](javascript:7)'))


# student -> (notebook, expected scores)
CLASS = {
    "alice": (_solved(), FULL),
    "reflag": (_solved_and(_reflag), FULL),
    "dup": (_solved_and(_duplicate), FULL),
    "rename": (_solved_and(_rename_beside_forged), FULL),
    "sigint": (_solved_and(_ignore_sigint), {"test_double": 2.0, "test_triple": 0.0}),
    "flood": (_solved_and(_prepend("double_impl", "print('x' * 20 * 2**20)")), FULL),
    "xss": (_solved_and(_xss), FULL),
}


def _grade(root, *options):
    run = subprocess.run(
        [*CVGRADE, "--course", str(root), "run", "tiny", "--jobs", "2", "--timeout", "5"]
        + ["--memory-mb", "2048", *options],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _scores(root):
    found = {}
    for row in cell_scores(Course(root), ["tiny"]):
        found.setdefault(row.student, {})[row.cell] = row.score
    return found


def _notes(root):
    return {
        p.stem: json.loads(p.read_text())["notes"]
        for p in (root / "grading" / "tiny").glob("*.json")
    }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = make_tiny_course(tmp_path_factory.mktemp("hostile") / "course")
    for student, (nb, _) in CLASS.items():
        submit(root, student, nb)
    return root, _grade(root)


def test_every_hostile_submission_gets_exactly_the_grade_its_code_deserves(hostile):
    root, _ = hostile
    scores = _scores(root)
    for student, (_, expected) in CLASS.items():
        # exactly the release's graded cells: a forged 100-point cell earns nothing
        assert scores[student] == expected, student


def test_tampered_metadata_is_noted_and_the_original_kept(hostile):
    root, _ = hostile
    notes = _notes(root)
    assert any("test_triple's nbgrader metadata was changed" in n for n in notes["reflag"])
    assert any("cell forged claims to be a graded" in n for n in notes["rename"])
    assert (root / "submitted" / "rename" / "tiny" / "tiny.ipynb.as-submitted").exists()
    assert notes["alice"] == []


def test_a_cell_ignoring_sigint_costs_only_what_did_not_run(hostile):
    root, _ = hostile
    assert any("ignored the interrupt" in n for n in _notes(root)["sigint"])


def test_a_flood_of_output_is_capped_in_the_notebook_and_the_feedback(hostile):
    root, _ = hostile
    autograded = root / "autograded" / "flood" / "tiny" / "tiny.ipynb"
    feedback = root / "feedback" / "flood" / "tiny" / "tiny.html"
    assert autograded.stat().st_size < 2.5 * MiB  # the notebook's cap is 2 MiB
    assert feedback.stat().st_size < 3 * MiB
    assert "[output truncated: " in autograded.read_text()
    assert "[output truncated: " in feedback.read_text()


def test_no_script_handler_or_javascript_link_reaches_the_ta(hostile):
    root, _ = hostile
    page = (root / "feedback" / "xss" / "tiny" / "tiny.html").read_text()
    honest = (root / "feedback" / "alice" / "tiny" / "tiny.html").read_text()
    # The feedback template's own scripts are on every page; the submission adds nothing,
    # and no script on the page holds its code.
    assert dangerous_html(page) == dangerous_html(honest)
    assert "alert(" not in _script_text(page)
    nb = nbformat.read(root / "autograded" / "xss" / "tiny" / "tiny.ipynb", as_version=4)
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    for c in nb.cells:
        if c.cell_type == "markdown":
            assert not dangerous_html(markdown2html_mistune(c.source)), c.source
        for output in c.get("outputs", []):
            data = output.get("data", {})
            assert not {"image/svg+xml", "application/javascript"} & set(data)
            assert not dangerous_html(data.get("text/html", ""))
            assert not dangerous_html(markdown2html_mistune(data.get("text/markdown", "")))


def _script_text(page: str) -> str:
    from html.parser import HTMLParser

    chunks = []

    class Scripts(HTMLParser):
        inside = False

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "script"

        def handle_endtag(self, tag):
            self.inside = False

        def handle_data(self, data):
            if self.inside:
                chunks.append(data)

    Scripts().feed(page)
    return "\n".join(chunks)


def test_the_tas_terminal_shows_no_sqlalchemy_warnings(hostile):
    _, run = hostile
    assert "SAWarning" not in run.stderr
    assert "7 of 7 submissions of tiny are graded" in run.stdout


# --- a kernel that kills its grading worker (unsafe mode: the sandbox prevents the kill) ---


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    root = make_tiny_course(tmp_path_factory.mktemp("killed") / "course")
    submit(root, "alice", _solved())
    killer = _solved_and(_prepend("triple_impl", "import os\nos.kill(os.getppid(), 9)"))
    submit(root, "mallory", killer)
    submit(root, "zoe", _solved())
    return root, _grade(root, "--unsafe-no-sandbox")


def test_a_killed_worker_costs_only_its_own_submission(killed):
    root, run = killed
    scores = _scores(root)
    assert scores["alice"] == FULL and scores["zoe"] == FULL
    (died,) = [n for n in _notes(root)["mallory"] if "grading worker died" in n]
    assert "2 tries" in died and "not graded" in died
    assert "2 of 3 submissions of tiny are graded" in run.stdout


def test_the_ungraded_submission_is_ungraded_in_the_csv_and_report_not_zero(killed):
    root, _ = killed
    with open(root / "reports" / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    mallory = rows["mallory"]
    assert mallory["tiny/status"] == "ungraded"
    assert mallory["tiny/test_double"] == mallory["tiny/test_triple"] == ""
    assert mallory["tiny/total"] == mallory["total"] == ""
    assert rows["alice"]["tiny/status"] == "graded" and rows["alice"]["total"] == "3"
    report = (root / "reports" / "report.html").read_text()
    section = report.split("<h2>Ungraded submissions</h2>")[1].split("<h2>")[0]
    assert "mallory" in section and "grading worker died" in section
    with open(root / "reports" / "pass_rates.csv", newline="") as f:
        rates = list(csv.DictReader(f))
    assert {r["cell"]: r["submissions"] for r in rates} == {
        "test_double": "2",
        "test_triple": "2",
    }
