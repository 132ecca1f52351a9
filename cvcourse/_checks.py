"""Argument checks for every public function of cvcourse: one shape, one wording.

Each helper returns the normalised value or raises ``TypeError`` (a value of the wrong
kind) or ``ValueError`` (the right kind, out of range). The message names the argument and
shows the value; with ``who`` (a function or layer, e.g. ``"Linear"``) it starts with
``"who: "``. This module imports only numpy, so every subpackage can use it without loading
numba or matplotlib. Checks tied to one subpackage's data (kernel arrays and pairs, image
batches and labels, widget arrays) stay in that subpackage and build on these.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_choice", "as_flag", "as_int", "as_real", "as_rng"]


def _prefix(who: str | None) -> str:
    return f"{who}: " if who else ""


def as_flag(value, name: str, who: str | None = None) -> bool:
    """``value`` as a bool (numpy's included); anything else, 0 and 1 too, is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{_prefix(who)}{name} must be True or False, got {type(value).__name__} {value!r}"
        )
    return bool(value)


def as_int(
    value, name: str, who: str | None = None, *, low: int | None = None, high: int | None = None
) -> int:
    """``value`` as a Python int in ``[low, high]`` (either bound optional).

    numpy integers are accepted; bools, floats (even ``2.0``) and strings are not.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{_prefix(who)}{name} must be an int, got {type(value).__name__} {value!r}"
        )
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"in [{low}, {high}]"
        else:
            bounds = f">= {low}" if low is not None else f"<= {high}"
        raise ValueError(f"{_prefix(who)}{name} must be {bounds}, got {value}")
    return value


def as_real(
    value,
    name: str,
    who: str | None = None,
    *,
    low: float,
    high: float,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{_prefix(who)}{name} must be a number, got {type(value).__name__} {value!r}"
        )
    value = float(value)
    above = value >= high if high_open else value > high
    if not np.isfinite(value) or value < low or above:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{_prefix(who)}{name} must be in [{low}, {high}{bracket}, got {value}")
    return value


def as_choice(value, name: str, choices, who: str | None = None) -> str:
    """``value`` if it is one of ``choices`` (strings); a ValueError listing them otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{_prefix(who)}{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        )
    return value


def as_rng(rng, name: str = "rng", who: str | None = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator (used as is), an int seed >= 0, or None.

    None gives fresh entropy.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"{_prefix(who)}{name} as a seed must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{_prefix(who)}{name} must be a numpy.random.Generator, an int seed or None, "
        f"got {type(rng).__name__} {rng!r}"
    )
