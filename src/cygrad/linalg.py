"""torch.linalg: norms, products and matrix functions under torch's names, signatures and
defaults.

Norms and products are made of cygrad's ops (the exact kernels; their gradients are those
ops'); the matrix functions (det, slogdet, inv, solve, solve_triangular, cholesky, qr, eigh,
eigvalsh, svd, svdvals, pinv and what is built on them) run LAPACK through numpy
(cygrad/ops/decompositions.py, with torch's gradients). A torch.linalg function cygrad lacks
raises NotImplementedError naming it.
"""

import math

import numpy as np

from ._return_types import return_type
from .ops import registry
from .ops.decompositions import (
    Cholesky,
    Constant,
    EighValues,
    EighVectors,
    Inv,
    LinAlgError,
    LogAbsDet,
    MatrixExp,
    NoDerivative,
    Pinv,
    Qr,
    Solve,
    SolveTriangular,
    Svd,
    SvdVals,
    _floating,
    _square,
)
from .ops.decompositions import det as _det
from .ops.extras import powers
from .ops.linalg import matmul
from .ops.reduction import _norm
from .tensor import Tensor, _wrap, apply

__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eigh",
           "eigvalsh", "inv", "inv_ex", "lstsq", "matmul", "matrix_exp", "matrix_norm",
           "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve",
           "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve", "vander",
           "vecdot", "vector_norm"]

slogdet_result = return_type("linalg_slogdet", ["sign", "logabsdet"])  # torch.return_types'
eigh_result = return_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
svd_result = return_type("linalg_svd", ["U", "S", "Vh"])
qr_result = return_type("linalg_qr", ["Q", "R"])
lstsq_result = return_type("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
cholesky_ex_result = return_type("linalg_cholesky_ex", ["L", "info"])
inv_ex_result = return_type("linalg_inv_ex", ["inverse", "info"])
solve_ex_result = return_type("linalg_solve_ex", ["result", "info"])

_MISSING = ("eig", "eigvals", "householder_product", "ldl_factor", "ldl_factor_ex",
            "ldl_solve", "lu", "lu_factor", "lu_factor_ex", "lu_solve")


def __getattr__(name):
    if name in _MISSING:
        raise NotImplementedError(f"cygrad does not implement torch.linalg.{name}")
    raise AttributeError(f"module 'cygrad.linalg' has no attribute '{name}'")


def _out(result, out):
    return result if out is None else out._write(result)


# ---------------------------------------------------------------------- norms

def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """The ord-norm of x's elements over dim (all of them by default): sum(|x|^ord)^(1/ord);
    inf / -inf the largest / smallest |x|, 0 the count of nonzeros."""
    if isinstance(ord, (str, bool)) or not isinstance(ord, (int, float)):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, "
                        f"not {type(ord).__name__}")
    return _out(_norm(x, ord, dim, keepdim, dtype), out)


