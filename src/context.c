/* context.c - the transformer forward pass over a batch of tokens.
 *
 * Every architecture runs through this one function; the differences are data in SaHparams
 * (norm placement, activation, RoPE pairing and scaling, biases, soft-caps, sliding window).
 * Activations are kept as [T][dim] row-major so each matmul sees all T tokens at once. */
#include "context.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "common.h"
#include "llamacpp_compat.h"
#include "matmul.h"
#include "parallel.h"

struct SaCtx {
    const SaModel *m;
    SaCtxParams p;
    SaKv kv;
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;
    float *logits;
    int n_logits_out;
    int logits_pos0; /* cache position of the token whose logits are row 0 */
    void *scratch;
    float *inv_freq;          /* [head_dim/2] */
    float *rope_cos, *rope_sin; /* [n_batch][head_dim/2] */
    float *scores;            /* [n_threads][n_ctx] */
    int scores_threads;
    SaLogitsHook hook; /* tests only (context.h) */
    void *hook_ctx;
};

void sa_ctx_default_params(const SaModel *m, SaCtxParams *p) {
    int train = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 2048;
    p->n_ctx = SA_MIN(train, 4096);
    p->n_batch = 512;
    p->n_logits = 64;
    p->kv_type = SA_F16;
    const char *compat = getenv("SALIGN_LLAMACPP_COMPAT");
    p->llamacpp_compat = compat && *compat && strcmp(compat, "0") != 0;
    p->score = 0;
}

static size_t scratch_floats(const SaHparams *h, int B, int n_logits) {
    const size_t q_dim = (size_t)h->n_head * h->head_dim, kv_dim = (size_t)h->n_head_kv * h->head_dim;
    const size_t wide = SA_MAX(SA_MAX((size_t)h->n_embd, q_dim), (size_t)h->n_ff);
    return (size_t)B * (2 * h->n_embd + 2 * q_dim + 2 * kv_dim + 2 * wide) + (size_t)n_logits * h->n_vocab;
}

size_t sa_ctx_bytes(const SaModel *m, const SaCtxParams *p) {
    const SaHparams *h = &m->hp;
    size_t wide = SA_MAX(SA_MAX((size_t)h->n_embd, (size_t)h->n_head * h->head_dim), (size_t)h->n_ff);
    return sa_kv_bytes(h->n_layer, p->n_ctx, h->n_head_kv * h->head_dim, p->kv_type) +
           scratch_floats(h, p->n_batch, p->n_logits) * sizeof(float) +
           sa_matmul_scratch_bytes(p->n_batch, (int)wide);
}

