"""Hidden tests of assignment 2, fully connected layers and losses (``a2_fc_losses``).

One function per graded test cell of ``course/assignments/a2_fc_losses/fc_losses.ipynb``;
each takes the student's class or function, prints one line when the part passes and
raises :class:`~grader.checks.harness.GradingFailure` with a diagnosis when it does not.

The student API (torch's layout and reductions):

- ``Linear(in_features, out_features, bias=True)``: ``params`` ``{"weight": (out, in),
  "bias": (out,)}``, ``forward(x (N, in)) -> x @ W.T + b``, ``backward(dy) -> dx``;
- ``ReLU``, ``Sigmoid``, ``Softmax`` (over the last axis): ``forward(x)``, ``backward(dy)``;
- ``softmax_jacobian(s) -> diag(s) - s s^T``, shape ``(K, K)``;
- ``MSELoss``, ``CrossEntropyLoss``: ``forward(pred, target) -> float`` (mean, as torch),
  ``backward() -> d loss / d pred``;
- ``numerical_gradient(f, x, h=1e-5)`` (centred differences of a scalar ``f``, leaving ``x``
  as it was) and ``relative_error(a, b) = max |a - b| / max(|a|, |b|)``.

One mistake, one cell (docs/authoring.md):

- every check builds its own layer and parameters and feeds its own upstream gradient;
- a backward check runs forward only for its cache (``harness.forward_for_cache``, on
  copies of its inputs): neither the forward's value, nor its failure, nor a change it
  makes to its input in place is graded there (the forward cells grade all three; the
  case says when forward failed);
- an in-place change of the input (``logits -= logits.max(...)``) is charged by the forward
  cell alone: the large-logit cells hand the student copies and do not look;
- the large-logit checks accept a result that is wrong in the same way as the student's
  result on the same logits shifted to moderate values (the moderate checks charge that
  mistake), so they grade stability alone; softmax_backward's large-logit cases are not
  graded where the student's forward is not finite (softmax_large_logits charges that);
- softmax_backward grades the backward formula with the student's own forward output where
  that output is finite but differs from torch.

Coverage: the Linear dW and db cells also run one layer twice (forward, backward with
another dy, forward, backward), so a backward that adds into ``grads`` instead of storing
fails; numerical_gradient gets a transposed (Fortran-order) x, whose ``reshape(-1)`` is a
copy. Precision: a float32 result is compared at float32 precision (harness.FLOAT32_RTOL);
loss values, floats whatever the student computed them in, at atol 1e-6 (:data:`LOSS_ATOL`);
at logits of size 1000, where float32 holds a logit only to about 6e-5, at atol 1e-4 and
rtol 1e-3 (:data:`LARGE_LOGITS_FLOAT32`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cvcourse.gradcheck import relative_error as reference_relative_error
from grader import reference
from grader.checks import fixtures
from grader.checks.harness import (
    GradingFailure,
    Symptom,
    any_of,
    assert_close,
    call_unchanged,
    callable_by_students,
    fd_note,
    forward_for_cache,
    get_grad,
    matches,
    near,
    non_contiguous,
    passed,
    rng,
    set_params,
    student_call,
)

__all__ = [
    "cross_entropy_backward",
    "cross_entropy_forward",
    "cross_entropy_large_logits",
    "linear_backward_bias",
    "linear_backward_input",
    "linear_backward_weight",
    "linear_forward",
    "mse_backward",
    "mse_forward",
    "numerical_gradient",
    "relative_error",
    "relu",
    "sigmoid",
    "softmax_backward",
    "softmax_forward",
    "softmax_jacobian",
    "softmax_large_logits",
]

# The diagnoses the planted mistakes (grader/term/planted/a2_fc_losses.py) must produce.
TRANSPOSED_WEIGHT = (
    "transposed linear weight: you computed x @ W, but torch stores weight as "
    "(out_features, in_features) and computes y = x @ W.T + b"
)
WEIGHT_STORED_IN_OUT = (
    "transposed linear weight: weight stored as (in_features, out_features); torch's "
    "layout is (out_features, in_features), with y = x @ W.T + b"
)
BIAS_WRONG_AXIS = (
    "bias gradient summed over the wrong axis: over axis 1 (the features) instead of "
    "axis 0 (the batch); db = dy.sum(axis=0)"
)
SOFTMAX_OVERFLOW = (
    "softmax overflow on large logits: exp(1000) is inf and exp(-1000) is 0, so the "
    "division gives NaN; subtract each row's max first, softmax(z) = softmax(z - max(z)) "
    "(x.max(axis=-1, keepdims=True))"
)
CE_OVERFLOW = (
    "cross-entropy overflow on large logits: compute log-softmax with the log-sum-exp "
    "trick, log p = z - m - log(sum(exp(z - m))) with m the row max, instead of log(softmax) "
    "(exp overflows to inf, and a probability that underflows to 0 has log -inf)"
)
LOSS_SUMMED = "loss summed instead of averaged: the result is {factor} times too large; {how}"
GRAD_NOT_DIVIDED = "gradient not divided by {n}: the loss is a mean, so its gradient is too"
SIGMOID_S = (
    "sigmoid derivative written as s instead of s(1 - s): d sigmoid(x)/dx = s * (1 - s) "
    "with s = sigmoid(x)"
)
RELU_AT_ZERO = (
    "ReLU gradient at exactly x == 0 should be 0, as in torch: pass dy only where x > 0 "
    "(not x >= 0)"
)
SOFTMAX_BACKWARD_OVERFLOW = (
    "softmax backward overflows on large logits: it recomputes exp of the logits (inf at "
    "1000); use the probabilities s that forward computed stably, "
    "dz = s * (dy - sum(dy * s, axis=-1, keepdims=True))"
)
ACCUMULATED = (
    "gradient accumulated across backward calls: grads[{name!r}] holds the sum of this "
    "call's gradient and the previous call's; store the gradient of this call "
    "(grads[{name!r}] = ...) instead of adding it to the old value (+=)"
)
FLAT_COPY = (
    "all zeros on a non-contiguous x: x.reshape(-1) or x.ravel() made a copy (for a "
    "transposed x they must), so f never saw the change; index x itself "
    "(np.ndindex(x.shape)) or write through x.flat"
)
RELATIVE_ERROR_FLOAT32 = (
    "relative_error computes in float32: yours equals the relative error of the inputs "
    "rounded to float32, which keeps about 7 significant digits, too few for the errors "
    "of 1e-7 that gradient checks report (the checks compare in float64 at rtol 1e-6); "
    "compute in float64"
)
#: A loss is one number of order 1, returned as a Python float even when computed in float32
#: (whose rounding of the order-1 inputs moves it by up to ~5e-7): compared at this atol.
LOSS_ATOL = 1e-6
#: Tolerances for a float32 result at logits of size 1000 (float32 keeps such a logit only
#: to about 6e-5, so the probabilities and the loss are no more precise than that).
LARGE_LOGITS_FLOAT32 = {"atol": 1e-4, "rtol": 1e-3}
NOT_RESTORED = (
    "numerical_gradient did not restore x: keep each element's original value and put it "
    "back after evaluating f(x + h) and f(x - h)"
)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _scalar(value, what: str, case: str):
    """A loss value as a float: one number, or a failure that says what came back.

    A float32 number stays a ``np.float32``, so that it is compared at float32 precision.
    """
    __tracebackhide__ = True
    if value is None:
        raise GradingFailure(f"{what} returned None (did it forget to return?)\n  case: {case}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradingFailure(
            f"{what} returned {type(value).__name__}, expected one number\n  case: {case}"
        ) from None
    if array.size != 1:
        raise GradingFailure(
            f"{what} returned an array of shape {array.shape}, expected one number (the mean "
            f"over the batch; a float)\n  case: {case}"
        )
    if np.asarray(value).dtype == np.float32:
        return np.float32(array.reshape(()))
    return float(array.reshape(()))


def _numeric(value) -> np.ndarray | None:
    """``value`` as a float64 array, or None if it is not an array of numbers."""
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _not_finite(actual: np.ndarray) -> bool:
    return not np.all(np.isfinite(actual))


# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------


@dataclass
class _LinearCase:
    label: str
    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    dy: np.ndarray

    @property
    def case(self) -> str:
        bias = f"bias {self.bias.shape}" if self.bias is not None else "bias=False"
        return f"{self.label}: x {self.x.shape}, weight {self.weight.shape}, {bias}"

    def torch(self):
        """``(y, dx, dweight, dbias)`` of ``F.linear`` for upstream ``dy``."""
        return reference.linear(self.x, self.weight, self.bias, self.dy)


def _linear_cases(part: str, *, with_no_bias: bool) -> list[_LinearCase]:
    g = rng(part)

    def make(label, n, fin, fout, bias=True, strided=False):
        x = g.standard_normal((n, fin))
        weight = g.standard_normal((fout, fin)) / np.sqrt(fin)
        b = g.standard_normal(fout) if bias else None
        dy = g.standard_normal((n, fout))
        if strided:
            x = non_contiguous(x)
        return _LinearCase(label, x, weight, b, dy)

    # The square case comes first: a transposed weight still multiplies there, so its
    # values (not a shape error) show which mistake it is.
    cases = [
        make("square weight", 4, 4, 4),
        make("random", 6, 5, 3),
        make("batch of 1", 1, 7, 2),
        make("one input feature", 5, 1, 4),
        make("one output feature", 3, 6, 1),
        make("non-contiguous x", 4, 5, 3, strided=True),
    ]
    if with_no_bias:
        cases.append(make("no bias", 3, 4, 2, bias=False))
    return cases


def _check_layout(Linear) -> None:
    """A new ``Linear(3, 2)`` must hold weight (2, 3) and bias (2,), torch's layout."""
    __tracebackhide__ = True
    case = "Linear(3, 2) as constructed, before any parameters are set"
    layer = student_call("Linear(3, 2)", case, Linear, 3, 2)
    params = getattr(layer, "params", None)
    if not isinstance(params, dict):
        return  # set_params names that problem, on the first case
    shape = np.shape(params.get("weight"))
    if shape == (3, 2):
        raise GradingFailure(
            f"Linear.params['weight'] has shape {shape}, torch's layout is (2, 3)\n"
            f"  case: {case}\n  Likely mistake: {WEIGHT_STORED_IN_OUT}"
        )


