/* llamacpp_compat.c - the verification mode of llamacpp_compat.h: llama.cpp's x86 AVX2 CPU
 * arithmetic (ggml-cpu of llama.cpp 80fb11a) redone in scalar C, operation for operation.
 * Each function names the ggml routine it follows. Every float operation here is written out:
 * no contraction (ISO C mode; the pragma for clang), explicit fmaf where ggml's compiled code
 * fuses. */
#include "llamacpp_compat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "common.h"
#include "dtype.h"
#include "matmul.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static inline float h2f(uint16_t h) { return sa_fp16_to_fp32(h); }
static inline uint16_t f2h(float f) { return sa_fp32_to_fp16(f); } /* round to nearest even, as F16C */

/* element e of a Q4_0 block: low nibbles are 0..15, high nibbles 16..31 */
static inline int q4_val(const BlockQ4_0 *b, int e) { return e < 16 ? (b->qs[e] & 15) - 8 : (b->qs[e - 16] >> 4) - 8; }

/* ---- the ops ---- */

/* ggml_compute_forward_rms_norm_f32 + ggml_compute_forward_mul */
static void rms_norm(float *y, const float *x, const float *w, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        const float p = x[i] * x[i];
        sum += (double)p;
    }
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) {
        const float t = x[i] * scale;
        y[i] = t * w[i];
    }
}

/* quantize_row_q8_0, x86 AVX2 path (127/amax, ties to even): the default mode's activation
 * quantizer is exactly this one (src/dtype.c) */
static void quantize_q8_0(const float *x, BlockQ8_0 *y, int n) { sa_quantize_act_q8_0(x, y, n); }

/* hsum_float_8 */
static float hsum8(const float *a) {
    float r[4];
    for (int i = 0; i < 4; i++) r[i] = a[i + 4] + a[i];
    const float r0 = r[0] + r[2], r1 = r[1] + r[3];
    return r0 + r1;
}

/* ggml_gemv_q4_0_8x8_q8_0 (AVX2): per row one FMA chain over the blocks of exact integer dots */
static float dot_q4_0_gemv(const SaMat *W, int r, const BlockQ8_0 *a) {
    float acc = 0.0f;
    for (int b = 0; b < W->cols / QK4_0; b++) {
        const BlockQ4_0 w = sa_mat_block_q4_0(W, r, b);
        int32_t s = 0;
        for (int e = 0; e < QK4_0; e++) s += q4_val(&w, e) * a[b].qs[e];
        acc = fmaf((float)s, h2f(w.d) * h2f(a[b].d), acc);
    }
    return acc;
}

