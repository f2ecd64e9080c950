/* test_gguf.c - the GGUF reader: real files (stories260K, llama.cpp vocab GGUFs) and hostile
 * ones (hand-built headers, truncations), in process and through bin/salign-quantize. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/common.h"
#include "../src/gguf.h"
#include "../tools/convert/import.h"
#include "test.h"

/* The binary under test; $SALIGN_QUANTIZE overrides it (e.g. bin-san/salign-quantize). */
static const char *qbin(void) {
    const char *e = getenv("SALIGN_QUANTIZE");
    return e && *e ? e : "bin/salign-quantize";
}

static const char *model_path(const char *name) {
    static char buf[4][512];
    static int k;
    const char *dir = test_models_dir();
    if (!dir) return NULL;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static int write_file(const char *path, const void *data, size_t n) {
    /* a new file rather than truncating the old one: ext4 flushes a file truncated to
     * rewrite it (auto_da_alloc), which made the truncation sweep take seconds */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* One line, ending in a newline, no other newline. */
static int one_line(const char *s) {
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '\n' && memchr(s, '\n', n - 1) == NULL;
}

/* Run salign-quantize on a file; check it fails cleanly: status 1 (no signal), nothing on
 * stdout, exactly one line on stderr starting with "salign-quantize: ". */
static void check_cli_rejects(const char *file, const char *extra, const char *what) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' --type q8_0 %s 2>&1 >/dev/null", qbin(), file,
             test_tmp("cli-out.salm"), extra ? extra : "");
    int st;
    char *out = test_run(cmd, &st);
    CHECKF(st == 1, "%s: exit status %d (want 1), stderr: %s", what, st, out);
    CHECKF(one_line(out), "%s: stderr is not one line: [%s]", what, out);
    CHECKF(strncmp(out, "salign-quantize: ", 17) == 0, "%s: stderr: %s", what, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' --type q8_0 %s 2>/dev/null", qbin(), file,
             test_tmp("cli-out.salm"), extra ? extra : "");
    out = test_run(cmd, &st);
    CHECKF(out[0] == 0, "%s: wrote to stdout: %s", what, out);
    free(out);
}

/* ---- real files ---- */

