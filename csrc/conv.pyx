"""Convolution kernels: im2col (patches as rows) and its adjoint col2im (scatter-add).

Layout (identical to ``cygrad.backend.numpy_backend.im2col`` / ``col2im``):
    x     (N, C, H, W), C-contiguous
    cols  (N*OH*OW, C*kh*kw), C-contiguous
    row    r = (n*OH + oy)*OW + ox
    column q = (c*kh + i)*kw + j
    cols[r, q] = x[n, c, oy*stride + i - padding, ox*stride + j - padding]   (0 outside the image)

Both kernels are fused over float32/float64 and run their loops without the GIL; ``prange``
splits independent outputs only (the OW rows of ``cols`` of one (n, oy) for im2col, whole (n, c)
image planes for col2im), so every output element is computed by one thread with one fixed
sequence of operations, whatever the thread count, the batch size or the element's position.

The geometry is re-checked here with Python's integers (cheaply, before any loop) so that even a
direct call with inconsistent or enormous arguments raises instead of touching memory out of
bounds; the loops then index in 64 bits. Arrays must be aligned, and outputs may not overlap the
inputs.
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.stdint cimport uintptr_t

cdef extern from "threads.h" nogil:
    void cg_threads_init()
    int cg_threads(long long requested)

cg_threads_init()

# Sizes and offsets must stay well inside Py_ssize_t for the index arithmetic of the loops.
_LIMIT = 1 << 62


def _check(n, c, h, w, rows, ncols, kh, kw, stride, padding, oh, ow):
    """The geometry as Python integers (no overflow): raises ValueError unless it is
    consistent; True when there is nothing to compute."""
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be positive, got {kh}x{kw}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if max(h, w) + 2 * padding >= _LIMIT or max(kh, kw, stride) >= _LIMIT:
        raise ValueError(f"convolution geometry too large: input {h}x{w}, kernel {kh}x{kw}, "
                         f"stride {stride}, padding {padding}")
    if h + 2 * padding < kh or w + 2 * padding < kw:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input "
                         f"{h + 2 * padding}x{w + 2 * padding}")
    if oh != (h + 2 * padding - kh) // stride + 1 or ow != (w + 2 * padding - kw) // stride + 1:
        raise ValueError(f"output size {oh}x{ow} does not match input {h}x{w}, kernel {kh}x{kw}, "
                         f"stride {stride}, padding {padding}")
    if rows != n * oh * ow or ncols != c * kh * kw:
        raise ValueError(f"cols of shape ({rows}, {ncols}) do not fit N={n}, C={c}, "
                         f"OH={oh}, OW={ow}, kernel {kh}x{kw}: expected "
                         f"({n * oh * ow}, {c * kh * kw})")
    return n * c * h * w == 0 or rows * ncols == 0


cdef void _zero(floating[:, ::1] cols) noexcept:
    """Patches of an empty image (every entry in the padding)."""
    cdef Py_ssize_t i, j
    for i in range(cols.shape[0]):
        for j in range(cols.shape[1]):
            cols[i, j] = 0


cdef int _apart(const void *a, Py_ssize_t a_items, const void *b, Py_ssize_t b_items,
                Py_ssize_t itemsize, str what) except -1:
    """Two C-contiguous arrays (first element, element count) share no memory, and are aligned."""
    cdef uintptr_t pa = <uintptr_t>a, pb = <uintptr_t>b
    if pa % itemsize or pb % itemsize:
        raise ValueError(f"{what}: arrays must be aligned to their element size")
    if pa < pb + b_items * itemsize and pb < pa + a_items * itemsize:
        raise ValueError(f"{what}: the output overlaps the input")
    return 0


cdef inline void _copy_row(floating* dst, const floating* src, Py_ssize_t k) noexcept nogil:
    # Kernel rows are short (kw = 3 for the usual 3x3 filter); a loop with a runtime trip count
    # spends more time setting up its vector path than copying, so common widths are unrolled.
    cdef Py_ssize_t j
    if k == 3:
        dst[0] = src[0]
        dst[1] = src[1]
        dst[2] = src[2]
    elif k == 1:
        dst[0] = src[0]
    elif k == 5:
        dst[0] = src[0]
        dst[1] = src[1]
        dst[2] = src[2]
        dst[3] = src[3]
        dst[4] = src[4]
    else:
        for j in range(k):
            dst[j] = src[j]


cdef void _im2col_block(const floating *xbase, floating *cols, Py_ssize_t blk, Py_ssize_t C,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh,
                        Py_ssize_t ow) noexcept nogil:
    """The OW rows of cols of block blk = n*OH + oy."""
    cdef Py_ssize_t n = blk // oh, oy = blk - (blk // oh) * oh, HW = H * W, KK = kh * kw
    cdef Py_ssize_t ox, c, i, j, ilo, ihi, off, x0
    cdef Py_ssize_t y0 = oy * stride - padding
    cdef floating *dst
    cdef floating zero = 0
    # kernel rows i in [ilo, ihi) fall inside the image, the others in the padding
    ilo = -y0 if y0 < 0 else 0
    if ilo > kh:
        ilo = kh
    ihi = H - y0 if H - y0 < kh else kh
    if ihi < ilo:
        ihi = ilo
    for ox in range(ow):
        dst = cols + (blk * ow + ox) * C * KK
        x0 = ox * stride - padding
        off = n * C * HW + y0 * W + x0          # offset of (n, 0, y0, x0); may be outside
        if x0 >= 0 and x0 + kw <= W:
            # the patch lies inside the image horizontally: whole kernel rows are copied
            for c in range(C):
                for j in range(ilo * kw):
                    dst[j] = zero
                for i in range(ilo, ihi):
                    _copy_row(dst + i * kw, xbase + (off + c * HW + i * W), kw)
                for j in range(ihi * kw, KK):
                    dst[j] = zero
                dst = dst + KK
        else:
            for c in range(C):
                for i in range(kh):
                    if i < ilo or i >= ihi:
                        for j in range(kw):
                            dst[j] = zero
                    else:
                        for j in range(kw):
                            if x0 + j < 0 or x0 + j >= W:
                                dst[j] = zero
                            else:
                                dst[j] = xbase[off + c * HW + i * W + j]
                    dst = dst + kw


def im2col(const floating[:, :, :, ::1] x, floating[:, ::1] cols, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """im2col(x, cols, kh, kw, stride, padding, oh, ow, num_threads)

    Fill ``cols`` (N*OH*OW, C*kh*kw) with the patches of ``x`` (N, C, H, W):
    ``cols[(n*OH + oy)*OW + ox, (c*kh + i)*kw + j] = x[n, c, oy*stride + i - padding,
    ox*stride + j - padding]``, +0.0 where that pixel lies in the zero padding.

    A pure copy, no arithmetic: the result is bitwise that of the numpy twin. Parallel over the
    N*OH blocks of OW consecutive rows (one (n, oy) each); each thread writes its own rows.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    if _check(N, C, H, W, cols.shape[0], cols.shape[1], kh, kw, stride, padding, oh, ow):
        _zero(cols)
        return
    _apart(&x[0, 0, 0, 0], N * C * H * W, &cols[0, 0], cols.shape[0] * cols.shape[1],
           sizeof(floating), "im2col")
    cdef int threads = cg_threads(num_threads)
    cdef Py_ssize_t blk, nblocks = N * oh
    cdef const floating *xbase = &x[0, 0, 0, 0]
    cdef floating *out = &cols[0, 0]
    with nogil:
        if threads <= 1:  # no OpenMP region: it costs microseconds, and is unsafe after fork
            for blk in range(nblocks):
                _im2col_block(xbase, out, blk, C, H, W, kh, kw, stride, padding, oh, ow)
        else:
            for blk in prange(nblocks, num_threads=threads, schedule="static"):
                _im2col_block(xbase, out, blk, C, H, W, kh, kw, stride, padding, oh, ow)