def _matrix_dims(A, dim, where):
    if len(dim) != 2:
        raise RuntimeError(f"{where}: dim must be a 2-tuple. Got {' '.join(map(str, dim))}")
    nd = A._data.ndim
    if nd < 2:
        raise RuntimeError(f"{where}: The input tensor A must have at least 2 dimensions.")
    d0, d1 = (d + nd if d < 0 else d for d in dim)
    if not (0 <= d0 < nd and 0 <= d1 < nd):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}]"
                         f", but got {dim[0] if not 0 <= d0 < nd else dim[1]})")
    if d0 == d1:
        raise RuntimeError(f"{where}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    """The matrix norm over the two dims: 'fro' (default), 'nuc' (the sum of the singular
    values), inf / -inf (the largest / smallest row sum of |A|), 1 / -1 (column sums), 2 / -2
    (the largest / smallest singular value)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.matrix_norm(): argument 'A' must be Tensor, not "
                        f"{type(A).__name__}")
    _floating(A, "linalg.matrix_norm")
    d0, d1 = _matrix_dims(A, tuple(dim), "linalg.matrix_norm")
    x = A if dtype is None else A.type(dtype)
    if ord == "fro":
        return _out(_norm(x, 2, (d0, d1), keepdim, None), out)
    if ord in ("nuc", 2, -2):
        moved = x.movedim((d0, d1), (-2, -1))
        s = svdvals(moved)
        r = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        if keepdim:
            for d in sorted((d0, d1)):
                r = r.unsqueeze(d)
        return _out(r, out)
    if ord in (1, -1, math.inf, -math.inf):
        summed, picked = (d0, d1) if abs(ord) == 1 else (d1, d0)
        sums = x.abs().sum(summed, keepdim=True)
        r = sums.amax(picked, keepdim=True) if ord > 0 else sums.amin(picked, keepdim=True)
        return _out(r if keepdim else r.squeeze((d0, d1)), out)
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
    """vector_norm or matrix_norm, as torch.linalg.norm decides: an int dim (or ord and dim
    None: A flattened) is a vector norm, a 2-tuple dim (or ord given and A 2-D) a matrix
    norm."""
    if isinstance(dim, int) or (dim is not None and len(dim) == 1):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype, out=out)
    if dim is None and ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype, out=out)
    if dim is None:
        nd = A._data.ndim
        if nd == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype, out=out)
        if nd != 2:
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {nd}D.")
        dim = (-2, -1)
    if isinstance(ord, str) or len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype,
                           out=out)
    return vector_norm(A, ord, dim, keepdim, dtype=dtype, out=out)


# ---------------------------------------------------------------------- products

def vecdot(x, y, *, dim=-1, out=None):
    """sum(x * y) over dim, with broadcasting (real tensors: no conjugate)."""
    return _out((x * y).sum(dim), out)


