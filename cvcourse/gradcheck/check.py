"""Finite-difference gradient checks for NumPy layers and functions.

A backward pass is checked by comparing it with centred finite differences of a scalar
objective. For an upstream gradient ``dy`` of the forward output's shape,

    L(x) = sum(f(x) * dy)            so that    dL/dx = (df/dx)^T dy = backward(dy)

and each element of the gradient is estimated by

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2h)          (error O(h^2) if L is smooth)

The analytic and numerical values are compared with the relative error of the CS231n notes
(https://cs231n.github.io/neural-networks-3/#gradcheck):

    err[i] = |a[i] - n[i]| / max(|a[i]|, |n[i]|)              (0 where both are 0)

Public API
----------
numerical_gradient(f, x, dy=None, h=1e-6, *, indices=None)
    The numerical gradient of ``sum(f(x) * dy)``, shape ``x.shape`` (or ``(len(indices),)``).
relative_error(a, b, floor=0.0) / relative_errors(a, b, floor=0.0)
    The largest / the elementwise relative error above.
check_gradients(layer_or_fn, *inputs, grad_fn=None, dy=None, ...)
    Check a course ``Layer`` (``forward``/``backward``/``params``/``grads``) or a function with
    its analytic gradient; returns a :class:`GradCheckReport` (one :class:`TensorCheck` per
    input and parameter) that prints as a table and renders as coloured HTML in Jupyter.

Status policy (thresholds after CS231n, on the relative error of the worst checked element)
------------------------------------------------------------------------------------------
=============  ==================  ======================================================  ======
status         relative error      meaning                                                 passes
=============  ==================  ======================================================  ======
``good``       < 1e-7              the gradient is right                                   yes
``ok``         1e-7 ... 1e-4       right for kinked functions (ReLU, max); for smooth      yes
                                   ones usually rounding in small gradient elements
``suspicious`` 1e-4 ... 1e-2       "probably wrong, unless there are kinks"                no
``wrong``      >= 1e-2 (or NaN)    the gradient is wrong                                   no
``kink``       (every checked element straddles a kink: nothing could be compared)        no
``skipped``    (no analytic gradient, e.g. ``backward`` returned ``None`` for dx)          n/a
=============  ==================  ======================================================  ======

A check passes when every checked tensor is ``good`` or ``ok``. The pass line is 1e-4 rather
than 1e-7 because in float64 with ``h = 1e-6`` a *correct* gradient still shows 1e-7...1e-5
on elements that are small or sit near a kink; failing those would teach students to
ignore the check, while real bugs (a transpose, a missing term, a factor 2) give errors of
1e-2 or more. The report still says ``good`` vs ``ok`` so the difference is visible.

Two refinements keep the check from crying wolf:

* Rounding floor. ``L`` is a sum of the terms ``t = f(x) * dy`` computed with rounding
  error ~ eps times its partial sums, so the numerical derivative carries an absolute
  error of about ``noise = 10 * eps * (|L| + ||t||_2) / h`` (``||t||_2`` is the size of a
  partial sum of random-signed terms). Elements whose gradient is smaller than
  ``floor = noise / 1e-4`` are compared against ``floor`` instead of their own size
  (``relative_errors(..., floor=floor)``): a difference at the rounding level then stays
  under the pass line, while a real error of a small element still shows (a factor 2 on
  a 1e-5 gradient with ``floor = 2e-4`` gives 5e-2). The report gives each tensor's floor.
* Kinks. A centred difference that straddles a kink of ReLU or max measures a mix of the
  left and right slopes. For each element above the pass line the check also evaluates
  ``L`` at ``x +- h/2`` and compares ``d(h)`` with ``d(h/2)`` and the slope jump
  ``s(h) = slope_right(h) - slope_left(h)`` with ``2 s(h/2)`` (both agree to O(h^2) where
  ``L`` is smooth, but differ by a fraction of the slope jump where it is not). An element
  is marked ``kink`` and left out of the verdict when that disagreement is well above the
  rounding level and explains the discrepancy (``|a - n| <= 4 * spread``). A wrong gradient
  at a smooth point has no spread and is never excused this way.

Everything is computed in float64: float32 inputs and parameters are checked on float64
copies (float32 finite differences carry ~1e-3 relative error) and the report notes it.
The layer is left as it was found: parameters, gradients, caches and other attributes.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLDS",
    "STATUSES",
    "GradCheckReport",
    "TensorCheck",
    "check_gradients",
    "classify",
    "numerical_gradient",
    "relative_error",
    "relative_errors",
]

#: Upper bounds of the relative error for "good", "ok" and "suspicious" (CS231n's guidance).
DEFAULT_THRESHOLDS = (1e-7, 1e-4, 1e-2)
#: Every status a tensor (or element) can get, best first.
STATUSES = ("good", "ok", "suspicious", "wrong", "kink", "skipped")
_PASSING = ("good", "ok")
_EPS = float(np.finfo(np.float64).eps)
# Rounding error of L relative to |L| + ||f(x) * dy||_2, in eps: a few for the reduction and
# the forward's own arithmetic. Generous on purpose: it only decides how small a gradient
# must be before it is compared in absolute terms.
_NOISE_SAFETY = 10.0
# A kink must show a spread this many times the rounding noise before it excuses an error.
_KINK_SIGNAL = 10.0
# Single kink anywhere within +-h: |a - d(h)| <= 3.5 * spread (worked out for a piecewise
# linear L); 4 leaves a little room for rounding.
_KINK_EXPLAINS = 4.0

_COLOURS = {
    "good": ("#d4edda", "#155724"),
    "ok": ("#e8f5d0", "#3d5a12"),
    "suspicious": ("#fff3cd", "#856404"),
    "wrong": ("#f8d7da", "#721c24"),
    "kink": ("#d6e9f8", "#0c4a6e"),
    "skipped": ("#e9ecef", "#383d41"),
}


# --------------------------------------------------------------------------- validation


def _check_h(h) -> float:
    if isinstance(h, bool) or not isinstance(h, numbers.Real):
        raise TypeError(f"h must be a positive real number, got {h!r}")
    h = float(h)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be positive and finite, got {h!r}")
    return h


def _float_array(x, name: str) -> np.ndarray:
    """Return ``x`` unchanged if it is a floating ndarray, else raise naming ``name``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{name} must have a floating dtype (float32 or float64), got dtype {x.dtype} "
            f"with shape {x.shape}: gradients are only defined for real-valued floats"
        )
    return x


