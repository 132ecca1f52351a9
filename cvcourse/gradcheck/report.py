"""What a gradient check found, and how it shows: a text table and an HTML table.

:class:`TensorCheck` is the record of one tensor, :class:`GradCheckReport` the whole check.
``repr(report)`` is a plain-text table rendered by ``tabulate``; ``report._repr_html_()``
(what Jupyter shows) renders ``templates/report.html.j2`` with Jinja2, rows coloured by
status. Both libraries are imported when a report is first shown, not when
``cvcourse.gradcheck`` is imported.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .policy import DEFAULT_THRESHOLDS, PASSING, classify

__all__ = ["GradCheckReport", "TensorCheck"]

# The report's columns, in the text table and the HTML table alike (one row per tensor).
COLUMNS = (
    "tensor",
    "shape",
    "checked",
    "max rel err",
    "max abs err",
    "worst at",
    "analytic",
    "numerical",
    "status",
)

# status -> (background, text) colour of its row in the HTML table
COLOURS = {
    "good": ("#d4edda", "#155724"),
    "ok": ("#e8f5d0", "#3d5a12"),
    "suspicious": ("#fff3cd", "#856404"),
    "wrong": ("#f8d7da", "#721c24"),
    "kink": ("#d6e9f8", "#0c4a6e"),
    "skipped": ("#e9ecef", "#383d41"),
}


@dataclass(frozen=True, eq=False, kw_only=True)
class TensorCheck:
    """The check of one tensor (an input such as ``"x"`` or a parameter such as ``"weight"``).

    ``indices``, ``errors``, ``analytic``, ``numerical`` and ``kinks`` are aligned 1-D
    arrays over the checked elements: flat C-order indices into a tensor of ``shape``,
    the relative error of each (floor-adjusted, see :mod:`cvcourse.gradcheck.policy`), both
    gradient values and whether the element straddled a kink. :meth:`error_map` puts the
    errors into an array of ``shape`` (NaN where not checked), e.g. for a heatmap.

    ``max_error``/``max_abs_error``/``worst_index`` cover the elements that are not kinks
    (all of them if every element is one); they are NaN/None for a skipped tensor.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    status: str
    max_error: float
    max_abs_error: float
    worst_index: tuple[int, ...] | None
    worst_analytic: float
    worst_numerical: float
    n_checked: int
    n_total: int
    n_kinks: int
    floor: float
    indices: np.ndarray
    errors: np.ndarray
    analytic: np.ndarray
    numerical: np.ndarray
    kinks: np.ndarray
    hint: str = ""

    @property
    def passed(self) -> bool:
        """``True`` for "good" and "ok"."""
        return self.status in PASSING

    def error_map(self) -> np.ndarray:
        """Relative errors in an array of ``shape``; NaN where no element was checked."""
        out = np.full(self.shape, np.nan)
        out.reshape(-1)[self.indices] = self.errors
        return out

    def element_statuses(self, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
        """Status string of every checked element (aligned with ``indices``)."""
        out = np.array([classify(e, thresholds) for e in self.errors], dtype=object)
        out[self.kinks] = "kink"
        return out


@dataclass(frozen=True, eq=False)
class GradCheckReport:
    """What :func:`check_gradients` found: one :class:`TensorCheck` per input and parameter.

    ``bool(report)`` is ``report.passed``: at least one tensor was checked and every
    checked tensor is "good" or "ok". ``report["weight"]`` looks a tensor up by name.
    Prints as a text table; Jupyter shows an HTML table coloured by status.
    """

    tensors: tuple[TensorCheck, ...]
    thresholds: tuple[float, float, float]
    h: float
    seed: int | None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        checked = [t for t in self.tensors if t.status != "skipped"]
        return bool(checked) and all(t.passed for t in checked)

    @property
    def failures(self) -> list[TensorCheck]:
        """The checked tensors that did not pass, in order."""
        return [t for t in self.tensors if t.status != "skipped" and not t.passed]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tensors]

    def __bool__(self) -> bool:
        return self.passed

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self):
        return iter(self.tensors)

    def __getitem__(self, name: str) -> TensorCheck:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor named {name!r}; the report has {self.names}")

    def assert_passed(self) -> None:
        """Raise ``AssertionError`` with the report's table unless the check passed."""
        if not self.passed:
            raise AssertionError("gradient check failed\n" + repr(self))

    # -- presentation

    def _headline(self) -> str:
        if self.passed:
            verdict = "PASSED"
        elif not any(t.status != "skipped" for t in self.tensors):
            verdict = "FAILED (nothing was checked)"
        else:
            bad = ", ".join(f"{t.name} {t.status}" for t in self.failures)
            verdict = f"FAILED ({bad})"
        return f"Gradient check {verdict}  [h={self.h:g}, seed={self.seed}]"

    def _rows(self) -> list[list[str]]:
        return [_row(t) for t in self.tensors]

    def _messages(self) -> list[str]:
        lines = [f"{t.name}: {t.hint}" for t in self.tensors if t.hint]
        return lines + list(self.notes)

    def __repr__(self) -> str:
        from tabulate import tabulate

        # Every cell is already text: numbers keep the report's own formatting. The header
        # goes in as the first row, so that tabulate does not pad it by 2 more columns.
        rows = [list(COLUMNS), *self._rows()]
        table = tabulate(rows, tablefmt="plain", disable_numparse=True)
        lines = [line.rstrip() for line in table.splitlines()]
        messages = [f"  - {m}" for m in self._messages()]
        return "\n".join([self._headline(), *lines, *messages])

    def _repr_html_(self) -> str:
        rows = [
            {
                "status": t.status,
                "background": COLOURS.get(t.status, ("#ffffff", "#000000"))[0],
                "colour": COLOURS.get(t.status, ("#ffffff", "#000000"))[1],
                "cells": row,
            }
            for t, row in zip(self.tensors, self._rows(), strict=True)
        ]
        return _template().render(
            headline=self._headline(),
            headline_colour="#155724" if self.passed else "#721c24",
            columns=COLUMNS,
            rows=rows,
            messages=self._messages(),
        )


def _row(t: TensorCheck) -> list[str]:
    """One tensor's cells, in the order of :data:`COLUMNS`."""
    skipped = t.status == "skipped"
    checked = f"{t.n_checked}/{t.n_total}"
    if t.n_kinks:
        checked += f" ({t.n_kinks} kink{'s' if t.n_kinks > 1 else ''})"
    return [
        t.name,
        str(t.shape),
        checked,
        "-" if skipped else _fmt(t.max_error),
        "-" if skipped else _fmt(t.max_abs_error),
        "-" if t.worst_index is None else str(t.worst_index),
        "-" if skipped else _fmt(t.worst_analytic, signed=True),
        "-" if skipped else _fmt(t.worst_numerical, signed=True),
        t.status,
    ]


def _fmt(value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:+.3e}" if signed else f"{value:.2e}"


@functools.cache
def _template():
    """The HTML report's Jinja2 template (package data), loaded once."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("cvcourse.gradcheck", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    return environment.get_template("report.html.j2")
