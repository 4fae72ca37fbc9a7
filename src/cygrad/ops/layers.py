"""The ops behind the layers: linear (alone and fused with its activation), dropout (convolution
and pooling: ops/conv.py). Every product goes through the backend's exact gemm, so identical
units (rows of a weight) get identical outputs and gradients."""

import numpy as np

from .. import backend as B
from .. import random
from . import Op, higher

# torch's grad_fn of F.linear of one vector or of sequences (by: a vector, a bias): a squeeze or
# (unsafe) view of the product (of rows: addmm, or mm without a bias)
_LINEAR_NODES = {(True, True): "ViewBackward0", (True, False): "SqueezeBackward4",
                 (False, True): "ViewBackward0", (False, False): "UnsafeViewBackward0"}


class Linear(Op):
    """y = x @ W.T + b, x (..., in), W (out, in), b (out,) or absent"""

    rule = "dx = g @ W;  dW = g.T @ x;  db = g summed over rows"
    saves = (0, 1)
    in_shape = None  # x's shape when it is not 2-D (backward reshapes dx to it)
    node = "AddmmBackward0"  # torch's, for rows and a bias (forward names the other cases)

    def forward(self, x, w, b=None):
        self.w = w
        if x.ndim == 2:
            self.x = x
            if b is None:
                self.node = "MmBackward0"
        else:  # a batch of sequences: the rows of every sample as one batch of rows
            self.node = _LINEAR_NODES[x.ndim == 1, b is not None]
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

    def vjp(self, g, inputs, output):
        return _linear_vjp(self.needs, g, *inputs)


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
        try:
            y = B.bias_activation(e.kernel, z, b, params.get(e.kernel_param, 0.0))
        except B.NoKernel:  # the numpy backend: the op table's math
            B.bias_add(z, b, z)
            y = e.forward(z, **{k: params[k] for k in e.param_names})
        self.z = z if "x" in e.saves else None
        self.y = y
        return y

    def backward(self, g):
        e, params, needs = self.entry, self.__dict__, self.needs
        saved = self.z if "x" in e.saves else self.y
        try:
            dz, db = B.activation_backward_bias(e.kernel, g, saved,
                                                params.get(e.kernel_param, 0.0))
        except B.NoKernel:  # the numpy backend: the op table's math
            dz = np.ascontiguousarray(e.grad(g, self.z, self.y,
                                             **{k: params[k] for k in e.param_names}))
            db = B.column_sum(dz) if needs[2] else None
        dx = B.gemm(dz, self.w) if needs[0] else None
        dw = B.gemm(dz, self.x, True, False) if needs[1] else None
        return dx, dw, (db if needs[2] else None)

    def vjp(self, g, inputs, output):
        from ..nn.functional import linear

        e = self.entry
        z = linear(*inputs)  # the pre-activation again, recorded
        extra = {k: v for k, v in self.__dict__.items() if k in e.param_names}
        dz = higher.traced(e.grad, g, z, output, name=self.name(), **extra)
        return _linear_vjp(self.needs, dz, *inputs)


def _linear_vjp(needs, g, x, w, b=None):
    """Linear's gradients as recorded ops (backward with create_graph=True)."""
    rows = g.reshape(-1, w.shape[0])
    dx = (rows @ w).reshape(x.shape) if needs[0] else None
    dw = rows.t() @ x.reshape(-1, w.shape[1]) if needs[1] else None
    if len(needs) == 2:
        return dx, dw
    return dx, dw, (rows.sum(0) if needs[2] else None)


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


class Dropout(Op):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p), drawn from cygrad's generator"""
    node = "MulBackward0"  # torch's grad_fn name

    rule = "dx = g * mask / (1 - p)"

    def forward(self, x):
        # torch's CPU dropout: noise = empty_like(x).bernoulli_(1 - p) (drawn in x's memory
        # order), noise /= 1 - p in x's dtype, y = x * noise; p = 1 draws nothing
        if self.p == 1:
            self.scale = np.zeros_like(x)
        elif x.flags.c_contiguous and x.dtype in B.FLOAT_DTYPES:  # the same draws, one pass
            y, self.scale = random.dropout_mask(x, self.p, self.generator)
            return y
        else:
            keep = random.bernoulli_(np.empty_like(x), 1 - self.p, generator=self.generator)
            self.scale = keep / x.dtype.type(1 - self.p)
        return x * self.scale

    def backward(self, g):
        return (g * self.scale,)

    def vjp(self, g, inputs, output):
        return (g * higher.const(self.scale),)
