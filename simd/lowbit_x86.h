/* lowbit_x86.h - x86 kernels for Q2_K, Q3_K and IQ4_XS (Q8_K activations), the low-bit types
 * that stay in ggml's row layout. Included by avx2.c and avx512.c after qtypes_x86.h (its
 * qt_hsum_i32 / qt_reduce4 / qt_reduce8 / qt_nibbles), each compiling them with its own flags as
 * static functions of its table; with QT_AVX512 defined (avx512.c: AVX-512BW/VL and VNNI) the byte
 * dots are vpdpbusd (below: how, and what it measured).
 *
 * Each computes the scalar reference's integer sums exactly and combines them in float in the
 * reference's order with the same operations, so every value equals sa_ref_dot_* bit for bit
 * (tests/test_kernels.c: kernels_block_types, _any_bits, _long_batch; the AVX-512 code also as
 * the SIMDe-emulated table avx512_emu).
 *
 * AVX2: int8 products summed in pairs by maddubs (at most 2 * 127 * 127 in magnitude), times the
 * int16 scale of each 16 or 32 weights by madd, then int32. Q2_K's levels and Q3_K's q + 4
 * (0..7, the offset out through Q8_K's bsums) go into maddubs unsigned; IQ4_XS's table values
 * (+128 could saturate a maddubs pair) move their sign onto the activations.
 * AVX-512 VNNI: vpdpbusd sums four u8 x s8 products into an int32 lane (no int16 step, no
 * saturation), so
 *   - the one-row dots (decode) take unsigned levels (Q2_K as they are, Q3_K + 4, IQ4_XS's table
 *     value + 128), one vpdpbusd per 32 weights, the offsets out through the bsums, and the
 *     scales applied once per super-block to the sub-block totals (hadd, vpmulld). A zmm IQ4_XS
 *     dot (two sub-blocks per vpdpbusd, vpmulld on 16 lanes) measured 0.138 against 0.143 ms and
 *     needs intrinsics SIMDe 0.7.4 lacks: not kept;
 *   - the GEMMs (prefill) decode a row's super-block once for all tokens with the scale already
 *     multiplied into the levels where the product fits a byte (Q2_K: q sc <= 45, Q3_K:
 *     |q| |sc| <= 4 * 32 = 128 with the sign on the activations), so what remains per token and 64
 *     weights is a load, a masked negation (Q3_K) and one zmm vpdpbusd; IQ4_XS's products with
 *     its scales (up to 127 * 32) do not fit a byte: maddubs then vpdpwssd with the scales.
 * The bsums offsets rely on the activation blocks' bsums being their quants' sums of 16, as
 * kq_quantize_q8_K / sa_ref_act_q8_K write them (the reference uses them for Q2_K's mins too).
 *
 * Measured (tools/bench/kernbench, one thread, CPU time, best of 31 / 7, Zen 5 EPYC VM), ms:
 *                       2048 x 2048 decode    16384 x 8192 decode   2048 x 2048, 64 tokens
 *                       AVX2    AVX-512       AVX2    AVX-512       AVX2    AVX-512
 *     Q2_K              0.162   0.124         5.23    4.01          6.09    3.95
 *     Q3_K              0.163   0.140         5.26    4.50          5.68    4.12
 *     IQ4_XS            0.212   0.142         6.86    4.65          6.69    4.33
 * (before: both tables ran the AVX2 kernels, 0.162 / 0.475 / 0.237 ms decode and 7.9 / 8.7 / 8.3
 * ms for the 64 tokens). The AVX-512 table keeps them: faster in every column. */
#ifndef SALIGN_LOWBIT_X86_H
#define SALIGN_LOWBIT_X86_H

#define LB_ROW_PTR(T_, base, stride, i) ((const T_ *)((const uint8_t *)(base) + (size_t)(i) * (stride)))
/* One token (decode): the dot straight from the blocks is 15-25% faster than decoding them into
 * a per-block struct first (2048 x 2048, one thread, AVX2, measured on the VM of the time); the same
 * values either way. */
