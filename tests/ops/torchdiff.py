"""The differential check against PyTorch: one function, written once for both libraries.

    diff(lambda m, x: m.sum(x, dim=1), array)

runs the function with `m = torch` on torch tensors and with `m = cygrad` on cygrad tensors made
from the same numpy arrays (with the same strides: non-contiguous inputs stay non-contiguous),
and asserts that both give the same thing: outputs of the same structure (tensors, tuples,
namedtuples, numbers), every tensor of the same shape and dtype, integer and bool values equal,
float values equal to rounding, and, for float inputs, the same gradients under a random output
gradient. Where torch raises, cygrad must raise the same kind of exception.

Rounding: float64 results agree to 1e-12 (relative to the result's scale); float32 results may be
off by at most a few times torch's own float32 error (measured against torch in float64 on the
same inputs) plus a few ulps.
"""

import numbers

import numpy as np
import pytest

import cygrad

BUILTIN_ERRORS = (IndexError, ValueError, TypeError, NotImplementedError, RuntimeError,
                  OverflowError)


def need_torch():
    return pytest.importorskip("torch")


def dtype_name(t):
    """A tensor's dtype name in either library ('float32', 'int64', 'bool')."""
    return str(t.dtype).removeprefix("torch.").removeprefix("cygrad.")


def layout(array, kind):
    """A fresh array holding `array`'s values in the given memory layout: "c" contiguous,
    "t" transposed storage (column-major), "s" strided (every other element of a wider
    buffer along the last dim)."""
    array = np.asarray(array)
    if kind == "c" or array.ndim == 0:
        return np.array(array, order="C")
    if kind == "t":
        return np.array(array, order="F")
    if kind == "s":
        wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
        out = wide[..., ::2]
        out[...] = array
        return out
    raise ValueError(kind)


def make(m, array, kind="c", requires_grad=None):
    """A tensor of library m (torch or cygrad) holding a fresh copy of array in layout kind."""
    t = m.from_numpy(layout(array, kind))
    if requires_grad is None:
        requires_grad = t.is_floating_point()
    if requires_grad:
        t.requires_grad_(True)
    return t


def flat(out):
    """The tensors and numbers in a (nested) result, in order."""
    if isinstance(out, (tuple, list)):
        items = []
        for o in out:
            items += flat(o)
        return items
    return [out]


def structure(out):
    if isinstance(out, (tuple, list)):
        # namedtuples (cygrad) and torch's return_types (struct sequences) name their fields
        fields = getattr(out, "_fields", None) or getattr(type(out), "__match_args__", None)
        return (type(out).__name__ if fields else "seq", fields,
                tuple(structure(o) for o in out))
    return "leaf"


def is_tensor(x):
    return hasattr(x, "dtype") and hasattr(x, "shape") and hasattr(x, "requires_grad")


