/* avx2.c - kernels for x86-64 with AVX2, FMA and F16C (Haswell / Zen and later).
 *
 * Only this file is compiled with -mavx2 -mfma -mf16c; dispatch.c calls into it after cpuid.
 * Semantics are those of scalar.c: the integer part of the quantized dots is exact, the float
 * accumulation order differs (8 lanes, several accumulators), quantize_q8_0 and f32_to_f16
 * are bit-identical to the reference. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

/* ---- helpers ---- */

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Product of two fp16 block scales. The F16C conversion is exact (same value as sa_fp16_lut)
 * and avoids touching the 256 KiB lookup table from the hot loop. */
static inline __m256 block_scale(uint16_t dw, uint16_t da) {
    return _mm256_set1_ps(_cvtsh_ss(dw) * _cvtsh_ss(da));
}

/* Exact int8 x int8 dot of 32 pairs, as 8 int32 partial sums.
 * maddubs wants an unsigned first operand, so move w's sign onto a: |w| * (a * sign(w)).
 * |w| of -128 is 0x80, read as 128 by maddubs, so any weight byte works. Each int16 pair sum is
 * at most 2 * 128 * 127 = 32512 in magnitude, so maddubs never saturates as long as the
 * activations stay in [-127, 127], which quantize_q8_0 guarantees (a = -128 would also flip
 * to -128 in sign_epi8). */
static inline __m256i dot32_i8(__m256i w, __m256i a) {
    const __m256i aw = _mm256_sign_epi8(w, w);
    const __m256i sa = _mm256_sign_epi8(a, w);
    const __m256i p16 = _mm256_maddubs_epi16(aw, sa);
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* 16 bytes of Q4_0 nibbles -> 32 signed values in element order (low nibbles are elements
 * 0..15, high nibbles 16..31), offset removed: -8..7. */
static inline __m256i unpack_q4_0(const uint8_t *qs) {
    const __m128i x = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
    return _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

static inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* bf16 is the top half of an f32: widen to 32 bits and shift into place (exact). */
static inline __m256 load_bf16(const uint16_t *p) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/* ---- quantization ---- */

static void quantize_q8_0(const float *x, BlockQ8_0 *y, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    /* packs interleaves 128-bit lanes; this puts the 8 groups of 4 bytes back in order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < n / QK8_0; b++) {
        const float *xb = x + (size_t)b * QK8_0;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
        }
        /* the scale arithmetic is the reference's (sa_quantize_act_q8_0), in scalar float */
        const float mx = hmax_ps(amax);
        const float id = mx != 0.0f ? 127.0f / mx : 0.0f;
        y[b].d = _cvtss_sh(mx / 127.0f, _MM_FROUND_TO_NEAREST_INT); /* finite d: equals sa_fp32_to_fp16 */
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        /* vcvtps2dq rounds ties to even (MXCSR's default), as the reference's rintf */
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));
        /* |q| <= 127, so the saturating packs are plain narrowing here */
        const __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
        const __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
        const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
    }
}

/* ---- quantized dots ---- */

