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


# The node a call makes, as torch names it (grad_fn.name(), and what a printed tensor shows):
# each case runs under both libraries on the same data.
NODES = {
    "linear, rows and bias": (lambda L, x, w, b: L.nn.functional.linear(x, w, b), (4, 3), (5, 3),
                              (5,)),
    "linear, rows": (lambda L, x, w: L.nn.functional.linear(x, w), (4, 3), (5, 3)),
    "linear, sequences": (lambda L, x, w, b: L.nn.functional.linear(x, w, b), (2, 4, 3), (5, 3),
                          (5,)),
    "linear, sequences, no bias": (lambda L, x, w: L.nn.functional.linear(x, w), (2, 4, 3),
                                   (5, 3)),
    "linear, a vector": (lambda L, x, w, b: L.nn.functional.linear(x, w, b), (3,), (5, 3), (5,)),
    "Linear module": (lambda L, x: L.nn.Linear(3, 2).double()(x), (4, 3)),
    "mse_loss": (lambda L, x, y: L.nn.functional.mse_loss(x, y), (4, 3), (4, 3)),
    "cross_entropy": (lambda L, x: L.nn.functional.cross_entropy(x, L.tensor([0, 1, 2, 0])),
                      (4, 3)),
    "binary_cross_entropy": (lambda L, x: L.nn.functional.binary_cross_entropy(
        x.sigmoid(), L.ones(4, 3, dtype=L.float64)), (4, 3)),
    "bce_with_logits, sum": (lambda L, x: L.nn.functional.binary_cross_entropy_with_logits(
        x, L.ones(4, 3, dtype=L.float64), reduction="sum"), (4, 3)),
    "huber_loss, none": (lambda L, x, y: L.nn.functional.huber_loss(x, y, reduction="none"),
                         (4, 3), (4, 3)),
    "smooth_l1_loss": (lambda L, x, y: L.nn.functional.smooth_l1_loss(x, y), (4, 3), (4, 3)),
    "nll_loss": (lambda L, x: L.nn.functional.nll_loss(x, L.tensor([0, 1, 2, 0])), (4, 3)),
    "matrix @ matrix": (lambda L, x, y: x @ y, (4, 3), (3, 5)),
    "batch @ batch": (lambda L, x, y: x @ y, (2, 4, 3), (2, 3, 5)),
    "batch @ matrix": (lambda L, x, y: x @ y, (2, 4, 3), (3, 5)),
    "mm": (lambda L, x, y: L.mm(x, y), (4, 3), (3, 5)),
    "bmm": (lambda L, x, y: L.bmm(x, y), (2, 4, 3), (2, 3, 5)),
    "dot": (lambda L, x: x @ x, (3,)),
    "mv": (lambda L, x, v: x @ v, (4, 3), (3,)),
    "vector @ batch": (lambda L, v, x: v @ x, (3,), (2, 3, 4)),
    "sum": (lambda L, x: x.sum(), (4, 3)),
    "sum(dim)": (lambda L, x: x.sum(1), (4, 3)),
    "mean(dim)": (lambda L, x: x.mean((0, 1)), (4, 3)),
    "view": (lambda L, x: x.view(12), (4, 3)),
    "reshape (a view)": (lambda L, x: x.reshape(3, 4), (4, 3)),
    "reshape (a copy)": (lambda L, x: x.t().reshape(12), (4, 3)),
    "flatten": (lambda L, x: x.flatten(1), (2, 4, 3)),
    "transpose": (lambda L, x: x.transpose(0, 1), (4, 3)),
    "t": (lambda L, x: x.t(), (4, 3)),
    "permute": (lambda L, x: x.permute(1, 0), (4, 3)),
    "squeeze()": (lambda L, x: x[None].squeeze(), (4, 3)),
    "squeeze(dim)": (lambda L, x: x[None].squeeze(0), (4, 3)),
    "unsqueeze": (lambda L, x: x.unsqueeze(1), (4, 3)),
    "x[1]": (lambda L, x: x[1], (4, 3)),
    "x[:, 1]": (lambda L, x: x[:, 1], (4, 3)),
    "x[1:3]": (lambda L, x: x[1:3], (4, 3)),
    "x[0, 1:3]": (lambda L, x: x[0, 1:3], (4, 3)),
    "x[1:3, None]": (lambda L, x: x[1:3, None], (4, 3)),
    "x[None, 0]": (lambda L, x: x[None, 0], (4, 3)),
    "x[[0, 2]]": (lambda L, x: x[L.tensor([0, 2])], (4, 3)),
    "select": (lambda L, x: L.select(x, 1, 0), (4, 3)),
    "narrow": (lambda L, x: x.narrow(0, 1, 2), (4, 3)),
    "split": (lambda L, x: x.split(2)[1], (4, 3)),
    "split sizes": (lambda L, x: x.split([1, 3])[0], (4, 3)),
    "chunk": (lambda L, x: x.chunk(2, 1)[1], (4, 3)),
    "unbind": (lambda L, x: x.unbind(1)[0], (4, 3)),
    "cat": (lambda L, x, y: L.cat([x, y]), (4, 3), (4, 3)),
    "stack": (lambda L, x, y: L.stack([x, y], 1), (4, 3), (4, 3)),
    "max()": (lambda L, x: x.max(), (4, 3)),
    "max(dim)": (lambda L, x: x.max(1).values, (4, 3)),
    "min()": (lambda L, x: x.min(), (4, 3)),
    "min(dim)": (lambda L, x: x.min(0)[0], (4, 3)),
    "amax": (lambda L, x: x.amax(1), (4, 3)),
    "amin": (lambda L, x: x.amin(1), (4, 3)),
    "var": (lambda L, x: x.var(1), (4, 3)),
    "std": (lambda L, x: x.std(), (4, 3)),
    "clamp": (lambda L, x: x.clamp(min=0), (4, 3)),
    "clamp_min": (lambda L, x: x.clamp_min(0), (4, 3)),
    "clamp_max": (lambda L, x: L.clamp_max(x, 0), (4, 3)),
    "x ** y": (lambda L, x, y: x ** y.abs(), (4, 3), (4, 3)),
    "x ** 3": (lambda L, x: x ** 3, (4, 3)),
    "2 ** x": (lambda L, x: 2 ** x, (4, 3)),
    "1 - x": (lambda L, x: 1 - x, (4, 3)),
    "x - 1": (lambda L, x: x - 1, (4, 3)),
    "cumsum": (lambda L, x: x.cumsum(1), (4, 3)),
    "norm": (lambda L, x: x.norm(), (4, 3)),
    "float()": (lambda L, x: x.float(), (4, 3)),
    "dropout": (lambda L, x: L.nn.functional.dropout(x, 0.5), (4, 3)),
    "layer_norm": (lambda L, x: L.nn.functional.layer_norm(x, (3,)), (4, 3)),
    "batch_norm": (lambda L, x: L.nn.functional.batch_norm(x, None, None, training=True),
                   (4, 3)),
    "conv1d": (lambda L, x, w: L.nn.functional.conv1d(x, w), (1, 1, 5), (2, 1, 3)),
    "conv2d": (lambda L, x, w, b: L.nn.functional.conv2d(x, w, b), (1, 1, 5, 5), (2, 1, 3, 3),
               (2,)),
    "max_pool2d": (lambda L, x: L.nn.functional.max_pool2d(x, 2), (1, 1, 4, 4)),
    "avg_pool2d": (lambda L, x: L.nn.functional.avg_pool2d(x, 2), (1, 1, 4, 4)),
    "scaled_dot_product_attention": (
        lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
        (1, 2, 4, 3), (1, 2, 4, 3), (1, 2, 4, 3)),
    "scaled_dot_product_attention, 3-D": (
        lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v),
        (2, 4, 3), (2, 4, 3), (2, 4, 3)),
    "max_pool1d": (lambda L, x: L.nn.functional.max_pool1d(x, 2), (1, 2, 4)),
    "x[1:3] = 5": (lambda L, x: _written(x, lambda a: a.__setitem__(slice(1, 3), 5.0)), (4, 3)),
    "x[0] = y[1]": (lambda L, x, y: _written(x, lambda a: a.__setitem__(0, y[1])), (4, 3),
                    (4, 3)),
    "x[1][2] = 7": (lambda L, x: _written(x, lambda a: a[1].__setitem__(2, 7.0)), (4, 3)),
    "x[1, 1:].add_(y)": (lambda L, x, y: _written(x, lambda a: a[1, 1:].add_(y)), (4, 3), (2,)),
    "x[:, 0].mul_(3)": (lambda L, x: _written(x, lambda a: a[:, 0].mul_(3)), (4, 3)),
    "x[[0, 2]] = y": (lambda L, x, y: _written(x, lambda a: a.__setitem__(L.tensor([0, 2]), y)),
                      (4, 3), (3,)),
    "x[mask] = 1": (lambda L, x: _written(x, lambda a: a.__setitem__(
        L.tensor([True, False, True, False]), 1.0)), (4, 3)),
    "index_put_": (lambda L, x, y: _written(x, lambda a: a.index_put_((L.tensor([1]),), y)),
                   (4, 3), (3,)),
}


def _written(x, write):
    """A tensor made from x (so not a leaf), written in place by write: torch names the node
    after how it was written (CopySlices through basic indexing, IndexPutBackward0 else)."""
    a = x * 2
    write(a)
    return a


def _node(lib, case):
    fn, *shapes = NODES[case]
    rng = np.random.default_rng(0)
    xs = [lib.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    lib.manual_seed(0)
    return fn(lib, *xs)


@pytest.mark.parametrize("case", sorted(NODES))
def test_grad_fn_names_are_torchs(case):
    torch = pytest.importorskip("torch")
    ours, theirs = _node(cygrad, case), _node(torch, case)
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    assert repr(ours).split("grad_fn=")[1] == repr(theirs).split("grad_fn=")[1]


def test_a_nodes_name_outlives_backward():
    """torch's grad_fn keeps its name after backward freed what it saved; so does cygrad's."""
    y = _node(cygrad, "linear, rows and bias")
    assert y.grad_fn.name() == "AddmmBackward0"
    y.sum().backward()
    assert y.grad_fn.name() == "AddmmBackward0"
    assert "grad_fn=<AddmmBackward0>" in repr(y)


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
