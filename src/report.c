/* report.c - salign report (see report.h). */
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eval.h"
#include "flags.h"
#include "report_judged.h"
#include "outfile.h"

/* ---- text helpers ------------------------------------------------------------------------- */

void sa_html_escape(SaBuf *b, const char *s, size_t n) {
    size_t run = 0; /* bytes not needing an escape are copied in runs */
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: break;
        }
        if (!e) continue;
        sa_buf_append(b, s + run, i - run);
        sa_buf_append(b, e, strlen(e));
        run = i + 1;
    }
    sa_buf_append(b, s + run, n - run);
}

static void esc(SaBuf *b, const char *s) { sa_html_escape(b, s ? s : "", s ? strlen(s) : 0); }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* A word and the whitespace before it (kept so a diff shows the text as it was written). */
typedef struct {
    const char *ws, *w;
    size_t ws_n, n;
} Word;

static int split_words(const char *s, Word **out, size_t *n_out, const char **tail) {
    size_t n = 0, cap = 0;
    Word *v = NULL;
    const char *p = s ? s : "";
    for (;;) {
        const char *ws = p;
        while (*p && is_space(*p)) p++;
        if (!*p) {
            *tail = ws;
            break;
        }
        const char *w = p;
        while (*p && !is_space(*p)) p++;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            Word *nv = sa_realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[n++] = (Word){.ws = ws, .ws_n = (size_t)(w - ws), .w = w, .n = (size_t)(p - w)};
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int word_eq(const Word *a, const Word *b) { return a->n == b->n && !memcmp(a->w, b->w, a->n); }

long sa_word_edit_distance(const char *a, const char *b) {
    Word *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    const char *t;
    if (split_words(a, &x, &nx, &t) || split_words(b, &y, &ny, &t)) {
        free(x);
        return -1;
    }
    /* common prefix and suffix cost nothing and usually cover most of a sentence */
    size_t pre = 0, suf = 0;
    while (pre < nx && pre < ny && word_eq(&x[pre], &y[pre])) pre++;
    while (suf < nx - pre && suf < ny - pre && word_eq(&x[nx - 1 - suf], &y[ny - 1 - suf])) suf++;
    const size_t n = nx - pre - suf, m = ny - pre - suf;
    long d = -1;
    if (n == 0 || m == 0) {
        d = (long)(n + m);
    } else if ((double)n * (double)m <= 1e9) {
        long *row = sa_malloc((m + 1) * sizeof *row);
        if (row) {
            for (size_t j = 0; j <= m; j++) row[j] = (long)j;
            for (size_t i = 1; i <= n; i++) {
                long diag = row[0];
                row[0] = (long)i;
                for (size_t j = 1; j <= m; j++) {
                    const long up = row[j];
                    const long sub = diag + !word_eq(&x[pre + i - 1], &y[pre + j - 1]);
                    long best = SA_MIN(up, row[j - 1]) + 1;
                    row[j] = SA_MIN(best, sub);
                    diag = up;
                }
            }
            d = row[m];
            free(row);
        }
    }
    free(x);
    free(y);
    return d;
}

/* Emit words with the changed ones wrapped in tag; whitespace inside a changed run stays inside. */
static void emit_marked(SaBuf *b, const Word *w, size_t n, const unsigned char *keep, const char *tail, const char *tag) {
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i] && !open) {
            sa_html_escape(b, w[i].ws, w[i].ws_n);
            sa_buf_printf(b, "<%s>", tag);
            open = 1;
        } else if (keep[i] && open) {
            sa_buf_printf(b, "</%s>", tag);
            open = 0;
            sa_html_escape(b, w[i].ws, w[i].ws_n);
        } else {
            sa_html_escape(b, w[i].ws, w[i].ws_n);
        }
        sa_html_escape(b, w[i].w, w[i].n);
    }
    if (open) sa_buf_printf(b, "</%s>", tag);
    esc(b, tail);
}

int sa_word_diff_html(const char *a, const char *b, SaBuf *left, SaBuf *right) {
    Word *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    const char *tx = "", *ty = "";
    if (split_words(a, &x, &nx, &tx) || split_words(b, &y, &ny, &ty)) {
        free(x);
        return -1;
    }
    unsigned char *kx = sa_calloc(nx + 1, 1), *ky = sa_calloc(ny + 1, 1);
    uint32_t *dp = NULL;
    int rc = -1;
    if (!kx || !ky) goto out;
    size_t pre = 0, suf = 0;
    while (pre < nx && pre < ny && word_eq(&x[pre], &y[pre])) kx[pre] = ky[pre] = 1, pre++;
    while (suf < nx - pre && suf < ny - pre && word_eq(&x[nx - 1 - suf], &y[ny - 1 - suf])) {
        kx[nx - 1 - suf] = ky[ny - 1 - suf] = 1;
        suf++;
    }
    const size_t n = nx - pre - suf, m = ny - pre - suf;
    /* longest common subsequence of the middle; past 16M cells the middle is shown as replaced */
    if (n && m && (double)(n + 1) * (double)(m + 1) <= 16e6) {
        dp = sa_malloc((n + 1) * (m + 1) * sizeof *dp);
        if (!dp) goto out;
        const size_t W = m + 1;
        for (size_t i = n + 1; i-- > 0;)
            for (size_t j = m + 1; j-- > 0;) {
                if (i == n || j == m) dp[i * W + j] = 0;
                else if (word_eq(&x[pre + i], &y[pre + j])) dp[i * W + j] = dp[(i + 1) * W + j + 1] + 1;
                else dp[i * W + j] = SA_MAX(dp[(i + 1) * W + j], dp[i * W + j + 1]);
            }
        size_t i = 0, j = 0;
        while (i < n && j < m) {
            if (word_eq(&x[pre + i], &y[pre + j])) {
                kx[pre + i++] = 1;
                ky[pre + j++] = 1;
            } else if (dp[(i + 1) * W + j] >= dp[i * W + j + 1]) {
                i++;
            } else {
                j++;
            }
        }
    }
    emit_marked(left, x, nx, kx, tx, "del");
    emit_marked(right, y, ny, ky, ty, "ins");
    rc = 0;
out:
    free(dp);
    free(kx);
    free(ky);
    free(x);
    free(y);
    return rc;
}

