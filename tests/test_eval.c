/* test_eval.c - offline evaluation: record parsing and field detection, bad lines, .jsonl.gz
 * input, resume after kill -9, shards merged equal to one run, eval-merge's checks, the report's
 * diff and statistics, and the CLI's errors. The model runs use stories260K as both upstream and
 * aligner, greedy, with small caps so the whole file takes a few seconds. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../src/common.h"
#include "../src/eval.h"
#include "../src/report.h"
#include "test.h"

#define MODEL "weights/stories260K.salm"
#define EVAL                                                                                                       \
    "bin/salign eval --upstream " MODEL " --aligner " MODEL " --aligner-template plain --temp 0 --max-sentences 3 " \
    "--max-tokens 60 -t 1 --no-progress"

/* ---- helpers ---- */

/* test_tmp() rotates 8 buffers; these tests hold more paths at once. */
static const char *tp(const char *name) {
    static char bufs[64][512];
    static int k;
    char *b = bufs[k++ % 64];
    snprintf(b, sizeof bufs[0], "%s", test_tmp(name));
    return b;
}

typedef struct {
    cJSON **v;
    int n;
    int torn; /* the file does not end with a newline */
} Lines;

static void lines_free(Lines *l) {
    for (int i = 0; i < l->n; i++) cJSON_Delete(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every line of a results file parsed; a line that does not parse is a test failure. */
static Lines load(const char *path) {
    Lines l = {0};
    size_t len = 0;
    char *s = sa_read_file(path, &len);
    if (!s) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return l;
    }
    l.torn = len > 0 && s[len - 1] != '\n';
    char *p = s;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (*p) {
            cJSON *o = cJSON_Parse(p);
            if (!o) test_fail(__FILE__, __LINE__, "%s: line %d is not JSON: %.80s", path, l.n + 1, p);
            l.v = realloc(l.v, (size_t)(l.n + 1) * sizeof *l.v);
            l.v[l.n++] = o;
        }
        if (!nl) break;
        p = nl + 1;
    }
    free(s);
    return l;
}

static const char *sget(const cJSON *o, const char *k) { return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k)); }

/* The (id, mode) key of a results line. */
static char *pair(const cJSON *o) {
    char *id = sa_eval_id_key(cJSON_GetObjectItemCaseSensitive(o, "id"));
    char *k = sa_eval_pair_key(id ? id : "?", sget(o, "mode") ? sget(o, "mode") : "?");
    free(id);
    return k;
}

/* Two results files hold the same runs in the same order: ids, modes, answers, sentences. */
static int same_runs(const char *a, const char *b, char *why, size_t n) {
    Lines x = load(a), y = load(b);
    int ok = 1;
    if (x.n != y.n) {
        snprintf(why, n, "%d vs %d lines", x.n, y.n);
        ok = 0;
    }
    for (int i = 0; ok && i < x.n; i++) {
        char *kx = pair(x.v[i]), *ky = pair(y.v[i]);
        const char *ax = sget(x.v[i], "answer"), *ay = sget(y.v[i], "answer");
        char *sx = cJSON_PrintUnformatted(cJSON_GetObjectItem(x.v[i], "record"));
        char *sy = cJSON_PrintUnformatted(cJSON_GetObjectItem(y.v[i], "record"));
        if (strcmp(kx, ky)) snprintf(why, n, "line %d: %s vs %s", i + 1, kx, ky), ok = 0;
        else if (!ax || !ay || strcmp(ax, ay)) snprintf(why, n, "line %d (%s): answers differ", i + 1, kx), ok = 0;
        else if (strcmp(sx, sy)) snprintf(why, n, "line %d: records differ", i + 1), ok = 0;
        const cJSON *ssx = cJSON_GetObjectItem(x.v[i], "sentences"), *ssy = cJSON_GetObjectItem(y.v[i], "sentences");
        if (ok && cJSON_GetArraySize(ssx) != cJSON_GetArraySize(ssy)) snprintf(why, n, "line %d: sentence counts", i + 1), ok = 0;
        for (int j = 0; ok && j < cJSON_GetArraySize(ssx); j++) {
            const cJSON *p = cJSON_GetArrayItem(ssx, j), *q = cJSON_GetArrayItem(ssy, j);
            if (strcmp(sget(p, "original"), sget(q, "original")) || strcmp(sget(p, "correction"), sget(q, "correction")))
                snprintf(why, n, "line %d: sentence %d differs", i + 1, j + 1), ok = 0;
        }
        free(kx);
        free(ky);
        free(sx);
        free(sy);
    }
    lines_free(&x);
    lines_free(&y);
    return ok;
}

static int count_in(const char *hay, const char *needle) {
    int c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

/* A 20-record input in the scratch folder (ids r0..r19), for the runs that must be long enough
 * to be killed part-way. */
static const char *big_input(void) {
    static const char *starts[] = {"Once upon a time", "Lily went to the park", "Tom had a red ball", "The sun was hot",
                                   "One day, a cat", "Sam and his dog", "The little bird", "A big tree"};
    const char *path = tp("big.jsonl");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 20; i++) fprintf(f, "{\"id\": \"r%d\", \"prompt\": \"%s\", \"n\": %d}\n", i, starts[i % 8], i);
    fclose(f);
    return path;
}

/* An uninterrupted, unsharded run of an input: the reference the other runs must equal. */
static const char *reference(const char *input, const char *name) {
    const char *out = tp(name);
    struct stat st;
    if (stat(out, &st) == 0) return out;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EVAL " --in %s --out %s 2>&1", input, out);
    int status;
    char *log = test_run(cmd, &status);
    if (status) test_fail(__FILE__, __LINE__, "reference run failed: %s", log);
    free(log);
    return out;
}

/* ---- parsing ---- */

