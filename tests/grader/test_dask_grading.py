"""Grading on a Dask cluster (``grader.pipeline.cluster``): a LocalCluster of 2 workers.

A small class of the tiny course (``double`` 2 points, ``triple`` 1 point) is graded twice
from the same submitted files: with ``--jobs 1`` (the local pool) as the reference, and on
a LocalCluster of 2 worker processes while the test kills the worker grading ``dan``
(once) and, later, every worker that takes ``mallory``. The grades and the CSV must be
those of the reference, byte for byte; ``dan`` is graded again elsewhere; ``mallory`` ends
ungraded (never 0) after two tries; a re-run grades only what is missing. Every process
the cluster starts runs with an audit hook (a ``sitecustomize`` on its ``PYTHONPATH``) that
logs the files it opens and the SQLite databases it connects to: none may be under the
course folder, where ``gradebook.db`` lives.

Then a synthetic class of assignment 3 (``grader.term.simulate.submit_synthetic_class``, what
``bench/bench_grading.py --students N`` grades), six submissions, is graded the same two
ways with the worker grading one of them killed: every grade must be the one its pattern
(the solution, the blank notebook, a planted mistake) earns, and the CSV that of ``--jobs 1``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from grader.notebooks import cell
from grader.pipeline.autograde import GradingRecord, autograde
from grader.pipeline.course import Course
from grader.pipeline.export import write_grades_csv
from grader.pipeline.gradebook import cell_scores
from tests.grader.tiny_course import make_tiny_course, submit, tiny_notebook

distributed = pytest.importorskip("distributed")

STUB = "def {0}(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"

AUDIT = """
import os
import sys

_LOG = os.environ.get("CVGRADE_TEST_AUDIT_LOG")


def _hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
    elif event == "sqlite3.connect":
        path = str(args[0])
    else:
        return
    if path != _LOG:  # the os.open below raises an "open" event too
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{os.getpid()} {event} {path}\\n".encode())
        os.close(fd)


if _LOG:
    sys.addaudithook(_hook)
"""


def _solution(**sources):
    nb = tiny_notebook()
    for grade_id, source in sources.items():
        cell(nb, grade_id).source = source
    return nb


CLASS = {
    "alice": _solution(),
    "bob": _solution(double_impl=STUB.format("double"), triple_impl=STUB.format("triple")),
    "carol": _solution(triple_impl="import os\nos._exit(1)"),
    "dan": _solution(),
}
GRADING = {"timeout": 20, "memory_mb": 2048, "progress": False}


def _course(root: Path) -> Course:
    make_tiny_course(root)
    for student, nb in CLASS.items():
        submit(root, student, nb)
    return Course(root)


def _csv(course: Course, out: Path, assignment: str = "tiny") -> bytes:
    return write_grades_csv(cell_scores(course, [assignment]), out).read_bytes()


class Killer(threading.Thread):
    """Kills (SIGKILL) the Dask worker process running a task of a chosen student."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.targets: dict[str, int] = {}  # student -> kills still to do
        self.killed: list[str] = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                processing = self.client.processing()
                pids = self.client.run(os.getpid) if processing else {}
            except Exception:
                time.sleep(0.2)
                continue
            for address, keys in processing.items():
                for key in keys:
                    student = str(key).split("-")[1]
                    if self.targets.get(student, 0) > 0 and address in pids:
                        self.targets[student] -= 1
                        os.kill(pids[address], signal.SIGKILL)
                        self.killed.append(student)
            time.sleep(0.2)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from grader.pipeline.cluster import local_cluster

    base = tmp_path_factory.mktemp("dask")
    reference = _course(base / "reference")
    started = time.perf_counter()
    autograde(reference, "tiny", jobs=1, **GRADING)
    seconds = {"jobs 1": time.perf_counter() - started}

    course = _course(base / "cluster")
    hooks = base / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT)
    log = base / "audit.log"
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "CVGRADE_TEST_AUDIT_LOG")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hooks), saved["PYTHONPATH"]]))
    os.environ["CVGRADE_TEST_AUDIT_LOG"] = str(log)
    try:
        cluster = local_cluster(2)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    client = distributed.Client(cluster)
    killer = Killer(client)
    killer.targets["dan"] = 1
    killer.start()
    try:
        started = time.perf_counter()
        records = autograde(course, "tiny", cluster=client, **GRADING)
        seconds["cluster"] = time.perf_counter() - started
        result = {
            "reference": reference,
            "course": course,
            "records": {r.student: r for r in records},
            "scores": {(s.student, s.cell): s.score for s in cell_scores(course, ["tiny"])},
            "csv": (_csv(reference, base / "ref.csv"), _csv(course, base / "cluster.csv")),
            "killed": list(killer.killed),
            "seconds": seconds,
        }
        # Resuming: bob's record lost (as if grading had stopped before it was written).
        GradingRecord.path(course, "tiny", "bob").unlink()
        before = {p.name: p.stat().st_mtime_ns for p in (course.root / "grading/tiny").iterdir()}
        result["resumed"] = autograde(course, "tiny", cluster=client, **GRADING)
        result["mtimes"] = (
            before,
            {p.name: p.stat().st_mtime_ns for p in (course.root / "grading/tiny").iterdir()},
        )
        # mallory's grading is killed on every worker that takes it.
        submit(course.root, "mallory", _solution())
        killer.targets["mallory"] = 2
        result["mallory"] = autograde(course, "tiny", ["mallory"], cluster=client, **GRADING)
        result["killed_mallory"] = killer.killed.count("mallory")
    finally:
        killer.stopping.set()
        killer.join(5)
        client.close()
        cluster.close()
    result["audit"] = log.read_text() if log.exists() else ""
    print(f"\nseconds: {seconds}")
    return result


