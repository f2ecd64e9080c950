/* test_tokenizer.c - the SentencePiece BPE tokenizer against outside goldens:
 * llama.cpp's 46 vocab tests (ggml-vocab-llama-spm.gguf.inp/.out), SentencePiece 0.1.97's ids for
 * the shared corpus (goldens.json "llama2"), the same vocabulary read from a GGUF and from a
 * llama2.c tokenizer.bin, round trips, parse_special, and hostile tokenizer.bin files.
 * All data is in tests/data (see tests/data/README.md). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common.h"
#include "../src/gguf.h"
#include "../src/tokenizer.h"
#include "test.h"

#define DATA "tests/data/"
#define SPM_GGUF DATA "ggml-vocab-llama-spm.gguf"
#define LLAMA2_BIN DATA "llama2-tokenizer.bin"
#define TOK512_BIN DATA "tok512.bin"

/* ---- helpers ---- */

static SaTokenizer *load_llama2c(const char *path) {
    SaTokSpec spec;
    if (sa_tok_spec_from_llama2c(path, &spec) != 0) {
        test_fail(__FILE__, __LINE__, "loading %s: %s", path, sa_errmsg());
        return NULL;
    }
    SaTokenizer *t = sa_tok_new(&spec);
    if (!t) test_fail(__FILE__, __LINE__, "sa_tok_new(%s): %s", path, sa_errmsg());
    sa_tok_spec_free(&spec);
    return t;
}

static SaTokenizer *load_gguf(const char *path) {
    Gguf g;
    if (gguf_open(&g, path) != 0) {
        test_fail(__FILE__, __LINE__, "gguf_open(%s): %s", path, sa_errmsg());
        return NULL;
    }
    SaTokSpec spec;
    SaTokenizer *t = NULL;
    if (gguf_tok_spec(&g, &spec) != 0) {
        test_fail(__FILE__, __LINE__, "gguf_tok_spec(%s): %s", path, sa_errmsg());
    } else {
        t = sa_tok_new(&spec);
        if (!t) test_fail(__FILE__, __LINE__, "sa_tok_new(%s): %s", path, sa_errmsg());
        sa_tok_spec_free(&spec);
    }
    gguf_close(&g);
    return t;
}

/* Encode into a fresh array; returns the count, or -1. */
static int enc(const SaTokenizer *t, const char *s, size_t len, int bos, int special, int32_t **ids) {
    int n = 0, cap = 0;
    *ids = NULL;
    int r = sa_tok_encode(t, s, len, bos, special, ids, &n, &cap);
    if (r < 0) return -1;
    if (r != n) return -2; /* appended count must equal what was written into an empty array */
    return n;
}

/* Decode a whole sequence the way a generation loop would: token by token, tracking prev. */
static char *dec(const SaTokenizer *t, const int32_t *ids, int n, int special, size_t *len) {
    SaBuf b = {0};
    int prev = -1;
    for (int i = 0; i < n; i++) {
        if (sa_tok_decode(t, prev, ids[i], special, &b) != 0) {
            sa_buf_free(&b);
            return NULL;
        }
        prev = ids[i];
    }
    if (sa_buf_reserve(&b, 0) != 0) return NULL;
    b.data[b.len] = 0;
    *len = b.len;
    return b.data;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, int n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? " " : "", ids[i]);
    if (n > 0 && k + 16 >= cap) snprintf(buf + k, cap - k, " ...");
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* Check encode(text) (no BOS, no specials) against expected ids; print both on mismatch. */
static void check_encode(const SaTokenizer *t, const char *label, int case_no, const char *text, size_t len,
                         const int32_t *want, int nwant) {
    int32_t *got;
    int n = enc(t, text, len, 0, 0, &got);
    if (n < 0) {
        test_fail(__FILE__, __LINE__, "%s case %d: encode failed: %s", label, case_no, sa_errmsg());
    } else if (!same_ids(got, n, want, nwant)) {
        char a[512], b[512];
        fmt_ids(a, sizeof a, got, n);
        fmt_ids(b, sizeof b, want, nwant);
        test_fail(__FILE__, __LINE__, "%s case %d (\"%.*s\"): got [%s], want [%s]", label, case_no,
                  (int)SA_MIN(len, 60), text, a, b);
    }
    free(got);
}

/* ---- llama.cpp's vocab tests: ggml-vocab-llama-spm.gguf.inp / .out ---- */

