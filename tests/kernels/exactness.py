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
