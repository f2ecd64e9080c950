/* neon.c - kernels for aarch64 (Advanced SIMD is part of the base architecture).
 *
 * Two tables:
 *   sa_kernels_neon          plain ARMv8.0 NEON: runs on every aarch64 CPU (Cortex-A53/A72,
 *                            Raspberry Pi 4, Graviton 1); int8 dots via vmull + vpadal.
 *   sa_kernels_neon_dotprod  the same, with the int8 dots on SDOT (ARMv8.2 dotprod: Cortex-A55/
 *                            A76 and later, Graviton 2+, Apple M*). dispatch.c lists it only
 *                            when the kernel reports HWCAP_ASIMDDP.
 * The file is compiled for the base architecture and only the SDOT functions carry a target
 * attribute, so the compiler cannot slip an ARMv8.2 instruction into code the plain table runs.
 * Semantics are those of scalar.c (see kernels.h). */
#include <arm_neon.h>
#include <string.h>

#include "kernels.h"

/* fp16 -> f32 with the scalar FCVT (base ARMv8, exact): same value as sa_fp16_lut without
 * touching the 256 KiB table from the hot loops. */
static inline float h2f(uint16_t h) {
    __fp16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}

/* ---- quantization ---- */

static void quantize_q8_0(const float *x, BlockQ8_0 *y, int n) {
    for (int b = 0; b < n / QK8_0; b++) {
        const float *xb = x + (size_t)b * QK8_0;
        float32x4_t v[8];
        float32x4_t amax = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(xb + 4 * k);
            amax = vmaxq_f32(amax, vabsq_f32(v[k]));
        }
        /* scale arithmetic in scalar float, exactly as the reference does it */
        const float d = vmaxvq_f32(amax) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = sa_fp32_to_fp16(d);
        int16x8_t h[4];
        for (int k = 0; k < 4; k++) {
            /* FCVTAS rounds to nearest with ties away from zero: exactly roundf() */
            const int32x4_t q0 = vcvtaq_s32_f32(vmulq_n_f32(v[2 * k], id));
            const int32x4_t q1 = vcvtaq_s32_f32(vmulq_n_f32(v[2 * k + 1], id));
            h[k] = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1)); /* |q| <= 127: narrowing is exact */
        }
        vst1q_s8(y[b].qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
        vst1q_s8(y[b].qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    }
}

/* ---- quantized dots ---- */

/* Exact dot of 32 int8 pairs (w0:w1 . a0:a1) as 4 int32 partial sums, base NEON: widening
 * multiplies to int16 (|w*a| <= 16384 always fits), pairwise-add-accumulate into int32. */
static inline int32x4_t dot32_i8(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)));
    s = vpadalq_s16(s, vmull_high_s8(w0, a0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(a1)));
    s = vpadalq_s16(s, vmull_high_s8(w1, a1));
    return s;
}

/* The same with SDOT (four products per int32 lane, no intermediate narrowing). */
__attribute__((target("arch=armv8.2-a+dotprod")))
static inline int32x4_t dot32_i8_sdot(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
}

/* Q4_0 nibbles -> two int8x16 in element order (elements 0..15 low nibbles, 16..31 high),
 * offset removed: -8..7. */
static inline void unpack_q4_0(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t x = vld1q_u8(qs);
    const int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(x, vdupq_n_u8(0x0F))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(x, 4)), eight);
}

/* The block loops are written once as macros and instantiated twice, with and without SDOT,
 * so the two tables cannot drift apart. Two float accumulators hide the FMA latency. */
