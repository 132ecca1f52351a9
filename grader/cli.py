"""``cvgrade``: the TA's command for the whole grading flow, on top of nbgrader.

    cvgrade release [ASSIGNMENT ...] [--exchange]
                                            student versions into course/release/ (and
                                            the hub's exchange, for students to fetch)
    cvgrade collect ASSIGNMENT SOURCE       a folder or LMS zip into course/submitted/
    cvgrade collect ASSIGNMENT --exchange   what students submitted through the hub, by
                                            the receipts the grader side took
    cvgrade receipts [--watch]              take receipts of new hub submissions (run as a
                                            hub service with --watch)
    cvgrade autograde ASSIGNMENT [--jobs N | --cluster ADDRESS [--resources GPU=1]]
                                            [--timeout S] [--memory-mb M] [--task-timeout S]
                                            [--student ID ...] [--force] [--unsafe-no-sandbox]
                                            grades what is not graded yet (--force: all)
    cvgrade feedback ASSIGNMENT [--release] nbgrader's HTML feedback into course/feedback/
                                            (and back to the students through the exchange)
    cvgrade export [--out FILE]             grades.csv: every part, every total
    cvgrade report [--out DIR]              pass rates, histogram, HTML summary
    cvgrade run ASSIGNMENT [SOURCE]         collect -> autograde -> feedback -> export -> report
    cvgrade release-lectures [LECTURE ...]  executed notebooks, HTML and slides for students
                                            offline pages; --single-file: one page each

Every step can be re-run and gives the same result. ``--course`` selects the course folder
(default: ./course, or the nearest folder upward with nbgrader_config.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.pipeline import steps
from grader.pipeline.course import Course, CourseError
from grader.pipeline.quiet import quiet_nbgrader

# One function per command, ``(course, args)``: the parser picks it (``set_defaults``).
# They parse nothing and decide nothing the steps do not: they call the step and print.


def _release(course: Course, args) -> None:
    steps.release(course, args.assignments, _exchange_of(course, args) if args.exchange else None)


def _collect(course: Course, args) -> None:
    if args.exchange == bool(args.source):
        raise CourseError("collect takes either a SOURCE or --exchange")
    if args.exchange:
        _collect_exchange(course, args.assignment, _exchange_of(course, args), args.on_behalf)
    else:
        _collect_source(course, args.assignment, args.source, args.pattern)


def _collect_source(course: Course, assignment: str, source: str, pattern: str | None) -> None:
    from grader.pipeline.collect import DEFAULT_PATTERN, collect

    result = collect(course, assignment, source, pattern=pattern or DEFAULT_PATTERN)
    print(f"collected {len(result.students)} submissions of {assignment} from {source}")
    for note in result.notes:
        print(f"  {note}")


def _collect_exchange(course: Course, assignment: str, exchange, on_behalf: list[str]) -> None:
    from grader.pipeline.exchange import collect_from_exchange

    result = collect_from_exchange(course, assignment, exchange, on_behalf=frozenset(on_behalf))
    print(f"collected {len(result.students)} submissions of {assignment} from {exchange.inbound}")
    for student, flags in sorted(result.flags.items()):
        for flag in flags:
            print(f"  FLAG {student}: {flag}")


def _receipts(course: Course, args) -> None:
    import signal

    from grader.pipeline.exchange import Receipts

    book = Receipts(course, _exchange_of(course, args))
    if not args.watch:
        taken = book.take()
        print(f"took {len(taken)} new receipts from {book.exchange.inbound}")
        return
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        book.watch(args.interval, stop=lambda: bool(stopping), log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        pass


def _autograde(course: Course, args) -> None:
    from grader.pipeline.autograde import autograde
    from grader.pipeline.course import UNSAFE_NOTE, allow_unsafe_grading, require_sandbox

    allow_unsafe_grading(args.unsafe_no_sandbox)
    require_sandbox()
    if args.unsafe_no_sandbox:
        print(f"cvgrade: WARNING: {UNSAFE_NOTE}", file=sys.stderr)
    records = autograde(
        course,
        args.assignment,
        args.student or None,
        jobs=args.jobs,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        force=args.force,
        cluster=args.cluster,
        resources=_resources(args.resources),
        task_timeout=args.task_timeout,
    )
    graded = sum(r.success for r in records)
    print(f"{graded} of {len(records)} submissions of {args.assignment} are graded")
    for record in records:
        for note in record.notes:
            print(f"  {record.student}: {note}")


def _resources(tags: list[str]) -> dict[str, float] | None:
    """``["GPU=1", ...]`` -> ``{"GPU": 1.0}``; ValueError naming a malformed tag."""
    found = {}
    for tag in tags or []:
        name, _, amount = tag.partition("=")
        try:
            found[name.strip()] = float(amount)
        except ValueError:
            raise ValueError(f"--resources takes NAME=AMOUNT (e.g. GPU=1), got {tag!r}") from None
        if not name.strip() or found[name.strip()] <= 0:
            raise ValueError(f"--resources takes NAME=AMOUNT with AMOUNT > 0, got {tag!r}")
    return found or None


def _feedback(course: Course, args) -> None:
    steps.feedback(course, args.assignment, _exchange_of(course, args) if args.release else None)


def _export(course: Course, args) -> None:
    steps.export(course, args.out)


def _report(course: Course, args) -> None:
    steps.report(course, args.out)


def _run(course: Course, args) -> None:
    course.check_assignment(args.assignment)
    if args.source:
        _collect_source(course, args.assignment, args.source, args.pattern)
    elif not course.students(args.assignment):
        raise CourseError(f"nothing in {course.root / 'submitted'}: give a SOURCE")
    _autograde(course, args)
    steps.feedback(course, args.assignment)
    steps.export(course, args.out / "grades.csv" if args.out else None)
    steps.report(course, args.out)


def _release_lectures(course: Course, args) -> None:
    from grader.lectures.assets import human
    from grader.lectures.release import assets_size, release_lectures

    released = release_lectures(
        course, args.lectures, args.out, timeout=args.timeout, single_file=args.single_file
    )
    for lecture in released:
        sizes = ", ".join(f"{name} {human(n)}" for name, n in lecture.sizes.items())
        print(f"released {lecture.html.stem} -> {lecture.html.parent}: {sizes}")
    if released and not args.single_file:
        shared = assets_size(released[0].html.parent)
        print(f"shared assets/ (MathJax, reveal.js, widget manager): {human(shared)}")


def _exchange_of(course: Course, args):
    from grader.pipeline.exchange import Exchange

    return Exchange.of(course, args.exchange_root)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cvgrade", description="Grade the cvcourse assignments with nbgrader."
    )
    parser.add_argument("--course", help="course folder (default: ./course or upward)")
    sub = parser.add_subparsers(dest="command", required=True)

    def exchange_root(p):
        p.add_argument(
            "--exchange-root",
            help="nbgrader exchange folder (default: the course config's Exchange.root, else "
            "/srv/nbgrader/exchange)",
        )

    p = sub.add_parser("release", help="generate the student versions")
    p.add_argument("assignments", nargs="*", help="default: every assignment")
    p.add_argument("--exchange", action="store_true", help="also release to the exchange")
    exchange_root(p)
    p.set_defaults(func=_release)

    p = sub.add_parser("collect", help="collect submissions from a folder, LMS zip or the hub")
    p.add_argument("assignment")
    p.add_argument("source", nargs="?", help="folder of notebooks, or a zip of per-student files")
    p.add_argument("--pattern", help="regex with a (?P<student>...) group for file names")
    p.add_argument(
        "--exchange", action="store_true", help="collect what was submitted through the hub"
    )
    p.add_argument(
        "--on-behalf",
        action="append",
        default=[],
        metavar="USER",
        help="a user allowed to submit under another name (a TA; repeatable)",
    )
    exchange_root(p)
    p.set_defaults(func=_collect)

    p = sub.add_parser("receipts", help="take receipts of new submissions in the exchange")
    p.add_argument("--watch", action="store_true", help="keep taking them until stopped")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between looks (2)")
    exchange_root(p)
    p.set_defaults(func=_receipts)

    def grading_options(p):
        from grader.pipeline.autograde import DEFAULT_TASK_TIMEOUT

        p.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="submissions graded at once on this machine (with --cluster local: workers)",
        )
        p.add_argument(
            "--cluster",
            metavar="ADDRESS",
            help="grade on the Dask scheduler at ADDRESS (tcp://host:8786), or 'local' for a "
            "Dask cluster of --jobs workers on this machine",
        )
        p.add_argument(
            "--resources",
            action="append",
            default=[],
            metavar="NAME=N",
            help="with --cluster: run each submission on a worker tagged so (e.g. GPU=1)",
        )
        p.add_argument(
            "--task-timeout",
            type=float,
            default=DEFAULT_TASK_TIMEOUT,
            metavar="S",
            help=f"seconds one submission may take, all cells included ({DEFAULT_TASK_TIMEOUT})",
        )
        p.add_argument("--force", action="store_true", help="regrade submissions already graded")
        p.add_argument("--timeout", type=int, help="seconds per cell (course default: 120)")
        p.add_argument("--memory-mb", type=int, help="memory limit per kernel (default 4096)")
        p.add_argument(
            "--unsafe-no-sandbox",
            action="store_true",
            help="grade without bubblewrap (student code runs with your rights; every "
            "report says so)",
        )

    p = sub.add_parser("autograde", help="autograde submitted notebooks")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    grading_options(p)
    p.set_defaults(func=_autograde)

    p = sub.add_parser("feedback", help="write HTML feedback")
    p.add_argument("assignment")
    p.add_argument(
        "--release", action="store_true", help="return it to the students via the exchange"
    )
    exchange_root(p)
    p.set_defaults(func=_feedback)

    p = sub.add_parser("export", help="write grades.csv")
    p.add_argument("--out", type=Path, help="CSV path (default: <course>/reports/grades.csv)")
    p.set_defaults(func=_export)

    p = sub.add_parser("report", help="write the grade report")
    p.add_argument("--out", type=Path, help="folder (default: <course>/reports)")
    p.set_defaults(func=_report)

    p = sub.add_parser("run", help="collect, autograde, feedback, export and report")
    p.add_argument("assignment")
    p.add_argument("source", nargs="?", help="folder or zip (default: what is in submitted/)")
    p.add_argument("--pattern", help="regex with a (?P<student>...) group for file names")
    p.add_argument("--out", type=Path, help="report folder (default: <course>/reports)")
    grading_options(p)
    p.set_defaults(func=_run, student=None)

    p = sub.add_parser("release-lectures", help="execute and export the lectures")
    p.add_argument("lectures", nargs="*", help="default: every lecture")
    p.add_argument("--out", type=Path, help="folder (default: <course>/release/lectures)")
    p.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    p.add_argument(
        "--single-file",
        action="store_true",
        help="inline MathJax, reveal.js and the widget manager into each page (LMS upload)",
    )
    p.set_defaults(func=_release_lectures)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_nbgrader()
    try:
        args.func(Course.find(args.course), args)
    except (CourseError, ValueError) as exc:
        print(f"cvgrade: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
