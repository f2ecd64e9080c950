/* test_hf_torch.c - the HF import against a reference that is not ours (#19 item 3).
 *
 * tools/synth (bin/salign-synth) writes a random checkpoint of each architecture as an HF
 * directory; tests/oracles/hf_forward.py computes its teacher-forced logits with PyTorch from the
 * published HF modelling semantics, reading config.json and the safetensors directly (Debian
 * python3-torch, which tools/deps.sh test installs); salign-quantize imports the directory as F32
 * and salign evaluates the same ids. A mistake shared by synth and import_hf (the q/k permutation,
 * Gemma's 1 + w, the embedding scale, soft-caps, the sliding window, rope scaling) cannot pass: the
 * oracle never sees our conventions. Bound: NMSE < 1e-9 over all positions (1e-6 for the Gemmas: see NMSE_MAX), and the
 * same top-1 token at every position. Shapes: the Mistral tokenizer's 32,000-token vocabulary for all five,
 * 24 positions (past Gemma 2's 8-token window). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common.h"
#include "../src/context.h"
#include "../src/model.h"
#include "test.h"

#define N_IDS 24
/* The issue asks for < 1e-5 in F32; F32 weights and activations on both sides agree to ~1e-12 here,
 * so the bound is tighter, to catch what only shows in the last digits at 24 positions: Llama 3's
 * rope scaling left out moves the logits by 1.5e-6 only (it changes long wavelengths). */
#define NMSE_MAX 1e-9
/* Gemma's GELU is computed as llama.cpp's CPU backend does (src/context.c: f16 in, f16 table out,
 * within 2^-11 relative of the float formula the PyTorch side uses), which puts Gemma at 1.0e-7 and
 * Gemma 2 at 2.5e-7 here; their bound is 1e-6. What the Gemma-specific semantics get wrong when
 * broken (the 1 + w norms, the embedding scale, soft-caps, the 8-token window over 24 positions)
 * moves the logits by far more (1e-2 and up). */
#define NMSE_MAX_GELU_F16 1e-6

typedef struct {
    const char *arch, *flags;
    double bound;
} HfCase;

static const HfCase hf_cases[] = {
    {"llama", "--hidden 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --rope-scaling llama3 --rope-theta 500000 --tied", NMSE_MAX},
    {"mistral", "--hidden 64 --layers 2 --heads 4 --kv-heads 1 --ff 160 --shards 3 --rope-scaling linear --rope-factor 4", NMSE_MAX},
    {"qwen2", "--hidden 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --vocab 32064", NMSE_MAX},
    {"gemma", "--hidden 64 --layers 2 --heads 2 --kv-heads 1 --ff 128 --head-dim 64", NMSE_MAX_GELU_F16},
    {"gemma2", "--hidden 64 --layers 3 --heads 4 --kv-heads 2 --ff 128 --head-dim 32 --sliding-window 8", NMSE_MAX_GELU_F16},
};

/* The ids: BOS, then fixed pseudo-random tokens of the shared vocabulary, written to a file for the
 * oracle; returns its path. */
static const char *hf_ids(int32_t *ids) {
    uint64_t rng = 0x5eed;
    ids[0] = 1;
    for (int i = 1; i < N_IDS; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = 3 + (int32_t)((rng >> 33) % 31997);
    }
    const char *ids_path = test_tmp("hf-ids.txt");
    FILE *f = fopen(ids_path, "w");
    for (int i = 0; i < N_IDS; i++) fprintf(f, "%d ", ids[i]);
    fclose(f);
    return ids_path;
}

