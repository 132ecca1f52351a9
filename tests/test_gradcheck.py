"""Tests of cvcourse.gradcheck: finite differences, relative error, check_gradients and its report.

torch is used only as an independent referee (torch.autograd.gradcheck); the module under
test must not import it.
"""

import subprocess
import sys

import numpy as np
import pytest

from cvcourse.gradcheck import (
    DEFAULT_THRESHOLDS,
    GradCheckReport,
    TensorCheck,
    check_gradients,
    classify,
    numerical_gradient,
    relative_error,
    relative_errors,
)

torch = pytest.importorskip("torch")


def rng(seed=1):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- layers


class Linear:
    """y = x @ W.T + b with torch's layout: W has shape (out, in), b shape (out,)."""

    def __init__(self, n_in, n_out, seed=0, dtype=np.float64, bug=None):
        g = rng(seed)
        self.params = {
            "weight": g.standard_normal((n_out, n_in)).astype(dtype),
            "bias": g.standard_normal(n_out).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug
        self.cache = None

    def forward(self, x):
        self.cache = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, dy):
        x, w = self.cache, self.params["weight"]
        dw = dy.T @ x
        if self.bug == "transposed_weight":
            dw = dw.T
        db = dy.sum(axis=0)
        if self.bug == "bias_without_batch_sum":
            db = dy
        dx = dy @ w
        if self.bug == "dx_times_2":
            dx = 2 * dx
        self.grads["weight"] = dw
        self.grads["bias"] = db
        return dx


class Sigmoid:
    def __init__(self, bug=None):
        self.params, self.grads, self.bug = {}, {}, bug

    def forward(self, x):
        self.s = 1 / (1 + np.exp(-x))
        return self.s

    def backward(self, dy):
        if self.bug == "missing_term":
            return dy * self.s  # forgot the (1 - s) factor
        return dy * self.s * (1 - self.s)


class ReLU:
    def __init__(self, bug=None):
        self.params, self.grads, self.bug = {}, {}, bug

    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, 0.0)

    def backward(self, dy):
        return dy if self.bug == "no_mask" else dy * self.mask


class Scale:
    """y = x * gamma (per feature); backward optionally returns None for dx."""

    def __init__(self, n, return_dx=True):
        self.params = {"gamma": rng(3).standard_normal(n)}
        self.grads = {}
        self.return_dx = return_dx

    def forward(self, x):
        self.x = x
        return x * self.params["gamma"]

    def backward(self, dy):
        self.grads["gamma"] = (dy * self.x).sum(axis=0)
        return dy * self.params["gamma"] if self.return_dx else None


# ------------------------------------------------------------------ numerical_gradient


def test_numerical_gradient_of_square_is_2x():
    x = rng().standard_normal((3, 4))
    np.testing.assert_allclose(numerical_gradient(lambda v: v**2, x), 2 * x, rtol=1e-7)


def test_numerical_gradient_of_sin_with_upstream_dy_is_cos_times_dy():
    x, dy = rng().standard_normal(7), rng(2).standard_normal(7)
    np.testing.assert_allclose(numerical_gradient(np.sin, x, dy), np.cos(x) * dy, rtol=1e-6)


def test_numerical_gradient_of_matrix_product_wrt_both_factors():
    a, b = rng().standard_normal((3, 4)), rng(2).standard_normal((4, 5))
    dy = rng(3).standard_normal((3, 5))
    np.testing.assert_allclose(numerical_gradient(lambda m: m @ b, a, dy), dy @ b.T, rtol=1e-6)
    np.testing.assert_allclose(numerical_gradient(lambda m: a @ m, b, dy), a.T @ dy, rtol=1e-6)


def test_numerical_gradient_of_scalar_function_uses_dy_one():
    x = rng().standard_normal((2, 3))
    grad = numerical_gradient(lambda v: float(np.sum(v**3)), x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-6)


