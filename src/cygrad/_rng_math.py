"""PyTorch's CPU floating-point sequences for its distributions, reproduced bit for bit in numpy.

torch compiles its random kernels for x86-64 with AVX2 and FMA, and the compiler contracts
`a * b + c` into one fused multiply-add (a single rounding). numpy has no fma, so it is emulated
here exactly:

- fma32: a float32 product is exact in float64, so RN32(a*b + c) is the float64 sum rounded to
  float32, except where that float64 sum sits exactly halfway between two float32 numbers; there
  the sign of the float64 rounding error picks the side (round-to-odd, Boldo & Melquiond 2008).
- fma64: Dekker's exact product a*b = ph + pl and Knuth's exact sum give a*b + c = th + tl + pl;
  RN(th + RO(tl + pl)) is then the correctly rounded fma, RO being round-to-odd.

`box_muller16_avx2` follows torch's float32 normal kernel for contiguous tensors of 16 elements or
more (`normal_fill_16_AVX2` with the Cephes-style `log256_ps` and `sincos256_ps` of
avx_mathfun.h), operation by operation, with the contractions GCC makes in torch's AVX2 build.
Verified against torch 2.13 (CPU capability AVX2) on millions of draws: no bit differs.
"""

import math

import numpy as np

_F32 = np.float32
_CHUNK = 1 << 16     # elements per pass: the temporaries then stay in cache (2-5x faster)
_ODD_FIX_BITS = 0x1FFFFFFF  # the 29 bits a float64 mantissa has beyond a float32's
_HALFWAY = 0x10000000
_EXPONENT = 0x7FF0000000000000
_TINY = (1023 - 125) << 52      # float64 exponent field of 2**-125


def chunked(fn, x, dtype, *args):
    """fn(x[i:j], *args) over blocks of the leading axis of x, into one array of dtype."""
    out = np.empty(x.shape, dtype)
    step = max(_CHUNK // max(x[0].size, 1), 1) if x.ndim > 1 else _CHUNK
    for i in range(0, len(x), step):
        out[i:i + step] = fn(x[i:i + step], *args)
    return out


def _two_sum(a, b):
    """s, e with s = RN(a + b) and a + b = s + e exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _to_odd(s, err):
    """s (float64) nudged to round-to-odd: where the sum was inexact (err != 0) and s is even,
    one ulp toward err. An even s steps to its odd neighbour by +-1 on its bit pattern: +1 grows
    the magnitude, -1 shrinks it (from a power of two down into the binade below, as it should)."""
    bits = s.view(np.int64)
    even_inexact = ((bits & 1) == 0) & (err != 0)
    grow = (err > 0) == (s > 0)
    return (bits + even_inexact * np.where(grow, 1, -1)).view(np.float64)


def fma32(a, b, c):
    """RN32(a * b + c) for float32 values, one rounding (at least one argument an array)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, c)))
    p = a * b                                   # exact: 24 + 24 bits
    s = p + c
    out = s.astype(_F32)
    # double rounding only bites where s is a float32 midpoint, or below float32's normal range
    bits = s.view(np.int64)
    risky = ((bits & _ODD_FIX_BITS) == _HALFWAY) | ((bits & _EXPONENT) < _TINY)
    if risky.any():
        s, err = _two_sum(p[risky], c[risky])
        out[risky] = _to_odd(s, err).astype(_F32)
    return out


def _split(a):
    """Veltkamp: a = hi + lo with 26-bit halves."""
    t = a * 134217729.0  # 2**27 + 1
    hi = t - (t - a)
    return hi, a - hi


