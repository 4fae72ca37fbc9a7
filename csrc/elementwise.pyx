"""Elementwise kernels: activations forward and backward, bias add.

Every element is computed on its own, so outputs never depend on position or thread count;
prange splits the flat index range into independent chunks.
"""

from cython.parallel cimport prange
from libc.math cimport exp, expf, tanh, tanhf

ctypedef fused floating:
    float
    double

# Activation codes, shared with cygrad/backend/cython_backend.py.
DEF TANH = 0
DEF SIGMOID = 1
DEF RELU = 2
DEF LEAKY_RELU = 3


cdef inline floating _sigmoid(floating x) noexcept nogil:
    if floating is float:
        return 1.0 / (1.0 + expf(-x))
    else:
        return 1.0 / (1.0 + exp(-x))


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


def activation_forward(int kind, const floating[::1] x, floating[::1] y, double slope,
                       int num_threads):
    """y := act(x): tanh; sigmoid 1/(1+exp(-x)); relu max(x, 0); leaky_relu x>0 ? x : slope*x."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s = <floating>slope
    with nogil:
        if kind == TANH:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                y[i] = _tanh(x[i])
        elif kind == SIGMOID:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                y[i] = _sigmoid(x[i])
        elif kind == RELU:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                y[i] = x[i] if x[i] > 0 else 0
        else:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                y[i] = x[i] if x[i] > 0 else s * x[i]


def activation_backward(int kind, const floating[::1] g, const floating[::1] saved,
                        floating[::1] dx, double slope, int num_threads):
    """dx from the output gradient g; `saved` is y for tanh/sigmoid and x for relu/leaky_relu.

    tanh: dx = g * (1 - y*y); sigmoid: dx = g * (y * (1 - y));
    relu: dx = g if x > 0 else 0; leaky_relu: dx = g if x > 0 else slope * g.
    """
    cdef Py_ssize_t i, n = g.shape[0]
    cdef floating s = <floating>slope
    with nogil:
        if kind == TANH:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                dx[i] = g[i] * (1 - saved[i] * saved[i])
        elif kind == SIGMOID:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                dx[i] = g[i] * (saved[i] * (1 - saved[i]))
        elif kind == RELU:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                dx[i] = g[i] if saved[i] > 0 else 0
        else:
            for i in prange(n, num_threads=num_threads, schedule="static"):
                dx[i] = g[i] if saved[i] > 0 else s * g[i]


def bias_add(const floating[:, ::1] x, const floating[::1] b, floating[:, ::1] y,
             int num_threads):
    """Y := X + b (b broadcast over rows)."""
    cdef Py_ssize_t i, j, n = x.shape[0], m = x.shape[1]
    with nogil:
        for i in prange(n, num_threads=num_threads, schedule="static"):
            for j in range(m):
                y[i, j] = x[i, j] + b[j]
