"""Argument checking shared by every public kernel.

The compiled kernels trust their arguments completely (numba does no bounds checking), so
every public function runs its inputs through these helpers first (with the generic ones
of ``cvcourse._checks``: ``as_flag``, ``as_int``). Each helper either
returns a normalised value or raises a ``ValueError``/``TypeError`` whose message names the
argument and the shapes involved.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_pair(value, name: str, *, minimum: int) -> tuple[int, int]:
    """Normalise an int or a pair of ints (torch's ``_pair``) to ``(h, w)``.

    Raises ``TypeError`` for anything that is not an integer (bools included) and
    ``ValueError`` for values below ``minimum``.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return pair


def as_float_array(x, name: str, ndim: int, layout: str = "") -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array of rank ``ndim``.

    ``layout`` (e.g. ``"(N, C, H, W)"``) is shown in the error for a wrong rank.

    The compiled kernels are specialised for C-contiguous arrays only, so that each
    dtype compiles once; non-contiguous views are copied here.
    """
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # e.g. ragged nested lists
            raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}") from exc
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {x.dtype}")
    if x.ndim != ndim:
        layout = f" {layout}" if layout else ""
        raise ValueError(f"{name} must be {ndim}-D{layout}, got shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    return np.ascontiguousarray(x)


def same_dtype(reference: np.ndarray, reference_name: str, **others: np.ndarray) -> None:
    """Raise ``TypeError`` unless every array in ``others`` has ``reference``'s dtype."""
    for name, array in others.items():
        if array is not None and array.dtype != reference.dtype:
            raise TypeError(
                f"{name} has dtype {array.dtype} but {reference_name} has dtype "
                f"{reference.dtype}: pass both as float32 or both as float64"
            )


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """``floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1`` (torch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def output_hw(
    x_shape: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    what: str,
) -> tuple[int, int]:
    """Output height and width of a sliding window over ``x_shape[-2:]``.

    Raises ``ValueError`` when the (dilated) window is larger than the padded input,
    naming ``what`` (the kernel's description) and the shapes.
    """
    height, width = x_shape[-2:]
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    padded = (height + 2 * padding[0], width + 2 * padding[1])
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(
            f"{what} spans {span[0]}x{span[1]} (kernel {kernel[0]}x{kernel[1]}, dilation "
            f"{dilation}) but the padded input is only {padded[0]}x{padded[1]} "
            f"(input {height}x{width}, padding {padding}): the output would be empty"
        )
    return (
        output_size(height, kernel[0], stride[0], padding[0], dilation[0]),
        output_size(width, kernel[1], stride[1], padding[1], dilation[1]),
    )


def check_grad_shape(dy: np.ndarray, expected: tuple[int, ...], forward: str) -> None:
    """Raise ``ValueError`` unless the upstream gradient has the forward output's shape."""
    if tuple(dy.shape) != tuple(expected):
        raise ValueError(
            f"dy has shape {tuple(dy.shape)} but the output of {forward} has shape "
            f"{tuple(expected)}: dy must match the forward output"
        )
