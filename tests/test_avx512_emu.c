/* test_avx512_emu.c - the AVX-512 kernels on a CPU without AVX-512: simd/avx512.c built against
 * SIMDe (-DSALIGN_SIMDE, the table "avx512_emu"; Makefile) drives a whole model here.
 * tests/test_kernels.c already compares every kernel of that table with the scalar reference;
 * this runs stories260K through it, in-process (the table is only in the test binaries):
 *   - F32 and Q8_0: a 63-token prefill (the interleaved GEMMs with 4-token tiles and a remainder)
 *     and then one token at a time, teacher-forced on the expected greedy ids (llama2.c's for F32,
 *     llama.cpp's for Q8_0): the argmax must be the expected id at each of the 200 steps, as the
 *     native tables give it (test_e2e.c);
 *   - Q4_0 (whose greedy ids meet a near-tie with llama.cpp's at step 78): teacher-forced on
 *     llama.cpp's ids, the argmax agrees wherever the top two logits are clearly apart, as
 *     test_e2e.c asks of the native tables;
 *   - Q4_0 and Q8_0 through the scalar table with only its bit-exact kernels (quantize_q8_0 and
 *     the two interleaved GEMMs) taken from the emulated one: logits bit-identical to the scalar
 *     table's at all 200 steps (prefill and decode). With the whole emulated table they are not:
 *     its float kernels (attention, exp) sum in another order, and an activation sitting near a
 *     quantization tie then rounds to the neighbouring integer, as with the AVX2 table.
 * tests/run-avx512-emu.sh runs the matmul tests with SALIGN_ISA=avx512_emu as well.
 * Without libsimde-dev the table is not linked and these tests say so (skip). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "../src/common.h"
#include "../src/context.h"
#include "test.h"

#if defined(__x86_64__) || defined(_M_X64)
extern const SaKernels sa_kernels_avx512_emu __attribute__((weak));
#endif

/* The emulated table, or NULL (with the test marked skipped and why). */
static const SaKernels *emu_or_skip(void) {
#if defined(__x86_64__) || defined(_M_X64)
    if (!&sa_kernels_avx512_emu) {
        test_skip("the emulated AVX-512 table is not built: libsimde-dev is not installed (make test installs it)");
        return NULL;
    }
    const SaKernels *all[8];
    const int n = sa_kernels_available(all, 8);
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i]->name, "avx2")) return &sa_kernels_avx512_emu;
    test_skip("the SIMDe build of simd/avx512.c needs AVX2, which this CPU lacks");
    return NULL;
#else
    test_skip("x86-64 only");
    return NULL;
#endif
}

TEST(avx512_emu_available) {
    const SaKernels *k = emu_or_skip();
    if (!k) return;
    CHECK_EQ_STR(k->name, "avx512_emu");
    /* SALIGN_ISA=avx512_emu reaches it through the dispatcher (tests/run-avx512-emu.sh) */
    const SaKernels *saved = sa_k;
    CHECK(sa_kernels_select("avx512_emu") == 0 && sa_k == k);
    sa_k = saved;
}

/* ---- stories260K through the emulated table ---- */

static const char *models_file(const char *name) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", test_models_dir(), name);
    return b;
}

/* GGUF -> .salm (tensor types kept) in the scratch folder; NULL on failure (recorded). */
static const char *convert_keep(const char *gguf, const char *name) {
    const char *out = test_tmp(name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bin/salign-quantize %s %s --type keep -q 2>&1", models_file(gguf), out);
    int st;
    char *log = test_run(cmd, &st);
    if (st != 0) test_fail(__FILE__, __LINE__, "converting %s failed: %s", gguf, log);
    free(log);
    return st == 0 ? out : NULL;
}

static int read_ids(const char *name, int *ids, int max) {
    char *s = sa_read_file(models_file(name), NULL);
    if (!s) return 0;
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        while (*p == ',' || *p == ' ' || *p == '\n') p++;
        if (!*p) break;
        ids[n++] = (int)strtol(p, (char **)&p, 10);
    }
    free(s);
    return n;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int j = 1; j < n; j++)
        if (l[j] > l[b]) b = j;
    return b;
}

