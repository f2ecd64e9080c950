/* report.h - salign report: a results file (salign eval) as one self-contained HTML page or a
 * markdown summary.
 *
 *   salign report RESULTS.jsonl [-o report.html] [--format html|md] [--max-records N]
 *
 * The HTML has no scripts and loads nothing (a Content-Security-Policy forbids it): inline CSS, an
 * inline SVG latency histogram, a summary table per mode, and per record the upstream's sentences
 * beside the aligner's corrections with a word-level diff (<del>/<ins>). Every text from the
 * results is HTML-escaped. */
#ifndef SALIGN_REPORT_H
#define SALIGN_REPORT_H

#include "common.h"

/* Append s with & < > " ' escaped. */
void sa_html_escape(SaBuf *b, const char *s, size_t n);

/* Word-level Levenshtein distance between two texts (words = runs of non-whitespace); -1 when
 * the texts are too long to compare (over ~10^9 cells). */
long sa_word_edit_distance(const char *a, const char *b);

/* Word diff of a against b as escaped HTML: *left is a with removed words in <del>, *right is b
 * with added words in <ins>; whitespace between words is kept. 0 or -1 (out of memory). */
int sa_word_diff_html(const char *a, const char *b, SaBuf *left, SaBuf *right);

int sa_cmd_report(int argc, char **argv);

#endif
