"""Convolution kernels: im2col (patches as rows), its adjoint col2im (scatter-add), the
transposed pair im2col_t / col2im_t (patches as columns), and the moves of a convolution's
product into image layout with its bias.

Geometry (identical to ``cygrad.backend.numpy_backend``): x (N, C, H, W) C-contiguous, a kh x kw
kernel moved by strides (sh, sw), dilated by (dh, dw), with (ph, pw) rows/columns of zeros
before the image (top, left) and an output of oh x ow positions, given by the caller (so an
uneven padding, more at the bottom or right, is the caller's choice of oh, ow). Kernel offset
(i, j) of output position (oy, ox) reads

    x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]      (+0.0 where that lies outside the image)

and a patch's column is q = (c*kh + i)*kw + j, its row r = (n*oh + oy)*ow + ox.

Every kernel runs its loops without the GIL; ``prange`` splits independent outputs only, so
every output element is computed by one thread with one fixed sequence of operations, whatever
the thread count, the batch size or the element's position. All index arithmetic is 64-bit
(Py_ssize_t), and the geometry is re-checked here, in Python integers, before any loop: a direct
call with inconsistent arguments raises instead of touching memory out of bounds.
"""

from cython.parallel cimport prange
from cython cimport floating
from libc.string cimport memset

from arrays cimport bytes_meet

cdef extern from "threads.h" nogil:
    void cg_threads_init()
    int cg_threads_for(long long requested, long long work, long long serial_below)

cdef extern from "rows.h" nogil:
    void cg_copy_bytes(char *dst, const char *src, Py_ssize_t n)
    void cg_add_row_f32(float *dst, const float *src, Py_ssize_t n)
    void cg_add_row_f64(double *dst, const double *src, Py_ssize_t n)

cg_threads_init()

# Elements (patches copied, pixels summed, outputs written) below which a kernel runs on one
# thread whatever it is given: an OpenMP region costs ~50-200 us under cygrad's passive wait (a
# sleeping thread must be woken), more than a copy of this size takes (the elementwise kernels'
# cheap_serial_below). 0 sends everything down the parallel paths (tests do).
serial_below = 1 << 20

# Each geometry number is below 2^31, so sums of products like oy*sh + i*dh stay far inside
# 64-bit integers.
cdef Py_ssize_t _LIMIT = (1 << 31) - 1


cdef int _fits(Py_ssize_t total, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) noexcept:
    """total == a * b * c, without overflow (b, c in [0, _LIMIT]: b*c < 2^62; a >= 0)."""
    cdef Py_ssize_t bc = b * c
    if bc == 0:
        return total == 0
    return total % bc == 0 and total // bc == a


cdef int _check(Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t rows,
                Py_ssize_t ncols, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh,
                Py_ssize_t ow) except -1:
    """The geometry every kernel relies on: each number in range, the patch matrix's shape."""
    cdef Py_ssize_t values[10]
    cdef Py_ssize_t lows[10]
    cdef Py_ssize_t k
    values[:] = [kh, kw, sh, sw, ph, pw, dh, dw, oh, ow]
    lows[:] = [1, 1, 1, 1, 0, 0, 1, 1, 0, 0]
    for k in range(10):
        if not lows[k] <= values[k] <= _LIMIT:
            name = ("kernel height", "kernel width", "stride", "stride", "padding", "padding",
                    "dilation", "dilation", "output height", "output width")[k]
            raise ValueError(f"{name} must be in [{lows[k]}, {_LIMIT}], got {values[k]}")
    if not (_fits(rows, n, oh, ow) and _fits(ncols, c, kh, kw)):
        raise ValueError(f"cols of shape ({rows}, {ncols}) do not fit N={n}, C={c}, "
                         f"OH={oh}, OW={ow}, kernel {kh}x{kw}: expected "
                         f"({n * oh * ow}, {c * kh * kw})")
    return 0


