/* tokenizer.c - text <-> token ids (see tokenizer.h).
 *
 * Layout of this file:
 *   1. spec helpers (free, deep copy)
 *   2. the tokenizer object: piece -> id hash table, byte-fallback table, special-token index
 *   3. parse_special: splitting template text on control / user-defined / unknown token strings
 *   4. SentencePiece BPE (SA_TOK_SPM): the merge loop (by scores, or by merge rank for HF files)
 *   4b. byte-level BPE (SA_TOK_BPE): GPT-2 byte<->unicode mapping, NFC, the Llama 3 / Qwen2 split
 *       pattern, merge by rank
 *   5. encode / decode entry points, dispatching on the model
 *   6. the llama2.c tokenizer.bin loader
 *
 * The special-token splitting, the hash table and the output vector are shared by both models.
 *
 * Reference behaviour: SPM: llama.cpp's llm_tokenizer_spm_session + llama_vocab::impl::tokenize (and
 * SentencePiece's bpe_model.cc where the two differ in ways that matter for safety; each such
 * place says so). Byte-level BPE and SPM from tokenizer.json: HF tokenizers (the Rust library that
 * made llama.cpp's goldens, and tokenizers.js, the oracle in tests/run-oracle-tokenizers.sh). */
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h> /* Unicode general categories and NFC (Debian libutf8proc-dev) */

/* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible stand-in for ' '. */
#define SPM_SPACE "\xe2\x96\x81"
#define SPM_SPACE_LEN 3

/* Texts longer than this are refused: offsets are kept in 32 bits and the escaped copy can
 * be three times the input. 256 MiB is far beyond any prompt. */
#define MAX_TEXT_BYTES ((size_t)1 << 28)
/* Vocabularies larger than this are refused (the largest real ones are ~262k). */
#define MAX_VOCAB (1 << 24)

/* ------------------------------------------------------------------------------------------ */
/* 1. spec helpers                                                                              */

void sa_tok_spec_free(SaTokSpec *spec) {
    if (!spec) return;
    if (spec->tokens) {
        for (int i = 0; i < spec->n_vocab; i++) free(spec->tokens[i]);
        free(spec->tokens);
    }
    if (spec->merges) {
        for (int i = 0; i < spec->n_merges; i++) free(spec->merges[i]);
        free(spec->merges);
    }
    free(spec->scores);
    free(spec->types);
    free(spec->pre);
    memset(spec, 0, sizeof *spec);
}

