/* sentence.c - the sentence splitter (see sentence.h for the rules). */
#include "sentence.h"

#include <stdlib.h>
#include <string.h>

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

/* Does the word ending just before the dot at position dot (text[dot] == '.') make it a
 * non-boundary? Returns 1 (not a boundary), 0 (a boundary), or -1 (cannot tell yet: need more text). */
static int dot_exception(const char *t, size_t len, size_t dot, SaSplitMode mode) {
    /* a dot right after a digit never splits (reference rule) */
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
        if (c == '.') {
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