def test_numerical_gradient_indices_returns_values_at_those_flat_indices():
    x = rng().standard_normal((4, 5))
    values = numerical_gradient(lambda v: v**2, x, indices=[0, 7, 19])
    np.testing.assert_allclose(values, 2 * x.reshape(-1)[[0, 7, 19]], rtol=1e-7)


def test_numerical_gradient_divides_by_the_step_actually_taken_in_float32():
    # x + h rounds to float32 (ulp 6e-5 at 1000): dividing by 2h would be ~3% off.
    x = np.array([1000.1, -3.7], dtype=np.float32)
    grad = numerical_gradient(lambda v: v.astype(np.float64) * 3.0, x, h=1e-3)
    np.testing.assert_allclose(grad, [3.0, 3.0], rtol=1e-12)


def test_numerical_gradient_works_on_a_non_contiguous_view():
    base = rng().standard_normal((4, 6))
    view = base[:, ::2]
    np.testing.assert_allclose(numerical_gradient(lambda v: v**2, view), 2 * view, rtol=1e-7)


def _tricky_x():
    # -0.0 and a subnormal: equality would not notice if these came back as 0.0 / rounded.
    return np.array([[1.5, -0.0, 5e-324], [np.pi, -2.25, 123.456]])


def test_numerical_gradient_restores_x_bitwise():
    x = _tricky_x()
    before = x.tobytes()
    numerical_gradient(lambda v: v * 2, x)
    assert x.tobytes() == before


def test_numerical_gradient_restores_x_bitwise_when_f_raises_midway():
    x = _tricky_x()
    before = x.tobytes()
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) == 6:  # mid-perturbation of the third element
            raise RuntimeError("boom")
        return v * 2

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    assert x.tobytes() == before


def test_numerical_gradient_rejects_f_that_modifies_x_and_restores_it():
    x = rng().standard_normal(4)
    before = x.copy()

    def f(v):
        v[0] = 0.0
        return v

    with pytest.raises(ValueError, match="modified its argument x"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------------ relative_error


def test_relative_error_hand_worked_examples():
    # |3 - 4| / max(3, 4) = 1/4
    assert relative_error(np.array([3.0]), np.array([4.0])) == pytest.approx(0.25)
    # elements: 0.1/1.1, 0/0 -> 0, |2 - (-2)| / 2 = 2  -> max 2
    a, b = np.array([1.0, 0.0, 2.0]), np.array([1.1, 0.0, -2.0])
    np.testing.assert_allclose(relative_errors(a, b), [0.1 / 1.1, 0.0, 2.0])
    assert relative_error(a, b) == pytest.approx(2.0)


def test_relative_error_both_zero_is_zero_and_one_zero_is_one():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([0.0]), np.array([1e-20])) == 1.0


def test_relative_error_floor_compares_tiny_values_in_absolute_terms():
    # |1e-8 - 2e-8| / max(1e-8, 2e-8, 1e-3) = 1e-5
    assert relative_error(np.array([1e-8]), np.array([2e-8]), floor=1e-3) == pytest.approx(1e-5)


def test_relative_error_nan_is_nan_and_empty_is_zero():
    assert np.isnan(relative_error(np.array([1.0, np.nan]), np.array([1.0, 1.0])))
    assert relative_error(np.empty(0), np.empty(0)) == 0.0


def test_relative_error_validates_shapes_and_floor():
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        relative_error(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="floor"):
        relative_errors(np.zeros(3), np.zeros(3), floor=-1.0)
    with pytest.raises(TypeError, match="a must be"):
        relative_error(np.array(["x"]), np.zeros(1))


def test_classify_follows_the_cs231n_thresholds():
    assert [classify(e) for e in (1e-9, 1e-6, 1e-3, 0.5, float("nan"))] == [
        "good",
        "ok",
        "suspicious",
        "wrong",
        "wrong",
    ]
    assert DEFAULT_THRESHOLDS == (1e-7, 1e-4, 1e-2)


# ------------------------------------------------------------- check_gradients: passes