TEST(hf_import_matches_pytorch_reference) {
    const char *dir = test_models_dir();
    if (!dir) { test_skip("no ../shared/models (the Mistral tokenizer)"); return; }
    const char *py = test_torch_python();
    if (!py) { test_skip("no python3-torch (make test installs it: tools/deps.sh test)"); return; }
    const int n_cases = (int)SA_ARRAY_LEN(hf_cases);
    int32_t ids[N_IDS];
    const char *ids_path = hf_ids(ids);
    char oracle_cmd[8192];
    int off = snprintf(oracle_cmd, sizeof oracle_cmd, "%s tests/oracles/hf_forward.py %s", py, ids_path);
    for (int c = 0; c < n_cases; c++) {
        char hf[512], salm[600], cmd[4096];
        snprintf(hf, sizeof hf, "%s", test_tmp(hf_cases[c].arch));
        snprintf(salm, sizeof salm, "%s.salm", hf);
        snprintf(cmd, sizeof cmd,
                 "rm -rf %s && bin/salign-synth --arch %s %s --seed %d --vocab-from %s/tokenizers/mistral --hf %s >/dev/null 2>&1 && "
                 "bin/salign-quantize %s %s --type f32 -q 2>&1",
                 hf, hf_cases[c].arch, hf_cases[c].flags, 21 + c, dir, hf, hf, salm);
        int st;
        char *log = test_run(cmd, &st);
        CHECKF(st == 0, "%s: %s", hf_cases[c].arch, log);
        free(log);
        off += snprintf(oracle_cmd + off, sizeof oracle_cmd - (size_t)off, " %s %s.logits", hf, hf);
    }
    snprintf(oracle_cmd + off, sizeof oracle_cmd - (size_t)off, " 2>&1");
    int st;
    char *log = test_run(oracle_cmd, &st);
    CHECKF(st == 0, "the PyTorch reference failed: %s", log);
    free(log);
    if (st) return;
    for (int c = 0; c < n_cases; c++) {
        const char *arch = hf_cases[c].arch;
        char path[600];
        snprintf(path, sizeof path, "%s.salm", test_tmp(arch));
        SaModel m;
        if (sa_model_load(&m, path, NULL)) { CHECKF(0, "%s: %s", arch, sa_errmsg()); continue; }
        const int V = m.hp.n_vocab;
        snprintf(path, sizeof path, "%s.logits", test_tmp(arch));
        size_t len = 0;
        float *want = (float *)sa_read_file(path, &len);
        CHECKF(want && len == (size_t)N_IDS * V * sizeof(float), "%s: oracle logits %zu bytes, want %d x %d floats", arch, len,
               N_IDS, V);
        SaCtxParams cp;
        sa_ctx_default_params(&m, &cp);
        cp.kv_type = SA_F32;
        if (cp.n_logits < N_IDS) cp.n_logits = N_IDS;
        SaCtx *ctx = sa_ctx_new(&m, &cp);
        if (want && len == (size_t)N_IDS * V * sizeof(float) && ctx && sa_ctx_eval(ctx, ids, N_IDS, 1) == 0) {
            double num = 0, den = 0;
            int top_same = 0;
            for (int t = 0; t < N_IDS; t++) {
                const float *got = sa_ctx_logits(ctx, t), *ref = want + (size_t)t * V;
                int ag = 0, ar = 0;
                for (int k = 0; k < V; k++) {
                    const double d = (double)got[k] - ref[k];
                    num += d * d;
                    den += (double)ref[k] * ref[k];
                    if (got[k] > got[ag]) ag = k;
                    if (ref[k] > ref[ar]) ar = k;
                }
                top_same += ag == ar;
            }
            const double nmse = num / den;
            printf("    %-7s NMSE %.2e vs PyTorch, top-1 %d/%d\n", arch, nmse, top_same, N_IDS);
            CHECKF(nmse < hf_cases[c].bound, "%s: logits NMSE %.3g vs the PyTorch reference (bound %g)", arch, nmse,
               hf_cases[c].bound);
            CHECKF(top_same == N_IDS, "%s: top-1 differs at %d of %d positions", arch, N_IDS - top_same, N_IDS);
        } else {
            CHECKF(0, "%s: %s", arch, sa_errmsg());
        }
        sa_ctx_free(ctx);
        free(want);
        sa_model_free(&m);
    }
}

