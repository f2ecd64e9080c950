/* test_convert.c - salign-quantize: output types bit-identical to llama-quantize, `keep`,
 * llama2.c checkpoints (versions 0, 1 and 2), and clean one-line failures on bad input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/common.h"
#include "../src/gguf.h"
#include "../src/hparams.h"
#include "../src/salm.h"
#include "../tools/convert/import.h"
#include "../src/open_gguf.h"
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

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int files_equal(const char *x, const char *y) {
    size_t n1 = 0, n2 = 0;
    char *a = sa_read_file(x, &n1), *b = sa_read_file(y, &n2);
    const int same = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
    free(a);
    free(b);
    return same;
}

static int convert(const char *in, const char *tok, SaConvType type, const char *out) {
    SaConvSource src;
    int rc = tok ? sa_import_llama2c(in, tok, &src) : sa_import_gguf(in, &src);
    if (rc) return -1;
    SaConvOptions o = {.type = type, .quiet = 1};
    rc = sa_conv_write(&src, out, &o);
    sa_conv_free(&src);
    return rc;
}

static int salm_dtype_of_ggml(uint32_t t) {
    switch (t) {
    case GGML_F32: return SA_F32;
    case GGML_F16: return SA_F16;
    case GGML_BF16: return SA_BF16;
    case GGML_Q8_0: return SA_Q8_0;
    case GGML_Q4_0: return SA_Q4_0;
    default: return -1;
    }
}

/* Every tensor of the GGUF must be in the .salm with the same dtype, shape and bytes.
 * Returns the number of identical tensors. */
static int compare_with_gguf(const char *salm_path, const char *gguf_path, int expect_all) {
    Salm s;
    Gguf g;
    if (salm_open(&s, salm_path, 0)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return 0;
    }
    if (gguf_open(&g, gguf_path)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        salm_close(&s);
        return 0;
    }
    CHECKF(salm_verify(&s) == 0, "%s", sa_errmsg());
    int same = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        const SalmTensor *o = salm_tensor(&s, t->name);
        if (!o) {
            if (expect_all) test_fail(__FILE__, __LINE__, "%s: no tensor %s", salm_path, t->name);
            continue;
        }
        int ok = (int)o->dtype == salm_dtype_of_ggml(t->type) && o->nbytes == t->nbytes &&
                 o->ne[0] == t->ne[0] && o->ne[1] == t->ne[1] && memcmp(o->data, t->data, t->nbytes) == 0;
        if (!ok && expect_all)
            test_fail(__FILE__, __LINE__, "%s: tensor %s differs (dtype %s vs ggml type %u)", salm_path, t->name,
                      sa_dtype_name(o->dtype), t->type);
        same += ok;
    }
    if (expect_all) CHECK_EQ_INT(s.n_tensors, (int)g.n_tensors);
    gguf_close(&g);
    salm_close(&s);
    return same;
}

/* ---- bit-identical to llama-quantize ---- */

TEST(convert_q8_0_matches_llama_quantize) {
    const char *in = model_path("stories260K.gguf");
    if (!in) { test_skip("no ../shared/models"); return; }
    const char *out = test_tmp("s-q8_0.salm");
    CHECKF(convert(in, NULL, SA_CONV_Q8_0, out) == 0, "%s", sa_errmsg());
    CHECK_EQ_INT(compare_with_gguf(out, model_path("stories260K-q8_0.gguf"), 1), 48);
}

TEST(convert_q4_0_matches_llama_quantize) {
    const char *in = model_path("stories260K.gguf");
    if (!in) { test_skip("no ../shared/models"); return; }
    const char *out = test_tmp("s-q4_0.salm");
    CHECKF(convert(in, NULL, SA_CONV_Q4_0, out) == 0, "%s", sa_errmsg());
    /* includes output.weight at Q8_0, ffn_down at F16 (172 columns), norms at F32 */
    CHECK_EQ_INT(compare_with_gguf(out, model_path("stories260K-q4_0.gguf"), 1), 48);

    /* the command line writes the same file, byte for byte */
    char cmd[1024];
    const char *out2 = test_tmp("s-q4_0-cli.salm");
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' --type q4_0 -q 2>&1", qbin(), in, out2);
    int st;
    char *msg = test_run(cmd, &st);
    CHECKF(st == 0 && msg[0] == 0, "status %d, output: %s", st, msg);
    free(msg);
    CHECK(files_equal(out, out2));
}

TEST(convert_keep_copies_quantized_blocks) {
    const char *names[] = {"stories260K-q8_0.gguf", "stories260K-q4_0.gguf", "stories260K.gguf"};
    if (!test_models_dir()) { test_skip("no ../shared/models"); return; }
    for (int i = 0; i < 3; i++) {
        const char *in = model_path(names[i]);
        const char *out = test_tmp("keep.salm");
        CHECKF(convert(in, NULL, SA_CONV_KEEP, out) == 0, "%s: %s", names[i], sa_errmsg());
        CHECK_EQ_INT(compare_with_gguf(out, in, 1), 48);
    }
}

