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
#include <math.h>
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
        /* scale arithmetic in scalar float, exactly as the reference (sa_quantize_act_q8_0) */
        const float mx = vmaxvq_f32(amax);
        const float id = mx != 0.0f ? 127.0f / mx : 0.0f;
        y[b].d = sa_fp32_to_fp16(mx / 127.0f);
        int16x8_t h[4];
        for (int k = 0; k < 4; k++) {
            /* FCVTNS rounds to nearest with ties to even: exactly rintf() */
            const int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * k], id));
            const int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * k + 1], id));
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
 * lane per row. The float part is the reference's exactly (gemm_acc: multiply, multiply, add,
 * blocks in order), the integer part is exact, so every table gives the reference's floats.
 *
 * Each tile function handles one group and NT = 1..4 tokens; it is always inlined with a
 * constant NT (GEMM_DRIVE's switch), so the per-token accumulators live in registers and the
 * token loops are unrolled. A group's weights stream from memory once per tile (prefill: once
 * per 4 tokens); within a block they are re-read from L1 for each token (RELOAD keeps the
 * compiler from hoisting those loads out of the token loop, which would keep 16 registers of
 * weights live and spill the accumulators), and Q4_0 nibbles are unpacked once per half block.
 *
 * Base NEON has no 4-byte dot: the 4-byte activation chunk is broadcast to all lanes, SMULL/
 * SMLAL form int16 products of two chunks in one register (|w a| <= 128 * 127, two fit in
 * int16; Q4_0 products are at most 8 * 127, so all 8 of a row half fit), then pairwise adds
 * widen to one int32 lane per row. With SDOT the activation row sits in two registers and the
 * by-element form (SDOT Vd.4S, Vn.16B, Vm.4B[lane]) picks the chunk, so nothing is broadcast.
 * With one or two tokens the dots are split over several accumulators so the multiply-
 * accumulate latency does not bound decode. */

#define UNROLL _Pragma("GCC unroll 8")
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define RELOAD() __asm__ volatile("" ::: "memory")

static inline int8x16_t bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

static inline float32x4_t load_d4(const uint16_t *d) {
    uint16x4_t h = vld1_u16(d);
    return vcvt_f32_f16(vreinterpret_f16_u16(h)); /* exact */
}

/* acc + (float)p * (d_w * d_a), in that order, no FMA: the reference's arithmetic */
static inline float32x4_t gemm_acc(float32x4_t acc, int32x4_t p, float32x4_t dw, float da) {
    return vaddq_f32(acc, vmulq_f32(vcvtq_f32_s32(p), vmulq_n_f32(dw, da)));
}

/* Q4_0 nibbles of 16 bytes -> signed -8..7, low and high nibbles */
static inline void unpack_nib(const uint8_t *p, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(p);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
}

#define GEMM_INIT()                                                                             \
    float32x4_t acc[4][2];                                                                      \
    UNROLL for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f)
#define GEMM_STORE()                                                                            \
    UNROLL for (int t = 0; t < NT; t++) {                                                       \
        vst1q_f32(y + (size_t)t * ldy, acc[t][0]);                                              \
        vst1q_f32(y + (size_t)t * ldy + 4, acc[t][1]);                                          \
    }

static ALWAYS_INLINE void q8x8_tile(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *aq, const float *ad, const int NT,
                                    float *y, size_t ldy) {
    GEMM_INIT();
    for (int b = 0; b < nb; b++) {
        const int8_t *wq = w[b].qs;
        const float32x4_t d0 = load_d4(w[b].d), d1 = load_d4(w[b].d + 4);
        UNROLL for (int t = 0; t < NT; t++) {
            RELOAD();
            const int8_t *q = aq[(size_t)t * nb + b].qs;
            /* s[h][0]: rows 4h, 4h+1 as lanes (r r r' r'); s[h][1]: rows 4h+2, 4h+3 */
            int32x4_t s[2][2] = {{vdupq_n_s32(0), vdupq_n_s32(0)}, {vdupq_n_s32(0), vdupq_n_s32(0)}};
            UNROLL for (int k = 0; k < 8; k += 2) {
                const int8x16_t a0 = bcast4(q + 4 * k), a1 = bcast4(q + 4 * k + 4);
                UNROLL for (int h = 0; h < 2; h++) {
                    const int8x16_t w0 = vld1q_s8(wq + 32 * k + 16 * h), w1 = vld1q_s8(wq + 32 * k + 32 + 16 * h);
                    const int16x8_t ml = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)), vget_low_s8(w1),
                                                  vget_low_s8(a1));
                    const int16x8_t mh = vmlal_high_s8(vmull_high_s8(w0, a0), w1, a1);
                    s[h][0] = vpadalq_s16(s[h][0], ml);
                    s[h][1] = vpadalq_s16(s[h][1], mh);
                }
            }
            const float da = ad[(size_t)t * nb + b];
            acc[t][0] = gemm_acc(acc[t][0], vpaddq_s32(s[0][0], s[0][1]), d0, da);
            acc[t][1] = gemm_acc(acc[t][1], vpaddq_s32(s[1][0], s[1][1]), d1, da);
        }
    }
    GEMM_STORE();
}

