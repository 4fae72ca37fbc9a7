"""Conv1d/Conv2d and the pools through nn and nn.functional: against PyTorch (forward, every
gradient, indices; skipped without torch), gradcheck, the exactness contract (identical
filters and channels, batch and thread invariance, both conv paths), PyTorch's exception types,
the modules' attributes, init and repr."""

import math

import numpy as np
import pytest

import cygrad
import cygrad.nn.functional as F
from cygrad import nn
from cygrad.ops import conv as conv_ops

BACKENDS = [b for b in ("cython", "numpy") if b in cygrad.backend.available()]


def grad(t):
    """t's gradient as an array (an array today, a Tensor once .grad becomes one)."""
    g = t.grad
    return g.numpy() if isinstance(g, cygrad.Tensor) else np.asarray(g)


def rand(shape, seed, dtype=np.float64, ties=False):
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(-3, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def differential(fn, torch_fn, arrays, backend, indices=False, rtol=1e-10):
    """fn on cygrad float64 tensors vs torch_fn on torch tensors: the output, and the gradient
    of every input for a random weighting of the output."""
    torch = pytest.importorskip("torch")
    with cygrad.backend.using(backend):
        xs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
        out = fn(*xs)
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        tout = torch_fn(*ts)
        if indices:
            (out, idx), (tout, tidx) = out, tout
            assert idx.numpy().dtype == np.int64
            np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        assert out.shape == tuple(tout.shape)
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=1e-12)
        weights = rand(out.shape, 99)
        (out * cygrad.tensor(weights)).sum().backward()
        (tout * torch.tensor(weights)).sum().backward()
        for x, t in zip(xs, ts):
            np.testing.assert_allclose(grad(x), t.grad.numpy(), rtol=rtol, atol=1e-11)


# ---------------------------------------------------------------------- convolution vs torch