#define LB_GEMM_ONE_TOKEN(dotfn)                                                                  \
    if (T == 1) {                                                                                 \
        for (int r = 0; r < rows; r++) y[r] = dotfn(n, (const uint8_t *)w + (size_t)r * wstride, a); \
        return;                                                                                   \
    }

/* int16 pair sums of w * a for signed bytes (w in [-127, 127], a in [-127, 127]): w's sign moved
 * onto a so that maddubs sees |w| unsigned */
static inline __m256i lb_mul_i8(__m256i w, __m256i a) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

/* 16 bytes of IQ4 nibbles -> the 32 table values in element order (low nibbles 0..15, high 16..31):
 * the 16-entry table fits one pshufb */
static inline __m256i lb_iq4_values(const uint8_t *qs) {
    const __m128i tbl = _mm_loadu_si128((const __m128i *)sa_iq4nl_values), m = _mm_set1_epi8(15);
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_shuffle_epi8(tbl, _mm_and_si128(_mm_srli_epi16(q, 4), m)),
                            _mm_shuffle_epi8(tbl, _mm_and_si128(q, m)));
}

/* Q3_K's sixteen 6-bit scales minus 32 (sa_q3k_scale - 32), as signed bytes in sub-block order:
 * the low nibbles of bytes 0..7, then their high nibbles; the top two bits of scale j are bits
 * 2(j/4) of byte 8 + j%4 */
static inline __m128i lb_q3k_scales(const uint8_t *s) {
    uint64_t l;
    memcpy(&l, s, 8);
    const uint32_t h = qt_ld32(s + 8);
    const uint64_t m4 = 0x0F0F0F0F0F0F0F0Full;
    const uint64_t h0 = ((uint64_t)(h & 0x03030303u) | (uint64_t)(h >> 2 & 0x03030303u) << 32) << 4;
    const uint64_t h1 = ((uint64_t)(h >> 4 & 0x03030303u) | (uint64_t)(h >> 6 & 0x03030303u) << 32) << 4;
    return _mm_sub_epi8(_mm_set_epi64x((long long)((l >> 4 & m4) | h1), (long long)((l & m4) | h0)), _mm_set1_epi8(32));
}

/* IQ4_XS's eight 6-bit scales minus 32 (sa_iq4xs_scale - 32), as signed bytes: nibble j of
 * scales_l and bit pair j of scales_h spread to byte j */
static inline uint64_t lb_iq4xs_scales(const BlockIQ4_XS *w) {
    uint64_t l = qt_ld32(w->scales_l), h = w->scales_h;
    l = (l | l << 16) & 0x0000FFFF0000FFFFull;
    l = (l | l << 8) & 0x00FF00FF00FF00FFull;
    l = (l | l << 4) & 0x0F0F0F0F0F0F0F0Full;
    h = (h | h << 24) & 0x000000FF000000FFull;
    h = (h | h << 12) & 0x000F000F000F000Full;
    h = (h | h << 6) & 0x0303030303030303ull;
    /* minus 32 per byte, without borrows between bytes: each byte lifted by 128 first */
    return (((l | h << 4) | 0x8080808080808080ull) - 0x2020202020202020ull) ^ 0x8080808080808080ull;
}

/* the scales of sub-blocks 2k (low 128-bit lane) and 2k+1 (high) in every int16, from the 16 scale
 * bytes in both lanes of sb: a pshufb picks byte 2k / 2k+1 into each int16's low byte (zero-
 * extended: the unsigned scales of Q2_K), lb_pair16 sign-extends it (Q3_K's) */
static inline __m256i lb_pair16u(__m256i sb, int k) {
    const __m256i idx = _mm256_add_epi16(_mm256_setr_epi16(-32768, -32768, -32768, -32768, -32768, -32768, -32768, -32768,
                                                           -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767),
                                         _mm256_set1_epi16((int16_t)(2 * k)));
    return _mm256_shuffle_epi8(sb, idx);
}
static inline __m256i lb_pair16(__m256i sb, int k) {
    return _mm256_srai_epi16(_mm256_slli_epi16(lb_pair16u(sb, k), 8), 8);
}

