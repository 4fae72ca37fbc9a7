"""optim.Adamax, NAdam and RAdam: parameters after 20 steps against torch's (skipped without
it) for their options in both dtypes, state layout, state_dict round trips, tied units kept
bitwise identical, torch's checks."""

import copy

import numpy as np
import pytest
from optim_steps import assert_matches, assert_state_dict_round_trip, run_steps

import cygrad

CASES = [
    ("Adamax", {}),
    ("Adamax", {"weight_decay": 0.1, "maximize": True, "betas": (0.8, 0.99)}),
    ("NAdam", {}),
    ("NAdam", {"weight_decay": 0.05, "decoupled_weight_decay": True, "momentum_decay": 0.01}),
    ("NAdam", {"weight_decay": 0.05, "maximize": True}),
    ("RAdam", {}),
    ("RAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"weight_decay": 0.1, "maximize": True, "betas": (0.9, 0.9)}),
]
STATE = {"Adamax": ["step", "exp_avg", "exp_inf"],
         "NAdam": ["step", "mu_product", "exp_avg", "exp_avg_sq"],
         "RAdam": ["step", "exp_avg", "exp_avg_sq"]}


def _run(lib, name, kw, dtype, steps=20, seed=0):
    return run_steps(lib, name, kw, dtype, steps, seed)


@pytest.mark.parametrize("name,kw", CASES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    assert_matches(torch, cygrad, name, kw, dtype, STATE[name])


@pytest.mark.parametrize("name,kw", CASES[::2], ids=str)
def test_state_dict_round_trip(name, kw):
    """(Loaded state takes the parameter's dtype, as torch's: a float64 parameter's NAdam
    mu_product becomes float64, and its next steps move in the last bits, as torch's do.)"""
    assert_state_dict_round_trip(cygrad, name, kw)
    if name == "NAdam":
        w64, opt64 = _run(cygrad, name, kw, cygrad.float64, steps=2)
        opt64.load_state_dict(copy.deepcopy(opt64.state_dict()))
        assert opt64.state[w64]["mu_product"].dtype == cygrad.float64  # torch's cast


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam"])
def test_tied_units_stay_bitwise_identical(name):
    r = np.random.default_rng(1)
    w0 = r.standard_normal((4, 6)).astype(np.float32)
    w0[2] = w0[0]
    w = cygrad.tensor(w0, requires_grad=True)
    opt = getattr(cygrad.optim, name)([w], lr=0.01, weight_decay=0.01)
    for _ in range(15):
        g = r.standard_normal((4, 6)).astype(np.float32)
        g[2] = g[0]
        w.grad = cygrad.tensor(g)
        opt.step()
    assert np.array_equal(w.numpy()[0], w.numpy()[2])
    assert not np.array_equal(w.numpy()[0], w0[0])


def test_checks():
    w = [cygrad.zeros(2, requires_grad=True)]
    for name in ("Adamax", "NAdam", "RAdam"):
        cls = getattr(cygrad.optim, name)
        with pytest.raises(ValueError, match="Invalid learning rate"):
            cls(w, lr=-1)
        with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
            cls(w, betas=(0.9, 1.0))
        with pytest.raises(ValueError, match="Invalid epsilon value"):
            cls(w, eps=-1e-8)
    with pytest.raises(ValueError, match="Invalid momentum_decay value"):
        cygrad.optim.NAdam(w, momentum_decay=-0.1)
    assert cygrad.optim.Adamax(w).defaults["lr"] == 2e-3
    assert cygrad.optim.NAdam(w).defaults["momentum_decay"] == 4e-3
    assert cygrad.optim.RAdam(w).defaults["lr"] == 1e-3