/* The in-memory conversion (what the runtime does with a GGUF) is the file salign-quantize
 * writes, byte for byte, for every type; and sa_open_gguf_as_salm gives that image under --type keep. */
TEST(convert_to_memory_equals_file) {
    const char *names[] = {"stories260K-q8_0.gguf", "stories260K-q4_0.gguf", "stories260K.gguf"};
    if (!test_models_dir()) { test_skip("no ../shared/models"); return; }
    for (int i = 0; i < 3; i++) {
        const char *in = model_path(names[i]);
        for (int type = 0; type < SA_CONV_TYPE_COUNT; type++) {
            if (!sa_conv_type_available((SaConvType)type)) continue; /* a file type whose quantizers are not here yet */
            const char *out = test_tmp("mem.salm");
            CHECKF(convert(in, NULL, (SaConvType)type, out) == 0, "%s: %s", names[i], sa_errmsg());
            size_t len = 0;
            char *file = sa_read_file(out, &len);
            SaConvSource src;
            Salm img;
            CHECKF(sa_import_gguf(in, &src) == 0, "%s: %s", names[i], sa_errmsg());
            SaConvOptions o = {.type = (SaConvType)type, .quiet = 1};
            const int mode = type % 2 ? SA_LOAD_READ : SA_LOAD_READ_4K; /* both allocations */
            int rc = sa_conv_to_memory(&src, &o, mode, &img);
            sa_conv_free(&src);
            CHECKF(rc == 0, "%s %s: %s", names[i], sa_conv_type_name((SaConvType)type), sa_errmsg());
            if (rc == 0 && file) {
                CHECKF(img.size == len && memcmp(img.base, file, len) == 0 && img.converted == 1 &&
                           !strcmp(img.path, in),
                       "%s --type %s: the image (%zu bytes) differs from the file (%zu bytes)", names[i],
                       sa_conv_type_name((SaConvType)type), img.size, len);
                CHECK(salm_verify(&img) == 0);
                salm_close(&img);
            }
            if (type == SA_CONV_KEEP && file) {
                CHECKF(sa_open_gguf_as_salm(in, SA_LOAD_MMAP, &img) == 0, "%s: %s", names[i], sa_errmsg());
                CHECK(img.size == len && memcmp(img.base, file, len) == 0 && img.mmapped == 2);
                salm_close(&img);
            }
            free(file);
        }
    }
    /* failures name the file and leave nothing open */
    Salm img;
    const char *bad = test_tmp("short.gguf");
    size_t len = 0;
    char *bytes = sa_read_file(model_path("stories260K.gguf"), &len);
    CHECK(bytes && write_file(bad, bytes, len - 1000) == 0);
    free(bytes);
    CHECK(sa_open_gguf_as_salm(bad, SA_LOAD_READ, &img) == -1);
    CHECKF(strstr(sa_errmsg(), bad) != NULL, "got: %s", sa_errmsg());
    CHECK(img.base == NULL && img.tensors == NULL);
}

TEST(convert_f16_and_f32) {
    const char *in = model_path("stories260K.gguf");
    if (!in) { test_skip("no ../shared/models"); return; }
    const char *out = test_tmp("s-f16.salm");
    CHECKF(convert(in, NULL, SA_CONV_F16, out) == 0, "%s", sa_errmsg());
    Salm s;
    Gguf g;
    if (salm_open(&s, out, 0) != 0) { test_fail(__FILE__, __LINE__, "%s", sa_errmsg()); return; }
    if (gguf_open(&g, in) != 0) { salm_close(&s); return; }
    int n2d = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        const SalmTensor *o = salm_tensor(&s, t->name);
        if (!o) { test_fail(__FILE__, __LINE__, "missing %s", t->name); continue; }
        int is2d = t->n_dims == 2;
        n2d += is2d;
        CHECKF((int)o->dtype == (is2d ? SA_F16 : SA_F32), "%s: %s", t->name, sa_dtype_name(o->dtype));
        const float *x = t->data;
        int64_t n = t->ne[0] * t->ne[1];
        int bad = 0;
        for (int64_t j = 0; j < n; j++) {
            float want = is2d ? sa_fp16_to_fp32(sa_fp32_to_fp16(x[j])) : x[j];
            float got = is2d ? sa_fp16_to_fp32(((const uint16_t *)o->data)[j]) : ((const float *)o->data)[j];
            bad += memcmp(&want, &got, 4) != 0;
        }
        CHECKF(bad == 0, "%s: %d values differ", t->name, bad);
    }
    CHECK_EQ_INT(n2d, 37); /* token_embd, output, 7 matrices x 5 layers */
    gguf_close(&g);
    salm_close(&s);

    out = test_tmp("s-f32.salm");
    CHECKF(convert(in, NULL, SA_CONV_F32, out) == 0, "%s", sa_errmsg());
    CHECK_EQ_INT(compare_with_gguf(out, in, 1), 48);
    /* metadata round trip */
    if (salm_open(&s, out, 0) == 0) {
        SaHparams h;
        CHECKF(sa_hparams_read(&s, &h) == 0, "%s", sa_errmsg());
        CHECK(h.n_embd == 64 && h.n_layer == 5 && h.n_head == 8 && h.n_head_kv == 4 && h.n_ff == 172 &&
              h.n_vocab == 512 && h.n_ctx_train == 2048 && h.tied_output == 0 && h.rope_pairing == SA_ROPE_ADJACENT);
        SaTokSpec t;
        CHECKF(sa_tok_spec_read(&s, &t) == 0, "%s", sa_errmsg());
        CHECK(t.n_vocab == 512 && t.bos_id == 1 && t.eos_id == 2 && t.add_bos == 1 && t.add_space_prefix == 1);
        sa_tok_spec_free(&t);
        salm_close(&s);
    }
}

