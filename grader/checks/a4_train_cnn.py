"""Hidden tests of assignment 4, "Train a CNN": one function per graded test cell.

Graded cell -> check:

    test_sequential        sequential(Sequential)
    test_sgd               sgd(SGD)               momentum, several steps, against torch.optim.SGD
    test_sgd_no_momentum   sgd_no_momentum(SGD)   plain steps, against torch.optim.SGD
    test_adam              adam(Adam)             several steps, against torch.optim.Adam
    test_model_shapes      model_shapes(build_model)
    test_history           history(history)       the recorded curves exist and go down
    test_heldout_accuracy  heldout_accuracy(model) the grader's own evaluation on the test split

The optimizer API the notebook defines (torch-like)::

    opt = SGD(model.parameters(), lr, momentum=0.0)
    opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    opt.step()      # reads grads[name] now, updates params[name]

where ``model.parameters()`` is a list of ``(params, grads)`` pairs, the dicts of the layers
that have parameters. ``grads`` is empty until the first backward, and a backward may store
new arrays in it, so an optimizer must look the gradients up at every step.

Independence: the Sequential check runs the student's Sequential over the grader's own probe
layers (not the student's layers); the optimizer checks build their own parameters and feed
their own gradients; only the model, history and accuracy checks use the student's layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from cvcourse.data import load_digits
from grader import reference
from grader.checks import fixtures
from grader.checks.harness import (
    GradingFailure,
    Symptom,
    assert_close,
    matches,
    passed,
    refreshed,
    rng,
    student_call,
    student_side_dict,
)

__all__ = [
    "ACCURACY_BAR",
    "adam",
    "heldout_accuracy",
    "history",
    "model_shapes",
    "sequential",
    "sgd",
    "sgd_no_momentum",
]

#: The held-out accuracy the trained model must reach on ``load_digits("test")``.
ACCURACY_BAR = 0.95
#: Keys of the history dict the training loop returns, one entry per epoch each.
HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")
#: "Small CNN": the suggested model has 1,898 parameters.
MAX_PARAMETERS = 100_000

# ---------------------------------------------------------------------------------------------
# Sequential, over probe layers
# ---------------------------------------------------------------------------------------------

# The probe layers (grader/checks/fixtures/probe_layers.py) run as a module outside
# grader: the delegation guard forbids calls into grader.*, and these are layers the
# student's Sequential must be able to call.
_PROBES = fixtures.load("probe_layers")


def _chain_of_calls(log, kind: str) -> list[str]:
    return [name for event, name in log if event == kind]


def _sequential_case(Sequential, case: str, x: np.ndarray, dims: tuple[int, int]) -> None:
    g = rng("sequential", x.shape[0])
    d, k = dims
    log: list = []
    w1, b1, w3 = g.normal(size=d), g.normal(size=d), g.normal(size=(k, d))
    layers = [
        _PROBES.Scale(log, "0 (scale)", weight=w1.copy(), bias=b1.copy()),
        _PROBES.Tanh(log, "1 (tanh)"),
        _PROBES.Dense(log, "2 (dense)", weight=w3.copy()),
        _PROBES.Tanh(log, "3 (tanh)"),
    ]
    names = [layer.name for layer in layers]
    model = student_call("Sequential(layers)", case, Sequential, list(layers))

    y = student_call("Sequential.forward", case, model.forward, x.copy())
    if _chain_of_calls(log, "forward") != names:
        raise GradingFailure(
            f"Sequential.forward called the layers' forward as {_chain_of_calls(log, 'forward')}"
            f", expected each once in order {names}\n  case: {case}"
        )
    for i, layer in enumerate(layers[1:], 1):
        if not matches(layer.inputs[-1], layers[i - 1].outputs[-1]):
            raise GradingFailure(
                f"Sequential.forward gave layer {layer.name} something other than the output "
                f"of layer {layers[i - 1].name}\n  case: {case}\n  Likely mistake: each layer "
                "must receive the previous layer's output: x = layer.forward(x)."
            )
    h1 = x * w1 + b1
    h3 = np.tanh(h1) @ w3.T
    expected = np.tanh(h3)
    assert_close(
        y,
        expected,
        what="Sequential.forward output",
        case=case,
        hint="return the last layer's output",
        reference="the chain of layers",
    )

    dy = g.normal(size=expected.shape)
    del log[:]
    dx = student_call("Sequential.backward", case, model.backward, dy.copy())
    if _chain_of_calls(log, "backward") != names[::-1]:
        raise GradingFailure(
            "Sequential.backward called the layers' backward as "
            f"{_chain_of_calls(log, 'backward')}, expected each once in reverse order "
            f"{names[::-1]}\n  case: {case}"
        )
    for i, layer in enumerate(layers[:-1]):
        if not matches(layer.upstream[-1], layers[i + 1].returned[-1]):
            raise GradingFailure(
                f"Sequential.backward gave layer {layer.name} something other than the "
                f"gradient returned by layer {layers[i + 1].name}\n  case: {case}\n  Likely "
                "mistake: the chain rule passes each layer's result on: dy = layer.backward(dy)."
            )
    d3 = dy * (1.0 - np.tanh(h3) ** 2)
    d1 = (d3 @ w3) * (1.0 - np.tanh(h1) ** 2)
    assert_close(
        dx,
        d1 * w1,
        what="Sequential.backward result (dL/dx)",
        case=case,
        hint="return the first layer's backward result",
        reference="the chain rule",
    )

    pairs = student_call("Sequential.parameters", case, model.parameters)
    expected_pairs = [(layer.params, layer.grads) for layer in layers if layer.params]
    try:
        given = [(p, gr) for p, gr in pairs if p]  # layers without parameters may appear
    except Exception:
        given = None
    same = given is not None and len(given) == len(expected_pairs)
    same = same and all(
        p is ep and gr is eg for (p, gr), (ep, eg) in zip(given, expected_pairs, strict=False)
    )
    if not same:
        with_params = [layer.name for layer in layers if layer.params]
        raise GradingFailure(
            "Sequential.parameters() must return a list of (layer.params, layer.grads) "
            "pairs, the layers' own dicts (not copies), in the order of the layers\n  case: "
            f"{case}\n  layers with parameters: {with_params}"
        )


def sequential(Sequential) -> None:
    """``Sequential(layers)``: forward in order, backward in reverse, ``parameters()`` pairs."""
    g = rng("sequential")
    _sequential_case(
        Sequential, "probe layers scale-tanh-dense-tanh, x (5, 4)", g.normal(size=(5, 4)), (4, 3)
    )
    _sequential_case(
        Sequential, "the same layers, batch of 1, x (1, 6)", g.normal(size=(1, 6)), (6, 2)
    )
    passed("Sequential", "forward in order, backward in reverse, parameters() are the layers' own")


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------

# Two layers' parameters; the second set has two layers of identical shapes, so optimizer
# state keyed by parameter name alone ("weight") gives wrong numbers instead of an error.
_SHAPES_MIXED = [{"weight": (3, 4), "bias": (3,)}, {"weight": (2, 3), "bias": (2,)}]
_SHAPES_TWINS = [{"weight": (2, 2), "bias": (2,)}, {"weight": (2, 2), "bias": (2,)}]


def _initial(g, shapes):
    return [{name: g.normal(size=shape) for name, shape in layer.items()} for layer in shapes]


def _gradient_steps(g, shapes, steps: int, scale: float):
    """Per step, per layer, a dict of gradients; some entries exactly zero."""
    out = []
    for step in range(steps):
        layers = []
        for layer in shapes:
            grads = {name: scale * g.normal(size=shape) for name, shape in layer.items()}
            if step == 1:
                grads["bias"] = np.zeros_like(grads["bias"])
            layers.append(grads)
        out.append(layers)
    return out


def _snapshot(value):
    try:
        return np.array(value, dtype=np.float64, copy=True)
    except Exception:  # assert_close reports what it is
        return value


def _run_student(cls, what: str, case: str, init, grad_steps, kwargs):
    """Per step, the student's parameters (list of dicts) after ``step()``."""
    # The dicts live beside the student's optimizer, which updates their arrays in place.
    parameters = [(student_side_dict(cls, layer), student_side_dict(cls, {})) for layer in init]
    opt = student_call(what, case, cls, parameters, **kwargs)
    if not callable(getattr(opt, "step", None)):
        raise GradingFailure(f"{what} has no step() method\n  case: {case}")
    history = []
    for k, step_grads in enumerate(grad_steps, 1):
        for (_, grads), layer_grads in zip(parameters, step_grads, strict=True):
            # New arrays each step, as a backward pass stores them.
            for name, gradient in layer_grads.items():
                grads[name] = gradient.copy()
        student_call(f"{what}.step", f"{case}, step {k}", opt.step)
        history.append(
            [
                {n: _snapshot(refreshed(params).get(n)) for n in layer}
                for layer, (params, _) in zip(init, parameters, strict=True)
            ]
        )
    return history


