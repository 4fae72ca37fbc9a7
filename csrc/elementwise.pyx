"""Elementwise kernels: activations forward and backward, bias add, and the fused pair a dense
layer needs (bias + activation forward; activation backward + bias gradient).

Every element is computed on its own, so outputs never depend on position or thread count.
tanh and sigmoid (and their gradients) run through the block functions of vmath.h: vectorised,
and one compiled body for every element, a partial last block included (zero-padded copy).
relu and leaky_relu are a select and at most one multiply: exact in any loop form.
prange splits the flat index range (or the rows, or the columns for a column sum) into
independent chunks.

Arrays arrive as numpy arrays and are read through the buffer protocol (arrays.pxd): inputs of
any layout (a strided one is copied to C order first), outputs made here, one float dtype, sizes
checked here before any loop. The entry points are the backend's own (cython_backend imports
them): no Python layer between `cygrad.backend` and these functions.
"""

from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_STRIDES, PyBuffer_Release,
                             PyObject_GetBuffer)
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc

from arrays cimport (F32, acquire, acquire_input, cg_instr, cg_threads, exec_capsule, cg_threads_init, elements, kind_of,
                     native_copy, overlap, release, same_layout, shape_of)

import numpy as np

cg_threads_init()

ctypedef fused floating:
    float
    double

cdef extern from "vmath.h" nogil:
    enum:
        CG_BLOCK
    ctypedef void (*cg_unary_f32)(const float *, float *)
    ctypedef void (*cg_unary_f64)(const double *, double *)
    ctypedef void (*cg_binary_f32)(const float *, const float *, float *)
    ctypedef void (*cg_binary_f64)(const double *, const double *, double *)
    void cg_tanh_block_f32(const float *, float *)
    void cg_tanh_block_f64(const double *, double *)
    void cg_sigmoid_block_f32(const float *, float *)
    void cg_sigmoid_block_f64(const double *, double *)
    void cg_tanh_grad_block_f32(const float *, const float *, float *)
    void cg_tanh_grad_block_f64(const double *, const double *, double *)
    void cg_sigmoid_grad_block_f32(const float *, const float *, float *)
    void cg_sigmoid_grad_block_f64(const double *, const double *, double *)
    void cg_map1_f32(cg_unary_f32 f, const float *x, float *y, long n)
    void cg_map1_f64(cg_unary_f64 f, const double *x, double *y, long n)
    void cg_map2_f32(cg_binary_f32 f, const float *a, const float *b, float *y, long n)
    void cg_map2_f64(cg_binary_f64 f, const double *a, const double *b, double *y, long n)
    # gelu and silu (the transformer activations; see _forward_gelu_silu)
    void cg_gelu_block_f32(const float *, float *)
    void cg_gelu_block_f64(const double *, double *)
    void cg_gelu_tanh_block_f32(const float *, float *)
    void cg_gelu_tanh_block_f64(const double *, double *)
    void cg_silu_block_f32(const float *, float *)
    void cg_silu_block_f64(const double *, double *)
    void cg_gelu_grad_block_f32(const float *, const float *, float *)
    void cg_gelu_grad_block_f64(const double *, const double *, double *)
    void cg_gelu_tanh_grad_block_f32(const float *, const float *, float *)
    void cg_gelu_tanh_grad_block_f64(const double *, const double *, double *)
    void cg_silu_grad_block_f32(const float *, const float *, float *)
    void cg_silu_grad_block_f64(const double *, const double *, double *)
    void cg_erf_block_f32(const float *, float *)
    void cg_erf_block_f64(const double *, double *)
    void cg_erf_grad_block_f32(const float *, const float *, float *)
    void cg_erf_grad_block_f64(const double *, const double *, double *)

cdef extern from "sums.h" nogil:
    enum:
        CG_LEAF
    Py_ssize_t cg_sums_scratch(Py_ssize_t n, Py_ssize_t w)
    void cg_sums_f32(const float *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     float *s, float *scratch)
    void cg_sums_f64(const double *x, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t w, Py_ssize_t os,
                     double *s, double *scratch)
    void cg_push_f32(float *stack, Py_ssize_t w, Py_ssize_t t, float *leaf)
    void cg_push_f64(double *stack, Py_ssize_t w, Py_ssize_t t, double *leaf)
    void cg_finish_f32(const float *stack, Py_ssize_t w, Py_ssize_t N, float *out)
    void cg_finish_f64(const double *stack, Py_ssize_t w, Py_ssize_t N, double *out)