/* ---- llama2.c checkpoints ---- */

/* The F32 weights of the v0 stories260K.bin, by kind (pointers into `file`). */
typedef struct {
    char *file;
    size_t size;
    int32_t cfg[7];
    int D, F, L, V, KV;
    const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final;
} V0;

static int load_v0(V0 *m) {
    memset(m, 0, sizeof *m);
    const char *p = model_path("stories260K.bin");
    if (!p || !(m->file = sa_read_file(p, &m->size))) return -1;
    memcpy(m->cfg, m->file, 28);
    m->D = m->cfg[0], m->F = m->cfg[1], m->L = m->cfg[2], m->V = m->cfg[5];
    m->KV = m->D / m->cfg[3] * m->cfg[4];
    const float *f = (const float *)(m->file + 28);
    m->emb = f; f += m->V * m->D;
    m->rms_att = f; f += m->L * m->D;
    m->wq = f; f += m->L * m->D * m->D;
    m->wk = f; f += m->L * m->D * m->KV;
    m->wv = f; f += m->L * m->D * m->KV;
    m->wo = f; f += m->L * m->D * m->D;
    m->rms_ffn = f; f += m->L * m->D;
    m->w1 = f; f += m->L * m->D * m->F;
    m->w2 = f; f += m->L * m->F * m->D;
    m->w3 = f; f += m->L * m->D * m->F;
    m->rms_final = f;
    return 0;
}

static void header256(SaBuf *b, const V0 *m, int version, int32_t group) {
    uint8_t h[256] = {0};
    uint32_t magic = 0x616b3432;
    int32_t cfg[7];
    memcpy(cfg, m->cfg, sizeof cfg);
    memcpy(h, &magic, 4);
    memcpy(h + 4, &version, 4);
    memcpy(h + 8, cfg, 28);
    h[36] = 1; /* shared classifier */
    if (version == 2) memcpy(h + 37, &group, 4);
    sa_buf_append(b, h, 256);
}

/* export.py's quantize_q80: per group of `gs`, scale = max|w| / 127, q = round(w / scale).
 * Appends int8 then scales; stores the dequantized values in deq. */
static void q80(SaBuf *b, const float *w, int64_t n, int gs, float *deq) {
    int8_t *q = malloc((size_t)n);
    float *s = malloc((size_t)(n / gs) * 4);
    for (int64_t g = 0; g < n / gs; g++) {
        float amax = 0;
        for (int j = 0; j < gs; j++) amax = fmaxf(amax, fabsf(w[g * gs + j]));
        s[g] = amax / 127.0f;
        for (int j = 0; j < gs; j++) {
            int64_t i = g * gs + j;
            q[i] = s[g] > 0 ? (int8_t)nearbyintf(w[i] / s[g]) : 0;
            deq[i] = q[i] * s[g];
        }
    }
    sa_buf_append(b, q, (size_t)n);
    sa_buf_append(b, s, (size_t)(n / gs) * 4);
    free(q);
    free(s);
}

