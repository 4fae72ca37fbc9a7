"""cygrad.amp: autocast changes nothing (no half precision here; one warning), GradScaler
disables itself on "cuda" as torch's does without CUDA, and on "cpu" follows torch's CPU
scaler: the scale, skipped steps and parameters match torch's (skipped without torch)."""

import warnings

import numpy as np
import pytest

import cygrad
from cygrad import amp


def test_autocast_runs_ops_in_their_own_dtype():
    x = cygrad.ones(2, 3)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with amp.autocast("cpu", dtype=cygrad.float32):
            y = x @ x.T
        with cygrad.autocast("cpu"):
            z = x * 2

        @amp.autocast("cpu")
        def f(t):
            return t + 1

        w = f(x)
    assert y.dtype == z.dtype == w.dtype == cygrad.float32
    assert y.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_cuda_scaler_disables_itself():
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = cygrad.cuda.amp.GradScaler()
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0
    m = cygrad.nn.Linear(2, 1)
    opt = cygrad.optim.SGD(m.parameters(), lr=0.1)
    loss = m(cygrad.ones(1, 2)).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    before = m.weight.numpy().copy()
    scaler.step(opt)
    scaler.update()
    assert not np.array_equal(before, m.weight.numpy())
    assert scaler.state_dict() == {}


def _run(lib, losses_scale):
    m = lib.nn.Linear(2, 1).double()
    with lib.no_grad():
        m.weight.copy_(lib.tensor([[0.5, -0.25]], dtype=lib.float64))
        m.bias.fill_(0.1)
    opt = lib.optim.SGD(m.parameters(), lr=0.1)
    scaler = lib.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    scales = []
    for factor in losses_scale:
        opt.zero_grad()
        loss = m(lib.ones(1, 2, dtype=lib.float64)).sum() * factor
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(float(scaler.get_scale()))
    return scales, m.weight.detach().numpy().copy()


def test_cpu_scaler_matches_torch():
    torch = pytest.importorskip("torch")
    factors = [1.0, 1.0, float("inf"), 1.0, 2.0, 1.0]
    ours, w = _run(cygrad, factors)
    theirs, tw = _run(torch, factors)
    assert ours == theirs
    np.testing.assert_array_equal(w, tw)


def test_unscale_twice_raises_and_pin_memory():
    scaler = amp.GradScaler("cpu")
    m = cygrad.nn.Linear(2, 1)
    opt = cygrad.optim.SGD(m.parameters(), lr=0.1)
    scaler.scale(m(cygrad.ones(1, 2)).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    x = cygrad.ones(2)
    assert x.pin_memory() is x and not x.is_pinned()
    assert not cygrad.cuda.is_bf16_supported()
