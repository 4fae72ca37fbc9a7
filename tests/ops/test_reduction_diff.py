"""Reductions against PyTorch (tests/ops/torchdiff.py runs each one-line function on both
libraries and compares values, dtypes, shapes, gradients and the exception raised): sum, mean,
prod, max/min (values and indices), amax/amin, argmax/argmin, all/any, count_nonzero, var/std
(unbiased, correction), var_mean/std_mean, logsumexp, cumsum, norm, softmax/log_softmax, sort,
argsort, topk, median, over every dtype, 0-d and empty inputs, negative and out-of-range dims,
keepdim. Each table row is one call; hypothesis draws the tensor and the dim."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchdiff import diff, run_gradcheck

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
DTYPES = [np.float64, np.float32, np.int64, np.int32, np.bool_]
shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)


def values(shape, dtype, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        if ties:  # repeated values: which index max, sort and median pick matters
            return rng.integers(-2, 3, shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(-5, 6, shape).astype(dtype)


# name -> fn(m, t, dim, keepdim); dim is an int in or just outside the range, a tuple, or None
DIM_OPS = {
    "sum": lambda m, t, d, k: t.sum(d, keepdim=k) if d is not None else t.sum(),
    "sum_fn": lambda m, t, d, k: m.sum(t, dim=d, keepdim=k) if d is not None else m.sum(t),
    "sum_dtype": lambda m, t, d, k: t.sum(dtype=m.float64),
    "mean": lambda m, t, d, k: t.mean(d, keepdim=k) if d is not None else t.mean(),
    "mean_dtype": lambda m, t, d, k: t.mean(dtype=m.float64) if d is None else
    t.mean(d, k, dtype=m.float64),
    "prod": lambda m, t, d, k: t.prod() if d is None or isinstance(d, tuple) else
    t.prod(d, keepdim=k),
    "max": lambda m, t, d, k: t.max() if d is None or isinstance(d, tuple) else t.max(d, k),
    "min": lambda m, t, d, k: m.min(t) if d is None or isinstance(d, tuple) else
    m.min(t, dim=d, keepdim=k),
    "amax": lambda m, t, d, k: t.amax(() if d is None else d, k),
    "amin": lambda m, t, d, k: m.amin(t, () if d is None else d, keepdim=k),
    "argmax": lambda m, t, d, k: t.argmax() if isinstance(d, tuple) else t.argmax(d, k),
    "argmin": lambda m, t, d, k: m.argmin(t, None if isinstance(d, tuple) else d, keepdim=k),
    "all": lambda m, t, d, k: t.all() if d is None else t.all(d, k),
    "any": lambda m, t, d, k: m.any(t) if d is None else m.any(t, d, keepdim=k),
    "count_nonzero": lambda m, t, d, k: t.count_nonzero(d),
    "var": lambda m, t, d, k: t.var(d, keepdim=k),
    "var_unbiased": lambda m, t, d, k: t.var(d, unbiased=False, keepdim=k),
    "std": lambda m, t, d, k: t.std(d, correction=0, keepdim=k),
    "std_c2": lambda m, t, d, k: m.std(t, d, correction=2, keepdim=k),
    "var_mean": lambda m, t, d, k: m.var_mean(t, d, keepdim=k),
    "std_mean": lambda m, t, d, k: m.std_mean(t, d, unbiased=False, keepdim=k),
    # (torch 2.13 fails on logsumexp(dim=()); cygrad reduces every dim, as sum does)
    "logsumexp": lambda m, t, d, k: t.logsumexp(tuple(range(t.dim())) if d is None or d == ()
                                                else d, k),
    "cumsum": lambda m, t, d, k: t.cumsum(0 if d is None or isinstance(d, tuple) else d),
    "cumsum_dtype": lambda m, t, d, k: t.cumsum(-1, dtype=m.float64),
    "norm": lambda m, t, d, k: t.norm(dim=d, keepdim=k),
    "norm_1": lambda m, t, d, k: m.norm(t, 1, d, k),
    "norm_inf": lambda m, t, d, k: t.norm(float("inf"), d, k),
    "norm_3": lambda m, t, d, k: t.norm(3, d, k),
    "softmax": lambda m, t, d, k: t.softmax(-1 if d is None or isinstance(d, tuple) else d),
    "log_softmax": lambda m, t, d, k: m.log_softmax(t, 0 if d is None or isinstance(d, tuple)
                                                    else d),
    "softmax_dtype": lambda m, t, d, k: t.softmax(-1, dtype=m.float64),
    # (torch takes dim only as a keyword next to stable=)
    "sort": lambda m, t, d, k: t.sort(dim=-1 if d is None or isinstance(d, tuple) else d,
                                      descending=k, stable=True),
    "argsort": lambda m, t, d, k: t.argsort(dim=-1 if d is None or isinstance(d, tuple) else d,
                                            stable=True, descending=k),
    "topk": lambda m, t, d, k: t.topk(1, -1 if d is None or isinstance(d, tuple) else d,
                                      largest=k),
    "median": lambda m, t, d, k: t.median() if d is None or isinstance(d, tuple) else
    t.median(d, k),
}
# ops torch leaves undifferentiable or whose gradient at ties depends on the kernel chosen
NO_GRAD_AT_TIES = {"max", "min", "amax", "amin", "median", "sort", "topk", "norm_inf"}


@st.composite
def dims(draw, ndim):
    n = max(ndim, 1)
    kind = draw(st.sampled_from(["none", "int", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-n - 1, n))
    return tuple(draw(st.lists(st.integers(-n, n - 1), max_size=3, unique=True)))


@pytest.mark.parametrize("name", sorted(DIM_OPS))
@SETTINGS
@given(shape=shapes, dtype=st.sampled_from(DTYPES), kind=st.sampled_from("cts"),
       ties=st.booleans(), data=st.data())
def test_reduction(name, shape, dtype, kind, ties, data):
    array = values(shape, dtype, data.draw(st.integers(0, 99)), ties)
    dim = data.draw(dims(len(shape)))
    keepdim = data.draw(st.booleans())
    grad = not (ties and name in NO_GRAD_AT_TIES)
    if dim == () and name.startswith(("var", "std")):
        # torch 2.13's var/std backward with dim=() doubles the gradient (its forward reduces
        # over every dim, its backward divides by one element's count): cygrad's gradient
        # is checked by gradcheck instead
        grad = False
        if array.size > 1 and array.dtype == np.float64:
            run_gradcheck(lambda m, t: DIM_OPS[name](m, t, dim, keepdim), [array])
    diff(lambda m, t: DIM_OPS[name](m, t, dim, keepdim), array, kinds=[kind if shape else "c"],
         grad=grad)


@pytest.mark.parametrize("name", sorted(set(DIM_OPS) - {"argmax", "argmin", "all", "any",
                                                        "count_nonzero", "argsort"}))
def test_reduction_gradcheck(name):
    array = values((3, 4), np.float64, 7)
    for dim in (None, 1, -2, (0, 1)):
        run_gradcheck(lambda m, t, d=dim: DIM_OPS[name](m, t, d, True), [array])


@pytest.mark.parametrize("args", [(), (0,), (-1, True), ((0, 1),)])
def test_unique_bincount_histc(args):
    x = np.array([[3, 1, 3], [0, 1, 7]])
    diff(lambda m, t: m.unique(t), x)
    diff(lambda m, t: t.unique(return_inverse=True, return_counts=True), x)
    diff(lambda m, t: m.bincount(t.reshape(-1).abs()), x)
    diff(lambda m, t: m.bincount(t.reshape(-1), minlength=10), x)  # negative: torch raises
    w = np.array([0.5, 1.0, -2.0, 3.0, 0.25, 1.5])
    diff(lambda m, t, v: m.bincount(t.reshape(-1), weights=v, minlength=9), np.abs(x), w,
         grad=False)
    diff(lambda m, t: m.histc(t, bins=4, min=0, max=6), x.astype(np.float64))
    diff(lambda m, t: t.histc(bins=5), np.array([1.0, 2.0, 2.5, 9.0]))
    if args:
        diff(lambda m, t: t.sum(*args), x.astype(np.float32))


UNIQUE_ARRAYS = [
    np.array([[1, 2], [0, 5], [1, 2], [0, 1]]),
    np.array([[1.5, -0.0], [1.5, 0.0], [np.nan, 1], [np.nan, 1]], np.float32),
    np.random.default_rng(0).integers(0, 2, (5, 3, 4)),
    np.array([[True, False], [True, False], [False, False]]),
    np.zeros((0, 3), np.float32), np.zeros((2, 0), np.float32), np.array(3.0),
    np.array([3.0, np.nan, 1.0, np.nan])]


@pytest.mark.parametrize("index", range(len(UNIQUE_ARRAYS)))
@pytest.mark.parametrize("dim", [None, 0, 1, -1, 2])
def test_unique_dim(index, dim):
    """torch.unique with dim (unique_dim): slices sorted lexicographically, NaN slices distinct,
    -0.0 equal to 0.0, `sorted` without effect, empty dims, a 0-d tensor's IndexError; without
    dim each NaN distinct."""
    x = UNIQUE_ARRAYS[index]
    diff(lambda m, t: m.unique(t, dim=dim), x, grad=False)
    diff(lambda m, t: t.unique(dim=dim, return_inverse=True, return_counts=True), x, grad=False)
    diff(lambda m, t: m.unique(t, sorted=False, return_inverse=True, dim=dim), x, grad=False)


@pytest.mark.parametrize("dim", [None, 0])
def test_unique_has_no_derivative_as_torch(dim):
    """A float input's unique values require a gradient (torch marks them) and a backward
    through them raises torch's NotImplementedError naming the kernel."""
    import cygrad
    x = cygrad.tensor([[1.0, 2.0], [1.0, 2.0], [0.5, 3.0]], requires_grad=True)
    u = cygrad.unique(x, dim=dim)
    assert u.requires_grad and not cygrad.unique(x.detach(), dim=dim).requires_grad
    kernel = "_unique2" if dim is None else "unique_dim"
    with pytest.raises(NotImplementedError, match=f"derivative for '{kernel}'"):
        u.sum().backward()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_cummax_cummin(dtype, dim):
    """cumprod (its gradient with zeros: before a row's first zero, at it, after it), cummax
    and cummin (a later tie or NaN takes the index; the gradient goes to that element); torch's
    values, indices, gradients; gradcheck."""
    x = np.array([[2.0, 0.0, 3.0, 0.0, 4.0], [1.0, 2.0, -3.0, 4.0, 0.5],
                  [0.0, 1.5, 2.0, -1.0, 3.0], [2.0, 3.0, 3.0, 1.0, 3.0]], dtype)
    diff(lambda m, t: m.cumprod(t, dim), x, gradcheck=dtype == np.float64)
    diff(lambda m, t: t.cumprod(dim, dtype=m.float64), x)
    for fn in ("cummax", "cummin"):  # (ties: torch's gradient, not gradcheckable there)
        diff(lambda m, t, fn=fn: getattr(m, fn)(t, dim), x)
        diff(lambda m, t, fn=fn: getattr(m, fn)(t, dim), values((4, 5), dtype, 3),
             gradcheck=dtype == np.float64)
    nan = x.copy()
    nan[1, 2] = nan[3, 0] = np.nan
    for fn in ("cummax", "cummin"):
        diff(lambda m, t, fn=fn: getattr(t, fn)(dim), nan, grad=False)
    diff(lambda m, t: m.cumprod(t, 0), np.array([1, 2, 3, -2]))
    diff(lambda m, t: m.cummax(t, 0), np.array([1, 3, 2, 3]))
    diff(lambda m, t: m.cummax(t, 0), np.array(2.5, dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_histogram(dtype):
    x = np.array([0.5, 1.0, 2.5, 2.5, 3.75, -1.0], dtype)
    diff(lambda m, t: m.histogram(t, 4), x, grad=False)
    diff(lambda m, t: t.histogram(3, range=(0.0, 3.0)), x, grad=False)
    diff(lambda m, t: m.histogram(t, m.tensor([0.0, 1.0, 4.0], dtype=t.dtype)), x, grad=False)
    diff(lambda m, t, w: m.histogram(t, 2, weight=w, density=True), x, x[::-1].copy(),
         grad=False)
