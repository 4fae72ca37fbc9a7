"""The exact backend: the Cython kernels, and thin wrappers where a kernel wants its outputs
made for it.

Inputs arrive validated by `cygrad.backend` (dtype, shapes); the kernels check dtype, sizes and
contiguity again in C, so nothing unchecked ever reaches boundscheck-free code. The hot kernels
(gemm, elementwise, reduce) are called directly: a Python layer here cost a fifth of a small
layer's time.
"""

import numpy as np

from cygrad._C import conv, elementwise, loss, optim, reduce
from cygrad._C import gemm as _gemm

from . import numpy_backend

try:  # the graph's array locks, compiled (cygrad.ops has them in Python too)
    from cygrad._C.graph import Lease
except ImportError:  # a partial build (CYGRAD_KERNELS=...): the Python ones serve
    Lease = None

# Threads are woken only for work of about 100 µs and more: waking a sleeping OpenMP thread
# costs microseconds on an idle machine and much more on a busy one. Only speed depends on
# these: every kernel gives the same bits for any thread count. Elements per 100 µs (the
# elementwise and reduce kernels hold the same numbers as module attributes, gemm its
# `serial_macs`):
_CHEAP = 1 << 20  # a select or an add an element (relu, bias, sums, copies)
_COSTLY = 1 << 16  # tanh, sigmoid, exp


def _threads(size, num_threads, per=_CHEAP):
    return num_threads if size >= per else 1


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


# (a, b, trans_a, trans_b, num_threads) -> a new C; the kernel allocates it and runs products
# below its `serial_macs` on one thread
gemm = _gemm.product


# The elementwise and reduce kernels allocate their outputs, copy strided inputs and pick their
# thread count themselves (thresholds as below, module attributes there): they are this
# backend's functions as they stand.
KERNELS = frozenset(elementwise.KERNELS)  # the elementwise kernels this build has
activation_forward = elementwise.activation_forward
activation_backward = elementwise.activation_backward
bias_add = elementwise.bias_add
bias_activation = elementwise.bias_activation
activation_backward_bias = elementwise.activation_backward_bias
column_sum = reduce.column_sum
channel_sum = reduce.channel_sum


def sum_to_shape(g, axes, shape, num_threads):
    kept = [i for i in range(g.ndim) if i not in axes]
    n_rows = int(np.prod([g.shape[i] for i in axes]))
    n_cols = int(np.prod([g.shape[i] for i in kept]))
    rows = np.ascontiguousarray(g.transpose(list(axes) + kept)).reshape(n_rows, n_cols)
    return column_sum(rows, num_threads).reshape(shape)


def log_softmax_nll(logits, targets, num_threads):
    logits = _c(logits)
    logp = np.empty(logits.shape, logits.dtype)
    losses = np.empty(logits.shape[0], dtype=logits.dtype)
    loss.log_softmax_nll(logits, targets, logp, losses,
                         _threads(logits.size, num_threads, _COSTLY))
    return losses, logp


def log_softmax_nll_backward(logp, targets, g_rows, num_threads):
    logp = _c(logp)
    dx = np.empty(logp.shape, logp.dtype)
    loss.log_softmax_nll_backward(logp, targets, _c(g_rows), dx,
                                  _threads(dx.size, num_threads, _COSTLY))
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


def im2col_t(x, kh, kw, stride, padding, oh, ow, num_threads):
    x = _c(x)
    n, c = x.shape[:2]
    cols_t = np.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    conv.im2col_t(x, cols_t, kh, kw, stride, padding, oh, ow, _threads(cols_t.size, num_threads))
    return cols_t


def col2im_t(cols_t, x_shape, kh, kw, stride, padding, oh, ow, num_threads):
    cols_t = _c(cols_t)
    x = np.empty(x_shape, dtype=cols_t.dtype)
    conv.col2im_t(cols_t, x, kh, kw, stride, padding, oh, ow, _threads(cols_t.size, num_threads))
    return x


_NO_BIAS = {np.dtype(np.float32): np.empty(0, np.float32),
            np.dtype(np.float64): np.empty(0, np.float64)}


def planes_to_images(planes, bias, n, p, num_threads):
    planes = _c(planes)
    out = np.empty((n, planes.shape[0], p), planes.dtype)
    b = _NO_BIAS[planes.dtype] if bias is None else _c(bias)
    conv.planes_to_images(planes, b, out, _threads(out.size, num_threads))
    return out


# The optimiser kernels return (strided, refused): strided pairs are left to the numpy twin (the
# same bits; it makes its own read-only claim), refused ones (read-only parameters) go back to
# the optimiser, which retries them on a copy.

def _pick(positions):
    return lambda items: None if items is None else [items[i] for i in positions]


def _refused(refused, strided, again):
    return refused + [strided[j] for j in again] if again else refused


def sgd_update(params, grads, lr, momentum, dampening, nesterov, weight_decay, bufs, fresh,
               maximize):
    strided, refused = optim.sgd(params, grads, lr, momentum, dampening, nesterov,
                                 weight_decay, bufs, fresh, maximize)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.sgd_update(pick(params), pick(grads), lr, momentum, dampening,
                                         nesterov, weight_decay, pick(bufs), pick(fresh),
                                         maximize)
        refused = _refused(refused, strided, again)
    return refused


def adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2,
                eps, weight_decay, decoupled, amsgrad, maximize):
    strided, refused = optim.adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                                  lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                                  maximize)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.adam_update(
            pick(params), pick(grads), pick(exp_avgs), pick(exp_avg_sqs),
            pick(max_exp_avg_sqs), pick(steps), lr, beta1, beta2, eps, weight_decay, decoupled,
            amsgrad, maximize)
        refused = _refused(refused, strided, again)
    return refused


def rmsprop_update(params, grads, square_avgs, grad_avgs, momentum_buffers, steps, lr, alpha,
                   eps, weight_decay, momentum, centered, maximize):
    strided, refused = optim.rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers,
                                     steps, lr, alpha, eps, weight_decay, momentum, centered,
                                     maximize)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.rmsprop_update(
            pick(params), pick(grads), pick(square_avgs), pick(grad_avgs),
            pick(momentum_buffers), pick(steps), lr, alpha, eps, weight_decay, momentum,
            centered, maximize)
        refused = _refused(refused, strided, again)
    return refused


def adagrad_update(params, grads, state_sums, steps, lr, lr_decay, weight_decay, eps, maximize):
    strided, refused = optim.adagrad(params, grads, state_sums, steps, lr, lr_decay,
                                     weight_decay, eps, maximize)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.adagrad_update(pick(params), pick(grads), pick(state_sums),
                                             pick(steps), lr, lr_decay, weight_decay, eps,
                                             maximize)
        refused = _refused(refused, strided, again)
    return refused


def adadelta_update(params, grads, square_avgs, acc_deltas, steps, lr, rho, eps, weight_decay,
                    maximize):
    strided, refused = optim.adadelta(params, grads, square_avgs, acc_deltas, steps, lr, rho,
                                      eps, weight_decay, maximize)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.adadelta_update(pick(params), pick(grads), pick(square_avgs),
                                              pick(acc_deltas), pick(steps), lr, rho, eps,
                                              weight_decay, maximize)
        refused = _refused(refused, strided, again)
    return refused
