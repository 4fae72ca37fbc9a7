"""Module, Parameter and Buffer with torch's semantics: registration, traversal, modes, buffers,
state dicts, dtype conversion, hooks (forward and backward), deepcopy, repr."""

import copy
from collections import OrderedDict

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
        self.register_buffer("calls", cygrad.tensor(0))

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.block(x))


def x32(*shape, seed=0):
    return cygrad.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------------- Parameter, Buffer

def test_parameter_from_array_copies_and_requires_grad():
    a = np.arange(3.0)
    p = nn.Parameter(a)
    assert p.requires_grad and p.dtype == cygrad.float64 and isinstance(p, cygrad.Tensor)
    a[0] = 7
    assert p.numpy()[0] == 0


def test_parameter_from_tensor_shares_data():
    t = cygrad.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert p.numpy() is t.numpy() and p.dtype == cygrad.float32
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    assert nn.Parameter().shape == (0,)


def test_parameter_rejects_non_float_data():
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(np.arange(3))


def test_buffer_assigned_as_attribute_registers():
    m = nn.Module()
    m.stats = nn.Buffer(cygrad.zeros(3))
    m.scratch = nn.Buffer(cygrad.ones(2), persistent=False)
    assert [n for n, _ in m.named_buffers()] == ["stats", "scratch"]
    assert list(m.state_dict()) == ["stats"]
    m.stats = cygrad.ones(3)  # a Tensor assigned to a buffer's name replaces the buffer
    assert m.stats.tolist() == [1.0, 1.0, 1.0] and list(m.state_dict()) == ["stats"]
    with pytest.raises(TypeError, match="cannot assign 'numpy.ndarray' as buffer 'stats'"):
        m.stats = np.zeros(3)
    m.stats = None
    assert m.stats is None and list(m.state_dict()) == []
    assert isinstance(nn.Buffer(cygrad.zeros(1)), nn.Buffer)
    assert not isinstance(cygrad.zeros(1), nn.Buffer)


def test_register_buffer(torch):
    for lib in (nn, torch.nn):
        m = lib.Linear(2, 2)
        m.register_buffer("count", (cygrad if lib is nn else torch).tensor(3))
        m.register_buffer("tmp", None, persistent=False)
        assert [n for n, _ in m.named_buffers()] == ["count"]  # None is registered, not listed
        assert list(m.state_dict()) == ["weight", "bias", "count"]
        assert "count" in m._buffers and "tmp" in m._buffers
        with pytest.raises(KeyError, match="attribute 'weight' already exists"):
            m.register_buffer("weight", None)
        with pytest.raises(KeyError, match='contain "."'):
            m.register_buffer("a.b", None)
        with pytest.raises(KeyError, match='be empty string ""'):
            m.register_buffer("", None)
        with pytest.raises(TypeError, match="buffer name should be a string"):
            m.register_buffer(3, None)
        with pytest.raises(TypeError, match="cannot assign 'numpy.ndarray' object to buffer"):
            m.register_buffer("x", np.zeros(2))
        del m.count
        assert "count" not in m._buffers


def test_buffers_of_submodules_and_recurse():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == ["block.calls"]
    assert list(net.buffers(recurse=False)) == []
    assert [n for n, _ in net.block.named_buffers(prefix="b")] == ["b.calls"]


# ---------------------------------------------------------------------- registration, traversal

def test_named_parameters_in_registration_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "head.0.weight",
                     "head.0.bias", "head.3.weight", "head.3.bias"]


def test_parameters_modules_children():
    net = Net()
    assert len(list(net.parameters())) == 7
    assert sum(p.numel() for p in net.parameters()) == 3 * 4 + 4 + 4 + 20 + 10
    assert len(list(net.parameters(recurse=False))) == 0
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Block", "Linear", "Tanh", "Sequential", "Linear", "ReLU", "Dropout", "Linear"]
    assert [name for name, _ in net.named_modules()][:4] == ["", "block", "block.fc",
                                                              "block.act"]
    assert [name for name, _ in net.named_modules(prefix="net")][:2] == ["net", "net.block"]
    assert [name for name, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]


