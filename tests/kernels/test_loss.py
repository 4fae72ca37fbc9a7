"""Fused log-softmax + NLL kernel against its numpy twin, and bitwise exact per row."""

import numpy as np
import pytest
from exactness import on_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B
from cygrad.backend import numpy_backend

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


@pytest.fixture(autouse=True)
def _small_arrays_on_two_threads(parallel_small):
    """Two threads really split these tests' small arrays (conftest's parallel_small)."""


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 30), c=st.integers(1, 40), dt=st.sampled_from([np.float32, np.float64]),
       scale=st.sampled_from([0.1, 1.0, 30.0]), transposed=st.booleans())
def test_matches_numpy_twin(n, c, dt, scale, transposed):
    rng = np.random.default_rng(n * 41 + c)
    logits = (rng.standard_normal((c, n) if transposed else (n, c)) * scale).astype(dt)
    logits = logits.T if transposed else logits
    targets = rng.integers(0, c, n)
    g = rng.uniform(0.1, 1, n).astype(dt)
    with B.using("cython"):
        losses, logp = B.log_softmax_nll(logits, targets)
        dx = B.log_softmax_nll_backward(logp, targets, g)
    ref_losses, ref_logp = numpy_backend.log_softmax_nll(logits, targets, 1)
    tol = 1e-5 if dt == np.float32 else 1e-12
    assert losses.dtype == dt and dx.dtype == dt
    np.testing.assert_allclose(logp, ref_logp, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(losses, ref_losses, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(dx, numpy_backend.log_softmax_nll_backward(ref_logp, targets, g, 1),
                               rtol=tol, atol=tol)


def test_rows_are_batch_and_thread_invariant(dtype):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((257, 10)).astype(dtype)
    targets = rng.integers(0, 10, 257)
    one = on_threads(lambda: B.log_softmax_nll(logits, targets), 1)
    two = on_threads(lambda: B.log_softmax_nll(logits, targets), 2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    alone = on_threads(lambda: B.log_softmax_nll(logits[100:101], targets[100:101]), 1)
    assert np.array_equal(alone[1], one[1][100:101])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n, c", [(300, 1), (260, 10), (40, 63), (3, 64), (5, 65), (2, 700),
                                  (2, 1500)])
def test_each_row_has_its_bits_alone_whatever_group_it_is_computed_in(n, c, threads, dtype):
    """Short rows go through exp a group at a time (up to 1024 exponentials side by side):
    each row, forward and backward, is still bitwise the row computed alone."""
    rng = np.random.default_rng(n + c)
    logits = (rng.standard_normal((n, c)) * 4).astype(dtype)
    targets = rng.integers(0, c, n)
    g = rng.uniform(0.1, 1, n).astype(dtype)

    def run(rows):
        losses, logp = B.log_softmax_nll(logits[rows], targets[rows])
        return losses, logp, B.log_softmax_nll_backward(logp, targets[rows], g[rows])
    whole = on_threads(lambda: run(slice(None)), threads)
    for i in sorted({0, 1, n // 3, n - 1}):
        alone = on_threads(lambda i=i: run(slice(i, i + 1)), 1)
        for got, one in zip(whole, alone):
            assert got[i:i + 1].tobytes() == one.tobytes(), (i, c)


def test_identical_logit_columns_get_identical_gradients(dtype):
    # Two output units with the same logits and neither the target: bitwise equal gradients.
    logits = np.random.default_rng(0).standard_normal((33, 1)).astype(dtype)
    logits = np.concatenate([logits, logits, np.zeros((33, 1), dtype)], axis=1)
    targets = np.full(33, 2)
    with B.using("cython"):
        _, logp = B.log_softmax_nll(logits, targets)
        dx = B.log_softmax_nll_backward(logp, targets, np.ones(33, dtype))
    assert np.array_equal(dx[:, 0], dx[:, 1])


@pytest.mark.parametrize("name", B.available())
def test_bad_targets_are_named(name):
    with B.using(name), pytest.raises(ValueError, match=r"class index 5 \(at position 1\) "
                                                        "out of range for 3 classes"):
        B.log_softmax_nll(np.zeros((2, 3)), [0, 5])
    with B.using(name), pytest.raises(ValueError, match=r"class index -1 \(at position 0\)"):
        B.log_softmax_nll_backward(np.zeros((2, 3)), [-1, 0], np.ones(2))
    with pytest.raises(ValueError, match="targets of shape"):
        B.log_softmax_nll(np.zeros((2, 3)), [0, 1, 2])
    with pytest.raises(TypeError, match="integers"):
        B.log_softmax_nll(np.zeros((2, 3)), np.array([0.0, 1.0]))


@pytest.mark.parametrize("reduction", [1, 2])
@pytest.mark.parametrize("shape", [(1,), (32, 1), (33, 7), (3, 4, 5), (70000,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mse_kernel_is_its_twins_bit_for_bit(shape, reduction, dtype):
    """One pass: diff = x - t and the tree sum of its squares (the mean divided in double and
    rounded once), as the numpy twin computes them."""
    from cygrad.backend import cython_backend, numpy_backend

    rng = np.random.default_rng(len(shape) + reduction)
    x, t = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    (d1, v1), (d2, v2) = (impl.mse(x, t, reduction) for impl in (cython_backend, numpy_backend))
    assert d1.shape == shape and v1.shape == () and v1.dtype == dtype
    assert d1.tobytes() == d2.tobytes() and v1.tobytes() == v2.tobytes()
    expected = ((x.astype(np.float64) - t) ** 2).sum() / (x.size if reduction == 1 else 1)
    np.testing.assert_allclose(float(v1), expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_mse_kernel_refuses_bad_arguments():
    from cygrad._C import loss

    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="reduction"):
        loss.mse(x, x, 0)
    with pytest.raises(ValueError, match="same number"):
        loss.mse(x, np.ones(4, np.float32), 1)
    with pytest.raises(ValueError, match="same number"):
        loss.mse(np.ones(0, np.float32), np.ones(0, np.float32), 1)
    with pytest.raises(TypeError, match="mixed"):
        loss.mse(x, np.ones(3), 1)
