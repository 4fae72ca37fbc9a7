"""cygrad.func.functional_call (and nn.utils.stateless.functional_call): outputs and gradients
against torch (skipped without it), the module's own tensors untouched and put back, tied
weights, buffers, strict mode's errors, and the transforms cygrad lacks raising."""

import numpy as np
import pytest

import cygrad
from cygrad import nn
from cygrad.func import functional_call


def _mlp(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2)).double()


def test_matches_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    m, tm = _mlp(cygrad), _mlp(torch)
    rng = np.random.default_rng(0)
    new = {k: rng.standard_normal(tuple(v.shape)) for k, v in tm.named_parameters()}
    x = rng.standard_normal((5, 3))
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in new.items()}
    cp = {k: cygrad.tensor(v, requires_grad=True) for k, v in new.items()}
    ty = torch.func.functional_call(tm, tp, (torch.tensor(x),))
    cy = functional_call(m, cp, cygrad.tensor(x))
    np.testing.assert_allclose(cy.numpy(), ty.detach().numpy(), rtol=1e-13)
    (ty ** 2).sum().backward()
    (cy ** 2).sum().backward()
    for k in new:
        np.testing.assert_allclose(cp[k].grad.numpy(), tp[k].grad.numpy(), rtol=1e-12,
                                   err_msg=k)
    assert all(p.grad is None for p in m.parameters())  # the module's own: untouched
    own = dict(m.named_parameters())
    assert all(isinstance(p, nn.Parameter) for p in own.values())
    np.testing.assert_allclose(m(cygrad.tensor(x)).numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-13)


def test_partial_dicts_kwargs_and_buffers():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).double()
    w = cygrad.zeros(2, 2, dtype=cygrad.float64)
    x = cygrad.tensor(np.arange(8.0).reshape(4, 2))
    out = functional_call(m, ({"0.weight": w}, {"1.running_mean": cygrad.ones(2).double()}),
                          args=x)
    np.testing.assert_allclose(out.numpy(), 0.0, atol=1e-6)  # every row the bias alone
    mean = cygrad.zeros(2).double()
    m.eval()
    out = functional_call(m, {"1.running_mean": mean}, x)
    np.testing.assert_allclose(out.numpy(), m(x).numpy())
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        functional_call(m, ({"0.bias": w[0]}, {"0.bias": w[1]}), x)


def test_tied_weights_and_strict():
    torch = pytest.importorskip("torch")
    for lib in (cygrad, torch):
        emb, out = lib.nn.Embedding(5, 3), lib.nn.Linear(3, 5, bias=False)
        out.weight = emb.weight
        model = lib.nn.Sequential(emb, out)
        w = lib.zeros(5, 3)
        y = lib.func.functional_call(model, {"0.weight": w}, (lib.tensor([1, 2]),))
        assert float(y.detach().abs().sum()) == 0.0  # the tied copy replaced too
        y = lib.func.functional_call(model, {"0.weight": w}, (lib.tensor([1, 2]),),
                                     tie_weights=False)
        assert float(y.detach().abs().sum()) == 0.0  # zero embeddings through the old output layer
        with pytest.raises(ValueError, match="which are tied"):
            lib.func.functional_call(model, {"0.weight": w, "1.weight": lib.ones(5, 3)},
                                     (lib.tensor([1]),))
        with pytest.raises(RuntimeError, match=r"Unexpected key\(s\): 'nope'.*\n.*Missing"):
            lib.func.functional_call(lib.nn.Linear(2, 2), {"nope": w, "weight": w},
                                     (lib.zeros(1, 2),), strict=True)


def test_put_back_after_an_error_and_older_name():
    m = nn.Linear(2, 2)
    own = m.weight

    def fail(module, inputs):
        raise ValueError("boom")

    handle = m.register_forward_pre_hook(fail)
    with pytest.raises(ValueError, match="boom"):
        functional_call(m, {"weight": cygrad.zeros(2, 2)}, cygrad.zeros(1, 2))
    handle.remove()
    assert m.weight is own and isinstance(m._parameters["weight"], nn.Parameter)
    with pytest.warns(FutureWarning, match="torch.func.functional_call"):
        y = nn.utils.stateless.functional_call(m, {"bias": cygrad.ones(2)}, cygrad.zeros(1, 2))
    np.testing.assert_array_equal(y.numpy(), [[1.0, 1.0]])


def test_other_func_names_raise():
    with pytest.raises(AttributeError, match="does not implement torch.func.linearize"):
        _ = cygrad.func.linearize


# ---------------------------------------------------------------------- the transforms

def _transforms(lib, X, W, V, U):
    """Every transform's results on one problem (nested ones included)."""
    fn, T = lib.func, lib.tensor

    def f(x):
        return (x.sin() * x.exp()).sum()

    def g(w, x):
        return (w @ x).tanh()

    out = [fn.grad(f)(T(X)), fn.grad(lambda x: fn.grad(f)(x).sum())(T(X))]
    out += list(fn.grad(lambda w, x: g(w, x).sum(), argnums=(0, 1))(T(W), T(X)))
    out.append(fn.grad(lambda p, x: (p["w"] @ x).sum() ** 2)({"w": T(W)}, T(X))["w"])
    out += list(fn.grad(lambda x: (f(x), x * 2), has_aux=True)(T(X)))
    out += list(fn.grad_and_value(f)(T(X)))
    value, vjp_fn = fn.vjp(g, T(W), T(X))
    out += [value, *vjp_fn(T(U))]
    out += [fn.jacrev(g)(T(W), T(X)), fn.jacrev(g, argnums=1)(T(W), T(X)),
            fn.jacfwd(g, argnums=1)(T(W), T(X)), fn.hessian(f)(T(X))]
    out += list(fn.jvp(lambda x: g(T(W), x), (T(X),), (T(V),)))
    return out