static void run_vocab_goldens(const SaTokenizer *t, const char *label) {
    size_t ilen, olen;
    char *inp = sa_read_file(SPM_GGUF ".inp", &ilen);
    char *outp = sa_read_file(SPM_GGUF ".out", &olen);
    CHECKF(inp && outp, "reading goldens: %s", sa_errmsg());
    if (!inp || !outp) {
        free(inp);
        free(outp);
        return;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t seplen = sizeof sep - 1;
    size_t ip = 0;
    char *line = outp, *oend = outp + olen;
    int ncase = 0;
    /* .inp: cases separated (and terminated) by sep; .out: line i = ids of case i */
    while (ip < ilen && line < oend) {
        const char *q = memmem(inp + ip, ilen - ip, sep, seplen);
        size_t tlen = q ? (size_t)(q - (inp + ip)) : ilen - ip;
        char *eol = memchr(line, '\n', (size_t)(oend - line));
        if (!eol) eol = oend;
        *eol = 0;
        int32_t want[1024];
        int nwant = 0;
        for (char *p = line, *e; nwant < 1024; p = e) {
            long v = strtol(p, &e, 10);
            if (e == p) break;
            want[nwant++] = (int32_t)v;
        }
        check_encode(t, label, ncase, inp + ip, tlen, want, nwant);
        ncase++;
        line = eol + 1;
        if (!q) break;
        ip = (size_t)(q - inp) + seplen;
    }
    CHECK_EQ_INT(ncase, 46);
    free(inp);
    free(outp);
}

TEST(tok_llama_spm_vocab_goldens_gguf) {
    SaTokenizer *t = load_gguf(SPM_GGUF);
    if (!t) return;
    CHECK_EQ_INT(sa_tok_n_vocab(t), 32000);
    run_vocab_goldens(t, "gguf");
    sa_tok_free(t);
}

TEST(tok_llama_spm_vocab_goldens_llama2c) {
    SaTokenizer *t = load_llama2c(LLAMA2_BIN);
    if (!t) return;
    run_vocab_goldens(t, "llama2c");
    sa_tok_free(t);
}

/* ---- SentencePiece goldens for the shared corpus (goldens.json "llama2") ---- */

static cJSON *read_json(const char *path) {
    size_t len;
    char *s = sa_read_file(path, &len);
    if (!s) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(s, len);
    if (!j) test_fail(__FILE__, __LINE__, "%s: invalid JSON near \"%.20s\"", path, cJSON_GetErrorPtr());
    free(s);
    return j;
}

TEST(tok_llama2_corpus_goldens) {
    cJSON *corpus = read_json(DATA "corpus.json"), *gold = read_json(DATA "goldens.json");
    SaTokenizer *tg = load_gguf(SPM_GGUF), *tb = load_llama2c(LLAMA2_BIN);
    const cJSON *ids = gold ? cJSON_GetObjectItemCaseSensitive(gold, "ids") : NULL;
    const cJSON *l2 = ids ? cJSON_GetObjectItemCaseSensitive(ids, "llama2") : NULL;
    CHECK(cJSON_IsArray(corpus) && cJSON_IsArray(l2));
    if (tg && tb && cJSON_IsArray(corpus) && cJSON_IsArray(l2)) {
        int nc = cJSON_GetArraySize(corpus);
        CHECK_EQ_INT(nc, 20);
        CHECK_EQ_INT(cJSON_GetArraySize(l2), nc);
        for (int i = 0; i < nc; i++) {
            const cJSON *s = cJSON_GetArrayItem(corpus, i), *w = cJSON_GetArrayItem(l2, i);
            if (!cJSON_IsString(s) || !cJSON_IsArray(w)) {
                test_fail(__FILE__, __LINE__, "corpus/golden entry %d has the wrong JSON type", i);
                continue;
            }
            int32_t want[512];
            int nw = 0;
            const cJSON *v;
            cJSON_ArrayForEach(v, w) if (nw < 512) want[nw++] = (int32_t)v->valuedouble;
            const char *text = s->valuestring;
            check_encode(tg, "corpus/gguf", i, text, strlen(text), want, nw);
            check_encode(tb, "corpus/llama2c", i, text, strlen(text), want, nw);
            /* with BOS: exactly BOS followed by the same ids */
            int32_t *a;
            int na = enc(tb, text, strlen(text), 1, 0, &a);
            CHECKF(na == nw + 1 && a[0] == 1 && same_ids(a + 1, na - 1, want, nw), "corpus %d with BOS", i);
            free(a);
        }
    }
    sa_tok_free(tg);
    sa_tok_free(tb);
    cJSON_Delete(corpus);
    cJSON_Delete(gold);
}

/* The GGUF vocabulary and the llama2.c export of the same tokenizer must load to the same thing. */
TEST(tok_llama2c_matches_gguf_vocab) {
    SaTokenizer *tg = load_gguf(SPM_GGUF), *tb = load_llama2c(LLAMA2_BIN);
    if (tg && tb) {
        const SaTokSpec *a = sa_tok_spec(tg), *b = sa_tok_spec(tb);
        CHECK_EQ_INT(a->n_vocab, b->n_vocab);
        CHECK_EQ_INT(a->bos_id, b->bos_id);
        CHECK_EQ_INT(a->eos_id, b->eos_id);
        CHECK_EQ_INT(a->unk_id, b->unk_id);
        CHECK_EQ_INT(a->add_space_prefix, b->add_space_prefix);
        int bad_tok = 0, bad_score = 0, bad_type = 0;
        for (int i = 0; i < a->n_vocab && i < b->n_vocab; i++) {
            if (strcmp(a->tokens[i], b->tokens[i]) != 0 && bad_tok++ < 5)
                test_fail(__FILE__, __LINE__, "token %d: \"%s\" vs \"%s\"", i, a->tokens[i], b->tokens[i]);
            if (a->scores && b->scores && a->scores[i] != b->scores[i] && bad_score++ < 5)
                test_fail(__FILE__, __LINE__, "score %d: %g vs %g", i, a->scores[i], b->scores[i]);
            int ta = a->types ? a->types[i] : SA_TT_NORMAL, tb_ = b->types ? b->types[i] : SA_TT_NORMAL;
            if (ta != tb_ && bad_type++ < 5) test_fail(__FILE__, __LINE__, "type %d: %d vs %d", i, ta, tb_);
        }
        CHECK_EQ_INT(bad_tok + bad_score + bad_type, 0);
        CHECK_EQ_INT(sa_tok_find(tb, "<0x0A>"), 13);
        CHECK_EQ_INT(sa_tok_find(tb, "\xe2\x96\x81\xe2\x96\x81"), 259);
        CHECK_EQ_STR(sa_tok_token(tb, 1), "<s>");
        CHECK_EQ_STR(sa_tok_token(tb, 2), "</s>");
    }
    sa_tok_free(tg);
    sa_tok_free(tb);
}

/* ---- round trips (tok512.bin and the 32k vocabulary) ---- */

static void roundtrip_one(const SaTokenizer *t, const char *label, const char *s, size_t len) {
    int32_t *ids;
    int n = enc(t, s, len, 1, 0, &ids);
    if (n < 0) {
        test_fail(__FILE__, __LINE__, "%s: encode failed: %s", label, sa_errmsg());
        return;
    }
    size_t dl;
    char *d = dec(t, ids, n, 0, &dl);
    if (!d || dl != len || memcmp(d, s, len) != 0) {
        char a[256];
        fmt_ids(a, sizeof a, ids, n);
        test_fail(__FILE__, __LINE__, "%s: round trip of %zu bytes \"%.*s\" gave %zu bytes \"%.*s\" (ids %s)", label,
                  len, (int)SA_MIN(len, 40), s, dl, d ? (int)SA_MIN(dl, 40) : 0, d ? d : "", a);
    }
    for (int i = 1; i < n; i++) CHECKF(ids[i] != 1 && ids[i] != 2, "%s: control id %d from text", label, ids[i]);
    free(d);
    free(ids);
    /* Without BOS the prefixed space stays: decode gives " " + text (for non-empty text). */
    n = enc(t, s, len, 0, 0, &ids);
    d = n >= 0 ? dec(t, ids, n, 0, &dl) : NULL;
    if (len > 0)
        CHECKF(d && dl == len + 1 && d[0] == ' ' && memcmp(d + 1, s, len) == 0, "%s: no-BOS decode", label);
    else
        CHECKF(n == 0, "%s: empty text without BOS gave %d ids", label, n);
    free(d);
    free(ids);
}

static void roundtrips(const SaTokenizer *t, const char *name) {
    static const struct {
        const char *s;
        size_t len; /* 0: strlen */
    } cases[] = {
        {"", 0}, {"a", 0}, {" ", 0}, {"  ", 0}, {"hello world", 0}, {" leading space", 0},
        {"trailing space ", 0}, {"tabs\tand\nnewlines\r\n\n", 0}, {"Once upon a time, there was a girl.", 0},
        {"\xf0\x9f\x98\x80 emoji \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", 0},      /* 😀 emoji 👍🏽 */
        {"\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c", 0},              /* 你好世界 */
        {"na\xc3\xafve caf\xc3\xa9", 0},                                      /* naïve café */
        {"\xff\xfe invalid lead bytes", 0}, {"a\x80" "b", 0}, {"cut \xe2\x82", 0}, /* stray continuation, cut off € */
        {"\xed\xa0\x80 surrogate", 0}, {"\xc0\xaf overlong", 0}, {"\xf4\x90\x80\x80 too big", 0},
        {"\xe2\x82z", 0}, {"\xf0\x9f\x98", 0},                               /* truncated sequences */
        {"nul\0inside", 10}, {"<s>hello</s> <unk>", 0}, {"<0x41> literal", 0},
        {"        eight spaces", 0}, {"\n", 0}, {"\t", 0},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(cases); i++) {
        char label[64];
        snprintf(label, sizeof label, "%s case %zu", name, i);
        roundtrip_one(t, label, cases[i].s, cases[i].len ? cases[i].len : strlen(cases[i].s));
    }
    /* pseudo-random bytes: mostly ASCII, with spaces and arbitrary high bytes mixed in */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int k = 0; k < 300; k++) {
        char s[96];
        size_t len = 1 + k % 95;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned r = (unsigned)(x >> 32);
            s[i] = (char)(r % 5 == 0 ? ' ' : r % 5 == 1 ? (r >> 8) & 0xFF : 'a' + (r >> 8) % 26);
        }
        char label[64];
        snprintf(label, sizeof label, "%s random %d", name, k);
        roundtrip_one(t, label, s, len);
    }
}

