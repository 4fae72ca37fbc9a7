"""Optimiser updates: one call updates every parameter of a group.

Why kernels for a few arithmetic operations: numpy costs a temporary, a ufunc call and the
Python around it for each operation of each parameter -- 1.5 us a parameter for plain SGD, 4 us
with momentum, 8 us for Adam, which was most of a small model's training step.

Bits: every update is numpy's (backend/numpy_backend.py states each one, in torch.optim's order),
rounded after each operation in the same order, in the parameter's dtype, with the options
rounded to that dtype first. So the cython and numpy backends agree bitwise, and every element's
new value depends on its own parameter, gradient and state alone. That is why this family is
compiled with -ffp-contract=off (setup.py): a fused multiply-add would round once where numpy
rounds twice. Step-dependent scalars (Adam's bias corrections, Adagrad's decayed rate) are
formed in double from the step counter, with the C library's pow, as Python's ** forms them.

Each loop is called with constant flags (a cdef inline function with literal arguments), so the
compiler makes one branch-free, vectorised loop per case: a loop testing its flags every
element ran as scalar code.

Calling convention: lists of arrays, one entry per parameter; each parameter a writable
C-contiguous float array, its gradient and state of its dtype and size; step counters 0-d
float32 or float64 arrays (advanced in place). Each function returns (strided, refused): the
positions of the pairs it left alone because an array was not C-contiguous (the caller updates
those with numpy) or because the parameter was read-only (the caller retries it on a copy).
Nothing of such a pair is written, its step counter included. Any other mismatch raises before
the pair is touched.
"""

from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.math cimport fabs, pow, sqrt, sqrtf

from cython.parallel cimport prange

from arrays cimport (F32, acquire, cg_instr, cg_threads, cg_threads_init, elements, exec_capsule,
                    kind_of, release)

cg_threads_init()

ctypedef fused floating:
    float
    double


cdef inline floating _sqrt(floating x) noexcept nogil:
    return sqrtf(x) if floating is float else sqrt(x)


# Threads. Every update is elementwise (an element's new values depend on its own parameter,
# gradient and state alone), so a parameter splits into contiguous runs, one a thread, without
# changing a bit. Threads are woken only for a parameter of `serial_below` elements and more
# (about 20 us of work on one thread; waking a sleeping thread costs microseconds), in a
# compiled step's program from `program_serial_below`: there the update follows the backward's
# products, threaded from a smaller size (gemm's program_serial_macs), whose threads are still
# awake; and a thread's run of a gradient is then mostly rows its own product wrote (measured:
# the MNIST-size step's update at two threads 71 -> 28 us, where one thread took 50). Module
# attributes, so that tests can send small arrays down the parallel path.
serial_below = 1 << 17
program_serial_below = 1 << 15


cdef int _threads(Py_ssize_t n, int requested, Py_ssize_t below) except -1:
    """The threads for a parameter of n elements: 1 below `below`, else the request (capped:
    threads.h)."""
    return 1 if n < below else cg_threads(requested)


cdef inline Py_ssize_t _chunk(Py_ssize_t n, int num_threads) noexcept nogil:
    """Elements per thread: a whole number of 64-element blocks (whole cache lines)."""
    return ((n + num_threads - 1) // num_threads + 63) // 64 * 64


# ---------------------------------------------------------------------- SGD

cdef enum:  # SGD's momentum cases: what the loop reads and writes
    PLAIN = 0       # no buffer
    FRESH = 1       # the buffer's first step: buf = g
    MOMENTUM = 2    # buf = buf * momentum + (1 - dampening) * g
    FRESH_NESTEROV = 3
    MOMENTUM_NESTEROV = 4


cdef inline void _sgd_loop(floating *p, const floating *g, floating *buf, Py_ssize_t n,
                           floating lr, floating momentum, floating keep, floating decay,
                           bint maximize, bint use_decay, int mode) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, b = 0
    for i in range(n):
        x = -g[i] if maximize else g[i]
        if use_decay:
            x = x + decay * p[i]
        if mode == FRESH or mode == FRESH_NESTEROV:
            b = x
            buf[i] = b
        elif mode == MOMENTUM or mode == MOMENTUM_NESTEROV:
            b = buf[i] * momentum
            b = b + keep * x
            buf[i] = b
        if mode == FRESH_NESTEROV or mode == MOMENTUM_NESTEROV:
            x = x + momentum * b
        elif mode != PLAIN:
            x = b
        p[i] = p[i] - lr * x


cdef inline void _sgd_mode(floating *p, const floating *g, floating *buf, Py_ssize_t n,
                           floating lr, floating momentum, floating keep, floating decay,
                           bint maximize, bint use_decay, int mode) noexcept nogil:
    if mode == PLAIN:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, maximize, use_decay, PLAIN)
    elif mode == FRESH:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, maximize, use_decay, FRESH)
    elif mode == MOMENTUM:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, maximize, use_decay, MOMENTUM)
    elif mode == FRESH_NESTEROV:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, maximize, use_decay, FRESH_NESTEROV)
    else:
        _sgd_loop(p, g, buf, n, lr, momentum, keep, decay, maximize, use_decay,
                  MOMENTUM_NESTEROV)


