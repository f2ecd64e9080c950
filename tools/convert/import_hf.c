/* import_hf.c - a Hugging Face model directory as a conversion source.
 *
 * A directory holds config.json (architecture and hyperparameters), the weights as
 * model.safetensors or as shards listed in model.safetensors.index.json, and tokenizer.json +
 * tokenizer_config.json (vocabulary, special tokens, chat template).
 *
 * What this file has to get right, per architecture, so that the .salm computes what the HF
 * model computes:
 *  - names: HF module paths -> llama.cpp's GGUF names (the .salm names). Shapes need no change:
 *    an HF Linear weight is [out, in] row-major, which is GGUF's ne = {in, out}.
 *  - RoPE: HF applies rotate_half to unpermuted q/k, i.e. it pairs x[i] with x[i + d/2]
 *    (SA_ROPE_HALF); llama.cpp's converter permutes llama q/k rows instead, we do not.
 *  - Gemma: RMSNorm computes x * (1 + w) in fp32, so the stored multiplier is 1 + w, computed in
 *    fp32 here (FORMAT.md); embeddings are scaled by sqrt(hidden_size) *rounded to the model's
 *    dtype* (HF builds that scalar as a tensor of the hidden states' dtype).
 *  - Gemma 2: soft-capping, pre/post norms, sliding window on even layers, query_pre_attn_scalar.
 *  - score models (PKU-Alignment's beaver reward/cost models: safe-rlhf's LlamaForScore, called
 *    LlamaModelForScore in the v1.0 checkpoints): a Llama whose lm_head is replaced by
 *    score_head, a Linear(hidden_size, score_dim = 1, bias = config "bias") read at the last token;
 *    stored as score.weight (+ score.bias). Its normalizer buffers (normalizer.mean/var/count) only
 *    matter with do_normalize, which is refused.
 * Every field of config.json that changes the computation is read and checked; a value we
 * cannot compute faithfully is refused with the file and field named, never ignored. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../src/json.h"
#include "../../src/common.h"
#include "import.h"
#include "safetensors.h"

/* ---- the tensors' owner: every mapped shard ---- */

typedef struct {
    SafeTensors *shards;
    int n_shards;
} HfFiles;

static void hf_files_free(void *p) {
    HfFiles *f = p;
    if (!f) return;
    for (int i = 0; i < f->n_shards; i++) st_close(&f->shards[i]);
    free(f->shards);
    free(f);
}

/* ---- typed access to config.json; every failure names the file and the field ---- */

typedef struct {
    const char *file;
    const cJSON *root;
} Cfg;

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return j && !cJSON_IsNull(j) ? j : NULL; /* null means "use the default", as in HF configs */
}

/* Integer field in [lo, hi]; absent/null: dflt, or an error when required. `where` prefixes
 * the key in messages (e.g. "rope_scaling."). */
static int cfg_int(const Cfg *c, const cJSON *obj, const char *where, const char *key, int required, long long dflt,
                   long long lo, long long hi, long long *out) {
    const cJSON *j = field(obj, key);
    if (!j) {
        if (required) return sa_err("%s: %s%s: missing", c->file, where, key);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 9.0e15)
        return sa_err("%s: %s%s: expected an integer", c->file, where, key);
    long long v = (long long)j->valuedouble;
    if (v < lo || v > hi) return sa_err("%s: %s%s = %lld: must be from %lld to %lld", c->file, where, key, v, lo, hi);
    *out = v;
    return 0;
}

