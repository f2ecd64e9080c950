/* eval.c - salign eval and salign eval-merge (see eval.h). */
#include "eval.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <omp.h>

#include "chat.h"
#include "common.h"
#include "engine_opts.h"
#include "flags.h"
#include "matmul.h"
#include "outfile.h"

/* ---- string map -------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int strmap_grow(SaStrMap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = sa_calloc(cap, sizeof *keys);
    long *vals = sa_calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = fnv1a(m->keys[i]) & (cap - 1);
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

long *sa_strmap_get(const SaStrMap *m, const char *key) {
    if (!m->cap) return NULL;
    size_t j = fnv1a(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key)) return &m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

long *sa_strmap_put(SaStrMap *m, const char *key, long val, int *added) {
    if (added) *added = 0;
    long *v = sa_strmap_get(m, key);
    if (v) return v;
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m)) return NULL;
    size_t j = fnv1a(key) & (m->cap - 1);
    while (m->keys[j]) j = (j + 1) & (m->cap - 1);
    if (!(m->keys[j] = sa_strdup(key))) return NULL;
    m->vals[j] = val;
    m->n++;
    if (added) *added = 1;
    return &m->vals[j];
}

void sa_strmap_free(SaStrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- ids, modes, seeds ------------------------------------------------------------------- */

char *sa_eval_pair_key(const char *id_key, const char *mode) {
    SaBuf b = {0};
    if (sa_buf_printf(&b, "%s\x1f%s", id_key, mode)) return NULL;
    return b.data;
}

char *sa_eval_id_key(const cJSON *id) {
    if (cJSON_IsString(id)) return sa_strdup(id->valuestring);
    if (cJSON_IsNumber(id)) return cJSON_PrintUnformatted(id);
    return NULL;
}

static const char *mode_names[] = {"stream", "aligner", "none"};

const char *sa_mode_name(SaAlignMode m) { return mode_names[m]; }

int sa_eval_parse_modes(const char *flag, const char *s, SaAlignMode *modes) {
    int n = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int m = 0; m < 3; m++)
            if (len == strlen(mode_names[m]) && !strncmp(p, mode_names[m], len)) found = m;
        if (found < 0) return sa_err("%s: expected a comma-separated list of none, aligner, stream, got '%s'", flag, s);
        for (int k = 0; k < n; k++)
            if ((int)modes[k] == found) return sa_err("%s: mode '%s' is listed twice", flag, mode_names[found]);
        modes[n++] = (SaAlignMode)found;
        if (!p[len]) break;
        p += len + 1;
    }
    return n;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* 53 bits, so the seed written in a results line survives any JSON reader's doubles and can be
 * given back to `salign align --seed` to reproduce that one run. */
uint64_t sa_eval_seed(uint64_t seed, const char *id_key) {
    return splitmix64(splitmix64(seed) ^ fnv1a(id_key)) >> 11;
}

/* ---- reading lines (plain or gzip) -------------------------------------------------------- */

