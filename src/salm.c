/* salm.c - read and write .salm files (spec: weights/FORMAT.md).
 *
 * Reading trusts nothing: every count is bounded by the bytes that remain, every tensor's byte
 * range is computed with overflow checks and must lie inside the data section without overlap.
 * Writing streams tensor data through a callback and renames a fsync'ed temp file at the end. */
#include "salm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "outfile.h"

#define SALM_HEADER_BYTES 40
#define SALM_MAX_KEY 256
#define SALM_MAX_NAME 256

/* ------------------------------------------------------------------------------------------ */
/* reading                                                                                      */

typedef struct {
    const uint8_t *p, *end;
    const char *what; /* current section, for messages */
} Cursor;

static int need(Cursor *c, uint64_t n) {
    if ((uint64_t)(c->end - c->p) < n) return sa_err("truncated %s", c->what);
    return 0;
}
static int rd_u32(Cursor *c, uint32_t *v) { if (need(c, 4)) return -1; memcpy(v, c->p, 4); c->p += 4; return 0; }
static int rd_u64(Cursor *c, uint64_t *v) { if (need(c, 8)) return -1; memcpy(v, c->p, 8); c->p += 8; return 0; }

/* A string is u32 length + bytes (no NUL in the file; never containing NUL). */
static int rd_str(Cursor *c, char **out, uint64_t *len_out, uint32_t max) {
    uint32_t len;
    if (rd_u32(c, &len)) return -1;
    if (len > max) return sa_err("%s: string length %u exceeds limit %u", c->what, len, max);
    if (need(c, len)) return -1;
    if (memchr(c->p, 0, len)) return sa_err("%s: string contains a NUL byte", c->what);
    *out = sa_strndup((const char *)c->p, len);
    if (!*out) return -1;
    if (len_out) *len_out = len;
    c->p += len;
    return 0;
}

static void kv_free(SalmKV *kv) {
    free(kv->key);
    free(kv->str);
    if (kv->strs) {
        for (uint64_t i = 0; i < kv->n; i++) free(kv->strs[i]);
        free(kv->strs);
    }
    free(kv->arr);
}

static int read_kv(Cursor *c, SalmKV *kv) {
    uint32_t type;
    if (rd_str(c, &kv->key, NULL, SALM_MAX_KEY)) return -1;
    if (rd_u32(c, &type)) return -1;
    if (type >= SALM_TYPE_COUNT) return sa_err("metadata '%s': unknown value type %u", kv->key, type);
    kv->type = (SalmType)type;
    switch (kv->type) {
    case SALM_U32: return rd_u32(c, &kv->v.u32);
    case SALM_I32: return rd_u32(c, (uint32_t *)&kv->v.i32);
    case SALM_F32: return rd_u32(c, (uint32_t *)&kv->v.f32);
    case SALM_STR: return rd_str(c, &kv->str, &kv->n, UINT32_MAX);
    case SALM_ARR_STR: {
        if (rd_u64(c, &kv->n)) return -1;
        /* each element needs at least its 4-byte length: bound n by what remains */
        if (kv->n > (uint64_t)(c->end - c->p) / 4)
            return sa_err("metadata '%s': array length %llu exceeds the file", kv->key, (unsigned long long)kv->n);
        kv->strs = sa_calloc(kv->n, sizeof(char *));
        if (!kv->strs) return -1;
        for (uint64_t i = 0; i < kv->n; i++)
            if (rd_str(c, &kv->strs[i], NULL, 1u << 20)) return sa_err_prefix("metadata '%s': ", kv->key);
        return 0;
    }
    case SALM_ARR_F32:
    case SALM_ARR_I32: {
        if (rd_u64(c, &kv->n)) return -1;
        if (kv->n > (uint64_t)(c->end - c->p) / 4)
            return sa_err("metadata '%s': array length %llu exceeds the file", kv->key, (unsigned long long)kv->n);
        kv->arr = sa_malloc(kv->n * 4);
        if (!kv->arr) return -1;
        memcpy(kv->arr, c->p, kv->n * 4);
        c->p += kv->n * 4;
        return 0;
    }
    default: return sa_err("metadata '%s': bad type", kv->key);
    }
}