def multi_dot(tensors, *, out=None):
    """The product of the matrices in order, in the order of multiplications that needs the
    fewest multiply-adds (torch's); the first may be 1-D (a row), the last 1-D (a column)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        nd = t._data.ndim
        if (i in (0, len(tensors) - 1) and nd not in (1, 2)) or \
                (0 < i < len(tensors) - 1 and nd != 2):
            which = "first" if i == 0 else ("last" if i == len(tensors) - 1 else None)
            raise RuntimeError(f"multi_dot(): the {which} tensor must be 1D or 2D but got {nd}D"
                               if which else f"multi_dot(): tensor {i} must be 2D but got "
                               f"{nd}D")
    first_1d, last_1d = tensors[0]._data.ndim == 1, tensors[-1]._data.ndim == 1
    if first_1d:
        tensors[0] = tensors[0].unsqueeze(0)
    if last_1d:
        tensors[-1] = tensors[-1].unsqueeze(1)
    for i in range(len(tensors) - 1):
        if tensors[i]._data.shape[1] != tensors[i + 1]._data.shape[0]:
            a, b = tensors[i]._data.shape, tensors[i + 1]._data.shape
            raise RuntimeError(f"multi_dot(): tensors {i} and {i + 1} with shapes ({a[0]}, "
                               f"{a[1]}) and ({b[0]}, {b[1]}) cannot be multiplied")
    dims = [t._data.shape[0] for t in tensors] + [tensors[-1]._data.shape[1]]
    n = len(tensors)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def chain(i, j):
        if i == j:
            return tensors[i]
        k = split[i][j]
        return matmul(chain(i, k), chain(k + 1, j))

    result = chain(0, n - 1)
    if first_1d:
        result = result.squeeze(0)
    if last_1d:
        result = result.squeeze(-1)
    return _out(result, out)


def matrix_power(A, n, *, out=None):
    """A to the integer power n by repeated squaring (n = 0: the identity; n < 0: inv(A)
    to -n)."""
    _square(A, "linalg.matrix_power")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"linalg_matrix_power(): argument 'n' must be int, not "
                        f"{type(n).__name__}")
    if n == 0:
        eye = np.broadcast_to(np.eye(A._data.shape[-1], dtype=A._data.dtype), A._data.shape)
        return _out(apply(Constant, A, value=eye.copy(), zeros=True), out)
    base = inv(A) if n < 0 else A
    n = abs(n)
    result = None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return _out(result, out)


def cross(input, other, *, dim=-1, out=None):
    """The cross product of 3-vectors along dim (broadcasting the other dims)."""
    x, y = registry.FUNCTIONS["broadcast_tensors"](input, other)
    nd = x._data.ndim
    d = dim + nd if dim < 0 else dim
    if not 0 <= d < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, "
                         f"{nd - 1}], but got {dim})")
    if x._data.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input._data.shape[d] if input._data.ndim == nd else 3} and "
                           f"{other._data.shape[d] if other._data.ndim == nd else 3}")
    a = [x.select(d, i) for i in range(3)]
    b = [y.select(d, i) for i in range(3)]
    parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return _out(registry.FUNCTIONS["stack"](parts, d), out)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """A's diagonals over the last two dims (torch.diagonal with linalg's defaults)."""
    return A.diagonal(offset, dim1, dim2)


# ---------------------------------------------------------------------- matrix functions

def det(A, *, out=None):
    """The determinant of each square matrix of A (..., n, n)."""
    return _out(_det(A), out)


def slogdet(A, *, out=None):
    """(sign, log|det|) of each square matrix (sign 0 and -inf for a singular one)."""
    _square(A, "linalg.slogdet")
    sign = np.sign(np.linalg.det(A._data)).astype(A._data.dtype)
    result = slogdet_result(apply(Constant, A, value=sign), apply(LogAbsDet, A))
    return _tuple_out(result, out, slogdet_result)


def inv(A, *, out=None):
    """The inverse of each square matrix (LinAlgError for a singular one)."""
    _square(A, "linalg.inv")
    return _out(apply(Inv, A), out)


def solve(A, B, *, left=True, out=None):
    """X with A X = B (left) or X A = B; B (..., n, k) or, as torch decides, a vector
    (..., n) when B is 1-D or B's shape is A's without the last dim; batch dims broadcast."""
    _square(A, "linalg.solve")
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve(): argument 'B' (position 2) must be Tensor, not "
                        f"{type(B).__name__}")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found "
                           f"A of type {_name(A)} and B of type {_name(B)} instead")
    if not left:
        return _out(solve(A.mT, B.mT).mT, out)
    vector = B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1
                                   and B._data.shape == A._data.shape[:-1])
    b = B.unsqueeze(-1) if vector else B
    n = A._data.shape[-1]
    if b._data.shape[-2] != n:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX "
                           f"= B ({A._data.shape[-2]}x{n} and {b._data.shape[-2]}x"
                           f"{b._data.shape[-1]})")
    x = apply(Solve, A, b)
    return _out(x.squeeze(-1) if vector else x, out)


def _name(t):
    return {"float32": "float", "float64": "double"}.get(t._data.dtype.name, t._data.dtype.name)


def cholesky(A, *, upper=False, out=None):
    """L with A = L L^T (lower; upper=True: L^T), for symmetric positive-definite A."""
    _square(A, "linalg.cholesky")
    low = apply(Cholesky, A)
    return _out(low.mT if upper else low, out)


def _uplo(UPLO, where):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"{where}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO


def eigvalsh(A, UPLO="L", *, out=None):
    """The eigenvalues of symmetric A (read from its lower or upper triangle), ascending."""
    _square(A, "linalg.eigvalsh")
    w, v = np.linalg.eigh(A._data, UPLO=_uplo(UPLO, "linalg.eigvalsh"))
    return _out(apply(EighValues, A, w=w, v=v), out)


def eigh(A, UPLO="L", *, out=None):
    """(eigenvalues ascending, eigenvectors as columns) of symmetric A. Each eigenvector's
    sign is LAPACK's: torch's may differ by a sign (so may its gradient's parts that depend on
    it); a loss invariant to the signs gets torch's gradient."""
    _square(A, "linalg.eigh")
    w, v = np.linalg.eigh(A._data, UPLO=_uplo(UPLO, "linalg.eigh"))
    result = eigh_result(apply(EighValues, A, w=w, v=v), apply(EighVectors, A, w=w, v=v))
    return _tuple_out(result, out, eigh_result)


