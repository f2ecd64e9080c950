/* common.h - error reporting, allocation and small helpers shared by every module.
 *
 * Convention: a function that can fail returns an int status (0 = ok, -1 = error) and
 * records one human-readable line with sa_err(). Only the CLI prints it (as
 * "salign: <message>") and exits 1. Library code never prints errors and never exits. */
#ifndef SALIGN_COMMON_H
#define SALIGN_COMMON_H

/* The release; results lines and `salign --version` name it. */
#define SALIGN_VERSION "0.6.0"

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SA_ERR_MAX 512

/* Record an error message (printf-style). Returns -1 so callers can `return sa_err(...)`. */
int sa_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepend context, e.g. the file name: "model.salm: " + previous message. Returns -1. */
int sa_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sa_errmsg(void);
void sa_err_clear(void);

/* Allocation that reports failure through sa_err (naming the size) instead of crashing. */
void *sa_malloc(size_t n);
void *sa_calloc(size_t n, size_t size);
void *sa_realloc(void *p, size_t n);
/* 64-byte aligned allocation (free with free()). */
void *sa_aligned_alloc(size_t n);
char *sa_strdup(const char *s);
char *sa_strndup(const char *s, size_t n);

/* Overflow-checked arithmetic: returns false on overflow. */
static inline bool sa_mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool sa_add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Read a whole file into memory (NUL-terminated for convenience). Returns NULL + sa_err. */
char *sa_read_file(const char *path, size_t *len);

/* dir + "/" + name, malloc'd (NULL + sa_err on OOM). */
char *sa_path_join(const char *dir, const char *name);
/* Is path an existing regular file? */
int sa_is_file(const char *path);

/* Wall clock in milliseconds (monotonic). */
double sa_time_ms(void);
/* The calling thread's CPU time, ms: what a measurement took without the time the core was taken away */
double sa_thread_cpu_ms(void);
/* The path of `name` in the user's cache folder ($XDG_CACHE_HOME/salign, default ~/.cache/salign),
 * creating the folder when `create`; 0 when there is none to use (no HOME) or the path is too long. */
int sa_user_cache_path(const char *name, char *out, size_t n, int create);

/* Growable byte buffer (used by writers and decoders). */
typedef struct {
    char *data;
    size_t len, cap;
} SaBuf;
int sa_buf_reserve(SaBuf *b, size_t extra);
int sa_buf_append(SaBuf *b, const void *p, size_t n);
int sa_buf_printf(SaBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sa_buf_free(SaBuf *b);

/* Valid UTF-8 check; returns the length of the longest valid prefix. */
size_t sa_utf8_valid_prefix(const char *s, size_t n);
/* A copy with every byte that is not part of valid UTF-8 replaced by U+FFFD (JSON strings must be
 * valid UTF-8). Malloc'd; NULL + sa_err on out of memory. */
char *sa_utf8_clean(const char *s);

#define SA_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SA_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
