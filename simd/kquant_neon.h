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
 * most 128 * 127 in magnitude; the dots widen them to int32 before any sum, vmull + vpadal or
 * SDOT; the plain x8 tiles sum a few in int16 first, within the bounds neon.c states at KN_STEP)
 * and combines them in float with the reference's operations in its order (C11: no FMA
 * contraction), so every value equals the reference's bit for bit (tests/test_kernels.c:
 * kernels_block_types, kernels_gemm_kx8).
 *
 * Layout choice: Q4_K and Q6_K are repacked into 8-row tiles at load on every ISA (src/matmul.c:
 * is_kx8), so their GEMMs here work on BlockQ4_Kx8 / BlockQ6_Kx8 (one row per 32-bit lane, as on
 * x86: the activation bytes are loaded once for 8 rows and no horizontal sum is needed per row);
 * their one-row dots serve the rows after the last whole 8. The other types stay in ggml's rows
 * (no repacking to add to src/matmul.c, which another change is moving): one-row dots, and GEMMs
 * that decode each block once per run of tokens. No ARM hardware was at hand to time either. */

/* ---- the row types: decode a block once, then dot it with each token ----
 * A decoder turns one weight block into signed int8 levels in element order plus its integer
 * scales (and mins); the token step takes the exact integer sums of those with the token's
 * quants and combines them in float as the reference does. The dot is one token; the GEMM
 * decodes each block once per run of up to KN_TCHUNK tokens, so a prefill batch does not decode
 * every weight once per token. */

#ifndef KN_SHARED_HELPERS
#define KN_SHARED_HELPERS
enum { KN_TCHUNK = 8 };

/* a decoded 32-weight block: elements 0..15 and 16..31, the fp16 scale and (Q4_1 / Q5_1) minimum */
typedef struct {
    int8x16_t lo, hi;
    float d, m;
} KnB32;
/* a decoded 256-weight super-block: q[i] = elements 16i .. 16i+15, sc[i] / mn[i] their integer
 * scale and min (a 32-weight sub-block's twice), d / dmin the fp16 super-block scales */
typedef struct {
    int8x16_t q[16];
    int32_t sc[16];
    int16_t mn[16];
    float d, dmin;
} KnB256;

/* low / high nibbles of 16 bytes as int8 (0..15) */
static inline void kn_nibbles(const uint8_t *p, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(p);
    *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/* Q5_0 / Q5_1's fifth bits as 16 (or 0) per element: elements 0..15 from qh bytes 0, 1 and
 * 16..31 from bytes 2, 3 (bit j of the little-endian 32-bit qh is element j) */
static inline void kn_fifth_bits(const uint8_t *qh, int8x16_t *lo, int8x16_t *hi) {
    static const uint8_t idx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t h;
    memcpy(&h, qh, 4);
    const uint8x16_t hv = vreinterpretq_u8_u32(vdupq_n_u32(h)), b = vld1q_u8(bit), sixteen = vdupq_n_u8(16);
    *lo = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(hv, vld1q_u8(idx)), b), sixteen));
    *hi = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(hv, vld1q_u8(idx + 16)), b), sixteen));
}

/* IQ4 nibbles of 16 bytes -> their table values (one TBL each) */
static inline void kn_iq4_values(const uint8_t *p, int8x16_t *lo, int8x16_t *hi) {
    const int8x16_t tbl = vld1q_s8(sa_iq4nl_values);
    const uint8x16_t v = vld1q_u8(p);
    *lo = vqtbl1q_s8(tbl, vandq_u8(v, vdupq_n_u8(15)));
    *hi = vqtbl1q_s8(tbl, vshrq_n_u8(v, 4));
}

