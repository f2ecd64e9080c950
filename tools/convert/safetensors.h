/* safetensors.h - a validating reader of Hugging Face .safetensors files.
 *
 * Layout (github.com/huggingface/safetensors): u64 little-endian header length N, N bytes of a
 * JSON object, then the byte buffer. Each JSON member other than "__metadata__" describes one
 * tensor: {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, offsets
 * relative to the start of the byte buffer. Shapes are row-major with the outermost dimension
 * first (PyTorch order), the reverse of GGUF's ne[].
 *
 * The file is mapped read-only. Every field is checked before use: a tensor's byte range must
 * be exactly shape x dtype size, inside the buffer, and the ranges must tile the buffer without
 * overlaps or holes (what the reference implementation requires), so a hostile or truncated file
 * ends in a message, never a crash. */
#ifndef SALIGN_SAFETENSORS_H
#define SALIGN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../../src/dtype.h"

#define ST_MAX_DIMS 4

typedef struct {
    char *name;
    char dtype_name[12]; /* as in the file: "BF16", "F32", "I64", ... */
    int dtype;           /* SaDtype for F32/F16/BF16; -1 for a dtype salign cannot read */
    int n_dims;          /* 0 (a scalar) to ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS]; /* outermost first, as in the file */
    const void *data;
    uint64_t nbytes;
} StTensor;

typedef struct {
    char *path;
    const uint8_t *map;
    size_t size;
    StTensor *tensors;
    int n_tensors;
    int mapped; /* map is ours to munmap (st_open), not borrowed (st_parse) */
} SafeTensors;

/* Open and validate. On error: -1 + sa_err("PATH: problem"), st left empty. */
int st_open(SafeTensors *st, const char *path);
/* Validate a file image already in memory (borrowed; used by st_open and by tests). */
int st_parse(SafeTensors *st, const char *path, const uint8_t *data, size_t size);
void st_close(SafeTensors *st);
const StTensor *st_find(const SafeTensors *st, const char *name);

#endif
