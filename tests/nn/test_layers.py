"""Every layer forward and backward: against numpy references on both backends, by gradcheck
in float64, and against PyTorch with the same weights where it is installed."""

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import cygrad
from cygrad import nn
from cygrad.nn import functional as F
from helpers import check_op

try:
    import torch
except ImportError:  # PyTorch is an optional cross-check
    torch = None


# ---------------------------------------------------------------------- numpy references

def conv2d_reference(x, w, b=None, stride=1, padding=0):
    """Direct cross-correlation: y[n, o, i, j] = sum_{c, u, v} w[o, c, u, v] * xp[n, c, ...]."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.einsum("ncijuv,ocuv->noij", windows, w)
    return y if b is None else y + b[None, :, None, None]


def pool_reference(x, kernel, stride, reduce):
    windows = sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride, ::stride]
    return reduce(windows, axis=(4, 5))


def linear_reference(x, w, b=None):
    return x @ w.T if b is None else x @ w.T + b


def functional_call(module, values, *args):
    """module(*args) with its parameters replaced by values {name: tensor} for this call."""
    saved = {}
    for name, value in values.items():
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        saved[name] = owner, attr, owner._parameters[attr]
        owner._parameters[attr] = value
    try:
        return module(*args)
    finally:
        for owner, attr, p in saved.values():
            owner._parameters[attr] = p


def torch_fn(name, **kwargs):
    """A torch.nn.functional function with fixed keyword arguments (None without torch)."""
    if torch is None:
        return None
    fn = getattr(torch.nn.functional, name)
    return lambda *args: fn(*args, **kwargs)


# ---------------------------------------------------------------------- Linear

@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (3,)], ids=["2d", "3d", "1d"])
def test_linear(x_shape):
    check_op(F.linear, linear_reference, x_shape, (4, 3), (4,), torch_fn=torch_fn("linear"))


def test_linear_without_bias():
    check_op(F.linear, linear_reference, (6, 3), (2, 3), torch_fn=torch_fn("linear"))


def test_linear_module_shapes_and_dtype(backend, dtype):
    layer = nn.Linear(3, 5, dtype=dtype)
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    assert layer.weight.dtype == dtype and layer.bias.dtype == dtype
    x = cygrad.tensor(np.ones((2, 7, 3)), dtype=dtype)
    y = layer(x)
    assert y.shape == (2, 7, 5) and y.dtype == dtype
    assert nn.Linear(3, 5, bias=False).bias is None


def test_default_dtype_is_used(backend):
    cygrad.set_default_dtype("float64")
    assert nn.Linear(2, 2).weight.dtype == np.float64
    assert nn.Conv2d(1, 1, 2).bias.dtype == np.float64


# ---------------------------------------------------------------------- Conv2d

CONV_CASES = [  # kernel, stride, padding
    ((3, 3), 1, 0), ((3, 3), 2, 1), ((2, 3), 1, 2), ((2, 2), 3, 0), ((1, 1), 2, 1),
    ((3, 3), 2, 0),
]


@pytest.mark.parametrize("kernel, stride, padding", CONV_CASES,
                         ids=[f"k{k[0]}x{k[1]}-s{s}-p{p}" for k, s, p in CONV_CASES])
def test_conv2d(kernel, stride, padding):
    check_op(lambda x, w, b: F.conv2d(x, w, b, stride, padding),
             lambda x, w, b: conv2d_reference(x, w, b, stride, padding),
             (2, 2, 6, 5), (3, 2) + kernel, (3,),
             torch_fn=torch_fn("conv2d", stride=stride, padding=padding))


def test_conv2d_without_bias_one_channel():
    check_op(lambda x, w: F.conv2d(x, w, padding=1),
             lambda x, w: conv2d_reference(x, w, padding=1),
             (1, 1, 4, 4), (2, 1, 3, 3), torch_fn=torch_fn("conv2d", padding=1))


def test_conv2d_module(backend, dtype):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=dtype)
    assert conv.weight.shape == (4, 3, 3, 3) and conv.weight.dtype == dtype
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(dtype)
    y = conv(cygrad.tensor(x))
    assert y.shape == (2, 4, 4, 3) and y.dtype == dtype
    expected = conv2d_reference(x.astype(np.float64), conv.weight.numpy().astype(np.float64),
                                conv.bias.numpy().astype(np.float64), 2, 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_conv2d_skips_the_input_gradient_when_not_needed(backend, monkeypatch):
    """The first layer's input needs no gradient: no gemm for it and no col2im."""
    calls = []
    monkeypatch.setattr(cygrad.backend, "col2im",
                        lambda *a, **k: calls.append("col2im"))
    conv = nn.Conv2d(1, 2, 3)
    conv(cygrad.tensor(np.ones((2, 1, 5, 5), np.float32))).sum().backward()
    assert calls == [] and conv.weight.grad is not None and conv.bias.grad is not None


