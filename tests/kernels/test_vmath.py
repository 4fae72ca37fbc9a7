"""The vectorised tanh, sigmoid and exp of vmath.h (through the elementwise and loss kernels):
accuracy in ulp against higher-precision references, special values, and bitwise exactness
(an element's result depends on its value only: not on its position, the array's length,
the thread count, a partial last block or the dtype path around it)."""

import numpy as np
import pytest
from exactness import on_threads
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cygrad import backend as B

pytestmark = pytest.mark.skipif("cython" not in B.available(), reason="cython backend not built")

mpmath = pytest.importorskip("mpmath")


def forward(name, x, threads=1):
    return on_threads(lambda: B.activation_forward(name, x), threads)


def ulps(got, ref, dtype):
    """|got - ref| in units of the last place of ref rounded to dtype (ref in higher precision)."""
    ref_d = np.asarray(ref, dtype=dtype)
    spacing = np.spacing(np.abs(ref_d)).astype(np.float64)
    return np.abs(got.astype(np.float64) - np.asarray(ref, dtype=np.float64)) / spacing


def float32_sample():
    """Every 4099th float32 bit pattern (all exponents, both signs) that is finite."""
    bits = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    return x[np.isfinite(x)]


def test_float32_tanh_and_sigmoid_are_within_half_an_ulp():
    # computed in double and rounded once: correctly rounded but for ties within 1e-11
    x = float32_sample()
    xd = x.astype(np.float64)
    with np.errstate(over="ignore"):
        references = {"tanh": np.tanh(xd), "sigmoid": 1 / (1 + np.exp(-xd))}
    for name, ref in references.items():
        err = ulps(forward(name, x), ref, np.float32)
        assert err.max() <= 0.5 + 1e-3, (name, x[err.argmax()], err.max())


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_float64_is_within_a_few_ulp(name):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-1, 1, 1500), rng.uniform(-25, 25, 1500),
                        rng.standard_normal(500) * 2.0 ** -rng.integers(1, 60, 500)])
    y = forward(name, x)
    mpmath.mp.prec = 113
    fn = (lambda v: mpmath.tanh(v)) if name == "tanh" else (lambda v: 1 / (1 + mpmath.exp(-v)))
    ref = np.array([float(fn(mpmath.mpf(float(v)))) for v in x])
    tail = np.array([float(fn(mpmath.mpf(float(v))) - mpmath.mpf(r)) for v, r in zip(x, ref)])
    err = np.abs((y - ref) - tail) / np.spacing(np.abs(ref))
    assert err.max() <= 2.5, (x[err.argmax()], err.max())


def test_exp_in_the_loss_is_within_an_ulp(dtype):
    # log_softmax_nll_backward computes exp(logp) with the vectorised exp
    rng = np.random.default_rng(2)
    logp = -rng.exponential(4.0, (200, 40)).astype(dtype)
    targets = np.zeros(200, dtype=np.intp)
    g = np.ones(200, dtype=dtype)
    with B.using("cython"):
        dx = B.log_softmax_nll_backward(logp, targets, g)
    e = dx.copy()
    e[:, 0] += 1  # undo the one-hot: this column is exp(logp) - 1 (rounded), skip it
    mpmath.mp.prec = 113
    ref = np.array([[float(mpmath.exp(mpmath.mpf(float(v)))) for v in row] for row in logp[:, 1:]])
    assert ulps(e[:, 1:], ref, dtype).max() <= 1.0


def test_exp_underflows_to_the_correctly_rounded_subnormal_or_zero(dtype):
    """Far below the normal range exp goes through subnormal results to +0 (below the cut,
    -104 / -746, without computing: e^-inf, a masked attention logit, is +0 at once)."""
    cut = -104.0 if dtype == np.float32 else -746.0
    tiny = np.finfo(dtype).smallest_subnormal
    lowest = np.log(float(np.finfo(dtype).tiny))  # e^lowest: the smallest normal
    logp = np.array([0.0, lowest + 1, lowest - 3, cut + 1, cut, np.nextafter(cut, -np.inf),
                     -1e30, -np.inf], dtype)
    with B.using("cython"):
        dx = B.log_softmax_nll_backward(logp[None, :], np.array([0]), np.ones(1, dtype))[0]
    e = dx[1:]  # exp(logp): column 0 is the target's, exp - 1
    mpmath.mp.prec = 113
    ref = np.array([float(mpmath.exp(mpmath.mpf(float(v)))) for v in logp[1:4]])
    assert ulps(e[:1], ref[:1], dtype).max() <= 1.0
    assert 0 < e[1] < np.finfo(dtype).tiny and 0 < e[2] and abs(e[1] - ref[1]) <= tiny
    assert abs(e[2] - ref[2]) <= tiny
    assert e[3:].tobytes() == np.zeros(4, dtype).tobytes()  # +0, never -0


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_special_values(name, dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, 1e-30, 50.0, -50.0, 800.0,
                  -800.0], dtype=dtype)
    y = forward(name, x)
    if name == "tanh":
        expected = [0.0, -0.0, 1.0, -1.0, np.nan, tiny, -tiny, 1e-30, 1.0, -1.0, 1.0, -1.0]
        assert np.signbit(y[1]) and not np.signbit(y[0])
    else:
        expected = [0.5, 0.5, 1.0, 0.0, np.nan, 0.5, 0.5, 0.5, 1.0, np.exp(-50.0), 1.0, 0.0]
    np.testing.assert_allclose(y, np.array(expected, dtype=dtype), rtol=2e-7 if dtype == np.float32
                               else 1e-15)
    assert y.dtype == dtype


