/* import_llama2c.c - a llama2.c checkpoint (.bin) as a conversion source.
 *
 * Three layouts exist (karpathy/llama2.c):
 *  - version 0 ("legacy", run.c): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *    vocab_size, seq_len; a negative vocab_size means a separate classifier), then F32 weights
 *    grouped by kind across layers, then freq_cis_real/imag (unused), then wcls if not shared.
 *  - version 1 (export.py): a 256-byte header "ak42", version, the 7 int32, a shared-classifier
 *    byte; F32 weights with the norms first; no freq_cis.
 *  - version 2 (export.py, runq.c): same header plus an int32 group size at byte 37; norms in
 *    F32, every matrix as int8 values followed by one F32 scale per group (x = q * scale).
 * Matrices are stored row-major as (out, in), which is GGUF's ne = [in, out]. llama2.c applies
 * RoPE to adjacent pairs. The file size must be exactly what the header implies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common.h"
#include "import.h"

#define AK42_MAGIC 0x616b3432u
#define VERSIONED_HEADER 256

typedef struct {
    void *map;
    size_t size;
} Mapping;

static void mapping_free(void *p) {
    Mapping *m = p;
    if (m && m->map) munmap(m->map, m->size);
    free(m);
}

/* A cursor that hands out consecutive regions of the file after checking they exist. */
typedef struct {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path;
    int ok;
} Layout;

static const uint8_t *take(Layout *l, uint64_t count, uint64_t elem) {
    uint64_t bytes;
    if (!l->ok) return NULL;
    if (!sa_mul_ok(count, elem, &bytes) || bytes > l->size - l->pos) {
        l->ok = 0;
        return NULL;
    }
    const uint8_t *p = l->base + l->pos;
    l->pos += bytes;
    return p;
}

/* llama2.c v2: int8 values then F32 scales, one per `group` consecutive elements. */
static void decode_q80_groups(const SaConvTensor *t, int64_t row0, int64_t nrows, float *dst) {
    const int8_t *q = t->data;
    const uint8_t *scales = t->aux;
    const int64_t ne0 = t->ne[0], gs = t->group;
    for (int64_t i = row0 * ne0, k = 0; k < nrows * ne0; i++, k++) {
        float s;
        memcpy(&s, scales + (uint64_t)(i / gs) * 4, 4); /* scales need not be 4-byte aligned */
        dst[k] = q[i] * s;
    }
}

/* Add one F32 (version 0/1) or int8-group (version 2) matrix of `rows` x `cols`. */
static int add_matrix(SaConvSource *src, Layout *l, int version, int64_t group, const char *name, int64_t cols,
                      int64_t rows) {
    int64_t ne[2] = {cols, rows};
    uint64_t n = (uint64_t)cols * (uint64_t)rows;
    if (version < 2) {
        const uint8_t *p = take(l, n, 4);
        if (!p) return 1;
        return sa_conv_add(src, name, SA_F32, 2, ne, p, n * 4) ? 0 : -1;
    }
    if (n % (uint64_t)group)
        return sa_err("%s: tensor %s has %llu elements, not a multiple of the group size %lld", src->path, name,
                      (unsigned long long)n, (long long)group);
    const uint8_t *q = take(l, n, 1), *s = take(l, n / (uint64_t)group, 4);
    if (!q || !s) return 1;
    /* `keep` maps int8 groups to the closest block type we have */
    SaConvTensor *t = sa_conv_add(src, name, cols % QK8_0 ? SA_F16 : SA_Q8_0, 2, ne, NULL, 0);
    if (!t) return -1;
    t->data = q;
    t->nbytes = n;
    t->decode = decode_q80_groups;
    t->aux = s;
    t->group = group;
    return 0;
}

static int add_vector(SaConvSource *src, Layout *l, const char *name, int64_t n) {
    const uint8_t *p = take(l, (uint64_t)n, 4);
    if (!p) return 1;
    return sa_conv_add(src, name, SA_F32, 1, &n, p, (uint64_t)n * 4) ? 0 : -1;
}

/* Per-layer tensors of one kind, consecutive in the file. 0, 1 (file too short) or -1. */
static int add_layers(SaConvSource *src, Layout *l, int version, int64_t group, const char *suffix, int64_t cols,
                      int64_t rows) {
    for (int i = 0; i < src->hp.n_layer; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s", i, suffix);
        int r = rows ? add_matrix(src, l, version, group, name, cols, rows) : add_vector(src, l, name, cols);
        if (r) return r;
    }
    return 0;
}

typedef struct {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
} L2cConfig;

