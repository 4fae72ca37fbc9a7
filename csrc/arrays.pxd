# Raw C-contiguous buffers for the small kernels (elementwise, reduce, loss).
#
# Why not typed memoryviews here: acquiring a fused-type memoryview costs 150-250 ns an array,
# more than the arithmetic of a 32x16 activation. These kernels take numpy arrays, ask for a
# C-contiguous buffer (the exporter refuses anything else) and check dtype and sizes in C before
# any loop runs, so nothing unchecked reaches the boundscheck-free code either way.

from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_IsContiguous,
                             PyBuffer_Release, PyObject_GetBuffer)

# dtype codes
cdef enum:
    F32 = 1
    F64 = 2


cdef inline int kind_of(Py_buffer *v) noexcept nogil:
    """F32, F64, or 0 for any other format (integers, non-native byte order...)."""
    if v.format == NULL or v.format[0] == 0 or v.format[1] != 0:
        return 0
    if v.format[0] == b'f' and v.itemsize == 4:
        return F32
    if v.format[0] == b'd' and v.itemsize == 8:
        return F64
    return 0


cdef inline int acquire(Py_buffer *views, int *count, object array, bint writable) except -1:
    """Fill views[count[0]] with a C-contiguous float buffer of array; count it (so that the
    caller's `release` frees it) and check its dtype.

    A strided array raises BufferError, which callers may answer with a contiguous copy
    (numpy itself would refuse it with a ValueError, the same as a read-only array); a
    read-only array asked to be written raises numpy's ValueError."""
    cdef int flags = PyBUF_STRIDES | PyBUF_FORMAT
    if writable:
        flags |= PyBUF_WRITABLE
    PyObject_GetBuffer(array, &views[count[0]], flags)
    if not PyBuffer_IsContiguous(&views[count[0]], b'C'):
        PyBuffer_Release(&views[count[0]])
        raise BufferError("expected a C-contiguous array")
    count[0] += 1
    if kind_of(&views[count[0] - 1]) == 0:
        raise TypeError(f"expected a float32 or float64 array, got format "
                        f"{views[count[0] - 1].format.decode()!r}")
    return 0


cdef inline int acquire_input(Py_buffer *views, int *count, object array) except -1:
    """acquire(array) for reading; a strided array is read through a C-contiguous copy (the
    view holds the copy alive until release)."""
    try:
        acquire(views, count, array, False)
    except BufferError:
        import numpy

        acquire(views, count, numpy.ascontiguousarray(array), False)
    return 0


cdef inline void release(Py_buffer *views, int count) noexcept:
    cdef int i
    for i in range(count):
        PyBuffer_Release(&views[i])


cdef inline Py_ssize_t elements(Py_buffer *v) noexcept nogil:
    return v.len // v.itemsize
