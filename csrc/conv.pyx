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

The geometry is re-checked here (cheaply, before any loop) so that even a direct call with
inconsistent arguments raises instead of touching memory out of bounds.
"""

from cython.parallel cimport prange
from cython cimport floating


cdef int _check(Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t rows,
                Py_ssize_t ncols, int kh, int kw, int stride, int padding, int oh,
                int ow) except -1:
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be positive, got {kh}x{kw}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
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


def im2col(const floating[:, :, :, ::1] x, floating[:, ::1] cols, int kh, int kw, int stride,
           int padding, int oh, int ow, int num_threads):
    """im2col(x, cols, kh, kw, stride, padding, oh, ow, num_threads)

    Fill ``cols`` (N*OH*OW, C*kh*kw) with the patches of ``x`` (N, C, H, W):
    ``cols[(n*OH + oy)*OW + ox, (c*kh + i)*kw + j] = x[n, c, oy*stride + i - padding,
    ox*stride + j - padding]``, +0.0 where that pixel lies in the zero padding.

    A pure copy, no arithmetic: the result is bitwise that of the numpy twin. Parallel over the
    N*OH blocks of OW consecutive rows (one (n, oy) each); each thread writes its own rows.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols.shape[0], cols.shape[1], kh, kw, stride, padding, oh, ow)
    if num_threads < 1:
        num_threads = 1
    cdef Py_ssize_t nblocks = N * oh, HW = H * W, KK = kh * kw
    cdef Py_ssize_t blk, n, oy, ox, c, i, j, y0, x0, ilo, ihi, off
    cdef const floating* xbase
    cdef floating* dst
    cdef floating zero = 0
    if nblocks == 0 or ow == 0 or C == 0:
        return
    xbase = &x[0, 0, 0, 0] if N * C * HW > 0 else NULL   # only read at in-image offsets
    for blk in prange(nblocks, nogil=True, num_threads=num_threads, schedule="static"):
        n = blk // oh
        oy = blk - n * oh
        y0 = oy * stride - padding
        # kernel rows i in [ilo, ihi) fall inside the image, the others in the padding
        ilo = -y0 if y0 < 0 else 0
        if ilo > kh:
            ilo = kh
        ihi = H - y0 if H - y0 < kh else kh
        if ihi < ilo:
            ihi = ilo
        for ox in range(ow):
            dst = &cols[blk * ow + ox, 0]
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


def col2im(const floating[:, ::1] cols, floating[:, :, :, ::1] x, int kh, int kw, int stride,
           int padding, int oh, int ow, int num_threads):
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
    _check(N, C, H, W, cols.shape[0], cols.shape[1], kh, kw, stride, padding, oh, ow)
    if num_threads < 1:
        num_threads = 1
    cdef Py_ssize_t planes = N * C, K = C * kh * kw, HW = H * W, s = stride
    cdef Py_ssize_t p, n, c, oy, ox, i, j, y, k, t, lo, hi
    cdef const floating* cbase
    cdef const floating* src
    cdef floating* xbase
    cdef floating* plane
    cdef floating* dst
    cdef floating zero = 0
    if planes == 0 or HW == 0:
        return
    xbase = &x[0, 0, 0, 0]
    cbase = &cols[0, 0] if oh > 0 and ow > 0 else NULL    # never read when there are no rows
    for p in prange(planes, nogil=True, num_threads=num_threads, schedule="static"):
        n = p // C
        c = p - n * C
        plane = xbase + p * HW
        for k in range(HW):
            plane[k] = zero
        if cbase == NULL:
            continue
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