cdef void _sgd(floating *p, const floating *g, floating *buf, Py_ssize_t n, floating lr,
               floating momentum, floating keep, floating decay, bint maximize,
               bint use_decay, int mode) noexcept nogil:
    """numpy_backend.sgd_update for one pair: keep = 1 - dampening, decay = weight_decay."""
    if maximize:
        if use_decay:
            _sgd_mode(p, g, buf, n, lr, momentum, keep, decay, True, True, mode)
        else:
            _sgd_mode(p, g, buf, n, lr, momentum, keep, decay, True, False, mode)
    elif use_decay:
        _sgd_mode(p, g, buf, n, lr, momentum, keep, decay, False, True, mode)
    else:
        _sgd_mode(p, g, buf, n, lr, momentum, keep, decay, False, False, mode)


cdef void _sgd_split(floating *p, const floating *g, floating *buf, Py_ssize_t n, floating lr,
                     floating momentum, floating keep, floating decay, bint maximize,
                     bint use_decay, int mode, int num_threads) noexcept nogil:
    """_sgd over n elements, in num_threads contiguous runs when that is more than one."""
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _sgd(p, g, buf, n, lr, momentum, keep, decay, maximize, use_decay, mode)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _sgd(p + lo, g + lo, (buf + lo) if buf != NULL else buf, min(chunk, n - lo), lr,
                 momentum, keep, decay, maximize, use_decay, mode)


def sgd(list params, list grads, double lr, double momentum, double dampening, bint nesterov,
        double weight_decay, list bufs, list fresh, bint maximize, int num_threads=1):
    """SGD (numpy_backend.sgd_update) for each pair of the lists, options as the optimiser's;
    bufs (momentum buffers, written) and fresh (a buffer's first step) only with momentum."""
    cdef Py_buffer v[3]
    cdef int count, k, mode, threads
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_momentum = momentum != 0, use_decay = weight_decay != 0
    cdef list strided = [], refused = []
    if len(grads) != n or (use_momentum and (len(bufs) != n or len(fresh) != n)):
        raise ValueError(f"sgd: {n} parameters but {len(grads)} gradients"
                         + (f", {len(bufs)} buffers" if use_momentum else ""))
    for i in range(n):
        count = 0
        try:
            try:
                if _claim(v, &count, params[i]):
                    refused.append(i)
                    continue
                acquire(v, &count, grads[i], False)
                if use_momentum:
                    acquire(v, &count, bufs[i], True)
            except BufferError:
                strided.append(i)
                continue
            _same(v, count, i)
            k = kind_of(&v[0])
            mode = PLAIN
            if use_momentum:
                mode = FRESH if fresh[i] else MOMENTUM
                if nesterov:
                    mode += 2
            threads = _threads(elements(&v[0]), num_threads, serial_below)
            with nogil:
                if k == F32:
                    _sgd_split(<float *>v[0].buf, <const float *>v[1].buf,
                               <float *>v[2].buf if use_momentum else NULL, elements(&v[0]),
                               <float>lr, <float>momentum, <float>(1 - dampening),
                               <float>weight_decay, maximize, use_decay, mode, threads)
                else:
                    _sgd_split(<double *>v[0].buf, <const double *>v[1].buf,
                               <double *>v[2].buf if use_momentum else NULL, elements(&v[0]),
                               lr, momentum, 1 - dampening, weight_decay, maximize, use_decay,
                               mode, threads)
        finally:
            release(v, count)
    return strided, refused


