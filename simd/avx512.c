/* avx512.c - kernels for x86-64 with AVX-512 F/BW/VL and VNNI (Ice Lake, Sapphire Rapids, Zen 4/5).
 *
 * Every function carries its own target attribute (A512 below); dispatch.c calls into this table
 * only after cpuid reports AVX512F, BW, VL and VNNI and xgetbv says the OS saves the opmask and
 * zmm state. No AVX-512 DQ or BF16 instruction is used (neither is checked for). Same semantics
 * as scalar.c (see avx2.c): integer dots exact, quantize_q8_0 and f32_to_f16 bit-identical, the
 * interleaved GEMMs bit-identical to the reference, float kernels to float rounding. The int8
 * dots use vpdpbusd, which sums four u8 x s8 products into an int32 lane without saturation;
 * float tails use masked loads and stores (masked-off lanes are never touched, so never fault).
 * The Q8_0-cache attention kernels are the AVX2 table's.
 *
 * How it is tested. The development machine has no AVX-512, so this file is compiled twice:
 *   - as is, with the AVX-512 target attributes: the table "avx512", tested natively by
 *     tests/test_kernels.c (against scalar.c) on any CPU that has AVX-512 VNNI;
 *   - with -DSALIGN_SIMDE (Makefile, build/simd/avx512_emu.o, only when libsimde-dev is
 *     installed): the same source against SIMD Everywhere's portable implementations of the
 *     AVX-512 intrinsics, as the table "avx512_emu", linked into the test binaries only. It runs
 *     on any AVX2 CPU (SIMDe uses AVX2/FMA/F16C for the halves) and the kernel tests compare it
 *     with the reference exactly as they do the native tables; tests/test_avx512_emu.c and
 *     tests/run-avx512-emu.sh (SALIGN_ISA=avx512_emu) also run whole matmuls and stories260K
 *     on it. The few intrinsics SIMDe 0.7.4 (Debian 12) lacks are defined below, element by
 *     element from Intel's definitions; that object contains no zmm instruction.
 * The emulation checks the algorithms (lanes, masks, tails, the exact integer and float
 * arithmetic), not the silicon: a SIMDe bug can differ from the hardware, so the native run on
 * an AVX-512 machine stays the final word. */
#include <stdint.h>
#include <string.h>

#ifdef SALIGN_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>
#define A512 /* no target: plain x86-64 + AVX2 code */
#define AVX512_TABLE sa_kernels_avx512_emu
#define AVX512_NAME "avx512_emu"
#else
#include <immintrin.h>
#define A512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define AVX512_TABLE sa_kernels_avx512
#define AVX512_NAME "avx512"
#endif

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline)) A512

#ifdef SALIGN_SIMDE
/* ---- the AVX-512F intrinsics SIMDe 0.7.4 does not provide, written element by element from
 * Intel's definitions (a newer SIMDe that has one defines its alias and this one is skipped) ---- */
#ifndef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(v) emu_cvtepi32_ps(v)
static inline __m512 emu_cvtepi32_ps(__m512i v) {
    int32_t i[16];
    float f[16];
    _mm512_storeu_si512(i, v);
    for (int k = 0; k < 16; k++) f[k] = (float)i[k]; /* round to nearest, as MXCSR's default */
    return _mm512_loadu_ps(f);
}
#endif
#ifndef _mm512_cvttps_epi32
#define _mm512_cvttps_epi32(v) emu_cvttps_epi32(v)
static inline __m512i emu_cvttps_epi32(__m512 v) {
    float f[16];
    int32_t i[16];
    _mm512_storeu_ps(f, v);
    for (int k = 0; k < 16; k++) /* NaN and out of range: the "integer indefinite" 0x80000000 */
        i[k] = f[k] > -2147483904.0f && f[k] < 2147483648.0f ? (int32_t)f[k] : INT32_MIN;
    return _mm512_loadu_si512(i);
}
#endif
#ifndef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32(v) emu_cvtps_epi32(v)
static inline __m512i emu_cvtps_epi32(__m512 v) { /* in range only (|v| < 2^31): round to nearest even */
    float f[16];
    int32_t i[16];
    _mm512_storeu_ps(f, v);
    for (int k = 0; k < 16; k++) i[k] = (int32_t)nearbyintf(f[k]);
    return _mm512_loadu_si512(i);
}
#endif
#ifndef _mm512_cvtepi32_epi8
#define _mm512_cvtepi32_epi8(v) emu_cvtepi32_epi8(v)
static inline __m128i emu_cvtepi32_epi8(__m512i v) { /* vpmovdb: keep the low byte */
    int32_t i[16];
    uint8_t b[16];
    _mm512_storeu_si512(i, v);
    for (int k = 0; k < 16; k++) b[k] = (uint8_t)i[k];
    return _mm_loadu_si128((const __m128i *)b);
}
#endif
#ifndef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32(v) emu_cvtepu16_epi32(v)
static inline __m512i emu_cvtepu16_epi32(__m256i v) {
    uint16_t h[16];
    int32_t i[16];
    _mm256_storeu_si256((__m256i *)h, v);
    for (int k = 0; k < 16; k++) i[k] = h[k];
    return _mm512_loadu_si512(i);
}
#endif
#ifndef _mm512_cvtph_ps
#define _mm512_cvtph_ps(v) emu_cvtph_ps(v)
static inline __m512 emu_cvtph_ps(__m256i v) { /* the F16C conversion of each half (exact) */
    uint16_t h[16];
    float f[16];
    _mm256_storeu_si256((__m256i *)h, v);
    for (int k = 0; k < 16; k++) f[k] = _cvtsh_ss(h[k]);
    return _mm512_loadu_ps(f);
}
#endif
#ifndef _mm512_cvtps_ph
/* Only round-to-nearest-even is used here (checked at compile time); F16C on each 8-lane half. */
#define _mm512_cvtps_ph(v, imm)                                                                    \
    ((void)sizeof(char[(imm) == (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) ? 1 : -1]), emu_cvtps_ph(v))
