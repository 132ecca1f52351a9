"""The training loop: ``fit``, ``evaluate``, the ``History`` they record, ``plot_history``.

::

    from cvcourse.nn.optim import SGD
    from cvcourse.nn.training import fit, plot_history

    opt = SGD(model, lr=0.05, momentum=0.9)
    history = fit(model, CrossEntropyLoss(), opt, train_loader, val_loader, epochs=10)
    plot_history(history)                 # loss and accuracy per epoch (a Figure)
    history.save("history.json")

A loader is any re-iterable of ``(x, y)`` batches: ``cvcourse.data.DataLoader``, a list of
tuples, ... Models and losses follow the course's API (``model.forward(x)``,
``model.backward(dy)``; ``loss.forward(scores, y) -> float``, ``loss.backward()``).
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from cvcourse._checks import as_int

__all__ = ["Evaluation", "History", "evaluate", "fit", "plot_history"]

_FIELDS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds")
# The short names assignment 4's training loop (and Keras) records: the same lists.
_SHORT_NAMES = {"train_acc": "train_accuracy", "val_acc": "val_accuracy"}
# Lists a hand-written loop may not record: one None per epoch when absent.
_MAY_BE_ABSENT = ("train_accuracy", "val_loss", "val_accuracy", "epoch_seconds")


# --- History -------------------------------------------------------------------------------


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch in every list.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss over the epoch's examples (each batch's loss weighted by its
        size; measured while the parameters change during the epoch).
    train_accuracy : list of float or None
        Fraction of training examples classified correctly during the epoch
        (``argmax(scores) == y``), or ``None`` when the targets are not class labels.
    val_loss, val_accuracy : list of float or None
        The same on ``val_loader``, measured in evaluation mode after the epoch's training;
        ``None`` without a validation loader.
    epoch_seconds : list of float or None
        Wall-clock time of the epoch (training and validation); ``None`` for a history
        whose loop did not time its epochs.

    ``len(history)`` is the number of epochs. ``to_dict()`` / ``History.from_dict(d)`` and
    ``save(path)`` / ``History.load(path)`` (JSON) round-trip it.
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    epoch_seconds: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in _FIELDS:
            values = getattr(self, name)
            if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
                raise TypeError(f"History: {name} must be a list, got {type(values).__name__}")
            optional = name != "train_loss"
            setattr(self, name, [_number(v, name, i, optional) for i, v in enumerate(values)])
        lengths = {name: len(getattr(self, name)) for name in _FIELDS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"History: every list needs one entry per epoch, got {lengths}")

    def __len__(self) -> int:
        return len(self.train_loss)

    def append(
        self,
        train_loss: float,
        train_accuracy: float | None = None,
        val_loss: float | None = None,
        val_accuracy: float | None = None,
        epoch_seconds: float = 0.0,
    ) -> None:
        """Record one more epoch (validated like the constructor's lists)."""
        i = len(self)
        values = {
            "train_loss": _number(train_loss, "train_loss", i, False),
            "train_accuracy": _number(train_accuracy, "train_accuracy", i, True),
            "val_loss": _number(val_loss, "val_loss", i, True),
            "val_accuracy": _number(val_accuracy, "val_accuracy", i, True),
            "epoch_seconds": _number(epoch_seconds, "epoch_seconds", i, False),
        }
        for name, value in values.items():
            getattr(self, name).append(value)

    def to_dict(self) -> dict[str, list]:
        """``{"train_loss": [...], ...}``: plain lists of floats and ``None`` (JSON-ready)."""
        return {name: list(getattr(self, name)) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping) -> History:
        """The inverse of :meth:`to_dict`; checks the keys, the values and the lengths.

        Also takes the dict a hand-written loop records, as assignment 4's does:
        ``train_acc`` / ``val_acc`` for ``train_accuracy`` / ``val_accuracy``, and only
        ``train_loss`` required (an absent list is one ``None`` per epoch).
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"History.from_dict: expected a dict, got {type(data).__name__}")
        lists = {}
        for key, values in data.items():
            name = _SHORT_NAMES.get(key, key)
            if name not in _FIELDS:
                raise ValueError(
                    f"History.from_dict: unexpected key {key!r}; the keys are {list(_FIELDS)} "
                    f"(or {', '.join(_SHORT_NAMES)})"
                )
            if name in lists:
                raise ValueError(
                    f"History.from_dict: {name!r} is given twice (as {name!r} and by its short "
                    "name)"
                )
            lists[name] = values
        if "train_loss" not in lists:
            raise ValueError("History.from_dict: the key 'train_loss' is missing")
        epochs = len(lists["train_loss"]) if isinstance(lists["train_loss"], Sequence) else 0
        for name in _MAY_BE_ABSENT:
            lists.setdefault(name, [None] * epochs)
        return cls(**lists)

    def to_json(self) -> str:
        """The history as a JSON string (``None`` becomes ``null``)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> History:
        """The inverse of :meth:`to_json`."""
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"History.from_json: expected a str, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"History.from_json: not valid JSON ({exc})") from exc
        return cls.from_dict(data)

    def save(self, path) -> None:
        """Write the history to ``path`` as JSON, atomically (a temporary file, renamed)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".history-", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path) -> History:
        """Read a history written by :meth:`save`."""
        with open(os.fspath(path), encoding="utf-8") as f:
            text = f.read()
        try:
            return cls.from_json(text)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def plot(self, ax=None):
        """:func:`plot_history` of this history; returns the figure."""
        return plot_history(self, ax=ax)

    def __repr__(self) -> str:
        if not len(self):
            return "History(0 epochs)"
        last = [f"train_loss={self.train_loss[-1]:.4g}"]
        for name in ("train_accuracy", "val_loss", "val_accuracy"):
            value = getattr(self, name)[-1]
            if value is not None:
                last.append(f"{name}={value:.4g}")
        return f"History({len(self)} epochs; last: {', '.join(last)})"


def _number(value, name: str, index: int, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        allowed = "a number or None" if optional else "a number"
        raise TypeError(f"History: {name}[{index}] must be {allowed}, got {value!r}")
    return float(value)


# --- helpers of the loop -------------------------------------------------------------------


class Evaluation(NamedTuple):
    """The result of :func:`evaluate`: mean loss, and accuracy (``None`` if not labels)."""

    loss: float
    accuracy: float | None


def _check_model(model, who: str) -> None:
    for method in ("forward", "backward"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"{who}: model must have forward(x) and backward(dy) methods (the course's "
                f"layer API), got {type(model).__name__} without {method}()"
            )


def _check_loss(loss, who: str) -> None:
    for method in ("forward", "backward"):
        if not callable(getattr(loss, method, None)):
            raise TypeError(
                f"{who}: loss must have forward(scores, y) and backward() methods (e.g. "
                f"CrossEntropyLoss()), got {type(loss).__name__} without {method}()"
            )


def _check_loader(loader, name: str, who: str, reiterable: bool) -> None:
    if isinstance(loader, (str, bytes, np.ndarray, Mapping)) or not isinstance(loader, Iterable):
        raise TypeError(
            f"{who}: {name} must be an iterable of (x, y) batches (e.g. a DataLoader or a list "
            f"of tuples), got {type(loader).__name__}"
        )
    if reiterable and iter(loader) is loader:
        raise TypeError(
            f"{who}: {name} is a one-shot iterator ({type(loader).__name__}), which would be "
            "empty after the first epoch; pass something re-iterable (a DataLoader, a list of "
            "batches)"
        )


def _unpack(batch, name: str, where: str):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = type(batch).__name__
        size = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
        raise TypeError(f"{name} must yield (x, y) pairs, but {where} is a {kind}{size}")
    return batch[0], batch[1]


def _loss_value(value, loss, where: str) -> float:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{type(loss).__name__}.forward must return a number, got {value!r} at {where}"
        )
    return float(value)


def _num_examples(scores, x) -> int:
    shape = np.shape(scores)
    if shape:
        return int(shape[0])
    shape = np.shape(x)
    return int(shape[0]) if shape else 1


def _num_correct(scores, y) -> int | None:
    """Correct argmax predictions for ``(N, C)`` scores and integer labels ``(N,)``."""
    if not isinstance(scores, np.ndarray) or scores.ndim != 2:
        return None
    y = np.asarray(y)
    if y.dtype.kind not in "iu" or y.shape != (scores.shape[0],):
        return None
    return int(np.count_nonzero(np.argmax(scores, axis=1) == y))


class _Mode:
    """Switch ``model`` to training or evaluation mode if it has ``train()``/``eval()``.

    On exit, put it back into its previous mode.
    """

    def __init__(self, model, training: bool):
        self.model = model
        self.training = training
        self.switchable = callable(getattr(model, "train", None)) and callable(
            getattr(model, "eval", None)
        )
        self.before = getattr(model, "training", None)

    def __enter__(self):
        if self.switchable:
            self.model.train() if self.training else self.model.eval()
        return self

    def __exit__(self, *exc):
        if self.switchable and isinstance(self.before, (bool, np.bool_)):
            self.model.train() if self.before else self.model.eval()
        return False


def _total(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _progress_bar(total, desc: str, enabled: bool):
    from tqdm.auto import tqdm  # a widget in Jupyter, text on a terminal

    return tqdm(total=total, desc=desc, unit="batch", leave=True, disable=not enabled)


def _format(loss: float, accuracy: float | None, prefix: str = "") -> dict[str, str]:
    out = {f"{prefix}loss": f"{loss:.4f}"}
    if accuracy is not None:
        out[f"{prefix}acc"] = f"{accuracy:.3f}"
    return out


# --- evaluate ------------------------------------------------------------------------------


def _evaluate(model, loss, loader, name: str, who: str) -> Evaluation:
    total_loss, seen = 0.0, 0
    correct: int | None = 0  # None once a batch's targets are not class labels
    for b, batch in enumerate(loader, start=1):
        x, y = _unpack(batch, name, f"batch {b}")
        scores = model.forward(x)
        value = _loss_value(loss.forward(scores, y), loss, f"{name} batch {b}")
        n = _num_examples(scores, x)
        total_loss += value * n
        seen += n
        hits = _num_correct(scores, y)
        correct = None if hits is None or correct is None else correct + hits
    if seen == 0:
        raise ValueError(f"{who}: {name} yielded no batches (or only empty ones)")
    return Evaluation(total_loss / seen, None if correct is None else correct / seen)


def evaluate(model, loss, loader) -> Evaluation:
    """Mean loss and accuracy of ``model`` over ``loader``, in evaluation mode, no updates.

    ::

        loss = (1/N) sum_batches  n_b * loss_b          accuracy = #{argmax(scores) == y} / N

    (``N`` examples in total, ``n_b`` in batch ``b``, whose mean loss is ``loss_b``). The
    model is put in evaluation mode (``model.eval()``, if it has ``train``/``eval``) and back
    into its previous mode afterwards. ``backward`` is never called.

    Returns
    -------
    Evaluation
        ``Evaluation(loss, accuracy)``, a named tuple; ``accuracy`` is ``None`` unless the
        scores are ``(N, C)`` and the targets integer labels ``(N,)``.
    """
    who = "evaluate"
    _check_model(model, who)
    _check_loss(loss, who)
    _check_loader(loader, "loader", who, reiterable=False)
    with _Mode(model, training=False):
        return _evaluate(model, loss, loader, "loader", who)


# --- fit -----------------------------------------------------------------------------------


def fit(
    model,
    loss,
    optimizer,
    train_loader,
    val_loader=None,
    epochs: int = 1,
    *,
    progress: bool = True,
    callback: Callable[[int, History], object] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; returns a :class:`History`.

    For every batch ``(x, y)`` of ``train_loader``, in training mode::

        scores = model.forward(x)
        L = loss.forward(scores, y)              # must be finite, else FloatingPointError
        optimizer.zero_grad()                    # if the optimizer has it
        model.backward(loss.backward())          # dL/dparams into model.grads
        optimizer.step()                         # params updated in place

    After each epoch, ``val_loader`` (if given) is evaluated in evaluation mode (see
    :func:`evaluate`), the epoch is appended to the history, and ``callback(epoch,
    history)`` is called with the 1-based number of the finished epoch (``epoch ==
    len(history)``), e.g. to update a live plot. The model ends in the mode it had before.

    Progress: one ``tqdm.auto`` bar per epoch (a widget in JupyterLab, text on a terminal),
    with the running loss and accuracy, then the validation loss and accuracy, as postfix.

    Parameters
    ----------
    model : object
        ``forward(x)``/``backward(dy)``; ``train()``/``eval()`` are used if present.
    loss : object
        ``forward(scores, y) -> float`` and ``backward() -> dscores``.
    optimizer : object
        Has ``step()`` (e.g. :class:`cvcourse.nn.optim.SGD` on this model).
    train_loader, val_loader : sequence of ``(x, y)``
        Re-iterable sequences of ``(x, y)`` batches; ``val_loader`` is optional.
    epochs : int
        Number of passes over ``train_loader``, >= 1.
    progress : bool
        Show progress bars (``False``: print nothing).
    callback : callable, optional
        ``callback(epoch, history)``, called after every epoch.

    Returns
    -------
    History
        One entry per finished epoch.

    Raises
    ------
    FloatingPointError
        The training loss became NaN or inf; the message names the epoch and batch (that
        batch's update is not applied). The history of the finished epochs is attached to
        the exception as ``.history``.
    """
    who = "fit"
    _check_model(model, who)
    _check_loss(loss, who)
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(
            f"{who}: optimizer must have a step() method (e.g. SGD(model, lr=0.1)), got "
            f"{type(optimizer).__name__}"
        )
    epochs = as_int(epochs, "epochs", who, low=1)
    _check_loader(train_loader, "train_loader", who, reiterable=epochs > 1)
    if val_loader is not None:
        _check_loader(val_loader, "val_loader", who, reiterable=epochs > 1)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"{who}: progress must be True or False, got {progress!r}")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"{who}: callback must be callable as callback(epoch, history), got {callback!r}"
        )
    zero_grad = getattr(optimizer, "zero_grad", None)
    zero_grad = zero_grad if callable(zero_grad) else None

    history = History()
    total = _total(train_loader)
    with _Mode(model, training=True) as mode:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            with _progress_bar(total, f"epoch {epoch}/{epochs}", bool(progress)) as bar:
                mode.__enter__()  # training mode again after last epoch's validation
                total_loss, seen = 0.0, 0
                correct: int | None = 0  # None once a batch's targets are not class labels
                for b, batch in enumerate(train_loader, start=1):
                    where = f"epoch {epoch}/{epochs}, batch {b}" + (f"/{total}" if total else "")
                    x, y = _unpack(batch, "train_loader", f"batch {b} of epoch {epoch}")
                    scores = model.forward(x)
                    value = _loss_value(loss.forward(scores, y), loss, where)
                    if not math.isfinite(value):
                        exc = FloatingPointError(
                            f"training stopped: the loss is {value} at {where} (no update was "
                            "made for that batch). The parameters have probably diverged: "
                            "lower the learning rate, check the gradients (cvcourse.gradcheck) "
                            "and check the data for NaN/inf"
                        )
                        # documented: the exception carries the finished epochs' history
                        exc.history = history  # type: ignore[attr-defined]
                        raise exc
                    if zero_grad is not None:
                        zero_grad()
                    model.backward(loss.backward())
                    optimizer.step()
                    n = _num_examples(scores, x)
                    total_loss += value * n
                    seen += n
                    hits = _num_correct(scores, y)
                    correct = None if hits is None or correct is None else correct + hits
                    bar.update(1)
                    bar.set_postfix(
                        _format(total_loss / seen, None if correct is None else correct / seen),
                        refresh=False,
                    )
                if seen == 0:
                    raise ValueError(
                        f"{who}: train_loader yielded no batches in epoch {epoch} (or only "
                        "empty ones)"
                    )
                train_loss = total_loss / seen
                train_acc = None if correct is None else correct / seen
                postfix = _format(train_loss, train_acc)
                val_loss: float | None = None
                val_acc: float | None = None
                if val_loader is not None:
                    with _Mode(model, training=False):
                        val_loss, val_acc = _evaluate(model, loss, val_loader, "val_loader", who)
                    postfix.update(_format(val_loss, val_acc, prefix="val_"))
                bar.set_postfix(postfix, refresh=True)
            history.append(train_loss, train_acc, val_loss, val_acc, time.perf_counter() - start)
            if callback is not None:
                callback(epoch, history)
    return history


