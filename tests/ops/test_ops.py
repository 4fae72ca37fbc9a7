"""Every op in one line: forward against numpy, backward by gradcheck, PyTorch where installed."""

import numpy as np
import pytest

import cygrad
from helpers import check_op


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def log_softmax(x, axis=-1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


# Broadcasting pairs: same shape, row vector, column vector, scalar, leading axes.
PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)), ((3, 4), ()), ((2, 3, 4), (3, 1)),
         ((1, 4), (3, 1))]


@pytest.mark.parametrize("a, b", PAIRS)
def test_add(a, b):
    check_op(lambda x, y: x + y, np.add, a, b, torch_fn=lambda x, y: x + y)


@pytest.mark.parametrize("a, b", PAIRS)
def test_sub(a, b):
    check_op(lambda x, y: x - y, np.subtract, a, b, torch_fn=lambda x, y: x - y)


@pytest.mark.parametrize("a, b", PAIRS)
def test_mul(a, b):
    check_op(lambda x, y: x * y, np.multiply, a, b, torch_fn=lambda x, y: x * y)


@pytest.mark.parametrize("a, b", PAIRS)
def test_div(a, b):
    check_op(lambda x, y: x / y, np.divide, a, b, positive=True, torch_fn=lambda x, y: x / y)


def test_neg():
    check_op(lambda x: -x, np.negative, (3, 5), torch_fn=lambda x: -x)


@pytest.mark.parametrize("p", [2, 3, 0.5, -1.5])
def test_pow(p):
    check_op(lambda x: x ** p, lambda x: x ** x.dtype.type(p), (4, 3), positive=True,
             torch_fn=lambda x: x ** p)


def test_scalar_operands_on_both_sides():
    check_op(lambda x: 2 * x - 1 + x / 4 - (3 - x), lambda x: 2 * x - 1 + x / 4 - (3 - x), (5,))
    check_op(lambda x: 1 / x, lambda x: 1 / x, (5,), positive=True)


@pytest.mark.parametrize("a, b", [((3, 4), (4, 5)), ((1, 7), (7, 1)), ((2, 3, 4), (2, 4, 5)),
                                  ((2, 3, 4), (4, 5)), ((1, 3, 4), (2, 4, 5))])
def test_matmul(a, b):
    check_op(lambda x, y: x @ y, np.matmul, a, b, torch_fn=lambda x, y: x @ y)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                            (-1, False)])
def test_sum(axis, keepdims):
    check_op(lambda x: x.sum(axis=axis, keepdims=keepdims),
             lambda x: x.sum(axis=axis, keepdims=keepdims), (2, 3, 4))


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, True), (-1, False)])
def test_mean(axis, keepdims):
    check_op(lambda x: x.mean(axis=axis, keepdims=keepdims),
             lambda x: x.mean(axis=axis, keepdims=keepdims), (2, 3, 4))


@pytest.mark.parametrize("axis, keepdims", [(0, False), (1, True)])
def test_max(axis, keepdims):
    check_op(lambda x: x.max(axis, keepdims).values,
             lambda x: x.max(axis=axis, keepdims=keepdims), (3, 5),
             torch_fn=lambda x: x.max(axis, keepdims).values)
    check_op(lambda x: x.max(), lambda x: x.max(), (3, 5), torch_fn=lambda x: x.max())


def test_max_ties_as_torch():
    # max(dim) routes the gradient to the index it returns (the first maximum); max() and
    # amax share it evenly between ties (so tied units stay tied through amax)
    x = cygrad.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    values, indices = x.max(1)
    assert indices.tolist() == [1, 0]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    x.amax(1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0.5, 0, 0.5]])


def test_reshape_and_transpose():
    check_op(lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6), (2, 3, 4))
    check_op(lambda x: x.reshape((-1,)), lambda x: x.reshape(-1), (2, 3, 4))
    check_op(lambda x: x.T, lambda x: x.T, (3, 5), torch_fn=lambda x: x.T)
    check_op(lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), (2, 3, 4))
    check_op(lambda x: x.transpose(0, 1), lambda x: x.T, (3, 5))
    check_op(lambda x: x.transpose(-2, -1), lambda x: x.swapaxes(-2, -1), (2, 3, 4))


def test_getitem():
    check_op(lambda x: x[1:, ::2], lambda x: x[1:, ::2], (4, 5))
    idx = np.array([0, 2, 2])  # a repeated index gets the sum of its gradients
    check_op(lambda x: x[idx], lambda x: x[idx], (4, 3))


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid"])
def test_smooth_unary(name):
    reference = {"exp": np.exp, "tanh": np.tanh, "sigmoid": sigmoid}[name]
    check_op(lambda x: getattr(x, name)(), reference, (4, 5),
             torch_fn=lambda x: getattr(x, name)())


def test_log():
    check_op(lambda x: x.log(), np.log, (4, 5), positive=True, torch_fn=lambda x: x.log())


def test_relu_and_leaky_relu():
    from cygrad.nn import functional as F

    # Inputs kept away from the kink at 0, where finite differences are meaningless.
    check_op(lambda x: x.relu(), lambda x: np.maximum(x, 0), (6, 7), low=0.1, high=2)
    check_op(lambda x: x.relu(), lambda x: np.maximum(x, 0), (6, 7), low=-2, high=-0.1)
    check_op(lambda x: F.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), (6, 7),
             low=-2, high=-0.1)
    check_op(lambda x: F.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), (6, 7),
             low=0.1, high=2)


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_family(axis):
    check_op(lambda x: x.softmax(axis), lambda x: np.exp(log_softmax(x, axis)), (3, 5),
             torch_fn=lambda x: x.softmax(axis))
    check_op(lambda x: x.log_softmax(axis), lambda x: log_softmax(x, axis), (3, 5),
             torch_fn=lambda x: x.log_softmax(axis))


def test_a_composite_expression():
    check_op(lambda x, w, b: ((x @ w + b).tanh() * 2).softmax(-1).log().mean(),
             lambda x, w, b: log_softmax(np.tanh(x @ w + b) * 2).mean(), (5, 3), (3, 4), (4,))
