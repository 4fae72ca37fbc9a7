"""cygrad.linalg (torch.linalg) and the matrix functions under it (ops/decompositions.py)
against PyTorch (tests/ops/torchdiff.py: values, shapes, gradients, exception types),
gradchecked in float64; a matrix alone gives the same bits as inside its batch; the names
cygrad lacks raise NotImplementedError."""

import math
import pathlib
import sys

import numpy as np
import pytest

import cygrad

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "ops"))
from torchdiff import diff, need_torch, run_gradcheck  # noqa: E402

F64, F32 = np.float64, np.float32


def values(shape, dtype=F64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def spd(shape, dtype=F64, seed=0):
    """Symmetric positive-definite matrices, well conditioned."""
    a = values(shape, F64, seed)
    n = shape[-1]
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(dtype)


# ---------------------------------------------------------------------- norms

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("ord", [2, 1, 3, 0.5, math.inf, -math.inf, 0])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_vector_norm(dtype, ord, dim, keepdim):
    x = values((3, 4, 5), dtype)
    diff(lambda m, t: m.linalg.vector_norm(t, ord, dim, keepdim), x,
         gradcheck=dtype == F64 and ord != 0)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("ord", ["fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2])
@pytest.mark.parametrize("dim,keepdim", [((-2, -1), False), ((0, 2), True), ((2, 0), False)])
def test_matrix_norm(dtype, ord, dim, keepdim):
    x = values((3, 4, 5), dtype, 1)
    diff(lambda m, t: m.linalg.matrix_norm(t, ord, dim, keepdim), x,
         gradcheck=dtype == F64)


@pytest.mark.parametrize("shape,ord,dim", [
    ((3, 4), None, None), ((3, 4), "fro", None), ((3, 4), math.inf, None), ((3, 4), 1, 1),
    ((5,), 3, None), ((2, 3, 4), None, (1, 2)), ((2, 3, 4), "nuc", (0, 1)), ((2, 3, 4), 2, -1),
    ((2, 3, 4), 2, None), ((2, 3, 4), None, (0,))])
def test_norm_picks_vector_or_matrix_as_torch(shape, ord, dim):
    diff(lambda m, t: m.linalg.norm(t, ord, dim), values(shape, F64, 2), gradcheck=True)


@pytest.mark.parametrize("call", [
    lambda m, t: m.linalg.matrix_norm(t, "fro", (0,)),
    lambda m, t: m.linalg.matrix_norm(t, 3),
    lambda m, t: m.linalg.matrix_norm(t[0, 0]),
    lambda m, t: m.linalg.matrix_norm(t, dim=(1, 1)),
    lambda m, t: m.linalg.matrix_norm(t, dim=(0, 5)),
    lambda m, t: m.linalg.norm(t, 2),
    lambda m, t: m.linalg.vector_norm(t.long()),
    lambda m, t: m.linalg.vector_norm(t, "fro")])
def test_norm_errors(call):
    diff(call, values((2, 3, 4)))


# ---------------------------------------------------------------------- products

@pytest.mark.parametrize("dtype", [F64, F32])
def test_vecdot_multi_dot_matrix_power_cross_diagonal(dtype):
    a, b = values((4, 3), dtype, 1), values((1, 3), dtype, 2)
    diff(lambda m, x, y: m.linalg.vecdot(x, y), a, b, gradcheck=dtype == F64)
    diff(lambda m, x, y: m.linalg.vecdot(x, y, dim=0), a, values((4, 1), dtype, 3))
    mats = [values(s, dtype, i) for i, s in enumerate([(5,), (5, 2), (2, 7), (7, 3), (3,)])]
    diff(lambda m, *ts: m.linalg.multi_dot(ts), *mats, gradcheck=dtype == F64)
    diff(lambda m, *ts: m.linalg.multi_dot(list(ts)), *mats[1:4])
    sq = values((2, 3, 3), dtype, 4) / 2 + np.eye(3, dtype=dtype)
    for n in (0, 1, 2, 3, 5, -1, -2):
        diff(lambda m, t, n=n: m.linalg.matrix_power(t, n), sq, gradcheck=dtype == F64)
    diff(lambda m, x, y: m.linalg.cross(x, y), a, b, gradcheck=dtype == F64)
    diff(lambda m, x, y: m.linalg.cross(x, y, dim=0), values((3, 2), dtype),
         values((3, 2), dtype, 5))
    diff(lambda m, t: m.linalg.diagonal(t, offset=1), values((2, 3, 4), dtype))


@pytest.mark.parametrize("call,shapes", [
    (lambda m, *ts: m.linalg.multi_dot(ts), [(2, 3), (4, 5)]),
    (lambda m, *ts: m.linalg.multi_dot(ts), [(2, 3, 3), (3, 5)]),
    (lambda m, *ts: m.linalg.multi_dot(ts), [(3,)]),
    (lambda m, *ts: m.linalg.multi_dot(ts), [(2, 3), (3,), (3, 2)]),
    (lambda m, *ts: m.linalg.cross(*ts), [(4, 2), (4, 2)]),
    (lambda m, *ts: m.linalg.matrix_power(ts[0], 2), [(2, 3)])])
def test_product_errors(call, shapes):
    diff(call, *[values(s, F64, i) for i, s in enumerate(shapes)])


# ---------------------------------------------------------------------- matrix functions

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(4, 4), (3, 2, 5, 5), (1, 1)])
def test_det_slogdet_logdet_inv(dtype, shape):
    a = values(shape, dtype, 3) + 2 * np.eye(shape[-1], dtype=dtype)
    for fn in (lambda m, t: m.linalg.det(t), lambda m, t: t.det(),
               lambda m, t: m.linalg.slogdet(t), lambda m, t: m.slogdet(t),
               lambda m, t: m.logdet(t @ t.mT), lambda m, t: m.linalg.inv(t),
               lambda m, t: t.inverse()):
        diff(fn, a, gradcheck=dtype == F64)


def test_det_gradient_of_a_singular_matrix():
    """The determinant's gradient is the adjugate's transpose, also where A is singular."""
    a = values((4, 4), F64, 5)
    a[3] = a[0] + a[1]  # rank 3: det 0, adjugate nonzero
    diff(lambda m, t: m.linalg.det(t), a, gradcheck=True)


def test_logdet_of_negative_and_singular_determinants():
    a = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 2.0], [2.0, 4.0]], [[2.0, 0.0], [0.0, 3.0]]])
    diff(lambda m, t: m.logdet(t), a, grad=False)


