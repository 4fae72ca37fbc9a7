/* Short runs of contiguous elements: the row moves of im2col_t and col2im_t (conv.pyx).
 *
 * A convolution's patches are copied (and their gradients added back) one image row at a time:
 * runs of a few dozen elements (24 for a 3x3 kernel on a 26-pixel image), too short for a
 * compiler's vectorised loop, whose alias checks, peeling and scalar tail cost more than the
 * move. These move whole vectors and finish with a narrower one (a copy may rewrite bytes: its
 * last vector overlaps the one before).
 *
 * Exactness: a copy is a copy; an add is dst[k] = dst[k] + src[k], one rounding an element, the
 * same whether a vector lane or a scalar does it. The ranges must not overlap (conv.pyx checks
 * that its operands lie apart before any loop).
 */
#ifndef CYGRAD_ROWS_H
#define CYGRAD_ROWS_H

#include <stddef.h>
#include <string.h>

#if defined(__AVX512F__)
#define CG_ROW_BYTES 64
#elif defined(__AVX__)
#define CG_ROW_BYTES 32
#else
#define CG_ROW_BYTES 16
#endif

#if (defined(__GNUC__) || defined(__clang__)) && !defined(CG_NO_VECTOR_EXT)
#define CG_ROW_VECTORS 1
typedef char cg_row_b __attribute__((vector_size(CG_ROW_BYTES), aligned(1), may_alias));
typedef char cg_row_h __attribute__((vector_size(CG_ROW_BYTES / 2), aligned(1), may_alias));
#define CG_MOVE(d, s, T) (*(T *)(d) = *(const T *)(s))
#else
#define CG_ROW_VECTORS 0
#endif

/* dst[0:n] = src[0:n], n bytes (n >= 0). */
static inline void cg_copy_bytes(char *__restrict dst, const char *__restrict src, ptrdiff_t n)
{
#if CG_ROW_VECTORS
    ptrdiff_t k;
    if (n >= CG_ROW_BYTES) {
        for (k = 0; k + CG_ROW_BYTES <= n; k += CG_ROW_BYTES)
            CG_MOVE(dst + k, src + k, cg_row_b);
        if (k < n)
            CG_MOVE(dst + n - CG_ROW_BYTES, src + n - CG_ROW_BYTES, cg_row_b);
        return;
    }
    if (n >= CG_ROW_BYTES / 2) {
        CG_MOVE(dst, src, cg_row_h);
        CG_MOVE(dst + n - CG_ROW_BYTES / 2, src + n - CG_ROW_BYTES / 2, cg_row_h);
        return;
    }
#endif
    if (n > 0)
        memcpy(dst, src, (size_t)n);
}

/* dst[k] = dst[k] + src[k] for k < n. */
#if CG_ROW_VECTORS
#define CG_DEFINE_ADD_ROW(SFX, T)                                                               \
    typedef T cg_row_v_##SFX __attribute__((vector_size(CG_ROW_BYTES), aligned(sizeof(T)),      \
                                            may_alias));                                         \
    typedef T cg_row_h_##SFX __attribute__((vector_size(CG_ROW_BYTES / 2), aligned(sizeof(T)),  \
                                            may_alias));                                         \
    static inline void cg_add_row_##SFX(T *__restrict dst, const T *__restrict src, ptrdiff_t n) \
    {                                                                                            \
        const ptrdiff_t w = CG_ROW_BYTES / sizeof(T);                                            \
        ptrdiff_t k = 0;                                                                         \
        for (; k + w <= n; k += w)                                                               \
            *(cg_row_v_##SFX *)(dst + k) =                                                       \
                *(cg_row_v_##SFX *)(dst + k) + *(const cg_row_v_##SFX *)(src + k);               \
        if (k + w / 2 <= n) {                                                                    \
            *(cg_row_h_##SFX *)(dst + k) =                                                       \
                *(cg_row_h_##SFX *)(dst + k) + *(const cg_row_h_##SFX *)(src + k);               \
            k += w / 2;                                                                          \
        }                                                                                        \
        for (; k < n; k++)                                                                       \
            dst[k] = dst[k] + src[k];                                                            \
    }
#else
#define CG_DEFINE_ADD_ROW(SFX, T)                                                               \
    static inline void cg_add_row_##SFX(T *__restrict dst, const T *__restrict src, ptrdiff_t n) \
    {                                                                                            \
        ptrdiff_t k;                                                                             \
        for (k = 0; k < n; k++)                                                                  \
            dst[k] = dst[k] + src[k];                                                            \
    }
#endif

CG_DEFINE_ADD_ROW(f32, float)
CG_DEFINE_ADD_ROW(f64, double)

#endif /* CYGRAD_ROWS_H */