# ---------------------------------------------------------------------- pooling

POOL_CASES = [(2, None), (3, 2), (2, 1), (2, 3), ((2, 3), 1), (3, None)]


@pytest.mark.parametrize("kernel, stride", POOL_CASES,
                         ids=[f"k{k}-s{s}" for k, s in POOL_CASES])
def test_max_pool2d(kernel, stride):
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    s = stride or k[0]
    check_op(lambda x: F.max_pool2d(x, kernel, stride),
             lambda x: pool_reference(x, k, s, np.max), (1, 2, 7, 6),
             torch_fn=torch_fn("max_pool2d", kernel_size=kernel, stride=stride))


@pytest.mark.parametrize("kernel, stride", POOL_CASES,
                         ids=[f"k{k}-s{s}" for k, s in POOL_CASES])
def test_avg_pool2d(kernel, stride):
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    s = stride or k[0]
    check_op(lambda x: F.avg_pool2d(x, kernel, stride),
             lambda x: pool_reference(x, k, s, np.mean), (1, 2, 7, 6),
             torch_fn=torch_fn("avg_pool2d", kernel_size=kernel, stride=stride))


def test_max_pool_routes_a_tie_to_the_first_maximum(backend):
    x = cygrad.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    nn.MaxPool2d(2)(x).sum().backward()
    assert np.array_equal(x.grad, [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_pool_propagates_nan(backend):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    y = F.max_pool2d(cygrad.tensor(x), 2).numpy()
    assert np.isnan(y[0, 0, 0, 0]) and np.array_equal(y[0, 0, 1], [13.0, 15.0])


def test_pool_modules(backend, dtype):
    x = cygrad.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)), dtype=dtype)
    for module, reduce in ((nn.MaxPool2d(2), np.max), (nn.AvgPool2d(3, stride=2), np.mean)):
        y = module(x)
        k, s = module.kernel_size, module.stride
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), pool_reference(x.numpy(), (k, k), s, reduce),
                                   rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- activations, Flatten

ACTIVATIONS = [  # module, numpy reference, torch reference
    (nn.ReLU(), lambda x: np.maximum(x, 0), lambda x: x.relu()),
    (nn.LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x),
     lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    (nn.Tanh(), np.tanh, lambda x: x.tanh()),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x)), lambda x: x.sigmoid()),
    (nn.Identity(), lambda x: x, lambda x: x * 1),
]


@pytest.mark.parametrize("module, reference, torch_reference", ACTIVATIONS,
                         ids=[type(a[0]).__name__ for a in ACTIVATIONS])
def test_activation_modules(module, reference, torch_reference):
    check_op(module, reference, (4, 5), torch_fn=torch_reference if torch else None)


def test_flatten(backend):
    x = cygrad.tensor(np.arange(120.0).reshape(2, 3, 4, 5), requires_grad=True)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0)(x).shape == (120,)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20)
    y = nn.Flatten()(x)
    assert np.array_equal(y.numpy(), x.numpy().reshape(2, 60))
    y.backward(cygrad.tensor(np.arange(120.0).reshape(2, 60)))
    assert np.array_equal(x.grad.numpy(), x.numpy())


