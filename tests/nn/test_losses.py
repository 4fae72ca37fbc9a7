"""Losses (modules and functions), every reduction: against numpy formulas on both backends,
by gradcheck in float64, and against PyTorch where it is installed."""

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.nn import functional as F
from helpers import check_op

try:
    import torch
except ImportError:  # PyTorch is an optional cross-check
    torch = None

REDUCTIONS = ["mean", "sum", "none"]
REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}


def log_softmax(x):
    s = x - x.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


TARGETS = np.array([2, 0, 3, 3, 1])  # class indices for 5 rows of 4 logits


# ---------------------------------------------------------------------- MSE

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    check_op(lambda x, t: F.mse_loss(x, t, reduction), lambda x, t: REDUCE[reduction]((x - t) ** 2),
             (4, 3), (4, 3),
             torch_fn=torch and (lambda x, t: torch.nn.functional.mse_loss(x, t,
                                                                           reduction=reduction)))


def test_mse_loss_module_with_array_target(backend, dtype):
    x = cygrad.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=dtype, requires_grad=True)
    target = np.array([[1.0, 0.0], [0.0, 0.0]])  # an array: converted to x's dtype
    loss = nn.MSELoss()(x, target)
    assert loss.dtype == dtype and loss.shape == ()
    assert loss.item() == pytest.approx((4 + 9 + 25) / 4)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * (x.numpy() - target) / 4)
    assert nn.MSELoss(reduction="sum")(x, target).item() == pytest.approx(38)
    assert nn.MSELoss(reduction="none")(x, target).shape == (2, 2)


# ---------------------------------------------------------------------- cross-entropy

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(reduction):
    def reference(x):
        return REDUCE[reduction](-log_softmax(x)[np.arange(5), TARGETS])

    check_op(lambda x: F.cross_entropy(x, TARGETS, reduction), reference, (5, 4),
             torch_fn=torch and (lambda x: torch.nn.functional.cross_entropy(
                 x, torch.tensor(TARGETS), reduction=reduction)))


@pytest.mark.parametrize("targets", [[2, 0, 1], np.array([2, 0, 1], np.int32),
                                     np.array([2, 0, 1], np.uint8), (2, 0, 1)],
                         ids=["list", "int32", "uint8", "tuple"])
def test_cross_entropy_target_forms(backend, targets):
    logits = cygrad.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    loss = nn.CrossEntropyLoss()(logits, targets)
    expected = -log_softmax(logits.numpy())[np.arange(3), [2, 0, 1]].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    softmax = np.exp(log_softmax(logits.numpy()))
    softmax[np.arange(3), [2, 0, 1]] -= 1
    np.testing.assert_allclose(logits.grad, softmax / 3, rtol=1e-12)


def test_cross_entropy_keeps_float32(backend):
    logits = cygrad.tensor(np.zeros((4, 3), np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, [0, 1, 2, 0])
    assert loss.dtype == np.float32 and loss.item() == pytest.approx(np.log(3), rel=1e-6)
    loss.backward()
    assert logits.grad.dtype == np.float32


def test_cross_entropy_large_logits_are_stable(backend):
    logits = cygrad.tensor([[1000.0, 0.0], [-1000.0, 1000.0]], dtype="float64",
                           requires_grad=True)
    loss = F.cross_entropy(logits, [0, 0], reduction="none")
    assert np.isfinite(loss.numpy()).all()
    np.testing.assert_allclose(loss.numpy(), [0.0, 2000.0])


@pytest.mark.parametrize("targets, error, match", [
    ([0, 1, 4], ValueError, r"class index 4 \(at position 2\) out of range for 4 classes"),
    ([0, -1, 2], ValueError, r"class index -1 \(at position 1\) out of range for 4 classes"),
    ([0, 1], ValueError, r"input of shape \(3, 4\) needs targets of shape \(3,\), got \(2,\)"),
    ([[0, 1, 2]], ValueError, r"needs targets of shape \(3,\), got \(1, 3\)"),
    ([0.0, 1.0, 2.0], TypeError, "integer class indices, got dtype float64"),
])
def test_cross_entropy_bad_targets(targets, error, match):
    logits = cygrad.tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(error, match=match):
        F.cross_entropy(logits, targets)


def test_cross_entropy_needs_2d_logits():
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\), got \(2, 3, 4\)"):
        F.cross_entropy(cygrad.tensor(np.zeros((2, 3, 4))), [0, 1])


# ---------------------------------------------------------------------- BCE with logits

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    targets = np.random.default_rng(5).uniform(0, 1, (4, 3))

    def reference(x):
        t = targets.astype(x.dtype)
        p = 1 / (1 + np.exp(-x))
        return REDUCE[reduction](-(t * np.log(p) + (1 - t) * np.log(1 - p)))

    check_op(lambda x: F.binary_cross_entropy_with_logits(x, targets, reduction), reference,
             (4, 3), low=-4, high=4,
             torch_fn=torch and (lambda x: torch.nn.functional.binary_cross_entropy_with_logits(
                 x, torch.tensor(targets), reduction=reduction)))


def test_bce_with_logits_module_is_stable(backend, dtype):
    x = cygrad.tensor([[-200.0, 0.0, 200.0]], dtype=dtype, requires_grad=True)
    loss = nn.BCEWithLogitsLoss(reduction="sum")(x, [[1.0, 1.0, 0.0]])
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(400 + np.log(2), rel=1e-6)
    loss.backward()
    np.testing.assert_allclose(x.grad, [[-1.0, -0.5, 1.0]], atol=1e-7)


# ---------------------------------------------------------------------- shared checks

@pytest.mark.parametrize("loss", [nn.MSELoss, nn.CrossEntropyLoss, nn.BCEWithLogitsLoss])
def test_bad_reduction(loss):
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'average'"):
        loss(reduction="average")


def test_shape_and_dtype_mismatches_are_named():
    x = cygrad.tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) and target of shape \(3, 2\)"):
        F.mse_loss(x, np.zeros((3, 2)))
    with pytest.raises(TypeError, match="input has dtype (cygrad.)?float32 but target has "
                                        "dtype (cygrad.)?float64"):
        F.mse_loss(x, cygrad.tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) and target of shape \(6,\)"):
        F.binary_cross_entropy_with_logits(x, np.zeros(6))


def test_loss_repr():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"
