/* generate.h - the one token loop both models run: after a prompt, sample (or verify a draft),
 * decode, hand each token to a stop callback, evaluate it, until a status ends the loop. The
 * Stream Aligner's upstream sentence (the sentence splitter is its stop callback), the aligner's
 * copy-speculative rewrite, the none/aligner modes' answers and the judge all run here. */
#ifndef SALIGN_GENERATE_H
#define SALIGN_GENERATE_H

#include "context.h"
#include "sampler.h"
#include "tokenizer.h"

/* Why a generation ended: a status, never an error string to compare. */
typedef enum {
    SA_GEN_END = 0,      /* the model produced an end-of-generation token */
    SA_GEN_MAX_TOKENS,   /* the token cap was reached */
    SA_GEN_CONTEXT_FULL, /* no room for the next token in the context */
    SA_GEN_CANCELLED,    /* *cancel became nonzero (checked between tokens) */
    SA_GEN_STOPPED,      /* the stop callback returned nonzero (its value is in stop_code) */
} SaGenStatus;

/* Called with each generated token after it is decoded and before it is evaluated; piece is its
 * text (bytes, possibly part of a UTF-8 character), n_gen the tokens generated so far including
 * it. 0 continues; SA_GEN_COPY_DRAFT continues and starts the draft (see draft_on_request);
 * another nonzero value stops (the token stays generated but is not evaluated). */
typedef int (*SaGenTokenFn)(void *ctx, int32_t id, const char *piece, size_t n_piece, int n_gen);
#define SA_GEN_COPY_DRAFT (-1)

/* Benchmarks only (salign bench-align): the token to emit at output position n_gen (0-based),
 * replacing the sampled one; draft is the generation's draft (NULL without one). The model and the
 * sampler still run in full, so a forced run costs what a sampled one would; a draft token is
 * accepted iff it equals the forced token. Random-weight models of real shapes can then produce
 * sentences of a chosen length, and an aligner that copies or edits its draft. */
typedef int32_t (*SaGenForceFn)(void *ctx, int n_gen, const int32_t *draft, int n_draft);

typedef struct {
    int cap;                  /* tokens to generate at most (>= 1) */
    const int32_t *draft;     /* copy-speculation: the text the output is expected to copy, or NULL */
    int n_draft;
    int draft_on_request;     /* the draft is not used until on_token returns SA_GEN_COPY_DRAFT: the output copies it
                                 from its start only after a marker (the annotator's "CORRECTION: [[") */
    SaGenTokenFn on_token;    /* may be NULL */
    void *token_ctx;
    const int *cancel;        /* may be NULL; read atomically between tokens (another thread sets it) */
    int32_t *ids;             /* optional: receives the generated ids (room for cap) */
    SaBuf *text;              /* optional: receives the decoded bytes */
    SaGenForceFn force;       /* NULL, except in benchmarks (see SaGenForceFn) */
    void *force_ctx;
} SaGenParams;

typedef struct {
    int n;        /* tokens generated */
    int evals;    /* tokens evaluated by the model (including rejected draft tokens) */
    int drafted;  /* draft tokens verified */
    int accepted; /* draft tokens accepted */
    int full;     /* stopped because the context is full (status == SA_GEN_CONTEXT_FULL) */
    int passes;   /* forward passes (a batch of a few tokens costs about one token's) */
    SaGenStatus status;
    int stop_code; /* the stop callback's value when status is SA_GEN_STOPPED */
} SaGenStats;

/* After a prompt in c (sa_ctx_logits(c, -1) current), generate per gp. With a draft,
 * copy-speculative verification (see generate.c): the output distribution is that of plain
 * sampling, and greedy output is identical. The sampler's penalty counts are reset first.
 * 0, or -1 + sa_err (a sampling failure such as NaN logits, out of memory). */
int sa_gen(SaCtx *c, SaSampler *s, const SaTokenizer *tok, const SaGenParams *gp, SaGenStats *st);

/* The same with positional arguments (the speculative tests and the benchmarks). */
int sa_generate(SaCtx *c, SaSampler *s, const SaTokenizer *tok, int cap, const int32_t *draft, int n_draft, int32_t *ids,
                SaBuf *text, SaGenStats *st);

/* 1 when *cancel is set (NULL: never). */
int sa_cancelled(const int *cancel);

#endif
