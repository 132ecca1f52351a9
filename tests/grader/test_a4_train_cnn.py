"""Assignment 4, train a CNN: its notebook, hidden checks and planted mistakes.

Everything runs in this process (``grader.notebooks.run_in_process``), not through nbgrader
(``test_course_notebooks.py`` does that for every assignment at once):

- the source notebook runs top to bottom, every cell without an error, trains in seconds,
  and earns every graded cell (the held-out accuracy bar included);
- each planted mistake loses exactly its cells (training still clears the accuracy bar),
  and the first one names the mistake;
- a model built from cvcourse.nn / cvcourse.models, or layers calling cvcourse.kernels, and
  optimizers delegating to torch (an alias, an import inside step) lose their cell, told why;
- the released notebook earns nothing; each check fails cleanly on a stub or bad data;
- the optimizer checks recognise the classic mistakes they name, and their NumPy
  simulations of those mistakes start from a correct one that agrees with torch.

The authoring rules and the release as nbgrader makes it are checked for every assignment in
``test_course_notebooks.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader import notebooks, reference
from grader.checks import a4_train_cnn as checks
from grader.checks.harness import GradingFailure
from grader.term.planted import a4_train_cnn as planted
from tests.grader.assignment_tools import (
    DELEGATION,
    every_cell_graded,
    exec_as_cell,
    failed,
    released,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "course" / "assignments" / "a4_train_cnn" / "train_cnn.ipynb"
POINTS = {
    "test_sequential": 2,
    "test_model_shapes": 2,
    "test_sgd": 2,
    "test_sgd_no_momentum": 1,
    "test_adam": 3,
    "test_history": 1,
    "test_heldout_accuracy": 4,
}


IMPORTS = "import numpy as np\nfrom numpy.lib.stride_tricks import as_strided\n"


@pytest.fixture(scope="module")
def nb():
    return notebooks.load(NOTEBOOK)


@pytest.fixture(scope="module")
def source_run(nb):
    return notebooks.run_in_process(every_cell_graded(nb))


def _cell(nb, grade_id: str) -> str:
    return notebooks.cell(nb, grade_id).source


@pytest.fixture(scope="module")
def solution(nb):
    """The instructor's classes, run as a student's cells would be."""
    source = "\n\n".join(
        [
            IMPORTS,
            _cell(nb, "layers_solution"),
            _cell(nb, "sequential_solution"),
            _cell(nb, "build_model_solution"),
            _cell(nb, "sgd_solution"),
            _cell(nb, "adam_solution"),
        ]
    )
    return exec_as_cell(source, "a4-solution")


def _edited(nb, grade_id: str, old: str, new: str, name: str):
    """One solution cell with ``old`` replaced by ``new``, run as a student's cell."""
    source = _cell(nb, grade_id)
    assert source.count(old) == 1, old
    namespace = exec_as_cell(IMPORTS + source.replace(old, new), grade_id)
    return namespace[name]


# ---------------------------------------------------------------------------------------------
# The source notebook
# ---------------------------------------------------------------------------------------------


def test_the_source_notebook_runs_clean_and_earns_every_point(nb, source_run):
    broken = {k: r.output for k, r in source_run.items() if not r.passed}
    assert broken == {}
    for grade_id in POINTS:
        assert source_run[grade_id].output.startswith("\N{CHECK MARK}"), grade_id
    assert notebooks.points(nb) == POINTS
    assert sum(POINTS.values()) == 15


def test_training_is_fast_and_clears_the_bar_with_margin(source_run):
    output = source_run["training_run"].output
    seconds = float(output.split(" epochs in ")[1].split(" s,")[0])
    assert seconds < 30
    accuracy = source_run["test_heldout_accuracy"].output
    percent = float(accuracy.split("held-out accuracy: ")[1].split("%")[0])
    assert percent >= 100 * checks.ACCURACY_BAR + 1.0


