"""Matrix functions through LAPACK (numpy.linalg): det, slogdet, inv, solve, cholesky, eigh,
eigvalsh, svdvals, each with torch's gradient. Inputs are (..., n, n) (svdvals: (..., m, n))
float32 or float64 stacks; numpy loops over the stack, one LAPACK call a matrix, so a matrix
gets the same result at any position in any batch. These do not run cygrad's exact kernels:
LAPACK's blocked algorithms order their sums by size (README: departures).

The backward rules are torch's (FunctionsManual.cpp), for real inputs.
"""

from collections import namedtuple

import numpy as np

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


_slogdet_result = namedtuple("slogdet", ["sign", "logabsdet"])


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
