"""Losses: ``MSELoss``, ``CrossEntropyLoss``, ``MultiMarginLoss``, plus ``softmax``.

``CrossEntropyLoss`` is numerically stable; ``MultiMarginLoss`` is the multiclass hinge loss.

A loss is called as ``loss.forward(prediction, target) -> float`` (or ``loss(...)``); then
``loss.backward() -> d loss / d prediction``, of the prediction's shape and dtype.
``backward(dloss)`` scales the gradient by an upstream ``dloss`` (default 1). Both reduce
by the mean, as torch's default ``reduction="mean"``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .base import FLOAT_DTYPES

__all__ = ["CrossEntropyLoss", "Loss", "MSELoss", "MultiMarginLoss", "log_softmax", "softmax"]


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log softmax(x) = x - max - log(sum(exp(x - max)))`` along ``axis``, without overflow.

    Subtracting the maximum makes every exponent ``<= 0``, so ``exp`` never overflows and
    the sum is at least 1 (its log is finite), for logits of any size.
    """
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (stable, rows sum to 1)."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


class Loss:
    """Base class of the losses: ``forward(prediction, target) -> float``, ``backward()``."""

    def __init__(self) -> None:
        # what forward keeps for backward: each loss stores its own tuple
        self._cache: Any = None

    def __call__(self, prediction, target) -> float:
        return self.forward(prediction, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def forward(self, prediction, target) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dloss: float = 1.0) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(
                f"{self!r}: backward() was called before forward(); compute the loss first"
            )
        return self._cache

    def _scale(self, dloss) -> float:
        if isinstance(dloss, np.ndarray) and dloss.shape == ():
            dloss = dloss.item()
        if isinstance(dloss, bool) or not isinstance(dloss, numbers.Real):
            raise TypeError(f"{self!r}: dloss must be a real number, got {dloss!r}")
        return float(dloss)

    def _prediction(self, x, name: str, ndim: int | None = None, layout: str = ""):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self!r}: {name} must be a numpy array, got {type(x).__name__}")
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{self!r}: {name} must be float32 or float64, got dtype {x.dtype}")
        if ndim is not None and x.ndim != ndim:
            raise ValueError(f"{self!r}: {name} must be {ndim}-D {layout}, got shape {x.shape}")
        if x.size == 0:
            raise ValueError(f"{self!r}: {name} is empty (shape {x.shape}); the mean is undefined")
        return x


