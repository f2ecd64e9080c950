/* test_quantize.c - salign-quantize's file types against llama.cpp's own quantizer, tensor for
 * tensor: the same F16 GGUF quantized by llama.cpp (tests/oracles/llamacpp-quantize.c, built by
 * tests/run-archs.sh against node-llama-cpp's libllama: $SALIGN_LLAMACPP_QUANTIZE) and by
 * bin/salign-quantize from that GGUF and from the HF directory of the same synthetic model must
 * give every tensor the same type and the same bytes.
 *
 * The matrix: every one of the 16 file types, from both sources, on a synthetic model of each of
 * the five architectures and on a Qwen2 of hidden 896 (the shapes and what each exercises: qcases
 * below); on the llama also --pure, --tensor-type and a .salm source. With an importance matrix:
 * one with known values in both of llama.cpp's forms, and one made by llama.cpp's llama-imatrix
 * quantized by the real llama-quantize ($SALIGN_LLAMACPP_BIN). The models use a 262-token vocabulary
 * written here (tiny_vocab), so that the layers, not the embedding, are what is quantized. Named
 * archs_model_* so that make test runs them once, in run-archs.sh, with the oracles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

typedef struct {
    const char *arch, *flags;
    int head_dim; /* for the HF row permutation of llama-arch q/k */
    int permuted; /* llama / mistral: GGUF q/k rows permuted */
} QCase;

static const char *const all_types[] = {"q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k",   "q3_k_m", "q3_k_l", "q3_k_s",
                                        "q2_k",   "iq4_xs", "iq4_nl", "q4_0",   "q4_1",   "q5_0",   "q5_1",   "q8_0"};

/* The shapes: as small as the rules allow (hidden 256, the least row length a K-quant takes; ff 256),
 * with layers enough that every layer-dependent rule has layers on both sides of it. Llama: 16
 * layers (n/16 = 1: Q3_K_M's Q5_K ffn_down; n/8 = 2; use_more_bits picks 0, 1, 4, 7, 10, 13, 14,
 * 15), grouped-query attention 4 (the GQA >= 4 choices of Q2_K and IQ4_*), tied. Mistral GQA 1 and
 * untied; Qwen2 with q/k/v biases; Gemma multi-query with head_dim x heads != hidden; Gemma 2 with
 * GQA 4 and post-norms; a Qwen2 with Qwen2.5-0.5B's hidden 896 (not a multiple of 256: the shape
 * fallbacks, the classifier's Q8_0; ff 256 keeps ffn_down's rows K-quant as Qwen2.5's 4864 does). */
static const QCase qcases[] = {
    {"llama", "--hidden 256 --layers 16 --heads 8 --kv-heads 2 --ff 256 --tied", 32, 1},
    {"mistral", "--hidden 256 --layers 8 --heads 4 --kv-heads 4 --ff 256 --untied", 64, 1},
    {"qwen2", "--hidden 256 --layers 8 --heads 4 --kv-heads 2 --ff 256", 64, 0},
    {"gemma", "--hidden 256 --layers 6 --heads 2 --kv-heads 1 --ff 256 --head-dim 128", 128, 0},
    {"gemma2", "--hidden 256 --layers 6 --heads 8 --kv-heads 2 --ff 256 --head-dim 32 --sliding-window 8", 32, 0},
    {"qwen2", "--hidden 896 --layers 2 --heads 14 --kv-heads 2 --head-dim 64 --ff 256 --tied", 64, 0},
};

/* A 262-token SentencePiece-style vocabulary (<unk> <s> </s>, the 256 byte tokens, "▁", "a", "b"
 * merged to "ab"), written once into the scratch folder: the quantizers and their rules never look
 * at the vocabulary, and with 32,000 tokens the embedding would be most of every file. llama.cpp
 * loads it too (llama-imatrix tokenizes its text into the byte tokens). Returns the folder. */
