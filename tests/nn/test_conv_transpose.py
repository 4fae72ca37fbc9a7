"""F.conv_transpose1d / conv_transpose2d and nn.ConvTranspose1d / ConvTranspose2d: values and
gradients against torch (skipped without it), gradcheck, the exactness contract (identical
filters give identical output channels, a sample alone has its bits inside a batch, at one
thread or two), the modules' init, repr and output_size, torch's errors, and a DCGAN-style
generator whose training steps track torch's."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn

# (C_in, C_out, kernel, stride, padding, output_padding, groups, dilation, H, W)
CASES = [
    (4, 6, 3, 2, 1, 1, 2, 1, 5, 6),
    (3, 2, 4, 2, 1, 0, 1, 1, 4, 4),  # DCGAN's upsampling layer
    (2, 3, 3, 1, 0, 0, 1, 2, 6, 5),
    (2, 2, 5, 3, 4, 2, 1, 1, 3, 4),  # padding past the kernel's reach: a crop
    (6, 3, (2, 3), (1, 2), (0, 1), (0, 1), 3, (2, 1), 4, 3),
]


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _operands(case, seed=0):
    cin, cout, k, s, p, op, g, d, h, w = case
    kh, kw = (k, k) if isinstance(k, int) else k
    return (_rand((2, cin, h, w), seed), _rand((cin, cout // g, kh, kw), seed + 1),
            _rand(cout, seed + 2))


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_torch(case):
    torch = pytest.importorskip("torch")
    _, _, _, s, p, op, g, d, _, _ = case
    x, w, b = _operands(case)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    cx, cw, cb = (cygrad.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g, d)
    cy = F.conv_transpose2d(cx, cw, cb, s, p, op, g, d)
    assert tuple(cy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    gy = _rand(tuple(ty.shape), 9)
    (ty * torch.tensor(gy)).sum().backward()
    (cy * cygrad.tensor(gy)).sum().backward()
    for ours, theirs in ((cx, tx), (cw, tw), (cb, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12,
                                   atol=1e-12)


def test_one_dimensional_and_unbatched_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = _rand((2, 3, 7), 1), _rand((3, 2, 4), 2), _rand(2, 3)
    for args in ((2, 1, 1, 1, 1), (3, 0, 2, 1, 2), (1, 2, 0, 1, 1)):
        want = tf.conv_transpose1d(torch.tensor(x), torch.tensor(w), torch.tensor(b), *args)
        got = F.conv_transpose1d(cygrad.tensor(x), cygrad.tensor(w), cygrad.tensor(b), *args)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
    x2, w2 = _rand((3, 5, 4), 4), _rand((3, 2, 3, 3), 5)
    want = tf.conv_transpose2d(torch.tensor(x2), torch.tensor(w2), stride=2)
    got = F.conv_transpose2d(cygrad.tensor(x2), cygrad.tensor(w2), stride=2)
    assert tuple(got.shape) == (2, 11, 9)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_gradcheck():
    t = lambda a: cygrad.tensor(a, requires_grad=True)  # noqa: E731
    x, w, b = _operands(CASES[0], 3)
    assert cygrad.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2), t(x),
                            t(w), t(b))
    x, w, b = _operands(CASES[4], 4)
    assert cygrad.gradcheck(lambda x, w, b: F.conv_transpose2d(
        x, w, b, (1, 2), (0, 1), (0, 1), 3, (2, 1)), t(x), t(w), t(b))
    x1, w1 = t(_rand((2, 2, 5), 6)), t(_rand((2, 3, 3), 7))
    assert cygrad.gradcheck(lambda x, w: F.conv_transpose1d(x, w, stride=3, padding=1,
                                                            output_padding=2), x1, w1)


def _tied(threads, batch):
    """Output channels 1 and 4 have identical filters (and biases); one thread or two."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 7, 5)).astype(np.float32)[:batch]
    w = rng.standard_normal((6, 5, 4, 4)).astype(np.float32)
    w[:, 4] = w[:, 1]
    b = rng.standard_normal(5).astype(np.float32)
    b[4] = b[1]
    before = cygrad.get_num_threads()
    cygrad.set_num_threads(threads)
    try:
        xt = cygrad.tensor(x, requires_grad=True)
        wt = cygrad.tensor(w, requires_grad=True)
        y = F.conv_transpose2d(xt, wt, cygrad.tensor(b), stride=2, padding=1)
        (y * y).sum().backward()
    finally:
        cygrad.set_num_threads(before)
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy()


