"""The exact backend: thin wrappers that allocate outputs and call the Cython kernels.

Inputs arrive validated by `cygrad.backend` (dtype, shapes); here they are only made
contiguous where a kernel needs it, so nothing unchecked ever reaches boundscheck-free code.
"""

import numpy as np

from cygrad._C import conv, elementwise, loss, reduce
from cygrad._C import gemm as _gemm

_ACT = {"tanh": 0, "sigmoid": 1, "relu": 2, "leaky_relu": 3}

# Below this many elements a second thread costs more than it saves. Only speed depends on it:
# every kernel gives the same bits for any thread count.
_PARALLEL_MIN = 1 << 15


def _threads(size, num_threads):
    return num_threads if size >= _PARALLEL_MIN else 1


def gemm(a, b, trans_a, trans_b, num_threads):
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    k = a.shape[0] if trans_a else a.shape[1]
    c = np.empty((m, n), dtype=a.dtype)
    _gemm.gemm(a, b, c, trans_a, trans_b, _threads(m * n * k // 32, num_threads))
    return c


def activation_forward(name, x, slope, num_threads):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    elementwise.activation_forward(_ACT[name], x.reshape(-1), y.reshape(-1), slope,
                                   _threads(x.size, num_threads))
    return y


def activation_backward(name, grad, saved, slope, num_threads):
    grad = np.ascontiguousarray(grad)
    saved = np.ascontiguousarray(saved)
    dx = np.empty_like(grad)
    elementwise.activation_backward(_ACT[name], grad.reshape(-1), saved.reshape(-1),
                                    dx.reshape(-1), slope, _threads(dx.size, num_threads))
    return dx


def bias_add(x, b, num_threads):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    elementwise.bias_add(x, np.ascontiguousarray(b), y, _threads(x.size, num_threads))
    return y


def column_sum(g, num_threads):
    g = np.ascontiguousarray(g)
    s = np.empty(g.shape[1], dtype=g.dtype)
    reduce.column_sum(g, s, _threads(g.size, num_threads))
    return s


def sum_to_shape(g, axes, shape, num_threads):
    kept = [i for i in range(g.ndim) if i not in axes]
    n_rows = int(np.prod([g.shape[i] for i in axes]))
    n_cols = int(np.prod([g.shape[i] for i in kept]))
    rows = np.ascontiguousarray(g.transpose(list(axes) + kept)).reshape(n_rows, n_cols)
    return column_sum(rows, num_threads).reshape(shape)


def log_softmax_nll(logits, targets, num_threads):
    logits = np.ascontiguousarray(logits)
    logp = np.empty_like(logits)
    losses = np.empty(logits.shape[0], dtype=logits.dtype)
    loss.log_softmax_nll(logits, targets, logp, losses, _threads(logits.size, num_threads))
    return losses, logp


def log_softmax_nll_backward(logp, targets, g_rows, num_threads):
    logp = np.ascontiguousarray(logp)
    dx = np.empty_like(logp)
    loss.log_softmax_nll_backward(logp, targets, np.ascontiguousarray(g_rows), dx,
                                  _threads(dx.size, num_threads))
    return dx


def im2col(x, kh, kw, stride, padding, oh, ow, num_threads):
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    conv.im2col(x, cols, kh, kw, stride, padding, oh, ow, _threads(cols.size, num_threads))
    return cols


def col2im(cols, x_shape, kh, kw, stride, padding, oh, ow, num_threads):
    cols = np.ascontiguousarray(cols)
    x = np.empty(x_shape, dtype=cols.dtype)
    conv.col2im(cols, x, kh, kw, stride, padding, oh, ow, _threads(cols.size, num_threads))
    return x