def _simulate_sgd(init, grad_steps, lr, momentum, kind):
    """SGD in NumPy, correct (``kind="torch"``) or with one classic mistake."""
    params = [{n: p.copy() for n, p in layer.items()} for layer in init]
    velocity: dict = {}
    history = []
    for step_grads in grad_steps:
        for i, (layer, layer_grads) in enumerate(zip(params, step_grads, strict=True)):
            for name, g in layer_grads.items():
                key = name if kind == "shared-state" else (i, name)
                v = velocity.get(key, np.zeros_like(g))
                if kind == "dampened":
                    v = momentum * v + (1.0 - momentum) * g
                else:
                    v = momentum * v + g
                if kind != "velocity-reset":
                    velocity[key] = v
                step = g + momentum * v if kind == "nesterov" else v
                layer[name] = layer[name] - lr * step
        history.append([{n: p.copy() for n, p in layer.items()} for layer in params])
    return history


def _simulate_adam(init, grad_steps, lr, betas, eps, kind):
    """Adam in NumPy, correct (``kind="torch"``) or with one classic mistake."""
    b1, b2 = betas
    params = [{n: p.copy() for n, p in layer.items()} for layer in init]
    state: dict = {}
    t = 0
    history = []
    for step_grads in grad_steps:
        t += 1
        for i, (layer, layer_grads) in enumerate(zip(params, step_grads, strict=True)):
            for name, g in layer_grads.items():
                key = name if kind == "shared-state" else (i, name)
                m, v, count = state.get(key, (np.zeros_like(g), np.zeros_like(g), 0))
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                count += 1
                state[key] = (m, v, count)
                # The mistake counts every parameter update: all of them so far, this one too.
                n = sum(c for (_, _, c) in state.values()) if kind == "step-per-parameter" else t
                if kind == "no-bias-correction":
                    m_hat, v_hat = m, v
                else:
                    m_hat, v_hat = m / (1 - b1**n), v / (1 - b2**n)
                if kind == "eps-inside-sqrt":
                    denominator = np.sqrt(v_hat + eps)
                else:
                    denominator = np.sqrt(v_hat) + eps
                layer[name] = layer[name] - lr * m_hat / denominator
        history.append([{n: p.copy() for n, p in layer.items()} for layer in params])
    return history


