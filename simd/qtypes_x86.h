/* qtypes_x86.h - x86 kernels (AVX2 instructions) for the block types that stay in ggml's row
 * layout: Q4_1, Q5_0, Q5_1 (32-weight blocks), Q5_K, and the Q8_1 activations of Q4_1 / Q5_1.
 * Included by avx2.c and avx512.c, each compiling them with its own flags as static functions of
 * its table; with QT_AVX512 defined (avx512.c: AVX-512BW/VL and VNNI) the unsigned x signed byte
 * dots are one vpdpbusd and Q5's fifth bits a byte mask.
 *
 * Every value equals the scalar reference (simd/scalar.c) bit for bit: the integer sums of a
 * block (of a super-block for Q5_K) are exact, and they are combined in float with the
 * reference's operations in its order, per row and token (kernels.h: "block types beyond Q8_0 /
 * Q4_0"). tests/test_kernels.c (kernels_block_types) checks every table against it.
 *
 * Why these shapes (a Q5_K_M file is mostly Q5_K; Qwen2.5-0.5B's hidden-896 "Q4_K_M" is mostly
 * Q5_0, its Q5_K fallback Q5_1; the scalar kernels decoded such files at ~1 t/s):
 *   - The levels are unsigned (Q5_0's -16 is taken out through the activation sum), so one
 *     maddubs (or vpdpbusd) per 32 weights does the products with no sign juggling.
 *   - Q4_1 / Q5_0 / Q5_1 combine every 32 weights in float, a serial chain per row: eight rows
 *     are decoded side by side and their block sums gathered into one vector (qt_reduce8), so the
 *     float steps run on eight lanes, one row each, and the activation block is loaded once for
 *     the eight rows. A batch decodes each row block once for all its tokens.
 *   - Q5_K combines per 256 weights, so one row at a time is enough; a batch decodes a row's
 *     super-block once (levels and scale vectors) and reuses it for every token. */
#ifndef SALIGN_QTYPES_X86_H
#define SALIGN_QTYPES_X86_H

/* ---- helpers ---- */

static inline uint32_t qt_ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint16_t qt_ld16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline float qt_h2f(const void *p) { return _cvtsh_ss(qt_ld16(p)); } /* exact, as sa_fp16_lut */

static inline int32_t qt_hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* the total of v's eight lanes in every lane */
static inline __m256i qt_bcast_sum(__m256i v) {
    v = _mm256_add_epi32(v, _mm256_permute2x128_si256(v, v, 0x01));
    v = _mm256_add_epi32(v, _mm256_shuffle_epi32(v, 0x4E));
    return _mm256_add_epi32(v, _mm256_shuffle_epi32(v, 0xB1));
}

/* u . x over 32 bytes as eight int32 partial sums, u unsigned (levels <= 31: every maddubs pair
 * is at most 2 * 31 * 128 in magnitude, no saturation), x signed */
static inline __m256i qt_dot_u8(__m256i u, __m256i x) {
#ifdef QT_AVX512
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
#endif
}

/* lane i = the total of p[i]'s eight lanes */
static inline __m256i qt_reduce8(const __m256i p[8]) {
    const __m256i q0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i q1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    /* q0 = [rows 0-3, first halves | rows 0-3, second halves], q1 the same for rows 4-7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
}

/* the four lanes' totals of v0..v3, in order */
static inline __m128i qt_reduce4(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* 16 bytes of nibbles -> 32 levels in element order (low nibbles 0..15, high 16..31): the bytes
 * loaded into both halves, the upper half shifted by 4 (one variable shift instead of a shift and
 * an insert) */
static inline __m256i qt_nibbles(const uint8_t *qs) {
    const __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(x, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
}

/* nib plus the fifth bits of Q5_0 / Q5_1: bit j of the little-endian qh -> 16 in byte j. With
 * AVX-512BW/VL the 32 bits are a byte mask as they are (kmov, a masked move: 3 instructions with
 * the OR instead of 6; Q5_0 decode 10.2 -> 11.1 GB/s, one thread, tools/bench/RESULTS.md). */
#ifdef QT_AVX512
static inline __m256i qt_add_hbits(__m256i nib, const uint8_t *qh) {
    return _mm256_or_si256(nib, _mm256_maskz_mov_epi8((__mmask32)qt_ld32(qh), _mm256_set1_epi8(0x10)));
}
#else
static inline __m256i qt_add_hbits(__m256i nib, const uint8_t *qh) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, /* qh bytes per 8 */
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qt_ld32(qh)), spread);
    return _mm256_or_si256(nib, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10)));
}
#endif

