"""Module and Parameter: registration, traversal, modes, state dicts, repr."""

import numpy as np
import pytest

import cygrad
from cygrad import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.Tanh()
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.block(x))


# ---------------------------------------------------------------------- Parameter

def test_parameter_from_array_copies_and_requires_grad():
    a = np.arange(3.0)
    p = nn.Parameter(a)
    assert p.requires_grad and p.dtype == np.float64 and isinstance(p, cygrad.Tensor)
    a[0] = 7
    assert p.numpy()[0] == 0


def test_parameter_from_tensor_shares_data():
    t = cygrad.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert p.numpy() is t.numpy() and p.dtype == np.float32
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")


def test_parameter_rejects_non_float_data():
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(np.arange(3))


# ---------------------------------------------------------------------- registration, traversal

def test_named_parameters_in_registration_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "head.0.weight",
                     "head.0.bias", "head.3.weight", "head.3.bias"]


def test_parameters_modules_children():
    net = Net()
    assert len(list(net.parameters())) == 7
    assert len(list(net.parameters(recurse=False))) == 0
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Block", "Linear", "Tanh", "Sequential", "Linear", "ReLU", "Dropout", "Linear"]
    assert [name for name, _ in net.named_modules()][:4] == ["", "block", "block.fc",
                                                              "block.act"]
    assert [name for name, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]


def test_shared_parameter_listed_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    model = nn.Sequential(a, nn.Tanh(), b)
    params = list(model.parameters())
    assert len(params) == 3 and sum(p is a.weight for p in params) == 1
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4


def test_shared_module_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.Tanh(), layer)
    assert len(list(model.parameters())) == 2
    assert sum(m is layer for m in model.modules()) == 1


def test_attribute_assignment_rules():
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="plain Tensor to parameter 'weight'"):
        m.weight = cygrad.tensor(np.zeros((3, 2), np.float32))
    m.bias = None
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    m.note = "hello"  # an ordinary attribute
    assert m.note == "hello" and "note" not in m._parameters
    m.sub = nn.Tanh()
    assert "sub" in m._modules
    m.sub = 3  # replacing a module by a plain value unregisters it
    assert "sub" not in m._modules and m.sub == 3
    del m.weight
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing  # noqa: B018


def test_register_parameter_and_add_module():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(np.zeros(2)))
    m.register_parameter("b", None)
    m.add_module("inner", nn.ReLU())
    assert [n for n, _ in m.named_parameters()] == ["w"] and m.b is None
    assert isinstance(m.inner, nn.ReLU)
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("x", cygrad.tensor([1.0]))
    with pytest.raises(TypeError, match="not a Module"):
        m.add_module("y", 3)


def test_forgetting_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"Module.__init__\(\)"):
        Broken()


def test_call_runs_forward_and_base_forward_raises():
    net = Net()
    out = net(cygrad.tensor(np.ones((5, 3), np.float32)))
    assert out.shape == (5, 2)
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        nn.Module()(1)


def test_zero_grad():
    net = Net()
    net(cygrad.tensor(np.ones((5, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_reach_every_submodule():
    net = Net()
    assert net.training and net.head[2].training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert net.training and not net.head[2].training


def test_dropout_is_identity_in_eval_mode():
    net = Net().eval()
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))
    assert np.array_equal(net(x).numpy(), net(x).numpy())


# ---------------------------------------------------------------------- state dicts

def test_state_dict_round_trip():
    cygrad.manual_seed(1)
    a = Net()
    cygrad.manual_seed(2)
    b = Net()
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters()]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["block.scale"][0] = 5  # a copy: the model is untouched
    assert a.block.scale.numpy()[0] == 1
    result = b.load_state_dict(a.state_dict())
    assert result == ([], []) and result.missing_keys == []
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.numpy(), q.numpy()), name
    x = cygrad.tensor(np.ones((2, 3), np.float32))
    assert np.array_equal(a.eval()(x).numpy(), b.eval()(x).numpy())


def test_load_state_dict_writes_in_place_and_accepts_tensors():
    m = nn.Linear(2, 2)
    weight = m.weight.numpy()
    m.load_state_dict({"weight": cygrad.tensor(np.eye(2, dtype=np.float32)),
                       "bias": np.zeros(2, np.float32)})
    assert m.weight.numpy() is weight and np.array_equal(weight, np.eye(2))