/* ---- the results ---------------------------------------------------------------------------- */

enum { M_NONE, M_ALIGNER, M_STREAM, N_MODES }; /* report order */
static const char *rmode_names[N_MODES] = {"none", "aligner", "stream"};

typedef struct {
    char *orig, *corr;
    int truncated; /* the correction hit its token cap */
    char *status, *reasoning; /* the annotator aligner kind's status and reasoning, or NULL */
} Sent;

typedef struct {
    int present;
    char *answer, *error, *stop;
    Sent *s;
    int ns;
    double total_ms, ttft_ms;
    long long tokens, up_tokens, al_tokens;
} Run;

typedef struct {
    char *id, *question;
    char *category; /* the record's "category" field, when it has one */
    long line;
    Run run[N_MODES];
} Rec;

typedef struct {
    const char *path;
    Rec *v;
    size_t n, cap;
    SaStrMap ids; /* id key -> index */
    long lines, dups, unknown_modes;
    int seen[N_MODES];
    char *settings; /* the first line's run settings (eval writes them into every line), pretty JSON */
} Results;

static char *jstr(const cJSON *o, const char *k) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(s) ? sa_strdup(s->valuestring) : NULL;
}

static double jnum(const cJSON *o, const char *k, double dflt) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(s) ? s->valuedouble : dflt;
}

static int result_line(void *ctx, long line_no, const char *line, size_t len, cJSON *o) {
    Results *r = ctx;
    r->lines++;
    const char *mode = cJSON_GetObjectItemCaseSensitive(o, "mode")->valuestring;
    int mi = -1;
    for (int k = 0; k < N_MODES; k++)
        if (!strcmp(mode, rmode_names[k])) mi = k;
    if (mi < 0) {
        r->unknown_modes++;
        return 0;
    }
    char *id = sa_eval_id_key(cJSON_GetObjectItemCaseSensitive(o, "id"));
    if (!id) return -1;
    int added;
    long *slot = sa_strmap_put(&r->ids, id, (long)r->n, &added);
    if (!slot) {
        free(id);
        return -1;
    }
    if (added) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            Rec *v = sa_realloc(r->v, cap * sizeof *v);
            if (!v) {
                free(id);
                return -1;
            }
            r->v = v;
            r->cap = cap;
        }
        memset(&r->v[r->n], 0, sizeof r->v[r->n]);
        r->v[r->n].id = id;
        r->v[r->n].line = (long)jnum(o, "line", 0);
        r->n++;
    } else {
        free(id);
    }
    Rec *rec = &r->v[*slot];
    Run *run = &rec->run[mi];
    if (run->present) { /* the first line of a pair wins, as eval-merge would insist */
        r->dups++;
        return 0;
    }
    if (!rec->question) rec->question = jstr(o, "question");
    if (!rec->category) rec->category = jstr(cJSON_GetObjectItemCaseSensitive(o, "record"), "category");
    run->present = 1;
    run->answer = jstr(o, "answer");
    run->error = jstr(o, "error");
    run->stop = jstr(o, "stop");
    run->total_ms = jnum(o, "total_ms", 0);
    run->ttft_ms = jnum(o, "first_visible_ms", -1);
    run->up_tokens = (long long)jnum(o, "upstream_tokens", 0);
    run->al_tokens = (long long)jnum(o, "aligner_tokens", 0);
    run->tokens = run->up_tokens + run->al_tokens;
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(o, "sentences");
    int ns = cJSON_IsArray(ss) ? cJSON_GetArraySize(ss) : 0;
    if (ns) {
        if (!(run->s = sa_calloc((size_t)ns, sizeof *run->s))) return -1;
        const cJSON *it;
        cJSON_ArrayForEach(it, ss) {
            run->s[run->ns].orig = jstr(it, "original");
            run->s[run->ns].corr = jstr(it, "correction");
            run->s[run->ns].truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "correction_truncated"));
            run->s[run->ns].status = jstr(it, "status");
            run->s[run->ns].reasoning = jstr(it, "reasoning");
            run->ns++;
        }
    }
    r->seen[mi] = 1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "settings");
    if (!r->settings && cJSON_IsObject(st)) r->settings = cJSON_Print(st);
    return 0;
}

