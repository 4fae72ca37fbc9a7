"""The exact backend: the Cython kernels, and thin wrappers where a kernel wants its outputs
made for it.

Inputs arrive validated by `cygrad.backend` (dtype, shapes); the kernels check dtype, sizes and
contiguity again in C, so nothing unchecked ever reaches boundscheck-free code. The hot kernels
(gemm, elementwise, reduce) are called directly: a Python layer here cost a fifth of a small
layer's time.
"""

import math

import numpy as np

from cygrad._C import conv, elementwise, loss, norms, optim, pool, reduce, transformer
from cygrad._C import gemm as _gemm

from . import numpy_backend

try:  # the graph's array locks, compiled (cygrad.ops has them in Python too)
    from cygrad._C.graph import Lease
except ImportError:  # a partial build (CYGRAD_KERNELS=...): the Python ones serve
    Lease = None

try:  # the symmetry monitor's check that values all differ, compiled (backend.all_differ)
    from cygrad._C.symmetry import all_differ as _all_differ
except ImportError:  # a partial build: the numpy twin serves
    _all_differ = None

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
    """a as the kernels read it: C-contiguous and aligned (a copy when it is not)."""
    flags = a.flags
    return a if flags.c_contiguous and flags.aligned else np.array(a, order="C")


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
dropout = elementwise.dropout
column_sum = reduce.column_sum
row_sum = reduce.row_sum
channel_sum = reduce.channel_sum


def sum(x, axes, num_threads):
    """The sum over `axes` (sorted) by the tree over the reduced elements in C order of those
    axes, on the array as it lies where a kernel reads that order: column_sum when the reduced
    axes lead in memory, row_sum when they trail, channel_sum when they surround the kept ones;
    otherwise column_sum of a copy with the reduced axes moved first."""
    if not axes:
        return x.copy()
    shape, ndim, k = x.shape, x.ndim, len(axes)
    kept = tuple(shape[i] for i in range(ndim) if i not in axes)
    reduced, size = math.prod(shape[a] for a in axes), math.prod(kept)
    flags = x.flags
    if flags.c_contiguous:
        if axes[-1] == k - 1:  # the leading axes: (reduced, kept) rows
            return column_sum(x.reshape(reduced, size), num_threads).reshape(kept)
        if axes[0] == ndim - k:  # the trailing axes: one row a sum
            return row_sum(x.reshape(size, reduced), num_threads).reshape(kept)
        lead = next(i for i in range(ndim) if i not in axes)
        if axes == tuple(range(lead)) + tuple(range(lead + ndim - k, ndim)):
            # the kept axes form one block between reduced ones: (A, kept, P), summed over
            # r = a*P + p, the C order of the reduced axes (a convolution's channel sum)
            return channel_sum(x.reshape(math.prod(shape[:lead]), size,
                                         math.prod(shape[lead + ndim - k:])),
                               num_threads).reshape(kept)
    elif flags.f_contiguous and ndim == 2 and k == 1:  # x.T is C-contiguous
        return (row_sum if axes == (0,) else column_sum)(x.T, num_threads)
    kept_axes = [i for i in range(ndim) if i not in axes]
    rows = np.ascontiguousarray(x.transpose(list(axes) + kept_axes)).reshape(reduced, size)
    return column_sum(rows, num_threads).reshape(kept)


def sum_to_shape(g, axes, shape, num_threads):
    return sum(g, axes, num_threads).reshape(shape)


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


# ---------------------------------------------------------------- convolution and pooling

def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    x = _c(x)
    n, c = x.shape[:2]
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    conv.im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                _threads(cols.size, num_threads))
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    cols = _c(cols)
    x = np.empty(x_shape, dtype=cols.dtype)
    conv.col2im(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                _threads(cols.size, num_threads))
    return x


