/* splitcheck.c - prints src/sentence.c's reference split of texts, so check_splitter.py can compare
 * the Python port (common.split_sentences) with the engine's splitter byte for byte.
 * stdin: texts, each ended by a NUL byte. stdout: per text, each sentence followed by 0x1F, then 0x1E.
 * Built by check_splitter.py: cc -std=c11 -I../../src splitcheck.c ../../src/sentence.c -lutf8proc */
#include <stdio.h>
#include <stdlib.h>

#include "sentence.h"

static void put(void *ctx, const char *s, size_t n) {
    (void)ctx;
    fwrite(s, 1, n, stdout);
    putchar(0x1F);
}

int main(void) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int c;
    if (!buf) return 1;
    while ((c = getchar()) != EOF) {
        if (c == 0) {
            sa_sentence_split(buf, n, SA_SPLIT_REFERENCE, put, NULL);
            putchar(0x1E);
            n = 0;
            continue;
        }
        if (n + 1 >= cap && !(buf = realloc(buf, cap *= 2))) return 1;
        buf[n++] = (char)c;
    }
    free(buf);
    return 0;
}
