"""Every kernel's parallel path gives the bits of its serial path.

The backend wakes a second thread only for work of about 100 µs (cython_backend._CHEAP and
_COSTLY, the elementwise and reduce kernels' serial thresholds, the gemm kernel's serial_macs),
larger than most arrays in the other tests;
here those thresholds are set to one element so that moderate arrays run on two threads, with
uneven splits and ragged ends.
"""

import numpy as np
import pytest
import twins

from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")
ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu"]


@pytest.fixture(autouse=True)
def parallel_everything(monkeypatch, parallel_small):
    from cygrad._C import elementwise, gemm, reduce
    from cygrad.backend import cython_backend

    for name in ("_CHEAP", "_COSTLY"):
        monkeypatch.setattr(cython_backend, name, 1)
    for name in ("cheap_serial_below", "costly_serial_below"):
        monkeypatch.setattr(elementwise, name, 1)
    monkeypatch.setattr(reduce, "serial_below", 1)
    monkeypatch.setattr(gemm, "serial_macs", 0)
    with B.using("cython"):
        yield


def both(fn):
    """fn() on 1 and on 2 threads."""
    out = []
    for threads in (1, 2):
        B.set_num_threads(threads)
        out.append(fn())
    return out


def assert_same(pair):
    one, two = pair
    if isinstance(one, tuple):
        for a, b in zip(one, two):
            assert np.array_equal(a, b)
    else:
        assert np.array_equal(one, two)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (67, 129), (130, 300), (5, 1000)])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_elementwise(shape, name, dtype):
    rng = np.random.default_rng(sum(shape))
    x, g = (rng.standard_normal(shape) * 3).astype(dtype), rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    y = both(lambda: B.activation_forward(name, x, 0.1))
    assert_same(y)
    assert_same(both(lambda: B.activation_backward(name, g, twins.saved_for(name, x, y[0]), 0.1)))
    assert_same(both(lambda: B.bias_add(x, b)))
    assert_same(both(lambda: (lambda z: (z, B.bias_activation(name, z, b, 0.1)))(x.copy())))
    saved = x if name == "leaky_relu" else y[0]
    assert_same(both(lambda: B.activation_backward_bias(name, g, saved, 0.1)))


@pytest.mark.parametrize("shape", [(2, 3), (40, 257), (7, 1000)])
def test_reductions_and_loss(shape, dtype):
    rng = np.random.default_rng(shape[1])
    g = rng.standard_normal(shape).astype(dtype)
    assert_same(both(lambda: B.column_sum(g)))
    assert_same(both(lambda: B.channel_sum(g.reshape(shape[0], 1, -1).repeat(3, axis=1))))
    t = rng.integers(0, shape[1], shape[0])
    losses = both(lambda: B.log_softmax_nll(g, t))
    assert_same(losses)
    rows = rng.uniform(0.1, 1, shape[0]).astype(dtype)
    assert_same(both(lambda: B.log_softmax_nll_backward(losses[0][1], t, rows)))


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (9, 33, 17), (65, 130, 40)])
def test_gemm(m, n, k, dtype):
    rng = np.random.default_rng(m + n + k)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    assert_same(both(lambda: B.gemm(a, b)))
    assert_same(both(lambda: B.gemm(a.T.copy(), b.T.copy(), trans_a=True, trans_b=True)))


@pytest.mark.parametrize("geometry", [(3, 1, 0), (3, 2, 1), (2, 2, 0)])
def test_conv_kernels(geometry, dtype):
    k, stride, padding = geometry
    x = np.random.default_rng(k).standard_normal((3, 2, 11, 9)).astype(dtype)
    cols = both(lambda: B.im2col(x, k, k, stride, padding))
    assert_same(cols)
    assert_same(both(lambda: B.col2im(cols[0], x.shape, k, k, stride, padding)))
    cols_t = both(lambda: B.im2col_t(x, k, k, stride, padding))
    assert_same(cols_t)
    planes = cols_t[0][:4]
    assert_same(both(lambda: B.planes_to_images(planes[:, :planes.shape[1] // 3 * 3],
                                                np.ones(4, dtype), 3, planes.shape[1] // 3)))
    assert_same(both(lambda: B.col2im_t(cols_t[0], x.shape, k, k, stride, padding)))
