"""The ops behind the layers: linear (alone and fused with its activation), conv2d, pooling,
dropout. Every product goes through the
backend's exact gemm, so identical units (rows of a weight) get identical outputs and gradients."""

import numpy as np

from .. import backend as B
from .. import random
from . import Op


class Linear(Op):
    """y = x @ W.T + b, x (..., in), W (out, in), b (out,) or absent"""

    rule = "dx = g @ W;  dW = g.T @ x;  db = g summed over rows"
    saves = (0, 1)
    in_shape = None  # x's shape when it is not 2-D (backward reshapes dx to it)

    def forward(self, x, w, b=None):
        self.w = w
        if x.ndim == 2:
            self.x = x
        else:  # a batch of sequences: the rows of every sample as one batch of rows
            self.in_shape = x.shape
            self.x = x.reshape(-1, w.shape[1])
        y = B.gemm(self.x, w, False, True)
        if b is not None:
            B.bias_add(y, b, y)  # in place: a fresh gemm output, no temporary
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        needs, w = self.needs, self.w
        if g.ndim != 2:
            g = g.reshape(-1, w.shape[0])
        dx = B.gemm(g, w) if needs[0] else None
        if dx is not None and self.in_shape is not None:
            dx = dx.reshape(self.in_shape)
        dw = B.gemm(g, self.x, True, False) if needs[1] else None
        if len(needs) == 2:
            return dx, dw
        return dx, dw, (B.column_sum(g) if needs[2] else None)


class LinearActivation(Op):
    """y = act(x @ W.T + b): a Linear and the activation after it as one node, x (n, in).

    One gemm, then one kernel pass adds the bias and activates; backward gets the
    activation's gradient and the bias gradient from one pass too (the kernels' fused forms,
    bitwise what the two ops give separately). A subclass per fusable activation of the
    elementwise table sets `entry` (nn.Sequential runs a Linear followed by such a module this
    way).
    """

    entry = None
    saves = (0, 1)
    saves_output = True

    def forward(self, x, w, b):
        e, params = self.entry, self.__dict__
        self.x, self.w = x, w
        z = B.gemm(x, w, False, True)
        param = params.get(e.kernel_param, 0.0)
        if B.has_kernel(e.kernel, z):
            y = B.bias_activation(e.kernel, z, b, param)
        else:
            B.bias_add(z, b, z)
            y = e.forward(z, **{k: params[k] for k in e.param_names})
        self.z = z if "x" in e.saves else None
        self.y = y
        return y

    def backward(self, g):
        e, params, needs = self.entry, self.__dict__, self.needs
        saved = self.z if "x" in e.saves else self.y
        param = params.get(e.kernel_param, 0.0)
        if B.has_kernel(e.kernel, g):
            dz, db = B.activation_backward_bias(e.kernel, g, saved, param)
        else:
            dz = np.ascontiguousarray(e.grad(g, self.z, self.y,
                                             **{k: params[k] for k in e.param_names}))
            db = B.column_sum(dz) if needs[2] else None
        dx = B.gemm(dz, self.w) if needs[0] else None
        dw = B.gemm(dz, self.x, True, False) if needs[1] else None
        return dx, dw, (db if needs[2] else None)


def linear_activation_op(entry):
    """The fused Linear + activation op class of a fusable elementwise entry."""
    op = _FUSED.get(entry.name)
    if op is None:
        name = "Linear" + "".join(p.capitalize() for p in entry.name.split("_"))
        op = _FUSED[entry.name] = type(name, (LinearActivation,), {
            "entry": entry, "__module__": __name__,
            "rule": f"dz = {entry.name}'(z) * g (kernel pass, with db = dz summed over rows);  "
                    "dx = dz @ W;  dW = dz.T @ x"})
    return op


_FUSED = {}