def test_named_modules_memo_and_duplicates(torch):
    for lib in (nn, torch.nn):
        layer = lib.Linear(2, 2)
        model = lib.Sequential(layer, lib.Tanh(), layer)
        assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
        assert [n for n, _ in model.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
        memo = {layer}
        assert [n for n, _ in model.named_modules(memo=memo)] == ["", "1"]
        assert len(list(model.named_children())) == 2  # a child module comes once


def test_shared_parameter_listed_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    model = nn.Sequential(a, nn.Tanh(), b)
    params = list(model.parameters())
    assert len(params) == 3 and sum(p is a.weight for p in params) == 1
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4


def test_attribute_assignment_rules(torch):
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="cannot assign 'cygrad.FloatTensor' as parameter 'weight'"):
        m.weight = cygrad.zeros(3, 2)
    m.bias = None
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    m.note = "hello"  # an ordinary attribute
    assert m.note == "hello" and "note" not in m._parameters
    m.sub = nn.Tanh()
    assert "sub" in m._modules
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'sub'"):
        m.sub = 3  # as torch: a child module is replaced by a Module or None only
    tm = torch.nn.Linear(2, 3)
    tm.sub = torch.nn.Tanh()
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'sub'"):
        tm.sub = 3
    m.sub = None
    assert m.sub is None and "sub" in m._modules
    m.weight2 = nn.Parameter(np.zeros(2))
    with pytest.raises(TypeError, match="cannot assign 'cygrad.nn.layers.Tanh' as parameter"):
        m.weight2 = nn.Tanh()  # as torch: a parameter is replaced by a Parameter or None only
    del m.weight, m.weight2
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'missing'"):
        m.missing  # noqa: B018


def test_register_parameter_and_add_module():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(np.zeros(2)))
    m.register_parameter("b", None)
    m.add_module("inner", nn.ReLU())
    m.register_module("outer", nn.Tanh())
    assert [n for n, _ in m.named_parameters()] == ["w"] and m.b is None
    assert isinstance(m.inner, nn.ReLU) and isinstance(m.outer, nn.Tanh)
    with pytest.raises(TypeError, match=r"cannot assign 'cygrad.FloatTensor' object to "
                                        r"parameter 'x' \(cygrad.nn.Parameter or None required\)"):
        m.register_parameter("x", cygrad.tensor([1.0]))
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        m.add_module("y", 3)
    with pytest.raises(KeyError, match="attribute 'w' already exists"):
        m.add_module("w", nn.ReLU())
    with pytest.raises(KeyError, match='contain ".", got: a.b'):
        m.add_module("a.b", nn.ReLU())
    with pytest.raises(KeyError, match='contain "."'):
        m.register_parameter("a.b", None)


def test_forgetting_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"cannot assign module before Module.__init__\(\)"):
        Broken()

    class Plain(nn.Module):
        def __init__(self):
            self.size = 3  # a plain attribute before __init__ is fine, as in torch
            super().__init__()

    assert Plain().size == 3


def test_get_submodule_parameter_buffer(torch):
    net = Net()
    assert net.get_submodule("head.3") is net.head[3]
    assert net.get_submodule("") is net
    assert net.get_parameter("block.fc.weight") is net.block.fc.weight
    assert net.get_buffer("block.calls") is net.block.calls
    cases = [(lambda m: m.get_submodule("block.nope"), "Block has no attribute `nope`"),
             (lambda m: m.get_submodule("block.scale"), "`scale` is not an nn.Module"),
             (lambda m: m.get_parameter("block.calls"), "`calls` is not an nn.Parameter"),
             (lambda m: m.get_buffer("block.scale"), "`scale` is not a buffer")]
    for call, message in cases:
        with pytest.raises(AttributeError, match=message):
            call(net)


def test_dir_lists_parameters_buffers_and_modules():
    names = dir(Net().block)
    assert {"fc", "act", "scale", "calls", "forward", "training"} <= set(names)
    assert names == sorted(names)
    assert "0" not in dir(nn.Sequential(nn.Tanh()))


def test_call_runs_forward_and_base_forward_raises():
    net = Net()
    assert net(x32(5, 3)).shape == (5, 2)
    with pytest.raises(NotImplementedError, match='Module \\[Module\\] is missing the required '
                                                  '"forward" function'):
        nn.Module()(1)


def test_zero_grad():
    net = Net()
    net(x32(5, 3)).sum().backward()
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
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train(1)


def test_train_calls_each_childs_own_train():
    seen = []

    class Frozen(nn.Module):
        def train(self, mode=True):
            seen.append(mode)
            return super().train(False)  # stays in eval mode, whatever it is told

    model = nn.Sequential(nn.Linear(2, 2), Frozen())
    model.train()
    assert seen == [True] and not model[1].training and model[0].training


