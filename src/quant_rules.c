/* quant_rules.c - which type llama-quantize gives each tensor of a file type (facts taken from
 * llama.cpp's src/llama-quant.cpp, llama_tensor_get_type, at the release node-llama-cpp 3.21.1
 * ships; the tests compare against that release's quantizer tensor for tensor).
 *
 * The choice for one tensor, in llama.cpp's order:
 *   1. vectors, biases and norms are not quantized;
 *   2. the first --tensor-type override whose pattern matches the name decides;
 *   3. otherwise (unless --pure) the classifier rule (output.weight, or token_embd.weight when it
 *      doubles as the classifier): Q8_0 when its rows do not fit the default type's blocks, else
 *      Q6_K unless the file type is Q8_0; then the per-category rows of the table below;
 *   4. the shape fallback: a type whose block does not divide the row length becomes the next
 *      32-element type (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0,
 *      IQ4_XS -> IQ4_NL), and F16 when even 32 does not divide it.
 * Layer-dependent rows count the tensors of their category in llama.cpp's tensor order (by layer
 * number, then name), counting only the tensors that reached step 3: an override on one layer's
 * attn_v shifts the count for the later ones, exactly as in llama.cpp.
 * Left out, since salign reads none of them: MoE (n_expert), Falcon, and the IQ1/IQ2/IQ3/TQ/MXFP4
 * file types. */
#include "quant_rules.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"

static const SaFileType file_types[] = {
    {"q4_k_m", SA_GG_Q4_K}, {"q4_k_s", SA_GG_Q4_K}, {"q5_k_m", SA_GG_Q5_K}, {"q5_k_s", SA_GG_Q5_K},
    {"q6_k", SA_GG_Q6_K},   {"q3_k_m", SA_GG_Q3_K}, {"q3_k_l", SA_GG_Q3_K}, {"q3_k_s", SA_GG_Q3_K},
    {"q2_k", SA_GG_Q2_K},   {"iq4_xs", SA_GG_IQ4_XS}, {"iq4_nl", SA_GG_IQ4_NL}, {"q4_0", SA_GG_Q4_0},
    {"q4_1", SA_GG_Q4_1},   {"q5_0", SA_GG_Q5_0},   {"q5_1", SA_GG_Q5_1},   {"q8_0", SA_GG_Q8_0},
};
enum { FT_Q4_K_M, FT_Q4_K_S, FT_Q5_K_M, FT_Q5_K_S, FT_Q6_K, FT_Q3_K_M, FT_Q3_K_L, FT_Q3_K_S,
       FT_Q2_K, FT_IQ4_XS, FT_IQ4_NL, FT_Q4_0, FT_Q4_1, FT_Q5_0, FT_Q5_1, FT_Q8_0, FT_COUNT };
_Static_assert(sizeof file_types / sizeof file_types[0] == FT_COUNT, "file type table and enum agree");

const SaFileType *sa_file_type(int i) { return i >= 0 && i < FT_COUNT ? &file_types[i] : NULL; }

int sa_file_type_find(const char *name) {
    for (int i = 0; i < FT_COUNT; i++)
        if (strcasecmp(file_types[i].name, name) == 0) return i;
    return -1;
}

static const struct {
    int type, block;
    const char *name;
} gg_types[] = {
    {SA_GG_F32, 1, "f32"},      {SA_GG_F16, 1, "f16"},       {SA_GG_Q4_0, 32, "q4_0"},    {SA_GG_Q4_1, 32, "q4_1"},
    {SA_GG_Q5_0, 32, "q5_0"},   {SA_GG_Q5_1, 32, "q5_1"},    {SA_GG_Q8_0, 32, "q8_0"},    {SA_GG_Q2_K, 256, "q2_K"},
    {SA_GG_Q3_K, 256, "q3_K"},  {SA_GG_Q4_K, 256, "q4_K"},   {SA_GG_Q5_K, 256, "q5_K"},   {SA_GG_Q6_K, 256, "q6_K"},
    {SA_GG_IQ4_NL, 32, "iq4_nl"}, {SA_GG_IQ4_XS, 256, "iq4_xs"}, {30, 1, "bf16"},
};