#define DOT_Q8_0_BODY(DOT32)                                                                    \
    const int nb = n / QK8_0;                                                                   \
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);                             \
    int b = 0;                                                                                  \
    for (; b + 1 < nb; b += 2) {                                                                \
        const int32x4_t p0 = DOT32(vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16),                   \
                                   vld1q_s8(a[b].qs), vld1q_s8(a[b].qs + 16));                  \
        const int32x4_t p1 = DOT32(vld1q_s8(w[b + 1].qs), vld1q_s8(w[b + 1].qs + 16),           \
                                   vld1q_s8(a[b + 1].qs), vld1q_s8(a[b + 1].qs + 16));          \
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), h2f(w[b].d) * h2f(a[b].d));                 \
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), h2f(w[b + 1].d) * h2f(a[b + 1].d));         \
    }                                                                                           \
    if (b < nb) {                                                                               \
        const int32x4_t p0 = DOT32(vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16),                   \
                                   vld1q_s8(a[b].qs), vld1q_s8(a[b].qs + 16));                  \
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), h2f(w[b].d) * h2f(a[b].d));                 \
    }                                                                                           \
    return vaddvq_f32(vaddq_f32(acc0, acc1));

#define DOT_Q4_0_BODY(DOT32)                                                                    \
    const int nb = n / QK4_0;                                                                   \
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);                             \
    int8x16_t lo, hi;                                                                           \
    int b = 0;                                                                                  \
    for (; b + 1 < nb; b += 2) {                                                                \
        unpack_q4_0(w[b].qs, &lo, &hi);                                                         \
        const int32x4_t p0 = DOT32(lo, hi, vld1q_s8(a[b].qs), vld1q_s8(a[b].qs + 16));          \
        unpack_q4_0(w[b + 1].qs, &lo, &hi);                                                     \
        const int32x4_t p1 = DOT32(lo, hi, vld1q_s8(a[b + 1].qs), vld1q_s8(a[b + 1].qs + 16));  \
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), h2f(w[b].d) * h2f(a[b].d));                 \
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(p1), h2f(w[b + 1].d) * h2f(a[b + 1].d));         \
    }                                                                                           \
    if (b < nb) {                                                                               \
        unpack_q4_0(w[b].qs, &lo, &hi);                                                         \
        const int32x4_t p0 = DOT32(lo, hi, vld1q_s8(a[b].qs), vld1q_s8(a[b].qs + 16));          \
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(p0), h2f(w[b].d) * h2f(a[b].d));                 \
    }                                                                                           \
    return vaddvq_f32(vaddq_f32(acc0, acc1));

static float dot_q8_0(int n, const BlockQ8_0 *w, const BlockQ8_0 *a) { DOT_Q8_0_BODY(dot32_i8) }
static float dot_q4_0(int n, const BlockQ4_0 *w, const BlockQ8_0 *a) { DOT_Q4_0_BODY(dot32_i8) }

__attribute__((target("arch=armv8.2-a+dotprod")))
static float dot_q8_0_sdot(int n, const BlockQ8_0 *w, const BlockQ8_0 *a) { DOT_Q8_0_BODY(dot32_i8_sdot) }
__attribute__((target("arch=armv8.2-a+dotprod")))
static float dot_q4_0_sdot(int n, const BlockQ4_0 *w, const BlockQ8_0 *a) { DOT_Q4_0_BODY(dot32_i8_sdot) }

/* ---- 8-row interleaved GEMM (layouts in kernels.h) ----
 * A 16-byte load of a 4-byte chunk holds rows 0..3 (the next 16 bytes rows 4..7), one int32
 * lane per row, so a 4-byte dot per lane against the broadcast activation bytes gives four
 * rows' partial sums at once: SDOT does exactly that; base NEON widens (vmull), adds pairs
 * (vpaddq, |pair| <= 2 * 128 * 127 fits int16) and accumulates pairwise into int32. Q4_0
 * nibbles are re-centered to -8..7 (signed x signed, no correction term). The float part is
 * the reference's exactly: mul then add, blocks in order. */

static inline int32x4_t dot4x4(int32x4_t acc, int8x16_t w, int8x16_t a) {
    return vpadalq_s16(acc, vpaddq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(a)), vmull_high_s8(w, a)));
}