# --- plot ----------------------------------------------------------------------------------


def plot_history(history, ax=None):
    """Loss and accuracy per epoch, training and validation, side by side.

    Parameters
    ----------
    history : History or dict
        A :class:`History` (or its ``to_dict()``).
    ax : Axes or pair of Axes, optional
        ``None`` (a new ``matplotlib.figure.Figure`` with two axes, no pyplot state), or a
        pair of Axes ``(loss_ax, accuracy_ax)`` to draw into, or a single Axes (loss curves
        only).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (display it in a notebook as the cell's last value, or
        ``fig.savefig(path)``).
    """
    if isinstance(history, Mapping):
        history = History.from_dict(history)
    if not isinstance(history, History):
        raise TypeError(
            f"plot_history: history must be a History (what fit returns) or its to_dict(), "
            f"got {type(history).__name__}"
        )
    from matplotlib.axes import Axes
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        from matplotlib.figure import Figure  # no pyplot: works headless, no global state

        fig = Figure(figsize=(10, 4), layout="constrained")
        loss_ax, acc_ax = fig.subplots(1, 2)
    elif isinstance(ax, Axes):
        loss_ax, acc_ax = ax, None
    elif (
        isinstance(ax, (Sequence, np.ndarray))
        and len(ax) == 2
        and all(isinstance(a, Axes) for a in ax)
    ):
        loss_ax, acc_ax = ax
    else:
        raise TypeError(
            f"plot_history: ax must be None, an Axes, or a pair of Axes (loss, accuracy), "
            f"got {ax!r}"
        )

    epochs = np.arange(1, len(history) + 1)
    marker = "o" if len(history) <= 30 else None

    def curve(axes, values, label, style):
        if values and any(v is not None for v in values):
            y = np.array([np.nan if v is None else v for v in values], dtype=float)
            axes.plot(epochs, y, style, marker=marker, markersize=4, label=label)
            return True
        return False

    curve(loss_ax, history.train_loss, "train", "-")
    curve(loss_ax, history.val_loss, "validation", "--")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    if acc_ax is not None:
        drawn = curve(acc_ax, history.train_accuracy, "train", "-")
        drawn |= curve(acc_ax, history.val_accuracy, "validation", "--")
        acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        if not drawn:
            acc_ax.text(
                0.5,
                0.5,
                "no accuracy recorded",
                ha="center",
                va="center",
                transform=acc_ax.transAxes,
            )
    for axes in (loss_ax, acc_ax):
        if axes is None:
            continue
        axes.grid(True, alpha=0.3)
        if len(history):
            axes.set_xlim(0.5, len(history) + 0.5)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return loss_ax.figure