TEST(convert_llama2c_v0_equals_gguf) {
    if (!test_models_dir()) { test_skip("no ../shared/models"); return; }
    char bin[512];
    snprintf(bin, sizeof bin, "%s", model_path("stories260K.bin"));
    const char *out = test_tmp("l2c-v0.salm");
    CHECKF(convert(bin, model_path("tok512.bin"), SA_CONV_F32, out) == 0, "%s", sa_errmsg());
    /* every weight byte equals the F32 GGUF's; output.weight is the tied embedding there */
    int same = compare_with_gguf(out, model_path("stories260K.gguf"), 0);
    CHECK_EQ_INT(same, 47);
    Salm s;
    if (salm_open(&s, out, 0) == 0) {
        CHECK(salm_tensor(&s, "output.weight") == NULL);
        SaHparams h;
        CHECKF(sa_hparams_read(&s, &h) == 0, "%s", sa_errmsg());
        CHECK(h.tied_output == 1 && h.n_ctx_train == 512 && h.n_vocab == 512 && h.n_head_kv == 4 &&
              h.rope_pairing == SA_ROPE_ADJACENT && h.norm_eps == 1e-5f && h.rope_theta == 10000.0f);
        salm_close(&s);
    }
    Gguf g;
    if (gguf_open(&g, model_path("stories260K.gguf")) == 0) {
        const GgufTensor *e = gguf_tensor(&g, "token_embd.weight"), *o = gguf_tensor(&g, "output.weight");
        CHECK(e && o && e->nbytes == o->nbytes && memcmp(e->data, o->data, e->nbytes) == 0);
        gguf_close(&g);
    }
    /* tied output + q4_0: the embedding is the classifier, so it gets Q6_K, and Q8_0 since its rows (64)
     * are not a multiple of 256 (llama-quantize's rule) */
    SaConvSource src;
    if (sa_import_llama2c(bin, model_path("tok512.bin"), &src) == 0) {
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "token_embd.weight"), SA_CONV_Q4_0), SA_Q8_0);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "blk.0.attn_q.weight"), SA_CONV_Q4_0), SA_Q4_0);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "blk.0.ffn_down.weight"), SA_CONV_Q4_0), SA_F16);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "blk.0.ffn_down.weight"), SA_CONV_Q8_0), SA_F16);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "blk.0.ffn_up.weight"), SA_CONV_Q8_0), SA_Q8_0);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "output_norm.weight"), SA_CONV_Q4_0), SA_F32);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "blk.3.attn_norm.weight"), SA_CONV_F16), SA_F32);
        CHECK_EQ_INT(sa_conv_out_dtype(&src, sa_conv_find(&src, "token_embd.weight"), SA_CONV_KEEP), SA_F32);
        sa_conv_free(&src);
    } else {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
    }
}

