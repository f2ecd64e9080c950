/* dtype.c - dtype traits, fp16/bf16 conversion and the reference quantizers. */
#include "dtype.h"

#include <math.h>

#include "common.h"

float sa_fp16_table[65536];

/* IEEE half -> float, handling subnormals, inf and nan exactly. */
float sa_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return sa_fp32_from_bits(bits);
}

/* float -> IEEE half, round to nearest even (the same result as F16C's vcvtps2ph). */
uint16_t sa_fp32_to_fp16(float f) {
    uint32_t x = sa_fp32_to_bits(f);
    uint16_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7FFFFFFF;
    if (ax >= 0x7F800000) /* inf or nan */
        return sign | 0x7C00 | (ax > 0x7F800000 ? 0x200 : 0);
    if (ax >= 0x477FF000) /* rounds to >= 65520: overflow to inf */
        return sign | 0x7C00;
    if (ax < 0x38800000) { /* result is subnormal (or zero) in half */
        /* add 0.5 (as float) so the FPU does the round-to-nearest-even for us */
        float v = sa_fp32_from_bits(ax) + 0.5f;
        return sign | (uint16_t)(sa_fp32_to_bits(v) - 0x3F000000u);
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xC8000FFFu + mant_odd; /* rebias exponent (-112 << 23) and round */
    return sign | (uint16_t)(ax >> 13);
}

uint16_t sa_fp32_to_bf16(float f) {
    uint32_t u = sa_fp32_to_bits(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((u >> 16) | 64); /* quiet nan */
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void sa_dtype_init(void) {
    static int done = 0;
    if (done) return;
    for (uint32_t i = 0; i < 65536; i++) sa_fp16_table[i] = sa_fp16_to_fp32((uint16_t)i);
    done = 1;
}

/* ggml quantize_row_q8_0_ref: d = amax/127, q = round(x/d). The running maximum keeps the new
 * value unless the old one is greater, as ggml's MAX does (not fmaxf): a NaN then replaces it,
 * and a block holding one gets llama-quantize's bytes too. */
void sa_quantize_row_q8_0(const float *x, BlockQ8_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / QK8_0; b++) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) {
            const float a = fabsf(x[b * QK8_0 + j]);
            amax = amax > a ? amax : a;
        }
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        y[b].d = sa_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[b].qs[j] = (int8_t)roundf(x[b * QK8_0 + j] * id);
    }
}

/* ggml quantize_row_q4_0_ref: d = max/-8 where max is the signed value of largest magnitude,
 * q = min(15, (int8)(x/d + 8.5)). */
void sa_quantize_row_q4_0(const float *x, BlockQ4_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / QK4_0; b++) {
        const float *xb = x + b * QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d ? 1.0f / d : 0.0f;
        y[b].d = sa_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[QK4_0 / 2 + j] * id;
            const int q0 = SA_MIN(15, (int8_t)(x0 + 8.5f));
            const int q1 = SA_MIN(15, (int8_t)(x1 + 8.5f));
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- to_float / from_float of the plain types ---- */

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = sa_fp16_to_fp32(s[i]);
}
static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = sa_fp32_to_fp16(src[i]);
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = sa_bf16_to_fp32(s[i]);
}
static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = sa_fp32_to_bf16(src[i]);
}

/* ---- the block types ---- */

static void q8_0_to_float(const void *src, float *dst, int64_t n) {
    const BlockQ8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = sa_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[i * QK8_0 + j] = d * b[i].qs[j];
    }
}
static void q8_0_from_float(const float *src, void *dst, int64_t n) { sa_quantize_row_q8_0(src, dst, n); }

static void q4_0_to_float(const void *src, float *dst, int64_t n) {
    const BlockQ4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float d = sa_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[i * QK4_0 + j] = d * ((b[i].qs[j] & 0x0F) - 8);
            dst[i * QK4_0 + j + QK4_0 / 2] = d * ((b[i].qs[j] >> 4) - 8);
        }
    }
}
static void q4_0_from_float(const float *src, void *dst, int64_t n) { sa_quantize_row_q4_0(src, dst, n); }

/* ---- the table ---- */
#define QF(t) t##_from_float
#define FROM_FLOAT(t, B) \
    static void t##_from_float(const float *src, void *dst, int64_t n) { sa_quantize_row_##t(src, (B *)dst, n); }
FROM_FLOAT(q4_1, BlockQ4_1)
FROM_FLOAT(q5_0, BlockQ5_0)
FROM_FLOAT(q5_1, BlockQ5_1)
FROM_FLOAT(q8_1, BlockQ8_1)
FROM_FLOAT(q4_K, BlockQ4_K)
FROM_FLOAT(q5_K, BlockQ5_K)
FROM_FLOAT(q6_K, BlockQ6_K)
FROM_FLOAT(q8_K, BlockQ8_K)
FROM_FLOAT(q2_K, BlockQ2_K)
FROM_FLOAT(q3_K, BlockQ3_K)
FROM_FLOAT(iq4_nl, BlockIQ4_NL)
FROM_FLOAT(iq4_xs, BlockIQ4_XS)

