/* sentence.h - where does the first sentence of a text end?
 *
 * Fed the text the upstream has generated so far in this round, sa_sentence_find() reports the
 * first complete sentence, or that more text is needed. It is stateless (re-scans the text), so
 * it can be called after every token.
 *
 * SA_SPLIT_REFERENCE keeps the reference implementation's boundaries: '.', '?' or '!' ends a
 * sentence, except the dots of "i.e." and "e.g." and the dot after a digit, each only where it
 * starts a word (the reference's \b, with Unicode's word characters), and a terminator right after
 * such a dot. So "3.5" and "1." do not split, but "13.5", "in 2019." and "x3." do, as in the
 * reference (tests/run-splitter-oracle.sh runs its regular expressions as the oracle). It fixes
 * what the reference gets wrong without moving its boundaries: a run of closing punctuation and
 * quotes after the terminator ("?!", "...", ".\"", ".)") stays with its sentence, and text that
 * ends at end-of-stream without punctuation is a final sentence instead of being dropped.
 *
 * SA_SPLIT_SMART instead: a dot right after any digit never splits ("in 2019." does not end a
 * sentence); additionally: common abbreviations ("Dr.", "Mr.", "etc.", "vs.", ...) and single
 * capital initials ("J. K.") do not end a sentence; a blank line ends one (paragraph break, also
 * without punctuation); nothing inside a ``` code fence splits - the fence ends with its closing
 * line. */
#ifndef SALIGN_SENTENCE_H
#define SALIGN_SENTENCE_H

#include <stddef.h>

typedef enum { SA_SPLIT_REFERENCE = 0, SA_SPLIT_SMART = 1 } SaSplitMode;

typedef struct {
    size_t start; /* first byte of the sentence (leading whitespace skipped) */
    size_t end;   /* one past its last byte (terminator and closing run included) */
} SaSentence;

/* Returns 1 and fills *s when a complete sentence is found in text[0..len); 0 when more text is
 * needed. With final (the stream has ended), the rest of the text (trimmed) is the sentence if no
 * boundary is found; an all-whitespace text then gives 0 (no sentence). */
int sa_sentence_find(const char *text, size_t len, int final, SaSplitMode mode, SaSentence *s);

/* Split a whole text into sentences (for tests, data preparation and reports): calls fn for each. */
void sa_sentence_split(const char *text, size_t len, SaSplitMode mode,
                       void (*fn)(void *ctx, const char *s, size_t n), void *ctx);

/* 1 when text[0..len) stops in the middle of a sentence: what is left after its complete
 * sentences is not just whitespace and does not end at a boundary (checked by letting a new
 * sentence start after it, since some boundaries need one character of lookahead). 0 otherwise. */
int sa_sentence_unfinished(const char *text, size_t len, SaSplitMode mode);

int sa_split_mode_from_name(const char *name); /* "reference" | "smart", -1 otherwise */

#endif
