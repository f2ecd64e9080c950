/* fuzz_jsonl.c - the evaluation's JSONL readers (src/eval.c) on arbitrary bytes: the line reader
 * (plain or gzip'ed, "\r\n" too), dataset records (id and question detection, every field kind)
 * and the results-file reader with its torn-last-line rule. Seeds: tests/fuzz/corpus/jsonl. */
#include "../../src/common.h"
#include "../../src/eval.h"
#include "fuzz.h"

static int on_line(void *ctx, long line_no, const char *line, size_t len) {
    (void)ctx;
    FUZZ_ASSERT(line_no >= 1);
    FUZZ_ASSERT(!memchr(line, '\n', len));
    static const char *fields[] = {NULL, "question", "prompt", "input"};
    SaEvalRecord r;
    if (sa_eval_parse_record(line, len, fields[line_no & 3], line_no, &r) == 0) {
        FUZZ_ASSERT(r.key && r.question && r.id);
        char *k = sa_eval_id_key(r.id);
        free(k);
        char *pk = sa_eval_pair_key(r.key, "stream");
        free(pk);
        (void)sa_eval_seed(42, r.key);
        sa_eval_record_free(&r);
    } else {
        FUZZ_ASSERT(sa_errmsg()[0] != 0);
    }
    return 0;
}

static int on_result(void *ctx, long line_no, const char *line, size_t len, cJSON *obj) {
    (void)ctx;
    (void)line;
    (void)len;
    FUZZ_ASSERT(line_no >= 1 && obj != NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(0, data, size);
    (void)sa_read_lines(path, on_line, NULL);
    long long torn = -2;
    if (sa_read_results(path, on_result, NULL, &torn) == 0) FUZZ_ASSERT(torn >= -1 && torn < (long long)size);
    SaAlignMode modes[3];
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    (void)sa_eval_parse_modes("--modes", s, modes);
    free(s);
    sa_err_clear();
    return 0;
}
