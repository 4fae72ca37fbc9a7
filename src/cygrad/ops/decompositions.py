"""Matrix functions through LAPACK (numpy.linalg): det, slogdet, inv, solve, solve_triangular,
cholesky, qr, eigh, eigvalsh, svd, svdvals, pinv, each with torch's gradient. Inputs are
(..., n, n) (qr, svd, pinv: (..., m, n)) float32 or float64 stacks; numpy loops over the
stack, one LAPACK call a matrix, so a matrix gets the same result at any position in any
batch. These do not run cygrad's exact kernels: LAPACK's blocked algorithms order their sums
by size (README: departures).

The backward rules are torch's (FunctionsManual.cpp), for real inputs.
"""

import numpy as np

from .._return_types import return_type
from ..tensor import Tensor, _wrap, apply
from . import Op, registry
from .registry import export


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a matrix function's input is singular or not positive
    definite."""


def _square(x, where):
    """x a float tensor of at least 2 dims whose last two are equal; torch's errors."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}(): argument 'A' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    a = x._data
    if a.ndim < 2:
        raise RuntimeError(f"{where}: The input tensor A must have at least 2 dimensions.")
    if a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{where}: A must be batches of square matrices, but they are "
                           f"{a.shape[-2]} by {a.shape[-1]} matrices")
    _floating(x, where)


def _floating(x, where):
    if x._data.dtype.kind != "f":
        name = {"i": "Long", "u": "Byte", "b": "Bool"}.get(x._data.dtype.kind, "Long")
        raise RuntimeError(f"{where}: Expected a floating point or complex tensor as input. "
                           f"Got {name}")


def _mT(a):
    return np.swapaxes(a, -1, -2)


def _reduce_to(g, shape):
    """g summed over the dims broadcasting added (to a batch of that shape)."""
    while g.ndim > len(shape):
        g = g.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdims=True)
    return g


# ---------------------------------------------------------------------- determinants

class Det(Op):
    """y = det(A)"""

    rule = "dA = g * adj(A).T = g * det(U Vh) * U diag(prod_{j != i} s_j) Vh  (A = U S Vh: " \
           "also for singular A)"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return np.linalg.det(a).astype(a.dtype)

    def backward(self, g):
        u, s, vh = np.linalg.svd(self.a)
        n = s.shape[-1]
        others = np.stack([np.prod(np.delete(s, i, axis=-1), axis=-1) for i in range(n)], -1) \
            if n > 1 else np.ones_like(s)
        sign = np.linalg.det(u) * np.linalg.det(vh)
        adj_t = (u * others[..., None, :]) @ vh * sign[..., None, None]
        return ((g[..., None, None] * adj_t).astype(self.a.dtype),)


class Constant(Op):
    """`value`, computed by the caller, as a function of the input that torch marks as
    requiring a gradient but whose gradient is zero: slogdet's sign (torch passes none back),
    A to the power 0 (`zeros`: torch passes back zeros, of A's shape)."""

    rule = "dA = 0 (piecewise constant)"

    def forward(self, a):
        return self.value

    def backward(self, g):
        return (np.zeros_like(self.value) if self.__dict__.get("zeros") else None,)


class LogAbsDet(Op):
    """y = log |det(A)|"""

    rule = "dA = g * inv(A).T"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return np.linalg.slogdet(a)[1].astype(a.dtype)

    def backward(self, g):
        return ((g[..., None, None] * _mT(np.linalg.inv(self.a))).astype(self.a.dtype),)


@export("det", method=True)
def det(input):
    """The determinant of each square matrix of input (..., n, n)."""
    _square(input, "linalg.det")
    return apply(Det, input)


_slogdet_result = return_type("slogdet", ["sign", "logabsdet"])


@export("slogdet", method=True)
def slogdet(input):
    """(sign, log|det|) of each square matrix (torch.slogdet: linalg.slogdet's values)."""
    from ..linalg import slogdet as _slogdet

    return _slogdet_result(*_slogdet(input))


