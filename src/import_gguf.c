/* import_gguf.c - a GGUF model as a conversion source.
 *
 * GGUF tensor names and shapes are already the .salm ones, so tensors are passed through
 * (their bytes stay in the GGUF mapping). What differs per architecture is the metadata key
 * prefix and a few hyperparameters: each architecture is one row of `archs` plus, where
 * needed, a hook that reads its extra keys. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gguf.h"
#include "convert.h"

typedef struct {
    const char *gguf_name; /* general.architecture, also the metadata key prefix */
    SaArch arch;
    /* llama.cpp's rope type for the architecture: LLAMA_ROPE_TYPE_NORM rotates adjacent pairs
     * (its converter permutes llama q/k rows to match), NEOX rotates (x[i], x[i + d/2]) of the
     * unpermuted HF rows (qwen2, gemma, gemma2) */
    SaRopePairing pairing;
    int tied_always; /* llama.cpp always uses token_embd as the output matrix (gemma, gemma2) */
    /* architecture-specific keys beyond the common llama set; may be NULL */
    int (*extra)(const Gguf *g, const char *prefix, SaHparams *h);
} GgufArch;

static int extra_gemma(const Gguf *g, const char *prefix, SaHparams *h);
static int extra_gemma2(const Gguf *g, const char *prefix, SaHparams *h);

static const GgufArch archs[] = {
    {"llama", SA_ARCH_LLAMA, SA_ROPE_ADJACENT, 0, NULL},
    {"qwen2", SA_ARCH_QWEN2, SA_ROPE_HALF, 0, NULL},
    {"gemma", SA_ARCH_GEMMA, SA_ROPE_HALF, 1, extra_gemma},
    {"gemma2", SA_ARCH_GEMMA2, SA_ROPE_HALF, 1, extra_gemma2},
};

/* "<prefix>.<suffix>" */
static const char *pkey(char *buf, size_t cap, const char *prefix, const char *suffix) {
    snprintf(buf, cap, "%s.%s", prefix, suffix);
    return buf;
}

static int get_pos_int(const Gguf *g, const char *key, int *out) {
    uint32_t v;
    if (gguf_get_u32(g, key, &v)) return -1;
    if (v == 0 || v > INT32_MAX) return sa_err("%s: %s = %u is out of range", g->path, key, v);
    *out = (int)v;
    return 0;
}

static int opt_pos_int(const Gguf *g, const char *key, int dflt, int *out) {
    *out = dflt;
    return gguf_find(g, key) ? get_pos_int(g, key, out) : 0;
}

static int opt_f32(const Gguf *g, const char *key, float dflt, float *out) {
    *out = dflt;
    return gguf_find(g, key) ? gguf_get_f32(g, key, out) : 0;
}

/* Llama 3.1-style rope scaling is stored in GGUF only as the tensor rope_freqs.weight: one
 * divisor per frequency pair. Recover the parameters by recomputing the divisors from the
 * published configurations and accepting the one that reproduces the tensor. */
static int llama3_rope_from_freqs(const Gguf *g, const GgufTensor *t, SaHparams *h) {
    const int n = h->head_dim / 2;
    if (t->type != GGML_F32 || t->n_dims != 1 || t->ne[0] != n)
        return sa_err("%s: tensor rope_freqs.weight: expected %d f32 values", g->path, n);
    float f[4096];
    if (n > (int)SA_ARRAY_LEN(f)) return sa_err("%s: tensor rope_freqs.weight: too long", g->path);
    memcpy(f, t->data, (size_t)n * sizeof(float));
    /* factor, low_freq_factor, high_freq_factor, original context (Llama 3.1, Llama 3.2) */
    static const float cfg[][4] = {{8, 1, 4, 8192}, {32, 1, 4, 8192}, {16, 1, 4, 8192}};
    for (size_t k = 0; k < SA_ARRAY_LEN(cfg); k++) {
        const float factor = cfg[k][0], lo = cfg[k][1], hi = cfg[k][2], octx = cfg[k][3];
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            double freq = pow(h->rope_theta, -2.0 * i / h->head_dim);
            double wavelen = 2 * M_PI / freq;
            double want;
            if (wavelen < octx / hi) want = 1;
            else if (wavelen > octx / lo) want = factor;
            else {
                double smooth = (octx / wavelen - lo) / (hi - lo);
                want = 1 / ((1 - smooth) / factor + smooth);
            }
            if (!(fabs(f[i] - want) <= 1e-3 * want)) ok = 0;
        }
        if (ok) {
            h->rope_scaling = SA_ROPE_SCALING_LLAMA3;
            h->rope_factor = factor;
            h->rope_low_freq_factor = lo;
            h->rope_high_freq_factor = hi;
            h->rope_orig_ctx = (int)octx;
            return 0;
        }
    }
    return sa_err("%s: tensor rope_freqs.weight: rope frequency factors of an unknown scaling scheme", g->path);
}

