/* results_file.c - append-only, locked, resumable JSONL result files (see results_file.h). */
#include "results_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "outfile.h"

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

int sa_read_jsonl(const char *path, SaJsonlCheck check, SaJsonlFn fn, void *ctx, long long *torn_at) {
    if (torn_at) *torn_at = -1;
    FILE *f = fopen(path, "rb");
    if (!f) return sa_err("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long long off = 0;
    long line_no = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        line_no++;
        if (line[n - 1] != '\n') { /* only the last line can lack it: a write cut short by a crash */
            if (torn_at) *torn_at = off;
            break;
        }
        off += n;
        line[--n] = 0;
        if (blank(line, (size_t)n)) continue;
        cJSON *o = NULL;
        if (!memchr(line, 0, (size_t)n)) o = cJSON_ParseWithLength(line, (size_t)n);
        const char *want = check(o);
        if (want) {
            cJSON_Delete(o);
            rc = sa_err("%s: line %ld: not %s; the file is damaged", path, line_no, want);
            break;
        }
        rc = fn(ctx, line_no, line, (size_t)n, o);
        cJSON_Delete(o);
        if (rc) break;
    }
    if (!rc && ferror(f)) rc = sa_err("%s: read error: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

int sa_parse_shard(const char *flag, const char *v, long *i, long *n) {
    char *end;
    errno = 0;
    long a = strtol(v, &end, 10);
    if (end == v || *end != '/' || errno) return sa_err("%s: expected I/N (e.g. 0/4), got '%s'", flag, v);
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (end == p || *end || errno || b < 1 || a < 0 || a >= b)
        return sa_err("%s: expected I/N with 0 <= I < N (e.g. 0/4), got '%s'", flag, v);
    *i = a;
    *n = b;
    return 0;
}

typedef struct {
    SaResultsFile *f;
    SaResultKeyFn key;
} Collect;

static int collect_line(void *ctx, long line_no, const char *line, size_t len, cJSON *obj) {
    Collect *c = ctx;
    char *key = c->key(obj);
    int added = 0;
    long *v = key ? sa_strmap_put(&c->f->done, key, line_no, &added) : NULL;
    free(key);
    if (!v) return -1;
    if (!added) c->f->n_dup++;
    c->f->n_lines++;
    return 0;
}

int sa_results_open(SaResultsFile *f, const SaResultsSpec *s) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = s->path;
    struct stat st, st_in;
    const int existed = stat(s->path, &st) == 0;
    if (existed && S_ISDIR(st.st_mode)) return sa_err("%s: is a directory", s->path);
    if (existed && s->input && stat(s->input, &st_in) == 0 && st.st_dev == st_in.st_dev && st.st_ino == st_in.st_ino)
        return sa_err("%s: the results file is the input file", s->path);
    int fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return sa_err("%s: cannot open for writing: %s", s->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return sa_err("%s: in use by another salign %s (give each process its own --out)", s->path, s->cmd);
        return sa_err("%s: cannot lock: %s", s->path, strerror(e));
    }
    if (!existed) sa_fsync_dir_of(s->path);
    if (existed && !s->resume) {
        if (ftruncate(fd, 0)) {
            close(fd);
            return sa_err("%s: cannot truncate: %s", s->path, strerror(errno));
        }
        fprintf(stderr, "salign: %s: --no-resume: starting over\n", s->path);
    } else if (existed) {
        long long torn = -1;
        Collect c = {f, s->key};
        if (sa_read_jsonl(s->path, s->check, collect_line, &c, &torn)) {
            close(fd);
            sa_strmap_free(&f->done);
            if (!strstr(sa_errmsg(), s->path)) sa_err_prefix("%s: ", s->path);
            return -1;
        }
        if (torn >= 0) {
            if (ftruncate(fd, (off_t)torn) || fsync(fd)) {
                close(fd);
                sa_strmap_free(&f->done);
                return sa_err("%s: cannot cut off the incomplete last line: %s", s->path, strerror(errno));
            }
            fprintf(stderr, "salign: %s: dropped an incomplete last line (%lld bytes) left by an interrupted run\n", s->path,
                    (long long)st.st_size - torn);
        }
        if (f->n_dup) fprintf(stderr, "salign: %s: warning: %ld %s pairs appear more than once\n", s->path, f->n_dup, s->unit);
    }
    f->fd = fd;
    return 0;
}

int sa_results_done(const SaResultsFile *f, const char *key) { return key && sa_strmap_get(&f->done, key) != NULL; }

/* Test hook: SALIGN_TEST_SPLIT_WRITES=MS writes each line in two parts, the first fsync'ed, MS
 * milliseconds apart, so that tests/test_eval_kill.c can kill -9 the process while a line is half
 * written and check that resuming drops exactly that torn line. Unset (always, outside that test):
 * no effect. */
static int split_writes_ms(void) {
    const char *e = getenv("SALIGN_TEST_SPLIT_WRITES");
    return e ? atoi(e) : 0;
}

int sa_results_append(SaResultsFile *f, const char *line, size_t len) {
    char *buf = sa_malloc(len + 1);
    if (!buf) return -1;
    memcpy(buf, line, len);
    buf[len] = '\n';
    size_t done = 0;
    const int ms = split_writes_ms();
    if (ms > 0 && len >= 2) {
        done = len / 2;
        if (sa_write_all(f->fd, buf, done, f->path) || fsync(f->fd)) {
            free(buf);
            return sa_err("%s: write failed: %s", f->path, strerror(errno));
        }
        usleep((useconds_t)ms * 1000);
    }
    /* one write per line, then fsync: a crash leaves whole lines plus at most one torn one */
    int rc = sa_write_all(f->fd, buf + done, len + 1 - done, f->path);
    if (!rc && fsync(f->fd)) rc = sa_err("%s: write failed: %s", f->path, strerror(errno));
    free(buf);
    return rc;
}

void sa_results_close(SaResultsFile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    sa_strmap_free(&f->done);
}