@export("logdet", method=True)
def logdet(input):
    """log(det(input)): NaN where the determinant is negative, -inf where it is 0."""
    _square(input, "logdet")
    out = apply(LogAbsDet, input)
    sign = np.sign(np.linalg.det(input._data))
    if np.any(sign <= 0):
        bad = np.where(sign < 0, np.nan, -np.inf).astype(input._data.dtype)
        out = registry.FUNCTIONS["where"](_wrap(sign > 0), out, _wrap(bad))
    return out


# ---------------------------------------------------------------------- inverse, solve

def _singular(where):
    return LinAlgError(f"{where}: The diagonal element of the LU factorization is zero: the "
                       f"input matrix is singular, so it cannot be inverted or solved with")


class Inv(Op):
    """Y = inv(A)"""

    rule = "dA = -Y.T @ g @ Y.T"
    saves_output = True

    def forward(self, a):
        try:
            self.y = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise _singular("linalg.inv") from None
        return self.y

    def backward(self, g):
        yt = _mT(self.y)
        return (-(yt @ g @ yt),)


class Solve(Op):
    """X = solve(A, B): A X = B, B (..., n, k) (the vector case made a column before)"""

    rule = "dB = solve(A.T, g);  dA = -dB @ X.T  (each summed over broadcast batch dims)"
    saves = (0,)
    saves_output = True

    def forward(self, a, b):
        self.a = a
        try:
            self.x = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            raise _singular("linalg.solve") from None
        self.shapes = (a.shape, b.shape)
        return self.x

    def backward(self, g):
        gb = np.linalg.solve(_mT(self.a), g)
        ga = -(gb @ _mT(self.x))
        return _reduce_to(ga, self.shapes[0]), _reduce_to(gb, self.shapes[1])


# ---------------------------------------------------------------------- factorizations

class Cholesky(Op):
    """L = cholesky(A), lower"""

    rule = "phi = tril(L.T @ gL) with its diagonal halved;  dA = sym(inv(L).T @ phi @ inv(L))"
    saves_output = True

    def forward(self, a):
        try:
            self.l_ = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.cholesky: The factorization could not be completed "
                              "because the input is not positive-definite.") from None
        return self.l_

    def backward(self, g):
        low = self.l_
        phi = np.tril(_mT(low) @ g)
        idx = np.arange(phi.shape[-1])
        phi[..., idx, idx] *= 0.5
        linv = np.linalg.inv(low)
        ga = _mT(linv) @ phi @ linv
        return ((ga + _mT(ga)) * ga.dtype.type(0.5),)


class EighValues(Op):
    """w = eigvalsh(A) (ascending; `w`, `v`: numpy's eigh, computed once for both outputs)"""

    rule = "dA = V diag(g) V.T"

    def forward(self, a):
        return self.w

    def backward(self, g):
        v = self.v
        return ((v * g[..., None, :]) @ _mT(v),)


class EighVectors(Op):
    """V = eigh(A)'s eigenvectors (the columns; `w`, `v` as EighValues)"""

    rule = "dA = V (skew(V.T g) / E) V.T,  E_ij = w_j - w_i,  skew(X) = (X - X.T) / 2  (torch's)"

    def forward(self, a):
        return self.v

    def backward(self, g):
        w, v = self.w, self.v
        vgv = _mT(v) @ g
        skew = (vgv - _mT(vgv)) * vgv.dtype.type(0.5)
        e = w[..., None, :] - w[..., :, None]
        idx = np.arange(w.shape[-1])
        e[..., idx, idx] = 1
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = skew / e
        inner[..., idx, idx] = 0
        return (v @ inner @ _mT(v),)


class SvdVals(Op):
    """s = svdvals(A) (descending)"""

    rule = "dA = U diag(g) Vh  (the thin SVD)"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return np.linalg.svd(a, compute_uv=False)

    def backward(self, g):
        u, _, vh = np.linalg.svd(self.a, full_matrices=False)
        return ((u * g[..., None, :]) @ vh,)


@export("inverse", method=True)
def inverse(input):
    """torch.inverse: linalg.inv."""
    from ..linalg import inv

    return inv(input)


@export("matrix_power", method=True)
def matrix_power(input, n):
    """torch.matrix_power: linalg.matrix_power."""
    from ..linalg import matrix_power as _matrix_power

    return _matrix_power(input, n)


