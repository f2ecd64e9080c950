/* mathcheck.c - final-answer extraction, normalisation and comparison (see mathcheck.h). */
#include "mathcheck.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flags.h"
#include "mathexpr.h"

/* ---- extraction ------------------------------------------------------------------------------ */

static char *trimmed(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return sa_strndup(s, n);
}

/* The index just past the '}' matching the '{' at s[i], or 0 if it never closes. "\{" and "\}"
 * are text, not grouping. */
static size_t match_brace(const char *s, size_t i) {
    int depth = 0;
    for (size_t k = i; s[k]; k++) {
        if (s[k] == '\\' && (s[k + 1] == '{' || s[k + 1] == '}' || s[k + 1] == '\\')) {
            k++;
            continue;
        }
        if (s[k] == '{') depth++;
        else if (s[k] == '}' && --depth == 0) return k + 1;
    }
    return 0;
}

static int is_cmd_at(const char *s, size_t i, const char *name) {
    size_t n = strlen(name);
    return s[i] == '\\' && !strncmp(s + i + 1, name, n) && !isalpha((unsigned char)s[i + 1 + n]);
}

/* 1. the last complete \boxed{...} / \fbox{...} */
static char *extract_boxed(const char *t) {
    const char *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; t[i]; i++) {
        size_t skip = is_cmd_at(t, i, "boxed") ? 6 : is_cmd_at(t, i, "fbox") ? 5 : 0;
        if (!skip) continue;
        size_t j = i + skip;
        while (t[j] == ' ') j++;
        if (t[j] == '{') {
            size_t end = match_brace(t, j);
            if (!end) continue;
            best = t + j + 1;
            best_n = end - j - 2;
        } else if (j > i + skip) { /* "\boxed 5": up to a space or '$' */
            size_t k = j;
            while (t[k] && !isspace((unsigned char)t[k]) && t[k] != '$') k++;
            if (k == j) continue;
            best = t + j;
            best_n = k - j;
        }
    }
    return best ? trimmed(best, best_n) : NULL;
}

/* The rest of the line after the last occurrence of marker (case-insensitive if ci). */
static char *after_last(const char *t, const char *marker, int ci) {
    const size_t m = strlen(marker);
    const char *last = NULL;
    for (const char *p = t; *p; p++)
        if (ci ? !strncasecmp(p, marker, m) : !strncmp(p, marker, m)) last = p;
    if (!last) return NULL;
    const char *s = last + m;
    if (ci)
        while (*s == ' ' || *s == '\t' || *s == ':') s++;
    const char *e = strchr(s, '\n');
    char *r = trimmed(s, e ? (size_t)(e - s) : strlen(s));
    if (r && !*r) {
        free(r);
        return NULL;
    }
    return r;
}

static int is_plain_number(const char *s, size_t n) { /* \d+(\.\d+)? | \.\d+ */
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    const size_t int_digits = i;
    if (i < n && s[i] == '.') {
        size_t j = ++i;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i == j) return 0;
    } else if (!int_digits) {
        return 0;
    }
    return i == n;
}

static int is_thousands(const char *s, size_t n) { /* \d{1,3}(,\d{3})+(\.\d+)? */
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    if (i < 1 || i > 3 || i == n || s[i] != ',') return 0;
    int groups = 0;
    while (i < n && s[i] == ',') {
        size_t j = i + 1;
        while (j < n && isdigit((unsigned char)s[j])) j++;
        if (j - i - 1 != 3) return 0;
        i = j;
        groups++;
    }
    if (i < n && s[i] == '.') return groups && is_plain_number(s + i, n - i);
    return groups && i == n;
}

/* 4. the last number */
static char *extract_last_number(const char *t) {
    const char *best = NULL;
    size_t best_n = 0;
    int best_neg = 0;
    for (size_t i = 0; t[i];) {
        const int starts = isdigit((unsigned char)t[i]) || (t[i] == '.' && isdigit((unsigned char)t[i + 1]));
        if (!starts) {
            i++;
            continue;
        }
        size_t j = i;
        while (t[j] && (isdigit((unsigned char)t[j]) || t[j] == ',' || t[j] == '.')) j++;
        size_t n = j - i;
        while (n && (t[i + n - 1] == ',' || t[i + n - 1] == '.')) n--;
        const int neg = i > 0 && t[i - 1] == '-';
        if (memchr(t + i, ',', n) && !is_thousands(t + i, n)) {
            /* pieces between commas, each its own number; the minus belongs to the first */
            size_t a = i;
            for (size_t k = i; k <= i + n; k++) {
                if (k < i + n && t[k] != ',') continue;
                if (is_plain_number(t + a, k - a)) {
                    best = t + a;
                    best_n = k - a;
                    best_neg = a == i && neg;
                }
                a = k + 1;
            }
        } else if (memchr(t + i, ',', n) || is_plain_number(t + i, n)) {
            best = t + i;
            best_n = n;
            best_neg = neg;
        }
        i = j;
    }
    if (!best) return NULL;
    if (best_neg) best--, best_n++;
    return sa_strndup(best, best_n);
}

