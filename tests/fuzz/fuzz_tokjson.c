/* fuzz_tokjson.c - the Hugging Face tokenizer.json / tokenizer_config.json loader (src/tokjson.c)
 * on arbitrary bytes. Input: tokenizer.json [FUZZ_SEP tokenizer_config.json]; both are written to
 * a scratch folder, which is what the loader reads. A spec that loads is built into a tokenizer
 * and used once. Seeds: tests/fuzz/corpus/tokjson. */
#include "../../src/common.h"
#include "../../src/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cut = fuzz_split(data, size);
    fuzz_dir_file("tokenizer.json", data, cut);
    if (cut < size) fuzz_dir_file("tokenizer_config.json", data + cut + FUZZ_SEP_LEN, size - cut - FUZZ_SEP_LEN);
    else fuzz_dir_file("tokenizer_config.json", NULL, 0);

    SaTokSpec spec;
    if (sa_tok_spec_from_hf(fuzz_dir(), &spec) == 0) {
        FUZZ_ASSERT(spec.n_vocab > 0);
        SaTokenizer *tk = sa_tok_new(&spec);
        if (tk) {
            int32_t *ids = NULL;
            int n = 0, cap = 0;
            static const char text[] = "Hello, world! <s> caf\xc3\xa9 12345\n\xff";
            if (sa_tok_encode(tk, text, sizeof text - 1, 1, 1, &ids, &n, &cap) >= 0) {
                SaBuf out = {0};
                for (int i = 0; i < n; i++) {
                    FUZZ_ASSERT(ids[i] >= 0 && ids[i] < spec.n_vocab);
                    (void)sa_tok_decode(tk, i ? ids[i - 1] : -1, ids[i], 1, &out);
                }
                sa_buf_free(&out);
            }
            free(ids);
            sa_tok_free(tk);
        }
        sa_tok_spec_free(&spec);
    } else {
        FUZZ_ASSERT(sa_errmsg()[0] != 0);
    }
    free(sa_hf_chat_template(fuzz_dir()));
    sa_err_clear();
    return 0;
}
