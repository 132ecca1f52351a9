"""Scores out of nbgrader's gradebook, one row per graded cell, with the grader's message.

nbgrader keeps a score per graded cell per submission (``nbgrader.api.Gradebook``); its own
``export`` keeps only totals. :func:`cell_scores` reads every cell's score and adds the
first line of the cell's error output in the autograded notebook (the check's diagnosis),
which is what the export and the report are built from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nbformat

from grader.course import Course
from grader.notebooks import grade_id


@dataclass(frozen=True)
class CellScore:
    """One graded cell of one student's submission.

    ``score`` is None when nbgrader has no score (the notebook never ran: see the
    submission's problems). ``message`` is the first line of the cell's error, "" if none.
    """

    assignment: str
    student: str
    notebook: str
    cell: str
    score: float | None
    max_score: float
    message: str = ""

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


def cell_scores(course: Course, assignments: list[str] | None = None) -> list[CellScore]:
    """Every graded cell of every autograded submission, ordered by assignment, student and
    the cell's position in the notebook."""
    from nbgrader.api import Gradebook, MissingEntry

    if not course.gradebook.exists():
        return []
    wanted = assignments or course.assignments()
    rows: list[CellScore] = []
    with Gradebook(f"sqlite:///{course.gradebook}", "cvcourse") as gb:
        known = {a.name for a in gb.assignments}
        for assignment in wanted:
            if assignment not in known:
                continue
            for student in course.students(assignment):
                try:
                    submission = gb.find_submission(assignment, student)
                except MissingEntry:
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