@pytest.mark.parametrize("args, shape, error", [
    ((4,), (2, 3, 4, 5), IndexError),  # it used to wrap around silently
    ((1, 4), (2, 3, 4, 5), IndexError),
    ((-5,), (2, 3, 4, 5), IndexError),
    ((2, 1), (2, 3, 4, 5), RuntimeError),
    ((1,), (3,), IndexError),
])
def test_flatten_bad_dims_raise_as_torch(args, shape, error):
    torch = pytest.importorskip("torch")
    with pytest.raises(error) as ours:
        nn.Flatten(*args)(cygrad.zeros(*shape))
    with pytest.raises(error) as theirs:
        torch.nn.Flatten(*args)(torch.zeros(*shape))
    assert str(ours.value) == str(theirs.value)


def test_unflatten(backend):
    x = cygrad.tensor(np.arange(24.0).reshape(2, 12), requires_grad=True)
    y = nn.Unflatten(1, (3, -1, 2))(x)
    assert y.shape == (2, 3, 2, 2) and np.array_equal(y.numpy(), x.numpy().reshape(2, 3, 2, 2))
    y.backward(cygrad.ones(2, 3, 2, 2))
    assert np.array_equal(x.grad.numpy(), np.ones((2, 12)))
    assert nn.Unflatten(-1, [4, 3])(x).shape == (2, 4, 3)
    assert repr(nn.Unflatten(1, (3, 4))) == "Unflatten(dim=1, unflattened_size=(3, 4))"
    with pytest.raises(RuntimeError):
        nn.Unflatten(1, (5, 2))(x)
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints"):
        nn.Unflatten(1, (3.0, 4))
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints"):
        nn.Unflatten(1, 12)


def test_identity_takes_any_arguments():
    x = cygrad.ones(2)
    assert nn.Identity(54, unused="argument")(x) is x
    assert repr(nn.Identity(3)) == "Identity()"


# ---------------------------------------------------------------------- Dropout

def test_dropout_zeroes_and_rescales(backend, dtype):
    cygrad.manual_seed(0)
    x = cygrad.tensor(np.ones((200, 100)), dtype=dtype, requires_grad=True)
    drop = nn.Dropout(0.3)
    y = drop(x)
    assert y.dtype == dtype
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.backward(cygrad.full(y.shape, 2.0, dtype=dtype))
    assert np.array_equal(x.grad.numpy(), 2 * y.numpy())  # dx = g * mask / (1 - p)


def test_dropout_masks_come_from_cygrad_generator(backend):
    x = cygrad.tensor(np.ones((10, 10), np.float32))
    cygrad.manual_seed(7)
    first = F.dropout(x, 0.5).numpy()
    second = F.dropout(x, 0.5).numpy()
    cygrad.manual_seed(7)
    assert np.array_equal(F.dropout(x, 0.5).numpy(), first)
    assert not np.array_equal(first, second)