TEST(gguf_stories260k_header) {
    const char *p = model_path("stories260K.gguf");
    if (!p) { test_skip("no ../shared/models"); return; }
    Gguf g;
    CHECKF(gguf_open(&g, p) == 0, "%s", sa_errmsg());
    if (!g.map) return;
    CHECK_EQ_INT(g.version, 3);
    CHECK_EQ_INT(g.n_tensors, 48);
    CHECK_EQ_INT(g.n_kv, 19);
    CHECK_EQ_INT(g.alignment, 32);
    CHECK_EQ_INT(g.data_offset, 14176);
    uint32_t v = 0;
    CHECK(gguf_get_u32(&g, "llama.embedding_length", &v) == 0 && v == 64);
    CHECK(gguf_get_u32(&g, "llama.block_count", &v) == 0 && v == 5);
    CHECK(gguf_get_u32(&g, "llama.attention.head_count", &v) == 0 && v == 8);
    CHECK(gguf_get_u32(&g, "llama.attention.head_count_kv", &v) == 0 && v == 4);
    CHECK(gguf_get_u32(&g, "llama.feed_forward_length", &v) == 0 && v == 172);
    int32_t i32 = 0;
    CHECK(gguf_get_i32(&g, "llama.context_length", &i32) == 0 && i32 == 2048);
    float f = 0;
    CHECK(gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &f) == 0 && fabsf(f - 1e-5f) < 1e-9f);
    char *s = NULL;
    CHECK(gguf_get_str(&g, "general.architecture", &s) == 0 && s && strcmp(s, "llama") == 0);
    free(s);
    /* type errors and missing keys are errors naming the key */
    CHECK(gguf_get_u32(&g, "general.architecture", &v) == -1 && strstr(sa_errmsg(), "general.architecture"));
    CHECK(gguf_get_u32(&g, "no.such.key", &v) == -1 && strstr(sa_errmsg(), "no.such.key"));
    /* separator id is u32 0xFFFFFFFF: fits u32, not i32 */
    CHECK(gguf_get_i32(&g, "tokenizer.ggml.seperator_token_id", &i32) == -1);

    const GgufTensor *t = gguf_tensor(&g, "token_embd.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->n_dims, 2);
        CHECK_EQ_INT(t->ne[0], 64);
        CHECK_EQ_INT(t->ne[1], 512);
        CHECK_EQ_INT(t->type, GGML_F32);
        CHECK_EQ_INT(t->nbytes, 64 * 512 * 4);
        CHECK((const uint8_t *)t->data == g.map + g.data_offset);
    }
    t = gguf_tensor(&g, "blk.4.ffn_norm.weight");
    CHECK(t && t->n_dims == 1 && t->ne[0] == 64 && (const uint8_t *)t->data + t->nbytes == g.map + g.size);

    SaTokSpec spec;
    CHECKF(gguf_tok_spec(&g, &spec) == 0, "%s", sa_errmsg());
    CHECK_EQ_INT(spec.model, SA_TOK_SPM);
    CHECK_EQ_INT(spec.n_vocab, 512);
    CHECK_EQ_INT(spec.bos_id, 1);
    CHECK_EQ_INT(spec.eos_id, 2);
    CHECK_EQ_INT(spec.unk_id, 0);
    CHECK_EQ_INT(spec.pad_id, -1);
    CHECK_EQ_INT(spec.eot_id, -1);
    CHECK_EQ_INT(spec.add_bos, 1);
    CHECK_EQ_INT(spec.add_eos, 0);
    CHECK_EQ_INT(spec.add_space_prefix, 1);
    CHECK(spec.scores && spec.types && !spec.merges);
    CHECK_EQ_STR(spec.tokens[1], "<s>");
    CHECK_EQ_INT(spec.types[0], SA_TT_UNKNOWN);
    CHECK_EQ_INT(spec.types[3], SA_TT_BYTE);
    sa_tok_spec_free(&spec);
    gguf_close(&g);
}

TEST(gguf_import_stories260k_hparams) {
    const char *p = model_path("stories260K.gguf");
    if (!p) { test_skip("no ../shared/models"); return; }
    SaConvSource src;
    CHECKF(sa_import_gguf(p, &src) == 0, "%s", sa_errmsg());
    if (!src.path) return;
    const SaHparams *h = &src.hp;
    CHECK_EQ_INT(h->arch, SA_ARCH_LLAMA);
    CHECK_EQ_INT(h->n_embd, 64);
    CHECK_EQ_INT(h->n_layer, 5);
    CHECK_EQ_INT(h->n_head, 8);
    CHECK_EQ_INT(h->n_head_kv, 4);
    CHECK_EQ_INT(h->head_dim, 8);
    CHECK_EQ_INT(h->n_ff, 172);
    CHECK_EQ_INT(h->n_vocab, 512);
    CHECK_EQ_INT(h->n_ctx_train, 2048);
    CHECK_EQ_INT(h->rope_pairing, SA_ROPE_ADJACENT);
    CHECK_EQ_INT(h->rope_scaling, SA_ROPE_SCALING_NONE);
    CHECK_EQ_INT(h->tied_output, 0); /* this GGUF stores output.weight (a copy of the embedding) */
    CHECK(fabsf(h->norm_eps - 1e-5f) < 1e-9f);
    CHECK(h->rope_theta == 10000.0f);
    CHECK_EQ_INT(src.n_tensors, 48);
    CHECK(src.chat_template == NULL);
    CHECKF(sa_conv_check(&src) == 0, "%s", sa_errmsg());
    sa_conv_free(&src);
}

