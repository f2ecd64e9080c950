/* test_sampler.c - greedy, temperature/top-k/top-p distributions, frequency penalty, seeding,
 * NaN handling. */
#include <stdlib.h>
#include <string.h>

#include "../src/sampler.h"
#include "../src/common.h"
#include "test.h"

TEST(sampler_greedy_and_penalty) {
    float logits[5] = {0.1f, 2.0f, 1.9f, -1.0f, 0.0f};
    SaSampler s;
    SaSamplerParams p = {.temp = 0, .top_k = 0, .top_p = 1, .freq_penalty = 0.5f, .seed = 1};
    sa_sampler_init(&s, &p, 5);
    CHECK_EQ_INT(sa_sample(&s, logits), 1);
    sa_sampler_accept(&s, 1); /* 2.0 - 0.5 = 1.5 < 1.9 */
    CHECK_EQ_INT(sa_sample(&s, logits), 2);
    sa_sampler_reset(&s);
    CHECK_EQ_INT(sa_sample(&s, logits), 1);
    sa_sampler_free(&s);
}

/* One NaN or +Inf logit is a broken forward pass: an error, never a token sampled around it
 * (greedy and sampled); -Inf masks a token and is never sampled. */
TEST(sampler_nan_is_an_error) {
    for (int greedy = 0; greedy < 2; greedy++) {
        SaSampler s;
        SaSamplerParams p = {.temp = greedy ? 0.0f : 0.7f, .top_k = 40, .top_p = 0.95f, .seed = 3};
        sa_sampler_init(&s, &p, 4);
        float one_nan[4] = {NAN, 1.0f, 0.2f, 0.5f};
        CHECK(sa_sample(&s, one_nan) == -1);
        CHECK(strstr(sa_errmsg(), "NaN") != NULL);
        float one_inf[4] = {0.1f, 1.0f, INFINITY, 0.5f};
        CHECK(sa_sample(&s, one_inf) == -1);
        float masked[4] = {-INFINITY, 1.0f, -INFINITY, 0.5f};
        for (int i = 0; i < 200; i++) {
            int t = sa_sample(&s, masked);
            CHECK(t == 1 || t == 3);
        }
        float all_masked[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        CHECK(sa_sample(&s, all_masked) == -1);
        sa_sampler_free(&s);
    }
}

/* Empirical frequencies match the analytic distribution after temperature, top-k and top-p. */
TEST(sampler_distribution) {
    enum { V = 6, N = 200000 };
    float logits[V] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f};
    SaSamplerParams p = {.temp = 0.7f, .top_k = 4, .top_p = 0.9f, .seed = 42};
    SaSampler s;
    sa_sampler_init(&s, &p, V);
    float dist[V];
    CHECK(sa_sampler_dist(&s, logits, dist) == 0);
    /* analytic: softmax(l/0.7), keep top 4 (ids 5,0,1,2), renormalise, cut at cumulative >= 0.9 */
    double e[V], z = 0;
    int order[4] = {5, 0, 1, 2};
    for (int i = 0; i < 4; i++) z += e[order[i]] = exp(logits[order[i]] / 0.7);
    double cum = 0, expect[V] = {0};
    int keep = 0;
    for (int i = 0; i < 4; i++) {
        cum += e[order[i]] / z;
        keep = i + 1;
        if (cum >= 0.9) break;
    }
    double z2 = 0;
    for (int i = 0; i < keep; i++) z2 += e[order[i]];
    for (int i = 0; i < keep; i++) expect[order[i]] = e[order[i]] / z2;
    for (int i = 0; i < V; i++) CHECKF(fabs(dist[i] - expect[i]) < 1e-5, "dist[%d] %g vs %g", i, dist[i], expect[i]);
    int counts[V] = {0};
    for (int i = 0; i < N; i++) counts[sa_sample(&s, logits)]++;
    double chi = 0;
    int df = -1;
    for (int i = 0; i < V; i++) {
        if (expect[i] == 0) {
            CHECK_EQ_INT(counts[i], 0);
            continue;
        }
        double ex = expect[i] * N;
        chi += (counts[i] - ex) * (counts[i] - ex) / ex;
        df++;
    }
    /* df <= 3: the 99.9% quantile of chi-square(3) is 16.27 */
    CHECKF(chi < 16.27, "chi-square %g (df %d)", chi, df);
    sa_sampler_free(&s);
}

