"""Layer normalisation over the rows of a matrix, forward and backward, one pass per row.

The arithmetic is ops/norms.py's numpy form, operation for operation, each rounded once in the
dtype (this family is built with -ffp-contract=off: no product is fused into a sum, as numpy
fuses none), and every sum is sums.h's tree (row sums over a row's n elements, column sums over
the rows): the bits of numpy_backend.layer_norm and layer_norm_backward, the twins.

Forward, per row of x (r, n):
    mean = tree(x) / n;  xc = x - mean;  var = tree(xc * xc) / n;  rstd = 1 / sqrt(var + eps)
    xhat = xc * rstd;    y = xhat [* w] [+ b]
Backward, per row (gw = g [* w]):
    a = tree(gw) / n;  c = tree(gw * xhat) / n;  dx = ((gw - a) - xhat * c) * rstd
and over the rows: dw = column tree of g * xhat, db = column tree of g.
Rows are independent outputs: threads split rows, never a sum; the column sums run after.
"""

from cython.parallel cimport prange, threadid
from libc.math cimport sqrt, sqrtf
from libc.stdlib cimport free, malloc

from arrays cimport F32, acquire, cg_threads_for, cg_threads_init, kind_of, release

import numpy as np

cg_threads_init()

ctypedef fused floating:
    float
    double

cdef extern from "sums.h" nogil:
    Py_ssize_t cg_sums_scratch(Py_ssize_t n, Py_ssize_t w)
    void cg_sum_lanes_f32(const float *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w,
                          Py_ssize_t os, float *s, float *scratch)
    void cg_sum_lanes_f64(const double *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w,
                          Py_ssize_t os, double *s, double *scratch)
    void cg_sums_f32(const float *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     float *s, float *scratch)
    void cg_sums_f64(const double *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     double *s, double *scratch)

cdef object _empty = np.empty
cdef object _F32 = np.dtype(np.float32), _F64 = np.dtype(np.float64)

# Rows per thread below which one thread does all (an OpenMP region costs microseconds).
serial_below = 1 << 16  # elements


# Rows a block: their sums run side by side (sums.h's "lanes" engine across the rows), which
# gives the bits of each row's own sum (the tree depends on the length alone).
DEF BLOCK = 16


cdef inline void _row_sums(const floating *t, Py_ssize_t n, Py_ssize_t rows, floating *s,
                           floating *scratch) noexcept nogil:
    """s[k] := the tree over j < n of t[k*n + j], k < rows."""
    if floating is float:
        cg_sum_lanes_f32(t, n, 1, rows, n, s, scratch)
    else:
        cg_sum_lanes_f64(t, n, 1, rows, n, s, scratch)


cdef inline void _columns(const floating *x, Py_ssize_t r, Py_ssize_t n, floating *s,
                          floating *scratch) noexcept nogil:
    if floating is float:
        cg_sums_f32(x, r, n, n, 1, s, scratch)
    else:
        cg_sums_f64(x, r, n, n, 1, s, scratch)


cdef void _forward_block(const floating *x, const floating *w, const floating *b, floating *y,
                         floating *xhat, floating *rstd, Py_ssize_t rows, Py_ssize_t n,
                         floating eps, floating *tile, floating *scratch) noexcept nogil:
    """Rows 0 <= k < rows (at most BLOCK) of x: the forward of the module docstring."""
    cdef Py_ssize_t j, k
    cdef floating mean[BLOCK]
    cdef floating var[BLOCK]
    cdef floating r, d
    _row_sums(x, n, rows, mean, scratch)
    for k in range(rows):
        mean[k] = mean[k] / <floating>n
        for j in range(n):
            d = x[k * n + j] - mean[k]
            xhat[k * n + j] = d  # xc, for now
            tile[k * n + j] = d * d
    _row_sums(tile, n, rows, var, scratch)
    for k in range(rows):
        if floating is float:
            r = <float>1 / sqrtf(var[k] / <float>n + eps)
        else:
            r = 1 / sqrt(var[k] / <double>n + eps)
        rstd[k] = r
        for j in range(n):
            xhat[k * n + j] = xhat[k * n + j] * r
            y[k * n + j] = xhat[k * n + j]
        if w != NULL:
            for j in range(n):
                y[k * n + j] = y[k * n + j] * w[j]
        if b != NULL:
            for j in range(n):
                y[k * n + j] = y[k * n + j] + b[j]


