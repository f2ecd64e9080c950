/* model.c - bind the tensors of a .salm file to the weights of an architecture. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "open_gguf.h"
#include "verified.h"
#include "common.h"
#include "repack.h"

/* 1 if the file at path starts with GGUF's magic (unreadable files: 0, salm_open reports them). */
/* A file that is neither .salm nor GGUF: say what it probably is and how to convert it. */
static int not_a_model_file(const char *path) {
    const size_t n = strlen(path);
    if (n > 4 && !strcmp(path + n - 4, ".bin"))
        return sa_err("%s: a llama2.c checkpoint? convert it first: salign-quantize %s OUT.salm --type q8_0 "
                      "--tokenizer tokenizer.bin", path, path);
    return sa_err("%s: not a .salm or GGUF model file", path);
}

static int bind_mat(SaModel *m, SaMat *out, const char *name, int cols, int rows, int optional) {
    const SalmTensor *t = salm_tensor(&m->file, name);
    if (!t) {
        if (optional) return 0;
        return sa_err("%s: missing tensor '%s'", m->file.path, name);
    }
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return sa_err("%s: tensor '%s' has shape [%lld, %lld], expected [%d, %d]", m->file.path, name,
                      (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1), cols, rows);
    out->data = t->data;
    out->dtype = t->dtype;
    out->cols = cols;
    out->rows = rows;
    out->row_bytes = sa_row_bytes(t->dtype, cols);
    return 0;
}

/* Norm and bias vectors are used as f32; the converter writes them as f32, but accept any
 * dtype and convert (into m->owned_f32, a bump area sized up front). */
static int bind_vec(SaModel *m, const float **out, const char *name, int n, int optional, size_t *bump) {
    const SalmTensor *t = salm_tensor(&m->file, name);
    if (!t) {
        if (optional) return 0;
        return sa_err("%s: missing tensor '%s'", m->file.path, name);
    }
    if (t->n_dims != 1 || t->ne[0] != n)
        return sa_err("%s: tensor '%s' has %lld elements in %d dimensions, expected a vector of %d", m->file.path,
                      name, (long long)t->ne[0], t->n_dims, n);
    if (t->dtype == SA_F32) {
        *out = t->data;
    } else {
        float *dst = m->owned_f32 + *bump;
        sa_dequantize_row(t->dtype, t->data, dst, n);
        *bump += (size_t)n;
        *out = dst;
    }
    return 0;
}

/* Repack every matrix of a model (tied output included) when the file was read into memory.
 * SALIGN_NOPACK=1 in the environment turns it off (for comparisons). */
static int model_pack(SaModel *m) {
    const char *e = getenv("SALIGN_NOPACK");
    if (e && *e && strcmp(e, "0") != 0) return 0;
    const int tied = m->output.data == m->tok_embd.data;
    if (sa_mat_pack(&m->tok_embd)) return -1;
    if (tied) m->output = m->tok_embd;
    else if (sa_mat_pack(&m->output)) return -1;
    for (int l = 0; l < m->hp.n_layer; l++) {
        SaLayer *L = &m->layers[l];
        SaMat *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < SA_ARRAY_LEN(all); i++)
            if (sa_mat_pack(all[i])) return -1;
    }
    return 0;
}

static SaVerifyPolicy verify_policy = SA_VERIFY_ONCE;

void sa_model_set_verify_policy(SaVerifyPolicy p) { verify_policy = p; }