static int read_tensor(Cursor *c, SalmTensor *t) {
    uint32_t dtype, n_dims;
    if (rd_str(c, &t->name, NULL, SALM_MAX_NAME)) return -1;
    /* an empty name is what a table shorter than its header's count reads from the zero padding */
    if (!t->name[0]) return sa_err("tensor table: a tensor has an empty name (table shorter than its count?)");
    if (rd_u32(c, &dtype) || rd_u32(c, &n_dims)) return -1;
    if (!sa_dtype_valid(dtype)) return sa_err("tensor '%s': unknown dtype %u", t->name, dtype);
    if (n_dims < 1 || n_dims > SALM_MAX_DIMS) return sa_err("tensor '%s': %u dimensions (1..4 allowed)", t->name, n_dims);
    t->dtype = (SaDtype)dtype;
    t->n_dims = (int)n_dims;
    uint64_t count = 1;
    for (int i = 0; i < SALM_MAX_DIMS; i++) t->ne[i] = 1;
    for (uint32_t i = 0; i < n_dims; i++) {
        uint64_t ne;
        if (rd_u64(c, &ne)) return -1;
        if (ne == 0 || ne > (1ull << 40)) return sa_err("tensor '%s': dimension %u is %llu", t->name, i, (unsigned long long)ne);
        if (!sa_mul_ok(count, ne, &count)) return sa_err("tensor '%s': element count overflows", t->name);
        t->ne[i] = (int64_t)ne;
    }
    if (rd_u64(c, &t->offset) || rd_u64(c, &t->nbytes) || rd_u32(c, &t->crc32)) return -1;
    const SaDtypeTraits *tr = &sa_dtype_traits[t->dtype];
    if (t->ne[0] % tr->block)
        return sa_err("tensor '%s': row length %lld is not a multiple of %s's block of %d", t->name,
                      (long long)t->ne[0], tr->name, tr->block);
    uint64_t expect;
    if (!sa_mul_ok(count / tr->block, tr->block_bytes, &expect)) return sa_err("tensor '%s': size overflows", t->name);
    if (expect != t->nbytes)
        return sa_err("tensor '%s': size %llu does not match its shape and dtype (%llu)", t->name,
                      (unsigned long long)t->nbytes, (unsigned long long)expect);
    if (t->offset % SALM_ALIGN) return sa_err("tensor '%s': offset %llu is not 64-byte aligned", t->name, (unsigned long long)t->offset);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b) {
    const SalmTensor *x = *(const SalmTensor *const *)a, *y = *(const SalmTensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse(Salm *s) {
    Cursor c = {s->base, s->base + s->size, "header"};
    if (s->size < SALM_HEADER_BYTES) return sa_err("file too small (%zu bytes) to be a .salm", s->size);
    if (memcmp(s->base, SALM_MAGIC, 4) != 0) return sa_err("not a .salm file (bad magic)");
    c.p += 4;
    uint32_t version = 0, n_kv = 0, n_tensors = 0, head_crc = 0, reserved = 0;
    uint64_t meta_bytes = 0; /* the size check above guarantees these reads succeed */
    rd_u32(&c, &version);
    if (version != SALM_VERSION) return sa_err("unsupported .salm version %u (this build reads %d)", version, SALM_VERSION);
    rd_u32(&c, &n_kv);
    rd_u32(&c, &n_tensors);
    rd_u64(&c, &meta_bytes);
    rd_u64(&c, &s->data_offset);
    rd_u32(&c, &head_crc);
    rd_u32(&c, &reserved);
    if (reserved != 0) return sa_err("reserved header field is not zero");
    if (s->data_offset % SALM_ALIGN || s->data_offset > s->size || s->data_offset < SALM_HEADER_BYTES)
        return sa_err("bad data offset %llu", (unsigned long long)s->data_offset);
    if (meta_bytes > s->data_offset - SALM_HEADER_BYTES) return sa_err("metadata size %llu exceeds the header area", (unsigned long long)meta_bytes);
    /* the metadata and tensor table must lie before the data section */
    c.end = s->base + s->data_offset;
    if (n_kv > (s->data_offset) / 8) return sa_err("metadata count %u exceeds the file", n_kv);
    if (n_tensors > (s->data_offset) / 32) return sa_err("tensor count %u exceeds the file", n_tensors);
    s->kv = sa_calloc(n_kv, sizeof(SalmKV));
    s->tensors = sa_calloc(n_tensors, sizeof(SalmTensor));
    if (!s->kv || !s->tensors) return -1;
    c.what = "metadata";
    for (uint32_t i = 0; i < n_kv; i++) {
        s->n_kv = (int)i + 1;
        if (read_kv(&c, &s->kv[i])) return -1;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(s->kv[j].key, s->kv[i].key) == 0) return sa_err("duplicate metadata key '%s'", s->kv[i].key);
    }
    if ((uint64_t)(c.p - s->base) != SALM_HEADER_BYTES + meta_bytes) return sa_err("metadata size does not match the header");
    /* the header crc covers metadata and tensor table: checked after parsing both */
    c.what = "tensor table";
    uint64_t data_size = s->size - s->data_offset;
    for (uint32_t i = 0; i < n_tensors; i++) {
        s->n_tensors = (int)i + 1;
        SalmTensor *t = &s->tensors[i];
        if (read_tensor(&c, t)) return -1;
        uint64_t end;
        if (!sa_add_ok(t->offset, t->nbytes, &end) || end > data_size)
            return sa_err("tensor '%s': data (offset %llu, %llu bytes) lies past the end of the file", t->name,
                          (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        t->data = s->base + s->data_offset + t->offset;
    }
    uint64_t table_end = (uint64_t)(c.p - s->base);
    s->header_end = table_end;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), s->base + SALM_HEADER_BYTES, (uInt)(table_end - SALM_HEADER_BYTES));
    if (crc != head_crc) return sa_err("header crc32 mismatch (file says %08x, contents give %08x)", head_crc, crc);
    /* names unique; byte ranges must not overlap */
    SalmTensor **order = sa_malloc((size_t)n_tensors * sizeof *order + 1);
    if (!order) return -1;
    for (uint32_t i = 0; i < n_tensors; i++) order[i] = &s->tensors[i];
    qsort(order, n_tensors, sizeof *order, cmp_by_offset);
    for (uint32_t i = 1; i < n_tensors; i++) {
        if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
            int r = sa_err("tensors '%s' and '%s' overlap", order[i - 1]->name, order[i]->name);
            free(order);
            return r;
        }
    }
    free(order);
    for (uint32_t i = 0; i < n_tensors; i++)
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(s->tensors[i].name, s->tensors[j].name) == 0) return sa_err("duplicate tensor name '%s'", s->tensors[i].name);
    return 0;
}