enum { STEPS = 200, PREFILL = 63 };

/* Greedy run with table k: BOS and the first PREFILL-1 tokens of `force` (when given; else the
 * model's own choices, decoded one by one) as one batch, then one token at a time, fed `force`
 * (teacher forcing) or the argmax. Writes the argmax of every step to got[] and, when logits is
 * not NULL, the logits of every step (STEPS x n_vocab). 0 or -1. */
static int run_greedy(const SaKernels *k, const SaModel *m, const int *force, int *got, float *logits) {
    const SaKernels *saved = sa_k;
    sa_k = k;
    SaCtx *c = sa_ctx_new(m, NULL);
    int rc = c ? 0 : -1;
    const int nv = m->hp.n_vocab;
    int32_t toks[PREFILL];
    toks[0] = 1; /* BOS */
    if (!rc && force) {
        /* the prefill batch: row i predicts step i */
        for (int i = 1; i < PREFILL; i++) toks[i] = force[i - 1];
        rc = sa_ctx_eval(c, toks, PREFILL, 1);
        for (int i = 0; i < PREFILL && !rc; i++) {
            const float *l = sa_ctx_logits(c, i);
            got[i] = argmax(l, nv);
            if (logits) memcpy(logits + (size_t)i * nv, l, (size_t)nv * sizeof *l);
        }
    }
    for (int i = force ? PREFILL : 0; i < STEPS && !rc; i++) {
        const int32_t t = i == 0 ? 1 : force ? force[i - 1] : got[i - 1];
        rc = sa_ctx_eval(c, &t, 1, 0);
        if (rc) break;
        const float *l = sa_ctx_logits(c, -1);
        got[i] = argmax(l, nv);
        if (logits) memcpy(logits + (size_t)i * nv, l, (size_t)nv * sizeof *l);
    }
    sa_ctx_free(c);
    sa_k = saved;
    return rc;
}

/* F32 and Q8_0: teacher-forced on the expected ids, the argmax is the expected id everywhere. */
static void check_against_expected(const SaKernels *k, const char *gguf, const char *ids_file, const char *salm) {
    const char *path = convert_keep(gguf, salm);
    if (!path) return;
    int expect[STEPS + 8], got[STEPS];
    CHECK_EQ_INT(read_ids(ids_file, expect, STEPS + 8), STEPS);
    SaModel m;
    if (sa_model_load(&m, path, NULL)) {
        CHECKF(0, "loading %s failed", path);
        return;
    }
    CHECK(run_greedy(k, &m, expect, got, NULL) == 0);
    int first = -1;
    for (int i = 0; i < STEPS && first < 0; i++)
        if (got[i] != expect[i]) first = i;
    CHECKF(first < 0, "%s on %s: step %d picks %d, expected %d (%s)", k->name, gguf, first, first >= 0 ? got[first] : 0,
           first >= 0 ? expect[first] : 0, ids_file);
    sa_model_free(&m);
}

TEST(avx512_emu_stories260K_f32_q8_0) {
    const SaKernels *k = emu_or_skip();
    if (!k) return;
    if (!test_models_dir()) {
        test_skip("../shared/models not present");
        return;
    }
    check_against_expected(k, "stories260K.gguf", "stories260K.expected_greedy_200.ids.txt", "emu-s260k-f32.salm");
    check_against_expected(k, "stories260K-q8_0.gguf", "stories260K-q8_0.expected_greedy_200.ids.txt", "emu-s260k-q8.salm");
}

