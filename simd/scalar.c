/* scalar.c - the reference kernels: plain C, no intrinsics, the definition of what every
 * SIMD table must compute (exactly for integer dots, to float rounding for float kernels). */
#include <math.h>
#include <string.h>

#include "kernels.h"

static void quantize_q8_0(const float *x, BlockQ8_0 *y, int n) { sa_quantize_act_q8_0(x, y, n); }

/* Per block: an exact integer dot, scaled by the product of the two fp16 scales. */
static float dot_q8_0(int n, const BlockQ8_0 *w, const BlockQ8_0 *a) {
    float sum = 0.0f;
    for (int b = 0; b < n / QK8_0; b++) {
        int32_t si = 0;
        for (int j = 0; j < QK8_0; j++) si += (int32_t)w[b].qs[j] * a[b].qs[j];
        sum += (float)si * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d));
    }
    return sum;
}

static float dot_q4_0(int n, const BlockQ4_0 *w, const BlockQ8_0 *a) {
    float sum = 0.0f;
    for (int b = 0; b < n / QK4_0; b++) {
        int32_t si = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int v0 = (w[b].qs[j] & 0x0F) - 8;
            const int v1 = (w[b].qs[j] >> 4) - 8;
            si += v0 * a[b].qs[j] + v1 * a[b].qs[j + QK4_0 / 2];
        }
        sum += (float)si * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d));
    }
    return sum;
}

static float dot_f16(int n, const uint16_t *w, const float *a) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)sa_fp16_lut(w[i]) * a[i];
    return (float)sum;
}

static float dot_bf16(int n, const uint16_t *w, const float *a) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)sa_bf16_to_fp32(w[i]) * a[i];
    return (float)sum;
}

static float dot_f32(int n, const float *w, const float *a) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)w[i] * a[i];
    return (float)sum;
}

static void axpy_f32(int n, float a, const float *x, float *y) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void axpy_f16(int n, float a, const uint16_t *x, float *y) {
    for (int i = 0; i < n; i++) y[i] += a * sa_fp16_lut(x[i]);
}

static void f32_to_f16(int n, const float *x, uint16_t *y) {
    for (int i = 0; i < n; i++) y[i] = sa_fp32_to_fp16(x[i]);
}

/* The 8-row interleaved layouts (kernels.h): row i's quant byte 4k+j of block b sits at
 * w[b].qs[k*32 + i*4 + j]. Every table must give exactly these floats (see kernels.h), which is
 * why the sum is written out as an explicit multiply then add. */
void sa_q8_act_extras(const BlockQ8_0 *q, int n_blocks, float *d, int32_t *s8) {
    for (int b = 0; b < n_blocks; b++) {
        int32_t s = 0;
        for (int j = 0; j < QK8_0; j++) s += q[b].qs[j];
        d[b] = sa_fp16_lut(q[b].d);
        s8[b] = 8 * s;
    }
}

void sa_q8_act_x8_put(const BlockQ8_0 *q, const float *d, const int32_t *s8, int nb, int t, SaQ8x8 *x8) {
    SaQ8x8 *x = x8 + (size_t)(t / 8) * nb;
    const int slot = t % 8;
    for (int b = 0; b < nb; b++) {
        if (q) memcpy(x[b].qs[slot], q[b].qs, QK8_0);
        else memset(x[b].qs[slot], 0, QK8_0);
        x[b].d[slot] = q ? d[b] : 0.0f;
        x[b].ns8[slot] = q ? -s8[b] : 0;
    }
}

static void gemm_q4_0x8_one(int nb, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    for (int t = 0; t < T; t++) {
        const BlockQ8_0 *at = a->q + (size_t)t * nb;
        for (int i = 0; i < 8; i++) {
            float sum = 0.0f;
            for (int b = 0; b < nb; b++) {
                int32_t si = 0;
                for (int k = 0; k < 4; k++) {
                    for (int j = 0; j < 4; j++) {
                        const uint8_t q = w[b].qs[k * 32 + i * 4 + j];
                        si += ((q & 0x0F) - 8) * at[b].qs[4 * k + j] + ((q >> 4) - 8) * at[b].qs[16 + 4 * k + j];
                    }
                }
                const float scale = sa_fp16_lut(w[b].d[i]) * sa_fp16_lut(at[b].d);
                sum = sum + (float)si * scale;
            }
            y[(size_t)t * ldy + i] = sum;
        }
    }
}

static void gemm_q8_0x8_one(int nb, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    for (int t = 0; t < T; t++) {
        const BlockQ8_0 *at = a->q + (size_t)t * nb;
        for (int i = 0; i < 8; i++) {
            float sum = 0.0f;
            for (int b = 0; b < nb; b++) {
                int32_t si = 0;
                for (int k = 0; k < 8; k++)
                    for (int j = 0; j < 4; j++) si += (int32_t)w[b].qs[k * 32 + i * 4 + j] * at[b].qs[4 * k + j];
                const float scale = sa_fp16_lut(w[b].d[i]) * sa_fp16_lut(at[b].d);
                sum = sum + (float)si * scale;
            }
            y[(size_t)t * ldy + i] = sum;
        }
    }
}

