/* judged.c - reading judged results and aggregating them (see judged.h). */
#include "judged.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "judge_protocol.h"
#include "results_file.h"
#include "strmap.h"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static int is_str(const cJSON *o, const char *k) { return cJSON_IsString(get(o, k)); }

const char *sa_judged_check(const cJSON *o) {
    static const char want[] = "a judged line (a JSON object with \"id\", \"task\" and \"pair\" + \"order\", or \"mode\" "
                               "for tasks math and math_judge, or \"mode\" + \"scorer\" for task score)";
    const cJSON *id = get(o, "id");
    if (!cJSON_IsObject(o) || !(cJSON_IsString(id) || cJSON_IsNumber(id)) || !is_str(o, "task")) return want;
    if (!strcmp(get(o, "task")->valuestring, "math") || !strcmp(get(o, "task")->valuestring, "math_judge"))
        return is_str(o, "mode") ? NULL : want;
    if (!strcmp(get(o, "task")->valuestring, "score")) return is_str(o, "mode") && is_str(o, "scorer") ? NULL : want;
    return is_str(o, "pair") && is_str(o, "order") ? NULL : want;
}

char *sa_judged_key_of(const char *id_key, const char *task, const char *pair_or_mode, const char *order) {
    SaBuf b = {0};
    if (sa_buf_printf(&b, "%s\x1f%s\x1f%s", id_key, task, pair_or_mode)) return NULL;
    if (order && sa_buf_printf(&b, "\x1f%s", order)) {
        sa_buf_free(&b);
        return NULL;
    }
    return b.data;
}

char *sa_judged_key(const cJSON *o) {
    char *id = sa_eval_id_key(get(o, "id"));
    if (!id) return NULL;
    const char *task = get(o, "task")->valuestring;
    char *k = !strcmp(task, "math") || !strcmp(task, "math_judge") ? sa_judged_key_of(id, task, get(o, "mode")->valuestring, NULL)
              : !strcmp(task, "score") ? sa_judged_key_of(id, task, get(o, "mode")->valuestring, get(o, "scorer")->valuestring)
                                       : sa_judged_key_of(id, task, get(o, "pair")->valuestring, get(o, "order")->valuestring);
    free(id);
    return k;
}

static char *dup_str(const cJSON *o, const char *k) {
    const cJSON *s = get(o, k);
    return cJSON_IsString(s) ? sa_strdup(s->valuestring) : NULL;
}

/* The candidates of a verdict-only line as one line of text per word: "responseA  p=0.4123  logprob=-3.21". */
static char *candidates_text(const cJSON *c) {
    SaBuf b = {0};
    const cJSON *w;
    cJSON_ArrayForEach(w, c) {
        const cJSON *p = get(w, "p"), *lp = get(w, "logprob");
        sa_buf_printf(&b, "%s  p=%.4f  logprob=%.3f\n", w->string, cJSON_IsNumber(p) ? p->valuedouble : NAN,
                      cJSON_IsNumber(lp) ? lp->valuedouble : NAN);
    }
    return b.data ? b.data : sa_strdup("");
}

typedef struct {
    SaJudged *j;
    SaStrMap seen;
} Reader;

