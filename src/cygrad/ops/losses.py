"""Loss ops: each loss's forward and backward side by side.

MSE and CrossEntropy reduce inside the op (the fast paths of a training step); NLL reduces over
its rows with the exact sum; the elementwise losses (L1, SmoothL1, Huber, KLDiv, BCE,
BCEWithLogits) give one loss per element, which nn.functional reduces with the exact sum or
mean of ops/reduction.py. Every element runs the same arithmetic whatever its position, so
identical rows get identical losses and gradients. The mean of nothing is nan, as in torch.
"""

import numpy as np

from .. import backend as B
from . import Op, higher
from .reduction import float_sum


def _count(n, dtype):
    """n as the dtype holds it, as a Python float (exact below 2**24 in float32).

    Quotients by it are formed in Python floats and rounded once to the dtype: a float64
    quotient of two float32 numbers, rounded to float32, is the correctly rounded float32
    quotient, so this gives the bits of the dtype's own division at a fraction of the cost of
    numpy scalars."""
    return float(n) if 0 < n < 1 << 24 else float(dtype(n))


def _mean(total, n, dtype):
    """total / n in the dtype (nan for n = 0, as torch's mean of nothing)."""
    if n == 0:
        return np.array(np.nan, dtype)
    return np.array(float(total) / _count(n, dtype.type), dtype)


def _total(values):
    """The sum of every element by the kernels' fixed tree (column_sum of them as one column,
    csrc/README.md): the bits a compiled step's loss kernels give (csrc/loss.pyx)."""
    return B.column_sum(values.reshape(-1, 1))[0]


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    total = _total(losses)
    if reduction == "mean":  # the dtype's division (see _count)
        return _mean(total, losses.size, losses.dtype)
    return np.asarray(total)


def _row_gradients(g, n, dtype, reduction):
    if reduction == "none":
        return np.ascontiguousarray(g, dtype=dtype)
    scale = float(g) / _count(max(n, 1), dtype.type) if reduction == "mean" else float(g)
    return np.full(n, scale, dtype=dtype)  # rounded once to the dtype: its division's bits


class MSE(Op):
    """loss = (x - t)**2 per element, then reduced; x and t of one shape and dtype"""
    node = "MseLossBackward0"  # torch's grad_fn name

    rule = "dx = g * 2 * (x - t);  dt = -dx  (divided by the count for the mean)"

    def forward(self, x, t):
        if self.reduction != "none" and x.size:  # one kernel pass (backend.mse)
            self.diff, value = B.mse(x, t, 1 if self.reduction == "mean" else 2)
            return value
        self.diff = diff = x - t
        squares = diff * diff
        if self.reduction == "none":
            return squares
        total = _total(squares)
        if self.reduction == "mean":  # the dtype's division, as in backward
            return _mean(total, squares.size, x.dtype)
        return np.asarray(total)

    def backward(self, g):
        diff = self.diff
        dtype = diff.dtype.type
        if self.reduction == "none":
            scale = g * dtype(2)
        else:  # g * 2 / n with the dtype's bits (g * 2 is exact; see _count)
            scale = float(g) * 2.0
            if self.reduction == "mean":
                scale = scale / _count(max(diff.size, 1), dtype)
            scale = dtype(scale)
        dx = scale * diff
        return (dx if self.needs[0] else None), (-dx if self.needs[1] else None)

    def vjp(self, g, inputs, output):
        x, t = inputs
        scale = g * 2 if self.reduction != "mean" else g * 2 / max(x._data.size, 1)
        dx = (x - t) * scale
        return (dx if self.needs[0] else None), (-dx if self.needs[1] else None)


