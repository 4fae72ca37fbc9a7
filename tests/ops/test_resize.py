"""Tensor.resize_ / resize_as_: the same tensor with another shape, its memory read in C order
from its storage offset; a storage that is too small grows (old elements kept). Against torch
(skipped without it): shapes, strides, offsets, values, writes through a shrunk view, torch's
errors."""

import numpy as np
import pytest

import cygrad


def _torch():
    return pytest.importorskip("torch")


def _make(lib, case):
    """A tensor of 0, 1, 2, ... (a view of one, by name) and its base."""
    base = lib.arange(24.0)
    if case == "whole":
        return base[:12], base
    if case == "slice":
        return base[2:14], base
    if case == "t":
        return base[:12].view(3, 4).t(), base
    if case == "column":
        return base[:12].view(3, 4)[:, 1], base
    raise ValueError(case)


SHRINKS = [("whole", (3, 2)), ("slice", (2, 5)), ("t", (2, 3)), ("column", (1, 2)),
           ("whole", ()), ("slice", (0,)), ("t", (12,))]


@pytest.mark.parametrize("case,shape", SHRINKS)
def test_a_shape_the_storage_holds_reads_it_in_c_order_as_torch(case, shape):
    torch = _torch()
    ours, ours_base = _make(cygrad, case)
    theirs, theirs_base = _make(torch, case)
    assert ours.resize_(shape) is ours
    theirs.resize_(shape)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.stride() == theirs.stride()
    assert ours.storage_offset() == theirs.storage_offset()
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # the memory is still the base's: a write through the resized tensor reaches it
    ours.add_(100)
    theirs.add_(100)
    np.testing.assert_array_equal(ours_base.numpy(), theirs_base.numpy())


@pytest.mark.parametrize("case", ["whole", "t", "column"])
def test_its_own_shape_leaves_the_tensor_as_it_is(case):
    torch = _torch()
    ours, _ = _make(cygrad, case)
    theirs, _ = _make(torch, case)
    strides = ours.stride()
    ours.resize_(tuple(ours.shape))
    theirs.resize_(theirs.shape)
    assert ours.stride() == strides == theirs.stride()
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("case,shape", [("whole", (4, 6)), ("slice", (30,)), ("t", (5, 5))])
def test_a_larger_shape_grows_the_storage_keeping_its_elements(case, shape):
    torch = _torch()
    ours, _ = _make(cygrad, case)
    theirs, _ = _make(torch, case)
    offset = ours.storage_offset()
    ours.resize_(*shape)
    theirs.resize_(*shape)
    assert tuple(ours.shape) == tuple(theirs.shape) == shape
    assert ours.storage_offset() == theirs.storage_offset() == offset
    assert ours.is_contiguous()
    # the elements the storage had from the offset on are kept (the rest is uninitialized)
    kept = 24 - offset
    np.testing.assert_array_equal(ours.numpy().reshape(-1)[:kept],
                                  theirs.numpy().reshape(-1)[:kept])
    np.testing.assert_array_equal(ours.numpy().reshape(-1)[:kept], np.arange(offset, 24.0))


def test_resize_as_takes_the_template_shape():
    torch = _torch()
    ours = cygrad.arange(6.0).resize_as_(cygrad.zeros(2, 2))
    theirs = torch.arange(6.0).resize_as_(torch.zeros(2, 2))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_bad_requests_raise_torch_errors():
    torch = _torch()
    for lib in (cygrad, torch):
        with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
            lib.ones(3, requires_grad=True).resize_(2)
        with pytest.raises(RuntimeError):
            lib.ones(3).resize_(-1)
        with pytest.raises(TypeError):
            lib.ones(3).resize_(2.0)
    with pytest.raises(RuntimeError, match=r"negative dimension -1: \[2, -1\]"):
        cygrad.ones(3).resize_(2, -1)
    with pytest.raises(NotImplementedError, match="memory_format"):
        cygrad.ones(3).resize_(2, memory_format="channels_last")


def test_a_graph_keeps_the_values_it_saved():
    """cygrad's rule for in-place changes to a tensor a graph saved (README: the graph keeps
    the values its forward saw; torch raises at backward instead)."""
    x = cygrad.arange(3.0) + 1
    w = cygrad.ones(3, requires_grad=True)
    y = (x * w).sum()
    x.resize_(5)
    x[3:] = 7.0
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])
