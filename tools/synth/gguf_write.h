/* gguf_write.h - a streaming GGUF v3 writer (llama.cpp's file format), for synthetic models.
 *
 * Metadata and tensor descriptions are collected first; at write time each tensor's bytes are
 * produced by a callback that writes them to the file, so no tensor has to be in memory whole.
 * Layout: "GGUF", u32 version 3, u64 n_tensors, u64 n_kv, the key/values, the tensor infos
 * (name, n_dims, ne[], ggml type, offset), padding to the alignment (32), the data; every
 * tensor's offset is a multiple of 32. All little-endian. */
#ifndef SALIGN_GGUF_WRITE_H
#define SALIGN_GGUF_WRITE_H

#include <stdint.h>
#include <stdio.h>

typedef struct GgufWriter GgufWriter;

GgufWriter *gguf_writer_new(void);
void gguf_writer_free(GgufWriter *w);
int gguf_w_u32(GgufWriter *w, const char *key, uint32_t v);
int gguf_w_i32(GgufWriter *w, const char *key, int32_t v);
int gguf_w_f32(GgufWriter *w, const char *key, float v);
int gguf_w_bool(GgufWriter *w, const char *key, int v);
int gguf_w_str(GgufWriter *w, const char *key, const char *v);
int gguf_w_arr_str(GgufWriter *w, const char *key, char *const *v, uint64_t n);
int gguf_w_arr_f32(GgufWriter *w, const char *key, const float *v, uint64_t n);
int gguf_w_arr_i32(GgufWriter *w, const char *key, const int32_t *v, uint64_t n);
/* Declare a tensor of ggml type `type` (GGML_* of src/gguf.h). Returns its index or -1. */
int gguf_w_tensor(GgufWriter *w, const char *name, uint32_t type, int n_dims, const int64_t *ne);

/* Write tensor `index`'s bytes to f (exactly its size; checked). 0 or -1 + sa_err. */
typedef int (*GgufWriteFn)(void *ctx, int index, FILE *f);
/* Write PATH (through PATH.tmp.<pid> and a rename). 0 or -1 + sa_err naming the file. */
int gguf_writer_write(GgufWriter *w, const char *path, GgufWriteFn fn, void *ctx);

#endif
