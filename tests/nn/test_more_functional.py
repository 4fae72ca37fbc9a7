"""local_response_norm, lp_pool1d/2d, pdist, rrelu, gumbel_softmax and their modules
(LocalResponseNorm, LPPool1d/2d, RReLU, Softmax2d): against torch where the result is not
random (skipped without it), gradcheck, and the random ones' laws and reproducibility."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn


def _x(shape, seed=0, positive=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.abs(x) + 0.1 if positive else x


def _both(fn_name, x, *args, **kwargs):
    torch = pytest.importorskip("torch")
    t, c = torch.tensor(x, requires_grad=True), cygrad.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, fn_name)(t, *args, **kwargs)
    cy = getattr(F, fn_name)(c, *args, **kwargs)
    assert tuple(cy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = _x(tuple(ty.shape), 9)
    (ty * torch.tensor(g)).sum().backward()
    (cy * cygrad.tensor(g)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 7, 5), (2, 7, 5, 4), (2, 6, 3, 2, 2)], ids=str)
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_local_response_norm_matches_torch(shape, size):
    _both("local_response_norm", _x(shape, size), size, 1e-2, 0.75, 2.0)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), ((2, 3), (1, 2))], ids=str)
def test_lp_pool_matches_torch(p, kernel, stride):
    _both("lp_pool2d", _x((2, 3, 7, 8), 1, positive=True), p, kernel, stride)
    if isinstance(kernel, int):
        _both("lp_pool1d", _x((2, 3, 9), 2, positive=True), p, kernel, stride)


@pytest.mark.parametrize("p", [2, 1, 3, 0.5])
def test_pdist_matches_torch(p):
    _both("pdist", _x((6, 4), 3), p)


def test_pdist_of_equal_rows_has_zero_gradient():
    x = cygrad.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], dtype=cygrad.float64,
                      requires_grad=True)
    d = F.pdist(x)
    assert d.numpy()[0] == 0.0
    d.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_gradcheck():
    t = lambda a: cygrad.tensor(a, requires_grad=True)  # noqa: E731
    assert cygrad.gradcheck(lambda x: F.local_response_norm(x, 3, 0.1, 0.75, 1.0),
                            t(_x((2, 5, 3), 4)))
    assert cygrad.gradcheck(lambda x: F.lp_pool2d(x, 3.0, 2), t(_x((1, 2, 4, 4), 5, True)))
    assert cygrad.gradcheck(F.pdist, t(_x((5, 3), 6)))


def test_rrelu():
    x = cygrad.tensor(_x((4000,), 7))
    ev = F.rrelu(x, 0.1, 0.3, training=False).numpy()
    neg = x.numpy() < 0
    np.testing.assert_allclose(ev[neg], x.numpy()[neg] * 0.2, rtol=1e-15)
    cygrad.manual_seed(3)
    a = cygrad.tensor(x.numpy(), requires_grad=True)
    tr = F.rrelu(a, 0.1, 0.3, training=True)
    slopes = tr.numpy()[neg] / x.numpy()[neg]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and 0.19 < slopes.mean() < 0.21
    assert np.array_equal(tr.numpy()[~neg], x.numpy()[~neg])
    tr.sum().backward()
    np.testing.assert_allclose(a.grad.numpy()[neg], slopes, rtol=1e-12)
    cygrad.manual_seed(3)
    assert np.array_equal(F.rrelu(x, 0.1, 0.3, training=True).numpy(), tr.numpy())
    m = nn.RReLU(0.1, 0.3)
    assert repr(m) == "RReLU(lower=0.1, upper=0.3)"
    m.eval()
    assert np.array_equal(m(x).numpy(), ev)
    y = cygrad.tensor([-1.0, 2.0])
    assert F.rrelu_(y) is y and y.tolist()[1] == 2.0


def test_gumbel_softmax():
    logits = cygrad.tensor(np.log([[0.1, 0.2, 0.7]]).repeat(20000, 0), requires_grad=True)
    cygrad.manual_seed(0)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.numpy().sum(1), 1, rtol=1e-6)
    counts = np.bincount(soft.numpy().argmax(1), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.1, 0.2, 0.7], atol=0.015)  # argmax ~ softmax(logits)
    cygrad.manual_seed(0)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    assert np.array_equal(hard.numpy().argmax(1), soft.numpy().argmax(1))  # same draws
    assert set(np.unique(hard.numpy())) <= {0.0, 1.0} and (hard.numpy().sum(1) == 1).all()
    (hard * cygrad.tensor(np.arange(3.0))).sum().backward()
    assert np.abs(logits.grad.numpy()).sum() > 0  # the soft sample's gradient passes through


def test_softmax2d_and_errors():
    x = cygrad.tensor(_x((2, 3, 4, 5), 8))
    np.testing.assert_allclose(nn.Softmax2d()(x).numpy(), F.softmax(x, -3).numpy())
    with pytest.raises(ValueError, match="expected input to be 3D or 4D"):
        nn.Softmax2d()(cygrad.zeros(3, 4))
    with pytest.raises(ValueError, match="Expected 3D or higher"):
        F.local_response_norm(cygrad.zeros(3, 4), 2)
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors"):
        F.pdist(cygrad.zeros(3))
    assert repr(nn.LocalResponseNorm(3)) == "LocalResponseNorm(3, alpha=0.0001, beta=0.75, k=1.0)"
    assert repr(nn.LPPool1d(2, 3)) == \
        "LPPool1d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"
    assert tuple(nn.LPPool2d(2, 2)(cygrad.ones(1, 1, 4, 4)).shape) == (1, 1, 2, 2)


def test_channel_shuffle_and_max_unpool_match_torch():
    torch = pytest.importorskip("torch")
    x = _x((2, 6, 3, 2), 30)
    for groups in (1, 2, 3):
        np.testing.assert_array_equal(
            F.channel_shuffle(cygrad.tensor(x), groups).numpy(),
            torch.nn.functional.channel_shuffle(torch.tensor(x), groups).numpy())
    assert repr(nn.ChannelShuffle(3)) == repr(torch.nn.ChannelShuffle(3))
    with pytest.raises(RuntimeError, match="divisible by groups"):
        F.channel_shuffle(cygrad.tensor(x), 4)
    a = _x((2, 3, 5, 6), 31)
    tp, ti = torch.nn.functional.max_pool2d(torch.tensor(a, requires_grad=True), 2,
                                            return_indices=True)
    c = cygrad.tensor(a, requires_grad=True)
    cp, ci = F.max_pool2d(c, 2, return_indices=True)
    for size in (None, (5, 6), [2, 3, 5, 7]):
        want = torch.nn.functional.max_unpool2d(tp, ti, 2, output_size=size)
        got = F.max_unpool2d(cp, ci, 2, output_size=size)
        np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
    g = _x((2, 3, 4, 6), 32)
    (nn.MaxUnpool2d(2)(cp, ci) * cygrad.tensor(g)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    tpool, tidx = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    (torch.nn.functional.max_unpool2d(tpool, tidx, 2) * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), tx.grad.numpy())
    assert repr(nn.MaxUnpool2d(2)) == repr(torch.nn.MaxUnpool2d(2))
    b = _x((2, 3, 9), 33)
    tp1, ti1 = torch.nn.functional.max_pool1d(torch.tensor(b), 3, return_indices=True)
    cp1, ci1 = F.max_pool1d(cygrad.tensor(b), 3, return_indices=True)
    np.testing.assert_array_equal(nn.MaxUnpool1d(3)(cp1, ci1).numpy(),
                                  torch.nn.MaxUnpool1d(3)(tp1, ti1).numpy())
