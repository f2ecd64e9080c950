/* quants_imatrix.c - the quantizers llama-quantize runs when it has an importance matrix: each
 * weight's error counts in proportion to how strongly its input column was activated on the
 * calibration text (the imatrix value of that column), so the scale searches favour the columns
 * that matter.
 *
 * The same choices as ggml's quantize_row_*_impl with quant_weights (same searches, same float
 * operation order, round half to even), so a tensor quantized here with llama.cpp's imatrix
 * matches llama-quantize's bytes. The searches are written out here rather than shared with
 * src/quants.c: the unweighted reference quantizers there weight by x^2 or by |x| + rms and
 * must stay exactly ggml's _ref paths. */
#include "quants_imatrix.h"

#include <math.h>
#include <string.h>

#include "common.h"

#define ALL_ZERO_EPS 1e-15f

static inline int round_int(float v) { return (int)rintf(v); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Signed levels L in [0, 2nmax) (l + nmax) for x ~ scale * l with weights w: a first scale from the
 * largest magnitude refined by weighted least squares, then 18 nearby scales, keeping the best. */
static float fit_signed_w(int n, int nmax, const float *x, int8_t *L, const float *w) {
    float mx = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            mx = x[i];
        }
    if (amax < ALL_ZERO_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / mx;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (!step) continue;
        iscale = -(nmax + 0.1f * step) / mx;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(round_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Levels in [0, nmax] for x ~ scale * l - min (min >= 0 into *neg_min), weights w: the range fit,
 * then 37 inverse scales (nmax - 0.9 + 0.05 k) / range, each solved by weighted least squares for
 * scale and offset; the least weighted squared error wins. */
static float fit_offset_w(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min) {
    uint8_t aux[32];
    float lo = x[0], hi = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0.0f) lo = 0.0f;
    if (hi <= lo) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.0f;
    }
    float iscale = nmax / (hi - lo);
    float scale = 1.0f / iscale;
    float best = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(round_int(iscale * (x[i] - lo)), 0, nmax);
        const float e = scale * L[i] + lo - x[i];
        best += w[i] * (e * e);
    }
    for (int k = 0; k <= 36; k++) {
        iscale = (-0.9f + 0.05f * k + nmax) / (hi - lo);
        float sl = 0.0f, sl2 = 0.0f, sxl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(round_int(iscale * (x[i] - lo)), 0, nmax);
            aux[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * l * x[i];
        }
        const float det = sum_w * sl2 - sl * sl;
        if (det > 0.0f) {
            float s = (sum_w * sxl - sum_x * sl) / det;
            float m = (sl2 * sum_x - sl * sxl) / det;
            if (m > 0.0f) {
                m = 0.0f;
                s = sxl / sl2;
            }
            float err = 0.0f;
            for (int i = 0; i < n; i++) {
                const float e = s * aux[i] + m - x[i];
                err += w[i] * (e * e);
            }
            if (err < best) {
                memcpy(L, aux, (size_t)n);
                best = err;
                scale = s;
                lo = m;
            }
        }
    }
    *neg_min = -lo;
    return scale;
}

/* Non-negative levels in [0, nmax] for the sub-block scales (or mins) x ~ scale * l, weighted by
 * each sub-block's total weight: the best of 9 inverse scales, then up to 5 passes moving single
 * levels while that improves the weighted fit. */
