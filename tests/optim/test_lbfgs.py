"""optim.LBFGS: torch's algorithm (the same iterates as torch.optim.LBFGS from the same start,
with and without the strong-Wolfe line search), convergence on a least-squares problem, tied
units kept bitwise identical at one and two threads, state_dict round trips and torch's
errors."""

import copy

import numpy as np
import pytest

import cygrad


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 5))
    y = np.sin(x @ rng.standard_normal((5, 1)))
    w1 = rng.standard_normal((8, 5)) * 0.5
    b1 = rng.standard_normal(8) * 0.1
    w2 = rng.standard_normal((1, 8)) * 0.5
    b2 = np.zeros(1)
    return x, y, [w1, b1, w2, b2]


def _setup(lib, dtype, weights, x, y, **options):
    """A 5-8-1 tanh regression net as four leaf tensors, its LBFGS and its closure."""
    params = [lib.tensor(w, dtype=dtype, requires_grad=True) for w in weights]
    xt, yt = lib.tensor(x, dtype=dtype), lib.tensor(y, dtype=dtype)
    opt = lib.optim.LBFGS(params, **options)

    def closure():
        opt.zero_grad()
        w1, b1, w2, b2 = params
        out = lib.tanh(xt @ w1.T + b1) @ w2.T + b2
        loss = ((out - yt) ** 2).mean()
        loss.backward()
        return loss

    return params, opt, closure


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("history_size", [100, 3])
def test_iterates_match_torch_float64(line_search_fn, history_size):
    torch = pytest.importorskip("torch")
    x, y, weights = _data()
    options = {"lr": 1 if line_search_fn else 0.5, "max_iter": 12,
               "history_size": history_size, "line_search_fn": line_search_fn}
    ours, opt, closure = _setup(cygrad, cygrad.float64, weights, x, y, **options)
    theirs, topt, tclosure = _setup(torch, torch.float64, weights, x, y, **options)
    for _ in range(3):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        assert float(loss) == pytest.approx(float(tloss.detach()), rel=1e-9, abs=1e-14)
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-8, atol=1e-11)
    state, tstate = opt.state[ours[0]], topt.state[theirs[0]]
    assert state["func_evals"] == tstate["func_evals"]
    assert state["n_iter"] == tstate["n_iter"]
    assert len(state["old_dirs"]) == len(tstate["old_dirs"])
    assert float(state["H_diag"]) == pytest.approx(float(tstate["H_diag"]), rel=1e-7)
    np.testing.assert_allclose(state["d"].numpy(), tstate["d"].numpy(), rtol=1e-6, atol=1e-12)


def _rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _quartic(x):
    return (x ** 4).sum() + 3 * (x[:-1] * x[1:]).sum() + (x ** 2).sum()


@pytest.mark.parametrize("f,start,lr,steps", [
    (_rosenbrock, [-1.2, 1.0, -0.5, 0.8], 0.02, 3),
    (_rosenbrock, [-1.2, 1.0, -0.5, 0.8], 0.3, 3),
    (_rosenbrock, [-1.2, 1.0, -0.5, 0.8], 25.0, 1),
    (_quartic, [2.0, -1.5, 0.3, 1.1], 25.0, 1),
])
def test_line_search_branches_match_torch(f, start, lr, steps):
    """Short first trials (the bracketing phase extrapolates), long ones (the zoom, and its
    trials moved away from the bracket's ends: the quartic), float64. (With lr 25 Rosenbrock's
    second step has a line search interpolating between two trials 0.0025 apart whose losses
    differ by 3e-9: one ulp of a loss flips the cubic's discriminant and the runs part there,
    torch's against itself as much as against cygrad's: one step is compared.)"""
    torch = pytest.importorskip("torch")
    got = {}
    for lib in (cygrad, torch):
        x = lib.tensor(np.array(start), dtype=lib.float64, requires_grad=True)
        opt = lib.optim.LBFGS([x], lr=lr, max_iter=15, line_search_fn="strong_wolfe")

        def closure(opt=opt, x=x):
            opt.zero_grad()
            loss = f(x)
            loss.backward()
            return loss

        losses = [float(opt.step(closure).detach()) for _ in range(steps)]
        got[lib.__name__] = (losses, x.detach().numpy().copy(), opt.state[x]["func_evals"])
    (losses, xs, evals), (tlosses, txs, tevals) = got["cygrad"], got["torch"]
    np.testing.assert_allclose(losses, tlosses, rtol=1e-9)
    np.testing.assert_allclose(xs, txs, rtol=1e-8, atol=1e-12)
    assert evals == tevals


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_float32_tracks_torch(line_search_fn):
    torch = pytest.importorskip("torch")
    x, y, weights = _data(1)
    options = {"lr": 1 if line_search_fn else 0.5, "max_iter": 6,
               "line_search_fn": line_search_fn}
    ours, opt, closure = _setup(cygrad, cygrad.float32, weights, x, y, **options)
    theirs, topt, tclosure = _setup(torch, torch.float32, weights, x, y, **options)
    opt.step(closure)
    topt.step(tclosure)
    for p, q in zip(ours, theirs, strict=True):
        assert p.dtype == cygrad.float32
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=2e-4, atol=2e-5)
    # the scalars are float32 0-d tensors, as torch's
    state = opt.state[ours[0]]
    assert state["d"].dtype == cygrad.float32
    assert state["H_diag"].dtype == cygrad.float32


