/* gguf.c - a validating GGUF v2/v3 reader.
 *
 * Every value read from the file goes through a bounds-checked cursor, and every size
 * computed from file values uses overflow-checked arithmetic, so a truncated or hostile file
 * can only produce an error message. The mapping is read-only and stays alive until
 * gguf_close(): strings and tensor data point into it. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "dtype.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* llama.cpp limits keys to 64 KiB and tensor names to 64 bytes; we accept up to 256 bytes
 * for names (no real model comes near) but still refuse absurd ones. */
#define GGUF_MAX_KEY_LEN 65535
#define GGUF_MAX_NAME_LEN 256

/* ---- ggml tensor types ----
 * Names and sizes of every ggml type, run by salign or not, so a file with a type we do not
 * run gets an error naming it instead of "unknown type 27". Which ones load is the dtype table's
 * business (src/dtype.h: a row with SA_DT_WEIGHT); this table only knows the file format. */
typedef struct {
    const char *name;
    int block;        /* elements per block */
    int block_bytes;  /* bytes per block */
} GgmlType;

static const GgmlType ggml_types[] = {
    [0] = {"f32", 1, 4},        [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},     [3] = {"q4_1", 32, 20},
    [6] = {"q5_0", 32, 22},     [7] = {"q5_1", 32, 24},      [8] = {"q8_0", 32, 34},     [9] = {"q8_1", 32, 36},
    [10] = {"q2_K", 256, 84},   [11] = {"q3_K", 256, 110},   [12] = {"q4_K", 256, 144},  [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210},  [15] = {"q8_K", 256, 292},   [16] = {"iq2_xxs", 256, 66}, [17] = {"iq2_xs", 256, 74},
    [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},  [20] = {"iq4_nl", 32, 18},  [21] = {"iq3_s", 256, 110},
    [22] = {"iq2_s", 256, 82},  [23] = {"iq4_xs", 256, 136}, [24] = {"i8", 1, 1},        [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},       [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},       [29] = {"iq1_m", 256, 56},
    [30] = {"bf16", 1, 2},      [34] = {"tq1_0", 256, 54},   [35] = {"tq2_0", 256, 66},  [39] = {"mxfp4", 32, 17},
    [40] = {"nvfp4", 64, 36},   [41] = {"q1_0", 128, 18},    [42] = {"q2_0", 128, 34},
};

/* Ids ggml once used for repacked Q4_0 / IQ4_NL layouts (Q4_0_4_4 ... IQ4_NL_8_8) and removed
 * from GGUF files: llama.cpp itself no longer reads such files. */
static const char *removed_type(uint32_t t) {
    static const char *names[] = {[31] = "q4_0_4_4", [32] = "q4_0_4_8", [33] = "q4_0_8_8",
                                  [36] = "iq4_nl_4_4", [37] = "iq4_nl_4_8", [38] = "iq4_nl_8_8"};
    return t < SA_ARRAY_LEN(names) ? names[t] : NULL;
}

static const GgmlType *ggml_type(uint32_t t) {
    if (t >= SA_ARRAY_LEN(ggml_types) || !ggml_types[t].name) return NULL;
    return &ggml_types[t];
}

/* "f32, f16, ..." of the weight types salign runs, for messages. */
static const char *supported_list(void) {
    static char buf[256];
    if (buf[0]) return buf;
    size_t n = 0;
    for (int d = 0; d < SA_DTYPE_COUNT; d++)
        if (sa_dtype_tr((SaDtype)d)->flags & SA_DT_WEIGHT)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "", sa_dtype_name((SaDtype)d));
    return buf;
}

/* Byte size of one element of a scalar metadata type; 0 for string/array/unknown. */
static size_t kv_scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

static const char *kv_type_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return t < SA_ARRAY_LEN(names) ? names[t] : "unknown";
}

/* File strings end up in error messages, which must stay one printable line: copy at most
 * 64 bytes, replacing control characters and non-ASCII bytes with '?'. */
static const char *printable(const char *s, uint64_t len, char *buf, size_t cap) {
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 4 < cap && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > 64 && n + 4 < cap) { buf[n++] = '.'; buf[n++] = '.'; buf[n++] = '.'; }
    buf[n] = 0;
    return buf;
}

/* ---- bounds-checked cursor over the mapping ---- */
typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *path;
} Cur;

