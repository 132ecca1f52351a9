"""The classic 3x3 image filters of the lectures, and helpers to apply them with conv2d.

Every kernel ``K`` (shape ``(kH, kW)``, here 3 x 3) is meant to be applied as a
**cross-correlation**, like ``torch.nn.functional.conv2d`` and ``cvcourse.kernels.conv2d``:
with zero padding ``p = k // 2`` (``padding=1`` for 3 x 3, which keeps the image size)

    out[y, x] = sum_{i, j} K[i, j] * img[y + i - kH // 2, x + j - kW // 2]

so ``K[0, :]`` weighs the row *above* the pixel and ``K[:, 0]`` the column to its *left*.
(A true convolution, e.g. ``scipy.signal.convolve2d``, flips the kernel on both axes: the
symmetric blurs, sharpen and outline do not change, but every Sobel kernel turns into its
opposite (top <-> bottom, left <-> right) and emboss is mirrored.)

The registry ``FILTERS`` (values as on setosa.io's "Image Kernels" page):

    name           kernel                                     sum  effect
    identity       [[0, 0, 0], [0, 1, 0], [0, 0, 0]]          1    none
    box_blur       1/9 [[1, 1, 1], [1, 1, 1], [1, 1, 1]]      1    mean of the 3x3 neighbourhood
    gaussian_blur  1/16 [[1, 2, 1], [2, 4, 2], [1, 2, 1]]     1    centre-weighted mean, smoother
    sharpen        [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]      1    p + 4 (p - mean of 4 neighbours)
    sobel_top      [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]       0    > 0 where the top is brighter
    sobel_bottom   [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]       0    > 0 where the bottom is brighter
    sobel_left     [[1, 0, -1], [2, 0, -2], [1, 0, -1]]       0    > 0 where the left is brighter
    sobel_right    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]       0    > 0 where the right is brighter
    outline        [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]  0    8 (p - mean of 8 neighbours)
    emboss         [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]       1    p + bottom-right minus top-left

Kernels summing to 1 keep a flat region's brightness; kernels summing to 0 map flat regions
to 0 and only respond to change. Edge responses are not in ``[0, 1]`` (a Sobel kernel gives
up to +-4 on an image in ``[0, 1]``, outline up to +-8): show ``abs(out)`` or clip for display.

Functions:

    filter_names()                              the registry's names
    get_filter(name, dtype=np.float64)          a fresh, writable copy of one kernel
    gaussian_kernel(size, sigma)                a sampled 2-D Gaussian, normalised to sum 1
    as_conv_weight(kernel, channels, depthwise) the kernel as a torch-layout conv2d weight

Only numpy is imported; nothing here needs torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

__all__ = [
    "FILTERS",
    "as_conv_weight",
    "filter_names",
    "gaussian_kernel",
    "get_filter",
]


def _frozen(rows, scale: float = 1.0) -> np.ndarray:
    kernel = np.asarray(rows, dtype=np.float64) * scale
    kernel.setflags(write=False)
    return kernel


_SOBEL_TOP = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
_SOBEL_LEFT = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]

#: name -> read-only float64 (3, 3) kernel. A read-only mapping: use :func:`get_filter`
#: for a copy you may modify (or hand to ``torch.from_numpy``, which warns on read-only
#: arrays), and keep your own kernels in a dict of your own.
FILTERS: Mapping[str, np.ndarray] = MappingProxyType(
    {
        "identity": _frozen([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
        "box_blur": _frozen(np.ones((3, 3)), 1 / 9),
        "gaussian_blur": _frozen([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
        "sharpen": _frozen([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
        "sobel_top": _frozen(_SOBEL_TOP),
        "sobel_bottom": _frozen(_SOBEL_TOP, -1.0),
        "sobel_left": _frozen(_SOBEL_LEFT),
        "sobel_right": _frozen(_SOBEL_LEFT, -1.0),
        "outline": _frozen([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
        "emboss": _frozen([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    }
)


def filter_names() -> list[str]:
    """Return the names of the filters in :data:`FILTERS`, in the lectures' order."""
    return list(FILTERS)


def _float_dtype(dtype, name: str = "dtype") -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be a numpy floating dtype, got {dtype!r}") from exc
    if resolved.kind != "f":
        raise TypeError(f"{name} must be a floating dtype (e.g. np.float32), got {resolved}")
    return resolved


def get_filter(name: str, dtype=np.float64) -> np.ndarray:
    """Return a fresh, writable ``(3, 3)`` copy of the filter ``name`` as ``dtype``.

    Raises ``ValueError`` for an unknown name (the message lists the valid ones) and
    ``TypeError`` for a non-floating ``dtype`` (an integer box blur would be all zeros).
    """
    if not isinstance(name, str) or name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; valid names: {', '.join(filter_names())}")
    return np.array(FILTERS[name], dtype=_float_dtype(dtype), copy=True)