/* On failure everything is released (the caller has nothing to close) and the message names
 * the file. */
static int open_fail(Salm *s) {
    salm_close(s);
    return -1;
}

/* Anonymous memory for n bytes, 2 MiB-aligned and advised for transparent huge pages (THP is
 * often in "madvise" mode, so without the advice the kernel never uses them for us). */
static void *huge_alloc(size_t n, size_t *len) {
    const size_t huge = (size_t)2 << 20;
    const size_t want = (n + huge - 1) / huge * huge;
    uint8_t *m = mmap(NULL, want + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    /* trim to a 2 MiB-aligned window so every huge page is fully inside it */
    uint8_t *a = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
    if (a > m) munmap(m, (size_t)(a - m));
    if (a + want < m + want + huge) munmap(a + want, (size_t)(m + want + huge - (a + want)));
#ifdef MADV_HUGEPAGE
    madvise(a, want, MADV_HUGEPAGE); /* advice only: without THP the memory simply stays 4 KiB */
#endif
    *len = want;
    return a;
}

/* Reading the file into fresh anonymous memory costs a page fault and a copy per page; with a
 * warm page cache that, not the disk, is the load time, and it splits over cores. So the file is
 * read in 32 MiB chunks by up to 4 threads (SALIGN_LOAD_THREADS overrides; 1 = one plain read loop). */
typedef struct {
    int fd;
    uint8_t *base;
    size_t size, chunk;
    atomic_size_t next;
    atomic_int failed;
} ReadJob;

static void *read_chunks(void *arg) {
    ReadJob *j = arg;
    for (;;) {
        const size_t off = atomic_fetch_add(&j->next, j->chunk);
        if (off >= j->size || atomic_load(&j->failed)) break;
        const size_t end = off + j->chunk < j->size ? off + j->chunk : j->size;
        for (size_t at = off; at < end;) {
            const ssize_t r = pread(j->fd, j->base + at, end - at, (off_t)at);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                atomic_store(&j->failed, r < 0 ? errno : -1); /* -1: the file ended early */
                return NULL;
            }
            at += (size_t)r;
        }
    }
    return NULL;
}