# ---------------------------------------------------------------------------------------------
# Planted mistakes and the release
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mistake", planted.MISTAKES, ids=lambda m: m.student)
def test_each_planted_mistake_loses_exactly_its_cells(nb, source_run, mistake):
    results = notebooks.run_in_process(notebooks.with_mistake(nb, mistake))
    assert failed(results) == set(mistake.loses)
    assert mistake.diagnosis in results[mistake.loses[0]].output


def test_the_required_mistakes_are_planted():
    students = {m.student: m.loses for m in planted.MISTAKES}
    assert students["adam-no-bias-correction"] == ("test_adam",)
    assert students["momentum-not-kept"] == ("test_sgd",)


def test_the_release_earns_nothing_and_says_why(nb, source_run):
    results = notebooks.run_in_process(released(nb))
    assert failed(results) == set(POINTS)
    for grade_id in ("test_sequential", "test_model_shapes", "test_sgd", "test_adam"):
        assert "NotImplementedError" in results[grade_id].output
    # The training cell stops at its stub: there is no model or history to grade.
    assert "NameError" in results["test_heldout_accuracy"].output


# ---------------------------------------------------------------------------------------------
# Delegation
# ---------------------------------------------------------------------------------------------


def test_a_model_from_cvcourse_models_earns_nothing():
    build = exec_as_cell(
        "from cvcourse import models\ndef build_model(seed=0):\n"
        "    return models.lenet_digits(seed=seed)\n",
        "a4-models",
    )["build_model"]
    with pytest.raises(GradingFailure, match=DELEGATION) as failure:
        checks.model_shapes(build)
    assert "cvcourse.models" in str(failure.value)
    with pytest.raises(GradingFailure, match=DELEGATION) as failure:
        checks.heldout_accuracy(build())
    assert "cvcourse.nn" in str(failure.value)


def test_a_model_with_one_cvcourse_nn_layer_earns_nothing(solution):
    namespace = dict(solution)
    namespace["nn"] = pytest.importorskip("cvcourse.nn")
    source = (
        "def build_model(seed=0):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    return Sequential([nn.Conv2d(1, 8, 3, padding=1, dtype=np.float64), ReLU(),\n"
        "                       MaxPool2d(2), Flatten(), Linear(128, 10, rng=rng)])\n"
    )
    exec(compile(source, "<ipython-input-a4-nn-layer>", "exec"), namespace)
    with pytest.raises(GradingFailure, match=DELEGATION) as failure:
        checks.model_shapes(namespace["build_model"])
    assert "cvcourse.nn" in str(failure.value)


def test_a_conv_layer_calling_cvcourse_kernels_earns_nothing(nb, solution):
    forward = 'y = np.tensordot(self.windows, self.params["weight"], axes=([1, 4, 5], [1, 2, 3]))'
    delegating = (
        "from cvcourse.kernels import conv2d\n"
        '        y = conv2d(x_pad.astype(float), self.params["weight"])'
        ".transpose(0, 2, 3, 1)"
    )
    namespace = dict(solution)
    namespace["Conv2d"] = _edited(nb, "layers_solution", forward, delegating, "Conv2d")
    exec(compile(_cell(nb, "build_model_solution"), "<ipython-input-a4-build>", "exec"), namespace)
    with pytest.raises(GradingFailure, match=DELEGATION) as failure:
        checks.model_shapes(namespace["build_model"])
    assert "cvcourse.kernels" in str(failure.value)


def test_optimizers_delegating_to_torch_earn_nothing():
    source = (
        "import numpy as np\n"
        "from torch.optim import Adam as TorchAdam\n"
        "class SGD:\n"
        "    def __init__(self, parameters, lr, momentum=0.0):\n"
        "        self.parameters, self.lr, self.momentum = list(parameters), lr, momentum\n"
        "    def step(self):\n"
        "        import torch\n"
        "        for params, grads in self.parameters:\n"
        "            for name, p in params.items():\n"
        "                p -= self.lr * torch.from_numpy(grads[name]).numpy()\n"
        "class Adam:\n"
        "    def __init__(self, parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):\n"
        "        import torch\n"
        "        self.pairs = list(parameters)\n"
        "        self.tensors = [torch.from_numpy(p) for ps, _ in self.pairs\n"
        "                        for p in ps.values()]\n"
        "        self.opt = TorchAdam(self.tensors, lr=lr, betas=betas, eps=eps)\n"
        "    def step(self):\n"
        "        self.opt.step()\n"
    )
    namespace = exec_as_cell(source, "a4-torch-optim")
    for check, cls in ((checks.sgd, "SGD"), (checks.sgd_no_momentum, "SGD"), (checks.adam, "Adam")):
        with pytest.raises(GradingFailure, match=DELEGATION) as failure:
            check(namespace[cls])
        assert "torch" in str(failure.value) and "line" in str(failure.value)


