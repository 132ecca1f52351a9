"""fit / evaluate / History / plot_history, on tiny models defined here and on cvcourse.nn."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
from matplotlib.figure import Figure

from cvcourse.nn.optim import SGD, Adam
from cvcourse.nn.training import Evaluation, History, evaluate, fit, plot_history

REPO = Path(__file__).resolve().parents[2]

# --- a tiny model and loss written against the layer API only ------------------------------


class TinyMLP:
    """``scores = relu(x @ W1.T + b1) @ W2.T + b2`` with the course's params/grads dicts."""

    def __init__(self, n_in=2, hidden=16, n_out=3, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {
            "w1": rng.standard_normal((hidden, n_in)) / np.sqrt(n_in),
            "b1": np.zeros(hidden),
            "w2": rng.standard_normal((n_out, hidden)) / np.sqrt(hidden),
            "b2": np.zeros(n_out),
        }
        self.grads = {}
        self.training = True
        self.modes_seen = []  # (training?, "forward"/"backward") of every call

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def forward(self, x):
        self.modes_seen.append((self.training, "forward"))
        p = self.params
        self._x = x
        self._h = np.maximum(x @ p["w1"].T + p["b1"], 0)
        return self._h @ p["w2"].T + p["b2"]

    def backward(self, dy):
        self.modes_seen.append((self.training, "backward"))
        p = self.params
        dh = (dy @ p["w2"]) * (self._h > 0)
        self.grads = {
            "w2": dy.T @ self._h,
            "b2": dy.sum(0),
            "w1": dh.T @ self._x,
            "b1": dh.sum(0),
        }
        return dh @ p["w1"]


class TinyCrossEntropy:
    def forward(self, scores, y):
        shifted = scores - scores.max(1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        self._cache = (np.exp(log_p), y)
        return float(-log_p[np.arange(len(y)), y].mean())

    def backward(self):
        probs, y = self._cache
        d = probs.copy()
        d[np.arange(len(y)), y] -= 1
        return d / len(y)


class TinyMSE:
    def forward(self, pred, y):
        self._diff = pred - y
        return float(np.mean(self._diff**2))

    def backward(self):
        return 2 * self._diff / self._diff.size


def blobs(n_per_class=60, seed=0, batch_size=30):
    """Three well-separated Gaussian blobs in 2-D, as a shuffled list of (x, y) batches."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0], [-3.0, 2.0], [0.0, -3.0]])
    x = np.concatenate([c + 0.5 * rng.standard_normal((n_per_class, 2)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]


# --- fit -----------------------------------------------------------------------------------


def test_fit_reduces_the_loss_and_returns_one_history_entry_per_epoch():
    model = TinyMLP()
    train, val = blobs(seed=0), blobs(seed=1)
    history = fit(
        model,
        TinyCrossEntropy(),
        SGD(model, lr=0.1, momentum=0.9),
        train,
        val,
        epochs=6,
        progress=False,
    )
    assert isinstance(history, History) and len(history) == 6
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        values = getattr(history, name)
        assert len(values) == 6, name
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), name
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy[-1] >= 0.95
    assert all(0 <= a <= 1 for a in history.train_accuracy + history.val_accuracy)
    assert all(s > 0 for s in history.epoch_seconds)
    assert "6 epochs" in repr(history)


def test_fit_without_validation_records_none_for_the_validation_fields():
    model = TinyMLP()
    history = fit(
        model, TinyCrossEntropy(), Adam(model, lr=0.01), blobs(), epochs=2, progress=False
    )
    assert history.val_loss == [None, None] and history.val_accuracy == [None, None]
    assert len(history.train_accuracy) == 2


def test_fit_history_losses_are_the_size_weighted_means_of_the_batches():
    """With a tiny lr the parameters barely move: the epoch loss is evaluate's loss."""
    model = TinyMLP()
    loader = blobs(n_per_class=10, batch_size=7)  # uneven last batch
    before = evaluate(model, TinyCrossEntropy(), loader)
    history = fit(model, TinyCrossEntropy(), SGD(model, lr=1e-12), loader, loader, progress=False)
    assert history.train_loss[0] == pytest.approx(before.loss, rel=1e-9)
    assert history.val_loss[0] == pytest.approx(before.loss, rel=1e-9)
    assert history.train_accuracy[0] == pytest.approx(before.accuracy)


def test_fit_switches_between_training_and_evaluation_mode_and_restores_the_mode():
    model = TinyMLP().eval()
    fit(
        model,
        TinyCrossEntropy(),
        SGD(model, lr=0.1),
        blobs(batch_size=90),
        blobs(seed=1),
        epochs=2,
        progress=False,
    )
    backward_modes = {mode for mode, call in model.modes_seen if call == "backward"}
    assert backward_modes == {True}
    # per epoch: 2 training forwards, then 6 validation forwards (in eval mode)
    forwards = [mode for mode, call in model.modes_seen if call == "forward"]
    assert forwards == ([True] * 2 + [False] * 6) * 2
    assert model.training is False  # as before fit


def test_fit_accepts_a_model_without_train_and_eval_methods():
    class Bare:
        def __init__(self):
            self.inner = TinyMLP()
            self.params, self.grads = self.inner.params, self.inner.grads

        def forward(self, x):
            return self.inner.forward(x)

        def backward(self, dy):
            dx = self.inner.backward(dy)
            self.grads = self.inner.grads
            return dx

    model = Bare()
    history = fit(model, TinyCrossEntropy(), SGD(model, lr=0.1), blobs(), progress=False)
    assert len(history) == 1


def test_fit_with_a_regression_loss_records_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2))
    y = x @ np.array([[1.0], [-2.0]])
    model = TinyMLP(n_out=1)
    history = fit(
        model,
        TinyMSE(),
        Adam(model, lr=0.01),
        [(x[:20], y[:20]), (x[20:], y[20:])],
        [(x, y)],
        epochs=3,
        progress=False,
    )
    assert history.train_accuracy == [None] * 3 and history.val_accuracy == [None] * 3
    assert all(isinstance(v, float) for v in history.val_loss)


