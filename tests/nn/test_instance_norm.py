"""F.instance_norm and nn.InstanceNorm1d/2d/3d: values, gradients, running statistics and eval
mode against torch (skipped without it), gradcheck, the exactness contract (identical channels
normalise identically; a sample's bits alone or in a batch) and torch's errors."""

import warnings

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn

OPTIONS = [{}, {"affine": True}, {"track_running_stats": True},
           {"affine": True, "track_running_stats": True, "momentum": None}]


@pytest.mark.parametrize("kw", OPTIONS, ids=str)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_module_matches_torch(kw, dims):
    torch = pytest.importorskip("torch")
    shape = (3, 4) + (5, 6, 2)[:dims]
    x = np.random.default_rng(dims).standard_normal(shape)
    t = getattr(torch.nn, f"InstanceNorm{dims}d")(4, **kw).double()
    c = getattr(nn, f"InstanceNorm{dims}d")(4, dtype=cygrad.float64, **kw)
    assert repr(c) == repr(t)
    if kw.get("affine"):
        with torch.no_grad():
            t.weight.uniform_()
            t.bias.uniform_()
        c.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    tx, cx = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    for _ in range(2):
        ty, cy = t(tx), c(cx)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    (ty ** 3).sum().backward()
    (cy ** 3).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if kw.get("affine"):
        np.testing.assert_allclose(c.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-10)
    if kw.get("track_running_stats"):
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(c, name).numpy(), getattr(t, name).numpy(),
                                       rtol=1e-12, atol=1e-14)
        t.eval()
        c.eval()
        np.testing.assert_allclose(c(cx).numpy(), t(tx).detach().numpy(), rtol=1e-12,
                                   atol=1e-12)
    unbatched = x[0]
    np.testing.assert_allclose(c(cygrad.tensor(unbatched)).numpy(),
                               t(torch.tensor(unbatched)).detach().numpy(), rtol=1e-12,
                               atol=1e-12)


def test_gradcheck():
    r = np.random.default_rng(1)
    x = cygrad.tensor(r.standard_normal((2, 3, 4, 3)), requires_grad=True)
    w = cygrad.tensor(r.standard_normal(3), requires_grad=True)
    b = cygrad.tensor(r.standard_normal(3), requires_grad=True)
    assert cygrad.gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), x, w, b)


def test_identical_channels_and_a_sample_alone_keep_their_bits():
    r = np.random.default_rng(2)
    x = r.standard_normal((4, 5, 7, 6)).astype(np.float32)
    x[:, 3] = x[:, 1]
    m = nn.InstanceNorm2d(5, affine=True)
    with cygrad.no_grad():
        m.weight[3] = m.weight[1]
        m.bias[3] = m.bias[1]
    y = m(cygrad.tensor(x)).numpy()
    assert np.array_equal(y[:, 1], y[:, 3])
    assert np.array_equal(m(cygrad.tensor(x[2:3])).numpy()[0], y[2])


def test_errors():
    with pytest.raises(ValueError, match="expected 3D or 4D input"):
        nn.InstanceNorm2d(3)(cygrad.zeros(2, 3))
    with pytest.raises(ValueError, match="to match num_features"):
        nn.InstanceNorm1d(3, affine=True)(cygrad.zeros(2, 4, 5))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        nn.InstanceNorm1d(3)(cygrad.zeros(2, 4, 5))
    assert any("does not match num_features" in str(w.message) for w in seen)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(cygrad.zeros(2, 3, 1))
