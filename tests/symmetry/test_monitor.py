"""SymmetryMonitor on constructed cases: what it records, and how it explains each split
(dropout, outgoing weights, output layer, rounding forced on OpenBLAS or injected by hand)."""

import os
import sys

import numpy as np
import pytest
from symmetry_helpers import exact, linears, mlp, set_constant, step, task

import cygrad
from blas_kernel import measured_on
from cygrad import nn, optim, tensor
from cygrad.symmetry import SymmetryMonitor

DROPOUT = "dropout was active"
OUTGOING = "outgoing weights differed before the step"
OUTPUT = "output layer: the loss gives each output unit its own error"


def constant_mlp(width, dtype, dropout=0.0, n_out=1, n_in=3):
    model = mlp([n_in, width, width, n_out], "tanh", dtype=dtype, dropout=dropout)
    return set_constant(model, lambda layer: 0.5 / layer.in_features, 0.1)


def train(model, steps, dtype, loss="mse", lr=0.1, batch=16, monitor=None):
    """SGD on a random regression task; returns the (attached) monitor."""
    n_out = linears(model)[-1].out_features
    x, target, loss_fn = task(loss, batch, linears(model)[0].in_features, n_out, dtype)
    monitor = monitor or SymmetryMonitor(model)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=lr))
    for _ in range(steps):
        step(model, opt, loss_fn, x, target)
    return monitor


# ---------------------------------------------------------------- recording


def test_step_0_is_recorded_at_construction(dtype):
    model = mlp([3, 5, 4, 2], "tanh", dtype=dtype)
    linears(model)[1].register_parameter("bias", None)
    monitor = SymmetryMonitor(model)
    assert [name for name, _ in monitor.layers] == ["0", "2", "4"]
    (entry,) = monitor.history
    assert entry["step"] == 0 and entry["backend"] == cygrad.backend.current()
    layer = entry["layers"]["0"]
    assert layer["units"] == 5 and layer["effective_width"] == 5
    assert layer["groups"] == [[u] for u in range(5)]
    assert layer["grads"] == {"weight": {"status": "none", "norm": None},
                              "bias": {"status": "none", "norm": None}}
    assert entry["layers"]["2"]["grads"]["bias"] is None
    assert monitor.splits == []
    assert monitor.first_nonzero_grad == {"0": None, "2": None, "4": None}


def test_attach_records_once_per_step_and_passes_the_result_through():
    model = constant_mlp(7, np.float64)
    monitor = SymmetryMonitor(model)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
    x, target, loss_fn = task("mse", 8, 3, 1, np.float64)
    for n in range(1, 6):
        loss = loss_fn(model(x), target)
        opt.zero_grad()
        loss.backward()
        assert len(monitor.history) == n  # backward alone records nothing
        assert opt.step(closure=lambda: "the closure's loss") == "the closure's loss"
        assert len(monitor.history) == n + 1
    assert [h["step"] for h in monitor.history] == list(range(6))
    assert monitor.widths("0") == [1] * 6


def test_record_by_hand_counts_steps():
    monitor = SymmetryMonitor(constant_mlp(4, np.float32))
    assert monitor.record()["step"] == 1
    assert monitor.record()["step"] == 2
    assert len(monitor.history) == 3


def test_a_model_without_weight_layers_or_a_bad_watch_is_refused():
    with pytest.raises(ValueError, match="no layer the symmetry tools inspect"):
        SymmetryMonitor(nn.Sequential(nn.Tanh()))
    with pytest.raises(ValueError, match="watched layer 'nope'"):
        SymmetryMonitor(constant_mlp(4, np.float32), watch=[("nope", 0, 1)])