static float dot_q8_0(int n, const BlockQ8_0 *w, const BlockQ8_0 *a) {
    const int nb = n / QK8_0;
    /* two accumulators: the FMA latency chain is the bottleneck once data is in cache */
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) {
        const __m256i p0 = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                                    _mm256_loadu_si256((const __m256i *)a[b].qs));
        const __m256i p1 = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b + 1].qs),
                                    _mm256_loadu_si256((const __m256i *)a[b + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), block_scale(w[b].d, a[b].d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), block_scale(w[b + 1].d, a[b + 1].d), acc1);
    }
    if (b < nb) {
        const __m256i p0 = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                                    _mm256_loadu_si256((const __m256i *)a[b].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), block_scale(w[b].d, a[b].d), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

static float dot_q4_0(int n, const BlockQ4_0 *w, const BlockQ8_0 *a) {
    const int nb = n / QK4_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) {
        const __m256i p0 = dot32_i8(unpack_q4_0(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        const __m256i p1 = dot32_i8(unpack_q4_0(w[b + 1].qs), _mm256_loadu_si256((const __m256i *)a[b + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), block_scale(w[b].d, a[b].d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), block_scale(w[b + 1].d, a[b + 1].d), acc1);
    }
    if (b < nb) {
        const __m256i p0 = dot32_i8(unpack_q4_0(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), block_scale(w[b].d, a[b].d), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- float dots: 32 elements per iteration in 4 independent accumulators, then 8 at a time,
 * then a scalar tail for n not a multiple of 8 ---- */

static float dot_f16(int n, const uint16_t *w, const float *a) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_f16(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(load_f16(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_f16(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_f16(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_f16(w + i), _mm256_loadu_ps(a + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += _cvtsh_ss(w[i]) * a[i];
    return sum;
}

static float dot_bf16(int n, const uint16_t *w, const float *a) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_bf16(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(load_bf16(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_bf16(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_bf16(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_bf16(w + i), _mm256_loadu_ps(a + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += sa_bf16_to_fp32(w[i]) * a[i];
    return sum;
}

static float dot_f32(int n, const float *w, const float *a) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += w[i] * a[i];
    return sum;
}

/* ---- axpy ---- */

static void axpy_f32(int n, float a, const float *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

static void axpy_f16(int n, float a, const uint16_t *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16(x + i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8, _mm256_fmadd_ps(va, load_f16(x + i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * _cvtsh_ss(x[i]);
}

/* ---- conversion ---- */

/* vcvtps2ph rounds to nearest even exactly like sa_fp32_to_fp16, but keeps the top bits of a
 * NaN's payload where the reference returns the canonical quiet NaN (sign | 0x7E00); rewrite
 * NaN lanes so the two agree bit for bit on every input. */
static inline __m128i cvt_f16_8(__m256 v) {
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    const __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7FFF));
    const __m128i is_nan = _mm_cmpgt_epi16(mag, _mm_set1_epi16(0x7C00));
    const __m128i canon = _mm_or_si128(_mm_andnot_si128(_mm_set1_epi16(0x7FFF), h), _mm_set1_epi16(0x7E00));
    return _mm_blendv_epi8(h, canon, is_nan);
}

static void f32_to_f16(int n, const float *x, uint16_t *y) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(y + i), cvt_f16_8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = sa_fp32_to_fp16(x[i]);
}

/* ---- 8-row interleaved GEMM (layouts in kernels.h) ----
 * Each 32-bit lane of a weight load belongs to one row, so after the int8 products the lanes
 * are the 8 rows' partial dots: no horizontal sums. The activation's 4 bytes are broadcast to
 * all lanes (one load each, shared by the 8 rows). A tile handles NT <= 4 tokens: the unpacked
 * weights are reused NT times, so prefill does the nibble unpacking once per 4 tokens.
 * The float part is the reference's exactly: mul then add, blocks in order (kernels.h). */

static inline __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Q4_0: lanes hold unsigned nibbles u = q + 8 (0..15), maddubs(u, a) needs no sign fixing,
 * and sum((u - 8) * a) = sum(u * a) - 8 * sum(a) with 8 * sum(a) precomputed per block (s8).
 * The 8 maddubs of a block are summed in int16 (as a tree: short dependency chains): each lane
 * pair is at most 2 * 15 * 127 = 3810, all 8 at most 30480 < 32767. */
static inline __attribute__((always_inline)) void q4x8_tile(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *aq,
                                                            const float *ad, const int32_t *as, const int NT, float *y,
                                                            size_t ldy, const char *pf_end) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        if (pf_end) sa_prefetch_ahead(w + b, sizeof *w, pf_end);
        __m256i lo[4], hi[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k));
            lo[k] = _mm256_and_si256(v, m4);                        /* elements 4k..4k+3 */
            hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4); /* elements 16+4k.. */
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const size_t i = (size_t)t * nb + b;
            const int8_t *q = aq[i].qs;
            const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[0], bcast4(q)), _mm256_maddubs_epi16(hi[0], bcast4(q + 16)));
            const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[1], bcast4(q + 4)), _mm256_maddubs_epi16(hi[1], bcast4(q + 20)));
            const __m256i p2 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[2], bcast4(q + 8)), _mm256_maddubs_epi16(hi[2], bcast4(q + 24)));
            const __m256i p3 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[3], bcast4(q + 12)), _mm256_maddubs_epi16(hi[3], bcast4(q + 28)));
            const __m256i s16 = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
            const __m256i p = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(as[i]));
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(ad[i])); /* exact: two halves */
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(p), scale));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Two groups (16 rows) x NT <= 2 tokens: each activation broadcast feeds two maddubs (one per
 * group), which is what the 8-row tile spends most of its instructions on. The weights are
 * unpacked one 4-byte chunk at a time to keep everything in the 16 ymm registers. Same
 * arithmetic per (row, token) as q4x8_tile, so the same floats. */
static inline __attribute__((always_inline)) void q4x16_tile(int nb, const BlockQ4_0x8 *wa, const BlockQ4_0x8 *wb,
                                                             const BlockQ8_0 *aq, const float *ad, const int32_t *as,
                                                             const int NT, float *y, size_t ldy, const char *pf_end) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[2][2];
#pragma GCC unroll 2
    for (int t = 0; t < NT; t++) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
    /* each group prefetches its own position a whole number of pair spans ahead (sa_pf_dist): one
     * pointer walking the pair at two blocks per step fell behind the second group's reads when a
     * group is longer than SA_PF_AHEAD (Q4_0 at K = 8192) */
    const size_t pf = sa_pf_dist(2, (size_t)nb * sizeof *wa);
    for (int b = 0; b < nb; b++) {
        if (pf_end) {
            sa_prefetch_at(wa + b, pf, sizeof *wa, pf_end);
            sa_prefetch_at(wb + b, pf, sizeof *wb, pf_end);
        }
        __m256i sa[2], sb[2];
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) sa[t] = sb[t] = _mm256_setzero_si256();
        /* not unrolled: GCC would hoist all 8 weight loads and spill */
#pragma GCC unroll 1
        for (int k = 0; k < 4; k++) {
            const __m256i va = _mm256_loadu_si256((const __m256i *)(wa[b].qs + 32 * k));
            const __m256i vb = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * k));
            const __m256i loa = _mm256_and_si256(va, m4), hia = _mm256_and_si256(_mm256_srli_epi16(va, 4), m4);
            const __m256i lob = _mm256_and_si256(vb, m4), hib = _mm256_and_si256(_mm256_srli_epi16(vb, 4), m4);
#pragma GCC unroll 2
            for (int t = 0; t < NT; t++) {
                const int8_t *q = aq[(size_t)t * nb + b].qs;
                const __m256i bl = bcast4(q + 4 * k), bh = bcast4(q + 16 + 4 * k);
                const __m256i pa = _mm256_add_epi16(_mm256_maddubs_epi16(loa, bl), _mm256_maddubs_epi16(hia, bh));
                const __m256i pb = _mm256_add_epi16(_mm256_maddubs_epi16(lob, bl), _mm256_maddubs_epi16(hib, bh));
                sa[t] = _mm256_add_epi16(sa[t], pa);
                sb[t] = _mm256_add_epi16(sb[t], pb);
            }
        }
        const __m256 dwa = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wa[b].d));
        const __m256 dwb = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wb[b].d));
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            const size_t i = (size_t)t * nb + b;
            const __m256i corr = _mm256_set1_epi32(as[i]);
            const __m256 da = _mm256_set1_ps(ad[i]);
            const __m256i pa = _mm256_sub_epi32(_mm256_madd_epi16(sa[t], ones), corr);
            const __m256i pb = _mm256_sub_epi32(_mm256_madd_epi16(sb[t], ones), corr);
            acc[0][t] = _mm256_add_ps(acc[0][t], _mm256_mul_ps(_mm256_cvtepi32_ps(pa), _mm256_mul_ps(dwa, da)));
            acc[1][t] = _mm256_add_ps(acc[1][t], _mm256_mul_ps(_mm256_cvtepi32_ps(pb), _mm256_mul_ps(dwb, da)));
        }
    }
