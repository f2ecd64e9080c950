/* quants.c - reference quantizers and dequantizers of the block types beyond Q8_0 / Q4_0.
 *
 * Each quantizer makes the same choices as ggml's quantize_row_*_ref (the quantizer
 * llama-quantize runs when it has no importance matrix): the same scale and minimum search,
 * the same rounding (round half to even through rintf, float arithmetic in the same order),
 * so a tensor requantized here can match llama-quantize's bytes. The block layouts are in
 * dtype.h.
 *
 * The same functions, given an importance matrix (imx, one value per column of the row;
 * llama-quantize --imatrix), make the choices of ggml's quantize_row_*_impl with quant_weights
 * instead (sa_quantize_row_w). Each type's block packing, scale encoding and re-rounding is
 * written once for both; where ggml's weighted search is a different algorithm from its _ref
 * one (Q4_0..Q5_1's plain max/min, Q3_K's greedy signed fit, Q2_K / Q4_K / Q5_K's max-based scale
 * encoding) both searches are kept, side by side. */
#include <float.h>
#include <math.h>

#include "common.h"
#include "dtype.h"

/* Groups whose largest magnitude is below this quantize to zero (ggml's threshold). */
#define ALL_ZERO_EPS 1e-15f

/* Round to nearest, ties to even, as ggml's quantizers do: 1.5 * 2^23 added in float leaves the
 * rounded value in the low mantissa bits. It equals (int)rintf(v) for |v| < 2^22; beyond (a
 * sub-block scale 4M times below its values, NaN) it wraps to some value in [-2^22, 2^22) where
 * rintf would overflow the int (undefined), and the clamps after it then see ggml's value, so
 * even those blocks keep llama-quantize's bytes. */
static inline int round_int(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline float h2f(uint16_t h) { return sa_fp16_to_fp32(h); }
static inline uint16_t f2h(float f) { return sa_fp32_to_fp16(f); }

static void block_min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* The value of largest magnitude (its sign kept); the first one on ties. */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, v = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            v = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return v;
}

/* Weights of n elements under an importance matrix: importance * sqrt(sigma2 + x^2), ggml's. */
static void imatrix_weights(const float *x, const float *imx, float sigma2, float *w, int n) {
    for (int j = 0; j < n; j++) w[j] = imx[j] * sqrtf(sigma2 + x[j] * x[j]);
}

/* sigma2 of the 32-element types: the mean square of the whole row, as ggml has it */
static float mean_square(const float *x, int64_t n) {
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s / n;
}

/* 32 levels 0..15 as Q4_0 / Q4_1 store them: element j in the low nibble of byte j, j + 16 high. */
static void pack_nibbles(const uint8_t *L, uint8_t qs[16]) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((L[j] & 15) | (L[j + 16] & 15) << 4);
}

static void put_qh(uint8_t qh[4], uint32_t bits) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(bits >> 8 * k);
}

/* 32 levels 0..31 as Q5_0 / Q5_1 store them: the low nibbles as Q4_0, bit 4 of element j in
 * bit j of the little-endian qh. */
static void pack_fifth(const uint8_t *L, uint8_t qs[16], uint8_t qh[4]) {
    uint32_t hi = 0;
    for (int j = 0; j < 16; j++) hi |= (uint32_t)(L[j] >> 4 & 1) << j | (uint32_t)(L[j + 16] >> 4 & 1) << (j + 16);
    pack_nibbles(L, qs);
    put_qh(qh, hi);
}

static float fit_signed_levels(int n, int nmax, const float *x, int8_t *L, const float *w);
static float fit_offset_levels(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, uint8_t *Laux,
                               float rmin, float rdelta, int nstep, int use_abs);

/* ggml's weighted searches of the 32-element types (x ~ d * (l - nmax) or d * l - min) with an
 * importance matrix; their _ref quantizers have no search at all (dtype.c for Q4_0, below). */
static float fit_signed_imatrix(int nmax, const float *x, const float *imx, float sigma2, int8_t L[32]) {
    float w[32];
    imatrix_weights(x, imx, sigma2, w, 32);
    return fit_signed_levels(32, nmax, x, L, w);
}

static float fit_offset_imatrix(int nmax, const float *x, const float *imx, float sigma2, uint8_t L[32], float *neg_min) {
    float w[32];
    uint8_t aux[32];
    imatrix_weights(x, imx, sigma2, w, 32);
    return fit_offset_levels(32, nmax, x, w, L, neg_min, aux, -0.9f, 0.05f, 36, 0);
}

