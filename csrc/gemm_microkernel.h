/* The gemm micro-kernels: one MR x NR tile of C held in vector registers.
 *
 *   C[0:MR, 0:NR] := (load_c ? C : 0) + sum_{k < kc} a[k, 0:MR]^T b[k, 0:NR]
 *
 * a is a packed A micro-panel (kc x MR, row k at a + k*MR), b a packed B micro-panel
 * (kc x NR, row k at b + k*NR). Every element of the tile runs the same operations:
 * acc = c or +0, then acc = fma(a[k, r], b[k, j], acc) for k = 0, 1, ..., kc-1 in order
 * (a separate multiply and add where the target has no FMA: -ffp-contract=fast decides that
 * once, at build time). With load_c the chain continues from the value stored in C, so a k
 * loop split into blocks of any length gives exactly the one chain over all of k.
 *
 * GCC vector extensions rather than intrinsics: the same source compiles to AVX-512 with
 * -march=native and to SSE2 (slowly, correctly) in a portable build, and the explicit vector
 * types keep the compiler from "re-vectorising" a fully unrolled scalar loop.
 */
#ifndef CYGRAD_GEMM_MICROKERNEL_H
#define CYGRAD_GEMM_MICROKERNEL_H

/* 64-byte vectors: 16 floats / 8 doubles. The _u types load/store at any alignment. */
typedef float cg_vf __attribute__((vector_size(64)));
typedef double cg_vd __attribute__((vector_size(64)));
typedef float cg_vf_u __attribute__((vector_size(64), aligned(4), may_alias));
typedef double cg_vd_u __attribute__((vector_size(64), aligned(8), may_alias));

#define CG_MR_F32 8
#define CG_NV_F32 2 /* vectors per tile row */
#define CG_NR_F32 (16 * CG_NV_F32)
#define CG_MR_F64 6
#define CG_NV_F64 4
#define CG_NR_F64 (8 * CG_NV_F64)

#define CG_DEFINE_KERNEL(NAME, T, V, VU, W, MR, NV)                                           \
    static inline void NAME(long kc, const T *__restrict a, const T *__restrict b,            \
                            T *__restrict c, long ldc, int load_c)                             \
    {                                                                                          \
        V acc[MR][NV];                                                                         \
        if (load_c) {                                                                          \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r)                             \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v)                          \
                    acc[r][v] = *(const VU *)(c + r * ldc + W * v);                            \
        } else {                                                                               \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r)                             \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v)                          \
                    acc[r][v] = (V){0};                                                        \
        }                                                                                      \
        for (long k = 0; k < kc; ++k) {                                                        \
            V bv[NV];                                                                          \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v)                              \
                bv[v] = *(const VU *)(b + k * (W * NV) + W * v);                               \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r) {                           \
                const T ar = a[k * MR + r];                                                    \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v)                          \
                    acc[r][v] += ar * bv[v];                                                   \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r)                                 \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v)                              \
                *(VU *)(c + r * ldc + W * v) = acc[r][v];                                      \
    }

CG_DEFINE_KERNEL(cg_kernel_f32, float, cg_vf, cg_vf_u, 16, CG_MR_F32, CG_NV_F32)
CG_DEFINE_KERNEL(cg_kernel_f64, double, cg_vd, cg_vd_u, 8, CG_MR_F64, CG_NV_F64)

#endif
