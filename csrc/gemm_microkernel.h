/* The gemm micro-kernels (one MR x NR tile of C held in vector registers) and the packing
 * routines that lay operands out for them.
 *
 *   C[0:MR, 0:NR] := (load_c ? C : 0) + sum_{k < kc} a[k, 0:MR]^T b[k, 0:NR]
 *
 * a is a packed A micro-panel (kc x MR, row k at a + k*MR), b a packed B micro-panel
 * (kc x NR, row k at b + k*NR). Every element of the tile runs the same operations:
 * acc = c or +0, then acc = fma(a[k, r], b[k, j], acc) for k = 0, 1, ..., kc-1 in order
 * (a separate multiply and add where the target has no FMA: -ffp-contract=fast decides that
 * once, at build time). With load_c the chain would continue from the value stored in C;
 * gemm.pyx starts every k block from +0 (a leaf of its k tree) and adds the leaves itself, so
 * neither the tile shape nor the blocking can change a result.
 *
 * GCC vector extensions rather than intrinsics: one source compiles to AVX-512 with
 * -march=native, to AVX2 or SSE2/NEON elsewhere (the vector width follows the target), and
 * the explicit vector types keep the compiler from "re-vectorising" a fully unrolled scalar
 * loop. Every CG_ constant below can be overridden with -D when tuning.
 */
#ifndef CYGRAD_GEMM_MICROKERNEL_H
#define CYGRAD_GEMM_MICROKERNEL_H

#include <stddef.h>

/* GCC and clang have vector types; only GCC has __builtin_shuffle (the packing transposes).
 * Other compilers (MSVC) get plain arrays: the same operations per element, only slower. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(CG_NO_VECTOR_EXT)
#define CG_VECTOR 1
#if defined(__clang__)
#define CG_SHUFFLE 0
#else
#define CG_SHUFFLE 1
#endif
#else
#define CG_VECTOR 0
#define CG_SHUFFLE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CG_PRAGMA(x) _Pragma(#x)
#else
#define CG_PRAGMA(x)
#endif
#define CG_UNROLL CG_PRAGMA(GCC unroll 16)

/* Whether this build's multiply-add chains are fused (one rounding a link): the bits of a
 * product differ in the last places from those of a build without FMA hardware. */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__FP_FAST_FMA)
#define CG_HAS_FMA 1
#else
#define CG_HAS_FMA 0
#endif

/* Vector width and tile shape (MR rows x NV vectors) per target: the accumulators use half of
 * the vector registers or more, the rest hold a row of b and a broadcast element of a. */
#if defined(__AVX512F__)
/* 32 zmm: 8 x 32 float32 / 8 x 16 float64, 16 accumulators. 14 rows (28 accumulators, 4.6
 * bytes of b streamed from L2 a multiply-add instead of 8) ran 2.5-3.5% faster at 512^3-2048^3
 * on a 2 MiB-L2 Xeon (2026-12-03, with the prefetch below) but 2-16% slower with 64 or 128
 * rows (ragged tiles: a dense layer's batch), so the tile stays 8 rows. */
#define CG_VBYTES 64
#define CG_MR_DEFAULT 8
#define CG_NV_DEFAULT 2
#define CG_PF_B_DEFAULT 16
#elif defined(__AVX__)
#define CG_VBYTES 32 /* 16 ymm: 6 x 16 / 6 x 8, 12 accumulators */
#define CG_MR_DEFAULT 6
#define CG_NV_DEFAULT 2
#define CG_PF_B_DEFAULT 16
#else
#define CG_VBYTES 16 /* SSE2 or NEON: 4 x 8 / 4 x 4, 8 accumulators */
#define CG_MR_DEFAULT 4
#define CG_NV_DEFAULT 2
#endif
/* The micro-kernel asks for the rows of its B micro-panel CG_PF_B links ahead (0: no hint;
 * set on x86 with AVX, the targets it was measured on). The panel (KC x NR) is larger than L1
 * and streams from L2 for every A micro-panel; the hardware's prefetchers alone left the
 * kernel waiting on it. On the Xeon above, 2048^3 with 16: AVX-512 float32 +5%, float64 +4%
 * (8 and 32 within 1% of 16; 64^3 float32 -4%, 128^3 and the dense layer's products +0-4%);
 * the default AVX2 build float32 +5% (512^3 +6%), float64 +3% (512^3 +4%). A hint: no
 * arithmetic. */
#ifndef CG_PF_B_DEFAULT
#define CG_PF_B_DEFAULT 0
#endif
#ifndef CG_PF_B
#define CG_PF_B CG_PF_B_DEFAULT
#endif
#define CG_WF (CG_VBYTES / 4) /* lanes */
#define CG_WD (CG_VBYTES / 8)

