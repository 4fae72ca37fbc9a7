"""The ops behind the layers: linear, dropout (convolution and pooling: ops/conv.py). Every product
goes through the backend's exact gemm, so identical units (rows of a weight) get identical
outputs and gradients."""

from .. import backend as B
from . import Op


class Linear(Op):
    """y = x @ W.T + b, x (..., in), W (out, in), b (out,) or absent

    Fused with the activation that follows (`fused`, set by nn.functional's fused path): the
    op leaves the bias to that activation op, which adds it and activates in one kernel pass,
    and whose backward hands back the bias gradient it summed in the same pass as its own
    (`bias_grad`). The graph keeps both nodes.
    """

    rule = "dx = g @ W;  dW = g.T @ x;  db = g summed over rows"
    saves = (0, 1)
    fused = False
    bias_grad = None  # (dz, db) from a fused activation's backward
    in_shape = None  # x's shape when it is not 2-D (backward reshapes dx to it)

    def forward(self, x, w, b=None):
        self.w = w
        if x.ndim == 2:
            self.x = x
            y = B.gemm(x, w, False, True)
        else:  # a batch of sequences: the rows of every sample as one batch of rows
            self.in_shape = x.shape
            self.x = x.reshape(-1, w.shape[1])
            y = B.gemm(self.x, w, False, True)
        if b is not None and not self.fused:
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
        if not needs[2]:
            return dx, dw, None
        fused, self.bias_grad = self.bias_grad, None
        return dx, dw, (fused[1] if fused is not None and fused[0] is g else B.column_sum(g))


class Dropout(Op):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p), drawn from cygrad's generator"""

    rule = "dx = g * mask / (1 - p)"

    def forward(self, x):
        keep = self.generator.random(x.shape) >= self.p
        self.scale = keep.astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * self.scale

    def backward(self, g):
        return (g * self.scale,)