static ALWAYS_INLINE void q4x8_tile(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *aq, const float *ad, const int NT,
                                    float *y, size_t ldy) {
    GEMM_INIT();
    for (int b = 0; b < nb; b++) {
        UNROLL for (int h = 0; h < 2; h++) {
            int8x16_t lo[4], hi[4];
            UNROLL for (int k = 0; k < 4; k++) unpack_nib(w[b].qs + 32 * k + 16 * h, &lo[k], &hi[k]);
            const float32x4_t d = load_d4(w[b].d + 4 * h);
            UNROLL for (int t = 0; t < NT; t++) {
                RELOAD();
                const int8_t *q = aq[(size_t)t * nb + b].qs;
                /* int16 products of the low 8 bytes (rows 4h, 4h+1) and the high 8 (4h+2, 4h+3),
                 * low and high nibbles in separate chains; all 8 terms of a lane fit in int16 */
                int16x8_t l0 = vdupq_n_s16(0), l1 = l0, h0 = l0, h1 = l0;
                UNROLL for (int k = 0; k < 4; k++) {
                    const int8x16_t al = bcast4(q + 4 * k), ah = bcast4(q + 16 + 4 * k);
                    l0 = vmlal_s8(l0, vget_low_s8(lo[k]), vget_low_s8(al));
                    l1 = vmlal_s8(l1, vget_low_s8(hi[k]), vget_low_s8(ah));
                    h0 = vmlal_high_s8(h0, lo[k], al);
                    h1 = vmlal_high_s8(h1, hi[k], ah);
                }
                /* pairs of lanes: |sum| <= 2 * 8 * 8 * 127 still fits int16; then widen */
                const int32x4_t p = vpaddlq_s16(vpaddq_s16(vaddq_s16(l0, l1), vaddq_s16(h0, h1)));
                acc[t][h] = gemm_acc(acc[t][h], p, d, ad[(size_t)t * nb + b]);
            }
        }
    }
    GEMM_STORE();
}

/* SDOT versions. C independent accumulators per row half and token: 4 with one token, 2 with
 * two, 1 with three or four (then the tokens themselves are independent chains). */
#define SDOT_CHAINS (NT == 1 ? 4 : NT == 2 ? 2 : 1)

__attribute__((target("arch=armv8.2-a+dotprod")))
static ALWAYS_INLINE void q8x8_tile_sdot(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *aq, const float *ad,
                                         const int NT, float *y, size_t ldy) {
    GEMM_INIT();
    const int C = SDOT_CHAINS;
    for (int b = 0; b < nb; b++) {
        const int8_t *wq = w[b].qs;
        const float32x4_t d0 = load_d4(w[b].d), d1 = load_d4(w[b].d + 4);
        UNROLL for (int t = 0; t < NT; t++) {
            RELOAD();
            const int8x16_t a0 = vld1q_s8(aq[(size_t)t * nb + b].qs), a1 = vld1q_s8(aq[(size_t)t * nb + b].qs + 16);
            int32x4_t p[2][4];
            UNROLL for (int c = 0; c < C; c++) p[0][c] = p[1][c] = vdupq_n_s32(0);
#define Q8_SDOT_STEP(k, A)                                                                      \
    p[0][(k) % C] = vdotq_laneq_s32(p[0][(k) % C], vld1q_s8(wq + 32 * (k)), A, (k) % 4);        \
    p[1][(k) % C] = vdotq_laneq_s32(p[1][(k) % C], vld1q_s8(wq + 32 * (k) + 16), A, (k) % 4);
            Q8_SDOT_STEP(0, a0) Q8_SDOT_STEP(1, a0) Q8_SDOT_STEP(2, a0) Q8_SDOT_STEP(3, a0)
            Q8_SDOT_STEP(4, a1) Q8_SDOT_STEP(5, a1) Q8_SDOT_STEP(6, a1) Q8_SDOT_STEP(7, a1)
#undef Q8_SDOT_STEP
            UNROLL for (int c = 1; c < C; c++) {
                p[0][0] = vaddq_s32(p[0][0], p[0][c]);
                p[1][0] = vaddq_s32(p[1][0], p[1][c]);
            }
            const float da = ad[(size_t)t * nb + b];
            acc[t][0] = gemm_acc(acc[t][0], p[0][0], d0, da);
            acc[t][1] = gemm_acc(acc[t][1], p[1][0], d1, da);
        }
    }
    GEMM_STORE();
}