class MSELoss(Loss):
    """Mean squared error (``torch.nn.MSELoss``), the mean over every element.

    ::

        L = mean((prediction - target)^2)            dL/dprediction = 2 (prediction - target) / size

    (``size`` = number of elements; for predictions of shape ``(N,)`` this is the batch mean).
    ``target`` must have the prediction's shape and is cast to its dtype.
    """

    def forward(self, prediction, target) -> float:
        prediction = self._prediction(prediction, "prediction")
        target = np.asarray(target)
        if target.dtype.kind not in "fiu":
            raise TypeError(f"{self!r}: target must hold real numbers, got dtype {target.dtype}")
        if target.shape != prediction.shape:
            raise ValueError(
                f"{self!r}: target has shape {target.shape} but prediction has shape "
                f"{prediction.shape}; they must match (no broadcasting)"
            )
        diff = prediction - target.astype(prediction.dtype, copy=False)
        self._cache = diff
        return float(np.mean(diff * diff))

    def backward(self, dloss: float = 1.0) -> np.ndarray:
        """``dloss * 2 (prediction - target) / size``, the prediction's shape and dtype."""
        diff = self._cached()
        scale = diff.dtype.type(2.0 * self._scale(dloss) / diff.size)
        return diff * scale


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy (``torch.nn.CrossEntropyLoss``) for integer class labels.

    ::

        L = -(1/N) sum_n log softmax(s_n)[y_n]
          = (1/N) sum_n (logsumexp(s_n) - s_n[y_n])
        dL/ds = (softmax(s) - one_hot(y)) / N       (the fused softmax + log-loss gradient)

    ``logits`` ``s`` is ``(N, C)``, ``target`` ``y`` is ``(N,)`` integers in ``[0, C)``. The
    log-softmax subtracts each row's maximum first, so logits of any size (1e4 and beyond)
    give a finite loss and gradient.
    """

    def forward(self, logits, target) -> float:
        logits = self._prediction(logits, "logits", 2, "(N, C)")
        target = self._labels(logits, target)
        log_probs = log_softmax(logits, axis=1)
        self._cache = (log_probs, target)
        return float(-np.mean(log_probs[np.arange(len(target)), target]))

    def _labels(self, logits, target) -> np.ndarray:
        """``target`` as intp class indices, one per row of ``logits``, each in ``[0, C)``."""
        n, classes = logits.shape
        if not isinstance(target, np.ndarray):
            target = np.asarray(target)
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"{self!r}: target must be integer class indices (N,), got dtype "
                f"{target.dtype} (use target.astype(np.int64))"
            )
        if target.shape != (n,):
            raise ValueError(
                f"{self!r}: target has shape {target.shape} but logits {logits.shape} need "
                f"one class index per example, shape ({n},)"
            )
        bad = (target < 0) | (target >= classes)
        if bad.any():
            raise ValueError(
                f"{self!r}: target has labels outside [0, {classes}) for logits with {classes} "
                f"classes, e.g. {target[bad][:5].tolist()}"
            )
        return target.astype(np.intp, copy=False)

    def backward(self, dloss: float = 1.0) -> np.ndarray:
        """``dloss * (softmax(logits) - one_hot(target)) / N``, shape ``(N, C)``."""
        log_probs, target = self._cached()
        n = log_probs.shape[0]
        grad = np.exp(log_probs)
        grad[np.arange(n), target] -= 1
        grad *= grad.dtype.type(self._scale(dloss) / n)
        return grad


class MultiMarginLoss(CrossEntropyLoss):
    """The multiclass hinge (SVM) loss on class scores, ``torch.nn.MultiMarginLoss``.

    ::

        L = (1/N) sum_n (1/C) sum_{j != y_n} max(0, margin - s_n[y_n] + s_n[j])
        dL/ds_n[j]   = [margin - s_n[y_n] + s_n[j] > 0] / (N C)         (j != y_n)
        dL/ds_n[y_n] = -(number of such j) / (N C)

    Each wrong class whose score comes within ``margin`` (default 1) of the true class's
    score costs the gap; once every wrong class is ``margin`` below, the loss and its
    gradient are exactly 0 (cross-entropy is never 0: it always asks for a wider gap).
    torch divides by the number of classes ``C``; the CS231n notes' SVM loss
    ``sum_{j != y} max(0, s_j - s_y + Delta)`` is ``C`` times this. At the hinge itself
    (a term exactly 0) the gradient is 0, as torch's. ``logits`` ``(N, C)``, ``target``
    ``(N,)`` integers in ``[0, C)``.
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
            raise TypeError(f"MultiMarginLoss: margin must be a real number, got {margin!r}")
        if not np.isfinite(margin):
            raise ValueError(f"MultiMarginLoss: margin must be finite, got {margin!r}")
        self.margin: float = float(margin)

    def __repr__(self) -> str:
        return f"MultiMarginLoss(margin={self.margin})"

    def forward(self, logits, target) -> float:
        logits = self._prediction(logits, "logits", 2, "(N, C)")
        target = self._labels(logits, target)
        n, classes = logits.shape
        rows = np.arange(n)
        margins = self.margin - logits[rows, target][:, None] + logits  # (N, C)
        margins[rows, target] = 0  # the true class is not compared with itself
        active = margins > 0
        self._cache = (active, target, logits.dtype)
        return float(np.sum(np.where(active, margins, 0)) / (n * classes))

    def backward(self, dloss: float = 1.0) -> np.ndarray:
        """``dloss`` times the gradient above, shape ``(N, C)``, the logits' dtype."""
        active, target, dtype = self._cached()
        n, classes = active.shape
        grad = active.astype(dtype)
        grad[np.arange(n), target] = -active.sum(axis=1)
        grad *= grad.dtype.type(self._scale(dloss) / (n * classes))
        return grad