int sa_read_lines(const char *path, SaLineFn fn, void *ctx) {
    struct stat st;
    if (stat(path, &st)) return sa_err("%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return sa_err("%s: is a directory", path);
    errno = 0;
    gzFile g = gzopen(path, "rb"); /* reads plain files unchanged ("transparent" mode) */
    if (!g) return sa_err("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(g, 1 << 17);
    SaBuf line = {0};
    enum { CHUNK = 1 << 16 };
    char *buf = sa_malloc(CHUNK);
    if (!buf) {
        gzclose(g);
        return -1;
    }
    long line_no = 0;
    int rc = 0, have = 0; /* have: bytes of an unfinished line are in `line` */
    for (;;) {
        int n = gzread(g, buf, CHUNK);
        int zerr = Z_OK;
        const char *zmsg = n <= 0 ? gzerror(g, &zerr) : NULL;
        if (n < 0 || (n == 0 && zerr != Z_OK && zerr != Z_STREAM_END)) {
            rc = sa_err("%s: %s", path, zerr == Z_ERRNO ? strerror(errno) : zmsg && *zmsg ? zmsg : "read error");
            if (zerr == Z_BUF_ERROR) sa_err("%s: the gzip data ends early (a truncated file?)", path);
            else if (zerr == Z_DATA_ERROR) sa_err("%s: the gzip data is damaged: %s", path, zmsg);
            break;
        }
        if (n == 0) break;
        const char *p = buf, *end = buf + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            if (sa_buf_append(&line, p, (size_t)(stop - p))) {
                rc = -1;
                goto out;
            }
            have = 1;
            p = stop;
            if (!nl) break;
            p++;
            size_t len = line.len;
            if (len && line.data[len - 1] == '\r') line.data[--len] = 0;
            if ((rc = fn(ctx, ++line_no, line.data, len))) goto out;
            line.len = 0;
            line.data[0] = 0;
            have = 0;
        }
    }
    if (!rc && have && line.len) { /* a last line without a newline is still a line */
        size_t len = line.len;
        if (line.data[len - 1] == '\r') line.data[--len] = 0;
        rc = fn(ctx, ++line_no, line.data, len);
    }
out:
    gzclose(g);
    free(buf);
    sa_buf_free(&line);
    return rc;
}

/* ---- records ----------------------------------------------------------------------------- */

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

void sa_eval_record_free(SaEvalRecord *r) {
    free(r->key);
    free(r->question);
    cJSON_Delete(r->id);
    cJSON_Delete(r->rest);
    memset(r, 0, sizeof *r);
}

int sa_eval_parse_record(const char *line, size_t len, const char *field, long line_no, SaEvalRecord *r) {
    static const char *auto_fields[] = {"prompt", "question", "problem", "instruction"};
    memset(r, 0, sizeof *r);
    r->line = line_no;
    if (memchr(line, 0, len)) return sa_err("contains a NUL byte");
    if (sa_utf8_valid_prefix(line, len) != len) return sa_err("not valid UTF-8 (at byte %zu)", sa_utf8_valid_prefix(line, len) + 1);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!o) {
        const char *at = cJSON_GetErrorPtr();
        long col = at && at >= line && at <= line + len ? (long)(at - line) + 1 : 0;
        return col ? sa_err("invalid JSON (at column %ld)", col) : sa_err("invalid JSON");
    }
    if (!blank(end, len - (size_t)(end - line))) {
        cJSON_Delete(o);
        return sa_err("invalid JSON (text after the object at column %ld)", (long)(end - line) + 1);
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return sa_err("not a JSON object");
    }
    cJSON *q = NULL;
    if (field) {
        q = cJSON_GetObjectItemCaseSensitive(o, field);
        if (!q) {
            cJSON_Delete(o);
            return sa_err("no \"%s\" field (--field)", field);
        }
        r->field = field;
    } else {
        for (size_t k = 0; k < SA_ARRAY_LEN(auto_fields) && !q; k++)
            if ((q = cJSON_GetObjectItemCaseSensitive(o, auto_fields[k]))) r->field = auto_fields[k];
        if (!q) {
            cJSON_Delete(o);
            return sa_err("no question field (prompt, question, problem or instruction; name another with --field)");
        }
    }
    if (!cJSON_IsString(q) || blank(q->valuestring, strlen(q->valuestring))) {
        int empty = cJSON_IsString(q);
        cJSON_Delete(o);
        return sa_err("\"%s\" is %s", r->field, empty ? "empty" : "not a string");
    }
    /* Alpaca: the instruction's "input" is part of the question */
    cJSON *in = strcmp(r->field, "instruction") ? NULL : cJSON_GetObjectItemCaseSensitive(o, "input");
    SaBuf qb = {0};
    sa_buf_append(&qb, q->valuestring, strlen(q->valuestring));
    if (cJSON_IsString(in) && !blank(in->valuestring, strlen(in->valuestring))) {
        sa_buf_append(&qb, "\n\n", 2);
        sa_buf_append(&qb, in->valuestring, strlen(in->valuestring));
        cJSON_DeleteItemFromObjectCaseSensitive(o, "input");
    }
    r->question = qb.data;
    cJSON_DeleteItemFromObjectCaseSensitive(o, r->field);
    cJSON *id = cJSON_DetachItemFromObjectCaseSensitive(o, "id");
    if (id) {
        if (!(r->key = sa_eval_id_key(id)) || !r->key[0]) {
            int bad_type = !r->key;
            cJSON_Delete(id);
            cJSON_Delete(o);
            sa_eval_record_free(r);
            return sa_err("\"id\" is %s", bad_type ? "neither a string nor a number" : "empty");
        }
        r->id = id;
    } else {
        SaBuf kb = {0};
        sa_buf_printf(&kb, "%ld", line_no);
        r->key = kb.data;
        r->id = cJSON_CreateNumber((double)line_no);
    }
    r->rest = o;
    if (!r->question || !r->key || !r->id) {
        sa_eval_record_free(r);
        return sa_err("out of memory");
    }
    return 0;
}

/* ---- reading results ----------------------------------------------------------------------- */

