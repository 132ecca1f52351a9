"""Optimizers: SGD and Adam match torch.optim step for step, update in place, validate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cvcourse.nn.optim import SGD, Adam

SHAPES = {"weight": (4, 3), "bias": (4,), "scale": ()}


class TinyModel:
    """A model reduced to the layer API's two dicts (no forward needed by an optimizer)."""

    def __init__(self, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        self.grads = {}


def gradient_sequence(steps=5, seed=1):
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)]


def run_against_torch(make_ours, make_torch, steps=5, lr_changes=None):
    """Feed the same gradients to both optimizers; compare the parameters after each step."""
    model = TinyModel()
    tensors = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in model.params.items()}
    ours = make_ours(model)
    theirs = make_torch(list(tensors.values()))
    for i, grads in enumerate(gradient_sequence(steps)):
        if lr_changes and i in lr_changes:
            ours.lr = lr_changes[i]
            for group in theirs.param_groups:
                group["lr"] = lr_changes[i]
        model.grads = {k: g.copy() for k, g in grads.items()}
        for k, t in tensors.items():
            t.grad = torch.from_numpy(grads[k].copy())
        ours.step()
        theirs.step()
        for k, t in tensors.items():
            np.testing.assert_allclose(
                model.params[k],
                t.detach().numpy(),
                rtol=1e-13,
                atol=1e-15,
                err_msg=f"parameter {k!r} after step {i + 1}",
            )


SGD_CASES = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "momentum_dampening": {"momentum": 0.8, "dampening": 0.3},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "weight_decay": {"weight_decay": 0.05},
    "momentum_weight_decay": {"momentum": 0.9, "weight_decay": 0.01},
    "nesterov_weight_decay": {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
}


@pytest.mark.parametrize("kwargs", SGD_CASES.values(), ids=SGD_CASES.keys())
def test_sgd_matches_torch_step_for_step(kwargs):
    run_against_torch(
        lambda model: SGD(model, lr=0.1, **kwargs),
        lambda params: torch.optim.SGD(params, lr=0.1, **kwargs),
    )


def test_sgd_learning_rate_changed_between_steps_matches_torch():
    run_against_torch(
        lambda model: SGD(model, lr=0.1, momentum=0.9),
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
        lr_changes={2: 0.03, 4: 0.5},
    )


ADAM_CASES = {
    "defaults": {},
    "weight_decay": {"weight_decay": 0.1},
    "betas_eps_lr": {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6},
    "small_beta1": {"betas": (0.2, 0.5)},  # torch's lerp takes its other branch
    "zero_betas": {"betas": (0.0, 0.0), "eps": 1e-3},
}


@pytest.mark.parametrize("kwargs", ADAM_CASES.values(), ids=ADAM_CASES.keys())
def test_adam_matches_torch_step_for_step(kwargs):
    run_against_torch(
        lambda model: Adam(model, **kwargs),
        lambda params: torch.optim.Adam(params, **kwargs),
        steps=6,
    )


def test_adam_learning_rate_changed_between_steps_matches_torch():
    run_against_torch(
        lambda model: Adam(model, lr=0.01),
        lambda params: torch.optim.Adam(params, lr=0.01),
        lr_changes={3: 0.002},
    )


@pytest.mark.parametrize(
    "make", [lambda m: SGD(m, lr=0.1, momentum=0.9), lambda m: Adam(m)], ids=["sgd", "adam"]
)
def test_step_updates_the_models_arrays_in_place(make):
    model = TinyModel()
    before = dict(model.params)  # the same array objects
    values = {k: p.copy() for k, p in model.params.items()}
    opt = make(model)
    for grads in gradient_sequence(3):
        model.grads = grads
        opt.step()
    for k, p in model.params.items():
        assert p is before[k], k
        assert not np.array_equal(p, values[k]), f"{k} was not updated"
    assert opt.parameters()["weight"] is model.params["weight"]


@pytest.mark.parametrize(
    "make", [lambda m: SGD(m, lr=0.1, momentum=0.9), lambda m: Adam(m)], ids=["sgd", "adam"]
)
def test_float32_parameters_and_state_stay_float32(make):
    model = TinyModel(dtype=np.float32)
    opt = make(model)
    model.grads = {k: g.astype(np.float32) for k, g in gradient_sequence(1)[0].items()}
    opt.step()
    for k, p in model.params.items():
        assert p.dtype == np.float32, k
        for name, buf in opt.state[k].items():
            if isinstance(buf, np.ndarray):
                assert buf.dtype == np.float32, (k, name)


