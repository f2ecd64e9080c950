/* test_quantize.c - salign-quantize's file types against llama.cpp's own quantizer, tensor for
 * tensor: the same F16 GGUF quantized by llama.cpp (tests/oracles/llamacpp-quantize.c, built by
 * tests/run-archs.sh against node-llama-cpp's libllama: $SALIGN_LLAMACPP_QUANTIZE) and by
 * bin/salign-quantize from that GGUF and from the HF directory of the same synthetic model must
 * give every tensor the same type and the same bytes.
 *
 * The shapes: an 8-layer llama with grouped-query attention 4 and a tied embedding (every
 * layer-dependent rule: use_more_bits, the first 2 / 4 / eighth / sixteenth of the layers, the
 * GQA >= 4 choices, the tied classifier); a Qwen2 with Qwen2.5-0.5B's hidden size 896 (not a multiple
 * of 256: the shape fallbacks, the classifier's Q8_0); mistral, qwen2, gemma and gemma2 at hidden
 * 256 (their tensor sets: biases, post-norms, an untied output, GQA 1). File types whose
 * quantizers this build does not have yet are checked for their types only (the rules).
 * Vocabularies come from the 32000-token Mistral tokenizer for every architecture, to keep the
 * embedding (the largest tensor) small. Named archs_model_* so that make test runs them once, in
 * run-archs.sh, with the oracle. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/common.h"
#include "../src/convert.h"
#include "../src/gguf.h"
#include "../src/quants_imatrix.h"
#include "../src/salm.h"
#include "test.h"

static int sh(const char *cmd) {
    int st;
    char *out = test_run(cmd, &st);
    if (st != 0) test_fail(__FILE__, __LINE__, "`%s` failed (%d): %s", cmd, st, out);
    free(out);
    return st;
}

/* The binaries under test ($SALIGN_QUANTIZE / $SALIGN_SYNTH override them, e.g. bin-san/). */
static const char *qbin(void) {
    const char *e = getenv("SALIGN_QUANTIZE");
    return e && *e ? e : "bin/salign-quantize";
}
static const char *synth_bin(void) {
    const char *e = getenv("SALIGN_SYNTH");
    return e && *e ? e : "bin/salign-synth";
}

static const char *tokenizer_dir(void) {
    static char buf[512];
    const char *env = getenv("SALIGN_TOKENIZERS_DIR");
    snprintf(buf, sizeof buf, "%s/mistral/tokenizer.json", env && *env ? env : "../shared/models/tokenizers");
    FILE *f = fopen(buf, "rb");
    if (!f) return NULL;
    fclose(f);
    snprintf(buf, sizeof buf, "%s/mistral", env && *env ? env : "../shared/models/tokenizers");
    return buf;
}

/* GGUF (llama arch) row r of attn_q / attn_k comes from HF row permuted(r): llama.cpp's converter
 * interleaves the two halves of each head (what salign-synth writes; our HF import keeps HF's order). */
static int64_t hf_row(int64_t r, int64_t head_dim) {
    const int64_t h = r / head_dim, rr = r % head_dim;
    return h * head_dim + (rr % 2) * (head_dim / 2) + rr / 2;
}

/* Every tensor of the oracle's GGUF against ours: type, shape and bytes (rows mapped for HF q/k).
 * Returns the number of tensors compared, -1 on a failure (reported). */
