/* kquant_x86.h - the K-quant kernels for x86 (AVX2 instructions), included by avx2.c and by
 * avx512.c: each file compiles them with its own flags (with AVX-512VL the compiler has 32 vector
 * registers, which the multi-token tiles need), as static functions of that table.
 *
 *   kq_quantize_q8_K    activations to Q8_K, byte-identical to sa_quantize_row_q8_K
 *   kq_gemm_q4_Kx8      Q4_K x8 groups (kernels.h: BlockQ4_Kx8) times Q8_K rows
 *   kq_gemm_q6_Kx8      Q6_K x8 groups (BlockQ6_Kx8) times Q8_K rows
 *
 * The GEMMs work like the Q4_0 x8 tiles: each 32-bit lane is one row, the integer sums of a
 * super-block are exact per lane (isum, imin below), and the float part is the reference's per
 * lane, mul / sub / add in its order, so the results equal sa_ref_dot_q4_K / _q6_K bit for bit.
 *
 * The includer provides KQ_BCAST4(p) (4 activation bytes to every 32-bit lane of a ymm register),
 * KQ_NT (tokens per pass in a batch) and the intrinsics. */
#ifndef SALIGN_KQUANT_X86_H
#define SALIGN_KQUANT_X86_H

/* ---- Q8_K activations ----
 * The reference: mx = the first value of largest magnitude, iscale = -127 / mx,
 * q = min(127, rint(iscale * x)), d = 1 / iscale, bsums = sums of each 16. The scale arithmetic is
 * scalar float as there; the products are the same single multiplications, and cvtps2dq rounds
 * half to even as rintf does in the default rounding mode. */
static void kq_quantize_q8_K(const float *x, void *yv, int n) {
    BlockQ8_K *y = yv;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), q127 = _mm256_set1_epi32(127);
    for (int b = 0; b < n / QK_K; b++, x += QK_K) {
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < QK_K / 8; k++) /* NaN lanes keep the running maximum, as fabsf(NaN) > amax is false */
            amax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), amax);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float am = _mm_cvtss_f32(m4);
        memset(&y[b], 0, sizeof y[b]);
        if (am == 0.0f) continue;
        /* the first element whose magnitude is the maximum (the reference keeps the first) */
        const __m256 vam = _mm256_set1_ps(am);
        float mx = 0.0f;
        for (int k = 0; k < QK_K / 8; k++) {
            const int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), vam, _CMP_EQ_OQ));
            if (m) {
                mx = x[8 * k + __builtin_ctz((unsigned)m)];
                break;
            }
        }
        const float iscale = -127.0f / mx;
        const __m256 vis = _mm256_set1_ps(iscale);
        for (int k = 0; k < QK_K / 32; k++) {
            __m256i q[4];
            for (int v = 0; v < 4; v++)
                q[v] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * k + 8 * v), vis)), q127);
            /* bsums of elements 32k..32k+15 and 32k+16..+31 */
            const __m256i s01 = _mm256_add_epi32(q[0], q[1]), s23 = _mm256_add_epi32(q[2], q[3]);
            const __m256i h = _mm256_hadd_epi32(s01, s23); /* [a0+a1 a2+a3 b0+b1 b2+b3 | a4+a5 a6+a7 b4+b5 b6+b7] */
            const __m128i h2 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            y[b].bsums[2 * k] = (int16_t)(_mm_extract_epi32(h2, 0) + _mm_extract_epi32(h2, 1));
            y[b].bsums[2 * k + 1] = (int16_t)(_mm_extract_epi32(h2, 2) + _mm_extract_epi32(h2, 3));
            /* |q| <= 127 (after the min; the low side cannot pass -127), so the packs only narrow */
            const __m256i p = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * k), p);
        }
        y[b].d = 1.0f / iscale;
    }
}

/* ---- Q4_K x8 ----
 * Per super-block and 8 rows: the scale bytes decode to SC0/MN0 (sub-blocks 0-3) and SC1/MN1
 * (4-7), bytes [i/4 half][j%4][i%4]; a byte shuffle makes (sc, sc) int16 pairs per row lane.
 * For sub-block pair p the 8 chunks k give 8 maddubs of nibbles (0..15) with 4 broadcast
 * activation bytes, summed in int16 (each at most 2*15*127 = 3810, 8 of them 30480 < 32767),
 * then madd with (sc, sc) gives sc * (sub-block dot) in int32, exact.
 * imin = sum_j mn_j * bsum_j: madd of (mn_2p, mn_2p+1) with the activation's pair of sums. */