/* 0, an errno value, or -1 when the file is shorter than its size. */
static int read_all(int fd, uint8_t *base, size_t size) {
    ReadJob j = {.fd = fd, .base = base, .size = size, .chunk = (size_t)32 << 20};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    long nth = sysconf(_SC_NPROCESSORS_ONLN);
    const char *e = getenv("SALIGN_LOAD_THREADS");
    if (e && *e) nth = strtol(e, NULL, 10);
    nth = nth < 1 ? 1 : nth > 4 ? 4 : nth;
    if ((size_t)nth > (size + j.chunk - 1) / j.chunk) nth = (long)((size + j.chunk - 1) / j.chunk);
    pthread_t tid[4];
    int started = 0;
    for (long t = 1; t < nth; t++)
        if (pthread_create(&tid[started], NULL, read_chunks, &j) == 0) started++;
    read_chunks(&j);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    return atomic_load(&j.failed);
}

int salm_open(Salm *s, const char *path, SaLoadMode mode) {
    memset(s, 0, sizeof *s);
    s->path = sa_strdup(path);
    if (!s->path) return -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        sa_err("%s: cannot open: %s", path, strerror(errno));
        return open_fail(s);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        sa_err("%s: not a regular file", path);
        return open_fail(s);
    }
    s->size = (size_t)st.st_size;
    if (s->size == 0) {
        close(fd);
        sa_err("%s: empty file", path);
        return open_fail(s);
    }
    if (mode == SA_LOAD_MMAP) {
        void *m = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        close(fd);
        if (m == MAP_FAILED) {
            sa_err("%s: mmap of %.1f MiB failed: %s", path, s->size / 1048576.0, strerror(e));
            return open_fail(s);
        }
        s->base = m;
        s->mmapped = 1;
    } else {
        /* Anonymous memory: one big read. On the VMs we measured, decoding from page-cache-backed
         * mappings was up to 2x slower than from private anonymous pages. */
        if (mode == SA_LOAD_READ) {
            s->base = huge_alloc(s->size, &s->map_len);
            if (s->base) s->mmapped = 2;
            else sa_err("out of memory");
        } else {
            s->base = sa_aligned_alloc(s->size);
        }
        if (!s->base) {
            close(fd);
            sa_err_prefix("%s: loading the model needs %.1f MiB: ", path, s->size / 1048576.0);
            return open_fail(s);
        }
        const int rc = read_all(fd, s->base, s->size);
        close(fd);
        if (rc) {
            sa_err("%s: read error: %s", path, rc > 0 ? strerror(rc) : "the file shrank while it was read");
            return open_fail(s);
        }
    }
    if (parse(s) != 0) {
        sa_err_prefix("%s: ", path);
        return open_fail(s);
    }
    return 0;
}

static uint32_t crc_of(const uint8_t *p, uint64_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t k = 0; k < n; k += 1u << 30) crc = crc32(crc, p + k, (uInt)SA_MIN(n - k, (uint64_t)1 << 30));
    return (uint32_t)crc;
}

