"""The gradient check's argument checks: arrays, the step ``h``, indices, thresholds, names.

Scalars go through the shared checks of :mod:`cvcourse._checks` (``as_int``, ``as_real``,
``as_flag``); what is left here is about the check's own data (floating arrays, an upstream
gradient of the output's shape, flat indices, the three thresholds, input names), as
``cvcourse._checks`` asks of subpackages. Each helper returns the normalised value or raises
``TypeError`` (wrong kind) or ``ValueError`` (right kind, wrong value), naming the argument.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._checks import as_flag, as_int, as_real


def step(h) -> float:
    """``h`` as a float, positive and finite (a finite-difference step)."""
    # The open bound at 0 is not one of as_real's, so it is checked first; the type check
    # (and its message) is the shared one.
    if isinstance(h, numbers.Real) and not isinstance(h, bool) and not 0 < float(h) < math.inf:
        raise ValueError(f"h must be positive and finite, got {h!r}")
    return as_real(h, "h", low=0.0, high=math.inf)


def floor(value) -> float:
    """``value`` as a float >= 0 (inf allowed: everything is then compared in absolute terms)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"floor must be a non-negative real number, got {value!r}")
    if not float(value) >= 0:
        raise ValueError(f"floor must be non-negative, got {value!r}")
    return float(value)


def options(seed, max_samples, detect_kinks) -> tuple[int | None, int | None, bool]:
    """Validate ``check_gradients``' scalar options.

    Returns a seed >= 0 or None, a sample count >= 1 or None, and a flag.
    """
    seed = None if seed is None else as_int(seed, "seed", low=0)
    max_samples = None if max_samples is None else as_int(max_samples, "max_samples", low=1)
    return seed, max_samples, as_flag(detect_kinks, "detect_kinks")


def float_array(x, name: str) -> np.ndarray:
    """Return ``x`` unchanged if it is a floating ndarray, else raise naming ``name``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{name} must have a floating dtype (float32 or float64), got dtype {x.dtype} "
            f"with shape {x.shape}: gradients are only defined for real-valued floats"
        )
    return x


def real_array(value, name: str) -> np.ndarray:
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


def output(value, name: str) -> np.ndarray:
    """A forward output as a float64 array (computed products are then in float64)."""
    return real_array(value, name).astype(np.float64, copy=False)


def upstream(dy, shape: tuple[int, ...], name: str, of: str) -> np.ndarray:
    """``dy`` as a float64 copy, which must have the shape of the output ``of``."""
    arr = real_array(dy, name)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} has shape {arr.shape} but {of} has shape {tuple(shape)}: "
            f"{name} must have the forward output's shape"
        )
    return arr.astype(np.float64, copy=True)


def flat_indices(indices, x: np.ndarray) -> np.ndarray:
    """Flat C-order indices into ``x`` (all of them for None), as an intp array."""
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


def thresholds(values) -> tuple[float, float, float]:
    """Three positive, increasing, finite numbers (good, ok, suspicious)."""
    try:
        out = tuple(float(t) for t in values)
    except TypeError as exc:
        raise TypeError(
            f"thresholds must be three numbers (good, ok, suspicious), got {values!r}"
        ) from exc
    if len(out) != 3:
        raise ValueError(f"thresholds must be three numbers (good, ok, suspicious), got {values!r}")
    if not (0 < out[0] < out[1] < out[2]) or not all(map(math.isfinite, out)):
        raise ValueError(f"thresholds must be positive and increasing, got {values!r}")
    return out


def input_names(names, k: int) -> list[str]:
    """``k`` distinct names for the inputs: "x" for one, "x0", "x1", ... for several."""
    if names is None:
        return ["x"] if k == 1 else [f"x{i}" for i in range(k)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if len(names) != k or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be {k} strings, one per input, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {names}")
    return names