def test_a_killed_worker_changes_no_grade_and_the_csv_is_that_of_jobs_1(graded):
    assert graded["killed"] == ["dan"]
    ref = {(s.student, s.cell): s.score for s in cell_scores(graded["reference"], ["tiny"])}
    got = graded["scores"]
    assert got == ref
    assert ref[("alice", "test_double")] == 2 and ref[("carol", "test_triple")] == 0
    assert ref[("carol", "test_double")] == 2 and ref[("bob", "test_double")] == 0
    reference_csv, cluster_csv = graded["csv"]
    assert cluster_csv == reference_csv
    dan = graded["records"]["dan"]
    assert dan.success
    assert any("died" in n and "graded again" in n for n in dan.notes), dan.notes
    # the kernel death in carol's notebook is reported as in the local pool
    assert any("kernel died" in n for n in graded["records"]["carol"].notes)


def test_the_autograded_files_are_written_by_the_head(graded):
    for student in CLASS:
        path = graded["course"].step_dir("autograded", student, "tiny") / "tiny.ipynb"
        assert path.is_file(), student


def test_a_rerun_grades_only_what_is_missing(graded):
    before, after = graded["mtimes"]
    assert "bob.json" not in before and "bob.json" in after
    for name in ("alice.json", "carol.json", "dan.json"):
        assert before[name] == after[name], name
    assert [r.success for r in graded["resumed"]] == [True] * 4


def test_a_submission_that_kills_every_worker_is_ungraded_after_two_tries_not_zero(graded):
    assert graded["killed_mallory"] == 2
    (record,) = graded["mallory"]
    assert not record.success
    (note,) = [n for n in record.notes if "grading worker died" in n]
    assert "2 tries" in note and "not graded" in note
    rows = [s for s in cell_scores(graded["course"], ["tiny"]) if s.student == "mallory"]
    assert rows and all(r.score is None and r.ungraded for r in rows)


def test_no_worker_process_touches_the_course_folder_or_its_gradebook(graded):
    lines = graded["audit"].splitlines()
    # The hook ran where grading ran: a worker's private gradebook was opened.
    assert any("sqlite3.connect" in line and "worker-gradebook.sqlite" in line for line in lines)
    course = os.fspath(graded["course"].root)
    touched = [line for line in lines if course in line or "gradebook.db" in line]
    assert touched == []


# --- a synthetic a3 class (grader.term.simulate.submit_synthetic_class, as bench_grading) ---------

A3 = "a3_conv_pool"
SYNTHETIC = 6  # the solution, the blank notebook and four planted mistakes


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Six a3 submissions dealt from the simulated class's patterns, graded with ``--jobs 1``
    and on a LocalCluster of 2 workers, the worker grading the third one killed once."""
    from grader.pipeline.cluster import local_cluster
    from grader.pipeline.steps import release
    from grader.term.run import scratch_course
    from grader.term.simulate import submit_synthetic_class

    base = tmp_path_factory.mktemp("synthetic")
    courses, classes = {}, {}
    for run in ("jobs1", "cluster"):
        courses[run] = scratch_course(base / run)
        release(courses[run], [A3])
        classes[run] = submit_synthetic_class(courses[run], A3, SYNTHETIC)
    grading = {"timeout": 60, "memory_mb": 2048, "progress": False}
    autograde(courses["jobs1"], A3, jobs=1, **grading)
    target = classes["cluster"][2].student
    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        killer = Killer(client)
        killer.targets[target] = 1
        killer.start()
        try:
            records = autograde(courses["cluster"], A3, cluster=client, **grading)
        finally:
            killer.stopping.set()
            killer.join(5)
    return {
        "courses": courses,
        "class": classes["cluster"],
        "target": target,
        "killed": list(killer.killed),
        "records": {r.student: r for r in records},
        "csv": {run: _csv(course, base / f"{run}.csv", A3) for run, course in courses.items()},
    }


def test_a_synthetic_class_gets_its_patterns_grades_on_a_cluster_with_a_worker_killed(synthetic):
    assert synthetic["killed"] == [synthetic["target"]]
    assert "graded again" in " ".join(synthetic["records"][synthetic["target"]].notes)
    course = synthetic["courses"]["cluster"]
    scores = {(s.student, s.cell): s.score for s in cell_scores(course, [A3])}
    expected = {(s.student, c): p for s in synthetic["class"] for c, p in s.expected.items()}
    assert scores == expected
    assert {s.mistake is None for s in synthetic["class"]} == {True, False}  # both kinds dealt
    assert synthetic["csv"]["cluster"] == synthetic["csv"]["jobs1"]
