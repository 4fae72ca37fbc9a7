"""im2col / col2im kernels against their numpy twins, the adjoint identity, and bitwise exactness.

Most tests call `cygrad._C.conv` directly through two small helpers (so they run as soon as the
conv family is built); one group goes through the `cygrad.backend` seam.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B
from cygrad.backend import numpy_backend

conv = pytest.importorskip("cygrad._C.conv", reason="conv kernels not built")

DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def geometry(shape, kh, kw, stride, padding):
    _, _, h, w = shape
    return (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1


GUARD = 12345.0  # one guard row/sample on each side of every output catches stray writes


def guarded(shape, dtype):
    """An uninitialised-looking (NaN) C-contiguous array inside a buffer with guard slabs."""
    buf = np.full((shape[0] + 2,) + tuple(shape[1:]), GUARD, dtype=dtype)
    out = buf[1:-1]
    out[...] = np.nan  # the kernels must write (im2col) or zero (col2im) every entry
    return buf, out


def check_guards(buf):
    assert (buf[0] == GUARD).all() and (buf[-1] == GUARD).all(), "kernel wrote out of bounds"


def im2col(x, kh, kw, stride=1, padding=0, threads=2):
    """The kernel called directly: allocate cols, fill it."""
    oh, ow = geometry(x.shape, kh, kw, stride, padding)
    n, c = x.shape[:2]
    buf, cols = guarded((n * oh * ow, c * kh * kw), x.dtype)
    conv.im2col(np.ascontiguousarray(x), cols, kh, kw, stride, padding, oh, ow, threads)
    check_guards(buf)
    return cols


def col2im(cols, shape, kh, kw, stride=1, padding=0, threads=2):
    oh, ow = geometry(shape, kh, kw, stride, padding)
    buf, x = guarded(shape, cols.dtype)
    conv.col2im(np.ascontiguousarray(cols), x, kh, kw, stride, padding, oh, ow, threads)
    check_guards(buf)
    return x


def twin_im2col(x, kh, kw, stride=1, padding=0):
    oh, ow = geometry(x.shape, kh, kw, stride, padding)
    return numpy_backend.im2col(x, kh, kw, stride, padding, oh, ow, 1)


def twin_col2im(cols, shape, kh, kw, stride=1, padding=0):
    oh, ow = geometry(shape, kh, kw, stride, padding)
    return numpy_backend.col2im(cols, shape, kh, kw, stride, padding, oh, ow, 1)


@st.composite
def conv_cases(draw, max_n=3, max_c=3):
    """(shape, kh, kw, stride, padding, dtype) with the kernel no larger than the padded input."""
    n, c = draw(st.integers(0, max_n)), draw(st.integers(0, max_c))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    padding, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    kh = draw(st.integers(1, min(4, h + 2 * padding)))
    kw = draw(st.integers(1, min(4, w + 2 * padding)))
    dt = draw(st.sampled_from(DTYPES))
    return (n, c, h, w), kh, kw, stride, padding, np.dtype(dt)


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- against the numpy twin

@settings(max_examples=200, deadline=None)
@given(case=conv_cases(), threads=st.sampled_from([1, 2]))
def test_kernels_match_numpy_twin(case, threads):
    shape, kh, kw, stride, padding, dt = case
    x = random(shape, dt, seed=sum(shape))
    cols = im2col(x, kh, kw, stride, padding, threads)
    ref = twin_im2col(x, kh, kw, stride, padding)
    assert cols.dtype == dt and cols.shape == ref.shape
    np.testing.assert_array_equal(cols, ref)  # a copy: exact

    g = random(cols.shape, dt, seed=kh * kw + stride)
    back = col2im(g, shape, kh, kw, stride, padding, threads)
    back_ref = twin_col2im(g, shape, kh, kw, stride, padding)
    assert back.dtype == dt and back.shape == shape
    np.testing.assert_allclose(back, back_ref, rtol=RTOL[dt], atol=RTOL[dt])


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, kh, kw, stride, padding", [
    ((2, 3, 9, 7), 3, 3, 1, 1), ((2, 2, 8, 8), 4, 2, 2, 2), ((1, 3, 5, 6), 2, 3, 3, 0),
    ((3, 1, 6, 6), 4, 4, 1, 2), ((1, 2, 3, 3), 1, 1, 1, 2)])
def test_col2im_is_bitwise_the_twin(shape, kh, kw, stride, padding, dt):
    # The documented order (ascending (i, j) per pixel) is the twin's loop order, so the two
    # agree to the bit, not only within a tolerance.
    g = random((shape[0] * np.prod(geometry(shape, kh, kw, stride, padding)),
                shape[1] * kh * kw), dt, seed=3)
    np.testing.assert_array_equal(col2im(g, shape, kh, kw, stride, padding),
                                  twin_col2im(g, shape, kh, kw, stride, padding))


def test_col2im_adds_in_documented_order():
    # One pixel receives, in ascending (i, j): 1e8, 1, -1e8, 3 (float32, spacing 8 at 1e8). The
    # documented order gives ((((0 + 1e8) + 1) - 1e8) + 3) = 3; row-reversed (oy ascending)
    # gives 1, fully reversed 0, column-major (j before i) 4.
    # A 3x3 image, 2x2 kernel, stride 1: OH = OW = 2 and the centre pixel (1, 1) receives one
    # entry from each (i, j), at row r = oy*2 + ox with (oy, ox) = (1 - i, 1 - j), column i*2 + j.
    x_shape = (1, 1, 3, 3)
    g = np.zeros((4, 4), np.float32)
    values = {(0, 0): 1e8, (0, 1): 1.0, (1, 0): -1e8, (1, 1): 3.0}
    for (i, j), v in values.items():
        g[(1 - i) * 2 + (1 - j), i * 2 + j] = v
    out = col2im(g, x_shape, 2, 2)
    expected = np.float32(0)
    for key in sorted(values):
        expected = np.float32(expected + np.float32(values[key]))
    assert out[0, 0, 1, 1] == expected == np.float32(3)


def test_edge_geometries():
    for dt in DTYPES:
        # kernel 1x1 with padding 2: whole rows of patches lie in the padding
        x = random((2, 2, 3, 4), dt)
        for kh, kw, s, p in [(1, 1, 1, 2), (1, 1, 3, 2), (5, 6, 1, 1), (3, 2, 2, 2)]:
            np.testing.assert_array_equal(im2col(x, kh, kw, s, p), twin_im2col(x, kh, kw, s, p))
            g = random((2 * np.prod(geometry(x.shape, kh, kw, s, p)), 2 * kh * kw), dt)
            np.testing.assert_array_equal(col2im(g, x.shape, kh, kw, s, p),
                                          twin_col2im(g, x.shape, kh, kw, s, p))
        # empty image inside the padding: every patch entry is padding
        empty = np.zeros((2, 3, 0, 0), dt)
        cols = im2col(empty, 1, 1, 1, 1)  # OH = OW = 0 + 2 - 1 + 1 = 2
        assert cols.shape == (2 * 4, 3) and not cols.any()
        np.testing.assert_array_equal(cols, twin_im2col(empty, 1, 1, 1, 1))
        assert col2im(np.ones((8, 3), dt), empty.shape, 1, 1, 1, 1).shape == empty.shape
        # no samples, no channels
        assert im2col(np.zeros((0, 2, 5, 5), dt), 3, 3).shape == (0, 18)
        assert im2col(np.zeros((2, 0, 5, 5), dt), 3, 3).shape == (18, 0)
        assert col2im(np.zeros((18, 0), dt), (2, 0, 5, 5), 3, 3).shape == (2, 0, 5, 5)
        out = col2im(np.zeros((0, 18), dt), (0, 2, 5, 5), 3, 3)
        assert out.shape == (0, 2, 5, 5)


def test_direct_calls_check_geometry():
    x = np.zeros((1, 2, 5, 5))
    cols = np.zeros((9, 18))
    with pytest.raises(ValueError, match="output size"):
        conv.im2col(x, cols, 3, 3, 1, 0, 4, 4, 1)
    with pytest.raises(ValueError, match="cols of shape"):
        conv.im2col(x, np.zeros((9, 17)), 3, 3, 1, 0, 3, 3, 1)
    with pytest.raises(ValueError, match="stride"):
        conv.col2im(cols, x, 3, 3, 0, 0, 3, 3, 1)
    with pytest.raises(ValueError, match="larger than the padded"):
        conv.col2im(cols, x, 6, 3, 1, 0, 0, 3, 1)


# ---------------------------------------------------------------- the adjoint identity

@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_col2im_is_the_adjoint(case):
    shape, kh, kw, stride, padding, _ = case
    x = random(shape, np.float64, seed=1)
    g = random((shape[0] * np.prod(geometry(shape, kh, kw, stride, padding)),
                shape[1] * kh * kw), np.float64, seed=2)
    lhs = np.vdot(im2col(x, kh, kw, stride, padding), g)
    rhs = np.vdot(x, col2im(g, shape, kh, kw, stride, padding))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- exactness contract

LARGE = [((8, 3, 28, 28), 3, 3, 1, 1), ((5, 4, 17, 13), 5, 3, 2, 2), ((3, 7, 12, 12), 2, 2, 2, 0)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, kh, kw, stride, padding", LARGE)
def test_thread_invariant(shape, kh, kw, stride, padding, dt):
    x = random(shape, dt, seed=5)
    cols = im2col(x, kh, kw, stride, padding, threads=1)
    assert np.array_equal(cols, im2col(x, kh, kw, stride, padding, threads=2))
    g = random(cols.shape, dt, seed=6)
    one = col2im(g, shape, kh, kw, stride, padding, threads=1)
    assert np.array_equal(one, col2im(g, shape, kh, kw, stride, padding, threads=2))
    assert np.array_equal(one, col2im(g, shape, kh, kw, stride, padding, threads=7))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, kh, kw, stride, padding", LARGE)
def test_identical_channels_and_samples_stay_identical(shape, kh, kw, stride, padding, dt):
    n, c, h, w = shape
    oh, ow = geometry(shape, kh, kw, stride, padding)
    # identical channels -> identical column blocks
    x = np.repeat(random((n, 1, h, w), dt, seed=7), c, axis=1)
    cols = im2col(x, kh, kw, stride, padding).reshape(n * oh * ow, c, kh * kw)
    assert np.array_equal(cols, np.repeat(cols[:, :1], c, axis=1))
    # identical column blocks -> identical channel planes
    g = np.repeat(random((n * oh * ow, 1, kh * kw), dt, seed=8), c, axis=1).reshape(-1, c * kh * kw)
    planes = col2im(g, shape, kh, kw, stride, padding)
    assert np.array_equal(planes, np.repeat(planes[:, :1], c, axis=1))
    # batch invariance: a sample's gradient has the same bits alone or inside the batch
    g = random((n * oh * ow, c * kh * kw), dt, seed=9)
    full = col2im(g, shape, kh, kw, stride, padding)
    last = col2im(g[-oh * ow:], (1, c, h, w), kh, kw, stride, padding)
    assert np.array_equal(full[-1:], last)


# ---------------------------------------------------------------- through the backend seam

seam = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


@seam
@settings(max_examples=60, deadline=None)
@given(case=conv_cases(), layout=st.sampled_from(["transposed", "strided", "C"]))
def test_seam_matches_numpy_backend(case, layout):
    shape, kh, kw, stride, padding, dt = case
    n, c, h, w = shape
    if layout == "transposed":    # a (N, C, H, W) view of an (N, C, W, H) array
        x = random((n, c, w, h), dt, seed=4).transpose(0, 1, 3, 2)
    elif layout == "strided":
        x = random((n, c, h, 2 * w), dt, seed=4)[..., ::2]
    else:
        x = random(shape, dt, seed=4)
    assert x.shape == shape
    with B.using("numpy"):
        ref = B.im2col(x, kh, kw, stride, padding)
        g = random(ref.shape, dt, seed=5)
        back_ref = B.col2im(g.T.copy().T, shape, kh, kw, stride, padding)
    with B.using("cython"):
        cols = B.im2col(x, kh, kw, stride, padding)
        back = B.col2im(g.T.copy().T, shape, kh, kw, stride, padding)  # Fortran-ordered cols
    assert cols.dtype == dt and back.dtype == dt
    np.testing.assert_array_equal(cols, ref)
    np.testing.assert_allclose(back, back_ref, rtol=RTOL[dt], atol=RTOL[dt])
