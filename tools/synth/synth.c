/* synth.c - synthetic checkpoints (see synth.h): one tensor list per architecture, a value
 * generator that is a pure function of (seed, tensor, row), and two writers over it (HF
 * safetensors directory, GGUF). */
#include "synth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common.h"
#include "../../src/gguf.h"
#include "../../src/tokenizer.h"
#include "../convert/import.h"
#include "gguf_write.h"

/* ---- architectures ---- */

typedef struct {
    const char *name, *hf_arch, *model_type, *gguf_arch;
    int tied;          /* usual tie_word_embeddings */
    double theta, eps; /* usual rope_theta, rms_norm_eps (double: config.json prints them exactly) */
    int ctx;           /* usual max_position_embeddings */
    int gemma, gemma2, qkv_bias, permute_qk;
} SynArchInfo;

static const SynArchInfo syn_archs[SYN_ARCH_COUNT] = {
    [SYN_LLAMA] = {"llama", "LlamaForCausalLM", "llama", "llama", 0, 500000.0, 1e-5, 131072, 0, 0, 0, 1},
    [SYN_MISTRAL] = {"mistral", "MistralForCausalLM", "mistral", "llama", 0, 1000000.0, 1e-5, 32768, 0, 0, 0, 1},
    [SYN_QWEN2] = {"qwen2", "Qwen2ForCausalLM", "qwen2", "qwen2", 0, 1000000.0, 1e-6, 32768, 0, 0, 1, 0},
    [SYN_GEMMA] = {"gemma", "GemmaForCausalLM", "gemma", "gemma", 1, 10000.0, 1e-6, 8192, 1, 0, 0, 0},
    [SYN_GEMMA2] = {"gemma2", "Gemma2ForCausalLM", "gemma2", "gemma2", 1, 10000.0, 1e-6, 8192, 1, 1, 0, 0},
};

int sa_synth_arch_from_name(const char *name) {
    for (int i = 0; i < SYN_ARCH_COUNT; i++)
        if (!strcmp(name, syn_archs[i].name)) return i;
    return -1;
}

const char *sa_synth_arch_name(int arch) { return (unsigned)arch < SYN_ARCH_COUNT ? syn_archs[arch].name : "?"; }

/* ---- the tensor list ---- */

typedef struct {
    char hf[96], gg[96];
    int n_dims;         /* 1 (vector of `cols`) or 2 */
    int64_t rows, cols; /* HF shape [rows, cols] */
    float mean, std;    /* model values: mean + std * N(0, 1) */
    int gemma_norm;     /* the HF file stores value - 1 (Gemma's x * (1 + w)) */
    int perm_heads;     /* GGUF (llama arch): rows permuted per head for adjacent-pair RoPE */
} SynTensor;

struct SaSynth {
    SaSynthSpec sp;
    const SynArchInfo *ai;
    int head_dim, tied, window, ctx;
    double theta, eps;
    SaTokSpec tok;
    char *tok_dir; /* the folder of tokenizer.json (--vocab-from may name the file itself) */
    char *chat_template;
    SynTensor *t;
    int n_t;
};

static int add_t(SaSynth *s, const char *hf, const char *gg, int n_dims, int64_t rows, int64_t cols, float mean, float std) {
    SynTensor *p = sa_realloc(s->t, ((size_t)s->n_t + 1) * sizeof *p);
    if (!p) return -1;
    s->t = p;
    SynTensor *t = &p[s->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->hf, sizeof t->hf, "%s", hf);
    snprintf(t->gg, sizeof t->gg, "%s", gg);
    t->n_dims = n_dims;
    t->rows = n_dims == 2 ? rows : 1;
    t->cols = cols;
    t->mean = mean;
    t->std = std;
    return 0;
}

/* Scales: a matrix with std 1/sqrt(fan_in) maps unit-RMS inputs to unit-RMS outputs; q/k a bit
 * larger so attention is not uniform; the final norm sets the logits' spread. */
