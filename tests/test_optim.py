"""cygrad.optim: update rules against hand-written references and torch.optim, state and
state dicts in torch's layout, hooks, options and errors."""

import math

import numpy as np
import pytest

import cygrad
from cygrad import optim
from cygrad.serialization import load, save

TOL = {"float32": 2e-5, "float64": 1e-11}


def param(values, dtype="float64"):
    return cygrad.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


def set_grad(p, g):
    p.grad = cygrad.tensor(np.asarray(g, dtype=p.dtype))


def quadratic_grad(p):
    """Gradient of L = sum(a * (p - c)**2 / 2) through cygrad's autodiff, into p.grad."""
    a = cygrad.tensor(np.array([1.0, 3.0, 0.5]), dtype=p.dtype)
    c = cygrad.tensor(np.array([2.0, -1.0, 4.0]), dtype=p.dtype)
    p.grad = None
    ((p - c) ** 2 * a * 0.5).sum().backward()


# ---------------------------------------------------------------------- hand-written references

def reference_sgd(p, a, c, steps, lr, momentum=0.0, dampening=0.0, nesterov=False, wd=0.0):
    """Scalar SGD as in PyTorch's documentation, one element at a time."""
    out = []
    for x, ai, ci in zip(p, a, c, strict=True):
        b = None
        for _ in range(steps):
            g = ai * (x - ci) + wd * x
            if momentum:
                b = g if b is None else momentum * b + (1 - dampening) * g
                g = g + momentum * b if nesterov else b
            x = x - lr * g
        out.append(x)
    return out


def reference_adam(p, a, c, steps, lr, b1, b2, eps, wd=0.0, decoupled=False, amsgrad=False):
    out = []
    for x, ai, ci in zip(p, a, c, strict=True):
        m = v = vmax = 0.0
        for t in range(1, steps + 1):
            g = ai * (x - ci)
            if decoupled:
                x = x * (1 - lr * wd)
            else:
                g = g + wd * x
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vmax = max(vmax, v)
            m_hat, v_hat = m / (1 - b1**t), (vmax if amsgrad else v) / (1 - b2**t)
            x = x - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(x)
    return out


def reference_rmsprop(p, a, c, steps, lr, alpha, eps, momentum=0.0, centered=False):
    out = []
    for x, ai, ci in zip(p, a, c, strict=True):
        v = mean = b = 0.0
        for _ in range(steps):
            g = ai * (x - ci)
            v = alpha * v + (1 - alpha) * g * g
            mean = alpha * mean + (1 - alpha) * g
            avg = math.sqrt(v - mean * mean if centered else v) + eps
            if momentum:
                b = momentum * b + g / avg
                x = x - lr * b
            else:
                x = x - lr * g / avg
        out.append(x)
    return out


def reference_adagrad(p, a, c, steps, lr, lr_decay, init, eps):
    out = []
    for x, ai, ci in zip(p, a, c, strict=True):
        s = init
        for t in range(1, steps + 1):
            g = ai * (x - ci)
            s = s + g * g
            x = x - lr / (1 + (t - 1) * lr_decay) * g / (math.sqrt(s) + eps)
        out.append(x)
    return out


def reference_adadelta(p, a, c, steps, lr, rho, eps):
    out = []
    for x, ai, ci in zip(p, a, c, strict=True):
        v = u = 0.0
        for _ in range(steps):
            g = ai * (x - ci)
            v = rho * v + (1 - rho) * g * g
            delta = math.sqrt(u + eps) / math.sqrt(v + eps) * g
            u = rho * u + (1 - rho) * delta * delta
            x = x - lr * delta
        out.append(x)
    return out


A, C, P0 = [1.0, 3.0, 0.5], [2.0, -1.0, 4.0], [0.3, 0.7, -1.2]


def fit(opt, p, steps=15):
    for _ in range(steps):
        quadratic_grad(p)
        opt.step()
    return p.numpy()


