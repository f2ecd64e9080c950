/* kquant_neon.h - the NEON kernels of the block types beyond Q8_0 / Q4_0 (Q4_1, Q5_0, Q5_1,
 * IQ4_NL, Q2_K ... Q6_K, IQ4_XS), included twice by neon.c: once for the plain ARMv8.0 table and
 * once for the SDOT one, so the two cannot drift apart. The includer defines
 *   KN_(name)        the function's name in this instance (neon_name / sdot_name)
 *   KN_FN            the functions' attribute (empty, or target("arch=armv8.2-a+dotprod"))
 *   KN_DOT16(acc, w, a)       acc (int32x4) + the 16 int8 products w * a, summed in 4 lanes
 *   KN_ACC, KN_ACC_ZERO, KN_STEP(acc, w, x), KN_FINISH(acc)
 *       the row-lane dot of the x8 tiles: w holds 4 bytes of each of 4 rows (one 32-bit lane per
 *       row), x points at 4 activation bytes; KN_FINISH gives the 4 rows' int32 sums.
 *
 * Every kernel computes the scalar reference's integer sums exactly (int8 x int8 products are at
 * most 128 * 127 in magnitude and are widened to int32 before any sum: vmull + vpadal, or SDOT)
 * and combines them in float with the reference's operations in its order (C11: no FMA
 * contraction), so every value equals the reference's bit for bit (tests/test_kernels.c:
 * kernels_block_types, kernels_gemm_kx8).
 *
 * Layout choice: Q4_K and Q6_K are repacked into 8-row tiles at load on every ISA (src/matmul.c:
 * is_kx8), so their GEMMs here work on BlockQ4_Kx8 / BlockQ6_Kx8 (one row per 32-bit lane, as on
 * x86); their one-row dots serve the rows after the last whole 8. The other types stay in ggml's
 * rows: one-row dots, and the GEMM over them. */

/* ---- one-row dots of the 32-weight block types ---- */

#ifndef KN_SHARED_HELPERS
#define KN_SHARED_HELPERS
/* low / high nibbles of 16 bytes as int8 (0..15) */
static inline void kn_nibbles(const uint8_t *p, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(p);
    *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/* Q5_0 / Q5_1's fifth bits as 16 (or 0) per element: elements 0..15 from qh bytes 0, 1 and
 * 16..31 from bytes 2, 3 (bit j of the little-endian 32-bit qh is element j) */
static inline void kn_fifth_bits(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t idx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t h;
    memcpy(&h, qh, 4);
    const uint8x16_t hv = vreinterpretq_u8_u32(vdupq_n_u32(h)), b = vld1q_u8(bit), sixteen = vdupq_n_u8(16);
    *lo = vandq_u8(vtstq_u8(vqtbl1q_u8(hv, vld1q_u8(idx)), b), sixteen);
    *hi = vandq_u8(vtstq_u8(vqtbl1q_u8(hv, vld1q_u8(idx + 16)), b), sixteen);
}

/* IQ4 nibbles of 16 bytes -> their table values (one TBL each) */
static inline void kn_iq4_values(const uint8_t *p, int8x16_t *lo, int8x16_t *hi) {
    const int8x16_t tbl = vld1q_s8(sa_iq4nl_values);
    const uint8x16_t v = vld1q_u8(p);
    *lo = vqtbl1q_s8(tbl, vandq_u8(v, vdupq_n_u8(15)));
    *hi = vqtbl1q_s8(tbl, vshrq_n_u8(v, 4));
}

/* Q4_K / Q5_K: imin = sum_j mn_j * (bsums[2j] + bsums[2j+1]) */
static inline int32_t kn_kq_imin(const int16_t *bsums, const int16_t *mn) {
    const int16x8_t bs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8)); /* |sum| <= 32 * 127 */
    const int16x8_t m = vld1q_s16(mn);
    return vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(bs), vget_low_s16(m)), bs, m));
}

