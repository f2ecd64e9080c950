/* sampler.h - choose the next token from logits: greedy, or min-p + temperature + top-k + top-p,
 * with OpenAI/vLLM-style frequency and presence penalties (logit -= penalty * count, - presence once)
 * and llama.cpp's repeat penalty, all over the tokens generated so far. A seeded RNG makes runs
 * reproducible. */
#ifndef SALIGN_SAMPLER_H
#define SALIGN_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temp;         /* 0 = greedy */
    int top_k;          /* 0 = off */
    float top_p;        /* 1 = off */
    float freq_penalty; /* 0 = off */
    /* llama.cpp's: a generated token's logit divided (if > 0) or multiplied (if < 0) by it;
     * 0 or 1 = off */
    float repeat_penalty;
    float presence_penalty; /* subtracted once from a generated token's logit; 0 = off */
    float min_p;            /* drop tokens less probable than min_p x the most probable (before
                               temperature, as llama.cpp); 0 = off */
    uint64_t seed;
} SaSamplerParams;

typedef struct {
    SaSamplerParams p;
    int n_vocab;
    uint64_t rng;
    int32_t *counts; /* occurrences of each token in the generated text */
    float *probs;    /* scratch */
    int32_t *idx;    /* scratch */
} SaSampler;

int sa_sampler_init(SaSampler *s, const SaSamplerParams *p, int n_vocab);
void sa_sampler_free(SaSampler *s);
/* Forget the generated-token counts (start of a new generation). */
void sa_sampler_reset(SaSampler *s);
/* Record that token id was generated (for the frequency penalty). */
void sa_sampler_accept(SaSampler *s, int id);
/* Sample a token. Returns -1 + sa_err if any logit is NaN or +Inf (a broken forward pass) or
 * every logit is -Inf; -Inf logits (masked tokens) are never chosen. */
int sa_sample(SaSampler *s, const float *logits);
/* The final distribution sa_sample would draw from (penalty, temperature, top-k, top-p applied),
 * written densely into probs[n_vocab]; greedy gives a one-hot vector. Used by speculative
 * decoding's acceptance rule. Returns 0 or -1 as sa_sample. */
int sa_sampler_dist(SaSampler *s, const float *logits, float *probs);
/* A uniform random float in [0, 1). */
float sa_sampler_uniform(SaSampler *s);

#endif
