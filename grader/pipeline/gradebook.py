"""Scores out of nbgrader's gradebook, one row per graded cell, with the grader's message.

nbgrader keeps a score per graded cell per submission (``nbgrader.api.Gradebook``); its own
``export`` keeps only totals. :func:`cell_scores` reads every cell's score and adds the
first line of the cell's error output in the autograded notebook (the check's diagnosis),
which is what the export and the report are built from.

A submission that was collected but could not be graded (its grading record says so: the
grading worker died twice, nbgrader failed) or that has no grades yet gives rows too, every
score None and ``ungraded`` saying why, so that it is listed as ungraded and never counted
as 0 (the gradebook may still hold an earlier run's scores for it: they are not used).

:func:`save_autograded` is the one place that writes a graded submission into the course:
the autograded files and the gradebook rows a worker returned (``grader.pipeline.worktask``). Only
the head process calls it; workers never open ``gradebook.db``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat

from grader.notebooks import grade_id
from grader.pipeline.course import Course
from grader.pipeline.quiet import quiet_nbgrader
from grader.pipeline.worktask import GradedSubmission, write_tree


@dataclass(frozen=True)
class CellScore:
    """One graded cell of one student's submission.

    ``score`` is None when nbgrader has no score (the notebook never ran: see the
    submission's problems). ``message`` is the first line of the cell's error, "" if none.
    ``ungraded`` is "" for a graded submission, else why the whole submission has no grade
    (every one of its rows then has score None and the same reason).
    """

    assignment: str
    student: str
    notebook: str
    cell: str
    score: float | None
    max_score: float
    message: str = ""
    ungraded: str = ""

    @property
    def passed(self) -> bool:
        return self.score is not None and self.score >= self.max_score > 0


def _messages(path: str) -> dict[str, str]:
    # grade_id -> first line of the cell's error output (the GradingFailure's first line).
    if not os.path.exists(path):
        return {}
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return {}
    found = {}
    for cell in nb.cells:
        name = grade_id(cell)
        if name is None or cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
                found[name] = text.strip().splitlines()[0] if text.strip() else "error"
                break
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found[name] = "wrote to stderr (nbgrader scores such a cell zero)"
                break
    return found


def _ungraded_reason(record) -> str:
    # Why the grading record says the submission was not graded, in one line.
    for note in reversed(record.notes):
        if "not graded" in note or "could not grade" in note:
            return note
    return "nbgrader could not grade this submission"


def _ungraded_rows(gb, assignment: str, student: str, reason: str) -> list[CellScore]:
    rows = []
    for notebook in gb.find_assignment(assignment).notebooks:
        for cell in notebook.grade_cells:
            rows.append(
                CellScore(
                    assignment=assignment,
                    student=student,
                    notebook=notebook.name,
                    cell=cell.name,
                    score=None,
                    max_score=float(cell.max_score),
                    ungraded=reason,
                )
            )
    return rows


def cell_scores(course: Course, assignments: list[str] | None = None) -> list[CellScore]:
    """Every graded cell of every submission in ``submitted/`` of an assignment in the
    gradebook, ordered by assignment, student and the cell's position in the notebook;
    ungraded submissions (see the module docstring) give rows with ``ungraded`` set."""
    from nbgrader.api import Gradebook, MissingEntry

    from grader.pipeline.autograde import GradingRecord

    if not course.gradebook.exists():
        return []
    wanted = assignments or course.assignments()
    rows: list[CellScore] = []
    with Gradebook(f"sqlite:///{course.gradebook}", "cvcourse") as gb:
        known = {a.name for a in gb.assignments}
        for assignment in wanted:
            if assignment not in known:
                continue
            records = {r.student: r for r in GradingRecord.load_all(course, assignment)}
            for student in course.students(assignment):
                record = records.get(student)
                if record is not None and not record.success:
                    rows += _ungraded_rows(gb, assignment, student, _ungraded_reason(record))
                    continue
                try:
                    submission = gb.find_submission(assignment, student)
                except MissingEntry:
                    reason = (
                        "not autograded yet" if record is None else "no grades in the gradebook"
                    )
                    rows += _ungraded_rows(gb, assignment, student, reason)
                    continue
                for notebook in submission.notebooks:
                    path = course.step_dir("autograded", student, assignment) / (
                        notebook.name + ".ipynb"
                    )
                    messages = _messages(os.fspath(path))
                    order = {c.name: i for i, c in enumerate(notebook.notebook.grade_cells)}
                    grades = sorted(notebook.grades, key=lambda g: order.get(g.name, 0))
                    for grade in grades:
                        rows.append(
                            CellScore(
                                assignment=assignment,
                                student=student,
                                notebook=notebook.name,
                                cell=grade.name,
                                score=None if grade.score is None else float(grade.score),
                                max_score=float(grade.max_score),
                                message=messages.get(grade.name, ""),
                            )
                        )
    return rows


def _replace_folder(folder: Path, files: dict[str, bytes]) -> None:
    # Build the new folder beside the old one, then swap: a reader never sees half of it.
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write_tree(fresh, files)
        os.chmod(fresh, 0o755)
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(fresh, folder)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def save_autograded(
    course: Course,
    gradebook,
    assignment: str,
    graded: GradedSubmission,
    timestamp: datetime | None,
) -> None:
    """Write what a worker returned for one submission into the course (head only).

    A graded submission's autograded folder replaces ``autograded/<student>/<assignment>``
    and its rows go into the gradebook as nbgrader's ``SaveAutoGrades`` and
    ``AssignLatePenalties`` would write them (auto scores, auto comments, late penalties;
    a manual score is kept and the grade marked for review), in one transaction. A
    submission that could not be graded only loses its stale autograded folder.

    ``gradebook`` is an open ``nbgrader.api.Gradebook``, kept for the whole run: a fresh
    one per submission made SQLAlchemy compile every statement again (40 ms of the head's
    time per submission instead of 17). A failed write is rolled back before it raises.
    """
    folder = course.step_dir("autograded", graded.student, assignment)
    if not graded.success:
        shutil.rmtree(folder, ignore_errors=True)
        return
    _replace_folder(folder, graded.files)
    gb = gradebook
    with warnings.catch_warnings():
        quiet_nbgrader()
        try:
            gb.update_or_create_student(graded.student)
            if timestamp:
                gb.update_or_create_submission(assignment, graded.student, timestamp=timestamp)
            else:
                gb.update_or_create_submission(assignment, graded.student)
            for name, rows in graded.notebooks.items():
                notebook = gb.find_submission_notebook(name, assignment, graded.student)
                for grade in notebook.grades:
                    grade.auto_score = rows["grades"].get(grade.name)
                    grade.needs_manual_grade = (
                        grade.manual_score is not None or grade.auto_score is None
                    )
                for comment in notebook.comments:
                    comment.auto_comment = rows["comments"].get(comment.name)
                notebook.late_submission_penalty = rows["late_submission_penalty"]
            gb.db.commit()
        except BaseException:
            gb.db.rollback()  # the session stays usable for the next submission
            raise
