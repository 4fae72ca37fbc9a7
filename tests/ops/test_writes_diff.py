"""fill_diagonal_, addr (and addr_), cross (torch.cross's dim=None), masked_scatter (and _),
select_scatter, slice_scatter and diagonal_scatter: values and gradients against torch
(skipped without it), gradcheck in float64, and torch's errors."""

import warnings

import numpy as np
import pytest

import cygrad


def _r(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _pair(torch, *arrays):
    return ([torch.tensor(a, requires_grad=True) for a in arrays],
            [cygrad.tensor(a, requires_grad=True) for a in arrays])


def _same(torch, fn_t, fn_c, *arrays, seed=9):
    """fn(torch tensors) against fn(cygrad tensors): values, then the gradients of a fixed
    random weighting of the output."""
    ts, cs = _pair(torch, *arrays)
    ty, cy = fn_t(*ts), fn_c(*cs)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), rtol=1e-13,
                               atol=1e-15)
    w = _r(tuple(ty.shape), seed)
    (ty * torch.tensor(w)).sum().backward()
    (cy * cygrad.tensor(w)).sum().backward()
    for t, c in zip(ts, cs):
        if t.grad is None:
            assert c.grad is None or not np.any(c.grad.numpy())
        else:
            np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape, wrap", [((3, 3), False), ((7, 3), True), ((7, 3), False),
                                         ((3, 5), True), ((2, 2, 2), False), ((4, 2), True)])
def test_fill_diagonal_matches_torch(shape, wrap):
    torch = pytest.importorskip("torch")
    x = _r(shape, 1)

    def fill(lib):
        def fn(t):
            y = t * 1.0
            return y.fill_diagonal_(-2.5, wrap=wrap)
        return fn

    _same(torch, fill(torch), fill(cygrad), x)