TEST(convert_llama2c_v1_v2) {
    V0 m;
    if (load_v0(&m)) { test_skip("no ../shared/models"); return; }
    const int D = m.D, F = m.F, L = m.L, V = m.V, KV = m.KV;
    const char *tok = model_path("tok512.bin");
    /* version 1: same F32 values, norms first, no freq_cis */
    SaBuf b = {0};
    header256(&b, &m, 1, 0);
    sa_buf_append(&b, m.rms_att, (size_t)L * D * 4);
    sa_buf_append(&b, m.rms_ffn, (size_t)L * D * 4);
    sa_buf_append(&b, m.rms_final, (size_t)D * 4);
    sa_buf_append(&b, m.emb, (size_t)V * D * 4);
    sa_buf_append(&b, m.wq, (size_t)L * D * D * 4);
    sa_buf_append(&b, m.wk, (size_t)L * D * KV * 4);
    sa_buf_append(&b, m.wv, (size_t)L * D * KV * 4);
    sa_buf_append(&b, m.wo, (size_t)L * D * D * 4);
    sa_buf_append(&b, m.w1, (size_t)L * D * F * 4);
    sa_buf_append(&b, m.w2, (size_t)L * D * F * 4);
    sa_buf_append(&b, m.w3, (size_t)L * D * F * 4);
    const char *v1 = test_tmp("stories-v1.bin");
    CHECK(write_file(v1, b.data, b.len) == 0);
    const char *out1 = test_tmp("l2c-v1.salm");
    CHECKF(convert(v1, tok, SA_CONV_F32, out1) == 0, "v1: %s", sa_errmsg());
    CHECK_EQ_INT(compare_with_gguf(out1, model_path("stories260K.gguf"), 0), 47);
    /* truncated by one byte: refused */
    CHECK(write_file(v1, b.data, b.len - 1) == 0);
    CHECK(convert(v1, tok, SA_CONV_F32, out1) == -1 && strstr(sa_errmsg(), "bytes"));

    /* version 2: int8 groups of 32 with F32 scales */
    const int gs = 32;
    b.len = 0;
    header256(&b, &m, 2, gs);
    sa_buf_append(&b, m.rms_att, (size_t)L * D * 4);
    sa_buf_append(&b, m.rms_ffn, (size_t)L * D * 4);
    sa_buf_append(&b, m.rms_final, (size_t)D * 4);
    /* dequantized expectations, by salm name */
    typedef struct { char name[48]; float *deq; const float *orig; int64_t n; } Exp;
    Exp exp[1 + 7 * 8];
    int ne = 0;
    struct { const char *suffix; const float *base; int64_t per_layer; } kinds[] = {
        {"attn_q.weight", m.wq, (int64_t)D * D},  {"attn_k.weight", m.wk, (int64_t)D * KV},
        {"attn_v.weight", m.wv, (int64_t)D * KV}, {"attn_output.weight", m.wo, (int64_t)D * D},
        {"ffn_gate.weight", m.w1, (int64_t)D * F}, {"ffn_down.weight", m.w2, (int64_t)D * F},
        {"ffn_up.weight", m.w3, (int64_t)D * F},
    };
    snprintf(exp[ne].name, sizeof exp[ne].name, "token_embd.weight");
    exp[ne].n = (int64_t)V * D;
    exp[ne].orig = m.emb;
    exp[ne].deq = malloc((size_t)exp[ne].n * 4);
    q80(&b, m.emb, exp[ne].n, gs, exp[ne].deq);
    ne++;
    for (size_t k = 0; k < SA_ARRAY_LEN(kinds); k++)
        for (int l = 0; l < L; l++) {
            snprintf(exp[ne].name, sizeof exp[ne].name, "blk.%d.%s", l, kinds[k].suffix);
            exp[ne].n = kinds[k].per_layer;
            exp[ne].orig = kinds[k].base + l * kinds[k].per_layer;
            exp[ne].deq = malloc((size_t)exp[ne].n * 4);
            q80(&b, exp[ne].orig, exp[ne].n, gs, exp[ne].deq);
            ne++;
        }
    const char *v2 = test_tmp("stories-v2.bin");
    CHECK(write_file(v2, b.data, b.len) == 0);
    const char *out2 = test_tmp("l2c-v2.salm");
    CHECKF(convert(v2, tok, SA_CONV_F32, out2) == 0, "v2: %s", sa_errmsg());
    Salm s;
    if (salm_open(&s, out2, 0) == 0) {
        for (int i = 0; i < ne; i++) {
            const SalmTensor *t = salm_tensor(&s, exp[i].name);
            CHECKF(t && t->dtype == SA_F32 && t->nbytes == (uint64_t)exp[i].n * 4, "v2: %s", exp[i].name);
            if (!t || t->nbytes != (uint64_t)exp[i].n * 4) continue;
            CHECKF(memcmp(t->data, exp[i].deq, t->nbytes) == 0, "v2: %s differs from q * scale", exp[i].name);
            double e = test_nmse(t->data, exp[i].orig, (int)exp[i].n);
            CHECKF(e < 1e-3, "v2: %s: nmse %g against the F32 weights", exp[i].name, e);
        }
        const SalmTensor *nrm = salm_tensor(&s, "blk.2.ffn_norm.weight");
        CHECK(nrm && memcmp(nrm->data, m.rms_ffn + 2 * D, (size_t)D * 4) == 0);
        salm_close(&s);
    } else {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
    }
    /* keep: int8 groups become Q8_0 where rows allow it, F16 otherwise */
    CHECKF(convert(v2, tok, SA_CONV_KEEP, out2) == 0, "v2 keep: %s", sa_errmsg());
    if (salm_open(&s, out2, 0) == 0) {
        const SalmTensor *a = salm_tensor(&s, "blk.0.attn_q.weight"), *d = salm_tensor(&s, "blk.0.ffn_down.weight");
        CHECK(a && a->dtype == SA_Q8_0 && d && d->dtype == SA_F16);
        salm_close(&s);
    }
    /* group size that does not divide the matrices: refused */
    int32_t bad_gs = 48;
    memcpy(b.data + 37, &bad_gs, 4);
    CHECK(write_file(v2, b.data, b.len) == 0);
    CHECK(convert(v2, tok, SA_CONV_F32, out2) == -1 && strstr(sa_errmsg(), "group size"));
    for (int i = 0; i < ne; i++) free(exp[i].deq);
    sa_buf_free(&b);
    free(m.file);
}

/* ---- bad input: one line, exit 1 ---- */

static int one_line(const char *s) {
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '\n' && memchr(s, '\n', n - 1) == NULL;
}

/* Run salign-quantize with ARGS; want status `want` and (when 1) one line on stderr that
 * contains `needle`. */
static void cli(const char *args, int want, const char *needle) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", qbin(), args);
    int st;
    char *out = test_run(cmd, &st);
    CHECKF(st == want, "[%s]: status %d (want %d): %s", args, st, want, out);
    if (want == 1) {
        CHECKF(one_line(out), "[%s]: not one line: [%s]", args, out);
        CHECKF(strncmp(out, "salign-quantize: ", 17) == 0, "[%s]: %s", args, out);
        CHECKF(!needle || strstr(out, needle), "[%s]: no \"%s\" in: %s", args, needle, out);
    }
    free(out);
}

