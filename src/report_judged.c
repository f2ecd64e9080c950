/* report_judged.c - the judged parts of salign report (see report_judged.h). */
#include "report_judged.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "judge_protocol.h"
#include "report.h"

const char sa_report_judged_css[] =
    ".v{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}"
    ".v-win{background:#15803d}.v-tie{background:#6b7280}.v-loss{background:#b91c1c}.v-unparsed{background:#a16207}"
    ".v-error{background:#7f1d1d}"
    ".jt{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f5;border-radius:6px;padding:6px 9px;margin:4px 0;"
    "font-size:13px}"
    "ul.judged{list-style:none;padding-left:0;margin:6px 0}ul.judged li{margin:3px 0}";

static void esc(SaBuf *b, const char *s) { sa_html_escape(b, s ? s : "", s ? strlen(s) : 0); }

int sa_report_judged_load(const char *path, SaReportJudged *r) {
    memset(r, 0, sizeof *r);
    r->path = path;
    if (sa_judged_read(path, &r->j)) return -1;
    if (sa_judged_summarize(&r->j, &r->s)) return -1;
    /* group the lines by id: counting pass, then placement */
    size_t n_ids = 0;
    long *slot_of = sa_calloc(r->j.n + 1, sizeof *slot_of);
    if (!slot_of) return -1;
    for (size_t i = 0; i < r->j.n; i++) {
        int added;
        long *v = sa_strmap_put(&r->first, r->j.v[i].id, (long)n_ids, &added);
        if (!v) {
            free(slot_of);
            return -1;
        }
        if (added) n_ids++;
        slot_of[i] = *v;
    }
    size_t *count = sa_calloc(n_ids + 1, sizeof *count), *start = sa_calloc(n_ids + 1, sizeof *start);
    r->by_id = sa_calloc(r->j.n + 1, sizeof *r->by_id);
    r->n_of = sa_calloc(n_ids + 1, sizeof *r->n_of);
    if (!count || !start || !r->by_id || !r->n_of) {
        free(slot_of);
        free(count);
        free(start);
        return -1;
    }
    for (size_t i = 0; i < r->j.n; i++) count[slot_of[i]]++;
    for (size_t k = 1; k < n_ids; k++) start[k] = start[k - 1] + count[k - 1];
    for (size_t i = 0; i < r->j.n; i++) {
        const long k = slot_of[i];
        r->by_id[start[k] + r->n_of[k]++] = i;
    }
    /* first[]: from the id's slot to the start of its lines in by_id */
    for (size_t c = 0; c < r->first.cap; c++)
        if (r->first.keys[c]) r->first.vals[c] = (long)start[r->first.vals[c]];
    /* n_of: the line count at each id's start index */
    size_t *n_at = sa_calloc(r->j.n + 1, sizeof *n_at);
    if (!n_at) {
        free(slot_of);
        free(count);
        free(start);
        return -1;
    }
    for (size_t k = 0; k < n_ids; k++) n_at[start[k]] = r->n_of[k];
    free(r->n_of);
    r->n_of = n_at;
    free(slot_of);
    free(count);
    free(start);
    return 0;
}

void sa_report_judged_free(SaReportJudged *r) {
    sa_judged_summary_free(&r->s);
    sa_judged_free(&r->j);
    sa_strmap_free(&r->first);
    free(r->by_id);
    free(r->n_of);
    memset(r, 0, sizeof *r);
}

static void fmt_ci(char *o, size_t n, double v, double lo, double hi, int pct) {
    if (isnan(v)) snprintf(o, n, "—");
    else if (pct) snprintf(o, n, "%.1f%% [%.1f, %.1f]", 100 * v, 100 * lo, 100 * hi);
    else snprintf(o, n, "%+.3f [%+.3f, %+.3f]", v, lo, hi);
}

typedef struct {
    char w[24], t[24], l[24], u[24], e[24], score[64], wr[64], swap[48];
} Cells;

