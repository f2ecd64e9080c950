/* test_context.c - the forward pass's batch/rollback invariants on the real stories260K model:
 * a batched prompt equals token-by-token evaluation, truncate + re-evaluate equals a fresh
 * context, and sa_ctx_prompt reuses exactly the common prefix. */
#include <stdlib.h>
#include <string.h>

#include "../src/common.h"
#include "../src/context.h"
#include "../src/matmul.h"
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
