"""The pool kernels (csrc/pool.pyx) against their numpy twins, bitwise; PyTorch's tie and NaN
rule; the summation orders; thread and batch invariance; checks of direct calls."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cygrad import backend as B
from cygrad.backend import numpy_backend
from cygrad.ops.conv import adaptive_windows, pool_out_size, pool_windows

pool = pytest.importorskip("cygrad._C.pool", reason="pool kernels not built")
cython_backend = pytest.importorskip("cygrad.backend.cython_backend")


@pytest.fixture(autouse=True)
def _small_arrays_on_two_threads(parallel_small):
    """Two threads really split these tests' small arrays (conftest's parallel_small)."""

DTYPES = [np.float32, np.float64]


def windows(h, w, kernel, stride, padding, dilation, ceil_mode=False):
    """(hs, he, ws, we, hc, wc) as F.max_pool2d / F.avg_pool2d build them."""
    axes = []
    for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation):
        out = pool_out_size(size, k, s, p, d, ceil_mode)
        axes.append(pool_windows(size, k, s, p, d, out))
    (hs, he, hc), (ws, we, wc) = axes
    return hs, he, ws, we, hc, wc


@st.composite
def pool_cases(draw):
    p, h, w = draw(st.integers(0, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel, stride, padding, dilation = [], [], [], []
    for size in (h, w):
        d = draw(st.integers(1, 3))
        k = draw(st.integers(1, max(1, min(4, (size - 1) // d + 1))))
        kernel.append(k)
        dilation.append(d)
        stride.append(draw(st.integers(1, 3)))
        padding.append(draw(st.integers(0, ((k - 1) * d + 1) // 2)))
    ceil_mode = draw(st.booleans())
    return (p, h, w), kernel, stride, padding, dilation, ceil_mode, draw(st.sampled_from(DTYPES))


def data(shape, dt, seed, ties=False, nans=False):
    rng = np.random.default_rng(seed)
    x = (rng.integers(-3, 3, shape) if ties else rng.standard_normal(shape)).astype(dt)
    if nans:
        x[rng.random(shape) < 0.1] = np.nan
    return x


@settings(max_examples=250, deadline=None)
@given(case=pool_cases(), ties=st.booleans(), nans=st.booleans(), threads=st.sampled_from([1, 2]))
def test_max_pool_is_bitwise_the_twin(case, ties, nans, threads):
    shape, kernel, stride, padding, dilation, ceil_mode, dt = case
    hs, he, ws, we, _, _ = windows(*shape[1:], kernel, stride, padding, dilation, ceil_mode)
    x = data(shape, dt, sum(kernel) + sum(stride), ties, nans)
    out, idx = cython_backend.max_pool(x, hs, he, ws, we, *dilation, threads)
    ref, ref_idx = numpy_backend.max_pool(x, hs, he, ws, we, *dilation, 1)
    np.testing.assert_array_equal(out, ref)  # NaN where the twin has NaN
    np.testing.assert_array_equal(idx, ref_idx)
    g = data(out.shape, dt, 7)
    dx = cython_backend.max_pool_backward(g, idx, shape, threads)
    np.testing.assert_array_equal(dx, numpy_backend.max_pool_backward(g, idx, shape, 1))


@settings(max_examples=250, deadline=None)
@given(case=pool_cases(), include_pad=st.booleans(), divisor=st.sampled_from([0, 0, 3, -2]),
       threads=st.sampled_from([1, 2]))
def test_avg_pool_is_bitwise_the_twin(case, include_pad, divisor, threads):
    shape, kernel, stride, padding, _, ceil_mode, dt = case
    hs, he, ws, we, hc, wc = windows(*shape[1:], kernel, stride, padding, (1, 1), ceil_mode)
    if not include_pad:
        hc, wc = he - hs, we - ws
    x = data(shape, dt, 3)
    out = cython_backend.avg_pool(x, hs, he, ws, we, hc, wc, divisor, threads)
    np.testing.assert_array_equal(out, numpy_backend.avg_pool(x, hs, he, ws, we, hc, wc,
                                                              divisor, 1))
    g = data(out.shape, dt, 4)
    dx = cython_backend.avg_pool_backward(g, shape, hs, he, ws, we, hc, wc, divisor, threads)
    np.testing.assert_array_equal(dx, numpy_backend.avg_pool_backward(
        g, shape, hs, he, ws, we, hc, wc, divisor, 1))


@pytest.mark.parametrize("dt", DTYPES)
def test_adaptive_windows_are_bitwise_the_twin(dt):
    x = data((3, 7, 10), dt, 5, ties=True)
    (hs, he), (ws, we) = adaptive_windows(7, 3), adaptive_windows(10, 4)
    assert list(hs) == [0, 2, 4] and list(he) == [3, 5, 7]  # floor(i*7/3), ceil((i+1)*7/3)
    out, idx = cython_backend.max_pool(x, hs, he, ws, we, 1, 1, 2)
    ref = numpy_backend.max_pool(x, hs, he, ws, we, 1, 1, 1)
    assert np.array_equal(out, ref[0]) and np.array_equal(idx, ref[1])
    args = (hs, he, ws, we, he - hs, we - ws, 0)
    assert np.array_equal(cython_backend.avg_pool(x, *args, 2),
                          numpy_backend.avg_pool(x, *args, 1))
    g = data(out.shape, dt, 6)
    assert np.array_equal(cython_backend.avg_pool_backward(g, x.shape, *args, 2),
                          numpy_backend.avg_pool_backward(g, x.shape, *args, 1))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("padding,ceil_mode", [(0, False), (1, False), (0, True), (1, True)])
@pytest.mark.parametrize("values", ["normal", "ties", "nans", "infs"])
@pytest.mark.parametrize("width", [9, 16, 21, 35])
def test_two_by_two_stride_two_path_is_bitwise_the_twin(dt, padding, ceil_mode, values, width):
    """2x2 windows at stride 2 (most CNNs) take their own loop: its rows (one by one below 8
    outputs, else blocks of 8, the last one overlapping), edge windows (padding, ceil mode, odd
    sizes) and PyTorch's tie / NaN rule against the twin."""
    shape = (3, 7, width)
    hs, he, ws, we, _, _ = windows(7, width, (2, 2), (2, 2), (padding, padding), (1, 1),
                                   ceil_mode)
    x = data(shape, dt, 11, ties=values == "ties", nans=values == "nans")
    if values == "infs":
        x[np.random.default_rng(3).random(shape) < 0.5] = -np.inf
    for threads in (1, 2):
        out, idx = cython_backend.max_pool(x, hs, he, ws, we, 1, 1, threads)
        ref, ref_idx = numpy_backend.max_pool(x, hs, he, ws, we, 1, 1, 1)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(idx, ref_idx)


