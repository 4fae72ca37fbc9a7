"""Every entry of the elementwise op table (cygrad/ops/elementwise.py), walked automatically: an
op added to the table is tested here without a line of its own.

For each op: forward and backward against PyTorch (float64 and float32, where torch is
installed), gradcheck by central differences, bitwise exactness (tied columns stay tied, a row
computed alone equals the same row inside a batch, one thread equals two), torch's dtype for
integer input, the in-place form, the nn module's repr.
"""

import numpy as np
import pytest

import cygrad
from cygrad.nn import functional as F
from cygrad.ops import registry
from cygrad.ops.elementwise import Binary, Unary

UNARY = sorted(n for n, e in registry.ENTRIES.items() if isinstance(e, Unary))
BINARY = sorted(n for n, e in registry.ENTRIES.items() if isinstance(e, Binary))
DIFFERENTIABLE_BINARY = [n for n in BINARY if registry.ENTRIES[n].result in ("promote", "float")
                         and registry.ENTRIES[n].grad_a is not None and n != "floor_divide"]
STEP = {"sign", "sgn", "floor", "ceil", "trunc", "round"}  # zero gradient everywhere


def entry(name):
    return registry.ENTRIES[name]


def sample(e, shape, dtype, seed=0):
    lo, hi = e.domain
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


def torch_fn(torch, e):
    if e.exposed == "functional":
        return getattr(torch.nn.functional, e.name)
    if e.leading:  # torch.polygamma(n, input): the entry's defaults first
        defaults = dict(e.params)
        return lambda x: getattr(torch, e.name)(*[defaults[p] for p in e.leading], x)
    return getattr(torch, e.name)


# ---------------------------------------------------------------------- against torch

@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary_matches_torch(name, dtype):
    torch = pytest.importorskip("torch")
    e = entry(name)
    x = sample(e, (7, 5), dtype)
    g = np.random.default_rng(1).standard_normal((7, 5)).astype(dtype)
    cx = cygrad.tensor(x, requires_grad=True)
    y = e.function(cx)
    y.backward(cygrad.tensor(g))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_fn(torch, e)(tx)
    ty.backward(torch.tensor(g))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-6)
    assert y.dtype == cygrad.dtypes.as_dtype(str(ty.dtype).removeprefix("torch."))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(),
                               **FORWARD_TOL.get((name, dtype), tol))
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(force=True),
                               **GRAD_TOL.get((name, dtype), tol))


# torch's trigamma (digamma's gradient, polygamma(1, x): the table tests polygamma at its
# default n = 1) is 1e-10 to 5e-10 off in float64 (measured against mpmath at 0.5-10:
# cygrad's within 6e-16); test_polygamma_identities checks cygrad's exactly
GRAD_TOL = {("digamma", np.float64): dict(rtol=1e-9, atol=1e-12)}
FORWARD_TOL = {("polygamma", np.float64): dict(rtol=1e-9, atol=1e-12)}


def test_polygamma_identities():
    """Known values: digamma(1) = -gamma, digamma(1/2) = -gamma - 2 ln 2, trigamma(1) =
    pi^2 / 6, trigamma(1/2) = pi^2 / 2; recurrences psi(x + 1) = psi(x) + 1/x and
    psi1(x + 1) = psi1(x) - 1/x^2; lgamma(n) = log((n - 1)!)."""
    import math

    euler = 0.57721566490153286
    x = cygrad.tensor([1.0, 0.5, 3.3, 0.02, -1.4], dtype=cygrad.float64, requires_grad=True)
    psi = cygrad.digamma(x)
    psi.sum().backward()
    psi1 = x.grad.numpy()
    np.testing.assert_allclose(psi.numpy()[:2], [-euler, -euler - 2 * math.log(2)], rtol=1e-15)
    np.testing.assert_allclose(psi1[:2], [math.pi ** 2 / 6, math.pi ** 2 / 2], rtol=1e-15)
    xs = np.array([0.37, 2.5, 8.9, 11.2, -0.6])
    a, b = cygrad.digamma(cygrad.tensor(xs)).numpy(), cygrad.digamma(cygrad.tensor(xs + 1))
    np.testing.assert_allclose(b.numpy(), a + 1 / xs, rtol=2e-15, atol=1e-15)
    y = cygrad.tensor(xs, requires_grad=True)
    z = cygrad.tensor(xs + 1, requires_grad=True)
    cygrad.digamma(y).sum().backward()
    cygrad.digamma(z).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), y.grad.numpy() - 1 / xs ** 2, rtol=1e-14)
    n = np.arange(1.0, 20.0)
    np.testing.assert_allclose(cygrad.lgamma(cygrad.tensor(n)).numpy(),
                               [math.log(math.factorial(int(k) - 1)) for k in n], atol=1e-13)