int sa_read_results(const char *path, SaResultFn fn, void *ctx, long long *torn_at) {
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
        cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (!cJSON_IsObject(o) || !(cJSON_IsString(id) || cJSON_IsNumber(id)) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "mode"))) {
            cJSON_Delete(o);
            rc = sa_err("%s: line %ld: not a results line (a JSON object with \"id\" and \"mode\"); the file is damaged",
                        path, line_no);
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

/* ---- eval: options ------------------------------------------------------------------------ */

typedef struct {
    SaEngineOpts eo;
    const char *in, *out, *field;
    SaAlignMode modes[3];
    int n_modes, resume, progress; /* progress: -1 auto (bar on a TTY), 0 off, 1 plain lines */
    long shard_i, shard_n, limit;
} EvalOpts;

static int parse_shard(const char *flag, const char *v, long *i, long *n) {
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

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: salign eval --upstream U.salm [--aligner A.salm] --in DATA.jsonl[.gz] --out RESULTS.jsonl\n"
            "         [--modes none,aligner,stream] [--field NAME] [--resume | --no-resume] [--shard I/N]\n"
            "         [--limit N] [--progress | --no-progress] [align's engine and sampling flags]\n"
            "  Runs every record of DATA in every mode and appends one JSON line per (record, mode) to RESULTS.\n"
            "  The question is the record's prompt, question, problem or instruction (+ input) field, or --field.\n"
            "  An existing RESULTS is resumed (--no-resume starts it over). --seed S (default 0) seeds every\n"
            "  record from S and its id. Default modes: none,aligner,stream with --aligner, else none.\n"
            "       salign eval-merge OUT.jsonl SHARD.jsonl... [--in DATA.jsonl [--field NAME] [--limit N]]\n"
            "         [--modes LIST] [--force]\n"
            "  Merges shard results, failing on missing or duplicated (id, mode) pairs unless --force.\n");
}

/* ---- eval: the input -------------------------------------------------------------------- */

typedef struct {
    long line;
    char *text; /* the raw line, parsed again when its turn comes (keeps memory near the file size) */
} Pending;

typedef struct {
    const EvalOpts *o;
    long n_valid, n_bad, n_blank;
    SaStrMap ids; /* key -> line */
    Pending *recs;
    size_t n, cap;
} InputScan;

static int scan_line(void *ctx, long line_no, const char *line, size_t len) {
    InputScan *s = ctx;
    const EvalOpts *o = s->o;
    if (blank(line, len)) {
        s->n_blank++;
        return 0;
    }
    if (o->limit > 0 && s->n_valid >= o->limit) return 1; /* stop reading: --limit reached */
    SaEvalRecord r;
    if (sa_eval_parse_record(line, len, o->field, line_no, &r)) {
        fprintf(stderr, "salign: %s: line %ld: %s (skipped)\n", o->in, line_no, sa_errmsg());
        s->n_bad++;
        return 0;
    }
    int added;
    long *first = sa_strmap_put(&s->ids, r.key, line_no, &added);
    if (!first) {
        sa_eval_record_free(&r);
        return -1;
    }
    if (!added) {
        fprintf(stderr, "salign: %s: line %ld: duplicate id \"%.80s\" (first on line %ld) (skipped)\n", o->in, line_no,
                r.key, *first);
        s->n_bad++;
        sa_eval_record_free(&r);
        return 0;
    }
    sa_eval_record_free(&r);
    /* the shard takes records by their index among the valid records, so every shard sees the
     * same numbering whatever the bad or blank lines */
    const long index = s->n_valid++;
    if (index % o->shard_n != o->shard_i) return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        Pending *p = sa_realloc(s->recs, cap * sizeof *p);
        if (!p) return -1;
        s->recs = p;
        s->cap = cap;
    }
    s->recs[s->n].line = line_no;
    if (!(s->recs[s->n].text = sa_strndup(line, len))) return -1;
    s->n++;
    return 0;
}

static void scan_free(InputScan *s) {
    for (size_t i = 0; i < s->n; i++) free(s->recs[i].text);
    free(s->recs);
    sa_strmap_free(&s->ids);
}

/* ---- eval: the results file ------------------------------------------------------------------ */

typedef struct {
    const char *path;
    SaStrMap done; /* pair key -> line */
    long n_lines, n_dup;
} DoneScan;

static int done_line(void *ctx, long line_no, const char *line, size_t len, cJSON *obj) {
    DoneScan *d = ctx;
    char *id = sa_eval_id_key(cJSON_GetObjectItemCaseSensitive(obj, "id"));
    char *key = id ? sa_eval_pair_key(id, cJSON_GetObjectItemCaseSensitive(obj, "mode")->valuestring) : NULL;
    int added = 0;
    long *v = key ? sa_strmap_put(&d->done, key, line_no, &added) : NULL;
    free(id);
    free(key);
    if (!v) return -1;
    if (!added) d->n_dup++;
    d->n_lines++;
    return 0;
}

/* Open RESULTS for appending, holding an exclusive lock so two runs can never interleave lines
 * in one file; on resume, cut off a torn last line and collect the pairs already done. */