cdef int _exec_sgd(cg_instr *ins) except -1:
    """SGD for one parameter as a program.h instruction (a compiled step's update, its
    momentum buffer already made): p = param (written), grad, buffer (written; NULL without
    momentum); n = elements; s = lr, momentum, dampening, nesterov, weight_decay, maximize,
    read at each run. `sgd`'s arithmetic and casts: the same bits."""
    cdef double lr = ins.s[0], momentum = ins.s[1], dampening = ins.s[2]
    cdef double weight_decay = ins.s[4]
    cdef bint nesterov = ins.s[3] != 0, maximize = ins.s[5] != 0, use_decay = weight_decay != 0
    cdef int mode = PLAIN, threads = _threads(ins.n[0], ins.threads, program_serial_below)
    if momentum != 0:
        if ins.p[2] == NULL:
            raise ValueError("sgd: momentum without a buffer")
        mode = MOMENTUM_NESTEROV if nesterov else MOMENTUM
    if ins.kind == F32:
        _sgd_split(<float *>ins.p[0], <const float *>ins.p[1], <float *>ins.p[2], ins.n[0],
                   <float>lr, <float>momentum, <float>(1 - dampening), <float>weight_decay,
                   maximize, use_decay, mode, threads)
    else:
        _sgd_split(<double *>ins.p[0], <const double *>ins.p[1], <double *>ins.p[2], ins.n[0],
                   lr, momentum, 1 - dampening, weight_decay, maximize, use_decay, mode, threads)
    return 0


EXEC = {"sgd": exec_capsule(<void *>_exec_sgd)}


# ---------------------------------------------------------------------- Adam, AdamW

cdef inline void _adam_loop(floating *p, const floating *g, floating *m, floating *v,
                            floating *vmax, Py_ssize_t n, floating weight, floating keep,
                            floating beta2, floating rest2, floating correction, floating eps,
                            floating step_size, floating decay, bint maximize, bint use_decay,
                            bint near, bint amsgrad) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, d, mi, vi, w, s
    for i in range(n):
        x = -g[i] if maximize else g[i]
        if use_decay:
            x = x + decay * p[i]
        d = x - m[i]
        mi = m[i] + weight * d if near else x - d * keep  # torch's two-sided lerp
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + (rest2 * x) * x
        v[i] = vi
        if amsgrad:  # numpy's maximum: a NaN on either side wins
            w = vmax[i]
            if not (w > vi or w != w):
                w = vi
            vmax[i] = w
            vi = w
        s = _sqrt(vi) / correction + eps
        p[i] = p[i] - step_size * mi / s


cdef inline void _adam_ams(floating *p, const floating *g, floating *m, floating *v,
                           floating *vmax, Py_ssize_t n, floating weight, floating keep,
                           floating beta2, floating rest2, floating correction, floating eps,
                           floating step_size, floating decay, bint maximize, bint use_decay,
                           bint near, bint amsgrad) noexcept nogil:
    if amsgrad:
        _adam_loop(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps,
                   step_size, decay, maximize, use_decay, near, True)
    else:
        _adam_loop(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps,
                   step_size, decay, maximize, use_decay, near, False)


cdef inline void _adam_near(floating *p, const floating *g, floating *m, floating *v,
                            floating *vmax, Py_ssize_t n, floating weight, floating keep,
                            floating beta2, floating rest2, floating correction, floating eps,
                            floating step_size, floating decay, bint maximize, bint use_decay,
                            bint near, bint amsgrad) noexcept nogil:
    if near:
        _adam_ams(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps, step_size,
                  decay, maximize, use_decay, True, amsgrad)
    else:
        _adam_ams(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps, step_size,
                  decay, maximize, use_decay, False, amsgrad)


cdef void _adam(floating *p, const floating *g, floating *m, floating *v, floating *vmax,
                Py_ssize_t n, floating weight, floating beta2, floating rest2,
                floating correction, floating eps, floating step_size, floating decay,
                floating shrink, bint maximize, bint use_decay, bint use_shrink,
                bint amsgrad) noexcept nogil:
    """numpy_backend.adam_update for one pair: weight = 1 - beta1 (the lerp's), rest2 =
    1 - beta2, shrink = AdamW's 1 - lr * weight_decay, decay = Adam's weight_decay. AdamW's
    shrink is a pass of its own (the parameter's first operation either way)."""
    cdef Py_ssize_t i
    cdef bint near = fabs(weight) < 0.5
    cdef floating keep = 1 - weight
    if use_shrink:
        for i in range(n):
            p[i] = p[i] * shrink
    if maximize:
        if use_decay:
            _adam_near(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps,
                       step_size, decay, True, True, near, amsgrad)
        else:
            _adam_near(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps,
                       step_size, decay, True, False, near, amsgrad)
    elif use_decay:
        _adam_near(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps,
                   step_size, decay, False, True, near, amsgrad)
    else:
        _adam_near(p, g, m, v, vmax, n, weight, keep, beta2, rest2, correction, eps,
                   step_size, decay, False, False, near, amsgrad)


