/* quants.c - reference quantizers and dequantizers of the block types beyond Q8_0 / Q4_0.
 *
 * Each quantizer makes the same choices as ggml's quantize_row_*_ref (the quantizer
 * llama-quantize runs when it has no importance matrix): the same scale and minimum search,
 * the same rounding (round half to even through rintf, float arithmetic in the same order),
 * so a tensor requantized here can match llama-quantize's bytes. The block layouts are in
 * dtype.h. */
#include <float.h>
#include <math.h>

#include "common.h"
#include "dtype.h"

/* Groups whose largest magnitude is below this quantize to zero (ggml's threshold). */
#define ALL_ZERO_EPS 1e-15f

static inline int round_int(float v) { return (int)rintf(v); }
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

/* ---- 32-element block types ---- */

void sa_quantize_row_q4_1(const float *x, BlockQ4_1 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float lo, hi;
        block_min_max(x, 32, &lo, &hi);
        const float d = (hi - lo) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f2h(d);
        y[b].m = f2h(lo);
        for (int j = 0; j < 16; j++) {
            const int q0 = SA_MIN(15, (int8_t)((x[j] - lo) * id + 0.5f));
            const int q1 = SA_MIN(15, (int8_t)((x[j + 16] - lo) * id + 0.5f));
            y[b].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

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

static void put_qh(uint8_t qh[4], uint32_t bits) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(bits >> 8 * k);
}
static uint32_t get_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void sa_quantize_row_q5_0(const float *x, BlockQ5_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        const float mx = signed_absmax(x, 32, NULL);
        const float d = mx / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f2h(d);
        uint32_t hi = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = SA_MIN(31, (int8_t)(x[j] * id + 16.5f));
            const int q1 = SA_MIN(31, (int8_t)(x[j + 16] * id + 16.5f));
            y[b].qs[j] = (uint8_t)((q0 & 15) | (q1 & 15) << 4);
            hi |= (uint32_t)(q0 >> 4 & 1) << j | (uint32_t)(q1 >> 4 & 1) << (j + 16);
        }
        put_qh(y[b].qh, hi);
    }
}

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

void sa_quantize_row_q5_1(const float *x, BlockQ5_1 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float lo, hi_v;
        block_min_max(x, 32, &lo, &hi_v);
        const float d = (hi_v - lo) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = f2h(d);
        y[b].m = f2h(lo);
        uint32_t hi = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = (uint8_t)((x[j] - lo) * id + 0.5f);
            const int q1 = (uint8_t)((x[j + 16] - lo) * id + 0.5f);
            y[b].qs[j] = (uint8_t)((q0 & 15) | (q1 & 15) << 4);
            hi |= (uint32_t)(q0 >> 4 & 1) << j | (uint32_t)(q1 >> 4 & 1) << (j + 16);
        }
        put_qh(y[b].qh, hi);
    }
}

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
 * weighting each element by x^2: a first scale from the largest magnitude, its least-squares
 * refinement, then 18 nearby starting scales, keeping the best weighted fit. */
static float fit_signed_levels(int n, int nmax, const float *x, int8_t *L) {
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
        const float w = x[i] * x[i];
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
            const float w = x[i] * x[i];
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

/* Q4_K and Q5_K share everything but the level count and the search range. Each 32-weight
 * sub-block gets a scale and a min (weights sqrt(mean x^2) + |x|), both requantized to 6 bits
 * against the block's largest, then every weight is re-rounded with the stored scales. */
static void kq_scales_levels(const float *x, int nmax, float rmin, int nstep, uint16_t *dd, uint16_t *dmin,
                             uint8_t scales[12], uint8_t L[QK_K]) {
    float sc[8], mn[8], w[32];
    uint8_t aux[32];
    float max_sc = 0.0f, max_mn = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float s2 = 0.0f;
        for (int l = 0; l < 32; l++) s2 += xs[l] * xs[l];
        const float av = sqrtf(s2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
        sc[j] = fit_offset_levels(32, nmax, xs, w, L + 32 * j, &mn[j], aux, rmin, 0.1f, nstep, 0);
        if (sc[j] > max_sc) max_sc = sc[j];
        if (mn[j] > max_mn) max_mn = mn[j];
    }
    const float inv_sc = max_sc > 0.0f ? 63.0f / max_sc : 0.0f;
    const float inv_mn = max_mn > 0.0f ? 63.0f / max_mn : 0.0f;
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        const int ls = SA_MIN(63, (uint8_t)round_int(inv_sc * sc[j]));
        const int lm = SA_MIN(63, (uint8_t)round_int(inv_mn * mn[j]));
        if (j < 4) {
            scales[j] = (uint8_t)ls;
            scales[j + 4] = (uint8_t)lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dd = f2h(max_sc / 63.0f);
    *dmin = f2h(max_mn / 63.0f);
    for (int j = 0; j < 8; j++) {
        int s, m;
        sa_kq_scale_min(j, scales, &s, &m);
        const float d = h2f(*dd) * s;
        if (d == 0.0f) continue;
        const float dm = h2f(*dmin) * m;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(round_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

void sa_quantize_row_q4_K(const float *x, BlockQ4_K *y, int64_t n) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        kq_scales_levels(x, 15, -1.0f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

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

void sa_quantize_row_q5_K(const float *x, BlockQ5_K *y, int64_t n) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        kq_scales_levels(x, 31, -0.5f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
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

void sa_quantize_row_q6_K(const float *x, BlockQ6_K *y, int64_t n) {
    int8_t L[QK_K];
    float sc[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float max_sc = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_signed_levels(16, 32, x + 16 * j, L + 16 * j);
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