static inline void kn_kq_scales(const uint8_t *scales, int32_t *sc, int16_t *mn) {
    for (int j = 0; j < 8; j++) {
        int s, m;
        sa_kq_scale_min(j, scales, &s, &m);
        sc[j] = s;
        mn[j] = (int16_t)m;
    }
}

/* for the Q4_K x8 mins: int16 lanes (j, j, j, j, j+1, j+1, j+1, j+1) of the 8 bsum pairs, j = 2q */
static const uint8_t kn_bsum_idx[4][16] = {
#define KN_BS(j) {2*(j), 2*(j)+1, 2*(j), 2*(j)+1, 2*(j), 2*(j)+1, 2*(j), 2*(j)+1, \
                  2*(j)+2, 2*(j)+3, 2*(j)+2, 2*(j)+3, 2*(j)+2, 2*(j)+3, 2*(j)+2, 2*(j)+3}
    KN_BS(0), KN_BS(2), KN_BS(4), KN_BS(6)
#undef KN_BS
};

/* bytes 4q .. 4q+3 of v (one per row of an x8 tile's half) as int32 lanes */
static inline int32x4_t kn_u8_lane4(uint8x16_t v, int q) {
    const uint16x8_t w = q < 2 ? vmovl_u8(vget_low_u8(v)) : vmovl_high_u8(v);
    return vreinterpretq_s32_u32(q % 2 == 0 ? vmovl_u16(vget_low_u16(w)) : vmovl_high_u16(w));
}
static inline int32x4_t kn_s8_lane4(int8x16_t v, int q) {
    const int16x8_t w = q < 2 ? vmovl_s8(vget_low_s8(v)) : vmovl_high_s8(v);
    return q % 2 == 0 ? vmovl_s16(vget_low_s16(w)) : vmovl_high_s16(w);
}
#endif

/* the integer dot of one 32-weight block (lo: elements 0..15, hi: 16..31) with a's 32 quants */
KN_FN static inline int32_t KN_(blk32)(int8x16_t lo, int8x16_t hi, const int8_t *a) {
    return vaddvq_s32(KN_DOT16(KN_DOT16(vdupq_n_s32(0), lo, vld1q_s8(a)), hi, vld1q_s8(a + 16)));
}

KN_FN static float KN_(dot_q4_1)(int n, const void *wv, const void *av) {
    const BlockQ4_1 *w = wv;
    const BlockQ8_1 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int8x16_t lo, hi;
        kn_nibbles(w[b].qs, &lo, &hi);
        const int32_t si = KN_(blk32)(lo, hi, a[b].qs);
        sum = sum + ((float)si * (h2f(w[b].d) * h2f(a[b].d)) + h2f(w[b].m) * h2f(a[b].s));
    }
    return sum;
}

KN_FN static float KN_(dot_q5_0)(int n, const void *wv, const void *av) {
    const BlockQ5_0 *w = wv;
    const BlockQ8_0 *a = av;
    const int8x16_t sixteen = vdupq_n_s8(16);
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int8x16_t lo, hi;
        uint8x16_t bl, bh;
        kn_nibbles(w[b].qs, &lo, &hi);
        kn_fifth_bits(w[b].qh, &bl, &bh);
        lo = vsubq_s8(vorrq_s8(lo, vreinterpretq_s8_u8(bl)), sixteen);
        hi = vsubq_s8(vorrq_s8(hi, vreinterpretq_s8_u8(bh)), sixteen);
        const int32_t si = KN_(blk32)(lo, hi, a[b].qs);
        sum = sum + (float)si * (h2f(w[b].d) * h2f(a[b].d));
    }
    return sum;
}

KN_FN static float KN_(dot_q5_1)(int n, const void *wv, const void *av) {
    const BlockQ5_1 *w = wv;
    const BlockQ8_1 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int8x16_t lo, hi;
        uint8x16_t bl, bh;
        kn_nibbles(w[b].qs, &lo, &hi);
        kn_fifth_bits(w[b].qh, &bl, &bh);
        lo = vorrq_s8(lo, vreinterpretq_s8_u8(bl));
        hi = vorrq_s8(hi, vreinterpretq_s8_u8(bh));
        const int32_t si = KN_(blk32)(lo, hi, a[b].qs);
        sum = sum + ((float)si * (h2f(w[b].d) * h2f(a[b].d)) + h2f(w[b].m) * h2f(a[b].s));
    }
    return sum;
}