# ---------------------------------------------------------------------------------------------
# Stubs and bad data
# ---------------------------------------------------------------------------------------------


class _StubOptimizer:
    def __init__(self, parameters, *args, **kwargs):
        pass

    def step(self):
        raise NotImplementedError()


class _StubSequential:
    def __init__(self, layers):
        raise NotImplementedError()


class _StubModel:
    def forward(self, x):
        raise NotImplementedError()


def _stub_build_model(seed=0):
    raise NotImplementedError()


@pytest.mark.parametrize(
    "call",
    [
        lambda: checks.sequential(_StubSequential),
        lambda: checks.sgd(_StubOptimizer),
        lambda: checks.sgd_no_momentum(_StubOptimizer),
        lambda: checks.adam(_StubOptimizer),
        lambda: checks.model_shapes(_stub_build_model),
        lambda: checks.heldout_accuracy(_StubModel()),
    ],
    ids=["sequential", "sgd", "sgd_no_momentum", "adam", "model_shapes", "heldout_accuracy"],
)
def test_each_check_fails_cleanly_on_a_stub(call):
    with pytest.raises(GradingFailure, match="is not implemented yet"):
        call()


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (None, "must return a dict"),
        ({"train_loss": [1.0, 0.5]}, "history has no"),
        (
            {"train_loss": [1.0, 0.5], "train_acc": [0.5], "val_loss": [1, 0.5], "val_acc": [1]},
            "one entry per epoch",
        ),
        (
            {
                "train_loss": [1, 2],
                "train_acc": [0.5, 0.6],
                "val_loss": [1, 0.5],
                "val_acc": [0, 1],
            },
            "training loss did not go down",
        ),
        (
            {"train_loss": [2, 1], "train_acc": [50, 60], "val_loss": [1, 0.5], "val_acc": [0, 1]},
            r"fractions in \[0, 1\]",
        ),
        (
            {"train_loss": [2, 1], "train_acc": [0.5, 0.6], "val_loss": [1, 2], "val_acc": [0, 1]},
            "validation loss never went below",
        ),
        (
            {"train_loss": [2, np.nan], "train_acc": [0, 1], "val_loss": [1, 0], "val_acc": [0, 1]},
            "NaN or inf",
        ),
    ],
    ids=["none", "missing", "lengths", "loss-up", "percent", "val-up", "nan"],
)
def test_a_bad_history_fails_with_a_reason(history, message):
    with pytest.raises(GradingFailure, match=message):
        checks.history(history)


def test_an_untrained_model_falls_short_of_the_bar(solution):
    model = solution["build_model"](seed=3)
    with pytest.raises(GradingFailure, match="below the bar of 95%"):
        checks.heldout_accuracy(model)


# ---------------------------------------------------------------------------------------------
# Recognised mistakes
# ---------------------------------------------------------------------------------------------


def test_the_correct_simulations_agree_with_torch():
    g = np.random.default_rng(0)
    init = checks._initial(g, checks._SHAPES_MIXED)
    steps = checks._gradient_steps(g, checks._SHAPES_MIXED, 4, 1.0)
    ours = checks._simulate_sgd(init, steps, 0.1, 0.9, "torch")
    theirs = reference.sgd_steps(init, steps, lr=0.1, momentum=0.9)
    ours_adam = checks._simulate_adam(init, steps, 0.01, (0.9, 0.999), 1e-8, "torch")
    theirs_adam = reference.adam_steps(init, steps, lr=0.01)
    for a, b in ((ours, theirs), (ours_adam, theirs_adam)):
        for step_a, step_b in zip(a, b, strict=True):
            for layer_a, layer_b in zip(step_a, step_b, strict=True):
                for name in layer_a:
                    np.testing.assert_allclose(layer_a[name], layer_b[name], rtol=1e-12)