static inline void kn_dec_q4_1(const BlockQ4_1 *w, KnB32 *B) {
    kn_nibbles(w->qs, &B->lo, &B->hi);
    B->d = h2f(w->d);
    B->m = h2f(w->m);
}
static inline void kn_dec_q5_1(const BlockQ5_1 *w, KnB32 *B) {
    int8x16_t bl, bh;
    kn_nibbles(w->qs, &B->lo, &B->hi);
    kn_fifth_bits(w->qh, &bl, &bh);
    B->lo = vorrq_s8(B->lo, bl);
    B->hi = vorrq_s8(B->hi, bh);
    B->d = h2f(w->d);
    B->m = h2f(w->m);
}
static inline void kn_dec_q5_0(const BlockQ5_0 *w, KnB32 *B) {
    int8x16_t bl, bh;
    kn_nibbles(w->qs, &B->lo, &B->hi);
    kn_fifth_bits(w->qh, &bl, &bh);
    B->lo = vsubq_s8(vorrq_s8(B->lo, bl), vdupq_n_s8(16));
    B->hi = vsubq_s8(vorrq_s8(B->hi, bh), vdupq_n_s8(16));
    B->d = h2f(w->d);
}
static inline void kn_dec_iq4_nl(const BlockIQ4_NL *w, KnB32 *B) {
    kn_iq4_values(w->qs, &B->lo, &B->hi);
    B->d = h2f(w->d);
}

/* Q4_K / Q5_K: sub-block j (32 weights) is the low (j even) or high nibbles of qs[32 (j/2) + l];
 * Q5_K adds bit j of qh[l] as 16 */
static inline void kn_dec_q45_K(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, KnB256 *B) {
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        sa_kq_scale_min(j, scales, &sc, &mn);
        B->sc[2 * j] = B->sc[2 * j + 1] = sc;
        B->mn[2 * j] = B->mn[2 * j + 1] = (int16_t)mn;
    }
    for (int p = 0; p < 4; p++) {
        kn_nibbles(qs + 32 * p, &B->q[4 * p], &B->q[4 * p + 2]);
        kn_nibbles(qs + 32 * p + 16, &B->q[4 * p + 1], &B->q[4 * p + 3]);
    }
    if (qh) {
        const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16), sixteen = vdupq_n_u8(16);
        for (int j = 0; j < 8; j++) {
            const uint8x16_t m = vdupq_n_u8((uint8_t)(1 << j));
            B->q[2 * j] = vorrq_s8(B->q[2 * j], vreinterpretq_s8_u8(vandq_u8(vtstq_u8(h0, m), sixteen)));
            B->q[2 * j + 1] = vorrq_s8(B->q[2 * j + 1], vreinterpretq_s8_u8(vandq_u8(vtstq_u8(h1, m), sixteen)));
        }
    }
}
static inline void kn_dec_q4_K(const BlockQ4_K *w, KnB256 *B) {
    kn_dec_q45_K(w->scales, w->qs, NULL, B);
    B->d = h2f(w->d);
    B->dmin = h2f(w->dmin);
}
static inline void kn_dec_q5_K(const BlockQ5_K *w, KnB256 *B) {
    kn_dec_q45_K(w->scales, w->qs, w->qh, B);
    B->d = h2f(w->d);
    B->dmin = h2f(w->dmin);
}

/* Q6_K: per half h, 32 bytes of ql (low nibbles: weights l, high: l + 64), 32 more (l + 32,
 * l + 96) and 32 of qh (bit pairs 0, 2, 4, 6 for the four); elements 128h + 32v + 16u + .. are
 * q[8h + 2v + u], scale scales[8h + 2v + u]; levels - 32 */
static inline void kn_dec_q6_K(const BlockQ6_K *w, KnB256 *B) {
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t m32 = vdupq_n_s8(32);
    for (int i = 0; i < 16; i++) B->sc[i] = w->scales[i];
    for (int h = 0; h < 2; h++)
        for (int u = 0; u < 2; u++) {
            const uint8_t *ql = w->ql + 64 * h, *qh = w->qh + 32 * h;
            const uint8x16_t A = vld1q_u8(ql + 16 * u), Bv = vld1q_u8(ql + 32 + 16 * u), H = vld1q_u8(qh + 16 * u);
            int8x16_t *q = B->q + 8 * h + u;
            q[0] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(A, m4), vshlq_n_u8(vandq_u8(H, m3), 4))), m32);
            q[2] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(Bv, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 2), m3), 4))), m32);
            q[4] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(A, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(H, 4), m3), 4))), m32);
            q[6] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(Bv, 4), vshlq_n_u8(vshrq_n_u8(H, 6), 4))), m32);
        }
    B->d = h2f(w->d);
}

/* Q2_K / Q3_K: elements 128h + 32p + 16u + l are bits 2p, 2p+1 of qs[32h + 16u + l] (q[8h + 2p + u]);
 * Q3_K subtracts 4 where bit 4h + p of hmask[16u + l] is clear */
