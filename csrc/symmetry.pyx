"""symmetry: the symmetry monitor's check, after every training step, that the units of every
layer still all differ (cygrad/symmetry/monitor.py): whether a few hundred values, one per unit,
are all different. Compiled because right after a training step numpy's sort and ufunc code is
out of the CPU's caches, and the same check through numpy cost several times this one call. No
arithmetic: comparisons only; the exactness contract does not reach here.

`all_differ(columns)`: a hash set of the values as doubles (float32 converts exactly), probed
linearly. +0.0 and -0.0 are one value (they compare equal); a NaN answers False (undecided: the
monitor then groups the units the long way). numpy_backend.all_differ is the spec and the
fallback.
"""

from cpython.buffer cimport PyBUF_FORMAT, PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from arrays cimport F32, aligned, kind_of


cdef inline uint64_t _slot(double x, int shift) noexcept nogil:
    """Fibonacci hashing of x's bits: the top bits of bits * 2^64/phi."""
    cdef uint64_t bits
    memcpy(&bits, &x, 8)
    return (bits * <uint64_t>0x9E3779B97F4A7C15) >> shift


def all_differ(columns):
    """Whether no two of the values of `columns` (a list of 1-d float32 or float64 arrays of
    any stride), all together, are equal: +0.0 and -0.0 are equal; a NaN anywhere gives False.
    No values: True."""
    cdef list arrays = list(columns)
    cdef Py_buffer v
    cdef Py_ssize_t total = 0, size = 16, i, n, stride
    cdef int shift = 60, kind
    cdef uint64_t slot, mask
    cdef double x
    cdef double *keys = NULL
    cdef unsigned char *used = NULL
    cdef const char *p
    for a in arrays:
        PyObject_GetBuffer(a, &v, PyBUF_STRIDES | PyBUF_FORMAT)
        try:
            if v.ndim != 1:
                raise ValueError(f"all_differ: expected 1-d arrays, got {v.ndim} dimensions")
            if kind_of(&v) == 0 or not aligned(&v):
                raise TypeError("all_differ: expected aligned float32 or float64 arrays of "
                                "native byte order")
            total += v.shape[0]
        finally:
            PyBuffer_Release(&v)
    while size < 2 * total:  # at most half full
        size *= 2
        shift -= 1
    mask = <uint64_t>(size - 1)
    keys = <double *>malloc(size * sizeof(double))
    used = <unsigned char *>calloc(size, 1)
    if keys == NULL or used == NULL:
        free(keys)
        free(used)
        raise MemoryError()
    try:
        for a in arrays:
            # acquired again: each buffer's own shape and strides, whatever changed since
            PyObject_GetBuffer(a, &v, PyBUF_STRIDES | PyBUF_FORMAT)
            try:
                kind = kind_of(&v)
                if v.ndim != 1 or kind == 0 or not aligned(&v):
                    raise TypeError("all_differ: expected aligned 1-d float32 or float64 arrays")
                n, stride, p = v.shape[0], v.strides[0], <const char *>v.buf
                if total < n:  # an array grew between the two looks: not counted above
                    raise ValueError("all_differ: an array changed size during the call")
                total -= n
                for i in range(n):
                    if kind == F32:
                        x = (<const float *>(p + i * stride))[0]
                    else:
                        x = (<const double *>(p + i * stride))[0]
                    if x != x:
                        return False
                    if x == 0:
                        x = 0.0  # -0.0 as +0.0: one value
                    slot = _slot(x, shift) & mask
                    while used[slot]:
                        if keys[slot] == x:
                            return False
                        slot = (slot + 1) & mask
                    used[slot] = 1
                    keys[slot] = x
            finally:
                PyBuffer_Release(&v)
        return True
    finally:
        free(keys)
        free(used)