#pragma GCC unroll 2
    for (int t = 0; t < NT; t++) {
        _mm256_storeu_ps(y + (size_t)t * ldy, acc[0][t]);
        _mm256_storeu_ps(y + (size_t)t * ldy + 8, acc[1][t]);
    }
}

void sa_avx2_gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    /* decode and small batches prefetch on their first pass over each group (SA_PF_MAX_T) */
    const char *pf_end = T <= SA_PF_MAX_T ? (const char *)(w + (size_t)ng * nb) : NULL;
    if (T == 1) { /* decode: one group per pass (a pair per pass measured slower) */
        for (int g = 0; g < ng; g++) q4x8_tile(nb, w + (size_t)g * nb, a->q, a->d, a->s8, 1, y + 8 * g, 0, pf_end);
        return;
    }
    /* prefill: pairs of groups x pairs of tokens, then an odd last group */
    int g = 0;
    for (; g + 2 <= ng; g += 2) {
        const BlockQ4_0x8 *wa = w + (size_t)g * nb, *wb = wa + nb;
        int t = 0;
        for (; t + 2 <= T; t += 2)
            q4x16_tile(nb, wa, wb, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, 2,
                       y + t * ldy + 8 * g, ldy, t == 0 ? pf_end : NULL);
        if (t < T)
            q4x16_tile(nb, wa, wb, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, 1,
                       y + t * ldy + 8 * g, ldy, t == 0 ? pf_end : NULL);
    }
    for (; g < ng; g++) {
        const BlockQ4_0x8 *wg = w + (size_t)g * nb;
        float *yg = y + 8 * g;
        int t = 0;
#define Q4_TILE(n) q4x8_tile(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, n, yg + t * ldy, ldy, t == 0 ? pf_end : NULL)
        for (; t + 4 <= T; t += 4) Q4_TILE(4);
        switch (T - t) {
        case 3: Q4_TILE(3); break;
        case 2: Q4_TILE(2); break;
        case 1: Q4_TILE(1); break;
        default: break;
        }
#undef Q4_TILE
    }
}