def im2col_t(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    x = _c(x)
    n, c = x.shape[:2]
    cols_t = np.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    conv.im2col_t(x, cols_t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                  _threads(cols_t.size, num_threads))
    return cols_t


def col2im_t(cols_t, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads, out=None):
    cols_t = _c(cols_t)
    x = np.empty(x_shape, dtype=cols_t.dtype) if out is None else out
    conv.col2im_t(cols_t, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                  _threads(cols_t.size, num_threads))
    return x


def gemm_into(a, b, out, trans_a, trans_b, accumulate, num_threads):
    return _gemm.gemm(a, b, out, trans_a, trans_b, num_threads, accumulate)


_NO_BIAS = {np.dtype(np.float32): np.empty(0, np.float32),
            np.dtype(np.float64): np.empty(0, np.float64)}


def planes_to_images(planes, bias, n, p, num_threads):
    planes = _c(planes)
    out = np.empty((n, planes.shape[0], p), planes.dtype)
    b = _NO_BIAS[planes.dtype] if bias is None else _c(bias)
    conv.planes_to_images(planes, b, out, _threads(out.size, num_threads))
    return out


def conv_image(x, w2, bias, out, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    b = _NO_BIAS[x.dtype] if bias is None else _c(bias)
    _gemm.conv_image(_c(x), _c(w2), b, out, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                     num_threads)
    return out


def conv_image_grad(x, g, out, accumulate, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    _gemm.conv_image_grad(_c(x), _c(g), out, accumulate, kh, kw, sh, sw, ph, pw, dh, dw, oh,
                          ow, num_threads)
    return out


def conv_image_backward(x, g, w2, dw, dx, kh, kw, sh, sw, ph, pw, dh, dwl, oh, ow,
                        num_threads):
    x, g, w2 = _c(x), _c(g), _c(w2)
    geometry = (kh, kw, sh, sw, ph, pw, dh, dwl, oh, ow)
    dcols = None if dx is None else np.empty((w2.shape[1], oh * ow), x.dtype)
    for i in range(x.shape[0]):
        if dw is not None:
            _gemm.conv_image_grad(x[i:i + 1], g[i:i + 1], dw, i > 0, *geometry, num_threads)
        if dx is not None:
            _gemm.gemm(w2, g[i], dcols, True, False, num_threads)
            conv.col2im_t(dcols, dx[i:i + 1], *geometry, _threads(dcols.size, num_threads))


def add_channel_bias(y, b, num_threads):
    conv.add_channel_bias(y, _c(b), _threads(y.size, num_threads))
    return y


def max_pool(x, hs, he, ws, we, dh, dw, num_threads):
    x = _c(x)
    out = np.empty((x.shape[0], len(hs), len(ws)), x.dtype)
    idx = np.empty(out.shape, np.int64)
    pool.max_pool(x, out, idx, hs, he, ws, we, dh, dw, _threads(x.size, num_threads))
    return out, idx


def max_pool_backward(g, idx, in_shape, num_threads):
    dx = np.empty(in_shape, g.dtype)
    pool.max_pool_backward(_c(g), _c(idx), dx, _threads(dx.size, num_threads))
    return dx


def avg_pool(x, hs, he, ws, we, hc, wc, divisor_override, num_threads):
    x = _c(x)
    out = np.empty((x.shape[0], len(hs), len(ws)), x.dtype)
    pool.avg_pool(x, out, hs, he, ws, we, hc, wc, divisor_override,
                  _threads(x.size, num_threads))
    return out


def avg_pool_backward(g, in_shape, hs, he, ws, we, hc, wc, divisor_override, num_threads):
    dx = np.empty(in_shape, g.dtype)
    pool.avg_pool_backward(_c(g), dx, hs, he, ws, we, hc, wc, divisor_override,
                           _threads(dx.size, num_threads))
    return dx


# The optimiser kernels return (strided, refused): strided pairs are left to the numpy twin (the
# same bits; it makes its own read-only claim), refused ones (read-only parameters) go back to
# the optimiser, which retries them on a copy.

def _pick(positions):
    return lambda items: None if items is None else [items[i] for i in positions]


def _refused(refused, strided, again):
    return refused + [strided[j] for j in again] if again else refused


def sgd_update(params, grads, lr, momentum, dampening, nesterov, weight_decay, bufs, fresh,
               maximize, num_threads=1):
    strided, refused = optim.sgd(params, grads, lr, momentum, dampening, nesterov,
                                 weight_decay, bufs, fresh, maximize, num_threads)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.sgd_update(pick(params), pick(grads), lr, momentum, dampening,
                                         nesterov, weight_decay, pick(bufs), pick(fresh),
                                         maximize)
        refused = _refused(refused, strided, again)
    return refused


def adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2,
                eps, weight_decay, decoupled, amsgrad, maximize, num_threads=1):
    strided, refused = optim.adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                                  lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                                  maximize, num_threads)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.adam_update(
            pick(params), pick(grads), pick(exp_avgs), pick(exp_avg_sqs),
            pick(max_exp_avg_sqs), pick(steps), lr, beta1, beta2, eps, weight_decay, decoupled,
            amsgrad, maximize)
        refused = _refused(refused, strided, again)
    return refused


def rmsprop_update(params, grads, square_avgs, grad_avgs, momentum_buffers, steps, lr, alpha,
                   eps, weight_decay, momentum, centered, maximize, num_threads=1):
    strided, refused = optim.rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers,
                                     steps, lr, alpha, eps, weight_decay, momentum, centered,
                                     maximize, num_threads)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.rmsprop_update(
            pick(params), pick(grads), pick(square_avgs), pick(grad_avgs),
            pick(momentum_buffers), pick(steps), lr, alpha, eps, weight_decay, momentum,
            centered, maximize)
        refused = _refused(refused, strided, again)
    return refused