static void row_cells(const SaWinRow *r, Cells *c) {
    snprintf(c->w, sizeof c->w, "%ld", r->w);
    snprintf(c->t, sizeof c->t, "%ld", r->t);
    snprintf(c->l, sizeof c->l, "%ld", r->l);
    snprintf(c->u, sizeof c->u, "%ld", r->unparsed);
    snprintf(c->e, sizeof c->e, "%ld", r->errors);
    fmt_ci(c->score, sizeof c->score, r->score, r->score_lo, r->score_hi, 0);
    fmt_ci(c->wr, sizeof c->wr, r->winrate, r->wr_lo, r->wr_hi, 1);
    if (r->swapped) snprintf(c->swap, sizeof c->swap, "%ld (%ld disagree)", r->swapped, r->disagree);
    else snprintf(c->swap, sizeof c->swap, "—");
}

static const char note[] =
    "W / T / L: comparisons (one per id) won, tied or lost by the aligned answer; with both orders judged (--swap) a "
    "win or loss counts only when the two agree (a disagreement is a tie, an unparsed order makes it unparsed). "
    "(W−L)/(W+T+L) with a 95% percentile-bootstrap interval (10,000 resamples, fixed seed); W/(W+L) with a 95% Wilson "
    "score interval. Unparsed (not exactly one verdict, or an unknown word) and errors (the judge could not run) are left "
    "out of both.";

static const char mj_note[] =
    "math judge: the judge model's [[true]]/[[false]] on each answer against the record's solution, with salign's own "
    "prompt (src/judge_math_prompt.c; the reference's math prompt was never published). Accuracy: true / (true + false), "
    "95% Wilson interval; agreement: the share of parsed verdicts equal to salign math-check's on the same answer.";

typedef struct {
    char yes[24], no[24], u[24], e[24], acc[64], agree[48], jo[24], co[24];
} MjCells;

static void mj_cells(const SaMathJudgeRow *m, MjCells *c) {
    snprintf(c->yes, sizeof c->yes, "%ld", m->yes);
    snprintf(c->no, sizeof c->no, "%ld", m->no);
    snprintf(c->u, sizeof c->u, "%ld", m->unparsed);
    snprintf(c->e, sizeof c->e, "%ld", m->errors);
    fmt_ci(c->acc, sizeof c->acc, m->acc, m->lo, m->hi, 1);
    const long n = m->both_yes + m->both_no + m->judge_only + m->check_only;
    if (n) snprintf(c->agree, sizeof c->agree, "%.1f%% (%ld of %ld)", 100 * m->agreement, m->both_yes + m->both_no, n);
    else snprintf(c->agree, sizeof c->agree, "—");
    snprintf(c->jo, sizeof c->jo, "%ld", m->judge_only);
    snprintf(c->co, sizeof c->co, "%ld", m->check_only);
}

static const char score_note[] =
    "score: a score model's scalar per answer (--judge-score; PKU-Alignment's beaver models: a reward model scores a more "
    "helpful answer higher, a cost model a more harmful one higher, beaver's cost > 0 meaning unsafe), given only safe-rlhf's "
    "conversation template. Mean per mode and the paired mean difference aligned − none over the ids scored in both, each "
    "with a 95% percentile-bootstrap interval (10,000 resamples, fixed seed).";

static void fmt_mean(char *o, size_t n, double v, double lo, double hi) {
    if (isnan(v)) snprintf(o, n, "—");
    else snprintf(o, n, "%+.4f [%+.4f, %+.4f]", v, lo, hi);
}