/* ---- Q8_1 activations, byte-identical to sa_quantize_row_q8_1 ----
 * amax ignores NaN as fmaxf does (max_ps returns its second operand when the first is NaN), d and
 * 127/amax are the reference's scalar float operations, cvtps2dq rounds ties to even as rintf,
 * and the fp16 conversions round to nearest even as sa_fp32_to_fp16 does for finite values. */
static void qt_quantize_q8_1(const float *x, void *yv, int n) {
    BlockQ8_1 *y = yv;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < n / 32; b++, x += 32) {
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), amax);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float am = _mm_cvtss_f32(m4);
        const float d = am / 127.0f, id = am != 0.0f ? 127.0f / am : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));
        const int32_t sum = qt_hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        const __m256i p = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[b].s = _cvtss_sh((float)sum * d, _MM_FROUND_TO_NEAREST_INT);
    }
}

/* ---- Q4_1, Q5_0, Q5_1 (and IQ4_NL with AVX-512) ----
 * Per block, u = the unsigned levels (Q4_1 0..15, Q5_x 0..31, IQ4_NL the table value + 128),
 * si = u . x (Q5_0 / IQ4_NL: minus 16 / 128 * the activation sum), and the reference's float step
 *     Q5_0, IQ4_NL: sum = sum + (float)si * (d_w * d_a)
 *     Q4_1, Q5_1:  sum = sum + ((float)si * (d_w * d_a) + m_w * s_a) */
enum { QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_IQ4_NL };
#define QT_BLOCK_BYTES(k)                                                                                  \
    ((k) == QT_Q4_1 ? sizeof(BlockQ4_1) : (k) == QT_Q5_0 ? sizeof(BlockQ5_0) : (k) == QT_Q5_1 ? sizeof(BlockQ5_1) \
                                                                                     : sizeof(BlockIQ4_NL))
/* Q5_0 and IQ4_NL: Q8_0 activations, an offset taken out of unsigned levels, no minimum */
#define QT_NO_MIN(k) ((k) == QT_Q5_0 || (k) == QT_IQ4_NL)
#define QT_ACT_BYTES(k) (QT_NO_MIN(k) ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1))
#define QT_OFFSET(k) ((k) == QT_IQ4_NL ? 128 : 16)

static inline __attribute__((always_inline)) __m256i qt_levels(const int kind, const uint8_t *blk) {
    if (kind == QT_Q4_1) return qt_nibbles(((const BlockQ4_1 *)blk)->qs);
    if (kind == QT_IQ4_NL) /* the table values + 128 (1..241): vpdpbusd only, maddubs pairs could saturate */
        return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_add_epi8(
                                       _mm_loadu_si128((const __m128i *)sa_iq4nl_values), _mm_set1_epi8(-128))),
                                   qt_nibbles(((const BlockIQ4_NL *)blk)->qs));
    if (kind == QT_Q5_0) return qt_add_hbits(qt_nibbles(((const BlockQ5_0 *)blk)->qs), ((const BlockQ5_0 *)blk)->qh);
    return qt_add_hbits(qt_nibbles(((const BlockQ5_1 *)blk)->qs), ((const BlockQ5_1 *)blk)->qh);
}

