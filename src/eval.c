/* eval.c - salign eval and salign eval-merge (see eval.h). */
#include "eval.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
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
#include "progress.h"
#include "results_file.h"
#include "outfile.h"

/* ---- ids, modes, seeds ------------------------------------------------------------------- */

char *sa_eval_pair_key(const char *id_key, const char *mode) {
    SaBuf b = {0};
    if (sa_buf_printf(&b, "%s\x1f%s", id_key, mode)) return NULL;
    return b.data;
}

char *sa_eval_id_key(const cJSON *id) {
    if (cJSON_IsString(id)) return sa_strdup(id->valuestring);
    if (cJSON_IsNumber(id)) {
        /* integers as integers (cJSON prints 9007199254740991 as 9.00719925474099e+15) */
        if (id->valuedouble == floor(id->valuedouble) && fabs(id->valuedouble) < 9007199254740992.0) {
            char b[32];
            snprintf(b, sizeof b, "%.0f", id->valuedouble);
            return sa_strdup(b);
        }
        return cJSON_PrintUnformatted(id);
    }
    return NULL;
}

int sa_eval_parse_modes(const char *flag, const char *s, SaAlignMode *modes) {
    int n = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ",");
        const int found = sa_mode_from_name(p, len);
        if (found < 0) return sa_err("%s: expected a comma-separated list of none, aligner, stream, got '%s'", flag, s);
        for (int k = 0; k < n; k++)
            if ((int)modes[k] == found) return sa_err("%s: mode '%s' is listed twice", flag, sa_mode_name((SaAlignMode)found));
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
    return splitmix64(splitmix64(seed) ^ sa_fnv1a(id_key)) >> 11;
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

/* A \u0000 escape (the backslash itself not escaped): cJSON would decode it into a C string that
 * ends there, silently cutting the question or a field. */
static int has_nul_escape(const char *s, size_t len) {
    for (size_t i = 0; i + 6 <= len; i++) {
        if (s[i] != '\\' || memcmp(s + i + 1, "u0000", 5)) continue;
        size_t k = 0;
        while (k < i && s[i - 1 - k] == '\\') k++;
        if (k % 2 == 0) return 1;
    }
    return 0;
}

int sa_eval_parse_record(const char *line, size_t len, const char *field, long line_no, SaEvalRecord *r) {
    static const char *auto_fields[] = {"prompt", "question", "problem", "instruction"};
    memset(r, 0, sizeof *r);
    r->line = line_no;
    if (memchr(line, 0, len)) return sa_err("contains a NUL byte");
    if (has_nul_escape(line, len)) return sa_err("contains \\u0000 (a NUL character would cut the text there)");
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
    /* beyond 2^53 a JSON number is read as the nearest double: 12345678901234567 would become
     * ...568, and two ids could collide; refuse rather than change it */
    if (id && cJSON_IsNumber(id) && fabs(id->valuedouble) >= 9007199254740992.0) {
        cJSON_Delete(id);
        cJSON_Delete(o);
        sa_eval_record_free(r);
        return sa_err("\"id\" is a number beyond 2^53, which JSON readers change (write it as a string)");
    }
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

static const char *check_result(const cJSON *o) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!cJSON_IsObject(o) || !(cJSON_IsString(id) || cJSON_IsNumber(id)) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "mode")))
        return "a results line (a JSON object with \"id\" and \"mode\")";
    return NULL;
}

int sa_read_results(const char *path, SaResultFn fn, void *ctx, long long *torn_at) {
    return sa_read_jsonl(path, check_result, fn, ctx, torn_at);
}

/* ---- eval: options ------------------------------------------------------------------------ */