def _new_linear(Linear, c: _LinearCase):
    """A student Linear with the case's parameters, its layout checked first."""
    __tracebackhide__ = True
    fout, fin = c.weight.shape
    has_bias = c.bias is not None
    layer = student_call(
        f"Linear({fin}, {fout}, bias={has_bias})", c.case, Linear, fin, fout, bias=has_bias
    )
    params = getattr(layer, "params", None)
    if isinstance(params, dict) and fin != fout and np.shape(params.get("weight")) == (fin, fout):
        raise GradingFailure(
            f"Linear.params['weight'] has shape {(fin, fout)}, torch's layout is {(fout, fin)}"
            f"\n  case: {c.case}\n  Likely mistake: {WEIGHT_STORED_IN_OUT}"
        )
    arrays = {"weight": c.weight}
    if has_bias:
        arrays["bias"] = c.bias
    set_params(layer, "Linear", **arrays)
    return layer


def _linear_backward(Linear, c: _LinearCase):
    """Run the student's forward (for its cache) and backward; returns ``(layer, dx, note)``."""
    __tracebackhide__ = True
    layer = _new_linear(Linear, c)
    note = forward_for_cache("Linear", c.case, layer.forward, c.x)
    dx = student_call("Linear.backward", c.case + note, layer.backward, c.dy.copy())
    return layer, dx, note


def _param_forward(Linear, c: _LinearCase, name: str) -> Callable[[], Callable]:
    """Builds the student's forward as a function of one parameter (for finite differences)."""

    def build():
        layer = _new_linear(Linear, c)

        def forward(value):
            layer.params[name] = value
            return layer.forward(c.x)

        return forward

    return build