KN_FN static float KN_(dot_iq4_nl)(int n, const void *wv, const void *av) {
    const BlockIQ4_NL *w = wv;
    const BlockQ8_0 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK4_NL; b++) {
        int8x16_t lo, hi;
        kn_iq4_values(w[b].qs, &lo, &hi);
        const int32_t si = KN_(blk32)(lo, hi, a[b].qs);
        sum = sum + (float)si * (h2f(w[b].d) * h2f(a[b].d));
    }
    return sum;
}

/* ---- one-row dots of the 256-weight (K-quant) types ----
 * Per super-block, the sub-block dots stay in 4 int32 lanes and are scaled there (MLA by the
 * sub-block's integer scale); one horizontal add per super-block gives the reference's isum. */

KN_FN static float KN_(dot_q4_K)(int n, const void *wv, const void *av) {
    const BlockQ4_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t sc[8];
        int16_t mn[8];
        kn_kq_scales(w[b].scales, sc, mn);
        const int8_t *x = a[b].qs;
        int32x4_t is = vdupq_n_s32(0);
        for (int p = 0; p < 4; p++) {
            int8x16_t l0, h0, l1, h1;
            kn_nibbles(w[b].qs + 32 * p, &l0, &h0);
            kn_nibbles(w[b].qs + 32 * p + 16, &l1, &h1);
            const int32x4_t s0 = KN_DOT16(KN_DOT16(vdupq_n_s32(0), l0, vld1q_s8(x + 64 * p)), l1, vld1q_s8(x + 64 * p + 16));
            const int32x4_t s1 = KN_DOT16(KN_DOT16(vdupq_n_s32(0), h0, vld1q_s8(x + 64 * p + 32)), h1, vld1q_s8(x + 64 * p + 48));
            is = vmlaq_n_s32(vmlaq_n_s32(is, s0, sc[2 * p]), s1, sc[2 * p + 1]);
        }
        const float dd = a[b].d * h2f(w[b].d), dm = a[b].d * h2f(w[b].dmin);
        sum = sum + (dd * (float)vaddvq_s32(is) - dm * (float)kn_kq_imin(a[b].bsums, mn));
    }
    return sum;
}

KN_FN static float KN_(dot_q5_K)(int n, const void *wv, const void *av) {
    const BlockQ5_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t sc[8];
        int16_t mn[8];
        kn_kq_scales(w[b].scales, sc, mn);
        const int8_t *x = a[b].qs;
        const uint8x16_t qh0 = vld1q_u8(w[b].qh), qh1 = vld1q_u8(w[b].qh + 16), sixteen = vdupq_n_u8(16);
        int32x4_t is = vdupq_n_s32(0);
        for (int p = 0; p < 4; p++) {
            int8x16_t l0, h0, l1, h1;
            kn_nibbles(w[b].qs + 32 * p, &l0, &h0);
            kn_nibbles(w[b].qs + 32 * p + 16, &l1, &h1);
            /* sub-block 2p takes bit 2p of qh[l], sub-block 2p+1 bit 2p+1 */
            const uint8x16_t m0 = vdupq_n_u8((uint8_t)(1 << (2 * p))), m1 = vdupq_n_u8((uint8_t)(2 << (2 * p)));
            l0 = vorrq_s8(l0, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh0, m0), sixteen)));
            l1 = vorrq_s8(l1, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh1, m0), sixteen)));
            h0 = vorrq_s8(h0, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh0, m1), sixteen)));
            h1 = vorrq_s8(h1, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh1, m1), sixteen)));
            const int32x4_t s0 = KN_DOT16(KN_DOT16(vdupq_n_s32(0), l0, vld1q_s8(x + 64 * p)), l1, vld1q_s8(x + 64 * p + 16));
            const int32x4_t s1 = KN_DOT16(KN_DOT16(vdupq_n_s32(0), h0, vld1q_s8(x + 64 * p + 32)), h1, vld1q_s8(x + 64 * p + 48));
            is = vmlaq_n_s32(vmlaq_n_s32(is, s0, sc[2 * p]), s1, sc[2 * p + 1]);
        }
        const float dd = a[b].d * h2f(w[b].d), dm = a[b].d * h2f(w[b].dmin);
        sum = sum + (dd * (float)vaddvq_s32(is) - dm * (float)kn_kq_imin(a[b].bsums, mn));
    }
    return sum;
}

