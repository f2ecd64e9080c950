/* report_judged.h - the judged parts of salign report (--judged JUDGED.jsonl): win / tie / loss tables
 * per task and pair with both improvement formulas and their 95% intervals (judged.h says which), math
 * accuracy per mode, and per record each verdict with the judge's reasoning collapsible (HTML). */
#ifndef SALIGN_REPORT_JUDGED_H
#define SALIGN_REPORT_JUDGED_H

#include "common.h"
#include "judged.h"
#include "strmap.h"

typedef struct {
    const char *path;
    SaJudged j;
    SaJudgedSummary s;
    SaStrMap first; /* id key -> index of its first line in by_id */
    size_t *by_id;  /* line indices grouped by id, in file order within an id */
    size_t *n_of;   /* lines per id, at the same index as first */
} SaReportJudged;

/* Read and summarise a judged file. 0 or -1 + sa_err. */
int sa_report_judged_load(const char *path, SaReportJudged *r);
void sa_report_judged_free(SaReportJudged *r);

void sa_report_judged_md(SaBuf *b, const SaReportJudged *r);
void sa_report_judged_summary_html(SaBuf *b, const SaReportJudged *r);
/* The verdicts of one record (nothing when it has none). */
void sa_report_judged_record_html(SaBuf *b, const SaReportJudged *r, const char *id_key);
/* CSS the HTML parts use. */
extern const char sa_report_judged_css[];

#endif