typedef struct {
    SaEngineOpts eo;
    const char *in, *out, *field;
    SaAlignMode modes[3];
    int n_modes, resume, progress; /* progress: -1 auto (bar on a TTY), 0 off, 1 plain lines */
    int force_resume;              /* resume even when the file's settings or questions differ */
    long shard_i, shard_n, limit;
} EvalOpts;

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: salign eval --upstream U.salm [--aligner A.salm] --in DATA.jsonl[.gz] --out RESULTS.jsonl\n"
            "         [--modes none,aligner,stream] [--field NAME] [--resume | --no-resume | --force-resume] [--shard I/N]\n"
            "         [--limit N] [--progress | --no-progress] [align's engine and sampling flags]\n"
            "  Runs every record of DATA in every mode and appends one JSON line per (record, mode) to RESULTS.\n"
            "  The question is the record's prompt, question, problem or instruction (+ input) field, or --field.\n"
            "  An existing RESULTS is resumed (--no-resume starts it over) if its lines were written with the same\n"
            "  models, settings and questions (--force-resume goes on anyway). --seed S (default 0) seeds every\n"
            "  record from S and its id. Default modes: none,aligner,stream with --aligner, else none.\n"
            "       salign eval-merge OUT.jsonl SHARD.jsonl... [--in DATA.jsonl [--field NAME] [--limit N]]\n"
            "         [--modes LIST] [--force]\n"
            "  Merges shard results, failing on missing or duplicated (id, mode) pairs unless --force.\n");
}

/* ---- eval: the run's settings (resume refuses a mix of runs) ------------------------------ */

/* A model file's identity without loading it: size and the crc32 of its first and last MiB (a
 * .salm's first MiB holds its tensor table with every tensor's crc32; a GGUF's its tensor infos). */
static char *file_identity(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static unsigned char buf[1 << 20];
    struct stat st;
    uLong crc = crc32(0L, Z_NULL, 0);
    if (fstat(fileno(f), &st) == 0) {
        size_t n = fread(buf, 1, sizeof buf, f);
        crc = crc32(crc, buf, (uInt)n);
        if (st.st_size > (off_t)(2 * sizeof buf) && fseeko(f, st.st_size - (off_t)sizeof buf, SEEK_SET) == 0) {
            n = fread(buf, 1, sizeof buf, f);
            crc = crc32(crc, buf, (uInt)n);
        }
    }
    fclose(f);
    SaBuf b = {0};
    sa_buf_printf(&b, "%lld bytes, crc %08lx", (long long)st.st_size, (unsigned long)crc);
    return b.data;
}

static void add_sampler(cJSON *o, const char *k, const SaSamplerParams *p) {
    cJSON *s = cJSON_AddObjectToObject(o, k);
    cJSON_AddNumberToObject(s, "temp", p->temp);
    cJSON_AddNumberToObject(s, "top_k", p->top_k);
    cJSON_AddNumberToObject(s, "top_p", p->top_p);
    cJSON_AddNumberToObject(s, "frequency_penalty", p->freq_penalty);
    cJSON_AddNumberToObject(s, "repeat_penalty", p->repeat_penalty);
    cJSON_AddNumberToObject(s, "presence_penalty", p->presence_penalty);
    cJSON_AddNumberToObject(s, "min_p", p->min_p);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    cJSON_AddStringToObject(s, "seed", seed); /* a string: any 64-bit --seed, exactly */
}

static void add_text_hash(cJSON *o, const char *k, const char *text) {
    char h[24];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)sa_fnv1a(text ? text : ""));
    cJSON_AddStringToObject(o, k, text ? h : "default");
}

/* Everything that decides a run's output (not the thread count: outputs do not depend on it), written
 * into every results line; a resumed file must have been written with the same. */