static float fit_scales_w(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float mx = 0.0f;
    for (int i = 0; i < n; i++) mx = SA_MAX(mx, x[i]);
    if (mx < ALL_ZERO_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = nmax / mx;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)round_int(iscale * x[i]);
    const float scale = 1.0f / iscale;
    float best = 0.0f;
    for (int i = 0; i < n; i++) {
        const float d = x[i] - scale * L[i];
        best += w[i] * d * d;
    }
    for (int step = -4; step <= 4; step++) {
        if (!step) continue;
        const float is = (0.1f * step + nmax) / mx, s = 1.0f / is;
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = SA_MIN(nmax, round_int(is * x[i]));
            const float d = x[i] - s * l;
            err += w[i] * d * d;
        }
        if (err < best) {
            best = err;
            iscale = is;
        }
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = SA_MIN(nmax, round_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i];
            float sl2 = suml2 - w[i] * L[i] * L[i];
            if (slx > 0.0f && sl2 > 0.0f) {
                const int nl = SA_MIN(nmax, round_int(x[i] * sl2 / slx));
                if (nl != L[i]) {
                    slx += w[i] * x[i] * nl;
                    sl2 += w[i] * nl * nl;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Per-element weights of a 32-element block: importance * sqrt(sigma2 + x^2). */
static void block_weights(const float *x, const float *imx, float sigma2, float *w, int n) {
    for (int j = 0; j < n; j++) w[j] = imx[j] * sqrtf(sigma2 + x[j] * x[j]);
}

static float row_sigma2(const float *x, int64_t n) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s / n;
}

static void q4_0_w(const float *x, BlockQ4_0 *y, int64_t n, const float *imx) {
    const float sigma2 = row_sigma2(x, n);
    float w[32];
    int8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        block_weights(x + 32 * b, imx + 32 * b, sigma2, w, 32);
        y[b].d = sa_fp32_to_fp16(fit_signed_w(32, 8, x + 32 * b, L, w));
        for (int j = 0; j < 16; j++) y[b].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

static uint32_t fifth_bits(const uint8_t *L, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((L[j] & 15) | (L[j + 16] & 15) << 4);
        qh |= (uint32_t)(L[j] >> 4 & 1) << j | (uint32_t)(L[j + 16] >> 4 & 1) << (j + 16);
    }
    return qh;
}

static void put_qh(uint8_t qh[4], uint32_t bits) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(bits >> 8 * k);
}

static void q5_0_w(const float *x, BlockQ5_0 *y, int64_t n, const float *imx) {
    const float sigma2 = row_sigma2(x, n);
    float w[32];
    int8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        block_weights(x + 32 * b, imx + 32 * b, sigma2, w, 32);
        y[b].d = sa_fp32_to_fp16(fit_signed_w(32, 16, x + 32 * b, L, w));
        put_qh(y[b].qh, fifth_bits((const uint8_t *)L, y[b].qs));
    }
}

static void q4_1_w(const float *x, BlockQ4_1 *y, int64_t n, const float *imx) {
    const float sigma2 = row_sigma2(x, n);
    float w[32], mn;
    uint8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        block_weights(x + 32 * b, imx + 32 * b, sigma2, w, 32);
        y[b].d = sa_fp32_to_fp16(fit_offset_w(32, 15, x + 32 * b, w, L, &mn));
        y[b].m = sa_fp32_to_fp16(-mn);
        for (int j = 0; j < 16; j++) y[b].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

static void q5_1_w(const float *x, BlockQ5_1 *y, int64_t n, const float *imx) {
    const float sigma2 = row_sigma2(x, n);
    float w[32], mn;
    uint8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        block_weights(x + 32 * b, imx + 32 * b, sigma2, w, 32);
        y[b].d = sa_fp32_to_fp16(fit_offset_w(32, 31, x + 32 * b, w, L, &mn));
        y[b].m = sa_fp32_to_fp16(-mn);
        put_qh(y[b].qh, fifth_bits(L, y[b].qs));
    }
}

/* Q4_K / Q5_K: per 32-weight sub-block a weighted scale and min search (sigma2 here is twice the
 * super-block's mean square, as ggml has it), the 8 scales and 8 mins fitted to 6 bits weighted by
 * each sub-block's total weight, then every weight re-rounded with the stored values. */
