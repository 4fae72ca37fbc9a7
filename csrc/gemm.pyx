"""gemm: C := op(A) @ op(B), op(X) = X.T when trans_x, float32 or float64.

Order is part of the contract. Every element is a fixed tree over k (it depends on K alone):
the k range is cut into blocks of KC (512 float32, 256 float64 elements); each block is one fused
multiply-add chain in ascending k from +0,

    leaf = fma(a[i, k1-1], b[k1-1, j], ... fma(a[i, k0+1], b[k0+1, j], fma(a[i, k0], b[k0, j], +0)))

(separate multiply and add in a build for a target without FMA), accumulated in the input dtype;
the leaves are added by the pairwise tree of csrc/sums.h (below: "the k tree"). For K <= KC that
is the one chain; for K = 2^28 the error stays within a few ulps of a pairwise sum instead of a
chain's 2^28 (a chain of ones stops at 2^24 in float32). The result depends on nothing but the
row of op(A) and the column of op(B): not on i, j, M, N, the thread count, the variant or the
blocking. So identical rows of A give identical rows of C, identical columns of op(B) identical
columns, a row computed alone has the bits it has inside any batch, and `gemm`, `gemm_blocked`
and `gemm_naive` agree bitwise.

`gemm` packs A into MR-row panels and B into NR-column panels, zero-padding ragged edges so that
every tile of C goes through the one register-blocked micro-kernel (gemm_microkernel.h, which
also has the tile shapes and block sizes); threads share out whole tiles of C, never a k
reduction. a and b may have any strides (transposed views, steps, negative or zero strides):
packing reads them through their byte strides.
"""

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_STRIDES, PyBUF_WRITABLE,
                             PyBuffer_Release, PyObject_GetBuffer)
from cython.parallel cimport prange, threadid
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from arrays cimport (F32, aligned, bytes_meet, cg_instr, cg_threads, cg_threads_init,
                     exec_capsule, exec_pair_capsule, float_dtype_of, kind_of, native_copy,
                     overlap, release)

import os

import numpy as np

cg_threads_init()

cdef object _empty = np.empty
cdef object _F32_DTYPE = np.dtype(np.float32), _F64_DTYPE = np.dtype(np.float64)

ctypedef fused floating:
    float
    double

cdef extern from "queue.h" nogil:
    ctypedef struct cg_queue:
        unsigned long long word
    int cg_steal_hold
    void cg_count_stolen(long long n)
    long long cg_stolen_count()
    unsigned long long cg_queue_of(long long n)
    long long cg_take(cg_queue *q, int back, unsigned keep)
    void cg_set_done(cg_queue *q)
    void cg_wait_done(cg_queue *q)


def steal_hold(bint on):
    """Tests: make a threaded product's threads other than 0 start only when thread 0 has done
    its share and taken what it could of theirs (so that taking units from the back runs).
    Returns the previous setting. Not for use outside tests."""
    global cg_steal_hold
    cdef bint old = cg_steal_hold
    cg_steal_hold = on
    return old


def units_stolen():
    """How many units of work (MC rows of a block of columns, every k) threads have taken from
    another thread's share since the module was loaded (a diagnostic: see _gemm_share)."""
    return cg_stolen_count()


cdef extern from "rows.h" nogil:
    void cg_copy_bytes(char *dst, const char *src, Py_ssize_t n)

