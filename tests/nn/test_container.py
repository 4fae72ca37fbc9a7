"""Containers against torch's: Sequential's full API, ModuleList, ModuleDict, ParameterList,
ParameterDict (indexing, mutation, registration, errors, repr)."""

from collections import OrderedDict

import numpy as np
import pytest

import cygrad
from cygrad import nn


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def both(torch):
    return ((cygrad, nn), (torch, torch.nn))


def names(module):
    return list(module._modules)


# ---------------------------------------------------------------------- Sequential

def test_sequential_indexing_and_slicing(torch):
    for _, tnn in both(torch):
        layers = [tnn.Linear(2, 3), tnn.Tanh(), tnn.Linear(3, 1)]
        model = tnn.Sequential(*layers)
        assert len(model) == 3 and list(model) == layers
        assert model[0] is layers[0] and model[-1] is layers[2]
        tail = model[1:]
        assert isinstance(tail, tnn.Sequential) and list(tail) == layers[1:]
        assert names(tail) == ["1", "2"]  # keys kept
        with pytest.raises(IndexError, match="index 3 is out of range"):
            model[3]  # noqa: B018
        with pytest.raises(TypeError):
            model["0"]  # noqa: B018
        with pytest.raises(TypeError, match="is not a Module subclass"):
            tnn.Sequential(tnn.Tanh(), lambda x: x)


def test_sequential_mutation_matches_torch(torch):
    results = []
    for _, tnn in both(torch):
        a, b, c, d = tnn.Tanh(), tnn.ReLU(), tnn.Sigmoid(), tnn.Identity()
        model = tnn.Sequential(a, b)
        model.append(c)
        model.insert(0, d)
        model.insert(-1, d)
        trace = [[type(m).__name__ for m in model], names(model)]
        model[1] = tnn.ELU()
        del model[0]
        trace.append([type(m).__name__ for m in model])
        trace.append(names(model))  # renumbered after a deletion
        assert type(model.pop(1)).__name__ == "ReLU"
        del model[:1]
        model.extend([tnn.Tanh(), tnn.Tanh()])
        trace.append([type(m).__name__ for m in model])
        both_ = model + tnn.Sequential(tnn.ReLU())
        trace.append([type(m).__name__ for m in both_])
        model += tnn.Sequential(tnn.ReLU())
        trace.append(names(model))
        twice = tnn.Sequential(a, b) * 2
        trace.append([type(m).__name__ for m in twice])
        assert twice[0] is twice[2]  # the same modules, repeated
        inplace = tnn.Sequential(a, b)
        inplace *= 3
        trace.append(names(inplace))
        with pytest.raises(ValueError, match="add operator supports only objects of Sequential"):
            model + [tnn.ReLU()]  # noqa: B018
        with pytest.raises(ValueError, match="Non-positive multiplication factor 0"):
            model * 0  # noqa: B018
        with pytest.raises(IndexError, match="Index out of range: 9"):
            model.insert(9, tnn.ReLU())
        with pytest.raises(AssertionError, match="module should be of type"):
            model.insert(0, 3)
        results.append(trace)
    assert results[0] == results[1]


def test_sequential_from_ordered_dict():
    model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in model.named_parameters()] == ["fc.weight", "fc.bias"]
    assert isinstance(model.act, nn.ReLU) and model[1] is model.act


def test_sequential_fusion_plan_follows_mutation():
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    x = cygrad.tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    assert type(model(x).grad_fn).__name__ == "LinearTanh"
    model[1] = nn.ReLU()
    assert type(model(x).grad_fn).__name__ == "LinearRelu"
    model.insert(1, nn.Identity())
    assert model(x).grad_fn.name() == "ReluBackward0"  # the Linear no longer followed by it
    del model[1]
    assert type(model(x).grad_fn).__name__ == "LinearRelu"


# ---------------------------------------------------------------------- ModuleList

def test_module_list_matches_torch(torch):
    traces = []
    for _, tnn in both(torch):
        layers = tnn.ModuleList([tnn.Linear(2, 2) for _ in range(3)])
        layers.append(tnn.ReLU())
        layers.extend([tnn.Tanh()])
        layers.insert(1, tnn.Sigmoid())
        trace = [[type(m).__name__ for m in layers], names(layers), len(layers)]
        layers[0] = tnn.Identity()
        del layers[1]
        trace += [[type(m).__name__ for m in layers], names(layers)]
        assert type(layers.pop(-1)).__name__ == "Tanh"
        tail = layers[1:3]
        trace += [type(tail).__name__, names(tail)]
        layers += [tnn.ELU()]
        trace.append([type(m).__name__ for m in layers + tnn.ModuleList([tnn.ReLU()])])
        trace.append(len(list(layers.parameters())))
        with pytest.raises(IndexError, match="index 10 is out of range"):
            layers[10]  # noqa: B018
        with pytest.raises(TypeError, match="ModuleList.extend should be called with an "
                                            "iterable, but got int"):
            layers.extend(3)
        with pytest.raises(NotImplementedError):
            layers(1)
        traces.append(trace)
    assert traces[0] == traces[1]