def adagrad_update(params, grads, state_sums, steps, lr, lr_decay, weight_decay, eps, maximize,
                   num_threads=1):
    strided, refused = optim.adagrad(params, grads, state_sums, steps, lr, lr_decay,
                                     weight_decay, eps, maximize, num_threads)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.adagrad_update(pick(params), pick(grads), pick(state_sums),
                                             pick(steps), lr, lr_decay, weight_decay, eps,
                                             maximize)
        refused = _refused(refused, strided, again)
    return refused


# Adamax, NAdam and RAdam have no native kernel yet: their numpy twins run (elementwise,
# each element the same operations wherever it lies)
adamax_update = numpy_backend.adamax_update
nadam_update = numpy_backend.nadam_update
radam_update = numpy_backend.radam_update
rprop_update = numpy_backend.rprop_update
asgd_update = numpy_backend.asgd_update


def adadelta_update(params, grads, square_avgs, acc_deltas, steps, lr, rho, eps, weight_decay,
                    maximize, num_threads=1):
    strided, refused = optim.adadelta(params, grads, square_avgs, acc_deltas, steps, lr, rho,
                                      eps, weight_decay, maximize, num_threads)
    if strided:
        pick = _pick(strided)
        again = numpy_backend.adadelta_update(pick(params), pick(grads), pick(square_avgs),
                                              pick(acc_deltas), pick(steps), lr, rho, eps,
                                              weight_decay, maximize)
        refused = _refused(refused, strided, again)
    return refused


# the transformer layers' kernels (csrc/gemm.pyx's batched entry, csrc/transformer.pyx)
batched_gemm = _gemm.batched_product
embedding_backward = transformer.embedding_backward
softmax_rows = transformer.softmax_rows
softmax_rows_backward = transformer.softmax_rows_backward


# ---------------------------------------------------------------- layer normalisation

def layer_norm(x, w, b, eps, num_threads):
    if x.shape[1] == 0:  # rows of nothing: the twin's zeros
        return numpy_backend.layer_norm(x, w, b, eps, num_threads)
    return norms.layer_norm(_c(x), w, b, eps, num_threads)


def layer_norm_backward(g, xhat, rstd, w, need_dx, need_dw, need_db, num_threads):
    return norms.layer_norm_backward(_c(g), xhat, rstd, w, need_dx, need_dw, need_db,
                                     num_threads)


mse = loss.mse
