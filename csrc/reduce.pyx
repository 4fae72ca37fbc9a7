"""Reductions: the column sum behind the bias gradient and every broadcasting backward, the row
sum, and a convolution's channel sum.

Order is part of the contract: every sum runs sums.h's fixed tree over its reduced index (chains
of CG_LEAF = 32 elements from +0, then a pairwise tree over the chains; for n <= 32 the plain
chain s = (((0 + g[0]) + g[1]) + ...) + g[n-1]). The tree depends on the length of the sum alone:
never on an output's position, the other outputs, the layout or the thread count, so column_sum(g)
and row_sum(g.T) have the same bits, and so does channel_sum of the same numbers. (PyTorch's CPU
column sum is not position-uniform; this is what we must not repeat.)

Arrays are read through the buffer protocol (arrays.pxd): one float dtype, any layout (a strided
input is copied to C order first); the sums are made here. The entry points are the backend's own.
"""

from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc

from arrays cimport (F32, acquire, acquire_input, cg_instr, cg_threads_for, cg_threads_init,
                     exec_capsule, kind_of, release)

import numpy as np

cg_threads_init()

ctypedef fused floating:
    float
    double

cdef extern from "sums.h" nogil:
    enum:
        CG_LEAF
        CG_CHUNK
    Py_ssize_t cg_sums_scratch(Py_ssize_t n, Py_ssize_t w)
    void cg_sums_f32(const float *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     float *s, float *scratch)
    void cg_sums_f64(const double *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     double *s, double *scratch)
    void cg_channel_sums_f32(const float *g, Py_ssize_t n, Py_ssize_t c, Py_ssize_t p,
                             Py_ssize_t k0, Py_ssize_t k1, float *s)
    void cg_channel_sums_f64(const double *g, Py_ssize_t n, Py_ssize_t c, Py_ssize_t p,
                             Py_ssize_t k0, Py_ssize_t k1, double *s)

# Length of the leaf chains (sums.h), for the numpy twin and the tests.
leaf = CG_LEAF

# Threads are woken only for sums of about 100 us and more (see cython_backend); a module
# attribute, so that tests can send small arrays down the parallel paths.
serial_below = 1 << 20  # elements

cdef object _empty = np.empty
cdef object _F32 = np.dtype(np.float32), _F64 = np.dtype(np.float64)


cdef inline void _run(const floating *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w,
                      Py_ssize_t os, floating *s, floating *scratch) noexcept nogil:
    if floating is float:
        cg_sums_f32(x, n, rs, w, os, s, scratch)
    else:
        cg_sums_f64(x, n, rs, w, os, s, scratch)


cdef int _sums(const floating *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
               floating *s, int threads) except -1:
    """s[o] := the tree over r < n of x[r*rs + o*os], o < w; threads take runs of CG_CHUNK
    outputs (an output never split)."""
    cdef Py_ssize_t c, chunks = (w + CG_CHUNK - 1) // CG_CHUNK
    cdef Py_ssize_t per = cg_sums_scratch(n, min(w, <Py_ssize_t>CG_CHUNK))
    cdef floating *scratch = NULL
    if threads > chunks:
        threads = <int>chunks
    if per:
        scratch = <floating *>malloc(max(threads, 1) * per * sizeof(floating))
        if scratch == NULL:
            raise MemoryError("sum: cannot allocate the partial sums")
    try:
        with nogil:
            if threads <= 1:  # no OpenMP region for small sums
                _run(x, n, rs, w, os, s, scratch)
            else:
                for c in prange(chunks, num_threads=threads, schedule="static"):
                    _run(x + c * CG_CHUNK * os, n, rs,
                         min(<Py_ssize_t>CG_CHUNK, w - c * CG_CHUNK), os, s + c * CG_CHUNK,
                         scratch + threadid() * per if per else NULL)
    finally:
        free(scratch)
    return 0