def test_addr_cross_and_masked_scatter_match_torch():
    torch = pytest.importorskip("torch")
    x, v1, v2 = _r((3, 4), 1), _r(3, 2), _r(4, 3)
    for beta, alpha in ((1, 1), (0.5, 2.0), (0, -1.0)):
        _same(torch, lambda a, b, c, k=beta, s=alpha: torch.addr(a, b, c, beta=k, alpha=s),
              lambda a, b, c, k=beta, s=alpha: cygrad.addr(a, b, c, beta=k, alpha=s), x, v1,
              v2)
    y = x.copy()
    y[0, 0] = np.nan  # beta=0: input not read
    out = cygrad.tensor(y).addr(cygrad.tensor(v1), cygrad.tensor(v2), beta=0)
    assert not np.isnan(out.numpy()).any()
    a, b = _r((4, 3, 2), 4), _r((4, 3, 2), 5)
    _same(torch, lambda p, q: torch.cross(p, q, dim=1), lambda p, q: cygrad.cross(p, q, dim=1),
          a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _same(torch, lambda p, q: p.cross(q), lambda p, q: p.cross(q), a, b)
    with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
        cygrad.tensor(a).cross(cygrad.tensor(b))
    mask = np.random.default_rng(6).random((3, 4)) > 0.4
    src = _r(12, 7)
    _same(torch, lambda t, s: t.masked_scatter(torch.tensor(mask), s),
          lambda t, s: t.masked_scatter(cygrad.tensor(mask), s), x, src)
    _same(torch, lambda t, s: t[0].masked_scatter(torch.tensor(mask), s),  # self broadcast
          lambda t, s: t[0].masked_scatter(cygrad.tensor(mask), s), x, src)
    row = mask[1]  # broadcast over the rows
    _same(torch, lambda t, s: t.masked_scatter(torch.tensor(row), s),
          lambda t, s: t.masked_scatter(cygrad.tensor(row), s), x, src)


def test_scatter_views_match_torch():
    torch = pytest.importorskip("torch")
    x = _r((3, 4, 5), 1)
    _same(torch, lambda t, s: torch.select_scatter(t, s, 1, 2),
          lambda t, s: cygrad.select_scatter(t, s, 1, 2), x, _r((3, 5), 2))
    _same(torch, lambda t, s: torch.select_scatter(t, s, -1, -1),
          lambda t, s: cygrad.select_scatter(t, s, -1, -1), x, _r((3, 4), 2))
    _same(torch, lambda t, s: torch.slice_scatter(t, s, 2, 1, 5, 2),
          lambda t, s: cygrad.slice_scatter(t, s, 2, 1, 5, 2), x, _r((3, 4, 2), 3))
    _same(torch, lambda t, s: t.slice_scatter(s), lambda t, s: t.slice_scatter(s), x,
          _r((3, 4, 5), 4))
    for dims in ((0, 0, 1), (1, 0, 2), (-1, 2, 1), (2, -1, 0)):
        shape = tuple(torch.tensor(x).diagonal(*dims).shape)
        _same(torch, lambda t, s, d=dims: torch.diagonal_scatter(t, s, *d),
              lambda t, s, d=dims: cygrad.diagonal_scatter(t, s, *d), x, _r(shape, 5))


def test_gradcheck():
    x = cygrad.tensor(_r((3, 4), 1), requires_grad=True)
    v1 = cygrad.tensor(_r(3, 2), requires_grad=True)
    v2 = cygrad.tensor(_r(4, 3), requires_grad=True)
    assert cygrad.gradcheck(lambda a, b, c: cygrad.addr(a, b, c, beta=0.3, alpha=1.7), x, v1, v2)
    s = cygrad.tensor(_r(4, 4), requires_grad=True)
    assert cygrad.gradcheck(lambda a, b: cygrad.select_scatter(a, b, 0, 1), x, s)
    d = cygrad.tensor(_r(3, 5), requires_grad=True)
    assert cygrad.gradcheck(lambda a, b: cygrad.diagonal_scatter(a, b), x, d)
    m = cygrad.tensor(np.eye(3, 4, dtype=bool))
    assert cygrad.gradcheck(lambda a, b: a.masked_scatter(m, b), x, v2)
    assert cygrad.gradcheck(lambda a: (a * 1.0).fill_diagonal_(3.0), x)
    p = cygrad.tensor(_r((2, 3), 4), requires_grad=True)
    q = cygrad.tensor(_r((2, 3), 5), requires_grad=True)
    assert cygrad.gradcheck(lambda a, b: cygrad.cross(a, b, dim=1), p, q)


def test_errors_match_torch():
    with pytest.raises(RuntimeError, match="dimensions must larger than 1"):
        cygrad.zeros(3).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
        cygrad.zeros(2, 3, 3).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        cygrad.zeros(3).masked_scatter(cygrad.tensor([1, 0, 1]), cygrad.ones(3))
    with pytest.raises(RuntimeError, match="Number of elements of source"):
        cygrad.zeros(3).masked_scatter(cygrad.tensor([True, True, True]), cygrad.ones(2))
    with pytest.raises(RuntimeError, match="expected src to have a size equal to the slice"):
        cygrad.select_scatter(cygrad.zeros(3, 4), cygrad.zeros(3), 0, 0)
    with pytest.raises(RuntimeError, match="Expected 1-D argument vec1"):
        cygrad.addr(cygrad.zeros(2, 2), cygrad.zeros(2, 1), cygrad.zeros(2))


def test_in_place_forms():
    x = cygrad.zeros(2, 3)
    assert x.addr_(cygrad.ones(2), cygrad.arange(3.0)) is x
    np.testing.assert_array_equal(x.numpy(), [[0, 1, 2], [0, 1, 2]])
    assert x.masked_scatter_(cygrad.tensor([[True, False, False]] * 2),
                             cygrad.tensor([7.0, 8.0])) is x
    np.testing.assert_array_equal(x.numpy()[:, 0], [7, 8])
