/* fuzz_llama2c.c - llama2.c checkpoints (tools/convert/import_llama2c.c, all three header versions) and
 * tokenizer.bin (src/tokenizer.c) on arbitrary bytes.
 * Input: u32 n (little-endian), n bytes of checkpoint, the rest is the tokenizer.bin. The
 * checkpoint must match its header to the byte, so the seeds (tests/fuzz/corpus/llama2c) are valid
 * v0/v1/v2 files whose headers the fuzzer mutates. */
#include "../../src/common.h"
#include "../../src/tokenizer.h"
#include "../../tools/convert/import.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t n;
    memcpy(&n, data, 4);
    data += 4;
    size -= 4;
    if (n > size) n = (uint32_t)size;
    const char *ckpt = fuzz_memfile(0, data, n);
    const char *tok = fuzz_memfile(1, data + n, size - n);

    SaTokSpec spec;
    if (sa_tok_spec_from_llama2c(tok, &spec) == 0) {
        FUZZ_ASSERT(spec.n_vocab >= 3);
        SaTokenizer *tk = sa_tok_new(&spec);
        if (tk) {
            int32_t *ids = NULL;
            int cnt = 0, cap = 0;
            static const char text[] = " Once upon a time\n\xe2\x96\x81<s>\xc3";
            if (sa_tok_encode(tk, text, sizeof text - 1, 1, 0, &ids, &cnt, &cap) >= 0) {
                SaBuf out = {0};
                for (int i = 0; i < cnt; i++) {
                    FUZZ_ASSERT(ids[i] >= 0 && ids[i] < spec.n_vocab);
                    (void)sa_tok_decode(tk, i ? ids[i - 1] : -1, ids[i], 1, &out);
                }
                sa_buf_free(&out);
            }
            free(ids);
            sa_tok_free(tk);
        }
        sa_tok_spec_free(&spec);
    }
    SaConvSource src;
    if (sa_import_llama2c(ckpt, tok, &src) == 0) {
        FUZZ_ASSERT(src.tok.n_vocab == src.hp.n_vocab);
        (void)sa_conv_check(&src);
        /* decode every tensor's first and last row (version 2: int8 groups with scales) */
        for (int t = 0; t < src.n_tensors; t++) {
            const SaConvTensor *ct = &src.tensors[t];
            if (!ct->decode) continue;
            int64_t rows = ct->ne[1] * ct->ne[2] * ct->ne[3];
            float *row = malloc((size_t)ct->ne[0] * sizeof(float));
            if (!row) abort();
            ct->decode(ct, 0, 1, row);
            ct->decode(ct, rows - 1, 1, row);
            free(row);
        }
        sa_conv_free(&src);
    } else {
        FUZZ_ASSERT(sa_errmsg()[0] != 0);
    }
    sa_err_clear();
    return 0;
}
