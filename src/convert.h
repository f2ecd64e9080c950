/* convert.h - model conversion to .salm: a "model source" that every importer fills in
 * (GGUF here; llama2.c .bin and Hugging Face directories in tools/convert/), and the converter that chooses an
 * output dtype per tensor, converts row by row and streams the result through the .salm writer.
 *
 * Tensor names are llama.cpp's GGUF names (token_embd.weight, blk.N.attn_q.weight, ...);
 * ne[0] is the row length (input dimension), ne[1] the number of rows, as in GGUF. */
#ifndef SALIGN_CONVERT_H
#define SALIGN_CONVERT_H

#include <stdint.h>

#include "dtype.h"
#include "hparams.h"
#include "imatrix.h"
#include "quant_rules.h"
#include "salm.h"
#include "tokenizer.h"

/* .salm metadata key of the model's own chat template (read by src/model.c). */
#define SA_CONV_KEY_CHAT_TEMPLATE "chat_template"
/* .salm metadata key of the Stream Aligner prompt template stored with an aligner model. */
#define SA_CONV_KEY_ALIGNER_TEMPLATE "aligner_template"

typedef struct SaConvTensor SaConvTensor;

/* Decode rows [row0, row0 + nrows) of a tensor whose bytes are not in an SaDtype layout
 * (e.g. llama2.c's group-quantized int8) into dst (nrows * ne[0] floats). Cannot fail: the
 * importer validated the bytes, and it runs on worker threads (sa_err is per thread). */
typedef void (*SaConvDecodeFn)(const SaConvTensor *t, int64_t row0, int64_t nrows, float *dst);

struct SaConvTensor {
    char *name;
    SaDtype dtype;      /* source dtype; for decoded tensors the nearest one (what `keep` gives) */
    int n_dims;
    int64_t ne[4];      /* unused dims are 1 */
    const void *data;   /* source bytes in `dtype` layout, or the decoder's input */
    uint64_t nbytes;    /* bytes available at data (checked against the shape) */
    SaConvDecodeFn decode; /* NULL: data is in `dtype` layout */
    const void *aux;    /* decoder's extra input (e.g. scales) */
    int64_t group;      /* decoder's parameter (e.g. group size) */
};

typedef struct {
    SaHparams hp;
    SaTokSpec tok;
    char *chat_template;  /* NULL if none */
    char *aligner_template; /* Stream Aligner prompt template (--aligner-template), NULL if none */
    SaConvTensor *tensors;
    int n_tensors, cap_tensors;
    /* what keeps the tensor bytes alive (a GGUF mapping, a mapped .bin); released by sa_conv_free */
    void *owner;
    void (*owner_free)(void *owner);
    char *path;           /* the input, for messages */
    const char *kind;     /* "GGUF", "llama2.c v0", ... (for messages) */
} SaConvSource;

/* Output type choice: plain floats, the input's own types (keep), or one of llama.cpp's file
 * types with its per-tensor rules (src/quant_rules.h). */
typedef enum {
    SA_CONV_F32 = 0,
    SA_CONV_F16,
    SA_CONV_Q8_0,
    SA_CONV_Q4_0,
    SA_CONV_KEEP,
    SA_CONV_Q4_1,
    SA_CONV_Q5_0,
    SA_CONV_Q5_1,
    SA_CONV_Q2_K,
    SA_CONV_Q3_K_S,
    SA_CONV_Q3_K_M,
    SA_CONV_Q3_K_L,
    SA_CONV_Q4_K_S,
    SA_CONV_Q4_K_M,
    SA_CONV_Q5_K_S,
    SA_CONV_Q5_K_M,
    SA_CONV_Q6_K,
    SA_CONV_IQ4_NL,
    SA_CONV_IQ4_XS,
    SA_CONV_TYPE_COUNT
} SaConvType;

/* "f32", "f16", "keep", "q4_k_m", ... (case-insensitive) -> SaConvType, or -1. */
int sa_conv_type_from_name(const char *name);
const char *sa_conv_type_name(SaConvType t);
/* 1 if this build has a quantizer for every type the file type can choose. */
int sa_conv_type_available(SaConvType t);

typedef struct {
    SaConvType type;
    int quiet;          /* no progress output */
    int pure;           /* one type for every matrix (llama-quantize --pure; quantized types only) */
    const SaTypeOverride *overrides; /* --tensor-type, in the order given */
    int n_overrides;
    int threads;        /* quantizing threads; 0: OpenMP's default (all cores) */
    const SaImatrix *imatrix; /* --imatrix: weighted quantization as llama-quantize's; NULL: none */
} SaConvOptions;

/* Importers (the GGUF one here, since the runtime opens GGUFs; llama2.c and HF in
 * tools/convert/import.h). On error: -1 + sa_err("PATH: problem"), and the source is left empty. */
int sa_import_gguf(const char *path, SaConvSource *src);

/* Append a tensor (name copied; data borrowed). Checks nbytes against the shape for plain
 * tensors. Returns the new tensor, or NULL + sa_err. */
SaConvTensor *sa_conv_add(SaConvSource *src, const char *name, SaDtype dtype, int n_dims, const int64_t *ne,
                          const void *data, uint64_t nbytes);
const SaConvTensor *sa_conv_find(const SaConvSource *src, const char *name);
void sa_conv_free(SaConvSource *src);

/* Check that the tensor set matches the hyperparameters: every required tensor present with
 * the expected shape, no unknown tensors. 0 or -1 + sa_err naming the tensor. */
int sa_conv_check(const SaConvSource *src);

/* The output dtype of every tensor (out[i] for src->tensors[i]) under opt: llama-quantize's
 * choices (src/quant_rules.c) for the file types, F32 vectors. 0, or -1 + sa_err naming the
 * option or the type this build cannot write. */
int sa_conv_plan(const SaConvSource *src, const SaConvOptions *opt, SaDtype *out);
/* The output dtype of one tensor under `type` (sa_conv_plan for the whole model). */
SaDtype sa_conv_out_dtype(const SaConvSource *src, const SaConvTensor *t, SaConvType type);

/* Convert and write OUT (temp file + fsync + rename). Progress and per-tensor quantization
 * error go to stderr unless quiet. 0 or -1 + sa_err. */
int sa_conv_write(const SaConvSource *src, const char *out_path, const SaConvOptions *opt);
/* The same conversion into memory: OUT is opened as salm_open would open the written file
 * (mode SA_LOAD_READ or SA_LOAD_READ_4K), and nothing touches the disk. Progress lines unless
 * quiet. 0 or -1 + sa_err("SOURCE: ...") with OUT left closed. */
int sa_conv_to_memory(const SaConvSource *src, const SaConvOptions *opt, SaLoadMode mode, Salm *out);

#endif