static int build_tensors(SaSynth *s) {
    const SaSynthSpec *sp = &s->sp;
    const int64_t d = sp->hidden, hd = s->head_dim, q = (int64_t)sp->heads * hd, kv = (int64_t)sp->kv_heads * hd;
    const int64_t V = s->tok.n_vocab, F = sp->ff;
    const float isd = 1.0f / sqrtf((float)d);
    const int gemma = s->ai->gemma;
    /* Gemma multiplies the embeddings by sqrt(d): keep the residual stream at unit RMS. With a
     * tied output the logit of the current token holds the term |e_t|^2, which would make a
     * random model repeat its input forever; smaller embeddings leave that term inside the spread
     * of the other logits. */
    const float emb_std = (gemma ? isd : 1.0f) * (s->tied ? 0.3f : 1.0f);
    const float out_std = s->tied ? emb_std : isd;
    const float logit_std = sp->logit_std > 0 ? sp->logit_std : 4.0f;
    const float bs = sp->block_scale > 0 ? sp->block_scale : 1.0f;
    int rc = add_t(s, "model.embed_tokens.weight", "token_embd.weight", 2, V, d, 0, emb_std);
    for (int l = 0; l < sp->layers && !rc; l++) {
        char h[96], g[96];
#define T(hfn, ggn, nd, r, c, mean, std)                                                  \
    do {                                                                                  \
        snprintf(h, sizeof h, "model.layers.%d.%s", l, hfn);                              \
        snprintf(g, sizeof g, "blk.%d.%s", l, ggn);                                       \
        rc |= add_t(s, h, g, nd, r, c, mean, std);                                        \
    } while (0)
        T("input_layernorm.weight", "attn_norm.weight", 1, 1, d, 1.0f, 0.1f);
        T("self_attn.q_proj.weight", "attn_q.weight", 2, q, d, 0, 1.5f * isd);
        if (!rc && s->ai->permute_qk) s->t[s->n_t - 1].perm_heads = sp->heads;
        T("self_attn.k_proj.weight", "attn_k.weight", 2, kv, d, 0, 1.5f * isd);
        if (!rc && s->ai->permute_qk) s->t[s->n_t - 1].perm_heads = sp->kv_heads;
        T("self_attn.v_proj.weight", "attn_v.weight", 2, kv, d, 0, isd);
        if (s->ai->qkv_bias) {
            T("self_attn.q_proj.bias", "attn_q.bias", 1, 1, q, 0, 0.5f);
            T("self_attn.k_proj.bias", "attn_k.bias", 1, 1, kv, 0, 0.5f);
            T("self_attn.v_proj.bias", "attn_v.bias", 1, 1, kv, 0, 0.5f);
        }
        T("self_attn.o_proj.weight", "attn_output.weight", 2, d, q, 0, bs / sqrtf((float)q));
        if (s->ai->gemma2) {
            /* the post-norms set the size of what each block adds to the residual */
            T("post_attention_layernorm.weight", "post_attention_norm.weight", 1, 1, d, bs, 0.1f * bs);
            T("pre_feedforward_layernorm.weight", "ffn_norm.weight", 1, 1, d, 1.0f, 0.1f);
            T("post_feedforward_layernorm.weight", "post_ffw_norm.weight", 1, 1, d, bs, 0.1f * bs);
        } else {
            T("post_attention_layernorm.weight", "ffn_norm.weight", 1, 1, d, 1.0f, 0.1f);
        }
        T("mlp.gate_proj.weight", "ffn_gate.weight", 2, F, d, 0, isd);
        T("mlp.up_proj.weight", "ffn_up.weight", 2, F, d, 0, isd);
        T("mlp.down_proj.weight", "ffn_down.weight", 2, d, F, 0, bs / sqrtf((float)F));
#undef T
    }
    /* logits = norm(x) . W_out: std ~ mult * out_std * sqrt(d) */
    const float mult = logit_std / (out_std * sqrtf((float)d));
    rc |= add_t(s, "model.norm.weight", "output_norm.weight", 1, 1, d, mult, 0.1f * mult);
    if (sp->score) {
        /* safe-rlhf's score model: one score per token instead of the logits (std ~ logit_std), and its
         * normalizer's buffers, which a converter must skip (they only matter with do_normalize) */
        rc |= add_t(s, "score_head.weight", "score.weight", 2, 1, d, 0, out_std);
        if (sp->score == 2) rc |= add_t(s, "score_head.bias", "score.bias", 1, 1, 1, 0.5f, 1.0f);
        rc |= add_t(s, "normalizer.mean", "", 1, 1, 1, 0, 1.0f);
        rc |= add_t(s, "normalizer.var", "", 1, 1, 1, 1.0f, 0.1f);
    } else if (!s->tied) {
        rc |= add_t(s, "lm_head.weight", "output.weight", 2, V, d, 0, out_std);
    }
    if (rc) return -1;
    for (int i = 0; i < s->n_t; i++) {
        size_t n = strlen(s->t[i].gg);
        s->t[i].gemma_norm = gemma && n > 11 && !strcmp(s->t[i].gg + n - 11, "norm.weight");
    }
    return 0;
}