cdef void _backward_block(const floating *g, const floating *xhat, const floating *rstd,
                          const floating *w, floating *dx, Py_ssize_t rows, Py_ssize_t n,
                          floating *tile, floating *tile2, floating *scratch) noexcept nogil:
    """Rows 0 <= k < rows (at most BLOCK): dx of the module docstring."""
    cdef Py_ssize_t j, k
    cdef floating a[BLOCK]
    cdef floating c[BLOCK]
    for k in range(rows):
        if w != NULL:
            for j in range(n):
                tile[k * n + j] = g[k * n + j] * w[j]
        else:
            for j in range(n):
                tile[k * n + j] = g[k * n + j]
        for j in range(n):
            tile2[k * n + j] = tile[k * n + j] * xhat[k * n + j]
    _row_sums(tile, n, rows, a, scratch)
    _row_sums(tile2, n, rows, c, scratch)
    for k in range(rows):
        a[k] = a[k] / <floating>n
        c[k] = c[k] / <floating>n
        for j in range(n):
            dx[k * n + j] = ((tile[k * n + j] - a[k]) - xhat[k * n + j] * c[k]) * rstd[k]


cdef int _acquire_opt(Py_buffer *v, int *count, object a, Py_ssize_t n, str name) except -1:
    """An optional (n,) parameter: its buffer (counted), checked."""
    acquire(v, count, a, False)
    if v[count[0] - 1].len // v[count[0] - 1].itemsize != n:
        raise ValueError(f"layer_norm: {name} must have {n} elements")
    return 0


