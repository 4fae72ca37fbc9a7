"""Fuzzing every kernel through the public API: the cython backend against its numpy twin.

Hypothesis draws shapes, geometry, layouts (C, Fortran, strided views, transposes inside the
graph) and a seed for the values; each example runs forward and backward (with a random output
gradient) on both backends and asserts equal outputs and gradients within the dtype's tolerance,
in the input's dtype. An example slower than 10 s (the deadline) fails. Empty
batches (N = 0) are checked separately: every op below works with shape-correct outputs and
gradients, except a max over the empty axis itself, which is a ValueError.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cygrad
from cygrad.nn import functional as F

pytestmark = pytest.mark.skipif("cython" not in cygrad.backend.available(),
                                reason="the cython backend is not built")

FUZZ = settings(max_examples=60, deadline=10_000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}
seeds = st.integers(0, 2**32 - 1)


def run(backend, fn, arrays, dtype, grad_seed):
    """Forward and backward of fn on one backend: (output, [gradient of each input])."""
    with cygrad.backend.using(backend):
        xs = [cygrad.from_numpy(np.asarray(a)).requires_grad_() for a in arrays]  # views stay
        out = fn(*xs)
        assert out.dtype == dtype, f"{backend}: {dtype} in, {out.dtype} out"
        g = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(dtype)
        out.backward(g)
        grads = [x.grad for x in xs]
        for x, grad in zip(xs, grads):
            assert grad is not None and grad.shape == x.shape and grad.dtype == dtype
        return out.numpy(), grads


def assert_backends_agree(fn, arrays, dtype, grad_seed=0, scale=1.0):
    """scale: how large the terms summed into one output may be (tolerance grows with it)."""
    dtype = np.dtype(dtype)
    arrays = [a.astype(dtype, copy=False) for a in arrays]  # keeps views and layouts
    out_c, grads_c = run("cython", fn, arrays, dtype, grad_seed)
    out_n, grads_n = run("numpy", fn, arrays, dtype, grad_seed)
    assert out_c.shape == out_n.shape
    for what, c, n in [("output", out_c, out_n)] + [
            (f"gradient {i}", gc, gn) for i, (gc, gn) in enumerate(zip(grads_c, grads_n))]:
        tol = TOL[dtype] * max(1.0, scale, float(np.abs(n).max(initial=0)))
        np.testing.assert_allclose(c, n, rtol=tol, atol=tol, err_msg=f"{what}, {dtype}")


def arrange(array, layout):
    """The same values in another memory layout: C order, Fortran order, or a strided view."""
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1] + 1,), array.dtype)
        wide[..., 1::2] = array
        return wide[..., 1::2]
    return np.ascontiguousarray(array)


def operand(rng, shape, dtype, layout):
    """(array, transform): an array in the given layout and the op that turns it into a tensor
    of `shape` inside the graph (a transpose for layout "T", else nothing)."""
    if layout == "T":
        return rng.standard_normal(shape[::-1]).astype(dtype), lambda t: t.T
    return arrange(rng.standard_normal(shape).astype(dtype), layout), lambda t: t


layouts = st.sampled_from(["C", "F", "strided", "T"])


# ---------------------------------------------------------------------- matmul and linear

@DTYPES
@FUZZ
@given(m=st.integers(0, 70), k=st.integers(0, 70), n=st.integers(0, 70), la=layouts,
       lb=layouts, seed=seeds)
def test_matmul(dtype, m, k, n, la, lb, seed):
    rng = np.random.default_rng(seed)
    a, fa = operand(rng, (m, k), dtype, la)
    b, fb = operand(rng, (k, n), dtype, lb)
    assert_backends_agree(lambda x, y: fa(x) @ fb(y), [a, b], dtype, seed, scale=k)


@DTYPES
@FUZZ
@given(batch=st.integers(1, 4), m=st.integers(1, 12), k=st.integers(1, 12),
       n=st.integers(1, 12), kind=st.sampled_from(["3x2", "3x3", "2x3"]), seed=seeds)
def test_batched_matmul(dtype, batch, m, k, n, kind, seed):
    rng = np.random.default_rng(seed)
    a_shape = (batch, m, k) if kind[0] == "3" else (m, k)
    b_shape = (batch, k, n) if kind[2] == "3" else (k, n)
    arrays = [rng.standard_normal(a_shape), rng.standard_normal(b_shape)]
    assert_backends_agree(lambda x, y: x @ y, arrays, dtype, seed, scale=k)


@DTYPES
@FUZZ
@given(lead=st.lists(st.integers(0, 5), min_size=1, max_size=2), fan_in=st.integers(1, 40),
       fan_out=st.integers(1, 40), bias=st.booleans(), layout=layouts, seed=seeds)
def test_linear(dtype, lead, fan_in, fan_out, bias, layout, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(lead) + (fan_in,)).astype(dtype)
    w, fw = operand(rng, (fan_out, fan_in), dtype, layout)
    arrays = [x, w] + ([rng.standard_normal(fan_out)] if bias else [])
    assert_backends_agree(lambda x, w, *b: F.linear(x, fw(w), *b), arrays, dtype, seed,
                          scale=fan_in)


# ---------------------------------------------------------------------- elementwise

@DTYPES
@FUZZ
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                min_side=0, max_side=4),
       op=st.sampled_from(["+", "-", "*", "/"]), seed=seeds)
def test_broadcasting_binary(dtype, shapes, op, seed):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes.input_shapes
    a = rng.standard_normal(a_shape)
    b = rng.choice([-1.0, 1.0], b_shape) * rng.uniform(0.5, 2.0, b_shape)  # no division by ~0
    fn = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
          "/": lambda x, y: x / y}[op]
    size = np.prod(shapes.result_shape, dtype=int)
    assert_backends_agree(fn, [a, b], dtype, seed, scale=size)  # gradients are summed


ACTIVATIONS = {
    "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "relu": lambda x: x.relu(),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.07), "exp": lambda x: x.exp(),
    "log": lambda x: (x * x + 0.5).log(), "pow3": lambda x: x ** 3, "neg": lambda x: -x,
    "F.relu": F.relu, "F.tanh": F.tanh, "F.sigmoid": F.sigmoid,
    "F.leaky_relu": lambda x: F.leaky_relu(x, 0.2),
}


@DTYPES
@FUZZ
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
       name=st.sampled_from(sorted(ACTIVATIONS)), layout=st.sampled_from(["C", "F", "strided"]),
       seed=seeds)
def test_activations(dtype, shape, name, layout, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * (rng.random(shape) < 0.8)  # zeros: the kink of relu
    x = arrange(x.astype(dtype), layout)
    assert_backends_agree(ACTIVATIONS[name], [x], dtype, seed, scale=10)


# ---------------------------------------------------------------------- reductions

@st.composite
def reduction_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-len(shape), len(shape) - 1))
    else:
        axis = tuple(draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)))
    return shape, axis, draw(st.booleans())


@DTYPES
@FUZZ
@given(args=reduction_args(), name=st.sampled_from(["sum", "mean", "amax"]),
       ties=st.booleans(), seed=seeds)
def test_reductions(dtype, args, name, ties, seed):
    shape, axis, keepdims = args
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)  # ties for max
    fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    assert_backends_agree(fn, [x], dtype, seed, scale=np.prod(shape))


@DTYPES
@FUZZ
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
       log=st.booleans(), data=st.data(), big=st.booleans(), seed=seeds)
def test_softmax(dtype, shape, log, data, big, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * (30 if big else 1)
    fn = (lambda t: F.log_softmax(t, axis)) if log else (lambda t: F.softmax(t, axis))
    assert_backends_agree(fn, [x], dtype, seed, scale=30 if big else 1)


# ---------------------------------------------------------------------- convolution, pooling

@st.composite
def conv_geometry(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), kh + 7))
    w = draw(st.integers(max(1, kw - 2 * padding), kw + 7))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    return (n, c, h, w), (o, c, kh, kw), stride, padding, draw(st.booleans())


@DTYPES
@FUZZ
@given(geometry=conv_geometry(), layout=st.sampled_from(["C", "F", "strided"]), seed=seeds)
def test_conv2d(dtype, geometry, layout, seed):
    x_shape, w_shape, stride, padding, bias = geometry
    rng = np.random.default_rng(seed)
    x, _ = operand(rng, x_shape, dtype, layout)
    arrays = [x, rng.standard_normal(w_shape)] + ([rng.standard_normal(w_shape[0])]
                                                   if bias else [])
    fn = lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding)  # noqa: E731
    assert_backends_agree(fn, arrays, dtype, seed, scale=np.prod(w_shape[1:]) * x_shape[0])


@DTYPES
@FUZZ
@given(n=st.integers(1, 3), c=st.integers(1, 3), kh=st.integers(1, 3), kw=st.integers(1, 3),
       stride=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       extra=st.tuples(st.integers(0, 5), st.integers(0, 5)), pad=st.booleans(),
       ceil_mode=st.booleans(), kind=st.sampled_from(["max", "avg"]), ties=st.booleans(),
       seed=seeds)
def test_pooling(dtype, n, c, kh, kw, stride, extra, pad, ceil_mode, kind, ties, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c, kh + extra[0], kw + extra[1])
    x = rng.integers(-1, 2, shape) if ties else rng.standard_normal(shape)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    padding = (kh // 2, kw // 2) if pad else 0
    assert_backends_agree(lambda t: pool(t, (kh, kw), stride, padding, ceil_mode=ceil_mode),
                          [x], dtype, seed, scale=9)


# ---------------------------------------------------------------------- losses

@DTYPES
@FUZZ
@given(n=st.integers(1, 12), c=st.integers(1, 9), reduction=st.sampled_from(["mean", "sum",
                                                                             "none"]),
       big=st.booleans(), seed=seeds)
def test_cross_entropy(dtype, n, c, reduction, big, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * (40 if big else 1)
    targets = rng.integers(0, c, n)
    fn = lambda t: F.cross_entropy(t, targets, reduction=reduction)  # noqa: E731
    assert_backends_agree(fn, [logits], dtype, seed, scale=40 if big else 1)


@DTYPES
@FUZZ
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
       reduction=st.sampled_from(["mean", "sum", "none"]), seed=seeds)
def test_mse(dtype, shape, reduction, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape), rng.standard_normal(shape)]
    fn = lambda x, t: F.mse_loss(x, t, reduction=reduction)  # noqa: E731
    assert_backends_agree(fn, arrays, dtype, seed, scale=np.prod(shape))


# ---------------------------------------------------------------------- empty batches

def _empty_cases():
    r = np.random.default_rng(0)
    w = lambda *s: r.standard_normal(s)  # noqa: E731
    return {
        # name: (function of tensors, input arrays with N = 0, expected output shape)
        "matmul": (lambda x, y: x @ y, [w(0, 3), w(3, 2)], (0, 2)),
        "matmul-k0": (lambda x, y: x @ y, [w(2, 0), w(0, 4)], (2, 4)),
        "linear": (lambda x, w, b: F.linear(x, w, b), [w(0, 3), w(2, 3), w(2)], (0, 2)),
        "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [w(0, 2, 5, 5), w(3, 2, 3, 3),
                                                                 w(3)], (0, 3, 5, 5)),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), [w(0, 2, 4, 4)], (0, 2, 2, 2)),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [w(0, 2, 4, 4)], (0, 2, 2, 2)),
        "relu": (F.relu, [w(0, 3)], (0, 3)),
        "tanh": (F.tanh, [w(0, 3)], (0, 3)),
        "sigmoid": (F.sigmoid, [w(0, 3)], (0, 3)),
        "softmax": (lambda x: F.softmax(x, -1), [w(0, 3)], (0, 3)),
        "log_softmax": (lambda x: F.log_softmax(x, -1), [w(0, 3)], (0, 3)),
        "bias-broadcast": (lambda x, b: x + b, [w(0, 3), w(3)], (0, 3)),
        "sum-batch": (lambda x: x.sum(axis=0), [w(0, 3)], (3,)),
        "mean-all": (lambda x: x.mean(), [w(0, 3)], ()),
        "max-features": (lambda x: x.amax(axis=1), [w(0, 3)], (0,)),
        "cross_entropy-mean": (lambda x: F.cross_entropy(x, np.zeros(0, int)), [w(0, 3)], ()),
        "cross_entropy-none": (lambda x: F.cross_entropy(x, np.zeros(0, int), reduction="none"),
                               [w(0, 3)], (0,)),
        "mse": (lambda x, t: F.mse_loss(x, t), [w(0, 3), w(0, 3)], ()),
    }


EMPTY = _empty_cases()
EMPTY_BUGS = {}  # case name -> reason, for an empty-batch case still wrong (xfail, strict)


@DTYPES
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=EMPTY_BUGS[n]))
    if n in EMPTY_BUGS else n for n in EMPTY])
def test_empty_batch(dtype, name):
    fn, arrays, shape = EMPTY[name]
    outcomes = {}
    for backend in ("cython", "numpy"):
        with cygrad.backend.using(backend), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy: "Mean of empty slice"
            xs = [cygrad.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
            try:
                out = fn(*xs)
                out.backward(np.ones(out.shape, dtype))
            except ValueError as err:
                outcomes[backend] = ("ValueError", str(err))
                continue
            assert out.shape == shape and out.dtype == dtype
            for x in xs:
                assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == dtype
            outcomes[backend] = ("works", out.numpy(), [x.grad for x in xs])
    assert outcomes["cython"][0] == outcomes["numpy"][0] == "works", outcomes
    np.testing.assert_array_equal(outcomes["cython"][1], outcomes["numpy"][1])
    for gc, gn in zip(outcomes["cython"][2], outcomes["numpy"][2]):
        np.testing.assert_array_equal(gc, gn)


def test_empty_max_over_the_empty_axis_is_an_index_error():
    x = cygrad.tensor(np.zeros((0, 3)), requires_grad=True)
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 0 to have non-zero"):
        x.amax(axis=0)