/* Q3_K's u = q + 4 for the 32 weights of bit pair i in half h (k = 4h + i): the two bits of q,
 * plus 4 where bit k of the hmask byte is set (moved to bit 2: the 16-bit shifts move no bit out of
 * its byte for k < 8) */
static inline __m256i lb_q3_u(__m256i q, __m256i hm, int i, int k) {
    const __m256i hb = k >= 2 ? _mm256_srli_epi16(hm, k - 2) : _mm256_slli_epi16(hm, 2 - k);
    return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * i), _mm256_set1_epi8(3)),
                           _mm256_and_si256(hb, _mm256_set1_epi8(4)));
}

enum { LB_Q2_K, LB_Q3_K, LB_IQ4_XS };

#ifndef QT_AVX512
/* ======== AVX2 ======== */

static float lb_dot_iq4_xs(int n, const void *wv, const void *av) {
    const BlockIQ4_XS *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int8_t sc[8];
        const uint64_t s8 = lb_iq4xs_scales(&w[b]);
        memcpy(sc, &s8, 8);
        __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m256i p = lb_mul_i8(lb_iq4_values(w[b].qs + 16 * j), _mm256_loadu_si256((const __m256i *)(a[b].qs + 32 * j)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(sc[j])));
        }
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)qt_hsum_i32(acc);
    }
    return sum;
}

/* Q3_K: per half h and bit pair p, 32 weights (two 16-weight sub-blocks, one per 128-bit lane):
 * u = q + 4 (0..7, lb_q3_u) straight into maddubs, isum = sum_j sc_j u_j.x_j - 4 sum_j sc_j
 * bsums_j (the sign juggling of signed levels costs more: 0.30 -> 0.26 ms for 2048 x 2048 on a
 * Zen 5 core; unrolled, the shifts immediate: 0.16 ms) */
static float lb_dot_q3_K(int n, const void *wv, const void *av) {
    const BlockQ3_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        const __m128i sc = lb_q3k_scales(w[b].scales);
        const __m256i sb = _mm256_broadcastsi128_si256(sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w[b].hmask);
        __m256i acc = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), _mm256_loadu_si256((const __m256i *)a[b].bsums)), 2);
        acc = _mm256_sub_epi32(_mm256_setzero_si256(), acc);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * h));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                const int k = 4 * h + i;
                const __m256i pr = _mm256_maddubs_epi16(lb_q3_u(q, hm, i, k), _mm256_loadu_si256((const __m256i *)(a[b].qs + 32 * k)));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pr, lb_pair16(sb, k)));
            }
        }
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)qt_hsum_i32(acc);
    }
    return sum;
}

/* Q2_K: levels 0..3 are unsigned, so maddubs takes them as they are; the mins meet the
 * activation sums of each 16 (Q8_K's bsums) in one madd */
static float lb_dot_q2_K(int n, const void *wv, const void *av) {
    const BlockQ2_K *w = wv;
    const BlockQ8_K *a = av;
    const __m256i three = _mm256_set1_epi8(3);
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[b].scales);
        const __m256i sc16 = _mm256_cvtepu8_epi16(sc8);
        int16_t sc[16]; /* (two int16 broadcasts from memory per 32 weights: 10% faster here than a pshufb) */
        _mm256_storeu_si256((__m256i *)sc, _mm256_and_si256(sc16, _mm256_set1_epi16(15)));
        const __m256i mins = _mm256_srli_epi16(sc16, 4);
        const int32_t imin = qt_hsum_i32(_mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)a[b].bsums)));
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) { /* (not unrolled: unrolled it took 0.19 ms instead of 0.16) */
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * h));
            for (int p = 0; p < 4; p++) {
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), three);
                const __m256i pr = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a[b].qs + 128 * h + 32 * p)));
                const int j = 8 * h + 2 * p;
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[j + 1]), _mm_set1_epi16(sc[j]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pr, s));
            }
        }
        const int32_t isum = qt_hsum_i32(acc);
        const float dd = a[b].d * sa_fp16_lut(w[b].d), dm = a[b].d * sa_fp16_lut(w[b].dmin);
        sum = sum + (dd * (float)isum - dm * (float)imin);
    }
    return sum;
}