#ifndef CG_MR_F32
#define CG_MR_F32 CG_MR_DEFAULT
#endif
#ifndef CG_NV_F32
#define CG_NV_F32 CG_NV_DEFAULT
#endif
#ifndef CG_MR_F64
#define CG_MR_F64 CG_MR_DEFAULT
#endif
#ifndef CG_NV_F64
#define CG_NV_F64 CG_NV_DEFAULT
#endif
#define CG_NR_F32 (CG_WF * CG_NV_F32)
#define CG_NR_F64 (CG_WD * CG_NV_F64)
/* The wide tile: as many columns, more rows, for products with many rows (gemm.pyx
 * _wide_rows): with AVX-512's 32 registers, 14 x 32 / 14 x 16 (28 accumulators, fewer loads a
 * multiply-add; 0.7-3.4% faster than 8 rows at 512^3-2048^3 on a Xeon, 2026-12-03, 2-9% at two
 * threads, but slower where 14-row panels pad many rows: 64-256). Elsewhere (16 registers)
 * the same as the tile above. */
#ifndef CG_MR_WIDE_F32
#if CG_VBYTES == 64
#define CG_MR_WIDE_F32 14
#else
#define CG_MR_WIDE_F32 CG_MR_F32
#endif
#endif
#ifndef CG_MR_WIDE_F64
#if CG_VBYTES == 64
#define CG_MR_WIDE_F64 14
#else
#define CG_MR_WIDE_F64 CG_MR_F64
#endif
#endif
/* Whether the automatic choice (gemm.pyx _wide_rows) may take the wide tile on the CPU running
 * it: not on AMD's, whose AVX-512 core (Zen 4) ran the 8-row tile 2-3% faster at 512^3-2048^3,
 * both dtypes, one and two threads (2026-12-04, paired in one process), and whose Zen 5 runs
 * (1.02-1.05 of OpenBLAS at 2048^3) were all 8-row ones. Performance only: the tile's shape
 * changes no bit of any product. */
static int cg_wide_pays(void)
{
#if CG_VBYTES == 64 && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return !__builtin_cpu_is("amd");
#else
    return CG_VBYTES == 64;
#endif
}

/* Narrow tiles, one vector wide: a product with at most this many columns packs B in panels
 * of this width and runs the narrow kernel, instead of padding every row of C to NR. */
#define CG_NRN_F32 CG_WF
#define CG_NRN_F64 CG_WD

/* Cache blocking (performance only). Loop order in gemm.pyx: for each block of NC columns, B
 * packed (all its k blocks, streamed from L2/L3); then for each MC x KC block of A, in
 * ascending k, an A micro-panel (MR x KC) stays in L1 while the B micro-panels pass. Measured
 * on Zen 4 (1 MiB L2): benchmarks/README.md. */
#ifndef CG_KC_F32
#define CG_KC_F32 512
#endif
#ifndef CG_KC_F64
#define CG_KC_F64 256
#endif
#ifndef CG_MC
#define CG_MC 120 /* a multiple of every MR above */
#endif
#ifndef CG_NC
#define CG_NC 2048
#endif
/* A leaf of a block of columns runs CG_NSUB of them at a time (a multiple of every panel
 * width): their KC x NSUB part of packed B (512 KiB) stays in L2 while the A micro-panels
 * pass, however many columns were packed at once. */
#ifndef CG_NSUB
#define CG_NSUB 256
#endif
/* Bytes of B packed at once: every k block of a block of columns, fewer than CG_NC columns
 * when k is long (but 256 at least). gemm.pyx sets it at import to four times the L2 of a
 * core (between 2 and 16 MiB; 4 MiB when the size is not known) unless CG_PACKED_B is defined,
 * and a threaded product's threads share it (each packs its own block of B).
 * 2048^3 on Zen 5 (1 MiB L2), medians of 5 alternating rounds against OpenBLAS, one / two
 * threads: float64 2 MiB 1.03 / 1.02, 4 MiB 1.05 / 0.98, 8 MiB 0.97 / 0.81; float32 2 MiB
 * 0.94 / 0.94, 4 MiB 0.92 / 0.97, 8 MiB 0.92 / 0.71 (B's k blocks one at a time, with the
 * partials of all of C in memory: float64 0.82 / 0.79). On a 2 MiB-L2 Xeon (2026-12-03),
 * paired against 4 MiB a thread: 8 MiB at one thread, 2048^3 float64 +4.6%, float32 +2.2%,
 * 1024^3 float64 +1.4%; 16 MiB -9% / -17%; 8 MiB a thread at two threads -3% / -17% (each
 * thread packs its own B: the reason for sharing the budget out); 2 MiB -0.2-2.2%. */