@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.3}, {"momentum": 0.8, "nesterov": True},
    {"momentum": 0.5, "weight_decay": 0.1}, {"weight_decay": 0.2},
])
def test_sgd_matches_reference(kwargs):
    p = param(P0)
    got = fit(optim.SGD([p], lr=0.05, **kwargs), p)
    renamed = {("wd" if k == "weight_decay" else k): v for k, v in kwargs.items()}
    np.testing.assert_allclose(got, reference_sgd(P0, A, C, 15, 0.05, **renamed), rtol=1e-12)


@pytest.mark.parametrize("cls, wd, amsgrad", [(optim.Adam, 0.0, False), (optim.Adam, 0.1, False),
                                              (optim.AdamW, 0.1, False),
                                              (optim.Adam, 0.0, True)])
def test_adam_matches_reference(cls, wd, amsgrad):
    p = param(P0)
    got = fit(cls([p], lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd, amsgrad=amsgrad), p)
    expected = reference_adam(P0, A, C, 15, 0.1, 0.8, 0.99, 1e-6, wd, cls is optim.AdamW,
                              amsgrad)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.5, False), (0.0, True),
                                                (0.5, True)])
def test_rmsprop_matches_reference(momentum, centered):
    p = param(P0)
    got = fit(optim.RMSprop([p], lr=0.01, alpha=0.9, eps=1e-6, momentum=momentum,
                            centered=centered), p)
    expected = reference_rmsprop(P0, A, C, 15, 0.01, 0.9, 1e-6, momentum, centered)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_adagrad_and_adadelta_match_references():
    p = param(P0)
    got = fit(optim.Adagrad([p], lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2), p)
    np.testing.assert_allclose(got, reference_adagrad(P0, A, C, 15, 0.1, 0.05, 0.2, 1e-10),
                               rtol=1e-12)
    q = param(P0)
    got = fit(optim.Adadelta([q], lr=0.7, rho=0.8, eps=1e-4), q)
    np.testing.assert_allclose(got, reference_adadelta(P0, A, C, 15, 0.7, 0.8, 1e-4),
                               rtol=1e-12)


def test_sgd_converges_on_quadratic():
    p = param(P0)
    np.testing.assert_allclose(fit(optim.SGD([p], lr=0.3, momentum=0.5), p, 200), C, atol=1e-8)


def test_sgd_positional_order_is_torchs():
    # (params, lr, momentum, dampening, weight_decay, nesterov): the fifth is weight_decay
    opt = optim.SGD([param([1.0])], 0.1, 0.9, 0.0, 0.01, True)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["dampening"], group["weight_decay"],
            group["nesterov"]) == (0.1, 0.9, 0.0, 0.01, True)
    with pytest.raises(TypeError):
        optim.SGD([param([1.0])], 0.1, 0.9, 0.0, 0.01, True, True)  # maximize is keyword-only


# ---------------------------------------------------------------------- against torch.optim

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.7, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "betas": (0.6, 0.999), "maximize": True}),  # lerp's other branch
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.95), "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True, "foreach": False}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.001, "alpha": 0.3, "centered": True}),  # lerp's other branch
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.1, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1, "maximize": True}),
]