def test_correct_linear_layer_passes_with_every_tensor_checked():
    report = check_gradients(Linear(5, 3), rng().standard_normal((4, 5)))
    assert report.passed and bool(report)
    assert report.names == ["x", "weight", "bias"]
    for t in report:
        assert t.status in ("good", "ok") and t.n_checked == t.n_total
    assert report["weight"].shape == (3, 5) and report["bias"].shape == (3,)
    assert report["weight"].max_error < 1e-6


def test_correct_sigmoid_passes():
    report = check_gradients(Sigmoid(), rng().standard_normal((3, 4)))
    assert report.passed and report.names == ["x"]


def test_function_with_grad_fn_passes_for_two_inputs():
    a, b = rng().standard_normal((3, 4)), rng(2).standard_normal((4, 2))
    report = check_gradients(
        lambda p, q: np.tanh(p @ q),
        a,
        b,
        grad_fn=lambda dy, p, q: (
            (dy * (1 - np.tanh(p @ q) ** 2)) @ q.T,
            p.T @ (dy * (1 - np.tanh(p @ q) ** 2)),
        ),
        names=["a", "b"],
    )
    assert report.passed and report.names == ["a", "b"]


def test_scalar_loss_function_gets_dy_one_and_passes():
    scores, labels = rng().standard_normal((4, 3)), np.array([0, 2, 1, 2])

    def loss(s):
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return -np.log(p[np.arange(4), labels]).mean()

    def grad(dy, s):
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(4), labels] -= 1
        return dy * p / 4

    seen = []
    report = check_gradients(loss, scores, grad_fn=lambda dy, s: (seen.append(dy), grad(dy, s))[1])
    assert report.passed and seen == [1.0]