static inline __m256i emu_cvtps_ph(__m512 v) {
    float f[16];
    _mm512_storeu_ps(f, v);
    const __m128i lo = _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT);
    const __m128i hi = _mm256_cvtps_ph(_mm256_loadu_ps(f + 8), _MM_FROUND_TO_NEAREST_INT);
    return _mm256_set_m128i(hi, lo);
}
#endif
/* Masked loads and stores: only the lanes whose mask bit is set touch memory. */
#ifndef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps(m, p) emu_maskz_loadu_ps(m, p)
static inline __m512 emu_maskz_loadu_ps(__mmask16 m, const void *p) {
    float f[16];
    for (int k = 0; k < 16; k++) {
        f[k] = 0.0f;
        if ((m >> k) & 1) memcpy(&f[k], (const float *)p + k, sizeof(float));
    }
    return _mm512_loadu_ps(f);
}
#endif
#ifndef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps(p, m, v) emu_mask_storeu_ps(p, m, v)
static inline void emu_mask_storeu_ps(void *p, __mmask16 m, __m512 v) {
    float f[16];
    _mm512_storeu_ps(f, v);
    for (int k = 0; k < 16; k++)
        if ((m >> k) & 1) memcpy((float *)p + k, &f[k], sizeof(float));
}
#endif
#ifndef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16(m, p) emu_maskz_loadu_epi16(m, p)
static inline __m256i emu_maskz_loadu_epi16(__mmask16 m, const void *p) {
    uint16_t h[16];
    for (int k = 0; k < 16; k++) {
        h[k] = 0;
        if ((m >> k) & 1) memcpy(&h[k], (const uint16_t *)p + k, sizeof(uint16_t));
    }
    return _mm256_loadu_si256((const __m256i *)h);
}
#endif
#ifndef _mm256_mask_storeu_epi16
#define _mm256_mask_storeu_epi16(p, m, v) emu_mask_storeu_epi16(p, m, v)
static inline void emu_mask_storeu_epi16(void *p, __mmask16 m, __m256i v) {
    uint16_t h[16];
    _mm256_storeu_si256((__m256i *)h, v);
    for (int k = 0; k < 16; k++)
        if ((m >> k) & 1) memcpy((uint16_t *)p + k, &h[k], sizeof(uint16_t));
}
#endif
#endif /* SALIGN_SIMDE */

/* ---- helpers ---- */

/* Lanes [0, r) of a 16-lane vector, r clamped to 16. */
INLINE __mmask16 tail_mask16(int r) { return r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1u); }

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); } /* exact, like sa_fp16_lut */

INLINE __m256 hi256(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

INLINE float hsum256(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

INLINE float hsum512(__m512 v) { return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), hi256(v))); }

INLINE float hmax512(__m512 v) {
    const __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(v), hi256(v));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Two 32-byte runs in one zmm: p0 in lanes 0..7, p1 in lanes 8..15. */
INLINE __m512i load_2x32(const void *p0, const void *p1) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)p0);
    const __m256i hi = _mm256_loadu_si256((const __m256i *)p1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Per-lane block scales for a zmm holding two blocks: lanes 0..7 block 0, 8..15 block 1. */
INLINE __m512 scale_2(float s0, float s1) {
    return _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

/* 16 bytes of Q4_0 nibbles -> 32 unsigned values 0..15 in element order. */
INLINE __m256i nibbles_q4_0(const uint8_t *qs) {
    const __m128i x = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* 16 halves / bf16s / floats as 16 floats: all of them, or the lanes of a mask (others 0). */
INLINE __m512 load_f16(__mmask16 m, const uint16_t *p) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
INLINE __m512 load_f16_16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

INLINE __m512 bf16_to_f32(__m256i h) { /* bf16 = top half of an f32: widen and shift (exact) */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
INLINE __m512 load_bf16(__mmask16 m, const uint16_t *p) { return bf16_to_f32(_mm256_maskz_loadu_epi16(m, p)); }
INLINE __m512 load_bf16_16(const uint16_t *p) { return bf16_to_f32(_mm256_loadu_si256((const __m256i *)p)); }

INLINE __m512 load_f32(__mmask16 m, const float *p) { return _mm512_maskz_loadu_ps(m, p); }
INLINE __m512 load_f32_16(const float *p) { return _mm512_loadu_ps(p); }

/* ---- quantization ---- */

/* rintf() on 16 lanes: vcvtps2dq rounds ties to even (MXCSR's default), as the reference. */
INLINE __m128i round_to_i8(__m512 x) {
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(x)); /* |q| <= 127: the truncating narrow is exact */
}

static A512 void quantize_q8_0(const float *x, BlockQ8_0 *y, int n) {
    for (int b = 0; b < n / QK8_0; b++) {
        const float *xb = x + (size_t)b * QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = hmax512(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        /* the scale arithmetic in scalar float, exactly as the reference (sa_quantize_act_q8_0) */
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = _cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT); /* finite d: equals sa_fp32_to_fp16 */
        const __m512 vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)y[b].qs, round_to_i8(_mm512_mul_ps(v0, vid)));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), round_to_i8(_mm512_mul_ps(v1, vid)));
    }
}

/* ---- quantized dots (two blocks per zmm) ----
 * vpdpbusd multiplies unsigned bytes by signed ones. Q8_0 weights are made unsigned by flipping
 * their top bit (w ^ 0x80 = w + 128 as a u8), and the 128 * sum(a) that adds is one more vpdpbusd
 * of 0x80 bytes with the same activations, subtracted: exact for every weight byte (-128 too)
 * and every activation byte. Q4_0 nibbles are already unsigned: dot(q - 8, a) = dot(q, a) -
 * dot(8, a). */

INLINE __m512i dot64_q8(__m512i w, __m512i a) {
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(w, x80), a),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), x80, a));
}

INLINE __m256i dot32_q8(__m256i w, __m256i a) {
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    return _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_xor_si256(w, x80), a),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), x80, a));
}

INLINE __m512i dot64_q4(__m512i q, __m512i a) {
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, a),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), a));
}

INLINE __m256i dot32_q4(__m256i q, __m256i a) {
    return _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q, a),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), a));
}