static const int8_t kq_dup_idx[4][32] = {
#define KQ_DUP(j) {4*j, -1, 4*j, -1, 4*j+1, -1, 4*j+1, -1, 4*j+2, -1, 4*j+2, -1, 4*j+3, -1, 4*j+3, -1, \
                   4*j, -1, 4*j, -1, 4*j+1, -1, 4*j+1, -1, 4*j+2, -1, 4*j+2, -1, 4*j+3, -1, 4*j+3, -1}
    KQ_DUP(0), KQ_DUP(1), KQ_DUP(2), KQ_DUP(3)
#undef KQ_DUP
};
/* (byte of sub-block j, byte of sub-block j+1) per lane, j = 0 or 2 */
static const int8_t kq_pair_idx[2][32] = {
#define KQ_PAIR(j) {4*j, -1, 4*j+4, -1, 4*j+1, -1, 4*j+5, -1, 4*j+2, -1, 4*j+6, -1, 4*j+3, -1, 4*j+7, -1, \
                    4*j, -1, 4*j+4, -1, 4*j+1, -1, 4*j+5, -1, 4*j+2, -1, 4*j+6, -1, 4*j+3, -1, 4*j+7, -1}
    KQ_PAIR(0), KQ_PAIR(2)
#undef KQ_PAIR
};
/* byte of sub-block j at the top of each 32-bit lane (then an arithmetic shift sign-extends) */
static const int8_t kq_top_idx[4][32] = {
#define KQ_TOP(j) {-1, -1, -1, 4*j, -1, -1, -1, 4*j+1, -1, -1, -1, 4*j+2, -1, -1, -1, 4*j+3, \
                   -1, -1, -1, 4*j, -1, -1, -1, 4*j+1, -1, -1, -1, 4*j+2, -1, -1, -1, 4*j+3}
    KQ_TOP(0), KQ_TOP(1), KQ_TOP(2), KQ_TOP(3)
#undef KQ_TOP
};
static inline __m256i kq_idx(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
/* Decode prefetch spread over the block's arithmetic: kq_pf_begin decides once per block whether
 * the block sa_pf_ahead further on lies inside the caller's run (then KQ_PF_LINE prefetches its
 * cache line i from inside the inner loop), else it prefetches what is in range at once as
 * sa_prefetch_ahead does. Spreading the lines helped where issuing them together did not: from
 * memory (CPU time) the Q6_K T = 1 tile read 9.3 GB/s with all 27 lines at the block's start
 * unrolled, 12 with the checked loop at the start, and more with one or two lines per chunk. */
static inline __attribute__((always_inline)) const char *kq_pf_begin(const void *blk, size_t bytes, const char *end) {
    if (!end || !sa_pf_ahead) return NULL;
    const char *p = (const char *)blk + sa_pf_ahead;
    if (p + bytes <= end) {
        sa_prefetch_lead(blk, sa_pf_ahead, bytes, end);
        return p;
    }
    sa_prefetch_ahead(blk, bytes, end);
    return NULL;
}
#define KQ_PF_LINE(pp, i, bytes) \
    do { \
        if ((pp) && (size_t)(i) * 64 < (bytes)) __builtin_prefetch((pp) + 64 * (size_t)(i), 0, 3); \
    } while (0)

static inline __attribute__((always_inline)) void q4Kx8_tile(int nb, const BlockQ4_Kx8 *w, const BlockQ8_K *a, const int NT,
                                                             float *y, size_t ldy, const char *pf_end) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const char *pf = kq_pf_begin(w + b, sizeof *w, pf_end);
        const __m256i V0 = _mm256_loadu_si256((const __m256i *)w[b].scl);
        const __m256i V1 = _mm256_loadu_si256((const __m256i *)(w[b].scl + 32));
        const __m256i H = _mm256_loadu_si256((const __m256i *)w[b].sch);
        const __m256i SC0 = _mm256_or_si256(_mm256_and_si256(V0, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
        const __m256i MN0 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(V0, 4), m4),
                                            _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
        const __m256i SC1 = _mm256_or_si256(_mm256_and_si256(V1, m4), _mm256_and_si256(H, m30));
        const __m256i MN1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(V1, 4), m4),
                                            _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
        const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].dmin));
        __m256 mt[4];
        __m256i isum[4];
        /* the mins first: dm * imin per token, kept as a float */
        {
            const __m256i mp0 = _mm256_shuffle_epi8(MN0, kq_idx(kq_pair_idx[0]));
            const __m256i mp1 = _mm256_shuffle_epi8(MN0, kq_idx(kq_pair_idx[1]));
            const __m256i mp2 = _mm256_shuffle_epi8(MN1, kq_idx(kq_pair_idx[0]));
            const __m256i mp3 = _mm256_shuffle_epi8(MN1, kq_idx(kq_pair_idx[1]));
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const BlockQ8_K *at = a + (size_t)t * nb + b;
                /* bsum_j = bsums[2j] + bsums[2j+1] (at most 32*127: no overflow), as int16 pairs */
                const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)at->bsums),
                                                  _mm_loadu_si128((const __m128i *)(at->bsums + 8)));
                const __m256i B = _mm256_broadcastsi128_si256(bs);
                __m256i im = _mm256_madd_epi16(mp0, _mm256_shuffle_epi32(B, 0x00));
                im = _mm256_add_epi32(im, _mm256_madd_epi16(mp1, _mm256_shuffle_epi32(B, 0x55)));
                im = _mm256_add_epi32(im, _mm256_madd_epi16(mp2, _mm256_shuffle_epi32(B, 0xAA)));
                im = _mm256_add_epi32(im, _mm256_madd_epi16(mp3, _mm256_shuffle_epi32(B, 0xFF)));
                const __m256 dm = _mm256_mul_ps(_mm256_set1_ps(at->d), dmw);
                mt[t] = _mm256_mul_ps(dm, _mm256_cvtepi32_ps(im));
                isum[t] = _mm256_setzero_si256();
            }
        }