int salm_verify(const Salm *s) {
    /* tensors in parallel (zlib's crc32 runs at ~3.6 GB/s on one Zen 5 core); the first bad one in
     * file order is reported */
    int bad = s->n_tensors;
    uint32_t got = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < s->n_tensors; i++) {
        const SalmTensor *t = &s->tensors[i];
        const uint32_t crc = crc_of(t->data, t->nbytes);
        if (crc != t->crc32) {
#pragma omp critical(salm_verify)
            if (i < bad) {
                bad = i;
                got = crc;
            }
        }
    }
    if (bad < s->n_tensors)
        return sa_err("%s: tensor '%s': crc32 mismatch (file says %08x, data gives %08x): the file is damaged; "
                      "convert or download it again (--no-verify skips the check)",
                      s->path, s->tensors[bad].name, s->tensors[bad].crc32, got);
    return 0;
}

void salm_close(Salm *s) {
    for (int i = 0; i < s->n_kv; i++) kv_free(&s->kv[i]);
    free(s->kv);
    for (int i = 0; i < s->n_tensors; i++) free(s->tensors[i].name);
    free(s->tensors);
    if (s->base) {
        if (s->mmapped == 1) munmap(s->base, s->size);
        else if (s->mmapped == 2) munmap(s->base, s->map_len);
        else free(s->base);
    }
    free(s->path);
    memset(s, 0, sizeof *s);
}

const SalmKV *salm_kv(const Salm *s, const char *key) {
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kv[i].key, key) == 0) return &s->kv[i];
    return NULL;
}

const SalmTensor *salm_tensor(const Salm *s, const char *name) {
    for (int i = 0; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i].name, name) == 0) return &s->tensors[i];
    return NULL;
}

static const SalmKV *get_typed(const Salm *s, const char *key, SalmType type) {
    const SalmKV *kv = salm_kv(s, key);
    if (!kv) {
        sa_err("%s: missing metadata '%s'", s->path, key);
        return NULL;
    }
    if (kv->type != type) {
        sa_err("%s: metadata '%s' has the wrong type", s->path, key);
        return NULL;
    }
    return kv;
}

