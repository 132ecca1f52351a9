"""The pair every loader returns: images and their labels."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LabelledImages(NamedTuple):
    """Images with one class label each; unpacks like a tuple: ``x, y = load_digits()``.

    images:  ``(N, C, H, W)`` array (float32 in ``[0, 1]`` unless a loader says otherwise)
    labels:  ``(N,)`` int64 array; ``labels[i]`` is the class index of ``images[i]``
    """

    images: np.ndarray
    labels: np.ndarray