cdef extern from "gemm_microkernel.h" nogil:
    enum:
        CG_HAS_FMA
        CG_MR_F32  # tile rows and columns
        CG_NR_F32
        CG_MR_F64
        CG_NR_F64
        CG_MR_WIDE_F32  # the wide tile's rows (as many columns)
        CG_MR_WIDE_F64
        CG_NRN_F32  # narrow tiles: one vector wide
        CG_NRN_F64
        CG_KC_F32  # cache blocking: performance only
        CG_KC_F64
        CG_MC
        CG_NC
        CG_NSUB
        CG_PACKED_B_FIXED
        CG_PACKED_B_MAX
        CG_PF_B
    int cg_wide_pays()
    void cg_kernel_f32(Py_ssize_t kc, const float *a, const float *b, float *c,
                       Py_ssize_t ldc, int load_c)
    void cg_kernel_f64(Py_ssize_t kc, const double *a, const double *b, double *c,
                       Py_ssize_t ldc, int load_c)
    void cg_kernel_wide_f32(Py_ssize_t kc, const float *a, const float *b, float *c,
                            Py_ssize_t ldc, int load_c)
    void cg_kernel_wide_f64(Py_ssize_t kc, const double *a, const double *b, double *c,
                            Py_ssize_t ldc, int load_c)
    void cg_kernel_wide_f32_sum(Py_ssize_t kc, const float *a, const float *b, float *c,
                                Py_ssize_t ldc, int load_c, int nsrc, const float *const *src,
                                const Py_ssize_t *ld)
    void cg_kernel_wide_f64_sum(Py_ssize_t kc, const double *a, const double *b, double *c,
                                Py_ssize_t ldc, int load_c, int nsrc, const double *const *src,
                                const Py_ssize_t *ld)
    void cg_pack_a_kcont_wide_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_a_icont_wide_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_a_kcont_wide_f64(double *dst, const double *src, Py_ssize_t ld,
                                  Py_ssize_t kc)
    void cg_pack_a_icont_wide_f64(double *dst, const double *src, Py_ssize_t ld,
                                  Py_ssize_t kc)
    void cg_kernel_narrow_f32(Py_ssize_t kc, const float *a, const float *b, float *c,
                              Py_ssize_t ldc, int load_c)
    void cg_kernel_narrow_f64(Py_ssize_t kc, const double *a, const double *b, double *c,
                              Py_ssize_t ldc, int load_c)
    void cg_kernel_f32_sum(Py_ssize_t kc, const float *a, const float *b, float *c,
                           Py_ssize_t ldc, int load_c, int nsrc, const float *const *src,
                           const Py_ssize_t *ld)
    void cg_kernel_f64_sum(Py_ssize_t kc, const double *a, const double *b, double *c,
                           Py_ssize_t ldc, int load_c, int nsrc, const double *const *src,
                           const Py_ssize_t *ld)
    void cg_pack_a_kcont_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_a_icont_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_b_jcont_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_b_kcont_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_a_kcont_f64(double *dst, const double *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_a_icont_f64(double *dst, const double *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_b_jcont_f64(double *dst, const double *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_b_kcont_f64(double *dst, const double *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_move_nr_f32(float *dst, const float *src)
    void cg_move_nr_f64(double *dst, const double *src)
    void cg_block_t_f32(const float *src, Py_ssize_t lds, float *dst, Py_ssize_t ldd,
                        const float *bias)
    void cg_block_t_f64(const double *src, Py_ssize_t lds, double *dst, Py_ssize_t ldd,
                        const double *bias)
    void cg_pack_b_rows_f32(float *dst, const float *const *rows, Py_ssize_t off, int skip,
                            int stop, int keep)
    void cg_pack_b_rows_f64(double *dst, const double *const *rows, Py_ssize_t off, int skip,
                            int stop, int keep)
    void cg_pack_b_rows_narrow_f32(float *dst, const float *const *rows, Py_ssize_t off,
                                   int skip, int stop, int keep)
    void cg_pack_b_rows_narrow_f64(double *dst, const double *const *rows, Py_ssize_t off,
                                   int skip, int stop, int keep)
    void cg_pack_b_jcont_narrow_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_b_kcont_narrow_f32(float *dst, const float *src, Py_ssize_t ld, Py_ssize_t kc)
    void cg_pack_b_jcont_narrow_f64(double *dst, const double *src, Py_ssize_t ld,
                                    Py_ssize_t kc)
    void cg_pack_b_kcont_narrow_f64(double *dst, const double *src, Py_ssize_t ld,
                                    Py_ssize_t kc)
    enum:
        CG_PEAK_CHAINS
        CG_WF  # vector lanes
        CG_WD
    float cg_fma_peak_f32(Py_ssize_t n, float x, float y)
    double cg_fma_peak_f64(Py_ssize_t n, double x, double y)

cdef enum:
    ALIGN = 64  # packing buffers start on a cache line
    SMALL_DOUBLES = 2048  # packing buffers up to this size live on the stack
    SMALL_BUFFER = SMALL_DOUBLES * 8  # (bytes)
    B_ROWS = 16  # _pack_b: rows of B copied into every full panel before the next rows
    CUT_UNITS = 1024  # k is cut in two parts only for products of this many blocks of rows

# True when each link of a chain is a fused multiply-add (this build's target has FMA): the
# results are then those of every other FMA build, and differ in the last bits from a build
# without (CYGRAD_PORTABLE=1 on x86-64 rounds each product and each sum).
fused_multiply_add = bool(CG_HAS_FMA)

# The k blocks: the leaves of each element's tree (float32, float64).
k_block = {"float32": CG_KC_F32, "float64": CG_KC_F64}


def _l2_bytes():
    """The L2 cache of a core in bytes, as Linux reports it (0 where it does not)."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(root)):
            with open(f"{root}/{index}/level") as f:
                if f.read().strip() != "2":
                    continue
            with open(f"{root}/{index}/size") as f:
                size = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
            return int(size.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return 0


# Bytes of B's k blocks packed at once (gemm_microkernel.h, CG_PACKED_B), shared out between
# a product's threads (each packs its own): four times a core's L2, between 2 and 16 MiB, or 4
# MiB when its size is not known; fixed by -DCG_PACKED_B=. Performance only: which columns
# are packed together changes no operation of any element.
def _packing_budget():
    cdef Py_ssize_t l2 = _l2_bytes()
    if CG_PACKED_B_FIXED > 0:
        return CG_PACKED_B_FIXED
    return min(max(4 * l2, 2 << 20), 16 << 20) if l2 > 0 else 4 << 20


cdef Py_ssize_t _packed_b = _packing_budget()


def blocking():
    """This build's tile shapes and cache blocking (performance only, except k_block, which
    sets each element's tree): rows x columns of a tile per dtype (and of the wide tile, for
    products with many rows: the same where the build has none), the k, row and column
    blocks, B's packing budget in bytes and the micro-kernel's prefetch distance; wide_auto:
    whether products the wide tile suits take it on this CPU (use_wide_tiles overrides)."""
    return {"tile": {"float32": (CG_MR_F32, CG_NR_F32), "float64": (CG_MR_F64, CG_NR_F64)},
            "wide": {"float32": (CG_MR_WIDE_F32, CG_NR_F32),
                     "float64": (CG_MR_WIDE_F64, CG_NR_F64)},
            "wide_auto": bool(_wide_pays and CG_MR_WIDE_F64 != CG_MR_F64),
            "k_block": dict(k_block), "mc": CG_MC, "nc": CG_NC, "nsub": CG_NSUB,
            "packed_b": _packed_b, "prefetch_b": CG_PF_B}

# `gemm` runs products of at most this many multiply-adds (~200^3, ~150 us) on one thread,
# whatever num_threads says: under cygrad's passive OpenMP wait a parallel region costs ~50-200 us
# here (a sleeping thread's core must be woken), and two threads lost to one up to ~7-17M
# multiply-adds (benchmarks/README.md). Set it to 0 to always use num_threads (tests do).
serial_macs = 1 << 23
# The same bound for a product replayed in a compiled step's native program (_exec_gemm): its
# kernels run back to back, so the workers are still spinning from the last parallel region
# (GOMP_SPINCOUNT) and a region costs microseconds. The MNIST-size step at two threads: 0.64 of
# its one-thread time with 2^20 (its 64x256x128 products split), 0.69-0.97 with 2^23.
program_serial_macs = 1 << 20


cdef inline Py_ssize_t _iabs(Py_ssize_t x) noexcept nogil:
    return -x if x < 0 else x


cdef inline Py_ssize_t _cdiv(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    return (x + m - 1) // m


cdef inline Py_ssize_t _round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    return (x + m - 1) // m * m


cdef void _pack_a(floating *dst, const char *a, Py_ssize_t rs, Py_ssize_t cs,
                  Py_ssize_t m, Py_ssize_t kc, bint wide) noexcept nogil:
    """dst[p][k][r] := op(A)[p*MR + r, k] (op(A)[i, k] at a + i*rs + k*cs), 0 past row m;
    MR the wide tile's rows with `wide`."""
    cdef Py_ssize_t MR
    if wide:
        MR = CG_MR_WIDE_F32 if floating is float else CG_MR_WIDE_F64
    else:
        MR = CG_MR_F32 if floating is float else CG_MR_F64
    cdef Py_ssize_t isz = sizeof(floating)
    cdef Py_ssize_t p, p0, r, k, mr
    cdef const char *src
    for p in range(_cdiv(m, MR)):
        p0 = p * MR
        mr = min(MR, m - p0)
        src = a + p0 * rs
        if mr == MR and cs == isz and rs % isz == 0:  # k along memory: transposed in registers
            if floating is float:
                if wide:
                    cg_pack_a_kcont_wide_f32(dst, <const float *>src, rs // isz, kc)
                else:
                    cg_pack_a_kcont_f32(dst, <const float *>src, rs // isz, kc)
            else:
                if wide:
                    cg_pack_a_kcont_wide_f64(dst, <const double *>src, rs // isz, kc)
                else:
                    cg_pack_a_kcont_f64(dst, <const double *>src, rs // isz, kc)
        elif mr == MR and rs == isz and cs % isz == 0:  # i along memory (A transposed)
            if floating is float:
                if wide:
                    cg_pack_a_icont_wide_f32(dst, <const float *>src, cs // isz, kc)
                else:
                    cg_pack_a_icont_f32(dst, <const float *>src, cs // isz, kc)
            else:
                if wide:
                    cg_pack_a_icont_wide_f64(dst, <const double *>src, cs // isz, kc)
                else:
                    cg_pack_a_icont_f64(dst, <const double *>src, cs // isz, kc)
        else:  # any strides, or the ragged last panel: element by element, zero-padded
            for k in range(kc):
                for r in range(mr):
                    dst[k * MR + r] = (<const floating *>(src + r * rs + k * cs))[0]
                for r in range(mr, MR):
                    dst[k * MR + r] = 0
        dst += kc * MR


cdef void _pack_b(floating *dst, const char *b, Py_ssize_t rs, Py_ssize_t cs,
                  Py_ssize_t kc, Py_ssize_t n, Py_ssize_t NR) noexcept nogil:
    """dst[q][k][c] := op(B)[k, q*NR + c] (op(B)[k, j] at b + k*rs + j*cs), 0 past column n;
    NR the panel width, the full tile's or the narrow one."""
    cdef Py_ssize_t FULL = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t isz = sizeof(floating)
    cdef Py_ssize_t q, q0, c, k, nr, k0, kb, full = 0
    cdef const char *src
    cdef floating *d
    # j along memory: row copies, B_ROWS rows into every full panel before the next rows (one
    # panel at a time walked down B two cache lines a row, a miss every row: 2048^3 float64
    # spent 2.2% of its time packing B that way, 1.4% this way)
    if cs == isz and rs % isz == 0:
        full = n // NR
        k0 = 0
        while k0 < kc:
            kb = min(<Py_ssize_t>B_ROWS, kc - k0)
            for q in range(full):
                d = dst + q * kc * NR + k0 * NR
                src = b + q * NR * isz + k0 * rs
                if floating is float:
                    if NR == FULL:
                        cg_pack_b_jcont_f32(d, <const float *>src, rs // isz, kb)
                    else:
                        cg_pack_b_jcont_narrow_f32(d, <const float *>src, rs // isz, kb)
                else:
                    if NR == FULL:
                        cg_pack_b_jcont_f64(d, <const double *>src, rs // isz, kb)
                    else:
                        cg_pack_b_jcont_narrow_f64(d, <const double *>src, rs // isz, kb)
            k0 += kb
        dst += full * kc * NR
    for q in range(full, _cdiv(n, NR)):  # the rest (all of them when j is not along memory)
        q0 = q * NR
        nr = min(NR, n - q0)
        src = b + q0 * cs
        if nr == NR and rs == isz and cs % isz == 0:  # k along memory (B transposed)
            if floating is float:
                if NR == FULL:
                    cg_pack_b_kcont_f32(dst, <const float *>src, cs // isz, kc)
                else:
                    cg_pack_b_kcont_narrow_f32(dst, <const float *>src, cs // isz, kc)
            else:
                if NR == FULL:
                    cg_pack_b_kcont_f64(dst, <const double *>src, cs // isz, kc)
                else:
                    cg_pack_b_kcont_narrow_f64(dst, <const double *>src, cs // isz, kc)
        elif cs == isz:  # a ragged panel, j along memory: part-row copies
            for k in range(kc):
                memcpy(&dst[k * NR], src + k * rs, nr * isz)
                memset(&dst[k * NR + nr], 0, (NR - nr) * isz)
        elif rs == isz:  # a ragged panel, k along memory: column by column
            for k in range(kc):
                memset(&dst[k * NR + nr], 0, (NR - nr) * isz)
            for c in range(nr):
                for k in range(kc):
                    dst[k * NR + c] = (<const floating *>(src + c * cs))[k]
        else:  # any strides: element by element, zero-padded
            for k in range(kc):
                for c in range(nr):
                    dst[k * NR + c] = (<const floating *>(src + k * rs + c * cs))[0]
                for c in range(nr, NR):
                    dst[k * NR + c] = 0
        dst += kc * NR


cdef void _pack_a_patches(floating *dst, const Patches *pt, Py_ssize_t row0, Py_ssize_t pc,
                          Py_ssize_t m, Py_ssize_t kc) noexcept nogil:
    """_pack_a of a convolution's patches (Patches): dst[p][k][r] := op(A)[row0 + p*MR + r,
    pc + k], 0 in the padding and past row m: the values im2col_t writes, copied straight into
    the panels (no patches array, no second pass over it). A panel whose MR output positions
    lie in one output row at stride 1 reads MR neighbours of an image row: one run a kernel
    offset; any other panel goes element by element."""
    cdef Py_ssize_t MR = CG_MR_F32 if floating is float else CG_MR_F64
    # the geometry in locals: the stores into dst could otherwise alias it (no strict aliasing)
    cdef Py_ssize_t H = pt.H, W = pt.W, kh = pt.kh, kw = pt.kw, sh = pt.sh, sw = pt.sw
    cdef Py_ssize_t ph = pt.ph, pw = pt.pw, dh = pt.dh, dw = pt.dw, ow = pt.ow
    cdef Py_ssize_t KK = kh * kw, HW = H * W
    cdef const floating *x = <const floating *>pt.x
    cdef const floating *plane
    cdef Py_ssize_t p, r0, mr, oy, ox, k, c, i, j, y, xs, xx, r, q, ybase, xbase
    for p in range(_cdiv(m, MR)):
        r0 = row0 + p * MR
        mr = min(MR, m - p * MR)
        oy = r0 // ow
        ox = r0 - oy * ow
        c = pc // KK
        i = (pc - c * KK) // kw
        j = pc - c * KK - i * kw
        if mr == MR and sw == 1 and ox + MR <= ow:
            ybase = oy * sh - ph
            xbase = ox - pw
            plane = x + c * HW
            y = ybase + i * dh
            xs = xbase + j * dw
            for k in range(kc):
                if <size_t>y < <size_t>H and xs >= 0 and xs + MR <= W:
                    memcpy(dst + k * MR, plane + y * W + xs, MR * sizeof(floating))
                else:
                    for r in range(MR):
                        xx = xs + r
                        dst[k * MR + r] = plane[y * W + xx] \
                            if <size_t>y < <size_t>H and <size_t>xx < <size_t>W else 0
                j += 1
                xs += dw
                if j == kw:
                    j = 0
                    xs = xbase
                    i += 1
                    y += dh
                    if i == kh:
                        i = 0
                        y = ybase
                        plane += HW
        else:
            for k in range(kc):
                for r in range(MR):
                    dst[k * MR + r] = 0
                    if r < mr:
                        q = r0 + r
                        oy = q // ow
                        y = oy * sh + i * dh - ph
                        xx = (q - oy * ow) * sw + j * dw - pw
                        if <size_t>y < <size_t>H and <size_t>xx < <size_t>W:
                            dst[k * MR + r] = x[c * HW + y * W + xx]
                j += 1
                if j == kw:
                    j = 0
                    i += 1
                    if i == kh:
                        i = 0
                        c += 1
        dst += kc * MR


cdef inline void _pack_a_of(const Operands *g, floating *dst, Py_ssize_t ic, Py_ssize_t pc,
                            Py_ssize_t mc, Py_ssize_t kc) noexcept nogil:
    """Rows ic.. and columns pc.. of op(A), packed: from its strides, or from the patches."""
    if g.pa != NULL:
        _pack_a_patches(dst, g.pa, g.a_row0 + ic, pc, mc, kc)
    else:
        _pack_a(dst, g.a + ic * g.a_rs + pc * g.a_cs, g.a_rs, g.a_cs, mc, kc, g.mr != g.mr0)


cdef Py_ssize_t _LIMIT = (1 << 31) - 1  # each geometry number (as csrc/conv.pyx)

cdef extern from *:
    """
    /* Ask for n bytes from p on in the caches ahead of use: one request a cache line. */
    static void cg_prefetch(const void *p, ptrdiff_t n)
    {
    #if defined(__GNUC__) || defined(__clang__)
        for (ptrdiff_t i = 0; i < n; i += 64)
            __builtin_prefetch((const char *)p + i, 0, 2);
    #else
        (void)p, (void)n;
    #endif
    }
    """
    void cg_prefetch(const void *p, Py_ssize_t n) noexcept nogil

cdef extern from *:
    """
    /* Ask for a tile of C (rows ld bytes apart, n bytes each) in L1 ahead of its store: one
     * request a cache line, for writing. */
    static void cg_prefetch_tile(const void *p, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t n)
    {
    #if defined(__GNUC__) || defined(__clang__)
        for (ptrdiff_t r = 0; r < rows; ++r)
            for (ptrdiff_t i = 0; i < n; i += 64)
                __builtin_prefetch((const char *)p + r * ld + i, 1, 3);
    #else
        (void)p, (void)ld, (void)rows, (void)n;
    #endif
    }
    """
    void cg_prefetch_tile(const void *p, Py_ssize_t ld, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil


cdef void _pack_b_patches(floating *dst, const Patches *pt, Py_ssize_t pc, Py_ssize_t jc,
                          Py_ssize_t kc, Py_ssize_t n, Py_ssize_t NR) noexcept nogil:
    """_pack_b of a convolution's patches (op(B)[k, j] = patch j of output position k, the
    transpose of the A form above): dst[q][k][c] := op(B)[pc + k, jc + q*NR + c], 0 in the
    padding and past column n; the values im2col_t's columns hold, read from the image. Along
    an output row at stride 1 the NR patch columns are NR runs of image rows: windows of a
    vector's W positions are transposed in registers (cg_pack_b_rows), a row's last window
    shifted back to end with the row (storing only the positions not yet stored); a window
    reaching into the padding, a ragged panel or another stride go element by element."""
    cdef Py_ssize_t FULL = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t WL = CG_WF if floating is float else CG_WD
    cdef Py_ssize_t H = pt.H, W = pt.W, kh = pt.kh, kw = pt.kw, sh = pt.sh, sw = pt.sw
    cdef Py_ssize_t ph = pt.ph, pw = pt.pw, dh = pt.dh, dw = pt.dw, ow = pt.ow
    cdef Py_ssize_t KK = kh * kw, HW = H * W
    cdef const floating *x = <const floating *>pt.x
    cdef const floating *rows[64]
    cdef Py_ssize_t coff[64]
    cdef Py_ssize_t yoff[64]
    cdef Py_ssize_t xoff[64]
    cdef Py_ssize_t q, q0, nr, v, c, i, j, k, kk, pix, oy, ox, run, s, e, w0, y, xa, xx
    cdef Py_ssize_t ymin, ymax, xmin, xmax, row_oy
    cdef bint vec = (NR == FULL or NR == WL) and sw == 1 and ow >= WL and NR <= 64
    for q in range(_cdiv(n, NR)):
        q0 = jc + q * NR
        nr = min(NR, jc + n - q0)
        ymin = xmin = _LIMIT * 4
        ymax = xmax = -_LIMIT * 4
        c = q0 // KK  # column q0 + v is patch (c, i, j): counted up, not divided
        i = (q0 - c * KK) // kw
        j = q0 - c * KK - i * kw
        for v in range(min(nr, 64)):
            coff[v] = c * HW
            yoff[v] = i * dh - ph
            xoff[v] = j * dw - pw
            ymin, ymax = min(ymin, yoff[v]), max(ymax, yoff[v])
            xmin, xmax = min(xmin, xoff[v]), max(xmax, xoff[v])
            j += 1
            if j == kw:
                j = 0
                i += 1
                if i == kh:
                    i = 0
                    c += 1
        row_oy = -1  # the output row whose image rows `rows` points at
        k = 0
        while k < kc:
            pix = pc + k
            oy = pix // ow
            ox = pix - oy * ow
            run = min(ow - ox, kc - k)  # positions left in this output row and this block
            s = 0
            if vec and oy * sh + ymin >= 0 and oy * sh + ymax < H:
                if row_oy != oy:
                    for v in range(nr):  # (+ pw: inside the image, as the reads are)
                        rows[v] = x + coff[v] + (oy * sh + yoff[v]) * W + (xoff[v] + pw)
                    for v in range(nr, NR):  # a ragged panel's zero columns: read, dropped
                        rows[v] = rows[0]
                    row_oy = oy
                while s < run:
                    # the window [ox + w0, ox + w0 + WL) of this output row: at s, or shifted
                    # back to end with the run, or (a short run) reaching past it
                    e = min(s + WL, run)
                    w0 = e - WL
                    if ox + w0 < 0:
                        w0 = s
                        if ox + w0 + WL > ow:
                            break
                    xa = ox + w0
                    if xa + xmin < 0 or xa + xmax + WL > W:
                        break
                    if floating is float and NR == FULL:
                        cg_pack_b_rows_f32(dst + (k + s) * NR, <const float *const *>rows,
                                           xa - pw, <int>(s - w0), <int>(e - w0), <int>nr)
                    elif floating is float:
                        cg_pack_b_rows_narrow_f32(dst + (k + s) * NR,
                                                  <const float *const *>rows, xa - pw,
                                                  <int>(s - w0), <int>(e - w0), <int>nr)
                    elif NR == FULL:
                        cg_pack_b_rows_f64(dst + (k + s) * NR, <const double *const *>rows,
                                           xa - pw, <int>(s - w0), <int>(e - w0), <int>nr)
                    else:
                        cg_pack_b_rows_narrow_f64(dst + (k + s) * NR,
                                                  <const double *const *>rows, xa - pw,
                                                  <int>(s - w0), <int>(e - w0), <int>nr)
                    s = e
            for kk in range(s, run):  # what the windows did not take: element by element
                for v in range(NR):
                    dst[(k + kk) * NR + v] = 0
                    if v < nr:
                        y = oy * sh + yoff[v]
                        xx = (ox + kk) * sw + xoff[v]
                        if <size_t>y < <size_t>H and <size_t>xx < <size_t>W:
                            dst[(k + kk) * NR + v] = x[coff[v] + y * W + xx]
            k += run
        dst += kc * NR


cdef void _pack_b_flat(floating *dst, const Patches *pt, Py_ssize_t pc, Py_ssize_t jc,
                       Py_ssize_t kc, Py_ssize_t n, Py_ssize_t NR) noexcept nogil:
    """_pack_b of flat patches (Patches.flat): dst[q][k][c] := x[off(pc + k) + jc + q*NR + c]
    with off((c*kh + i)*kw + j) = c*HWx + i*dh*Wx + j*dw, 0 past column n: each row of a
    panel is one run of the padded image."""
    cdef Py_ssize_t FULL = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t kh = pt.kh, kw = pt.kw, dh = pt.dh, dw = pt.dw, Wx = pt.Wx, HWx = pt.HWx
    cdef Py_ssize_t KK = kh * kw, q, p0, nr, k, c, i, j, off
    cdef const floating *x = <const floating *>pt.x
    for q in range(_cdiv(n, NR)):
        p0 = jc + q * NR
        nr = min(NR, jc + n - p0)
        c = pc // KK
        i = (pc - c * KK) // kw
        j = pc - c * KK - i * kw
        off = c * HWx + i * dh * Wx + j * dw + p0
        for k in range(kc):
            if nr == FULL:
                if floating is float:
                    cg_move_nr_f32(dst + k * NR, x + off)
                else:
                    cg_move_nr_f64(dst + k * NR, x + off)
            else:
                memcpy(dst + k * NR, x + off, nr * sizeof(floating))
                memset(dst + k * NR + nr, 0, (NR - nr) * sizeof(floating))
            j += 1
            off += dw
            if j == kw:
                j = 0
                off += dh * Wx - kw * dw
                i += 1
                if i == kh:
                    i = 0
                    off += HWx - kh * dh * Wx
        dst += kc * NR


cdef inline void _pack_b_of(const Operands *g, floating *dst, Py_ssize_t pc, Py_ssize_t jc,
                            Py_ssize_t kc, Py_ssize_t nc, Py_ssize_t NR) noexcept nogil:
    """Rows pc.. and columns jc.. of op(B), packed: from its strides, or from the patches."""
    if g.pb != NULL and g.pb.flat:
        _pack_b_flat(dst, g.pb, pc, g.b_col0 + jc, kc, nc, NR)
    elif g.pb != NULL:
        _pack_b_patches(dst, g.pb, pc, g.b_col0 + jc, kc, nc, NR)
    else:
        _pack_b(dst, g.b + pc * g.b_rs + jc * g.b_cs, g.b_rs, g.b_cs, kc, nc, NR)


cdef inline void _kernel(Py_ssize_t kc, const floating *a, const floating *b, floating *c,
                         Py_ssize_t ldc, bint load_c, bint narrow, bint wide) noexcept nogil:
    """The micro-kernel: an MR x NR tile of C, or MR x NRN with `narrow`, or the wide tile's
    rows x NR with `wide`. All run the same multiply-add chain per element."""
    if floating is float:
        if wide:
            cg_kernel_wide_f32(kc, a, b, c, ldc, load_c)
        elif narrow:
            cg_kernel_narrow_f32(kc, a, b, c, ldc, load_c)
        else:
            cg_kernel_f32(kc, a, b, c, ldc, load_c)
    else:
        if wide:
            cg_kernel_wide_f64(kc, a, b, c, ldc, load_c)
        elif narrow:
            cg_kernel_narrow_f64(kc, a, b, c, ldc, load_c)
        else:
            cg_kernel_f64(kc, a, b, c, ldc, load_c)


cdef struct Patches:
    # A convolution's patches as op(A) (conv_image): op(A)[p, q] = x[c, oy*sh + i*dh - ph,
    # ox*sw + j*dw - pw] (0 outside the image) for the output position p = oy*ow + ox and the
    # kernel offset q = (c*kh + i)*kw + j; x (C, H, W) C-contiguous
    const char *x
    Py_ssize_t H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow
    # flat (conv_image at stride 1): x is the image padded to Hx x Wx rows (zeros around it,
    # slack after it) and op(B)[q, p] = x[c*HWx + p + i*dh*Wx + j*dw] for p = oy*Wx + ox: a
    # panel's positions are one run of memory for every q (ox >= ow: columns computed and
    # dropped)
    bint flat
    Py_ssize_t Wx, HWx


cdef struct Operands:
    # op(A)[i, k] at a + i*a_rs + k*a_cs and op(B)[k, j] at b + k*b_rs + j*b_cs (byte strides,
    # any sign); C is (m, n), row i at c + i*ldc elements
    const Patches *pa  # or, when not NULL, op(A) is these patches (rows from a_row0 on)
    const Patches *pb  # or op(B) is (op(B)[k, j] = patch j of output position k, from b_col0)
    Py_ssize_t a_row0, b_col0
    const char *a
    const char *b
    char *c
    Py_ssize_t a_rs, a_cs, b_rs, b_cs, ldc, m, n, k
    Py_ssize_t nr  # the width of B's panels and C's tiles: NR, or NRN for a narrow product
    Py_ssize_t mr  # the rows of A's panels and C's tiles: MR, or the wide tile's (_wide_rows)
    Py_ssize_t mr0  # MR
    Py_ssize_t mc  # the rows of a block of A: CG_MC rounded down to a multiple of mr
    Py_ssize_t nc  # the columns of C a pass takes: CG_NC, fewer when B's k blocks would not fit
    bint whole_b  # B's k blocks packed at once for those columns (else one k block at a time)
    Py_ssize_t blocks  # the k blocks (the leaves of each element's tree)
    Py_ssize_t cut  # whole_b: the leaves of the first part of k (blocks: k is not cut)
    bint deep  # whole_b: a unit's tiles run every leaf of its part back to back (_unit_deep)
    Py_ssize_t nsub  # deep: the columns of B a pass over the unit's rows takes


cdef Operands _operands(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
                        bint trans_a, bint trans_b) except *:
    """Shapes checked (the kernels run without bounds checks), pointers and strides read."""
    cdef Operands g
    g.m, g.n = c.shape[0], c.shape[1]
    g.k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t am = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t bk = b.shape[1] if trans_b else b.shape[0]
    cdef Py_ssize_t bn = b.shape[0] if trans_b else b.shape[1]
    if am != g.m or bn != g.n or bk != g.k:
        raise ValueError(f"gemm: op(A) {am}x{g.k} @ op(B) {bk}x{bn} does not fit C {g.m}x{g.n}")
    if np.may_share_memory(c, a) or np.may_share_memory(c, b):
        raise ValueError("gemm: c overlaps a or b; the product needs an output of its own")
    g.a_rs, g.a_cs = (a.strides[1], a.strides[0]) if trans_a else (a.strides[0], a.strides[1])
    g.b_rs, g.b_cs = (b.strides[1], b.strides[0]) if trans_b else (b.strides[0], b.strides[1])
    g.ldc = c.strides[0] // <Py_ssize_t>sizeof(floating)
    g.nr = CG_NR_F32 if floating is float else CG_NR_F64
    g.a = g.b = g.c = NULL
    g.pa, g.pb, g.a_row0, g.b_col0 = NULL, NULL, 0, 0
    if g.m > 0 and g.n > 0:
        g.c = <char *>&c[0, 0]
        if g.k > 0:
            g.a = <const char *>&a[0, 0]
            g.b = <const char *>&b[0, 0]
    return g


# ---------------------------------------------------------------- the k tree
# An element of C is a tree over k, the same for every element (it depends on k alone):
#   leaves  the fma chains of the k blocks of KC (CG_KC_F32 = 512 / CG_KC_F64 = 256), each
#           from +0 in ascending k;
#   tree    sums.h's tree over the N = ceil(k / KC) leaves (a binary counter: leaf t is merged
#           with the stored partial of level l for every trailing one bit l of t, stored + leaf,
#           and stored at the next level; the last leaf merges every stored level, lowest first).
# Partials of level l < D live in scratch planes (a thread's own), level D = bit length of N-1
# minus 1 in C itself: a product with k <= 2*KC needs no scratch at all, and k <= KC is the
# plain chain. A plane holds one block of columns of the rows in progress: the MC rows of the
# unit a thread runs when B's k blocks are packed at once (a unit ends with its partials merged:
# the next one reuses the plane, which stays in L2), else the thread's whole share.
# A long k may run in two parts (g.cut, use_k_cut): the first group of 2^D leaves, then the
# rest. Each part's k blocks of B are packed for twice the columns the whole k's would be, so A
# (packed again for every block of columns) is packed half as often; part 0 ends with its sum
# in C (level D), part 1's last leaf adds it as it would have anyway. At the cut every level
# below D is empty (the binary counter stands at 2^D), so the same leaves are added in the
# same order: the bits do not depend on it.
# A unit may also run deep tiles (g.deep, use_deep_tiles; automatic where k is cut): each tile
# runs every leaf of its part back to back, its partials below D one tile each (in L1), instead
# of each leaf running all the unit's tiles with the partials in planes between leaves; C's tile
# is asked for ahead of the part's last leaf. Each element sees the same leaves and merges in
# the same order. 2048^3 float64 one thread +2%, 512 x 2048 x 2048 +3% (benchmarks/README.md).

cdef inline int _top(Py_ssize_t blocks) noexcept nogil:
    """D: the highest level a partial is stored at (C itself); -1 for one block."""
    cdef int d = -1
    cdef Py_ssize_t x = blocks - 1
    while x:
        d += 1
        x >>= 1
    return d


cdef inline Py_ssize_t _merges(Py_ssize_t pb, Py_ssize_t blocks, int *level) noexcept nogil:
    """The levels leaf pb merges (a bit mask) and the level it is stored at (D for C)."""
    cdef int t = 0
    if pb == blocks - 1:  # the last leaf: every stored level, and the sum goes to C
        level[0] = _top(blocks)
        return pb
    while (pb >> t) & 1:
        t += 1
    level[0] = t
    return (<Py_ssize_t>1 << t) - 1


cdef struct Slots:
    # the stored partials: level l < top at plane + l*size (rows ld elements apart; row r of C
    # at plane row r % rows), level top (and the final sum) in C
    char *plane
    Py_ssize_t ld, size
    int top
    Py_ssize_t rows


cdef inline floating *_slot(Slots *s, int level, floating *c_block, Py_ssize_t ldc,
                            Py_ssize_t *ld, Py_ssize_t row, Py_ssize_t col) noexcept nogil:
    """Where element (row, col) of the current block of columns lies at `level`."""
    if level >= s.top:
        ld[0] = ldc
        return c_block + row * ldc + col
    ld[0] = s.ld
    return <floating *>s.plane + level * s.size + (row % s.rows) * s.ld + col


cdef inline int _stored(Py_ssize_t mask, Slots *s, floating *c_block, Py_ssize_t ldc,
                        Py_ssize_t row, Py_ssize_t col, const floating **src,
                        Py_ssize_t *ld) noexcept nogil:
    """Where element (row, col) lies at every level in mask, lowest first (src[i], rows ld[i]
    apart): the partials a leaf merges, in the order it adds them. Returns their number."""
    cdef int l = 0, n = 0
    while mask >> l:
        if (mask >> l) & 1:
            src[n] = _slot(s, l, c_block, ldc, &ld[n], row, col)
            n += 1
        l += 1
    return n


cdef void _merge(floating *v, Py_ssize_t ldv, Py_ssize_t rows, Py_ssize_t cols,
                 Py_ssize_t mask, Slots *s, floating *c_block, Py_ssize_t ldc, Py_ssize_t row,
                 Py_ssize_t col) noexcept nogil:
    """v := stored(l) + v for every level l in mask, lowest first (rows x cols at v)."""
    cdef const floating *src[64]
    cdef Py_ssize_t ld[64]
    cdef int l, n = _stored(mask, s, c_block, ldc, row, col, src, ld)
    cdef Py_ssize_t i, j
    for l in range(n):
        for i in range(rows):
            for j in range(cols):
                v[i * ldv + j] = src[l][i * ld[l] + j] + v[i * ldv + j]


cdef void _gemm_packed(Operands g, floating *abuf, floating *bbuf, floating *tile,
                       Slots slots) noexcept nogil:
    """C := op(A) @ op(B) on one thread, through packed panels and the micro-kernel.

    For each block of g.nc columns, every k block of B is packed once (k x nc: g.whole_b;
    or those of each part of a cut k, part 0 for every block of rows before part 1);
    then for each MC x KC block of A, in ascending k blocks, one A micro-panel stays in L1
    while that k block's B micro-panels stream past it. Each k block is a leaf of the tree
    above, and the leaves of MC rows are done before the next rows start, so the stored
    partials in use are MC rows wide (they stay in cache: with the k blocks outermost, the
    partials of every row of C went out to memory and back when C was large). When even 256
    columns of B's k blocks would not fit in CG_PACKED_B_MAX bytes (a very long k), the k
    blocks go outermost, one packed at a time. The same leaves and tree either way.
    """
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    cdef Py_ssize_t NR = g.nr
    cdef Py_ssize_t jc, pc, ic, kc, nc, mc, jb, pb, ib, mask
    cdef Py_ssize_t blocks = _cdiv(g.k, KC)
    cdef int level, part
    cdef floating *cblock
    for jb in range(_cdiv(g.n, g.nc)):
        if g.whole_b:
            for part in range(1 if g.cut == blocks else 2):
                _pack_b_block(&g, bbuf, jb, part)
                for ib in range(_cdiv(g.m, g.mc)):
                    _unit(&g, abuf, bbuf, tile, &slots, jb, ib, part)
            continue
        jc = jb * g.nc
        nc = min(g.nc, g.n - jc)
        cblock = <floating *>g.c + jc
        for pb in range(blocks):
            pc = pb * KC
            kc = min(KC, g.k - pc)
            mask = _merges(pb, blocks, &level)
            _pack_b_of(&g, bbuf, pc, jc, kc, nc, NR)
            for ib in range(_cdiv(g.m, g.mc)):
                ic = ib * g.mc
                mc = min(g.mc, g.m - ic)
                _pack_a_of(&g, abuf, ic, pc, mc, kc)
                _blocks(g, abuf, bbuf, tile, &slots, cblock, ic, mc, kc, nc, mask, level)


cdef inline void _part(const Operands *g, int part, Py_ssize_t *pb0,
                       Py_ssize_t *pb1) noexcept nogil:
    """The leaves pb0 <= pb < pb1 of part 0 or 1 of k (g.whole_b; g.cut)."""
    pb0[0] = 0 if part == 0 else g.cut
    pb1[0] = g.cut if part == 0 else g.blocks


cdef inline void _pack_b_block(const Operands *g, floating *bbuf, Py_ssize_t jb,
                               int part) noexcept nogil:
    """g.whole_b: every k block of a part of k (_part) of the jb-th block of g.nc columns of
    B, packed into bbuf."""
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    cdef Py_ssize_t jc = jb * g.nc, pc, pb, pb0, pb1
    cdef Py_ssize_t nc = min(g.nc, g.n - jc)
    cdef Py_ssize_t ncr = _round_up(nc, g.nr)
    _part(g, part, &pb0, &pb1)
    for pb in range(pb0, pb1):
        pc = pb * KC
        _pack_b_of(g, bbuf + (pc - pb0 * KC) * ncr, pc, jc, min(KC, g.k - pc), nc, g.nr)


cdef inline void _unit(const Operands *g, floating *abuf, const floating *bbuf, floating *tile,
                       Slots *slots, Py_ssize_t jb, Py_ssize_t ib, int part) noexcept nogil:
    """g.whole_b: the MC rows of block ib of C in its jb-th block of g.nc columns, every leaf
    of a part of k (_part: in ascending k blocks, and the tree's merges), from that part's
    block of B packed in bbuf. A unit of work of its own: its partials are done with when it
    returns (part 0 of a cut k leaves its sum in C, where part 1's last leaf adds it)."""
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    cdef Py_ssize_t jc = jb * g.nc, ic = ib * g.mc, pc, pb, kc, mask, pb0, pb1
    cdef Py_ssize_t nc = min(g.nc, g.n - jc), mc = min(g.mc, g.m - ic)
    cdef Py_ssize_t ncr = _round_up(nc, g.nr)
    cdef Py_ssize_t blocks = _cdiv(g.k, KC)
    cdef int level
    _part(g, part, &pb0, &pb1)
    if g.deep:
        _unit_deep(g, abuf, bbuf, tile, slots, jb, ib, pb0, pb1)
        return
    for pb in range(pb0, pb1):
        pc = pb * KC
        kc = min(KC, g.k - pc)
        mask = _merges(pb, blocks, &level)
        _pack_a_of(g, abuf, ic, pc, mc, kc)
        _blocks(g[0], abuf, bbuf + (pc - pb0 * KC) * ncr, tile, slots, <floating *>g.c + jc, ic,
                mc, kc, nc, mask, level)


cdef void _unit_deep(const Operands *g, floating *abuf, const floating *bbuf, floating *tile,
                     Slots *slots, Py_ssize_t jb, Py_ssize_t ib, Py_ssize_t pb0,
                     Py_ssize_t pb1) noexcept nogil:
    """_unit with deep tiles (g.deep): every tile runs the leaves pb0 <= pb < pb1 back to
    back, so the partials of the levels below D are one tile each (slots: MR x NR tiles, in
    L1) instead of planes of the unit's rows stored and read back between leaves, and C's
    tile is asked for in L1 before the last leaf stores (or adds) the part's sum. A's k
    blocks of the part are packed first (abuf: one after another, round_up(mc, MR) x KC
    apart); the columns go g.nsub at a time (their part of B, every k block of the part,
    stays in L2 while the unit's rows pass). Each tile runs the same leaves and merges in
    the same order as _unit's leaf after leaf: the same bits."""
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    cdef Py_ssize_t FULL = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t MR = g.mr, NR = g.nr
    cdef bint narrow = NR != FULL
    cdef Py_ssize_t jc = jb * g.nc, ic = ib * g.mc, pc, pb, kc, mask, ld, mr, nr
    cdef Py_ssize_t nc = min(g.nc, g.n - jc), mc = min(g.mc, g.m - ic)
    cdef Py_ssize_t ncr = _round_up(nc, NR), mpad = _round_up(mc, MR)
    cdef Py_ssize_t j0 = 0, j1, rb, cb, ir, jr
    cdef floating *ctile
    cdef floating *dest
    cdef int level
    for pb in range(pb0, pb1):
        pc = pb * KC
        _pack_a_of(g, abuf + (pb - pb0) * mpad * KC, ic, pc, mc, min(KC, g.k - pc))
    while j0 < nc:
        j1 = min(j0 + g.nsub, nc)
        for rb in range(_cdiv(mc, MR)):
            ir = rb * MR
            mr = min(MR, mc - ir)
            for cb in range(j0 // NR, _cdiv(j1, NR)):
                jr = cb * NR
                nr = min(NR, nc - jr)
                ctile = <floating *>g.c + (ic + ir) * g.ldc + jc + jr
                for pb in range(pb0, pb1):
                    pc = pb * KC
                    kc = min(KC, g.k - pc)
                    mask = _merges(pb, g.blocks, &level)
                    if pb == pb1 - 1:  # its sum goes to C (level D): C's lines on their way
                        cg_prefetch_tile(ctile, g.ldc * sizeof(floating), mr,
                                         nr * sizeof(floating))
                    dest = _slot(slots, level, ctile, g.ldc, &ld, 0, 0)
                    _tile(kc, abuf + (pb - pb0) * mpad * KC + ir * kc,
                          bbuf + (pc - pb0 * KC) * ncr + jr * kc, dest, ld, mr, nr, mask,
                          slots, ctile, g.ldc, 0, 0, tile, MR, NR, narrow)
        j0 = j1


cdef inline void _blocks(Operands g, const floating *abuf, const floating *bblock,
                         floating *tile, Slots *slots, floating *cblock, Py_ssize_t ic,
                         Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t nc, Py_ssize_t mask,
                         int level) noexcept nogil:
    """One leaf of an mc x nc block of C (rows ic.. of the columns at cblock) from a packed
    MC x KC block of A and KC x nc block of B, CG_NSUB columns at a time: those columns'
    part of B stays in L2 while every micro-panel of A passes (a KC x nc block of B, 1 MiB
    and more, did not: it came from L3 for each micro-panel)."""
    cdef Py_ssize_t j0 = 0, NSUB = CG_NSUB
    while j0 < nc:
        _block(g, abuf, bblock, tile, slots, cblock, ic, mc, kc, nc, mask, level, j0,
               min(j0 + NSUB, nc))
        j0 += NSUB


cdef inline void _block(Operands g, const floating *abuf, const floating *bblock,
                        floating *tile, Slots *slots, floating *cblock, Py_ssize_t ic,
                        Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t nc, Py_ssize_t mask,
                        int level, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Columns j0..j1 (j0 a multiple of the panel width) of one leaf of an mc x nc block of C
    (rows ic.. of the columns at cblock) from a packed MC x KC block of A and KC x nc block
    of B: its tiles, each merged and stored at `level`."""
    cdef Py_ssize_t MR = g.mr
    cdef Py_ssize_t FULL = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t NR = g.nr
    cdef bint narrow = NR != FULL
    cdef Py_ssize_t rb, cb, ir, jr, ld
    cdef Py_ssize_t ncb = _cdiv(j1, NR)
    cdef floating *dest
    for rb in range(_cdiv(mc, MR)):
        ir = rb * MR
        for cb in range(j0 // NR, ncb):
            jr = cb * NR
            dest = _slot(slots, level, cblock, g.ldc, &ld, ic + ir, jr)
            _tile(kc, abuf + ir * kc, bblock + jr * kc, dest, ld, min(MR, mc - ir),
                  min(NR, nc - jr), mask, slots, cblock, g.ldc, ic + ir, jr, tile, MR, NR,
                  narrow)


cdef inline void _tile(Py_ssize_t kc, const floating *a, const floating *b, floating *c,
                       Py_ssize_t ldc, Py_ssize_t mr, Py_ssize_t nr, Py_ssize_t mask,
                       Slots *slots, floating *cblock, Py_ssize_t ldcb, Py_ssize_t row,
                       Py_ssize_t col, floating *tile, Py_ssize_t MR, Py_ssize_t NR,
                       bint narrow) noexcept nogil:
    """One mr x nr tile of a leaf from packed micro-panels a, b (panels NR wide), merged with
    the stored partials of `mask`, into c. A full tile adds them in the micro-kernel's
    registers; a ragged edge tile, or a narrow one to merge, runs the same micro-kernel on a
    full scratch tile first. MR: the tile's rows (MR, or the wide tile's)."""
    cdef Py_ssize_t MR0 = CG_MR_F32 if floating is float else CG_MR_F64
    cdef bint wide = MR != MR0
    cdef Py_ssize_t i
    cdef int n
    cdef const floating *src[64]
    cdef Py_ssize_t lds[64]
    if mr == MR and nr == NR and mask == 0:  # the plain kernel
        _kernel(kc, a, b, c, ldc, False, narrow, wide)
        return
    if mr == MR and nr == NR and not narrow:  # a full tile (and its merges): in the registers
        n = _stored(mask, slots, cblock, ldcb, row, col, src, lds)
        if floating is float:
            if wide:
                cg_kernel_wide_f32_sum(kc, a, b, c, ldc, False, n, src, lds)
            else:
                cg_kernel_f32_sum(kc, a, b, c, ldc, False, n, src, lds)
        else:
            if wide:
                cg_kernel_wide_f64_sum(kc, a, b, c, ldc, False, n, src, lds)
            else:
                cg_kernel_f64_sum(kc, a, b, c, ldc, False, n, src, lds)
        return
    _kernel(kc, a, b, tile, NR, False, narrow, wide)
    if mask:
        _merge(tile, NR, mr, nr, mask, slots, cblock, ldcb, row, col)
    if not narrow and nr == NR:  # full rows of a full panel: vector moves
        for i in range(mr):
            if floating is float:
                cg_move_nr_f32(&c[i * ldc], &tile[i * NR])
            else:
                cg_move_nr_f64(&c[i * ldc], &tile[i * NR])
        return
    for i in range(mr):  # row copies: a loop over (i, j) ran as scalar code
        memcpy(&c[i * ldc], &tile[i * NR], nr * sizeof(floating))


cdef inline Operands _share(Operands g, Py_ssize_t t, Py_ssize_t nt, bint split_n,
                            Py_ssize_t MR, Py_ssize_t isz) noexcept nogil:
    """Thread t's share of nt: a contiguous run of whole column tiles of C (split_n) or of row
    tiles (MR rows each; elements of isz bytes); its g.m or g.n may come out 0."""
    cdef Py_ssize_t NR = g.nr
    cdef Py_ssize_t tiles, lo, hi
    if split_n:
        tiles = _cdiv(g.n, NR)
        lo = min(tiles * t // nt * NR, g.n)
        hi = min(tiles * (t + 1) // nt * NR, g.n)
        g.c += lo * isz
        g.b += lo * g.b_cs
        g.b_col0 += lo
        g.n = hi - lo
    else:
        tiles = _cdiv(g.m, MR)
        lo = min(tiles * t // nt * MR, g.m)
        hi = min(tiles * (t + 1) // nt * MR, g.m)
        g.c += lo * g.ldc * isz
        g.a += lo * g.a_rs
        g.a_row0 += lo
        g.m = hi - lo
    return g


cdef inline Py_ssize_t _units(const Operands *g) noexcept nogil:
    """The units of work (_unit) of a share that can be taken from its queue: its blocks of
    columns times its blocks of rows (none when B's k blocks go one at a time, or past 2^31)."""
    if not g.whole_b or g.m <= 0 or g.n <= 0:
        return 0
    cdef Py_ssize_t units = _cdiv(g.n, g.nc) * _cdiv(g.m, g.mc)
    return units if units < (<Py_ssize_t>1 << 31) else 0


cdef void _gemm_share(Operands g, floating *buf, Py_ssize_t a_size, Py_ssize_t b_size,
                      Slots slots, Py_ssize_t t, Py_ssize_t nt, bint split_n,
                      cg_queue *queues) noexcept nogil:
    """Thread t of nt: its share of C, with its own packing buffers (buf: a_size + b_size +
    MR*NR elements) and partials; then, with queues, units of the other shares still waiting.

    A share of units (_unit) is a queue: its thread takes them from the front, in the order
    the one-thread loop runs them (each block of B packed once); a thread done with its own
    takes another share's from the back while at least two wait, packing that block of B for
    itself. A thread the host held up (or started late) is not waited for. Which thread
    computes a unit changes no bit: every element is the same sequence of operations."""
    cdef Py_ssize_t MR = g.mr
    cdef Operands own = _share(g, t, nt, split_n, MR, sizeof(floating)), other
    cdef Py_ssize_t v
    if queues == NULL or _units(&own) == 0:
        if own.m > 0 and own.n > 0:
            _gemm_packed(own, buf, buf + a_size, buf + a_size + b_size, slots)
    else:
        if t > 0 and cg_steal_hold:  # tests: wait until thread 0 is done, stealing included
            cg_wait_done(&queues[0])
        _drain(&own, &queues[t], False, buf, a_size, b_size, &slots)
    if queues == NULL:
        return
    for v in range(1, nt):  # the other shares, from the back
        other = _share(g, (t + v) % nt, nt, split_n, MR, sizeof(floating))
        if _units(&other) > 0:
            cg_count_stolen(_drain(&other, &queues[(t + v) % nt], True, buf, a_size, b_size,
                                   &slots))
    cg_set_done(&queues[t])


cdef Py_ssize_t _drain(const Operands *share, cg_queue *queue, bint back, floating *buf,
                       Py_ssize_t a_size, Py_ssize_t b_size, Slots *slots) noexcept nogil:
    """Run the units of `share` taken from its queue (its own thread: from the front; another:
    from the back while at least two wait), packing each block of B once for this thread's
    run of them. Returns how many it ran. With k cut in two parts (g.cut), a unit is both
    parts of its rows: the thread that takes it runs part 0 at once and part 1 after the last
    unit it takes in the same block of columns (one packing of each part's B), so part 1
    always follows part 0 of the same rows on the same thread."""
    cdef Py_ssize_t ib_count = _cdiv(share.m, share.mc), held = -1, done = 0, taken = 0
    cdef bint cut = share.cut < share.blocks
    cdef int rows[CUT_UNITS]  # cut: the blocks of rows taken in the held block of columns
    cdef long long u = cg_take(queue, back, 2 if back else 1)
    while u >= 0:
        if u // ib_count != held:
            if cut and held >= 0:
                _second_parts(share, buf, a_size, b_size, slots, held, rows, taken)
            held = u // ib_count
            taken = 0
            _pack_b_block(share, buf + a_size, held, 0)
        if cut:
            rows[taken] = <int>(u % ib_count)
            taken += 1
        _unit(share, buf, buf + a_size, buf + a_size + b_size, slots, held, u % ib_count, 0)
        done += 1
        u = cg_take(queue, back, 2 if back else 1)
    if cut and held >= 0:
        _second_parts(share, buf, a_size, b_size, slots, held, rows, taken)
    return done


cdef inline void _second_parts(const Operands *share, floating *buf, Py_ssize_t a_size,
                               Py_ssize_t b_size, Slots *slots, Py_ssize_t jb, const int *rows,
                               Py_ssize_t count) noexcept nogil:
    """_drain: part 1 of k of the units whose part 0 this thread has run in block jb of columns
    (their blocks of rows)."""
    cdef Py_ssize_t i
    _pack_b_block(share, buf + a_size, jb, 1)
    for i in range(count):
        _unit(share, buf, buf + a_size, buf + a_size + b_size, slots, jb, rows[i], 1)


cdef bint _split_n(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Py_ssize_t nt,
                   Py_ssize_t MR, Py_ssize_t NR) noexcept nogil:
    """Split the columns of C between threads, or the rows? Each thread packs all of the operand
    that is not split: pick the cheaper of (a thread's share of tiles + what it packs), with a
    packed element costing about as much as 16 multiply-adds (one AVX-512 FMA)."""
    cdef Py_ssize_t m_pad = _round_up(m, MR), n_pad = _round_up(n, NR)
    cdef Py_ssize_t n_share = _cdiv(_cdiv(n, NR), nt) * NR, m_share = _cdiv(_cdiv(m, MR), nt) * MR
    cdef double cost_n = m_pad * n_share * <double>k / 16.0 + <double>m * k + <double>k * n_share
    cdef double cost_m = m_share * n_pad * <double>k / 16.0 + <double>k * n + <double>m_share * k
    return cost_n <= cost_m


cdef inline char *_aligned(char *p) noexcept nogil:
    return <char *>((<uintptr_t>p + ALIGN - 1) & ~(<uintptr_t>(ALIGN - 1)))


cdef inline double _tiles_cost(Py_ssize_t m, Py_ssize_t n, Py_ssize_t MR, Py_ssize_t NR,
                               Py_ssize_t NRN) noexcept nogil:
    """The padded elements of C the micro-kernel runs for an m x n product, narrow tiles
    (half the accumulators, latency-bound) counted 1.7 times (measured here)."""
    if n <= NRN:
        return 1.7 * <double>_round_up(m, MR) * <double>NRN
    return <double>_round_up(m, MR) * <double>_round_up(n, NR)


cdef int _wide_mode = -1  # use_wide_tiles: -1 automatic, 0 never, 1 always (where there is one)
cdef bint _wide_pays = cg_wide_pays()  # the automatic choice may take it on this CPU


def use_wide_tiles(mode):
    """Force the wide tile (CG_MR_WIDE_*) on (True) or off (False) for every product that can
    take it, or back to the automatic choice (None, _wide_rows); returns the setting before.
    For tests and measurements: the tile's shape changes no bit of any product."""
    global _wide_mode
    before = None if _wide_mode < 0 else bool(_wide_mode)
    _wide_mode = -1 if mode is None else int(bool(mode))
    return before


cdef inline bint _wide_rows(Py_ssize_t m, Py_ssize_t MR, Py_ssize_t WR, Py_ssize_t n,
                            Py_ssize_t k) noexcept nogil:
    """Run a product's tiles WR rows high (the wide tile: more accumulators, fewer loads of B
    a multiply-add) instead of MR? Where the build has one (WR > MR: AVX-512), for a product
    of 2^24 multiply-adds or more (~256^3) whose rows padded to WR take at most 3% more than
    padded to MR: so chosen, 512^3-2048^3 ran 2.5-3.4% faster in float64 and 0.7-2.6% in
    float32 at one thread, 2-9% at two; always 14 rows, 2% slower at 256^3 (266 padded rows)
    and up to 16% with 64-128 rows (Xeon, 2026-12-03). Never on a CPU where it does not pay
    (cg_wide_pays: AMD's)."""
    if WR == MR or _wide_mode == 0:
        return False
    if _wide_mode == 1:
        return True
    if not _wide_pays:
        return False
    return <double>m * <double>n * <double>k >= <double>(1 << 24) and \
        <double>_round_up(m, WR) <= 1.03 * <double>_round_up(m, MR)


cdef inline bint _swap(Operands *g, Py_ssize_t MR, Py_ssize_t NR, Py_ssize_t NRN) noexcept nogil:
    """Run C.T = op(B).T @ op(A).T instead (into a scratch array, then copied)? When C's ragged
    tiles waste clearly less that way: few columns and more rows (a small layer's weight
    gradient, 32 x 9 over 30k positions; a 10-class layer), C of at most 2^18 elements, and
    2^15 multiply-adds at least (below, the scratch array and the copy cost more than the tiles
    save: a 32 x 16 x 16 product took 0.2 us longer transposed, 64 x 16 x 64 0.2 us less). The
    bits are the same either way: every element is the same chain of fma(a, b, acc) =
    fma(b, a, acc) over the same k tree."""
    return g.k >= 16 and g.m * g.n <= 1 << 18 and g.m * g.n * g.k >= 1 << 15 and \
        _tiles_cost(g.n, g.m, MR, NR, NRN) <= 0.8 * _tiles_cost(g.m, g.n, MR, NR, NRN)


def swaps(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, dtype):
    """Whether an (m x k) @ (k x n) product of `dtype` runs as its transpose (see _swap)."""
    cdef Operands g
    g.m, g.n, g.k = m, n, k
    g.pa = g.pb = NULL
    if np.dtype(dtype) == _F32_DTYPE:
        return _swap(&g, CG_MR_F32, CG_NR_F32, CG_NRN_F32)
    return _swap(&g, CG_MR_F64, CG_NR_F64, CG_NRN_F64)


cdef int _run(Operands g, floating *tag, int num_threads, double serial) except -1:
    """C := op(A) @ op(B) for checked operands (tag only picks the dtype): the packing buffers,
    the tree's partials and the split of C's tiles between threads."""
    if g.m == 0 or g.n == 0:
        return 0
    cdef Py_ssize_t i, j
    if g.k == 0:
        for i in range(g.m):
            memset(g.c + i * g.ldc * <Py_ssize_t>sizeof(floating), 0, g.n * sizeof(floating))
        return 0
    cdef Operands t
    cdef floating *ct
    if g.pa == NULL and g.pb == NULL and _swap(&g, CG_MR_F32 if floating is float else CG_MR_F64,
             CG_NR_F32 if floating is float else CG_NR_F64,
             CG_NRN_F32 if floating is float else CG_NRN_F64):
        ct = <floating *>malloc(g.m * g.n * sizeof(floating))
        if ct == NULL:
            raise MemoryError(f"gemm: cannot allocate {g.m * g.n * sizeof(floating)} bytes for "
                              "a transposed product")
        t.pa, t.pb, t.a_row0, t.b_col0 = NULL, NULL, 0, 0
        t.a, t.a_rs, t.a_cs = g.b, g.b_cs, g.b_rs
        t.b, t.b_rs, t.b_cs = g.a, g.a_cs, g.a_rs
        t.c, t.ldc, t.m, t.n, t.k = <char *>ct, g.m, g.n, g.m, g.k
        try:
            _run_direct(t, tag, num_threads, serial)
            with nogil:
                for i in range(g.m):
                    for j in range(g.n):
                        (<floating *>g.c)[i * g.ldc + j] = ct[j * g.m + i]
        finally:
            free(ct)
        return 0
    return _run_direct(g, tag, num_threads, serial)


cdef inline void _tiles_of(Operands *g, floating *tag) noexcept nogil:
    """The tile (g.mr x g.nr, g.mr0 the plain tile's rows) and row block (g.mc) of a product
    laid out as it is (m, n, k > 0; tag only picks the dtype)."""
    cdef Py_ssize_t MR = CG_MR_F32 if floating is float else CG_MR_F64
    cdef Py_ssize_t NR = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t NRN = CG_NRN_F32 if floating is float else CG_NRN_F64
    if g.n <= NRN:  # a narrow product (a small layer): one-vector tiles, no padding to NR
        NR = NRN
    g.nr = NR
    g.mr0 = MR
    cdef Py_ssize_t WR = CG_MR_WIDE_F32 if floating is float else CG_MR_WIDE_F64
    if NR != NRN and g.pa == NULL and _wide_rows(g.m, MR, WR, g.n, g.k):
        MR = WR
    g.mr = MR
    g.mc = CG_MC // MR * MR


cdef inline Py_ssize_t _buffers_of(Operands *g, floating *tag, Py_ssize_t nt, bint split_n,
                                   Py_ssize_t *a_size, Py_ssize_t *b_size,
                                   Slots *slots) noexcept nogil:
    """The blocks of columns (g.nc, g.whole_b) and each of nt threads' buffers for a product
    _tiles_of has laid out: a_size, b_size and the planes of partials (slots); returns the
    elements a thread's buffer takes (a multiple of 16: buffers one after another stay
    64-byte aligned), its planes last."""
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    cdef Py_ssize_t MR = g.mr, NR = g.nr
    # B's k blocks for g.nc columns packed at once: _packed_b / nt bytes of them, but 256 columns
    # at least (A is packed again for every block of columns), unless 256 columns (or all of
    # them) would take more than CG_PACKED_B_MAX bytes: then one k block at a time, CG_NC wide
    cdef Py_ssize_t isz = sizeof(floating)
    g.whole_b = g.k * _round_up(min(g.n, <Py_ssize_t>256), NR) * isz <= CG_PACKED_B_MAX
    g.nc = _columns(g.k, nt, NR, isz) if g.whole_b else CG_NC
    cdef Py_ssize_t blocks = _cdiv(g.k, KC), cut, nc_cut
    cdef Py_ssize_t n_share = _cdiv(_cdiv(g.n, NR), nt) * NR if split_n else g.n
    # k cut in two parts (the k tree above) when 256 columns of the whole k's B take a thread's
    # budget or more and the cut leaves fewer blocks of columns: each part's B then packs the
    # columns that fill what the whole k's took, and the tiles run deep (_unit_deep). 2048^3
    # float64 (8 leaves: 4 + 4; 512 columns instead of 256) 1.5-2% faster at one thread and at
    # two, 512 x 2048 x 2048 2%, float32 2048 x 2048 x 4096 1.6%, then deep tiles 2-3% more.
    # Until deep tiles it took 4 blocks of columns or more: with 2 (1024^3 float64 at two
    # threads) part 0's sums going out to memory and back lost 1%; with deep tiles 1024^3 at two
    # threads, 2048 x 512 x 2048 and 1024 x 768 x 2048 at one are 1.7-2.4% faster cut, 512 x
    # 512 x 4096 3.6% (benchmarks/README.md).
    g.cut = g.blocks = blocks
    if g.whole_b and blocks >= 2 and _cut_mode != 0 and _cdiv(g.m, g.mc) <= CUT_UNITS:
        cut = (<Py_ssize_t>1) << _top(blocks)
        nc_cut = min(<Py_ssize_t>CG_NC, max(_packed_b // nt, g.k * g.nc * isz) // (cut * KC * isz)
                     // NR * NR)
        if _cut_mode == 1 or (g.k * 256 * isz >= _packed_b // nt and
                              _cdiv(n_share, nc_cut) < _cdiv(n_share, g.nc)):
            g.cut, g.nc = cut, max(nc_cut, NR)
    # per thread: an MC x KC block of A, the packed B (whole_b: k x nc, or a part's, else
    # KC x nc) and a scratch tile, each rounded to 16 elements so that all three stay 64-byte
    # aligned; then its planes of partials
    cdef Py_ssize_t mc = min(g.mc, g.m), kc = min(KC, g.k)
    cdef Py_ssize_t nc = min(g.nc, g.n)
    a_size[0] = _round_up(_round_up(mc, MR) * kc, 16)
    # deep tiles (_unit_deep) where k is cut (use_deep_tiles): the part's k blocks of A at once,
    # B's columns in passes of about CG_NSUB k blocks' worth, each level's partials one tile
    g.deep = g.whole_b and blocks >= 2 and (
        _deep_mode == 1 or (_deep_mode < 0 and g.cut < blocks))
    if g.deep:
        a_size[0] = _round_up(_round_up(mc, MR) * KC * g.cut, 16)
        g.nsub = max(NR, CG_NSUB // g.cut // NR * NR)
    b_size[0] = _round_up((min(g.k, g.cut * KC) if g.whole_b else kc) * _round_up(nc, NR), 16)
    slots.top = _top(blocks)
    slots.ld = min(g.nc, n_share)
    # a thread's planes hold the partials of its whole share (B's k blocks outermost), or of
    # the MC rows of the unit it runs (whole_b: a unit is done with its partials when it ends)
    slots.rows = g.m if split_n else _cdiv(_cdiv(g.m, MR), nt) * MR
    if g.whole_b:
        slots.rows = min(slots.rows, g.mc)
    slots.size = _round_up(slots.rows * slots.ld, 16)
    if g.deep:
        slots.ld, slots.rows, slots.size = NR, MR, _round_up(MR * NR, 16)
    return _round_up(a_size[0] + b_size[0] + MR * NR, 16) + max(slots.top, 0) * slots.size


cdef inline Py_ssize_t _columns(Py_ssize_t k, Py_ssize_t nt, Py_ssize_t NR,
                               Py_ssize_t isz) noexcept nogil:
    """The columns of B whose k rows (packed) fit a thread's share of the budget: a multiple
    of NR, 256 at least, CG_NC at most."""
    return min(<Py_ssize_t>CG_NC, max(256, <Py_ssize_t>(_packed_b // nt // (k * isz)) // NR * NR))


cdef int _cut_mode = -1  # use_k_cut: -1 automatic, 0 never, 1 wherever it can


def use_k_cut(mode):
    """Cut k in two parts (the tree's first group of leaves, then the rest) wherever a product
    can (True), never (False), or where it pays (None: the automatic choice); returns the
    setting before. For tests and measurements: which parts run when changes no bit."""
    global _cut_mode
    before = None if _cut_mode < 0 else bool(_cut_mode)
    _cut_mode = -1 if mode is None else int(bool(mode))
    return before


cdef int _deep_mode = -1  # use_deep_tiles: -1 automatic, 0 never, 1 wherever it can


def use_deep_tiles(mode):
    """Deep tiles (each tile runs every leaf of its part of k back to back, the tree's lower
    partials in L1) wherever a product can take them (True: B's k blocks packed at once, two
    leaves or more), never (False), or where they pay (None: the automatic choice, where k
    is cut in two parts); returns the setting before. For tests and measurements: the order
    in which tiles and leaves run changes no bit."""
    global _deep_mode
    before = None if _deep_mode < 0 else bool(_deep_mode)
    _deep_mode = -1 if mode is None else int(bool(mode))
    return before


def deep_tiles(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, dtype, int num_threads):
    """Whether an (m x k) @ (k x n) product of `dtype` on num_threads runs with deep tiles
    (use_deep_tiles)."""
    return _layout(m, n, k, dtype, num_threads).deep


cdef int _run_pair(Operands g1, Operands g2, floating *tag) except -1:
    """Two independent products (m, n, k > 0, neither _swap's), each whole on a thread of its
    own, at once: a compiled step's layer gradients (dX = g @ W beside dW = g.T @ x), where two
    halves of each, one after the other, lost more to the threads' start and join than they
    gained. Each is the one-thread loop of _run_direct: its bits."""
    cdef Py_ssize_t a1, b1, a2, b2
    cdef Slots s1, s2
    _tiles_of(&g1, tag)
    _tiles_of(&g2, tag)
    cdef Py_ssize_t step1 = _buffers_of(&g1, tag, 1, False, &a1, &b1, &s1)
    cdef Py_ssize_t step2 = _buffers_of(&g2, tag, 1, False, &a2, &b2, &s2)
    cdef size_t need = (step1 + step2) * sizeof(floating) + ALIGN
    cdef char *mem = <char *>malloc(need)
    if mem == NULL:
        raise MemoryError(f"gemm: cannot allocate {need} bytes of packing buffers and partials")
    cdef floating *buf = <floating *>_aligned(mem)
    s1.plane = <char *>(buf + step1 - max(s1.top, 0) * s1.size)
    s2.plane = <char *>(buf + step1 + step2 - max(s2.top, 0) * s2.size)
    cdef Py_ssize_t t
    with nogil:
        for t in prange(2, num_threads=2, schedule="static", chunksize=1):
            if t == 0:
                _gemm_share(g1, buf, a1, b1, s1, 0, 1, False, NULL)
            else:
                _gemm_share(g2, buf + step1, a2, b2, s2, 0, 1, False, NULL)
    free(mem)
    return 0


cdef inline Py_ssize_t _threads_of(const Operands *g, int num_threads, double serial,
                                   bint *split_n) noexcept nogil:
    """The threads a product _tiles_of has laid out runs on, and whether they split its
    columns (split_n) or its rows."""
    cdef Py_ssize_t nt = cg_threads(num_threads)
    if <double>g.m * <double>g.n * <double>g.k <= serial:
        nt = 1
    split_n[0] = nt > 1 and _split_n(g.m, g.n, g.k, nt, g.mr, g.nr)
    return min(nt, _cdiv(g.n, g.nr) if split_n[0] else _cdiv(g.m, g.mr))


cdef Operands _layout(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, dtype, int num_threads):
    """How an (m x k) @ (k x n) product of `dtype` on num_threads is laid out (_tiles_of,
    _buffers_of; whole_b False when it is empty)."""
    cdef Operands g
    cdef bint split_n
    cdef Py_ssize_t nt, a_size, b_size
    cdef Slots slots
    g.m, g.n, g.k = m, n, k
    g.pa = g.pb = NULL
    g.whole_b = g.deep = False
    g.cut = g.blocks = 0
    if m <= 0 or n <= 0 or k <= 0:
        return g
    if np.dtype(dtype) == _F32_DTYPE:
        _tiles_of(&g, <float *>NULL)
        nt = _threads_of(&g, num_threads, <double>serial_macs, &split_n)
        _buffers_of(&g, <float *>NULL, nt, split_n, &a_size, &b_size, &slots)
    else:
        _tiles_of(&g, <double *>NULL)
        nt = _threads_of(&g, num_threads, <double>serial_macs, &split_n)
        _buffers_of(&g, <double *>NULL, nt, split_n, &a_size, &b_size, &slots)
    return g


def cut_leaves(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, dtype, int num_threads):
    """The leaves of the first part of k when an (m x k) @ (k x n) product of `dtype` on
    num_threads runs with k cut in two (use_k_cut), else 0."""
    cdef Operands g = _layout(m, n, k, dtype, num_threads)
    return g.cut if g.whole_b and g.cut < g.blocks else 0


cdef int _run_direct(Operands g, floating *tag, int num_threads, double serial) except -1:
    """_run's product as it is laid out (m, n, k > 0)."""
    _tiles_of(&g, tag)
    cdef Py_ssize_t MR = g.mr, NR = g.nr
    cdef bint split_n
    cdef Py_ssize_t nt = _threads_of(&g, num_threads, serial, &split_n)
    cdef Py_ssize_t a_size, b_size
    cdef Slots slots
    cdef Py_ssize_t step = _buffers_of(&g, tag, nt, split_n, &a_size, &b_size, &slots)
    cdef Py_ssize_t planes = max(slots.top, 0) * slots.size
    cdef double small[SMALL_DOUBLES]  # a small product packs on the stack
    cdef size_t need = nt * step * sizeof(floating) + ALIGN
    cdef char *mem = <char *>small if need <= SMALL_BUFFER else <char *>malloc(need)
    if mem == NULL:
        raise MemoryError(f"gemm: cannot allocate {need} bytes of packing buffers and partials")
    cdef floating *buf = <floating *>_aligned(mem)
    cdef Py_ssize_t t, own = step - planes, units = 0
    cdef Operands share
    cdef cg_queue *queues = NULL
    if nt > 1:  # each share's units, to be taken from the front by its thread, from the back
        queues = <cg_queue *>calloc(nt, sizeof(cg_queue))  # by the others
        if queues == NULL:
            if mem != <char *>small:
                free(mem)
            raise MemoryError(f"gemm: cannot allocate the queues of {nt} threads")
        for t in range(nt):
            share = _share(g, t, nt, split_n, MR, sizeof(floating))
            queues[t].word = cg_queue_of(_units(&share))
            units += _units(&share)
        if units == 0:
            free(queues)
            queues = NULL
    with nogil:
        if nt == 1:  # no OpenMP region: it costs microseconds on small products
            slots.plane = <char *>(buf + own)
            _gemm_share(g, buf, a_size, b_size, slots, 0, 1, split_n, NULL)
        else:
            for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                _gemm_share(g, buf + t * step, a_size, b_size,
                            Slots(<char *>(buf + t * step + own), slots.ld, slots.size, slots.top,
                                  slots.rows),
                            t, nt, split_n, queues)
    free(queues)
    if mem != <char *>small:
        free(mem)
    return 0


cdef str _shape(Py_buffer *v, bint trans):
    if v.ndim != 2:
        return "(" + ", ".join([str(v.shape[i]) for i in range(v.ndim)]) + ")"
    return f"({v.shape[0]}, {v.shape[1]}){'.T' if trans else ''}"


cdef bint _readable(Py_buffer *v) noexcept:
    """Native float elements on their alignment, at strides that are whole elements."""
    cdef int i
    if kind_of(v) == 0 or not aligned(v):
        return False
    for i in range(v.ndim):
        if v.strides[i] % v.itemsize:
            return False
    return True


cdef int _operand(Py_buffer *v, object x) except -1:
    """The buffer of an operand, through a native aligned copy when its floats are byte-swapped,
    unaligned or at odd strides (numpy handles those; the packing reads whole elements). The
    buffer holds its exporter (v.obj, a new reference): a copy lives until it is released."""
    PyObject_GetBuffer(x, v, PyBUF_STRIDES | PyBUF_FORMAT)
    if _readable(v) or float_dtype_of(x, v) is None:  # the caller refuses a non-float
        return 0
    PyBuffer_Release(v)
    PyObject_GetBuffer(native_copy(x), v, PyBUF_STRIDES | PyBUF_FORMAT)
    return 0


def product(a, b, bint trans_a, bint trans_b, int num_threads):
    """A new array C = op(A) @ op(B): `gemm` with c=None (the backend's entry point)."""
    return gemm(a, b, None, trans_a, trans_b, num_threads)


cpdef gemm(a, b, c, bint trans_a, bint trans_b, int num_threads, bint accumulate=False):
    """C := op(A) @ op(B) (packed, register-blocked, exact: see the module docstring); returns C.

    a, b: 2-D float arrays of one dtype, any strides. c: None (a new (M, N) array is made) or a
    C-contiguous, aligned (M, N) array of their dtype, overwritten; it must not overlap a or b
    (ValueError). Threads split the tiles of C. With `accumulate`, C := C + op(A) @ op(B): the
    product (its own k tree) is added to each element of C with one rounding, the same for every
    element (a convolution sums its weight gradient over the images of a batch this way: a chain
    over the images of each image's tree).

    Operands come through the buffer protocol, not typed memoryviews: acquiring fused-type
    memoryviews cost ~0.6 us a call, more than a small layer's whole product.
    """
    cdef Py_buffer v[3]
    cdef int count = 0, kind
    cdef Operands g
    if accumulate:
        if c is None:
            raise ValueError("gemm: accumulate needs an array c to add to")
        product = gemm(a, b, None, trans_a, trans_b, num_threads)
        if not isinstance(c, np.ndarray) or c.shape != product.shape or c.dtype != product.dtype:
            raise ValueError(f"gemm: c must be a {product.shape} array of dtype "
                             f"{product.dtype} to accumulate into")
        np.add(c, product, out=c)
        return c
    try:
        _operand(&v[0], a)
        count = 1
        _operand(&v[1], b)
        count = 2
        kind = kind_of(&v[0])
        if kind == 0 or kind_of(&v[1]) != kind:
            raise TypeError(f"gemm: operands must be float32 or float64 of one dtype, got "
                            f"formats {(v[0].format or b'B').decode(errors='replace')!r} and "
                            f"{(v[1].format or b'B').decode(errors='replace')!r}")
        if v[0].ndim != 2 or v[1].ndim != 2:
            raise ValueError(f"gemm needs 2-D operands, got shapes {_shape(&v[0], False)} and "
                             f"{_shape(&v[1], False)}")
        g.m = v[0].shape[1] if trans_a else v[0].shape[0]
        g.k = v[0].shape[0] if trans_a else v[0].shape[1]
        g.n = v[1].shape[0] if trans_b else v[1].shape[1]
        if (v[1].shape[1] if trans_b else v[1].shape[0]) != g.k:
            raise ValueError(f"matmul: shapes {_shape(&v[0], trans_a)} and "
                             f"{_shape(&v[1], trans_b)} do not multiply")
        if c is None:
            c = _empty((g.m, g.n), _F32_DTYPE if kind == F32 else _F64_DTYPE)
        PyObject_GetBuffer(c, &v[2], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
        count = 3
        if kind_of(&v[2]) != kind or v[2].ndim != 2 or v[2].shape[0] != g.m \
                or v[2].shape[1] != g.n or not aligned(&v[2]):
            raise ValueError(f"gemm: c must be an aligned ({g.m}, {g.n}) array of the operands' "
                             f"dtype, got {_shape(&v[2], False)} format "
                             f"{(v[2].format or b'B').decode(errors='replace')!r}")
        if overlap(&v[2], &v[0]) or overlap(&v[2], &v[1]):
            raise ValueError("gemm: c overlaps a or b; the product needs an output of its own")
        g.a_rs, g.a_cs = v[0].strides[0], v[0].strides[1]
        if trans_a:
            g.a_rs, g.a_cs = g.a_cs, g.a_rs
        g.b_rs, g.b_cs = v[1].strides[0], v[1].strides[1]
        if trans_b:
            g.b_rs, g.b_cs = g.b_cs, g.b_rs
        g.a, g.b = <const char *>v[0].buf, <const char *>v[1].buf
        g.c, g.ldc = <char *>v[2].buf, g.n  # C-contiguous: rows n elements apart
        g.pa, g.pb, g.a_row0, g.b_col0 = NULL, NULL, 0, 0
        if kind == F32:
            _run(g, <float *>NULL, num_threads, <double>serial_macs)
        else:
            _run(g, <double *>NULL, num_threads, <double>serial_macs)
    finally:
        release(v, count)
    return c


cdef inline Operands _instr_operands(const cg_instr *ins) noexcept nogil:
    """A `gemm` instruction's product: p = a, b, c, C-contiguous; n = m, n, k, a's columns,
    b's columns; code bit 0 trans_a, bit 1 trans_b (the operands the entry point would build
    from the same arrays)."""
    cdef Operands g
    cdef Py_ssize_t size = 4 if ins.kind == F32 else 8
    g.m, g.n, g.k = ins.n[0], ins.n[1], ins.n[2]
    g.a_rs, g.a_cs = ins.n[3] * size, size
    if ins.code & 1:
        g.a_rs, g.a_cs = g.a_cs, g.a_rs
    g.b_rs, g.b_cs = ins.n[4] * size, size
    if ins.code & 2:
        g.b_rs, g.b_cs = g.b_cs, g.b_rs
    g.a, g.b = <const char *>ins.p[0], <const char *>ins.p[1]
    g.c, g.ldc = ins.p[2], g.n
    g.pa, g.pb, g.a_row0, g.b_col0 = NULL, NULL, 0, 0
    return g


cdef int _exec_gemm(cg_instr *ins) except -1:
    """A replayed `gemm` (program.h): _instr_operands, then the entry point's _run: eager's
    bits."""
    cdef Operands g = _instr_operands(ins)
    if ins.kind == F32:
        _run(g, <float *>NULL, ins.threads, <double>program_serial_macs)
    else:
        _run(g, <double *>NULL, ins.threads, <double>program_serial_macs)
    return 0


cdef bint _pairs(Operands *g, int kind) noexcept nogil:
    """A product _run_pair can take: not empty, not run as its transpose."""
    if g.m == 0 or g.n == 0 or g.k == 0:
        return False
    if kind == F32:
        return not _swap(g, CG_MR_F32, CG_NR_F32, CG_NRN_F32)
    return not _swap(g, CG_MR_F64, CG_NR_F64, CG_NRN_F64)


cdef int _exec_gemm_pair(cg_instr *first, cg_instr *second) except -1:
    """Two independent `gemm` instructions of one dtype (program.pyx checks that neither reads
    or writes what the other writes) at once, each whole on a thread of its own (_run_pair);
    one after the other, as _exec_gemm, when either is empty or runs as its transpose."""
    cdef Operands g1 = _instr_operands(first), g2 = _instr_operands(second)
    if first.kind != second.kind or not (_pairs(&g1, first.kind) and _pairs(&g2, first.kind)) \
            or cg_threads(2) < 2:
        _exec_gemm(first)
        _exec_gemm(second)
    elif first.kind == F32:
        _run_pair(g1, g2, <float *>NULL)
    else:
        _run_pair(g1, g2, <double *>NULL)
    return 0


cdef inline Patches _patches(const char *x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                            Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh,
                            Py_ssize_t ow) noexcept:
    """The patches of the image at x (not flat)."""
    cdef Patches pt
    pt.x = x
    pt.H, pt.W, pt.kh, pt.kw, pt.sh, pt.sw = H, W, kh, kw, sh, sw
    pt.ph, pt.pw, pt.dh, pt.dw, pt.oh, pt.ow = ph, pw, dh, dw, oh, ow
    pt.flat, pt.Wx, pt.HWx = False, 0, 0
    return pt


cdef int _check_geometry(str name, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                         Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh,
                         Py_ssize_t ow) except -1:
    """Every size and geometry number in [0, 2^31) (so index sums stay far inside 64 bits),
    the kernel, stride and dilation positive. The packing checks each pixel it reads against
    the image: any output size is safe."""
    cdef Py_ssize_t values[13]
    cdef int t
    values[:] = [C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow]
    for t in range(13):
        if values[t] < 0 or values[t] > _LIMIT:
            raise ValueError(f"{name}: sizes and geometry must be in [0, {_LIMIT}], got "
                             f"C, H, W {C, H, W}, kernel {kh, kw}, stride {sh, sw}, padding "
                             f"{ph, pw}, dilation {dh, dw}, output {oh, ow}")
    if kh < 1 or kw < 1 or sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise ValueError(f"{name}: kernel {kh, kw}, stride {sh, sw} and dilation {dh, dw} "
                         "must be positive")
    return 0


cdef int _conv_image_flat(const floating[:, :, ::1] x, const floating[:, ::1] w2,
                          const floating[::1] bias, floating[:, ::1] out, Patches pt,
                          int num_threads) except -1:
    """conv_image at stride 1 when the dropped columns cost little: the image copied into a
    padded buffer of Hx x Wx rows (Wx = ow + (kw-1)*dw: every kernel offset of every output
    position inside it), so the patches of a run of positions p = oy*Wx + ox are runs of that
    buffer (Patches.flat); C = w2 @ patches (O, oh*Wx) in channel planes, the columns ox >= ow
    dropped on the way into out with the bias. Each kept element: the same packed values, the
    same chain."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2], O = w2.shape[0]
    cdef Py_ssize_t K = w2.shape[1], oh = pt.oh, ow = pt.ow, isz = sizeof(floating)
    cdef Py_ssize_t Wx = ow + (pt.kw - 1) * pt.dw, Hx = oh + (pt.kh - 1) * pt.dh
    cdef Py_ssize_t HWx = Hx * Wx, P2 = oh * Wx, slack = (pt.kw - 1) * pt.dw + 64
    cdef Py_ssize_t c, yy, y, lo, hi, o, oy, t
    cdef floating b
    cdef bint add = bias.shape[0] != 0
    cdef floating *xp = <floating *>malloc((C * HWx + slack) * isz)
    cdef floating *plane = <floating *>malloc(O * P2 * isz)
    cdef floating *row
    cdef floating *dst
    cdef Operands g
    if xp == NULL or plane == NULL:
        free(xp)
        free(plane)
        raise MemoryError(f"conv_image: cannot allocate {(C * HWx + slack + O * P2) * isz} "
                          "bytes")
    try:
        with nogil:  # the padded image: rows of Wx, x's columns at pw.., zeros around them
            lo = min(pt.pw, Wx)
            hi = min(pt.pw + W, Wx)
            for c in range(C):
                for yy in range(Hx):
                    row = xp + c * HWx + yy * Wx
                    y = yy - pt.ph
                    if y < 0 or y >= H or hi <= lo:
                        memset(row, 0, Wx * isz)
                        continue
                    for t in range(lo):
                        row[t] = 0
                    cg_copy_bytes(<char *>(row + lo), <const char *>&x[c, y, 0],
                                  (hi - lo) * isz)
                    for t in range(hi, Wx):
                        row[t] = 0
            memset(xp + C * HWx, 0, slack * isz)
        pt.x, pt.flat, pt.Wx, pt.HWx = <const char *>xp, True, Wx, HWx
        g.pa, g.pb, g.a_row0, g.b_col0 = NULL, &pt, 0, 0
        g.a, g.a_rs, g.a_cs = <const char *>&w2[0, 0], K * isz, isz
        g.b, g.b_rs, g.b_cs = pt.x, 0, 0
        g.m, g.n, g.k = O, P2, K
        g.c, g.ldc = <char *>plane, P2
        _run(g, plane, num_threads, <double>serial_macs)
        with nogil:  # the kept columns into out, with the bias
            for o in range(O):
                b = bias[o] if add else 0
                for oy in range(oh):
                    row = plane + o * P2 + oy * Wx
                    dst = &out[o, oy * ow]
                    if add:
                        for t in range(ow):
                            dst[t] = row[t] + b
                    else:
                        cg_copy_bytes(<char *>dst, <const char *>row, ow * isz)
    finally:
        free(xp)
        free(plane)
    return 0


def conv_image(const floating[:, :, :, ::1] x, const floating[:, ::1] w2,
               const floating[::1] bias, floating[:, :, ::1] out, Py_ssize_t kh, Py_ssize_t kw,
               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
               Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """conv_image(x, w2, bias, out, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, num_threads)

    A convolution image by image: ``out[n] (O, oh*ow) := w2 (O, C*kh*kw) @ im2col_t(x[n])``
    (+ bias[o] when bias has O elements; none when it is empty), x (N, C, H, W), conv.pyx's
    geometry. No patches array: at stride 1 (when the columns it computes and drops are at
    most an eighth of a row) each image is copied into a padded buffer whose runs are the
    patches (_conv_image_flat); otherwise the product runs as its transpose, ``patches @
    w2.T``, the patches packed into gemm's A panels straight from the image
    (_pack_a_patches), and its rows move into out by register transposes. Either way each
    element is gemm's chain over (c, i, j) ascending on the same values (a * b = b * a), then
    one add of the bias: bitwise ``gemm(w2, im2col_t(x))`` followed by add_channel_bias
    (tests/kernels/test_conv_image.py), whatever the batch.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = w2.shape[0], P, K = C * kh * kw, isz = sizeof(floating), n
    _check_geometry("conv_image", C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    P = oh * ow
    if w2.shape[1] != K:
        raise ValueError(f"conv_image: weights of shape ({O}, {w2.shape[1]}) for {C} channels "
                         f"and a {kh}x{kw} kernel ({K} columns)")
    if out.shape[0] != N or out.shape[1] != O or out.shape[2] != P:
        raise ValueError(f"conv_image: out of shape ({out.shape[0]}, {out.shape[1]}, "
                         f"{out.shape[2]}), expected ({N}, {O}, {P})")
    if bias.shape[0] != 0 and bias.shape[0] != O:
        raise ValueError(f"conv_image: bias of {bias.shape[0]} elements for {O} channels")
    if N == 0 or O == 0 or P == 0:
        return
    cdef const void *outp = &out[0, 0, 0]
    cdef Py_ssize_t out_bytes = N * O * P * isz
    if bytes_meet(outp, out_bytes, &x[0, 0, 0, 0] if C * H * W > 0 else NULL,
                 N * C * H * W * isz) \
            or bytes_meet(outp, out_bytes, &w2[0, 0] if K > 0 else NULL, O * K * isz) \
            or bytes_meet(outp, out_bytes, &bias[0] if bias.shape[0] > 0 else NULL,
                         bias.shape[0] * isz):
        raise ValueError("conv_image: out overlaps an input; it needs memory of its own")
    for n in range(N):
        _conv_image_one(x[n], w2, bias, out[n], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
                        num_threads)


cdef int _conv_image_one(const floating[:, :, ::1] x, const floating[:, ::1] w2,
                         const floating[::1] bias, floating[:, ::1] out, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                         Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh,
                         Py_ssize_t ow, int num_threads) except -1:
    """One image of conv_image (checked there)."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2], O = w2.shape[0]
    cdef Py_ssize_t P = oh * ow, K = C * kh * kw, isz = sizeof(floating), o, o0, q, q0
    cdef Py_ssize_t WL = CG_WF if floating is float else CG_WD
    cdef const floating *bp = NULL
    cdef floating *op
    cdef Patches pt
    cdef Operands g
    pt = _patches(<const char *>&x[0, 0, 0] if C * H * W > 0 else NULL, H, W, kh, kw, sh, sw,
                  ph, pw, dh, dw, oh, ow)
    if K > 0 and C * H * W == 0:  # no pixels: every patch is padding (zeros)
        K = 0
    # flat: at stride 1 when the dropped columns are at most an eighth of a row, and the padded
    # image (C x Hx x Wx) at most 4x the input and output together (a huge kernel, dilation
    # or output size given goes the other way: no buffer size can overflow)
    cdef double hx = <double>oh + <double>(kh - 1) * dh, wx = <double>ow + <double>(kw - 1) * dw
    if K > 0 and sh == 1 and sw == 1 and (wx - ow) * 8 <= wx \
            and C * hx * wx <= 4.0 * (<double>C * H * W + <double>O * P) + 4096:
        return _conv_image_flat(x, w2, bias, out, pt, num_threads)
    g.pa, g.pb, g.a_row0, g.b_col0 = &pt, NULL, 0, 0
    g.a, g.a_rs, g.a_cs = pt.x, 0, 0
    g.b = <const char *>&w2[0, 0] if K > 0 else NULL
    g.b_rs, g.b_cs = isz, K * isz  # op(B)[k, o] = w2[o, k]
    g.m, g.n, g.k = P, O, K
    cdef floating *rows = <floating *>malloc(P * O * isz)
    if rows == NULL:
        raise MemoryError(f"conv_image: cannot allocate {P * O * isz} bytes")
    g.c, g.ldc = <char *>rows, O
    cdef bint add = bias.shape[0] != 0
    if K > 0:  # the image into the caches at once: the packing reads it a channel apart
        cg_prefetch(pt.x, C * H * W * isz)
    try:
        _run(g, rows, num_threads, <double>serial_macs)
        with nogil:  # out[o, q] = rows[q * O + o] (+ bias[o]): WL x WL blocks, then edges
            bp = &bias[0] if add else NULL
            op = &out[0, 0]
            q0 = 0
            while q0 + WL <= P:
                o0 = 0
                while o0 + WL <= O:
                    if floating is float:
                        cg_block_t_f32(rows + q0 * O + o0, O, op + o0 * P + q0, P,
                                       bp + o0 if add else NULL)
                    else:
                        cg_block_t_f64(rows + q0 * O + o0, O, op + o0 * P + q0, P,
                                       bp + o0 if add else NULL)
                    o0 += WL
                q0 += WL
            for o in range(O):
                q0 = 0 if o >= O - O % WL else P - P % WL
                for q in range(q0, P):
                    op[o * P + q] = rows[q * O + o] + bp[o] if add else rows[q * O + o]
    finally:
        free(rows)
    return 0


def conv_image_grad(const floating[:, :, :, ::1] x, const floating[:, :, ::1] g,
                    floating[:, ::1] out, bint accumulate, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
                    Py_ssize_t dw, Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """conv_image_grad(x, g, out, accumulate, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow,
    num_threads)

    A weight gradient image by image: ``out (O, C*kh*kw) := g[n] (O, oh*ow) @
    im2col_t(x[n]).T`` for n = 0, then ``out + that`` for each next image (and for the first
    with accumulate): each product, then one add an element, as gemm's accumulate: a chain
    over the images of each image's tree. x (N, C, H, W). B's panels are packed from the
    image (_pack_b_patches): no patches array. Bitwise ``gemm(g[n], im2col_t(x[n]), out,
    trans_b=True, accumulate=accumulate or n > 0)`` one image after another: the same packed
    values, so the same chains and tree over the output positions.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = g.shape[1], P = g.shape[2], K = C * kh * kw, isz = sizeof(floating), n
    _check_geometry("conv_image_grad", C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    if g.shape[0] != N or P != oh * ow:
        raise ValueError(f"conv_image_grad: gradient of shape ({g.shape[0]}, {O}, {P}) for "
                         f"{N} images of {oh}x{ow} output positions")
    if out.shape[0] != O or out.shape[1] != K:
        raise ValueError(f"conv_image_grad: out of shape ({out.shape[0]}, {out.shape[1]}), "
                         f"expected ({O}, {K})")
    if O == 0 or K == 0:
        return
    cdef const void *outp = &out[0, 0]
    if bytes_meet(outp, O * K * isz, &x[0, 0, 0, 0] if N * C * H * W > 0 else NULL,
                 N * C * H * W * isz) \
            or bytes_meet(outp, O * K * isz, &g[0, 0, 0] if N * P > 0 else NULL,
                         N * O * P * isz):
        raise ValueError("conv_image_grad: out overlaps an input; it needs memory of its own")
    if N == 0 and not accumulate:
        out[...] = 0
    for n in range(N):
        _conv_image_grad_one(x[n], g[n], out, accumulate or n > 0, kh, kw, sh, sw, ph, pw,
                             dh, dw, oh, ow, num_threads)


cdef int _conv_image_grad_one(const floating[:, :, ::1] x, const floating[:, ::1] g,
                              floating[:, ::1] out, bint accumulate, Py_ssize_t kh,
                              Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                              Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t oh,
                              Py_ssize_t ow, int num_threads) except -1:
    """One image of conv_image_grad (checked there)."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2], O = g.shape[0]
    cdef Py_ssize_t P = g.shape[1], K = C * kh * kw, isz = sizeof(floating), t
    cdef const void *outp = &out[0, 0]
    cdef Patches pt
    cdef Operands op
    pt = _patches(<const char *>&x[0, 0, 0] if C * H * W > 0 else NULL, H, W, kh, kw, sh, sw,
                  ph, pw, dh, dw, oh, ow)
    op.pa, op.pb, op.a_row0, op.b_col0 = NULL, &pt, 0, 0
    op.a = <const char *>&g[0, 0] if P > 0 else NULL
    op.a_rs, op.a_cs = P * isz, isz
    op.b, op.b_rs, op.b_cs = pt.x, 0, 0
    op.m, op.n, op.k = O, K, P
    if C * H * W == 0:  # no pixels: every patch is padding
        op.k = 0
    cdef floating *prod = NULL
    if op.k > 0:  # the image and the gradient into the caches at once (as conv_image)
        cg_prefetch(pt.x, C * H * W * isz)
        cg_prefetch(op.a, O * P * isz)
    if accumulate:
        prod = <floating *>malloc(O * K * isz)
        if prod == NULL:
            raise MemoryError(f"conv_image_grad: cannot allocate {O * K * isz} bytes")
        op.c = <char *>prod
    else:
        op.c = <char *>&out[0, 0]
    op.ldc = K
    try:
        _run(op, <floating *>outp, num_threads, <double>serial_macs)
        if accumulate:
            with nogil:
                for t in range(O * K):
                    (&out[0, 0])[t] = (&out[0, 0])[t] + prod[t]
    finally:
        free(prod)
    return 0


EXEC = {"gemm": exec_capsule(<void *>_exec_gemm)}
# instructions that may run two at once, each on a thread of its own (program.h's pair form)
EXEC_PAIR = {"gemm": exec_pair_capsule(<void *>_exec_gemm_pair)}


# ---------------------------------------------------------------- reference variants
# The same chains and the same tree as `gemm`, written plainly: rows of C one at a time (naive)
# or in cache blocks (blocked). Each leaf of a block of rows is made in a buffer of its own,
# then stored or merged exactly as the packed gemm does.

cdef inline void _axpy(floating *y, floating alpha, const char *x, Py_ssize_t incx,
                       Py_ssize_t n) noexcept nogil:
    """y[j] := y[j] + alpha * x[j]: one link of each element's chain (x at byte stride incx)."""
    cdef Py_ssize_t j
    cdef const floating *xs = <const floating *>x
    if incx == sizeof(floating):  # contiguous: let the compiler vectorise
        for j in range(n):
            y[j] = y[j] + alpha * xs[j]
    else:
        for j in range(n):
            y[j] = y[j] + alpha * (<const floating *>(x + j * incx))[0]


cdef void _rows(Operands g, Py_ssize_t i0, Py_ssize_t rows, Py_ssize_t j0, Py_ssize_t cols,
                Py_ssize_t KB, floating *leaf, Slots slots) noexcept nogil:
    """Rows i0.. and columns j0.. of C: each leaf (k block of KC) made in `leaf` (rows x cols,
    k cut into sub-blocks of KB for the caches), then stored or merged into the slots / C."""
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    cdef Py_ssize_t blocks = _cdiv(g.k, KC), pb, k0, k1, i, j, p, mask, ld
    cdef int level
    cdef floating *cblock = <floating *>g.c + i0 * g.ldc + j0  # the slots hold these rows only
    cdef floating *dest
    for pb in range(blocks):
        mask = _merges(pb, blocks, &level)
        for i in range(rows * cols):
            leaf[i] = 0
        k0 = pb * KC
        while k0 < min(pb * KC + KC, g.k):
            k1 = min(k0 + KB, pb * KC + KC, g.k)
            for i in range(rows):
                for p in range(k0, k1):
                    _axpy(leaf + i * cols,
                          (<const floating *>(g.a + (i0 + i) * g.a_rs + p * g.a_cs))[0],
                          g.b + p * g.b_rs + j0 * g.b_cs, g.b_cs, cols)
            k0 = k1
        if mask:
            _merge(leaf, cols, rows, cols, mask, &slots, cblock, g.ldc, 0, 0)
        dest = _slot(&slots, level, cblock, g.ldc, &ld, 0, 0)
        for i in range(rows):
            for j in range(cols):
                dest[i * ld + j] = leaf[i * cols + j]


cdef int _reference(Operands g, Py_ssize_t MB, Py_ssize_t KB, Py_ssize_t NB, floating *tag,
                    int num_threads) except -1:
    """C in blocks of MB rows x NB columns, k sub-blocks of KB, one block of rows per task; the
    slots of the tree span whole rows of the block."""
    cdef Py_ssize_t KC = CG_KC_F32 if floating is float else CG_KC_F64
    if g.m == 0 or g.n == 0:
        return 0
    cdef int top = _top(_cdiv(g.k, KC)) if g.k else -1
    cdef Py_ssize_t nb = min(NB, g.n), tasks = _cdiv(g.m, MB)
    cdef Py_ssize_t size = MB * nb, per = size + max(top, 0) * size
    cdef int nt = cg_threads(num_threads)
    cdef floating *mem = <floating *>malloc(nt * per * sizeof(floating))
    cdef Py_ssize_t blk, j0, t
    if mem == NULL:
        raise MemoryError("gemm: cannot allocate the partial sums")
    if g.k == 0:
        for blk in range(g.m):
            memset(g.c + blk * g.ldc * <Py_ssize_t>sizeof(floating), 0, g.n * sizeof(floating))
        free(mem)
        return 0
    with nogil:
        for blk in prange(tasks, num_threads=nt, schedule="static"):
            t = threadid()
            j0 = 0
            while j0 < g.n:
                _rows(g, blk * MB, min(MB, g.m - blk * MB), j0, min(nb, g.n - j0), KB,
                      mem + t * per, Slots(<char *>(mem + t * per + size), nb, size, top, MB))
                j0 = j0 + nb
    free(mem)
    return 0


def gemm_naive(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
               bint trans_a, bint trans_b, int num_threads):
    """C := op(A) @ op(B), one row of C at a time: the i-k-j loops, c[i, :] += a[i, k] * b[k, :]
    for ascending k in each leaf. The same chains and tree as `gemm`, so the same bits."""
    cdef Operands g = _operands(a, b, c, trans_a, trans_b)
    _reference(g, 1, 1 << 30, max(g.n, 1), <floating *>NULL, num_threads)


def gemm_blocked(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
                 bint trans_a, bint trans_b, int num_threads):
    """C := op(A) @ op(B), the i-k-j loops of `gemm_naive` tiled for the caches (no packing):
    a KB x NB block of B stays in cache while MB rows of A pass. Same chains and tree, same
    bits."""
    cdef Operands g = _operands(a, b, c, trans_a, trans_b)
    _reference(g, 32, 128, 512, <floating *>NULL, num_threads)  # B block 128 x 512: <= 512 KiB


# ---------------------------------------------------------------- batched products
# (the transformer layers' entry: attention's many small products in one call)

def batched_product(a, b, bint trans_a, bint trans_b, int num_threads):
    """A new C (batch, M, N) with C[i] := op(A[i]) @ op(B[i]) for each i, by `gemm`'s chains:
    each product has the bits `product` gives it alone, whatever the batch size.

    a (batch, ., .), b (batch, ., .): 3-D float arrays of one dtype, any strides (a batch
    stride of 0 repeats one matrix). The products run one after another, each on up to
    num_threads threads (small ones on one, as `product`'s)."""
    cdef Py_buffer v[3]
    cdef int count = 0, kind
    cdef Operands g
    cdef Py_ssize_t batch, i, sa, sb, sc
    try:
        _operand(&v[0], a)  # byte-swapped or unaligned operands copied, as gemm's
        count = 1
        _operand(&v[1], b)
        count = 2
        kind = kind_of(&v[0])
        if kind == 0 or kind_of(&v[1]) != kind:
            raise TypeError(f"batched gemm: operands must be float32 or float64 of one dtype, "
                            f"got formats {(v[0].format or b'B').decode(errors='replace')!r} and "
                            f"{(v[1].format or b'B').decode(errors='replace')!r}")
        if v[0].ndim != 3 or v[1].ndim != 3 or v[0].shape[0] != v[1].shape[0]:
            raise ValueError(f"batched gemm needs 3-D operands with one batch size, got shapes "
                             f"{_shape(&v[0], False)} and {_shape(&v[1], False)}")
        batch = v[0].shape[0]
        g.m = v[0].shape[2] if trans_a else v[0].shape[1]
        g.k = v[0].shape[1] if trans_a else v[0].shape[2]
        g.n = v[1].shape[1] if trans_b else v[1].shape[2]
        if (v[1].shape[2] if trans_b else v[1].shape[1]) != g.k:
            raise ValueError(f"batched matmul: matrices of shapes "
                             f"({v[0].shape[1]}, {v[0].shape[2]}){'.T' if trans_a else ''} and "
                             f"({v[1].shape[1]}, {v[1].shape[2]}){'.T' if trans_b else ''} do "
                             "not multiply")
        c = _empty((batch, g.m, g.n), _F32_DTYPE if kind == F32 else _F64_DTYPE)
        PyObject_GetBuffer(c, &v[2], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
        count = 3
        g.a_rs, g.a_cs = v[0].strides[1], v[0].strides[2]
        if trans_a:
            g.a_rs, g.a_cs = g.a_cs, g.a_rs
        g.b_rs, g.b_cs = v[1].strides[1], v[1].strides[2]
        if trans_b:
            g.b_rs, g.b_cs = g.b_cs, g.b_rs
        g.ldc = g.n  # c is new: it overlaps neither operand
        g.pa, g.pb, g.a_row0, g.b_col0 = NULL, NULL, 0, 0
        sa, sb, sc = v[0].strides[0], v[1].strides[0], g.m * g.n * v[2].itemsize
        for i in range(batch):
            g.a = <const char *>v[0].buf + i * sa
            g.b = <const char *>v[1].buf + i * sb
            g.c = <char *>v[2].buf + i * sc
            if kind == F32:
                _run(g, <float *>NULL, num_threads, <double>serial_macs)
            else:
                _run(g, <double *>NULL, num_threads, <double>serial_macs)
    finally:
        release(v, count)
    return c


def fma_peak(dtype, Py_ssize_t n):
    """(flops, checksum) of n links of the peak loop (gemm_microkernel.h cg_fma_peak) in dtype
    (numpy float32 or float64), run without the GIL: time a call to get the core's peak rate.
    Not an op: a measurement for the benchmarks."""
    cdef double total
    if n < 0:
        raise ValueError(f"fma_peak: n must be >= 0, got {n}")
    kind = np.dtype(dtype)
    if kind == np.float32:
        with nogil:
            total = cg_fma_peak_f32(n, 0.999, 0.001)
        lanes = CG_WF
    elif kind == np.float64:
        with nogil:
            total = cg_fma_peak_f64(n, 0.999, 0.001)
        lanes = CG_WD
    else:
        raise TypeError(f"fma_peak: dtype must be float32 or float64, got {kind}")
    return 2.0 * lanes * CG_PEAK_CHAINS * n, total