/* Q8_0: signed weights, so the usual sign transfer (see dot32_i8): |w| unsigned, a * sign(w)
 * signed; pairs reach 2 * 128 * 127 = 32512, so each maddubs is widened to int32 at once.
 * NT <= 6 tokens per pass over the weights, one int32 chain per token (the tokens are the
 * independent chains). The chunk loop is deliberately not unrolled: unrolled, GCC hoists the 8
 * weight loads and spills the partial sums, and this loop is bound by the two vector ports that
 * run vpsignb/vpmaddubsw/vpmaddwd, so every extra instruction there costs. 6 tokens measured ~9%
 * faster than 4 (the weight load and |w| shared by more tokens). Decode (NT = 1) reads as fast
 * through this tile as through an unrolled two-chain one (A/B on the 1B model). */
static inline __attribute__((always_inline)) void q8x8_tile(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *aq,
                                                            const float *ad, const int NT, float *y, size_t ldy,
                                                            const char *pf_end) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[6];
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        if (pf_end) sa_prefetch_ahead(w + b, sizeof *w, pf_end);
        __m256i p[6];
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) p[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
        for (int k = 0; k < 8; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k));
            const __m256i av = _mm256_sign_epi8(v, v);
#pragma GCC unroll 6
            for (int t = 0; t < NT; t++) {
                const __m256i sa = _mm256_sign_epi8(bcast4(aq[(size_t)t * nb + b].qs + 4 * k), v);
                p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(_mm256_maddubs_epi16(av, sa), ones));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) {
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(ad[(size_t)t * nb + b]));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(p[t]), scale));
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

void sa_avx2_gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    const char *pf_end = T <= SA_PF_MAX_T ? (const char *)(w + (size_t)ng * nb) : NULL; /* as for Q4_0 */
    for (int g = 0; g < ng; g++) {
        const BlockQ8_0x8 *wg = w + (size_t)g * nb;
        float *yg = y + 8 * g;
        int t = 0;
#define Q8_TILE(n) q8x8_tile(nb, wg, a->q + (size_t)t * nb, a->d + (size_t)t * nb, n, yg + t * ldy, ldy, t == 0 ? pf_end : NULL)
        for (; t + 6 <= T; t += 6) Q8_TILE(6);
        switch (T - t) {
        case 5: Q8_TILE(5); break;
        case 4: Q8_TILE(4); break;
        case 3: Q8_TILE(3); break;
        case 2: Q8_TILE(2); break;
        case 1: Q8_TILE(1); break;
        default: break;
        }
#undef Q8_TILE
    }
}

