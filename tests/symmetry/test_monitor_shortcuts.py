"""The monitor's shortcuts give the answers of the full computation.

SymmetryMonitor keeps its cost down (benchmarks/monitor_overhead.py) with shortcuts: the groups
of a layer whose units all differed come from one column of each layer, a tied group is
compared against its first unit rather than hashed, the op recorder of the split autopsy and
the forward hooks on activations (which keep nn.Sequential from fusing a Linear with its
activation) run only in steps that begin with a group of two or more units, the health
diagnostics only at every health_every-th step. Here a monitor that takes none of them
(`Exhaustive`: every op of every step recorded, every layer grouped the long way, the model
never fused) watches the same training, and everything the two record must be equal: the
history entry of every step, the splits with their autopsies, the report. The groups are also
checked against a brute-force grouping of the live weights after every step.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from symmetry_helpers import exact, linears, mlp, set_constant, step, task

import cygrad
from cygrad import nn, optim, tensor
from cygrad.symmetry import SymmetryMonitor
from cygrad.symmetry.groups import _group, _outgoing, _refine, _regroup, unit_slices
from cygrad.symmetry.monitor import _next_reader


class Exhaustive(SymmetryMonitor):
    _shortcuts = False


def reference_groups(n, parts):
    """Units grouped by the bytes of their values (-0.0 as +0.0, every NaN as one NaN)."""
    rows = [np.moveaxis(np.asarray(a), axis, 0).reshape(n, -1) for a, axis in parts]
    groups = {}
    for u in range(n):
        key = []
        for r in rows:
            v = r[u] + r.dtype.type(0)
            key.append(np.where(np.isnan(v), np.nan, v).astype(r.dtype).tobytes())
        groups.setdefault(tuple(key), []).append(u)
    return sorted(groups.values(), key=lambda g: g[0])


def check_groups(monitor):
    """The last entry's groups and tied groups against the brute-force grouping."""
    last = monitor.history[-1]["layers"]
    for k, (name, layer) in enumerate(monitor.layers):
        n, parts = unit_slices(layer)
        reader = _next_reader(monitor.layers, k)
        outgoing = _outgoing(reader, n) if reader is not None else []
        assert last[name]["groups"] == reference_groups(n, parts), (name, len(monitor.history))
        assert last[name]["tied"] == reference_groups(n, parts + outgoing), name


def run(make_model, steps, monitor_class, health_every=5, backend="cython", threads=1,
        loss="mse", lr=0.1, batch=16, seed=0, between=None, **kwargs):
    """Train a fresh model (make_model() after seeding) with a monitor of monitor_class;
    between(model, step): called after each step (after the monitor recorded it)."""
    cygrad.manual_seed(seed)
    model = make_model()
    first, last = linears(model)[0], linears(model)[-1]
    n_in = first.in_features if isinstance(first, nn.Linear) else None
    with exact(threads), cygrad.backend.using(backend):
        monitor = monitor_class(model, health_every=health_every, **kwargs)
        opt = monitor.attach(optim.SGD(model.parameters(), lr=lr, momentum=0.5))
        if n_in is not None:
            x, target, loss_fn = task(loss, batch, n_in, last.out_features, np.float32, seed)
        else:
            X, target = cygrad.data.bars_and_crosses(batch, size=6, seed=seed, dtype=np.float32)
            x, loss_fn = tensor(X), nn.functional.cross_entropy
            target = target % last.out_features
        if monitor_class is not Exhaustive:
            check_groups(monitor)
        for s in range(steps):
            step(model, opt, loss_fn, x, target)
            if monitor_class is not Exhaustive:
                check_groups(monitor)
            if between is not None:
                between(model, s + 1)
                monitor.record()
                if monitor_class is not Exhaustive:
                    check_groups(monitor)
    return monitor


def assert_same(fast, full):
    assert len(fast.history) == len(full.history)
    for a, b in zip(fast.history, full.history):
        assert a == b, a["step"]
    assert fast.splits == full.splits
    assert fast.first_nonzero_grad == full.first_nonzero_grad
    assert fast.report() == full.report()


def random_mlp(dropout=0.0, activation="relu"):
    return lambda: mlp([5, 12, 9, 3], activation, dtype=np.float32, dropout=dropout)


def constant_mlp(dropout=0.0, activation="tanh", n_out=3):
    return lambda: set_constant(mlp([5, 12, 9, n_out], activation, dtype=np.float32,
                                    dropout=dropout), lambda layer: 0.5 / layer.in_features, 0.1)


