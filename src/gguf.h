/* gguf.h - a validating reader of GGUF v2/v3 files (llama.cpp's format).
 *
 * The file is mapped read-only; every count, length, type, dimension and offset is checked
 * before it is used, so a hostile file ends in an error message, never a crash. */
#ifndef SALIGN_GGUF_H
#define SALIGN_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* GGUF metadata value types (the file's numbering). */
enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12,
};

/* ggml tensor types we read (the file's numbering). */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_BF16 = 30 };

typedef struct {
    const char *s; /* not NUL-terminated: points into the mapping */
    uint64_t len;
} GgufStr;

typedef struct {
    char *key;       /* NUL-terminated copy */
    uint32_t type;   /* GGUF_* */
    union {
        uint64_t u;
        int64_t i;
        double f;
        GgufStr str;
    } v;             /* scalar value (integers widened, floats as double) */
    uint32_t arr_type; /* for GGUF_ARRAY: element type */
    uint64_t arr_n;    /* element count */
    const uint8_t *arr_data; /* start of the elements in the mapping (strings: length-prefixed) */
    GgufStr *arr_str;  /* for string arrays: decoded (allocated) */
} GgufKV;

typedef struct {
    char *name;
    uint32_t n_dims;
    int64_t ne[4];   /* ne[0] = innermost (row length) */
    uint32_t type;   /* GGML_* */
    uint64_t offset; /* relative to the data section */
    const void *data;
    uint64_t nbytes;
} GgufTensor;

typedef struct {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    GgufKV *kv;
    GgufTensor *tensors;
    uint32_t alignment;
    const uint8_t *map;
    size_t size;
    size_t data_offset;
    char *path;
} Gguf;

/* Open and validate. On error returns -1 with sa_err("PATH: problem"). */
int gguf_open(Gguf *g, const char *path);
void gguf_close(Gguf *g);

const GgufKV *gguf_find(const Gguf *g, const char *key);
const GgufTensor *gguf_tensor(const Gguf *g, const char *name);
/* Typed getters; return 0, or -1 with sa_err if missing or of an incompatible type.
 * Integer getters accept any integer type whose value fits. */
int gguf_get_u32(const Gguf *g, const char *key, uint32_t *out);
int gguf_get_i32(const Gguf *g, const char *key, int32_t *out);
int gguf_get_f32(const Gguf *g, const char *key, float *out);
int gguf_get_bool(const Gguf *g, const char *key, int *out);
/* A newly allocated NUL-terminated copy of a string value. */
int gguf_get_str(const Gguf *g, const char *key, char **out);

/* Fill a tokenizer spec from tokenizer.ggml.* (model "llama" -> SPM, "gpt2" -> BPE). */
int gguf_tok_spec(const Gguf *g, SaTokSpec *spec);

#endif