class CrossEntropy(Op):
    """loss_i = -log_softmax(x_i)[t_i], fused in one kernel; x (N, C), t (N,) class indices"""
    node = "NllLossBackward0"  # torch's grad_fn name

    rule = "dx_i = g_i * (softmax(x_i) - onehot(t_i))"

    def forward(self, logits):
        losses, self.logp = B.log_softmax_nll(logits, self.targets)
        return _reduce(losses, self.reduction)

    def backward(self, g):
        n, dtype = self.logp.shape[0], self.logp.dtype
        rows = _row_gradients(g, n, dtype, self.reduction)
        return (B.log_softmax_nll_backward(self.logp, self.targets, rows),)

    def vjp(self, g, inputs, output):
        (x,) = inputs
        n, c = self.logp.shape
        onehot = np.zeros((n, c), self.logp.dtype)
        onehot[np.arange(n), self.targets] = 1
        rows = g.reshape(n, 1) if self.reduction == "none" else \
            (g / max(n, 1) if self.reduction == "mean" else g)
        return ((x.softmax(1) - higher.const(onehot)) * rows,)


class NLL(Op):
    """loss_i = -w_i * x[i, t_i] for x (M, C) (log-probabilities), w_i = weight[t_i], 0 for a
    row whose target is ignore_index; the mean divides by the sum of the w_i"""
    node = "NllLossBackward0"  # torch's grad_fn name

    rule = "dx[i, t_i] = -w_i * g_i  (g / sum(w) for the mean), 0 elsewhere"
    linear = True

    def forward(self, x):
        rows = np.arange(x.shape[0])
        self.shape = x.shape
        losses = -x[rows, self.targets]
        if self.weights is not None:
            losses *= self.weights
        if self.reduction == "none":
            return losses
        total = float_sum(losses, (0,))
        if self.reduction == "sum":
            return total
        self.total_weight = (float_sum(self.weights, (0,)) if self.weights is not None
                             else x.dtype.type(x.shape[0]))
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: nan, as torch
            return np.asarray(total / self.total_weight, x.dtype)

    def backward(self, g):
        dtype = np.dtype(g.dtype)
        n = self.shape[0]
        if self.reduction == "none":
            rows = -g
        else:
            if self.reduction == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    g = g / self.total_weight
            rows = np.full(n, -g, dtype)
        if self.weights is not None:
            rows = rows * self.weights
        dx = np.zeros(self.shape, dtype)
        dx[np.arange(n), self.targets] = rows
        return (dx,)


class _Elementwise(Op):
    """A loss of each element of x against the same element of t (one shape, one dtype)."""

    saves = (0, 1)

    def forward(self, x, t):
        self.x, self.t = x, t
        return self.loss(x, t)

    def backward(self, g):
        dx, dt = self.grads(g, self.x, self.t)
        return (dx if self.needs[0] else None), (dt if self.needs[1] else None)

    def vjp(self, g, inputs, output):
        """backward(create_graph=True): the class's own formulas, on Tensors (ops/higher.py)."""
        dx, dt = higher.traced(self.grads, g, *inputs, name=self.name())
        return (dx if self.needs[0] else None), (dt if self.needs[1] else None)


class L1(_Elementwise):
    """loss = |x - t|"""

    rule = "dx = g * sign(x - t);  dt = -dx"

    def loss(self, x, t):
        return np.abs(x - t)

    def grads(self, g, x, t):
        dx = g * np.sign(x - t)
        return dx, -dx


class SmoothL1(_Elementwise):
    """loss = 0.5 * z**2 / beta where z = |x - t| < beta, else z - 0.5 * beta"""
    node = reduced_node = "SmoothL1LossBackward0"  # torch's, reduced or not

    rule = "dx = g * clamp((x - t) / beta, -1, 1);  dt = -dx"

    def loss(self, x, t):
        z = np.abs(x - t)
        beta = x.dtype.type(self.beta)
        return np.where(z < beta, x.dtype.type(0.5) * z * z / beta, z - x.dtype.type(0.5) * beta)

    def grads(self, g, x, t):
        d = x - t
        beta = x.dtype.type(self.beta)
        dx = g * np.where(d <= -beta, x.dtype.type(-1),
                          np.where(d >= beta, x.dtype.type(1), d / beta))
        return dx, -dx


class Huber(_Elementwise):
    """loss = 0.5 * z**2 where z = |x - t| < delta, else delta * (z - 0.5 * delta)"""
    node = reduced_node = "HuberLossBackward0"  # torch's, reduced or not

    rule = "dx = g * clamp(x - t, -delta, delta);  dt = -dx"

    def loss(self, x, t):
        z = np.abs(x - t)
        delta, half = x.dtype.type(self.delta), x.dtype.type(0.5)
        return np.where(z < delta, half * z * z, delta * (z - half * delta))

    def grads(self, g, x, t):
        delta = x.dtype.type(self.delta)
        dx = g * np.clip(x - t, -delta, delta)
        return dx, -dx