def test_apply_visits_children_first():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Tanh", "Block", "Linear", "ReLU", "Dropout", "Linear",
                    "Sequential", "Net"]


def test_frozen_parameters_get_no_gradient():
    net = Net()
    net.block.requires_grad_(False)
    net(x32(2, 3)).sum().backward()
    assert net.block.fc.weight.grad is None and net.block.scale.grad is None
    assert net.head[0].weight.grad is not None


# ---------------------------------------------------------------------- dtype and device

def test_to_double_converts_float_parameters_and_buffers_in_place():
    net = Net()
    weight = net.block.fc.weight
    net(x32(2, 3)).sum().backward()
    assert net.double() is net
    assert net.block.fc.weight is weight  # the same Parameter object (optimizers keep it)
    assert weight.dtype == cygrad.float64 and weight.grad.dtype == cygrad.float64
    assert net.block.calls.dtype == cygrad.int64  # not a float: left alone
    out = net(cygrad.tensor(np.ones((2, 3))))
    assert out.dtype == cygrad.float64
    net.float()
    assert weight.dtype == cygrad.float32
    net.to(cygrad.float64)
    assert weight.dtype == cygrad.float64
    net.to("cpu", dtype=cygrad.float32)
    assert weight.dtype == cygrad.float32
    net.to(cygrad.zeros(1, dtype=cygrad.float64))
    assert weight.dtype == cygrad.float64
    assert net.cpu() is net and net.to("cpu") is net and net.to(cygrad.device("cpu")) is net
    net.type(cygrad.float32)
    assert weight.dtype == cygrad.float32 and net.block.calls.dtype == cygrad.float32


def test_to_refuses_what_cygrad_lacks(torch):
    net = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="CPU only.*'cuda'"):
        net.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        net.cuda()
    with pytest.raises(TypeError, match="float16"):
        net.half()
    for lib, m in ((cygrad, net), (torch, torch.nn.Linear(2, 2))):
        with pytest.raises(TypeError, match="nn.Module.to only accepts floating point or "
                                            "complex dtypes, but got desired dtype=.*int64"):
            m.to(lib.int64)
        with pytest.raises(RuntimeError, match="Invalid device string: 'float64'"):
            m.to("float64")


# ---------------------------------------------------------------------- state dicts

def test_state_dict_is_torch_layout_sharing_memory():
    net = Net()
    state = net.state_dict()
    assert isinstance(state, OrderedDict)
    assert list(state) == ["block.scale", "block.calls", "block.fc.weight", "block.fc.bias",
                           "head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"]
    assert all(type(v) is cygrad.Tensor and not v.requires_grad for v in state.values())
    state["block.scale"][0] = 5  # shares memory with the module, as torch's
    assert net.block.scale.numpy()[0] == 5
    assert net.state_dict(prefix="net.").keys() == {"net." + k for k in state}
    kept = net.state_dict(keep_vars=True)
    assert kept["block.fc.weight"] is net.block.fc.weight


def test_state_dict_matches_torch_keys(torch):
    ours = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Sequential(nn.Linear(3, 3)))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(),
                                 torch.nn.Sequential(torch.nn.Linear(3, 3)))
    for m, lib in ((ours, cygrad), (theirs, torch)):
        m.register_buffer("steps", lib.tensor(1))
        m[2].register_buffer("hidden", lib.zeros(1), persistent=False)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_state_dict_round_trip_and_save(tmp_path):
    cygrad.manual_seed(1)
    a = Net()
    cygrad.manual_seed(2)
    b = Net()
    a.block.calls.fill_(7)
    result = b.load_state_dict(a.state_dict())
    assert result == ([], []) and result.missing_keys == [] and \
        repr(result) == "<All keys matched successfully>"
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.numpy(), q.numpy()), name
    assert b.block.calls.item() == 7
    x = x32(2, 3)
    assert np.array_equal(a.eval()(x).numpy(), b.eval()(x).numpy())
    cygrad.save(a.state_dict(), tmp_path / "net.npz")  # Tensors are saved as their data
    c = Net()
    assert c.load_state_dict(cygrad.load(tmp_path / "net.npz")) == ([], [])  # arrays accepted
    assert np.array_equal(c.eval()(x).numpy(), a(x).numpy())


def test_load_state_dict_writes_in_place_and_converts_dtype():
    m = nn.Linear(2, 2)
    weight = m.weight.numpy()
    m.load_state_dict({"weight": cygrad.tensor(np.eye(2)), "bias": cygrad.zeros(2)})
    assert m.weight.numpy() is weight and np.array_equal(weight, np.eye(2))
    assert m.weight.dtype == cygrad.float32  # copied as copy_ does: converted