static cJSON *run_settings(const EvalOpts *o) {
    const SaEngineOpts *e = &o->eo;
    const SaAlignParams *ap = &e->ap;
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "salign", SALIGN_VERSION);
    const char *models[2] = {e->upstream, e->aligner};
    for (int k = 0; k < 2; k++) {
        if (!models[k]) continue;
        char *id = file_identity(models[k]);
        cJSON_AddStringToObject(s, k ? "aligner" : "upstream", id ? id : "unreadable");
        free(id);
    }
    add_sampler(s, "upstream_sampling", &ap->up_sp);
    if (e->aligner) add_sampler(s, "aligner_sampling", &ap->al_sp);
    cJSON_AddNumberToObject(s, "max_tokens", ap->max_tokens);
    cJSON_AddNumberToObject(s, "max_answer_tokens", ap->max_answer_tokens);
    cJSON_AddNumberToObject(s, "max_sentences", ap->max_sentences);
    cJSON_AddNumberToObject(s, "max_sentence_tokens", ap->max_sentence_tokens);
    cJSON_AddNumberToObject(s, "max_correction_tokens", ap->max_correction_tokens);
    cJSON_AddStringToObject(s, "splitter", ap->split == SA_SPLIT_SMART ? "smart" : "reference");
    cJSON_AddBoolToObject(s, "speculate", ap->speculate);
    cJSON_AddNumberToObject(s, "n_ctx", e->n_ctx);
    cJSON_AddStringToObject(s, "kv_type", sa_dtype_name(e->kv_type));
    cJSON_AddStringToObject(s, "chat_template", e->chat_tmpl ? e->chat_tmpl : "model's");
    add_text_hash(s, "system", ap->system);
    add_text_hash(s, "aligner_template", e->al_tmpl);
    add_text_hash(s, "aligner_mode_template", e->al_mode_tmpl);
    /* the annotator kind's settings, only when given: files written before them stay resumable */
    if (e->al_system) add_text_hash(s, "aligner_system", e->al_system);
    if (e->al_user) add_text_hash(s, "aligner_user", e->al_user);
    if (e->al_chat_tmpl) cJSON_AddStringToObject(s, "aligner_chat_template", e->al_chat_tmpl);
    if (ap->ignore_aligner_eos) cJSON_AddBoolToObject(s, "ignore_aligner_eos", 1);
    cJSON_AddStringToObject(s, "field", o->field ? o->field : "auto");
    /* as a file's reader will see it (floats through their printed digits), so equal runs compare equal */
    char *text = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    cJSON *n = text ? cJSON_Parse(text) : NULL;
    free(text);
    return n;
}

/* The first setting in which a and b differ, for the message; NULL when equal. */
static const char *settings_diff(const cJSON *a, const cJSON *b) {
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (!y || !cJSON_Compare(x, y, 1)) return x->string;
    }
    cJSON_ArrayForEach(x, b) if (!cJSON_GetObjectItemCaseSensitive(a, x->string)) return x->string;
    return NULL;
}

typedef struct {
    const cJSON *settings;
    const SaStrMap *qhash; /* id key -> the input's question hash */
    const char *out;
    int bad; /* set once a line is refused (the message is in sa_err) */
} ResumeCheck;

static int resume_check_line(void *ctx, long line_no, const char *line, size_t len, cJSON *obj) {
    (void)line;
    (void)len;
    ResumeCheck *c = ctx;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "settings");
    const char *diff = st ? settings_diff(st, c->settings) : "settings";
    if (diff) {
        const cJSON *was = st ? cJSON_GetObjectItemCaseSensitive(st, diff) : NULL;
        const cJSON *now = cJSON_GetObjectItemCaseSensitive(c->settings, diff);
        char *w = was ? cJSON_PrintUnformatted(was) : NULL, *n = now ? cJSON_PrintUnformatted(now) : NULL;
        sa_err("%s: line %ld was written with other settings (%s: %s, now %s); resuming would mix two runs "
               "(--no-resume starts over, --force-resume goes on anyway)",
               c->out, line_no, diff, w ? w : st ? "absent" : "none recorded", n ? n : "absent");
        free(w);
        free(n);
        c->bad = 1;
        return 1;
    }
    char *key = sa_eval_id_key(cJSON_GetObjectItemCaseSensitive(obj, "id"));
    const char *qh = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "question_hash"));
    long *want = key ? sa_strmap_get(c->qhash, key) : NULL;
    char h[24];
    if (want) snprintf(h, sizeof h, "%016llx", (unsigned long long)(uint64_t)*want);
    const int edited = want && (!qh || strcmp(qh, h));
    if (edited)
        sa_err("%s: line %ld (id %.40s): the input's question has changed since it was answered "
               "(--no-resume starts over, --force-resume keeps the old answer)", c->out, line_no, key);
    free(key);
    c->bad = edited;
    return edited;
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

static char *result_key(const cJSON *obj) {
    char *id = sa_eval_id_key(cJSON_GetObjectItemCaseSensitive(obj, "id"));
    char *key = id ? sa_eval_pair_key(id, cJSON_GetObjectItemCaseSensitive(obj, "mode")->valuestring) : NULL;
    free(id);
    return key;
}

/* The engine's output callback: keeps the progress moving during a long answer. */
static void progress_out(void *ctx, SaOutKind kind, const char *text, size_t n) {
    sa_progress_draw(ctx, 0); /* throttled: every 100 ms on a terminal, every 10 s otherwise */
}