/* The GEMMs' super-block, decoded once per row for all tokens (the driver below): unsigned
 * levels (Q2_K's as they are, Q3_K's + 4 as in its dot) or |q| and q for the sign (IQ4_XS), and
 * the int16 scale of each 16 (one per 128-bit lane) or 32 weights, so per token and 32 weights
 * what remains is maddubs, madd, add (and IQ4_XS's sign). */
typedef struct {
    __m256i q[8], sgn[8], sc[8];
    __m256i mins; /* Q2_K: the 16 mins as int16; Q3_K: the 16 scales */
    float dw, dmw;
} LbBlock;

static inline __attribute__((always_inline)) void lb_decode(const int kind, const uint8_t *blk, LbBlock *B) {
    if (kind == LB_Q2_K) {
        const BlockQ2_K *w = (const BlockQ2_K *)blk;
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w->scales);
        const __m256i sb = _mm256_broadcastsi128_si256(_mm_and_si128(sc8, _mm_set1_epi8(15)));
        B->mins = _mm256_srli_epi16(_mm256_cvtepu8_epi16(sc8), 4);
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * h));
            for (int i = 0; i < 4; i++) {
                B->q[4 * h + i] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * i), _mm256_set1_epi8(3));
                B->sc[4 * h + i] = lb_pair16u(sb, 4 * h + i);
            }
        }
        B->dw = sa_fp16_lut(w->d), B->dmw = sa_fp16_lut(w->dmin);
    } else if (kind == LB_Q3_K) {
        const BlockQ3_K *w = (const BlockQ3_K *)blk;
        const __m128i sc = lb_q3k_scales(w->scales);
        const __m256i sb = _mm256_broadcastsi128_si256(sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w->hmask);
        B->mins = _mm256_cvtepi8_epi16(sc);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * h));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                const int k = 4 * h + i;
                B->q[k] = lb_q3_u(q, hm, i, k);
                B->sc[k] = lb_pair16(sb, k);
            }
        }
        B->dw = sa_fp16_lut(w->d);
    } else {
        const BlockIQ4_XS *w = (const BlockIQ4_XS *)blk;
        int8_t sc[8];
        const uint64_t s8 = lb_iq4xs_scales(w);
        memcpy(sc, &s8, 8);
        for (int k = 0; k < 8; k++) {
            B->sgn[k] = lb_iq4_values(w->qs + 16 * k);
            B->q[k] = _mm256_sign_epi8(B->sgn[k], B->sgn[k]);
            B->sc[k] = _mm256_set1_epi16(sc[k]);
        }
        B->dw = sa_fp16_lut(w->d);
    }
}

/* one token's isum of the super-block as eight int32 partial sums (Q3_K: minus 4 sum_j sc_j bsums_j) */
static inline __attribute__((always_inline)) __m256i lb_tok(const int kind, const LbBlock *B, const BlockQ8_K *ab) {
    __m256i acc = _mm256_setzero_si256();
    if (kind == LB_Q3_K)
        acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(_mm256_madd_epi16(B->mins, _mm256_loadu_si256((const __m256i *)ab->bsums)), 2));
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(ab->qs + 32 * k));
        if (kind == LB_IQ4_XS) x = _mm256_sign_epi8(x, B->sgn[k]);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(B->q[k], x), B->sc[k]));
    }
    return acc;
}

#else
/* ======== AVX-512 VNNI ======== */

static inline int32_t lb_hsum512(__m512i v) {
    return qt_hsum_i32(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}

/* p[k] (k < 8) = the vpdpbusd sums of 32 weights = two 16-weight sub-blocks 2k (lanes 0-3) and
 * 2k+1 (lanes 4-7) -> sum_j s_j * (sub-block j's total), s = the 16 scales as signed bytes: two
 * levels of hadd leave sub-blocks [0 2 4 6 | 1 3 5 7] and [8 10 12 14 | 9 11 13 15], which meet
 * the scales in that order in two vpmulld */
static inline int32_t lb_scale16(const __m256i p[8], __m128i s) {
    const __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    const __m128i so = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15));
    return qt_hsum_i32(_mm256_add_epi32(_mm256_mullo_epi32(g0, _mm256_cvtepi8_epi32(so)),
                                        _mm256_mullo_epi32(g1, _mm256_cvtepi8_epi32(_mm_srli_si128(so, 8)))));
}

