"""autograd.functional.jacobian and vjp against torch (skipped without it) and against finite
differences; the second-order functions' clear errors. Also utils.data's
WeightedRandomSampler and StackDataset."""

import numpy as np
import pytest

import cygrad
from cygrad.autograd import functional as AF
from cygrad.utils.data import DataLoader, StackDataset, TensorDataset, WeightedRandomSampler


def _f(x, y):
    return x.sin() * y.sum(), (x ** 2).sum() + y[0]


X, Y = np.array([0.3, 1.2, -0.5]), np.array([2.0, -1.0])


def test_jacobian_matches_torch_in_every_form():
    torch = pytest.importorskip("torch")
    ours = AF.jacobian(_f, (cygrad.tensor(X), cygrad.tensor(Y)))
    theirs = torch.autograd.functional.jacobian(_f, (torch.tensor(X), torch.tensor(Y)))
    for row, trow in zip(ours, theirs, strict=True):
        for a, b in zip(row, trow, strict=True):
            assert tuple(a.shape) == tuple(b.shape)
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-15)
    single = AF.jacobian(lambda x: x.exp() @ cygrad.ones(3, 2, dtype=cygrad.float64),
                         cygrad.tensor(X))
    tsingle = torch.autograd.functional.jacobian(
        lambda x: x.exp() @ torch.ones(3, 2, dtype=torch.float64), torch.tensor(X))
    assert tuple(single.shape) == (2, 3)
    np.testing.assert_allclose(single.numpy(), tsingle.numpy(), rtol=1e-15)


def test_jacobian_matches_finite_differences():
    def g(x):
        return (x[:2] * x[1:]).tanh()

    x = np.array([0.4, -0.3, 0.9])
    jac = AF.jacobian(g, cygrad.tensor(x)).numpy()
    eps = 1e-6
    for j in range(3):
        d = np.zeros(3)
        d[j] = eps
        numeric = (g(cygrad.tensor(x + d)).numpy() - g(cygrad.tensor(x - d)).numpy()) / (2 * eps)
        np.testing.assert_allclose(jac[:, j], numeric, rtol=1e-7, atol=1e-9)


def test_jacobian_leaves_the_inputs_alone_and_handles_independence():
    x = cygrad.tensor(X)
    jac = AF.jacobian(lambda a, b: a * 2, (x, cygrad.tensor(Y)))
    assert not x.requires_grad and x.grad is None
    assert np.array_equal(jac[1].numpy(), np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(lambda a, b: a * 2, (x, cygrad.tensor(Y)), strict=True)


def test_vjp_matches_torch():
    torch = pytest.importorskip("torch")
    v = np.array([1.0, -2.0, 0.5])
    out, got = AF.vjp(lambda x: x.exp() * 2, cygrad.tensor(X), cygrad.tensor(v))
    tout, want = torch.autograd.functional.vjp(lambda x: x.exp() * 2, torch.tensor(X),
                                               torch.tensor(v))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-15)
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-15)
    assert not out.requires_grad
    _, scalar = AF.vjp(lambda x: (x ** 2).sum(), cygrad.tensor(X))
    np.testing.assert_allclose(scalar.numpy(), 2 * X)
    with pytest.raises(RuntimeError, match="can only be None"):
        AF.vjp(lambda x: x * 2, cygrad.tensor(X))


def _scalar(x, y):
    return (x.sin() * y.sum()).sum() * x[0] + (y ** 3).sum()