static int compare_files(const char *what, const char *gguf, const char *salm, int hf_perm, int head_dim) {
    Gguf g;
    Salm s;
    if (gguf_open(&g, gguf)) {
        test_fail(__FILE__, __LINE__, "%s: %s", what, sa_errmsg());
        return -1;
    }
    if (salm_open(&s, salm, SA_LOAD_READ_4K)) {
        test_fail(__FILE__, __LINE__, "%s: %s", what, sa_errmsg());
        gguf_close(&g);
        return -1;
    }
    int n = 0, bad = 0;
    if ((int)g.n_tensors != s.n_tensors) {
        test_fail(__FILE__, __LINE__, "%s: llama.cpp wrote %d tensors, we %d", what, (int)g.n_tensors, s.n_tensors);
        bad++;
    }
    for (uint64_t i = 0; i < g.n_tensors && bad < 4; i++) {
        const GgufTensor *t = &g.tensors[i];
        const SalmTensor *m = salm_tensor(&s, t->name);
        const int dt = sa_dtype_from_ggml(t->type);
        if (!m) {
            test_fail(__FILE__, __LINE__, "%s: %s missing in ours", what, t->name);
            bad++;
            continue;
        }
        if (dt < 0 || m->dtype != (SaDtype)dt) {
            test_fail(__FILE__, __LINE__, "%s: %s is %s in llama.cpp's file (ggml type %u), %s in ours", what, t->name,
                      dt < 0 ? "?" : sa_dtype_name((SaDtype)dt), t->type, sa_dtype_name(m->dtype));
            bad++;
            continue;
        }
        if (m->nbytes != t->nbytes || m->ne[0] != t->ne[0]) {
            test_fail(__FILE__, __LINE__, "%s: %s: %llu bytes in llama.cpp's file, %llu in ours", what, t->name,
                      (unsigned long long)t->nbytes, (unsigned long long)m->nbytes);
            bad++;
            continue;
        }
        const size_t rb = sa_row_bytes(m->dtype, m->ne[0]);
        const int64_t rows = (int64_t)(m->nbytes / rb);
        const int perm = hf_perm && (strstr(t->name, "attn_q.weight") || strstr(t->name, "attn_k.weight"));
        int64_t differ = -1;
        for (int64_t r = 0; r < rows && differ < 0; r++) {
            const int64_t mr = perm ? hf_row(r, head_dim) : r;
            if (memcmp((const uint8_t *)t->data + r * rb, (const uint8_t *)m->data + mr * rb, rb)) differ = r;
        }
        if (differ >= 0) {
            test_fail(__FILE__, __LINE__, "%s: %s (%s): row %lld differs from llama.cpp's", what, t->name,
                      sa_dtype_name(m->dtype), (long long)differ);
            bad++;
        }
        n++;
    }
    salm_close(&s);
    gguf_close(&g);
    return bad ? -1 : n;
}

/* Types only (file types this build cannot write yet): the rules on the source against the
 * types in llama.cpp's file, as the oracle lists them (salign's GGUF reader refuses types it lacks). */
static int compare_rules(const char *what, const char *lq, const char *gguf, const char *src_path, const char *type) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --types %s", lq, gguf);
    int st;
    char *listing = test_run(cmd, &st);
    SaConvSource src;
    if (st || sa_import_gguf(src_path, &src)) {
        test_fail(__FILE__, __LINE__, "%s: %s", what, st ? listing : sa_errmsg());
        free(listing);
        return -1;
    }
    SaRuleTensor *rt = calloc((size_t)src.n_tensors, sizeof *rt);
    int *out = calloc((size_t)src.n_tensors, sizeof *out);
    int n = 0, bad = 0;
    for (int i = 0; i < src.n_tensors; i++) {
        const SaConvTensor *t = &src.tensors[i];
        rt[i] = (SaRuleTensor){t->name, t->ne[0], t->ne[1] > 1 ? 2 : 1};
    }
    const SaRuleOptions ro = {.file_type = sa_file_type_find(type)};
    if (sa_quant_rules(&src.hp, rt, src.n_tensors, &ro, out)) {
        test_fail(__FILE__, __LINE__, "%s: %s", what, sa_errmsg());
        bad++;
    }
    for (char *save = NULL, *line = strtok_r(listing, "\n", &save); line && !bad; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        int gt;
        if (sscanf(line, "%127s %d", name, &gt) != 2) continue;
        int i = 0;
        while (i < src.n_tensors && strcmp(rt[i].name, name)) i++;
        if (i == src.n_tensors) {
            test_fail(__FILE__, __LINE__, "%s: llama.cpp wrote %s, which the source lacks", what, name);
            bad++;
            break;
        }
        /* not quantized: llama.cpp keeps the source's type (F32 vectors in these files) */
        const int want = out[i] < 0 ? (int)sa_dtype_traits[src.tensors[i].dtype].ggml_type : out[i];
        if (want != gt) {
            test_fail(__FILE__, __LINE__, "%s: %s: llama.cpp chose %s, our rules %s", what, name, sa_gg_type_name(gt),
                      sa_gg_type_name(want));
            bad++;
        }
        n++;
    }
    if (!bad && n != src.n_tensors) {
        test_fail(__FILE__, __LINE__, "%s: llama.cpp listed %d tensors, the source has %d", what, n, src.n_tensors);
        bad++;
    }
    free(listing);
    free(rt);
    free(out);
    sa_conv_free(&src);
    return bad ? -1 : n;
}