CONV2D = [  # (x shape, weight shape, kwargs)
    ((2, 3, 9, 7), (4, 3, 3, 3), {}),
    ((2, 3, 9, 7), (4, 3, 3, 2), {"stride": (2, 1), "padding": (1, 2)}),
    ((1, 2, 10, 11), (3, 2, 2, 3), {"stride": 3, "padding": 2, "dilation": (2, 3)}),
    ((2, 4, 8, 8), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((2, 6, 7, 9), (6, 1, 3, 3), {"groups": 6, "stride": 2}),  # depthwise
    ((3, 2, 6, 6), (4, 2, 3, 3), {"padding": "same"}),
    ((2, 2, 6, 7), (3, 2, 2, 4), {"padding": "same", "dilation": (1, 2)}),  # uneven padding
    ((2, 2, 6, 7), (3, 2, 4, 2), {"padding": "valid"}),
    ((2, 3, 30, 30), (5, 3, 3, 3), {"padding": 1}),  # image by image (900 positions)
    ((2, 4, 20, 20), (6, 2, 5, 3), {"groups": 2, "dilation": 2, "padding": (0, 3)}),
    ((0, 3, 5, 5), (2, 3, 3, 3), {}),  # an empty batch
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D)
def test_conv2d_matches_torch(x_shape, w_shape, kwargs, bias, backend):
    torch = pytest.importorskip("torch")
    arrays = [rand(x_shape, 1), rand(w_shape, 2)] + ([rand(w_shape[:1], 3)] if bias else [])
    differential(lambda *a: F.conv2d(*a, **kwargs),
                 lambda *a: torch.nn.functional.conv2d(*a, **kwargs), arrays, backend)


CONV1D = [
    ((2, 3, 11), (4, 3, 3), {}),
    ((2, 4, 80), (6, 2, 5), {"stride": 2, "padding": 3, "dilation": 2, "groups": 2}),
    ((3, 2, 9), (3, 2, 4), {"padding": "same"}),
    ((2, 2, 9), (2, 2, 3), {"padding": (1,), "stride": (3,)}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D)
def test_conv1d_matches_torch(x_shape, w_shape, kwargs, backend):
    torch = pytest.importorskip("torch")
    arrays = [rand(x_shape, 4), rand(w_shape, 5), rand(w_shape[:1], 6)]
    differential(lambda *a: F.conv1d(*a, **kwargs),
                 lambda *a: torch.nn.functional.conv1d(*a, **kwargs), arrays, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unbatched_input_matches_torch(backend):
    torch = pytest.importorskip("torch")
    differential(lambda x, w, b: F.conv2d(x, w, b, padding=1),
                 lambda x, w, b: torch.nn.functional.conv2d(x, w, b, padding=1),
                 [rand((3, 6, 5), 1), rand((2, 3, 3, 3), 2), rand(2, 3)], backend)
    differential(lambda x, w: F.conv1d(x, w, stride=2), lambda x, w: torch.nn.functional.conv1d(
        x, w, stride=2), [rand((3, 9), 1), rand((2, 3, 3), 2)], backend)


def test_float32_within_torch_error():
    torch = pytest.importorskip("torch")
    x, w, b = rand((4, 3, 16, 16), 1), rand((8, 3, 3, 3), 2), rand(8, 3)
    ref = torch.nn.functional.conv2d(*map(torch.tensor, (x, w, b)), padding=1).numpy()
    ours = F.conv2d(*(cygrad.tensor(a.astype(np.float32)) for a in (x, w, b)), padding=1)
    theirs = torch.nn.functional.conv2d(*(torch.tensor(a.astype(np.float32)) for a in (x, w, b)),
                                        padding=1).numpy()
    assert ours.dtype == np.float32
    assert np.abs(ours.numpy() - ref).max() <= 2 * max(np.abs(theirs - ref).max(), 1e-6)


# ---------------------------------------------------------------------- pools vs torch

MAX_POOL2D = [
    (2, {}), ((2, 3), {"stride": 1}), (3, {"stride": 2, "padding": 1}),
    ((3, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (2, 1)}),
    (2, {"ceil_mode": True}), (3, {"stride": 2, "padding": 1, "ceil_mode": True}),
    ((2, 2), {"stride": 3, "dilation": 2, "padding": 1, "ceil_mode": True}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("kernel, kwargs", MAX_POOL2D)
def test_max_pool2d_matches_torch(kernel, kwargs, ties, backend):
    torch = pytest.importorskip("torch")
    x = rand((2, 3, 9, 8), 7, ties=ties)
    differential(lambda t: F.max_pool2d(t, kernel, return_indices=True, **kwargs),
                 lambda t: torch.nn.functional.max_pool2d(t, kernel, return_indices=True,
                                                          **kwargs), [x], backend, indices=True)
    differential(lambda t: F.max_pool2d(t, kernel, **kwargs),  # unbatched
                 lambda t: torch.nn.functional.max_pool2d(t, kernel, **kwargs), [x[0]], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_nan_and_infinity_match_torch(backend):
    torch = pytest.importorskip("torch")
    x = rand((1, 2, 6, 6), 8, ties=True)
    x[0, 0, 1, 1] = x[0, 0, 2, 3] = x[0, 1, 4, 4] = np.nan
    x[0, 1, :2, :2] = -np.inf
    with cygrad.backend.using(backend):
        y, i = F.max_pool2d(cygrad.tensor(x), 3, stride=1, padding=1, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, stride=1, padding=1,
                                            return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


AVG_POOL2D = [
    (2, {}), ((3, 2), {"stride": 1}), (3, {"stride": 2, "padding": 1}),
    (3, {"stride": 2, "padding": 1, "count_include_pad": False}),
    (3, {"stride": 2, "padding": 1, "ceil_mode": True}),
    ((2, 3), {"stride": (3, 2), "padding": (1, 1), "ceil_mode": True,
              "count_include_pad": False}),
    (2, {"stride": 1, "divisor_override": 3}), (3, {"padding": 1, "divisor_override": -2}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel, kwargs", AVG_POOL2D)
def test_avg_pool2d_matches_torch(kernel, kwargs, backend):
    torch = pytest.importorskip("torch")
    for x in (rand((2, 3, 9, 8), 9), rand((3, 7, 7), 10)):
        differential(lambda t: F.avg_pool2d(t, kernel, **kwargs),
                     lambda t: torch.nn.functional.avg_pool2d(t, kernel, **kwargs), [x], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [3, (2, 5), (None, 4), (7, 8), (9, 11), 1])
def test_adaptive_pools_match_torch(size, backend):
    torch = pytest.importorskip("torch")
    x = rand((2, 3, 7, 8), 11, ties=True)
    tf = torch.nn.functional
    differential(lambda t: F.adaptive_avg_pool2d(t, size),
                 lambda t: tf.adaptive_avg_pool2d(t, size), [x], backend)
    differential(lambda t: F.adaptive_max_pool2d(t, size, return_indices=True),
                 lambda t: tf.adaptive_max_pool2d(t, size, return_indices=True), [x], backend,
                 indices=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_1d_pools_match_torch(backend):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rand((2, 3, 13), 12, ties=True)
    for a in [(3,), (3, 2, 1), (4, 3, 2, 1, True)]:
        differential(lambda t, a=a: F.max_pool1d(t, *a, return_indices=True),
                     lambda t, a=a: tf.max_pool1d(t, *a, return_indices=True), [x], backend,
                     indices=True)
    for a in [(3,), (3, 2, 1), (4, 3, 2, True, False)]:
        differential(lambda t, a=a: F.avg_pool1d(t, *a), lambda t, a=a: tf.avg_pool1d(t, *a),
                     [x], backend)
    differential(lambda t: F.adaptive_avg_pool1d(t, 5), lambda t: tf.adaptive_avg_pool1d(t, 5),
                 [x[0]], backend)
    differential(lambda t: F.adaptive_max_pool1d(t, 4, True),
                 lambda t: tf.adaptive_max_pool1d(t, 4, True), [x], backend, indices=True)


# ---------------------------------------------------------------------- gradcheck

def test_gradcheck():
    t = lambda a: cygrad.tensor(a, requires_grad=True)  # noqa: E731
    x, w, b = t(rand((2, 4, 6, 5), 1)), t(rand((4, 2, 3, 2), 2)), t(rand(4, 3))
    assert cygrad.gradcheck(lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 2), (1, 2), 2), x, w, b)
    assert cygrad.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding="same", groups=2), x, w, b)
    x1, w1 = t(rand((2, 2, 9), 4)), t(rand((3, 2, 3), 5))
    assert cygrad.gradcheck(lambda x, w: F.conv1d(x, w, stride=2, padding=2, dilation=2), x1, w1)
    # distinct values: the maximum is not at a tie, where the gradient is not defined
    xp = t(np.random.default_rng(6).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0)
    assert cygrad.gradcheck(lambda x: F.max_pool2d(x, (3, 2), 2, 1, (1, 2), True), xp)
    assert cygrad.gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), xp)
    assert cygrad.gradcheck(lambda x: F.avg_pool2d(x, 2, 1, divisor_override=3), xp)
    assert cygrad.gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), xp)
    assert cygrad.gradcheck(lambda x: F.adaptive_max_pool2d(x, (2, 4)), xp)
    assert cygrad.gradcheck(lambda x: F.max_pool1d(x[0], 3, 2, 1), xp)


# ---------------------------------------------------------------------- exactness

def twin_filters(dtype, groups=1, size=12, per_group=4):
    """A conv weight whose filter 1 is a copy of filter 0 (same group) and, with groups,
    filter per_group + 1 a copy of filter 0 (its own group) over channels that copy group 0's."""
    cg = 2
    w = rand((per_group * groups, cg, 3, 3), 1, dtype)
    w[1] = w[0]
    b = rand(per_group * groups, 2, dtype)
    b[1] = b[0]
    if groups > 1:
        w[per_group + 1], b[per_group + 1] = w[0], b[0]
    x = rand((5, cg * groups, size, size), 3, dtype)
    if groups > 1:
        x[:, cg:2 * cg] = x[:, :cg]
    return x, w, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("size", [5, 12])  # one wide product / image by image
def test_identical_filters_give_identical_bits(dtype, groups, size, parallel_small):
    x, w, b = twin_filters(dtype, groups, size)
    pairs = [(0, 1)] + ([(0, 5)] if groups > 1 else [])
    results = []
    for threads in (1, 2):
        cygrad.set_num_threads(threads)
        xt, wt, bt = (cygrad.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, padding=1, groups=groups)
        g = rand(y.shape, 4, dtype)
        for i, j in pairs:
            g[:, j] = g[:, i]
            assert np.array_equal(y.numpy()[:, i], y.numpy()[:, j])
        (y * cygrad.tensor(g)).sum().backward()
        for i, j in pairs:
            assert np.array_equal(grad(wt)[i], grad(wt)[j])
            assert grad(bt)[i] == grad(bt)[j]
        assert not np.array_equal(grad(wt)[0], grad(wt)[2])
        results.append((y.numpy(), grad(xt), grad(wt), grad(bt)))
    for a, b_ in zip(*results):
        assert np.array_equal(a, b_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [5, 12])
def test_a_sample_has_the_same_bits_alone_and_in_a_batch(dtype, size):
    x, w, b = twin_filters(dtype, 2, size)
    wt, bt = cygrad.tensor(w), cygrad.tensor(b)
    g = rand((5, 8, size, size), 5, dtype)
    seen = []
    for start, stop in ((0, 5), (3, 4), (2, 5)):  # sample 3 at positions 3, 0 and 1
        xt = cygrad.tensor(x[start:stop], requires_grad=True)
        y = F.conv2d(xt, wt, bt, padding=1, groups=2)
        (y * cygrad.tensor(g[start:stop])).sum().backward()
        seen.append((y.numpy()[3 - start], grad(xt)[3 - start]))
    for y3, dx3 in seen[1:]:
        assert np.array_equal(y3, seen[0][0]) and np.array_equal(dx3, seen[0][1])


@pytest.mark.parametrize("groups, stride", [(2, (1, 2)), (1, (1, 2)), (1, 1)])
def test_every_path_gives_the_same_bits(monkeypatch, groups, stride):
    """Chunks of 1 and 3 images and one wide product; without groups the chunked forward runs
    image by image through conv_image (stride 1: from a padded copy, "flat")."""
    x, w, b = twin_filters(np.float32, 2, 12)
    if groups == 1:
        w = np.concatenate([w, w[:, ::-1]], axis=1)  # (O, C, kh, kw): every input channel
    x = np.concatenate([x, x[::-1] * 0.5])  # 2n images: chunks of 1, 3 and all of them
    sw = stride if isinstance(stride, int) else stride[1]
    patches = w.shape[1] * 9 * 10 * (12 // sw) * 4  # (C/groups * kh * kw) * P * itemsize
    runs = []
    for limit in (1, 3 * patches, 10**12):  # image by image / 3 images / one wide product
        monkeypatch.setattr(conv_ops, "BATCH_BYTES", limit)
        xt, wt, bt = (cygrad.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, stride=stride, padding=1, dilation=(2, 1), groups=groups)
        assert y.grad_fn is not None and y.shape[2:] == (10, 12 // sw)
        (y * cygrad.tensor(rand(y.shape, 6, np.float32))).sum().backward()
        runs.append((y.numpy(), grad(xt), grad(wt), grad(bt)))
    for y2, dx2, dw2, db2 in runs[1:]:
        y1, dx1, dw1, db1 = runs[0]
        for a, b_ in ((y1, y2), (dx1, dx2), (db1, db2)):
            assert np.array_equal(a, b_)
        # dW: a chain over the chunks of each chunk's k tree (one product: the tree over all
        # n*p positions): each exact (the same for every filter), equal to rounding
        np.testing.assert_allclose(dw1, dw2, rtol=1e-5, atol=1e-4)


def test_small_maps_run_in_chunks_with_the_same_bits(monkeypatch):
    """A ResNet's last stages (a few output positions an image, many channels): never image by
    image (a thin product an image re-read the weights each time: 32x torch's time at 1x1),
    but in chunks of images up to SMALL_MAP_BYTES of patches, each one wide product; y, dx and
    db have the bits of every other path, dW is exact (tied filters stay tied)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 6, 2, 2)).astype(np.float32)
    w = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)
    w[2] = w[0]  # tied filters
    b = rng.standard_normal(4).astype(np.float32)
    g = rng.standard_normal((7, 4, 2, 2)).astype(np.float32)
    g[:, 2] = g[:, 0]  # (their outputs are tied: so are the gradients they get)
    patches = 6 * 9 * 4 * 4
    runs = []
    for limit in (1, 3 * patches, 10**12):  # chunks of 1 image / 3 images / the batch
        monkeypatch.setattr(conv_ops, "SMALL_MAP_BYTES", limit)
        monkeypatch.setattr(conv_ops, "BATCH_BYTES", 1)  # (it would have been image by image)
        xt, wt, bt = (cygrad.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, padding=1)
        assert not y.grad_fn.by_image
        (y * cygrad.tensor(g)).sum().backward()
        runs.append((y.numpy(), grad(xt), grad(wt), grad(bt)))
        assert np.array_equal(grad(wt)[0], grad(wt)[2])
    for y2, dx2, dw2, db2 in runs[1:]:
        y1, dx1, dw1, db1 = runs[0]
        for a, b_ in ((y1, y2), (dx1, dx2), (db1, db2)):
            assert np.array_equal(a, b_)
        np.testing.assert_allclose(dw1, dw2, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_channels_pool_identically(dtype):
    x = rand((3, 4, 9, 9), 7, dtype, ties=True)
    x[:, 2] = x[:, 0]
    for pool in (lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
                 lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
                 lambda t: F.adaptive_avg_pool2d(t, 4)):
        xt = cygrad.tensor(x, requires_grad=True)
        y = pool(xt)
        g = rand(y.shape, 8, dtype)
        g[:, 2] = g[:, 0]
        (y * cygrad.tensor(g)).sum().backward()
        assert np.array_equal(y.numpy()[:, 0], y.numpy()[:, 2])
        assert np.array_equal(grad(xt)[:, 0], grad(xt)[:, 2])
        alone = pool(cygrad.tensor(x[1:2]))
        assert np.array_equal(alone.numpy(), y.numpy()[1:2])


# ---------------------------------------------------------------------- errors, as torch's

def bad_calls():
    t = lambda *s: cygrad.tensor(np.zeros(s, np.float32))  # noqa: E731
    x, w = t(2, 3, 8, 8), t(4, 3, 3, 3)
    return {
        "conv rank": (lambda m: m.conv2d(x[0, 0], w), RuntimeError),
        "conv channels": (lambda m: m.conv2d(t(2, 2, 8, 8), w), RuntimeError),
        "conv kernel larger": (lambda m: m.conv2d(t(1, 3, 2, 2), w), RuntimeError),
        "conv stride 0": (lambda m: m.conv2d(x, w, stride=0), RuntimeError),
        "conv padding -1": (lambda m: m.conv2d(x, w, padding=-1), RuntimeError),
        "conv dilation 0": (lambda m: m.conv2d(x, w, dilation=0), RuntimeError),
        "conv 3 strides": (lambda m: m.conv2d(x, w, stride=(1, 2, 3)), RuntimeError),
        "conv float stride": (lambda m: m.conv2d(x, w, stride=1.5), TypeError),
        "conv bias shape": (lambda m: m.conv2d(x, w, t(3)), RuntimeError),
        "conv groups 0": (lambda m: m.conv2d(x, w, groups=0), RuntimeError),
        "conv groups split": (lambda m: m.conv2d(t(2, 4, 8, 8), t(4, 2, 3, 3), groups=3),
                              RuntimeError),
        "conv same strided": (lambda m: m.conv2d(x, w, stride=2, padding="same"), RuntimeError),
        "conv padding string": (lambda m: m.conv2d(x, w, padding="full"), RuntimeError),
        "conv1d rank": (lambda m: m.conv1d(x, t(4, 3, 3)), RuntimeError),
        "pool rank": (lambda m: m.max_pool2d(x[0, 0], 2), RuntimeError),
        "pool empty channels": (lambda m: m.max_pool2d(t(2, 0, 8, 8), 2), RuntimeError),
        "pool stride 0": (lambda m: m.max_pool2d(x, 2, 0), RuntimeError),
        "pool pad > half": (lambda m: m.max_pool2d(x, 3, padding=2), RuntimeError),
        "pool dilation 0": (lambda m: m.max_pool2d(x, 2, dilation=0), RuntimeError),
        "pool too small": (lambda m: m.max_pool2d(x, 9), RuntimeError),
        "pool 3 sizes": (lambda m: m.max_pool2d(x, (2, 3, 4)), RuntimeError),
        "pool float size": (lambda m: m.max_pool2d(x, 2.0), TypeError),
        "avg divisor 0": (lambda m: m.avg_pool2d(x, 2, divisor_override=0), RuntimeError),
        "avg pad > half": (lambda m: m.avg_pool2d(x, 3, padding=2), RuntimeError),
        "adaptive negative": (lambda m: m.adaptive_avg_pool2d(x, -1), RuntimeError),
        "adaptive empty": (lambda m: m.adaptive_max_pool2d(t(3, 0, 8), 2), RuntimeError),
        "max_pool1d 2 sizes": (lambda m: m.max_pool1d(t(2, 3, 8), (2, 2)), RuntimeError),
    }


@pytest.mark.parametrize("case", list(bad_calls()))
def test_bad_input_raises_torchs_exception_type(case):
    call, kind = bad_calls()[case]
    with pytest.raises(kind):
        call(F)
    torch = pytest.importorskip("torch")

    class TorchF:  # the same call on torch tensors of the same shapes
        def __getattr__(self, name):
            fn = getattr(torch.nn.functional, name)
            return lambda *a, **k: fn(*[torch.zeros(v.shape) if isinstance(v, cygrad.Tensor)
                                        else v for v in a], **k)

    with pytest.raises(kind):
        call(TorchF())


def test_messages_name_shapes_and_values():
    x = cygrad.tensor(np.zeros((2, 2, 8, 8), np.float32))
    with pytest.raises(RuntimeError, match=r"weight of size \[4, 3, 3, 3\], expected input"
                                           r"\[2, 2, 8, 8\] to have 3 channels, but got 2"):
        nn.Conv2d(3, 4, 3)(x)
    with pytest.raises(RuntimeError, match=r"padded input size per channel: \(8 x 8\). Kernel "
                                           r"size: \(9 x 9\)"):
        F.conv2d(x, cygrad.tensor(np.zeros((1, 2, 5, 5), np.float32)), dilation=2)
    with pytest.raises(RuntimeError, match="pad=2, kernel_size=3 and dilation=1"):
        F.avg_pool2d(x, 3, padding=2)
    with pytest.raises(RuntimeError, match="input has dtype float32 but weight has dtype float64"):
        nn.Conv2d(2, 2, 3, dtype="float64")(x)


def test_module_arguments_checked_at_construction():
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        nn.Conv2d(4, 3, 3, padding="full")
    with pytest.raises(ValueError, match="not supported for strided convolutions"):
        nn.Conv1d(4, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 3, 3, padding_mode="mirror")
    with pytest.raises(NotImplementedError, match="padding_mode='reflect'"):
        nn.Conv2d(4, 3, 3, padding_mode="reflect")
    with pytest.raises(RuntimeError, match="non-positive stride"):
        nn.Conv2d(4, 3, 3, stride=(1, 0))
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.Conv2d(4, 3, 3, device="cuda")
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(RuntimeError, match="stride should be greater than zero"):
        nn.AvgPool2d(2, stride=0)


# ---------------------------------------------------------------------- modules

def test_module_attributes_shapes_and_forward():
    conv = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, bias=False,
                     dtype=np.float64, device="cpu")
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation) == ((3, 2), (2, 2),
                                                                            (1, 1), (1, 2))
    assert conv.groups == 2 and conv.bias is None and conv.padding_mode == "zeros"
    assert conv.weight.shape == (6, 2, 3, 2) and conv.weight.dtype == np.float64
    x = cygrad.tensor(rand((2, 4, 9, 9), 1))
    np.testing.assert_array_equal(conv(x).numpy(), F.conv2d(x, conv.weight, None, 2, 1, (1, 2),
                                                            2).numpy())
    c1 = nn.Conv1d(2, 4, 3, padding="same")
    assert (c1.kernel_size, c1.stride, c1.padding, c1.dilation) == ((3,), (1,), "same", (1,))
    assert c1(cygrad.tensor(np.ones((2, 2, 7), np.float32))).shape == (2, 4, 7)
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert y.shape == idx.shape == (2, 4, 4, 4)
    assert nn.AdaptiveAvgPool2d((3, None))(x).shape == (2, 4, 3, 9)
    assert nn.AvgPool1d(3)(cygrad.tensor(rand((2, 9), 1))).shape == (2, 3)


def test_default_init_follows_torch():
    # kaiming_uniform_(a=sqrt(5)) on the weight, U(-1/sqrt(fan_in), ...) on the bias,
    # fan_in = in_channels/groups * kh * kw; seeded draws repeat
    cygrad.manual_seed(0)
    conv = nn.Conv2d(6, 8, (3, 2), groups=2)
    bound = 1 / math.sqrt(3 * 3 * 2)
    w, b = conv.weight.numpy(), conv.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.8 * bound and np.abs(b).max() > 0.5 * bound
    cygrad.manual_seed(0)
    again = nn.Conv2d(6, 8, (3, 2), groups=2)
    assert np.array_equal(again.weight.numpy(), w) and np.array_equal(again.bias.numpy(), b)


REPRS = [
    ("Conv2d", (3, 4, 3), {}), ("Conv2d", (3, 4, (3, 2)), {"stride": 2, "padding": 1,
                                                           "dilation": 2, "bias": False}),
    ("Conv2d", (4, 4, 3), {"padding": "same", "groups": 2}), ("Conv1d", (3, 6, 3), {"groups": 3}),
    ("Conv1d", (3, 6, 2), {"padding": "valid"}),
    ("MaxPool2d", (2,), {}), ("MaxPool2d", ((2, 3),), {"stride": 1, "padding": 1, "dilation": 2,
                                                        "ceil_mode": True}),
    ("MaxPool1d", (3, 2), {}), ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3, 2, 1, True, False, 2), {}),
    ("AvgPool1d", (3,), {}), ("AdaptiveAvgPool2d", ((3, None),), {}),
    ("AdaptiveMaxPool2d", (3,), {}), ("AdaptiveAvgPool1d", (5,), {}),
    ("AdaptiveMaxPool1d", (5, True), {}),
]


@pytest.mark.parametrize("name, args, kwargs", REPRS)
def test_repr_is_torchs(name, args, kwargs):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args,
                                                                                     **kwargs))
