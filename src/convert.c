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
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "salm.h"

static const char *conv_type_names[SA_CONV_TYPE_COUNT] = {"f32", "f16", "q8_0", "q4_0", "keep"};

int sa_conv_type_from_name(const char *name) {
    for (int i = 0; i < SA_CONV_TYPE_COUNT; i++)
        if (strcmp(conv_type_names[i], name) == 0) return i;
    return -1;
}

const char *sa_conv_type_name(SaConvType t) {
    return (unsigned)t < SA_CONV_TYPE_COUNT ? conv_type_names[t] : "?";
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
    if (!h->tied_output) rc |= push_expect(&e, &n, &cap, "output.weight", E, V, 1);
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
 * Mirrors llama-quantize so our q8_0/q4_0 files match its blocks bit for bit:
 *  - vectors (norms, biases) stay F32 (converted losslessly from F16/BF16);
 *  - a matrix whose row length is not a multiple of 32 cannot be block-quantized and becomes
 *    F16 (llama.cpp's fallback; stories260K's ffn_down has 172 columns);
 *  - for Q4_0 the output classifier (or the token embedding when it doubles as the
 *    classifier) gets more bits: llama.cpp picks Q6_K, or Q8_0 when the row length is not a
 *    multiple of 256; we have no Q6_K, so always Q8_0, the next better type we support. */
static int effective_dims(const SaConvTensor *t) {
    int n = 1;
    for (int d = 1; d < 4; d++)
        if (t->ne[d] > 1) n = d + 1;
    return n;
}

static int is_classifier(const SaConvSource *src, const SaConvTensor *t) {
    return strcmp(t->name, "output.weight") == 0 || (src->hp.tied_output && strcmp(t->name, "token_embd.weight") == 0);
}

SaDtype sa_conv_out_dtype(const SaConvSource *src, const SaConvTensor *t, SaConvType type) {
    if (effective_dims(t) < 2) return SA_F32;
    SaDtype want;
    switch (type) {
    case SA_CONV_F32: want = SA_F32; break;
    case SA_CONV_F16: want = SA_F16; break;
    case SA_CONV_Q8_0: want = SA_Q8_0; break;
    case SA_CONV_Q4_0: want = is_classifier(src, t) ? SA_Q8_0 : SA_Q4_0; break;
    default: want = t->dtype; break;
    }
    if (sa_dtype_traits[want].block > 1 && t->ne[0] % sa_dtype_traits[want].block) want = SA_F16;
    return want;
}

/* ---- conversion ---- */

typedef struct {
    const SaConvSource *src;
    const SaConvOptions *opt;
    SaDtype *out;
    double *err; /* per tensor relative RMS error; < 0: copied unchanged */
    int tty;
    double t0;
} FillCtx;

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
    double num = 0, den = 0;
    int failed = 0;         /* 1: out of memory */
    int64_t bad_row = -1;   /* first row with a NaN/inf (cannot be block-quantized) */
#pragma omp parallel reduction(+ : num, den)
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
            sa_quantize_row(od, x, q, ne0);
            if (measure) {
                sa_dequantize_row(od, q, y, ne0);
                for (int64_t j = 0; j < ne0; j++) {
                    double d = (double)x[j] - y[j];
                    num += d * d;
                    den += (double)x[j] * x[j];
                }
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
    if (c->tty) {
        /* a bar under the per-tensor lines, redrawn in place */
        const int width = 40;
        int fillw = (int)((long long)done * width / total);
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fillw ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "[%s] %d/%d tensors  %.1f s", bar, done, total, (sa_time_ms() - c->t0) / 1000.0);
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
    for (int i = 0; i < src->n_tensors; i++) {
        const SaConvTensor *t = &src->tensors[i];
        c->out[i] = sa_conv_out_dtype(src, t, opt->type);
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

int sa_conv_write(const SaConvSource *src, const char *out_path, const SaConvOptions *opt) {
    int rc = -1;
    FillCtx c = {src, opt, NULL, NULL, isatty(STDERR_FILENO), sa_time_ms()};
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
    FillCtx c = {src, opt, NULL, NULL, isatty(STDERR_FILENO), sa_time_ms()};
    SalmWriter *w = prepare(src, opt, &c, src->path);
    if (w && salm_writer_to_memory(w, out, src->path, mode, fill, &c, opt->quiet ? NULL : progress) == 0) rc = 0;
    salm_writer_free(w);
    free(c.out);
    free(c.err);
    return rc;
}
