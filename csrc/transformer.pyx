"""Kernels of the transformer layers: the embedding table's gradient and the attention softmax.

Every output element runs the same floating-point operations whatever its position, the batch
size or the thread count:

- `embedding_backward` scatter-adds gradient rows into the rows of the table they came from, in
  ascending position, dW[k] := ((0 + s*g[i0]) + s*g[i1]) + ... for the positions i0 < i1 < ...
  that hold index k (s = 1, or 1/count(k) with scale_grad_by_freq). Every column of a row adds
  the same rows in the same order, so identical columns of g give identical columns of dW.
  Threads split the columns, never a row's chain.
- `softmax_rows` is softmax(scale * x) along each row, with an optional causal limit; inside a
  row: the maximum, exp (vmath.h's vectorised exp, one compiled block function for every
  element), their sum in ascending j from +0 and one division an element. A row with nothing to
  attend to (all -inf) gives zeros, as torch's attention does. Rows run in parallel.
- `softmax_rows_backward` is dx := scale * y * (g - sum_j g*y), the sum in ascending j.

Arrays come through the buffer protocol (arrays.pxd): one float dtype, C-contiguous (inputs of
another layout are copied), sizes checked here before any loop; indices are intp and are
range-checked inside the kernel, so nothing unchecked reaches the loops.
"""

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyObject_GetBuffer
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from arrays cimport F32, acquire, acquire_input, kind_of, release

cdef extern from "threads.h" nogil:
    void cg_threads_init()
    int cg_threads(long long requested)

cg_threads_init()

import numpy as np

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

cdef object _empty = np.empty
cdef object _zeros = np.zeros
cdef object _F32 = np.dtype(np.float32), _F64 = np.dtype(np.float64)

# Threads are woken only for work of about 100 us and more (as the other families); module
# attributes, so that tests can send small arrays down the parallel paths.
serial_below = 1 << 16  # elements: softmax (an exp each) and the embedding's scatter-add

cdef enum:
    COLUMN_CHUNK = 64  # columns per parallel share of the scatter-add: a whole number of lines


cdef int _threads(Py_ssize_t n, int num_threads) except -1:
    num_threads = cg_threads(num_threads)  # capped; one thread after a fork (threads.h)
    return num_threads if num_threads > 1 and n >= serial_below else 1