/* A literal U+2581 in the text is indistinguishable from an escaped space, so it decodes as ' '.
 * SentencePiece has the same limitation; the ids must still be those of "▁" (not bytes). */
TEST(tok_literal_u2581_decodes_as_space) {
    SaTokenizer *t = load_llama2c(LLAMA2_BIN);
    if (!t) return;
    int32_t *a, *b;
    int na = enc(t, "x\xe2\x96\x81y", 5, 0, 0, &a), nb = enc(t, "x y", 3, 0, 0, &b);
    CHECK(same_ids(a, na, b, nb));
    free(a);
    free(b);
    sa_tok_free(t);
}

TEST(tok_tok512_roundtrip) {
    SaTokenizer *t = load_llama2c(TOK512_BIN);
    if (!t) return;
    CHECK_EQ_INT(sa_tok_n_vocab(t), 512);
    roundtrips(t, "tok512");
    /* invalid bytes come out as byte tokens */
    int32_t *ids;
    int n = enc(t, "a\x80", 2, 0, 0, &ids);
    int b80 = sa_tok_find(t, "<0x80>");
    CHECK(b80 >= 3);
    CHECKF(n >= 2 && ids[n - 1] == b80, "\\x80 should end as <0x80>");
    free(ids);
    sa_tok_free(t);
}