cdef void _adam_split(floating *p, const floating *g, floating *m, floating *v, floating *vmax,
                      Py_ssize_t n, floating weight, floating beta2, floating rest2,
                      floating correction, floating eps, floating step_size, floating decay,
                      floating shrink, bint maximize, bint use_decay, bint use_shrink,
                      bint amsgrad, int num_threads) noexcept nogil:
    """_adam over n elements, in num_threads contiguous runs when that is more than one."""
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _adam(p, g, m, v, vmax, n, weight, beta2, rest2, correction, eps, step_size, decay,
              shrink, maximize, use_decay, use_shrink, amsgrad)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _adam(p + lo, g + lo, m + lo, v + lo, (vmax + lo) if vmax != NULL else vmax,
                  min(chunk, n - lo), weight, beta2, rest2, correction, eps, step_size, decay,
                  shrink, maximize, use_decay, use_shrink, amsgrad)


def adam(list params, list grads, list exp_avgs, list exp_avg_sqs, list max_exp_avg_sqs,
         list steps, double lr, double beta1, double beta2, double eps, double weight_decay,
         bint decoupled, bint amsgrad, bint maximize, int num_threads=1):
    """Adam / AdamW (numpy_backend.adam_update) for each parameter of the lists: its
    gradient, its moments (written), its step counter (advanced); max_exp_avg_sqs only with
    amsgrad. Per parameter, from its step t: step size lr / (1 - beta1**t) and correction
    (1 - beta2**t) ** 0.5, in double."""
    cdef Py_buffer v[5]
    cdef Py_buffer s
    cdef int count, k, threads
    cdef bint stepped
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_decay = weight_decay != 0 and not decoupled
    cdef bint use_shrink = weight_decay != 0 and decoupled
    cdef double t, step_size, correction, shrink = 1 - lr * weight_decay
    cdef list strided = [], refused = []
    if not (len(grads) == len(exp_avgs) == len(exp_avg_sqs) == len(steps) == n) or (
            amsgrad and len(max_exp_avg_sqs) != n):
        raise ValueError(f"adam: {n} parameters but {len(grads)} gradients, {len(exp_avgs)} "
                         f"and {len(exp_avg_sqs)} moments, {len(steps)} steps")
    for i in range(n):
        count = 0
        stepped = False
        try:
            try:
                if _claim(v, &count, params[i]):
                    refused.append(i)
                    continue
                acquire(v, &count, grads[i], False)
                acquire(v, &count, exp_avgs[i], True)
                acquire(v, &count, exp_avg_sqs[i], True)
                if amsgrad:
                    acquire(v, &count, max_exp_avg_sqs[i], True)
            except BufferError:
                strided.append(i)
                continue
            _same(v, count, i)
            _step_buffer(&s, steps[i], i)
            stepped = True
            t = _advance(&s)
            step_size = lr / (1 - pow(beta1, t))
            correction = pow(1 - pow(beta2, t), 0.5)
            k = kind_of(&v[0])
            threads = _threads(elements(&v[0]), num_threads, serial_below)
            with nogil:
                if k == F32:
                    _adam_split(<float *>v[0].buf, <const float *>v[1].buf, <float *>v[2].buf,
                                <float *>v[3].buf, <float *>v[4].buf if amsgrad else NULL,
                                elements(&v[0]), <float>(1 - beta1), <float>beta2,
                                <float>(1 - beta2), <float>correction, <float>eps,
                                <float>step_size, <float>weight_decay, <float>shrink, maximize,
                                use_decay, use_shrink, amsgrad, threads)
                else:
                    _adam_split(<double *>v[0].buf, <const double *>v[1].buf,
                                <double *>v[2].buf, <double *>v[3].buf,
                                <double *>v[4].buf if amsgrad else NULL, elements(&v[0]),
                                1 - beta1, beta2, 1 - beta2, correction, eps, step_size,
                                weight_decay, shrink, maximize, use_decay, use_shrink, amsgrad,
                                threads)
        finally:
            release(v, count)
            if stepped:
                PyBuffer_Release(&s)
    return strided, refused