POLYGAMMA_X = [0.3, 0.5, 1.0, 2.7, 9.5, 15.0, 33.3, 100.0, -0.5, -1.7, -3.25, 1e-3]


@pytest.mark.parametrize("n", range(7))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_polygamma_orders_match_torch(n, dtype):
    """torch.polygamma(n, x) and its gradient polygamma(n + 1, x) for n = 0..6, negative
    non-integers included; torch's poles (non-positive integers) give its infinities. Away from
    n = 1 torch's float64 values are within 1e-15 (its trigamma, n = 1, within 5e-10)."""
    torch = pytest.importorskip("torch")
    x = np.array(POLYGAMMA_X + [0.0, -2.0], dtype)
    cx = cygrad.tensor(x, requires_grad=True)
    y = cygrad.polygamma(n, cx)
    y.backward(cygrad.ones_like(y))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.polygamma(n, tx)
    ty.backward(torch.ones_like(ty))
    finite = slice(0, len(POLYGAMMA_X))
    rtol = 2e-6 if dtype == np.float32 else (1e-9 if n == 1 else 2e-14)
    np.testing.assert_allclose(y.numpy()[finite], ty.detach().numpy()[finite], rtol=rtol)
    grad_rtol = 2e-6 if dtype == np.float32 else (1e-9 if n == 0 else 2e-14)
    np.testing.assert_allclose(cx.grad.numpy()[finite], tx.grad.numpy()[finite],
                               rtol=grad_rtol)
    if n != 1:  # at the poles (torch's trigamma at -2: 1.6e32, not inf)
        np.testing.assert_array_equal(y.numpy()[-2:], ty.detach().numpy()[-2:])


def test_polygamma_values_and_recurrence():
    """polygamma(2, 1) = -2 zeta(3), polygamma(3, 1) = pi^4 / 15, polygamma(4, 1/2) =
    -24 * 31 zeta(5); the recurrence psi_n(x + 1) = psi_n(x) + (-1)^n n! / x^(n+1)."""
    import math

    zeta3, zeta5 = 1.2020569031595942, 1.0369277551433699
    one = cygrad.tensor([1.0], dtype=cygrad.float64)
    np.testing.assert_allclose(cygrad.polygamma(2, one).numpy(), [-2 * zeta3], rtol=1e-15)
    np.testing.assert_allclose(cygrad.polygamma(3, one).numpy(), [math.pi ** 4 / 15],
                               rtol=1e-15)
    np.testing.assert_allclose(cygrad.polygamma(4, one / 2).numpy(), [-24 * 31 * zeta5],
                               rtol=1e-15)
    x = np.array([0.37, 2.5, 8.9, 11.2, -0.6, 40.0])
    for n in range(2, 9):
        here = cygrad.polygamma(n, cygrad.tensor(x)).numpy()
        after = cygrad.polygamma(n, cygrad.tensor(x + 1)).numpy()
        step = (-1) ** n * math.factorial(n) / x ** (n + 1)
        # each side within an ulp or two of its magnitude: the sum cancels at small x
        bound = 1e-14 * (np.abs(here) + np.abs(step))
        assert np.all(np.abs(after - (here + step)) <= bound), (n, after - (here + step))


def test_polygamma_forms_and_errors_as_torch():
    """torch.polygamma(n, input), input.polygamma(n), input.polygamma_(n),
    torch.special.polygamma; n must be a non-negative int."""
    x = cygrad.tensor([0.5, 1.5, 3.0], dtype=cygrad.float64)
    want = cygrad.polygamma(2, x).numpy()
    assert np.array_equal(x.polygamma(2).numpy(), want)
    assert np.array_equal(cygrad.polygamma(n=2, input=x).numpy(), want)
    assert np.array_equal(cygrad.special.polygamma(2, x).numpy(), want)
    assert np.array_equal(cygrad.polygamma(0, x).numpy(), cygrad.digamma(x).numpy())
    ints = cygrad.polygamma(3, cygrad.tensor([1, 2, 3]))
    assert ints.dtype == cygrad.float32
    y = x.clone()
    assert y.polygamma_(2) is y and np.array_equal(y.numpy(), want)
    with pytest.raises(RuntimeError, match="does not support negative n"):
        cygrad.polygamma(-1, x)
    with pytest.raises(TypeError, match="must be int"):
        cygrad.polygamma(2.0, x)
    with pytest.raises(TypeError, match="must be Tensor"):
        cygrad.polygamma(2, 0.5)


