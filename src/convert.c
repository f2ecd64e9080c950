/* convert.c - the conversion driver: validate a model source, choose the output dtype of
 * each tensor, convert row by row and stream the tensors into a .salm file.
 *
 * Only one tensor's output is in memory at a time (the .salm writer asks for tensors one by
 * one through fill()); the source bytes stay in the importer's mapping. */
#include "convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "quants_imatrix.h"
#include "salm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char *conv_type_names[SA_CONV_TYPE_COUNT] = {
    "f32",    "f16",    "q8_0",   "q4_0",   "keep",   "q4_1",   "q5_0",   "q5_1",   "q2_k",   "q3_k_s",
    "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k",   "iq4_nl", "iq4_xs"};

int sa_conv_type_from_name(const char *name) {
    for (int i = 0; i < SA_CONV_TYPE_COUNT; i++)
        if (strcasecmp(conv_type_names[i], name) == 0) return i;
    return -1;
}

const char *sa_conv_type_name(SaConvType t) {
    return (unsigned)t < SA_CONV_TYPE_COUNT ? conv_type_names[t] : "?";
}

/* The llama.cpp file type behind a quantized SaConvType, or -1 (f32, f16, keep). */
static int file_type_of(SaConvType t) {
    return t == SA_CONV_F32 || t == SA_CONV_F16 || t == SA_CONV_KEEP ? -1 : sa_file_type_find(sa_conv_type_name(t));
}

/* The SaDtype of a ggml type if this build can write it, else -1. */
static int writable(int ggml_type) {
    const int d = sa_dtype_from_ggml((uint32_t)ggml_type);
    return d >= 0 && (sa_dtype_traits[d].flags & SA_DT_WEIGHT) && sa_dtype_traits[d].from_float ? d : -1;
}

int sa_conv_type_available(SaConvType t) {
    const int ft = file_type_of(t);
    if (ft < 0) return (unsigned)t < SA_CONV_TYPE_COUNT;
    /* every type a rule or fallback of this file type can lead to */
    static const int ladder[][4] = {
        {SA_GG_Q2_K, SA_GG_Q3_K, SA_GG_Q4_K, SA_GG_Q4_0}, {SA_GG_Q3_K, SA_GG_Q4_K, SA_GG_Q5_K, SA_GG_Q4_0},
        {SA_GG_Q4_K, SA_GG_Q5_K, SA_GG_Q6_K, SA_GG_Q5_0}, {SA_GG_Q5_K, SA_GG_Q6_K, SA_GG_Q5_1, SA_GG_Q8_0},
        {SA_GG_Q6_K, SA_GG_Q8_0, SA_GG_Q8_0, SA_GG_Q8_0}, {SA_GG_IQ4_XS, SA_GG_IQ4_NL, SA_GG_Q5_K, SA_GG_Q6_K},
        {SA_GG_IQ4_NL, SA_GG_Q5_K, SA_GG_Q6_K, SA_GG_Q8_0},
    };
    const int def = sa_file_type(ft)->default_type;
    if (writable(def) < 0 || writable(SA_GG_Q6_K) < 0 || writable(SA_GG_Q8_0) < 0) return 0;
    for (size_t r = 0; r < SA_ARRAY_LEN(ladder); r++)
        if (ladder[r][0] == def)
            for (int k = 0; k < 4; k++)
                if (writable(ladder[r][k]) < 0) return 0;
    return 1;
}

/* ---- the model source ---- */

static uint64_t n_elements(const int64_t *ne) {
    return (uint64_t)ne[0] * (uint64_t)ne[1] * (uint64_t)ne[2] * (uint64_t)ne[3];
}