/* ggml_vec_dot_q4_0_q8_0 / ggml_vec_dot_q8_0_q8_0 (AVX2): lane l holds elements 4l..4l+3 */
static float dot_q_vec(const SaMat *W, int r, const BlockQ8_0 *a) {
    float acc[8] = {0};
    for (int b = 0; b < W->cols / QK8_0; b++) {
        int32_t lane[8] = {0};
        float d;
        if (W->dtype == SA_Q4_0) {
            const BlockQ4_0 w = sa_mat_block_q4_0(W, r, b);
            for (int e = 0; e < QK4_0; e++) lane[e / 4] += q4_val(&w, e) * a[b].qs[e];
            d = h2f(w.d) * h2f(a[b].d);
        } else {
            const BlockQ8_0 w = sa_mat_block_q8_0(W, r, b);
            for (int e = 0; e < QK8_0; e++) lane[e / 4] += w.qs[e] * a[b].qs[e];
            d = h2f(w.d) * h2f(a[b].d);
        }
        for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    return hsum8(acc);
}

/* ggml_vec_dot_f16 / ggml_vec_dot_f32 (AVX): 4 vectors of 8 FMA lanes over 32-element steps,
 * GGML_F32x8_REDUCE, then the tail: f16 adds its products in double, f32 FMAs them into a float */
static float dot_float(int n, const float *w, const float *x, int f32) {
    const int np = n & ~31;
    float sum[4][8] = {{0}};
    for (int i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 8; l++) sum[j][l] = fmaf(w[i + 8 * j + l], x[i + 8 * j + l], sum[j][l]);
    for (int l = 0; l < 8; l++) {
        sum[0][l] += sum[2][l];
        sum[1][l] += sum[3][l];
    }
    for (int l = 0; l < 8; l++) sum[0][l] += sum[1][l];
    float t0[4];
    for (int l = 0; l < 4; l++) t0[l] = sum[0][l] + sum[0][l + 4];
    const float t10 = t0[0] + t0[1], t11 = t0[2] + t0[3];
    if (f32) {
        float s = t10 + t11;
        for (int i = np; i < n; i++) {
            const float p = w[i] * x[i];
            s += p;
        }
        return s;
    }
    double s = (double)(t10 + t11);
    for (int i = np; i < n; i++) {
        const float p = w[i] * x[i];
        s += (double)p;
    }
    return (float)s;
}

/* The weight types this mode reproduces (llama.cpp's AVX2 kernels for them are redone above). */
static const unsigned char reproduced[SA_DTYPE_COUNT] = {[SA_F32] = 1, [SA_F16] = 1, [SA_Q8_0] = 1, [SA_Q4_0] = 1};

/* y[rows] = W x, with the kernel llama.cpp picks for W on AVX2. wrow: scratch of W->cols floats,
 * xr: scratch of W->cols floats, xq: scratch of W->cols / 32 blocks. */
static void matvec(const SaMat *W, const float *x, float *y, float *wrow, float *xr, BlockQ8_0 *xq) {
    const int cols = W->cols;
    if (sa_dtype_tr(W->dtype)->vec_dot_type == SA_Q8_0) {
        quantize_q8_0(x, xq, cols);
        /* Q4_0 weights with rows % 8 == 0 are repacked by llama.cpp (CPU_REPACK buffer) */
        const int gemv = W->dtype == SA_Q4_0 && W->rows % 8 == 0;
        for (int r = 0; r < W->rows; r++) y[r] = gemv ? dot_q4_0_gemv(W, r, xq) : dot_q_vec(W, r, xq);
        return;
    }
    /* F16, F32 -> as f32 widening; F16 sees an f16-rounded activation */
    for (int i = 0; i < cols; i++) xr[i] = W->dtype == SA_F16 ? h2f(f2h(x[i])) : x[i];
    for (int r = 0; r < W->rows; r++) {
        sa_dequantize_row(W->dtype, (const uint8_t *)W->data + (size_t)r * W->row_bytes, wrow, cols);
        y[r] = dot_float(cols, wrow, xr, W->dtype == SA_F32);
    }
}

/* ggml_rope_cache_init + rotate_pairs (mode NORMAL: adjacent pairs; NEOX: i, i + n/2). The
 * rotation's products are contracted into FMAs by the compiler of ggml-cpu. */
static void rope(float *x, int n_head, int hd, int pos, float base, SaRopePairing pairing) {
    const float theta_scale = powf(base, -2.0f / hd);
    float theta = (float)pos;
    for (int i0 = 0; i0 < hd; i0 += 2) {
        const float c = cosf(theta), s = sinf(theta);
        theta *= theta_scale;
        const int a = pairing == SA_ROPE_ADJACENT ? i0 : i0 / 2, b = pairing == SA_ROPE_ADJACENT ? i0 + 1 : i0 / 2 + hd / 2;
        for (int h = 0; h < n_head; h++) {
            float *p = x + (size_t)h * hd;
            const float x0 = p[a], x1 = p[b];
            p[a] = fmaf(x0, c, -(x1 * s));
            p[b] = fmaf(x0, s, x1 * c);
        }
    }
}

/* ggml_compute_forward_flash_attn_ext_f16_one_chunk with an F16 cache: one query head over
 * positions 0..npos-1 (rows of K and V `stride` halves apart). */
static void flash_attn_head(int hd, const float *q, const uint16_t *K, const uint16_t *V, size_t stride, int npos,
                            float scale, float *qf, float *kf, uint16_t *vkq, float *out) {
    for (int i = 0; i < hd; i++) {
        qf[i] = h2f(f2h(q[i]));
        vkq[i] = 0;
    }
    float S = 0.0f, M = -INFINITY;
    for (int ic = 0; ic < npos; ic++) {
        const uint16_t *k = K + (size_t)ic * stride, *v = V + (size_t)ic * stride;
        for (int i = 0; i < hd; i++) kf[i] = h2f(k[i]);
        float s = dot_float(hd, kf, qf, 0); /* ggml_vec_dot_f16 on q rounded to f16 */
        s = s * scale;
        const float Mold = M;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            M = s;
            ms = expf(Mold - M);
            for (int i = 0; i < hd; i++) vkq[i] = f2h(h2f(vkq[i]) * ms); /* ggml_vec_scale_f16 */
        } else {
            vs = expf(s - M);
        }
        for (int i = 0; i < hd; i++) vkq[i] = f2h(fmaf(h2f(v[i]), vs, h2f(vkq[i]))); /* ggml_vec_mad_f16 */
        S = fmaf(S, ms, vs);
    }
    const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int i = 0; i < hd; i++) out[i] = h2f(vkq[i]) * S_inv;
}

