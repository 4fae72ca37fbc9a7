"""The 3-D family: F.conv3d, conv_transpose3d, max_pool3d, avg_pool3d and nn.Conv3d,
ConvTranspose3d, MaxPool3d, AvgPool3d, BatchNorm3d: values and gradients against torch
(skipped without it), gradcheck, identical filters and a sample alone keeping their bits, reprs
and errors."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


POOLS = [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
         {"kernel_size": (3, 2, 2), "stride": (1, 2, 1), "padding": (1, 0, 1)},
         {"kernel_size": 2, "stride": 2, "ceil_mode": True}]


@pytest.mark.parametrize("args", POOLS, ids=str)
def test_max_pool3d_matches_torch(args):
    torch = pytest.importorskip("torch")
    x = _x((2, 3, 7, 6, 5))
    for extra in ({}, {"dilation": (2, 1, 1)}):
        kw = {**args, **extra}
        t, c = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
        ty, cy = torch.nn.functional.max_pool3d(t, **kw), F.max_pool3d(c, **kw)
        assert np.array_equal(cy.numpy(), ty.detach().numpy())
        ty.sum().backward()
        cy.sum().backward()
        assert np.array_equal(c.grad.numpy(), t.grad.numpy())  # the same elements win


@pytest.mark.parametrize("args", POOLS, ids=str)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, 5])
def test_avg_pool3d_matches_torch(args, count_include_pad, divisor_override):
    torch = pytest.importorskip("torch")
    x = _x((2, 3, 7, 6, 5), 1)
    kw = {**args, "count_include_pad": count_include_pad, "divisor_override": divisor_override}
    t, c = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    ty, cy = torch.nn.functional.avg_pool3d(t, **kw), F.avg_pool3d(c, **kw)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13, atol=1e-15)
    g = _x(tuple(ty.shape), 2)
    (ty * torch.tensor(g)).sum().backward()
    (cy * cygrad.tensor(g)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kw", [{}, {"stride": 2, "padding": 1},
                                {"stride": (1, 2, 1), "padding": (2, 1, 0),
                                 "dilation": (2, 1, 2)},
                                {"padding": "same"}, {"groups": 2}], ids=str)
def test_conv3d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    x = _x((2, 4, 6, 5, 7), 3)
    w = _x((6, 4 // kw.get("groups", 1), 3, 2, 3), 4)
    b = _x(6, 5)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    cs = [cygrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    ty, cy = torch.nn.functional.conv3d(*ts, **kw), F.conv3d(*cs, **kw)
    assert tuple(cy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = _x(tuple(ty.shape), 6)
    (ty * torch.tensor(g)).sum().backward()
    (cy * cygrad.tensor(g)).sum().backward()
    for c, t in zip(cs, ts, strict=True):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-11, atol=1e-11)


def test_gradcheck():
    t = lambda a: cygrad.tensor(a, requires_grad=True)  # noqa: E731
    x, w, b = t(_x((1, 2, 4, 3, 4), 7)), t(_x((3, 2, 2, 2, 2), 8)), t(_x(3, 9))
    assert cygrad.gradcheck(lambda x, w, b: F.conv3d(x, w, b, stride=(2, 1, 1), padding=1),
                            x, w, b)
    assert cygrad.gradcheck(lambda x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False), x)
    assert cygrad.gradcheck(lambda x: F.max_pool3d(x, 2, 1), x)


def test_identical_filters_and_a_sample_alone():
    r = np.random.default_rng(10)
    x = r.standard_normal((3, 2, 5, 4, 6)).astype(np.float32)
    w = r.standard_normal((4, 2, 3, 3, 3)).astype(np.float32)
    w[3] = w[1]
    y = F.conv3d(cygrad.tensor(x), cygrad.tensor(w), padding=1).numpy()
    assert np.array_equal(y[:, 1], y[:, 3]) and not np.array_equal(y[:, 1], y[:, 2])
    alone = F.conv3d(cygrad.tensor(x[1:2]), cygrad.tensor(w), padding=1).numpy()
    assert np.array_equal(alone[0], y[1])


def test_modules():
    torch = pytest.importorskip("torch")
    pairs = [(nn.Conv3d(4, 6, 3, padding=1), torch.nn.Conv3d(4, 6, 3, padding=1)),
             (nn.MaxPool3d(2), torch.nn.MaxPool3d(2)),
             (nn.AvgPool3d(3, 2, 1), torch.nn.AvgPool3d(3, 2, 1)),
             (nn.BatchNorm3d(4), torch.nn.BatchNorm3d(4))]
    x = _x((2, 4, 5, 6, 7), 11).astype(np.float32)
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        np.testing.assert_allclose(ours(cygrad.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                                   atol=1e-5)
    with pytest.raises(ValueError, match="expected 5D input"):
        nn.BatchNorm3d(4)(cygrad.zeros(2, 4, 5, 6))
    with pytest.raises(NotImplementedError, match="return_indices"):
        F.max_pool3d(cygrad.zeros(1, 1, 4, 4, 4), 2, return_indices=True)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.max_pool3d(cygrad.zeros(1, 1, 1, 4, 4), 2)


@pytest.mark.parametrize("case", [(4, 6, 3, 2, 1, 1, 2, 1),
                                  (2, 3, (2, 3, 2), (2, 1, 2), (0, 1, 1), (1, 0, 1), 1, 1),
                                  (2, 2, 2, 1, 0, 0, 1, 2)], ids=str)
def test_conv_transpose3d_matches_torch(case):
    torch = pytest.importorskip("torch")
    cin, cout, k, s, p, op, g, d = case
    kk = (k,) * 3 if isinstance(k, int) else k
    arrays = (_x((2, cin, 3, 4, 3), 12), _x((cin, cout // g) + kk, 13), _x(cout, 14))
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    cs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
    ty = torch.nn.functional.conv_transpose3d(*ts, s, p, op, g, d)
    cy = F.conv_transpose3d(*cs, s, p, op, g, d)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    gy = _x(tuple(ty.shape), 15)
    (ty * torch.tensor(gy)).sum().backward()
    (cy * cygrad.tensor(gy)).sum().backward()
    for c, t in zip(cs, ts, strict=True):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-11, atol=1e-11)
    m, tm = nn.ConvTranspose3d(cin, cout, k, s, p, op, g, True, d), \
        torch.nn.ConvTranspose3d(cin, cout, k, s, p, op, g, True, d)
    assert repr(m) == repr(tm) and tuple(m.weight.shape) == tuple(tm.weight.shape)
