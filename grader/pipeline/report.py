"""The grade report a TA reads after grading: one HTML page with its figures and a CSV.

:func:`write_report` writes four files into a folder:

- ``report.html``: standalone (inline CSS, no scripts, no external assets but the two PNGs
  beside it): a summary per assignment, the pass rate of every test cell with its most common
  failure message, every student's scores, the submissions that could not be graded, and
  the problems found while grading;
- ``histogram.png``: the distribution of total scores (percent), one panel per assignment and
  one for the course;
- ``pass_rates.png``: per test cell, the share of submissions at full marks;
- ``pass_rates.csv``: the numbers behind the pass-rate table.

Scores follow :mod:`grader.pipeline.export`'s rules (None counts 0; a cell a submission
lacks counts 0). An ungraded submission is listed, and left out of every statistic (summary,
pass rates, histograms): counting it as 0 would lower the class's numbers for a failure of
the grader's. The page is a Jinja2 template (``templates/report.html.j2`` with
``report.css``), autoescaped: every string that comes from a submission or the course
(student ids, cell names, error messages, notes) is text, never markup. The same input gives
byte-identical files: nothing records the time, and the PNGs carry no metadata (Agg would
otherwise write matplotlib's version).
"""

from __future__ import annotations

import csv
import functools
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cvcourse.fileio import atomic_path
from grader.pipeline.export import (
    FULL,
    NOT_GRADED,
    UNGRADED,
    ZERO,
    Assignment,
    Cell,
    Collated,
    collate,
    format_score,
    part_mark,
    percent,
)
from grader.pipeline.gradebook import CellScore

REPORT = "report.html"
HISTOGRAM = "histogram.png"
PASS_RATES_PNG = "pass_rates.png"
PASS_RATES_CSV = "pass_rates.csv"

PASS_RATES_COLUMNS = [
    "assignment",
    "cell",
    "max_score",
    "submissions",
    "full_marks",
    "zero",
    "mean_score",
    "most_common_failure",
]

# PNG text chunks: Agg writes only "Software" (matplotlib's version); dropping it keeps the
# files identical across matplotlib upgrades.
_PNG_METADATA = {"Software": None}
_DPI = 100


@dataclass(frozen=True)
class CellStats:
    """How one test cell went across an assignment's submissions.

    ``submissions`` counts graded submissions only (an ungraded one is no evidence about the
    cell); ``zero`` counts those that scored 0, including a None score;
    ``failure`` is the most common message among submissions short of full marks ("" if they
    left none) and ``failure_count`` how many submissions gave it.
    """

    assignment: str
    cell: Cell
    submissions: int
    full_marks: int
    zero: int
    mean_score: float
    failure: str
    failure_count: int

    @property
    def pass_rate(self) -> float:
        return self.full_marks / self.submissions if self.submissions else 0.0


def cell_stats(grades: Collated) -> list[CellStats]:
    """One :class:`CellStats` per graded cell, in assignment then notebook order."""
    stats = []
    for assignment in grades.assignments:
        for cell in assignment.cells:
            graded = assignment.graded
            scores = [assignment.score(s, cell) for s in graded]
            failures = Counter(
                assignment.submissions[student][cell.key].message
                for student in graded
                if cell.key in assignment.submissions[student]
                and not assignment.submissions[student][cell.key].passed
                and assignment.submissions[student][cell.key].message
            )
            # Ties go to the alphabetically first message, so the order of the rows is moot.
            failure, count = min(failures.items(), key=lambda kv: (-kv[1], kv[0]), default=("", 0))
            stats.append(
                CellStats(
                    assignment=assignment.name,
                    cell=cell,
                    submissions=len(scores),
                    full_marks=sum(s is not None and s >= cell.max_score > 0 for s in scores),
                    zero=sum(not s for s in scores),
                    mean_score=statistics.fmean(s or 0.0 for s in scores) if scores else 0.0,
                    failure=failure,
                    failure_count=count,
                )
            )
    return stats


def write_report(
    scores: Iterable[CellScore], notes: Mapping[tuple[str, str], list[str]] | None, out_dir
) -> Path:
    """Write the report, its two figures and ``pass_rates.csv`` into ``out_dir`` (created);
    returns the path of ``report.html``.

    ``notes`` maps ``(assignment, student)`` to the problems found grading that submission.
    With no scores the report says that nothing is graded yet (and still lists the problems,
    which may be why); the figures then say so too.
    """
    grades = collate(scores)
    notes = {key: list(found) for key, found in (notes or {}).items() if found}
    stats = cell_stats(grades)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    _write_pass_rates_csv(stats, out_dir / PASS_RATES_CSV)
    _save(_histogram_figure(grades), out_dir / HISTOGRAM)
    _save(_pass_rates_figure(grades, stats), out_dir / PASS_RATES_PNG)
    path = out_dir / REPORT
    with atomic_path(path) as tmp:
        tmp.write_text(_html(grades, stats, notes), encoding="utf-8")
    return path


