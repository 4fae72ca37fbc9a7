"""Optimiser updates: one call updates every parameter of a group.

Why a kernel for `p -= lr * g`: numpy costs about 1.5 us a parameter for it (a temporary, two
ufunc calls and the Python around them), which was a seventh of a small model's training step.
Here one call walks the whole list.

Bits: the update is numpy's, rounded after each operation -- t = lr * g, then p = p - t, in the
parameter's dtype -- so the cython and numpy backends agree bitwise, and every element's new
value depends on its own p and g alone. That is why this family is compiled with
-ffp-contract=off (setup.py): a fused multiply-add would round once where numpy rounds twice.
"""

from arrays cimport F32, acquire, elements, kind_of, release

ctypedef fused floating:
    float
    double


cdef void _sgd(floating *p, const floating *g, floating lr, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        p[i] = p[i] - lr * g[i]


def sgd(params, grads, double lr):
    """p := p - lr * g for each pair of the lists (lr rounded to p's dtype first). Each p a
    writable C-contiguous float array, its g a C-contiguous array of p's dtype and size.

    Returns the positions of the pairs it did not update because an array was not
    C-contiguous (the caller updates those itself); any other mismatch (a read-only p, mixed
    dtypes, sizes) raises, before that pair is touched.
    """
    cdef Py_buffer v[2]
    cdef int count
    cdef Py_ssize_t i, n = len(params)
    cdef list skipped = []
    if len(grads) != n:
        raise ValueError(f"sgd: {n} parameters but {len(grads)} gradients")
    for i in range(n):
        count = 0
        try:
            try:
                acquire(v, &count, params[i], True)
                acquire(v, &count, grads[i], False)
            except BufferError:  # strided
                skipped.append(i)
                continue
            if kind_of(&v[1]) != kind_of(&v[0]):
                raise TypeError(f"sgd: parameter {i} and its gradient must have one dtype, got "
                                f"formats {v[0].format.decode()!r} and {v[1].format.decode()!r}")
            if elements(&v[0]) != elements(&v[1]):
                raise ValueError(f"sgd: parameter {i} has {elements(&v[0])} elements, its "
                                 f"gradient {elements(&v[1])}")
            with nogil:
                if kind_of(&v[0]) == F32:
                    _sgd(<float *>v[0].buf, <const float *>v[1].buf, <float>lr, elements(&v[0]))
                else:
                    _sgd(<double *>v[0].buf, <const double *>v[1].buf, lr, elements(&v[0]))
        finally:
            release(v, count)
    return skipped