const SaDtypeTraits sa_dtype_traits[SA_DTYPE_COUNT] = {
    [SA_F32] = {"f32", 1, 4, 0, SA_DT_WEIGHT, SA_F32, f32_to_float, f32_from_float},
    [SA_F16] = {"f16", 1, 2, 1, SA_DT_WEIGHT, SA_F32, f16_to_float, f16_from_float},
    [SA_BF16] = {"bf16", 1, 2, 30, SA_DT_WEIGHT, SA_F32, bf16_to_float, bf16_from_float},
    [SA_Q8_0] = {"q8_0", QK8_0, sizeof(BlockQ8_0), 8, SA_DT_WEIGHT, SA_Q8_0, q8_0_to_float, q8_0_from_float},
    [SA_Q4_0] = {"q4_0", QK4_0, sizeof(BlockQ4_0), 2, SA_DT_WEIGHT, SA_Q8_0, q4_0_to_float, q4_0_from_float},
    [SA_Q4_1] = {"q4_1", 32, sizeof(BlockQ4_1), 3, SA_DT_WEIGHT, SA_Q8_1, sa_dequantize_q4_1, QF(q4_1)},
    [SA_Q5_0] = {"q5_0", 32, sizeof(BlockQ5_0), 6, SA_DT_WEIGHT, SA_Q8_0, sa_dequantize_q5_0, QF(q5_0)},
    [SA_Q5_1] = {"q5_1", 32, sizeof(BlockQ5_1), 7, SA_DT_WEIGHT, SA_Q8_1, sa_dequantize_q5_1, QF(q5_1)},
    [SA_Q4_K] = {"q4_K", QK_K, sizeof(BlockQ4_K), 12, SA_DT_WEIGHT, SA_Q8_K, sa_dequantize_q4_K, QF(q4_K)},
    [SA_Q5_K] = {"q5_K", QK_K, sizeof(BlockQ5_K), 13, SA_DT_WEIGHT, SA_Q8_K, sa_dequantize_q5_K, QF(q5_K)},
    [SA_Q6_K] = {"q6_K", QK_K, sizeof(BlockQ6_K), 14, SA_DT_WEIGHT, SA_Q8_K, sa_dequantize_q6_K, QF(q6_K)},
    [SA_Q8_K] = {"q8_K", QK_K, sizeof(BlockQ8_K), 15, 0, SA_Q8_K, sa_dequantize_q8_K, QF(q8_K)},
    [SA_Q8_1] = {"q8_1", 32, sizeof(BlockQ8_1), 9, 0, SA_Q8_1, sa_dequantize_q8_1, QF(q8_1)},
    [SA_Q2_K] = {"q2_K", QK_K, sizeof(BlockQ2_K), 10, SA_DT_WEIGHT, SA_Q8_K, sa_dequantize_q2_K, QF(q2_K)},
    [SA_Q3_K] = {"q3_K", QK_K, sizeof(BlockQ3_K), 11, SA_DT_WEIGHT, SA_Q8_K, sa_dequantize_q3_K, QF(q3_K)},
    [SA_IQ4_NL] = {"iq4_nl", QK4_NL, sizeof(BlockIQ4_NL), 20, SA_DT_WEIGHT, SA_Q8_0, sa_dequantize_iq4_nl, QF(iq4_nl)},
    [SA_IQ4_XS] = {"iq4_xs", QK_K, sizeof(BlockIQ4_XS), 23, SA_DT_WEIGHT, SA_Q8_K, sa_dequantize_iq4_xs, QF(iq4_xs)},
};

const char *sa_dtype_name(SaDtype t) {
    return (unsigned)t < SA_DTYPE_COUNT ? sa_dtype_traits[t].name : "?";
}

int sa_dtype_from_name(const char *name) {
    for (int i = 0; i < SA_DTYPE_COUNT; i++)
        if (strcmp(sa_dtype_traits[i].name, name) == 0) return i;
    return -1;
}

int sa_dtype_from_ggml(uint32_t ggml_type) {
    for (int i = 0; i < SA_DTYPE_COUNT; i++)
        if ((uint32_t)sa_dtype_traits[i].ggml_type == ggml_type) return i;
    return -1;
}

size_t sa_row_bytes(SaDtype t, int64_t n) {
    const SaDtypeTraits *tr = &sa_dtype_traits[t];
    if (n < 0 || n % tr->block) return 0;
    return (size_t)(n / tr->block) * tr->block_bytes;
}

void sa_dequantize_row(SaDtype t, const void *src, float *dst, int64_t n) { sa_dtype_traits[t].to_float(src, dst, n); }

void sa_quantize_row(SaDtype t, const float *src, void *dst, int64_t n) { sa_dtype_traits[t].from_float(src, dst, n); }