@pytest.mark.parametrize("threads", [1, 2])
def test_gradient_status_and_norms_follow_the_wavefront(dtype, threads):
    """S3 with depth 4: layer L-k first gets a non-zero weight gradient at step k+1; until
    then its gradient is exactly zero (not absent), with norm 0."""
    depth, width = 4, 100
    model = mlp([3] + [width] * (depth - 1) + [2], "tanh", dtype=dtype)
    rng = np.random.default_rng(0)
    for layer in linears(model):
        layer.weight.numpy()[...] = 0.0
        layer.bias.numpy()[...] = rng.uniform(-1, 1, layer.bias.shape)
    with exact(threads):
        monitor = train(model, depth + 1, dtype, "cross_entropy", lr=2.0, batch=40,
                        monitor=SymmetryMonitor(model, health_every=1))
    names = [name for name, _ in monitor.layers]
    assert names == ["0", "2", "4", "6"]
    assert monitor.first_nonzero_grad == {"0": 4, "2": 3, "4": 2, "6": 1}
    for h in monitor.history[1:]:
        for k, name in enumerate(names):
            g = h["layers"][name]["grads"]["weight"]
            if h["step"] >= depth - k:
                assert g["status"] == "nonzero" and g["norm"] > 0
            else:
                assert g == {"status": "zero", "norm": 0.0}
    last = monitor.history[-1]["layers"]
    for name, layer in monitor.layers:
        for what in ("weight", "bias"):
            grad = getattr(layer, what).grad.numpy().astype(np.float64)
            assert last[name]["grads"][what]["norm"] == pytest.approx(
                np.linalg.norm(grad), rel=1e-12)
    text = monitor.report()
    assert "first step with a non-zero weight gradient: 0: 4, 2: 3, 4: 2, 6: 1" in text


def test_first_nonzero_grad_never_for_a_layer_that_never_learns():
    model = set_constant(mlp([3, 7, 7, 2], "tanh", dtype=np.float64), 0.0)  # S2: zero init
    monitor = train(model, 5, np.float64)
    assert monitor.first_nonzero_grad == {"0": None, "2": None, "4": None}
    assert all(h["layers"]["4"]["grads"]["bias"]["status"] == "nonzero"
               for h in monitor.history[1:])
    assert all(h["layers"]["0"]["grads"]["bias"]["status"] == "zero"
               for h in monitor.history[1:])
    assert "0: never, 2: never, 4: never" in monitor.report()


# ---------------------------------------------------------------- diagnosis


def test_dropout_split(dtype):
    cygrad.manual_seed(0)
    model = constant_mlp(7, dtype, dropout=0.5)
    with exact(2):
        monitor = train(model, 1, dtype)
    hidden = [s for s in monitor.splits if s["layer"] in ("0", "3")]
    assert {s["layer"] for s in hidden} == {"0", "3"}
    for s in hidden:
        assert s["step"] == 1 and s["cause"] == DROPOUT
        assert s["units"] == list(range(7))
        assert sorted(u for part in s["into"] for u in part) == list(range(7))
        assert len(s["into"]) > 1 and s["into"] == sorted(s["into"], key=lambda p: p[0])
    entry = monitor.history[1]["layers"]["0"]
    assert entry["effective_width"] == len(hidden[0]["into"])
    assert entry["max_tied_diff"] > 0


def test_dropout_in_eval_mode_splits_nothing(dtype):
    model = constant_mlp(7, dtype, dropout=0.5).eval()
    with exact(2):
        monitor = train(model, 20, dtype)
    assert monitor.splits == []
    assert all(h["layers"]["0"]["max_tied_diff"] == 0.0 for h in monitor.history)


def test_outgoing_weights_split(dtype):
    cygrad.manual_seed(1)
    model = mlp([3, 6, 4, 1], "tanh", dtype=dtype)
    first = linears(model)[0]
    first.weight.numpy()[...] = 0.25
    first.bias.numpy()[...] = 0.0
    with exact(1):
        monitor = train(model, 3, dtype)
    (split,) = [s for s in monitor.splits if s["layer"] == "0"]
    assert split["step"] == 1 and split["cause"] == OUTGOING
    assert split["units"] == list(range(6)) and split["into"] == [[u] for u in range(6)]
    assert monitor.widths("0") == [1, 6, 6, 6]
    assert monitor.history[0]["layers"]["0"]["tied"] == [[u] for u in range(6)]


def test_output_layer_split(dtype):
    model = constant_mlp(5, dtype, n_out=3)
    with exact(1):
        monitor = train(model, 2, dtype)
    (split,) = [s for s in monitor.splits if s["layer"] == "4"]
    assert split["step"] == 1 and split["cause"] == OUTPUT and split["units"] == [0, 1, 2]
    assert monitor.widths("0") == [1, 1, 1]  # the hidden layers stay at one unit