def gaussian_kernel(size: int, sigma: float, dtype=np.float64) -> np.ndarray:
    """A ``(size, size)`` Gaussian blur kernel, sampled at the pixel centres, summing to 1.

    With ``c = size // 2`` (the centre index)

        g[i, j] = exp(-((i - c)**2 + (j - c)**2) / (2 * sigma**2))
        kernel  = g / g.sum()

    It is separable: ``kernel == np.outer(k, k)`` for the 1-D ``k[i] ~ exp(-(i - c)**2 /
    (2 sigma**2))``. ``sigma = 1 / sqrt(2 ln 2)`` (about 0.849) gives exactly the 3 x 3
    ``gaussian_blur`` filter, 1/16 [[1, 2, 1], [2, 4, 2], [1, 2, 1]]. Pick ``size`` around
    ``6 * sigma`` (rounded up to odd) so the truncated tails are negligible.

    Raises ``TypeError`` unless ``size`` is an int (not a bool) and ``sigma`` a real number,
    ``ValueError`` unless ``size`` is odd and positive and ``sigma`` finite and > 0.
    """
    if not isinstance(size, numbers.Integral) or isinstance(size, bool):
        raise TypeError(f"size must be an int, got {size!r}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and positive (the kernel needs a centre), got {size}")
    if not isinstance(sigma, numbers.Real) or isinstance(sigma, bool):
        raise TypeError(f"sigma must be a real number, got {sigma!r}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be finite and > 0, got {sigma!r}")
    dtype = _float_dtype(dtype)
    offsets = np.arange(size, dtype=np.float64) - size // 2
    profile = np.exp(-(offsets**2) / (2.0 * float(sigma) ** 2))
    kernel = np.outer(profile, profile)
    return (kernel / kernel.sum()).astype(dtype)


def as_conv_weight(kernel, channels: int = 1, depthwise: bool = False, dtype=None) -> np.ndarray:
    """Build a conv2d weight that applies one 2-D ``kernel`` to every channel separately.

    The weight has torch's layout ``(out_channels, in_channels // groups, kH, kW)`` and
    ``out_channels == in_channels == channels``; output channel ``c`` is ``kernel``
    cross-correlated with input channel ``c`` alone, whichever form is chosen:

    * ``depthwise=False`` (default): shape ``(C, C, kH, kW)``, ``weight[o, i] = kernel``
      if ``o == i`` else zeros. Use it with **groups=1** (the default of every conv2d).
    * ``depthwise=True``: shape ``(C, 1, kH, kW)``, ``weight[c, 0] = kernel``. Use it with
      **groups=C** (``groups=channels``); it does C times less arithmetic.

    For example, blurring an RGB batch ``x`` of shape ``(N, 3, H, W)``::

        w = torch.from_numpy(as_conv_weight("gaussian_blur", channels=3, depthwise=True))
        y = F.conv2d(x, w, padding=1, groups=3)

    Parameters
    ----------
    kernel:
        A 2-D array-like of real numbers, or the name of a filter in :data:`FILTERS`.
    channels:
        C, the number of image channels (a positive int).
    depthwise:
        Which of the two forms above to return.
    dtype:
        Floating dtype of the result; by default the kernel's own dtype if it is floating,
        else float64. (``cvcourse.kernels`` and torch want the image's dtype.)

    Returns a new, writable, C-contiguous array. Raises ``TypeError`` for a non-int
    ``channels``, a non-bool ``depthwise``, a non-numeric kernel or a non-floating dtype, and
    ``ValueError`` for an unknown filter name, a kernel that is not 2-D, empty or not finite,
    and ``channels < 1``.
    """
    if isinstance(kernel, str):
        kernel = get_filter(kernel)
    try:
        kernel = np.asarray(kernel)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"kernel must be a 2-D array, got {type(kernel).__name__}") from exc
    if kernel.dtype.kind not in "biuf":
        raise TypeError(f"kernel must hold real numbers, got dtype {kernel.dtype}")
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D (kH, kW), got shape {kernel.shape}")
    if 0 in kernel.shape:
        raise ValueError(f"kernel must not be empty, got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel must be finite (it contains NaN or inf)")
    if not isinstance(channels, numbers.Integral) or isinstance(channels, bool):
        raise TypeError(f"channels must be an int, got {channels!r}")
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    if not isinstance(depthwise, (bool, np.bool_)):
        raise TypeError(f"depthwise must be True or False, got {depthwise!r}")
    if dtype is None:
        dtype = kernel.dtype if kernel.dtype.kind == "f" else np.float64
    dtype = _float_dtype(dtype)

    channels = int(channels)
    kh, kw = kernel.shape
    if depthwise:
        weight = np.empty((channels, 1, kh, kw), dtype=dtype)
        weight[:] = kernel
    else:
        weight = np.zeros((channels, channels, kh, kw), dtype=dtype)
        index = np.arange(channels)
        weight[index, index] = kernel
    return weight
