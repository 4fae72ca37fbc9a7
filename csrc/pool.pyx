"""Pooling kernels: max pooling with its indices, average pooling, and their backward passes.

Layout: x (P, H, W) C-contiguous, P = N*C image planes pooled independently; outputs (P, OH, OW).
The windows come as four int64 arrays made by the caller (cygrad/ops/conv.py): output row oy
pools the input rows hs[oy], hs[oy] + dh, ... below he[oy], output column ox the columns
ws[ox], ws[ox] + dw, ... below we[ox]. They are already clipped to the image (padding is never
read), so one description serves plain, padded, dilated, ceil-mode and adaptive windows.

Order is part of the contract, and none depends on the plane, the batch or the thread count:
- max_pool scans a window in ascending (row, column) and keeps a value that is greater than
  the running maximum or is NaN (so the first of tied maxima wins and the last NaN; the running
  maximum starts at -inf and its index at the window's first element): PyTorch's rule.
  Indices are flat per plane, row * W + column. A window can be empty only when dilation and
  padding put every tap outside the image: it gives -inf, like PyTorch, and the index -1 (no
  input; PyTorch's index there points at an unrelated element), whose gradient is dropped.
- avg_pool sums a window from +0.0 in ascending (row, column), then divides once.
- both backward passes zero dx and then visit the outputs of a plane in ascending (oy, ox),
  adding each one's gradient into its pixel(s): a pixel's sum gets its terms in that order.
Threads split whole planes. Every window and index is checked here before any loop runs.
"""

from cython.parallel cimport prange

from arrays cimport cg_threads_for, cg_threads_init
from cython cimport floating
from libc.stdint cimport int64_t
from libc.math cimport INFINITY


cg_threads_init()

# Pixels of the planes below which a pool runs on one thread whatever it is given (an OpenMP
# region costs ~50-200 us under cygrad's passive wait; conv.pyx's serial_below). 0: every size
# takes the parallel path (tests do).
serial_below = 1 << 20


def _check_windows(const int64_t[::1] starts, const int64_t[::1] ends, Py_ssize_t extent,
                   Py_ssize_t count, Py_ssize_t step, str axis):
    """Every window inside [0, extent), `count` of them, a positive step."""
    cdef Py_ssize_t o
    if starts.shape[0] != count or ends.shape[0] != count:
        raise ValueError(f"{axis} windows: {starts.shape[0]} starts and {ends.shape[0]} ends "
                         f"for {count} outputs")
    if step < 1:
        raise ValueError(f"{axis} window step must be positive, got {step}")
    for o in range(count):
        if not 0 <= starts[o] <= ends[o] <= extent:
            raise ValueError(f"{axis} window {o} is [{starts[o]}, {ends[o]}), not a range "
                             f"inside [0, {extent})")


