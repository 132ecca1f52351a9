"""Small reference CNNs built from ``cvcourse.nn``, used by the showcase and the lectures.

Both follow LeNet's pattern, conv -> ReLU -> max-pool twice, then fully connected layers,
sized for the course's embedded data sets. They are seeded, so a run is reproducible.
"""

from __future__ import annotations

from . import nn


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    return seed


def _check_num_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")


def lenet_digits(num_classes: int = 10, *, seed: int = 0) -> nn.Sequential:
    """A LeNet-style CNN for ``(N, 1, 8, 8)`` digits (``cvcourse.data.load_digits``).

    Shapes: ``(N, 1, 8, 8)`` -> conv 3x3 (8) -> pool -> ``(N, 8, 4, 4)`` -> conv 3x3 (16)
    -> pool -> ``(N, 16, 2, 2)`` -> flatten 64 -> linear 64 -> linear ``num_classes``
    (logits, for ``CrossEntropyLoss``). 6,058 parameters with 10 classes.
    """
    seed = _check_seed(seed)
    _check_num_classes(num_classes)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, seed=seed),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, seed=seed + 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 64, seed=seed + 2),
        nn.ReLU(),
        nn.Linear(64, num_classes, seed=seed + 3),
    )


def shapes_cnn(num_classes: int = 5, size: int = 28, *, seed: int = 0) -> nn.Sequential:
    """A small CNN for ``(N, 1, size, size)`` binary shapes (``cvcourse.data.load_shapes``).

    Shapes: conv 5x5 (8) -> pool -> conv 3x3 (16) -> pool -> flatten
    ``16 * (size // 4)**2`` -> linear ``num_classes``. ``size`` must be a multiple of 4.
    """
    seed = _check_seed(seed)
    if isinstance(size, bool) or not isinstance(size, int) or size < 4 or size % 4:
        raise ValueError(f"size must be a positive multiple of 4, got {size!r}")
    _check_num_classes(num_classes)
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2, seed=seed),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, seed=seed + 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (size // 4) ** 2, num_classes, seed=seed + 2),
    )