static const char *tiny_vocab(void) {
    static char dir[300];
    snprintf(dir, sizeof dir, "%s/tiny-vocab", test_tmpdir());
    char path[400];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, F_OK) == 0) return dir;
    FILE *f = (mkdir(dir, 0755), fopen(path, "wb"));
    if (!f) return NULL;
    fputs("{\"version\": \"1.0\", \"added_tokens\": [", f);
    static const char *const special[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++)
        fprintf(f, "%s{\"id\": %d, \"content\": \"%s\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                   "\"normalized\": false, \"special\": true}",
                i ? ", " : "", i, special[i]);
    fputs("], \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\u2581\"}, "
          "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}]}, \"pre_tokenizer\": null, "
          "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
          "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}, \"decoder\": null, \"model\": {\"type\": "
          "\"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"fuse_unk\": true, \"vocab\": {",
          f);
    for (int i = 0; i < 3; i++) fprintf(f, "\"%s\": %d, ", special[i], i);
    for (int b = 0; b < 256; b++) fprintf(f, "\"<0x%02X>\": %d, ", b, 3 + b);
    fputs("\"\u2581\": 259, \"a\": 260, \"b\": 261, \"ab\": 262}, \"merges\": [\"a b\"]}}\n", f);
    return fclose(f) == 0 ? dir : NULL;
}

/* ftype in llama.cpp's spelling (Q4_K_M) */
static void upper_name(const char *t, char *out, size_t cap) {
    size_t u = 0;
    for (; t[u] && u < cap - 1; u++) out[u] = (char)(t[u] >= 'a' && t[u] <= 'z' ? t[u] - 32 : t[u]);
    out[u] = 0;
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
    snprintf(keep, sizeof keep, "%s %s/f16.gguf %s/f16.salm --type keep -q -t 1 2>&1", qbin(), dir, dir);
    if (sh(keep)) return 0;
    for (size_t r = 0; r < SA_ARRAY_LEN(runs); r++) {
        char cmd[2048], gguf[300], salm[300], upper[16], what[300];
        upper_name(runs[r].type, upper, sizeof upper);
        snprintf(gguf, sizeof gguf, "%s/opt%zu.gguf", dir, r);
        snprintf(salm, sizeof salm, "%s/opt%zu.salm", dir, r);
        snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s %s %s 2>&1 && %s %s/%s %s --type %s %s -q -t 1 2>&1", lq, dir, gguf,
                 upper, runs[r].theirs, qbin(), dir, r == 0 ? "f16.salm" : "hf", salm, runs[r].type, runs[r].ours);
        if (sh(cmd)) continue;
        snprintf(what, sizeof what, "%s --type %s %s%s", c->arch, runs[r].type, runs[r].ours, r == 0 ? " from .salm" : "");
        if (compare_files(what, gguf, salm, r == 0 ? 0 : c->permuted, c->head_dim) > 0) done++;
    }
    return done;
}

/* Every file type, from the GGUF and from the HF directory: llama-quantize once per type, our two
 * conversions against its file. One thread on both sides (the oracle quantizes with one): on a
 * shared 2-core machine OpenMP's waiting threads cost more than these small files take. */
