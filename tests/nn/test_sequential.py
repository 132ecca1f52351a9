"""Sequential: torch parity, parameter names, modes, state dicts, pickling and files."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from cvcourse.gradcheck import check_gradients
from cvcourse.nn import (
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    load,
    read_state,
    save,
    state_dict,
)

from .helpers import assert_matches_torch


def normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def small_cnn(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng),
        ReLU(),
        MaxPool2d(2),
        Flatten(),
        Linear(4 * 3 * 4, 5, dtype=dtype, rng=rng),
        Dropout(0.5, rng=rng),
    )


def torch_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 4, 5),
        torch.nn.Dropout(0.5),
    )


def test_sequential_names_parameters_like_torchs_state_dict():
    model = small_cnn()
    assert list(model.params) == list(torch_cnn().state_dict())
    assert model.num_parameters() == sum(p.numel() for p in torch_cnn().parameters())


def test_sequential_in_eval_mode_matches_torch_values_and_all_gradients():
    model = small_cnn(np.float64).eval()
    assert_matches_torch(model, torch_cnn().eval(), normal((3, 1, 6, 8)))


def test_sequential_passes_gradcheck():
    model = Sequential(Linear(5, 4, dtype=np.float64, seed=0), Sigmoid(), Linear(4, 3, seed=1))
    report = check_gradients(model, normal((2, 5)))
    assert report, report


def test_sequential_backward_fills_every_childs_grads_and_returns_dx():
    model = small_cnn().eval()
    x = normal((2, 1, 6, 8)).astype(np.float32)
    loss = CrossEntropyLoss()
    loss.forward(model.forward(x), np.array([0, 3]))
    dx = model.backward(loss.backward())
    assert dx.shape == x.shape
    assert list(model.grads) == list(model.params)
    for name, g in model.grads.items():
        assert g.shape == model.params[name].shape


def test_params_view_reads_and_writes_the_childrens_arrays():
    model = small_cnn()
    model.params["0.bias"] -= 1.0  # in place: reaches the child
    np.testing.assert_array_equal(model[0].params["bias"], model.params["0.bias"])
    replacement = np.zeros((5,), dtype=np.float32)
    model.params["4.bias"] = replacement
    assert model[4].params["bias"] is replacement
    with pytest.raises(KeyError, match="not a parameter"):
        model.params["2.weight"] = replacement
    with pytest.raises(TypeError, match="belong to the child"):
        del model.params["0.bias"]
    assert "4.weight" in model.params and "9.weight" not in model.params


def test_nested_sequential_gets_nested_names():
    model = Sequential(Sequential(Linear(3, 2, seed=0), ReLU()), Linear(2, 1, seed=0))
    assert list(model.params) == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]


def test_indexing_length_iteration_and_slices():
    model = small_cnn()
    assert len(model) == 6 and isinstance(model[1], ReLU) and isinstance(model[-1], Dropout)
    head = model[:2]
    assert isinstance(head, Sequential) and len(head) == 2 and head[0] is model[0]
    assert [type(layer).__name__ for layer in model][:2] == ["Conv2d", "ReLU"]


def test_train_and_eval_reach_every_child_even_nested():
    inner = Dropout(0.5)
    model = Sequential(Linear(2, 2), Sequential(inner))
    assert model.eval() is model
    assert not model.training and not inner.training and not model[0].training
    model.train()
    assert inner.training


def test_repr_lists_layers_with_parameter_counts():
    text = repr(small_cnn())
    assert "(0): Conv2d(1, 4, kernel_size=(3, 3)" in text
    assert "# 40 parameters" in text  # 4*1*3*3 + 4
    assert "(5): Dropout(p=0.5)" in text
    assert text.endswith("# 285 parameters in total")  # 40 + 48*5 + 5


def test_students_own_layers_work_in_a_sequential():
    class Double:  # only forward/backward, no params, no train()
        def forward(self, x):
            return 2 * x

        def backward(self, dy):
            return 2 * dy

    model = Sequential(Double(), Linear(2, 1, dtype=np.float64, seed=0))
    x = normal((3, 2))
    y = model.forward(x)
    np.testing.assert_allclose(y, model[1].forward(2 * x))
    model.backward(np.ones_like(y))
    assert list(model.grads) == ["1.weight", "1.bias"]
    model.eval()


# ---------------------------------------------------------------------------- state dicts


def test_state_dict_round_trip_restores_the_parameters():
    model = small_cnn()
    saved = model.state_dict()
    assert all(saved[k] is not model.params[k] for k in saved)  # copies
    original = {k: v.copy() for k, v in saved.items()}
    for p in model.params.values():
        p += 1.0
    weight = model[0].params["weight"]
    assert model.load_state_dict(saved) is model
    for name, value in original.items():
        np.testing.assert_array_equal(model.params[name], value)
    assert model[0].params["weight"] is weight  # loaded in place: references stay valid


def test_load_state_dict_reports_every_mismatch_and_changes_nothing():
    model = small_cnn()
    before = state_dict(model)
    bad = dict(before)
    bad["4.weight"] = np.zeros((5, 7), dtype=np.float32)
    del bad["0.bias"]
    bad["7.weight"] = np.zeros(3)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(bad)
    message = str(info.value)
    assert "missing parameters: ['0.bias']" in message
    assert "unexpected names (no such parameter): ['7.weight']" in message
    assert "'4.weight' has shape (5, 7) but the parameter is (5, 48)" in message
    for name, value in before.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_load_state_dict_non_strict_loads_the_common_names():
    model = small_cnn()
    model.load_state_dict({"0.bias": np.full(4, 2.0)}, strict=False)
    np.testing.assert_array_equal(model[0].params["bias"], 2.0)
    assert model[0].params["bias"].dtype == np.float32


def test_load_state_dict_rejects_nan():
    model = Sequential(Linear(2, 1))
    with pytest.raises(ValueError, match="'0.bias' contains NaN"):
        model.load_state_dict({"0.weight": np.zeros((1, 2)), "0.bias": np.array([np.nan])})


def test_sequential_survives_a_pickle_round_trip():
    model = small_cnn().eval()
    x = normal((2, 1, 6, 8)).astype(np.float32)
    y = model.forward(x)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.forward(x), y)
    assert list(clone.params) == list(model.params) and not clone[5].training


# ---------------------------------------------------------------------------------- files


def test_save_load_round_trip_through_an_npz_file(tmp_path):
    model = small_cnn(seed=1)
    path = tmp_path / "models" / "cnn.npz"
    model.save(path)
    with np.load(path) as data:  # a plain np.savez archive
        assert sorted(data.files) == sorted(model.params)
    other = small_cnn(seed=2)
    assert other.load(path) is other
    for name, value in model.params.items():
        np.testing.assert_array_equal(other.params[name], value)
    assert os.listdir(path.parent) == ["cnn.npz"]  # no temporary file left behind


def test_save_writes_exactly_the_given_path_and_overwrites(tmp_path):
    path = tmp_path / "weights"
    save(small_cnn(seed=1), path)
    save(small_cnn(seed=2), path)
    assert os.listdir(tmp_path) == ["weights"]
    np.testing.assert_array_equal(
        read_state(path)["0.weight"], small_cnn(seed=2)[0].params["weight"]
    )


def test_loading_into_a_different_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "cnn.npz"
    small_cnn().save(path)
    with pytest.raises(ValueError) as info:
        load(Sequential(Linear(3, 2)), path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot load this state into Sequential (parameters [")
    assert "'0.weight' has shape (4, 1, 3, 3) but the parameter is (2, 3)" in message
    assert "unexpected names (no such parameter): ['4.weight', '4.bias']" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated", "npy"])
def test_loading_a_corrupt_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "cnn.npz"
    model = small_cnn()
    model.save(path)
    if damage == "garbage":
        path.write_bytes(b"this is not a zip archive at all" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    else:
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    before = state_dict(model)
    with pytest.raises(ValueError, match="not a readable state file"):
        model.load(path)
    for name, value in before.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_loading_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        small_cnn().load(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- validation


def test_errors_inside_a_child_name_its_position_and_input_shape():
    model = Sequential(Flatten(), Linear(10, 2))
    with pytest.raises(
        ValueError, match=r"layer \(1\) Linear\.forward\(input of shape \(3, 12\)\).*12 features"
    ):
        model.forward(np.ones((3, 3, 4)))


def test_sequential_backward_before_forward_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="before forward"):
        small_cnn().backward(np.ones((2, 5)))


def test_sequential_rejects_children_without_forward_and_backward():
    with pytest.raises(TypeError, match=r"layer 1 \(int\) has no forward\(\)"):
        Sequential(ReLU(), 3)


def test_gradcheck_leaves_a_float32_sequentials_children_as_they_were():
    model = Sequential(Linear(5, 4, seed=0), Sigmoid(), Linear(4, 3, seed=1))
    assert check_gradients(model, normal((2, 5)))
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}