/* ---- eval: one run ---------------------------------------------------------------------- */

static void add_int(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

/* The results line of one (record, mode) run: the id and mode first, then the engine's trace
 * (sa_align_trace_json) or the error, token totals, and the record's other fields. */
static char *result_line(const SaEvalRecord *r, SaAlignMode mode, uint64_t up_seed, uint64_t al_seed, const char *error,
                         const SaAlignTrace *tr, const cJSON *settings, long long *tokens) {
    cJSON *o = cJSON_CreateObject();
    if (cJSON_IsNumber(r->id)) cJSON_AddRawToObject(o, "id", r->key); /* the key is the number's exact text */
    else cJSON_AddItemToObject(o, "id", cJSON_Duplicate(r->id, 1));
    cJSON_AddStringToObject(o, "mode", sa_mode_name(mode));
    add_int(o, "line", (double)r->line);
    /* integers as integers: cJSON would print 2890648205219120 as 2.89064820521912e+15, which
     * --upstream-seed rightly refuses */
    cJSON *seeds = cJSON_AddObjectToObject(o, "seeds");
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)up_seed);
    cJSON_AddRawToObject(seeds, "upstream", num);
    if (mode != SA_MODE_NONE) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)al_seed);
        cJSON_AddRawToObject(seeds, "aligner", num);
    }
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
    char qh[24];
    snprintf(qh, sizeof qh, "%016llx", (unsigned long long)sa_fnv1a(r->question));
    cJSON_AddStringToObject(o, "question_hash", qh);
    cJSON_AddItemToObject(o, "settings", cJSON_Duplicate(settings, 1));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) sa_err("out of memory");
    return s;
}

