/* test_sentence.c - the sentence splitter: the reference rule, its fixes, smart mode, streaming. */
#include <stdlib.h>
#include <string.h>

#include "../src/common.h"
#include "../src/sentence.h"
#include "test.h"

typedef struct {
    SaBuf out;
} Join;

static void collect(void *ctx, const char *s, size_t n) {
    Join *j = ctx;
    if (j->out.len) sa_buf_append(&j->out, "|", 1);
    sa_buf_append(&j->out, s, n);
}

/* Sentences of text joined with '|'. */
static char *split(const char *text, SaSplitMode mode) {
    Join j = {{0}};
    sa_sentence_split(text, strlen(text), mode, collect, &j);
    return j.out.data ? j.out.data : strdup("");
}

static void expect_split(const char *text, SaSplitMode mode, const char *want) {
    char *got = split(text, mode);
    CHECKF(!strcmp(got, want), "%s split of \"%s\": got \"%s\", want \"%s\"", mode == SA_SPLIT_SMART ? "smart" : "reference",
           text, got, want);
    free(got);
}

TEST(sentence_reference_rule) {
    const SaSplitMode R = SA_SPLIT_REFERENCE;
    expect_split("Hello world. How are you? Fine!", R, "Hello world.|How are you?|Fine!");
    expect_split("  leading space. next", R, "leading space.|next");
    /* i.e. / e.g. and digits */
    expect_split("Use tools, i.e. hammers. Done.", R, "Use tools, i.e. hammers.|Done.");
    expect_split("Fruit, e.g. apples, is good. Yes.", R, "Fruit, e.g. apples, is good.|Yes.");
    expect_split("Pi is 3.14 roughly. Ok.", R, "Pi is 3.14 roughly.|Ok.");
    expect_split("Steps: 1. Mix. 2. Bake.", R, "Steps: 1. Mix.|2. Bake.");
    /* the reference protects a digit's dot only when the digit starts a word (\b\d\.): a year or
     * "13.5" splits, "x3." too; and its \b is Unicode's ("\u00e9i.e." protects nothing) */
    expect_split("It happened in 2019. Then more.", R, "It happened in 2019.|Then more.");
    expect_split("Pi is 13.5 roughly. Ok.", R, "Pi is 13.|5 roughly.|Ok.");
    expect_split("Take x3. Go", R, "Take x3.|Go");
    expect_split("Caf\xc3\xa9i.e. x. y", R, "Caf\xc3\xa9i.|e.|x.|y");
    /* a terminator right after a protected dot does not split */
    expect_split("Item 1.. next. z", R, "Item 1.. next.|z");
    /* reference boundaries: "Dr." ends a sentence */
    expect_split("Dr. Smith arrived. He sat.", R, "Dr.|Smith arrived.|He sat.");
    /* closing punctuation stays with its sentence (the reference cut "Wait... really?!" to "Wait.") */
    expect_split("Wait... really?! Yes.", R, "Wait...|really?!|Yes.");
    expect_split("He said \"stop.\" She left.", R, "He said \"stop.\"|She left.");
    expect_split("(Like this.) Then", R, "(Like this.)|Then");
    expect_split("She said \xe2\x80\x9cno.\xe2\x80\x9d Then", R, "She said \xe2\x80\x9cno.\xe2\x80\x9d|Then");
    /* no terminal punctuation: the rest is a final sentence */
    expect_split("One. Two without end", R, "One.|Two without end");
    expect_split("   ", R, "");
    /* newlines are not boundaries in the reference rule */
    expect_split("Line one\nline two. Next", R, "Line one\nline two.|Next");
}

TEST(sentence_smart_rule) {
    const SaSplitMode S = SA_SPLIT_SMART;
    expect_split("Dr. Smith arrived. He sat.", S, "Dr. Smith arrived.|He sat.");
    expect_split("Mr. and Mrs. Jones, etc. are here. Ok.", S, "Mr. and Mrs. Jones, etc. are here.|Ok.");
    expect_split("J. K. Rowling wrote it. Yes.", S, "J. K. Rowling wrote it.|Yes.");
    expect_split("First paragraph without end\n\nSecond one.", S, "First paragraph without end|Second one.");
    expect_split("Code:\n```\nx = 1. y = 2.\n```\nAfter. End.", S, "Code:\n```\nx = 1. y = 2.\n```|After.|End.");
    expect_split("Use tools, i.e. hammers. Done.", S, "Use tools, i.e. hammers.|Done.");
}