# The kernels by name (the op table, cygrad/ops/elementwise.py, names the kernel each op runs),
# and their codes.
KERNELS = ("tanh", "sigmoid", "relu", "leaky_relu", "gelu", "silu", "erf")
DEF TANH = 0
DEF SIGMOID = 1
DEF RELU = 2
DEF LEAKY_RELU = 3
DEF GELU = 4  # the parameter picks the form: 0 erf, 1 tanh (torch's approximate="tanh")
DEF SILU = 5
DEF ERF = 6  # torch.erf (its backward reads x)

# Columns per parallel chunk of a column sum: a whole number of blocks.
DEF COLUMN_CHUNK = 256


# ---------------------------------------------------------------- one contiguous run

cdef void _forward(int kind, const floating *x, floating *y, Py_ssize_t n,
                   floating s) noexcept nogil:
    """y[i] := act(x[i]) for i < n."""
    cdef Py_ssize_t i
    if kind >= GELU:
        _forward_gelu_silu(kind, x, y, n, s)
    elif kind == TANH:
        if floating is float:
            cg_map1_f32(cg_tanh_block_f32, x, y, n)
        else:
            cg_map1_f64(cg_tanh_block_f64, x, y, n)
    elif kind == SIGMOID:
        if floating is float:
            cg_map1_f32(cg_sigmoid_block_f32, x, y, n)
        else:
            cg_map1_f64(cg_sigmoid_block_f64, x, y, n)
    elif kind == RELU:  # NaN passes (as numpy's maximum, torch.relu); -0.0 gives +0.0
        for i in range(n):
            y[i] = 0 if x[i] <= 0 else x[i]
    else:
        for i in range(n):
            y[i] = x[i] if x[i] > 0 else s * x[i]


cdef void _backward(int kind, const floating *g, const floating *saved, floating *dx,
                    Py_ssize_t n, floating s) noexcept nogil:
    """dx[i] from g[i] and saved[i] (the output y for tanh/sigmoid, for relu x or y: x > 0
    exactly when relu(x) > 0; for leaky_relu the input x). relu passes the gradient where saved
    is NaN, as torch's threshold_backward does."""
    cdef Py_ssize_t i
    if kind >= GELU:
        _backward_gelu_silu(kind, g, saved, dx, n, s)
    elif kind == TANH:
        if floating is float:
            cg_map2_f32(cg_tanh_grad_block_f32, g, saved, dx, n)
        else:
            cg_map2_f64(cg_tanh_grad_block_f64, g, saved, dx, n)
    elif kind == SIGMOID:
        if floating is float:
            cg_map2_f32(cg_sigmoid_grad_block_f32, g, saved, dx, n)
        else:
            cg_map2_f64(cg_sigmoid_grad_block_f64, g, saved, dx, n)
    elif kind == RELU:
        for i in range(n):
            dx[i] = 0 if saved[i] <= 0 else g[i]
    else:
        for i in range(n):
            dx[i] = g[i] if saved[i] > 0 else s * g[i]


# ---------------------------------------------------------------- gelu and silu
# (the transformer activations: vmath.h has their formulas; the op table runs them with the
# parameter `approximate` as 0.0 for "none" and 1.0 for "tanh", see _param)

cdef void _forward_gelu_silu(int kind, const floating *x, floating *y, Py_ssize_t n,
                             floating s) noexcept nogil:
    if kind == ERF:
        if floating is float:
            cg_map1_f32(cg_erf_block_f32, x, y, n)
        else:
            cg_map1_f64(cg_erf_block_f64, x, y, n)
        return
    if floating is float:
        cg_map1_f32(cg_silu_block_f32 if kind == SILU else
                    (cg_gelu_tanh_block_f32 if s != 0 else cg_gelu_block_f32), x, y, n)
    else:
        cg_map1_f64(cg_silu_block_f64 if kind == SILU else
                    (cg_gelu_tanh_block_f64 if s != 0 else cg_gelu_block_f64), x, y, n)


cdef void _backward_gelu_silu(int kind, const floating *g, const floating *x, floating *dx,
                              Py_ssize_t n, floating s) noexcept nogil:
    """dx from g and the input x."""
    if kind == ERF:
        if floating is float:
            cg_map2_f32(cg_erf_grad_block_f32, g, x, dx, n)
        else:
            cg_map2_f64(cg_erf_grad_block_f64, g, x, dx, n)
        return
    if floating is float:
        cg_map2_f32(cg_silu_grad_block_f32 if kind == SILU else
                    (cg_gelu_tanh_grad_block_f32 if s != 0 else cg_gelu_grad_block_f32),
                    g, x, dx, n)
    else:
        cg_map2_f64(cg_silu_grad_block_f64 if kind == SILU else
                    (cg_gelu_tanh_grad_block_f64 if s != 0 else cg_gelu_grad_block_f64),
                    g, x, dx, n)