static A512 float dot_q8_0(int n, const BlockQ8_0 *w, const BlockQ8_0 *a) {
    const int nb = n / QK8_0;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int b = 0;
    for (; b + 3 < nb; b += 4) { /* two independent accumulators: the FMA latency chain */
        const __m512i p0 = dot64_q8(load_2x32(w[b].qs, w[b + 1].qs), load_2x32(a[b].qs, a[b + 1].qs));
        const __m512i p1 = dot64_q8(load_2x32(w[b + 2].qs, w[b + 3].qs), load_2x32(a[b + 2].qs, a[b + 3].qs));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0),
                               scale_2(h2f(w[b].d) * h2f(a[b].d), h2f(w[b + 1].d) * h2f(a[b + 1].d)), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1),
                               scale_2(h2f(w[b + 2].d) * h2f(a[b + 2].d), h2f(w[b + 3].d) * h2f(a[b + 3].d)), acc1);
    }
    for (; b + 1 < nb; b += 2) {
        const __m512i p = dot64_q8(load_2x32(w[b].qs, w[b + 1].qs), load_2x32(a[b].qs, a[b + 1].qs));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale_2(h2f(w[b].d) * h2f(a[b].d), h2f(w[b + 1].d) * h2f(a[b + 1].d)),
                               acc0);
    }
    float sum = hsum512(_mm512_add_ps(acc0, acc1));
    if (b < nb) {
        const __m256i p = dot32_q8(_mm256_loadu_si256((const __m256i *)w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        sum += hsum256(_mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d))));
    }
    return sum;
}

static A512 float dot_q4_0(int n, const BlockQ4_0 *w, const BlockQ8_0 *a) {
    const int nb = n / QK4_0;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int b = 0;
    for (; b + 3 < nb; b += 4) {
        const __m512i q0 = _mm512_inserti64x4(_mm512_castsi256_si512(nibbles_q4_0(w[b].qs)), nibbles_q4_0(w[b + 1].qs), 1);
        const __m512i q1 = _mm512_inserti64x4(_mm512_castsi256_si512(nibbles_q4_0(w[b + 2].qs)), nibbles_q4_0(w[b + 3].qs), 1);
        const __m512i p0 = dot64_q4(q0, load_2x32(a[b].qs, a[b + 1].qs));
        const __m512i p1 = dot64_q4(q1, load_2x32(a[b + 2].qs, a[b + 3].qs));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0),
                               scale_2(h2f(w[b].d) * h2f(a[b].d), h2f(w[b + 1].d) * h2f(a[b + 1].d)), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1),
                               scale_2(h2f(w[b + 2].d) * h2f(a[b + 2].d), h2f(w[b + 3].d) * h2f(a[b + 3].d)), acc1);
    }
    for (; b + 1 < nb; b += 2) {
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(nibbles_q4_0(w[b].qs)), nibbles_q4_0(w[b + 1].qs), 1);
        const __m512i p = dot64_q4(q, load_2x32(a[b].qs, a[b + 1].qs));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale_2(h2f(w[b].d) * h2f(a[b].d), h2f(w[b + 1].d) * h2f(a[b + 1].d)),
                               acc0);
    }
    float sum = hsum512(_mm512_add_ps(acc0, acc1));
    if (b < nb) {
        const __m256i p = dot32_q4(nibbles_q4_0(w[b].qs), _mm256_loadu_si256((const __m256i *)a[b].qs));
        sum += hsum256(_mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(w[b].d) * h2f(a[b].d))));
    }
    return sum;
}

/* ---- float dots: 64 elements per iteration in four accumulators, then masked 16-lane steps
 * (the last one partial) ---- */