def test_load_state_dict_assign_puts_the_given_tensors():
    m = nn.Linear(2, 2)
    m.bias.requires_grad_(False)
    new = cygrad.ones(2, 2, dtype=cygrad.float64)
    m.load_state_dict({"weight": new, "bias": cygrad.zeros(2)}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight.dtype == cygrad.float64
    assert m.weight.numpy() is new.numpy() and m.weight.requires_grad
    assert not m.bias.requires_grad


def test_state_dict_lists_tied_parameter_under_every_name():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    model.load_state_dict(model.state_dict())


def test_load_state_dict_errors_are_torchs(torch):
    def state(lib):
        return {"weight": lib.zeros(2, 2), "extra": lib.zeros(1)}

    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    messages = []
    for m, lib in ((ours, cygrad), (theirs, torch)):
        with pytest.raises(RuntimeError) as info:
            m.load_state_dict(state(lib))
        messages.append(str(info.value).replace("torch.", "cygrad."))
    assert messages[0] == messages[1]
    assert messages[0].startswith("Error(s) in loading state_dict for Linear:\n\t"
                                  'Missing key(s) in state_dict: "bias". \n\t'
                                  'Unexpected key(s) in state_dict: "extra". \n\t'
                                  "size mismatch for weight: copying a param with shape")
    for m, lib in ((ours, cygrad), (theirs, torch)):
        missing, unexpected = m.load_state_dict({"bias": lib.ones(2), "x.y": lib.zeros(1)},
                                                strict=False)
        assert (missing, unexpected) == (["weight"], ["x.y"])
        assert m.bias.tolist() == [1.0, 1.0]
        with pytest.raises(RuntimeError, match="size mismatch for bias"):  # even when not strict
            m.load_state_dict({"bias": lib.zeros(3)}, strict=False)
    with pytest.raises(RuntimeError, match='While copying the parameter named "bias", expected '
                                           "cygrad.Tensor.*received <class 'list'>"):
        ours.load_state_dict({"weight": cygrad.zeros(2, 3), "bias": [0.0, 0.0]})
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        ours.load_state_dict([("weight", cygrad.zeros(2, 3))])


def test_load_state_dict_copies_what_fits_before_raising_as_torch():
    m = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="size mismatch for bias"):
        m.load_state_dict({"weight": cygrad.ones(2, 3), "bias": cygrad.zeros(5)})
    assert m.weight.numpy().tolist() == [[1.0] * 3] * 2


def test_extra_state_is_saved_and_loaded():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.count = 0

        def get_extra_state(self):
            return {"count": self.count}

        def set_extra_state(self, state):
            self.count = state["count"]

    a, b = nn.Sequential(Counter()), nn.Sequential(Counter())
    a[0].count = 5
    assert list(a.state_dict()) == ["0._extra_state"]
    b.load_state_dict(a.state_dict())
    assert b[0].count == 5
    with pytest.raises(RuntimeError, match='Missing key.*"0._extra_state"'):
        b.load_state_dict({})


def test_writes_into_parameters_under_a_live_graph_copy_on_write():
    layer = nn.Linear(2, 1, bias=False)
    nn.init.constant_(layer.weight, 2.0)
    x = cygrad.tensor([[3.0, 1.0]])
    loss = (layer(x) * layer(x)).sum()  # saved weight: 2
    layer.load_state_dict({"weight": cygrad.full((1, 2), 5.0)})
    assert layer.weight.numpy().tolist() == [[5.0, 5.0]]
    loss.backward()
    assert layer.weight.grad.tolist() == [[48.0, 16.0]]  # 2 (W x) x with the saved W = 2


# ---------------------------------------------------------------------- deepcopy

def test_deepcopy_keeps_ties_and_copies_data():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared, nn.Linear(3, 3))
    model[3].weight = shared.weight
    model.register_buffer("steps", cygrad.tensor(4))
    clone = copy.deepcopy(model)
    assert clone[0] is clone[2] and clone[0] is not shared
    assert clone[3].weight is clone[0].weight and isinstance(clone[3].weight, nn.Parameter)
    assert nn.tied_parameters(clone) == nn.tied_parameters(model)
    assert clone.steps.item() == 4
    clone[0].weight.data.fill_(0)
    assert shared.weight.numpy().any()
    x = x32(2, 3)
    clone.load_state_dict(model.state_dict())
    assert np.array_equal(clone(x).numpy(), model(x).numpy())