def test_least_squares_reaches_the_solution():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 6))
    b = rng.standard_normal(40)
    w = cygrad.zeros(6, dtype=cygrad.float64, requires_grad=True)
    at, bt = cygrad.tensor(a), cygrad.tensor(b)
    opt = cygrad.optim.LBFGS([w], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((at @ w - bt) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(2):
        opt.step(closure)
    want = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(w.numpy(), want, rtol=0, atol=1e-5)  # (tolerance_change 1e-9)
    best = ((a @ want - b) ** 2).sum()
    assert float(closure()) == pytest.approx(best, rel=1e-9)
    # quasi-Newton on a 6-dimensional quadratic: a handful of iterations, not hundreds
    assert opt.state[w]["n_iter"] <= 15


def _tied(threads):
    """Hidden units 0 and 1 start identical (incoming and outgoing weights); LBFGS steps."""
    x, y, (w1, b1, w2, b2) = _data(2)
    w1, b1, w2 = w1.copy(), b1.copy(), w2.copy()
    w1[1], b1[1], w2[:, 1] = w1[0], b1[0], w2[:, 0]
    before = cygrad.get_num_threads()
    cygrad.set_num_threads(threads)
    try:
        params, opt, closure = _setup(cygrad, cygrad.float32, [w1, b1, w2, b2], x, y,
                                      max_iter=8, line_search_fn="strong_wolfe")
        for _ in range(3):
            opt.step(closure)
    finally:
        cygrad.set_num_threads(before)
    return [p.numpy().copy() for p in params]


def test_tied_units_stay_bitwise_identical_at_any_thread_count():
    one, two = _tied(1), _tied(2)
    w1, b1, w2, _ = one
    assert np.array_equal(w1[0], w1[1]) and b1[0] == b1[1]
    assert np.array_equal(w2[:, 0], w2[:, 1])
    assert not np.array_equal(w1[0], w1[2])  # they did move, and apart from the others
    for p, q in zip(one, two, strict=True):
        assert np.array_equal(p, q)


def test_state_dict_round_trip_continues_identically():
    x, y, weights = _data(4)
    params, opt, closure = _setup(cygrad, cygrad.float64, weights, x, y, max_iter=5,
                                  history_size=4)
    opt.step(closure)
    saved = copy.deepcopy(opt.state_dict())
    snapshot = [p.numpy().copy() for p in params]
    opt.step(closure)
    want = [p.numpy().copy() for p in params]

    params2, opt2, closure2 = _setup(cygrad, cygrad.float64, snapshot, x, y, max_iter=5,
                                     history_size=4)
    opt2.load_state_dict(saved)
    state = opt2.state[params2[0]]
    assert state["d"].shape == (sum(w.size for w in weights),)
    assert len(state["old_dirs"]) == len(saved["state"][0]["old_dirs"])
    opt2.step(closure2)
    for p, w in zip(params2, want, strict=True):
        assert np.array_equal(p.numpy(), w)


def test_unused_parameter_counts_as_zero_gradient():
    x, y, weights = _data(5)
    params, opt, closure = _setup(cygrad, cygrad.float64, weights, x, y, max_iter=4)
    extra = cygrad.ones(3, dtype=cygrad.float64, requires_grad=True)
    opt2 = cygrad.optim.LBFGS(params + [extra], max_iter=4)

    def closure2():
        opt2.zero_grad()
        return closure()

    opt2.step(closure2)
    assert np.array_equal(extra.numpy(), np.ones(3))
    assert opt2.state[params[0]]["d"].shape == (sum(w.size for w in weights) + 3,)


def test_defaults_and_errors():
    w = cygrad.zeros(2, requires_grad=True)
    opt = cygrad.optim.LBFGS([w], max_iter=8)
    assert opt.defaults["max_eval"] == 10  # max_iter * 5 // 4, as torch
    assert opt.defaults["lr"] == 1 and opt.defaults["history_size"] == 100
    assert opt.defaults["line_search_fn"] is None
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        cygrad.optim.LBFGS([{"params": [w]}, {"params": [cygrad.zeros(2, requires_grad=True)]}])
    with pytest.raises(TypeError, match="closure"):
        opt.step()

    def closure():
        opt_bad.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    opt_bad = cygrad.optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt_bad.step(closure)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        cygrad.optim.LBFGS([w], max_iter=2.5)


def test_step_runs_the_closure_with_grad_enabled_and_returns_its_first_loss():
    w = cygrad.tensor([3.0, -2.0], dtype=cygrad.float64, requires_grad=True)
    seen = []
    opt = cygrad.optim.LBFGS([w], max_iter=3)

    def closure():
        opt.zero_grad()
        seen.append(cygrad.is_grad_enabled())
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    with cygrad.no_grad():
        first = opt.step(closure)
    assert float(first) == 4.0 + 9.0
    assert seen and all(seen)
    assert len(seen) == opt.state[w]["func_evals"]
