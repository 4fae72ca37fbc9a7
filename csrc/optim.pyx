"""Optimiser updates: one call updates every parameter of a group.

Why kernels for a few arithmetic operations: numpy costs a temporary, a ufunc call and the
Python around it for each operation of each parameter -- 1.5 us a parameter for plain SGD, 4 us
with momentum, 8 us for Adam, which was most of a small model's training step.

Bits: every update is numpy's (backend/numpy_backend.py states each one), rounded after each
operation in the same order, in the parameter's dtype, with the options rounded to that dtype
first. So the cython and numpy backends agree bitwise, and every element's new value depends
on its own parameter, gradient and state alone. That is why this family is compiled with
-ffp-contract=off (setup.py): a fused multiply-add would round once where numpy rounds twice.
"""

from libc.math cimport fabs, sqrt, sqrtf

from arrays cimport F32, acquire, elements, kind_of, release

ctypedef fused floating:
    float
    double


cdef inline void _sgd_loop(floating *p, const floating *g, floating *buf, Py_ssize_t n,
                           floating lr, floating momentum, floating keep, floating decay,
                           bint use_decay, bint use_momentum, bint fresh,
                           bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, b
    for i in range(n):
        x = g[i]
        if use_decay:
            x = x + decay * p[i]
        if use_momentum:
            if fresh:
                b = x
            else:
                b = buf[i] * momentum
                b = b + keep * x
            buf[i] = b
            x = x + momentum * b if nesterov else b
        p[i] = p[i] - lr * x


cdef void _sgd(floating *p, const floating *g, floating *buf, Py_ssize_t n, floating lr,
               floating momentum, floating keep, floating decay, bint use_decay,
               bint use_momentum, bint fresh, bint nesterov) noexcept nogil:
    """numpy_backend.sgd_update for one pair: keep = 1 - dampening, decay = weight_decay.
    Each case calls the loop with constant flags, so that the compiler makes a branch-free,
    vectorised loop of each (one loop testing its flags every element ran as scalar code)."""
    if not use_momentum:
        if use_decay:
            _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, True, False, False, False)
        else:
            _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, False, False, False, False)
    elif fresh:
        if use_decay:
            _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, True, True, True, nesterov)
        else:
            _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, False, True, True, nesterov)
    elif nesterov:
        if use_decay:
            _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, True, True, False, True)
        else:
            _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, False, True, False, True)
    elif use_decay:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, True, True, False, False)
    else:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, False, True, False, False)


cdef inline void _adam_loop(floating *p, const floating *g, floating *m, floating *v,
                            Py_ssize_t n, floating weight, floating keep, floating beta2,
                            floating rest2, floating correction, floating eps,
                            floating step_size, floating decay, bint use_decay,
                            bint near) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, d, mi, vi, s
    for i in range(n):
        x = g[i]
        if use_decay:
            x = x + decay * p[i]
        d = x - m[i]
        mi = m[i] + weight * d if near else x - d * keep
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + (rest2 * x) * x
        v[i] = vi
        s = sqrtf(vi) if floating is float else sqrt(vi)
        s = s / correction + eps
        p[i] = p[i] - step_size * mi / s


cdef void _adam(floating *p, const floating *g, floating *m, floating *v, Py_ssize_t n,
                floating weight, floating beta2, floating rest2, floating correction,
                floating eps, floating step_size, floating decay, bint use_decay,
                floating shrink, bint use_shrink) noexcept nogil:
    """numpy_backend.adam_update for one pair: weight = 1 - beta1 (the lerp's), rest2 =
    1 - beta2, shrink = AdamW's 1 - lr * weight_decay, decay = Adam's weight_decay. AdamW's
    shrink is a pass of its own (the parameter's first operation either way); the main loop
    is called with constant flags, as _sgd's."""
    cdef Py_ssize_t i
    cdef bint near = fabs(weight) < 0.5  # torch's two-sided lerp
    cdef floating keep = 1 - weight
    if use_shrink:
        for i in range(n):
            p[i] = p[i] * shrink
    if near:
        if use_decay:
            _adam_loop(p, g, m, v, n, weight, keep, beta2, rest2, correction, eps, step_size,
                       decay, True, True)
        else:
            _adam_loop(p, g, m, v, n, weight, keep, beta2, rest2, correction, eps, step_size,
                       decay, False, True)
    elif use_decay:
        _adam_loop(p, g, m, v, n, weight, keep, beta2, rest2, correction, eps, step_size,
                   decay, True, False)
    else:
        _adam_loop(p, g, m, v, n, weight, keep, beta2, rest2, correction, eps, step_size,
                   decay, False, False)


