"""Elementwise kernels (activations, bias add) against their numpy twins, and bitwise exact."""

import numpy as np
import pytest
import twins
from exactness import SIZES, assert_columns_identical, assert_rows_identical, on_threads
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cygrad
from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")
ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu"]
TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}

float_arrays = st.sampled_from([np.float32, np.float64]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9),
                          elements=st.floats(-20, 20, width=32)))


@settings(max_examples=60, deadline=None)
@given(x=float_arrays, name=st.sampled_from(ACTIVATIONS), transposed=st.booleans())
def test_activations_match_numpy_twin(x, name, transposed):
    x = x.T if transposed else x  # non-contiguous input
    g = np.linspace(-1, 1, x.size, dtype=x.dtype).reshape(x.shape)
    with B.using("cython"):
        y = B.activation_forward(name, x, 0.1)
        dx = B.activation_backward(name, g, twins.saved_for(name, x, y), 0.1)
    y_ref = twins.activation_forward(name, x, 0.1)
    dx_ref = twins.activation_backward(name, g, twins.saved_for(name, x, y_ref), 0.1)
    assert y.dtype == x.dtype and dx.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, y_ref, rtol=TOL[x.dtype] * 4, atol=TOL[x.dtype])
    np.testing.assert_allclose(dx, dx_ref, rtol=TOL[x.dtype] * 4, atol=TOL[x.dtype])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 20), m=st.integers(0, 20), dt=st.sampled_from([np.float32, np.float64]))
def test_bias_add_matches_numpy(n, m, dt):
    rng = np.random.default_rng(n * 31 + m)
    x, b = rng.standard_normal((n, m)).astype(dt), rng.standard_normal(m).astype(dt)
    with B.using("cython"):
        assert np.array_equal(B.bias_add(x[:, ::-1], b), x[:, ::-1] + b)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_identical_units_identical_activations(size, name, dtype):
    # A batch of 5 whose `size` units all carry the same pre-activations: duplicate columns.
    x = np.repeat(np.random.default_rng(size).standard_normal((5, 1)).astype(dtype), size, 1)
    g = np.repeat(np.random.default_rng(1).standard_normal((5, 1)).astype(dtype), size, 1)
    for threads in (1, 2):
        y = on_threads(lambda: B.activation_forward(name, x, 0.1), threads)
        dx = on_threads(lambda y=y: B.activation_backward(name, g, twins.saved_for(name, x, y),
                                                          0.1), threads)
        assert_columns_identical(y)
        assert_columns_identical(dx)
    # the same rows again, now a batch: each row must not depend on where it sits
    x_rows = np.ascontiguousarray(x.T)
    assert_rows_identical(on_threads(lambda: B.activation_forward(name, x_rows, 0.1), 2))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_thread_count_does_not_change_bits(name, dtype):
    x = np.random.default_rng(3).standard_normal((257, 300)).astype(dtype)
    one = on_threads(lambda: B.activation_forward(name, x, 0.1), 1)
    two = on_threads(lambda: B.activation_forward(name, x, 0.1), 2)
    assert np.array_equal(one, two)
    g = np.ones_like(x)
    saved = twins.saved_for(name, x, one)
    assert np.array_equal(on_threads(lambda: B.activation_backward(name, g, saved, 0.1), 1),
                          on_threads(lambda: B.activation_backward(name, g, saved, 0.1), 2))


def test_batch_invariance_of_activations(dtype):
    x = np.random.default_rng(4).standard_normal((100, 37)).astype(dtype)
    with B.using("cython"):
        whole = B.activation_forward("tanh", x, 0.0)
        for i in (0, 50, 99):
            assert np.array_equal(B.activation_forward("tanh", x[i:i + 1], 0.0), whole[i:i + 1])


def test_float32_stays_float32():
    x = np.ones((3, 3), np.float32)
    with B.using("cython"):
        assert B.activation_forward("sigmoid", x).dtype == np.float32
        assert B.bias_add(x, np.ones(3, np.float32)).dtype == np.float32


def test_cython_backend_is_built():
    assert "cython" in cygrad.backend.available()


# ---------------------------------------------------------------- dropout's mask kernel

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (7, 13), (3, 64, 65)])
@pytest.mark.parametrize("keep", [0.0, 0.3, 0.8, 1.0])
def test_dropout_kernel_is_its_twins_bit_for_bit(dtype, shape, keep):
    """The one-pass dropout kernel draws the stream as the numpy twin does (two 32-bit draws an
    element, 53 bits), keeps where u < keep, and leaves the generator in the same state."""
    from cygrad.backend import cython_backend, numpy_backend

    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    kept = float(dtype(1) / dtype(keep)) if keep else 0.0
    results = []
    for impl in (cython_backend, numpy_backend):
        bits = np.random.MT19937(7)
        y, scale = impl.dropout(bits, x, keep, kept)
        results.append((y, scale, bits.random_raw(3)))
    (y1, s1, r1), (y2, s2, r2) = results
    assert y1.dtype == s1.dtype == dtype and y1.shape == s1.shape == shape
    assert np.array_equal(y1.view(np.uint8), y2.view(np.uint8))
    assert np.array_equal(s1.view(np.uint8), s2.view(np.uint8))
    assert np.array_equal(r1, r2)  # the same number of draws
    if x.size:
        assert np.all((s1 == 0) | (s1 == dtype(kept)))
        if keep == 1.0:
            assert np.all(s1 == dtype(kept))
        if keep == 0.0:
            assert not s1.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keep", [0.0, 2.0**-53, 0.3, 0.8, 1 - 2.0**-53, 1.0])
def test_dropout_inline_generator_is_numpys_at_every_block_edge(dtype, keep):
    """The kernel draws MT19937 inline (numpy's state, tempered a block at a time, an integer
    threshold for u < keep): the same masks and the same state after as through numpy's own
    next_uint32, from every start in a block and across blocks, three calls running on."""
    from cygrad._C import elementwise

    assert elementwise._mt_checked()  # numpy's layout, verified against numpy itself
    try:
        for n in (1, 311, 312, 313, 623, 624, 625, 2000):
            x = np.random.default_rng(n).standard_normal(n).astype(dtype)
            runs = []
            for inline in (True, False):
                elementwise._mt_state[0] = inline
                bits = np.random.MT19937(11)
                bits.random_raw(n % 7)  # a start at various positions of the block
                outs = [elementwise.dropout(bits, x, keep, 2.0) for _ in range(3)]
                runs.append(([y.tobytes() + s.tobytes() for y, s in outs],
                             bits.state["state"]["pos"], bits.random_raw(2).tolist()))
            assert runs[0] == runs[1], n
    finally:
        elementwise._mt_state[0] = None  # checked again at the next use


def test_dropout_kernel_refuses_strided_input():
    from cygrad import backend

    x = np.zeros((4, 6), np.float32).T
    with pytest.raises(ValueError, match="C-contiguous"):
        backend.dropout(np.random.MT19937(0), x, 0.5, 2.0)