static int read_line(void *ctx, long line_no, const char *line, size_t len, cJSON *o) {
    Reader *r = ctx;
    SaJudged *j = r->j;
    char *key = sa_judged_key(o);
    int added = 0;
    if (!key || !sa_strmap_put(&r->seen, key, line_no, &added)) {
        free(key);
        return -1;
    }
    free(key);
    if (!added) { /* the first line of a key wins, as on resume */
        j->dups++;
        return 0;
    }
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 256;
        SaJudgedLine *v = sa_realloc(j->v, cap * sizeof *v);
        if (!v) return -1;
        j->v = v;
        j->cap = cap;
    }
    SaJudgedLine *l = &j->v[j->n++];
    memset(l, 0, sizeof *l);
    l->line_no = line_no;
    l->id = sa_eval_id_key(get(o, "id"));
    l->task = dup_str(o, "task");
    l->pair = dup_str(o, "pair");
    l->order = dup_str(o, "order");
    l->mode = dup_str(o, "mode");
    l->scorer = dup_str(o, "scorer");
    const cJSON *sc = get(o, "score");
    l->score = cJSON_IsNumber(sc) ? sc->valuedouble : NAN;
    l->error = dup_str(o, "error");
    l->verdict = dup_str(o, "verdict");
    const cJSON *m = get(o, "matches");
    l->matches = cJSON_IsNumber(m) ? (int)m->valuedouble : -1;
    if (is_str(o, "judge_text")) l->text = dup_str(o, "judge_text");
    else if (cJSON_IsObject(get(o, "candidates"))) l->text = candidates_text(get(o, "candidates"));
    else if (!strcmp(l->task, "math") && !l->error) {
        SaBuf b = {0};
        const cJSON *a = get(o, "answer_extracted"), *s = get(o, "solution_extracted");
        sa_buf_printf(&b, "answer: %s\nsolution: %s", cJSON_IsString(a) ? a->valuestring : "(none found)",
                      cJSON_IsString(s) ? s->valuestring : "(none found)");
        l->text = b.data;
    }
    const cJSON *oc = get(o, "outcome");
    l->outcome = l->error ? -1 : cJSON_IsString(oc) && sa_verdict_from_name(oc->valuestring) >= 0
                                     ? sa_verdict_from_name(oc->valuestring)
                                     : SA_VERDICT_UNPARSED;
    const cJSON *cc = get(o, "correct"), *ck = get(o, "check_correct");
    l->correct = l->error ? -1 : cJSON_IsBool(cc) ? cJSON_IsTrue(cc) : !strcmp(l->task, "math_judge") ? -2 : 0;
    l->check_correct = cJSON_IsBool(ck) ? cJSON_IsTrue(ck) : -1;
    if (!l->id || !l->task) return sa_err("out of memory");
    return 0;
}

int sa_judged_read(const char *path, SaJudged *j) {
    memset(j, 0, sizeof *j);
    Reader r = {.j = j};
    int rc = sa_read_jsonl(path, sa_judged_check, read_line, &r, &j->torn_at);
    sa_strmap_free(&r.seen);
    return rc;
}

void sa_judged_free(SaJudged *j) {
    for (size_t i = 0; i < j->n; i++) {
        SaJudgedLine *l = &j->v[i];
        free(l->id);
        free(l->task);
        free(l->pair);
        free(l->order);
        free(l->mode);
        free(l->scorer);
        free(l->verdict);
        free(l->text);
        free(l->error);
    }
    free(j->v);
    memset(j, 0, sizeof *j);
}

/* ---- intervals ---------------------------------------------------------------------------- */

