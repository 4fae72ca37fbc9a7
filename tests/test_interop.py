"""cygrad.interop: the same network in PyTorch and back; equal outputs, gradients and training."""

import sys
from collections import OrderedDict

import numpy as np
import pytest

import cygrad
from cygrad import interop, nn
from cygrad.nn import functional as F

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only waits on a shared machine
    yield torch
    torch.set_num_threads(threads)


def mlp(dtype):
    cygrad.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16, dtype=dtype), nn.Tanh(),
                         nn.Linear(16, 12, dtype=dtype), nn.LeakyReLU(0.1),
                         nn.Dropout(0.2), nn.Linear(12, 8, bias=False, dtype=dtype),
                         nn.Sigmoid(), nn.Identity(), nn.Linear(8, 3, dtype=dtype), nn.ReLU(),
                         nn.Linear(3, 4, dtype=dtype))


def conv_net(dtype):
    cygrad.manual_seed(2)
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(2, 4, 3, padding="same", dtype=dtype)), ("relu", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)),
        ("conv2", nn.Conv2d(4, 6, (3, 2), stride=(2, 1), dilation=(1, 2), groups=2,
                            dtype=dtype)), ("tanh", nn.Tanh()),
        ("pool2", nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)),
        ("pool3", nn.AdaptiveAvgPool2d(1))]))
    return nn.Sequential(OrderedDict([("features", features), ("flat", nn.Flatten()),
                                      ("head", nn.Linear(6, 4, dtype=dtype))]))


def data(kind, dtype, n=5, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, 6) if kind == "mlp" else (n, 2, 10, 10)
    return rng.standard_normal(shape).astype(dtype), rng.integers(0, 4, n)


MODELS = pytest.mark.parametrize("kind", ["mlp", "conv"])


def build(kind, dtype):
    return (mlp if kind == "mlp" else conv_net)(dtype)


def assert_same_outputs_and_grads(torch, model, tmodel, kind, dtype):
    """Forward, cross-entropy, backward in both; outputs and every gradient must agree."""
    model.eval()
    tmodel.eval()
    X, y = data(kind, dtype)
    x = cygrad.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    out, tout = model(x), tmodel(tx)
    assert out.dtype == dtype and tout.dtype == {np.float32: torch.float32,
                                                  np.float64: torch.float64}[dtype]
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), **TOL[dtype])
    F.cross_entropy(out, y).backward()
    torch.nn.functional.cross_entropy(tout, torch.tensor(y)).backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TOL[dtype])
    tparams = dict(tmodel.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert names == list(tparams)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), **TOL[dtype],
                                   err_msg=name)


@MODELS
@DTYPES
def test_to_torch_same_outputs_and_gradients(torch, kind, dtype):
    model = build(kind, dtype)
    tmodel = interop.to_torch(model)
    assert isinstance(tmodel, torch.nn.Sequential)
    for name, p in model.named_parameters():
        tp = dict(tmodel.named_parameters())[name]
        assert tp.detach().numpy().tobytes() == p.numpy().tobytes()
    assert_same_outputs_and_grads(torch, model, tmodel, kind, dtype)


def torch_model(torch, kind, dtype):
    torch.manual_seed(3)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    tnn = torch.nn
    if kind == "mlp":
        m = tnn.Sequential(tnn.Linear(6, 16), tnn.Tanh(), tnn.Linear(16, 12), tnn.LeakyReLU(0.1),
                           tnn.Dropout(0.2), tnn.Linear(12, 8, bias=False), tnn.Sigmoid(),
                           tnn.Identity(), tnn.Linear(8, 4), tnn.ReLU(), tnn.Linear(4, 4))
    else:
        m = tnn.Sequential(tnn.Sequential(tnn.Conv2d(2, 4, 3, padding="same"), tnn.ReLU(),
                                          tnn.MaxPool2d(3, 2, 1, ceil_mode=True),
                                          tnn.Conv2d(4, 6, (3, 2), (2, 1), dilation=(1, 2),
                                                     groups=2), tnn.Tanh(),
                                          tnn.AvgPool2d(2, 1, 1, count_include_pad=False),
                                          tnn.AdaptiveMaxPool2d(1)),
                           tnn.Flatten(), tnn.Linear(6, 4))
    return m.to(tdtype)


@MODELS
@DTYPES
def test_from_torch_same_outputs_and_gradients(torch, kind, dtype):
    tmodel = torch_model(torch, kind, dtype)
    model = interop.from_torch(tmodel)
    assert isinstance(model, nn.Sequential)
    assert all(p.dtype == dtype for p in model.parameters())
    assert_same_outputs_and_grads(torch, model, tmodel, kind, dtype)


