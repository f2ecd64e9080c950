/* sentence.c - the sentence splitter (see sentence.h for the rules). */
#include "sentence.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h> /* Unicode general categories: the reference's \w and \d are Unicode's */

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

/* Length of a closing character at p (ASCII quotes/brackets, or the UTF-8 right quotes ’ ” »),
 * 0 if none. A terminator may be followed by a run of these and of further terminators. */
static size_t closer_len(const char *p, size_t left) {
    const unsigned char c = (unsigned char)p[0];
    if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '}' || c == '.' || c == '!' || c == '?') return 1;
    if (left >= 3 && c == 0xE2 && (unsigned char)p[1] == 0x80 && ((unsigned char)p[2] == 0x99 || (unsigned char)p[2] == 0x9D))
        return 3;
    if (left >= 2 && c == 0xC2 && (unsigned char)p[1] == 0xBB) return 2;
    return 0;
}

/* A closer that may be the start of one (a prefix of a UTF-8 quote): wait for more bytes. */
static int partial_closer(const char *p, size_t left) {
    const unsigned char c = (unsigned char)p[0];
    if (c == 0xE2) return left < 3 && (left < 2 || (unsigned char)p[1] == 0x80);
    if (c == 0xC2) return left < 2;
    return 0;
}

static const char *const abbreviations[] = {
    "Mr", "Mrs", "Ms", "Dr", "Prof", "Sr", "Jr", "St", "Mt", "vs", "etc", "Inc", "Ltd", "Co", "Corp", "No",
    "Fig", "Vol", "approx", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
    "a.m", "p.m", "U.S", "cf", "al", "Gen", "Col", "Lt", "Sgt", "Capt", "Rev", "Hon", "Ave", "Blvd", "Dept", "est",
};

/* ---- the reference rule ----
 * The reference protects the dots of "i.e.", "e.g." and of a digit followed by a dot, each matched
 * only at a word boundary (Python: re.sub(r'\b(i\.e\.|e\.g\.|\d\.)', ...) on str, so \w and \d are
 * Unicode's), scanning left to right without overlaps; then it splits on '.', '?' or '!' unless the
 * character before is a protected dot. So "3.5" and "in 1." do not split, but "13.5", "in 2019."
 * and "x3." do (the digit must start a word), and neither do "3i.e." nor "\u00e9i.e." protect anything. */

/* The code point at t[i] (its byte length in *n), or -1 for a byte that starts no valid one. */
static int32_t cp_at(const char *t, size_t len, size_t i, size_t *n) {
    utf8proc_int32_t c;
    const utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)t + i, (utf8proc_ssize_t)(len - i), &c);
    *n = r > 0 ? (size_t)r : 1;
    return r > 0 ? c : -1;
}

/* Python's \w: letters and numbers (categories L*, N*) and '_'. */
static int is_word_cp(int32_t c) {
    if (c < 0) return 0;
    if (c < 0x80) return is_alpha((unsigned char)c) || is_digit((unsigned char)c) || c == '_';
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return 1;
    default:
        return 0;
    }
}

/* Is the text before byte i free of a word character right before it (a word boundary when t[i]
 * starts a word)? i is at a code point's start; the previous code point is at most 4 bytes back. */
static int after_non_word(const char *t, size_t i) {
    if (i == 0) return 1;
    size_t b = i - 1;
    while (b > 0 && i - b < 4 && ((unsigned char)t[b] & 0xC0) == 0x80) b--;
    size_t n;
    const int32_t c = cp_at(t, i, b, &n);
    return b + n != i || !is_word_cp(c);
}

/* The reference's first boundary at or after `from`: the index of the terminator, SIZE_MAX when
 * there is none in t[0..len), or SIZE_MAX - 1 when more text is needed to tell (not final). The
 * protected dots depend on the text from its very start, so the scan starts at 0. */