/* Q6_K: per half, 32 bytes of ql (low nibbles: weights l, high: l + 64), 32 more (l + 32, l + 96)
 * and 32 of qh (bit pairs 0, 2, 4, 6 for the four); levels - 32 are signed bytes */
KN_FN static float KN_(dot_q6_K)(int n, const void *wv, const void *av) {
    const BlockQ6_K *w = wv;
    const BlockQ8_K *a = av;
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t m32 = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32x4_t is = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[b].ql + 64 * h, *qh = w[b].qh + 32 * h;
            const int8_t *x = a[b].qs + 128 * h;
            const int8_t *sc = w[b].scales + 8 * h;
            for (int u = 0; u < 2; u++) { /* l = 16u .. 16u + 15: sub-blocks 8h + u + 2v */
                const uint8x16_t A = vld1q_u8(ql + 16 * u), B = vld1q_u8(ql + 32 + 16 * u), H = vld1q_u8(qh + 16 * u);
                int8x16_t v[4];
                v[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(A, m4), vshlq_n_u8(vandq_u8(H, m3), 4)));
                v[1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(B, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 2), m3), 4)));
                v[2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(A, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 4), m3), 4)));
                v[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(B, 4), vshlq_n_u8(vshrq_n_u8(H, 6), 4)));
                for (int q = 0; q < 4; q++) {
                    const int32x4_t s = KN_DOT16(vdupq_n_s32(0), vsubq_s8(v[q], m32), vld1q_s8(x + 32 * q + 16 * u));
                    is = vmlaq_n_s32(is, s, sc[2 * q + u]);
                }
            }
        }
        sum = sum + (a[b].d * h2f(w[b].d)) * (float)vaddvq_s32(is);
    }
    return sum;
}

/* Q2_K: weights 128h + 32p + l are bits 2p, 2p+1 of qs[32h + l]; unsigned levels 0..3; the 4-bit
 * mins against Q8_K's bsums (one per 16-weight sub-block) */
KN_FN static float KN_(dot_q2_K)(int n, const void *wv, const void *av) {
    const BlockQ2_K *w = wv;
    const BlockQ8_K *a = av;
    const uint8x16_t m3 = vdupq_n_u8(3), m4 = vdupq_n_u8(15);
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        const uint8x16_t scv = vld1q_u8(w[b].scales);
        uint8_t sc[16];
        vst1q_u8(sc, vandq_u8(scv, m4));
        const int16x8_t mn0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vshrq_n_u8(scv, 4))));
        const int16x8_t mn1 = vreinterpretq_s16_u16(vmovl_high_u8(vshrq_n_u8(scv, 4)));
        const int16x8_t bs0 = vld1q_s16(a[b].bsums), bs1 = vld1q_s16(a[b].bsums + 8);
        int32x4_t im = vmull_s16(vget_low_s16(mn0), vget_low_s16(bs0));
        im = vmlal_high_s16(im, mn0, bs0);
        im = vmlal_s16(im, vget_low_s16(mn1), vget_low_s16(bs1));
        im = vmlal_high_s16(im, mn1, bs1);
        int32x4_t is = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8x16_t q0 = vld1q_u8(w[b].qs + 32 * h), q1 = vld1q_u8(w[b].qs + 32 * h + 16);
            for (int p = 0; p < 4; p++) {
                const int j = 8 * h + 2 * p;
                const int8_t *x = a[b].qs + 128 * h + 32 * p;
                const int8x16_t v0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(q0, vdupq_n_s8((int8_t)(-2 * p))), m3));
                const int8x16_t v1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(q1, vdupq_n_s8((int8_t)(-2 * p))), m3));
                is = vmlaq_n_s32(is, KN_DOT16(vdupq_n_s32(0), v0, vld1q_s8(x)), sc[j]);
                is = vmlaq_n_s32(is, KN_DOT16(vdupq_n_s32(0), v1, vld1q_s8(x + 16)), sc[j + 1]);
            }
        }
        const float dd = a[b].d * h2f(w[b].d), dm = a[b].d * h2f(w[b].dmin);
        sum = sum + (dd * (float)vaddvq_s32(is) - dm * (float)vaddvq_s32(im));
    }
    return sum;
}

