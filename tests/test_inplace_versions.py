"""In-place ops on tensors other ops already took as inputs (torch's version counters).

Torch keeps graph nodes apart from tensors: an op recorded before an in-place write keeps
reaching the tensor's history before the write. cygrad's nodes are its Tensors, so an in-place
op that rebases a used tensor keeps that history as a version the earlier ops resolve to.
"""

import numpy as np
import pytest

import cygrad
from cygrad.nn import functional as F


def run(lib, program):
    """The program's gradients, as numpy arrays, run with `lib` as torch."""
    return [g.detach().numpy().copy() for g in program(lib)]


def karpathy_dlogits(torch):
    # makemore part 4: the cross-entropy gradient written in place into softmax's output
    torch.manual_seed(0)
    logits = torch.randn(4, 5, requires_grad=True)
    d = logits * 2
    d[range(4), torch.tensor([0, 1, 2, 3])] -= 1  # a getitem, a write, a setitem
    d /= 4
    (d * d).sum().backward()
    return [logits.grad]


def used_then_written(torch):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y + y  # took y before the write
    y.add_(1)
    y.mul_(3)
    ((y * 3).sum() + (z * z).sum()).backward()
    return [x.grad]


@pytest.mark.parametrize("program", [karpathy_dlogits, used_then_written])
def test_gradients_follow_each_ops_version_as_in_torch(program):
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(run(cygrad, program), run(torch, program)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_writing_into_a_saved_tensor_leaves_the_saving_op_its_old_values():
    # torch raises at backward here (mul saved y); cygrad's mul saved y's array, which the write
    # could not touch (a saved array is read-only, the write went to a copy): the gradient is
    # that of the values y had when mul took it
    x = cygrad.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=cygrad.float64)
    y = x * 2
    z = y * y
    y.add_(1)
    (3 * y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), 6 + 8 * np.array([1.0, 2.0, 3.0]))