__attribute__((target("arch=armv8.2-a+dotprod")))
static ALWAYS_INLINE void q4x8_tile_sdot(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *aq, const float *ad,
                                         const int NT, float *y, size_t ldy) {
    GEMM_INIT();
    const int C = SDOT_CHAINS;
    for (int b = 0; b < nb; b++) {
        UNROLL for (int h = 0; h < 2; h++) {
            int8x16_t lo[4], hi[4];
            UNROLL for (int k = 0; k < 4; k++) unpack_nib(w[b].qs + 32 * k + 16 * h, &lo[k], &hi[k]);
            const float32x4_t d = load_d4(w[b].d + 4 * h);
            UNROLL for (int t = 0; t < NT; t++) {
                RELOAD();
                /* elements 0..15 (low nibbles) and 16..31 (high nibbles) of the activation block */
                const int8x16_t al = vld1q_s8(aq[(size_t)t * nb + b].qs), ah = vld1q_s8(aq[(size_t)t * nb + b].qs + 16);
                int32x4_t p[4];
                UNROLL for (int c = 0; c < C; c++) p[c] = vdupq_n_s32(0);
                /* chain (2k + nibble) % C */
                p[0] = vdotq_laneq_s32(p[0], lo[0], al, 0);
                p[1 % C] = vdotq_laneq_s32(p[1 % C], hi[0], ah, 0);
                p[2 % C] = vdotq_laneq_s32(p[2 % C], lo[1], al, 1);
                p[3 % C] = vdotq_laneq_s32(p[3 % C], hi[1], ah, 1);
                p[0] = vdotq_laneq_s32(p[0], lo[2], al, 2);
                p[1 % C] = vdotq_laneq_s32(p[1 % C], hi[2], ah, 2);
                p[2 % C] = vdotq_laneq_s32(p[2 % C], lo[3], al, 3);
                p[3 % C] = vdotq_laneq_s32(p[3 % C], hi[3], ah, 3);
                UNROLL for (int c = 1; c < C; c++) p[0] = vaddq_s32(p[0], p[c]);
                acc[t][h] = gemm_acc(acc[t][h], p[0], d, ad[(size_t)t * nb + b]);
            }
        }
    }
    GEMM_STORE();
}

/* ng groups, each over all T tokens in tiles of 4 (and one tile of the remaining 1..3) */
#define GEMM_DRIVE(TILE, WT)                                                                    \
    for (int g = 0; g < ng; g++) {                                                              \
        const WT *wg = w + (size_t)g * nb;                                                      \
        float *yg = y + 8 * g;                                                                  \
        int t = 0;                                                                              \
        for (; t + 4 <= T; t += 4) TILE(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, 4, yg + t * ldy, ldy); \
        switch (T - t) {                                                                        \
        case 3: TILE(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, 3, yg + t * ldy, ldy); break; \
        case 2: TILE(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, 2, yg + t * ldy, ldy); break; \
        case 1: TILE(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, 1, yg + t * ldy, ldy); break; \
        default: break;                                                                         \
        }                                                                                       \
    }