typedef struct {
    const char *arch, *flags;
    int head_dim;        /* for the HF row permutation of llama-arch q/k */
    int permuted;        /* llama / mistral: GGUF q/k rows permuted */
    const char *types;   /* comma-separated file types, "all" for every one */
    const char *hf_types; /* those also converted from the HF directory */
} QCase;

static const char all_types[] =
    "q4_k_m,q4_k_s,q5_k_m,q5_k_s,q6_k,q3_k_m,q3_k_l,q3_k_s,q2_k,iq4_xs,iq4_nl,q4_0,q4_1,q5_0,q5_1,q8_0";

static const QCase qcases[] = {
    /* every file type from the GGUF; from the HF directory the ones that cover each block type once (the
     * source values are the same, so the rest would repeat the GGUF runs) */
    {"llama", "--hidden 256 --layers 8 --heads 8 --kv-heads 2 --ff 512 --tied", 32, 1, all_types,
     "q4_k_m,q5_k_s,q6_k,q3_k_l,q2_k,iq4_xs,iq4_nl,q4_0,q4_1,q5_0,q5_1,q8_0"},
    {"qwen2", "--hidden 896 --layers 2 --heads 14 --kv-heads 2 --head-dim 64 --ff 1024 --tied", 64, 0,
     "q4_k_m,q5_k_m,q6_k,q2_k,iq4_xs,q4_0", "q4_k_m"}, /* each fallback once: Q4_K, Q5_K, Q6_K, Q2_K/Q3_K, IQ4_XS */
    {"mistral", "--hidden 256 --layers 2 --heads 4 --kv-heads 4 --ff 768", 64, 1, "q4_k_m,q3_k_m,q4_0", "q4_k_m"},
    {"qwen2", "--hidden 256 --layers 2 --heads 4 --kv-heads 2 --ff 512", 64, 0, "q4_k_m,q3_k_m,q5_0", "q4_k_m"},
    {"gemma", "--hidden 256 --layers 2 --heads 2 --kv-heads 1 --ff 512 --head-dim 128", 128, 0, "q4_k_m,q3_k_m,q4_1", "q4_k_m"},
    {"gemma2", "--hidden 256 --layers 3 --heads 4 --kv-heads 2 --ff 512 --head-dim 64 --sliding-window 8", 64, 0,
     "q5_k_m,q2_k,q8_0", "q5_k_m"},
};

static int in_list(const char *list, const char *t) {
    const size_t n = strlen(t);
    for (const char *p = list; (p = strstr(p, t)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n])) return 1;
    return 0;
}

/* --pure and --tensor-type against llama-quantize's --pure and --tensor-type (the overrides take
 * some layers' tensors out of the layer counts of the rules after them, as in llama.cpp). */
