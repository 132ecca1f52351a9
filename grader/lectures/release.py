"""Releasing the lectures: executed notebooks, standalone HTML and reveal.js slides.

For each notebook of ``course/lectures/``:

1. execute it top to bottom in a fresh kernel (working directory: the lectures folder),
   keeping the widgets' state in the notebook (nbclient's ``store_widget_state``);
2. remove the cells tagged ``instructor`` (answers to in-class exercises, notes);
3. give every widget output its last drawn picture as ``image/png`` (:func:`last_pictures`);
4. write ``<name>.ipynb`` (executed), ``<name>.html`` (JupyterLab's look) and
   ``<name>.slides.html`` (reveal.js: a new slide at every ``#``/``##`` heading unless the
   notebook sets its own slide types) into ``course/release/lectures/``, each atomically.

The pages work with the network off (docs/decisions.md, "Offline lecture releases"): MathJax,
reveal.js and the widget manager are vendored from pinned npm packages (grader/lectures/assets.py)
into one shared ``assets/`` folder beside the lectures, or, with ``single_file``, inlined
into each page for an LMS upload. Widgets show their saved picture and come alive where the
page's scripts run.

A lecture that fails to execute stops the release with the failing cell named; the
lectures already written stay written.
"""

from __future__ import annotations

import base64
import copy
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from cvcourse.fileio import atomic_path
from grader.lectures.assets import Assets, copy_assets, folder_size, installed
from grader.pipeline.course import Course, CourseError

INSTRUCTOR_TAG = "instructor"
TEMPLATES = Path(__file__).resolve().parent / "templates"
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


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


def _png_of(model_id: str, state: dict, seen: set) -> str | None:
    """The base64 PNG of the first PNG ``Image`` in the widget ``model_id`` (depth first)."""
    model = state.get(model_id)
    if model is None or model_id in seen:
        return None
    seen.add(model_id)
    if model.get("model_name") == "ImageModel" and model["state"].get("format") == "png":
        for buffer in model.get("buffers", []):
            if buffer.get("path") == ["value"] and buffer.get("encoding") == "base64":
                return buffer["data"] or None
    for child in model["state"].get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            png = _png_of(child.removeprefix("IPY_MODEL_"), state, seen)
            if png:
                return png
    return None


def last_pictures(nb):
    """A copy of ``nb`` whose widget outputs hold the widget's last drawn picture.

    The ``image/png`` an explorer adds to its output is the picture of when it was displayed;
    a widget updated later (a training monitor, a slider moved by a later cell) drew more
    since. The widget state saved at the end of the run has the last one: each widget view
    gets the first PNG ``Image`` found in its widget tree (none: the output is unchanged).
    """
    released = copy.deepcopy(nb)
    state = released.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    for cell in released.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW)
            if not view:
                continue
            png = _png_of(view.get("model_id", ""), state, set())
            if png:
                base64.b64decode(png, validate=True)  # a corrupt state stops here, loudly
                output.data["image/png"] = png
    return released


@dataclass(frozen=True)
class Released:
    """One released lecture: its three files and their sizes in bytes."""

    notebook: Path
    html: Path
    slides: Path

    @property
    def sizes(self) -> dict[str, int]:
        return {p.name: p.stat().st_size for p in (self.notebook, self.html, self.slides)}


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
    single_file: bool = False,
) -> list[Released]:
    """Execute and export the lectures; returns what was written, one entry per lecture.

    Pages link to ``out/assets/`` (copied once, shared by every lecture), or with
    ``single_file`` carry everything inline (no ``assets/`` needed beside them).
    """
    from nbconvert import HTMLExporter, SlidesExporter

    out = Path(out) if out is not None else course.root / "release" / "lectures"
    paths = lecture_paths(course, names)
    modules = installed(progress=progress)
    assets = Assets(modules, prefix="assets", inline=single_file)
    if not single_file:
        copy_assets(modules, out / "assets")
    resources = {"assets": assets}
    # basedirs: where the templates are found by name; paths: so that both can import the
    # macros of cvcourse_lab/offline.html.j2
    dirs = {"extra_template_basedirs": [os.fspath(TEMPLATES)]}
    dirs["extra_template_paths"] = dirs["extra_template_basedirs"]
    page = HTMLExporter(template_name="cvcourse_lab", **dirs)
    deck = SlidesExporter(template_name="cvcourse_reveal", **dirs)
    written = []
    for path in tqdm(paths, desc="release lectures", unit="lecture", disable=not progress):
        released = last_pictures(without_instructor_cells(execute(path, timeout)))
        with atomic_path(out / path.name) as tmp:
            nbformat.write(released, os.fspath(tmp))
        html, _ = page.from_notebook_node(released, resources=dict(resources))
        _write_text(out / f"{path.stem}.html", html)
        slides, _ = deck.from_notebook_node(with_slide_types(released), resources=dict(resources))
        _write_text(out / f"{path.stem}.slides.html", slides)
        written.append(
            Released(out / path.name, out / f"{path.stem}.html", out / f"{path.stem}.slides.html")
        )
    return written


def assets_size(out: Path) -> int:
    """Bytes of the shared ``assets/`` folder of a release in ``out`` (0 if there is none)."""
    return folder_size([Path(out) / "assets"])
