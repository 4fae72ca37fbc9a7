"""cygrad.special: torch.special's names for the functions cygrad has, against torch
(skipped without it), gradients included; the missing ones raise AttributeError."""

import numpy as np
import pytest

import cygrad
from cygrad import special

X = np.array([-3.0, -0.5, 0.1, 0.7, 2.5])
CASES = [("expit", (X,)), ("erf", (X,)), ("erfc", (X,)), ("exp2", (X,)), ("expm1", (X,)),
         ("log1p", (X + 4,)), ("ndtr", (X,)), ("log_ndtr", (X,)), ("sinc", (X,)),
         ("entr", (np.array([0.5, 2.0, 0.1]),)), ("logit", (np.array([0.2, 0.7]),)),
         ("xlogy", (X, X + 4)), ("xlog1py", (X, np.array([0.5, 1.0, -0.5, 2.0, 0.1]))),
         ("gammaln", (X + 3.5,)), ("erfinv", (X / 3.5,))]


@pytest.mark.parametrize("name,args", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, args):
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, requires_grad=True) for a in args]
    cs = [cygrad.tensor(a, requires_grad=True) for a in args]
    ty, cy = getattr(torch.special, name)(*ts), getattr(special, name)(*cs)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13, atol=1e-15)
    ty.sum().backward()
    cy.sum().backward()
    for c, t in zip(cs, ts, strict=True):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_reductions_and_edges():
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 2.0, -1.0], [0.5, 0.5, 3.0]])
    for name in ("softmax", "log_softmax"):
        np.testing.assert_allclose(getattr(special, name)(cygrad.tensor(x), 1).numpy(),
                                   getattr(torch.special, name)(torch.tensor(x), 1).numpy(),
                                   rtol=1e-14)
    np.testing.assert_allclose(special.logsumexp(cygrad.tensor(x), 1).numpy(),
                               torch.special.logsumexp(torch.tensor(x), 1).numpy(), rtol=1e-14)
    e = np.array([-1.0, 0.0])
    assert special.entr(cygrad.tensor(e)).tolist() == torch.special.entr(torch.tensor(e)).tolist()
    with pytest.raises(AttributeError, match="torch.special.zeta"):
        _ = special.zeta
    assert special.psi is special.digamma


def test_erfinv_inverts_erf_and_serves_timms_trunc_normal():
    import math

    x = np.linspace(-2.5, 2.5, 201)  # (beyond, erf's rounding hides x: dx/dy = e^(x^2) ...)
    y = np.array([math.erf(v) for v in x])
    back = cygrad.erfinv(cygrad.tensor(y)).numpy()
    np.testing.assert_allclose(back, x, rtol=0, atol=1e-13)
    assert cygrad.erfinv(cygrad.tensor([0.5], dtype=cygrad.float64)).item() == 0.4769362762044699
    assert cygrad.erfinv(cygrad.tensor([1.0, -1.0, 1.5])).tolist()[:2] == [math.inf, -math.inf]
    assert math.isnan(cygrad.erfinv(cygrad.tensor([1.5])).item())
    # timm's trunc_normal_: uniform on [2 cdf(a) - 1, 2 cdf(b) - 1], then erfinv_, scale, shift
    cygrad.manual_seed(0)
    t = cygrad.empty(20000, dtype=cygrad.float64)
    lo, hi = math.erf(-2 / math.sqrt(2)), math.erf(2 / math.sqrt(2))
    t.uniform_(lo, hi)
    t.erfinv_()
    t.mul_(0.02 * math.sqrt(2.0))
    t.clamp_(min=-0.04, max=0.04)
    values = t.numpy()
    assert values.min() >= -0.04 and values.max() <= 0.04
    assert abs(values.std() - 0.02 * 0.8796) < 5e-4  # a normal truncated at 2 sigma