static int add_all(SaConvSource *src, Layout *l, int version, int64_t group, int shared, const L2cConfig *c) {
    const int64_t D = c->dim, F = c->hidden, V = src->hp.n_vocab;
    const int64_t KV = (int64_t)c->dim / c->n_heads * c->n_kv_heads;
    const int64_t hs = c->dim / c->n_heads;
    int r = 0;
#define DO(x) \
    if ((r = (x)) != 0) return r
    if (version == 0) {
        DO(add_matrix(src, l, 0, 0, "token_embd.weight", D, V));
        DO(add_layers(src, l, 0, 0, "attn_norm.weight", D, 0));
    } else {
        DO(add_layers(src, l, version, 0, "attn_norm.weight", D, 0));
        DO(add_layers(src, l, version, 0, "ffn_norm.weight", D, 0));
        DO(add_vector(src, l, "output_norm.weight", D));
        DO(add_matrix(src, l, version, group, "token_embd.weight", D, V));
    }
    DO(add_layers(src, l, version, group, "attn_q.weight", D, D));
    DO(add_layers(src, l, version, group, "attn_k.weight", D, KV));
    DO(add_layers(src, l, version, group, "attn_v.weight", D, KV));
    DO(add_layers(src, l, version, group, "attn_output.weight", D, D));
    if (version == 0) DO(add_layers(src, l, 0, 0, "ffn_norm.weight", D, 0));
    DO(add_layers(src, l, version, group, "ffn_gate.weight", D, F)); /* w1 */
    DO(add_layers(src, l, version, group, "ffn_down.weight", F, D)); /* w2 */
    DO(add_layers(src, l, version, group, "ffn_up.weight", D, F));   /* w3 */
    if (version == 0) {
        DO(add_vector(src, l, "output_norm.weight", D));
        /* freq_cis_real and freq_cis_imag: RoPE tables run.c skips; we compute RoPE ourselves */
        if (!take(l, (uint64_t)c->seq_len * (uint64_t)(hs / 2), 4) || !take(l, (uint64_t)c->seq_len * (uint64_t)(hs / 2), 4))
            return 1;
    }
    if (!shared) DO(add_matrix(src, l, version, group, "output.weight", D, V));
#undef DO
    return 0;
}

/* Bytes the weights of this configuration need (0 on overflow): run the layout over a
 * pretend file of unlimited size, without adding tensors. */
static uint64_t needed_bytes(const L2cConfig *c, int version, int64_t group, int shared, uint64_t header) {
    const uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->hidden, L = (uint64_t)c->n_layers;
    const uint64_t V = (uint64_t)(c->vocab < 0 ? -(int64_t)c->vocab : c->vocab);
    const uint64_t KV = D / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads, hs = D / (uint64_t)c->n_heads;
    /* matrices (element counts) and vectors */
    uint64_t mats[] = {V * D, L * D * D, L * D * KV, L * D * KV, L * D * D, L * D * F, L * F * D, L * D * F,
                       shared ? 0 : V * D};
    uint64_t total = header, tmp;
    for (size_t i = 0; i < SA_ARRAY_LEN(mats); i++) {
        uint64_t bytes;
        if (version < 2) {
            if (!sa_mul_ok(mats[i], 4, &bytes)) return 0;
        } else {
            /* per tensor: n int8 + n/group scales; summing per kind is the same total */
            bytes = mats[i] + mats[i] / (uint64_t)group * 4;
        }
        if (!sa_add_ok(total, bytes, &total)) return 0;
    }
    uint64_t vec = (2 * L + 1) * D * 4;
    if (!sa_add_ok(total, vec, &total)) return 0;
    if (version == 0) {
        if (!sa_mul_ok((uint64_t)c->seq_len * hs, 4, &tmp) || !sa_add_ok(total, tmp, &total)) return 0;
    }
    return total;
}