#define FLOAT_DOT(name, LOADW, w_t)                                                                              \
    static A512 float name(int n, const w_t *w, const float *a) {                                                \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                                           \
        __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();                                           \
        int i = 0;                                                                                               \
        for (; i + 64 <= n; i += 64) {                                                                           \
            acc0 = _mm512_fmadd_ps(LOADW##_16(w + i), _mm512_loadu_ps(a + i), acc0);                          \
            acc1 = _mm512_fmadd_ps(LOADW##_16(w + i + 16), _mm512_loadu_ps(a + i + 16), acc1);                \
            acc2 = _mm512_fmadd_ps(LOADW##_16(w + i + 32), _mm512_loadu_ps(a + i + 32), acc2);                \
            acc3 = _mm512_fmadd_ps(LOADW##_16(w + i + 48), _mm512_loadu_ps(a + i + 48), acc3);                \
        }                                                                                                        \
        for (; i < n; i += 16) {                                                                                 \
            const __mmask16 m = tail_mask16(n - i);                                                              \
            acc0 = _mm512_fmadd_ps(LOADW(m, w + i), _mm512_maskz_loadu_ps(m, a + i), acc0);                      \
        }                                                                                                        \
        return hsum512(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));                     \
    }

FLOAT_DOT(dot_f16, load_f16, uint16_t)
FLOAT_DOT(dot_bf16, load_bf16, uint16_t)
FLOAT_DOT(dot_f32, load_f32, float)

/* ---- axpy ---- */

static A512 void axpy_f32(int n, float a, const float *x, float *y) {
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static A512 void axpy_f16(int n, float a, const uint16_t *x, float *y) {
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, load_f16_16(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, load_f16(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* ---- conversion ---- */

/* vcvtps2ph rounds to nearest even like sa_fp32_to_fp16; NaN lanes are rewritten to the
 * reference's canonical quiet NaN (sign | 0x7E00) so the results agree bit for bit. */
static A512 void f32_to_f16(int n, const float *x, uint16_t *y) {
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

/* ---- 8-row interleaved GEMM (layouts in kernels.h) ----
 * Batches (T > 1): two groups side by side in one zmm: lanes 0..7 are the 8 rows of group g, lanes 8..15 those of
 * group g + 1 (32 bytes of each group's block column, same chunk k), so the 4 activation bytes of
 * chunk k are broadcast from memory to all 16 lanes and one vpdpbusd advances 16 rows. The
 * results come out as 16 consecutive floats of y (the two groups' rows are adjacent): no
 * horizontal sums, no shuffles of the activations. An odd last group is paired with itself and
 * only its 8 lanes are stored. A tile covers NT <= 4 tokens: the unpacked weights of a block are
 * reused NT times.
 * The integer block dot starts from the correction (-s8 for Q4_0's unsigned nibbles, -16 * s8 =
 * -128 * sum(a) for Q8_0's flipped weights, see dot64_q8), so each lane ends with the exact dot
 * (|value| < 2^21 all along: no wraparound). The float part is the reference's: scale = d_w *
 * d_a, then sum = sum + (float)idot * scale, mul then add, blocks in order (kernels.h).
 * Decode (T = 1) uses the one-group 256-bit tiles further down instead. */

INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
INLINE __m256i bcast4_256(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The two groups' 8 fp16 scales of one block column as 16 floats (exact). */
INLINE __m512 scales_x16(const uint16_t *da, const uint16_t *db) {
    const __m128i lo = _mm_loadu_si128((const __m128i *)da), hi = _mm_loadu_si128((const __m128i *)db);
    return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

INLINE void q4x16_tile(int nb, const BlockQ4_0x8 *wa, const BlockQ4_0x8 *wb, const BlockQ8_0 *aq, const float *ad,
                       const int32_t *as, const int NT, float *y, size_t ldy, __mmask16 store, const char *pf_end) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    /* each of the two streams prefetches its own position a whole number of pair spans ahead */
    const size_t pf = sa_pf_dist(wb != wa ? 2 : 1, (size_t)nb * sizeof *wa);
    for (int b = 0; b < nb; b++) {
        if (pf_end) {
            sa_prefetch_at(wa + b, pf, sizeof *wa, pf_end);
            if (wb != wa) sa_prefetch_at(wb + b, pf, sizeof *wb, pf_end);
        }
        __m512i lo[4], hi[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i v = load_2x32(wa[b].qs + 32 * k, wb[b].qs + 32 * k);
            lo[k] = _mm512_and_si512(v, m4);                        /* elements 4k..4k+3 */
            hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4); /* elements 16+4k.. */
        }
        const __m512 dw = scales_x16(wa[b].d, wb[b].d);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const size_t i = (size_t)t * nb + b;
            const int8_t *q = aq[i].qs;
            /* two dependency chains of four */
            __m512i p0 = _mm512_set1_epi32(-as[i]), p1 = _mm512_setzero_si512();
            p0 = _mm512_dpbusd_epi32(p0, lo[0], bcast4(q));
            p1 = _mm512_dpbusd_epi32(p1, hi[0], bcast4(q + 16));
            p0 = _mm512_dpbusd_epi32(p0, lo[1], bcast4(q + 4));
            p1 = _mm512_dpbusd_epi32(p1, hi[1], bcast4(q + 20));
            p0 = _mm512_dpbusd_epi32(p0, lo[2], bcast4(q + 8));
            p1 = _mm512_dpbusd_epi32(p1, hi[2], bcast4(q + 24));
            p0 = _mm512_dpbusd_epi32(p0, lo[3], bcast4(q + 12));
            p1 = _mm512_dpbusd_epi32(p1, hi[3], bcast4(q + 28));
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(ad[i]));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)), scale));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + (size_t)t * ldy, store, acc[t]);
}

/* The same 16 rows x 8 tokens from SaQ8x8 (kernels.h): one activation stream with constant
 * offsets, and each token's dot chain starts from its stored -s8 (a broadcast load) instead of
 * a negated, moved and broadcast scalar. Same arithmetic as q4x16_tile, token by token. Measured
 * on the Zen 5 VM (2048x2048, 8192x2048 and 2048x8192 Q4_0 times 512 tokens in the matmul's
 * token chunks, one thread, CPU time, best of 8, three runs): q4x16_tile 224-252 GMAC/s, this
 * 255-285 (+10-22%); 4 tokens per pass from SaQ8x8, or one dot chain per token, were slower.
 * Tokens past nt are computed on the tile's zero padding and not stored. pf_end != NULL: also
 * prefetch the next group pair (2 * nb blocks on, before pf_end), read from memory while this
 * pair's passes run from cache. Measured (same harness, 8 layers of 1B-shaped matrices, 190 MB,
 * variants alternated, best of 5): 2 threads 458-502 -> 477-537 GMAC/s, faster in 9 of 10 pairs
 * of runs; one thread +2%; prefetching on every pass instead of the first: no gain. */
INLINE void q4x16_tile8(int nb, const BlockQ4_0x8 *wa, const BlockQ4_0x8 *wb, const SaQ8x8 *x, int nt, float *y, size_t ldy,
                        __mmask16 store, const char *pf_end) {
    const size_t pf = (size_t)2 * nb * sizeof *wa;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < 8; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i lo[4], hi[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i v = load_2x32(wa[b].qs + 32 * k, wb[b].qs + 32 * k);
            lo[k] = _mm512_and_si512(v, m4);
            hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        const __m512 dw = scales_x16(wa[b].d, wb[b].d);
        if (pf_end) {
            sa_prefetch_at(wa + b, pf, sizeof *wa, pf_end);
            sa_prefetch_at(wb + b, pf, sizeof *wb, pf_end);
        }
        const SaQ8x8 *xb = x + b;
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            const int8_t *q = xb->qs[t];
            __m512i p0 = _mm512_set1_epi32(xb->ns8[t]), p1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                p0 = _mm512_dpbusd_epi32(p0, lo[k], bcast4(q + 4 * k));
                p1 = _mm512_dpbusd_epi32(p1, hi[k], bcast4(q + 16 + 4 * k));
            }
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xb->d[t]));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)), scale));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < 8; t++)
        if (t < nt) _mm512_mask_storeu_ps(y + (size_t)t * ldy, store, acc[t]);
}

INLINE void q8x16_tile(int nb, const BlockQ8_0x8 *wa, const BlockQ8_0x8 *wb, const BlockQ8_0 *aq, const float *ad,
                       const int32_t *as, const int NT, float *y, size_t ldy, __mmask16 store, const char *pf_end) {
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    /* each of the two streams prefetches its own position a whole number of pair spans ahead */
    const size_t pf = sa_pf_dist(wb != wa ? 2 : 1, (size_t)nb * sizeof *wa);
    for (int b = 0; b < nb; b++) {
        if (pf_end) {
            sa_prefetch_at(wa + b, pf, sizeof *wa, pf_end);
            if (wb != wa) sa_prefetch_at(wb + b, pf, sizeof *wb, pf_end);
        }
        __m512i u[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) u[k] = _mm512_xor_si512(load_2x32(wa[b].qs + 32 * k, wb[b].qs + 32 * k), x80);
        const __m512 dw = scales_x16(wa[b].d, wb[b].d);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const size_t i = (size_t)t * nb + b;
            const int8_t *q = aq[i].qs;
            __m512i p0 = _mm512_set1_epi32(-16 * as[i]), p1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 8; k += 2) {
                p0 = _mm512_dpbusd_epi32(p0, u[k], bcast4(q + 4 * k));
                p1 = _mm512_dpbusd_epi32(p1, u[k + 1], bcast4(q + 4 * k + 4));
            }
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(ad[i]));
            acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)), scale));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + (size_t)t * ldy, store, acc[t]);
}