def rounding_prone(width, dtype, batch, steps, backend):
    """The measured case: 2-w-w-1 tanh MLP, weights 0.3 in the first layer and 1/in_features
    after, biases 0.1, spirals inputs, MSE to the labels, SGD lr 0.5."""
    model = mlp([2, width, width, 1], "tanh", dtype=dtype)
    set_constant(model, lambda layer: 0.3 if layer.in_features == 2 else 1 / layer.in_features,
                 0.1)
    X, y = cygrad.data.spirals(batch, seed=0, dtype=dtype)
    x, t = tensor(X), tensor(y.reshape(-1, 1).astype(dtype))
    with cygrad.backend.using(backend):
        monitor = SymmetryMonitor(model)
        opt = monitor.attach(optim.SGD(model.parameters(), lr=0.5))
        for _ in range(steps):
            step(model, opt, nn.functional.mse_loss, x, t)
    return monitor


def first_wider(monitor):
    """First step at which a hidden layer has more than one distinct unit."""
    hidden = [name for name, _ in monitor.layers[:-1]]
    return next((h["step"] for h in monitor.history
                 if any(h["layers"][n]["effective_width"] > 1 for n in hidden)), None)


# OpenBLAS's SkylakeX kernel (an AVX-512 Zen 4, where these were measured) and its Haswell
# kernel (AVX2 EPYC) split these cases as asserted; its Sandybridge and Nehalem kernels do not.
@measured_on("SkylakeX", "Haswell")
def test_rounding_split_forced_on_openblas_float32():
    """float32, width 100, batch 32: the numpy backend splits at step 1."""
    monitor = rounding_prone(100, np.float32, 32, 2, "numpy")
    first = monitor.splits[0]
    assert first["step"] == 1 and first_wider(monitor) == 1
    assert first["cause"] == "floating-point rounding (numpy backend)"
    assert monitor.history[1]["layers"][first["layer"]]["max_tied_diff"] > 0
    assert "floating-point rounding (numpy backend)" in monitor.report()
    assert rounding_prone(100, np.float32, 32, 2, "cython").splits == []


@measured_on("SkylakeX", "Haswell")
def test_rounding_split_forced_on_openblas_float64():
    """float64, width 257, batch 64: a hidden layer has two distinct units from step 2. The
    monitor sees the cause one step earlier: at step 1 rounding made the output layer's
    columns of the tied last hidden units differ, and at step 2 those differing outgoing
    weights split the units' incoming weights."""
    monitor = rounding_prone(257, np.float64, 64, 3, "numpy")
    assert first_wider(monitor) == 2
    first = monitor.splits[0]
    assert first["step"] == 1 and first["layer"] == "2"
    assert first["cause"] == ("outgoing weights of tied units separated: "
                              "floating-point rounding (numpy backend)")
    assert monitor.widths("2")[:2] == [1, 1]
    assert [len(h["layers"]["2"]["tied"]) for h in monitor.history[:2]] == [1, 2]
    at_2 = [s for s in monitor.splits if s["step"] == 2 and s["layer"] == "2"]
    assert at_2 and at_2[0]["cause"] == OUTGOING
    assert rounding_prone(257, np.float64, 64, 3, "cython").splits == []


@pytest.mark.parametrize("width", [7, 100])
def test_rounding_split_injected_by_hand(width, dtype):
    """One ulp on one incoming weight of a tied unit, no dropout, equal outgoing columns:
    nothing but rounding could have done that, and the monitor says so."""
    j = width - 2
    model = constant_mlp(width, dtype)
    first = linears(model)[0]
    with exact(2):
        monitor = train(model, 2, dtype)
        assert monitor.splits == []
        w = first.weight.numpy()
        w[j, 1] = np.nextafter(w[j, 1], dtype.type(np.inf))
        entry = monitor.record()
    (split,) = monitor.splits
    assert split["step"] == 3 and split["layer"] == "0"
    assert split["cause"] == "floating-point rounding (cython backend)"
    assert "rounding" in split["cause"]
    assert split["units"] == list(range(width))
    assert split["into"] == [[u for u in range(width) if u != j], [j]]
    ulp = float(np.spacing(np.abs(w[0, 1])))
    assert entry["layers"]["0"]["max_tied_diff"] == ulp
    assert entry["layers"]["0"]["effective_width"] == 2
    assert monitor.history[2]["layers"]["0"]["max_tied_diff"] == 0.0