def linear_forward(Linear) -> None:
    """``Linear.forward`` against ``F.linear``: y = x @ W.T + b."""
    __tracebackhide__ = True
    _check_layout(Linear)
    cases = _linear_cases("linear_forward", with_no_bias=True)
    for c in cases:
        layer = _new_linear(Linear, c)
        y = call_unchanged("Linear.forward", c.case, layer.forward, c.x)
        expected = c.torch()[0]
        b = c.bias if c.bias is not None else 0.0
        mistakes = {
            # x @ W multiplies only where the weight is square.
            TRANSPOSED_WEIGHT: lambda c=c, b=b: c.x @ c.weight + b,
            "output transposed: y must be (N, out_features), one row per sample": expected.T,
            "bias not added: y = x @ W.T + b": c.x @ c.weight.T if c.bias is not None else None,
            "with bias=False the layer has no bias: params has no 'bias' entry": (
                Symptom(lambda a, shape=expected.shape: a.shape == shape)
                if c.bias is None
                else None
            ),
        }
        assert_close(y, expected, what="Linear.forward output y", case=c.case, hint=mistakes)
    passed("Linear forward", f"matches torch on {len(cases)} cases")


def linear_backward_input(Linear) -> None:
    """``Linear.backward``'s return value dx = dy @ W against torch autograd."""
    __tracebackhide__ = True
    _check_layout(Linear)
    cases = _linear_cases("linear_backward_input", with_no_bias=True)
    for c in cases:
        layer, dx, note = _linear_backward(Linear, c)
        expected = c.torch()[1]
        fout, fin = c.weight.shape
        mistakes = {
            # dy @ W.T multiplies only where the weight is square.
            "transposed: dx = dy @ W with W of shape (out, in), not dy @ W.T": (
                lambda c=c: c.dy @ c.weight.T
            ),
            "dx must have x's shape (N, in_features): dx = dy @ W": (
                Symptom(lambda a, shape=(c.x.shape[0], fout): a.shape == shape)
                if fin != fout
                else None
            ),
        }
        assert_close(
            dx,
            expected,
            what="Linear.backward's dx",
            case=c.case + note,
            hint=mistakes,
            note=fd_note(
                lambda c=c: _new_linear(Linear, c).forward, c.x, c.dy, dx, "dx", expected=expected
            ),
        )
    passed("Linear backward, dx", f"matches torch autograd on {len(cases)} cases")


def linear_backward_weight(Linear) -> None:
    """``Linear.grads["weight"]`` = dy.T @ x against torch autograd."""
    __tracebackhide__ = True
    _check_layout(Linear)
    cases = _linear_cases("linear_backward_weight", with_no_bias=False)
    for c in cases:
        layer, _, note = _linear_backward(Linear, c)
        dw = get_grad(layer, "weight", "Linear")
        expected = c.torch()[2]
        n = c.x.shape[0]
        mistakes = {
            "dW transposed: grads['weight'] has weight's shape (out_features, in_features), "
            "dW = dy.T @ x": expected.T,
            "dW averaged over the batch: the layer sums over samples, dW = dy.T @ x": (
                expected / n if n > 1 else None
            ),
            "dW not summed over the batch: one gradient per sample was kept": Symptom(
                lambda a: a.ndim == 3
            ),
        }
        assert_close(
            dw,
            expected,
            what="Linear.grads['weight']",
            case=c.case + note,
            hint=mistakes,
            note=fd_note(
                _param_forward(Linear, c, "weight"), c.weight, c.dy, dw, "dW", expected=expected
            ),
        )
    _linear_twice(Linear, "weight", "linear_backward_weight")
    passed(
        "Linear backward, dW",
        f"matches torch autograd on {len(cases)} cases and after a second backward on the "
        "same layer",
    )


def linear_backward_bias(Linear) -> None:
    """``Linear.grads["bias"]`` = dy.sum(axis=0) against torch autograd."""
    __tracebackhide__ = True
    _check_layout(Linear)
    cases = _linear_cases("linear_backward_bias", with_no_bias=False)
    for c in cases:
        layer, _, note = _linear_backward(Linear, c)
        db = get_grad(layer, "bias", "Linear")
        expected = c.torch()[3]
        dy = c.dy
        mistakes = {
            BIAS_WRONG_AXIS: dy.sum(axis=1),
            "bias gradient averaged over the batch instead of summed: dy.sum(axis=0)": (
                dy.mean(axis=0) if dy.shape[0] > 1 else None
            ),
            "bias gradient not summed over the batch: db = dy.sum(axis=0)": Symptom(
                lambda a, shape=dy.shape: a.shape == shape
            ),
            "bias gradient summed over both axes: db = dy.sum(axis=0)": Symptom(
                lambda a, dy=dy: a.size == 1 and matches(a.reshape(()), dy.sum())
            ),
        }
        assert_close(
            db,
            expected,
            what="Linear.grads['bias']",
            case=c.case + note,
            hint=mistakes,
            note=fd_note(
                _param_forward(Linear, c, "bias"), c.bias, c.dy, db, "db", expected=expected
            ),
        )
    _linear_twice(Linear, "bias", "linear_backward_bias")
    passed(
        "Linear backward, db",
        f"matches torch autograd on {len(cases)} cases and after a second backward on the "
        "same layer",
    )


def _linear_twice(Linear, name: str, part: str) -> None:
    """``grads[name]`` after forward, backward (another dy), forward, backward on one layer.

    A backward that adds into ``grads`` (``+=``) instead of storing is right the first time
    (grads start at zero) and wrong the second.
    """
    __tracebackhide__ = True
    g = rng(part, salt=1)
    x = g.standard_normal((4, 3))
    c = _LinearCase(
        "one layer run twice: forward, backward with another dy, forward, backward with this dy",
        x,
        g.standard_normal((2, 3)) / np.sqrt(3),
        g.standard_normal(2),
        g.standard_normal((4, 2)),
    )
    earlier = _LinearCase(c.label, x, c.weight, c.bias, g.standard_normal((4, 2)))
    index = 2 if name == "weight" else 3
    expected, before = c.torch()[index], earlier.torch()[index]
    layer = _new_linear(Linear, c)
    for dy in (earlier.dy, c.dy):
        note = forward_for_cache("Linear", c.case, layer.forward, c.x)
        student_call("Linear.backward", c.case + note, layer.backward, dy.copy())
    grad = get_grad(layer, name, "Linear")
    mistakes = {
        ACCUMULATED.format(name=name): expected + before,
        "the second backward left the first call's gradient in grads": before,
    }
    assert_close(
        grad,
        expected,
        what=f"Linear.grads[{name!r}] after the second backward",
        case=c.case,
        hint=mistakes,
    )