/* Decode (T = 1): one group (8 rows) per pass, one weight stream prefetched SA_PF_AHEAD ahead. It
 * replaced the zmm pair tile (two groups, two streams) for decode after timing on an AMD EPYC with
 * AVX-512 VNNI (cpuid family 25 model 17): 1B Q4_0 decode ~30% faster (tools/bench/RESULTS.md).
 * Two weight streams per pass read slower than one even when both are prefetched right.
 * Q4_0: within the one stream, each zmm holds two consecutive blocks of the group (lanes 0..7
 * block b, lanes 8..15 block b + 1: the 8 rows twice), so one vpdpbusd, AND and shift serve two
 * blocks; each half takes its own block's activation bytes (a broadcast and a masked broadcast).
 * The float part stays per block and in block order: the product of block b is added to the row
 * sums before that of block b + 1, exactly the reference's steps (kernels.h). Measured on a Zen 5
 * VM (session 12; CPU time, best of 200-600 alternated with the 256-bit one-block loop it
 * replaced): 256 x 2048 and 512 x 2048 from L2 40-46 -> 46-59 GB/s, 16384 x 2048 from L3 41-45 ->
 * 48-53 GB/s; from memory the same within the host's noise (there the reads set the pace; the
 * faster arithmetic only leaves more of each block's time to them). An odd last block runs the
 * 256-bit one-block step. Q8_0 stays one block per 256-bit pass: the same two-block scheme
 * measured no faster (80 GB/s both from L2, where the reads already set the pace). */
INLINE __m512i set_2(int32_t a, int32_t b) { return _mm512_mask_set1_epi32(_mm512_set1_epi32(a), (__mmask16)0xFF00, b); }
INLINE __m512i bcast4_2(const int8_t *pa, const int8_t *pb) { /* pa's 4 bytes in lanes 0..7, pb's in 8..15 */
    int32_t a, b;
    memcpy(&a, pa, 4);
    memcpy(&b, pb, 4);
    return set_2(a, b);
}

/* acc (the 8 rows) += block b's product, then += block b + 1's: idot and the scales as lanes
 * 0..7 / 8..15 for blocks b / b + 1. */
INLINE __m256 acc_2(__m256 acc, __m512i idot, const uint16_t *dwa, const uint16_t *dwb, float ada, float adb) {
    const __m512 scale = _mm512_mul_ps(scales_x16(dwa, dwb), scale_2(ada, adb));
    const __m512 prod = _mm512_mul_ps(_mm512_cvtepi32_ps(idot), scale);
    acc = _mm256_add_ps(acc, _mm512_castps512_ps256(prod));
    return _mm256_add_ps(acc, hi256(prod));
}

INLINE __m256 q4x8_block(__m256 acc, const BlockQ4_0x8 *w, const BlockQ8_0 *aq, float ad, int32_t as) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i lo[4], hi[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * k));
        lo[k] = _mm256_and_si256(v, m4);
        hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w->d));
    const int8_t *q = aq->qs;
    __m256i p0 = _mm256_set1_epi32(-as), p1 = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        p0 = _mm256_dpbusd_epi32(p0, lo[k], bcast4_256(q + 4 * k));
        p1 = _mm256_dpbusd_epi32(p1, hi[k], bcast4_256(q + 16 + 4 * k));
    }
    const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(ad));
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(p0, p1)), scale));
}

INLINE void q4x8_gemv(int nb, const BlockQ4_0x8 *w, const BlockQ8_0 *aq, const float *ad, const int32_t *as, float *y,
                      const char *pf_end) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        sa_prefetch_ahead(w + b, 2 * sizeof *w, pf_end);
        __m512i lo[4], hi[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m512i v = load_2x32(w[b].qs + 32 * k, w[b + 1].qs + 32 * k);
            lo[k] = _mm512_and_si512(v, m4);
            hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        const int8_t *qa = aq[b].qs, *qb = aq[b + 1].qs;
        /* two dependency chains of four */
        __m512i p0 = set_2(-as[b], -as[b + 1]), p1 = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            p0 = _mm512_dpbusd_epi32(p0, lo[k], bcast4_2(qa + 4 * k, qb + 4 * k));
            p1 = _mm512_dpbusd_epi32(p1, hi[k], bcast4_2(qa + 16 + 4 * k, qb + 16 + 4 * k));
        }
        acc = acc_2(acc, _mm512_add_epi32(p0, p1), w[b].d, w[b + 1].d, ad[b], ad[b + 1]);
    }
    if (b < nb) {
        sa_prefetch_ahead(w + b, sizeof *w, pf_end);
        acc = q4x8_block(acc, w + b, aq + b, ad[b], as[b]);
    }
    _mm256_storeu_ps(y, acc);
}

INLINE void q8x8_gemv(int nb, const BlockQ8_0x8 *w, const BlockQ8_0 *aq, const float *ad, const int32_t *as, float *y,
                      const char *pf_end) {
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        sa_prefetch_ahead(w + b, sizeof *w, pf_end);
        __m256i u[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) u[k] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * k)), x80);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w[b].d));
        const int8_t *q = aq[b].qs;
        __m256i p0 = _mm256_set1_epi32(-16 * as[b]), p1 = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int k = 0; k < 8; k += 2) {
            p0 = _mm256_dpbusd_epi32(p0, u[k], bcast4_256(q + 4 * k));
            p1 = _mm256_dpbusd_epi32(p1, u[k + 1], bcast4_256(q + 4 * k + 4));
        }
        const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(ad[b]));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(p0, p1)), scale));
    }
    _mm256_storeu_ps(y, acc);
}

/* Batches: group pairs (g, g + 1) x token tiles of 4, then the remaining 1..3 tokens (an odd last
 * group is paired with itself). Small batches (2 <= T <= SA_PF_MAX_T) prefetch ahead of both
 * groups on their first pass over the pair, each stream inside itself (sa_pf_dist); pf_end ==
 * NULL in the tiles means no prefetching (larger batches are compute-bound and reuse weights
 * from cache). */
