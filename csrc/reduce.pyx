"""Reductions. The one reduction kernels need: the column sum behind the bias gradient and
every broadcasting backward.

Order is part of the contract: s[j] = (((0 + g[0, j]) + g[1, j]) + ...) + g[n-1, j] for every
column j. A column's sum never depends on its position, the other columns or the thread count
(PyTorch's CPU column sum is not position-uniform; this is what we must not repeat).

Arrays are read through the buffer protocol (arrays.pxd): one float dtype, any layout (a strided
input is copied to C order first); the sums are made here. The entry points are the backend's own.
"""

from cython.parallel cimport prange

from arrays cimport F32, acquire, acquire_input, kind_of, release

import numpy as np

ctypedef fused floating:
    float
    double

# Columns per parallel chunk: wide enough to vectorise over j, small enough to stay in L1.
DEF CHUNK = 256


cdef void _columns(const floating *g, floating *s, Py_ssize_t n, Py_ssize_t m, Py_ssize_t j0,
                   Py_ssize_t j1) noexcept nogil:
    """s[j] := sum_i g[i, j] for j0 <= j < j1, i ascending from +0."""
    cdef Py_ssize_t i, j
    for j in range(j0, j1):
        s[j] = 0
    for i in range(n):
        for j in range(j0, j1):
            s[j] = s[j] + g[i * m + j]


cdef void _column_sum(const floating *g, floating *s, Py_ssize_t n, Py_ssize_t m,
                      int num_threads) noexcept nogil:
    cdef Py_ssize_t c, n_chunks = (m + CHUNK - 1) // CHUNK
    if num_threads <= 1 or n_chunks <= 1:  # no OpenMP region for small sums
        _columns(g, s, n, m, 0, m)
        return
    for c in prange(n_chunks, num_threads=num_threads, schedule="static"):
        _columns(g, s, n, m, c * CHUNK, min(c * CHUNK + CHUNK, m))


# Threads are woken only for sums of about 100 us and more (see cython_backend); a module
# attribute, so that tests can send small arrays down the parallel paths.
serial_below = 1 << 20  # elements

cdef object _empty = np.empty


def column_sum(g, int num_threads):
    """A new s[j] := sum_i g[i, j], i ascending from 0, one column never split across threads.
    g (n, m), one float dtype, any layout (a strided g is copied to C order first)."""
    cdef Py_buffer v[2]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, m = 0
    try:
        acquire_input(v, &count, g)
        if v[0].ndim != 2:
            raise ValueError("column_sum: expected g (n, m)")
        n, m = v[0].shape[0], v[0].shape[1]
        s = _empty(m, g.dtype)
        acquire(v, &count, s, True)
        threads = num_threads if n * m >= serial_below else 1
        with nogil:
            if kind_of(&v[0]) == F32:
                _column_sum(<const float *>v[0].buf, <float *>v[1].buf, n, m, threads)
            else:
                _column_sum(<const double *>v[0].buf, <double *>v[1].buf, n, m, threads)
    finally:
        release(v, count)
    return s


# A channel's chain runs over a block of Q elements before the next channel's, so each
# accumulator lives in a register for Q adds while the block's loads stay contiguous.
DEF Q = 32


cdef void _channels(const floating *g, floating *s, Py_ssize_t n, Py_ssize_t c, Py_ssize_t p,
                    Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """s[k] := sum over i ascending, then q ascending, of g[i, k, q], for c0 <= k < c1, from +0:
    each channel one chain (the chains of neighbouring channels overlap in the pipeline)."""
    cdef Py_ssize_t i, q0, q, k, w
    cdef floating a, a1, a2, a3
    cdef const floating *row
    for k in range(c0, c1):
        s[k] = 0
    for i in range(n):
        q0 = 0
        while q0 < p:
            w = min(<Py_ssize_t>Q, p - q0)
            k = c0
            while k + 4 <= c1:  # four chains side by side, each still in order
                row = g + (i * c + k) * p + q0
                a, a1, a2, a3 = s[k], s[k + 1], s[k + 2], s[k + 3]
                for q in range(w):
                    a = a + row[q]
                    a1 = a1 + row[p + q]
                    a2 = a2 + row[2 * p + q]
                    a3 = a3 + row[3 * p + q]
                s[k], s[k + 1], s[k + 2], s[k + 3] = a, a1, a2, a3
                k += 4
            while k < c1:
                row = g + (i * c + k) * p + q0
                a = s[k]
                for q in range(w):
                    a = a + row[q]
                s[k] = a
                k += 1
            q0 += Q


cdef void _channel_sum(const floating *g, floating *s, Py_ssize_t n, Py_ssize_t c,
                       Py_ssize_t p, int num_threads) noexcept nogil:
    cdef Py_ssize_t t, per
    if num_threads <= 1 or c < 2:
        _channels(g, s, n, c, p, 0, c)
        return
    per = (c + num_threads - 1) // num_threads
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        if t * per < c:
            _channels(g, s, n, c, p, t * per, min(t * per + per, c))


def channel_sum(g, int num_threads):
    """A new s[k] := sum_i sum_q g[i, k, q] for g (n, c, p), i then q ascending from +0: the
    bias gradient of a convolution (g of shape (N, C, OH*OW)), bitwise column_sum of the same
    numbers laid out as (N*OH*OW, C) rows. A channel never split across threads."""
    cdef Py_buffer v[2]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, c = 0, p = 0
    try:
        acquire_input(v, &count, g)
        if v[0].ndim != 3:
            raise ValueError("channel_sum: expected g (n, c, p)")
        n, c, p = v[0].shape[0], v[0].shape[1], v[0].shape[2]
        s = _empty(c, g.dtype)
        acquire(v, &count, s, True)
        threads = num_threads if n * c * p >= serial_below else 1
        with nogil:
            if kind_of(&v[0]) == F32:
                _channel_sum(<const float *>v[0].buf, <float *>v[1].buf, n, c, p, threads)
            else:
                _channel_sum(<const double *>v[0].buf, <double *>v[1].buf, n, c, p, threads)
    finally:
        release(v, count)
    return s
