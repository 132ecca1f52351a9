"""MSELoss and CrossEntropyLoss against torch, finite differences, stability and checks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvcourse.gradcheck import check_gradients
from cvcourse.nn import CrossEntropyLoss, MSELoss, MultiMarginLoss, log_softmax, softmax


def normal(shape, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def labels(n, classes, seed=0):
    return np.random.default_rng(seed).integers(0, classes, size=n)


def torch_loss_and_grad(fn, prediction, *args):
    pt = torch.from_numpy(prediction.copy()).requires_grad_(True)
    loss = fn(pt, *args)
    loss.backward()
    return loss.item(), pt.grad.numpy()


# ------------------------------------------------------------------------- CrossEntropy


@pytest.mark.parametrize("n, classes", [(1, 1), (1, 5), (7, 3), (16, 10)])
def test_cross_entropy_matches_torch_value_and_gradient(n, classes):
    logits, target = normal((n, classes), seed=n, scale=3.0), labels(n, classes, seed=classes)
    loss = CrossEntropyLoss()
    value = loss.forward(logits, target)
    grad = loss.backward()
    ref, ref_grad = torch_loss_and_grad(F.cross_entropy, logits, torch.from_numpy(target))
    assert isinstance(value, float)
    assert value == pytest.approx(ref, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4], [5e3, 5e3 + 1, -1e4]], dtype=dtype)
    target = np.array([1, 2, 0])
    loss = CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(logits, target)
        grad = loss.backward()
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert grad.dtype == dtype
    ref, ref_grad = torch_loss_and_grad(F.cross_entropy, logits, torch.from_numpy(target))
    assert value == pytest.approx(ref, rel=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits, target = normal((4, 3)), np.array([0, 2, 1, 2])
    loss = CrossEntropyLoss()
    loss.forward(logits, target)
    expected = (softmax(logits) - np.eye(3)[target]) / 4
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-12)
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * expected, rtol=1e-12)


def test_cross_entropy_passes_gradcheck():
    target = labels(5, 4)
    loss = CrossEntropyLoss()

    def grad_fn(dloss, logits):
        loss.forward(logits, target)
        return loss.backward(dloss)

    report = check_gradients(lambda s: loss.forward(s, target), normal((5, 4)), grad_fn=grad_fn)
    assert report, report


def test_log_softmax_and_softmax_match_torch_and_are_stable():
    x = np.array([[1e4, -1e4, 3.0], [0.1, 0.2, 0.3]])
    ref = torch.log_softmax(torch.from_numpy(x), dim=1).numpy()
    np.testing.assert_allclose(log_softmax(x), ref, rtol=1e-12)
    np.testing.assert_allclose(softmax(x).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "logits, target, error, match",
    [
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), TypeError, "integer class indices"),
        (np.zeros((3, 4)), np.array([0, 4, 1]), ValueError, r"outside \[0, 4\).*\[4\]"),
        (np.zeros((3, 4)), np.array([0, -1, 1]), ValueError, r"outside \[0, 4\)"),
        (np.zeros((3, 4)), np.array([0, 1]), ValueError, r"shape \(2,\).*\(3,\)"),
        (np.zeros(4), np.array([0]), ValueError, r"logits must be 2-D \(N, C\)"),
        (np.zeros((3, 4), dtype=np.int64), np.array([0, 1, 2]), TypeError, "float32 or float64"),
        (np.zeros((0, 4)), np.zeros(0, dtype=int), ValueError, "empty"),
    ],
)
def test_cross_entropy_rejects_bad_arguments(logits, target, error, match):
    with pytest.raises(error, match=match):
        CrossEntropyLoss().forward(logits, target)


# ------------------------------------------------------------------------------------ MSE


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 4, 4), (1, 1)])
def test_mse_matches_torch_value_and_gradient(shape):
    prediction, target = normal(shape, seed=1), normal(shape, seed=2)
    loss = MSELoss()
    value = loss.forward(prediction, target)
    grad = loss.backward()
    ref, ref_grad = torch_loss_and_grad(F.mse_loss, prediction, torch.from_numpy(target))
    assert value == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12)


def test_mse_passes_gradcheck():
    target = normal((3, 4), seed=9)
    loss = MSELoss()

    def grad_fn(dloss, prediction):
        loss.forward(prediction, target)
        return loss.backward(dloss)

    report = check_gradients(lambda p: loss.forward(p, target), normal((3, 4)), grad_fn=grad_fn)
    assert report, report


def test_mse_rejects_a_target_of_another_shape():
    with pytest.raises(ValueError, match=r"target has shape \(3, 1\).*\(3,\)"):
        MSELoss().forward(np.zeros(3), np.zeros((3, 1)))


# --------------------------------------------------------------------------------- common


@pytest.mark.parametrize("loss", [MSELoss(), CrossEntropyLoss()], ids=repr)
def test_loss_backward_before_forward_is_a_runtime_error(loss):
    with pytest.raises(RuntimeError, match="before forward"):
        pickle.loads(pickle.dumps(loss)).backward()


def test_loss_backward_rejects_a_non_scalar_dloss():
    loss = MSELoss()
    loss.forward(np.zeros(3), np.ones(3))
    with pytest.raises(TypeError, match="dloss must be a real number"):
        loss.backward(np.ones(3))


# ------------------------------------------------------------------------- MultiMargin


@pytest.mark.parametrize("margin", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("n, classes", [(1, 2), (7, 3), (16, 10)])
def test_multi_margin_matches_torch_value_and_gradient(n, classes, margin):
    logits, target = normal((n, classes), seed=n), labels(n, classes, seed=classes)
    ref, ref_grad = torch_loss_and_grad(
        lambda s, t: F.multi_margin_loss(s, t, margin=margin), logits, torch.from_numpy(target)
    )
    loss = MultiMarginLoss(margin)
    assert loss.forward(logits, target) == pytest.approx(ref, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(loss.backward(), ref_grad, rtol=1e-12, atol=1e-15)


def test_multi_margin_at_the_hinge_has_torch_gradient():
    # margin - s_y + s_j == 0 exactly for j = 1: torch's subgradient there is 0
    logits, target = np.array([[2.0, 1.0, -5.0]]), np.array([0])
    _, ref_grad = torch_loss_and_grad(F.multi_margin_loss, logits, torch.from_numpy(target))
    loss = MultiMarginLoss()
    assert loss.forward(logits, target) == 0.0
    np.testing.assert_array_equal(loss.backward(), ref_grad)
    np.testing.assert_array_equal(loss.backward(), np.zeros((1, 3)))


def test_multi_margin_by_hand_is_the_svm_loss_of_the_notes_over_c():
    # scores 1.0, 2.5, -0.4 with class 0 true, margin 1: the SVM loss of the CS231n notes is
    # max(0, 2.5 - 1.0 + 1) + max(0, -0.4 - 1.0 + 1) = 2.5; torch's mean over classes: 2.5 / 3
    scores, target = np.array([[1.0, 2.5, -0.4]]), np.array([0])
    loss = MultiMarginLoss()
    assert loss.forward(scores, target) == pytest.approx(2.5 / 3, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), [[-1 / 3, 1 / 3, 0.0]], rtol=1e-12)


def test_multi_margin_passes_gradcheck_and_scales_with_dloss():
    target = labels(6, 4)
    loss = MultiMarginLoss()

    def grad_fn(dloss, logits):
        loss.forward(logits, target)
        return loss.backward(dloss)

    report = check_gradients(
        lambda s: loss.forward(s, target), normal((6, 4), scale=3), grad_fn=grad_fn
    )
    assert report, report
    loss.forward(normal((6, 4)), target)
    np.testing.assert_allclose(loss.backward(2.0), 2.0 * loss.backward(), rtol=1e-15)


def test_multi_margin_float32_stays_float32():
    loss = MultiMarginLoss()
    loss.forward(normal((5, 3)).astype(np.float32), labels(5, 3))
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize(
    "make, logits, target, error, match",
    [
        (lambda: MultiMarginLoss("1"), None, None, TypeError, "margin must be a real number"),
        (lambda: MultiMarginLoss(np.inf), None, None, ValueError, "margin must be finite"),
        (MultiMarginLoss, np.zeros((3, 4)), np.array([0, 1, 4]), ValueError, r"outside \[0, 4\)"),
        (MultiMarginLoss, np.zeros((3, 4)), np.array([0.0, 1, 2]), TypeError, "integer class"),
        (MultiMarginLoss, np.zeros(4), np.array([0]), ValueError, r"2-D \(N, C\)"),
    ],
)
def test_multi_margin_rejects_bad_arguments(make, logits, target, error, match):
    with pytest.raises(error, match=match):
        make().forward(logits, target)