# ---------------------------------------------------------------- PyTorch's rule, our orders

def one_window(values):
    """One plane, one 2x2 window: (value, index)."""
    x = np.array(values, np.float64).reshape(1, 2, 2)
    z, o = np.zeros(1, np.int64), np.array([2], np.int64)
    out, idx = B.max_pool(x, z, o, z, o)
    return out[0, 0, 0], idx[0, 0, 0]


def test_ties_nan_and_minus_infinity_follow_pytorch():
    assert one_window([1, 3, 3, 2]) == (3, 1)  # the first maximum in (row, column) order
    value, index = one_window([1, np.nan, np.nan, 2])
    assert np.isnan(value) and index == 2  # NaN wins, the last one
    value, index = one_window([np.nan, np.nan, 1, 2])
    assert np.isnan(value) and index == 1
    assert one_window([-np.inf] * 4) == (-np.inf, 0)  # the window's first element


def test_empty_window_gives_minus_infinity_and_no_index():
    # every tap of a dilated window can fall into the padding: width 1, kernel 2, dilation 2,
    # padding 1 reads columns -1 and 1
    x = np.full((1, 1, 1), 5.0)
    hs, he, ws, we, _, _ = windows(1, 1, (1, 2), (1, 1), (0, 1), (1, 2))
    assert (ws[0], we[0]) == (1, 1)
    out, idx = B.max_pool(x, hs, he, ws, we, 1, 2)
    assert out[0, 0, 0] == -np.inf and idx[0, 0, 0] == -1
    assert B.max_pool_backward(np.ones((1, 1, 1)), idx, x.shape)[0, 0, 0] == 0


def test_backward_adds_in_ascending_output_order():
    # overlapping windows (kernel 2, stride 1) whose maxima share a pixel: its gradient sums
    # 1e8, 1, -1e8 in output order = 1 in float32 (other orders give 0)
    x = np.array([[[0, 0, 0], [0, 9, 0], [0, 0, 0]]], np.float32)
    hs, he, ws, we, _, _ = windows(3, 3, (2, 2), (1, 1), (0, 0), (1, 1))
    out, idx = B.max_pool(x, hs, he, ws, we)
    assert (idx == 4).all()
    g = np.array([[[1e8, 1], [-1e8, 3]]], np.float32)
    assert B.max_pool_backward(g, idx, x.shape)[0, 1, 1] == np.float32(3)
    expected = np.float32(0)
    for v in g.reshape(-1):
        expected = np.float32(expected + v)
    assert expected == 3