cdef int _indices(Py_buffer *views, int *count, object indices) except -1:
    """A C-contiguous intp buffer of indices (counted for release)."""
    PyObject_GetBuffer(indices, &views[count[0]], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    count[0] += 1
    cdef Py_buffer *v = &views[count[0] - 1]
    if (v.itemsize != sizeof(Py_ssize_t) or v.format == NULL or v.format[0] not in b"lqn"
            or v.format[1] != 0):
        raise TypeError("indices must be a C-contiguous intp array")
    return 0


# ---------------------------------------------------------------- embedding's gradient

cdef void _scatter_columns(const floating *g, const Py_ssize_t *idx, const Py_ssize_t *counts,
                           floating *dw, Py_ssize_t n, Py_ssize_t d, Py_ssize_t skip,
                           Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """dw[idx[i], j] += g[i, j] (or s * g[i, j], s = 1/counts[idx[i]] rounded to the dtype,
    when counts is not NULL) for ascending i, columns j0 <= j < j1; rows with idx == skip are
    left out."""
    cdef Py_ssize_t i, j, k
    cdef floating s
    cdef floating *row
    cdef const floating *src
    for i in range(n):
        k = idx[i]
        if k == skip:
            continue
        row = dw + k * d
        src = g + i * d
        if counts == NULL:
            for j in range(j0, j1):
                row[j] = row[j] + src[j]
        else:
            s = <floating>(1.0 / <double>counts[k])
            for j in range(j0, j1):
                row[j] = row[j] + s * src[j]


cdef void _scatter(const floating *g, const Py_ssize_t *idx, const Py_ssize_t *counts,
                   floating *dw, Py_ssize_t n, Py_ssize_t d, Py_ssize_t skip,
                   int num_threads) noexcept nogil:
    cdef Py_ssize_t c, chunks = (d + COLUMN_CHUNK - 1) // COLUMN_CHUNK
    if num_threads <= 1 or chunks <= 1:
        _scatter_columns(g, idx, counts, dw, n, d, skip, 0, d)
        return
    for c in prange(chunks, num_threads=num_threads, schedule="static"):
        _scatter_columns(g, idx, counts, dw, n, d, skip, c * COLUMN_CHUNK,
                         min(c * COLUMN_CHUNK + COLUMN_CHUNK, d))


def embedding_backward(g, indices, Py_ssize_t num_weights, Py_ssize_t padding_idx,
                       bint scale_grad_by_freq, int num_threads):
    """A new dW (num_weights, d): dW[k] := sum of s_k * g[i] over the positions i with
    indices[i] == k, in ascending i from +0; the row padding_idx (-1: none) gets nothing.
    s_k = 1, or 1 / (number of positions holding k) rounded to the dtype with
    scale_grad_by_freq (torch's scaling). g (n, d) float, indices (n,) intp, each checked here
    to lie in [0, num_weights) (IndexError otherwise)."""
    cdef Py_buffer v[3]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, d = 0, i, bad = -1
    cdef Py_ssize_t *counts = NULL
    cdef const Py_ssize_t *idx
    if num_weights < 0:
        raise ValueError(f"embedding_backward: num_weights must be >= 0, got {num_weights}")
    try:
        acquire_input(v, &count, g)
        if v[0].ndim != 2:
            raise ValueError("embedding_backward: g must be 2-D (positions, embedding_dim)")
        n, d = v[0].shape[0], v[0].shape[1]
        _indices(v, &count, indices)
        if v[1].len // v[1].itemsize != n:
            raise ValueError(f"embedding_backward: {v[1].len // v[1].itemsize} indices for {n} "
                             "gradient rows")
        idx = <const Py_ssize_t *>v[1].buf
        for i in range(n):  # every index checked before anything is written
            if idx[i] < 0 or idx[i] >= num_weights:
                bad = i
                break
        if bad >= 0:
            raise IndexError(f"index {idx[bad]} is out of range for an embedding of "
                             f"{num_weights} rows")
        dw = _zeros((num_weights, d), _F32 if kind_of(&v[0]) == F32 else _F64)
        acquire(v, &count, dw, True)
        if scale_grad_by_freq:
            counts = <Py_ssize_t *>malloc(max(num_weights, 1) * sizeof(Py_ssize_t))
            if counts == NULL:
                raise MemoryError("embedding_backward: cannot allocate the counts")
            memset(counts, 0, max(num_weights, 1) * sizeof(Py_ssize_t))
            for i in range(n):
                counts[idx[i]] += 1
        threads = _threads(n * d, num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _scatter(<const float *>v[0].buf, idx, counts, <float *>v[2].buf, n, d,
                         padding_idx, threads)
            else:
                _scatter(<const double *>v[0].buf, idx, counts, <double *>v[2].buf, n, d,
                         padding_idx, threads)
    finally:
        free(counts)
        release(v, count)
    return dw


# ---------------------------------------------------------------- the attention softmax

cdef inline void _exp(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y := exp(x) for x <= 0 (vmath.h; -inf gives +0)."""
    if floating is float:
        cg_map1_f32(cg_expneg_block_f32, x, y, n)
    else:
        cg_map1_f64(cg_expneg_block_f64, x, y, n)


cdef enum:
    SOFTMAX_CHUNK = 64  # rows whose exponentials are taken in one call (short rows fill blocks)


cdef void _softmax_shift(const floating *x, floating *y, Py_ssize_t s, Py_ssize_t lim,
                         floating scale) noexcept nogil:
    """y[j] := z[j] - m for j < lim (z = scale * x rounded first, m = max z), -inf for j >= lim;
    a row with m = -inf (nothing to attend to) is left all -inf, which exp turns into zeros.
    z is stored before m is subtracted: never one fused multiply-add."""
    cdef Py_ssize_t j
    cdef floating m = -INFINITY
    for j in range(lim):
        y[j] = scale * x[j]
        m = y[j] if y[j] > m else m
    if m == -INFINITY:
        lim = 0
    for j in range(lim):
        y[j] = y[j] - m
    for j in range(lim, s):
        y[j] = -INFINITY


cdef void _softmax_normalise(floating *y, Py_ssize_t lim) noexcept nogil:
    """y[j] := e[j] / sum_j' e[j'] over j < lim, the sum in ascending j from +0 (a row whose
    exponentials are all +0, the empty ones, stays +0)."""
    cdef Py_ssize_t j
    cdef floating total = 0
    for j in range(lim):
        total = total + y[j]
    if total == 0:
        return
    for j in range(lim):
        y[j] = y[j] / total


cdef void _softmax_chunk(const floating *x, floating *y, Py_ssize_t r0, Py_ssize_t r1,
                         Py_ssize_t s, Py_ssize_t causal, Py_ssize_t shift,
                         floating scale) noexcept nogil:
    """Rows r0 <= r < r1: shifted logits row by row, one exp over the whole chunk (each
    element through vmath's one block function: its value alone decides its result), then
    each row's sum and division."""
    cdef Py_ssize_t r
    for r in range(r0, r1):
        _softmax_shift(x + r * s, y + r * s, s, _limit(r, s, causal, shift), scale)
    _exp(y + r0 * s, y + r0 * s, (r1 - r0) * s)
    for r in range(r0, r1):
        _softmax_normalise(y + r * s, _limit(r, s, causal, shift))


cdef void _softmax(const floating *x, floating *y, Py_ssize_t rows, Py_ssize_t s,
                   Py_ssize_t causal, Py_ssize_t shift, floating scale,
                   int num_threads) noexcept nogil:
    """Row r (query position q = r % causal) attends to its first min(s, q + 1 + shift)
    columns when causal > 0, else to all s. Threads split the chunks of rows."""
    cdef Py_ssize_t c, chunks = (rows + SOFTMAX_CHUNK - 1) // SOFTMAX_CHUNK
    if num_threads <= 1:
        for c in range(chunks):
            _softmax_chunk(x, y, c * SOFTMAX_CHUNK, min(rows, (c + 1) * SOFTMAX_CHUNK), s,
                           causal, shift, scale)
    else:
        for c in prange(chunks, num_threads=num_threads, schedule="static"):
            _softmax_chunk(x, y, c * SOFTMAX_CHUNK, min(rows, (c + 1) * SOFTMAX_CHUNK), s,
                           causal, shift, scale)


cdef inline Py_ssize_t _limit(Py_ssize_t r, Py_ssize_t s, Py_ssize_t causal,
                              Py_ssize_t shift) noexcept nogil:
    if causal <= 0:
        return s
    return max(0, min(s, r % causal + 1 + shift))


cdef void _softmax_back_row(const floating *y, const floating *g, floating *dx, Py_ssize_t s,
                            floating scale) noexcept nogil:
    """dx[j] := scale * (y[j] * (g[j] - dot)), dot = sum_j g[j] * y[j] in ascending j."""
    cdef Py_ssize_t j
    cdef floating dot = 0
    for j in range(s):
        dot = dot + g[j] * y[j]
    for j in range(s):
        dx[j] = scale * (y[j] * (g[j] - dot))


cdef void _softmax_back(const floating *y, const floating *g, floating *dx, Py_ssize_t rows,
                        Py_ssize_t s, floating scale, int num_threads) noexcept nogil:
    cdef Py_ssize_t r
    if num_threads <= 1:
        for r in range(rows):
            _softmax_back_row(y + r * s, g + r * s, dx + r * s, s, scale)
    else:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            _softmax_back_row(y + r * s, g + r * s, dx + r * s, s, scale)


cdef int _rows(Py_buffer *v, Py_ssize_t *rows, Py_ssize_t *s) except -1:
    """The buffer as rows of its last dimension."""
    cdef int i
    if v.ndim < 1:
        raise ValueError("softmax_rows: expected at least a 1-D array")
    s[0] = v.shape[v.ndim - 1]
    rows[0] = 1
    for i in range(v.ndim - 1):
        rows[0] *= v.shape[i]
    return 0


def softmax_rows(x, double scale, Py_ssize_t causal, Py_ssize_t shift, int num_threads):
    """A new y: softmax(scale * x) along the last dimension (see _softmax_row), one row at a
    time. causal > 0: the rows are queries q = r % causal (r the row's index in C order), each
    attending to columns j <= q + shift only (torch's is_causal is shift 0, a tril mask); the
    other columns get 0. x any shape (last dimension the keys), float32 or float64."""
    cdef Py_buffer v[2]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t rows = 0, s = 0
    try:
        acquire_input(v, &count, x)
        _rows(&v[0], &rows, &s)
        y = _empty(x.shape, _F32 if kind_of(&v[0]) == F32 else _F64)
        acquire(v, &count, y, True)
        threads = _threads(rows * s, num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _softmax(<const float *>v[0].buf, <float *>v[1].buf, rows, s, causal, shift,
                         <float>scale, threads)
            else:
                _softmax(<const double *>v[0].buf, <double *>v[1].buf, rows, s, causal, shift,
                         scale, threads)
    finally:
        release(v, count)
    return y


def softmax_rows_backward(y, g, double scale, int num_threads):
    """A new dx := scale * (y * (g - sum_j g*y)) along the last dimension (the sum in ascending
    j from +0): softmax's backward from its output y, times the scale its input was multiplied
    by. y and g of one shape and dtype."""
    cdef Py_buffer v[3]
    cdef int count = 0, threads = 1, i
    cdef Py_ssize_t rows = 0, s = 0
    try:
        acquire_input(v, &count, y)
        acquire_input(v, &count, g)
        if kind_of(&v[0]) != kind_of(&v[1]):
            raise TypeError("softmax_rows_backward: mixed float32 and float64 arrays")
        if v[0].ndim != v[1].ndim or any([v[0].shape[i] != v[1].shape[i]
                                          for i in range(v[0].ndim)]):
            raise ValueError("softmax_rows_backward: y and g differ in shape")
        _rows(&v[0], &rows, &s)
        dx = _empty(y.shape, _F32 if kind_of(&v[0]) == F32 else _F64)
        acquire(v, &count, dx, True)
        threads = _threads(rows * s, num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _softmax_back(<const float *>v[0].buf, <const float *>v[1].buf,
                              <float *>v[2].buf, rows, s, <float>scale, threads)
            else:
                _softmax_back(<const double *>v[0].buf, <const double *>v[1].buf,
                              <double *>v[2].buf, rows, s, scale, threads)
    finally:
        release(v, count)
    return dx
