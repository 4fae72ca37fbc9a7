/* The summation tree of cygrad's sums: column_sum, row_sum, channel_sum and the fused bias
 * gradient (gemm's k chain has its own, gemm.pyx). One definition, shared by every output.
 *
 * The sum of x[0], ..., x[n-1] (in the order of the reduced index):
 *   leaves  P[t] = (((+0 + x[tL]) + x[tL+1]) + ...) + x[min(tL+L, n) - 1], t < N = ceil(n / L),
 *           L = CG_LEAF: chains of L elements from +0 (the last one shorter);
 *   tree    write N = 2^e1 + 2^e2 + ... (e1 > e2 > ...); the leaves, in order, fall into groups
 *           of 2^e1, 2^e2, ... leaves; each group is a perfect binary tree (the sum of its first
 *           half plus the sum of its second half); S = G1 + (G2 + (G3 + ...));
 *   n = 0   S = +0.
 * For n <= L that is the plain chain from +0. The error is at most about (L + log2(N)) ulps of
 * the sum of |x| (a single chain: n ulps), and the tree depends on n alone: never on an
 * element's position, the other outputs, the engine below or the thread count.
 *
 * The tree is built as a binary counter: leaf t goes onto a stack after merging it with the
 * level-l entries for every trailing one bit l of t (entry + leaf: earlier elements on the
 * left); at the end the occupied levels, the bits of N, fold from the lowest up. Two engines:
 *   lanes: many outputs at once, one leaf of every output after another (vectors over outputs;
 *          a column sum of C-contiguous rows);
 *   one:   a single output, several leaves at once (vectors over leaves; a long row).
 * Both run the same additions in the same order per output: the same bits.
 */
#ifndef CYGRAD_SUMS_H
#define CYGRAD_SUMS_H

#include <stddef.h>

#ifndef CG_LEAF
#define CG_LEAF 32
#endif
#define CG_DEPTH 64 /* stack levels: enough for any N < 2^63 */
#define CG_CHUNK 256 /* outputs per run of the lanes engine: vectors, and an L1-sized stack */
#define CG_FEW 8     /* fewer outputs than this (each a long sum): the engine "one" */

/* Levels of the stack a sum of n elements needs (the bit length of its leaf count). */
static inline int cg_sum_depth(ptrdiff_t n)
{
    ptrdiff_t leaves = (n + CG_LEAF - 1) / CG_LEAF;
    int d = 0;
    while (leaves >> d)
        ++d;
    return d;
}

/* Scratch elements cg_sums_* needs for w outputs of n elements each (0: none). */
static inline ptrdiff_t cg_sums_scratch(ptrdiff_t n, ptrdiff_t w)
{
    if (n <= CG_LEAF || w == 0)
        return 0;
    return (cg_sum_depth(n) + 1) * (w < CG_CHUNK ? w : CG_CHUNK);
}