def tie_first_layer(model):
    """Every unit of the first layer with the same incoming weights (the next layer's columns
    stay random: the units split at step 1, their autopsy names the first layer's activation
    in backward, as the recorder sees it unfused)."""
    first = linears(model)[0]
    first.weight.numpy()[...] = 0.25
    first.bias.numpy()[...] = 0.0
    return model


SCENARIOS = {
    "random init": dict(make_model=random_mlp(), steps=12),
    "random init, tanh": dict(make_model=random_mlp(activation="tanh"), steps=12),
    "random init, health at every step": dict(make_model=random_mlp(activation="tanh"),
                                              steps=6, health_every=1),
    "constant init": dict(make_model=constant_mlp(), steps=12),
    "constant init, relu": dict(make_model=constant_mlp(activation="relu"), steps=12),
    "dropout splits": dict(make_model=constant_mlp(dropout=0.3), steps=6),
    "health at every step": dict(make_model=constant_mlp(dropout=0.3), steps=6,
                                 health_every=1),
    "two threads": dict(make_model=constant_mlp(), steps=6, threads=2),
    "numpy backend": dict(make_model=lambda: set_constant(
        mlp([5, 100, 100, 1], "tanh", dtype=np.float32), lambda layer: 0.3 if layer.in_features
        == 5 else 1 / layer.in_features, 0.1), steps=7, backend="numpy", lr=0.5, batch=32),
    "outgoing weights split": dict(make_model=lambda: tie_first_layer(random_mlp()()),
                                   steps=4),
    "conv": dict(make_model=lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3)), steps=5, batch=12),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_shortcuts_record_what_the_full_computation_records(scenario):
    kwargs = SCENARIOS[scenario]
    assert_same(run(monitor_class=SymmetryMonitor, **kwargs),
                run(monitor_class=Exhaustive, **kwargs))


def test_the_numpy_backend_split_is_seen_alike():
    """Whether OpenBLAS splits this case depends on its kernel (test_monitor.py pins where it
    does); whatever it did, both monitors saw it alike, autopsy included."""
    kwargs = dict(make_model=lambda: set_constant(
        mlp([2, 100, 100, 1], "tanh", dtype=np.float32),
        lambda layer: 0.3 if layer.in_features == 2 else 1 / layer.in_features, 0.1),
        steps=7, backend="numpy", lr=0.5, batch=32)
    fast, full = run(monitor_class=SymmetryMonitor, **kwargs), run(monitor_class=Exhaustive,
                                                                    **kwargs)
    assert_same(fast, full)
    for s in fast.splits:
        assert s["autopsy"].startswith(f"step {s['step']}, ")


def test_dropout_splits_carry_the_same_autopsy():
    kwargs = dict(make_model=constant_mlp(dropout=0.5), steps=3)
    fast = run(monitor_class=SymmetryMonitor, **kwargs)
    assert_same(fast, run(monitor_class=Exhaustive, **kwargs))
    hidden = [s for s in fast.splits if s["layer"] != "6"]
    assert hidden and all(s["op"] == "Dropout" and s["phase"] == "forward" for s in hidden)


def tie_and_untie(model, s):
    """Between steps, by hand: tie units 2 and 7 of the first layer (incoming and outgoing)
    after step 2, nudge unit 7 by one ulp after step 5, tie 1, 4 and 6 after step 7 and give
    two of them -0.0 where the third has +0.0."""
    first, second = linears(model)[:2]
    w, b, out = first.weight.numpy(), first.bias.numpy(), second.weight.numpy()
    if s == 2:
        w[7], b[7], out[:, 7] = w[2], b[2], out[:, 2]
    if s == 5:
        w[7, 3] = np.nextafter(w[7, 3], np.float32(np.inf))
    if s == 7:
        w[[1, 4, 6]] = w[1]
        w[[1, 4, 6], 0] = 0.0
        w[[4, 6], 0] = -0.0
        b[[1, 4, 6]] = b[1]
        out[:, [1, 4, 6]] = out[:, [1]]