def test_rounding_on_the_outgoing_side_injected_by_hand(dtype):
    """One ulp on one outgoing weight of a tied unit: the units' incoming side is still one
    group, but they are no longer tied; the monitor reports where and why."""
    j, width = 3, 7
    model = constant_mlp(width, dtype)
    with exact(1):
        monitor = train(model, 1, dtype)
        w = linears(model)[1].weight.numpy()  # layer "2": the outgoing weights of layer "0"
        w[5, j] = np.nextafter(w[5, j], dtype.type(-np.inf))
        monitor.record()
    split = [s for s in monitor.splits if s["layer"] == "0"]
    assert len(split) == 1 and split[0]["step"] == 2
    assert split[0]["cause"] == ("outgoing weights of tied units separated: "
                                 "floating-point rounding (cython backend)")
    assert split[0]["into"] == [[u for u in range(width) if u != j], [j]]
    assert monitor.widths("0") == [1, 1, 1]
    assert [len(h["layers"]["0"]["tied"]) for h in monitor.history] == [1, 1, 2]


def test_dropout_beats_rounding_as_the_explanation(dtype):
    model = constant_mlp(5, dtype, dropout=0.3).eval()
    with exact(1):
        monitor = train(model, 1, dtype)
        model.train()
        w = linears(model)[0].weight.numpy()
        w[2, 0] = np.nextafter(w[2, 0], dtype.type(np.inf))
        monitor.record()
    assert [s["cause"] for s in monitor.splits] == [DROPOUT]


def test_conv_filters_with_flattened_outgoing_weights(dtype):
    """Tied filters with equal column blocks stay tied; with unequal blocks they split at
    step 1 and the monitor blames the outgoing weights."""
    X, y = cygrad.data.bars_and_crosses(24, size=6, seed=0, dtype=dtype)
    for equal_blocks in (True, False):
        cygrad.manual_seed(2)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, dtype=dtype), nn.ReLU(), nn.Flatten(),
                              nn.Linear(4 * 16, 3, dtype=dtype))
        conv, head = model[0], model[3]
        conv.weight.numpy()[3] = conv.weight.numpy()[1]
        conv.bias.numpy()[3] = conv.bias.numpy()[1]
        if equal_blocks:
            head.weight.numpy()[:, 48:64] = head.weight.numpy()[:, 16:32]
        with exact(2):
            monitor = SymmetryMonitor(model, watch=[("0", 1, 3)])
            opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
            for _ in range(5):
                step(model, opt, nn.functional.cross_entropy, tensor(X), y)
        distances = [h["watch"][("0", 1, 3)] for h in monitor.history]
        conv_splits = [s for s in monitor.splits if s["layer"] == "0"]
        if equal_blocks:
            assert conv_splits == [] and distances == [0.0] * 6
            assert monitor.history[-1]["layers"]["0"]["tied"] == [[0], [1, 3], [2]]
        else:
            assert [(s["step"], s["units"], s["cause"]) for s in conv_splits] == [
                (1, [1, 3], OUTGOING)]
            assert distances[0] == 0.0 and all(d > 0 for d in distances[1:])


def test_conv_to_conv_outgoing_weights(dtype):
    cygrad.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=dtype), nn.Tanh(),
                          nn.Conv2d(4, 2, 3, dtype=dtype), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 2, dtype=dtype))
    conv = model[0]
    conv.weight.numpy()[2] = conv.weight.numpy()[0]
    conv.bias.numpy()[2] = conv.bias.numpy()[0]
    X, y = cygrad.data.bars_and_crosses(8, size=6, seed=0, dtype=dtype)
    y = y % 2
    with exact(1):
        monitor = SymmetryMonitor(model)
        opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
        step(model, opt, nn.functional.cross_entropy, tensor(X), y)
    assert [(s["layer"], s["units"], s["cause"]) for s in monitor.splits
            if s["layer"] == "0"] == [("0", [0, 2], OUTGOING)]


