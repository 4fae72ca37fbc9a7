"""Derivatives of derivatives (backward / autograd.grad with create_graph=True, ops/higher.py):
every elementwise entry and the other ops against central differences (gradgradcheck) and
against torch (skipped without it), the engine's semantics (.grad with a graph, hooks,
retain_graph, errors), and the exactness contract: tied units stay bitwise tied under a
gradient penalty at any thread count."""

import gc
import sys
import warnings

import numpy as np
import pytest

import cygrad
import cygrad.nn as nn
import cygrad.nn.functional as F
from cygrad.ops import registry

# ---------------------------------------------------------------------- against torch

def _setitem(L, F, a, b):
    w = a.clone()
    w[1:3] = b.exp()
    return (w ** 2).sum() * a[0]


CASES = {
    "index_put": (lambda L, F, a, b: ((a * a).index_put((L.tensor([0, 2]),), b * b) ** 2).sum()
                  + ((a * 1.0).index_put((L.tensor([1, 1]),), b.sum() * b, accumulate=True)
                     ** 3).sum(), [(4,), (2,)]),
    "setitem": (_setitem, [(4,), (2,)]),
    "poly": (lambda L, F, x: (x ** 3).sum(), [(4, 3)]),
    "tanh sin exp": (lambda L, F, x: (x.tanh() * x.sin()).exp().sum(), [(4, 3)]),
    "mlp mse": (lambda L, F, x, w1, b1, w2: F.mse_loss(
        F.linear(F.linear(x, w1, b1).tanh(), w2), L.ones(5, 2, dtype=L.float64)),
        [(5, 3), (4, 3), (4,), (2, 4)]),
    "matmul softmax": (lambda L, F, a, b: (a @ b).softmax(1).log().mean(), [(3, 4), (4, 5)]),
    "log_softmax": (lambda L, F, a: (a.log_softmax(1) ** 2).sum(), [(3, 4)]),
    "cross_entropy": (lambda L, F, a: F.cross_entropy(a, L.tensor([0, 2, 1])), [(3, 4)]),
    "cross_entropy sum": (lambda L, F, a: F.cross_entropy(a, L.tensor([0, 2, 1]),
                                                          reduction="sum"), [(3, 4)]),
    "cross_entropy weight": (lambda L, F, a: F.cross_entropy(
        a, L.tensor([0, 2, 1]), weight=L.tensor([1.0, 2.0, 3.0, 4.0], dtype=L.float64)),
        [(3, 4)]),
    "nll_loss": (lambda L, F, x: F.nll_loss(x.log_softmax(1), L.tensor([1, 0, 2, 1])),
                 [(4, 3)]),
    "gradient penalty": (lambda L, F, x, w: ((F.leaky_relu(x @ w, 0.2)).norm(2, dim=1) - 1)
                         .pow(2).mean(), [(4, 3), (3, 5)]),
    "layer_norm": (lambda L, F, x, w, b: (F.layer_norm(x, (3,), w, b) ** 3).sum(),
                   [(4, 3), (3,), (3,)]),
    "batch_norm": (lambda L, F, x, w, b: (F.batch_norm(x, None, None, w, b, training=True)
                                          ** 3).sum(), [(4, 3), (3,), (3,)]),
    "activations": (lambda L, F, x: (x.sigmoid() * x.relu() + F.gelu(x) + F.softplus(x)
                                     + F.silu(x) + F.elu(x) + x.abs().sqrt()).sum(), [(4, 3)]),
    "div where": (lambda L, F, x, y: L.where(x > 0, x / y, y * y).sum(), [(4, 3), (4, 3)]),
    "cat slice": (lambda L, F, x, y: (L.cat([x, y], 0)[1:, ::2] ** 2).sum() * x[0, 0],
                  [(2, 3), (2, 3)]),
    "expand reshape t": (lambda L, F, x: (x.unsqueeze(0).expand(2, 4, 3).reshape(6, 4).t()
                                          ** 2).mean(), [(4, 3)]),
    "clamp": (lambda L, F, x: (x.clamp(-0.5, 0.5) * x).sum(), [(4, 3)]),
    "bmm": (lambda L, F, a, b: (a @ b).pow(2).sum(), [(2, 3, 4), (2, 4, 5)]),
    "batch @ matrix": (lambda L, F, a, b: (a @ b).tanh().sum(), [(2, 3, 4), (4, 5)]),
    "pow tensor": (lambda L, F, x, y: (x.abs() + 1).pow(y).sum(), [(3,), (3,)]),
    "conv2d": (lambda L, F, x, w, b: (F.conv2d(x, w, b, padding=1) ** 2).tanh().sum(),
               [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]),
    "conv2d groups stride": (lambda L, F, x, w: (F.conv2d(x, w, None, stride=2, padding=1,
                                                          groups=2) ** 2).sum(),
                             [(2, 4, 6, 6), (6, 2, 3, 3)]),
    "conv1d dilation": (lambda L, F, x, w: (F.conv1d(x, w, padding=2, dilation=2) ** 3).sum(),
                        [(2, 3, 9), (4, 3, 3)]),
    "max_pool2d": (lambda L, F, x: (F.max_pool2d(x * x, 2) ** 2).sum(), [(2, 2, 4, 4)]),
    "avg_pool2d": (lambda L, F, x: (F.avg_pool2d(x * x, 2) ** 2).sum(), [(2, 2, 4, 4)]),
    "max dim": (lambda L, F, x: ((x * x).max(1)[0] ** 2).sum(), [(4, 3)]),
    "amax": (lambda L, F, x: ((x * x).amax(1) ** 2).sum(), [(4, 3)]),
    "max all": (lambda L, F, x: (x * x).max() ** 2, [(4, 3)]),
    "embedding": (lambda L, F, w: (F.embedding(L.tensor([[0, 2], [1, 2]]), w) ** 3).sum(),
                  [(3, 4)]),
    "embedding padding": (lambda L, F, w: (F.embedding(L.tensor([[0, 2], [1, 2]]), w,
                                                       padding_idx=2) ** 3).sum(), [(3, 4)]),
    "gather cumsum flip": (lambda L, F, x: (x.gather(1, L.tensor([[0, 1], [2, 0]])).cumsum(1)
                                            .flip(0) ** 3).sum(), [(2, 3)]),
    "std logsumexp": (lambda L, F, x: (x.std(1) ** 2).sum() + (x.logsumexp(1) ** 2).sum(),
                      [(4, 3)]),
    "bce with logits": (lambda L, F, x, t: F.binary_cross_entropy_with_logits(x, t.sigmoid()),
                        [(4, 3), (4, 3)]),
    "smooth_l1": (lambda L, F, x, t: F.smooth_l1_loss(x * x, t), [(4, 3), (4, 3)]),
    "prod": (lambda L, F, x: (x.prod(1) ** 2).sum() + x.prod() + x[:2].prod(0, keepdim=True)
             .sum() ** 2, [(4, 5)]),
    "cumprod": (lambda L, F, x: (L.cumprod(x, 1) ** 2).sum() + L.cumprod(x, 0).sum() ** 2,
                [(4, 5)]),
    "lgamma": (lambda L, F, x: ((x * x + 0.5).lgamma() ** 2).sum(), [(4, 3)]),
}