cdef double _param(int kind, object param) except? -1.0:
    """The kernel's one float: gelu's `approximate` ("none" / "tanh") as 0 / 1, else a number."""
    if kind == GELU and isinstance(param, str):
        if param == "tanh":
            return 1.0
        if param == "none":
            return 0.0
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {param!r}")
    return param


cdef inline Py_ssize_t _chunk(Py_ssize_t n, int num_threads) noexcept nogil:
    """Elements per thread, a whole number of blocks."""
    cdef Py_ssize_t per = (n + num_threads - 1) // num_threads
    return (per + CG_BLOCK - 1) // CG_BLOCK * CG_BLOCK


cdef void _forward_flat(int kind, const floating *x, floating *y, Py_ssize_t n, floating s,
                        int num_threads) noexcept nogil:
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _forward(kind, x, y, n, s)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _forward(kind, x + lo, y + lo, min(chunk, n - lo), s)


cdef void _backward_flat(int kind, const floating *g, const floating *saved, floating *dx,
                         Py_ssize_t n, floating s, int num_threads) noexcept nogil:
    cdef Py_ssize_t t, lo, chunk
    if num_threads <= 1:
        _backward(kind, g, saved, dx, n, s)
        return
    chunk = _chunk(n, num_threads)
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        lo = t * chunk
        if lo < n:
            _backward(kind, g + lo, saved + lo, dx + lo, min(chunk, n - lo), s)


cdef void _bias_rows_serial(const floating *x, const floating *b, floating *z, floating *y,
                            Py_ssize_t n, Py_ssize_t m, int kind, floating s) noexcept nogil:
    """Rows 0 <= i < n: z[i, :] := x[i, :] + b (z may be x); then, for kind >= 0,
    y := act(z) over the n*m elements as one flat run (narrow rows would waste most of
    every block)."""
    cdef Py_ssize_t i, j
    for i in range(n):
        for j in range(m):
            z[i * m + j] = x[i * m + j] + b[j]
    if kind >= 0:
        _forward(kind, z, y, n * m, s)


cdef void _bias_rows(const floating *x, const floating *b, floating *z, floating *y,
                     Py_ssize_t n, Py_ssize_t m, int kind, floating s,
                     int num_threads) noexcept nogil:
    cdef Py_ssize_t t, r0, per
    if num_threads <= 1 or n < 2:  # no OpenMP region: it costs microseconds on small arrays
        _bias_rows_serial(x, b, z, y, n, m, kind, s)
        return
    per = (n + num_threads - 1) // num_threads
    for t in prange(num_threads, num_threads=num_threads, schedule="static"):
        r0 = t * per
        if r0 < n:
            _bias_rows_serial(x + r0 * m, b, z + r0 * m, (y + r0 * m) if kind >= 0 else y,
                              min(per, n - r0), m, kind, s)


cdef inline void _push(floating *stack, Py_ssize_t w, Py_ssize_t t,
                       floating *leaf) noexcept nogil:
    if floating is float:
        cg_push_f32(stack, w, t, leaf)
    else:
        cg_push_f64(stack, w, t, leaf)


cdef inline void _finish(floating *stack, Py_ssize_t w, Py_ssize_t N,
                         floating *out) noexcept nogil:
    if floating is float:
        cg_finish_f32(stack, w, N, out)
    else:
        cg_finish_f64(stack, w, N, out)


cdef void _columns_backward(int kind, const floating *g, const floating *saved, floating *dz,
                            floating *db, Py_ssize_t n, Py_ssize_t m, Py_ssize_t j0,
                            Py_ssize_t w, floating s, floating *scratch) noexcept nogil:
    """Columns j0 <= j < j0 + w: dz := act'(saved) * g row by row, and db[j] := sum_i dz[i, j]
    by sums.h's tree, each leaf summed as its rows are made (reduce.column_sum's bits).
    scratch: cg_sums_scratch(n, w) elements."""
    cdef Py_ssize_t i, j, t, r1, leaves = (n + CG_LEAF - 1) // CG_LEAF
    cdef floating *out
    cdef floating *leaf = db + j0 if n <= CG_LEAF else scratch
    for t in range(leaves):
        for j in range(w):
            leaf[j] = 0
        r1 = min(t * CG_LEAF + CG_LEAF, n)
        for i in range(t * CG_LEAF, r1):
            out = dz + i * m + j0
            _backward(kind, g + i * m + j0, saved + i * m + j0, out, w, s)
            for j in range(w):
                leaf[j] = leaf[j] + out[j]
        if n > CG_LEAF:
            _push(scratch + w, w, t, leaf)
    if n > CG_LEAF:
        _finish(scratch + w, w, leaves, db + j0)
    elif n == 0:
        for j in range(w):
            db[j0 + j] = 0


