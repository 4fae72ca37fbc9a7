"""Reductions. The one reduction kernels need: the column sum behind the bias gradient and
every broadcasting backward.

Order is part of the contract: s[j] = (((0 + g[0, j]) + g[1, j]) + ...) + g[n-1, j] for every
column j. A column's sum never depends on its position, the other columns or the thread count
(PyTorch's CPU column sum is not position-uniform; this is what we must not repeat).
"""

from cython.parallel cimport prange

ctypedef fused floating:
    float
    double

# Columns per parallel chunk: wide enough to vectorise over j, small enough to stay in L1.
DEF CHUNK = 256


def column_sum(const floating[:, ::1] g, floating[::1] s, int num_threads):
    """s[j] := sum_i g[i, j], i ascending from 0, one column never split across threads."""
    cdef Py_ssize_t n = g.shape[0], m = g.shape[1]
    cdef Py_ssize_t n_chunks = (m + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, i, j, j0, j1
    with nogil:
        for c in prange(n_chunks, num_threads=num_threads, schedule="static"):
            j0 = c * CHUNK
            j1 = min(j0 + CHUNK, m)
            for j in range(j0, j1):
                s[j] = 0
            for i in range(n):
                for j in range(j0, j1):
                    s[j] = s[j] + g[i, j]
