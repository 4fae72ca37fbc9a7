"""Ops that move numbers without arithmetic."""

import numpy as np

from . import Op


class Reshape(Op):
    """y = x.reshape(shape)"""

    rule = "dx = g.reshape(x.shape)"

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape an array of shape {x.shape} into "
                             f"{self.shape}") from None

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class Transpose(Op):
    """y = x.transpose(axes)"""

    rule = "dx = g.transpose(inverse axes)"

    def forward(self, x):
        if self.axes is not None and sorted(a % max(x.ndim, 1) for a in self.axes) != list(
                range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation for shape {x.shape}")
        return x.transpose(self.axes)

    def backward(self, g):
        inverse = None if self.axes is None else np.argsort([a % g.ndim for a in self.axes])
        return (g.transpose(inverse),)


class GetItem(Op):
    """y = x[index]"""

    rule = "dx = zeros with g added at index"

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return np.array(x[self.index])

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(dx, self.index, g)
        return (dx,)
