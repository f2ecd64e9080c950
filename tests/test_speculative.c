/* test_speculative.c - copy-speculative decoding: greedy output identical to plain decoding for
 * any draft, the sampled distribution identical to plain sampling, and the KV cache after a
 * rejected draft identical to a fresh evaluation. Model: the real stories260K (512 tokens). */
#include <stdlib.h>
#include <string.h>

#include "../src/aligner.h"
#include "../src/common.h"
#include "test.h"

static const char *openings[] = {
    "Once upon a time", "Lily wanted to play", "The dog ran to the park", "Tom was sad because",
    "One day, a little bird", "The sun was hot and", "Mom said", "There was a big red ball",
    "Sam and Anna went to the beach", "The cat saw a mouse", "A boy named Max", "It was a rainy day",
};

static int prompt_ids(const SaModel *m, const char *text, int aligner_role, int32_t **ids, int *n, int *cap) {
    *n = 0;
    SaPrompt p;
    if (aligner_role) {
        SaTemplateVars v = {.question = "Once upon a time", .prefix = "there was a girl.", .last = text};
        if (sa_template_render(sa_aligner_template("plain"), &v, &p)) return -1;
    } else {
        if (sa_chat_render(sa_chat_template("plain"), "", text, "", &p)) return -1;
    }
    int rc = sa_prompt_tokenize(&p, m->tok, ids, n, cap);
    sa_prompt_free(&p);
    return rc;
}

static void greedy_identical(const char *path, int n_openings, int min_full_accept) {
    SaModel m;
    if (sa_model_load(&m, path, NULL)) { CHECKF(0, "%s", sa_errmsg()); return; }
    SaCtx *c = sa_ctx_new(&m, NULL), *fresh = sa_ctx_new(&m, NULL);
    int32_t *ids = NULL, plain[48], out[48], draft[64];
    int n = 0, cap = 0, cases = 0, full_accept = 0, edit_cases = 0, edit_passes = 0, edit_rejected = 0;
    uint64_t rng = 7;
    for (int role = 0; role < 2; role++) {
        for (size_t i = 0; i < (size_t)n_openings; i++) {
            for (int pen = 0; pen < 2; pen++) {
                SaSamplerParams sp = {.temp = 0, .freq_penalty = pen ? 0.7f : 0.0f};
                SaSampler s;
                sa_sampler_init(&s, &sp, m.hp.n_vocab);
                CHECK(prompt_ids(&m, openings[i], role, &ids, &n, &cap) == 0);
                CHECK(sa_ctx_prompt(c, ids, n) == 0);
                SaGenStats st;
                CHECK(sa_generate(c, &s, m.tok, 40, NULL, 0, plain, NULL, &st) == 0);
                const int np = st.n;
                /* drafts: the exact output (copy), 20% edited, shifted by one, unrelated */
                for (int kind = 0; kind < 4; kind++) {
                    int nd = np;
                    for (int j = 0; j < np; j++) {
                        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                        const int r = (int)(rng >> 33);
                        const int rnd = 3 + r % (m.hp.n_vocab - 3);
                        draft[j] = kind == 0 ? plain[j]
                                   : kind == 1 ? (r % 5 == 0 ? rnd : plain[j])
                                   : kind == 2 ? plain[SA_MIN(j + 1, np - 1)]
                                               : rnd;
                    }
                    CHECK(sa_ctx_prompt(c, ids, n) == 0);
                    CHECK(sa_generate(c, &s, m.tok, 40, draft, nd, out, NULL, &st) == 0);
                    CHECKF(st.n == np && !memcmp(out, plain, (size_t)np * sizeof(int32_t)),
                           "role %d opening %zu penalty %d draft kind %d: output differs", role, i, pen, kind);
                    if (kind == 0 && st.accepted == np && st.drafted == np) full_accept++;
                    if (kind == 1) {
                        edit_cases++;
                        edit_passes += st.passes;
                        edit_rejected += st.drafted - st.accepted;
                    }
                    /* the cache after (possibly rejected) drafts equals a fresh evaluation */
                    const SaKv *kv = sa_ctx_kv(c);
                    sa_ctx_truncate(fresh, 0);
                    CHECK(sa_ctx_eval(fresh, kv->tokens, kv->n, 0) == 0);
                    const double e = test_nmse(sa_ctx_logits(c, -1), sa_ctx_logits(fresh, -1), m.hp.n_vocab);
                    CHECKF(e < 1e-6, "draft kind %d: cache vs fresh NMSE %g", kind, e);
                    cases++;
                }
                sa_sampler_free(&s);
            }
        }
    }
    CHECK_EQ_INT(cases, 2 * n_openings * 2 * 4);
    /* a draft equal to the output is accepted entirely (when the generation did not end at EOS
     * before the draft did, drafted == accepted == n) */
    CHECKF(full_accept >= min_full_accept, "%s: copy drafts fully accepted in %d of %d cases", path, full_accept, 4 * n_openings);
    /* a rejected draft token's replacement is evaluated in the next verification batch, not in a
     * pass of its own: beyond one pass per rejection, an edited draft costs only a few passes (the
     * first batch, the draft length growing back, plain steps where re-synchronisation fails).
     * Measured ~4 per generation; a pass per replacement on top made it ~8.5. */
    CHECKF(edit_passes <= edit_rejected + 5 * edit_cases, "%s: edited drafts took %d forward passes for %d rejections in %d generations",
           path, edit_passes, edit_rejected, edit_cases);
    free(ids);
    sa_ctx_free(c);
    sa_ctx_free(fresh);
    sa_model_free(&m);
}