TEST(eval_record_field_detection) {
    SaEvalRecord r;
#define PARSE(s, field) sa_eval_parse_record(s, strlen(s), field, 12, &r)
    CHECK(PARSE("{\"prompt\": \"P\", \"question\": \"Q\", \"x\": 1}", NULL) == 0);
    CHECK_EQ_STR(r.question, "P"); /* prompt wins over question */
    CHECK_EQ_STR(r.field, "prompt");
    CHECK_EQ_STR(r.key, "12"); /* no id: the line number */
    CHECK(cJSON_IsNumber(r.id) && r.id->valuedouble == 12);
    CHECK(cJSON_GetObjectItem(r.rest, "question") && cJSON_GetObjectItem(r.rest, "x") && !cJSON_GetObjectItem(r.rest, "prompt"));
    sa_eval_record_free(&r);
    CHECK(PARSE("{\"id\": \"a-1\", \"question\": \"Why?\", \"solution\": \"Because.\"}", NULL) == 0);
    CHECK_EQ_STR(r.question, "Why?");
    CHECK_EQ_STR(r.key, "a-1");
    CHECK_EQ_STR(sget(r.rest, "solution"), "Because.");
    CHECK(!cJSON_GetObjectItem(r.rest, "id"));
    sa_eval_record_free(&r);
    CHECK(PARSE("{\"id\": 7, \"problem\": \"1+1?\"}", NULL) == 0);
    CHECK_EQ_STR(r.field, "problem");
    CHECK_EQ_STR(r.key, "7");
    sa_eval_record_free(&r);
    /* Alpaca: a non-empty input joins the instruction */
    CHECK(PARSE("{\"instruction\": \"Translate\", \"input\": \"Bonjour\", \"output\": \"Hello\"}", NULL) == 0);
    CHECK_EQ_STR(r.question, "Translate\n\nBonjour");
    CHECK(!cJSON_GetObjectItem(r.rest, "input") && cJSON_GetObjectItem(r.rest, "output"));
    sa_eval_record_free(&r);
    CHECK(PARSE("{\"instruction\": \"Say hi\", \"input\": \"\"}", NULL) == 0);
    CHECK_EQ_STR(r.question, "Say hi");
    sa_eval_record_free(&r);
    /* --field names any field; the automatic ones are then ordinary fields */
    CHECK(PARSE("{\"text\": \"T\", \"prompt\": \"P\"}", "text") == 0);
    CHECK_EQ_STR(r.question, "T");
    CHECK_EQ_STR(sget(r.rest, "prompt"), "P");
    sa_eval_record_free(&r);
    /* problems */
    const char *bad[][2] = {
        {"{\"prompt\": \"x\"", "invalid JSON"},
        {"[1]", "not a JSON object"},
        {"{\"prompt\": \"x\"} trailing", "text after"},
        {"{\"title\": \"x\"}", "no question field"},
        {"{\"prompt\": 3}", "not a string"},
        {"{\"prompt\": \" \\n \"}", "empty"},
        {"{\"prompt\": \"x\", \"id\": null}", "neither a string nor a number"},
        {"{\"prompt\": \"x\", \"id\": \"\"}", "\"id\" is empty"},
        {"{\"prompt\": \"\xff\"}", "UTF-8"},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(bad); i++) {
        CHECKF(PARSE(bad[i][0], NULL) != 0, "accepted: %s", bad[i][0]);
        CHECKF(strstr(sa_errmsg(), bad[i][1]), "%s: message '%s' lacks '%s'", bad[i][0], sa_errmsg(), bad[i][1]);
    }
    CHECK(PARSE("{\"prompt\": \"x\"}", "text") != 0 && strstr(sa_errmsg(), "no \"text\" field"));
    CHECK(sa_eval_parse_record("{\"prompt\": \"x\0\"}", 15, NULL, 1, &r) != 0 && strstr(sa_errmsg(), "NUL"));
#undef PARSE
}

TEST(eval_modes_and_seeds) {
    SaAlignMode m[3];
    CHECK_EQ_INT(sa_eval_parse_modes("--modes", "none,aligner,stream", m), 3);
    CHECK(m[0] == SA_MODE_NONE && m[1] == SA_MODE_ALIGNER && m[2] == SA_MODE_STREAM);
    CHECK_EQ_INT(sa_eval_parse_modes("--modes", "stream", m), 1);
    CHECK(sa_eval_parse_modes("--modes", "none,none", m) < 0);
    CHECK(sa_eval_parse_modes("--modes", "none,", m) < 0);
    CHECK(sa_eval_parse_modes("--modes", "fast", m) < 0 && strstr(sa_errmsg(), "--modes:"));
    /* the seed depends on the run's seed and the id only, and fits a JSON double exactly */
    CHECK(sa_eval_seed(0, "a") == sa_eval_seed(0, "a"));
    CHECK(sa_eval_seed(0, "a") != sa_eval_seed(0, "b"));
    CHECK(sa_eval_seed(1, "a") != sa_eval_seed(0, "a"));
    CHECK(sa_eval_seed(~0ull, "zzz") < (1ull << 53));
}

/* ---- the command on real models ---- */

TEST(eval_fields_pass_through) {
    const char *out = reference("tests/data/eval-small.jsonl", "small.jsonl");
    Lines l = load(out);
    CHECK_EQ_INT(l.n, 6 * 3);
    CHECK(!l.torn);
    int seen = 0;
    for (int i = 0; i < l.n; i++) {
        const cJSON *o = l.v[i], *rec = cJSON_GetObjectItem(o, "record");
        const cJSON *id = cJSON_GetObjectItem(o, "id");
        /* every line carries the trace */
        CHECK(sget(o, "answer") && cJSON_IsArray(cJSON_GetObjectItem(o, "sentences")));
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "total_ms")) && cJSON_IsNumber(cJSON_GetObjectItem(o, "first_visible_ms")));
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "upstream_tokens")));
        CHECK(!cJSON_GetObjectItem(o, "error"));
        if (cJSON_IsString(id) && !strcmp(id->valuestring, "q2")) {
            CHECK_EQ_STR(sget(o, "question"), "Lily went to the park");
            CHECK_EQ_STR(sget(o, "field"), "question");
            CHECK_EQ_STR(sget(rec, "solution"), "She played.");
            CHECK_EQ_STR(sget(cJSON_GetObjectItem(rec, "meta"), "source"), "test");
            seen |= 1;
        } else if (cJSON_IsNumber(id) && id->valuedouble == 3) { /* no id: its line number */
            CHECK_EQ_STR(sget(o, "field"), "problem");
            CHECK_EQ_STR(sget(rec, "answer"), "42");
            seen |= 2;
        } else if (cJSON_IsNumber(id) && id->valuedouble == 7) {
            CHECK_EQ_STR(sget(o, "question"), "The dog was happy\n\nIt ran fast");
            CHECK_EQ_STR(sget(rec, "output"), "ok");
            CHECK(!cJSON_GetObjectItem(rec, "input"));
            seen |= 4;
        } else if (cJSON_IsString(id) && !strcmp(id->valuestring, "q5")) {
            CHECK_EQ_STR(sget(o, "question"), "The little bird <b>sang</b> & \"flew\" </td>");
            seen |= 8;
        }
        /* modes in --modes order, each record's lines together */
        static const char *order[] = {"none", "aligner", "stream"};
        CHECK_EQ_STR(sget(o, "mode"), order[i % 3]);
        if (i % 3 == 0 && !strcmp(sget(o, "mode"), "none")) CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "sentences")) == 1);
    }
    CHECK_EQ_INT(seen, 15);
    lines_free(&l);
    /* --limit takes the first records; --field picks another field */
    const char *lim = tp("limit.jsonl");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EVAL " --modes none --limit 2 --field category --in tests/data/eval-small.jsonl --out %s 2>&1", lim);
    int st;
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    l = load(lim);
    CHECK_EQ_INT(l.n, 2);
    if (l.n == 2) CHECK_EQ_STR(sget(l.v[0], "question"), "story");
    /* line 2 has no "category": reported, and --limit counts only records */
    CHECKF(strstr(log, "line 2: no \"category\" field"), "%s", log);
    if (l.n == 2) CHECK_EQ_STR(sget(l.v[1], "question"), "html");
    lines_free(&l);
    free(log);
}