int sa_model_load(SaModel *m, const char *path, const SaLoadOpts *opts) {
    memset(m, 0, sizeof *m);
    SaLoadOpts def = {0};
    if (!opts) opts = &def;
    /* A GGUF goes through the converter (a layer below this one, see open_gguf.h) into a .salm
     * image: from here on nothing differs from a .salm read from disk. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sa_err("%s: is a directory (a Hugging Face model? convert it first: salign-quantize %s OUT.salm --type q8_0)",
                      path, path);
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    const size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (f && got == 4 && memcmp(magic, "GGUF", 4) && memcmp(magic, SALM_MAGIC, 4)) return not_a_model_file(path);
    const int gguf = got == 4 && !memcmp(magic, "GGUF", 4);
    if (gguf ? sa_open_gguf_as_salm(path, opts->load_mode, &m->file) : salm_open(&m->file, path, opts->load_mode))
        return -1;
    if (!gguf && (opts->verify || (verify_policy == SA_VERIFY_ONCE && !sa_verified_known(path)))) {
        if (salm_verify(&m->file)) goto fail;
        sa_verified_remember(path);
    }
    if (sa_hparams_read(&m->file, &m->hp)) goto fail;
    SaHparams *h = &m->hp;

    SaTokSpec spec;
    if (sa_tok_spec_read(&m->file, &spec)) goto fail;
    if (spec.n_vocab != h->n_vocab) {
        sa_err("%s: tokenizer has %d tokens but the model's vocabulary is %d", path, spec.n_vocab, h->n_vocab);
        sa_tok_spec_free(&spec);
        goto fail;
    }
    m->tok = sa_tok_new(&spec);
    sa_tok_spec_free(&spec);
    if (!m->tok) {
        sa_err_prefix("%s: ", path); /* sa_tok_new says "tokenizer: ..." itself */
        goto fail;
    }
    const char *ct = salm_get_str(&m->file, "chat_template");
    if (ct && !(m->chat_template = sa_strdup(ct))) goto fail;
    const char *at = salm_get_str(&m->file, "aligner_template");
    if (at && !(m->aligner_template = sa_strdup(at))) goto fail;

    /* room for every vector converted to f32 */
    size_t vec_floats = 1 /* score.bias */ + (size_t)h->n_embd * (1 + 4 * (size_t)h->n_layer) +
                        (size_t)h->n_layer * (size_t)(h->n_head + 2 * h->n_head_kv) * h->head_dim;
    m->owned_f32 = sa_malloc(vec_floats * sizeof(float));
    m->layers = sa_calloc((size_t)h->n_layer, sizeof(SaLayer));
    if (!m->owned_f32 || !m->layers) goto fail;
    size_t bump = 0;

    const int d = h->n_embd, q_dim = h->n_head * h->head_dim, kv_dim = h->n_head_kv * h->head_dim;
    if (bind_mat(m, &m->tok_embd, "token_embd.weight", d, h->n_vocab, 0)) goto fail;
    if (bind_vec(m, &m->output_norm, "output_norm.weight", d, 0, &bump)) goto fail;
    if (h->score_head) {
        if (bind_mat(m, &m->score, "score.weight", d, 1, 0)) goto fail;
        if (h->score_bias && bind_vec(m, &m->score_bias, "score.bias", 1, 0, &bump)) goto fail;
    } else if (h->tied_output) {
        m->output = m->tok_embd;
    } else if (bind_mat(m, &m->output, "output.weight", d, h->n_vocab, 0)) {
        goto fail;
    }
    for (int l = 0; l < h->n_layer; l++) {
        SaLayer *L = &m->layers[l];
        char name[128];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, l), name)
        if (bind_vec(m, &L->attn_norm, NAME("attn_norm.weight"), d, 0, &bump) ||
            bind_vec(m, &L->ffn_norm, NAME("ffn_norm.weight"), d, 0, &bump) ||
            bind_mat(m, &L->wq, NAME("attn_q.weight"), d, q_dim, 0) ||
            bind_mat(m, &L->wk, NAME("attn_k.weight"), d, kv_dim, 0) ||
            bind_mat(m, &L->wv, NAME("attn_v.weight"), d, kv_dim, 0) ||
            bind_mat(m, &L->wo, NAME("attn_output.weight"), q_dim, d, 0) ||
            bind_mat(m, &L->w_gate, NAME("ffn_gate.weight"), d, h->n_ff, 0) ||
            bind_mat(m, &L->w_up, NAME("ffn_up.weight"), d, h->n_ff, 0) ||
            bind_mat(m, &L->w_down, NAME("ffn_down.weight"), h->n_ff, d, 0))
            goto fail;
        if (h->post_norms) {
            if (bind_vec(m, &L->post_attn_norm, NAME("post_attention_norm.weight"), d, 0, &bump) ||
                bind_vec(m, &L->post_ffn_norm, NAME("post_ffw_norm.weight"), d, 0, &bump))
                goto fail;
        }
        if (h->qkv_bias) {
            if (bind_vec(m, &L->bq, NAME("attn_q.bias"), q_dim, 0, &bump) ||
                bind_vec(m, &L->bk, NAME("attn_k.bias"), kv_dim, 0, &bump) ||
                bind_vec(m, &L->bv, NAME("attn_v.bias"), kv_dim, 0, &bump))
                goto fail;
        }
#undef NAME
    }
    /* interleave quantized rows for the matmul kernels; only our own copy can be rewritten */
    if (m->file.mmapped != 1 && model_pack(m)) goto fail;
    return 0;
fail:
    sa_model_free(m);
    return -1;
}

void sa_model_free(SaModel *m) {
    if (m->tok) sa_tok_free(m->tok);
    free(m->layers);
    free(m->owned_f32);
    free(m->chat_template);
    free(m->aligner_template);
    salm_close(&m->file);
    memset(m, 0, sizeof *m);
}

uint64_t sa_model_weight_bytes(const SaModel *m) {
    uint64_t n = 0;
    for (int i = 0; i < m->file.n_tensors; i++) n += m->file.tensors[i].nbytes;
    return n;
}