TEST(convert_cli_usage_errors) {
    char a[2048];
    const char *out = test_tmp("cli.salm");
    cli("", 1, "missing INPUT");
    cli("x.gguf", 1, "missing OUTPUT");
    snprintf(a, sizeof a, "nonexistent.gguf '%s' --type q8_0", out);
    cli(a, 1, "nonexistent.gguf");
    snprintf(a, sizeof a, "tests '%s' --type q8_0", out);
    cli(a, 1, "tests/config.json: missing"); /* a directory is read as an HF model */
    snprintf(a, sizeof a, "Makefile '%s' --type q8_0", out);
    cli(a, 1, "unrecognised input");
    snprintf(a, sizeof a, "Makefile '%s' --type q9", out);
    cli(a, 1, "--type");
    snprintf(a, sizeof a, "Makefile '%s'", out);
    cli(a, 1, "--type");
    snprintf(a, sizeof a, "Makefile '%s' --type", out);
    cli(a, 1, "--type");
    snprintf(a, sizeof a, "Makefile '%s' --type q8_0 --frobnicate", out);
    cli(a, 1, "--frobnicate");
    snprintf(a, sizeof a, "a b c --type q8_0");
    cli(a, 1, "c: unexpected");
    int st;
    char hcmd[512];
    snprintf(hcmd, sizeof hcmd, "%s --help", qbin());
    char *help = test_run(hcmd, &st);
    CHECK(st == 0 && strstr(help, "usage: salign-quantize"));
    free(help);
    if (!test_models_dir()) return;
    snprintf(a, sizeof a, "'%s' '%s' --type q8_0", model_path("stories260K.bin"), out);
    cli(a, 1, "--tokenizer");
    snprintf(a, sizeof a, "'%s' '%s' --type q8_0 --tokenizer '%s'", model_path("stories260K.gguf"), out,
             model_path("tok512.bin"));
    cli(a, 1, "--tokenizer");
    /* a tokenizer of another vocabulary size */
    snprintf(a, sizeof a, "'%s' '%s' --type q8_0 --tokenizer '%s'", model_path("stories260K.bin"), out,
             model_path("llama2-tokenizer.bin"));
    cli(a, 1, "llama2-tokenizer.bin");
    /* output onto the input */
    const char *copy = test_tmp("copy.gguf");
    size_t n;
    char *d = sa_read_file(model_path("stories260K.gguf"), &n);
    if (d) {
        write_file(copy, d, n);
        snprintf(a, sizeof a, "'%s' '%s' --type q8_0", copy, copy);
        cli(a, 1, "is the input");
        free(d);
    }
    CHECK(!file_exists(out));
}

TEST(convert_llama2c_hostile) {
    const char *bin = model_path("stories260K.bin");
    if (!bin) { test_skip("no ../shared/models"); return; }
    size_t n;
    char *d = sa_read_file(bin, &n);
    if (!d) return;
    const char *path = test_tmp("bad.bin"), *out = test_tmp("bad.salm");
    char a[2048];
    snprintf(a, sizeof a, "'%s' '%s' --type q8_0 --tokenizer '%s'", path, out, model_path("tok512.bin"));
    size_t cuts[] = {0, 3, 27, 28, 29, 1000, 131100, n / 2, n - 4 * 2048 * 2, n - 1};
    for (size_t i = 0; i < SA_ARRAY_LEN(cuts); i++) {
        write_file(path, d, cuts[i]);
        cli(a, 1, "bad.bin");
    }
    /* one float too many */
    char *big = malloc(n + 4);
    memcpy(big, d, n);
    memset(big + n, 0, 4);
    write_file(path, big, n + 4);
    cli(a, 1, "bytes");
    free(big);
    /* header fields: zero, negative, inconsistent, huge (products would overflow) */
    int32_t hdrs[][7] = {
        {0, 172, 5, 8, 4, 512, 512},         {64, 172, 5, -8, 4, 512, 512},      {64, 172, 5, 8, 16, 512, 512},
        {64, 172, 5, 8, 3, 512, 512},        {64, 172, 5, 7, 7, 512, 512},       {64, 172, 5, 8, 4, 0, 512},
        {64, 172, 5, 8, 4, INT32_MIN, 512},  {1 << 30, 1 << 30, 1 << 30, 8, 4, 512, 512},
        {65536, 1 << 20, 4096, 8, 4, -(1 << 24), 1 << 24}, {64, 172, 5, 8, 4, 512, 0},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(hdrs); i++) {
        memcpy(d, hdrs[i], 28);
        write_file(path, d, n);
        cli(a, 1, "bad.bin");
    }
    /* a versioned header with an unknown version, and a v1 header cut short */
    uint32_t magic = 0x616b3432;
    int32_t ver = 3;
    memcpy(d, &magic, 4);
    memcpy(d + 4, &ver, 4);
    write_file(path, d, n);
    cli(a, 1, "version 3");
    write_file(path, d, 100);
    cli(a, 1, "header");
    CHECK(!file_exists(out));
    free(d);
}