def test_identical_filters_give_identical_channels_at_any_batch_and_thread_count():
    y, dx, dw = _tied(1, 3)
    assert np.array_equal(y[:, 1], y[:, 4])
    assert np.array_equal(dw[:, 1], dw[:, 4])
    assert not np.array_equal(y[:, 1], y[:, 2])
    y2, dx2, dw2 = _tied(2, 3)
    for a, b in ((y, y2), (dx, dx2), (dw, dw2)):
        assert np.array_equal(a, b)
    alone, _, _ = _tied(1, 1)
    assert np.array_equal(alone[0], y[0])  # the first sample's bits, alone or in a batch


def test_module_init_repr_and_output_size():
    torch = pytest.importorskip("torch")
    cygrad.manual_seed(0)
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    t = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert repr(m) == repr(t)
    assert tuple(m.weight.shape) == (4, 3, 3, 3) and m.transposed
    bound = 1 / np.sqrt(3 * 9)  # fan_in = out_channels / groups * kernel size, as torch
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.bias.numpy()).max() <= bound
    assert np.abs(m.weight.numpy()).max() > 0.8 * bound
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = _rand((2, 4, 5, 5), 1).astype(np.float32)
    np.testing.assert_allclose(m(cygrad.tensor(x)).numpy(),
                               t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    for size in ((9, 10), (10, 9), (2, 6, 10, 10)):
        got = m(cygrad.tensor(x), output_size=size)
        assert tuple(got.shape) == tuple(t(torch.tensor(x), output_size=size).shape)
    with pytest.raises(ValueError, match=r"valid sizes range from \[9, 9\] to \[10, 10\]"):
        m(cygrad.tensor(x), output_size=(13, 10))
    m1, t1 = nn.ConvTranspose1d(3, 2, 4, stride=2, bias=False), \
        torch.nn.ConvTranspose1d(3, 2, 4, stride=2, bias=False)
    assert repr(m1) == repr(t1) and m1.bias is None
    assert tuple(m1(cygrad.zeros(1, 3, 5)).shape) == (1, 2, 12)


def test_errors():
    x, w = cygrad.zeros(1, 3, 4, 4), cygrad.zeros(4, 2, 3, 3)
    with pytest.raises(RuntimeError, match=r"expected input\[1, 3, 4, 4\] to have 4 channels"):
        F.conv_transpose2d(x, w)
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride "
                                           "or dilation"):
        F.conv_transpose2d(cygrad.zeros(1, 4, 4, 4), w, stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.conv_transpose2d(cygrad.zeros(1, 4, 1, 1), w, padding=2)
    with pytest.raises(RuntimeError, match="expected bias to be 1-dimensional with 2 elements"):
        F.conv_transpose2d(cygrad.zeros(1, 4, 4, 4), w, cygrad.zeros(3))
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match="padding"):
        nn.ConvTranspose2d(2, 2, 3, padding="same")
    with pytest.raises(RuntimeError, match="Expected 3D"):
        F.conv_transpose2d(cygrad.zeros(4), w)


def _generator(lib, dtype):
    """A small DCGAN generator (ConvTranspose2d, BatchNorm2d, ReLU, Tanh), as in
    pytorch/examples' dcgan with fewer channels."""
    nn_ = lib.nn
    return nn_.Sequential(
        nn_.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), nn_.BatchNorm2d(16), nn_.ReLU(True),
        nn_.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn_.BatchNorm2d(8), nn_.ReLU(True),
        nn_.ConvTranspose2d(8, 3, 4, 2, 1, bias=False), nn_.Tanh()).to(dtype)


def test_dcgan_generator_steps_track_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tg = _generator(torch, torch.float64)
    cg = _generator(cygrad, cygrad.float64)
    cg.load_state_dict({k: v.detach().numpy() for k, v in tg.state_dict().items()})
    topt = torch.optim.Adam(tg.parameters(), lr=2e-3, betas=(0.5, 0.999))
    copt = cygrad.optim.Adam(cg.parameters(), lr=2e-3, betas=(0.5, 0.999))
    z = _rand((4, 8, 1, 1), 3)
    target = np.tanh(_rand((4, 3, 16, 16), 4))
    for _ in range(3):
        losses = []
        for lib, g, opt in ((torch, tg, topt), (cygrad, cg, copt)):
            opt.zero_grad()
            out = g(lib.tensor(z))
            loss = ((out - lib.tensor(target)) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[1] == pytest.approx(losses[0], rel=1e-10)
    for (name, p), q in zip(cg.named_parameters(), tg.parameters(), strict=True):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)