cdef void _col2im_plane(const floating *cbase, floating *xbase, Py_ssize_t p, Py_ssize_t C,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t s,
                        Py_ssize_t padding, Py_ssize_t oh, Py_ssize_t ow) noexcept nogil:
    """Image plane p = n*C + c of x: zeroed, then every contribution added in col2im's order."""
    cdef Py_ssize_t n = p // C, c = p - (p // C) * C, HW = H * W, K = C * kh * kw
    cdef Py_ssize_t oy, ox, i, j, y, k, t, lo, hi
    cdef floating *plane = xbase + p * HW
    cdef floating *dst
    cdef const floating *src
    cdef floating zero = 0
    for k in range(HW):
        plane[k] = zero
    for oy in range(oh - 1, -1, -1):
        for i in range(kh):
            y = oy * s + i - padding
            if y < 0 or y >= H:
                continue
            dst = plane + y * W
            for j in range(kw):
                # ox in [lo, hi) lands inside the row: 0 <= ox*s + j - padding < W
                t = padding - j
                lo = (t + s - 1) // s if t > 0 else 0
                t = W - 1 + padding - j
                hi = t // s + 1 if t >= 0 else 0
                if hi > ow:
                    hi = ow
                src = cbase + ((n * oh + oy) * ow * K + (c * kh + i) * kw + j)
                for ox in range(lo, hi):
                    dst[ox * s + j - padding] = dst[ox * s + j - padding] + src[ox * K]