static void q4_0_imatrix(const float *x, BlockQ4_0 *y, int64_t n, const float *imx) {
    const float sigma2 = mean_square(x, n);
    int8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        y[b].d = f2h(fit_signed_imatrix(8, x + 32 * b, imx + 32 * b, sigma2, L));
        pack_nibbles((const uint8_t *)L, y[b].qs);
    }
}

/* ---- 32-element block types ---- */

/* Q4_1 and Q5_1 (nmax 15 / 31): without imx ggml's _ref range fit, with it the weighted search. */
static void offset_block(const float *x, int nmax, const float *imx, float sigma2, uint16_t *d16, uint16_t *m16,
                         uint8_t L[32]) {
    if (imx) {
        float mn;
        *d16 = f2h(fit_offset_imatrix(nmax, x, imx, sigma2, L, &mn));
        *m16 = f2h(-mn);
        return;
    }
    float lo, hi;
    block_min_max(x, 32, &lo, &hi);
    const float d = (hi - lo) / nmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d16 = f2h(d);
    *m16 = f2h(lo);
    /* Q4_1 clamps through int8 to 15, Q5_1 only truncates to a byte (the bits above 4 are dropped
     * when packed), as ggml's _ref */
    for (int j = 0; j < 32; j++)
        L[j] = nmax == 15 ? (uint8_t)SA_MIN(15, (int8_t)((x[j] - lo) * id + 0.5f)) : (uint8_t)((x[j] - lo) * id + 0.5f);
}

static void q4_1_rows(const float *x, BlockQ4_1 *y, int64_t n, const float *imx) {
    const float sigma2 = imx ? mean_square(x, n) : 0.0f;
    uint8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        offset_block(x + 32 * b, 15, imx ? imx + 32 * b : NULL, sigma2, &y[b].d, &y[b].m, L);
        pack_nibbles(L, y[b].qs);
    }
}

void sa_quantize_row_q4_1(const float *x, BlockQ4_1 *y, int64_t n) { q4_1_rows(x, y, n, NULL); }

void sa_dequantize_q4_1(const void *src, float *dst, int64_t n) {
    const BlockQ4_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, dst += 32) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < 16; j++) {
            dst[j] = (b[i].qs[j] & 15) * d + m;
            dst[j + 16] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t get_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static void q5_0_rows(const float *x, BlockQ5_0 *y, int64_t n, const float *imx) {
    const float sigma2 = imx ? mean_square(x, n) : 0.0f;
    int8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        if (imx) {
            y[b].d = f2h(fit_signed_imatrix(16, xb, imx + 32 * b, sigma2, L));
        } else {
            const float d = signed_absmax(xb, 32, NULL) / -16.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            y[b].d = f2h(d);
            for (int j = 0; j < 32; j++) L[j] = (int8_t)SA_MIN(31, (int8_t)(xb[j] * id + 16.5f));
        }
        pack_fifth((const uint8_t *)L, y[b].qs, y[b].qh);
    }
}

void sa_quantize_row_q5_0(const float *x, BlockQ5_0 *y, int64_t n) { q5_0_rows(x, y, n, NULL); }

void sa_dequantize_q5_0(const void *src, float *dst, int64_t n) {
    const BlockQ5_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++, dst += 32) {
        const float d = h2f(b[i].d);
        const uint32_t hi = get_qh(b[i].qh);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((int)((b[i].qs[j] & 15) | (hi >> j & 1) << 4) - 16) * d;
            dst[j + 16] = (float)((int)((b[i].qs[j] >> 4) | (hi >> (j + 16) & 1) << 4) - 16) * d;
        }
    }
}

static void q5_1_rows(const float *x, BlockQ5_1 *y, int64_t n, const float *imx) {
    const float sigma2 = imx ? mean_square(x, n) : 0.0f;
    uint8_t L[32];
    for (int64_t b = 0; b < n / 32; b++) {
        offset_block(x + 32 * b, 31, imx ? imx + 32 * b : NULL, sigma2, &y[b].d, &y[b].m, L);
        pack_fifth(L, y[b].qs, y[b].qh);
    }
}

void sa_quantize_row_q5_1(const float *x, BlockQ5_1 *y, int64_t n) { q5_1_rows(x, y, n, NULL); }

void sa_dequantize_q5_1(const void *src, float *dst, int64_t n) {
    const BlockQ5_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, dst += 32) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        const uint32_t hi = get_qh(b[i].qh);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((b[i].qs[j] & 15) | (hi >> j & 1) << 4) * d + m;
            dst[j + 16] = (float)((b[i].qs[j] >> 4) | (hi >> (j + 16) & 1) << 4) * d + m;
        }
    }
}