def test_state_is_kept_per_parameter_key():
    model = TinyModel()
    opt = Adam(model)
    model.grads = gradient_sequence(1)[0]
    opt.step()
    opt.step()
    assert sorted(opt.state) == sorted(SHAPES)
    assert opt.state["weight"]["step"] == 2
    assert opt.state["weight"]["exp_avg"].shape == SHAPES["weight"]
    sgd = SGD(model, lr=0.1, momentum=0.9)
    sgd.step()
    assert sorted(sgd.state["bias"]) == ["momentum_buffer"]


def test_list_of_layers_uses_index_prefixed_keys_and_updates_each_layer():
    a, b = TinyModel(seed=1), TinyModel(seed=2)
    opt = SGD([a, b], lr=0.5)
    assert sorted(opt.parameters()) == sorted(f"{i}.{k}" for i in (0, 1) for k in SHAPES)
    before = a.params["weight"].copy()
    a.grads = {k: np.ones(s) for k, s in SHAPES.items()}
    b.grads = {k: np.zeros(s) for k, s in SHAPES.items()}
    opt.step()
    np.testing.assert_allclose(a.params["weight"], before - 0.5)


def test_sgd_on_a_cvcourse_sequential_matches_torch():
    nn = pytest.importorskip("cvcourse.nn")
    model = nn.Sequential(
        nn.Linear(3, 5, dtype=np.float64, seed=0), nn.ReLU(), nn.Linear(5, 2, dtype=np.float64)
    )
    ref = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    ref = ref.double()
    ref.load_state_dict({k: torch.from_numpy(p.copy()) for k, p in model.params.items()})
    ours = SGD(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    theirs = torch.optim.SGD(
        ref.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3
    )
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((8, 3))
        y = rng.integers(0, 2, 8)
        loss = nn.CrossEntropyLoss()
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        ours.step()
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        theirs.step()
    for k, t in ref.state_dict().items():
        np.testing.assert_allclose(model.params[k], t.numpy(), rtol=1e-12, atol=1e-14, err_msg=k)


# --- zero_grad -----------------------------------------------------------------------------


def test_zero_grad_zeroes_existing_gradients_in_place_and_creates_missing_ones():
    model = TinyModel()
    model.grads = {"weight": np.ones(SHAPES["weight"])}
    weight_grad = model.grads["weight"]
    SGD(model, lr=0.1).zero_grad()
    assert model.grads["weight"] is weight_grad
    assert sorted(model.grads) == sorted(SHAPES)
    for k, g in model.grads.items():
        assert g.shape == SHAPES[k] and not g.any(), k


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lr": 0.0}, ValueError, "lr must be > 0"),
        ({"lr": -1.0}, ValueError, "lr must be > 0"),
        ({"lr": float("nan")}, ValueError, "lr must be finite"),
        ({"lr": True}, TypeError, "lr must be a real number"),
        ({"lr": "0.1"}, TypeError, "lr must be a real number"),
        ({"lr": 0.1, "momentum": -0.1}, ValueError, "momentum must be >= 0"),
        ({"lr": 0.1, "dampening": 1.5}, ValueError, r"dampening must be in \[0, 1\]"),
        ({"lr": 0.1, "weight_decay": -1e-4}, ValueError, "weight_decay must be >= 0"),
        ({"lr": 0.1, "nesterov": True}, ValueError, "Nesterov momentum requires momentum > 0"),
        (
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            ValueError,
            "dampening = 0",
        ),
        ({"lr": 0.1, "nesterov": 1}, TypeError, "nesterov must be True or False"),
    ],
)
def test_sgd_rejects_invalid_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        SGD(TinyModel(), **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lr": 0}, ValueError, "lr must be > 0"),
        ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\] must be in \[0, 1\)"),
        ({"betas": (-0.1, 0.999)}, ValueError, r"betas\[0\] must be in \[0, 1\)"),
        ({"betas": 0.9}, TypeError, "betas must be a pair"),
        ({"betas": (0.9, 0.99, 0.9)}, TypeError, "betas must be a pair"),
        ({"eps": -1e-8}, ValueError, "eps must be >= 0"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay must be >= 0"),
    ],
)
def test_adam_rejects_invalid_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        Adam(TinyModel(), **kwargs)


