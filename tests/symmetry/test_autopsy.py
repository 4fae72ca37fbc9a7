"""The split autopsy: each split the monitor reports names the first op of the step whose
output broke the tie (op, phase, ulps), found by the op recorder from the step's arrays; and
first_divergence names the first op whose bits differ between two configurations."""

import contextlib

import numpy as np
import pytest
from symmetry_helpers import exact, linears, mlp, set_constant
from test_monitor import rounding_prone

import cygrad
from cygrad import nn, optim, tensor
from cygrad.symmetry import SymmetryMonitor, first_divergence, first_divergence_torch, ulps
from cygrad.symmetry.autopsy import OpRecorder

DROPOUT = "dropout was active"


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def constant_mlp(width, dtype, dropout=0.0):
    model = mlp([3, width, width, 2], "tanh", dtype=dtype, dropout=dropout)
    return set_constant(model, lambda layer: 0.5 / layer.in_features, 0.1)


def batch(dtype, n=8):
    rng = np.random.default_rng(0)
    return (tensor(rng.standard_normal((n, 3)), dtype=dtype),
            tensor(rng.standard_normal((n, 2)), dtype=dtype))


def train(model, monitor, steps, dtype):
    x, t = batch(dtype)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return opt


def test_ulps():
    a = np.array([1.0, 2.0, -0.0], np.float32)
    b = np.array([np.nextafter(np.float32(1), np.float32(2)), 2.0, 0.0], np.float32)
    assert ulps(a, b) == 1 and ulps(a, a) == 0
    c = np.array([1.0, 2.0, 0.0]) + np.array([0, 3 * np.spacing(2.0), 0])
    assert ulps(np.array([1.0, 2.0, 0.0]), c) == 3
    with pytest.raises(ValueError, match="float arrays of one shape and dtype"):
        ulps(a, a.astype(np.float64))


def test_dropout_split_names_the_dropout_op(dtype):
    cygrad.manual_seed(0)
    model = constant_mlp(6, dtype, dropout=0.3)
    with exact(1):
        monitor = SymmetryMonitor(model)
        train(model, monitor, 2, dtype)
    first = monitor.splits[0]
    assert first["step"] == 1 and first["cause"] == DROPOUT
    assert first["op"] == "Dropout" and first["phase"] == "forward" and first["ulps"] > 0
    assert first["autopsy"].startswith(f"step 1, forward of layer {first['layer']} (Dropout)")
    assert "first differ here" in first["autopsy"]
    assert first["autopsy"] in monitor.report()


class Scale(nn.Module):
    """x * c with c all ones but one entry 1.001: the elementwise op that breaks the tie of the
    units it multiplies, in the forward pass, on any backend."""

    def __init__(self, width, unit, dtype):
        super().__init__()
        c = np.ones(width, dtype)
        c[unit] = 1.001
        self.c = tensor(c)

    def forward(self, x):
        return x * self.c


@pytest.mark.parametrize("threads", [1, 2])
def test_a_forward_op_that_breaks_the_tie_is_named(dtype, threads):
    width, unit = 5, 3
    model = constant_mlp(width, dtype)
    model = nn.Sequential(model[0], Scale(width, unit, dtype), *list(model)[1:])
    with exact(threads):
        monitor = SymmetryMonitor(model)
        train(model, monitor, 1, dtype)
    split = [s for s in monitor.splits if s["layer"] == "0"]
    assert len(split) == 1
    s = split[0]
    assert s["into"] == [[u for u in range(width) if u != unit], [unit]]
    assert s["op"] == "Mul" and s["phase"] == "forward" and s["pair"] == (0, unit)
    assert s["ulps"] >= 1
    assert s["cause"] == "floating-point rounding (cython backend)"
    assert s["autopsy"].startswith("step 1, forward of layer 0 (Mul): units 0 and 3 first "
                                   "differ here (its output)")