cdef inline void _max_window(const floating *plane, floating *out, int64_t *idx, Py_ssize_t y0,
                             Py_ssize_t y1, Py_ssize_t x0, Py_ssize_t x1, Py_ssize_t W,
                             Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One output: its window (rows y0, y0 + dh, ... < y1, columns likewise) in ascending
    (row, column)."""
    cdef Py_ssize_t y, xx, best = y0 * W + x0 if y0 < y1 and x0 < x1 else -1
    cdef floating v, m = -INFINITY
    y = y0
    while y < y1:
        xx = x0
        while xx < x1:
            v = plane[y * W + xx]
            if v > m or v != v:
                m = v
                best = y * W + xx
            xx = xx + dw
        y = y + dh
    out[0] = m
    idx[0] = best


cdef void _max_plane(const floating *plane, floating *out, int64_t *idx, const int64_t *hs,
                     const int64_t *he, const int64_t *ws, const int64_t *we, Py_ssize_t W,
                     Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t a,
                     Py_ssize_t b, Py_ssize_t sw, Py_ssize_t taps) noexcept nogil:
    """One plane of max_pool. Outputs a <= ox < b have full windows spaced sw apart (taps
    columns each): for them a row of outputs takes one window row and one column tap at a
    time, which keeps each output's order (ascending (row, column)) and runs 2-3x faster
    than window by window; the others go window by window."""
    cdef Py_ssize_t oy, ox
    cdef floating *m
    cdef int64_t *best
    for oy in range(OH):
        m = out + oy * OW
        best = idx + oy * OW
        for ox in range(a):
            _max_window(plane, m + ox, best + ox, hs[oy], he[oy], ws[ox], we[ox], W, dh, dw)
        for ox in range(b, OW):
            _max_window(plane, m + ox, best + ox, hs[oy], he[oy], ws[ox], we[ox], W, dh, dw)
        if a == b:
            continue
        if sw == 2 and taps == 2 and dw == 1 and dh == 1 and he[oy] - hs[oy] == 2:
            # 2x2 windows at stride 2 (most CNNs): each output's four taps in registers
            _max_2x2(plane + hs[oy] * W + ws[a], m + a, best + a, hs[oy] * W + ws[a], W, b - a)
        elif sw == 2 and taps == 2 and dw == 1:  # 2-column windows, stride 2: constants inlined
            _max_run(plane, m, best, hs[oy], he[oy], ws[a], W, a, b, dh, 2, 2, 1)
        else:
            _max_run(plane, m, best, hs[oy], he[oy], ws[a], W, a, b, dh, sw, taps, dw)


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* n outputs of 2x2 windows spaced 2 apart, the first at r0 (flat index base), rows r0 and
       r1 = r0 + W: output ox takes r0[2ox], r0[2ox + 1], r1[2ox], r1[2ox + 1] in that order by
       _max_window's rule (a tap replaces the running maximum when it is greater or NaN; the
       first tap always replaces the running -inf or keeps -inf with the same index, so it is
       taken as it is). Integer selects on the values' bits and on the index, with all-ones or
       zero masks: the compiler keeps them as selects and vectorizes across outputs (float
       selects had become branches, mispredicted about every other output). */
    #define CG_TAKE(T, U, v, vb, offset)                                                     \\
        take = -(U)((v > mm) | (v != v));                                                    \\
        mb = (vb & take) | (mb & ~take);                                                     \\
        memcpy(&mm, &mb, sizeof(T));                                                         \\
        take64 = -(int64_t)(take & 1);                                                       \\
        at = ((offset) & take64) | (at & ~take64)
    #define CG_MAX_2X2_ONE(T, U, ox)                                                         \\
        do {                                                                                 \\
            T mm = r0[2 * (ox)], v1 = r0[2 * (ox) + 1], v2 = r1[2 * (ox)],                   \\
              v3 = r1[2 * (ox) + 1];                                                         \\
            U mb, b1, b2, b3, take;                                                          \\
            int64_t at = 0, take64;                                                          \\
            memcpy(&mb, &mm, sizeof(T));                                                     \\
            memcpy(&b1, &v1, sizeof(T));                                                     \\
            memcpy(&b2, &v2, sizeof(T));                                                     \\
            memcpy(&b3, &v3, sizeof(T));                                                     \\
            CG_TAKE(T, U, v1, b1, 1);                                                        \\
            CG_TAKE(T, U, v2, b2, W);                                                        \\
            CG_TAKE(T, U, v3, b3, W + 1);                                                    \\
            m[ox] = mm;                                                                      \\
            best[ox] = base + 2 * (ox) + at;                                                 \\
        } while (0)
    /* Blocks of 8 outputs (a fixed count the compiler turns into vector selects), the last
       block ending at n (it may redo a few outputs of the one before: the same values); a row
       of fewer than 8 outputs goes one by one. */
    #define CG_MAX_2X2(NAME, T, U)                                                           \\
    static void NAME(const T *restrict r0, const T *restrict r1, T *restrict m,              \\
                     int64_t *restrict best, int64_t base, int64_t W, Py_ssize_t n)          \\
    {                                                                                        \\
        Py_ssize_t ox, k;                                                                    \\
        if (n < 8) {                                                                         \\
            for (ox = 0; ox < n; ox++)                                                       \\
                CG_MAX_2X2_ONE(T, U, ox);                                                    \\
            return;                                                                          \\
        }                                                                                    \\
        for (ox = 0;; ox += 8) {                                                             \\
            if (ox > n - 8)                                                                  \\
                ox = n - 8;                                                                  \\
            for (k = 0; k < 8; k++)                                                          \\
                CG_MAX_2X2_ONE(T, U, ox + k);                                                \\
            if (ox == n - 8)                                                                 \\
                break;                                                                       \\
        }                                                                                    \\
    }
    CG_MAX_2X2(cg_max_2x2_f32, float, uint32_t)
    CG_MAX_2X2(cg_max_2x2_f64, double, uint64_t)
    /* The same rule on whole vectors of L outputs (gcc's vector extensions; 32-byte vectors:
       the rows of a CNN's pools are short): each row's L window pairs deinterleaved into
       their left and right taps, the takes as lane masks, the offsets as int lanes; blocks
       end at n as above (a block may redo outputs of the one before: the same values). Rows
       of fewer than L outputs go to the scalar routine. */
    #if defined(__GNUC__) && !defined(__clang__) && !defined(CG_NO_VECTOR_EXT)
    #define CG_POOL_VECTORS 1
    #define CG_MAX_2X2_VEC(NAME, SCALAR, T, I, L)                                            \
    typedef T NAME##_v __attribute__((vector_size(32)));                                     \
    typedef T NAME##_u __attribute__((vector_size(32), aligned(sizeof(T)), may_alias));      \
    typedef I NAME##_i __attribute__((vector_size(32)));                                     \
    static void NAME(const T *restrict r0, const T *restrict r1, T *restrict m,              \
                     int64_t *restrict best, int64_t base, int64_t W, Py_ssize_t n)          \
    {                                                                                        \
        NAME##_i even, odd;                                                                  \
        Py_ssize_t ox, l;                                                                    \
        if (n < L) {                                                                         \
            SCALAR(r0, r1, m, best, base, W, n);                                             \
            return;                                                                          \
        }                                                                                    \
        for (l = 0; l < L; l++) {                                                            \
            even[l] = (I)(2 * l);                                                            \
            odd[l] = (I)(2 * l + 1);                                                         \
        }                                                                                    \
        for (ox = 0;; ox += L) {                                                             \
            if (ox > n - L)                                                                  \
                ox = n - L;                                                                  \
            NAME##_v x0 = *(const NAME##_u *)(r0 + 2 * ox);                                  \
            NAME##_v x1 = *(const NAME##_u *)(r0 + 2 * ox + L);                              \
            NAME##_v y0 = *(const NAME##_u *)(r1 + 2 * ox);                                  \
            NAME##_v y1 = *(const NAME##_u *)(r1 + 2 * ox + L);                              \
            NAME##_v taps[3] = {__builtin_shuffle(x0, x1, odd),                              \
                                __builtin_shuffle(y0, y1, even),                             \
                                __builtin_shuffle(y0, y1, odd)};                             \
            const I offsets[3] = {1, (I)W, (I)W + 1};                                        \
            NAME##_v mm = __builtin_shuffle(x0, x1, even);                                   \
            NAME##_i at = even - even;                                                       \
            for (int t = 0; t < 3; t++) {                                                    \
                NAME##_i take = (taps[t] > mm) | (taps[t] != taps[t]);                       \
                mm = (NAME##_v)(((NAME##_i)taps[t] & take) | ((NAME##_i)mm & ~take));        \
                at = (offsets[t] & take) | (at & ~take);                                     \
            }                                                                                \
            *(NAME##_u *)(m + ox) = mm;                                                      \
            for (l = 0; l < L; l++)                                                          \
                best[ox + l] = base + 2 * (ox + l) + (int64_t)at[l];                         \
            if (ox == n - L)                                                                 \
                break;                                                                       \
        }                                                                                    \
    }
    CG_MAX_2X2_VEC(cg_max_2x2_vec_f32, cg_max_2x2_f32, float, int32_t, 8)
    CG_MAX_2X2_VEC(cg_max_2x2_vec_f64, cg_max_2x2_f64, double, int64_t, 4)
    #else
    #define cg_max_2x2_vec_f32 cg_max_2x2_f32
    #define cg_max_2x2_vec_f64 cg_max_2x2_f64
    #endif
    """
    void cg_max_2x2_f32(const float *r0, const float *r1, float *m, int64_t *best, int64_t base,
                        int64_t W, Py_ssize_t n) noexcept nogil
    void cg_max_2x2_f64(const double *r0, const double *r1, double *m, int64_t *best,
                        int64_t base, int64_t W, Py_ssize_t n) noexcept nogil
    void cg_max_2x2_vec_f32(const float *r0, const float *r1, float *m, int64_t *best,
                            int64_t base, int64_t W, Py_ssize_t n) noexcept nogil
    void cg_max_2x2_vec_f64(const double *r0, const double *r1, double *m, int64_t *best,
                            int64_t base, int64_t W, Py_ssize_t n) noexcept nogil


cdef inline void _max_2x2(const floating *r0, floating *m, int64_t *best, int64_t base,
                          Py_ssize_t W, Py_ssize_t n) noexcept nogil:
    """n outputs of 2x2 windows spaced 2 apart (cg_max_2x2 above)."""
    if floating is float:
        cg_max_2x2_vec_f32(r0, r0 + W, m, best, base, W, n)
    else:
        cg_max_2x2_vec_f64(r0, r0 + W, m, best, base, W, n)


cdef inline void _max_run(const floating *plane, floating *m, int64_t *best, Py_ssize_t y0,
                          Py_ssize_t y1, Py_ssize_t x0, Py_ssize_t W, Py_ssize_t a, Py_ssize_t b,
                          Py_ssize_t dh, Py_ssize_t sw, Py_ssize_t taps,
                          Py_ssize_t dw) noexcept nogil:
    """Outputs a <= ox < b of one row, full windows starting at x0 + (ox - a)*sw: one window
    row and one column tap at a time, each output taking the tap by selects (not branches:
    the data decide them)."""
    cdef Py_ssize_t ox, y, j, xx
    cdef const floating *row
    cdef floating v, mm
    cdef int take
    for ox in range(a, b):
        m[ox] = -INFINITY
        best[ox] = y0 * W + x0 + (ox - a) * sw if y0 < y1 else -1
    y = y0
    while y < y1:
        row = plane + y * W + x0
        for j in range(taps):
            for ox in range(a, b):
                xx = (ox - a) * sw + j * dw
                v = row[xx]
                mm = m[ox]
                take = (v > mm) | (v != v)
                m[ox] = v if take else mm
                best[ox] = y * W + x0 + xx if take else best[ox]
        y = y + dh


def max_pool(const floating[:, :, ::1] x, floating[:, :, ::1] out, int64_t[:, :, ::1] idx,
             const int64_t[::1] hs, const int64_t[::1] he, const int64_t[::1] ws,
             const int64_t[::1] we, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """max_pool(x, out, idx, hs, he, ws, we, dh, dw, num_threads)

    ``out[p, oy, ox] := max of x[p, y, x']`` over the window's rows y and columns x', and
    ``idx[p, oy, ox] := y*W + x'`` of that maximum (first maximum, last NaN; see above).
    """
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    num_threads = cg_threads_for(num_threads, P * H * W, serial_below)
    if out.shape[0] != P or idx.shape[0] != P or idx.shape[1] != OH or idx.shape[2] != OW:
        raise ValueError(f"outputs of shapes ({out.shape[0]}, {OH}, {OW}) and ({idx.shape[0]}, "
                         f"{idx.shape[1]}, {idx.shape[2]}) for {P} planes")
    _check_windows(hs, he, H, OH, dh, "row")
    _check_windows(ws, we, W, OW, dw, "column")
    cdef Py_ssize_t p, ox, a, b, sw = 0, taps = 0
    if P * OH * OW == 0:
        return
    # the run [a, b) of full windows (the most taps) evenly spaced: the regular path
    for ox in range(OW):
        taps = max(taps, (we[ox] - ws[ox] + dw - 1) // dw)
    a = 0
    while a < OW and (we[a] - ws[a] + dw - 1) // dw != taps:
        a += 1
    b = a
    if a < OW:
        b = a + 1
        sw = ws[b] - ws[a] if b < OW else 1
        while b < OW and sw > 0 and (we[b] - ws[b] + dw - 1) // dw == taps \
                and ws[b] - ws[b - 1] == sw:
            b += 1
    if taps == 0:
        a = b = 0
    if num_threads <= 1:  # no OpenMP region: its private copies slowed the loops down here
        with nogil:
            for p in range(P):
                _max_plane(&x[p, 0, 0], &out[p, 0, 0], &idx[p, 0, 0], &hs[0], &he[0], &ws[0],
                           &we[0], W, OH, OW, dh, dw, a, b, sw, taps)
        return
    for p in prange(P, nogil=True, num_threads=num_threads, schedule="static"):
        _max_plane(&x[p, 0, 0], &out[p, 0, 0], &idx[p, 0, 0], &hs[0], &he[0], &ws[0], &we[0],
                   W, OH, OW, dh, dw, a, b, sw, taps)


cdef Py_ssize_t _max_plane_backward(const floating *g, const int64_t *at, floating *dst,
                                   Py_ssize_t HW, Py_ssize_t Q) noexcept nogil:
    """One plane of max_pool_backward; returns the number of indices outside the plane."""
    cdef Py_ssize_t q, k, bad = 0
    for k in range(HW):
        dst[k] = 0
    for q in range(Q):
        k = at[q]
        if k < 0 or k >= HW:
            if k != -1:
                bad += 1
        else:
            dst[k] = dst[k] + g[q]
    return bad


def max_pool_backward(const floating[:, :, ::1] g, const int64_t[:, :, ::1] idx,
                      floating[:, :, ::1] dx, int num_threads):
    """max_pool_backward(g, idx, dx, num_threads)

    ``dx := 0``, then ``dx[p].flat[idx[p, q]] += g[p].flat[q]`` for q ascending; index -1 (an
    empty window) adds nothing. Any other index outside the plane raises ValueError (nothing is
    written there).
    """
    cdef Py_ssize_t P = dx.shape[0], HW = dx.shape[1] * dx.shape[2]
    num_threads = cg_threads_for(num_threads, P * HW, serial_below)
    cdef Py_ssize_t Q = g.shape[1] * g.shape[2]
    if g.shape[0] != P or idx.shape[0] != P or idx.shape[1] != g.shape[1] \
            or idx.shape[2] != g.shape[2]:
        raise ValueError(f"gradient of shape ({g.shape[0]}, {g.shape[1]}, {g.shape[2]}) and "
                         f"indices of shape ({idx.shape[0]}, {idx.shape[1]}, {idx.shape[2]}) "
                         f"for {P} planes")
    cdef Py_ssize_t p, bad = 0
    if P * HW == 0:
        return
    if Q == 0:
        dx[...] = 0
        return
    if num_threads <= 1:
        with nogil:
            for p in range(P):
                bad += _max_plane_backward(&g[p, 0, 0], &idx[p, 0, 0], &dx[p, 0, 0], HW, Q)
    else:
        for p in prange(P, nogil=True, num_threads=num_threads, schedule="static"):
            bad += _max_plane_backward(&g[p, 0, 0], &idx[p, 0, 0], &dx[p, 0, 0], HW, Q)
    if bad:
        raise ValueError(f"max_pool backward: {bad} indices outside planes of {HW} elements")


cdef inline floating _divisor(floating *tag, const int64_t *hc, const int64_t *wc,
                              Py_ssize_t oy, Py_ssize_t ox, int64_t override) noexcept nogil:
    if override != 0:
        return <floating>override
    return <floating>(hc[oy] * wc[ox])


cdef void _avg_plane(const floating *plane, floating *out, const int64_t *hs, const int64_t *he,
                     const int64_t *ws, const int64_t *we, const int64_t *hc, const int64_t *wc,
                     int64_t override, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx
    cdef floating s
    cdef floating *tag = NULL
    for oy in range(OH):
        for ox in range(OW):
            if hs[oy] == he[oy] or ws[ox] == we[ox]:
                out[oy * OW + ox] = 0
                continue
            s = 0
            for y in range(hs[oy], he[oy]):
                for xx in range(ws[ox], we[ox]):
                    s = s + plane[y * W + xx]
            out[oy * OW + ox] = s / _divisor(tag, hc, wc, oy, ox, override)


def avg_pool(const floating[:, :, ::1] x, floating[:, :, ::1] out, const int64_t[::1] hs,
             const int64_t[::1] he, const int64_t[::1] ws, const int64_t[::1] we,
             const int64_t[::1] hc, const int64_t[::1] wc, int64_t divisor_override,
             int num_threads):
    """avg_pool(x, out, hs, he, ws, we, hc, wc, divisor_override, num_threads)

    ``out[p, oy, ox] := (sum of the window, from +0.0 in ascending (row, column)) / d`` with
    d = divisor_override if non-zero, else hc[oy] * wc[ox] (the caller's counts: with or without
    the padding); +0.0 for an empty window. Windows have step 1.
    """
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    num_threads = cg_threads_for(num_threads, P * H * W, serial_below)
    if out.shape[0] != P or hc.shape[0] != OH or wc.shape[0] != OW:
        raise ValueError(f"output of shape ({out.shape[0]}, {OH}, {OW}) with {hc.shape[0]} x "
                         f"{wc.shape[0]} counts for {P} planes")
    _check_windows(hs, he, H, OH, 1, "row")
    _check_windows(ws, we, W, OW, 1, "column")
    cdef Py_ssize_t p
    if P * OH * OW == 0:
        return
    if num_threads <= 1:
        with nogil:
            for p in range(P):
                _avg_plane(&x[p, 0, 0], &out[p, 0, 0], &hs[0], &he[0], &ws[0], &we[0], &hc[0],
                           &wc[0], divisor_override, W, OH, OW)
        return
    for p in prange(P, nogil=True, num_threads=num_threads, schedule="static"):
        _avg_plane(&x[p, 0, 0], &out[p, 0, 0], &hs[0], &he[0], &ws[0], &we[0], &hc[0], &wc[0],
                   divisor_override, W, OH, OW)


cdef void _avg_plane_backward(const floating *g, floating *plane, const int64_t *hs,
                              const int64_t *he, const int64_t *ws, const int64_t *we,
                              const int64_t *hc, const int64_t *wc, int64_t override,
                              Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                              Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t oy, ox, y, xx, k
    cdef floating d
    cdef floating *tag = NULL
    for k in range(H * W):
        plane[k] = 0
    for oy in range(OH):
        for ox in range(OW):
            if hs[oy] == he[oy] or ws[ox] == we[ox]:
                continue
            d = g[oy * OW + ox] / _divisor(tag, hc, wc, oy, ox, override)
            for y in range(hs[oy], he[oy]):
                for xx in range(ws[ox], we[ox]):
                    plane[y * W + xx] = plane[y * W + xx] + d


def avg_pool_backward(const floating[:, :, ::1] g, floating[:, :, ::1] dx,
                      const int64_t[::1] hs, const int64_t[::1] he, const int64_t[::1] ws,
                      const int64_t[::1] we, const int64_t[::1] hc, const int64_t[::1] wc,
                      int64_t divisor_override, int num_threads):
    """avg_pool_backward(g, dx, hs, he, ws, we, hc, wc, divisor_override, num_threads)

    ``dx := 0``, then for each output in ascending (oy, ox): ``d := g[p, oy, ox] / divisor`` is
    added to every pixel of its window (empty windows add nothing).
    """
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    num_threads = cg_threads_for(num_threads, P * H * W, serial_below)
    cdef Py_ssize_t OH = g.shape[1], OW = g.shape[2]
    if g.shape[0] != P or hc.shape[0] != OH or wc.shape[0] != OW:
        raise ValueError(f"gradient of shape ({g.shape[0]}, {OH}, {OW}) with {hc.shape[0]} x "
                         f"{wc.shape[0]} counts for {P} planes")
    _check_windows(hs, he, H, OH, 1, "row")
    _check_windows(ws, we, W, OW, 1, "column")
    cdef Py_ssize_t p
    if P * H * W == 0:
        return
    if OH * OW == 0:
        dx[...] = 0
        return
    if num_threads <= 1:
        with nogil:
            for p in range(P):
                _avg_plane_backward(&g[p, 0, 0], &dx[p, 0, 0], &hs[0], &he[0], &ws[0], &we[0],
                                    &hc[0], &wc[0], divisor_override, H, W, OH, OW)
        return
    for p in prange(P, nogil=True, num_threads=num_threads, schedule="static"):
        _avg_plane_backward(&g[p, 0, 0], &dx[p, 0, 0], &hs[0], &he[0], &ws[0], &we[0], &hc[0],
                            &wc[0], divisor_override, H, W, OH, OW)