def test_dropout_identity_in_eval_mode_and_for_p0():
    x = cygrad.tensor(np.ones((3, 3), np.float32), requires_grad=True)
    assert nn.Dropout(0.5).eval()(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert nn.Dropout(0.0)(x) is x
    for make, shape in ((nn.Dropout1d, (2, 3, 4)), (nn.Dropout2d, (2, 3, 4, 4)),
                        (nn.Dropout3d, (1, 2, 3, 4, 4)), (nn.AlphaDropout, (3,))):
        y = cygrad.ones(*shape)
        assert make(0.5).eval()(y) is y
    assert F.alpha_dropout(x, 0.5) is x  # training=False by default, as torch's


def test_dropout_with_p_1_zeroes_everything_and_draws_nothing():
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    cygrad.manual_seed(3)
    y = nn.Dropout(1.0)(x)
    assert not y.numpy().any() and y.dtype == x.dtype
    y.sum().backward()
    assert not x.grad.numpy().any()
    after = F.dropout(cygrad.ones(6), 0.5).numpy()
    cygrad.manual_seed(3)
    assert np.array_equal(F.dropout(cygrad.ones(6), 0.5).numpy(), after)  # no numbers drawn
    assert not nn.Dropout2d(1.0)(cygrad.ones(2, 3, 4, 4)).numpy().any()


def test_dropout_inplace():
    cygrad.manual_seed(1)
    x = cygrad.ones(50, 40)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x and set(np.unique(x.numpy())) == {0.0, 2.0}
    leaf = cygrad.ones(3, requires_grad=True)
    h = leaf * 1
    out = nn.Dropout(0.5, inplace=True)(h)
    assert out is h
    out.sum().backward()
    assert np.array_equal(leaf.grad.numpy(), h.numpy())  # dx = mask / (1 - p)
    with pytest.raises(RuntimeError, match="leaf"):
        F.dropout(cygrad.ones(3, requires_grad=True), 0.5, inplace=True)


@pytest.mark.parametrize("make, shape", [
    (nn.Dropout1d, (6, 40, 7)), (nn.Dropout1d, (40, 7)), (nn.Dropout2d, (6, 40, 3, 3)),
    (nn.Dropout3d, (6, 40, 2, 2, 2)), (nn.Dropout3d, (40, 2, 2, 2)),
])
def test_channel_dropout_zeroes_whole_channels(make, shape):
    cygrad.manual_seed(0)
    x = cygrad.tensor(np.random.default_rng(0).uniform(1, 2, shape), requires_grad=True)
    y = make(0.4)(x)
    batched = len(shape) == {nn.Dropout1d: 3, nn.Dropout2d: 4, nn.Dropout3d: 5}[make]
    channels = shape[0] * shape[1] if batched else shape[0]
    flat = y.numpy().reshape(channels, -1)  # one row per channel
    dropped = (flat == 0).all(axis=1)
    assert dropped.any() and not dropped.all() and ((flat == 0) == dropped[:, None]).all()
    kept = ~dropped
    np.testing.assert_allclose(flat[kept], (x.numpy().reshape(flat.shape) / 0.6)[kept])
    y.sum().backward()
    grad = x.grad.numpy().reshape(flat.shape)
    assert (grad[dropped] == 0).all()
    np.testing.assert_allclose(grad[kept], 1 / 0.6)


def test_channel_dropout_draws_through_the_dropout_op():
    x = cygrad.ones(3, 5, 4, 4)
    cygrad.manual_seed(11)
    y = F.dropout2d(x, 0.5)
    cygrad.manual_seed(11)
    noise = F.dropout(cygrad.ones(3, 5, 1, 1), 0.5)  # the same draws: torch's noise shape
    assert np.array_equal(y.numpy(), np.broadcast_to(noise.numpy(), (3, 5, 4, 4)))


def test_channel_dropout_dims_as_torch():
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a "
                                           "4D input"):
        F.dropout1d(cygrad.ones(1, 2, 3, 4))
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        F.dropout2d(cygrad.ones(2, 3, 4))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout3d"):
        F.dropout3d(cygrad.ones(2, 3))


def test_alpha_dropout_keeps_mean_and_variance():
    cygrad.manual_seed(0)
    x = cygrad.tensor(np.random.default_rng(0).standard_normal(200_000))
    y = F.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.02
    assert len(np.unique(y[np.abs(y - y.min()) < 1e-12])) == 1  # one value where dropped
    z = nn.FeatureAlphaDropout(0.5)(cygrad.ones(4, 50, 3)).numpy()
    assert all(len(np.unique(channel)) == 1 for channel in z.reshape(200, 3))