/* One row: four blocks' integer sums at a time, then their float steps in order. */
static inline __attribute__((always_inline)) float qt_dot32(const int kind, int n, const void *wv, const void *av) {
    const uint8_t *w = wv, *a = av;
    const size_t wb = QT_BLOCK_BYTES(kind), xb = QT_ACT_BYTES(kind), xo = QT_NO_MIN(kind) ? 2 : 4;
    const __m256i off = _mm256_set1_epi8((char)QT_OFFSET(kind));
    const int nb = n / 32;
    float sum = 0.0f;
    for (int b = 0; b < nb; b += 4) {
        const int m = nb - b < 4 ? nb - b : 4;
        __m256i p[4];
        for (int k = 0; k < 4; k++) {
            if (k >= m) {
                p[k] = _mm256_setzero_si256();
                continue;
            }
            const __m256i x = _mm256_loadu_si256((const __m256i *)(a + (b + k) * xb + xo));
            p[k] = qt_dot_u8(qt_levels(kind, w + (b + k) * wb), x);
            if (QT_NO_MIN(kind)) p[k] = _mm256_sub_epi32(p[k], qt_dot_u8(off, x));
        }
        int32_t si[4];
        _mm_storeu_si128((__m128i *)si, qt_reduce4(p[0], p[1], p[2], p[3]));
        for (int k = 0; k < m; k++) {
            const uint8_t *wk = w + (b + k) * wb, *ak = a + (b + k) * xb;
            const float f = (float)si[k] * (qt_h2f(wk) * qt_h2f(ak));
            sum = QT_NO_MIN(kind) ? sum + f : sum + (f + qt_h2f(wk + 2) * qt_h2f(ak + 2));
        }
    }
    return sum;
}

/* Eight rows (at w + i*wstride) x T tokens: each block of the eight rows is decoded once, then
 * per token one activation load, eight dots, one reduction and the float step on eight lanes.
 * Tokens after the first accumulate in y (the chain of each lane is the reference's). */
static inline __attribute__((always_inline)) void qt_tile32(const int kind, int nb, const uint8_t *w, size_t wstride,
                                                            const uint8_t *a, size_t astride, int T, float *y,
                                                            size_t ldy) {
    const size_t wb = QT_BLOCK_BYTES(kind), xb = QT_ACT_BYTES(kind), xo = QT_NO_MIN(kind) ? 2 : 4;
    const __m256i off = _mm256_set1_epi8((char)QT_OFFSET(kind)), lo16 = _mm256_set1_epi32(0xFFFF);
    __m256 acc = _mm256_setzero_ps();
    for (int t = 1; t < T; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc);
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb0 = w + (size_t)b * wb;
        __m256i u[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) u[i] = qt_levels(kind, wb0 + i * wstride);
        /* the eight rows' d (and m: the next two bytes) as floats */
        const __m256i dm16 = _mm256_setr_epi32((int)qt_ld32(wb0), (int)qt_ld32(wb0 + wstride), (int)qt_ld32(wb0 + 2 * wstride),
                                               (int)qt_ld32(wb0 + 3 * wstride), (int)qt_ld32(wb0 + 4 * wstride),
                                               (int)qt_ld32(wb0 + 5 * wstride), (int)qt_ld32(wb0 + 6 * wstride),
                                               (int)qt_ld32(wb0 + 7 * wstride));
        const __m256i dmp = _mm256_permute4x64_epi64(
            _mm256_packus_epi32(_mm256_and_si256(dm16, lo16), _mm256_srli_epi32(dm16, 16)), 0xD8);
        const __m256 dw = _mm256_cvtph_ps(_mm256_castsi256_si128(dmp));
        const __m256 mw = _mm256_cvtph_ps(_mm256_extracti128_si256(dmp, 1));
        for (int t = 0; t < T; t++) {
            const uint8_t *ab = a + (size_t)t * astride + (size_t)b * xb;
            const __m256i x = _mm256_loadu_si256((const __m256i *)(ab + xo));
            __m256i p[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) p[i] = qt_dot_u8(u[i], x);
            __m256i s = qt_reduce8(p);
            if (QT_NO_MIN(kind)) s = _mm256_sub_epi32(s, qt_bcast_sum(qt_dot_u8(off, x)));
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(qt_h2f(ab))));
            if (!QT_NO_MIN(kind)) f = _mm256_add_ps(f, _mm256_mul_ps(mw, _mm256_set1_ps(qt_h2f(ab + 2))));
            if (t == 0) acc = _mm256_add_ps(acc, f);
            else _mm256_storeu_ps(y + (size_t)t * ldy, _mm256_add_ps(_mm256_loadu_ps(y + (size_t)t * ldy), f));
        }
    }
    _mm256_storeu_ps(y, acc);
}