SaConvTensor *sa_conv_add(SaConvSource *src, const char *name, SaDtype dtype, int n_dims, const int64_t *ne,
                          const void *data, uint64_t nbytes) {
    if (n_dims < 1 || n_dims > 4) {
        sa_err("%s: tensor %s: %d dimensions", src->path, name, n_dims);
        return NULL;
    }
    int64_t full[4] = {1, 1, 1, 1};
    uint64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || !sa_mul_ok(nel, (uint64_t)ne[d], &nel) || nel > (uint64_t)INT64_MAX) {
            sa_err("%s: tensor %s: bad shape", src->path, name);
            return NULL;
        }
        full[d] = ne[d];
    }
    /* Plain tensors must hold exactly what their shape says; importers pass the size they
     * validated against the file, so a mismatch here is an importer bug caught early. */
    size_t rb = sa_row_bytes(dtype, full[0]);
    uint64_t need;
    if (!rb || !sa_mul_ok(rb, nel / (uint64_t)full[0], &need)) {
        sa_err("%s: tensor %s: row length %lld does not fit %s blocks", src->path, name, (long long)full[0],
               sa_dtype_name(dtype));
        return NULL;
    }
    if (data && need != nbytes) {
        sa_err("%s: tensor %s: %llu bytes, its shape needs %llu", src->path, name, (unsigned long long)nbytes,
               (unsigned long long)need);
        return NULL;
    }
    if (src->n_tensors == src->cap_tensors) {
        int cap = src->cap_tensors ? src->cap_tensors * 2 : 64;
        SaConvTensor *p = sa_realloc(src->tensors, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        src->tensors = p;
        src->cap_tensors = cap;
    }
    SaConvTensor *t = &src->tensors[src->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = sa_strdup(name);
    if (!t->name) return NULL;
    t->dtype = dtype;
    t->n_dims = n_dims;
    memcpy(t->ne, full, sizeof full);
    t->data = data;
    t->nbytes = nbytes;
    src->n_tensors++;
    return t;
}

const SaConvTensor *sa_conv_find(const SaConvSource *src, const char *name) {
    for (int i = 0; i < src->n_tensors; i++)
        if (strcmp(src->tensors[i].name, name) == 0) return &src->tensors[i];
    return NULL;
}

void sa_conv_free(SaConvSource *src) {
    if (!src) return;
    for (int i = 0; i < src->n_tensors; i++) free(src->tensors[i].name);
    free(src->tensors);
    sa_tok_spec_free(&src->tok);
    free(src->chat_template);
    free(src->aligner_template);
    if (src->owner_free) src->owner_free(src->owner);
    free(src->path);
    memset(src, 0, sizeof *src);
}

/* ---- shape check ---- */

typedef struct {
    char name[64];
    int64_t ne0, ne1; /* ne1 = 0: a vector */
    int required;
} Expect;

static int push_expect(Expect **e, int *n, int *cap, const char *name, int64_t ne0, int64_t ne1, int required) {
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 64;
        Expect *p = sa_realloc(*e, (size_t)c * sizeof *p);
        if (!p) return -1;
        *e = p;
        *cap = c;
    }
    Expect *x = &(*e)[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ne0 = ne0;
    x->ne1 = ne1;
    x->required = required;
    return 0;
}

/* The tensors a model of these hyperparameters has, with their shapes. */
static int expected_tensors(const SaHparams *h, Expect **out, int *n_out) {
    Expect *e = NULL;
    int n = 0, cap = 0;
    const int64_t E = h->n_embd, V = h->n_vocab, F = h->n_ff;
    const int64_t Q = (int64_t)h->n_head * h->head_dim, KV = (int64_t)h->n_head_kv * h->head_dim;
    int rc = 0;
    rc |= push_expect(&e, &n, &cap, "token_embd.weight", E, V, 1);
    rc |= push_expect(&e, &n, &cap, "output_norm.weight", E, 0, 1);
    if (h->score_head) { /* one row instead of the output matrix */
        rc |= push_expect(&e, &n, &cap, "score.weight", E, 1, 1);
        if (h->score_bias) rc |= push_expect(&e, &n, &cap, "score.bias", 1, 0, 1);
    } else if (!h->tied_output) {
        rc |= push_expect(&e, &n, &cap, "output.weight", E, V, 1);
    }
    for (int l = 0; l < h->n_layer && !rc; l++) {
        char b[64];
#define L(suffix, a, c)                                                  \
    snprintf(b, sizeof b, "blk.%d." suffix, l);                          \
    rc |= push_expect(&e, &n, &cap, b, a, c, 1)
        L("attn_norm.weight", E, 0);
        L("attn_q.weight", E, Q);
        L("attn_k.weight", E, KV);
        L("attn_v.weight", E, KV);
        L("attn_output.weight", Q, E);
        L("ffn_norm.weight", E, 0);
        L("ffn_gate.weight", E, F);
        L("ffn_up.weight", E, F);
        L("ffn_down.weight", F, E);
        if (h->qkv_bias) {
            L("attn_q.bias", Q, 0);
            L("attn_k.bias", KV, 0);
            L("attn_v.bias", KV, 0);
        }
        if (h->post_norms) {
            L("post_attention_norm.weight", E, 0);
            L("post_ffw_norm.weight", E, 0);
        }
#undef L
    }
    if (rc) {
        free(e);
        return -1;
    }
    *out = e;
    *n_out = n;
    return 0;
}

static void shape_str(const int64_t *ne, int n_dims, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < n_dims && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? " x %lld" : "%lld", (long long)ne[d]);
}

