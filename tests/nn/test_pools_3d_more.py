"""F.adaptive_max_pool3d / nn.AdaptiveMaxPool3d, F.lp_pool3d / nn.LPPool3d and
F.max_unpool3d / nn.MaxUnpool3d: values and gradients against torch (skipped without it; ties
included: the gradient goes to torch's element), gradcheck in float64, reprs and errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn


def _both(torch, x):
    return torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)


def _check(torch, t, c, tx, cx, seed=1):
    np.testing.assert_allclose(c.numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = np.random.default_rng(seed).standard_normal(tuple(t.shape))
    (t * torch.tensor(w)).sum().backward()
    (c * cygrad.tensor(w)).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("size", [(2, 3, 2), 1, (None, 2, 3), (5, 4, 3)])
@pytest.mark.parametrize("ties", [False, True])
def test_adaptive_max_pool3d_matches_torch(size, ties):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 2, 5, 4, 3)).astype(np.float64) if ties else \
        rng.standard_normal((2, 2, 5, 4, 3))
    tx, cx = _both(torch, x)
    _check(torch, torch.nn.AdaptiveMaxPool3d(size)(tx), nn.AdaptiveMaxPool3d(size)(cx), tx, cx)
    tx, cx = _both(torch, x[0])  # unbatched
    _check(torch, torch.nn.functional.adaptive_max_pool3d(tx, size),
           F.adaptive_max_pool3d(cx, size), tx, cx)


@pytest.mark.parametrize("p, kernel, stride, ceil", [(2, 2, None, False), (3, (2, 1, 2), 1,
                                                                           False),
                                                     (1.5, 2, 2, True)])
def test_lp_pool3d_matches_torch(p, kernel, stride, ceil):
    torch = pytest.importorskip("torch")
    x = np.abs(np.random.default_rng(2).standard_normal((2, 3, 4, 5, 5))) + 0.1
    tx, cx = _both(torch, x)
    t = torch.nn.LPPool3d(p, kernel, stride, ceil)
    c = nn.LPPool3d(p, kernel, stride, ceil)
    assert repr(c) == repr(t)
    _check(torch, t(tx), c(cx), tx, cx)


def test_max_unpool3d_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 2, 4, 6, 4))
    tv, ti = torch.nn.functional.max_pool3d(torch.tensor(x), 2, return_indices=True)
    tv = tv.detach().requires_grad_()
    cv = cygrad.tensor(tv.detach().numpy(), requires_grad=True)
    ci = cygrad.tensor(ti.numpy())
    t, c = torch.nn.MaxUnpool3d(2), nn.MaxUnpool3d(2)
    assert repr(c) == repr(t)
    _check(torch, t(tv, ti), c(cv, ci), tv, cv)
    out = F.max_unpool3d(cv, ci, 2, output_size=(5, 7, 5))
    ref = torch.nn.functional.max_unpool3d(tv, ti, 2, output_size=(5, 7, 5))
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())


def test_gradcheck_and_errors():
    x = cygrad.tensor(np.random.default_rng(4).standard_normal((1, 2, 4, 3, 3)),
                      requires_grad=True)
    assert cygrad.gradcheck(lambda z: F.adaptive_max_pool3d(z, (2, 2, 2)), x)
    y = cygrad.tensor(np.abs(np.random.default_rng(5).standard_normal((1, 1, 2, 4, 4))) + 0.5,
                      requires_grad=True)
    assert cygrad.gradcheck(lambda z: F.lp_pool3d(z, 2.0, 2), y)
    with pytest.raises(NotImplementedError, match="return_indices"):
        F.adaptive_max_pool3d(x, 2, return_indices=True)
    with pytest.raises(RuntimeError, match="Expected 4D or 5D tensor"):
        F.adaptive_max_pool3d(cygrad.zeros(3, 3, 3), 2)
    with pytest.raises(RuntimeError, match="invalid max index"):
        F.max_unpool3d(cygrad.ones(1, 1, 1, 1, 1), cygrad.tensor([[[[[9]]]]]), 2)