#define GEMM_X16(GEMV, TILE, W_T)                                                                                    \
    const char *pf_end = T <= SA_PF_MAX_T ? (const char *)(w + (size_t)ng * nb) : NULL;                              \
    if (T == 1) {                                                                                                    \
        for (int g = 0; g < ng; g++) GEMV(nb, w + (size_t)g * nb, a->q, a->d, a->s8, y + 8 * g, pf_end);             \
        return;                                                                                                      \
    }                                                                                                                \
    for (int g = 0; g < ng; g += 2) {                                                                                \
        const W_T *wa = w + (size_t)g * nb;                                                                          \
        const int pair = g + 1 < ng;                                                                                 \
        const W_T *wb = pair ? wa + nb : wa;                                                                         \
        const __mmask16 store = pair ? (__mmask16)0xFFFF : (__mmask16)0x00FF;                                        \
        float *yg = y + 8 * g;                                                                                       \
        int t = 0;                                                                                                   \
        for (; t + 4 <= T; t += 4)                                                                                   \
            TILE(nb, wa, wb, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, 4, yg + t * ldy, ldy, \
                 store, t == 0 ? pf_end : NULL);                                                                     \
        switch (T - t) {                                                                                             \
        case 3: TILE(nb, wa, wb, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, 3, yg + t * ldy, ldy, store, t == 0 ? pf_end : NULL); break; \
        case 2: TILE(nb, wa, wb, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, 2, yg + t * ldy, ldy, store, t == 0 ? pf_end : NULL); break; \
        case 1: TILE(nb, wa, wb, a->q + (size_t)t * nb, a->d + (size_t)t * nb, a->s8 + (size_t)t * nb, 1, yg + t * ldy, ldy, store, t == 0 ? pf_end : NULL); break; \
        default: break;                                                                                              \
        }                                                                                                            \
    }

static A512 void gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    if (a->x8 && T > SA_PF_MAX_T) {
        /* batches with the grouped activations: 8 tokens per pass; the first pass over a pair
         * also prefetches the next pair (its later passes find the pair in cache) */
        for (int g = 0; g < ng; g += 2) {
            const BlockQ4_0x8 *wa = w + (size_t)g * nb;
            const int pair = g + 1 < ng;
            const __mmask16 store = pair ? (__mmask16)0xFFFF : (__mmask16)0x00FF;
            for (int t = 0; t < T; t += 8)
                q4x16_tile8(nb, wa, pair ? wa + nb : wa, a->x8 + (size_t)(t / 8) * nb, T - t < 8 ? T - t : 8, y + 8 * g + t * ldy,
                            ldy, store, t == 0 ? (const char *)(w + (size_t)ng * nb) : NULL);
        }
        return;
    }
    GEMM_X16(q4x8_gemv, q4x16_tile, BlockQ4_0x8)
}

static A512 void gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    GEMM_X16(q8x8_gemv, q8x16_tile, BlockQ8_0x8)
}

/* ---- attention over an f16 KV cache ---- */

/* Four keys at a time, 16 elements per step, the head's tail (hd % 16) as one masked step. */
static A512 void attn_scores_f16(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s) {
    const int h16 = hd & ~15;
    const __mmask16 mt = tail_mask16(hd - h16);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *k0 = k + (size_t)j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int i = 0; i < h16; i += 16) {
            const __m512 qv = _mm512_loadu_ps(q + i);
            a0 = _mm512_fmadd_ps(load_f16_16(k0 + i), qv, a0);
            a1 = _mm512_fmadd_ps(load_f16_16(k1 + i), qv, a1);
            a2 = _mm512_fmadd_ps(load_f16_16(k2 + i), qv, a2);
            a3 = _mm512_fmadd_ps(load_f16_16(k3 + i), qv, a3);
        }
        if (mt) {
            const __m512 qv = _mm512_maskz_loadu_ps(mt, q + h16);
            a0 = _mm512_fmadd_ps(load_f16(mt, k0 + h16), qv, a0);
            a1 = _mm512_fmadd_ps(load_f16(mt, k1 + h16), qv, a1);
            a2 = _mm512_fmadd_ps(load_f16(mt, k2 + h16), qv, a2);
            a3 = _mm512_fmadd_ps(load_f16(mt, k3 + h16), qv, a3);
        }
        /* fold each to 8 lanes, then the four sums together: [s0 s1 s2 s3] */
        const __m256 b0 = _mm256_add_ps(_mm512_castps512_ps256(a0), hi256(a0));
        const __m256 b1 = _mm256_add_ps(_mm512_castps512_ps256(a1), hi256(a1));
        const __m256 b2 = _mm256_add_ps(_mm512_castps512_ps256(a2), hi256(a2));
        const __m256 b3 = _mm256_add_ps(_mm512_castps512_ps256(a3), hi256(a3));
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(b0, b1), _mm256_hadd_ps(b2, b3));
        _mm_storeu_ps(s + j, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
    }
    for (; j < n; j++) s[j] = dot_f16(hd, k + (size_t)j * stride, q);
}

/* out += sum_j p[j] v_j: 64 floats of the output stay in registers while all n rows stream past;
 * then 16 at a time, the last 16 masked. */
static A512 void attn_values_f16(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out) {
    int i = 0;
    for (; i + 64 <= hd; i += 64) {
        __m512 a0 = _mm512_loadu_ps(out + i), a1 = _mm512_loadu_ps(out + i + 16);
        __m512 a2 = _mm512_loadu_ps(out + i + 32), a3 = _mm512_loadu_ps(out + i + 48);
        const uint16_t *vr = v + i;
        for (int j = 0; j < n; j++, vr += stride) {
            const __m512 pj = _mm512_set1_ps(p[j]);
            a0 = _mm512_fmadd_ps(pj, load_f16_16(vr), a0);
            a1 = _mm512_fmadd_ps(pj, load_f16_16(vr + 16), a1);
            a2 = _mm512_fmadd_ps(pj, load_f16_16(vr + 32), a2);
            a3 = _mm512_fmadd_ps(pj, load_f16_16(vr + 48), a3);
        }
        _mm512_storeu_ps(out + i, a0);
        _mm512_storeu_ps(out + i + 16, a1);
        _mm512_storeu_ps(out + i + 32, a2);
        _mm512_storeu_ps(out + i + 48, a3);
    }
    for (; i < hd; i += 16) {
        const __mmask16 m = tail_mask16(hd - i);
        __m512 a0 = _mm512_maskz_loadu_ps(m, out + i);
        const uint16_t *vr = v + i;
        for (int j = 0; j < n; j++, vr += stride) a0 = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), load_f16(m, vr), a0);
        _mm512_mask_storeu_ps(out + i, m, a0);
    }
}