static void gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_DRIVE(q4x8_tile, BlockQ4_0x8)
}
static void gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_DRIVE(q8x8_tile, BlockQ8_0x8)
}
__attribute__((target("arch=armv8.2-a+dotprod")))
static void gemm_q4_0x8_sdot(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_DRIVE(q4x8_tile_sdot, BlockQ4_0x8)
}
__attribute__((target("arch=armv8.2-a+dotprod")))
static void gemm_q8_0x8_sdot(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_DRIVE(q8x8_tile_sdot, BlockQ8_0x8)
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

/* ---- attention over the f16 KV cache ---- */

/* Four keys at a time, 8 elements per step with two accumulators per key (8 independent FMA
 * chains); the four sums come out of two rounds of pairwise adds as one vector [s0 s1 s2 s3].
 * hd % 8 >= 4 takes one more 4-wide step, hd % 4 is scalar. Leftover keys use dot_f16. */
static void attn_scores_f16(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s) {
    const int h8 = hd & ~7, h4 = hd & ~3;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *k0 = k + (size_t)j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        float32x4_t a00 = vdupq_n_f32(0.0f), a01 = a00, a10 = a00, a11 = a00;
        float32x4_t a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        float32x4_t lo, hi;
        for (int i = 0; i < h8; i += 8) {
            const float32x4_t q0 = vld1q_f32(q + i), q1 = vld1q_f32(q + i + 4);
            load_f16x8(k0 + i, &lo, &hi);
            a00 = vfmaq_f32(a00, lo, q0);
            a01 = vfmaq_f32(a01, hi, q1);
            load_f16x8(k1 + i, &lo, &hi);
            a10 = vfmaq_f32(a10, lo, q0);
            a11 = vfmaq_f32(a11, hi, q1);
            load_f16x8(k2 + i, &lo, &hi);
            a20 = vfmaq_f32(a20, lo, q0);
            a21 = vfmaq_f32(a21, hi, q1);
            load_f16x8(k3 + i, &lo, &hi);
            a30 = vfmaq_f32(a30, lo, q0);
            a31 = vfmaq_f32(a31, hi, q1);
        }
        if (h8 < h4) {
            const float32x4_t q0 = vld1q_f32(q + h8);
            a00 = vfmaq_f32(a00, load_f16x4(k0 + h8), q0);
            a10 = vfmaq_f32(a10, load_f16x4(k1 + h8), q0);
            a20 = vfmaq_f32(a20, load_f16x4(k2 + h8), q0);
            a30 = vfmaq_f32(a30, load_f16x4(k3 + h8), q0);
        }
        const float32x4_t s01 = vpaddq_f32(vaddq_f32(a00, a01), vaddq_f32(a10, a11));
        const float32x4_t s23 = vpaddq_f32(vaddq_f32(a20, a21), vaddq_f32(a30, a31));
        float32x4_t r = vpaddq_f32(s01, s23); /* [s0 s1 s2 s3] */
        if (h4 < hd) {
            float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int i = h4; i < hd; i++) {
                t[0] += h2f(k0[i]) * q[i];
                t[1] += h2f(k1[i]) * q[i];
                t[2] += h2f(k2[i]) * q[i];
                t[3] += h2f(k3[i]) * q[i];
            }
            r = vaddq_f32(r, vld1q_f32(t));
        }
        vst1q_f32(s + j, r);
    }
    for (; j < n; j++) s[j] = dot_f16(hd, k + (size_t)j * stride, q);
}

/* out += sum_j p[j] v_j: a 32-float slice of out stays in 8 registers while all n rows stream
 * past (FMLA by element with p[j]); then 8- and 4-wide slices, where even and odd rows go to
 * separate accumulators so consecutive FMAs do not wait on each other; hd % 4 is scalar. */