_SGD_MISTAKES = {
    "velocity-reset": "the velocity is not kept between steps (it starts from zero in every "
    "step(), so momentum has no effect): create it once, e.g. in __init__, and update it",
    "dampened": "v = momentum * v + (1 - momentum) * grad is a moving average (dampening); "
    "torch's SGD adds the whole gradient: v = momentum * v + grad",
    "nesterov": "that is Nesterov momentum (step along grad + momentum * v); the plain "
    "momentum step is p -= lr * v",
    "shared-state": "layers share one velocity per parameter name ('weight', 'bias'); keep one "
    "per layer and name",
}
_ADAM_MISTAKES = {
    "no-bias-correction": "no bias correction: divide m by (1 - beta1**t) and v by "
    "(1 - beta2**t), with t the number of steps taken so far (1 at the first step)",
    "eps-inside-sqrt": "eps is added inside the square root; torch divides by sqrt(v_hat) + eps",
    "step-per-parameter": "the step count t grows once per parameter instead of once per "
    "step() call",
    "shared-state": "layers share one (m, v) per parameter name ('weight', 'bias'); keep them "
    "per layer and name",
}


def _same_step(mine: list[dict], simulated: list[dict]) -> bool:
    """Whether every parameter of one step equals the simulation's."""
    return all(
        matches(mine[i][n], simulated[i][n], atol=1e-10, rtol=1e-8)
        for i, layer in enumerate(simulated)
        for n in layer
    )