def test_versions_are_tracked_through_several_writes_and_consumers():
    x = cygrad.tensor([0.5, -1.0], requires_grad=True, dtype=cygrad.float64)
    y = x.exp()
    a = y.sum()            # version 0
    y.mul_(2)
    b = (y * y).sum()      # version 1: (2 e^x)^2
    y.sub_(1)
    c = y.sum()            # version 2: 2 e^x - 1
    (a + b + c).backward()
    e = np.exp(np.array([0.5, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), e + 8 * e * e + 2 * e, rtol=1e-12)


def test_softmax_output_written_in_place_without_backward_is_allowed():
    logits = cygrad.randn(3, 4, requires_grad=True)
    d = F.softmax(logits, 1)
    d[range(3), cygrad.tensor([0, 1, 2])] -= 1
    d /= 3
    assert d.shape == (3, 4)
    np.testing.assert_allclose(d.detach().numpy().sum(1), 0.0, atol=1e-6)


def writes_through_views(torch):
    # makemore part 4's embedding gradient, dC[ix] += demb[k, j], then a slice written in place
    torch.manual_seed(0)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    demb = w * 3
    dc = torch.zeros_like(w)
    for k in range(2):
        dc[torch.tensor(k + 1)] += demb[k]
    v = dc[0:2]
    v *= 2
    ((dc * dc).sum() + (v * 5).sum()).backward()
    return [w.grad, dc]


def test_in_place_ops_on_slices_write_the_base_as_in_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(run(cygrad, writes_through_views), run(torch, writes_through_views)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_slice_of_a_leaf_that_requires_grad_cannot_be_written():
    w = cygrad.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w[0:2] += 1


# every kind of view written in place (as torch: the base takes the write into its history,
# the view is re-made from it); each case returns what its gradients flow from
VIEW_WRITES = {
    "relu on view(-1)": lambda L, a, u: L.nn.functional.relu(a.view(-1), inplace=True) * u[0],
    "relu_ on t()": lambda L, a, u: a.t().relu_() * u[1],
    "slice of a view": lambda L, a, u: a.view(12)[2:5].mul_(u[:3]),
    "setitem on reshape": lambda L, a, u: a.reshape(2, 6).__setitem__((0, 1), u[2]),
    "unsqueeze add_": lambda L, a, u: a.unsqueeze(0).add_(u[:3]),
    "transpose setitem": lambda L, a, u: a.transpose(0, 1).__setitem__(0, u[:4] * u[1]),
    "leaky_relu on narrow": lambda L, a, u: L.nn.functional.leaky_relu(
        a.narrow(1, 0, 2), 0.2, True) * u[2],
    "diagonal mul_": lambda L, a, u: a.diagonal().mul_(u[:3]),
    "permute of a slice": lambda L, a, u: a[1:].permute(1, 0).sub_(u[:3].unsqueeze(1)),
    "view of a view": lambda L, a, u: a.view(2, 6).view(3, 4)[1].div_(u[:4] + 3),
    "elu in place": lambda L, a, u: L.nn.functional.elu(a.view(12)[1:7], inplace=True),
    "hardtanh in place": lambda L, a, u: L.nn.functional.hardtanh(a.t()[0], -0.5, 0.5, True),
    "silu in place": lambda L, a, u: L.nn.functional.silu(a.view(3, 2, 2)[2], inplace=True),
}


def _view_write(lib, case, dtype):
    torch = lib
    torch.manual_seed(3)
    w = torch.randn(4, 3, dtype=dtype, requires_grad=True)
    u = torch.randn(4, dtype=dtype, requires_grad=True)
    a = w * 2 - 0.5
    out = VIEW_WRITES[case](torch, a, u)
    outs = out if isinstance(out, tuple) else (out,)
    loss = (a * a.detach().exp()).sum() + sum((o * o).sum() for o in outs if o is not None)
    loss.backward()
    return [a.detach(), w.grad, u.grad]


@pytest.mark.parametrize("case", sorted(VIEW_WRITES))
def test_in_place_ops_on_any_view_write_the_base_as_in_torch(case):
    """Before: F.relu(view, inplace=True) computed out of place (the base kept its values:
    silently other gradients than torch's), and a write into a transpose, reshape or
    diagonal view of a graph tensor raised."""
    torch = pytest.importorskip("torch")
    ours = _view_write(cygrad, case, cygrad.float64)
    theirs = _view_write(torch, case, torch.float64)
    for a, b in zip(ours, theirs, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", sorted(VIEW_WRITES))
def test_writes_through_views_gradcheck(case):
    def f(w, u):
        a = w * 2 - 0.5
        out = VIEW_WRITES[case](cygrad, a, u)
        outs = out if isinstance(out, tuple) else (out,)
        return (a * a).sum() + sum((o * o).sum() for o in outs if o is not None)

    rng = np.random.default_rng(0)
    w = cygrad.tensor(rng.standard_normal((4, 3)) + 0.05, requires_grad=True)
    u = cygrad.tensor(rng.standard_normal(4), requires_grad=True)
    assert cygrad.autograd.gradcheck(f, (w, u))
    assert cygrad.autograd.gradgradcheck(f, (w, u), atol=1e-4)


def test_functional_inplace_activations_write_their_input():
    x = cygrad.tensor([-1.0, 2.0, -3.0])
    y = cygrad.nn.functional.relu(x, inplace=True)
    assert y is x and x.tolist() == [0.0, 2.0, 0.0]
    x = cygrad.tensor([-1.0, 2.0])
    assert cygrad.nn.functional.leaky_relu(x, 0.5, True) is x and x.tolist() == [-0.5, 2.0]
    x = cygrad.tensor([-1.0, 2.0])
    cygrad.nn.functional.relu(x, inplace=False)
    assert x.tolist() == [-1.0, 2.0]
    with pytest.raises(TypeError, match="inplace"):  # torch's gelu takes no inplace either
        cygrad.nn.functional.gelu(x, inplace=True)


def test_a_reshape_that_copies_is_no_view_to_write_through():
    torch = pytest.importorskip("torch")
    results = []
    for L in (cygrad, torch):
        w = L.ones(3, 4, dtype=L.float64, requires_grad=True)
        a = w * 2
        r = a.t().reshape(12)  # a copy (no strides give the view), in torch too
        r.mul_(3)
        ((a * a).sum() + (r * r).sum()).backward()
        results.append((a.detach().numpy().copy(), w.grad.numpy().copy()))
    for x, y in zip(*results, strict=True):
        np.testing.assert_array_equal(x, y)


def test_writing_into_an_expanded_view_raises_torchs_error():
    w = cygrad.ones(3, requires_grad=True)
    a = w * 2
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        a.expand(2, 3).mul_(2)


def test_a_view_of_a_leaf_that_requires_grad_cannot_be_written():
    w = cygrad.ones(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.t().mul_(2)