def svdvals(A, *, driver=None, out=None):
    """The singular values of each matrix of A (..., m, n), descending (driver: CUDA only in
    torch; ignored)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.svdvals(): argument 'A' (position 1) must be Tensor, not "
                        f"{type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    _floating(A, "linalg.svd")
    return _out(apply(SvdVals, A), out)


def _tuple_out(result, out, kind):
    if out is None:
        return result
    for o, r in zip(out, result):
        o._write(r)
    return kind(*out)


def svd(A, full_matrices=True, *, driver=None, out=None):
    """(U, S, Vh) with A = U diag(S) Vh, S descending; full_matrices: U (m, m) and Vh (n, n),
    else (m, k) and (k, n), k = min(m, n). Gradients as torch's: through the first k columns
    of U and rows of Vh only, finite where the singular values are distinct; each singular
    vector's sign is LAPACK's (torch's may differ: a loss that does not see the signs gets
    torch's gradient)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.svd(): argument 'A' (position 1) must be Tensor, not "
                        f"{type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    _floating(A, "linalg.svd")
    a = A._data
    m, n = a.shape[-2:]
    k = min(m, n)
    u, s, vh = np.linalg.svd(a, full_matrices=bool(full_matrices))
    packed = apply(Svd, A, u=np.ascontiguousarray(u[..., :, :k]), s=s,
                   vh=np.ascontiguousarray(vh[..., :k, :]))
    U, S, Vh = packed[..., :m, :], packed[..., m, :], packed[..., m + 1:, :].mT
    cat = registry.FUNCTIONS["cat"]
    if full_matrices and m > k:  # the columns beyond k: no gradient (torch ignores theirs)
        U = cat([U, _wrap(np.ascontiguousarray(u[..., :, k:]))], -1)
    if full_matrices and n > k:
        Vh = cat([Vh, _wrap(np.ascontiguousarray(vh[..., k:, :]))], -2)
    return _tuple_out(svd_result(U, S, Vh), out, svd_result)


def qr(A, mode="reduced", *, out=None):
    """(Q, R) with A = QR, Q's columns orthonormal, R upper triangular (LAPACK's signs, as
    torch's); mode 'reduced' (k = min(m, n) columns), 'complete' (Q square) or 'r' (R alone:
    Q empty). No gradient through mode 'r', nor 'complete' with more rows than columns
    (torch's RuntimeError)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.qr(): argument 'A' (position 1) must be Tensor, not "
                        f"{type(A).__name__}")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           f"'reduced' (default), 'r', or 'complete'")
    if A._data.ndim < 2:
        raise RuntimeError("linalg.qr: The input tensor A must have at least 2 dimensions.")
    _floating(A, "linalg.qr")
    m, n = A._data.shape[-2:]
    k = min(m, n)
    if mode == "reduced" or (mode == "complete" and m <= n):
        packed = apply(Qr, A)
        result = qr_result(packed[..., :m, :k], packed[..., m:, :n])
    elif mode == "r":
        r = np.linalg.qr(A._data, mode="r")
        message = ("The derivative of linalg.qr depends on Q, which is not computed when "
                   "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                   "differentiate through linalg.qr.")
        result = qr_result(*(apply(NoDerivative, A, value=v, error=RuntimeError,
                                   message=message) for v in (np.zeros(0, A._data.dtype), r)))
    else:
        q, r = np.linalg.qr(A._data, mode="complete")
        message = ("The QR decomposition is not differentiable when mode='complete' and "
                   "nrows > ncols.")
        result = qr_result(*(apply(NoDerivative, A, value=v, error=RuntimeError,
                                   message=message) for v in (q, r)))
    return _tuple_out(result, out, qr_result)


def _tolerance(s, shape, atol, rtol, dtype):
    """torch's threshold on singular values: max(atol, rtol * s_max); rtol's default eps *
    max(m, n) when neither is given, 0 when atol alone is."""
    if rtol is None:
        rtol = 0.0 if atol is not None and _positive(atol) else \
            float(np.finfo(dtype).eps) * max(shape[-2:])
    a = 0.0 if atol is None else (atol._data if isinstance(atol, Tensor) else atol)
    r = rtol._data if isinstance(rtol, Tensor) else rtol
    top = s.max(-1) if s.shape[-1] else np.zeros(s.shape[:-1], s.dtype)
    return np.maximum(a, r * top)


def _positive(x):
    return np.any(np.asarray(x._data if isinstance(x, Tensor) else x) > 0)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """The number of singular values (eigenvalues' magnitudes with hermitian) above torch's
    tolerance, int64."""
    _floating(A, "linalg.matrix_rank")
    a = A._data
    s = np.abs(np.linalg.eigvalsh(a)) if hermitian else np.linalg.svd(a, compute_uv=False)
    tol = _tolerance(s, a.shape, atol, rtol, a.dtype)
    return _out(_wrap((s > np.asarray(tol)[..., None]).sum(-1).astype(np.int64)), out)


def pinv(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """The pseudoinverse: V diag(1/s) U^T over the singular values above torch's tolerance
    (hermitian: V diag(1/w) V^T from eigh, over |w|); torch's gradient (constant rank)."""
    _floating(A, "linalg.pinv")
    a = A._data
    if hermitian:
        w, v = np.linalg.eigh(a)
        keep = np.abs(w) > np.asarray(_tolerance(np.abs(w), a.shape, atol, rtol,
                                                 a.dtype))[..., None]
        with np.errstate(divide="ignore"):
            inv_w = np.where(keep, 1 / w, 0).astype(a.dtype)
        value = (v * inv_w[..., None, :]) @ np.swapaxes(v, -1, -2)
    else:
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        keep = s > np.asarray(_tolerance(s, a.shape, atol, rtol, a.dtype))[..., None]
        with np.errstate(divide="ignore"):
            inv_s = np.where(keep, 1 / s, 0).astype(a.dtype)
        value = (np.swapaxes(vh, -1, -2) * inv_s[..., None, :]) @ np.swapaxes(u, -1, -2)
    return _out(apply(Pinv, A, value=np.ascontiguousarray(value, a.dtype)), out)


def cond(A, p=None, *, out=None):
    """The condition number: s_max / s_min for p None or 2 (-2: the inverse ratio), else
    matrix_norm(A, p) * matrix_norm(inv(A), p) (square A)."""
    if p in (None, 2, -2):
        s = svdvals(A)
        r = s.amax(-1) / s.amin(-1) if p != -2 else s.amin(-1) / s.amax(-1)
        return _out(r, out)
    _square(A, "linalg.cond")
    return _out(matrix_norm(A, p) * matrix_norm(inv(A), p), out)


def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    """X with T X = B (left) or X T = B, T the upper or lower triangle of A (its diagonal
    taken as ones with unitriangular); batch dims broadcast."""
    _square(A, "linalg.solve_triangular")
    if not isinstance(B, Tensor) or B._data.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 "
                           "dimensions.")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"linalg.solve_triangular: Expected A and B to have the same dtype,"
                           f" but found A of type {_name(A)} and B of type {_name(B)} instead")
    if not left:
        return _out(solve_triangular(A.mT, B.mT, upper=not upper,
                                     unitriangular=unitriangular).mT, out)
    if B._data.shape[-2] != A._data.shape[-1]:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the "
                           f"equation AX = B ({A._data.shape[-2]}x{A._data.shape[-1]} and "
                           f"{B._data.shape[-2]}x{B._data.shape[-1]})")
    return _out(apply(SolveTriangular, A, B, upper=bool(upper), unit=bool(unitriangular)),
                out)