/* Q2_K: the levels 0..3 as they are */
static float lb_dot_q2_K(int n, const void *wv, const void *av) {
    const BlockQ2_K *w = wv;
    const BlockQ8_K *a = av;
    const __m256i three = _mm256_set1_epi8(3), zero = _mm256_setzero_si256();
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[b].scales);
        const __m256i mins = _mm256_srli_epi16(_mm256_cvtepu8_epi16(sc8), 4);
        const int32_t imin = qt_hsum_i32(_mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)a[b].bsums)));
        __m256i p[8];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * h));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                p[4 * h + i] = _mm256_dpbusd_epi32(zero, _mm256_and_si256(_mm256_srli_epi16(q, 2 * i), three),
                                                   _mm256_loadu_si256((const __m256i *)(a[b].qs + 128 * h + 32 * i)));
        }
        const int32_t isum = lb_scale16(p, _mm_and_si128(sc8, _mm_set1_epi8(15)));
        const float dd = a[b].d * sa_fp16_lut(w[b].d), dm = a[b].d * sa_fp16_lut(w[b].dmin);
        sum = sum + (dd * (float)isum - dm * (float)imin);
    }
    return sum;
}

/* Q3_K: u = q + 4 = the two bits + 4 where the hmask bit is set (0..7); isum = sum_j sc_j u_j.x_j
 * - 4 sum_j sc_j bsums_j */
static float lb_dot_q3_K(int n, const void *wv, const void *av) {
    const BlockQ3_K *w = wv;
    const BlockQ8_K *a = av;
    const __m256i zero = _mm256_setzero_si256();
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        const __m128i sc = lb_q3k_scales(w[b].scales);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w[b].hmask);
        __m256i p[8];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * h));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                const int k = 4 * h + i;
                p[k] = _mm256_dpbusd_epi32(zero, lb_q3_u(q, hm, i, k), _mm256_loadu_si256((const __m256i *)(a[b].qs + 32 * k)));
            }
        }
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), _mm256_loadu_si256((const __m256i *)a[b].bsums));
        const int32_t isum = lb_scale16(p, sc) - 4 * qt_hsum_i32(corr);
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)isum;
    }
    return sum;
}

/* IQ4_XS: u = the table value + 128 (1..241); isum = sum_k sc_k (u_k.x_k - 128 (bsums_2k + bsums_2k+1)) */
static float lb_dot_iq4_xs(int n, const void *wv, const void *av) {
    const BlockIQ4_XS *w = wv;
    const BlockQ8_K *a = av;
    const __m256i tbl = _mm256_broadcastsi128_si256(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)sa_iq4nl_values), _mm_set1_epi8(-128)));
    const __m256i zero = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1);
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        __m256i p[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            p[k] = _mm256_dpbusd_epi32(zero, _mm256_shuffle_epi8(tbl, qt_nibbles(w[b].qs + 16 * k)),
                                       _mm256_loadu_si256((const __m256i *)(a[b].qs + 32 * k)));
        const __m256i s32 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[b].bsums), ones);
        const __m256i sc = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128((long long)lb_iq4xs_scales(&w[b])));
        const int32_t isum = qt_hsum_i32(_mm256_mullo_epi32(_mm256_sub_epi32(qt_reduce8(p), _mm256_slli_epi32(s32, 7)), sc));
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)isum;
    }
    return sum;
}

/* The GEMMs' super-block, decoded once per row for all tokens (the driver below): four zmm of
 * unsigned byte multipliers (64 weights each) and the masks of the activations to negate, so per
 * token and 64 weights what remains is a load, a masked negation (Q3_K, IQ4_XS) and one vpdpbusd
 * (IQ4_XS: maddubs and vpdpwssd). */
typedef struct {
    __m512i u[4], sc[4]; /* sc: IQ4_XS's int16 scales (the 32 weights of each 256-bit half) */
    __mmask64 neg[4];
    __m256i mins; /* Q2_K: the 16 mins as int16 */
    float dw, dmw;
} LbBlock;