void sa_report_judged_md(SaBuf *b, const SaReportJudged *r) {
    sa_buf_printf(b, "\n## Judged: %s\n\n", r->path);
    if (r->s.n_rows) {
        sa_buf_printf(b, "| task | pair (aligned:unaligned) | W | T | L | unparsed | errors | (W−L)/(W+T+L) [95%% bootstrap] | "
                         "W/(W+L) [95%% Wilson] | both orders |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (int i = 0; i < r->s.n_rows; i++) {
            Cells c;
            row_cells(&r->s.rows[i], &c);
            sa_buf_printf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->s.rows[i].task, r->s.rows[i].pair, c.w,
                          c.t, c.l, c.u, c.e, c.score, c.wr, c.swap);
        }
        sa_buf_printf(b, "\n%s\n", note);
    }
    if (r->s.n_math) {
        sa_buf_printf(b, "\n| math: mode | correct | checked | errors | accuracy [95%% Wilson] |\n|---|--:|--:|--:|--:|\n");
        for (int i = 0; i < r->s.n_math; i++) {
            const SaMathRow *m = &r->s.math[i];
            char acc[64];
            fmt_ci(acc, sizeof acc, m->acc, m->lo, m->hi, 1);
            sa_buf_printf(b, "| %s | %ld | %ld | %ld | %s |\n", m->mode, m->correct, m->total, m->errors, acc);
        }
        for (int i = 0; i < r->s.n_diffs; i++) {
            const SaMathDiff *d = &r->s.diffs[i];
            if (isnan(d->diff)) sa_buf_printf(b, "\nmath %s − %s: no id checked in both\n", d->aligned, d->unaligned);
            else sa_buf_printf(b, "\nmath %s − %s: %+.1f points (paired, %ld ids)\n", d->aligned, d->unaligned, 100 * d->diff, d->n);
        }
    }
    if (r->s.n_mj) {
        sa_buf_printf(b, "\n| math judge: mode | true | false | unparsed | errors | accuracy [95%% Wilson] | agrees with math-check | "
                         "judge true, check false | judge false, check true |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (int i = 0; i < r->s.n_mj; i++) {
            MjCells c;
            mj_cells(&r->s.mj[i], &c);
            sa_buf_printf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->s.mj[i].mode, c.yes, c.no, c.u, c.e, c.acc,
                          c.agree, c.jo, c.co);
        }
        sa_buf_printf(b, "\n%s\n", mj_note);
    }
    if (r->s.n_score) {
        sa_buf_printf(b, "\n| score: scorer | mode | scored | errors | mean [95%% bootstrap] |\n|---|---|--:|--:|--:|\n");
        for (int i = 0; i < r->s.n_score; i++) {
            const SaScoreRow *m = &r->s.score[i];
            char mean[96];
            fmt_mean(mean, sizeof mean, m->mean, m->lo, m->hi);
            sa_buf_printf(b, "| %s | %s | %ld | %ld | %s |\n", m->scorer, m->mode, m->n, m->errors, mean);
        }
        for (int i = 0; i < r->s.n_sdiffs; i++) {
            const SaScoreDiff *d = &r->s.sdiffs[i];
            char diff[96];
            fmt_mean(diff, sizeof diff, d->diff, d->lo, d->hi);
            sa_buf_printf(b, "\nscore %s, %s − %s: %s (paired, %ld ids)\n", d->scorer, d->aligned, d->unaligned, diff, d->n);
        }
        sa_buf_printf(b, "\n%s\n", score_note);
    }
}

