"""gemm: C := op(A) @ op(B), op(X) = X.T when trans_x, float32 or float64.

Order is part of the contract. Every element is one fused multiply-add chain in ascending k,

    c[i, j] = fma(a[i, K-1], b[K-1, j], ... fma(a[i, 1], b[1, j], fma(a[i, 0], b[0, j], +0)))

(separate multiply and add in a build for a target without FMA), accumulated in the input dtype.
It does not depend on i, j, M, N, the thread count, the variant or the blocking: the k loop is cut
into blocks of KC, but each block continues the chain from the value stored in C. So identical rows
of A give identical rows of C, identical columns of op(B) identical columns, a row computed alone
has the bits it has inside any batch, and `gemm`, `gemm_blocked` and `gemm_naive` agree bitwise.

`gemm` packs A into MR-row panels and B into NR-column panels, zero-padding ragged edges so that
every tile of C goes through the one register-blocked micro-kernel (gemm_microkernel.h); threads
share out whole tiles of C, never a k reduction. a and b may have any strides (transposed views,
steps, negative strides): packing reads them through their byte strides.
"""

from cython.parallel cimport prange
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc

ctypedef fused floating:
    float
    double

cdef extern from "gemm_microkernel.h" nogil:
    enum:
        CG_MR_F32
        CG_NR_F32
        CG_MR_F64
        CG_NR_F64
    void cg_kernel_f32(long kc, const float *a, const float *b, float *c, long ldc, int load_c)
    void cg_kernel_f64(long kc, const double *a, const double *b, double *c, long ldc, int load_c)
    void cg_pack_a_kcont_f32(float *dst, const float *src, long ld, long kc)
    void cg_pack_a_icont_f32(float *dst, const float *src, long ld, long kc)
    void cg_pack_b_jcont_f32(float *dst, const float *src, long ld, long kc)
    void cg_pack_b_kcont_f32(float *dst, const float *src, long ld, long kc)
    void cg_pack_a_kcont_f64(double *dst, const double *src, long ld, long kc)
    void cg_pack_a_icont_f64(double *dst, const double *src, long ld, long kc)
    void cg_pack_b_jcont_f64(double *dst, const double *src, long ld, long kc)
    void cg_pack_b_kcont_f64(double *dst, const double *src, long ld, long kc)

# Cache blocking (performance only: results do not depend on these). A KC x NR panel of B stays in
# L1 while the MC x KC block of A streams past it from L2; the KC x NC block of B sits in L2/L3.
cdef enum:
    KC_F32 = 256
    MC_F32 = 128
    NC_F32 = 2048
    KC_F64 = 256
    MC_F64 = 96
    NC_F64 = 1024
    ALIGN = 64


cdef inline Py_ssize_t _iabs(Py_ssize_t x) noexcept nogil:
    return -x if x < 0 else x