static void results_free(Results *r) {
    for (size_t i = 0; i < r->n; i++) {
        Rec *rec = &r->v[i];
        for (int k = 0; k < N_MODES; k++) {
            Run *run = &rec->run[k];
            for (int j = 0; j < run->ns; j++) {
                free(run->s[j].orig);
                free(run->s[j].corr);
                free(run->s[j].status);
                free(run->s[j].reasoning);
            }
            free(run->s);
            free(run->answer);
            free(run->error);
            free(run->stop);
        }
        free(rec->id);
        free(rec->question);
        free(rec->category);
    }
    free(r->v);
    free(r->settings);
    sa_strmap_free(&r->ids);
}

/* ---- statistics ------------------------------------------------------------------------------ */

typedef struct {
    long answers, errors, sentences, edited, dist_n;
    double dist_sum, ms, words;
    long long tokens, up_tokens, al_tokens;
    double *lat, *ttft;
    long n_lat, n_ttft;
} Stats;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile with linear interpolation between the closest ranks (values sorted). */
static double pct(const double *v, long n, double p) {
    if (n <= 0) return NAN;
    const double pos = p * (double)(n - 1);
    const long i = (long)pos;
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static double mean(const double *v, long n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (long i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

static int compute_stats(const Results *r, Stats st[N_MODES]) {
    memset(st, 0, N_MODES * sizeof *st);
    for (int k = 0; k < N_MODES; k++) {
        st[k].lat = sa_malloc((r->n + 1) * sizeof(double));
        st[k].ttft = sa_malloc((r->n + 1) * sizeof(double));
        if (!st[k].lat || !st[k].ttft) return -1;
    }
    for (size_t i = 0; i < r->n; i++)
        for (int k = 0; k < N_MODES; k++) {
            const Run *run = &r->v[i].run[k];
            Stats *s = &st[k];
            if (!run->present) continue;
            if (run->error) {
                s->errors++;
                continue;
            }
            s->answers++;
            s->lat[s->n_lat++] = run->total_ms;
            if (run->ttft_ms >= 0) s->ttft[s->n_ttft++] = run->ttft_ms;
            s->tokens += run->tokens;
            s->up_tokens += run->up_tokens;
            s->al_tokens += run->al_tokens;
            s->words += run->answer ? (double)sa_word_edit_distance("", run->answer) : 0; /* its word count */
            s->ms += run->total_ms;
            if (k == M_NONE) continue; /* nothing was rewritten */
            for (int j = 0; j < run->ns; j++) {
                long d = sa_word_edit_distance(run->s[j].orig, run->s[j].corr);
                s->sentences++;
                if (d != 0) s->edited++;
                if (d >= 0) {
                    s->dist_sum += (double)d;
                    s->dist_n++;
                }
            }
        }
    for (int k = 0; k < N_MODES; k++) {
        qsort(st[k].lat, (size_t)st[k].n_lat, sizeof(double), cmp_double);
        qsort(st[k].ttft, (size_t)st[k].n_ttft, sizeof(double), cmp_double);
    }
    return 0;
}

static void stats_free(Stats st[N_MODES]) {
    for (int k = 0; k < N_MODES; k++) {
        free(st[k].lat);
        free(st[k].ttft);
    }
}

static void fmt_ms(char *b, size_t n, double ms) {
    if (isnan(ms)) snprintf(b, n, "—");
    else if (ms >= 10000) snprintf(b, n, "%.1f s", ms / 1000);
    else if (ms >= 10) snprintf(b, n, "%.0f ms", ms);
    else snprintf(b, n, "%.1f ms", ms);
}

/* One summary row's cells as text (shared by the HTML and markdown tables). */
typedef struct {
    char answers[32], errors[32], mean[32], p50[32], p95[32], ttft[32], ttft50[32], edited[48], dist[32], tps[32];
    char words[32], toks[64];
} Row;

static void row_cells(const Stats *s, int k, Row *r) {
    snprintf(r->answers, sizeof r->answers, "%ld", s->answers);
    snprintf(r->errors, sizeof r->errors, "%ld", s->errors);
    fmt_ms(r->mean, sizeof r->mean, mean(s->lat, s->n_lat));
    fmt_ms(r->p50, sizeof r->p50, pct(s->lat, s->n_lat, 0.5));
    fmt_ms(r->p95, sizeof r->p95, pct(s->lat, s->n_lat, 0.95));
    fmt_ms(r->ttft, sizeof r->ttft, mean(s->ttft, s->n_ttft));
    fmt_ms(r->ttft50, sizeof r->ttft50, pct(s->ttft, s->n_ttft, 0.5));
    if (k == M_NONE || !s->sentences) {
        snprintf(r->edited, sizeof r->edited, "—");
        snprintf(r->dist, sizeof r->dist, "—");
    } else {
        snprintf(r->edited, sizeof r->edited, "%.1f%% (%ld/%ld)", 100.0 * s->edited / s->sentences, s->edited, s->sentences);
        if (s->dist_n) snprintf(r->dist, sizeof r->dist, "%.2f", s->dist_sum / s->dist_n);
        else snprintf(r->dist, sizeof r->dist, "—");
    }
    if (s->ms > 0) snprintf(r->tps, sizeof r->tps, "%.1f", s->tokens / (s->ms / 1000));
    else snprintf(r->tps, sizeof r->tps, "—");
    if (s->answers) snprintf(r->words, sizeof r->words, "%.1f", s->words / s->answers);
    else snprintf(r->words, sizeof r->words, "—");
    snprintf(r->toks, sizeof r->toks, "%lld / %lld", s->up_tokens, s->al_tokens);
}

/* ---- markdown ------------------------------------------------------------------------------ */

static void write_md(SaBuf *b, const Results *r, Stats st[N_MODES], const SaReportJudged *jd) {
    sa_buf_printf(b, "# salign evaluation: %s\n\n%zu record(s), %ld result line(s)\n\n", r->path, r->n, r->lines);
    sa_buf_printf(b, "| mode | answers | errors | latency mean | p50 | p95 | first token mean | p50 | sentences edited | "
                     "mean edit distance (words) | tokens/s | answer words (mean) | tokens upstream / aligner |\n");
    sa_buf_printf(b, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int k = 0; k < N_MODES; k++) {
        if (!r->seen[k]) continue;
        Row c;
        row_cells(&st[k], k, &c);
        sa_buf_printf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rmode_names[k], c.answers,
                      c.errors, c.mean, c.p50, c.p95, c.ttft, c.ttft50, c.edited, c.dist, c.tps, c.words, c.toks);
    }
    if (jd) sa_report_judged_md(b, jd);
}

/* ---- HTML ------------------------------------------------------------------------------------ */

static const char *mode_color[N_MODES] = {"#6b7280", "#c2410c", "#1d4ed8"};

static const char css[] =
    ":root{color-scheme:light;--line:#d4d4d8;--muted:#52525b}"
    "*{box-sizing:border-box}"
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#18181b;"
    "background:#fafafa;margin:0 auto;max-width:1180px;padding:24px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid var(--line);"
    "padding-bottom:4px}h3{font-size:16px;margin:0 0 8px}"
    ".meta,.note{color:var(--muted);font-size:13px}"
    "table{border-collapse:collapse;background:#fff}"
    "table.summary{width:100%}"
    "th,td{border:1px solid var(--line);padding:6px 9px;vertical-align:top;text-align:left}"
    "th{background:#f4f4f5;font-weight:600}"
    "table.summary td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px;font-weight:600}"
    ".m-none{background:#6b7280}.m-aligner{background:#c2410c}.m-stream{background:#1d4ed8}"
    "section.rec{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:14px 0}"
    ".q{white-space:pre-wrap;background:#f4f4f5;border-radius:6px;padding:8px 10px;margin:0 0 10px}"
    "details{margin:8px 0}summary{cursor:pointer;padding:3px 0}"
    "table.sbs{width:100%;table-layout:fixed;margin:6px 0}table.sbs td{white-space:pre-wrap;overflow-wrap:anywhere}"
    "table.sbs th.k,table.sbs td.k{width:42px;text-align:right;color:var(--muted)}"
    "tr.same td{color:var(--muted)}"
    "del{background:#fee2e2;color:#991b1b;text-decoration:line-through}"
    "ins{background:#dcfce7;color:#166534;text-decoration:none}"
    ".ans{white-space:pre-wrap;border-left:3px solid var(--line);padding:4px 10px;margin:6px 0}"
    ".err{color:#b91c1c;white-space:pre-wrap}"
    ".id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}"
    "svg text{font:12px system-ui,sans-serif;fill:#3f3f46}";

/* 1, 2 or 5 times a power of ten, at least x. */
static double nice_step(double x) {
    if (!(x > 0)) return 1;
    double p = pow(10, floor(log10(x)));
    for (int k = 0; k < 3; k++) {
        const double m = (double[]){1, 2, 5}[k] * p;
        if (m >= x * (1 - 1e-9)) return m;
    }
    return 10 * p;
}

static void fmt_axis_ms(char *b, size_t n, double ms, double step) {
    if (step >= 1000) snprintf(b, n, "%g s", ms / 1000);
    else snprintf(b, n, "%g", ms);
}

/* The latency histogram: shared bins, one bar per mode in each bin. */
static void write_histogram(SaBuf *b, const Results *r, const Stats st[N_MODES]) {
    int modes[N_MODES], nm = 0;
    double hi = 0;
    for (int k = 0; k < N_MODES; k++) {
        if (!r->seen[k]) continue;
        modes[nm++] = k;
        if (st[k].n_lat) hi = SA_MAX(hi, st[k].lat[st[k].n_lat - 1]);
    }
    const int W = 760, H = 300, L = 56, R = 16, T = 34, B = 48;
    const int pw = W - L - R, ph = H - T - B;
    sa_buf_printf(b, "<svg class=\"chart\" role=\"img\" aria-label=\"latency distribution\" xmlns=\"http://www.w3.org/2000/svg\" "
                     "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", W, H, W, H);
    sa_buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
    if (nm == 0 || hi <= 0) {
        sa_buf_printf(b, "<text x=\"%d\" y=\"%d\">no answers</text></svg>\n", W / 2 - 30, H / 2);
        return;
    }
    const double step = nice_step(hi / 16);
    int nbins = (int)ceil(hi / step);
    if (nbins < 1) nbins = 1;
    if (hi >= nbins * step) nbins++; /* the maximum belongs to a bin [lo, hi) */
    long *cnt = sa_calloc((size_t)nbins * N_MODES, sizeof *cnt);
    if (!cnt) return;
    long ymax = 1;
    for (int a = 0; a < nm; a++) {
        const int k = modes[a];
        for (long i = 0; i < st[k].n_lat; i++) {
            int bin = (int)(st[k].lat[i] / step);
            if (bin >= nbins) bin = nbins - 1;
            long c = ++cnt[bin * N_MODES + k];
            if (c > ymax) ymax = c;
        }
    }
    const double ystep = nice_step((double)ymax / 5) < 1 ? 1 : nice_step((double)ymax / 5);
    const double ytop = ceil((double)ymax / ystep) * ystep;
    /* grid and y axis */
    for (double y = 0; y <= ytop + 1e-9; y += ystep) {
        const double py = T + ph - y / ytop * ph;
        sa_buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e7\"/>", L, L + pw, py, py);
        sa_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, py + 4, y);
    }
    const double gw = (double)pw / nbins, bw = gw * 0.84 / nm;
    for (int bin = 0; bin < nbins; bin++)
        for (int a = 0; a < nm; a++) {
            const int k = modes[a];
            const long c = cnt[bin * N_MODES + k];
            if (!c) continue;
            const double h = (double)c / ytop * ph, x = L + bin * gw + gw * 0.08 + a * bw;
            char lo[32], up[32];
            fmt_ms(lo, sizeof lo, bin * step);
            fmt_ms(up, sizeof up, (bin + 1) * step);
            sa_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %ld answer(s) "
                             "in %s to %s</title></rect>\n", x, T + ph - h, bw, h, mode_color[k], rmode_names[k], c, lo, up);
        }
    /* x axis: at most ~10 labels */
    const int every = (nbins + 9) / 10;
    sa_buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#71717a\"/>\n", L, L + pw, T + ph, T + ph);
    for (int bin = 0; bin <= nbins; bin += every) {
        char lab[32];
        fmt_axis_ms(lab, sizeof lab, bin * step, step * every);
        const double px = L + bin * gw;
        sa_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#71717a\"/>", px, px, T + ph, T + ph + 4);
        sa_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px, T + ph + 17, lab);
    }
    sa_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">total latency per answer (%s)</text>\n", L + pw / 2,
                  H - 8, step * every >= 1000 ? "seconds" : "ms");
    sa_buf_printf(b, "<text x=\"14\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 14 %d)\">answers</text>\n",
                  T + ph / 2, T + ph / 2);
    /* legend */
    for (int a = 0; a < nm; a++) {
        const int k = modes[a], x = L + pw - (nm - a) * 96;
        sa_buf_printf(b, "<rect x=\"%d\" y=\"10\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"20\">%s</text>\n", x,
                      mode_color[k], x + 17, rmode_names[k]);
    }
    sa_buf_printf(b, "</svg>\n");
    free(cnt);
}