void sa_wilson(long k, long n, double z, double *lo, double *hi) {
    if (n <= 0) {
        *lo = *hi = NAN;
        return;
    }
    const double p = (double)k / (double)n, z2 = z * z, d = 1 + z2 / (double)n;
    const double c = (p + z2 / (2.0 * (double)n)) / d;
    const double h = z * sqrt(p * (1 - p) / (double)n + z2 / (4.0 * (double)n * (double)n)) / d;
    *lo = SA_MAX(0.0, c - h);
    *hi = SA_MIN(1.0, c + h);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The 2.5% and 97.5% points of v[0..reps) (sorted here), interpolated between the closest ranks. */
static void percentiles(double *v, int reps, double *lo, double *hi) {
    qsort(v, (size_t)reps, sizeof *v, cmp_d);
    const double q[2] = {0.025, 0.975};
    double out[2];
    for (int k = 0; k < 2; k++) {
        const double pos = q[k] * (reps - 1);
        const int i = (int)pos;
        out[k] = i + 1 < reps ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[reps - 1];
    }
    *lo = out[0];
    *hi = out[1];
}

void sa_bootstrap_score(long w, long t, long l, int reps, uint64_t seed, double *lo, double *hi) {
    /* the comparisons as +1 (wins first), 0 (ties), -1 (losses): the bootstrap of their mean */
    const long n = w + t + l;
    double *x = n > 0 ? malloc((size_t)n * sizeof *x) : NULL;
    for (long i = 0; x && i < n; i++) x[i] = i < w ? 1 : i < w + t ? 0 : -1;
    if (x) sa_bootstrap_mean(x, n, reps, seed, lo, hi);
    else *lo = *hi = NAN;
    free(x);
}

void sa_bootstrap_mean(const double *x, long n, int reps, uint64_t seed, double *lo, double *hi) {
    double *v = n > 0 && reps > 0 ? malloc((size_t)reps * sizeof *v) : NULL;
    if (!v) {
        *lo = *hi = NAN;
        return;
    }
    uint64_t s = seed;
    for (int r = 0; r < reps; r++) {
        double sum = 0;
        for (long i = 0; i < n; i++) sum += x[(long)((splitmix(&s) >> 11) * (1.0 / 9007199254740992.0) * (double)n)];
        v[r] = sum / (double)n;
    }
    percentiles(v, reps, lo, hi);
    free(v);
}

/* ---- aggregation ---------------------------------------------------------------------------- */

typedef struct {
    int outcome[2]; /* per order: an SaVerdict, -1 error, -2 absent */
} Cmp;

static int row_index(SaJudgedSummary *s, const char *task, const char *pair) {
    for (int i = 0; i < s->n_rows; i++)
        if (!strcmp(s->rows[i].task, task) && !strcmp(s->rows[i].pair, pair)) return i;
    SaWinRow *r = sa_realloc(s->rows, (size_t)(s->n_rows + 1) * sizeof *r);
    if (!r) return -1;
    s->rows = r;
    memset(&r[s->n_rows], 0, sizeof *r);
    r[s->n_rows].task = sa_strdup(task);
    r[s->n_rows].pair = sa_strdup(pair);
    return s->n_rows++;
}

/* The index of the row of *rows (n rows of `size` bytes) whose mode (the char * at offset `off`) is
 * `mode`; a new zeroed row holding a copy of it when there is none. -1 on out of memory. */
static int mode_row(void **rows, int *n, size_t size, size_t off, const char *mode) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(*(char **)((char *)*rows + (size_t)i * size + off), mode)) return i;
    char *r = sa_realloc(*rows, (size_t)(*n + 1) * size);
    if (!r) return -1;
    *rows = r;
    memset(r + (size_t)*n * size, 0, size);
    *(char **)(r + (size_t)*n * size + off) = sa_strdup(mode);
    return (*n)++;
}

static int mj_index(SaJudgedSummary *s, const char *mode) {
    return mode_row((void **)&s->mj, &s->n_mj, sizeof *s->mj, offsetof(SaMathJudgeRow, mode), mode);
}

static int math_index(SaJudgedSummary *s, const char *mode) {
    return mode_row((void **)&s->math, &s->n_math, sizeof *s->math, offsetof(SaMathRow, mode), mode);
}

/* The value arrays of the score rows, grown as lines come */
typedef struct {
    double *v;
    long n, cap;
} Vals;

