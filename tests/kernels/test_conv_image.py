"""gemm.conv_image / conv_image_grad: a convolution and its weight gradient image by image,
the patches packed straight from each image into gemm's panels (the product at stride 1 from a
padded copy of the image whose runs are the patches, "flat"; other strides from the image).
Each is bitwise the product of the im2col_t columns it replaces (the same packed values, so
the same chains and tree), for every geometry, both dtypes, with and without bias /
accumulation, on one and two threads."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B

gemm = pytest.importorskip("cygrad._C.gemm", reason="gemm kernels not built")


@pytest.fixture(autouse=True)
def _small_arrays_on_two_threads(parallel_small):
    """Two threads really split these tests' small products (conftest's parallel_small)."""


DTYPES = [np.float32, np.float64]
GUARD = 12345.0


def geometry_of(h, w, kh, kw, sh=1, sw=1, ph=0, pw=0, dh=1, dw=1):
    oh = (h + 2 * ph - (kh - 1) * dh - 1) // sh + 1
    ow = (w + 2 * pw - (kw - 1) * dw - 1) // sw + 1
    return kh, kw, sh, sw, ph, pw, dh, dw, oh, ow


def references(x, w2, b, g, start, geo):
    """(forward, weight gradient) through im2col_t and gemm_into: what the kernels replace."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    cols = B.im2col_t(x[None], kh, kw, (sh, sw), (ph, pw), (dh, dw), (oh, ow))
    y = np.empty((1, w2.shape[0], oh * ow), x.dtype)
    B.gemm_into(w2, cols, y[0])
    if b is not None:
        B.add_channel_bias(y, b)
    grads = []
    for accumulate in (False, True):
        dw_ = start.copy()
        B.gemm_into(g, cols, dw_, trans_b=True, accumulate=accumulate)
        grads.append(dw_)
    return y[0], grads


def run_kernels(x, w2, b, g, start, geo, threads):
    """The kernels on guarded outputs (a row of GUARD before and after each)."""
    o, p, k = w2.shape[0], g.shape[1], w2.shape[1]
    buf = np.full((o + 2, p), GUARD, x.dtype)
    out = buf[1:-1]
    out[...] = np.nan  # every element must be written
    bias = np.empty(0, x.dtype) if b is None else b
    gemm.conv_image(x[None], w2, bias, out[None], *geo, threads)
    assert (buf[0] == GUARD).all() and (buf[-1] == GUARD).all(), "wrote out of bounds"
    grads = []
    for accumulate in (False, True):
        gbuf = np.full((o + 2, k), GUARD, x.dtype)
        gbuf[1:-1] = start
        gemm.conv_image_grad(x[None], g[None], gbuf[1:-1], accumulate, *geo, threads)
        assert (gbuf[0] == GUARD).all() and (gbuf[-1] == GUARD).all(), "wrote out of bounds"
        grads.append(gbuf[1:-1].copy())
    return out.copy(), grads


def check_case(c, h, w, o, geo_args, dt, threads, bias=True, seed=0, extra=(0, 0)):
    rng = np.random.default_rng(seed)
    geo = geometry_of(h, w, *geo_args)
    geo = geo[:8] + (geo[8] + extra[0], geo[9] + extra[1])  # an uneven padding after
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    x = rng.standard_normal((c, h, w)).astype(dt)
    w2 = rng.standard_normal((o, c * kh * kw)).astype(dt)
    b = rng.standard_normal(o).astype(dt) if bias else None
    g = rng.standard_normal((o, oh * ow)).astype(dt)
    start = rng.standard_normal((o, c * kh * kw)).astype(dt)
    want_y, want_dw = references(x, w2, b, g, start, geo)
    got_y, got_dw = run_kernels(x, w2, b, g, start, geo, threads)
    np.testing.assert_array_equal(got_y, want_y)
    for got, want in zip(got_dw, want_dw):
        np.testing.assert_array_equal(got, want)