@pytest.mark.parametrize("activation, dropout", [("relu", 0.0), ("tanh", 0.0), ("tanh", 0.3)])
def test_units_that_become_tied_later_are_watched_from_then_on(activation, dropout):
    """A random layer whose units become tied after some steps (by hand, between steps): the
    monitor groups them at once, records the ops of the very next step (where dropout splits
    them again) and explains a split as the full computation does."""
    kwargs = dict(make_model=random_mlp(activation=activation, dropout=dropout), steps=10,
                  between=tie_and_untie)
    fast = run(monitor_class=SymmetryMonitor, **kwargs)
    assert_same(fast, run(monitor_class=Exhaustive, **kwargs))
    widths = fast.widths("0")
    assert max(widths) == 12 and min(widths) < 12
    if dropout:  # tied after step 2 (entry 4: the step and the record by hand), split in 3
        (split, *_) = [s for s in fast.splits if s["layer"] == "0"]
        assert split["step"] == 5 and split["units"] == [2, 7]
        assert split["op"] == "Dropout" and split["phase"] == "forward"


@pytest.mark.parametrize("health_every", [3, 10])
def test_health_every_measures_what_every_step_measures_at_its_steps(health_every):
    """The default monitor measures the health diagnostics at steps 0, k, 2k...: there they
    equal a monitor measuring every step (update ratios against the weights of the step
    before included); at other steps they are None; everything else is equal everywhere."""
    kwargs = dict(make_model=random_mlp(activation="tanh"), steps=2 * health_every + 1)
    sparse = run(monitor_class=SymmetryMonitor, health_every=health_every, **kwargs)
    every = run(monitor_class=Exhaustive, health_every=1, **kwargs)
    health_keys = ("saturated", "dead", "update_ratio")
    for a, b in zip(sparse.history, every.history, strict=True):
        measured = a["step"] % health_every == 0
        for name in a["layers"]:
            x, y = dict(a["layers"][name]), dict(b["layers"][name])
            if measured:
                assert x == y
            else:
                assert all(x[k] is None for k in health_keys)
                assert [g and g["norm"] for g in x["grads"].values()] == [None, None]
                assert [g and g["status"] for g in x["grads"].values()] == [
                    g and g["status"] for g in y["grads"].values()]
                for k in health_keys + ("grads",):
                    x.pop(k), y.pop(k)
                assert x == y
    assert sparse.history[health_every]["layers"]["0"]["update_ratio"] > 0
    assert sparse.history[health_every]["layers"]["0"]["saturated"] is not None
    last = 2 * health_every
    assert f"training health at step {last} " in sparse.report()
    assert f"training health at step {last + 1} " in every.report()


def test_health_every_changed_midway_never_compares_weights_it_did_not_keep():
    cygrad.manual_seed(0)
    model = random_mlp(activation="tanh")()
    monitor = SymmetryMonitor(model, health_every=10)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
    x, target, loss_fn = task("mse", 8, 5, 3, np.float32)
    for _ in range(3):
        step(model, opt, loss_fn, x, target)
    monitor.health_every = 1  # step 4 is measured, but step 3 kept no weights and did not
    for _ in range(2):  # have the activations of step 4 watched
        step(model, opt, loss_fn, x, target)
    at_4, at_5 = (monitor.history[s]["layers"]["0"] for s in (4, 5))
    assert at_4["update_ratio"] is None and at_4["saturated"] is None
    assert at_4["grads"]["weight"]["norm"] > 0
    assert at_5["update_ratio"] > 0 and at_5["saturated"] is not None
    assert "training health at step 5 " in monitor.report()
    monitor.detach()
    monitor.record()
    assert not model[1]._forward_hooks  # detached: no hook comes back


def test_pairs_watched_later_are_measured_from_then_on():
    cygrad.manual_seed(0)
    model = random_mlp()()
    monitor = SymmetryMonitor(model)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
    x, target, loss_fn = task("mse", 8, 5, 3, np.float32)
    step(model, opt, loss_fn, x, target)
    monitor.watch.append(("0", 1, 2))
    step(model, opt, loss_fn, x, target)
    w = linears(model)[0].weight.numpy()
    distance = float(np.linalg.norm((w[1] - w[2]).astype(np.float64)))
    assert monitor.history[-1]["watch"] == {("0", 1, 2): distance}


def test_health_every_is_a_positive_integer():
    model = random_mlp()()
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="health_every"):
            SymmetryMonitor(model, health_every=bad)