@pytest.mark.parametrize("fn", [lambda m, t: m.linalg.inv(t), lambda m, t: m.inverse(t),
                                lambda m, t: m.linalg.solve(t, t[..., 0]),
                                lambda m, t: m.linalg.cholesky(t)])
def test_singular_and_indefinite_inputs_raise_linalg_errors(fn):
    a = np.array([[1.0, 2.0], [2.0, 4.0]])  # singular, not positive-definite
    diff(fn, a)
    with pytest.raises(cygrad.linalg.LinAlgError):
        fn(cygrad, cygrad.tensor(a))
    assert issubclass(cygrad.linalg.LinAlgError, RuntimeError)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("sa,sb,left", [
    ((3, 3), (3, 2), True), ((3, 3), (3,), True), ((2, 3, 3), (2, 3), True),
    ((2, 3, 3), (2, 3, 4), True), ((3, 3), (2, 3, 4), True), ((2, 1, 3, 3), (5, 3, 1), True),
    ((3, 3), (2, 3), False), ((2, 3, 3), (2, 4, 3), False)])
def test_solve(dtype, sa, sb, left):
    a = values(sa, dtype, 1) + 3 * np.eye(sa[-1], dtype=dtype)
    diff(lambda m, x, y: m.linalg.solve(x, y, left=left), a, values(sb, dtype, 2),
         gradcheck=dtype == F64)


@pytest.mark.parametrize("sa,sb", [((3, 3), (4, 2)), ((3, 4), (3,)), ((3, 3), (2,))])
def test_solve_errors(sa, sb):
    diff(lambda m, x, y: m.linalg.solve(x, y), values(sa), values(sb, F64, 1))
    diff(lambda m, x, y: m.linalg.solve(x, y.float()), values((3, 3)), values((3,), F64, 1))


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(dtype, upper):
    a = spd((2, 4, 4), dtype)
    diff(lambda m, t: m.linalg.cholesky(t, upper=upper), a)
    if dtype == F64:  # a symmetric function of the input: the triangle read does not matter
        run_gradcheck(lambda m, t: m.linalg.cholesky(t @ t.mT + 4 * m.eye(4), upper=upper),
                      [values((2, 4, 4), F64, 6)])


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigvalsh_and_eigh(dtype, uplo):
    """Eigenvalues and their gradients as torch; eigenvectors up to each column's sign, and
    the gradient of a loss that does not see the signs as torch's."""
    torch = need_torch()
    a = spd((2, 4, 4), dtype, 2)
    diff(lambda m, t: m.linalg.eigvalsh(t, uplo), a)
    diff(lambda m, t: m.linalg.eigh(t, uplo).eigenvalues, a)
    weights = values((4, 4), dtype, 9)

    def loss(m, t):
        w, v = m.linalg.eigh(t, UPLO=uplo)
        return (w * w).sum() + (v * v * m.tensor(weights)).sum()

    diff(loss, a)
    cv = cygrad.linalg.eigh(cygrad.tensor(a), uplo).eigenvectors.numpy()
    tv = torch.linalg.eigh(torch.tensor(a), uplo).eigenvectors.numpy()
    signs = np.sign(np.sum(cv * tv, axis=-2, keepdims=True))
    np.testing.assert_allclose(cv * signs, tv, atol=1e-4 if dtype == F32 else 1e-10)
    if dtype == F64:
        run_gradcheck(lambda m, t: m.linalg.eigvalsh(t + t.mT), [values((3, 3), F64, 4)])
        run_gradcheck(lambda m, t: loss(m, t + t.mT), [values((4, 4), F64, 5)])
    diff(lambda m, t: m.linalg.eigh(t, "X"), a)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5), (5, 3)])