cdef void _backward_column_sum(int kind, const floating *g, const floating *saved,
                               floating *dz, floating *db, Py_ssize_t n, Py_ssize_t m,
                               floating s, int num_threads, floating *scratch,
                               Py_ssize_t per) noexcept nogil:
    """A column is never split between threads: they take chunks of COLUMN_CHUNK columns,
    each with its own `per` elements of scratch."""
    cdef Py_ssize_t c, j0, n_chunks = (m + COLUMN_CHUNK - 1) // COLUMN_CHUNK
    if num_threads <= 1 or n_chunks <= 1:  # one flat run (narrow rows waste blocks), then sum
        _backward(kind, g, saved, dz, n * m, s)
        if floating is float:
            cg_sums_f32(dz, n, m, m, 1, db, scratch)
        else:
            cg_sums_f64(dz, n, m, m, 1, db, scratch)
        return
    for c in prange(n_chunks, num_threads=num_threads, schedule="static"):
        j0 = c * COLUMN_CHUNK
        _columns_backward(kind, g, saved, dz, db, n, m, j0, min(j0 + COLUMN_CHUNK, m) - j0, s,
                          scratch + threadid() * per if per else NULL)


# ---------------------------------------------------------------- Python entry points

cdef int _same(Py_buffer *views, int count) except -1:
    """Every buffer has the dtype of the first."""
    cdef int i
    for i in range(1, count):
        if kind_of(&views[i]) != kind_of(&views[0]):
            raise TypeError("mixed float32 and float64 arrays")
    return 0


cdef int _check_rows(Py_buffer *x, Py_buffer *b, Py_ssize_t *n, Py_ssize_t *m) except -1:
    if x.ndim != 2 or b.ndim != 1 or b.shape[0] != x.shape[1]:
        raise ValueError("expected x of shape (n, m) and b of shape (m,)")
    n[0], m[0] = x.shape[0], x.shape[1]
    return 0


# Threads are woken only for work of about 100 us and more (see cython_backend); module
# attributes, so that tests can send small arrays down the parallel paths.
cheap_serial_below = 1 << 20  # elements: relu, leaky_relu, bias adds, column sums
costly_serial_below = 1 << 16  # elements: tanh, sigmoid

cdef object _empty = np.empty
cdef object _F32 = np.dtype(np.float32), _F64 = np.dtype(np.float64)
cdef object _MT19937 = np.random.MT19937


cdef inline object _new(Py_buffer *like):
    """A new array of the buffer's own shape and dtype (never the Python object's attributes,
    which a subclass could make lie)."""
    return _empty(shape_of(like), _F32 if kind_of(like) == F32 else _F64)


cdef int _code(object name) except -1:
    if name == "tanh":
        return TANH
    if name == "sigmoid":
        return SIGMOID
    if name == "relu":
        return RELU
    if name == "leaky_relu":
        return LEAKY_RELU
    if name == "gelu":
        return GELU
    if name == "silu":
        return SILU
    if name == "erf":
        return ERF
    raise ValueError(f"unknown activation {name!r}")


cdef int _threads(Py_ssize_t n, bint costly, int num_threads) except -1:
    """num_threads (capped: threads.h) for n elements (costly: a transcendental each), 1 below
    the threshold."""
    if n < (costly_serial_below if costly else cheap_serial_below):
        return 1
    return cg_threads(num_threads)


cdef inline bint _costly(int kind) noexcept:
    """The forward of tanh, sigmoid, gelu and silu computes a transcendental an element."""
    return kind == TANH or kind == SIGMOID or kind >= GELU


