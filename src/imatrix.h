/* imatrix.h - llama.cpp's importance-matrix files (llama-imatrix's output, llama-quantize
 * --imatrix): the GGUF form (NAME.in_sum2 and NAME.counts tensors) and the older .dat form.
 * Each entry is one weight matrix's per-column importance, already normalised as llama-quantize
 * uses it (sums divided by the token counts). */
#ifndef SALIGN_IMATRIX_H
#define SALIGN_IMATRIX_H

#include <stdint.h>

typedef struct {
    char *name;     /* the weight's GGUF name, e.g. blk.0.attn_q.weight */
    float *values;  /* n values, finite */
    int64_t n;
} SaImatrixEntry;

typedef struct {
    SaImatrixEntry *e;
    int n;
    int legacy;     /* 1: the .dat form */
} SaImatrix;

/* Read PATH (either form). 0, or -1 + sa_err("PATH: problem"). */
int sa_imatrix_load(const char *path, SaImatrix *im);
/* The entry for a weight name, or NULL. */
const SaImatrixEntry *sa_imatrix_find(const SaImatrix *im, const char *name);
void sa_imatrix_free(SaImatrix *im);

#endif
