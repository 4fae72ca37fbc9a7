"""Fused log-softmax + negative log-likelihood (the cross-entropy of class indices).

Each row is one independent output: rows run in parallel, and inside a row the max, the sum of
exponentials and the log run in one fixed order (j ascending). exp is vmath.h's vectorised
exp (every element through one compiled block function); the one log per row is libm's.

Arrays are read through the buffer protocol (arrays.pxd): C-contiguous, one float dtype;
targets are C-contiguous intp. The kernel copies the targets and checks the copy before any
row is computed: a check made by the caller (in Python, before the GIL is released) would not
hold against another thread writing the caller's array meanwhile.
"""

from cython.parallel cimport prange
from libc.math cimport log, logf
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from arrays cimport (F32, acquire, cg_instr, cg_threads, cg_threads_init, exec_capsule, kind_of,
                     overlap, release)

import numpy as np
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyObject_GetBuffer

cg_threads_init()

# Logits (rows x classes) below which cross-entropy runs on one thread whatever it is given: an
# OpenMP region costs ~50-200 us under cygrad's passive wait, more than this many exps take (the
# elementwise kernels' costly_serial_below). `set_serial_below(0)`: every size takes the
# parallel path (tests do).
cdef Py_ssize_t _serial_below = 1 << 16


def set_serial_below(Py_ssize_t n):
    """Set the size below which cross-entropy runs on one thread; returns the old one."""
    global _serial_below
    old, _serial_below = _serial_below, n
    return old

ctypedef fused floating:
    float
    double

cdef extern from "vmath.h" nogil:
    enum:
        CG_BLOCK
    ctypedef void (*cg_unary_f32)(const float *, float *)
    ctypedef void (*cg_unary_f64)(const double *, double *)
    void cg_expneg_block_f32(const float *, float *)
    void cg_expneg_block_f64(const double *, double *)
    void cg_map1_f32(cg_unary_f32 f, const float *x, float *y, long n)
    void cg_map1_f64(cg_unary_f64 f, const double *x, double *y, long n)


