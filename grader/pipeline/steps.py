"""The steps of the grading flow as functions: what ``cvgrade`` and the simulated term run.

Each step takes the :class:`~grader.pipeline.course.Course`, does its work through nbgrader
or the modules beside this one, prints one line per thing done (a TA reads them) and
returns what it wrote. Every step can be run again and gives the same result.
"""

from __future__ import annotations

from pathlib import Path

from grader.pipeline.course import Course, CourseError


def generate(course: Course, assignment: str, api=None) -> Path:
    """nbgrader's student version of ``assignment`` (and its gradebook entries); its folder.

    The one place that calls ``generate_assignment``: ``release`` and autograde's
    ``ensure_released`` both come here. ``api``: the course's ``NbGraderAPI`` if the caller
    has one open.
    """
    course.check_assignment(assignment)
    result = (api or course.api()).generate_assignment(assignment, force=True)
    if not result["success"]:
        raise CourseError(f"nbgrader could not release {assignment}:\n{result.get('error', '')}")
    return course.step_dir("release", "", assignment)


def release(course: Course, assignments: list[str], exchange=None) -> list[Path]:
    """Generate the student version of each assignment (all by default); their folders.

    With an ``exchange`` (:class:`grader.pipeline.exchange.Exchange`), also put each one out
    for students to fetch.
    """
    from grader.pipeline.exchange import release_to_exchange

    folders = []
    for assignment in assignments or course.assignments():
        folder = generate(course, assignment)
        print(f"released {assignment} -> {folder}")
        if exchange is not None:
            outbound = release_to_exchange(course, assignment, exchange)
            print(f"released {assignment} to the exchange -> {outbound}")
        folders.append(folder)
    return folders


def feedback(course: Course, assignment: str, exchange=None) -> Path:
    """nbgrader's HTML feedback for every autograded submission of ``assignment``; with an
    ``exchange``, also returned to the students through it."""
    from grader.pipeline.exchange import release_feedback

    course.check_assignment(assignment)
    result = course.api().generate_feedback(assignment)
    if not result["success"]:
        raise CourseError(f"nbgrader could not write feedback:\n{result.get('error')}")
    folder = course.root / "feedback"
    count = len(list(folder.glob(f"*/{assignment}/*.html")))
    print(f"feedback for {assignment}: {count} HTML files under {folder}")
    if exchange is not None:
        released = release_feedback(course, assignment, exchange)
        print(f"feedback for {assignment} returned to {released} submissions via the exchange")
    return folder


def notes_by_submission(course: Course) -> dict[tuple[str, str], list[str]]:
    """``(assignment, student) -> notes`` from every saved grading record of the course."""
    from grader.pipeline.autograde import GradingRecord
    from grader.pipeline.exchange import load_flags

    notes: dict[tuple[str, str], list[str]] = {}
    for assignment in course.assignments():
        for student, flags in load_flags(course, assignment).items():
            notes.setdefault((assignment, student), []).extend(flags)
        for record in GradingRecord.load_all(course, assignment):
            notes.setdefault((assignment, record.student), []).extend(record.notes)
    return notes


def export(course: Course, out: Path | None = None) -> Path:
    """``grades.csv`` (every part, every total) at ``out``, default ``reports/grades.csv``."""
    from grader.pipeline.export import write_grades_csv
    from grader.pipeline.gradebook import cell_scores

    path = write_grades_csv(cell_scores(course), out or course.root / "reports" / "grades.csv")
    print(f"grades -> {path}")
    return path


def report(course: Course, out: Path | None = None) -> Path:
    """The grade report (pass rates, histogram, HTML summary) in ``out``, default ``reports/``."""
    from grader.pipeline.gradebook import cell_scores
    from grader.pipeline.report import write_report

    out = out or course.root / "reports"
    path = write_report(cell_scores(course), notes_by_submission(course), out)
    print(f"report -> {path}")
    return path