# ---------------------------------------------------------------------- svd, qr

def _inv_gaps(s2):
    """F_ij = 1 / (s2_j - s2_i) off the diagonal, 0 on it (s2: (..., k))."""
    gaps = s2[..., None, :] - s2[..., :, None]
    idx = np.arange(s2.shape[-1])
    gaps[..., idx, idx] = 1
    with np.errstate(divide="ignore"):
        f = 1 / gaps
    f[..., idx, idx] = 0
    return f


class Svd(Op):
    """(U, S, Vh) = svd(A), thin (k = min(m, n)): one op, its output U, S and Vh side by side
    in one array (..., m + 1 + n, k) that linalg.svd splits, so that backward sees the three
    gradients together."""

    rule = "dA = U [(F o (U.T gU - gU.T U)) S + diag(gS) + S (F o (V.T gV - gV.T V))] V.T " \
           "+ (I - U U.T) gU S^-1 V.T + U S^-1 gV.T (I - V V.T),  F_ij = 1/(s_j^2 - s_i^2)"

    def forward(self, a):  # (u, s, vh: numpy's svd, thin, computed by the caller)
        return np.concatenate([self.u, self.s[..., None, :], _mT(self.vh)], axis=-2)

    def backward(self, g):
        u, s, v = self.u, self.s, _mT(self.vh)
        m, k = u.shape[-2], s.shape[-1]
        gu, gs, gv = g[..., :m, :], g[..., m, :], g[..., m + 1:, :]
        idx = np.arange(k)
        inner = np.zeros(s.shape + (k,), s.dtype)
        inner[..., idx, idx] = gs
        with_u, with_v = bool(np.any(gu)), bool(np.any(gv))  # (terms of a zero gradient
        utgu, vtgv = _mT(u) @ gu, _mT(v) @ gv  # are left out: F is inf at a repeated value)
        if with_u or with_v:
            f = _inv_gaps(s * s)
            if with_u:
                inner = inner + f * (utgu - _mT(utgu)) * s[..., None, :]
            if with_v:
                inner = inner + s[..., :, None] * (f * (vtgv - _mT(vtgv)))
        ga = u @ inner @ _mT(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_s = 1 / s
        if m > k and with_u:  # the part of gU outside U's span
            ga = ga + ((gu - u @ utgu) * inv_s[..., None, :]) @ _mT(v)
        if v.shape[-2] > k and with_v:
            ga = ga + (u * inv_s[..., None, :]) @ _mT(gv - v @ vtgv)
        return (ga,)


class Qr(Op):
    """(Q, R) = qr(A), reduced: Q (..., m, k) and R (..., k, n) side by side in one array
    (..., m + k, max(k, n)) that linalg.qr splits (Q's columns padded), k = min(m, n)"""

    rule = "m >= n: M = R gR.T - gQ.T Q;  dA = (gQ + Q copyltu(M)) R^-T;  m < n: A = [X | Y], " \
           "dY = Q gR_Y, dX from the square case with gQ + Y gR_Y.T"

    def forward(self, a):
        q, r = np.linalg.qr(a, mode="reduced")
        self.q, self.r = q, r
        m, k, n = q.shape[-2], q.shape[-1], r.shape[-1]
        width = max(k, n)
        out = np.zeros(a.shape[:-2] + (m + k, width), a.dtype)
        out[..., :m, :k] = q
        out[..., m:, :n] = r
        return out

    @staticmethod
    def _square(q, r, gq, gr):
        """gA for A = QR with R square (..., k, k)."""
        mm = r @ _mT(gr) - _mT(gq) @ q
        low = np.tril(mm, -1)
        sym = low + _mT(low) + np.tril(np.triu(mm))  # copyltu: the lower triangle mirrored
        b = gq + q @ sym
        return _mT(np.linalg.solve(r, _mT(b)))  # b R^-T

    def backward(self, g):
        q, r = self.q, self.r
        m, k, n = q.shape[-2], q.shape[-1], r.shape[-1]
        gq, gr = g[..., :m, :k], g[..., m:, :n]
        if m >= n:
            return (self._square(q, r, gq, gr),)
        # A = [X | Y], R = [Rx | Ry]: X = Q Rx, Y = Q Ry (torch's linalg_qr_backward)
        y = q @ r[..., :, m:]
        gx = self._square(q, r[..., :, :m], gq + y @ _mT(gr[..., :, m:]), gr[..., :, :m])
        return (np.concatenate([gx, q @ gr[..., :, m:]], axis=-1),)


class NoDerivative(Op):
    """`value`, computed by the caller, whose derivative torch does not have: marked as
    requiring a gradient (as torch's), backward raises `error` with torch's `message`."""

    rule = "none: backward raises (torch's)"

    def forward(self, a):
        return self.value

    def backward(self, g):
        raise self.error(self.message)


class SolveTriangular(Op):
    """X = solve_triangular(A, B): T X = B, T A's upper or lower triangle (its diagonal ones
    with `unit`)"""

    rule = "dB = solve(T.T, g);  dA = -dB @ X.T on T's triangle (off its diagonal with unit)"
    saves_output = True

    def _mask(self, a):
        t = np.triu(a) if self.upper else np.tril(a)
        if self.unit:
            idx = np.arange(a.shape[-1])
            t[..., idx, idx] = 1
        return t

    def forward(self, a, b):
        self.t = self._mask(a)
        self.shapes = (a.shape, b.shape)
        try:
            self.x = np.linalg.solve(self.t, b)
        except np.linalg.LinAlgError:
            raise _singular("linalg.solve_triangular") from None
        return self.x

    def backward(self, g):
        gb = np.linalg.solve(_mT(self.t), g)
        ga = -(gb @ _mT(self.x))
        ga = np.triu(ga, 1 if self.unit else 0) if self.upper else \
            np.tril(ga, -1 if self.unit else 0)
        return _reduce_to(ga, self.shapes[0]), _reduce_to(gb, self.shapes[1])


class Pinv(Op):
    """P = pinv(A) (`value`, computed by the caller from the SVD or eigh above the
    tolerance)"""

    rule = "dA = -P.T g P.T + (I - A P) g.T P P.T + P.T P g.T (I - P A)  (constant rank; " \
           "torch's)"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return self.value

    def backward(self, g):
        a, p = self.a, self.value
        pt, gt = _mT(p), _mT(g)
        m, n = a.shape[-2], a.shape[-1]
        left = np.eye(m, dtype=a.dtype) - a @ p
        right = np.eye(n, dtype=a.dtype) - p @ a
        return (-(pt @ g @ pt) + left @ gt @ p @ pt + pt @ p @ gt @ right,)


# ---------------------------------------------------------------------- matrix exponential

_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)