# --- pass_rates.csv ------------------------------------------------------------------------


def _write_pass_rates_csv(stats: list[CellStats], path: Path) -> None:
    rows = [PASS_RATES_COLUMNS]
    for s in stats:
        rows.append(
            [
                s.assignment,
                s.cell.label,
                format_score(s.cell.max_score),
                str(s.submissions),
                str(s.full_marks),
                str(s.zero),
                format_score(s.mean_score),
                _csv_text(s.failure),
            ]
        )
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)


def _csv_text(text: str) -> str:
    # Error messages echo student code; a spreadsheet would run one starting with "=" as a
    # formula. A leading apostrophe makes it plain text (OWASP's advice for CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- figures -------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, works headless

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly, whatever backend the TA's matplotlibrc names
    return fig


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, metadata=_PNG_METADATA)


def _nothing_figure(title: str):
    fig = _figure(6, 2)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{title}: nothing graded yet", ha="center", va="center", fontsize=12)
    return fig


def _histogram_figure(grades: Collated):
    if not grades.assignments:
        return _nothing_figure("Total scores")
    from matplotlib.ticker import MaxNLocator

    panels = [
        (
            assignment.name,
            [
                percent(assignment.total(student), assignment.max_score)
                for student in assignment.graded
            ],
            len(assignment.ungraded),
        )
        for assignment in grades.assignments
    ]
    complete = [s for s in grades.students if grades.total(s) is not None]
    panels.append(
        (
            "course total",
            [percent(grades.total(s), grades.max_total) for s in complete],
            len(grades.students) - len(complete),
        )
    )
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(4 * cols, 3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    # The same ten bins everywhere, so panels compare at a glance; 100 % falls in the last.
    bins = [10 * i for i in range(11)]
    for ax, (title, values, ungraded) in zip(axes, panels, strict=False):
        ax.hist(values, bins=bins, color="#4c72b0", edgecolor="white")
        ax.set_xlim(0, 100)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        mean = f"mean {statistics.fmean(values):.1f} %" if values else "no grades"
        extra = f" (+{ungraded} ungraded)" if ungraded else ""
        ax.set_title(f"{title}\n{len(values)} students{extra}, {mean}", fontsize=10)
        ax.set_xlabel("total score (% of maximum)")
        ax.set_ylabel("students")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    return fig


def _pass_rates_figure(grades: Collated, stats: list[CellStats]):
    if not stats:
        return _nothing_figure("Pass rates")
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]
    # One bar per cell, top to bottom in course order, a blank row between assignments.
    positions, labels, y = [], [], 0.0
    previous = None
    for s in stats:
        if previous is not None and s.assignment != previous:
            y += 1.0
        positions.append(y)
        labels.append(s.cell.short)
        previous = s.assignment
        y += 1.0
    fig = _figure(8, 1.2 + 0.28 * y)
    ax = fig.subplots()
    names = [a.name for a in grades.assignments]
    for index, name in enumerate(names):
        mine = [(p, s) for p, s in zip(positions, stats, strict=True) if s.assignment == name]
        ax.barh(
            [p for p, _ in mine],
            [100 * s.pass_rate for _, s in mine],
            color=colours[index % len(colours)],
            label=name,
        )
        for p, s in mine:
            ax.text(
                100 * s.pass_rate + 1,
                p,
                f"{s.full_marks}/{s.submissions}",
                va="center",
                fontsize=8,
            )
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_ylim(y - 0.5, -0.5)  # first cell on top
    ax.set_xlim(0, 112)  # room for the "k/n" labels right of a full bar
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("submissions at full marks (%)")
    ax.set_ylabel("test cell")
    ax.set_title("Pass rate per test cell")
    # Outside the axes: inside, it would cover whichever bars reach the corner it takes.
    fig.legend(title="assignment", loc="outside right upper", fontsize=8)
    return fig


# --- report.html ---------------------------------------------------------------------------
# The page is templates/report.html.j2, autoescaped; this part computes what it shows, as
# plain strings and numbers (scores already formatted).


def _n(value: float, digits: int = 2) -> str:
    return format_score(value, digits)


def _fraction(score: float | None, maximum: float) -> str | None:
    # None: not submitted (the template shows a dash)
    return None if score is None else f"{_n(score)}/{_n(maximum)}"