/* Q3_K: Q2_K's bit pairs minus 4 where bit 4h + p of hmask[l] is clear; signed 6-bit scales */
KN_FN static float KN_(dot_q3_K)(int n, const void *wv, const void *av) {
    const BlockQ3_K *w = wv;
    const BlockQ8_K *a = av;
    const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t sc[16];
        for (int j = 0; j < 16; j++) sc[j] = sa_q3k_scale(j, w[b].scales) - 32;
        const uint8x16_t hm0 = vld1q_u8(w[b].hmask), hm1 = vld1q_u8(w[b].hmask + 16);
        int32x4_t is = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8x16_t q0 = vld1q_u8(w[b].qs + 32 * h), q1 = vld1q_u8(w[b].qs + 32 * h + 16);
            for (int p = 0; p < 4; p++) {
                const int j = 8 * h + 2 * p;
                const int8_t *x = a[b].qs + 128 * h + 32 * p;
                const uint8x16_t bit = vdupq_n_u8((uint8_t)(1 << (4 * h + p)));
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * p));
                const int8x16_t v0 = vreinterpretq_s8_u8(
                    vsubq_u8(vandq_u8(vshlq_u8(q0, sh), m3), vbicq_u8(four, vtstq_u8(hm0, bit))));
                const int8x16_t v1 = vreinterpretq_s8_u8(
                    vsubq_u8(vandq_u8(vshlq_u8(q1, sh), m3), vbicq_u8(four, vtstq_u8(hm1, bit))));
                is = vmlaq_n_s32(is, KN_DOT16(vdupq_n_s32(0), v0, vld1q_s8(x)), sc[j]);
                is = vmlaq_n_s32(is, KN_DOT16(vdupq_n_s32(0), v1, vld1q_s8(x + 16)), sc[j + 1]);
            }
        }
        sum = sum + (a[b].d * h2f(w[b].d)) * (float)vaddvq_s32(is);
    }
    return sum;
}

KN_FN static float KN_(dot_iq4_xs)(int n, const void *wv, const void *av) {
    const BlockIQ4_XS *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32x4_t is = vdupq_n_s32(0);
        for (int j = 0; j < 8; j++) {
            int8x16_t lo, hi;
            kn_iq4_values(w[b].qs + 16 * j, &lo, &hi);
            const int8_t *x = a[b].qs + 32 * j;
            const int32x4_t s = KN_DOT16(KN_DOT16(vdupq_n_s32(0), lo, vld1q_s8(x)), hi, vld1q_s8(x + 16));
            is = vmlaq_n_s32(is, s, sa_iq4xs_scale(j, &w[b]) - 32);
        }
        sum = sum + (a[b].d * h2f(w[b].d)) * (float)vaddvq_s32(is);
    }
    return sum;
}

/* The GEMMs of the row types: each (row, token) is the dot itself, so it equals it bit for bit. */
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q4_1), KN_(dot_q4_1))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q5_0), KN_(dot_q5_0))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q5_1), KN_(dot_q5_1))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_iq4_nl), KN_(dot_iq4_nl))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q4_K), KN_(dot_q4_K))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q5_K), KN_(dot_q5_K))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q6_K), KN_(dot_q6_K))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q2_K), KN_(dot_q2_K))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_q3_K), KN_(dot_q3_K))
KN_FN static SA_GEMM_FROM_DOT(KN_(gemm_iq4_xs), KN_(dot_iq4_xs))