static int option_runs(const QCase *c, const char *lq, const char *dir) {
    static const struct {
        const char *type, *ours, *theirs;
    } runs[] = {
        {"q4_k_m", "", ""}, /* from a .salm source (an F16 .salm made with --type keep) */
        {"q4_k_m", "--pure", "pure"},
        {"q5_k_m", "--tensor-type attn_v=q8_0 --tensor-type 'blk\\.[0-2]\\.ffn_down=q5_0' --tensor-type output=f16",
         "'tt=attn_v=q8_0' 'tt=blk\\.[0-2]\\.ffn_down=q5_0' 'tt=output=f16'"},
        {"q4_k_s", "--tensor-type 'blk\\.(1|3)\\.attn_v=q4_0' --tensor-type=token_embd=q8_0",
         "'tt=blk\\.(1|3)\\.attn_v=q4_0' 'tt=token_embd=q8_0'"},
    };
    int done = 0;
    char keep[2048];
    snprintf(keep, sizeof keep, "%s %s/f16.gguf %s/f16.salm --type keep -q 2>&1", qbin(), dir, dir);
    if (sh(keep)) return 0;
    for (size_t r = 0; r < SA_ARRAY_LEN(runs); r++) {
        char cmd[2048], gguf[300], salm[300], upper[16], what[300];
        size_t u = 0;
        for (; runs[r].type[u] && u < sizeof upper - 1; u++)
            upper[u] = (char)(runs[r].type[u] >= 'a' && runs[r].type[u] <= 'z' ? runs[r].type[u] - 32 : runs[r].type[u]);
        upper[u] = 0;
        snprintf(gguf, sizeof gguf, "%s/opt%zu.gguf", dir, r);
        snprintf(salm, sizeof salm, "%s/opt%zu.salm", dir, r);
        snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s %s %s 2>&1 && %s %s/%s %s --type %s %s -q 2>&1", lq, dir,
                 gguf, upper, runs[r].theirs, qbin(), dir, r == 0 ? "f16.salm" : "hf", salm, runs[r].type, runs[r].ours);
        if (sh(cmd)) continue;
        snprintf(what, sizeof what, "%s --type %s %s%s", c->arch, runs[r].type, runs[r].ours, r == 0 ? " from .salm" : "");
        if (compare_files(what, gguf, salm, r == 0 ? 0 : c->permuted, c->head_dim) > 0) done++;
    }
    return done;
}

static void qcase_test(int k) {
    const QCase *c = &qcases[k];
    const char *lq = getenv("SALIGN_LLAMACPP_QUANTIZE"), *toks = tokenizer_dir();
    if (!lq || !*lq) {
        test_skip("needs llama.cpp's quantizer (tests/run-archs.sh sets SALIGN_LLAMACPP_QUANTIZE)");
        return;
    }
    if (!toks) {
        test_skip("no tokenizer files (../shared/models/tokenizers)");
        return;
    }
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "%s/quantize-%d-%s", test_tmpdir(), k, c->arch);
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (sh(cmd)) return;
    snprintf(cmd, sizeof cmd,
             "%s --arch %s %s --seed %d --dtype f16 --vocab-from %s --hf %s/hf --gguf %s/f16.gguf --gguf-type f16 2>&1",
             synth_bin(), c->arch, c->flags, 41 + k, toks, dir, dir);
    if (sh(cmd)) return;
    char list[256];
    snprintf(list, sizeof list, "%s", c->types);
    int done = 0, rules_only = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char upper[16], gguf[300], salm[300], what[128];
        size_t u = 0;
        for (; t[u] && u < sizeof upper - 1; u++) upper[u] = (char)(t[u] >= 'a' && t[u] <= 'z' ? t[u] - 32 : t[u]);
        upper[u] = 0;
        snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, t);
        snprintf(salm, sizeof salm, "%s/%s.salm", dir, t);
        snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s %s 2>&1", lq, dir, gguf, upper);
        if (sh(cmd)) continue;
        const int type = sa_conv_type_from_name(t);
        if (!sa_conv_type_available((SaConvType)type)) {
            snprintf(cmd, sizeof cmd, "%s/f16.gguf", dir);
            snprintf(what, sizeof what, "%s %s (rules only)", c->arch, t);
            if (compare_rules(what, lq, gguf, cmd, t) > 0) rules_only++;
            continue;
        }
        snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s --type %s -q 2>&1", qbin(), dir, salm, t);
        snprintf(what, sizeof what, "%s %s from GGUF", c->arch, t);
        if (sh(cmd) == 0 && compare_files(what, gguf, salm, 0, c->head_dim) > 0) done++;
        if (in_list(c->hf_types, t)) {
            snprintf(cmd, sizeof cmd, "%s %s/hf %s --type %s -q 2>&1", qbin(), dir, salm, t);
            snprintf(what, sizeof what, "%s %s from HF", c->arch, t);
            if (sh(cmd) == 0 && compare_files(what, gguf, salm, c->permuted, c->head_dim) > 0) done++;
        }
        snprintf(cmd, sizeof cmd, "rm -f %s %s", gguf, salm);
        sh(cmd);
    }
    if (k == 0) done += option_runs(c, lq, dir);
    printf("    %s %s: %d conversions byte-identical to llama.cpp's, %d file types checked for their types only\n",
           c->arch, c->flags, done, rules_only);
    CHECK(done > 0);
    if (!getenv("SALIGN_KEEP_ARCHS")) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        sh(cmd);
    }
}

