"""Autograding a class: nbgrader's autograde for every submission, in parallel, with a record.

nbgrader grades one submission per call and has no parallel mode. Here ``jobs`` worker
processes each drive their own ``NbGraderAPI``; they share the SQLite gradebook, whose
writers wait for each other (``Course.config`` sets a busy timeout) instead of failing, and
each submission's rows are written by exactly one worker. Every submission gets a
:class:`GradingRecord` (success, seconds, notes: unreadable notebooks, modified test cells,
kernel deaths, timeouts), saved under ``<course>/grading/<assignment>/<student>.json`` for
the report.

Workers are processes of our own (:func:`run_pool`), one submission at a time each, so that
a worker that dies (a kernel that kills its parent, the OOM killer) costs only the
submission it was grading: that one is graded again in a fresh worker, and if that worker
dies too it is recorded as ungraded (``success`` False: never exported as 0). A
``ProcessPoolExecutor`` would instead fail every pending submission with
``BrokenProcessPool``. What a dead worker leaves behind (its kernel, orphaned, still busy
and holding the terminal) is adopted by the grading process and killed (Linux).
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from tqdm.auto import tqdm

from cvcourse.fileio import atomic_path
from grader.pipeline.course import Course, CourseError, sandboxed
from grader.pipeline.gradebook import save_autograded
from grader.pipeline.preflight import prepare_notebooks, restore_metadata, review_notes
from grader.pipeline.quiet import quiet_nbgrader
from grader.pipeline.worktask import (
    COURSE_ID,
    AssignmentPackage,
    GradedSubmission,
    Submission,
    digest,
    execution_note,  # noqa: F401 (the judge's ApplyJudgeRecord imports it from here)
    grade_submission,
    read_tree,
    warm_worker,
)

#: Seconds one submission may take on a worker, all cells included, before it is cancelled.
DEFAULT_TASK_TIMEOUT = 3600


@dataclass
class GradingRecord:
    """What happened when one submission was autograded."""

    assignment: str
    student: str
    success: bool
    seconds: float
    notes: list[str] = field(default_factory=list)
    digest: str = ""  # of the submitted files graded (grader.pipeline.worktask.digest)
    head_seconds: float = 0.0  # the head's time to write the result into the course

    @staticmethod
    def path(course: Course, assignment: str, student: str) -> Path:
        return course.root / "grading" / assignment / f"{student}.json"

    def save(self, course: Course) -> None:
        with atomic_path(self.path(course, self.assignment, self.student)) as tmp:
            Path(tmp).write_text(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load_all(cls, course: Course, assignment: str) -> list[GradingRecord]:
        folder = course.root / "grading" / assignment
        records = []
        for path in sorted(folder.glob("*.json")):
            try:
                records.append(cls(**json.loads(path.read_text())))
            except (ValueError, TypeError):
                continue  # a record from an older version: the report simply lacks its notes
        return records


def _grades_in_gradebook(course: Course, api, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


def ensure_released(course: Course, api, assignment: str) -> None:
    """Generate the student version (and the gradebook entries) if not done yet."""
    if (course.step_dir("release", "", assignment)).is_dir() and _grades_in_gradebook(
        course, api, assignment
    ):
        return
    from grader.pipeline.steps import generate

    generate(course, assignment, api)


def _worker_main(conn, initializer, initargs, work) -> None:
    # A worker process: set up once, then run one task at a time until told to stop.
    quiet_nbgrader()
    initializer(*initargs)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the main process is gone
        if task is None:
            return
        try:
            reply = ("done", work(*task))
        except Exception as exc:
            reply = ("raised", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except OSError:
            return  # whoever gave the task is gone (a Dask worker that was killed)


@dataclass
class PoolOutcome:
    """How one task of :func:`run_pool` ended.

    ``kind`` is ``"done"`` (``value`` is what the task returned), ``"raised"`` (``value``
    is the exception, as text) or ``"died"`` (the worker died on every try; ``value`` says
    how). ``deaths`` lists how each worker that died running the task ended.
    """

    kind: str
    value: object
    deaths: list[str] = field(default_factory=list)


class _Worker:
    def __init__(self, context, initializer, initargs, work):
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, initializer, initargs, work), daemon=False
        )
        self.process.start()
        child.close()
        self.task: tuple | None = None
        self.given = 0.0

    def give(self, task: tuple) -> None:
        self.task = task
        self.given = time.monotonic()
        self.conn.send(task)

    def how_it_ended(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def stop(self, wait_s: float = 10.0) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(wait_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


# prctl(2) options: adopt orphaned descendants instead of leaving them to init (Linux).
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _subreaper(on: bool) -> bool | None:
    """Make this process adopt its orphaned descendants; returns the previous setting, or None
    where that is not possible (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        previous = ctypes.c_int(0)
        if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
            return None
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return bool(previous.value)


def _children() -> set[int]:
    """Pids of this process's children (from /proc; empty where there is none)."""
    me = os.getpid()
    found = set()
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return found
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "pid (command)": state, ppid, ...
        if len(fields) > 1 and fields[1] == str(me):
            found.add(int(entry.name))
    return found


def _kill_orphans(keep: set[int]) -> None:
    """Kill and reap every child of this process not in ``keep``: what dead workers left,
    adopted because this process is their subreaper (their children come next, so repeat)."""
    for _ in range(20):
        module = sys.modules.get("multiprocessing.resource_tracker")
        tracker = getattr(getattr(module, "_resource_tracker", None), "_pid", None)
        orphans = _children() - keep - {tracker}
        if not orphans:
            return
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in orphans:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def run_pool(
    tasks: Iterable[tuple],
    jobs: int,
    on_done: Callable[[tuple, PoolOutcome], None],
    *,
    initializer: Callable = warm_worker,
    initargs: tuple = (),
    work: Callable = grade_submission,
    retries: int = 1,
    deadline: float | None = None,
) -> None:
    """Run ``work(*task)`` for every task in up to ``jobs`` worker processes.

    Each worker runs ``initializer(*initargs)`` once, then one task at a time, so a worker
    that dies is charged to exactly the task it was running: that task is tried again in a
    fresh worker up to ``retries`` times, then reported as ``"died"``; every other task
    runs normally. A task still running ``deadline`` seconds after it was given is
    cancelled (its worker killed) and reported as ``"timeout"``, not retried.
    ``on_done(task, outcome)`` is called in this process as each task ends (in the order
    they end). ``initializer`` and ``work`` must be importable functions (workers are
    spawned). On Linux this process adopts what a dead worker leaves running (its kernel
    and anything the kernel started) and kills it.
    """
    pending = list(tasks)[::-1]  # pop() takes them in the given order
    if not pending:
        return
    before = _children()
    was_subreaper = _subreaper(True)
    context = multiprocessing.get_context("spawn")
    spawn = lambda: _Worker(context, initializer, initargs, work)  # noqa: E731
    deaths: dict[int, list[str]] = {}
    workers: list[_Worker] = []

    def lose(worker: _Worker) -> None:
        worker.stop()
        workers.remove(worker)
        if was_subreaper is not None:
            _kill_orphans(before | {w.process.pid for w in workers})

    try:
        while True:
            for worker in [w for w in workers if w.task is None and not w.process.is_alive()]:
                worker.stop()  # an idle worker that died: replace it, nobody is charged
                workers.remove(worker)
            idle = sum(w.task is None for w in workers)
            for _ in range(min(len(pending) - idle, jobs - len(workers))):
                workers.append(spawn())
            for worker in workers:
                if worker.task is None and pending:
                    worker.give(pending.pop())
            busy = [w for w in workers if w.task is not None]
            if not busy:
                break
            timeout = None
            if deadline is not None:
                timeout = max(0.0, min(w.given + deadline for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
            for worker in busy:
                task = worker.task
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    if deadline is not None and time.monotonic() - worker.given >= deadline:
                        worker.process.kill()
                        lose(worker)
                        on_done(task, PoolOutcome("timeout", deadline, deaths.get(id(task), [])))
                    continue
                try:
                    if not worker.conn.poll():
                        raise EOFError
                    kind, value = worker.conn.recv()
                except (EOFError, OSError):
                    how = worker.how_it_ended()
                    lose(worker)
                    deaths.setdefault(id(task), []).append(how)
                    if len(deaths[id(task)]) <= retries:
                        fresh = spawn()
                        workers.append(fresh)
                        fresh.give(task)
                    else:
                        on_done(task, PoolOutcome("died", how, deaths[id(task)]))
                    continue
                worker.task = None
                on_done(task, PoolOutcome(kind, value, deaths.get(id(task), [])))
    finally:
        for worker in workers:
            worker.stop()
        if was_subreaper is not None:
            _kill_orphans(before)
            _subreaper(was_subreaper)


# An exception line of a traceback or log: "ValueError: ...", "nbclient.exceptions.X: ...".
_EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?\w*(?:Error|Exception|Exit|Interrupt)\b.*")
# nbgrader's own closing line, which points at the traceback instead of saying anything.
_SEE_ABOVE = "see the the above traceback"


def failure_cause(error: str) -> str:
    """The line of nbgrader's log and traceback that says why grading failed (300 chars).

    nbgrader ends a failed conversion with ``NbGraderException: Please see the the above
    traceback...``; the cause is the last other exception line above it.
    """
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    causes = [line for line in lines if _EXCEPTION_LINE.match(line) and _SEE_ABOVE not in line]
    return ((causes or lines)[-1:] or ["?"])[0][:300]


def outcome_notes(
    student: str, result: PoolOutcome
) -> tuple[GradedSubmission, str | None, list[str]]:
    """What a task's outcome means for the submission: what the worker returned (or an
    ungraded stand-in), nbgrader's error if any, and notes on dead or cancelled workers."""
    notes = []
    ungraded = GradedSubmission(student, False, 0.0)
    if result.kind == "died":
        tries = len(result.deaths)
        notes.append(
            f"the grading worker died on each of {tries} tries "
            f"({'; '.join(result.deaths)}): not graded"
        )
        return ungraded, None, notes
    if result.deaths:
        notes.append(
            f"the grading worker died ({'; '.join(result.deaths)}); graded again in a fresh worker"
        )
    if result.kind == "timeout":
        notes.append(
            f"grading took longer than the limit of {result.value:g} s per submission and "
            "was cancelled: not graded"
        )
        return ungraded, None, notes
    if result.kind == "raised":
        return ungraded, str(result.value), notes
    graded = result.value
    return graded, (None if graded.success else graded.error), notes


def _up_to_date(record: GradingRecord | None, files: dict[str, bytes]) -> bool:
    # Graded, and from exactly the files now in submitted/ (a re-collected submission is not).
    return record is not None and record.success and record.digest == digest(files)


def _duedate(api, assignment: str):
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        return gb.find_assignment(assignment).duedate


def _preflight(course: Course, assignment: str, student: str) -> list[str]:
    names = course.notebook_names(assignment)
    release = course.step_dir("release", "", assignment)
    folder = course.step_dir("submitted", student, assignment)
    notes = prepare_notebooks(folder, names, release)
    for name in names:
        notes += restore_metadata(release / f"{name}.ipynb", folder / f"{name}.ipynb")
        notes += review_notes(release / f"{name}.ipynb", folder / f"{name}.ipynb")
    return notes


def autograde(
    course: Course,
    assignment: str,
    students: list[str] | None = None,
    *,
    jobs: int = 1,
    timeout: int | None = None,
    memory_mb: int | None = None,
    progress: bool = True,
    force: bool = False,
    cluster=None,
    resources: dict[str, float] | None = None,
    task_timeout: float | None = DEFAULT_TASK_TIMEOUT,
) -> list[GradingRecord]:
    """Autograde ``students``' submissions of ``assignment`` (default: all in submitted/).

    Submissions already graded from the files now in ``submitted/`` are skipped unless
    ``force`` (or the student is named in ``students``). The others go to workers as plain
    data (:mod:`grader.pipeline.worktask`): ``jobs`` local worker processes, or, with ``cluster``
    (a Dask scheduler address, ``"local"`` for a local Dask cluster of ``jobs`` workers,
    or a ``distributed.Client``), the workers of a Dask cluster, each task tagged with
    ``resources``. Each cell is limited to ``timeout`` seconds, each kernel to
    ``memory_mb`` MiB, each submission to ``task_timeout`` seconds of a worker's time.
    This process alone writes the results into the course. Returns one record per
    student, in student order.
    """
    course.check_assignment(assignment)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if timeout is not None and timeout < 1:
        raise ValueError(f"timeout must be at least 1 second, got {timeout}")
    if memory_mb is not None and memory_mb < 512:
        raise ValueError(
            f"memory_mb must be at least 512 (a kernel with torch needs it), got {memory_mb}"
        )
    if task_timeout is not None and task_timeout < 1:
        raise ValueError(f"task_timeout must be at least 1 second, got {task_timeout}")
    if resources and cluster is None:
        raise ValueError("resources tag Dask workers: they need --cluster")
    named = students is not None
    students = course.students(assignment) if students is None else list(students)
    missing = [s for s in students if not course.step_dir("submitted", s, assignment).is_dir()]
    if missing:
        raise CourseError(f"no submission of {assignment} for: {', '.join(missing)}")
    api = course.api(timeout=timeout, memory_mb=memory_mb)
    ensure_released(course, api, assignment)

    earlier = {r.student: r for r in GradingRecord.load_all(course, assignment)}
    todo = [
        s
        for s in students
        if force
        or named
        or not _up_to_date(earlier.get(s), read_tree(course.step_dir("submitted", s, assignment)))
    ]
    pre_notes = {s: _preflight(course, assignment, s) for s in todo}
    package = AssignmentPackage.of(
        course,
        assignment,
        duedate=_duedate(api, assignment),
        timeout=timeout,
        memory_mb=memory_mb,
        sandboxed=sandboxed(),
    )
    tasks = [(package, Submission.of(course, assignment, s)) for s in todo]
    digests = {submission.student: digest(submission.files) for _, submission in tasks}

    kept = len(students) - len(todo)
    if kept and progress:
        print(
            f"{assignment}: {kept} of {len(students)} submissions are already graded from the "
            "files now in submitted/, kept (--force grades them again)"
        )
    records: dict[str, GradingRecord] = {}
    bar = tqdm(
        total=len(todo), desc=f"autograde {assignment}", unit="nb", disable=not progress or not todo
    )

    def done(task: tuple, result: PoolOutcome) -> None:
        student = task[1].student
        started = time.perf_counter()
        graded, error, notes = outcome_notes(student, result)
        notes = pre_notes[student] + notes
        if error is not None:
            notes.append(f"nbgrader could not grade this submission: {failure_cause(error)}")
        notes += graded.notes
        folder = course.step_dir("submitted", student, assignment)
        timestamp = api.coursedir.get_existing_timestamp(os.fspath(folder))
        save_autograded(course, gradebook, assignment, graded, timestamp)
        record = GradingRecord(assignment, student, graded.success, round(graded.seconds, 3), notes)
        record.digest = digests[student]
        record.head_seconds = round(time.perf_counter() - started, 4)
        record.save(course)  # last: a submission with a record is done
        records[student] = record
        bar.set_postfix_str(student)
        bar.update()

    from nbgrader.api import Gradebook

    # One open gradebook for the run: the head's only connection to gradebook.db.
    with Gradebook(api.coursedir.db_url, COURSE_ID) as gradebook:
        if cluster is None:
            # Even one job runs in a worker process: a kernel that kills its parent must not
            # take cvgrade (and every other submission's record) with it.
            run_pool(tasks, jobs, done, deadline=task_timeout)
        else:
            from grader.pipeline.cluster import run_on_cluster

            run_on_cluster(
                tasks, cluster, done, jobs=jobs, deadline=task_timeout, resources=resources
            )
    bar.close()
    return [records.get(s) or earlier[s] for s in students]