/* Gemma GGUFs already hold the norm multipliers 1 + w (llama.cpp's converter adds the 1).
 * llama.cpp scales the embeddings by sqrtf(n_embd) in fp32, whatever the weight type. */
static int extra_gemma(const Gguf *g, const char *prefix, SaHparams *h) {
    (void)g;
    (void)prefix;
    h->embd_scale = sqrtf((float)h->n_embd);
    return 0;
}

static int extra_gemma2(const Gguf *g, const char *prefix, SaHparams *h) {
    char k[128];
    extra_gemma(g, prefix, h);
    /* llama.cpp's defaults when a key is absent: caps 50 and 30, window 4096 */
    if (opt_f32(g, pkey(k, sizeof k, prefix, "attn_logit_softcapping"), 50.0f, &h->attn_softcap) ||
        opt_f32(g, pkey(k, sizeof k, prefix, "final_logit_softcapping"), 30.0f, &h->final_softcap) ||
        opt_pos_int(g, pkey(k, sizeof k, prefix, "attention.sliding_window"), 4096, &h->sliding_window))
        return -1;
    if (!(h->attn_softcap > 0 && isfinite(h->attn_softcap)) || !(h->final_softcap > 0 && isfinite(h->final_softcap)))
        return sa_err("%s: gemma2 soft-capping values must be positive (attention %g, final %g)", g->path,
                      h->attn_softcap, h->final_softcap);
    /* sliding window on every other layer, starting with layer 0 (llama.cpp's swa pattern 2) */
    if (gguf_find(g, pkey(k, sizeof k, prefix, "attention.sliding_window_pattern"))) {
        int pat = 0;
        if (get_pos_int(g, k, &pat)) return -1;
        if (pat != 2) return sa_err("%s: %s = %d: only a window on every other layer (2) is supported", g->path, k, pat);
    }
    /* The GGUF has no query_pre_attn_scalar. llama.cpp scales queries by 1/sqrt(head_dim), except
     * for the 27B model (46 layers), whose query_pre_attn_scalar is n_embd / n_head; we do the same. */
    if (h->n_layer == 46) h->query_scale = 1.0f / sqrtf((float)(h->n_embd / h->n_head));
    return 0;
}

static int read_hparams(const Gguf *g, const GgufArch *a, SaHparams *h) {
    const char *p = a->gguf_name;
    char k[128];
    memset(h, 0, sizeof *h);
    h->arch = a->arch;
    sa_hparams_defaults(h);
    if (get_pos_int(g, pkey(k, sizeof k, p, "embedding_length"), &h->n_embd) ||
        get_pos_int(g, pkey(k, sizeof k, p, "block_count"), &h->n_layer) ||
        get_pos_int(g, pkey(k, sizeof k, p, "attention.head_count"), &h->n_head) ||
        opt_pos_int(g, pkey(k, sizeof k, p, "attention.head_count_kv"), h->n_head, &h->n_head_kv) ||
        get_pos_int(g, pkey(k, sizeof k, p, "feed_forward_length"), &h->n_ff) ||
        get_pos_int(g, pkey(k, sizeof k, p, "context_length"), &h->n_ctx_train) ||
        opt_f32(g, pkey(k, sizeof k, p, "rope.freq_base"), 10000.0f, &h->rope_theta) ||
        opt_f32(g, pkey(k, sizeof k, p, "attention.layer_norm_rms_epsilon"), 1e-5f, &h->norm_eps))
        return -1;
    /* head_dim: explicit key_length (value_length must agree: we have one head size), else
     * n_embd / n_head */
    if (gguf_find(g, pkey(k, sizeof k, p, "attention.key_length"))) {
        int kl = 0, vl = 0;
        if (get_pos_int(g, k, &kl)) return -1;
        if (opt_pos_int(g, pkey(k, sizeof k, p, "attention.value_length"), kl, &vl)) return -1;
        if (vl != kl) return sa_err("%s: attention key length %d differs from value length %d (not supported)", g->path, kl, vl);
        h->head_dim = kl;
    } else {
        if (h->n_embd % h->n_head)
            return sa_err("%s: embedding length %d is not a multiple of the head count %d", g->path, h->n_embd, h->n_head);
        h->head_dim = h->n_embd / h->n_head;
    }
    int rope_dim;
    if (opt_pos_int(g, pkey(k, sizeof k, p, "rope.dimension_count"), h->head_dim, &rope_dim)) return -1;
    if (rope_dim != h->head_dim)
        return sa_err("%s: %s = %d: partial rotary embeddings are not supported (head size %d)", g->path, k, rope_dim,
                      h->head_dim);

    /* rope scaling */
    if (gguf_find(g, pkey(k, sizeof k, p, "rope.scaling.type"))) {
        char *type;
        if (gguf_get_str(g, k, &type)) return -1;
        int r = 0;
        if (strcmp(type, "linear") == 0) {
            h->rope_scaling = SA_ROPE_SCALING_LINEAR;
            r = gguf_get_f32(g, pkey(k, sizeof k, p, "rope.scaling.factor"), &h->rope_factor);
        } else if (strcmp(type, "none") != 0) {
            r = sa_err("%s: rope scaling type \"%.32s\" is not supported (none, linear, llama3)", g->path, type);
        }
        free(type);
        if (r) return -1;
    } else if (gguf_find(g, pkey(k, sizeof k, p, "rope.scale_linear"))) { /* older GGUFs */
        if (gguf_get_f32(g, k, &h->rope_factor)) return -1;
        if (h->rope_factor != 1.0f) h->rope_scaling = SA_ROPE_SCALING_LINEAR;
    }
    if (h->rope_scaling == SA_ROPE_SCALING_LINEAR && !(h->rope_factor > 0 && isfinite(h->rope_factor)))
        return sa_err("%s: rope scaling factor %g must be positive", g->path, h->rope_factor);
    const GgufTensor *rf = gguf_tensor(g, "rope_freqs.weight");
    if (rf && h->rope_scaling == SA_ROPE_SCALING_NONE && llama3_rope_from_freqs(g, rf, h)) return -1;

    h->rope_pairing = a->pairing;
    h->tied_output = a->tied_always || gguf_tensor(g, "output.weight") == NULL;
    return a->extra ? a->extra(g, p, h) : 0;
}

