"""LayerNorm and BatchNorm: torch's values, gradients and module behaviour, gradchecks, and
tied channels that stay bitwise tied although the normalisation mixes every channel."""

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn

RNG = np.random.default_rng


def _t(a, grad=True):
    return cygrad.tensor(a, requires_grad=grad)


# ---------------------------------------------------------------------- LayerNorm

@pytest.mark.parametrize("shape,normalized", [((4, 6), (6,)), ((2, 3, 5), (5,)),
                                              ((2, 3, 4), (3, 4)), ((7,), (7,))])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_gradcheck(shape, normalized, affine):
    rng = RNG(0)
    x = _t(rng.standard_normal(shape))
    params = []
    if affine != "none":
        params.append(_t(rng.standard_normal(normalized)))
    if affine == "both":
        params.append(_t(rng.standard_normal(normalized)))

    def fn(x, *p):
        w = p[0] if p else None
        b = p[1] if len(p) > 1 else None
        return F.layer_norm(x, normalized, w, b, eps=1e-3)

    assert cygrad.gradcheck(fn, x, *params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_matches_torch(dtype, backend):
    torch = pytest.importorskip("torch")
    rng = RNG(1)
    x = rng.standard_normal((3, 5, 8)).astype(dtype) * 3 + 1
    w, b = rng.standard_normal(8).astype(dtype), rng.standard_normal(8).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    cx, cw, cb = _t(x), _t(w), _t(b)
    y = F.layer_norm(cx, (8,), cw, cb)
    y.backward(cygrad.tensor(g))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.layer_norm(tx, (8,), tw, tb)
    ty.backward(torch.tensor(g))
    assert y.dtype == cx.dtype and cx.grad.dtype == cx.dtype
    tol = 2e-5 if dtype == "float32" else 1e-12
    for ours, theirs in ((y, ty), (cx.grad, tx.grad), (cw.grad, tw.grad), (cb.grad, tb.grad)):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


def test_layer_norm_module_matches_torch_module():
    torch = pytest.importorskip("torch")
    for kwargs in ({}, {"bias": False}, {"elementwise_affine": False}, {"eps": 1e-3}):
        ours, theirs = nn.LayerNorm((3, 4), **kwargs), torch.nn.LayerNorm((3, 4), **kwargs)
        assert repr(ours) == repr(theirs)
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in
                                                           theirs.named_parameters()]
        for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert np.array_equal(p.numpy(), q.detach().numpy())
        x = RNG(2).standard_normal((2, 3, 4)).astype(np.float32)
        np.testing.assert_allclose(ours(cygrad.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), atol=2e-6)
    assert nn.LayerNorm(5).weight.dtype == cygrad.float32
    assert nn.LayerNorm(5, dtype=cygrad.float64).bias.dtype == cygrad.float64


def test_layer_norm_tied_channels_stay_tied(dtype):
    """Channels with equal inputs, gains and biases get bitwise equal outputs and gradients,
    though each row's statistics mix all channels; rows do not depend on the batch."""
    rng = RNG(3)
    base = rng.standard_normal((6, 3)).astype(dtype)
    x = np.concatenate([base, np.repeat(base[:, :1], 5, axis=1)], axis=1)  # channels 3..7 tied
    w = np.concatenate([rng.standard_normal(3), np.full(5, 0.7)]).astype(dtype)
    b = np.concatenate([rng.standard_normal(3), np.full(5, -0.2)]).astype(dtype)
    g = np.concatenate([rng.standard_normal((6, 3)),
                        np.repeat(rng.standard_normal((6, 1)), 5, axis=1)], 1).astype(dtype)
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        cx, cw, cb = _t(x), _t(w), _t(b)
        y = F.layer_norm(cx, (8,), cw, cb)
        y.backward(cygrad.tensor(g))
        for arr in (y.numpy(), cx.grad.numpy()):
            assert (arr[:, 3:] == arr[:, 3:4]).all()
        assert (cw.grad.numpy()[3:] == cw.grad.numpy()[3]).all()
        assert (cb.grad.numpy()[3:] == cb.grad.numpy()[3]).all()
        alone = F.layer_norm(_t(x[2:3]), (8,), cw, cb)
        assert np.array_equal(alone.numpy(), y.numpy()[2:3])


def test_layer_norm_bad_input():
    x = cygrad.zeros(2, 3)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(x, (4,))
    with pytest.raises(RuntimeError, match="weight"):
        F.layer_norm(x, (3,), cygrad.ones(4))
    with pytest.raises(RuntimeError, match="dtype"):
        F.layer_norm(x, (3,), cygrad.ones(3, dtype=cygrad.float64))
    with pytest.raises(RuntimeError, match="not implemented"):
        F.layer_norm(cygrad.tensor([[1, 2]]), (2,))


# ---------------------------------------------------------------------- BatchNorm