@st.composite
def cases(draw):
    c, o = draw(st.integers(1, 4)), draw(st.integers(1, 40))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 40))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh = draw(st.integers(1, max(1, min(4, (h + 2 * ph - 1) // dh + 1))))
    kw = draw(st.integers(1, max(1, min(4, (w + 2 * pw - 1) // dw + 1))))
    return c, h, w, o, (kh, kw, sh, sw, ph, pw, dh, dw)


@settings(max_examples=200, deadline=None)
@given(case=cases(), dt=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]),
       bias=st.booleans())
def test_bitwise_the_im2col_products(case, dt, threads, bias):
    c, h, w, o, geo_args = case
    check_case(c, h, w, o, geo_args, dt, threads, bias, seed=h * 41 + w)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [
    (32, 26, 26, 64, (3, 3)),        # the mnist CNN's second layer
    (3, 30, 30, 20, (3, 3, 1, 1, 1, 1)),  # more than one k block of positions (900 > 512)
    (2, 20, 37, 17, (5, 3, 1, 1, 2, 1)),  # rows of 35 positions: windows wrap and shift
    (4, 9, 21, 33, (2, 2, 1, 1, 0, 0, 1, 2)),  # dilated columns
    (2, 17, 17, 16, (3, 3, 2, 2, 1, 1)),  # stride 2: element by element
])
@pytest.mark.parametrize("threads", [1, 2])
def test_layer_shapes(dt, shape, threads):
    c, h, w, o, geo_args = shape
    check_case(c, h, w, o, geo_args, dt, threads)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("extra", [(0, 1), (1, 0), (1, 1)])
def test_uneven_padding(dt, extra):
    """An output a row or column larger than the even padding gives (padding="same" with an
    even kernel): the extra positions read zeros after the image."""
    check_case(3, 11, 29, 12, (2, 2, 1, 1, 1, 1), dt, 1, extra=extra)
    check_case(2, 8, 18, 9, (4, 3, 1, 1, 2, 1, 1, 2), dt, 2, extra=extra)


@pytest.mark.parametrize("dt", DTYPES)
def test_every_row_width(dt):
    """Output rows of 1 to 40 positions: panels of 8 positions inside one row or across two,
    B windows of one vector's positions full, shifted back or reaching past their run."""
    for w in range(1, 43):
        check_case(2, 5, w, 18, (3, 3, 1, 1, 0, 1), dt, 1, seed=w)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_a_batch_is_its_images(dt, threads):
    """Three images in one call: each output image has the bits it has alone; the weight
    gradient is the chain over the images of each image's product (gemm_into's accumulate)."""
    rng = np.random.default_rng(9)
    geo = geometry_of(14, 19, 3, 3, 1, 1, 1, 0)
    oh, ow = geo[8], geo[9]
    x = rng.standard_normal((3, 5, 14, 19)).astype(dt)
    w2 = rng.standard_normal((11, 45)).astype(dt)
    b = rng.standard_normal(11).astype(dt)
    g = rng.standard_normal((3, 11, oh * ow)).astype(dt)
    y = np.empty((3, 11, oh * ow), dt)
    gemm.conv_image(x, w2, b, y, *geo, threads)
    dw = np.full((11, 45), np.nan, dt)
    gemm.conv_image_grad(x, g, dw, False, *geo, threads)
    want = np.empty((11, 45), dt)
    for n in range(3):
        one, grads = references(x[n], w2, b, g[n], want, geo)
        np.testing.assert_array_equal(y[n], one)
        want = grads[n > 0]
    np.testing.assert_array_equal(dw, want)


def test_checks():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w2 = np.zeros((3, 18), np.float32)
    out = np.zeros((1, 3, 9), np.float32)
    none = np.empty(0, np.float32)
    geo = (3, 3, 1, 1, 0, 0, 1, 1, 3, 3)
    gemm.conv_image(x, w2, none, out, *geo, 1)
    with pytest.raises(ValueError, match="weights of shape"):
        gemm.conv_image(x, np.zeros((3, 9), np.float32), none, out, *geo, 1)
    with pytest.raises(ValueError, match="out of shape"):
        gemm.conv_image(x, w2, none, out[:, :2], *geo, 1)
    with pytest.raises(ValueError, match="bias of 2 elements"):
        gemm.conv_image(x, w2, np.zeros(2, np.float32), out, *geo, 1)
    with pytest.raises(ValueError, match="must be positive"):
        gemm.conv_image(x, w2, none, out, 3, 3, 0, 1, 0, 0, 1, 1, 3, 3, 1)
    with pytest.raises(ValueError, match="must be in"):
        gemm.conv_image(x, w2, none, out, 3, 3, 1, 1, -1, 0, 1, 1, 3, 3, 1)
    big = np.zeros(3 * 18 + 100, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        gemm.conv_image(x, big[:54].reshape(3, 18), none, big[40:67].reshape(1, 3, 9), *geo, 1)
    g = np.zeros((1, 3, 9), np.float32)
    dw = np.zeros((3, 18), np.float32)
    gemm.conv_image_grad(x, g, dw, False, *geo, 1)
    with pytest.raises(ValueError, match="gradient of shape"):
        gemm.conv_image_grad(x, np.zeros((1, 3, 4), np.float32), dw, False, *geo, 1)
    with pytest.raises(ValueError, match="out of shape"):
        gemm.conv_image_grad(x, g, np.zeros((3, 9), np.float32), False, *geo, 1)
    with pytest.raises(ValueError, match="overlaps"):
        gemm.conv_image_grad(x, big[:27].reshape(1, 3, 9), big[20:74].reshape(3, 18), False,
                             *geo, 1)


def test_backend_seam():
    """cygrad.backend's conv_image / conv_image_grad: checks in cygrad's words, and the numpy
    backend's twin (BLAS: close, not bitwise) against the kernels."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 9))
    w2 = rng.standard_normal((4, 27))
    b = rng.standard_normal(4)
    g = rng.standard_normal((2, 4, 54))
    y = B.conv_image(x, w2, b, np.empty((2, 4, 54)), 3, 3, padding=(0, 1))
    dw = B.conv_image_grad(x, g, np.ones((4, 27)), True, 3, 3, padding=(0, 1))
    with B.using("numpy"):
        y_np = B.conv_image(x, w2, b, np.empty((2, 4, 54)), 3, 3, padding=(0, 1))
        dw_np = B.conv_image_grad(x, g, np.ones((4, 27)), True, 3, 3, padding=(0, 1))
    np.testing.assert_allclose(y, y_np, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dw_np, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="mixed dtypes"):
        B.conv_image(x.astype(np.float32), w2, b, np.empty((2, 4, 54)), 3, 3, padding=(0, 1))
    with pytest.raises(ValueError, match="weights of shape"):
        B.conv_image(x, w2[:, :9], b, np.empty((2, 4, 54)), 3, 3, padding=(0, 1))
    with pytest.raises(ValueError, match="out must be"):
        B.conv_image(x, w2, b, np.empty((2, 4, 53)), 3, 3, padding=(0, 1))
    with pytest.raises(ValueError, match="gradient of shape"):
        B.conv_image_grad(x, g[:, :, :5], np.ones((4, 27)), True, 3, 3, padding=(0, 1))
    with pytest.raises(TypeError):
        B.conv_image([[1.0]], w2, b, np.empty((2, 4, 54)), 3, 3)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_conv_image_backward_is_its_image_by_image_calls(dt, backend):
    """backend.conv_image_backward: each image's conv_image_grad (the chain over the images)
    and col2im_t(w2.T @ g[n]), bitwise the calls it makes one at a time; either gradient
    skipped when its array is None; checks in cygrad's words."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 9, 18)).astype(dt)
    w2 = rng.standard_normal((6, 36)).astype(dt)
    geo = dict(padding=(1, 0), dilation=(1, 2))
    g = rng.standard_normal((3, 6, 9 * 14)).astype(dt)
    with B.using(backend):
        dw, dx = np.empty((6, 36), dt), np.empty(x.shape, dt)
        B.conv_image_backward(x, g, w2, dw, dx, 3, 3, **geo)
        want_dw, want_dx = np.empty((6, 36), dt), np.empty(x.shape, dt)
        for n in range(3):
            B.conv_image_grad(x[n:n + 1], g[n:n + 1], want_dw, n > 0, 3, 3, **geo)
            dcols = np.empty((36, 9 * 14), dt)
            B.gemm_into(w2, g[n], dcols, trans_a=True)
            B.col2im_t(dcols, (1,) + x.shape[1:], 3, 3, **geo, out=want_dx[n:n + 1])
        np.testing.assert_array_equal(dw, want_dw)
        np.testing.assert_array_equal(dx, want_dx)
        only_dx = np.empty(x.shape, dt)
        B.conv_image_backward(x, g, w2, None, only_dx, 3, 3, **geo)
        np.testing.assert_array_equal(only_dx, want_dx)
        only_dw = np.empty((6, 36), dt)
        B.conv_image_backward(x, g, w2, only_dw, None, 3, 3, **geo)
        np.testing.assert_array_equal(only_dw, want_dw)
        with pytest.raises(ValueError, match="gradient of shape"):
            B.conv_image_backward(x, g[:, :, 1:], w2, dw, dx, 3, 3, **geo)
        with pytest.raises(ValueError, match="out must be"):
            B.conv_image_backward(x, g, w2, dw, dx[:2], 3, 3, **geo)
        other = np.float64 if dt == np.float32 else np.float32
        with pytest.raises(TypeError, match="mixed dtypes"):
            B.conv_image_backward(x, g, w2.astype(other), dw, dx, 3, 3, **geo)


def test_a_huge_reach_reads_only_the_image():
    """A kernel reaching 2^30 rows down (dilation) for a one-row output: no padded buffer of
    that size (the flat path is refused), the far taps read as zeros, the bits of im2col's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    w2 = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = rng.standard_normal((3, 6)).astype(np.float32)
    geo = (2, 1, 1, 1, 0, 0, 1 << 30, 1, 1, 6)
    want_y, want_dw = references(x, w2, b, g, np.zeros((3, 4), np.float32), geo)
    got_y, got_dw = run_kernels(x, w2, b, g, np.zeros((3, 4), np.float32), geo, 1)
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_dw[0], want_dw[0])


@pytest.mark.parametrize("dt", DTYPES)
def test_units_taken_from_another_thread(dt):
    """Thread 1 held until thread 0 is done (gemm.steal_hold): thread 0 takes units of thread
    1's share of the patch products (250 channels: more than one block of rows), the same bits."""
    old = gemm.steal_hold(True)
    try:
        before = gemm.units_stolen()
        check_case(3, 24, 24, 250, (3, 3, 1, 1, 1, 1), dt, 2)
        assert gemm.units_stolen() > before
    finally:
        gemm.steal_hold(old)


@pytest.mark.parametrize("setting", ["use_k_cut", "use_deep_tiles"])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("c,h,w,o", [(64, 10, 12, 20), (3, 30, 31, 24)])
def test_k_cut_and_deep_tiles_give_the_same_bits(setting, dt, threads, c, h, w, o):
    """Products of patches with k cut in two parts (gemm.use_k_cut), or with deep tiles
    (use_deep_tiles), wherever they can be: the forward's k is 64 channels x 3 x 3 = 576 (2
    or 3 leaves), the weight gradient's the 930 positions; the bits of the run without and
    of the im2col products."""
    use = getattr(gemm, setting)
    rng = np.random.default_rng(c + h)
    geo = geometry_of(h, w, 3, 3, 1, 1, 1, 1)
    oh, ow = geo[8], geo[9]
    x = rng.standard_normal((c, h, w)).astype(dt)
    w2 = rng.standard_normal((o, c * 9)).astype(dt)
    b = rng.standard_normal(o).astype(dt)
    g = rng.standard_normal((o, oh * ow)).astype(dt)
    start = rng.standard_normal((o, c * 9)).astype(dt)
    before = use(False)
    try:
        want_y, want_dw = run_kernels(x, w2, b, g, start, geo, threads)
        use(True)
        got_y, got_dw = run_kernels(x, w2, b, g, start, geo, threads)
        ref_y, ref_dw = references(x, w2, b, g, start, geo)
    finally:
        use(before)
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_y, ref_y)
    for got, want, ref in zip(got_dw, want_dw, ref_dw):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, ref)