def _step_mistakes(mine: list[dict], k: int, simulate, explanations: dict) -> dict:
    """The classic mistakes that give every parameter of the student's step ``k``: the
    explanation -> a Symptom comparing the whole step with that mistake's simulation (a
    simulation that cannot run on these shapes does not apply)."""
    return {
        explanation: Symptom(lambda _, kind=kind: _same_step(mine, simulate(kind)[k]))
        for kind, explanation in explanations.items()
    }


def _compare(student_history, torch_history, case: str, what: str, simulate, explanations):
    for k, (mine, theirs) in enumerate(zip(student_history, torch_history, strict=True)):
        for i, layer in enumerate(theirs):
            for name, expected in layer.items():
                actual = mine[i][name]
                if isinstance(actual, np.ndarray) and matches(actual, expected, 1e-10, 1e-8):
                    continue
                assert_close(
                    actual,
                    expected,
                    what=f"{what}: layer {i} {name!r} after step {k + 1}",
                    case=case,
                    atol=1e-10,
                    rtol=1e-8,
                    hint=_step_mistakes(mine, k, simulate, explanations),
                    reference=f"torch.optim.{what}",
                )


def _sgd_case(SGD, case, shapes, steps, lr, momentum, *, pass_momentum=True):
    g = rng("sgd", steps * 1000 + int(lr * 100) + int(momentum * 10))
    init = _initial(g, shapes)
    grad_steps = _gradient_steps(g, shapes, steps, 1.0)
    kwargs = {"lr": lr, "momentum": momentum} if pass_momentum else {"lr": lr}
    mine = _run_student(SGD, "SGD", case, init, grad_steps, kwargs)
    theirs = reference.sgd_steps(init, grad_steps, lr=lr, momentum=momentum)
    _compare(
        mine,
        theirs,
        case,
        "SGD",
        lambda kind: _simulate_sgd(init, grad_steps, lr, momentum, kind),
        _SGD_MISTAKES,
    )


def sgd(SGD) -> None:
    """SGD with momentum, several steps, against ``torch.optim.SGD`` in float64."""
    _sgd_case(
        SGD,
        "lr=0.05, momentum=0.5, two layers of identical shapes, 4 steps",
        _SHAPES_TWINS,
        4,
        0.05,
        0.5,
    )
    _sgd_case(SGD, "lr=0.1, momentum=0.9, two layers, 5 steps", _SHAPES_MIXED, 5, 0.1, 0.9)
    passed("SGD with momentum", "9 steps in 2 cases match torch.optim.SGD")


def sgd_no_momentum(SGD) -> None:
    """SGD without momentum (the default), against ``torch.optim.SGD``."""
    _sgd_case(
        SGD,
        "SGD(parameters, lr=0.1): momentum left at its default, 3 steps",
        _SHAPES_MIXED,
        3,
        0.1,
        0.0,
        pass_momentum=False,
    )
    _sgd_case(SGD, "lr=0.5, momentum=0.0, 2 steps", _SHAPES_TWINS, 2, 0.5, 0.0)
    passed("SGD without momentum", "5 steps in 2 cases match torch.optim.SGD")


