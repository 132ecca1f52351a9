"""training_monitor: live curves fed by cvcourse.nn.fit's callback."""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.data import DataLoader, load_digits
from cvcourse.models import lenet_digits
from cvcourse.nn import SGD, CrossEntropyLoss, History, fit
from cvcourse.widgets import TrainingMonitor, training_monitor


def test_updates_after_every_epoch_of_fit(ok):
    x, y = load_digits("train")
    train = DataLoader(x[:128], y[:128], batch_size=64, seed=0)
    val = DataLoader(x[128:192], y[128:192], batch_size=64, shuffle=False)
    model = lenet_digits()
    monitor = training_monitor(epochs=3)
    ok(monitor)
    assert monitor.history is None and "no epoch" in monitor.message.value
    seen = []

    def spy(epoch, history):  # records the picture after each of the monitor's updates
        monitor(epoch, history)
        seen.append((epoch, bytes(monitor.view.value), len(monitor.history)))

    history = fit(
        model,
        CrossEntropyLoss(),
        SGD(model, lr=0.1, momentum=0.9),
        train,
        val,
        epochs=3,
        progress=False,
        callback=spy,
    )
    ok(monitor)
    assert [e for e, _, _ in seen] == [1, 2, 3] and [n for _, _, n in seen] == [1, 2, 3]
    assert len({picture for _, picture, _ in seen}) == 3  # redrawn every epoch
    assert monitor.epoch == 3 and monitor.updates == 3
    assert monitor.history.to_dict() == history.to_dict()
    assert monitor.history is not history  # a copy: fit's own history keeps growing
    assert "epoch 3/3" in monitor.message.value and "val acc" in monitor.message.value


def test_callback_method_update_and_reset(ok):
    monitor = TrainingMonitor()
    h = History()
    h.append(1.0, 0.5, 1.2, 0.4, 0.1)
    monitor.callback(1, h)
    h.append(0.5, 0.8, 0.9, 0.7, 0.1)
    monitor.update(h.to_dict())
    ok(monitor)
    assert monitor.epoch == 2 and monitor.history.train_loss == [1.0, 0.5]
    monitor.reset()
    assert monitor.history is None and monitor.epoch == 0


def test_invalid_arguments():
    monitor = training_monitor()
    with pytest.raises(TypeError, match="History"):
        monitor(1, [0.5])
    with pytest.raises(ValueError, match="epoch"):
        monitor(0, History())
    with pytest.raises(ValueError, match="epochs"):
        training_monitor(epochs=0)
    with pytest.raises(TypeError, match="title"):
        training_monitor(title=np.zeros(1))
