"""The numpy twin of the kernel contract: the spec, the test oracle and the benchmark baseline.

matmul runs through numpy's BLAS (OpenBLAS in numpy's wheels), whose kernels may treat output
positions differently: this backend is also the demonstration of rounding breaking symmetry.
Inputs arrive validated by `cygrad.backend`; `num_threads` is accepted for a uniform signature
(numpy's BLAS has its own thread pool).
"""

import math

import numpy as np

# The length of the summation tree's leaf chains (csrc/sums.h: CG_LEAF).
LEAF = 32


def gemm(a, b, trans_a, trans_b, num_threads):
    """C := op(A) @ op(B)."""
    return np.matmul(a.T if trans_a else a, b.T if trans_b else b)


# Elementwise ops have no numpy twin here: the op table (cygrad/ops/elementwise.py) states each
# one's forward and backward in numpy, and ops run that where the backend has no kernel.
KERNELS = frozenset()


def bias_add(x, b, out, num_threads):
    return np.add(x, b, out=out)


def tree_sum(g):
    """The sum down axis 0 of g (n, ...) by the kernels' fixed tree (csrc/sums.h):

    leaves  P[t] = (((+0 + g[tL]) + g[tL+1]) + ...) + g[min(tL+L, n) - 1], t < N = ceil(n/L);
    tree    N = 2^e1 + 2^e2 + ... (e1 > e2 > ...): consecutive groups of 2^e1, 2^e2, ... leaves,
            each a perfect binary tree (first half + second half); S = G1 + (G2 + (G3 + ...));
    n = 0   S = +0.
    """
    n, rest = g.shape[0], g.shape[1:]
    if n == 0:
        return np.zeros(rest, g.dtype)
    leaves = -(-n // LEAF)
    h = np.zeros((leaves * LEAF,) + rest, g.dtype)  # +0 after the end: exact in any chain
    h[:n] = g
    h = h.reshape((leaves, LEAF) + rest)
    h[:, 0] += g.dtype.type(0)  # the chain starts from +0: +0 + (-0.0) is +0.0
    chains = np.add.accumulate(h, axis=1)[:, -1]  # running sums: the chain, in order
    groups, start = [], 0
    for e in reversed(range(leaves.bit_length())):
        if leaves >> e & 1:
            block = chains[start:start + (1 << e)]
            start += 1 << e
            while len(block) > 1:  # a perfect tree, level by level: adjacent pairs
                block = block[0::2] + block[1::2]
            groups.append(block[0])
    total = groups[-1]
    for group in reversed(groups[:-1]):
        total = group + total
    return np.asarray(total, g.dtype)


def column_sum(g, num_threads):
    """s[j] := sum_i g[i, j] by the tree over i."""
    return tree_sum(g)


def row_sum(g, num_threads):
    """s[i] := sum_j g[i, j] by the tree over j: bitwise column_sum(g.T)."""
    return tree_sum(g.T)


def channel_sum(g, num_threads):
    """The column sum of g (n, c, p) laid out as (n*p, c) rows."""
    return column_sum(np.ascontiguousarray(g.transpose(0, 2, 1)).reshape(-1, g.shape[1]),
                      num_threads)


def sum(x, axes, num_threads):
    """The sum of x over `axes` (sorted), by the tree over the reduced elements in C order of the
    reduced axes; the reduced axes removed. No axes: a copy of x."""
    if not axes:
        return x.copy()
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = x.transpose(list(axes) + kept)
    reduced = math.prod(x.shape[a] for a in axes)
    return tree_sum(moved.reshape((reduced,) + moved.shape[len(axes):]))


def sum_to_shape(g, axes, shape, num_threads):
    return sum(g, axes, num_threads).reshape(shape)


def check_classes(targets, classes):
    """Every target a class index in [0, classes): the kernel's own check and message."""
    if targets.size and (targets.min() < 0 or targets.max() >= classes):
        i = int(np.flatnonzero((targets < 0) | (targets >= classes))[0])
        raise ValueError(f"class index {targets[i]} (at position {i}) out of range for "
                         f"{classes} classes")


def log_softmax_nll(logits, targets, num_threads):
    check_classes(targets, logits.shape[1])
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -logp[np.arange(len(targets)), targets]
    return losses, logp


def log_softmax_nll_backward(logp, targets, g_rows, num_threads):
    check_classes(targets, logp.shape[1])
    dx = np.exp(logp)
    dx[np.arange(len(targets)), targets] -= 1
    return dx * g_rows[:, None]


# ---------------------------------------------------------------- convolution and pooling
# im2col/col2im: x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw] for kernel offset (i, j) and
# output (oy, ox); csrc/conv.pyx has the layouts. col2im adds in ascending (i, j) per pixel.

def _padded(x, ph, pw, height, width):
    """x (N, C, H, W) inside zeros: ph rows above, pw columns left, at least height x width."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c, max(height, ph + h), max(width, pw + w)), dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp


def _taps(kh, kw, sh, sw, dh, dw, oh, ow):
    """(i, j, rows, cols): for each kernel offset the slices of the padded input it reads."""
    for i in range(kh):
        for j in range(kw):
            yield (i, j, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                   slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    n, c = x.shape[:2]
    cols = np.zeros((n, oh, ow, c, kh, kw), dtype=x.dtype)
    if cols.size:
        xp = _padded(x, ph, pw, (oh - 1) * sh + (kh - 1) * dh + 1,
                     (ow - 1) * sw + (kw - 1) * dw + 1)
        for i, j, rows, cs in _taps(kh, kw, sh, sw, dh, dw, oh, ow):
            cols[:, :, :, :, i, j] = xp[:, :, rows, cs].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * kh * kw)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    n, c, h, w = x_shape
    if cols.size == 0:
        return np.zeros(x_shape, dtype=cols.dtype)
    xp = _padded(np.zeros(x_shape, cols.dtype), ph, pw, (oh - 1) * sh + (kh - 1) * dh + 1,
                 (ow - 1) * sw + (kw - 1) * dw + 1)
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    for i, j, rows, cs in _taps(kh, kw, sh, sw, dh, dw, oh, ow):
        xp[:, :, rows, cs] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp[:, :, ph:ph + h, pw:pw + w].copy()


def im2col_t(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    return np.ascontiguousarray(
        im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads).T)


def col2im_t(cols_t, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads, out=None):
    x = col2im(cols_t.T, x_shape, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)
    if out is None:
        return x
    out[...] = x
    return out


def gemm_into(a, b, out, trans_a, trans_b, accumulate, num_threads):
    """out (+)= op(A) @ op(B); the sum with out is a separate rounding here (BLAS)."""
    product = np.matmul(a.T if trans_a else a, b.T if trans_b else b)
    if accumulate:
        out += product
    else:
        out[...] = product
    return out


def planes_to_images(planes, bias, n, p, num_threads):
    images = planes.reshape(planes.shape[0], n, p).transpose(1, 0, 2)
    if bias is None:
        return np.ascontiguousarray(images)
    return np.add(images, bias[:, None], order="C")


def conv_image(x, w2, bias, out, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    n, p = x.shape[0], oh * ow
    planes = w2 @ im2col_t(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)
    out[...] = planes.reshape(w2.shape[0], n, p).transpose(1, 0, 2)
    if bias is not None:
        out += bias[:, None]
    return out


def conv_image_grad(x, g, out, accumulate, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads):
    for i in range(x.shape[0]):
        cols_t = im2col_t(x[i:i + 1], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)
        gemm_into(g[i], cols_t, out, False, True, accumulate or i > 0, num_threads)
    if x.shape[0] == 0 and not accumulate:
        out[...] = 0
    return out


def conv_image_backward(x, g, w2, dw, dx, kh, kw, sh, sw, ph, pw, dh, dwl, oh, ow,
                        num_threads):
    geometry = (kh, kw, sh, sw, ph, pw, dh, dwl, oh, ow)
    for i in range(x.shape[0]):
        if dw is not None:
            conv_image_grad(x[i:i + 1], g[i:i + 1], dw, i > 0, *geometry, num_threads)
        if dx is not None:
            dx[i:i + 1] = col2im_t(w2.T @ g[i], (1,) + x.shape[1:], *geometry, num_threads)


def add_channel_bias(y, b, num_threads):
    y += b[:, None]
    return y


# Pools: x (P, H, W); output row oy pools rows hs[oy], hs[oy] + dh, ... < he[oy] (columns
# likewise), windows already clipped to the image (csrc/pool.pyx states the orders).

def _window_taps(x, hs, he, ws, we, dh, dw):
    """For each offset (i, j) inside the largest window, in ascending order: the values at
    (hs + i*dh, ws + j*dw) for every output, and whether that position is in its window."""
    h, w = x.shape[1:]
    rows_max = int(np.max(-(-(he - hs) // dh), initial=0))
    cols_max = int(np.max(-(-(we - ws) // dw), initial=0))
    for i in range(rows_max):
        r = hs + i * dh
        r_ok = r < he
        r = np.minimum(r, h - 1)
        for j in range(cols_max):
            c = ws + j * dw
            c_ok = c < we
            c = np.minimum(c, w - 1)
            yield x[:, r[:, None], c[None, :]], r_ok[:, None] & c_ok[None, :], \
                r[:, None] * w + c[None, :]


def max_pool(x, hs, he, ws, we, dh, dw, num_threads):
    shape = (x.shape[0], len(hs), len(ws))
    out = np.full(shape, -np.inf, dtype=x.dtype)
    empty = (hs == he)[:, None] | (ws == we)[None, :]
    first = np.where(empty, -1, hs[:, None] * x.shape[2] + ws[None, :])
    idx = np.broadcast_to(first, shape).astype(np.int64)
    if out.size == 0:
        return out, idx
    for v, ok, pos in _window_taps(x, hs, he, ws, we, dh, dw):
        take = ok & ((v > out) | np.isnan(v))
        out = np.where(take, v, out)
        idx = np.where(take, pos, idx)
    return out, idx


def max_pool_backward(g, idx, in_shape, num_threads):
    p, h, w = in_shape
    dx = np.zeros((p, h * w), dtype=g.dtype)
    planes = np.repeat(np.arange(p), g[0].size if p else 0)
    at, keep = idx.reshape(-1), idx.reshape(-1) != -1  # -1: an empty window, no input
    np.add.at(dx, (planes[keep], at[keep]), g.reshape(-1)[keep])  # in order: q ascending
    return dx.reshape(in_shape)


def _divisors(hc, wc, divisor_override, dtype):
    if divisor_override:
        return np.full((len(hc), len(wc)), divisor_override, dtype=dtype)
    return (hc[:, None] * wc[None, :]).astype(dtype)


def avg_pool(x, hs, he, ws, we, hc, wc, divisor_override, num_threads):
    s = np.zeros((x.shape[0], len(hs), len(ws)), dtype=x.dtype)
    if s.size == 0:
        return s
    for v, ok, _ in _window_taps(x, hs, he, ws, we, 1, 1):
        s = s + np.where(ok, v, x.dtype.type(0))
    empty = (hs == he)[:, None] | (ws == we)[None, :]
    d = _divisors(hc, wc, divisor_override, x.dtype)
    return np.divide(s, np.where(empty, 1, d), out=np.zeros_like(s), where=~empty)


def avg_pool_backward(g, in_shape, hs, he, ws, we, hc, wc, divisor_override, num_threads):
    dx = np.zeros(in_shape, dtype=g.dtype)
    empty = (hs == he)[:, None] | (ws == we)[None, :]
    d = g / np.where(empty, 1, _divisors(hc, wc, divisor_override, g.dtype))
    for oy in range(len(hs)):
        for ox in range(len(ws)):
            if hs[oy] < he[oy] and ws[ox] < we[ox]:
                dx[:, hs[oy]:he[oy], ws[ox]:we[ox]] += d[:, oy, ox, None, None]
    return dx


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
               maximize, num_threads=1):
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


def _adam_steps(params, grads, steps, maximize, weight_decay, lr=0.0, decoupled=False):
    """(refused, steps): torch's prologue shared by the single-tensor updates of the Adam
    family, Rprop and ASGD, for each claimable parameter in turn: its counter advanced
    (t = step + 1), g = -grad when maximize, then p = p * (1 - lr * weight_decay) (decoupled)
    or g = g + weight_decay * p. Yields (i, p, g, dt, t)."""
    targets, refused = _claim(params)

    def each():
        for i, p in enumerate(targets):
            if p is None:
                continue
            g, dt = grads[i], p.dtype.type
            t = _count(steps[i])
            if maximize:
                g = -g
            if weight_decay != 0:
                if decoupled:
                    p *= dt(1 - lr * weight_decay)
                else:
                    g = g + dt(weight_decay) * p
            yield i, p, g, dt, t

    return refused, each()


def _adam_moments(m, v, g, dt, beta1, beta2):
    """m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g  (in place)."""
    _lerp_(m, g, 1 - beta1)
    v *= dt(beta2)
    v += dt(1 - beta2) * g * g


def adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2,
                eps, weight_decay, decoupled, amsgrad, maximize, num_threads=1):
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
    refused, each = _adam_steps(params, grads, steps, maximize, weight_decay, lr, decoupled)
    for i, p, g, dt, t in each:
        m, v = exp_avgs[i], exp_avg_sqs[i]
        _adam_moments(m, v, g, dt, beta1, beta2)
        step_size = lr / (1 - beta1 ** t)
        correction = (1 - beta2 ** t) ** 0.5
        if amsgrad:
            v = np.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
        denom = np.sqrt(v) / dt(correction) + dt(eps)
        p -= dt(step_size) * m / denom
    return refused


def rmsprop_update(params, grads, square_avgs, grad_avgs, momentum_buffers, steps, lr, alpha,
                   eps, weight_decay, momentum, centered, maximize, num_threads=1):
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


def adagrad_update(params, grads, state_sums, steps, lr, lr_decay, weight_decay, eps, maximize,
                   num_threads=1):
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


def adamax_update(params, grads, exp_avgs, exp_infs, steps, lr, beta1, beta2, eps,
                  weight_decay, maximize, num_threads=1):
    """Adamax (torch's `_single_tensor_adamax`) for each parameter:

        t = step + 1;  g = -grad if maximize else grad;  g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1)
        u = maximum(u * beta2, |g| + eps)
        p = p - (lr / (1 - beta1**t)) * m / u       (the rate a Python float)
    """
    refused, each = _adam_steps(params, grads, steps, maximize, weight_decay)
    for i, p, g, dt, t in each:
        m, u = exp_avgs[i], exp_infs[i]
        _lerp_(m, g, 1 - beta1)
        u *= dt(beta2)
        np.maximum(u, np.abs(g) + dt(eps), out=u)
        p -= dt(lr / (1 - beta1 ** t)) * m / u
    return refused


def nadam_update(params, grads, exp_avgs, exp_avg_sqs, mu_products, steps, lr, beta1, beta2,
                 eps, weight_decay, momentum_decay, decoupled, maximize, num_threads=1):
    """NAdam (torch's `_single_tensor_nadam`) for each parameter:

        t = step + 1;  g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay) (decoupled)  or  g = g + weight_decay * p
        mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay)), mu_{t+1} likewise
        prod = prod * mu_t                      (a 0-d state of the step counter's dtype)
        m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2**t)) + eps
        p = p + (-lr (1 - mu_t) / (1 - prod)) * g / d
        p = p + (-lr mu_{t+1} / (1 - prod mu_{t+1})) * m / d
    """
    refused, each = _adam_steps(params, grads, steps, maximize, weight_decay, lr, decoupled)
    for i, p, g, dt, t in each:
        m, v = exp_avgs[i], exp_avg_sqs[i]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * momentum_decay)))
        mu_products[i] *= mu
        prod = float(mu_products[i])
        _adam_moments(m, v, g, dt, beta1, beta2)
        denom = np.sqrt(v / dt(1 - beta2 ** t))
        denom += dt(eps)
        p += dt(-lr * (1.0 - mu) / (1.0 - prod)) * g / denom
        p += dt((-lr * mu_next) / (1.0 - prod * mu_next)) * m / denom
    return refused


def radam_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                 weight_decay, decoupled, maximize, num_threads=1):
    """RAdam (torch's `_single_tensor_radam`) for each parameter:

        t = step + 1;  g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay) (decoupled)  or  g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        p = p - m / (1 - beta1**t) * lr * (sqrt(1 - beta2**t) / (sqrt(v) + eps)) * rect
            with rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            when rho_t > 5, else  p = p - m / (1 - beta1**t) * lr
    """
    refused, each = _adam_steps(params, grads, steps, maximize, weight_decay, lr, decoupled)
    for i, p, g, dt, t in each:
        m, v = exp_avgs[i], exp_avg_sqs[i]
        _adam_moments(m, v, g, dt, beta1, beta2)
        bc2 = 1 - beta2 ** t
        corrected = m / dt(1 - beta1 ** t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * (beta2 ** t) / bc2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            root = np.sqrt(v)
            root += dt(eps)
            p -= corrected * dt(lr) * (dt(bc2 ** 0.5) / root) * dt(rect)
        else:
            p -= corrected * dt(lr)
    return refused



def rprop_update(params, grads, prevs, step_sizes, steps, etaminus, etaplus, step_size_min,
                 step_size_max, maximize, num_threads=1):
    """Rprop (torch's `_single_tensor_rprop`) for each parameter, elementwise:

        g = -grad if maximize else grad;  step += 1
        f = etaplus where g * prev > 0, etaminus where < 0, else 1
        size = clamp(size * f, step_size_min, step_size_max)
        g = 0 where f == etaminus;  p = p - sign(g) * size;  prev = g
    """
    refused, each = _adam_steps(params, grads, steps, maximize, 0)
    for i, p, g, dt, _ in each:
        prev, size = prevs[i], step_sizes[i]
        s = np.sign(g * prev)
        factor = np.where(s > 0, dt(etaplus), np.where(s < 0, dt(etaminus), dt(1)))
        size *= factor
        np.clip(size, dt(step_size_min), dt(step_size_max), out=size)
        g = np.where(factor == dt(etaminus), dt(0), g)
        p -= np.sign(g) * size
        prev[...] = g
    return refused


def asgd_update(params, grads, axs, etas, mus, steps, lr, lambd, alpha, t0, weight_decay,
                maximize, num_threads=1):
    """ASGD (torch's `_single_tensor_asgd`) for each parameter:

        g = -grad if maximize else grad;  step += 1;  g = g + weight_decay * p
        p = p * (1 - lambd * eta);  p = p - eta * g      (eta: the 0-d state, as a number)
        ax = ax + (p - ax) * mu   (ax = p while mu is 1)
        eta = lr / (1 + lambd * lr * step) ** alpha;  mu = 1 / max(1, step - t0)
    eta and mu are 0-d states of the scalar dtype (float32 unless the default is float64):
    each new value is rounded to it, as torch stores them."""
    refused, each = _adam_steps(params, grads, steps, maximize, weight_decay)
    for i, p, g, dt, step in each:
        eta = float(etas[i])
        p *= dt(1 - lambd * eta)
        p += dt(-eta) * g
        ax, mu = axs[i], float(mus[i])
        if mu != 1:
            ax += (p - ax) * dt(mu)
        else:
            ax[...] = p
        etas[i][...] = lr / ((1 + lambd * lr * step) ** alpha)
        mus[i][...] = 1 / max(1, step - t0)
    return refused

def adadelta_update(params, grads, square_avgs, acc_deltas, steps, lr, rho, eps, weight_decay,
                    maximize, num_threads=1):
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


# ---------------------------------------------------------------- the transformer layers

def batched_gemm(a, b, trans_a, trans_b, num_threads):
    """C[i] := op(A[i]) @ op(B[i])."""
    return np.matmul(a.transpose(0, 2, 1) if trans_a else a, b.transpose(0, 2, 1) if trans_b
                     else b)


def embedding_backward(g, indices, num_weights, padding_idx, scale_grad_by_freq, num_threads):
    """dW[k] := sum over positions i holding k, ascending i, of s_k * g[i] (s_k = 1, or
    1/count(k) rounded to the dtype); the padding row gets nothing. np.add.at adds in index
    order. (The kernel may fuse s_k * g + dW into one rounding: with scale_grad_by_freq the
    two agree to rounding, without it bitwise.)"""
    if indices.size and (indices.min() < 0 or indices.max() >= num_weights):
        bad = indices[(indices < 0) | (indices >= num_weights)][0]
        raise IndexError(f"index {bad} is out of range for an embedding of {num_weights} rows")
    dw = np.zeros((num_weights, g.shape[1]), g.dtype)
    keep = indices != padding_idx
    rows, idx = g[keep], indices[keep]
    if scale_grad_by_freq:
        counts = np.bincount(indices, minlength=num_weights)
        rows = rows * (1.0 / counts[idx]).astype(g.dtype)[:, None]
    np.add.at(dw, idx, rows)
    return dw


def _chain_sum(x):
    """Sums along the last axis, in ascending order from +0 (the kernels' order)."""
    if x.shape[-1] == 0:
        return np.zeros(x.shape[:-1] + (1,), x.dtype)
    return np.cumsum(x, axis=-1, dtype=x.dtype)[..., -1:]


def softmax_rows(x, scale, causal, shift, num_threads):
    """softmax(scale * x) along the last axis, zeros where the causal limit masks, and for a
    row of only -inf."""
    z = x * x.dtype.type(scale)
    if causal > 0:
        q = (np.arange(int(np.prod(x.shape[:-1]))) % causal).reshape(x.shape[:-1] + (1,))
        z = np.where(np.arange(x.shape[-1]) <= q + shift, z, x.dtype.type(-np.inf))
    m = z.max(axis=-1, keepdims=True) if z.shape[-1] else np.full(z.shape[:-1] + (1,), -np.inf)
    empty = m == -np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(z - np.where(empty, x.dtype.type(0), m))
        y = e / _chain_sum(e)
    return np.where(empty, x.dtype.type(0), y).astype(x.dtype, copy=False)


def softmax_rows_backward(y, g, scale, num_threads):
    """scale * y * (g - sum(g * y)) along the last axis."""
    return y.dtype.type(scale) * (y * (g - _chain_sum(g * y)))


def dropout(bit_generator, x, keep, kept):
    """(y, scale): scale = kept where u < keep, else 0, u from 53 bits of two 32-bit draws of
    bit_generator (the first the high half) in x's C order; y = x * scale."""
    r = bit_generator.random_raw(2 * x.size)
    u = (((r[0::2] << np.uint64(32)) | r[1::2]) & np.uint64((1 << 53) - 1)).astype(np.float64)
    u *= 2.0 ** -53
    scale = np.where(u < keep, x.dtype.type(kept), x.dtype.type(0)).reshape(x.shape)
    return x * scale, scale


def all_differ(columns):
    """Whether no two of the values of the 1-d arrays `columns`, all together, are equal (+0.0
    and -0.0 are equal; a NaN anywhere gives False; no values: True): the symmetry monitor's
    check that a layer's units still all differ."""
    values = np.concatenate([np.asarray(c, np.float64) for c in columns]) if columns else ()
    if len(values) == 0:
        return True
    values.sort()  # equal values side by side, NaNs last
    return not np.isnan(values[-1]) and bool((values[1:] != values[:-1]).all())


# ---------------------------------------------------------------- layer normalisation
# csrc/norms.pyx's spec: numpy's elementwise operations, each rounded once, and the trees of
# row_sum / column_sum.

def layer_norm(x, w, b, eps, num_threads):
    r, n = x.shape
    t = x.dtype.type
    mean = row_sum(x, 1) / t(n) if n else np.zeros(r, x.dtype)
    xc = x - mean[:, None]
    var = row_sum(xc * xc, 1) / t(n) if n else np.zeros(r, x.dtype)
    rstd = 1 / np.sqrt(var + t(eps))
    y = xhat = xc * rstd[:, None]
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return np.ascontiguousarray(y), xhat, rstd


def layer_norm_backward(g, xhat, rstd, w, need_dx, need_dw, need_db, num_threads):
    r, n = g.shape
    t = g.dtype.type
    dx = dw = db = None
    if need_dx:
        gw = g * w if w is not None else g
        a = row_sum(gw, 1)[:, None] / t(n)
        c = row_sum(gw * xhat, 1)[:, None] / t(n)
        dx = (gw - a - xhat * c) * rstd[:, None]
    if need_dw:
        dw = column_sum(np.ascontiguousarray(g * xhat), 1)
    if need_db:
        db = column_sum(np.ascontiguousarray(g), 1)
    return dx, dw, db


def mse(x, t, reduction):
    """csrc/loss.pyx's mse: diff, and the tree sum of its squares (mean: divided in double,
    rounded once)."""
    diff = x - t
    total = column_sum((diff * diff).reshape(-1, 1), 1)[0]
    if reduction == 1:
        total = float(total) / (diff.size if diff.size < 1 << 24 or diff.dtype == np.float64
                                else float(diff.dtype.type(diff.size)))
    return diff, np.array(total, diff.dtype)