/* Whether run k of rec edited something (a sentence or the answer differs from the upstream's). */
static int run_edited(const Run *run) {
    for (int j = 0; j < run->ns; j++)
        if (sa_word_edit_distance(run->s[j].orig, run->s[j].corr) != 0) return 1;
    return 0;
}

/* Per category (records with a "category" field): answers and the share with an edit, per mode. */
static void write_categories_html(SaBuf *b, const Results *r) {
    const char *cats[64];
    int nc = 0;
    for (size_t i = 0; i < r->n && nc < 64; i++) {
        const char *c = r->v[i].category;
        int j = 0;
        while (c && j < nc && strcmp(cats[j], c)) j++;
        if (c && j == nc) cats[nc++] = c;
    }
    if (!nc) return;
    sa_buf_printf(b, "<h3>Per category</h3>\n<table class=\"summary\" id=\"categories\">\n<thead><tr><th>category</th>");
    for (int k = 0; k < N_MODES; k++)
        if (r->seen[k] && k != M_NONE) sa_buf_printf(b, "<th>%s: answers with an edit</th>", rmode_names[k]);
    sa_buf_printf(b, "<th>records</th></tr></thead>\n<tbody>\n");
    for (int j = 0; j < nc; j++) {
        sa_buf_printf(b, "<tr><td>");
        esc(b, cats[j]);
        sa_buf_printf(b, "</td>");
        long recs = 0;
        for (size_t i = 0; i < r->n; i++) recs += r->v[i].category && !strcmp(r->v[i].category, cats[j]);
        for (int k = 0; k < N_MODES; k++) {
            if (!r->seen[k] || k == M_NONE) continue;
            long answers = 0, edited = 0;
            for (size_t i = 0; i < r->n; i++) {
                const Rec *rec = &r->v[i];
                if (!rec->category || strcmp(rec->category, cats[j]) || !rec->run[k].present || rec->run[k].error) continue;
                answers++;
                edited += run_edited(&rec->run[k]);
            }
            sa_buf_printf(b, "<td class=\"n\">%ld of %ld</td>", edited, answers);
        }
        sa_buf_printf(b, "<td class=\"n\">%ld</td></tr>\n", recs);
    }
    sa_buf_printf(b, "</tbody></table>\n");
}

