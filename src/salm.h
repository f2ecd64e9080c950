/* salm.h - the native model format (.salm): read and write. weights/FORMAT.md is the spec.
 *
 * A file is: a fixed header, typed key/value metadata (hyperparameters, tokenizer, templates),
 * a tensor table (name, dtype, dims, offset, size, crc32), then tensor data, each tensor aligned
 * to 64 bytes. Readers validate every length and offset before use. */
#ifndef SALIGN_SALM_H
#define SALIGN_SALM_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define SALM_MAGIC "SALM"
#define SALM_VERSION 1
#define SALM_ALIGN 64
#define SALM_MAX_DIMS 4

/* metadata value types (file numbering) */
typedef enum {
    SALM_U32 = 0,
    SALM_I32 = 1,
    SALM_F32 = 2,
    SALM_STR = 3,
    SALM_ARR_STR = 4,
    SALM_ARR_F32 = 5,
    SALM_ARR_I32 = 6,
    SALM_TYPE_COUNT
} SalmType;

typedef struct {
    char *key;
    SalmType type;
    union {
        uint32_t u32;
        int32_t i32;
        float f32;
    } v;
    char *str;        /* SALM_STR (NUL-terminated, length in n) */
    uint64_t n;       /* string length or array length */
    char **strs;      /* SALM_ARR_STR: n NUL-terminated strings */
    void *arr;        /* SALM_ARR_F32 / SALM_ARR_I32: n elements */
} SalmKV;

typedef struct {
    char *name;
    SaDtype dtype;
    int n_dims;
    int64_t ne[SALM_MAX_DIMS]; /* ne[0] = row length (innermost), like GGUF */
    uint64_t offset;           /* from the start of the data section */
    uint64_t nbytes;
    uint32_t crc32;
    void *data;                /* reader: points into the loaded data */
} SalmTensor;

typedef struct {
    SalmKV *kv;
    int n_kv;
    SalmTensor *tensors;
    int n_tensors;
    /* reader state */
    uint8_t *base;   /* whole file in memory (anonymous) or mapped */
    size_t size;
    int mmapped;     /* 1: base maps the file; 2: base is an anonymous mapping of map_len bytes */
    size_t map_len;
    uint64_t data_offset;
    uint64_t header_end; /* end of the tensor table (what header_crc32 covers ends here) */
    char *path;
    int converted;   /* 1: built in memory by salm_writer_to_memory from another format at path */
} Salm;

/* How salm_open brings the file into memory. */
typedef enum {
    SA_LOAD_READ = 0, /* the default: read into anonymous memory (on the VMs we measured, decoding
                         from page-cache mappings was up to 2x slower), 2 MiB-aligned and advised
                         for transparent huge pages: fewer TLB misses while weights stream, +6-14%
                         decode and a faster load on the 1B model (tools/bench/RESULTS.md); the
                         kernel may have to compact memory for them on a fragmented machine */
    SA_LOAD_MMAP = 1, /* map the file (--mmap): shares the page cache, starts fastest */
    SA_LOAD_READ_4K = 2, /* read into ordinary 4 KiB pages (--no-hugepages) */
} SaLoadMode;

/* Open a .salm in the given load mode. Validates the header, metadata and tensor table (not
 * the crcs: salm_verify). Returns 0 or -1 + sa_err("PATH: ..."). */
int salm_open(Salm *s, const char *path, SaLoadMode mode);
/* Check the crc32 of every tensor. Returns 0, or -1 naming the first bad tensor. */
int salm_verify(const Salm *s);
void salm_close(Salm *s);

const SalmKV *salm_kv(const Salm *s, const char *key);
const SalmTensor *salm_tensor(const Salm *s, const char *name);
/* Getters: 0 on success; -1 + sa_err if missing or the wrong type. */
int salm_get_u32(const Salm *s, const char *key, uint32_t *out);
int salm_get_i32(const Salm *s, const char *key, int32_t *out);
int salm_get_f32(const Salm *s, const char *key, float *out);
const char *salm_get_str(const Salm *s, const char *key); /* NULL if absent */

/* ---- writer ----
 * Collect metadata and tensor descriptions first; tensor data is produced by a callback at
 * write time, one tensor at a time, so a converter never holds the whole model in memory.
 * The file is written to PATH.tmp.<pid>, fsync'ed and renamed: never a partial output. */
typedef struct SalmWriter SalmWriter;

/* Produce the data of tensor `index` into dst (nbytes bytes). Return 0 or -1 + sa_err. */
typedef int (*SalmFillFn)(void *ctx, int index, void *dst, uint64_t nbytes);

SalmWriter *salm_writer_new(void);
void salm_writer_free(SalmWriter *w);
int salm_writer_u32(SalmWriter *w, const char *key, uint32_t v);
int salm_writer_i32(SalmWriter *w, const char *key, int32_t v);
int salm_writer_f32(SalmWriter *w, const char *key, float v);
int salm_writer_str(SalmWriter *w, const char *key, const char *v);
int salm_writer_arr_str(SalmWriter *w, const char *key, char *const *v, uint64_t n);
int salm_writer_arr_f32(SalmWriter *w, const char *key, const float *v, uint64_t n);
int salm_writer_arr_i32(SalmWriter *w, const char *key, const int32_t *v, uint64_t n);
/* Declare a tensor; returns its index or -1. ne[0] must be a multiple of the dtype's block. */
int salm_writer_tensor(SalmWriter *w, const char *name, SaDtype dtype, int n_dims, const int64_t *ne);
/* Write the file. progress(ctx, i, n) is called after each tensor if not NULL. */
int salm_writer_write(SalmWriter *w, const char *path, SalmFillFn fill, void *ctx,
                      void (*progress)(void *ctx, int done, int total));
/* The same image built in memory instead and opened as salm_open would open that file (mode:
 * SA_LOAD_READ or SA_LOAD_READ_4K; mapping is impossible), with no file on disk at all. PATH names
 * the source in messages and in s->path. 0, or -1 + sa_err("PATH: ...") with s left closed. */
int salm_writer_to_memory(SalmWriter *w, Salm *s, const char *path, SaLoadMode mode, SalmFillFn fill, void *ctx,
                          void (*progress)(void *ctx, int done, int total));

#endif
