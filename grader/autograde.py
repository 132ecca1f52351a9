"""Autograding a class: nbgrader's autograde for every submission, in parallel, with a record.

nbgrader grades one submission per call and has no parallel mode. Here ``jobs`` worker
processes each drive their own ``NbGraderAPI``; they share the SQLite gradebook, whose
writers wait for each other (``Course.config`` sets a busy timeout) instead of failing, and
each submission's rows are written by exactly one worker. Every submission gets a
:class:`GradingRecord` (success, seconds, notes: unreadable notebooks, modified test cells,
kernel deaths, timeouts), saved under ``<course>/grading/<assignment>/<student>.json`` for
the report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from cvcourse.fileio import atomic_path
from grader.course import Course, CourseError
from grader.preflight import prepare_notebooks, review_notes


@dataclass
class GradingRecord:
    """What happened when one submission was autograded."""

    assignment: str
    student: str
    success: bool
    seconds: float
    notes: list[str] = field(default_factory=list)

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
    result = api.generate_assignment(assignment, force=True)
    if not result["success"]:
        raise CourseError(f"nbgrader could not release {assignment}:\n{result.get('error', '')}")


def _execution_notes(path: Path) -> list[str]:
    # Kernel deaths and timeouts, read from the outputs the executor left in the notebook.
    if not path.exists():
        return []
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return []
    notes = []
    for number, cell in enumerate(nb.cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            ename = output.get("ename", "")
            if ename == "KernelDied" and "died while" in output.get("evalue", ""):
                notes.append(f"{path.name}: the kernel died in cell {number}; later cells score 0")
            elif ename == "CellTimeoutError":
                notes.append(f"{path.name}: cell {number} hit the per-cell timeout")
            elif ename == "MemoryError":
                notes.append(f"{path.name}: cell {number} ran out of memory")
    return notes


# Worker processes keep one NbGraderAPI each (importing nbgrader costs seconds).
_WORKER: dict = {}


def _start_worker(root: str, timeout: int | None, memory_mb: int | None) -> None:
    course = Course(Path(root))
    _WORKER["api"] = course.api(timeout=timeout, memory_mb=memory_mb)


def _autograde_one(assignment: str, student: str) -> tuple[bool, float, str]:
    started = time.perf_counter()
    result = _WORKER["api"].autograde(assignment, student, force=True, create=True)
    error = "" if result["success"] else (result.get("error") or result.get("log") or "")
    return bool(result["success"]), time.perf_counter() - started, error


def _finish(course: Course, assignment: str, student: str, outcome, pre_notes) -> GradingRecord:
    success, seconds, error = outcome
    notes = list(pre_notes)
    if not success:
        last = [line for line in error.strip().splitlines() if line.strip()][-1:] or ["?"]
        notes.append(f"nbgrader could not grade this submission: {last[0][:300]}")
    for name in course.notebook_names(assignment):
        autograded = course.step_dir("autograded", student, assignment) / f"{name}.ipynb"
        notes += _execution_notes(autograded)
    record = GradingRecord(assignment, student, success, round(seconds, 3), notes)
    record.save(course)
    return record


def autograde(
    course: Course,
    assignment: str,
    students: list[str] | None = None,
    *,
    jobs: int = 1,
    timeout: int | None = None,
    memory_mb: int | None = None,
    progress: bool = True,
) -> list[GradingRecord]:
    """Autograde ``students``' submissions of ``assignment`` (default: all in submitted/).

    ``jobs`` submissions at a time, each cell limited to ``timeout`` seconds and each kernel
    to ``memory_mb`` MiB. Re-running regrades from the submitted files and gives the same
    grades. Returns one record per submission, in student order.
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
    students = course.students(assignment) if students is None else list(students)
    missing = [s for s in students if not course.step_dir("submitted", s, assignment).is_dir()]
    if missing:
        raise CourseError(f"no submission of {assignment} for: {', '.join(missing)}")
    _start_worker(os.fspath(course.root), timeout, memory_mb)
    ensure_released(course, _WORKER["api"], assignment)

    names = course.notebook_names(assignment)
    pre_notes = {}
    for student in students:
        folder = course.step_dir("submitted", student, assignment)
        notes = prepare_notebooks(folder, names, course.step_dir("release", "", assignment))
        for name in names:
            notes += review_notes(
                course.step_dir("release", "", assignment) / f"{name}.ipynb",
                folder / f"{name}.ipynb",
            )
        pre_notes[student] = notes

    records: dict[str, GradingRecord] = {}
    bar = tqdm(total=len(students), desc=f"autograde {assignment}", unit="nb", disable=not progress)
    if jobs == 1 or len(students) <= 1:
        for student in students:
            bar.set_postfix_str(student)
            outcome = _autograde_one(assignment, student)
            records[student] = _finish(course, assignment, student, outcome, pre_notes[student])
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(students)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(os.fspath(course.root), timeout, memory_mb),
        ) as pool:
            futures = {pool.submit(_autograde_one, assignment, s): s for s in students}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker died: grade the rest, report this one
                    outcome = (False, 0.0, f"{type(exc).__name__}: {exc}")
                records[student] = _finish(course, assignment, student, outcome, pre_notes[student])
                bar.set_postfix_str(student)
                bar.update()
    bar.close()
    return [records[s] for s in students]