def _adam_case(Adam, case, shapes, steps, scale, lr, betas=None, eps=None):
    g = rng("adam", steps * 1000 + int(lr * 1000))
    init = _initial(g, shapes)
    grad_steps = _gradient_steps(g, shapes, steps, scale)
    kwargs = {"lr": lr}
    if betas is not None:
        kwargs.update(betas=betas, eps=eps)
    b, e = betas or (0.9, 0.999), 1e-8 if eps is None else eps
    mine = _run_student(Adam, "Adam", case, init, grad_steps, kwargs)
    theirs = reference.adam_steps(init, grad_steps, lr=lr, betas=b, eps=e)
    _compare(
        mine,
        theirs,
        case,
        "Adam",
        lambda kind: _simulate_adam(init, grad_steps, lr, b, e, kind),
        _ADAM_MISTAKES,
    )


def adam(Adam) -> None:
    """Adam, several steps (bias correction included), against ``torch.optim.Adam``."""
    _adam_case(
        Adam,
        "lr=0.05, betas=(0.8, 0.95), eps=1e-3, small gradients (~1e-3), two "
        "layers of identical shapes, 5 steps",
        _SHAPES_TWINS,
        5,
        1e-3,
        0.05,
        betas=(0.8, 0.95),
        eps=1e-3,
    )
    _adam_case(
        Adam,
        "Adam(parameters, lr=0.01) with default betas and eps, 6 steps",
        _SHAPES_MIXED,
        6,
        1.0,
        0.01,
    )
    passed("Adam", "11 steps in 2 cases match torch.optim.Adam, bias correction included")


# ---------------------------------------------------------------------------------------------
# The model, its training and its accuracy
# ---------------------------------------------------------------------------------------------


def _finite_array(value, what: str, case: str, shape: tuple) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except Exception:
        raise GradingFailure(
            f"{what} is not an array of numbers ({type(value).__name__})\n  case: {case}"
        ) from None
    if array.shape != shape:
        raise GradingFailure(f"{what} has shape {array.shape}, expected {shape}\n  case: {case}")
    if not np.all(np.isfinite(array)):
        raise GradingFailure(f"{what} holds NaN or inf\n  case: {case}")
    return array


def model_shapes(build_model) -> None:
    """``build_model()``: ``(N, 1, 8, 8) -> (N, 10)`` logits, backward to the input's shape."""
    g = rng("model_shapes")
    model = student_call("build_model", "build_model()", build_model)
    for method in ("forward", "backward", "parameters"):
        if not callable(getattr(model, method, None)):
            raise GradingFailure(
                f"build_model() returned a {type(model).__name__} without {method}(): return "
                "a Sequential of your layers"
            )
    for n in (1, 5):
        case = f"a batch of {n} digit-shaped images (N, 1, 8, 8), float32 like load_digits"
        x = g.uniform(0.0, 1.0, size=(n, 1, 8, 8)).astype(np.float32)
        scores = student_call("model.forward", case, model.forward, x)
        _finite_array(scores, "model.forward(x)", case, (n, 10))
        dx = student_call("model.backward", case, model.backward, g.normal(size=(n, 10)))
        _finite_array(dx, "model.backward(dscores)", case, (n, 1, 8, 8))
    pairs = student_call("model.parameters", "after a backward pass", model.parameters)
    try:
        pairs = [(params, grads) for params, grads in pairs]
    except Exception:
        raise GradingFailure(
            "model.parameters() must return a list of (params, grads) pairs"
        ) from None
    if not pairs:
        raise GradingFailure("model.parameters() is empty: the model has nothing to train")
    total, convolutions = 0, 0
    for i, (params, grads) in enumerate(pairs):
        for name, value in params.items():
            shape = np.shape(value)
            total += int(np.prod(shape))
            convolutions += len(shape) == 4 and name == "weight"
            if name not in grads or np.shape(grads[name]) != shape:
                raise GradingFailure(
                    f"after model.backward, parameter {i} {name!r} {shape} has no gradient of "
                    f"its shape in grads (found {np.shape(grads.get(name))})"
                )
    if convolutions == 0:
        raise GradingFailure("the model has no convolution (no 4-D weight): build a CNN")
    if total > MAX_PARAMETERS:
        raise GradingFailure(
            f"the model has {total} parameters; keep it small (at most {MAX_PARAMETERS}), it "
            "must train in well under 30 s"
        )
    passed(
        "build_model",
        f"(N, 1, 8, 8) -> (N, 10) and back for N = 1 and 5; {convolutions} convolutions, "
        f"{total} parameters",
    )