def matrix_exp(A):
    """exp(A) of each square matrix (scaling and squaring, the [13/13] Pade approximant, in
    float64); its gradient by the block-triangular trick."""
    _square(A, "linalg.matrix_exp")
    return apply(MatrixExp, A)


def vander(x, *, N=None):
    """The Vandermonde matrix of x (..., n): columns x^0, x^1, ..., x^(N-1) (N = n by
    default), increasing powers as torch's (not numpy's)."""
    count = (x._data.shape[-1] if x._data.ndim else 1) if N is None else N
    if count <= 1:
        raise RuntimeError("N must be greater than 1.")
    return powers(x, count)


def tensorinv(A, ind=2, *, out=None):
    """The inverse of A as a map from its first `ind` dims to the rest: inv of A reshaped
    to (prod(shape[:ind]), prod(shape[ind:])), shaped shape[ind:] + shape[:ind]."""
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    shape = tuple(A._data.shape)
    rows, cols = math.prod(shape[:ind]), math.prod(shape[ind:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) "
                           f"== prod(self.shape[:ind]), but got {cols} != {rows}")
    return _out(inv(A.reshape(rows, cols)).reshape(shape[ind:] + shape[:ind]), out)


def tensorsolve(A, B, dims=None, *, out=None):
    """X with tensordot(A, X, X.ndim) = B: A's dims in `dims` moved last first, then A seen
    as a (B.numel(), rest) square matrix."""
    if dims is not None:
        moved = [d % A._data.ndim for d in dims]
        A = A.movedim(moved, list(range(A._data.ndim - len(moved), A._data.ndim)))
    rest = tuple(A._data.shape[B._data.ndim:])
    rows, cols = B._data.size, math.prod(rest)
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement "
                           f"prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), "
                           f"but got {cols} != {rows}")
    return _out(solve(A.reshape(rows, cols), B.reshape(rows)).reshape(rest), out)


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution X of A X = B (the minimum-norm one for a rank-deficient A:
    pinv(A) B, singular values below rcond * s_max, rcond by default eps * max(m, n)), with
    the extras torch's driver returns: residuals (||A X - B||^2 per column: gels, and gelsd /
    gelss when m > n and every matrix has full rank; empty otherwise), rank (gelsy, the CPU
    default, gelsd, gelss) and singular values (gelsd, gelss). Its gradient is torch's (that of
    pinv(A) B); the values agree with LAPACK's solvers to rounding."""
    drivers = (None, "gels", "gelsy", "gelsd", "gelss")
    if driver not in drivers:
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, "
                           "gelsy, gelsd, gelss)")
    for name, t in (("self", A), ("b", B)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linalg_lstsq(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if not (A._data.ndim >= B._data.ndim and A._data.ndim - B._data.ndim <= 1):
        raise RuntimeError("torch.linalg.lstsq: input.dim() must be greater or equal to "
                           "other.dim() and (input.dim() - other.dim()) <= 1")
    if A._data.ndim < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    _floating(A, "linalg.lstsq")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same "
                           f"dtype, but got input's dtype {_name(A)} and other's dtype "
                           f"{_name(B)}")
    vector = A._data.ndim == B._data.ndim + 1
    b = B.unsqueeze(-1) if vector else B
    m, n = A._data.shape[-2:]
    if b._data.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2)"
                           f" (got {m} and {b._data.shape[-2]})")
    rtol = rcond if rcond is not None and rcond > 0 else None
    x = matmul(pinv(A, rtol=rtol), b)
    a = A._data
    s = np.linalg.svd(a, compute_uv=False)
    ranks = (s > np.asarray(_tolerance(s, a.shape, None, rtol, a.dtype))[..., None]).sum(-1)
    chosen = driver or "gelsy"
    empty = apply(Constant, A, value=np.zeros(0, a.dtype))  # (marked as torch's)
    rank = _wrap(ranks.astype(np.int64)) if chosen != "gels" else _wrap(np.zeros(0, np.int64))
    values = _wrap(s if chosen in ("gelsd", "gelss") else np.zeros(0, a.dtype))
    residuals = empty
    if m > n and (chosen == "gels" or (chosen in ("gelsd", "gelss") and np.all(ranks == n))):
        residuals = (matmul(A, x) - b).pow(2).sum(-2)
    return lstsq_result(x.squeeze(-1) if vector else x, residuals, rank, values)