TEST(eval_bad_lines_skipped_with_line_numbers) {
    const char *out = tp("bad.jsonl");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EVAL " --modes none --in tests/data/eval-bad.jsonl --out %s 2>&1", out);
    int st;
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "a bad line must not abort the run: %s", log);
    const char *want[] = {"line 2: invalid JSON", "line 3: invalid JSON", "line 5: no question field", "line 6: \"prompt\" is not a string",
                          "line 7: duplicate id \"a\" (first on line 1)", "line 8: \"prompt\" is empty", "line 9: not a JSON object"};
    for (size_t i = 0; i < SA_ARRAY_LEN(want); i++) CHECKF(strstr(log, want[i]), "missing '%s' in:\n%s", want[i], log);
    CHECK(!strstr(log, "line 4:")); /* a blank line is not an error */
    CHECK(strstr(log, "2 record(s), 7 bad line(s) skipped"));
    Lines l = load(out);
    CHECK_EQ_INT(l.n, 2);
    if (l.n == 2) {
        CHECK_EQ_STR(sget(l.v[0], "id"), "a");
        CHECK_EQ_STR(sget(l.v[1], "id"), "f");
        CHECK_EQ_INT((long)cJSON_GetObjectItem(l.v[1], "line")->valuedouble, 10);
    }
    lines_free(&l);
    free(log);
}

TEST(eval_gzip_input) {
    /* compress the fixture with zlib, run both, compare */
    size_t len;
    char *plain = sa_read_file("tests/data/eval-small.jsonl", &len);
    if (!plain) { CHECK(0); return; }
    const char *gz = tp("small.jsonl.gz");
    gzFile g = gzopen(gz, "wb");
    CHECK(g && gzwrite(g, plain, (unsigned)len) == (int)len);
    gzclose(g);
    const char *a = tp("gz-plain.jsonl"), *b = tp("gz.jsonl");
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, EVAL " --modes none,stream --in tests/data/eval-small.jsonl --out %s 2>&1", a);
    free(test_run(cmd, &st));
    CHECK_EQ_INT(st, 0);
    snprintf(cmd, sizeof cmd, EVAL " --modes none,stream --in %s --out %s 2>&1", gz, b);
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    char why[256] = "";
    CHECKF(same_runs(a, b, why, sizeof why), ".jsonl.gz differs from .jsonl: %s", why);
    /* a truncated gzip file is an error, not a silently shorter dataset */
    const char *cut = tp("cut.jsonl.gz");
    size_t glen;
    char *gzdata = sa_read_file(gz, &glen);
    FILE *f = fopen(cut, "wb");
    fwrite(gzdata, 1, glen / 2, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, EVAL " --modes none --in %s --out %s 2>&1", cut, tp("cut-out.jsonl"));
    log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "salign: ") && strstr(log, "cut.jsonl.gz: ") && strstr(log, "gzip"), "%s", log);
    free(log);
    free(gzdata);
    free(plain);
}

TEST(eval_resume_after_sigkill) {
    const char *in = big_input();
    const char *ref = reference(in, "big-ref.jsonl");
    const char *out = tp("killed.jsonl");
    unlink(out);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        /* test_bin: the binary under test (bin/ or SALIGN_BIN_DIR, e.g. the sanitizer build) */
        execl("/bin/sh", "sh", "-c",
              "exec \"$2\" eval --upstream " MODEL " --aligner " MODEL " --aligner-template plain --temp 0 "
              "--max-sentences 3 --max-tokens 60 -t 1 --no-progress --in \"$0\" --out \"$1\"",
              in, out, test_bin("salign"), (char *)NULL);
        _exit(127);
    }
    /* kill -9 as soon as some lines are in: mid-run, wherever the writer is */
    long lines = 0;
    for (int spin = 0; spin < 20000; spin++) {
        size_t len = 0;
        char *s = sa_read_file(out, &len);
        lines = 0;
        for (size_t i = 0; s && i < len; i++) lines += s[i] == '\n';
        free(s);
        if (lines >= 4) break;
        usleep(500);
    }
    kill(pid, SIGKILL);
    int ws;
    waitpid(pid, &ws, 0);
    CHECKF(WIFSIGNALED(ws), "the child ended before the kill");
    Lines k = load(out);
    CHECKF(k.n > 0 && k.n < 60, "killed run wrote %d lines of 60", k.n);
    lines_free(&k);
    /* (a line torn by a real kill mid-write: tests/test_eval_kill.c) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EVAL " --in %s --out %s 2>&1", in, out);
    int st;
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    Lines l = load(out);
    CHECK(!l.torn);
    CHECK_EQ_INT(l.n, 60);
    SaStrMap seen = {0};
    for (int i = 0; i < l.n; i++) {
        char *p = pair(l.v[i]);
        int added;
        sa_strmap_put(&seen, p, i, &added);
        CHECKF(added, "(id, mode) twice: %s", p);
        free(p);
    }
    CHECK_EQ_INT(seen.n, 60);
    sa_strmap_free(&seen);
    /* the same runs as the uninterrupted one (greedy; resumed lines follow the earlier ones) */
    Lines r = load(ref);
    int diff = 0;
    for (int i = 0; i < r.n; i++) {
        char *p = pair(r.v[i]);
        int found = 0;
        for (int j = 0; j < l.n; j++) {
            char *q = pair(l.v[j]);
            if (!strcmp(p, q)) {
                found = 1;
                diff += strcmp(sget(r.v[i], "answer"), sget(l.v[j], "answer")) != 0;
            }
            free(q);
        }
        CHECKF(found, "missing %s", p);
        free(p);
    }
    CHECK_EQ_INT(diff, 0);
    lines_free(&r);
    lines_free(&l);
    /* resuming a complete file does nothing */
    size_t before, after;
    free(sa_read_file(out, &before));
    log = test_run(cmd, &st);
    CHECKF(st == 0 && strstr(log, "nothing to do"), "%s", log);
    free(log);
    free(sa_read_file(out, &after));
    CHECK_EQ_INT(before, after);
    /* --no-resume starts over */
    snprintf(cmd, sizeof cmd, EVAL " --modes none --limit 1 --no-resume --in %s --out %s 2>&1", in, out);
    free(test_run(cmd, &st));
    l = load(out);
    CHECK_EQ_INT(l.n, 1);
    lines_free(&l);
}

