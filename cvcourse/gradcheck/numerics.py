"""The numerics of a gradient check: centred finite differences and the relative error.

Read it next to CS231n's ``eval_numerical_gradient`` (``gradient_check.py``): the same loop
over the elements of ``x``, perturbing one at a time in place.

For a function ``f`` and an upstream gradient ``dy`` of ``f(x)``'s shape, the scalar

    L(x) = sum(f(x) * dy)            has gradient    dL/dx = (df/dx)^T dy = backward(dy)

and each element of that gradient is estimated by the centred difference

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2h)     error O(h^2) + O(eps * |L| / h)

Analytic ``a`` and numerical ``n`` gradients are compared with the relative error of the
CS231n notes (https://cs231n.github.io/neural-networks-3/#gradcheck):

    err[i] = |a[i] - n[i]| / max(|a[i]|, |n[i]|, floor)      (0 where both are 0)

Everything else (which elements to check, kinks, rounding, statuses) is the policy
(:mod:`cvcourse.gradcheck.policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from . import _arguments as arguments

__all__ = ["numerical_gradient", "relative_error", "relative_errors"]


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
    x = arguments.float_array(x, "x")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: numerical_gradient perturbs it in place")
    h = arguments.step(h)
    flat = arguments.flat_indices(indices, x)
    snapshot = x.copy()
    try:
        y0 = arguments.output(f(x), "f(x)")
        if not same_bits(x, snapshot):
            raise ValueError(
                "f modified its argument x in place; the finite differences would be "
                "meaningless (copy x inside f before changing it)"
            )
        weights = (
            np.ones(y0.shape) if dy is None else arguments.upstream(dy, y0.shape, "dy", "f(x)")
        )

        def objective() -> float:
            y = arguments.output(f(x), "f(x)")
            if y.shape != y0.shape:
                raise ValueError(
                    f"f(x) returned shape {y.shape} for a perturbed x but {y0.shape} at x: "
                    "f must return the same shape for every x"
                )
            return float(np.sum(y * weights))

        values = central_differences(objective, x, flat, h).values
    finally:
        # Each element is already restored by probe(); this also undoes anything f did.
        np.copyto(x, snapshot)
    return values.reshape(x.shape) if indices is None else values


@dataclass(kw_only=True)
class Differences:
    """Centred differences at the flat indices checked, plus what the kink test reuses.

    Every field is a float64 array of shape ``(k,)``, one entry per checked element.
    """

    values: np.ndarray  # (L(x+) - L(x-)) / (x+ - x-)
    f_plus: np.ndarray  # L at x+
    f_minus: np.ndarray  # L at x-
    x_plus: np.ndarray  # the stored value x[i] + h
    x_minus: np.ndarray  # the stored value x[i] - h
    x_zero: np.ndarray  # the original value x[i]

    @classmethod
    def empty(cls, k: int) -> Differences:
        return cls(**{field.name: np.empty(k) for field in fields(cls)})


def central_differences(objective: Callable[[], float], x, flat, h: float) -> Differences:
    """``(L(x + h e_i) - L(x - h e_i)) / (x+ - x-)`` for each flat index ``i`` in ``flat``.

    ``objective()`` evaluates ``L`` at the current (perturbed) ``x``.
    """
    out = Differences.empty(len(flat))
    for j, flat_index in enumerate(flat):
        idx = np.unravel_index(int(flat_index), x.shape)
        out.x_zero[j] = float(x[idx])
        f_plus, f_minus, x_plus, x_minus = probe(objective, x, idx, h)
        out.f_plus[j], out.f_minus[j] = f_plus, f_minus
        out.x_plus[j], out.x_minus[j] = x_plus, x_minus
        out.values[j] = (f_plus - f_minus) / (x_plus - x_minus)
    return out


def probe(objective: Callable[[], float], x: np.ndarray, idx: tuple, step: float):
    """``(f_plus, f_minus, x_plus, x_minus)``: L at x[idx] +- step, and those stored values.

    ``x_plus``/``x_minus`` are the values x[idx] held (after rounding to x's dtype). x[idx] is
    restored bitwise whatever happens.
    """
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
            f"h = {step:g} is too small to change x{as_tuple(idx)} = {float(old)!r} in dtype "
            f"{x.dtype}: {advice}"
        )
    return f_plus, f_minus, x_plus, x_minus


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
    a = arguments.real_array(a, "a").astype(np.float64, copy=False)
    b = arguments.real_array(b, "b").astype(np.float64, copy=False)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    floor = arguments.floor(floor)
    diff = np.abs(a - b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    # 0/0 only where a == b == 0 (with floor 0): that is no error at all.
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)
    # where() above would turn a NaN scale into 0 through the comparison; keep NaN visible.
    err[np.isnan(diff)] = np.nan
    return err


def relative_error(a, b, floor: float = 0.0) -> float:
    """Largest relative error over the elements of ``a`` and ``b`` (same shape).

    ::

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


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are identical bit for bit (shape, dtype and bytes)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def as_tuple(idx) -> tuple[int, ...]:
    """A numpy multi-index as a tuple of Python ints (for messages and the report)."""
    return tuple(int(i) for i in idx)