def as_numpy(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def assert_values(c, t, ref=None, what="output"):
    """c (cygrad) against t (torch), both tensors or numbers; ref: torch's float64 result on
    the same inputs, the yardstick of float32 rounding."""
    if not is_tensor(t):
        assert not is_tensor(c), f"{what}: torch gives a {type(t).__name__}, cygrad a tensor"
        if isinstance(t, float) and np.isnan(t):
            assert np.isnan(c), f"{what}: {c} != nan"
        else:
            assert c == t, f"{what}: {c!r} != {t!r}"
        assert type(c) is type(t) or (isinstance(c, numbers.Number) and
                                       isinstance(t, numbers.Number)), (
            f"{what}: {type(c).__name__} vs torch's {type(t).__name__}")
        return
    assert isinstance(c, cygrad.Tensor), f"{what}: torch gives a tensor, cygrad {type(c)}"
    assert tuple(c.shape) == tuple(t.shape), f"{what}: shape {tuple(c.shape)} != torch's " \
                                             f"{tuple(t.shape)}"
    assert dtype_name(c) == dtype_name(t), f"{what}: dtype {c.dtype} != torch's {t.dtype}"
    cv, tv = c.numpy(), as_numpy(t)
    if cv.dtype.kind != "f":
        assert np.array_equal(cv, tv), f"{what}: values differ:\n{cv}\ntorch:\n{tv}"
        return
    assert_close(cv, tv, None if ref is None else as_numpy(ref), what)


def assert_close(cv, tv, rv=None, what="output"):
    """Float arrays of one dtype: float64 tight; float32 within torch's own error."""
    both_nan = np.isnan(cv) & np.isnan(tv)
    assert np.array_equal(np.isnan(cv), np.isnan(tv)), f"{what}: NaNs differ:\n{cv}\n{tv}"
    cv, tv = np.where(both_nan, 0, cv), np.where(both_nan, 0, tv)
    assert np.array_equal(np.isinf(cv), np.isinf(tv)) and np.array_equal(
        cv[np.isinf(cv)], tv[np.isinf(tv)]), f"{what}: infinities differ:\n{cv}\n{tv}"
    finite = np.isfinite(tv)
    dtype = cv.dtype
    cv, tv = cv[finite].astype(np.float64), tv[finite].astype(np.float64)
    if cv.size == 0:
        return
    scale = max(1.0, float(np.abs(tv).max()))
    if dtype == np.float64 and (rv is None):
        allowed = 1e-12 * scale
    else:
        eps = float(np.finfo(np.float32).eps)
        torch_error = 0.0 if rv is None else float(
            np.abs(tv - np.where(both_nan, 0, rv)[finite].astype(np.float64)).max())
        allowed = 4 * torch_error + 16 * eps * scale
    worst = float(np.abs(cv - tv).max())
    assert worst <= allowed, f"{what}: differs from torch by {worst:.3g} (allowed " \
                             f"{allowed:.3g}):\n{cv}\ntorch:\n{tv}"


def _error_kind(exc):
    for kind in BUILTIN_ERRORS:
        if isinstance(exc, kind):
            return kind
    return type(exc)


def diff(fn, *arrays, kinds=None, grad=True, gradcheck=False, seed=0, check_ref=True):
    """fn(m, *tensors) on both libraries; see the module docstring. Returns cygrad's result
    (None when both raised). `kinds`: a layout per array ("c", "t", "s")."""
    torch = need_torch()
    kinds = kinds or ["c"] * len(arrays)
    arrays = [np.asarray(a) for a in arrays]
    t_in = [make(torch, a, k) for a, k in zip(arrays, kinds)]
    try:
        t_out = fn(torch, *t_in)
    except BUILTIN_ERRORS as exc:
        kind = _error_kind(exc)
        c_in = [make(cygrad, a, k) for a, k in zip(arrays, kinds)]
        with pytest.raises(kind):
            fn(cygrad, *c_in)
        return None
    c_in = [make(cygrad, a, k) for a, k in zip(arrays, kinds)]
    c_out = fn(cygrad, *c_in)
    assert structure(c_out) == structure(t_out), f"result structure {structure(c_out)} != " \
                                                 f"torch's {structure(t_out)}"
    ref_out = ref_in = None
    low = any(a.dtype == np.float32 for a in arrays)
    if low and check_ref:
        ref_in = [make(torch, a.astype(np.float64) if a.dtype == np.float32 else a, k)
                  for a, k in zip(arrays, kinds)]
        ref_out = flat(fn(torch, *ref_in))
    c_flat, t_flat = flat(c_out), flat(t_out)
    for i, (c, t) in enumerate(zip(c_flat, t_flat)):
        assert_values(c, t, None if ref_out is None else ref_out[i], f"output {i}")
    if not grad:
        return c_out
    rng = np.random.default_rng(seed)
    pairs = [(i, c, t) for i, (c, t) in enumerate(zip(c_flat, t_flat))
             if is_tensor(t) and t.requires_grad]
    for i, c, _t in pairs:
        assert c.requires_grad, f"output {i}: torch's requires grad, cygrad's does not"
    if not pairs:
        return c_out
    gs = [rng.standard_normal(tuple(t.shape)).astype(as_numpy(t).dtype) for _, _, t in pairs]
    torch.autograd.backward([t for _, _, t in pairs], [torch.from_numpy(g) for g in gs])
    cygrad.autograd.backward([c for _, c, _ in pairs], [cygrad.from_numpy(g.copy()) for g in gs])
    if ref_out is not None:
        refs = [ref_out[i] for i, _, _ in pairs]
        torch.autograd.backward(refs, [torch.from_numpy(g.astype(np.float64)) for g in gs])
    for j, (c, t) in enumerate(zip(c_in, t_in)):
        if not t.requires_grad:
            continue
        if t.grad is None:
            assert c.grad is None or not c.grad.numpy().any(), f"input {j}: torch gives no grad"
            continue
        assert c.grad is not None, f"input {j}: no gradient (torch has one)"
        ref = None if ref_in is None else ref_in[j].grad
        assert_values(c.grad, t.grad, ref, f"gradient of input {j}")
    if gradcheck:
        run_gradcheck(fn, arrays, seed)
    return c_out


def run_gradcheck(fn, arrays, seed=0, **tolerances):
    """cygrad.gradcheck of fn's first tensor output over the float inputs (float64)."""
    def first(*xs):
        out = fn(cygrad, *xs)
        return next(o for o in flat(out) if is_tensor(o))

    xs = [cygrad.tensor(a.astype(np.float64), requires_grad=True) if a.dtype.kind == "f"
          else cygrad.from_numpy(np.array(a)) for a in arrays]
    assert cygrad.gradcheck(first, *xs, seed=seed, **tolerances)


def shares_memory_like_torch(fn, array, **kw):
    """Whether fn's output sees a write into its input, in both libraries (torch's views)."""
    torch = need_torch()
    answers = []
    for m in (torch, cygrad):
        x = make(m, array, requires_grad=False)
        out = fn(m, x)
        outs = [o for o in flat(out) if is_tensor(o)]
        before = [o.numpy().copy() for o in outs]
        x.add_(1)  # every element changes
        answers.append(tuple(not np.array_equal(o.numpy(), b) for o, b in zip(outs, before)))
    assert answers[1] == answers[0], f"views: cygrad {answers[1]}, torch {answers[0]}"
    return answers[0]