static inline __attribute__((always_inline)) void qt_gemm32(const int kind, int n, int rows, const void *wv, size_t wstride,
                                                            const void *av, size_t astride, int T, float *y, size_t ldy) {
    const uint8_t *w = wv, *a = av;
    int r = 0;
    for (; r + 8 <= rows; r += 8) qt_tile32(kind, n / 32, w + (size_t)r * wstride, wstride, a, astride, T, y + r, ldy);
    for (; r < rows; r++)
        for (int t = 0; t < T; t++) y[(size_t)t * ldy + r] = qt_dot32(kind, n, w + (size_t)r * wstride, a + (size_t)t * astride);
}

static float qt_dot_q4_1(int n, const void *w, const void *a) { return qt_dot32(QT_Q4_1, n, w, a); }
static float qt_dot_q5_0(int n, const void *w, const void *a) { return qt_dot32(QT_Q5_0, n, w, a); }
static float qt_dot_q5_1(int n, const void *w, const void *a) { return qt_dot32(QT_Q5_1, n, w, a); }
#define QT_GEMM32(name, kind)                                                                                     \
    static void name(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T, float *y, \
                     size_t ldy) {                                                                                \
        qt_gemm32(kind, n, rows, w, wstride, a, astride, T, y, ldy);                                              \
    }
QT_GEMM32(qt_gemm_q4_1, QT_Q4_1)
QT_GEMM32(qt_gemm_q5_0, QT_Q5_0)
QT_GEMM32(qt_gemm_q5_1, QT_Q5_1)
#ifdef QT_AVX512
static float qt_dot_iq4_nl(int n, const void *w, const void *a) { return qt_dot32(QT_IQ4_NL, n, w, a); }
QT_GEMM32(qt_gemm_iq4_nl, QT_IQ4_NL)
#endif

/* ---- Q5_K ----
 * Per super-block: isum = sum_j sc_j * (u_j . x_j) with u = nibble | fifth bit << 4 (0..31; each
 * maddubs pair at most 2 * 31 * 127, times sc <= 63 in madd: exact in int32), imin = sum_j mn_j *
 * (bsums[2j] + bsums[2j+1]), then the reference's sum = sum + (a.d*d * isum - a.d*dmin * imin). */

/* the eight 6-bit scales and mins (sa_kq_scale_min), four bytes at a time */
static inline void qt_k_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    const uint32_t w0 = qt_ld32(s), w1 = qt_ld32(s + 4), w2 = qt_ld32(s + 8);
    const uint32_t sc03 = w0 & 0x3F3F3F3Fu, mn03 = w1 & 0x3F3F3F3Fu;
    const uint32_t sc47 = (w2 & 0x0F0F0F0Fu) | ((w0 >> 6) & 0x03030303u) << 4;
    const uint32_t mn47 = ((w2 >> 4) & 0x0F0F0F0Fu) | ((w1 >> 6) & 0x03030303u) << 4;
    memcpy(sc, &sc03, 4), memcpy(sc + 4, &sc47, 4), memcpy(mn, &mn03, 4), memcpy(mn + 4, &mn47, 4);
}

