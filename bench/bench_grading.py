"""How long grading takes: seconds per submission per assignment, and the whole class
with ``--jobs 1`` and ``--jobs 2``, and what the sandbox itself costs.

It grades the simulated class of ``make demo`` (``grader.simulate``) in a scratch copy of
the course, three times: one worker, two workers, then one worker without the sandbox
(``--unsafe-no-sandbox``, for the sandbox's own cost). A submission's seconds are
nbgrader's autograde call (kernel start in its sandbox, every cell with the judge grading
the test cells, the gradebook writes); the class's seconds are wall time including the
workers' start (each worker imports torch once, for the judge).

    python bench/bench_grading.py [--out artifacts/bench-grading] [ASSIGNMENT ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from grader.autograde import autograde
from grader.cli import quiet_nbgrader, release
from grader.course import allow_unsafe_grading, require_sandbox
from grader.simulate import submit_class
from grader.term import REPO, scratch_course


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "bench-grading")
    args = parser.parse_args(argv)
    quiet_nbgrader()
    require_sandbox()
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
            records = autograde(course, assignment, jobs=jobs, progress=False)
            wall = time.perf_counter() - started
            totals[jobs] += wall
            row += [statistics.median(r.seconds for r in records), wall]
        allow_unsafe_grading(True)
        try:
            records = autograde(course, assignment, jobs=1, progress=False)
        finally:
            allow_unsafe_grading(False)
        row.append(statistics.median(r.seconds for r in records))
        rows.append(row)

    header = f"{'assignment':<14}{'subs':>5}{'s/sub (1 job)':>15}{'class, 1 job':>14}"
    header += f"{'s/sub (2 jobs)':>16}{'class, 2 jobs':>15}{'speed-up':>10}"
    header += f"{'s/sub, no sandbox':>19}"
    print(header)
    for name, count, per1, wall1, per2, wall2, bare in rows:
        print(
            f"{name:<14}{count:>5}{per1:>15.1f}{wall1:>14.1f}{per2:>16.1f}{wall2:>15.1f}"
            f"{wall1 / wall2:>9.2f}x{bare:>19.1f}"
        )
    subs = sum(r[1] for r in rows)
    print(
        f"{'whole class':<14}{subs:>5}{'':>15}{totals[1]:>14.1f}{'':>16}{totals[2]:>15.1f}"
        f"{totals[1] / totals[2]:>9.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
