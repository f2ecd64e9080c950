/* synth.h - synthetic checkpoints: a random-weight model of any supported architecture and
 * shape, written both as a Hugging Face directory (config.json, safetensors, a real
 * tokenizer.json) and as a GGUF in llama.cpp's conventions, so tests and benchmarks can use real
 * shapes without downloads. Both files hold the same model: every value is a function of
 * (seed, tensor, row), rounded once to the HF dtype, and the GGUF is derived from those rounded
 * values the way llama.cpp's convert_hf_to_gguf.py derives it (llama q/k rows permuted for its
 * adjacent-pair RoPE, Gemma norms stored as 1 + w, no output matrix when tied).
 *
 * The weights are scaled so activations stay O(1) at any width (std 1/sqrt(fan_in)) and the
 * logits have a standard deviation of about `logit_std`, so greedy decoding is not a sea of
 * near-ties between equally likely tokens. */
#ifndef SALIGN_SYNTH_H
#define SALIGN_SYNTH_H

#include <stdint.h>

#include "../../src/dtype.h"
#include "../../src/hparams.h"

typedef enum { SYN_LLAMA, SYN_MISTRAL, SYN_QWEN2, SYN_GEMMA, SYN_GEMMA2, SYN_ARCH_COUNT } SynArch;

typedef struct {
    int arch;            /* SynArch */
    int hidden, layers, heads, kv_heads, ff;
    int head_dim;        /* 0: hidden / heads */
    int vocab;           /* 0: the tokenizer's size; larger: padded with placeholder tokens */
    const char *vocab_from; /* folder with tokenizer.json (+ tokenizer_config.json) */
    uint64_t seed;
    SaDtype dtype;       /* of the safetensors: SA_F32, SA_BF16 or SA_F16 */
    int tied;            /* -1: the architecture's usual choice (Gemma tied, others not) */
    int rope_scaling;    /* SaRopeScaling; llama3 uses Llama 3.2's numbers (factor 32, 1, 4, 8192) */
    float rope_factor;   /* for linear scaling */
    float rope_theta;    /* 0: the architecture's usual base */
    int sliding_window;  /* Gemma 2; 0: 4096 */
    int ctx;             /* max_position_embeddings; 0: the architecture's usual one */
    int shards;          /* safetensors files (1: model.safetensors; more: an index) */
    float logit_std;     /* 0: 4 */
    float block_scale;   /* 0: 1 */
    int score;           /* llama only: a score model in safe-rlhf's layout (LlamaForScore: score_head
                            instead of lm_head, normalizer buffers); 2: with a score_head bias. HF only */
} SaSynthSpec;

int sa_synth_arch_from_name(const char *name); /* "llama", "mistral", ...; -1 if unknown */
const char *sa_synth_arch_name(int arch);

typedef struct SaSynth SaSynth;

/* Check the spec and load the tokenizer. NULL + sa_err on a bad spec. */
SaSynth *sa_synth_new(const SaSynthSpec *spec);
void sa_synth_free(SaSynth *s);
/* Write the HF directory (created if missing). 0 or -1 + sa_err. */
int sa_synth_write_hf(const SaSynth *s, const char *dir);
/* Write the GGUF with matrices of type `type` (SA_F32, SA_F16, SA_Q8_0, SA_Q4_0; a matrix whose
 * rows are not a multiple of 32 falls back to F16 as llama-quantize does). */
int sa_synth_write_gguf(const SaSynth *s, const char *path, SaDtype type);

#endif