def col2im(const floating[:, ::1] cols, floating[:, :, :, ::1] x, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """col2im(cols, x, kh, kw, stride, padding, oh, ow, num_threads)

    The adjoint of im2col: zero ``x`` (N, C, H, W), then add every entry
    ``cols[(n*OH + oy)*OW + ox, (c*kh + i)*kw + j]`` into
    ``x[n, c, oy*stride + i - padding, ox*stride + j - padding]``; entries that fall into the
    padding are dropped.

    Summation order (part of the contract): each pixel starts at +0.0 and receives its
    contributions one at a time in ascending (i, j) -- kernel row, then kernel column --, which
    for a fixed pixel is descending (oy, ox) since i = y + padding - oy*stride and
    j = x + padding - ox*stride. That is the order of the numpy twin (its loops run over (i, j)
    ascending), so the two agree bitwise. The loops per plane run oy descending, then i, j
    ascending, then ox: for a fixed pixel the oy loop fixes i, the j loop fixes ox, so the
    innermost ox loop adds at most once into any pixel and the order above holds.

    Parallel over the N*C image planes: one thread owns a whole plane (zeroing and every
    addition into it), so no pixel's sum is ever split between threads and the result is bitwise
    the same for every ``num_threads``, batch size and pixel position.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef bint empty = _check(N, C, H, W, cols.shape[0], cols.shape[1], kh, kw, stride, padding,
                             oh, ow)
    if N == 0 or C == 0 or H == 0 or W == 0:
        return
    cdef floating *xbase = &x[0, 0, 0, 0]
    cdef Py_ssize_t p
    if empty:  # no patches: the adjoint is zero
        for p in range(N * C * H * W):
            xbase[p] = 0
        return
    _apart(&cols[0, 0], cols.shape[0] * cols.shape[1], xbase, N * C * H * W, sizeof(floating),
           "col2im")
    cdef int threads = cg_threads(num_threads)
    cdef const floating *cbase = &cols[0, 0]
    with nogil:
        if threads <= 1:
            for p in range(N * C):
                _col2im_plane(cbase, xbase, p, C, H, W, kh, kw, stride, padding, oh, ow)
        else:
            for p in prange(N * C, num_threads=threads, schedule="static"):
                _col2im_plane(cbase, xbase, p, C, H, W, kh, kw, stride, padding, oh, ow)


cdef void _im2col_t_task(const floating *xbase, floating *cbase, Py_ssize_t task, Py_ssize_t N,
                         Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh,
                         Py_ssize_t ow) noexcept nogil:
    """The OH*OW outputs of kernel offset q = task // N and image n = task % N."""
    cdef Py_ssize_t q = task // N, n = task - (task // N) * N, P = oh * ow
    cdef Py_ssize_t c = q // (kh * kw), i = (q // kw) % kh, j = q % kw
    cdef Py_ssize_t oy, ox, y, lo, hi, t
    cdef const floating *src
    cdef floating *dst
    cdef floating zero = 0
    # ox in [lo, hi) reads inside the row: 0 <= ox*stride + j - padding < W
    t = padding - j
    lo = (t + stride - 1) // stride if t > 0 else 0
    t = W - 1 + padding - j
    hi = t // stride + 1 if t >= 0 else 0
    if hi > ow:
        hi = ow
    if lo > hi:
        lo = hi
    for oy in range(oh):
        dst = cbase + q * (N * P) + n * P + oy * ow
        y = oy * stride + i - padding
        if y < 0 or y >= H:
            for ox in range(ow):
                dst[ox] = zero
            continue
        src = xbase + ((n * C + c) * H + y) * W
        for ox in range(lo):
            dst[ox] = zero
        if stride == 1:
            for ox in range(lo, hi):
                dst[ox] = src[ox + j - padding]
        else:
            for ox in range(lo, hi):
                dst[ox] = src[ox * stride + j - padding]
        for ox in range(hi, ow):
            dst[ox] = zero


def im2col_t(const floating[:, :, :, ::1] x, floating[:, ::1] cols_t, Py_ssize_t kh,
             Py_ssize_t kw, Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh, Py_ssize_t ow,
             int num_threads):
    """im2col_t(x, cols_t, kh, kw, stride, padding, oh, ow, num_threads)

    im2col's transpose, patches as columns (Caffe's layout): fill ``cols_t``
    (C*kh*kw, N*OH*OW) with ``cols_t[(c*kh + i)*kw + j, (n*OH + oy)*OW + ox] =
    x[n, c, oy*stride + i - padding, ox*stride + j - padding]``, +0.0 in the padding.

    A pure copy, bitwise ``im2col(x).T``. Each (kernel offset, image) pair owns a run of OH*OW
    outputs, copied a row of the image at a time; prange splits those pairs.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    if _check(N, C, H, W, cols_t.shape[1], cols_t.shape[0], kh, kw, stride, padding, oh, ow):
        _zero(cols_t)
        return
    _apart(&x[0, 0, 0, 0], N * C * H * W, &cols_t[0, 0], cols_t.shape[0] * cols_t.shape[1],
           sizeof(floating), "im2col_t")
    cdef int threads = cg_threads(num_threads)
    cdef Py_ssize_t task, tasks = C * kh * kw * N
    cdef const floating *xbase = &x[0, 0, 0, 0]
    cdef floating *cbase = &cols_t[0, 0]
    with nogil:
        if threads <= 1:
            for task in range(tasks):
                _im2col_t_task(xbase, cbase, task, N, C, H, W, kh, kw, stride, padding, oh, ow)
        else:
            for task in prange(tasks, num_threads=threads, schedule="static"):
                _im2col_t_task(xbase, cbase, task, N, C, H, W, kh, kw, stride, padding, oh, ow)


cdef void _col2im_t_plane(const floating *cbase, floating *xbase, Py_ssize_t p, Py_ssize_t N,
                          Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                          Py_ssize_t kw, Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh,
                          Py_ssize_t ow) noexcept nogil:
    """Image plane p = n*C + c: zeroed, then its contributions in ascending (i, j)."""
    cdef Py_ssize_t n = p // C, c = p - (p // C) * C, HW = H * W, P = oh * ow
    cdef Py_ssize_t i, j, oy, ox, y, k, t, lo, hi
    cdef const floating *src
    cdef floating *plane = xbase + p * HW
    cdef floating *dst
    cdef floating zero = 0
    for k in range(HW):
        plane[k] = zero
    for i in range(kh):
        for j in range(kw):
            t = padding - j
            lo = (t + stride - 1) // stride if t > 0 else 0
            t = W - 1 + padding - j
            hi = t // stride + 1 if t >= 0 else 0
            if hi > ow:
                hi = ow
            for oy in range(oh):
                y = oy * stride + i - padding
                if y < 0 or y >= H:
                    continue
                dst = plane + y * W
                src = cbase + ((c * kh + i) * kw + j) * (N * P) + n * P + oy * ow
                for ox in range(lo, hi):
                    dst[ox * stride + j - padding] = dst[ox * stride + j - padding] + src[ox]


def col2im_t(const floating[:, ::1] cols_t, floating[:, :, :, ::1] x, Py_ssize_t kh,
             Py_ssize_t kw, Py_ssize_t stride, Py_ssize_t padding, Py_ssize_t oh, Py_ssize_t ow,
             int num_threads):
    """col2im_t(cols_t, x, kh, kw, stride, padding, oh, ow, num_threads)

    The adjoint of im2col_t, bitwise ``col2im(cols_t.T)``: zero ``x`` (N, C, H, W), then add
    every ``cols_t[(c*kh + i)*kw + j, (n*OH + oy)*OW + ox]`` into
    ``x[n, c, oy*stride + i - padding, ox*stride + j - padding]`` (the padding dropped).

    Summation order (col2im's): each pixel starts at +0.0 and receives its contributions in
    ascending (i, j): the loops run i, j outermost; for fixed (i, j) each pixel gets at most one
    contribution. Parallel over the N*C image planes, one thread per plane.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef bint empty = _check(N, C, H, W, cols_t.shape[1], cols_t.shape[0], kh, kw, stride,
                             padding, oh, ow)
    if N == 0 or C == 0 or H == 0 or W == 0:
        return
    cdef floating *xbase = &x[0, 0, 0, 0]
    cdef Py_ssize_t p
    if empty:
        for p in range(N * C * H * W):
            xbase[p] = 0
        return
    _apart(&cols_t[0, 0], cols_t.shape[0] * cols_t.shape[1], xbase, N * C * H * W,
           sizeof(floating), "col2im_t")
    cdef int threads = cg_threads(num_threads)
    cdef const floating *cbase = &cols_t[0, 0]
    with nogil:
        if threads <= 1:
            for p in range(N * C):
                _col2im_t_plane(cbase, xbase, p, N, C, H, W, kh, kw, stride, padding, oh, ow)
        else:
            for p in prange(N * C, num_threads=threads, schedule="static"):
                _col2im_t_plane(cbase, xbase, p, N, C, H, W, kh, kw, stride, padding, oh, ow)


cdef void _plane_row(const floating *planes, const floating *b, floating *out, Py_ssize_t r,
                     Py_ssize_t N, Py_ssize_t O, Py_ssize_t P, bint bias) noexcept nogil:
    cdef Py_ssize_t n = r // O, o = r - (r // O) * O, q
    cdef const floating *src = planes + o * (N * P) + n * P
    cdef floating *dst = out + (n * O + o) * P
    cdef floating add
    if bias:
        add = b[o]
        for q in range(P):
            dst[q] = src[q] + add
    else:
        for q in range(P):
            dst[q] = src[q]


def planes_to_images(const floating[:, ::1] planes, const floating[::1] b,
                     floating[:, :, ::1] out, int num_threads):
    """planes_to_images(planes, b, out, num_threads)

    ``out[n, o, q] := planes[o, n*P + q] + b[o]`` (``b`` may be empty: no bias), with
    planes (O, N*P) a convolution's gemm result and out (N, O, P): the move to image layout and
    the bias add in one pass. One add an element (exactly bias_add's): bits independent of the
    split, which is over the N*O output rows.
    """
    cdef Py_ssize_t N = out.shape[0], O = out.shape[1], P = out.shape[2]
    if planes.shape[0] != O or planes.shape[1] != (<object>N) * P:  # Python's integers
        raise ValueError(f"planes of shape ({planes.shape[0]}, {planes.shape[1]}) do not fit "
                         f"output ({N}, {O}, {P})")
    if b.shape[0] != 0 and b.shape[0] != O:
        raise ValueError(f"bias of length {b.shape[0]} for {O} channels")
    if N == 0 or O == 0 or P == 0:
        return
    _apart(&planes[0, 0], O * N * P, &out[0, 0, 0], N * O * P, sizeof(floating),
           "planes_to_images")
    cdef bint bias = b.shape[0] != 0
    cdef const floating *bb = &b[0] if bias else NULL
    if bias:
        _apart(bb, O, &out[0, 0, 0], N * O * P, sizeof(floating), "planes_to_images")
    cdef int threads = cg_threads(num_threads)
    cdef Py_ssize_t r
    cdef const floating *src = &planes[0, 0]
    cdef floating *dst = &out[0, 0, 0]
    with nogil:
        if threads <= 1:
            for r in range(N * O):
                _plane_row(src, bb, dst, r, N, O, P, bias)
        else:
            for r in prange(N * O, num_threads=threads, schedule="static"):
                _plane_row(src, bb, dst, r, N, O, P, bias)
