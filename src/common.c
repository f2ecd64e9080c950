/* common.c - error buffer, checked allocation, file reading, timing, byte buffers. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Thread_local char g_err[SA_ERR_MAX];

int sa_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return -1;
}

int sa_err_prefix(const char *fmt, ...) {
    char pre[SA_ERR_MAX], old[SA_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_err, sizeof old);
    /* pre + old, truncated to the buffer (spelled out: snprintf("%s%s") warns about truncation) */
    size_t pl = strnlen(pre, SA_ERR_MAX - 1), ol = strnlen(old, SA_ERR_MAX - 1);
    if (ol > SA_ERR_MAX - 1 - pl) ol = SA_ERR_MAX - 1 - pl;
    memcpy(g_err, pre, pl);
    memcpy(g_err + pl, old, ol);
    g_err[pl + ol] = 0;
    return -1;
}

const char *sa_errmsg(void) { return g_err[0] ? g_err : "unknown error"; }
void sa_err_clear(void) { g_err[0] = 0; }

void *sa_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) sa_err("out of memory allocating %zu bytes (%.1f MiB)", n, n / 1048576.0);
    return p;
}

void *sa_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) sa_err("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *sa_realloc(void *old, size_t n) {
    void *p = realloc(old, n ? n : 1);
    if (!p) sa_err("out of memory allocating %zu bytes (%.1f MiB)", n, n / 1048576.0);
    return p;
}

void *sa_aligned_alloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        sa_err("out of memory allocating %zu bytes (%.1f MiB)", n, n / 1048576.0);
        return NULL;
    }
    return p;
}

char *sa_strndup(const char *s, size_t n) {
    char *p = sa_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *sa_strdup(const char *s) { return sa_strndup(s, strlen(s)); }

char *sa_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sa_err("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        sa_err("%s: is a directory", path);
        return NULL;
    }
    SaBuf b = {0};
    char tmp[1 << 16];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (sa_buf_append(&b, tmp, n) != 0) {
            fclose(f);
            sa_buf_free(&b);
            return NULL;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        sa_buf_free(&b);
        sa_err("%s: read error", path);
        return NULL;
    }
    if (sa_buf_reserve(&b, 1) != 0) {
        sa_buf_free(&b);
        return NULL;
    }
    b.data[b.len] = 0;
    if (len) *len = b.len;
    return b.data;
}

char *sa_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = sa_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int sa_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double sa_time_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
double sa_thread_cpu_ms(void) { return clock_ms(CLOCK_THREAD_CPUTIME_ID); }

int sa_buf_reserve(SaBuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = sa_realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sa_buf_append(SaBuf *b, const void *p, size_t n) {
    if (sa_buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int sa_buf_printf(SaBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return sa_err("format error");
    if (sa_buf_reserve(b, (size_t)n) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void sa_buf_free(SaBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

size_t sa_utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return i;
        if (i + len > n) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* reject overlong forms, surrogates and values past U+10FFFF */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return i;
        i += len;
    }
    return n;
}

char *sa_utf8_clean(const char *s) {
    SaBuf b = {0};
    size_t n = strlen(s), i = 0;
    while (i < n) {
        size_t ok = sa_utf8_valid_prefix(s + i, n - i);
        sa_buf_append(&b, s + i, ok);
        i += ok;
        if (i < n) {
            sa_buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (!b.data) return sa_strdup("");
    return b.data;
}

int sa_user_cache_path(const char *name, char *out, size_t n, int create) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/salign", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/salign", home);
    else return 0;
    if (create) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            mkdir(parent, 0755);
        }
        mkdir(dir, 0755);
    }
    return snprintf(out, n, "%s/%s", dir, name) < (int)n;
}
