/* test_context.c - the forward pass's batch/rollback invariants on the real stories260K model:
 * a batched prompt equals token-by-token evaluation, truncate + re-evaluate equals a fresh
 * context, and sa_ctx_prompt reuses exactly the common prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common.h"
#include "../src/context.h"
#include "../src/parallel.h"
#include "test.h"

static int load_stories(SaModel *m, const char *type) {
    const char *dir = test_models_dir();
    if (!dir) {
        test_skip("../shared/models not present");
        return -1;
    }
    char name[64], cmd[1024];
    snprintf(name, sizeof name, "ctx-%s.salm", type);
    const char *out = test_tmp(name);
    snprintf(cmd, sizeof cmd, "test -f %s || bin/salign-quantize %s/stories260K.gguf %s --type %s -q", out, dir, out, type);
    int st;
    free(test_run(cmd, &st));
    if (st != 0 || sa_model_load(m, out, NULL) != 0) {
        test_fail(__FILE__, __LINE__, "cannot prepare %s: %s", out, sa_errmsg());
        return -1;
    }
    return 0;
}

static void batch_equals_sequential(const char *type, SaDtype kv) {
    SaModel m;
    if (load_stories(&m, type)) return;
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.kv_type = kv;
    SaCtx *a = sa_ctx_new(&m, &p), *b = sa_ctx_new(&m, &p);
    int32_t toks[40];
    for (int i = 0; i < 40; i++) toks[i] = i == 0 ? 1 : 3 + (i * 37) % 500;
    CHECK(sa_ctx_eval(a, toks, 40, 1) == 0);
    const int V = m.hp.n_vocab;
    double worst = 0;
    for (int i = 0; i < 40; i++) {
        CHECK(sa_ctx_eval(b, &toks[i], 1, 0) == 0);
        double e = test_nmse(sa_ctx_logits(a, i), sa_ctx_logits(b, -1), V);
        if (e > worst) worst = e;
    }
    CHECKF(worst < 1e-6, "%s: batched vs sequential logits NMSE %g", type, worst);
    /* roll back and continue differently: equals a fresh context on the new sequence */
    sa_ctx_truncate(a, 25);
    int32_t alt[10];
    for (int i = 0; i < 10; i++) alt[i] = 100 + i * 7;
    CHECK(sa_ctx_eval(a, alt, 10, 0) == 0);
    SaCtx *f = sa_ctx_new(&m, &p);
    int32_t full[35];
    memcpy(full, toks, 25 * sizeof(int32_t));
    memcpy(full + 25, alt, 10 * sizeof(int32_t));
    CHECK(sa_ctx_eval(f, full, 35, 0) == 0);
    double e = test_nmse(sa_ctx_logits(a, -1), sa_ctx_logits(f, -1), V);
    CHECKF(e < 1e-6, "%s: after rollback NMSE %g", type, e);
    sa_ctx_free(a);
    sa_ctx_free(b);
    sa_ctx_free(f);
    sa_model_free(&m);
}

TEST(ctx_batch_equals_sequential_f32) { batch_equals_sequential("f32", SA_F32); }
TEST(ctx_batch_equals_sequential_q8_0) { batch_equals_sequential("q8_0", SA_F16); }
TEST(ctx_batch_equals_sequential_q4_0) { batch_equals_sequential("q4_0", SA_F16); }