/* ggml_v_expf (AVX2), one lane */
static inline float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float v_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = f_bits(z) << 23;
    const float k = bits_f(e + f_bits(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126)) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0;
    const float s1 = bits_f(g + 0x7f000000u), s2 = bits_f(e - g);
    if (fabsf(n) > 192) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

/* ggml_vec_swiglu_f32 (AVX2): vector silu for groups of 8, libm expf for the rest */
static void swiglu(int n, float *y, const float *x, const float *g) {
    int i = 0;
    for (; i + 7 < n; i += 8)
        for (int l = i; l < i + 8; l++) {
            const float e = v_expf(0.0f - x[l]);
            y[l] = (x[l] / (1.0f + e)) * g[l];
        }
    for (; i < n; i++) y[i] = (x[i] / (1.0f + expf(-x[i]))) * g[i];
}

/* ---- the model ---- */

int sa_llamacpp_compat_check(const SaModel *m, SaDtype kv_type) {
    const SaHparams *h = &m->hp;
    if (kv_type != SA_F16) return sa_err("--llamacpp-compat: needs the f16 KV cache (llama.cpp's default)");
    if (h->arch != SA_ARCH_LLAMA && h->arch != SA_ARCH_QWEN2)
        return sa_err("--llamacpp-compat: supports the llama and qwen2 architectures, not %s", sa_arch_name(h->arch));
    if (h->act != SA_ACT_SILU || h->post_norms || h->embd_scale != 0 || h->attn_softcap > 0 || h->final_softcap > 0 ||
        h->sliding_window > 0 || (h->query_scale > 0 && h->query_scale != 1.0f / sqrtf((float)h->head_dim)))
        return sa_err("--llamacpp-compat: this model uses features the mode does not reproduce");
    if (h->rope_scaling != SA_ROPE_SCALING_NONE) return sa_err("--llamacpp-compat: RoPE scaling is not reproduced");
    const SaMat *all[] = {&m->tok_embd, &m->output};
    for (size_t i = 0; i < SA_ARRAY_LEN(all); i++)
        if (!reproduced[all[i]->dtype])
            return sa_err("--llamacpp-compat: weights of type %s are not reproduced", sa_dtype_name(all[i]->dtype));
    for (int l = 0; l < h->n_layer; l++) {
        const SaLayer *L = &m->layers[l];
        const SaMat *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < SA_ARRAY_LEN(w); i++)
            if (!reproduced[w[i]->dtype])
                return sa_err("--llamacpp-compat: weights of type %s are not reproduced", sa_dtype_name(w[i]->dtype));
    }
    return 0;
}