__attribute__((target("arch=armv8.2-a+dotprod")))
static inline int32x4_t dot4x4_sdot(int32x4_t acc, int8x16_t w, int8x16_t a) { return vdotq_s32(acc, w, a); }

static inline int8x16_t bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

static inline float32x4_t load_d4(const uint16_t *d) {
    uint16x4_t h = vld1_u16(d);
    return vcvt_f32_f16(vreinterpret_f16_u16(h)); /* exact */
}

/* one group, NT (1..4) tokens from aq/ad; y rows at y + t*ldy */
#define GEMM_Q4X8_BODY(DOT4)                                                                    \
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);                     \
    for (int b = 0; b < nb; b++) {                                                              \
        int8x16_t lo[4][2], hi[4][2];                                                           \
        for (int k = 0; k < 4; k++)                                                             \
            for (int h = 0; h < 2; h++) {                                                       \
                const uint8x16_t v = vld1q_u8(w[b].qs + 32 * k + 16 * h);                       \
                lo[k][h] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), vdupq_n_s8(8)); \
                hi[k][h] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));     \
            }                                                                                   \
        const float32x4_t d0 = load_d4(w[b].d), d1 = load_d4(w[b].d + 4);                       \
        for (int t = 0; t < NT; t++) {                                                          \
            const int8_t *q = aq[(size_t)t * nb + b].qs;                                        \
            int32x4_t p0 = vdupq_n_s32(0), p1 = vdupq_n_s32(0);                                 \
            for (int k = 0; k < 4; k++) {                                                       \
                const int8x16_t al = bcast4(q + 4 * k), ah = bcast4(q + 16 + 4 * k);            \
                p0 = DOT4(DOT4(p0, lo[k][0], al), hi[k][0], ah);                                \
                p1 = DOT4(DOT4(p1, lo[k][1], al), hi[k][1], ah);                                \
            }                                                                                   \
            const float da = ad[(size_t)t * nb + b];                                            \
            acc[t][0] = vaddq_f32(acc[t][0], vmulq_f32(vcvtq_f32_s32(p0), vmulq_n_f32(d0, da))); \
            acc[t][1] = vaddq_f32(acc[t][1], vmulq_f32(vcvtq_f32_s32(p1), vmulq_n_f32(d1, da))); \
        }                                                                                       \
    }                                                                                           \
    for (int t = 0; t < NT; t++) {                                                              \
        vst1q_f32(y + (size_t)t * ldy, acc[t][0]);                                              \
        vst1q_f32(y + (size_t)t * ldy + 4, acc[t][1]);                                          \
    }

#define GEMM_Q8X8_BODY(DOT4)                                                                    \
    for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);                     \
    for (int b = 0; b < nb; b++) {                                                              \
        const float32x4_t d0 = load_d4(w[b].d), d1 = load_d4(w[b].d + 4);                       \
        for (int t = 0; t < NT; t++) {                                                          \
            const int8_t *q = aq[(size_t)t * nb + b].qs;                                        \
            int32x4_t p0 = vdupq_n_s32(0), p1 = vdupq_n_s32(0);                                 \
            for (int k = 0; k < 8; k++) {                                                       \
                const int8x16_t a4 = bcast4(q + 4 * k);                                         \
                p0 = DOT4(p0, vld1q_s8(w[b].qs + 32 * k), a4);                                  \
                p1 = DOT4(p1, vld1q_s8(w[b].qs + 32 * k + 16), a4);                             \
            }                                                                                   \
            const float da = ad[(size_t)t * nb + b];                                            \
            acc[t][0] = vaddq_f32(acc[t][0], vmulq_f32(vcvtq_f32_s32(p0), vmulq_n_f32(d0, da))); \
            acc[t][1] = vaddq_f32(acc[t][1], vmulq_f32(vcvtq_f32_s32(p1), vmulq_n_f32(d1, da))); \
        }                                                                                       \
    }                                                                                           \
    for (int t = 0; t < NT; t++) {                                                              \
        vst1q_f32(y + (size_t)t * ldy, acc[t][0]);                                              \
        vst1q_f32(y + (size_t)t * ldy + 4, acc[t][1]);                                          \
    }