char *sa_math_extract(const char *t) {
    char *r;
    if (!t) return NULL;
    if ((r = extract_boxed(t))) return r;
    if ((r = after_last(t, "####", 0))) return r;
    if ((r = after_last(t, "the answer is", 1))) return r;
    return extract_last_number(t);
}

/* ---- normalisation -------------------------------------------------------------------------- */

/* Replace every occurrence of `from` (a command: not when a letter follows, if cmd) by `to`. */
static void replace_all(SaBuf *b, const char *from, const char *to, int cmd) {
    const size_t fn = strlen(from), tn = strlen(to);
    SaBuf o = {0};
    sa_buf_append(&o, "", 0);
    for (size_t i = 0; i < b->len;) {
        if (!strncmp(b->data + i, from, fn) && !(cmd && isalpha((unsigned char)b->data[i + fn]))) {
            sa_buf_append(&o, to, tn);
            i += fn;
        } else {
            sa_buf_append(&o, b->data + i, 1);
            i++;
        }
    }
    sa_buf_free(b);
    *b = o;
}

static void drop_left_right(SaBuf *b) {
    SaBuf o = {0};
    sa_buf_append(&o, "", 0);
    const char *s = b->data;
    for (size_t i = 0; i < b->len;) {
        size_t skip = is_cmd_at(s, i, "left") ? 5 : is_cmd_at(s, i, "right") ? 6 : 0;
        if (skip) {
            i += skip;
            while (s[i] == ' ') i++;
            if (s[i] == '.') i++;
            continue;
        }
        sa_buf_append(&o, s + i, 1);
        i++;
    }
    sa_buf_free(b);
    *b = o;
}

static void unwrap_text(SaBuf *b) {
    static const char *names[] = {"textbf", "textit", "text", "mathrm", "mbox"};
    for (size_t i = 0; i < b->len; i++) {
        const char *s = b->data;
        for (size_t k = 0; k < SA_ARRAY_LEN(names); k++) {
            if (!is_cmd_at(s, i, names[k])) continue;
            size_t j = i + 1 + strlen(names[k]);
            while (s[j] == ' ') j++;
            if (s[j] != '{') break;
            size_t end = match_brace(s, j);
            if (!end) break;
            const int unit = isspace((unsigned char)s[j + 1]);
            SaBuf o = {0};
            sa_buf_append(&o, s, i);
            if (!unit) sa_buf_append(&o, s + j + 1, end - j - 2);
            sa_buf_append(&o, s + end, b->len - end);
            sa_buf_free(b);
            *b = o;
            i--; /* look at the same place again: the content may hold another command */
            break;
        }
    }
}

static void brace_args_in(const char *s, size_t n, SaBuf *o);

/* Copy one argument of \frac or \sqrt (s[i..n)), adding braces when it is a single character or
 * command; a braced argument's content is processed too (\frac{\sqrt3}{2}). */
static size_t brace_arg(const char *s, size_t i, size_t n, SaBuf *o) {
    while (i < n && s[i] == ' ') i++;
    if (i >= n) return i;
    if (s[i] == '{') {
        size_t end = match_brace(s, i);
        if (!end || end > n) end = n + 1; /* unclosed: the rest, as if it closed at the end */
        sa_buf_append(o, "{", 1);
        brace_args_in(s + i + 1, end - i - 2, o);
        if (end <= n) sa_buf_append(o, "}", 1);
        return SA_MIN(end, n);
    }
    size_t k = 1;
    if (s[i] == '\\') {
        while (i + k < n && isalpha((unsigned char)s[i + k])) k++;
        if (k == 1 && i + 1 < n) k = 2;
    } else if ((unsigned char)s[i] >= 0x80) { /* one UTF-8 character (π) */
        while (i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80) k++;
    }
    sa_buf_append(o, "{", 1);
    sa_buf_append(o, s + i, k);
    sa_buf_append(o, "}", 1);
    return i + k;
}

