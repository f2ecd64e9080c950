/* hparams.c - hyperparameters: architecture traits, validation, .salm keys; and the tokenizer
 * spec's .salm keys. The key names are part of the format (weights/FORMAT.md). */
#include "hparams.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

_Static_assert(sizeof(SaArch) == sizeof(int) && sizeof(SaAct) == sizeof(int) && sizeof(SaRopePairing) == sizeof(int), "enum fields are read as int");

static const char *arch_names[SA_ARCH_COUNT] = {"llama", "qwen2", "gemma", "gemma2"};

const char *sa_arch_name(SaArch a) { return (unsigned)a < SA_ARCH_COUNT ? arch_names[a] : "?"; }

int sa_arch_from_name(const char *name) {
    for (int i = 0; i < SA_ARCH_COUNT; i++)
        if (strcmp(arch_names[i], name) == 0) return i;
    return -1;
}

/* The parts of an architecture that are fixed by its family, not by a checkpoint. */
typedef struct {
    SaAct act;
    int qkv_bias;
    int post_norms;
} ArchTraits;

static const ArchTraits arch_traits[SA_ARCH_COUNT] = {
    [SA_ARCH_LLAMA] = {SA_ACT_SILU, 0, 0},
    [SA_ARCH_QWEN2] = {SA_ACT_SILU, 1, 0},
    [SA_ARCH_GEMMA] = {SA_ACT_GELU_TANH, 0, 0},
    [SA_ARCH_GEMMA2] = {SA_ACT_GELU_TANH, 0, 1},
};

void sa_hparams_defaults(SaHparams *h) {
    const ArchTraits *t = &arch_traits[(unsigned)h->arch < SA_ARCH_COUNT ? h->arch : 0];
    h->act = t->act;
    h->qkv_bias = t->qkv_bias;
    h->post_norms = t->post_norms;
    if (h->norm_eps == 0) h->norm_eps = 1e-5f;
    if (h->rope_theta == 0) h->rope_theta = 10000.0f;
    if (h->head_dim == 0 && h->n_head > 0) h->head_dim = h->n_embd / h->n_head;
    if (h->n_head_kv == 0) h->n_head_kv = h->n_head;
}

