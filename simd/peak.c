/* peak.c - the int8 multiply-add peak of each kernel table (peak.h).
 *
 * Each loop keeps enough independent accumulators in flight to cover the instruction's latency
 * (vpdpbusd: 4-5 cycles at up to 2 per cycle on Zen 4/5, so 16 chains), operands in registers.
 * The tables' own sequences:
 *   avx512: vpdpbusd zmm, 64 u8 x s8 multiply-adds into 16 int32 (the prefill pair tiles);
 *   avx2:   vpmaddubsw + vpmaddwd + vpaddd ymm, 32 multiply-adds (no VNNI in that table);
 *   neon_dotprod: sdot, 16; neon: smull + smlal2 + sadalp, 16.
 * A MAC here is one 8-bit multiply and its add; TOPS figures elsewhere count it as two operations.
 * The x86 functions are compiled for their ISA with target attributes and only called when the
 * table of that name exists (dispatch.c has checked cpuid). */
#include "peak.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* 16 named accumulators, not an array: GCC keeps an indexed array in memory (a store and a load per
 * step, ~20x slower than the instruction) */
#define X16(S) S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7) S(8) S(9) S(10) S(11) S(12) S(13) S(14) S(15)
#define X8(S) S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7)

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static long long peak_avx512(long iters, int *sink) {
    const __m512i a = _mm512_set1_epi32(0x01020304 ^ (int)iters), b = _mm512_set1_epi32(0x05060708 + (int)iters);
#define DECL(k) __m512i c##k = _mm512_set1_epi32(k);
#define STEP(k) c##k = _mm512_dpbusd_epi32(c##k, a, b);
#define SUM(k) s = _mm512_add_epi32(s, c##k);
    X16(DECL)
    for (long i = 0; i < iters; i++) {
        X16(STEP)
    }
    __m512i s = _mm512_setzero_si512();
    X16(SUM)
#undef DECL
#undef STEP
#undef SUM
    *sink = _mm512_reduce_add_epi32(s);
    return (long long)iters * 16 * 64;
}

__attribute__((target("avx2"))) static long long peak_avx2(long iters, int *sink) {
    const __m256i a = _mm256_set1_epi32(0x01020304 ^ (int)iters), b = _mm256_set1_epi32(0x05060708 + (int)iters);
    const __m256i ones = _mm256_set1_epi16(1);
#define DECL(k) __m256i c##k = _mm256_set1_epi32(k), a##k = a;
    /* the products do not depend on the accumulators: an empty asm makes each chain's operand
     * opaque in every iteration, so the compiler cannot compute them once */
#define STEP(k) __asm__ volatile("" : "+x"(a##k)); c##k = _mm256_add_epi32(c##k, _mm256_madd_epi16(_mm256_maddubs_epi16(a##k, b), ones));
#define SUM(k) s = _mm256_add_epi32(s, c##k);
    X8(DECL)
    for (long i = 0; i < iters; i++) {
        X8(STEP)
    }
    __m256i s = _mm256_setzero_si256();
    X8(SUM)
#undef DECL
#undef STEP
#undef SUM
    int v[8];
    _mm256_storeu_si256((__m256i *)v, s);
    *sink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    return (long long)iters * 8 * 32;
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

#define X8(S) S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7)
#define DECL(k) int32x4_t c##k = vdupq_n_s32(k);
#define SUM(k) s = vaddq_s32(s, c##k);

__attribute__((target("arch=armv8.2-a+dotprod"))) static long long peak_sdot(long iters, int *sink) {
    const int8x16_t a = vdupq_n_s8((int8_t)(3 + (iters & 7))), b = vdupq_n_s8((int8_t)(5 - (iters & 3)));
#define STEP(k) c##k = vdotq_s32(c##k, a, b);
    X8(DECL)
    for (long i = 0; i < iters; i++) {
        X8(STEP)
    }
#undef STEP
    int32x4_t s = vdupq_n_s32(0);
    X8(SUM)
    *sink = vaddvq_s32(s);
    return (long long)iters * 8 * 16;
}

static long long peak_neon(long iters, int *sink) {
    const int8x16_t a = vdupq_n_s8((int8_t)(3 + (iters & 7))), b = vdupq_n_s8((int8_t)(5 - (iters & 3)));
    /* the products do not depend on the accumulators: an opaque operand per chain (see avx2) */
#define STEP(k)                                                                            \
    {                                                                                      \
        int8x16_t x = a;                                                                   \
        __asm__ volatile("" : "+w"(x));                                                    \
        c##k = vpadalq_s16(c##k, vmlal_high_s8(vmull_s8(vget_low_s8(x), vget_low_s8(b)), x, b)); \
    }
    X8(DECL)
    for (long i = 0; i < iters; i++) {
        X8(STEP)
    }
#undef STEP
    int32x4_t s = vdupq_n_s32(0);
    X8(SUM)
    *sink = vaddvq_s32(s);
    return (long long)iters * 8 * 16;
}
#undef DECL
#undef SUM
#endif

const char *sa_i8_peak_what(const char *table) {
#if defined(__x86_64__)
    if (!strcmp(table, "avx512")) return "vpdpbusd zmm";
    if (!strcmp(table, "avx2")) return "vpmaddubsw+vpmaddwd+vpaddd ymm";
#endif
#if defined(__aarch64__)
    if (!strcmp(table, "neon_dotprod")) return "sdot";
    if (!strcmp(table, "neon")) return "smull+smlal2+sadalp";
#endif
    (void)table;
    return NULL;
}

long long sa_i8_peak_run(const char *table, long iters, int *sink) {
    *sink = 0;
#if defined(__x86_64__)
    if (!strcmp(table, "avx512")) return peak_avx512(iters, sink);
    if (!strcmp(table, "avx2")) return peak_avx2(iters, sink);
#endif
#if defined(__aarch64__)
    if (!strcmp(table, "neon_dotprod")) return peak_sdot(iters, sink);
    if (!strcmp(table, "neon")) return peak_neon(iters, sink);
#endif
    (void)table;
    (void)iters;
    return 0;
}
