"""cygrad.distributions' Exponential, Laplace, Independent and kl_divergence (register_kl):
log_prob, entropy, cdf, icdf, moments, KL values and gradients against torch.distributions
(skipped without torch), sampling laws, the reparametrised rsample, and the errors."""

import numpy as np
import pytest

import cygrad
from cygrad import distributions as D


def _r(seed):
    return np.random.default_rng(seed)


def _params(lib, *arrays):
    return [lib.tensor(a, requires_grad=True) for a in arrays]


def _same(fn):
    """fn(lib, D-module, params...) in cygrad and torch: values and the parameters' grads."""
    torch = pytest.importorskip("torch")
    out = []
    for lib, dist in ((cygrad, D), (torch, torch.distributions)):
        params, result = fn(lib, dist)
        result.sum().backward()
        out.append((result.detach().numpy(),
                    [None if p.grad is None else p.grad.numpy() for p in params]))
    (got, ggot), (want, gwant) = out
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    for a, b in zip(ggot, gwant, strict=True):
        if b is None:  # no gradient in torch: none, or zeros, here
            assert a is None or not np.any(a)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


RATE = np.abs(_r(0).standard_normal(4)) + 0.3
LOC, SCALE = _r(1).standard_normal(4), np.abs(_r(2).standard_normal(4)) + 0.2
VALUE = np.abs(_r(3).standard_normal(4))
PROB = _r(4).uniform(0.05, 0.95, 4)


@pytest.mark.parametrize("method", ["log_prob", "cdf", "icdf", "entropy", "mean", "variance",
                                    "stddev", "mode"])
def test_exponential_and_laplace_match_torch(method):
    for name, arrays in (("Exponential", (RATE,)), ("Laplace", (LOC, SCALE))):
        def fn(lib, dist, name=name, arrays=arrays):
            params = _params(lib, *arrays)
            d = getattr(dist, name)(*params)
            if method in ("entropy", "mean", "variance", "stddev", "mode"):
                out = getattr(d, method)
                value = (out() if callable(out) else out) * 1.0
                return params, value + 0 * params[0]  # (Exponential's mode: a constant)
            arg = PROB if method == "icdf" else VALUE
            return params, getattr(d, method)(lib.tensor(arg))
        _same(fn)


def test_independent_matches_torch():
    torch = pytest.importorskip("torch")
    loc, scale = _r(5).standard_normal((3, 4)), np.abs(_r(6).standard_normal((3, 4))) + 0.5
    value = _r(7).standard_normal((3, 4))

    def fn(lib, dist):
        params = _params(lib, loc, scale)
        d = dist.Independent(dist.Normal(*params), 1)
        return params, d.log_prob(lib.tensor(value)) + d.entropy()

    _same(fn)
    c = D.Independent(D.Normal(cygrad.tensor(loc), cygrad.tensor(scale)), 2)
    t = torch.distributions.Independent(torch.distributions.Normal(torch.tensor(loc),
                                                                   torch.tensor(scale)), 2)
    assert tuple(c.batch_shape) == tuple(t.batch_shape) == ()
    assert tuple(c.event_shape) == tuple(t.event_shape) == (3, 4)
    assert tuple(c.sample((5,)).shape) == (5, 3, 4) and c.has_rsample
    with pytest.raises(ValueError, match="Expected reinterpreted_batch_ndims <="):
        D.Independent(D.Normal(cygrad.zeros(3), cygrad.ones(3)), 2)


def test_kl_divergence_matches_torch():
    pairs = [
        ("Normal", (LOC, SCALE), (LOC[::-1].copy(), SCALE[::-1].copy())),
        ("Exponential", (RATE,), (RATE[::-1].copy(),)),
        ("Laplace", (LOC, SCALE), (LOC[::-1].copy(), SCALE[::-1].copy())),
        ("Bernoulli", (PROB,), (PROB[::-1].copy(),)),
        ("Categorical", (np.abs(_r(8).standard_normal((2, 5))) + 0.1,),
         (np.abs(_r(9).standard_normal((2, 5))) + 0.1,)),
    ]
    for name, pa, qa in pairs:
        def fn(lib, dist, name=name, pa=pa, qa=qa):
            p_params, q_params = _params(lib, *pa), _params(lib, *qa)
            p, q = getattr(dist, name)(*p_params), getattr(dist, name)(*q_params)
            return p_params + q_params, dist.kl_divergence(p, q)
        _same(fn)

    def independent(lib, dist):
        params = _params(lib, LOC.reshape(2, 2), SCALE.reshape(2, 2))
        p = dist.Independent(dist.Normal(*params), 1)
        q = dist.Independent(dist.Normal(params[0] * 0.5, params[1] + 1), 1)
        return params, dist.kl_divergence(p, q)

    _same(independent)
    torch = pytest.importorskip("torch")
    for lib, dist in ((cygrad, D), (torch, torch.distributions)):  # disjoint supports: inf
        u = dist.kl_divergence(dist.Uniform(lib.tensor([0.0, 0.0]), lib.tensor([1.0, 1.0])),
                               dist.Uniform(lib.tensor([0.5, -1.0]), lib.tensor([2.0, 2.0])))
        np.testing.assert_allclose(u.numpy(), [np.inf, np.log(3.0)])


