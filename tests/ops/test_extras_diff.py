"""ops/extras.py and the newer elementwise entries against PyTorch (tests/ops/torchdiff.py:
values, shapes, dtypes, gradients, exception types), gradchecked in float64."""

import math

import numpy as np
import pytest
from torchdiff import diff, run_gradcheck

F64, F32 = np.float64, np.float32


def values(shape, dtype=F64, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-4, 5, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_shape_helpers(dtype):
    x = values((4, 6, 2), dtype)
    g = dtype == F64
    diff(lambda m, t: m.ravel(t.mT), x, gradcheck=g)
    diff(lambda m, t: t.ravel(), x)
    for fn in ("hsplit", "vsplit", "dsplit"):
        diff(lambda m, t, fn=fn: getattr(m, fn)(t, 2), x, gradcheck=g)
        diff(lambda m, t, fn=fn: getattr(t, fn)([1, 2]), x)
    diff(lambda m, t: m.hsplit(t, 4), x)  # 6 not divisible by 4: torch's RuntimeError
    diff(lambda m, t: m.vsplit(t[0, 0], 2), x)
    diff(lambda m, t: m.hsplit(t[0, :, 0], 3), x)
    diff(lambda m, a, b: m.dstack([a, b]), values((3,), dtype), values((3,), dtype, 1),
         gradcheck=g)
    diff(lambda m, a, b: m.dstack((a, b)), values((2, 3), dtype), values((2, 3, 2), dtype, 1))
    for offset, d1, d2 in [(0, -2, -1), (1, 0, 2), (-2, 2, 0)]:
        diff(lambda m, t, o=offset, a=d1, b=d2: m.diag_embed(t, o, a, b), values((2, 3), dtype),
             gradcheck=g)
    diff(lambda m, t: m.diagflat(t, 1), values((2, 2), dtype), gradcheck=g)
    diff(lambda m, a, b, c: m.block_diag(a, b, c), values((2, 3), dtype),
         values((3,), dtype, 1), values((), dtype, 2), gradcheck=g)
    diff(lambda m, a, b: m.cartesian_prod(a, b), values((3,), dtype), values((2,), dtype, 1),
         gradcheck=g)
    for r, rep in [(2, False), (3, False), (2, True), (0, False), (5, False)]:
        diff(lambda m, t, r=r, rep=rep: m.combinations(t, r, rep), values((4,), dtype),
             gradcheck=g and r > 0 and r < 5)
    diff(lambda m, t, i: m.take(t, i), values((3, 4), dtype), np.array([[0, -1], [5, 11]]),
         gradcheck=g)
    diff(lambda m, t, i: m.take(t, i), values((3, 4), dtype), np.array([12]))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_statistics(dtype):
    x = values((3, 7), dtype, 1)
    g = dtype == F64
    diff(lambda m, t: m.cov(t), x, gradcheck=g)
    diff(lambda m, t: m.cov(t, correction=0), x, gradcheck=g)
    diff(lambda m, t: t.cov(), values((7,), dtype))
    fw = np.array([1, 2, 1, 3, 1, 1, 2])
    aw = np.abs(values((7,), dtype, 2)) + 0.5
    diff(lambda m, t, f, a: m.cov(t, fweights=f, aweights=a), x, fw, aw, gradcheck=False)
    diff(lambda m, t, f: m.cov(t, fweights=f), x, fw)
    diff(lambda m, t: m.corrcoef(t), x, gradcheck=g)
    diff(lambda m, t: m.cov(t.reshape(1, 3, 7)), x)
    diff(lambda m, t: m.aminmax(t), x)
    diff(lambda m, t: m.aminmax(t, dim=1, keepdim=True), x)
    diff(lambda m, t: t.aminmax(dim=0), x)
    diff(lambda m, t: m.msort(t), x, gradcheck=g)
    for k, dim, keep in [(1, -1, False), (3, 0, True), (7, 1, False)]:
        diff(lambda m, t, k=k, d=dim, kp=keep: m.kthvalue(t, k, d, kp), x, gradcheck=g)
    diff(lambda m, t: t.kthvalue(9), x)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_integration(dtype):
    y = values((3, 6), dtype, 3)
    g = dtype == F64
    x = np.sort(values((6,), dtype, 4))
    diff(lambda m, t: m.trapezoid(t), y, gradcheck=g)
    diff(lambda m, t, s: m.trapezoid(t, s), y, x, gradcheck=g)
    diff(lambda m, t: m.trapezoid(t, dx=0.5, dim=0), y)
    diff(lambda m, t, s: m.trapz(t, s), y, x)
    diff(lambda m, t: m.cumulative_trapezoid(t), y, gradcheck=g)
    diff(lambda m, t, s: m.cumulative_trapezoid(t, s, dim=-1), y, x, gradcheck=g)
    diff(lambda m, t: m.cumulative_trapezoid(t, dx=2.0, dim=0), y)


def test_searching():
    seq = np.array([1.0, 3.0, 3.0, 5.0, 7.0])
    v = np.array([[0.0, 3.0, 6.0], [7.0, 8.0, 3.0]])
    for right in (False, True):
        diff(lambda m, s, t, r=right: m.searchsorted(s, t, right=r), seq, v)
        diff(lambda m, t, s, r=right: m.bucketize(t, s, right=r), v, seq)
    diff(lambda m, s, t: m.searchsorted(s, t, side="right", out_int32=True), seq, v)
    rows = np.sort(values((2, 5)), axis=1)
    diff(lambda m, s, t: m.searchsorted(s, t), rows, values((2, 3), F64, 1))
    diff(lambda m, s, t: m.searchsorted(s, t), rows, values((3, 3), F64, 1))
    diff(lambda m, s, t: m.bucketize(t, s), rows, v)
    diff(lambda m, a, b: m.isin(a, b), np.array([1, 2, 3, 4]), np.array([2, 4, 6]))
    diff(lambda m, a, b: m.isin(a, b, invert=True), np.array([[1, 2], [3, 4]]), np.array([2]))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_products_and_older_linalg_names(dtype):
    g = dtype == F64
    diff(lambda m, a, b: m.vdot(a, b), values((4,), dtype), values((4,), dtype, 1),
         gradcheck=g)
    mats = [values(s, dtype, i) for i, s in enumerate([(2, 3), (3, 5), (5, 2)])]
    diff(lambda m, *ts: m.chain_matmul(*ts), *mats, gradcheck=g)
    a = values((4, 3), dtype, 5)
    diff(lambda m, t: m.pinverse(t), a, gradcheck=g)
    spd = values((3, 3), F64, 6)
    spd = (spd @ spd.T + 3 * np.eye(3)).astype(dtype)
    diff(lambda m, t: m.cholesky(t), spd)
    diff(lambda m, t: t.cholesky(upper=True), spd)
    diff(lambda m, t: m.svd(t).S, a)
    diff(lambda m, t: m.svd(t, some=False).S, a)
    diff(lambda m, t: [x.shape for x in m.svd(t, some=False)], a)
    diff(lambda m, t: m.svd(t, compute_uv=False), a, grad=False)
    diff(lambda m, t: (lambda u, s, v: (u * s) @ v.mT)(*m.svd(t)), a, gradcheck=g)
    diff(lambda m, t: m.qr(t), a, gradcheck=g)
    diff(lambda m, t: m.qr(t, some=False).R, a, grad=False)
    diff(lambda m, t: m.matrix_exp(t), values((3, 3), dtype, 7), gradcheck=g)
    diff(lambda m, t: t.matrix_exp(), values((2, 3, 3), dtype, 7))
    for n, inc in [(None, False), (4, True), (2, False), (0, False)]:
        # (torch 2.13's own vander backward raises: an in-place write into a view it saved;
        # cygrad's gradient is gradchecked)
        diff(lambda m, t, n=n, inc=inc: m.vander(t, n, inc), values((3,), dtype, 8),
             grad=False)
        if g and n != 0:
            run_gradcheck(lambda m, t, n=n, inc=inc: m.vander(t, n, inc), [values((3,), F64)])
    diff(lambda m, t: m.vander(t), values((3,), np.int64))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_newer_elementwise_entries_at_their_edges(dtype):
    """logit with eps (clamped, its gradient 0 outside), fmax / fmin with NaN and ties,
    xlogy at a = 0, copysign at a = 0, erfc far out (where 1 - erf loses every digit)."""
    x = np.array([0.0, 0.05, 0.3, 0.5, 0.97, 1.0], dtype)
    diff(lambda m, t: m.logit(t, 0.1), x, gradcheck=False)
    diff(lambda m, t: t.logit(eps=0.2), x[1:-1], gradcheck=dtype == F64)
    a = np.array([1.0, np.nan, 2.0, 3.0, -1.0], dtype)
    b = np.array([np.nan, 2.0, 2.0, 1.0, 4.0], dtype)
    for fn in ("fmax", "fmin"):
        diff(lambda m, u, v, fn=fn: getattr(m, fn)(u, v), a, b)
    diff(lambda m, u, v: m.xlogy(u, v), np.array([0.0, 0.0, 2.0, 1.0], dtype),
         np.array([0.0, 3.0, 0.5, np.nan], dtype))
    diff(lambda m, u, v: m.xlogy(u, v), np.array([1.0, 2.0], dtype), 3.0)
    diff(lambda m, u, v: m.copysign(u, v), np.array([0.0, 1.5, -2.0], dtype),
         np.array([-1.0, -3.0, 2.0], dtype))
    diff(lambda m, t: m.erfc(t), np.array([-3.0, 0.0, 5.0, 9.0], dtype))
    diff(lambda m, t: m.deg2rad(t), np.array([0, 90, 180]))
    diff(lambda m, t: m.rad2deg(t), np.array([0.0, math.pi / 3], dtype))