/* The activations of Q4_1 / Q5_1 weights, as ggml-cpu's SIMD quantize_row_q8_1 makes them
 * (not its _ref): 127/amax and ties to even, like sa_quantize_act_q8_0 (dtype.c says why). */
void sa_quantize_row_q8_1(const float *x, BlockQ8_1 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = (int8_t)rintf(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = f2h(d);
        y[b].s = f2h((float)sum * d);
    }
}

void sa_dequantize_q8_1(const void *src, float *dst, int64_t n) {
    const BlockQ8_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, dst += 32) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 32; j++) dst[j] = d * b[i].qs[j];
    }
}

/* ---- scale searches of the K-quants ---- */

/* Levels l in [-nmax, nmax-1] for x ~ scale * l (returned with nmax added, so 0 .. 2nmax-1),
 * weighting element i by w[i] (w NULL: by x^2, the _ref weighting): a first scale from the
 * largest magnitude, its least-squares refinement, then 18 nearby starting scales, keeping the
 * best weighted fit. */
static float fit_signed_levels(int n, int nmax, const float *x, int8_t *L, const float *wt) {
    float amax;
    const float mx = signed_absmax(x, n, &amax);
    if (amax < ALL_ZERO_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = -nmax / mx;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = wt ? wt[i] : x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        iscale = -(nmax + 0.1f * step) / mx;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = wt ? wt[i] : x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(round_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Levels l in [0, nmax] for x ~ scale * l - min (min >= 0 returned in *neg_min) with weights w:
 * a first fit from the range, then nstep+1 candidate inverse scales (rmin + rdelta*k + nmax) /
 * range, each solved by weighted least squares for scale and offset, keeping the one of least
 * weighted squared (or, with use_abs, absolute) error. Laux: n bytes of scratch. */
static float fit_offset_levels(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, uint8_t *Laux,
                               float rmin, float rdelta, int nstep, int use_abs) {
    float lo = x[0], hi = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0.0f) lo = 0.0f;
    if (hi == lo) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -lo;
        return 0.0f;
    }
    float iscale = nmax / (hi - lo);
    float scale = 1.0f / iscale;
    float best_err = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(round_int(iscale * (x[i] - lo)), 0, nmax);
        float e = scale * L[i] + lo - x[i];
        e = use_abs ? fabsf(e) : e * e;
        best_err += w[i] * e;
    }
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * k + nmax) / (hi - lo);
        float sl = 0.0f, sl2 = 0.0f, sxl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(round_int(iscale * (x[i] - lo)), 0, nmax);
            Laux[i] = (uint8_t)l;
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
                float e = s * Laux[i] + m - x[i];
                e = use_abs ? fabsf(e) : e * e;
                err += w[i] * e;
            }
            if (err < best_err) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_err = err;
                scale = s;
                lo = m;
            }
        }
    }
    *neg_min = -lo;
    return scale;
}

/* Non-negative levels in [0, nmax] for the sub-block scales (or mins) x ~ scale * l, weighted by
 * w (each sub-block's total importance): the best of 9 inverse scales, then up to 5 passes moving
 * single levels while that improves the weighted fit. Only the importance-matrix quantizers
 * search here; the _ref ones scale against the largest value. */