/* ---- exp and SwiGLU ---- */

/* exp on 16 lanes, the AVX2 table's exp8 widened: x = n ln2 + r with |r| <= ln2/2 (ln2 in two
 * parts: the reduction is exact), exp(r) by a degree-6 polynomial (relative error ~2e-7), times
 * 2^n as two powers of two built in the exponent bits (2^n1 * 2^n2, n1 = floor(n/2): each in
 * range for n = -126..129, the first product exact, so one rounding as y * 2^n would have).
 * Below -87.3 the result is 0; from 88.73 up (x clamped to 89) it overflows to +inf like expf,
 * so silu(-huge) is -0, not garbage. */
INLINE __m512 exp16(__m512 x) {
    const __m512 hi = _mm512_set1_ps(89.0f), lo = _mm512_set1_ps(-87.3365478515625f);
    const __mmask16 keep = (__mmask16)~_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ); /* as AVX2's exp8 */
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    /* n1 = floor(n / 2) with a logical shift: n + 128 > 0 */
    const __m512i ni = _mm512_cvttps_epi32(n);
    const __m512i n1 = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(128)), 1), _mm512_set1_epi32(64));
    const __m512i n2 = _mm512_sub_epi32(ni, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    const __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    const __m512 e2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(_mm512_mul_ps(y, e1), e2));
}

static A512 float exp_sub_sum(int n, float *x, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask16(n - i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), vm));
        _mm512_mask_storeu_ps(x + i, mk, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(mk, e));
    }
    return hsum512(acc);
}

static A512 void silu_mul(int n, float *g, const float *u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask16(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(mk, g + i);
        const __m512 nx = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign));
        const __m512 d = _mm512_add_ps(one, exp16(nx));
        _mm512_mask_storeu_ps(g + i, mk, _mm512_mul_ps(_mm512_div_ps(x, d), _mm512_maskz_loadu_ps(mk, u + i)));
    }
}

/* ---- K-quants: kquant_x86.h's 256-bit tiles with vpdpbusd (KQ_VNNI); with AVX-512VL the 32 vector
 * registers hold four tokens' sums. Tried and dropped: a zmm Q4_K tile (chunks k and k+1 of the 8
 * rows in one 64-byte load, half the unpacking and vpdpbusd count, the activations pre-expanded per
 * call to the matching two-value broadcast): slower on Zen 5, 36 vs 40 GB/s in L2 (CPU time, best of
 * 15) and 0.6-0.75x the decode t/s in paired runs of the 1B Q4_K_M model; as issue #23 found for
 * Q4_0, the one-stream 256-bit tiles are the faster ones here. ---- */
#define KQ_NT 4
#define KQ_BCAST4 bcast4_256
#define KQ_VNNI /* vpdpbusd for the nibble dots */
#include "kquant_x86.h"
KQ_GEMM_X8(avx512_gemm_q4_Kx8_ymm, q4Kx8_tile, BlockQ4_Kx8)

/* Q4_K prefill: two groups side by side in one zmm (group g in lanes 0-7, g + 1 in 8-15, as the
 * Q4_0 pair tiles above), so every vpdpbusd, broadcast and scale step serves 16 rows: per token
 * half the instructions of the one-group tile. Same integers and float steps per row (kernels.h).
 * Batches only (T > SA_PF_MAX_T): decode and small batches keep the one-stream prefetching tile
 * (the pair tile with each stream prefetching at sa_pf_dist(2, ...) decoded the 1B Q4_K_M at
 * 0.96x of it, three paired runs). */
/* SIMDe 0.7.4's native alias of _mm512_madd_epi16 takes four arguments (a bug in its madd.h) */
#ifdef SALIGN_SIMDE
#define kq_madd512(a, b) simde_mm512_madd_epi16(a, b)
#else
#define kq_madd512(a, b) _mm512_madd_epi16(a, b)
#endif
INLINE __m512i kq_pair512(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }
INLINE void q4Kx16_tile(int nb, const BlockQ4_Kx8 *wa, const BlockQ4_Kx8 *wb, const BlockQ8_K *a, const int NT, float *y,
                        size_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m256i m4y = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i SC[2], MN[2];
        {
            __m256i sc[2][2], mn[2][2];
#pragma GCC unroll 2
            for (int g = 0; g < 2; g++) {
                const BlockQ4_Kx8 *w = g ? wb + b : wa + b;
                const __m256i V0 = _mm256_loadu_si256((const __m256i *)w->scl);
                const __m256i V1 = _mm256_loadu_si256((const __m256i *)(w->scl + 32));
                const __m256i H = _mm256_loadu_si256((const __m256i *)w->sch);
                sc[g][0] = _mm256_or_si256(_mm256_and_si256(V0, m4y), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
                mn[g][0] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(V0, 4), m4y),
                                           _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
                sc[g][1] = _mm256_or_si256(_mm256_and_si256(V1, m4y), _mm256_and_si256(H, m30));
                mn[g][1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(V1, 4), m4y),
                                           _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
            }
            SC[0] = kq_pair512(sc[0][0], sc[1][0]), SC[1] = kq_pair512(sc[0][1], sc[1][1]);
            MN[0] = kq_pair512(mn[0][0], mn[1][0]), MN[1] = kq_pair512(mn[0][1], mn[1][1]);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)wa[b].d)), _mm_loadu_si128((const __m128i *)wb[b].d), 1));
        const __m512 dmw = _mm512_cvtph_ps(_mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)wa[b].dmin)), _mm_loadu_si128((const __m128i *)wb[b].dmin), 1));
        __m512 mt[4];
        __m512i isum[4];
        {
            const __m512i pi0 = _mm512_broadcast_i64x4(kq_idx(kq_pair_idx[0])), pi1 = _mm512_broadcast_i64x4(kq_idx(kq_pair_idx[1]));
            const __m512i mp0 = _mm512_shuffle_epi8(MN[0], pi0), mp1 = _mm512_shuffle_epi8(MN[0], pi1);
            const __m512i mp2 = _mm512_shuffle_epi8(MN[1], pi0), mp3 = _mm512_shuffle_epi8(MN[1], pi1);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const BlockQ8_K *at = a + (size_t)t * nb + b;
                const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)at->bsums),
                                                  _mm_loadu_si128((const __m128i *)(at->bsums + 8)));
                __m512i im = kq_madd512(mp0, _mm512_set1_epi32(_mm_extract_epi32(bs, 0)));
                im = _mm512_add_epi32(im, kq_madd512(mp1, _mm512_set1_epi32(_mm_extract_epi32(bs, 1))));
                im = _mm512_add_epi32(im, kq_madd512(mp2, _mm512_set1_epi32(_mm_extract_epi32(bs, 2))));
                im = _mm512_add_epi32(im, kq_madd512(mp3, _mm512_set1_epi32(_mm_extract_epi32(bs, 3))));
                mt[t] = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(at->d), dmw), _mm512_cvtepi32_ps(im));
                isum[t] = _mm512_setzero_si512();
            }
        }