def test_state_dict_lists_tied_parameter_under_every_name():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    model.load_state_dict(model.state_dict())


def test_load_state_dict_names_missing_and_unexpected_keys():
    m = nn.Linear(3, 2)
    state = m.state_dict()
    del state["bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match="missing key.*'bias'.*unexpected key.*'extra'"):
        m.load_state_dict(state)
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert (missing, unexpected) == (["bias"], ["extra"])


def test_load_state_dict_names_shape_and_dtype_mismatches():
    m = nn.Linear(3, 2)
    state = m.state_dict()
    with pytest.raises(ValueError, match=r"'weight' has shape \(3, 3\).*\(2, 3\)"):
        m.load_state_dict({**state, "weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(TypeError, match="'bias' has dtype float64.*float32"):
        m.load_state_dict({**state, "bias": np.zeros(2)})
    with pytest.raises(ValueError, match="'bias' has shape"):  # even when not strict
        m.load_state_dict({"bias": np.zeros(3, np.float32)}, strict=False)


def test_failed_load_changes_nothing():
    m = nn.Linear(3, 2)
    before = m.state_dict()
    bad = {"weight": np.zeros((2, 3), np.float32), "bias": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match="'bias'"):
        m.load_state_dict(bad)
    assert np.array_equal(m.weight.numpy(), before["weight"])


# ---------------------------------------------------------------------- repr

def test_repr_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(128, 3, bias=False), nn.Dropout(0.25))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=128, out_features=3, bias=False)\n"
        "  (5): Dropout(p=0.25)\n"
        ")")
    assert repr(nn.Conv2d(2, 4, (3, 5), stride=2, bias=False)) == (
        "Conv2d(2, 4, kernel_size=(3, 5), stride=(2, 2), bias=False)")
    nested = repr(Net())
    assert nested.startswith("Net(\n  (block): Block(\n    (fc): Linear(in_features=3")
    assert nested.endswith("    (3): Linear(in_features=4, out_features=2, bias=True)\n  )\n)")


def test_repr_matches_torch_for_shared_layers():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Flatten(), nn.LeakyReLU(0.2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                 torch.nn.LeakyReLU(0.2))
    assert repr(ours) == repr(theirs)


# ---------------------------------------------------------------------- Sequential

def test_sequential_indexing_and_slicing():
    layers = [nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    assert list(tail._modules) == ["1", "2"]  # keys kept, as in PyTorch
    with pytest.raises(IndexError, match="index 3 is out of range"):
        model[3]  # noqa: B018
    model.append(nn.Sigmoid())
    assert isinstance(model[3], nn.Sigmoid)
    with pytest.raises(TypeError, match="Sequential takes Modules"):
        nn.Sequential(nn.Tanh(), lambda x: x)


def test_sequential_from_ordered_dict():
    from collections import OrderedDict

    model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in model.named_parameters()] == ["fc.weight", "fc.bias"]
    assert isinstance(model.act, nn.ReLU)


def test_tied_parameters_lists_every_name():
    enc, dec = nn.Linear(4, 2), nn.Linear(2, 4)
    dec.weight = nn.Parameter(enc.weight.T.numpy())  # a view, but another Parameter: not tied
    assert nn.tied_parameters(nn.Sequential(enc, dec)) == {}
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared, nn.Linear(3, 3))
    model[3].bias = shared.bias
    assert nn.tied_parameters(model) == {"0.weight": ["0.weight", "2.weight"],
                                         "0.bias": ["0.bias", "2.bias", "3.bias"]}


def test_apply_visits_children_first():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Tanh", "Block", "Linear", "ReLU", "Dropout", "Linear",
                    "Sequential", "Net"]
    net.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert not any(m.weight.numpy().any() for m in net.modules() if isinstance(m, nn.Linear))


def test_frozen_parameters_get_no_gradient():
    net = Net()
    net.block.requires_grad_(False)
    net(cygrad.tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert net.block.fc.weight.grad is None and net.block.scale.grad is None
    assert net.head[0].weight.grad is not None