static float fit_scales_weighted(int n, int nmax, const float *x, uint8_t *L, const float *w) {
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
        const float is = (0.1f * step + nmax) / mx, sc = 1.0f / is;
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = SA_MIN(nmax, round_int(is * x[i]));
            const float d = x[i] - sc * l;
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

/* The scales (or mins) of n sub-blocks to levels 0..nmax, the step returned: with importance
 * weights sw the weighted search, without them (ggml's _ref) against the largest value (the int
 * -> byte conversion keeping the low bits, as ggml's stores do). */
static float sub_scales(int n, int nmax, const float *v, const float *sw, uint8_t *L, int zero_if_none) {
    if (sw) return fit_scales_weighted(n, nmax, v, L, sw);
    float mx = 0.0f;
    for (int j = 0; j < n; j++)
        if (v[j] > mx) mx = v[j];
    const float inv = mx > 0.0f ? nmax / mx : 0.0f;
    /* zero_if_none: Q2_K's _ref stores zeros when no value is positive (Q4_K's rounds 0 * v,
     * which differs only for a NaN v) */
    for (int j = 0; j < n; j++) L[j] = zero_if_none && !(mx > 0.0f) ? 0 : (uint8_t)round_int(inv * v[j]);
    return mx / nmax;
}

/* Q4_K and Q5_K share everything but the level count and the search range. Each 32-weight
 * sub-block gets a scale and a min (weights sqrt(mean x^2) + |x|, or with imx the importance
 * weights over twice the super-block's mean square, as ggml has it), both requantized to 6 bits,
 * then every weight is re-rounded with the stored scales. */
static void kq_scales_levels(const float *x, int nmax, float rmin, int nstep, const float *imx, uint16_t *dd,
                             uint16_t *dmin, uint8_t scales[12], uint8_t L[QK_K]) {
    float sc[8], mn[8], sw[8], w[32];
    uint8_t aux[32], Ls[8], Lm[8];
    float sigma2 = 0.0f;
    if (imx) {
        for (int l = 0; l < QK_K; l++) sigma2 += x[l] * x[l];
        sigma2 = 2 * sigma2 / QK_K;
    }
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        if (imx) {
            imatrix_weights(xs, imx + 32 * j, sigma2, w, 32);
            float sum = 0.0f;
            for (int l = 0; l < 32; l++) sum += w[l];
            sw[j] = sum;
            sc[j] = fit_offset_levels(32, nmax, xs, w, L + 32 * j, &mn[j], aux, -0.9f, 0.05f, 36, 0);
        } else {
            float s2 = 0.0f;
            for (int l = 0; l < 32; l++) s2 += xs[l] * xs[l];
            const float av = sqrtf(s2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
            sc[j] = fit_offset_levels(32, nmax, xs, w, L + 32 * j, &mn[j], aux, rmin, 0.1f, nstep, 0);
        }
    }
    const float d = sub_scales(8, 63, sc, imx ? sw : NULL, Ls, 0), m = sub_scales(8, 63, mn, imx ? sw : NULL, Lm, 0);
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        const int ls = SA_MIN(63, Ls[j]);
        const int lm = SA_MIN(63, Lm[j]);
        if (j < 4) {
            scales[j] = (uint8_t)ls;
            scales[j + 4] = (uint8_t)lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dd = f2h(d);
    *dmin = f2h(m);
    for (int j = 0; j < 8; j++) {
        int s, mm;
        sa_kq_scale_min(j, scales, &s, &mm);
        const float ds = h2f(*dd) * s;
        if (ds == 0.0f) continue;
        const float dm = h2f(*dmin) * mm;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(round_int((x[32 * j + l] + dm) / ds), 0, nmax);
    }
}

static void q4_K_rows(const float *x, BlockQ4_K *y, int64_t n, const float *imx) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx = imx ? imx + QK_K : NULL) {
        kq_scales_levels(x, 15, -1.0f, 20, imx, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void sa_quantize_row_q4_K(const float *x, BlockQ4_K *y, int64_t n) { q4_K_rows(x, y, n, NULL); }

void sa_dequantize_q4_K(const void *src, float *dst, int64_t n) {
    const BlockQ4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            sa_kq_scale_min(2 * c, b[i].scales, &s0, &m0);
            sa_kq_scale_min(2 * c + 1, b[i].scales, &s1, &m1);
            const float d0 = d * s0, o0 = dmin * m0, d1 = d * s1, o1 = dmin * m1;
            const uint8_t *q = b[i].qs + 32 * c;
            for (int l = 0; l < 32; l++) *dst++ = d0 * (q[l] & 15) - o0;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (q[l] >> 4) - o1;
        }
    }
}

static void q5_K_rows(const float *x, BlockQ5_K *y, int64_t n, const float *imx) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx = imx ? imx + QK_K : NULL) {
        kq_scales_levels(x, 31, -0.5f, 15, imx, &y[b].d, &y[b].dmin, y[b].scales, L);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int a = L[64 * c + l], h = L[64 * c + 32 + l];
                y[b].qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (h >> 4) << (2 * c + 1));
                y[b].qs[32 * c + l] = (uint8_t)((a & 15) | (h & 15) << 4);
            }
        }
    }
}

void sa_quantize_row_q5_K(const float *x, BlockQ5_K *y, int64_t n) { q5_K_rows(x, y, n, NULL); }