static int gg_block(int type) {
    for (size_t i = 0; i < SA_ARRAY_LEN(gg_types); i++)
        if (gg_types[i].type == type) return gg_types[i].block;
    return 1;
}

const char *sa_gg_type_name(int type) {
    for (size_t i = 0; i < SA_ARRAY_LEN(gg_types); i++)
        if (gg_types[i].type == type) return gg_types[i].name;
    return "?";
}

/* ---- the table ---- */

typedef enum { CAT_OTHER, CAT_TOKEN_EMBD, CAT_OUTPUT, CAT_ATTN_V, CAT_ATTN_OUTPUT, CAT_FFN_DOWN } Category;

/* The condition of a row; i is the tensor's count in its category, n the number of layers. */
typedef enum {
    IF_ALWAYS,
    IF_MORE_BITS,     /* llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between */
    IF_GQA4,          /* n_head / n_head_kv >= 4 */
    IF_FIRST2,        /* i < 2 */
    IF_FIRST4,        /* i < 4 */
    IF_EIGHTH,        /* i < n / 8 */
    IF_SIXTEENTH,     /* i < n / 16 */
    IF_EIGHTH_NO_IMX, /* i < n / 8 without an importance matrix */
    IF_EIGHTH_IMX,    /* i < n / 8 with one (the Q4_0 / Q5_0 guard on the first ffn_down layers) */
} Cond;

typedef struct {
    int ft;
    Category cat;
    Cond cond;
    int type;
} Rule;

/* For each (file type, category) the first row whose condition holds gives the type; none: the
 * default type. attn_v stands for attn_qkv and attn_kv_b too (llama.cpp tests them first). */
static const Rule rules[] = {
    {FT_Q2_K, CAT_ATTN_V, IF_GQA4, SA_GG_Q4_K},
    {FT_Q2_K, CAT_ATTN_V, IF_ALWAYS, SA_GG_Q3_K},
    {FT_Q3_K_M, CAT_ATTN_V, IF_FIRST2, SA_GG_Q5_K},
    {FT_Q3_K_M, CAT_ATTN_V, IF_ALWAYS, SA_GG_Q4_K},
    {FT_Q3_K_L, CAT_ATTN_V, IF_ALWAYS, SA_GG_Q5_K},
    {FT_IQ4_NL, CAT_ATTN_V, IF_GQA4, SA_GG_Q5_K},
    {FT_IQ4_XS, CAT_ATTN_V, IF_GQA4, SA_GG_Q5_K},
    {FT_Q4_K_M, CAT_ATTN_V, IF_MORE_BITS, SA_GG_Q6_K},
    {FT_Q5_K_M, CAT_ATTN_V, IF_MORE_BITS, SA_GG_Q6_K},
    {FT_Q4_K_S, CAT_ATTN_V, IF_FIRST4, SA_GG_Q5_K},

    {FT_Q2_K, CAT_FFN_DOWN, IF_ALWAYS, SA_GG_Q3_K},
    {FT_Q3_K_M, CAT_FFN_DOWN, IF_SIXTEENTH, SA_GG_Q5_K},
    {FT_Q3_K_M, CAT_FFN_DOWN, IF_ALWAYS, SA_GG_Q4_K},
    {FT_Q3_K_L, CAT_FFN_DOWN, IF_ALWAYS, SA_GG_Q5_K},
    {FT_Q4_K_M, CAT_FFN_DOWN, IF_MORE_BITS, SA_GG_Q6_K},
    {FT_IQ4_NL, CAT_FFN_DOWN, IF_EIGHTH_NO_IMX, SA_GG_Q5_K},
    {FT_IQ4_XS, CAT_FFN_DOWN, IF_EIGHTH_NO_IMX, SA_GG_Q5_K},
    {FT_Q5_K_M, CAT_FFN_DOWN, IF_MORE_BITS, SA_GG_Q6_K},
    {FT_Q4_K_S, CAT_FFN_DOWN, IF_EIGHTH, SA_GG_Q5_K},
    {FT_Q4_0, CAT_FFN_DOWN, IF_EIGHTH_IMX, SA_GG_Q4_1},
    {FT_Q5_0, CAT_FFN_DOWN, IF_EIGHTH_IMX, SA_GG_Q5_1},

    {FT_Q2_K, CAT_ATTN_OUTPUT, IF_ALWAYS, SA_GG_Q3_K},
    {FT_Q3_K_M, CAT_ATTN_OUTPUT, IF_ALWAYS, SA_GG_Q4_K},
    {FT_Q3_K_L, CAT_ATTN_OUTPUT, IF_ALWAYS, SA_GG_Q5_K},
};