static void kq_w(const float *x, int nmax, const float *imx, uint16_t *dd, uint16_t *dmin, uint8_t scales[12],
                 uint8_t L[QK_K]) {
    float s2 = 0.0f;
    for (int l = 0; l < QK_K; l++) s2 += x[l] * x[l];
    const float sigma2 = 2 * s2 / QK_K;
    float sc[8], mn[8], sw[8], w[32];
    uint8_t Ls[8], Lm[8];
    for (int j = 0; j < 8; j++) {
        block_weights(x + 32 * j, imx + 32 * j, sigma2, w, 32);
        float sum = 0.0f;
        for (int l = 0; l < 32; l++) sum += w[l];
        sw[j] = sum;
        sc[j] = fit_offset_w(32, nmax, x + 32 * j, w, L + 32 * j, &mn[j]);
    }
    const float d = fit_scales_w(8, 63, sc, Ls, sw), m = fit_scales_w(8, 63, mn, Lm, sw);
    for (int j = 0; j < 8; j++) {
        const uint8_t ls = SA_MIN(63, Ls[j]), lm = SA_MIN(63, Lm[j]);
        if (j < 4) {
            scales[j] = ls;
            scales[j + 4] = lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dd = sa_fp32_to_fp16(d);
    *dmin = sa_fp32_to_fp16(m);
    for (int j = 0; j < 8; j++) {
        int s, mm;
        sa_kq_scale_min(j, scales, &s, &mm);
        const float ds = sa_fp16_to_fp32(*dd) * s;
        if (ds == 0.0f) continue;
        const float dm = sa_fp16_to_fp32(*dmin) * mm;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(round_int((x[32 * j + l] + dm) / ds), 0, nmax);
    }
}

static void q4_K_w(const float *x, BlockQ4_K *y, int64_t n, const float *imx) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx += QK_K) {
        kq_w(x, 15, imx, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

static void q5_K_w(const float *x, BlockQ5_K *y, int64_t n, const float *imx) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx += QK_K) {
        kq_w(x, 31, imx, &y[b].d, &y[b].dmin, y[b].scales, L);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const int a = L[64 * c + l], h = L[64 * c + 32 + l];
                y[b].qs[32 * c + l] = (uint8_t)((a & 15) | (h & 15) << 4);
                y[b].qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (h >> 4) << (2 * c + 1));
            }
    }
}

/* Q6_K: each 16-weight sub-block fitted with the importance values themselves as weights (ggml
 * does not scale them by sqrt(sigma2 + x^2) for this type), then as the unweighted one. */
