"""The course hub in a real browser (headless Debian Chromium through Playwright).

On the hub of tests/hub/conftest.py, after the cycle released a3:

- student4 logs in through the hub's login page, lands in JupyterLab, opens nbgrader's
  Assignments tab (Nbgrader > Assignment List), fetches a3 and submits it; the submission
  is in the exchange, owned by student4;
- the instructor logs in, opens the course's formgrader service and its Formgrader panel,
  which must render (JupyterHub >= 4.1 forbids framing every page by default, and the panel
  is an iframe: blank unless the service allows its own origin, nbgrader #1870).

Screenshots go to artifacts/hub/. Chromium comes from Debian (scripts/install-browser.sh).
"""

from __future__ import annotations

import os
import pwd

import pytest

from tests.hub.conftest import ASSIGNMENT, COURSE, REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / "artifacts" / "hub"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/install-browser.sh")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def _login(browser, settings, user: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{settings.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", settings.password_file.read_text().strip())
    page.click("#login_submit")
    # The hub starts the user's server and redirects to it: JupyterLab.
    page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
    page.wait_for_selector(".lm-MenuBar-item:has-text('Nbgrader')", timeout=120_000)
    return context, page


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _menu(page, item: str) -> None:
    page.click(".lm-MenuBar-item:has-text('Nbgrader')")
    page.click(f".lm-Menu-item:has-text('{item}')")


def test_a_student_fetches_and_submits_from_the_assignments_tab(cycle, browser):
    settings, _, _ = cycle
    context, page = _login(browser, settings, "student4")
    try:
        _menu(page, "Assignment List")
        released = page.locator("#released_assignments_list")
        released.locator(f".list_item:has-text('{ASSIGNMENT}') button:has-text('Fetch')").click(
            timeout=60_000
        )
        fetched = page.locator("#fetched_assignments_list")
        fetched.locator(f".list_item:has-text('{ASSIGNMENT}') button:has-text('Submit')").click(
            timeout=60_000
        )
        page.locator(f"#submitted_assignments_list .list_item:has-text('{ASSIGNMENT}')").wait_for(
            timeout=60_000
        )
        _shot(page, "student-assignments")
    except Exception:
        _shot(page, "student-assignments-failed")
        raise
    finally:
        context.close()
    inbound = settings.exchange / COURSE / "inbound"
    (mine,) = inbound.glob(f"student4+{ASSIGNMENT}+*")
    assert mine.stat().st_uid == pwd.getpwnam("student4").pw_uid
    assert (mine / "conv_pool.ipynb").is_file()


def test_the_formgrader_panel_renders_for_an_instructor(cycle, browser):
    settings, _, _ = cycle
    context, page = _login(browser, settings, "instructor")
    try:
        # The instructor's own Lab has no formgrader (the student environment's settings) ...
        page.click(".lm-MenuBar-item:has-text('Nbgrader')")
        items = page.locator(".lm-Menu-item").all_inner_texts()
        page.keyboard.press("Escape")
        assert not any("Formgrader" in i for i in items), items
        # ... the course's formgrader service has.
        page.goto(f"{settings.url}/services/{COURSE}/lab")
        page.wait_for_selector(".lm-MenuBar-item:has-text('Nbgrader')", timeout=120_000)
        _menu(page, "Formgrader")
        frame = page.frame_locator(".jp-MainAreaWidget iframe").first
        frame.locator("text=Manage Assignments").first.wait_for(timeout=60_000)
        frame.locator(f"text={ASSIGNMENT}").first.wait_for(timeout=60_000)
        _shot(page, "formgrader")
    except Exception:
        _shot(page, "formgrader-failed")
        raise
    finally:
        context.close()