static void qcase_test(int k) {
    const QCase *c = &qcases[k];
    const char *lq = getenv("SALIGN_LLAMACPP_QUANTIZE"), *vocab = tiny_vocab();
    if (!lq || !*lq) {
        test_skip("needs llama.cpp's quantizer (tests/run-archs.sh sets SALIGN_LLAMACPP_QUANTIZE)");
        return;
    }
    if (!vocab) {
        test_fail(__FILE__, __LINE__, "cannot write the test vocabulary in %s", test_tmpdir());
        return;
    }
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "%s/quantize-%d-%s", test_tmpdir(), k, c->arch);
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (sh(cmd)) return;
    snprintf(cmd, sizeof cmd,
             "%s --arch %s %s --seed %d --dtype f16 --vocab-from %s --hf %s/hf --gguf %s/f16.gguf --gguf-type f16 2>&1",
             synth_bin(), c->arch, c->flags, 41 + k, vocab, dir, dir);
    if (sh(cmd)) return;
    int done = 0;
    for (size_t i = 0; i < SA_ARRAY_LEN(all_types); i++) {
        const char *t = all_types[i];
        char upper[16], gguf[300], salm[300], what[128];
        upper_name(t, upper, sizeof upper);
        snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, t);
        snprintf(salm, sizeof salm, "%s/%s.salm", dir, t);
        CHECKF(sa_conv_type_available((SaConvType)sa_conv_type_from_name(t)), "--type %s: not available in this build", t);
        snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s %s 2>&1", lq, dir, gguf, upper);
        if (sh(cmd)) continue;
        for (int hf = 0; hf < 2; hf++) {
            snprintf(cmd, sizeof cmd, "%s %s/%s %s --type %s -q -t 1 2>&1", qbin(), dir, hf ? "hf" : "f16.gguf", salm, t);
            snprintf(what, sizeof what, "%s %s from %s", c->arch, t, hf ? "HF" : "GGUF");
            if (sh(cmd) == 0 && compare_files(what, gguf, salm, hf && c->permuted, c->head_dim) > 0) done++;
        }
        snprintf(cmd, sizeof cmd, "rm -f %s %s", gguf, salm);
        sh(cmd);
    }
    const int want = 2 * (int)SA_ARRAY_LEN(all_types) + (k == 0 ? 4 : 0);
    if (k == 0) done += option_runs(c, lq, dir);
    printf("    %s %s: %d of %d conversions byte-identical to llama.cpp's\n", c->arch, c->flags, done, want);
    CHECK(done == want);
    if (!getenv("SALIGN_KEEP_ARCHS")) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        sh(cmd);
    }
}

TEST(archs_model_quantize_llama) { qcase_test(0); }
TEST(archs_model_quantize_mistral) { qcase_test(1); }
TEST(archs_model_quantize_qwen2) { qcase_test(2); }
TEST(archs_model_quantize_gemma) { qcase_test(3); }
TEST(archs_model_quantize_gemma2) { qcase_test(4); }
TEST(archs_model_quantize_qwen2_896) { qcase_test(5); }

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

/* the model these entries fit: 8 layers, ffn_down rows of 512 */
#define IMX_FLAGS "--hidden 256 --layers 8 --heads 8 --kv-heads 2 --ff 512 --tied"

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

/* File type `type` made by llama.cpp and by us from dir/f16.gguf with the importance matrix `im`:
 * 1 when every tensor is byte-identical (else the failure is reported). */
static int imatrix_run(const char *lq, const char *dir, const char *type, const char *im) {
    char upper[16], out[300], salm[300], what[400], cmd[2048];
    upper_name(type, upper, sizeof upper);
    snprintf(out, sizeof out, "%s/imx-%s.gguf", dir, type);
    snprintf(salm, sizeof salm, "%s/imx-%s.salm", dir, type);
    snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s %s imatrix=%s 2>&1 && %s %s/f16.gguf %s --type %s --imatrix %s -q -t 1 2>&1",
             lq, dir, out, upper, im, qbin(), dir, salm, type, im);
    if (sh(cmd)) return 0;
    snprintf(what, sizeof what, "--type %s --imatrix %s", type, strrchr(im, '/') ? strrchr(im, '/') + 1 : im);
    const int ok = compare_files(what, out, salm, 0, 0) > 0;
    snprintf(cmd, sizeof cmd, "rm -f %s %s", out, salm);
    sh(cmd);
    return ok;
}