@MODELS
@DTYPES
def test_twenty_sgd_steps_agree(torch, kind, dtype):
    model = build(kind, dtype)
    model.eval()  # dropout masks come from different generators
    tmodel = interop.to_torch(model)
    opt = cygrad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9)
    for step in range(20):
        X, y = data(kind, dtype, n=8, seed=10 + step)
        opt.zero_grad()
        F.cross_entropy(model(cygrad.tensor(X)), y).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(torch.tensor(X)), torch.tensor(y)).backward()
        topt.step()
    tol = dict(rtol=1e-3, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-8, atol=1e-10)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), tparams[name].detach().numpy(), **tol, err_msg=name)
    moved = max(np.abs(p.numpy() - q.numpy()).max() for p, q in zip(model.parameters(),
                                                                build(kind, dtype).parameters()))
    assert moved > 1e-3  # the parameters did train


@MODELS
@DTYPES
def test_round_trips_are_bitwise(torch, kind, dtype):
    model = build(kind, dtype)
    back = interop.from_torch(interop.to_torch(model))
    assert list(back.state_dict()) == list(model.state_dict())
    for (name, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        a, b = a.numpy(), b.numpy()
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert repr(back) == repr(model)
    tmodel = torch_model(torch, kind, dtype)
    again = interop.to_torch(interop.from_torch(tmodel))
    for (name, a), b in zip(tmodel.state_dict().items(), again.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b), name


def test_weights_are_copies(torch):
    model = build("mlp", np.float32)
    tmodel = interop.to_torch(model)
    before = model[0].weight.numpy().copy()
    with torch.no_grad():
        tmodel[0].weight.add_(1.0)
    assert model[0].weight.numpy().tobytes() == before.tobytes()


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
        self.body[2].weight = self.body[0].weight


def test_tied_parameters_stay_tied(torch):
    cygrad.manual_seed(0)
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), shared,
                          nn.ReLU(), shared)
    model[2].weight = model[0].weight  # a tied parameter
    tmodel = interop.to_torch(model)  # and a tied layer (shared, twice)
    assert tmodel[2].weight is tmodel[0].weight and tmodel[4] is tmodel[6]
    assert tmodel[2].bias is not tmodel[0].bias
    assert len(list(tmodel.parameters())) == len(list(model.parameters())) == 5
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        tmodel(torch.randn(3, 4)).square().sum().backward()
        opt.step()
    back = interop.from_torch(tmodel)
    assert back[2].weight is back[0].weight and back[4] is back[6]
    # a tied parameter's gradient is the sum over its uses, in both frameworks
    X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    tx = torch.tensor(X)
    tmodel.zero_grad()
    tmodel(tx).square().sum().backward()
    (back(cygrad.tensor(X)) ** 2).sum().backward()
    for p, tp in zip(back.parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert nn.tied_parameters(back) == nn.tied_parameters(model)
    np.testing.assert_array_equal(back[0].weight.numpy(), tmodel[0].weight.detach().numpy())


def test_mode_and_requires_grad_carried_over(torch):
    model = build("mlp", np.float64).eval()
    model[0].bias.requires_grad = False
    tmodel = interop.to_torch(model)
    assert not tmodel.training and not tmodel[4].training
    assert not tmodel[0].bias.requires_grad and tmodel[0].weight.requires_grad
    tmodel.train()
    back = interop.from_torch(tmodel)
    assert back.training and back[4].training and not back[0].bias.requires_grad


def test_single_layers_convert(torch):
    layer = nn.Conv2d(4, 2, (2, 3), stride=2, padding=1, dilation=(2, 1), groups=2,
                      dtype=np.float64)
    t = interop.to_torch(layer)
    assert isinstance(t, torch.nn.Conv2d) and t.weight.dtype == torch.float64
    assert (t.kernel_size, t.stride, t.padding, t.dilation, t.groups) == (
        (2, 3), (2, 2), (1, 1), (2, 1), 2)
    back = interop.from_torch(torch.nn.MaxPool2d((2, 3), stride=1))
    assert isinstance(back, nn.MaxPool2d)


LAYERS = [("Conv1d", (2, 4, 3), {"stride": 2, "padding": 1, "dilation": 2}),
          ("Conv1d", (2, 4, 4), {"padding": "same", "bias": False}),
          ("MaxPool1d", (3, 2, 1), {"return_indices": True, "ceil_mode": True}),
          ("MaxPool2d", ((3, 2), (2, 1), (1, 0), (1, 2)), {"return_indices": True}),
          ("AvgPool1d", (3, 2, 1, True, False), {}),
          ("AvgPool2d", (3, 2, 1, True, False, 5), {}),
          ("AdaptiveAvgPool1d", (4,), {}), ("AdaptiveAvgPool2d", ((3, None),), {}),
          ("AdaptiveMaxPool1d", (4, True), {}), ("AdaptiveMaxPool2d", ((2, 3), True), {})]


@pytest.mark.parametrize("name, args, kwargs", LAYERS)
def test_every_conv_and_pool_layer_converts_with_its_arguments(torch, name, args, kwargs):
    ours = getattr(nn, name)(*args, **kwargs)
    theirs = interop.to_torch(ours)
    assert type(theirs) is getattr(torch.nn, name) and repr(theirs) == repr(ours)
    back = interop.from_torch(getattr(torch.nn, name)(*args, **kwargs))
    assert type(back) is getattr(nn, name) and repr(back) == repr(ours)
    for attr in ("return_indices", "ceil_mode", "count_include_pad", "divisor_override",
                 "groups", "dilation", "padding"):
        assert getattr(back, attr, None) == getattr(ours, attr, None)
    x = np.random.default_rng(0).standard_normal((2, 2) + (9,) * (1 + ("2d" in name)))
    x = x.astype(np.float32)
    out, tout = ours(cygrad.tensor(x)), theirs(torch.tensor(x))
    if isinstance(out, tuple):
        np.testing.assert_array_equal(out[1].numpy(), tout[1].numpy())
        out, tout = out[0], tout[0]
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_unsupported_settings_are_named(torch):
    tnn = torch.nn
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        interop.from_torch(tnn.Conv2d(1, 1, 3, padding_mode="reflect"))
    with pytest.raises(TypeError, match="dtype torch.float16"):
        interop.from_torch(tnn.Linear(2, 2).half())


def test_no_random_draws(torch):
    cygrad.manual_seed(5)
    state = cygrad.random.get_rng_state()
    tstate = torch.get_rng_state()
    interop.from_torch(interop.to_torch(build("conv", np.float32)))
    cygrad.manual_seed(5)
    assert np.array_equal(cygrad.random.get_rng_state(), state)
    interop.to_torch(build("mlp", np.float32))
    assert torch.equal(torch.get_rng_state(), tstate)
    cygrad.manual_seed(5)
    interop.from_torch(torch.nn.Linear(3, 3))
    assert np.array_equal(cygrad.random.get_rng_state(), state)


class Custom(nn.Module):
    def forward(self, x):
        return x


# ---------------------------------------------------------------------- beyond Sequential MLPs

def test_every_activation_of_the_op_table_converts(torch):
    """Derived from the op table: every activation module, with non-default parameters."""
    for name, cls in nn.ACTIVATIONS.items():
        entry = cls.entry
        params = {p: (v * 0.5 if isinstance(v, float) else v) for p, v in entry.params}
        if name == "GELU":
            params = {"approximate": "tanh"}
        ours = cls(**params)
        theirs = interop.to_torch(ours)
        assert type(theirs) is getattr(torch.nn, name) and repr(theirs) == repr(ours), name
        back = interop.from_torch(theirs)
        assert type(back) is cls and repr(back) == repr(ours), name
        x = np.linspace(-3, 3, 13)
        np.testing.assert_allclose(ours(cygrad.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    inplace = interop.to_torch(nn.LeakyReLU(0.2, inplace=True))
    assert inplace.inplace and inplace.negative_slope == 0.2


def test_small_layers_and_losses_convert(torch):
    weight = cygrad.tensor([1.0, 2.0, 0.5])
    layers = [nn.Flatten(0, 1), nn.Unflatten(1, (2, 3)), nn.Identity(), nn.Dropout(0.3),
              nn.Dropout1d(0.2, inplace=True), nn.Dropout2d(), nn.Dropout3d(0.1),
              nn.AlphaDropout(0.4), nn.FeatureAlphaDropout(0.3), nn.Softmax(dim=1),
              nn.LogSoftmax(dim=0), nn.CosineSimilarity(0, 1e-6), nn.PairwiseDistance(1.0),
              nn.L1Loss(reduction="sum"), nn.MSELoss(), nn.SmoothL1Loss(beta=0.5),
              nn.HuberLoss(delta=2.0), nn.NLLLoss(weight, ignore_index=1),
              nn.CrossEntropyLoss(weight, label_smoothing=0.1, reduction="none"),
              nn.BCELoss(weight), nn.BCEWithLogitsLoss(pos_weight=weight),
              nn.KLDivLoss(reduction="batchmean", log_target=True)]
    for layer in layers:
        theirs = interop.to_torch(layer)
        assert type(theirs).__name__ == type(layer).__name__ and repr(theirs) == repr(layer)
        state = theirs.state_dict()
        assert list(state) == list(layer.state_dict())
        for name, value in layer.state_dict().items():
            assert state[name].numpy().tobytes() == value.numpy().tobytes()
        back = interop.from_torch(theirs)
        assert type(back) is type(layer) and repr(back) == repr(layer)
        assert list(back.state_dict()) == list(layer.state_dict())
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    t = np.array([0, 2, 1, 1])
    for loss in (layers[17], layers[18]):
        theirs = interop.to_torch(loss)
        np.testing.assert_allclose(loss(x, t).numpy(), theirs(torch.tensor(x.numpy()),
                                                              torch.tensor(t)).numpy(),
                                   rtol=1e-6)


def test_containers_and_buffers_convert(torch):
    cygrad.manual_seed(0)
    blocks = nn.ModuleList([nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)])
    blocks[2].weight = blocks[0].weight  # tied across the list
    heads = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Sequential(nn.Linear(3, 1))})
    plist = nn.ParameterList([cygrad.ones(2), cygrad.zeros(3, dtype=cygrad.float64)])
    pdict = nn.ParameterDict({"scale": cygrad.ones(1)})
    seq = nn.Sequential(nn.Linear(3, 3))
    seq.register_buffer("steps", cygrad.tensor(7))
    seq.register_buffer("scratch", cygrad.zeros(2), persistent=False)
    for module in (blocks, heads, plist, pdict, seq):
        theirs = interop.to_torch(module)
        assert type(theirs).__name__ == type(module).__name__
        assert [n for n, _ in theirs.named_parameters()] == \
            [n for n, _ in module.named_parameters()]
        assert list(theirs.state_dict()) == list(module.state_dict())
        for name, p in module.named_parameters():
            assert theirs.get_parameter(name).detach().numpy().tobytes() == p.numpy().tobytes()
        back = interop.from_torch(theirs)
        assert type(back) is type(module) and list(back.state_dict()) == \
            list(module.state_dict())
    converted = interop.to_torch(blocks)
    assert converted[2].weight is converted[0].weight
    theirs = interop.to_torch(seq)
    assert theirs.steps.item() == 7 and "scratch" in dict(theirs.named_buffers())
    assert "scratch" not in theirs.state_dict()
    back = interop.from_torch(theirs)
    assert back.steps.item() == 7 and back.steps.dtype == cygrad.int64
    assert list(back.state_dict()) == ["steps", "0.weight", "0.bias"]