/* Streaming: a boundary is reported only once it cannot move any more. */
TEST(sentence_streaming) {
    SaSentence s;
    const char *t = "Really?! Next";
    CHECK(!sa_sentence_find(t, 6, 0, SA_SPLIT_REFERENCE, &s));  /* "Really" */
    CHECK(!sa_sentence_find(t, 7, 0, SA_SPLIT_REFERENCE, &s));  /* "Really?" - '!' may follow */
    CHECK(!sa_sentence_find(t, 8, 0, SA_SPLIT_REFERENCE, &s));  /* "Really?!" */
    CHECK(sa_sentence_find(t, 9, 0, SA_SPLIT_REFERENCE, &s));   /* "Really?! " */
    CHECK(s.start == 0 && s.end == 8);
    /* "i." could start "i.e.": wait */
    const char *u = "Say i.e. this. X";
    CHECK(!sa_sentence_find(u, 6, 0, SA_SPLIT_REFERENCE, &s));
    CHECK(!sa_sentence_find(u, 7, 0, SA_SPLIT_REFERENCE, &s));
    CHECK(sa_sentence_find(u, 15, 0, SA_SPLIT_REFERENCE, &s) && s.end == 14);
    /* at end of stream the pending dot is a boundary */
    CHECK(sa_sentence_find(u, 6, 1, SA_SPLIT_REFERENCE, &s) && s.end == 6);
    /* every prefix of a text agrees with the whole-text split */
    const char *v = "  Wait... really?! He said \"go.\" Dr. No, e.g. him. 3.5 is fine";
    size_t first_end = 0;
    CHECK(sa_sentence_find(v, strlen(v), 1, SA_SPLIT_REFERENCE, &s));
    first_end = s.end;
    for (size_t n = 0; n <= strlen(v); n++) {
        if (sa_sentence_find(v, n, 0, SA_SPLIT_REFERENCE, &s)) CHECKF(s.end == first_end, "prefix %zu ends at %zu", n, s.end);
    }
    /* a partial UTF-8 closing quote waits */
    const char *w = "no.\xe2\x80\x9d x";
    CHECK(!sa_sentence_find(w, 4, 0, SA_SPLIT_REFERENCE, &s));
    CHECK(!sa_sentence_find(w, 5, 0, SA_SPLIT_REFERENCE, &s));
    CHECK(!sa_sentence_find(w, 6, 0, SA_SPLIT_REFERENCE, &s));
    CHECK(sa_sentence_find(w, 7, 0, SA_SPLIT_REFERENCE, &s) && s.end == 6);
}

/* Where a capped answer stopped: after a complete sentence, or inside one. */
static int unfinished(const char *t, SaSplitMode m) { return sa_sentence_unfinished(t, strlen(t), m); }

TEST(sentence_unfinished) {
    const SaSplitMode R = SA_SPLIT_REFERENCE, S = SA_SPLIT_SMART;
    CHECK(!unfinished("", R));
    CHECK(!unfinished("  \n", R));
    CHECK(!unfinished("Tom ran.", R));           /* the boundary needs lookahead: still complete */
    CHECK(!unfinished("Tom ran. He fell!\n", R));
    CHECK(!unfinished("He said \"go.\"", R));    /* the closing run stays with its sentence */
    CHECK(!unfinished("Really?!", R));
    CHECK(unfinished("Tom ran. He fe", R));
    CHECK(unfinished("Tom ran", R));
    CHECK(unfinished("Say i.e.", R));            /* "i.e." never ends a sentence */
    CHECK(unfinished("It cost 3.", R));          /* the reference's digit-dot rule, kept */
    CHECK(unfinished("no.\xe2\x80", R));         /* half a closing quote */
    CHECK(!unfinished("I met Dr.", R));          /* the reference rule splits after "Dr." ... */
    CHECK(unfinished("I met Dr.", S));           /* ... smart mode waits for the name */
    CHECK(unfinished("```\nint x = 1;", S));     /* inside a code fence */
    CHECK(!unfinished("One line\n\n", S));        /* a blank line ends a paragraph in smart mode; trimmed here */
}