# ---------------------------------------------------------------------- RMSprop

cdef inline void _rmsprop_loop(floating *p, const floating *g, floating *sq, floating *ga,
                               floating *buf, Py_ssize_t n, floating lr, floating alpha,
                               floating rest, floating weight, floating keep, floating eps,
                               floating decay, floating momentum, bint maximize,
                               bint use_decay, bint centered, bint near,
                               bint use_momentum) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, q, a, d, s, b
    for i in range(n):
        x = -g[i] if maximize else g[i]
        if use_decay:
            x = x + decay * p[i]
        q = sq[i] * alpha
        q = q + (rest * x) * x
        sq[i] = q
        if centered:
            d = x - ga[i]
            a = ga[i] + weight * d if near else x - d * keep
            ga[i] = a
            q = q - a * a
        s = _sqrt(q) + eps
        if use_momentum:
            b = buf[i] * momentum
            b = b + x / s
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * x / s


cdef inline void _rmsprop_b(floating *p, const floating *g, floating *sq, floating *ga,
                            floating *buf, Py_ssize_t n, floating lr, floating alpha,
                            floating rest, floating weight, floating keep, floating eps,
                            floating decay, floating momentum, bint maximize, bint use_decay,
                            bint centered, bint near, bint use_momentum) noexcept nogil:
    # the memory cases: centered (grad_avg) and momentum (buffer), the lerp's branch
    if centered and near:
        if use_momentum:
            _rmsprop_loop(p, g, sq, ga, buf, n, lr, alpha, rest, weight, keep, eps, decay,
                          momentum, maximize, use_decay, True, True, True)
        else:
            _rmsprop_loop(p, g, sq, ga, buf, n, lr, alpha, rest, weight, keep, eps, decay,
                          momentum, maximize, use_decay, True, True, False)
    elif centered:
        if use_momentum:
            _rmsprop_loop(p, g, sq, ga, buf, n, lr, alpha, rest, weight, keep, eps, decay,
                          momentum, maximize, use_decay, True, False, True)
        else:
            _rmsprop_loop(p, g, sq, ga, buf, n, lr, alpha, rest, weight, keep, eps, decay,
                          momentum, maximize, use_decay, True, False, False)
    elif use_momentum:
        _rmsprop_loop(p, g, sq, ga, buf, n, lr, alpha, rest, weight, keep, eps, decay,
                      momentum, maximize, use_decay, False, False, True)
    else:
        _rmsprop_loop(p, g, sq, ga, buf, n, lr, alpha, rest, weight, keep, eps, decay,
                      momentum, maximize, use_decay, False, False, False)


cdef void _rmsprop(floating *p, const floating *g, floating *sq, floating *ga, floating *buf,
                   Py_ssize_t n, floating lr, floating alpha, floating rest, floating eps,
                   floating decay, floating momentum, bint maximize, bint use_decay,
                   bint centered, bint use_momentum) noexcept nogil:
    """numpy_backend.rmsprop_update for one pair: rest = 1 - alpha, also the weight of the
    centred average's lerp."""
    cdef bint near = fabs(rest) < 0.5
    cdef floating keep = 1 - rest
    if maximize:
        if use_decay:
            _rmsprop_b(p, g, sq, ga, buf, n, lr, alpha, rest, rest, keep, eps, decay,
                       momentum, True, True, centered, near, use_momentum)
        else:
            _rmsprop_b(p, g, sq, ga, buf, n, lr, alpha, rest, rest, keep, eps, decay,
                       momentum, True, False, centered, near, use_momentum)
    elif use_decay:
        _rmsprop_b(p, g, sq, ga, buf, n, lr, alpha, rest, rest, keep, eps, decay, momentum,
                   False, True, centered, near, use_momentum)
    else:
        _rmsprop_b(p, g, sq, ga, buf, n, lr, alpha, rest, rest, keep, eps, decay, momentum,
                   False, False, centered, near, use_momentum)