/* ---- values ---- */

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Row `r` of tensor `ti` as model values (before rounding to the file's dtype). */
static void gen_row(const SaSynth *s, int ti, int64_t r, float *dst) {
    const SynTensor *t = &s->t[ti];
    uint64_t st = s->sp.seed * 0xD1B54A32D192ED03ull ^ ((uint64_t)ti + 1) * 0x8CB92BA72F3D8DD7ull ^ ((uint64_t)r + 1) * 0x9E3779B97F4A7C15ull;
    splitmix(&st);
    for (int64_t j = 0; j < t->cols; j += 2) {
        /* Box-Muller in double: the same values on every machine with a correct libm */
        double u1 = ((splitmix(&st) >> 11) + 1) * 0x1.0p-53, u2 = (splitmix(&st) >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1)), a = 2.0 * M_PI * u2;
        dst[j] = t->mean + t->std * (float)(rad * cos(a));
        if (j + 1 < t->cols) dst[j + 1] = t->mean + t->std * (float)(rad * sin(a));
    }
}

static float round_to(SaDtype dt, float x) {
    if (dt == SA_BF16) return sa_bf16_to_fp32(sa_fp32_to_bf16(x));
    if (dt == SA_F16) return sa_fp16_to_fp32(sa_fp32_to_fp16(x));
    return x;
}

/* llama.cpp's permute(): within each head, output row 2i + j comes from input row j * hd/2 + i,
 * so that the half-split pairs (i, i + hd/2) become adjacent pairs (2i, 2i + 1). */
static int64_t permuted_src(const SynTensor *t, int64_t r) {
    if (!t->perm_heads) return r;
    const int64_t hd = t->rows / t->perm_heads, h = r / hd, rr = r % hd;
    return h * hd + (rr % 2) * (hd / 2) + rr / 2;
}

/* Llama 3.2's rope scaling, as llama.cpp's converter writes it: one divisor per frequency. */
static void llama3_factors(const SaSynth *s, float *f) {
    const int hd = s->head_dim;
    const double factor = 32, lo = 1, hi = 4, octx = 8192;
    for (int i = 0; i < hd / 2; i++) {
        double freq = 1.0 / pow(s->theta, 2.0 * i / hd), wl = 2 * M_PI / freq;
        if (wl < octx / hi) f[i] = 1;
        else if (wl > octx / lo) f[i] = (float)factor;
        else {
            double smooth = (octx / wl - lo) / (hi - lo);
            f[i] = (float)(1 / ((1 - smooth) / factor + smooth));
        }
    }
}

/* Write tensor ti to f: `hf` selects the HF values (rounded, Gemma norms as w) in rows of the
 * HF layout, else the GGUF values (1 + w, permuted rows); `out` is the file's dtype. */
static int write_tensor(const SaSynth *s, int ti, int hf, SaDtype out, FILE *f) {
    const SynTensor *t = &s->t[ti];
    const size_t orow = sa_row_bytes(out, t->cols);
    const int64_t block = SA_MAX(1, SA_MIN(t->rows, (int64_t)(1 << 22) / t->cols));
    uint8_t *buf = sa_malloc((size_t)block * orow);
    float *vals = sa_malloc((size_t)block * (size_t)t->cols * sizeof(float));
    if (!buf || !vals) {
        free(buf);
        free(vals);
        return -1;
    }
    const SaDtype hdt = s->sp.dtype;
    int rc = 0;
    for (int64_t r0 = 0; r0 < t->rows && !rc; r0 += block) {
        const int64_t n = SA_MIN(block, t->rows - r0);
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < n; k++) {
            float *v = vals + k * t->cols;
            gen_row(s, ti, hf ? r0 + k : permuted_src(t, r0 + k), v);
            for (int64_t j = 0; j < t->cols; j++) {
                if (t->gemma_norm) {
                    const float w = round_to(hdt, v[j] - 1.0f);
                    v[j] = hf ? w : 1.0f + w; /* GGUF: llama.cpp's converter adds the 1 (in fp32 here) */
                } else {
                    v[j] = round_to(hdt, v[j]);
                }
            }
            sa_quantize_row(out, v, buf + (size_t)k * orow, t->cols);
        }
        if (fwrite(buf, orow, (size_t)n, f) != (size_t)n) rc = sa_err("write failed: %s", strerror(errno));
    }
    free(buf);
    free(vals);
    return rc;
}

/* ---- setup ---- */

void sa_synth_free(SaSynth *s) {
    if (!s) return;
    sa_tok_spec_free(&s->tok);
    free(s->tok_dir);
    free(s->chat_template);
    free(s->t);
    free(s);
}

