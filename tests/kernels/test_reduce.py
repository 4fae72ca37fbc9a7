"""The column sum (bias gradient) and sum-to-shape, against numpy and bitwise exact."""

import numpy as np
import pytest
from exactness import SIZES, assert_columns_identical, duplicated_columns, on_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), m=st.integers(0, 600), dt=st.sampled_from([np.float32, np.float64]),
       order=st.sampled_from(["C", "F", "strided"]))
def test_column_sum_matches_numpy(n, m, dt, order):
    g = np.random.default_rng(n + 7 * m).standard_normal((n, 2 * m if order == "strided" else m))
    g = g[:, ::2] if order == "strided" else np.asarray(g, order=order)
    g = g.astype(dt)
    with B.using("cython"):
        s = B.column_sum(g)
    assert s.dtype == dt and s.shape == (m,)
    np.testing.assert_allclose(s, g.astype(np.float64).sum(axis=0),
                               rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-5)


def test_column_sum_adds_rows_in_order(dtype):
    # The contract fixes the order: s[j] = ((0 + g0) + g1) + g2 ...
    g = np.array([[1e8, 1.0], [1.0, 1e8], [-1e8, -1e8]], dtype=dtype)
    with B.using("cython"):
        s = B.column_sum(np.repeat(g, 3, axis=1))
    expected = [(dtype.type(0) + g[0, j] + g[1, j]) + g[2, j] for j in range(2)]
    assert np.array_equal(s, np.repeat(expected, 3))


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize("threads", [1, 2])
def test_bias_gradient_is_position_uniform(width, threads, dtype):
    # This is what PyTorch's CPU column sum does not do: equal columns must sum to equal bits.
    g = duplicated_columns(64, width, dtype, seed=width)
    s = on_threads(lambda: B.column_sum(g), threads)
    assert_columns_identical(s[None, :])


def test_column_sum_thread_invariant(dtype):
    g = np.random.default_rng(0).standard_normal((333, 1000)).astype(dtype)
    assert np.array_equal(on_threads(lambda: B.column_sum(g), 1),
                          on_threads(lambda: B.column_sum(g), 2))


SHAPE_PAIRS = [((4, 5), (5,)), ((4, 5), (4, 1)), ((2, 3, 4), (3, 1)), ((2, 3, 4), ()),
               ((2, 3, 4), (1, 1, 4)), ((0, 3), (3,)), ((3, 0), (1, 0)), ((5,), (1,))]


@pytest.mark.parametrize("big, small", SHAPE_PAIRS)
def test_sum_to_shape_matches_numpy(big, small, dtype, backend):
    g = np.random.default_rng(1).standard_normal(big).astype(dtype)
    out = B.sum_to_shape(g, small)
    lead = len(big) - len(small)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(small) if s == 1)
    expected = g.astype(np.float64).sum(axis=axes).reshape(small)
    assert out.shape == small and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_sum_to_shape_rejects_incompatible_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5,\)"):
        B.sum_to_shape(np.ones((3, 4)), (5,))