cdef void _rmsprop_split(floating *p, const floating *g, floating *sq, floating *ga,
                         floating *buf, Py_ssize_t n, floating lr, floating alpha,
                         floating rest, floating eps, floating decay, floating momentum,
                         bint maximize, bint use_decay, bint centered, bint use_momentum,
                         int num_threads) noexcept nogil:
    """_rmsprop over n elements, in num_threads contiguous runs when that is more than one."""
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _rmsprop(p, g, sq, ga, buf, n, lr, alpha, rest, eps, decay, momentum, maximize,
                 use_decay, centered, use_momentum)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _rmsprop(p + lo, g + lo, sq + lo, (ga + lo) if ga != NULL else ga,
                     (buf + lo) if buf != NULL else buf, min(chunk, n - lo), lr, alpha, rest,
                     eps, decay, momentum, maximize, use_decay, centered, use_momentum)


def rmsprop(list params, list grads, list square_avgs, list grad_avgs, list momentum_buffers,
            list steps, double lr, double alpha, double eps, double weight_decay,
            double momentum, bint centered, bint maximize, int num_threads=1):
    """RMSprop (numpy_backend.rmsprop_update) for each parameter of the lists: its gradient,
    its square average (written), grad_avgs only when centered, momentum_buffers only with
    momentum > 0, its step counter (advanced)."""
    cdef Py_buffer v[5]
    cdef Py_buffer s
    cdef int count, k, threads
    cdef bint stepped
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_momentum = momentum > 0, use_decay = weight_decay != 0
    cdef list strided = [], refused = []
    cdef int ga_at = 3, buf_at = 4 if centered else 3
    if not (len(grads) == len(square_avgs) == len(steps) == n) or (
            centered and len(grad_avgs) != n) or (use_momentum and len(momentum_buffers) != n):
        raise ValueError(f"rmsprop: {n} parameters but {len(grads)} gradients, "
                         f"{len(square_avgs)} square averages, {len(steps)} steps")
    for i in range(n):
        count = 0
        stepped = False
        try:
            try:
                if _claim(v, &count, params[i]):
                    refused.append(i)
                    continue
                acquire(v, &count, grads[i], False)
                acquire(v, &count, square_avgs[i], True)
                if centered:
                    acquire(v, &count, grad_avgs[i], True)
                if use_momentum:
                    acquire(v, &count, momentum_buffers[i], True)
            except BufferError:
                strided.append(i)
                continue
            _same(v, count, i)
            _step_buffer(&s, steps[i], i)
            stepped = True
            _advance(&s)
            k = kind_of(&v[0])
            threads = _threads(elements(&v[0]), num_threads, serial_below)
            with nogil:
                if k == F32:
                    _rmsprop_split(<float *>v[0].buf, <const float *>v[1].buf,
                                   <float *>v[2].buf, <float *>v[ga_at].buf if centered else NULL,
                                   <float *>v[buf_at].buf if use_momentum else NULL,
                                   elements(&v[0]), <float>lr, <float>alpha, <float>(1 - alpha),
                                   <float>eps, <float>weight_decay, <float>momentum, maximize,
                                   use_decay, centered, use_momentum, threads)
                else:
                    _rmsprop_split(<double *>v[0].buf, <const double *>v[1].buf,
                                   <double *>v[2].buf,
                                   <double *>v[ga_at].buf if centered else NULL,
                                   <double *>v[buf_at].buf if use_momentum else NULL,
                                   elements(&v[0]), lr, alpha, 1 - alpha, eps, weight_decay,
                                   momentum, maximize, use_decay, centered, use_momentum,
                                   threads)
        finally:
            release(v, count)
            if stepped:
                PyBuffer_Release(&s)
    return strided, refused


# ---------------------------------------------------------------------- Adagrad

cdef inline void _adagrad_loop(floating *p, const floating *g, floating *sums, Py_ssize_t n,
                               floating clr, floating eps, floating decay, bint maximize,
                               bint use_decay) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, q, d
    for i in range(n):
        x = -g[i] if maximize else g[i]
        if use_decay:
            x = x + decay * p[i]
        q = sums[i] + x * x
        sums[i] = q
        d = _sqrt(q) + eps
        p[i] = p[i] - clr * x / d


cdef void _adagrad(floating *p, const floating *g, floating *sums, Py_ssize_t n, floating clr,
                   floating eps, floating decay, bint maximize, bint use_decay) noexcept nogil:
    """numpy_backend.adagrad_update for one pair, clr the step's decayed rate."""
    if maximize:
        if use_decay:
            _adagrad_loop(p, g, sums, n, clr, eps, decay, True, True)
        else:
            _adagrad_loop(p, g, sums, n, clr, eps, decay, True, False)
    elif use_decay:
        _adagrad_loop(p, g, sums, n, clr, eps, decay, False, True)
    else:
        _adagrad_loop(p, g, sums, n, clr, eps, decay, False, False)