TEST(eval_output_is_locked) {
    const char *out = tp("locked.jsonl");
    int fd = open(out, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, EVAL " --modes none --in tests/data/eval-small.jsonl --out %s 2>&1", out);
    int st;
    char *log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "in use by another salign eval"), "%s", log);
    free(log);
    close(fd);
}

static int run_shards(const char *in, const char *prefix, int n) {
    for (int i = 0; i < n; i++) {
        char cmd[1024], name[64];
        snprintf(name, sizeof name, "%s-%d.jsonl", prefix, i);
        snprintf(cmd, sizeof cmd, EVAL " --shard %d/%d --in %s --out %s 2>&1", i, n, in, tp(name));
        int st;
        char *log = test_run(cmd, &st);
        if (st) test_fail(__FILE__, __LINE__, "shard %d/%d: %s", i, n, log);
        free(log);
        if (st) return -1;
    }
    return 0;
}

TEST(eval_shards_merge_to_the_unsharded_run) {
    const char *in = "tests/data/eval-small.jsonl";
    const char *ref = reference(in, "small.jsonl");
    if (run_shards(in, "shard", 4)) return;
    /* shard i holds records i, i+4, ... */
    Lines s1 = load(tp("shard-1.jsonl"));
    CHECK_EQ_INT(s1.n, 2 * 3);
    if (s1.n == 6) {
        CHECK_EQ_STR(sget(s1.v[0], "id"), "q2");
        CHECK_EQ_STR(sget(s1.v[3], "id"), "q6");
    }
    lines_free(&s1);
    const char *merged = tp("merged.jsonl"), *merged2 = tp("merged2.jsonl");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s --in %s 2>&1", merged, tp("shard-2.jsonl"),
             tp("shard-0.jsonl"), tp("shard-3.jsonl"), tp("shard-1.jsonl"), in);
    int st;
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    char why[256] = "";
    CHECKF(same_runs(ref, merged, why, sizeof why), "merged shards differ from the unsharded run: %s", why);
    /* without --in the order comes from the lines' "line" fields */
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s 2>&1", merged2, tp("shard-3.jsonl"),
             tp("shard-1.jsonl"), tp("shard-0.jsonl"), tp("shard-2.jsonl"));
    log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    CHECKF(same_runs(ref, merged2, why, sizeof why), "merge without --in: %s", why);
}

/* Copy a file leaving out line `drop` (1-based; 0 = none) and repeating line `dup` at the end. */
static void copy_lines(const char *from, const char *to, int drop, int dup) {
    size_t len;
    char *s = sa_read_file(from, &len);
    FILE *f = fopen(to, "wb");
    int n = 0;
    char *dupline = NULL;
    for (char *p = s; p && *p;) {
        char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p + 1) : strlen(p);
        n++;
        if (n != drop) fwrite(p, 1, l, f);
        if (n == dup) dupline = sa_strndup(p, l);
        p += l;
    }
    if (dupline) fputs(dupline, f);
    fclose(f);
    free(dupline);
    free(s);
}

TEST(eval_merge_detects_missing_and_duplicates) {
    const char *in = "tests/data/eval-small.jsonl";
    struct stat sb;
    if (stat(tp("shard-3.jsonl"), &sb) && run_shards(in, "shard", 4)) return;
    const char *s0 = tp("shard-0.jsonl"), *s1 = tp("shard-1.jsonl"), *s2 = tp("shard-2.jsonl"),
               *s3 = tp("shard-3.jsonl");
    const char *bad1 = tp("shard-1-missing.jsonl"), *bad2 = tp("shard-2-dup.jsonl");
    copy_lines(s1, bad1, 2, 0); /* q2's aligner line lost */
    copy_lines(s2, bad2, 0, 1); /* line 3's first run twice */
    const char *out = tp("merge-bad.jsonl");
    unlink(out);
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s --in %s 2>&1", out, s0, bad1, s2, s3, in);
    char *log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "missing (id q2, mode aligner)"), "%s", log);
    CHECKF(strstr(log, "salign: eval-merge: 1 problem(s)"), "%s", log);
    free(log);
    CHECK(access(out, F_OK) != 0); /* nothing written */
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s --in %s 2>&1", out, s0, s1, bad2, s3, in);
    log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "duplicate (id 3, mode none)"), "%s", log);
    free(log);
    CHECK(access(out, F_OK) != 0);
    /* a whole shard forgotten: only --in can tell */
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s --in %s 2>&1", out, s0, s1, s2, in);
    log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "missing (id 7, mode none)") && strstr(log, "3 missing"), "%s", log);
    free(log);
    /* without --in, an id lacking a mode is still found */
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s 2>&1", out, s0, bad1, s2, s3);
    log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "missing (id q2, mode aligner)"), "%s", log);
    free(log);
    /* --force writes what there is, the first of a duplicate */
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s --in %s --force 2>&1", out, s0, s1, bad2, s3, in);
    log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    Lines l = load(out);
    CHECK_EQ_INT(l.n, 18);
    lines_free(&l);
    /* a shard whose last line is torn is reported */
    const char *torn = tp("shard-torn.jsonl");
    copy_lines(s3, torn, 0, 0);
    FILE *f = fopen(torn, "ab");
    fputs("{\"id\":", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s %s %s %s --in %s 2>&1", tp("m3.jsonl"), s0, s1, s2, torn, in);
    log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(log, "shard-torn.jsonl: the last line is incomplete"), "%s", log);
    free(log);
}