/* ---- attention and elementwise ---- */

/* Four dot products of one query with four keys, 8 elements at a time; the four sums are
 * reduced together (3 hadds and one add) instead of one horizontal sum each. */
void sa_avx2_attn_scores_f16(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s) {
    const int h8 = hd & ~7;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *k0 = k + (size_t)j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int i = 0; i < h8; i += 8) {
            const __m256 qv = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(load_f16(k0 + i), qv, a0);
            a1 = _mm256_fmadd_ps(load_f16(k1 + i), qv, a1);
            a2 = _mm256_fmadd_ps(load_f16(k2 + i), qv, a2);
            a3 = _mm256_fmadd_ps(load_f16(k3 + i), qv, a3);
        }
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); /* [s0 s1 s2 s3] */
        if (h8 < hd) {
            float t[4] = {0, 0, 0, 0};
            for (int i = h8; i < hd; i++) {
                t[0] += _cvtsh_ss(k0[i]) * q[i];
                t[1] += _cvtsh_ss(k1[i]) * q[i];
                t[2] += _cvtsh_ss(k2[i]) * q[i];
                t[3] += _cvtsh_ss(k3[i]) * q[i];
            }
            r = _mm_add_ps(r, _mm_loadu_ps(t));
        }
        _mm_storeu_ps(s + j, r);
    }
    for (; j < n; j++) s[j] = dot_f16(hd, k + (size_t)j * stride, q);
}

/* out += sum_j p[j] v_j: the output slice lives in registers (32 floats at a time) while all
 * n rows stream past. */
void sa_avx2_attn_values_f16(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out) {
    int i = 0;
    for (; i + 32 <= hd; i += 32) {
        __m256 a0 = _mm256_loadu_ps(out + i), a1 = _mm256_loadu_ps(out + i + 8);
        __m256 a2 = _mm256_loadu_ps(out + i + 16), a3 = _mm256_loadu_ps(out + i + 24);
        const uint16_t *vr = v + i;
        for (int j = 0; j < n; j++, vr += stride) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            a0 = _mm256_fmadd_ps(pj, load_f16(vr), a0);
            a1 = _mm256_fmadd_ps(pj, load_f16(vr + 8), a1);
            a2 = _mm256_fmadd_ps(pj, load_f16(vr + 16), a2);
            a3 = _mm256_fmadd_ps(pj, load_f16(vr + 24), a3);
        }
        _mm256_storeu_ps(out + i, a0);
        _mm256_storeu_ps(out + i + 8, a1);
        _mm256_storeu_ps(out + i + 16, a2);
        _mm256_storeu_ps(out + i + 24, a3);
    }
    for (; i + 8 <= hd; i += 8) {
        __m256 a0 = _mm256_loadu_ps(out + i);
        const uint16_t *vr = v + i;
        for (int j = 0; j < n; j++, vr += stride) a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), load_f16(vr), a0);
        _mm256_storeu_ps(out + i, a0);
    }
    for (; i < hd; i++) {
        float a = out[i];
        for (int j = 0; j < n; j++) a += p[j] * _cvtsh_ss(v[(size_t)j * stride + i]);
        out[i] = a;
    }
}

/* ---- attention over a Q8_0 cache (layout in kernels.h) ----
 * Keys and values are dequantized on the fly: 8 int8 -> 8 floats, times q (scores) or times
 * p[j] * d (values), with the block scale applied once per block. */