static void brace_args_in(const char *s, size_t n, SaBuf *o) {
    for (size_t i = 0; i < n;) {
        if (n - i > 5 && is_cmd_at(s, i, "frac") && (i + 5 == n || !isalpha((unsigned char)s[i + 5]))) {
            sa_buf_append(o, "\\frac", 5);
            i = brace_arg(s, i + 5, n, o);
            i = brace_arg(s, i, n, o);
        } else if (n - i > 5 && is_cmd_at(s, i, "sqrt")) {
            sa_buf_append(o, "\\sqrt", 5);
            i += 5;
            while (i < n && s[i] == ' ') i++;
            if (i < n && s[i] == '[') {
                const char *close = memchr(s + i, ']', n - i);
                size_t e = close ? (size_t)(close - s) + 1 : n;
                sa_buf_append(o, s + i, e - i);
                i = e;
            }
            i = brace_arg(s, i, n, o);
        } else {
            sa_buf_append(o, s + i, 1);
            i++;
        }
    }
}

static void brace_args(SaBuf *b) {
    SaBuf o = {0};
    sa_buf_append(&o, "", 0);
    brace_args_in(b->data, b->len, &o);
    sa_buf_free(b);
    *b = o;
}

static void collapse_ws(SaBuf *b) {
    size_t w = 0;
    int in_space = 1; /* drops leading whitespace */
    for (size_t i = 0; i < b->len; i++) {
        const int sp = isspace((unsigned char)b->data[i]);
        if (sp && in_space) continue;
        b->data[w++] = sp ? ' ' : b->data[i];
        in_space = sp;
    }
    while (w && b->data[w - 1] == ' ') w--;
    b->len = w;
    b->data[w] = 0;
}

char *sa_math_normalize(const char *s) {
    SaBuf b = {0};
    if (sa_buf_append(&b, s, strlen(s))) return NULL;
    drop_left_right(&b);
    replace_all(&b, "\\dfrac", "\\frac", 1);
    replace_all(&b, "\\tfrac", "\\frac", 1);
    unwrap_text(&b);
    static const char *degrees[] = {"^{\\circ}", "^\\circ", "\\circ", "\\degree", "\xc2\xb0"};
    for (size_t i = 0; i < SA_ARRAY_LEN(degrees); i++) replace_all(&b, degrees[i], "", degrees[i][0] == '\\');
    replace_all(&b, "\\%", "", 0);
    replace_all(&b, "%", "", 0);
    replace_all(&b, "\\$", "", 0);
    replace_all(&b, "$", "", 0);
    replace_all(&b, "{,}", ",", 0);
    static const char *gone[] = {"\\!", "\\,", "\\;", "\\:"};
    for (size_t i = 0; i < SA_ARRAY_LEN(gone); i++) replace_all(&b, gone[i], "", 0);
    replace_all(&b, "\\qquad", " ", 1);
    replace_all(&b, "\\quad", " ", 1);
    replace_all(&b, "\\ ", " ", 0);
    replace_all(&b, "~", " ", 0);
    replace_all(&b, "\xe2\x88\x92", "-", 0); /* U+2212 MINUS SIGN */
    brace_args(&b);
    collapse_ws(&b);
    if (b.len && b.data[b.len - 1] == '.') {
        b.data[--b.len] = 0;
        collapse_ws(&b);
    }
    /* "x = 5" -> "5" */
    if (b.len >= 2 && isalpha((unsigned char)b.data[0])) {
        size_t i = 1;
        while (b.data[i] == ' ') i++;
        if (b.data[i] == '=' && b.data[i + 1] != '=') {
            i++;
            while (b.data[i] == ' ') i++;
            memmove(b.data, b.data + i, b.len - i + 1);
            b.len -= i;
        }
    }
    const size_t neg = b.len && b.data[0] == '-';
    if (is_thousands(b.data + neg, b.len - neg)) {
        size_t w = 0;
        for (size_t i = 0; i < b.len; i++)
            if (b.data[i] != ',') b.data[w++] = b.data[i];
        b.len = w;
        b.data[w] = 0;
    }
    return b.data;
}

/* ---- comparison ---------------------------------------------------------------------------- */

static int equal_without_spaces(const char *a, const char *b) {
    for (;;) {
        while (*a == ' ') a++;
        while (*b == ' ') b++;
        if (*a != *b) return 0;
        if (!*a) return 1;
        a++, b++;
    }
}