/* Filters without scripts: links to the records that were edited, and to those with an error. */
static void write_filters_html(SaBuf *b, const Results *r) {
    for (int f = 0; f < 2; f++) {
        SaBuf links = {0};
        long n = 0;
        for (size_t i = 0; i < r->n; i++) {
            int hit = 0;
            for (int k = 0; k < N_MODES; k++) {
                const Run *run = &r->v[i].run[k];
                if (run->present) hit |= f ? run->error != NULL : (k != M_NONE && !run->error && run_edited(run));
            }
            if (!hit) continue;
            sa_buf_printf(&links, "%s<a href=\"#rec-%zu\">", n++ ? " " : "", i);
            esc(&links, r->v[i].id);
            sa_buf_printf(&links, "</a>");
        }
        sa_buf_printf(b, "<details class=\"filter\" id=\"%s\"><summary>%ld record(s) %s</summary><p>%s</p></details>\n",
                      f ? "with-errors" : "edited", n, f ? "with an error" : "with an edit", links.data ? links.data : "");
        sa_buf_free(&links);
    }
}

static void write_summary_html(SaBuf *b, const Results *r, Stats st[N_MODES]) {
    sa_buf_printf(b, "<table class=\"summary\" id=\"summary\">\n<thead><tr><th>mode</th><th>answers</th><th>errors</th>"
                     "<th>latency mean</th><th>p50</th><th>p95</th><th>first token mean</th><th>first token p50</th>"
                     "<th>sentences edited</th><th>mean edit distance (words)</th><th>tokens/s</th><th>answer words (mean)</th>"
                     "<th>tokens upstream / aligner</th></tr></thead>\n<tbody>\n");
    for (int k = 0; k < N_MODES; k++) {
        if (!r->seen[k]) continue;
        Row c;
        row_cells(&st[k], k, &c);
        sa_buf_printf(b, "<tr><td><span class=\"badge m-%s\">%s</span></td>", rmode_names[k], rmode_names[k]);
        const char *cells[] = {c.answers, c.errors, c.mean, c.p50, c.p95, c.ttft, c.ttft50, c.edited, c.dist, c.tps, c.words, c.toks};
        for (size_t i = 0; i < SA_ARRAY_LEN(cells); i++) sa_buf_printf(b, "<td class=\"n\">%s</td>", cells[i]);
        sa_buf_printf(b, "</tr>\n");
    }
    sa_buf_printf(b, "</tbody></table>\n<p class=\"note\">Latency: the whole answer, per (record, mode). First token: "
                     "until the first byte of the answer is visible. Sentences edited: upstream sentences (stream) or "
                     "whole answers (aligner) whose correction differs in at least one word. Edit distance: word-level "
                     "Levenshtein distance between the upstream's text and the correction. Tokens/s: tokens generated by "
                     "both models per second of run time. Errors are left out of every statistic.</p>\n");
    /* why the answers ended, and how many are empty, per mode */
    sa_buf_printf(b, "<table class=\"summary\" id=\"stops\">\n<thead><tr><th>mode</th><th>empty answers</th>"
                     "<th>stop reasons</th></tr></thead>\n<tbody>\n");
    for (int k = 0; k < N_MODES; k++) {
        if (!r->seen[k]) continue;
        const char *names[16];
        long counts[16];
        int nr = 0;
        long empty = 0;
        for (size_t i = 0; i < r->n; i++) {
            const Run *run = &r->v[i].run[k];
            if (!run->present || run->error) continue;
            empty += !run->answer || !run->answer[0];
            const char *why = run->stop ? run->stop : "?";
            int j = 0;
            while (j < nr && strcmp(names[j], why)) j++;
            if (j == nr && nr < 16) {
                names[nr] = why;
                counts[nr++] = 0;
            }
            if (j < nr) counts[j]++;
        }
        sa_buf_printf(b, "<tr><td><span class=\"badge m-%s\">%s</span></td><td class=\"n\">%ld</td><td>", rmode_names[k],
                      rmode_names[k], empty);
        for (int j = 0; j < nr; j++) {
            sa_buf_printf(b, "%s", j ? " · " : "");
            esc(b, names[j]);
            sa_buf_printf(b, " %ld", counts[j]);
        }
        sa_buf_printf(b, "</td></tr>\n");
    }
    sa_buf_printf(b, "</tbody></table>\n");
    write_categories_html(b, r);
    write_filters_html(b, r);
    if (r->settings) {
        sa_buf_printf(b, "<details class=\"settings\"><summary>Run settings (models, samplers, caps, salign version)"
                         "</summary><pre>");
        esc(b, r->settings);
        sa_buf_printf(b, "</pre></details>\n");
    }
}