#pragma GCC unroll 1
        for (int p = 0; p < 4; p++) {
            const __m256i SCV = p < 2 ? SC0 : SC1;
            const uint8_t *qp = w[b].qs + 256 * p;
#ifdef KQ_VNNI
            /* vpdpbusd sums the nibble products straight into int32 (no int16 stage), and the
             * scale is one vpmulld per sub-block and token */
            const __m256i sclo = _mm256_srli_epi32(_mm256_shuffle_epi8(SCV, kq_idx(kq_top_idx[2 * (p & 1)])), 24);
            const __m256i schi = _mm256_srli_epi32(_mm256_shuffle_epi8(SCV, kq_idx(kq_top_idx[2 * (p & 1) + 1])), 24);
            __m256i slo[4], shi[4];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                /* the high nibbles stay in place (16 * level, at most 240: vpdpbusd's unsigned
                 * operand takes it), one AND instead of shift + AND; the sums are then multiples
                 * of 16 and an arithmetic shift divides them exactly */
                if (k < 5) KQ_PF_LINE(pf, 5 * p + k, sizeof *w); /* 20 >= the block's 18 lines */
                const __m256i v = _mm256_loadu_si256((const __m256i *)(qp + 32 * k));
                const __m256i lo = _mm256_and_si256(v, m4), hi16 = _mm256_andnot_si256(m4, v);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const int8_t *x = a[(size_t)t * nb + b].qs + 64 * p + 4 * k;
                    slo[t] = _mm256_dpbusd_epi32(slo[t], lo, KQ_BCAST4(x));
                    shi[t] = _mm256_dpbusd_epi32(shi[t], hi16, KQ_BCAST4(x + 32));
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++)
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_mullo_epi32(slo[t], sclo),
                                                                     _mm256_mullo_epi32(_mm256_srai_epi32(shi[t], 4), schi)));