static inline __m512i lb_join(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __attribute__((always_inline)) void lb_decode(const int kind, const uint8_t *blk, LbBlock *B) {
    if (kind == LB_Q2_K) { /* u = q * sc (<= 3 * 15): vpmullw of the level bytes by the int16 scale
                            * leaves each product in its byte (every product < 256: no carry) */
        const BlockQ2_K *w = (const BlockQ2_K *)blk;
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w->scales);
        const __m256i sb = _mm256_broadcastsi128_si256(_mm_and_si128(sc8, _mm_set1_epi8(15)));
        B->mins = _mm256_srli_epi16(_mm256_cvtepu8_epi16(sc8), 4);
        __m256i u[8];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * h));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                u[4 * h + i] = _mm256_mullo_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2 * i), _mm256_set1_epi8(3)),
                                                  lb_pair16u(sb, 4 * h + i));
        }
        for (int i = 0; i < 4; i++) B->u[i] = lb_join(u[2 * i], u[2 * i + 1]);
        B->dw = sa_fp16_lut(w->d), B->dmw = sa_fp16_lut(w->dmin);
    } else if (kind == LB_Q3_K) { /* u = |q| |sc| (<= 4 * 32), the activation negated where q sc < 0 */
        const BlockQ3_K *w = (const BlockQ3_K *)blk;
        const __m256i sb = _mm256_broadcastsi128_si256(lb_q3k_scales(w->scales)), asb = _mm256_abs_epi8(sb);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w->hmask);
        const __m256i bidx = _mm256_setr_epi64x(0, 0, 0x0101010101010101ll, 0x0101010101010101ll);
        __m256i u[8], s[8];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * h));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                const int k = 4 * h + i;
                const __m256i qv = _mm256_sub_epi8(lb_q3_u(q, hm, i, k), _mm256_set1_epi8(4));
                u[k] = _mm256_mullo_epi16(_mm256_abs_epi8(qv), lb_pair16u(asb, k));
                s[k] = _mm256_sign_epi8(qv, _mm256_shuffle_epi8(sb, _mm256_add_epi8(bidx, _mm256_set1_epi8((char)(2 * k)))));
            }
        }
        for (int i = 0; i < 4; i++) {
            B->u[i] = lb_join(u[2 * i], u[2 * i + 1]);
            B->neg[i] = _mm512_movepi8_mask(lb_join(s[2 * i], s[2 * i + 1]));
        }
        B->dw = sa_fp16_lut(w->d);
    } else { /* |value| (int16 pairs <= 2 * 127 * 127 in maddubs), negated where the value is */
        const BlockIQ4_XS *w = (const BlockIQ4_XS *)blk;
        const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sa_iq4nl_values));
        int8_t sc[8];
        const uint64_t s8 = lb_iq4xs_scales(w);
        memcpy(sc, &s8, 8);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m512i v = lb_join(_mm256_shuffle_epi8(tbl, qt_nibbles(w->qs + 32 * i)),
                                      _mm256_shuffle_epi8(tbl, qt_nibbles(w->qs + 32 * i + 16)));
            B->u[i] = _mm512_abs_epi8(v);
            B->neg[i] = _mm512_movepi8_mask(v);
            B->sc[i] = lb_join(_mm256_set1_epi16(sc[2 * i]), _mm256_set1_epi16(sc[2 * i + 1]));
        }
        B->dw = sa_fp16_lut(w->d);
    }
}

/* one token's isum of the super-block as eight int32 partial sums */
static inline __attribute__((always_inline)) __m256i lb_tok(const int kind, const LbBlock *B, const BlockQ8_K *ab) {
    const int8_t *aq = ab->qs;
    const __m512i zero = _mm512_setzero_si512();
    __m512i acc = zero;
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512i x = _mm512_loadu_si512(aq + 64 * i);
        if (kind != LB_Q2_K) x = _mm512_mask_sub_epi8(x, B->neg[i], zero, x);
        acc = kind == LB_IQ4_XS ? _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(B->u[i], x), B->sc[i])
                                : _mm512_dpbusd_epi32(acc, B->u[i], x);
    }
    return _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
}
#endif

