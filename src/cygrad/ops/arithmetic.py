"""Binary arithmetic with numpy broadcasting; gradients are summed back to each input's shape."""

import numpy as np

from .. import backend as B
from . import Op


class Add(Op):
    """z = a + b"""

    rule = "da = g;  db = g  (summed to each shape)"

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        return B.sum_to_shape(g, self.shapes[0]), B.sum_to_shape(g, self.shapes[1])


class Sub(Op):
    """z = a - b"""

    rule = "da = g;  db = -g"

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        db = B.sum_to_shape(-g, self.shapes[1]) if self.needs[1] else None
        return B.sum_to_shape(g, self.shapes[0]), db


class Mul(Op):
    """z = a * b"""

    rule = "da = g * b;  db = g * a"
    saves = (0, 1)

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        da = B.sum_to_shape(g * self.b, self.a.shape) if self.needs[0] else None
        db = B.sum_to_shape(g * self.a, self.b.shape) if self.needs[1] else None
        return da, db


class Div(Op):
    """z = a / b"""

    rule = "da = g / b;  db = -g * a / b**2"
    saves = (0, 1)

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        da = B.sum_to_shape(g / self.b, self.a.shape) if self.needs[0] else None
        db = (B.sum_to_shape(-g * self.a / (self.b * self.b), self.b.shape)
              if self.needs[1] else None)
        return da, db


class Neg(Op):
    """y = -x"""

    rule = "dx = -g"

    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Pow(Op):
    """y = x ** p, p a Python number"""

    rule = "dx = g * p * x**(p - 1)"
    saves = (0,)

    def forward(self, x):
        self.x = x
        return x ** x.dtype.type(self.p)

    def backward(self, g):
        p = self.x.dtype.type(self.p)
        return (g * p * self.x ** (p - 1),)


class MatMul(Op):
    """C = A @ B for 2-D operands, or a batch of them (3-D, a 2-D operand is shared)."""

    rule = "dA = g @ B.T;  dB = A.T @ g"
    saves = (0, 1)

    def forward(self, a, b):
        self.a, self.b = a, b
        if a.ndim == 2 and b.ndim == 2:
            return B.gemm(a, b)
        if b.ndim == 2:  # a batch of rows against one matrix: a single gemm
            n, k = a.shape[0] * a.shape[1], a.shape[2]
            return B.gemm(a.reshape(n, k), b).reshape(a.shape[0], a.shape[1], b.shape[1])
        a3 = a if a.ndim == 3 else a[None]
        if a3.shape[0] not in (1, b.shape[0]):
            raise ValueError(f"matmul: batch sizes of shapes {a.shape} and {b.shape} differ")
        return np.stack([B.gemm(a3[min(i, a3.shape[0] - 1)], b[i]) for i in range(b.shape[0])])

    def backward(self, g):
        a, b = self.a, self.b
        if a.ndim == 2 and b.ndim == 2:
            da = B.gemm(g, b, trans_b=True) if self.needs[0] else None
            db = B.gemm(a, g, trans_a=True) if self.needs[1] else None
            return da, db
        if b.ndim == 2:
            rows_a, rows_g = a.reshape(-1, a.shape[2]), g.reshape(-1, g.shape[2])
            da = B.gemm(rows_g, b, trans_b=True).reshape(a.shape) if self.needs[0] else None
            db = B.gemm(rows_a, rows_g, trans_a=True) if self.needs[1] else None
            return da, db
        a3 = a if a.ndim == 3 else a[None]
        shared = a3.shape[0] == 1 and b.shape[0] > 1
        da = db = None
        if self.needs[0]:
            per = [B.gemm(g[i], b[i], trans_b=True) for i in range(b.shape[0])]
            da = np.stack(per)
            if shared:
                da = B.sum_to_shape(da, a3.shape)
            da = da.reshape(a.shape)
        if self.needs[1]:
            db = np.stack([B.gemm(a3[0 if shared else i], g[i], trans_a=True)
                           for i in range(b.shape[0])])
        return da, db