#ifdef CG_PACKED_B
#define CG_PACKED_B_FIXED (CG_PACKED_B)
#else
#define CG_PACKED_B_FIXED 0
#endif
/* ... and when even 256 columns of them would take more than this (a very long k), B is packed
 * one k block at a time (KC x NC) with the k blocks outermost, as before: memory stays bounded */
#ifndef CG_PACKED_B_MAX
#define CG_PACKED_B_MAX (16 << 20)
#endif

#if CG_VECTOR
typedef float cg_vf __attribute__((vector_size(CG_VBYTES)));
typedef double cg_vd __attribute__((vector_size(CG_VBYTES)));
typedef int cg_vi __attribute__((vector_size(CG_VBYTES))); /* shuffle masks */
typedef long long cg_vl __attribute__((vector_size(CG_VBYTES)));
typedef float cg_vf_u __attribute__((vector_size(CG_VBYTES), aligned(4), may_alias));
typedef double cg_vd_u __attribute__((vector_size(CG_VBYTES), aligned(8), may_alias));

/* One link of every chain of the tile: acc[r][v] += a[k, r] * b[k, v-th vector] */
#define CG_KERNEL_STEP(T, V, VU, W, MR, NV, a, b, k, acc)                                      \
    do {                                                                                       \
        V bv_[NV];                                                                             \
        if (CG_PF_B) {                                                                         \
            CG_UNROLL for (int q = 0; q < (int)(W * NV * sizeof(T)); q += 64)                  \
                __builtin_prefetch((const char *)((b) + ((k) + CG_PF_B) * (W * NV)) + q, 0, 3); \
        }                                                                                      \
        CG_UNROLL for (int v = 0; v < NV; ++v)                                                 \
            bv_[v] = *(const VU *)((b) + (k) * (W * NV) + W * v);                              \
        CG_UNROLL for (int r = 0; r < MR; ++r) {                                               \
            const T ar_ = (a)[(k) * MR + r];                                                   \
            CG_UNROLL for (int v = 0; v < NV; ++v)                                             \
                acc[r][v] += ar_ * bv_[v];                                                     \
        }                                                                                      \
    } while (0)
/* NAME##_sum: the same tile, then acc := src[l] + acc for l = 0, 1, ..., nsrc-1 (tiles of
 * stored partials, rows ld[l] elements apart; the last may be c itself) before the store: the
 * k tree's merges of a full tile without a trip through a scratch tile (the same additions, in
 * the same order). */
#define CG_DEFINE_KERNEL(NAME, T, V, VU, W, MR, NV)                                           \
    static inline void NAME##_sum(ptrdiff_t kc, const T *__restrict a, const T *__restrict b, \
                                  T *c, ptrdiff_t ldc, int load_c, int nsrc,                   \
                                  const T *const *src, const ptrdiff_t *ld)                    \
    {                                                                                          \
        V acc[MR][NV];                                                                         \
        if (load_c) {                                                                          \
            CG_UNROLL for (int r = 0; r < MR; ++r)                                             \
                CG_UNROLL for (int v = 0; v < NV; ++v)                                         \
                    acc[r][v] = *(const VU *)(c + r * ldc + W * v);                            \
        } else {                                                                               \
            CG_UNROLL for (int r = 0; r < MR; ++r)                                             \
                CG_UNROLL for (int v = 0; v < NV; ++v)                                         \
                    acc[r][v] = (V){0};                                                        \
        }                                                                                      \
        for (ptrdiff_t k = 0; k < kc; ++k)                                                     \
            CG_KERNEL_STEP(T, V, VU, W, MR, NV, a, b, k, acc);                                 \
        for (int l = 0; l < nsrc; ++l)                                                         \
            CG_UNROLL for (int r = 0; r < MR; ++r)                                             \
                CG_UNROLL for (int v = 0; v < NV; ++v)                                         \
                    acc[r][v] = *(const VU *)(src[l] + r * ld[l] + W * v) + acc[r][v];         \
        CG_UNROLL for (int r = 0; r < MR; ++r)                                                 \
            CG_UNROLL for (int v = 0; v < NV; ++v)                                             \
                *(VU *)(c + r * ldc + W * v) = acc[r][v];                                      \
    }                                                                                          \
    static inline void NAME(ptrdiff_t kc, const T *__restrict a, const T *__restrict b,       \
                            T *__restrict c, ptrdiff_t ldc, int load_c)                        \
    {                                                                                          \
        NAME##_sum(kc, a, b, c, ldc, load_c, 0, NULL, NULL);                                   \
    }
