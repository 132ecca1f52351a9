"""Weight initialisation: Kaiming (He) and Xavier (Glorot), seeded, with torch's fans.

Each function takes a ``shape`` and returns a new array (torch's ``nn.init.*_`` fill a
tensor in place; ours return one, to assign with ``layer.params["weight"][...] = ...``).
Randomness comes from ``rng=`` (an ``np.random.Generator``) or ``seed=`` (an int; neither
means a fresh unseeded generator).

Fans, as ``torch.nn.init._calculate_fan_in_and_fan_out`` computes them::

    linear weight (out, in):            fan_in = in,            fan_out = out
    conv weight (out, in/g, kH, kW):    fan_in = in/g * kH*kW,  fan_out = out * kH*kW

Formulas (``gain`` from :func:`calculate_gain`, ``fan`` = fan_in or fan_out per ``mode``)::

    kaiming_uniform:  U(-b, b),  b = gain * sqrt(3 / fan)
    kaiming_normal:   N(0, s^2), s = gain / sqrt(fan)          (ReLU: s = sqrt(2 / fan_in))
    xavier_uniform:   U(-b, b),  b = gain * sqrt(6 / (fan_in + fan_out))
    xavier_normal:    N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))

**The layers' default** (``Linear``, ``Conv2d``) is torch's: ``kaiming_uniform`` with
``a = sqrt(5)`` for the weight, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and the bias
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, drawn weight first, then bias, from the layer's
generator. We mirror torch so that a model built here starts like the same model in torch
and trains alike. For deep ReLU networks, ``kaiming_normal(shape, nonlinearity="relu")`` is
the principled choice (variance ``2 / fan_in`` keeps activations' scale through the layers).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .base import as_param_dtype

__all__ = [
    "as_generator",
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "kaiming_normal",
    "kaiming_uniform",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
]


def as_generator(seed=None, rng=None) -> np.random.Generator:
    """The generator to draw from: ``rng`` if given, else ``np.random.default_rng(seed)``."""
    if rng is not None:
        if seed is not None:
            raise ValueError("pass either seed= or rng=, not both")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy Generator (np.random.default_rng(seed)), got "
                f"{type(rng).__name__}"
            )
        return rng
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    return np.random.default_rng(None if seed is None else int(seed))


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(shape)
    except TypeError as exc:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from exc
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in out):
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}")
    if any(s < 0 for s in out):
        raise ValueError(f"shape must not have negative sizes, got {shape!r}")
    return tuple(int(s) for s in out)


def calculate_fan_in_and_fan_out(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``, exactly as torch computes them.

    ``fan_in = shape[1] * receptive``, ``fan_out = shape[0] * receptive`` with
    ``receptive = prod(shape[2:])`` (1 for a linear weight). Needs at least 2 dimensions.
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Torch's recommended gain for ``nonlinearity``.

    1 for linear/conv/sigmoid, 5/3 tanh, sqrt(2) relu, ``sqrt(2 / (1 + a^2))`` leaky_relu
    (``a = param``, default 0.01), 3/4 selu.
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4.0
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise TypeError(f"negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1.0 + slope**2))
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fan(shape, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialise a weight of shape {tuple(shape)}: its {mode} is 0")
    return fan


def uniform(shape, low: float, high: float, *, seed=None, rng=None, dtype=np.float32):
    """``U(low, high)`` samples of ``shape`` in ``dtype`` (used for the default bias)."""
    shape = _shape(shape)
    dtype = as_param_dtype(dtype)
    if not low <= high:
        raise ValueError(f"uniform needs low <= high, got low={low!r}, high={high!r}")
    return as_generator(seed, rng).uniform(low, high, size=shape).astype(dtype)


def kaiming_uniform(
    shape,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    seed=None,
    rng=None,
    dtype=np.float32,
) -> np.ndarray:
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``, as torch's ``kaiming_uniform_``.

    ``gain = calculate_gain(nonlinearity, a)``; the defaults give ``gain = sqrt(2)``, and
    ``a = sqrt(5)`` gives torch's layer default ``b = 1/sqrt(fan)``.
    """
    shape = _shape(shape)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(shape, -bound, bound, seed=seed, rng=rng, dtype=dtype)


def kaiming_normal(
    shape,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    seed=None,
    rng=None,
    dtype=np.float32,
) -> np.ndarray:
    """He normal: ``N(0, s^2)`` with ``s = gain / sqrt(fan)`` (ReLU: ``sqrt(2 / fan_in)``)."""
    shape = _shape(shape)
    dtype = as_param_dtype(dtype)
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return as_generator(seed, rng).normal(0.0, std, size=shape).astype(dtype)


def xavier_uniform(shape, gain: float = 1.0, *, seed=None, rng=None, dtype=np.float32):
    """Glorot uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    shape = _shape(shape)
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    if fan_in + fan_out == 0:
        raise ValueError(f"cannot initialise a weight of shape {shape}: its fans are 0")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -bound, bound, seed=seed, rng=rng, dtype=dtype)


def xavier_normal(shape, gain: float = 1.0, *, seed=None, rng=None, dtype=np.float32):
    """Glorot normal: ``N(0, s^2)`` with ``s = gain * sqrt(2 / (fan_in + fan_out))``."""
    shape = _shape(shape)
    dtype = as_param_dtype(dtype)
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    if fan_in + fan_out == 0:
        raise ValueError(f"cannot initialise a weight of shape {shape}: its fans are 0")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return as_generator(seed, rng).normal(0.0, std, size=shape).astype(dtype)


def default_weight_and_bias(weight_shape, bias: bool, rng, dtype):
    """Torch's default for Linear/Conv2d (``reset_parameters``): weight, then bias."""
    weight = kaiming_uniform(weight_shape, a=math.sqrt(5), rng=rng, dtype=dtype)
    if not bias:
        return weight, None
    fan_in, _ = calculate_fan_in_and_fan_out(weight_shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return weight, uniform((weight_shape[0],), -bound, bound, rng=rng, dtype=dtype)