/* ---- the repacked Q4_K / Q6_K tiles (kernels.h: BlockQ4_Kx8, BlockQ6_Kx8) ----
 * One group of 8 rows times NT (1 or 2) tokens, four rows (one half, h) at a time: each 16-byte
 * load of a chunk holds 4 bytes of each of the half's rows, one 32-bit lane per row, and
 * KN_STEP dots it with 4 activation bytes. The float part is the reference's per lane:
 *     Q4_K: acc + ((a.d * d) * isum - (a.d * dmin) * imin)      Q6_K: acc + (a.d * d) * isum */

KN_FN static inline __attribute__((always_inline)) void KN_(q4Kx8_tile)(int nb, const BlockQ4_Kx8 *w, const BlockQ8_K *a,
                                                                       const int NT, float *y, size_t ldy,
                                                                       const char *pf_end) {
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    float32x4_t acc[2][2];
    UNROLL for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        if (pf_end) sa_prefetch_ahead(w + b, sizeof *w, pf_end);
        UNROLL for (int h = 0; h < 2; h++) {
            /* the 6-bit scales and mins of sub-blocks 4s .. 4s+3 (s = 0, 1), byte 4*(j%4) + row */
            const uint8x16_t L0 = vld1q_u8(w[b].scl + 16 * h), L1 = vld1q_u8(w[b].scl + 32 + 16 * h);
            const uint8x16_t H = vld1q_u8(w[b].sch + 16 * h);
            uint8x16_t SC[2], MN[2];
            SC[0] = vorrq_u8(vandq_u8(L0, m4), vshlq_n_u8(vandq_u8(H, m3), 4));
            MN[0] = vorrq_u8(vshrq_n_u8(L0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 2), m3), 4));
            SC[1] = vorrq_u8(vandq_u8(L1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 4), m3), 4));
            MN[1] = vorrq_u8(vshrq_n_u8(L1, 4), vshlq_n_u8(vshrq_n_u8(H, 6), 4));
            /* imin per row: the mins widened to int16, (sub-block 4s + 2q, row) in the low half and
             * (4s + 2q + 1, row) in the high half, against the token's bsum pairs laid out alike */
            int16x8_t M16[2][2];
            UNROLL for (int q = 0; q < 2; q++) {
                M16[q][0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(MN[q])));
                M16[q][1] = vreinterpretq_s16_u16(vmovl_high_u8(MN[q]));
            }
            int32x4_t isum[2], imin[2];
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = a[(size_t)t * nb + b].bsums;
                /* bsum_j = bsums[2j] + bsums[2j+1], at most 32 * 127 in magnitude */
                const uint8x16_t B = vreinterpretq_u8_s16(vpaddq_s16(vld1q_s16(bs), vld1q_s16(bs + 8)));
                int32x4_t m = vdupq_n_s32(0);
                UNROLL for (int q = 0; q < 4; q++) {
                    const int16x8_t bq = vreinterpretq_s16_u8(vqtbl1q_u8(B, vld1q_u8(kn_bsum_idx[q])));
                    m = vmlal_s16(m, vget_low_s16(M16[q / 2][q % 2]), vget_low_s16(bq));
                    m = vmlal_high_s16(m, M16[q / 2][q % 2], bq);
                }
                imin[t] = m;
                isum[t] = vdupq_n_s32(0);
            }
            UNROLL for (int p = 0; p < 4; p++) {
                RELOAD(); /* the activation words are re-read, not kept from the other half (spills) */
                const uint8_t *qp = w[b].qs + 256 * p + 16 * h;
                KN_ACC slo[2], shi[2];
                UNROLL for (int t = 0; t < NT; t++) slo[t] = shi[t] = KN_ACC_ZERO;
                UNROLL for (int k = 0; k < 8; k++) {
                    const uint8x16_t v = vld1q_u8(qp + 32 * k);
                    const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, m4)), hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                    UNROLL for (int t = 0; t < NT; t++) {
                        const int8_t *x = a[(size_t)t * nb + b].qs + 64 * p + 4 * k;
                        KN_STEP(slo[t], lo, x);
                        KN_STEP(shi[t], hi, x + 32);
                    }
                }
                const int32x4_t s0 = kn_u8_lane4(SC[p / 2], 2 * (p % 2)), s1 = kn_u8_lane4(SC[p / 2], 2 * (p % 2) + 1);
                UNROLL for (int t = 0; t < NT; t++)
                    isum[t] = vmlaq_s32(vmlaq_s32(isum[t], KN_FINISH(slo[t]), s0), KN_FINISH(shi[t]), s1);
            }
            const float32x4_t dw = load_d4(w[b].d + 4 * h), dmw = load_d4(w[b].dmin + 4 * h);
            UNROLL for (int t = 0; t < NT; t++) {
                const float ad = a[(size_t)t * nb + b].d;
                const float32x4_t dd = vmulq_n_f32(dw, ad), dm = vmulq_n_f32(dmw, ad);
                acc[t][h] = vaddq_f32(acc[t][h], vsubq_f32(vmulq_f32(dd, vcvtq_f32_s32(isum[t])),
                                                           vmulq_f32(dm, vcvtq_f32_s32(imin[t]))));
            }
        }
    }
    UNROLL for (int t = 0; t < NT; t++) {
        vst1q_f32(y + (size_t)t * ldy, acc[t][0]);
        vst1q_f32(y + (size_t)t * ldy + 4, acc[t][1]);
    }
}