/* RoPE inverse frequencies, including Llama 3's frequency-dependent scaling. */
static void rope_init(const SaHparams *h, float *inv_freq) {
    const int half = h->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float f = powf(h->rope_theta, -2.0f * i / h->head_dim);
        if (h->rope_scaling == SA_ROPE_SCALING_LINEAR) {
            f /= h->rope_factor;
        } else if (h->rope_scaling == SA_ROPE_SCALING_LLAMA3) {
            /* long wavelengths are divided by the factor, short ones kept, a smooth blend between */
            const float low = h->rope_low_freq_factor > 0 ? h->rope_low_freq_factor : 1.0f;
            const float high = h->rope_high_freq_factor > 0 ? h->rope_high_freq_factor : 4.0f;
            const float orig = h->rope_orig_ctx > 0 ? (float)h->rope_orig_ctx : 8192.0f;
            const float wavelen = 2.0f * (float)M_PI / f;
            const float low_wl = orig / low, high_wl = orig / high;
            if (wavelen > low_wl) {
                f /= h->rope_factor;
            } else if (wavelen >= high_wl) {
                const float smooth = (orig / wavelen - low) / (high - low);
                f = (1.0f - smooth) * f / h->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

SaCtx *sa_ctx_new(const SaModel *m, const SaCtxParams *pin) {
    SaCtxParams p;
    sa_ctx_default_params(m, &p);
    if (pin) {
        if (pin->n_ctx > 0) p.n_ctx = pin->n_ctx;
        if (pin->n_batch > 0) p.n_batch = pin->n_batch;
        if (pin->n_logits > 0) p.n_logits = pin->n_logits;
        p.kv_type = pin->kv_type;
        p.llamacpp_compat = pin->llamacpp_compat;
        p.score = pin->score;
    }
    if (p.n_ctx < 1 || p.n_ctx > (1 << 22)) {
        sa_err("context size %d is out of range", p.n_ctx);
        return NULL;
    }
    p.n_batch = SA_MIN(p.n_batch, p.n_ctx);
    p.n_logits = SA_MIN(p.n_logits, p.n_batch);
    const SaHparams *h = &m->hp;
    if (p.kv_type == SA_Q8_0 && (h->n_head_kv * h->head_dim) % QK8_0) {
        sa_err("--kv-type q8_0: this model's KV rows hold %d x %d = %d values, not a multiple of the Q8_0 block (%d); "
               "use --kv-type f16",
               h->n_head_kv, h->head_dim, h->n_head_kv * h->head_dim, QK8_0);
        return NULL;
    }
    if (h->score_head && !p.score) {
        sa_err("%s is a score model (a reward/cost head, no next-token logits): it scores answers "
               "(salign judge --judge-score) and cannot generate or be evaluated as a language model",
               m->file.path);
        return NULL;
    }
    if (p.score && !h->score_head) {
        sa_err("%s is a language model, not a score model: --judge-score needs a converted score checkpoint "
               "(LlamaForScore / LlamaModelForScore)",
               m->file.path);
        return NULL;
    }
    if (p.llamacpp_compat && h->score_head) {
        sa_err("SALIGN_LLAMACPP_COMPAT: llama.cpp has no score models to compare with");
        return NULL;
    }
    if (p.llamacpp_compat && sa_llamacpp_compat_check(m, p.kv_type)) return NULL;
    SaCtx *c = sa_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->m = m;
    c->p = p;
    if (sa_kv_init(&c->kv, h->n_layer, p.n_ctx, h->n_head_kv * h->head_dim, p.kv_type)) {
        free(c);
        return NULL;
    }
    const size_t B = (size_t)p.n_batch, q_dim = (size_t)h->n_head * h->head_dim,
                 kv_dim = (size_t)h->n_head_kv * h->head_dim;
    const size_t wide = SA_MAX(SA_MAX((size_t)h->n_embd, q_dim), (size_t)h->n_ff);
    float *f = sa_aligned_alloc(scratch_floats(h, p.n_batch, p.n_logits) * sizeof(float));
    c->scratch = sa_aligned_alloc(sa_matmul_scratch_bytes(p.n_batch, (int)wide));
    c->inv_freq = sa_malloc((size_t)h->head_dim / 2 * sizeof(float));
    c->rope_cos = sa_malloc(B * h->head_dim / 2 * sizeof(float));
    c->rope_sin = sa_malloc(B * h->head_dim / 2 * sizeof(float));
    if (!f || !c->scratch || !c->inv_freq || !c->rope_cos || !c->rope_sin) {
        free(f);
        c->x = NULL;
        sa_ctx_free(c);
        return NULL;
    }
    c->x = f;
    f += B * h->n_embd;
    c->xb = f;
    f += B * h->n_embd;
    c->q = f;
    f += B * q_dim;
    c->att = f;
    f += B * q_dim;
    c->k = f;
    f += B * kv_dim;
    c->v = f;
    f += B * kv_dim;
    c->hb = f;
    f += B * wide;
    c->hb2 = f;
    f += B * wide;
    c->logits = f;
    rope_init(h, c->inv_freq);
    return c;
}

void sa_ctx_free(SaCtx *c) {
    if (!c) return;
    sa_kv_free(&c->kv);
    free(c->x);
    free(c->scratch);
    free(c->inv_freq);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c->scores);
    free(c);
}

/* llama.cpp's order: each square rounded to float, summed in double (a product in double moved
 * ~1 in 100 Gemma 2 norms by a last bit against llama.cpp's, tests/test_archs.c) */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

static void rope_rotate(float *x, int hd, const float *cs, const float *sn, SaRopePairing pairing) {
    const int half = hd / 2;
    for (int i = 0; i < half; i++) {
        const int a = pairing == SA_ROPE_ADJACENT ? 2 * i : i;
        const int b = pairing == SA_ROPE_ADJACENT ? 2 * i + 1 : i + half;
        const float x0 = x[a], x1 = x[b];
        /* llama.cpp's rotate_pairs, as its compiler contracts it: one product rounded, one fused */
        x[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
        x[b] = fmaf(x0, sn[i], x1 * cs[i]);
    }
}

/* GELU, tanh form, as llama.cpp's CPU backend computes it for Gemma: the input rounded to f16,
 * the f16-rounded GELU of that value looked up in a table, inputs beyond +-10 cut to x or 0.
 * Within 2^-11 relative of the float formula, well inside the bf16 precision Gemma is trained
 * in; the exact float version gave Gemma files a logits NMSE of 1.1e-4..2.3e-4 against llama.cpp
 * on every quantized file type (the f16 rounding moves ~1% of the FFN activations to the other
 * side of an int8 rounding boundary, tests/test_archs.c), this one the same as Llama's. */
static float gelu_table[65536];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void) {
    for (uint32_t i = 0; i < 65536; i++) {
        const float x = sa_fp16_to_fp32((uint16_t)i);
        const float g = 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x)));
        gelu_table[i] = sa_fp16_to_fp32(sa_fp32_to_fp16(g));
    }
}