def test_a_forward_that_returns_nan_or_inf_is_refused_with_what_to_look_for():
    """An unstable loss (log of a softmax that underflows to 0) gives inf at the original
    input: the check says so and how many outputs, instead of an error about its floor."""

    def naive_log(s):
        with np.errstate(divide="ignore"):  # the log of 0 is the point here
            return np.log(np.exp(s) / np.exp(s).sum(1, keepdims=True))

    scores = np.array([[0.0, -1000.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"NaN or inf in 1 of 4 outputs.*log of 0"):
        check_gradients(naive_log, scores, grad_fn=lambda dy, s: dy)


def test_layer_with_two_inputs_returns_a_tuple_from_backward():
    class Mul:
        params, grads = {}, {}

        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, dy):
            return dy * self.b, dy * self.a

    x = rng().standard_normal((2, 3))
    report = check_gradients(Mul(), x, rng(2).standard_normal((2, 3)))
    assert report.passed and report.names == ["x0", "x1"]


# -------------------------------------------------------------- check_gradients: fails


def test_transposed_weight_gradient_fails_and_names_the_weight():
    # Square W, so that the transposed gradient has the right shape.
    report = check_gradients(Linear(4, 4, bug="transposed_weight"), rng().standard_normal((3, 4)))
    assert not report.passed and not bool(report)
    assert [t.name for t in report.failures] == ["weight"]
    assert report["weight"].status == "wrong"
    assert report["x"].passed and report["bias"].passed
    assert "transpose" in report["weight"].hint


def test_sigmoid_missing_a_term_in_dx_fails_on_x():
    report = check_gradients(Sigmoid(bug="missing_term"), rng().standard_normal((3, 4)))
    assert [t.name for t in report.failures] == ["x"]
    assert report["x"].status == "wrong"


def test_dx_off_by_factor_two_fails_on_x_and_says_factor():
    report = check_gradients(Linear(5, 3, bug="dx_times_2"), rng().standard_normal((4, 5)))
    assert [t.name for t in report.failures] == ["x"]
    assert report["x"].max_error == pytest.approx(0.5, rel=1e-6)
    assert "2 x numerical" in report["x"].hint


def test_bias_gradient_without_the_batch_sum_is_a_shape_error_naming_bias():
    with pytest.raises(ValueError, match=r"grads\['bias'\] has shape \(4, 3\).*\(3,\)"):
        check_gradients(Linear(5, 3, bug="bias_without_batch_sum"), rng().standard_normal((4, 5)))


def test_wrong_grad_fn_fails():
    report = check_gradients(
        np.sin, rng().standard_normal(5), grad_fn=lambda dy, x: -dy * np.cos(x)
    )
    assert not report.passed and report["x"].status == "wrong"
    assert "-1 x numerical" in report["x"].hint


def test_assert_passed_raises_with_the_table():
    report = check_gradients(Sigmoid(bug="missing_term"), rng().standard_normal(4))
    with pytest.raises(AssertionError, match="wrong"):
        report.assert_passed()
    check_gradients(Sigmoid(), rng().standard_normal(4)).assert_passed()


# --------------------------------------------------------- agreement with torch gradcheck


def _torch_function(forward, backward):
    """A custom autograd.Function computing forward/backward with NumPy."""

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.from_numpy(forward(x.detach().numpy()))

        @staticmethod
        def backward(ctx, dy):
            (x,) = ctx.saved_tensors
            return torch.from_numpy(backward(dy.numpy(), x.detach().numpy()))

    return Fn


def _ours_via_torch(fn, x):
    """check_gradients on the very same autograd.Function: its backward is the grad_fn."""

    def f(v):
        return fn.apply(torch.from_numpy(v)).numpy()

    def grad_fn(dy, v):
        t = torch.from_numpy(v).requires_grad_()
        fn.apply(t).backward(torch.from_numpy(np.asarray(dy)))
        return t.grad.numpy()

    return check_gradients(f, x, grad_fn=grad_fn)


CASES = {
    "sigmoid": (
        lambda x: 1 / (1 + np.exp(-x)),
        lambda dy, x: dy * np.exp(-x) / (1 + np.exp(-x)) ** 2,
    ),
    "x_sin_x": (lambda x: x * np.sin(x), lambda dy, x: dy * (np.sin(x) + x * np.cos(x))),
    "softplus": (lambda x: np.log1p(np.exp(x)), lambda dy, x: dy / (1 + np.exp(-x))),
    "row_softmax": (
        lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True),
        lambda dy, x: (
            (s := np.exp(x) / np.exp(x).sum(-1, keepdims=True))
            * (dy - (dy * s).sum(-1, keepdims=True))
        ),
    ),
}
WRONG = {
    "sigmoid": lambda dy, x: dy * np.exp(-x) / (1 + np.exp(-x)),  # missing a square
    "x_sin_x": lambda dy, x: dy * x * np.cos(x),  # missing the product rule's first term
    "softplus": lambda dy, x: 2 * dy / (1 + np.exp(-x)),  # factor 2
    "row_softmax": lambda dy, x: dy * np.exp(x) / np.exp(x).sum(-1, keepdims=True),  # no Jacobian
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_agrees_with_torch_gradcheck_on_correct_backward(name):
    forward, backward = CASES[name]
    fn = _torch_function(forward, backward)
    x = rng().standard_normal((3, 4))
    assert torch.autograd.gradcheck(fn.apply, (torch.from_numpy(x.copy()).requires_grad_(),))
    assert _ours_via_torch(fn, x).passed


@pytest.mark.parametrize("name", sorted(CASES))
def test_agrees_with_torch_gradcheck_on_wrong_backward(name):
    fn = _torch_function(CASES[name][0], WRONG[name])
    x = rng().standard_normal((3, 4))
    t = torch.from_numpy(x.copy()).requires_grad_()
    assert not torch.autograd.gradcheck(fn.apply, (t,), raise_exception=False)
    report = _ours_via_torch(fn, x)
    assert not report.passed and report["x"].status == "wrong"


# ------------------------------------------------------------- the layer is left alone


def test_layer_is_left_unmodified_after_a_check():
    layer = Linear(4, 3)
    layer.forward(rng(9).standard_normal((2, 4)))
    weight, bias = layer.params["weight"], layer.params["bias"]
    saved = {k: v.copy() for k, v in layer.params.items()}
    grads_before = {k: v.copy() for k, v in layer.grads.items()}
    cache_before = layer.cache
    assert check_gradients(layer, rng().standard_normal((5, 4))).passed
    assert layer.params["weight"] is weight and layer.params["bias"] is bias
    for k in saved:
        assert layer.params[k].tobytes() == saved[k].tobytes()
        assert layer.params[k].dtype == np.float64
        np.testing.assert_array_equal(layer.grads[k], grads_before[k])
    assert layer.cache is cache_before


def test_float32_layer_is_checked_in_float64_and_keeps_its_float32_params():
    layer = Linear(4, 3, dtype=np.float32)
    seen = []
    original_forward = layer.forward
    layer.forward = lambda x: (
        seen.append((x.dtype, layer.params["weight"].dtype)),
        original_forward(x),
    )[1]
    weight = layer.params["weight"]
    saved = weight.copy()
    report = check_gradients(layer, rng().standard_normal((2, 4)).astype(np.float32))
    assert report.passed
    assert report["weight"].max_error < 1e-6  # float32 finite differences would give ~1e-3
    assert set(seen) == {(np.dtype(np.float64), np.dtype(np.float64))}
    assert report["weight"].dtype == "float32" and report["x"].dtype == "float32"
    assert any("float64" in note for note in report.notes)
    assert layer.params["weight"] is weight and weight.dtype == np.float32
    assert weight.tobytes() == saved.tobytes()


def test_layer_state_changed_by_forward_is_restored():
    class RunningMean:
        def __init__(self):
            self.params, self.grads = {}, {}
            self.running = np.zeros(3)
            self.calls = 0

        def forward(self, x):
            self.running *= 0.9  # in place, like batch-norm statistics
            self.running += 0.1 * x.mean(0)
            self.calls += 1
            return x * 2

        def backward(self, dy):
            return 2 * dy

    layer = RunningMean()
    running = layer.running
    assert check_gradients(layer, rng().standard_normal((2, 3))).passed
    assert layer.calls == 0 and layer.running is running and not running.any()


def test_layer_is_restored_when_backward_raises():
    layer = Linear(3, 2)
    saved = layer.params["weight"].copy()

    def backward(dy):
        layer.params["weight"] += 1
        raise RuntimeError("broken backward")

    layer.backward = backward
    with pytest.raises(RuntimeError, match="broken backward"):
        check_gradients(layer, rng().standard_normal((2, 3)))
    assert layer.params["weight"].tobytes() == saved.tobytes()


def test_user_inputs_are_not_modified():
    x = rng().standard_normal((3, 5))
    before = x.tobytes()
    check_gradients(Linear(5, 2), x)
    assert x.tobytes() == before


def test_layer_that_reads_an_alias_of_its_float64_params_still_works():
    class Aliased(Linear):
        def forward(self, x):
            self.cache = x
            return x @ self.w.T + self.params["bias"]

    layer = Aliased(3, 2)
    layer.w = layer.params["weight"]  # the same array: in-place perturbation reaches it
    assert check_gradients(layer, rng().standard_normal((2, 3))).passed


def test_float32_layer_reading_a_private_copy_gets_a_hint():
    class Copied(Linear):
        def forward(self, x):
            self.cache = x
            return x @ self.w.T + self.params["bias"]

    layer = Copied(3, 2, dtype=np.float32)
    layer.w = layer.params["weight"]  # swapped for a float64 copy during the check
    report = check_gradients(layer, rng().standard_normal((2, 3)))
    assert [t.name for t in report.failures] == ["weight"]
    assert "does forward read self.params['weight']" in report["weight"].hint


# -------------------------------------------------------------- None dx, no params


def test_backward_returning_none_skips_x_and_still_checks_params():
    report = check_gradients(Scale(4, return_dx=False), rng().standard_normal((3, 4)))
    assert report["x"].status == "skipped" and report["x"].n_checked == 0
    assert report["gamma"].passed and report.passed


def test_layer_without_params_returning_none_checks_nothing_and_fails():
    class Nothing:
        params, grads = {}, {}

        def forward(self, x):
            return x

        def backward(self, dy):
            return None

    report = check_gradients(Nothing(), rng().standard_normal(3))
    assert not report.passed and "nothing was checked" in repr(report)


# ------------------------------------------------------------------------------- kinks


def _relu_input():
    x = rng().standard_normal((4, 5))
    x[0, :3] = 0.0  # exactly at the kink
    x[1, 1] = 3e-7  # within h of it
    return x


def test_relu_elements_at_the_kink_are_marked_kink_and_excused():
    report = check_gradients(ReLU(), _relu_input())
    t = report["x"]
    assert report.passed
    assert t.n_kinks == 4
    kink_elements = {tuple(np.unravel_index(i, t.shape)) for i in t.indices[t.kinks]}
    assert kink_elements == {(0, 0), (0, 1), (0, 2), (1, 1)}
    assert list(t.element_statuses()).count("kink") == 4


def test_without_kink_detection_the_same_relu_fails():
    report = check_gradients(ReLU(), _relu_input(), detect_kinks=False)
    assert not report.passed and report["x"].n_kinks == 0


def test_kink_detection_does_not_excuse_a_wrong_relu_backward():
    report = check_gradients(ReLU(bug="no_mask"), _relu_input())
    assert report["x"].status == "wrong"


def test_smooth_wrong_gradient_is_never_marked_kink():
    report = check_gradients(Sigmoid(bug="missing_term"), rng().standard_normal((3, 4)))
    assert report["x"].n_kinks == 0


def test_input_entirely_at_kinks_is_reported_as_kink_and_not_passed():
    report = check_gradients(ReLU(), np.zeros((2, 3)))
    assert report["x"].status == "kink" and not report.passed
    assert "kink" in report["x"].hint


# ---------------------------------------------------------------------------- sampling


class Counting(Sigmoid):
    """Reports forward calls to a callback: the check restores the layer's own attributes
    (lists and arrays included), so a counter kept on the layer would read 0 afterwards."""

    def __init__(self, tick):
        super().__init__()
        self.tick = tick

    def forward(self, x):
        self.tick()
        return super().forward(x)


def test_large_tensor_is_sampled_to_max_samples_including_the_largest_gradient():
    x = rng().standard_normal((50, 60))
    report = check_gradients(Sigmoid(), x, max_samples=25, seed=3)
    t = report["x"]
    assert (t.n_checked, t.n_total) == (25, 3000)
    assert len(np.unique(t.indices)) == 25 and t.indices.max() < 3000
    s = 1 / (1 + np.exp(-x))
    dy = np.random.default_rng(3).standard_normal(x.shape)
    assert int(np.argmax(np.abs(dy * s * (1 - s)))) in t.indices
    assert report.passed


def test_sampling_is_deterministic_for_a_seed():
    x = rng().standard_normal((40, 40))
    first = check_gradients(Sigmoid(), x, max_samples=20, seed=7)["x"]
    second = check_gradients(Sigmoid(), x, max_samples=20, seed=7)["x"]
    other = check_gradients(Sigmoid(), x, max_samples=20, seed=8)["x"]
    np.testing.assert_array_equal(first.indices, second.indices)
    np.testing.assert_array_equal(first.errors, second.errors)
    assert not np.array_equal(first.indices, other.indices)


def test_forward_calls_stay_bounded_by_the_samples():
    calls = []
    check_gradients(
        Counting(lambda: calls.append(1)), rng().standard_normal((100, 100)), max_samples=10
    )
    # Two for the determinism check, one for L(x), two per sampled element (no failures).
    assert len(calls) == 3 + 2 * 10


def test_max_samples_none_checks_every_element():
    t = check_gradients(Sigmoid(), rng().standard_normal((20, 20)), max_samples=None)["x"]
    assert t.n_checked == t.n_total == 400


def test_error_map_has_the_tensor_shape_with_nan_where_not_sampled():
    t = check_gradients(Sigmoid(), rng().standard_normal((10, 10)), max_samples=15)["x"]
    m = t.error_map()
    assert m.shape == (10, 10)
    assert np.isfinite(m).sum() == 15
    np.testing.assert_array_equal(m.reshape(-1)[t.indices], t.errors)
    assert t.errors.shape == t.analytic.shape == t.numerical.shape == t.kinks.shape == (15,)


# ------------------------------------------------------------------------------ report


def test_repr_is_a_table_with_names_and_statuses():
    report = check_gradients(Linear(4, 4, bug="transposed_weight"), rng().standard_normal((3, 4)))
    text = repr(report)
    assert text.startswith("Gradient check FAILED (weight wrong)")
    lines = text.splitlines()
    assert lines[1].split()[0] == "tensor"
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert rows["x"].rstrip().endswith("good") or rows["x"].rstrip().endswith("ok")
    assert rows["weight"].rstrip().endswith("wrong")
    assert str(report["weight"].worst_index) in rows["weight"]
    assert "transpose" in text


def test_repr_html_has_names_statuses_colours_and_escapes():
    report = check_gradients(
        np.sin, rng().standard_normal(3), grad_fn=lambda dy, x: dy * np.cos(x), names=["<x&y>"]
    )
    out = report._repr_html_()
    assert "<table" in out and "&lt;x&amp;y&gt;" in out and "<x&y>" not in out
    assert "gradcheck-good" in out or "gradcheck-ok" in out
    bad = check_gradients(Sigmoid(bug="missing_term"), rng().standard_normal(3))._repr_html_()
    assert "gradcheck-wrong" in bad and "#f8d7da" in bad and "FAILED" in bad


def test_report_lookup_and_iteration():
    report = check_gradients(Linear(2, 2), rng().standard_normal((1, 2)))
    assert isinstance(report, GradCheckReport) and len(report) == 3
    assert report["bias"].name == "bias"
    with pytest.raises(KeyError, match="no tensor named 'gamma'"):
        report["gamma"]
    worst = report["weight"]
    assert isinstance(worst.worst_index, tuple) and len(worst.worst_index) == 2


# -------------------------------------------------------------------------- validation


def test_numerical_gradient_validates_its_arguments():
    x = rng().standard_normal(3)
    with pytest.raises(TypeError, match="f must be callable"):
        numerical_gradient(None, x)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        numerical_gradient(np.sin, [1.0, 2.0])
    with pytest.raises(TypeError, match="floating dtype.*int64"):
        numerical_gradient(np.sin, np.arange(3))
    with pytest.raises(ValueError, match="h must be positive"):
        numerical_gradient(np.sin, x, h=0.0)
    with pytest.raises(TypeError, match="h must be"):
        numerical_gradient(np.sin, x, h="1e-6")
    with pytest.raises(ValueError, match=r"dy has shape \(4,\).*f\(x\) has shape \(3,\)"):
        numerical_gradient(np.sin, x, dy=np.ones(4))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\)"):
        numerical_gradient(np.sin, x, indices=[5])
    readonly = x.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        numerical_gradient(np.sin, readonly)


