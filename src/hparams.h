/* hparams.h - model hyperparameters: one struct for every architecture, an architecture
 * traits table, validation, and their .salm metadata keys (weights/FORMAT.md). */
#ifndef SALIGN_HPARAMS_H
#define SALIGN_HPARAMS_H

#include "salm.h"

typedef enum {
    SA_ARCH_LLAMA = 0, /* Llama 1/2/3, Mistral, llama2.c */
    SA_ARCH_QWEN2 = 1, /* + q/k/v biases */
    SA_ARCH_GEMMA = 2, /* Gemma 1 */
    SA_ARCH_GEMMA2 = 3,
    SA_ARCH_COUNT
} SaArch;

/* How RoPE pairs the dimensions of a head. */
typedef enum {
    SA_ROPE_ADJACENT = 0, /* (0,1),(2,3),...: llama2.c, and llama GGUFs (q/k rows permuted) */
    SA_ROPE_HALF = 1,     /* (i, i+d/2): HF checkpoints ("NeoX") */
} SaRopePairing;

typedef enum { SA_ROPE_SCALING_NONE = 0, SA_ROPE_SCALING_LLAMA3 = 1, SA_ROPE_SCALING_LINEAR = 2 } SaRopeScaling;
typedef enum { SA_ACT_SILU = 0, SA_ACT_GELU_TANH = 1 } SaAct;

typedef struct {
    SaArch arch;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    float norm_eps;
    float rope_theta;
    SaRopePairing rope_pairing;
    /* rope scaling */
    SaRopeScaling rope_scaling;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_ctx;
    /* architecture details (filled from the traits table, some overridable from the file) */
    SaAct act;
    int qkv_bias;           /* q/k/v projections have biases */
    int tied_output;        /* output matrix = token embedding */
    float embd_scale;       /* multiply embeddings (Gemma: sqrt(n_embd) rounded to the model dtype); 0 = none */
    float attn_softcap;     /* Gemma 2: tanh soft-capping of attention scores; 0 = off */
    float final_softcap;    /* Gemma 2: of the final logits; 0 = off */
    float query_scale;      /* attention scale; 0 = 1/sqrt(head_dim) */
    int sliding_window;     /* Gemma 2: window on even layers; 0 = off */
    int post_norms;         /* Gemma 2: norms after attention and FFN */
    /* a score model (PKU-Alignment's beaver reward/cost models, safe-rlhf's LlamaForScore): instead of
     * the output matrix, one row `score.weight` maps the last token's final (normed) hidden state to a
     * scalar; plus `score.bias` when score_bias. Not a language model: no logits. */
    int score_head;
    int score_bias;
} SaHparams;

const char *sa_arch_name(SaArch a);
int sa_arch_from_name(const char *name); /* -1 if unknown */

/* Fill architecture defaults (act, post_norms, ...) for h->arch. */
void sa_hparams_defaults(SaHparams *h);
/* Refuse values that make no sense, naming the field. 0 or -1 + sa_err. */
int sa_hparams_validate(const SaHparams *h);

int sa_hparams_write(SalmWriter *w, const SaHparams *h);
int sa_hparams_read(const Salm *s, SaHparams *h);

/* Tokenizer spec <-> .salm metadata ("tok.*" keys). */
#include "tokenizer.h"
int sa_tok_spec_write(SalmWriter *w, const SaTokSpec *spec);
int sa_tok_spec_read(const Salm *s, SaTokSpec *spec);

#endif