int salm_get_u32(const Salm *s, const char *key, uint32_t *out) {
    const SalmKV *kv = get_typed(s, key, SALM_U32);
    if (!kv) return -1;
    *out = kv->v.u32;
    return 0;
}
int salm_get_i32(const Salm *s, const char *key, int32_t *out) {
    const SalmKV *kv = get_typed(s, key, SALM_I32);
    if (!kv) return -1;
    *out = kv->v.i32;
    return 0;
}
int salm_get_f32(const Salm *s, const char *key, float *out) {
    const SalmKV *kv = get_typed(s, key, SALM_F32);
    if (!kv) return -1;
    *out = kv->v.f32;
    return 0;
}
const char *salm_get_str(const Salm *s, const char *key) {
    const SalmKV *kv = salm_kv(s, key);
    return kv && kv->type == SALM_STR ? kv->str : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* writing                                                                                      */

struct SalmWriter {
    SalmKV *kv;
    int n_kv, cap_kv;
    SalmTensor *t;
    int n_t, cap_t;
};

SalmWriter *salm_writer_new(void) { return sa_calloc(1, sizeof(SalmWriter)); }

void salm_writer_free(SalmWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) kv_free(&w->kv[i]);
    free(w->kv);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

static SalmKV *add_kv(SalmWriter *w, const char *key, SalmType type) {
    if (strlen(key) > SALM_MAX_KEY) {
        sa_err("metadata key too long: %s", key);
        return NULL;
    }
    for (int i = 0; i < w->n_kv; i++) /* replace an earlier value of the same key */
        if (strcmp(w->kv[i].key, key) == 0) {
            kv_free(&w->kv[i]);
            w->kv[i] = w->kv[--w->n_kv];
            break;
        }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? w->cap_kv * 2 : 32;
        SalmKV *p = sa_realloc(w->kv, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        w->kv = p;
        w->cap_kv = cap;
    }
    SalmKV *kv = &w->kv[w->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->key = sa_strdup(key);
    if (!kv->key) return NULL;
    kv->type = type;
    w->n_kv++;
    return kv;
}

int salm_writer_u32(SalmWriter *w, const char *key, uint32_t v) {
    SalmKV *kv = add_kv(w, key, SALM_U32);
    if (!kv) return -1;
    kv->v.u32 = v;
    return 0;
}
int salm_writer_i32(SalmWriter *w, const char *key, int32_t v) {
    SalmKV *kv = add_kv(w, key, SALM_I32);
    if (!kv) return -1;
    kv->v.i32 = v;
    return 0;
}
int salm_writer_f32(SalmWriter *w, const char *key, float v) {
    SalmKV *kv = add_kv(w, key, SALM_F32);
    if (!kv) return -1;
    kv->v.f32 = v;
    return 0;
}
int salm_writer_str(SalmWriter *w, const char *key, const char *v) {
    SalmKV *kv = add_kv(w, key, SALM_STR);
    if (!kv) return -1;
    kv->n = strlen(v);
    kv->str = sa_strdup(v);
    return kv->str ? 0 : -1;
}
int salm_writer_arr_str(SalmWriter *w, const char *key, char *const *v, uint64_t n) {
    SalmKV *kv = add_kv(w, key, SALM_ARR_STR);
    if (!kv) return -1;
    kv->strs = sa_calloc(n, sizeof(char *));
    if (!kv->strs) return -1;
    kv->n = n;
    for (uint64_t i = 0; i < n; i++) {
        if (strlen(v[i]) > (1u << 20)) return sa_err("metadata '%s': string %llu too long", key, (unsigned long long)i);
        if (!(kv->strs[i] = sa_strdup(v[i]))) return -1;
    }
    return 0;
}
static int add_arr(SalmWriter *w, const char *key, SalmType type, const void *v, uint64_t n) {
    SalmKV *kv = add_kv(w, key, type);
    if (!kv) return -1;
    kv->arr = sa_malloc(n * 4);
    if (!kv->arr) return -1;
    if (n) memcpy(kv->arr, v, n * 4);
    kv->n = n;
    return 0;
}
int salm_writer_arr_f32(SalmWriter *w, const char *key, const float *v, uint64_t n) { return add_arr(w, key, SALM_ARR_F32, v, n); }
int salm_writer_arr_i32(SalmWriter *w, const char *key, const int32_t *v, uint64_t n) { return add_arr(w, key, SALM_ARR_I32, v, n); }

int salm_writer_tensor(SalmWriter *w, const char *name, SaDtype dtype, int n_dims, const int64_t *ne) {
    if (strlen(name) > SALM_MAX_NAME) return sa_err("tensor name too long: %s", name);
    if (n_dims < 1 || n_dims > SALM_MAX_DIMS) return sa_err("tensor '%s': %d dimensions", name, n_dims);
    const SaDtypeTraits *tr = &sa_dtype_traits[dtype];
    if (ne[0] % tr->block) return sa_err("tensor '%s': row length %lld not a multiple of %d for %s", name, (long long)ne[0], tr->block, tr->name);
    for (int i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return sa_err("duplicate tensor '%s'", name);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? w->cap_t * 2 : 64;
        SalmTensor *p = sa_realloc(w->t, (size_t)cap * sizeof *p);
        if (!p) return -1;
        w->t = p;
        w->cap_t = cap;
    }
    SalmTensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = sa_strdup(name))) return -1;
    t->dtype = dtype;
    t->n_dims = n_dims;
    uint64_t count = 1;
    for (int i = 0; i < SALM_MAX_DIMS; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0) return sa_err("tensor '%s': dimension %d is %lld", name, i, (long long)ne[i]);
        if (!sa_mul_ok(count, (uint64_t)ne[i], &count)) return sa_err("tensor '%s': too large", name);
    }
    t->nbytes = count / tr->block * tr->block_bytes;
    return w->n_t++;
}

static void put_u32(SaBuf *b, uint32_t v) { sa_buf_append(b, &v, 4); }
static void put_u64(SaBuf *b, uint64_t v) { sa_buf_append(b, &v, 8); }
static void put_str(SaBuf *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    put_u32(b, n);
    sa_buf_append(b, s, n);
}