void sa_dequantize_q5_K(const void *src, float *dst, int64_t n) {
    const BlockQ5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            sa_kq_scale_min(2 * c, b[i].scales, &s0, &m0);
            sa_kq_scale_min(2 * c + 1, b[i].scales, &s1, &m1);
            const float d0 = d * s0, o0 = dmin * m0, d1 = d * s1, o1 = dmin * m1;
            const uint8_t *q = b[i].qs + 32 * c;
            for (int l = 0; l < 32; l++) *dst++ = d0 * ((q[l] & 15) + (b[i].qh[l] >> (2 * c) & 1) * 16) - o0;
            for (int l = 0; l < 32; l++) *dst++ = d1 * ((q[l] >> 4) + (b[i].qh[l] >> (2 * c + 1) & 1) * 16) - o1;
        }
    }
}

/* The 6-bit level (0..63) of weight e (< 256) of a Q6_K block. */
static inline int q6_level(const BlockQ6_K *b, int e) {
    const int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t lo = b->ql[64 * h + 32 * (quarter & 1) + l];
    const int low = quarter < 2 ? lo & 15 : lo >> 4;
    return low | (b->qh[32 * h + l] >> (2 * quarter) & 3) << 4;
}

/* Q6_K: with imx each 16-weight sub-block is fitted with the importance values themselves as
 * weights (ggml does not scale them by sqrt(sigma2 + x^2) for this type); all else is shared. */
static void q6_K_rows(const float *x, BlockQ6_K *y, int64_t n, const float *imx) {
    int8_t L[QK_K];
    float sc[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx = imx ? imx + QK_K : NULL) {
        float max_sc = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_signed_levels(16, 32, x + 16 * j, L + 16 * j, imx ? imx + 16 * j : NULL);
            if (fabsf(sc[j]) > max_abs) {
                max_abs = fabsf(sc[j]);
                max_sc = sc[j];
            }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (max_abs < ALL_ZERO_EPS) continue;
        const float iscale = -128.0f / max_sc;
        y[b].d = f2h(1.0f / iscale);
        for (int j = 0; j < 16; j++) y[b].scales[j] = (int8_t)SA_MIN(127, round_int(iscale * sc[j]));
        for (int j = 0; j < 16; j++) {
            const float d = h2f(y[b].d) * y[b].scales[j];
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

void sa_quantize_row_q6_K(const float *x, BlockQ6_K *y, int64_t n) { q6_K_rows(x, y, n, NULL); }

void sa_dequantize_q6_K(const void *src, float *dst, int64_t n) {
    const BlockQ6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int e = 0; e < QK_K; e++) *dst++ = d * b[i].scales[e / 16] * (q6_level(&b[i], e) - 32);
    }
}

void sa_quantize_row_q8_K(const float *x, BlockQ8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float amax;
        const float mx = signed_absmax(x, QK_K, &amax);
        memset(&y[b], 0, sizeof y[b]);
        if (amax == 0.0f) continue;
        const float iscale = -127.0f / mx;
        for (int j = 0; j < QK_K; j++) y[b].qs[j] = (int8_t)SA_MIN(127, round_int(iscale * x[j]));
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[b].qs[16 * g + l];
            y[b].bsums[g] = (int16_t)s;
        }
        y[b].d = 1.0f / iscale;
    }
}

void sa_dequantize_q8_K(const void *src, float *dst, int64_t n) {
    const BlockQ8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) *dst++ = b[i].d * b[i].qs[j];
}

/* ---- Q2_K, Q3_K ---- */

/* Levels l in [-nmax, nmax-1] for x ~ scale * l (returned with nmax added), weighting each element
 * by x^2: a first rounding from the largest magnitude, then up to 5 passes that move single
 * levels to where the least-squares scale of the others puts them, keeping a move only when it
 * raises (sum w x l)^2 / (sum w l^2). Returns that least-squares scale. */