def test_a_backward_op_that_breaks_the_tie_is_named(dtype):
    """A gradient hook changes one column of the gradient reaching layer 0's output (hooks
    are not ops): the first array of the step that differs for the units is layer 0's weight
    gradient, made by its backward."""
    width, unit = 4, 2
    model = mlp([3, width, 2], "identity", dtype=dtype)
    set_constant(model, 0.25, 0.0)
    x, t = batch(dtype)

    def nudge(g):
        g = g.numpy().copy()
        g[:, unit] *= 3
        return tensor(g)

    with exact(1):
        monitor = SymmetryMonitor(model)
        opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
        h = linears(model)[0](x)
        h.register_hook(nudge)
        loss = nn.functional.mse_loss(linears(model)[1](h), t)
        loss.backward()
        opt.step()
    (s,) = [s for s in monitor.splits if s["layer"] == "0"]
    assert s["phase"] == "backward" and s["op"] == "Linear" and s["ulps"] > 0
    assert "backward of layer 0 (Linear, dW = g.T @ x)" in s["autopsy"]
    assert "(the grad of 0.weight)" in s["autopsy"]


def test_weights_changed_outside_the_step_are_blamed_on_the_update(dtype):
    width = 5
    model = constant_mlp(width, dtype)
    with exact(1):
        monitor = SymmetryMonitor(model)
        opt = train(model, monitor, 1, dtype)
        w = linears(model)[0].weight.numpy()
        w[1, 0] = np.nextafter(w[1, 0], dtype.type(np.inf))
        monitor.record()
    (s,) = [s for s in monitor.splits if s["layer"] == "0"]
    assert s["step"] == 2 and s["phase"] == "update" and s["ulps"] is None
    assert s["op"] == type(opt).__name__


@pytest.mark.parametrize("width,dtype_,batch_,steps", [(100, np.float32, 32, 2),
                                                       (257, np.float64, 64, 3)])
def test_numpy_backend_splits_come_with_their_autopsy(width, dtype_, batch_, steps):
    """Whether OpenBLAS splits these depends on its kernel (test_monitor.py pins where it
    does); whatever happened, every split has an autopsy naming a recorded op, and cython
    never splits."""
    monitor = rounding_prone(width, dtype_, batch_, steps, "numpy")
    for s in monitor.splits:
        assert s["phase"] in ("forward", "backward", "update")
        assert s["autopsy"].startswith(f"step {s['step']}, ")
        if s["phase"] != "update":
            assert s["op"] and s["ulps"] >= 1 and f"({s['op']}" in s["autopsy"]
    assert rounding_prone(width, dtype_, batch_, steps, "cython").splits == []


def test_recorder_tags_ops_with_their_layer(dtype):
    model = constant_mlp(4, dtype, dropout=0.5)
    x, t = batch(dtype)
    recorder = OpRecorder(model)
    with exact(1), recorder:
        nn.functional.mse_loss(model(x), t).backward()
    forward = [(e.op.kind(), e.module) for e in recorder.events if e.phase == "forward"]
    linear_tags = [tag for name, tag in forward if name.startswith("Linear")]
    assert linear_tags == ["0", "3", "6"]
    assert [tag for name, tag in forward if name == "Dropout"] == ["0", "3"]
    grads = [r for e in recorder.events for r in e.roles if r.startswith("grad of ")]
    assert {"grad of 0.weight", "grad of 3.bias", "grad of 6.weight"} <= set(grads)


# ---------------------------------------------------------------- first_divergence

def one_step(perturb=None):
    """A step from a fixed starting point; perturb: multiply the hidden output by it."""
    def step():
        cygrad.manual_seed(3)
        model = mlp([3, 16, 2], "tanh", dtype=np.float32)
        x, t = batch(np.dtype(np.float32))
        opt = optim.SGD(model.parameters(), lr=0.1)
        h = model[1](model[0](x))
        if _PERTURB[0] is not None:
            h = h * _PERTURB[0]
        loss = nn.functional.mse_loss(model[2](h), t)
        loss.backward()
        opt.step()
        return model
    return step


_PERTURB = [None]


