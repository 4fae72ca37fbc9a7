/* vmath.h -- exp, tanh and sigmoid that vectorise and stay exact (cygrad's contract).
 *
 * libm's tanhf/expf are scalar calls (20-40 ns an element); these are plain C loops over a
 * block of CG_BLOCK elements that the compiler turns into SIMD code. Every element runs the same
 * operations: range reduction, a fixed polynomial, a select between two formulas that are
 * both always computed -- no branch depends on the value.
 *
 * Position-independence: every element goes through one of the CG_NOINLINE block functions
 * below, a single compiled body with a constant trip count (a multiple of any vector width,
 * so no scalar remainder loop exists). Callers run the last partial block through the same
 * function on a zero-padded copy (cg_map_*). So an element's result depends on its value alone:
 * not on its position, the array's length or the thread that computed it.
 *
 * Accuracy (max error against a correctly rounded result, measured by tests/kernels/
 * test_vmath.py): tanh and sigmoid float32 <= 0.51 ulp (computed in double, see below),
 * float64 <= 2.5 ulp; exp <= 1 ulp; NaN in, NaN out; +-inf and +-0 handled.
 * The formulas (|x| = a, all arguments of exp are <= 0, so nothing overflows):
 *   exp(-a)     2^n * e^r, n = round(-a/ln2), r = -a - n*ln2 (ln2 in two parts), e^r a
 *               polynomial on |r| <= ln2/2; 2^n applied as two factors so that results in
 *               the subnormal range are rounded once.
 *   tanh(x)     a < 0.3 (float32) / 0.35 (float64): its Taylor series, odd, in x*x;
 *               otherwise (1 - e) / (1 + e), e = exp(-2a); the sign of x copied on.
 *   sigmoid(x)  e = exp(-a); 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0.
 */
#ifndef CG_VMATH_H
#define CG_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define CG_BLOCK 64 /* elements per block: a multiple of every SIMD width in use */

#if defined(__GNUC__) || defined(__clang__)
#define CG_NOINLINE __attribute__((noinline, unused))
#elif defined(_MSC_VER)
#define CG_NOINLINE __declspec(noinline)
#else
#define CG_NOINLINE
#endif

/* ------------------------------------------------------------------ scalar formulas
 * Only ever inlined into the block loops below. */