def test_dropout_masks_are_torchs_when_the_generator_is():
    torch = pytest.importorskip("torch")
    cygrad.manual_seed(5)
    torch.manual_seed(5)
    rand = getattr(cygrad, "rand", None)
    if rand is None or not np.array_equal(rand(8).numpy(), torch.rand(8).numpy()):
        pytest.skip("cygrad's generator does not draw torch's numbers in this build")
    for fn in ("dropout", "dropout1d", "dropout2d", "alpha_dropout"):
        cygrad.manual_seed(5)
        torch.manual_seed(5)
        x = np.random.default_rng(1).standard_normal((4, 6, 5)).astype(np.float32)
        ours = getattr(F, fn)(cygrad.tensor(x), 0.3, training=True).numpy()
        theirs = getattr(torch.nn.functional, fn)(torch.tensor(x), 0.3, training=True).numpy()
        assert ours.dtype == theirs.dtype == np.float32, fn
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, err_msg=fn)


def test_dropout_gradcheck():
    def fn(x):
        cygrad.manual_seed(3)  # the same mask at every evaluation
        return F.dropout(x, 0.4)

    cygrad.gradcheck(fn, cygrad.tensor(np.random.default_rng(0).standard_normal((4, 6)),
                                       requires_grad=True))


# ---------------------------------------------------------------------- default initialisation

@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(50, 400), 50),
    (lambda: nn.Conv2d(6, 100, (3, 2)), 36),
])
def test_default_init_is_pytorchs(make, fan_in):
    """kaiming_uniform_(a=sqrt(5)) gives W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias has
    the same bound."""
    cygrad.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.98 * bound  # spread over the whole interval
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert abs(w.mean()) < 0.05 * bound
    cygrad.manual_seed(0)
    assert np.array_equal(make().weight.numpy(), layer.weight.numpy())  # reproducible from a seed


def test_default_init_bounds_match_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for ours, theirs in ((nn.Linear(20, 30), torch.nn.Linear(20, 30)),
                         (nn.Conv2d(3, 30, 3), torch.nn.Conv2d(3, 30, 3))):
        for name, p in ours.named_parameters():
            t = getattr(theirs, name).detach().numpy()
            assert np.abs(p.numpy()).max() <= np.abs(t).max() * 1.2
            assert p.numpy().std() == pytest.approx(t.std(), rel=0.3)


# ---------------------------------------------------------------------- against PyTorch modules

def test_small_net_matches_torch_with_the_same_weights(backend):
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype="float64"), nn.LeakyReLU(0.1),
                         nn.MaxPool2d(2), nn.Conv2d(4, 3, 2, stride=2, dtype="float64"),
                         nn.Tanh(), nn.AvgPool2d(2, stride=1), nn.Flatten(),
                         nn.Linear(12, 5, dtype="float64"), nn.Sigmoid())
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.LeakyReLU(0.1), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 3, 2, stride=2), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2, stride=1), torch.nn.Flatten(), torch.nn.Linear(12, 5),
        torch.nn.Sigmoid()).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 2, 12, 12))
    xc, xt = cygrad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    for name, p in ours.named_parameters():
        expected = theirs.get_parameter(name).grad.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-10, atol=1e-14, err_msg=name)


def test_small_net_gradcheck():
    cygrad.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1, dtype="float64"), nn.Tanh(),
                        nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(8, 2, dtype="float64"))
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((2, 1, 6, 6)), requires_grad=True)
    names = [name for name, _ in net.named_parameters()]
    cygrad.gradcheck(lambda x, *ps: functional_call(net, dict(zip(names, ps)), x),
                     x, *net.parameters())


# ---------------------------------------------------------------------- bad input

