"""Shared checks of the exactness contract: duplicated inputs give bitwise-equal outputs,
and results do not depend on the thread count or the batch size."""

import numpy as np

import cygrad

SIZES = [1, 7, 33, 100, 257, 1000]


def duplicated_columns(rows, width, dtype, seed=0):
    """An array whose `width` columns are all the same random column."""
    column = np.random.default_rng(seed).standard_normal((rows, 1)).astype(dtype)
    return np.repeat(column, width, axis=1)


def duplicated_rows(height, cols, dtype, seed=0):
    row = np.random.default_rng(seed).standard_normal((1, cols)).astype(dtype)
    return np.repeat(row, height, axis=0)


def assert_columns_identical(out):
    assert np.array_equal(out, np.repeat(out[:, :1], out.shape[1], axis=1)), (
        "columns computed from identical inputs differ")


def assert_rows_identical(out):
    assert np.array_equal(out, np.repeat(out[:1], out.shape[0], axis=0)), (
        "rows computed from identical inputs differ")


def on_threads(fn, threads):
    """fn() run with the Cython backend and `threads` threads."""
    with cygrad.backend.using("cython"):
        previous = cygrad.get_num_threads()
        cygrad.set_num_threads(threads)
        try:
            return fn()
        finally:
            cygrad.set_num_threads(previous)


# The numpy twins of the elementwise kernels: the op table's entries (cygrad/ops/elementwise.py)

def _entry(name):
    from cygrad.ops import registry

    return registry.ENTRIES[name]


def _params(entry, slope):
    return {entry.kernel_param: slope} if entry.kernel_param else {}


def twin_forward(name, x, slope=0.0):
    """y = act(x) by the op table's numpy twin of kernel `name`."""
    entry = _entry(name)
    return entry.forward(x, **_params(entry, slope))


def twin_backward(name, g, x, y, slope=0.0):
    """dx by the op table's numpy twin of kernel `name`."""
    entry = _entry(name)
    return entry.grad(g, x, y, **_params(entry, slope))


def saved_for(name, x, y):
    """What the kernel's backward reads: x or y, as the op table's entry says."""
    return x if _entry(name).saves == "x" else y


def twin_bias_activation(name, z, b, slope=0.0):
    """Z := Z + b in place (bias_add's bits); returns the twin's act(Z)."""
    np.add(z, b, out=z)
    return twin_forward(name, z, slope)


def twin_backward_bias(name, g, x, y, slope=0.0):
    """(dz, db): the twin's backward and the twin's column sum of it."""
    from cygrad.backend import numpy_backend

    dz = np.ascontiguousarray(twin_backward(name, g, x, y, slope))
    return dz, numpy_backend.column_sum(dz, 1)
