# Raw buffers for the small kernels (elementwise, reduce, loss, gemm's operands), and the checks
# every kernel entry point shares.
#
# Why not typed memoryviews here: acquiring a fused-type memoryview costs 150-250 ns an array,
# more than the arithmetic of a 32x16 activation. These kernels take numpy arrays (or any buffer),
# ask for a C-contiguous buffer and check dtype, alignment and sizes in C before any loop runs,
# so nothing unchecked reaches the boundscheck-free code. Outputs are made from the buffers'
# own shapes, never from Python attributes an object could fake.

from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_IsContiguous,
                             PyBuffer_Release, PyObject_GetBuffer)
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uintptr_t

cdef extern from "threads.h" nogil:
    void cg_threads_init()
    int cg_threads(long long requested)
    int cg_threads_for(long long requested, long long work, long long serial_below)

# dtype codes
cdef enum:
    F32 = 1
    F64 = 2


cdef inline int kind_of(Py_buffer *v) noexcept nogil:
    """F32, F64, or 0 for any other format (integers, non-native byte order, unaligned...)."""
    if v.format == NULL or v.format[0] == 0 or v.format[1] != 0:
        return 0
    if v.format[0] == b'f' and v.itemsize == 4:
        return F32
    if v.format[0] == b'd' and v.itemsize == 8:
        return F64
    return 0


cdef inline bint aligned(Py_buffer *v) noexcept nogil:
    return (<uintptr_t>v.buf) % <uintptr_t>v.itemsize == 0


cdef inline object float_dtype_of(object array, Py_buffer *v):
    """numpy's native float32/float64 for a buffer holding floats in another byte order, or
    numpy's '=f' of an unaligned array; None for anything else."""
    cdef bytes fmt = v.format if v.format != NULL else b""
    if len(fmt) == 2 and fmt[:1] in b"@=<>!":
        fmt = fmt[1:]
    if fmt == b"f" and v.itemsize == 4:
        return "float32"
    if fmt == b"d" and v.itemsize == 8:
        return "float64"
    return None


cdef inline int acquire(Py_buffer *views, int *count, object array, bint writable) except -1:
    """Fill views[count[0]] with a C-contiguous, aligned, native float buffer of array; count
    it (so that the caller's `release` frees it).

    A strided, unaligned or byte-swapped float array raises BufferError, which callers may
    answer with a copy (numpy itself would refuse the strided one with a ValueError, the same as
    a read-only array); any other format raises TypeError; a read-only array asked to be written
    raises numpy's ValueError."""
    cdef int flags = PyBUF_STRIDES | PyBUF_FORMAT
    if writable:
        flags |= PyBUF_WRITABLE
    PyObject_GetBuffer(array, &views[count[0]], flags)
    count[0] += 1
    cdef Py_buffer *v = &views[count[0] - 1]
    if kind_of(v) == 0:
        if float_dtype_of(array, v) is None:
            raise TypeError(f"expected a float32 or float64 array, got format "
                            f"{(v.format or b'B').decode(errors='replace')!r}")
        raise BufferError("expected an array of native byte order and alignment")
    if not PyBuffer_IsContiguous(v, b'C'):
        raise BufferError("expected a C-contiguous array")
    if not aligned(v):
        raise BufferError("expected an aligned array")
    return 0


cdef inline int acquire_input(Py_buffer *views, int *count, object array) except -1:
    """acquire(array) for reading; a strided, unaligned or byte-swapped float array is read
    through a C-contiguous native copy (the view holds the copy alive until release)."""
    cdef int before = count[0]
    try:
        acquire(views, count, array, False)
    except BufferError:
        if count[0] > before:  # acquired, then refused: give it back before the copy
            count[0] -= 1
            PyBuffer_Release(&views[count[0]])
        acquire(views, count, native_copy(array), False)
    return 0