void sa_ref_gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    for (int g = 0; g < ng; g++) gemm_q4_0x8_one(nb, w + (size_t)g * nb, a, T, y + 8 * g, ldy);
}

void sa_ref_gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    for (int g = 0; g < ng; g++) gemm_q8_0x8_one(nb, w + (size_t)g * nb, a, T, y + 8 * g, ldy);
}

void sa_ref_attn_scores_f16(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s) {
    for (int j = 0; j < n; j++) s[j] = dot_f16(hd, k + (size_t)j * stride, q);
}

void sa_ref_attn_values_f16(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out) {
    for (int j = 0; j < n; j++) axpy_f16(hd, p[j], v + (size_t)j * stride, out);
}

/* Q8_0 cache rows: value i of the head is value (off + i) % 32 of block (off + i) / 32. The
 * dequantized value d * q is exact in float (11 + 8 significant bits), so the score is the double
 * dot of q with the dequantized key, rounded once, as dot_f16 does for the f16 cache. */
void sa_ref_attn_scores_q8_0(int hd, int n, const BlockQ8_0 *k, size_t stride, int off, const float *q, float *s) {
    for (int j = 0; j < n; j++) {
        const BlockQ8_0 *r = k + (size_t)j * stride;
        double sum = 0.0;
        for (int i = 0; i < hd; i++) {
            const BlockQ8_0 *b = &r[(off + i) / QK8_0];
            sum += (double)q[i] * (sa_fp16_lut(b->d) * (float)b->qs[(off + i) % QK8_0]);
        }
        s[j] = (float)sum;
    }
}

void sa_ref_attn_values_q8_0(int hd, int n, const BlockQ8_0 *v, size_t stride, int off, const float *p, float *out) {
    for (int j = 0; j < n; j++) {
        const BlockQ8_0 *r = v + (size_t)j * stride;
        for (int i = 0; i < hd; i++) {
            const BlockQ8_0 *b = &r[(off + i) / QK8_0];
            out[i] += p[j] * (sa_fp16_lut(b->d) * (float)b->qs[(off + i) % QK8_0]);
        }
    }
}

float sa_ref_exp_sub_sum(int n, float *x, float m) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

void sa_ref_silu_mul(int n, float *g, const float *u) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void sa_act_f32(const float *x, void *y, int n) { memcpy(y, x, (size_t)n * sizeof(float)); }

/* ---- the other block types (kernels.h: "block types beyond Q8_0 / Q4_0") ----
 * Every dot is exact integer sums per block (per super-block for the K-quants, the sub-block
 * scales applied as integers) combined in float in the order written, so the SIMD tables can
 * give the same float bit for bit. */

void sa_ref_act_q8_1(const float *x, void *y, int n) { sa_quantize_row_q8_1(x, (BlockQ8_1 *)y, n); }
void sa_ref_act_q8_K(const float *x, void *y, int n) { sa_quantize_row_q8_K(x, (BlockQ8_K *)y, n); }

float sa_ref_dot_q4_1(int n, const void *wv, const void *av) {
    const BlockQ4_1 *w = wv;
    const BlockQ8_1 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int32_t si = 0;
        for (int j = 0; j < 16; j++) si += (w[b].qs[j] & 15) * a[b].qs[j] + (w[b].qs[j] >> 4) * a[b].qs[j + 16];
        sum = sum + ((float)si * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d)) + sa_fp16_lut(w[b].m) * sa_fp16_lut(a[b].s));
    }
    return sum;
}

static inline uint32_t qh32(const uint8_t *qh) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

float sa_ref_dot_q5_0(int n, const void *wv, const void *av) {
    const BlockQ5_0 *w = wv;
    const BlockQ8_0 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        const uint32_t h = qh32(w[b].qh);
        int32_t si = 0;
        for (int j = 0; j < 16; j++) {
            const int v0 = (int)((w[b].qs[j] & 15) | (h >> j & 1) << 4) - 16;
            const int v1 = (int)((w[b].qs[j] >> 4) | (h >> (j + 16) & 1) << 4) - 16;
            si += v0 * a[b].qs[j] + v1 * a[b].qs[j + 16];
        }
        sum = sum + (float)si * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d));
    }
    return sum;
}