def _summary(grades: Collated) -> dict:
    def row(name: str, totals: list[float], ungraded: int, maximum: float, course=False):
        mean = statistics.fmean(totals) if totals else 0.0
        median = statistics.median(totals) if totals else 0.0
        return {
            "name": name,
            "course": course,
            "graded": len(totals),
            "ungraded": ungraded,
            "max": _n(maximum),
            "mean": _n(mean),
            "median": _n(median),
            "percent": f"{percent(mean, maximum):.1f}",
        }

    rows = [
        row(a.name, [a.total(s) for s in a.graded], len(a.ungraded), a.max_score)
        for a in grades.assignments
    ]
    complete = [grades.total(s) for s in grades.students if grades.total(s) is not None]
    missing = len(grades.students) - len(complete)
    rows.append(row("course total", complete, missing, grades.max_total, course=True))
    return {
        "students": len(grades.students),
        "submissions": sum(len(a.submissions) for a in grades.assignments),
        "assignments": len(grades.assignments),
        "ungraded": sum(len(a.ungraded) for a in grades.assignments),
        "rows": rows,
    }


def _pass_rates(stats: list[CellStats]) -> list[dict]:
    return [
        {
            "assignment": s.assignment,
            "cell": s.cell.label,
            "max": _n(s.cell.max_score),
            "submissions": s.submissions,
            "bar_em": f"{5 * s.pass_rate:.2f}",  # 100% is 5em wide
            "full_marks": s.full_marks,
            "rate": f"{100 * s.pass_rate:.0f}",
            "zero": s.zero,
            "mean": _n(s.mean_score),
            "failure": s.failure,
            "failure_count": s.failure_count,
        }
        for s in stats
    ]


def _students(grades: Collated) -> dict:
    rows = []
    for student in grades.students:
        total = grades.total(student)
        scores = [
            UNGRADED if student in a.ungraded else _fraction(a.total(student), a.max_score)
            for a in grades.assignments
        ]
        rows.append(
            {
                "student": student,
                "scores": scores,
                "total": UNGRADED if total is None else _fraction(total, grades.max_total),
                "percent": "" if total is None else f"{percent(total, grades.max_total):.1f}",
            }
        )
    return {"assignments": [a.name for a in grades.assignments], "rows": rows}


_MARK_CLASS = {FULL: "mark full", ZERO: "mark zero", NOT_GRADED: "mark none"}


def _parts(assignment: Assignment) -> dict:
    # The terminal's per-part table, with each cell's message shown on hover.
    rows = []
    for student in sorted(assignment.submissions):
        marks = []
        for cell in assignment.cells:
            found = assignment.submissions[student].get(cell.key)
            mark = part_mark(None if found is None else found.score, cell.max_score)
            title = "" if found is None else (found.message or found.ungraded or "")
            marks.append({"mark": mark, "klass": _MARK_CLASS.get(mark, "mark"), "title": title})
        ungraded = student in assignment.ungraded
        total = _fraction(assignment.total(student), assignment.max_score)
        rows.append({"student": student, "marks": marks, "total": UNGRADED if ungraded else total})
    return {
        "assignment": assignment.name,
        "cells": [cell.short for cell in assignment.cells],
        "rows": rows,
    }


def _order_notes(
    grades: Collated, notes: dict[tuple[str, str], list[str]]
) -> list[tuple[tuple[str, str], list[str]]]:
    # Course order for graded assignments, then any others (a submission that never made it
    # into the gradebook) alphabetically.
    rank = {a.name: i for i, a in enumerate(grades.assignments)}
    return sorted(
        notes.items(),
        key=lambda kv: (rank.get(kv[0][0], len(rank)), kv[0][0], kv[0][1]),
    )


@functools.cache
def _template():
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("report.html.j2")


def _html(grades: Collated, stats: list[CellStats], notes) -> str:
    graded = bool(grades.assignments)
    return _template().render(
        summary=_summary(grades) if graded else None,
        histogram=HISTOGRAM,
        pass_rates_png=PASS_RATES_PNG,
        pass_rates_csv=PASS_RATES_CSV,
        pass_rates=_pass_rates(stats),
        students=_students(grades),
        parts=[_parts(a) for a in grades.assignments],
        ungraded=[
            {"assignment": a.name, "student": student, "why": a.ungraded[student]}
            for a in grades.assignments
            for student in sorted(a.ungraded)
        ],
        problems=[
            {"assignment": assignment, "student": student, "notes": found}
            for (assignment, student), found in _order_notes(grades, notes)
        ],
    )