static inline float gelu_f16(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return gelu_table[sa_fp32_to_fp16(x)];
}

static int ensure_scores(SaCtx *c, int nth) {
    if (c->scores && c->scores_threads >= nth) return 0;
    free(c->scores);
    c->scores = sa_malloc((size_t)nth * c->p.n_ctx * sizeof(float));
    c->scores_threads = c->scores ? nth : 0;
    return c->scores ? 0 : -1;
}

/* ---- attention ---- */

typedef struct {
    SaCtx *c;
    int l, p0, window;
    float att_scale; /* 0: q already scaled */
} AttnJob;

/* One (token, head) of layer l: scores over the cached positions, softmax, weighted values.
 * With the f16 and q8_0 caches one kernel call scores all positions and one accumulates the
 * values (simd/): no function call and horizontal sum per position. `thread` picks the scores
 * row. In the q8_0 cache, KV head g starts at value g*hd of the row: block (g*hd)/32, value
 * (g*hd)%32 of it (0 unless hd is not a multiple of 32). */
static void attn_unit(void *ctx, int th, int thread) {
    const AttnJob *j = ctx;
    SaCtx *c = j->c;
    const SaHparams *h = &c->m->hp;
    const SaKernels *k = sa_k;
    const int hd = h->head_dim, q_dim = h->n_head * hd, kv_dim = h->n_head_kv * hd, group = h->n_head / h->n_head_kv;
    const int t = th / h->n_head, hh = th % h->n_head, g = hh / group;
    const int npos = j->p0 + t + 1;
    const int start = j->window ? SA_MAX(0, npos - j->window) : 0, n = npos - start;
    float *s = c->scores + (size_t)thread * c->p.n_ctx + start;
    const float *qh = c->q + (size_t)t * q_dim + hh * hd;
    const SaDtype kvt = c->kv.dtype;
    const size_t qb = (size_t)g * hd / QK8_0, qstride = (size_t)kv_dim / QK8_0;
    const int qoff = g * hd % QK8_0;
    if (kvt == SA_F16) {
        k->attn_scores_f16(hd, n, (const uint16_t *)sa_kv_k(&c->kv, j->l, start) + (size_t)g * hd, (size_t)kv_dim, qh, s);
    } else if (kvt == SA_Q8_0) {
        k->attn_scores_q8_0(hd, n, (const BlockQ8_0 *)sa_kv_k(&c->kv, j->l, start) + qb, qstride, qoff, qh, s);
    } else {
        for (int i = 0; i < n; i++) s[i] = k->dot_f32(hd, (const float *)sa_kv_k(&c->kv, j->l, start + i) + (size_t)g * hd, qh);
    }
    /* The scaling, the max and the normalisation run as SIMD loops (omp simd: a scalar loop
     * with a compare and branch per score was 3.4% of a 2-thread 1B prefill; perf). The max
     * does not depend on the order, and each score is scaled alone, so results are unchanged. */
    float mx = -INFINITY;
    if (h->attn_softcap > 0) {
        for (int i = 0; i < n; i++) {
            float sc = j->att_scale ? s[i] * j->att_scale : s[i];
            /* llama.cpp's order: times 1/cap (a float), tanh, times cap */
            sc = h->attn_softcap * tanhf(sc * (1.0f / h->attn_softcap));
            s[i] = sc;
            mx = sc > mx ? sc : mx;
        }
    } else if (j->att_scale) {
        const float a = j->att_scale;
#pragma omp simd reduction(max : mx)
        for (int i = 0; i < n; i++) {
            s[i] *= a;
            mx = s[i] > mx ? s[i] : mx;
        }
    } else {
#pragma omp simd reduction(max : mx)
        for (int i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
    }
    const float inv = 1.0f / k->exp_sub_sum(n, s, mx);
#pragma omp simd
    for (int i = 0; i < n; i++) s[i] *= inv;
    float *out = c->att + (size_t)t * q_dim + hh * hd;
    memset(out, 0, (size_t)hd * sizeof(float));
    if (kvt == SA_F16) {
        k->attn_values_f16(hd, n, (const uint16_t *)sa_kv_v(&c->kv, j->l, start) + (size_t)g * hd, (size_t)kv_dim, s, out);
    } else if (kvt == SA_Q8_0) {
        k->attn_values_q8_0(hd, n, (const BlockQ8_0 *)sa_kv_v(&c->kv, j->l, start) + qb, qstride, qoff, s, out);
    } else {
        for (int i = 0; i < n; i++) k->axpy_f32(hd, s[i], (const float *)sa_kv_v(&c->kv, j->l, start + i) + (size_t)g * hd, out);
    }
}

/* ---- the per-token steps between the matmuls ----
 * Norms, rotary embedding, KV append, residual adds and the FFN activation act on one token's row
 * at a time, so a batch splits them over threads by token with every value computed exactly as on
 * one thread. Run on the calling thread alone they were ~12% of a 512-token prefill of the 1B
 * model with 2 threads (perf: rmsnorm, rope, silu_mul and the residual adds on the main thread
 * while the other waited). The activation is split into chunks at multiples of 64 elements, so
 * each kernel's vector steps (8 or 16 wide) and its tail fall where they do for the whole array. */
typedef enum { TOK_ATTN_NORM, TOK_QKV, TOK_ATTN_RES, TOK_ACT, TOK_FFN_RES } TokStage;

typedef struct {
    SaCtx *c;
    const SaLayer *L, *next; /* next: the following layer (its attention norm is fused into TOK_FFN_RES) */
    TokStage stage;
    int l, p0, T, q_prescaled;
    float att_scale;
} TokJob;

static void tok_unit(void *ctx, int u, int thread) {
    (void)thread;
    const TokJob *j = ctx;
    SaCtx *c = j->c;
    const SaHparams *h = &c->m->hp;
    const SaLayer *L = j->L;
    const int d = h->n_embd, hd = h->head_dim, half = hd / 2;
    const int q_dim = h->n_head * hd, kv_dim = h->n_head_kv * hd;
    float *xt = c->x + (size_t)u * d, *ot = c->xb + (size_t)u * d;
    switch (j->stage) {
    case TOK_ATTN_NORM:
        rmsnorm(ot, xt, L->attn_norm, d, h->norm_eps);
        break;
    case TOK_QKV: {
        const SaKernels *k = sa_k;
        float *qt = c->q + (size_t)u * q_dim, *kt = c->k + (size_t)u * kv_dim, *vt = c->v + (size_t)u * kv_dim;
        if (L->bq) {
            for (int i = 0; i < q_dim; i++) qt[i] += L->bq[i];
            for (int i = 0; i < kv_dim; i++) kt[i] += L->bk[i];
            for (int i = 0; i < kv_dim; i++) vt[i] += L->bv[i];
        }
        const float *cs = c->rope_cos + (size_t)u * half, *sn = c->rope_sin + (size_t)u * half;
        for (int hh = 0; hh < h->n_head; hh++) rope_rotate(qt + hh * hd, hd, cs, sn, h->rope_pairing);
        if (j->q_prescaled)
            for (int i = 0; i < q_dim; i++) qt[i] *= j->att_scale;
        for (int hh = 0; hh < h->n_head_kv; hh++) rope_rotate(kt + hh * hd, hd, cs, sn, h->rope_pairing);
        /* append to the cache, converted to its type (f16, q8_0 or f32) */
        k->type[c->kv.dtype].from_float(kt, sa_kv_k(&c->kv, j->l, j->p0 + u), kv_dim);
        k->type[c->kv.dtype].from_float(vt, sa_kv_v(&c->kv, j->l, j->p0 + u), kv_dim);
        break;
    }
    case TOK_ATTN_RES:
        if (L->post_attn_norm) rmsnorm(ot, ot, L->post_attn_norm, d, h->norm_eps);
        for (int i = 0; i < d; i++) xt[i] += ot[i];
        rmsnorm(ot, xt, L->ffn_norm, d, h->norm_eps);
        break;
    case TOK_ACT: {
        const size_t i0 = (size_t)u * SA_TOK_ACT_CHUNK, n = SA_MIN(SA_TOK_ACT_CHUNK, (size_t)j->T * h->n_ff - i0);
        if (h->act == SA_ACT_SILU) {
            sa_k->silu_mul((int)n, c->hb + i0, c->hb2 + i0); /* simd/: vectorized exp */
        } else {
            for (size_t i = i0; i < i0 + n; i++) c->hb[i] = gelu_f16(c->hb[i]) * c->hb2[i];
        }
        break;
    }
    case TOK_FFN_RES:
        if (L->post_ffn_norm) rmsnorm(ot, ot, L->post_ffn_norm, d, h->norm_eps);
        for (int i = 0; i < d; i++) xt[i] += ot[i];
        if (j->next) rmsnorm(ot, xt, j->next->attn_norm, d, h->norm_eps);
        break;
    }
}

/* SA_TOK_PAR_MIN_WORK (context.h): below it waking the pool costs more than the step (decode's
 * 2048-wide norm takes about a microsecond). */
static void tok_step(TokJob *j, TokStage stage, size_t row_elems) {
    j->stage = stage;
    const int units = stage == TOK_ACT ? (int)(((size_t)j->T * row_elems + SA_TOK_ACT_CHUNK - 1) / SA_TOK_ACT_CHUNK) : j->T;
    sa_parallel((size_t)j->T * row_elems >= SA_TOK_PAR_MIN_WORK ? sa_get_threads() : 1, units, tok_unit, j);
}

/* One forward pass of T <= n_batch tokens at positions p0..p0+T-1. out_rows: how many of the
 * last rows get logits (1 or T). */
static int forward(SaCtx *c, const int32_t *tokens, int T, int out_rows) {
    const SaModel *m = c->m;
    const SaHparams *h = &m->hp;
    const int d = h->n_embd, hd = h->head_dim, half = hd / 2;
    const int q_dim = h->n_head * hd, kv_dim = h->n_head_kv * hd, ff = h->n_ff;
    const int p0 = c->kv.n;
    const float att_scale = h->query_scale > 0 ? h->query_scale : 1.0f / sqrtf((float)hd);
    /* Where the attention scale goes, as llama.cpp does it (the GGUF file-type tests compare
     * with it to the last bit where they can): Gemma's graphs multiply the rotated q by it before
     * the q.k products, the others multiply each product. The two round differently in the last
     * bit, and such a difference, when it moves an activation across an int8 rounding boundary of
     * a quantized matmul, grows to a logits NMSE ~1e-4 (tests/test_archs.c). */
    const int q_prescaled = h->arch == SA_ARCH_GEMMA || h->arch == SA_ARCH_GEMMA2;
    const int nth = sa_get_threads(); /* rows of c->scores: one per sa_parallel thread */
    if (ensure_scores(c, nth)) return -1;

    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= h->n_vocab) return sa_err("token id %d is outside the vocabulary (%d)", tokens[t], h->n_vocab);
    }
    if (c->p.llamacpp_compat) { /* verification mode: llama.cpp's arithmetic (src/llamacpp_compat.h) */
        if (sa_llamacpp_forward(m, &c->kv, tokens, T, out_rows, c->logits)) return -1;
        c->n_logits_out = out_rows;
        c->logits_pos0 = c->kv.n - out_rows;
        return 0;
    }
    /* embeddings */
    for (int t = 0; t < T; t++) {
        float *xt = c->x + (size_t)t * d;
        sa_mat_row(&m->tok_embd, tokens[t], xt); /* rows may be repacked (src/repack.h) */
        if (h->embd_scale != 0)
            for (int i = 0; i < d; i++) xt[i] *= h->embd_scale;
    }
    /* rotation angles for this batch's positions */
    for (int t = 0; t < T; t++) {
        /* Unscaled RoPE as llama.cpp's ggml_rope_cache_init: the angle of pair i is the position
         * times theta^(-2/hd), multiplied in i times (its rounding differs from pos * theta^(-2i/hd)
         * in the last bits, which the file-type tests against llama.cpp amplify, tests/test_archs.c) */
        const float step = powf(h->rope_theta, -2.0f / hd);
        float a = (float)(p0 + t);
        for (int i = 0; i < half; i++) {
            if (h->rope_scaling != SA_ROPE_SCALING_NONE) a = (float)(p0 + t) * c->inv_freq[i];
            c->rope_cos[t * half + i] = cosf(a);
            c->rope_sin[t * half + i] = sinf(a);
            a *= step;
        }
    }

    TokJob tj = {.c = c, .p0 = p0, .T = T, .q_prescaled = q_prescaled, .att_scale = att_scale};
    tj.L = &m->layers[0];
    tok_step(&tj, TOK_ATTN_NORM, d); /* later layers' attention norms run in the step before them */
    for (int l = 0; l < h->n_layer; l++) {
        const SaLayer *L = &m->layers[l];
        tj.L = L;
        tj.l = l;
        tj.next = l + 1 < h->n_layer ? &m->layers[l + 1] : NULL;
        sa_matmul(&L->wq, c->xb, T, c->q, q_dim, c->scratch);
        sa_matmul(&L->wk, c->xb, T, c->k, kv_dim, c->scratch);
        sa_matmul(&L->wv, c->xb, T, c->v, kv_dim, c->scratch);
        tok_step(&tj, TOK_QKV, q_dim);
        /* attention: each (token, head) is independent (attn_unit) */
        AttnJob aj = {.c = c, .l = l, .p0 = p0, .att_scale = q_prescaled ? 0.0f : att_scale,
                      .window = (h->sliding_window > 0 && l % 2 == 0) ? h->sliding_window : 0};
        const size_t att_work = (size_t)T * h->n_head * (size_t)(p0 + T) * hd;
        sa_parallel(att_work >= (1u << 16) ? sa_get_threads() : 1, T * h->n_head, attn_unit, &aj);
        sa_matmul(&L->wo, c->att, T, c->xb, d, c->scratch);
        tok_step(&tj, TOK_ATTN_RES, d); /* residual, then the feed-forward norm */
        /* feed-forward */
        sa_matmul(&L->w_gate, c->xb, T, c->hb, ff, c->scratch);
        sa_matmul(&L->w_up, c->xb, T, c->hb2, ff, c->scratch);
        if (h->act != SA_ACT_SILU) pthread_once(&gelu_once, gelu_table_init);
        tok_step(&tj, TOK_ACT, ff);
        sa_matmul(&L->w_down, c->hb, T, c->xb, d, c->scratch);
        tok_step(&tj, TOK_FFN_RES, d); /* residual, then the next layer's attention norm */
    }
    c->kv.n = p0 + T;

    /* logits (a score model: scores) of the last out_rows tokens */
    const int first = T - out_rows;
    for (int t = first; t < T; t++) rmsnorm(c->xb + (size_t)(t - first) * d, c->x + (size_t)t * d, m->output_norm, d, h->norm_eps);
    if (h->score_head) {
        sa_matmul(&m->score, c->xb, out_rows, c->logits, 1, c->scratch); /* one value per row */
        if (m->score_bias)
            for (int t = 0; t < out_rows; t++) c->logits[t] += m->score_bias[0];
        c->n_logits_out = out_rows;
        c->logits_pos0 = c->kv.n - out_rows;
        return 0;
    }
    sa_matmul(&m->output, c->xb, out_rows, c->logits, h->n_vocab, c->scratch);
    if (h->final_softcap > 0) {
        for (size_t i = 0; i < (size_t)out_rows * h->n_vocab; i++)
            c->logits[i] = h->final_softcap * tanhf(c->logits[i] * (1.0f / h->final_softcap));
    }
    c->n_logits_out = out_rows;
    c->logits_pos0 = c->kv.n - out_rows;
    return 0;
}

