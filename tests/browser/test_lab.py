"""The course in a real browser: JupyterLab, headless Debian Chromium, Playwright.

One JupyterLab server on a free localhost port serves a scratch copy of the course, started
in the course folder as ``make lab`` does (nbgrader's Validate reads its configuration from
there). In the copy, ``cvgrade release`` writes the student version of a3, and beside it a
finished one (the instructor's solution cells pasted into the release, as a student who got
everything right would submit it). The tests

- open a lecture, run all its cells, and check that a widget renders and reacts to a
  slider: its picture changes when the slider moves;
- prove that the error detection fires: a notebook whose last cell raises is run, and the
  detection must name that error (JupyterLab 4 renders a traceback as
  ``application/vnd.jupyter.stderr``, like any stderr text, so errors are read from the
  notebook as saved, not from the page's rendering);
- run the finished assignment without an error, find nbgrader's tools in the Lab UI, press
  the notebook's Validate button and read "Success";
- press Validate on the untouched release and check that the dialog lists exactly the cells
  that raise when the notebook is run (the public checks of unimplemented parts), each with
  its error.

Screenshots go to artifacts/browser/. Chromium comes from Debian
(``scripts/install-browser.sh``, run by ``make test``), never from Playwright's download.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LECTURE = "lectures/02_images_and_convolution.ipynb"
ASSIGNMENT = "a3_conv_pool"
NOTEBOOK = "conv_pool.ipynb"
UNTOUCHED = f"release/{ASSIGNMENT}/{NOTEBOOK}"
FINISHED = f"finished/{ASSIGNMENT}/{NOTEBOOK}"
RAISES = "scratch/raises.ipynb"
PLANTED_ERROR = "ValueError: planted failure for the error detector"
SUCCESS = "Success! Your notebook passes all the tests."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _finished(released, source):
    """The released notebook with every solution cell's code taken from the source."""
    solutions = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    finished = nbformat.from_dict(json.loads(json.dumps(released)))
    for c in finished.cells:
        if c.metadata.get("nbgrader", {}).get("solution"):
            c.source = solutions[c.metadata["nbgrader"]["grade_id"]]
    return finished


