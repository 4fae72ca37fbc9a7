"""Fused log-softmax + negative log-likelihood (the cross-entropy of class indices).

Each row is one independent output: rows run in parallel, and inside a row the max, the sum of
exponentials and the log run in one fixed order (j ascending).
"""

from cython.parallel cimport prange
from libc.math cimport exp, expf, log, logf

ctypedef fused floating:
    float
    double


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


def log_softmax_nll(const floating[:, ::1] logits, const Py_ssize_t[::1] targets,
                    floating[:, ::1] logp, floating[::1] losses, int num_threads):
    """logp[i] := x[i] - m_i - log(sum_j exp(x[i, j] - m_i)), m_i = max_j x[i, j];
    losses[i] := -logp[i, targets[i]]. Targets were range-checked in Python."""
    cdef Py_ssize_t n = logits.shape[0], c = logits.shape[1]
    cdef Py_ssize_t i, j
    cdef floating m, total, lse
    with nogil:
        for i in prange(n, num_threads=num_threads, schedule="static"):
            m = logits[i, 0]
            for j in range(1, c):
                if logits[i, j] > m:
                    m = logits[i, j]
            total = 0
            for j in range(c):
                total = total + _exp(logits[i, j] - m)
            lse = _log(total)
            for j in range(c):
                logp[i, j] = (logits[i, j] - m) - lse
            losses[i] = -logp[i, targets[i]]


def log_softmax_nll_backward(const floating[:, ::1] logp, const Py_ssize_t[::1] targets,
                             const floating[::1] g, floating[:, ::1] dx, int num_threads):
    """dx[i, j] := g[i] * (exp(logp[i, j]) - [j == targets[i]])."""
    cdef Py_ssize_t n = logp.shape[0], c = logp.shape[1]
    cdef Py_ssize_t i, j
    with nogil:
        for i in prange(n, num_threads=num_threads, schedule="static"):
            for j in range(c):
                dx[i, j] = g[i] * (_exp(logp[i, j]) - (1 if j == targets[i] else 0))