# ---------------------------------------------------------------------- forward hooks

def test_forward_hooks_run_in_order_and_can_replace(torch):
    for lib in (cygrad, torch):
        log = []
        m = lib.nn.Identity()
        m.register_forward_pre_hook(lambda mod, args, log=log: log.append(("pre", args[0].item())))
        m.register_forward_pre_hook(lambda mod, args: args[0] * 2)  # one value: wrapped
        m.register_forward_hook(lambda mod, args, out, log=log: log.append(
            ("post", args[0].item(), out.item())))
        h = m.register_forward_hook(lambda mod, args, out: out + 1)
        m.register_forward_hook(lambda mod, args, out, log=log: log.append(("first", out.item())),
                                prepend=True)
        assert m(lib.tensor(3.0)).item() == 7.0
        assert log == [("pre", 3.0), ("first", 6.0), ("post", 6.0, 6.0)]
        h.remove()
        h.remove()  # a second remove does nothing
        assert m(lib.tensor(3.0)).item() == 6.0


def test_forward_hooks_with_kwargs(torch):
    for lib in (cygrad, torch):
        class Scale(lib.nn.Module):
            def forward(self, x, scale=1.0):
                return x * scale

        m, seen = Scale(), []
        m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": 10.0}),
                                    with_kwargs=True)
        m.register_forward_hook(lambda mod, args, kwargs, out, seen=seen: seen.append(kwargs),
                                with_kwargs=True)
        assert m(lib.tensor(2.0), scale=3.0).item() == 20.0
        assert seen == [{"scale": 10.0}]
        m.register_forward_pre_hook(lambda mod, args, kwargs: 5, with_kwargs=True)
        with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple of "
                                               r"\(new_args, new_kwargs\), but got 5"):
            m(lib.tensor(2.0))


def test_always_call_hook_runs_when_forward_raises(torch):
    for lib in (cygrad, torch):
        class Boom(lib.nn.Module):
            def forward(self, x):
                raise ValueError("boom")

        m, seen = Boom(), []
        m.register_forward_hook(lambda mod, args, out, seen=seen: seen.append("plain"))
        m.register_forward_hook(lambda mod, args, out, seen=seen: seen.append(("always", out)),
                                always_call=True)
        with pytest.raises(ValueError, match="boom"):
            m(lib.tensor(1.0))
        assert seen == [("always", None)]


def test_hook_handles_are_context_managers():
    m, seen = nn.Tanh(), []
    with m.register_forward_hook(lambda mod, args, out: seen.append(1)):
        m(cygrad.tensor(1.0))
    m(cygrad.tensor(1.0))
    assert seen == [1] and not m._forward_hooks


# ---------------------------------------------------------------------- backward hooks