def test_the_recorder_and_the_activation_hooks_run_only_while_a_group_exists():
    """Random init: nothing can split, so no op is recorded and the model runs fused (no
    hook on its activations) except before a step whose activations are measured. A tie
    made by hand turns both on for the steps that follow."""
    cygrad.manual_seed(0)
    model = random_mlp()()
    monitor = SymmetryMonitor(model, health_every=4)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
    x, target, loss_fn = task("mse", 8, 5, 3, np.float32)
    seen = []
    for s in range(1, 9):
        step(model, opt, loss_fn, x, target)
        hooked = bool(model[1]._forward_hooks)
        seen.append((s, monitor._watcher.on, hooked))
    # after step s: hooks for step s+1 when s+1 is a multiple of 4
    assert seen == [(s, False, (s + 1) % 4 == 0) for s in range(1, 9)]
    first = linears(model)[0]
    first.weight.numpy()[3] = first.weight.numpy()[5]
    first.bias.numpy()[3] = first.bias.numpy()[5]
    monitor.record()
    assert monitor._watcher.on and model[1]._forward_hooks
    monitor.detach()
    assert not model[1]._forward_hooks


def test_the_model_runs_fused_between_measured_steps():
    """The monitor leaves nn.Sequential's fused Linear + activation alone in steps without a
    group and without health measurement: the same graph as an unmonitored model."""
    cygrad.manual_seed(0)
    model = random_mlp()()
    monitor = SymmetryMonitor(model, health=False)
    opt = monitor.attach(optim.SGD(model.parameters(), lr=0.1))
    x, target, loss_fn = task("mse", 8, 5, 3, np.float32)
    step(model, opt, loss_fn, x, target)
    out = model(x)
    assert out._parents[0].grad_fn.kind() == "LinearRelu"


# ---------------------------------------------------------------- the grouping shortcuts


def rows_with_ties(draw, n, m):
    """An (n, m) float32 array whose rows repeat (some with -0.0 for +0.0 or with NaNs)."""
    distinct = draw(st.integers(1, n))
    base = np.array(draw(st.lists(st.lists(st.sampled_from(
        [0.0, -0.0, 1.0, -1.5, 2.0 ** -140, np.nan, np.inf, 3.25]), min_size=m, max_size=m),
        min_size=distinct, max_size=distinct)), dtype=np.float32)
    pick = np.array(draw(st.lists(st.integers(0, distinct - 1), min_size=n, max_size=n)))
    w = base[pick]
    flip = np.array(draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))).reshape(n, m)
    w[flip & (w == 0)] *= -1  # -0.0 for +0.0 and back: the same value
    return w


@st.composite
def grouping_case(draw):
    n, m = draw(st.integers(1, 9)), draw(st.integers(1, 4))
    w = rows_with_ties(draw, n, m)
    b = rows_with_ties(draw, n, 1)[:, 0]
    out = rows_with_ties(draw, n, 2).T  # (next, units)
    labels = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    previous = {}
    for u, g in enumerate(labels):  # any partition of the units: _regroup must not trust it
        previous.setdefault(g, []).append(u)
    return n, w, b, out, sorted(previous.values(), key=lambda g: g[0])


@settings(max_examples=300, deadline=None)
@given(grouping_case())
def test_grouping_shortcuts_agree_with_brute_force(case):
    n, w, b, out, previous = case
    parts = [(w, 0), (b, 0)]
    outgoing = [(out.reshape(out.shape[0], n, 1), 1)]
    expected = reference_groups(n, parts)
    assert _group(n, parts) == expected
    assert _group(n, parts, shortcut=False) == expected
    assert _regroup(n, parts, previous) == expected
    assert _regroup(n, parts, [[u] for u in range(n)]) == expected
    assert _regroup(n, parts, [list(range(n))]) == expected
    assert _refine(n, expected, outgoing) == reference_groups(n, parts + outgoing)


def test_a_column_shared_by_two_layers_is_no_tie():
    """The first columns of every layer are sorted together: a value in two layers (or twice
    in one column of distinct units) sends the monitor the long way, to the same groups."""
    def make():
        model = random_mlp()()
        a, b = linears(model)[:2]
        a.weight.numpy()[4, 0] = b.weight.numpy()[2, 0]
        a.weight.numpy()[7, 0] = a.weight.numpy()[1, 0]
        return model
    kwargs = dict(make_model=make, steps=3, lr=0.0)
    fast = run(monitor_class=SymmetryMonitor, **kwargs)
    assert_same(fast, run(monitor_class=Exhaustive, **kwargs))
    assert fast.widths("0") == [12] * 4