def _second(lib, functional, f, arrays):
    """First derivatives (with a graph) and the derivative of their squared norm."""
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    gs = lib.autograd.grad(f(lib, functional, *xs), xs, create_graph=True, allow_unused=True)
    total = sum((g * g).sum() for g in gs if g is not None)
    hs = lib.autograd.grad(total, xs, allow_unused=True)
    return [None if g is None else g.detach().numpy() for g in list(gs) + list(hs)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivatives_match_torch(name):
    torch = pytest.importorskip("torch")
    f, shapes = CASES[name]
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = _second(cygrad, F, f, arrays)
    theirs = _second(torch, torch.nn.functional, f, arrays)
    for a, b in zip(ours, theirs, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=RTOL.get(name, 1e-10), atol=1e-12)


# torch's trigamma (polygamma(1, x): lgamma's second derivative) is 1e-10 to 5e-10 off in
# float64 (against mpmath); cygrad's within an ulp
RTOL = {"lgamma": 2e-9}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_create_graph_changes_no_first_derivative_bit(name, dtype):
    """The gradients backward(create_graph=True) gives have the bits of a plain backward's
    (each op's own backward computes them; only their derivatives follow the formulas)."""
    if name == "cross_entropy weight" and dtype == np.float32:
        pytest.skip("its weight is float64 (torch refuses a float32 input with it too)")
    f, shapes = CASES[name]
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    results = []
    for create_graph in (False, True):
        xs = [cygrad.tensor(a, requires_grad=True) for a in arrays]
        gs = cygrad.autograd.grad(f(cygrad, F, *xs), xs, create_graph=create_graph,
                                  allow_unused=True)
        results.append([None if g is None else g.detach().numpy().tobytes() for g in gs])
    assert results[0] == results[1]


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivatives_against_finite_differences(name):
    f, shapes = CASES[name]
    rng = np.random.default_rng(11)
    xs = [cygrad.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    assert cygrad.autograd.gradgradcheck(lambda *a: f(cygrad, F, *a), xs, atol=1e-4)


# ---------------------------------------------------------------------- the elementwise table

def _domain(entry, rng, shape):
    lo, hi = entry.domain
    return rng.uniform(lo, hi, shape)


@pytest.mark.parametrize("name", sorted(n for n, e in registry.ENTRIES.items()
                                        if hasattr(e, "grad") and e.grad is not None))
def test_every_unary_entry_differentiates_twice(name):
    entry = registry.ENTRIES[name]
    rng = np.random.default_rng(3)
    x = cygrad.tensor(_domain(entry, rng, (5,)), requires_grad=True)
    fn = entry.function  # input first (torch.polygamma takes n first)
    if entry.grad.__name__ == "_zeros":  # a step function: its gradient is a constant 0
        (g,) = cygrad.autograd.grad(fn(x).sum(), x, create_graph=True)
        assert not g.requires_grad and not g.numpy().any()
        return
    assert cygrad.autograd.gradgradcheck(fn, (x,), atol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n, e in registry.ENTRIES.items()
                                        if hasattr(e, "grad_a") and e.grad_a is not None
                                        and n != "floor_divide"))
def test_every_binary_entry_differentiates_twice(name):
    entry = registry.ENTRIES[name]
    rng = np.random.default_rng(5)
    a = cygrad.tensor(_domain(entry, rng, (2, 3)), requires_grad=True)
    b = cygrad.tensor(_domain(entry, rng, (3,)), requires_grad=True)  # broadcast
    if name in ("pow",):
        a = cygrad.tensor(np.abs(a.numpy()) + 0.5, requires_grad=True)
    assert cygrad.autograd.gradgradcheck(entry.function, (a, b), atol=1e-4)


# ---------------------------------------------------------------------- layers and models

def test_attention_differentiates_twice():
    """scaled_dot_product_attention (torch's CPU kernel has no double backward) and
    nn.MultiheadAttention, against central differences."""
    rng = np.random.default_rng(2)
    q, k, v = (cygrad.tensor(rng.standard_normal((1, 2, 4, 3)), requires_grad=True)
               for _ in range(3))
    assert cygrad.autograd.gradgradcheck(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), (q, k, v),
        atol=1e-4)
    cygrad.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, batch_first=True).double()
    x = cygrad.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert cygrad.autograd.gradgradcheck(lambda t: mha(t, t, t)[0], (x,), atol=1e-4)