static int need(Cur *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return sa_err("%s: truncated file: %s at byte %zu needs %llu bytes, %zu left", c->path, what,
                      c->pos, (unsigned long long)n, c->size - c->pos);
    return 0;
}

static int rd_u32(Cur *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(Cur *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A length-prefixed string; the bytes stay in the mapping. */
static int rd_str(Cur *c, GgufStr *s, const char *what) {
    uint64_t len;
    if (rd_u64(c, &len, what)) return -1;
    if (need(c, len, what)) return -1;
    s->s = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return 0;
}

/* A string used as an identifier (key, tensor name): bounded length, no NUL bytes. */
static int rd_name(Cur *c, char **out, uint64_t max, const char *what) {
    GgufStr s;
    if (rd_str(c, &s, what)) return -1;
    if (s.len == 0) return sa_err("%s: empty %s at byte %zu", c->path, what, c->pos);
    if (s.len > max)
        return sa_err("%s: %s at byte %zu is %llu bytes long (at most %llu)", c->path, what, c->pos,
                      (unsigned long long)s.len, (unsigned long long)max);
    if (memchr(s.s, 0, (size_t)s.len)) return sa_err("%s: %s at byte %zu contains a NUL byte", c->path, what, c->pos);
    *out = sa_strndup(s.s, (size_t)s.len);
    return *out ? 0 : -1;
}

/* ---- metadata ---- */
static int read_kv(Cur *c, GgufKV *kv) {
    char kb[80];
    if (rd_name(c, &kv->key, GGUF_MAX_KEY_LEN, "metadata key")) return -1;
    const char *key = printable(kv->key, strlen(kv->key), kb, sizeof kb);
    if (rd_u32(c, &kv->type, "metadata type")) return -1;
    uint32_t t = kv->type;
    if (t == GGUF_STRING) return rd_str(c, &kv->v.str, key);
    if (t == GGUF_ARRAY) {
        if (rd_u32(c, &kv->arr_type, key) || rd_u64(c, &kv->arr_n, key)) return -1;
        uint32_t at = kv->arr_type;
        if (at == GGUF_ARRAY) return sa_err("%s: %s: nested arrays are not supported", c->path, key);
        if (at == GGUF_STRING) {
            /* Each element is at least an 8-byte length: bounds the allocation by the file size. */
            if (kv->arr_n > (c->size - c->pos) / 8)
                return sa_err("%s: %s: string array of %llu elements does not fit in the file", c->path, key,
                              (unsigned long long)kv->arr_n);
            kv->arr_data = c->p + c->pos;
            kv->arr_str = sa_calloc((size_t)kv->arr_n, sizeof(GgufStr));
            if (!kv->arr_str) return -1;
            for (uint64_t i = 0; i < kv->arr_n; i++)
                if (rd_str(c, &kv->arr_str[i], key)) return -1;
            return 0;
        }
        size_t es = kv_scalar_size(at);
        if (!es) return sa_err("%s: %s: invalid array element type %u", c->path, key, at);
        uint64_t bytes;
        if (!sa_mul_ok(kv->arr_n, es, &bytes))
            return sa_err("%s: %s: array length %llu is too large", c->path, key, (unsigned long long)kv->arr_n);
        if (need(c, bytes, key)) return -1;
        kv->arr_data = c->p + c->pos;
        if (at == GGUF_BOOL)
            for (uint64_t i = 0; i < kv->arr_n; i++)
                if (kv->arr_data[i] > 1) return sa_err("%s: %s: bool element %llu is %u (not 0 or 1)", c->path, key, (unsigned long long)i, kv->arr_data[i]);
        c->pos += (size_t)bytes;
        return 0;
    }
    size_t es = kv_scalar_size(t);
    if (!es) return sa_err("%s: %s: invalid metadata type %u", c->path, key, t);
    if (need(c, es, key)) return -1;
    const uint8_t *q = c->p + c->pos;
    c->pos += es;
    switch (t) {
    case GGUF_U8: kv->v.u = q[0]; break;
    case GGUF_I8: kv->v.i = (int8_t)q[0]; break;
    case GGUF_BOOL:
        if (q[0] > 1) return sa_err("%s: %s: bool value is %u (not 0 or 1)", c->path, key, q[0]);
        kv->v.u = q[0];
        break;
    case GGUF_U16: { uint16_t v; memcpy(&v, q, 2); kv->v.u = v; } break;
    case GGUF_I16: { int16_t v; memcpy(&v, q, 2); kv->v.i = v; } break;
    case GGUF_U32: { uint32_t v; memcpy(&v, q, 4); kv->v.u = v; } break;
    case GGUF_I32: { int32_t v; memcpy(&v, q, 4); kv->v.i = v; } break;
    case GGUF_F32: { float v; memcpy(&v, q, 4); kv->v.f = v; } break;
    case GGUF_U64: { uint64_t v; memcpy(&v, q, 8); kv->v.u = v; } break;
    case GGUF_I64: { int64_t v; memcpy(&v, q, 8); kv->v.i = v; } break;
    case GGUF_F64: { double v; memcpy(&v, q, 8); kv->v.f = v; } break;
    }
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Duplicate keys or tensor names make lookups ambiguous (llama.cpp refuses them too).
 * Sorting keeps this O(n log n) even for a hostile file with millions of entries. */
static int check_unique(const char *path, char **names, uint64_t n, const char *what) {
    if (n < 2) return 0;
    qsort(names, (size_t)n, sizeof(char *), cmp_str_ptr);
    for (uint64_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            char b[80];
            return sa_err("%s: duplicate %s \"%s\"", path, what, printable(names[i], strlen(names[i]), b, sizeof b));
        }
    return 0;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const GgufTensor *x = *(const GgufTensor *const *)a, *y = *(const GgufTensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---- tensor infos ---- */
static int read_tensor_info(Cur *c, GgufTensor *t) {
    char nb[80];
    if (rd_name(c, &t->name, GGUF_MAX_NAME_LEN, "tensor name")) return -1;
    const char *name = printable(t->name, strlen(t->name), nb, sizeof nb);
    if (rd_u32(c, &t->n_dims, name)) return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return sa_err("%s: tensor %s: %u dimensions (1 to %d supported)", c->path, name, t->n_dims, GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        if (rd_u64(c, &v, name)) return -1;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return sa_err("%s: tensor %s: dimension %u is %llu", c->path, name, d, (unsigned long long)v);
        if (!sa_mul_ok(nel, v, &nel) || nel > (uint64_t)INT64_MAX)
            return sa_err("%s: tensor %s: element count overflows", c->path, name);
        t->ne[d] = (int64_t)v;
    }
    if (rd_u32(c, &t->type, name) || rd_u64(c, &t->offset, name)) return -1;
    const char *gone = removed_type(t->type);
    if (gone)
        return sa_err("%s: tensor %s: type %u (%s) was removed from GGUF by ggml; re-download the model in a current "
                      "file type (e.g. Q4_0 or Q4_K_M)",
                      c->path, name, t->type, gone);
    const GgmlType *gt = ggml_type(t->type);
    if (!gt) return sa_err("%s: tensor %s: unknown ggml type %u", c->path, name, t->type);
    const int dt = sa_dtype_from_ggml(t->type);
    if (dt < 0 || !(sa_dtype_tr((SaDtype)dt)->flags & SA_DT_WEIGHT))
        return sa_err("%s: tensor %s: type %s is not supported by salign (it runs %s); use a file of another type, "
                      "e.g. Q4_K_M or Q8_0",
                      c->path, name, gt->name, supported_list());
    if (t->ne[0] % gt->block)
        return sa_err("%s: tensor %s: row length %lld is not a multiple of the %s block size %d", c->path, name,
                      (long long)t->ne[0], gt->name, gt->block);
    uint64_t rows = nel / (uint64_t)t->ne[0];
    uint64_t row_bytes = (uint64_t)(t->ne[0] / gt->block) * (uint64_t)gt->block_bytes;
    if (!sa_mul_ok(rows, row_bytes, &t->nbytes)) return sa_err("%s: tensor %s: byte size overflows", c->path, name);
    return 0;
}

void gguf_close(Gguf *g) {
    if (!g) return;
    if (g->kv) {
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].arr_str);
        }
        free(g->kv);
    }
    if (g->tensors) {
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
        free(g->tensors);
    }
    if (g->map) munmap((void *)g->map, g->size);
    free(g->path);
    memset(g, 0, sizeof *g);
}

int gguf_open(Gguf *g, const char *path) {
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sa_err("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sa_err("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sa_err("%s: not a regular file", path);
    }
    if (st.st_size < 24) {
        close(fd);
        return sa_err("%s: too small for a GGUF file (%lld bytes)", path, (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return sa_err("%s: cannot map: %s", path, strerror(e));
    g->map = m;
    g->size = (size_t)st.st_size;
    g->path = sa_strdup(path);
    if (!g->path) goto fail;

    Cur c = {g->map, g->size, 0, path};
    if (memcmp(g->map, GGUF_MAGIC, 4) != 0) {
        sa_err("%s: not a GGUF file (bad magic)", path);
        goto fail;
    }
    c.pos = 4;
    if (rd_u32(&c, &g->version, "version")) goto fail;
    if (g->version != 2 && g->version != 3) {
        uint32_t swapped = __builtin_bswap32(g->version);
        if (swapped == 2 || swapped == 3) sa_err("%s: big-endian GGUF files are not supported", path);
        else sa_err("%s: unsupported GGUF version %u (2 and 3 are supported)", path, g->version);
        goto fail;
    }
    uint64_t n_tensors, n_kv;
    if (rd_u64(&c, &n_tensors, "tensor count") || rd_u64(&c, &n_kv, "metadata count")) goto fail;
    /* A key/value takes at least 13 bytes (8 length + 1 key byte + 4 type) plus its value,
     * a tensor info at least 29: counts beyond that cannot be honest, and refusing them
     * before allocating keeps a hostile header from asking for terabytes. */
    if (n_kv > (g->size - c.pos) / 13) {
        sa_err("%s: metadata count %llu is impossible for a %zu-byte file", path, (unsigned long long)n_kv, g->size);
        goto fail;
    }
    if (n_tensors > (g->size - c.pos) / 29) {
        sa_err("%s: tensor count %llu is impossible for a %zu-byte file", path, (unsigned long long)n_tensors, g->size);
        goto fail;
    }
    g->kv = sa_calloc((size_t)n_kv, sizeof(GgufKV));
    if (!g->kv) goto fail;
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1; /* so gguf_close frees what this entry allocated */
        if (read_kv(&c, &g->kv[i])) goto fail;
    }
    g->n_kv = n_kv;

    {
        char **names = sa_calloc((size_t)n_kv, sizeof(char *));
        if (!names) goto fail;
        for (uint64_t i = 0; i < n_kv; i++) names[i] = g->kv[i].key;
        int r = check_unique(path, names, n_kv, "metadata key");
        free(names);
        if (r) goto fail;
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GgufKV *al = gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_U32) {
            sa_err("%s: general.alignment: expected u32, got %s", path, kv_type_name(al->type));
            goto fail;
        }
        if (al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0) {
            sa_err("%s: general.alignment %llu is not a power of two", path, (unsigned long long)al->v.u);
            goto fail;
        }
        g->alignment = (uint32_t)al->v.u;
    }

    g->tensors = sa_calloc((size_t)n_tensors, sizeof(GgufTensor));
    if (!g->tensors) goto fail;
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = i + 1;
        if (read_tensor_info(&c, &g->tensors[i])) goto fail;
    }
    g->n_tensors = n_tensors;
    {
        char **names = sa_calloc((size_t)n_tensors, sizeof(char *));
        if (!names) goto fail;
        for (uint64_t i = 0; i < n_tensors; i++) names[i] = g->tensors[i].name;
        int r = check_unique(path, names, n_tensors, "tensor name");
        free(names);
        if (r) goto fail;
    }

    /* The data section starts at the next multiple of the alignment. */
    uint64_t data = ((uint64_t)c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (n_tensors > 0 && data > g->size) {
        sa_err("%s: truncated file: the tensor data section would start at byte %llu, past the end (%zu bytes)",
               path, (unsigned long long)data, g->size);
        goto fail;
    }
    g->data_offset = (size_t)SA_MIN(data, (uint64_t)g->size);
    for (uint64_t i = 0; i < n_tensors; i++) {
        GgufTensor *t = &g->tensors[i];
        char nb[80];
        const char *name = printable(t->name, strlen(t->name), nb, sizeof nb);
        if (t->offset % g->alignment) {
            sa_err("%s: tensor %s: offset %llu is not a multiple of the alignment %u", path, name,
                   (unsigned long long)t->offset, g->alignment);
            goto fail;
        }
        uint64_t avail = g->size - g->data_offset, end;
        if (!sa_add_ok(t->offset, t->nbytes, &end) || end > avail) {
            sa_err("%s: tensor %s: data (offset %llu, %llu bytes) runs past the end of the file (truncated?)",
                   path, name, (unsigned long long)t->offset, (unsigned long long)t->nbytes);
            goto fail;
        }
        t->data = g->map + g->data_offset + t->offset;
    }
    /* No two tensors may share bytes: llama.cpp lays tensors out one after another, so overlap
     * only comes from a crafted file (one region read as two tensors of different types). Every
     * end was checked above, so offset + nbytes cannot overflow here. */
    if (n_tensors > 1) {
        const GgufTensor **order = sa_malloc((size_t)n_tensors * sizeof *order);
        if (!order) goto fail;
        for (uint64_t i = 0; i < n_tensors; i++) order[i] = &g->tensors[i];
        qsort(order, (size_t)n_tensors, sizeof *order, cmp_tensor_offset);
        for (uint64_t i = 1; i < n_tensors; i++)
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
                char na[80], nb2[80];
                sa_err("%s: tensors %s and %s overlap in the file", path,
                       printable(order[i - 1]->name, strlen(order[i - 1]->name), na, sizeof na),
                       printable(order[i]->name, strlen(order[i]->name), nb2, sizeof nb2));
                free(order);
                goto fail;
            }
        free(order);
    }
    return 0;

fail:
    gguf_close(g);
    return -1;
}

const GgufKV *gguf_find(const Gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const GgufTensor *gguf_tensor(const Gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

/* ---- typed getters ---- */
static int is_unsigned(uint32_t t) { return t == GGUF_U8 || t == GGUF_U16 || t == GGUF_U32 || t == GGUF_U64; }
static int is_signed(uint32_t t) { return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64; }

static const GgufKV *need_kv(const Gguf *g, const char *key) {
    const GgufKV *kv = gguf_find(g, key);
    if (!kv) sa_err("%s: missing metadata key %s", g->path, key);
    return kv;
}

/* Any integer as a signed 128-bit-safe pair: returns 0 and the value range-checked by the caller. */
static int get_int(const Gguf *g, const char *key, int64_t lo, uint64_t hi, int64_t *out) {
    const GgufKV *kv = need_kv(g, key);
    if (!kv) return -1;
    if (is_unsigned(kv->type)) {
        if (kv->v.u > hi) return sa_err("%s: %s = %llu is out of range", g->path, key, (unsigned long long)kv->v.u);
        *out = (int64_t)kv->v.u;
        return 0;
    }
    if (is_signed(kv->type)) {
        if (kv->v.i < lo || (kv->v.i > 0 && (uint64_t)kv->v.i > hi))
            return sa_err("%s: %s = %lld is out of range", g->path, key, (long long)kv->v.i);
        *out = kv->v.i;
        return 0;
    }
    return sa_err("%s: %s: expected an integer, got %s", g->path, key, kv_type_name(kv->type));
}

int gguf_get_u32(const Gguf *g, const char *key, uint32_t *out) {
    int64_t v;
    if (get_int(g, key, 0, UINT32_MAX, &v)) return -1;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_i32(const Gguf *g, const char *key, int32_t *out) {
    int64_t v;
    if (get_int(g, key, INT32_MIN, INT32_MAX, &v)) return -1;
    *out = (int32_t)v;
    return 0;
}

int gguf_get_f32(const Gguf *g, const char *key, float *out) {
    const GgufKV *kv = need_kv(g, key);
    if (!kv) return -1;
    if (kv->type == GGUF_F32 || kv->type == GGUF_F64) *out = (float)kv->v.f;
    else if (is_unsigned(kv->type)) *out = (float)kv->v.u;
    else if (is_signed(kv->type)) *out = (float)kv->v.i;
    else return sa_err("%s: %s: expected a number, got %s", g->path, key, kv_type_name(kv->type));
    return 0;
}

int gguf_get_bool(const Gguf *g, const char *key, int *out) {
    const GgufKV *kv = need_kv(g, key);
    if (!kv) return -1;
    if (kv->type == GGUF_BOOL || is_unsigned(kv->type)) *out = kv->v.u != 0;
    else if (is_signed(kv->type)) *out = kv->v.i != 0;
    else return sa_err("%s: %s: expected a bool, got %s", g->path, key, kv_type_name(kv->type));
    return 0;
}

int gguf_get_str(const Gguf *g, const char *key, char **out) {
    const GgufKV *kv = need_kv(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_STRING) return sa_err("%s: %s: expected a string, got %s", g->path, key, kv_type_name(kv->type));
    if (memchr(kv->v.str.s, 0, (size_t)kv->v.str.len)) return sa_err("%s: %s: string contains a NUL byte", g->path, key);
    *out = sa_strndup(kv->v.str.s, (size_t)kv->v.str.len);
    return *out ? 0 : -1;
}

/* ---- tokenizer ---- */

/* Optional token id: absent, or a negative / all-ones value (llama.cpp writes 0xFFFFFFFF for
 * "none") gives -1; otherwise it must be a valid index. */
static int tok_id(const Gguf *g, const char *key, int n_vocab, int dflt, int *out) {
    const GgufKV *kv = gguf_find(g, key);
    *out = dflt;
    if (!kv) return 0;
    int64_t v;
    if (is_unsigned(kv->type)) {
        if (kv->v.u == UINT32_MAX || kv->v.u == UINT64_MAX) { *out = -1; return 0; }
        if (kv->v.u >= (uint64_t)n_vocab) goto range;
        v = (int64_t)kv->v.u;
    } else if (is_signed(kv->type)) {
        if (kv->v.i < 0) { *out = -1; return 0; }
        if (kv->v.i >= n_vocab) goto range;
        v = kv->v.i;
    } else {
        return sa_err("%s: %s: expected an integer, got %s", g->path, key, kv_type_name(kv->type));
    }
    *out = (int)v;
    return 0;
range:
    return sa_err("%s: %s is out of range (vocabulary has %d tokens)", g->path, key, n_vocab);
}

static int opt_bool(const Gguf *g, const char *key, int dflt, int *out) {
    *out = dflt;
    return gguf_find(g, key) ? gguf_get_bool(g, key, out) : 0;
}

/* A string array as NUL-terminated copies. */
static int copy_str_array(const Gguf *g, const GgufKV *kv, char ***out) {
    char **a = sa_calloc((size_t)kv->arr_n, sizeof(char *));
    if (!a) return -1;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const GgufStr *s = &kv->arr_str[i];
        if (memchr(s->s, 0, (size_t)s->len)) {
            for (uint64_t j = 0; j < i; j++) free(a[j]);
            free(a);
            return sa_err("%s: %s: element %llu contains a NUL byte", g->path, kv->key, (unsigned long long)i);
        }
        a[i] = sa_strndup(s->s, (size_t)s->len);
        if (!a[i]) {
            for (uint64_t j = 0; j < i; j++) free(a[j]);
            free(a);
            return -1;
        }
    }
    *out = a;
    return 0;
}

int gguf_tok_spec(const Gguf *g, SaTokSpec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->bos_id = spec->eos_id = spec->unk_id = spec->pad_id = spec->eot_id = -1;
    char *model = NULL;
    if (gguf_get_str(g, "tokenizer.ggml.model", &model)) return -1;
    char mb[80];
    if (strcmp(model, "llama") == 0) {
        spec->model = SA_TOK_SPM;
    } else if (strcmp(model, "gpt2") == 0) {
        spec->model = SA_TOK_BPE;
        /* llama.cpp's converter types HF's non-special added tokens as USER_DEFINED and always cuts
         * them out of text (as HF does); control tokens still come only from template text */
        spec->split_user_defined = 1;
    } else {
        sa_err("%s: tokenizer.ggml.model \"%s\" is not supported (\"llama\" and \"gpt2\" are)", g->path,
               printable(model, strlen(model), mb, sizeof mb));
        free(model);
        return -1;
    }
    free(model);
    int spm = spec->model == SA_TOK_SPM;

    const GgufKV *tok = need_kv(g, "tokenizer.ggml.tokens");
    if (!tok) return -1;
    if (tok->type != GGUF_ARRAY || tok->arr_type != GGUF_STRING)
        return sa_err("%s: tokenizer.ggml.tokens: expected an array of strings", g->path);
    if (tok->arr_n == 0 || tok->arr_n > INT32_MAX)
        return sa_err("%s: tokenizer.ggml.tokens: %llu tokens", g->path, (unsigned long long)tok->arr_n);
    int n = (int)tok->arr_n;
    if (copy_str_array(g, tok, &spec->tokens)) goto fail;
    spec->n_vocab = n;

    const GgufKV *kv = gguf_find(g, "tokenizer.ggml.scores");
    if (kv) {
        if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_F32 || kv->arr_n != (uint64_t)n) {
            sa_err("%s: tokenizer.ggml.scores: expected %d f32 values", g->path, n);
            goto fail;
        }
        spec->scores = sa_malloc((size_t)n * sizeof(float));
        if (!spec->scores) goto fail;
        memcpy(spec->scores, kv->arr_data, (size_t)n * sizeof(float));
    }
    kv = gguf_find(g, "tokenizer.ggml.token_type");
    if (kv) {
        if (kv->type != GGUF_ARRAY || (kv->arr_type != GGUF_I32 && kv->arr_type != GGUF_U32) ||
            kv->arr_n != (uint64_t)n) {
            sa_err("%s: tokenizer.ggml.token_type: expected %d i32 values", g->path, n);
            goto fail;
        }
        spec->types = sa_malloc((size_t)n * sizeof(int32_t));
        if (!spec->types) goto fail;
        memcpy(spec->types, kv->arr_data, (size_t)n * sizeof(int32_t));
        for (int i = 0; i < n; i++)
            if (spec->types[i] < 0 || spec->types[i] > SA_TT_BYTE) {
                sa_err("%s: tokenizer.ggml.token_type: token %d has type %d (0 to 6 are valid)", g->path, i,
                       (int)spec->types[i]);
                goto fail;
            }
    }
    kv = gguf_find(g, "tokenizer.ggml.merges");
    if (kv) {
        if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING || kv->arr_n > INT32_MAX) {
            sa_err("%s: tokenizer.ggml.merges: expected an array of strings", g->path);
            goto fail;
        }
        if (copy_str_array(g, kv, &spec->merges)) goto fail;
        spec->n_merges = (int)kv->arr_n;
    }
    if (!spm && !spec->merges) {
        sa_err("%s: tokenizer.ggml.merges: missing (a gpt2 tokenizer needs its merges)", g->path);
        goto fail;
    }

    /* llama.cpp's defaults for SentencePiece vocabularies: <unk> 0, <s> 1, </s> 2. */
    if (tok_id(g, "tokenizer.ggml.bos_token_id", n, spm && n > 1 ? 1 : -1, &spec->bos_id) ||
        tok_id(g, "tokenizer.ggml.eos_token_id", n, spm && n > 2 ? 2 : -1, &spec->eos_id) ||
        tok_id(g, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1, &spec->unk_id) ||
        tok_id(g, "tokenizer.ggml.padding_token_id", n, -1, &spec->pad_id) ||
        tok_id(g, "tokenizer.ggml.eot_token_id", n, -1, &spec->eot_id))
        goto fail;
    if (spec->eot_id < 0) {
        /* Older GGUFs lack eot_token_id; chat models still end turns with one of these. */
        static const char *eot_names[] = {"<end_of_turn>", "<|eot_id|>", "<|im_end|>"};
        for (size_t k = 0; k < SA_ARRAY_LEN(eot_names) && spec->eot_id < 0; k++)
            for (int i = 0; i < n; i++)
                if (strcmp(spec->tokens[i], eot_names[k]) == 0) {
                    spec->eot_id = i;
                    break;
                }
    }

    if (gguf_find(g, "tokenizer.ggml.pre")) {
        if (gguf_get_str(g, "tokenizer.ggml.pre", &spec->pre)) goto fail;
    }
    /* llama.cpp adds BOS by default for SentencePiece and for the Llama 3 pre-tokenizer. */
    int bos_dflt = spm || (spec->pre && (strcmp(spec->pre, "llama-bpe") == 0 || strcmp(spec->pre, "llama3") == 0 ||
                                         strcmp(spec->pre, "llama-v3") == 0));
    if (opt_bool(g, "tokenizer.ggml.add_bos_token", bos_dflt, &spec->add_bos) ||
        opt_bool(g, "tokenizer.ggml.add_eos_token", 0, &spec->add_eos) ||
        opt_bool(g, "tokenizer.ggml.add_space_prefix", spm, &spec->add_space_prefix))
        goto fail;
    return 0;

fail:
    sa_tok_spec_free(spec);
    memset(spec, 0, sizeof *spec);
    return -1;
}
