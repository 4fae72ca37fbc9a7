"""The optimiser kernel (csrc/optim.pyx, backend.sgd_update): numpy's `p -= lr * g`, bitwise,
for every layout; strided pairs fall back to numpy; bad pairs are refused before any write."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


def numpy_update(params, grads, lr):
    for p, g in zip(params, grads, strict=True):
        p -= p.dtype.type(lr) * g


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 40)), min_size=0, max_size=5),
       dtype=st.sampled_from([np.float32, np.float64]),
       lr=st.floats(1e-4, 3.0), strided=st.booleans(), seed=st.integers(0, 2**16))
def test_sgd_update_is_numpys_update_bitwise(shapes, dtype, lr, strided, seed):
    rng = np.random.default_rng(seed)
    params, grads = [], []
    for rows, cols in shapes:
        p = rng.standard_normal((rows, 2 * cols)).astype(dtype)
        g = rng.standard_normal((rows, 2 * cols)).astype(dtype)
        params.append(p[:, ::2] if strided else p[:, :cols].copy())
        grads.append(g[:, ::2] if strided else g[:, :cols].copy())
    expected = [p.copy() for p in params]
    numpy_update(expected, grads, lr)
    with B.using("cython"):
        B.sgd_update(params, grads, lr)
    for got, want in zip(params, expected, strict=True):
        assert np.array_equal(got, want)


def test_both_backends_agree_on_an_fma_sensitive_update():
    # values where one rounding (a fused multiply-add) and numpy's two roundings differ
    rng = np.random.default_rng(1)
    p = rng.standard_normal(4096).astype(np.float32)
    g = rng.standard_normal(4096).astype(np.float32)
    fused = (p.astype(np.float64) - np.float64(np.float32(0.1)) * g).astype(np.float32)
    mine = p.copy()
    with B.using("cython"):
        B.sgd_update([mine], [g], 0.1)
    twin = p.copy()
    with B.using("numpy"):
        B.sgd_update([twin], [g], 0.1)
    assert np.array_equal(mine, twin)
    assert not np.array_equal(mine, fused)  # the case the -ffp-contract=off build is about


def test_bad_pairs_are_refused_before_anything_is_written():
    p = np.ones(3, np.float32)
    with B.using("cython"):
        with pytest.raises(TypeError, match="one dtype"):
            B.sgd_update([p], [np.ones(3)], 0.1)
        with pytest.raises(ValueError, match="elements"):
            B.sgd_update([p], [np.ones(4, np.float32)], 0.1)
        with pytest.raises(ValueError, match="2 parameters but 1 gradients"):
            B.sgd_update([p, p], [p], 0.1)
        frozen = np.ones(3, np.float32)
        frozen.setflags(write=False)
        with pytest.raises(ValueError, match="read-only"):
            B.sgd_update([frozen], [np.ones(3, np.float32)], 0.1)
    assert p.tolist() == [1.0, 1.0, 1.0]