static int open_results(const EvalOpts *o, DoneScan *d, int *fd_out) {
    struct stat st, st_in;
    const int existed = stat(o->out, &st) == 0;
    if (existed && S_ISDIR(st.st_mode)) return sa_err("%s: is a directory", o->out);
    if (existed && stat(o->in, &st_in) == 0 && st.st_dev == st_in.st_dev && st.st_ino == st_in.st_ino)
        return sa_err("%s: the results file is the input file", o->out);
    int fd = open(o->out, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return sa_err("%s: cannot open for writing: %s", o->out, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) return sa_err("%s: in use by another salign eval (give each process its own --out)", o->out);
        return sa_err("%s: cannot lock: %s", o->out, strerror(e));
    }
    if (!existed) sa_fsync_dir_of(o->out);
    if (existed && !o->resume) {
        if (ftruncate(fd, 0)) {
            close(fd);
            return sa_err("%s: cannot truncate: %s", o->out, strerror(errno));
        }
        fprintf(stderr, "salign: %s: --no-resume: starting over\n", o->out);
    } else if (existed) {
        long long torn = -1;
        d->path = o->out;
        if (sa_read_results(o->out, done_line, d, &torn)) {
            close(fd);
            if (!strstr(sa_errmsg(), o->out)) sa_err_prefix("%s: ", o->out);
            return -1;
        }
        if (torn >= 0) {
            if (ftruncate(fd, (off_t)torn) || fsync(fd)) {
                close(fd);
                return sa_err("%s: cannot cut off the incomplete last line: %s", o->out, strerror(errno));
            }
            fprintf(stderr, "salign: %s: dropped an incomplete last line (%lld bytes) left by an interrupted run\n", o->out,
                    (long long)st.st_size - torn);
        }
        if (d->n_dup) fprintf(stderr, "salign: %s: warning: %ld (id, mode) pairs appear more than once\n", o->out, d->n_dup);
    }
    *fd_out = fd;
    return 0;
}

/* ---- eval: progress ------------------------------------------------------------------------- */

typedef struct {
    int tty, on;
    double t0, last_draw, last_line, run_ms;
    long done, total, errors;
    long long tokens;
    const char *mode, *id;
} Progress;

static void fmt_dur(char *b, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(b, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress_draw(Progress *p, int final) {
    if (!p->on) return;
    const double now = sa_time_ms();
    if (!final && now - (p->tty ? p->last_draw : p->last_line) < (p->tty ? 100 : 10000)) return;
    p->last_draw = p->last_line = now;
    const double el = (now - p->t0) / 1000;
    char eta[32], ela[32];
    fmt_dur(eta, sizeof eta, p->done ? el / p->done * (p->total - p->done) : -1);
    fmt_dur(ela, sizeof ela, el);
    const double tps = p->run_ms > 0 ? p->tokens / (p->run_ms / 1000) : 0;
    if (p->tty) {
        char bar[31];
        int fill = p->total ? (int)(30 * p->done / p->total) : 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r\x1b[K[%s] %ld/%ld runs  %s  ETA %s  %.1f tok/s", bar, p->done, p->total, ela, eta, tps);
        if (!final && p->mode) fprintf(stderr, "  %s id %.24s", p->mode, p->id);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "salign: eval: %ld/%ld runs done (%.0f%%), %s elapsed, ETA %s, %.1f tok/s%s%s%s%.40s\n", p->done,
                p->total, p->total ? 100.0 * p->done / p->total : 100.0, ela, eta, tps, final || !p->mode ? "" : ", now ",
                final || !p->mode ? "" : p->mode, final || !p->mode ? "" : " on id ", final || !p->mode ? "" : p->id);
    }
    fflush(stderr);
}

/* The engine's output callback: keeps the progress moving during a long answer. */
static void progress_out(void *ctx, SaOutKind kind, const char *text, size_t n) {
    progress_draw(ctx, 0); /* throttled: every 100 ms on a terminal, every 10 s otherwise */
}

/* ---- eval: one run ---------------------------------------------------------------------- */

static void add_int(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

/* The results line of one (record, mode) run: the id and mode first, then the engine's trace
 * (sa_align_trace_json) or the error, token totals, and the record's other fields. */
static char *result_line(const SaEvalRecord *r, SaAlignMode mode, uint64_t up_seed, uint64_t al_seed, const char *error,
                         const SaAlignTrace *tr, long long *tokens) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "id", cJSON_Duplicate(r->id, 1));
    cJSON_AddStringToObject(o, "mode", sa_mode_name(mode));
    add_int(o, "line", (double)r->line);
    cJSON *seeds = cJSON_AddObjectToObject(o, "seeds");
    add_int(seeds, "upstream", (double)up_seed);
    if (mode != SA_MODE_NONE) add_int(seeds, "aligner", (double)al_seed);
    *tokens = 0;
    if (error) {
        cJSON_AddStringToObject(o, "question", r->question);
        cJSON_AddStringToObject(o, "error", error);
    } else {
        char *js = sa_align_trace_json(tr, mode);
        cJSON *t = js ? cJSON_Parse(js) : NULL;
        free(js);
        if (!t) {
            cJSON_Delete(o);
            sa_err("out of memory");
            return NULL;
        }
        for (cJSON *c = t->child, *next; c; c = next) {
            next = c->next;
            if (!strcmp(c->string, "mode")) continue;
            cJSON_DetachItemViaPointer(t, c);
            cJSON_AddItemToObject(o, c->string, c);
        }
        cJSON_Delete(t);
        long long up = 0, al = 0;
        for (int i = 0; i < tr->n_rounds; i++) {
            up += tr->rounds[i].up_decoded;
            al += tr->rounds[i].al_decoded;
        }
        add_int(o, "upstream_tokens", (double)up);
        add_int(o, "aligner_tokens", (double)al);
        *tokens = up + al;
    }
    cJSON_AddStringToObject(o, "field", r->field);
    cJSON_AddItemToObject(o, "record", cJSON_Duplicate(r->rest, 1));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) sa_err("out of memory");
    return s;
}