CG_DEFINE_KERNEL(cg_kernel_f32, float, cg_vf, cg_vf_u, CG_WF, CG_MR_F32, CG_NV_F32)
CG_DEFINE_KERNEL(cg_kernel_f64, double, cg_vd, cg_vd_u, CG_WD, CG_MR_F64, CG_NV_F64)
CG_DEFINE_KERNEL(cg_kernel_wide_f32, float, cg_vf, cg_vf_u, CG_WF, CG_MR_WIDE_F32, CG_NV_F32)
CG_DEFINE_KERNEL(cg_kernel_wide_f64, double, cg_vd, cg_vd_u, CG_WD, CG_MR_WIDE_F64, CG_NV_F64)
/* one vector wide, for products with at most CG_NRN_* columns (a narrow layer) */
CG_DEFINE_KERNEL(cg_kernel_narrow_f32, float, cg_vf, cg_vf_u, CG_WF, CG_MR_F32, 1)
CG_DEFINE_KERNEL(cg_kernel_narrow_f64, double, cg_vd, cg_vd_u, CG_WD, CG_MR_F64, 1)

#else /* plain arrays, the same chain per element */
#define CG_DEFINE_KERNEL(NAME, T, MR, NR)                                                      \
    static inline void NAME##_sum(ptrdiff_t kc, const T *a, const T *b, T *c, ptrdiff_t ldc,   \
                                  int load_c, int nsrc, const T *const *src,                   \
                                  const ptrdiff_t *ld)                                         \
    {                                                                                          \
        T acc[MR][NR];                                                                         \
        for (int r = 0; r < MR; ++r)                                                           \
            for (int j = 0; j < NR; ++j) acc[r][j] = load_c ? c[r * ldc + j] : (T)0;           \
        for (ptrdiff_t k = 0; k < kc; ++k)                                                     \
            for (int r = 0; r < MR; ++r)                                                       \
                for (int j = 0; j < NR; ++j) acc[r][j] += a[k * MR + r] * b[k * NR + j];       \
        for (int l = 0; l < nsrc; ++l)                                                         \
            for (int r = 0; r < MR; ++r)                                                       \
                for (int j = 0; j < NR; ++j) acc[r][j] = src[l][r * ld[l] + j] + acc[r][j];    \
        for (int r = 0; r < MR; ++r)                                                           \
            for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];                           \
    }                                                                                          \
    static inline void NAME(ptrdiff_t kc, const T *a, const T *b, T *c, ptrdiff_t ldc,         \
                            int load_c)                                                        \
    {                                                                                          \
        NAME##_sum(kc, a, b, c, ldc, load_c, 0, NULL, NULL);                                   \
    }
CG_DEFINE_KERNEL(cg_kernel_f32, float, CG_MR_F32, CG_NR_F32)
CG_DEFINE_KERNEL(cg_kernel_f64, double, CG_MR_F64, CG_NR_F64)
CG_DEFINE_KERNEL(cg_kernel_wide_f32, float, CG_MR_WIDE_F32, CG_NR_F32)
CG_DEFINE_KERNEL(cg_kernel_wide_f64, double, CG_MR_WIDE_F64, CG_NR_F64)
CG_DEFINE_KERNEL(cg_kernel_narrow_f32, float, CG_MR_F32, CG_NRN_F32)
CG_DEFINE_KERNEL(cg_kernel_narrow_f64, double, CG_MR_F64, CG_NRN_F64)
#endif

/* Packing full panels from operands with one unit stride: copies only, no arithmetic, so
 * nothing here can touch the exactness contract. ld is the other stride, in elements.
 *   pack_a: dst[k*MR + r] = op(A)[r, k]        pack_b: dst[k*NR + c] = op(B)[k, c]
 * "kcont" (k runs along memory) is a transpose: with GCC, W x W blocks go through registers. */
#if CG_SHUFFLE
/* In-register transpose of W vectors of W lanes in log2(W) butterfly stages; the stage of
 * width s swaps the off-diagonal s x s blocks of every 2s x 2s block. */
#define CG_STAGE(V, VI, W, v, s)                                                                \
    do {                                                                                       \
        VI lo_, hi_;                                                                           \
        for (int e = 0; e < W; ++e) {                                                          \
            lo_[e] = (e & s) ? W + e - s : e;                                                  \
            hi_[e] = (e & s) ? W + e : e + s;                                                  \
        }                                                                                      \
        CG_UNROLL for (int i = 0; i < W; ++i) if (!(i & s)) {                                  \
            V x_ = __builtin_shuffle(v[i], v[i + s], lo_);                                     \
            v[i + s] = __builtin_shuffle(v[i], v[i + s], hi_);                                 \
            v[i] = x_;                                                                         \
        }                                                                                      \
    } while (0)