class KLDiv(_Elementwise):
    """loss = t * log(t) - t * x (t * log t taken as 0 at t = 0, nan for t < 0, as torch's
    xlogy); with log_target: exp(t) * (t - x)"""

    rule = "dx = -g * t (log_target: -g * exp(t));  dt = g * (log t + 1 - x) (nan at t = 0, " \
           "as torch's; log_target: g * exp(t) * (t - x + 1))"

    def loss(self, x, t):
        if self.log_target:
            return np.exp(t) * (t - x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(t == 0, x.dtype.type(0), t * np.log(t)) - t * x

    def grads(self, g, x, t):
        if self.log_target:
            e = np.exp(t)
            return -g * e, g * e * (t - x + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dt = np.where(t == 0, x.dtype.type(np.nan), g * (np.log(t) + 1 - x))
        return -t * g, dt


class BCE(_Elementwise):
    """loss = -w * (t * log(x) + (1 - t) * log(1 - x)), each log at least -100; x in [0, 1]"""
    node = reduced_node = "BinaryCrossEntropyBackward0"  # torch's, reduced or not

    rule = "dx = g * w * (x - t) / max(x * (1 - x), 1e-12);  dt = g * w * (log(1 - x) - log x)"

    def loss(self, x, t):
        one, floor = x.dtype.type(1), x.dtype.type(-100)
        with np.errstate(divide="ignore"):
            log_x, log_1mx = np.maximum(np.log(x), floor), np.maximum(np.log1p(-x), floor)
        loss = (t - one) * log_1mx - t * log_x
        return loss if self.weight is None else loss * self.weight

    def grads(self, g, x, t):
        one = x.dtype.type(1)
        gw = g if self.weight is None else g * self.weight
        dx = dt = None
        if self.needs[0]:
            dx = gw * (x - t) / np.maximum((one - x) * x, x.dtype.type(1e-12))
        if self.needs[1]:
            floor = x.dtype.type(-100)
            with np.errstate(divide="ignore"):
                dt = gw * (np.maximum(np.log1p(-x), floor) - np.maximum(np.log(x), floor))
        return dx, dt


class BCEWithLogits(_Elementwise):
    """loss = w * ((1 - t) * x + lw * softplus(-x)), lw = 1 + (pos_weight - 1) * t (1 without
    pos_weight), softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)): the stable form of
    BCE(sigmoid(x), t). At x = +inf with t = 0 the loss is inf, as torch's."""
    node = reduced_node = "BinaryCrossEntropyWithLogitsBackward0"  # torch's, reduced or not

    rule = "dx = g * w * (lw * sigmoid(x) - pos_weight * t);  dt = g * w * ((pos_weight - 1) * " \
           "softplus(-x) - x)"

    def loss(self, x, t):
        softplus = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))  # softplus(-x), no overflow
        one = x.dtype.type(1)
        with np.errstate(invalid="ignore"):  # NaN at the infinite corners is the answer
            if self.pos_weight is None:
                loss = (one - t) * x + softplus
            else:
                loss = (one - t) * x + ((self.pos_weight - one) * t + one) * softplus
        return loss if self.weight is None else loss * self.weight

    def grads(self, g, x, t):
        one = x.dtype.type(1)
        gw = g if self.weight is None else g * self.weight
        dx = dt = None
        if self.needs[0]:
            e = np.exp(-np.abs(x))
            sig = np.where(x >= 0, one, e) / (one + e)  # sigmoid(x) without overflow
            if self.pos_weight is None:
                dx = gw * (sig - t)
            else:
                pt = self.pos_weight * t
                dx = gw * ((pt + one - t) * sig - pt)
        if self.needs[1]:
            if self.pos_weight is None:
                dt = -gw * x
            else:
                softplus = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
                dt = gw * ((self.pos_weight - one) * softplus - x)
        return dx, dt
