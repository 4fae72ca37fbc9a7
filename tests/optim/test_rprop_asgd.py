"""optim.Rprop and ASGD: parameters and state after 20 steps against torch's (skipped without
it) for their options in both dtypes, state layout and dtypes, state_dict round trips, tied
units kept bitwise identical on both backends, torch's checks."""


import numpy as np
import pytest
from optim_steps import assert_matches, assert_state_dict_round_trip, run_steps

import cygrad

CASES = [
    ("Rprop", {}),
    ("Rprop", {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True}),
    ("ASGD", {}),
    ("ASGD", {"t0": 5, "lambd": 0.01, "alpha": 0.5, "weight_decay": 0.1}),
    ("ASGD", {"t0": 3, "maximize": True}),
]
STATE = {"Rprop": ["step", "prev", "step_size"], "ASGD": ["step", "eta", "mu", "ax"]}


def _run(lib, name, kw, dtype, steps=20, seed=0):
    return run_steps(lib, name, kw, dtype, steps, seed, zero_first=True)  # Rprop's sign 0


@pytest.mark.parametrize("name,kw", CASES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    assert_matches(torch, cygrad, name, kw, dtype, STATE[name], zero_first=True)


@pytest.mark.parametrize("name,kw", CASES[::2], ids=str)
def test_state_dict_round_trip(name, kw):
    assert_state_dict_round_trip(cygrad, name, kw, zero_first=True)


@pytest.mark.parametrize("name,kw", CASES[1::2], ids=str)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_tied_units_stay_bitwise_identical(name, kw, backend):
    r = np.random.default_rng(1)
    w0 = r.standard_normal((4, 6)).astype(np.float32)
    w0[2] = w0[0]
    with cygrad.backend.using(backend):
        w = cygrad.tensor(w0, requires_grad=True)
        opt = getattr(cygrad.optim, name)([w], lr=0.01, **kw)
        for _ in range(15):
            g = r.standard_normal((4, 6)).astype(np.float32)
            g[2] = g[0]
            w.grad = cygrad.tensor(g)
            opt.step()
    assert np.array_equal(w.numpy()[0], w.numpy()[2])
    assert not np.array_equal(w.numpy()[0], w0[0])


def test_checks():
    w = [cygrad.zeros(2, requires_grad=True)]
    for cls in (cygrad.optim.Rprop, cygrad.optim.ASGD):
        with pytest.raises(ValueError, match="Invalid learning rate"):
            cls(w, lr=-1)
    with pytest.raises(ValueError, match="Invalid eta values: 1.1, 1.2"):
        cygrad.optim.Rprop(w, etas=(1.1, 1.2))
    with pytest.raises(ValueError, match="Invalid weight_decay value"):
        cygrad.optim.ASGD(w, weight_decay=-0.1)
    assert cygrad.optim.Rprop(w).defaults["step_sizes"] == (1e-6, 50)
    assert cygrad.optim.ASGD(w).defaults["t0"] == 1e6