TEST(sampler_seed_reproducible) {
    float logits[50];
    for (int i = 0; i < 50; i++) logits[i] = sinf((float)i);
    SaSamplerParams p = {.temp = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 1234};
    SaSampler a, b;
    sa_sampler_init(&a, &p, 50);
    sa_sampler_init(&b, &p, 50);
    int same = 1, distinct = 0, first = sa_sample(&a, logits);
    sa_sample(&b, logits);
    for (int i = 0; i < 100; i++) {
        int x = sa_sample(&a, logits), y = sa_sample(&b, logits);
        same &= x == y;
        distinct |= x != first;
    }
    CHECK(same);
    CHECK(distinct);
    sa_sampler_free(&a);
    sa_sampler_free(&b);
}

/* llama.cpp's repeat penalty (divide a positive logit, multiply a negative one), the presence
 * penalty (once per generated token) and min-p (relative to the most probable, before temperature),
 * in greedy picks and in the distribution the speculative acceptance rule draws from. */
TEST(sampler_repeat_presence_min_p) {
    SaSampler s;
    SaSamplerParams p = {.temp = 0, .repeat_penalty = 2.0f};
    CHECK(sa_sampler_init(&s, &p, 3) == 0);
    const float pos[3] = {2.0f, 1.5f, -9.0f}, neg[3] = {-1.0f, -1.5f, -9.0f};
    CHECK_EQ_INT(sa_sample(&s, pos), 0);
    sa_sampler_accept(&s, 0);
    CHECK_EQ_INT(sa_sample(&s, pos), 1); /* 2 / 2 = 1 < 1.5 */
    CHECK_EQ_INT(sa_sample(&s, neg), 1); /* -1 * 2 = -2 < -1.5 */
    sa_sampler_free(&s);
    p = (SaSamplerParams){.temp = 0, .presence_penalty = 0.6f};
    CHECK(sa_sampler_init(&s, &p, 3) == 0);
    const float two[3] = {1.0f, 0.5f, -9.0f};
    sa_sampler_accept(&s, 0);
    sa_sampler_accept(&s, 0); /* presence counts once, however often */
    CHECK_EQ_INT(sa_sample(&s, two), 1); /* 1 - 0.6 = 0.4 < 0.5 */
    p.presence_penalty = 0.4f;
    sa_sampler_free(&s);
    CHECK(sa_sampler_init(&s, &p, 3) == 0);
    sa_sampler_accept(&s, 0);
    sa_sampler_accept(&s, 0);
    CHECK_EQ_INT(sa_sample(&s, two), 0); /* 1 - 0.4 = 0.6 > 0.5 */
    sa_sampler_free(&s);
    p = (SaSamplerParams){.temp = 2.0f, .top_p = 1.0f, .min_p = 0.1f, .seed = 1};
    CHECK(sa_sampler_init(&s, &p, 3) == 0);
    const float l[3] = {0.0f, -1.0f, -5.0f}; /* relative probabilities 1, 0.37, 0.0067 before temperature */
    float d[3];
    CHECK(sa_sampler_dist(&s, l, d) == 0);
    CHECK(d[0] > 0 && d[1] > 0 && d[2] == 0.0f);
    CHECKF(fabsf(d[0] + d[1] - 1.0f) < 1e-6f && fabsf(d[1] / d[0] - expf(-0.5f)) < 1e-5f, "%g %g", d[0], d[1]);
    for (int i = 0; i < 200; i++) CHECK(sa_sample(&s, l) != 2);
    sa_sampler_free(&s);
}

/* top_p 0 keeps only the most probable token (OpenAI's and llama.cpp's meaning: the smallest set
 * whose mass reaches p has one token); it used to switch top-p off, so `salign serve` sampled the
 * whole distribution for a client that asked for "top_p": 0. */
TEST(sampler_top_p_zero_is_the_top_token) {
    float logits[6] = {1.0f, 0.5f, 0.0f, -0.5f, 0.9f, 0.8f};
    for (int top_k = 0; top_k <= 3; top_k += 3) {
        SaSamplerParams p = {.temp = 1.0f, .top_k = top_k, .top_p = 0.0f, .seed = 7};
        SaSampler s;
        sa_sampler_init(&s, &p, 6);
        float dist[6];
        CHECK(sa_sampler_dist(&s, logits, dist) == 0);
        CHECKF(dist[0] == 1.0f, "top_k %d: p(top token) %g", top_k, dist[0]);
        int others = 0;
        for (int i = 0; i < 500; i++) others += sa_sample(&s, logits) != 0;
        CHECKF(others == 0, "top_k %d: %d of 500 draws were not the top token", top_k, others);
        sa_sampler_free(&s);
    }
}