TEST(archs_model_quantize_llama_gqa4) { qcase_test(0); }
TEST(archs_model_quantize_qwen2_896) { qcase_test(1); }
TEST(archs_model_quantize_mistral) { qcase_test(2); }
TEST(archs_model_quantize_qwen2) { qcase_test(3); }
TEST(archs_model_quantize_gemma) { qcase_test(4); }
TEST(archs_model_quantize_gemma2) { qcase_test(5); }

/* ---- --imatrix ----
 * An importance matrix with known values, in both of llama.cpp's forms, written here: every
 * weight of the 8-layer llama except token_embd (llama-imatrix has none for it) and
 * blk.3.ffn_up (a missing entry quantizes unweighted), plus an entry for a tensor the model
 * lacks (ignored). The .dat form stores value * ncall with ncall 3; the GGUF form sums with
 * counts 7, and one entry with count 0 (its values become 1). */

static float imx_value(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return 0.02f + (float)(*s >> 8) / (float)(1u << 24) * 9.0f;
}

typedef struct {
    char name[64];
    int n;
} ImxEntry;

static int imx_entries(ImxEntry *e, int cap) {
    static const char *const per_layer[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    int n = 0;
    for (int l = 0; l < 8; l++)
        for (size_t k = 0; k < SA_ARRAY_LEN(per_layer) && n < cap; k++) {
            if (l == 3 && !strcmp(per_layer[k], "ffn_up")) continue;
            snprintf(e[n].name, sizeof e[n].name, "blk.%d.%s.weight", l, per_layer[k]);
            e[n++].n = strcmp(per_layer[k], "ffn_down") ? 256 : 512;
        }
    snprintf(e[n].name, sizeof e[n].name, "blk.99.attn_q.weight");
    e[n++].n = 256;
    return n;
}

static int write_dat(const char *path, const ImxEntry *e, int n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t seed = 1;
    int32_t v = n;
    fwrite(&v, 4, 1, f);
    for (int i = 0; i < n; i++) {
        v = (int32_t)strlen(e[i].name);
        fwrite(&v, 4, 1, f);
        fwrite(e[i].name, 1, strlen(e[i].name), f);
        v = 3;
        fwrite(&v, 4, 1, f);
        v = e[i].n;
        fwrite(&v, 4, 1, f);
        for (int j = 0; j < e[i].n; j++) {
            const float x = imx_value(&seed) * 3;
            fwrite(&x, 4, 1, f);
        }
    }
    v = 10; /* the optional trailer: chunks, dataset name */
    fwrite(&v, 4, 1, f);
    v = 4;
    fwrite(&v, 4, 1, f);
    fwrite("test", 1, 4, f);
    return fclose(f);
}

static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void put_str(FILE *f, const char *s) {
    put_u64(f, strlen(s));
    fwrite(s, 1, strlen(s), f);
}

/* GGUF v3: the three imatrix.* keys, then NAME.in_sum2 [n] and NAME.counts [1] per entry (F32). */
static int write_imx_gguf(const char *path, const ImxEntry *e, int n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite("GGUF", 1, 4, f);
    put_u32(f, 3);
    put_u64(f, (uint64_t)n * 2);
    put_u64(f, 3);
    put_str(f, "imatrix.datasets");
    put_u32(f, 9); /* array */
    put_u32(f, 8); /* of strings */
    put_u64(f, 1);
    put_str(f, "test");
    put_str(f, "imatrix.chunk_count");
    put_u32(f, 4);
    put_u32(f, 10);
    put_str(f, "imatrix.chunk_size");
    put_u32(f, 4);
    put_u32(f, 512);
    uint64_t off = 0;
    for (int i = 0; i < n; i++)
        for (int part = 0; part < 2; part++) {
            char name[sizeof e[i].name + 16];
            snprintf(name, sizeof name, "%.63s.%s", e[i].name, part ? "counts" : "in_sum2");
            put_str(f, name);
            put_u32(f, 2);
            put_u64(f, part ? 1 : (uint64_t)e[i].n);
            put_u64(f, 1);
            put_u32(f, 0); /* F32 */
            put_u64(f, off);
            off += ((part ? 1 : (uint64_t)e[i].n) * 4 + 31) / 32 * 32;
        }
    long pos = ftell(f);
    for (; pos % 32; pos++) fputc(0, f);
    uint32_t seed = 2;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < e[i].n; j++) {
            const float x = imx_value(&seed) * 7;
            fwrite(&x, 4, 1, f);
        }
        for (int j = e[i].n * 4; j % 32; j++) fputc(0, f);
        const float cnt = i == 5 ? 0.0f : 7.0f;
        fwrite(&cnt, 4, 1, f);
        for (int j = 4; j % 32; j++) fputc(0, f);
    }
    return fclose(f);
}

