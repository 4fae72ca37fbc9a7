"""cygrad.nn.functional: every name the issue lists exists, activations and softmaxes agree
with numpy, gradcheck and PyTorch, and the functions agree with their modules."""

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

NAMES = ["linear", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
         "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
         "adaptive_max_pool2d", "dropout", "relu", "leaky_relu", "tanh", "sigmoid", "softmax",
         "log_softmax", "mse_loss", "cross_entropy", "binary_cross_entropy_with_logits"]


def test_every_function_is_there():
    assert set(NAMES) <= set(F.__all__)
    assert all(callable(getattr(F, name)) for name in F.__all__)


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax(dim):
    check_op(lambda x: F.softmax(x, dim), lambda x: softmax(x, dim), (3, 4, 2),
             torch_fn=torch and (lambda x: torch.softmax(x, dim)))


@pytest.mark.parametrize("dim", [-1, 0])
def test_log_softmax(dim):
    check_op(lambda x: F.log_softmax(x, dim), lambda x: np.log(softmax(x, dim)), (3, 4),
             torch_fn=torch and (lambda x: torch.log_softmax(x, dim)))


@pytest.mark.parametrize("name, reference, module", [
    ("relu", lambda x: np.maximum(x, 0), nn.ReLU()),
    ("tanh", np.tanh, nn.Tanh()),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), nn.Sigmoid()),
])
def test_activations(name, reference, module):
    fn = getattr(F, name)
    check_op(fn, reference, (6, 2), torch_fn=torch and getattr(torch.nn.functional, name))
    x = cygrad.tensor(np.linspace(-3, 3, 12).reshape(3, 4))
    assert np.array_equal(fn(x).numpy(), module(x).numpy())


def test_leaky_relu():
    check_op(lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), (5, 3),
             torch_fn=torch and (lambda x: torch.nn.functional.leaky_relu(x, 0.2)))
    x = cygrad.tensor([-1.0, 2.0])
    assert np.allclose(F.leaky_relu(x).numpy(), [-0.01, 2.0])


def test_functions_match_their_modules(backend):
    cygrad.manual_seed(0)
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)), dtype="float32")
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    assert np.array_equal(conv(x).numpy(), F.conv2d(x, conv.weight, conv.bias, 2, 1).numpy())
    assert np.array_equal(nn.MaxPool2d(3, 2)(x).numpy(), F.max_pool2d(x, 3, 2).numpy())
    assert np.array_equal(nn.AvgPool2d(2)(x).numpy(), F.avg_pool2d(x, 2).numpy())
    lin = nn.Linear(6, 2)
    assert np.array_equal(lin(x).numpy(), F.linear(x, lin.weight, lin.bias).numpy())


def test_linear_with_a_transposed_weight(backend):
    """F.linear(h, W.T): the weight is a non-contiguous view made by an op."""
    rng = np.random.default_rng(0)
    w = cygrad.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    h = cygrad.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    y = F.linear(h, w.T)
    np.testing.assert_allclose(y.numpy(), h.numpy() @ w.numpy(), rtol=1e-12)
    cygrad.gradcheck(lambda h, w: F.linear(h, w.T), h, w)


def test_inputs_must_be_tensors():
    with pytest.raises(TypeError, match="conv2d expects a cygrad Tensor, got list"):
        F.conv2d([[1.0]], cygrad.tensor(np.zeros((1, 1, 1, 1), np.float32)))
    with pytest.raises(TypeError, match="weight must be a cygrad Tensor, got ndarray"):
        F.linear(cygrad.tensor(np.zeros((1, 2), np.float32)), np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match=r"cross_entropy\(\): argument 'input' must be Tensor, "
                                        "not ndarray"):
        F.cross_entropy(np.zeros((2, 2)), [0, 1])