TEST(gguf_vocab_files_tok_spec) {
    const char *p = model_path("vocab/ggml-vocab-llama-bpe.gguf");
    if (!p) { test_skip("no ../shared/models"); return; }
    Gguf g;
    SaTokSpec spec;
    CHECKF(gguf_open(&g, p) == 0, "%s", sa_errmsg());
    if (g.map) {
        CHECK_EQ_INT(g.n_tensors, 0);
        CHECKF(gguf_tok_spec(&g, &spec) == 0, "%s", sa_errmsg());
        CHECK_EQ_INT(spec.model, SA_TOK_BPE);
        CHECK_EQ_INT(spec.n_vocab, 128256);
        CHECK_EQ_INT(spec.n_merges, 280147);
        CHECK_EQ_INT(spec.bos_id, 128000);
        CHECK_EQ_INT(spec.eos_id, 128001);
        CHECK_EQ_INT(spec.eot_id, 128009); /* found by name: <|eot_id|> */
        CHECK_EQ_INT(spec.unk_id, -1);
        CHECK_EQ_INT(spec.add_bos, 1);
        CHECK_EQ_INT(spec.add_space_prefix, 0);
        CHECK_EQ_STR(spec.pre, "llama-bpe");
        CHECK_EQ_STR(spec.merges[0], "\xc4\xa0 \xc4\xa0");
        sa_tok_spec_free(&spec);
        gguf_close(&g);
    }
    p = model_path("vocab/ggml-vocab-qwen2.gguf");
    CHECKF(gguf_open(&g, p) == 0, "%s", sa_errmsg());
    if (g.map) {
        CHECKF(gguf_tok_spec(&g, &spec) == 0, "%s", sa_errmsg());
        CHECK_EQ_INT(spec.n_vocab, 151936);
        CHECK_EQ_INT(spec.eot_id, 151645); /* <|im_end|> */
        CHECK_EQ_INT(spec.pad_id, 151643);
        CHECK_EQ_INT(spec.add_bos, 0);
        CHECK_EQ_STR(spec.pre, "qwen2");
        sa_tok_spec_free(&spec);
        char *ct = NULL;
        CHECK(gguf_get_str(&g, "tokenizer.chat_template", &ct) == 0 && ct && strstr(ct, "<|im_start|>"));
        free(ct);
        gguf_close(&g);
    }
    p = model_path("vocab/ggml-vocab-llama-spm.gguf");
    CHECKF(gguf_open(&g, p) == 0, "%s", sa_errmsg());
    if (g.map) {
        CHECKF(gguf_tok_spec(&g, &spec) == 0, "%s", sa_errmsg());
        CHECK_EQ_INT(spec.model, SA_TOK_SPM);
        CHECK_EQ_INT(spec.n_vocab, 32000);
        CHECK_EQ_INT(spec.add_bos, 1);
        CHECK_EQ_INT(spec.add_eos, 0);
        sa_tok_spec_free(&spec);
        gguf_close(&g);
        /* a vocab-only GGUF is not a model: the importer says which tensor is missing */
        SaConvSource src;
        CHECK(sa_import_gguf(p, &src) == 0);
        CHECK(sa_conv_check(&src) == -1 && strstr(sa_errmsg(), "token_embd.weight is missing"));
        sa_conv_free(&src);
    }
}

/* ---- hand-built hostile files ---- */

static void put32(SaBuf *b, uint32_t v) { sa_buf_append(b, &v, 4); }
static void put64(SaBuf *b, uint64_t v) { sa_buf_append(b, &v, 8); }
static void putstr(SaBuf *b, const char *s) {
    put64(b, strlen(s));
    sa_buf_append(b, s, strlen(s));
}

enum {
    V_VALID, V_MAGIC, V_VERSION1, V_VERSION4, V_NKV_HUGE, V_NT_HUGE, V_KEYLEN_HUGE, V_STRLEN_HUGE, V_ARR_OVERFLOW,
    V_STRARR_HUGE, V_NESTED, V_KVTYPE, V_BOOL2, V_BOOLARR2, V_ALIGN0, V_ALIGN48, V_ALIGN_STR, V_NDIMS0, V_NDIMS5,
    V_NE0, V_NE_OVERFLOW, V_TYPE99, V_TYPE_Q4K, V_Q8_ROW33, V_OFF_MISALIGNED, V_OFF_PAST_EOF, V_OFF_OVERFLOW,
    V_DUP_KEY, V_DUP_TENSOR, V_KEY_NUL, V_KEY_NEWLINE_DUP, V_NAME_LONG, V_EMPTY_KEY, V_DATA_SHORT, V_EMPTY,
    V_TINY, V_HEADER_ONLY, V_COUNT
};