@contextlib.contextmanager
def perturbed(value):
    _PERTURB[0] = value
    try:
        yield
    finally:
        _PERTURB[0] = None


def test_first_divergence_none_when_every_bit_agrees():
    assert first_divergence(one_step(), exact(1), exact(2)) is None
    assert first_divergence(one_step(), exact(1), exact(1)) is None


def test_first_divergence_names_the_first_differing_op():
    nudge = np.float32(np.nextafter(np.float32(1), np.float32(2)))
    found = first_divergence(one_step(), perturbed(np.float32(1)), perturbed(nudge))
    assert found is not None
    assert found.op == "Mul" and found.phase == "forward" and found.max_ulps >= 1
    assert found.elements >= 1 and "Mul" in str(found)


def test_first_divergence_cython_against_numpy():
    """Machine-dependent (numpy's BLAS): None, or the first op whose bits differ."""
    found = first_divergence(one_step(), exact(1), cygrad.backend.using("numpy"))
    if found is not None:
        assert found.phase in ("forward", "backward", "update") and found.position >= 0
        assert found.text


def integer_model():
    """Small integers everywhere (weights, inputs, targets; batch 4, lr 0.5): every product
    and sum of the step is exact, so cygrad and torch must agree bitwise whatever their
    summation order."""
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU(),
                          nn.Linear(4, 2, dtype=np.float64))
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.numpy()[...] = rng.integers(-3, 4, p.shape)
    x = rng.integers(-2, 3, (4, 3)).astype(np.float64)
    t = rng.integers(-2, 3, (4, 2)).astype(np.float64)
    return model, x, t


def test_first_divergence_torch_agrees_on_exact_arithmetic():
    pytest.importorskip("torch")
    model, x, t = integer_model()
    before = [p.numpy().copy() for p in model.parameters()]
    assert first_divergence_torch(model, x, t, lr=0.5) is None
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))


def test_first_divergence_torch_finds_the_first_differing_layer():
    torch = pytest.importorskip("torch")
    from cygrad.interop import to_torch

    model, x, t = integer_model()
    theirs = to_torch(model)
    with torch.no_grad():
        theirs[2].bias[1] += 1
    found = first_divergence_torch(model, x, t, lr=0.5, torch_model=theirs)
    assert found.phase == "forward" and found.module == "2" and found.op == "Linear"
    assert found.position == 2 and found.elements == 4 and found.max_ulps > 0


def test_first_divergence_torch_reports_what_happened_on_rounding():
    """float32 width 100: whether torch's and cygrad's kernels round alike is
    machine-dependent; the answer is None or the first differing layer."""
    pytest.importorskip("torch")
    model = constant_mlp(100, np.dtype(np.float32))
    x, t = batch(np.dtype(np.float32))
    found = first_divergence_torch(model, x, t, lr=0.1)
    assert found is None or (found.phase in ("forward", "backward", "update") and found.text)


def test_health_false_keeps_groups_splits_and_autopsies(dtype):
    cygrad.manual_seed(0)
    full, lean = (constant_mlp(6, dtype, dropout=0.3) for _ in range(2))
    lean.load_state_dict(full.state_dict())
    monitors = []
    for model, health in ((full, True), (lean, False)):
        cygrad.manual_seed(1)
        with exact(1):
            monitor = SymmetryMonitor(model, health=health)
            train(model, monitor, 3, dtype)
        monitors.append(monitor)
    a, b = monitors
    assert [{k: s[k] for k in ("step", "layer", "into", "op", "phase", "ulps", "autopsy")}
            for s in a.splits] == [{k: s[k] for k in ("step", "layer", "into", "op", "phase",
                                                      "ulps", "autopsy")} for s in b.splits]
    for name, _ in a.layers:
        assert a.widths(name) == b.widths(name)
        last = b.history[-1]["layers"][name]
        assert last["update_ratio"] is None and last["grads"]["weight"]["norm"] is None
        assert last["grads"]["weight"]["status"] == a.history[-1]["layers"][name]["grads"][
            "weight"]["status"]
