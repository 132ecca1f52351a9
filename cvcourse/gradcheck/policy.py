"""The checking policy: which elements are checked, tolerances, rounding, kinks, statuses.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _arguments as arguments
from .numerics import Differences, probe, relative_error

__all__ = ["DEFAULT_THRESHOLDS", "STATUSES", "classify"]

#: Upper bounds of the relative error for "good", "ok" and "suspicious" (CS231n's guidance).
DEFAULT_THRESHOLDS = (1e-7, 1e-4, 1e-2)
#: Every status a tensor (or element) can get, best first.
STATUSES = ("good", "ok", "suspicious", "wrong", "kink", "skipped")
PASSING = ("good", "ok")
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


def classify(error: float, thresholds=DEFAULT_THRESHOLDS) -> str:
    """Status of one relative error: "good", "ok", "suspicious" or "wrong" (NaN is wrong)."""
    good, ok, suspicious = arguments.thresholds(thresholds)
    if not error < suspicious:  # NaN lands here too
        return "wrong"
    if error < good:
        return "good"
    return "ok" if error < ok else "suspicious"


@dataclass(kw_only=True)
class Settings:
    """One check's options, and the rounding noise of its objective once it is known."""

    h: float
    thresholds: tuple[float, float, float]
    max_samples: int | None
    detect_kinks: bool
    rng: np.random.Generator
    noise: float = 0.0  # absolute rounding error of a numerical derivative (module docstring)

    def set_noise(self, f0: float, terms: np.ndarray) -> None:
        """``noise = 10 eps (|L| + ||t||_2) / h`` for ``L = f0`` and its terms ``t``."""
        size = abs(f0) + float(np.sqrt(np.sum(terms * terms)))
        self.noise = _NOISE_SAFETY * _EPS * size / self.h

    @property
    def floor(self) -> float:
        """Gradients smaller than this are compared in absolute terms: ``noise / ok``."""
        return self.noise / self.thresholds[1]


def sample(analytic: np.ndarray, settings: Settings) -> np.ndarray:
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


def find_kinks(objective, x, flat, analytic, diffs: Differences, f0: float, settings, errors):
    """Which checked elements (aligned with ``flat``) straddle a kink (module docstring).

    Only elements above the pass line are probed again, at ``h/2``; none when
    ``settings.detect_kinks`` is off.
    """
    flags = np.zeros(len(flat), dtype=bool)
    failing = ~(errors < settings.thresholds[1]) & ~np.isnan(errors)
    if not settings.detect_kinks:
        return flags
    half = settings.h / 2
    for j in np.flatnonzero(failing):
        idx = np.unravel_index(int(flat[j]), x.shape)
        f_plus, f_minus, x_plus, x_minus = probe(objective, x, idx, half)
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


def worst_element(errors: np.ndarray, kinks: np.ndarray) -> tuple[int, np.ndarray]:
    """The position of the worst element that is not a kink, and the mask of those considered.

    The worst is the first NaN, else the largest error; all elements count if every one is a
    kink.
    """
    considered = ~kinks if (~kinks).any() else np.ones(len(errors), dtype=bool)
    errs = np.where(considered, errors, -1.0)
    nan = np.flatnonzero(np.isnan(errs))
    return (int(nan[0]) if len(nan) else int(np.argmax(errs))), considered


def verdict(name, role, shape, flat, a, n, errors, kinks, floor, thresholds) -> tuple[str, str]:
    """The tensor's status and the hint the report shows with it (``""`` when it passes)."""
    if kinks.all():
        return "kink", (
            "every checked element straddles a kink (e.g. ReLU inputs at exactly 0, or ties "
            "in max): nothing could be compared; use inputs away from the kinks"
        )
    worst, _ = worst_element(errors, kinks)
    status = classify(float(errors[worst]), thresholds)
    if status in PASSING:
        return status, ""
    hint = diagnose(name, role, shape, flat, a, n, errors, floor, thresholds)
    if status == "suspicious":
        hint += " (suspicious: probably wrong, unless the function has kinks here)"
    return status, hint


def diagnose(name, role, shape, flat, a, n, errors, floor, thresholds) -> str:
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
