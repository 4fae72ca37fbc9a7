"""cygrad.optim: update rules against hand-written references and torch.optim, state, errors."""

import math

import numpy as np
import pytest

import cygrad
from cygrad import optim
from cygrad.serialization import load, save

TOL = {"float32": 1e-5, "float64": 1e-10}


def param(values, dtype="float64"):
    return cygrad.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


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


def reference_adam(p, a, c, steps, lr, b1, b2, eps, wd=0.0, decoupled=False):
    out = []
    for x, ai, ci in zip(p, a, c, strict=True):
        m = v = 0.0
        for t in range(1, steps + 1):
            g = ai * (x - ci)
            if decoupled:
                x = x * (1 - lr * wd)
            else:
                g = g + wd * x
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            x = x - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(x)
    return out


A, C, P0 = [1.0, 3.0, 0.5], [2.0, -1.0, 4.0], [0.3, 0.7, -1.2]


@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.3}, {"momentum": 0.8, "nesterov": True},
    {"momentum": 0.5, "weight_decay": 0.1}, {"weight_decay": 0.2},
])
def test_sgd_matches_reference(kwargs):
    p = param(P0)
    opt = optim.SGD([p], lr=0.05, **kwargs)
    for _ in range(15):
        quadratic_grad(p)
        opt.step()
    renamed = {("wd" if k == "weight_decay" else k): v for k, v in kwargs.items()}
    np.testing.assert_allclose(p.numpy(), reference_sgd(P0, A, C, 15, 0.05, **renamed), rtol=1e-12)


@pytest.mark.parametrize("cls, wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.1)])
def test_adam_matches_reference(cls, wd):
    p = param(P0)
    opt = cls([p], lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    for _ in range(15):
        quadratic_grad(p)
        opt.step()
    expected = reference_adam(P0, A, C, 15, 0.1, 0.8, 0.99, 1e-6, wd, cls is optim.AdamW)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12)


def test_sgd_converges_on_quadratic():
    p = param(P0)
    opt = optim.SGD([p], lr=0.3, momentum=0.5)
    for _ in range(200):
        quadratic_grad(p)
        opt.step()
    np.testing.assert_allclose(p.numpy(), C, atol=1e-8)


# ---------------------------------------------------------------------- against torch.optim

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.7, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "betas": (0.6, 0.999)}),  # 1 - beta1 >= 0.5: lerp's other branch
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.95)}),
]


def run_both(torch, name, kwargs, dtype, steps=20, groups=None):
    """Same initial values and gradient sequence through cygrad and torch; both param lists."""
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [cygrad.tensor(x, requires_grad=True) for x in init]
    theirs = [torch.tensor(x, requires_grad=True) for x in init]
    if groups is None:
        opt_ours, opt_theirs = getattr(optim, name)(ours, **kwargs), \
            getattr(torch.optim, name)(theirs, **kwargs)
    else:
        opt_ours = getattr(optim, name)(
            [dict(g, params=[ours[i] for i in idx]) for idx, g in groups], **kwargs)
        opt_theirs = getattr(torch.optim, name)(
            [dict(g, params=[theirs[i] for i in idx]) for idx, g in groups], **kwargs)
    for _ in range(steps):
        for a, b, s in zip(ours, theirs, shapes, strict=True):
            g = rng.standard_normal(s).astype(dtype)
            a.grad, b.grad = cygrad.tensor(g), torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
    return ours, theirs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", CONFIGS)
def test_matches_torch(name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = run_both(torch, name, kwargs, dtype)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype])


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    groups = [([0, 2], {}), ([1], {"lr": 0.2, "momentum": 0.5})]
    ours, theirs = run_both(torch, "SGD", {"lr": 0.05, "momentum": 0.9}, "float64",
                            groups=groups)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------- state, dtype, skipping