TEST(tok_llama2_roundtrip) {
    SaTokenizer *t = load_llama2c(LLAMA2_BIN);
    if (!t) return;
    roundtrips(t, "llama2");
    /* 😀 (F0 9F 98 80) is not a piece: prefix space, then four byte tokens */
    int32_t *ids;
    int n = enc(t, "\xf0\x9f\x98\x80", 4, 0, 0, &ids);
    int32_t want[] = {29871, 243, 162, 155, 131};
    CHECK(same_ids(ids, n, want, 5));
    free(ids);
    sa_tok_free(t);
}

/* ---- decode details ---- */

TEST(tok_decode_rules) {
    SaTokenizer *t = load_llama2c(LLAMA2_BIN);
    if (!t) return;
    SaBuf b = {0};
    int hello = sa_tok_find(t, "\xe2\x96\x81hello");
    CHECK(hello > 0);
    CHECK(sa_tok_decode(t, -1, hello, 0, &b) == 0);
    CHECK(b.len == 6 && memcmp(b.data, " hello", 6) == 0); /* no BOS before: space kept */
    b.len = 0;
    CHECK(sa_tok_decode(t, 1, hello, 0, &b) == 0);
    CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0); /* first piece after BOS: space dropped */
    b.len = 0;
    CHECK(sa_tok_decode(t, 1, 13, 0, &b) == 0); /* <0x0A> is a raw newline */
    CHECK(b.len == 1 && b.data[0] == '\n');
    b.len = 0;
    CHECK(sa_tok_decode(t, -1, 1, 0, &b) == 0 && b.len == 0); /* control: nothing ... */
    CHECK(sa_tok_decode(t, -1, 2, 0, &b) == 0 && b.len == 0);
    CHECK(sa_tok_decode(t, -1, 0, 0, &b) == 0 && b.len == 0);
    CHECK(sa_tok_decode(t, -1, 1, 1, &b) == 0); /* ... unless asked */
    CHECK(b.len == 3 && memcmp(b.data, "<s>", 3) == 0);
    b.len = 0;
    CHECK(sa_tok_decode(t, -1, 32000, 0, &b) == -1);
    CHECK(strstr(sa_errmsg(), "32000") != NULL);
    CHECK(sa_tok_decode(t, -1, -5, 0, &b) == -1);
    CHECK(sa_tok_is_eog(t, 2));
    CHECK(!sa_tok_is_eog(t, 1));
    CHECK(!sa_tok_is_eog(t, -1));
    CHECK(sa_tok_token(t, 32000) == NULL);
    CHECK(sa_tok_find(t, "no such piece ever") == -1);
    sa_buf_free(&b);
    sa_tok_free(t);
}

/* ---- parse_special ---- */