def conv_input(*shape):
    return cygrad.tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, x_shape, match", [  # PyTorch's exception type: RuntimeError
    (lambda: nn.Conv2d(3, 4, 3), (2, 3), r"3D \(unbatched\) or 4D \(batched\) input to conv2d, "
                                         r"but got input of size: \[2, 3\]"),
    (lambda: nn.Conv2d(3, 4, 3), (2, 2, 5, 5), r"weight of size \[4, 3, 3, 3\], expected "
                                               r"input\[2, 2, 5, 5\] to have 3 channels"),
    (lambda: nn.Conv2d(3, 4, 8, padding=1), (1, 3, 5, 5),
     r"padded input size per channel: \(7 x 7\). Kernel size: \(8 x 8\)"),
    (lambda: nn.Conv2d(3, 4, (2, 6)), (1, 3, 5, 5), r"Kernel size: \(2 x 6\)"),
    (lambda: nn.MaxPool2d(3), (1, 1, 2, 5), r"Calculated output size: \(1x0x1\)"),
    (lambda: nn.AvgPool2d(2), (4,), r"3D or 4D \(batch mode\) tensor .* got: \[4\]"),
])
def test_bad_conv_and_pool_input(make, x_shape, match):
    with pytest.raises(RuntimeError, match=match):
        make()(conv_input(*x_shape))


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Conv2d(3, 4, 3, stride=0), RuntimeError, "non-positive stride"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), RuntimeError, "negative padding"),
    (lambda: nn.Conv2d(3, 4, 0), RuntimeError, r"kernel_size must be positive, got \(0, 0\)"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels must be an integer >= 1, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=(1, 2, 1)), RuntimeError,
     r"expected stride to be a single integer value or a list of 2 values"),
    (lambda: nn.MaxPool2d(2, stride=0), RuntimeError, "stride should be greater than zero"),
    (lambda: nn.AvgPool2d(0), RuntimeError, "kernel size should be greater than zero"),
    (lambda: nn.Linear(-1, 2), ValueError, "in_features must be an integer >= 0, got -1"),
    (lambda: nn.Linear(2, 2.5), ValueError, "out_features must be an integer >= 0, got 2.5"),
    (lambda: nn.Dropout(1.5), ValueError,
     "dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda: nn.Dropout(-0.1), ValueError,
     "dropout probability has to be between 0 and 1, but got -0.1"),
    (lambda: nn.Dropout("half"), ValueError,
     "dropout probability has to be between 0 and 1, but got half"),
    (lambda: F.dropout(conv_input(2), 1.5), ValueError, "between 0 and 1, but got 1.5"),
    (lambda: F.dropout2d(conv_input(1, 2, 2, 2), -1), ValueError, "between 0 and 1, but got -1"),
    (lambda: F.conv2d(conv_input(1, 1, 4, 4), conv_input(1, 1, 2, 2), stride=0),
     RuntimeError, "non-positive stride is not supported"),
    (lambda: F.conv2d(conv_input(1, 1, 4, 4), conv_input(1, 1, 2, 2), padding=-2),
     RuntimeError, "negative padding is not supported"),
])
def test_bad_layer_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_dtypes_and_shapes_are_named():
    layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="input has dtype (cygrad.)?float64 but weight has "
                                           "dtype (cygrad.)?float32"):
        layer(cygrad.tensor(np.zeros((1, 3))))
    with pytest.raises(RuntimeError, match=r"input of shape \(1, 4\).*\(2, 3\).*expected "
                                           "last dimension 3"):
        layer(conv_input(1, 4))
    with pytest.raises(RuntimeError, match="unsupported dtype int32"):
        nn.Linear(2, 2, dtype="int32")
    with pytest.raises(RuntimeError, match="conv2d: input has dtype (cygrad.)?float32 but bias "
                                           "has dtype (cygrad.)?float64"):
        F.conv2d(conv_input(1, 1, 3, 3), conv_input(1, 1, 2, 2), cygrad.tensor(np.zeros(1)))
    with pytest.raises(RuntimeError, match=r"bias of shape \(3,\) does not fit weight of "
                                           r"shape \(2, 3\) \(expected \(2,\)\)"):
        F.linear(conv_input(1, 3), conv_input(2, 3), conv_input(3))
    with pytest.raises(TypeError, match="expects a cygrad Tensor, got ndarray"):
        nn.Linear(3, 2)(np.zeros((1, 3), np.float32))
