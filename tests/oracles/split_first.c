/* split_first.c - src/sentence.c's first sentence of each text, for tests/oracles/splitter_oracle.py.
 * stdin: texts, each ended by a NUL byte. stdout: per text one line "START END STREAM": the byte
 * offsets of the first sentence at end of stream (sa_sentence_find(final = 1)), or "- -" when there
 * is none; STREAM is 1 when every prefix of the text for which the streaming call (final = 0)
 * reports a sentence reports this one (a boundary never moves once reported), else 0.
 * argv[1]: the mode, reference (default) or smart. Built by the oracle script with
 *   cc -std=c11 -Isrc tests/oracles/split_first.c src/sentence.c -lutf8proc */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentence.h"

int main(int argc, char **argv) {
    const int mode = sa_split_mode_from_name(argc > 1 ? argv[1] : "reference");
    if (mode < 0) return 2;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int c;
    if (!buf) return 1;
    while ((c = getchar()) != EOF) {
        if (c == 0) {
            SaSentence s, p;
            const int found = sa_sentence_find(buf, n, 1, (SaSplitMode)mode, &s);
            int stream = 1;
            for (size_t k = 0; k <= n; k++)
                if (sa_sentence_find(buf, k, 0, (SaSplitMode)mode, &p) && (!found || p.start != s.start || p.end != s.end))
                    stream = 0;
            if (found) printf("%zu %zu %d\n", s.start, s.end, stream);
            else printf("- - %d\n", stream);
            n = 0;
            continue;
        }
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) return 1;
            buf = b;
        }
        buf[n++] = (char)c;
    }
    free(buf);
    return 0;
}
