"""Grades out of the pipeline: the CSV a TA uploads and the tables the terminal shows.

Everything here starts from the rows of :func:`grader.pipeline.gradebook.cell_scores` (one
:class:`~grader.pipeline.gradebook.CellScore` per graded cell per submission). :func:`collate` puts
them into assignments, cells and submissions once; the CSV, the terminal tables and the HTML
report (:mod:`grader.pipeline.report`) are all views of that, so they always agree.

Rules shared by every view:

- a score of ``None`` (nbgrader has no score: the notebook never ran) counts 0 in totals and
  is shown as an empty cell in the CSV and as ``-`` in tables;
- an ungraded submission (rows with ``ungraded`` set: the grading worker died, nbgrader
  failed) is never a 0: its cells and totals are empty in the CSV, its status column says
  ``ungraded``, the tables say ``ungraded``, and the report lists it apart from the
  statistics. A student with an ungraded assignment has no course total;
- a student with no submission for an assignment gets empty cells, and counts 0 towards the
  course total (the course maximum is the sum over every assignment);
- numbers are written without trailing noise: ``2``, ``1.5``, ``0.333333``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from cvcourse.fileio import atomic_path
from grader.pipeline.gradebook import CellScore

MAX_ROW = "(max)"
GRADED = "graded"
UNGRADED = "ungraded"

# Marks of the per-part table.
FULL = "✓"
ZERO = "✗"
NOT_GRADED = "-"


def format_score(value: float | None, digits: int = 6) -> str:
    """``value`` without trailing noise: ``"2"``, ``"1.5"``, ``"0.333333"``; ``""`` for None."""
    if value is None:
        return ""
    text = f"{round(float(value), digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def percent(score: float, maximum: float) -> float:
    """``score`` as a percentage of ``maximum`` (0 when nothing can be scored)."""
    return 100.0 * score / maximum if maximum > 0 else 0.0


@dataclass(frozen=True)
class Cell:
    """One graded cell of an assignment.

    ``label`` names it within the assignment: its grade id, or ``<notebook>/<grade id>`` when
    two notebooks of the assignment use the same grade id (nbgrader only requires them to be
    unique per notebook). ``short`` is the label without a leading ``test_``.
    """

    notebook: str
    name: str
    label: str
    short: str
    max_score: float

    @property
    def key(self) -> tuple[str, str]:
        return (self.notebook, self.name)


@dataclass
class Assignment:
    """An assignment's cells (in notebook order) and its submissions, by student."""

    name: str
    cells: list[Cell]
    submissions: dict[str, dict[tuple[str, str], CellScore]] = field(default_factory=dict)
    ungraded: dict[str, str] = field(default_factory=dict)  # student -> why

    @property
    def max_score(self) -> float:
        return sum(cell.max_score for cell in self.cells)

    @property
    def graded(self) -> list[str]:
        """Students whose submission was graded, sorted."""
        return sorted(s for s in self.submissions if s not in self.ungraded)

    def status(self, student: str) -> str:
        """``"graded"``, ``"ungraded"``, or ``""`` if the student did not submit."""
        if student not in self.submissions:
            return ""
        return UNGRADED if student in self.ungraded else GRADED

    def score(self, student: str, cell: Cell) -> float | None:
        """The student's score for ``cell``; None if not graded or not submitted."""
        row = self.submissions.get(student, {}).get(cell.key)
        return None if row is None else row.score

    def total(self, student: str) -> float | None:
        """The student's total for this assignment (None scores count 0); None if the student
        did not submit it or it is ungraded."""
        if student not in self.submissions or student in self.ungraded:
            return None
        return sum(self.score(student, cell) or 0.0 for cell in self.cells)