def activation_forward(name, x, param, int num_threads):
    """A new y := act(x) elementwise: tanh; sigmoid 1/(1+exp(-x)); relu max(x, 0) (NaN kept);
    leaky_relu x > 0 ? x : slope*x; gelu (param "none" or "tanh"); silu. x any layout (a
    strided x is copied first). param: leaky_relu's slope, gelu's approximate."""
    cdef int kind = _code(name)
    cdef double slope = _param(kind, param)
    cdef Py_buffer v[2]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0
    try:
        acquire_input(v, &count, x)
        y = _new(&v[0])
        acquire(v, &count, y, True)
        n = elements(&v[0])
        threads = _threads(n, _costly(kind), num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _forward_flat(kind, <const float *>v[0].buf, <float *>v[1].buf, n,
                              <float>slope, threads)
            else:
                _forward_flat(kind, <const double *>v[0].buf, <double *>v[1].buf, n, slope,
                              threads)
    finally:
        release(v, count)
    return y


def activation_backward(name, g, saved, param, int num_threads):
    """A new dx from the output gradient g and `saved` (one size, one dtype, any layout):
    y for tanh/sigmoid, x (or y) for relu, x for leaky_relu. tanh: dx = g * (1 - y*y);
    sigmoid: dx = g * (y * (1 - y)); relu: dx = 0 if saved <= 0 else g; leaky_relu:
    dx = g if x > 0 else slope * g; gelu and silu from x (vmath.h has the formulas). dx has
    g's shape."""
    cdef int kind = _code(name)
    cdef double slope = _param(kind, param)
    cdef Py_buffer v[3]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0
    try:
        acquire_input(v, &count, g)
        acquire_input(v, &count, saved)
        _same(v, count)
        n = elements(&v[0])
        if elements(&v[1]) != n:
            raise ValueError("activation_backward: arrays differ in size")
        dx = _new(&v[0])
        acquire(v, &count, dx, True)
        threads = _threads(n, False, num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _backward_flat(kind, <const float *>v[0].buf, <const float *>v[1].buf,
                               <float *>v[2].buf, n, <float>slope, threads)
            else:
                _backward_flat(kind, <const double *>v[0].buf, <const double *>v[1].buf,
                               <double *>v[2].buf, n, slope, threads)
    finally:
        release(v, count)
    return dx


def bias_add(x, b, y, int num_threads):
    """Y := X + b (b broadcast over rows); X, Y (n, m), b (m,); y None (a new array) or a
    C-contiguous array of x's shape. y may be x (in place); a y that overlaps x otherwise, or b,
    gets np.add's result: what it would overwrite is read from a copy first. Returns Y."""
    cdef Py_buffer v[3]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, m = 0
    try:
        acquire_input(v, &count, x)
        acquire_input(v, &count, b)
        _same(v, count)
        _check_rows(&v[0], &v[1], &n, &m)
        if y is None:
            y = _new(&v[0])
        acquire(v, &count, y, True)
        _same(v, count)
        if v[2].ndim != 2 or v[2].shape[0] != n or v[2].shape[1] != m:
            raise ValueError("bias_add: y must have the shape of x")
        if overlap(&v[2], &v[1]):  # b would change under the loop: add a copy of it
            PyBuffer_Release(&v[1])
            PyObject_GetBuffer(native_copy(b), &v[1], PyBUF_STRIDES | PyBUF_FORMAT)
        if overlap(&v[2], &v[0]) and not same_layout(&v[2], &v[0]):  # rows would shift
            PyBuffer_Release(&v[0])
            PyObject_GetBuffer(native_copy(x), &v[0], PyBUF_STRIDES | PyBUF_FORMAT)
        threads = _threads(n * m, False, num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _bias_rows(<const float *>v[0].buf, <const float *>v[1].buf, <float *>v[2].buf,
                           <float *>NULL, n, m, -1, 0, threads)
            else:
                _bias_rows(<const double *>v[0].buf, <const double *>v[1].buf,
                           <double *>v[2].buf, <double *>NULL, n, m, -1, 0, threads)
    finally:
        release(v, count)
    return y


def bias_activation(name, z, b, double slope, int num_threads):
    """Per row, in one pass: Z := Z + b in place, then a new Y := act(Z). Z (n, m) writable,
    aligned and C-contiguous (a fresh gemm output), b (m,) (copied first if it lies in Z).
    Z gets the bits of bias_add, Y those of activation_forward on Z."""
    cdef int kind = _code(name)
    cdef Py_buffer v[3]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, m = 0
    try:
        acquire(v, &count, z, True)
        acquire_input(v, &count, b)
        _same(v, count)
        _check_rows(&v[0], &v[1], &n, &m)
        if overlap(&v[0], &v[1]):
            PyBuffer_Release(&v[1])
            PyObject_GetBuffer(native_copy(b), &v[1], PyBUF_STRIDES | PyBUF_FORMAT)
        y = _new(&v[0])
        acquire(v, &count, y, True)
        threads = _threads(n * m, _costly(kind), num_threads)
        with nogil:
            if kind_of(&v[0]) == F32:
                _bias_rows(<const float *>v[0].buf, <const float *>v[1].buf, <float *>v[0].buf,
                           <float *>v[2].buf, n, m, kind, <float>slope, threads)
            else:
                _bias_rows(<const double *>v[0].buf, <const double *>v[1].buf,
                           <double *>v[0].buf, <double *>v[2].buf, n, m, kind, slope, threads)
    finally:
        release(v, count)
    return y


def activation_backward_bias(name, g, saved, double slope, int num_threads):
    """New (dz, db): dz the activation's backward (as activation_backward) on (n, m) arrays,
    db[j] := sum_i dz[i, j] by sums.h's tree over i: the bias gradient, bitwise that of
    reduce.column_sum(dz)."""
    cdef int kind = _code(name)
    cdef Py_buffer v[4]
    cdef int count = 0, threads = 1
    cdef Py_ssize_t n = 0, m = 0, per = 0
    cdef char *scratch = NULL
    try:
        acquire_input(v, &count, g)
        acquire_input(v, &count, saved)
        _same(v, count)
        if v[0].ndim != 2:
            raise ValueError("activation_backward_bias: g must be 2-D")
        n, m = v[0].shape[0], v[0].shape[1]
        if elements(&v[1]) != n * m:
            raise ValueError("activation_backward_bias: arrays differ in size")
        dz = _new(&v[0])
        db = _empty(m, _F32 if kind_of(&v[0]) == F32 else _F64)
        acquire(v, &count, dz, True)
        acquire(v, &count, db, True)
        threads = _threads(n * m, False, num_threads)
        # scratch for the tree: a chunk of columns at a time, on each thread (the count is
        # capped, so the product is small)
        per = cg_sums_scratch(n, m)
        if per:
            scratch = <char *>malloc(threads * per * v[0].itemsize)
            if scratch == NULL:
                raise MemoryError("activation_backward_bias: cannot allocate the partial sums")
        with nogil:
            if kind_of(&v[0]) == F32:
                _backward_column_sum(kind, <const float *>v[0].buf, <const float *>v[1].buf,
                                     <float *>v[2].buf, <float *>v[3].buf, n, m, <float>slope,
                                     threads, <float *>scratch, per)
            else:
                _backward_column_sum(kind, <const double *>v[0].buf, <const double *>v[1].buf,
                                     <double *>v[2].buf, <double *>v[3].buf, n, m, slope,
                                     threads, <double *>scratch, per)
    finally:
        free(scratch)
        release(v, count)
    return dz, db


# ---------------------------------------------------------------- replayed calls
# The dense layer's kernels as program.h instructions (cygrad.compile's native tier): each the
# internal function its entry point above calls, with the threads that entry point would pick.

cdef int _exec_bias_add(cg_instr *ins) except -1:
    """bias_add: p = x, b, y (y may be x); n = rows, columns."""
    cdef Py_ssize_t n = ins.n[0], m = ins.n[1]
    cdef int threads = _threads(n * m, False, ins.threads)
    if ins.kind == F32:
        _bias_rows(<const float *>ins.p[0], <const float *>ins.p[1], <float *>ins.p[2],
                   <float *>NULL, n, m, -1, 0, threads)
    else:
        _bias_rows(<const double *>ins.p[0], <const double *>ins.p[1], <double *>ins.p[2],
                   <double *>NULL, n, m, -1, 0, threads)
    return 0


cdef int _exec_bias_activation(cg_instr *ins) except -1:
    """bias_activation: p = z (written in place), b, y; n = rows, columns; code the
    activation, x its slope."""
    cdef Py_ssize_t n = ins.n[0], m = ins.n[1]
    cdef int threads = _threads(n * m, _costly(ins.code), ins.threads)
    if ins.kind == F32:
        _bias_rows(<const float *>ins.p[0], <const float *>ins.p[1], <float *>ins.p[0],
                   <float *>ins.p[2], n, m, ins.code, <float>ins.x, threads)
    else:
        _bias_rows(<const double *>ins.p[0], <const double *>ins.p[1], <double *>ins.p[0],
                   <double *>ins.p[2], n, m, ins.code, ins.x, threads)
    return 0


cdef int _exec_activation_backward_bias(cg_instr *ins) except -1:
    """activation_backward_bias: p = g, saved, dz, db; n = rows, columns; code the
    activation, x its slope."""
    cdef Py_ssize_t n = ins.n[0], m = ins.n[1], per = cg_sums_scratch(n, m)
    cdef int threads = _threads(n * m, False, ins.threads)
    cdef char *scratch = NULL
    if per:
        scratch = <char *>malloc(threads * per * (4 if ins.kind == F32 else 8))
        if scratch == NULL:
            raise MemoryError("activation_backward_bias: cannot allocate the partial sums")
    if ins.kind == F32:
        _backward_column_sum(ins.code, <const float *>ins.p[0], <const float *>ins.p[1],
                             <float *>ins.p[2], <float *>ins.p[3], n, m, <float>ins.x, threads,
                             <float *>scratch, per)
    else:
        _backward_column_sum(ins.code, <const double *>ins.p[0], <const double *>ins.p[1],
                             <double *>ins.p[2], <double *>ins.p[3], n, m, ins.x, threads,
                             <double *>scratch, per)
    free(scratch)
    return 0


def activation_code(name):
    """The code an instruction carries for activation `name` (ValueError for others)."""
    return _code(name)


EXEC = {"bias_add": exec_capsule(<void *>_exec_bias_add),
        "bias_activation": exec_capsule(<void *>_exec_bias_activation),
        "activation_backward_bias": exec_capsule(<void *>_exec_activation_backward_bias)}


# ---------------------------------------------------------------- dropout's mask

cdef extern from *:
    """
    #include <stdint.h>
    /* numpy's bitgen_t (numpy/random/bitgen.h, a stable ABI): the C face of a BitGenerator,
       reached through its capsule "BitGenerator". */
    typedef struct cg_bitgen {
        void *state;
        uint64_t (*next_uint64)(void *st);
        uint32_t (*next_uint32)(void *st);
        double (*next_double)(void *st);
        uint64_t (*next_raw)(void *st);
    } cg_bitgen;
    """
    ctypedef unsigned long long uint64_t
    ctypedef unsigned int uint32_t
    ctypedef struct cg_bitgen:
        void *state
        uint32_t (*next_uint32)(void *st) noexcept nogil

from cpython.pycapsule cimport PyCapsule_GetPointer

cdef extern from *:
    """
    /* numpy's MT19937 state (numpy/random/src/mt19937/mt19937.h) and its block generation,
       as numpy writes them; _mt_checked() verifies both against numpy's own generator before
       the first use, and dropout keeps to numpy's next_uint32 if they differ. */
    #define CG_MT_N 624
    #define CG_MT_M 397
    typedef struct cg_mt_state { uint32_t key[CG_MT_N]; int pos; } cg_mt_state;

    static void cg_mt_gen(cg_mt_state *s) {
        uint32_t y;
        int i;
        for (i = 0; i < CG_MT_N - CG_MT_M; i++) {
            y = (s->key[i] & 0x80000000U) | (s->key[i + 1] & 0x7fffffffU);
            s->key[i] = s->key[i + CG_MT_M] ^ (y >> 1) ^ (-(y & 1) & 0x9908b0dfU);
        }
        for (; i < CG_MT_N - 1; i++) {
            y = (s->key[i] & 0x80000000U) | (s->key[i + 1] & 0x7fffffffU);
            s->key[i] = s->key[i + (CG_MT_M - CG_MT_N)] ^ (y >> 1) ^ (-(y & 1) & 0x9908b0dfU);
        }
        y = (s->key[CG_MT_N - 1] & 0x80000000U) | (s->key[0] & 0x7fffffffU);
        s->key[CG_MT_N - 1] = s->key[CG_MT_M - 1] ^ (y >> 1) ^ (-(y & 1) & 0x9908b0dfU);
        s->pos = 0;
    }

    static inline uint32_t cg_mt_temper(uint32_t y) {
        y ^= (y >> 11);
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= (y >> 18);
        return y;
    }

    /* next_uint32 of numpy's MT19937, inline */
    static inline uint32_t cg_mt_next(cg_mt_state *s) {
        if (s->pos >= CG_MT_N) cg_mt_gen(s);
        return cg_mt_temper(s->key[s->pos++]);
    }
    """
    ctypedef struct cg_mt_state:
        uint32_t key[624]
        int pos
    void cg_mt_gen(cg_mt_state *s) noexcept nogil
    uint32_t cg_mt_temper(uint32_t y) noexcept nogil
    uint32_t cg_mt_next(cg_mt_state *s) noexcept nogil


cdef void _dropout(cg_bitgen *bits, const floating *x, floating *y, floating *scale,
                   Py_ssize_t n, double keep, floating kept) noexcept nogil:
    """In memory order: u = 53 bits of two 32-bit draws (the first the high half) times 2^-53,
    scale[i] = kept if u < keep else 0, y[i] = x[i] * scale[i] (torch's bernoulli_ with a
    number p: random64()'s 53 bits)."""
    cdef Py_ssize_t i
    cdef uint64_t hi, lo
    cdef double u
    for i in range(n):
        hi = bits.next_uint32(bits.state)
        lo = bits.next_uint32(bits.state)
        u = <double>(((hi << 32) | lo) & ((<uint64_t>1 << 53) - 1)) * (1.0 / 9007199254740992.0)
        scale[i] = kept if u < keep else 0
        y[i] = x[i] * scale[i]


cdef void _dropout_mt(cg_mt_state *s, const floating *x, floating *y, floating *scale,
                      Py_ssize_t n, double keep, floating kept) noexcept nogil:
    """_dropout's draws and arithmetic, the generator inline: each block of MT19937's state
    tempered in one loop, then consumed two words an element (a pair split across two blocks
    drawn one word at a time). The same u, masks and state as _dropout."""
    cdef uint32_t buf[624]
    cdef Py_ssize_t i = 0, j, pairs
    cdef uint64_t hi, lo
    cdef double u
    cdef int pos
    # u = m * 2^-53 < keep  <=>  m < keep * 2^53 (exact: a power-of-two scaling)  <=>  m < T,
    # T = ceil(keep * 2^53), for the integers m < 2^53: one integer comparison an element
    cdef double limit = keep * 9007199254740992.0
    cdef uint64_t threshold = <uint64_t>limit
    if <double>threshold < limit:
        threshold += 1
    while i < n:
        if s.pos >= 624:
            cg_mt_gen(s)
        pos = s.pos
        pairs = min((624 - pos) // 2, n - i)
        if pairs == 0:  # one word left in the block
            hi = cg_mt_next(s)
            lo = cg_mt_next(s)
            u = <double>(((hi << 32) | lo) & ((<uint64_t>1 << 53) - 1)) * (1.0 / 9007199254740992.0)
            scale[i] = kept if u < keep else 0
            y[i] = x[i] * scale[i]
            i += 1
            continue
        for j in range(2 * pairs):
            buf[j] = cg_mt_temper(s.key[pos + j])
        for j in range(pairs):
            hi, lo = buf[2 * j], buf[2 * j + 1]
            scale[i + j] = kept if (((hi & 0x1fffff) << 32) | lo) < threshold else 0
            y[i + j] = x[i + j] * scale[i + j]
        s.pos = pos + <int>(2 * pairs)
        i += pairs


_mt_state = [None]  # whether numpy's MT19937 state is cg_mt_state (checked once)


def _mt_checked():
    """numpy's MT19937 state laid out as cg_mt_state, and cg_mt_next drawing as numpy's
    next_uint32: a scratch generator's memory against its Python-visible state, then 2000
    draws each way from two equal generators (crossing several blocks)."""
    if _mt_state[0] is not None:
        return _mt_state[0]
    cdef cg_bitgen *a
    cdef cg_bitgen *b
    cdef cg_mt_state *s
    cdef int i
    ok = True
    gens = [np.random.MT19937(20261202), np.random.MT19937(20261202)]
    a = <cg_bitgen *>PyCapsule_GetPointer(gens[0].capsule, "BitGenerator")
    b = <cg_bitgen *>PyCapsule_GetPointer(gens[1].capsule, "BitGenerator")
    for i in range(700):
        a.next_uint32(a.state)
        b.next_uint32(b.state)
    state = gens[0].state["state"]
    s = <cg_mt_state *>a.state
    ok = s.pos == state["pos"] and all(s.key[i] == state["key"][i] for i in range(624))
    if ok:
        for i in range(2000):
            if cg_mt_next(<cg_mt_state *>b.state) != a.next_uint32(a.state):
                ok = False
                break
    _mt_state[0] = ok
    return ok


def dropout(bit_generator, x, double keep, double kept):
    """(y, scale), both new, of x's shape and dtype: scale[i] = kept where a draw u < keep
    (u as torch's bernoulli_(keep) draws it, from `bit_generator`, numpy's MT19937 holding
    torch's stream), else 0; y = x * scale. One pass in x's (C) memory order; the draws are
    sequential, so one thread; the bit generator's own lock is held while drawing, as numpy's
    random_raw holds it. kept: 1 / (1 - p) rounded in x's dtype (exact as a double)."""
    cdef Py_buffer v[3]
    cdef int count = 0
    cdef Py_ssize_t n = 0
    cdef bint inline
    cdef cg_bitgen *bits = <cg_bitgen *>PyCapsule_GetPointer(bit_generator.capsule,
                                                              "BitGenerator")
    try:
        acquire(v, &count, x, False)
        y = _new(&v[0])
        acquire(v, &count, y, True)
        scale = _new(&v[0])
        acquire(v, &count, scale, True)
        n = elements(&v[0])
        inline = type(bit_generator) is _MT19937 and bool(_mt_checked())
        with bit_generator.lock:
            with nogil:
                if inline and kind_of(&v[0]) == F32:
                    _dropout_mt(<cg_mt_state *>bits.state, <const float *>v[0].buf,
                                <float *>v[1].buf, <float *>v[2].buf, n, keep, <float>kept)
                elif inline:
                    _dropout_mt(<cg_mt_state *>bits.state, <const double *>v[0].buf,
                                <double *>v[1].buf, <double *>v[2].buf, n, keep, kept)
                elif kind_of(&v[0]) == F32:
                    _dropout(bits, <const float *>v[0].buf, <float *>v[1].buf,
                             <float *>v[2].buf, n, keep, <float>kept)
                else:
                    _dropout(bits, <const double *>v[0].buf, <double *>v[1].buf,
                             <double *>v[2].buf, n, keep, kept)
    finally:
        release(v, count)
    return y, scale