class NanAfter:
    """A loss that becomes NaN on its ``n``-th call."""

    def __init__(self, n):
        self.inner, self.n, self.calls = TinyCrossEntropy(), n, 0

    def forward(self, scores, y):
        self.calls += 1
        value = self.inner.forward(scores, y)
        return float("nan") if self.calls >= self.n else value

    def backward(self):
        return self.inner.backward()


class CountingSGD(SGD):
    steps = 0

    def step(self):
        super().step()
        self.steps += 1


def test_non_finite_loss_stops_training_naming_epoch_and_batch():
    model = TinyMLP()
    opt = CountingSGD(model, lr=0.1)
    loader = blobs()  # 6 batches per epoch
    with pytest.raises(FloatingPointError, match=r"loss is nan at epoch 2/3, batch 3/6") as info:
        fit(model, NanAfter(9), opt, loader, epochs=3, progress=False)
    assert opt.steps == 8  # the NaN batch made no update
    assert len(info.value.history) == 1  # the finished epoch is kept


def test_infinite_loss_also_stops_training():
    class Inf(TinyCrossEntropy):
        def forward(self, scores, y):
            super().forward(scores, y)
            return math.inf

    model = TinyMLP()
    with pytest.raises(FloatingPointError, match="loss is inf at epoch 1/1, batch 1/6"):
        fit(model, Inf(), SGD(model, lr=0.1), blobs(), progress=False)


def test_callback_is_called_after_each_epoch_with_the_history_so_far():
    calls = []
    model = TinyMLP()
    history = fit(
        model,
        TinyCrossEntropy(),
        SGD(model, lr=0.1),
        blobs(),
        blobs(seed=1),
        epochs=3,
        progress=False,
        callback=lambda epoch, h: calls.append((epoch, len(h), h.val_loss[-1])),
    )
    assert [c[:2] for c in calls] == [(1, 1), (2, 2), (3, 3)]
    assert [c[2] for c in calls] == history.val_loss


def test_progress_false_prints_nothing(capsys):
    model = TinyMLP()
    fit(
        model,
        TinyCrossEntropy(),
        SGD(model, lr=0.1),
        blobs(),
        blobs(seed=1),
        epochs=2,
        progress=False,
    )
    evaluate(model, TinyCrossEntropy(), blobs())
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_bar_shows_epoch_and_metrics_in_a_terminal(capsys):
    model = TinyMLP()
    fit(model, TinyCrossEntropy(), SGD(model, lr=0.1), blobs(), blobs(seed=1), epochs=2)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    for key in ("loss=", "acc=", "val_loss=", "val_acc="):
        assert key in err, key


