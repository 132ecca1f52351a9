"""Iterating over a dataset in minibatches, the way training loops (and torch) do.

    loader = DataLoader(x, y, batch_size=64, shuffle=True, seed=0, drop_last=False)
    for epoch in range(10):
        for xb, yb in loader:       # a new order every epoch
            ...
    len(loader)                     # batches per epoch

With ``shuffle=True`` epoch ``e`` visits the samples in the order
``numpy.random.default_rng([seed, e]).permutation(N)``: the same seed gives the same
sequence of epochs in every run, and each epoch has its own order. The epoch counter
starts at 0 and advances each time an iteration starts (``loader.epoch`` is the next
epoch; ``loader.set_epoch(e)`` jumps). Without shuffling the order is 0..N-1.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from ._validate import as_array, as_flag, as_int, as_labels
from .labelled import LabelledImages

__all__ = ["DataLoader"]


class DataLoader:
    """Minibatches of ``(x, y)``, shuffled per epoch, deterministic for a seed.

    Parameters
    ----------
    x:
        ``(N, ...)`` samples, e.g. ``(N, C, H, W)`` images.
    y:
        ``(N,)`` integer labels, or ``None`` to iterate over ``x`` alone.
    batch_size:
        Samples per batch, >= 1. The last batch of an epoch holds ``N % batch_size``
        samples unless ``drop_last`` (or ``N`` is a multiple).
    shuffle:
        Visit the samples in a new random order every epoch (module docstring).
    seed:
        Non-negative int; ``None`` picks one at random (then ``loader.seed`` tells which).
    drop_last:
        Skip the last, incomplete batch of each epoch.

    Iterating yields :class:`LabelledImages` ``(xb, yb)`` (or just ``xb`` when ``y`` is
    None): new arrays, so changing a batch never changes the dataset.
    ``len(loader)`` is ``N // batch_size`` with ``drop_last``, else
    ``ceil(N / batch_size)``.
    """

    def __init__(
        self, x, y, batch_size: int, shuffle: bool = True, seed=0, drop_last: bool = False
    ):
        x = as_array(x, "x")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"x must be a non-empty (N, ...) array, got shape {x.shape}")
        self.x = x
        self.y = None if y is None else as_labels(y, "y", length=x.shape[0])
        self.batch_size = as_int(batch_size, "batch_size", low=1)
        self.shuffle = as_flag(shuffle, "shuffle")
        self.drop_last = as_flag(drop_last, "drop_last")
        if seed is None:
            # a fresh SeedSequence draws its entropy (an int) from the OS
            seed = int(cast(int, np.random.SeedSequence().entropy) % 2**63)
        self.seed = as_int(seed, "seed", low=0)
        if self.drop_last and self.batch_size > self.num_samples:
            raise ValueError(
                f"batch_size={self.batch_size} with drop_last=True and only "
                f"{self.num_samples} samples gives no batch at all"
            )
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        """``N``, the number of samples."""
        return self.x.shape[0]

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of epoch ``epoch`` (>= 0)."""
        self.epoch = as_int(epoch, "epoch", low=0)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices epoch ``epoch`` visits, in order (``(N,)`` int64)."""
        epoch = as_int(epoch, "epoch", low=0)
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        rng = np.random.default_rng([self.seed, epoch])
        return rng.permutation(self.num_samples).astype(np.int64)

    def __iter__(self):
        order = self.order(self.epoch)
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            if self.y is None:
                yield self.x[idx]
            else:
                yield LabelledImages(self.x[idx], self.y[idx])

    def __repr__(self) -> str:
        return (
            f"DataLoader(x {self.x.shape}, y {None if self.y is None else self.y.shape}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, seed={self.seed}, "
            f"drop_last={self.drop_last}; {len(self)} batches per epoch, next epoch "
            f"{self.epoch})"
        )