SaSynth *sa_synth_new(const SaSynthSpec *sp) {
    if ((unsigned)sp->arch >= SYN_ARCH_COUNT) {
        sa_err("--arch: unknown architecture");
        return NULL;
    }
#define NEED(cond, ...)          \
    if (!(cond)) {               \
        sa_err(__VA_ARGS__);     \
        return NULL;             \
    }
    NEED(sp->hidden > 0 && sp->hidden <= (1 << 16), "--hidden: %d is out of range (1 to 65536)", sp->hidden);
    NEED(sp->layers > 0 && sp->layers <= 1024, "--layers: %d is out of range (1 to 1024)", sp->layers);
    NEED(sp->heads > 0 && sp->heads <= 1024, "--heads: %d is out of range (1 to 1024)", sp->heads);
    NEED(sp->kv_heads > 0 && sp->heads % sp->kv_heads == 0, "--kv-heads: %d does not divide --heads %d", sp->kv_heads,
         sp->heads);
    NEED(sp->ff > 0 && sp->ff <= (1 << 20), "--ff: %d is out of range (1 to 1048576)", sp->ff);
    NEED(sp->head_dim > 0 || sp->hidden % sp->heads == 0,
         "--hidden: %d is not a multiple of --heads %d (give --head-dim)", sp->hidden, sp->heads);
    NEED(sp->head_dim >= 0 && sp->head_dim <= 4096, "--head-dim: %d is out of range", sp->head_dim);
    NEED(sp->dtype == SA_F32 || sp->dtype == SA_BF16 || sp->dtype == SA_F16, "--dtype: must be f32, bf16 or f16");
    NEED(sp->vocab_from, "--vocab-from: missing (a folder with tokenizer.json)");
    NEED(sp->shards >= 0 && sp->shards <= 999, "--shards: %d is out of range (1 to 999)", sp->shards);
    NEED(sp->rope_scaling != SA_ROPE_SCALING_LINEAR || sp->rope_factor > 0, "--rope-factor: must be positive");
    NEED(!sp->score || (sp->arch == SYN_LLAMA && sp->tied != 1), "--score: a llama score model (no tied output)");
#undef NEED
    SaSynth *s = sa_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->sp = *sp;
    if (s->sp.shards == 0) s->sp.shards = 1;
    s->ai = &syn_archs[sp->arch];
    s->head_dim = sp->head_dim ? sp->head_dim : sp->hidden / sp->heads;
    if (s->head_dim % 2) {
        sa_err("head_dim %d must be even", s->head_dim);
        goto fail;
    }
    s->tied = sp->score ? 0 : sp->tied >= 0 ? sp->tied : s->ai->tied;
    s->theta = sp->rope_theta > 0 ? sp->rope_theta : s->ai->theta;
    s->eps = s->ai->eps;
    s->ctx = sp->ctx > 0 ? sp->ctx : s->ai->ctx;
    s->window = sp->sliding_window > 0 ? sp->sliding_window : 4096;
    struct stat vst;
    if (stat(sp->vocab_from, &vst) == 0 && S_ISREG(vst.st_mode)) {
        const char *slash = strrchr(sp->vocab_from, '/');
        s->tok_dir = slash ? sa_strndup(sp->vocab_from, (size_t)(slash - sp->vocab_from) + (slash == sp->vocab_from))
                           : sa_strdup(".");
    } else {
        s->tok_dir = sa_strdup(sp->vocab_from);
    }
    if (!s->tok_dir) goto fail;
    if (sa_tok_spec_from_hf(s->tok_dir, &s->tok)) goto fail;
    if (sp->vocab && sp->vocab < s->tok.n_vocab) {
        sa_err("--vocab: %d is smaller than the tokenizer's %d tokens", sp->vocab, s->tok.n_vocab);
        goto fail;
    }
    if (sp->vocab && sa_tok_spec_pad(&s->tok, sp->vocab)) goto fail;
    char *cfg = sa_path_join(s->tok_dir, "tokenizer_config.json"), *jinja = sa_path_join(s->tok_dir, "chat_template.jinja");
    int want_ct = 0;
    if (cfg && sa_is_file(cfg)) {
        size_t n;
        char *txt = sa_read_file(cfg, &n);
        cJSON *j = txt ? cJSON_ParseWithLength(txt, n) : NULL;
        const cJSON *ct = j ? cJSON_GetObjectItemCaseSensitive(j, "chat_template") : NULL;
        want_ct = ct && !cJSON_IsNull(ct);
        cJSON_Delete(j);
        free(txt);
    }
    want_ct |= jinja && sa_is_file(jinja);
    free(cfg);
    free(jinja);
    if (want_ct && !(s->chat_template = sa_hf_chat_template(s->tok_dir))) goto fail;
    if (build_tensors(s)) goto fail;
    return s;
fail:
    sa_synth_free(s);
    return NULL;
}