void sa_report_judged_summary_html(SaBuf *b, const SaReportJudged *r) {
    sa_buf_printf(b, "<h2>Judged</h2>\n<p class=\"meta\">");
    esc(b, r->path);
    sa_buf_printf(b, " · %zu judged line(s)", r->j.n);
    if (r->j.dups) sa_buf_printf(b, " · %ld repeated line(s) ignored", r->j.dups);
    if (r->j.torn_at >= 0) sa_buf_printf(b, " · an incomplete last line ignored");
    sa_buf_printf(b, "</p>\n");
    if (r->s.n_rows) {
        sa_buf_printf(b, "<table class=\"summary\" id=\"judged\">\n<thead><tr><th>task</th><th>pair (aligned:unaligned)</th>"
                         "<th>W</th><th>T</th><th>L</th><th>unparsed</th><th>errors</th><th>(W−L)/(W+T+L) [95%% bootstrap]</th>"
                         "<th>W/(W+L) [95%% Wilson]</th><th>both orders</th></tr></thead>\n<tbody>\n");
        for (int i = 0; i < r->s.n_rows; i++) {
            Cells c;
            row_cells(&r->s.rows[i], &c);
            sa_buf_printf(b, "<tr><td>");
            esc(b, r->s.rows[i].task);
            sa_buf_printf(b, "</td><td>");
            esc(b, r->s.rows[i].pair);
            sa_buf_printf(b, "</td>");
            const char *cells[] = {c.w, c.t, c.l, c.u, c.e, c.score, c.wr, c.swap};
            for (size_t k = 0; k < SA_ARRAY_LEN(cells); k++) sa_buf_printf(b, "<td class=\"n\">%s</td>", cells[k]);
            sa_buf_printf(b, "</tr>\n");
        }
        sa_buf_printf(b, "</tbody></table>\n<p class=\"note\">%s</p>\n", note);
    }
    if (r->s.n_math) {
        sa_buf_printf(b, "<table class=\"summary\" id=\"math\">\n<thead><tr><th>math: mode</th><th>correct</th><th>checked</th>"
                         "<th>errors</th><th>accuracy [95%% Wilson]</th></tr></thead>\n<tbody>\n");
        for (int i = 0; i < r->s.n_math; i++) {
            const SaMathRow *m = &r->s.math[i];
            char acc[64];
            fmt_ci(acc, sizeof acc, m->acc, m->lo, m->hi, 1);
            sa_buf_printf(b, "<tr><td><span class=\"badge m-%s\">%s</span></td><td class=\"n\">%ld</td><td class=\"n\">%ld</td>"
                             "<td class=\"n\">%ld</td><td class=\"n\">%s</td></tr>\n",
                          m->mode, m->mode, m->correct, m->total, m->errors, acc);
        }
        sa_buf_printf(b, "</tbody></table>\n");
        for (int i = 0; i < r->s.n_diffs; i++) {
            const SaMathDiff *d = &r->s.diffs[i];
            if (isnan(d->diff)) continue;
            sa_buf_printf(b, "<p class=\"note\">math %s − %s: %+.1f points (paired, %ld ids checked in both).</p>\n", d->aligned,
                          d->unaligned, 100 * d->diff, d->n);
        }
    }
    if (r->s.n_mj) {
        sa_buf_printf(b, "<table class=\"summary\" id=\"math-judge\">\n<thead><tr><th>math judge: mode</th><th>true</th>"
                         "<th>false</th><th>unparsed</th><th>errors</th><th>accuracy [95%% Wilson]</th>"
                         "<th>agrees with math-check</th><th>judge true, check false</th><th>judge false, check true</th>"
                         "</tr></thead>\n<tbody>\n");
        for (int i = 0; i < r->s.n_mj; i++) {
            MjCells c;
            mj_cells(&r->s.mj[i], &c);
            sa_buf_printf(b, "<tr><td><span class=\"badge m-%s\">%s</span></td>", r->s.mj[i].mode, r->s.mj[i].mode);
            const char *cells[] = {c.yes, c.no, c.u, c.e, c.acc, c.agree, c.jo, c.co};
            for (size_t k = 0; k < SA_ARRAY_LEN(cells); k++) sa_buf_printf(b, "<td class=\"n\">%s</td>", cells[k]);
            sa_buf_printf(b, "</tr>\n");
        }
        sa_buf_printf(b, "</tbody></table>\n<p class=\"note\">%s</p>\n", mj_note);
    }
    if (r->s.n_score) {
        sa_buf_printf(b, "<table class=\"summary\" id=\"score\">\n<thead><tr><th>score: scorer</th><th>mode</th><th>scored</th>"
                         "<th>errors</th><th>mean [95%% bootstrap]</th></tr></thead>\n<tbody>\n");
        for (int i = 0; i < r->s.n_score; i++) {
            const SaScoreRow *m = &r->s.score[i];
            char mean[96];
            fmt_mean(mean, sizeof mean, m->mean, m->lo, m->hi);
            sa_buf_printf(b, "<tr><td>");
            esc(b, m->scorer);
            sa_buf_printf(b, "</td><td><span class=\"badge m-%s\">%s</span></td><td class=\"n\">%ld</td><td class=\"n\">%ld</td>"
                             "<td class=\"n\">%s</td></tr>\n",
                          m->mode, m->mode, m->n, m->errors, mean);
        }
        sa_buf_printf(b, "</tbody></table>\n");
        for (int i = 0; i < r->s.n_sdiffs; i++) {
            const SaScoreDiff *d = &r->s.sdiffs[i];
            char diff[96];
            fmt_mean(diff, sizeof diff, d->diff, d->lo, d->hi);
            sa_buf_printf(b, "<p class=\"note\">score ");
            esc(b, d->scorer);
            sa_buf_printf(b, ", %s − %s: %s (paired, %ld ids scored in both).</p>\n", d->aligned, d->unaligned, diff, d->n);
        }
        sa_buf_printf(b, "<p class=\"note\">%s</p>\n", score_note);
    }
}

