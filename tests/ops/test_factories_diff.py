"""Factories and casts against PyTorch (tests/ops/torchdiff.py): each row is one call made on
both libraries; values, shapes and dtypes must match, and where torch raises cygrad raises the
same kind of exception. Random factories are compared by shape, dtype and range only."""

import math

import numpy as np
import pytest
from torchdiff import diff, dtype_name, need_torch

import cygrad

INF, NAN = float("inf"), float("nan")

CALLS = [
    # zeros, ones, empty, full
    lambda m: m.zeros(2, 3), lambda m: m.zeros((2, 3)), lambda m: m.zeros([]),
    lambda m: m.zeros(0, 4), lambda m: m.zeros(2, dtype=m.int64), lambda m: m.zeros(-1),
    lambda m: m.zeros(2.5), lambda m: m.zeros((2, "a")), lambda m: m.ones(3, dtype=m.bool),
    lambda m: m.ones(2, 2, dtype=m.float64), lambda m: m.ones(m.Size([2, 1])),
    lambda m: m.ones(2, requires_grad=True), lambda m: m.ones(2, dtype=m.int32),
    lambda m: m.empty(2, 3).fill_(1.5), lambda m: m.empty(0),
    lambda m: m.full((2,), 3), lambda m: m.full((2,), 2.5), lambda m: m.full((2, 1), True),
    lambda m: m.full([2], -1, dtype=m.float64), lambda m: m.full((2,), NAN, dtype=m.int64),
    lambda m: m.full((2,), 1e300), lambda m: m.full((1,), 2 ** 40, dtype=m.int32),
    lambda m: m.full((1,), -2.7, dtype=m.int64), lambda m: m.full((1,), INF),
    lambda m: m.full((), 7), lambda m: m.full((2,), m.tensor(2.5)),
    # arange, linspace, logspace, eye
    lambda m: m.arange(5), lambda m: m.arange(1, 4), lambda m: m.arange(0, 1, 0.1),
    lambda m: m.arange(1, 2.5, 0.5), lambda m: m.arange(5, dtype=m.float64),
    lambda m: m.arange(10, 0, -3), lambda m: m.arange(0, 0), lambda m: m.arange(3, 0),
    lambda m: m.arange(0, 3, 0), lambda m: m.arange(0.1, 0.9, 0.1),
    lambda m: m.arange(-1.0, 1.0, 0.3), lambda m: m.arange(m.tensor(3)),
    lambda m: m.arange(0, 5, 2, dtype=m.float32), lambda m: m.arange(1.5, dtype=m.int64),
    lambda m: m.arange(0.5, 3), lambda m: m.arange(-3.5, -1, 0.25),
    lambda m: m.linspace(0, 1, 5), lambda m: m.linspace(-1, 1, 0), lambda m: m.linspace(2, 3, 1),
    lambda m: m.linspace(0, 10, 7, dtype=m.int64), lambda m: m.linspace(0, 1, -1),
    lambda m: m.linspace(0.0, 1.0, 11, dtype=m.float64), lambda m: m.linspace(3, -2, 6),
    lambda m: m.linspace(-7, 9, 5, dtype=m.int32), lambda m: m.linspace(0, 1, 2.0),
    lambda m: m.logspace(0, 2, 3), lambda m: m.logspace(0, 1, 4, base=2),
    lambda m: m.logspace(-1, 1, 5, dtype=m.float64),
    lambda m: m.eye(3), lambda m: m.eye(2, 4), lambda m: m.eye(0), lambda m: m.eye(4, 2),
    lambda m: m.eye(3, dtype=m.int64), lambda m: m.eye(2, dtype=m.bool), lambda m: m.eye(-1),
    lambda m: m.eye(2, requires_grad=True),
    # tensor, as_tensor
    lambda m: m.tensor([1, 2]), lambda m: m.tensor([1.0, 2]), lambda m: m.tensor([True]),
    lambda m: m.tensor([[1, 2], [3]]), lambda m: m.tensor(3), lambda m: m.tensor([]),
    lambda m: m.tensor([[]]), lambda m: m.tensor([1, 2], dtype=m.float64),
    lambda m: m.tensor(2.5, dtype=m.int64), lambda m: m.tensor([1.5, 0.0], dtype=m.bool),
    lambda m: m.tensor([m.tensor(1.0), m.tensor(2.0)]), lambda m: m.tensor([True, 2]),
    lambda m: m.tensor([1, 2.5]), lambda m: m.tensor(np.arange(3, dtype=np.int32)),
    lambda m: m.tensor(np.float64(2.5)), lambda m: m.tensor("a"),
    lambda m: m.tensor([1.0], requires_grad=True), lambda m: m.tensor([1], requires_grad=True),
    lambda m: m.as_tensor([1, 2]), lambda m: m.as_tensor(np.ones(2)),
    lambda m: m.as_tensor([1, 2], dtype=m.float32), lambda m: m.asarray([[1.0], [2.0]]),
    lambda m: m.tensor(2 ** 63), lambda m: m.tensor([-2 ** 63]),
]