cdef void _adagrad_split(floating *p, const floating *g, floating *sums, Py_ssize_t n,
                         floating clr, floating eps, floating decay, bint maximize,
                         bint use_decay, int num_threads) noexcept nogil:
    """_adagrad over n elements, in num_threads contiguous runs when that is more than one."""
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _adagrad(p, g, sums, n, clr, eps, decay, maximize, use_decay)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _adagrad(p + lo, g + lo, sums + lo, min(chunk, n - lo), clr, eps, decay, maximize,
                     use_decay)


def adagrad(list params, list grads, list state_sums, list steps, double lr, double lr_decay,
            double weight_decay, double eps, bint maximize, int num_threads=1):
    """Adagrad (numpy_backend.adagrad_update) for each parameter of the lists: its gradient,
    its sum of squares (written), its step counter (advanced); clr = lr / (1 + (t - 1) *
    lr_decay) in double from the step t."""
    cdef Py_buffer v[3]
    cdef Py_buffer s
    cdef int count, k, threads
    cdef bint stepped
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_decay = weight_decay != 0
    cdef double t, clr
    cdef list strided = [], refused = []
    if not (len(grads) == len(state_sums) == len(steps) == n):
        raise ValueError(f"adagrad: {n} parameters but {len(grads)} gradients, "
                         f"{len(state_sums)} sums, {len(steps)} steps")
    for i in range(n):
        count = 0
        stepped = False
        try:
            try:
                if _claim(v, &count, params[i]):
                    refused.append(i)
                    continue
                acquire(v, &count, grads[i], False)
                acquire(v, &count, state_sums[i], True)
            except BufferError:
                strided.append(i)
                continue
            _same(v, count, i)
            _step_buffer(&s, steps[i], i)
            stepped = True
            t = _advance(&s)
            clr = lr / (1 + (t - 1) * lr_decay)
            k = kind_of(&v[0])
            threads = _threads(elements(&v[0]), num_threads, serial_below)
            with nogil:
                if k == F32:
                    _adagrad_split(<float *>v[0].buf, <const float *>v[1].buf,
                                   <float *>v[2].buf, elements(&v[0]), <float>clr, <float>eps,
                                   <float>weight_decay, maximize, use_decay, threads)
                else:
                    _adagrad_split(<double *>v[0].buf, <const double *>v[1].buf,
                                   <double *>v[2].buf, elements(&v[0]), clr, eps, weight_decay,
                                   maximize, use_decay, threads)
        finally:
            release(v, count)
            if stepped:
                PyBuffer_Release(&s)
    return strided, refused


# ---------------------------------------------------------------------- Adadelta

cdef inline void _adadelta_loop(floating *p, const floating *g, floating *sq, floating *acc,
                                Py_ssize_t n, floating lr, floating rho, floating rest,
                                floating eps, floating decay, bint maximize,
                                bint use_decay) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating x, q, std, delta, a
    for i in range(n):
        x = -g[i] if maximize else g[i]
        if use_decay:
            x = x + decay * p[i]
        q = sq[i] * rho
        q = q + (rest * x) * x
        sq[i] = q
        std = _sqrt(q + eps)
        delta = _sqrt(acc[i] + eps)
        delta = delta / std
        delta = delta * x
        a = acc[i] * rho
        a = a + (rest * delta) * delta
        acc[i] = a
        p[i] = p[i] - lr * delta


cdef void _adadelta(floating *p, const floating *g, floating *sq, floating *acc, Py_ssize_t n,
                    floating lr, floating rho, floating rest, floating eps, floating decay,
                    bint maximize, bint use_decay) noexcept nogil:
    """numpy_backend.adadelta_update for one pair: rest = 1 - rho."""
    if maximize:
        if use_decay:
            _adadelta_loop(p, g, sq, acc, n, lr, rho, rest, eps, decay, True, True)
        else:
            _adadelta_loop(p, g, sq, acc, n, lr, rho, rest, eps, decay, True, False)
    elif use_decay:
        _adadelta_loop(p, g, sq, acc, n, lr, rho, rest, eps, decay, False, True)
    else:
        _adadelta_loop(p, g, sq, acc, n, lr, rho, rest, eps, decay, False, False)