/* A small valid GGUF (3 keys, 2 tensors) with one defect selected by v. */
static void build(SaBuf *b, int v) {
    b->len = 0;
    if (v == V_EMPTY) return;
    if (v == V_TINY) {
        sa_buf_append(b, "GGU", 3);
        return;
    }
    sa_buf_append(b, v == V_MAGIC ? "GGML" : "GGUF", 4);
    put32(b, v == V_VERSION1 ? 1 : v == V_VERSION4 ? 4 : 3);
    put64(b, v == V_NT_HUGE ? (uint64_t)1 << 60 : 2);
    put64(b, v == V_NKV_HUGE ? (uint64_t)1 << 60 : 3);
    if (v == V_HEADER_ONLY) return;
    /* key 1: a string */
    if (v == V_KEYLEN_HUGE) put64(b, UINT64_MAX);
    else if (v == V_KEY_NUL) { put64(b, 5); sa_buf_append(b, "ab\0cd", 5); }
    else if (v == V_KEY_NEWLINE_DUP) putstr(b, "evil\nkey");
    else if (v == V_EMPTY_KEY) putstr(b, "");
    else putstr(b, "general.architecture");
    put32(b, v == V_KVTYPE ? 13 : GGUF_STRING);
    if (v == V_STRLEN_HUGE) put64(b, (uint64_t)1 << 62);
    else putstr(b, "llama");
    /* key 2: an array */
    putstr(b, v == V_DUP_KEY ? "general.architecture" : v == V_KEY_NEWLINE_DUP ? "evil\nkey" : "x.arr");
    put32(b, GGUF_ARRAY);
    if (v == V_NESTED) { put32(b, GGUF_ARRAY); put64(b, 1); put32(b, GGUF_U32); put64(b, 1); put32(b, 7); }
    else if (v == V_STRARR_HUGE) { put32(b, GGUF_STRING); put64(b, (uint64_t)1 << 61); putstr(b, "a"); }
    else if (v == V_BOOLARR2) { put32(b, GGUF_BOOL); put64(b, 4); put32(b, 0x00020100); }
    else {
        put32(b, GGUF_U32);
        put64(b, v == V_ARR_OVERFLOW ? 0x4000000000000001ull : 3); /* x4 wraps to 4 bytes */
        put32(b, 1); put32(b, 2); put32(b, 3);
    }
    /* key 3: alignment or a bool */
    if (v == V_ALIGN0 || v == V_ALIGN48 || v == V_ALIGN_STR) {
        putstr(b, "general.alignment");
        if (v == V_ALIGN_STR) { put32(b, GGUF_STRING); putstr(b, "32"); }
        else { put32(b, GGUF_U32); put32(b, v == V_ALIGN0 ? 0 : 48); }
    } else {
        putstr(b, "x.flag");
        put32(b, GGUF_BOOL);
        uint8_t one = v == V_BOOL2 ? 2 : 1;
        sa_buf_append(b, &one, 1);
    }
    /* tensor 1: f32 [32, 2] at 0 */
    if (v == V_NAME_LONG) {
        char name[301];
        memset(name, 'n', 300);
        name[300] = 0;
        putstr(b, name);
    } else {
        putstr(b, "a.weight");
    }
    uint32_t nd = v == V_NDIMS0 ? 0 : v == V_NDIMS5 ? 5 : 2;
    put32(b, nd);
    if (v == V_NE_OVERFLOW) { put64(b, (uint64_t)1 << 40); put64(b, (uint64_t)1 << 40); }
    else if (nd == 5) { for (int i = 0; i < 5; i++) put64(b, 2); }
    else if (nd == 2) { put64(b, v == V_NE0 ? 0 : v == V_Q8_ROW33 ? 33 : 32); put64(b, 2); }
    put32(b, v == V_TYPE99 ? 99 : v == V_TYPE_Q4K ? 12 : v == V_Q8_ROW33 ? GGML_Q8_0 : GGML_F32);
    put64(b, v == V_OFF_MISALIGNED ? 1 : v == V_OFF_PAST_EOF ? 4096 : v == V_OFF_OVERFLOW ? UINT64_MAX - 31 : 0);
    /* tensor 2: f16 [64] at 256 */
    putstr(b, v == V_DUP_TENSOR ? "a.weight" : "b.weight");
    put32(b, 1);
    put64(b, 64);
    put32(b, GGML_F16);
    put64(b, 256);
    /* data: aligned to 32, 256 + 128 bytes */
    while (b->len % 32) sa_buf_append(b, "", 1);
    for (int i = 0; i < 384 - (v == V_DATA_SHORT ? 1 : 0); i++) sa_buf_append(b, "\x3c", 1);
}

