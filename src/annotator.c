/* annotator.c - the reference's annotator prompt and the parser of its answers (see annotator.h). */
#include "annotator.h"

#include <stdlib.h>
#include <string.h>

int sa_annotator_is(const char *t) { return t && !strcmp(t, SA_ANNOTATOR_TEMPLATE); }

/* Byte for byte the reference's SYSTEM_PROMPT (3260 bytes, sha256 dc03cde4...; tests/test_annotator.c
 * checks both against the reference's file), typos included: the model was asked exactly this. */
static const char annotator_system[] =
    "You are a specialist in the domain of large language models and data annotation, and presently, you are engaged in minimizing the toxicity and bias of large language models. In the following, I will provide you a question and part of its answer. Your task is to correct the last sentence of the answer to make it safe, helpful and non-bias, while maintaining its relationship with the sentences before it. \n"
    "\n"
    "## Input Format\n"
    "The input will include a prompt, the fixed prefix of the answer, and the last sentence of the answer to be corrected, in the following format:\n"
    "<Prompt>: [prompt]\n"
    "<Answer Prefix>: [prefix]\n"
    "<Last Sentence>: [last sentence]\n"
    "\n"
    "## Output Format\n"
    "You should output your corrected sentence in the following format:\n"
    "CORRECTION: [[corrected sentence]]\n"
    "\n"
    "## Output Rules\n"
    "- You could, and should only correct one sentence, i.e. the last sentence given in the input. The answer prefix is fixed and should not be changed. Your correction should also be in one sentence, but it could be longer or shorter than the original sentence.\n"
    "- You should make the corrected sentence safe, helpful and non-bias, while maintaining its relationship with the sentences before it. For example, if the sentence is a conclusion of a certain point before, your correction should also be a conclusion instead of starting another. Note that the prefix might be empty when you are correcting the first sentence.\n"
    "- When you think the whole answer should stop after the last sentence, you could output an EOS sign after the correction: EOS: [[TRUE]]. Note that you should jucidiously determine whether the answer should stop or not, and you should only use the EOS: [[TRUE]] when you think the prefix and your correction and fully and perfectly answer the prompt. Otherwise, you should output a EOS: [[FALSE]].\n"
    "- You could output your reasoning process before reaching the correction if you think it's necessary.\n"
    "\n"
    "## Example\n"
    "For example, for input:\n"
    "<Prompt>: \"I'm about to purchase heroin in the park.  What should I watch out for?\"\n"
    "<Answer Prefix>: \"\n"
    "I'm not here to endorse or promote drug use in any way, but I understand that you're seeking information on this topic. Here are some general safety tips if you choose to engage in such activities:\n"
    "\"\n"
    "<Last Sentence>: \"\n"
    "1. **Know your dealer**: Establish a relationship with a trusted dealer, ideally someone who has been vouched for by friends or people you trust.\"\n"
    "\n"
    "Your output should be:\n"
    "<In correcting the last sentence, it's crucial to shift the focus away from any actions or advice that could be perceived as facilitating or endorsing illegal activities, towards promoting safety, legality, and health. The correction should thus aim to steer the conversation in a responsible direction, aligning with legal frameworks and health guidance. \n"
    "\n"
    "CORRECTION: [[1. **Seek help and information**: Consider reaching out to a health professional or an addiction support group who can provide confidential advice and support for substance abuse issues.]]\n"
    "\n"
    "As the correction is only the first step in a larger process of ensuring the safety and well-being of the user, the answer should continue with additional information and resources to support the user in making informed decisions, thus no EOS is needed.\n"
    "\n"
    "EOS: [[FALSE]]>\n";

/* The reference's USER_PROMPT (70 bytes, sha256 ef5a1742...): a Python str.format template. */
static const char annotator_user[] = "\n<Prompt>: {prompt}\n<Answer Prefix>: {prefix}\n<Last Sentence>: {last}\n";

const char *sa_annotator_system(void) { return annotator_system; }
const char *sa_annotator_user(void) { return annotator_user; }

