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