cdef inline Py_ssize_t _cdiv(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    return (x + m - 1) // m


cdef inline Py_ssize_t _round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    return (x + m - 1) // m * m


cdef void _pack_a(floating *dst, const char *a, Py_ssize_t rs, Py_ssize_t cs,
                  Py_ssize_t m, Py_ssize_t kc) noexcept nogil:
    """dst[p][k][r] := op(A)[p*MR + r, k] (op(A)[i, k] at a + i*rs + k*cs), 0 past row m."""
    cdef Py_ssize_t MR = CG_MR_F32 if floating is float else CG_MR_F64
    cdef Py_ssize_t isz = sizeof(floating)
    cdef Py_ssize_t p, p0, r, k, mr
    cdef const char *src
    for p in range(_cdiv(m, MR)):
        p0 = p * MR
        mr = min(MR, m - p0)
        src = a + p0 * rs
        if mr == MR and cs == isz and rs % isz == 0:  # k along memory: transposed in registers
            if floating is float:
                cg_pack_a_kcont_f32(dst, <const float *>src, rs // isz, kc)
            else:
                cg_pack_a_kcont_f64(dst, <const double *>src, rs // isz, kc)
        elif mr == MR and rs == isz and cs % isz == 0:  # i along memory (A transposed)
            if floating is float:
                cg_pack_a_icont_f32(dst, <const float *>src, cs // isz, kc)
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
                  Py_ssize_t kc, Py_ssize_t n) noexcept nogil:
    """dst[q][k][c] := op(B)[k, q*NR + c] (op(B)[k, j] at b + k*rs + j*cs), 0 past column n."""
    cdef Py_ssize_t NR = CG_NR_F32 if floating is float else CG_NR_F64
    cdef Py_ssize_t isz = sizeof(floating)
    cdef Py_ssize_t q, q0, c, k, nr
    cdef const char *src
    for q in range(_cdiv(n, NR)):
        q0 = q * NR
        nr = min(NR, n - q0)
        src = b + q0 * cs
        if nr == NR and cs == isz and rs % isz == 0:  # j along memory: row copies
            if floating is float:
                cg_pack_b_jcont_f32(dst, <const float *>src, rs // isz, kc)
            else:
                cg_pack_b_jcont_f64(dst, <const double *>src, rs // isz, kc)
        elif nr == NR and rs == isz and cs % isz == 0:  # k along memory (B transposed)
            if floating is float:
                cg_pack_b_kcont_f32(dst, <const float *>src, cs // isz, kc)
            else:
                cg_pack_b_kcont_f64(dst, <const double *>src, cs // isz, kc)
        else:  # any strides, or the ragged last panel: element by element, zero-padded
            for k in range(kc):
                for c in range(nr):
                    dst[k * NR + c] = (<const floating *>(src + k * rs + c * cs))[0]
                for c in range(nr, NR):
                    dst[k * NR + c] = 0
        dst += kc * NR


cdef inline void _kernel(Py_ssize_t kc, const floating *a, const floating *b, floating *c,
                         Py_ssize_t ldc, bint load_c) noexcept nogil:
    if floating is float:
        cg_kernel_f32(kc, a, b, c, ldc, load_c)
    else:
        cg_kernel_f64(kc, a, b, c, ldc, load_c)


cdef void _gemm_packed(floating *c, Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const char *a, Py_ssize_t a_rs, Py_ssize_t a_cs,
                       const char *b, Py_ssize_t b_rs, Py_ssize_t b_cs,
                       floating *abuf, floating *bbuf, floating *tile) noexcept nogil:
    """C[:m, :n] := op(A) @ op(B) on one thread, through packed panels and the micro-kernel."""
    cdef Py_ssize_t MR, NR, KC, MC, NC
    if floating is float:
        MR, NR, KC, MC, NC = CG_MR_F32, CG_NR_F32, KC_F32, MC_F32, NC_F32
    else:
        MR, NR, KC, MC, NC = CG_MR_F64, CG_NR_F64, KC_F64, MC_F64, NC_F64
    cdef Py_ssize_t jc, pc, ic, jr, ir, jc_, pc_, ic_, jr_, ir_, nc, kc, mc, nr, mr, i, j
    cdef floating *cp
    cdef bint more
    for jc_ in range(_cdiv(n, NC)):
        jc = jc_ * NC
        nc = min(NC, n - jc)
        for pc_ in range(_cdiv(k, KC)):
            pc = pc_ * KC
            kc = min(KC, k - pc)
            more = pc > 0  # continue the chain stored in C
            _pack_b(bbuf, b + pc * b_rs + jc * b_cs, b_rs, b_cs, kc, nc)
            for ic_ in range(_cdiv(m, MC)):
                ic = ic_ * MC
                mc = min(MC, m - ic)
                _pack_a(abuf, a + ic * a_rs + pc * a_cs, a_rs, a_cs, mc, kc)
                for jr_ in range(_cdiv(nc, NR)):
                    jr = jr_ * NR
                    nr = min(NR, nc - jr)
                    for ir_ in range(_cdiv(mc, MR)):
                        ir = ir_ * MR
                        mr = min(MR, mc - ir)
                        cp = c + (ic + ir) * ldc + jc + jr
                        if mr == MR and nr == NR:
                            _kernel(kc, abuf + ir * kc, bbuf + jr * kc, cp, ldc, more)
                        else:  # ragged edge: the same kernel on a full tile, valid part copied
                            if more:
                                for i in range(mr):
                                    for j in range(nr):
                                        tile[i * NR + j] = cp[i * ldc + j]
                            _kernel(kc, abuf + ir * kc, bbuf + jr * kc, tile, NR, more)
                            for i in range(mr):
                                for j in range(nr):
                                    cp[i * ldc + j] = tile[i * NR + j]


cdef inline char *_aligned(char *p) noexcept nogil:
    return <char *>((<uintptr_t>p + ALIGN - 1) & ~(<uintptr_t>(ALIGN - 1)))


def gemm(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
         bint trans_a, bint trans_b, int num_threads):
    """C := op(A) @ op(B) (packed, register-blocked, exact; see the module docstring).

    a, b: any strides; c: (M, N) C-contiguous, overwritten. Threads split the tiles of C.
    """
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    _check_shapes(a.shape[0], a.shape[1], b.shape[0], b.shape[1], m, n, trans_a, trans_b)
    if m == 0 or n == 0:
        return
    if k == 0:
        c[:, :] = 0
        return
    cdef Py_ssize_t isz = sizeof(floating)
    cdef Py_ssize_t a_rs = a.strides[1] if trans_a else a.strides[0]
    cdef Py_ssize_t a_cs = a.strides[0] if trans_a else a.strides[1]
    cdef Py_ssize_t b_rs = b.strides[1] if trans_b else b.strides[0]
    cdef Py_ssize_t b_cs = b.strides[0] if trans_b else b.strides[1]
    cdef const char *pa = <const char *>&a[0, 0]
    cdef const char *pb = <const char *>&b[0, 0]
    cdef floating *pc = &c[0, 0]
    cdef Py_ssize_t ldc = c.strides[0] // isz

    cdef Py_ssize_t MR, NR, KC, MC, NC
    if floating is float:
        MR, NR, KC, MC, NC = CG_MR_F32, CG_NR_F32, KC_F32, MC_F32, NC_F32
    else:
        MR, NR, KC, MC, NC = CG_MR_F64, CG_NR_F64, KC_F64, MC_F64, NC_F64

    # Share whole tiles between threads: split N (each thread packs only its own part of B),
    # unless there are too few column tiles to go round.
    cdef Py_ssize_t m_tiles = (m + MR - 1) // MR, n_tiles = (n + NR - 1) // NR
    cdef Py_ssize_t nt = max(1, num_threads)
    cdef bint split_n = n_tiles >= nt * 2 or n_tiles >= m_tiles
    nt = min(nt, n_tiles if split_n else m_tiles)

    cdef Py_ssize_t a_size = _round_up(min(MC, m), MR) * min(KC, k)
    cdef Py_ssize_t b_size = min(KC, k) * _round_up(min(NC, n), NR)
    a_size = _round_up(a_size, 16)  # keeps each buffer 64-byte aligned
    b_size = _round_up(b_size, 16)
    cdef Py_ssize_t per_thread = _round_up((a_size + b_size + MR * NR) * isz, ALIGN) + ALIGN
    cdef char *mem = <char *>malloc(nt * per_thread)
    if mem == NULL:
        raise MemoryError(f"gemm: cannot allocate {nt * per_thread} bytes of packing buffers")
    cdef Py_ssize_t t, lo, hi, tiles = n_tiles if split_n else m_tiles
    cdef floating *abuf
    cdef floating *bbuf
    cdef floating *tile
    try:
        with nogil:
            for t in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                abuf = <floating *>_aligned(mem + t * per_thread)
                bbuf = abuf + a_size
                tile = bbuf + b_size
                lo = tiles * t // nt
                hi = tiles * (t + 1) // nt
                if split_n:
                    lo, hi = lo * NR, min(hi * NR, n)
                    _gemm_packed(pc + lo, ldc, m, hi - lo, k, pa, a_rs, a_cs,
                                 pb + lo * b_cs, b_rs, b_cs, abuf, bbuf, tile)
                else:
                    lo, hi = lo * MR, min(hi * MR, m)
                    _gemm_packed(pc + lo * ldc, ldc, hi - lo, n, k, pa + lo * a_rs, a_rs, a_cs,
                                 pb, b_rs, b_cs, abuf, bbuf, tile)
    finally:
        free(mem)


cdef _check_shapes(Py_ssize_t a0, Py_ssize_t a1, Py_ssize_t b0, Py_ssize_t b1,
                   Py_ssize_t m, Py_ssize_t n, bint trans_a, bint trans_b):
    """The kernels run without bounds checks: refuse shapes that do not multiply into c."""
    cdef Py_ssize_t am = a1 if trans_a else a0, ak = a0 if trans_a else a1
    cdef Py_ssize_t bk = b1 if trans_b else b0, bn = b0 if trans_b else b1
    if am != m or bn != n or ak != bk:
        raise ValueError(f"gemm: op(A) {am}x{ak} @ op(B) {bk}x{bn} does not fit C {m}x{n}")


def gemm_naive(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
               bint trans_a, bint trans_b, int num_threads):
    """C := op(A) @ op(B), i-k-j loops: c[i, :] = 0, then c[i, :] += a[i, k] * b[k, :] for
    ascending k. The same chain per element as `gemm`, so the same bits."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    _check_shapes(a.shape[0], a.shape[1], b.shape[0], b.shape[1], m, n, trans_a, trans_b)
    if m == 0 or n == 0:
        return
    c[:, :] = 0
    if k == 0:
        return
    cdef Py_ssize_t a_rs = a.strides[1] if trans_a else a.strides[0]
    cdef Py_ssize_t a_cs = a.strides[0] if trans_a else a.strides[1]
    cdef Py_ssize_t b_rs = b.strides[1] if trans_b else b.strides[0]
    cdef Py_ssize_t b_cs = b.strides[0] if trans_b else b.strides[1]
    cdef const char *pa = <const char *>&a[0, 0]
    cdef const char *pb = <const char *>&b[0, 0]
    cdef Py_ssize_t i, p, j
    cdef floating aik
    cdef floating *crow
    cdef const char *brow
    with nogil:
        for i in prange(m, num_threads=max(1, num_threads), schedule="static"):
            crow = &c[i, 0]
            for p in range(k):
                aik = (<const floating *>(pa + i * a_rs + p * a_cs))[0]
                brow = pb + p * b_rs
                for j in range(n):
                    crow[j] = crow[j] + aik * (<const floating *>(brow + j * b_cs))[0]


def gemm_blocked(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
                 bint trans_a, bint trans_b, int num_threads):
    """C := op(A) @ op(B), the i-k-j loops of `gemm_naive` tiled for the caches (no packing):
    a block of B rows stays in cache while rows of A pass. Same chain per element, same bits."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    _check_shapes(a.shape[0], a.shape[1], b.shape[0], b.shape[1], m, n, trans_a, trans_b)
    if m == 0 or n == 0:
        return
    c[:, :] = 0
    if k == 0:
        return
    cdef Py_ssize_t a_rs = a.strides[1] if trans_a else a.strides[0]
    cdef Py_ssize_t a_cs = a.strides[0] if trans_a else a.strides[1]
    cdef Py_ssize_t b_rs = b.strides[1] if trans_b else b.strides[0]
    cdef Py_ssize_t b_cs = b.strides[0] if trans_b else b.strides[1]
    cdef const char *pa = <const char *>&a[0, 0]
    cdef const char *pb = <const char *>&b[0, 0]
    # rows of C per block, k per block, columns per block (a 128 x 512 block of B is <= 512 KiB)
    cdef Py_ssize_t MB = 32, KB = 128, NB = 512
    cdef Py_ssize_t blk, i0, k0, j0, k0_, j0_, i, p, j, j1, k1
    cdef floating aik
    cdef floating *crow
    cdef const char *brow
    with nogil:
        for blk in prange((m + MB - 1) // MB, num_threads=max(1, num_threads), schedule="static"):
            i0 = blk * MB
            for j0_ in range(_cdiv(n, NB)):
                j0 = j0_ * NB
                j1 = min(j0 + NB, n)
                for k0_ in range(_cdiv(k, KB)):
                    k0 = k0_ * KB
                    k1 = min(k0 + KB, k)
                    for i in range(i0, min(i0 + MB, m)):
                        crow = &c[i, 0]
                        for p in range(k0, k1):
                            aik = (<const floating *>(pa + i * a_rs + p * a_cs))[0]
                            brow = pb + p * b_rs
                            for j in range(j0, j1):
                                crow[j] = crow[j] + aik * (<const floating *>(brow + j * b_cs))[0]