int sa_conv_check(const SaConvSource *src) {
    const SaHparams *h = &src->hp;
    if (sa_hparams_validate(h)) return sa_err_prefix("%s: ", src->path);
    if (src->tok.n_vocab != h->n_vocab)
        return sa_err("%s: the tokenizer has %d tokens but the model's vocabulary is %d", src->path, src->tok.n_vocab,
                      h->n_vocab);
    /* Building the tokenizer validates the vocabulary now rather than at the first prompt. */
    SaTokenizer *tk = sa_tok_new(&src->tok);
    if (!tk) return sa_err_prefix("%s: tokenizer: ", src->path);
    sa_tok_free(tk);

    Expect *e;
    int ne;
    if (expected_tensors(h, &e, &ne)) return -1;
    char *seen = sa_calloc((size_t)ne, 1);
    if (!seen) {
        free(e);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < src->n_tensors && !rc; i++) {
        const SaConvTensor *t = &src->tensors[i];
        int k = 0;
        while (k < ne && strcmp(e[k].name, t->name) != 0) k++;
        if (k == ne) {
            rc = sa_err("%s: tensor %s is not part of a %s model with %d layers%s", src->path, t->name,
                        sa_arch_name(h->arch), h->n_layer,
                        h->tied_output && strcmp(t->name, "output.weight") == 0 ? " and a tied output" : "");
            break;
        }
        if (seen[k]) {
            rc = sa_err("%s: tensor %s appears twice", src->path, t->name);
            break;
        }
        seen[k] = 1;
        int64_t want[4] = {e[k].ne0, e[k].ne1 ? e[k].ne1 : 1, 1, 1};
        if (memcmp(want, t->ne, sizeof want) != 0) {
            char have_s[96], want_s[96];
            shape_str(t->ne, t->n_dims, have_s, sizeof have_s);
            shape_str(want, e[k].ne1 ? 2 : 1, want_s, sizeof want_s);
            rc = sa_err("%s: tensor %s has shape %s, the hyperparameters say %s", src->path, t->name, have_s, want_s);
        }
    }
    for (int k = 0; k < ne && !rc; k++)
        if (e[k].required && !seen[k]) rc = sa_err("%s: tensor %s is missing", src->path, e[k].name);
    free(seen);
    free(e);
    return rc;
}

/* ---- output dtype choice ----
 * Vectors (norms, biases) are F32 under every type (converted losslessly from F16/BF16). f32 and
 * f16 convert every matrix; keep copies the input's types. The llama.cpp file types take
 * llama-quantize's per-tensor choices (src/quant_rules.c), so that a file made here holds the
 * type llama-quantize would give each tensor, and byte for byte the same blocks. */
static int effective_dims(const SaConvTensor *t) {
    int n = 1;
    for (int d = 1; d < 4; d++)
        if (t->ne[d] > 1) n = d + 1;
    return n;
}