/* A score model (safe-rlhf's LlamaForScore, the layout of PKU-Alignment's beaver reward/cost models:
 * score_head instead of lm_head, with a bias here, and normalizer buffers the import must skip): every
 * position's score against the PyTorch reference, which reads the HF directory itself. */
TEST(hf_score_model_matches_pytorch_reference) {
    const char *dir = test_models_dir();
    if (!dir) { test_skip("no ../shared/models (the Mistral tokenizer)"); return; }
    const char *py = test_torch_python();
    if (!py) { test_skip("no python3-torch (make test installs it: tools/deps.sh test)"); return; }
    int32_t ids[N_IDS];
    const char *ids_path = hf_ids(ids);
    char hf[512], salm[600], cmd[4096];
    snprintf(hf, sizeof hf, "%s", test_tmp("llama-score"));
    snprintf(salm, sizeof salm, "%s.salm", hf);
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && bin/salign-synth --arch llama --hidden 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --score-bias "
             "--seed 31 --vocab-from %s/tokenizers/mistral --hf %s >/dev/null 2>&1 && bin/salign-quantize %s %s --type f32 -q 2>&1 && "
             "%s tests/oracles/hf_forward.py %s %s %s.scores 2>&1",
             hf, dir, hf, hf, salm, py, ids_path, hf, hf);
    int st;
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    if (st) return;
    SaModel m;
    if (sa_model_load(&m, salm, NULL)) {
        CHECKF(0, "%s", sa_errmsg());
        return;
    }
    CHECK(m.hp.score_head == 1 && m.hp.score_bias == 1);
    char path[700];
    snprintf(path, sizeof path, "%s.scores", hf);
    size_t len = 0;
    float *want = (float *)sa_read_file(path, &len);
    CHECKF(want && len == N_IDS * sizeof(float), "oracle scores: %zu bytes, want %d floats", len, N_IDS);
    SaCtxParams cp;
    sa_ctx_default_params(&m, &cp);
    cp.kv_type = SA_F32;
    cp.n_logits = N_IDS;
    /* a score model is not a language model: a context without .score is refused */
    CHECK(sa_ctx_new(&m, &cp) == NULL && strstr(sa_errmsg(), "is a score model"));
    cp.score = 1;
    SaCtx *ctx = sa_ctx_new(&m, &cp);
    if (want && len == N_IDS * sizeof(float) && ctx && sa_ctx_eval(ctx, ids, N_IDS, 1) == 0) {
        double num = 0, den = 0;
        for (int t = 0; t < N_IDS; t++) {
            const double d = (double)sa_ctx_score(ctx, t) - want[t];
            num += d * d;
            den += (double)want[t] * want[t];
        }
        printf("    score   NMSE %.2e vs PyTorch over %d positions, last %.6f vs %.6f\n", num / den, N_IDS,
               sa_ctx_score(ctx, -1), want[N_IDS - 1]);
        CHECKF(num / den < NMSE_MAX, "scores NMSE %.3g vs the PyTorch reference (bound %g)", num / den, NMSE_MAX);
        /* one token at a time (the judge's path after a cached prefix) gives the same last score */
        SaCtx *c1 = sa_ctx_new(&m, &cp);
        for (int t = 0; t < N_IDS && c1; t++) CHECK(sa_ctx_eval(c1, &ids[t], 1, 0) == 0);
        if (c1) CHECKF(fabs(sa_ctx_score(c1, -1) - want[N_IDS - 1]) < 1e-4 * (1 + fabs(want[N_IDS - 1])), "%.6f vs %.6f",
                       sa_ctx_score(c1, -1), want[N_IDS - 1]);
        sa_ctx_free(c1);
    } else {
        CHECKF(0, "%s", sa_errmsg());
    }
    sa_ctx_free(ctx);
    free(want);
    sa_model_free(&m);
}