# ---------------------------------------------------------------------------------------------
# Elementwise activations
# ---------------------------------------------------------------------------------------------


def _activation_cases(part: str, scale: float, extremes: tuple[float, ...] = ()):
    g = rng(part)
    zeros = g.standard_normal((4, 6)) * scale
    zeros.reshape(-1)[::5] = 0.0  # exact zeros: ReLU's kink, where torch's gradient is 0
    cases = [
        ("random", g.standard_normal((3, 5)) * scale),
        ("exact zeros in x", zeros),
        ("batch of 1", g.standard_normal((1, 4)) * scale),
        ("one feature", g.standard_normal((5, 1)) * scale),
        ("non-contiguous x", non_contiguous(g.standard_normal((4, 3)) * scale)),
        ("3-D x", g.standard_normal((2, 3, 4)) * scale),
    ]
    if extremes:
        cases.append(("large |x|", np.array([list(extremes)])))
    return [(f"{label}: x {x.shape}", x, g.standard_normal(x.shape)) for label, x in cases]


_NOT_FINITE = {"the result has NaN or inf": Symptom(_not_finite)}


def _elementwise(layer_class, name: str, part: str, torch_op, mistakes_of, scale, extremes=()):
    """Forward and backward of an elementwise layer against ``torch_op`` (a function of
    :mod:`grader.reference`), on each case. ``mistakes_of(x, dy, s)``: the recognised
    mistakes of dx, ``s`` being torch's forward."""
    __tracebackhide__ = True
    cases = _activation_cases(part, scale, extremes)
    for case, x, dy in cases:
        layer = student_call(f"{name}()", case, layer_class)
        y = call_unchanged(f"{name}.forward", case, layer.forward, x)
        expected_y, expected_dx = torch_op(x, dy)
        assert_close(y, expected_y, what=f"{name}.forward output", case=case, hint=_NOT_FINITE)
        dx = student_call(f"{name}.backward", case, layer.backward, dy.copy())
        assert_close(
            dx,
            expected_dx,
            what=f"{name}.backward's dx",
            case=case,
            hint=mistakes_of(x, dy, expected_y),
            note=fd_note(
                lambda case=case: student_call(f"{name}()", case, layer_class).forward,
                x,
                dy,
                dx,
                "dx",
                expected=expected_dx,
            ),
            # A float32 forward makes dx float32-precise, whatever dtype dx has (s(1 - s)).
            float32=True if np.asarray(y).dtype == np.float32 else None,
        )
    passed(name, f"forward and backward match torch on {len(cases)} cases")


def relu(ReLU) -> None:
    """``ReLU`` forward and backward against torch, including x == 0 exactly (gradient 0)."""
    __tracebackhide__ = True

    def mistakes_of(x, dy, s):
        return {
            # Right everywhere but at x == 0, where dy passed.
            RELU_AT_ZERO: np.where(x >= 0, dy, 0.0) if (x == 0).any() else None,
            "returned the mask (the local derivative) without multiplying it by dy": (
                (x > 0).astype(np.float64)
            ),
        }

    _elementwise(ReLU, "ReLU", "relu", reference.relu, mistakes_of, scale=1.0)


def sigmoid(Sigmoid) -> None:
    """``Sigmoid`` forward and backward (dx = dy * s * (1 - s)) against torch."""
    __tracebackhide__ = True

    def mistakes_of(x, dy, s):
        return {
            SIGMOID_S: dy * s,
            "derivative evaluated at the input x; it is s * (1 - s) with s = sigmoid(x)": (
                dy * x * (1 - x)
            ),
            "local derivative not multiplied by dy: dx = dy * s * (1 - s)": s * (1 - s),
        }

    _elementwise(
        Sigmoid,
        "Sigmoid",
        "sigmoid",
        reference.sigmoid,
        mistakes_of,
        3.0,
        (-750.0, -40.0, 40.0, 750.0),
    )


# ---------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------


def _np_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_cases(part: str):
    g = rng(part)
    cases = [
        ("random", g.standard_normal((4, 5)) * 2),
        ("batch of 1", g.standard_normal((1, 6)) * 2),
        ("two classes", g.standard_normal((5, 2)) * 2),
        ("one class", g.standard_normal((3, 1))),
        ("non-contiguous logits", non_contiguous(g.standard_normal((4, 5)) * 2)),
        ("3-D logits, softmax over the last axis", g.standard_normal((2, 3, 4)) * 2),
    ]
    return [(f"{label}: z {z.shape}", z, g.standard_normal(z.shape)) for label, z in cases]


def _softmax_mistakes(z: np.ndarray) -> dict:
    return {
        "softmax over axis 0 (the batch) instead of the last axis (each row)": (
            (lambda: _np_softmax(z, axis=0)) if z.ndim >= 2 and z.shape[0] > 1 else None
        ),
        "softmax over axis 1; use axis=-1 so that any number of leading axes works": (
            (lambda: _np_softmax(z, axis=1)) if z.ndim == 3 else None
        ),
        SOFTMAX_OVERFLOW: Symptom(_not_finite),
        "rows do not sum to 1: divide exp(z) by its sum over the last axis": Symptom(
            lambda a: a.shape == z.shape and not matches(a.sum(axis=-1), 1.0)
        ),
    }


def softmax_forward(Softmax) -> None:
    """``Softmax.forward`` against ``torch.softmax(dim=-1)`` on moderate logits."""
    __tracebackhide__ = True
    cases = _softmax_cases("softmax_forward")
    for case, z, _ in cases:
        layer = student_call("Softmax()", case, Softmax)
        s = call_unchanged("Softmax.forward", case, layer.forward, z)
        assert_close(
            s,
            reference.softmax(z)[0],
            what="Softmax.forward output",
            case=case,
            hint=_softmax_mistakes(z),
        )
    passed("Softmax forward", f"matches torch on {len(cases)} cases")