# ---------------------------------------------------------------------- the _ex forms
# torch's info: 0 for a matrix that succeeded, else LAPACK's (potrf: the order of the first
# leading minor that is not positive-definite; getrf: the first zero pivot of the LU with
# partial pivoting, 1-based). A failed matrix's result is undefined in torch (LAPACK's
# partial work); here it is NaN.

def _pivot_info(a):
    """The first zero pivot (1-based) of a's LU with partial pivoting, or 0."""
    a = np.array(a, np.float64)
    n = a.shape[0]
    for k in range(n):
        p = k + int(np.argmax(np.abs(a[k:, k])))
        if a[p, k] == 0:
            return k + 1
        a[[k, p]] = a[[p, k]]
        a[k + 1:, k] /= a[k, k]
        a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
    return 0


def _minor_info(a):
    """The order of a's first leading minor that is not positive-definite, or 0."""
    for k in range(1, a.shape[0] + 1):
        try:
            np.linalg.cholesky(a[:k, :k])
        except np.linalg.LinAlgError:
            return k
    return 0


def _infos(a, check):
    """check (_pivot_info or _minor_info) on each matrix of a, as int32 of a's batch shape;
    numpy's own factorization first (one call for the stack: nothing more when it succeeds)."""
    try:
        (np.linalg.cholesky if check is _minor_info else np.linalg.inv)(a)
        return np.zeros(a.shape[:-2], np.int32)
    except np.linalg.LinAlgError:
        flat = a.reshape((-1,) + a.shape[-2:])
        return np.array([check(m) for m in flat], np.int32).reshape(a.shape[:-2])