static int run_eval(EvalOpts *o) {
    int rc = 1, fd = -1;
    InputScan in = {.o = o};
    DoneScan done = {0};
    SaEngineSet es = {0};
    int have_es = 0;
    SaBuf buf = {0};
    int need_al = 0;
    for (int k = 0; k < o->n_modes; k++) need_al |= o->modes[k] != SA_MODE_NONE;
    for (int k = 0; k < o->n_modes && !o->eo.aligner; k++)
        if (o->modes[k] != SA_MODE_NONE) {
            sa_err("--aligner: an aligner model is required for mode %s", sa_mode_name(o->modes[k]));
            goto out;
        }
    /* 1. the input, before touching the results: a bad --in must not cost a --no-resume file */
    if (sa_read_lines(o->in, scan_line, &in) < 0) goto out;
    if (in.n_valid == 0) {
        sa_err("%s: no records with a question (%ld bad line(s))", o->in, in.n_bad);
        goto out;
    }
    /* 2. the results file */
    if (open_results(o, &done, &fd)) goto out;
    long total = 0, already = 0;
    for (size_t i = 0; i < in.n; i++) {
        SaEvalRecord r;
        if (sa_eval_parse_record(in.recs[i].text, strlen(in.recs[i].text), o->field, in.recs[i].line, &r)) goto out;
        for (int k = 0; k < o->n_modes; k++) {
            char *key = sa_eval_pair_key(r.key, sa_mode_name(o->modes[k]));
            if (key && sa_strmap_get(&done.done, key)) already++;
            else total++;
            free(key);
        }
        sa_eval_record_free(&r);
    }
    fprintf(stderr, "salign: %s: %ld record(s)%s", o->in, in.n_valid, o->limit > 0 && in.n_valid >= o->limit ? " (--limit)" : "");
    if (in.n_bad) fprintf(stderr, ", %ld bad line(s) skipped", in.n_bad);
    if (o->shard_n > 1) fprintf(stderr, "; shard %ld/%ld: %zu record(s)", o->shard_i, o->shard_n, in.n);
    fprintf(stderr, "; %ld run(s) to do, %ld already in %s\n", total, already, o->out);
    if (total == 0) {
        fprintf(stderr, "salign: eval: nothing to do\n");
        rc = 0;
        goto out;
    }
    /* 3. the models */
    if (sa_engine_set_open(&o->eo, need_al, &es)) goto out;
    have_es = 1;
    Progress pg = {.tty = isatty(STDERR_FILENO), .total = total};
    pg.on = o->progress != 0;
    if (o->progress == 1) pg.tty = 0;
    pg.t0 = pg.last_line = sa_time_ms();
    const uint64_t up_seed0 = o->eo.ap.up_sp.seed, al_seed0 = o->eo.ap.al_sp.seed;
    for (size_t i = 0; i < in.n; i++) {
        SaEvalRecord r;
        if (sa_eval_parse_record(in.recs[i].text, strlen(in.recs[i].text), o->field, in.recs[i].line, &r)) goto out;
        for (int k = 0; k < o->n_modes; k++) {
            const SaAlignMode m = o->modes[k];
            char *key = sa_eval_pair_key(r.key, sa_mode_name(m));
            const int skip = !key || sa_strmap_get(&done.done, key);
            free(key);
            if (skip) continue;
            pg.mode = sa_mode_name(m);
            pg.id = r.key;
            progress_draw(&pg, 0);
            SaAlignParams ap = o->eo.ap;
            ap.mode = m;
            ap.up_sp.seed = sa_eval_seed(up_seed0, r.key);
            ap.al_sp.seed = sa_eval_seed(al_seed0, r.key);
            ap.out = progress_out;
            ap.out_ctx = &pg;
            /* empty caches: the run must not depend on what ran before it (see eval.h) */
            sa_ctx_truncate(sa_engine_ctx(es.e, 0), 0);
            if (sa_engine_ctx(es.e, 1)) sa_ctx_truncate(sa_engine_ctx(es.e, 1), 0);
            SaAlignTrace tr;
            sa_err_clear();
            const int failed = sa_align_run(es.e, r.question, &ap, &tr) != 0;
            long long tokens = 0;
            char *line = result_line(&r, m, ap.up_sp.seed, ap.al_sp.seed, failed ? sa_errmsg() : NULL, &tr, &tokens);
            pg.run_ms += tr.total_ms;
            sa_align_trace_free(&tr);
            if (!line) {
                sa_eval_record_free(&r);
                goto out;
            }
            buf.len = 0;
            sa_buf_append(&buf, line, strlen(line));
            sa_buf_append(&buf, "\n", 1);
            free(line);
            /* one write per line, then fsync: a crash leaves whole lines plus at most one torn one */
            if (sa_write_all(fd, buf.data, buf.len, o->out) || fsync(fd)) {
                sa_err("%s: write failed: %s", o->out, strerror(errno));
                sa_eval_record_free(&r);
                goto out;
            }
            if (failed) {
                if (pg.tty && pg.on) fprintf(stderr, "\r\x1b[K");
                fprintf(stderr, "salign: %s: line %ld (id %.40s, %s): %s (recorded as an error)\n", o->in, r.line, r.key,
                        sa_mode_name(m), sa_errmsg());
                pg.errors++;
            }
            pg.done++;
            pg.tokens += tokens;
            pg.mode = NULL;
            progress_draw(&pg, pg.done == pg.total);
        }
        sa_eval_record_free(&r);
    }
    fprintf(stderr, "salign: eval: %ld run(s) in %.1f s, %.1f tok/s%s; results in %s\n", pg.done,
            (sa_time_ms() - pg.t0) / 1000, pg.run_ms > 0 ? pg.tokens / (pg.run_ms / 1000) : 0.0,
            pg.errors ? " (some failed: see \"error\" in the results)" : "", o->out);
    rc = 0;
out:
    if (rc) sa_die();
    if (fd >= 0) close(fd);
    if (have_es) sa_engine_set_close(&es);
    scan_free(&in);
    sa_strmap_free(&done.done);
    sa_buf_free(&buf);
    sa_engine_opts_free(&o->eo);
    return rc;
}

