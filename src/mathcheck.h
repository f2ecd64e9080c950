/* mathcheck.h - is a model's final math answer the dataset's? Extraction, normalisation and
 * comparison by value, for `salign math-check` and `salign judge --tasks math`.
 *
 *   salign math-check < PAIRS.jsonl > CHECKED.jsonl
 *     in:  {"answer": "... \\boxed{\\frac12}", "solution": "... #### 0.5"}   (one per line)
 *     out: {"correct": true, "answer_extracted": "\\frac12", "solution_extracted": "0.5",
 *           "answer_normalized": "\\frac{1}{2}", "solution_normalized": "0.5"}
 *
 * Extraction (the first rule that applies, on each of the two texts):
 *   1. the content of the last \boxed{...} or \fbox{...} (nested braces; "\boxed 5" takes 5);
 *   2. the rest of the line after the last "####" (GSM8K);
 *   3. the rest of the line after the last "the answer is" (any case), without a leading ':';
 *   4. the last number: runs of digits, ',' and '.' (after an optional '-'); a run whose commas
 *      are not thousands separators (1-3 digits, then groups of 3) is cut at its commas;
 *   otherwise nothing (never correct).
 * Normalisation, in this order: \left/\right dropped (\left. and \right. entirely); \dfrac and
 * \tfrac become \frac; \text{...}, \textbf, \textit, \mathrm, \mbox: dropped when the content
 * starts with a space (a unit: "10\text{ cm}"), else replaced by their content; degrees (^\circ,
 * ^{\circ}, \circ, \degree, °) and percent signs (\%, %) removed; dollar signs (\$, $) removed;
 * LaTeX spacing (\! \, \; \: \quad \qquad, ~, "\ ") becomes a space or nothing; a Unicode minus
 * becomes '-'; one-character arguments get braces (\frac12 -> \frac{1}{2}, \sqrt2 -> \sqrt{2});
 * whitespace trimmed and runs collapsed; a trailing '.' removed; a leading "x =" (one letter)
 * removed; a whole number written with thousands separators loses them (1,000 -> 1000).
 * Comparison: equal normalised texts (also ignoring spaces) are correct; otherwise both are
 * parsed (mathexpr.h) and compared by value; anything else is incorrect. */
#ifndef SALIGN_MATHCHECK_H
#define SALIGN_MATHCHECK_H

#include "common.h"

typedef struct {
    int correct;
    char *answer_extracted, *solution_extracted; /* NULL: nothing found */
    char *answer_normalized, *solution_normalized;
} SaMathResult;

/* Extract the final answer of a text (rules above); NULL when there is none (or out of memory). */
char *sa_math_extract(const char *text);
/* Normalise an extracted answer (rules above). Malloc'd; NULL on out of memory. */
char *sa_math_normalize(const char *s);
/* Are two normalised answers the same? */
int sa_math_equal(const char *norm_a, const char *norm_b);
/* The whole check of an answer against a solution. 0, or -1 + sa_err on out of memory. */
int sa_math_check(const char *answer, const char *solution, SaMathResult *r);
void sa_math_result_free(SaMathResult *r);
/* {"correct": ..., "answer_extracted": ..., ...} as cJSON-printable fields added to obj (a cJSON*). */
void sa_math_result_to_json(const SaMathResult *r, void *cjson_obj);

int sa_cmd_math_check(int argc, char **argv);

#endif