/* ---- the HF directory ---- */

static const char *st_dtype(SaDtype d) { return d == SA_BF16 ? "BF16" : d == SA_F16 ? "F16" : "F32"; }
static const char *torch_dtype(SaDtype d) { return d == SA_BF16 ? "bfloat16" : d == SA_F16 ? "float16" : "float32"; }

static int copy_file(const char *from, const char *to) {
    size_t n;
    char *data = sa_read_file(from, &n);
    if (!data) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, n, f) == n ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(data);
    return rc ? sa_err("%s: cannot write: %s", to, strerror(errno)) : 0;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    size_t n = strlen(text);
    int rc = f && fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    return rc ? sa_err("%s: cannot write: %s", path, strerror(errno)) : 0;
}

static char *config_json(const SaSynth *s) {
    const SaSynthSpec *sp = &s->sp;
    const SynArchInfo *a = s->ai;
    cJSON *c = cJSON_CreateObject();
    if (!c) return NULL;
    cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(sp->score ? "LlamaForScore" : a->hf_arch));
    if (sp->score) { /* the keys safe-rlhf's score models add to a Llama config */
        cJSON_AddNumberToObject(c, "score_dim", 1);
        cJSON_AddBoolToObject(c, "bias", sp->score == 2);
        cJSON_AddStringToObject(c, "score_type", "reward");
        cJSON_AddBoolToObject(c, "do_normalize", 0);
        cJSON_AddStringToObject(c, "normalizer_type", "ExponentialMovingAverage");
        cJSON_AddNumberToObject(c, "momentum", 0.9);
    }
    cJSON_AddStringToObject(c, "model_type", a->model_type);
    cJSON_AddNumberToObject(c, "hidden_size", sp->hidden);
    cJSON_AddNumberToObject(c, "intermediate_size", sp->ff);
    cJSON_AddNumberToObject(c, "num_hidden_layers", sp->layers);
    cJSON_AddNumberToObject(c, "num_attention_heads", sp->heads);
    cJSON_AddNumberToObject(c, "num_key_value_heads", sp->kv_heads);
    cJSON_AddNumberToObject(c, "head_dim", s->head_dim);
    cJSON_AddNumberToObject(c, "vocab_size", s->tok.n_vocab);
    cJSON_AddNumberToObject(c, "max_position_embeddings", s->ctx);
    cJSON_AddNumberToObject(c, "rms_norm_eps", s->eps);
    cJSON_AddNumberToObject(c, "rope_theta", s->theta);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", s->tied);
    cJSON_AddStringToObject(c, "torch_dtype", torch_dtype(sp->dtype));
    if (s->tok.bos_id >= 0) cJSON_AddNumberToObject(c, "bos_token_id", s->tok.bos_id);
    if (s->tok.eos_id >= 0) cJSON_AddNumberToObject(c, "eos_token_id", s->tok.eos_id);
    if (a->gemma) {
        cJSON_AddStringToObject(c, "hidden_act", "gelu_pytorch_tanh");
        cJSON_AddStringToObject(c, "hidden_activation", "gelu_pytorch_tanh");
    } else {
        cJSON_AddStringToObject(c, "hidden_act", "silu");
    }
    if (sp->arch == SYN_LLAMA || sp->arch == SYN_MISTRAL) {
        cJSON_AddBoolToObject(c, "attention_bias", 0);
        cJSON_AddBoolToObject(c, "mlp_bias", 0);
    }
    if (sp->arch == SYN_MISTRAL) cJSON_AddNullToObject(c, "sliding_window");
    if (sp->arch == SYN_QWEN2) {
        cJSON_AddBoolToObject(c, "use_sliding_window", 0);
        cJSON_AddNumberToObject(c, "sliding_window", s->ctx);
        cJSON_AddNumberToObject(c, "max_window_layers", sp->layers);
    }
    if (sp->arch == SYN_GEMMA2) {
        cJSON_AddNumberToObject(c, "attn_logit_softcapping", 50.0);
        cJSON_AddNumberToObject(c, "final_logit_softcapping", 30.0);
        /* = head_dim, as in Gemma 2 2B/9B: llama.cpp scales queries by 1/sqrt(head_dim) */
        cJSON_AddNumberToObject(c, "query_pre_attn_scalar", s->head_dim);
        cJSON_AddNumberToObject(c, "sliding_window", s->window);
    }
    if (sp->rope_scaling == SA_ROPE_SCALING_LLAMA3) {
        cJSON *r = cJSON_AddObjectToObject(c, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", "llama3");
        cJSON_AddNumberToObject(r, "factor", 32.0);
        cJSON_AddNumberToObject(r, "low_freq_factor", 1.0);
        cJSON_AddNumberToObject(r, "high_freq_factor", 4.0);
        cJSON_AddNumberToObject(r, "original_max_position_embeddings", 8192);
    } else if (sp->rope_scaling == SA_ROPE_SCALING_LINEAR) {
        cJSON *r = cJSON_AddObjectToObject(c, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", "linear");
        cJSON_AddNumberToObject(r, "factor", sp->rope_factor);
    } else {
        cJSON_AddNullToObject(c, "rope_scaling");
    }
    char *txt = cJSON_Print(c);
    cJSON_Delete(c);
    if (!txt) sa_err("out of memory printing config.json");
    return txt;
}

/* One safetensors file holding the tensors idx[0..n) of the list. */
static int write_safetensors(const SaSynth *s, const char *path, const int *idx, int n) {
    cJSON *h = cJSON_CreateObject();
    if (!h) return sa_err("out of memory");
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    const size_t esz = sa_row_bytes(s->sp.dtype, 1);
    for (int k = 0; k < n; k++) {
        const SynTensor *t = &s->t[idx[k]];
        cJSON *e = cJSON_AddObjectToObject(h, t->hf);
        cJSON_AddStringToObject(e, "dtype", st_dtype(s->sp.dtype));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        if (t->n_dims == 2) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->rows));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->cols));
        uint64_t nb = (uint64_t)t->rows * (uint64_t)t->cols * esz;
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *txt = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!txt) return sa_err("out of memory");
    /* pad the header with spaces so the data starts 8-aligned, as the reference writer does */
    size_t hl = strlen(txt), padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    int rc = 0;
    if (!f) {
        free(txt);
        return sa_err("%s: cannot create: %s", path, strerror(errno));
    }
    uint64_t n64 = padded;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n64 >> (8 * i));
    if (fwrite(le, 1, 8, f) != 8 || fwrite(txt, 1, hl, f) != hl) rc = sa_err("%s: write failed", path);
    for (size_t i = hl; i < padded && !rc; i++)
        if (fputc(' ', f) == EOF) rc = sa_err("%s: write failed", path);
    free(txt);
    for (int k = 0; k < n && !rc; k++)
        if (write_tensor(s, idx[k], 1, s->sp.dtype, f)) rc = sa_err_prefix("%s: %s: ", path, s->t[idx[k]].hf);
    if (fclose(f) != 0 && !rc) rc = sa_err("%s: write failed: %s", path, strerror(errno));
    return rc;
}