int sa_cmd_eval(int argc, char **argv) {
    EvalOpts o;
    memset(&o, 0, sizeof o);
    sa_engine_opts_init(&o.eo);
    /* a fixed default seed: an eval is reproducible unless asked otherwise */
    o.eo.ap.up_sp.seed = o.eo.ap.al_sp.seed = 0;
    o.resume = 1;
    o.progress = -1;
    o.shard_n = 1;
    const char *modes = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_engine_opts_flag(&o.eo, argc, argv, &i);
        if (r < 0) goto bad;
        if (r) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            eval_usage(stdout);
            sa_engine_opts_free(&o.eo);
            return 0;
        } else if (!strcmp(a, "--in")) {
            if (!(o.in = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "--out")) {
            if (!(o.out = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "--field")) {
            if (!(o.field = sa_flag_value(argc, argv, &i))) goto bad;
            if (!*o.field) {
                sa_err("--field: empty field name");
                goto bad;
            }
        } else if (!strcmp(a, "--modes")) {
            if (!(modes = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "--resume")) {
            o.resume = 1;
        } else if (!strcmp(a, "--no-resume")) {
            o.resume = 0;
        } else if (!strcmp(a, "--shard")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || parse_shard(a, v, &o.shard_i, &o.shard_n)) goto bad;
        } else if (!strcmp(a, "--limit")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_long(a, v, 1, LONG_MAX, &o.limit)) goto bad;
        } else if (!strcmp(a, "--progress")) {
            o.progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress = 0;
        } else {
            sa_err("%s: unknown flag for 'eval' (see salign eval --help)", a);
            goto bad;
        }
    }
    if (!o.in) {
        sa_err("--in: an input file (JSONL or JSONL.gz) is required");
        goto bad;
    }
    if (!o.out) {
        sa_err("--out: a results file is required");
        goto bad;
    }
    if (!o.eo.upstream) {
        sa_err("--upstream: an upstream model is required");
        goto bad;
    }
    if (modes) {
        if ((o.n_modes = sa_eval_parse_modes("--modes", modes, o.modes)) < 0) goto bad;
    } else if (o.eo.aligner) {
        o.modes[0] = SA_MODE_NONE;
        o.modes[1] = SA_MODE_ALIGNER;
        o.modes[2] = SA_MODE_STREAM;
        o.n_modes = 3;
    } else {
        o.modes[0] = SA_MODE_NONE;
        o.n_modes = 1;
    }
    return run_eval(&o);
bad:
    sa_engine_opts_free(&o.eo);
    return sa_die();
}

/* ---- eval-merge ------------------------------------------------------------------------------ */

typedef struct {
    char *text;    /* the line as written (copied through unchanged) */
    char *id;      /* id key */
    int mode;      /* index into merge order */
    long line;     /* the record's input line ("line" field), for ordering without --in */
    const char *file;
    long file_line;
} MergeLine;

typedef struct {
    const char *file;
    MergeLine *v;
    size_t n, cap;
    SaStrMap pairs; /* pair key -> index in v */
    long problems;
    int seen_mode[3];
} Merge;

static void problem(Merge *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(Merge *m, const char *fmt, ...) {
    if (m->problems < 20) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "salign: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    } else if (m->problems == 20) {
        fprintf(stderr, "salign: (further problems not shown)\n");
    }
    m->problems++;
}

static int mode_index(const char *name) {
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, mode_names[k])) return k;
    return -1;
}