/* one super-block decoded: the levels of sub-block j and sc_j in every int16 lane */
typedef struct {
    __m256i u[8], sc[8];
    __m128i mn; /* the eight mins as int16 */
} QtK5;

static inline __attribute__((always_inline)) void qt_decode_q5_K(const BlockQ5_K *w, QtK5 *B) {
    uint8_t sc[8], mn[8];
    qt_k_scales(w->scales, sc, mn);
    B->mn = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    const __m256i H = _mm256_loadu_si256((const __m256i *)w->qh);
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * p));
        /* bit 2p of qh[l] to bit 4, and bit 2p+1: 16-bit shifts move bits within each byte here */
        const __m256i h0 = p < 2 ? _mm256_slli_epi16(H, 4 - 2 * p) : _mm256_srli_epi16(H, 2 * p - 4);
        const __m256i h1 = p < 2 ? _mm256_slli_epi16(H, 3 - 2 * p) : _mm256_srli_epi16(H, 2 * p - 3);
        B->u[2 * p] = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(h0, m16));
        B->u[2 * p + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_and_si256(h1, m16));
        B->sc[2 * p] = _mm256_set1_epi16(sc[2 * p]);
        B->sc[2 * p + 1] = _mm256_set1_epi16(sc[2 * p + 1]);
    }
}

static inline __attribute__((always_inline)) float qt_step_q5_K(float sum, const QtK5 *B, const BlockQ5_K *w,
                                                                const BlockQ8_K *a) {
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * j));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(B->u[j], x), B->sc[j]));
    }
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)a->bsums), _mm_loadu_si128((const __m128i *)(a->bsums + 8)));
    const __m128i im = _mm_madd_epi16(B->mn, bs);
    __m128i s = _mm_add_epi32(im, _mm_shuffle_epi32(im, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    const int32_t isum = qt_hsum_i32(acc), imin = _mm_cvtsi128_si32(s);
    const float dd = a->d * _cvtsh_ss(w->d), dm = a->d * _cvtsh_ss(w->dmin);
    return sum + (dd * (float)isum - dm * (float)imin);
}

static float qt_dot_q5_K(int n, const void *wv, const void *av) {
    const BlockQ5_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        QtK5 B;
        qt_decode_q5_K(&w[b], &B);
        sum = qt_step_q5_K(sum, &B, &w[b], &a[b]);
    }
    return sum;
}

static void qt_gemm_q5_K(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T, float *y,
                         size_t ldy) {
    for (int r = 0; r < rows; r++) {
        const BlockQ5_K *wr = (const BlockQ5_K *)((const uint8_t *)w + (size_t)r * wstride);
        if (T == 1) {
            y[r] = qt_dot_q5_K(n, wr, a);
            continue;
        }
        for (int t = 0; t < T; t++) y[(size_t)t * ldy + r] = 0.0f;
        for (int b = 0; b < n / QK_K; b++) {
            QtK5 B;
            qt_decode_q5_K(&wr[b], &B);
            for (int t = 0; t < T; t++) {
                const BlockQ8_K *ab = (const BlockQ8_K *)((const uint8_t *)a + (size_t)t * astride) + b;
                float *yy = &y[(size_t)t * ldy + r];
                *yy = qt_step_q5_K(*yy, &B, &wr[b], ab);
            }
        }
    }
}

/* the rows of a table's .type initializer (instead of the reference ones) */
#define QT_TYPE_ROWS                                                                                             \
    [SA_Q4_1] = {NULL, qt_dot_q4_1, qt_gemm_q4_1}, [SA_Q5_0] = {NULL, qt_dot_q5_0, qt_gemm_q5_0},                 \
    [SA_Q5_1] = {NULL, qt_dot_q5_1, qt_gemm_q5_1}, [SA_Q5_K] = {NULL, qt_dot_q5_K, qt_gemm_q5_K},                 \
    [SA_Q8_1] = {qt_quantize_q8_1, NULL, NULL}

#endif
