/* model.h - a loaded model: hyperparameters, weights bound to the tensors of a .salm file,
 * and its tokenizer. Read-only after loading; any number of contexts (src/context.h) can use it. */
#ifndef SALIGN_MODEL_H
#define SALIGN_MODEL_H

#include "hparams.h"
#include "repack.h"
#include "salm.h"
#include "tokenizer.h"

typedef struct {
    const float *attn_norm, *ffn_norm;
    const float *post_attn_norm, *post_ffn_norm; /* Gemma 2 */
    SaMat wq, wk, wv, wo;
    const float *bq, *bk, *bv; /* Qwen2 */
    SaMat w_gate, w_up, w_down;
} SaLayer;

typedef struct {
    SaHparams hp;
    Salm file;
    SaTokenizer *tok;
    SaMat tok_embd, output; /* output: rows 0 in a score model */
    SaMat score;            /* hp.score_head: one row of n_embd, else rows 0 */
    const float *score_bias; /* hp.score_bias: one value, else NULL */
    const float *output_norm;
    SaLayer *layers;
    char *chat_template;    /* model's own chat template text, or NULL */
    char *aligner_template; /* Stream Aligner prompt template, or NULL */
    float *owned_f32;       /* norm vectors converted to f32 when stored otherwise */
} SaModel;

typedef struct {
    int load_mode; /* SaLoadMode (salm.h) */
    int verify; /* check every crc32 at load, whatever the policy says */
} SaLoadOpts;

/* When a .salm's tensor crc32s are checked on load (a flipped bit in the weights would otherwise
 * only change the output): ONCE (the default) checks a file the first time it is loaded in its
 * current form and remembers it (verified.h); NEVER is --no-verify. A GGUF has no checksums. */
typedef enum { SA_VERIFY_ONCE = 0, SA_VERIFY_NEVER = 1 } SaVerifyPolicy;
void sa_model_set_verify_policy(SaVerifyPolicy p);

int sa_model_load(SaModel *m, const char *path, const SaLoadOpts *opts);
void sa_model_free(SaModel *m);
/* Bytes of weights (sum of tensor sizes). */
uint64_t sa_model_weight_bytes(const SaModel *m);

#endif
