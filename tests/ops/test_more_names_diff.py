"""unique_consecutive, renorm (and renorm_), put (and put_) and F.*_with_indices: values and
gradients against torch (skipped without it), gradcheck in float64, torch's errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F


def test_unique_consecutive_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[1, 1, 2], [1, 1, 2], [3, 1, 1], [3, 1, 1], [1, 1, 2]])
    for dim in (None, 0, 1, -1):
        t = torch.unique_consecutive(torch.tensor(x), return_inverse=True,
                                     return_counts=True, dim=dim)
        c = cygrad.unique_consecutive(cygrad.tensor(x), return_inverse=True,
                                      return_counts=True, dim=dim)
        for tv, cv in zip(t, c):
            assert cv.dtype == getattr(cygrad, str(tv.dtype).split(".")[1])
            np.testing.assert_array_equal(cv.numpy(), tv.numpy())
    f = np.array([0.5, 0.5, -1.0, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(cygrad.tensor(f).unique_consecutive().numpy(),
                                  torch.tensor(f).unique_consecutive().numpy())


def test_renorm_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((4, 3, 2)) * 3
    for p, dim, maxnorm in ((2, 0, 2.0), (1, 1, 3.0), (3, -1, 1.5), (2, 0, 100.0)):
        tx = torch.tensor(x, requires_grad=True)
        cx = cygrad.tensor(x, requires_grad=True)
        t, c = tx.renorm(p, dim, maxnorm), cx.renorm(p, dim, maxnorm)
        np.testing.assert_allclose(c.numpy(), t.detach().numpy(), rtol=1e-13)
        w = np.random.default_rng(1).standard_normal(x.shape)
        (t * torch.tensor(w)).sum().backward()
        (c * cygrad.tensor(w)).sum().backward()
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-11, atol=1e-14)
    cx = cygrad.tensor(x, requires_grad=True)
    assert cygrad.gradcheck(lambda z: z.renorm(2, 0, 2.0), cx)
    y = cygrad.tensor(x.copy())
    assert y.renorm_(2, 0, 2.0) is y
    with pytest.raises(RuntimeError, match="non-positive-norm not supported"):
        cx.renorm(0, 0, 1.0)


def test_put_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([[0, -1], [5, 0]])
    src = np.array([[10.0, 20.0], [30.0, 40.0]])
    for accumulate in (False, True):
        tx = torch.tensor(x, requires_grad=True)
        ts = torch.tensor(src, requires_grad=True)
        cx = cygrad.tensor(x, requires_grad=True)
        cs = cygrad.tensor(src, requires_grad=True)
        t = tx.put(torch.tensor(idx[:, :1].reshape(-1) if not accumulate else idx),
                   ts[:, :1].reshape(-1) if not accumulate else ts, accumulate)
        c = cx.put(cygrad.tensor(idx[:, :1].reshape(-1) if not accumulate else idx),
                   cs[:, :1].reshape(-1) if not accumulate else cs, accumulate)
        np.testing.assert_array_equal(c.numpy(), t.detach().numpy())
        w = np.random.default_rng(2).standard_normal(x.shape)
        (t * torch.tensor(w)).sum().backward()
        (c * cygrad.tensor(w)).sum().backward()
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy())
        np.testing.assert_allclose(cs.grad.numpy(), ts.grad.numpy())
    z = cygrad.zeros(2, 2)
    assert z.put_(cygrad.tensor([3]), cygrad.tensor([1.0])) is z
    assert z.numpy()[1, 1] == 1.0
    with pytest.raises(IndexError, match="out of range"):
        z.put(cygrad.tensor([4]), cygrad.tensor([1.0]))
    with pytest.raises(RuntimeError, match="same number of elements"):
        z.put(cygrad.tensor([0, 1]), cygrad.tensor([1.0]))


def test_with_indices_functions_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6))
    pairs = [("max_pool2d_with_indices", (x, 2)), ("adaptive_max_pool2d_with_indices", (x, 3)),
             ("max_pool1d_with_indices", (x[:, :, 0], 3)),
             ("adaptive_max_pool1d_with_indices", (x[:, :, 0], 4))]
    for name, (a, k) in pairs:
        tv, ti = getattr(torch.nn.functional, name)(torch.tensor(a), k)
        cv, ci = getattr(F, name)(cygrad.tensor(a), k)
        np.testing.assert_array_equal(cv.numpy(), tv.numpy())
        np.testing.assert_array_equal(ci.numpy(), ti.numpy())