#define CG_DEFINE_SUMS(SFX, T, V)                                                              \
    /* leaf t (w values) onto the stack (levels of w values): merge, then store */             \
    static inline void cg_push_##SFX(T *stack, ptrdiff_t w, ptrdiff_t t, T *leaf)              \
    {                                                                                          \
        int l = 0;                                                                             \
        for (; (t >> l) & 1; ++l) {                                                            \
            const T *s = stack + l * w;                                                        \
            for (ptrdiff_t j = 0; j < w; ++j)                                                  \
                leaf[j] = s[j] + leaf[j];                                                      \
        }                                                                                      \
        T *d = stack + l * w;                                                                  \
        for (ptrdiff_t j = 0; j < w; ++j)                                                      \
            d[j] = leaf[j];                                                                    \
    }                                                                                          \
    /* out := the fold of the occupied levels (the bits of N), lowest first */                 \
    static inline void cg_finish_##SFX(const T *stack, ptrdiff_t w, ptrdiff_t N, T *out)       \
    {                                                                                          \
        int first = 1;                                                                         \
        for (int l = 0; (N >> l) != 0; ++l) {                                                  \
            if (!((N >> l) & 1))                                                               \
                continue;                                                                      \
            const T *s = stack + l * w;                                                        \
            for (ptrdiff_t j = 0; j < w; ++j)                                                  \
                out[j] = first ? s[j] : s[j] + out[j];                                         \
            first = 0;                                                                         \
        }                                                                                      \
        if (first)                                                                             \
            for (ptrdiff_t j = 0; j < w; ++j)                                                  \
                out[j] = 0;                                                                    \
    }                                                                                          \
    static inline void cg_push1_##SFX(T *stack, ptrdiff_t t, T v)                              \
    {                                                                                          \
        int l = 0;                                                                             \
        for (; (t >> l) & 1; ++l)                                                              \
            v = stack[l] + v;                                                                  \
        stack[l] = v;                                                                          \
    }                                                                                          \
    static inline T cg_finish1_##SFX(const T *stack, ptrdiff_t N)                              \
    {                                                                                          \
        T out = 0;                                                                             \
        int first = 1;                                                                         \
        for (int l = 0; (N >> l) != 0; ++l)                                                    \
            if ((N >> l) & 1) {                                                                \
                out = first ? stack[l] : stack[l] + out;                                       \
                first = 0;                                                                     \
            }                                                                                  \
        return out;                                                                            \
    }                                                                                          \
    /* lanes: s[o] := the tree over r < n of x[r*rs + o*os], for o < w. scratch holds           \
     * (cg_sum_depth(n) + 1) * w elements; it is not touched when n <= CG_LEAF. */             \
    static void cg_sum_lanes_##SFX(const T *x, ptrdiff_t n, ptrdiff_t rs, ptrdiff_t w,         \
                                   ptrdiff_t os, T *s, T *scratch)                             \
    {                                                                                          \
        if (n <= CG_LEAF) {                                                                    \
            for (ptrdiff_t j = 0; j < w; ++j)                                                  \
                s[j] = 0;                                                                      \
            for (ptrdiff_t r = 0; r < n; ++r) {                                                \
                const T *row = x + r * rs;                                                     \
                for (ptrdiff_t j = 0; j < w; ++j)                                              \
                    s[j] = s[j] + row[j * os];                                                 \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        ptrdiff_t N = (n + CG_LEAF - 1) / CG_LEAF;                                             \
        T *leaf = scratch, *stack = scratch + w;                                               \
        for (ptrdiff_t t = 0; t < N; ++t) {                                                    \
            ptrdiff_t r0 = t * CG_LEAF, r1 = r0 + CG_LEAF < n ? r0 + CG_LEAF : n;              \
            for (ptrdiff_t j = 0; j < w; ++j)                                                  \
                leaf[j] = 0;                                                                   \
            for (ptrdiff_t r = r0; r < r1; ++r) {                                              \
                const T *row = x + r * rs;                                                     \
                for (ptrdiff_t j = 0; j < w; ++j)                                              \
                    leaf[j] = leaf[j] + row[j * os];                                           \
            }                                                                                  \
            cg_push_##SFX(stack, w, t, leaf);                                                  \
        }                                                                                      \
        cg_finish_##SFX(stack, w, N, s);                                                       \
    }                                                                                          \
    /* one: the tree over r < n of x[r*rs], V leaves side by side */                           \
    static T cg_sum_one_##SFX(const T *x, ptrdiff_t n, ptrdiff_t rs)                           \
    {                                                                                          \
        T stack[CG_DEPTH];                                                                     \
        ptrdiff_t N = (n + CG_LEAF - 1) / CG_LEAF, full = n / CG_LEAF, t = 0;                  \
        for (; t + V <= full; t += V) {                                                        \
            T acc[V];                                                                          \
            const T *base = x + t * CG_LEAF * rs;                                              \
            for (int v = 0; v < V; ++v)                                                        \
                acc[v] = 0;                                                                    \
            for (ptrdiff_t r = 0; r < CG_LEAF; ++r)                                            \
                for (int v = 0; v < V; ++v)                                                    \
                    acc[v] = acc[v] + base[(v * CG_LEAF + r) * rs];                            \
            for (int v = 0; v < V; ++v)                                                        \
                cg_push1_##SFX(stack, t + v, acc[v]);                                          \
        }                                                                                      \
        for (; t < N; ++t) {                                                                   \
            ptrdiff_t r0 = t * CG_LEAF, r1 = r0 + CG_LEAF < n ? r0 + CG_LEAF : n;              \
            T acc = 0;                                                                         \
            for (ptrdiff_t r = r0; r < r1; ++r)                                                \
                acc = acc + x[r * rs];                                                         \
            cg_push1_##SFX(stack, t, acc);                                                     \
        }                                                                                      \
        return cg_finish1_##SFX(stack, N);                                                     \
    }                                                                                          \
    /* s[o] := the tree over r < n of x[r*rs + o*os], o < w, on one thread, by the engine   \
     * that suits the layout: "one" for long sums that are few or lie along memory (rows),     \
     * "lanes" for the rest (columns). scratch: cg_sums_scratch(n, w) elements. */             \
    static void cg_sums_##SFX(const T *x, ptrdiff_t n, ptrdiff_t rs, ptrdiff_t w,              \
                              ptrdiff_t os, T *s, T *scratch)                                  \
    {                                                                                          \
        if (n > CG_LEAF && (w < CG_FEW || os > rs)) {                                          \
            for (ptrdiff_t o = 0; o < w; ++o)                                                  \
                s[o] = cg_sum_one_##SFX(x + o * os, n, rs);                                    \
            return;                                                                            \
        }                                                                                      \
        for (ptrdiff_t c = 0; c < w; c += CG_CHUNK)                                            \
            cg_sum_lanes_##SFX(x + c * os, n, rs, w - c < CG_CHUNK ? w - c : CG_CHUNK, os,     \
                               s + c, scratch);                                                \
    }                                                                                          \
    /* channels: s[k] := the tree over r = i*p + q (i < n, q < p) of g[(i*c + k)*p + q], for    \
     * k0 <= k < k1 (a convolution's bias gradient: column sums of (n*p, c) rows), four        \
     * channels' chains side by side. */                                                       \
    static void cg_channel_sums_##SFX(const T *g, ptrdiff_t n, ptrdiff_t c, ptrdiff_t p,       \
                                      ptrdiff_t k0, ptrdiff_t k1, T *s)                        \
    {                                                                                          \
        ptrdiff_t k = k0;                                                                      \
        for (; k < k1; k += 4) {                                                               \
            int G = k1 - k < 4 ? (int)(k1 - k) : 4;                                            \
            T stack[4][CG_DEPTH];                                                              \
            T a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                  \
            ptrdiff_t t = 0, in_leaf = 0;                                                      \
            for (ptrdiff_t i = 0; i < n; ++i) {                                                \
                const T *row = g + (i * c + k) * p;                                            \
                for (ptrdiff_t q0 = 0; q0 < p;) {                                              \
                    ptrdiff_t w = p - q0 < CG_LEAF - in_leaf ? p - q0 : CG_LEAF - in_leaf;     \
                    const T *r0 = row + q0;                                                    \
                    if (G == 4) {                                                              \
                        for (ptrdiff_t q = 0; q < w; ++q) {                                    \
                            a0 = a0 + r0[q];                                                   \
                            a1 = a1 + r0[p + q];                                               \
                            a2 = a2 + r0[2 * p + q];                                           \
                            a3 = a3 + r0[3 * p + q];                                           \
                        }                                                                      \
                    } else {                                                                   \
                        for (ptrdiff_t q = 0; q < w; ++q) {                                    \
                            a0 = a0 + r0[q];                                                   \
                            if (G > 1) a1 = a1 + r0[p + q];                                    \
                            if (G > 2) a2 = a2 + r0[2 * p + q];                                \
                        }                                                                      \
                    }                                                                          \
                    q0 += w;                                                                   \
                    in_leaf += w;                                                              \
                    if (in_leaf == CG_LEAF) {                                                  \
                        cg_push1_##SFX(stack[0], t, a0);                                       \
                        cg_push1_##SFX(stack[1], t, a1);                                       \
                        cg_push1_##SFX(stack[2], t, a2);                                       \
                        cg_push1_##SFX(stack[3], t, a3);                                       \
                        a0 = a1 = a2 = a3 = 0;                                                 \
                        ++t;                                                                   \
                        in_leaf = 0;                                                           \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            if (in_leaf > 0) {                                                                 \
                cg_push1_##SFX(stack[0], t, a0);                                               \
                cg_push1_##SFX(stack[1], t, a1);                                               \
                cg_push1_##SFX(stack[2], t, a2);                                               \
                cg_push1_##SFX(stack[3], t, a3);                                               \
                ++t;                                                                           \
            }                                                                                  \
            for (int j = 0; j < G; ++j)                                                        \
                s[k + j] = cg_finish1_##SFX(stack[j], t);                                      \
        }                                                                                      \
    }

CG_DEFINE_SUMS(f32, float, 16)
CG_DEFINE_SUMS(f64, double, 8)

#endif