int sa_conv_plan(const SaConvSource *src, const SaConvOptions *opt, SaDtype *out) {
    const int ft = file_type_of(opt->type);
    if ((unsigned)opt->type >= SA_CONV_TYPE_COUNT) return sa_err("--type: unknown type %d", (int)opt->type);
    if (ft < 0) {
        if (opt->pure || opt->n_overrides)
            return sa_err("%s: only with a quantized --type (q4_k_m, q8_0, ...), not %s",
                          opt->pure ? "--pure" : "--tensor-type", sa_conv_type_name(opt->type));
        for (int i = 0; i < src->n_tensors; i++) {
            const SaConvTensor *t = &src->tensors[i];
            out[i] = effective_dims(t) < 2 ? SA_F32
                     : opt->type == SA_CONV_F32 ? SA_F32
                     : opt->type == SA_CONV_F16 ? SA_F16
                     : t->dtype;
        }
        return 0;
    }
    SaRuleTensor *rt = sa_malloc((size_t)(src->n_tensors ? src->n_tensors : 1) * sizeof *rt);
    int *gg = sa_malloc((size_t)(src->n_tensors ? src->n_tensors : 1) * sizeof *gg);
    int rc = -1;
    if (!rt || !gg) goto done;
    for (int i = 0; i < src->n_tensors; i++)
        rt[i] = (SaRuleTensor){src->tensors[i].name, src->tensors[i].ne[0], effective_dims(&src->tensors[i])};
    const SaRuleOptions ro = {ft, opt->pure, opt->imatrix != NULL, opt->overrides, opt->n_overrides};
    if (sa_quant_rules(&src->hp, rt, src->n_tensors, &ro, gg)) goto done;
    for (int i = 0; i < src->n_tensors; i++) {
        const SaConvTensor *t = &src->tensors[i];
        if (gg[i] < 0) { /* not quantized: vectors F32, a matrix keeps a float type */
            out[i] = effective_dims(t) < 2 || (t->dtype != SA_F16 && t->dtype != SA_BF16) ? SA_F32 : t->dtype;
            continue;
        }
        const int d = writable(gg[i]);
        if (d < 0) {
            sa_err("--type %s: tensor %s takes type %s, which this build cannot write yet", sa_conv_type_name(opt->type),
                   t->name, sa_gg_type_name(gg[i]));
            goto done;
        }
        out[i] = (SaDtype)d;
        if (opt->imatrix && sa_imatrix_find(opt->imatrix, t->name) && !sa_quantize_row_imatrix_supported(out[i])) {
            sa_err("--imatrix: tensor %s takes type %s, which has no weighted quantizer in this build yet", t->name,
                   sa_dtype_name(out[i]));
            goto done;
        }
    }
    rc = 0;
done:
    free(rt);
    free(gg);
    return rc;
}

SaDtype sa_conv_out_dtype(const SaConvSource *src, const SaConvTensor *t, SaConvType type) {
    SaDtype *all = sa_calloc((size_t)src->n_tensors + 1, sizeof *all);
    const SaConvOptions opt = {.type = type, .quiet = 1};
    SaDtype d = SA_F32;
    if (all && sa_conv_plan(src, &opt, all) == 0) d = all[t - src->tensors];
    free(all);
    return d;
}

/* ---- conversion ---- */

typedef struct {
    const SaConvSource *src;
    const SaConvOptions *opt;
    SaDtype *out;
    double *err; /* per tensor relative RMS error; < 0: copied unchanged */
    int tty;
    double t0;
    double bytes_total, bytes_done; /* output bytes, for the bar */
    double last_draw;               /* ms: the bar is redrawn at most every 200 ms within a tensor */
    int current;                    /* the tensor being converted */
} FillCtx;

static uint64_t out_bytes(const SaConvTensor *t, SaDtype d) {
    return (uint64_t)sa_row_bytes(d, t->ne[0]) * (n_elements(t->ne) / (uint64_t)t->ne[0]);
}

/* The bar on a terminal: MiB written of the total, tensors, ETA from the rate so far, and the
 * tensor being converted; redrawn in place under the per-tensor lines. */
