"""torch's legacy typed tensor classes (cygrad/_legacy.py) against torch: construction from
sizes and from data, Tensor.type with a class, isinstance checks."""

import numpy as np
import pytest

import cygrad

NAMES = ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ShortTensor",
         "CharTensor", "ByteTensor", "BoolTensor"]


@pytest.mark.parametrize("name", NAMES)
def test_constructors_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(cygrad, name), getattr(torch, name)
    a, b = ours(3, 4), theirs(3, 4)
    assert tuple(a.shape) == tuple(b.shape) == (3, 4)
    assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
    data = [[1, 0], [1, 1]]
    np.testing.assert_array_equal(ours(data).numpy(), theirs(data).numpy())
    assert tuple(ours(cygrad.Size([2, 5])).shape) == (2, 5)
    assert tuple(ours().shape) == tuple(theirs().shape) == (0,)
    x = cygrad.ones(2)
    assert x.type(ours).dtype == ours(1).dtype
    assert isinstance(x.type(ours), ours)
    assert isinstance(x, ours) == (name == "FloatTensor")
    assert isinstance(x, cygrad.Tensor)