def _large_logit_cases(part: str):
    g = rng(part)
    return [
        ("logits around +1000", g.standard_normal((3, 4)) * 3 + 1000),
        ("logits around -1000", g.standard_normal((3, 4)) * 3 - 1000),
        ("rows spanning 2000", np.array([[1000.0, 0.0, -1000.0], [-1000.0, 0.0, 1000.0]])),
        (
            "rows at different scales",
            np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0], [0.0, 1.0, 2.0]]),
        ),
    ]


def _stable_or_fail(
    actual,
    expected,
    own_moderate,
    *,
    what: str,
    case: str,
    overflow: str,
    float32: bool = False,
) -> str:
    """Grade a large-logit result for stability; returns a note if it passed on its own terms.

    Matching torch passes. Otherwise a finite result equal to the student's own result on the
    same logits shifted down to moderate values (softmax and cross-entropy are unchanged by
    that shift) is stable, and what is wrong with it is the moderate test's business. A
    float32 result (``float32``: the student's code computes in float32) is compared at
    :data:`LARGE_LOGITS_FLOAT32`.
    """
    __tracebackhide__ = True
    float32 = float32 or np.asarray(actual).dtype == np.float32
    tolerance = LARGE_LOGITS_FLOAT32 if float32 else {"atol": 1e-8, "rtol": 1e-6}
    atol, rtol = tolerance["atol"], tolerance["rtol"]
    a = _numeric(actual)
    if a is not None and matches(a, expected, atol=atol, rtol=rtol):
        return ""
    if (
        a is not None
        and own_moderate is not None
        and np.all(np.isfinite(a))
        and matches(a, own_moderate, atol=atol, rtol=rtol)
    ):
        return (
            " (stable: it equals your result on the same logits shifted to moderate values, "
            "though that differs from torch; the moderate-logit test grades that)"
        )
    assert_close(
        actual,
        expected,
        what=what,
        case=case,
        atol=atol,
        rtol=rtol,
        hint={overflow: Symptom(_not_finite)},
        float32=float32 or None,
    )
    return ""


def _own(call: Callable, *args):
    """The student's result on a moderate version of a case, or None if that fails."""
    try:
        return np.asarray(call(*args), dtype=np.float64)
    except Exception:  # GradingFailure or a malformed result: no fallback, torch decides
        return None


def softmax_large_logits(Softmax) -> None:
    """``Softmax.forward`` on logits of size ~1000: finite and equal to torch (stability)."""
    __tracebackhide__ = True
    notes = set()
    cases = _large_logit_cases("softmax_large_logits")
    for label, z in cases:
        case = f"{label}: z {z.shape}"
        layer = student_call("Softmax()", case, Softmax)
        # A copy: an in-place change of z is softmax_forward's to grade, not this cell's.
        s = student_call("Softmax.forward", case, layer.forward, z.copy())
        shifted = z - z.max()

        def own(shifted=shifted, case=case):
            other = student_call("Softmax()", case, Softmax)
            return student_call("Softmax.forward", case, other.forward, shifted)

        note = _stable_or_fail(
            s,
            reference.softmax(z)[0],
            _own(own),
            what="Softmax.forward output",
            case=case,
            overflow=SOFTMAX_OVERFLOW,
        )
        notes.add(note)
    passed("Softmax, large logits", f"finite and right on {len(cases)} cases" + "".join(notes))


def softmax_backward(Softmax) -> None:
    """``Softmax.backward`` against torch autograd: dz = s * (dy - sum(dy * s, axis=-1)).

    On moderate logits and on logits of size 1000 (a backward that recomputes exp of the
    logits overflows there). Where the student's forward is finite but differs from torch,
    the formula is applied to the student's own forward output; a large-logit case where
    the forward is not finite is not graded here (softmax_large_logits charges that).
    """
    __tracebackhide__ = True
    notes = set()
    moderate = [(case, z, dy, False) for case, z, dy in _softmax_cases("softmax_backward")]
    g = rng("softmax_backward", salt=1)
    large = [
        (f"{label}: z {z.shape}", z, g.standard_normal(z.shape), True)
        for label, z in _large_logit_cases("softmax_backward")
    ]
    graded = 0
    for case, z, dy, is_large in moderate + large:
        layer = student_call("Softmax()", case, Softmax)
        s_student, float32 = None, False
        try:
            forward = student_call("Softmax.forward", case, layer.forward, z.copy())
            float32 = np.asarray(forward).dtype == np.float32
            s_student = _numeric(forward)
        except GradingFailure as exc:
            case += f" [note: forward failed here ({_first_line(exc)}); its own test grades it]"
        tolerance = LARGE_LOGITS_FLOAT32 if is_large and float32 else {}
        s, expected = reference.softmax(z, dy)
        if is_large and s_student is not None and not np.all(np.isfinite(s_student)):
            notes.add(
                " (not graded at large logits where your forward is not finite; "
                "test_softmax_large_logits takes that off)"
            )
            continue
        if (
            s_student is not None
            and s_student.shape == s.shape
            and np.all(np.isfinite(s_student))
            and not matches(s_student, s, **tolerance, float32=float32)
        ):
            # Forward is wrong (softmax_forward charges that): grade backward as the formula
            # applied to the student's own forward output.
            s = s_student
            expected = s * (dy - np.sum(dy * s, axis=-1, keepdims=True))
            notes.add(
                " (your forward differs from torch, so dx was checked against "
                "s * (dy - sum(dy * s)) with your forward's s)"
            )
        dx = student_call("Softmax.backward", case, layer.backward, dy.copy())
        mistakes = {
            SOFTMAX_BACKWARD_OVERFLOW: Symptom(_not_finite) if is_large else None,
            "only the diagonal of the Jacobian, s(1 - s): every output depends on every "
            "input, dz = J^T dy = s * (dy - sum(dy * s, axis=-1, keepdims=True))": (
                dy * s * (1 - s)
            ),
            "sum(dy * s) taken over axis 0; it runs over each row (axis=-1)": (
                s * (dy - np.sum(dy * s, axis=0, keepdims=True))
                if s.ndim >= 2 and s.shape[0] > 1
                else None
            ),
        }
        assert_close(
            dx,
            expected,
            what="Softmax.backward's dz",
            case=case,
            hint=mistakes,
            note=fd_note(
                lambda case=case: student_call("Softmax()", case, Softmax).forward,
                z,
                dy,
                dx,
                "dz",
                expected=expected,
            ),
            float32=float32 or None,
            **tolerance,
        )
        graded += 1
    passed(
        "Softmax backward",
        f"matches torch autograd on {graded} cases, {len(large)} of them with logits of size "
        "1000" + "".join(sorted(notes)),
    )