static size_t reference_boundary(const char *t, size_t len, size_t from, int final) {
    size_t consumed = 0;                       /* the previous protection match ends here */
    size_t dot1 = SIZE_MAX, dot2 = SIZE_MAX;   /* its protected dots */
    for (size_t i = 0; i < len;) {
        size_t n;
        const int32_t c = cp_at(t, len, i, &n);
        if (i >= consumed && (c == 'i' || c == 'e' || (c >= 0 && (is_digit((unsigned char)c) ||
                              (c >= 0x80 && utf8proc_category(c) == UTF8PROC_CATEGORY_ND)))) &&
            after_non_word(t, i)) {
            if (c == 'i' || c == 'e') { /* "i.e." or "e.g.", all four characters */
                const char *want = c == 'i' ? "i.e." : "e.g.";
                size_t k = 1;
                while (k < 4 && i + k < len && t[i + k] == want[k]) k++;
                if (k == 4) {
                    dot1 = i + 1;
                    dot2 = i + 3;
                    consumed = i + 4;
                } else if (i + k == len && !final) {
                    return SIZE_MAX - 1; /* a prefix of it so far */
                }
            } else if (i + n < len && t[i + n] == '.') { /* a digit and a dot */
                dot1 = i + n;
                dot2 = SIZE_MAX;
                consumed = i + n + 1;
            }
        }
        if (i >= from && (c == '.' || c == '?' || c == '!') && i != dot1 && i != dot2 &&
            !(i > 0 && (i - 1 == dot1 || i - 1 == dot2)))
            return i;
        i += n;
    }
    return SIZE_MAX;
}

/* Smart mode: does the word ending just before the dot at position dot (text[dot] == '.') make it a
 * non-boundary? Returns 1 (not a boundary), 0 (a boundary), or -1 (cannot tell yet: need more text). */
static int dot_exception(const char *t, size_t len, size_t dot, SaSplitMode mode) {
    /* a dot right after a digit never splits (smart mode's version of the reference's digit rule) */
    if (dot > 0 && is_digit((unsigned char)t[dot - 1])) return 1;
    /* "i.e." and "e.g.": both dots. First dot: "i." / "e." as a standalone letter. */
    const int standalone = dot >= 1 && (dot == 1 || !is_alpha((unsigned char)t[dot - 2]));
    if (standalone && (t[dot - 1] == 'i' || t[dot - 1] == 'e')) {
        const char want = t[dot - 1] == 'i' ? 'e' : 'g';
        if (dot + 1 >= len) return -1;
        if (t[dot + 1] == want) {
            if (dot + 2 >= len) return -1;
            if (t[dot + 2] == '.') return 1;
        }
    }
    /* second dot of "i.e." / "e.g." */
    if (dot >= 3 && t[dot - 2] == '.' && ((t[dot - 1] == 'e' && t[dot - 3] == 'i') || (t[dot - 1] == 'g' && t[dot - 3] == 'e')) &&
        (dot == 3 || !is_alpha((unsigned char)t[dot - 4])))
        return 1;
    if (mode != SA_SPLIT_SMART) return 0;
    /* smart: the word before the dot */
    size_t w = dot;
    while (w > 0 && (is_alpha((unsigned char)t[w - 1]) || t[w - 1] == '.')) w--;
    const size_t wl = dot - w;
    if (wl == 1 && is_upper((unsigned char)t[w])) return 1; /* an initial: "J. K. Rowling" */
    for (size_t i = 0; i < sizeof abbreviations / sizeof *abbreviations; i++) {
        const size_t al = strlen(abbreviations[i]);
        if (al == wl && !strncmp(t + w, abbreviations[i], al)) return 1;
    }
    return 0;
}

int sa_split_mode_from_name(const char *name) {
    if (!strcmp(name, "reference")) return SA_SPLIT_REFERENCE;
    if (!strcmp(name, "smart")) return SA_SPLIT_SMART;
    return -1;
}