static inline void kn_dec_q23_K(const uint8_t *qs, const uint8_t *hmask, KnB256 *B) {
    const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
    for (int h = 0; h < 2; h++)
        for (int u = 0; u < 2; u++) {
            const uint8x16_t q = vld1q_u8(qs + 32 * h + 16 * u);
            const uint8x16_t hm = hmask ? vld1q_u8(hmask + 16 * u) : vdupq_n_u8(0);
            for (int p = 0; p < 4; p++) {
                uint8x16_t v = vandq_u8(vshlq_u8(q, vdupq_n_s8((int8_t)(-2 * p))), m3);
                if (hmask) v = vsubq_u8(v, vbicq_u8(four, vtstq_u8(hm, vdupq_n_u8((uint8_t)(1 << (4 * h + p))))));
                B->q[8 * h + 2 * p + u] = vreinterpretq_s8_u8(v);
            }
        }
}
static inline void kn_dec_q2_K(const BlockQ2_K *w, KnB256 *B) {
    for (int i = 0; i < 16; i++) {
        B->sc[i] = w->scales[i] & 15;
        B->mn[i] = (int16_t)(w->scales[i] >> 4);
    }
    kn_dec_q23_K(w->qs, NULL, B);
    B->d = h2f(w->d);
    B->dmin = h2f(w->dmin);
}
static inline void kn_dec_q3_K(const BlockQ3_K *w, KnB256 *B) {
    for (int i = 0; i < 16; i++) B->sc[i] = sa_q3k_scale(i, w->scales) - 32;
    kn_dec_q23_K(w->qs, w->hmask, B);
    B->d = h2f(w->d);
}

/* IQ4_XS: sub-block j is qs[16j ..] as an IQ4_NL block, scale ls_j - 32 */
static inline void kn_dec_iq4_xs(const BlockIQ4_XS *w, KnB256 *B) {
    for (int j = 0; j < 8; j++) {
        kn_iq4_values(w->qs + 16 * j, &B->q[2 * j], &B->q[2 * j + 1]);
        B->sc[2 * j] = B->sc[2 * j + 1] = sa_iq4xs_scale(j, w) - 32;
    }
    B->d = h2f(w->d);
}

/* The reference's float steps, given the block's exact integer sum (and for the K-quants with
 * mins, imin = sum_i mn_i * bsums_i, exact in int32) */
