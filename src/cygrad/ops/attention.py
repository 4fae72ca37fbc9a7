"""Scaled dot-product attention: weights P = softmax(scale * q @ k^T + mask) and output P @ v.

Shapes: q (..., L, E), k (..., S, E), v (..., S, Ev), the batch dims (...) broadcasting; a mask
is bool (True: take part; False: -inf) or float (added), broadcasting to (..., L, S); `causal`
keeps column j of query row i only when j <= i (torch's is_causal: tril(ones(L, S))).

Every product is the backend's batched exact gemm, one product per batch element and head,
and the softmax is the backend's row kernel (one fixed order inside a row, rows independent):
so two heads whose queries, keys and values are equal get bitwise equal weights, outputs and
gradients, at any batch size and thread count. A row with nothing to attend to gets zero weights
(torch's rule).
"""

import numpy as np

from .. import backend as B
from . import Op


def _batched(a, batch):
    """a (..., r, c) broadcast to batch + (r, c), as (prod(batch), r, c): a view when it can."""
    full = np.broadcast_to(a, batch + a.shape[-2:])
    return full.reshape((-1,) + a.shape[-2:])


def _unbatched(g, batch, shape):
    """g (prod(batch), r, c) back to an operand's shape (broadcast dims summed exactly)."""
    g = g.reshape(batch + g.shape[-2:])
    return g if g.shape == shape else B.sum_to_shape(g, shape)


class AttentionWeights(Op):
    """P = softmax(scale * q @ k^T + mask) along the keys"""

    rule = ("dS = P * (dP - sum(dP * P)) (a row's sum);  dq = scale * dS @ k;  "
            "dk = scale * dS^T @ q;  dmask = dS summed to the mask's shape")
    saves = (0, 1)
    saves_output = True

    def forward(self, q, k, *mask):
        return self._weights(q, k, mask[0] if mask else None)

    def _weights(self, q, k, float_mask):
        """P (the batch's shape + (L, S)); `batch` (a parameter) is the broadcast of every
        operand's batch dims."""
        batch = self.batch
        self.q_shape, self.k_shape = q.shape, k.shape
        self.q3, self.k3 = q3, k3 = _batched(q, batch), _batched(k, batch)
        s = B.batched_gemm(q3, k3, False, True)  # (n, L, S)
        length = s.shape[1]
        t = s.dtype.type
        self.kernel_scale = self.scale  # the kernel scales, unless a mask comes first
        if float_mask is not None or self.bool_mask is not None:
            s = s.reshape(batch + s.shape[1:]) * t(self.scale)
            self.kernel_scale = 1.0
            if float_mask is not None:
                self.m_shape = float_mask.shape
                s = s + float_mask
            if self.bool_mask is not None:
                s = np.where(self.bool_mask, s, t(-np.inf))
        self.p = B.softmax_rows(s, self.kernel_scale, length if self.causal else 0,
                                0).reshape((-1,) + s.shape[-2:])
        return self.p.reshape(batch + self.p.shape[1:])

    def backward(self, g):
        return self._weights_backward(g.reshape(self.p.shape))

    def _weights_backward(self, dp):
        needs, batch, t = self.needs, self.batch, dp.dtype.type
        dz = B.softmax_rows_backward(self.p, dp, self.kernel_scale)
        ds = dz if self.kernel_scale != 1.0 or self.scale == 1.0 else dz * t(self.scale)
        dq = dk = dm = None
        if needs[0]:
            dq = _unbatched(B.batched_gemm(ds, self.k3), batch, self.q_shape)
        if needs[1]:
            dk = _unbatched(B.batched_gemm(ds, self.q3, True, False), batch, self.k_shape)
        grads = [dq, dk]
        if len(needs) > self.mask_input:  # the float mask: dz (the softmax input's gradient)
            if needs[self.mask_input]:
                dm = B.sum_to_shape(dz.reshape(batch + dz.shape[1:]), self.m_shape)
            grads.insert(self.mask_input, dm)
        return tuple(grads)

    mask_input = 2

    def decompose(self, q, k, *mask):
        """P as recorded ops (backward with create_graph=True differentiates this: a row
        with nothing to attend to has NaN derivatives here, zero weights in forward)."""
        from .higher import const, where_const

        s = (q @ k.transpose(-1, -2)) * self.scale
        if mask:
            s = s + mask[0]
        keep = self.bool_mask
        if self.causal:
            rows, cols = s.shape[-2:]
            tri = np.tril(np.ones((rows, cols), bool))
            keep = tri if keep is None else keep & tri
        if keep is not None:
            s = where_const(keep, s, const(np.asarray(-np.inf, s._data.dtype)))
        return s.softmax(-1)


class Attention(AttentionWeights):
    """y = softmax(scale * q @ k^T + mask) @ v"""

    rule = ("dv = P^T @ g;  dP = g @ v^T;  dS = P * (dP - sum(dP * P));  dq = scale * dS @ k;  "
            "dk = scale * dS^T @ q;  dmask = dS summed to the mask's shape")
    saves = (0, 1, 2)
    saves_output = False
    mask_input = 3

    def decompose(self, q, k, v, *mask):
        return AttentionWeights.decompose(self, q, k, *mask) @ v

    def forward(self, q, k, v, *mask):
        self._weights(q, k, mask[0] if mask else None)
        self.v_shape = v.shape
        self.v3 = v3 = _batched(v, self.batch)
        y = B.batched_gemm(self.p, v3)
        return y.reshape(self.batch + y.shape[1:])

    def backward(self, g):
        g3 = g.reshape((-1,) + g.shape[-2:])
        dv = None
        if self.needs[2]:
            dv = _unbatched(B.batched_gemm(self.p, g3, True, False), self.batch, self.v_shape)
        dp = B.batched_gemm(g3, self.v3, False, True)
        grads = list(self._weights_backward(dp))
        grads.insert(2, dv)
        return tuple(grads)