TEST(archs_model_quantize_imatrix) {
    const char *lq = getenv("SALIGN_LLAMACPP_QUANTIZE"), *vocab = tiny_vocab();
    if (!lq || !*lq) {
        test_skip("needs llama.cpp's quantizer (tests/run-archs.sh sets SALIGN_LLAMACPP_QUANTIZE)");
        return;
    }
    if (!vocab) {
        test_fail(__FILE__, __LINE__, "cannot write the test vocabulary in %s", test_tmpdir());
        return;
    }
    char dir[256], cmd[2048], dat[300], gg[300];
    snprintf(dir, sizeof dir, "%s/quantize-imatrix", test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (sh(cmd)) return;
    snprintf(cmd, sizeof cmd,
             "%s --arch llama %s --seed 51 --dtype f16 --vocab-from %s --hf %s/hf --gguf %s/f16.gguf --gguf-type f16 2>&1",
             synth_bin(), IMX_FLAGS, vocab, dir, dir);
    if (sh(cmd)) return;
    ImxEntry e[64];
    const int n = imx_entries(e, 63);
    snprintf(dat, sizeof dat, "%s/imatrix.dat", dir);
    snprintf(gg, sizeof gg, "%s/imatrix.gguf", dir);
    CHECK(write_dat(dat, e, n) == 0 && write_imx_gguf(gg, e, n) == 0);
    static const struct {
        const char *type;
        int gguf;
    } runs[] = {{"q4_k_m", 0}, {"q6_k", 0}, {"q4_0", 0}, {"q5_1", 0}, {"q4_1", 0},   {"q5_k_m", 1},
                {"q5_0", 1},   {"q5_k_s", 1}, {"q3_k_m", 0}, {"q2_k", 1}, {"iq4_xs", 0}, {"iq4_nl", 1}};
    int done = 0;
    for (size_t r = 0; r < SA_ARRAY_LEN(runs); r++) done += imatrix_run(lq, dir, runs[r].type, runs[r].gguf ? gg : dat);
    printf("    %d of %zu imatrix conversions byte-identical to llama.cpp's\n", done, SA_ARRAY_LEN(runs));
    CHECK(done == (int)SA_ARRAY_LEN(runs));
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

/* ---- an importance matrix made by llama.cpp's llama-imatrix ----
 * llama-imatrix (and llama-quantize: the real tools, built from the same llama.cpp release in the
 * peer build that tests/run-archs.sh prepares: $SALIGN_LLAMACPP_BIN) runs the 16-layer llama and the
 * hidden-896 Qwen2 of the matrix above over the first 4 KiB of tests/data/perplexity-stories.txt
 * (4 chunks of 128 tokens), writing both of its formats (GGUF and the older .dat); then
 * `llama-quantize --imatrix` and `salign-quantize --imatrix` make the same file types from the F16
 * GGUF: every tensor must be byte-identical. The types: each weighted block type at least once, the
 * Q4_1 / Q5_1 guard of the first ffn_down layers (Q4_0, Q5_0) and, at hidden 896, the fallbacks. */
static void llamacpp_imatrix_case(int k, const char *const *types, int n_types) {
    const QCase *c = &qcases[k];
    const char *bin = getenv("SALIGN_LLAMACPP_BIN"), *vocab = tiny_vocab();
    if (!bin || !*bin) {
        test_skip("needs llama.cpp's llama-imatrix and llama-quantize (tests/run-archs.sh sets SALIGN_LLAMACPP_BIN)");
        return;
    }
    if (!vocab) {
        test_fail(__FILE__, __LINE__, "cannot write the test vocabulary in %s", test_tmpdir());
        return;
    }
    char dir[256], cmd[3072];
    snprintf(dir, sizeof dir, "%s/llamacpp-imatrix-%d", test_tmpdir(), k);
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && mkdir -p %s && head -c 4096 tests/data/perplexity-stories.txt > %s/text.txt && "
             "%s --arch %s %s --seed %d --dtype f16 --vocab-from %s --gguf %s/f16.gguf --gguf-type f16 2>&1",
             dir, dir, dir, synth_bin(), c->arch, c->flags, 61 + k, vocab, dir);
    if (sh(cmd)) return;
    for (int dat = 0; dat < 2; dat++) {
        snprintf(cmd, sizeof cmd,
                 "%s/llama-imatrix -m %s/f16.gguf -f %s/text.txt -c 128 --chunks 4 -t 1 --no-ppl -o %s/imatrix.%s "
                 "--output-format %s 2>&1",
                 bin, dir, dir, dir, dat ? "dat" : "gguf", dat ? "dat" : "gguf");
        if (sh(cmd)) return;
    }
    int done = 0;
    for (int i = 0; i < n_types; i++) {
        char upper[16], im[300], out[300], salm[300], what[300];
        upper_name(types[i], upper, sizeof upper);
        snprintf(im, sizeof im, "%s/imatrix.%s", dir, i % 2 ? "dat" : "gguf");
        snprintf(out, sizeof out, "%s/%s.gguf", dir, types[i]);
        snprintf(salm, sizeof salm, "%s/%s.salm", dir, types[i]);
        snprintf(cmd, sizeof cmd,
                 "%s/llama-quantize --imatrix %s %s/f16.gguf %s %s 1 2>&1 && %s %s/f16.gguf %s --type %s --imatrix %s -q -t 1 2>&1",
                 bin, im, dir, out, upper, qbin(), dir, salm, types[i], im);
        if (sh(cmd)) continue;
        snprintf(what, sizeof what, "%s %s with llama-imatrix's %s", c->arch, types[i], i % 2 ? "imatrix.dat" : "imatrix.gguf");
        if (compare_files(what, out, salm, 0, c->head_dim) > 0) done++;
        snprintf(cmd, sizeof cmd, "rm -f %s %s", out, salm);
        sh(cmd);
    }
    /* and the matrix mattered: without it the first type's blk.0.attn_q comes out otherwise */
    char with[300], without[300];
    snprintf(with, sizeof with, "%s/with.salm", dir);
    snprintf(without, sizeof without, "%s/without.salm", dir);
    snprintf(cmd, sizeof cmd, "%s %s/f16.gguf %s --type %s --imatrix %s/imatrix.gguf -q -t 1 2>&1 && %s %s/f16.gguf %s --type %s -q -t 1 2>&1",
             qbin(), dir, with, types[0], dir, qbin(), dir, without, types[0]);
    Salm a, b;
    if (sh(cmd) == 0 && salm_open(&a, with, 0) == 0) {
        if (salm_open(&b, without, 0) == 0) {
            const SalmTensor *ta = salm_tensor(&a, "blk.0.attn_q.weight"), *tb = salm_tensor(&b, "blk.0.attn_q.weight");
            CHECKF(ta && tb && ta->nbytes == tb->nbytes && memcmp(ta->data, tb->data, ta->nbytes),
                   "%s: the importance matrix changed nothing in blk.0.attn_q.weight", types[0]);
            salm_close(&b);
        }
        salm_close(&a);
    }
    printf("    %s %s: %d of %d file types made with llama-imatrix's matrix byte-identical to llama-quantize's\n", c->arch,
           c->flags, done, n_types);
    CHECK(done == n_types);
    if (!getenv("SALIGN_KEEP_ARCHS")) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        sh(cmd);
    }
}

TEST(archs_model_quantize_llamacpp_imatrix_llama) {
    static const char *const types[] = {"q4_k_m", "q4_0", "iq4_xs", "q5_0", "q3_k_s", "q2_k", "q5_k_s", "iq4_nl", "q6_k", "q4_1"};
    llamacpp_imatrix_case(0, types, (int)SA_ARRAY_LEN(types));
}
TEST(archs_model_quantize_llamacpp_imatrix_qwen2_896) {
    static const char *const types[] = {"q4_k_m", "q3_k_m", "iq4_xs", "q5_1"};
    llamacpp_imatrix_case(5, types, (int)SA_ARRAY_LEN(types));
}