@dataclass
class Collated:
    """Scores arranged for output: assignments in order of first appearance, students sorted."""

    assignments: list[Assignment]
    students: list[str]

    @property
    def max_total(self) -> float:
        return sum(a.max_score for a in self.assignments)

    def total(self, student: str) -> float | None:
        """The student's course total; a missing assignment or a None score counts 0. None
        if one of the student's assignments is ungraded."""
        if any(student in a.ungraded for a in self.assignments):
            return None
        return sum(a.total(student) or 0.0 for a in self.assignments)

    def assignment(self, name: str) -> Assignment:
        for candidate in self.assignments:
            if candidate.name == name:
                return candidate
        known = ", ".join(a.name for a in self.assignments) or "none"
        raise ValueError(f"assignment {name!r} has no scores (assignments with scores: {known})")


def collate(scores: Iterable[CellScore]) -> Collated:
    """Arrange ``scores`` by assignment, cell and student; returns a :class:`Collated`.

    Cells keep the notebooks' order even when some submission lacks a cell: a cell first seen
    in a later submission is placed after the cell that precedes it there. A cell's maximum is
    the largest ``max_score`` seen for it. Raises ``ValueError`` on two rows for the same cell
    of the same submission (that would make every total silently wrong).
    """
    order: dict[str, list[tuple[str, str]]] = {}
    maxima: dict[tuple[str, tuple[str, str]], float] = {}
    submissions: dict[str, dict[str, dict[tuple[str, str], CellScore]]] = {}
    ungraded: dict[str, dict[str, str]] = {}
    previous: tuple[str, str, tuple[str, str] | None] | None = None
    for row in scores:
        if not isinstance(row, CellScore):
            raise TypeError(f"scores must hold CellScore rows, got {type(row).__name__}")
        key = (row.notebook, row.cell)
        cells = order.setdefault(row.assignment, [])
        rows = submissions.setdefault(row.assignment, {}).setdefault(row.student, {})
        if key in rows:
            raise ValueError(
                f"two scores for cell {row.cell!r} of notebook {row.notebook!r} in "
                f"{row.student}'s submission of {row.assignment}"
            )
        rows[key] = row
        if row.ungraded:
            ungraded.setdefault(row.assignment, {})[row.student] = row.ungraded
        if key not in cells:
            # A cell this submission has and earlier ones lacked: insert it after the cell
            # that precedes it here or, if it is the submission's first, before the first
            # known cell of its notebook, so that the notebook's order survives.
            if previous is not None and previous[:2] == (row.assignment, row.student):
                at = cells.index(previous[2]) + 1
            else:
                same = [i for i, (notebook, _) in enumerate(cells) if notebook == row.notebook]
                at = same[0] if same else len(cells)
            cells.insert(at, key)
        previous = (row.assignment, row.student, key)
        maxima[(row.assignment, key)] = max(
            maxima.get((row.assignment, key), -math.inf), float(row.max_score)
        )

    assignments = []
    for name, keys in order.items():
        names = [cell for _, cell in keys]
        labels = [
            f"{notebook}/{cell}" if names.count(cell) > 1 else cell for notebook, cell in keys
        ]
        shorts = [_short(label) for label in labels]
        shorts = [
            s if shorts.count(s) == 1 else label for s, label in zip(shorts, labels, strict=True)
        ]
        cells = [
            Cell(notebook, cell, label, short, maxima[(name, (notebook, cell))])
            for (notebook, cell), label, short in zip(keys, labels, shorts, strict=True)
        ]
        assignments.append(Assignment(name, cells, submissions[name], ungraded.get(name, {})))
    students = sorted({student for a in assignments for student in a.submissions})
    return Collated(assignments, students)


def _short(label: str) -> str:
    head, _, cell = label.rpartition("/")
    stripped = cell.removeprefix("test_") or cell
    return f"{head}/{stripped}" if head else stripped