/* gguf_open accepts only tensor types salign has a weight row for (src/dtype.h) */
static SaDtype dtype_of(uint32_t ggml) { return (SaDtype)sa_dtype_from_ggml(ggml); }

static void owner_free(void *p) {
    gguf_close(p);
    free(p);
}

int sa_import_gguf(const char *path, SaConvSource *src) {
    memset(src, 0, sizeof *src);
    src->kind = "GGUF";
    Gguf *g = sa_calloc(1, sizeof *g);
    if (!g) return -1;
    if (gguf_open(g, path)) {
        free(g);
        return -1;
    }
    src->owner = g;
    src->owner_free = owner_free;
    if (!(src->path = sa_strdup(path))) goto fail;

    char *an = NULL;
    if (!gguf_find(g, "general.architecture")) {
        sa_err("%s: no general.architecture: not a model GGUF", path);
        goto fail;
    }
    if (gguf_get_str(g, "general.architecture", &an)) goto fail;
    const GgufArch *a = NULL;
    for (size_t i = 0; i < SA_ARRAY_LEN(archs); i++)
        if (strcmp(archs[i].gguf_name, an) == 0) a = &archs[i];
    if (!a) {
        char shown[40];
        size_t n = 0;
        for (const char *s = an; *s && n < sizeof shown - 1; s++) /* keep the message one printable line */
            shown[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        shown[n] = 0;
        sa_err("%s: architecture \"%s\" is not supported (supported: llama, qwen2, gemma, gemma2)", path, shown);
        free(an);
        goto fail;
    }
    free(an);
    if (read_hparams(g, a, &src->hp)) goto fail;

    if (!gguf_find(g, "tokenizer.ggml.model")) {
        sa_err("%s: no tokenizer in the file (tokenizer.ggml.model missing)", path);
        goto fail;
    }
    if (gguf_tok_spec(g, &src->tok)) goto fail;
    /* vocabulary size: the tokens; llama.vocab_size, when present, must agree */
    src->hp.n_vocab = src->tok.n_vocab;
    char k[128];
    if (gguf_find(g, pkey(k, sizeof k, a->gguf_name, "vocab_size"))) {
        int nv = 0;
        if (get_pos_int(g, k, &nv)) goto fail;
        if (nv != src->tok.n_vocab) {
            sa_err("%s: %s = %d but the tokenizer has %d tokens", path, k, nv, src->tok.n_vocab);
            goto fail;
        }
    }
    if (gguf_find(g, "tokenizer.chat_template") && gguf_get_str(g, "tokenizer.chat_template", &src->chat_template))
        goto fail;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GgufTensor *t = &g->tensors[i];
        /* folded into the hyperparameters above (Llama 3.1 rope scaling) */
        if (strcmp(t->name, "rope_freqs.weight") == 0) continue;
        /* llama.cpp computes gemma logits with token_embd whether or not a copy is stored */
        if (a->tied_always && strcmp(t->name, "output.weight") == 0) continue;
        if (!sa_conv_add(src, t->name, dtype_of(t->type), (int)t->n_dims, t->ne, t->data, t->nbytes)) goto fail;
    }
    return 0;

fail:
    sa_conv_free(src);
    return -1;
}