/* Q6_K: chunk c of half H holds weights l = 4c .. 4c+3 of the half (A: low nibbles l, high l + 64;
 * B: l + 32, l + 96; qh: the bit pairs of all four); levels - 32 are signed bytes, and the four
 * streams u = 0..3 belong to sub-blocks 8H + 2u + c/4 */
KN_FN static inline __attribute__((always_inline)) void KN_(q6Kx8_tile)(int nb, const BlockQ6_Kx8 *w, const BlockQ8_K *a,
                                                                       const int NT, float *y, size_t ldy,
                                                                       const char *pf_end) {
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t m32 = vdupq_n_s8(32);
    float32x4_t acc[2][2];
    UNROLL for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        if (pf_end) sa_prefetch_ahead(w + b, sizeof *w, pf_end);
        UNROLL for (int h = 0; h < 2; h++) {
            int32x4_t isum[2];
            UNROLL for (int t = 0; t < NT; t++) isum[t] = vdupq_n_s32(0);
            for (int H = 0; H < 2; H++)
                UNROLL for (int cq = 0; cq < 2; cq++) {
                    RELOAD(); /* as in the Q4_K tile */
                    KN_ACC s[2][4];
                    UNROLL for (int t = 0; t < NT; t++) s[t][0] = s[t][1] = s[t][2] = s[t][3] = KN_ACC_ZERO;
                    UNROLL for (int e = 0; e < 4; e++) {
                        const int c = 4 * cq + e;
                        const uint8x16_t A = vld1q_u8(w[b].ql + 64 * (8 * H + c) + 16 * h);
                        const uint8x16_t B = vld1q_u8(w[b].ql + 64 * (8 * H + c) + 32 + 16 * h);
                        const uint8x16_t Q = vld1q_u8(w[b].qh + 32 * (8 * H + c) + 16 * h);
                        int8x16_t v[4];
                        v[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(A, m4), vshlq_n_u8(vandq_u8(Q, m3), 4)));
                        v[1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(B, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(Q, 2), m3), 4)));
                        v[2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(A, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(Q, 4), m3), 4)));
                        v[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(B, 4), vshlq_n_u8(vshrq_n_u8(Q, 6), 4)));
                        UNROLL for (int u = 0; u < 4; u++) v[u] = vsubq_s8(v[u], m32);
                        UNROLL for (int t = 0; t < NT; t++) {
                            const int8_t *x = a[(size_t)t * nb + b].qs + 128 * H + 4 * c;
                            UNROLL for (int u = 0; u < 4; u++) KN_STEP(s[t][u], v[u], x + 32 * u);
                        }
                    }
                    UNROLL for (int u = 0; u < 4; u++) {
                        const int sb = 8 * H + 2 * u + cq;
                        const int32x4_t SC = kn_s8_lane4(vld1q_s8(w[b].sc + 32 * (sb / 4) + 16 * h), sb % 4);
                        UNROLL for (int t = 0; t < NT; t++) isum[t] = vmlaq_s32(isum[t], KN_FINISH(s[t][u]), SC);
                    }
                }
            const float32x4_t dw = load_d4(w[b].d + 4 * h);
            UNROLL for (int t = 0; t < NT; t++)
                acc[t][h] = vaddq_f32(acc[t][h], vmulq_f32(vmulq_n_f32(dw, a[(size_t)t * nb + b].d), vcvtq_f32_s32(isum[t])));
        }
    }
    UNROLL for (int t = 0; t < NT; t++) {
        vst1q_f32(y + (size_t)t * ldy, acc[t][0]);
        vst1q_f32(y + (size_t)t * ldy + 4, acc[t][1]);
    }
}

