/* fuzz_sentence.c - the sentence splitter (src/sentence.c) on arbitrary bytes.
 * Input: byte 0 = mode (bit 0: smart), byte 1 scales a prefix length; the rest is the text.
 * Properties: a reported sentence lies inside the text with start <= end, never starts on
 * whitespace and is non-empty; splitting a whole text yields pieces inside it, in order; and,
 * the splitter being called on a growing stream, a boundary found in a prefix (not final) is
 * the boundary found in the whole text - later text never moves an already reported boundary. */
#include "../../src/sentence.h"
#include "fuzz.h"

typedef struct {
    const char *base;
    size_t len, last_end;
} SplitCtx;

static void on_sentence(void *vctx, const char *s, size_t n) {
    SplitCtx *c = vctx;
    FUZZ_ASSERT(s >= c->base && s + n <= c->base + c->len);
    FUZZ_ASSERT((size_t)(s - c->base) >= c->last_end);
    c->last_end = (size_t)(s - c->base) + n;
}

static void check(const char *t, size_t len, const SaSentence *s) {
    FUZZ_ASSERT(s->start < s->end && s->end <= len);
    const char c = t[s->start];
    FUZZ_ASSERT(c != ' ' && c != '\t' && c != '\n' && c != '\r');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const SaSplitMode mode = data[0] & 1 ? SA_SPLIT_SMART : SA_SPLIT_REFERENCE;
    const char *text = (const char *)data + 2;
    const size_t len = size - 2, prefix = (size_t)data[1] * len / 255;
    /* a private copy of the exact length: ASan then sees any read past the end */
    char *t = malloc(len ? len : 1);
    if (!t) abort();
    memcpy(t, text, len);

    SaSentence whole, part, fin;
    const int found = sa_sentence_find(t, len, 0, mode, &whole);
    if (found) check(t, len, &whole);
    if (sa_sentence_find(t, len, 1, mode, &fin)) check(t, len, &fin);
    if (sa_sentence_find(t, prefix, 0, mode, &part)) {
        check(t, prefix, &part);
        FUZZ_ASSERT(found && whole.start == part.start && whole.end == part.end);
    }
    SplitCtx c = {t, len, 0};
    sa_sentence_split(t, len, mode, on_sentence, &c);
    free(t);
    return 0;
}