def test_setting_an_invalid_learning_rate_later_is_rejected():
    opt = SGD(TinyModel(), lr=0.1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        opt.lr = -0.1
    assert opt.lr == 0.1


def test_model_without_params_and_grads_dicts_is_rejected():
    with pytest.raises(TypeError, match="must have `params` and `grads` dicts"):
        SGD(object(), lr=0.1)
    with pytest.raises(TypeError, match="layer 1 of the list"):
        SGD([TinyModel(), object()], lr=0.1)


def test_model_without_parameters_is_rejected():
    model = TinyModel()
    model.params = {}
    with pytest.raises(ValueError, match="no parameters"):
        Adam(model)
    with pytest.raises(ValueError, match="empty list"):
        Adam([])


def test_non_float_or_read_only_parameters_are_rejected():
    model = TinyModel()
    model.params["count"] = np.arange(3)
    with pytest.raises(TypeError, match="'count' must be a float numpy array"):
        SGD(model, lr=0.1)
    model = TinyModel()
    model.params["weight"].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD(model, lr=0.1)


def test_step_before_backward_says_the_gradients_are_missing():
    opt = SGD(TinyModel(), lr=0.1)
    with pytest.raises(ValueError, match=r"no gradient for \['weight', 'bias', 'scale'\]"):
        opt.step()


def test_gradient_keys_and_shapes_must_match_the_parameters():
    model = TinyModel()
    opt = Adam(model)
    model.grads = {k: np.zeros(s) for k, s in SHAPES.items()}
    model.grads["bias"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"'bias' has shape \(5,\) but the parameter has"):
        opt.step()
    model.grads["bias"] = np.zeros(4)
    model.grads["extra"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"not parameters: \['extra'\]"):
        opt.step()
    del model.grads["extra"]
    model.grads["bias"] = [0.0] * 4
    with pytest.raises(TypeError, match="'bias' must be a numpy array"):
        opt.step()


def test_non_finite_gradient_raises_and_leaves_every_parameter_unchanged():
    model = TinyModel()
    values = {k: p.copy() for k, p in model.params.items()}
    opt = SGD(model, lr=0.1, momentum=0.9)
    model.grads = {k: np.ones(s) for k, s in SHAPES.items()}
    model.grads["scale"] = np.array(np.nan)
    with pytest.raises(ValueError, match="'scale' .* NaN/inf"):
        opt.step()
    for k, p in model.params.items():
        np.testing.assert_array_equal(p, values[k])
    assert opt.state == {}


def test_parameter_whose_shape_changed_after_the_first_step_is_rejected():
    model = TinyModel()
    opt = SGD(model, lr=0.1, momentum=0.9)
    model.grads = {k: np.ones(s) for k, s in SHAPES.items()}
    opt.step()
    model.params["bias"] = np.zeros(6)
    model.grads["bias"] = np.zeros(6)
    with pytest.raises(ValueError, match="create a new optimizer"):
        opt.step()


def test_repr_shows_the_hyperparameters():
    assert "momentum=0.9" in repr(SGD(TinyModel(), lr=0.1, momentum=0.9))
    assert repr(Adam(TinyModel())).startswith("Adam(lr=0.001, betas=(0.9, 0.999)")


# --- transfer learning: frozen parameters and learning rates per layer ---------------------


def layered_model(seed=0):
    """A two-"layer" model with Sequential-style keys ("0.weight", "0.bias", "1.weight", ...)."""
    rng = np.random.default_rng(seed)
    shapes = {"0.weight": (4, 3), "0.bias": (4,), "1.weight": (2, 4), "1.bias": (2,)}
    model = TinyModel()
    model.params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    return model


def run_groups_against_torch(make_ours, make_torch, frozen=(), steps=5, lr_changes=None):
    """Same gradients to ours and to a torch optimizer built from parameter groups; frozen
    keys get no gradient at all and must not move."""
    model = layered_model()
    before = {k: p.copy() for k, p in model.params.items()}
    tensors = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in model.params.items()}
    ours = make_ours(model)
    theirs = make_torch(tensors)
    rng = np.random.default_rng(3)
    for i in range(steps):
        if lr_changes and i in lr_changes:
            factor = lr_changes[i] / ours.lr
            ours.lr = lr_changes[i]
            for group in theirs.param_groups:
                group["lr"] *= factor
        grads = {k: rng.standard_normal(p.shape) for k, p in model.params.items()}
        model.grads = {k: g.copy() for k, g in grads.items() if k not in frozen}
        for k, t in tensors.items():
            t.grad = torch.from_numpy(grads[k].copy())
        ours.step()
        theirs.step()
        for k, t in tensors.items():
            np.testing.assert_allclose(
                model.params[k], t.detach().numpy(), rtol=1e-13, atol=1e-15, err_msg=f"{k}, {i}"
            )
    for k in frozen:
        np.testing.assert_array_equal(model.params[k], before[k])
        assert k not in ours.state


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda m, **kw: SGD(m, lr=0.1, momentum=0.9, weight_decay=0.01, **kw), torch.optim.SGD),
        (lambda m, **kw: Adam(m, lr=0.01, **kw), torch.optim.Adam),
    ],
    ids=["sgd", "adam"],
)
def test_frozen_layer_and_scaled_lr_match_torch_parameter_groups(ours, theirs):
    defaults = (
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
        if theirs is torch.optim.SGD
        else {"lr": 0.01}
    )
    lr = defaults["lr"]

    def torch_groups(t):
        # layer 0 frozen (left out, as requires_grad=False parameters); 1.weight at lr * 0.1
        return theirs(
            [{"params": [t["1.weight"]], "lr": lr * 0.1}, {"params": [t["1.bias"]]}], **defaults
        )

    run_groups_against_torch(
        lambda m: ours(m, frozen=["0"], lr_scale={"1.weight": 0.1}),
        torch_groups,
        frozen=("0.weight", "0.bias"),
        lr_changes={3: lr / 4},  # a schedule scales every group alike
    )