static void q6_K_w(const float *x, BlockQ6_K *y, int64_t n, const float *imx) {
    int8_t L[QK_K];
    float sc[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx += QK_K) {
        float max_sc = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_signed_w(16, 32, x + 16 * j, L + 16 * j, imx + 16 * j);
            if (fabsf(sc[j]) > max_abs) {
                max_abs = fabsf(sc[j]);
                max_sc = sc[j];
            }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (max_abs < ALL_ZERO_EPS) continue;
        const float iscale = -128.0f / max_sc;
        y[b].d = sa_fp32_to_fp16(1.0f / iscale);
        for (int j = 0; j < 16; j++) y[b].scales[j] = (int8_t)SA_MIN(127, round_int(iscale * sc[j]));
        for (int j = 0; j < 16; j++) {
            const float d = sa_fp16_to_fp32(y[b].d) * y[b].scales[j];
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                y[b].ql[64 * h + l] = (uint8_t)((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
                y[b].ql[64 * h + 32 + l] = (uint8_t)((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
                y[b].qh[32 * h + l] =
                    (uint8_t)(Lh[l] >> 4 | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
            }
        }
    }
}

/* ---- Q2_K, Q3_K, IQ4_NL, IQ4_XS ----
 * Their SaDtype rows and unweighted quantizers come with another change (src/quants.c); here they
 * are addressed by their GGUF type id, with private copies of ggml's block layouts, so the weighted
 * quantizers do not depend on how that change names them. */

enum { GG_Q2_K = 10, GG_Q3_K = 11, GG_IQ4_NL = 20, GG_IQ4_XS = 23 };

typedef struct {
    uint8_t scales[16]; /* low nibble scale, high nibble min, per 16 weights */
    uint8_t qs[64];
    uint16_t d, dmin;
} BlkQ2K;
typedef struct {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
} BlkQ3K;
typedef struct {
    uint16_t d;
    uint8_t qs[16];
} BlkIQ4NL;
typedef struct {
    uint16_t d, scales_h;
    uint8_t scales_l[4];
    uint8_t qs[128];
} BlkIQ4XS;
_Static_assert(sizeof(BlkQ2K) == 84 && sizeof(BlkQ3K) == 110 && sizeof(BlkIQ4NL) == 18 && sizeof(BlkIQ4XS) == 136,
               "ggml block sizes");

/* Q2_K: per 16 weights a weighted scale-and-min fit with 2-bit levels; the 16 scales and 16 mins
 * fitted to 4 bits; every weight re-rounded with the stored values. */
static void q2_K_w(const float *x, BlkQ2K *y, int64_t n, const float *imx) {
    uint8_t L[QK_K], Ls[16], Lm[16];
    float sc[16], mn[16], sw[16], w[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx += QK_K) {
        float s2 = 0.0f;
        for (int j = 0; j < QK_K; j++) s2 += x[j] * x[j];
        const float sigma2 = s2 / QK_K;
        for (int j = 0; j < 16; j++) {
            block_weights(x + 16 * j, imx + 16 * j, sigma2, w, 16);
            sw[j] = 0.0f;
            for (int l = 0; l < 16; l++) sw[j] += w[l];
            sc[j] = fit_offset_w(16, 3, x + 16 * j, w, L + 16 * j, &mn[j]);
        }
        y[b].d = sa_fp32_to_fp16(fit_scales_w(16, 15, sc, Ls, sw));
        y[b].dmin = sa_fp32_to_fp16(fit_scales_w(16, 15, mn, Lm, sw));
        const float dm = sa_fp16_to_fp32(y[b].d), mm = sa_fp16_to_fp32(y[b].dmin);
        for (int j = 0; j < 16; j++) y[b].scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        for (int j = 0; j < 16; j++) {
            const float d = dm * (y[b].scales[j] & 15);
            if (d == 0.0f) continue;
            const float m = mm * (y[b].scales[j] >> 4);
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)clampi(round_int((x[16 * j + l] + m) / d), 0, 3);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *Lh = L + 128 * h;
                y[b].qs[32 * h + l] = (uint8_t)(Lh[l] | Lh[l + 32] << 2 | Lh[l + 64] << 4 | Lh[l + 96] << 6);
            }
    }
}

/* Q3_K: per 16 weights a weighted signed fit with 3-bit levels, the 16 scales fitted to signed
 * 6 bits weighted by the sub-blocks' total weights, then every weight re-rounded. */
static void q3_K_w(const float *x, BlkQ3K *y, int64_t n, const float *imx) {
    int8_t L[QK_K], Ls[16];
    float sc[16], sw[16], w[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx += QK_K) {
        float s2 = 0.0f;
        for (int j = 0; j < QK_K; j++) s2 += x[j] * x[j];
        const float sigma2 = 2 * s2 / QK_K;
        for (int j = 0; j < 16; j++) {
            block_weights(x + 16 * j, imx + 16 * j, sigma2, w, 16);
            float sum = 0.0f;
            for (int l = 0; l < 16; l++) sum += w[l];
            sw[j] = sum;
            sc[j] = fit_signed_w(16, 4, x + 16 * j, L + 16 * j, w);
        }
        memset(y[b].scales, 0, 12);
        const float d_block = fit_signed_w(16, 32, sc, Ls, sw);
        for (int j = 0; j < 16; j++) {
            int l = Ls[j];
            if (j < 8) y[b].scales[j] = (uint8_t)(l & 15);
            else y[b].scales[j - 8] |= (uint8_t)((l & 15) << 4);
            l >>= 4;
            y[b].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
        }
        y[b].d = sa_fp32_to_fp16(d_block);
        for (int j = 0; j < 16; j++) {
            int s = j < 8 ? y[b].scales[j] & 15 : y[b].scales[j - 8] >> 4;
            s = (s | ((y[b].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
            const float d = sa_fp16_to_fp32(y[b].d) * (float)(int8_t)s;
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        memset(y[b].hmask, 0, 32);
        for (int j = 0; j < QK_K; j++)
            if (L[j] > 3) {
                y[b].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
                L[j] -= 4;
            }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *Lh = L + 128 * h;
                y[b].qs[32 * h + l] = (uint8_t)(Lh[l] | Lh[l + 32] << 2 | Lh[l + 64] << 4 | Lh[l + 96] << 6);
            }
    }
}

/* The 16 non-linear IQ4 levels (ggml's kvalues_iq4nl). */
static const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* The level nearest to v (the lower one on a tie, as ggml's search). */
static int iq4_nearest(float v) {
    if (v <= iq4_levels[0]) return 0;
    if (v >= iq4_levels[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < iq4_levels[mid]) hi = mid;
        else lo = mid;
    }
    return v - iq4_levels[hi - 1] < iq4_levels[hi] - v ? hi - 1 : hi;
}

/* One IQ4 super-block of `sb` weights in blocks of 32: per block the best of 15 scales around
 * max / 127 by weighted least squares over the non-linear levels; IQ4_XS (sb 256) then stores the
 * 8 block scales as signed 6 bits of a super-block scale and re-rounds every weight. */
static void iq4_w(int sb, const float *x, const float *imx, uint16_t *dh, uint8_t *q4, uint16_t *scales_h,
                  uint8_t *scales_l) {
    uint8_t L[QK_K];
    float scales[QK_K / 32], w[32];
    float sigma2 = 0.0f;
    for (int j = 0; j < sb; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.0f / sb;
    memset(q4, 0, (size_t)sb / 2);
    *dh = sa_fp32_to_fp16(0.0f);
    float max_scale = 0.0f, amax_scale = 0.0f;
    for (int ib = 0; ib < sb / 32; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        if (imx) block_weights(xb, imx + 32 * ib, sigma2, w, 32);
        else
            for (int j = 0; j < 32; j++) w[j] = xb[j] * xb[j]; /* without an importance matrix: x^2 */
        float amax = 0.0f, mx = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                mx = xb[j];
            }
        if (amax < ALL_ZERO_EPS) {
            scales[ib] = 0.0f;
            continue;
        }
        float d = -mx / iq4_levels[0];
        float id = 1 / d;
        float sumqx = 0.0f, sumq2 = 0.0f;
        for (int j = 0; j < 32; j++) {
            const int l = iq4_nearest(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = iq4_levels[l];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int t = -7; t <= 7; t++) {
            id = (t + iq4_levels[0]) / mx;
            sumqx = sumq2 = 0.0f;
            for (int j = 0; j < 32; j++) {
                const float q = iq4_levels[iq4_nearest(id * xb[j])];
                sumqx += w[j] * q * xb[j];
                sumq2 += w[j] * q * q;
            }
            if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (fabsf(d) > amax_scale) {
            amax_scale = fabsf(d);
            max_scale = d;
        }
    }
    if (sb > 32) {
        *scales_h = 0;
        const float d = -max_scale / 32;
        *dh = sa_fp32_to_fp16(d);
        const float id = d != 0.0f ? 1 / d : 0.0f;
        for (int ib = 0; ib < sb / 32; ib++) {
            int l = clampi(round_int(id * scales[ib]), -32, 31);
            const float dl = d * l, idl = dl != 0.0f ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_nearest(idl * x[32 * ib + j]);
            l += 32;
            if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 15);
            else scales_l[ib / 2] |= (uint8_t)((l & 15) << 4);
            *scales_h |= (uint16_t)((l >> 4) << 2 * (ib % 8));
        }
    } else {
        *dh = sa_fp32_to_fp16(scales[0]);
        const float id = scales[0] != 0.0f ? 1 / scales[0] : 0.0f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_nearest(id * x[j]);
    }
    for (int i = 0; i < sb / 32; i++)
        for (int j = 0; j < 16; j++) q4[16 * i + j] = (uint8_t)(L[32 * i + j] | L[32 * i + 16 + j] << 4);
}

/* IQ4_NL / IQ4_XS with imx NULL: what llama-quantize writes without an importance matrix (ggml's
 * quantize_iq4_nl/xs with no weights: the same 15-scale search weighted by x^2; not ggml's
 * quantize_row_iq4_nl_ref, which skips the search). */
static void iq4_nl_w(const float *x, BlkIQ4NL *y, int64_t n, const float *imx) {
    for (int64_t b = 0; b < n / 32; b++) iq4_w(32, x + 32 * b, imx ? imx + 32 * b : NULL, &y[b].d, y[b].qs, NULL, NULL);
}

static void iq4_xs_w(const float *x, BlkIQ4XS *y, int64_t n, const float *imx) {
    for (int64_t b = 0; b < n / QK_K; b++)
        iq4_w(QK_K, x + QK_K * b, imx ? imx + QK_K * b : NULL, &y[b].d, y[b].qs, &y[b].scales_h, y[b].scales_l);
}

int sa_quantize_row_imatrix_gg(int ggml_type, const float *x, void *dst, int64_t n, const float *imx) {
    if (!imx && ggml_type != GG_IQ4_NL && ggml_type != GG_IQ4_XS) return -1;
    switch (ggml_type) {
    case GG_Q2_K: q2_K_w(x, dst, n, imx); return 0;
    case GG_Q3_K: q3_K_w(x, dst, n, imx); return 0;
    case GG_IQ4_NL: iq4_nl_w(x, dst, n, imx); return 0;
    case GG_IQ4_XS: iq4_xs_w(x, dst, n, imx); return 0;
    default: return -1;
    }
}

static int gg_weighted(int ggml_type) {
    return ggml_type == GG_Q2_K || ggml_type == GG_Q3_K || ggml_type == GG_IQ4_NL || ggml_type == GG_IQ4_XS;
}

int sa_quantize_row_imatrix_supported(SaDtype t) {
    switch (t) {
    case SA_Q4_0: case SA_Q4_1: case SA_Q5_0: case SA_Q5_1: case SA_Q4_K: case SA_Q5_K: case SA_Q6_K:
    case SA_Q8_0: /* ggml's Q8_0 quantizer ignores the importance matrix */
    case SA_F32: case SA_F16: case SA_BF16:
        return 1;
    default:
        return gg_weighted(sa_dtype_traits[t].ggml_type);
    }
}

void sa_quantize_row_imatrix(SaDtype t, const float *x, void *dst, int64_t n, const float *imx) {
    if (!imx) { /* llama-quantize without an importance matrix: the reference quantizers, but IQ4's search */
        if (sa_quantize_row_imatrix_gg(sa_dtype_traits[t].ggml_type, x, dst, n, NULL)) sa_quantize_row(t, x, dst, n);
        return;
    }
    switch (t) {
    case SA_Q4_0: q4_0_w(x, dst, n, imx); break;
    case SA_Q4_1: q4_1_w(x, dst, n, imx); break;
    case SA_Q5_0: q5_0_w(x, dst, n, imx); break;
    case SA_Q5_1: q5_1_w(x, dst, n, imx); break;
    case SA_Q4_K: q4_K_w(x, dst, n, imx); break;
    case SA_Q5_K: q5_K_w(x, dst, n, imx); break;
    case SA_Q6_K: q6_K_w(x, dst, n, imx); break;
    default:
        if (sa_quantize_row_imatrix_gg(sa_dtype_traits[t].ggml_type, x, dst, n, imx)) sa_quantize_row(t, x, dst, n);
        break;
    }
}