static int write_run(SaBuf *b, int k, const Run *run) {
    sa_buf_printf(b, "<details class=\"run\" open><summary><span class=\"badge m-%s\">%s</span> ", rmode_names[k], rmode_names[k]);
    if (run->error) {
        sa_buf_printf(b, "error</summary><p class=\"err\">");
        esc(b, run->error);
        sa_buf_printf(b, "</p></details>\n");
        return 0;
    }
    int edited = 0, cut = 0;
    for (int j = 0; j < run->ns && k != M_NONE; j++) {
        edited += sa_word_edit_distance(run->s[j].orig, run->s[j].corr) != 0;
        cut += run->s[j].truncated;
    }
    char ms[32], tt[32];
    fmt_ms(ms, sizeof ms, run->total_ms);
    fmt_ms(tt, sizeof tt, run->ttft_ms >= 0 ? run->ttft_ms : NAN);
    if (k == M_STREAM) sa_buf_printf(b, "%d sentence(s), %d edited · ", run->ns, edited);
    else if (k == M_ALIGNER) sa_buf_printf(b, "%s · ", edited ? "answer rewritten" : "answer unchanged");
    if (cut) sa_buf_printf(b, "%d correction(s) cut at the token cap · ", cut);
    sa_buf_printf(b, "%s · first token %s · %lld tokens · stop: ", ms, tt, run->tokens);
    esc(b, run->stop ? run->stop : "?");
    sa_buf_printf(b, "</summary>\n");
    if (k != M_NONE && run->ns) {
        sa_buf_printf(b, "<table class=\"sbs\"><thead><tr><th class=\"k\">#</th><th>%s</th><th>aligner correction</th></tr>"
                         "</thead><tbody>\n", k == M_STREAM ? "upstream sentence" : "upstream answer");
        for (int j = 0; j < run->ns; j++) {
            SaBuf l = {0}, rr = {0};
            if (sa_word_diff_html(run->s[j].orig, run->s[j].corr, &l, &rr)) return -1;
            const int same = sa_word_edit_distance(run->s[j].orig, run->s[j].corr) == 0;
            const int deleted = !run->s[j].corr || !run->s[j].corr[0];
            sa_buf_printf(b, "<tr%s><td class=\"k\">%d</td><td>%s</td><td>%s%s", same ? " class=\"same\"" : "", j + 1,
                          l.data ? l.data : "", deleted ? "<em class=\"meta\">deleted</em>" : rr.data ? rr.data : "",
                          run->s[j].truncated ? " <span class=\"meta\">(cut at the token cap)</span>" : "");
            /* the annotator kind: a failed correction's status, and the reasoning, folded, beside the correction */
            const char *stt = run->s[j].status;
            if (stt && strcmp(stt, "ok")) {
                sa_buf_printf(b, " <span class=\"meta\">(");
                esc(b, stt);
                sa_buf_printf(b, ")</span>");
            }
            if (run->s[j].reasoning && run->s[j].reasoning[0]) {
                sa_buf_printf(b, "<details class=\"why\"><summary class=\"meta\">reasoning</summary>");
                esc(b, run->s[j].reasoning);
                sa_buf_printf(b, "</details>");
            }
            sa_buf_printf(b, "</td></tr>\n");
            sa_buf_free(&l);
            sa_buf_free(&rr);
        }
        sa_buf_printf(b, "</tbody></table>\n");
    }
    if (k != M_ALIGNER) { /* in aligner mode the answer is the correction just shown */
        sa_buf_printf(b, "<div class=\"ans\">");
        esc(b, run->answer);
        sa_buf_printf(b, "</div>\n");
    }
    sa_buf_printf(b, "</details>\n");
    return 0;
}

