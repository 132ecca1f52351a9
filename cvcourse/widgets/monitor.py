"""``training_monitor``: live loss and accuracy curves, fed by ``fit(..., callback=...)``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cvcourse._checks import as_int

from ..nn.training import History, plot_history
from ._base import Explorer
from .drawing import new_figure

__all__ = ["TrainingMonitor", "training_monitor"]


class TrainingMonitor(Explorer):
    """Loss and accuracy per epoch, redrawn after every epoch of ``cvcourse.nn.fit``.

    Pass the widget itself (it is callable as ``monitor(epoch, history)``) or its
    ``callback`` method as ``fit(..., callback=monitor)``.

    Attributes
    ----------
    history : History or None
        A copy of the last :class:`~cvcourse.nn.History` received (``None`` before).
    epoch : int
        The last epoch number received (0 before the first).
    epochs : int or None
        The planned number of epochs (fixes the x axis), or ``None``.
    updates : int
        How many times the picture was redrawn with new data.
    """

    def __init__(self, epochs: int | None = None, *, title: str = "training"):
        who = "training_monitor"
        self.epochs = None if epochs is None else as_int(epochs, "epochs", who, low=1)
        if not isinstance(title, str):
            raise TypeError(f"{who}: title must be a str, got {type(title).__name__}")
        self.title = title
        self.history: History | None = None
        self.epoch = 0
        self.updates = 0
        super().__init__([])
        self.refresh()

    def callback(self, epoch: int, history) -> None:
        """``fit``'s callback: record the finished ``epoch`` (1-based) and redraw."""
        epoch = as_int(epoch, "epoch", "TrainingMonitor.callback", low=1)
        self.epoch = epoch
        self._take(history, "TrainingMonitor.callback")

    def __call__(self, epoch: int, history) -> None:
        self.callback(epoch, history)

    def update(self, history) -> None:
        """Show ``history`` (a ``History`` or its ``to_dict()``), e.g. one loaded from disk."""
        taken = self._take(history, "TrainingMonitor.update")
        self.epoch = len(taken)

    def reset(self) -> None:
        """Forget the curves (before training again)."""
        self.history, self.epoch, self.updates = None, 0, 0
        self.refresh()

    def _take(self, history, who: str) -> History:
        if isinstance(history, Mapping):
            history = History.from_dict(history)
        if not isinstance(history, History):
            raise TypeError(
                f"{who}: history must be a cvcourse.nn.History (what fit passes to its "
                f"callback) or its to_dict(), got {type(history).__name__}"
            )
        taken = History.from_dict(history.to_dict())  # fit keeps appending to its own
        self.history = taken
        self.updates += 1
        self.refresh()
        return taken

    def _compute(self) -> None:
        pass

    def _draw(self):
        fig = new_figure(10, 3.8)
        loss_ax, acc_ax = fig.subplots(1, 2)
        history = self.history
        if history is None or len(history) == 0:
            for ax in (loss_ax, acc_ax):
                ax.text(
                    0.5,
                    0.5,
                    "waiting for the first epoch",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="#666666",
                )
                ax.set_xticks([])
                ax.set_yticks([])
            loss_ax.set_title("Loss")
            acc_ax.set_title("Accuracy")
            self.show_message(f"<b>{self.title}</b>: no epoch finished yet.")
            return fig
        plot_history(history, ax=(loss_ax, acc_ax))
        if self.epochs is not None:
            for ax in (loss_ax, acc_ax):
                ax.set_xlim(0.5, max(self.epochs, len(history)) + 0.5)
        self.show_message(self._status(history))
        return fig

    def _status(self, history: History) -> str:
        last = len(history) - 1
        planned = f"/{self.epochs}" if self.epochs else ""
        parts = [f"train loss {history.train_loss[last]:.4f}"]
        if history.train_accuracy[last] is not None:
            parts.append(f"train acc {history.train_accuracy[last]:.3f}")
        if history.val_loss[last] is not None:
            parts.append(f"val loss {history.val_loss[last]:.4f}")
        if history.val_accuracy[last] is not None:
            parts.append(f"val acc {history.val_accuracy[last]:.3f}")
        timed = [s for s in history.epoch_seconds if s is not None]
        per_epoch = f" ({float(np.mean(timed)):.2f} s per epoch)" if timed else ""
        return (
            f"<b>{self.title}</b>: epoch {self.epoch or len(history)}{planned}: "
            + ", ".join(parts)
            + per_epoch
        )


def training_monitor(epochs: int | None = None, *, title: str = "training") -> TrainingMonitor:
    """Live loss and accuracy curves for ``cvcourse.nn.fit``.

    ::

        monitor = training_monitor(epochs=10)
        display(monitor)                      # show it before training starts
        history = fit(model, loss, opt, train_loader, val_loader, epochs=10, callback=monitor)

    After every epoch ``fit`` calls ``monitor(epoch, history)``; the widget redraws the
    training and validation loss (left) and accuracy (right) per epoch, as
    ``cvcourse.nn.plot_history`` draws them, with the latest numbers above. The training
    figures are means over the epoch's batches, measured while the weights change; the
    validation ones are measured after the epoch, in evaluation mode: training loss well
    below validation loss is the sign of overfitting.

    Parameters
    ----------
    epochs : int or None
        The planned number of epochs (fixes the x axis), or ``None``.
    title : str
        Shown before the numbers.

    Returns
    -------
    TrainingMonitor
        Callable; also ``.callback``, ``.update(history)``, ``.reset()``; state
        ``history``, ``epoch``, ``updates``.
    """
    return TrainingMonitor(epochs, title=title)
