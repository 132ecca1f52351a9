"""Sample images that ship with the installed packages, so notebooks need no network.

Every image comes from matplotlib's own ``mpl-data/sample_data`` folder (matplotlib is a
dependency of cvcourse, and Pillow, which decodes the files, is one of matplotlib's):

    name             returned shape   file (native mode): content
    grace_hopper     (600, 512, 3)    grace_hopper.jpg (RGB): portrait photo of Grace Hopper
    present          (128, 128, 3)    Minduka_Present_Blue_Pack.png (RGBA): a blue gift box
    matplotlib_logo  (130, 542, 3)    logo2.png (RGBA): the matplotlib logo, sharp edges
    mri              (256, 256)       s1045.ima.gz (grey): sagittal MRI slice of a head

Conventions of everything returned here:

* ``float32`` values in ``[0, 1]``, channels last: ``(H, W)`` for grey, ``(H, W, 3)`` for
  RGB. Row 0 is the top of the picture (as ``plt.imshow`` shows it).
* 8-bit files are divided by 255. RGBA files are composited over a white background,
  ``rgb * alpha + 1 * (1 - alpha)`` (what a viewer shows on a white page), so the colour
  stored under fully transparent pixels, which is arbitrary (black in ``logo2.png``), never
  leaks into the image.
* ``s1045.ima.gz`` has no header: it is 256 x 256 unsigned 16-bit integers, read here
  little-endian and divided by ``2**16 - 1`` exactly as matplotlib's own MRI examples do.
  Every low byte is zero, so the slice really has 8-bit precision; its maximum is about
  0.84, not 1.
* Grey conversion (``gray=True`` or :func:`rgb_to_gray`) is the ITU-R BT.601 luma
  ``Y = 0.299 R + 0.587 G + 0.114 B``, applied to the stored (gamma-encoded) values, the
  same weights as Pillow's ``convert("L")`` but without rounding to 8 bits.

Helpers for feeding an image to a convolution (``torch.nn.functional.conv2d`` or
``cvcourse.kernels.conv2d``), which want an ``(N, C, H, W)`` batch:

    to_nchw(image)    (H, W) -> (1, 1, H, W);  (H, W, C) -> (1, C, H, W)
    from_nchw(batch)  (1, C, H, W) -> (H, W, C), or (H, W) when C == 1

Pillow, matplotlib and gzip are imported inside the functions, so importing this module
costs only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validate import as_array

__all__ = [
    "LUMA_WEIGHTS",
    "from_nchw",
    "rgb_to_gray",
    "sample_image",
    "sample_image_names",
    "to_nchw",
]

#: ITU-R BT.601 luma weights for (R, G, B), used by :func:`rgb_to_gray`.
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class _Sample:
    filename: str  # inside matplotlib's mpl-data/sample_data
    description: str


_SAMPLES: dict[str, _Sample] = {
    "grace_hopper": _Sample("grace_hopper.jpg", "portrait photo of Grace Hopper, RGB 600x512"),
    "present": _Sample("Minduka_Present_Blue_Pack.png", "a blue gift box, RGBA 128x128"),
    "matplotlib_logo": _Sample("logo2.png", "the matplotlib logo, RGBA 130x542"),
    "mri": _Sample("s1045.ima.gz", "sagittal MRI slice of a head, grey 256x256"),
}

_MRI_SHAPE = (256, 256)


def sample_image_names() -> list[str]:
    """Return the names :func:`sample_image` accepts, in a fixed order."""
    return list(_SAMPLES)


def _sample_data_dir() -> Path:
    """Matplotlib's ``mpl-data/sample_data`` folder (where every sample file lives)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


def sample_image(name: str = "grace_hopper", gray: bool = False) -> np.ndarray:
    """Load one of the bundled sample images as a ``float32`` array in ``[0, 1]``.

    Parameters
    ----------
    name:
        One of :func:`sample_image_names`: ``"grace_hopper"`` (photo), ``"present"``,
        ``"matplotlib_logo"``, ``"mri"`` (see the module docstring for each).
    gray:
        If true, return a grey ``(H, W)`` image: RGB samples are converted with the
        ITU-R BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (:func:`rgb_to_gray`).
        If false, return the image in its own mode: ``(H, W, 3)`` for the colour samples
        (alpha composited over white), ``(H, W)`` for the grey ``"mri"``.

    Returns
    -------
    A new, writable, C-contiguous ``float32`` array, row 0 at the top.

    Raises
    ------
    ValueError
        ``name`` is not a sample name (the message lists the valid ones).
    FileNotFoundError
        The sample's file is missing from matplotlib's installation.
    OSError
        The file exists but cannot be decoded (truncated or corrupt); the message names it.
    """
    if not isinstance(name, str) or name not in _SAMPLES:
        raise ValueError(
            f"unknown sample image {name!r}; valid names: {', '.join(sample_image_names())}"
        )
    path = _sample_data_dir() / _SAMPLES[name].filename
    if not path.is_file():
        raise FileNotFoundError(
            f"sample image {name!r}: file {path} not found (it ships with matplotlib; "
            "reinstalling matplotlib restores it)"
        )
    try:
        image = _read_mri(path) if path.name.endswith(".ima.gz") else _read_with_pillow(path)
    except Exception as exc:
        raise OSError(
            f"sample image {name!r}: cannot decode file {path} ({type(exc).__name__}: {exc}); "
            "it may be truncated or corrupt (reinstalling matplotlib restores it)"
        ) from exc
    if gray and image.ndim == 3:
        image = rgb_to_gray(image)
    return np.ascontiguousarray(image, dtype=np.float32)