@settings(max_examples=40, deadline=None)
@given(value=st.floats(-30, 30, width=32), size=st.integers(1, 300),
       name=st.sampled_from(["tanh", "sigmoid"]), dt=st.sampled_from([np.float32, np.float64]))
def test_a_value_gives_the_same_bits_at_every_position_and_length(value, size, name, dt):
    x = np.full(size, value, dtype=dt)
    y = forward(name, x)
    assert np.array_equal(y, np.full(size, y[0]))
    assert np.array_equal(forward(name, x[:1]), y[:1])  # alone: the padded last block


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float32, st.integers(1, 400), elements=st.floats(-20, 20, width=32)),
       start=st.integers(0, 100), name=st.sampled_from(["tanh", "sigmoid"]))
def test_slices_give_the_bits_of_the_whole(x, start, name):
    whole = forward(name, x)
    part = forward(name, x[start:])
    assert np.array_equal(part, whole[start:])


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_thread_count_and_gradients_are_exact(name, dtype):
    x = np.random.default_rng(5).standard_normal(100_003).astype(dtype) * 4
    one, two = forward(name, x, 1), forward(name, x, 2)
    assert np.array_equal(one, two)
    g = np.linspace(-1, 1, x.size, dtype=dtype)
    d1 = on_threads(lambda: B.activation_backward(name, g, one), 1)
    d2 = on_threads(lambda: B.activation_backward(name, g, one), 2)
    assert np.array_equal(d1, d2)
    # the gradient block agrees with the formula elementwise
    ref = g * (1 - one * one) if name == "tanh" else g * (1 - one) * one
    np.testing.assert_allclose(d1, ref, rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-7 if dtype == np.float32 else 1e-16)


def _gelu_reference(x):
    """x / 2 * erfc(-x / sqrt 2) in 40 digits (no cancellation for negative x)."""
    mpmath.mp.dps = 40
    return np.array([float(mpmath.mpf(float(v)) / 2 * mpmath.erfc(-mpmath.mpf(float(v))
                                                                  / mpmath.sqrt(2)))
                     for v in x])


def test_float32_exact_gelu_rounds_correctly_even_where_one_plus_erf_cancels():
    """float32 GELU (approximate='none', nanoGPT's nn.GELU()) runs vmath's 1 + erf: vectorised
    (libm's erf was a call an element: 15x torch's time) and without the cancellation of
    1 + erf(x / sqrt 2) below x = -5 (libm's result was off by up to 1.7e7 ulp there)."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(0, 3, 3000), np.linspace(-20, 8, 1500)]).astype(np.float32)
    y = B.activation_forward("gelu", x, "none")
    ref = _gelu_reference(x)
    assert ulps(y, ref, np.float32).max() <= 0.5001
    g = np.ones_like(x)
    dx = B.activation_backward("gelu", g, x, "none")  # gelu saves its input
    mpmath.mp.dps = 40
    dref = np.array([float(mpmath.erfc(-mpmath.mpf(float(v)) / mpmath.sqrt(2)) / 2
                           + mpmath.mpf(float(v)) * mpmath.npdf(mpmath.mpf(float(v))))
                     for v in x])
    assert ulps(dx, dref, np.float32).max() <= 0.5001


def test_float32_exact_gelu_special_values_and_bits_at_any_position():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 30.0, -30.0], np.float32)
    y = B.activation_forward("gelu", x, "none")
    assert y[0] == 0 and y[2] == np.inf and np.isnan(y[3]) and np.isnan(y[4])
    assert y[7] == 30.0 and y[8] == 0.0
    for size in (1, 63, 64, 65, 1000):
        for value in (-7.5, -1.0, -0.999, 0.3, 2.0):
            z = np.full(size, value, np.float32)
            out = B.activation_forward("gelu", z, "none")
            assert np.array_equal(out, np.full(size, out[0]))
    big = np.random.default_rng(2).normal(0, 4, 100_003).astype(np.float32)
    one = on_threads(lambda: B.activation_forward("gelu", big, "none"), 1)
    two = on_threads(lambda: B.activation_forward("gelu", big, "none"), 2)
    assert np.array_equal(one, two)
    assert np.array_equal(B.activation_forward("gelu", big[17:], "none"), one[17:])


def test_float32_erf_kernel_rounds_correctly_and_keeps_bits():
    """torch.erf on float32: vmath's two halves, vectorised (was math.erf a call an element
    through np.frompyfunc: 70x torch's time); float64 stays libm's erf."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0, 2, 3000), np.linspace(-6, 6, 1201),
                        [1e-30, -1e-30, 1e-6, 0.99999994, 1.0]]).astype(np.float32)
    y = B.activation_forward("erf", x, 0.0)
    mpmath.mp.dps = 40
    ref = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in x])
    assert ulps(y, ref, np.float32).max() <= 0.5001
    dref = np.array([float(2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-mpmath.mpf(float(v)) ** 2))
                     for v in x])
    dx = B.activation_backward("erf", np.ones_like(x), x, 0.0)
    assert ulps(dx, dref, np.float32).max() <= 0.5001
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    out = B.activation_forward("erf", special, 0.0)
    assert out[0] == 0 and not np.signbit(out[0]) and out[1] == 0 and np.signbit(out[1])
    assert out[2] == 1 and out[3] == -1 and np.isnan(out[4])
    big = rng.normal(0, 2, 100_003).astype(np.float32)
    one = on_threads(lambda: B.activation_forward("erf", big, 0.0), 1)
    assert np.array_equal(one, on_threads(lambda: B.activation_forward("erf", big, 0.0), 2))
    assert np.array_equal(B.activation_forward("erf", big[5:], 0.0), one[5:])
    x64 = rng.normal(0, 2, 1000)
    import math

    assert np.array_equal(B.activation_forward("erf", x64, 0.0), [math.erf(v) for v in x64])