#define GEMM_TILES(TILE, WT)                                                                    \
    for (int g = 0; g < ng; g++) {                                                              \
        const WT *wg = w + (size_t)g * nb;                                                      \
        for (int t = 0; t < T; t += 4) {                                                        \
            const int n = T - t < 4 ? T - t : 4;                                                \
            TILE(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, n, y + (size_t)t * ldy + 8 * g, ldy); \
        }                                                                                       \
    }

static void q4x8_tile(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *aq, const float *ad, int NT, float *y, size_t ldy) {
    float32x4_t acc[4][2];
    GEMM_Q4X8_BODY(dot4x4)
}
static void q8x8_tile(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *aq, const float *ad, int NT, float *y, size_t ldy) {
    float32x4_t acc[4][2];
    GEMM_Q8X8_BODY(dot4x4)
}
__attribute__((target("arch=armv8.2-a+dotprod")))
static void q4x8_tile_sdot(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *aq, const float *ad, int NT, float *y,
                           size_t ldy) {
    float32x4_t acc[4][2];
    GEMM_Q4X8_BODY(dot4x4_sdot)
}
__attribute__((target("arch=armv8.2-a+dotprod")))
static void q8x8_tile_sdot(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *aq, const float *ad, int NT, float *y,
                           size_t ldy) {
    float32x4_t acc[4][2];
    GEMM_Q8X8_BODY(dot4x4_sdot)
}

static void gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_TILES(q4x8_tile, BlockQ4_0x8)
}
static void gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_TILES(q8x8_tile, BlockQ8_0x8)
}
static void gemm_q4_0x8_sdot(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_TILES(q4x8_tile_sdot, BlockQ4_0x8)
}
static void gemm_q8_0x8_sdot(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_TILES(q8x8_tile_sdot, BlockQ8_0x8)
}

/* ---- float dots: 16 elements per iteration in 4 accumulators, then 4 at a time, then a
 * scalar tail ---- */

/* 8 halves -> two float32x4 (FCVTL/FCVTL2, base ARMv8, exact) */
static inline void load_f16x8(const uint16_t *p, float32x4_t *lo, float32x4_t *hi) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

static inline float32x4_t load_f16x4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* bf16 is the top half of an f32: a widening shift by 16 is an exact conversion */
static inline void load_bf16x8(const uint16_t *p, float32x4_t *lo, float32x4_t *hi) {
    const uint16x8_t u = vld1q_u16(p);
    *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(u), 16));
    *hi = vreinterpretq_f32_u32(vshll_high_n_u16(u, 16));
}

static float dot_f16(int n, const uint16_t *w, const float *a) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float32x4_t w0, w1, w2, w3;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        load_f16x8(w + i, &w0, &w1);
        load_f16x8(w + i + 8, &w2, &w3);
        acc0 = vfmaq_f32(acc0, w0, vld1q_f32(a + i));
        acc1 = vfmaq_f32(acc1, w1, vld1q_f32(a + i + 4));
        acc2 = vfmaq_f32(acc2, w2, vld1q_f32(a + i + 8));
        acc3 = vfmaq_f32(acc3, w3, vld1q_f32(a + i + 12));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, load_f16x4(w + i), vld1q_f32(a + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += h2f(w[i]) * a[i];
    return sum;
}