/* The weighted quantizers of the types addressed by GGUF id (Q2_K, Q3_K, IQ4_NL, IQ4_XS: their
 * SaDtype rows may not be in this build): llama.cpp's --pure file with the imatrix, its blocks read
 * at the offsets the oracle lists, against ours on the same F16 rows and importance values. */
static void weighted_by_id(const char *lq, const char *dir, const char *dat) {
    static const struct {
        const char *ftype;
        int gg;
        size_t block, bytes;
        int with_imatrix;
    } kinds[] = {{"Q2_K", 10, 256, 84, 1},   {"Q3_K_S", 11, 256, 110, 1}, {"IQ4_NL", 20, 32, 18, 1},
                 {"IQ4_XS", 23, 256, 136, 1}, {"IQ4_NL", 20, 32, 18, 0},  {"IQ4_XS", 23, 256, 136, 0}};
    SaImatrix im;
    Gguf src;
    char cmd[2048], path[300];
    snprintf(path, sizeof path, "%s/f16.gguf", dir);
    if (sa_imatrix_load(dat, &im) || gguf_open(&src, path)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    for (size_t k = 0; k < SA_ARRAY_LEN(kinds); k++) {
        /* without an importance matrix these are the file-type runs' business once the build can write them */
        if (!kinds[k].with_imatrix && sa_conv_type_available((SaConvType)sa_conv_type_from_name(kinds[k].ftype))) continue;
        snprintf(path, sizeof path, "%s/pure-%s-%d.gguf", dir, kinds[k].ftype, kinds[k].with_imatrix);
        snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s %s pure %s%s 2>&1", lq, dir, path, kinds[k].ftype,
                 kinds[k].with_imatrix ? "imatrix=" : "", kinds[k].with_imatrix ? dat : "");
        if (sh(cmd)) continue;
        snprintf(cmd, sizeof cmd, "%s --types %s", lq, path);
        int st;
        char *listing = test_run(cmd, &st);
        size_t flen = 0;
        uint8_t *file = (uint8_t *)sa_read_file(path, &flen);
        int tensors = 0;
        int64_t blocks = 0, differ = 0;
        for (char *save = NULL, *line = strtok_r(listing, "\n", &save); line && file && !st; line = strtok_r(NULL, "\n", &save)) {
            char name[128];
            int gt;
            unsigned long long off, nb;
            if (sscanf(line, "%127s %d %llu %llu", name, &gt, &off, &nb) != 4 || gt != kinds[k].gg) continue;
            const SaImatrixEntry *e = kinds[k].with_imatrix ? sa_imatrix_find(&im, name) : NULL;
            const GgufTensor *t = gguf_tensor(&src, name);
            if ((kinds[k].with_imatrix && (!e || e->n != t->ne[0])) || !t || t->type != GGML_F16 || off + nb > flen)
                continue; /* not weighted in llama.cpp's file either: Q2_K/Q3_K's reference quantizers are elsewhere */
            const int64_t cols = t->ne[0], rows = t->ne[1];
            const size_t rb = (size_t)cols / kinds[k].block * kinds[k].bytes;
            float *x = malloc((size_t)cols * sizeof *x);
            uint8_t *mine = malloc(rb);
            for (int64_t r = 0; r < rows && rb * (size_t)rows == nb; r++) {
                sa_dequantize_row(SA_F16, (const uint16_t *)t->data + r * cols, x, cols);
                CHECK(sa_quantize_row_imatrix_gg(kinds[k].gg, x, mine, cols, e ? e->values : NULL) == 0);
                for (size_t b = 0; b < rb / kinds[k].bytes; b++, blocks++)
                    if (memcmp(mine + b * kinds[k].bytes, file + off + r * rb + b * kinds[k].bytes, kinds[k].bytes) &&
                        differ++ < 3)
                        test_fail(__FILE__, __LINE__, "%s --imatrix: %s row %lld block %zu differs from llama.cpp's",
                                  kinds[k].ftype, name, (long long)r, b);
            }
            free(x);
            free(mine);
            tensors++;
        }
        printf("    --pure %-6s%s: %d tensors, %lld blocks, %lld differ from llama.cpp's\n", kinds[k].ftype,
               kinds[k].with_imatrix ? " --imatrix" : "", tensors, (long long)blocks, (long long)differ);
        CHECKF(tensors > 0 && differ == 0, "%s: %lld of %lld blocks differ", kinds[k].ftype, (long long)differ, (long long)blocks);
        free(listing);
        free(file);
    }
    gguf_close(&src);
    sa_imatrix_free(&im);
}

