/* imatrix.c - reading llama.cpp's importance-matrix files (facts from llama.cpp's imatrix loader
 * and llama-quantize's load_imatrix: the layouts, and how the values are normalised).
 *
 * GGUF form: for every weight W two F32 tensors, "W.in_sum2" (sums of squared activations per
 * column, ne0 per expert) and "W.counts" (tokens seen, one per expert), and the keys
 * imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size (llama-quantize refuses a GGUF
 * imatrix without them, so do we). value = in_sum2 / round(count), or 1 where the count is 0.
 * .dat form: int32 entry count, then per entry int32 name length, the name, int32 ncall,
 * int32 nval, nval floats (already means times ncall); an optional trailer (chunk count,
 * dataset name) follows. value = stored / ncall when ncall > 0. */
#include "imatrix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gguf.h"

void sa_imatrix_free(SaImatrix *im) {
    if (!im) return;
    for (int i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].values);
    }
    free(im->e);
    memset(im, 0, sizeof *im);
}

const SaImatrixEntry *sa_imatrix_find(const SaImatrix *im, const char *name) {
    for (int i = 0; im && i < im->n; i++)
        if (!strcmp(im->e[i].name, name)) return &im->e[i];
    return NULL;
}

static SaImatrixEntry *add(SaImatrix *im, const char *name, size_t name_len, int64_t n) {
    SaImatrixEntry *p = sa_realloc(im->e, (size_t)(im->n + 1) * sizeof *p);
    if (!p) return NULL;
    im->e = p;
    SaImatrixEntry *e = &p[im->n];
    e->name = sa_malloc(name_len + 1);
    e->values = sa_malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!e->name || !e->values) {
        free(e->name);
        free(e->values);
        return NULL;
    }
    memcpy(e->name, name, name_len);
    e->name[name_len] = 0;
    e->n = n;
    im->n++;
    return e;
}

static int rd_i32(const uint8_t *b, size_t len, size_t *off, int32_t *v) {
    if (len - *off < 4) return -1;
    memcpy(v, b + *off, 4);
    *off += 4;
    return 0;
}

static int load_dat(const char *path, const uint8_t *b, size_t len, SaImatrix *im) {
    size_t off = 0;
    int32_t n_entries;
    if (rd_i32(b, len, &off, &n_entries) || n_entries < 1)
        return sa_err("%s: not an importance matrix (neither GGUF nor llama.cpp's .dat form with entries)", path);
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t name_len, ncall, nval;
        if (rd_i32(b, len, &off, &name_len) || name_len < 1 || name_len > 4096 || len - off < (size_t)name_len)
            return sa_err("%s: entry %d: bad name", path, i + 1);
        const char *name = (const char *)b + off;
        off += (size_t)name_len;
        if (rd_i32(b, len, &off, &ncall) || rd_i32(b, len, &off, &nval) || nval < 1)
            return sa_err("%s: entry %d: bad value count", path, i + 1);
        if ((len - off) / 4 < (size_t)nval) return sa_err("%s: entry %d: truncated", path, i + 1);
        SaImatrixEntry *e = add(im, name, (size_t)name_len, nval);
        if (!e) return -1;
        memcpy(e->values, b + off, (size_t)nval * 4);
        off += (size_t)nval * 4;
        if (ncall > 0)
            for (int32_t j = 0; j < nval; j++) e->values[j] = e->values[j] / (float)(int64_t)ncall;
    }
    im->legacy = 1;
    return 0;
}

static int load_gguf(const char *path, SaImatrix *im) {
    Gguf g;
    if (gguf_open(&g, path)) return -1;
    int rc = -1;
    if (!gguf_find(&g, "imatrix.datasets") || !gguf_find(&g, "imatrix.chunk_count") || !gguf_find(&g, "imatrix.chunk_size")) {
        sa_err("%s: a GGUF imatrix without its metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)", path);
        goto done;
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *s = &g.tensors[i];
        const size_t nl = strlen(s->name);
        if (nl <= 8 || strcmp(s->name + nl - 8, ".in_sum2")) continue;
        char cname[256];
        snprintf(cname, sizeof cname, "%.*s.counts", (int)(nl - 8), s->name);
        const GgufTensor *c = gguf_tensor(&g, cname);
        if (!c) {
            sa_err("%s: %s has no %s", path, s->name, cname);
            goto done;
        }
        if (s->type != GGML_F32 || c->type != GGML_F32) {
            sa_err("%s: %s and %s must be F32", path, s->name, cname);
            goto done;
        }
        const int64_t nval = (int64_t)(s->nbytes / 4), ncounts = (int64_t)(c->nbytes / 4);
        if (ncounts < 1 || nval % ncounts) {
            sa_err("%s: %s: %lld values do not split into %lld counts", path, s->name, (long long)nval, (long long)ncounts);
            goto done;
        }
        SaImatrixEntry *e = add(im, s->name, nl - 8, nval);
        if (!e) goto done;
        const float *sums = s->data, *counts = c->data;
        const int64_t ne0 = nval / ncounts;
        for (int64_t k = 0; k < ncounts; k++) {
            const float cnt = (float)llroundf(counts[k]);
            for (int64_t j = 0; j < ne0; j++) e->values[k * ne0 + j] = cnt > 0.0f ? sums[k * ne0 + j] / cnt : 1.0f;
        }
    }
    if (!im->n) {
        sa_err("%s: no importance data (no *.in_sum2 tensors)", path);
        goto done;
    }
    rc = 0;
done:
    gguf_close(&g);
    return rc;
}

int sa_imatrix_load(const char *path, SaImatrix *im) {
    memset(im, 0, sizeof *im);
    size_t len = 0;
    uint8_t *b = (uint8_t *)sa_read_file(path, &len);
    if (!b) return sa_err_prefix("%s: ", path);
    const int is_gguf = len >= 4 && !memcmp(b, "GGUF", 4);
    int rc = is_gguf ? load_gguf(path, im) : load_dat(path, b, len, im);
    free(b);
    for (int i = 0; i < im->n && !rc; i++)
        for (int64_t j = 0; j < im->e[i].n; j++)
            if (!isfinite(im->e[i].values[j])) {
                rc = sa_err("%s: %s: value %lld is %g (importance values must be finite)", path,
                            im->e[i].name, (long long)j, (double)im->e[i].values[j]);
                break;
            }
    if (rc) sa_imatrix_free(im);
    return rc;
}