int sa_hparams_validate(const SaHparams *h) {
#define POS(field)                                                                   \
    if (h->field <= 0) return sa_err("hyperparameter " #field " = %d must be positive", h->field)
    if ((unsigned)h->arch >= SA_ARCH_COUNT) return sa_err("unknown architecture %d", (int)h->arch);
    POS(n_vocab);
    POS(n_embd);
    POS(n_layer);
    POS(n_head);
    POS(n_head_kv);
    POS(head_dim);
    POS(n_ff);
#undef POS
    if (h->n_vocab > (1 << 24)) return sa_err("hyperparameter n_vocab = %d is implausibly large", h->n_vocab);
    if (h->n_embd > (1 << 17) || h->n_ff > (1 << 20) || h->n_layer > 4096 || h->head_dim > 4096 || h->n_head > 4096)
        return sa_err("hyperparameters are implausibly large (n_embd %d, n_ff %d, n_layer %d, n_head %d, head_dim %d)",
                      h->n_embd, h->n_ff, h->n_layer, h->n_head, h->head_dim);
    if (h->n_head % h->n_head_kv)
        return sa_err("hyperparameter n_head = %d is not a multiple of n_head_kv = %d", h->n_head, h->n_head_kv);
    if (h->head_dim % 2) return sa_err("hyperparameter head_dim = %d must be even for RoPE", h->head_dim);
    if (!(h->norm_eps > 0) || !isfinite(h->norm_eps)) return sa_err("hyperparameter norm_eps = %g must be positive", h->norm_eps);
    if (!(h->rope_theta > 0) || !isfinite(h->rope_theta)) return sa_err("hyperparameter rope_theta = %g must be positive", h->rope_theta);
    if ((unsigned)h->rope_pairing > SA_ROPE_HALF) return sa_err("hyperparameter rope_pairing = %d is unknown", (int)h->rope_pairing);
    if ((unsigned)h->rope_scaling > SA_ROPE_SCALING_LINEAR) return sa_err("hyperparameter rope_scaling = %d is unknown", (int)h->rope_scaling);
    if (h->rope_scaling != SA_ROPE_SCALING_NONE && !(h->rope_factor > 0))
        return sa_err("hyperparameter rope_factor = %g must be positive with rope scaling", h->rope_factor);
    if (h->attn_softcap < 0 || h->final_softcap < 0 || h->sliding_window < 0 || !isfinite(h->embd_scale) || h->query_scale < 0)
        return sa_err("hyperparameters: negative soft-cap, window or scale");
    if ((unsigned)h->score_head > 1 || (unsigned)h->score_bias > 1 || (h->score_bias && !h->score_head))
        return sa_err("hyperparameters score_head = %d, score_bias = %d: each 0 or 1, a bias only with the head", h->score_head,
                      h->score_bias);
    if (h->score_head && h->tied_output)
        return sa_err("hyperparameters: a score model (score_head = 1) has no output matrix to tie (tied_output = 1)");
    return 0;
}

/* One table drives both directions, so reader and writer cannot disagree on a key. */
typedef enum { F_INT, F_FLOAT } FieldKind;
typedef struct {
    const char *key;
    FieldKind kind;
    size_t off;
    int required;
} Field;

#define FI(k, f, r) {k, F_INT, offsetof(SaHparams, f), r}
#define FF(k, f, r) {k, F_FLOAT, offsetof(SaHparams, f), r}
static const Field fields[] = {
    FI("n_vocab", n_vocab, 1),
    FI("n_embd", n_embd, 1),
    FI("n_layer", n_layer, 1),
    FI("n_head", n_head, 1),
    FI("n_head_kv", n_head_kv, 1),
    FI("head_dim", head_dim, 1),
    FI("n_ff", n_ff, 1),
    FI("n_ctx_train", n_ctx_train, 1),
    FF("norm_eps", norm_eps, 1),
    FF("rope_theta", rope_theta, 1),
    FI("rope_pairing", rope_pairing, 1),
    FI("rope_scaling", rope_scaling, 0),
    FF("rope_factor", rope_factor, 0),
    FF("rope_low_freq_factor", rope_low_freq_factor, 0),
    FF("rope_high_freq_factor", rope_high_freq_factor, 0),
    FI("rope_orig_ctx", rope_orig_ctx, 0),
    FI("act", act, 1),
    FI("qkv_bias", qkv_bias, 1),
    FI("tied_output", tied_output, 1),
    FF("embd_scale", embd_scale, 0),
    FF("attn_softcap", attn_softcap, 0),
    FF("final_softcap", final_softcap, 0),
    FF("query_scale", query_scale, 0),
    FI("sliding_window", sliding_window, 0),
    FI("post_norms", post_norms, 0),
    FI("score_head", score_head, 0),
    FI("score_bias", score_bias, 0),
};
#undef FI
#undef FF

int sa_hparams_write(SalmWriter *w, const SaHparams *h) {
    if (sa_hparams_validate(h)) return -1;
    if (salm_writer_str(w, "arch", sa_arch_name(h->arch))) return -1;
    for (size_t i = 0; i < SA_ARRAY_LEN(fields); i++) {
        const Field *f = &fields[i];
        const char *p = (const char *)h + f->off;
        char key[64];
        snprintf(key, sizeof key, "hp.%s", f->key);
        int rc;
        if (f->kind == F_INT) {
            int v;
            memcpy(&v, p, sizeof v);
            if (!f->required && v == 0) continue;
            rc = salm_writer_i32(w, key, v);
        } else {
            float v;
            memcpy(&v, p, sizeof v);
            if (!f->required && v == 0) continue;
            rc = salm_writer_f32(w, key, v);
        }
        if (rc) return -1;
    }
    return 0;
}

int sa_hparams_read(const Salm *s, SaHparams *h) {
    memset(h, 0, sizeof *h);
    const char *arch = salm_get_str(s, "arch");
    if (!arch) return sa_err("%s: missing metadata 'arch'", s->path);
    int a = sa_arch_from_name(arch);
    if (a < 0) return sa_err("%s: unsupported architecture '%s'", s->path, arch);
    h->arch = (SaArch)a;
    for (size_t i = 0; i < SA_ARRAY_LEN(fields); i++) {
        const Field *f = &fields[i];
        char *p = (char *)h + f->off;
        char key[64];
        snprintf(key, sizeof key, "hp.%s", f->key);
        const SalmKV *kv = salm_kv(s, key);
        if (!kv) {
            if (f->required) return sa_err("%s: missing metadata '%s'", s->path, key);
            continue;
        }
        if (f->kind == F_INT) {
            if (kv->type != SALM_I32) return sa_err("%s: metadata '%s' must be i32", s->path, key);
            memcpy(p, &kv->v.i32, sizeof(int));
        } else {
            if (kv->type != SALM_F32) return sa_err("%s: metadata '%s' must be f32", s->path, key);
            memcpy(p, &kv->v.f32, sizeof(float));
        }
    }
    if ((unsigned)h->act > SA_ACT_GELU_TANH) return sa_err("%s: metadata 'hp.act' = %d is unknown", s->path, (int)h->act);
    if (sa_hparams_validate(h)) return sa_err_prefix("%s: ", s->path);
    return 0;
}

/* ---- tokenizer spec ---- */

int sa_tok_spec_write(SalmWriter *w, const SaTokSpec *t) {
    if (t->n_vocab <= 0 || !t->tokens) return sa_err("tokenizer: empty vocabulary");
    if (salm_writer_str(w, "tok.model", t->model == SA_TOK_BPE ? "bpe" : "spm")) return -1;
    if (salm_writer_arr_str(w, "tok.tokens", t->tokens, (uint64_t)t->n_vocab)) return -1;
    if (t->scores && salm_writer_arr_f32(w, "tok.scores", t->scores, (uint64_t)t->n_vocab)) return -1;
    if (t->types && salm_writer_arr_i32(w, "tok.types", t->types, (uint64_t)t->n_vocab)) return -1;
    if (t->merges && salm_writer_arr_str(w, "tok.merges", t->merges, (uint64_t)t->n_merges)) return -1;
    if (salm_writer_i32(w, "tok.bos_id", t->bos_id) || salm_writer_i32(w, "tok.eos_id", t->eos_id) ||
        salm_writer_i32(w, "tok.unk_id", t->unk_id) || salm_writer_i32(w, "tok.pad_id", t->pad_id) ||
        salm_writer_i32(w, "tok.eot_id", t->eot_id) || salm_writer_i32(w, "tok.add_bos", t->add_bos) ||
        salm_writer_i32(w, "tok.add_eos", t->add_eos) || salm_writer_i32(w, "tok.add_space_prefix", t->add_space_prefix))
        return -1;
    if (t->split_user_defined && salm_writer_i32(w, "tok.split_user_defined", 1)) return -1;
    if (t->pre && salm_writer_str(w, "tok.pre", t->pre)) return -1;
    return 0;
}

static int get_id(const Salm *s, const char *key, int n_vocab, int *out) {
    int32_t v;
    if (salm_get_i32(s, key, &v)) return -1;
    if (v < -1 || v >= n_vocab) return sa_err("%s: metadata '%s' = %d is not a token id (vocab %d)", s->path, key, v, n_vocab);
    *out = v;
    return 0;
}

int sa_tok_spec_read(const Salm *s, SaTokSpec *t) {
    memset(t, 0, sizeof *t);
    const char *model = salm_get_str(s, "tok.model");
    if (!model) return sa_err("%s: missing metadata 'tok.model'", s->path);
    if (strcmp(model, "spm") == 0) t->model = SA_TOK_SPM;
    else if (strcmp(model, "bpe") == 0) t->model = SA_TOK_BPE;
    else return sa_err("%s: unknown tokenizer model '%s'", s->path, model);
    const SalmKV *tok = salm_kv(s, "tok.tokens");
    if (!tok || tok->type != SALM_ARR_STR || tok->n == 0 || tok->n > (1u << 24))
        return sa_err("%s: metadata 'tok.tokens' missing or not a string array", s->path);
    int n = (int)tok->n;
    t->n_vocab = n;
    t->tokens = sa_calloc((size_t)n, sizeof(char *));
    if (!t->tokens) return -1;
    for (int i = 0; i < n; i++)
        if (!(t->tokens[i] = sa_strdup(tok->strs[i]))) goto fail;
    const SalmKV *sc = salm_kv(s, "tok.scores");
    if (sc) {
        if (sc->type != SALM_ARR_F32 || sc->n != (uint64_t)n) {
            sa_err("%s: metadata 'tok.scores' must be %d floats", s->path, n);
            goto fail;
        }
        if (!(t->scores = sa_malloc((size_t)n * 4))) goto fail;
        memcpy(t->scores, sc->arr, (size_t)n * 4);
    }
    const SalmKV *ty = salm_kv(s, "tok.types");
    if (ty) {
        if (ty->type != SALM_ARR_I32 || ty->n != (uint64_t)n) {
            sa_err("%s: metadata 'tok.types' must be %d integers", s->path, n);
            goto fail;
        }
        if (!(t->types = sa_malloc((size_t)n * 4))) goto fail;
        memcpy(t->types, ty->arr, (size_t)n * 4);
    }
    const SalmKV *mg = salm_kv(s, "tok.merges");
    if (mg) {
        if (mg->type != SALM_ARR_STR || mg->n > (1u << 24)) {
            sa_err("%s: metadata 'tok.merges' must be a string array", s->path);
            goto fail;
        }
        t->n_merges = (int)mg->n;
        if (!(t->merges = sa_calloc(mg->n, sizeof(char *)))) goto fail;
        for (uint64_t i = 0; i < mg->n; i++)
            if (!(t->merges[i] = sa_strdup(mg->strs[i]))) goto fail;
    }
    int32_t v;
    if (get_id(s, "tok.bos_id", n, &t->bos_id) || get_id(s, "tok.eos_id", n, &t->eos_id) ||
        get_id(s, "tok.unk_id", n, &t->unk_id) || get_id(s, "tok.pad_id", n, &t->pad_id) ||
        get_id(s, "tok.eot_id", n, &t->eot_id))
        goto fail;
    if (salm_get_i32(s, "tok.add_bos", &v)) goto fail;
    t->add_bos = v != 0;
    if (salm_get_i32(s, "tok.add_eos", &v)) goto fail;
    t->add_eos = v != 0;
    if (salm_get_i32(s, "tok.add_space_prefix", &v)) goto fail;
    if (v < SA_PREFIX_NONE || v > SA_PREFIX_METASPACE_FIRST) {
        sa_err("%s: metadata 'tok.add_space_prefix' = %d is not a known prefix mode", s->path, v);
        goto fail;
    }
    t->add_space_prefix = v;
    const SalmKV *sud = salm_kv(s, "tok.split_user_defined");
    if (sud) {
        if (sud->type != SALM_I32) {
            sa_err("%s: metadata 'tok.split_user_defined' must be i32", s->path);
            goto fail;
        }
        t->split_user_defined = sud->v.i32 != 0;
    }
    const char *pre = salm_get_str(s, "tok.pre");
    if (pre && !(t->pre = sa_strdup(pre))) goto fail;
    return 0;
fail:
    sa_tok_spec_free(t);
    return -1;
}