static Category category(const char *name) {
    if (!strcmp(name, "output.weight")) return CAT_OUTPUT;
    if (!strcmp(name, "token_embd.weight")) return CAT_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight") || strstr(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int holds(Cond c, int i, int n, int gqa, int imx) {
    switch (c) {
    case IF_ALWAYS: return 1;
    case IF_MORE_BITS: return use_more_bits(i, n);
    case IF_GQA4: return gqa >= 4;
    case IF_FIRST2: return i < 2;
    case IF_FIRST4: return i < 4;
    case IF_EIGHTH: return i < n / 8;
    case IF_SIXTEENTH: return i < n / 16;
    case IF_EIGHTH_NO_IMX: return i < n / 8 && !imx;
    case IF_EIGHTH_IMX: return i < n / 8 && imx;
    }
    return 0;
}

/* Does llama.cpp quantize this tensor at all? (2-D, named *weight, not a norm) */
static int quantizable(const SaRuleTensor *t) {
    const size_t n = strlen(t->name);
    return t->n_dims >= 2 && n >= 6 && !strcmp(t->name + n - 6, "weight") && !strstr(t->name, "_norm.weight");
}

/* llama.cpp's 70B class, whose attn_v gets Q5_K instead of Q3_K / Q4_K: 80-layer Llama with
 * grouped-query attention (Llama 2/3 70B) and 80-layer Qwen2 (Qwen2 72B). */
static int is_70b(const SaHparams *hp) {
    if (hp->n_layer != 80) return 0;
    return hp->arch == SA_ARCH_QWEN2 || (hp->arch == SA_ARCH_LLAMA && hp->n_head != hp->n_head_kv);
}

static int fallback(int type, int64_t ne0) {
    if (ne0 % gg_block(type) == 0) return type;
    switch (type) {
    case SA_GG_IQ4_XS: type = SA_GG_IQ4_NL; break;
    case SA_GG_Q2_K:
    case SA_GG_Q3_K: type = SA_GG_Q4_0; break;
    case SA_GG_Q4_K: type = SA_GG_Q5_0; break;
    case SA_GG_Q5_K: type = SA_GG_Q5_1; break;
    case SA_GG_Q6_K: type = SA_GG_Q8_0; break;
    default: break; /* a 32-element type has nothing smaller: F16 below */
    }
    return ne0 % gg_block(type) == 0 ? type : SA_GG_F16;
}

/* llama.cpp's tensor order: layer number (tensors outside the layers first), then name. */
typedef struct {
    int layer;
    const char *name;
    int index;
} Ordered;

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) l = -1;
    return l;
}

