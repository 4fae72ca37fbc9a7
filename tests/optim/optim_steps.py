"""Shared by the optimiser tests that compare with torch: N steps of an optimiser on one
(5, 3) parameter with random gradients, in cygrad or torch, and the comparison of the
parameters and state after them."""

import numpy as np


def run_steps(lib, name, kw, dtype, steps=20, seed=0, zero_first=False):
    """(parameter, optimizer) after `steps` steps of random gradients (lr 0.05); zero_first:
    the gradient's first element is 0 at every step."""
    r = np.random.default_rng(seed)
    w = lib.tensor(r.standard_normal((5, 3)), dtype=dtype, requires_grad=True)
    opt = getattr(lib.optim, name)([w], lr=0.05, **kw)
    for _ in range(steps):
        g = r.standard_normal((5, 3))
        if zero_first:
            g[0, 0] = 0.0
        w.grad = lib.tensor(g, dtype=dtype)
        opt.step()
    return w, opt


def assert_matches(torch, cygrad, name, kw, dtype, state_names, zero_first=False):
    """cygrad's parameter and state (names, values, dtypes) equal torch's after the steps."""
    ours, opt = run_steps(cygrad, name, kw, getattr(cygrad, dtype), zero_first=zero_first)
    theirs, topt = run_steps(torch, name, kw, getattr(torch, dtype), zero_first=zero_first)
    tol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)
    state, tstate = opt.state[ours], topt.state[theirs]
    assert list(state) == list(tstate) == state_names
    for key in state_names:
        np.testing.assert_allclose(state[key].numpy(), tstate[key].numpy(), rtol=tol,
                                   atol=tol)
        assert str(state[key].dtype).split(".")[-1] == str(tstate[key].dtype).split(".")[-1]


def assert_state_dict_round_trip(cygrad, name, kw, zero_first=False):
    """float32 parameters (the step counter's dtype too): a run loaded from a deep copy of the
    state dict goes on bit for bit with the original."""
    import copy

    w, opt = run_steps(cygrad, name, kw, cygrad.float32, steps=6, zero_first=zero_first)
    saved = copy.deepcopy(opt.state_dict())
    snapshot = w.numpy().copy()
    g = np.random.default_rng(9).standard_normal((5, 3)).astype(np.float32)
    w.grad = cygrad.tensor(g)
    opt.step()
    w2 = cygrad.tensor(snapshot, requires_grad=True)
    opt2 = getattr(cygrad.optim, name)([w2], lr=0.05, **kw)
    opt2.load_state_dict(saved)
    w2.grad = cygrad.tensor(g)
    opt2.step()
    assert np.array_equal(w2.numpy(), w.numpy())