def _two_in(lib):
    class Model(lib.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.Linear(3, 2)

        def forward(self, x, y, label="unused"):
            return self.fc(x) * y, (x * 2).sum()

    return Model()


def test_full_backward_hooks_match_torch(torch):
    X = np.random.default_rng(0).standard_normal((4, 3))
    Y = np.random.default_rng(1).standard_normal((4, 2))
    results = []
    for lib, tnn in ((cygrad, nn), (torch, torch.nn)):
        model = _two_in(tnn).double()
        with lib.no_grad():
            model.fc.weight.copy_(lib.tensor(np.arange(6.0).reshape(2, 3) / 5))
            model.fc.bias.copy_(lib.tensor([0.5, -0.5]))
        log = []

        def pre(mod, grad_output, log=log):
            log.append(("pre", [tuple(g.shape) for g in grad_output]))
            return (grad_output[0] * 3, grad_output[1])

        def full(mod, grad_input, grad_output, log=log):
            log.append(("full", [None if g is None else g.numpy().copy() for g in grad_input],
                        [g.numpy().copy() for g in grad_output]))
            return (grad_input[0] * 2, None, None)

        model.register_full_backward_pre_hook(pre)
        model.register_full_backward_hook(full)
        x = lib.tensor(X, requires_grad=True)
        y = lib.tensor(Y, requires_grad=True)
        out, total = model(x, y, "a label")
        (out.sum() + total).backward()
        results.append((log, x.grad.numpy().copy(), y.grad, model.fc.weight.grad.numpy().copy()))
    (ours, ox, oy, ow), (theirs, tx, ty, tw) = results
    assert [e[0] for e in ours] == [e[0] for e in theirs] == ["pre", "full"]
    assert ours[0][1] == theirs[0][1] == [(4, 2), ()]
    for a, b in zip(ours[1][1] + ours[1][2], theirs[1][1] + theirs[1][2]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ox, tx, rtol=1e-12)  # grad_input replaced: doubled
    assert oy is None and ty is None  # replaced by None
    np.testing.assert_allclose(ow, tw, rtol=1e-12)  # grad_output tripled before the module


def test_full_backward_hook_without_input_grads_fires_at_the_outputs(torch):
    for lib in (cygrad, torch):
        layer = lib.nn.Linear(3, 2)
        seen = []
        layer.register_full_backward_hook(
            lambda mod, gi, go, seen=seen: seen.append((gi, tuple(go[0].shape))))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            layer(lib.ones(4, 3)).sum().backward()
        assert seen == [((None,), (4, 2))]
        assert layer.weight.grad is not None


def test_backward_hook_bad_results_raise(torch):
    layer = nn.Linear(3, 2)
    layer.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    x = cygrad.ones(4, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of "
                                           "grad_input, got 2, but expected 1"):
        layer(x).sum().backward()
    layer = nn.Linear(3, 2)
    layer.register_full_backward_hook(lambda mod, gi, go: (gi[0][:1],))
    with pytest.raises(RuntimeError, match="changed the size of grad_input"):
        layer(cygrad.ones(4, 3, requires_grad=True)).sum().backward()


def test_backward_hooks_removed_and_no_grad():
    layer, seen = nn.Linear(3, 2), []
    handle = layer.register_full_backward_hook(lambda *a: seen.append(1))
    with cygrad.no_grad():
        layer(cygrad.ones(1, 3, requires_grad=True))  # nothing to hook
    handle.remove()
    layer(cygrad.ones(1, 3, requires_grad=True)).sum().backward()
    assert seen == []


# ---------------------------------------------------------------------- hooks and fusion

def test_sequential_fusion_stands_aside_for_hooked_modules():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = x32(5, 3)
    fused = model(x)
    assert type(fused.grad_fn).__name__ == "Linear"
    assert type(fused._parents[0].grad_fn).__name__ == "LinearTanh"  # one fused node
    seen = []
    handle = model[1].register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    out = model(x)
    assert seen == [(5, 4)]  # the activation ran as a module, so its hook saw its output
    assert type(out._parents[0].grad_fn).__name__ != "LinearTanh"
    assert np.array_equal(out.numpy(), fused.numpy())  # the same bits either way
    handle.remove()
    assert type(model(x)._parents[0].grad_fn).__name__ == "LinearTanh"
    model[2].register_forward_pre_hook(lambda mod, args: seen.append("pre"))
    model(x)
    assert seen[-1] == "pre"  # a plain Linear with a hook is called, not inlined


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
        "  (5): Dropout(p=0.25, inplace=False)\n"
        ")")
    nested = repr(Net())
    assert nested.startswith("Net(\n  (block): Block(\n    (fc): Linear(in_features=3")
    assert nested.endswith("    (3): Linear(in_features=4, out_features=2, bias=True)\n  )\n)")


def test_repr_matches_torch_for_shared_layers(torch):
    ours = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Flatten(), nn.LeakyReLU(0.2),
                         nn.Dropout(0.1, inplace=True), nn.Unflatten(1, (1, 3)), nn.Identity(3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                 torch.nn.LeakyReLU(0.2), torch.nn.Dropout(0.1, inplace=True),
                                 torch.nn.Unflatten(1, (1, 3)), torch.nn.Identity(3))
    assert repr(ours) == repr(theirs)


def test_data_parallel_is_torchs_without_cuda():
    """nn.DataParallel on a machine without CUDA, as torch's there: the module called as it
    is, state dict keys under "module.", device_ids empty, torch's repr."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.DataParallel(torch.nn.Linear(2, 3).double(), device_ids=[0])
    ours = nn.DataParallel(nn.Linear(2, 3).double(), device_ids=[0])
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["module.weight",
                                                                   "module.bias"]
    assert ours.device_ids == theirs.device_ids == []
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.arange(4.0).reshape(2, 2)
    np.testing.assert_allclose(ours(cygrad.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy())
    with pytest.raises(NotImplementedError, match="DistributedDataParallel"):
        nn.parallel.DistributedDataParallel(ours)