static void draw_bar(FillCtx *c, double done_bytes, int done_tensors) {
    const int width = 30;
    const double frac = c->bytes_total > 0 ? done_bytes / c->bytes_total : 1.0;
    const double el = (sa_time_ms() - c->t0) / 1000.0;
    char bar[64], eta[32];
    for (int i = 0; i < width; i++) bar[i] = i < (int)(frac * width) ? '#' : '.';
    bar[width] = 0;
    if (frac >= 1.0) snprintf(eta, sizeof eta, "%.1f s", el);
    else if (frac > 0.01 && el > 0.5) snprintf(eta, sizeof eta, "ETA %.0f s", el * (1 - frac) / frac);
    else snprintf(eta, sizeof eta, "ETA ?");
    const int n = c->src->n_tensors;
    fprintf(stderr, "\r\033[K[%s] %.1f/%.1f MiB  %d/%d tensors  %s  %s", bar, done_bytes / 1048576.0,
            c->bytes_total / 1048576.0, done_tensors, n, eta, done_tensors < n ? c->src->tensors[c->current].name : "");
    fflush(stderr);
    c->last_draw = sa_time_ms();
}

/* Rows of the source as f32. */
static void source_rows(const SaConvTensor *t, int64_t r0, int64_t n, float *dst) {
    if (t->decode) {
        t->decode(t, r0, n, dst);
        return;
    }
    size_t rb = sa_row_bytes(t->dtype, t->ne[0]);
    for (int64_t r = 0; r < n; r++)
        sa_dequantize_row(t->dtype, (const uint8_t *)t->data + (uint64_t)(r0 + r) * rb, dst + r * t->ne[0], t->ne[0]);
}

static int fill(void *vctx, int index, void *dst, uint64_t nbytes) {
    FillCtx *c = vctx;
    const SaConvTensor *t = &c->src->tensors[index];
    const SaDtype od = c->out[index];
    const int64_t ne0 = t->ne[0];
    const int64_t rows = (int64_t)(n_elements(t->ne) / (uint64_t)ne0);
    const size_t orow = sa_row_bytes(od, ne0);
    if ((uint64_t)orow * (uint64_t)rows != nbytes)
        return sa_err("output size %llu does not match %lld rows of %zu bytes", (unsigned long long)nbytes,
                      (long long)rows, orow);
    /* Same type in and out: copy, so quantized blocks stay bit-identical (requantizing a
     * dequantized block is not always the identity). */
    if (!t->decode && od == t->dtype) {
        memcpy(dst, t->data, nbytes);
        c->err[index] = -1;
        return 0;
    }
    const int quantized = sa_dtype_traits[od].block > 1;
    const int measure = od != SA_F32;
    /* llama-quantize's use of the importance matrix: the entry of this tensor's name when its
     * length is the row length; a missing entry quantizes unweighted; another length is an error,
     * except for the token embedding (an imatrix never has a usable one) */
    const float *imx = NULL;
    const SaImatrixEntry *ie = quantized && c->opt->imatrix ? sa_imatrix_find(c->opt->imatrix, t->name) : NULL;
    if (ie && ie->n == ne0) imx = ie->values;
    else if (ie && strcmp(t->name, "token_embd.weight"))
        return sa_err("--imatrix has %lld values for it, its rows have %lld", (long long)ie->n, (long long)ne0);
    c->current = index;
    const int bar = c->tty && !c->opt->quiet;
    int64_t rows_done = 0;
    double num = 0, den = 0;
    int failed = 0;         /* 1: out of memory */
    int64_t bad_row = -1;   /* first row with a NaN/inf (cannot be block-quantized) */
    int nthreads = c->opt->threads;
#ifdef _OPENMP
    if (nthreads < 1) nthreads = omp_get_max_threads();
#endif
    if (nthreads < 1) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(+ : num, den)
    {
        float *x = malloc((size_t)ne0 * sizeof(float));
        float *y = malloc((size_t)ne0 * sizeof(float));
        if (!x || !y) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t r = 0; r < rows; r++) {
            if (!x || !y) continue;
            source_rows(t, r, 1, x);
            if (quantized) {
                /* ggml's reference quantizers convert x/d to int8: undefined for NaN/inf. */
                int finite = 1;
                for (int64_t j = 0; j < ne0; j++)
                    if (!isfinite(x[j])) finite = 0;
                if (!finite) {
#pragma omp critical(conv_bad_row)
                    if (bad_row < 0 || r < bad_row) bad_row = r;
                    continue;
                }
            }
            uint8_t *q = (uint8_t *)dst + (uint64_t)r * orow;
            sa_quantize_row_imatrix(od, x, q, ne0, imx); /* llama-quantize's quantizer, with or without weights */
            if (measure) {
                sa_dequantize_row(od, q, y, ne0);
                for (int64_t j = 0; j < ne0; j++) {
                    double d = (double)x[j] - y[j];
                    num += d * d;
                    den += (double)x[j] * x[j];
                }
            }
            if (bar) {
                int64_t now_done;
#pragma omp atomic capture
                now_done = ++rows_done;
#ifdef _OPENMP
                const int master = omp_get_thread_num() == 0;
#else
                const int master = 1;
#endif
                if (master && (now_done & 31) == 0 && sa_time_ms() - c->last_draw > 200)
                    draw_bar(c, c->bytes_done + (double)now_done * orow, index);
            }
        }
        free(x);
        free(y);
    }
    if (failed) return sa_err("out of memory for a row buffer of %lld floats", (long long)ne0);
    if (bad_row >= 0)
        return sa_err("row %lld has a NaN or infinite value and cannot be quantized to %s", (long long)bad_row,
                      sa_dtype_name(od));
    c->err[index] = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
    return 0;
}