@pytest.mark.parametrize("i", range(len(CALLS)))
def test_factory(i):
    diff(lambda m: CALLS[i](m), grad=False)


LIKE = [
    lambda m, t: m.zeros_like(t), lambda m, t: m.ones_like(t, dtype=m.float64),
    lambda m, t: m.full_like(t, 7), lambda m, t: m.full_like(t, 2.5),
    lambda m, t: m.full_like(t, NAN), lambda m, t: m.empty_like(t).fill_(0),
    lambda m, t: m.zeros_like(t, requires_grad=True) if t.is_floating_point() else t,
    lambda m, t: t.new_zeros(2), lambda m, t: t.new_ones((1, 2)),
    lambda m, t: t.new_full((2,), 3), lambda m, t: t.new_tensor([1, 2]),
    lambda m, t: t.new_empty(3).fill_(1), lambda m, t: t.new_full((2,), -1.5),
    lambda m, t: t.clone(), lambda m, t: m.clone(t), lambda m, t: t.contiguous(),
    lambda m, t: t.float(), lambda m, t: t.double(), lambda m, t: t.long(),
    lambda m, t: t.int(), lambda m, t: t.bool(), lambda m, t: t.to(m.float64),
    lambda m, t: t.to(dtype=m.int64), lambda m, t: t.type(m.float32),
    lambda m, t: t.type_as(m.zeros(1, dtype=m.float64)), lambda m, t: t.to("cpu"),
    lambda m, t: t.cpu(), lambda m, t: t.detach(), lambda m, t: t.zero_() * 1,
    lambda m, t: (t * 1).fill_(2) if t.is_floating_point() else t.fill_(2),
    lambda m, t: t.clone().fill_(m.tensor(3)), lambda m, t: t.clone().fill_(m.ones(2)),
    lambda m, t: t.clone().fill_(NAN), lambda m, t: t.clone().fill_(2 ** 70),
]
ARRAYS = [np.array([[1.5, -2.25], [0.0, 3.0]]), np.array([[1.5, -2.5, 3.75]], np.float32),
          np.array([3, -1, 0]), np.array([True, False]), np.zeros((0, 2)), np.array(2.5),
          np.array([1, 2], np.int32)]


@pytest.mark.parametrize("i", range(len(LIKE)))
@pytest.mark.parametrize("a", range(len(ARRAYS)))
def test_like_new_and_casts(i, a):
    fn = LIKE[i]
    if i in (27, 28, 29) and ARRAYS[a].dtype.kind == "f":  # in place on a leaf
        diff(lambda m, t: fn(m, t.detach()), ARRAYS[a], grad=False)
        return
    diff(fn, ARRAYS[a], kinds=["t" if ARRAYS[a].ndim == 2 else "c"])


def meta(t):
    return tuple(t.shape), dtype_name(t), t.requires_grad


RANDOM = [
    lambda m, g: m.randn(2, 3), lambda m, g: m.randn((4,), dtype=m.float64),
    lambda m, g: m.rand(3, generator=g), lambda m, g: m.rand(0, 2),
    lambda m, g: m.randint(5, (3,)), lambda m, g: m.randint(2, 5, (2, 2), generator=g),
    lambda m, g: m.randint(0, 3, (4,), dtype=m.int32), lambda m, g: m.randperm(6),
    lambda m, g: m.randperm(5, generator=g, dtype=m.float64),
    lambda m, g: m.randn_like(m.zeros(2, dtype=m.float64)),
    lambda m, g: m.rand_like(m.zeros(3), requires_grad=True),
    lambda m, g: m.randint_like(m.zeros(3), 4), lambda m, g: m.normal(0.0, 1.0, (3,)),
    lambda m, g: m.normal(m.zeros(3), 2.0), lambda m, g: m.multinomial(m.ones(4), 2),
    lambda m, g: m.multinomial(m.ones(2, 3), 4, replacement=True, generator=g),
    lambda m, g: m.zeros(3).uniform_(-1, 1), lambda m, g: m.zeros(3).normal_(2, 0.5),
    lambda m, g: m.bernoulli(m.full((3,), 0.5)), lambda m, g: m.randint(5, 3, (2,)),
    lambda m, g: m.multinomial(m.ones(3), 4),
]