/* Serialize the metadata and tensor table (the tensor table includes the crcs, so this runs
 * twice: once with zero crcs to size it, once at the end with the real ones). */
static int serialize_header(const SalmWriter *w, SaBuf *meta, SaBuf *table) {
    meta->len = table->len = 0;
    for (int i = 0; i < w->n_kv; i++) {
        const SalmKV *kv = &w->kv[i];
        put_str(meta, kv->key);
        put_u32(meta, kv->type);
        switch (kv->type) {
        case SALM_U32: put_u32(meta, kv->v.u32); break;
        case SALM_I32: put_u32(meta, (uint32_t)kv->v.i32); break;
        case SALM_F32: { uint32_t u; memcpy(&u, &kv->v.f32, 4); put_u32(meta, u); } break;
        case SALM_STR: put_str(meta, kv->str); break;
        case SALM_ARR_STR:
            put_u64(meta, kv->n);
            for (uint64_t j = 0; j < kv->n; j++) put_str(meta, kv->strs[j]);
            break;
        case SALM_ARR_F32:
        case SALM_ARR_I32:
            put_u64(meta, kv->n);
            sa_buf_append(meta, kv->arr, kv->n * 4);
            break;
        default: break;
        }
    }
    for (int i = 0; i < w->n_t; i++) {
        const SalmTensor *t = &w->t[i];
        put_str(table, t->name);
        put_u32(table, t->dtype);
        put_u32(table, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(table, (uint64_t)t->ne[d]);
        put_u64(table, t->offset);
        put_u64(table, t->nbytes);
        put_u32(table, t->crc32);
    }
    return 0;
}

/* Offsets of every tensor and of the data section (the metadata and table sizes do not depend
 * on the crcs, so the zero-crc serialization gives the final size). */
static uint64_t layout(SalmWriter *w, SaBuf *meta, SaBuf *table, uint64_t *data_bytes) {
    serialize_header(w, meta, table);
    uint64_t data_offset = (SALM_HEADER_BYTES + meta->len + table->len + SALM_ALIGN - 1) / SALM_ALIGN * SALM_ALIGN;
    uint64_t off = 0, end = 0;
    for (int i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        end = off + w->t[i].nbytes;
        off = (end + SALM_ALIGN - 1) / SALM_ALIGN * SALM_ALIGN;
    }
    *data_bytes = end;
    return data_offset;
}

/* The header, metadata and tensor table (with the crcs now known), zero-padded to data_offset. */
static void build_head(const SalmWriter *w, SaBuf *meta, SaBuf *table, uint64_t data_offset, SaBuf *head) {
    static const uint8_t zeros[SALM_ALIGN];
    serialize_header(w, meta, table);
    sa_buf_append(head, SALM_MAGIC, 4);
    put_u32(head, SALM_VERSION);
    put_u32(head, (uint32_t)w->n_kv);
    put_u32(head, (uint32_t)w->n_t);
    put_u64(head, meta->len);
    put_u64(head, data_offset);
    uLong hcrc = crc32(0L, Z_NULL, 0);
    hcrc = crc32(hcrc, (const Bytef *)meta->data, (uInt)meta->len);
    hcrc = crc32(hcrc, (const Bytef *)table->data, (uInt)table->len);
    put_u32(head, (uint32_t)hcrc);
    put_u32(head, 0);
    sa_buf_append(head, meta->data, meta->len);
    sa_buf_append(head, table->data, table->len);
    while (head->len < data_offset) sa_buf_append(head, zeros, SA_MIN((size_t)(data_offset - head->len), sizeof zeros));
}


int salm_writer_to_memory(SalmWriter *w, Salm *s, const char *path, SaLoadMode mode, SalmFillFn fill, void *ctx,
                          void (*progress)(void *ctx, int done, int total)) {
    memset(s, 0, sizeof *s);
    SaBuf meta = {0}, table = {0}, head = {0};
    uint64_t data_bytes;
    const uint64_t data_offset = layout(w, &meta, &table, &data_bytes);
    int rc = -1;
    if (!(s->path = sa_strdup(path))) goto done;
    uint64_t total;
    if (!sa_add_ok(data_offset, data_bytes, &total) || total > SIZE_MAX) {
        sa_err("%s: the model is too large for memory", path);
        goto done;
    }
    s->size = (size_t)total;
    if (mode == SA_LOAD_READ && (s->base = huge_alloc(s->size, &s->map_len))) {
        s->mmapped = 2; /* anonymous mappings start zeroed */
    } else if ((s->base = sa_aligned_alloc(s->size))) {
        memset(s->base, 0, s->size);
    } else {
        sa_err_prefix("%s: the converted model needs %.1f MiB: ", path, s->size / 1048576.0);
        goto done;
    }
    /* each tensor is produced in place: no second copy of the weights */
    for (int i = 0; i < w->n_t; i++) {
        SalmTensor *t = &w->t[i];
        uint8_t *dst = s->base + data_offset + t->offset;
        if (fill(ctx, i, dst, t->nbytes) != 0) {
            sa_err_prefix("%s: tensor '%s': ", path, t->name);
            goto done;
        }
        t->crc32 = crc_of(dst, t->nbytes);
        if (progress) progress(ctx, i + 1, w->n_t);
    }
    build_head(w, &meta, &table, data_offset, &head);
    memcpy(s->base, head.data, head.len);
    /* the image is read back exactly as a file would be: the runtime sees one kind of model */
    if (parse(s) != 0) {
        sa_err_prefix("%s: ", path);
        goto done;
    }
    s->converted = 1;
    rc = 0;
done:
    if (rc) salm_close(s);
    sa_buf_free(&meta);
    sa_buf_free(&table);
    sa_buf_free(&head);
    return rc;
}

int salm_writer_write(SalmWriter *w, const char *path, SalmFillFn fill, void *ctx,
                      void (*progress)(void *ctx, int done, int total)) {
    SaBuf meta = {0}, table = {0};
    SaOutFile of;
    int fd = -1, rc = -1;
    uint8_t *buf = NULL;
    uint64_t buf_cap = 0, data_bytes;

    const uint64_t data_offset = layout(w, &meta, &table, &data_bytes);

    if (sa_outfile_open(&of, path, NULL)) goto out;
    fd = of.fd;
    /* data first (at its final position), header last once the crcs are known */
    if (lseek(fd, (off_t)data_offset, SEEK_SET) < 0) {
        sa_err("%s: cannot seek (a .salm is written data first, header last: write to a file, not a pipe)", path);
        goto done;
    }
    uint64_t pos = 0;
    static const uint8_t zeros[SALM_ALIGN];
    for (int i = 0; i < w->n_t; i++) {
        SalmTensor *t = &w->t[i];
        if (pos < t->offset) {
            if (sa_write_all(fd, zeros, (size_t)(t->offset - pos), path)) goto done;
            pos = t->offset;
        }
        if (t->nbytes > buf_cap) {
            free(buf);
            buf = sa_aligned_alloc(t->nbytes);
            if (!buf) { buf_cap = 0; goto done; }
            buf_cap = t->nbytes;
        }
        memset(buf, 0, t->nbytes);
        if (fill(ctx, i, buf, t->nbytes) != 0) {
            sa_err_prefix("tensor '%s': ", t->name);
            goto done;
        }
        t->crc32 = crc_of(buf, t->nbytes);
        if (sa_write_all(fd, buf, t->nbytes, path)) goto done;
        pos += t->nbytes;
        if (progress) progress(ctx, i + 1, w->n_t);
    }
    SaBuf head = {0};
    build_head(w, &meta, &table, data_offset, &head);
    if (lseek(fd, 0, SEEK_SET) < 0 || sa_write_all(fd, head.data, head.len, path)) {
        sa_buf_free(&head);
        goto done;
    }
    sa_buf_free(&head);
    fd = -1;
    if (sa_outfile_commit(&of)) goto out;
    rc = 0;
done:
    if (fd >= 0) sa_outfile_abort(&of);
out:
    free(buf);
    sa_buf_free(&meta);
    sa_buf_free(&table);
    return rc;
}