/* Metadata that contradicts the tensors, and values that cannot be quantized. */
TEST(convert_gguf_bad_contents) {
    const char *in = model_path("stories260K.gguf");
    if (!in) { test_skip("no ../shared/models"); return; }
    size_t n;
    char *d = sa_read_file(in, &n);
    if (!d) return;
    const char *path = test_tmp("bad.gguf"), *out = test_tmp("bad-gguf.salm");
    char a[2048];
    snprintf(a, sizeof a, "'%s' '%s' --type q8_0", path, out);

    /* feed_forward_length 172 -> 171: every ffn tensor has the wrong shape */
    const char *key = "llama.feed_forward_length";
    char *k = memmem(d, n, key, strlen(key));
    CHECK(k != NULL);
    if (k) {
        uint32_t *val = (uint32_t *)(void *)(k + strlen(key) + 4), old;
        memcpy(&old, val, 4);
        CHECK_EQ_INT(old, 172);
        uint32_t v = 171;
        memcpy(val, &v, 4);
        write_file(path, d, n);
        cli(a, 1, "ffn_gate.weight has shape 64 x 172");
        memcpy(val, &old, 4);
    }
    /* a NaN in a matrix: cannot be block-quantized (ggml's quantizer would be undefined) */
    Gguf g;
    if (gguf_open(&g, in) == 0) {
        const GgufTensor *t = gguf_tensor(&g, "blk.1.attn_v.weight");
        size_t off = (size_t)((const uint8_t *)t->data - g.map) + 4 * (3 * 64 + 5);
        gguf_close(&g);
        float nan = NAN;
        memcpy(d + off, &nan, 4);
        write_file(path, d, n);
        /* -q: without it the lines of the tensors converted before are on stderr too */
        char q[2100];
        snprintf(q, sizeof q, "%s -q", a);
        cli(q, 1, "blk.1.attn_v.weight");
        CHECK(!file_exists(out));
        /* f32 output keeps it as it is */
        char b2[2048];
        snprintf(b2, sizeof b2, "'%s' '%s' --type f32 -q", path, out);
        cli(b2, 0, NULL);
        CHECK(file_exists(out));
        unlink(out);
    }
    /* architecture we do not import */
    const char *arch = "general.architecture";
    k = memmem(d, n, arch, strlen(arch));
    if (k) {
        memcpy(k + strlen(arch) + 4 + 8, "llamb", 5);
        write_file(path, d, n);
        cli(a, 1, "architecture \"llamb\" is not supported");
    }
    free(d);
}


/* salign-quantize re-quantizes a .salm as it does a GGUF: keep is a byte-identical copy, and
 * GGUF -> f32 .salm -> q8_0/q4_0 is byte for byte GGUF -> q8_0/q4_0; a damaged .salm is refused. */
TEST(convert_salm_input) {
    const char *gguf = model_path("stories260K.gguf");
    const char *f32 = test_tmp("re-f32.salm"), *a = test_tmp("re-a.salm"), *b = test_tmp("re-b.salm");
    CHECKF(convert(gguf, NULL, SA_CONV_F32, f32) == 0, "%s", sa_errmsg());
    const SaConvType types[] = {SA_CONV_Q8_0, SA_CONV_Q4_0, SA_CONV_KEEP};
    for (int i = 0; i < 3; i++) {
        SaConvSource src;
        CHECKF(sa_import_salm(f32, &src) == 0, "%s", sa_errmsg());
        SaConvOptions o = {.type = types[i], .quiet = 1};
        CHECKF(sa_conv_write(&src, a, &o) == 0, "%s", sa_errmsg());
        sa_conv_free(&src);
        if (types[i] == SA_CONV_KEEP) {
            CHECK(files_equal(a, f32));
        } else {
            CHECK(convert(gguf, NULL, types[i], b) == 0);
            CHECKF(files_equal(a, b), "type %s: .salm and GGUF sources differ", sa_conv_type_name(types[i]));
        }
    }
    /* through the tool, and a flipped bit refused with the tensor's name */
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "bin/salign-quantize %s %s --type q8_0 -q 2>&1 && cp %s %s && "
                              "printf '\\377' | dd of=%s bs=1 seek=$(( $(stat -c %%s %s) - 100 )) conv=notrunc 2>/dev/null && "
                              "bin/salign-quantize %s %s --type q8_0 -q 2>&1", f32, a, f32, b, b, b, b, a);
    char *log = test_run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "crc32 mismatch") && strchr(log, '\n') == log + strlen(log) - 1, "(%d) %s", st, log);
    free(log);
}

