"""Releasing the lectures: executed notebooks, standalone HTML and reveal.js slides.

For each notebook of ``course/lectures/``:

1. execute it top to bottom in a fresh kernel (working directory: the lectures folder),
   keeping the widgets' state in the notebook (nbclient's ``store_widget_state``), so that
   the exported HTML shows the widgets as they were left, where ipywidgets allows it;
2. remove the cells tagged ``instructor`` (answers to in-class exercises, notes);
3. write ``<name>.ipynb`` (executed), ``<name>.html`` (JupyterLab's look, standalone) and
   ``<name>.slides.html`` (reveal.js: a new slide at every ``#``/``##`` heading unless the
   notebook sets its own slide types) into ``course/release/lectures/``, each atomically.

A lecture that fails to execute stops the release with the failing cell named; the
lectures already written stay written.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from cvcourse.fileio import atomic_path
from grader.course import Course, CourseError

INSTRUCTOR_TAG = "instructor"


def lecture_paths(course: Course, names: list[str] | None = None) -> list[Path]:
    """The lectures to release: all of ``lectures/`` (sorted), or those named (stem or file)."""
    folder = course.root / "lectures"
    available = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not names:
        if not available:
            raise CourseError(f"no lecture notebooks in {folder}")
        return available
    by_stem = {p.stem: p for p in available}
    chosen = []
    for name in names:
        stem = Path(name).stem
        if stem not in by_stem:
            known = ", ".join(by_stem) or "none"
            raise CourseError(f"unknown lecture {name!r}; the course has: {known}")
        chosen.append(by_stem[stem])
    return chosen


def without_instructor_cells(nb):
    """A copy of ``nb`` without the cells tagged ``instructor``."""
    released = copy.deepcopy(nb)
    released.cells = [
        c for c in released.cells if INSTRUCTOR_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    return released


def with_slide_types(nb):
    """A copy of ``nb`` where each ``#``/``##`` heading starts a slide (if none are set)."""
    slides = copy.deepcopy(nb)
    if any("slideshow" in c.get("metadata", {}) for c in slides.cells):
        return slides
    for cell in slides.cells:
        first = cell.source.lstrip().split("\n", 1)[0] if cell.cell_type == "markdown" else ""
        starts = first.startswith("# ") or first.startswith("## ")
        cell.metadata["slideshow"] = {"slide_type": "slide" if starts else "-"}
    return slides


def execute(path: Path, timeout: int = 300):
    """``path`` executed in a fresh python3 kernel; raises CourseError naming a failing cell."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": os.fspath(path.parent)}},
        store_widget_state=True,
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        raise CourseError(f"{path.name} failed to execute:\n{str(exc)[-1500:]}") from None
    return nb


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def release_lectures(
    course: Course,
    names: list[str] | None = None,
    out: Path | None = None,
    *,
    timeout: int = 300,
    progress: bool = True,
) -> list[Path]:
    """Execute and export the lectures; returns the HTML files written (one per lecture)."""
    from nbconvert import HTMLExporter, SlidesExporter

    out = Path(out) if out is not None else course.root / "release" / "lectures"
    paths = lecture_paths(course, names)
    written = []
    for path in tqdm(paths, desc="release lectures", unit="lecture", disable=not progress):
        released = without_instructor_cells(execute(path, timeout))
        with atomic_path(out / path.name) as tmp:
            nbformat.write(released, os.fspath(tmp))
        html, _ = HTMLExporter(template_name="lab").from_notebook_node(released)
        _write_text(out / f"{path.stem}.html", html)
        slides, _ = SlidesExporter().from_notebook_node(with_slide_types(released))
        _write_text(out / f"{path.stem}.slides.html", slides)
        written.append(out / f"{path.stem}.html")
    return written