float sa_ref_dot_q5_1(int n, const void *wv, const void *av) {
    const BlockQ5_1 *w = wv;
    const BlockQ8_1 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        const uint32_t h = qh32(w[b].qh);
        int32_t si = 0;
        for (int j = 0; j < 16; j++) {
            const int v0 = (int)((w[b].qs[j] & 15) | (h >> j & 1) << 4);
            const int v1 = (int)((w[b].qs[j] >> 4) | (h >> (j + 16) & 1) << 4);
            si += v0 * a[b].qs[j] + v1 * a[b].qs[j + 16];
        }
        sum = sum + ((float)si * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d)) + sa_fp16_lut(w[b].m) * sa_fp16_lut(a[b].s));
    }
    return sum;
}

/* Q4_K / Q5_K: per super-block isum = sum_j sc_j * (levels . activations of sub-block j) and
 * imin = sum_j mn_j * (activation sum of sub-block j); x = d*sc*q - dmin*mn gives
 *     sum = sum + (a.d*d * isum - a.d*dmin * imin) */
static inline float kq_combine(float sum, const BlockQ8_K *a, uint16_t d, uint16_t dmin, int32_t isum, int32_t imin) {
    const float dd = a->d * sa_fp16_lut(d), dm = a->d * sa_fp16_lut(dmin);
    return sum + (dd * (float)isum - dm * (float)imin);
}

float sa_ref_dot_q4_K(int n, const void *wv, const void *av) {
    const BlockQ4_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t isum = 0, imin = 0;
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            sa_kq_scale_min(j, w[b].scales, &sc, &mn);
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            const int8_t *x = a[b].qs + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 32; l++) s += (j & 1 ? q[l] >> 4 : q[l] & 15) * x[l];
            isum += sc * s;
            imin += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        sum = kq_combine(sum, &a[b], w[b].d, w[b].dmin, isum, imin);
    }
    return sum;
}

float sa_ref_dot_q5_K(int n, const void *wv, const void *av) {
    const BlockQ5_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t isum = 0, imin = 0;
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            sa_kq_scale_min(j, w[b].scales, &sc, &mn);
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            const int8_t *x = a[b].qs + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 32; l++) s += ((j & 1 ? q[l] >> 4 : q[l] & 15) | (w[b].qh[l] >> j & 1) << 4) * x[l];
            isum += sc * s;
            imin += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        sum = kq_combine(sum, &a[b], w[b].d, w[b].dmin, isum, imin);
    }
    return sum;
}

/* Q6_K: isum = sum over the 16 sub-blocks of scale * ((level - 32) . activations);
 *     sum = sum + a.d*d * isum */
float sa_ref_dot_q6_K(int n, const void *wv, const void *av) {
    const BlockQ6_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[b].ql + 64 * h, *qh = w[b].qh + 32 * h;
            const int8_t *x = a[b].qs + 128 * h;
            int32_t s[8] = {0}; /* sub-blocks 8h .. 8h+7 */
            for (int l = 0; l < 32; l++) {
                const int q0 = ((ql[l] & 15) | (qh[l] & 3) << 4) - 32;
                const int q1 = ((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32;
                const int q2 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                const int q3 = ((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32;
                s[l / 16] += q0 * x[l];
                s[2 + l / 16] += q1 * x[l + 32];
                s[4 + l / 16] += q2 * x[l + 64];
                s[6 + l / 16] += q3 * x[l + 96];
            }
            for (int j = 0; j < 8; j++) isum += w[b].scales[8 * h + j] * s[j];
        }
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)isum;
    }
    return sum;
}

SA_GEMM_FROM_DOT(sa_ref_gemm_q4_1, sa_ref_dot_q4_1)
SA_GEMM_FROM_DOT(sa_ref_gemm_q5_0, sa_ref_dot_q5_0)
SA_GEMM_FROM_DOT(sa_ref_gemm_q5_1, sa_ref_dot_q5_1)
SA_GEMM_FROM_DOT(sa_ref_gemm_q4_K, sa_ref_dot_q4_K)
SA_GEMM_FROM_DOT(sa_ref_gemm_q5_K, sa_ref_dot_q5_K)
SA_GEMM_FROM_DOT(sa_ref_gemm_q6_K, sa_ref_dot_q6_K)

SA_BASE_TYPE_DEFS(ref, quantize_q8_0, dot_q8_0, dot_q4_0, dot_f16, dot_bf16, dot_f32, f32_to_f16)

const SaKernels sa_kernels_scalar = {
    .name = "scalar",
    .quantize_q8_0 = quantize_q8_0,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .dot_f16 = dot_f16,
    .dot_bf16 = dot_bf16,
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .gemm_q4_0x8 = sa_ref_gemm_q4_0x8,
    .gemm_q8_0x8 = sa_ref_gemm_q8_0x8,
    .attn_scores_f16 = sa_ref_attn_scores_f16,
    .attn_values_f16 = sa_ref_attn_values_f16,
    .attn_scores_q8_0 = sa_ref_attn_scores_q8_0,
    .attn_values_q8_0 = sa_ref_attn_values_q8_0,
    .exp_sub_sum = sa_ref_exp_sub_sum,
    .silu_mul = sa_ref_silu_mul,
    .type = {SA_BASE_TYPE_ROWS(ref), SA_REF_TYPE_ROWS_ALL, SA_REF_TYPE_ROWS_LOWBIT},
};

/* ---- Q2_K, Q3_K, IQ4_NL, IQ4_XS (the same rule: integer sums per block, one float step each) ---- */

/* Q2_K: isum = sum_j sc_j * (levels . activations of 16-weight sub-block j), imin = sum_j mn_j *
 * (activation sum of sub-block j, Q8_K's bsums[j]); x = d*sc*q - dmin*mn, combined as Q4_K's. */
float sa_ref_dot_q2_K(int n, const void *wv, const void *av) {
    const BlockQ2_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t isum = 0, imin = 0;
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 4; p++) /* weights 128h + 32p + l take bits 2p, 2p+1 of qs[32h + l] */
                for (int half = 0; half < 2; half++) {
                    const int j = 8 * h + 2 * p + half;
                    const uint8_t *q = w[b].qs + 32 * h + 16 * half;
                    const int8_t *x = a[b].qs + 16 * j;
                    int32_t s = 0;
                    for (int l = 0; l < 16; l++) s += (q[l] >> (2 * p) & 3) * x[l];
                    isum += (w[b].scales[j] & 15) * s;
                    imin += (w[b].scales[j] >> 4) * a[b].bsums[j];
                }
        sum = kq_combine(sum, &a[b], w[b].d, w[b].dmin, isum, imin);
    }
    return sum;
}