TEST(tok_parse_special) {
    SaTokenizer *t = load_llama2c(LLAMA2_BIN);
    if (!t) return;
    const char *s = "<s>hello</s>";
    int32_t *a, *h, *w, *b;
    int na = enc(t, s, strlen(s), 0, 0, &a);
    CHECK(na > 2);
    for (int i = 0; i < na; i++) CHECKF(a[i] != 0 && a[i] != 1 && a[i] != 2, "parse_special=0 gave id %d", a[i]);
    free(a);
    na = enc(t, s, strlen(s), 0, 1, &a);
    int nh = enc(t, "hello", 5, 0, 0, &h); /* "▁hello": a text run after a special gets the space prefix */
    CHECK(nh >= 1);
    CHECKF(na == nh + 2 && a[0] == 1 && a[na - 1] == 2 && same_ids(a + 1, na - 2, h, nh), "<s>hello</s> split");
    free(a);
    /* BOS from add_bos, then text, a special in the middle, text again (prefixed again, as llama.cpp) */
    const char *s2 = "hi<s>world <unk>";
    na = enc(t, s2, strlen(s2), 1, 1, &a);
    int nw = enc(t, "world ", 6, 0, 0, &w), nb = enc(t, "hi", 2, 0, 0, &b);
    CHECKF(na == 1 + nb + 1 + nw + 1 && a[0] == 1 && same_ids(a + 1, nb, b, nb) && a[1 + nb] == 1 &&
               same_ids(a + 2 + nb, nw, w, nw) && a[na - 1] == 0,
           "hi<s>world <unk> split");
    free(a);
    free(w);
    free(b);
    /* adjacent specials, specials only */
    na = enc(t, "<s></s><s>", 10, 0, 1, &a);
    int32_t want[] = {1, 2, 1};
    CHECK(same_ids(a, na, want, 3));
    free(a);
    /* decode with special=1 gives the template text back (spaces per the prefix rule) */
    na = enc(t, s, strlen(s), 0, 1, &a);
    size_t dl;
    char *d = dec(t, a, na, 1, &dl);
    CHECKF(d && strcmp(d, "<s>hello</s>") == 0, "decode: \"%s\"", d ? d : "(null)");
    free(d);
    free(a);
    free(h);
    sa_tok_free(t);
}

/* ---- hand-built vocabularies for the corner cases ---- */

typedef struct {
    const char *tok;
    float score;
    int type;
} VocabEntry;

static SaTokenizer *make_tok(const VocabEntry *v, int n, int add_space_prefix, int unk) {
    SaTokSpec s = {0};
    s.model = SA_TOK_SPM;
    s.n_vocab = n;
    s.tokens = calloc((size_t)n, sizeof(char *));
    s.scores = calloc((size_t)n, sizeof(float));
    s.types = calloc((size_t)n, sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        s.tokens[i] = strdup(v[i].tok);
        s.scores[i] = v[i].score;
        s.types[i] = v[i].type;
    }
    s.bos_id = 1;
    s.eos_id = 2;
    s.unk_id = unk;
    s.pad_id = s.eot_id = -1;
    s.add_space_prefix = add_space_prefix;
    SaTokenizer *t = sa_tok_new(&s);
    if (!t) test_fail(__FILE__, __LINE__, "sa_tok_new: %s", sa_errmsg());
    sa_tok_spec_free(&s);
    return t;
}

enum { N_ = SA_TT_NORMAL, CTRL_ = SA_TT_CONTROL, UNUSED_ = SA_TT_UNUSED, UNK_ = SA_TT_UNKNOWN };