static inline __m256 load_i8_ps(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* One key row, any hd/off: the head's values split into runs inside one block each. */
static float attn_score_q8_0_row(int hd, const BlockQ8_0 *r, int off, const float *q) {
    float sum = 0.0f;
    for (int i = 0; i < hd;) {
        const int e = off + i, w = e % QK8_0, len = QK8_0 - w < hd - i ? QK8_0 - w : hd - i;
        const BlockQ8_0 *b = &r[e / QK8_0];
        __m256 t = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= len; c += 8) t = _mm256_fmadd_ps(load_i8_ps(b->qs + w + c), _mm256_loadu_ps(q + i + c), t);
        float seg = hsum_ps(t);
        for (; c < len; c++) seg += (float)b->qs[w + c] * q[i + c];
        sum += _cvtsh_ss(b->d) * seg;
        i += len;
    }
    return sum;
}

void sa_avx2_attn_scores_q8_0(int hd, int n, const BlockQ8_0 *k, size_t stride, int off, const float *q, float *s) {
    int j = 0;
    if (off == 0 && hd % QK8_0 == 0) {
        /* block-aligned heads: four keys at a time, reduced together as in attn_scores_f16 */
        const int nb = hd / QK8_0;
        for (; j + 4 <= n; j += 4) {
            const BlockQ8_0 *r[4] = {k + (size_t)j * stride, k + (size_t)(j + 1) * stride, k + (size_t)(j + 2) * stride,
                                     k + (size_t)(j + 3) * stride};
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int b = 0; b < nb; b++) {
                const float *qb = q + b * QK8_0;
                const __m256 q0 = _mm256_loadu_ps(qb), q1 = _mm256_loadu_ps(qb + 8);
                const __m256 q2 = _mm256_loadu_ps(qb + 16), q3 = _mm256_loadu_ps(qb + 24);
#pragma GCC unroll 4
                for (int x = 0; x < 4; x++) {
                    const int8_t *qs = r[x][b].qs;
                    __m256 t = _mm256_mul_ps(load_i8_ps(qs), q0);
                    t = _mm256_fmadd_ps(load_i8_ps(qs + 8), q1, t);
                    t = _mm256_fmadd_ps(load_i8_ps(qs + 16), q2, t);
                    t = _mm256_fmadd_ps(load_i8_ps(qs + 24), q3, t);
                    a[x] = _mm256_fmadd_ps(t, _mm256_set1_ps(_cvtsh_ss(r[x][b].d)), a[x]);
                }
            }
            const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
            _mm_storeu_ps(s + j, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        }
    }
    for (; j < n; j++) s[j] = attn_score_q8_0_row(hd, k + (size_t)j * stride, off, q);
}

void sa_avx2_attn_values_q8_0(int hd, int n, const BlockQ8_0 *v, size_t stride, int off, const float *p, float *out) {
    if (off == 0 && hd % QK8_0 == 0) {
        /* block-aligned heads: one block's 32 output floats stay in registers while the rows
         * stream past */
        for (int b = 0; b < hd / QK8_0; b++) {
            float *o = out + b * QK8_0;
            __m256 a0 = _mm256_loadu_ps(o), a1 = _mm256_loadu_ps(o + 8);
            __m256 a2 = _mm256_loadu_ps(o + 16), a3 = _mm256_loadu_ps(o + 24);
            const BlockQ8_0 *vb = v + b;
            for (int j = 0; j < n; j++, vb += stride) {
                const __m256 c = _mm256_set1_ps(p[j] * _cvtsh_ss(vb->d));
                a0 = _mm256_fmadd_ps(c, load_i8_ps(vb->qs), a0);
                a1 = _mm256_fmadd_ps(c, load_i8_ps(vb->qs + 8), a1);
                a2 = _mm256_fmadd_ps(c, load_i8_ps(vb->qs + 16), a2);
                a3 = _mm256_fmadd_ps(c, load_i8_ps(vb->qs + 24), a3);
            }
            _mm256_storeu_ps(o, a0);
            _mm256_storeu_ps(o + 8, a1);
            _mm256_storeu_ps(o + 16, a2);
            _mm256_storeu_ps(o + 24, a3);
        }
        return;
    }
    /* any hd/off: row by row, in runs inside one block each */
    for (int j = 0; j < n; j++) {
        const BlockQ8_0 *r = v + (size_t)j * stride;
        for (int i = 0; i < hd;) {
            const int e = off + i, w = e % QK8_0, len = QK8_0 - w < hd - i ? QK8_0 - w : hd - i;
            const BlockQ8_0 *b = &r[e / QK8_0];
            const float cf = p[j] * _cvtsh_ss(b->d);
            const __m256 c = _mm256_set1_ps(cf);
            int x = 0;
            for (; x + 8 <= len; x += 8)
                _mm256_storeu_ps(out + i + x, _mm256_fmadd_ps(c, load_i8_ps(b->qs + w + x), _mm256_loadu_ps(out + i + x)));
            for (; x < len; x++) out[i + x] += cf * (float)b->qs[w + x];
            i += len;
        }
    }
}

