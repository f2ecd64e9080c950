/* safetensors.c - the validating .safetensors reader (see safetensors.h for the layout). */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common.h"

/* The reference implementation refuses headers over 100 MB; so do we (a real header of a
 * 400-billion-parameter checkpoint is a few hundred kilobytes). */
#define ST_MAX_HEADER 100000000ull

/* Every dtype the format defines, with its element size: tensors of dtypes salign does not
 * compute with are still measured, so the byte ranges of the whole file can be checked. */
static const struct {
    const char *name;
    int bytes;
    int sa; /* SaDtype or -1 */
} st_dtypes[] = {
    {"F32", 4, SA_F32}, {"F16", 2, SA_F16}, {"BF16", 2, SA_BF16}, {"F64", 8, -1},    {"I64", 8, -1},
    {"U64", 8, -1},     {"I32", 4, -1},     {"U32", 4, -1},       {"I16", 2, -1},    {"U16", 2, -1},
    {"I8", 1, -1},      {"U8", 1, -1},      {"BOOL", 1, -1},      {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},
    {"F8_E8M0", 1, -1},
};

/* A name or value from the file, made printable for a one-line message. */
static const char *shown(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) buf[n++] = ((unsigned char)*s >= 0x20 && *s != 0x7f) ? *s : '?';
    if (*s) {
        buf[n++] = '.';
        buf[n++] = '.';
        buf[n++] = '.';
    }
    buf[n] = 0;
    return buf;
}

/* A JSON number that is an integer in [0, 2^53] (exactly representable in the double cJSON keeps). */
static int json_u53(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int index;
} Range;