TEST(tok_synthetic_vocabs) {
    /* no byte tokens: unknown characters become UNK, one per character */
    static const VocabEntry v1[] = {
        {"<unk>", 0, UNK_}, {"<s>", 0, CTRL_}, {"</s>", 0, CTRL_}, {"\xe2\x96\x81", -1, N_},
        {"a", -2, N_}, {"b", -2, N_}, {"c", -2, N_}, {"<", -2, N_}, {"s", -2, N_}, {">", -2, N_},
        {"<s", -1, N_},     /* 10: normal piece that is a prefix of the control token */
        {"ab", 0, UNUSED_}, /* 11: best-scoring merge, but UNUSED: must be split back */
        {"abc", -1, N_},    /* 12: reachable through the unused "ab" */
        {"aa", -1, N_},     /* 13: for the leftmost tie-break */
        {"s>", 5, N_},      /* 14: best merge in "<s>" is "s>", leaving "<" */
    };
    SaTokenizer *t = make_tok(v1, (int)SA_ARRAY_LEN(v1), 0, 0);
    if (t) {
        int32_t *ids;
        int n = enc(t, "ab", 2, 0, 0, &ids);
        int32_t w1[] = {4, 5};
        CHECKF(same_ids(ids, n, w1, 2), "unused piece must be resegmented");
        free(ids);
        n = enc(t, "abc", 3, 0, 0, &ids);
        int32_t w2[] = {12};
        CHECKF(same_ids(ids, n, w2, 1), "abc through unused ab");
        free(ids);
        n = enc(t, "aaa", 3, 0, 0, &ids);
        int32_t w3[] = {13, 4};
        CHECKF(same_ids(ids, n, w3, 2), "equal scores: leftmost pair first");
        free(ids);
        n = enc(t, "a\xe2\x82\xac" "b\xff", 6, 0, 0, &ids); /* a € b \xff */
        int32_t w4[] = {4, 0, 5, 0};
        CHECKF(same_ids(ids, n, w4, 4), "UNK fallback without byte tokens");
        free(ids);
        n = enc(t, "<s>", 3, 0, 0, &ids);
        int32_t w5[] = {7, 14};
        CHECKF(same_ids(ids, n, w5, 2), "ordinary text must not merge into a control token");
        free(ids);
        sa_tok_free(t);
    }
    /* "<s" has the best score: "<s" + ">" would spell the control token; it must stay two pieces */
    static const VocabEntry v2[] = {
        {"<unk>", 0, UNK_}, {"<s>", 0, CTRL_}, {"</s>", 0, CTRL_}, {"<", -2, N_}, {"s", -2, N_}, {">", -2, N_},
        {"<s", 3, N_},
    };
    t = make_tok(v2, (int)SA_ARRAY_LEN(v2), 0, 0);
    if (t) {
        int32_t *ids;
        int n = enc(t, "<s>", 3, 0, 0, &ids);
        int32_t w[] = {6, 5};
        CHECKF(same_ids(ids, n, w, 2), "<s> as text");
        free(ids);
        n = enc(t, "<s>", 3, 0, 1, &ids);
        int32_t w2[] = {1};
        CHECKF(same_ids(ids, n, w2, 1), "<s> as template");
        free(ids);
        sa_tok_free(t);
    }
    /* parse_special takes the longest special strings first, over the whole text (llama.cpp's
     * tokenizer_st_partition), not the leftmost match: "abcd" with specials "ab" and "bcd" is
     * "a" <bcd>, and the text run before a special gets no space prefix unless it is first. */
    static const VocabEntry v4[] = {
        {"<unk>", 0, UNK_}, {"<s>", 0, CTRL_}, {"</s>", 0, CTRL_}, {"\xe2\x96\x81", -1, N_}, {"a", -1, N_},
        {"ab", 0, CTRL_}, {"bcd", 0, SA_TT_USER_DEFINED}, {"\xe2\x96\x81" "a", 0, N_}, {"c", -1, N_},
    };
    t = make_tok(v4, (int)SA_ARRAY_LEN(v4), 1, 0);
    if (t) {
        int32_t *ids;
        int n = enc(t, "abcd", 4, 0, 1, &ids);
        int32_t w[] = {7, 6};
        CHECKF(same_ids(ids, n, w, 2), "longest special first");
        free(ids);
        n = enc(t, "abcdab", 6, 0, 1, &ids);
        int32_t w2[] = {7, 6, 5};
        CHECKF(same_ids(ids, n, w2, 3), "specials back to back");
        free(ids);
        n = enc(t, "ab" "c" "ab", 5, 0, 1, &ids); /* <ab> "c" <ab>: "c" follows a special, so "▁c" */
        int32_t w3[] = {5, 3, 8, 5};
        CHECKF(same_ids(ids, n, w3, 4), "space prefix after a special");
        free(ids);
        n = enc(t, "abcd", 4, 0, 0, &ids); /* as plain text: no special ids */
        for (int i = 0; i < n; i++) CHECKF(ids[i] != 5 && ids[i] != 6, "special %d from plain text", ids[i]);
        free(ids);
        sa_tok_free(t);
    }
    /* no byte tokens and no UNK: an error, not a crash */
    static const VocabEntry v3[] = {{"x", 0, N_}, {"<s>", 0, CTRL_}, {"</s>", 0, CTRL_}};
    t = make_tok(v3, 3, 0, -1);
    if (t) {
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        CHECK(sa_tok_encode(t, "xy", 2, 1, 0, &ids, &n, &cap) == -1);
        CHECK(n == 0); /* nothing appended on failure, not even the BOS */
        CHECK(strstr(sa_errmsg(), "UNK") != NULL);
        free(ids);
        sa_tok_free(t);
    }
}