cdef object _matrix_sum(object g, bint columns, int num_threads):
    cdef Py_buffer v[2]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, m = 0
    try:
        acquire_input(v, &count, g)
        if v[0].ndim != 2:
            raise ValueError(f"{'column_sum' if columns else 'row_sum'}: expected g (n, m), "
                             f"got {v[0].ndim} dimensions")
        n, m = v[0].shape[0], v[0].shape[1]
        s = _empty(m if columns else n, _F32 if kind_of(&v[0]) == F32 else _F64)
        acquire(v, &count, s, True)
        threads = cg_threads_for(num_threads, n * m, serial_below)
        # columns: m outputs side by side (stride 1), each a sum down the rows (stride m);
        # rows: n outputs m apart, each a sum along its row
        if kind_of(&v[0]) == F32:
            if columns:
                _sums(<const float *>v[0].buf, n, m, m, 1, <float *>v[1].buf, threads)
            else:
                _sums(<const float *>v[0].buf, m, 1, n, m, <float *>v[1].buf, threads)
        else:
            if columns:
                _sums(<const double *>v[0].buf, n, m, m, 1, <double *>v[1].buf, threads)
            else:
                _sums(<const double *>v[0].buf, m, 1, n, m, <double *>v[1].buf, threads)
    finally:
        release(v, count)
    return s


def column_sum(g, int num_threads):
    """A new s[j] := sum_i g[i, j] for g (n, m), by sums.h's tree over i; one float dtype, any
    layout (a strided g is copied to C order first). A column is never split across threads."""
    return _matrix_sum(g, True, num_threads)


def row_sum(g, int num_threads):
    """A new s[i] := sum_j g[i, j] for g (n, m), by sums.h's tree over j: bitwise
    column_sum(g.T). A row is never split across threads."""
    return _matrix_sum(g, False, num_threads)


cdef int _exec_column_sum(cg_instr *ins) except -1:
    """column_sum as a program.h instruction: p = g (n, m), s (m,); n = n, m."""
    cdef Py_ssize_t n = ins.n[0], m = ins.n[1]
    cdef int threads = cg_threads_for(ins.threads, n * m, serial_below)
    if ins.kind == F32:
        _sums(<const float *>ins.p[0], n, m, m, 1, <float *>ins.p[1], threads)
    else:
        _sums(<const double *>ins.p[0], n, m, m, 1, <double *>ins.p[1], threads)
    return 0


EXEC = {"column_sum": exec_capsule(<void *>_exec_column_sum)}


cdef void _channel_sum(const floating *g, floating *s, Py_ssize_t n, Py_ssize_t c,
                       Py_ssize_t p, int num_threads) noexcept nogil:
    cdef Py_ssize_t t, per
    if num_threads <= 1 or c < 2:
        if floating is float:
            cg_channel_sums_f32(g, n, c, p, 0, c, s)
        else:
            cg_channel_sums_f64(g, n, c, p, 0, c, s)
        return
    per = (c + num_threads - 1) // num_threads
    per = (per + 3) // 4 * 4  # whole groups of four channels
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        if t * per < c:
            if floating is float:
                cg_channel_sums_f32(g, n, c, p, t * per, min(t * per + per, c), s)
            else:
                cg_channel_sums_f64(g, n, c, p, t * per, min(t * per + per, c), s)


def channel_sum(g, int num_threads):
    """A new s[k] := sum_i sum_q g[i, k, q] for g (n, c, p) by sums.h's tree over r = i*p + q:
    the bias gradient of a convolution (g of shape (N, C, OH*OW)), bitwise column_sum of the
    same numbers laid out as (N*OH*OW, C) rows. A channel never split across threads."""
    cdef Py_buffer v[2]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, c = 0, p = 0
    try:
        acquire_input(v, &count, g)
        if v[0].ndim != 3:
            raise ValueError(f"channel_sum: expected g (n, c, p), got {v[0].ndim} dimensions")
        n, c, p = v[0].shape[0], v[0].shape[1], v[0].shape[2]
        s = _empty(c, _F32 if kind_of(&v[0]) == F32 else _F64)
        acquire(v, &count, s, True)
        threads = cg_threads_for(num_threads, n * c * p, serial_below)
        with nogil:
            if kind_of(&v[0]) == F32:
                _channel_sum(<const float *>v[0].buf, <float *>v[1].buf, n, c, p, threads)
            else:
                _channel_sum(<const double *>v[0].buf, <double *>v[1].buf, n, c, p, threads)
    finally:
        release(v, count)
    return s