cdef inline object native_copy(object array):
    """A new C-contiguous, aligned, native-order copy of a float32/float64 buffer."""
    import numpy

    a = numpy.asarray(array)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        raise TypeError(f"expected a float32 or float64 array, got dtype {a.dtype}")
    return numpy.array(a, dtype="float32" if a.dtype.itemsize == 4 else "float64", order="C")


cdef inline void release(Py_buffer *views, int count) noexcept:
    cdef int i
    for i in range(count):
        PyBuffer_Release(&views[i])


cdef inline Py_ssize_t elements(Py_buffer *v) noexcept nogil:
    return v.len // v.itemsize


cdef inline tuple shape_of(Py_buffer *v):
    """The buffer's own shape (what an output must be made from)."""
    return tuple([v.shape[i] for i in range(v.ndim)]) if v.shape != NULL else (elements(v),)


cdef inline bint bytes_meet(const void *a, Py_ssize_t a_bytes, const void *b,
                            Py_ssize_t b_bytes) noexcept nogil:
    """Whether the byte ranges [a, a + a_bytes) and [b, b + b_bytes) intersect (an empty range
    meets nothing): the check of a kernel's output against its contiguous inputs."""
    return a_bytes > 0 and b_bytes > 0 and <size_t>a < <size_t>b + <size_t>b_bytes \
        and <size_t>b < <size_t>a + <size_t>a_bytes


cdef inline bint overlap(Py_buffer *a, Py_buffer *b) noexcept nogil:
    """Whether the memory extents of two buffers intersect (numpy's may_share_memory: exact for
    contiguous buffers, conservative for strided ones). Empty buffers overlap nothing."""
    cdef Py_ssize_t lo_a, hi_a, lo_b, hi_b
    if not extent(a, &lo_a, &hi_a) or not extent(b, &lo_b, &hi_b):
        return False
    return lo_a < hi_b and lo_b < hi_a


cdef inline bint extent(Py_buffer *v, Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    """[lo, hi): the bytes a buffer may touch, as addresses; False when it holds no element."""
    cdef Py_ssize_t i, step
    lo[0] = <Py_ssize_t>v.buf
    hi[0] = lo[0] + v.itemsize
    if v.len == 0:
        return False
    if v.shape == NULL or v.strides == NULL:
        hi[0] = lo[0] + v.len
        return True
    for i in range(v.ndim):
        if v.shape[i] == 0:
            return False
        step = (v.shape[i] - 1) * v.strides[i]
        if step < 0:
            lo[0] += step
        else:
            hi[0] += step
    return True


cdef inline bint same_layout(Py_buffer *a, Py_buffer *b) noexcept nogil:
    """The very same elements in the same order (an in-place operation's output and input)."""
    cdef int i
    if a.buf != b.buf or a.ndim != b.ndim or a.len != b.len:
        return False
    for i in range(a.ndim):
        if a.shape[i] != b.shape[i]:
            return False
    return True  # both C-contiguous, one itemsize: the same shape means the same strides


# ---------------------------------------------------------------- replayable kernels
# A kernel call as data (program.h): the families' exec functions take one, csrc/program.pyx
# runs a list of them.

cdef extern from "program.h":
    enum:
        CG_OPERANDS
        CG_SIZES
    ctypedef struct cg_instr:
        void *run
        int kind
        int threads
        int code
        int slot[6]
        char *p[6]
        Py_ssize_t n[6]
        double x
        const double *s
        void *pair
        int with_next
    const char *CG_EXEC_CAPSULE
    const char *CG_EXEC_PAIR_CAPSULE


cdef inline object exec_capsule(void *fn):
    """An exec function, for a family's EXEC dict."""
    return PyCapsule_New(fn, CG_EXEC_CAPSULE, NULL)


cdef inline object exec_pair_capsule(void *fn):
    """A pair exec function (two independent instructions at once), for EXEC_PAIR."""
    return PyCapsule_New(fn, CG_EXEC_PAIR_CAPSULE, NULL)