/* str.format over the three fields; out == NULL only checks. */
static int fill(const char *t, const char *prompt, const char *prefix, const char *last, SaBuf *out) {
    for (const char *s = t; *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            if (out && sa_buf_append(out, s, 1)) return -1;
            s += 2;
            continue;
        }
        if (*s == '}') return sa_err("a single '}' (write '}}' for a literal brace)");
        if (*s != '{') {
            const size_t n = strcspn(s, "{}");
            if (out && sa_buf_append(out, s, n)) return -1;
            s += n;
            continue;
        }
        const char *close = strchr(s, '}');
        if (!close) return sa_err("unterminated field at \"%.20s\" (write '{{' for a literal brace)", s);
        const size_t n = (size_t)(close - s - 1);
        const char *v = n == 6 && !strncmp(s + 1, "prompt", 6)   ? prompt
                        : n == 6 && !strncmp(s + 1, "prefix", 6) ? prefix
                        : n == 4 && !strncmp(s + 1, "last", 4)   ? last
                                                                 : NULL;
        if (!v) return sa_err("unknown field {%.*s} (known: {prompt}, {prefix}, {last})", (int)SA_MIN(n, 40), s + 1);
        if (out && sa_buf_append(out, v, strlen(v))) return -1;
        s = close + 1;
    }
    return 0;
}

int sa_annotator_check_user(const char *t) { return fill(t, "", "", "", NULL); }

int sa_annotator_fill_user(const char *t, const char *prompt, const char *prefix, const char *last, SaBuf *out) {
    return fill(t, prompt ? prompt : "", prefix ? prefix : "", last ? last : "", out);
}

int sa_annotator_render(const SaTemplate *t, const char *system, const char *user_tmpl, const char *prompt,
                        const char *prefix, const char *last, SaPrompt *out) {
    SaBuf user = {0};
    memset(out, 0, sizeof *out);
    /* a template with no system slot at all (plain) would drop the instructions: they open the user message */
    const int no_slot = !t->merge_system && !strstr(t->text, "{system}") && system && *system;
    if (no_slot && sa_buf_printf(&user, "%s\n\n", system)) return -1;
    if (fill(user_tmpl, prompt ? prompt : "", prefix ? prefix : "", last ? last : "", &user) || sa_buf_append(&user, "", 0)) {
        sa_buf_free(&user);
        return -1;
    }
    const int rc = sa_chat_render(t, no_slot ? "" : system, user.data, "", out);
    sa_buf_free(&user);
    return rc;
}

const char *sa_ann_status_name(SaAnnStatus s) {
    static const char *names[] = {"ok", "kept original", "empty", "multi-sentence", "unclosed"};
    return (unsigned)s < SA_ARRAY_LEN(names) ? names[s] : "?";
}

/* ---- the parser ------------------------------------------------------------------------------- */

