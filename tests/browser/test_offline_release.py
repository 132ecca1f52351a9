"""Released lectures with the network off: headless Debian Chromium, Playwright, file:// only.

``cvgrade release-lectures`` releases the smallest lecture with formulas and a widget
(lecture 1: backpropagation, two gradient-check explorers) twice into a scratch copy of the
course: once as pages beside a shared ``assets/`` folder, once ``--single-file``. Every page
is opened from disk with every request that is not ``file://`` aborted and recorded. On each
page and slide deck:

- no request left the machine (the list of aborted requests is empty) and no script raised
  (the widget manager typesets labels through MathJax 2's API, which the page answers);
- formulas are typeset: MathJax's SVG output (``mjx-container``) is present and no ``$$``
  is left in the text of the Markdown cells;
- the widgets come alive (the widget manager draws a live widget whose picture loaded);
- with scripts off (no widget manager), each widget shows its saved picture: an ``<img>``
  with a ``data:`` PNG that loaded (``naturalWidth > 0``);
- the slides advance with the ArrowRight key (reveal's slide index changes).

Chromium comes from Debian (``scripts/install-browser.sh``), never from Playwright's download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LECTURE = "01_backprop"
WIDGETS = 2  # gradcheck_view(report) and gradcheck_view(buggy_report)
TIMEOUT_MS = 30_000

# two releases (about 8 s each, plus npm ci the first time) and eight page loads
pytestmark = pytest.mark.slow


def _release(root: Path, out: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from grader.cli import main; sys.exit(main())",
         "--course", str(root), "release-lectures", LECTURE, "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    """{"assets": folder release, "single": --single-file release} of LECTURE."""
    base = tmp_path_factory.mktemp("offline")
    root = base / "course"
    (root / "lectures").mkdir(parents=True)
    shutil.copy(REPO / "course" / "nbgrader_config.py", root)
    shutil.copy(REPO / "course" / "lectures" / f"{LECTURE}.ipynb", root / "lectures")
    folders = {"assets": base / "assets-release", "single": base / "single-release"}
    printed = _release(root, folders["assets"])
    assert "shared assets/" in printed and "kB" in printed, printed
    _release(root, folders["single"], "--single-file")
    assert (folders["assets"] / "assets").is_dir()
    assert not (folders["single"] / "assets").exists()
    return folders


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/install-browser.sh")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def _open(browser, path: Path, *, scripts: bool = True):
    """A page showing ``path`` with every non-file request aborted.

    Returns (page, aborted URLs, uncaught script errors), the lists filled as the page runs.
    """
    context = browser.new_context(java_script_enabled=scripts)
    aborted: list[str] = []
    errors: list[str] = []

    def block(route):
        aborted.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith("file://"), block)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri(), wait_until="load")
    return page, aborted, errors


def _typeset(page) -> None:
    """MathJax's SVG output is present and no TeX delimiters are left in the prose."""
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        " && document.querySelectorAll('mjx-container[jax=SVG]').length > 0",
        timeout=TIMEOUT_MS,
    )
    page.evaluate("() => MathJax.startup.promise")
    count = page.locator("mjx-container[jax=SVG]").count()
    prose = page.evaluate(
        "() => Array.from(document.querySelectorAll('.jp-RenderedMarkdown'))"
        ".map(e => e.innerText).join('\\n')"
    )
    assert count >= 10, f"only {count} formulas typeset"
    assert "$$" not in prose and "\\frac" not in prose, "raw TeX left in the Markdown text"


def _live_widgets(page) -> None:
    """The widget manager drew each widget, its picture loaded, the saved one is hidden."""
    page.wait_for_function(
        f"() => document.querySelectorAll('.widget-subarea .widget-image').length >= {WIDGETS}",
        timeout=TIMEOUT_MS,
    )
    loaded = page.evaluate(
        "() => Array.from(document.querySelectorAll('.widget-subarea img.widget-image'))"
        ".map(i => i.complete && i.naturalWidth)"
    )
    assert len(loaded) >= WIDGETS and all(w > 0 for w in loaded), loaded
    assert page.locator(".widget-subarea select").count() >= WIDGETS  # the tensor picker
    hidden = page.evaluate(
        "() => Array.from(document.querySelectorAll('img.cv-widget-picture'))"
        ".map(i => getComputedStyle(i).display)"
    )
    assert hidden and set(hidden) == {"none"}, hidden


def _saved_pictures(page) -> None:
    """With no widget manager running, each widget is its saved PNG, loaded and visible."""
    pictures = page.evaluate(
        "() => Array.from(document.querySelectorAll('img.cv-widget-picture')).map(i =>"
        " [i.src.slice(0, 22), i.complete && i.naturalWidth, getComputedStyle(i).display])"
    )
    assert len(pictures) == WIDGETS, pictures
    for src, width, display in pictures:
        assert src == "data:image/png;base64,"
        assert width > 0 and display != "none"


def _slides_advance(page) -> None:
    page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=TIMEOUT_MS)
    before = page.evaluate("() => Reveal.getIndices().h")
    total = page.evaluate("() => Reveal.getTotalSlides()")
    assert total >= 5, f"{total} slides"
    page.locator("body").click()  # keyboard focus on the deck
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => Reveal.getIndices().h === {before + 1}", timeout=TIMEOUT_MS)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => Reveal.getIndices().h === {before + 2}", timeout=TIMEOUT_MS)


@pytest.mark.parametrize("kind", ["assets", "single"])
def test_lecture_page_works_offline(browser, releases, kind):
    page, aborted, errors = _open(browser, releases[kind] / f"{LECTURE}.html")
    try:
        _typeset(page)
        _live_widgets(page)
        assert aborted == [], f"the page asked the network for {aborted}"
        assert errors == [], errors
    finally:
        page.context.close()


@pytest.mark.parametrize("kind", ["assets", "single"])
def test_slides_work_offline(browser, releases, kind):
    page, aborted, errors = _open(browser, releases[kind] / f"{LECTURE}.slides.html")
    try:
        _typeset(page)
        _live_widgets(page)
        _slides_advance(page)
        assert aborted == [], f"the deck asked the network for {aborted}"
        assert errors == [], errors
    finally:
        page.context.close()


@pytest.mark.parametrize("kind", ["assets", "single"])
@pytest.mark.parametrize("name", [f"{LECTURE}.html", f"{LECTURE}.slides.html"])
def test_widgets_show_their_picture_without_scripts(browser, releases, kind, name):
    page, aborted, _ = _open(browser, releases[kind] / name, scripts=False)
    try:
        _saved_pictures(page)
        assert aborted == []
    finally:
        page.context.close()