#define CG_DEFINE_TRANSPOSES(SFX, T, V, VU, VI, W)                                              \
    static inline void cg_transpose_##SFX(V *v)                                                \
    {                                                                                          \
        if (W > 8) CG_STAGE(V, VI, W, v, 8);                                                   \
        if (W > 4) CG_STAGE(V, VI, W, v, 4);                                                   \
        if (W > 2) CG_STAGE(V, VI, W, v, 2);                                                   \
        CG_STAGE(V, VI, W, v, 1);                                                              \
    }
/* A panels of MR rows: k0 += W at a time through registers; returns where the scalar tail
 * starts */
#define CG_DEFINE_A_KCONT_BLOCKS(NAME, TSFX, T, V, VU, W, MR)                                   \
    __attribute__((unused)) static ptrdiff_t NAME(                                             \
        T *__restrict dst, const T *__restrict src, ptrdiff_t ld, ptrdiff_t kc)                \
    {                                                                                          \
        ptrdiff_t k0 = 0;                                                                      \
        for (; k0 + W <= kc; k0 += W) {                                                        \
            CG_PRAGMA(GCC unroll 4) for (int r0 = 0; r0 < MR; r0 += W) {                       \
                V v[W];                                                                        \
                CG_UNROLL for (int r = 0; r < W; ++r)                                          \
                    v[r] = r0 + r < MR ? (V) * (const VU *)(src + (r0 + r) * ld + k0) : (V){0}; \
                cg_transpose_##TSFX(v);                                                        \
                const int rows = MR - r0 < W ? MR - r0 : W;                                    \
                CG_UNROLL for (int k = 0; k < W; ++k)                                          \
                    __builtin_memcpy(dst + (k0 + k) * MR + r0, &v[k], rows * sizeof(T));       \
            }                                                                                  \
        }                                                                                      \
        return k0;                                                                             \
    }
CG_DEFINE_TRANSPOSES(f32, float, cg_vf, cg_vf_u, cg_vi, CG_WF)
CG_DEFINE_TRANSPOSES(f64, double, cg_vd, cg_vd_u, cg_vl, CG_WD)
CG_DEFINE_A_KCONT_BLOCKS(cg_pack_a_kcont_blocks_w_f32, f32, float, cg_vf, cg_vf_u, CG_WF,
                         CG_MR_F32)
CG_DEFINE_A_KCONT_BLOCKS(cg_pack_a_kcont_blocks_w_f64, f64, double, cg_vd, cg_vd_u, CG_WD,
                         CG_MR_F64)
CG_DEFINE_A_KCONT_BLOCKS(cg_pack_a_kcont_blocks_wide_f32, f32, float, cg_vf, cg_vf_u, CG_WF,
                         CG_MR_WIDE_F32)
CG_DEFINE_A_KCONT_BLOCKS(cg_pack_a_kcont_blocks_wide_f64, f64, double, cg_vd, cg_vd_u, CG_WD,
                         CG_MR_WIDE_F64)
#define cg_pack_a_kcont_blocks_f64 cg_pack_a_kcont_blocks_w_f64
#if CG_MR_F32 * 2 == CG_WF && CG_WF == 16
/* float32 A panels of half a vector's lanes (AVX-512: 8 rows, 16 lanes): a W x W transpose
 * would carry W / 2 rows of zeros. Instead each row's lanes are taken in pairs, one float64
 * lane each, through the 8 x 8 float64 transpose: vector j then holds every row's pair
 * (k0 + 2j, k0 + 2j + 1), and one permutation puts it as dst rows k0 + 2j and k0 + 2j + 1
 * (MR floats each), stored at once. Half the shuffles, no zeros; a copy all the same. */