class Conv2d(Op):
    """y[n, o] = sum_c W[o, c] * x[n, c] (cross-correlation) + b[o], through im2col + gemm

    x (N, C, H, W), W (O, C, kh, kw), b (O,), stride and padding as ints. With the patches as
    columns, cols (C*kh*kw, N*OH*OW), y = W @ cols is one wide product (the gemm's tiles are
    wide) giving each output one exact multiply-add chain; its (O, N, OH*OW) result is then
    moved to (N, O, OH, OW), adding the bias on the way.
    """

    rule = "dW = g @ cols.T;  db = g summed;  dx = col2im(W.T @ g)  (g as (O, N*OH*OW))"
    saves = (1,)  # and its own patches of x

    def forward(self, x, w, b=None):
        n, _, h, wd = x.shape
        o, _, kh, kw = w.shape
        self.x_shape, self.w = x.shape, w
        self.cols = B.im2col_t(x, kh, kw, self.stride, self.padding)
        oh = (h + 2 * self.padding - kh) // self.stride + 1
        ow = (wd + 2 * self.padding - kw) // self.stride + 1
        self.plane = oh * ow
        planes = B.gemm(w.reshape(o, -1), self.cols)  # (O, N*OH*OW)
        return B.planes_to_images(planes, b, n, oh * ow).reshape(n, o, oh, ow)

    def backward(self, g):
        o, _, kh, kw = self.w.shape
        g3 = g.reshape(g.shape[0], o, self.plane)
        g_rows = np.ascontiguousarray(g3.transpose(1, 0, 2)).reshape(o, -1)  # (O, N*OH*OW)
        dx = dw = None
        if self.needs[0]:
            dcols = B.gemm(self.w.reshape(o, -1), g_rows, trans_a=True)
            dx = B.col2im_t(dcols, self.x_shape, kh, kw, self.stride, self.padding)
        if self.needs[1]:
            dw = B.gemm(g_rows, self.cols, trans_b=True).reshape(self.w.shape)
        if len(self.needs) == 2:
            return dx, dw
        return dx, dw, (B.channel_sum(g3) if self.needs[2] else None)


class _Pool2d(Op):
    """Pooling over kh x kw windows moved by stride: every channel is an image of its own, so
    im2col gives one window per row."""

    def _windows(self, x):
        n, c, h, w = self.x_shape = x.shape
        (kh, kw), s = self.kernel_size, self.stride
        self.oh, self.ow = (h - kh) // s + 1, (w - kw) // s + 1
        return B.im2col(x.reshape(n * c, 1, h, w), kh, kw, s, 0)

    def _scatter(self, dcols):
        n, c, h, w = self.x_shape
        (kh, kw), s = self.kernel_size, self.stride
        return B.col2im(dcols, (n * c, 1, h, w), kh, kw, s, 0).reshape(self.x_shape)

    def _out(self, rows):
        n, c = self.x_shape[:2]
        return rows.reshape(n, c, self.oh, self.ow)


class MaxPool2d(_Pool2d):
    """y = max over each window (the first maximum wins a tie, as in PyTorch)"""

    rule = "dx = g routed to the position of each window's maximum"

    def forward(self, x):
        self.cols = cols = self._windows(x)
        y = cols[:, 0].copy()
        for q in range(1, cols.shape[1]):  # a column at a time: far faster than a row argmax
            np.maximum(y, cols[:, q], out=y)
        return self._out(y)

    def backward(self, g):
        cols = self.cols  # the argmax is only paid for when a gradient is wanted
        flat = cols.argmax(axis=1) + np.arange(0, cols.size, cols.shape[1])
        dcols = np.zeros(cols.shape, dtype=g.dtype)
        dcols.reshape(-1)[flat] = g.reshape(-1)
        return (self._scatter(dcols),)


class AvgPool2d(_Pool2d):
    """y = mean over each window of kh * kw elements"""

    rule = "dx = g / (kh * kw) spread over each window"

    def forward(self, x):
        cols = self._windows(x)
        self.cols_shape = cols.shape
        return self._out(cols.mean(axis=1))

    def backward(self, g):
        size = g.dtype.type(self.cols_shape[1])
        dcols = np.empty(self.cols_shape, dtype=g.dtype)
        dcols[...] = g.reshape(-1, 1) / size
        return (self._scatter(dcols),)


class Dropout(Op):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p), drawn from cygrad's generator"""

    rule = "dx = g * mask / (1 - p)"

    def forward(self, x):
        # torch's CPU dropout: noise = empty_like(x).bernoulli_(1 - p) (drawn in x's memory
        # order), noise /= 1 - p in x's dtype, y = x * noise; p = 1 draws nothing
        if self.p == 1:
            self.scale = np.zeros_like(x)
        else:
            keep = random.bernoulli_(np.empty_like(x), 1 - self.p, generator=self.generator)
            self.scale = keep / x.dtype.type(1 - self.p)
        return x * self.scale

    def backward(self, g):
        return (g * self.scale,)
