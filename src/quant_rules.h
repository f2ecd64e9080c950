/* quant_rules.h - llama.cpp's file types (Q4_K_M, Q5_K_S, IQ4_XS, ...) and the per-tensor type
 * each one gives a tensor: the choice llama-quantize makes (llama.cpp's llama_tensor_get_type),
 * so that a file quantized here holds the same type in every tensor as llama-quantize's.
 *
 * Types are named by their GGUF (ggml) type id here, not by SaDtype, so the rules can name types
 * this build has no quantizer for yet; the caller maps them (sa_dtype_from_ggml) and refuses what
 * it cannot write. */
#ifndef SALIGN_QUANT_RULES_H
#define SALIGN_QUANT_RULES_H

#include <stdint.h>

#include "hparams.h"

/* ggml type ids (part of the GGUF format) of the types the rules can choose. */
enum {
    SA_GG_F32 = 0,
    SA_GG_F16 = 1,
    SA_GG_Q4_0 = 2,
    SA_GG_Q4_1 = 3,
    SA_GG_Q5_0 = 6,
    SA_GG_Q5_1 = 7,
    SA_GG_Q8_0 = 8,
    SA_GG_Q2_K = 10,
    SA_GG_Q3_K = 11,
    SA_GG_Q4_K = 12,
    SA_GG_Q5_K = 13,
    SA_GG_Q6_K = 14,
    SA_GG_IQ4_NL = 20,
    SA_GG_IQ4_XS = 23,
};

/* A file type: its name as salign-quantize --type spells it ("q4_k_m"), and its default type. */
typedef struct {
    const char *name;
    int default_type; /* SA_GG_* */
} SaFileType;

/* The file types in the order --help lists them; NULL when out of range. */
const SaFileType *sa_file_type(int i);
/* Index of a file type by name (case-insensitive), or -1. */
int sa_file_type_find(const char *name);

/* One tensor as the rules see it. */
typedef struct {
    const char *name;
    int64_t ne0;   /* row length */
    int n_dims;    /* dimensions above 1 (1: a vector) */
} SaRuleTensor;

/* A --tensor-type override: tensors whose name matches the pattern (a regular expression searched
 * anywhere in the name, as llama-quantize's std::regex_search) get the type; the first matching
 * override wins. */
typedef struct {
    char *pattern;
    int type; /* ggml type id */
} SaTypeOverride;

typedef struct {
    int file_type;  /* index for sa_file_type */
    int pure;       /* every quantized tensor in the default type (llama-quantize --pure) */
    int has_imatrix;
    const SaTypeOverride *overrides;
    int n_overrides;
} SaRuleOptions;

/* The ggml type of every tensor (out[i] for t[i]): vectors and tensors llama.cpp never
 * quantizes keep type -1 (the caller keeps them as floats); the rest get llama-quantize's choice,
 * shape fallbacks included. 0, or -1 + sa_err("--tensor-type PATTERN: ...") for a pattern that
 * is not a regular expression. */
int sa_quant_rules(const SaHparams *hp, const SaRuleTensor *t, int n, const SaRuleOptions *opt, int *out);

/* The GGUF name of a ggml type the rules can choose ("q4_K", "iq4_nl"), or "?". */
const char *sa_gg_type_name(int type);

#endif