TEST(eval_cli_errors) {
    struct {
        const char *args, *want;
    } cases[] = {
        {"--upstream " MODEL " --out x.jsonl", "salign: --in: "},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl", "salign: --out: "},
        {"--in tests/data/eval-small.jsonl --out OUT", "salign: --upstream: "},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out OUT --shard 4/4", "salign: --shard: "},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out OUT --shard 1", "salign: --shard: "},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out OUT --modes none,fast", "salign: --modes: "},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out OUT --modes stream", "salign: --aligner: "},
        {"--upstream " MODEL " --in tests/data/nonexistent.jsonl --out OUT", "salign: tests/data/nonexistent.jsonl: cannot open"},
        {"--upstream " MODEL " --in tests/data --out OUT", "salign: tests/data: is a directory"},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out OUT --limit 0", "salign: --limit: "},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out OUT --bogus", "salign: --bogus: unknown flag"},
        {"--upstream " MODEL " --in tests/data/eval-small.jsonl --out tests/data/eval-small.jsonl --no-resume",
         "salign: tests/data/eval-small.jsonl: the results file is the input file"},
    };
    const char *out = tp("never.jsonl");
    for (size_t i = 0; i < SA_ARRAY_LEN(cases); i++) {
        char args[1024], cmd[1200];
        snprintf(args, sizeof args, "%s", cases[i].args);
        char *o = strstr(args, "OUT");
        if (o) { /* substitute the scratch path */
            char tail[1024];
            snprintf(tail, sizeof tail, "%s", o + 3);
            snprintf(o, sizeof args - (size_t)(o - args), "%s%s", out, tail);
        }
        snprintf(cmd, sizeof cmd, "bin/salign eval %s 2>&1 >/dev/null", args);
        int st;
        char *log = test_run(cmd, &st);
        CHECKF(st == 1, "%s: status %d", args, st);
        CHECKF(!strncmp(log, cases[i].want, strlen(cases[i].want)) && count_in(log, "\n") == 1, "%s:\n%s", args, log);
        free(log);
        CHECKF(access(out, F_OK) != 0, "%s: created the results file", args);
    }
    int st;
    /* an input without a single record */
    FILE *f = fopen(tp("empty.jsonl"), "w");
    fputs("\n\n", f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/salign eval --upstream " MODEL " --in %s --out %s 2>&1", tp("empty.jsonl"), out);
    char *log = test_run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "empty.jsonl: no records with a question") && count_in(log, "\n") == 1, "%s", log);
    free(log);
    CHECK(access(out, F_OK) != 0);
    log = test_run("bin/salign eval-merge 2>&1", &st);
    CHECK(st == 1 && !strncmp(log, "salign: eval-merge: usage", 25));
    free(log);
    log = test_run("bin/salign report 2>&1", &st);
    CHECK(st == 1 && !strncmp(log, "salign: report: ", 16));
    free(log);
    log = test_run("bin/salign report tests/data/corpus.json 2>&1", &st);
    CHECKF(st == 1 && strstr(log, "tests/data/corpus.json: line 1: not a results line"), "%s", log);
    free(log);
    log = test_run("bin/salign eval --help", &st);
    CHECK(st == 0 && strstr(log, "usage: salign eval"));
    free(log);
}

/* ---- report ---- */

TEST(report_word_diff) {
    CHECK_EQ_INT(sa_word_edit_distance("the cat sat", "the cat sat"), 0);
    CHECK_EQ_INT(sa_word_edit_distance("the cat sat", "the dog sat"), 1);
    CHECK_EQ_INT(sa_word_edit_distance("", "two words"), 2);
    CHECK_EQ_INT(sa_word_edit_distance("a b", "b a"), 2);
    CHECK_EQ_INT(sa_word_edit_distance("a  b\n", " a b"), 0); /* whitespace is not a word */
    CHECK_EQ_INT(sa_word_edit_distance("x a b c d", "a b c d y"), 2);
    SaBuf l = {0}, r = {0};
    CHECK(sa_word_diff_html("the cat sat down", "the dog sat", &l, &r) == 0);
    CHECK_EQ_STR(l.data, "the <del>cat</del> sat <del>down</del>");
    CHECK_EQ_STR(r.data, "the <ins>dog</ins> sat");
    sa_buf_free(&l);
    sa_buf_free(&r);
    CHECK(sa_word_diff_html("keep <b>x</b> & y", "keep <i>z</i> & y", &l, &r) == 0);
    CHECK_EQ_STR(l.data, "keep <del>&lt;b&gt;x&lt;/b&gt;</del> &amp; y");
    CHECK_EQ_STR(r.data, "keep <ins>&lt;i&gt;z&lt;/i&gt;</ins> &amp; y");
    sa_buf_free(&l);
    sa_buf_free(&r);
    CHECK(sa_word_diff_html("one two three", "", &l, &r) == 0);
    CHECK_EQ_STR(l.data, "<del>one two three</del>");
    CHECK(r.data == NULL || r.data[0] == 0);
    sa_buf_free(&l);
    sa_buf_free(&r);
    SaBuf e = {0};
    sa_html_escape(&e, "a'\"<>&b", 7);
    CHECK_EQ_STR(e.data, "a&#39;&quot;&lt;&gt;&amp;b");
    sa_buf_free(&e);
}

TEST(report_html_and_markdown) {
    const char *res = reference("tests/data/eval-small.jsonl", "small.jsonl");
    const char *html = tp("report.html");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/salign report %s -o %s 2>&1", res, html);
    int st;
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    size_t len;
    char *h = sa_read_file(html, &len);
    if (!h) { CHECK(0); return; }
    CHECK(!strncmp(h, "<!DOCTYPE html>", 15));
    CHECK(strstr(h, "<table class=\"summary\""));
    CHECK_EQ_INT(count_in(h, "<span class=\"badge m-"), 3 + 3 + 6 * 3); /* summary rows, stop-reason rows, each run */
    CHECK(strstr(h, "id=\"stops\"") && strstr(h, "Run settings") && strstr(h, "&quot;max_tokens&quot;"));
    CHECK(strstr(h, "<svg") && strstr(h, "</svg>"));
    CHECK(strstr(h, "<del>") && strstr(h, "<ins>"));
    CHECK(strstr(h, "The little bird &lt;b&gt;sang&lt;/b&gt; &amp; &quot;flew&quot; &lt;/td&gt;"));
    CHECK(!strstr(h, "<b>sang"));
    CHECK(!strstr(h, "<script") && !strstr(h, "src="));
    for (const char *a = strstr(h, "href="); a; a = strstr(a + 1, "href=")) /* only links within the page */
        CHECKF(!strncmp(a, "href=\"#rec-", 11), "a link out of the page: %.60s", a);
    CHECK(strstr(h, "Content-Security-Policy"));
    CHECK_EQ_INT(count_in(h, "<section class=\"rec\""), 6);
    free(h);
    /* markdown to stdout */
    snprintf(cmd, sizeof cmd, "bin/salign report %s --format md 2>/dev/null", res);
    char *md = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(md, "| mode | answers |") && strstr(md, "| none | 6 | 0 |") && strstr(md, "| stream | 6 | 0 |"));
    CHECK(strstr(md, "| aligner | 6 | 0 |"));
    free(md);
    /* a run still being written (torn last line) is reported on, not refused */
    const char *partial = tp("partial.jsonl");
    copy_lines(res, partial, 0, 0);
    FILE *f = fopen(partial, "ab");
    fputs("{\"id\": \"q9\", \"mo", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "bin/salign report %s --format md 2>&1", partial);
    log = test_run(cmd, &st);
    CHECKF(st == 0 && strstr(log, "incomplete last line") && strstr(log, "| stream | 6 |"), "%s", log);
    free(log);
}