TEST(gguf_hostile_headers) {
    SaBuf b = {0};
    const char *path = test_tmp("hostile.gguf");
    build(&b, V_VALID);
    CHECK(write_file(path, b.data, b.len) == 0);
    Gguf g;
    CHECKF(gguf_open(&g, path) == 0, "the valid base file: %s", sa_errmsg());
    if (g.map) {
        const GgufKV *kv = gguf_find(&g, "x.arr");
        CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_U32 && kv->arr_n == 3);
        int fl = 0;
        CHECK(gguf_get_bool(&g, "x.flag", &fl) == 0 && fl == 1);
        const GgufTensor *t = gguf_tensor(&g, "b.weight");
        CHECK(t && t->type == GGML_F16 && t->nbytes == 128 && t->offset == 256);
        gguf_close(&g);
    }
    for (int v = 1; v < V_COUNT; v++) {
        build(&b, v);
        CHECK(write_file(path, b.data, b.len) == 0);
        sa_err_clear();
        int rc = gguf_open(&g, path);
        CHECKF(rc == -1, "variant %d was accepted", v);
        if (rc == 0) {
            gguf_close(&g);
            continue;
        }
        const char *m = sa_errmsg();
        CHECKF(strncmp(m, path, strlen(path)) == 0, "variant %d: message does not name the file: %s", v, m);
        CHECKF(strchr(m, '\n') == NULL, "variant %d: message has a newline: %s", v, m);
        CHECK(g.map == NULL && g.kv == NULL && g.tensors == NULL);
    }
    /* a few messages say what is wrong */
    build(&b, V_TYPE_Q4K);
    write_file(path, b.data, b.len);
    CHECK(gguf_open(&g, path) == -1 && strstr(sa_errmsg(), "a.weight") && strstr(sa_errmsg(), "q4_K"));
    build(&b, V_VERSION1);
    write_file(path, b.data, b.len);
    CHECK(gguf_open(&g, path) == -1 && strstr(sa_errmsg(), "version 1"));
    build(&b, V_NESTED);
    write_file(path, b.data, b.len);
    CHECK(gguf_open(&g, path) == -1 && strstr(sa_errmsg(), "nested"));
    sa_buf_free(&b);
}

TEST(gguf_hostile_headers_cli) {
    SaBuf b = {0};
    for (int v = 0; v < V_COUNT; v++) {
        char name[64], what[64];
        snprintf(name, sizeof name, "hostile-%d.gguf", v);
        snprintf(what, sizeof what, "variant %d", v);
        const char *path = test_tmp(name);
        build(&b, v);
        /* V_EMPTY/V_TINY have no GGUF magic and no .bin suffix: rejected as unrecognised */
        write_file(path, b.data, b.len);
        check_cli_rejects(path, NULL, what);
    }
    sa_buf_free(&b);
}

/* Truncating the real file anywhere must fail cleanly: every 7th byte through the header
 * (metadata, vocabulary, tensor table) and a spread of points in the data. */