static float fit_signed_levels_greedy(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float mx = signed_absmax(x, n, &amax);
    if (amax < ALL_ZERO_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    const float iscale = -nmax / mx;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clampi(round_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (!(slx > 0.0f)) continue;
            float sl2 = suml2 - w * L[i] * L[i];
            const int nl = clampi(round_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            slx += w * x[i] * nl;
            sl2 += w * nl * nl;
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Pack 256 two-bit levels as Q2_K / Q3_K store them: weights l, l+32, l+64, l+96 of each half of
 * 128 in one byte, two bits each. */
static void pack_2bit(const uint8_t *L, uint8_t qs[QK_K / 4]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *Lh = L + 128 * h;
            qs[32 * h + l] = (uint8_t)(Lh[l] | Lh[l + 32] << 2 | Lh[l + 64] << 4 | Lh[l + 96] << 6);
        }
}

/* Q2_K: per 16 weights a scale and min fitted to levels 0..3 (_ref: weights |x|, absolute error;
 * with imx: importance weights over the super-block's mean square, squared error, a wider
 * search), the 16 scales and 16 mins to 4 bits, every weight re-rounded with the stored values. */
static void q2_K_rows(const float *x, BlockQ2_K *y, int64_t n, const float *imx) {
    uint8_t L[QK_K], aux[16], Ls[16], Lm[16];
    float sc[16], mn[16], sw[16], w[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx = imx ? imx + QK_K : NULL) {
        float sigma2 = 0.0f;
        if (imx) {
            for (int j = 0; j < QK_K; j++) sigma2 += x[j] * x[j];
            sigma2 = sigma2 / QK_K;
        }
        for (int j = 0; j < 16; j++) {
            const float *xs = x + 16 * j;
            if (imx) {
                imatrix_weights(xs, imx + 16 * j, sigma2, w, 16);
                sw[j] = 0.0f;
                for (int l = 0; l < 16; l++) sw[j] += w[l];
                sc[j] = fit_offset_levels(16, 3, xs, w, L + 16 * j, &mn[j], aux, -0.9f, 0.05f, 36, 0);
            } else {
                for (int l = 0; l < 16; l++) w[l] = fabsf(xs[l]);
                sc[j] = fit_offset_levels(16, 3, xs, w, L + 16 * j, &mn[j], aux, -0.5f, 0.1f, 15, 1);
            }
        }
        y[b].d = f2h(sub_scales(16, 15, sc, imx ? sw : NULL, Ls, 1));
        y[b].dmin = f2h(sub_scales(16, 15, mn, imx ? sw : NULL, Lm, 1));
        for (int j = 0; j < 16; j++) y[b].scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        /* every weight re-rounded with the stored scale and min */
        for (int j = 0; j < 16; j++) {
            const float d = h2f(y[b].d) * (y[b].scales[j] & 15);
            if (d == 0.0f) continue;
            const float dm = h2f(y[b].dmin) * (y[b].scales[j] >> 4);
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)clampi(round_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[b].qs);
    }
}

void sa_quantize_row_q2_K(const float *x, BlockQ2_K *y, int64_t n) { q2_K_rows(x, y, n, NULL); }

void sa_dequantize_q2_K(const void *src, float *dst, int64_t n) {
    const BlockQ2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int e = 0; e < QK_K; e++) {
            const uint8_t s = b[i].scales[e / 16];
            const int q = b[i].qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3;
            const float dl = d * (s & 15), ml = dmin * (s >> 4);
            *dst++ = dl * q - ml;
        }
    }
}

/* Q3_K: per 16 weights a signed fit to levels -4..3 (_ref: the greedy x^2-weighted one; with
 * imx: ggml's 18-scale search with importance weights over twice the super-block's mean square),
 * the 16 scales to signed 6 bits (_ref: against the largest; with imx: the same search weighted
 * by the sub-blocks' total importance), then every weight re-rounded. */
static void q3_K_rows(const float *x, BlockQ3_K *y, int64_t n, const float *imx) {
    int8_t L[QK_K], Ls[16];
    float sc[16], sw[16], w[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx = imx ? imx + QK_K : NULL) {
        float d_block = 0.0f;
        if (imx) {
            float s2 = 0.0f;
            for (int j = 0; j < QK_K; j++) s2 += x[j] * x[j];
            const float sigma2 = 2 * s2 / QK_K;
            for (int j = 0; j < 16; j++) {
                imatrix_weights(x + 16 * j, imx + 16 * j, sigma2, w, 16);
                float sum = 0.0f;
                for (int l = 0; l < 16; l++) sum += w[l];
                sw[j] = sum;
                sc[j] = fit_signed_levels(16, 4, x + 16 * j, L + 16 * j, w);
            }
            d_block = fit_signed_levels(16, 32, sc, Ls, sw);
        } else {
            float max_sc = 0.0f, amax = 0.0f;
            for (int j = 0; j < 16; j++) {
                sc[j] = fit_signed_levels_greedy(16, 4, x + 16 * j, L + 16 * j);
                if (fabsf(sc[j]) > amax) {
                    amax = fabsf(sc[j]);
                    max_sc = sc[j];
                }
            }
            memset(Ls, 0, sizeof Ls);
            if (max_sc != 0.0f) {
                const float is = -32.0f / max_sc;
                for (int j = 0; j < 16; j++) Ls[j] = (int8_t)(clampi((int8_t)round_int(is * sc[j]), -32, 31) + 32);
                d_block = 1.0f / is;
            }
        }
        /* the 6-bit scales (l + 32): low nibbles in scales[0..7], high pairs in scales[8..11] */
        memset(y[b].scales, 0, sizeof y[b].scales);
        for (int j = 0; j < 16; j++) {
            const int l = Ls[j];
            y[b].scales[j % 8] |= (uint8_t)((l & 15) << (j < 8 ? 0 : 4));
            y[b].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        y[b].d = f2h(d_block);
        for (int j = 0; j < 16; j++) {
            const float d = h2f(y[b].d) * (sa_q3k_scale(j, y[b].scales) - 32);
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        /* levels 4..7 set their bit in hmask and keep the low two bits in qs */
        uint8_t L2[QK_K];
        memset(y[b].hmask, 0, sizeof y[b].hmask);
        for (int e = 0; e < QK_K; e++) {
            int l = L[e];
            if (l > 3) {
                y[b].hmask[e % 32] |= (uint8_t)(1u << (e / 32));
                l -= 4;
            }
            L2[e] = (uint8_t)l;
        }
        pack_2bit(L2, y[b].qs);
    }
}

void sa_quantize_row_q3_K(const float *x, BlockQ3_K *y, int64_t n) { q3_K_rows(x, y, n, NULL); }

void sa_dequantize_q3_K(const void *src, float *dst, int64_t n) {
    const BlockQ3_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int e = 0; e < QK_K; e++) {
            const int lo = b[i].qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3;
            const int q = lo - (b[i].hmask[e % 32] >> (e / 32) & 1 ? 0 : 4);
            const float dl = d * (sa_q3k_scale(e / 16, b[i].scales) - 32);
            *dst++ = dl * q;
        }
    }
}

/* ---- IQ4_NL, IQ4_XS ---- */

const int8_t sa_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* The level nearest to v (the upper one on a tie; 15 for NaN), as ggml picks it. */
static int iq4_index(float v) {
    const int8_t *t = sa_iq4nl_values;
    if (v <= t[0]) return 0;
    if (v >= t[15]) return 15;
    int k = 1;
    while (k < 15 && !(v < t[k])) k++;
    return v - t[k - 1] < t[k] - v ? k - 1 : k;
}

/* The scale of one 32-weight group for the level table, weights wt (NULL: x^2, what
 * llama-quantize uses without an importance matrix): a first scale from the largest magnitude,
 * its least-squares refinement, then 15 inverse scales (v0 + k) / max for k = -7..7, keeping the
 * best weighted fit. 0 for an all-zero group. */
static float iq4_group_scale(const float *x, const float *wt) {
    float amax;
    const float mx = signed_absmax(x, 32, &amax);
    if (amax < ALL_ZERO_EPS) return 0.0f;
    const int v0 = sa_iq4nl_values[0];
    float id = 1.0f / (-mx / v0);
    float sqx = 0.0f, sq2 = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float q = sa_iq4nl_values[iq4_index(id * x[j])], w = wt ? wt[j] : x[j] * x[j];
        sqx += w * q * x[j];
        sq2 += w * q * q;
    }
    float d = sq2 > 0.0f ? sqx / sq2 : 0.0f;
    float best = d * sqx;
    for (int k = -7; k <= 7; k++) {
        id = (k + v0) / mx;
        sqx = sq2 = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float q = sa_iq4nl_values[iq4_index(id * x[j])], w = wt ? wt[j] : x[j] * x[j];
            sqx += w * q * x[j];
            sq2 += w * q * q;
        }
        if (sq2 > 0.0f && sqx * sqx > best * sq2) {
            d = sqx / sq2;
            best = d * sqx;
        }
    }
    return d;
}