TEST(report_statistics) {
    /* hand-written results: exact numbers */
    const char *p = tp("stats.jsonl");
    FILE *f = fopen(p, "w");
    fputs("{\"id\":\"a\",\"mode\":\"stream\",\"question\":\"Q\",\"answer\":\"x\",\"total_ms\":100,\"first_visible_ms\":10,"
          "\"upstream_tokens\":30,\"aligner_tokens\":20,\"sentences\":[{\"original\":\"a b c\",\"correction\":\"a b c\"},"
          "{\"original\":\"d e\",\"correction\":\"d f g\"}]}\n"
          "{\"id\":\"b\",\"mode\":\"stream\",\"question\":\"Q\",\"answer\":\"x\",\"total_ms\":300,\"first_visible_ms\":30,"
          "\"upstream_tokens\":100,\"aligner_tokens\":50,\"sentences\":[{\"original\":\"h\",\"correction\":\"i\"}]}\n"
          "{\"id\":\"c\",\"mode\":\"stream\",\"question\":\"Q\",\"error\":\"context full\"}\n",
          f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bin/salign report %s --format md 2>&1", p);
    int st;
    char *md = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    /* answers 2, errors 1; latency mean 200, p50 200, p95 290; ttft mean 20, p50 20; edited 2 of 3
     * sentences; distances 0, 2, 1 -> 1.00; tokens 200 in 0.4 s = 500/s */
    /* answers of one word each; tokens 130 upstream, 70 aligner */
    CHECKF(strstr(md, "| stream | 2 | 1 | 200 ms | 200 ms | 290 ms | 20 ms | 20 ms | 66.7% (2/3) | 1.00 | 500.0 | 1.0 | 130 / 70 |"), "%s", md);
    free(md);
}

/* Writers write into what is not a regular file and never replace it, refuse a directory and
 * refuse an output that is their own input (#20 items 1 and 4). A symlink to /dev/null stands for a
 * device node (no root needed: renaming over it would leave a regular file where the link was). */
TEST(writers_keep_devices_fifos_and_inputs) {
    const char *res = reference("tests/data/eval-small.jsonl", "small.jsonl");
    char gguf[512];
    snprintf(gguf, sizeof gguf, "%s/stories260K.gguf", test_models_dir());
    const char *dev = tp("devnull-link"), *fifo = tp("report.fifo"), *got = tp("fifo-got.html"), *dir = tp("outdir");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s && ln -s /dev/null %s && mkfifo %s && mkdir %s", dev, fifo, dir, dev, fifo, dir);
    free(test_run(cmd, &st));
    CHECK_EQ_INT(st, 0);
    const char *writers[] = {
        "bin/salign-quantize %3$s %1$s --type f32 -q 2>&1",
        "bin/salign report %2$s -o %1$s 2>&1",
        "bin/salign eval-merge %1$s %2$s 2>&1",
    };
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, writers[i], dev, res, gguf);
        char *log = test_run(cmd, &st);
        CHECKF(st == 0, "%s: %s", cmd, log);
        free(log);
        struct stat ls, ds;
        CHECKF(lstat(dev, &ls) == 0 && S_ISLNK(ls.st_mode), "%s replaced the symlink to /dev/null", cmd);
        CHECK(stat("/dev/null", &ds) == 0 && S_ISCHR(ds.st_mode));
        /* a directory: one line naming it */
        snprintf(cmd, sizeof cmd, writers[i], dir, res, gguf);
        log = test_run(cmd, &st);
        char want[600];
        snprintf(want, sizeof want, ": %s: is a directory\n", dir);
        CHECKF(st == 1 && strstr(log, want), "%s: want a line saying it is a directory, got (%d) %s", cmd, st, log);
        free(log);
    }
    /* a FIFO is written into, read on the other side */
    snprintf(cmd, sizeof cmd, "cat %s > %s & bin/salign report %s -o %s 2>&1; wait", fifo, got, res, fifo);
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "report into a FIFO: %s", log);
    free(log);
    struct stat fs;
    CHECK(lstat(fifo, &fs) == 0 && S_ISFIFO(fs.st_mode));
    size_t n = 0;
    char *html = sa_read_file(got, &n);
    CHECKF(html && n > 100 && strstr(html, "</html>"), "the FIFO's reader got %zu bytes", n);
    free(html);
    /* the report onto its own results, under another name too: refused, results intact */
    size_t n0 = 0, n1 = 0;
    char *before = sa_read_file(res, &n0);
    const char *alias = tp("alias.jsonl");
    snprintf(cmd, sizeof cmd, "rm -f %s && ln %s %s", alias, res, alias);
    free(test_run(cmd, &st));
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "bin/salign report %s -o %s 2>&1", res, k ? alias : res);
        log = test_run(cmd, &st);
        CHECKF(st != 0 && strstr(log, "input"), "report onto its input: (%d) %s", st, log);
        free(log);
    }
    snprintf(cmd, sizeof cmd, "bin/salign eval-merge %s %s 2>&1", alias, res);
    log = test_run(cmd, &st);
    CHECKF(st != 0 && strstr(log, "also an input"), "eval-merge onto its shard: (%d) %s", st, log);
    free(log);
    char *after = sa_read_file(res, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
}

/* A correction cut by --max-correction-tokens is flagged per sentence in the trace and shown in the
 * report; uncut ones are not (#20 item 8). */
