"""csrc/norms.pyx: layer normalisation over rows, against its numpy twin bit for bit, at any
row count, width and thread count, and exact for tied columns."""

import numpy as np
import pytest

from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


def _case(r, n, dtype, seed=0):
    rng = np.random.default_rng(seed + r * 1000 + n)
    x = (rng.standard_normal((r, n)) * 3 + 1).astype(dtype)
    w, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal((r, n)).astype(dtype)
    return x, w, b, g


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("r, n", [(1, 1), (5, 7), (17, 32), (33, 33), (40, 100), (3, 700)])
def test_layer_norm_is_its_twins_bit_for_bit(r, n, affine, threads, dtype, monkeypatch):
    from cygrad._C import norms

    monkeypatch.setattr(norms, "serial_below", 1)  # threads even for small arrays
    x, w, b, g = _case(r, n, dtype)
    w, b = (w if affine[0] else None), (b if affine[1] else None)
    results = []
    for name in ("cython", "numpy"):
        with B.using(name):
            B.set_num_threads(threads)
            y, xhat, rstd = B.layer_norm(x, w, b, 1e-5)
            grads = B.layer_norm_backward(g, xhat, rstd, w, True, w is not None, b is not None)
        results.append([a.tobytes() for a in (y, xhat, rstd) + grads if a is not None])
    assert results[0] == results[1]
    y = np.frombuffer(results[0][0], dtype).reshape(r, n)
    np.testing.assert_allclose(  # and it is a layer norm
        y,
        ((x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
         * (1 if w is None else w) + (0 if b is None else b)),
        rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4 if dtype == np.float32 else 1e-10)


def test_tied_columns_stay_tied_through_layer_norm(dtype):
    x, w, b, g = _case(50, 40, dtype, seed=3)
    x[:, 7], w[7], b[7], g[:, 7] = x[:, 2], w[2], b[2], g[:, 2]
    y, xhat, rstd = B.layer_norm(x, w, b, 1e-5)
    dx, dw, db = B.layer_norm_backward(g, xhat, rstd, w)
    for a in (y, dx):
        assert np.array_equal(a[:, 7], a[:, 2])
    assert dw[7] == dw[2] and db[7] == db[2]


def test_layer_norm_refuses_bad_arguments():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="w \\(5,\\)"):
        B.layer_norm(x, np.ones(5, np.float32), None, 1e-5)
    with pytest.raises(TypeError, match="mixed"):
        B.layer_norm(x, np.ones(4), None, 1e-5)
    with pytest.raises(ValueError, match="rstd"):
        B.layer_norm_backward(x, x, np.ones(4, np.float32), None)
    from cygrad._C import norms

    with pytest.raises(ValueError, match="4 elements"):
        norms.layer_norm(x, np.ones(3, np.float32), None, 1e-5, 1)
    with pytest.raises(ValueError, match="no element"):
        norms.layer_norm(np.ones((3, 0), np.float32), None, None, 1e-5, 1)