static ptrdiff_t cg_pack_a_kcont_blocks_f32(float *__restrict dst, const float *__restrict src,
                                            ptrdiff_t ld, ptrdiff_t kc)
{
    const cg_vi split = {0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15};
    ptrdiff_t k0 = 0;
    for (; k0 + CG_WF <= kc; k0 += CG_WF) {
        cg_vd v[CG_WD];
        CG_UNROLL for (int r = 0; r < CG_MR_F32; ++r)
            v[r] = (cg_vd)(*(const cg_vf_u *)(src + r * ld + k0));
        cg_transpose_f64(v);
        CG_UNROLL for (int j = 0; j < CG_WD; ++j)
            *(cg_vf_u *)(dst + (k0 + 2 * j) * CG_MR_F32) = __builtin_shuffle((cg_vf)v[j], split);
    }
    return k0;
}
#else
#define cg_pack_a_kcont_blocks_f32 cg_pack_a_kcont_blocks_w_f32
#endif
/* B's kcont blocks for panels NR wide (the full tile's or the narrow one, both whole vectors) */
#define CG_DEFINE_B_KCONT_BLOCKS(SFX, TSFX, T, V, VU, W, NR)                                    \
    static ptrdiff_t cg_pack_b_kcont_blocks_##SFX(T *__restrict dst, const T *__restrict src,  \
                                                  ptrdiff_t ld, ptrdiff_t kc)                  \
    {                                                                                          \
        ptrdiff_t k0 = 0;                                                                      \
        for (; k0 + W <= kc; k0 += W) {                                                        \
            CG_PRAGMA(GCC unroll 1) for (int c0 = 0; c0 < NR; c0 += W) {                       \
                V v[W];                                                                        \
                CG_UNROLL for (int c = 0; c < W; ++c)                                          \
                    v[c] = *(const VU *)(src + (c0 + c) * ld + k0);                            \
                cg_transpose_##TSFX(v);                                                        \
                CG_UNROLL for (int k = 0; k < W; ++k)                                          \
                    *(VU *)(dst + (k0 + k) * NR + c0) = v[k];                                  \
            }                                                                                  \
        }                                                                                      \
        return k0;                                                                             \
    }
CG_DEFINE_B_KCONT_BLOCKS(f32, f32, float, cg_vf, cg_vf_u, CG_WF, CG_NR_F32)
CG_DEFINE_B_KCONT_BLOCKS(f64, f64, double, cg_vd, cg_vd_u, CG_WD, CG_NR_F64)
CG_DEFINE_B_KCONT_BLOCKS(narrow_f32, f32, float, cg_vf, cg_vf_u, CG_WF, CG_NRN_F32)
CG_DEFINE_B_KCONT_BLOCKS(narrow_f64, f64, double, cg_vd, cg_vd_u, CG_WD, CG_NRN_F64)
#define CG_KCONT_BLOCKS(which, SFX, dst, src, ld, kc)                                          \
    cg_pack_##which##_kcont_blocks_##SFX(dst, src, ld, kc)
/* One window of a B panel from NR separate runs (a convolution's patches, gemm.pyx): column c's
 * W consecutive k at rows[c] + off, transposed in registers like the kcont blocks; k rows
 * skip..stop-1 are stored (dst[(k - skip)*NR + c]: a window shifted back to end with its run
 * stores only the k the window before has not, one reaching past its run only those in it),
 * columns keep.. as zeros (a ragged panel: their rows[c] only need to be readable). NR is the
 * full tile's width or the narrow one's (one vector). */
#define CG_DEFINE_B_ROWS(SFX, TSFX, T, V, VU, VI, W, NR)                                        \
    static inline void cg_pack_b_rows_##SFX(T *__restrict dst, const T *const *rows,           \
                                            ptrdiff_t off, int skip, int stop, int keep)       \
    {                                                                                          \
        CG_PRAGMA(GCC unroll 1) for (int c0 = 0; c0 < NR; c0 += W) {                           \
            V v[W];                                                                            \
            CG_UNROLL for (int c = 0; c < W; ++c) v[c] = *(const VU *)(rows[c0 + c] + off);    \
            cg_transpose_##TSFX(v);                                                            \
            if (keep < c0 + W) {                                                               \
                VI m;                                                                          \
                for (int l = 0; l < W; ++l) m[l] = c0 + l < keep ? -1 : 0;                     \
                for (int k = skip; k < stop; ++k) v[k] = (V)((VI)v[k] & m);                    \
            }                                                                                  \
            for (int k = skip; k < stop; ++k)                                                  \
                *(VU *)(dst + (k - skip) * NR + c0) = v[k];                                    \
        }                                                                                      \
    }
CG_DEFINE_B_ROWS(f32, f32, float, cg_vf, cg_vf_u, cg_vi, CG_WF, CG_NR_F32)
CG_DEFINE_B_ROWS(f64, f64, double, cg_vd, cg_vd_u, cg_vl, CG_WD, CG_NR_F64)
CG_DEFINE_B_ROWS(narrow_f32, f32, float, cg_vf, cg_vf_u, cg_vi, CG_WF, CG_NRN_F32)
CG_DEFINE_B_ROWS(narrow_f64, f64, double, cg_vd, cg_vd_u, cg_vl, CG_WD, CG_NRN_F64)
/* A W x W block moved across: dst[o*ldd + p] = src[p*lds + o] (+ bias[o] when bias is not
 * NULL: one add an element), for p, o < W (conv_image's rows into channel planes). */