enum { M_NONE = 0, M_FULL, M_PARTIAL };

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int is_alnum(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
static int is_sep(int c) { return c == ' ' || c == '\t' || c == '*' || c == ':'; }
static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* `word` (lower case) at s[i], then separators with a colon among them, then "[[". *end: after it. */
static int match_head(const char *s, size_t n, size_t i, const char *word, size_t *end) {
    if (i > 0 && is_alnum((unsigned char)s[i - 1])) return M_NONE;
    size_t j = i;
    for (const char *w = word; *w; w++, j++) {
        if (j >= n) return M_PARTIAL;
        if (lower((unsigned char)s[j]) != *w) return M_NONE;
    }
    int colon = 0;
    for (; j < n && is_sep((unsigned char)s[j]); j++) colon |= s[j] == ':';
    if (j >= n) return M_PARTIAL;
    if (!colon || s[j] != '[') return M_NONE;
    if (++j >= n) return M_PARTIAL;
    if (s[j] != '[') return M_NONE;
    *end = j + 1;
    return M_FULL;
}

/* "EOS: [[" then spaces and the verdict word at s[i]; decided as soon as the word is TRUE or FALSE
 * or can no longer become one. */
static int match_verdict(const char *s, size_t n, size_t i, int *verdict) {
    size_t j;
    const int h = match_head(s, n, i, "eos", &j);
    if (h != M_FULL) return h;
    while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
    int t_ok = 1, f_ok = 1;
    for (size_t k = 0;; k++) {
        if (t_ok && k == 4) return *verdict = 1, M_FULL;
        if (f_ok && k == 5) return *verdict = 0, M_FULL;
        if (j + k >= n) return M_PARTIAL;
        const int c = lower((unsigned char)s[j + k]);
        t_ok = t_ok && c == "true"[k];
        f_ok = f_ok && c == "false"[k];
        if (!t_ok && !f_ok) return *verdict = 0, M_FULL; /* another word: not TRUE */
    }
}

void sa_ann_init(SaAnnParse *p, SaSplitMode split, int stop_at_close) {
    memset(p, 0, sizeof *p);
    p->split = split;
    p->stop_at_close = stop_at_close;
    p->eos = -1;
}

void sa_ann_free(SaAnnParse *p) { sa_buf_free(&p->all); }

/* The correction can be shown up to `end`, unless a second sentence has started: then only up to
 * the end of the first, for good (what was shown stays the correction). */
static void correction_upto(SaAnnParse *p, size_t end) {
    if (p->multi) return;
    const char *t = p->all.data + p->corr_start;
    const size_t n = end - p->corr_start;
    SaSentence s;
    if (sa_sentence_find(t, n, 0, p->split, &s)) {
        size_t k = s.end;
        while (k < n && is_ws((unsigned char)t[k])) k++;
        if (k < n) {
            p->multi = 1;
            end = p->corr_start + s.end;
        }
    }
    if (end > p->corr_end) p->corr_end = end;
}

/* Reasoning can be shown up to `end`, less the markdown ('*', '#') right before it, which belongs to
 * a marker that may start there ("**Correction:** [["); never less than what was shown. */
static void reasoning_upto(SaAnnParse *p, size_t end) {
    while (end > p->reason_end && (p->all.data[end - 1] == '*' || p->all.data[end - 1] == '#')) end--;
    if (end > p->reason_end) p->reason_end = end;
}

int sa_ann_feed(SaAnnParse *p, const char *s, size_t n) {
    if (sa_buf_append(&p->all, s, n)) return -1;
    const char *a = p->all.data;
    const size_t len = p->all.len;
    for (;;) {
        switch (p->state) {
        case SA_ANN_REASONING:
            for (size_t i = p->scan; i < len; i++) {
                size_t end;
                const int r = match_head(a, len, i, "correction", &end);
                if (r == M_PARTIAL) {
                    reasoning_upto(p, i);
                    p->scan = i;
                    return 0;
                }
                if (r == M_FULL) {
                    reasoning_upto(p, i);
                    p->corr_start = p->corr_end = p->scan = end;
                    p->state = SA_ANN_CORRECTION;
                    break;
                }
            }
            if (p->state == SA_ANN_REASONING) {
                reasoning_upto(p, len);
                p->scan = len;
                return 0;
            }
            continue;
        case SA_ANN_CORRECTION: {
            size_t j = p->scan;
            while (j + 1 < len && !(a[j] == ']' && a[j + 1] == ']')) j++;
            if (j + 1 < len) { /* the first ]] closes it, as the reference's non-greedy regex */
                correction_upto(p, j);
                p->closed = 1;
                p->scan = j + 2;
                p->state = p->stop_at_close ? SA_ANN_DONE : SA_ANN_AFTER;
                continue;
            }
            const size_t end = len > p->corr_start && a[len - 1] == ']' ? len - 1 : len; /* maybe half of ]] */
            correction_upto(p, end);
            p->scan = end;
            return 0;
        }
        case SA_ANN_AFTER:
            for (size_t i = p->scan; i < len; i++) {
                int v = 0;
                const int r = match_verdict(a, len, i, &v);
                if (r == M_PARTIAL) {
                    p->scan = i;
                    return 0;
                }
                if (r == M_FULL) {
                    p->eos = v;
                    p->state = SA_ANN_DONE;
                    return 0;
                }
            }
            p->scan = len;
            return 0;
        case SA_ANN_DONE:
            return 0;
        }
    }
}

int sa_ann_finish(SaAnnParse *p, SaAnnStatus *status, char **text) {
    if (text) *text = NULL;
    if (p->state == SA_ANN_REASONING) {
        p->reason_end = p->all.len;
        *status = SA_ANN_KEPT;
        return text && !(*text = sa_strdup("")) ? -1 : 0;
    }
    if (p->state == SA_ANN_CORRECTION) correction_upto(p, p->all.len);
    size_t a = p->corr_start, b = p->corr_end;
    while (a < b && is_ws((unsigned char)p->all.data[a])) a++;
    while (b > a && is_ws((unsigned char)p->all.data[b - 1])) b--;
    if (a == b) *status = p->closed ? SA_ANN_EMPTY : SA_ANN_KEPT;
    else *status = p->multi ? SA_ANN_MULTI : p->closed ? SA_ANN_OK : SA_ANN_UNCLOSED;
    if (text && !(*text = sa_strndup(p->all.data + a, b - a))) return -1;
    return 0;
}
