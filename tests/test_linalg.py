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


@pytest.mark.parametrize("fn", [lambda L, t: L.det(t), lambda L, t: L.inv(t),
                                lambda L, t: L.solve(t, t[..., 0]), lambda L, t: L.svdvals(t),
                                lambda L, t: L.eigvalsh(t @ t.mT),
                                lambda L, t: L.matrix_norm(t, "nuc")])
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


def test_missing_functions_name_themselves():
    for name in ("qr", "svd", "lstsq", "pinv", "eig", "matrix_exp"):
        with pytest.raises(NotImplementedError, match=f"linalg.{name}"):
            getattr(cygrad.linalg, name)
    with pytest.raises(AttributeError):
        cygrad.linalg.no_such_function  # noqa: B018
    assert "det" in cygrad.linalg.__all__ and not hasattr(cygrad.linalg, "MatMul")
