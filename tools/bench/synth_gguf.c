/* synth_gguf.c - write a synthetic Llama-shaped GGUF with random F16 weights, for benchmarks.
 *
 *   synth_gguf OUT.gguf [--embd 2048] [--layers 16] [--heads 32] [--kv-heads 8] [--ff 8192]
 *                       [--vocab 128256]
 *
 * Defaults are the Llama-3.2-1B shape (tied output). The weights are random (normal, std 0.02,
 * norms 1.0), so the model says nothing useful; speed does not depend on the values. The
 * tokenizer is a SentencePiece-style ("llama") vocabulary of <unk>, <s>, </s>, the 256 byte
 * tokens and made-up pieces, which both llama.cpp and salign-quantize accept. llama-quantize
 * turns the file into Q4_0/Q8_0 (tools/bench/bench.sh). Standalone: only libc and libm. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_STR = 8, T_ARR = 9 };
enum { G_F32 = 0, G_F16 = 1 };
#define ALIGN 32

static FILE *out;
static void w_raw(const void *p, size_t n) {
    if (fwrite(p, 1, n, out) != n) {
        perror("synth_gguf: write");
        exit(1);
    }
}
static void w_u32(uint32_t v) { w_raw(&v, 4); }
static void w_u64(uint64_t v) { w_raw(&v, 8); }
static void w_str(const char *s) {
    w_u64(strlen(s));
    w_raw(s, strlen(s));
}
static uint64_t n_kv; /* counted as written; the header's count is patched at the end */
static void key(const char *k) { w_str(k); n_kv++; }
static void kv_u32(const char *k, uint32_t v) { key(k); w_u32(T_U32); w_u32(v); }
static void kv_f32(const char *k, float v) { key(k); w_u32(T_F32); w_raw(&v, 4); }
static void kv_str(const char *k, const char *v) { key(k); w_u32(T_STR); w_str(v); }

/* fp32 -> fp16, round to nearest even; inputs here are small normal numbers. */
static uint16_t f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    int e = (int)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t m = x & 0x7FFFFF;
    if (e <= 0) { /* subnormal half (or zero) */
        if (e < -10) return (uint16_t)sign;
        m |= 0x800000;
        const int shift = 14 - e;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    if (e >= 31) return (uint16_t)(sign | 0x7C00);
    uint32_t h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static inline uint64_t next(void) { /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

typedef struct {
    char name[64];
    int n_dims;
    uint64_t ne[2];
    int type;
    uint64_t offset, bytes;
} Tensor;

int main(int argc, char **argv) {
    int embd = 2048, layers = 16, heads = 32, kv_heads = 8, ff = 8192, vocab = 128256;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        int *dst = NULL;
        if (!strcmp(argv[i], "--embd")) dst = &embd;
        else if (!strcmp(argv[i], "--layers")) dst = &layers;
        else if (!strcmp(argv[i], "--heads")) dst = &heads;
        else if (!strcmp(argv[i], "--kv-heads")) dst = &kv_heads;
        else if (!strcmp(argv[i], "--ff")) dst = &ff;
        else if (!strcmp(argv[i], "--vocab")) dst = &vocab;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "synth_gguf: unknown argument %s\n", argv[i]);
            return 1;
        }
        if (dst) {
            if (i + 1 >= argc) return fprintf(stderr, "synth_gguf: %s needs a value\n", argv[i]), 1;
            *dst = atoi(argv[++i]);
        }
    }
    if (!path || embd % heads || vocab < 300 || embd % 32 || ff % 32) {
        fprintf(stderr, "usage: synth_gguf OUT.gguf [--embd N --layers N --heads N --kv-heads N --ff N --vocab N]\n");
        return 1;
    }
    const int hd = embd / heads, kv_dim = kv_heads * hd;

    /* tensor list in llama.cpp's order */
    Tensor *t = calloc((size_t)layers * 9 + 2, sizeof *t);
    int nt = 0;
