"""The numpy twin of the kernel contract: the spec, the test oracle and the benchmark baseline.

matmul runs through numpy's BLAS (OpenBLAS in numpy's wheels), whose kernels may treat output
positions differently: this backend is also the demonstration of rounding breaking symmetry.
Inputs arrive validated by `cygrad.backend`; `num_threads` is accepted for a uniform signature
(numpy's BLAS has its own thread pool).
"""

import numpy as np


def gemm(a, b, trans_a, trans_b, num_threads):
    """C := op(A) @ op(B)."""
    return np.matmul(a.T if trans_a else a, b.T if trans_b else b)


# Elementwise ops have no numpy twin here: the op table (cygrad/ops/elementwise.py) states each
# one's forward and backward in numpy, and ops run that where the backend has no kernel.
KERNELS = frozenset()


def bias_add(x, b, out, num_threads):
    return np.add(x, b, out=out)


def column_sum(g, num_threads):
    return g.sum(axis=0)


def channel_sum(g, num_threads):
    """The column sum of g (n, c, p) laid out as (n*p, c) rows."""
    return column_sum(np.ascontiguousarray(g.transpose(0, 2, 1)).reshape(-1, g.shape[1]),
                      num_threads)


def sum_to_shape(g, axes, shape, num_threads):
    return g.sum(axis=axes).reshape(shape)


def log_softmax_nll(logits, targets, num_threads):
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -logp[np.arange(len(targets)), targets]
    return losses, logp


def log_softmax_nll_backward(logp, targets, g_rows, num_threads):
    dx = np.exp(logp)
    dx[np.arange(len(targets)), targets] -= 1
    return dx * g_rows[:, None]


def im2col(x, kh, kw, stride, padding, oh, ow, num_threads):
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            cols[:, :, :, :, i, j] = patch.transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * kh * kw)


def col2im(cols, x_shape, kh, kw, stride, padding, oh, ow, num_threads):
    n, c, h, w = x_shape
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += (
                patches[:, :, :, :, i, j].transpose(0, 3, 1, 2))
    return xp[:, :, padding:padding + h, padding:padding + w].copy()


def im2col_t(x, kh, kw, stride, padding, oh, ow, num_threads):
    return np.ascontiguousarray(im2col(x, kh, kw, stride, padding, oh, ow, num_threads).T)


def col2im_t(cols_t, x_shape, kh, kw, stride, padding, oh, ow, num_threads):
    return col2im(cols_t.T, x_shape, kh, kw, stride, padding, oh, ow, num_threads)


def planes_to_images(planes, bias, n, p, num_threads):
    images = planes.reshape(planes.shape[0], n, p).transpose(1, 0, 2)
    if bias is None:
        return np.ascontiguousarray(images)
    return np.add(images, bias[:, None], order="C")


# ---------------------------------------------------------------- optimisers
# Each update follows torch.optim's single-tensor CPU path (`_single_tensor_sgd`, ...) operation
# by operation, in its order, each rounded in the parameter's dtype, with torch's scalar options
# rounded to that dtype first. Where torch's CPU kernels fuse a multiply and an add into one
# rounding (add(alpha=), addcmul, lerp run as fused multiply-adds), numpy rounds the product and
# the sum separately, and so do the kernels (csrc/optim.pyx): those elements may differ from
# torch's in the last place. A step counter (torch's `state["step"]`, a 0-d float array) is
# advanced in place and read as a Python float, as torch's `step_t += 1; step_t.item()`.
#
# Every function returns the positions of the parameters it refused because they were
# read-only (a live graph saved them): nothing of theirs, state included, is written, and the
# optimiser retries them on a copy. Writes go through a view taken at the start (`_claim`): it
# keeps the write flag of that moment, as the kernel's buffer does, so another thread locking
# the array meanwhile cannot fail an update halfway.


def _claim(params):
    """(targets, refused): a writable view of each parameter (None where it is read-only) and
    the positions of the read-only ones. A view's write flag is copied when it is made, in one
    step: the check and the claim cannot be separated by another thread."""
    targets, refused = [], []
    for i, p in enumerate(params):
        view = p.view()
        if view.flags.writeable:
            targets.append(view)
        else:
            targets.append(None)
            refused.append(i)
    return targets, refused


def _count(step):
    """torch's `step_t += 1; step = step_t.item()`: the 0-d counter advances in its own dtype."""
    step += 1
    return float(step)


def _lerp_(start, end, weight):
    """start := start + weight * (end - start), in place, with torch's two-sided formula: for
    |weight| >= 0.5 torch computes end - (end - start) * (1 - weight), exact at weight = 1.
    weight is rounded to the dtype first, and 1 - weight is formed in the dtype."""
    weight = start.dtype.type(weight)
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def sgd_update(params, grads, lr, momentum, dampening, nesterov, weight_decay, bufs, fresh,
               maximize):
    """SGD (torch's `_single_tensor_sgd`) for each parameter; a fresh momentum buffer takes the
    gradient itself (after weight decay):

        g = -grad if maximize else grad
        g = g + weight_decay * p                     (weight_decay != 0)
        buf = g  (fresh)  or  buf = buf * momentum + (1 - dampening) * g
        g = g + momentum * buf  (nesterov)  or  g = buf          (momentum != 0)
        p = p - lr * g
    """
    targets, refused = _claim(params)
    for i, p in enumerate(targets):
        if p is None:
            continue
        g, dt = grads[i], p.dtype.type
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        if momentum != 0:
            buf = bufs[i]
            if fresh[i]:
                buf[...] = g
            else:
                buf *= dt(momentum)
                buf += dt(1 - dampening) * g
            g = g + dt(momentum) * buf if nesterov else buf
        p -= dt(lr) * g
    return refused


def adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2,
                eps, weight_decay, decoupled, amsgrad, maximize):
    """Adam / AdamW (torch's `_single_tensor_adam`) for each parameter:

        t = step + 1                                 (the counter, advanced in place)
        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)   (decoupled)   or   g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1)
        v = v * beta2 + (1 - beta2) * g * g
        vmax = maximum(vmax, v); use vmax for v    (amsgrad)
        p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The bias corrections are Python floats (double), as torch forms them; sqrt(1 - beta2**t) is
    `(1 - beta2**t) ** 0.5`.
    """
    targets, refused = _claim(params)
    for i, p in enumerate(targets):
        if p is None:
            continue
        g, m, v, dt = grads[i], exp_avgs[i], exp_avg_sqs[i], p.dtype.type
        t = _count(steps[i])
        if maximize:
            g = -g
        if weight_decay != 0:
            if decoupled:
                p *= dt(1 - lr * weight_decay)
            else:
                g = g + dt(weight_decay) * p
        _lerp_(m, g, 1 - beta1)
        v *= dt(beta2)
        v += dt(1 - beta2) * g * g
        step_size = lr / (1 - beta1 ** t)
        correction = (1 - beta2 ** t) ** 0.5
        if amsgrad:
            v = np.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
        denom = np.sqrt(v) / dt(correction) + dt(eps)
        p -= dt(step_size) * m / denom
    return refused


def rmsprop_update(params, grads, square_avgs, grad_avgs, momentum_buffers, steps, lr, alpha,
                   eps, weight_decay, momentum, centered, maximize):
    """RMSprop (torch's `_single_tensor_rmsprop`) for each parameter:

        g = -grad if maximize else grad;  g = g + weight_decay * p   (weight_decay != 0)
        sq = sq * alpha + (1 - alpha) * g * g
        avg = sqrt(sq - ga * ga) with ga = lerp(ga, g, 1 - alpha)  (centered)  or  sqrt(sq)
        avg = avg + eps
        buf = buf * momentum + g / avg;  p = p - lr * buf           (momentum > 0)
        p = p - lr * g / avg                                         (otherwise)
    """
    targets, refused = _claim(params)
    for i, p in enumerate(targets):
        if p is None:
            continue
        g, sq, dt = grads[i], square_avgs[i], p.dtype.type
        _count(steps[i])
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        sq *= dt(alpha)
        sq += dt(1 - alpha) * g * g
        if centered:
            ga = grad_avgs[i]
            _lerp_(ga, g, 1 - alpha)
            with np.errstate(invalid="ignore"):  # below zero by rounding: NaN, as torch's
                avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += dt(eps)
        if momentum > 0:
            buf = momentum_buffers[i]
            buf *= dt(momentum)
            buf += g / avg
            p -= dt(lr) * buf
        else:
            p -= dt(lr) * g / avg
    return refused


def adagrad_update(params, grads, state_sums, steps, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad (torch's `_single_tensor_adagrad`, dense gradients) for each parameter:

        t = step + 1;  g = -grad if maximize else grad;  g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)            (a Python float)
        s = s + g * g
        p = p - clr * g / (sqrt(s) + eps)
    """
    targets, refused = _claim(params)
    for i, p in enumerate(targets):
        if p is None:
            continue
        g, s, dt = grads[i], state_sums[i], p.dtype.type
        t = _count(steps[i])
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s += g * g
        std = np.sqrt(s)
        std += dt(eps)
        p -= dt(clr) * g / std
    return refused


def adadelta_update(params, grads, square_avgs, acc_deltas, steps, lr, rho, eps, weight_decay,
                    maximize):
    """Adadelta (torch's `_single_tensor_adadelta`) for each parameter:

        g = -grad if maximize else grad;  g = g + weight_decay * p   (weight_decay != 0)
        sq = sq * rho + (1 - rho) * g * g
        delta = sqrt(acc + eps) / sqrt(sq + eps) * g
        acc = acc * rho + (1 - rho) * delta * delta
        p = p - lr * delta
    """
    targets, refused = _claim(params)
    for i, p in enumerate(targets):
        if p is None:
            continue
        g, sq, acc, dt = grads[i], square_avgs[i], acc_deltas[i], p.dtype.type
        _count(steps[i])
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + dt(weight_decay) * p
        sq *= dt(rho)
        sq += dt(1 - rho) * g * g
        std = np.sqrt(sq + dt(eps))
        delta = np.sqrt(acc + dt(eps))
        delta /= std
        delta *= g
        acc *= dt(rho)
        acc += dt(1 - rho) * delta * delta
        p -= dt(lr) * delta
    return refused