cdef inline void _exp(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y := exp(x) for x <= 0."""
    if floating is float:
        cg_map1_f32(cg_expneg_block_f32, x, y, n)
    else:
        cg_map1_f64(cg_expneg_block_f64, x, y, n)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef void _forward_row(const floating *x, Py_ssize_t t, floating *logp, floating *loss,
                       Py_ssize_t c) noexcept nogil:
    cdef floating m = x[0], total = 0, lse
    cdef floating e[CG_BLOCK]
    cdef Py_ssize_t j, j0, w
    for j in range(1, c):
        if x[j] > m:
            m = x[j]
    for j in range(c):
        logp[j] = x[j] - m
    j0 = 0
    while j0 < c:  # blocks of exponentials, added in ascending j
        w = min(<Py_ssize_t>CG_BLOCK, c - j0)
        _exp(logp + j0, e, w)
        for j in range(w):
            total = total + e[j]
        j0 += CG_BLOCK
    lse = _log(total)
    for j in range(c):
        logp[j] = logp[j] - lse
    loss[0] = -logp[t]


cdef enum:
    GROUP = 1024  # exponentials of a group of short rows computed at once (elements)


cdef void _forward_rows(const floating *x, const Py_ssize_t *t, floating *logp,
                        floating *losses, Py_ssize_t i0, Py_ssize_t i1,
                        Py_ssize_t c) noexcept nogil:
    """Rows i0..i1-1. Rows of up to GROUP classes (a classifier's 10, a character model's
    65) go through exp a group at a time (rows' shifted logits side by side), not each padded
    to whole blocks of its own: exp is elementwise, each row's sum still adds its own in
    ascending j, so the bits are _forward_row's."""
    cdef floating e[GROUP]
    cdef floating m, total, lse
    cdef Py_ssize_t i, j, q, r, rows = GROUP // c if c > 0 else 0
    if c > GROUP or c <= 0:  # (no row has 0 classes: every target fails its check)
        for i in range(i0, i1):
            _forward_row(x + i * c, t[i], logp + i * c, losses + i, c)
        return
    i = i0
    while i < i1:
        r = min(rows, i1 - i)
        for q in range(i, i + r):
            m = x[q * c]
            for j in range(1, c):
                if x[q * c + j] > m:
                    m = x[q * c + j]
            for j in range(c):
                logp[q * c + j] = x[q * c + j] - m
        _exp(logp + i * c, e, r * c)
        for q in range(i, i + r):
            total = 0
            for j in range(c):
                total = total + e[(q - i) * c + j]
            lse = _log(total)
            for j in range(c):
                logp[q * c + j] = logp[q * c + j] - lse
            losses[q] = -logp[q * c + t[q]]
        i += r


cdef void _backward_rows(const floating *logp, const Py_ssize_t *t, const floating *g,
                         floating *dx, Py_ssize_t i0, Py_ssize_t i1,
                         Py_ssize_t c) noexcept nogil:
    """Rows i0..i1-1: dx := exp(logp) for all of them at once (elementwise), then each row's
    g * (p - onehot)."""
    cdef Py_ssize_t i, j
    _exp(logp + i0 * c, dx + i0 * c, (i1 - i0) * c)
    for i in range(i0, i1):
        for j in range(c):
            dx[i * c + j] = g[i] * (dx[i * c + j] - (1 if j == t[i] else 0))


cdef inline Py_ssize_t _group_rows(Py_ssize_t c) noexcept nogil:
    """Rows a thread takes at a time: a group of rows of up to GROUP classes, else one."""
    return GROUP // c if 0 < c <= GROUP else 1


cdef void _forward(const floating *x, const Py_ssize_t *t, floating *logp, floating *losses,
                   Py_ssize_t n, Py_ssize_t c, int num_threads) noexcept nogil:
    cdef Py_ssize_t i, rows = _group_rows(c)
    if num_threads <= 1 or n * c < _serial_below:  # no OpenMP region for small batches
        _forward_rows(x, t, logp, losses, 0, n, c)
    else:
        for i in prange((n + rows - 1) // rows, num_threads=num_threads, schedule="static"):
            _forward_rows(x, t, logp, losses, i * rows, min(n, (i + 1) * rows), c)


cdef void _backward(const floating *logp, const Py_ssize_t *t, const floating *g,
                    floating *dx, Py_ssize_t n, Py_ssize_t c, int num_threads) noexcept nogil:
    cdef Py_ssize_t i, rows = _group_rows(c)
    if num_threads <= 1 or n * c < _serial_below:
        _backward_rows(logp, t, g, dx, 0, n, c)
    else:
        for i in prange((n + rows - 1) // rows, num_threads=num_threads, schedule="static"):
            _backward_rows(logp, t, g, dx, i * rows, min(n, (i + 1) * rows), c)


cdef enum:
    STACK_TARGETS = 256  # targets of a batch up to this size are copied to the stack


cdef int _targets(Py_buffer *views, int *count, object targets, Py_ssize_t n) except -1:
    PyObject_GetBuffer(targets, &views[count[0]], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    count[0] += 1
    cdef Py_buffer *v = &views[count[0] - 1]
    if (v.itemsize != sizeof(Py_ssize_t) or v.format == NULL or v.format[0] == 0
            or v.format[0] not in b"lqn" or v.format[1] != 0):
        raise TypeError("targets must be an intp array")
    if v.len // v.itemsize != n:
        raise ValueError(f"one target per row expected: {n} rows, {v.len // v.itemsize} targets")
    return 0


cdef int _copy_targets(Py_buffer *v, Py_ssize_t *copy, Py_ssize_t n, Py_ssize_t c) except -1:
    """copy := the targets, then checked in the copy (which no other thread can reach)."""
    cdef Py_ssize_t i
    memcpy(copy, v.buf, n * sizeof(Py_ssize_t))
    for i in range(n):
        if copy[i] < 0 or copy[i] >= c:
            raise ValueError(f"class index {copy[i]} (at position {i}) out of range for {c} "
                             f"classes")
    return 0


cdef int _apart(Py_buffer *views, int first_output, int count, str name) except -1:
    """Outputs (views[first_output:]) share no memory with any other buffer."""
    cdef int i, j
    for i in range(first_output, count):
        for j in range(count):
            if j != i and (j < first_output or j > i) and overlap(&views[i], &views[j]):
                raise ValueError(f"{name}: an output array overlaps another argument")
    return 0


def log_softmax_nll(logits, targets, logp, losses, int num_threads):
    """logp[i] := x[i] - m_i - log(sum_j exp(x[i, j] - m_i)), m_i = max_j x[i, j];
    losses[i] := -logp[i, targets[i]]. logits, logp (n, c) and losses (n,) C-contiguous, one
    dtype, the outputs apart from the inputs; targets (n,) intp, each in [0, c) (checked here,
    on a private copy)."""
    cdef Py_buffer v[4]
    cdef int count = 0, threads = cg_threads(num_threads)
    cdef Py_ssize_t n = 0, c = 0
    cdef Py_ssize_t small[STACK_TARGETS]
    cdef Py_ssize_t *t = small
    try:
        acquire(v, &count, logits, False)
        acquire(v, &count, logp, True)
        acquire(v, &count, losses, True)
        if kind_of(&v[0]) != kind_of(&v[1]) or kind_of(&v[0]) != kind_of(&v[2]):
            raise TypeError("log_softmax_nll: mixed float32 and float64 arrays")
        if (v[0].ndim != 2 or v[1].ndim != 2 or v[1].shape[0] != v[0].shape[0]
                or v[1].shape[1] != v[0].shape[1] or v[2].len // v[2].itemsize != v[0].shape[0]):
            raise ValueError("log_softmax_nll: expected logits and logp (n, c), losses (n,)")
        n, c = v[0].shape[0], v[0].shape[1]
        _targets(v, &count, targets, n)
        _apart(v, 1, 3, "log_softmax_nll")
        if overlap(&v[1], &v[3]) or overlap(&v[2], &v[3]):
            raise ValueError("log_softmax_nll: an output array overlaps the targets")
        if c == 0:
            if n:
                raise ValueError("log_softmax_nll: no classes")
            return
        if n > STACK_TARGETS:
            t = <Py_ssize_t *>malloc(n * sizeof(Py_ssize_t))
            if t == NULL:
                raise MemoryError("log_softmax_nll: cannot copy the targets")
        _copy_targets(&v[3], t, n, c)
        with nogil:
            if kind_of(&v[0]) == F32:
                _forward(<const float *>v[0].buf, t, <float *>v[1].buf, <float *>v[2].buf, n, c,
                         threads)
            else:
                _forward(<const double *>v[0].buf, t, <double *>v[1].buf, <double *>v[2].buf, n,
                         c, threads)
    finally:
        if t != small:
            free(t)
        release(v, count)


def log_softmax_nll_backward(logp, targets, g, dx, int num_threads):
    """dx[i, j] := g[i] * (exp(logp[i, j]) - [j == targets[i]]).
    logp, dx (n, c) and g (n,) C-contiguous, one dtype, dx apart from the inputs; targets (n,)
    intp, each in [0, c) (checked here, on a private copy)."""
    cdef Py_buffer v[4]
    cdef int count = 0, threads = cg_threads(num_threads)
    cdef Py_ssize_t n = 0, c = 0
    cdef Py_ssize_t small[STACK_TARGETS]
    cdef Py_ssize_t *t = small
    try:
        acquire(v, &count, logp, False)
        acquire(v, &count, g, False)
        acquire(v, &count, dx, True)
        if kind_of(&v[0]) != kind_of(&v[1]) or kind_of(&v[0]) != kind_of(&v[2]):
            raise TypeError("log_softmax_nll_backward: mixed float32 and float64 arrays")
        if (v[0].ndim != 2 or v[2].ndim != 2 or v[2].shape[0] != v[0].shape[0]
                or v[2].shape[1] != v[0].shape[1] or v[1].len // v[1].itemsize != v[0].shape[0]):
            raise ValueError("log_softmax_nll_backward: expected logp and dx (n, c), g (n,)")
        n, c = v[0].shape[0], v[0].shape[1]
        _targets(v, &count, targets, n)
        if overlap(&v[2], &v[0]) or overlap(&v[2], &v[1]) or overlap(&v[2], &v[3]):
            raise ValueError("log_softmax_nll_backward: dx overlaps another argument")
        if n == 0:
            return
        if n > STACK_TARGETS:
            t = <Py_ssize_t *>malloc(n * sizeof(Py_ssize_t))
            if t == NULL:
                raise MemoryError("log_softmax_nll_backward: cannot copy the targets")
        _copy_targets(&v[3], t, n, c)
        with nogil:
            if kind_of(&v[0]) == F32:
                _backward(<const float *>v[0].buf, t, <const float *>v[1].buf,
                          <float *>v[2].buf, n, c, threads)
            else:
                _backward(<const double *>v[0].buf, t, <const double *>v[1].buf,
                          <double *>v[2].buf, n, c, threads)
    finally:
        if t != small:
            free(t)
        release(v, count)


# ---------------------------------------------------------------- replayed calls
# The losses of a dense net as program.h instructions (cygrad.compile's native tier), forward
# and backward, with eager's arithmetic: cygrad/ops/losses.py's MSE and CrossEntropy, whose
# reductions are reduce.column_sum's tree (here the same sums.h tree) and whose means divide in
# double and round once to the dtype.

cdef extern from "sums.h" nogil:
    Py_ssize_t cg_sums_scratch(Py_ssize_t n, Py_ssize_t w)
    void cg_sums_f32(const float *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     float *s, float *scratch)
    void cg_sums_f64(const double *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     double *s, double *scratch)

cdef extern from *:
    """
    /* diff := x - t, sq := diff * diff: one rounding each, as numpy's two ufuncs. Out of line,
       so that no sum reading sq can be fused with the products. */
    __attribute__((noinline)) static void cg_mse_squares_f32(const float *x, const float *t,
                                                           float *d, float *sq, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) { float v = x[i] - t[i]; d[i] = v; sq[i] = v * v; }
    }
    __attribute__((noinline)) static void cg_mse_squares_f64(const double *x, const double *t,
                                                           double *d, double *sq, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) { double v = x[i] - t[i]; d[i] = v; sq[i] = v * v; }
    }
    """
    void cg_mse_squares_f32(const float *x, const float *t, float *d, float *sq, Py_ssize_t n)
    void cg_mse_squares_f64(const double *x, const double *t, double *d, double *sq,
                            Py_ssize_t n)

cdef enum:
    MEAN = 1
    SUM = 2


cdef double _count(int kind, Py_ssize_t n) noexcept:
    """n as the dtype holds it (losses.py's _count)."""
    if 0 < n < (1 << 24) or kind != F32:
        return <double>n
    return <double>(<float>n)


cdef int _reduced(int kind, const char *x, Py_ssize_t n, int reduction, char *out) except -1:
    """out (0-d) := the tree sum of x's n elements (column_sum of x as (n, 1)), divided by n in
    double and rounded once to the dtype for the mean (losses.py's _reduce)."""
    cdef Py_ssize_t per = cg_sums_scratch(n, 1)
    cdef char *scratch = NULL
    cdef float s32
    cdef double s64
    if per:
        scratch = <char *>malloc(per * (4 if kind == F32 else 8))
        if scratch == NULL:
            raise MemoryError("loss: cannot allocate the partial sums")
    if kind == F32:
        cg_sums_f32(<const float *>x, n, 1, 1, 1, &s32, <float *>scratch)
        s64 = s32
    else:
        cg_sums_f64(<const double *>x, n, 1, 1, 1, &s64, <double *>scratch)
    free(scratch)
    if reduction == MEAN:
        s64 = s64 / _count(kind, n) if n else s64 * 0.0 / 0.0
    if kind == F32:
        (<float *>out)[0] = <float>s64
    else:
        (<double *>out)[0] = s64
    return 0


cdef int _exec_mse(cg_instr *ins) except -1:
    """MSE forward: p = x, t, diff, squares, loss (0-d); n = elements; code the reduction."""
    cdef Py_ssize_t n = ins.n[0]
    if ins.kind == F32:
        cg_mse_squares_f32(<const float *>ins.p[0], <const float *>ins.p[1],
                           <float *>ins.p[2], <float *>ins.p[3], n)
    else:
        cg_mse_squares_f64(<const double *>ins.p[0], <const double *>ins.p[1],
                           <double *>ins.p[2], <double *>ins.p[3], n)
    return _reduced(ins.kind, ins.p[3], n, ins.code, ins.p[4])


cdef int _exec_mse_backward(cg_instr *ins) except -1:
    """MSE backward from the seed 1: p = diff, dx, dt (or NULL); n = elements; code the
    reduction. dx = scale * diff with scale = 2 / n (mean) or 2, rounded once to the dtype."""
    cdef Py_ssize_t i, n = ins.n[0]
    cdef double scale = 2.0
    if ins.code == MEAN:
        scale = scale / _count(ins.kind, max(n, 1))
    cdef float s32 = <float>scale
    if ins.kind == F32:
        for i in range(n):
            (<float *>ins.p[1])[i] = s32 * (<const float *>ins.p[0])[i]
        if ins.p[2] != NULL:
            for i in range(n):
                (<float *>ins.p[2])[i] = -(<float *>ins.p[1])[i]
    else:
        for i in range(n):
            (<double *>ins.p[1])[i] = scale * (<const double *>ins.p[0])[i]
        if ins.p[2] != NULL:
            for i in range(n):
                (<double *>ins.p[2])[i] = -(<double *>ins.p[1])[i]
    return 0


cdef int _exec_cross_entropy(cg_instr *ins) except -1:
    """CrossEntropy forward: p = logits, targets (intp), logp, losses, loss (0-d); n = rows,
    classes; code the reduction; the targets checked on a private copy, as in
    log_softmax_nll."""
    cdef Py_ssize_t n = ins.n[0], c = ins.n[1]
    cdef Py_ssize_t small[STACK_TARGETS]
    cdef Py_ssize_t *t = small
    if n > STACK_TARGETS:
        t = <Py_ssize_t *>malloc(n * sizeof(Py_ssize_t))
        if t == NULL:
            raise MemoryError("log_softmax_nll: cannot copy the targets")
    try:
        _copy_targets_from(<const Py_ssize_t *>ins.p[1], t, n, c)
        if ins.kind == F32:
            _forward(<const float *>ins.p[0], t, <float *>ins.p[2], <float *>ins.p[3], n, c,
                     cg_threads(ins.threads))
        else:
            _forward(<const double *>ins.p[0], t, <double *>ins.p[2], <double *>ins.p[3], n, c,
                     cg_threads(ins.threads))
    finally:
        if t != small:
            free(t)
    return _reduced(ins.kind, ins.p[3], n, ins.code, ins.p[4])


cdef int _exec_cross_entropy_backward(cg_instr *ins) except -1:
    """CrossEntropy backward from the seed 1: p = logp, targets, dx; n = rows, classes; code
    the reduction (each row's gradient 1/n rounded to the dtype, or 1)."""
    cdef Py_ssize_t i, n = ins.n[0], c = ins.n[1]
    cdef double scale = 1.0
    cdef Py_ssize_t *t = NULL
    cdef char *rows = NULL
    if ins.code == MEAN:
        scale = scale / _count(ins.kind, max(n, 1))
    t = <Py_ssize_t *>malloc(max(n, 1) * (sizeof(Py_ssize_t) + 8))
    if t == NULL:
        raise MemoryError("log_softmax_nll_backward: cannot copy the targets")
    rows = <char *>(t + max(n, 1))
    try:
        _copy_targets_from(<const Py_ssize_t *>ins.p[1], t, n, c)
        if ins.kind == F32:
            for i in range(n):
                (<float *>rows)[i] = <float>scale
            _backward(<const float *>ins.p[0], t, <const float *>rows, <float *>ins.p[2], n, c,
                      cg_threads(ins.threads))
        else:
            for i in range(n):
                (<double *>rows)[i] = scale
            _backward(<const double *>ins.p[0], t, <const double *>rows, <double *>ins.p[2], n,
                      c, cg_threads(ins.threads))
    finally:
        free(t)
    return 0


cdef int _copy_targets_from(const Py_ssize_t *src, Py_ssize_t *copy, Py_ssize_t n,
                            Py_ssize_t c) except -1:
    cdef Py_ssize_t i
    memcpy(copy, src, n * sizeof(Py_ssize_t))
    for i in range(n):
        if copy[i] < 0 or copy[i] >= c:
            raise ValueError(f"class index {copy[i]} (at position {i}) out of range for {c} "
                             f"classes")
    return 0


def mse(x, t, int reduction):
    """(diff, loss): diff = x - t (a new array of x's shape), loss a new 0-d array: the tree
    sum of diff * diff (reduce.column_sum's bits), divided by the count in double and rounded
    once for the mean (reduction 1), or the sum (2). x, t C-contiguous, one float dtype, one
    shape; at least one element. ops/losses.py's MSE forward in one pass (the instruction
    `_exec_mse` runs the same)."""
    cdef Py_buffer v[4]
    cdef int count = 0, kind
    cdef Py_ssize_t n
    cdef char *sq = NULL
    if reduction != MEAN and reduction != SUM:
        raise ValueError(f"mse: reduction must be 1 (mean) or 2 (sum), got {reduction}")
    try:
        acquire(v, &count, x, False)
        acquire(v, &count, t, False)
        kind = kind_of(&v[0])
        if kind_of(&v[1]) != kind:
            raise TypeError("mse: mixed float32 and float64 arrays")
        n = v[0].len // v[0].itemsize
        if v[1].len // v[1].itemsize != n or n == 0:
            raise ValueError(f"mse: x and t must hold the same number (> 0) of elements, got "
                             f"{n} and {v[1].len // v[1].itemsize}")
        diff = np.empty(tuple([v[0].shape[i] for i in range(v[0].ndim)]), x.dtype)
        value = np.empty((), x.dtype)
        acquire(v, &count, diff, True)
        acquire(v, &count, value, True)
        sq = <char *>malloc(n * v[0].itemsize)
        if sq == NULL:
            raise MemoryError("mse: cannot allocate the squares")
        if kind == F32:
            cg_mse_squares_f32(<const float *>v[0].buf, <const float *>v[1].buf,
                               <float *>v[2].buf, <float *>sq, n)
        else:
            cg_mse_squares_f64(<const double *>v[0].buf, <const double *>v[1].buf,
                               <double *>v[2].buf, <double *>sq, n)
        _reduced(kind, sq, n, reduction, <char *>v[3].buf)
        return diff, value
    finally:
        free(sq)
        release(v, count)


EXEC = {"mse": exec_capsule(<void *>_exec_mse),
        "mse_backward": exec_capsule(<void *>_exec_mse_backward),
        "cross_entropy": exec_capsule(<void *>_exec_cross_entropy),
        "cross_entropy_backward": exec_capsule(<void *>_exec_cross_entropy_backward)}