#define ADD(nm, d0, d1, ty)                                                   \
    do {                                                                      \
        snprintf(t[nt].name, sizeof t[nt].name, "%s", nm);                    \
        t[nt].ne[0] = (uint64_t)(d0);                                         \
        t[nt].ne[1] = (uint64_t)(d1);                                         \
        t[nt].n_dims = (d1) > 0 ? 2 : 1;                                      \
        if ((d1) == 0) t[nt].ne[1] = 1;                                       \
        t[nt].type = ty;                                                      \
        nt++;                                                                 \
    } while (0)
    ADD("token_embd.weight", embd, vocab, G_F16);
    ADD("output_norm.weight", embd, 0, G_F32);
    for (int l = 0; l < layers; l++) {
        char nm[64];
#define L(s) (snprintf(nm, sizeof nm, "blk.%d." s, l), nm)
        ADD(L("attn_norm.weight"), embd, 0, G_F32);
        ADD(L("attn_q.weight"), embd, embd, G_F16);
        ADD(L("attn_k.weight"), embd, kv_dim, G_F16);
        ADD(L("attn_v.weight"), embd, kv_dim, G_F16);
        ADD(L("attn_output.weight"), embd, embd, G_F16);
        ADD(L("ffn_norm.weight"), embd, 0, G_F32);
        ADD(L("ffn_gate.weight"), embd, ff, G_F16);
        ADD(L("ffn_up.weight"), embd, ff, G_F16);
        ADD(L("ffn_down.weight"), ff, embd, G_F16);
#undef L
    }
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        t[i].offset = off;
        t[i].bytes = t[i].ne[0] * t[i].ne[1] * (t[i].type == G_F16 ? 2 : 4);
        off = (off + t[i].bytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    out = fopen(path, "wb");
    if (!out) {
        perror(path);
        return 1;
    }
    static char buf[1 << 20];
    setvbuf(out, buf, _IOFBF, sizeof buf);
    w_raw("GGUF", 4);
    w_u32(3);
    w_u64((uint64_t)nt);
    w_u64(0); /* number of key/values: patched below */
    kv_str("general.architecture", "llama");
    kv_str("general.name", "salign synthetic llama");
    kv_u32("general.file_type", 1); /* mostly F16 */
    kv_u32("general.alignment", ALIGN);
    kv_u32("llama.context_length", 131072);
    kv_u32("llama.embedding_length", (uint32_t)embd);
    kv_u32("llama.block_count", (uint32_t)layers);
    kv_u32("llama.feed_forward_length", (uint32_t)ff);
    kv_u32("llama.attention.head_count", (uint32_t)heads);
    kv_u32("llama.attention.head_count_kv", (uint32_t)kv_heads);
    kv_u32("llama.rope.dimension_count", (uint32_t)hd);
    kv_f32("llama.rope.freq_base", 500000.0f);
    kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_str("tokenizer.ggml.model", "llama");
    /* tokens: <unk> <s> </s>, <0x00>..<0xFF>, then "\u2581t<N>" pieces */
    key("tokenizer.ggml.tokens");
    w_u32(T_ARR);
    w_u32(T_STR);
    w_u64((uint64_t)vocab);
    for (int i = 0; i < vocab; i++) {
        char s[32];
        if (i == 0) strcpy(s, "<unk>");
        else if (i == 1) strcpy(s, "<s>");
        else if (i == 2) strcpy(s, "</s>");
        else if (i < 259) snprintf(s, sizeof s, "<0x%02X>", i - 3);
        else snprintf(s, sizeof s, "\xe2\x96\x81t%d", i);
        w_str(s);
    }
    key("tokenizer.ggml.scores");
    w_u32(T_ARR);
    w_u32(T_F32);
    w_u64((uint64_t)vocab);
    for (int i = 0; i < vocab; i++) {
        float s = i < 259 ? 0.0f : -(float)i;
        w_raw(&s, 4);
    }
    key("tokenizer.ggml.token_type");
    w_u32(T_ARR);
    w_u32(T_I32);
    w_u64((uint64_t)vocab);
    for (int i = 0; i < vocab; i++) {
        int32_t ty = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; /* unknown, control, byte, normal */
        w_raw(&ty, 4);
    }
    kv_u32("tokenizer.ggml.bos_token_id", 1);
    kv_u32("tokenizer.ggml.eos_token_id", 2);
    kv_u32("tokenizer.ggml.unknown_token_id", 0);

    for (int i = 0; i < nt; i++) {
        w_str(t[i].name);
        w_u32((uint32_t)t[i].n_dims);
        for (int d = 0; d < t[i].n_dims; d++) w_u64(t[i].ne[d]);
        w_u32((uint32_t)t[i].type);
        w_u64(t[i].offset);
    }
    long pos = ftell(out);
    static const char zeros[ALIGN];
    if (pos % ALIGN) w_raw(zeros, ALIGN - pos % ALIGN);

    /* a table of 4096 N(0, 0.02) halves, indexed by random bits: fast, and the quantizers see
     * realistic blocks (varied scales, no all-equal values) */
    uint16_t table[4096];
    for (int i = 0; i < 4096; i++) {
        double u = ((next() >> 11) + 0.5) / 9007199254740992.0, v = (next() >> 11) / 9007199254740992.0;
        table[i] = f2h((float)(0.02 * sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v)));
    }
    uint16_t *row = malloc(1 << 20);
    uint64_t written = 0;
    for (int i = 0; i < nt; i++) {
        const uint64_t n = t[i].ne[0] * t[i].ne[1];
        if (t[i].type == G_F32) {
            const float one = 1.0f;
            for (uint64_t j = 0; j < n; j++) w_raw(&one, 4);
        } else {
            for (uint64_t j = 0; j < n;) {
                const uint64_t m = n - j < (1 << 19) ? n - j : (1 << 19);
                for (uint64_t k = 0; k < m; k += 4) {
                    const uint64_t r = next();
                    row[k] = table[r & 4095];
                    row[k + 1] = table[(r >> 12) & 4095];
                    row[k + 2] = table[(r >> 24) & 4095];
                    row[k + 3] = table[(r >> 36) & 4095];
                }
                w_raw(row, m * 2);
                j += m;
            }
        }
        written += t[i].bytes;
        const uint64_t pad = (ALIGN - t[i].bytes % ALIGN) % ALIGN;
        if (pad) w_raw(zeros, pad);
        written += pad;
    }
    if (fseek(out, 16, SEEK_SET) != 0) {
        perror("synth_gguf: seek");
        return 1;
    }
    w_u64(n_kv);
    if (fclose(out) != 0) {
        perror("synth_gguf: close");
        return 1;
    }
    fprintf(stderr, "synth_gguf: wrote %s: %d tensors, %.1f MiB of tensor data\n", path, nt, written / 1048576.0);
    free(row);
    free(t);
    return 0;
}