static int cmp_range(const void *a, const void *b) {
    const Range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

static int parse_entry(SafeTensors *st, const cJSON *e, StTensor *t, Range *r, uint64_t buf_size) {
    char nb[80], vb[40];
    const char *nm = shown(e->string, nb, sizeof nb);
    if (!e->string[0]) return sa_err("%s: header: a tensor with an empty name", st->path);
    if (!cJSON_IsObject(e)) return sa_err("%s: tensor %s: expected an object", st->path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return sa_err("%s: tensor %s: \"dtype\" missing or not a string", st->path, nm);
    if (!cJSON_IsArray(sh)) return sa_err("%s: tensor %s: \"shape\" missing or not an array", st->path, nm);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return sa_err("%s: tensor %s: \"data_offsets\" must be an array [begin, end]", st->path, nm);
    int elt = 0;
    t->dtype = -1;
    for (size_t i = 0; i < SA_ARRAY_LEN(st_dtypes); i++)
        if (strcmp(dt->valuestring, st_dtypes[i].name) == 0) {
            elt = st_dtypes[i].bytes;
            t->dtype = st_dtypes[i].sa;
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", st_dtypes[i].name);
        }
    if (!elt) return sa_err("%s: tensor %s: unknown dtype \"%s\"", st->path, nm, shown(dt->valuestring, vb, sizeof vb));
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) return sa_err("%s: tensor %s: %d dimensions (at most %d supported)", st->path, nm, nd, ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t nel = 1;
    for (int d = 0; d < nd; d++) {
        uint64_t v;
        if (json_u53(cJSON_GetArrayItem(sh, d), &v) || v > (1ull << 40))
            return sa_err("%s: tensor %s: shape[%d] is not a dimension (an integer from 0 to 2^40)", st->path, nm, d);
        t->shape[d] = (int64_t)v;
        if (!sa_mul_ok(nel, v, &nel)) return sa_err("%s: tensor %s: element count overflows", st->path, nm);
    }
    uint64_t begin, end, need;
    if (json_u53(cJSON_GetArrayItem(of, 0), &begin) || json_u53(cJSON_GetArrayItem(of, 1), &end))
        return sa_err("%s: tensor %s: data_offsets must be non-negative integers", st->path, nm);
    if (end < begin) return sa_err("%s: tensor %s: data_offsets end %llu is before begin %llu", st->path, nm,
                                   (unsigned long long)end, (unsigned long long)begin);
    if (!sa_mul_ok(nel, (uint64_t)elt, &need) || end - begin != need)
        return sa_err("%s: tensor %s: %llu bytes, but shape x %s needs %llu", st->path, nm,
                      (unsigned long long)(end - begin), t->dtype_name, (unsigned long long)need);
    if (end > buf_size)
        return sa_err("%s: tensor %s: bytes %llu..%llu lie past the end of the file (data section is %llu bytes)",
                      st->path, nm, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)buf_size);
    if (!(t->name = sa_strdup(e->string))) return -1;
    t->nbytes = need;
    r->begin = begin;
    r->end = end;
    return 0;
}

int st_parse(SafeTensors *st, const char *path, const uint8_t *data, size_t size) {
    memset(st, 0, sizeof *st);
    if (!(st->path = sa_strdup(path))) return -1;
    st->map = data;
    st->size = size;
    cJSON *root = NULL;
    Range *ranges = NULL;
    if (size < 8) {
        sa_err("%s: %zu bytes: too short for a safetensors file", path, size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | data[i];
    if (n < 2 || n > ST_MAX_HEADER || n > size - 8) {
        sa_err("%s: header length %llu does not fit the file (%zu bytes)", path, (unsigned long long)n, size);
        goto fail;
    }
    const char *hdr = (const char *)data + 8;
    if (hdr[0] != '{') {
        sa_err("%s: header does not start with '{': not a safetensors file", path);
        goto fail;
    }
    if (sa_utf8_valid_prefix(hdr, (size_t)n) != (size_t)n || memchr(hdr, 0, (size_t)n)) {
        sa_err("%s: header is not valid UTF-8 text", path);
        goto fail;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)n, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        sa_err("%s: header is not a JSON object (error near byte %lld)", path,
               (long long)(8 + ((end ? end : cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : hdr) - hdr)));
        goto fail;
    }
    /* writers pad the header with spaces so the data is aligned; nothing else may follow */
    for (const char *p = end; p < hdr + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            sa_err("%s: header: unexpected bytes after the JSON object", path);
            goto fail;
        }
    const uint64_t buf_size = size - 8 - n;
    int count = 0;
    for (const cJSON *e = root->child; e; e = e->next) count += strcmp(e->string, "__metadata__") != 0;
    st->tensors = sa_calloc((size_t)count + 1, sizeof *st->tensors);
    ranges = sa_calloc((size_t)count + 1, sizeof *ranges);
    if (!st->tensors || !ranges) goto fail;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            /* free-form string -> string map; only its type is checked */
            if (!cJSON_IsObject(e)) {
                sa_err("%s: header: __metadata__ must be an object", path);
                goto fail;
            }
            continue;
        }
        StTensor *t = &st->tensors[st->n_tensors];
        Range *r = &ranges[st->n_tensors];
        r->index = st->n_tensors;
        st->n_tensors++; /* counted before parsing so st_close frees a half-filled entry */
        if (parse_entry(st, e, t, r, buf_size)) goto fail;
        t->data = data + 8 + n + r->begin;
    }
    /* The ranges must tile the data section exactly: no overlap (two tensors sharing bytes), no
     * hole (bytes no tensor owns, e.g. a second file hidden inside), nothing after the last one. */
    qsort(ranges, (size_t)st->n_tensors, sizeof *ranges, cmp_range);
    uint64_t expect = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const Range *r = &ranges[i];
        char nb[80];
        const char *nm = shown(st->tensors[r->index].name, nb, sizeof nb);
        if (r->begin < expect) {
            sa_err("%s: tensor %s: bytes %llu..%llu overlap another tensor", path, nm, (unsigned long long)r->begin,
                   (unsigned long long)r->end);
            goto fail;
        }
        if (r->begin > expect) {
            sa_err("%s: tensor %s: starts at byte %llu, leaving bytes %llu..%llu of the data section unused", path, nm,
                   (unsigned long long)r->begin, (unsigned long long)expect, (unsigned long long)r->begin);
            goto fail;
        }
        expect = r->end;
    }
    if (expect != buf_size) {
        sa_err("%s: the tensors cover %llu bytes of a %llu-byte data section", path, (unsigned long long)expect,
               (unsigned long long)buf_size);
        goto fail;
    }
    /* duplicate names: JSON allows repeated members; the format does not */
    StTensor *sorted = sa_malloc(((size_t)st->n_tensors + 1) * sizeof *sorted);
    if (!sorted) goto fail;
    memcpy(sorted, st->tensors, (size_t)st->n_tensors * sizeof *sorted);
    qsort(sorted, (size_t)st->n_tensors, sizeof *sorted, cmp_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
            char nb[80];
            sa_err("%s: tensor %s appears twice in the header", path, shown(sorted[i].name, nb, sizeof nb));
            free(sorted);
            goto fail;
        }
    free(sorted);
    cJSON_Delete(root);
    free(ranges);
    return 0;
fail:
    cJSON_Delete(root);
    free(ranges);
    st->map = NULL; /* borrowed: the caller releases it */
    st_close(st);
    return -1;
}

int st_open(SafeTensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sa_err("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sa_err("%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return sa_err("%s: cannot map: %s", path, strerror(errno));
        }
    }
    close(fd);
    static const uint8_t empty[1];
    if (st_parse(st, path, map ? map : empty, size)) {
        if (map) munmap(map, size);
        return -1;
    }
    st->mapped = map != NULL;
    return 0;
}

void st_close(SafeTensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    if (st->mapped && st->map) munmap((void *)st->map, st->size);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}