def write_grades_csv(scores: Iterable[CellScore], path) -> Path:
    """Write the grades CSV at ``path`` (atomically); returns its path.

    Columns: ``student``; for each assignment (in order of first appearance) one column per
    graded cell, ``<assignment>/<cell>``, then ``<assignment>/total`` and
    ``<assignment>/status`` (``graded``, ``ungraded``, or empty if not submitted); then
    ``total``. The first data row, student ``(max)``, holds each column's maximum; then one
    row per student, sorted. Empty cells: never graded, not submitted, or the whole
    submission ungraded (then its total, and the student's course total, are empty too:
    an ungraded submission is never a 0). The same scores always give the same bytes.
    """
    grades = collate(scores)
    header = ["student"]
    maxima = [MAX_ROW]
    for assignment in grades.assignments:
        for cell in assignment.cells:
            header.append(f"{assignment.name}/{cell.label}")
            maxima.append(format_score(cell.max_score))
        header += [f"{assignment.name}/total", f"{assignment.name}/status"]
        maxima += [format_score(assignment.max_score), ""]
    header.append("total")
    maxima.append(format_score(grades.max_total))

    rows = [header, maxima]
    for student in grades.students:
        row = [student]
        for assignment in grades.assignments:
            row += [format_score(assignment.score(student, cell)) for cell in assignment.cells]
            row += [format_score(assignment.total(student)), assignment.status(student)]
        row.append(format_score(grades.total(student)))
        rows.append(row)

    path = Path(path)
    with atomic_path(path) as tmp:
        # newline="" lets the csv module write its own (RFC 4180) line endings.
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    return path


def _render(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    # The first `left` columns are names (left-aligned); the rest are numbers (right-aligned).
    # Cells are already text (``3.5/6``, ``✓``): tabulate must not parse them as numbers.
    align = ["left"] * left + ["right"] * (len(header) - left)
    return tabulate(rows, headers=header, tablefmt="simple", colalign=align, disable_numparse=True)


def _fraction(score: float | None, maximum: float) -> str:
    return NOT_GRADED if score is None else f"{format_score(score, 2)}/{format_score(maximum)}"


def score_table(scores: Iterable[CellScore]) -> str:
    """A plain-text table, one row per student (sorted): ``score/max`` per assignment (``-``
    where not submitted, ``ungraded`` where it could not be graded) and the course total
    (``ungraded`` if any assignment is); returns it as a string without a final newline."""
    grades = collate(scores)
    if not grades.assignments:
        return "nothing graded yet"
    header = ["student", *(a.name for a in grades.assignments), "total"]
    rows = [
        [
            student,
            *(
                UNGRADED if student in a.ungraded else _fraction(a.total(student), a.max_score)
                for a in grades.assignments
            ),
            UNGRADED
            if grades.total(student) is None
            else _fraction(grades.total(student), grades.max_total),
        ]
        for student in grades.students
    ]
    return _render(header, rows)


def part_mark(score: float | None, max_score: float) -> str:
    """One cell of the per-part table: ✓ full marks, ✗ zero, the score if partial, ``-`` if
    never graded."""
    if score is None:
        return NOT_GRADED
    if max_score > 0 and score >= max_score:
        return FULL
    if score == 0:
        return ZERO
    return format_score(score, 2)


def part_table(scores: Iterable[CellScore], assignment: str) -> str:
    """A plain-text table of one assignment: one row per student who submitted it, one column
    per graded cell (``test_`` stripped from the name) marked by :func:`part_mark`, and the
    total (``ungraded`` for a submission that could not be graded); returns it as a string
    without a final newline. Raises ``ValueError`` if the assignment has no scores."""
    graded = collate(scores).assignment(assignment)
    header = ["student", *(cell.short for cell in graded.cells), "total"]
    rows = [
        [
            student,
            *(part_mark(graded.score(student, cell), cell.max_score) for cell in graded.cells),
            UNGRADED
            if student in graded.ungraded
            else _fraction(graded.total(student), graded.max_score),
        ]
        for student in sorted(graded.submissions)
    ]
    return _render(header, rows)