static int by_layer_then_name(const void *a, const void *b) {
    const Ordered *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* std::regex (ECMAScript) shorthands that POSIX extended expressions lack. */
static char *posix_pattern(const char *p) {
    size_t cap = strlen(p) * 14 + 1, k = 0;
    char *o = sa_malloc(cap);
    if (!o) return NULL;
    for (; *p; p++) {
        const char *rep = NULL;
        if (p[0] == '\\' && p[1]) {
            switch (p[1]) {
            case 'd': rep = "[0-9]"; break;
            case 'D': rep = "[^0-9]"; break;
            case 'w': rep = "[A-Za-z0-9_]"; break;
            case 'W': rep = "[^A-Za-z0-9_]"; break;
            case 's': rep = "[[:space:]]"; break;
            case 'S': rep = "[^[:space:]]"; break;
            }
        }
        if (rep) {
            k += (size_t)snprintf(o + k, cap - k, "%s", rep);
            p++;
        } else {
            o[k++] = (char)tolower((unsigned char)*p);
        }
    }
    o[k] = 0;
    return o;
}

int sa_quant_rules(const SaHparams *hp, const SaRuleTensor *t, int n, const SaRuleOptions *opt, int *out) {
    const SaFileType *ft = sa_file_type(opt->file_type);
    if (!ft) return sa_err("unknown file type %d", opt->file_type);
    regex_t *re = opt->n_overrides ? sa_calloc((size_t)opt->n_overrides, sizeof *re) : NULL;
    Ordered *order = sa_malloc((size_t)(n ? n : 1) * sizeof *order);
    int n_re = 0, rc = -1;
    if ((opt->n_overrides && !re) || !order) goto done;
    for (; n_re < opt->n_overrides; n_re++) {
        char *pat = posix_pattern(opt->overrides[n_re].pattern);
        if (!pat) goto done;
        const int bad = regcomp(&re[n_re], pat, REG_EXTENDED | REG_NOSUB);
        free(pat);
        if (bad) {
            sa_err("--tensor-type %s: not a regular expression", opt->overrides[n_re].pattern);
            goto done;
        }
    }
    /* the embedding is the classifier when there is no output.weight (llama.cpp looks at the names) */
    int tied = 1;
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, "output.weight")) tied = 0;
    const int gqa = hp->n_head_kv > 0 ? hp->n_head / hp->n_head_kv : 1;
    int count[6] = {0};
    for (int i = 0; i < n; i++) order[i] = (Ordered){layer_of(t[i].name), t[i].name, i};
    qsort(order, (size_t)n, sizeof *order, by_layer_then_name);
    for (int k = 0; k < n; k++) {
        const int i = order[k].index;
        out[i] = -1;
        if (!quantizable(&t[i])) continue;
        int type = ft->default_type, manual = 0;
        for (int r = 0; r < n_re && !manual; r++) {
            char *lower = sa_strdup(t[i].name);
            if (!lower) goto done;
            for (char *p = lower; *p; p++) *p = (char)tolower((unsigned char)*p);
            if (regexec(&re[r], lower, 0, NULL, 0) == 0) {
                type = opt->overrides[r].type;
                manual = 1;
            }
            free(lower);
        }
        if (!manual && !opt->pure) {
            const Category c = category(t[i].name);
            if (c == CAT_OUTPUT || (tied && c == CAT_TOKEN_EMBD)) {
                if (t[i].ne0 % gg_block(type)) type = SA_GG_Q8_0;
                else if (type != SA_GG_Q8_0) type = SA_GG_Q6_K;
            } else if (c == CAT_ATTN_V || c == CAT_FFN_DOWN || c == CAT_ATTN_OUTPUT) {
                for (size_t r = 0; r < SA_ARRAY_LEN(rules); r++) {
                    if (rules[r].ft != opt->file_type || rules[r].cat != c) continue;
                    if (holds(rules[r].cond, count[c], hp->n_layer, gqa, opt->has_imatrix)) {
                        type = rules[r].type;
                        break;
                    }
                }
                if (c == CAT_ATTN_V && is_70b(hp) && (type == SA_GG_Q3_K || type == SA_GG_Q4_K)) type = SA_GG_Q5_K;
                count[c]++;
            }
        }
        out[i] = fallback(type, t[i].ne0);
    }
    rc = 0;
done:
    for (int r = 0; r < n_re; r++) regfree(&re[r]);
    free(re);
    free(order);
    return rc;
}
