"""scatter_reduce (sum, prod, mean, amax, amin; include_self), index_reduce and scatter's
reduce= argument: values and gradients against torch (skipped without it; zeros, ties and
integers included), gradcheck in float64, the in-place forms, torch's errors, and the order
contract: each position is reduced from its own value in index order, bitwise the loop that
does exactly that."""

import numpy as np
import pytest

import cygrad

REDUCES = ["sum", "prod", "mean", "amax", "amin"]


def _case(seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "ties":  # small integers as floats: ties for amax/amin, zeros for prod
        x = rng.integers(-2, 3, (4, 5)).astype(np.float64)
        src = rng.integers(-2, 3, (3, 5)).astype(np.float64)
    else:
        x, src = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
        if kind == "zeros":
            src[0, 1] = src[2, 3] = 0.0
            x[2, 2] = 0.0
    return x, src, rng.integers(0, 4, (3, 5)), rng.standard_normal((4, 5))


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("kind", ["plain", "zeros", "ties"])
@pytest.mark.parametrize("dim", [0, 1])
def test_matches_torch(reduce, include_self, kind, dim):
    torch = pytest.importorskip("torch")
    x, src, idx, g = _case(3, kind)
    if dim == 1:
        x, src, idx, g = x.T.copy(), src.T.copy(), idx.T.copy(), g.T.copy()
    tx, ts = torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)
    ty = tx.scatter_reduce(dim, torch.tensor(idx), ts, reduce, include_self=include_self)
    ty.backward(torch.tensor(g))
    cx, cs = cygrad.tensor(x, requires_grad=True), cygrad.tensor(src, requires_grad=True)
    cy = cygrad.scatter_reduce(cx, dim, cygrad.tensor(idx), cs, reduce,
                               include_self=include_self)
    cy.backward(cygrad.tensor(g))
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(cs.grad.numpy(), ts.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduce", REDUCES)
def test_integers_and_float32_match_torch(reduce):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 3, (6,))
    for dtype in (np.int64, np.int32, np.float32):
        x = rng.integers(-5, 9, (3,)).astype(dtype)
        src = rng.integers(-5, 9, (6,)).astype(dtype)
        for inc in (True, False):
            t = torch.tensor(x).scatter_reduce(0, torch.tensor(idx), torch.tensor(src), reduce,
                                               include_self=inc)
            c = cygrad.tensor(x).scatter_reduce(0, cygrad.tensor(idx), cygrad.tensor(src),
                                                reduce, include_self=inc)
            assert c.dtype == getattr(cygrad, str(t.dtype).split(".")[1])
            np.testing.assert_array_equal(c.numpy(), t.numpy())


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch: index_reduce is in beta
def test_index_reduce_and_scatter_reduce_argument_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, source = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    index = np.array([0, 4, 0, 2])
    for reduce in ("prod", "mean", "amax", "amin"):
        for inc in (True, False):
            tx = torch.tensor(x, requires_grad=True)
            ts = torch.tensor(source, requires_grad=True)
            ty = tx.index_reduce(0, torch.tensor(index), ts, reduce, include_self=inc)
            ty.sum().backward()
            cx = cygrad.tensor(x, requires_grad=True)
            cs = cygrad.tensor(source, requires_grad=True)
            cy = cx.index_reduce(0, cygrad.tensor(index), cs, reduce, include_self=inc)
            cy.sum().backward()
            np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13)
            np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
            np.testing.assert_allclose(cs.grad.numpy(), ts.grad.numpy(), rtol=1e-12)
    idx = rng.integers(0, 5, (2, 3))
    for reduce in ("add", "multiply"):
        t = torch.tensor(x).scatter(0, torch.tensor(idx), torch.tensor(source[:2]),
                                    reduce=reduce)
        c = cygrad.tensor(x).scatter(0, cygrad.tensor(idx), cygrad.tensor(source[:2]),
                                     reduce=reduce)
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-14)
        t = torch.tensor(x).scatter(0, torch.tensor(idx), 1.5, reduce=reduce)
        c = cygrad.tensor(x).scatter(0, cygrad.tensor(idx), value=1.5, reduce=reduce)
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-14)


def test_in_place_forms():
    x = cygrad.zeros(3)
    out = x.scatter_reduce_(0, cygrad.tensor([0, 0, 2]), cygrad.tensor([1.0, 2.0, 5.0]), "amax",
                            include_self=False)
    assert out is x
    np.testing.assert_array_equal(x.numpy(), [2.0, 0.0, 5.0])
    y = cygrad.ones(3, 2)
    y.index_reduce_(0, cygrad.tensor([2, 0]), cygrad.full((2, 2), 3.0), "prod")
    np.testing.assert_array_equal(y.numpy(), [[3, 3], [1, 1], [3, 3]])


@pytest.mark.parametrize("reduce", REDUCES)
def test_gradcheck(reduce):
    rng = np.random.default_rng(4)
    x = cygrad.tensor(rng.uniform(0.5, 2.0, (4, 3)), requires_grad=True)  # distinct, nonzero
    src = cygrad.tensor(rng.uniform(0.5, 2.0, (5, 3)), requires_grad=True)
    idx = cygrad.tensor(rng.integers(0, 4, (5, 3)))
    for inc in (True, False):
        assert cygrad.gradcheck(
            lambda a, b, inc=inc: a.scatter_reduce(0, idx, b, reduce, include_self=inc), x, src)


def test_errors_match_torch():
    x, idx, src = cygrad.zeros(3), cygrad.tensor([0, 1]), cygrad.ones(2)
    with pytest.raises(RuntimeError, match="reduce argument must be either sum, prod, mean"):
        x.scatter_reduce(0, idx, src, "max")
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply"):
        x.scatter(0, idx, src, reduce="sum")
    with pytest.raises(RuntimeError, match="index 5 is out of bounds"):
        x.scatter_reduce(0, cygrad.tensor([0, 5]), src, "sum")
    with pytest.raises(RuntimeError, match="Expected reduce to be one of prod, mean"):
        x.index_reduce(0, idx, src, "sum")


def test_each_position_in_index_order_from_its_own_value():
    """The exactness contract: a position's result is its own value (include_self), then the
    values scattered to it in index order, one rounding a step: bitwise the plain loop, so
    identical rows of src scattered to positions with identical values give identical bits
    wherever they land."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(7).astype(np.float32)
    src = (rng.standard_normal(200) * 1e3).astype(np.float32)
    idx = rng.integers(0, 7, 200)
    for reduce, step in (("sum", np.add), ("prod", np.multiply), ("amax", np.maximum)):
        got = cygrad.tensor(x).scatter_reduce(0, cygrad.tensor(idx), cygrad.tensor(src), reduce)
        want = x.copy()
        for i, v in zip(idx, src):
            want[i] = step(want[i], v)
        assert got.numpy().tobytes() == want.tobytes(), reduce
    tied = cygrad.tensor(np.tile(x[:1], 4)).scatter_reduce(
        0, cygrad.tensor(np.repeat(np.arange(4), 50)),
        cygrad.tensor(np.tile(src[:50], 4)), "mean").numpy()
    assert len({v.tobytes() for v in tied}) == 1
