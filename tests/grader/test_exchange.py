"""The course's side of nbgrader's exchange (grader/pipeline/exchange.py), without a hub.

The round trip runs real nbgrader student commands (fetch_assignment, submit,
fetch_feedback) as real, distinct system users (``daemon`` and ``nobody``, through
``setpriv``), so each submission's owner is what the kernel says, as on a hub; the grader
side runs ``cvgrade`` as root. The hub itself (JupyterHub, the spawner, the browser) is
tested in tests/hub/.

What a receipt must stand against, each tried: a forged ``timestamp.txt``, a notebook
rewritten after its receipt, a submission under a classmate's name, and folders holding a
link to a grader file, a FIFO, a file of another user, an oversized notebook, or a folder
nbgrader is still writing.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from grader.pipeline import exchange as exchange_module
from grader.pipeline.collect import TIMESTAMP_FORMAT
from grader.pipeline.course import Course
from grader.pipeline.exchange import Exchange, Receipts, collect_from_exchange, parse_folder_name
from grader.pipeline.gradebook import cell_scores
from tests.grader.tiny_course import make_tiny_course

CVGRADE = [sys.executable, "-m", "grader.cli"]
NBGRADER = [sys.executable, "-m", "nbgrader"]
COURSE_ID = "cvcourse"  # course/nbgrader_config.py's course id
HONEST, OTHER = "daemon", "nobody"  # two real users of every Debian system

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users")


def _as_user(user: str, home: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``args`` as ``user`` (its uid and gid, no other groups) with ``home`` as HOME."""
    entry = pwd.getpwnam(user)
    env = {"HOME": os.fspath(home), "PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    return subprocess.run(
        ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Student:
    """A system user with a home of its own, driving nbgrader's student commands."""

    def __init__(self, user: str, base: Path, exchange_root: Path):
        self.user = user
        self.home = base / f"home-{user}"
        self.home.mkdir()
        entry = pwd.getpwnam(user)
        os.chown(self.home, entry.pw_uid, entry.pw_gid)
        self.options = [
            "--course",
            COURSE_ID,
            f"--Exchange.root={exchange_root}",
            f"--Exchange.cache={self.home / 'cache'}",
            "--Exchange.path_includes_course=True",
        ]

    def nbgrader(self, *args: str) -> str:
        done = _as_user(self.user, self.home, [*NBGRADER, *args, *self.options], self.home)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    @property
    def notebook(self) -> Path:
        return self.home / COURSE_ID / "tiny" / "tiny.ipynb"

    def answer(self, double: str, triple: str) -> None:
        """Write answers into the fetched notebook, as the student (the file is theirs)."""
        nb = nbformat.read(self.notebook, as_version=4)
        for cell in nb.cells:
            if cell.get("id") == "double_impl":
                cell.source = double
            if cell.get("id") == "triple_impl":
                cell.source = triple
        text = nbformat.writes(nb)
        done = _as_user(
            self.user,
            self.home,
            [sys.executable, "-c", f"open({os.fspath(self.notebook)!r}, 'w').write({text!r})"],
            self.home,
        )
        assert done.returncode == 0, done.stderr


RIGHT = ("def double(x):\n    return 2 * x", "def triple(x):\n    return 3 * x")
WRONG_TRIPLE = ("def double(x):\n    return 2 * x", "def triple(x):\n    return x + x")


def _cvgrade(root: Path, *args: str) -> str:
    done = subprocess.run(
        [*CVGRADE, "--course", os.fspath(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _inbound_folder(exchange_root: Path, student: str) -> list[Path]:
    inbound = exchange_root / COURSE_ID / "inbound"
    return sorted(p for p in inbound.iterdir() if p.name.startswith(f"{student}+tiny+"))


@pytest.fixture(scope="module")
def round_trip():
    """Release -> fetch -> submit (honest, tampered, impersonating) -> collect -> autograde ->
    feedback returned -> each student fetches theirs."""
    # Outside pytest's folder, which only root may enter.
    base = Path(tempfile.mkdtemp(prefix="cvcourse-exchange-", dir="/tmp"))
    try:
        yield _round_trip(base)
    finally:
        shutil.rmtree(base)


def _round_trip(base: Path):
    os.chmod(base, 0o755)
    root = make_tiny_course(base / "course")
    exchange_root = base / "exchange"
    exchange_root.mkdir()
    os.chmod(exchange_root, 0o1777)
    where = f"--exchange-root={exchange_root}"
    _cvgrade(root, "release", "tiny", "--exchange", where)

    honest = Student(HONEST, base, exchange_root)
    other = Student(OTHER, base, exchange_root)
    for student in (honest, other):
        student.nbgrader("fetch_assignment", "tiny")
    honest.answer(*RIGHT)
    honest.nbgrader("submit", "tiny")
    other.answer(*WRONG_TRIPLE)
    other.nbgrader("submit", "tiny")
    # The grader's watcher takes receipts now...
    _cvgrade(root, "receipts", where)
    # ... then the other student rewrites its own submission with the right answers and
    # back-dates its timestamp (both files are its own), ...
    (mine,) = _inbound_folder(exchange_root, OTHER)
    other.answer(*RIGHT)
    rewrite = (
        f"import os, shutil; d = {os.fspath(mine)!r}; "
        "os.chmod(d + '/tiny.ipynb', 0o644); os.chmod(d + '/timestamp.txt', 0o644); "
        f"shutil.copyfile({os.fspath(other.notebook)!r}, d + '/tiny.ipynb'); "
        "open(d + '/timestamp.txt', 'w').write('2000-01-01 00:00:00.000000 UTC')"
    )
    done = _as_user(OTHER, other.home, [sys.executable, "-c", rewrite], other.home)
    assert done.returncode == 0, done.stderr
    # ... and submits an empty notebook under the honest student's name, after them.
    other.answer("def double(x):\n    pass", "def triple(x):\n    pass")
    other.nbgrader("submit", "tiny", "--student", HONEST)

    collected = _cvgrade(root, "collect", "tiny", "--exchange", where)
    _cvgrade(root, "autograde", "tiny", "--timeout", "20", "--memory-mb", "2048")
    _cvgrade(root, "feedback", "tiny", "--release", where)
    for student in (honest, other):
        student.nbgrader("fetch_feedback", "tiny")
    return root, exchange_root, honest, other, collected


def _scores(root: Path) -> dict[str, float]:
    totals: dict[str, float] = {}
    for s in cell_scores(Course(root)):
        totals[s.student] = totals.get(s.student, 0.0) + (s.score or 0.0)
    return totals


def test_each_student_is_graded_on_their_own_receipted_work(round_trip):
    root, *_ = round_trip
    # daemon: right (3 of 3), not replaced by the empty notebook nobody sent in its name;
    # nobody: the wrong triple it submitted, not the right one it wrote in afterwards.
    assert _scores(root) == {HONEST: 3.0, OTHER: 2.0}


def test_the_receipt_time_replaces_the_students_timestamp(round_trip):
    root, *_ = round_trip
    receipts = Receipts(Course(root), Exchange(Path("/unused"), COURSE_ID)).load("tiny")
    mine = [r for r in receipts if r.uploader == OTHER and r.named == OTHER]
    assert len(mine) == 1 and mine[0].claimed_timestamp != "2000-01-01 00:00:00.000000 UTC"
    stamp = (root / "submitted" / OTHER / "tiny" / "timestamp.txt").read_text()
    assert stamp == mine[0].received.strftime(TIMESTAMP_FORMAT)
    assert not stamp.startswith("2000")


def test_tampering_and_impersonation_are_flagged_in_collect_and_the_report(round_trip):
    root, _, _, _, collected = round_trip
    assert f"FLAG {OTHER}: " in collected
    notes = json.loads((root / "receipts" / "tiny" / "flags.json").read_text())
    assert any(f"uploaded by {OTHER}" in n and "not collected" in n for n in notes[HONEST])
    assert any(f"under {HONEST}'s name" in n for n in notes[OTHER])
    assert any("changed after its receipt" in n for n in notes[OTHER])
    _cvgrade(root, "report")
    report = (root / "reports" / "report.html").read_text()
    assert "changed after its receipt" in report and f"uploaded by {OTHER}" in report


def test_each_student_fetches_exactly_their_own_feedback(round_trip):
    _, exchange_root, honest, other, _ = round_trip
    for student, score in ((honest, "3"), (other, "2")):
        (page,) = (student.home / COURSE_ID / "tiny" / "feedback").glob("*/tiny.html")
        assert f"tiny (Score: {score}.0 / 3.0)" in page.read_text()
    # Students cannot list the released feedback (nbgrader makes it 0711): only the hash of
    # their own secret finds their file.
    feedback = exchange_root / COURSE_ID / "feedback"
    done = _as_user(OTHER, other.home, ["ls", os.fspath(feedback)], other.home)
    assert done.returncode != 0 and "Permission denied" in done.stderr


# --- receipts against hostile folders (no nbgrader needed) -------------------------------


@pytest.fixture
def course_and_inbound(tmp_path):
    root = make_tiny_course(tmp_path / "course")
    inbound = tmp_path / "exchange" / COURSE_ID / "inbound"
    inbound.mkdir(parents=True)
    return Course(root), Exchange(tmp_path / "exchange", COURSE_ID), inbound


def _folder(inbound: Path, name: str, uid: int, files: dict[str, bytes], mode=0o777) -> Path:
    folder = inbound / name
    folder.mkdir()
    for file, data in files.items():
        (folder / file).write_bytes(data)
        os.chown(folder / file, uid, uid)
    os.chown(folder, uid, uid)
    os.chmod(folder, mode)
    return folder


def test_hostile_folders_never_leak_grader_files_or_hang_the_watcher(course_and_inbound):
    course, exchange, inbound = course_and_inbound
    daemon, nobody = pwd.getpwnam(HONEST).pw_uid, pwd.getpwnam(OTHER).pw_uid
    secret = course.root / "gradebook-secret.txt"
    secret.write_text("hidden tests")
    linked = _folder(inbound, f"{HONEST}+tiny+2026-12-01 10:00:00.000000 UTC+a", daemon, {})
    (linked / "tiny.ipynb").symlink_to(secret)
    fifo = _folder(inbound, f"{OTHER}+tiny+2026-12-01 10:00:00.000000 UTC+b", nobody, {})
    os.chmod(fifo, 0o755)
    os.mkfifo(fifo / "tiny.ipynb")
    os.chown(fifo / "tiny.ipynb", nobody, nobody)
    os.chmod(fifo, 0o777)
    planted = _folder(
        inbound, f"{OTHER}+tiny+2026-12-01 11:00:00.000000 UTC+c", nobody, {"tiny.ipynb": b"{}"}
    )
    os.chown(planted / "tiny.ipynb", daemon, daemon)  # a file of another user
    _folder(
        inbound,
        f"{HONEST}+tiny+2026-12-01 12:00:00.000000 UTC+d",
        daemon,
        {"x.ipynb": b"1"},
        mode=0o700,
    )
    _folder(inbound, "..+tiny+x+e", daemon, {"tiny.ipynb": b"{}"})
    _folder(inbound, f"{HONEST}+unknown+x+f", daemon, {"tiny.ipynb": b"{}"})

    taken = {r.folder[-1]: r for r in Receipts(course, exchange).take(log=lambda m: None)}
    assert set(taken) == {"a", "b", "c"}  # d is still being written; e and f name nothing
    assert taken["a"].notebooks == {} and "cannot be opened" in taken["a"].problems[0]
    assert taken["b"].notebooks == {} and "not a regular file" in taken["b"].problems[0]
    assert taken["c"].notebooks == {} and f"belongs to {HONEST}" in taken["c"].problems[0]
    kept = list((course.root / "receipts").rglob("tiny.ipynb"))
    assert kept == []  # nothing copied, so the secret never reached a receipt
    assert (course.root / "receipts").stat().st_mode & 0o777 == 0o700
    # collect grades none of them and says why
    result = collect_from_exchange(course, "tiny", exchange, log=lambda m: None)
    assert result.students == []
    assert any("no tiny.ipynb to grade" in n for n in result.flags[HONEST])


def test_an_oversized_notebook_is_not_copied(course_and_inbound, monkeypatch):
    course, exchange, inbound = course_and_inbound
    monkeypatch.setattr(exchange_module, "MAX_NOTEBOOK_BYTES", 1000)
    uid = pwd.getpwnam(HONEST).pw_uid
    _folder(inbound, f"{HONEST}+tiny+t+a", uid, {"tiny.ipynb": b" " * 1001})
    (receipt,) = Receipts(course, exchange).take(log=lambda m: None)
    assert receipt.notebooks == {} and "larger than 1000 bytes" in receipt.problems[0]


def test_a_receipt_is_taken_once_and_a_late_first_sight_is_flagged(course_and_inbound):
    course, exchange, inbound = course_and_inbound
    uid = pwd.getpwnam(HONEST).pw_uid
    nb = nbformat.writes(nbformat.v4.new_notebook()).encode()
    _folder(inbound, f"{HONEST}+tiny+t+a", uid, {"tiny.ipynb": nb, "timestamp.txt": b"t"})
    result = collect_from_exchange(course, "tiny", exchange, log=lambda m: None)
    assert result.students == [HONEST]
    assert any("receipt taken by collect" in n for n in result.flags[HONEST])
    assert Receipts(course, exchange).take(log=lambda m: None) == []  # already receipted


def test_folder_names_are_parsed_strictly():
    assert parse_folder_name("ann+a3+2026-12-01 10:00:00.1 UTC+Zx_9") == ("ann", "a3")
    assert parse_folder_name("ann+a3+2026-12-01 10:00:00.1 UTC") == ("ann", "a3")
    for bad in ("ann", "ann+a3", "..+a3+t", "ann+../x+t", "a+b+c+d+e", "+a3+t"):
        assert parse_folder_name(bad) is None


def test_collect_needs_a_source_or_the_exchange(tmp_path):
    root = make_tiny_course(tmp_path / "course")
    done = subprocess.run(
        [*CVGRADE, "--course", os.fspath(root), "collect", "tiny"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "either a SOURCE or --exchange" in done.stderr
    shutil.rmtree(root)
