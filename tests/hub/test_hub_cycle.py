"""The course's whole cycle through a real JupyterHub, as its real users (tests/hub/conftest.py).

The instructor releases a3 from a terminal of the formgrader service (``cvgrade release
--exchange``, run there as the grader user); three students start their servers, fetch a3
through nbgrader's Assignments endpoints, fill it through Jupyter's contents API (one with
the instructor's solution, one with the planted "kernel flipped" mistake, one blank) and
submit; the receipt watcher (a hub service) takes a receipt of each; the TA collects,
autogrades and releases feedback with ``cvgrade`` in the formgrader's terminal; each student
fetches their feedback. Every request is made with that user's own token.

The grades are checked cell by cell against the assignment's point table and the planted
mistake's declared cost (grader/term/planted/a3_conv_pool.py); what each user may reach is tried
as that user, through the hub and on the filesystem (``setpriv``).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from grader.notebooks import load, points
from grader.term.planted import mistakes_for
from tests.hub.conftest import ASSIGNMENT, COURSE, NOTEBOOK, PLANTED, REPO, ROLES
from tests.hub.driver import load_hubctl

SOURCE = REPO / "course" / "assignments" / ASSIGNMENT / NOTEBOOK


def _expected() -> dict[str, dict[str, float]]:
    """student -> test cell -> points, from the source's point table and the mistake."""
    full = points(load(SOURCE))
    (mistake,) = [m for m in mistakes_for(ASSIGNMENT) if m.student == PLANTED]
    by_role = {
        "solution": dict(full),
        PLANTED: {c: (0.0 if c in mistake.loses else p) for c, p in full.items()},
        "blank": dict.fromkeys(full, 0.0),
    }
    return {student: by_role[role] for student, role in ROLES.items()}


def _as_user(user: str, *args: str) -> subprocess.CompletedProcess:
    entry = pwd.getpwnam(user)
    return subprocess.run(
        ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
         *args],
        cwd=entry.pw_dir, env={"HOME": entry.pw_dir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _gradebook(settings) -> dict[str, dict[str, float | None]]:
    """Per-cell scores read from the gradebook by the grader user (independent of the
    feedback pages)."""
    python = load_hubctl().SOFTWARE / "venv-grader" / "bin" / "python"
    code = (
        "import json; from pathlib import Path; from grader.pipeline.course import Course; "
        "from grader.pipeline.gradebook import cell_scores; "
        "print(json.dumps([[s.student, s.cell, s.score] for s in "
        f"cell_scores(Course(Path({os.fspath(settings.course_root)!r})), [{ASSIGNMENT!r}])]))"
    )
    done = _as_user(settings.grader_user, os.fspath(python), "-c", code)
    assert done.returncode == 0, done.stderr
    scores: dict[str, dict[str, float | None]] = {}
    for student, cell, score in json.loads(done.stdout.strip().splitlines()[-1]):
        scores.setdefault(student, {})[cell] = score
    return scores


def test_each_student_is_graded_on_what_they_submitted(cycle):
    settings, _, _ = cycle
    assert _gradebook(settings) == _expected()


def test_each_student_fetches_exactly_their_own_feedback(cycle):
    _, _, done = cycle
    expected = _expected()
    for student in ROLES:
        page = done.feedback[student]
        total, most = sum(expected[student].values()), sum(expected["student1"].values())
        assert f"{Path(NOTEBOOK).stem} (Score: {total:.1f} / {most:.1f})" in page, student
    # The planted mistake's feedback names it (grader/term/planted: its diagnosis).
    (mistake,) = [m for m in mistakes_for(ASSIGNMENT) if m.student == PLANTED]
    assert mistake.diagnosis in done.feedback["student2"]
    assert mistake.diagnosis not in done.feedback["student1"]


def test_the_watcher_receipted_every_submission_as_its_uploader(cycle):
    _, _, done = cycle
    assert sorted((r["named"], r["uploader"], r["taken_by"]) for r in done.receipts) == [
        (s, s, "watcher") for s in sorted(ROLES)
    ]
    assert "FLAG" not in done.outputs["collect"]
    assert re.search(rf"collected 3 submissions of {ASSIGNMENT}", done.outputs["collect"])


def test_students_reach_the_assignments_tab_and_not_the_formgrader(cycle):
    settings, client, _ = cycle
    student, ta = client.user("student1"), client.user("ta")
    # The formgrader service: the TA yes, a student no (the hub's roles).
    assert ta.get(f"/services/{COURSE}/api/status").status_code == 200
    assert student.get(f"/services/{COURSE}/api/status").status_code == 403
    # Only the formgrader may be framed, by its own origin (its panel is an iframe, nbgrader
    # #1870); a student's server keeps JupyterHub's frame-ancestors 'none'.
    policy = ta.get(f"/services/{COURSE}/formgrader").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy
    policy = student.get("/user/student1/lab").headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    # Another student's server: no.
    assert student.contents(f"{COURSE}/{ASSIGNMENT}", server="/user/student2").status_code == 403
    # On the student's own server, the Assignments tab and no formgrader (server or Lab).
    listed = student.get("/user/student1/assignments", params={"course_id": COURSE}).json()
    assert {a["assignment_id"] for a in listed["value"]} == {ASSIGNMENT}
    assert student.get("/user/student1/formgrader/api/assignments").status_code == 404
    lab = student.get("/user/student1/lab").text
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab, re.S)[1])
    assert "@jupyter/nbgrader:formgrader" in config["disabledExtensions"]
    assert "@jupyter/nbgrader:assignment-list" not in config["disabledExtensions"]