cdef int _apart(const void *a, Py_ssize_t a_items, const void *b, Py_ssize_t b_items,
                Py_ssize_t itemsize, str what) except -1:
    """Two C-contiguous arrays (first element, element count) share no memory: a kernel that
    wrote into its own input would read values it has already overwritten."""
    if bytes_meet(a, a_items * itemsize, b, b_items * itemsize):
        raise ValueError(f"{what}: the output overlaps the input")
    return 0


cdef inline void _span(Py_ssize_t t, Py_ssize_t extent, Py_ssize_t s, Py_ssize_t count,
                       Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    """The output positions o in [lo, hi) (within [0, count)) whose input coordinate
    o*s - t lies inside [0, extent)."""
    cdef Py_ssize_t a, b
    a = (t + s - 1) // s if t > 0 else 0          # smallest o with o*s >= t
    b = (extent - 1 + t) // s + 1 if extent - 1 + t >= 0 else 0
    if b > count:
        b = count
    if a > b:
        a = b
    lo[0] = a
    hi[0] = b


def im2col(const floating[:, :, :, ::1] x, floating[:, ::1] cols, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
           Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)

    Fill ``cols`` (N*OH*OW, C*kh*kw) with the patches of ``x`` (N, C, H, W):
    ``cols[(n*OH + oy)*OW + ox, (c*kh + i)*kw + j] = x[n, c, oy*sh + i*dh - ph,
    ox*sw + j*dw - pw]``, +0.0 where that pixel lies in the zero padding.

    A pure copy, no arithmetic: bitwise the numpy twin. Parallel over the N*OH blocks of OW
    consecutive rows (one (n, oy) each); each thread writes its own rows.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols.shape[0], cols.shape[1], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    cdef Py_ssize_t nblocks = N * oh, HW = H * W, KK = kh * kw
    num_threads = cg_threads_for(num_threads, cols.shape[0] * cols.shape[1], serial_below)
    cdef Py_ssize_t blk, n, oy, ox, c, i, j, y0, x0, y, xx
    cdef const floating* xbase
    cdef const floating* src
    cdef floating* dst
    cdef floating zero = 0
    if nblocks == 0 or ow == 0 or C == 0:
        return
    if N * C * HW > 0:
        _apart(&x[0, 0, 0, 0], N * C * HW, &cols[0, 0], cols.shape[0] * cols.shape[1],
               sizeof(floating), "im2col")
    xbase = &x[0, 0, 0, 0] if N * C * HW > 0 else NULL   # only read at in-image offsets
    for blk in prange(nblocks, nogil=True, num_threads=num_threads, schedule="static"):
        n = blk // oh
        oy = blk - n * oh
        y0 = oy * sh - ph
        for ox in range(ow):
            dst = &cols[blk * ow + ox, 0]
            x0 = ox * sw - pw
            for c in range(C):
                for i in range(kh):
                    y = y0 + i * dh
                    if y < 0 or y >= H:
                        for j in range(kw):
                            dst[j] = zero
                    elif dw == 1 and x0 >= 0 and x0 + kw <= W:   # a whole kernel row inside
                        src = xbase + ((n * C + c) * HW + y * W + x0)
                        for j in range(kw):
                            dst[j] = src[j]
                    else:
                        for j in range(kw):
                            xx = x0 + j * dw
                            if xx < 0 or xx >= W:
                                dst[j] = zero
                            else:
                                dst[j] = xbase[(n * C + c) * HW + y * W + xx]
                    dst = dst + kw


def col2im(const floating[:, ::1] cols, floating[:, :, :, ::1] x, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
           Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """col2im(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)

    The adjoint of im2col: zero ``x`` (N, C, H, W), then add every entry
    ``cols[(n*OH + oy)*OW + ox, (c*kh + i)*kw + j]`` into
    ``x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]``; entries that fall into the padding are
    dropped.

    Summation order (part of the contract): each pixel starts at +0.0 and receives its
    contributions one at a time in ascending (i, j) -- kernel row, then kernel column. That is
    the order of the numpy twin (its loops run over (i, j) ascending), so the two agree bitwise.
    The loops of a plane run i, j outermost; for a fixed (i, j) a pixel gets at most one
    contribution (it fixes oy and ox).

    Parallel over the N*C image planes: one thread owns a whole plane (zeroing and every
    addition into it), so no pixel's sum is ever split between threads.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols.shape[0], cols.shape[1], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    cdef Py_ssize_t planes = N * C, K = C * kh * kw, HW = H * W
    num_threads = cg_threads_for(num_threads, cols.shape[0] * cols.shape[1], serial_below)
    cdef Py_ssize_t p, n, c, oy, ox, i, j, y, k, lo, hi, off
    cdef const floating* cbase
    cdef const floating* src
    cdef floating* plane
    cdef floating* dst
    cdef floating zero = 0
    if planes == 0 or HW == 0:
        return
    if cols.shape[0] * cols.shape[1] > 0:
        _apart(&cols[0, 0], cols.shape[0] * cols.shape[1], &x[0, 0, 0, 0], N * C * HW,
               sizeof(floating), "col2im")
    cbase = &cols[0, 0] if oh > 0 and ow > 0 else NULL    # never read when there are no rows
    for p in prange(planes, nogil=True, num_threads=num_threads, schedule="static"):
        n = p // C
        c = p - n * C
        plane = &x[0, 0, 0, 0] + p * HW
        for k in range(HW):
            plane[k] = zero
        if cbase == NULL:
            continue
        for i in range(kh):
            for j in range(kw):
                # assigned here so that Cython makes them private to each thread: a variable
                # only written through its address (&lo) is shared by the prange, a data race
                lo = 0
                hi = 0
                _span(pw - j * dw, W, sw, ow, &lo, &hi)
                off = j * dw - pw
                for oy in range(oh):
                    y = oy * sh + i * dh - ph
                    if y < 0 or y >= H:
                        continue
                    dst = plane + y * W
                    src = cbase + ((n * oh + oy) * ow * K + (c * kh + i) * kw + j)
                    for ox in range(lo, hi):
                        dst[ox * sw + off] = dst[ox * sw + off] + src[ox * K]


cdef void _im2col_t_task(const floating *xn, floating *cols_t, Py_ssize_t q, Py_ssize_t n,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t NP, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
                        Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow) noexcept nogil:
    """Row q of cols_t for image n (xn: that image's channel c = q // (kh*kw)): rows of output
    positions whose image row lies in the padding are zeros; the others copy a run of that row
    (rows.h; element by element with a horizontal stride) between the padding's zeros."""
    cdef Py_ssize_t i = (q // kw) % kh, j = q % kw, oy, ox, lo, hi, ylo, yhi, off
    cdef Py_ssize_t isz = sizeof(floating), run
    cdef const floating *src
    cdef floating *dst = cols_t + q * NP + n * oh * ow
    _span(pw - j * dw, W, sw, ow, &lo, &hi)
    _span(ph - i * dh, H, sh, oh, &ylo, &yhi)
    off = j * dw - pw
    memset(dst, 0, ylo * ow * isz)
    memset(dst + yhi * ow, 0, (oh - yhi) * ow * isz)
    if yhi == ylo:
        return
    src = xn + (ylo * sh + i * dh - ph) * W
    dst += ylo * ow
    if sw == 1 and lo == 0 and hi == ow:  # whole rows of patches: one run each
        run = ow * isz
        src += off
        for oy in range(ylo, yhi):
            cg_copy_bytes(<char *>dst, <const char *>src, run)
            dst += ow
            src += sh * W
        return
    for oy in range(ylo, yhi):
        for ox in range(lo):
            dst[ox] = 0
        if sw == 1:
            if hi > lo:
                cg_copy_bytes(<char *>(dst + lo), <const char *>(src + lo + off),
                              (hi - lo) * isz)
        else:
            for ox in range(lo, hi):
                dst[ox] = src[ox * sw + off]
        for ox in range(hi, ow):
            dst[ox] = 0
        dst += ow
        src += sh * W


def im2col_t(const floating[:, :, :, ::1] x, floating[:, ::1] cols_t, Py_ssize_t kh,
             Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
             Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """im2col_t(x, cols_t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)

    im2col's transpose, patches as columns (Caffe's layout): fill ``cols_t``
    (C*kh*kw, N*OH*OW) with ``cols_t[(c*kh + i)*kw + j, (n*OH + oy)*OW + ox] =
    x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]``, +0.0 in the padding.

    A pure copy, bitwise ``im2col(x).T``. Each (kernel offset, image) pair owns a run of OH*OW
    outputs, copied a row of the image at a time; prange splits those pairs.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols_t.shape[1], cols_t.shape[0], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    cdef Py_ssize_t tasks = C * kh * kw * N, NP = N * oh * ow, KK = kh * kw
    num_threads = cg_threads_for(num_threads, cols_t.shape[0] * cols_t.shape[1], serial_below)
    cdef Py_ssize_t task, q, n
    if tasks == 0 or oh * ow == 0:
        return
    if N * C * H * W > 0:
        _apart(&x[0, 0, 0, 0], N * C * H * W, &cols_t[0, 0],
               cols_t.shape[0] * cols_t.shape[1], sizeof(floating), "im2col_t")
    if num_threads <= 1:  # no OpenMP region: its private copies slow the loops down
        with nogil:
            for task in range(tasks):
                q = task // N
                n = task - q * N
                _im2col_t_task(&x[n, q // KK, 0, 0], &cols_t[0, 0], q, n, H, W, NP, kh, kw, sh,
                               sw, ph, pw, dh, dw, oh, ow)
        return
    for task in prange(tasks, nogil=True, num_threads=num_threads, schedule="static"):
        q = task // N
        n = task - q * N
        _im2col_t_task(&x[n, q // KK, 0, 0], &cols_t[0, 0], q, n, H, W, NP, kh, kw, sh, sw, ph,
                       pw, dh, dw, oh, ow)


cdef void _col2im_t_plane(const floating *cols_t, floating *plane, Py_ssize_t c, Py_ssize_t n,
                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t NP, Py_ssize_t kh, Py_ssize_t kw,
                         Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh,
                         Py_ssize_t ow) noexcept nogil:
    """Plane (n, c) of col2im_t: zeroed, then its contributions in ascending (i, j)."""
    cdef Py_ssize_t i, j, oy, ox, lo, hi, ylo, yhi, off
    cdef const floating *src
    cdef floating *dst
    memset(plane, 0, H * W * sizeof(floating))
    for i in range(kh):
        for j in range(kw):
            _span(pw - j * dw, W, sw, ow, &lo, &hi)
            _span(ph - i * dh, H, sh, oh, &ylo, &yhi)
            off = j * dw - pw
            if yhi == ylo:
                continue
            dst = plane + (ylo * sh + i * dh - ph) * W
            src = cols_t + ((c * kh + i) * kw + j) * NP + n * oh * ow + ylo * ow
            for oy in range(ylo, yhi):
                if sw == 1:  # added as a run (rows.h: one rounding an element, as below)
                    if floating is float:
                        cg_add_row_f32(dst + lo + off, src + lo, hi - lo)
                    else:
                        cg_add_row_f64(dst + lo + off, src + lo, hi - lo)
                else:
                    for ox in range(lo, hi):
                        dst[ox * sw + off] = dst[ox * sw + off] + src[ox]
                dst += sh * W
                src += ow


def col2im_t(const floating[:, ::1] cols_t, floating[:, :, :, ::1] x, Py_ssize_t kh,
             Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
             Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """col2im_t(cols_t, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)

    The adjoint of im2col_t, bitwise ``col2im(cols_t.T)``: zero ``x`` (N, C, H, W), then add
    every ``cols_t[(c*kh + i)*kw + j, (n*OH + oy)*OW + ox]`` into
    ``x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]`` (the padding dropped).

    Summation order (col2im's): each pixel starts at +0.0 and receives its contributions in
    ascending (i, j): the loops run i, j outermost; for fixed (i, j) each pixel gets at most one
    contribution. Parallel over the N*C image planes, one thread per plane.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check(N, C, H, W, cols_t.shape[1], cols_t.shape[0], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    cdef Py_ssize_t planes = N * C, NP = N * oh * ow
    num_threads = cg_threads_for(num_threads, cols_t.shape[0] * cols_t.shape[1], serial_below)
    cdef Py_ssize_t p, n, c
    if planes == 0 or H * W == 0:
        return
    if cols_t.shape[0] * cols_t.shape[1] > 0:
        _apart(&cols_t[0, 0], cols_t.shape[0] * cols_t.shape[1], &x[0, 0, 0, 0],
               N * C * H * W, sizeof(floating), "col2im_t")
    if oh * ow == 0:
        x[...] = 0
        return
    if num_threads <= 1:
        with nogil:
            for p in range(planes):
                n = p // C
                c = p - n * C
                _col2im_t_plane(&cols_t[0, 0], &x[n, c, 0, 0], c, n, H, W, NP, kh, kw, sh, sw,
                                ph, pw, dh, dw, oh, ow)
        return
    for p in prange(planes, nogil=True, num_threads=num_threads, schedule="static"):
        n = p // C
        c = p - n * C
        _col2im_t_plane(&cols_t[0, 0], &x[n, c, 0, 0], c, n, H, W, NP, kh, kw, sh, sw, ph, pw,
                        dh, dw, oh, ow)


cdef inline void _add_row(floating *dst, const floating *src, Py_ssize_t P, floating add,
                          bint bias) noexcept nogil:
    cdef Py_ssize_t q
    if bias:
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
    num_threads = cg_threads_for(num_threads, N * O * P, serial_below)
    if planes.shape[0] != O or planes.shape[1] != N * P:
        raise ValueError(f"planes of shape ({planes.shape[0]}, {planes.shape[1]}) do not fit "
                         f"output ({N}, {O}, {P})")
    if b.shape[0] != 0 and b.shape[0] != O:
        raise ValueError(f"bias of length {b.shape[0]} for {O} channels")
    cdef bint bias = b.shape[0] != 0
    cdef Py_ssize_t r, n, o
    if N * O * P == 0:
        return
    _apart(&planes[0, 0], O * N * P, &out[0, 0, 0], N * O * P, sizeof(floating),
           "planes_to_images")
    if bias:
        _apart(&b[0], O, &out[0, 0, 0], N * O * P, sizeof(floating), "planes_to_images")
    if num_threads <= 1:
        with nogil:
            for r in range(N * O):
                n = r // O
                o = r - n * O
                _add_row(&out[n, o, 0], &planes[o, n * P], P, b[o] if bias else 0, bias)
        return
    for r in prange(N * O, nogil=True, num_threads=num_threads, schedule="static"):
        n = r // O
        o = r - n * O
        _add_row(&out[n, o, 0], &planes[o, n * P], P, b[o] if bias else 0, bias)


def add_channel_bias(floating[:, :, ::1] y, const floating[::1] b, int num_threads):
    """add_channel_bias(y, b, num_threads)

    ``y[n, o, q] := y[n, o, q] + b[o]`` in place, y (N, O, P): a convolution's bias when its
    product was written in image layout. One add an element: planes_to_images's bits.
    Parallel over the N*O rows.
    """
    cdef Py_ssize_t N = y.shape[0], O = y.shape[1], P = y.shape[2]
    num_threads = cg_threads_for(num_threads, N * O * P, serial_below)
    if b.shape[0] != O:
        raise ValueError(f"bias of length {b.shape[0]} for {O} channels")
    cdef Py_ssize_t r
    if N * O * P == 0:
        return
    if num_threads <= 1:
        with nogil:
            for r in range(N * O):
                _add_row(&y[r // O, r % O, 0], &y[r // O, r % O, 0], P, b[r % O], True)
        return
    for r in prange(N * O, nogil=True, num_threads=num_threads, schedule="static"):
        _add_row(&y[r // O, r % O, 0], &y[r // O, r % O, 0], P, b[r % O], True)