def run_both(torch, name, kwargs, dtype, steps=20, groups=None, seed=0):
    """Same initial values and gradient sequence through cygrad and torch; both param lists."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2), (65,)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [cygrad.tensor(x, requires_grad=True) for x in init]
    theirs = [torch.tensor(x, requires_grad=True) for x in init]
    if groups is None:
        opt_ours = getattr(optim, name)(ours, **kwargs)
        opt_theirs = getattr(torch.optim, name)(theirs, **kwargs)
    else:
        opt_ours = getattr(optim, name)(
            [dict(g, params=[ours[i] for i in idx]) for idx, g in groups], **kwargs)
        opt_theirs = getattr(torch.optim, name)(
            [dict(g, params=[theirs[i] for i in idx]) for idx, g in groups], **kwargs)
    for step in range(steps):
        for i, (a, b, s) in enumerate(zip(ours, theirs, shapes, strict=True)):
            if step % 4 == 3 and i == 1:  # sometimes without a gradient: skipped, state and all
                a.grad = b.grad = None
                continue
            g = rng.standard_normal(s).astype(dtype)
            set_grad(a, g)
            b.grad = torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
    return ours, theirs, opt_ours, opt_theirs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", CONFIGS)
def test_matches_torch(name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs, opt_ours, opt_theirs = run_both(torch, name, kwargs, dtype)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=TOL[dtype],
                                   atol=TOL[dtype])
    # the state: same keys, same step counts, values within rounding
    mine, torchs = opt_ours.state_dict(), opt_theirs.state_dict()
    assert mine["param_groups"] == torchs["param_groups"]
    assert mine["state"].keys() == torchs["state"].keys()
    for key, state in torchs["state"].items():
        assert list(mine["state"][key]) == list(state)
        for name_, value in state.items():
            value = value.numpy()
            got = mine["state"][key][name_].numpy()
            assert got.dtype == value.dtype and got.shape == value.shape
            np.testing.assert_allclose(got, value, rtol=TOL[dtype] * 10, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [
    {"lr": 0.5}, {"lr": 0.25, "momentum": 0.5}, {"lr": 0.5, "momentum": 0.5, "dampening": 0.5},
    {"lr": 0.125, "momentum": 0.5, "nesterov": True, "weight_decay": 0.25, "maximize": True},
])
def test_sgd_is_torchs_bitwise_when_products_are_exact(kwargs, dtype):
    # torch fuses p - lr * g into one rounding (a multiply-add), numpy and cygrad round twice;
    # with powers of two as options every product is exact and both agree to the last bit
    torch = pytest.importorskip("torch")
    ours, theirs, _, _ = run_both(torch, "SGD", kwargs, dtype)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a.numpy(), b.detach().numpy())


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    groups = [([0, 2], {}), ([1, 3], {"lr": 0.2, "momentum": 0.5})]
    ours, theirs, _, _ = run_both(torch, "SGD", {"lr": 0.05, "momentum": 0.9}, "float64",
                                  groups=groups)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name, kwargs", [("Adam", {"lr": 0.01, "amsgrad": True}),
                                          ("RMSprop", {"momentum": 0.9, "centered": True}),
                                          ("SGD", {"lr": 0.1, "momentum": 0.9}),
                                          ("Adagrad", {}), ("Adadelta", {})])
def test_torchs_state_dict_loads_and_training_continues_alike(name, kwargs):
    torch = pytest.importorskip("torch")
    _, theirs, _, opt_theirs = run_both(torch, name, kwargs, "float64", steps=6)
    sd = opt_theirs.state_dict()
    ours = [cygrad.tensor(t.detach().numpy().copy(), requires_grad=True) for t in theirs]
    opt_ours = getattr(optim, name)(ours, lr=123.0)
    opt_ours.load_state_dict({"state": {k: {n: v.numpy().copy() for n, v in s.items()}
                                        for k, s in sd["state"].items()},
                              "param_groups": sd["param_groups"]})
    rng = np.random.default_rng(5)
    for _ in range(5):
        for a, b in zip(ours, theirs, strict=True):
            g = rng.standard_normal(a.shape)
            set_grad(a, g)
            b.grad = torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------------- state, dtype, skipping

@pytest.mark.parametrize("name, kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                          ("Adam", {"lr": 0.01, "amsgrad": True}),
                                          ("AdamW", {"lr": 0.01}),
                                          ("RMSprop", {"momentum": 0.5, "centered": True}),
                                          ("Adagrad", {"lr_decay": 0.1}), ("Adadelta", {})])
def test_state_dict_round_trip_through_a_file(tmp_path, name, kwargs):
    rng = np.random.default_rng(1)
    grads = list(rng.standard_normal((10, 3, 2)).astype(np.float32))
    start = rng.standard_normal((3, 2)).astype(np.float32)

    def steps(opt, p, gs):
        for g in gs:
            set_grad(p, g)
            opt.step()

    p = cygrad.tensor(start, requires_grad=True)
    opt = getattr(optim, name)([p], **kwargs)
    steps(opt, p, grads)  # uninterrupted run

    q = cygrad.tensor(start, requires_grad=True)
    first = getattr(optim, name)([q], **kwargs)
    steps(first, q, grads[:4])
    save({"param": q, "optimizer": first.state_dict()}, tmp_path / "ckpt.npz")
    checkpoint = load(tmp_path / "ckpt.npz")
    r = cygrad.tensor(checkpoint["param"], requires_grad=True)
    second = getattr(optim, name)([r], lr=123.0)  # options come back from the file
    second.load_state_dict(checkpoint["optimizer"])
    steps(second, r, grads[4:])
    assert np.array_equal(r.numpy(), p.numpy()) and r.dtype == np.float32
    for key, value in opt.state[p].items():
        assert np.array_equal(second.state[r][key].numpy(), value.numpy())


def test_state_dict_shares_the_state_and_load_checks_shapes():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    set_grad(p, np.ones(2))
    opt.step()
    sd = opt.state_dict()
    assert sd["state"][0] is opt.state[p]  # torch's state_dict holds the state itself
    assert sd["param_groups"][0] is not opt.param_groups[0]
    sd = {"state": {0: {"momentum_buffer": np.ones(3)}}, "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(sd)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    assert opt.state[p]["momentum_buffer"].numpy().tolist() == [1.0, 1.0]  # unchanged


def test_old_checkpoints_with_a_number_for_step_load():
    p = param([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1)
    sd = opt.state_dict()
    sd["state"] = {0: {"step": 3, "exp_avg": np.zeros(2), "exp_avg_sq": np.zeros(2)}}
    opt.load_state_dict(sd)
    step = opt.state[p]["step"]
    assert isinstance(step, cygrad.Tensor) and step.item() == 3.0 and step.dtype == np.float32


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_float32_stays_float32(name):
    p = param(np.linspace(-1, 1, 7), dtype="float32")
    data = p.numpy()
    opt = getattr(optim, name)([p], lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    for _ in range(3):
        set_grad(p, np.full(7, 0.5))
        opt.step()
    assert p.numpy() is data and p.dtype == np.float32
    state = opt.state[p]
    assert state and all(v.dtype == np.float32 for v in state.values())
    assert all(isinstance(v, cygrad.Tensor) for v in state.values())


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta"])
def test_param_without_grad_is_untouched(name):
    p, q = param([1.0, 2.0]), param([3.0, 4.0])
    opt = getattr(optim, name)([p, q], lr=0.1, weight_decay=0.1)
    set_grad(p, np.ones(2))
    opt.step()
    assert np.array_equal(q.numpy(), [3.0, 4.0]) and not opt.state.get(q)
    assert not np.array_equal(p.numpy(), [1.0, 2.0])


def test_adagrad_makes_its_state_at_construction():
    p, q = param([1.0, 2.0]), param([3.0])
    opt = optim.Adagrad([p], initial_accumulator_value=0.5)
    assert opt.state[p]["sum"].numpy().tolist() == [0.5, 0.5] and opt.state[p]["step"].item() == 0
    opt.add_param_group({"params": [q], "initial_accumulator_value": 9.0})
    set_grad(q, [1.0])
    opt.step()  # as torch: a later parameter's sum starts from the constructor's value
    assert opt.state[q]["sum"].numpy().tolist() == [1.5]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_equal_elements_stay_bitwise_equal(name):
    # 1001 elements: SIMD lanes and the scalar loop tail must compute the same update.
    p = param(np.full(1001, 0.3), dtype="float32")
    opt = getattr(optim, name)([p], lr=0.01, weight_decay=0.05)
    rng = np.random.default_rng(2)
    for _ in range(20):
        set_grad(p, np.full(1001, rng.standard_normal()))
        opt.step()
    assert np.all(p.numpy() == p.numpy()[0])


def test_read_only_parameter_gets_a_copy_and_the_update():
    p = param([1.0, 2.0])
    old = p.numpy()
    old.setflags(write=False)  # as a live graph's lock leaves it
    opt = optim.Adam([p], lr=0.1)
    set_grad(p, [1.0, 1.0])
    opt.step()
    assert p.numpy() is not old and old.tolist() == [1.0, 2.0]
    np.testing.assert_allclose(p.numpy(), [0.9, 1.9])
    assert opt.state[p]["step"].item() == 1


def test_zero_grad():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, np.ones(2))
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and np.all(grad.numpy() == 0)
    opt.zero_grad()
    assert p.grad is None


def test_closure_and_repr():
    p = param(P0)
    opt = optim.Adam([p], lr=0.1)

    def closure():
        quadratic_grad(p)
        return 1.5

    assert opt.step(closure) == 1.5
    text = repr(opt)
    assert text.startswith("Adam (\nParameter Group 0\n") and "    lr: 0.1\n" in text


def test_repr_is_torchs():
    torch = pytest.importorskip("torch")
    ours = optim.SGD([param([1.0])], lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    assert repr(ours) == repr(theirs)


def test_named_parameters_and_later_groups():
    a, b = param([1.0]), param([2.0])
    opt = optim.SGD([("w", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w"]
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [b]})
    opt.add_param_group({"params": [("v", b)], "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0


# ---------------------------------------------------------------------- hooks

def test_step_hooks_run_in_order_and_remove():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.5)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o, args)))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", p.item())))
    set_grad(p, [1.0])
    opt.step()
    assert calls == [("pre", opt, ()), ("post", 0.5)]
    pre.remove()
    post.remove()
    post.remove()  # a second remove does nothing
    opt.step()
    assert len(calls) == 2 and p.item() == 0.0


def test_pre_hook_can_replace_the_arguments_and_global_hooks_see_every_optimizer():
    from cygrad.optim.optimizer import register_optimizer_step_post_hook

    p = param([1.0])
    opt = optim.Adam([p], lr=0.1)
    seen = []
    opt.register_step_pre_hook(lambda o, args, kwargs: ((), {"closure": lambda: 7.0}))
    with register_optimizer_step_post_hook(lambda o, args, kwargs: seen.append(type(o))):
        assert opt.step() == 7.0
        optim.SGD([param([1.0])]).step()
    optim.SGD([param([1.0])]).step()  # after the with block: removed
    assert seen == [optim.Adam, optim.SGD]


def test_hooks_wrap_a_subclass_step():
    class Halve(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {})

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.numpy()[...] /= 2

    p = param([4.0])
    opt = Halve([p])
    calls = []
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(p.item()))
    opt.step()
    assert calls == [2.0]


def test_a_subclass_calling_super_step_runs_the_hooks_once():
    class Counting(optim.SGD):
        steps = 0

        def step(self, closure=None):
            Counting.steps += 1
            return super().step(closure)

    p = param([1.0])
    opt = Counting([p], lr=0.5)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    set_grad(p, [1.0])
    opt.step()
    assert calls == ["pre", "post"] and Counting.steps == 1 and p.item() == 0.5


def test_state_dict_hooks():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1)
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    assert opt.state_dict()["extra"] == 1
    loaded = []
    opt.register_load_state_dict_post_hook(lambda o: loaded.append(o))
    opt.load_state_dict(optim.SGD([param([1.0])], lr=0.3).state_dict())
    assert loaded == [opt] and opt.param_groups[0]["lr"] == 0.3


# ---------------------------------------------------------------------- options and errors

@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"foreach": True}), ("SGD", {"fused": True}), ("Adam", {"foreach": False}),
    ("AdamW", {"fused": True}), ("Adagrad", {"fused": True}), ("RMSprop", {"foreach": True}),
    ("Adadelta", {"foreach": True})])
def test_foreach_and_fused_change_nothing(name, kwargs):
    p, q = param([1.0, -2.0]), param([1.0, -2.0])
    plain, flagged = getattr(optim, name)([p], lr=0.1), getattr(optim, name)([q], lr=0.1, **kwargs)
    for _ in range(3):
        set_grad(p, [0.5, 0.25])
        set_grad(q, [0.5, 0.25])
        plain.step()
        flagged.step()
    assert np.array_equal(p.numpy(), q.numpy())


@pytest.mark.parametrize("name, kwargs, match", [
    ("SGD", {"differentiable": True}, "differentiable"),
    ("Adam", {"capturable": True}, "capturable"),
    ("RMSprop", {"capturable": True}, "capturable"),
    ("Adam", {"fused": True, "foreach": True}, "cannot be `True` together"),
])
def test_options_cygrad_cannot_honour_raise(name, kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        getattr(optim, name)([param([1.0])], **kwargs)


@pytest.mark.parametrize("call, error, match", [
    ("optim.SGD([p], lr=-0.1)", ValueError, r"^Invalid learning rate: -0.1$"),
    ("optim.SGD([p], lr=float('nan'))", ValueError, r"^Invalid learning rate: nan$"),
    ("optim.SGD([p], momentum=-0.5)", ValueError, r"^Invalid momentum value: -0.5$"),
    ("optim.SGD([p], weight_decay=-0.01)", ValueError, r"^Invalid weight_decay value: -0.01$"),
    ("optim.SGD([p], nesterov=True)", ValueError,
     r"^Nesterov momentum requires a momentum and zero dampening$"),
    ("optim.SGD([p], momentum=0.9, dampening=0.1, nesterov=True)", ValueError, "Nesterov"),
    ("optim.Adam([p], betas=(1.0, 0.999))", ValueError,
     r"^Invalid beta parameter at index 0: 1.0$"),
    ("optim.Adam([p], betas=(0.9, -0.1))", ValueError,
     r"^Invalid beta parameter at index 1: -0.1$"),
    ("optim.Adam([p], betas=(0, 0.9))", ValueError, "both floats or both Tensors"),
    ("optim.Adam([p], eps=-1e-8)", ValueError, r"^Invalid epsilon value: -1e-08$"),
    ("optim.AdamW([p], weight_decay=-0.01)", ValueError, r"^Invalid weight_decay value"),
    ("optim.RMSprop([p], alpha=-0.5)", ValueError, r"^Invalid alpha value: -0.5$"),
    ("optim.Adagrad([p], lr_decay=-1)", ValueError, r"^Invalid lr_decay value: -1$"),
    ("optim.Adagrad([p], initial_accumulator_value=-1)", ValueError,
     r"^Invalid initial_accumulator_value value: -1$"),
    ("optim.Adadelta([p], rho=1.5)", ValueError, r"^Invalid rho value: 1.5$"),
    ("optim.Adam([{'params': [p], 'lr': -1.0}])", ValueError, "Invalid learning rate: -1.0"),
    ("optim.SGD([p], lr='0.1')", TypeError, "lr must be a number"),
    ("optim.Adam([p], betas=(0.9,))", TypeError, "betas must be a pair"),
    ("optim.SGD([p, p * 2])", ValueError, "can't optimize a non-leaf Tensor"),
    ("optim.SGD([np.ones(2)])", TypeError, "optimizer can only optimize Tensors"),
    ("optim.SGD(p)", TypeError, "should be an iterable of Tensors or dicts"),
    ("optim.SGD([])", ValueError, "optimizer got an empty parameter list"),
    ("optim.SGD({p})", TypeError, "ordered collections"),
    ("optim.Adam([{'params': [p]}, {'params': [p]}])", ValueError,
     "some parameters appear in more than one parameter group"),
])
def test_bad_options_raise_torchs_errors(call, error, match):
    p = param([1.0])
    with pytest.raises(error, match=match):
        eval(call, {"optim": optim, "p": p, "np": np})


def test_momentum_of_one_is_accepted_as_torch():
    optim.SGD([param([1.0])], lr=0.1, momentum=1.0)


def test_same_parameter_twice_in_a_group_warns():
    p = param([1.0])
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def test_gradient_of_wrong_shape_or_dtype_raises():
    p = param([1.0, 2.0])
    with pytest.raises(RuntimeError, match="different size"):
        p.grad = cygrad.tensor(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p._grad = cygrad.tensor(np.ones(3))  # past the Tensor's own check: the optimizer's
    with pytest.raises(ValueError, match="shape"):
        opt.step()