#else
            const __m256i sclo = _mm256_shuffle_epi8(SCV, kq_idx(kq_dup_idx[2 * (p & 1)]));
            const __m256i schi = _mm256_shuffle_epi8(SCV, kq_idx(kq_dup_idx[2 * (p & 1) + 1]));
            __m256i slo[4], shi[4];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                if (k < 5) KQ_PF_LINE(pf, 5 * p + k, sizeof *w);
                const __m256i v = _mm256_loadu_si256((const __m256i *)(qp + 32 * k));
                const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const int8_t *x = a[(size_t)t * nb + b].qs + 64 * p + 4 * k;
                    slo[t] = _mm256_add_epi16(slo[t], _mm256_maddubs_epi16(lo, KQ_BCAST4(x)));
                    shi[t] = _mm256_add_epi16(shi[t], _mm256_maddubs_epi16(hi, KQ_BCAST4(x + 32)));
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++)
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(slo[t], sclo), _mm256_madd_epi16(shi[t], schi)));
#endif
        }
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 dd = _mm256_mul_ps(_mm256_set1_ps(a[(size_t)t * nb + b].d), dw);
            acc[t] = _mm256_add_ps(acc[t], _mm256_sub_ps(_mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum[t])), mt[t]));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* ---- Q6_K x8 ----
 * Levels q = 0..63 unsigned (the -32 is applied through the activation sums: sum sc*(q-32)*x =
 * sum sc*q*x - 32 * sum sc*bsum16, all exact integers). maddubs of levels with activations: each
 * int16 at most 2*63*127 = 16002, so two chunks are summed in int16 (32004) before madd with
 * (sc, sc) int16 pairs; sc is signed, sign-extended from its byte by the shuffle + arithmetic shift. */
static inline __attribute__((always_inline)) __m256i kq_sc_dup(__m256i V, int s4) {
    return _mm256_srai_epi16(_mm256_slli_epi16(_mm256_shuffle_epi8(V, kq_idx(kq_dup_idx[s4])), 8), 8);
}
static inline __attribute__((always_inline)) __m256i kq_sc_pair(__m256i V, int s4) {
    return _mm256_srai_epi16(_mm256_slli_epi16(_mm256_shuffle_epi8(V, kq_idx(kq_pair_idx[s4 / 2])), 8), 8);
}

static inline __attribute__((always_inline)) void q6Kx8_tile(int nb, const BlockQ6_Kx8 *w, const BlockQ8_K *a, const int NT,
                                                             float *y, size_t ldy, const char *pf_end) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const char *pf = kq_pf_begin(w + b, sizeof *w, pf_end);
        __m256i isum[4];
        /* -32 * sum_s sc_s * bsums_s: madd of (sc_s, sc_s+1) pairs with the token's bsum pairs */
        {
            __m256i sp[8];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const __m256i V = _mm256_loadu_si256((const __m256i *)(w[b].sc + 32 * q));
                sp[2 * q] = kq_sc_pair(V, 0);
                sp[2 * q + 1] = kq_sc_pair(V, 2);
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const int16_t *bs = a[(size_t)t * nb + b].bsums;
                __m256i c = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int s = 0; s < 8; s++) {
                    int32_t pr;
                    memcpy(&pr, bs + 2 * s, 4);
                    c = _mm256_add_epi32(c, _mm256_madd_epi16(sp[s], _mm256_set1_epi32(pr)));
                }
                isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(c, 5));
            }
        }
#ifdef KQ_VNNI
        /* vpdpbusd: a sub-block's four chunks summed straight into int32, then one vpmulld by its
         * sign-extended scale per stream and token */
#pragma GCC unroll 1
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 1
            for (int cq = 0; cq < 2; cq++) { /* chunks c = 4cq .. 4cq+3: sub-blocks 8h + 2u + cq */
                __m256i s32[4][4];
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) s32[t][0] = s32[t][1] = s32[t][2] = s32[t][3] = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int e = 0; e < 4; e++) {
                    const int c = 4 * cq + e;
                    KQ_PF_LINE(pf, 2 * (8 * h + c), sizeof *w); /* 32 >= the block's 27 lines */
                    KQ_PF_LINE(pf, 2 * (8 * h + c) + 1, sizeof *w);
                    const __m256i A = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * (8 * h + c)));
                    const __m256i B = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * (8 * h + c) + 32));
                    const __m256i H = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * (8 * h + c)));
                    __m256i v[4];
                    v[0] = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
                    v[1] = _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
                    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_and_si256(H, m30));
                    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
#pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) {
                        const int8_t *x = a[(size_t)t * nb + b].qs + 128 * h + 4 * c;