def softmax_jacobian(softmax_jacobian) -> None:
    """``softmax_jacobian(s)`` = diag(s) - s s^T against torch's Jacobian of softmax."""
    __tracebackhide__ = True
    g = rng("softmax_jacobian")
    logits = [
        ("random, K = 4", g.standard_normal(4)),
        ("one class, K = 1", np.array([0.3])),
        ("two classes", g.standard_normal(2)),
        ("spread logits (tiny probabilities), K = 6", g.standard_normal(6) * 6),
    ]
    for label, z in logits:
        s = reference.softmax(z)[0]
        case = f"{label}: s = softmax(z), s {s.shape}"
        result = call_unchanged("softmax_jacobian", case, softmax_jacobian, s.copy())
        mistakes = {
            "returned diag(s); the Jacobian is diag(s) - s s^T (off-diagonal -s_i s_j)": np.diag(s),
            "only the diagonal s_i (1 - s_i); the off-diagonal entries are -s_i s_j": np.diag(
                s * (1 - s)
            ),
            "sign flipped: J = diag(s) - s s^T": np.outer(s, s) - np.diag(s),
            "missing diag(s): J = diag(s) - s s^T": -np.outer(s, s),
        }
        assert_close(
            result,
            reference.softmax_jacobian(z),
            what="softmax_jacobian(s)",
            case=case,
            hint=mistakes,
        )
    passed("softmax_jacobian", f"matches torch's Jacobian of softmax on {len(logits)} cases")


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def _mse_cases(part: str):
    g = rng(part)
    cases = [
        ("random", (4, 3)),
        ("batch of 1", (1, 5)),
        ("one feature", (6, 1)),
        ("1-D", (7,)),
        ("non-contiguous prediction", (4, 5)),
    ]
    out = []
    for label, shape in cases:
        pred, target = g.standard_normal(shape), g.standard_normal(shape)
        if label.startswith("non-contiguous"):
            pred = non_contiguous(pred)
        out.append((f"{label}: pred and target {shape}", pred, target))
    return out


def mse_forward(MSELoss) -> None:
    """``MSELoss.forward`` against ``F.mse_loss`` (mean over all elements)."""
    __tracebackhide__ = True
    cases = _mse_cases("mse_forward")
    for case, pred, target in cases:
        loss = student_call("MSELoss()", case, MSELoss)
        value = _scalar(
            call_unchanged("MSELoss.forward", case, loss.forward, pred, target),
            "MSELoss.forward",
            case,
        )
        expected = reference.mse_loss(pred, target)[0]
        size = pred.size
        per_sample = size // pred.shape[0]
        how = "MSELoss takes the mean over all N * D elements"
        mistakes = {
            LOSS_SUMMED.format(factor=f"N * D = {size}", how=how): (
                expected * size if size > 1 else None
            ),
            "1/2 * sum of squares (the article's convention): " + how: (
                expected * size / 2 if size > 1 else None
            ),
            f"averaged over the batch only (result {per_sample} times too large): " + how: (
                expected * per_sample if per_sample > 1 else None
            ),
            "an extra factor 1/2: torch's MSELoss is the plain mean of squares": expected / 2,
            "square root taken (RMSE): MSELoss is the mean of squares": np.sqrt(expected),
        }
        assert_close(
            value,
            expected,
            what="MSELoss.forward value",
            case=case,
            hint=mistakes,
            atol=LOSS_ATOL,
        )
    passed("MSELoss forward", f"matches torch on {len(cases)} cases")


def mse_backward(MSELoss) -> None:
    """``MSELoss.backward()`` = 2 (pred - target) / (N * D) against torch autograd."""
    __tracebackhide__ = True
    cases = _mse_cases("mse_backward")
    for case, pred, target in cases:
        loss = student_call("MSELoss()", case, MSELoss)
        note = forward_for_cache("MSELoss", case, loss.forward, pred, target)
        grad = student_call("MSELoss.backward", case + note, loss.backward)
        expected = reference.mse_loss(pred, target)[1]
        diff = pred - target
        mistakes = {
            GRAD_NOT_DIVIDED.format(n=f"the number of elements N * D = {diff.size}"): (
                2 * diff if diff.size > 1 else None
            ),
            "missing the factor 2: d/dp (p - t)^2 = 2 (p - t)": diff / diff.size,
            "sign flipped: the gradient is 2 (pred - target) / (N * D)": -expected,
            "divided by the batch size only: the mean runs over all N * D elements": (
                2 * diff / diff.shape[0] if diff.ndim > 1 and diff.shape[1] > 1 else None
            ),
        }

        def own_forward(loss=loss, target=target):
            return lambda p: loss.forward(p, target)

        assert_close(
            grad,
            expected,
            what="MSELoss.backward() gradient",
            case=case + note,
            hint=mistakes,
            note=fd_note(own_forward, pred, np.ones(()), grad, "gradient"),
        )
    passed("MSELoss backward", f"matches torch autograd on {len(cases)} cases")


def _ce_cases(part: str):
    g = rng(part)
    cases = [
        ("random", (5, 4), False),
        ("batch of 1", (1, 3), False),
        ("two classes", (6, 2), False),
        ("non-contiguous logits", (4, 5), True),
    ]
    out = []
    for label, (n, k), strided in cases:
        logits = g.standard_normal((n, k)) * 2
        target = g.integers(0, k, size=n)
        if strided:
            logits = non_contiguous(logits)
        out.append((f"{label}: logits ({n}, {k}), integer targets ({n},)", logits, target))
    return out


