"""Layer and batch normalisation, forward and backward side by side.

Every statistic is an exact sum (`float_sum` and `column_sum`: the backend's fixed summation
order, the same for every output; LayerNorm runs as one kernel, backend.layer_norm, with the
numpy twin's bits): the mean and variance of a row (LayerNorm) or of a channel
(BatchNorm), and the sums their backward passes need. The rest is elementwise numpy, one
rounding per operation whatever the position. So channels that are tied (equal inputs, gains
and biases) stay bitwise tied although the normalisation mixes all channels of a row: each
shares the row's statistics and computes its own numbers by the same operations.
"""

import math

import numpy as np

from .. import backend as B
from . import Op
from .reduction import float_sum


class LayerNorm(Op):
    """y = (x - mean) / sqrt(var + eps) * w + b over the last `dims` dimensions (var biased)"""
    node = "NativeLayerNormBackward0"  # torch's grad_fn name

    rule = ("dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w;  "
            "dw = sum over rows of g * xhat;  db = sum over rows of g")

    def forward(self, x, *affine):
        self.shape = x.shape
        n = math.prod(x.shape[x.ndim - self.dims:])
        self.n = n
        self.w = w = affine[0].reshape(-1) if self.has_w else None
        b = affine[-1].reshape(-1) if self.has_b else None
        if self.has_w:
            self.w_shape = affine[0].shape
        if self.has_b:
            self.b_shape = affine[-1].shape
        y, self.xhat, self.rstd = B.layer_norm(x.reshape(-1, n), w, b, self.eps)
        return y.reshape(x.shape)

    def backward(self, g):
        needs, n = self.needs, self.n
        dx, dw, db = B.layer_norm_backward(
            g.reshape(-1, n), self.xhat, self.rstd, self.w, needs[0],
            self.has_w and needs[1], self.has_b and needs[-1])
        grads = [None if dx is None else dx.reshape(self.shape)]
        if self.has_w:
            grads.append(None if dw is None else dw.reshape(self.w_shape))
        if self.has_b:
            grads.append(None if db is None else db.reshape(self.b_shape))
        return tuple(grads)

    def decompose(self, x, *affine):
        """The op as recorded ops (backward with create_graph=True differentiates this)."""
        dims = tuple(range(x.ndim - self.dims, x.ndim))
        mean = x.mean(dims, keepdim=True)
        centered = x - mean
        var = (centered * centered).mean(dims, keepdim=True)
        y = centered * (var + self.eps).rsqrt()
        if self.has_w:
            y = y * affine[0]
        if self.has_b:
            y = y + affine[-1]
        return y


def _channels(x):
    """Axes summed over for a channel (all but 1), and a shape broadcasting (C,) against x."""
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


class BatchNorm(Op):
    """y = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c, per channel c = dim 1 of x (N, C, ...):
    the batch's statistics (training: var biased; running stats updated with var unbiased) or
    the running ones (eval)"""
    node = "NativeBatchNormBackward0"  # torch's grad_fn name

    rule = ("training: dx = w rstd (g - mean(g) - xhat * mean(g * xhat)) per channel;  "
            "eval: dx = g * w * rstd;  dw = sum of g * xhat;  db = sum of g")

    def forward(self, x, *affine):
        axes, cshape = _channels(x)
        self.axes, self.cshape = axes, cshape
        count = x.size // x.shape[1] if x.shape[1] else 0
        self.count = count
        if self.use_batch:  # torch accumulates the statistics of float32 in double
            wide = x.astype(np.float64)
            mean = float_sum(wide, axes) / count
            dev = wide - mean.reshape(cshape)
            var_sum = float_sum(dev * dev, axes)
            var = var_sum / count
            if self.running_mean is not None:
                m = self.momentum
                rm, rv = self.running_mean, self.running_var
                rm[...] = m * mean + (1 - m) * rm.astype(np.float64)
                unbiased = var_sum / (count - 1) if count > 1 else np.full_like(var_sum, np.nan)
                rv[...] = m * unbiased + (1 - m) * rv.astype(np.float64)
        else:
            mean = self.running_mean.astype(np.float64)
            var = self.running_var.astype(np.float64)
        self.rstd = (1 / np.sqrt(var + self.eps)).astype(x.dtype).reshape(cshape)
        self.xhat = y = (x - mean.astype(x.dtype).reshape(cshape)) * self.rstd
        self.w = None
        if self.has_w:
            self.w = affine[0].reshape(cshape)
            y = y * self.w
        if self.has_b:
            y = y + affine[-1].reshape(cshape)
        return y

    def backward(self, g):
        needs, xhat, axes, cshape = self.needs, self.xhat, self.axes, self.cshape
        t = g.dtype.type
        sum_g = float_sum(g, axes) if (needs[0] and self.use_batch) or \
            (self.has_b and needs[-1]) else None
        sum_gx = float_sum(g * xhat, axes) if (needs[0] and self.use_batch) or \
            (self.has_w and needs[1]) else None
        grads = [None]
        if needs[0]:
            scale = self.rstd * self.w if self.w is not None else self.rstd
            if self.use_batch:
                n = t(self.count)
                grads[0] = (g - (sum_g / n).reshape(cshape)
                            - xhat * (sum_gx / n).reshape(cshape)) * scale
            else:
                grads[0] = g * scale
        if self.has_w:
            grads.append(sum_gx if needs[1] else None)
        if self.has_b:
            grads.append(sum_g if needs[-1] else None)
        return tuple(grads)

    def decompose(self, x, *affine):
        """The op as recorded ops (backward with create_graph=True differentiates this); in
        eval mode x - x.detach() carries the derivative, the saved xhat the value."""
        axes, cshape = self.axes, self.cshape
        if self.use_batch:
            d = x - x.mean(axes, keepdim=True)
            y = d * ((d * d).mean(axes, keepdim=True) + self.eps).rsqrt()
        else:
            from .higher import const

            y = (x - x.detach()) * const(self.rstd) + const(self.xhat)
        if self.has_w:
            y = y * affine[0].reshape(cshape)
        if self.has_b:
            y = y + affine[-1].reshape(cshape)
        return y