def test_fit_validates_its_arguments():
    model, loss, loader = TinyMLP(), TinyCrossEntropy(), blobs()
    opt = SGD(model, lr=0.1)
    kw = {"progress": False}
    with pytest.raises(TypeError, match="model must have forward"):
        fit(object(), loss, opt, loader, **kw)
    with pytest.raises(TypeError, match="loss must have forward"):
        fit(model, object(), opt, loader, **kw)
    with pytest.raises(TypeError, match="optimizer must have a step"):
        fit(model, loss, object(), loader, **kw)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit(model, loss, opt, loader, epochs=0, **kw)
    with pytest.raises(TypeError, match="epochs must be an int, got float 2.0"):
        fit(model, loss, opt, loader, epochs=2.0, **kw)
    with pytest.raises(TypeError, match="train_loader must be an iterable"):
        fit(model, loss, opt, np.zeros((4, 2)), **kw)
    with pytest.raises(TypeError, match="train_loader is a one-shot iterator"):
        fit(model, loss, opt, (b for b in loader), epochs=2, **kw)
    with pytest.raises(TypeError, match="val_loader is a one-shot iterator"):
        fit(model, loss, opt, loader, iter(loader), epochs=2, **kw)
    with pytest.raises(TypeError, match="callback must be callable"):
        fit(model, loss, opt, loader, callback="plot", **kw)
    with pytest.raises(TypeError, match="progress must be True or False"):
        fit(model, loss, opt, loader, progress="yes")
    with pytest.raises(TypeError, match=r"must yield \(x, y\) pairs, but batch 1 of epoch 1"):
        fit(model, loss, opt, [(loader[0][0],)], **kw)
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        fit(model, loss, opt, [], **kw)


def test_a_one_shot_iterator_is_fine_for_a_single_epoch():
    model = TinyMLP()
    history = fit(model, TinyCrossEntropy(), SGD(model, lr=0.1), iter(blobs()), progress=False)
    assert len(history) == 1


# --- evaluate ------------------------------------------------------------------------------


def test_evaluate_returns_the_example_weighted_mean_loss_and_accuracy():
    model = TinyMLP()
    loader = blobs(n_per_class=10, batch_size=7)
    x = np.concatenate([b[0] for b in loader])
    y = np.concatenate([b[1] for b in loader])
    whole = TinyCrossEntropy().forward(model.forward(x), y)
    accuracy = np.mean(np.argmax(model.forward(x), 1) == y)
    result = evaluate(model, TinyCrossEntropy(), loader)
    assert isinstance(result, Evaluation)
    assert result.loss == pytest.approx(whole, rel=1e-12)
    assert result.accuracy == pytest.approx(accuracy)
    loss, acc = result  # a named tuple
    assert (loss, acc) == (result.loss, result.accuracy)


def test_evaluate_runs_in_evaluation_mode_without_backward_and_restores_the_mode():
    model = TinyMLP()
    evaluate(model, TinyCrossEntropy(), blobs())
    assert {call for _, call in model.modes_seen} == {"forward"}
    assert {mode for mode, _ in model.modes_seen} == {False}
    assert model.training is True


def test_evaluate_validates_its_arguments():
    with pytest.raises(TypeError, match="model must have forward"):
        evaluate(None, TinyCrossEntropy(), blobs())
    with pytest.raises(TypeError, match="loader must be an iterable"):
        evaluate(TinyMLP(), TinyCrossEntropy(), "data.npz")
    with pytest.raises(ValueError, match="loader yielded no batches"):
        evaluate(TinyMLP(), TinyCrossEntropy(), [])


# --- History -------------------------------------------------------------------------------


def small_history():
    h = History()
    h.append(1.0, 0.5, 1.2, 0.4, 0.1)
    h.append(0.6, 0.8, 0.7, 0.75, 0.1)
    return h


def test_history_round_trips_through_dict_json_and_file(tmp_path):
    h = small_history()
    h.append(0.5, None, None, None, 0.2)
    assert History.from_dict(h.to_dict()) == h
    assert History.from_dict(json.loads(h.to_json())) == h
    path = tmp_path / "history.json"
    h.save(path)
    assert History.load(path) == h
    assert json.loads(path.read_text())["train_accuracy"] == [0.5, 0.8, None]
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]  # no temporary left