static int write_html(SaBuf *b, const Results *r, Stats st[N_MODES], long max_records, const SaReportJudged *jd) {
    sa_buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     /* nothing may load: the report must open the same on an air-gapped machine */
                     "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
                     "img-src data:\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>salign "
                     "evaluation: ");
    esc(b, r->path);
    sa_buf_printf(b, "</title>\n<style>%s%s</style>\n</head>\n<body>\n<h1>salign evaluation</h1>\n<p class=\"meta\">", css, jd ? sa_report_judged_css : "");
    esc(b, r->path);
    sa_buf_printf(b, " · %zu record(s) · %ld result line(s)", r->n, r->lines);
    struct stat fst; /* when the results were last written: the run's date */
    char when[40];
    if (stat(r->path, &fst) == 0 && strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&fst.st_mtime)))
        sa_buf_printf(b, " · last written %s", when);
    if (r->dups) sa_buf_printf(b, " · %ld duplicated (id, mode) line(s) ignored", r->dups);
    sa_buf_printf(b, "</p>\n<h2>Summary</h2>\n");
    write_summary_html(b, r, st);
    if (jd) sa_report_judged_summary_html(b, jd);
    sa_buf_printf(b, "<h2>Latency distribution</h2>\n");
    write_histogram(b, r, st);
    sa_buf_printf(b, "<h2>Records</h2>\n");
    const size_t shown = max_records > 0 && (size_t)max_records < r->n ? (size_t)max_records : r->n;
    if (shown < r->n) sa_buf_printf(b, "<p class=\"note\">The first %zu of %zu records (--max-records).</p>\n", shown, r->n);
    for (size_t i = 0; i < shown; i++) {
        const Rec *rec = &r->v[i];
        sa_buf_printf(b, "<section class=\"rec\" id=\"rec-%zu\">\n<h3>id <span class=\"id\">", i);
        esc(b, rec->id);
        sa_buf_printf(b, "</span>");
        if (rec->line > 0) sa_buf_printf(b, " <span class=\"meta\">(input line %ld)</span>", rec->line);
        sa_buf_printf(b, "</h3>\n<div class=\"q\">");
        const size_t qn = rec->question ? strlen(rec->question) : 0;
        if (qn > 400) { /* long questions folded: the first 300 bytes (at a character boundary), then all */
            size_t cut = 300;
            while (cut > 0 && ((unsigned char)rec->question[cut] & 0xC0) == 0x80) cut--;
            sa_buf_printf(b, "<details><summary>");
            sa_html_escape(b, rec->question, cut);
            sa_buf_printf(b, "… (%zu characters)</summary>", qn);
            esc(b, rec->question);
            sa_buf_printf(b, "</details>");
        } else {
            esc(b, rec->question);
        }
        sa_buf_printf(b, "</div>\n");
        for (int k = 0; k < N_MODES; k++)
            if (rec->run[k].present && write_run(b, k, &rec->run[k])) return -1;
        if (jd) sa_report_judged_record_html(b, jd, rec->id);
        sa_buf_printf(b, "</section>\n");
    }
    sa_buf_printf(b, "</body>\n</html>\n");
    return 0;
}

