/* gguf_write.c - the streaming GGUF v3 writer (see gguf_write.h). */
#include "gguf_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/common.h"
#include "../../src/dtype.h"
#include "../../src/gguf.h"

#define ALIGN 32

typedef struct {
    char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    uint64_t nbytes, offset;
} WTensor;

struct GgufWriter {
    SaBuf kv; /* serialized key/values */
    uint64_t n_kv;
    WTensor *t;
    int n_t, cap_t;
};

GgufWriter *gguf_writer_new(void) { return sa_calloc(1, sizeof(GgufWriter)); }

void gguf_writer_free(GgufWriter *w) {
    if (!w) return;
    sa_buf_free(&w->kv);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

static int put(SaBuf *b, const void *p, size_t n) { return sa_buf_append(b, p, n); }
static int put_u32(SaBuf *b, uint32_t v) { return put(b, &v, 4); } /* x86-64/aarch64: little-endian */
static int put_u64(SaBuf *b, uint64_t v) { return put(b, &v, 8); }
static int put_str(SaBuf *b, const char *s) {
    uint64_t n = strlen(s);
    return put_u64(b, n) || put(b, s, (size_t)n);
}

static int key(GgufWriter *w, const char *k, uint32_t type) {
    w->n_kv++;
    return put_str(&w->kv, k) || put_u32(&w->kv, type);
}

int gguf_w_u32(GgufWriter *w, const char *k, uint32_t v) { return key(w, k, GGUF_U32) || put_u32(&w->kv, v) ? -1 : 0; }
int gguf_w_i32(GgufWriter *w, const char *k, int32_t v) { return key(w, k, GGUF_I32) || put(&w->kv, &v, 4) ? -1 : 0; }
int gguf_w_f32(GgufWriter *w, const char *k, float v) { return key(w, k, GGUF_F32) || put(&w->kv, &v, 4) ? -1 : 0; }
int gguf_w_bool(GgufWriter *w, const char *k, int v) {
    uint8_t b = v != 0;
    return key(w, k, GGUF_BOOL) || put(&w->kv, &b, 1) ? -1 : 0;
}
int gguf_w_str(GgufWriter *w, const char *k, const char *v) { return key(w, k, GGUF_STRING) || put_str(&w->kv, v) ? -1 : 0; }

int gguf_w_arr_str(GgufWriter *w, const char *k, char *const *v, uint64_t n) {
    if (key(w, k, GGUF_ARRAY) || put_u32(&w->kv, GGUF_STRING) || put_u64(&w->kv, n)) return -1;
    for (uint64_t i = 0; i < n; i++)
        if (put_str(&w->kv, v[i])) return -1;
    return 0;
}

int gguf_w_arr_f32(GgufWriter *w, const char *k, const float *v, uint64_t n) {
    return key(w, k, GGUF_ARRAY) || put_u32(&w->kv, GGUF_F32) || put_u64(&w->kv, n) || put(&w->kv, v, (size_t)n * 4) ? -1 : 0;
}

int gguf_w_arr_i32(GgufWriter *w, const char *k, const int32_t *v, uint64_t n) {
    return key(w, k, GGUF_ARRAY) || put_u32(&w->kv, GGUF_I32) || put_u64(&w->kv, n) || put(&w->kv, v, (size_t)n * 4) ? -1 : 0;
}

static uint64_t type_bytes(uint32_t type, int64_t ne0, uint64_t rows) {
    const int dt = sa_dtype_from_ggml(type);
    return dt < 0 ? 0 : (uint64_t)sa_row_bytes((SaDtype)dt, ne0) * rows;
}

int gguf_w_tensor(GgufWriter *w, const char *name, uint32_t type, int n_dims, const int64_t *ne) {
    if (n_dims < 1 || n_dims > 4) return sa_err("gguf writer: tensor %s: %d dimensions", name, n_dims);
    uint64_t rows = 1;
    for (int d = 1; d < n_dims; d++) rows *= (uint64_t)ne[d];
    uint64_t nb = type_bytes(type, ne[0], rows);
    if (!nb) return sa_err("gguf writer: tensor %s: type %u cannot hold rows of %lld", name, type, (long long)ne[0]);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        WTensor *p = sa_realloc(w->t, (size_t)cap * sizeof *p);
        if (!p) return -1;
        w->t = p;
        w->cap_t = cap;
    }
    WTensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = sa_strdup(name))) return -1;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    t->nbytes = nb;
    uint64_t off = 0;
    if (w->n_t) {
        const WTensor *p = &w->t[w->n_t - 1];
        off = (p->offset + p->nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    t->offset = off;
    return w->n_t++;
}

static int pad_to(FILE *f, uint64_t pos) {
    static const char zeros[ALIGN];
    long at = ftell(f);
    if (at < 0 || (uint64_t)at > pos) return -1;
    return fwrite(zeros, 1, (size_t)(pos - (uint64_t)at), f) == (size_t)(pos - (uint64_t)at) ? 0 : -1;
}

int gguf_writer_write(GgufWriter *w, const char *path, GgufWriteFn fn, void *ctx) {
    SaBuf h = {0};
    int rc = -1;
    char *tmp = NULL;
    FILE *f = NULL;
    if (put(&h, "GGUF", 4) || put_u32(&h, 3) || put_u64(&h, (uint64_t)w->n_t) || put_u64(&h, w->n_kv) ||
        (w->kv.len && put(&h, w->kv.data, w->kv.len)))
        goto done;
    for (int i = 0; i < w->n_t; i++) {
        const WTensor *t = &w->t[i];
        if (put_str(&h, t->name) || put_u32(&h, (uint32_t)t->n_dims)) goto done;
        for (int d = 0; d < t->n_dims; d++)
            if (put_u64(&h, (uint64_t)t->ne[d])) goto done;
        if (put_u32(&h, t->type) || put_u64(&h, t->offset)) goto done;
    }
    size_t n = strlen(path) + 32;
    if (!(tmp = sa_malloc(n))) goto done;
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    if (!(f = fopen(tmp, "wb"))) {
        sa_err("%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    const uint64_t data0 = ((uint64_t)h.len + ALIGN - 1) / ALIGN * ALIGN;
    if (fwrite(h.data, 1, h.len, f) != h.len || pad_to(f, data0)) goto io;
    for (int i = 0; i < w->n_t; i++) {
        const WTensor *t = &w->t[i];
        if (pad_to(f, data0 + t->offset)) goto io;
        if (fn(ctx, i, f)) {
            sa_err_prefix("%s: tensor %s: ", path, t->name);
            goto fail_file;
        }
        long at = ftell(f);
        if (at < 0 || (uint64_t)at != data0 + t->offset + t->nbytes) {
            sa_err("%s: tensor %s: the writer produced %lld bytes, expected %llu", path, t->name,
                   (long long)(at - (long)(data0 + t->offset)), (unsigned long long)t->nbytes);
            goto fail_file;
        }
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) goto io;
    if (fclose(f) != 0) {
        f = NULL;
        goto io;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        sa_err("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
    goto done;
io:
    sa_err("%s: write failed: %s", path, strerror(errno));
fail_file:
    if (f) fclose(f);
    f = NULL;
    unlink(tmp);
done:
    if (f) fclose(f);
    free(tmp);
    sa_buf_free(&h);
    return rc;
}