def _read_with_pillow(path: Path) -> np.ndarray:
    """Decode an 8-bit image file to float32 ``(H, W)`` grey or ``(H, W, 3)`` RGB in [0, 1]."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()  # decode now, so a truncated file fails here and not later
        if img.mode in ("1", "L"):
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        rgba = np.asarray(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if rgba.shape[-1] == 4:
        alpha = rgba[..., 3:]
        rgba = rgba[..., :3] * alpha + (1.0 - alpha)  # composite over white
    return rgba


def _read_mri(path: Path) -> np.ndarray:
    """Decode matplotlib's headerless ``s1045.ima.gz``: 256 x 256 little-endian uint16."""
    import gzip

    with gzip.open(path, "rb") as f:
        raw = f.read()
    expected = _MRI_SHAPE[0] * _MRI_SHAPE[1] * 2
    if len(raw) != expected:
        raise ValueError(f"expected {expected} bytes (256 x 256 uint16), got {len(raw)}")
    pixels = np.frombuffer(raw, dtype="<u2").reshape(_MRI_SHAPE)
    return pixels.astype(np.float32) / np.float32(2**16 - 1)


def rgb_to_gray(image) -> np.ndarray:
    """Convert an ``(H, W, 3)`` RGB image to ``(H, W)`` grey with the ITU-R BT.601 luma.

    ``Y[y, x] = 0.299 R[y, x] + 0.587 G[y, x] + 0.114 B[y, x]`` (the weights sum to 1, so
    an image in ``[0, 1]`` stays in ``[0, 1]``). The result is floating point: float32 for
    float32 input, float64 otherwise (integer images keep their scale, e.g. 0..255).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"rgb_to_gray expects an (H, W, 3) image, got shape {image.shape}")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"rgb_to_gray expects a real numeric image, got dtype {image.dtype}")
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    weights = np.asarray(LUMA_WEIGHTS, dtype=dtype)
    return image.astype(dtype, copy=False) @ weights


def to_nchw(image) -> np.ndarray:
    """Turn one channels-last image into a batch of one for a convolution.

    ``(H, W)`` becomes ``(1, 1, H, W)`` and ``(H, W, C)`` becomes ``(1, C, H, W)``, i.e.
    ``batch[0, c, y, x] == image[y, x, c]``. The dtype is kept (``torch.from_numpy`` and
    ``cvcourse.kernels`` want float32 or float64) and the result is a new C-contiguous array.

    Raises ``ValueError`` for other ranks, empty images, and a 3-D array that looks
    channels-first, ``(C, H, W)`` with ``C`` in (1, 3, 4) and a last axis longer than 4:
    such an array needs ``image[None]``, not this function. (For a genuine channels-last
    image of height 1, 3 or 4 with more than 4 channels, use
    ``np.moveaxis(image, -1, 0)[None]``.) Raises ``TypeError`` for non-numeric input.
    """
    image = as_array(image, "image")
    if image.ndim not in (2, 3):
        raise ValueError(
            f"to_nchw expects an (H, W) or (H, W, C) image, got shape {image.shape}"
            + (" (already a batch? it is 4-D)" if image.ndim == 4 else "")
        )
    if 0 in image.shape:
        raise ValueError(f"to_nchw expects a non-empty image, got shape {image.shape}")
    if image.ndim == 2:
        return np.ascontiguousarray(image[None, None])
    if image.shape[0] in (1, 3, 4) and image.shape[2] > 4:
        raise ValueError(
            f"image of shape {image.shape} looks channels-first (C, H, W); to_nchw expects "
            "channels-last (H, W, C). For a (C, H, W) array use image[None]."
        )
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)[None])


def from_nchw(batch, *, squeeze: bool = True) -> np.ndarray:
    """Inverse of :func:`to_nchw`: ``(1, C, H, W)`` -> ``(H, W, C)``.

    With ``squeeze=True`` (the default) a single channel gives ``(H, W)``, ready for
    ``plt.imshow(..., cmap="gray")``; ``squeeze=False`` always returns ``(H, W, C)``.
    Accepts a numpy array or a torch tensor (detached and copied to the CPU). The
    result is a new C-contiguous array with the input's dtype.

    Raises ``ValueError`` unless ``batch`` is 4-D with exactly one image and no empty axis.
    """
    batch = as_array(batch, "batch")
    if batch.ndim != 4:
        raise ValueError(f"from_nchw expects a (1, C, H, W) batch, got shape {batch.shape}")
    if batch.shape[0] != 1:
        raise ValueError(
            f"from_nchw expects a batch of exactly one image, got shape {batch.shape}; "
            "pass batch[i:i + 1] to pick image i"
        )
    if 0 in batch.shape:
        raise ValueError(f"from_nchw expects a non-empty batch, got shape {batch.shape}")
    image = np.moveaxis(batch[0], 0, -1)
    if squeeze and image.shape[-1] == 1:
        image = image[..., 0]
    return np.ascontiguousarray(image)