static void attn_values_f16(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out) {
    float32x4_t x0, x1, x2, x3, x4, x5, x6, x7;
    int i = 0;
    for (; i + 32 <= hd; i += 32) {
        float32x4_t a0 = vld1q_f32(out + i), a1 = vld1q_f32(out + i + 4);
        float32x4_t a2 = vld1q_f32(out + i + 8), a3 = vld1q_f32(out + i + 12);
        float32x4_t a4 = vld1q_f32(out + i + 16), a5 = vld1q_f32(out + i + 20);
        float32x4_t a6 = vld1q_f32(out + i + 24), a7 = vld1q_f32(out + i + 28);
        const uint16_t *vr = v + i;
        for (int j = 0; j < n; j++, vr += stride) {
            const float pj = p[j];
            load_f16x8(vr, &x0, &x1);
            load_f16x8(vr + 8, &x2, &x3);
            load_f16x8(vr + 16, &x4, &x5);
            load_f16x8(vr + 24, &x6, &x7);
            a0 = vfmaq_n_f32(a0, x0, pj);
            a1 = vfmaq_n_f32(a1, x1, pj);
            a2 = vfmaq_n_f32(a2, x2, pj);
            a3 = vfmaq_n_f32(a3, x3, pj);
            a4 = vfmaq_n_f32(a4, x4, pj);
            a5 = vfmaq_n_f32(a5, x5, pj);
            a6 = vfmaq_n_f32(a6, x6, pj);
            a7 = vfmaq_n_f32(a7, x7, pj);
        }
        vst1q_f32(out + i, a0);
        vst1q_f32(out + i + 4, a1);
        vst1q_f32(out + i + 8, a2);
        vst1q_f32(out + i + 12, a3);
        vst1q_f32(out + i + 16, a4);
        vst1q_f32(out + i + 20, a5);
        vst1q_f32(out + i + 24, a6);
        vst1q_f32(out + i + 28, a7);
    }
    for (; i + 8 <= hd; i += 8) {
        float32x4_t a0 = vld1q_f32(out + i), a1 = vld1q_f32(out + i + 4);
        float32x4_t b0 = vdupq_n_f32(0.0f), b1 = b0;
        const uint16_t *vr = v + i;
        int j = 0;
        for (; j + 2 <= n; j += 2, vr += 2 * stride) {
            load_f16x8(vr, &x0, &x1);
            load_f16x8(vr + stride, &x2, &x3);
            a0 = vfmaq_n_f32(a0, x0, p[j]);
            a1 = vfmaq_n_f32(a1, x1, p[j]);
            b0 = vfmaq_n_f32(b0, x2, p[j + 1]);
            b1 = vfmaq_n_f32(b1, x3, p[j + 1]);
        }
        if (j < n) {
            load_f16x8(vr, &x0, &x1);
            a0 = vfmaq_n_f32(a0, x0, p[j]);
            a1 = vfmaq_n_f32(a1, x1, p[j]);
        }
        vst1q_f32(out + i, vaddq_f32(a0, b0));
        vst1q_f32(out + i + 4, vaddq_f32(a1, b1));
    }
    if (i + 4 <= hd) {
        float32x4_t a0 = vld1q_f32(out + i), b0 = vdupq_n_f32(0.0f);
        const uint16_t *vr = v + i;
        int j = 0;
        for (; j + 2 <= n; j += 2, vr += 2 * stride) {
            a0 = vfmaq_n_f32(a0, load_f16x4(vr), p[j]);
            b0 = vfmaq_n_f32(b0, load_f16x4(vr + stride), p[j + 1]);
        }
        if (j < n) a0 = vfmaq_n_f32(a0, load_f16x4(vr), p[j]);
        vst1q_f32(out + i, vaddq_f32(a0, b0));
        i += 4;
    }
    for (; i < hd; i++) {
        float a = out[i];
        for (int j = 0; j < n; j++) a += p[j] * h2f(v[(size_t)j * stride + i]);
        out[i] = a;
    }
}

/* ---- attention over the Q8_0 KV cache ---- */

