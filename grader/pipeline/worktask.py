"""One submission graded by a worker: plain data in, plain data out.

The head (the ``cvgrade`` process) is the only writer of the course: its ``gradebook.db``
and everything under ``course/``. A worker, a process of the local pool or of a Dask
cluster on another machine, gets everything it needs with the task and shares no file with
the head:

- an :class:`AssignmentPackage`: the course's ``nbgrader_config.py``, the assignment's
  source folder, the course's own checks (``<course>/checks/``), its due date, the limits
  and whether the sandbox is on (the hidden checks of ``grader.checks`` ship with the
  grader installed on the worker);
- a :class:`Submission`: the files of ``submitted/<student>/<assignment>/`` as the head's
  preflight left them.

:func:`grade_submission` builds a private course in a temporary folder (once per package
and process: nbgrader's ``generate_assignment`` and a private gradebook,
``worker-gradebook.sqlite``, never the course's), runs nbgrader's own autograde there, in
the sandboxed kernel and beside the judge, exactly as it would run in the course, and
returns the autograded files, the scores and comments nbgrader wrote into the private
gradebook, and the notes. The head writes them (:func:`grader.pipeline.gradebook.save_autograded`).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

import nbformat

from grader.pipeline.course import CONFIG_FILE, Course, allow_unsafe_grading, require_sandbox
from grader.pipeline.quiet import quiet_nbgrader
from grader.pipeline.sandbox import Limits
from grader.pipeline.sandbox_kernel import DEFAULT_MEMORY_MB

#: The worker's own gradebook in its private course (never named like the course's).
PRIVATE_GRADEBOOK = "worker-gradebook.sqlite"
COURSE_ID = "cvcourse"
_SKIPPED_FOLDERS = {"__pycache__", ".ipynb_checkpoints"}


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (relative POSIX path -> bytes), sorted.

    Symbolic links are skipped: a student's link to a file of the head's machine must not
    ship that file to a worker.
    """
    files: dict[str, bytes] = {}
    if not folder.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIPPED_FOLDERS and not os.path.islink(os.path.join(dirpath, d))
        )
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def safe_relpath(name: str) -> Path:
    """``name`` as a relative path that stays inside its folder; ValueError otherwise."""
    path = PurePosixPath(name)
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"refusing file name {name!r}: it would leave its folder")
    return Path(*path.parts)


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (as from :func:`read_tree`) under ``folder``."""
    for name, data in files.items():
        target = folder / safe_relpath(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def digest(files: dict[str, bytes]) -> str:
    """A sha256 of file names and contents: the same files give the same digest."""
    total = hashlib.sha256()
    for name in sorted(files):
        total.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return total.hexdigest()


@dataclass(frozen=True)
class AssignmentPackage:
    """What a worker needs to grade any submission of one assignment."""

    assignment: str
    config: bytes
    source: dict[str, bytes]
    checks: dict[str, bytes]
    duedate: str | None = None  # ISO 8601, as in the head's gradebook
    timeout: int | None = None
    memory_mb: int | None = None
    sandboxed: bool = True
    key: str = ""

    @classmethod
    def of(
        cls,
        course: Course,
        assignment: str,
        *,
        duedate: datetime | None = None,
        timeout: int | None = None,
        memory_mb: int | None = None,
        sandboxed: bool = True,
    ) -> AssignmentPackage:
        config = (course.root / CONFIG_FILE).read_bytes()
        source = read_tree(course.source_root / assignment)
        checks = read_tree(course.root / "checks")
        when = duedate.isoformat() if duedate is not None else None
        parts = {"config": config, **{f"source/{k}": v for k, v in source.items()}}
        parts.update({f"checks/{k}": v for k, v in checks.items()})
        parts["settings"] = repr((assignment, when, timeout, memory_mb, sandboxed)).encode()
        return cls(
            assignment, config, source, checks, when, timeout, memory_mb, sandboxed, digest(parts)
        )


@dataclass(frozen=True)
class Submission:
    """One student's submitted files (after the head's preflight)."""

    student: str
    files: dict[str, bytes]

    @classmethod
    def of(cls, course: Course, assignment: str, student: str) -> Submission:
        return cls(student, read_tree(course.step_dir("submitted", student, assignment)))


@dataclass
class GradedSubmission:
    """What a worker returns for one submission (plain data).

    ``notebooks`` maps each notebook to the rows nbgrader wrote: ``grades`` (grade id ->
    auto score), ``comments`` (id -> auto comment), ``late_submission_penalty``. ``files``
    is the autograded folder. ``notes`` are what the autograded notebooks tell a TA.
    """

    student: str
    success: bool
    seconds: float
    error: str = ""
    notebooks: dict[str, dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def execution_note(number: int, output) -> str | None:
    """What an error output of cell ``number`` tells the TA: a kernel death, a timeout, an
    out-of-memory; None for an ordinary error (the feedback shows those)."""
    if output.get("output_type") != "error":
        return None
    ename, evalue = output.get("ename", ""), output.get("evalue", "")
    if ename == "KernelDied" and "died while" in evalue:
        return f"the kernel died in cell {number}; later cells score 0"
    if ename == "CellTimeoutError" and "killed the kernel" in evalue:
        return (
            f"cell {number} hit the per-cell timeout and ignored the interrupt: the kernel "
            "was killed; later cells score 0"
        )
    if ename == "CellTimeoutError":
        return f"cell {number} hit the per-cell timeout"
    if ename == "MemoryError":
        return f"cell {number} ran out of memory"
    return None


def execution_notes(path: Path) -> list[str]:
    """Kernel deaths and timeouts, read from the outputs the executor left in the
    autograded notebook, and what the judge noted (graded cells' outputs are the judge's
    verdicts by then)."""
    if not path.exists():
        return []
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return []
    notes = list(nb.metadata.get("cvgrade_judge", {}).get("notes", []))
    for number, cell in enumerate(nb.cells, start=1):
        for output in cell.get("outputs", []):
            note = execution_note(number, output)
            if note:
                notes.append(note)
    return [f"{path.name}: {note}" for note in notes]


# -- the worker's side --------------------------------------------------------------------------

# package key -> (private course, its NbGraderAPI), per worker process.
_PRIVATE: dict[str, tuple[Course, object]] = {}


def warm_worker() -> None:
    """Import what grading needs once per worker process (nbgrader, the judge, torch) and
    quiet nbgrader's SQLAlchemy warnings."""
    quiet_nbgrader()
    import nbgrader.apps  # noqa: F401

    import grader.judge.execute  # noqa: F401