OPTIMIZER_MISTAKES = [
    (
        "sgd_solution",
        "SGD",
        "                    v *= self.momentum\n                    v += g",
        "                    v *= self.momentum\n                    v += (1 - self.momentum) * g",
        "dampening",
    ),
    (
        "sgd_solution",
        "SGD",
        "                    g = v\n",
        "                    g = g + self.momentum * v\n",
        "Nesterov",
    ),
    (
        "adam_solution",
        "Adam",
        "        self.t += 1\n",
        "",
        "t grows once per parameter",
    ),
]


@pytest.mark.parametrize(
    ("cell", "name", "old", "new", "diagnosis"),
    OPTIMIZER_MISTAKES,
    ids=["sgd-dampened", "sgd-nesterov", "adam-step-per-parameter"],
)
def test_optimizer_mistakes_are_recognised(nb, cell, name, old, new, diagnosis):
    if diagnosis == "t grows once per parameter":
        # Move the step count into the loop over parameters.
        new_source_line = "                g = grads[name]\n"
        source = _cell(nb, cell).replace(old, new)
        source = source.replace(new_source_line, new_source_line + "                self.t += 1\n")
        source = source.replace(
            "        correction1, correction2 = 1.0 - beta1**self.t, 1.0 - beta2**self.t\n", ""
        )
        source = source.replace(
            "(m / correction1) / (np.sqrt(v / correction2) + self.eps)",
            "(m / (1.0 - beta1**self.t)) / (np.sqrt(v / (1.0 - beta2**self.t)) + self.eps)",
        )
        cls = exec_as_cell("import numpy as np\n" + source, "a4-adam-t")[name]
    else:
        cls = _edited(nb, cell, old, new, name)
    check = checks.sgd if name == "SGD" else checks.adam
    with pytest.raises(GradingFailure, match=diagnosis):
        check(cls)


def test_optimizer_state_shared_between_layers_is_recognised():
    source = (
        "import numpy as np\n"
        "class SGD:\n"
        "    def __init__(self, parameters, lr, momentum=0.0):\n"
        "        self.parameters, self.lr, self.momentum = list(parameters), lr, momentum\n"
        "        self.velocity = {}\n"
        "    def step(self):\n"
        "        for params, grads in self.parameters:\n"
        "            for name, p in params.items():\n"
        "                v = self.momentum * self.velocity.get(name, 0.0) + grads[name]\n"
        "                self.velocity[name] = v\n"
        "                p -= self.lr * v\n"
    )
    with pytest.raises(GradingFailure, match="share one velocity per parameter name"):
        checks.sgd(exec_as_cell(source, "a4-shared")["SGD"])


def test_sequential_mistakes_are_recognised(nb):
    unchained = _edited(
        nb,
        "sequential_solution",
        "        for layer in self.layers:\n            x = layer.forward(x)\n        return x",
        "        for layer in self.layers:\n            y = layer.forward(x)\n        return y",
        "Sequential",
    )
    with pytest.raises(GradingFailure, match=r"x = layer.forward\(x\)"):
        checks.sequential(unchained)
    copies = _edited(
        nb,
        "sequential_solution",
        "        return [(layer.params, layer.grads) for layer in self.layers if layer.params]",
        "        return [(dict(layer.params), dict(layer.grads)) for layer in self.layers"
        " if layer.params]",
        "Sequential",
    )
    with pytest.raises(GradingFailure, match="not copies"):
        checks.sequential(copies)
    forward_order = _edited(
        nb,
        "sequential_solution",
        "        for layer in reversed(self.layers):",
        "        for layer in self.layers:",
        "Sequential",
    )
    with pytest.raises(GradingFailure, match="Sequential.backward"):
        checks.sequential(forward_order)