TEST(ctx_prompt_reuses_common_prefix) {
    SaModel m;
    if (load_stories(&m, "f32")) return;
    SaCtx *c = sa_ctx_new(&m, NULL), *f = sa_ctx_new(&m, NULL);
    int32_t a[20], b[24];
    for (int i = 0; i < 20; i++) a[i] = 1 + i * 11 % 400;
    memcpy(b, a, 12 * sizeof(int32_t));
    for (int i = 12; i < 24; i++) b[i] = 200 + i;
    CHECK(sa_ctx_prompt(c, a, 20) == 0);
    const SaKv *kv = sa_ctx_kv(c);
    CHECK_EQ_INT(kv->n_evaluated, 20);
    CHECK(sa_ctx_prompt(c, b, 24) == 0);
    CHECK_EQ_INT(kv->n_reused, 12);
    CHECK_EQ_INT(kv->n_evaluated, 32);
    CHECK(sa_ctx_prompt(f, b, 24) == 0);
    CHECK(test_nmse(sa_ctx_logits(c, -1), sa_ctx_logits(f, -1), m.hp.n_vocab) < 1e-6);
    /* same prompt again: only the last token is re-evaluated (its logits are needed) */
    CHECK(sa_ctx_prompt(c, b, 24) == 0);
    CHECK_EQ_INT(kv->n_evaluated, 33);
    CHECK(test_nmse(sa_ctx_logits(c, -1), sa_ctx_logits(f, -1), m.hp.n_vocab) < 1e-6);
    /* a context that is too small refuses and stays unchanged */
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.n_ctx = 16;
    SaCtx *s = sa_ctx_new(&m, &p);
    CHECK(sa_ctx_eval(s, a, 10, 0) == 0);
    CHECK(sa_ctx_eval(s, a, 10, 0) != 0);
    CHECK(strstr(sa_errmsg(), "context full") != NULL);
    CHECK_EQ_INT(sa_ctx_pos(s), 10);
    int32_t bad = 999999;
    CHECK(sa_ctx_eval(s, &bad, 1, 0) != 0);
    CHECK_EQ_INT(sa_ctx_pos(s), 10);
    sa_ctx_free(s);
    sa_ctx_free(c);
    sa_ctx_free(f);
    sa_model_free(&m);
}

/* Threads change nothing but speed: logits with 1 and 2 threads agree to float rounding. */
TEST(ctx_threads_agree) {
    SaModel m;
    if (load_stories(&m, "q8_0")) return;
    int32_t toks[16];
    for (int i = 0; i < 16; i++) toks[i] = 1 + i * 29 % 500;
    float *ref = malloc((size_t)m.hp.n_vocab * sizeof(float));
    for (int t = 1; t <= 2; t++) {
        sa_set_threads(t);
        SaCtx *c = sa_ctx_new(&m, NULL);
        CHECK(sa_ctx_eval(c, toks, 16, 0) == 0);
        if (t == 1) memcpy(ref, sa_ctx_logits(c, -1), (size_t)m.hp.n_vocab * sizeof(float));
        else CHECK(test_nmse(sa_ctx_logits(c, -1), ref, m.hp.n_vocab) < 1e-10);
        sa_ctx_free(c);
    }
    sa_set_threads(1);
    free(ref);
    sa_model_free(&m);
}

/* ---- the Q8_0 KV cache (--kv-type q8_0) ---- */

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Logits rows 0..N-1 of two contexts that evaluated the same tokens: the worst and mean NMSE of
 * q against f, and at how many rows their top-1 token is the same. */
typedef struct {
    double worst, mean;
    int same;
} LogitAgreement;
static LogitAgreement compare_logit_rows(SaCtx *q, SaCtx *f, int N, int V) {
    LogitAgreement a = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        const double e = test_nmse(sa_ctx_logits(q, i), sa_ctx_logits(f, i), V);
        a.worst = e > a.worst ? e : a.worst;
        a.mean += e / N;
        a.same += argmax(sa_ctx_logits(q, i), V) == argmax(sa_ctx_logits(f, i), V);
    }
    return a;
}

/* Teacher-forced on the f16 cache's own greedy continuation from BOS: at every step the logits
 * with the q8_0 cache are those of the f16 cache up to the cache's quantization error. stories260K
 * has head_dim 8 and 4 KV heads: four heads share each Q8_0 block (the general kernel path).
 * Measured (scalar and AVX2): worst step NMSE 8.5e-3, mean 4.3e-4, top-1 equal at 64/64 steps
 * (f16 against an f32 cache: worst 4e-6). That is 8-bit rounding on a 260K-parameter model, not
 * the kernels: an f32 cache whose rows are rounded through Q8_0 on the way in gives the same
 * numbers, and rounding each 8-value head separately still gives a worst step of 3e-3. */