def test_module_list_registers_parameters_for_optimizers():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x).tanh()
            return x

    model = Stack()
    assert [n for n, _ in model.named_parameters()][:2] == ["layers.0.weight", "layers.0.bias"]
    assert sum(p.numel() for p in model.parameters()) == 3 * 20
    x = cygrad.ones(2, 4)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_module_list_repr_groups_repeats(torch):
    for _, tnn in both(torch):
        layers = tnn.ModuleList([tnn.Linear(2, 2) for _ in range(3)] +
                                [tnn.ReLU(), tnn.ReLU(), tnn.Tanh()])
        reprs = repr(layers)
        assert reprs == ("ModuleList(\n"
                         "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                         "  (3-4): 2 x ReLU()\n"
                         "  (5): Tanh()\n"
                         ")")
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"
    nested = nn.ModuleList([nn.Sequential(nn.Linear(1, 1))])
    assert repr(nested) == repr(torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(1, 1))]))


# ---------------------------------------------------------------------- ModuleDict

def test_module_dict_matches_torch(torch):
    traces = []
    for _, tnn in both(torch):
        d = tnn.ModuleDict({"b": tnn.Linear(1, 1), "a": tnn.ReLU()})
        d["c"] = tnn.Tanh()
        d.update([("e", tnn.Sigmoid())])
        d.update(OrderedDict([("f", tnn.Identity())]))
        trace = [list(d), list(d.keys()), [type(m).__name__ for m in d.values()],
                 "a" in d, len(d)]
        assert type(d.pop("a")).__name__ == "ReLU"
        del d["c"]
        trace += [list(d), [k for k, _ in d.items()], [n for n, _ in d.named_parameters()]]
        with pytest.raises(ValueError, match="ModuleDict update sequence element #0 has length "
                                             "3; 2 is required"):
            d.update([("x", tnn.ReLU(), 1)])
        with pytest.raises(TypeError, match="ModuleDict update sequence element #0 should be "
                                            "Iterable"):
            d.update([3])
        trace.append(repr(d))
        d.clear()
        trace.append(len(d))
        traces.append(trace)
    assert traces[0] == traces[1]


# ---------------------------------------------------------------------- ParameterList, Dict

def test_parameter_list_matches_torch(torch):
    traces = []
    for lib, tnn in both(torch):
        plist = tnn.ParameterList([tnn.Parameter(lib.zeros(2, 3)),
                                   lib.ones(3, dtype=lib.float64)])
        plist.append(lib.zeros(1))
        plist.extend([tnn.Parameter(lib.zeros(4))])
        trace = [len(plist), [type(p).__name__ for p in plist],
                 [n for n, _ in plist.named_parameters()], type(plist[1:3]).__name__,
                 len(plist[1:3])]
        plist[0] = lib.ones(2)
        trace.append([tuple(p.shape) for p in plist])
        trace.append(repr(plist).replace("torch.", "cygrad."))
        with pytest.raises(TypeError, match="ParameterList.extend should be called with an "
                                            "iterable"):
            plist.extend(lib.zeros(2))
        with pytest.raises(RuntimeError, match="ParameterList should not be called."):
            plist(1)
        traces.append(trace)
    assert traces[0] == traces[1]
    assert traces[0][-1] == (
        "ParameterList(\n"
        "    (0): Parameter containing: [cygrad.float32 of size 2]\n"
        "    (1): Parameter containing: [cygrad.float64 of size 3]\n"
        "    (2): Parameter containing: [cygrad.float32 of size 1]\n"
        "    (3): Parameter containing: [cygrad.float32 of size 4]\n"
        ")")


def test_parameter_list_shares_tensor_data():
    t = cygrad.zeros(3)
    plist = nn.ParameterList([t])
    assert isinstance(plist[0], nn.Parameter) and plist[0].numpy() is t.numpy()


def test_parameter_dict_matches_torch(torch):
    traces = []
    for lib, tnn in both(torch):
        pdict = tnn.ParameterDict({"b": lib.zeros(2), "a": tnn.Parameter(lib.ones(1))})
        pdict["c"] = lib.zeros(3, dtype=lib.float64)
        pdict.update([("d", lib.ones(2))])
        trace = [list(pdict), list(pdict.keys()), [n for n, _ in pdict.named_parameters()],
                 "a" in pdict, len(pdict), type(pdict["b"]).__name__]
        assert pdict.get("zz", 5) == 5
        pdict.setdefault("e", lib.zeros(1))
        key, _ = pdict.popitem()
        trace += [key, list(pdict.pop("c").shape), list(pdict)]
        trace.append(repr(pdict).replace("torch.", "cygrad."))
        merged = pdict | tnn.ParameterDict({"z": lib.zeros(1)})
        trace.append(list(merged))
        with pytest.raises(TypeError, match="Index given to ParameterDict cannot be used as a "
                                            "key as it is not a string"):
            tnn.ParameterDict()[3] = lib.zeros(1)  # (torch keeps the bad key: a fresh dict)
        with pytest.raises(RuntimeError, match="ParameterDict should not be called."):
            pdict(1)
        del pdict["a"]
        trace.append(list(pdict))
        pdict.clear()
        trace.append(len(pdict))
        traces.append(trace)
    assert traces[0] == traces[1]
    assert "(a): Parameter containing: [cygrad.FloatTensor of size 1]" in traces[0][9]


def test_containers_in_state_dict_and_to(torch):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.heads = nn.ModuleDict({"x": nn.Linear(2, 1)})
            self.scales = nn.ParameterList([cygrad.ones(2)])
            self.bias = nn.ParameterDict({"out": cygrad.zeros(1)})

    model = Model()
    assert list(model.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
        "heads.x.weight", "heads.x.bias", "scales.0", "bias.out"]
    model.double()
    assert all(p.dtype == cygrad.float64 for p in model.parameters())
    other = Model()
    other.load_state_dict(model.state_dict())
    assert np.array_equal(other.blocks[1].weight.numpy(), model.blocks[1].weight.numpy())