@pytest.mark.parametrize("n", [0, 2, 3])
def test_polygamma_gradcheck_and_gradgradcheck(n):
    x = cygrad.tensor(np.array([0.4, 1.3, 2.2, 5.7, -0.3]), requires_grad=True)
    assert cygrad.gradcheck(lambda t: cygrad.polygamma(n, t), x)
    assert cygrad.autograd.gradgradcheck(lambda t: cygrad.polygamma(n, t), (x,), atol=1e-4)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("int_dtype", ["int64", "int32", "bool"])
def test_unary_integer_input_as_torch(name, int_dtype):
    torch = pytest.importorskip("torch")
    e = entry(name)
    values = np.array([[0, 1, 2], [3, 1, 0]]) if int_dtype != "bool" else \
        np.array([[True, False, True]])
    fn = torch_fn(torch, e)
    try:
        expected = fn(torch.tensor(values, dtype=getattr(torch, int_dtype)))
    except (RuntimeError, TypeError, NotImplementedError):
        with pytest.raises((RuntimeError, TypeError)):
            e.function(cygrad.tensor(values, dtype=int_dtype))
        return
    got = e.function(cygrad.tensor(values, dtype=int_dtype))
    assert got.dtype.name == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_allclose(got.numpy().astype(float), expected.numpy().astype(float),
                               rtol=1e-6)


@pytest.mark.parametrize("name", DIFFERENTIABLE_BINARY)
@pytest.mark.parametrize("shapes", [((4, 3), (4, 3)), ((4, 3), (3,)), ((4, 1), (1, 3)),
                                    ((2, 4, 3), ()), ((), (4, 3))])
def test_binary_matches_torch(name, shapes):
    torch = pytest.importorskip("torch")
    e = entry(name)
    a = sample(e, shapes[0], np.float64, 2)
    b = sample(e, shapes[1], np.float64, 3)
    ca, cb = cygrad.tensor(a, requires_grad=True), cygrad.tensor(b, requires_grad=True)
    y = e.function(ca, cb)
    g = np.random.default_rng(4).standard_normal(y.shape)
    y.backward(cygrad.tensor(g))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ty = getattr(torch, name)(ta, tb)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ca.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cb.grad.numpy(), tb.grad.numpy(), rtol=1e-12, atol=1e-12)


OPERANDS = [
    ("f32", lambda m: m.tensor([1.5, -2.0], dtype=m.float32)),
    ("f64", lambda m: m.tensor([0.5, 3.0], dtype=m.float64)),
    ("i64", lambda m: m.tensor([3, -2])),
    ("i32", lambda m: m.tensor([4, 5], dtype=m.int32)),
    ("u8", lambda m: m.tensor([4, 5], dtype=m.uint8)),
    ("bool", lambda m: m.tensor([True, False])),
    ("0d-f64", lambda m: m.tensor(2.5, dtype=m.float64)),
    ("0d-i64", lambda m: m.tensor(3)),
    ("int", lambda m: 3),
    ("float", lambda m: 1.5),
    ("True", lambda m: True),
]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("left", OPERANDS, ids=[o[0] for o in OPERANDS])
@pytest.mark.parametrize("right", OPERANDS[:6], ids=[o[0] for o in OPERANDS[:6]])
def test_binary_promotion_as_torch(name, left, right):
    """Every operand kind against every tensor kind: the result dtype (or the refusal) and the
    values are torch's."""
    torch = pytest.importorskip("torch")
    tl, tr = left[1](torch), right[1](torch)
    fn = getattr(torch, name)
    try:
        expected = fn(tl, tr) if isinstance(tl, torch.Tensor) else fn(tr, tl)
    except (RuntimeError, TypeError):
        expected = None
    cl, cr = left[1](cygrad), right[1](cygrad)
    f = entry(name).function
    if expected is None:
        with pytest.raises((RuntimeError, TypeError)):
            f(cl, cr) if isinstance(cl, cygrad.Tensor) else f(cr, cl)
        return
    got = f(cl, cr) if isinstance(cl, cygrad.Tensor) else f(cr, cl)
    assert got.dtype.name == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_allclose(got.numpy().astype(float), expected.numpy().astype(float),
                               rtol=1e-6, equal_nan=True)


# ---------------------------------------------------------------------- without torch

