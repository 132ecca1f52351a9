"""Collecting submissions into nbgrader's ``submitted/<student>/<assignment>/`` layout.

Two sources are understood:

- a folder, either ``<student>/<anything>.ipynb`` (one sub-folder per student, as a shared
  drive gives) or flat files named per student;
- a zip file of flat per-student files, as an LMS exports it. Canvas names them
  ``<student>_<userid>_<submissionid>_<original name>.ipynb`` (``_LATE`` after the student
  when late); other names are read by ``--pattern``.

A student's notebook is stored under the assignment's notebook name (what nbgrader
grades), with a ``timestamp.txt`` from the file's modification time (or the zip entry's),
written atomically. When a student has several notebooks the newest wins and the others are
reported. Re-collecting the same source gives the same files.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from cvcourse.fileio import atomic_path
from grader.pipeline.course import Course, CourseError

# Canvas: name[_LATE]_userid_submissionid_original.ipynb; else the file's stem.
DEFAULT_PATTERN = r"^(?P<student>[^_/]+?)(?:_LATE)?_\d+_\d+_.*\.ipynb$|^(?P<plain>[^/]+)\.ipynb$"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class _Found:
    student: str
    origin: str
    timestamp: dt.datetime
    read: object  # () -> bytes


@dataclass
class CollectResult:
    """Students collected, and what was skipped or replaced (one line each)."""

    students: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _student_of(name: str, pattern: re.Pattern) -> str | None:
    match = pattern.match(name)
    if not match:
        return None
    groups = {k: v for k, v in match.groupdict().items() if v}
    student = groups.get("student") or groups.get("plain")
    if not student:
        return None
    return student.strip().lower()


def _from_folder(source: Path, pattern: re.Pattern) -> tuple[list[_Found], list[str]]:
    found, notes = [], []
    for path in sorted(source.rglob("*.ipynb")):
        relative = path.relative_to(source)
        if ".ipynb_checkpoints" in relative.parts:
            continue
        if len(relative.parts) > 1:
            student = relative.parts[0].strip().lower()
        else:
            student = _student_of(path.name, pattern)
        if student is None:
            notes.append(f"skipped {relative}: no student id in its name")
            continue
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        found.append(_Found(student, str(relative), stamp, path.read_bytes))
    return found, notes


def _from_zip(source: Path, pattern: re.Pattern) -> tuple[list[_Found], list[str]]:
    found, notes = [], []
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise CourseError(f"{source} is not a readable zip file: {exc}") from None
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or not name.endswith(".ipynb") or "__MACOSX" in name:
                continue
            parts = Path(name).parts
            student = (
                parts[0].strip().lower() if len(parts) > 1 else _student_of(parts[-1], pattern)
            )
            if student is None:
                notes.append(f"skipped {name}: no student id in its name")
                continue
            stamp = dt.datetime(*info.date_time, tzinfo=dt.UTC)
            data = archive.read(info)
            found.append(_Found(student, name, stamp, lambda data=data: data))
    return found, notes


def collect(
    course: Course, assignment: str, source: str | Path, *, pattern: str = DEFAULT_PATTERN
) -> CollectResult:
    """Copy every student's notebook for ``assignment`` from ``source`` into submitted/."""
    course.check_assignment(assignment)
    names = course.notebook_names(assignment)
    if len(names) != 1:
        raise CourseError(f"{assignment} has {len(names)} notebooks; collect expects one")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise CourseError(f"--pattern is not a valid regular expression: {exc}") from None
    source = Path(source).expanduser()
    if source.is_dir():
        found, notes = _from_folder(source, regex)
    elif source.is_file() and source.suffix == ".zip":
        found, notes = _from_zip(source, regex)
    else:
        raise CourseError(f"{source} is neither a folder nor a .zip file of submissions")

    newest: dict[str, _Found] = {}
    for item in found:
        if not _STUDENT_ID.match(item.student):
            notes.append(f"skipped {item.origin}: {item.student!r} is not a usable student id")
            continue
        kept = newest.get(item.student)
        if kept is None or item.timestamp > kept.timestamp:
            if kept is not None:
                notes.append(f"{item.student}: took {item.origin}, newer than {kept.origin}")
            newest[item.student] = item
        else:
            notes.append(f"{item.student}: took {kept.origin}, newer than {item.origin}")

    result = CollectResult(notes=notes)
    for student in sorted(newest):
        item = newest[student]
        folder = course.step_dir("submitted", student, assignment)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / f"{names[0]}.ipynb") as tmp:
            Path(tmp).write_bytes(item.read())
        with atomic_path(folder / "timestamp.txt") as tmp:
            Path(tmp).write_text(item.timestamp.strftime(TIMESTAMP_FORMAT))
        result.students.append(student)
    if not result.students:
        raise CourseError(f"no notebooks found in {source}")
    return result