static float dot_bf16(int n, const uint16_t *w, const float *a) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float32x4_t w0, w1, w2, w3;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        load_bf16x8(w + i, &w0, &w1);
        load_bf16x8(w + i + 8, &w2, &w3);
        acc0 = vfmaq_f32(acc0, w0, vld1q_f32(a + i));
        acc1 = vfmaq_f32(acc1, w1, vld1q_f32(a + i + 4));
        acc2 = vfmaq_f32(acc2, w2, vld1q_f32(a + i + 8));
        acc3 = vfmaq_f32(acc3, w3, vld1q_f32(a + i + 12));
    }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t wv = vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16));
        acc0 = vfmaq_f32(acc0, wv, vld1q_f32(a + i));
    }
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += sa_bf16_to_fp32(w[i]) * a[i];
    return sum;
}

static float dot_f32(int n, const float *w, const float *a) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(w + i), vld1q_f32(a + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(w + i + 4), vld1q_f32(a + i + 4));
        acc2 = vfmaq_f32(acc2, vld1q_f32(w + i + 8), vld1q_f32(a + i + 8));
        acc3 = vfmaq_f32(acc3, vld1q_f32(w + i + 12), vld1q_f32(a + i + 12));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(w + i), vld1q_f32(a + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += w[i] * a[i];
    return sum;
}

/* ---- axpy ---- */

static void axpy_f32(int n, float a, const float *x, float *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vld1q_f32(x + i + 4), a));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void axpy_f16(int n, float a, const uint16_t *x, float *y) {
    float32x4_t x0, x1;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        load_f16x8(x + i, &x0, &x1);
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), x0, a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), x1, a));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), load_f16x4(x + i), a));
    for (; i < n; i++) y[i] += a * h2f(x[i]);
}

/* ---- conversion ---- */

/* FCVTN rounds with the FPCR mode (round to nearest even unless someone changed it), like
 * sa_fp32_to_fp16; NaN lanes keep payload bits there, so rewrite them to the reference's
 * canonical quiet NaN (sign | 0x7E00) for bit-identical results. */
static inline uint16x4_t cvt_f16x4(float32x4_t v) {
    const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(v));
    const uint16x4_t is_nan = vmovn_u32(vmvnq_u32(vceqq_f32(v, v)));
    const uint16x4_t canon = vorr_u16(vand_u16(h, vdup_n_u16(0x8000)), vdup_n_u16(0x7E00));
    return vbsl_u16(is_nan, canon, h);
}

static void f32_to_f16(int n, const float *x, uint16_t *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        vst1q_u16(y + i, vcombine_u16(cvt_f16x4(vld1q_f32(x + i)), cvt_f16x4(vld1q_f32(x + i + 4))));
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, cvt_f16x4(vld1q_f32(x + i)));
    for (; i < n; i++) y[i] = sa_fp32_to_fp16(x[i]);
}

const SaKernels sa_kernels_neon = {
    .name = "neon",
    .quantize_q8_0 = quantize_q8_0,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .dot_f16 = dot_f16,
    .dot_bf16 = dot_bf16,
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .gemm_q4_0x8 = gemm_q4_0x8,
    .gemm_q8_0x8 = gemm_q8_0x8,
    .attn_scores_f16 = sa_ref_attn_scores_f16,
    .attn_values_f16 = sa_ref_attn_values_f16,
    .exp_sub_sum = sa_ref_exp_sub_sum,
    .silu_mul = sa_ref_silu_mul,
};

const SaKernels sa_kernels_neon_dotprod = {
    .name = "neon_dotprod",
    .quantize_q8_0 = quantize_q8_0,
    .dot_q8_0 = dot_q8_0_sdot,
    .dot_q4_0 = dot_q4_0_sdot,
    .dot_f16 = dot_f16,
    .dot_bf16 = dot_bf16,
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .gemm_q4_0x8 = gemm_q4_0x8_sdot,
    .gemm_q8_0x8 = gemm_q8_0x8_sdot,
    .attn_scores_f16 = sa_ref_attn_scores_f16,
    .attn_values_f16 = sa_ref_attn_values_f16,
    .exp_sub_sum = sa_ref_exp_sub_sum,
    .silu_mul = sa_ref_silu_mul,
};