/* Q4_0, the whole emulated table: teacher-forced on llama.cpp's ids (test_e2e.c's contract). */
TEST(avx512_emu_stories260K_q4_0) {
    const SaKernels *k = emu_or_skip();
    if (!k) return;
    if (!test_models_dir()) {
        test_skip("../shared/models not present");
        return;
    }
    const char *path = convert_keep("stories260K-q4_0.gguf", "emu-s260k-q4.salm");
    if (!path) return;
    int expect[STEPS + 8], got[STEPS];
    CHECK_EQ_INT(read_ids("stories260K-q4_0.expected_greedy_200.ids.txt", expect, STEPS + 8), STEPS);
    SaModel m;
    if (sa_model_load(&m, path, NULL)) {
        CHECKF(0, "loading %s failed", path);
        return;
    }
    const int nv = m.hp.n_vocab;
    float *l = malloc((size_t)STEPS * nv * sizeof *l);
    CHECK(run_greedy(k, &m, expect, got, l) == 0);
    int agree = 0;
    for (int i = 0; i < STEPS; i++) {
        const float *li = l + (size_t)i * nv;
        float second = -INFINITY;
        for (int j = 0; j < nv; j++)
            if (j != got[i] && li[j] > second) second = li[j];
        if (got[i] == expect[i]) agree++;
        else
            CHECKF(li[got[i]] - second < 0.15f && li[got[i]] - li[expect[i]] < 0.15f,
                   "avx512_emu q4_0 step %d: llama.cpp chose %d (%.4f), our clear best is %d (%.4f)", i, expect[i],
                   li[expect[i]], got[i], li[got[i]]);
    }
    CHECKF(agree >= 195, "avx512_emu q4_0: teacher-forced argmax agrees with llama.cpp on %d/200 steps", agree);
    free(l);
    sa_model_free(&m);
}

/* The scalar table with the emulated quantize_q8_0 and interleaved GEMMs (all bit-exact by
 * contract): the same logits as the scalar table, bit for bit, through prefill and decode. */
TEST(avx512_emu_stories260K_gemm_bit_exact) {
    const SaKernels *k = emu_or_skip();
    if (!k) return;
    if (!test_models_dir()) {
        test_skip("../shared/models not present");
        return;
    }
    SaKernels hybrid = sa_kernels_scalar;
    hybrid.name = "scalar with avx512_emu quantize and GEMMs";
    hybrid.quantize_q8_0 = k->quantize_q8_0;
    hybrid.gemm_q4_0x8 = k->gemm_q4_0x8;
    hybrid.gemm_q8_0x8 = k->gemm_q8_0x8;
    static const char *const models[][2] = {{"stories260K-q4_0.gguf", "emu-s260k-q4.salm"},
                                             {"stories260K-q8_0.gguf", "emu-s260k-q8.salm"}};
    for (int mi = 0; mi < 2; mi++) {
        const char *path = convert_keep(models[mi][0], models[mi][1]);
        if (!path) continue;
        SaModel m;
        if (sa_model_load(&m, path, NULL)) {
            CHECKF(0, "loading %s failed", path);
            continue;
        }
        const size_t nl = (size_t)STEPS * m.hp.n_vocab;
        int gs[STEPS], gh[STEPS], fs[STEPS], fh[STEPS];
        float *ls = malloc(nl * sizeof *ls), *lh = malloc(nl * sizeof *lh);
        /* free running (decode only), then teacher-forced on those ids with a prefill batch */
        CHECK(run_greedy(&sa_kernels_scalar, &m, NULL, gs, NULL) == 0);
        CHECK(run_greedy(&hybrid, &m, NULL, gh, NULL) == 0);
        CHECKF(!memcmp(gs, gh, sizeof gs), "%s: greedy ids differ from the scalar table's", models[mi][0]);
        CHECK(run_greedy(&sa_kernels_scalar, &m, gs, fs, ls) == 0);
        CHECK(run_greedy(&hybrid, &m, gs, fh, lh) == 0);
        size_t first = nl;
        for (size_t e = 0; e < nl && first == nl; e++)
            if (memcmp(&ls[e], &lh[e], sizeof *ls)) first = e;
        CHECKF(first == nl, "%s: logits differ from the scalar table's, first at step %d token %d: %.9g vs %.9g",
               models[mi][0], (int)(first / m.hp.n_vocab), (int)(first % m.hp.n_vocab), first < nl ? lh[first] : 0.0,
               first < nl ? ls[first] : 0.0);
        free(ls);
        free(lh);
        sa_model_free(&m);
    }
}
