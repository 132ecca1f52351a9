"""A simulated class: submissions whose right grades are known, to prove the grader.

For each assignment, built from its source notebook and its released (student) version:

- ``solution``: the released notebook with the instructor's solution cells pasted in, as a
  student who got everything right would submit it: full marks;
- ``blank``: the released notebook untouched: zero;
- one student per planted mistake (``grader.term.planted``): the solution with one classic
  mistake edited into one solution cell: full marks except the test cells it ``loses``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat

from grader.notebooks import cell, grade_id, load, nbgrader_meta, points, with_mistake
from grader.pipeline.course import Course
from grader.term.planted import PlantedMistake, mistakes_for


@dataclass
class SimulatedStudent:
    """One submission of the simulated class and the grades it must get."""

    student: str
    notebook: nbformat.NotebookNode
    expected: dict[str, float]  # test cell grade_id -> points
    mistake: PlantedMistake | None = None
    lost: list[str] = field(default_factory=list)


def student_version(source_nb, released_nb):
    """The released notebook with every solution cell's code taken from the source."""
    submission = copy.deepcopy(released_nb)
    for target in submission.cells:
        if nbgrader_meta(target).get("solution"):
            target.source = cell(source_nb, grade_id(target)).source
    return submission


def simulated_class(course: Course, assignment: str) -> list[SimulatedStudent]:
    """The simulated class of ``assignment`` (its release must exist: ``cvgrade release``)."""
    (name,) = course.notebook_names(assignment)
    source = load(course.source_root / assignment / f"{name}.ipynb")
    released = load(course.step_dir("release", "", assignment) / f"{name}.ipynb")
    full = points(source)
    solution = student_version(source, released)
    students = [
        SimulatedStudent("solution", solution, dict(full)),
        SimulatedStudent(
            "blank", copy.deepcopy(released), dict.fromkeys(full, 0.0), None, list(full)
        ),
    ]
    for mistake in mistakes_for(assignment):
        unknown = [c for c in mistake.loses if c not in full]
        if unknown:
            raise ValueError(f"planted mistake {mistake.student!r} loses unknown cells {unknown}")
        expected = {c: (0.0 if c in mistake.loses else p) for c, p in full.items()}
        students.append(
            SimulatedStudent(
                mistake.student,
                with_mistake(solution, mistake),
                expected,
                mistake,
                list(mistake.loses),
            )
        )
    return students


def submit_class(course: Course, assignment: str) -> list[SimulatedStudent]:
    """Write the simulated class into ``submitted/`` and return it."""
    students = simulated_class(course, assignment)
    (name,) = course.notebook_names(assignment)
    for student in students:
        folder = course.step_dir("submitted", student.student, assignment)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(student.notebook, folder / f"{name}.ipynb")
        (folder / "timestamp.txt").write_text("2026-11-23 12:00:00.000000 UTC")
    return students


def submit_synthetic_class(course: Course, assignment: str, size: int) -> list[SimulatedStudent]:
    """A class of ``size`` submissions dealt from the simulated class's patterns (the
    solution, the blank notebook, each planted mistake) round-robin, written into
    ``submitted/``; returned with the grades each must get.

    Each student gets a name of their own (``<pattern>_<number>``) and a comment line of
    their own at the top of the first solution cell, so no two files are the same.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    patterns = simulated_class(course, assignment)
    (name,) = course.notebook_names(assignment)
    made = []
    for number in range(size):
        pattern = patterns[number % len(patterns)]
        nb = copy.deepcopy(pattern.notebook)
        first = next(c for c in nb.cells if nbgrader_meta(c).get("solution"))
        first.source = f"# submission {number} ({pattern.student})\n" + first.source
        student = f"{pattern.student.replace('-', '_')}_{number:05d}"
        folder = course.step_dir("submitted", student, assignment)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
        (folder / "timestamp.txt").write_text("2026-11-23 12:00:00.000000 UTC")
        made.append(
            SimulatedStudent(
                student, nb, dict(pattern.expected), pattern.mistake, list(pattern.lost)
            )
        )
    return made
