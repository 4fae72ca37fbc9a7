"""Loss ops with a fused forward and backward."""

import numpy as np

from .. import backend as B
from . import Op


def _count(n, dtype):
    """max(n, 1) as the dtype holds it, as a Python float (exact below 2**24 in float32).

    Quotients by it are formed in Python floats and rounded once to the dtype: a float64
    quotient of two float32 numbers, rounded to float32, is the correctly rounded float32
    quotient, so this gives the bits of the dtype's own division at a fraction of the cost of
    numpy scalars."""
    return float(n) if 0 < n < 1 << 24 else float(dtype(max(n, 1)))


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    total = losses.sum(dtype=losses.dtype)
    if reduction == "mean":  # the dtype's division (see _count)
        return np.array(float(total) / _count(losses.size, losses.dtype.type), losses.dtype)
    return np.asarray(total)


def _row_gradients(g, n, dtype, reduction):
    if reduction == "none":
        return np.ascontiguousarray(g, dtype=dtype)
    scale = float(g) / _count(n, dtype.type) if reduction == "mean" else float(g)
    return np.full(n, scale, dtype=dtype)  # rounded once to the dtype: its division's bits


class MSE(Op):
    """loss = (x - t)**2 per element, then reduced; x and t of one shape"""

    rule = "dx = g * 2 * (x - t);  dt = -dx  (divided by the count for the mean)"

    def forward(self, x, t):
        self.diff = diff = x - t
        squares = diff * diff
        if self.reduction == "none":
            return squares
        total = np.add.reduce(squares, None)  # axis None: squares.reshape(-1).sum()'s bits
        if self.reduction == "mean":  # the dtype's division, as in backward
            return np.array(float(total) / _count(squares.size, x.dtype.type), x.dtype)
        return np.asarray(total)

    def backward(self, g):
        diff = self.diff
        dtype = diff.dtype.type
        if self.reduction == "none":
            scale = g * dtype(2)
        else:  # g * 2 / n with the dtype's bits (g * 2 is exact; see _count)
            scale = float(g) * 2.0
            if self.reduction == "mean":
                scale = scale / _count(diff.size, dtype)
            scale = dtype(scale)
        dx = scale * diff
        return (dx if self.needs[0] else None), (-dx if self.needs[1] else None)


class CrossEntropy(Op):
    """loss_i = -log_softmax(x_i)[t_i], fused in one kernel; x (N, C), t (N,) class indices"""

    rule = "dx_i = g_i * (softmax(x_i) - onehot(t_i))"

    def forward(self, logits):
        losses, self.logp = B.log_softmax_nll(logits, self.targets)
        return _reduce(losses, self.reduction)

    def backward(self, g):
        n, dtype = self.logp.shape[0], self.logp.dtype
        rows = _row_gradients(g, n, dtype, self.reduction)
        return (B.log_softmax_nll_backward(self.logp, self.targets, rows),)


class BCEWithLogits(Op):
    """loss = (1 - t) * x - log_sigmoid(x), log_sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)):
    the stable form of BCE(sigmoid(x), t), torch's. At x = +inf with t = 0 the loss is inf (the
    form max(x, 0) - x * t would give inf - inf * 0 = NaN); at the other infinite corners it is
    NaN, as torch's is."""

    rule = "dx = g * (sigmoid(x) - t)"
    saves = (0,)

    def forward(self, x):
        self.x = x
        self.e = np.exp(-np.abs(x))  # in (0, 1]: never overflows; backward reuses it
        with np.errstate(invalid="ignore"):  # NaN at the infinite corners is the answer
            losses = (1 - self.targets) * x - np.minimum(x, 0) + np.log1p(self.e)
        return _reduce(losses.reshape(-1), self.reduction).reshape(
            x.shape if self.reduction == "none" else ())

    def backward(self, g):
        x, e = self.x, self.e
        sig = np.where(x >= 0, x.dtype.type(1), e) / (1 + e)  # sigmoid(x) without overflow
        if self.reduction == "mean":
            g = g / x.dtype.type(max(x.size, 1))
        return ((sig - self.targets) * g,)