/* exp on 8 lanes: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact reduction),
 * exp(r) by its degree-6 Taylor/minimax polynomial (relative error ~2e-7 over that range), times
 * 2^n built in the exponent bits. Below -87.3 the result is flushed to 0, above 88.7 clamped. */
static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

float sa_avx2_exp_sub_sum(int n, float *x, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum_ps(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

void sa_avx2_silu_mul(int n, float *g, const float *u) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 big = _mm256_set1_ps(88.3762626647949f), inf = _mm256_set1_ps(INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 nx = _mm256_xor_ps(x, sign);
        /* exp8 clamps above 88.38; there exp(-x) is (about to be) infinite and silu(x) is -0 (or a
         * magnitude below 4e-37), as expf gives: without this, x = -3e38 would give x / 2.4e38 = -1.25 */
        const __m256 ex = _mm256_blendv_ps(exp8(nx), inf, _mm256_cmp_ps(nx, big, _CMP_GT_OQ));
        const __m256 d = _mm256_add_ps(one, ex);
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, d), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ---- K-quants (kquant_x86.h) ---- */
#define KQ_NT 2 /* tokens per pass in a batch: 16 ymm registers hold two tokens' partial sums */
#define KQ_BCAST4 bcast4
#include "kquant_x86.h"
KQ_GEMM_X8(avx2_gemm_q4_Kx8, q4Kx8_tile, BlockQ4_Kx8)
KQ_GEMM_X8(avx2_gemm_q6_Kx8, q6Kx8_tile, BlockQ6_Kx8)

/* ---- Q4_1, Q5_0, Q5_1, Q5_K and Q8_1 activations (qtypes_x86.h) ---- */
#include "qtypes_x86.h"

/* ---- Q2_K, Q3_K, IQ4_XS (lowbit_x86.h) ---- */
#include "lowbit_x86.h"

/* ---- IQ4_NL . Q8_0 (the AVX-512 table has its own in qtypes_x86.h) ----
 * The block's integer dot exact (int8 products summed in pairs by maddubs, then int32), the
 * reference's float step per block in order, so every value equals sa_ref_dot_iq4_nl bit for bit. */
static float avx2_dot_iq4_nl(int n, const void *wv, const void *av) {
    const BlockIQ4_NL *w = wv;
    const BlockQ8_0 *a = av;
    const __m256i ones = _mm256_set1_epi16(1);
    const int nb = n / QK4_NL;
    float sum = 0.0f;
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m256i v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_madd_epi16(
                lb_mul_i8(lb_iq4_values(w[b + k].qs), _mm256_loadu_si256((const __m256i *)a[b + k].qs)), ones);
        int32_t si[4];
        _mm_storeu_si128((__m128i *)si, qt_reduce4(v[0], v[1], v[2], v[3]));
        for (int k = 0; k < 4; k++)
            sum = sum + (float)si[k] * (sa_fp16_lut(w[b + k].d) * sa_fp16_lut(a[b + k].d));
    }
    for (; b < nb; b++) {
        const __m256i p = lb_mul_i8(lb_iq4_values(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        sum = sum + (float)qt_hsum_i32(_mm256_madd_epi16(p, ones)) * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d));
    }
    return sum;
}

/* IQ4_NL: 8 blocks of 32 decoded at once; their 8 integer dots per token, then the dot's 8 float
 * steps in block order (the blocks after the last whole 8 as the dot does them) */
static void avx2_gemm_iq4_nl(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T,
                             float *y, size_t ldy) {
    LB_GEMM_ONE_TOKEN(avx2_dot_iq4_nl)
    const __m256i ones = _mm256_set1_epi16(1);
    const int nb = n / QK4_NL;
    for (int r = 0; r < rows; r++) {
        const BlockIQ4_NL *wr = LB_ROW_PTR(BlockIQ4_NL, w, wstride, r);
        for (int tk = 0; tk < T; tk++) y[(size_t)tk * ldy + r] = 0.0f;
        int b = 0;
        for (; b + 8 <= nb; b += 8) {
            __m256i q[8], sg[8];
            float dw[8];
            for (int k = 0; k < 8; k++) {
                sg[k] = lb_iq4_values(wr[b + k].qs);
                q[k] = _mm256_sign_epi8(sg[k], sg[k]);
                dw[k] = sa_fp16_lut(wr[b + k].d);
            }
            for (int tk = 0; tk < T; tk++) {
                const BlockQ8_0 *ab = LB_ROW_PTR(BlockQ8_0, a, astride, tk) + b;
                __m256i v[8];
                for (int k = 0; k < 8; k++)
                    v[k] = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(q[k], _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)ab[k].qs), sg[k])), ones);
                int32_t si[8];
                _mm_storeu_si128((__m128i *)si, qt_reduce4(v[0], v[1], v[2], v[3]));
                _mm_storeu_si128((__m128i *)(si + 4), qt_reduce4(v[4], v[5], v[6], v[7]));
                float *yy = &y[(size_t)tk * ldy + r], s = *yy;
                for (int k = 0; k < 8; k++) s = s + (float)si[k] * (dw[k] * sa_fp16_lut(ab[k].d));
                *yy = s;
            }
        }
        for (; b < nb; b++)
            for (int tk = 0; tk < T; tk++) {
                const BlockQ8_0 *ab = LB_ROW_PTR(BlockQ8_0, a, astride, tk) + b;
                const __m256i p = lb_mul_i8(lb_iq4_values(wr[b].qs), _mm256_loadu_si256((const __m256i *)ab->qs));
                float *yy = &y[(size_t)tk * ldy + r];
                *yy = *yy + (float)qt_hsum_i32(_mm256_madd_epi16(p, ones)) * (sa_fp16_lut(wr[b].d) * sa_fp16_lut(ab->d));
            }
    }
}