def test_longest_name_wins_and_lr_of_reports_each_parameter():
    opt = SGD(layered_model(), lr=0.2, lr_scale={"1": 0.5, "1.bias": 3.0})
    assert opt.lr_of("1.weight") == pytest.approx(0.1)
    assert opt.lr_of("1.bias") == pytest.approx(0.6)
    assert opt.lr_of("0.weight") == pytest.approx(0.2)
    assert opt.lr_scale == {"1.weight": 0.5, "1.bias": 3.0}
    with pytest.raises(KeyError, match="not a parameter key"):
        opt.lr_of("2.weight")


def test_gradual_unfreezing_keeps_going_from_the_frozen_values():
    model = layered_model()
    opt = SGD(model, lr=0.1, frozen=["0"])
    assert opt.frozen == ("0.bias", "0.weight")
    model.grads = {k: np.ones_like(p) for k, p in model.params.items()}
    w0 = model.params["0.weight"].copy()
    opt.step()
    np.testing.assert_array_equal(model.params["0.weight"], w0)
    opt.unfreeze("0.weight")
    opt.step()
    np.testing.assert_allclose(model.params["0.weight"], w0 - 0.1)
    np.testing.assert_array_equal(model.params["0.bias"], layered_model().params["0.bias"])
    opt.freeze("0")
    assert opt.frozen == ("0.bias", "0.weight")
    assert "frozen=['0.bias', '0.weight']" in repr(opt)


def test_frozen_sequential_layer_trains_like_a_head_on_precomputed_features():
    # Freezing the first layers of a network is training the rest on their (fixed) output.
    from cvcourse.nn import CrossEntropyLoss, Linear, ReLU, Sequential, fit

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    body = Linear(5, 8, dtype=np.float64, seed=0)
    net = Sequential(body, ReLU(), Linear(8, 3, dtype=np.float64, seed=1))
    head = Linear(8, 3, dtype=np.float64, seed=1)
    w_body = body.params["weight"].copy()
    batches = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)]
    feature_batches = [(np.maximum(body.forward(a), 0), b) for a, b in batches]
    fit(
        net, CrossEntropyLoss(), Adam(net, lr=0.05, frozen=["0"]), batches, epochs=3, progress=False
    )
    fit(head, CrossEntropyLoss(), Adam(head, lr=0.05), feature_batches, epochs=3, progress=False)
    np.testing.assert_array_equal(body.params["weight"], w_body)
    np.testing.assert_allclose(net[2].params["weight"], head.params["weight"], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"frozen": ["2"]}, ValueError, r"'2' names no parameter; the keys are \['0.weight'"),
        ({"frozen": ["0.w"]}, ValueError, "names no parameter"),  # a prefix stops at a dot
        ({"frozen": [0]}, TypeError, "parameter keys or layer prefixes"),
        ({"frozen": 0}, TypeError, "frozen must be a list"),
        ({"frozen": ["0", "1"]}, ValueError, "would freeze every parameter"),
        ({"lr_scale": {"1": 0.0}}, ValueError, r"must be > 0.*freeze them"),
        ({"lr_scale": {"1": -1}}, ValueError, "must be > 0"),
        ({"lr_scale": {"1": "0.1"}}, TypeError, "must be a real number"),
        ({"lr_scale": {"1": float("nan")}}, ValueError, "must be finite"),
        ({"lr_scale": {"x": 0.1}}, ValueError, "names no parameter"),
        ({"lr_scale": [("1", 0.1)]}, TypeError, "lr_scale must be a dict"),
    ],
)
@pytest.mark.parametrize("make", [SGD, Adam], ids=["sgd", "adam"])
def test_frozen_and_lr_scale_are_validated(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(layered_model(), lr=0.1, **kwargs)


def test_a_single_string_freezes_that_layer_and_missing_frozen_grads_are_fine():
    model = layered_model()
    opt = Adam(model, frozen="1")
    assert opt.frozen == ("1.bias", "1.weight")
    model.grads = {"0.weight": np.ones((4, 3)), "0.bias": np.ones(4)}  # none for layer 1
    opt.step()
    model.grads = {"0.weight": np.ones((4, 3))}
    with pytest.raises(ValueError, match=r"no gradient for \['0.bias'\]"):
        opt.step()
