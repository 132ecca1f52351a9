"""The course in a real browser: JupyterLab, headless Debian Chromium, Playwright.

One JupyterLab server on a free localhost port serves a scratch copy of the course. The
tests open a lecture, run all its cells, and check that a widget renders and reacts to a
slider: its picture changes when the slider moves. They open an assignment, run it, and
check that nbgrader's tools are in the Lab UI (the notebook's Validate button and the
Nbgrader menu). Screenshots go to artifacts/browser/.

Chromium comes from Debian (``scripts/install-browser.sh``, run by ``make test``), never
from Playwright's download.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LECTURE = "lectures/02_images_and_convolution.ipynb"
ASSIGNMENT = "assignments/a3_conv_pool/conv_pool.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a scratch copy of the course: (base URL, token)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/install-browser.sh")
    root = tmp_path_factory.mktemp("lab") / "course"
    shutil.copytree(
        REPO / "course",
        root,
        ignore=shutil.ignore_patterns(
            "release", "submitted", "autograded", "feedback", "gradebook.db", "reports", "grading"
        ),
    )
    port, token = _free_port(), secrets.token_hex(16)
    # Render every cell (Lab 4 otherwise only renders the cells on screen), so that the test
    # can see every prompt and output.
    settings = root.parent / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root.parent / "jupyter-config"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
    )
    log = open(root.parent / "lab.log", "w")  # noqa: SIM115 (closed after the server stops)
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
            "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
            "--ServerApp.disable_check_xsrf=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
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
                    pytest.fail(
                        "JupyterLab did not start:\n" + (root.parent / "lab.log").read_text()
                    )
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
    workspace = Path(path).stem.replace("_", "-")
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


def _errors(page) -> list[str]:
    return page.locator("[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()


def test_a_lecture_widget_renders_and_reacts_to_a_slider(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, LECTURE)
    _run_all(page)
    assert _errors(page) == []
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


def test_an_assignment_runs_and_nbgrader_tools_are_in_the_lab_ui(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, ASSIGNMENT)
    _run_all(page)
    assert _errors(page) == []  # the instructor's version: every public and hidden check passes
    # nbgrader's notebook toolbar button and its main menu.
    page.wait_for_selector(".jp-NotebookPanel-toolbar :text('Validate')", timeout=30_000)
    page.click(".lm-MenuBar-item:has-text('Nbgrader')")
    menu = page.locator(".lm-Menu-content").last.inner_text()
    assert "Formgrader" in menu and "Assignment List" in menu
    page.keyboard.press("Escape")
    assert page.locator(".lm-TabBar-tab:has-text('Create Assignment')").count() == 1
    page.screenshot(path=str(ARTIFACTS / "assignment.png"))
    page.close()