int sa_llamacpp_forward(const SaModel *m, SaKv *kv, const int32_t *tokens, int T, int out_rows, float *logits) {
    const SaHparams *h = &m->hp;
    const int d = h->n_embd, hd = h->head_dim, qd = h->n_head * hd, kvd = h->n_head_kv * hd, ff = h->n_ff;
    const int group = h->n_head / h->n_head_kv;
    const int wide = SA_MAX(SA_MAX(d, qd), SA_MAX(ff, h->n_vocab));
    const float scale = 1.0f / sqrtf((float)hd);
    /* x, xb, q, k, v, att, hb, hb2, wrow, xr: `wide` floats each; qf, kf: hd floats; xq; vkq */
    float *buf = sa_malloc(((size_t)10 * wide + 2 * hd) * sizeof(float) + ((size_t)wide / QK8_0 + 1) * sizeof(BlockQ8_0) +
                           (size_t)hd * sizeof(uint16_t));
    if (!buf) return -1;
    float *x = buf, *xb = x + wide, *q = xb + wide, *k = q + wide, *v = k + wide, *att = v + wide, *hb = att + wide,
          *hb2 = hb + wide, *wrow = hb2 + wide, *xr = wrow + wide;
    float *qf = xr + wide, *kf = qf + hd;
    BlockQ8_0 *xq = (BlockQ8_0 *)(kf + hd);
    uint16_t *vkq = (uint16_t *)(xq + wide / QK8_0 + 1);

    for (int t = 0; t < T; t++) {
        const int pos = kv->n;
        sa_mat_row(&m->tok_embd, tokens[t], x); /* ggml get_rows: (q - 8) * d, exact either way */
        for (int l = 0; l < h->n_layer; l++) {
            const SaLayer *L = &m->layers[l];
            rms_norm(xb, x, L->attn_norm, d, h->norm_eps);
            matvec(&L->wq, xb, q, wrow, xr, xq);
            matvec(&L->wk, xb, k, wrow, xr, xq);
            matvec(&L->wv, xb, v, wrow, xr, xq);
            if (L->bq) {
                for (int i = 0; i < qd; i++) q[i] += L->bq[i];
                for (int i = 0; i < kvd; i++) k[i] += L->bk[i];
                for (int i = 0; i < kvd; i++) v[i] += L->bv[i];
            }
            rope(q, h->n_head, hd, pos, h->rope_theta, h->rope_pairing);
            rope(k, h->n_head_kv, hd, pos, h->rope_theta, h->rope_pairing);
            uint16_t *kc = sa_kv_k(kv, l, pos), *vc = sa_kv_v(kv, l, pos);
            for (int i = 0; i < kvd; i++) {
                kc[i] = f2h(k[i]);
                vc[i] = f2h(v[i]);
            }
            for (int hh = 0; hh < h->n_head; hh++) {
                const int g = hh / group;
                flash_attn_head(hd, q + hh * hd, (const uint16_t *)sa_kv_k(kv, l, 0) + (size_t)g * hd,
                                (const uint16_t *)sa_kv_v(kv, l, 0) + (size_t)g * hd, (size_t)kvd, pos + 1, scale, qf, kf, vkq,
                                att + hh * hd);
            }
            matvec(&L->wo, att, xb, wrow, xr, xq);
            for (int i = 0; i < d; i++) x[i] = xb[i] + x[i];
            rms_norm(xb, x, L->ffn_norm, d, h->norm_eps);
            matvec(&L->w_gate, xb, hb, wrow, xr, xq);
            matvec(&L->w_up, xb, hb2, wrow, xr, xq);
            swiglu(ff, hb, hb, hb2);
            matvec(&L->w_down, hb, xb, wrow, xr, xq);
            for (int i = 0; i < d; i++) x[i] = xb[i] + x[i];
        }
        kv->n = pos + 1;
        if (t >= T - out_rows) {
            rms_norm(xb, x, m->output_norm, d, h->norm_eps);
            matvec(&m->output, xb, logits + (size_t)(t - (T - out_rows)) * h->n_vocab, wrow, xr, xq);
        }
    }
    free(buf);
    return 0;
}