/* 16 int8 -> four float32x4 (exact) */
static inline void i8x16_to_f32(int8x16_t v, float32x4_t *f) {
    const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_high_s8(v);
    f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
    f[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
    f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
    f[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

/* dot of one block's 32 int8 with 32 floats of q (unscaled) */
static inline float32x4_t dot_blk_q8(const int8_t *qs, const float *q) {
    float32x4_t k[8];
    i8x16_to_f32(vld1q_s8(qs), k);
    i8x16_to_f32(vld1q_s8(qs + 16), k + 4);
    float32x4_t t0 = vmulq_f32(k[0], vld1q_f32(q)), t1 = vmulq_f32(k[1], vld1q_f32(q + 4));
    t0 = vfmaq_f32(t0, k[2], vld1q_f32(q + 8));
    t1 = vfmaq_f32(t1, k[3], vld1q_f32(q + 12));
    t0 = vfmaq_f32(t0, k[4], vld1q_f32(q + 16));
    t1 = vfmaq_f32(t1, k[5], vld1q_f32(q + 20));
    t0 = vfmaq_f32(t0, k[6], vld1q_f32(q + 24));
    t1 = vfmaq_f32(t1, k[7], vld1q_f32(q + 28));
    return vaddq_f32(t0, t1);
}

/* Block-aligned heads (off == 0, hd % 32 == 0): two keys at a time, each block's partial dot
 * scaled by its d; other heads (sharing or straddling blocks) use the scalar reference. */
static void attn_scores_q8_0(int hd, int n, const BlockQ8_0 *k, size_t stride, int off, const float *q, float *s) {
    if (off != 0 || hd % QK8_0 != 0) {
        sa_ref_attn_scores_q8_0(hd, n, k, stride, off, q, s);
        return;
    }
    const int nb = hd / QK8_0;
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        const BlockQ8_0 *r0 = k + (size_t)j * stride, *r1 = r0 + stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
        for (int b = 0; b < nb; b++) {
            const float *qb = q + b * QK8_0;
            a0 = vfmaq_n_f32(a0, dot_blk_q8(r0[b].qs, qb), h2f(r0[b].d));
            a1 = vfmaq_n_f32(a1, dot_blk_q8(r1[b].qs, qb), h2f(r1[b].d));
        }
        s[j] = vaddvq_f32(a0);
        s[j + 1] = vaddvq_f32(a1);
    }
    if (j < n) {
        const BlockQ8_0 *r0 = k + (size_t)j * stride;
        float32x4_t a0 = vdupq_n_f32(0.0f);
        for (int b = 0; b < nb; b++) a0 = vfmaq_n_f32(a0, dot_blk_q8(r0[b].qs, q + b * QK8_0), h2f(r0[b].d));
        s[j] = vaddvq_f32(a0);
    }
}

/* Block-aligned heads: one block's 32 output floats stay in registers while the rows stream
 * past (out[i] += (p[j] * d) * q, as the AVX2 version); other heads use the scalar reference. */
static void attn_values_q8_0(int hd, int n, const BlockQ8_0 *v, size_t stride, int off, const float *p, float *out) {
    if (off != 0 || hd % QK8_0 != 0) {
        sa_ref_attn_values_q8_0(hd, n, v, stride, off, p, out);
        return;
    }
    for (int b = 0; b < hd / QK8_0; b++) {
        float *o = out + b * QK8_0;
        float32x4_t a[8];
        for (int x = 0; x < 8; x++) a[x] = vld1q_f32(o + 4 * x);
        const BlockQ8_0 *vb = v + b;
        for (int j = 0; j < n; j++, vb += stride) {
            const float c = p[j] * h2f(vb->d);
            float32x4_t f[8];
            i8x16_to_f32(vld1q_s8(vb->qs), f);
            i8x16_to_f32(vld1q_s8(vb->qs + 16), f + 4);
            for (int x = 0; x < 8; x++) a[x] = vfmaq_n_f32(a[x], f[x], c);
        }
        for (int x = 0; x < 8; x++) vst1q_f32(o + 4 * x, a[x]);
    }
}

/* ---- exp, softmax numerators, SiLU ---- */

/* expf on 4 lanes. Range reduction x = n ln2 + r, n = round(x log2 e), |r| <= ln2/2, with ln2
 * split into a short head (0.693359375: n * head is exact for |n| < 2^15) and a tail, both
 * subtracted with FMA. exp(r) ~ 1 + r + r^2 p(r), p of degree 5 (the Cephes expf coefficients,
 * relative error about 1 ulp on that interval). The scale 2^n is built in the exponent field
 * as two factors 2^(n>>1) * 2^(n - (n>>1)), each a normal float for every n in [-126, 128], so
 * the top of the range (x up to ln FLT_MAX = 88.72, n = 128) stays finite and larger x overflow
 * to inf as expf does. Below -87.3365 (ln FLT_MIN, where expf turns subnormal) the result is
 * 0, as kernels.h says; NaN stays NaN. */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(-87.3365478515625f), hi = vdupq_n_f32(88.8f);
    const uint32x4_t under = vcltq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), hi); /* FMAX/FMIN keep a NaN */
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), vdupq_n_f32(1.9875691500e-4f), r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, vmulq_f32(r, r));
    const int32x4_t ni = vcvtq_s32_f32(n); /* exact: n is an integer in [-126, 128] (NaN: 0) */
    const int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    y = vmulq_f32(vmulq_f32(y, s1), s2);
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

/* Eight lanes per step in two sums; the last n % 4 elements go through exp4 from a padded copy
 * (padding -inf gives 0 and adds nothing). */