TEST(tok_new_rejects_bad_specs) {
    char *toks[3] = {"<unk>", "<s>", "</s>"};
    int32_t types[3] = {SA_TT_UNKNOWN, SA_TT_CONTROL, SA_TT_CONTROL};
    float scores[3] = {0, 0, 0};
    SaTokSpec s = {.model = SA_TOK_SPM, .n_vocab = 3, .tokens = toks, .scores = scores, .types = types,
                   .bos_id = 1, .eos_id = 2, .unk_id = 0, .pad_id = -1, .eot_id = -1};
    SaTokenizer *t = sa_tok_new(&s);
    CHECK(t != NULL);
    sa_tok_free(t);
    SaTokSpec b = s;
    b.bos_id = 3;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "BOS"));
    b = s;
    b.n_vocab = 0;
    CHECK(sa_tok_new(&b) == NULL);
    b = s;
    b.model = SA_TOK_BPE;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "needs merges"));
    b = s;
    int32_t bad_types[3] = {SA_TT_UNKNOWN, 99, SA_TT_CONTROL};
    b.types = bad_types;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "type"));
    b = s;
    float nan_scores[3] = {0, NAN, 0};
    b.scores = nan_scores;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "NaN"));
    b = s;
    char *null_toks[3] = {"<unk>", NULL, "</s>"};
    b.tokens = null_toks;
    CHECK(sa_tok_new(&b) == NULL);
    CHECK(sa_tok_new(NULL) == NULL);
    /* BOS requested from a vocabulary without one */
    b = s;
    b.bos_id = -1;
    t = sa_tok_new(&b);
    if (t) {
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        CHECK(sa_tok_encode(t, "x", 1, 1, 0, &ids, &n, &cap) == -1);
        free(ids);
        sa_tok_free(t);
    }
    SaTokSpec z = {0};
    sa_tok_spec_free(&z); /* zeroed spec: harmless */
    sa_tok_spec_free(NULL);
}

/* ---- hostile tokenizer.bin files ---- */

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Load must fail, with a message that names the file and (if given) contains `what`. */
static void expect_reject(const char *path, int expect_n, const char *what, const char *label) {
    SaTokSpec spec;
    memset(&spec, 0x5A, sizeof spec); /* the loader must not depend on a zeroed spec */
    sa_err_clear();
    int r = expect_n > 0 ? sa_tok_spec_from_llama2c_n(path, expect_n, &spec) : sa_tok_spec_from_llama2c(path, &spec);
    if (r == 0) {
        test_fail(__FILE__, __LINE__, "%s: accepted", label);
        sa_tok_spec_free(&spec);
        return;
    }
    CHECKF(strstr(sa_errmsg(), path) != NULL, "%s: message does not name the file: %s", label, sa_errmsg());
    if (what) CHECKF(strstr(sa_errmsg(), what) != NULL, "%s: message \"%s\" lacks \"%s\"", label, sa_errmsg(), what);
    CHECKF(spec.tokens == NULL && spec.n_vocab == 0, "%s: spec not cleared on failure", label);
}