def _real_array(value, name: str) -> np.ndarray:
    """``np.asarray(value)`` for real numbers (ints or floats, not bools or complex)."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be an array of real numbers, got {value!r}") from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(value).__name__} "
            f"with dtype {arr.dtype}"
        )
    return arr


def _output(value, name: str) -> np.ndarray:
    """A forward output as a float64 array (computed products are then in float64)."""
    return _real_array(value, name).astype(np.float64, copy=False)


def _upstream(dy, shape: tuple[int, ...], name: str, output: str) -> np.ndarray:
    arr = _real_array(dy, name)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} has shape {arr.shape} but {output} has shape {tuple(shape)}: "
            f"{name} must have the forward output's shape"
        )
    return arr.astype(np.float64, copy=True)


def _flat_indices(indices, x: np.ndarray) -> np.ndarray:
    if indices is None:
        return np.arange(x.size)
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(
            f"indices must be a 1-D sequence of integer flat indices into x, "
            f"got dtype {arr.dtype} with shape {arr.shape}"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= x.size):
        raise ValueError(
            f"indices must lie in [0, {x.size}) (x has shape {x.shape}), "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.intp)


def _check_thresholds(thresholds) -> tuple[float, float, float]:
    try:
        values = tuple(float(t) for t in thresholds)
    except TypeError as exc:
        raise TypeError(
            f"thresholds must be three numbers (good, ok, suspicious), got {thresholds!r}"
        ) from exc
    if len(values) != 3:
        raise ValueError(
            f"thresholds must be three numbers (good, ok, suspicious), got {thresholds!r}"
        )
    if not (0 < values[0] < values[1] < values[2]) or not all(map(math.isfinite, values)):
        raise ValueError(f"thresholds must be positive and increasing, got {thresholds!r}")
    return values


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------ relative error


def relative_errors(a, b, floor: float = 0.0) -> np.ndarray:
    """Elementwise relative error of two arrays of the same shape.

    ::

        err[i] = |a[i] - b[i]| / max(|a[i]|, |b[i]|, floor)

    the form of the CS231n notes (the one its thresholds 1e-7/1e-4/1e-2 are stated for);
    it lies in [0, 2], and is 0 where ``a[i] == b[i]`` (in particular where both are 0).
    ``floor >= 0`` compares elements smaller than ``floor`` in absolute terms (divided by
    ``floor``), which is how :func:`check_gradients` keeps rounding noise in tiny gradients
    from counting as an error. NaN in either input gives NaN.

    Returns a float64 array of the common shape.
    """
    a = _real_array(a, "a").astype(np.float64, copy=False)
    b = _real_array(b, "b").astype(np.float64, copy=False)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if isinstance(floor, bool) or not isinstance(floor, numbers.Real):
        raise TypeError(f"floor must be a non-negative real number, got {floor!r}")
    if not floor >= 0:
        raise ValueError(f"floor must be non-negative, got {floor!r}")
    diff = np.abs(a - b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), float(floor))
    # 0/0 only where a == b == 0 (with floor 0): that is no error at all.
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
    # where() above would turn a NaN scale into 0 through the comparison; keep NaN visible.
    err[np.isnan(diff)] = np.nan
    return err


def relative_error(a, b, floor: float = 0.0) -> float:
    """Largest relative error over the elements of ``a`` and ``b`` (same shape)::

        max_i |a[i] - b[i]| / max(|a[i]|, |b[i]|, floor)

    with 0 for elements where both are 0 (see :func:`relative_errors`). Returns 0.0 for
    empty arrays and NaN if any element is NaN.
    """
    err = relative_errors(a, b, floor)
    if err.size == 0:
        return 0.0
    if np.isnan(err).any():
        return float("nan")
    return float(err.max())


def classify(error: float, thresholds=DEFAULT_THRESHOLDS) -> str:
    """Status of one relative error: "good", "ok", "suspicious" or "wrong" (NaN is wrong)."""
    good, ok, suspicious = _check_thresholds(thresholds)
    if not error < suspicious:  # NaN lands here too
        return "wrong"
    if error < good:
        return "good"
    return "ok" if error < ok else "suspicious"


# -------------------------------------------------------------------- finite differences


@dataclass
class _Differences:
    """Centred differences at the flat indices ``flat``, plus what the kink test reuses."""

    values: np.ndarray  # (k,) (L(x+) - L(x-)) / (x+ - x-)
    f_plus: np.ndarray  # (k,) L at x+
    f_minus: np.ndarray  # (k,) L at x-
    x_plus: np.ndarray  # (k,) the stored value x[i] + h
    x_minus: np.ndarray  # (k,) the stored value x[i] - h
    x_zero: np.ndarray  # (k,) the original value x[i]


def _probe(objective: Callable[[], float], x: np.ndarray, idx: tuple, step: float):
    """L at x[idx] + step and x[idx] - step; x[idx] is restored bitwise whatever happens."""
    old = x[idx].copy()  # a 0-d copy keeps the exact bits (also -0.0 and NaN payloads)
    try:
        x[idx] = old + step
        # The stored values, not old +- step: rounding to x's dtype changes the step, and
        # dividing by the step actually taken removes that error (large in float32).
        x_plus = float(x[idx])
        f_plus = objective()
        x[idx] = old - step
        x_minus = float(x[idx])
        f_minus = objective()
    finally:
        x[idx] = old
    if x_plus == x_minus:
        advice = "use a larger h" + ("" if x.dtype == np.float64 else " or float64")
        raise ValueError(
            f"h = {step:g} is too small to change x{_tuple(idx)} = {float(old)!r} in dtype "
            f"{x.dtype}: {advice}"
        )
    return f_plus, f_minus, x_plus, x_minus


def _tuple(idx) -> tuple[int, ...]:
    return tuple(int(i) for i in idx)


def _central_differences(objective, x: np.ndarray, flat: np.ndarray, h: float) -> _Differences:
    k = len(flat)
    out = _Differences(*(np.empty(k) for _ in range(6)))
    for j, flat_index in enumerate(flat):
        idx = np.unravel_index(int(flat_index), x.shape)
        out.x_zero[j] = float(x[idx])
        f_plus, f_minus, x_plus, x_minus = _probe(objective, x, idx, h)
        out.f_plus[j], out.f_minus[j] = f_plus, f_minus
        out.x_plus[j], out.x_minus[j] = x_plus, x_minus
        out.values[j] = (f_plus - f_minus) / (x_plus - x_minus)
    return out


def numerical_gradient(f, x, dy=None, h: float = 1e-6, *, indices=None) -> np.ndarray:
    """Centred finite differences of ``L(x) = sum(f(x) * dy)`` with respect to each ``x[i]``.

    ::

        grad[i] = (L(x + h e_i) - L(x - h e_i)) / (2h)      error O(h^2) + O(eps * |L| / h)

    (the step actually divided by is the difference of the two stored values of ``x[i]``,
    which removes the rounding of ``x[i] +- h`` to ``x``'s dtype).

    Parameters
    ----------
    f : callable
        ``f(x)`` returning an array of any fixed shape, or a scalar.
    x : np.ndarray, floating dtype, writeable
        The point. It is modified in place one element at a time (so that ``f`` may close
        over ``x`` or a layer may hold it) and always restored bitwise, also when ``f``
        raises. float64 is strongly recommended: in float32 the error is ~1e-3.
    dy : array of ``f(x)``'s shape, optional
        Upstream gradient weighting the outputs; defaults to ones (for a scalar ``f``, 1).
    h : float > 0
        Step size; 1e-6 balances truncation (h^2) against rounding (eps / h) in float64.
    indices : 1-D int array, optional
        Flat (C-order) indices of the elements to differentiate, for sampling.

    Returns
    -------
    np.ndarray, float64
        Shape ``x.shape``, or ``(len(indices),)`` with the values at ``indices``.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x = _float_array(x, "x")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: numerical_gradient perturbs it in place")
    h = _check_h(h)
    flat = _flat_indices(indices, x)
    snapshot = x.copy()
    try:
        y0 = _output(f(x), "f(x)")
        if not _same_bits(x, snapshot):
            raise ValueError(
                "f modified its argument x in place; the finite differences would be "
                "meaningless (copy x inside f before changing it)"
            )
        weights = np.ones(y0.shape) if dy is None else _upstream(dy, y0.shape, "dy", "f(x)")

        def objective() -> float:
            y = _output(f(x), "f(x)")
            if y.shape != y0.shape:
                raise ValueError(
                    f"f(x) returned shape {y.shape} for a perturbed x but {y0.shape} at x: "
                    "f must return the same shape for every x"
                )
            return float(np.sum(y * weights))

        values = _central_differences(objective, x, flat, h).values
    finally:
        # Each element is already restored by _probe; this also undoes anything f did.
        np.copyto(x, snapshot)
    return values.reshape(x.shape) if indices is None else values


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True, eq=False)
class TensorCheck:
    """The check of one tensor (an input such as ``"x"`` or a parameter such as ``"weight"``).

    ``indices``, ``errors``, ``analytic``, ``numerical`` and ``kinks`` are aligned 1-D
    arrays over the checked elements: flat C-order indices into a tensor of ``shape``,
    the relative error of each (floor-adjusted, see the module docstring), both gradient
    values and whether the element straddled a kink. :meth:`error_map` puts the errors
    into an array of ``shape`` (NaN where not checked), e.g. for a heatmap.

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
        return self.status in _PASSING

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


# The report's columns, in the text table and the HTML table alike (one row per tensor).
_REPORT_COLUMNS = (
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
        rows = []
        for t in self.tensors:
            skipped = t.status == "skipped"
            checked = f"{t.n_checked}/{t.n_total}"
            if t.n_kinks:
                checked += f" ({t.n_kinks} kink{'s' if t.n_kinks > 1 else ''})"
            rows.append(
                [
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
            )
        return rows

    def _messages(self) -> list[str]:
        lines = [f"{t.name}: {t.hint}" for t in self.tensors if t.hint]
        return lines + list(self.notes)

    def __repr__(self) -> str:
        header = list(_REPORT_COLUMNS)
        rows = [header, *self._rows()]
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        lines = [self._headline()]
        for r in rows:
            cells = (cell.ljust(w) for cell, w in zip(r, widths, strict=True))
            lines.append("  ".join(cells).rstrip())
        lines.extend(f"  - {m}" for m in self._messages())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = "#155724" if self.passed else "#721c24"
        head = "".join(
            f"<th style='text-align:left;padding:2px 8px'>{esc(h)}</th>" for h in _REPORT_COLUMNS
        )
        body = []
        for t, row in zip(self.tensors, self._rows(), strict=True):
            bg, fg = _COLOURS.get(t.status, ("#ffffff", "#000000"))
            cells = "".join(f"<td style='padding:2px 8px'>{esc(c)}</td>" for c in row)
            body.append(
                f"<tr class='gradcheck-{esc(t.status)}' "
                f"style='background-color:{bg};color:{fg}'>{cells}</tr>"
            )
        items = "".join(f"<li>{esc(m)}</li>" for m in self._messages())
        return (
            "<div class='cvcourse-gradcheck'>"
            f"<p style='font-weight:bold;color:{colour}'>{esc(self._headline())}</p>"
            "<table style='border-collapse:collapse;font-family:monospace'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f"<ul>{items}</ul>" if items else "")
            + "</div>"
        )


def _fmt(value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:+.3e}" if signed else f"{value:.2e}"


# ------------------------------------------------------------------------ checking a tensor


@dataclass
class _Settings:
    h: float
    thresholds: tuple[float, float, float]
    max_samples: int | None
    detect_kinks: bool
    rng: np.random.Generator
    noise: float  # absolute rounding error of a numerical derivative (see module docstring)


def _sample(analytic: np.ndarray, settings: _Settings) -> np.ndarray:
    """Flat indices to check: all, or ``max_samples`` of them including the largest |grad|."""
    size = analytic.size
    if settings.max_samples is None or size <= settings.max_samples:
        return np.arange(size)
    # The largest analytic element is where a wrong formula is most visible; argmax of
    # abs() also picks the first NaN/inf, which should be shown too.
    worst = int(np.argmax(np.abs(analytic.reshape(-1))))
    others = settings.rng.choice(size - 1, settings.max_samples - 1, replace=False)
    others[others >= worst] += 1  # skip `worst` without rejection sampling
    return np.sort(np.concatenate([[worst], others])).astype(np.intp)


def _kinks(objective, x, flat, analytic, diffs: _Differences, f0: float, settings, failing):
    """Mark failing elements whose finite differences straddle a kink (module docstring)."""
    flags = np.zeros(len(flat), dtype=bool)
    half = settings.h / 2
    for j in np.flatnonzero(failing):
        idx = np.unravel_index(int(flat[j]), x.shape)
        f_plus, f_minus, x_plus, x_minus = _probe(objective, x, idx, half)
        d_half = (f_plus - f_minus) / (x_plus - x_minus)
        x0 = diffs.x_zero[j]
        # Slope jump right minus left, from the actual steps: ~h * L'' where L is smooth,
        # a fraction of the jump in slope where a kink lies within the step.
        jump_h = (diffs.f_plus[j] - f0) / (diffs.x_plus[j] - x0) - (f0 - diffs.f_minus[j]) / (
            x0 - diffs.x_minus[j]
        )
        jump_half = (f_plus - f0) / (x_plus - x0) - (f0 - f_minus) / (x0 - x_minus)
        spread = max(abs(diffs.values[j] - d_half), abs(jump_h - 2 * jump_half))
        discrepancy = abs(analytic[j] - diffs.values[j])
        if spread > _KINK_SIGNAL * settings.noise and discrepancy <= _KINK_EXPLAINS * spread:
            flags[j] = True
    return flags


def _diagnose(name, role, shape, flat, a, n, errors, floor, thresholds) -> str:
    """A one-line guess at what kind of mistake produced a failing tensor."""
    ok = thresholds[1]
    bad = int(np.sum(~(errors < ok)))
    where = f"{bad} of {len(errors)} checked elements are above {ok:g}"
    if np.isnan(a).any():
        return f"the analytic gradient contains NaN; {where}"
    big_a = np.abs(a) > floor
    big_n = np.abs(n) > floor
    if not big_n.any() and big_a.any():
        if role == "param":
            return (
                f"perturbing {name} does not change the output: does forward read "
                f"self.params[{name!r}] (and not a copy made in __init__)?"
            )
        return f"the output does not depend on {name}, yet its analytic gradient is not 0"
    if not big_a.any() and big_n.any():
        return f"the analytic gradient is 0 where the numerical one is not; {where}"
    if len(shape) == 2 and shape[0] == shape[1] > 1 and len(flat) == math.prod(shape):
        at = np.empty(len(flat))
        at[flat] = a
        transposed = at.reshape(shape).T.reshape(-1)[flat]
        if relative_error(transposed, n, floor) < ok:
            return "the analytic gradient is the transpose of the numerical one"
    both = big_a & big_n
    if both.sum() >= 2:
        ratio = a[both] / n[both]
        mid = float(np.median(ratio))
        if np.all(np.abs(ratio - mid) <= 1e-3 * abs(mid)) and abs(mid - 1) > 1e-3:
            return (
                f"analytic = {mid:.4g} x numerical on every element: a constant factor is "
                "off (a factor 2, a missing 1/N, a sign)"
            )
    return where


def _check_tensor(name, role, x, analytic, objective, f0, dtype, settings) -> TensorCheck:
    """Compare ``analytic`` with finite differences of ``objective`` perturbing ``x``."""
    thresholds = settings.thresholds
    flat = _sample(analytic, settings)
    diffs = _central_differences(objective, x, flat, settings.h)
    a = analytic.reshape(-1)[flat]
    n = diffs.values
    floor = settings.noise / thresholds[1]
    errors = relative_errors(a, n, floor)
    failing = ~(errors < thresholds[1]) & ~np.isnan(errors)
    kinks = np.zeros(len(flat), dtype=bool)
    if len(flat) == 0:
        return TensorCheck(name, tuple(x.shape), dtype, "good", 0.0, 0.0, None, math.nan,
                           math.nan, 0, 0, 0, floor, flat, errors, a, n, kinks,
                           "empty tensor: nothing to compare")  # fmt: skip
    if settings.detect_kinks and failing.any():
        kinks = _kinks(objective, x, flat, a, diffs, f0, settings, failing)
    considered = ~kinks if (~kinks).any() else np.ones(len(flat), dtype=bool)
    errs = np.where(considered, errors, -1.0)
    nan = np.flatnonzero(np.isnan(errs))
    worst = int(nan[0]) if len(nan) else int(np.argmax(errs))
    max_error = float(errors[worst])
    abs_errors = np.abs(a - n)[considered]
    max_abs = float("nan") if np.isnan(abs_errors).any() else float(abs_errors.max())
    if kinks.all():
        status = "kink"
        hint = (
            "every checked element straddles a kink (e.g. ReLU inputs at exactly 0, or ties "
            "in max): nothing could be compared; use inputs away from the kinks"
        )
    else:
        status = classify(max_error, thresholds)
        hint = ""
        if status not in _PASSING:
            hint = _diagnose(name, role, x.shape, flat, a, n, errors, floor, thresholds)
            if status == "suspicious":
                hint += " (suspicious: probably wrong, unless the function has kinks here)"
    return TensorCheck(
        name=name,
        shape=tuple(x.shape),
        dtype=dtype,
        status=status,
        max_error=max_error,
        max_abs_error=max_abs,
        worst_index=_tuple(np.unravel_index(int(flat[worst]), x.shape)),
        worst_analytic=float(a[worst]),
        worst_numerical=float(n[worst]),
        n_checked=len(flat),
        n_total=int(x.size),
        n_kinks=int(kinks.sum()),
        floor=floor,
        indices=flat,
        errors=errors,
        analytic=a,
        numerical=n,
        kinks=kinks,
        hint=hint,
    )


def _skipped(name: str, x: np.ndarray, dtype: str, why: str) -> TensorCheck:
    empty = np.empty(0)
    return TensorCheck(
        name, tuple(x.shape), dtype, "skipped", math.nan, math.nan, None, math.nan, math.nan,
        0, int(x.size), 0, math.nan, np.empty(0, dtype=np.intp), empty, empty, empty,
        np.empty(0, dtype=bool), why,
    )  # fmt: skip


# ------------------------------------------------------------------------ layers' state


@dataclass
class _Snapshot:
    """Everything a check could change on a layer, to put back afterwards.

    ``objects`` holds the attribute dicts of the layer and of every layer nested in it (the
    children of a ``Sequential``): the check swaps float32 parameters for float64 copies on
    whichever object owns them.
    """

    objects: list[tuple[object, dict]]
    dicts: list[tuple[dict, dict]]
    lists: list[tuple[list, list]]
    arrays: list[tuple[np.ndarray, np.ndarray]]


def _is_layer(value) -> bool:
    return hasattr(value, "__dict__") and callable(getattr(value, "forward", None))


def _snapshot(layer) -> _Snapshot:
    snap = _Snapshot([], [], [], [])
    seen: set[int] = set()

    def visit(value) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            snap.arrays.append((value, value.copy()))
        elif isinstance(value, dict):
            snap.dicts.append((value, dict(value)))
            for v in list(value.values()):
                visit(v)
        elif isinstance(value, (list, tuple)):
            if isinstance(value, list):
                snap.lists.append((value, list(value)))
            for v in value:
                visit(v)
        elif _is_layer(value) or value is layer:
            attrs = vars(value) if hasattr(value, "__dict__") else {}
            snap.objects.append((value, dict(attrs)))
            for v in list(attrs.values()):
                visit(v)
            # params/grads may be properties (views over children) rather than attributes.
            for name in ("params", "grads"):
                visit(getattr(value, name, None))

    visit(layer)
    return snap


def _restore(layer, snap: _Snapshot) -> None:
    for d, saved in snap.dicts:
        d.clear()
        d.update(saved)
    for lst, saved in snap.lists:
        lst[:] = saved
    for arr, saved in snap.arrays:
        # Written back unconditionally: forward may have updated e.g. running statistics
        # in place, and the perturbed float64 parameters are restored bitwise this way.
        if arr.flags.writeable and arr.shape == saved.shape:
            np.copyto(arr, saved)
    for obj, saved in snap.objects:
        if hasattr(obj, "__dict__"):
            attrs = vars(obj)
            attrs.clear()
            attrs.update(saved)


# ------------------------------------------------------------------------ check_gradients


def _as_gradients(result, inputs: Sequence[np.ndarray], names: Sequence[str], who: str):
    """Normalise what backward/grad_fn returned to one float64 array (or None) per input."""
    k = len(inputs)
    if result is None:
        items = [None] * k
    elif k == 1 and not isinstance(result, (tuple, list)):
        items = [result]
    elif isinstance(result, (tuple, list)) and len(result) == k:
        items = list(result)
    else:
        got = f"a {type(result).__name__}"
        if isinstance(result, (tuple, list)):
            got += f" of length {len(result)}"
        raise ValueError(
            f"{who} must return one gradient per input ({k}: {', '.join(names)}), got {got}"
        )
    grads = []
    for g, x, name in zip(items, inputs, names, strict=True):
        if g is None:
            grads.append(None)
            continue
        arr = _real_array(g, f"the gradient of {name} returned by {who}")
        if arr.shape != x.shape:
            raise ValueError(
                f"{who} returned a gradient of shape {arr.shape} for {name}, which has "
                f"shape {x.shape}: the gradient must have the shape of what it is for"
            )
        grads.append(arr.astype(np.float64, copy=True))
    return grads


def _input_names(names, k: int) -> list[str]:
    if names is None:
        return ["x"] if k == 1 else [f"x{i}" for i in range(k)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if len(names) != k or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be {k} strings, one per input, got {names!r}")
    return names


def _check_layer(layer, xs, originals, dy, settings, names, rng):
    missing = [a for a in ("forward", "backward", "params", "grads") if not hasattr(layer, a)]
    if missing:
        raise TypeError(
            f"layer must follow the course's Layer API (forward, backward, params, grads); "
            f"{type(layer).__name__} has no {', '.join(missing)} (a layer without "
            "parameters sets params = {} and grads = {})"
        )
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr)):
            raise TypeError(f"layer.{attr} must be a method, got {type(getattr(layer, attr))}")
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr), Mapping):
            raise TypeError(
                f"layer.{attr} must be a dict of arrays, got {type(getattr(layer, attr))}"
            )
    for key, p in layer.params.items():
        if not isinstance(key, str):
            raise TypeError(f"layer.params keys must be strings, got {key!r}")
        _float_array(p, f"layer.params[{key!r}]")
        if key in names:
            raise ValueError(f"parameter {key!r} has the name of an input; pass names=...")

    forward = layer.forward
    notes = []
    state = _snapshot(layer)
    try:
        # Parameters are perturbed in place, so the forward sees them however it reads
        # them. float64 ones are the layer's own arrays (restored bitwise afterwards);
        # others are replaced in the dict by float64 copies for the duration of the check.
        params = layer.params
        work = {}
        dtypes = {key: str(p.dtype) for key, p in params.items()}
        converted = []
        for key in list(params):
            p = params[key]
            if p.dtype == np.float64 and p.flags.writeable:
                work[key] = p
            else:
                work[key] = p.astype(np.float64)
                params[key] = work[key]
                converted.append(f"{key} ({p.dtype})")
        if converted:
            notes.append(
                f"parameters {', '.join(converted)} were checked on float64 copies "
                "(finite differences in float32 carry ~1e-3 error); the layer keeps its own "
                "arrays"
            )

        def run(inputs) -> np.ndarray:
            return _output(forward(*inputs), "layer.forward(x)")

        def backward(dy64, inputs):
            grads = _as_gradients(layer.backward(dy64), inputs, names, "layer.backward(dy)")
            param_grads = {}
            current = layer.grads  # read after backward: it may have rebound self.grads
            if not isinstance(current, Mapping):
                raise TypeError(f"layer.grads must be a dict of arrays, got {type(current)}")
            for key, p in work.items():
                if key not in current:
                    raise ValueError(
                        f"after backward, layer.grads has no entry {key!r} (params has "
                        f"{sorted(work)}, grads has {sorted(current)})"
                    )
                g = _real_array(current[key], f"layer.grads[{key!r}]")
                if g.shape != p.shape:
                    raise ValueError(
                        f"layer.grads[{key!r}] has shape {g.shape} but layer.params[{key!r}] "
                        f"has shape {p.shape}: a gradient has its parameter's shape (a "
                        "missing sum over the batch axis gives an extra leading dimension)"
                    )
                param_grads[key] = g.astype(np.float64, copy=True)
            extra = sorted(set(current) - set(work))
            if extra:
                notes.append(f"layer.grads has entries without a parameter: {extra}")
            return grads, param_grads

        input_dtypes = [str(x.dtype) for x in originals]
        return _run_check(
            run, backward, xs, input_dtypes, work, dy, settings, names, rng, notes, dtypes
        )
    finally:
        _restore(layer, state)


def _run_check(run, backward, xs, dtypes, params, dy, settings, names, rng, notes, pdtypes=None):
    """The shared body: forward, backward, then finite differences for each tensor.

    ``xs`` are the float64 working copies of the inputs (perturbed in place), ``params``
    the float64 parameter arrays the forward reads; ``dtypes``/``pdtypes`` the original
    dtypes, for the report.
    """
    pristine = [x.copy() for x in xs]
    y = run(xs)
    for name, x, x0 in zip(names, xs, pristine, strict=True):
        if not _same_bits(x, x0):
            raise ValueError(
                f"forward modified its input {name} in place; finite differences need an "
                "unchanged input (copy it first, e.g. x = x.copy() or np.maximum(x, 0))"
            )
    # Dropout in training mode or random noise would make every difference meaningless.
    again = run(xs)
    scale = float(np.max(np.abs(y))) if y.size else 0.0
    if again.shape != y.shape or not np.allclose(
        again, y, rtol=1e-10, atol=1e-12 * scale, equal_nan=True
    ):
        raise ValueError(
            "forward is not deterministic: two calls on the same input gave different "
            "outputs (dropout in training mode? random noise?); make it deterministic "
            "for the check"
        )
    if dy is None:
        # Random rather than ones, so that errors that cancel in a plain sum (a transpose,
        # a mixed-up axis) still show. A scalar output (a loss) gets dy = 1.
        dy64 = np.ones(()) if y.ndim == 0 else rng.standard_normal(y.shape)
    else:
        dy64 = _upstream(dy, y.shape, "dy", "the forward output")
    input_grads, param_grads = backward(float(dy64) if y.ndim == 0 else dy64.copy(), xs)

    def objective() -> float:
        out = run(xs)
        if out.shape != y.shape:
            raise ValueError(
                f"forward returned shape {out.shape} for a perturbed input but {y.shape} "
                "at the original one"
            )
        return float(np.sum(out * dy64))

    f0 = objective()
    terms = y * dy64
    size = abs(f0) + float(np.sqrt(np.sum(terms * terms)))
    settings.noise = _NOISE_SAFETY * _EPS * size / settings.h

    results = []
    for name, x, g, dtype in zip(names, xs, input_grads, dtypes, strict=True):
        if g is None:
            results.append(_skipped(name, x, dtype, "no analytic gradient (None): not checked"))
        else:
            results.append(_check_tensor(name, "input", x, g, objective, f0, dtype, settings))
    for key, p in params.items():
        dtype = (pdtypes or {}).get(key, str(p.dtype))
        results.append(
            _check_tensor(key, "param", p, param_grads[key], objective, f0, dtype, settings)
        )
    if not any(r.status != "skipped" for r in results):
        notes.append("no gradient was returned, so nothing was checked")
    return results, notes


def check_gradients(
    layer_or_fn,
    *inputs: np.ndarray,
    grad_fn: Callable | None = None,
    dy=None,
    seed: int | None = 0,
    max_samples: int | None = 200,
    h: float = 1e-6,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    detect_kinks: bool = True,
    names: Sequence[str] | None = None,
) -> GradCheckReport:
    """Check analytic gradients against centred finite differences.

    Two forms::

        check_gradients(layer, x)                      # a course Layer
        check_gradients(f, x, w, grad_fn=grad_f)       # a function and its gradient

    **Layer** (``forward(*inputs) -> y``, ``backward(dy) -> dx`` filling ``grads``, and
    ``params``/``grads`` dicts with the same keys and shapes): the check draws ``dy``
    (seeded standard normal of ``y``'s shape), runs ``forward`` then ``backward(dy)`` for the
    analytic ``dx`` and ``grads``, and differentiates ``L = sum(forward(x) * dy)`` numerically
    with respect to every input and every entry of ``params`` (perturbed in place, so
    ``forward`` must read ``self.params[...]``). ``backward`` may return ``None`` for an
    input (reported as "skipped") and a layer may have no parameters (``params == {}``).
    With several inputs ``backward`` returns a tuple, one gradient (or ``None``) per input.

    **Function** ``f(*inputs) -> y`` (array or scalar) with ``grad_fn(dy, *inputs)``
    returning the gradient of ``sum(f(*inputs) * dy)`` for each input: one array for one
    input, else a tuple (``None`` entries are skipped). A scalar ``f`` (a loss) gets
    ``dy = 1.0``. Extra non-float arguments such as labels go into a closure::

        check_gradients(lambda s: softmax_loss(s, y)[0], scores,
                        grad_fn=lambda dy, s: dy * softmax_loss(s, y)[1])

    Everything runs in float64 on copies of the inputs (float32 ones are noted in the
    report); the layer is restored exactly afterwards (parameters bitwise, dtypes, grads,
    caches and any other attributes), also when the check raises.

    Parameters
    ----------
    layer_or_fn : Layer or callable
    *inputs : np.ndarray, floating dtype
        The point to check at. Use random inputs away from kinks (ReLU at 0, ties in max).
    grad_fn : callable, only with a function
    dy : array of the output's shape, optional
        Upstream gradient; random (seeded) by default.
    seed : int or None
        Seeds ``dy`` and the sampling: the same seed gives the same check.
    max_samples : int or None
        At most this many elements per tensor are checked (chosen at random, always
        including the one with the largest analytic gradient); ``None`` checks all.
    h : float > 0
        Finite-difference step.
    thresholds : (good, ok, suspicious)
        Upper bounds of the relative error for each status; a tensor passes below ``ok``.
        Defaults to CS231n's (1e-7, 1e-4, 1e-2); see the module docstring for the policy.
    detect_kinks : bool
        Excuse elements whose finite differences straddle a kink (status "kink").
    names : sequence of str, optional
        Names of the inputs in the report (default "x", or "x0", "x1", ...).

    Returns
    -------
    GradCheckReport
        Truthy when the check passed; prints as a table, renders as HTML in Jupyter.
    """
    if not inputs:
        raise TypeError("check_gradients needs at least one input array after the layer/f")
    for i, x in enumerate(inputs):
        _float_array(x, "x" if len(inputs) == 1 else f"inputs[{i}]")
    h = _check_h(h)
    thresholds = _check_thresholds(thresholds)
    if max_samples is not None and (
        isinstance(max_samples, bool)
        or not isinstance(max_samples, numbers.Integral)
        or max_samples < 1
    ):
        raise ValueError(f"max_samples must be a positive int or None, got {max_samples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    if not isinstance(detect_kinks, bool):
        raise TypeError(f"detect_kinks must be True or False, got {detect_kinks!r}")
    names = _input_names(names, len(inputs))
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {names}")

    rng = np.random.default_rng(seed)
    settings = _Settings(h, thresholds, max_samples, detect_kinks, rng, noise=0.0)
    # Copies in float64: the user's arrays are never touched.
    xs = [np.array(x, dtype=np.float64, copy=True) for x in inputs]
    notes = []
    low = [n for n, x in zip(names, inputs, strict=True) if x.dtype != np.float64]
    if low:
        notes.append(f"inputs {', '.join(low)} were checked as float64 copies")

    is_layer = hasattr(layer_or_fn, "forward") or hasattr(layer_or_fn, "backward")
    if is_layer:
        if grad_fn is not None:
            raise TypeError(
                "grad_fn is only for functions: a layer's gradients come from its backward"
            )
        results, more = _check_layer(layer_or_fn, xs, inputs, dy, settings, names, rng)
    else:
        if not callable(layer_or_fn):
            raise TypeError(
                "check_gradients expects a Layer (forward/backward/params/grads) or a "
                f"function, got {type(layer_or_fn).__name__}"
            )
        if grad_fn is None:
            raise TypeError(
                "check_gradients(f, *inputs) needs grad_fn=: a function grad_fn(dy, *inputs) "
                "returning the gradient of sum(f(*inputs) * dy) for each input"
            )
        if not callable(grad_fn):
            raise TypeError(f"grad_fn must be callable, got {type(grad_fn).__name__}")
        f = layer_or_fn

        def run(inputs_) -> np.ndarray:
            return _output(f(*inputs_), "f(*inputs)")

        def backward(dy64, inputs_):
            copies = [x.copy() for x in inputs_]  # grad_fn must not disturb the point
            return _as_gradients(grad_fn(dy64, *copies), inputs_, names, "grad_fn"), {}

        dtypes = [str(x.dtype) for x in inputs]
        results, more = _run_check(run, backward, xs, dtypes, {}, dy, settings, names, rng, [])
    return GradCheckReport(
        tensors=tuple(results),
        thresholds=thresholds,
        h=h,
        seed=seed,
        notes=tuple(notes + more),
    )