#define CG_DEFINE_BLOCK_T(SFX, T, V, VU, W)                                                     \
    static inline void cg_block_t_##SFX(const T *src, ptrdiff_t lds, T *dst, ptrdiff_t ldd,    \
                                        const T *bias)                                         \
    {                                                                                          \
        V v[W];                                                                                \
        CG_UNROLL for (int p = 0; p < W; ++p) v[p] = *(const VU *)(src + p * lds);             \
        cg_transpose_##SFX(v);                                                                 \
        if (bias)                                                                              \
            CG_UNROLL for (int o = 0; o < W; ++o) *(VU *)(dst + o * ldd) = v[o] + bias[o];     \
        else                                                                                   \
            CG_UNROLL for (int o = 0; o < W; ++o) *(VU *)(dst + o * ldd) = v[o];               \
    }
CG_DEFINE_BLOCK_T(f32, float, cg_vf, cg_vf_u, CG_WF)
CG_DEFINE_BLOCK_T(f64, double, cg_vd, cg_vd_u, CG_WD)
#else
#define CG_KCONT_BLOCKS(which, SFX, dst, src, ld, kc) 0
#define CG_DEFINE_B_ROWS(SFX, T, W, NR)                                                         \
    static inline void cg_pack_b_rows_##SFX(T *__restrict dst, const T *const *rows,           \
                                            ptrdiff_t off, int skip, int stop, int keep)       \
    {                                                                                          \
        for (int k = skip; k < stop; ++k)                                                      \
            for (int c = 0; c < NR; ++c)                                                       \
                dst[(k - skip) * NR + c] = c < keep ? rows[c][off + k] : 0;                    \
    }
CG_DEFINE_B_ROWS(f32, float, CG_WF, CG_NR_F32)
CG_DEFINE_B_ROWS(f64, double, CG_WD, CG_NR_F64)
CG_DEFINE_B_ROWS(narrow_f32, float, CG_WF, CG_NRN_F32)
CG_DEFINE_B_ROWS(narrow_f64, double, CG_WD, CG_NRN_F64)
#define CG_DEFINE_BLOCK_T(SFX, T, W)                                                            \
    static inline void cg_block_t_##SFX(const T *src, ptrdiff_t lds, T *dst, ptrdiff_t ldd,    \
                                        const T *bias)                                         \
    {                                                                                          \
        for (int o = 0; o < W; ++o)                                                            \
            for (int p = 0; p < W; ++p)                                                        \
                dst[o * ldd + p] = bias ? src[p * lds + o] + bias[o] : src[p * lds + o];       \
    }
CG_DEFINE_BLOCK_T(f32, float, CG_WF)
CG_DEFINE_BLOCK_T(f64, double, CG_WD)
#endif

#define CG_DEFINE_PACK_A(SFX, T, MR)                                                            \
    static void cg_pack_a_icont_##SFX(T *__restrict dst, const T *__restrict src, ptrdiff_t ld, \
                                      ptrdiff_t kc)                                            \
    {                                                                                          \
        for (ptrdiff_t k = 0; k < kc; ++k)                                                     \
            CG_UNROLL for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[k * ld + r];          \
    }                                                                                          \
    static void cg_pack_a_kcont_##SFX(T *__restrict dst, const T *__restrict src, ptrdiff_t ld, \
                                      ptrdiff_t kc)                                            \
    {                                                                                          \
        for (ptrdiff_t k = CG_KCONT_BLOCKS(a, SFX, dst, src, ld, kc); k < kc; ++k)             \
            for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * ld + k];                    \
    }
/* B's panels NR wide: SFX f32/f64 for the full tile's width, narrow_f32/narrow_f64 for the
 * narrow tile's (one vector) */
#if CG_VECTOR
/* a row of a jcont panel in whole vectors: written as an element loop, gcc calls memcpy for
 * each row (128 bytes of a float32 panel: the call costs more than the move) */
#define CG_JCONT_ROW(T, NR, d, s)                                                               \
    do {                                                                                       \
        typedef T v_ __attribute__((vector_size(CG_VBYTES), aligned(sizeof(T)), may_alias));   \
        CG_UNROLL for (int c = 0; c < NR; c += CG_VBYTES / (int)sizeof(T))                      \
            *(v_ *)((d) + c) = *(const v_ *)((s) + c);                                         \
    } while (0)
#else
#define CG_JCONT_ROW(T, NR, d, s)                                                               \
    do {                                                                                       \
        for (int c = 0; c < NR; ++c) (d)[c] = (s)[c];                                          \
    } while (0)
