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

void sa_quantize_row_q8_1(const float *x, BlockQ8_1 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = (int8_t)roundf(x[j] * id);
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

void sa_quantize_row_q2_K(const float *x, BlockQ2_K *y, int64_t n) {
    uint8_t L[QK_K], aux[16];
    float sc[16], mn[16], w[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float max_sc = 0.0f, max_mn = 0.0f;
        /* each 16-weight sub-block: scale and min fitted to levels 0..3, weights |x|, absolute error */
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            sc[j] = fit_offset_levels(16, 3, x + 16 * j, w, L + 16 * j, &mn[j], aux, -0.5f, 0.1f, 15, 1);
            if (sc[j] > max_sc) max_sc = sc[j];
            if (mn[j] > max_mn) max_mn = mn[j];
        }
        /* both to 4 bits against the block's largest (the int -> byte conversions keep the low
         * bits, as ggml's stores do) */
        if (max_sc > 0.0f) {
            const float is = 15.0f / max_sc;
            for (int j = 0; j < 16; j++) y[b].scales[j] = (uint8_t)round_int(is * sc[j]);
            y[b].d = f2h(max_sc / 15.0f);
        } else {
            memset(y[b].scales, 0, sizeof y[b].scales);
            y[b].d = f2h(0.0f);
        }
        if (max_mn > 0.0f) {
            const float is = 15.0f / max_mn;
            for (int j = 0; j < 16; j++) y[b].scales[j] = (uint8_t)(y[b].scales[j] | (unsigned)round_int(is * mn[j]) << 4);
            y[b].dmin = f2h(max_mn / 15.0f);
        } else {
            y[b].dmin = f2h(0.0f);
        }
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

void sa_quantize_row_q3_K(const float *x, BlockQ3_K *y, int64_t n) {
    int8_t L[QK_K];
    float sc[16];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float max_sc = 0.0f, amax = 0.0f;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_signed_levels_greedy(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(sc[j]) > amax) {
                amax = fabsf(sc[j]);
                max_sc = sc[j];
            }
        }
        /* the 16 scales to 6 signed bits against the one of largest magnitude */
        memset(y[b].scales, 0, sizeof y[b].scales);
        if (max_sc != 0.0f) {
            const float is = -32.0f / max_sc;
            for (int j = 0; j < 16; j++) {
                const int l = clampi((int8_t)round_int(is * sc[j]), -32, 31) + 32;
                y[b].scales[j % 8] |= (uint8_t)((l & 15) << (j < 8 ? 0 : 4));
                y[b].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[b].d = f2h(1.0f / is);
        } else {
            y[b].d = f2h(0.0f);
        }
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

/* The scale of one 32-weight group for the level table, weights x^2: a first scale from the
 * largest magnitude, its least-squares refinement, then 15 inverse scales (v0 + k) / max for
 * k = -7..7, keeping the best weighted fit. 0 for an all-zero group. */
static float iq4_group_scale(const float *x) {
    float amax;
    const float mx = signed_absmax(x, 32, &amax);
    if (amax < ALL_ZERO_EPS) return 0.0f;
    const int v0 = sa_iq4nl_values[0];
    float id = 1.0f / (-mx / v0);
    float sqx = 0.0f, sq2 = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float q = sa_iq4nl_values[iq4_index(id * x[j])], w = x[j] * x[j];
        sqx += w * q * x[j];
        sq2 += w * q * q;
    }
    float d = sq2 > 0.0f ? sqx / sq2 : 0.0f;
    float best = d * sqx;
    for (int k = -7; k <= 7; k++) {
        id = (k + v0) / mx;
        sqx = sq2 = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float q = sa_iq4nl_values[iq4_index(id * x[j])], w = x[j] * x[j];
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

void sa_quantize_row_iq4_nl(const float *x, BlockIQ4_NL *y, int64_t n) {
    for (int64_t b = 0; b < n / QK4_NL; b++, x += QK4_NL) {
        const float d = iq4_group_scale(x);
        y[b].d = f2h(d);
        iq4_pack(x, d != 0.0f ? 1.0f / d : 0.0f, y[b].qs);
    }
}

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

void sa_quantize_row_iq4_xs(const float *x, BlockIQ4_XS *y, int64_t n) {
    float sc[8];
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float max_sc = 0.0f, amax = 0.0f;
        for (int j = 0; j < 8; j++) {
            sc[j] = iq4_group_scale(x + 32 * j);
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