static void progress(void *vctx, int done, int total) {
    FillCtx *c = vctx;
    if (c->opt->quiet || done < 1) return;
    const SaConvTensor *t = &c->src->tensors[done - 1];
    char shape[96], errs[64];
    shape_str(t->ne, t->n_dims, shape, sizeof shape);
    double e = c->err[done - 1];
    if (e < 0) snprintf(errs, sizeof errs, "copied");
    else if (c->out[done - 1] == SA_F32) snprintf(errs, sizeof errs, "exact");
    else snprintf(errs, sizeof errs, "rel. RMS error %.5f", e);
    if (c->tty) fputs("\r\033[K", stderr);
    fprintf(stderr, "[%*d/%d] %-32s %-16s %5s -> %-5s %s\n", total >= 100 ? 4 : 3, done, total, t->name, shape,
            t->decode ? "int8" : sa_dtype_name(t->dtype), sa_dtype_name(c->out[done - 1]), errs);
    c->bytes_done += (double)out_bytes(t, c->out[done - 1]);
    if (c->tty) {
        if (done < total) c->current = done;
        draw_bar(c, c->bytes_done, done);
        if (done == total) fputc('\n', stderr);
    }
    fflush(stderr);
}

/* The writer with metadata and tensor declarations, and the per-tensor choices in c. */
static SalmWriter *prepare(const SaConvSource *src, const SaConvOptions *opt, FillCtx *c, const char *out_name) {
    if (sa_conv_check(src)) return NULL;
    SalmWriter *w = salm_writer_new();
    c->out = sa_calloc((size_t)src->n_tensors + 1, sizeof(SaDtype));
    c->err = sa_calloc((size_t)src->n_tensors + 1, sizeof(double));
    if (!w || !c->out || !c->err) goto fail;
    if (sa_hparams_write(w, &src->hp) || sa_tok_spec_write(w, &src->tok)) {
        sa_err_prefix("%s: ", src->path);
        goto fail;
    }
    if (src->chat_template && salm_writer_str(w, SA_CONV_KEY_CHAT_TEMPLATE, src->chat_template)) goto fail;
    if (src->aligner_template && salm_writer_str(w, SA_CONV_KEY_ALIGNER_TEMPLATE, src->aligner_template)) goto fail;
    if (sa_conv_plan(src, opt, c->out)) goto fail;
    for (int i = 0; i < src->n_tensors; i++) c->bytes_total += (double)out_bytes(&src->tensors[i], c->out[i]);
    for (int i = 0; i < src->n_tensors; i++) {
        const SaConvTensor *t = &src->tensors[i];
        if (salm_writer_tensor(w, t->name, c->out[i], t->n_dims, t->ne) < 0) {
            sa_err_prefix("%s: ", out_name);
            goto fail;
        }
    }
    return w;
fail:
    salm_writer_free(w);
    return NULL;
}