#endif
#define CG_DEFINE_PACK_B(SFX, T, NR)                                                            \
    static void cg_pack_b_jcont_##SFX(T *__restrict dst, const T *__restrict src, ptrdiff_t ld, \
                                      ptrdiff_t kc)                                            \
    {                                                                                          \
        for (ptrdiff_t k = 0; k < kc; ++k)                                                     \
            CG_JCONT_ROW(T, NR, dst + k * NR, src + k * ld);                                   \
    }                                                                                          \
    static void cg_pack_b_kcont_##SFX(T *__restrict dst, const T *__restrict src, ptrdiff_t ld, \
                                      ptrdiff_t kc)                                            \
    {                                                                                          \
        for (ptrdiff_t k = CG_KCONT_BLOCKS(b, SFX, dst, src, ld, kc); k < kc; ++k)             \
            for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[c * ld + k];                    \
    }
CG_DEFINE_PACK_A(f32, float, CG_MR_F32)
CG_DEFINE_PACK_A(f64, double, CG_MR_F64)
CG_DEFINE_PACK_A(wide_f32, float, CG_MR_WIDE_F32)
CG_DEFINE_PACK_A(wide_f64, double, CG_MR_WIDE_F64)
CG_DEFINE_PACK_B(f32, float, CG_NR_F32)
CG_DEFINE_PACK_B(f64, double, CG_NR_F64)
CG_DEFINE_PACK_B(narrow_f32, float, CG_NRN_F32)
CG_DEFINE_PACK_B(narrow_f64, double, CG_NRN_F64)

/* One row of a full B panel (NR elements) moved as whole vectors (CG_JCONT_ROW). */
static inline void cg_move_nr_f32(float *__restrict dst, const float *__restrict src)
{
    CG_JCONT_ROW(float, CG_NR_F32, dst, src);
}
static inline void cg_move_nr_f64(double *__restrict dst, const double *__restrict src)
{
    CG_JCONT_ROW(double, CG_NR_F64, dst, src);
}

/* The measured peak of one core (python -m cygrad bench): 12 independent chains of vector
 * multiply-adds acc = acc * x + y held in registers, n links each, no memory traffic. With FMA
 * each link is one instruction, and 12 chains cover the latency of two FMA units (4 cycles x 2
 * per cycle = 8 in flight): the rate of 2 * lanes * 12 * n flops is the core's arithmetic peak,
 * the line a gemm's GFLOP/s is read against. Returns the sum of every lane (so the chains are
 * computed); x < 1 keeps them finite. */
#define CG_PEAK_CHAINS 12
#if CG_VECTOR
#define CG_DEFINE_PEAK(SFX, T, V, W)                                                           \
    static T cg_fma_peak_##SFX(ptrdiff_t n, T x, T y)                                           \
    {                                                                                          \
        V acc[CG_PEAK_CHAINS], xv = (V){0} + x, yv = (V){0} + y;                               \
        CG_UNROLL for (int c = 0; c < CG_PEAK_CHAINS; ++c) acc[c] = (V){0} + (T)c;             \
        for (ptrdiff_t i = 0; i < n; ++i)                                                      \
            CG_UNROLL for (int c = 0; c < CG_PEAK_CHAINS; ++c) acc[c] = acc[c] * xv + yv;      \
        T total = 0;                                                                           \
        for (int c = 0; c < CG_PEAK_CHAINS; ++c)                                               \
            for (int l = 0; l < W; ++l) total += acc[c][l];                                    \
        return total;                                                                          \
    }
CG_DEFINE_PEAK(f32, float, cg_vf, CG_WF)
CG_DEFINE_PEAK(f64, double, cg_vd, CG_WD)
#else
#define CG_DEFINE_PEAK(SFX, T, W)                                                              \
    static T cg_fma_peak_##SFX(ptrdiff_t n, T x, T y)                                           \
    {                                                                                          \
        T acc[CG_PEAK_CHAINS][W];                                                              \
        for (int c = 0; c < CG_PEAK_CHAINS; ++c)                                               \
            for (int l = 0; l < W; ++l) acc[c][l] = (T)c;                                      \
        for (ptrdiff_t i = 0; i < n; ++i)                                                      \
            for (int c = 0; c < CG_PEAK_CHAINS; ++c)                                           \
                for (int l = 0; l < W; ++l) acc[c][l] = acc[c][l] * x + y;                     \
        T total = 0;                                                                           \
        for (int c = 0; c < CG_PEAK_CHAINS; ++c)                                               \
            for (int l = 0; l < W; ++l) total += acc[c][l];                                    \
        return total;                                                                          \
    }
CG_DEFINE_PEAK(f32, float, CG_WF)
CG_DEFINE_PEAK(f64, double, CG_WD)
#endif


#endif