def sgd(list params, list grads, double lr, double momentum, double dampening, bint nesterov,
        double weight_decay, list bufs, list fresh):
    """SGD (numpy_backend.sgd_update) for each pair of the lists, options as the optimiser's;
    bufs (momentum buffers, written) and fresh (a buffer's first step) only with momentum.
    Each p a writable C-contiguous float array, its g and buf of p's dtype and size.

    Returns the positions of the pairs it did not update because an array was not
    C-contiguous (the caller updates those itself); any other mismatch (a read-only p, mixed
    dtypes, sizes) raises, before that pair is touched.
    """
    cdef Py_buffer v[3]
    cdef int count, k
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_momentum = momentum != 0, first
    cdef list skipped = []
    if len(grads) != n or (use_momentum and (len(bufs) != n or len(fresh) != n)):
        raise ValueError(f"sgd: {n} parameters but {len(grads)} gradients"
                         + (f", {len(bufs)} buffers" if use_momentum else ""))
    for i in range(n):
        count = 0
        try:
            try:
                acquire(v, &count, params[i], True)
                acquire(v, &count, grads[i], False)
                if use_momentum:
                    acquire(v, &count, bufs[i], True)
            except BufferError:  # strided
                skipped.append(i)
                continue
            _same(v, count, i)
            k = kind_of(&v[0])
            first = use_momentum and fresh[i]
            with nogil:
                if k == F32:
                    _sgd(<float *>v[0].buf, <const float *>v[1].buf,
                         <float *>v[2].buf if use_momentum else NULL, elements(&v[0]),
                         <float>lr, <float>momentum, <float>(1 - dampening),
                         <float>weight_decay, weight_decay != 0, use_momentum,
                         first, nesterov)
                else:
                    _sgd(<double *>v[0].buf, <const double *>v[1].buf,
                         <double *>v[2].buf if use_momentum else NULL, elements(&v[0]),
                         lr, momentum, 1 - dampening, weight_decay, weight_decay != 0,
                         use_momentum, first, nesterov)
        finally:
            release(v, count)
    return skipped


def adam(list params, list grads, list exp_avgs, list exp_avg_sqs, list step_sizes,
         list corrections, double beta1, double beta2, double eps, double weight_decay,
         shrink):
    """Adam (numpy_backend.adam_update) for each parameter of the lists: its gradient, its
    moments (written), its step size lr / (1 - beta1**t) and second-moment correction
    sqrt(1 - beta2**t); weight_decay coupled into the gradient (Adam) or shrink, AdamW's
    1 - lr * weight_decay (None for Adam). Returns the positions of strided pairs, as sgd."""
    cdef Py_buffer v[4]
    cdef int count, k
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_shrink = shrink is not None
    cdef double shrink_by = shrink if use_shrink else 1.0
    cdef double step_size, correction
    cdef list skipped = []
    if not (len(grads) == len(exp_avgs) == len(exp_avg_sqs) == len(step_sizes)
            == len(corrections) == n):
        raise ValueError(f"adam: {n} parameters but {len(grads)} gradients, {len(exp_avgs)} "
                         f"and {len(exp_avg_sqs)} moments, {len(step_sizes)} step sizes")
    for i in range(n):
        count = 0
        step_size, correction = step_sizes[i], corrections[i]
        try:
            try:
                acquire(v, &count, params[i], True)
                acquire(v, &count, grads[i], False)
                acquire(v, &count, exp_avgs[i], True)
                acquire(v, &count, exp_avg_sqs[i], True)
            except BufferError:  # strided
                skipped.append(i)
                continue
            _same(v, count, i)
            k = kind_of(&v[0])
            with nogil:
                if k == F32:
                    _adam(<float *>v[0].buf, <const float *>v[1].buf, <float *>v[2].buf,
                          <float *>v[3].buf, elements(&v[0]), <float>(1 - beta1), <float>beta2,
                          <float>(1 - beta2), <float>correction, <float>eps, <float>step_size,
                          <float>weight_decay, weight_decay != 0, <float>shrink_by, use_shrink)
                else:
                    _adam(<double *>v[0].buf, <const double *>v[1].buf, <double *>v[2].buf,
                          <double *>v[3].buf, elements(&v[0]), 1 - beta1, beta2, 1 - beta2,
                          correction, eps, step_size, weight_decay, weight_decay != 0,
                          shrink_by, use_shrink)
        finally:
            release(v, count)
    return skipped


cdef int _same(Py_buffer *views, int count, Py_ssize_t i) except -1:
    """A parameter's gradient and state: its dtype and its number of elements."""
    cdef int j
    for j in range(1, count):
        if kind_of(&views[j]) != kind_of(&views[0]):
            raise TypeError(f"parameter {i}: its gradient and state must have its dtype, got "
                            f"formats {views[0].format.decode()!r} and "
                            f"{views[j].format.decode()!r}")
        if elements(&views[j]) != elements(&views[0]):
            raise ValueError(f"parameter {i} has {elements(&views[0])} elements, its gradient "
                             f"or state {elements(&views[j])}")
    return 0