int sa_import_llama2c(const char *path, const char *tokenizer_path, SaConvSource *src) {
    memset(src, 0, sizeof *src);
    if (!(src->path = sa_strdup(path))) return -1;
    Mapping *m = sa_calloc(1, sizeof *m);
    if (!m) goto fail;
    src->owner = m;
    src->owner_free = mapping_free;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sa_err("%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        sa_err("%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 28) {
        close(fd);
        sa_err("%s: too small for a llama2.c checkpoint (%lld bytes)", path, (long long)st.st_size);
        goto fail;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        sa_err("%s: cannot map: %s", path, strerror(e));
        goto fail;
    }
    m->map = map;
    m->size = (size_t)st.st_size;
    const uint8_t *b = map;

    int version = 0;
    uint64_t header = 28;
    L2cConfig c;
    int shared;
    int64_t group = 0;
    uint32_t magic;
    memcpy(&magic, b, 4);
    if (magic == AK42_MAGIC) {
        if (m->size < VERSIONED_HEADER) {
            sa_err("%s: truncated llama2.c header (%zu bytes, the header has 256)", path, m->size);
            goto fail;
        }
        int32_t v;
        memcpy(&v, b + 4, 4);
        if (v != 1 && v != 2) {
            sa_err("%s: llama2.c checkpoint version %d is not supported (0, 1 and 2 are)", path, v);
            goto fail;
        }
        version = v;
        header = VERSIONED_HEADER;
        memcpy(&c, b + 8, sizeof c);
        shared = b[36];
        if (shared > 1) {
            sa_err("%s: shared-classifier flag is %d (not 0 or 1)", path, shared);
            goto fail;
        }
        if (c.vocab <= 0) {
            sa_err("%s: vocab_size %d must be positive in a version %d checkpoint", path, c.vocab, version);
            goto fail;
        }
        if (version == 2) {
            int32_t gs;
            memcpy(&gs, b + 37, 4);
            if (gs <= 0 || gs > (1 << 20)) {
                sa_err("%s: quantization group size %d is out of range", path, gs);
                goto fail;
            }
            group = gs;
        }
    } else {
        memcpy(&c, b, sizeof c);
        shared = c.vocab > 0;
    }
    src->kind = version == 0 ? "llama2.c v0" : version == 1 ? "llama2.c v1 (f32)" : "llama2.c v2 (int8)";

    /* The header values size everything below: bound them before any arithmetic. */
    if (c.dim <= 0 || c.hidden <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.vocab == 0 ||
        c.vocab == INT32_MIN || c.seq_len <= 0) {
        sa_err("%s: bad llama2.c header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, "
               "seq_len %d)", path, c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab, c.seq_len);
        goto fail;
    }
    if (c.dim > (1 << 17) || c.hidden > (1 << 20) || c.n_layers > 4096 || c.n_heads > 4096 || c.seq_len > (1 << 24) ||
        c.vocab > (1 << 24) || c.vocab < -(1 << 24)) {
        sa_err("%s: implausibly large llama2.c header (dim %d, hidden_dim %d, n_layers %d, vocab_size %d, seq_len %d)",
               path, c.dim, c.hidden, c.n_layers, c.vocab, c.seq_len);
        goto fail;
    }
    if (c.dim % c.n_heads || c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads || (c.dim / c.n_heads) % 2) {
        sa_err("%s: inconsistent llama2.c header: dim %d, n_heads %d, n_kv_heads %d", path, c.dim, c.n_heads,
               c.n_kv_heads);
        goto fail;
    }

    if (version == 2) {
        /* export.py quantizes each matrix in whole groups */
        const int64_t D = c.dim, KV = (int64_t)c.dim / c.n_heads * c.n_kv_heads, V = c.vocab;
        if ((D * D) % group || (D * KV) % group || (D * c.hidden) % group || (V * D) % group) {
            sa_err("%s: group size %lld does not divide the matrices (dim %d, hidden_dim %d)", path, (long long)group,
                   c.dim, c.hidden);
            goto fail;
        }
    }
    uint64_t need = needed_bytes(&c, version, group, shared, header);
    if (need != m->size) {
        sa_err("%s: file is %zu bytes but a version %d checkpoint with this header (dim %d, hidden_dim %d, %d layers, "
               "vocab %d%s) needs %llu%s", path, m->size, version, c.dim, c.hidden, c.n_layers, c.vocab < 0 ? -c.vocab : c.vocab,
               shared ? ", shared classifier" : "", (unsigned long long)need, need > m->size ? " (truncated?)" : "");
        goto fail;
    }

    SaHparams *h = &src->hp;
    h->arch = SA_ARCH_LLAMA;
    sa_hparams_defaults(h);
    h->n_vocab = c.vocab < 0 ? -c.vocab : c.vocab;
    h->n_embd = c.dim;
    h->n_layer = c.n_layers;
    h->n_head = c.n_heads;
    h->n_head_kv = c.n_kv_heads;
    h->head_dim = c.dim / c.n_heads;
    h->n_ff = c.hidden;
    h->n_ctx_train = c.seq_len;
    h->norm_eps = 1e-5f;      /* llama2.c's rmsnorm */
    h->rope_theta = 10000.0f; /* llama2.c's RoPE */
    h->rope_pairing = SA_ROPE_ADJACENT;
    h->tied_output = shared;

    Layout l = {b, m->size, header, path, 1};
    int r = add_all(src, &l, version, group, shared, &c);
    if (r < 0) goto fail;
    if (r > 0 || l.pos != m->size) { /* cannot happen after the size check; kept as a guard */
        sa_err("%s: file layout does not match its size", path);
        goto fail;
    }

    if (!tokenizer_path) {
        sa_err("%s: a llama2.c checkpoint has no vocabulary: pass --tokenizer tokenizer.bin", path);
        goto fail;
    }
    /* the tokenizer format has no count: the checkpoint's vocab_size is what it must hold */
    if (sa_tok_spec_from_llama2c_n(tokenizer_path, h->n_vocab, &src->tok)) goto fail;
    if (src->tok.n_vocab != h->n_vocab) {
        sa_err("%s: has %d tokens but %s has a vocabulary of %d", tokenizer_path, src->tok.n_vocab, path, h->n_vocab);
        goto fail;
    }
    return 0;

fail:
    sa_conv_free(src);
    return -1;
}
