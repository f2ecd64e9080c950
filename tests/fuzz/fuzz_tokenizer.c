/* fuzz_tokenizer.c - encode and decode (src/tokenizer.c) of arbitrary bytes with real
 * vocabularies: Llama 2 (SentencePiece, llama2.c tokenizer.bin), Llama 3 and Qwen2 (byte-level BPE,
 * llama.cpp vocab GGUFs), Gemma 3 (HF tokenizer.json: SentencePiece-style with added tokens cut
 * from all text) when ../shared/models is there, and the two tiny tokenizer.json files of
 * tests/fuzz/corpus/tokjson always.
 * Input: byte 0 = vocabulary (bits 0-2), add_bos (bit 3), parse_special (bit 4), masked
 * encoding (bit 5: template bytes are the first byte-1-scaled part of the text); the rest is the
 * text. Properties checked: every id is in the vocabulary; plain encoding (no special parsing)
 * decodes back to exactly the input bytes where the tokenizer promises it (tokenizer.h: invalid
 * UTF-8 included); decoding ids that are not in the vocabulary is an error, not a crash. */
#include "../../src/common.h"
#include "../../src/gguf.h"
#include "../../src/tokenizer.h"
#include "fuzz.h"

typedef struct {
    const char *name;
    SaTokenizer *tk;
    int exact; /* plain text round-trips byte for byte */
} Vocab;

static Vocab vocabs[8];
static int n_vocabs;

static void add(const char *name, SaTokSpec *spec, int rc, int exact) {
    if (rc != 0) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s (skipped)\n", name, sa_errmsg());
        return;
    }
    SaTokenizer *tk = sa_tok_new(spec);
    sa_tok_spec_free(spec);
    if (!tk) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s (skipped)\n", name, sa_errmsg());
        return;
    }
    vocabs[n_vocabs++] = (Vocab){name, tk, exact};
}

static void add_gguf(const char *path, int exact) {
    Gguf g;
    SaTokSpec spec;
    if (gguf_open(&g, path) != 0) {
        add(path, &spec, -1, 0);
        return;
    }
    int rc = gguf_tok_spec(&g, &spec);
    gguf_close(&g);
    add(path, &spec, rc, exact);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    SaTokSpec spec;
    /* the seed's SentencePiece vocabulary has only a few byte tokens: other bytes become <unk> */
    add("tokjson/spm.json", &spec, sa_tok_spec_from_hf("tests/fuzz/corpus/tokjson/spm.json", &spec), 0);
    add("tokjson/bpe.json", &spec, sa_tok_spec_from_hf("tests/fuzz/corpus/tokjson/bpe.json", &spec), 1);
    const char *m = fuzz_models_dir();
    if (m) {
        char p[600];
        snprintf(p, sizeof p, "%s/llama2-tokenizer.bin", m);
        add(p, &spec, sa_tok_spec_from_llama2c(p, &spec), 1);
        snprintf(p, sizeof p, "%s/vocab/ggml-vocab-llama-bpe.gguf", m);
        add_gguf(p, 1);
        snprintf(p, sizeof p, "%s/vocab/ggml-vocab-qwen2.gguf", m);
        add_gguf(p, 0); /* NFC-normalizes the text: not a byte-exact round trip by design */
        snprintf(p, sizeof p, "%s/tokenizers/gemma3", m);
        add(p, &spec, sa_tok_spec_from_hf(p, &spec), 1);
    }
    if (n_vocabs == 0) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary loaded (run from the repository root)\n");
        abort();
    }
    fprintf(stderr, "fuzz_tokenizer: %d vocabularies\n", n_vocabs);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const Vocab *v = &vocabs[(data[0] & 7) % n_vocabs];
    const int add_bos = data[0] >> 3 & 1, parse_special = data[0] >> 4 & 1, masked = data[0] >> 5 & 1;
    const size_t tmpl_bytes = (size_t)data[1] * (size - 2) / 255;
    const char *text = (const char *)data + 2;
    const size_t len = size - 2;
    const SaTokSpec *spec = sa_tok_spec(v->tk);

    int32_t *ids = NULL;
    int n = 0, cap = 0, r;
    if (masked) {
        uint8_t *mask = malloc(len + 1);
        if (!mask) abort();
        for (size_t i = 0; i < len; i++) mask[i] = i < tmpl_bytes;
        r = sa_tok_encode_masked(v->tk, text, len, add_bos, mask, &ids, &n, &cap);
        free(mask);
    } else {
        r = sa_tok_encode(v->tk, text, len, add_bos, parse_special, &ids, &n, &cap);
    }
    FUZZ_ASSERT(r >= 0 || sa_errmsg()[0]);
    if (r < 0) n = 0;
    FUZZ_ASSERT(r < 0 || r == n);
    SaBuf out = {0}, shown = {0};
    for (int i = 0; i < n; i++) {
        FUZZ_ASSERT(ids[i] >= 0 && ids[i] < spec->n_vocab);
        /* special = 1: markers as text (what --special prints) */
        FUZZ_ASSERT(sa_tok_decode(v->tk, i ? ids[i - 1] : -1, ids[i], 1, &shown) == 0);
        /* special = 0, and the first token decoded as if after BOS: SentencePiece's prefix space
         * is dropped there (tokenizer.h), so this is the text itself */
        FUZZ_ASSERT(sa_tok_decode(v->tk, i ? ids[i - 1] : spec->bos_id, ids[i], 0, &out) == 0);
    }
    sa_buf_free(&shown);
    /* SentencePiece vocabularies spell ' ' as U+2581, so a literal U+2581 in the text decodes as a
     * space (as in llama.cpp): the one documented exception to the round trip. */
    if (r >= 0 && v->exact && !parse_special && !masked &&
        !(spec->model == SA_TOK_SPM && memmem(text, len, "\xe2\x96\x81", 3))) {
        FUZZ_ASSERT(out.len == len);
        FUZZ_ASSERT(len == 0 || memcmp(out.data, text, len) == 0);
    }
    /* ids from the input, in range or not */
    for (size_t i = 0; i + 4 <= len && i < 64; i += 4) {
        int32_t id;
        memcpy(&id, text + i, 4);
        int ok = sa_tok_decode(v->tk, -1, id, data[0] & 1, &out) == 0;
        FUZZ_ASSERT(ok == (id >= 0 && id < spec->n_vocab));
        (void)sa_tok_token(v->tk, id);
        (void)sa_tok_is_eog(v->tk, id);
    }
    sa_buf_free(&out);
    free(ids);
    sa_err_clear();
    return 0;
}