def _ce_value_mistakes(logits, expected) -> dict:
    n = logits.shape[0]
    return {
        LOSS_SUMMED.format(factor=f"N = {n}", how="CrossEntropyLoss averages over the batch"): (
            expected * n if n > 1 else None
        ),
        "sign flipped: the loss is -log softmax(z)[target]": -expected,
        CE_OVERFLOW: Symptom(_not_finite),
    }


def _ce_grad_mistakes(logits, expected) -> dict:
    n = logits.shape[0]
    probs = _np_softmax(logits)
    return {
        GRAD_NOT_DIVIDED.format(n=f"N = {n}, the batch size"): expected * n if n > 1 else None,
        "sign flipped: the gradient is (softmax(z) - onehot(target)) / N": -expected,
        "the one-hot target was not subtracted: (softmax(z) - onehot(target)) / N": any_of(
            probs / n, probs
        ),
        "divided by N * K; only the batch is averaged, the gradient is /N": (
            expected / logits.shape[1]
        ),
        CE_OVERFLOW: Symptom(_not_finite),
    }


def cross_entropy_forward(CrossEntropyLoss) -> None:
    """``CrossEntropyLoss.forward`` against ``F.cross_entropy`` on moderate logits."""
    __tracebackhide__ = True
    cases = _ce_cases("cross_entropy_forward")
    for case, logits, target in cases:
        loss = student_call("CrossEntropyLoss()", case, CrossEntropyLoss)
        value = _scalar(
            call_unchanged("CrossEntropyLoss.forward", case, loss.forward, logits, target),
            "CrossEntropyLoss.forward",
            case,
        )
        expected = reference.cross_entropy(logits, target)[0]
        assert_close(
            value,
            expected,
            what="CrossEntropyLoss.forward value",
            case=case,
            hint=_ce_value_mistakes(logits, expected),
            atol=LOSS_ATOL,
        )
    passed("CrossEntropyLoss forward", f"matches torch on {len(cases)} cases")


def cross_entropy_backward(CrossEntropyLoss) -> None:
    """``CrossEntropyLoss.backward()`` = (softmax - onehot) / N against torch autograd."""
    __tracebackhide__ = True
    cases = _ce_cases("cross_entropy_backward")
    for case, logits, target in cases:
        loss = student_call("CrossEntropyLoss()", case, CrossEntropyLoss)
        note = forward_for_cache("CrossEntropyLoss", case, loss.forward, logits, target)
        grad = student_call("CrossEntropyLoss.backward", case + note, loss.backward)
        expected = reference.cross_entropy(logits, target)[1]

        def own_forward(loss=loss, target=target):
            return lambda z: loss.forward(z, target)

        assert_close(
            grad,
            expected,
            what="CrossEntropyLoss.backward() gradient",
            case=case + note,
            hint=_ce_grad_mistakes(logits, expected),
            note=fd_note(own_forward, logits, np.ones(()), grad, "gradient"),
        )
    passed("CrossEntropyLoss backward", f"matches torch autograd on {len(cases)} cases")


def cross_entropy_large_logits(CrossEntropyLoss) -> None:
    """``CrossEntropyLoss`` forward and backward on logits of size ~1000 (log-sum-exp)."""
    __tracebackhide__ = True
    g = rng("cross_entropy_large_logits")
    notes = set()
    cases = _large_logit_cases("cross_entropy_large_logits")
    cases.append(("batch of 1, target far below the max", np.array([[-1000.0, 1000.0, 0.0]])))
    for label, z in cases:
        target = g.integers(0, z.shape[1], size=z.shape[0])
        if label.startswith(("rows spanning", "batch of 1")):
            target = np.zeros(z.shape[0], dtype=np.int64)  # far below each row's max
        case = f"{label}: logits {z.shape}, targets {target.tolist()}"
        expected_value, expected_grad = reference.cross_entropy(z, target)
        shifted = z - z.max()

        loss = student_call("CrossEntropyLoss()", case, CrossEntropyLoss)
        # Copies: an in-place change of the logits is cross_entropy_forward's to grade.
        value = _scalar(
            student_call("CrossEntropyLoss.forward", case, loss.forward, z.copy(), target.copy()),
            "CrossEntropyLoss.forward",
            case,
        )
        grad = student_call("CrossEntropyLoss.backward", case, loss.backward)
        # The loss comes back as a Python float even when computed in float32: the gradient's
        # dtype tells.
        float32 = np.asarray(value).dtype == np.float32 or (
            isinstance(grad, np.ndarray) and grad.dtype == np.float32
        )

        def own_value(shifted=shifted, target=target, case=case):
            other = student_call("CrossEntropyLoss()", case, CrossEntropyLoss)
            value = student_call("CrossEntropyLoss.forward", case, other.forward, shifted, target)
            return _scalar(value, "CrossEntropyLoss.forward", case)

        def own_grad(shifted=shifted, target=target, case=case):
            other = student_call("CrossEntropyLoss()", case, CrossEntropyLoss)
            student_call("CrossEntropyLoss.forward", case, other.forward, shifted, target)
            return student_call("CrossEntropyLoss.backward", case, other.backward)

        notes.add(
            _stable_or_fail(
                value,
                expected_value,
                _own(own_value),
                what="CrossEntropyLoss.forward value",
                case=case,
                overflow=CE_OVERFLOW,
                float32=float32,
            )
        )
        notes.add(
            _stable_or_fail(
                grad,
                expected_grad,
                _own(own_grad),
                what="CrossEntropyLoss.backward() gradient",
                case=case,
                overflow=CE_OVERFLOW,
                float32=float32,
            )
        )
    passed(
        "CrossEntropyLoss, large logits", f"finite and right on {len(cases)} cases" + "".join(notes)
    )


# ---------------------------------------------------------------------------------------------
# Gradient checking: the student's own numerical_gradient and relative_error
# ---------------------------------------------------------------------------------------------

# The scalar functions numerical_gradient is graded on, by name: the student's function
# calls them, so they live outside grader (grader/checks/fixtures); their autograd
# gradients come from grader.reference.scalar_gradient.
_GRADED_FUNCTIONS = fixtures.load("graded_functions")
_FUNCTIONS = {
    name: callable_by_students(getattr(_GRADED_FUNCTIONS, name))
    for name in _GRADED_FUNCTIONS.__all__
}