static float exp_sub_sum(int n, float *x, float m) {
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t e0 = exp4(vsubq_f32(vld1q_f32(x + i), vm));
        const float32x4_t e1 = exp4(vsubq_f32(vld1q_f32(x + i + 4), vm));
        vst1q_f32(x + i, e0);
        vst1q_f32(x + i + 4, e1);
        acc0 = vaddq_f32(acc0, e0);
        acc1 = vaddq_f32(acc1, e1);
    }
    if (i + 4 <= n) {
        const float32x4_t e0 = exp4(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(x + i, e0);
        acc0 = vaddq_f32(acc0, e0);
        i += 4;
    }
    if (i < n) {
        float t[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(t, x + i, (size_t)(n - i) * sizeof *t);
        const float32x4_t e = exp4(vsubq_f32(vld1q_f32(t), vm));
        vst1q_f32(t, e);
        memcpy(x + i, t, (size_t)(n - i) * sizeof *t);
        acc1 = vaddq_f32(acc1, e);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/* g / (1 + exp(-g)) * u with a true division (FDIV, correctly rounded like the reference);
 * exp(-g) = inf for g < -88.7 gives g / inf = -0, as expf does. */
static inline float32x4_t silu_mul4(float32x4_t g, float32x4_t u) {
    const float32x4_t d = vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g)));
    return vmulq_f32(vdivq_f32(g, d), u);
}

static void silu_mul(int n, float *g, const float *u) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(g + i, silu_mul4(vld1q_f32(g + i), vld1q_f32(u + i)));
        vst1q_f32(g + i + 4, silu_mul4(vld1q_f32(g + i + 4), vld1q_f32(u + i + 4)));
    }
    if (i + 4 <= n) {
        vst1q_f32(g + i, silu_mul4(vld1q_f32(g + i), vld1q_f32(u + i)));
        i += 4;
    }
    if (i < n) {
        float tg[4] = {0.0f, 0.0f, 0.0f, 0.0f}, tu[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        memcpy(tg, g + i, (size_t)(n - i) * sizeof *tg);
        memcpy(tu, u + i, (size_t)(n - i) * sizeof *tu);
        vst1q_f32(tg, silu_mul4(vld1q_f32(tg), vld1q_f32(tu)));
        memcpy(g + i, tg, (size_t)(n - i) * sizeof *tg);
    }
}

/* ---- the other block types (kquant_neon.h, included once per table) ---- */

/* Q8_K activations, byte-identical to sa_quantize_row_q8_K: mx = the first value of largest
 * magnitude (FMAXNM skips a NaN as the reference's fabsf(x) > amax does), iscale = -127 / mx,
 * q = min(127, rint(iscale * x)) (FCVTNS: ties to even, NaN to 0, as the reference's rounding),
 * d = 1 / iscale, bsums = the sums of each 16. */
static void quantize_q8_K(const float *x, void *yv, int n) {
    BlockQ8_K *y = yv;
    for (int b = 0; b < n / QK_K; b++, x += QK_K) {
        float32x4_t am4 = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K / 4; k++) am4 = vmaxnmq_f32(am4, vabsq_f32(vld1q_f32(x + 4 * k)));
        const float am = vmaxnmvq_f32(am4);
        memset(&y[b], 0, sizeof y[b]);
        if (!(am > 0.0f)) continue;
        float mx = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == am) {
                mx = x[j];
                break;
            }
        const float iscale = -127.0f / mx;
        const int32x4_t q127 = vdupq_n_s32(127);
        for (int k = 0; k < QK_K / 16; k++) {
            int32x4_t q[4];
            for (int v = 0; v < 4; v++) q[v] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 16 * k + 4 * v), iscale)), q127);
            /* |q| <= 127 (the low side cannot pass -127): the narrowing is exact */
            const int16x8_t h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            const int16x8_t h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
            y[b].bsums[k] = (int16_t)vaddvq_s16(vaddq_s16(h0, h1));
            vst1q_s8(y[b].qs + 16 * k, vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
        }
        y[b].d = 1.0f / iscale;
    }
}

/* Q8_1 activations (Q4_1, Q5_1), byte-identical to sa_quantize_row_q8_1: Q8_0's quants from
 * d = amax / 127 and 127 / amax, and s = fp16(d * their sum) */
static void quantize_q8_1(const float *x, void *yv, int n) {
    BlockQ8_1 *y = yv;
    for (int b = 0; b < n / 32; b++, x += 32) {
        float32x4_t v[8], am4 = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            am4 = vmaxnmq_f32(am4, vabsq_f32(v[k]));
        }
        const float amax = vmaxnmvq_f32(am4);
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int16x8_t h[4];
        for (int k = 0; k < 4; k++)
            h[k] = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k], id))),
                                vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k + 1], id))));
        const int8x16_t q0 = vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])), q1 = vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3]));
        vst1q_s8(y[b].qs, q0);
        vst1q_s8(y[b].qs + 16, q1);
        const int sum = vaddlvq_s8(q0) + vaddlvq_s8(q1);
        y[b].d = sa_fp32_to_fp16(d);
        y[b].s = sa_fp32_to_fp16((float)sum * d);
    }
}