/* SIGINT/SIGTERM/SIGHUP: the run in progress is finished and written (its line is complete or
 * absent either way: one write per line), then eval stops, says how far it got and exits 128 + the
 * signal. A second signal stops at once; resuming then redoes only that run. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig) {
    if (g_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_signal = sig;
    static const char msg[] = "\nsalign: eval: interrupted: finishing the run in progress (again to stop at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

static void catch_signals(int on) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < SA_ARRAY_LEN(sigs); i++) sigaction(sigs[i], &sa, NULL);
    g_signal = 0;
}

static int run_eval(EvalOpts *o) {
    int rc = 1;
    cJSON *settings = NULL;
    InputScan in = {.o = o};
    SaResultsFile done = {.fd = -1};
    SaEngineSet es = {0};
    int have_es = 0;
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
    /* 2. the results file: a resumed one must come from the same settings and questions */
    if (!(settings = run_settings(o))) {
        sa_err("out of memory");
        goto out;
    }
    struct stat ost;
    if (o->resume && !o->force_resume && stat(o->out, &ost) == 0 && ost.st_size > 0) {
        SaStrMap qhash = {0};
        for (size_t i = 0; i < in.n; i++) {
            SaEvalRecord r;
            if (sa_eval_parse_record(in.recs[i].text, strlen(in.recs[i].text), o->field, in.recs[i].line, &r)) continue;
            sa_strmap_put(&qhash, r.key, (long)sa_fnv1a(r.question), NULL);
            sa_eval_record_free(&r);
        }
        ResumeCheck rc_ = {.settings = settings, .qhash = &qhash, .out = o->out};
        long long torn = -1;
        const int rr = sa_read_results(o->out, resume_check_line, &rc_, &torn);
        sa_strmap_free(&qhash);
        if (rr || rc_.bad) goto out;
    }
    const SaResultsSpec spec = {.path = o->out, .input = o->in, .cmd = "eval", .unit = "(id, mode)", .resume = o->resume,
                                .check = check_result, .key = result_key};
    if (sa_results_open(&done, &spec)) goto out;
    long total = 0, already = 0;
    for (size_t i = 0; i < in.n; i++) {
        SaEvalRecord r;
        if (sa_eval_parse_record(in.recs[i].text, strlen(in.recs[i].text), o->field, in.recs[i].line, &r)) goto out;
        for (int k = 0; k < o->n_modes; k++) {
            char *key = sa_eval_pair_key(r.key, sa_mode_name(o->modes[k]));
            if (sa_results_done(&done, key)) already++;
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
    SaProgress pg;
    sa_progress_init(&pg, "eval", "runs", total, o->progress);
    const uint64_t up_seed0 = o->eo.ap.up_sp.seed, al_seed0 = o->eo.ap.al_sp.seed;
    catch_signals(1);
    for (size_t i = 0; i < in.n && !g_signal; i++) {
        SaEvalRecord r;
        if (sa_eval_parse_record(in.recs[i].text, strlen(in.recs[i].text), o->field, in.recs[i].line, &r)) goto out;
        for (int k = 0; k < o->n_modes; k++) {
            const SaAlignMode m = o->modes[k];
            char *key = sa_eval_pair_key(r.key, sa_mode_name(m));
            const int skip = !key || sa_results_done(&done, key);
            free(key);
            if (skip) continue;
            pg.what = sa_mode_name(m);
            pg.id = r.key;
            sa_progress_draw(&pg, 0);
            SaAlignParams ap = es.ap;
            ap.mode = m;
            ap.up_sp.seed = sa_eval_seed(up_seed0, r.key);
            ap.al_sp.seed = sa_eval_seed(al_seed0, r.key);
            ap.out = progress_out;
            ap.out_ctx = &pg;
            /* empty caches: the run must not depend on what ran before it (see eval.h) */
            sa_engine_reset(es.e);
            SaAlignTrace tr;
            sa_err_clear();
            const int failed = sa_align_run(es.e, r.question, &ap, &tr) != 0;
            long long tokens = 0;
            char *line = result_line(&r, m, ap.up_sp.seed, ap.al_sp.seed, failed ? sa_errmsg() : NULL, &tr, settings, &tokens);
            pg.run_ms += tr.total_ms;
            sa_align_trace_free(&tr);
            if (!line) {
                sa_eval_record_free(&r);
                goto out;
            }
            const int wrote = sa_results_append(&done, line, strlen(line));
            free(line);
            if (wrote) {
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
            pg.what = NULL;
            sa_progress_draw(&pg, pg.done == pg.total);
            if (g_signal) break;
        }
        sa_eval_record_free(&r);
    }
    if (g_signal) {
        if (pg.tty && pg.on) fprintf(stderr, "\r\x1b[K");
        fprintf(stderr, "salign: eval: interrupted: %ld of %ld run(s) done; rerun the same command to resume\n", pg.done,
                total);
        rc = 128 + g_signal;
        goto out;
    }
    fprintf(stderr, "salign: eval: %ld run(s) in %.1f s, %.1f tok/s%s; results in %s\n", pg.done,
            (sa_time_ms() - pg.t0) / 1000, pg.run_ms > 0 ? pg.tokens / (pg.run_ms / 1000) : 0.0,
            pg.errors ? " (some failed: see \"error\" in the results)" : "", o->out);
    rc = 0;
out:
    catch_signals(0);
    cJSON_Delete(settings);
    if (rc == 1) sa_die();
    sa_results_close(&done);
    if (have_es) sa_engine_set_close(&es);
    scan_free(&in);
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
        } else if (!strcmp(a, "--force-resume")) {
            o.resume = o.force_resume = 1;
        } else if (!strcmp(a, "--shard")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_parse_shard(a, v, &o.shard_i, &o.shard_n)) goto bad;
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
        if (!strcmp(name, sa_mode_name((SaAlignMode)k))) return k;
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
            problem(&m, "%s line %ld: mode %s is not in --modes", m.v[i].file, m.v[i].file_line, sa_mode_name((SaAlignMode)m.v[i].mode));
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
                char *key = sa_eval_pair_key(x.keys[r], sa_mode_name(modes[k]));
                if (key && !sa_strmap_get(&m.pairs, key)) {
                    problem(&m, "missing (id %.60s, mode %s): in %s but in no shard", x.keys[r], sa_mode_name(modes[k]), in);
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
                char *key = sa_eval_pair_key(ids.keys[j], sa_mode_name(modes[k]));
                if (key && !sa_strmap_get(&m.pairs, key)) {
                    problem(&m, "missing (id %.60s, mode %s): the id has other modes", ids.keys[j], sa_mode_name(modes[k]));
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