def im2col_t(const floating[:, :, :, ::1] x, floating[:, ::1] cols_t, int kh, int kw,
             int stride, int padding, int oh, int ow, int num_threads):
    """im2col_t(x, cols_t, kh, kw, stride, padding, oh, ow, num_threads)

    im2col's transpose, patches as columns (Caffe's layout): fill ``cols_t``
    (C*kh*kw, N*OH*OW) with ``cols_t[(c*kh + i)*kw + j, (n*OH + oy)*OW + ox] =
    x[n, c, oy*stride + i - padding, ox*stride + j - padding]``, +0.0 in the padding.

    A pure copy, bitwise ``im2col(x).T``. Each (kernel offset, image) pair owns a run of OH*OW
    outputs, copied a row of the image at a time; prange splits those pairs.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols_t.shape[1], cols_t.shape[0], kh, kw, stride, padding, oh, ow)
    if num_threads < 1:
        num_threads = 1
    cdef Py_ssize_t tasks = C * kh * kw * N, P = oh * ow
    cdef Py_ssize_t task, q, n, c, i, j, oy, ox, y, xx, lo, hi, t
    cdef const floating* src
    cdef floating* dst
    cdef floating zero = 0
    if tasks == 0 or P == 0:
        return
    for task in prange(tasks, nogil=True, num_threads=num_threads, schedule="static"):
        q = task // N
        n = task - q * N
        c = q // (kh * kw)
        i = (q // kw) % kh
        j = q % kw
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
            dst = &cols_t[q, n * P + oy * ow]
            y = oy * stride + i - padding
            if y < 0 or y >= H:
                for ox in range(ow):
                    dst[ox] = zero
                continue
            src = &x[n, c, y, 0]
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


def col2im_t(const floating[:, ::1] cols_t, floating[:, :, :, ::1] x, int kh, int kw,
             int stride, int padding, int oh, int ow, int num_threads):
    """col2im_t(cols_t, x, kh, kw, stride, padding, oh, ow, num_threads)

    The adjoint of im2col_t, bitwise ``col2im(cols_t.T)``: zero ``x`` (N, C, H, W), then add
    every ``cols_t[(c*kh + i)*kw + j, (n*OH + oy)*OW + ox]`` into
    ``x[n, c, oy*stride + i - padding, ox*stride + j - padding]`` (the padding dropped).

    Summation order (col2im's): each pixel starts at +0.0 and receives its contributions in
    ascending (i, j): the loops run i, j outermost; for fixed (i, j) each pixel gets at most one
    contribution. Parallel over the N*C image planes, one thread per plane.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols_t.shape[1], cols_t.shape[0], kh, kw, stride, padding, oh, ow)
    if num_threads < 1:
        num_threads = 1
    cdef Py_ssize_t planes = N * C, HW = H * W, P = oh * ow
    cdef Py_ssize_t p, n, c, i, j, oy, ox, y, k, t, lo, hi
    cdef const floating* src
    cdef floating* plane
    cdef floating* dst
    cdef floating zero = 0
    if planes == 0 or HW == 0:
        return
    for p in prange(planes, nogil=True, num_threads=num_threads, schedule="static"):
        n = p // C
        c = p - n * C
        plane = &x[n, c, 0, 0]
        for k in range(HW):
            plane[k] = zero
        if P == 0:
            continue
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
                    src = &cols_t[(c * kh + i) * kw + j, n * P + oy * ow]
                    for ox in range(lo, hi):
                        dst[ox * stride + j - padding] = dst[ox * stride + j - padding] + src[ox]


def planes_to_images(const floating[:, ::1] planes, const floating[::1] b,
                     floating[:, :, ::1] out, int num_threads):
    """planes_to_images(planes, b, out, num_threads)

    ``out[n, o, q] := planes[o, n*P + q] + b[o]`` (``b`` may be empty: no bias), with
    planes (O, N*P) a convolution's gemm result and out (N, O, P): the move to image layout and
    the bias add in one pass. One add an element (exactly bias_add's): bits independent of the
    split, which is over the N*O output rows.
    """
    cdef Py_ssize_t N = out.shape[0], O = out.shape[1], P = out.shape[2]
    if planes.shape[0] != O or planes.shape[1] != N * P:
        raise ValueError(f"planes of shape ({planes.shape[0]}, {planes.shape[1]}) do not fit "
                         f"output ({N}, {O}, {P})")
    if b.shape[0] != 0 and b.shape[0] != O:
        raise ValueError(f"bias of length {b.shape[0]} for {O} channels")
    cdef bint bias = b.shape[0] != 0
    cdef Py_ssize_t r, n, o, q
    cdef const floating *src
    cdef floating *dst
    cdef floating add
    if N * O * P == 0:
        return
    for r in prange(N * O, nogil=True, num_threads=max(1, num_threads), schedule="static"):
        n = r // O
        o = r - n * O
        src = &planes[o, n * P]
        dst = &out[n, o, 0]
        if bias:
            add = b[o]
            for q in range(P):
                dst[q] = src[q] + add
        else:
            for q in range(P):
                dst[q] = src[q]