int sa_ctx_eval(SaCtx *c, const int32_t *tokens, int n, int all_logits) {
    if (n <= 0) return sa_err("nothing to evaluate");
    if (c->kv.n + n > c->p.n_ctx)
        return sa_err("context full: %d positions used + %d new tokens > context size %d (use -c to enlarge it)", c->kv.n, n,
                      c->p.n_ctx);
    if (all_logits && n > c->p.n_logits)
        return sa_err("%d tokens with all logits exceeds the context's n_logits %d", n, c->p.n_logits);
    const int start = c->kv.n;
    for (int i = 0; i < n; i += c->p.n_batch) {
        const int T = SA_MIN(c->p.n_batch, n - i);
        const int last = i + T == n;
        if (forward(c, tokens + i, T, all_logits ? T : 1) != 0) {
            c->kv.n = start; /* leave the cache as it was */
            return -1;
        }
        (void)last;
        memcpy(c->kv.tokens + c->kv.n - T, tokens + i, (size_t)T * sizeof(int32_t));
        for (int r = 0; c->hook && r < c->n_logits_out; r++)
            c->hook(c->hook_ctx, c->kv.tokens, c->logits_pos0 + r + 1, c->logits + (size_t)r * c->m->hp.n_vocab,
                    c->m->hp.n_vocab);
    }
    c->kv.n_evaluated += (uint64_t)n;
    return 0;
}