def _forward_difference(f, x: np.ndarray, h: float) -> np.ndarray:
    x = np.array(x, dtype=np.float64, copy=True)
    f0, out = f(x), np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        out[index] = (f(x) - f0) / h
        x[index] = old
    return out


def numerical_gradient(numerical_gradient) -> None:
    """The student's ``numerical_gradient(f, x, h=1e-5)`` on functions with known gradients."""
    __tracebackhide__ = True
    g = rng("numerical_gradient")
    cases = [
        ("sum(x**3) at x (5,)", "cube_sum", g.standard_normal(5), None),
        ("sum(sin(x) * x) at a 2-D x (3, 4)", "sin_times_x", g.standard_normal((3, 4)), None),
        ("log(sum(exp(x))) at x (6,)", "log_sum_exp", g.standard_normal(6), None),
        ("one element, sum(x**3) at x (1,)", "cube_sum", g.standard_normal(1), None),
        (
            "sum(sin(x) * x) at a non-contiguous x (3, 4)",
            "sin_times_x",
            non_contiguous(g.standard_normal((3, 4))),
            None,
        ),
        (
            "sum(sin(x) * x) at a transposed x (4, 3), stored column by column",
            "sin_times_x",
            non_contiguous(g.standard_normal((4, 3)), "transposed"),
            None,
        ),
        # (x + h)^3 - (x - h)^3 = 6 x^2 h + 2 h^3 exactly: centred differences with this h
        # give 3 x^2 + h^2, so the value shows whether h is used and the difference centred.
        (
            "sum(x**3) with h=1e-2 (centred differences: 3x^2 + h^2)",
            "cube_sum",
            g.standard_normal(4),
            1e-2,
        ),
    ]
    for case, name, x, h in cases:
        f = _FUNCTIONS[name]
        before = x.copy()
        strided = not x.flags.c_contiguous
        args = (f, x) if h is None else (f, x, h)
        result = student_call(
            "numerical_gradient", case, numerical_gradient, *args, forbid=("cvcourse.gradcheck",)
        )
        moved = np.max(np.abs(x - before)) if x.size else 0.0
        if not np.all(np.isfinite(x)) or moved > 1e-12 * (1 + np.max(np.abs(before))):
            raise GradingFailure(
                f"numerical_gradient changed x (by up to {moved:.3g})\n  case: {case}\n"
                f"  Likely mistake: {NOT_RESTORED}"
            )
        if h is None:
            expected, step, atol, rtol = reference.scalar_gradient(name, before), 1e-5, 1e-7, 1e-6
        else:
            expected, step, atol, rtol = 3 * before**2 + h**2, h, 1e-9, 1e-7
        mistakes = {
            "one-sided difference (f(x + h) - f(x)) / h, error O(h); use centred differences "
            "(f(x + h) - f(x - h)) / (2h), error O(h^2)": near(
                lambda f=f, before=before, step=step: _forward_difference(f, before, step),
                atol=1e-9,
                rtol=1e-7,
            ),
            "divided by h instead of 2h: the two points are 2h apart": near(
                2 * expected, atol=1e-6, rtol=1e-5
            ),
            "divided by 4h (or by 2h twice): the centred difference is / (2h)": near(
                expected / 2, atol=1e-6, rtol=1e-5
            ),
            FLAT_COPY: Symptom(lambda a: np.allclose(a, 0)) if strided else None,
        }
        assert_close(
            result,
            expected,
            what="numerical_gradient(f, x)",
            case=case,
            atol=atol,
            rtol=rtol,
            hint=mistakes,
            reference="torch autograd" if h is None else "the exact centred difference",
        )
    passed("numerical_gradient", f"right on {len(cases)} functions, x left unchanged")


def relative_error(relative_error) -> None:
    """The student's ``relative_error(a, b) = max |a - b| / max(|a|, |b|)`` (0 where both 0)."""
    __tracebackhide__ = True
    g = rng("relative_error")
    a = g.standard_normal((3, 4))
    cases = [
        ("arrays (3,)", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.2, 3.0])),
        ("2-D arrays (3, 4)", a, a + 1e-6 * g.standard_normal((3, 4))),
        ("an element where both are 0", np.array([0.0, 1.0, -2.0]), np.array([0.0, 1.1, -2.0])),
        ("opposite signs", np.array([1e-3]), np.array([-1e-3])),
        ("numbers", np.float64(3.0), np.float64(3.0000003)),
        ("identical arrays with zeros", np.zeros(4), np.zeros(4)),
    ]
    for case, x, y in cases:
        result = student_call(
            "relative_error",
            case,
            relative_error,
            np.array(x, copy=True),
            np.array(y, copy=True),
            forbid=("cvcourse.gradcheck",),
        )
        value = _scalar(result, "relative_error", case)
        expected = reference_relative_error(x, y)
        diff, scale = np.abs(x - y), np.maximum(np.abs(x), np.abs(y))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(scale > 0, diff / np.where(scale > 0, scale, 1), 0.0)
            by_a = np.where(x != 0, diff / np.where(x != 0, np.abs(x), 1), 0.0)
            by_sum = np.where(scale > 0, diff / np.where(scale > 0, np.abs(x) + np.abs(y), 1), 0)
        mistakes = {
            "0 / 0 where both values are 0: count those elements as 0 error": Symptom(
                lambda a: bool(np.isnan(a))
            ),
            "returned the mean; the check reports the largest relative error": (
                np.mean(ratio) if np.size(ratio) > 1 else None
            ),
            RELATIVE_ERROR_FLOAT32: near(
                lambda x=x, y=y: reference_relative_error(
                    np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
                ),
                rtol=1e-4,
            ),
            "divided by |a| + |b|; this course's definition divides by max(|a|, |b|)": np.max(
                by_sum
            ),
            "divided by |a| only; divide by max(|a|, |b|)": np.max(by_a),
        }
        assert_close(
            value,
            expected,
            what="relative_error(a, b)",
            case=case,
            hint=mistakes,
            reference="max |a - b| / max(|a|, |b|)",
        )
    passed("relative_error", f"right on {len(cases)} cases")