static inline float kn_comb_q8_0(float sum, const KnB32 *B, const BlockQ8_0 *a, int32_t si) {
    return sum + (float)si * (B->d * h2f(a->d));
}
static inline float kn_comb_q8_1(float sum, const KnB32 *B, const BlockQ8_1 *a, int32_t si) {
    return sum + ((float)si * (B->d * h2f(a->d)) + B->m * h2f(a->s));
}
static inline float kn_comb_kmin(float sum, const KnB256 *B, const BlockQ8_K *a, int32_t isum) {
    const int16x8_t m0 = vld1q_s16(B->mn), m1 = vld1q_s16(B->mn + 8);
    const int16x8_t b0 = vld1q_s16(a->bsums), b1 = vld1q_s16(a->bsums + 8);
    int32x4_t im = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    im = vmlal_high_s16(im, m0, b0);
    im = vmlal_s16(im, vget_low_s16(m1), vget_low_s16(b1));
    im = vmlal_high_s16(im, m1, b1);
    const float dd = a->d * B->d, dm = a->d * B->dmin;
    return sum + (dd * (float)isum - dm * (float)vaddvq_s32(im));
}
static inline float kn_comb_k(float sum, const KnB256 *B, const BlockQ8_K *a, int32_t isum) {
    return sum + (a->d * B->d) * (float)isum;
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

/* the exact integer sums of a decoded block with a token's quants */
KN_FN static inline int32_t KN_(isum32)(const KnB32 *B, const int8_t *x) {
    return vaddvq_s32(KN_DOT16(KN_DOT16(vdupq_n_s32(0), B->lo, vld1q_s8(x)), B->hi, vld1q_s8(x + 16)));
}
KN_FN static inline int32_t KN_(isum256)(const KnB256 *B, const int8_t *x) {
    int32x4_t is = vdupq_n_s32(0);
    UNROLL for (int i = 0; i < 16; i++) is = vmlaq_n_s32(is, KN_DOT16(vdupq_n_s32(0), B->q[i], vld1q_s8(x + 16 * i)), B->sc[i]);
    return vaddvq_s32(is);
}

/* dot and GEMM of one row type: WT its block, AT the activation block, BT the decoded block of
 * BLK weights */
#define KN_ROW_KERNELS(TY, WT, AT, BT, BLK, ISUM, COMB)                                                          \
    KN_FN static float KN_(dot_##TY)(int n, const void *wv, const void *av) {                                    \
        const WT *w = wv;                                                                                        \
        const AT *a = av;                                                                                        \
        float sum = 0.0f;                                                                                        \
        for (int b = 0; b < n / (BLK); b++) {                                                                    \
            BT B;                                                                                                \
            kn_dec_##TY(&w[b], &B);                                                                              \
            sum = COMB(sum, &B, &a[b], ISUM(&B, a[b].qs));                                                       \
        }                                                                                                        \
        return sum;                                                                                              \
    }                                                                                                            \
    KN_FN static void KN_(gemm_##TY)(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, \
                                     int T, float *y, size_t ldy) {                                              \
        for (int t0 = 0; t0 < T; t0 += KN_TCHUNK) {                                                              \
            const int nt = T - t0 < KN_TCHUNK ? T - t0 : KN_TCHUNK;                                              \
            for (int r = 0; r < rows; r++) {                                                                     \
                const WT *wr = (const WT *)((const uint8_t *)w + (size_t)r * wstride);                           \
                float acc[KN_TCHUNK] = {0.0f};                                                                   \
                for (int b = 0; b < n / (BLK); b++) {                                                            \
                    BT B;                                                                                        \
                    kn_dec_##TY(&wr[b], &B);                                                                     \
                    for (int t = 0; t < nt; t++) {                                                               \
                        const AT *ab = (const AT *)((const uint8_t *)a + (size_t)(t0 + t) * astride) + b;        \
                        acc[t] = COMB(acc[t], &B, ab, ISUM(&B, ab->qs));                                         \
                    }                                                                                            \
                }                                                                                                \
                for (int t = 0; t < nt; t++) y[(size_t)(t0 + t) * ldy + r] = acc[t];                             \
            }                                                                                                    \
        }                                                                                                        \
    }
KN_ROW_KERNELS(q4_1, BlockQ4_1, BlockQ8_1, KnB32, 32, KN_(isum32), kn_comb_q8_1)
KN_ROW_KERNELS(q5_1, BlockQ5_1, BlockQ8_1, KnB32, 32, KN_(isum32), kn_comb_q8_1)
KN_ROW_KERNELS(q5_0, BlockQ5_0, BlockQ8_0, KnB32, 32, KN_(isum32), kn_comb_q8_0)
KN_ROW_KERNELS(iq4_nl, BlockIQ4_NL, BlockQ8_0, KnB32, 32, KN_(isum32), kn_comb_q8_0)
KN_ROW_KERNELS(q4_K, BlockQ4_K, BlockQ8_K, KnB256, QK_K, KN_(isum256), kn_comb_kmin)
KN_ROW_KERNELS(q5_K, BlockQ5_K, BlockQ8_K, KnB256, QK_K, KN_(isum256), kn_comb_kmin)
KN_ROW_KERNELS(q2_K, BlockQ2_K, BlockQ8_K, KnB256, QK_K, KN_(isum256), kn_comb_kmin)
KN_ROW_KERNELS(q6_K, BlockQ6_K, BlockQ8_K, KnB256, QK_K, KN_(isum256), kn_comb_k)
KN_ROW_KERNELS(q3_K, BlockQ3_K, BlockQ8_K, KnB256, QK_K, KN_(isum256), kn_comb_k)
KN_ROW_KERNELS(iq4_xs, BlockIQ4_XS, BlockQ8_K, KnB256, QK_K, KN_(isum256), kn_comb_k)
#undef KN_ROW_KERNELS

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

/* the includer's parameters, for the next instance */
#undef KN_
#undef KN_FN
#undef KN_DOT16
#undef KN_ACC
#undef KN_ACC_ZERO
#undef KN_STEP
#undef KN_FINISH