def _write_raising_notebook(path: Path) -> None:
    """Output on stdout and on stderr, then an exception in the last cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_code_cell('print("fine so far")'),
        nbformat.v4.new_code_cell('import sys\nprint("a note on stderr", file=sys.stderr)'),
        nbformat.v4.new_code_cell(f'raise ValueError("{PLANTED_ERROR.split(": ", 1)[1]}")'),
    ]
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A scratch copy of the course with a3 released, finished and a notebook that raises."""
    root = tmp_path_factory.mktemp("lab") / "course"
    shutil.copytree(
        REPO / "course",
        root,
        ignore=shutil.ignore_patterns(
            "release", "submitted", "autograded", "feedback", "gradebook.db", "reports", "grading"
        ),
    )
    release = subprocess.run(
        [sys.executable, "-c", "import sys; from grader.cli import main; sys.exit(main())",
         "--course", str(root), "release", ASSIGNMENT],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert release.returncode == 0, release.stdout + release.stderr
    released = nbformat.read(root / UNTOUCHED, as_version=4)
    source = nbformat.read(root / "assignments" / ASSIGNMENT / NOTEBOOK, as_version=4)
    (root / FINISHED).parent.mkdir(parents=True)
    nbformat.write(_finished(released, source), root / FINISHED)
    _write_raising_notebook(root / RAISES)
    return root


@pytest.fixture(scope="module")
def lab(course):
    """A JupyterLab server on the scratch course: (base URL, token)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/install-browser.sh")
    port, token = _free_port(), secrets.token_hex(16)
    # Render every cell (Lab 4 otherwise only renders the cells on screen), so that the test
    # can see every prompt and output.
    settings = course.parent / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(course.parent / "jupyter-config"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
    )
    log = open(course.parent / "lab.log", "w")  # noqa: SIM115 (closed after the server stops)
    # Started in the course folder, as `make lab` does: nbgrader's Validate handler reads
    # nbgrader_config.py from the server's working directory.
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
            "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={course}",
            "--ServerApp.disable_check_xsrf=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    log_text = (course.parent / "lab.log").read_text()
                    pytest.fail(f"JupyterLab did not start:\n{log_text}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def _open(browser, lab, path: str):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # A workspace of its own per page, reset: no tab from an earlier test is restored.
    workspace = path.removesuffix(".ipynb").replace("/", "-").replace("_", "-")
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{path}?reset&token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
    # The kernel is ready when the toolbar's status says idle.
    page.wait_for_selector(".jp-NotebookPanel [data-status='idle']", timeout=90_000)
    return page


def _prompts(page) -> list[str]:
    return [p.strip() for p in page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]


def _run_all(page, timeout_s: float = 180) -> None:
    # A Run All sent while the kernel is still connecting is dropped silently: send it again
    # until some cell shows that it ran or is running.
    for _attempt in range(4):
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click(".lm-Menu-item:has-text('Run All Cells')")
        started = time.monotonic()
        while time.monotonic() - started < 15:
            if any(p not in ("[ ]:", "") for p in _prompts(page)):
                break
            time.sleep(0.5)
        else:
            continue
        break
    # Every code cell has an execution count once the run is over ("[ ]:" before, "[*]:" busy).
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        prompts = _prompts(page)
        if prompts and all(p not in ("[ ]:", "[*]:", "") for p in prompts):
            return
        time.sleep(1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "timeout.png"), full_page=True)
    pytest.fail(f"the notebook did not finish running in the browser: prompts {prompts}")


def _errors(page, lab, path: str) -> list[str]:
    """``"Name: message"`` of every error output of the open notebook.

    Read from the notebook as JupyterLab saves it, not from the page: JupyterLab 4 renders
    a traceback with the same mime type as any stderr text, and may render it differently
    again, but the saved notebook keeps what the kernel reported.
    """
    base, token = lab
    tab = page.locator(".lm-TabBar-tab.jp-mod-current")
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "el => !el.classList.contains('jp-mod-dirty')", arg=tab.element_handle(), timeout=30_000
    )
    url = f"{base}/api/contents/{urllib.parse.quote(path)}?content=1&token={token}"
    with urllib.request.urlopen(url, timeout=30) as response:
        nb = json.load(response)["content"]
    return [
        f"{output['ename']}: {output['evalue']}"
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
        if output["output_type"] == "error"
    ]


def _red_outputs(page) -> list[str]:
    """Text of every output the page shows as an error or as stderr (both in red)."""
    return page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
    ).all_inner_texts()


def _validate(page) -> tuple[str, list[str], list[str], float]:
    """Press the notebook's Validate button: the dialog's (class, cell sources, errors, seconds)."""
    started = time.monotonic()
    page.click(".jp-NotebookPanel-toolbar .validate-button")
    message = page.wait_for_selector(".jp-Dialog #validation-message", timeout=300_000)
    seconds = time.monotonic() - started
    blocks = [pre.inner_text() for pre in message.query_selector_all(".jp-RenderedText > pre")]
    verdict = message.get_attribute("class") or ""
    text = message.inner_text()
    name = "failed" if "validation-failed" in verdict else "other"
    name = "success" if "validation-success" in verdict else name
    page.screenshot(path=str(ARTIFACTS / f"validate-{name}.png"))
    page.click(".jp-Dialog .jp-mod-accept")
    if "validation-failed" not in verdict:
        blocks = [text]
    return verdict, blocks[0::2], blocks[1::2], seconds


def _cells_that_raise(path: Path) -> list[tuple[str, str]]:
    """(source, exception name) of each cell that raises, run by nbclient (not by nbgrader)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()  # fmt: skip
    return [
        (cell.source.strip(), output["ename"])
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output["output_type"] == "error"
    ]


def test_a_lecture_widget_renders_and_reacts_to_a_slider(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, LECTURE)
    _run_all(page)
    assert _errors(page, lab, LECTURE) == []
    # The first widget with both a slider and a picture.
    widget = page.locator(".jp-OutputArea-output:has(.widget-slider):has(.widget-image)").first
    widget.scroll_into_view_if_needed()
    widget.wait_for(timeout=60_000)
    picture = widget.locator(".widget-image").first
    before = picture.get_attribute("src")
    widget.screenshot(path=str(ARTIFACTS / "widget-before.png"))
    handle = widget.locator(".widget-slider .noUi-handle").first
    handle.focus()
    for _ in range(2):
        handle.press("ArrowRight")
    page.wait_for_function(
        "([el, before]) => el.getAttribute('src') !== before",
        arg=[picture.element_handle(), before],
        timeout=30_000,
    )
    widget.screenshot(path=str(ARTIFACTS / "widget-after.png"))
    page.screenshot(path=str(ARTIFACTS / "lecture.png"))
    page.close()


def test_the_error_detection_fires_on_a_notebook_that_raises(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, RAISES)
    _run_all(page)
    # Exactly the exception of the last cell: stdout and stderr text are not errors.
    assert _errors(page, lab, RAISES) == [PLANTED_ERROR]
    # The page shows it too (with the stderr note), however it is rendered.
    red = "\n".join(_red_outputs(page))
    assert PLANTED_ERROR in red and "a note on stderr" in red
    page.screenshot(path=str(ARTIFACTS / "raises.png"))
    page.close()


def test_a_finished_assignment_runs_and_validates_in_the_lab_ui(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, FINISHED)
    _run_all(page)
    assert _errors(page, lab, FINISHED) == []  # the instructor's solutions pass every public check
    # nbgrader's notebook toolbar button and its main menu.
    page.wait_for_selector(".jp-NotebookPanel-toolbar .validate-button", timeout=30_000)
    page.click(".lm-MenuBar-item:has-text('Nbgrader')")
    menu = page.locator(".lm-Menu-content").last.inner_text()
    assert "Formgrader" in menu and "Assignment List" in menu
    page.keyboard.press("Escape")
    assert page.locator(".lm-TabBar-tab:has-text('Create Assignment')").count() == 1
    page.screenshot(path=str(ARTIFACTS / "assignment.png"))
    verdict, sources, _errors_shown, seconds = _validate(page)
    print(f"Validate on the finished {ASSIGNMENT}: {seconds:.1f} s")
    assert "validation-success" in verdict, sources
    assert sources == [SUCCESS]
    page.close()


def test_validate_reports_each_failing_cell_of_the_untouched_release(lab, browser, course):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The reference: the cells that raise when the untouched notebook is run (a scratch copy,
    # so that the notebook the browser opens stays as released).
    scratch = course.parent / "reference" / NOTEBOOK
    scratch.parent.mkdir()
    shutil.copy(course / UNTOUCHED, scratch)
    raising = _cells_that_raise(scratch)
    assert raising, "the untouched release should raise in its public checks"
    page = _open(browser, lab, UNTOUCHED)
    verdict, sources, errors, seconds = _validate(page)
    print(f"Validate on the untouched {ASSIGNMENT}: {seconds:.1f} s, {len(sources)} cells failed")
    assert "validation-failed" in verdict, sources
    assert [s.strip() for s in sources] == [source for source, _name in raising]
    for error, (_source, name) in zip(errors, raising, strict=True):
        assert name in error and "YOUR CODE HERE" in error  # the student's unfinished code
    page.close()