/* -t: the rows are quantized independently, so 1 and 2 threads write the same file; the summary
 * gives each type's bits per weight (Q5_0: 22 bytes per 32 weights = 5.5; Q8_0: 34 per 32 = 8.5);
 * the file-type options refuse what llama-quantize refuses, naming the flag. */
TEST(convert_file_types_cli) {
    if (!test_models_dir()) { test_skip("no ../shared/models"); return; }
    const char *in = model_path("stories260K.gguf");
    const char *a = test_tmp("ft-t1.salm"), *b = test_tmp("ft-t2.salm");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' --type q4_k_m -t 1 -q 2>&1", qbin(), in, a);
    char *out = test_run(cmd, &st);
    CHECKF(st == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s '%s' '%s' --type Q4_K_M -t 2 2>&1", qbin(), in, b);
    out = test_run(cmd, &st);
    CHECKF(st == 0 && files_equal(a, b), "%s", out);
    /* stories260K: rows of 64 and 172, so Q4_K falls back to Q5_0 (and to F16 for 172), the tied classifier to Q8_0 */
    CHECKF(strstr(out, "bits/wt") && strstr(out, "q5_0 ") && strstr(out, " 5.500\n") && strstr(out, "q8_0 ") &&
               strstr(out, " 8.500\n") && strstr(out, "total "),
           "%s", out);
    free(out);
    static const struct {
        const char *args, *msg;
    } bad[] = {
        {"--type q4_k_m --tensor-type attn_v", "--tensor-type attn_v: expected NAME=TYPE"},
        {"--type q4_k_m --tensor-type =q8_0", "missing the tensor name"},
        {"--type q4_k_m --tensor-type attn_v=q9_9", "unknown or unsupported type \"q9_9\""},
        {"--type q4_k_m --tensor-type '(attn=q8_0'", "--tensor-type (attn: not a regular expression"},
        {"--type f16 --pure", "--pure: only with a quantized --type"},
        {"--type keep --tensor-type attn_v=q8_0", "--tensor-type: only with a quantized --type"},
        {"--type q4_k_m -t 0", "-t: \"0\" is not a thread count"},
        {"--type q4_k_x", "--type: unknown type \"q4_k_x\""},
        {"--type q4_0 --imatrix /nonexistent.dat", "--imatrix: /nonexistent.dat"},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(bad); i++) {
        const char *o = test_tmp("ft-bad.salm");
        snprintf(cmd, sizeof cmd, "%s '%s' '%s' %s -q 2>&1", qbin(), in, o, bad[i].args);
        out = test_run(cmd, &st);
        CHECKF(st == 1 && !strncmp(out, "salign-quantize: ", 17) && strstr(out, bad[i].msg) && strchr(out, '\n') && !strchr(out, '\n')[1] &&
                   !file_exists(o),
               "%s: got %s want %s", bad[i].args, out, bad[i].msg);
        free(out);
    }
}

/* Importance-matrix files are user input: a .dat cut at every byte and a GGUF without the imatrix
 * keys are refused with one line naming the file, never a crash; the whole file loads, its values
 * divided by the call count as llama-quantize divides them. */
TEST(convert_imatrix_hostile) {
    uint8_t dat[64];
    size_t n = 0;
    const int32_t entries = 1, name_len = 5, ncall = 4, nval = 2;
    const float vals[2] = {2.0f, 6.0f};
    memcpy(dat + n, &entries, 4), n += 4;
    memcpy(dat + n, &name_len, 4), n += 4;
    memcpy(dat + n, "w.abc", 5), n += 5;
    memcpy(dat + n, &ncall, 4), n += 4;
    memcpy(dat + n, &nval, 4), n += 4;
    memcpy(dat + n, vals, 8), n += 8;
    const char *path = test_tmp("imx.dat");
    SaImatrix im;
    CHECK(write_file(path, dat, n) == 0);
    CHECKF(sa_imatrix_load(path, &im) == 0, "%s", sa_errmsg());
    const SaImatrixEntry *e = sa_imatrix_find(&im, "w.abc");
    CHECK(e && e->n == 2 && e->values[0] == 0.5f && e->values[1] == 1.5f && im.legacy == 1);
    sa_imatrix_free(&im);
    for (size_t cut = 0; cut < n; cut++) {
        CHECK(write_file(path, dat, cut) == 0);
        const int rc = sa_imatrix_load(path, &im);
        CHECKF(rc == -1 && strstr(sa_errmsg(), path) && !strchr(sa_errmsg(), '\n') && im.n == 0, "cut at %zu: %d %s", cut,
               rc, sa_errmsg());
    }
    /* a GGUF that is not an imatrix (a model) */
    if (test_models_dir()) {
        CHECK(sa_imatrix_load(model_path("stories260K.gguf"), &im) == -1 && strstr(sa_errmsg(), "imatrix.datasets"));
    }
}