static size_t rtrim(const char *t, size_t start, size_t end) {
    while (end > start && is_space((unsigned char)t[end - 1])) end--;
    return end;
}

int sa_sentence_find(const char *t, size_t len, int final, SaSplitMode mode, SaSentence *s) {
    size_t start = 0;
    while (start < len && is_space((unsigned char)t[start])) start++;
    int in_fence = 0;
    for (size_t i = start; i < len; i++) {
        const unsigned char c = (unsigned char)t[i];
        if (mode == SA_SPLIT_SMART) {
            /* ``` at the start of a line opens or closes a fence; a closing fence ends at its line end */
            if (c == '`' && i + 2 < len && t[i + 1] == '`' && t[i + 2] == '`' && (i == start || t[i - 1] == '\n')) {
                if (in_fence) {
                    const char *nl = memchr(t + i, '\n', len - i);
                    if (!nl) {
                        if (!final) return 0;
                        break;
                    }
                    s->start = start;
                    s->end = (size_t)(nl - t);
                    return 1;
                }
                in_fence = 1;
                i += 2;
                continue;
            }
            if (in_fence) continue;
            /* a blank line is a paragraph break */
            if (c == '\n' && i > start) {
                size_t j = i + 1;
                while (j < len && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) j++;
                if (j < len && t[j] == '\n') {
                    s->start = start;
                    s->end = rtrim(t, start, i);
                    return 1;
                }
                if (j >= len && !final) return 0; /* might become a blank line */
            }
        }
        if (c != '.' && c != '?' && c != '!') continue;
        if (mode == SA_SPLIT_REFERENCE) {
            const size_t b = reference_boundary(t, len, i, final);
            if (b == SIZE_MAX - 1) return 0;
            if (b == SIZE_MAX) break;
            i = b;
        } else if (c == '.') {
            int ex = dot_exception(t, len, i, mode);
            if (ex < 0) {
                if (final) ex = 0;
                else return 0;
            }
            if (ex) continue;
        }
        /* a terminator: take the closing run that follows */
        size_t end = i + 1;
        for (;;) {
            if (end >= len) {
                if (!final) return 0; /* the run may continue: wait */
                break;
            }
            if (partial_closer(t + end, len - end)) {
                if (!final) return 0;
                break;
            }
            const size_t cl = closer_len(t + end, len - end);
            if (!cl) break;
            end += cl;
        }
        s->start = start;
        s->end = end;
        return 1;
    }
    if (!final) return 0;
    const size_t end = rtrim(t, start, len);
    if (end <= start) return 0;
    s->start = start;
    s->end = end;
    return 1;
}

int sa_sentence_unfinished(const char *text, size_t len, SaSplitMode mode) {
    size_t off = 0;
    SaSentence s;
    while (off < len && sa_sentence_find(text + off, len - off, 0, mode, &s)) off += s.end;
    const char *tail = text + off;
    size_t n = len - off;
    while (n && is_space((unsigned char)tail[n - 1])) n--;
    if (!n) return 0;
    /* the tail ends a sentence iff, once another sentence follows, the first one found ends
     * exactly at the tail's end; "A" starts a sentence in every mode */
    char *probe = malloc(n + 3);
    if (!probe) return 1; /* cannot tell; say so rather than claim a complete sentence */
    memcpy(probe, tail, n);
    memcpy(probe + n, " A", 3);
    const int at_end = sa_sentence_find(probe, n + 2, 0, mode, &s) && s.end == n;
    free(probe);
    return !at_end;
}

void sa_sentence_split(const char *text, size_t len, SaSplitMode mode, void (*fn)(void *ctx, const char *s, size_t n),
                       void *ctx) {
    size_t off = 0;
    SaSentence s;
    while (off < len && sa_sentence_find(text + off, len - off, 1, mode, &s)) {
        fn(ctx, text + off + s.start, s.end - s.start);
        off += s.end;
    }
}