#pragma GCC unroll 4
                        for (int u = 0; u < 4; u++) s32[t][u] = _mm256_dpbusd_epi32(s32[t][u], v[u], KQ_BCAST4(x + 32 * u));
                    }
                }
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) {
                    const int s = 8 * h + 2 * u + cq;
                    const __m256i V = _mm256_loadu_si256((const __m256i *)(w[b].sc + 32 * (s / 4)));
                    const __m256i SC = _mm256_srai_epi32(_mm256_shuffle_epi8(V, kq_idx(kq_top_idx[s % 4])), 24);
#pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(s32[t][u], SC));
                }
            }
        }
#else
#pragma GCC unroll 1
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 1
            for (int cp = 0; cp < 4; cp++) { /* chunks c = 2cp, 2cp+1: sub-blocks 8h + 2u + cp/2 */
                __m256i s16[4][4];
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) s16[t][0] = s16[t][1] = s16[t][2] = s16[t][3] = _mm256_setzero_si256();
#pragma GCC unroll 2
                for (int e = 0; e < 2; e++) {
                    const int c = 2 * cp + e;
                    KQ_PF_LINE(pf, 2 * (8 * h + c), sizeof *w);
                    KQ_PF_LINE(pf, 2 * (8 * h + c) + 1, sizeof *w);
                    const __m256i A = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * (8 * h + c)));
                    const __m256i B = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * (8 * h + c) + 32));
                    const __m256i H = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * (8 * h + c)));
                    __m256i v[4];
                    v[0] = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
                    v[1] = _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
                    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_and_si256(H, m30));
                    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
#pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) {
                        const int8_t *x = a[(size_t)t * nb + b].qs + 128 * h + 4 * c;
#pragma GCC unroll 4
                        for (int u = 0; u < 4; u++)
                            s16[t][u] = _mm256_add_epi16(s16[t][u], _mm256_maddubs_epi16(v[u], KQ_BCAST4(x + 32 * u)));
                    }
                }
                /* sub-block 8h + 2u + cp/2 of scale vector (8h + 2u + cp/2) / 4, byte (2u + cp/2) % 4 */
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) {
                    const int s = 8 * h + 2 * u + cp / 2;
                    const __m256i SCD = kq_sc_dup(_mm256_loadu_si256((const __m256i *)(w[b].sc + 32 * (s / 4))), s % 4);
#pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16[t][u], SCD));
                }
            }
        }
#endif
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 dd = _mm256_mul_ps(_mm256_set1_ps(a[(size_t)t * nb + b].d), dw);
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum[t])));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Decode (T = 1) and small batches prefetch on their first pass over each group (SA_PF_MAX_T);
 * tokens go KQ_NT at a time (the includer's choice: register count). */
#define KQ_GEMM_X8(name, tile, BlockT)                                                                            \
    static void name(int nb, int ng, const void *wv, const void *av, int T, float *y, size_t ldy) {             \
        const BlockT *w = wv;                                                                                    \
        const BlockQ8_K *a = av;                                                                                 \
        const char *pf_end = T <= SA_PF_MAX_T ? (const char *)(w + (size_t)ng * nb) : NULL;                      \
        for (int g = 0; g < ng; g++) {                                                                           \
            const BlockT *wg = w + (size_t)g * nb;                                                               \
            float *yg = y + 8 * g;                                                                               \
            int t = 0;                                                                                           \
            if (T == 1) {                                                                                        \
                tile(nb, wg, a, 1, yg, ldy, pf_end);                                                             \
                continue;                                                                                        \
            }                                                                                                    \
            for (; t + KQ_NT <= T; t += KQ_NT)                                                                   \
                tile(nb, wg, a + (size_t)t * nb, KQ_NT, yg + t * ldy, ldy, t == 0 ? pf_end : NULL);              \
            switch (T - t) {                                                                                     \
            case 3: tile(nb, wg, a + (size_t)t * nb, 3, yg + t * ldy, ldy, t == 0 ? pf_end : NULL); break;     \
            case 2: tile(nb, wg, a + (size_t)t * nb, 2, yg + t * ldy, ldy, t == 0 ? pf_end : NULL); break;     \
            case 1: tile(nb, wg, a + (size_t)t * nb, 1, yg + t * ldy, ldy, t == 0 ? pf_end : NULL); break;     \
            default: break;                                                                                      \
            }                                                                                                    \
        }                                                                                                        \
    }

#endif
