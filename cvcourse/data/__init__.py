"""Data for the course notebooks, available offline.

Sample images (``cvcourse.data.samples``; see its docstring for each image and the
conventions):

    sample_image(name="grace_hopper", gray=False)   float32 image in [0, 1], channels last
    sample_image_names()                            the names sample_image accepts
    rgb_to_gray(image)                              ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B
    to_nchw(image), from_nchw(batch)                (H, W[, C]) <-> (1, C, H, W) for conv2d

Importing this package costs only numpy: the file readers (Pillow, matplotlib, gzip) are
imported when an image is loaded. Loaders added here must keep it that way.
"""

from .samples import (
    LUMA_WEIGHTS,
    from_nchw,
    rgb_to_gray,
    sample_image,
    sample_image_names,
    to_nchw,
)

__all__ = [
    "LUMA_WEIGHTS",
    "from_nchw",
    "rgb_to_gray",
    "sample_image",
    "sample_image_names",
    "to_nchw",
]