def test_history_rejects_inconsistent_data(tmp_path):
    with pytest.raises(ValueError, match="one entry per epoch"):
        History(
            train_loss=[1.0, 2.0],
            train_accuracy=[0.5],
            val_loss=[],
            val_accuracy=[],
            epoch_seconds=[0.1, 0.1],
        )
    with pytest.raises(ValueError, match="'train_loss' is missing"):
        History.from_dict({"val_loss": [1.0]})
    with pytest.raises(ValueError, match="unexpected key 'val_los'"):
        History.from_dict({"train_loss": [1.0], "val_los": [1.0]})
    with pytest.raises(ValueError, match="'val_accuracy' is given twice"):
        History.from_dict({"train_loss": [1.0], "val_acc": [0.5], "val_accuracy": [0.5]})
    with pytest.raises(ValueError, match="one entry per epoch"):
        History.from_dict({"train_loss": [1.0, 0.5], "val_acc": [0.5]})
    with pytest.raises(TypeError, match=r"train_loss\[0\] must be a number"):
        History(
            train_loss=[None],
            train_accuracy=[None],
            val_loss=[None],
            val_accuracy=[None],
            epoch_seconds=[1.0],
        )
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: History.from_json: not valid JSON"):
        History.load(bad)


def a4_history_keys() -> list[str]:
    """The keys assignment 4's training loop records, read from its source notebook."""
    source = REPO / "course" / "assignments" / "a4_train_cnn" / "train_cnn.ipynb"
    for cell in nbformat.read(source, as_version=4).cells:
        for line in cell.source.splitlines():
            if line.strip().startswith("history = {"):
                return list(ast.literal_eval(line.split("=", 1)[1].strip()))
    raise AssertionError(f"no 'history = {{...}}' line in {source}")


def test_assignment_4s_history_dict_is_a_history_and_plots():
    keys = a4_history_keys()
    assert keys == ["train_loss", "train_acc", "val_loss", "val_acc"]  # what a4 teaches
    recorded = dict(zip(keys, ([1.0, 0.6], [0.5, 0.8], [1.2, 0.7], [0.4, 0.75]), strict=True))
    h = History.from_dict(recorded)
    assert h.train_accuracy == [0.5, 0.8] and h.val_accuracy == [0.4, 0.75]
    assert h.epoch_seconds == [None, None]  # the loop did not time its epochs
    fig = plot_history(recorded)
    loss_ax, acc_ax = fig.axes
    np.testing.assert_array_equal(acc_ax.lines[1].get_ydata(), [0.4, 0.75])


# --- plot_history --------------------------------------------------------------------------


def test_plot_history_returns_a_figure_with_loss_and_accuracy_axes():
    fig = plot_history(small_history())
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "Loss" and acc_ax.get_title() == "Accuracy"
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]  # train and validation
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2])
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [1.2, 0.7])
    np.testing.assert_array_equal(acc_ax.lines[0].get_ydata(), [0.5, 0.8])


def test_plot_history_draws_into_given_axes_and_accepts_a_dict():
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot_history(small_history().to_dict(), ax=axes) is fig
    assert [len(ax.lines) for ax in axes] == [2, 2]
    single = Figure().subplots()
    assert len(plot_history(small_history(), ax=single).axes) == 1
    assert len(single.lines) == 2


def test_plot_history_without_accuracy_or_validation_still_has_two_axes():
    h = History()
    h.append(1.0)
    h.append(0.5)
    fig = h.plot()
    assert [len(ax.lines) for ax in fig.axes] == [1, 0]
    assert "no accuracy recorded" in fig.axes[1].texts[0].get_text()


def test_plot_history_validates_its_arguments():
    with pytest.raises(TypeError, match="history must be a History"):
        plot_history([1.0, 0.5])
    with pytest.raises(TypeError, match="ax must be None, an Axes, or a pair"):
        plot_history(small_history(), ax="left")


# --- with the course's own layers ----------------------------------------------------------


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=True), lambda m: Adam(m, lr=0.01)],
    ids=["sgd_nesterov", "adam"],
)
def test_fit_trains_a_cvcourse_nn_model_on_a_separable_problem(make_optimizer):
    nn = pytest.importorskip("cvcourse.nn")
    model = nn.Sequential(nn.Linear(2, 16, seed=0), nn.ReLU(), nn.Linear(16, 3, seed=1))
    weight = model.params["0.weight"]
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        make_optimizer(model),
        blobs(seed=0, batch_size=20),
        blobs(seed=1),
        epochs=8,
        progress=False,
    )
    assert model.params["0.weight"] is weight and weight.dtype == np.float32
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]
    assert history.val_accuracy[-1] >= 0.95
    assert model.training is True