/* Deep copy, so the tokenizer owns everything and the caller may free its spec at once. */
static int spec_copy(SaTokSpec *dst, const SaTokSpec *src) {
    memset(dst, 0, sizeof *dst);
    dst->model = src->model;
    dst->bos_id = src->bos_id;
    dst->eos_id = src->eos_id;
    dst->unk_id = src->unk_id;
    dst->pad_id = src->pad_id;
    dst->eot_id = src->eot_id;
    dst->add_bos = src->add_bos;
    dst->add_eos = src->add_eos;
    dst->add_space_prefix = src->add_space_prefix;
    dst->split_user_defined = src->split_user_defined;
    int n = src->n_vocab;
    if (!(dst->tokens = sa_calloc((size_t)n, sizeof(char *)))) goto fail;
    dst->n_vocab = n; /* from here on sa_tok_spec_free() can clean up a partial copy */
    for (int i = 0; i < n; i++)
        if (!(dst->tokens[i] = sa_strdup(src->tokens[i]))) goto fail;
    if (src->scores) {
        if (!(dst->scores = sa_malloc((size_t)n * sizeof(float)))) goto fail;
        memcpy(dst->scores, src->scores, (size_t)n * sizeof(float));
    }
    if (src->types) {
        if (!(dst->types = sa_malloc((size_t)n * sizeof(int32_t)))) goto fail;
        memcpy(dst->types, src->types, (size_t)n * sizeof(int32_t));
    }
    if (src->merges && src->n_merges > 0) {
        if (!(dst->merges = sa_calloc((size_t)src->n_merges, sizeof(char *)))) goto fail;
        dst->n_merges = src->n_merges;
        for (int i = 0; i < src->n_merges; i++)
            if (!(dst->merges[i] = sa_strdup(src->merges[i]))) goto fail;
    }
    if (src->pre && !(dst->pre = sa_strdup(src->pre))) goto fail;
    return 0;
fail:
    sa_tok_spec_free(dst);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* 2. the tokenizer object                                                                      */

struct SaTokenizer {
    SaTokSpec spec;        /* deep copy of what we were built from */
    uint32_t *len;         /* byte length of each token string */
    uint8_t *type;         /* effective SA_TT_* per token (missing/undefined -> NORMAL) */
    int16_t *byte_val;     /* the byte a BYTE token stands for, -1 for other tokens */
    int32_t *ht;           /* open addressing, linear probing: token ids, -1 = empty slot */
    uint32_t ht_mask;
    int32_t byte_tok[256]; /* byte-fallback token of each byte value, -1 if the vocab lacks it */
    int n_byte_tok;        /* how many of byte_tok are present */
    /* parse_special index */
    int32_t *special_rank;   /* per token: position in llama.cpp's match order, -1 = not special */
    uint32_t *special_lens;  /* distinct lengths of special strings, longest first */
    int n_special_lens;
    int n_specials;
    uint8_t special_first[256]; /* 1 if some special string starts with this byte */
    /* SPM: 1 for a byte that ends a character some mergeable piece has right before a U+2581
     * (other than in its leading run of U+2581); see spm_cut_before() */
    uint8_t spm_nocut[256];
    /* Merge table (SA_TOK_BPE always; SA_TOK_SPM when the spec has merges, i.e. came from an HF
     * tokenizer.json): (left id, right id) -> (rank, merged id). HF merges by the rank of the pair,
     * not by a score of the merged piece; the two differ when a piece is reachable by several
     * pairs, or when a pair is absent from the merges although its concatenation is a token. */
    struct MergeSlot *mg;
    uint32_t mg_mask;
    int use_ranks; /* SPM merge loop ranks pairs by mg instead of by scores */
    /* byte-level BPE */
    int max_digits;       /* the split pattern's \p{N}{1,max_digits} (Llama 3: 3, Qwen2: 1) */
    int nfc;              /* NFC-normalize text first (Qwen2's normalizer) */
    int ignore_merges;    /* a pre-token that is itself a token is emitted whole (Llama 3) */
    int32_t bl_tok[256];  /* token of each byte's GPT-2 stand-in character, -1 if absent */
    char bl_utf8[256][2]; /* UTF-8 of each byte's stand-in (1 or 2 bytes: code points < 0x144) */
    uint8_t bl_ulen[256];
    int16_t bl_byte[0x144]; /* stand-in code point -> byte, -1 for other code points */
};

static uint32_t hash_bytes(const char *s, size_t n) {
    /* FNV-1a, folded to 32 bits: cheap and good enough for short strings. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ULL;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static int lookup(const SaTokenizer *t, const char *s, size_t n) {
    uint32_t i = hash_bytes(s, n) & t->ht_mask;
    for (;;) {
        int32_t id = t->ht[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->spec.tokens[id], s, n) == 0) return id;
        i = (i + 1) & t->ht_mask;
    }
}

/* Insert id; when a string occurs twice the later id wins, as in llama.cpp's token_to_id map. */
static void ht_insert(SaTokenizer *t, int id) {
    const char *s = t->spec.tokens[id];
    uint32_t n = t->len[id];
    uint32_t i = hash_bytes(s, n) & t->ht_mask;
    for (;;) {
        int32_t cur = t->ht[i];
        if (cur < 0 || (t->len[cur] == n && memcmp(t->spec.tokens[cur], s, n) == 0)) {
            t->ht[i] = id;
            return;
        }
        i = (i + 1) & t->ht_mask;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xXX>" -> XX, else -1. */
static int parse_byte_piece(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Tokens the merge loop may produce. SentencePiece only merges into NORMAL, USER_DEFINED and
 * UNUSED pieces (its pieces_ map); CONTROL, UNKNOWN and BYTE pieces live in a separate map.
 * llama.cpp looks every piece up, but following SentencePiece here is what guarantees that
 * ordinary text can never turn into a control token such as "<s>" through merges. */
static int mergeable(int type) {
    return type == SA_TT_NORMAL || type == SA_TT_USER_DEFINED || type == SA_TT_UNUSED;
}

/* Tokens that parse_special can cut out of template text (llama.cpp's special-token cache).
 * Difference from llama.cpp: it cuts USER_DEFINED tokens out of every text, parse_special or not
 * (as HF "added tokens"); we do so only with parse_special, because some vocabularies type turn
 * markers (Gemma's <start_of_turn>) as USER_DEFINED and user content must never produce those.
 * Such pieces can still come out of the merge loop like any normal piece. */
static int is_special_type(int type) {
    return type == SA_TT_CONTROL || type == SA_TT_USER_DEFINED || type == SA_TT_UNKNOWN;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int build_specials(SaTokenizer *t) {
    int n = t->spec.n_vocab, ns = 0;
    for (int i = 0; i < n; i++)
        if (is_special_type(t->type[i]) && t->len[i] > 0) ns++;
    t->n_specials = ns;
    if (!(t->special_rank = sa_malloc((size_t)n * sizeof(int32_t)))) return -1;
    for (int i = 0; i < n; i++) t->special_rank[i] = -1;
    if (ns == 0) return 0;
    /* llama.cpp's order for special matching: longest string first; ties by id, to be
     * deterministic where llama.cpp's std::sort leaves the order unspecified. Sort keys
     * (~len, id) as one integer so no comparator needs the tokenizer. */
    uint64_t *key = sa_malloc((size_t)ns * sizeof(uint64_t));
    int32_t *order = sa_malloc((size_t)ns * sizeof(int32_t));
    if (!key || !order) {
        free(key);
        free(order);
        return -1;
    }
    ns = 0;
    for (int i = 0; i < n; i++)
        if (is_special_type(t->type[i]) && t->len[i] > 0)
            key[ns++] = (uint64_t)(UINT32_MAX - t->len[i]) << 32 | (uint32_t)i;
    qsort(key, (size_t)ns, sizeof *key, cmp_u64);
    for (int k = 0; k < ns; k++) order[k] = (int32_t)(key[k] & 0xFFFFFFFFu);
    free(key);
    int nl = 0;
    for (int k = 0; k < ns; k++) {
        int id = order[k];
        t->special_rank[id] = k;
        t->special_first[(uint8_t)t->spec.tokens[id][0]] = 1;
        if (k == 0 || t->len[order[k - 1]] != t->len[id]) nl++;
    }
    t->special_lens = sa_malloc((size_t)nl * sizeof(uint32_t));
    if (!t->special_lens) {
        free(order);
        return -1;
    }
    nl = 0;
    for (int k = 0; k < ns; k++)
        if (k == 0 || t->len[order[k - 1]] != t->len[order[k]]) t->special_lens[nl++] = t->len[order[k]];
    t->n_special_lens = nl;
    free(order);
    return 0;
}

void sa_tok_free(SaTokenizer *t) {
    if (!t) return;
    sa_tok_spec_free(&t->spec);
    free(t->len);
    free(t->type);
    free(t->byte_val);
    free(t->ht);
    free(t->special_rank);
    free(t->special_lens);
    free(t->mg);
    free(t);
}

static int check_id(int id, int n, const char *what) {
    if (id < -1 || id >= n) return sa_err("tokenizer: %s id %d is outside the vocabulary (0..%d)", what, id, n - 1);
    return 0;
}

/* ---- merge table ---- */

typedef struct MergeSlot {
    int32_t left, right; /* token ids of the pair */
    int32_t rank;        /* index in spec.merges (lower merges first); -1 = empty slot */
    int32_t res;         /* token id of left+right */
} MergeSlot;

static uint32_t pair_hash(int32_t l, int32_t r) {
    uint64_t k = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) * 0x9E3779B97F4A7C15ULL;
    return (uint32_t)(k >> 32);
}

static const MergeSlot *merge_find(const SaTokenizer *t, int32_t l, int32_t r) {
    uint32_t i = pair_hash(l, r) & t->mg_mask;
    for (;;) {
        const MergeSlot *m = &t->mg[i];
        if (m->rank < 0) return NULL;
        if (m->left == l && m->right == r) return m;
        i = (i + 1) & t->mg_mask;
    }
}

/* Parse "left right" merges into the pair table. A merge naming a piece the vocabulary lacks (or
 * whose concatenation it lacks) can never apply and is skipped (HF refuses such a file; llama.cpp
 * ignores the merge). When a pair is listed twice, the first (lowest) rank counts, as in
 * llama.cpp; real files have no duplicates. */
static int build_merges(SaTokenizer *t) {
    int nm = t->spec.n_merges;
    /* The SPM loop keeps -rank in a float, exact only below 2^24; real files have < 1M merges. */
    if (nm > (1 << 24)) return sa_err("tokenizer: %d merges (limit %d)", nm, 1 << 24);
    uint32_t cap = 1;
    while (cap < (uint32_t)nm * 2u) cap <<= 1;
    if (!(t->mg = sa_malloc((size_t)cap * sizeof(MergeSlot)))) return -1;
    for (uint32_t i = 0; i < cap; i++) t->mg[i].rank = -1;
    t->mg_mask = cap - 1;
    char *cat = NULL; /* left+right, to look the result up */
    size_t cat_cap = 0;
    for (int i = 0; i < nm; i++) {
        const char *m = t->spec.merges[i];
        const char *sp = strchr(m, ' ');
        /* Tokens never contain ' ' in either family (byte-level spells it "Ġ", SPM "▁"), so one
         * space is an unambiguous separator. */
        if (!sp || sp == m || !sp[1] || strchr(sp + 1, ' ')) {
            free(cat);
            return sa_err("tokenizer: merge %d (\"%.40s\") is not two pieces separated by one space", i, m);
        }
        size_t ll = (size_t)(sp - m), rl = strlen(sp + 1);
        if (ll + rl > cat_cap) {
            size_t nc = SA_MAX(ll + rl, cat_cap * 2);
            char *p = sa_realloc(cat, nc);
            if (!p) {
                free(cat);
                return -1;
            }
            cat = p;
            cat_cap = nc;
        }
        memcpy(cat, m, ll);
        memcpy(cat + ll, sp + 1, rl);
        int l = lookup(t, m, ll), r = lookup(t, sp + 1, rl), res = lookup(t, cat, ll + rl);
        if (l < 0 || r < 0 || res < 0) continue;
        uint32_t k = pair_hash(l, r) & t->mg_mask;
        while (t->mg[k].rank >= 0 && !(t->mg[k].left == l && t->mg[k].right == r)) k = (k + 1) & t->mg_mask;
        if (t->mg[k].rank < 0) t->mg[k] = (MergeSlot){l, r, i, res};
    }
    free(cat);
    return 0;
}

/* ---- byte-level BPE set-up ---- */

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
 * themselves; the other 68 bytes, in increasing order, get U+0100, U+0101, ... (so ' ' is "Ġ",
 * U+0120, and '\n' is "Ċ", U+010A). Every token string is spelled in these stand-ins. */
static void gpt2_byte_map(uint32_t map[256]) {
    uint32_t n = 0;
    for (int c = 0; c < 256; c++) {
        int self = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
        map[c] = self ? (uint32_t)c : 256 + n++;
    }
}

/* The split patterns we implement, by the names llama.cpp gives them (tokenizer.ggml.pre). */
static int bpe_setup_pre(SaTokenizer *t) {
    const char *pre = t->spec.pre;
    if (!pre) return sa_err("tokenizer: byte-level BPE needs a pre-tokenizer name (supported: llama-bpe, qwen2)");
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3")) {
        /* Llama 3: \p{N}{1,3}; its tokenizer.json has "ignore_merges": true (llama.cpp sets the
         * same for this pre-tokenizer); no normalizer. */
        t->max_digits = 3;
        t->ignore_merges = 1;
    } else if (!strcmp(pre, "qwen2")) {
        /* Qwen2/Qwen3: single digits; tokenizer.json normalizer NFC (llama.cpp skips NFC; the
         * goldens it tests against come from HF, which applies it). */
        t->max_digits = 1;
        t->nfc = 1;
    } else {
        return sa_err("tokenizer: byte-level BPE pre-tokenizer \"%.40s\" is not supported (llama-bpe, qwen2 are)", pre);
    }
    uint32_t map[256];
    gpt2_byte_map(map);
    for (int b = 0; b < 0x144; b++) t->bl_byte[b] = -1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = map[b];
        char *u = t->bl_utf8[b];
        if (cp < 0x80) {
            u[0] = (char)cp;
            t->bl_ulen[b] = 1;
        } else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            t->bl_ulen[b] = 2;
        }
        t->bl_byte[cp] = (int16_t)b;
        int id = lookup(t, u, t->bl_ulen[b]);
        t->bl_tok[b] = id >= 0 && mergeable(t->type[id]) ? id : -1;
    }
    return 0;
}

SaTokenizer *sa_tok_new(const SaTokSpec *spec) {
    if (!spec) {
        sa_err("tokenizer: no spec");
        return NULL;
    }
    if (spec->model == SA_TOK_BPE && (!spec->merges || spec->n_merges <= 0)) {
        sa_err("tokenizer: byte-level BPE needs merges (the vocabulary has none)");
        return NULL;
    }
    if (spec->n_merges < 0 || (spec->n_merges > 0 && !spec->merges)) {
        sa_err("tokenizer: invalid merge count %d", spec->n_merges);
        return NULL;
    }
    for (int i = 0; i < spec->n_merges; i++)
        if (!spec->merges[i]) {
            sa_err("tokenizer: merge %d has no string", i);
            return NULL;
        }
    if (spec->model != SA_TOK_SPM && spec->model != SA_TOK_BPE) {
        sa_err("tokenizer: unknown model type %d", spec->model);
        return NULL;
    }
    int n = spec->n_vocab;
    if (n <= 0 || n > MAX_VOCAB || !spec->tokens) {
        sa_err("tokenizer: invalid vocabulary size %d", n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!spec->tokens[i]) {
            sa_err("tokenizer: token %d has no string", i);
            return NULL;
        }
        /* Every vocabulary family we read spells its tokens in UTF-8 (SentencePiece pieces, GPT-2
         * byte stand-ins, "<0xXX>" byte tokens): anything else is a corrupt or crafted file, and its
         * bytes would reach the output unchecked. */
        size_t tl = strlen(spec->tokens[i]);
        if (sa_utf8_valid_prefix(spec->tokens[i], tl) != tl) {
            sa_err("tokenizer: token %d is not valid UTF-8 (at byte %zu)", i, sa_utf8_valid_prefix(spec->tokens[i], tl));
            return NULL;
        }
        if (spec->types && (spec->types[i] < 0 || spec->types[i] > SA_TT_BYTE)) {
            sa_err("tokenizer: token %d has invalid type %d", i, (int)spec->types[i]);
            return NULL;
        }
        /* A NaN score would make the merge order undefined (every comparison false). */
        if (spec->scores && isnan(spec->scores[i])) {
            sa_err("tokenizer: token %d has a NaN score", i);
            return NULL;
        }
    }
    if (check_id(spec->bos_id, n, "BOS") || check_id(spec->eos_id, n, "EOS") || check_id(spec->unk_id, n, "UNK") ||
        check_id(spec->pad_id, n, "PAD") || check_id(spec->eot_id, n, "EOT"))
        return NULL;

    SaTokenizer *t = sa_calloc(1, sizeof *t);
    if (!t) return NULL;
    if (spec_copy(&t->spec, spec) != 0) goto fail;
    uint32_t cap = 1;
    while (cap < (uint32_t)n * 2u) cap <<= 1; /* load factor <= 1/2 keeps probes short */
    t->ht_mask = cap - 1;
    t->len = sa_malloc((size_t)n * sizeof(uint32_t));
    t->type = sa_malloc((size_t)n);
    t->byte_val = sa_malloc((size_t)n * sizeof(int16_t));
    t->ht = sa_malloc((size_t)cap * sizeof(int32_t));
    if (!t->len || !t->type || !t->byte_val || !t->ht) goto fail;
    for (uint32_t i = 0; i < cap; i++) t->ht[i] = -1;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(t->spec.tokens[i]);
        if (l > UINT32_MAX / 2) {
            sa_err("tokenizer: token %d is too long (%zu bytes)", i, l);
            goto fail;
        }
        t->len[i] = (uint32_t)l;
        int ty = t->spec.types ? t->spec.types[i] : SA_TT_NORMAL;
        t->type[i] = (uint8_t)(ty == 0 ? SA_TT_NORMAL : ty); /* GGUF "undefined" -> normal */
        /* A BYTE token that is not spelled "<0xXX>" is treated as an ordinary piece rather
         * than refusing the whole vocabulary. */
        int bv = t->type[i] == SA_TT_BYTE ? parse_byte_piece(t->spec.tokens[i], l) : -1;
        if (t->type[i] == SA_TT_BYTE && bv < 0) t->type[i] = SA_TT_NORMAL;
        t->byte_val[i] = (int16_t)bv;
        ht_insert(t, i);
    }
    /* Byte fallback uses SentencePiece's spelling "<0xXX>" (upper-case hex), like llama.cpp's
     * byte_to_token(); only tokens typed BYTE count, so a normal piece that happens to read
     * "<0x41>" is never used for fallback. */
    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        char piece[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        int id = lookup(t, piece, 6);
        if (id < 0 || t->type[id] != SA_TT_BYTE) {
            /* some converters spell byte tokens in lower-case hex */
            static const char lhex[] = "0123456789abcdef";
            char lower[7] = {'<', '0', 'x', lhex[b >> 4], lhex[b & 15], '>', 0};
            id = lookup(t, lower, 6);
            if (id >= 0 && t->type[id] != SA_TT_BYTE) id = -1;
        }
        t->byte_tok[b] = id;
        if (id >= 0) t->n_byte_tok++;
    }
    /* Where the SPM merge loop may split long text: see spm_cut_before(). */
    for (int i = 0; i < n; i++) {
        if (!mergeable(t->type[i])) continue;
        const char *s = t->spec.tokens[i];
        uint32_t l = t->len[i], p = 0;
        while (p + SPM_SPACE_LEN <= l && memcmp(s + p, SPM_SPACE, SPM_SPACE_LEN) == 0) p += SPM_SPACE_LEN;
        for (; p + SPM_SPACE_LEN <= l; p++)
            if (p > 0 && memcmp(s + p, SPM_SPACE, SPM_SPACE_LEN) == 0 &&
                (p < SPM_SPACE_LEN || memcmp(s + p - SPM_SPACE_LEN, SPM_SPACE, SPM_SPACE_LEN) != 0))
                t->spm_nocut[(uint8_t)s[p - 1]] = 1;
    }
    if (build_specials(t) != 0) goto fail;
    if (t->spec.n_merges > 0 && build_merges(t) != 0) goto fail;
    t->use_ranks = t->spec.model == SA_TOK_SPM && t->spec.n_merges > 0;
    if (t->spec.model == SA_TOK_BPE && bpe_setup_pre(t) != 0) goto fail;
    return t;
fail:
    sa_tok_free(t);
    return NULL;
}

const SaTokSpec *sa_tok_spec(const SaTokenizer *t) { return t ? &t->spec : NULL; }

const char *sa_tok_token(const SaTokenizer *t, int id) {
    if (!t || id < 0 || id >= t->spec.n_vocab) return NULL;
    return t->spec.tokens[id];
}

int sa_tok_n_vocab(const SaTokenizer *t) { return t ? t->spec.n_vocab : 0; }

int sa_tok_find(const SaTokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    return lookup(t, piece, strlen(piece));
}

int sa_tok_is_eog(const SaTokenizer *t, int id) {
    if (!t || id < 0) return 0;
    return id == t->spec.eos_id || id == t->spec.eot_id;
}

/* ------------------------------------------------------------------------------------------ */
/* Output vector: the caller's (ids, n, cap), grown with realloc.                               */

typedef struct {
    int32_t **ids;
    int *n, *cap;
} IdOut;

static int out_push(IdOut *o, int32_t id) {
    if (*o->n >= *o->cap) {
        if (*o->cap > (1 << 29)) return sa_err("tokenizer: too many tokens");
        int nc = *o->cap > 0 ? *o->cap * 2 : 64;
        int32_t *p = sa_realloc(*o->ids, (size_t)nc * sizeof(int32_t));
        if (!p) return -1;
        *o->ids = p;
        *o->cap = nc;
    }
    (*o->ids)[(*o->n)++] = id;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* 3. parse_special: cut template text at control / user-defined / unknown token strings.      */

typedef struct {
    uint32_t off, len;
    int32_t id; /* the special token, or -1 for a run of ordinary text */
} Frag;

typedef struct {
    uint32_t pos;
    int32_t id;
    int32_t rank;
} Match;

static int cmp_match_rank(const void *a, const void *b) {
    const Match *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int cmp_match_pos(const void *a, const void *b) {
    const Match *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* llama.cpp (tokenizer_st_partition) takes the special tokens longest first; for each one it
 * cuts every leftmost, non-overlapping occurrence that lies wholly inside a still-unclaimed run
 * of text. Doing that literally costs (#specials x text length), which hurts with Gemma's
 * thousands of user-defined tokens, so we compute the same result differently: collect every
 * occurrence of every special string once (hash lookups at each position for each distinct
 * special length), then accept occurrences in (token order, position) order whenever none of
 * their bytes is claimed yet. A match rejected by llama.cpp's scan (it overlaps an earlier cut
 * or an earlier occurrence of the same token) is exactly one that overlaps a claimed byte, so
 * the two agree. */
/* allow (may be NULL): per byte, nonzero where a special token may be matched (template text). */
static int split_specials(const SaTokenizer *t, const char *text, uint32_t len, const uint8_t *allow, Frag **frags_out,
                          int *nfrag_out) {
    Match *m = NULL;
    uint8_t *claimed = NULL;
    Frag *f = NULL;
    size_t nm = 0, capm = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (!t->special_first[(uint8_t)text[i]]) continue;
        for (int k = 0; k < t->n_special_lens; k++) {
            uint32_t l = t->special_lens[k];
            if (l > len - i) continue;
            int id = lookup(t, text + i, l);
            if (id < 0 || t->special_rank[id] < 0) continue;
            if (allow && !(allow[i] && memchr(allow + i, 0, l) == NULL)) continue; /* touches user text */
            if (nm == capm) {
                size_t nc = capm ? capm * 2 : 16;
                Match *p = sa_realloc(m, nc * sizeof *m);
                if (!p) goto fail;
                m = p;
                capm = nc;
            }
            m[nm++] = (Match){i, id, t->special_rank[id]};
        }
    }
    size_t nacc = 0;
    if (nm > 0) {
        if (!(claimed = sa_calloc(len, 1))) goto fail;
        qsort(m, nm, sizeof *m, cmp_match_rank);
        for (size_t k = 0; k < nm; k++) {
            uint32_t p = m[k].pos, l = t->len[m[k].id];
            int free_run = 1;
            for (uint32_t j = 0; j < l && free_run; j++) free_run = !claimed[p + j];
            if (!free_run) continue;
            memset(claimed + p, 1, l);
            m[nacc++] = m[k];
        }
        qsort(m, nacc, sizeof *m, cmp_match_pos);
    }
    /* at most one text run before each special token, plus one at the end */
    if (!(f = sa_malloc((2 * nacc + 1) * sizeof *f))) goto fail;
    int nf = 0;
    uint32_t at = 0;
    for (size_t k = 0; k < nacc; k++) {
        if (m[k].pos > at) f[nf++] = (Frag){at, m[k].pos - at, -1};
        f[nf++] = (Frag){m[k].pos, t->len[m[k].id], m[k].id};
        at = m[k].pos + t->len[m[k].id];
    }
    if (at < len) f[nf++] = (Frag){at, len - at, -1};
    free(m);
    free(claimed);
    *frags_out = f;
    *nfrag_out = nf;
    return 0;
fail:
    free(m);
    free(claimed);
    free(f);
    return -1;
}

/* HF tokenizer.json rules (spec.split_user_defined): HF cuts every added token out of the text
 * before normalization, scanning left to right and taking the longest added token that starts at
 * each position (Rust: aho-corasick LeftmostLongest; tokenizers.js: a trie walk). We do the same,
 * but only with the tokens the caller may produce here: USER_DEFINED ones (HF "special": false,
 * harmless text such as "<b>" or "<think>") always, CONTROL/UNKNOWN ones only with parse_special
 * (and, with a mask, only inside template bytes). So user content holding "<|eot_id|>" stays text. */
static int split_added_hf(const SaTokenizer *t, const char *text, uint32_t len, int parse_special,
                          const uint8_t *allow, Frag **frags_out, int *nfrag_out) {
    Frag *f = NULL;
    int nf = 0, capf = 0;
    uint32_t at = 0; /* start of the pending text run */
    for (uint32_t i = 0; i < len;) {
        int hit = -1;
        if (t->special_first[(uint8_t)text[i]]) {
            for (int k = 0; k < t->n_special_lens && hit < 0; k++) { /* longest first */
                uint32_t l = t->special_lens[k];
                if (l > len - i) continue;
                int id = lookup(t, text + i, l);
                if (id < 0 || t->special_rank[id] < 0) continue;
                int ok = t->type[id] == SA_TT_USER_DEFINED ||
                         (parse_special && (!allow || memchr(allow + i, 0, l) == NULL));
                if (ok) hit = id;
            }
        }
        if (hit < 0) {
            i++;
            continue;
        }
        if (nf + 2 > capf) {
            int nc = capf ? capf * 2 : 16;
            Frag *p = sa_realloc(f, (size_t)nc * sizeof *f);
            if (!p) {
                free(f);
                return -1;
            }
            f = p;
            capf = nc;
        }
        if (i > at) f[nf++] = (Frag){at, i - at, -1};
        f[nf++] = (Frag){i, t->len[hit], hit};
        i += t->len[hit];
        at = i;
    }
    if (nf == 0) { /* nothing cut: the caller's single fragment stands */
        *nfrag_out = len > 0 ? 1 : 0;
        return 0;
    }
    if (at < len) {
        Frag *p = sa_realloc(f, (size_t)(nf + 1) * sizeof *f);
        if (!p) {
            free(f);
            return -1;
        }
        f = p;
        f[nf++] = (Frag){at, len - at, -1};
    }
    *frags_out = f;
    *nfrag_out = nf;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* 4. SentencePiece BPE                                                                         */

/* Length of the well-formed UTF-8 character at s (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF), or 0 if the bytes there are not one.
 *
 * Invalid UTF-8: each byte that does not start a well-formed character becomes a symbol of its
 * own. No vocabulary piece contains such a byte, so it never merges and comes out as its byte
 * token <0xXX>; decoding gives the original byte back. (llama.cpp instead takes the length from
 * the lead byte alone and may swallow following valid characters into the same unmergeable
 * symbol; SentencePiece replaces the byte with U+FFFD. Ours is the only one of the three that
 * round-trips.) */
static uint32_t utf8_char_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    uint32_t l;
    if (c >= 0xC2 && c <= 0xDF) l = 2;
    else if (c >= 0xE0 && c <= 0xEF) l = 3;
    else if (c >= 0xF0 && c <= 0xF4) l = 4;
    else return 0;
    if (l > n) return 0;
    for (uint32_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong 3-byte */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* UTF-16 surrogate */
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong 4-byte */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
    return l;
}

typedef struct {
    int prev, next; /* neighbours in the live symbol chain, -1 at the ends */
    int node;       /* merge-tree node this symbol currently is */
    uint32_t off, n; /* bytes of the escaped text; n == 0 once merged into its left neighbour */
} Sym;

/* Merge tree: leaves are the initial characters, inner nodes remember which two pieces made
 * them, so a merge into an UNUSED piece can be undone (SentencePiece "resegment"). */
typedef struct {
    int left, right; /* children, -1 for a leaf */
    uint32_t off, n;
} Node;

/* ---- the merge queue both BPE loops use -------------------------------------------------------
 * A queued merge: a key (higher first) and the position of its left symbol (leftmost first on equal
 * keys: SentencePiece, llama.cpp and HF all break ties this way), plus two ints the merge loop uses
 * to recognise stale entries. SentencePiece loop: key = the merged piece's score (or -rank), a = the
 * right symbol, b = the merged byte length. Byte-level loop: key = -rank, a and b = the pair's ids
 * when it was queued. -rank is exact in a float: ranks are below 2^24 (see build_merges). */
typedef struct {
    float key;
    int32_t pos, a, b;
} MergeCand;

typedef struct {
    MergeCand *v;
    int n, cap;
} MergeHeap;

static int cand_before(const MergeCand *x, const MergeCand *y) {
    return x->key != y->key ? x->key > y->key : x->pos < y->pos;
}

static int mheap_push(MergeHeap *h, MergeCand c) {
    if (h->n == h->cap) {
        int nc = h->cap ? h->cap * 2 : 64;
        MergeCand *p = sa_realloc(h->v, (size_t)nc * sizeof *p);
        if (!p) return -1;
        h->v = p;
        h->cap = nc;
    }
    int i = h->n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!cand_before(&c, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = c;
    return 0;
}

static MergeCand mheap_pop(MergeHeap *h) {
    MergeCand top = h->v[0], last = h->v[--h->n];
    int n = h->n, i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_before(&h->v[c + 1], &h->v[c])) c++;
        if (!cand_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n > 0) h->v[i] = last;
    return top;
}

typedef struct {
    const SaTokenizer *t;
    const char *text; /* escaped text */
    Sym *sym;
    Node *node;
    int n_node;
    MergeHeap heap;
} SpmState;

/* Queue the pair (left, right) if their concatenation is a piece the merge loop may produce. */
static int try_add_bigram(SpmState *st, int left, int right) {
    if (left < 0 || right < 0) return 0;
    const Sym *l = &st->sym[left], *r = &st->sym[right];
    uint32_t size = l->n + r->n;
    const SaTokenizer *t = st->t;
    int id;
    float score;
    if (t->use_ranks) {
        /* HF BPE: only listed pairs merge, lowest rank first (-rank is exact in a float: ranks
         * are below 2^24, see build_merges). A character that is not itself a token has no id and never merges:
         * it ends up as byte-fallback tokens, as in HF. */
        int a = lookup(t, st->text + l->off, l->n), b = a < 0 ? -1 : lookup(t, st->text + r->off, r->n);
        const MergeSlot *m = b < 0 ? NULL : merge_find(t, a, b);
        if (!m) return 0;
        id = m->res;
        score = -(float)m->rank;
    } else {
        id = lookup(t, st->text + l->off, size);
        if (id < 0) return 0;
        score = t->spec.scores ? t->spec.scores[id] : 0.0f;
    }
    if (!mergeable(t->type[id])) return 0;
    return mheap_push(&st->heap, (MergeCand){score, left, right, (int32_t)size});
}

/* Bytes that formed no token: byte tokens, or UNK. */
static int emit_bytes(const SaTokenizer *t, const char *s, uint32_t n, IdOut *out) {
    if (t->n_byte_tok == 0) {
        /* a vocabulary without byte fallback: one UNK per unknown character, as SentencePiece */
        if (t->spec.unk_id < 0)
            return sa_err("tokenizer: text has a character outside the vocabulary, and there is no UNK token");
        return out_push(out, t->spec.unk_id);
    }
    for (uint32_t i = 0; i < n; i++) {
        int id = t->byte_tok[(uint8_t)s[i]];
        if (id < 0) id = t->spec.unk_id;
        if (id < 0) return sa_err("tokenizer: no byte token <0x%02X> and no UNK token", (uint8_t)s[i]);
        if (out_push(out, id) != 0) return -1;
    }
    return 0;
}

static int emit_node(const SpmState *st, int k, IdOut *out) {
    const Node *nd = &st->node[k];
    const SaTokenizer *t = st->t;
    int id = lookup(t, st->text + nd->off, nd->n);
    if (id >= 0 && t->type[id] == SA_TT_UNUSED && nd->left >= 0) {
        /* SentencePiece never emits a merged UNUSED piece: it splits it back into the two
         * pieces it was made from. Depth is bounded by the token length. */
        if (emit_node(st, nd->left, out) != 0) return -1;
        return emit_node(st, nd->right, out);
    }
    if (id >= 0 && mergeable(t->type[id])) return out_push(out, id);
    return emit_bytes(t, st->text + nd->off, nd->n, out);
}

/* The BPE merge loop over buf[off, off+len): one segment of escaped text. */
static int spm_merge_segment(SpmState *st, uint32_t off0, uint32_t len, IdOut *out) {
    const char *buf = st->text;
    /* One symbol per UTF-8 character (or per invalid byte). */
    int nsym = 0;
    for (uint32_t off = off0, end = off0 + len; off < end;) {
        uint32_t cl = utf8_char_len((const uint8_t *)buf + off, end - off);
        if (cl == 0) cl = 1;
        st->sym[nsym] = (Sym){nsym - 1, off + cl < end ? nsym + 1 : -1, nsym, off, cl};
        st->node[nsym] = (Node){-1, -1, off, cl};
        nsym++;
        off += cl;
    }
    st->n_node = nsym;
    st->heap.n = 0;
    for (int i = 1; i < nsym; i++)
        if (try_add_bigram(st, i - 1, i) != 0) return -1;

    /* Repeatedly merge the best pair. Entries whose symbols changed since they were queued are
     * stale: a symbol only ever grows, so a size mismatch (or a consumed symbol) reveals them. */
    while (st->heap.n > 0) {
        const MergeCand b = mheap_pop(&st->heap);
        const uint32_t size = (uint32_t)b.b;
        Sym *l = &st->sym[b.pos], *r = &st->sym[b.a];
        if (l->n == 0 || r->n == 0 || l->n + r->n != size) continue;
        st->node[st->n_node] = (Node){l->node, r->node, l->off, size};
        l->node = st->n_node++;
        l->n = size;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) st->sym[r->next].prev = b.pos;
        if (try_add_bigram(st, l->prev, b.pos) != 0) return -1;
        if (try_add_bigram(st, b.pos, l->next) != 0) return -1;
    }
    for (int i = 0; i != -1; i = st->sym[i].next)
        if (emit_node(st, st->sym[i].node, out) != 0) return -1;
    return 0;
}

/* Can the merge loop be run separately on the pieces of buf cut just before position p? Only if
 * p starts a U+2581 that follows some other character c, and no mergeable piece contains c
 * directly followed by U+2581 (t->spm_nocut, indexed by c's last byte, says which may): then no
 * pair spanning p can ever be queued, and merges on each side happen in the same order as they
 * would over the whole text. For Llama 2 this cuts before every space, so long texts cost
 * memory per word instead of per text and run several times faster. */
static int spm_cut_before(const SaTokenizer *t, const char *buf, uint32_t p, uint32_t blen) {
    if (p < SPM_SPACE_LEN || p + SPM_SPACE_LEN > blen) return 0;
    if (memcmp(buf + p, SPM_SPACE, SPM_SPACE_LEN) != 0) return 0;
    if (memcmp(buf + p - SPM_SPACE_LEN, SPM_SPACE, SPM_SPACE_LEN) == 0) return 0; /* inside a run of spaces */
    return !t->spm_nocut[(uint8_t)buf[p - 1]];
}

/* Encode one run of ordinary text (already known to hold no special token to cut out). */
static int spm_encode(const SaTokenizer *t, const char *s, uint32_t len, int space_prefix, IdOut *out) {
    /* Escape: optional leading space, then every ' ' becomes U+2581. */
    uint32_t n_sp = 0;
    for (uint32_t i = 0; i < len; i++) n_sp += s[i] == ' ';
    size_t blen = (size_t)len + (size_t)(n_sp + (space_prefix ? 1 : 0)) * (SPM_SPACE_LEN - 1);
    if (space_prefix) blen++;
    if (blen == 0) return 0;
    SpmState st = {.t = t};
    int rc = -1;
    size_t seg_cap = 0;
    char *buf = sa_malloc(blen);
    if (!buf) goto done;
    size_t k = 0;
    if (space_prefix) {
        memcpy(buf, SPM_SPACE, SPM_SPACE_LEN);
        k = SPM_SPACE_LEN;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(buf + k, SPM_SPACE, SPM_SPACE_LEN);
            k += SPM_SPACE_LEN;
        } else {
            buf[k++] = s[i];
        }
    }
    st.text = buf;
    for (uint32_t seg = 0; seg < blen;) {
        uint32_t end = seg + 1;
        while (end < blen && !spm_cut_before(t, buf, end, (uint32_t)blen)) end++;
        size_t n = end - seg; /* at most n symbols and 2n merge-tree nodes */
        if (n > seg_cap) {
            size_t nc = SA_MAX(n, seg_cap * 2);
            Sym *ns = sa_realloc(st.sym, nc * sizeof(Sym));
            if (!ns) goto done;
            st.sym = ns;
            Node *nn = sa_realloc(st.node, 2 * nc * sizeof(Node));
            if (!nn) goto done;
            st.node = nn;
            seg_cap = nc;
        }
        if (spm_merge_segment(&st, seg, (uint32_t)n, out) != 0) goto done;
        seg = end;
    }
    rc = 0;
done:
    free(buf);
    free(st.sym);
    free(st.node);
    free(st.heap.v);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* 4b. byte-level BPE (Llama 3, Qwen2/Qwen3)                                                   */

/* Character classes the split pattern asks about. */
enum { CL_L = 1, CL_N = 2, CL_WS = 4, CL_CRLF = 8 };

/* A byte that is not part of well-formed UTF-8 (see utf8_char_len): in no class, so the pattern
 * groups it like punctuation; it still becomes its own byte-level token and decodes back. */
#define CP_INVALID 0xFFFFFFFFu

/* \s as HF means it: Oniguruma's \s (and tokenizers.js, which rewrites \s to \p{White_Space}) is
 * the Unicode White_Space property, as is llama.cpp's table. (JavaScript's own \s would add U+FEFF
 * and miss U+0085.) The property has been stable since Unicode 6.3. */
static int is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* \p{L} = Lu Ll Lt Lm Lo, \p{N} = Nd Nl No, from utf8proc's tables (Unicode 15 in Debian 12). */
static uint8_t char_class(uint32_t c) {
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CL_L;
        if (c >= '0' && c <= '9') return CL_N;
        if (c == '\r' || c == '\n') return CL_WS | CL_CRLF;
        return is_white_space(c) ? CL_WS : 0;
    }
    if (c == CP_INVALID) return 0;
    if (is_white_space(c)) return CL_WS;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return CL_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return CL_N;
    default:
        return 0;
    }
}

/* Code point of a well-formed UTF-8 character of length l (from utf8_char_len). */
static uint32_t utf8_decode(const uint8_t *s, uint32_t l) {
    switch (l) {
    case 1:
        return s[0];
    case 2:
        return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    case 3:
        return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    default:
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
               (s[3] & 0x3F);
    }
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* One match of the split pattern at character i (of n), returning where it ends. The pattern is
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+
 * with D = 3 (Llama 3) or the single \p{N} (Qwen2, D = 1). A backtracking engine tries the
 * alternatives in order at each position and takes the first that matches (not the longest);
 * each branch below is that alternative worked out by hand, including its backtracking. Every
 * character is a letter, number, space or other, so some alternative always matches and the
 * pieces cover the text (HF "Isolated" splitting keeps them all). */
static uint32_t pre_match(const uint32_t *cp, const uint8_t *cl, uint32_t i, uint32_t n, int max_digits) {
    uint32_t c = cp[i], j;
    /* 1. contractions; (?i:) folds ASCII only, as tokenizers.js's rewrite and llama.cpp do (so
     *    U+017F LONG S does not count as 's') */
    if (c == '\'' && i + 1 < n) {
        uint32_t a = ascii_lower(cp[i + 1]);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (i + 2 < n) {
            uint32_t b = ascii_lower(cp[i + 2]);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        }
    }
    /* 2. [^\r\n\p{L}\p{N}]?\p{L}+ : the optional character is taken only if a letter follows it
     *    (otherwise the engine retries without it, and then c itself must be a letter) */
    j = i;
    if (!(cl[i] & (CL_L | CL_N | CL_CRLF)) && i + 1 < n && (cl[i + 1] & CL_L)) j = i + 1;
    if (cl[j] & CL_L) {
        while (j < n && (cl[j] & CL_L)) j++;
        return j;
    }
    /* 3. \p{N}{1,D} */
    if (cl[i] & CL_N) {
        for (j = i; j < n && j - i < (uint32_t)max_digits && (cl[j] & CL_N); j++) {
        }
        return j;
    }
    /* 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*` (without the space, c = ' ' could not start the run, so
     *    taking it is the only way) */
    j = c == ' ' ? i + 1 : i;
    if (j < n && !(cl[j] & (CL_WS | CL_L | CL_N))) {
        while (j < n && !(cl[j] & (CL_WS | CL_L | CL_N))) j++;
        while (j < n && (cl[j] & CL_CRLF)) j++;
        return j;
    }
    if (cl[i] & CL_WS) {
        uint32_t e = i; /* the whole run of spaces */
        while (e < n && (cl[e] & CL_WS)) e++;
        /* 5. \s*[\r\n]+ : \s* backs off until a CR/LF follows, so the match ends just after the
         *    run's last CR/LF */
        for (j = e; j > i; j--)
            if (cl[j - 1] & CL_CRLF) return j;
        /* 6. \s+(?!\S) : the whole run at the end of the text, else all but its last space (which
         *    then starts the next piece, e.g. " word"); needs two spaces */
        if (e == n) return e;
        if (e - i >= 2) return e - 1;
        /* 7. \s+ */
        return e;
    }
    return i + 1; /* not reached: see above */
}

/* NFC of the well-formed runs of s; invalid bytes pass through unchanged so they still round-trip.
 * *out = NULL when s is all ASCII (already NFC), else a malloc'd copy. */
static int nfc_text(const char *s, uint32_t len, char **out, size_t *out_len) {
    *out = NULL;
    uint32_t i = 0;
    while (i < len && !((uint8_t)s[i] & 0x80)) i++;
    if (i == len) return 0;
    /* Normalize from the start, not from the first non-ASCII byte: a combining mark composes
     * with the ASCII letter before it ("u" U+031B U+0309 -> U+1EED). */
    SaBuf b = {0};
    i = 0;
    while (i < len) {
        uint32_t j = i, l;
        while (j < len && (l = utf8_char_len((const uint8_t *)s + j, len - j)) > 0) j += l;
        if (j > i) {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(j - i), &dst,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (r < 0) {
                sa_buf_free(&b);
                return sa_err("tokenizer: NFC normalization failed: %s", utf8proc_errmsg(r));
            }
            int rc = sa_buf_append(&b, dst, (size_t)r);
            free(dst);
            if (rc != 0) {
                sa_buf_free(&b);
                return -1;
            }
        }
        if (j < len && sa_buf_append(&b, s + j++, 1) != 0) { /* one invalid byte */
            sa_buf_free(&b);
            return -1;
        }
        i = j;
    }
    *out = b.data;
    *out_len = b.len;
    return 0;
}

typedef struct {
    int32_t *id, *prev, *next; /* symbols of the current pre-token; id -1 once merged away */
    uint32_t cap;
    MergeHeap heap;
    char *word; /* the pre-token spelled in byte stand-ins (for ignore_merges) */
    size_t cap_word;
} BpeState;

static int bpe_try_pair(const SaTokenizer *t, BpeState *st, int p) {
    if (p < 0 || st->next[p] < 0) return 0;
    int q = st->next[p];
    const MergeSlot *m = merge_find(t, st->id[p], st->id[q]);
    if (!m || !mergeable(t->type[m->res])) return 0;
    return mheap_push(&st->heap, (MergeCand){-(float)m->rank, p, st->id[p], st->id[q]});
}

/* Encode one pre-token (bytes s[0..n)). */
static int bpe_piece(const SaTokenizer *t, BpeState *st, const char *s, uint32_t n, IdOut *out) {
    if (n == 0) return 0;
    if (t->ignore_merges && n > 1) {
        /* HF "ignore_merges": a pre-token that is a token is taken whole, even where the merges
         * would not reach it. */
        if ((size_t)n * 2 > st->cap_word) {
            size_t nc = SA_MAX((size_t)n * 2, st->cap_word * 2);
            char *p = sa_realloc(st->word, nc);
            if (!p) return -1;
            st->word = p;
            st->cap_word = nc;
        }
        size_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t b = (uint8_t)s[i];
            memcpy(st->word + k, t->bl_utf8[b], t->bl_ulen[b]);
            k += t->bl_ulen[b];
        }
        int id = lookup(t, st->word, k);
        if (id >= 0 && mergeable(t->type[id])) return out_push(out, id);
    }
    if (n > st->cap) {
        uint32_t nc = SA_MAX(n, st->cap * 2);
        int32_t *a = sa_realloc(st->id, (size_t)nc * sizeof(int32_t));
        if (!a) return -1;
        st->id = a;
        if (!(a = sa_realloc(st->prev, (size_t)nc * sizeof(int32_t)))) return -1;
        st->prev = a;
        if (!(a = sa_realloc(st->next, (size_t)nc * sizeof(int32_t)))) return -1;
        st->next = a;
        st->cap = nc;
    }
    for (uint32_t i = 0; i < n; i++) {
        int id = t->bl_tok[(uint8_t)s[i]];
        if (id < 0) {
            /* a vocabulary lacking some byte's stand-in: HF gives UNK (or drops the byte) */
            id = t->spec.unk_id;
            if (id < 0) return sa_err("tokenizer: byte 0x%02X has no token and there is no UNK token", (uint8_t)s[i]);
        }
        st->id[i] = id;
        st->prev[i] = (int32_t)i - 1;
        st->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    st->heap.n = 0;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (bpe_try_pair(t, st, (int)i) != 0) return -1;
    while (st->heap.n > 0) {
        const MergeCand c = mheap_pop(&st->heap);
        int p = c.pos, q = st->next[p];
        /* Stale if either symbol changed since: a symbol's id changes exactly when it merges
         * (a merged piece is longer, so never the same id), and a symbol merged away has id -1. */
        if (st->id[p] != c.a || q < 0 || st->id[q] != c.b) continue;
        st->id[p] = merge_find(t, c.a, c.b)->res;
        st->id[q] = -1;
        st->next[p] = st->next[q];
        if (st->next[q] >= 0) st->prev[st->next[q]] = p;
        if (bpe_try_pair(t, st, st->prev[p]) != 0 || bpe_try_pair(t, st, p) != 0) return -1;
    }
    for (int p = 0; p >= 0; p = st->next[p])
        if (out_push(out, st->id[p]) != 0) return -1;
    return 0;
}

/* Encode one run of ordinary text: [NFC,] split with the pattern, byte-level BPE per piece. */
static int bpe_encode(const SaTokenizer *t, const char *s, uint32_t len, IdOut *out) {
    char *norm = NULL;
    size_t nlen = 0;
    if (t->nfc && nfc_text(s, len, &norm, &nlen) != 0) return -1;
    if (norm) {
        if (nlen > UINT32_MAX - 1) {
            free(norm);
            return sa_err("tokenizer: text too long after NFC");
        }
        s = norm;
        len = (uint32_t)nlen;
    }
    int rc = -1;
    BpeState st = {0};
    uint32_t *cp = sa_malloc(((size_t)len + 1) * sizeof(uint32_t));
    uint32_t *off = sa_malloc(((size_t)len + 1) * sizeof(uint32_t));
    uint8_t *cl = sa_malloc((size_t)len + 1);
    if (!cp || !off || !cl) goto done;
    uint32_t n = 0;
    for (uint32_t i = 0; i < len; n++) {
        uint32_t l = utf8_char_len((const uint8_t *)s + i, len - i);
        cp[n] = l ? utf8_decode((const uint8_t *)s + i, l) : CP_INVALID;
        cl[n] = char_class(cp[n]);
        off[n] = i;
        i += l ? l : 1;
    }
    off[n] = len;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = pre_match(cp, cl, i, n, t->max_digits);
        if (bpe_piece(t, &st, s + off[i], off[j] - off[i], out) != 0) goto done;
        i = j;
    }
    rc = 0;
done:
    free(cp);
    free(off);
    free(cl);
    free(st.id);
    free(st.prev);
    free(st.next);
    free(st.heap.v);
    free(st.word);
    free(norm);
    return rc;
}

/* Bytes of a byte-level token: each stand-in character back to its byte. A token with a character
 * outside the map (an added token's text that is not spelled in stand-ins) is copied as it is, as
 * HF's ByteLevel decoder does. */
static int bpe_decode_piece(const SaTokenizer *t, const char *s, uint32_t n, SaBuf *out) {
    if (sa_buf_reserve(out, n) != 0) return -1;
    size_t start = out->len;
    for (uint32_t i = 0; i < n;) {
        uint32_t l = utf8_char_len((const uint8_t *)s + i, n - i);
        uint32_t c = l ? utf8_decode((const uint8_t *)s + i, l) : CP_INVALID;
        if (c >= 0x144 || t->bl_byte[c] < 0) {
            out->len = start;
            return sa_buf_append(out, s, n);
        }
        out->data[out->len++] = (char)t->bl_byte[c];
        i += l;
    }
    out->data[out->len] = 0;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* 5. encode / decode                                                                           */

/* Does this text run get the "▁" prefix? (first_after_special: it starts the text or follows a
 * token cut out of it; at_start: it starts the text.) */
static int spm_prefix(const SaTokenizer *t, const char *s, uint32_t len, int first_after_special, int at_start) {
    /* HF's Metaspace pre-tokenizer adds it only where the text does not already start with one
     * (a ' ' or a literal U+2581) */
    int starts_with_space = len > 0 && (s[0] == ' ' || (len >= SPM_SPACE_LEN && !memcmp(s, SPM_SPACE, SPM_SPACE_LEN)));
    switch (t->spec.add_space_prefix) {
    case SA_PREFIX_ALWAYS:
        return first_after_special;
    case SA_PREFIX_METASPACE_ALWAYS:
        return first_after_special && !starts_with_space;
    case SA_PREFIX_METASPACE_FIRST:
        return at_start && !starts_with_space;
    default:
        return 0;
    }
}

/* One run of ordinary text, by model. */
static int encode_fragment(const SaTokenizer *t, const char *s, uint32_t len, int first_after_special, int at_start,
                           IdOut *out) {
    switch (t->spec.model) {
    case SA_TOK_SPM:
        return spm_encode(t, s, len, spm_prefix(t, s, len, first_after_special, at_start), out);
    case SA_TOK_BPE:
        return bpe_encode(t, s, len, out);
    default:
        return sa_err("tokenizer: model %d cannot encode", t->spec.model);
    }
}

/* Shared by sa_tok_encode and sa_tok_encode_masked: special tokens are matched where allow is
 * nonzero (allow == NULL with parse_special: everywhere). */
static int encode_impl(const SaTokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                       const uint8_t *allow, int32_t **ids, int *n, int *cap);

int sa_tok_encode(const SaTokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                  int32_t **ids, int *n, int *cap) {
    return encode_impl(t, text, len, add_bos, parse_special, NULL, ids, n, cap);
}

int sa_tok_encode_masked(const SaTokenizer *t, const char *text, size_t len, int add_bos, const uint8_t *special_ok,
                         int32_t **ids, int *n, int *cap) {
    return encode_impl(t, text, len, add_bos, 1, special_ok, ids, n, cap);
}

static int encode_impl(const SaTokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                       const uint8_t *allow, int32_t **ids, int *n, int *cap) {
    if (!t || !ids || !n || !cap || (!text && len > 0)) return sa_err("tokenizer: encode: bad arguments");
    if (*n < 0 || *cap < *n || (*cap > 0 && !*ids)) return sa_err("tokenizer: encode: inconsistent output buffer");
    if (len > MAX_TEXT_BYTES) return sa_err("tokenizer: text too long (%zu bytes, limit %zu)", len, MAX_TEXT_BYTES);
    IdOut out = {ids, n, cap};
    int n0 = *n;
    Frag one = {0, (uint32_t)len, -1}, *frags = &one;
    int nfrag = len > 0 ? 1 : 0; /* empty text gives no fragment: no space prefix, no ids */
    if (add_bos) {
        if (t->spec.bos_id < 0) return sa_err("tokenizer: BOS requested but the vocabulary has none");
        if (out_push(&out, t->spec.bos_id) != 0) return -1;
    }
    if (t->spec.split_user_defined) {
        if (len > 0 && t->n_specials > 0 &&
            split_added_hf(t, text, (uint32_t)len, parse_special, allow, &frags, &nfrag) != 0)
            goto fail;
    } else if (parse_special && len > 0 && t->n_specials > 0 &&
               split_specials(t, text, (uint32_t)len, allow, &frags, &nfrag) != 0) {
        goto fail;
    }
    /* llama.cpp prefixes a space to every text run that starts the text or follows a special
     * token (is_prev_special), e.g. "<s>[INST]" -> <s> "▁[" ..., which is also what encoding
     * each piece of a Llama 2 chat prompt separately with SentencePiece gives. */
    int prev_special = 1;
    for (int i = 0; i < nfrag; i++) {
        if (frags[i].id >= 0) {
            if (out_push(&out, frags[i].id) != 0) goto fail;
            prev_special = 1;
        } else {
            if (encode_fragment(t, text + frags[i].off, frags[i].len, prev_special, frags[i].off == 0, &out) != 0)
                goto fail;
            prev_special = 0;
        }
    }
    if (frags != &one) free(frags);
    return *n - n0;
fail:
    if (frags != &one) free(frags);
    *n = n0; /* leave the caller's ids as they were (the buffer may have grown) */
    return -1;
}

int sa_tok_decode(const SaTokenizer *t, int prev, int id, int special, SaBuf *out) {
    if (!t || !out) return sa_err("tokenizer: decode: bad arguments");
    if (id < 0 || id >= t->spec.n_vocab)
        return sa_err("tokenizer: token id %d is outside the vocabulary (0..%d)", id, t->spec.n_vocab - 1);
    const char *s = t->spec.tokens[id];
    uint32_t n = t->len[id];
    switch (t->type[id]) {
    case SA_TT_CONTROL:
    case SA_TT_UNKNOWN:
        /* like llama.cpp: markers such as <s> or <unk> are shown only on request */
        return special ? sa_buf_append(out, s, n) : 0;
    case SA_TT_BYTE: {
        char c = (char)t->byte_val[id];
        return sa_buf_append(out, &c, 1);
    }
    case SA_TT_UNUSED:
        return 0; /* never produced by encoding; llama.cpp prints nothing either */
    default:
        break; /* NORMAL, USER_DEFINED */
    }
    if (t->spec.model == SA_TOK_BPE) {
        /* HF decodes added tokens (USER_DEFINED: "<think>") as their text, the rest through the
         * byte-level map; llama.cpp does the same. */
        if (t->type[id] == SA_TT_USER_DEFINED) return sa_buf_append(out, s, n);
        return bpe_decode_piece(t, s, n, out);
    }
    /* Unescape U+2581 -> ' '. (llama.cpp copies USER_DEFINED pieces verbatim; SentencePiece and
     * HF decoders unescape them too, which we follow.) */
    if (sa_buf_reserve(out, n) != 0) return -1;
    size_t start = out->len;
    for (uint32_t i = 0; i < n;) {
        if (i + SPM_SPACE_LEN <= n && memcmp(s + i, SPM_SPACE, SPM_SPACE_LEN) == 0) {
            out->data[out->len++] = ' ';
            i += SPM_SPACE_LEN;
        } else {
            out->data[out->len++] = s[i++];
        }
    }
    /* The space the encoder prefixed is not part of the text: drop it from the first piece after
     * BOS (llama2.c's rule). */
    if (t->spec.model == SA_TOK_SPM && t->spec.add_space_prefix && prev >= 0 && prev == t->spec.bos_id &&
        out->len > start && out->data[start] == ' ') {
        memmove(out->data + start, out->data + start + 1, out->len - start - 1);
        out->len--;
    }
    out->data[out->len] = 0; /* keep SaBuf NUL-terminated for convenience */
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* 6. llama2.c tokenizer.bin                                                                    */

static int load_llama2c(const char *path, int expect_n, SaTokSpec *spec) {
    memset(spec, 0, sizeof *spec);
    size_t size = 0;
    char *data = sa_read_file(path, &size);
    if (!data) return -1;
    const uint8_t *d = (const uint8_t *)data;
    int n = 0, cap = 0;
    if (size < 4) {
        sa_err("%s: truncated llama2.c tokenizer: %zu bytes, no header", path, size);
        goto fail;
    }
    uint32_t max_len;
    memcpy(&max_len, d, 4);
    /* llama2.c sizes its buffers from this; a real one is a few dozen bytes. */
    if (max_len == 0 || max_len > 65536) {
        sa_err("%s: not a llama2.c tokenizer (max_token_length %u)", path, max_len);
        goto fail;
    }
    size_t off = 4;
    while (off < size) {
        if (expect_n > 0 && n == expect_n) {
            sa_err("%s: %zu bytes left after the %d expected tokens", path, size - off, expect_n);
            goto fail;
        }
        if (n >= MAX_VOCAB) {
            sa_err("%s: more than %d tokens", path, MAX_VOCAB);
            goto fail;
        }
        if (size - off < 8) {
            sa_err("%s: truncated in the header of token %d (offset %zu, file is %zu bytes)", path, n, off, size);
            goto fail;
        }
        float score;
        int32_t len;
        memcpy(&score, d + off, 4);
        memcpy(&len, d + off + 4, 4);
        off += 8;
        if (isnan(score)) {
            sa_err("%s: token %d has a NaN score", path, n);
            goto fail;
        }
        if (len < 0) {
            sa_err("%s: token %d has negative length %d", path, n, (int)len);
            goto fail;
        }
        if ((uint32_t)len > max_len) {
            sa_err("%s: token %d is %d bytes, longer than max_token_length %u", path, n, (int)len, max_len);
            goto fail;
        }
        if ((size_t)len > size - off) {
            sa_err("%s: truncated in token %d (%d bytes at offset %zu, file is %zu bytes)", path, n, (int)len, off,
                   size);
            goto fail;
        }
        const char *p = data + off;
        off += (size_t)len;
        if (memchr(p, 0, (size_t)len)) {
            sa_err("%s: token %d contains a NUL byte", path, n);
            goto fail;
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 1024;
            char **nt = sa_realloc(spec->tokens, (size_t)nc * sizeof(char *));
            if (!nt) goto fail;
            spec->tokens = nt;
            float *ns = sa_realloc(spec->scores, (size_t)nc * sizeof(float));
            if (!ns) goto fail;
            spec->scores = ns;
            int32_t *ny = sa_realloc(spec->types, (size_t)nc * sizeof(int32_t));
            if (!ny) goto fail;
            spec->types = ny;
            cap = nc;
        }
        /* llama2.c's export decorates BOS/EOS as "\n<s>\n" / "\n</s>\n" for printing; give them
         * back their SentencePiece names so parse_special and the GGUF vocab agree. */
        char *tok;
        if (n == 1 && len == 5 && memcmp(p, "\n<s>\n", 5) == 0) {
            tok = sa_strdup("<s>");
        } else if (n == 2 && len == 6 && memcmp(p, "\n</s>\n", 6) == 0) {
            tok = sa_strdup("</s>");
        } else {
            /* ' ' back to U+2581, so the vocabulary reads like the SentencePiece one */
            size_t sp = 0;
            for (int32_t i = 0; i < len; i++) sp += p[i] == ' ';
            tok = sa_malloc((size_t)len + sp * (SPM_SPACE_LEN - 1) + 1);
            if (tok) {
                size_t k = 0;
                for (int32_t i = 0; i < len; i++) {
                    if (p[i] == ' ') {
                        memcpy(tok + k, SPM_SPACE, SPM_SPACE_LEN);
                        k += SPM_SPACE_LEN;
                    } else {
                        tok[k++] = p[i];
                    }
                }
                tok[k] = 0;
            }
        }
        if (!tok) goto fail;
        spec->tokens[n] = tok;
        spec->scores[n] = score;
        spec->types[n] = n == 0 ? SA_TT_UNKNOWN
                         : n <= 2 ? SA_TT_CONTROL
                         : parse_byte_piece(p, (size_t)len) >= 0 ? SA_TT_BYTE
                                                                 : SA_TT_NORMAL;
        n++;
        spec->n_vocab = n; /* keep the partial spec freeable */
    }
    if (n < 3) {
        sa_err("%s: only %d tokens; a llama2.c tokenizer starts with <unk>, <s>, </s>", path, n);
        goto fail;
    }
    if (expect_n > 0 && n != expect_n) {
        sa_err("%s: %d tokens, but the model expects %d (file truncated or wrong tokenizer)", path, n, expect_n);
        goto fail;
    }
    free(data);
    spec->model = SA_TOK_SPM;
    spec->unk_id = 0;
    spec->bos_id = 1;
    spec->eos_id = 2;
    spec->pad_id = -1;
    spec->eot_id = -1;
    spec->add_bos = 1;
    spec->add_eos = 0;
    spec->add_space_prefix = 1;
    return 0;
fail:
    free(data);
    sa_tok_spec_free(spec);
    return -1;
}

int sa_tok_spec_from_llama2c(const char *path, SaTokSpec *spec) {
    if (!path || !spec) return sa_err("tokenizer: bad arguments");
    return load_llama2c(path, -1, spec);
}

int sa_tok_spec_from_llama2c_n(const char *path, int n_vocab, SaTokSpec *spec) {
    if (!path || !spec || n_vocab <= 0) return sa_err("tokenizer: bad arguments");
    return load_llama2c(path, n_vocab, spec);
}
