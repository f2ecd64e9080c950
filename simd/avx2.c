/* avx2.c - kernels for x86-64 with AVX2, FMA and F16C (Haswell / Zen and later).
 *
 * Only this file is compiled with -mavx2 -mfma -mf16c; dispatch.c calls into it after cpuid.
 * Semantics are those of scalar.c: the integer part of the quantized dots is exact, the float
 * accumulation order differs (8 lanes, several accumulators), quantize_q8_0 and f32_to_f16
 * are bit-identical to the reference. */
#include <immintrin.h>
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

/* roundf() on 8 lanes: round half away from zero. _mm256_round_ps only offers half-to-even
 * (and adding 0.5 before floor is wrong for 0.49999997), so truncate |x|, and bump by one when
 * the fraction |x| - trunc(|x|) (exact in float) is at least 0.5; then restore the sign. */
static inline __m256 round_half_away(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_andnot_ps(sign, x);
    const __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 ge_half = _mm256_cmp_ps(_mm256_sub_ps(a, t), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 r = _mm256_add_ps(t, _mm256_and_ps(ge_half, _mm256_set1_ps(1.0f)));
    return _mm256_or_ps(r, _mm256_and_ps(x, sign));
}

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
        /* the scale arithmetic is the reference's, in scalar float, so it rounds identically */
        const float d = hmax_ps(amax) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT); /* finite d: equals sa_fp32_to_fp16 */
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v[k], vid)));
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
 * and sum((u - 8) * a) = sum(u * a) - 8 * sum(a) with sum(a) precomputed per block (a_sum).
 * The 8 maddubs of a block stay in int16: each lane pair is at most 2 * 15 * 127 = 3810, and the
 * 8 summed at most 30480 < 32767. */
static inline __attribute__((always_inline)) void q4x8_tile(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *a,
                                                            const int16_t *as, const int NT, float *y, size_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i lo[4], hi[4];
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k));
            lo[k] = _mm256_and_si256(v, m4);                        /* elements 4k..4k+3 */
            hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4); /* elements 16+4k.. */
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
        for (int t = 0; t < NT; t++) {
            const BlockQ8_0 *ab = a + (size_t)t * nb + b;
            __m256i s = _mm256_maddubs_epi16(lo[0], bcast4(ab->qs));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[0], bcast4(ab->qs + 16)));
            for (int k = 1; k < 4; k++) {
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[k], bcast4(ab->qs + 4 * k)));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[k], bcast4(ab->qs + 16 + 4 * k)));
            }
            const __m256i p = _mm256_sub_epi32(_mm256_madd_epi16(s, ones),
                                               _mm256_set1_epi32(8 * (int32_t)as[(size_t)t * nb + b]));
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(ab->d)));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(p), scale));
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

void sa_avx2_gemm_q4_0x8(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *a, const int16_t *a_sum, int T, float *y,
                         size_t ldy) {
    int t = 0;
    for (; t + 4 <= T; t += 4) q4x8_tile(nb, w, a + (size_t)t * nb, a_sum + (size_t)t * nb, 4, y + t * ldy, ldy);
    switch (T - t) {
    case 3: q4x8_tile(nb, w, a + (size_t)t * nb, a_sum + (size_t)t * nb, 3, y + t * ldy, ldy); break;
    case 2: q4x8_tile(nb, w, a + (size_t)t * nb, a_sum + (size_t)t * nb, 2, y + t * ldy, ldy); break;
    case 1: q4x8_tile(nb, w, a + (size_t)t * nb, a_sum + (size_t)t * nb, 1, y + t * ldy, ldy); break;
    default: break;
    }
}

/* Q8_0: signed weights, so the usual sign transfer (see dot32_i8): |w| unsigned, a * sign(w)
 * signed; pairs reach 2 * 128 * 127 = 32512, so each maddubs is widened to int32 at once. */
static inline __attribute__((always_inline)) void q8x8_tile(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *a,
                                                            const int NT, float *y, size_t ldy) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i p[4];
        for (int t = 0; t < NT; t++) p[t] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k));
            const __m256i av = _mm256_sign_epi8(v, v);
            for (int t = 0; t < NT; t++) {
                const __m256i sa = _mm256_sign_epi8(bcast4(a[(size_t)t * nb + b].qs + 4 * k), v);
                p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(_mm256_maddubs_epi16(av, sa), ones));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
        for (int t = 0; t < NT; t++) {
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(a[(size_t)t * nb + b].d)));
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_cvtepi32_ps(p[t]), scale));
        }
    }
    for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

void sa_avx2_gemm_q8_0x8(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *a, int T, float *y, size_t ldy) {
    int t = 0;
    for (; t + 4 <= T; t += 4) q8x8_tile(nb, w, a + (size_t)t * nb, 4, y + t * ldy, ldy);
    switch (T - t) {
    case 3: q8x8_tile(nb, w, a + (size_t)t * nb, 3, y + t * ldy, ldy); break;
    case 2: q8x8_tile(nb, w, a + (size_t)t * nb, 2, y + t * ldy, ldy); break;
    case 1: q8x8_tile(nb, w, a + (size_t)t * nb, 1, y + t * ldy, ldy); break;
    default: break;
    }
}

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
};
