"""The embedding table: rows looked up by integer indices, and its exact scatter-add backward.

The gradient of the table adds each position's gradient row into the row it was read from, in
ascending position (the backend's `embedding_backward`): every column of a row adds the same
rows in the same order, so identical embedding dimensions (columns) get identical gradients, at
any batch size and thread count.
"""

import numpy as np

from .. import backend as B
from . import Op
from .reduction import float_sum


class Embedding(Op):
    """y = W[indices]: indices (any shape, integers) -> indices.shape + (d,), W (n, d)"""

    rule = "dW[k] = sum of g's rows at the positions holding k (ascending), padding row 0"

    def forward(self, w):
        self.num = w.shape[0]
        return np.take(w, self.indices, axis=0)

    def backward(self, g):
        d = g.shape[-1]
        return (B.embedding_backward(np.ascontiguousarray(g).reshape(-1, d), self.flat, self.num,
                                     self.padding_idx, self.scale_grad_by_freq),)

    def select(self, gg):
        """The transpose of backward (ops/higher.py): gg's rows at the indices, 0 at the
        padding index, divided by each index's count with scale_grad_by_freq."""
        out = np.take(gg, self.indices, axis=0)
        if self.padding_idx >= 0:
            out[self.indices == self.padding_idx] = 0
        if self.scale_grad_by_freq:
            counts = np.bincount(self.flat, minlength=self.num).astype(gg.dtype)
            out /= counts[self.indices][..., None]
        return out


def renorm_rows(w, indices, max_norm, norm_type):
    """W[k] *= max_norm / (norm + 1e-7) in place for each distinct k in indices whose row's
    norm_type-norm exceeds max_norm (torch's embedding_renorm_; no gradient). The norm is the
    dtype's exact sum (one fixed order for every row) of |w|**p, to the power 1/p."""
    rows = np.unique(indices)
    if rows.size == 0:
        return
    block = w[rows]
    p = float(norm_type)
    if p == 2:
        norms = np.sqrt(float_sum(block * block, (1,)))
    elif p == 1:
        norms = float_sum(np.abs(block), (1,))
    elif p == np.inf:
        norms = np.abs(block).max(axis=1)
    else:
        norms = float_sum(np.abs(block) ** w.dtype.type(p), (1,)) ** w.dtype.type(1 / p)
    norms = norms.astype(np.float64)  # torch reads the norm as a double
    over = norms > max_norm
    if over.any():
        scale = (max_norm / (norms[over] + 1e-7)).astype(w.dtype)
        w[rows[over]] = block[over] * scale[:, None]