static int vals_push(Vals *a, double x) {
    if (a->n == a->cap) {
        long cap = a->cap ? a->cap * 2 : 64;
        double *p = sa_realloc(a->v, (size_t)cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Score rows (scorer, mode) and the paired differences of each aligned mode against none. */
static int summarize_scores(const SaJudged *j, SaJudgedSummary *s) {
    SaStrMap by_key = {0}; /* scorer \x1f mode \x1f id -> line index */
    Vals *vals = NULL, d = {0};
    int rc = -1;
    for (size_t i = 0; i < j->n; i++) {
        const SaJudgedLine *l = &j->v[i];
        if (strcmp(l->task, "score") || !l->mode || !l->scorer) continue;
        int k = 0;
        while (k < s->n_score && (strcmp(s->score[k].scorer, l->scorer) || strcmp(s->score[k].mode, l->mode))) k++;
        if (k == s->n_score) {
            SaScoreRow *r = sa_realloc(s->score, (size_t)(k + 1) * sizeof *r);
            Vals *v = sa_realloc(vals, (size_t)(k + 1) * sizeof *v);
            if (r) s->score = r;
            if (v) vals = v;
            if (!r || !v) goto out;
            memset(&r[k], 0, sizeof *r);
            memset(&v[k], 0, sizeof *v);
            r[k].scorer = sa_strdup(l->scorer);
            r[k].mode = sa_strdup(l->mode);
            s->n_score++;
        }
        if (l->error || isnan(l->score)) {
            s->score[k].errors++;
            continue;
        }
        if (vals_push(&vals[k], l->score)) goto out;
        SaBuf key = {0};
        if (sa_buf_printf(&key, "%s\x1f%s\x1f%s", l->scorer, l->mode, l->id) ||
            !sa_strmap_put(&by_key, key.data, (long)i, NULL)) {
            sa_buf_free(&key);
            goto out;
        }
        sa_buf_free(&key);
    }
    for (int k = 0; k < s->n_score; k++) {
        SaScoreRow *r = &s->score[k];
        r->n = vals[k].n;
        double sum = 0;
        for (long i = 0; i < r->n; i++) sum += vals[k].v[i];
        r->mean = r->n ? sum / (double)r->n : NAN;
        sa_bootstrap_mean(vals[k].v, r->n, 10000, 0x5c0e + (uint64_t)k, &r->lo, &r->hi);
    }
    /* each aligned mode against none, per scorer, over the ids scored in both */
    for (int k = 0; k < s->n_score; k++) {
        const SaScoreRow *r = &s->score[k];
        if (!strcmp(r->mode, "none")) continue;
        int have_none = 0;
        for (int q = 0; q < s->n_score; q++) have_none |= !strcmp(s->score[q].scorer, r->scorer) && !strcmp(s->score[q].mode, "none");
        if (!have_none) continue;
        d.n = 0;
        for (size_t i = 0; i < j->n; i++) {
            const SaJudgedLine *l = &j->v[i];
            if (strcmp(l->task, "score") || !l->mode || !l->scorer || l->error || isnan(l->score) || strcmp(l->scorer, r->scorer) ||
                strcmp(l->mode, r->mode))
                continue;
            SaBuf key = {0};
            if (sa_buf_printf(&key, "%s\x1fnone\x1f%s", l->scorer, l->id)) goto out;
            const long *u = sa_strmap_get(&by_key, key.data);
            sa_buf_free(&key);
            if (u && vals_push(&d, l->score - j->v[*u].score)) goto out;
        }
        SaScoreDiff *sd = sa_realloc(s->sdiffs, (size_t)(s->n_sdiffs + 1) * sizeof *sd);
        if (!sd) goto out;
        s->sdiffs = sd;
        double sum = 0;
        for (long i = 0; i < d.n; i++) sum += d.v[i];
        SaScoreDiff *x = &sd[s->n_sdiffs++];
        *x = (SaScoreDiff){.scorer = sa_strdup(r->scorer), .aligned = sa_strdup(r->mode), .unaligned = sa_strdup("none"),
                           .n = d.n, .diff = d.n ? sum / (double)d.n : NAN};
        sa_bootstrap_mean(d.v, d.n, 10000, 0xd1ff + (uint64_t)k, &x->lo, &x->hi);
    }
    rc = 0;
out:
    for (int k = 0; k < s->n_score && vals; k++) free(vals[k].v);
    free(vals);
    free(d.v);
    sa_strmap_free(&by_key);
    return rc;
}

int sa_judged_summarize(const SaJudged *j, SaJudgedSummary *s) {
    memset(s, 0, sizeof *s);
    /* comparisons: (task, pair, id) -> both orders' outcomes */
    SaStrMap cmp_of = {0};
    Cmp *cmps = NULL;
    int *cmp_row = NULL;
    size_t n_cmp = 0;
    SaStrMap math_of = {0}; /* id \x1f mode -> correct */
    int rc = -1;
    for (size_t i = 0; i < j->n; i++) {
        const SaJudgedLine *l = &j->v[i];
        if (!strcmp(l->task, "math_judge")) {
            if (!l->mode) continue;
            const int k = mj_index(s, l->mode);
            if (k < 0) goto out;
            SaMathJudgeRow *r = &s->mj[k];
            if (l->correct == -1) r->errors++;
            else if (l->correct == -2) r->unparsed++;
            else {
                if (l->correct) r->yes++;
                else r->no++;
                if (l->check_correct == 1) *(l->correct ? &r->both_yes : &r->check_only) += 1;
                else if (l->check_correct == 0) *(l->correct ? &r->judge_only : &r->both_no) += 1;
            }
            continue;
        }
        if (!strcmp(l->task, "math")) {
            if (!l->mode) continue;
            int k = math_index(s, l->mode);
            if (k < 0) goto out;
            if (l->correct < 0) {
                s->math[k].errors++;
                continue;
            }
            s->math[k].total++;
            s->math[k].correct += l->correct;
            char *key = sa_eval_pair_key(l->id, l->mode);
            if (!key || !sa_strmap_put(&math_of, key, l->correct, NULL)) {
                free(key);
                goto out;
            }
            free(key);
            continue;
        }
        if (!l->pair || !l->order) continue;
        const int ord = !strcmp(l->order, "BA");
        int row = row_index(s, l->task, l->pair);
        if (row < 0) goto out;
        char *key = sa_judged_key_of(l->id, l->task, l->pair, NULL);
        int added = 0;
        long *slot = key ? sa_strmap_put(&cmp_of, key, (long)n_cmp, &added) : NULL;
        free(key);
        if (!slot) goto out;
        if (added) {
            Cmp *c = sa_realloc(cmps, (n_cmp + 1) * sizeof *c);
            int *cr = sa_realloc(cmp_row, (n_cmp + 1) * sizeof *cr);
            if (c) cmps = c;
            if (cr) cmp_row = cr;
            if (!c || !cr) goto out;
            cmps[n_cmp].outcome[0] = cmps[n_cmp].outcome[1] = -2;
            cmp_row[n_cmp] = row;
            n_cmp++;
        }
        cmps[*slot].outcome[ord] = l->outcome;
    }
    for (size_t c = 0; c < n_cmp; c++) {
        SaWinRow *r = &s->rows[cmp_row[c]];
        const int a = cmps[c].outcome[0], b = cmps[c].outcome[1];
        int v;
        if (a == -1 || b == -1) {
            r->errors++;
            continue;
        }
        if (a >= 0 && b >= 0) {
            r->swapped++;
            if (a != b && a != SA_VERDICT_UNPARSED && b != SA_VERDICT_UNPARSED) r->disagree++;
            v = sa_judge_combine((SaVerdict)a, (SaVerdict)b);
        } else {
            v = a >= 0 ? a : b; /* one order only: the reference's protocol (AB), or an unfinished swap */
        }
        if (v == SA_VERDICT_WIN) r->w++;
        else if (v == SA_VERDICT_TIE) r->t++;
        else if (v == SA_VERDICT_LOSS) r->l++;
        else r->unparsed++;
    }
    for (int i = 0; i < s->n_rows; i++) {
        SaWinRow *r = &s->rows[i];
        const long n = r->w + r->t + r->l;
        r->score = n ? (double)(r->w - r->l) / (double)n : NAN;
        sa_bootstrap_score(r->w, r->t, r->l, 10000, 0x5a11a9 + (uint64_t)i, &r->score_lo, &r->score_hi);
        r->winrate = r->w + r->l ? (double)r->w / (double)(r->w + r->l) : NAN;
        sa_wilson(r->w, r->w + r->l, 1.96, &r->wr_lo, &r->wr_hi);
    }
    for (int i = 0; i < s->n_math; i++) {
        SaMathRow *m = &s->math[i];
        m->acc = m->total ? (double)m->correct / (double)m->total : NAN;
        sa_wilson(m->correct, m->total, 1.96, &m->lo, &m->hi);
    }
    for (int i = 0; i < s->n_mj; i++) {
        SaMathJudgeRow *r = &s->mj[i];
        r->acc = r->yes + r->no ? (double)r->yes / (double)(r->yes + r->no) : NAN;
        sa_wilson(r->yes, r->yes + r->no, 1.96, &r->lo, &r->hi);
        const long n = r->both_yes + r->both_no + r->judge_only + r->check_only;
        r->agreement = n ? (double)(r->both_yes + r->both_no) / (double)n : NAN;
    }
    /* paired differences: each aligned mode against none, over the ids checked in both */
    for (int i = 0; i < s->n_math; i++) {
        if (!strcmp(s->math[i].mode, "none")) continue;
        int have_none = 0;
        for (int k = 0; k < s->n_math; k++) have_none |= !strcmp(s->math[k].mode, "none");
        if (!have_none) break;
        long n = 0, sum = 0;
        for (size_t c = 0; c < math_of.cap; c++) {
            const char *key = math_of.keys[c];
            if (!key) continue;
            const char *sep = strrchr(key, '\x1f');
            if (!sep || strcmp(sep + 1, s->math[i].mode)) continue;
            char *id = sa_strndup(key, (size_t)(sep - key));
            char *nk = id ? sa_eval_pair_key(id, "none") : NULL;
            const long *u = nk ? sa_strmap_get(&math_of, nk) : NULL;
            if (u) {
                n++;
                sum += math_of.vals[c] - *u;
            }
            free(id);
            free(nk);
        }
        SaMathDiff *d = sa_realloc(s->diffs, (size_t)(s->n_diffs + 1) * sizeof *d);
        if (!d) goto out;
        s->diffs = d;
        d[s->n_diffs++] = (SaMathDiff){.aligned = sa_strdup(s->math[i].mode), .unaligned = sa_strdup("none"), .n = n,
                                       .diff = n ? (double)sum / (double)n : NAN};
    }
    if (summarize_scores(j, s)) goto out;
    rc = 0;
out:
    sa_strmap_free(&cmp_of);
    sa_strmap_free(&math_of);
    free(cmps);
    free(cmp_row);
    if (rc) sa_judged_summary_free(s);
    return rc;
}

void sa_judged_summary_free(SaJudgedSummary *s) {
    for (int i = 0; i < s->n_rows; i++) {
        free(s->rows[i].task);
        free(s->rows[i].pair);
    }
    for (int i = 0; i < s->n_math; i++) free(s->math[i].mode);
    for (int i = 0; i < s->n_mj; i++) free(s->mj[i].mode);
    free(s->mj);
    for (int i = 0; i < s->n_score; i++) {
        free(s->score[i].scorer);
        free(s->score[i].mode);
    }
    free(s->score);
    for (int i = 0; i < s->n_sdiffs; i++) {
        free(s->sdiffs[i].scorer);
        free(s->sdiffs[i].aligned);
        free(s->sdiffs[i].unaligned);
    }
    free(s->sdiffs);
    for (int i = 0; i < s->n_diffs; i++) {
        free(s->diffs[i].aligned);
        free(s->diffs[i].unaligned);
    }
    free(s->rows);
    free(s->math);
    free(s->diffs);
    memset(s, 0, sizeof *s);
}