static int merge_line(void *ctx, long line_no, const char *line, size_t len, cJSON *obj) {
    Merge *m = ctx;
    const char *mode = cJSON_GetObjectItemCaseSensitive(obj, "mode")->valuestring;
    const int mi = mode_index(mode);
    if (mi < 0) {
        problem(m, "%s: line %ld: unknown mode '%.20s'", m->file, line_no, mode);
        return 0;
    }
    char *id = sa_eval_id_key(cJSON_GetObjectItemCaseSensitive(obj, "id"));
    char *key = id ? sa_eval_pair_key(id, mode) : NULL;
    int added = 0;
    long *slot = key ? sa_strmap_put(&m->pairs, key, (long)m->n, &added) : NULL;
    free(key);
    if (!slot) {
        free(id);
        return -1;
    }
    if (!added) {
        const MergeLine *first = &m->v[*slot];
        problem(m, "duplicate (id %.60s, mode %s): %s line %ld and %s line %ld", id, mode, first->file, first->file_line,
                m->file, line_no);
        free(id);
        return 0;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        MergeLine *p = sa_realloc(m->v, cap * sizeof *p);
        if (!p) {
            free(id);
            return -1;
        }
        m->v = p;
        m->cap = cap;
    }
    const cJSON *ln = cJSON_GetObjectItemCaseSensitive(obj, "line");
    m->v[m->n] = (MergeLine){.text = sa_strndup(line, len), .id = id, .mode = mi,
                             .line = cJSON_IsNumber(ln) ? (long)ln->valuedouble : LONG_MAX, .file = m->file,
                             .file_line = line_no};
    if (!m->v[m->n].text) return -1;
    m->n++;
    m->seen_mode[mi] = 1;
    return 0;
}

/* The expected records, from --in. */
typedef struct {
    const char *path, *field;
    long limit, n;
    char **keys;
    size_t cap;
    SaStrMap seen;
} Expect;

static int expect_line(void *ctx, long line_no, const char *line, size_t len) {
    Expect *x = ctx;
    if (blank(line, len)) return 0;
    if (x->limit > 0 && x->n >= x->limit) return 1;
    SaEvalRecord r;
    if (sa_eval_parse_record(line, len, x->field, line_no, &r)) return 0; /* eval skipped it too */
    int added;
    if (!sa_strmap_put(&x->seen, r.key, line_no, &added)) {
        sa_eval_record_free(&r);
        return -1;
    }
    if (added) {
        if ((size_t)x->n == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 256;
            char **k = sa_realloc(x->keys, cap * sizeof *k);
            if (!k) {
                sa_eval_record_free(&r);
                return -1;
            }
            x->keys = k;
            x->cap = cap;
        }
        x->keys[x->n++] = r.key;
        r.key = NULL;
    }
    sa_eval_record_free(&r);
    return 0;
}

static int order_of[3]; /* mode index -> position in the output order */

static int cmp_merge(const void *a, const void *b) {
    const MergeLine *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return order_of[x->mode] - order_of[y->mode];
}