/* plain NEON: products widened to int16 by SMULL, pairwise added into int32 (SADALP) */
#define KN_(name) neon_##name
#define KN_FN
#define KN_DOT16(acc, w, a) \
    vpadalq_s16(vpadalq_s16((acc), vmull_s8(vget_low_s8(w), vget_low_s8(a))), vmull_high_s8((w), (a)))
/* The x8 tiles' row lanes: SMLAL accumulates each (row, byte) product in its own int16 lane, rows
 * 0, 1 in l and 2, 3 in h, and the end adds pairs twice (ADDP, SADDLP) to one int32 per row. The
 * tiles bound what a lane takes before KN_FINISH: Q4_K 8 steps of |nibble * a| <= 15 * 127, at most
 * 15240, and the pair sum 30480; Q6_K 4 steps of |(level - 32) * a| <= 32 * 127, 16256 and 32512:
 * all below 32767 (kernels_gemm_kx8's extremes reach the Q4_K bound, and 31496 for Q6_K). */
typedef struct {
    int16x8_t l, h;
} KnAccNeon;
#define KN_ACC KnAccNeon
#define KN_ACC_ZERO ((KnAccNeon){vdupq_n_s16(0), vdupq_n_s16(0)})
#define KN_STEP(acc, w, x)                                                      \
    do {                                                                        \
        const int8x16_t ab_ = bcast4(x);                                        \
        (acc).l = vmlal_s8((acc).l, vget_low_s8(w), vget_low_s8(ab_));          \
        (acc).h = vmlal_high_s8((acc).h, (w), ab_);                             \
    } while (0)
#define KN_FINISH(acc) vpaddlq_s16(vpaddq_s16((acc).l, (acc).h))
#include "kquant_neon.h" /* undefines the KN_ parameters */

/* SDOT: four products per int32 lane */
#define KN_(name) sdot_##name
#define KN_FN __attribute__((target("arch=armv8.2-a+dotprod")))
#define KN_DOT16(acc, w, a) vdotq_s32((acc), (w), (a))
#define KN_ACC int32x4_t
#define KN_ACC_ZERO vdupq_n_s32(0)
#define KN_STEP(acc, w, x) ((acc) = vdotq_s32((acc), (w), bcast4(x)))
#define KN_FINISH(acc) (acc)
#include "kquant_neon.h" /* undefines the KN_ parameters */

#define KN_ACT_ROWS [SA_Q8_K] = {quantize_q8_K, NULL, NULL, NULL}, [SA_Q8_1] = {quantize_q8_1, NULL, NULL, NULL}

SA_BASE_TYPE_DEFS(neon, quantize_q8_0, dot_q8_0, dot_q4_0, dot_f16, dot_bf16, dot_f32, f32_to_f16)
SA_BASE_TYPE_DEFS(sdot, quantize_q8_0, dot_q8_0_sdot, dot_q4_0_sdot, dot_f16, dot_bf16, dot_f32, f32_to_f16)

const SaKernels sa_kernels_neon = {
    .name = "neon",
    .attn_scores_q8_0 = attn_scores_q8_0, .attn_values_q8_0 = attn_values_q8_0, /* Q8_0 KV cache */
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
    .attn_scores_f16 = attn_scores_f16,
    .attn_values_f16 = attn_values_f16,
    .exp_sub_sum = exp_sub_sum,
    .silu_mul = silu_mul,
    .type = {SA_BASE_TYPE_ROWS(neon), KN_TYPE_ROWS(neon), KN_ACT_ROWS},
};

const SaKernels sa_kernels_neon_dotprod = {
    .name = "neon_dotprod",
    .attn_scores_q8_0 = attn_scores_q8_0, .attn_values_q8_0 = attn_values_q8_0, /* Q8_0 KV cache */
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
    .attn_scores_f16 = attn_scores_f16,
    .attn_values_f16 = attn_values_f16,
    .exp_sub_sum = exp_sub_sum,
    .silu_mul = silu_mul,
    .type = {SA_BASE_TYPE_ROWS(sdot), KN_TYPE_ROWS(sdot), KN_ACT_ROWS},
};