@pytest.mark.parametrize("name", [n for n in BINARY if entry(n).scalars])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("number", [2, -3, 0.5, 1e-3], ids=["2", "-3", "0.5", "1e-3"])
def test_binary_fast_paths_equal_the_general_path(name, dtype, number):
    """The operators' fast paths (a float tensor with a Python int or float, either side; two
    float tensors of one dtype) give what the general promotion path gives: dtype, value bits
    and gradient bits."""
    from cygrad.ops.elementwise import _binary, _binary_general

    e = entry(name)
    data = sample(e, (3, 4), dtype) + (1.5 if name in ("pow", "float_power") else 0)
    grad = name in DIFFERENTIABLE_BINARY
    for swap in (False, True):
        results = []
        for path in (_binary, _binary_general):
            x = cygrad.tensor(np.abs(data) if name in ("pow", "float_power") else data,
                              requires_grad=grad)
            if e.result == "integral":  # bitwise ops refuse floats: the same error both ways
                with pytest.raises(RuntimeError, match="not implemented for"):
                    path(e, number, x) if swap else path(e, x, number)
                continue
            out = path(e, number, x) if swap else path(e, x, number)
            if out.requires_grad:
                out.sum().backward()
            results.append((out.dtype, out.detach().numpy(),
                            None if x.grad is None else x.grad.numpy()))
        if not results:
            continue
        (d1, v1, g1), (d2, v2, g2) = results
        assert d1 == d2
        assert v1.tobytes() == v2.tobytes()
        assert (g1 is None) == (g2 is None)
        if g1 is not None:
            assert g1.tobytes() == g2.tobytes()


@pytest.mark.parametrize("name", sorted(set(UNARY) - STEP))
def test_unary_gradcheck(name):
    e = entry(name)
    x = cygrad.tensor(sample(e, (3, 4), np.float64, 5), requires_grad=True)
    assert cygrad.gradcheck(e.function, x)


@pytest.mark.parametrize("name", sorted(STEP))
def test_step_functions_pass_zero_gradients(name):
    x = cygrad.tensor(sample(entry(name), (3, 4), np.float64), requires_grad=True)
    entry(name).function(x).sum().backward()
    assert x.grad is not None and not x.grad.numpy().any()


@pytest.mark.parametrize("name", DIFFERENTIABLE_BINARY)
def test_binary_gradcheck(name):
    e = entry(name)
    a = cygrad.tensor(sample(e, (3, 4), np.float64, 6), requires_grad=True)
    b = cygrad.tensor(sample(e, (4,), np.float64, 7), requires_grad=True)
    assert cygrad.gradcheck(e.function, a, b)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_unary_exactness(name, dtype, backend):
    """Tied columns stay tied bitwise, forward and backward; a row alone gives the bits it has
    inside the batch; two threads give the bits of one. 70,000 elements: above every kernel's
    threshold for running in parallel."""
    if backend not in cygrad.backend.available():
        pytest.skip("the cython backend is not built")
    e = entry(name)
    base = sample(e, (3500, 10), dtype, 8)
    base[:, 7] = base[:, 2]  # a tied pair of columns
    g = np.random.default_rng(9).standard_normal(base.shape).astype(dtype)
    g[:, 7] = g[:, 2]

    def run(x_array, g_array):
        x = cygrad.tensor(x_array, requires_grad=True)
        y = e.function(x)
        y.backward(cygrad.tensor(g_array))
        return y.numpy(), x.grad.numpy()

    with cygrad.backend.using(backend):
        cygrad.set_num_threads(1)
        y1, d1 = run(base, g)
        cygrad.set_num_threads(2)
        y2, d2 = run(base, g)
        row_y, row_d = run(base[1234:1235].copy(), g[1234:1235].copy())
    assert np.array_equal(y1, y2, equal_nan=True) and np.array_equal(d1, d2, equal_nan=True)
    assert np.array_equal(y1[:, 7], y1[:, 2]) and np.array_equal(d1[:, 7], d1[:, 2])
    assert np.array_equal(row_y, y1[1234:1235]) and np.array_equal(row_d, d1[1234:1235])


@pytest.mark.parametrize("name", UNARY)
def test_inplace_form_matches(name):
    e = entry(name)
    x = cygrad.tensor(sample(e, (4, 3), np.float64, 10))
    expected = e.function(x)
    assert e.inplace(x) is x
    assert np.array_equal(x.numpy(), expected.numpy())


@pytest.mark.parametrize("name", [n for n in UNARY if entry(n).module])
def test_module_repr_as_torch(name):
    torch = pytest.importorskip("torch")
    e = entry(name)
    assert repr(getattr(cygrad.nn, e.module)()) == repr(getattr(torch.nn, e.module)())


@pytest.mark.parametrize("name", UNARY)
def test_exposed_where_torch_has_it(name):
    """torch.f, Tensor.f and F.f exist here exactly where the entry says torch has them."""
    torch = pytest.importorskip("torch")
    for module, ours in ((torch, cygrad), (torch.Tensor, cygrad.Tensor), (torch.nn.functional, F)):
        if hasattr(module, name) != hasattr(ours, name):
            pytest.fail(f"{name}: torch {'has' if hasattr(module, name) else 'lacks'} "
                        f"{module.__name__}.{name}, cygrad differs")