class MiniNorm(nn.Module):
    """A stand-in for a layer another part of cygrad adds: parameters, buffers, arguments."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(cygrad.ones(num_features, dtype=dtype))
        self.bias = nn.Parameter(cygrad.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", cygrad.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", cygrad.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", cygrad.tensor(0))


def test_register_is_the_extension_point(torch):
    interop.register(MiniNorm, "BatchNorm1d", lambda m: dict(
        num_features=m.num_features, eps=m.eps, momentum=m.momentum))
    try:
        tbn = torch.nn.BatchNorm1d(4, momentum=0.2).double()
        tbn(torch.randn(8, 4, dtype=torch.float64))  # running statistics move
        ours = interop.from_torch(torch.nn.Sequential(tbn))[0]
        assert type(ours) is MiniNorm and ours.momentum == 0.2
        for name, value in tbn.state_dict().items():
            mine = ours.state_dict()[name].numpy()
            assert mine.dtype == value.numpy().dtype and mine.tobytes() == \
                value.numpy().tobytes(), name
        again = interop.to_torch(ours)
        assert type(again) is torch.nn.BatchNorm1d
        assert all(torch.equal(again.state_dict()[k], v) for k, v in tbn.state_dict().items())
    finally:
        interop._LAYERS.pop(MiniNorm)


def test_unsupported_layers_are_named(torch):
    with pytest.raises(TypeError, match=r"unsupported layer Custom at 1\.0"):
        interop.to_torch(nn.Sequential(nn.Linear(2, 2), nn.Sequential(Custom())))
    with pytest.raises(TypeError, match="unsupported layer Autoencoder at the top level"):
        interop.to_torch(Autoencoder())
    with pytest.raises(TypeError, match=r"unsupported layer BatchNorm1d at 1"):
        interop.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)))
    with pytest.raises(TypeError, match="converts a cygrad nn.Module"):
        interop.to_torch(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="converts a torch.nn.Module"):
        interop.from_torch(nn.Linear(2, 2))


def test_missing_torch_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match=r"needs PyTorch.*pip install torch"):
        interop.to_torch(nn.Linear(2, 2))
    with pytest.raises(ImportError, match="needs PyTorch"):
        interop.from_torch(object())