const float *sa_ctx_logits(const SaCtx *c, int i) {
    if (i < 0) i = c->n_logits_out - 1;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}

int sa_ctx_n_logits(const SaCtx *c) { return c->n_logits_out; }

float sa_ctx_score(const SaCtx *c, int i) {
    if (i < 0) i = c->n_logits_out - 1;
    return c->logits[i];
}

int sa_ctx_prompt(SaCtx *c, const int32_t *tokens, int n) {
    if (n <= 0) return sa_err("empty prompt");
    int common = 0;
    while (common < c->kv.n && common < n && c->kv.tokens[common] == tokens[common]) common++;
    /* the logits of the last token are needed, so at least one token is always evaluated */
    if (common == n) common = n - 1;
    sa_kv_truncate(&c->kv, common);
    c->kv.n_reused += (uint64_t)common;
    return sa_ctx_eval(c, tokens + common, n - common, 0);
}

int sa_ctx_pos(const SaCtx *c) { return c->kv.n; }
int sa_ctx_n_ctx(const SaCtx *c) { return c->p.n_ctx; }
/* After a rollback into the rows of the last all-logits eval (speculative verification), the last
 * row that still belongs to a cached token becomes the current one, so sa_ctx_logits(c, -1) always
 * gives the next-token logits of the cache's last token when it can. */
void sa_ctx_truncate(SaCtx *c, int pos) {
    sa_kv_truncate(&c->kv, pos);
    const int rows = c->kv.n - c->logits_pos0;
    if (rows >= 1 && rows < c->n_logits_out) c->n_logits_out = rows;
}
const SaKv *sa_ctx_kv(const SaCtx *c) { return &c->kv; }
void sa_ctx_set_logits_hook(SaCtx *c, SaLogitsHook fn, void *ctx) {
    c->hook = fn;
    c->hook_ctx = ctx;
}
const SaModel *sa_ctx_model(const SaCtx *c) { return c->m; }