# ---------------------------------------------------------------- reading


def test_max_tied_diff_and_watch_while_tied(dtype):
    model = constant_mlp(7, dtype)
    with exact(2):
        monitor = train(model, 10, dtype)
    assert all(h["layers"][n]["max_tied_diff"] == 0.0
               for h in monitor.history for n in ("0", "2", "4"))
    watched = SymmetryMonitor(model, watch=[("2", 0, 6), ("0", 1, 2)])
    model[0].weight.numpy()[2, 0] += 0.5
    entry = watched.record()
    assert entry["watch"][("2", 0, 6)] == 0.0
    assert entry["watch"][("0", 1, 2)] == pytest.approx(0.5, rel=1e-6)
    assert entry["layers"]["0"]["max_tied_diff"] == pytest.approx(0.5, rel=1e-6)


def test_report_without_and_with_splits():
    model = constant_mlp(7, np.float64)
    with exact(1):
        monitor = train(model, 12, np.float64)
    text = monitor.report()
    lines = text.splitlines()
    assert lines[0].startswith("effective width per layer")
    header = lines[1].split()
    assert header[:5] == ["step", "0", "(7)", "2", "(7)"]
    assert lines[2].split() == ["0", "1", "1", "1"]
    assert lines[14].split() == ["12", "1", "1", "1"]
    assert "splits: none" in text
    every = monitor.report(every=5).splitlines()
    assert [line.split()[0] for line in every[2:6]] == ["0", "5", "10", "12"]

    cygrad.manual_seed(0)
    model = constant_mlp(7, np.float64, dropout=0.5)
    with exact(1):
        monitor = train(model, 1, np.float64)
    text = monitor.report()
    assert f"splits ({len(monitor.splits)}):" in text
    assert "step 1: 0 units [0, 1, 2, 3, 4, 5, 6] split into" in text
    assert DROPOUT in text
    widths = [monitor.widths(n)[1] for n in ("0", "3", "6")]
    assert text.splitlines()[3].split() == ["1"] + [str(w) for w in widths]


def test_report_shortens_long_lists():
    cygrad.manual_seed(1)
    model = mlp([3, 50, 2], "tanh", dtype=np.float64)
    first = linears(model)[0]
    w, b = first.weight.numpy(), first.bias.numpy()
    w[1::2], b[1::2] = w[0::2], b[0::2]  # 25 pairs of units with equal incoming weights
    monitor = SymmetryMonitor(model)
    assert monitor.widths("0") == [25]
    w[1::2, 0] = np.nextafter(w[1::2, 0], np.inf)
    monitor.record()
    assert len(monitor.splits) == 25
    text = monitor.report()
    assert "step 1: 0 units [0, 1] split into 2 groups: " + OUTGOING in text
    assert "step 1: 0 units [38, 39]" in text and "[40, 41]" not in text  # the first 20
    assert "... and 5 more" in text

    cygrad.manual_seed(1)
    model = constant_mlp(30, np.float64, dropout=0.5)
    with exact(1):
        monitor = train(model, 1, np.float64)
    assert "0 units [0, 1, ... 29] (30 units) split into" in monitor.report()


def test_plot_writes_png_files(tmp_path):
    pytest.importorskip("matplotlib")
    model = constant_mlp(7, np.float32)
    monitor = train(model, 3, np.float32, monitor=SymmetryMonitor(model, watch=[("0", 0, 1)]))
    written = monitor.plot(str(tmp_path / "figures"), title="constant init")
    names = {os.path.basename(p) for p in written}
    assert {"effective_width.png", "gradient_wavefront.png", "unit_distance.png"} <= names
    for path in written:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_leaves_the_users_matplotlib_backend_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for a notebook's inline backend
    try:
        monitor = SymmetryMonitor(constant_mlp(3, np.float32))
        monitor.record()
        monitor.plot(str(tmp_path))
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    monitor = SymmetryMonitor(constant_mlp(3, np.float32))
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(RuntimeError, match="matplotlib"):
        monitor.plot(str(tmp_path))
    assert not os.listdir(tmp_path)
