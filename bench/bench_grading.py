"""How long grading takes: seconds per submission per assignment, and the whole class
with ``--jobs 1`` and ``--jobs 2``, and what the sandbox itself costs.

It grades the simulated class of ``make demo`` (``grader.term.simulate``) in a scratch copy of
the course, three times: one worker, two workers, then one worker without the sandbox
(``--unsafe-no-sandbox``, for the sandbox's own cost). A submission's seconds are
nbgrader's autograde call (kernel start in its sandbox, every cell with the judge grading
the test cells, the gradebook writes); the class's seconds are wall time including the
workers' start (each worker imports torch once, for the judge).

    python bench/bench_grading.py [--out artifacts/bench-grading] [ASSIGNMENT ...]

With ``--students N`` it grades a synthetic class of N submissions of one assignment
(default a3_conv_pool) instead: the simulated class's patterns (the full solution, the
blank notebook, each planted mistake) dealt round-robin to N students with names of their
own and a line of their own in the first solution cell, so that no two files are the same.
Each ``--run`` grades the whole class from scratch (``jobs1``, ``jobs2``, ``local2``: a
Dask LocalCluster of 2 workers, or a scheduler address ``tcp://host:8786``) and prints the
wall time, seconds per submission, the head's own time (writing each result into the
gradebook and course/) and whether every grade is the one the pattern must get and the
CSV is byte for byte that of the first run.

    python bench/bench_grading.py --students 300 --run jobs1 --run jobs2 --run local2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

from tabulate import tabulate

from grader.pipeline.autograde import autograde
from grader.pipeline.course import Course, allow_unsafe_grading, require_sandbox
from grader.pipeline.export import write_grades_csv
from grader.pipeline.gradebook import cell_scores
from grader.pipeline.quiet import quiet_nbgrader
from grader.pipeline.steps import release
from grader.term.run import REPO, scratch_course
from grader.term.simulate import submit_class, submit_synthetic_class


def _grade_class(course: Course, assignment: str, run: str, out: Path) -> dict:
    # One run from scratch: no record, no gradebook rows, no autograded files left.
    for step in ("autograded", "grading"):
        shutil.rmtree(course.root / step, ignore_errors=True)
    course.gradebook.unlink(missing_ok=True)
    options = {"jobs": 1}
    if run.startswith("jobs"):
        options["jobs"] = int(run[4:])
    elif run.startswith("local"):
        options.update(jobs=int(run[5:]), cluster="local")
    else:
        options["cluster"] = run
    started = time.perf_counter()
    records = autograde(course, assignment, force=True, progress=True, **options)
    wall = time.perf_counter() - started
    csv = write_grades_csv(cell_scores(course, [assignment]), out / f"grades-{run[:40]}.csv")
    return {"wall": wall, "records": records, "csv": csv.read_bytes()}


def students_main(args) -> int:
    course = scratch_course(args.out)
    assignment = (args.assignments or ["a3_conv_pool"])[0]
    release(course, [assignment])
    made = submit_synthetic_class(course, assignment, args.students)
    expected = {(s.student, c): p for s in made for c, p in s.expected.items()}
    runs = args.run or ["jobs1", "jobs2", "local2"]
    n = len(made)
    print(f"{assignment}: {n} synthetic submissions, runs {', '.join(runs)}")
    rows, first_csv = [], None
    for run in runs:
        result = _grade_class(course, assignment, run, args.out)
        records = result["records"]
        scores = {(s.student, s.cell): s.score for s in cell_scores(course, [assignment])}
        wrong = sum(scores.get(k) != v for k, v in expected.items())
        first_csv = first_csv if first_csv is not None else result["csv"]
        head = sum(r.head_seconds for r in records)
        rows.append(
            (
                run,
                result["wall"],
                result["wall"] / n,
                statistics.median(r.seconds for r in records),
                head / n,
                100 * head / result["wall"],
                sum(not r.success for r in records),
                wrong,
                result["csv"] == first_csv,
            )
        )
    header = ["run", "wall s", "s/sub", "worker s/sub (median)", "head s/sub", "head %"]
    header += ["ungraded", "wrong", "same CSV"]
    cells = [
        [run, f"{wall:.1f}", f"{per:.2f}", f"{worker:.2f}", f"{head:.3f}", f"{share:.2f}%"]
        + [str(ungraded), str(wrong), "yes" if same else "NO"]
        for run, wall, per, worker, head, share, ungraded, wrong, same in rows
    ]
    print(_table(header, cells))
    return 0


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A text table: the first column is a name, the others numbers (right-aligned)."""
    align = ["left"] + ["right"] * (len(header) - 1)
    return tabulate(rows, headers=header, tablefmt="simple", colalign=align, disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "bench-grading")
    parser.add_argument("--students", type=int, help="grade a synthetic class of this size")
    parser.add_argument(
        "--run",
        action="append",
        help="with --students: jobsN, localN (Dask LocalCluster of N) or a scheduler "
        "address; repeatable (default: jobs1, jobs2, local2)",
    )
    args = parser.parse_args(argv)
    quiet_nbgrader()
    require_sandbox()
    if args.students is not None:
        return students_main(args)
    course = scratch_course(args.out)
    assignments = args.assignments or course.assignments()
    release(course, assignments)
    rows = []
    totals = {1: 0.0, 2: 0.0}
    for assignment in assignments:
        count = len(submit_class(course, assignment))
        row = [assignment, count]
        for jobs in (1, 2):
            started = time.perf_counter()
            records = autograde(course, assignment, jobs=jobs, progress=False, force=True)
            wall = time.perf_counter() - started
            totals[jobs] += wall
            row += [statistics.median(r.seconds for r in records), wall]
        allow_unsafe_grading(True)
        try:
            records = autograde(course, assignment, jobs=1, progress=False, force=True)
        finally:
            allow_unsafe_grading(False)
        row.append(statistics.median(r.seconds for r in records))
        rows.append(row)

    header = ["assignment", "subs", "s/sub (1 job)", "class, 1 job", "s/sub (2 jobs)"]
    header += ["class, 2 jobs", "speed-up", "s/sub, no sandbox"]
    cells = [
        [name, str(count), f"{per1:.1f}", f"{wall1:.1f}", f"{per2:.1f}", f"{wall2:.1f}"]
        + [f"{wall1 / wall2:.2f}x", f"{bare:.1f}"]
        for name, count, per1, wall1, per2, wall2, bare in rows
    ]
    subs = sum(r[1] for r in rows)
    cells.append(
        ["whole class", str(subs), "", f"{totals[1]:.1f}", "", f"{totals[2]:.1f}"]
        + [f"{totals[1] / totals[2]:.2f}x", ""]
    )
    print(_table(header, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