def test_second_order_functions_against_finite_differences():
    """hessian, hvp, vhp and jvp (by backward with create_graph=True) against central
    differences of the first derivatives; hessian symmetric, hvp equal to vhp."""
    x, y = cygrad.tensor(X), cygrad.tensor(Y)
    v, w = cygrad.tensor([0.5, -1.0, 2.0]), cygrad.tensor([1.5, 0.25])

    def gradient(a, b):
        xs = (cygrad.tensor(a, requires_grad=True), cygrad.tensor(b, requires_grad=True))
        return np.concatenate([g.numpy() for g in cygrad.autograd.grad(_scalar(*xs), xs)])

    eps, z = 1e-6, np.concatenate([X, Y])
    numeric = np.stack([(gradient(*np.split(z + eps * e, [3])) -
                         gradient(*np.split(z - eps * e, [3]))) / (2 * eps)
                        for e in np.eye(5)], axis=1)
    (hxx, hxy), (hyx, hyy) = AF.hessian(_scalar, (x, y))
    analytic = np.block([[hxx.numpy(), hxy.numpy()], [hyx.numpy(), hyy.numpy()]])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(analytic, analytic.T, rtol=1e-12)
    vec = np.concatenate([v.numpy(), w.numpy()])
    for fn in (AF.hvp, AF.vhp):
        out, (gx, gy) = fn(_scalar, (x, y), (v, w))
        np.testing.assert_allclose(np.concatenate([gx.numpy(), gy.numpy()]), analytic @ vec,
                                   rtol=1e-10)
        assert not out.requires_grad and not gx.requires_grad
    out, jv = AF.jvp(lambda a: a.exp() * a.sum(), x, v)
    jac = AF.jacobian(lambda a: a.exp() * a.sum(), x).numpy()
    np.testing.assert_allclose(jv.numpy(), jac @ v.numpy(), rtol=1e-12)
    single = AF.hessian(lambda a: (a ** 3).sum() * a[1], x)
    assert tuple(single.shape) == (3, 3)
    with pytest.raises(RuntimeError, match="single element"):
        AF.hessian(lambda a: a * 2, x)


def test_second_order_functions_match_torch():
    torch = pytest.importorskip("torch")
    TF = torch.autograd.functional
    v, w = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25])
    ours = AF.hessian(_scalar, (cygrad.tensor(X), cygrad.tensor(Y)))
    theirs = TF.hessian(_scalar, (torch.tensor(X), torch.tensor(Y)))
    for row, trow in zip(ours, theirs, strict=True):
        for a, b in zip(row, trow, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-13, atol=1e-15)
    for name in ("hvp", "vhp"):
        _, ours = getattr(AF, name)(_scalar, (cygrad.tensor(X), cygrad.tensor(Y)),
                                    (cygrad.tensor(v), cygrad.tensor(w)))
        _, theirs = getattr(TF, name)(_scalar, (torch.tensor(X), torch.tensor(Y)),
                                      (torch.tensor(v), torch.tensor(w)))
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-13)
    x, tx = cygrad.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    for fn, lib, a in ((AF, cygrad, x), (TF, torch, tx)):
        _, jv = fn.jvp(lambda t: t.exp() * t.sum(), a, lib.tensor(v), create_graph=True)
        j = fn.jacobian(lambda t: t.exp() * t.sum(), a, create_graph=True)
        assert jv.requires_grad and j.requires_grad
        got = [lib.autograd.grad(jv.sum(), a)[0].detach().numpy(),
               lib.autograd.grad(j.sum(), a)[0].detach().numpy()]
        if lib is cygrad:
            mine = got
        else:
            for m, t in zip(mine, got):
                np.testing.assert_allclose(m, t, rtol=1e-13)


def test_weighted_random_sampler():
    cygrad.manual_seed(0)
    sampler = WeightedRandomSampler([0.1, 0.1, 0.8], 20000)
    counts = np.bincount(list(sampler), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.1, 0.1, 0.8], atol=0.015)
    assert len(sampler) == 20000
    cygrad.manual_seed(5)
    first = list(WeightedRandomSampler([1.0, 2.0, 3.0, 4.0], 50))
    cygrad.manual_seed(5)
    assert list(WeightedRandomSampler([1.0, 2.0, 3.0, 4.0], 50)) == first
    once = list(WeightedRandomSampler([1.0, 1.0, 1.0, 1.0], 4, replacement=False))
    assert sorted(once) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0]], 1)


def test_stack_dataset():
    ds = StackDataset(TensorDataset(cygrad.arange(5)), cygrad.arange(5) * 10)
    assert len(ds) == 5 and int(ds[2][1]) == 20
    assert StackDataset(a=[1, 2], b=[3, 4])[1] == {"a": 2, "b": 4}
    batches = list(DataLoader(StackDataset(cygrad.arange(6), cygrad.arange(6) * 2),
                              batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 2, 4, 6], [8, 10]]
    with pytest.raises(ValueError, match="Size mismatch"):
        StackDataset([1, 2], [1])
    with pytest.raises(ValueError, match="both types are given"):
        StackDataset([1], a=[1])