def test_svdvals(dtype, shape):
    diff(lambda m, t: m.linalg.svdvals(t), values(shape, dtype, 7), gradcheck=dtype == F64)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 4)])
@pytest.mark.parametrize("full", [True, False])
def test_svd(dtype, shape, full):
    """Shapes and singular values as torch; U diag(S) Vh rebuilds A; each singular pair up to
    its sign as torch's; the gradient of losses that do not see the signs (through U, S and
    Vh: U diag(S) Vh weighted, U U^T, Vh^T Vh) as torch's, and gradcheck."""
    torch = need_torch()
    a = values(shape, dtype, 3)
    k = min(shape[-2:])
    diff(lambda m, t: m.linalg.svd(t, full_matrices=full).S, a)
    w = values(shape, dtype, 4)

    def loss(m, t):
        u, s, vh = m.linalg.svd(t, full_matrices=full)
        u, vh = u[..., :k], vh[..., :k, :]
        rebuilt = (u * s.unsqueeze(-2)) @ vh
        return (rebuilt * m.tensor(w)).sum() + (u @ u.mT * 0.5).sum() + (vh.mT @ vh).pow(2).sum()

    diff(loss, a)
    cu, cs, cvh = (x.numpy() for x in cygrad.linalg.svd(cygrad.tensor(a), full_matrices=full))
    tu, ts, tvh = (x.numpy() for x in torch.linalg.svd(torch.tensor(a), full_matrices=full))
    assert cu.shape == tu.shape and cvh.shape == tvh.shape
    signs = np.sign(np.sum(cu[..., :k] * tu[..., :k], axis=-2, keepdims=True))
    tol = 1e-4 if dtype == F32 else 1e-10
    np.testing.assert_allclose(cu[..., :k] * signs, tu[..., :k], atol=tol)
    np.testing.assert_allclose(cvh[..., :k, :] * np.swapaxes(signs, -1, -2), tvh[..., :k, :],
                               atol=tol)
    if dtype == F64:
        run_gradcheck(loss, [a])


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 4), (3, 3)])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr(dtype, shape, mode):
    """Q and R as torch's (the same LAPACK signs) and their gradients; no gradient through
    mode 'r', nor 'complete' with more rows than columns: torch's RuntimeError at backward."""
    torch = need_torch()
    a = values(shape, dtype, 5)
    differentiable = not (mode == "r" or (mode == "complete" and shape[-2] > shape[-1]))
    diff(lambda m, t: m.linalg.qr(t, mode=mode), a, grad=differentiable,
         gradcheck=dtype == F64 and differentiable)
    if not differentiable:
        for m in (torch, cygrad):
            t = m.tensor(a, requires_grad=True)
            q, r = m.linalg.qr(t, mode=mode)
            assert q.requires_grad and r.requires_grad
            with pytest.raises(RuntimeError, match="mode='r'" if mode == "r" else "complete"):
                r.sum().backward()


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 4)])
def test_pinv_matrix_rank_cond(dtype, shape):
    a = values(shape, dtype, 6)
    diff(lambda m, t: m.linalg.pinv(t), a, gradcheck=dtype == F64)
    diff(lambda m, t: m.linalg.matrix_rank(t), a)
    low = a.copy()
    low[..., 0, :] = 0  # rank deficient: the zero singular value is dropped
    diff(lambda m, t: m.linalg.matrix_rank(t), low)
    diff(lambda m, t: m.linalg.pinv(t), low, grad=False)
    diff(lambda m, t: m.linalg.matrix_rank(t, atol=0.5, rtol=0.1), a)
    diff(lambda m, t: m.linalg.pinv(t, rtol=0.3), a)
    for p in (None, 2, -2):
        diff(lambda m, t, p=p: m.linalg.cond(t, p), a, gradcheck=dtype == F64)
    if shape[-2] == shape[-1]:
        sym = a + np.swapaxes(a, -1, -2)
        diff(lambda m, t: m.linalg.pinv(t, hermitian=True), sym)
        diff(lambda m, t: m.linalg.matrix_rank(t, hermitian=True), sym)
        for p in ("fro", "nuc", 1, -math.inf):  # (torch 2.13's backward of these raises: an
            # in-place write into linalg.inv's output; cygrad's is gradchecked)
            diff(lambda m, t, p=p: m.linalg.cond(t, p), a, grad=False)
            if dtype == F64:
                run_gradcheck(lambda m, t, p=p: m.linalg.cond(t, p), [a])


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("upper,left,unit", [(True, True, False), (False, True, False),
                                             (True, False, True), (False, False, False),
                                             (False, True, True)])