@pytest.mark.parametrize("name, kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                          ("Adam", {"lr": 0.01}), ("AdamW", {"lr": 0.01})])
def test_state_dict_round_trip_through_a_file(tmp_path, name, kwargs):
    rng = np.random.default_rng(1)
    grads = list(rng.standard_normal((10, 3, 2)).astype(np.float32))
    start = rng.standard_normal((3, 2)).astype(np.float32)

    def steps(opt, p, gs):
        for g in gs:
            p.grad = cygrad.tensor(g.copy())
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


def test_state_dict_is_a_copy_and_load_checks_shapes():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = cygrad.tensor(np.ones(2))
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][:] = 7
    assert np.all(opt.state[p]["momentum_buffer"] == 1)
    sd["state"][0]["momentum_buffer"] = np.ones(3)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(sd)
    with pytest.raises(ValueError, match="groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_float32_stays_float32(cls):
    p = param(np.linspace(-1, 1, 7), dtype="float32")
    data = p.numpy()
    opt = cls([p], lr=0.1, **({"momentum": 0.9} if cls is optim.SGD else {}))
    for _ in range(3):
        p.grad = cygrad.tensor(np.full(7, 0.5, dtype=np.float32))
        opt.step()
    assert p.numpy() is data and p.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_param_without_grad_is_untouched(cls):
    p, q = param([1.0, 2.0]), param([3.0, 4.0])
    opt = cls([p, q], lr=0.1, weight_decay=0.1)
    p.grad = cygrad.tensor(np.ones(2))
    opt.step()
    assert np.array_equal(q.numpy(), [3.0, 4.0]) and q not in opt.state
    assert not np.array_equal(p.numpy(), [1.0, 2.0])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_equal_elements_stay_bitwise_equal(cls):
    # 1001 elements: SIMD lanes and the scalar loop tail must compute the same update.
    p = param(np.full(1001, 0.3), dtype="float32")
    opt = cls([p], lr=0.01, weight_decay=0.05)
    rng = np.random.default_rng(2)
    for _ in range(20):
        p.grad = cygrad.tensor(np.full(1001, rng.standard_normal(), dtype=np.float32))
        opt.step()
    assert np.all(p.numpy() == p.numpy()[0])


def test_zero_grad():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = cygrad.tensor(np.ones(2))
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and np.all(grad == 0)
    opt.zero_grad()
    assert p.grad is None


def test_closure_and_repr():
    p = param(P0)
    opt = optim.Adam([p], lr=0.1)

    def closure():
        quadratic_grad(p)
        return 1.5

    assert opt.step(closure) == 1.5
    assert "Adam" in repr(opt) and "lr: 0.1" in repr(opt)


# ---------------------------------------------------------------------- errors

def test_same_parameter_twice_raises():
    p = param([1.0])
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)


def test_same_parameter_in_two_groups_raises():
    p = param([1.0])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([{"params": [p]}, {"params": [p], "lr": 0.1}])


def test_empty_parameter_list_raises():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


def test_non_leaf_and_non_tensor_raise():
    p = param([1.0])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(p, lr=0.1)


def test_negative_lr_raises():
    with pytest.raises(ValueError, match="-0.1"):
        optim.SGD([param([1.0])], lr=-0.1)


def test_negative_lr_in_a_group_raises():
    with pytest.raises(ValueError, match="-1"):
        optim.Adam([{"params": [param([1.0])], "lr": -1.0}])


def test_momentum_below_zero_raises():
    with pytest.raises(ValueError, match="-0.5"):
        optim.SGD([param([1.0])], lr=0.1, momentum=-0.5)


def test_momentum_one_raises():
    with pytest.raises(ValueError, match="1.0"):
        optim.SGD([param([1.0])], lr=0.1, momentum=1.0)


def test_sgd_negative_weight_decay_raises():
    with pytest.raises(ValueError, match="-0.01"):
        optim.SGD([param([1.0])], lr=0.1, weight_decay=-0.01)


def test_adam_negative_weight_decay_raises():
    with pytest.raises(ValueError, match="-0.01"):
        optim.AdamW([param([1.0])], weight_decay=-0.01)


def test_nesterov_without_momentum_raises():
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([param([1.0])], lr=0.1, nesterov=True)


def test_nesterov_with_dampening_raises():
    with pytest.raises(ValueError, match="dampening=0.1"):
        optim.SGD([param([1.0])], lr=0.1, momentum=0.9, nesterov=True, dampening=0.1)


def test_beta1_out_of_range_raises():
    with pytest.raises(ValueError, match="index 0: 1.0"):
        optim.Adam([param([1.0])], betas=(1.0, 0.999))


def test_beta2_out_of_range_raises():
    with pytest.raises(ValueError, match="index 1: -0.1"):
        optim.Adam([param([1.0])], betas=(0.9, -0.1))


def test_negative_eps_raises():
    with pytest.raises(ValueError, match="-1e-08"):
        optim.Adam([param([1.0])], eps=-1e-8)


def test_nan_lr_raises():
    with pytest.raises(ValueError, match="nan"):
        optim.Adam([param([1.0])], lr=float("nan"))


def test_gradient_of_wrong_shape_raises():
    p = param([1.0, 2.0])
    with pytest.raises(RuntimeError, match="different size"):
        p.grad = cygrad.tensor(np.ones(3))  # torch refuses it at assignment