TEST(tok_llama2c_hostile_files) {
    size_t size;
    char *orig = sa_read_file(TOK512_BIN, &size);
    CHECK(orig != NULL);
    if (!orig) return;
    /* record boundaries, to know which truncations a count-less load cannot notice */
    static uint8_t boundary[8192];
    CHECK(size < sizeof boundary);
    memset(boundary, 0, sizeof boundary);
    size_t off = 4;
    int ntok = 0;
    while (off + 8 <= size) {
        int32_t len;
        memcpy(&len, orig + off + 4, 4);
        off += 8 + (size_t)len;
        if (off <= size) boundary[off] = 1;
        ntok++;
    }
    CHECK_EQ_INT(ntok, 512);
    const char *path = test_tmp("hostile.bin");

    SaTokSpec spec;
    CHECK(sa_tok_spec_from_llama2c_n(TOK512_BIN, 512, &spec) == 0);
    sa_tok_spec_free(&spec);
    expect_reject(TOK512_BIN, 513, "512 tokens", "wrong expected count");

    /* Truncation points: every byte of the first tokens (header, <unk>, <s>, </s>, first byte
     * tokens), then a stride (writing files is the slow part), then the last bytes. */
    int accepted_bad = 0, rejected = 0, tried = 0;
    for (size_t cut = 0; cut < size; cut += cut < 96 || cut + 24 >= size ? 1 : 13) {
        tried++;
        if (write_file(path, orig, cut) != 0) {
            test_fail(__FILE__, __LINE__, "cannot write %s", path);
            break;
        }
        SaTokSpec s;
        if (sa_tok_spec_from_llama2c_n(path, 512, &s) == 0) {
            accepted_bad++;
            sa_tok_spec_free(&s);
        } else if (strstr(sa_errmsg(), path)) {
            rejected++;
        }
        int r = sa_tok_spec_from_llama2c(path, &s);
        if (r == 0) {
            /* only a cut at a record boundary (with the three special tokens present) can pass */
            CHECKF(boundary[cut] && s.n_vocab >= 3, "truncation at %zu accepted", cut);
            sa_tok_spec_free(&s);
        }
    }
    CHECK_EQ_INT(accepted_bad, 0);
    CHECK_EQ_INT(rejected, tried);

    char *buf = malloc(size + 64);
    size_t tok5 = 4;
    for (int i = 0; i < 5; i++) {
        int32_t len;
        memcpy(&len, orig + tok5 + 4, 4);
        tok5 += 8 + (size_t)len;
    }
    struct {
        int32_t len;
        const char *what;
    } lens[] = {{-1, "negative length"}, {INT32_MIN, "negative length"}, {INT32_MAX, "longer than max_token_length"},
                {8, "longer than max_token_length"}};
    for (size_t k = 0; k < SA_ARRAY_LEN(lens); k++) {
        memcpy(buf, orig, size);
        memcpy(buf + tok5 + 4, &lens[k].len, 4);
        CHECK(write_file(path, buf, size) == 0);
        expect_reject(path, 0, lens[k].what, lens[k].what);
    }
    /* a huge max_token_length does not let a huge length through: the file is too short */
    memcpy(buf, orig, size);
    uint32_t big = 65536;
    int32_t huge = 60000;
    memcpy(buf, &big, 4);
    memcpy(buf + tok5 + 4, &huge, 4);
    CHECK(write_file(path, buf, size) == 0);
    expect_reject(path, 0, "truncated", "length past the end");
    /* implausible header */
    memcpy(buf, orig, size);
    uint32_t hdr = 0;
    memcpy(buf, &hdr, 4);
    CHECK(write_file(path, buf, size) == 0);
    expect_reject(path, 0, "max_token_length", "zero max_token_length");
    hdr = 0xFFFFFFFFu;
    memcpy(buf, &hdr, 4);
    CHECK(write_file(path, buf, size) == 0);
    expect_reject(path, 0, "max_token_length", "huge max_token_length");
    /* NaN score, NUL inside a token */
    memcpy(buf, orig, size);
    float nan = NAN;
    memcpy(buf + tok5, &nan, 4);
    CHECK(write_file(path, buf, size) == 0);
    expect_reject(path, 0, "NaN", "NaN score");
    memcpy(buf, orig, size);
    buf[tok5 + 8] = 0;
    CHECK(write_file(path, buf, size) == 0);
    expect_reject(path, 0, "NUL", "NUL in token");
    /* trailing garbage after the expected count */
    memcpy(buf, orig, size);
    memcpy(buf + size, "\0\0\0\0\1\0\0\0x", 9);
    CHECK(write_file(path, buf, size + 9) == 0);
    expect_reject(path, 512, "left after", "trailing token");
    /* too few tokens, empty, short header, missing file */
    size_t two = 4;
    for (int i = 0; i < 2; i++) {
        int32_t len;
        memcpy(&len, orig + two + 4, 4);
        two += 8 + (size_t)len;
    }
    CHECK(write_file(path, orig, two) == 0);
    expect_reject(path, 0, "only 2 tokens", "two tokens");
    CHECK(write_file(path, orig, 0) == 0);
    expect_reject(path, 0, "no header", "empty file");
    CHECK(write_file(path, orig, 3) == 0);
    expect_reject(path, 0, "no header", "3-byte file");
    expect_reject(test_tmp("does-not-exist.bin"), 0, "cannot open", "missing file");
    free(buf);
    free(orig);
}

/* ---- long inputs: 1 MiB of text and a 200,000-space run (the worst case for a quadratic merge
 * loop) encode and decode back exactly. No wall-clock limit here (a loaded machine or ASan would
 * make it flaky); make bench times them (tools/bench/bench.sh, "tokenizer"). ---- */

TEST(tok_encode_long_inputs) {
    SaTokenizer *t = load_llama2c(LLAMA2_BIN);
    if (!t) return;
    const size_t n = 1 << 20;
    char *s = malloc(n);
    static const char words[] = "Once upon a time, there was a little girl named Lily. She liked to play outside. ";
    for (size_t i = 0; i < n; i++) s[i] = words[i % (sizeof words - 1)];
    int32_t *ids;
    int k = enc(t, s, n, 1, 0, &ids);
    CHECK(k > 100000);
    size_t dl;
    char *d = dec(t, ids, k, 0, &dl);
    CHECK(d && dl == n && memcmp(d, s, n) == 0);
    free(d);
    free(ids);
    /* one long run of spaces */
    memset(s, ' ', 200000);
    k = enc(t, s, 200000, 1, 0, &ids); /* after BOS the prefix space is dropped again on decoding */
    CHECK(k > 0);
    d = dec(t, ids, k, 0, &dl);
    CHECKF(d && dl == 200000 && memcmp(d, s, 200000) == 0, "200k spaces decode to %zu bytes", d ? dl : 0);
    free(d);
    free(ids);
    free(s);
    sa_tok_free(t);
}