/* mkdir -p */
static int make_dirs(const char *dir) {
    char *p = sa_strdup(dir);
    if (!p) return -1;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c) continue;
        const char saved = *c;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return sa_err("%s: cannot create: %s", dir, strerror(e));
        }
        if (!saved) break;
        *c = saved;
    }
    free(p);
    return 0;
}

int sa_synth_write_hf(const SaSynth *s, const char *dir) {
    if (make_dirs(dir)) return -1;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return sa_err("%s: not a directory", dir);
    int rc = -1;
    char *p = NULL, *from = NULL;
    char *cfg = config_json(s);
    if (!cfg) return -1;
    if (!(p = sa_path_join(dir, "config.json")) || write_text(p, cfg)) goto done;
    /* the tokenizer files, unchanged */
    static const char *tok_files[] = {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"};
    for (size_t i = 0; i < SA_ARRAY_LEN(tok_files); i++) {
        free(p);
        free(from);
        p = sa_path_join(dir, tok_files[i]);
        from = sa_path_join(s->tok_dir, tok_files[i]);
        if (!p || !from) goto done;
        if (sa_is_file(from) && copy_file(from, p)) goto done;
    }
    /* The tensors in HF order, split into shards of about equal size. */
    int *idx = sa_malloc(((size_t)s->n_t + 1) * sizeof *idx);
    int *shard_of = sa_calloc((size_t)s->n_t + 1, sizeof *shard_of);
    if (!idx || !shard_of) {
        free(idx);
        free(shard_of);
        goto done;
    }
    const int ns = s->sp.shards;
    uint64_t total = 0, acc = 0;
    const size_t esz = sa_row_bytes(s->sp.dtype, 1);
    for (int i = 0; i < s->n_t; i++) total += (uint64_t)s->t[i].rows * s->t[i].cols * esz;
    for (int i = 0; i < s->n_t; i++) {
        shard_of[i] = (int)SA_MIN((uint64_t)ns - 1, acc * (uint64_t)ns / (total ? total : 1));
        acc += (uint64_t)s->t[i].rows * s->t[i].cols * esz;
    }
    cJSON *index = ns > 1 ? cJSON_CreateObject() : NULL;
    cJSON *wm = NULL;
    if (index) {
        cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        wm = cJSON_AddObjectToObject(index, "weight_map");
    }
    int bad = 0;
    for (int k = 0; k < ns && !bad; k++) {
        int n = 0;
        for (int i = 0; i < s->n_t; i++)
            if (shard_of[i] == k) idx[n++] = i;
        char name[64];
        if (ns == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, ns);
        for (int i = 0; i < n && wm; i++) cJSON_AddStringToObject(wm, s->t[idx[i]].hf, name);
        free(p);
        if (!(p = sa_path_join(dir, name)) || write_safetensors(s, p, idx, n)) bad = 1;
    }
    free(idx);
    free(shard_of);
    if (!bad && index) {
        char *txt = cJSON_Print(index);
        free(p);
        p = sa_path_join(dir, "model.safetensors.index.json");
        if (!txt || !p || write_text(p, txt)) bad = 1;
        free(txt);
    }
    cJSON_Delete(index);
    if (!bad) {
        /* a stale single-file checkpoint would be read instead of the new shards */
        free(p);
        if ((p = sa_path_join(dir, ns > 1 ? "model.safetensors" : "model.safetensors.index.json"))) unlink(p);
        rc = 0;
    }
done:
    free(cfg);
    free(p);
    free(from);
    return rc;
}

/* ---- the GGUF ---- */

static uint32_t ggml_of(SaDtype d) { return (uint32_t)sa_dtype_tr(d)->ggml_type; }

typedef struct {
    const SaSynth *s;
    const int *src;   /* GGUF tensor index -> synth tensor (-1: rope_freqs) */
    const SaDtype *dt;
} GgufCtx;

static int gguf_fill(void *vctx, int index, FILE *f) {
    GgufCtx *c = vctx;
    if (c->src[index] < 0) {
        float fr[2048];
        const int n = c->s->head_dim / 2;
        if (n > (int)SA_ARRAY_LEN(fr)) return sa_err("head_dim too large");
        llama3_factors(c->s, fr);
        return fwrite(fr, 4, (size_t)n, f) == (size_t)n ? 0 : sa_err("write failed: %s", strerror(errno));
    }
    return write_tensor(c->s, c->src[index], 0, c->dt[index], f);
}

static int write_tok(GgufWriter *w, const SaTokSpec *t, const char *chat_template) {
    const int spm = t->model == SA_TOK_SPM;
    int rc = gguf_w_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    rc |= gguf_w_str(w, "tokenizer.ggml.pre", t->pre ? t->pre : "default");
    rc |= gguf_w_arr_str(w, "tokenizer.ggml.tokens", t->tokens, (uint64_t)t->n_vocab);
    float *scores = t->scores;
    if (!scores && spm) {
        /* tokenizer.json's SentencePiece-style BPE merges by rank and has no scores; llama.cpp's
         * SPM merges by score, so give the token made by merge r the score -(r + 1): same order */
        scores = sa_calloc((size_t)t->n_vocab, sizeof *scores);
        SaTokenizer *tk = scores ? sa_tok_new(t) : NULL;
        if (!tk) {
            free(scores);
            return -1;
        }
        SaBuf joined = {0};
        for (int r = 0; r < t->n_merges; r++) {
            const char *m = t->merges[r], *sp = strchr(m, ' ');
            if (!sp) continue;
            joined.len = 0;
            if (sa_buf_append(&joined, m, (size_t)(sp - m)) || sa_buf_append(&joined, sp + 1, strlen(sp + 1) + 1)) break;
            int id = sa_tok_find(tk, joined.data);
            if (id >= 0 && scores[id] == 0) scores[id] = -(float)(r + 1);
        }
        sa_buf_free(&joined);
        sa_tok_free(tk);
    }
    if (scores) rc |= gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)t->n_vocab);
    if (scores != t->scores) free(scores);
    if (t->types) rc |= gguf_w_arr_i32(w, "tokenizer.ggml.token_type", t->types, (uint64_t)t->n_vocab);
    if (t->merges && !spm) rc |= gguf_w_arr_str(w, "tokenizer.ggml.merges", t->merges, (uint64_t)t->n_merges);
    if (t->bos_id >= 0) rc |= gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos_id);
    if (t->eos_id >= 0) rc |= gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos_id);
    if (t->unk_id >= 0) rc |= gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk_id);
    if (t->pad_id >= 0) rc |= gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad_id);
    if (t->eot_id >= 0) rc |= gguf_w_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)t->eot_id);
    rc |= gguf_w_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
    rc |= gguf_w_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos);
    if (spm) rc |= gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    if (chat_template) rc |= gguf_w_str(w, "tokenizer.chat_template", chat_template);
    return rc ? -1 : 0;
}