TEST(speculative_greedy_is_identical) { greedy_identical("weights/stories260K.salm", (int)SA_ARRAY_LEN(openings), 40); }

/* The same on a synthetic Qwen2 (biases, half-split RoPE, 32k-token Mistral vocabulary) and a
 * synthetic Gemma (GeGLU, multi-query, head_dim != hidden/heads), written by salign-synth. */
TEST(speculative_greedy_is_identical_synthetic) {
    const char *dir = test_models_dir();
    if (!dir) { test_skip("../shared/models not present"); return; }
    const char *archs[] = {"qwen2", "gemma"};
    for (int i = 0; i < 2; i++) {
        char cmd[4096], hf[600], out[700];
        snprintf(hf, sizeof hf, "%s", test_tmp(archs[i]));
        snprintf(out, sizeof out, "%s.salm", hf);
        snprintf(cmd, sizeof cmd,
                 "bin/salign-synth --arch %s --hidden 64 --layers 2 --heads 4 --kv-heads %d --ff 128 %s --seed %d "
                 "--vocab-from %s/tokenizers/mistral --hf %s >/dev/null 2>&1 && bin/salign-quantize %s %s --type f32 -q 2>&1",
                 archs[i], i ? 1 : 2, i ? "--head-dim 32" : "", 11 + i, dir, hf, hf, out);
        int st;
        char *log = test_run(cmd, &st);
        CHECKF(st == 0, "%s: %s", archs[i], log);
        free(log);
        if (st == 0) greedy_identical(out, 4, 1);
    }
}

/* The joint distribution of the first two sampled tokens with a draft equals plain sampling's:
 * exact marginals are computed from the model, the speculative samples are tested against them
 * with a chi-square test (fixed seed; threshold: the 99.9% quantile, so a correct implementation
 * fails with probability 0.001 for a given seed - and the seed is fixed). Temperature 1, top-k 8,
 * top-p 0.95 and a frequency penalty, so every sampler stage takes part. */