static inline float cg_bits_f32(int32_t i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline double cg_bits_f64(int64_t i)
{
    double f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* 2^n1 * 2^n2 as the two factors, n = n1 + n2 an integer-valued double in [-1080, 0] with
 * n1 = trunc(n / 2): each factor's exponent field is written from the bits of n_i + 1.5 * 2^52,
 * whose low bits hold n_i. No double -> int64 conversion: AVX2 has none, and with one the
 * compiler leaves the whole block loop scalar. The factors are those of (int64_t)n split as
 * k1 = k / 2, k2 = k - k1, so the result is the same. A NaN n gives some factor; the caller
 * multiplies it by a NaN, which stays NaN. */
static inline double cg_pow2_pair_f64(double p, double n)
{
    const double magic = 6755399441055744.0;
    double n1 = trunc(n * 0.5), n2 = n - n1;
    uint64_t m, b1, b2;
    double t1 = n1 + magic, t2 = n2 + magic;
    memcpy(&m, &magic, 8);
    memcpy(&b1, &t1, 8);
    memcpy(&b2, &t2, 8);
    b1 = (b1 - m + 1023u) << 52;
    b2 = (b2 - m + 1023u) << 52;
    double f1, f2;
    memcpy(&f1, &b1, 8);
    memcpy(&f2, &b2, 8);
    return p * f1 * f2;
}

/* e^a for a <= 0 (or NaN -> NaN). Below -104 the result is +0 (e^-104 < 2^-150 rounds to +0,
 * as the formula gives there): those lanes compute e^0 and are then set to +0, so that no
 * multiply underflows (an underflowing vector multiply takes a microcode assist of ~100+
 * cycles on Intel: a causal attention softmax, half of whose logits are -inf, ran 2.2x slower
 * than an unmasked one). Bitwise the formula with the argument clamped to -104: every
 * float32 a <= 0 checked. */
static inline float cg_expneg_f32(float a)
{
    const int gone = a < -104.0f;
    a = gone ? 0.0f : a;
    float n = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(a / ln2) */
    float r = a - n * 0.693359375f; /* ln2 = 0.693359375 - 2.12194440e-4; n*hi is exact */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f; /* Cephes expf: e^r = 1 + r + r^2 p(r), |r| <= ln2/2 */
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (r * r) * p + r + 1.0f;
    n = n >= -150.0f ? n : -150.0f; /* NaN -> -150: keeps the integer conversion defined */
    int32_t k = (int32_t)n, k1 = k / 2, k2 = k - k1; /* 2^k = 2^k1 * 2^k2, both normal */
    const float y = p * cg_bits_f32((k1 + 127) << 23) * cg_bits_f32((k2 + 127) << 23);
    return gone ? 0.0f : y;
}

static inline double cg_expneg_f64(double a) /* as cg_expneg_f32: +0 below -746 */
{
    const int gone = a < -746.0; /* e^-746 < 2^-1075: rounds to +0 */
    a = gone ? 0.0 : a;
    double n = (a * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
    double r = a - n * 6.93145751953125e-1; /* Cephes' two-part ln2; n*hi is exact */
    r = r - n * 1.42860682030941723212e-6;
    double p = 1.0 / 6227020800.0; /* Taylor to r^13: truncation < 6e-18 relative */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = (r * r) * p + r + 1.0;
    const double y = cg_pow2_pair_f64(p, n);
    return gone ? 0.0 : y;
}

static inline float cg_abs_f32(float x)
{
    uint32_t i;
    memcpy(&i, &x, 4);
    i &= 0x7fffffffu;
    memcpy(&x, &i, 4);
    return x;
}

static inline double cg_abs_f64(double x)
{
    uint64_t i;
    memcpy(&i, &x, 8);
    i &= 0x7fffffffffffffffull;
    memcpy(&x, &i, 8);
    return x;
}

static inline float cg_copysign_f32(float t, float x)
{
    uint32_t ti, xi;
    memcpy(&ti, &t, 4);
    memcpy(&xi, &x, 4);
    ti = (ti & 0x7fffffffu) | (xi & 0x80000000u);
    memcpy(&t, &ti, 4);
    return t;
}

static inline double cg_copysign_f64(double t, double x)
{
    uint64_t ti, xi;
    memcpy(&ti, &t, 8);
    memcpy(&xi, &x, 8);
    ti = (ti & 0x7fffffffffffffffull) | (xi & 0x8000000000000000ull);
    memcpy(&t, &ti, 8);
    return t;
}

/* float32 tanh and sigmoid are computed in double precision with shorter polynomials
 * (relative error < 1e-11) and rounded once to float: the result is the correctly rounded
 * value except when it lies within ~1e-11 relative of a rounding boundary (then it may be
 * the other neighbour), so never more than 0.5 ulp + 2e-4 ulp off. That matters: y = tanh(x)
 * near +-1 feeds dx = g * (1 - y*y), where each ulp of y moves dx by ~1e-5 relative. */

static inline double cg_expneg_d(double a)
{
    /* e^a for -746 < a <= 0 (NaN -> NaN): Taylor to r^9 (truncation < 1e-11). */
    double n = (a * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
    double r = a - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    double p = 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = (r * r) * p + r + 1.0;
    return cg_pow2_pair_f64(p, n);
}

static inline float cg_tanh1_f32(float xf)
{
    double x = xf, a = cg_abs_f64(x), z = a * a;
    double p = 5.9002744094558595e-04; /* Taylor to a^17 */
    p = p * z - 1.4558343870513183e-03;
    p = p * z + 3.5921280365724810e-03;
    p = p * z - 8.8632355299021966e-03;
    p = p * z + 2.1869488536155203e-02;
    p = p * z - 5.3968253968253968e-02;
    p = p * z + 1.3333333333333333e-01;
    p = p * z - 3.3333333333333333e-01;
    double small = a + (a * z) * p;
    double e = cg_expneg_d(-2.0 * (a > 20.0 ? 20.0 : a)); /* NaN stays NaN */
    double large = (1.0 - e) / (1.0 + e);
    return cg_copysign_f32((float)(a < 0.3 ? small : large), xf);
}

static inline float cg_sigmoid1_f32(float xf)
{
    double x = xf, a = cg_abs_f64(x);
    double e = cg_expneg_d(-(a > 745.0 ? 745.0 : a)); /* NaN stays NaN */
    return (float)((x >= 0.0 ? 1.0 : e) / (1.0 + e));
}

static inline double cg_tanh1_f64(double x)
{
    double a = cg_abs_f64(x), z = a * a;
    double p = -6.4516892156554306e-06; /* Taylor to a^27 */
    p = p * z + 1.5918905069328964e-05;
    p = p * z - 3.9278323883316830e-05;
    p = p * z + 9.6915379569294506e-05;
    p = p * z - 2.3912911424355248e-04;
    p = p * z + 5.9002744094558595e-04;
    p = p * z - 1.4558343870513183e-03;
    p = p * z + 3.5921280365724810e-03;
    p = p * z - 8.8632355299021966e-03;
    p = p * z + 2.1869488536155203e-02;
    p = p * z - 5.3968253968253968e-02;
    p = p * z + 1.3333333333333333e-01;
    p = p * z - 3.3333333333333333e-01;
    double small = a + (a * z) * p;
    double e = cg_expneg_f64(-2.0 * a);
    double large = (1.0 - e) / (1.0 + e);
    return cg_copysign_f64(a < 0.35 ? small : large, x);
}

static inline double cg_sigmoid1_f64(double x)
{
    double e = cg_expneg_f64(-cg_abs_f64(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* ------------------------------------------------------------------ block functions
 * Exactly CG_BLOCK elements each. Inputs are copied to local blocks first, so in and out may
 * be the same memory and the compiler needs no aliasing checks (which would add a second,
 * scalar version of the loop). */

#define CG_UNARY_BLOCK(name, type, formula)                                                   \
    static CG_NOINLINE void name(const type *x, type *y)                                      \
    {                                                                                         \
        type xb[CG_BLOCK], yb[CG_BLOCK];                                                      \
        memcpy(xb, x, sizeof xb);                                                             \
        for (int i = 0; i < CG_BLOCK; i++)                                                    \
            yb[i] = formula(xb[i]);                                                           \
        memcpy(y, yb, sizeof yb);                                                             \
    }

CG_UNARY_BLOCK(cg_tanh_block_f32, float, cg_tanh1_f32)
CG_UNARY_BLOCK(cg_tanh_block_f64, double, cg_tanh1_f64)
CG_UNARY_BLOCK(cg_sigmoid_block_f32, float, cg_sigmoid1_f32)
CG_UNARY_BLOCK(cg_sigmoid_block_f64, double, cg_sigmoid1_f64)
CG_UNARY_BLOCK(cg_expneg_block_f32, float, cg_expneg_f32)
CG_UNARY_BLOCK(cg_expneg_block_f64, double, cg_expneg_f64)

/* dx = g * (1 - y*y) (tanh) and dx = g * (y * (1 - y)) (sigmoid), from the output y. */
#define CG_GRAD_BLOCK(name, type, expr)                                                       \
    static CG_NOINLINE void name(const type *g, const type *y, type *dx)                      \
    {                                                                                         \
        type gb[CG_BLOCK], yb[CG_BLOCK], db[CG_BLOCK];                                        \
        memcpy(gb, g, sizeof gb);                                                             \
        memcpy(yb, y, sizeof yb);                                                             \
        for (int i = 0; i < CG_BLOCK; i++)                                                    \
            db[i] = expr;                                                                     \
        memcpy(dx, db, sizeof db);                                                            \
    }

CG_GRAD_BLOCK(cg_tanh_grad_block_f32, float, gb[i] * (1.0f - yb[i] * yb[i]))
CG_GRAD_BLOCK(cg_tanh_grad_block_f64, double, gb[i] * (1.0 - yb[i] * yb[i]))
CG_GRAD_BLOCK(cg_sigmoid_grad_block_f32, float, gb[i] * (1.0f - yb[i]) * yb[i])
CG_GRAD_BLOCK(cg_sigmoid_grad_block_f64, double, gb[i] * (1.0 - yb[i]) * yb[i])

/* ------------------------------------------------------------------ any length
 * Whole blocks in place, then the tail through the same block function on a zero-padded
 * copy. */

typedef void (*cg_unary_f32)(const float *, float *);
typedef void (*cg_unary_f64)(const double *, double *);
typedef void (*cg_binary_f32)(const float *, const float *, float *);
typedef void (*cg_binary_f64)(const double *, const double *, double *);

#define CG_MAP1(name, type, ftype)                                                            \
    static inline void name(ftype f, const type *x, type *y, long n)                          \
    {                                                                                         \
        long i = 0;                                                                           \
        for (; i + CG_BLOCK <= n; i += CG_BLOCK)                                              \
            f(x + i, y + i);                                                                  \
        if (i < n) {                                                                          \
            type xb[CG_BLOCK] = {0}, yb[CG_BLOCK];                                            \
            memcpy(xb, x + i, (size_t)(n - i) * sizeof(type));                                \
            f(xb, yb);                                                                        \
            memcpy(y + i, yb, (size_t)(n - i) * sizeof(type));                                \
        }                                                                                     \
    }

#define CG_MAP2(name, type, ftype)                                                            \
    static inline void name(ftype f, const type *a, const type *b, type *y, long n)           \
    {                                                                                         \
        long i = 0;                                                                           \
        for (; i + CG_BLOCK <= n; i += CG_BLOCK)                                              \
            f(a + i, b + i, y + i);                                                           \
        if (i < n) {                                                                          \
            type ab[CG_BLOCK] = {0}, bb[CG_BLOCK] = {0}, yb[CG_BLOCK];                        \
            memcpy(ab, a + i, (size_t)(n - i) * sizeof(type));                                \
            memcpy(bb, b + i, (size_t)(n - i) * sizeof(type));                                \
            f(ab, bb, yb);                                                                    \
            memcpy(y + i, yb, (size_t)(n - i) * sizeof(type));                                \
        }                                                                                     \
    }

CG_MAP1(cg_map1_f32, float, cg_unary_f32)
CG_MAP1(cg_map1_f64, double, cg_unary_f64)
CG_MAP2(cg_map2_f32, float, cg_binary_f32)
CG_MAP2(cg_map2_f64, double, cg_binary_f64)

/* ------------------------------------------------------------------ gelu and silu
 * (the transformer activations; elementwise.pyx's "gelu" and "silu" kernels)
 *
 * torch's formulas, term by term:
 *   gelu        x * 0.5 * (1 + erf(x / sqrt 2)),   dx = g * (cdf + x * pdf),
 *               cdf = 0.5 * (1 + erf(x / sqrt 2)), pdf = exp(-x*x / 2) / sqrt(2 pi)
 *   gelu_tanh   0.5 * x * (1 + tanh(u)), u = sqrt(2/pi) * (x + 0.044715 x^3),
 *               dx = g * (0.5 (1 + t) + 0.5 x (1 - t*t) sqrt(2/pi) (1 + 3 * 0.044715 x^2))
 *   silu        x * sigmoid(x),                    dx = g * s * (1 + x (1 - s))
 * float32 runs each formula in double and rounds once (as tanh and sigmoid above); its GELU's
 * 1 + erf is cg_erf1p_f64 below (vectorised), float64's erf is libm's (a call an element: the
 * same function of the value for every element, so exact in cygrad's sense, though not
 * vectorised); tanh, sigmoid and exp are this file's. */

#include <math.h>

#define CG_SQRT1_2 0.70710678118654752440
#define CG_SQRT_2_PI 0.79788456080286535588   /* sqrt(2 / pi) */
#define CG_INV_SQRT_2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */
#define CG_KAPPA 0.044715
#define CG_2_SQRTPI 1.12837916709551257390 /* 2 / sqrt(pi) */

static inline double cg_sigmoid_d(double x)
{
    double e = cg_expneg_f64(-cg_abs_f64(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

static inline double cg_gelu_d(double x) { return x * 0.5 * (1.0 + erf(x * CG_SQRT1_2)); }

/* 1 + erf(y) in double, for float32 results (GELU's cdf times 2), vectorisable and without the
 * cancellation of 1 + erf(y) for negative y: |y| < 1, 1 +- |y| P(y^2) (P: degree 9, relative
 * error 2e-14 against mpmath); |y| >= 1, erfc(|y|) = exp(-y^2) Q(u), u = (s - 20/51) / (14/51),
 * s = 1 / (1 + |y| / 2) (Q: degree 14, fitted on |y| in [1, 15]), taken as such for y < 0 and
 * from 2 for y > 0 (Q's relative error 1.6e-13). float32 GELU and erf results round
 * correctly in the tests (tests/kernels/test_vmath.py: at most 0.5001 ulp against mpmath;
 * libm's erf in 1 + erf(y) was off by up to 1.7e7 ulp below -5, where it cancels).
 * Coefficients fitted for cygrad by weighted least squares on Chebyshev nodes
 * (scripts/fit_erf.py prints them and their errors). Both halves are always computed (no
 * branch on the value); float64 keeps libm's erf (these 1e-13 are not its ulp). */
static const double cg_erf_small[10] = {
    -1.043935516855278e-07, 1.5292895987268221e-06, -1.4792485653691512e-05,
    0.00012046001671094133, -0.0008547918287737224, 0.0052239666526149465,
    -0.02686616894399163, 0.11283791657493636, -0.3761263890276825, 1.1283791670954924
};
static const double cg_erfc_large[15] = {
    -1.8818807390693493e-10, -4.136452673292605e-09, 7.275945692358559e-09,
    5.678333307618685e-08, -1.69468917960105e-07, -6.260521841679574e-07,
    3.146931871895719e-06, 9.11064800311149e-06, -5.807674625274238e-05,
    -0.0002501846602755935, 0.0009412982193162302, 0.012038261842147444, 0.057951976642921274,
    0.18323037045904686, 0.17371840860543347
};

/* The two halves for z = |y| >= 0: *small = erf(z) (its formula for z < 1) and *large =
 * erfc(z) (for z >= 1); a NaN z gives NaN in *large. */
static inline void cg_erf_halves(double z, double *small, double *large)
{
    double t = z * z;
    double p = cg_erf_small[0];
    for (int i = 1; i < 10; i++)
        p = p * t + cg_erf_small[i];
    double u = (1.0 / (1.0 + 0.5 * z)) * (51.0 / 14.0) - (10.0 / 7.0);
    double q = cg_erfc_large[0];
    for (int i = 1; i < 15; i++)
        q = q * u + cg_erfc_large[i];
    *small = z * p;
    *large = cg_expneg_f64(-t) * q;
}

static inline double cg_erf1p_f64(double y)
{
    double z = cg_abs_f64(y), a, e;
    cg_erf_halves(z, &a, &e);
    double small = y < 0.0 ? 1.0 - a : 1.0 + a;
    double large = y < 0.0 ? e : 2.0 - e;
    return z < 1.0 ? small : large; /* a NaN takes the large side: NaN from expneg */
}

/* erf(y) in double for float32 results, from the same two halves (no subtraction from 1
 * below |y| = 1, where erf is small). */
static inline double cg_erf_f32_d(double y)
{
    double z = cg_abs_f64(y), a, e;
    cg_erf_halves(z, &a, &e);
    double r = z < 1.0 ? a : 1.0 - e;        /* NaN: the right side */
    return y < 0.0 ? -r : (y > 0.0 ? r : y); /* +-0 and NaN as they come */
}

static inline double cg_erf_d(double y) { return erf(y); }

/* d erf / dy = 2 / sqrt(pi) exp(-y^2) */
static inline double cg_erf_grad_d(double g, double y)
{
    return g * (CG_2_SQRTPI * cg_expneg_f64(-(y * y)));
}

static inline double cg_gelu_f32_d(double x) { return x * 0.5 * cg_erf1p_f64(x * CG_SQRT1_2); }

static inline double cg_gelu_grad_f32_d(double g, double x)
{
    double cdf = 0.5 * cg_erf1p_f64(x * CG_SQRT1_2);
    double pdf = cg_expneg_f64(-0.5 * (x * x)) * CG_INV_SQRT_2PI;
    return g * (cdf + x * pdf);
}

static inline double cg_gelu_tanh_d(double x)
{
    double u = CG_SQRT_2_PI * (x + CG_KAPPA * (x * x * x));
    return 0.5 * x * (1.0 + cg_tanh1_f64(u));
}

static inline double cg_gelu_grad_d(double g, double x)
{
    double cdf = 0.5 * (1.0 + erf(x * CG_SQRT1_2));
    double pdf = cg_expneg_f64(-0.5 * (x * x)) * CG_INV_SQRT_2PI;
    return g * (cdf + x * pdf);
}

static inline double cg_gelu_tanh_grad_d(double g, double x)
{
    double x2 = x * x;
    double t = cg_tanh1_f64(CG_SQRT_2_PI * (x + CG_KAPPA * (x2 * x)));
    double left = 0.5 * (1.0 + t);
    double right = 0.5 * x * ((1.0 - t * t) * (CG_SQRT_2_PI * (1.0 + 3.0 * CG_KAPPA * x2)));
    return g * (left + right);
}

static inline double cg_silu_d(double x) { return x * cg_sigmoid_d(x); }

static inline double cg_silu_grad_d(double g, double x)
{
    double s = cg_sigmoid_d(x);
    return g * (s * (1.0 + x * (1.0 - s)));
}

#define CG_UNARY_BLOCK_D(name, type, formula)                                                 \
    static CG_NOINLINE void name(const type *x, type *y)                                      \
    {                                                                                         \
        type xb[CG_BLOCK], yb[CG_BLOCK];                                                      \
        memcpy(xb, x, sizeof xb);                                                             \
        for (int i = 0; i < CG_BLOCK; i++)                                                    \
            yb[i] = (type)formula((double)xb[i]);                                             \
        memcpy(y, yb, sizeof yb);                                                             \
    }

#define CG_BINARY_BLOCK_D(name, type, formula)                                                \
    static CG_NOINLINE void name(const type *g, const type *x, type *dx)                      \
    {                                                                                         \
        type gb[CG_BLOCK], xb[CG_BLOCK], db[CG_BLOCK];                                        \
        memcpy(gb, g, sizeof gb);                                                             \
        memcpy(xb, x, sizeof xb);                                                             \
        for (int i = 0; i < CG_BLOCK; i++)                                                    \
            db[i] = (type)formula((double)gb[i], (double)xb[i]);                              \
        memcpy(dx, db, sizeof db);                                                            \
    }

CG_UNARY_BLOCK_D(cg_gelu_block_f32, float, cg_gelu_f32_d)
CG_UNARY_BLOCK_D(cg_gelu_block_f64, double, cg_gelu_d)
CG_UNARY_BLOCK_D(cg_gelu_tanh_block_f32, float, cg_gelu_tanh_d)
CG_UNARY_BLOCK_D(cg_gelu_tanh_block_f64, double, cg_gelu_tanh_d)
CG_UNARY_BLOCK_D(cg_erf_block_f32, float, cg_erf_f32_d)
CG_UNARY_BLOCK_D(cg_erf_block_f64, double, cg_erf_d)
CG_BINARY_BLOCK_D(cg_erf_grad_block_f32, float, cg_erf_grad_d)
CG_BINARY_BLOCK_D(cg_erf_grad_block_f64, double, cg_erf_grad_d)
CG_UNARY_BLOCK_D(cg_silu_block_f32, float, cg_silu_d)
CG_UNARY_BLOCK_D(cg_silu_block_f64, double, cg_silu_d)
CG_BINARY_BLOCK_D(cg_gelu_grad_block_f32, float, cg_gelu_grad_f32_d)
CG_BINARY_BLOCK_D(cg_gelu_grad_block_f64, double, cg_gelu_grad_d)
CG_BINARY_BLOCK_D(cg_gelu_tanh_grad_block_f32, float, cg_gelu_tanh_grad_d)
CG_BINARY_BLOCK_D(cg_gelu_tanh_grad_block_f64, double, cg_gelu_tanh_grad_d)
CG_BINARY_BLOCK_D(cg_silu_grad_block_f32, float, cg_silu_grad_d)
CG_BINARY_BLOCK_D(cg_silu_grad_block_f64, double, cg_silu_grad_d)

#endif /* CG_VMATH_H */