TEST(gguf_truncated_everywhere) {
    const char *p = model_path("stories260K.gguf");
    if (!p) { test_skip("no ../shared/models"); return; }
    size_t n;
    char *data = sa_read_file(p, &n);
    CHECK(data != NULL);
    if (!data) return;
    const char *path = test_tmp("trunc.gguf");
    int tried = 0, cli = 0;
    for (size_t cut = 0; cut < n; cut += cut < 14200 ? 7 : 50021) {
        CHECK(write_file(path, data, cut) == 0);
        Gguf g;
        int rc = gguf_open(&g, path);
        CHECKF(rc == -1, "truncated at %zu: accepted", cut);
        if (rc == 0) gguf_close(&g);
        else CHECKF(strchr(sa_errmsg(), '\n') == NULL, "truncated at %zu: %s", cut, sa_errmsg());
        tried++;
        /* the CLI on a sample of them (a process each) */
        if (cut % 700 == 0 || cut > 14200) {
            char what[64];
            snprintf(what, sizeof what, "GGUF truncated at %zu", cut);
            check_cli_rejects(path, NULL, what);
            cli++;
        }
    }
    CHECK(write_file(path, data, n - 1) == 0);
    check_cli_rejects(path, NULL, "GGUF missing its last byte");
    CHECK(tried > 2000 && cli > 40);
    free(data);
}

/* Llama 3.1-style GGUFs carry rope scaling only as the tensor rope_freqs.weight; the importer
 * recognises the published parameters from it. Built by appending that tensor to
 * stories260K.gguf (head_dim 8: 4 frequencies; with theta 10000 only the last one is scaled). */
static char *with_rope_freqs(const char *in, const float *freqs, size_t *out_n) {
    size_t n;
    char *d = sa_read_file(in, &n);
    if (!d) return NULL;
    const size_t header_end = 14152, data_off = 14176, data_len = n - data_off;
    uint64_t nt;
    memcpy(&nt, d + 8, 8);
    SaBuf b = {0};
    sa_buf_append(&b, d, header_end);
    nt++;
    memcpy(b.data + 8, &nt, 8);
    putstr(&b, "rope_freqs.weight");
    put32(&b, 1);
    put64(&b, 4);
    put32(&b, GGML_F32);
    put64(&b, data_len); /* a multiple of 32 */
    while (b.len % 32) sa_buf_append(&b, "", 1);
    sa_buf_append(&b, d + data_off, data_len);
    sa_buf_append(&b, freqs, 16);
    free(d);
    *out_n = b.len;
    return b.data;
}

TEST(gguf_llama3_rope_freqs) {
    const char *in = model_path("stories260K.gguf");
    if (!in) { test_skip("no ../shared/models"); return; }
    /* Llama 3.1: factor 8, low 1, high 4, original context 8192. Wavelengths 2*pi*10000^(i/4):
     * 6.3, 63, 628 (< 8192/4: unscaled) and 6283 (between: smoothed). */
    double wl = 2 * M_PI * 1000.0, smooth = (8192.0 / wl - 1) / (4 - 1);
    float freqs[4] = {1, 1, 1, (float)(1 / ((1 - smooth) / 8 + smooth))};
    size_t n;
    char *d = with_rope_freqs(in, freqs, &n);
    CHECK(d != NULL);
    if (!d) return;
    const char *path = test_tmp("rope-freqs.gguf");
    CHECK(write_file(path, d, n) == 0);
    free(d);
    SaConvSource src;
    CHECKF(sa_import_gguf(path, &src) == 0, "%s", sa_errmsg());
    if (src.path) {
        CHECK_EQ_INT(src.hp.rope_scaling, SA_ROPE_SCALING_LLAMA3);
        CHECK(src.hp.rope_factor == 8 && src.hp.rope_low_freq_factor == 1 && src.hp.rope_high_freq_factor == 4 &&
              src.hp.rope_orig_ctx == 8192);
        CHECK_EQ_INT(src.n_tensors, 48); /* folded into the hyperparameters, not carried */
        CHECKF(sa_conv_check(&src) == 0, "%s", sa_errmsg());
        sa_conv_free(&src);
    }
    /* factors of no known scheme: refused, naming the tensor */
    freqs[3] = 3.0f;
    d = with_rope_freqs(in, freqs, &n);
    if (!d) return;
    CHECK(write_file(path, d, n) == 0);
    free(d);
    CHECK(sa_import_gguf(path, &src) == -1 && strstr(sa_errmsg(), "rope_freqs.weight"));
}
