"""``cvgrade release-lectures`` on a small lecture: executed, instructor cells gone, widget
state kept in the HTML, slides cut at headings, and a failing lecture named, not hidden."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.cli import main
from grader.course import Course, CourseError
from grader.lectures import release_lectures
from tests.grader.tiny_course import REPO


def _lecture(*cells):
    nb = new_notebook(cells=list(cells))
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    (root / "lectures").mkdir(parents=True)
    shutil.copy(REPO / "course" / "nbgrader_config.py", root)
    answer = new_code_cell("secret_answer = 42\nprint('the answer is', secret_answer)")
    answer.metadata["tags"] = ["instructor"]
    nbformat.write(
        _lecture(
            new_markdown_cell("# Sliders\nA first slide."),
            new_code_cell("import ipywidgets as w\nslider = w.IntSlider(value=7, max=20)\nslider"),
            new_markdown_cell("## Second part"),
            answer,
            new_code_cell("print('computed', 6 * 7)"),
        ),
        root / "lectures" / "01_sliders.ipynb",
    )
    return Course(root)


def test_release_writes_executed_notebook_html_and_slides_without_instructor_cells(course):
    assert main(["--course", str(course.root), "release-lectures"]) == 0
    out = course.root / "release" / "lectures"
    released = nbformat.read(out / "01_sliders.ipynb", as_version=4)
    sources = "".join(c.source for c in released.cells)
    assert "secret_answer" not in sources
    printed = [o for c in released.cells if c.cell_type == "code" for o in c.outputs]
    assert any("computed 42" in o.get("text", "") for o in printed)
    html = (out / "01_sliders.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in html  # the slider's saved state
    assert "secret_answer" not in html and "computed 42" in html
    slides = (out / "01_sliders.slides.html").read_text()
    assert "reveal" in slides.lower() and slides.count("<section") >= 2


def test_a_failing_lecture_is_named(course):
    nbformat.write(_lecture(new_code_cell("1 / 0")), course.root / "lectures" / "02_broken.ipynb")
    with pytest.raises(CourseError, match="02_broken.ipynb failed to execute"):
        release_lectures(course, ["02_broken"], progress=False)


def test_unknown_lecture_is_refused(course):
    with pytest.raises(CourseError, match="unknown lecture 'nope'"):
        release_lectures(course, ["nope"], progress=False)