def test_solve_triangular(dtype, upper, left, unit):
    a = values((2, 4, 4), dtype, 7) + 4 * np.eye(4, dtype=dtype)
    b = values((2, 4, 3) if left else (2, 3, 4), dtype, 8)
    diff(lambda m, x, y: m.linalg.solve_triangular(x, y, upper=upper, left=left,
                                                   unitriangular=unit), a, b,
         gradcheck=dtype == F64)
    diff(lambda m, x, y: m.linalg.solve_triangular(x[0], y, upper=upper, left=left), a, b)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_matrix_exp_vander_tensorinv_tensorsolve(dtype):
    a = values((2, 4, 4), dtype, 1) * 1.5
    diff(lambda m, t: m.linalg.matrix_exp(t), a, gradcheck=dtype == F64)
    diff(lambda m, t: m.linalg.matrix_exp(t), values((3, 3), dtype, 2) * 8)  # squarings
    diff(lambda m, t: m.linalg.matrix_exp(t), np.zeros((0, 0), dtype))
    x = values((2, 3), dtype, 3)
    for n in (None, 2, 4, 1):
        diff(lambda m, t, n=n: m.linalg.vander(t, N=n), x, gradcheck=dtype == F64 and n != 1)
    t6 = values((6, 2, 3), dtype, 4) + np.eye(6, dtype=dtype).reshape(6, 2, 3)
    diff(lambda m, t: m.linalg.tensorinv(t, ind=1), t6, gradcheck=dtype == F64)
    diff(lambda m, t: m.linalg.tensorinv(t, ind=2), values((2, 3, 4), dtype))
    a3 = values((2, 3, 6), dtype, 5) + np.eye(6, dtype=dtype).reshape(2, 3, 6)
    diff(lambda m, t, y: m.linalg.tensorsolve(t, y), a3, values((2, 3), dtype, 6),
         gradcheck=dtype == F64)
    diff(lambda m, t, y: m.linalg.tensorsolve(t, y, dims=(0,)), np.moveaxis(a3, 2, 0),
         values((2, 3), dtype, 6))


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("sa,sb", [((2, 5, 3), (2, 5, 4)), ((5, 3), (5,)), ((3, 3), (3, 2)),
                                   ((2, 3, 5), (2, 3, 2)), ((2, 5, 3), (5, 3))])
def test_lstsq(dtype, driver, sa, sb):
    """solution, residuals, rank and singular values as torch's driver gives them (empty
    where it has none); the solution's gradient as torch's (pinv's)."""
    full = sa[-2] >= sa[-1] or driver not in ("gels",)  # (gels needs full rank: wide A has)
    diff(lambda m, x, y: m.linalg.lstsq(x, y, driver=driver), values(sa, dtype, 1),
         values(sb, dtype, 2), grad=full, gradcheck=dtype == F64 and driver is None)


def test_lstsq_rank_deficient_and_errors():
    a = values((5, 3), F64, 1)
    a[:, 2] = a[:, 0] + a[:, 1]
    b = values((5, 2), F64, 2)
    diff(lambda m, x, y: m.linalg.lstsq(x, y, driver="gelsd"), a, b, grad=False)
    diff(lambda m, x, y: m.linalg.lstsq(x, y), a, b[:, 0].reshape(1, 1, 5))
    diff(lambda m, x, y: m.linalg.lstsq(x, y, driver="qr"), a, b)
    diff(lambda m, x, y: m.linalg.lstsq(x, y), a, values((4, 2)))


