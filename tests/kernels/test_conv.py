"""The conv kernels (im2col / col2im, their transposes, the bias moves) against their numpy
twins, the adjoint identity, bitwise exactness, and the geometry checks of direct calls.

Geometry: a kh x kw kernel, strides (sh, sw), padding (ph, pw) before the image, dilation
(dh, dw), and an output of oh x ow positions (one more than the even padding gives, sometimes:
an uneven padding, as padding="same" makes for even kernels).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B
from cygrad.backend import numpy_backend

conv = pytest.importorskip("cygrad._C.conv", reason="conv kernels not built")


@pytest.fixture(autouse=True)
def _small_arrays_on_two_threads(parallel_small):
    """Two threads really split these tests' small arrays (conftest's parallel_small)."""

DTYPES = [np.float32, np.float64]


def out_size(shape, kh, kw, sh=1, sw=1, ph=0, pw=0, dh=1, dw=1, extra=(0, 0)):
    _, _, h, w = shape
    return ((h + 2 * ph - (kh - 1) * dh - 1) // sh + 1 + extra[0],
            (w + 2 * pw - (kw - 1) * dw - 1) // sw + 1 + extra[1])


GUARD = 12345.0  # one guard sample on each side of every output catches stray writes


def guarded(shape, dtype):
    buf = np.full((shape[0] + 2,) + tuple(shape[1:]), GUARD, dtype=dtype)
    out = buf[1:-1]
    out[...] = np.nan  # the kernels must write (im2col) or zero (col2im) every entry
    return buf, out


def check_guards(buf):
    assert (buf[0] == GUARD).all() and (buf[-1] == GUARD).all(), "kernel wrote out of bounds"


def kernel_call(name, src, shape, geo, threads):
    """Call conv.<name> directly on a guarded output of `shape`."""
    buf, out = guarded(shape, src.dtype)
    getattr(conv, name)(np.ascontiguousarray(src), out, *geo, threads)
    check_guards(buf)
    return out


@st.composite
def cases(draw, max_n=3, max_c=3):
    """(x shape, geometry (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow), dtype); the dilated kernel
    fits the padded input."""
    n, c = draw(st.integers(0, max_n)), draw(st.integers(0, max_c))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh = draw(st.integers(1, max(1, min(4, (h + 2 * ph - 1) // dh + 1))))
    kw = draw(st.integers(1, max(1, min(4, (w + 2 * pw - 1) // dw + 1))))
    extra = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    oh, ow = out_size((n, c, h, w), kh, kw, sh, sw, ph, pw, dh, dw, extra)
    return (n, c, h, w), (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow), np.dtype(draw(
        st.sampled_from(DTYPES)))


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def cols_shape(shape, geo, transposed=False):
    n, c = shape[:2]
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    s = (n * oh * ow, c * kh * kw)
    return s[::-1] if transposed else s


# ---------------------------------------------------------------- against the numpy twin

@settings(max_examples=250, deadline=None)
@given(case=cases(), threads=st.sampled_from([1, 2]))
def test_kernels_are_bitwise_the_numpy_twin(case, threads):
    shape, geo, dt = case
    x = random(shape, dt, seed=sum(shape))
    for name, transposed in (("im2col", False), ("im2col_t", True)):
        cols = kernel_call(name, x, cols_shape(shape, geo, transposed), geo, threads)
        np.testing.assert_array_equal(cols, getattr(numpy_backend, name)(x, *geo, 1))
    g = random(cols_shape(shape, geo), dt, seed=geo[0] * geo[2] + geo[6])
    back = kernel_call("col2im", g, shape, geo, threads)
    # the documented order, ascending (i, j) per pixel, is the twin's loop order: bitwise
    np.testing.assert_array_equal(back, numpy_backend.col2im(g, shape, *geo, 1))
    back_t = kernel_call("col2im_t", g.T, shape, geo, threads)
    np.testing.assert_array_equal(back_t, back)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("pw", [0, 1, 2])
def test_row_runs_of_every_length(dt, pw):
    """im2col_t / col2im_t move stride-1 rows as runs of whole vectors, a half vector and a
    tail (csrc/rows.h): every run length from 1 to 40 elements (past two AVX-512 vectors of
    float32) against the numpy twin, bitwise, with and without horizontal padding."""
    for w in range(1, 41):
        shape = (2, 2, 4, w)
        kw = min(3, w + 2 * pw)
        geo = (2, kw, 1, 1, 1, pw, 1, 1) + out_size(shape, 2, kw, ph=1, pw=pw)
        x = random(shape, dt, seed=w)
        cols = kernel_call("im2col_t", x, cols_shape(shape, geo, True), geo, 1)
        np.testing.assert_array_equal(cols, numpy_backend.im2col_t(x, *geo, 1))
        g = random(cols_shape(shape, geo), dt, seed=w + 100)
        back = kernel_call("col2im_t", g.T, shape, geo, 1)
        np.testing.assert_array_equal(back, numpy_backend.col2im(g, shape, *geo, 1))


def test_col2im_adds_in_documented_order():
    # One pixel receives, in ascending (i, j): 1e8, 1, -1e8, 3 (float32, spacing 8 at 1e8). The
    # documented order gives ((((0 + 1e8) + 1) - 1e8) + 3) = 3; row-reversed gives 1, fully
    # reversed 0, column-major (j before i) 4. A 3x3 image, 2x2 kernel, stride 1: the centre
    # pixel gets one entry from each (i, j), at row (1 - i)*2 + (1 - j), column i*2 + j.
    g = np.zeros((4, 4), np.float32)
    values = {(0, 0): 1e8, (0, 1): 1.0, (1, 0): -1e8, (1, 1): 3.0}
    for (i, j), v in values.items():
        g[(1 - i) * 2 + (1 - j), i * 2 + j] = v
    geo = (2, 2, 1, 1, 0, 0, 1, 1, 2, 2)
    for name, cols in (("col2im", g), ("col2im_t", g.T)):
        out = kernel_call(name, cols, (1, 1, 3, 3), geo, 1)
        assert out[0, 0, 1, 1] == np.float32(3)


@pytest.mark.parametrize("dt", DTYPES)
def test_dilation_reads_the_documented_pixels(dt):
    # cols[r, q] = x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw], written out by hand
    x = random((2, 2, 7, 8), dt, seed=3)
    kh, kw, sh, sw, ph, pw, dh, dw = 2, 3, 2, 1, 1, 2, 3, 2
    oh, ow = out_size(x.shape, kh, kw, sh, sw, ph, pw, dh, dw)
    cols = kernel_call("im2col", x, (2 * oh * ow, 2 * kh * kw),
                       (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow), 2)
    for n in range(2):
        for oy in range(oh):
            for ox in range(ow):
                for c in range(2):
                    for i in range(kh):
                        for j in range(kw):
                            y, xx = oy * sh + i * dh - ph, ox * sw + j * dw - pw
                            inside = 0 <= y < 7 and 0 <= xx < 8
                            assert cols[(n * oh + oy) * ow + ox, (c * kh + i) * kw + j] == (
                                x[n, c, y, xx] if inside else 0)


def test_edge_geometries():
    for dt in DTYPES:
        # an empty image inside the padding: every patch entry is padding
        empty = np.zeros((2, 3, 0, 0), dt)
        geo = (1, 1, 1, 1, 1, 1, 1, 1, 2, 2)
        cols = kernel_call("im2col", empty, (8, 3), geo, 2)
        assert not cols.any()
        assert kernel_call("col2im", np.ones((8, 3), dt), empty.shape, geo, 2).shape == (2, 3,
                                                                                          0, 0)
        # no samples, no channels, no output positions
        geo = (3, 3, 1, 1, 0, 0, 1, 1, 3, 3)
        assert kernel_call("im2col", np.zeros((0, 2, 5, 5), dt), (0, 18), geo, 2).size == 0
        assert kernel_call("im2col", np.zeros((2, 0, 5, 5), dt), (18, 0), geo, 2).size == 0
        out = kernel_call("col2im_t", np.zeros((18, 0), dt), (0, 2, 5, 5), geo, 2)
        assert out.shape == (0, 2, 5, 5)
        none = (3, 3, 1, 1, 0, 0, 1, 1, 0, 3)
        assert not kernel_call("col2im", np.zeros((0, 18), dt), (2, 2, 5, 5), none, 2).any()


def test_direct_calls_check_geometry():
    x, cols = np.zeros((1, 2, 5, 5)), np.zeros((9, 18))
    ok = (3, 3, 1, 1, 0, 0, 1, 1, 3, 3)
    conv.im2col(x, cols, *ok, 1)
    with pytest.raises(ValueError, match="cols of shape"):
        conv.im2col(x, np.zeros((9, 17)), *ok, 1)
    with pytest.raises(ValueError, match="cols of shape"):  # rows for a 4x4 output
        conv.col2im(cols, x, 3, 3, 1, 1, 0, 0, 1, 1, 4, 4, 1)
    for k, bad in ((2, 0), (3, -1), (6, 0), (4, -2), (8, -1)):  # stride, padding, dilation, size
        geo = list(ok)
        geo[k] = bad
        with pytest.raises(ValueError, match="must be in"):
            conv.im2col_t(x, cols.T.copy(), *geo, 1)
    # 64-bit arithmetic (2*padding overflowed a C int before): with padding and dilation
    # 2^31 - 1 the tap (1, 1) reads pixel (0, 0) (i*dh - ph = 0) and every other one a zero
    big = 2**31 - 1
    x = random((1, 2, 5, 5), np.float64)
    out = np.empty((18, 1))
    conv.im2col_t(x, out, 3, 3, big, big, big, big, big, big, 1, 1, 1)
    expected = np.zeros((2, 3, 3))
    expected[:, 1, 1] = x[0, :, 0, 0]
    assert np.array_equal(out.reshape(2, 3, 3), expected)
    back = np.empty((1, 2, 5, 5))
    conv.col2im_t(np.ones((18, 1)), back, 3, 3, big, big, big, big, big, big, 1, 1, 1)
    assert back.sum() == 2 and np.array_equal(back[0, :, 0, 0], [1, 1])
    with pytest.raises(ValueError, match="padding must be in"):
        conv.im2col_t(x, out, 3, 3, 1, 1, 2**31, 0, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="cols of shape"):  # n*oh*ow beyond 64 bits
        conv.im2col(x, cols, 3, 3, 1, 1, 0, 0, 1, 1, big, big, 1)


# ---------------------------------------------------------------- the adjoint identity

@settings(max_examples=60, deadline=None)
@given(case=cases())
def test_col2im_is_the_adjoint(case):
    shape, geo, _ = case
    x = random(shape, np.float64, seed=1)
    g = random(cols_shape(shape, geo), np.float64, seed=2)
    lhs = np.vdot(kernel_call("im2col", x, g.shape, geo, 1), g)
    rhs = np.vdot(x, kernel_call("col2im", g, shape, geo, 1))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- exactness contract

LARGE = [((8, 3, 28, 28), (3, 3, 1, 1, 1, 1, 1, 1)), ((5, 4, 17, 13), (5, 3, 2, 1, 2, 1, 1, 2)),
         ((3, 7, 12, 12), (2, 2, 2, 2, 0, 1, 3, 1))]


def full_geo(shape, g):
    return g + out_size(shape, *g)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, g", LARGE)
def test_thread_invariant(shape, g, dt):
    geo = full_geo(shape, g)
    x = random(shape, dt, seed=5)
    for name, transposed in (("im2col", False), ("im2col_t", True)):
        one = kernel_call(name, x, cols_shape(shape, geo, transposed), geo, 1)
        assert np.array_equal(one, kernel_call(name, x, one.shape, geo, 2))
    gr = random(cols_shape(shape, geo), dt, seed=6)
    for name, cols in (("col2im", gr), ("col2im_t", gr.T)):
        one = kernel_call(name, cols, shape, geo, 1)
        assert np.array_equal(one, kernel_call(name, cols, shape, geo, 2))
        assert np.array_equal(one, kernel_call(name, cols, shape, geo, 7))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, g", LARGE)
def test_identical_channels_and_samples_stay_identical(shape, g, dt):
    geo = full_geo(shape, g)
    n, c, h, w = shape
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    # identical channels -> identical column blocks
    x = np.repeat(random((n, 1, h, w), dt, seed=7), c, axis=1)
    cols = kernel_call("im2col", x, cols_shape(shape, geo), geo, 2)
    cols = cols.reshape(n * oh * ow, c, kh * kw)
    assert np.array_equal(cols, np.repeat(cols[:, :1], c, axis=1))
    # identical column blocks -> identical channel planes
    gr = np.repeat(random((n * oh * ow, 1, kh * kw), dt, seed=8), c, axis=1)
    planes = kernel_call("col2im", gr.reshape(-1, c * kh * kw), shape, geo, 2)
    assert np.array_equal(planes, np.repeat(planes[:, :1], c, axis=1))
    # batch invariance: a sample's gradient has the same bits alone or inside the batch
    gr = random((c * kh * kw, n * oh * ow), dt, seed=9)
    full = kernel_call("col2im_t", gr, shape, geo, 2)
    last = kernel_call("col2im_t", gr[:, -oh * ow:], (1, c, h, w), geo, 2)
    assert np.array_equal(full[-1:], last)


# ---------------------------------------------------------------- the bias moves

@pytest.mark.parametrize("dt", DTYPES)
def test_add_channel_bias_is_planes_to_images_bits(dt):
    n, o, p = 3, 5, 7
    planes, b = random((o, n * p), dt, 1), random(o, dt, 2)
    moved = np.empty((n, o, p), dt)
    conv.planes_to_images(planes, b, moved, 2)
    y = np.ascontiguousarray(planes.reshape(o, n, p).transpose(1, 0, 2))
    conv.add_channel_bias(y, b, 2)
    assert np.array_equal(y, moved)
    with pytest.raises(ValueError, match="bias of length 4 for 5 channels"):
        conv.add_channel_bias(y, b[:4], 1)


# ---------------------------------------------------------------- through the backend seam

seam = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")


@seam
@settings(max_examples=60, deadline=None)
@given(case=cases(), layout=st.sampled_from(["transposed", "strided", "C"]))
def test_seam_matches_numpy_backend(case, layout):
    shape, geo, dt = case
    n, c, h, w = shape
    if layout == "transposed":  # a (N, C, H, W) view of an (N, C, W, H) array
        x = random((n, c, w, h), dt, seed=4).transpose(0, 1, 3, 2)
    elif layout == "strided":
        x = random((n, c, h, 2 * w), dt, seed=4)[..., ::2]
    else:
        x = random(shape, dt, seed=4)
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    args = (kh, kw, (sh, sw), (ph, pw), (dh, dw), (oh, ow))
    results = {}
    for name in ("numpy", "cython"):
        with B.using(name):
            cols = B.im2col_t(x, *args)
            g = random(cols.shape, dt, seed=5)
            results[name] = (cols, B.col2im_t(g.T.copy().T, shape, *args),  # Fortran order
                             B.col2im(g.T, shape, *args))
    for ours, ref in zip(results["cython"], results["numpy"]):
        assert ours.dtype == dt
        np.testing.assert_array_equal(ours, ref)


@seam
def test_seam_checks():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="larger than the padded input"):
        B.im2col_t(x, 3, 3, dilation=2)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        B.im2col(x, 2, 2, stride=(1, 0))
    with pytest.raises(ValueError, match="do not fit input"):
        B.col2im_t(np.zeros((4, 8), np.float32), x.shape, 2, 2)
    with pytest.raises(ValueError, match="out must be"):
        B.col2im_t(np.zeros((4, 9), np.float32), x.shape, 2, 2, out=np.zeros((1, 1, 4, 4)))


@seam
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("m, n, k1, k2", [(64, 288, 576, 576), (5, 7, 3, 600), (17, 33, 513, 1),
                                          (3, 9, 0, 5)])
def test_gemm_into_accumulate_adds_the_product_with_one_rounding(m, n, k1, k2, dt):
    # a convolution's weight gradient, image by image: out + (the product's own k tree), one
    # rounding per element, the same bits at any thread count
    rng = np.random.default_rng(m + k2)
    a = rng.standard_normal((m, k1 + k2)).astype(dt)
    b = rng.standard_normal((n, k1 + k2)).astype(dt)
    first = B.gemm(a[:, :k1], b[:, :k1], trans_b=True)
    expected = first + B.gemm(a[:, k1:], b[:, k1:], trans_b=True)
    for threads in (1, 2):
        B.set_num_threads(threads)
        c = np.empty((m, n), dt)
        B.gemm_into(a[:, :k1], b[:, :k1], c, trans_b=True)
        assert np.array_equal(c, first)
        B.gemm_into(a[:, k1:], b[:, k1:], c, trans_b=True, accumulate=True)
        assert np.array_equal(c, expected)
    np.testing.assert_allclose(c, B.gemm(a, b, trans_b=True), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="out must be"):
        B.gemm_into(a, b, np.empty((m, n + 1), dt), trans_b=True)


@pytest.mark.parametrize("dt", DTYPES)
def test_col2im_threads_never_race(dt):
    # col2im's prange once shared two variables its body set only through their addresses (the
    # column span of a kernel offset): two threads raced on them now and then. Many calls, so
    # that a race shows.
    shape, g = LARGE[1]
    geo = full_geo(shape, g)
    gr = random(cols_shape(shape, geo), dt, seed=6)
    one = kernel_call("col2im", gr, shape, geo, 1)
    for _ in range(100):
        assert np.array_equal(one, kernel_call("col2im", gr, shape, geo, 2))