def fma64(a, b, c):
    """RN64(a * b + c) for float64 a, b, c (broadcast), one rounding."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, c)))
    ph = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    pl = ((ah * bh - ph) + ah * bl + al * bh) + al * bl     # a*b = ph + pl exactly
    th, tl = _two_sum(c, ph)
    s, err = _two_sum(tl, pl)
    return th + _to_odd(s, err)


# ---------------------------------------------------------------------- avx_mathfun in float32

_LOG_P = [_F32(v) for v in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                            1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                            3.3333331174e-1)]
_LOG_Q1, _LOG_Q2 = _F32(-2.12194440e-4), _F32(0.693359375)
_SQRTHF = _F32(0.707106781186547524)
_FOPI = _F32(1.27323954473516)                          # 4 / pi
_DP = [_F32(v) for v in (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8)]
_COS_P = [_F32(v) for v in (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)]
_SIN_P = [_F32(v) for v in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)]
_ONE, _HALF = _F32(1.0), _F32(0.5)


def _log256(x):
    """log256_ps for x in (0, 1]: x = m * 2**e, m in [sqrt(1/2), sqrt(2)), log = e*ln2 + poly."""
    bits = x.view(np.int32)
    e = ((bits >> 23) - 127).astype(_F32) + _ONE
    m = ((bits & ~0x7F800000) | 0x3F000000).view(_F32)     # mantissa in [0.5, 1)
    small = m < _SQRTHF
    e = e - np.where(small, _ONE, _F32(0))
    m = (m - _ONE) + np.where(small, m, _F32(0))
    z = m * m
    y = np.full_like(m, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = fma32(y, m, p)
    y = y * m
    y = fma32(y, z, e * _LOG_Q1)
    y = y - z * _HALF                                       # z * 0.5 is exact
    return (m + y) + e * _LOG_Q2                            # e * q2 is exact


def _sincos256(x):
    """sincos256_ps for x >= 0: reduce by pi/4 in three parts, two polynomials, octant signs."""
    j = (x * _FOPI).astype(np.int32)                        # truncation, as cvttps
    j = (j + 1) & ~1
    y = j.astype(_F32)
    for dp in _DP:
        x = fma32(y, dp, x)
    poly = (j & 2) == 0
    sin_negative = (j & 4) != 0
    cos_negative = (~(j - 2) & 4) != 0
    z = x * x
    yc = fma32(fma32(np.full_like(z, _COS_P[0]), z, _COS_P[1]), z, _COS_P[2]) * z
    yc = fma32(yc, z, -(z * _HALF)) + _ONE
    ys = fma32(fma32(np.full_like(z, _SIN_P[0]), z, _SIN_P[1]), z, _SIN_P[2]) * z
    ys = fma32(ys, x, x)
    # the select as the kernel does it (masks, then adds), so signed zeros come out the same
    zero = _F32(0)
    sin_from_ys, sin_from_yc = np.where(poly, ys, zero), np.where(poly, zero, yc)
    sin = sin_from_yc + sin_from_ys
    cos = (yc - sin_from_yc) + (ys - sin_from_ys)
    return np.where(sin_negative, -sin, sin), np.where(cos_negative, -cos, cos)


def box_muller16_avx2(u, mean, std):
    """torch's float32 normal_fill_16_AVX2 on rows of 16 uniforms u (shape (k, 16), float32).

    Per row: u1 = 1 - u[:8], u2 = u[8:]; r = sqrt(-2 log u1), theta = 2 pi u2;
    out[:8] = fma(r cos theta, std, mean), out[8:] = fma(r sin theta, std, mean).
    """
    u1 = _ONE - u[:, :8]
    u2 = u[:, 8:]
    radius = np.sqrt(_F32(-2.0) * _log256(u1))
    sin, cos = _sincos256(_F32(2 * np.pi) * u2)
    out = np.empty_like(u)
    out[:, :8] = fma32(radius * cos, _F32(std), _F32(mean))
    out[:, 8:] = fma32(radius * sin, _F32(std), _F32(mean))
    return out


def libm(fn, x):
    """fn (math.log, math.cos, math.sin: the C library's functions, which torch's kernel calls
    element by element) over the elements of x. numpy's own SIMD versions differ from the C
    library's in the last bit for some inputs on some CPUs (its AVX-512 float64 log: 0.3% of
    uniform inputs), so they cannot stand in for it."""
    return np.fromiter(map(fn, x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def box_muller16_f64(u, mean, std):
    """torch's normal_fill_16<double> on rows of 16 uniforms u (shape (k, 16), float64).

    Same map as the float32 kernel, with the C library's log, cos and sin in double.
    """
    radius = np.sqrt(-2.0 * libm(math.log, 1.0 - u[:, :8]))
    theta = (2.0 * np.pi) * u[:, 8:]
    out = np.empty_like(u)
    out[:, :8] = fma64(radius * libm(math.cos, theta), std, mean)
    out[:, 8:] = fma64(radius * libm(math.sin, theta), std, mean)
    return out