def history(history) -> None:
    """The training history: a dict of per-epoch lists; the losses went down."""
    if not isinstance(history, Mapping):
        raise GradingFailure(
            f"history is a {type(history).__name__}; train() must return a dict with the keys "
            f"{list(HISTORY_KEYS)}, one entry per epoch each"
        )
    missing = [key for key in HISTORY_KEYS if key not in history]
    if missing:
        raise GradingFailure(f"history has no {missing} (it has {sorted(history)})")
    curves = {}
    for key in HISTORY_KEYS:
        try:
            values = [float(v) for v in history[key]]
        except Exception:
            raise GradingFailure(f"history[{key!r}] is not a list of numbers") from None
        if not all(math.isfinite(v) for v in values):
            raise GradingFailure(f"history[{key!r}] holds NaN or inf: {values}")
        curves[key] = values
    lengths = {key: len(values) for key, values in curves.items()}
    if len(set(lengths.values())) != 1 or lengths["train_loss"] < 2:
        raise GradingFailure(
            f"history needs one entry per epoch in every list, at least 2 epochs; lengths {lengths}"
        )
    for key in ("train_acc", "val_acc"):
        if not all(0.0 <= v <= 1.0 for v in curves[key]):
            raise GradingFailure(f"history[{key!r}] must be fractions in [0, 1]: {curves[key]}")
    train, val = curves["train_loss"], curves["val_loss"]
    if not train[-1] < train[0]:
        raise GradingFailure(
            f"the training loss did not go down: {train[0]:.4g} after the first epoch, "
            f"{train[-1]:.4g} after the last"
        )
    if not min(val[1:]) < val[0]:
        raise GradingFailure(
            f"the validation loss never went below its first value {val[0]:.4g}: {val}"
        )
    passed(
        "training history",
        f"{len(train)} epochs, training loss {train[0]:.3f} -> {train[-1]:.3f}, validation "
        f"accuracy {curves['val_acc'][-1]:.1%}",
    )


def heldout_accuracy(model) -> None:
    """The trained ``model``'s accuracy on ``load_digits("test")``, evaluated here."""
    if not callable(getattr(model, "forward", None)):
        raise GradingFailure(f"model is a {type(model).__name__} without forward()")
    images, labels = load_digits("test")
    case = f"the {len(labels)} test digits of load_digits('test'), one batch"
    # Small matrices: BLAS threads only slow this down when submissions are graded in parallel.
    with threadpool_limits(limits=1, user_api="blas"):
        scores = student_call("model.forward", case, model.forward, images)
    scores = _finite_array(scores, "model.forward(test images)", case, (len(labels), 10))
    correct = int(np.sum(np.argmax(scores, axis=1) == labels))
    accuracy = correct / len(labels)
    if accuracy < ACCURACY_BAR:
        per_class = [float(np.mean(np.argmax(scores[labels == c], axis=1) == c)) for c in range(10)]
        worst = int(np.argmin(per_class))
        raise GradingFailure(
            f"held-out accuracy {accuracy:.1%} ({correct} of {len(labels)} test digits) is "
            f"below the bar of {ACCURACY_BAR:.0%}\n  case: {case}\n  the weakest class is "
            f"{worst} ({per_class[worst]:.0%}); train longer or tune the learning rate, and "
            "check your layers with the public gradient checks"
        )
    passed(
        "held-out accuracy",
        f"{accuracy:.1%} ({correct} of {len(labels)} test digits), bar {ACCURACY_BAR:.0%}",
    )