TEST(correction_truncation_flagged) {
    const char *res = tp("cut.jsonl"), *html = tp("cut.html");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "rm -f %s; " EVAL " --modes stream --in tests/data/eval-small.jsonl --out %s --max-correction-tokens 2 2>&1", res, res);
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    Lines l = load(res);
    int cut = 0, sentences = 0;
    for (int i = 0; i < l.n; i++) {
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(l.v[i], "sentences"), *it;
        cJSON_ArrayForEach(it, ss) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "correction_truncated");
            CHECK(cJSON_IsBool(t));
            sentences++;
            cut += cJSON_IsTrue(t);
        }
    }
    CHECKF(sentences > 0 && cut == sentences, "%d of %d two-token corrections flagged", cut, sentences);
    lines_free(&l);
    snprintf(cmd, sizeof cmd, "bin/salign report %s -o %s 2>&1", res, html);
    free(test_run(cmd, &st));
    char *h = sa_read_file(html, NULL);
    CHECK(h && strstr(h, "cut at the token cap"));
    free(h);
    /* the demo aligner ends its corrections itself: none flagged */
    log = test_run("bin/salign align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm "
                   "-p 'Jill loved to draw pictures.' --max-tokens 100 --temp 0 --json 2>/dev/null", &st);
    cJSON *j = cJSON_Parse(log);
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "sentences")) {
        CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(it, "correction_truncated")));
        n++;
    }
    CHECKF(n > 0, "no sentences in: %s", log);
    cJSON_Delete(j);
    free(log);
}

/* A run the context cuts off before it produced anything is an error in every mode alike: eval
 * records "error" lines, align exits 1 with one line (#20 item 3). */
TEST(context_too_small_is_an_error_in_every_mode) {
    const char *res = tp("c60.jsonl");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "rm -f %s; bin/salign eval --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm "
                              "--in tests/data/eval-small.jsonl --out %s --temp 0 --max-tokens 40 -c 60 --no-progress 2>&1", res, res);
    free(test_run(cmd, &st));
    Lines l = load(res);
    int stream = 0, errors = 0;
    for (int i = 0; i < l.n; i++) {
        const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l.v[i], "mode"));
        if (!mode || strcmp(mode, "none") == 0) continue; /* the upstream alone fits in 60 */
        stream += !strcmp(mode, "stream");
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l.v[i], "error"));
        errors += err && strstr(err, "context full");
    }
    CHECKF(stream == 6 && errors == 12, "%d stream lines, %d of 12 aligner/stream lines are context-full errors", stream, errors);
    lines_free(&l);
    const char *modes[] = {"stream", "aligner", "none"};
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd, "bin/salign align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm "
                                  "-p 'Jill loved to draw pictures.' --mode %s -c %d 2>&1 >/dev/null | grep -v '^salign: loaded\\|^salign: seed'",
                 modes[k], k == 2 ? 8 : 40);
        char *log = test_run(cmd, &st);
        CHECKF(strstr(log, "context full") && strchr(log, '\n') == log + strlen(log) - 1, "align --mode %s: %s", modes[k], log);
        free(log);
        snprintf(cmd, sizeof cmd, "bin/salign align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm "
                                  "-p 'Jill loved to draw pictures.' --mode %s -c %d >/dev/null 2>&1", modes[k], k == 2 ? 8 : 40);
        free(test_run(cmd, &st));
        CHECKF(st == 1, "align --mode %s with a context too small: exit %d", modes[k], st);
    }
}

/* Data is kept as written or refused: \u0000 would cut a C string, ids beyond 2^53 would change,
 * seeds are written as integers (#20 item 6). */
TEST(eval_data_never_silently_altered) {
    SaEvalRecord r;
    const char *nul = "{\"question\": \"Once\\u0000upon\"}";
    CHECK(sa_eval_parse_record(nul, strlen(nul), NULL, 1, &r) == -1 && strstr(sa_errmsg(), "u0000"));
    const char *lit = "{\"question\": \"a \\\\u0000 b\"}"; /* an escaped backslash: the text \u0000 itself */
    CHECKF(sa_eval_parse_record(lit, strlen(lit), NULL, 1, &r) == 0, "%s", sa_errmsg());
    CHECK_EQ_STR(r.question, "a \\u0000 b");
    sa_eval_record_free(&r);
    const char *big = "{\"id\": 12345678901234567, \"question\": \"Q\"}";
    CHECK(sa_eval_parse_record(big, strlen(big), NULL, 1, &r) == -1 && strstr(sa_errmsg(), "2^53"));
    const char *ok = "{\"id\": 9007199254740991, \"question\": \"Q\"}";
    CHECKF(sa_eval_parse_record(ok, strlen(ok), NULL, 1, &r) == 0, "%s", sa_errmsg());
    CHECK_EQ_STR(r.key, "9007199254740991");
    sa_eval_record_free(&r);
    /* seeds: pick ids whose derived seed ends in 0 (cJSON's %1.15g would print those in exponent form) */
    const char *in = tp("seed-ids.jsonl"), *res = tp("seed-ids-out.jsonl");
    FILE *f = fopen(in, "w");
    CHECK(f != NULL);
    if (!f) return;
    int zeros = 0;
    for (int i = 0; i < 200 && zeros < 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        if (sa_eval_seed(0, id) % 10 == 0) {
            fprintf(f, "{\"id\": \"%s\", \"question\": \"Once upon a time\"}\n", id);
            zeros++;
        }
    }
    fclose(f);
    CHECK_EQ_INT(zeros, 2);
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "rm -f %s; bin/salign eval --upstream " MODEL " --in %s --out %s --modes none --max-tokens 4 --no-progress 2>&1",
             res, in, res);
    free(test_run(cmd, &st));
    char *out = sa_read_file(res, NULL);
    CHECK(out != NULL);
    for (const char *p = out ? strstr(out, "\"seeds\":{\"upstream\":") : NULL; p; p = strstr(p + 1, "\"seeds\":{\"upstream\":")) {
        const char *v = p + strlen("\"seeds\":{\"upstream\":");
        size_t digits = strspn(v, "0123456789");
        CHECKF(digits > 0 && (v[digits] == ',' || v[digits] == '}'), "seed not an integer: %.40s", v);
    }
    free(out);
}

/* SIGINT/SIGTERM/SIGHUP: the run in progress is written whole, eval says how far it got and exits
 * 128 + the signal; rerunning resumes to what an uninterrupted run writes (#20 CLI). */