/* 32 weights at inverse scale id into an IQ4_NL-layout 16 bytes */
static void iq4_pack(const float *x, float id, uint8_t qs[16]) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(iq4_index(id * x[j]) | iq4_index(id * x[j + 16]) << 4);
}

/* The importance weights of the 32-weight groups of an IQ4 super-block of sb weights: over twice
 * its mean square, as ggml's quantize_row_iq4_*_impl. */
static void iq4_weights(const float *x, const float *imx, int sb, float *w) {
    float sigma2 = 0.0f;
    for (int j = 0; j < sb; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.0f / sb;
    imatrix_weights(x, imx, sigma2, w, sb);
}

static void iq4_nl_rows(const float *x, BlockIQ4_NL *y, int64_t n, const float *imx) {
    float w[QK4_NL];
    for (int64_t b = 0; b < n / QK4_NL; b++, x += QK4_NL, imx = imx ? imx + QK4_NL : NULL) {
        if (imx) iq4_weights(x, imx, QK4_NL, w);
        const float d = iq4_group_scale(x, imx ? w : NULL);
        y[b].d = f2h(d);
        iq4_pack(x, d != 0.0f ? 1.0f / d : 0.0f, y[b].qs);
    }
}

void sa_quantize_row_iq4_nl(const float *x, BlockIQ4_NL *y, int64_t n) { iq4_nl_rows(x, y, n, NULL); }

void sa_dequantize_iq4_nl(const void *src, float *dst, int64_t n) {
    const BlockIQ4_NL *b = src;
    for (int64_t i = 0; i < n / QK4_NL; i++, dst += QK4_NL) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 16; j++) {
            dst[j] = d * sa_iq4nl_values[b[i].qs[j] & 15];
            dst[j + 16] = d * sa_iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

static void iq4_xs_rows(const float *x, BlockIQ4_XS *y, int64_t n, const float *imx) {
    float sc[8], w[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, imx = imx ? imx + QK_K : NULL) {
        if (imx) iq4_weights(x, imx, QK_K, w);
        float max_sc = 0.0f, amax = 0.0f;
        for (int j = 0; j < 8; j++) {
            sc[j] = iq4_group_scale(x + 32 * j, imx ? w + 32 * j : NULL);
            if (fabsf(sc[j]) > amax) {
                amax = fabsf(sc[j]);
                max_sc = sc[j];
            }
        }
        /* the sub-block scales to 6 signed bits; each sub-block re-rounded with its float scale
         * d * l (not the fp16 one stored), as ggml does. All-zero blocks store d = -0. */
        const float d = -max_sc / 32;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f2h(d);
        y[b].scales_h = 0;
        memset(y[b].scales_l, 0, sizeof y[b].scales_l);
        for (int j = 0; j < 8; j++) {
            const int l = clampi(round_int(id * sc[j]), -32, 31);
            const float dl = d * l;
            iq4_pack(x + 32 * j, dl != 0.0f ? 1.0f / dl : 0.0f, y[b].qs + 16 * j);
            y[b].scales_l[j / 2] |= (uint8_t)(((l + 32) & 15) << (4 * (j % 2)));
            y[b].scales_h |= (uint16_t)(((l + 32) >> 4) << (2 * j));
        }
    }
}

void sa_quantize_row_iq4_xs(const float *x, BlockIQ4_XS *y, int64_t n) { iq4_xs_rows(x, y, n, NULL); }

int sa_quantize_row_w(SaDtype t, const float *x, void *dst, int64_t n, const float *imx) {
    switch (t) {
    case SA_Q4_0: imx ? q4_0_imatrix(x, dst, n, imx) : sa_quantize_row_q4_0(x, dst, n); return 0;
    case SA_Q4_1: q4_1_rows(x, dst, n, imx); return 0;
    case SA_Q5_0: q5_0_rows(x, dst, n, imx); return 0;
    case SA_Q5_1: q5_1_rows(x, dst, n, imx); return 0;
    case SA_Q2_K: q2_K_rows(x, dst, n, imx); return 0;
    case SA_Q3_K: q3_K_rows(x, dst, n, imx); return 0;
    case SA_Q4_K: q4_K_rows(x, dst, n, imx); return 0;
    case SA_Q5_K: q5_K_rows(x, dst, n, imx); return 0;
    case SA_Q6_K: q6_K_rows(x, dst, n, imx); return 0;
    case SA_IQ4_NL: iq4_nl_rows(x, dst, n, imx); return 0;
    case SA_IQ4_XS: iq4_xs_rows(x, dst, n, imx); return 0;
    default: return -1;
    }
}

void sa_dequantize_iq4_xs(const void *src, float *dst, int64_t n) {
    const BlockIQ4_XS *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 8; j++, dst += 32) {
            const float dl = d * (sa_iq4xs_scale(j, &b[i]) - 32);
            const uint8_t *q = b[i].qs + 16 * j;
            for (int l = 0; l < 16; l++) {
                dst[l] = dl * sa_iq4nl_values[q[l] & 15];
                dst[l + 16] = dl * sa_iq4nl_values[q[l] >> 4];
            }
        }
    }
}