def _wgan_gp_params(lib, init, real, fake, alpha, steps=3):
    critic = lib.nn.Sequential(lib.nn.Linear(3, 16), lib.nn.LeakyReLU(0.2),
                               lib.nn.Linear(16, 16), lib.nn.Tanh(), lib.nn.Linear(16, 1))
    critic = critic.double()
    with lib.no_grad():
        for p, w in zip(critic.parameters(), init):
            p.copy_(lib.tensor(w))
    opt = lib.optim.Adam(critic.parameters(), lr=1e-2)
    for _ in range(steps):
        mixed = lib.tensor(alpha * real + (1 - alpha) * fake, requires_grad=True)
        (g,) = lib.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        penalty = ((g.norm(2, dim=1) - 1) ** 2).mean()
        loss = critic(lib.tensor(fake)).mean() - critic(lib.tensor(real)).mean() + 10 * penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().numpy() for p in critic.parameters()]


def test_wgan_gp_critic_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    alpha = rng.uniform(size=(8, 1))
    init = [rng.standard_normal(s) * 0.5 for s in ((16, 3), (16,), (16, 16), (16,), (1, 16),
                                                    (1,))]
    ours = _wgan_gp_params(cygrad, init, real, fake, alpha)
    theirs = _wgan_gp_params(torch, init, real, fake, alpha)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_maml_inner_step_matches_torch():
    """MAML: an inner SGD step with create_graph=True, the outer loss differentiated through
    it to the initial weights (F.linear, relu, cross_entropy)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x, xq = rng.standard_normal((6, 4)), rng.standard_normal((5, 4))
    y, yq = np.array([0, 1, 2, 0, 1, 2]), np.array([2, 1, 0, 0, 1])
    w1, b1, w2 = (rng.standard_normal(s) * 0.5 for s in ((8, 4), (8,), (3, 8)))
    out = []
    for lib, Fn in ((cygrad, F), (torch, torch.nn.functional)):
        params = [lib.tensor(a, requires_grad=True) for a in (w1, b1, w2)]

        def net(inp, p, Fn=Fn):
            return Fn.linear(Fn.linear(inp, p[0], p[1]).relu(), p[2])

        loss = Fn.cross_entropy(net(lib.tensor(x), params), lib.tensor(y))
        grads = lib.autograd.grad(loss, params, create_graph=True)
        fast = [p - 0.4 * g for p, g in zip(params, grads)]
        Fn.cross_entropy(net(lib.tensor(xq), fast), lib.tensor(yq)).backward()
        out.append([p.grad.numpy() for p in params])
    for a, b in zip(*out, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------- the engine

def test_backward_create_graph_semantics():
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    sys.modules["cygrad.tensor"]._CYCLE_WARNED.clear()  # torch warns once a process
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None and x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.detach().numpy(), [3.0, 12.0])
    first = x.grad
    (x ** 3).sum().backward(create_graph=True)  # added out of place: a new tensor
    assert x.grad is not first
    np.testing.assert_array_equal(x.grad.detach().numpy(), [6.0, 24.0])
    np.testing.assert_array_equal(first.detach().numpy(), [3.0, 12.0])
    (h,) = cygrad.autograd.grad(x.grad.sum(), x)
    np.testing.assert_array_equal(h.numpy(), [12.0, 24.0])  # d(6 x**2)/dx
    assert sum("reference cycle" in str(w.message) for w in seen) == 1
    # a gradient that does not depend on anything requiring grad has no graph
    z = cygrad.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cygrad.autograd.grad((z * cygrad.ones(2)).sum(), z, create_graph=True)
    assert not g.requires_grad and g.grad_fn is None
    # retain_graph defaults to create_graph: a second backward works
    y = (z * z).sum()
    cygrad.autograd.grad(y, z, create_graph=True)
    cygrad.autograd.grad(y, z)
    with pytest.raises(RuntimeError, match="second time"):
        cygrad.autograd.grad(y, z)


def test_hooks_and_retain_grad_see_gradients_with_their_graph():
    x = cygrad.tensor([0.5, -1.0], requires_grad=True)
    y = x.sin()
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.requires_grad) or g * 2)
    (g,) = cygrad.autograd.grad((y * y).sum(), x, create_graph=True)
    assert seen == [True]
    np.testing.assert_allclose(g.detach().numpy(), 2 * 2 * np.sin([0.5, -1.0]) *
                               np.cos([0.5, -1.0]))
    (y * y).sum().backward(create_graph=True)
    assert y.grad.requires_grad


def test_unsupported_op_says_which_when_differentiated_again():
    """As torch: the gradient comes (its first derivative); backward through it raises,
    naming the node, with create_graph or without."""
    x = cygrad.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=cygrad.float64, requires_grad=True)
    (g,) = cygrad.autograd.grad(cygrad.linalg.det(x), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [[5.0, -3.0], [-2.0, 1.0]], atol=1e-12)
    assert g.requires_grad
    with pytest.raises(NotImplementedError, match="DetBackward0"):
        g.sum().backward()
    (g,) = cygrad.autograd.grad(cygrad.linalg.det(x), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="DetBackward0"):
        cygrad.autograd.grad(g.sum(), x, create_graph=True)[0].sum().backward()


@pytest.mark.parametrize("op", ["prod", "cumprod"])
def test_products_with_zeros_differentiate_twice_as_torch(op):
    """prod and cumprod's second derivatives where a row holds one zero or two (their first
    derivatives' formulas divide by x away from zeros; the recorded product tree and scan
    never divide)."""
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, 0.0, 2.0, 3.0, 1.5], [1.0, 2.0, 0.0, -1.0, 0.5],
                  [0.5, -2.0, 1.5, 3.0, 2.0]])

    def f(L, F, t):
        y = t.prod(1) if op == "prod" else L.cumprod(t, 1)
        return (y ** 2).sum() + y.sum() * t[0, 2]

    for a, b in zip(_second(cygrad, F, f, [x]), _second(torch, torch.nn.functional, f, [x]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    fn = (lambda t: t.prod(1)) if op == "prod" else (lambda t: cygrad.cumprod(t, 1))
    assert cygrad.autograd.gradgradcheck(fn, (cygrad.tensor(x, requires_grad=True),))


def test_custom_function_twice_and_once_differentiable():
    class Cube(cygrad.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            out = a * a * a
            ctx.save_for_backward(a, out)
            return out

        @staticmethod
        def backward(ctx, g):
            a, out = ctx.saved_tensors
            return g * 3 * out / a  # uses the saved output: differentiable through it

    class Once(Cube):
        @staticmethod
        @cygrad.autograd.function.once_differentiable
        def backward(ctx, g):
            a, out = ctx.saved_tensors
            return g * 3 * a * a

    x = cygrad.tensor([0.5, 2.0], requires_grad=True)
    assert cygrad.autograd.gradgradcheck(Cube.apply, (x,))
    (g,) = cygrad.autograd.grad(Once.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [0.75, 12.0])
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_compiled_step_with_create_graph_runs_eagerly():
    gc.collect()  # monitors of earlier tests, dropped in reference cycles (compile runs
    #               eagerly, without a word, while a watcher lives)
    w = cygrad.tensor([0.5, -0.25], requires_grad=True)
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)

    def step():
        (g,) = cygrad.autograd.grad((w * x).tanh().sum(), x, create_graph=True)
        (g * g).sum().backward()
        return w.grad

    compiled = cygrad.compile(step)
    with pytest.warns(cygrad.compiler.CompileWarning, match="create_graph"):
        compiled()
    w.grad = None
    got = compiled().numpy().copy()
    w.grad = None
    np.testing.assert_array_equal(got, step().numpy())


def test_zero_dim_gradient_with_three_consumers():
    """A 0-d tensor used three times: every gradient reaches it (numpy's 0-d sum is a scalar,
    which `+=` would rebind instead of adding into)."""
    x = cygrad.tensor(2.0, requires_grad=True)
    s = x.sum()
    (s * 1.0 + s * 2.0 + s * 3.0 + s * 4.0).backward()
    assert x.grad.item() == 10.0
    v = cygrad.tensor([2.0], requires_grad=True)
    t = v.sum()
    (t * 1.0 + t * 2.0 + t * 3.0).backward()
    assert v.grad.tolist() == [6.0]


# ---------------------------------------------------------------------- exactness

@pytest.mark.parametrize("threads", [1, 2])
def test_tied_units_stay_tied_under_a_gradient_penalty(threads):
    """Two hidden units with the same incoming and outgoing weights get bitwise-equal updates
    from a loss with a gradient penalty (second derivatives), at 1 and 2 threads."""
    rng = np.random.default_rng(12)
    w1 = rng.standard_normal((6, 5)) * 0.5
    w1[3] = w1[1]
    w2 = rng.standard_normal((2, 6)) * 0.5
    w2[:, 3] = w2[:, 1]
    previous = cygrad.get_num_threads()
    cygrad.set_num_threads(threads)
    try:
        for dtype in (cygrad.float32, cygrad.float64):
            net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2)).to(dtype)
            with cygrad.no_grad():
                net[0].weight.copy_(cygrad.tensor(w1))
                net[0].bias.fill_(0.1)
                net[2].weight.copy_(cygrad.tensor(w2))
            opt = cygrad.optim.SGD(net.parameters(), lr=0.05)
            for _ in range(4):
                x = cygrad.tensor(rng.standard_normal((33, 5)), dtype=dtype, requires_grad=True)
                out = net(x)
                (g,) = cygrad.autograd.grad(out.sum(), x, create_graph=True)
                loss = out.pow(2).mean() + ((g.norm(2, dim=1) - 1) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            w, v = net[0].weight.detach().numpy(), net[2].weight.detach().numpy()
            assert w[3].tobytes() == w[1].tobytes()
            assert v[:, 3].tobytes() == v[:, 1].tobytes()
            assert not np.array_equal(w[1], w1[1].astype(w.dtype))  # it did train
    finally:
        cygrad.set_num_threads(previous)


@pytest.mark.parametrize("make", ["cnn", "gru", "lstm", "encoder", "hooked"])
def test_layers_differentiate_twice(make):
    """Whole nn layers (convolution, batch norm, pooling, recurrent cells, a transformer
    encoder layer, a module with a full backward hook) against central differences."""
    cygrad.manual_seed(1)
    if make == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 1))
        shape = (2, 1, 4, 4)
    elif make == "gru":
        gru = nn.GRU(2, 3, batch_first=True)
        net = lambda t: gru(t)[0]  # noqa: E731
        shape = (2, 3, 2)
    elif make == "lstm":
        lstm = nn.LSTM(2, 3, batch_first=True)
        net = lambda t: lstm(t)[0]  # noqa: E731
        shape = (2, 3, 2)
    elif make == "encoder":
        net = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
        shape = (2, 3, 4)
    else:
        net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        seen = []
        net[0].register_full_backward_hook(lambda m, gi, go: seen.append(len(gi)))
        shape = (3, 3)
    if isinstance(net, nn.Module):
        net = net.double()
    else:
        for m in (locals().get("gru"), locals().get("lstm")):
            if m is not None:
                m.double()
    x = cygrad.tensor(np.random.default_rng(2).standard_normal(shape), requires_grad=True)
    assert cygrad.autograd.gradgradcheck(net, (x,), atol=1e-4)
    if make == "hooked":
        assert seen  # the hook ran in the backward passes


@pytest.mark.parametrize("create_graph", [False, True])
def test_autograd_grad_runs_only_the_paths_to_its_inputs(create_graph):
    """As torch: a hook on a tensor that only leads to other leaves does not run, and the
    gradients are those of a full backward."""
    x = cygrad.tensor([1.0, 2.0], requires_grad=True)
    w = cygrad.tensor([0.5, 0.1], requires_grad=True)
    e = w.exp()
    seen = []
    e.register_hook(lambda g: seen.append(1))
    (g,) = cygrad.autograd.grad((e * x).sum(), x, create_graph=create_graph)
    assert seen == []
    np.testing.assert_array_equal(g.detach().numpy(), np.exp([0.5, 0.1]).astype(np.float32))
    (e * x).sum().backward()
    assert seen == [1]


def test_backward_passes_again_through_nodes_that_save_nothing():
    """As torch: a node that saved no tensor (add, a dtype cast, a view, a sum) is not freed by
    backward, so a later backward through it works without retain_graph; one that saved
    something still raises."""
    w = cygrad.tensor([1.0, 2.0], requires_grad=True)
    x = (w + 1).double().reshape(2, 1).sum(1)
    for k in (1, 2):
        (x * 3).sum().backward()
        assert w.grad.tolist() == [3.0 * k, 3.0 * k]
    y = w.exp()
    (y * 3).sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (y * 3).sum().backward()
