/* avx512.c - kernels for x86-64 with AVX-512 F/BW/VL and VNNI (Ice Lake, Sapphire Rapids, Zen 4).
 *
 * Only this file is compiled with the AVX-512 flags; dispatch.c calls into it after cpuid and
 * xgetbv. Same semantics as scalar.c (see avx2.c). Float kernels handle the tail with masked
 * loads and stores (masked-off lanes are never touched, so they cannot fault), and the int8
 * dots use vpdpbusd, which sums four u8 x s8 products into an int32 lane without saturation. */
#include <immintrin.h>

#include "kernels.h"

/* ---- helpers ---- */

/* Lanes [0, r) of a 16-lane vector, r clamped to 16. */
static inline __mmask16 tail_mask16(int r) {
    return r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1u);
}

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); } /* exact, like sa_fp16_lut */

/* Two 32-byte runs (the qs of two consecutive blocks, which are 34 bytes apart) in one zmm. */
static inline __m512i load_2x32(const void *p0, const void *p1) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)p0);
    const __m256i hi = _mm256_loadu_si256((const __m256i *)p1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Per-lane block scales for a zmm holding two blocks: lanes 0..7 block 0, 8..15 block 1. */
static inline __m512 scale_2(float s0, float s1) {
    return _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

/* 16 bytes of Q4_0 nibbles -> 32 unsigned values 0..15 in element order. */
static inline __m256i nibbles_q4_0(const uint8_t *qs) {
    const __m128i x = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* ---- quantization ---- */

/* roundf() on 16 lanes (half away from zero): truncate |x|, add one where the exact fraction
 * is >= 0.5, convert, then negate the lanes where x was negative. */
static inline __m128i round_to_i8(__m512 x) {
    const __m512 a = _mm512_abs_ps(x);
    __m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(a, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
    __m512i q = _mm512_cvttps_epi32(t);
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    q = _mm512_mask_sub_epi32(q, neg, _mm512_setzero_si512(), q);
    return _mm512_cvtepi32_epi8(q); /* |q| <= 127: truncating narrow is exact */
}

static void quantize_q8_0(const float *x, BlockQ8_0 *y, int n) {
    for (int b = 0; b < n / QK8_0; b++) {
        const float *xb = x + (size_t)b * QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        /* scale arithmetic in scalar float, exactly as the reference does it */
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512 vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)y[b].qs, round_to_i8(_mm512_mul_ps(v0, vid)));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), round_to_i8(_mm512_mul_ps(v1, vid)));
    }
}

/* ---- quantized dots ---- */

/* Exact s8 x s8 dot as int32 lanes: vpdpbusd needs an unsigned first operand, so use |w|
 * (abs of -128 is 0x80 = 128 unsigned) and move w's sign onto a. Activations are in
 * [-127, 127] (quantize_q8_0), so negating them cannot overflow. */
static inline __m512i dot64_i8(__m512i w, __m512i a) {
    const __m512i aw = _mm512_abs_epi8(w);
    const __mmask64 wneg = _mm512_movepi8_mask(w);
    const __m512i sa = _mm512_mask_sub_epi8(a, wneg, _mm512_setzero_si512(), a);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sa);
}

static inline __m256i dot32_i8(__m256i w, __m256i a) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
}

static float dot_q8_0(int n, const BlockQ8_0 *w, const BlockQ8_0 *a) {
    const int nb = n / QK8_0;
    __m512 acc = _mm512_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) { /* two blocks per zmm */
        const __m512i p = dot64_i8(load_2x32(w[b].qs, w[b + 1].qs), load_2x32(a[b].qs, a[b + 1].qs));
        const __m512 s = scale_2(h2f(w[b].d) * h2f(a[b].d), h2f(w[b + 1].d) * h2f(a[b + 1].d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (b < nb) {
        const __m256i p = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                                   _mm256_loadu_si256((const __m256i *)a[b].qs));
        const __m256 s = _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d));
        const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(p), s);
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        sum += _mm_cvtss_f32(r);
    }
    return sum;
}

/* Q4_0: the nibbles are already unsigned, so dpbusd(q, a) - dpbusd(8, a) = sum((q - 8) * a). */
static float dot_q4_0(int n, const BlockQ4_0 *w, const BlockQ8_0 *a) {
    const int nb = n / QK4_0;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) {
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(nibbles_q4_0(w[b].qs)),
                                             nibbles_q4_0(w[b + 1].qs), 1);
        const __m512i av = load_2x32(a[b].qs, a[b + 1].qs);
        const __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, av),
                                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, av));
        const __m512 s = scale_2(h2f(w[b].d) * h2f(a[b].d), h2f(w[b + 1].d) * h2f(a[b + 1].d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (b < nb) {
        const __m256i av = _mm256_loadu_si256((const __m256i *)a[b].qs);
        const __m256i p = _mm256_sub_epi32(
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles_q4_0(w[b].qs), av),
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), av));
        const __m256 s = _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d));
        const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(p), s);
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        sum += _mm_cvtss_f32(r);
    }
    return sum;
}

/* ---- float dots: 32 elements per iteration in two accumulators, then masked 16-lane steps
 * (the last one partial) ---- */

static inline __m512 load_f16(__mmask16 m, const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static inline __m512 load_bf16(__mmask16 m, const uint16_t *p) {
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16)); /* bf16 = top half of an f32 */
}

static float dot_f16(int n, const uint16_t *w, const float *a) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(load_f16(0xFFFF, w + i), _mm512_loadu_ps(a + i), acc0);
        acc1 = _mm512_fmadd_ps(load_f16(0xFFFF, w + i + 16), _mm512_loadu_ps(a + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail_mask16(n - i);
        acc0 = _mm512_fmadd_ps(load_f16(m, w + i), _mm512_maskz_loadu_ps(m, a + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float dot_bf16(int n, const uint16_t *w, const float *a) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(load_bf16(0xFFFF, w + i), _mm512_loadu_ps(a + i), acc0);
        acc1 = _mm512_fmadd_ps(load_bf16(0xFFFF, w + i + 16), _mm512_loadu_ps(a + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail_mask16(n - i);
        acc0 = _mm512_fmadd_ps(load_bf16(m, w + i), _mm512_maskz_loadu_ps(m, a + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float dot_f32(int n, const float *w, const float *a) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(a + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(a + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail_mask16(n - i);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, a + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* ---- axpy ---- */

static void axpy_f32(int n, float a, const float *x, float *y) {
    const __m512 va = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask16(n - i);
        const __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static void axpy_f16(int n, float a, const uint16_t *x, float *y) {
    const __m512 va = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask16(n - i);
        const __m512 r = _mm512_fmadd_ps(va, load_f16(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* ---- conversion ---- */

/* vcvtps2ph rounds to nearest even like sa_fp32_to_fp16; NaN lanes are rewritten to the
 * reference's canonical quiet NaN (sign | 0x7E00) so the results agree bit for bit. */
static void f32_to_f16(int n, const float *x, uint16_t *y) {
    const __m256i magbits = _mm256_set1_epi16(0x7FFF), qnan = _mm256_set1_epi16(0x7E00);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        const __m256i canon = _mm256_or_si256(_mm256_andnot_si256(magbits, h), qnan);
        h = _mm256_mask_blend_epi16(is_nan, h, canon);
        _mm256_mask_storeu_epi16(y + i, m, h);
    }
}

const SaKernels sa_kernels_avx512 = {
    .name = "avx512",
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
    .exp_sub_sum = sa_avx2_exp_sub_sum,
    .silu_mul = sa_avx2_silu_mul,
};