@pytest.mark.parametrize("i", range(len(RANDOM)))
def test_random_factories_shapes_dtypes_ranges(i):
    torch = need_torch()
    if not hasattr(cygrad, "Generator"):
        pytest.skip("cygrad's random factories are not on this branch yet")
    try:
        t = RANDOM[i](torch, torch.Generator().manual_seed(0))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        with pytest.raises(type(exc)):
            RANDOM[i](cygrad, cygrad.Generator().manual_seed(0))
        return
    c = RANDOM[i](cygrad, cygrad.Generator().manual_seed(0))
    assert meta(c) == meta(t)
    cv, tv = c.detach().numpy(), t.detach().numpy()
    if cv.size and i in (2, 3, 10, 16):  # uniform in [0, 1) or [-1, 1)
        assert cv.min() >= (-1 if i == 16 else 0) and cv.max() < 1
    if i in (7, 8):
        assert sorted(cv.tolist()) == list(range(cv.size))
    if i in (4, 5, 6, 11):
        assert cv.min() >= tv.min() - 5 and cv.max() < (5 if i != 6 else 3)


def test_generator_reproducible_and_independent():
    if not hasattr(cygrad, "Generator"):
        pytest.skip("cygrad's random factories are not on this branch yet")
    a = cygrad.randn(5, generator=cygrad.Generator().manual_seed(3))
    b = cygrad.randn(5, generator=cygrad.Generator().manual_seed(3))
    assert np.array_equal(a.numpy(), b.numpy())
    cygrad.manual_seed(3)
    c = cygrad.randn(5)
    cygrad.manual_seed(3)
    assert np.array_equal(cygrad.randn(5).numpy(), c.numpy())
    assert not math.isnan(float(c.sum()))


COPIES = [
    lambda m, a, b: a.detach().clone().copy_(b), lambda m, a, b: (a * 1).copy_(b),
    lambda m, a, b: (a * 1).copy_(b[:1]), lambda m, a, b: (a * 1).copy_(b.T),
    lambda m, a, b: (a * 1).copy_(b.double()), lambda m, a, b: (a * 1).copy_(b > 0),
    lambda m, a, b: (a * 1).copy_(b.long()),
]


@pytest.mark.parametrize("i", range(len(COPIES)))
@pytest.mark.parametrize("dtypes", [(np.float64, np.float64), (np.float32, np.float64),
                                    (np.int64, np.float32), (np.float64, np.int64)])
def test_copy_(i, dtypes):
    """copy_ broadcasts and converts src; gradients reach both tensors (torch's rule)."""
    a = np.arange(6.0).reshape(2, 3).astype(dtypes[0]) - 2
    b = np.linspace(-1, 1, 6).reshape(2, 3).astype(dtypes[1]) * 3
    diff(COPIES[i], a, b)


def test_legacy_new_as_torch():
    """x.new(*sizes) / x.new(size) an uninitialised tensor of x's dtype, x.new(sequence) the
    values in x's dtype, x.new(tensor) the tensor's memory, x.new() empty; as torch's."""
    torch = pytest.importorskip("torch")
    for dtype in ("float64", "float32", "int32"):
        c = cygrad.zeros(2, dtype=getattr(cygrad, dtype))
        t = torch.zeros(2, dtype=getattr(torch, dtype))
        for args in [(2, 3), (cygrad.Size([4, 1]),), (), (3,)]:
            targs = [torch.Size(a) if isinstance(a, cygrad.Size) else a for a in args]
            cn, tn = c.new(*args), t.new(*targs)
            assert tuple(cn.shape) == tuple(tn.shape) and cn.dtype.name == dtype
            assert not cn.requires_grad
        for data in ([1.5, 2.0, -3.0], (2, 3), [[1, 2], [3, 4]]):
            cn, tn = c.new(data), t.new(data)
            assert cn.dtype.name == dtype
            np.testing.assert_array_equal(cn.numpy(), tn.numpy())
    base = cygrad.ones(3, dtype=cygrad.float64)
    alias = cygrad.zeros(1, dtype=cygrad.float64).new(base)
    alias[1] = 7.0
    assert base.tolist() == [1.0, 7.0, 1.0]
    with pytest.raises(TypeError, match="dtype"):
        cygrad.zeros(1, dtype=cygrad.float64).new(cygrad.ones(2))
    with pytest.raises(RuntimeError, match="negative dimension"):
        cygrad.zeros(1).new(-1)