void sa_report_judged_record_html(SaBuf *b, const SaReportJudged *r, const char *id_key) {
    const long *start = id_key ? sa_strmap_get(&r->first, id_key) : NULL;
    if (!start) return;
    const size_t n = r->n_of[*start];
    sa_buf_printf(b, "<details class=\"judged\" open><summary>judged: %zu line(s)</summary>\n<ul class=\"judged\">\n", n);
    for (size_t k = 0; k < n; k++) {
        const SaJudgedLine *l = &r->j.v[r->by_id[*start + (long)k]];
        if (!strcmp(l->task, "score")) {
            sa_buf_printf(b, "<li><span class=\"v v-%s\">%s</span> score ", l->error ? "error" : "tie", l->error ? "error" : "score");
            esc(b, l->scorer);
            sa_buf_printf(b, " ");
            esc(b, l->mode);
            if (l->error) {
                sa_buf_printf(b, "<div class=\"err\">");
                esc(b, l->error);
                sa_buf_printf(b, "</div>");
            } else {
                sa_buf_printf(b, ": <code>%.4f</code>", l->score);
            }
            sa_buf_printf(b, "</li>\n");
            continue;
        }
        const int mj = !strcmp(l->task, "math_judge");
        const int math = mj || !strcmp(l->task, "math");
        const char *v = l->error                ? "error"
                        : math && l->correct == -2 ? "unparsed"
                        : math                  ? (l->correct ? "win" : "loss")
                                                : sa_verdict_name((SaVerdict)l->outcome);
        const char *label = l->error ? "error" : math && l->correct >= 0 ? (l->correct ? "correct" : "wrong") : v;
        sa_buf_printf(b, "<li><span class=\"v v-%s\">%s</span> ", v, label);
        esc(b, l->task);
        sa_buf_printf(b, " ");
        if (math) {
            esc(b, l->mode);
        } else {
            esc(b, l->pair);
            sa_buf_printf(b, " %s", l->order && !strcmp(l->order, "BA") ? "(order BA: aligned answer as A)" : "(order AB)");
            if (l->verdict) {
                sa_buf_printf(b, " · verdict <code>");
                esc(b, l->verdict);
                sa_buf_printf(b, "</code>");
            }
            if (l->matches >= 0 && l->matches != 1) sa_buf_printf(b, " · %d verdict matches", l->matches);
        }
        if (l->error) {
            sa_buf_printf(b, "<div class=\"err\">");
            esc(b, l->error);
            sa_buf_printf(b, "</div>");
        } else if (l->text) {
            sa_buf_printf(b, "<details><summary>%s</summary><div class=\"jt\">",
                          mj || l->matches >= 0 ? "the judge's reasoning" : "verdict probabilities");
            esc(b, l->text);
            sa_buf_printf(b, "</div></details>");
        }
        sa_buf_printf(b, "</li>\n");
    }
    sa_buf_printf(b, "</ul></details>\n");
}