def _private_course(package: AssignmentPackage) -> tuple[Course, object]:
    if package.key in _PRIVATE:
        return _PRIVATE[package.key]
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    root = Path(tempfile.mkdtemp(prefix="cvgrade-worker-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    (root / CONFIG_FILE).write_bytes(package.config)
    write_tree(root / "assignments" / package.assignment, package.source)
    write_tree(root / "checks", package.checks)
    course = Course(root)
    config = course.config(timeout=package.timeout, memory_mb=package.memory_mb)
    config.CourseDirectory.db_url = f"sqlite:///{root / PRIVATE_GRADEBOOK}"
    api = NbGraderAPI(config=config)
    result = api.generate_assignment(package.assignment, force=True)
    if not result["success"]:
        raise RuntimeError(
            f"the worker could not release {package.assignment}: {result.get('error', '')}"
        )
    if package.duedate:
        with Gradebook(config.CourseDirectory.db_url, COURSE_ID) as gb:
            gb.update_or_create_assignment(
                package.assignment, duedate=datetime.fromisoformat(package.duedate)
            )
    _PRIVATE[package.key] = (course, api)
    return course, api


def _rows(api, assignment: str, student: str) -> dict[str, dict]:
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(api.coursedir.db_url, COURSE_ID) as gb:
        submission = gb.find_submission(assignment, student)
        for notebook in submission.notebooks:
            rows[notebook.name] = {
                "grades": {g.name: g.auto_score for g in notebook.grades},
                "comments": {c.name: c.auto_comment for c in notebook.comments},
                "late_submission_penalty": notebook.late_submission_penalty,
            }
        gb.remove_submission(assignment, student)  # the private gradebook stays small
    return rows


def grade_submission(package: AssignmentPackage, submission: Submission) -> GradedSubmission:
    """Autograde one submission in this worker's private course (see the module docstring)."""
    allow_unsafe_grading(not package.sandboxed)
    require_sandbox()
    os.environ.update(Limits(memory_mb=package.memory_mb or DEFAULT_MEMORY_MB).to_environment())
    course, api = _private_course(package)
    assignment, student = package.assignment, submission.student
    submitted = course.step_dir("submitted", student, assignment)
    autograded = course.step_dir("autograded", student, assignment)
    for folder in (submitted, autograded):
        shutil.rmtree(folder, ignore_errors=True)
    write_tree(submitted, submission.files)
    try:
        started = time.perf_counter()
        result = api.autograde(assignment, student, force=True, create=True)
        seconds = time.perf_counter() - started
        if not result["success"]:
            # the log holds the traceback of the cause; "error" often only nbgrader's summary
            error = "\n".join(filter(None, [result.get("log"), result.get("error")])) or "?"
            return GradedSubmission(student, False, seconds, error=error)
        notes = []
        for name in course.notebook_names(assignment):
            notes += execution_notes(autograded / f"{name}.ipynb")
        return GradedSubmission(
            student,
            True,
            seconds,
            notebooks=_rows(api, assignment, student),
            files=read_tree(autograded),
            notes=notes,
        )
    finally:
        for folder in (submitted.parent, autograded.parent):
            shutil.rmtree(folder, ignore_errors=True)