TEST(eval_signals_finish_the_line_and_resume) {
    const char *in = tp("sig-in.jsonl"), *res = tp("sig.jsonl"), *ref = tp("sig-ref.jsonl"), *err = tp("sig-err.txt");
    FILE *f = fopen(in, "w");
    CHECK(f != NULL);
    if (!f) return;
    /* 16 records x 3 modes: enough that a signal after the first line leaves work to resume (the run
     * takes ~3 s here); 60 records made this the slowest unit test (72 s of make test's budget) */
    for (int i = 0; i < 16; i++) fprintf(f, "{\"id\": \"r%d\", \"question\": \"Once upon a time %d\"}\n", i, i);
    fclose(f);
    const char *sigs[] = {"INT", "TERM", "HUP"};
    const int codes[] = {130, 143, 129};
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "rm -f %s; " EVAL " --in %s --out %s --max-tokens 120 2>/dev/null", ref, in, ref);
    free(test_run(cmd, &st));
    char *want = sa_read_file(ref, NULL);
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd,
                 "rm -f %s; " EVAL " --in %s --out %s --max-tokens 120 2>%s & pid=$!; "
                 "while [ ! -s %s ]; do sleep 0.01; done; kill -%s $pid; wait $pid; echo $?",
                 res, in, res, err, res, sigs[k]);
        char *code = test_run(cmd, &st);
        char *e = sa_read_file(err, NULL);
        CHECKF(atoi(code) == codes[k], "SIG%s: exit %s", sigs[k], code);
        CHECKF(e && strstr(e, "interrupted: ") && strstr(e, "rerun the same command to resume"), "SIG%s: %s", sigs[k], e ? e : "");
        free(code);
        free(e);
        Lines l = load(res); /* every line parses: none torn */
        CHECKF(l.n > 0 && l.n < 48 && !l.torn, "SIG%s: %d lines, torn %d", sigs[k], l.n, l.torn);
        lines_free(&l);
        snprintf(cmd, sizeof cmd, EVAL " --in %s --out %s --max-tokens 120 2>/dev/null", in, res);
        free(test_run(cmd, &st));
        char *got = sa_read_file(res, NULL);
        /* timings differ between runs: compare line counts and ids/answers through the loader */
        Lines a = load(res), b = load(ref);
        CHECK_EQ_INT(a.n, b.n);
        for (int i = 0; i < a.n && i < b.n; i++) {
            const char *x = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a.v[i], "answer"));
            const char *y = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b.v[i], "answer"));
            CHECKF(x && y && !strcmp(x, y), "line %d differs after resume", i + 1);
        }
        lines_free(&a);
        lines_free(&b);
        free(got);
    }
    free(want);
}

/* Resuming into a file written with other settings, other models or an edited question is refused
 * with what differs; --force-resume goes on anyway (#20 item 5). */
TEST(eval_resume_refuses_a_mix_of_runs) {
    const char *in = tp("mix-in.jsonl"), *res = tp("mix.jsonl");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "head -n 3 tests/data/eval-small.jsonl > %s; rm -f %s; " EVAL " --modes none --in %s --out %s 2>&1",
             in, res, in, res);
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    /* the same command resumes (nothing to do) */
    snprintf(cmd, sizeof cmd, EVAL " --modes none --in %s --out %s 2>&1", in, res);
    log = test_run(cmd, &st);
    CHECKF(st == 0 && strstr(log, "nothing to do"), "same settings: %s", log);
    free(log);
    struct {
        const char *extra, *what;
    } diff[] = {
        {"--temp 0.5", "upstream_sampling"},
        {"--max-tokens 61", "max_tokens"},
        {"--upstream weights/demo-aligner.salm", "upstream"},
        {"--seed 9", "upstream_sampling"},
    };
    for (size_t k = 0; k < sizeof diff / sizeof diff[0]; k++) {
        snprintf(cmd, sizeof cmd, EVAL " --modes none --in %s --out %s %s 2>&1", in, res, diff[k].extra);
        log = test_run(cmd, &st);
        char want[128];
        snprintf(want, sizeof want, "was written with other settings (%s:", diff[k].what);
        CHECKF(st == 1 && strstr(log, want), "%s: (%d) %s", diff[k].extra, st, log);
        free(log);
    }
    /* an edited question */
    snprintf(cmd, sizeof cmd, "sed -i '1s/\"Once upon a time\"/\"Once upon a day\"/' %s && " EVAL " --modes none --in %s --out %s 2>&1",
             in, in, res);
    log = test_run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "question has changed"), "edited question: (%d) %s", st, log);
    free(log);
    snprintf(cmd, sizeof cmd, EVAL " --modes none --in %s --out %s --force-resume --temp 0.5 2>&1", in, res);
    log = test_run(cmd, &st);
    CHECKF(st == 0, "--force-resume: (%d) %s", st, log);
    free(log);
}

/* The report labels an empty correction "deleted", folds long questions, counts empty answers and
 * stop reasons per mode (#20 report). */
TEST(report_deleted_folded_and_stops) {
    const char *res = tp("hand.jsonl"), *html = tp("hand.html");
    FILE *f = fopen(res, "w");
    CHECK(f != NULL);
    if (!f) return;
    char q[700];
    memset(q, 'q', 600);
    q[600] = 0;
    fprintf(f, "{\"id\":\"a\",\"mode\":\"stream\",\"question\":\"%s\",\"answer\":\"\",\"stop\":\"max tokens\","
               "\"sentences\":[{\"original\":\"Bad words.\",\"correction\":\"\"}],\"record\":{\"category\":\"harm\"}}\n", q);
    fprintf(f, "{\"id\":\"b\",\"mode\":\"stream\",\"question\":\"short\",\"answer\":\"Ok.\",\"stop\":\"end of turn\","
               "\"sentences\":[{\"original\":\"Ok.\",\"correction\":\"Ok.\"}],\"record\":{\"category\":\"harm\"}}\n");
    fprintf(f, "{\"id\":\"c\",\"mode\":\"stream\",\"question\":\"q\",\"error\":\"context full\",\"record\":{\"category\":\"math\"}}\n");
    fclose(f);
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "bin/salign report %s -o %s 2>&1", res, html);
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    char *h = sa_read_file(html, NULL);
    CHECK(h && strstr(h, "<em class=\"meta\">deleted</em>"));
    CHECK(h && strstr(h, "… (600 characters)</summary>"));
    CHECK(h && strstr(h, "max tokens 1 · end of turn 1"));
    const char *stops = h ? strstr(h, "id=\"stops\"") : NULL;
    CHECK(stops && strstr(stops, "<td class=\"n\">1</td>")); /* one empty answer */
    /* per category: harm has one edited answer of two, math none answered; the filters link a and c */
    const char *cat = h ? strstr(h, "id=\"categories\"") : NULL;
    CHECK(cat && strstr(cat, "<td>harm</td><td class=\"n\">1 of 2</td><td class=\"n\">2</td>"));
    CHECK(cat && strstr(cat, "<td>math</td><td class=\"n\">0 of 0</td><td class=\"n\">1</td>"));
    CHECK(h && strstr(h, "1 record(s) with an edit</summary><p><a href=\"#rec-0\">a</a></p>"));
    CHECK(h && strstr(h, "1 record(s) with an error</summary><p><a href=\"#rec-2\">c</a></p>"));
    free(h);
}