TEST(archs_model_quantize_imatrix) {
    const char *lq = getenv("SALIGN_LLAMACPP_QUANTIZE"), *toks = tokenizer_dir();
    if (!lq || !*lq) {
        test_skip("needs llama.cpp's quantizer (tests/run-archs.sh sets SALIGN_LLAMACPP_QUANTIZE)");
        return;
    }
    if (!toks) {
        test_skip("no tokenizer files (../shared/models/tokenizers)");
        return;
    }
    char dir[256], cmd[2048], dat[300], gg[300];
    snprintf(dir, sizeof dir, "%s/quantize-imatrix", test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (sh(cmd)) return;
    snprintf(cmd, sizeof cmd,
             "%s --arch llama %s --seed 51 --dtype f16 --vocab-from %s --hf %s/hf --gguf %s/f16.gguf --gguf-type f16 2>&1",
             synth_bin(), qcases[0].flags, toks, dir, dir);
    if (sh(cmd)) return;
    ImxEntry e[64];
    const int n = imx_entries(e, 63);
    snprintf(dat, sizeof dat, "%s/imatrix.dat", dir);
    snprintf(gg, sizeof gg, "%s/imatrix.gguf", dir);
    CHECK(write_dat(dat, e, n) == 0 && write_imx_gguf(gg, e, n) == 0);
    static const struct {
        const char *type;
        int gguf;
    } runs[] = {{"q4_k_m", 0}, {"q6_k", 0}, {"q4_0", 0}, {"q5_1", 0}, {"q4_1", 0}, {"q5_k_m", 1}, {"q5_0", 1}, {"q5_k_s", 1},
                 /* written once this build has their types (until then weighted_by_id covers their blocks) */
                 {"q3_k_m", 0}, {"q2_k", 1}, {"iq4_xs", 0}, {"iq4_nl", 1}};
    int done = 0, want = 0;
    for (size_t r = 0; r < SA_ARRAY_LEN(runs); r++) {
        if (!sa_conv_type_available((SaConvType)sa_conv_type_from_name(runs[r].type))) continue;
        want++;
        char upper[16], out[300], salm[300], what[128];
        size_t u = 0;
        for (; runs[r].type[u]; u++) upper[u] = (char)(runs[r].type[u] >= 'a' ? runs[r].type[u] - 32 : runs[r].type[u]);
        upper[u] = 0;
        const char *im = runs[r].gguf ? gg : dat;
        snprintf(out, sizeof out, "%s/%s.gguf", dir, runs[r].type);
        snprintf(salm, sizeof salm, "%s/%s.salm", dir, runs[r].type);
        snprintf(cmd, sizeof cmd,
                 "%s %s/f16.gguf %s %s imatrix=%s 2>&1 && %s %s/f16.gguf %s --type %s --imatrix %s -q 2>&1", lq,
                 dir, out, upper, im, qbin(), dir, salm, runs[r].type, im);
        if (sh(cmd)) continue;
        snprintf(what, sizeof what, "--type %s --imatrix %s", runs[r].type, runs[r].gguf ? "imatrix.gguf" : "imatrix.dat");
        if (compare_files(what, out, salm, 0, 32) > 0) done++;
    }
    printf("    %d of %d imatrix conversions byte-identical to llama.cpp's\n", done, want);
    CHECK(want >= 8 && done == want);
    weighted_by_id(lq, dir, dat);
    /* a non-finite importance value is refused naming the entry (llama-quantize refuses it too),
     * and so is an entry whose length is not the tensor's row length; neither leaves an output */
    FILE *f = fopen(dat, "r+b");
    const float nan_v = NAN;
    const long first_value = 4 + 4 + (long)strlen(e[0].name) + 8;
    if (f && fseek(f, first_value + 4 * 7, SEEK_SET) == 0) fwrite(&nan_v, 4, 1, f);
    if (f) fclose(f);
    int st;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.salm", dir);
    snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s --type q4_0 --imatrix %s -q 2>&1", qbin(), dir, bad, dat);
    char *out = test_run(cmd, &st);
    CHECKF(st && strstr(out, "salign-quantize: --imatrix:") && strstr(out, e[0].name) && strstr(out, "finite"), "%s", out);
    CHECK(access(bad, F_OK) != 0);
    free(out);
    e[2].n = 128; /* blk.0.attn_v.weight with half a row */
    CHECK(write_dat(dat, e, n) == 0);
    out = test_run(cmd, &st);
    CHECKF(st && strstr(out, "blk.0.attn_v.weight") && strstr(out, "--imatrix has 128 values for it"), "%s", out);
    CHECK(access(bad, F_OK) != 0);
    free(out);
    if (!getenv("SALIGN_KEEP_ARCHS")) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        sh(cmd);
    }
}
