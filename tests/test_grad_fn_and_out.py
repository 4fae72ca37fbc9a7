"""grad_fn as torch's tutorials walk it (name(), next_functions down to AccumulateGrad) and the
out= argument of elementwise functions (torch.mul(a, b, out=z) in the tensors tutorial)."""

import numpy as np
import pytest

import cygrad


def walk(lib, fn, depth=3):
    """The names of the graph under fn, breadth first, as torch's tutorial prints them."""
    names, level = [], [fn]
    for _ in range(depth):
        following = []
        for node in level:
            for child, index in node.next_functions:
                names.append(None if child is None else child.name())
                assert index == 0
                if child is not None:
                    following.append(child)
        level = following
    return names


def graph(lib):
    x = lib.ones(2, requires_grad=True)
    w = lib.full((2,), 3.0, requires_grad=True)
    return ((x + 2) * w).exp().sum(), x, w


def test_next_functions_reach_the_leaves():
    y, x, w = graph(cygrad)
    assert y.grad_fn.name() == "SumBackward0"
    (mul, _), = y.grad_fn.next_functions[0][0].next_functions
    (add, _), (acc, _) = mul.next_functions
    assert acc.variable is w and acc.next_functions == ()
    assert acc.name() == "torch::autograd::AccumulateGrad"
    (leaf, _), (constant, _) = add.next_functions
    assert leaf.variable is x and constant is None
    assert repr(mul).startswith("<MulBackward0 object at 0x")
    y.backward()  # the graph can still be walked after backward
    assert walk(cygrad, y.grad_fn)[0] == "ExpBackward0"


def test_as_torchs():
    torch = pytest.importorskip("torch")
    ours, theirs = graph(cygrad)[0], graph(torch)[0]
    assert walk(cygrad, ours.grad_fn) == walk(torch, theirs.grad_fn)
    assert repr(ours).split("grad_fn=")[1] == repr(theirs).split("grad_fn=")[1]


@pytest.mark.parametrize("name", ["mul", "maximum", "atan2", "eq", "pow", "fmod"])
def test_binary_functions_take_out(name):
    a = cygrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = cygrad.tensor([[2.0, 2.0], [1.0, 0.5]])
    out = cygrad.empty(2, 2, dtype=getattr(cygrad, name)(a, b).dtype)
    assert getattr(cygrad, name)(a, b, out=out) is out
    assert np.array_equal(out.numpy(), getattr(cygrad, name)(a, b).numpy())


@pytest.mark.parametrize("name", ["exp", "sqrt", "tanh", "neg"])
def test_unary_functions_take_out(name):
    a = cygrad.tensor([0.5, 2.0])
    out = cygrad.empty(2)
    assert getattr(cygrad, name)(a, out=out) is out
    assert np.array_equal(out.numpy(), getattr(cygrad, name)(a).numpy())


@pytest.mark.parametrize("name", ["add", "sub", "add_", "sub_"])
def test_the_deprecated_alpha_first_overload(name):
    """x.add_(-lr, p.grad) (old tutorials): torch's deprecated overload, warned once."""
    import cygrad.ops.elementwise as elementwise

    elementwise._WARNED_OVERLOADS.discard(name)
    x = cygrad.tensor([1.0, 2.0])
    with pytest.warns(UserWarning, match=f"This overload of {name} is deprecated"):
        got = getattr(x.clone(), name)(-0.5, cygrad.tensor([2.0, 4.0]))
    want = getattr(x.clone(), name)(cygrad.tensor([2.0, 4.0]), alpha=-0.5)
    assert np.array_equal(got.numpy(), want.numpy())
    with pytest.raises(TypeError):
        getattr(x.clone(), name)(cygrad.tensor([2.0, 4.0]), 1.0, 2.0)