TEST(speculative_sampling_distribution) {
    SaModel m;
    if (sa_model_load(&m, "weights/stories260K.salm", NULL)) { CHECKF(0, "%s", sa_errmsg()); return; }
    const int V = m.hp.n_vocab;
    SaCtx *c = sa_ctx_new(&m, NULL);
    int32_t *ids = NULL;
    int n = 0, cap = 0;
    CHECK(prompt_ids(&m, "Lily wanted to play", 0, &ids, &n, &cap) == 0);
    SaSamplerParams sp = {.temp = 1.0f, .top_k = 8, .top_p = 0.95f, .freq_penalty = 0.8f, .seed = 12345};
    SaSampler s;
    sa_sampler_init(&s, &sp, V);
    /* exact joint distribution p(t0) p(t1 | t0) */
    float *p0 = malloc((size_t)V * sizeof(float)), *p1 = malloc((size_t)V * sizeof(float));
    double *joint = calloc((size_t)V * V, sizeof(double));
    CHECK(sa_ctx_prompt(c, ids, n) == 0);
    sa_sampler_reset(&s);
    CHECK(sa_sampler_dist(&s, sa_ctx_logits(c, -1), p0) == 0);
    int best0 = 0;
    for (int a = 0; a < V; a++) {
        if (p0[a] > p0[best0]) best0 = a;
        if (p0[a] <= 0) continue;
        CHECK(sa_ctx_prompt(c, ids, n) == 0);
        CHECK(sa_ctx_eval(c, &a, 1, 0) == 0);
        sa_sampler_reset(&s);
        sa_sampler_accept(&s, a);
        CHECK(sa_sampler_dist(&s, sa_ctx_logits(c, -1), p1) == 0);
        for (int b = 0; b < V; b++) joint[(size_t)a * V + b] = (double)p0[a] * p1[b];
    }
    /* the draft: the most likely first token, then its most likely follower */
    int best1 = 0;
    for (int b = 0; b < V; b++)
        if (joint[(size_t)best0 * V + b] > joint[(size_t)best0 * V + best1]) best1 = b;
    const int32_t draft[2] = {best0, best1};
    enum { N = 20000 };
    int *count = calloc((size_t)V * V, sizeof(int));
    int32_t out[2];
    int drafted = 0, accepted = 0;
    for (int r = 0; r < N; r++) {
        CHECK(sa_ctx_prompt(c, ids, n) == 0);
        SaGenStats st;
        if (sa_generate(c, &s, m.tok, 2, draft, 2, out, NULL, &st) || st.n != 2) { CHECK(0); break; }
        count[(size_t)out[0] * V + out[1]]++;
        drafted += st.drafted;
        accepted += st.accepted;
    }
    /* chi-square over cells with expected count >= 5; the rest pooled into one cell */
    double chi = 0, pool_e = 0, pool_o = 0;
    int df = -1;
    for (size_t cell = 0; cell < (size_t)V * V; cell++) {
        const double e = joint[cell] * N;
        if (e <= 0) {
            CHECKF(count[cell] == 0, "sampled an impossible pair (%zu, %zu)", cell / V, cell % V);
            continue;
        }
        if (e < 5) {
            pool_e += e;
            pool_o += count[cell];
            continue;
        }
        chi += (count[cell] - e) * (count[cell] - e) / e;
        df++;
    }
    if (pool_e > 0) {
        chi += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
        df++;
    }
    /* 99.9% quantile of chi-square(df), Wilson-Hilferty approximation */
    const double z = 3.0902, h = 2.0 / (9.0 * df);
    const double crit = df * pow(1 - h + z * sqrt(h), 3);
    printf("    chi-square %.1f, df %d, critical %.1f; draft acceptance %d/%d\n", chi, df, crit, accepted, drafted);
    CHECK(df >= 5);
    CHECKF(chi < crit, "chi-square %.1f >= %.1f (df %d)", chi, crit, df);
    CHECK(accepted > 0 && accepted < drafted); /* both the accept and the reject paths ran */
    free(count);
    free(joint);
    free(p0);
    free(p1);
    free(ids);
    sa_sampler_free(&s);
    sa_ctx_free(c);
    sa_model_free(&m);
}

/* Sequences: copy-speculative sampling of 8 tokens after three prompts, with drafts that are the
 * greedy continuation edited (a substitution and a deletion, so verification rejects, the draft
 * length adapts and re-synchronisation has to find its place again), must sample from exactly the
 * model's distribution at every step. Test: the randomized probability integral transform - at each
 * step, u = P(token < x | prefix) + V * P(x | prefix) with V uniform, tokens ordered by id, using the
 * exact distribution sa_sampler_dist computes from a fresh evaluation of the prefix - is i.i.d.
 * uniform over all steps of all sequences exactly when every conditional is right (Rosenblatt);
 * a chi-square test on 40 bins at the 99.9% quantile, fixed seeds. An end-of-text token ends a
 * sequence and is itself a draw (its u is counted). */