int sa_synth_write_gguf(const SaSynth *s, const char *path, SaDtype type) {
    if (type != SA_F32 && type != SA_F16 && type != SA_Q8_0 && type != SA_Q4_0)
        return sa_err("--gguf-type: must be f32, f16, q8_0 or q4_0");
    if (s->sp.score) return sa_err("--gguf: a score model is written as an HF directory only");
    const SaSynthSpec *sp = &s->sp;
    const char *a = s->ai->gguf_arch;
    GgufWriter *w = gguf_writer_new();
    int *src = sa_malloc(((size_t)s->n_t + 2) * sizeof *src);
    SaDtype *dt = sa_malloc(((size_t)s->n_t + 2) * sizeof *dt);
    int rc = -1;
    if (!w || !src || !dt) goto done;
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    static const uint32_t file_type[] = {[SA_F32] = 0, [SA_F16] = 1, [SA_Q4_0] = 2, [SA_Q8_0] = 7};
    int r = gguf_w_str(w, "general.architecture", a);
    char name[64];
    snprintf(name, sizeof name, "salign-synth %s", sa_synth_arch_name(sp->arch));
    r |= gguf_w_str(w, "general.name", name);
    r |= gguf_w_u32(w, "general.file_type", file_type[type]);
    r |= gguf_w_u32(w, KEY("context_length"), (uint32_t)s->ctx);
    r |= gguf_w_u32(w, KEY("embedding_length"), (uint32_t)sp->hidden);
    r |= gguf_w_u32(w, KEY("block_count"), (uint32_t)sp->layers);
    r |= gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)sp->ff);
    r |= gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)sp->heads);
    r |= gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)sp->kv_heads);
    r |= gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)s->eps);
    r |= gguf_w_f32(w, KEY("rope.freq_base"), (float)s->theta);
    if (s->ai->gemma || s->head_dim * sp->heads != sp->hidden) {
        r |= gguf_w_u32(w, KEY("attention.key_length"), (uint32_t)s->head_dim);
        r |= gguf_w_u32(w, KEY("attention.value_length"), (uint32_t)s->head_dim);
    }
    if (!strcmp(a, "llama")) {
        r |= gguf_w_u32(w, KEY("vocab_size"), (uint32_t)s->tok.n_vocab);
        r |= gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)s->head_dim);
    }
    if (sp->rope_scaling == SA_ROPE_SCALING_LINEAR) {
        r |= gguf_w_str(w, KEY("rope.scaling.type"), "linear");
        r |= gguf_w_f32(w, KEY("rope.scaling.factor"), sp->rope_factor);
    }
    if (s->ai->gemma2) {
        r |= gguf_w_f32(w, KEY("attn_logit_softcapping"), 50.0f);
        r |= gguf_w_f32(w, KEY("final_logit_softcapping"), 30.0f);
        r |= gguf_w_u32(w, KEY("attention.sliding_window"), (uint32_t)s->window);
    }
#undef KEY
    if (r || write_tok(w, &s->tok, s->chat_template)) goto done;
    int n = 0;
    for (int i = 0; i < s->n_t; i++) {
        const SynTensor *t = &s->t[i];
        SaDtype d = t->n_dims == 1 ? SA_F32 : type;
        if ((d == SA_Q8_0 || d == SA_Q4_0) && t->cols % 32) d = SA_F16; /* llama-quantize's fallback */
        int64_t ne[2] = {t->cols, t->rows};
        if (gguf_w_tensor(w, t->gg, ggml_of(d), t->n_dims, ne) < 0) goto done;
        src[n] = i;
        dt[n++] = d;
    }
    if (sp->rope_scaling == SA_ROPE_SCALING_LLAMA3) {
        int64_t ne[1] = {s->head_dim / 2};
        if (gguf_w_tensor(w, "rope_freqs.weight", GGML_F32, 1, ne) < 0) goto done;
        src[n] = -1;
        dt[n++] = SA_F32;
    }
    GgufCtx c = {s, src, dt};
    rc = gguf_writer_write(w, path, gguf_fill, &c);
done:
    gguf_writer_free(w);
    free(src);
    free(dt);
    return rc;
}