def _ex(A, info, run, where, message, check_errors):
    """run(A') on A with its failed matrices replaced by the identity, those results NaN."""
    if check_errors and np.any(info):
        first = int(np.flatnonzero(info.reshape(-1))[0])
        batch = f"(Batch element {first}): " if A._data.ndim > 2 else ""
        raise LinAlgError(f"{where}: {batch}{message.format(int(info.reshape(-1)[first]))}")
    bad = info != 0
    if not np.any(bad):
        return run(A)
    eye = np.broadcast_to(np.eye(A._data.shape[-1], dtype=A._data.dtype), A._data.shape)
    mask = _wrap(np.broadcast_to(bad[..., None, None], A._data.shape).copy())
    result = run(registry.FUNCTIONS["where"](mask, _wrap(eye.copy()), A))
    nan = _wrap(np.array(np.nan, A._data.dtype))
    shaped = bad.reshape(bad.shape + (1,) * (result.dim() - bad.ndim))
    return registry.FUNCTIONS["where"](_wrap(shaped), nan, result)


def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    """(L, info): cholesky without raising; info as torch's (module notes above)."""
    _square(A, "linalg.cholesky_ex")
    a = A._data if not upper else np.swapaxes(A._data, -1, -2)
    info = _infos(np.tril(a) + np.swapaxes(np.tril(a, -1), -1, -2), _minor_info)
    low = _ex(A, info, lambda x: cholesky(x, upper=upper), "linalg.cholesky_ex",
              "The factorization could not be completed because the input is not "
              "positive-definite (the leading minor of order {} is not positive-definite).",
              check_errors)
    return _tuple_out(cholesky_ex_result(low, _wrap(info)), out, cholesky_ex_result)


def inv_ex(A, *, check_errors=False, out=None):
    """(inverse, info): inv without raising; info as torch's (module notes above)."""
    _square(A, "linalg.inv_ex")
    info = _infos(A._data, _pivot_info)
    y = _ex(A, info, inv, "linalg.inv_ex", "The diagonal element {} is zero, the inversion "
            "could not be completed because the input matrix is singular.", check_errors)
    return _tuple_out(inv_ex_result(y, _wrap(info)), out, inv_ex_result)


def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    """(result, info): solve without raising; info as torch's (module notes above)."""
    _square(A, "linalg.solve_ex")
    info = _infos(A._data, _pivot_info)
    x = _ex(A, info, lambda a: solve(a, B, left=left), "linalg.solve_ex",
            "The solver failed because the input matrix is singular.", check_errors)
    return _tuple_out(solve_ex_result(x, _wrap(info)), out, solve_ex_result)