/* Q3_K: isum = sum_j (sc_j - 32) * ((level - 4 unless its hmask bit is set) . activations);
 *     sum = sum + a.d*d * isum   (as Q6_K) */
float sa_ref_dot_q3_K(int n, const void *wv, const void *av) {
    const BlockQ3_K *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t isum = 0;
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 4; p++) /* weights 128h + 32p + l: bit 4h + p of hmask[l] */
                for (int half = 0; half < 2; half++) {
                    const int j = 8 * h + 2 * p + half;
                    const uint8_t *q = w[b].qs + 32 * h + 16 * half, *hm = w[b].hmask + 16 * half;
                    const int8_t *x = a[b].qs + 16 * j;
                    int32_t s = 0;
                    for (int l = 0; l < 16; l++)
                        s += ((q[l] >> (2 * p) & 3) - (hm[l] >> (4 * h + p) & 1 ? 0 : 4)) * x[l];
                    isum += (sa_q3k_scale(j, w[b].scales) - 32) * s;
                }
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)isum;
    }
    return sum;
}

/* IQ4_NL . Q8_0: per block the integer dot of the table values with the activations, then
 *     sum = sum + (float)idot * (d_w * d_a)   (as Q4_0) */
float sa_ref_dot_iq4_nl(int n, const void *wv, const void *av) {
    const BlockIQ4_NL *w = wv;
    const BlockQ8_0 *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK4_NL; b++) {
        int32_t si = 0;
        for (int j = 0; j < 16; j++)
            si += sa_iq4nl_values[w[b].qs[j] & 15] * a[b].qs[j] + sa_iq4nl_values[w[b].qs[j] >> 4] * a[b].qs[j + 16];
        sum = sum + (float)si * (sa_fp16_lut(w[b].d) * sa_fp16_lut(a[b].d));
    }
    return sum;
}

/* IQ4_XS . Q8_K: isum = sum_j (ls_j - 32) * (table values . activations of sub-block j);
 *     sum = sum + a.d*d * isum */
float sa_ref_dot_iq4_xs(int n, const void *wv, const void *av) {
    const BlockIQ4_XS *w = wv;
    const BlockQ8_K *a = av;
    float sum = 0.0f;
    for (int b = 0; b < n / QK_K; b++) {
        int32_t isum = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = w[b].qs + 16 * j;
            const int8_t *x = a[b].qs + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 16; l++) s += sa_iq4nl_values[q[l] & 15] * x[l] + sa_iq4nl_values[q[l] >> 4] * x[l + 16];
            isum += (sa_iq4xs_scale(j, &w[b]) - 32) * s;
        }
        sum = sum + (a[b].d * sa_fp16_lut(w[b].d)) * (float)isum;
    }
    return sum;
}

SA_GEMM_FROM_DOT(sa_ref_gemm_q2_K, sa_ref_dot_q2_K)
SA_GEMM_FROM_DOT(sa_ref_gemm_q3_K, sa_ref_dot_q3_K)
SA_GEMM_FROM_DOT(sa_ref_gemm_iq4_nl, sa_ref_dot_iq4_nl)
SA_GEMM_FROM_DOT(sa_ref_gemm_iq4_xs, sa_ref_dot_iq4_xs)