def test_function_transforms_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    args = (rng.standard_normal(3), rng.standard_normal((2, 3)), rng.standard_normal(3),
            rng.standard_normal(2))
    ours, theirs = _transforms(cygrad, *args), _transforms(torch, *args)
    for a, b in zip(ours, theirs, strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        assert a.requires_grad == b.requires_grad
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_function_transforms_against_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(4)

    def f(t):
        return (t.tanh() ** 3).sum() * t[0]

    def numeric_grad(fun, a, eps=1e-6):
        return np.array([(fun(a + eps * e) - fun(a - eps * e)) / (2 * eps) for e in np.eye(a.size)])

    value = lambda a: f(cygrad.tensor(a)).item()  # noqa: E731
    np.testing.assert_allclose(cygrad.func.grad(f)(cygrad.tensor(x)).numpy(),
                               numeric_grad(value, x), rtol=1e-7, atol=1e-9)
    first = lambda a: cygrad.func.grad(f)(cygrad.tensor(a)).numpy()  # noqa: E731
    hess = np.stack([(first(x + 1e-6 * e) - first(x - 1e-6 * e)) / 2e-6 for e in np.eye(4)])
    np.testing.assert_allclose(cygrad.func.hessian(f)(cygrad.tensor(x)).numpy(), hess,
                               rtol=1e-6, atol=1e-8)
    with pytest.raises(RuntimeError, match="scalar Tensor"):
        cygrad.func.grad(lambda t: t * 2)(cygrad.tensor(x))
    with pytest.raises(RuntimeError, match="argnums"):
        cygrad.func.grad(f, argnums=3)(cygrad.tensor(x))


def test_grad_of_functional_call_matches_autograd():
    """The torch.func idiom: grad of a loss over a dict of parameters (functional_call)."""
    cygrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = cygrad.randn(5, 3), cygrad.randn(5, 1)

    def loss(p):
        return ((functional_call(model, p, (x,)) - y) ** 2).mean()

    grads = cygrad.func.grad(loss)(params)
    ((model(x) - y) ** 2).mean().backward()
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(grads[name].numpy(), p.grad.numpy())
        assert not grads[name].requires_grad


def _vmapped(lib, X, W, Y):
    fn, T = lib.func, lib.tensor

    def loss(w, x, y):
        return ((w @ x).tanh().sum() - y) ** 2

    out = [fn.vmap(lambda x: x.sin().sum())(T(X)),
           fn.vmap(lambda x, w: w @ x, in_dims=(0, None))(T(X), T(W)),
           fn.vmap(lambda x: x * 2, in_dims=1, out_dims=1)(T(X)),
           *fn.vmap(lambda x: (x.exp(), x.sum()))(T(X)),
           fn.vmap(fn.vmap(lambda a: a * a))(T(X)),
           fn.vmap(fn.grad(loss), in_dims=(None, 0, 0))(T(W), T(X), T(Y)),  # per-sample grads
           fn.vmap(lambda d: d["a"] + d["b"], in_dims=({"a": 0, "b": None},))(
               {"a": T(X), "b": T(X[0])})]
    _, vjp_fn = fn.vjp(lambda x: x.sin() * x.sum(), T(X[0]))
    out.append(fn.vmap(vjp_fn)(lib.eye(3, dtype=lib.float64))[0])  # a Jacobian's rows
    return out


def test_vmap_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    args = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(5)
    for a, b in zip(_vmapped(cygrad, *args), _vmapped(torch, *args), strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-13, atol=1e-15)
    for lib in (cygrad, torch):
        lib.manual_seed(0)
        def noisy(x, lib=lib):
            return x + lib.rand(3)

        same = lib.func.vmap(noisy, randomness="same")(lib.tensor(args[0]))
        np.testing.assert_allclose((same[0] - same[1]).numpy(), args[0][0] - args[0][1])


def test_vmap_is_the_batch_bit_for_bit_and_checks_its_arguments():
    """Each sample's bits are those of the model on it alone, and (cygrad's exact kernels)
    those of the batched call."""
    cygrad.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 3))
    x = cygrad.randn(9, 6)
    mapped = cygrad.func.vmap(net)(x)
    assert mapped.numpy().tobytes() == net(x).numpy().tobytes()
    for i in range(9):
        assert mapped[i].numpy().tobytes() == net(x[i]).numpy().tobytes()
    with pytest.raises(RuntimeError, match="randomness error mode"):
        cygrad.func.vmap(lambda t: t + cygrad.rand(6))(x)
    with pytest.raises(ValueError, match=r"same size in the mapped dimension, got sizes \[9, 4\]"):
        cygrad.func.vmap(lambda a, b: a.sum() + b.sum())(x, cygrad.ones(4))
    with pytest.raises(ValueError, match="at least one input"):
        cygrad.func.vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="must only return Tensors"):
        cygrad.func.vmap(lambda a: 1.0)(x)
