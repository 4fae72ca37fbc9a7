"""F.bilinear and nn.Bilinear: values and gradients against torch (skipped without it),
gradcheck, identical output units bitwise identical (and a sample alone keeps its bits), the
module's init and repr, torch's errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn


def _arrays(seed=0, lead=(2, 3)):
    r = np.random.default_rng(seed)
    return (r.standard_normal(lead + (4,)), r.standard_normal(lead + (5,)),
            r.standard_normal((6, 4, 5)), r.standard_normal(6))


@pytest.mark.parametrize("lead", [(7,), (2, 3), ()], ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_torch(lead, with_bias):
    torch = pytest.importorskip("torch")
    arrays = _arrays(1, lead)[:4 if with_bias else 3]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    cs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
    ty, cy = torch.nn.functional.bilinear(*ts), F.bilinear(*cs)
    assert tuple(cy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    (ty ** 2).sum().backward()
    (cy ** 2).sum().backward()
    for c, t in zip(cs, ts, strict=True):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-11, atol=1e-12)


def test_gradcheck():
    arrays = _arrays(2, (3,))
    ts = [cygrad.tensor(a, requires_grad=True) for a in arrays]
    assert cygrad.gradcheck(F.bilinear, *ts)


def test_identical_units_and_a_sample_alone():
    x1, x2, w, b = (a.astype(np.float32) for a in _arrays(3, (9,)))
    w[4], b[4] = w[1], b[1]
    y = F.bilinear(cygrad.tensor(x1), cygrad.tensor(x2), cygrad.tensor(w),
                   cygrad.tensor(b)).numpy()
    assert np.array_equal(y[:, 1], y[:, 4]) and not np.array_equal(y[:, 1], y[:, 2])
    one = F.bilinear(cygrad.tensor(x1[5:6]), cygrad.tensor(x2[5:6]), cygrad.tensor(w),
                     cygrad.tensor(b)).numpy()
    assert np.array_equal(one[0], y[5])


def test_module():
    m = nn.Bilinear(4, 5, 6)
    assert repr(m) == "Bilinear(in1_features=4, in2_features=5, out_features=6, bias=True)"
    assert tuple(m.weight.shape) == (6, 4, 5) and tuple(m.bias.shape) == (6,)
    bound = 0.5  # 1 / sqrt(in1_features)
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.weight.numpy()).max() > 0.4
    assert tuple(m(cygrad.zeros(3, 4), cygrad.zeros(3, 5)).shape) == (3, 6)
    assert nn.Bilinear(4, 5, 6, bias=False).bias is None


def test_errors():
    x1, x2, w, b = (cygrad.tensor(a) for a in _arrays(4))
    with pytest.raises(RuntimeError, match="input batch dimensions do not match"):
        F.bilinear(x1, x2[:1], w)
    with pytest.raises(RuntimeError, match="input1 size does not match weight size"):
        F.bilinear(x2, x2, w)
    with pytest.raises(RuntimeError, match="bias size does not match"):
        F.bilinear(x1, x2, w, b[:3])


def test_lazy_linear_sizes_itself_at_the_first_call():
    torch = pytest.importorskip("torch")
    m, t = nn.LazyLinear(4), torch.nn.LazyLinear(4)
    assert repr(m) == repr(t)
    weight = m.weight
    opt = cygrad.optim.SGD(m.parameters(), lr=0.1)  # (made before the first call)
    y = m(cygrad.ones(2, 3))
    t(torch.ones(2, 3))
    assert type(m) is nn.Linear and repr(m) == repr(t)
    assert m.weight is weight and tuple(m.weight.shape) == (4, 3)
    assert np.abs(m.weight.numpy()).max() <= 1 / np.sqrt(3)
    before = m.weight.numpy().copy()
    y.sum().backward()
    opt.step()
    assert not np.array_equal(before, m.weight.numpy())