def test_numerical_gradient_rejects_f_whose_shape_changes():
    def f(v):
        return v if v[0] == 0.5 else v[:2]

    with pytest.raises(ValueError, match=r"returned shape \(2,\).*\(3,\)"):
        numerical_gradient(f, np.array([0.5, 1.0, 2.0]))


def test_check_gradients_validates_inputs_and_options():
    x = rng().standard_normal((2, 3))
    with pytest.raises(TypeError, match="at least one input"):
        check_gradients(Sigmoid())
    with pytest.raises(TypeError, match="x must be a numpy array"):
        check_gradients(Sigmoid(), [[1.0, 2.0]])
    with pytest.raises(TypeError, match="floating dtype"):
        check_gradients(Sigmoid(), np.arange(3))
    with pytest.raises(ValueError, match="h must be positive"):
        check_gradients(Sigmoid(), x, h=-1e-6)
    with pytest.raises(ValueError, match="max_samples"):
        check_gradients(Sigmoid(), x, max_samples=0)
    with pytest.raises(ValueError, match="thresholds"):
        check_gradients(Sigmoid(), x, thresholds=(1e-2, 1e-4, 1e-7))
    with pytest.raises(ValueError, match=r"dy has shape \(3, 2\).*\(2, 3\)"):
        check_gradients(Sigmoid(), x, dy=np.ones((3, 2)))
    with pytest.raises(TypeError, match="needs grad_fn"):
        check_gradients(np.sin, x)
    with pytest.raises(TypeError, match="grad_fn is only for functions"):
        check_gradients(Sigmoid(), x, grad_fn=lambda dy, v: dy)
    with pytest.raises(TypeError, match="expects a Layer"):
        check_gradients(42, x)
    with pytest.raises(ValueError, match=r"grad_fn returned a gradient of shape \(3,\) for x"):
        check_gradients(np.sin, x, grad_fn=lambda dy, v: np.ones(3))


