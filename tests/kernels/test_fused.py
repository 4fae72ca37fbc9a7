"""The fused kernels of a dense layer and a convolution against the unfused ones (bitwise),
their numpy twins, and the exactness contract:

    bias_activation           Z := Z + b in place, Y = act(Z)    == bias_add, activation_forward
    activation_backward_bias  (dz, db)                           == activation_backward, column_sum
    channel_sum               conv bias gradient                 == column_sum of (N*P, C) rows
    im2col_t / col2im_t       patches as columns                 == im2col(x).T, col2im(cols.T)
"""

import numpy as np
import pytest
import twins
from exactness import SIZES, assert_columns_identical, on_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B
from cygrad.backend import numpy_backend

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")
ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu"]
TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}
dtypes = st.sampled_from([np.float32, np.float64])


def data(shape, dtype, seed):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


def saved_for(name, x, y):
    return x if name == "leaky_relu" else y


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), m=st.integers(0, 300), name=st.sampled_from(ACTIVATIONS),
       dt=dtypes, threads=st.sampled_from([1, 2]))
def test_bias_activation_is_bias_add_then_activation(n, m, name, dt, threads):
    z, b = data((n, m), dt, n * 7 + m), data(m, dt, m)
    z0 = z.copy()
    y = on_threads(lambda: B.bias_activation(name, z, b, 0.1), threads)
    with B.using("cython"):
        assert np.array_equal(z, B.bias_add(z0, b))  # z updated in place, bias_add's bits
        assert np.array_equal(y, B.activation_forward(name, z, 0.1))
    assert y.dtype == dt and y.shape == (n, m)
    z_ref = z0.copy()
    y_ref = twins.bias_activation(name, z_ref, b, 0.1)
    assert np.array_equal(z_ref, z)
    np.testing.assert_allclose(y, y_ref, rtol=TOL[np.dtype(dt)] * 4, atol=TOL[np.dtype(dt)])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), m=st.integers(0, 600), name=st.sampled_from(ACTIVATIONS),
       dt=dtypes, threads=st.sampled_from([1, 2]))
def test_activation_backward_bias_is_backward_then_column_sum(n, m, name, dt, threads):
    x, g = data((n, m), dt, n + m), data((n, m), dt, 3 * n + m)
    with B.using("cython"):
        y = B.activation_forward(name, x, 0.1)
    saved = saved_for(name, x, y)
    dz, db = on_threads(lambda: B.activation_backward_bias(name, g, saved, 0.1), threads)
    with B.using("cython"):
        assert np.array_equal(dz, B.activation_backward(name, g, twins.saved_for(name, x, y), 0.1))
        assert np.array_equal(db, B.column_sum(dz))
    dz_ref, db_ref = twins.activation_backward_bias(name, g, saved, 0.1)
    tol = TOL[np.dtype(dt)]
    np.testing.assert_allclose(dz, dz_ref, rtol=tol * 4, atol=tol)
    np.testing.assert_allclose(db, db_ref, rtol=1e-5 if dt == np.float32 else 1e-12,
                               atol=1e-4 if dt == np.float32 else 1e-10)


@pytest.mark.parametrize("width", SIZES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_identical_units_stay_identical_through_the_fused_kernels(width, name, dtype):
    # a batch of 33 whose `width` units carry the same pre-activations and gradients
    z = np.repeat(data((33, 1), dtype, width), width, axis=1)
    g = np.repeat(data((33, 1), dtype, 1), width, axis=1)
    b = np.full(width, 0.25, dtype)
    for threads in (1, 2):
        zz = z.copy()
        y = on_threads(lambda zz=zz: B.bias_activation(name, zz, b, 0.1), threads)
        dz, db = on_threads(
            lambda y=y, zz=zz: B.activation_backward_bias(name, g, saved_for(name, zz, y), 0.1),
            threads)
        for out in (zz, y, dz, db[None, :]):
            assert_columns_identical(out)


def test_fused_kernels_do_not_depend_on_threads_or_batch(dtype):
    z, b, g = data((300, 700), dtype, 0), data(700, dtype, 1), data((300, 700), dtype, 2)
    outs = []
    for threads in (1, 2):
        zz = z.copy()
        y = on_threads(lambda zz=zz: B.bias_activation("tanh", zz, b), threads)
        outs.append((zz, y) + on_threads(lambda y=y: B.activation_backward_bias("tanh", g, y),
                                         threads))
    for a, c in zip(*outs):
        assert np.array_equal(a, c)
    zz = z[17:18].copy()  # one sample alone
    alone = on_threads(lambda: B.bias_activation("tanh", zz, b), 2)
    assert np.array_equal(alone, outs[0][1][17:18])


def test_fused_seam_checks_its_input():
    z, b = np.ones((2, 3), np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="do not match"):
        B.bias_activation("tanh", z, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="mixed dtypes"):
        B.bias_activation("tanh", z, b.astype(np.float64))
    with pytest.raises(ValueError, match="unknown elementwise kernel 'erfc'"):
        B.activation_backward_bias("erfc", z, z)
    with B.using("cython"), pytest.raises((ValueError, BufferError)):
        B.bias_activation("tanh", z.T.copy().T, np.ones(2, np.float32))  # strided z
    z.flags.writeable = False
    with B.using("cython"), pytest.raises((ValueError, BufferError)):
        B.bias_activation("tanh", z, b)  # z is written in place


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 6), c=st.integers(1, 70), p=st.integers(0, 50), dt=dtypes,
       threads=st.sampled_from([1, 2]))