TEST(ctx_kv_q8_0_close_to_f16) {
    SaModel m;
    if (sa_model_load(&m, "weights/stories260K.salm", NULL)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    const int V = m.hp.n_vocab, N = 64;
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.n_ctx = 128;
    p.kv_type = SA_F16;
    SaCtx *f = sa_ctx_new(&m, &p);
    p.kv_type = SA_Q8_0;
    SaCtx *q = sa_ctx_new(&m, &p);
    CHECK(f && q);
    if (!f || !q) goto out;
    int32_t seq[64];
    seq[0] = 1;
    for (int i = 1; i < N; i++) {
        CHECK(sa_ctx_eval(f, &seq[i - 1], 1, 0) == 0);
        seq[i] = argmax(sa_ctx_logits(f, -1), V);
    }
    sa_ctx_truncate(f, 0);
    CHECK(sa_ctx_eval(f, seq, N, 1) == 0);
    CHECK(sa_ctx_eval(q, seq, N, 1) == 0);
    const LogitAgreement a = compare_logit_rows(q, f, N, V);
    printf("    q8_0 vs f16 cache, %d teacher-forced steps: worst NMSE %.3g, mean %.3g, top-1 equal %d/%d\n", N, a.worst,
           a.mean, a.same, N);
    CHECKF(a.worst < 2e-2 && a.mean < 1e-3, "q8_0 vs f16 cache logits: worst NMSE %g, mean %g", a.worst, a.mean);
    CHECKF(a.same >= N - 2, "top-1 equal at only %d of %d steps", a.same, N);
out:
    sa_ctx_free(f);
    sa_ctx_free(q);
    sa_model_free(&m);
}

/* Bytes of the cache rows [0, n) of every layer equal in both contexts. */
static int kv_rows_equal(const SaKv *a, const SaKv *b, int n) {
    if (a->row_bytes != b->row_bytes || a->n_layer != b->n_layer) return 0;
    for (int l = 0; l < a->n_layer; l++) {
        if (memcmp(sa_kv_k(a, l, 0), sa_kv_k(b, l, 0), (size_t)n * a->row_bytes)) return 0;
        if (memcmp(sa_kv_v(a, l, 0), sa_kv_v(b, l, 0), (size_t)n * a->row_bytes)) return 0;
    }
    return 1;
}

/* Rollback with the q8_0 cache, as the aligner loop does it (sa_ctx_prompt keeping a common
 * prefix, speculative verification truncating inside an all-logits batch): the cache bytes and
 * logits after truncate + re-evaluation are exactly those of a fresh evaluation of the same
 * tokens, whatever the batch split (a row depends only on its token and the rows before it).
 * Q8_0 weights: their GEMM is batch-independent bit for bit (simd/kernels.h), so the logits can be
 * compared with memcmp too (with F32 weights the BLAS output matmul rounds per batch shape). */
TEST(ctx_kv_q8_0_rollback_exact) {
    SaModel m;
    if (load_stories(&m, "q8_0")) return;
    const int V = m.hp.n_vocab;
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.n_ctx = 128;
    p.kv_type = SA_Q8_0;
    SaCtx *a = sa_ctx_new(&m, &p), *f = sa_ctx_new(&m, &p);
    CHECK(a && f);
    if (!a || !f) goto out;
    CHECK(sa_ctx_kv(a)->dtype == SA_Q8_0 && sa_ctx_kv(a)->row_bytes == (size_t)m.hp.n_head_kv * m.hp.head_dim / 32 * 34);
    int32_t toks[40], alt[10], full[35];
    for (int i = 0; i < 40; i++) toks[i] = i == 0 ? 1 : 3 + (i * 37) % 500;
    for (int i = 0; i < 10; i++) alt[i] = 100 + i * 7;
    memcpy(full, toks, 25 * sizeof(int32_t));
    memcpy(full + 25, alt, 10 * sizeof(int32_t));
    /* a: 40 tokens, back to 25, 10 different ones; f: the 35 tokens in one batch */
    CHECK(sa_ctx_eval(a, toks, 40, 1) == 0);
    sa_ctx_truncate(a, 25);
    CHECK(sa_ctx_eval(a, alt, 10, 1) == 0);
    CHECK(sa_ctx_eval(f, full, 35, 1) == 0);
    CHECK_EQ_INT(sa_ctx_pos(a), 35);
    CHECK(kv_rows_equal(sa_ctx_kv(a), sa_ctx_kv(f), 35));
    for (int i = 0; i < 10; i++)
        CHECKF(!memcmp(sa_ctx_logits(a, i), sa_ctx_logits(f, 25 + i), (size_t)V * sizeof(float)), "row %d differs", i);
    /* speculative verification: a draft of 8 evaluated with all logits, rolled back after the
     * third; the logits of the last kept token become the current ones */
    int32_t draft[8];
    for (int i = 0; i < 8; i++) draft[i] = 50 + 13 * i;
    CHECK(sa_ctx_eval(a, draft, 8, 1) == 0);
    sa_ctx_truncate(a, 38);
    sa_ctx_truncate(f, 0);
    int32_t kept[38];
    memcpy(kept, full, 35 * sizeof(int32_t));
    memcpy(kept + 35, draft, 3 * sizeof(int32_t));
    CHECK(sa_ctx_eval(f, kept, 38, 0) == 0);
    CHECK(kv_rows_equal(sa_ctx_kv(a), sa_ctx_kv(f), 38));
    CHECK(!memcmp(sa_ctx_logits(a, -1), sa_ctx_logits(f, -1), (size_t)V * sizeof(float)));
    /* sa_ctx_prompt: keeps the common prefix (30 tokens), evaluates the rest token by token */
    int32_t np[45];
    memcpy(np, full, 30 * sizeof(int32_t));
    for (int i = 30; i < 45; i++) np[i] = 200 + i;
    const uint64_t reused = sa_ctx_kv(a)->n_reused;
    CHECK(sa_ctx_prompt(a, np, 45) == 0);
    CHECK_EQ_INT(sa_ctx_kv(a)->n_reused - reused, 30);
    sa_ctx_truncate(f, 0);
    for (int i = 0; i < 45; i++) CHECK(sa_ctx_eval(f, &np[i], 1, 0) == 0);
    CHECK(kv_rows_equal(sa_ctx_kv(a), sa_ctx_kv(f), 45));
    CHECK(!memcmp(sa_ctx_logits(a, -1), sa_ctx_logits(f, -1), (size_t)V * sizeof(float)));
out:
    sa_ctx_free(a);
    sa_ctx_free(f);
    sa_model_free(&m);
}

TEST(ctx_batch_equals_sequential_kv_q8_0) { batch_equals_sequential("q8_0", SA_Q8_0); }

/* A small random-weight model for these tests, made and loaded: bin/salign-synth `flags` (the
 * vocabulary of ../shared/models' Mistral tokenizer) writes dir/name.gguf or the HF folder
 * dir/name.hf (`kind` "gguf" or "hf": the import path under test), bin/salign-quantize turns it
 * into dir/name.salm at `type`. `reuse`: keep a salm a previous run left. 0 when m holds the
 * model; otherwise the failure is recorded and -1 returned. */
static int synth_model_load(SaModel *m, const char *dir, const char *name, const char *flags, const char *kind,
                            const char *type, int reuse) {
    char src[400], salm[400], cmd[4096];
    snprintf(src, sizeof src, "%s/%s.%s", dir, name, kind);
    snprintf(salm, sizeof salm, "%s/%s.salm", dir, name);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && { %s%s%s{ rm -rf %s && bin/salign-synth %s --vocab-from %s/tokenizers/mistral --%s %s && "
             "bin/salign-quantize %s %s --type %s -q; }; } 2>&1",
             dir, reuse ? "test -f " : "", reuse ? salm : "", reuse ? " || " : "", src, flags, test_models_dir(), kind, src,
             src, salm, type);
    int st;
    char *out = test_run(cmd, &st);
    if (st != 0) {
        test_fail(__FILE__, __LINE__, "`%s` failed: %s", cmd, out);
        free(out);
        return -1;
    }
    free(out);
    if (sa_model_load(m, salm, NULL) != 0) {
        test_fail(__FILE__, __LINE__, "cannot load %s: %s", salm, sa_errmsg());
        return -1;
    }
    return 0;
}

/* The per-token steps split over threads (a batch above SA_TOK_PAR_MIN_WORK, src/context.h)
 * compute exactly what one thread computes. Synthetic Qwen2 (qkv biases, SiLU) and Gemma 2
 * (GELU, the extra norms, the pre-scaled q) models with every matrix in Q8_0, whose GEMM gives
 * the same bits on any thread count (stories260K has a 172-wide FFN that stays F32, and
 * OpenBLAS's sgemm differs in the last bit between 1 and 2 threads): a 600-token batch leaves
 * every layer's cache rows and the last logits bit for bit the same with 1 and 2 threads. Layer
 * l + 1's cache rows are made from every token's output of layer l, so a step that wrote a wrong
 * row or skipped an activation chunk shows up in them. */
static void token_steps_threads_exact(const char *arch) {
    if (!test_models_dir()) {
        test_skip("../shared/models not present");
        return;
    }
    char name[64], flags[200];
    snprintf(name, sizeof name, "tokpar-%s", arch);
    snprintf(flags, sizeof flags, "--arch %s --hidden 128 --layers 2 --heads 4 --kv-heads 2 --ff 256", arch);
    SaModel m;
    if (synth_model_load(&m, test_tmp(name), "m", flags, "gguf", "q8_0", 1) != 0) return;
    enum { T = 600 };
    CHECKF((size_t)T * m.hp.n_embd >= SA_TOK_PAR_MIN_WORK, "a %d-token batch no longer reaches the threaded token steps", T);
    CHECKF((size_t)T * m.hp.n_ff > 2 * SA_TOK_ACT_CHUNK, "the activation should span several chunks");
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.n_ctx = 1024;
    p.n_batch = 1024; /* one forward pass */
    const int V = m.hp.n_vocab;
    int32_t *toks = malloc(T * sizeof *toks);
    for (int i = 0; i < T; i++) toks[i] = 1 + (i * 37) % 1000;
    SaCtx *c[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        sa_set_threads(t + 1);
        c[t] = sa_ctx_new(&m, &p);
        CHECK(c[t] && sa_ctx_eval(c[t], toks, T, 0) == 0);
    }
    sa_set_threads(1);
    if (c[0] && c[1]) {
        CHECKF(kv_rows_equal(sa_ctx_kv(c[0]), sa_ctx_kv(c[1]), T), "%s: cache rows differ between 1 and 2 threads", arch);
        CHECKF(!memcmp(sa_ctx_logits(c[0], -1), sa_ctx_logits(c[1], -1), (size_t)V * sizeof(float)),
               "%s: logits differ between 1 and 2 threads", arch);
    }
    sa_ctx_free(c[0]);
    sa_ctx_free(c[1]);
    free(toks);
    sa_model_free(&m);
}

TEST(ctx_token_steps_threads_exact_qwen2) { token_steps_threads_exact("qwen2"); }
TEST(ctx_token_steps_threads_exact_gemma2) { token_steps_threads_exact("gemma2"); }

/* Other head layouts, on small random-weight Llama models from bin/salign-synth: head_dim 64
 * (each head its own two blocks: the AVX2 fast path), head_dim 48 (the second KV head starts in
 * the middle of a block), and a KV row of 2 x 20 values, which the q8_0 cache refuses with a
 * one-line error naming --kv-type. Logits teacher-forced on 48 tokens against the f16 cache;
 * measured: worst step NMSE 1.5e-4 (hd 64) and 2.4e-4 (hd 48), top-1 equal 48/48 and 47/48. */
TEST(ctx_kv_q8_0_head_layouts) {
    if (!test_models_dir()) {
        test_skip("../shared/models not present");
        return;
    }
    static const struct { int hidden, heads, kv_heads, head_dim, ok; } cfg[] = {
        {128, 2, 2, 64, 1}, {96, 2, 2, 48, 1}, {40, 2, 2, 20, 0}};
    for (size_t ci = 0; ci < SA_ARRAY_LEN(cfg); ci++) {
        char name[16], flags[200];
        snprintf(name, sizeof name, "m%zu", ci);
        snprintf(flags, sizeof flags, "--arch llama --hidden %d --layers 2 --heads %d --kv-heads %d --head-dim %d --ff 64 --seed %zu",
                 cfg[ci].hidden, cfg[ci].heads, cfg[ci].kv_heads, cfg[ci].head_dim, ci + 1);
        SaModel m;
        if (synth_model_load(&m, test_tmp("kvq8-synth"), name, flags, "hf", "f32", 0) != 0) continue;
        SaCtxParams p;
        sa_ctx_default_params(&m, &p);
        p.n_ctx = 64;
        p.kv_type = SA_Q8_0;
        SaCtx *q = sa_ctx_new(&m, &p);
        if (!cfg[ci].ok) {
            CHECK(q == NULL);
            CHECKF(strstr(sa_errmsg(), "--kv-type q8_0") && strstr(sa_errmsg(), "40") && !strchr(sa_errmsg(), '\n'),
                   "error: %s", sa_errmsg());
            sa_ctx_free(q);
            sa_model_free(&m);
            continue;
        }
        p.kv_type = SA_F16;
        SaCtx *f = sa_ctx_new(&m, &p);
        CHECK(q && f);
        if (q && f) {
            const int V = m.hp.n_vocab, N = 48;
            int32_t seq[48];
            for (int i = 0; i < N; i++) seq[i] = i == 0 ? 1 : 3 + (i * 7919) % 5000;
            CHECK(sa_ctx_eval(f, seq, N, 1) == 0 && sa_ctx_eval(q, seq, N, 1) == 0);
            const LogitAgreement a = compare_logit_rows(q, f, N, V);
            printf("    head_dim %d: q8_0 vs f16 cache worst NMSE %.3g, mean %.3g, top-1 equal %d/%d\n", cfg[ci].head_dim,
                   a.worst, a.mean, a.same, N);
            CHECKF(a.worst < 2e-3 && a.mean < 3e-4 && a.same >= N - 3, "head_dim %d: worst NMSE %g, mean %g, top-1 %d/%d",
                   cfg[ci].head_dim, a.worst, a.mean, a.same, N);
        }
        sa_ctx_free(q);
        sa_ctx_free(f);
        sa_model_free(&m);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_tmp("kvq8-synth"));
    free(test_run(cmd, NULL));
}

/* KV memory by type, for the -c positions: Q8_0 is 34 bytes per 32 values, 34/64 of F16. */
TEST(ctx_kv_bytes_by_type) {
    CHECK(sa_kv_bytes(5, 100, 32, SA_F32) == (size_t)2 * 5 * 100 * 32 * 4);
    CHECK(sa_kv_bytes(5, 100, 32, SA_F16) == (size_t)2 * 5 * 100 * 32 * 2);
    CHECK(sa_kv_bytes(5, 100, 32, SA_Q8_0) == (size_t)2 * 5 * 100 * 34);
    CHECK(sa_kv_bytes(16, 4096, 512, SA_Q8_0) * 64 == sa_kv_bytes(16, 4096, 512, SA_F16) * 34);
    SaModel m;
    if (sa_model_load(&m, "weights/stories260K.salm", NULL)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.n_ctx = 300;
    p.kv_type = SA_F16;
    const size_t f16 = sa_ctx_bytes(&m, &p);
    p.kv_type = SA_Q8_0;
    const size_t q8 = sa_ctx_bytes(&m, &p);
    const size_t rows = (size_t)2 * m.hp.n_layer * 300;
    CHECK(f16 - q8 == rows * (m.hp.n_head_kv * m.hp.head_dim * 2 - m.hp.n_head_kv * m.hp.head_dim / 32 * 34));
    SaCtx *c = sa_ctx_new(&m, &p);
    CHECK(c && sa_ctx_n_ctx(c) == 300 && sa_ctx_kv(c)->row_bytes == 34 && sa_ctx_kv(c)->dtype == SA_Q8_0);
    sa_ctx_free(c);
    sa_model_free(&m);
}