int sa_cmd_eval_merge(int argc, char **argv) {
    const char *out = NULL, *in = NULL, *field = NULL, *modes_arg = NULL;
    const char **shards = NULL;
    int n_shards = 0, force = 0, rc = 1;
    long limit = 0;
    Merge m = {0};
    Expect x = {0};
    SaBuf tmp = {0}; /* the merged file */
    if (!(shards = sa_calloc((size_t)argc + 1, sizeof *shards))) return sa_die();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            eval_usage(stdout);
            free(shards);
            return 0;
        } else if (!strcmp(a, "--in")) {
            if (!(in = sa_flag_value(argc, argv, &i))) goto out;
        } else if (!strcmp(a, "--field")) {
            if (!(field = sa_flag_value(argc, argv, &i))) goto out;
        } else if (!strcmp(a, "--limit")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_long(a, v, 1, LONG_MAX, &limit)) goto out;
        } else if (!strcmp(a, "--modes")) {
            if (!(modes_arg = sa_flag_value(argc, argv, &i))) goto out;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (a[0] == '-' && a[1]) {
            sa_err("%s: unknown flag for 'eval-merge' (see salign eval --help)", a);
            goto out;
        } else if (!out) {
            out = a;
        } else {
            shards[n_shards++] = a;
        }
    }
    if (!out || !n_shards) {
        sa_err("eval-merge: usage: salign eval-merge OUT.jsonl SHARD.jsonl... [--in DATA.jsonl] [--modes LIST] [--force]");
        goto out;
    }
    for (int i = 0; i < n_shards; i++) /* the same file under any name: it would be replaced */
        if (!strcmp(shards[i], out) || sa_same_file(shards[i], out)) {
            sa_err("%s: the output is also an input shard", out);
            goto out;
        }
    shards[n_shards] = in; /* NULL-terminated inputs for sa_outfile_open */
    if ((field || limit) && !in) {
        sa_err("%s: only with --in", field ? "--field" : "--limit");
        goto out;
    }
    SaAlignMode modes[3];
    int n_modes = 0;
    if (modes_arg && (n_modes = sa_eval_parse_modes("--modes", modes_arg, modes)) < 0) goto out;
    for (int i = 0; i < n_shards; i++) {
        long long torn = -1;
        m.file = shards[i];
        if (sa_read_results(shards[i], merge_line, &m, &torn)) goto out;
        if (torn >= 0) problem(&m, "%s: the last line is incomplete (its run was interrupted: resume it)", shards[i]);
    }
    if (!modes_arg) { /* the modes that appear, in eval's default order */
        static const SaAlignMode canon[3] = {SA_MODE_NONE, SA_MODE_ALIGNER, SA_MODE_STREAM};
        for (int k = 0; k < 3; k++)
            if (m.seen_mode[canon[k]]) modes[n_modes++] = canon[k];
    }
    for (int k = 0; k < 3; k++) order_of[k] = 3;
    for (int k = 0; k < n_modes; k++) order_of[modes[k]] = k;
    for (size_t i = 0; i < m.n; i++)
        if (order_of[m.v[i].mode] == 3) {
            problem(&m, "%s line %ld: mode %s is not in --modes", m.v[i].file, m.v[i].file_line, mode_names[m.v[i].mode]);
            order_of[m.v[i].mode] = 4; /* report each mode once */
        }
    long missing = 0;
    if (in) {
        x.path = in;
        x.field = field;
        x.limit = limit;
        if (sa_read_lines(in, expect_line, &x) < 0) goto out;
        for (long r = 0; r < x.n; r++)
            for (int k = 0; k < n_modes; k++) {
                char *key = sa_eval_pair_key(x.keys[r], mode_names[modes[k]]);
                if (key && !sa_strmap_get(&m.pairs, key)) {
                    problem(&m, "missing (id %.60s, mode %s): in %s but in no shard", x.keys[r], mode_names[modes[k]], in);
                    missing++;
                }
                free(key);
            }
        for (size_t i = 0; i < m.n; i++)
            if (!sa_strmap_get(&x.seen, m.v[i].id))
                problem(&m, "%s line %ld: id %.60s is not a record of %s", m.v[i].file, m.v[i].file_line, m.v[i].id, in);
    } else {
        /* without the input only the ids some shard has can be checked: each needs every mode */
        SaStrMap ids = {0};
        for (size_t i = 0; i < m.n; i++) sa_strmap_put(&ids, m.v[i].id, (long)i, NULL);
        for (size_t j = 0; j < ids.cap; j++) {
            if (!ids.keys[j]) continue;
            for (int k = 0; k < n_modes; k++) {
                char *key = sa_eval_pair_key(ids.keys[j], mode_names[modes[k]]);
                if (key && !sa_strmap_get(&m.pairs, key)) {
                    problem(&m, "missing (id %.60s, mode %s): the id has other modes", ids.keys[j], mode_names[modes[k]]);
                    missing++;
                }
                free(key);
            }
        }
        sa_strmap_free(&ids);
        fprintf(stderr, "salign: eval-merge: without --in, a record missing from every shard cannot be detected\n");
    }
    if (m.problems && !force) {
        sa_err("eval-merge: %ld problem(s) (%ld missing (id, mode) pair(s)); %s not written (--force writes it anyway)",
               m.problems, missing, out);
        goto out;
    }
    /* the order of an unsharded run: input order (its line numbers), then the modes' order */
    if (in) { /* line numbers come from the same input, but ids are authoritative */
        for (size_t i = 0; i < m.n; i++) {
            long *ln = sa_strmap_get(&x.seen, m.v[i].id);
            if (ln) m.v[i].line = *ln;
        }
    }
    qsort(m.v, m.n, sizeof *m.v, cmp_merge);
    /* OUT is either the old file or the whole new one (outfile.h; devices and FIFOs written directly) */
    for (size_t i = 0; i < m.n; i++) {
        sa_buf_append(&tmp, m.v[i].text, strlen(m.v[i].text));
        sa_buf_append(&tmp, "\n", 1);
    }
    SaOutFile of;
    if (sa_outfile_open(&of, out, shards)) goto out;
    if (sa_write_all(of.fd, tmp.data ? tmp.data : "", tmp.len, out)) {
        sa_outfile_abort(&of);
        goto out;
    }
    if (sa_outfile_commit(&of)) goto out;
    fprintf(stderr, "salign: eval-merge: %zu line(s) from %d shard(s) into %s%s\n", m.n, n_shards, out,
            m.problems ? " (--force: with problems)" : "");
    rc = 0;
out:
    if (rc) sa_die();
    sa_buf_free(&tmp);
    for (size_t i = 0; i < m.n; i++) {
        free(m.v[i].text);
        free(m.v[i].id);
    }
    free(m.v);
    sa_strmap_free(&m.pairs);
    for (long i = 0; i < x.n; i++) free(x.keys[i]);
    free(x.keys);
    sa_strmap_free(&x.seen);
    free(shards);
    return rc;
}