cdef void _adadelta_split(floating *p, const floating *g, floating *sq, floating *acc,
                          Py_ssize_t n, floating lr, floating rho, floating rest, floating eps,
                          floating decay, bint maximize, bint use_decay,
                          int num_threads) noexcept nogil:
    """_adadelta over n elements, in num_threads contiguous runs when that is more than one."""
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _adadelta(p, g, sq, acc, n, lr, rho, rest, eps, decay, maximize, use_decay)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _adadelta(p + lo, g + lo, sq + lo, acc + lo, min(chunk, n - lo), lr, rho, rest,
                      eps, decay, maximize, use_decay)


def adadelta(list params, list grads, list square_avgs, list acc_deltas, list steps, double lr,
             double rho, double eps, double weight_decay, bint maximize, int num_threads=1):
    """Adadelta (numpy_backend.adadelta_update) for each parameter of the lists: its
    gradient, its averages of squared gradients and updates (written), its step counter
    (advanced)."""
    cdef Py_buffer v[4]
    cdef Py_buffer s
    cdef int count, k, threads
    cdef bint stepped
    cdef Py_ssize_t i, n = len(params)
    cdef bint use_decay = weight_decay != 0
    cdef list strided = [], refused = []
    if not (len(grads) == len(square_avgs) == len(acc_deltas) == len(steps) == n):
        raise ValueError(f"adadelta: {n} parameters but {len(grads)} gradients, "
                         f"{len(square_avgs)} and {len(acc_deltas)} averages, "
                         f"{len(steps)} steps")
    for i in range(n):
        count = 0
        stepped = False
        try:
            try:
                if _claim(v, &count, params[i]):
                    refused.append(i)
                    continue
                acquire(v, &count, grads[i], False)
                acquire(v, &count, square_avgs[i], True)
                acquire(v, &count, acc_deltas[i], True)
            except BufferError:
                strided.append(i)
                continue
            _same(v, count, i)
            _step_buffer(&s, steps[i], i)
            stepped = True
            _advance(&s)
            k = kind_of(&v[0])
            threads = _threads(elements(&v[0]), num_threads, serial_below)
            with nogil:
                if k == F32:
                    _adadelta_split(<float *>v[0].buf, <const float *>v[1].buf,
                                    <float *>v[2].buf, <float *>v[3].buf, elements(&v[0]),
                                    <float>lr, <float>rho, <float>(1 - rho), <float>eps,
                                    <float>weight_decay, maximize, use_decay, threads)
                else:
                    _adadelta_split(<double *>v[0].buf, <const double *>v[1].buf,
                                    <double *>v[2].buf, <double *>v[3].buf, elements(&v[0]), lr,
                                    rho, 1 - rho, eps, weight_decay, maximize, use_decay,
                                    threads)
        finally:
            release(v, count)
            if stepped:
                PyBuffer_Release(&s)
    return strided, refused


# ---------------------------------------------------------------------- shared checks

cdef int _claim(Py_buffer *views, int *count, object param) except -1:
    """Acquire a parameter for writing (views[count], counted); return 1 without acquiring
    anything if it is read-only. The check and the acquisition are one buffer request, so
    another thread cannot lock the array in between. A strided parameter raises BufferError
    (read-only or not: numpy's fallback makes its own claim)."""
    try:
        acquire(views, count, param, True)
        return 0
    except ValueError:  # numpy refuses a writable buffer of a read-only array with ValueError
        acquire(views, count, param, False)  # anything else wrong with it raises here
        count[0] -= 1
        PyBuffer_Release(&views[count[0]])
        return 1


cdef int _step_buffer(Py_buffer *s, object step, Py_ssize_t i) except -1:
    """A step counter: a writable 0-d (one element) float32 or float64 array."""
    PyObject_GetBuffer(step, s, PyBUF_STRIDES | PyBUF_FORMAT | PyBUF_WRITABLE)
    if kind_of(s) == 0 or s.len != s.itemsize:
        PyBuffer_Release(s)
        raise TypeError(f"parameter {i}: its step counter must be a one-element float32 or "
                        f"float64 array")
    return 0


cdef double _advance(Py_buffer *s) noexcept:
    """step += 1 in the counter's own dtype (torch's `step_t += 1`); the new value."""
    cdef float *f
    cdef double *d
    if kind_of(s) == F32:
        f = <float *>s.buf
        f[0] = f[0] + 1
        return f[0]
    d = <double *>s.buf
    d[0] = d[0] + 1
    return d[0]


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