@pytest.mark.parametrize("fn", [lambda L, t: L.det(t), lambda L, t: L.inv(t),
                                lambda L, t: L.solve(t, t[..., 0]), lambda L, t: L.svdvals(t),
                                lambda L, t: L.eigvalsh(t @ t.mT),
                                lambda L, t: L.matrix_norm(t, "nuc"), lambda L, t: L.qr(t).R,
                                lambda L, t: L.svd(t).S, lambda L, t: L.pinv(t)])
def test_a_matrix_alone_gives_its_bits_in_the_batch(fn):
    x = values((5, 4, 4), F32, 8) + 2 * np.eye(4, dtype=F32)
    whole = fn(cygrad.linalg, cygrad.tensor(x)).numpy()
    for i in (0, 3):
        alone = fn(cygrad.linalg, cygrad.tensor(x[i:i + 1])).numpy()
        assert np.array_equal(alone[0], whole[i])


def test_torch_level_names():
    """torch.norm(p='nuc'), torch.matrix_power / Tensor.matrix_power, torch.inverse."""
    a = values((2, 3, 3), F64, 3) + 2 * np.eye(3)
    diff(lambda m, t: m.norm(t, p="nuc", dim=(1, 2)), a, gradcheck=True)
    diff(lambda m, t: m.norm(t[0], p="nuc"), a)
    diff(lambda m, t: m.matrix_power(t, 3), a)
    diff(lambda m, t: t.matrix_power(-2), a)
    diff(lambda m, t: m.inverse(t), a)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_ex_forms(dtype):
    """cholesky_ex, inv_ex, solve_ex: the results and gradients of the matrices that
    succeed as the plain functions' (torch's), info as torch's (0, or LAPACK's index: the
    leading minor that is not positive-definite, the first zero pivot of the LU), torch's
    LinAlgError with check_errors=True; a failed matrix's result is NaN (torch's is
    undefined)."""
    torch = need_torch()
    good = spd((2, 3, 3), dtype, 1)
    diff(lambda m, t: m.linalg.cholesky_ex(t), good, gradcheck=False)
    diff(lambda m, t: m.linalg.inv_ex(t), good)
    diff(lambda m, t: m.linalg.solve_ex(t, t[..., 0]), good)
    diff(lambda m, t: m.linalg.cholesky_ex(t, upper=True).L, good)
    bad = np.array([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 0.0], [0.0, 3.0]],
                    [[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]], dtype)
    for name, args in (("cholesky_ex", ()), ("inv_ex", ()), ("solve_ex", (bad[..., 0],))):
        t = getattr(torch.linalg, name)(torch.tensor(bad), *map(torch.tensor, args))
        c = getattr(cygrad.linalg, name)(cygrad.tensor(bad), *map(cygrad.tensor, args))
        assert c.info.numpy().tolist() == t.info.numpy().tolist()
        assert c.info.dtype == cygrad.int32 and type(c).__name__ == type(t).__name__
        ok = t.info.numpy() == 0
        np.testing.assert_allclose(c[0].numpy()[ok], t[0].numpy()[ok], rtol=1e-5, atol=1e-6)
        assert np.isnan(c[0].numpy()[~ok]).all()
        for m in (torch, cygrad):
            with pytest.raises(RuntimeError, match="Batch element 0"):
                getattr(m.linalg, name)(m.tensor(bad), *map(m.tensor, args), check_errors=True)
    assert cygrad.linalg.cholesky_ex(cygrad.tensor(
        np.array([[4.0, 2, 1], [2, 1, 3], [1, 3, 2]], dtype))).info.item() == 2
    x = cygrad.tensor(bad, requires_grad=True)
    cygrad.linalg.inv_ex(x).inverse[1:3].sum().backward()  # the good matrices' gradient
    want = torch.tensor(bad[1:3], requires_grad=True)
    torch.linalg.inv(want).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[1:3], want.grad.numpy(), rtol=1e-5)


def test_missing_functions_name_themselves():
    for name in ("eig", "eigvals", "lu_factor", "householder_product", "ldl_factor"):
        with pytest.raises(NotImplementedError, match=f"linalg.{name}"):
            getattr(cygrad.linalg, name)
    with pytest.raises(AttributeError):
        cygrad.linalg.no_such_function  # noqa: B018
    assert "det" in cygrad.linalg.__all__ and not hasattr(cygrad.linalg, "MatMul")