def test_check_gradients_validates_the_layer_api():
    class NoGrads:
        params = {}

        def forward(self, x):
            return x

        def backward(self, dy):
            return dy

    with pytest.raises(TypeError, match="NoGrads has no grads"):
        check_gradients(NoGrads(), rng().standard_normal(3))

    class IntParam(Scale):
        pass

    layer = IntParam(3)
    layer.params["gamma"] = np.arange(3)
    with pytest.raises(TypeError, match=r"layer.params\['gamma'\].*int64"):
        check_gradients(layer, rng().standard_normal((2, 3)))


def test_check_gradients_reports_missing_or_misshapen_grads_and_dx():
    class Forgetful(Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            del self.grads["bias"]
            return dx

    with pytest.raises(ValueError, match="no entry 'bias'"):
        check_gradients(Forgetful(3, 2), rng().standard_normal((2, 3)))

    class BadDx(Linear):
        def backward(self, dy):
            super().backward(dy)
            return dy

    with pytest.raises(ValueError, match=r"shape \(2, 2\) for x, which has shape \(2, 3\)"):
        check_gradients(BadDx(3, 2), rng().standard_normal((2, 3)))


def test_check_gradients_rejects_random_forward_and_in_place_forward():
    class Dropout:
        params, grads = {}, {}

        def forward(self, x):
            self.mask = np.random.default_rng().random(x.shape) > 0.5
            return x * self.mask

        def backward(self, dy):
            return dy * self.mask

    with pytest.raises(ValueError, match="not deterministic"):
        check_gradients(Dropout(), rng().standard_normal((4, 4)))

    class InPlaceReLU(ReLU):
        def forward(self, x):
            self.mask = x > 0
            x[~self.mask] = 0
            return x

    x = rng().standard_normal((3, 3))
    before = x.copy()
    with pytest.raises(ValueError, match="modified its input x in place"):
        check_gradients(InPlaceReLU(), x)
    np.testing.assert_array_equal(x, before)


def test_importing_gradcheck_does_not_import_torch_or_the_report_libraries():
    # jinja2 and tabulate are imported when a report is first shown, not on import.
    code = (
        "import sys, cvcourse.gradcheck; "
        "sys.exit(sorted({'torch', 'jinja2', 'tabulate'} & set(sys.modules)) or 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_tensor_check_is_built_by_keyword_only():
    t = check_gradients(Sigmoid(), rng().standard_normal(3))["x"]
    fields = {name: getattr(t, name) for name in t.__dataclass_fields__}
    assert TensorCheck(**fields).status == t.status
    with pytest.raises(TypeError):
        TensorCheck(*fields.values())