int sa_math_equal(const char *a, const char *b) {
    if (!a || !b || !*a || !*b) return 0;
    if (equal_without_spaces(a, b)) return 1;
    SaMathExpr *x = sa_mexpr_parse(a), *y = x ? sa_mexpr_parse(b) : NULL;
    const int eq = x && y && sa_mexpr_equal(x, y);
    sa_mexpr_free(x);
    sa_mexpr_free(y);
    return eq;
}

void sa_math_result_free(SaMathResult *r) {
    free(r->answer_extracted);
    free(r->solution_extracted);
    free(r->answer_normalized);
    free(r->solution_normalized);
    memset(r, 0, sizeof *r);
}

int sa_math_check(const char *answer, const char *solution, SaMathResult *r) {
    memset(r, 0, sizeof *r);
    r->answer_extracted = sa_math_extract(answer);
    r->solution_extracted = sa_math_extract(solution);
    if (r->answer_extracted && !(r->answer_normalized = sa_math_normalize(r->answer_extracted))) goto oom;
    if (r->solution_extracted && !(r->solution_normalized = sa_math_normalize(r->solution_extracted))) goto oom;
    r->correct = sa_math_equal(r->answer_normalized, r->solution_normalized);
    return 0;
oom:
    sa_math_result_free(r);
    return sa_err("out of memory");
}

static void add_str_or_null(cJSON *o, const char *k, const char *v) {
    if (v) cJSON_AddStringToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

void sa_math_result_to_json(const SaMathResult *r, void *obj) {
    cJSON *o = obj;
    cJSON_AddBoolToObject(o, "correct", r->correct);
    add_str_or_null(o, "answer_extracted", r->answer_extracted);
    add_str_or_null(o, "solution_extracted", r->solution_extracted);
    add_str_or_null(o, "answer_normalized", r->answer_normalized);
    add_str_or_null(o, "solution_normalized", r->solution_normalized);
}

/* ---- the command ----------------------------------------------------------------------------- */

/* A field as text: a string, or a number's JSON text (GSM8K-style numeric answers). */
static char *field_text(const cJSON *o, const char *k, long line_no) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(v)) return sa_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) return cJSON_PrintUnformatted(v);
    sa_err("stdin: line %ld: \"%s\" is %s (a string is needed)", line_no, k, v ? "not a string" : "missing");
    return NULL;
}

int sa_cmd_math_check(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: salign math-check < PAIRS.jsonl > CHECKED.jsonl\n"
                   "  Each input line: {\"answer\": TEXT, \"solution\": TEXT}. Each output line:\n"
                   "  {\"correct\": BOOL, \"answer_extracted\": ..., \"solution_extracted\": ..., \"answer_normalized\": ...,\n"
                   "   \"solution_normalized\": ...}. Final answers: the last \\boxed{}, GSM8K's \"#### X\", \"The answer is X\",\n"
                   "  else the last number; compared after normalisation, by value where both are expressions.\n");
            return 0;
        }
        sa_err("%s: unknown argument for 'math-check' (it reads stdin; see salign math-check --help)", argv[i]);
        return sa_die();
    }
    /* the whole output is written at the end: a bad line leaves stdout empty, not half-written */
    SaBuf out = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long line_no = 0;
    int rc = 1;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        size_t k = 0;
        while (k < (size_t)n && isspace((unsigned char)line[k])) k++;
        if (k == (size_t)n) continue;
        if (memchr(line, 0, (size_t)n) || sa_utf8_valid_prefix(line, (size_t)n) != (size_t)n) {
            sa_err("stdin: line %ld: not valid UTF-8 text", line_no);
            goto out;
        }
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            sa_err("stdin: line %ld: not a JSON object", line_no);
            goto out;
        }
        char *a = field_text(o, "answer", line_no), *s = a ? field_text(o, "solution", line_no) : NULL;
        cJSON_Delete(o);
        if (!a || !s) {
            free(a);
            goto out;
        }
        SaMathResult r;
        int bad = sa_math_check(a, s, &r);
        free(a);
        free(s);
        if (bad) goto out;
        cJSON *j = cJSON_CreateObject();
        sa_math_result_to_json(&r, j);
        sa_math_result_free(&r);
        char *txt = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!txt || sa_buf_append(&out, txt, strlen(txt)) || sa_buf_append(&out, "\n", 1)) {
            free(txt);
            sa_err("out of memory");
            goto out;
        }
        free(txt);
    }
    if (ferror(stdin)) {
        sa_err("stdin: read error");
        goto out;
    }
    if (out.len && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout))) {
        sa_err("stdout: write failed");
        goto out;
    }
    rc = 0;
out:
    free(line);
    sa_buf_free(&out);
    return rc ? sa_die() : 0;
}
