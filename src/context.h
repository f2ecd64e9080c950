/* context.h - an inference context: one sequence's KV cache plus the scratch buffers of the
 * forward pass. eval() appends tokens at the current position as one batch; truncate() rolls
 * back; prompt() reuses the longest common token prefix already in the cache. */
#ifndef SALIGN_CONTEXT_H
#define SALIGN_CONTEXT_H

#include "kv.h"
#include "model.h"

typedef struct {
    int n_ctx;      /* positions (default: min(model n_ctx_train, 4096)) */
    int n_batch;    /* max tokens per forward pass (default 512) */
    int n_logits;   /* max rows of logits one eval can return with all_logits (default 64) */
    SaDtype kv_type; /* SA_F16 (default), SA_F32 or SA_Q8_0 (n_head_kv * head_dim a multiple of 32) */
    int llamacpp_compat; /* verification mode, llama.cpp's arithmetic bit for bit (src/llamacpp_compat.h);
                            default: on when the environment sets SALIGN_LLAMACPP_COMPAT=1 */
    int score;      /* 1: the caller reads a score model's scores (sa_ctx_score); a score model (hp.score_head)
                       needs it and a language model refuses it, so neither is used as the other */
} SaCtxParams;

typedef struct SaCtx SaCtx;

void sa_ctx_default_params(const SaModel *m, SaCtxParams *p);
/* Bytes a context with these parameters allocates (KV cache + scratch). */
size_t sa_ctx_bytes(const SaModel *m, const SaCtxParams *p);
SaCtx *sa_ctx_new(const SaModel *m, const SaCtxParams *p);
void sa_ctx_free(SaCtx *c);

/* Evaluate n tokens at positions pos()..pos()+n-1. With all_logits, logits of every token are
 * kept (n must be <= n_logits); otherwise only those of the last one. 0 or -1 + sa_err
 * (e.g. the context is full: nothing is evaluated then). */
int sa_ctx_eval(SaCtx *c, const int32_t *tokens, int n, int all_logits);
/* A forward pass splits its per-token steps (norms, rotary embedding, KV append, residual adds,
 * the FFN activation) over the threads when the batch's rows hold at least this many elements
 * (tokens x row width); smaller ones, decode among them, run them on the calling thread. The
 * values are the same either way. */
#define SA_TOK_PAR_MIN_WORK ((size_t)1 << 15)
/* The FFN activation's unit of that split: elements (64 KiB) of the T x n_ff activation, a
 * multiple of 64 so every kernel table's vector steps and tail fall where one thread's do. */
#define SA_TOK_ACT_CHUNK ((size_t)1 << 14)
/* A score model's score of row i of the last eval (i = -1: the last row): score.weight . the final
 * normed hidden state (+ score.bias). Where a language model has logits, a score model has this. */
float sa_ctx_score(const SaCtx *c, int i);
/* Logits of row i of the last eval (i = -1: the last row). */
const float *sa_ctx_logits(const SaCtx *c, int i);
int sa_ctx_n_logits(const SaCtx *c);

/* Make the cache hold exactly `tokens` and leave the logits of the last one: keeps the longest
 * common prefix with what the cache holds, evaluates the rest as batches. n >= 1. */
int sa_ctx_prompt(SaCtx *c, const int32_t *tokens, int n);

int sa_ctx_pos(const SaCtx *c);
int sa_ctx_n_ctx(const SaCtx *c);
/* Roll back to pos tokens. If the last eval kept all logits and pos falls inside it, the logits of
 * token pos-1 become the current ones (sa_ctx_logits(c, -1)). */
void sa_ctx_truncate(SaCtx *c, int pos);
const SaKv *sa_ctx_kv(const SaCtx *c);
/* Test hook (the scripted aligner of tests/test_annotator.c): after every eval, fn rewrites each
 * row of logits it returned, given the tokens of the cache up to and including that row's token, so
 * a test can make a real model "say" fixed text through the real decode path (sampling, copy-
 * speculation, rollback). NULL removes it. Never set outside tests. */
typedef void (*SaLogitsHook)(void *ctx, const int32_t *tokens, int n_tokens, float *logits, int n_vocab);
void sa_ctx_set_logits_hook(SaCtx *c, SaLogitsHook fn, void *ctx);
const SaModel *sa_ctx_model(const SaCtx *c);

#endif