def _expm(a):
    """exp of each square matrix of a (float64 arithmetic): Higham's scaling and squaring with
    the [13/13] Pade approximant, the scaling chosen per matrix."""
    out = np.empty(a.shape, np.float64)
    n = a.shape[-1]
    eye = np.eye(n)
    b = _PADE13
    for index in np.ndindex(a.shape[:-2]):
        x = a[index].astype(np.float64)
        norm1 = np.abs(x).sum(0).max() if n else 0.0
        s = max(0, int(np.ceil(np.log2(norm1 / 5.371920351148152)))) if norm1 > 0 else 0
        x = x / 2.0 ** s
        x2 = x @ x
        x4 = x2 @ x2
        x6 = x4 @ x2
        u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4
                 + b[3] * x2 + b[1] * eye)
        v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 \
            + b[0] * eye
        r = np.linalg.solve(v - u, v + u)
        for _ in range(s):
            r = r @ r
        out[index] = r
    return out


class MatrixExp(Op):
    """Y = exp(A)"""

    rule = "dA = exp([[A.T, g], [0, A.T]]) [:n, n:]  (the block-triangular trick)"
    saves = (0,)

    def forward(self, a):
        self.a = a
        return _expm(a).astype(a.dtype)

    def backward(self, g):
        a = self.a
        n = a.shape[-1]
        block = np.zeros(a.shape[:-2] + (2 * n, 2 * n), np.float64)
        block[..., :n, :n] = _mT(a)
        block[..., n:, n:] = _mT(a)
        block[..., :n, n:] = g
        return (_expm(block)[..., :n, n:].astype(a.dtype),)