TEST(speculative_sampling_sequences) {
    SaModel m;
    if (sa_model_load(&m, "weights/stories260K.salm", NULL)) { CHECKF(0, "%s", sa_errmsg()); return; }
    const int V = m.hp.n_vocab, L = 8, R = 800, BINS = 40;
    SaCtx *c = sa_ctx_new(&m, NULL), *q = sa_ctx_new(&m, NULL);
    SaSamplerParams sp = {.temp = 0.7f, .top_k = 20, .top_p = 0.95f, .freq_penalty = 0.5f, .seed = 4242};
    SaSampler s, d;
    sa_sampler_init(&s, &sp, V);
    sa_sampler_init(&d, &sp, V);
    float *p = malloc((size_t)V * sizeof(float));
    int32_t *ids = NULL, *seq = NULL;
    int n = 0, cap = 0, n_seq = 0, cap_seq = 0;
    long bins[40] = {0}, draws = 0;
    int drafted = 0, accepted = 0, rejected_gens = 0, resynced = 0, passes = 0, gens = 0;
    uint64_t u_rng = 99;
    static const char *prompts[] = {"Lily wanted to play", "The dog ran to the park", "One day, a little bird"};
    for (size_t pi = 0; pi < SA_ARRAY_LEN(prompts); pi++) {
        CHECK(prompt_ids(&m, prompts[pi], 0, &ids, &n, &cap) == 0);
        /* the draft: the greedy continuation (12 tokens), token 2 replaced, token 5 deleted */
        SaSamplerParams gp = {.temp = 0};
        SaSampler g;
        sa_sampler_init(&g, &gp, V);
        int32_t greedy[12], draft[12];
        SaGenStats st;
        CHECK(sa_ctx_prompt(c, ids, n) == 0);
        CHECK(sa_generate(c, &g, m.tok, 12, NULL, 0, greedy, NULL, &st) == 0 && st.n == 12);
        sa_sampler_free(&g);
        int nd = 0;
        for (int j = 0; j < 12; j++) {
            if (j == 5) continue;
            draft[nd++] = j == 2 ? (greedy[j] + 7) % V : greedy[j];
        }
        for (int r = 0; r < R; r++) {
            int32_t out[8];
            CHECK(sa_ctx_prompt(c, ids, n) == 0);
            if (sa_generate(c, &s, m.tok, L, draft, nd, out, NULL, &st)) { CHECK(0); break; }
            gens++;
            drafted += st.drafted;
            accepted += st.accepted;
            passes += st.passes;
            rejected_gens += st.accepted < st.drafted;
            /* accepted draft tokens beyond the first disagreement with the draft: re-synchronised */
            int f = 0;
            while (f < st.n && f < nd && out[f] == draft[f]) f++;
            resynced += st.accepted > f;
            /* the draws: the generated tokens, and the end-of-text token when it came before L */
            const int steps = st.n < L ? st.n + 1 : L;
            CHECK(sa_tok_spec(m.tok)->eos_id >= 0);
            for (int t = 0; t < steps; t++) {
                const int x = t < st.n ? out[t] : sa_tok_spec(m.tok)->eos_id;
                /* the exact distribution at this step: prompt + out[0..t), penalties over out[0..t) */
                if (n + L + 1 > cap_seq) {
                    cap_seq = n + L + 1;
                    seq = realloc(seq, (size_t)cap_seq * sizeof(int32_t));
                }
                memcpy(seq, ids, (size_t)n * sizeof(int32_t));
                memcpy(seq + n, out, (size_t)t * sizeof(int32_t));
                n_seq = n + t;
                CHECK(sa_ctx_prompt(q, seq, n_seq) == 0);
                sa_sampler_reset(&d);
                for (int k = 0; k < t; k++) sa_sampler_accept(&d, out[k]);
                CHECK(sa_sampler_dist(&d, sa_ctx_logits(q, -1), p) == 0);
                double below = 0;
                for (int k = 0; k < x; k++) below += p[k];
                CHECKF(p[x] > 0, "prompt %zu: sampled token %d of probability 0 at step %d", pi, x, t);
                u_rng = u_rng * 6364136223846793005ull + 1442695040888963407ull;
                const double v = (double)(u_rng >> 11) / 9007199254740992.0;
                double u = below + v * p[x];
                int b = (int)(u * BINS);
                bins[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
                draws++;
            }
        }
    }
    double chi = 0;
    const double e = (double)draws / BINS;
    for (int b = 0; b < BINS; b++) chi += (bins[b] - e) * (bins[b] - e) / e;
    const int df = BINS - 1;
    const double z = 3.0902, h = 2.0 / (9.0 * df), crit = df * pow(1 - h + z * sqrt(h), 3);
    printf("    %ld draws in %d sequences: chi-square %.1f, df %d, critical %.1f; drafted %d, accepted %d, "
           "%d generations with a rejection, %d re-synchronised, %.2f passes per generation\n",
           draws, gens, chi, df, crit, drafted, accepted, rejected_gens, resynced, (double)passes / gens);
    CHECKF(chi < crit, "chi-square %.1f >= %.1f (df %d)", chi, crit, df);
    /* what the sequences exercise: rejections, acceptance after them (re-synchronisation or the
     * substitution guess), and sequences of at least 6 tokens */
    CHECK(draws >= 6L * gens);
    CHECKF(rejected_gens > gens / 4 && resynced > gens / 20 && accepted > 0,
           "%d generations: %d with a rejection, %d accepting draft tokens after one", gens, rejected_gens, resynced);
    free(seq);
    free(ids);
    free(p);
    sa_sampler_free(&s);
    sa_sampler_free(&d);
    sa_ctx_free(c);
    sa_ctx_free(q);
    sa_model_free(&m);
}