@pytest.mark.parametrize("who, other", [("student1", "student2"), ("student3", "student1")])
def test_no_student_reads_another_students_work(cycle, who, other):
    settings, _, _ = cycle
    exchange = settings.exchange / COURSE
    theirs = next((exchange / "inbound").glob(f"{other}+{ASSIGNMENT}+*"))
    attempts = {
        "list the submissions": ["ls", os.fspath(exchange / "inbound")],
        "list the released feedback": ["ls", os.fspath(exchange / "feedback")],
        "read their fetched notebook": [
            "cat",
            f"{pwd.getpwnam(other).pw_dir}/{COURSE}/{ASSIGNMENT}/{NOTEBOOK}",
        ],
        "list their feedback": [
            "ls",
            f"{pwd.getpwnam(other).pw_dir}/{COURSE}/{ASSIGNMENT}/feedback",
        ],
        "read the course (solutions, gradebook)": ["ls", os.fspath(settings.course_root)],
        "read the receipts": ["ls", os.fspath(settings.course_root / "receipts")],
        "read the hidden checks": ["ls", os.fspath(load_hubctl().SOFTWARE / "venv-grader")],
        # The checkout the hub runs from: its course (solutions), grader and history.
        "read the checkout's solutions": ["ls", os.fspath(REPO / "course" / "assignments")],
        "read the checkout's hidden checks": ["ls", os.fspath(REPO / "grader" / "checks")],
        "read the checkout's history": ["ls", os.fspath(REPO / ".git")],
    }
    for what, args in attempts.items():
        done = _as_user(who, *args)
        assert done.returncode != 0 and "Permission denied" in done.stderr, (what, done)
    # Their submission folder is not listable; its name (a random suffix) is the only way in.
    assert theirs.is_dir()
    # The student's own files are there for them.
    mine = _as_user(who, "ls", f"{pwd.getpwnam(who).pw_dir}/{COURSE}/{ASSIGNMENT}/feedback")
    assert mine.returncode == 0 and mine.stdout.strip()


def test_homes_and_exchange_have_the_modes_nbgrader_needs(cycle):
    settings, _, _ = cycle
    assert settings.exchange.stat().st_mode & 0o7777 == 0o1777
    for student in ROLES:
        assert Path(pwd.getpwnam(student).pw_dir).stat().st_mode & 0o777 == 0o700
    assert settings.course_root.stat().st_mode & 0o777 == 0o700