#pragma GCC unroll 1
        for (int p = 0; p < 4; p++) {
            const __m512i sclo = _mm512_srli_epi32(
                _mm512_shuffle_epi8(SC[p >> 1], _mm512_broadcast_i64x4(kq_idx(kq_top_idx[2 * (p & 1)]))), 24);
            const __m512i schi = _mm512_srli_epi32(
                _mm512_shuffle_epi8(SC[p >> 1], _mm512_broadcast_i64x4(kq_idx(kq_top_idx[2 * (p & 1) + 1]))), 24);
            __m512i slo[4], shi[4];
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm512_setzero_si512();
            const uint8_t *qa = wa[b].qs + 256 * p, *qb = wb[b].qs + 256 * p;
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                const __m512i v = kq_pair512(_mm256_loadu_si256((const __m256i *)(qa + 32 * k)),
                                             _mm256_loadu_si256((const __m256i *)(qb + 32 * k)));
                const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const int8_t *x = a[(size_t)t * nb + b].qs + 64 * p + 4 * k;
                    slo[t] = _mm512_dpbusd_epi32(slo[t], lo, bcast4(x));
                    shi[t] = _mm512_dpbusd_epi32(shi[t], hi, bcast4(x + 32));
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++)
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(slo[t], sclo),
                                                                     _mm512_mullo_epi32(shi[t], schi)));
        }
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 dd = _mm512_mul_ps(_mm512_set1_ps(a[(size_t)t * nb + b].d), dw);
            acc[t] = _mm512_add_ps(acc[t], _mm512_sub_ps(_mm512_mul_ps(dd, _mm512_cvtepi32_ps(isum[t])), mt[t]));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

A512 static void avx512_gemm_q4_Kx8(int nb, int ng, const void *wv, const void *av, int T, float *y, size_t ldy) {
    if (T <= SA_PF_MAX_T) {
        avx512_gemm_q4_Kx8_ymm(nb, ng, wv, av, T, y, ldy);
        return;
    }
    const BlockQ4_Kx8 *w = wv;
    const BlockQ8_K *a = av;
    int g = 0;
    for (; g + 2 <= ng; g += 2) {
        const BlockQ4_Kx8 *wa = w + (size_t)g * nb, *wb = wa + nb;
        int t = 0;
        for (; t + 4 <= T; t += 4) q4Kx16_tile(nb, wa, wb, a + (size_t)t * nb, 4, y + t * ldy + 8 * g, ldy);
        switch (T - t) {
        case 3: q4Kx16_tile(nb, wa, wb, a + (size_t)t * nb, 3, y + t * ldy + 8 * g, ldy); break;
        case 2: q4Kx16_tile(nb, wa, wb, a + (size_t)t * nb, 2, y + t * ldy + 8 * g, ldy); break;
        case 1: q4Kx16_tile(nb, wa, wb, a + (size_t)t * nb, 1, y + t * ldy + 8 * g, ldy); break;
        default: break;
        }
    }
    if (g < ng) avx512_gemm_q4_Kx8_ymm(nb, 1, w + (size_t)g * nb, av, T, y + 8 * g, ldy);
}
KQ_GEMM_X8(avx512_gemm_q6_Kx8, q6Kx8_tile, BlockQ6_Kx8)

/* ---- Q4_1, Q5_0, Q5_1, Q5_K and Q8_1 activations: qtypes_x86.h with vpdpbusd and byte masks ---- */
#define QT_AVX512
#include "qtypes_x86.h"

/* ---- Q2_K, Q3_K, IQ4_XS: lowbit_x86.h with vpdpbusd ---- */
#include "lowbit_x86.h"

SA_BASE_TYPE_DEFS(avx512, quantize_q8_0, dot_q8_0, dot_q4_0, dot_f16, dot_bf16, dot_f32, f32_to_f16)

const SaKernels AVX512_TABLE = {
    .name = AVX512_NAME,
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
    .attn_scores_q8_0 = sa_avx2_attn_scores_q8_0, /* the AVX2 ones (every AVX-512 CPU has AVX2) */
    .attn_values_q8_0 = sa_avx2_attn_values_q8_0,
    .exp_sub_sum = exp_sub_sum,
    .silu_mul = silu_mul,
    /* Q4_K / Q6_K: the repacked GEMMs and Q8_K activations (plain rows: the scalar reference);
     * Q2_K/Q3_K/IQ4_XS, Q4_1/Q5_0/Q5_1/Q5_K, IQ4_NL and Q8_1 of its own */
    .type = {SA_BASE_TYPE_ROWS(avx512), QT_TYPE_ROWS, LB_TYPE_ROWS, [SA_IQ4_NL] = {NULL, qt_dot_iq4_nl, qt_gemm_iq4_nl},
             [SA_Q4_K] = {NULL, sa_ref_dot_q4_K, sa_ref_gemm_q4_K, avx512_gemm_q4_Kx8},
             [SA_Q6_K] = {NULL, sa_ref_dot_q6_K, sa_ref_gemm_q6_K, avx512_gemm_q6_Kx8},
             [SA_Q8_K] = {kq_quantize_q8_K, NULL, NULL, NULL}},
};
