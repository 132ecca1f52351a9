"""A whole term on the embedded data: what ``make demo`` runs.

In a scratch copy of the course (``artifacts/term/course``: the real ``course/`` is never
touched) it releases the four assignments, submits a simulated class for each
(``grader.term.simulate``), autogrades it with ``--jobs`` workers, writes nbgrader's feedback,
``grades.csv`` and the report, and prints a per-student, per-part table. It then checks
that every simulated student got exactly the expected grades and that each planted
mistake's feedback names the mistake; it exits 1 if any did not.

    python -m grader.term [--jobs 2] [--out artifacts/term] [ASSIGNMENT ...]
"""

from __future__ import annotations

import argparse
import html
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from grader.pipeline.autograde import autograde
from grader.pipeline.course import Course
from grader.pipeline.gradebook import cell_scores
from grader.pipeline.quiet import quiet_nbgrader
from grader.pipeline.steps import feedback, notes_by_submission, release
from grader.term.simulate import SimulatedStudent, submit_class

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Finding:
    """A simulated student whose grade or feedback was not what it must be."""

    assignment: str
    student: str
    problem: str


def scratch_course(out: Path, source: Path = REPO / "course") -> Course:
    """A fresh copy of the course's configuration and assignments under ``out/course``."""
    root = out / "course"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copy(source / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(
        source / "assignments",
        root / "assignments",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    return Course(root)


def _feedback_text(course: Course, assignment: str, student: str) -> str:
    folder = course.root / "feedback" / student / assignment
    return "".join(html.unescape(p.read_text()) for p in sorted(folder.glob("*.html")))


def verify(course: Course, assignment: str, students: list[SimulatedStudent]) -> list[Finding]:
    """Compare the gradebook and the feedback with what each simulated student must get."""
    scores = {(s.student, s.cell): s.score for s in cell_scores(course, [assignment])}
    findings = []
    for student in students:
        wrong = []
        for cell_id, expected in student.expected.items():
            got = scores.get((student.student, cell_id))
            if got is None or abs(got - expected) > 1e-9:
                wrong.append(f"{cell_id}: got {got}, expected {expected:g}")
        if wrong:
            findings.append(Finding(assignment, student.student, "; ".join(wrong)))
        if student.mistake is not None:
            text = _feedback_text(course, assignment, student.student)
            if student.mistake.diagnosis not in text:
                findings.append(
                    Finding(
                        assignment,
                        student.student,
                        f"feedback does not say {student.mistake.diagnosis!r}",
                    )
                )
    return findings


def run_term(out: Path, assignments: list[str] | None = None, jobs: int = 2) -> list[Finding]:
    """Run the term into ``out``; returns what did not come out as expected (empty: all did)."""
    from grader.pipeline.export import part_table, score_table, write_grades_csv
    from grader.pipeline.report import write_report

    course = scratch_course(out)
    assignments = assignments or course.assignments()
    release(course, assignments)
    findings: list[Finding] = []
    timings = []
    for assignment in assignments:
        students = submit_class(course, assignment)
        started = time.perf_counter()
        autograde(course, assignment, jobs=jobs)
        timings.append((assignment, len(students), time.perf_counter() - started))
        feedback(course, assignment)
        findings += verify(course, assignment, students)

    scores = cell_scores(course, assignments)
    grades = write_grades_csv(scores, out / "grades.csv")
    report = write_report(scores, notes_by_submission(course), out / "report")
    for assignment in assignments:
        print(f"\n== {assignment} ==")
        print(part_table(scores, assignment))
    print("\n== the term ==")
    print(score_table(scores))
    print()
    for assignment, count, seconds in timings:
        print(f"{assignment}: {count} submissions graded in {seconds:.1f} s with --jobs {jobs}")
    print(f"grades:   {grades}\nreport:   {report}\nfeedback: {course.root / 'feedback'}")
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.term", description=__doc__)
    parser.add_argument("assignments", nargs="*", help="default: all four")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "term")
    args = parser.parse_args(argv)
    quiet_nbgrader()
    findings = run_term(args.out, args.assignments or None, args.jobs)
    if findings:
        print(f"\n{len(findings)} simulated submissions were NOT graded as expected:")
        for finding in findings:
            print(f"  {finding.assignment}/{finding.student}: {finding.problem}")
        return 1
    print("\nEvery simulated submission got exactly its expected grades, and every planted")
    print("mistake lost only its own part(s), with its diagnosis in the feedback.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