/* Per output type: tensors, weights, MiB and bits per weight; then all together. */
static void summary(const SaConvSource *src, const SaDtype *out) {
    uint64_t n[SA_DTYPE_COUNT] = {0}, el[SA_DTYPE_COUNT] = {0}, by[SA_DTYPE_COUNT] = {0}, tel = 0, tby = 0;
    for (int i = 0; i < src->n_tensors; i++) {
        const SaConvTensor *t = &src->tensors[i];
        n[out[i]]++;
        el[out[i]] += n_elements(t->ne);
        by[out[i]] += out_bytes(t, out[i]);
        tel += n_elements(t->ne);
        tby += out_bytes(t, out[i]);
    }
    fprintf(stderr, "%-7s %8s %14s %11s %10s\n", "type", "tensors", "weights", "MiB", "bits/wt");
    for (int d = 0; d < SA_DTYPE_COUNT; d++)
        if (n[d])
            fprintf(stderr, "%-7s %8llu %14llu %11.2f %10.3f\n", sa_dtype_name((SaDtype)d), (unsigned long long)n[d],
                    (unsigned long long)el[d], by[d] / 1048576.0, el[d] ? 8.0 * by[d] / el[d] : 0.0);
    fprintf(stderr, "%-7s %8d %14llu %11.2f %10.3f\n", "total", src->n_tensors, (unsigned long long)tel, tby / 1048576.0,
            tel ? 8.0 * tby / tel : 0.0);
}

int sa_conv_write(const SaConvSource *src, const char *out_path, const SaConvOptions *opt) {
    int rc = -1;
    FillCtx c = {.src = src, .opt = opt, .tty = isatty(STDERR_FILENO), .t0 = sa_time_ms()};
    SalmWriter *w = prepare(src, opt, &c, out_path);
    if (!w) goto done;
    if (!opt->quiet)
        fprintf(stderr, "converting %s (%s, %d tensors) to %s, type %s\n", src->path, src->kind ? src->kind : "?",
                src->n_tensors, out_path, sa_conv_type_name(opt->type));
    if (salm_writer_write(w, out_path, fill, &c, progress)) {
        /* the writer names the tensor; make sure the output file is named too */
        const char *m = sa_errmsg();
        if (strncmp(m, out_path, strlen(out_path)) != 0) sa_err_prefix("%s: ", out_path);
        goto done;
    }
    if (!opt->quiet) {
        struct stat st;
        double mib = stat(out_path, &st) == 0 ? st.st_size / 1048576.0 : 0;
        fprintf(stderr, "wrote %s: %d tensors, %.2f MiB in %.1f s\n", out_path, src->n_tensors, mib,
                (sa_time_ms() - c.t0) / 1000.0);
        summary(src, c.out);
    }
    rc = 0;
done:
    if (rc && c.tty && !opt->quiet) fputc('\n', stderr); /* leave the bar's line */
    salm_writer_free(w);
    free(c.out);
    free(c.err);
    return rc;
}

int sa_conv_to_memory(const SaConvSource *src, const SaConvOptions *opt, SaLoadMode mode, Salm *out) {
    memset(out, 0, sizeof *out);
    int rc = -1;
    FillCtx c = {.src = src, .opt = opt, .tty = isatty(STDERR_FILENO), .t0 = sa_time_ms()};
    SalmWriter *w = prepare(src, opt, &c, src->path);
    if (w && salm_writer_to_memory(w, out, src->path, mode, fill, &c, opt->quiet ? NULL : progress) == 0) rc = 0;
    salm_writer_free(w);
    free(c.out);
    free(c.err);
    return rc;
}