def test_register_kl_and_errors():
    class Shifted(D.Normal):
        pass

    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(D.Exponential(cygrad.ones(1)), D.Normal(cygrad.zeros(1), cygrad.ones(1)))

    @D.register_kl(Shifted, D.Normal)
    def _kl(p, q):
        return cygrad.zeros(1) + 7

    assert float(D.kl_divergence(Shifted(cygrad.zeros(1), cygrad.ones(1)),
                                 D.Normal(cygrad.zeros(1), cygrad.ones(1)))) == 7.0
    with pytest.raises(TypeError, match="Distribution subclass"):
        D.register_kl(int, D.Normal)
    with pytest.raises(ValueError, match="rate to be positive"):
        D.Exponential(cygrad.tensor([-1.0]))
    with pytest.raises(ValueError, match="support"):
        D.Exponential(cygrad.tensor([1.0])).log_prob(cygrad.tensor([-1.0]))


def test_sampling_laws_and_rsample():
    cygrad.manual_seed(0)
    e = D.Exponential(cygrad.tensor([2.0, 0.5], dtype=cygrad.float64)).sample((20000,))
    np.testing.assert_allclose(e.numpy().mean(0), [0.5, 2.0], rtol=0.05)
    lap = D.Laplace(cygrad.tensor([1.0], dtype=cygrad.float64),
                    cygrad.tensor([2.0], dtype=cygrad.float64)).sample((20000,))
    np.testing.assert_allclose([np.median(lap.numpy()), lap.numpy().var()], [1.0, 8.0],
                               rtol=0.1, atol=0.05)
    rate = cygrad.tensor([1.5], requires_grad=True)
    x = D.Exponential(rate).rsample((3,))
    x.sum().backward()
    np.testing.assert_allclose(rate.grad.numpy(), -x.detach().numpy().sum() / 1.5, rtol=1e-5)


def _spd(seed, k=3, batch=()):
    a = _r(seed).standard_normal(batch + (k, k))
    return a @ np.swapaxes(a, -1, -2) + k * np.eye(k)


@pytest.mark.parametrize("form", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_matches_torch(form):
    pytest.importorskip("torch")
    loc = _r(10).standard_normal((2, 3))
    cov = _spd(11)
    matrix = {"covariance_matrix": cov, "precision_matrix": np.linalg.inv(cov),
              "scale_tril": np.linalg.cholesky(cov)}[form]
    value = _r(12).standard_normal((4, 2, 3))

    def fn(lib, dist):
        params = _params(lib, loc, matrix)
        d = dist.MultivariateNormal(params[0], **{form: params[1]})
        return params, d.log_prob(lib.tensor(value)).sum(0) + d.entropy()

    _same(fn)

    def moments(lib, dist):
        params = _params(lib, loc, matrix)
        d = dist.MultivariateNormal(params[0], **{form: params[1]})
        out = (d.variance.sum(-1) + d.covariance_matrix.sum((-2, -1))
               + d.scale_tril.sum((-2, -1)))
        if form != "scale_tril":  # (torch's cholesky_inverse also sends a gradient to the
            out = out + d.precision_matrix.sum((-2, -1))  # upper triangle of scale_tril)
        return params, out + d.mean.sum(-1)

    _same(moments)

    def kl(lib, dist):
        params = _params(lib, loc, matrix)
        p = dist.MultivariateNormal(params[0], **{form: params[1]})
        q = dist.MultivariateNormal(params[0] * 0.5 + 1, lib.tensor(_spd(13, 3, (2,))))
        return params, dist.kl_divergence(p, q)

    _same(kl)


def test_multivariate_normal_sampling_and_errors():
    cygrad.manual_seed(2)
    cov = _spd(14)
    d = D.MultivariateNormal(cygrad.tensor([1.0, -1.0, 0.5], dtype=cygrad.float64),
                             cygrad.tensor(cov))
    x = d.sample((40000,)).numpy()
    np.testing.assert_allclose(x.mean(0), [1.0, -1.0, 0.5], atol=0.08)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.05, atol=0.1)
    loc = cygrad.zeros(3, dtype=cygrad.float64, requires_grad=True)
    D.MultivariateNormal(loc, scale_tril=cygrad.tensor(np.linalg.cholesky(cov))).rsample(
        (2,)).sum().backward()
    np.testing.assert_array_equal(loc.grad.numpy(), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix"):
        D.MultivariateNormal(cygrad.zeros(2))
    with pytest.raises(ValueError, match="loc must be at least one-dimensional"):
        D.MultivariateNormal(cygrad.tensor(0.0), cygrad.eye(1))


def test_multivariate_normal_precision_of_a_scale_tril():
    torch = pytest.importorskip("torch")
    tril = np.linalg.cholesky(_spd(15))
    c = D.MultivariateNormal(cygrad.zeros(3, dtype=cygrad.float64),
                             scale_tril=cygrad.tensor(tril)).precision_matrix
    t = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64),
                                               scale_tril=torch.tensor(tril)).precision_matrix
    np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-12)