/* ======== the GEMMs (prefill), both tables ========
 * Tokens in passes of LB_TC (their activations stay in the L2 while every row goes by); per row
 * and super-block one decode (lb_decode), then per 8 tokens their eight isum vectors reduced at
 * once (qt_reduce8, instead of one horizontal sum each) and the dot's float step on eight lanes,
 * one token each, in the dot's order with its operations: every value equals the dot's bit for
 * bit (SaKernels' gemm contract). */
#define LB_TC 64
static inline __attribute__((always_inline)) void lb_gemm(const int kind, int n, int rows, const void *w, size_t wstride,
                                                          const void *a, size_t astride, int T, float *y, size_t ldy) {
    const size_t bb = kind == LB_Q2_K ? sizeof(BlockQ2_K) : kind == LB_Q3_K ? sizeof(BlockQ3_K) : sizeof(BlockIQ4_XS);
    const __m256i zero = _mm256_setzero_si256();
    for (int t0 = 0; t0 < T; t0 += LB_TC) {
        const int nt = T - t0 < LB_TC ? T - t0 : LB_TC;
        for (int r = 0; r < rows; r++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * wstride;
            float ys[LB_TC];
            for (int t = 0; t < LB_TC; t++) ys[t] = 0.0f;
            for (int b = 0; b < n / QK_K; b++) {
                LbBlock B;
                lb_decode(kind, wr + b * bb, &B);
                const __m256 dw = _mm256_set1_ps(B.dw), dmw = _mm256_set1_ps(B.dmw);
                for (int g = 0; g < nt; g += 8) {
                    __m256i p[8], pm[8];
                    float ad[8];
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) {
                        p[j] = pm[j] = zero, ad[j] = 0.0f;
                        if (g + j >= nt) continue;
                        const BlockQ8_K *ab = LB_ROW_PTR(BlockQ8_K, a, astride, t0 + g + j) + b;
                        p[j] = lb_tok(kind, &B, ab);
                        if (kind == LB_Q2_K) pm[j] = _mm256_madd_epi16(B.mins, _mm256_loadu_si256((const __m256i *)ab->bsums));
                        ad[j] = ab->d;
                    }
                    const __m256 adv = _mm256_loadu_ps(ad), isum = _mm256_cvtepi32_ps(qt_reduce8(p));
                    /* Q2_K: sum + (a.d*d * isum - a.d*dmin * imin); Q3_K, IQ4_XS: sum + a.d*d * isum */
                    const __m256 f = kind == LB_Q2_K ? _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(adv, dw), isum),
                                                                     _mm256_mul_ps(_mm256_mul_ps(adv, dmw),
                                                                                   _mm256_cvtepi32_ps(qt_reduce8(pm))))
                                                     : _mm256_mul_ps(_mm256_mul_ps(adv, dw), isum);
                    _mm256_storeu_ps(ys + g, _mm256_add_ps(_mm256_loadu_ps(ys + g), f));
                }
            }
            for (int t = 0; t < nt; t++) y[(size_t)(t0 + t) * ldy + r] = ys[t];
        }
    }
}

#define LB_GEMM(t, kind)                                                                                         \
    static void lb_gemm_##t(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T, \
                            float *y, size_t ldy) {                                                              \
        LB_GEMM_ONE_TOKEN(lb_dot_##t)                                                                            \
        lb_gemm(kind, n, rows, w, wstride, a, astride, T, y, ldy);                                               \
    }
LB_GEMM(q2_K, LB_Q2_K)
LB_GEMM(q3_K, LB_Q3_K)
LB_GEMM(iq4_xs, LB_IQ4_XS)

#define LB_TYPE_ROWS                                                                                           \
    [SA_Q2_K] = {NULL, lb_dot_q2_K, lb_gemm_q2_K}, [SA_Q3_K] = {NULL, lb_dot_q3_K, lb_gemm_q3_K},             \
    [SA_IQ4_XS] = {NULL, lb_dot_iq4_xs, lb_gemm_iq4_xs}

#endif