def layer_norm(x, w, b, double eps, int num_threads):
    """(y, xhat, rstd) for x (r, n) C-contiguous float, w and b (n,) or None: see the module
    docstring. rstd (r,)."""
    cdef Py_buffer v[5]
    cdef int count = 0, threads = 1, kind
    cdef Py_ssize_t r = 0, n = 0, i, per
    cdef char *work = NULL
    cdef char *wp = NULL
    cdef char *bp = NULL
    try:
        acquire(v, &count, x, False)
        if v[0].ndim != 2:
            raise ValueError("layer_norm: x must be 2-D (rows, n)")
        r, n = v[0].shape[0], v[0].shape[1]
        kind = kind_of(&v[0])
        dtype = _F32 if kind == F32 else _F64
        if w is not None:
            _acquire_opt(v, &count, w, n, "w")
            wp = <char *>v[count - 1].buf
        if b is not None:
            _acquire_opt(v, &count, b, n, "b")
            bp = <char *>v[count - 1].buf
        for i in range(1, count):
            if kind_of(&v[i]) != kind:
                raise TypeError("layer_norm: mixed float32 and float64 arrays")
        if n == 0:
            raise ValueError("layer_norm: rows of no element (the backend's twin takes them)")
        y, xhat, rstd = _empty((r, n), dtype), _empty((r, n), dtype), _empty(r, dtype)
        if r == 0:
            return y, xhat, rstd
        threads = min(cg_threads_for(num_threads, r * n, serial_below),
                      <int>((r + BLOCK - 1) // BLOCK))
        per = BLOCK * n + cg_sums_scratch(n, BLOCK)  # a tile and the tree's partials, a thread
        work = <char *>malloc(threads * per * v[0].itemsize)
        if work == NULL:
            raise MemoryError("layer_norm: cannot allocate its work rows")
        if kind == F32:
            _forward(<const float *>v[0].buf, <const float *>wp, <const float *>bp, y, xhat,
                     rstd, r, n, <float>eps, <float *>work, per, threads)
        else:
            _forward(<const double *>v[0].buf, <const double *>wp, <const double *>bp, y, xhat,
                     rstd, r, n, eps, <double *>work, per, threads)
        return y, xhat, rstd
    finally:
        free(work)
        release(v, count)


cdef int _forward(const floating *x, const floating *w, const floating *b, object y,
                  object xhat, object rstd, Py_ssize_t r, Py_ssize_t n, floating eps,
                  floating *work, Py_ssize_t per, int threads) except -1:
    cdef Py_buffer o[3]
    cdef int count = 0
    cdef Py_ssize_t i, blocks = (r + BLOCK - 1) // BLOCK
    cdef floating *yp
    cdef floating *hp
    cdef floating *sp
    cdef int t
    try:
        for a in (y, xhat, rstd):
            acquire(o, &count, a, True)
        yp, hp, sp = <floating *>o[0].buf, <floating *>o[1].buf, <floating *>o[2].buf
        with nogil:
            if threads <= 1:
                for i in range(blocks):
                    _forward_block(x + i * BLOCK * n, w, b, yp + i * BLOCK * n,
                                   hp + i * BLOCK * n, sp + i * BLOCK,
                                   min(<Py_ssize_t>BLOCK, r - i * BLOCK), n, eps, work,
                                   work + BLOCK * n)
            else:
                for i in prange(blocks, num_threads=threads, schedule="static"):
                    t = threadid()
                    _forward_block(x + i * BLOCK * n, w, b, yp + i * BLOCK * n,
                                   hp + i * BLOCK * n, sp + i * BLOCK,
                                   min(<Py_ssize_t>BLOCK, r - i * BLOCK), n, eps,
                                   work + t * per, work + t * per + BLOCK * n)
    finally:
        release(o, count)
    return 0


def layer_norm_backward(g, xhat, rstd, w, bint need_dx, bint need_dw, bint need_db,
                        int num_threads):
    """(dx, dw, db), each None unless asked, for g and xhat (r, n), rstd (r,), w (n,) or None
    (see the module docstring)."""
    cdef Py_buffer v[4]
    cdef int count = 0, threads = 1, kind
    cdef Py_ssize_t r = 0, n = 0, i
    cdef char *wp = NULL
    try:
        acquire(v, &count, g, False)
        acquire(v, &count, xhat, False)
        acquire(v, &count, rstd, False)
        if v[0].ndim != 2 or v[1].ndim != 2 or v[0].shape[0] != v[1].shape[0] \
                or v[0].shape[1] != v[1].shape[1] or v[2].len // v[2].itemsize != v[0].shape[0]:
            raise ValueError("layer_norm_backward: expected g and xhat (r, n), rstd (r,)")
        r, n = v[0].shape[0], v[0].shape[1]
        kind = kind_of(&v[0])
        if w is not None:
            _acquire_opt(v, &count, w, n, "w")
            wp = <char *>v[count - 1].buf
        for i in range(1, count):
            if kind_of(&v[i]) != kind:
                raise TypeError("layer_norm_backward: mixed float32 and float64 arrays")
        dtype = _F32 if kind == F32 else _F64
        dx = _empty((r, n), dtype) if need_dx else None
        dw = _empty(n, dtype) if need_dw else None
        db = _empty(n, dtype) if need_db else None
        threads = min(cg_threads_for(num_threads, r * n, serial_below),
                      <int>max((r + BLOCK - 1) // BLOCK, 1))
        if kind == F32:
            _backward(<const float *>v[0].buf, <const float *>v[1].buf,
                      <const float *>v[2].buf, <const float *>wp, dx, dw, db, r, n, threads)
        else:
            _backward(<const double *>v[0].buf, <const double *>v[1].buf,
                      <const double *>v[2].buf, <const double *>wp, dx, dw, db, r, n, threads)
        return dx, dw, db
    finally:
        release(v, count)


cdef int _backward(const floating *g, const floating *xhat, const floating *rstd,
                   const floating *w, object dx, object dw, object db, Py_ssize_t r,
                   Py_ssize_t n, int threads) except -1:
    cdef Py_buffer o[3]
    cdef int count = 0, t
    cdef Py_ssize_t i, j, blocks = (r + BLOCK - 1) // BLOCK
    cdef Py_ssize_t per = 2 * BLOCK * n + cg_sums_scratch(n, BLOCK)
    cdef Py_ssize_t col = max(cg_sums_scratch(r, n), 1)
    cdef floating *work = NULL
    cdef floating *prod = NULL
    cdef floating *dxp = NULL
    try:
        if dx is not None:
            acquire(o, &count, dx, True)
            dxp = <floating *>o[count - 1].buf
            threads = max(threads, 1)
            work = <floating *>malloc(threads * per * sizeof(floating))
            if work == NULL:
                raise MemoryError("layer_norm_backward: cannot allocate its work rows")
            with nogil:
                if threads <= 1:
                    for i in range(blocks):
                        _backward_block(g + i * BLOCK * n, xhat + i * BLOCK * n,
                                        rstd + i * BLOCK, w, dxp + i * BLOCK * n,
                                        min(<Py_ssize_t>BLOCK, r - i * BLOCK), n, work,
                                        work + BLOCK * n, work + 2 * BLOCK * n)
                else:
                    for i in prange(blocks, num_threads=threads, schedule="static"):
                        t = threadid()
                        _backward_block(g + i * BLOCK * n, xhat + i * BLOCK * n,
                                        rstd + i * BLOCK, w, dxp + i * BLOCK * n,
                                        min(<Py_ssize_t>BLOCK, r - i * BLOCK), n,
                                        work + t * per, work + t * per + BLOCK * n,
                                        work + t * per + 2 * BLOCK * n)
        if dw is not None or db is not None:
            free(work)
            work = <floating *>malloc(col * sizeof(floating))
            if work == NULL:
                raise MemoryError("layer_norm_backward: cannot allocate the column sums")
        if dw is not None:
            acquire(o, &count, dw, True)
            prod = <floating *>malloc(max(r * n, 1) * sizeof(floating))
            if prod == NULL:
                raise MemoryError("layer_norm_backward: cannot allocate g * xhat")
            with nogil:
                for j in range(r * n):
                    prod[j] = g[j] * xhat[j]
                _columns(prod, r, n, <floating *>o[count - 1].buf, work)
        if db is not None:
            acquire(o, &count, db, True)
            with nogil:
                _columns(g, r, n, <floating *>o[count - 1].buf, work)
    finally:
        free(work)
        free(prod)
        release(o, count)
    return 0
