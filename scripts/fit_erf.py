"""Fit the coefficients of vmath.h's erf halves (cg_erf_small, cg_erfc_large) and print them
in C, with the largest relative error measured against mpmath.

    python scripts/fit_erf.py        (needs mpmath; a minute)

erf(z) = z * P(z^2) for z in [0, 1] (P degree 9) and erfc(z) = exp(-z^2) * Q(u) for z in
[1, 15], u = (s - 20/51) / (14/51), s = 1 / (1 + z/2) (Q degree 14): each a least-squares fit
of the relative error on Chebyshev nodes (weighted by 1 / the function), which is within a
small factor of the minimax error and needs no Remez iteration.
"""

import mpmath
import numpy as np

mpmath.mp.dps = 40


def fit_small():
    t = (1 - np.cos(np.linspace(0, np.pi, 1200))) / 2  # Chebyshev nodes on [0, 1]
    z = np.sqrt(t)
    p = np.array([float(mpmath.erf(mpmath.mpf(v)) / v) if v > 0 else
                  float(2 / mpmath.sqrt(mpmath.pi)) for v in z])
    v = np.vander(t, 10, increasing=True)
    c, *_ = np.linalg.lstsq(v / p[:, None], np.ones_like(p), rcond=None)
    return c


def fit_large():
    k = np.cos(np.linspace(0, np.pi, 1500))  # Chebyshev nodes of u on [-1, 1]
    s = 20 / 51 + 14 / 51 * k
    z = (1 / s - 1) * 2
    q = np.array([float(mpmath.erfc(mpmath.mpf(v)) * mpmath.exp(mpmath.mpf(v) ** 2))
                  for v in z])
    v = np.polynomial.chebyshev.chebvander(k, 14)
    c, *_ = np.linalg.lstsq(v / q[:, None], np.ones_like(q), rcond=None)
    return np.polynomial.chebyshev.cheb2poly(c)


def horner(c, x):
    r = np.full_like(x, c[-1])
    for coef in c[-2::-1]:
        r = r * x + coef
    return r


def main():
    small, large = fit_small(), fit_large()
    z = np.linspace(0, 1, 4001)[1:]
    ref = np.array([float(mpmath.erf(mpmath.mpf(v))) for v in z])
    print(f"// erf, z in (0, 1]: {np.max(np.abs(z * horner(small, z * z) - ref) / ref):.2e}")
    z = np.linspace(1, 15, 4001)
    u = (1 / (1 + 0.5 * z)) * (51 / 14) - 10 / 7
    ref = np.array([float(mpmath.erfc(mpmath.mpf(v)) * mpmath.exp(mpmath.mpf(v) ** 2))
                    for v in z])
    print(f"// erfc * exp(z^2), z in [1, 15]: {np.max(np.abs(horner(large, u) - ref) / ref):.2e}")
    for name, c in (("cg_erf_small", small), ("cg_erfc_large", large)):
        values = ", ".join(repr(float(x)) for x in c[::-1])  # Horner's order
        print(f"static const double {name}[{len(c)}] = {{{values}}};")


if __name__ == "__main__":
    main()