SA_BASE_TYPE_DEFS(avx2, quantize_q8_0, dot_q8_0, dot_q4_0, dot_f16, dot_bf16, dot_f32, f32_to_f16)

const SaKernels sa_kernels_avx2 = {
    .name = "avx2",
    .quantize_q8_0 = quantize_q8_0,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .dot_f16 = dot_f16,
    .dot_bf16 = dot_bf16,
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .gemm_q4_0x8 = sa_avx2_gemm_q4_0x8,
    .gemm_q8_0x8 = sa_avx2_gemm_q8_0x8,
    .attn_scores_f16 = sa_avx2_attn_scores_f16,
    .attn_values_f16 = sa_avx2_attn_values_f16,
    .attn_scores_q8_0 = sa_avx2_attn_scores_q8_0,
    .attn_values_q8_0 = sa_avx2_attn_values_q8_0,
    .exp_sub_sum = sa_avx2_exp_sub_sum,
    .silu_mul = sa_avx2_silu_mul,
    /* Q4_K / Q6_K: the repacked GEMMs and Q8_K activations of this table (plain rows: the scalar
     * reference); Q2_K/Q3_K/IQ4_NL/IQ4_XS, Q4_1/Q5_0/Q5_1/Q5_K and Q8_1 of its own */
    .type = {SA_BASE_TYPE_ROWS(avx2), QT_TYPE_ROWS, LB_TYPE_ROWS, [SA_IQ4_NL] = {NULL, avx2_dot_iq4_nl, avx2_gemm_iq4_nl},
             [SA_Q4_K] = {NULL, sa_ref_dot_q4_K, sa_ref_gemm_q4_K, avx2_gemm_q4_Kx8},
             [SA_Q6_K] = {NULL, sa_ref_dot_q6_K, sa_ref_gemm_q6_K, avx2_gemm_q6_Kx8},
             [SA_Q8_K] = {kq_quantize_q8_K, NULL, NULL, NULL}},
};