@pytest.mark.parametrize("dt", DTYPES)
def test_thread_and_batch_invariance(dt):
    x = data((64, 24, 24), dt, 8, ties=True)
    hs, he, ws, we, hc, wc = windows(24, 24, (3, 2), (2, 1), (1, 1), (1, 2))
    runs = []
    for threads in (1, 2, 5):
        out, idx = cython_backend.max_pool(x, hs, he, ws, we, 1, 2, threads)
        g = data(out.shape, dt, 9)
        dx = cython_backend.max_pool_backward(g, idx, x.shape, threads)
        avg = cython_backend.avg_pool(x, hs, he, ws, we, hc, wc, 0, threads)
        dav = cython_backend.avg_pool_backward(g, x.shape, hs, he, ws, we, hc, wc, 0, threads)
        runs.append((out, idx, dx, avg, dav))
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert np.array_equal(a, b)
    # a plane alone has the bits it has in the batch
    out, idx = cython_backend.max_pool(x[5:6], hs, he, ws, we, 1, 2, 1)
    assert np.array_equal(out, runs[0][0][5:6]) and np.array_equal(idx, runs[0][1][5:6])
    assert np.array_equal(cython_backend.avg_pool(x[5:6], hs, he, ws, we, hc, wc, 0, 1),
                          runs[0][3][5:6])


# ---------------------------------------------------------------- checks

def test_direct_calls_check_windows_and_indices():
    x = np.zeros((2, 4, 4))
    out, idx = np.empty((2, 2, 2)), np.empty((2, 2, 2), np.int64)
    ok = np.array([0, 2]), np.array([2, 4])
    pool.max_pool(x, out, idx, *ok, *ok, 1, 1, 1)
    with pytest.raises(ValueError, match=r"row window 1 is \[2, 5\)"):
        pool.max_pool(x, out, idx, ok[0], np.array([2, 5]), *ok, 1, 1, 1)
    with pytest.raises(ValueError, match=r"column window 0 is \[-1, 2\)"):
        pool.avg_pool(x, out, *ok, np.array([-1, 2]), ok[1], ok[1] - ok[0], ok[1] - ok[0], 0, 1)
    with pytest.raises(ValueError, match="3 starts and 2 ends"):
        pool.max_pool(x, out, idx, np.array([0, 1, 2]), ok[1], *ok, 1, 1, 1)
    with pytest.raises(ValueError, match="step must be positive"):
        pool.max_pool(x, out, idx, *ok, *ok, 0, 1, 1)
    bad = idx.copy()
    bad[1, 1, 1] = 16
    with pytest.raises(ValueError, match="1 indices outside planes of 16"):
        pool.max_pool_backward(np.ones((2, 2, 2)), bad, np.empty((2, 4, 4)), 2)


def test_seam_checks():
    x = np.zeros((2, 4, 4), np.float32)
    ok = np.array([0, 2]), np.array([2, 4])
    with pytest.raises(TypeError, match="int64"):
        B.max_pool(x, ok[0].astype(np.int32), ok[1], *ok)
    with pytest.raises(ValueError, match="planes"):
        B.avg_pool(x[0], *ok, *ok, ok[1] - ok[0], ok[1] - ok[0])
    with pytest.raises(TypeError, match="float32 or float64"):
        B.max_pool(x.astype(np.int32), *ok, *ok)
    with pytest.raises(ValueError, match="do not fit"):
        B.max_pool_backward(np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, 2), np.int32),
                            x.shape)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_2x2_rows_of_every_length(dt):
    """2x2 windows at stride 2 go through vectors of 8 (float32) / 4 (float64) outputs, a
    row's last block ending with it: every row length from 1 to 24 outputs, with ties, NaNs
    and -inf, against the numpy twin bitwise (values and indices)."""
    import cygrad
    import cygrad.nn.functional as F
    from cygrad import backend as B

    rng = np.random.default_rng(0)
    for w in range(2, 50):
        a = rng.integers(-3, 3, (2, 3, 6, w)).astype(dt)
        a[rng.random(a.shape) < 0.1] = np.nan
        a[rng.random(a.shape) < 0.05] = -np.inf
        y, i = F.max_pool2d(cygrad.tensor(a), 2, return_indices=True)
        with B.using("numpy"):
            y2, i2 = F.max_pool2d(cygrad.tensor(a), 2, return_indices=True)
        np.testing.assert_array_equal(y.numpy(), y2.numpy())
        np.testing.assert_array_equal(i.numpy(), i2.numpy())