/* Tokens two at a time (the tile's state for two tokens fits the 32 registers), one for an odd
 * last token; decode and small batches prefetch on their first pass over each group. */
#define KN_GEMM_X8(name, tile, BlockT)                                                                            \
    KN_FN static void name(int nb, int ng, const void *wv, const void *av, int T, float *y, size_t ldy) {        \
        const BlockT *w = wv;                                                                                    \
        const BlockQ8_K *a = av;                                                                                 \
        const char *pf_end = T <= SA_PF_MAX_T ? (const char *)(w + (size_t)ng * nb) : NULL;                      \
        for (int g = 0; g < ng; g++) {                                                                           \
            const BlockT *wg = w + (size_t)g * nb;                                                               \
            float *yg = y + 8 * g;                                                                               \
            int t = 0;                                                                                           \
            for (; t + 2 <= T; t += 2) tile(nb, wg, a + (size_t)t * nb, 2, yg + t * ldy, ldy, t == 0 ? pf_end : NULL); \
            if (t < T) tile(nb, wg, a + (size_t)t * nb, 1, yg + t * ldy, ldy, t == 0 ? pf_end : NULL);           \
        }                                                                                                        \
    }
KN_GEMM_X8(KN_(gemm_q4_Kx8), KN_(q4Kx8_tile), BlockQ4_Kx8)
KN_GEMM_X8(KN_(gemm_q6_Kx8), KN_(q6Kx8_tile), BlockQ6_Kx8)
#undef KN_GEMM_X8

/* the table rows (SaKernels.type) of this instance; Q8_K / Q8_1 activations come from neon.c */
#define KN_TYPE_ROWS(P)                                                                                          \
    [SA_Q4_1] = {NULL, P##_dot_q4_1, P##_gemm_q4_1}, [SA_Q5_0] = {NULL, P##_dot_q5_0, P##_gemm_q5_0},             \
    [SA_Q5_1] = {NULL, P##_dot_q5_1, P##_gemm_q5_1}, [SA_IQ4_NL] = {NULL, P##_dot_iq4_nl, P##_gemm_iq4_nl},       \
    [SA_Q4_K] = {NULL, P##_dot_q4_K, P##_gemm_q4_K, P##_gemm_q4_Kx8},                                            \
    [SA_Q6_K] = {NULL, P##_dot_q6_K, P##_gemm_q6_K, P##_gemm_q6_Kx8},                                            \
    [SA_Q5_K] = {NULL, P##_dot_q5_K, P##_gemm_q5_K}, [SA_Q2_K] = {NULL, P##_dot_q2_K, P##_gemm_q2_K},             \
    [SA_Q3_K] = {NULL, P##_dot_q3_K, P##_gemm_q3_K}, [SA_IQ4_XS] = {NULL, P##_dot_iq4_xs, P##_gemm_iq4_xs}