def test_channel_sum_is_the_column_sum_of_the_rows(n, c, p, dt, threads):
    g = data((n, c, p), dt, n + c + p)
    s = on_threads(lambda: B.channel_sum(g), threads)
    rows = np.ascontiguousarray(g.transpose(0, 2, 1)).reshape(-1, c)
    with B.using("cython"):
        assert np.array_equal(s, B.column_sum(rows))
    np.testing.assert_allclose(s, numpy_backend.channel_sum(g, 1),  # numpy may sum pairwise
                               rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-5)
    assert s.dtype == dt and s.shape == (c,)


@pytest.mark.parametrize("width", SIZES)
def test_identical_channels_get_identical_bias_gradients(width, dtype):
    g = np.repeat(data((4, 1, 37), dtype, width), width, axis=1)
    for threads in (1, 2):
        assert_columns_identical(on_threads(lambda: B.channel_sum(g), threads)[None, :])


GEOMETRIES = [(3, 3, 1, 0), (3, 3, 1, 1), (2, 2, 2, 0), (3, 2, 2, 1), (1, 1, 1, 0), (5, 5, 3, 2),
              (4, 4, 1, 3)]


@pytest.mark.parametrize("kh, kw, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("threads", [1, 2])
def test_im2col_t_and_col2im_t_are_the_transposed_kernels(kh, kw, stride, padding, threads,
                                                          dtype):
    x = data((3, 2, 9, 8), dtype, kh * 10 + padding)
    cols_t = on_threads(lambda: B.im2col_t(x, kh, kw, stride, padding), threads)
    with B.using("cython"):
        cols = B.im2col(x, kh, kw, stride, padding)
        assert cols_t.flags.c_contiguous and np.array_equal(cols_t, cols.T)
        d = data(cols_t.shape, dtype, 99)
        back = on_threads(lambda: B.col2im_t(d, x.shape, kh, kw, stride, padding), threads)
        assert np.array_equal(back, B.col2im(np.ascontiguousarray(d.T), x.shape, kh, kw,
                                             stride, padding))
    geometry = (stride, stride, padding, padding, 1, 1) + cols_shape(x, kh, kw, stride, padding)
    assert np.array_equal(cols_t, numpy_backend.im2col_t(x, kh, kw, *geometry, 1))
    ref = numpy_backend.col2im_t(d, x.shape, kh, kw, *geometry, 1)
    assert np.array_equal(back, ref)  # one add per (i, j) in the same order: bitwise


def cols_shape(x, kh, kw, stride, padding):
    h, w = x.shape[2:]
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


def test_im2col_t_checks_geometry():
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="larger than"):
        B.im2col_t(x, 5, 5)
    with pytest.raises(ValueError, match="do not fit"):
        B.col2im_t(np.ones((9, 3), np.float32), x.shape, 3, 3)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 5), o=st.integers(1, 9), p=st.integers(0, 40), dt=dtypes,
       bias=st.booleans(), threads=st.sampled_from([1, 2]))
def test_planes_to_images_moves_planes_and_adds_the_bias(n, o, p, dt, bias, threads):
    planes = data((o, n * p), dt, n + o + p)
    b = data(o, dt, 7) if bias else None
    out = on_threads(lambda: B.planes_to_images(planes, b, n, p), threads)
    assert out.shape == (n, o, p) and out.dtype == dt and out.flags.c_contiguous
    images = planes.reshape(o, n, p).transpose(1, 0, 2)
    assert np.array_equal(out, images + b[:, None] if bias else images)  # one exact add
    assert np.array_equal(out, numpy_backend.planes_to_images(planes, b, n, p, 1))


def test_planes_to_images_checks_its_input():
    with pytest.raises(ValueError, match="do not split"):
        B.planes_to_images(np.ones((2, 7), np.float32), None, 2, 3)
    with pytest.raises(ValueError, match="bias"):
        B.planes_to_images(np.ones((2, 8), np.float32), np.ones(3, np.float32), 2, 4)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_strided_inputs_give_the_bits_of_contiguous_ones(name, dt):
    """A strided input is copied to C order inside the kernel call (the kernels refuse strided
    buffers with BufferError; numpy's own refusal would be a ValueError)."""
    wide = data((9, 22), dt, 3)
    strided, dense = wide[:, ::2], np.ascontiguousarray(wide[:, ::2])
    b_wide = data(22, dt, 4)
    b_strided, b_dense = b_wide[::2], np.ascontiguousarray(b_wide[::2])
    with B.using("cython"):
        pairs = [
            (B.bias_add(strided, b_strided), B.bias_add(dense, b_dense)),
            (B.column_sum(strided), B.column_sum(dense)),
            (B.activation_forward(name, strided, 0.1), B.activation_forward(name, dense, 0.1)),
            (B.activation_backward(name, strided, twins.saved_for(name, strided, strided), 0.1),
             B.activation_backward(name, dense, twins.saved_for(name, dense, dense), 0.1)),
            (B.bias_activation(name, dense.copy(), b_strided, 0.1),
             B.bias_activation(name, dense.copy(), b_dense, 0.1)),
            *zip(B.activation_backward_bias(name, strided, strided, 0.1),
                 B.activation_backward_bias(name, dense, dense, 0.1)),
        ]
    for got, want in pairs:
        assert np.array_equal(got, want)