@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (3, 3, 2, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(shape, training):
    rng = RNG(4)
    x = _t(rng.standard_normal(shape))
    w, b = _t(rng.standard_normal(3)), _t(rng.standard_normal(3))
    rm, rv = cygrad.tensor(rng.standard_normal(3)), cygrad.tensor(rng.uniform(0.5, 2, 3))

    def fn(x, w, b):
        if training:
            return F.batch_norm(x, None, None, w, b, training=True, eps=1e-3)
        return F.batch_norm(x, rm, rv, w, b, training=False)

    assert cygrad.gradcheck(fn, x, w, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(6, 4), (5, 4, 7), (3, 4, 5, 5)])
def test_batch_norm_matches_torch(dtype, shape, backend):
    torch = pytest.importorskip("torch")
    rng = RNG(5)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    w, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    tol = 5e-5 if dtype == "float32" else 1e-12
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    crm, crv, trm, trv = (cygrad.tensor(rm), cygrad.tensor(rv), torch.tensor(rm),
                          torch.tensor(rv))
    for training in (True, True, False):
        cx, cw, cb = _t(x), _t(w), _t(b)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.batch_norm(cx, crm, crv, cw, cb, training, 0.2)
        ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, 0.2)
        y.backward(cygrad.tensor(g))
        ty.backward(torch.tensor(g))
        for ours, theirs in ((y, ty), (cx.grad, tx.grad), (cw.grad, tw.grad),
                             (cb.grad, tb.grad), (crm, trm), (crv, trv)):
            np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=tol,
                                       atol=tol)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (8, 3)), ("BatchNorm1d", (8, 3, 5)),
                                       ("BatchNorm2d", (4, 3, 5, 5))])
@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"affine": False},
                                    {"track_running_stats": False}, {"bias": False},
                                    {"momentum": 0.5, "eps": 1e-3}])
def test_batch_norm_module_trains_and_evaluates_as_torch(cls, shape, kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, cls)(3, **kwargs), getattr(torch.nn, cls)(3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    rng = RNG(6)
    for step in range(4):
        mode = "eval" if step == 3 else "train"
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.standard_normal(shape).astype(np.float32) * (step + 1)
        cx, tx = _t(x), torch.tensor(x, requires_grad=True)
        y, ty = ours(cx), theirs(tx)
        g = rng.standard_normal(shape).astype(np.float32)
        y.backward(cygrad.tensor(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
        for (name, a), (_, b) in zip(ours.named_buffers(), theirs.named_buffers()):
            assert a.dtype.name == str(b.dtype).replace("torch.", ""), name
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=name)


def test_batch_norm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [RNG(i).standard_normal((5, 2)) for i in range(3)]
    for x in xs:
        bn(cygrad.tensor(x, dtype=cygrad.float32))
    assert int(bn.num_batches_tracked) == 3
    means = np.mean([x.mean(0) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), means, rtol=1e-5, atol=1e-6)
    variances = np.mean([np.r_[1.0, 1.0] * 0 + x.var(0, ddof=1) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_var.numpy(), variances, rtol=1e-5)


def test_batch_norm_eval_uses_running_stats_and_keeps_them():
    bn = nn.BatchNorm1d(2)
    bn.running_mean.numpy()[:] = [1.0, -1.0]
    bn.running_var.numpy()[:] = [4.0, 0.25]
    bn.eval()
    y = bn(cygrad.tensor([[3.0, 0.0], [1.0, -1.0]]))
    np.testing.assert_allclose(y.numpy(), [[2 / np.sqrt(4 + 1e-5), 1 / np.sqrt(0.25 + 1e-5)],
                                           [0.0, 0.0]], rtol=1e-6)
    assert int(bn.num_batches_tracked) == 0
    assert np.array_equal(bn.running_mean.numpy(), [1.0, -1.0])


def test_batch_norm_tied_channels_stay_tied(dtype):
    """Channels with equal inputs, gains and biases: bitwise equal outputs, gradients and
    running statistics, on any thread count."""
    rng = RNG(7)
    base = rng.standard_normal((6, 2, 3, 3))
    x = np.concatenate([base, np.repeat(base[:, :1], 4, axis=1)], axis=1).astype(dtype)
    g = np.concatenate([rng.standard_normal((6, 2, 3, 3)),
                        np.repeat(rng.standard_normal((6, 1, 3, 3)), 4, axis=1)], 1)
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        bn = nn.BatchNorm2d(6, dtype=cygrad.float64 if dtype == np.float64 else None)
        with cygrad.no_grad():
            bn.weight[2:] = 1.5
            bn.bias[2:] = 0.25
        cx = _t(x)
        y = bn(cx)
        y.backward(cygrad.tensor(g.astype(dtype)))
        for arr in (y.numpy(), cx.grad.numpy()):
            assert (arr[:, 2:] == arr[:, 2:3]).all()
        for v in (bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var):
            assert (v.numpy()[2:] == v.numpy()[2]).all()


def test_batch_norm_bad_input():
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(cygrad.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(cygrad.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(cygrad.zeros(1, 3))
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements"):
        F.batch_norm(cygrad.zeros(4, 3), cygrad.zeros(2), cygrad.ones(2), training=True)
    with pytest.raises(RuntimeError, match="evaluation mode"):
        F.batch_norm(cygrad.zeros(4, 3), None, None, training=False)
