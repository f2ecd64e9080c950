/* judged.h - judged results (salign judge's output): reading them back and aggregating them into
 * win / tie / loss tables and math accuracies, for salign judge's summary and salign report.
 *
 * Pairwise lines: {"id", "task": "safety"|"utility", "pair": "stream:none", "order": "AB"|"BA",
 * "outcome": "win"|"tie"|"loss"|"unparsed", ... } (or with "error": the judge could not run).
 * Math lines: {"id", "task": "math", "mode", "correct": true|false, ...} (or "error").
 * Math judge lines (--math-judge): {"id", "task": "math_judge", "mode", "correct": true|false|null (the
 * judge's [[true]]/[[false]]; null: neither found), "check_correct": math-check's verdict, ...}.
 * Score lines (--judge-score): {"id", "task": "score", "mode", "scorer": the score model's name,
 * "score": number, ...} (or "error").
 *
 * Aggregation per (task, pair): the lines of one id are one comparison; with both orders present
 * (--swap) their outcomes are combined by sa_judge_combine (a win or loss only when both agree). The
 * improvement score (W - L) / (W + T + L) gets a 95% percentile-bootstrap interval (10,000 resamples of
 * the comparisons, fixed seed: the same file gives the same interval), the win rate W / (W + L) a 95%
 * Wilson score interval; unparsed comparisons and errors are counted but left out of both. Math: the
 * share of correct answers per mode (Wilson interval), and per aligned mode the paired difference
 * aligned - none over the ids both were checked on. The math judge: per mode, how many answers the
 * judge called correct or wrong (Wilson interval of its accuracy), unparsed and errors, and how often
 * it agrees with math-check on the same answers (the 2 x 2 counts). Scores: per (scorer, mode) the mean
 * and its 95% bootstrap interval, and per aligned mode the paired mean difference aligned - none over
 * the ids scored in both, with a 95% percentile-bootstrap interval (10,000 resamples, fixed seed). */
#ifndef SALIGN_JUDGED_H
#define SALIGN_JUDGED_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "common.h"

typedef struct {
    char *id, *task, *pair, *order, *mode; /* pair/order: pairwise lines; mode: math and score lines */
    char *scorer;    /* score lines */
    double score;    /* score lines (NAN for an error line) */
    int outcome;     /* pairwise: an SaVerdict; -1 for an error line */
    int correct;     /* math, math_judge: 1 or 0; -1 for an error line; math_judge: -2 unparsed */
    int check_correct; /* math_judge: math-check's verdict on the same answer, 1 or 0; -1 unknown */
    int matches;     /* verdict matches in the text (-1: verdict-only or unknown) */
    char *verdict;   /* the parsed verdict word, or NULL */
    char *text;      /* the judge's text (verdict-only: the candidates' probabilities as text) */
    char *error;
    long line_no;
} SaJudgedLine;

typedef struct {
    SaJudgedLine *v;
    size_t n, cap;
    long long torn_at; /* >= 0: a torn last line was ignored */
    long dups;         /* lines whose key was seen before (ignored) */
} SaJudged;

/* NULL when o is a judged line, else what one is (results_file.h's SaJsonlCheck). */
const char *sa_judged_check(const cJSON *o);
/* The line's key: id, task, and pair + order (pairwise), mode (math, math_judge) or mode + scorer (score),
 * joined by \x1f. Malloc'd. */
char *sa_judged_key(const cJSON *o);
/* The key from its parts (order/mode as above). */
char *sa_judged_key_of(const char *id_key, const char *task, const char *pair_or_mode, const char *order);

int sa_judged_read(const char *path, SaJudged *j);
void sa_judged_free(SaJudged *j);

typedef struct {
    char *task, *pair;
    long w, t, l, unparsed, errors; /* comparisons (one per id) */
    long swapped;                   /* comparisons judged in both orders */
    long disagree;                  /* of those, how many orders disagreed (counted as ties) */
    double score, score_lo, score_hi; /* (W - L) / (W + T + L), bootstrap 95% interval; NAN when W+T+L = 0 */
    double winrate, wr_lo, wr_hi;     /* W / (W + L), Wilson 95% interval; NAN when W+L = 0 */
} SaWinRow;

typedef struct {
    char *mode;
    long correct, total, errors;
    double acc, lo, hi; /* Wilson 95% */
} SaMathRow;

typedef struct {
    char *aligned, *unaligned;
    long n;      /* ids checked in both modes */
    double diff; /* accuracy(aligned) - accuracy(unaligned) over those ids */
} SaMathDiff;

typedef struct {
    char *mode;
    long yes, no, unparsed, errors; /* the judge's verdicts */
    double acc, lo, hi;             /* yes / (yes + no), Wilson 95%; NAN when none parsed */
    long both_yes, both_no, judge_only, check_only; /* parsed verdicts with math-check's beside them */
    double agreement;               /* (both_yes + both_no) / their sum; NAN when none */
} SaMathJudgeRow;

typedef struct {
    char *scorer, *mode;
    long n, errors;
    double mean, lo, hi; /* bootstrap 95% of the mean; NAN when n = 0 */
} SaScoreRow;

typedef struct {
    char *scorer, *aligned, *unaligned;
    long n;                  /* ids scored in both modes */
    double diff, lo, hi;     /* mean of score(aligned) - score(unaligned), bootstrap 95%; NAN when n = 0 */
} SaScoreDiff;

typedef struct {
    SaWinRow *rows;
    int n_rows;
    SaScoreRow *score;
    int n_score;
    SaScoreDiff *sdiffs;
    int n_sdiffs;
    SaMathJudgeRow *mj;
    int n_mj;
    SaMathRow *math;
    int n_math;
    SaMathDiff *diffs;
    int n_diffs;
} SaJudgedSummary;

int sa_judged_summarize(const SaJudged *j, SaJudgedSummary *s);
void sa_judged_summary_free(SaJudgedSummary *s);

/* 95% (z = 1.96) Wilson score interval of k successes in n; NAN, NAN for n = 0. */
void sa_wilson(long k, long n, double z, double *lo, double *hi);
/* Percentile bootstrap interval (2.5%, 97.5%) of (W - L) / N over reps resamples of N = w + t + l
 * comparisons (each +1, 0 or -1), seeded. */
void sa_bootstrap_score(long w, long t, long l, int reps, uint64_t seed, double *lo, double *hi);
/* Percentile bootstrap interval (2.5%, 97.5%) of the mean of v[0..n), reps resamples, seeded. NAN for n = 0. */
void sa_bootstrap_mean(const double *v, long n, int reps, uint64_t seed, double *lo, double *hi);

#endif
