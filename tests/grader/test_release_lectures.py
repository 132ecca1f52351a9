"""``cvgrade release-lectures`` on a small lecture: executed, instructor cells gone, widget
state kept in the HTML, slides cut at headings, and a failing lecture named, not hidden.

Offline releases (the browser checks are tests/browser/test_offline_release.py): every script
and style sheet comes from the shared ``assets/`` folder or is inlined (``--single-file``),
nothing names a remote address, and each widget's output carries its last drawn picture."""

from __future__ import annotations

import base64
import re
import shutil
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.cli import main
from grader.lectures.assets import inline_css
from grader.lectures.release import last_pictures, release_lectures
from grader.pipeline.course import Course, CourseError
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
            new_markdown_cell("## Arithmetic\nThe output size is $$H_{out} = H - k + 1.$$"),
            new_code_cell(
                "from cvcourse import widgets\n"
                "arith = widgets.conv_arithmetic(size=5, kernel_size=3, stride=1, padding=0)\n"
                "arith"
            ),
            new_code_cell("arith.stride.value = 2  # redrawn after it was displayed"),
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


def _tags(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html)


class _Links(HTMLParser):
    """Every src/href attribute of the page's elements (script text is not parsed)."""

    def __init__(self, html: str):
        super().__init__()
        self.links: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def _remote(html: str) -> list[str]:
    return [link for link in _Links(html).links if re.match(r"(?:[a-z]+:)?//", link, re.I)]


def test_pages_load_only_the_shared_assets_folder(course):
    assert main(["--course", str(course.root), "release-lectures"]) == 0
    out = course.root / "release" / "lectures"
    for name in ("01_sliders.html", "01_sliders.slides.html"):
        html = (out / name).read_text()
        assert _remote(html) == [], f"{name} links remote addresses"
        scripts = _tags(html, r'<script src="([^"]+)"')
        styles = _tags(html, r'<link rel="stylesheet" href="([^"]+)"')
        assert "assets/mathjax/tex-svg-full.js" in scripts
        assert "assets/html-manager/embed.js" in scripts
        for link in scripts + styles:
            assert link.startswith("assets/") and (out / link).is_file(), link
    slides = (out / "01_sliders.slides.html").read_text()
    assert "assets/reveal.js/reveal.js" in _tags(slides, r'<script src="([^"]+)"')
    assert "jquery" not in slides.lower() and "require.js" not in slides.lower()


def test_single_file_pages_carry_everything_inline(course, tmp_path):
    out = tmp_path / "lms"
    args = ["--course", str(course.root), "release-lectures", "--out", str(out), "--single-file"]
    assert main(args) == 0
    assert not (out / "assets").exists()
    for name in ("01_sliders.html", "01_sliders.slides.html"):
        html = (out / name).read_text()
        assert _remote(html) == [], f"{name} links remote addresses"
        assert _tags(html, r"<script src=") == [] and _tags(html, r"<link rel=") == []
        assert "MathJax" in html and "_jupyter_widget_embedder" in html
    slides = (out / "01_sliders.slides.html").read_text()
    # reveal's white theme font, embedded; its .eot/.ttf twins are not
    assert "url(data:font/woff;base64," in slides and ".ttf')" in slides


def test_widget_outputs_show_their_last_picture(course):
    release_lectures(course, progress=False)
    out = course.root / "release" / "lectures"
    released = nbformat.read(out / "01_sliders.ipynb", as_version=4)
    [output] = [
        o for c in released.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert "application/vnd.jupyter.widget-view+json" in output.data
    png = base64.b64decode(output.data["image/png"])
    assert png.startswith(b"\x89PNG")
    # the picture is the one drawn last (stride 2), not the one displayed (stride 1)
    from cvcourse import widgets

    again = widgets.conv_arithmetic(size=5, kernel_size=3, stride=2, padding=0)
    assert png == bytes(again.view.value)
    html = (out / "01_sliders.html").read_text()
    assert html.count('class="jupyter-widget cv-widget-picture"') == 1


def test_explorer_output_has_its_picture_beside_the_view():
    from cvcourse import widgets

    explorer = widgets.conv_arithmetic()
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.model_id
    assert base64.b64decode(bundle["image/png"]) == bytes(explorer.view.value)


def _state_with_picture(png: bytes):
    nb = _lecture(new_code_cell("box"), new_code_cell("label"))
    view = "application/vnd.jupyter.widget-view+json"
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={view: {"model_id": "box"}})]
    nb.cells[1].outputs = [
        nbformat.v4.new_output("display_data", data={view: {"model_id": "label"}})
    ]
    buffer = {"path": ["value"], "encoding": "base64", "data": base64.b64encode(png).decode()}
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {
                "box": {
                    "model_name": "VBoxModel",
                    "state": {"children": ["IPY_MODEL_label", "IPY_MODEL_inner"]},
                },
                "label": {"model_name": "LabelModel", "state": {"value": "no picture"}},
                "inner": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_img"]}},
                "img": {
                    "model_name": "ImageModel",
                    "state": {"format": "png"},
                    "buffers": [buffer],
                },
            },
        }
    }
    return nb


def test_last_pictures_takes_the_first_png_of_the_widget_tree():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    nb = _state_with_picture(png)
    pictured = last_pictures(nb)
    assert base64.b64decode(pictured.cells[0].outputs[0].data["image/png"]) == png
    assert "image/png" not in pictured.cells[1].outputs[0].data  # a label has no picture
    assert "image/png" not in nb.cells[0].outputs[0].data  # the input is left as it was


def test_inline_css_follows_imports_and_embeds_fonts(tmp_path):
    (tmp_path / "fonts").mkdir()
    (tmp_path / "fonts" / "a.woff").write_bytes(b"wOFF-bytes")
    (tmp_path / "fonts" / "a.ttf").write_bytes(b"ttf-bytes")
    (tmp_path / "fonts" / "face.css").write_text(
        "@font-face { src: url('./a.woff') format('woff'), url('./a.ttf') format('truetype'); }"
    )
    (tmp_path / "theme.css").write_text(
        "@import url(./fonts/face.css);\nbody { background: url(data:image/gif;base64,R0) }"
    )
    css = inline_css(tmp_path / "theme.css")
    woff = base64.b64encode(b"wOFF-bytes").decode()
    assert f"url(data:font/woff;base64,{woff})" in css
    assert "url('./a.ttf')" in css and "@import" not in css
    assert "url(data:image/gif;base64,R0)" in css