static int cfg_i(const Cfg *c, const char *key, int required, int dflt, int lo, int hi, int *out) {
    long long v;
    if (cfg_int(c, c->root, "", key, required, dflt, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* Number field, finite, > 0 (or >= 0 with allow_zero). */
static int cfg_num(const Cfg *c, const cJSON *obj, const char *where, const char *key, int required, double dflt,
                   int allow_zero, double *out) {
    const cJSON *j = field(obj, key);
    if (!j) {
        if (required) return sa_err("%s: %s%s: missing", c->file, where, key);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return sa_err("%s: %s%s: expected a number", c->file, where, key);
    double v = j->valuedouble;
    if (v < 0 || (v == 0 && !allow_zero))
        return sa_err("%s: %s%s = %g: must be %s", c->file, where, key, v, allow_zero ? "zero or positive" : "positive");
    *out = v;
    return 0;
}

static int cfg_bool(const Cfg *c, const char *key, int dflt, int *out) {
    const cJSON *j = field(c->root, key);
    if (!j) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(j)) return sa_err("%s: %s: expected true or false", c->file, key);
    *out = cJSON_IsTrue(j);
    return 0;
}

static int cfg_str(const Cfg *c, const cJSON *obj, const char *where, const char *key, const char **out) {
    const cJSON *j = field(obj, key);
    *out = NULL;
    if (!j) return 0;
    if (!cJSON_IsString(j)) return sa_err("%s: %s%s: expected a string", c->file, where, key);
    *out = j->valuestring;
    return 0;
}

/* A string from a file, safe to show on one line. */
static const char *shown(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) buf[n++] = ((unsigned char)*s >= 0x20 && *s != 0x7f) ? *s : '?';
    if (*s) n += (size_t)snprintf(buf + n, cap - n, "...");
    buf[n] = 0;
    return buf;
}

/* ---- architectures ---- */

typedef struct {
    const char *hf_name;  /* config.json architectures[0] */
    SaArch arch;
    int tie_default;      /* HF's default for tie_word_embeddings */
    int ctx_default;      /* HF's default for max_position_embeddings */
    int gemma;            /* norms store w for x * (1 + w); embeddings scaled; GeGLU */
    int score;            /* a score model: score_head instead of lm_head */
} HfArch;

static const HfArch hf_archs[] = {
    {"LlamaForCausalLM", SA_ARCH_LLAMA, 0, 2048, 0, 0},
    {"MistralForCausalLM", SA_ARCH_LLAMA, 0, 4096 * 32, 0, 0},
    {"Qwen2ForCausalLM", SA_ARCH_QWEN2, 0, 32768, 0, 0},
    {"GemmaForCausalLM", SA_ARCH_GEMMA, 1, 8192, 1, 0},
    {"Gemma2ForCausalLM", SA_ARCH_GEMMA2, 1, 8192, 1, 0},
    {"LlamaForScore", SA_ARCH_LLAMA, 0, 2048, 0, 1},
    {"LlamaModelForScore", SA_ARCH_LLAMA, 0, 2048, 0, 1},
};

/* torch dtype names in config.json ("torch_dtype", or "dtype" in newer transformers). */
static int dtype_from_torch(const char *s) {
    if (!strcmp(s, "bfloat16")) return SA_BF16;
    if (!strcmp(s, "float16") || !strcmp(s, "half")) return SA_F16;
    if (!strcmp(s, "float32") || !strcmp(s, "float")) return SA_F32;
    return -1;
}

/* rope_scaling (or transformers 5's rope_parameters): "default" / absent: none; "linear":
 * positions divided by factor; "llama3": Llama 3.1's frequency-dependent scaling. Other types
 * (dynamic NTK, YaRN, LongRoPE) change the computation in ways src/context.c does not do. */
static int read_rope(const Cfg *c, const cJSON *rs, const char *where, SaHparams *h) {
    if (!rs) return 0;
    if (!cJSON_IsObject(rs)) return sa_err("%s: %.*s: expected an object or null", c->file, (int)strlen(where) - 1, where);
    const char *type;
    if (cfg_str(c, rs, where, "rope_type", &type)) return -1;
    if (!type && cfg_str(c, rs, where, "type", &type)) return -1; /* the older spelling */
    if (!type || !strcmp(type, "default")) return 0;
    double v;
    if (!strcmp(type, "linear")) {
        if (cfg_num(c, rs, where, "factor", 1, 0, 0, &v)) return -1;
        h->rope_scaling = SA_ROPE_SCALING_LINEAR;
        h->rope_factor = (float)v;
        return 0;
    }
    if (!strcmp(type, "llama3")) {
        double lo, hi;
        long long octx;
        if (cfg_num(c, rs, where, "factor", 1, 0, 0, &v) || cfg_num(c, rs, where, "low_freq_factor", 1, 0, 0, &lo) ||
            cfg_num(c, rs, where, "high_freq_factor", 1, 0, 0, &hi) ||
            cfg_int(c, rs, where, "original_max_position_embeddings", 1, 0, 1, 1 << 30, &octx))
            return -1;
        if (!(hi > lo))
            return sa_err("%s: %shigh_freq_factor = %g must be greater than low_freq_factor = %g", c->file, where, hi, lo);
        h->rope_scaling = SA_ROPE_SCALING_LLAMA3;
        h->rope_factor = (float)v;
        h->rope_low_freq_factor = (float)lo;
        h->rope_high_freq_factor = (float)hi;
        h->rope_orig_ctx = (int)octx;
        return 0;
    }
    char b[40];
    return sa_err("%s: %srope_type \"%s\" is not supported (default, linear, llama3)", c->file, where,
                  shown(type, b, sizeof b));
}

/* Everything config.json says, checked. `dtype_out`: the model's torch dtype, -1 if unstated. */
static int read_config(const Cfg *c, const HfArch *a, SaHparams *h, int *dtype_out) {
    memset(h, 0, sizeof *h);
    h->arch = a->arch;
    const int big = 1 << 30;
    int hidden, heads;
    if (cfg_i(c, "hidden_size", 1, 0, 1, 1 << 17, &hidden) || cfg_i(c, "num_hidden_layers", 1, 0, 1, 4096, &h->n_layer) ||
        cfg_i(c, "num_attention_heads", 1, 0, 1, 4096, &heads) || cfg_i(c, "intermediate_size", 1, 0, 1, 1 << 20, &h->n_ff) ||
        cfg_i(c, "vocab_size", 1, 0, 1, 1 << 24, &h->n_vocab) ||
        cfg_i(c, "num_key_value_heads", 0, heads, 1, 4096, &h->n_head_kv) ||
        cfg_i(c, "max_position_embeddings", 0, a->ctx_default, 1, big, &h->n_ctx_train))
        return -1;
    h->n_embd = hidden;
    h->n_head = heads;
    if (heads % h->n_head_kv)
        return sa_err("%s: num_attention_heads = %d is not a multiple of num_key_value_heads = %d", c->file, heads,
                      h->n_head_kv);
    /* head_dim: explicit (Gemma: 256 whatever hidden_size is), else hidden_size / heads */
    if (field(c->root, "head_dim")) {
        if (cfg_i(c, "head_dim", 1, 0, 2, 4096, &h->head_dim)) return -1;
    } else {
        if (hidden % heads)
            return sa_err("%s: hidden_size = %d is not a multiple of num_attention_heads = %d (and there is no head_dim)",
                          c->file, hidden, heads);
        h->head_dim = hidden / heads;
    }
    if (h->head_dim % 2) return sa_err("%s: head_dim = %d must be even (RoPE rotates pairs)", c->file, h->head_dim);

    double eps, theta;
    if (cfg_num(c, c->root, "", "rms_norm_eps", 0, 1e-6, 0, &eps)) return -1;
    h->norm_eps = (float)eps;
    /* rope: transformers 5 moved rope_theta and the scaling into rope_parameters */
    const cJSON *rp = field(c->root, "rope_parameters");
    if (rp) {
        if (!cJSON_IsObject(rp)) return sa_err("%s: rope_parameters: expected an object", c->file);
        if (cfg_num(c, rp, "rope_parameters.", "rope_theta", 0, 10000.0, 0, &theta)) return -1;
        if (read_rope(c, rp, "rope_parameters.", h)) return -1;
    } else {
        if (cfg_num(c, c->root, "", "rope_theta", 0, 10000.0, 0, &theta)) return -1;
        if (read_rope(c, field(c->root, "rope_scaling"), "rope_scaling.", h)) return -1;
    }
    h->rope_theta = (float)theta;
    /* HF checkpoints rotate (x[i], x[i + d/2]) of unpermuted q/k */
    h->rope_pairing = SA_ROPE_HALF;
    if (cfg_bool(c, "tie_word_embeddings", a->tie_default, &h->tied_output)) return -1;
    if (a->score) {
        /* safe-rlhf's defaults: score_dim 1, bias false, do_normalize false */
        int bias, norm;
        long long dim;
        if (cfg_int(c, c->root, "", "score_dim", 0, 1, 1, 1 << 20, &dim) || cfg_bool(c, "bias", 0, &bias) ||
            cfg_bool(c, "do_normalize", 0, &norm))
            return -1;
        if (dim != 1) return sa_err("%s: score_dim = %lld: only one score per token is supported", c->file, dim);
        if (norm)
            return sa_err("%s: do_normalize = true: normalised scores are not supported (the raw score_head output is)",
                          c->file);
        h->score_head = 1;
        h->score_bias = bias;
        h->tied_output = 0; /* there is no output matrix (tie_word_embeddings only ties lm_head) */
    }

    /* what the arch's traits assume must be what the config says */
    int bias = 0, mlp_bias = 0;
    if (cfg_bool(c, "attention_bias", 0, &bias) || cfg_bool(c, "mlp_bias", 0, &mlp_bias)) return -1;
    if (a->arch != SA_ARCH_QWEN2 && bias)
        return sa_err("%s: attention_bias = true: attention biases are not supported for %s", c->file, a->hf_name);
    if (mlp_bias) return sa_err("%s: mlp_bias = true: MLP biases are not supported", c->file);
    const char *act = NULL, *act2 = NULL;
    if (cfg_str(c, c->root, "", "hidden_act", &act) || cfg_str(c, c->root, "", "hidden_activation", &act2)) return -1;
    char b[40];
    if (a->gemma) {
        /* Gemma is a tanh-GELU model. The first Gemma configs say hidden_act "gelu", which was
         * wrong; transformers ignores hidden_act for Gemma unless hidden_activation is set
         * (transformers PR 29402), and llama.cpp uses the tanh GELU. */
        const char *eff = act2 ? act2 : "gelu_pytorch_tanh";
        if (strcmp(eff, "gelu_pytorch_tanh") != 0 && strcmp(eff, "gelu_new") != 0)
            return sa_err("%s: hidden_activation \"%s\" is not supported (gelu_pytorch_tanh)", c->file, shown(eff, b, sizeof b));
        if (!act2 && act && strcmp(act, "gelu") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0 && strcmp(act, "gelu_new") != 0)
            return sa_err("%s: hidden_act \"%s\" is not supported (gelu_pytorch_tanh)", c->file, shown(act, b, sizeof b));
    } else {
        if (act && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
            return sa_err("%s: hidden_act \"%s\" is not supported (silu)", c->file, shown(act, b, sizeof b));
    }
    sa_hparams_defaults(h); /* act, qkv_bias, post_norms from the architecture */

    if (a->arch == SA_ARCH_QWEN2) {
        int sw = 0;
        if (cfg_bool(c, "use_sliding_window", 0, &sw)) return -1;
        if (sw) return sa_err("%s: use_sliding_window = true is not supported", c->file);
    }
    if (a->arch == SA_ARCH_LLAMA) {
        /* Mistral 7B v0.1 declares sliding_window 4096 on every layer. Like llama.cpp we attend
         * to the whole context: identical up to 4096 positions (the default context size). */
        long long sw;
        if (cfg_int(c, c->root, "", "sliding_window", 0, 0, 0, big, &sw)) return -1;
    }
    if (a->arch == SA_ARCH_GEMMA2) {
        double acap, fcap, qpa;
        long long sw;
        if (cfg_num(c, c->root, "", "attn_logit_softcapping", 0, 0, 1, &acap) ||
            cfg_num(c, c->root, "", "final_logit_softcapping", 0, 0, 1, &fcap) ||
            cfg_num(c, c->root, "", "query_pre_attn_scalar", 0, 256, 0, &qpa) ||
            cfg_int(c, c->root, "", "sliding_window", 0, 4096, 1, big, &sw))
            return -1;
        h->attn_softcap = (float)acap;
        h->final_softcap = (float)fcap;
        /* HF: scaling = query_pre_attn_scalar ** -0.5, a Python float applied to fp32 scores */
        h->query_scale = (float)(1.0 / sqrt(qpa));
        h->sliding_window = (int)sw;
        /* newer configs spell the layer pattern out; we implement sliding on even layers */
        const cJSON *lt = field(c->root, "layer_types");
        if (lt) {
            if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != h->n_layer)
                return sa_err("%s: layer_types: expected an array of %d strings", c->file, h->n_layer);
            for (int i = 0; i < h->n_layer; i++) {
                const cJSON *e = cJSON_GetArrayItem(lt, i);
                const char *want = i % 2 == 0 ? "sliding_attention" : "full_attention";
                if (!cJSON_IsString(e) || strcmp(e->valuestring, want) != 0)
                    return sa_err("%s: layer_types[%d]: expected \"%s\" (sliding window on even layers is supported)",
                                  c->file, i, want);
            }
        }
    }
    *dtype_out = -1;
    const char *dt = NULL;
    if (cfg_str(c, c->root, "", "torch_dtype", &dt)) return -1;
    if (!dt && cfg_str(c, c->root, "", "dtype", &dt)) return -1;
    if (dt) {
        *dtype_out = dtype_from_torch(dt);
        if (*dtype_out < 0)
            return sa_err("%s: torch_dtype \"%s\" is not supported (bfloat16, float16, float32)", c->file, shown(dt, b, sizeof b));
    }
    if (sa_hparams_validate(h)) return sa_err_prefix("%s: ", c->file);
    return 0;
}

/* ---- weights ---- */

/* Shard file names come from the index: keep them inside the directory. */
static int plain_name(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static int open_weights(const char *dir, HfFiles *files, char **index_path) {
    char *single = sa_path_join(dir, "model.safetensors");
    *index_path = sa_path_join(dir, "model.safetensors.index.json");
    if (!single || !*index_path) {
        free(single);
        return -1;
    }
    /* transformers looks for the single file first */
    if (sa_is_file(single)) {
        free(*index_path);
        *index_path = NULL;
        files->shards = sa_calloc(1, sizeof *files->shards);
        if (!files->shards) {
            free(single);
            return -1;
        }
        int rc = st_open(&files->shards[0], single);
        free(single);
        if (rc) return -1;
        files->n_shards = 1;
        return 0;
    }
    free(single);
    if (!sa_is_file(*index_path))
        return sa_err("%s: no model.safetensors or model.safetensors.index.json (only safetensors weights are read)", dir);
    cJSON *idx = sa_json_read_object(*index_path);
    if (!idx) return -1;
    int rc = -1;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        sa_err("%s: weight_map: missing or not an object of tensor -> file", *index_path);
        goto done;
    }
    int n = 0;
    for (const cJSON *e = wm->child; e; e = e->next) n++;
    files->shards = sa_calloc((size_t)n, sizeof *files->shards);
    if (!files->shards) goto done;
    for (const cJSON *e = wm->child; e; e = e->next) {
        char b[80];
        if (!cJSON_IsString(e) || !plain_name(e->valuestring)) {
            sa_err("%s: weight_map: tensor %s: expected a file name in the same directory", *index_path,
                   shown(e->string, b, sizeof b));
            goto done;
        }
        int known = 0;
        for (int i = 0; i < files->n_shards && !known; i++) {
            const char *p = strrchr(files->shards[i].path, '/');
            known = strcmp(p ? p + 1 : files->shards[i].path, e->valuestring) == 0;
        }
        if (known) continue;
        char *path = sa_path_join(dir, e->valuestring);
        if (!path) goto done;
        int r = st_open(&files->shards[files->n_shards], path);
        free(path);
        if (r) goto done;
        files->n_shards++;
    }
    /* every tensor the index names must be in the shard it names, and named once */
    for (const cJSON *e = wm->child; e; e = e->next) {
        char b[80];
        for (const cJSON *f = wm->child; f != e; f = f->next)
            if (strcmp(f->string, e->string) == 0) {
                sa_err("%s: weight_map: tensor %s is listed twice", *index_path, shown(e->string, b, sizeof b));
                goto done;
            }
        const SafeTensors *sh = NULL;
        for (int i = 0; i < files->n_shards; i++) {
            const char *p = strrchr(files->shards[i].path, '/');
            if (strcmp(p ? p + 1 : files->shards[i].path, e->valuestring) == 0) sh = &files->shards[i];
        }
        if (!sh || !st_find(sh, e->string)) {
            sa_err("%s: tensor %s: not in %s, where the index puts it", *index_path, shown(e->string, b, sizeof b),
                   e->valuestring);
            goto done;
        }
    }
    rc = 0;
done:
    cJSON_Delete(idx);
    return rc;
}

/* Gemma norms: the file stores w, the model multiplies by (1 + w) computed in fp32. The
 * tensor's `aux` is the source bytes, `group` their dtype. */
static void decode_plus_one(const SaConvTensor *t, int64_t row0, int64_t nrows, float *dst) {
    const SaDtype sd = (SaDtype)t->group;
    const size_t rb = sa_row_bytes(sd, t->ne[0]);
    for (int64_t r = 0; r < nrows; r++) {
        float *d = dst + r * t->ne[0];
        sa_dequantize_row(sd, (const uint8_t *)t->aux + (uint64_t)(row0 + r) * rb, d, t->ne[0]);
        for (int64_t j = 0; j < t->ne[0]; j++) d[j] += 1.0f;
    }
}

/* HF name -> GGUF name. Returns 1 and fills out; 0 for a tensor to skip; -1 for an unknown one. */
static int map_name(const HfArch *a, const SaHparams *h, const char *name, char *out, size_t cap) {
    static const struct {
        const char *hf, *gguf;
    } top[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    if (a->score) {
        if (!strcmp(name, "score_head.weight") || (h->score_bias && !strcmp(name, "score_head.bias"))) {
            snprintf(out, cap, "score.%s", name + strlen("score_head."));
            return 1;
        }
        /* lm_head: a score model has none (safe-rlhf ignores one); the normalizer: unused without do_normalize */
        if (!strcmp(name, "lm_head.weight") || !strncmp(name, "normalizer.", 11)) return 0;
    }
    for (size_t i = 0; i < SA_ARRAY_LEN(top); i++)
        if (!strcmp(name, top[i].hf)) {
            /* tied: HF replaces lm_head by the embedding; a stored copy is ignored, as there */
            if (i == 2 && h->tied_output) return 0;
            snprintf(out, cap, "%s", top[i].gguf);
            return 1;
        }
    const char *pre = "model.layers.";
    if (strncmp(name, pre, strlen(pre)) != 0) return -1;
    const char *p = name + strlen(pre);
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    long layer = 0;
    while (*p >= '0' && *p <= '9' && layer < 1000000) layer = layer * 10 + (*p++ - '0');
    if (*p++ != '.') return -1;
    const int g2 = a->arch == SA_ARCH_GEMMA2;
    static const struct {
        const char *hf, *gguf, *gguf_gemma2;
    } blk[] = {
        {"input_layernorm.weight", "attn_norm.weight", NULL},
        {"self_attn.q_proj.weight", "attn_q.weight", NULL},
        {"self_attn.k_proj.weight", "attn_k.weight", NULL},
        {"self_attn.v_proj.weight", "attn_v.weight", NULL},
        {"self_attn.q_proj.bias", "attn_q.bias", NULL},
        {"self_attn.k_proj.bias", "attn_k.bias", NULL},
        {"self_attn.v_proj.bias", "attn_v.bias", NULL},
        {"self_attn.o_proj.weight", "attn_output.weight", NULL},
        /* Gemma 2 has four norms per block; the others call the pre-FFN norm post_attention_layernorm */
        {"post_attention_layernorm.weight", "ffn_norm.weight", "post_attention_norm.weight"},
        {"pre_feedforward_layernorm.weight", NULL, "ffn_norm.weight"},
        {"post_feedforward_layernorm.weight", NULL, "post_ffw_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight", NULL},
        {"mlp.up_proj.weight", "ffn_up.weight", NULL},
        {"mlp.down_proj.weight", "ffn_down.weight", NULL},
    };
    /* precomputed RoPE tables some older checkpoints carry; recomputed at load */
    if (!strcmp(p, "self_attn.rotary_emb.inv_freq")) return 0;
    for (size_t i = 0; i < SA_ARRAY_LEN(blk); i++) {
        if (strcmp(p, blk[i].hf) != 0) continue;
        const char *g = g2 && blk[i].gguf_gemma2 ? blk[i].gguf_gemma2 : blk[i].gguf;
        if (!g) return -1;
        snprintf(out, cap, "blk.%ld.%s", layer, g);
        return 1;
    }
    return -1;
}

static int add_tensors(SaConvSource *src, const HfArch *a, const HfFiles *files) {
    for (int s = 0; s < files->n_shards; s++) {
        const SafeTensors *sh = &files->shards[s];
        for (int i = 0; i < sh->n_tensors; i++) {
            const StTensor *t = &sh->tensors[i];
            char gname[96], b[80];
            int m = map_name(a, &src->hp, t->name, gname, sizeof gname);
            if (m == 0) continue;
            if (m < 0)
                return sa_err("%s: tensor %s is not part of a %s model", sh->path, shown(t->name, b, sizeof b), a->hf_name);
            if (t->dtype < 0)
                return sa_err("%s: tensor %s: dtype %s is not supported (BF16, F16, F32)", sh->path,
                              shown(t->name, b, sizeof b), t->dtype_name);
            if (t->n_dims < 1 || t->n_dims > 2)
                return sa_err("%s: tensor %s: %d dimensions, expected a vector or a matrix", sh->path,
                              shown(t->name, b, sizeof b), t->n_dims);
            if (sa_conv_find(src, gname))
                return sa_err("%s: tensor %s: appears in two shards", sh->path, shown(t->name, b, sizeof b));
            int64_t ne[2] = {t->shape[t->n_dims - 1], t->n_dims == 2 ? t->shape[0] : 1}; /* [out, in] -> {in, out} */
            if (ne[0] == 0 || ne[1] == 0)
                return sa_err("%s: tensor %s: has no elements", sh->path, shown(t->name, b, sizeof b));
            const size_t len = strlen(gname);
            const int norm = len > 11 && !strcmp(gname + len - 11, "norm.weight");
            if (a->gemma && norm) {
                SaConvTensor *ct = sa_conv_add(src, gname, SA_F32, t->n_dims, ne, NULL, 0);
                if (!ct) return -1;
                ct->decode = decode_plus_one;
                ct->aux = t->data;
                ct->group = t->dtype;
            } else if (!sa_conv_add(src, gname, (SaDtype)t->dtype, t->n_dims, ne, t->data, t->nbytes)) {
                return -1;
            }
        }
    }
    return 0;
}

/* config.json's vocab_size may exceed the tokenizer's tokens (Qwen2: 151936 rows for 151665
 * tokens): the extra embedding rows get placeholder tokens, as llama.cpp's converter does
 * ("[PAD<id>]", unused), so ids and rows stay one to one. */
int sa_tok_spec_pad(SaTokSpec *t, int n) {
    if (n <= t->n_vocab) return 0;
    char **tok = sa_realloc(t->tokens, (size_t)n * sizeof *tok);
    if (!tok) return -1;
    t->tokens = tok;
    if (!t->types) {
        if (!(t->types = sa_malloc((size_t)n * sizeof *t->types))) return -1;
        for (int i = 0; i < t->n_vocab; i++) t->types[i] = SA_TT_NORMAL;
    } else {
        int32_t *ty = sa_realloc(t->types, (size_t)n * sizeof *ty);
        if (!ty) return -1;
        t->types = ty;
    }
    if (t->scores) {
        float *sc = sa_realloc(t->scores, (size_t)n * sizeof *sc);
        if (!sc) return -1;
        t->scores = sc;
    }
    for (int i = t->n_vocab; i < n; i++) {
        char b[32];
        snprintf(b, sizeof b, "[PAD%d]", i);
        if (!(t->tokens[i] = sa_strdup(b))) return -1;
        t->types[i] = SA_TT_UNUSED;
        if (t->scores) t->scores[i] = 0.0f;
        t->n_vocab = i + 1; /* the spec stays consistent if a later allocation fails */
    }
    return 0;
}

/* Does the directory have a chat template at all (so that failing to read one is an error)? */
static int has_chat_template(const char *dir) {
    char *jinja = sa_path_join(dir, "chat_template.jinja"), *cfgp = sa_path_join(dir, "tokenizer_config.json");
    int has = jinja && sa_is_file(jinja);
    if (!has && cfgp && sa_is_file(cfgp)) {
        cJSON *cfg = sa_json_read_object(cfgp);
        has = cfg && field(cfg, "chat_template") != NULL;
        cJSON_Delete(cfg);
        if (!cfg) has = 1; /* unreadable: let the reader report it */
    }
    free(jinja);
    free(cfgp);
    return has;
}

int sa_import_hf(const char *dir, SaConvSource *src) {
    memset(src, 0, sizeof *src);
    src->kind = "HF safetensors";
    if (!(src->path = sa_strdup(dir))) return -1;
    HfFiles *files = sa_calloc(1, sizeof *files);
    if (!files) goto fail;
    src->owner = files;
    src->owner_free = hf_files_free;

    char *cfg_path = sa_path_join(dir, "config.json"), *index_path = NULL;
    if (!cfg_path) goto fail;
    if (!sa_is_file(cfg_path)) {
        sa_err("%s: missing (an HF model directory needs config.json)", cfg_path);
        free(cfg_path);
        goto fail;
    }
    cJSON *root = sa_json_read_object(cfg_path);
    if (!root) {
        free(cfg_path);
        goto fail;
    }
    Cfg c = {cfg_path, root};
    const HfArch *a = NULL;
    int dtype = -1, rc = -1;
    const cJSON *archs = field(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        sa_err("%s: architectures: missing or not an array of strings", cfg_path);
        goto cfg_done;
    }
    for (size_t i = 0; i < SA_ARRAY_LEN(hf_archs); i++)
        if (!strcmp(a0->valuestring, hf_archs[i].hf_name)) a = &hf_archs[i];
    if (!a) {
        char b[60];
        sa_err("%s: architectures[0]: \"%s\" is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
               "GemmaForCausalLM, Gemma2ForCausalLM, LlamaForScore, LlamaModelForScore)",
               cfg_path, shown(a0->valuestring, b, sizeof b));
        goto cfg_done;
    }
    rc = read_config(&c, a, &src->hp, &dtype);
cfg_done:
    cJSON_Delete(root);
    if (rc) {
        free(cfg_path);
        goto fail;
    }

    if (open_weights(dir, files, &index_path)) {
        free(cfg_path);
        free(index_path);
        goto fail;
    }
    rc = add_tensors(src, a, files);
    free(index_path);
    if (rc) {
        free(cfg_path);
        goto fail;
    }
    if (a->gemma) {
        /* HF makes the scale a tensor of the hidden states' dtype: sqrt(2048) = 45.2548 is 45.25
         * in bf16. The model's dtype is torch_dtype, else the embedding's. (llama.cpp, and so our
         * GGUF path, multiplies by the fp32 sqrtf instead.) */
        if (dtype < 0) {
            const SaConvTensor *e = sa_conv_find(src, "token_embd.weight");
            dtype = e ? (int)e->dtype : SA_F32;
        }
        float s = (float)sqrt((double)src->hp.n_embd);
        if (dtype == SA_BF16) s = sa_bf16_to_fp32(sa_fp32_to_bf16(s));
        else if (dtype == SA_F16) s = sa_fp16_to_fp32(sa_fp32_to_fp16(s));
        src->hp.embd_scale = s;
    }
    free(cfg_path);

    /* tokenizer and chat template */
    char *tj = sa_path_join(dir, "tokenizer.json");
    if (!tj) goto fail;
    if (!sa_is_file(tj)) {
        sa_err("%s: missing (the vocabulary is read from tokenizer.json)", tj);
        free(tj);
        goto fail;
    }
    rc = sa_tok_spec_from_hf(tj, &src->tok);
    free(tj);
    if (rc) goto fail;
    if (src->tok.n_vocab > src->hp.n_vocab) {
        sa_err("%s/config.json: vocab_size = %d is smaller than the tokenizer's %d tokens", dir, src->hp.n_vocab,
               src->tok.n_vocab);
        goto fail;
    }
    /* Padding makes one placeholder token per embedding row beyond the tokenizer's: check that
     * the rows exist first, or a config.json claiming 16M tokens costs gigabytes and half a minute
     * (placeholders, then a tokenizer over them) before the shape check refuses the folder. */
    const SaConvTensor *emb = sa_conv_find(src, "token_embd.weight");
    if (!emb || emb->ne[1] != src->hp.n_vocab) {
        if (emb)
            sa_err("%s/config.json: vocab_size = %d but the embedding (token_embd.weight) has %lld rows", dir,
                   src->hp.n_vocab, (long long)emb->ne[1]);
        else
            sa_err("%s: tensor token_embd.weight (the token embedding) is missing", dir);
        goto fail;
    }
    if (sa_tok_spec_pad(&src->tok, src->hp.n_vocab)) goto fail;
    if (has_chat_template(dir) && !(src->chat_template = sa_hf_chat_template(dir))) goto fail;
    return 0;

fail:
    sa_conv_free(src);
    return -1;
}