/* ---- the command ----------------------------------------------------------------------------- */

/* The whole report or nothing (outfile.h: a temp file renamed over a regular file, devices and
 * FIFOs written directly); never over the results it was made from. */
static int write_file_atomic(const char *path, const char *data, size_t n, const char *input) {
    const char *inputs[] = {input, NULL};
    SaOutFile f;
    if (sa_outfile_open(&f, path, inputs)) return -1;
    if (sa_write_all(f.fd, data, n, path)) {
        sa_outfile_abort(&f);
        return -1;
    }
    return sa_outfile_commit(&f);
}

int sa_cmd_report(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *format = NULL, *judged = NULL;
    long max_records = 1000;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: salign report RESULTS.jsonl [--judged JUDGED.jsonl] [-o|--output FILE] [--format html|md] [--max-records N]\n"
                   "  --judged: salign judge's output: win/tie/loss tables, math accuracy, and each record's verdicts.\n"
                   "  html (default; md when FILE ends in .md): one self-contained page; md: a summary table.\n"
                   "  Without -o the report goes to stdout. --max-records: records shown in full (default 1000, 0 = all).\n");
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) goto missing;
            out = argv[++i];
        } else if (!strcmp(a, "--format")) {
            if (i + 1 >= argc) goto missing;
            format = argv[++i];
            if (strcmp(format, "html") && strcmp(format, "md")) {
                sa_err("--format: expected html or md, got '%s'", format);
                return sa_die();
            }
        } else if (!strcmp(a, "--judged")) {
            if (i + 1 >= argc) goto missing;
            judged = argv[++i];
        } else if (!strcmp(a, "--max-records")) {
            if (i + 1 >= argc) goto missing;
            char *end;
            errno = 0;
            const char *v = argv[++i];
            max_records = strtol(v, &end, 10);
            if (!*v || *end || errno || max_records < 0) {
                sa_err("--max-records: expected a non-negative integer, got '%s'", v);
                return sa_die();
            }
        } else if (a[0] == '-' && a[1]) {
            sa_err("%s: unknown flag for 'report' (see salign report --help)", a);
            return sa_die();
        } else if (in) {
            sa_err("%s: report takes one results file", a);
            return sa_die();
        } else {
            in = a;
        }
        continue;
    missing:
        sa_err("%s: missing value", a);
        return sa_die();
    }
    if (!in) {
        sa_err("report: a results file is required (salign report RESULTS.jsonl -o report.html)");
        return sa_die();
    }
    if (!format) {
        const size_t n = out ? strlen(out) : 0;
        format = n >= 3 && !strcmp(out + n - 3, ".md") ? "md" : "html";
    }
    Results r = {.path = in};
    Stats st[N_MODES];
    memset(st, 0, sizeof st);
    SaBuf b = {0};
    int rc = 1, have_jd = 0;
    SaReportJudged jd;
    long long torn = -1;
    if (sa_read_results(in, result_line, &r, &torn)) goto out;
    if (torn >= 0) fprintf(stderr, "salign: %s: ignoring an incomplete last line (a run still writing, or interrupted)\n", in);
    if (r.dups) fprintf(stderr, "salign: %s: %ld duplicated (id, mode) line(s) ignored\n", in, r.dups);
    if (r.unknown_modes) fprintf(stderr, "salign: %s: %ld line(s) with an unknown mode ignored\n", in, r.unknown_modes);
    if (compute_stats(&r, st)) goto out;
    if (judged) {
        if (sa_report_judged_load(judged, &jd)) goto out;
        have_jd = 1;
        if (jd.j.torn_at >= 0) fprintf(stderr, "salign: %s: ignoring an incomplete last line (a judge still writing?)\n", judged);
    }
    if (!strcmp(format, "md")) write_md(&b, &r, st, have_jd ? &jd : NULL);
    else if (write_html(&b, &r, st, max_records, have_jd ? &jd : NULL)) goto out;
    if (!b.data) {
        sa_err("out of memory");
        goto out;
    }
    if (out) {
        if (write_file_atomic(out, b.data, b.len, in)) goto out;
        fprintf(stderr, "salign: report of %zu record(s) written to %s\n", r.n, out);
    } else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout)) {
        sa_err("stdout: write failed");
        goto out;
    }
    rc = 0;
out:
    if (rc) sa_die();
    sa_buf_free(&b);
    stats_free(st);
    results_free(&r);
    if (have_jd) sa_report_judged_free(&jd);
    return rc;
}
