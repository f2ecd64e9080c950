/* fuzz_gguf.c - the GGUF reader (src/gguf.c) and the GGUF importer (tools/convert/import_gguf.c) on
 * arbitrary bytes: open, read typed metadata, build the tokenizer, import and check the tensor set
 * against the hyperparameters, then what the runtime does with a GGUF: convert it in memory
 * (--type keep) and open the image as a .salm. Every tensor of a block type salign runs (Q4_0 ... IQ4_XS)
 * has its first row decoded. Nothing may crash, leak or read outside the file; a failure must
 * leave an error message. Seeds: tests/fuzz/corpus/gguf (tests/hostile/gen.py --seeds). */
#include "../../src/common.h"
#include "../../src/dtype.h"
#include "../../src/gguf.h"
#include "../../tools/convert/import.h"
#include "../../src/open_gguf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(0, data, size);
    Gguf g;
    if (gguf_open(&g, path) == 0) {
        uint32_t u;
        int32_t i;
        float f;
        int b;
        char *s = NULL;
        /* every getter on every key: type mismatches must be errors, not reinterpretations */
        for (uint64_t k = 0; k < g.n_kv; k++) {
            const char *key = g.kv[k].key;
            FUZZ_ASSERT(gguf_find(&g, key) != NULL);
            (void)gguf_get_u32(&g, key, &u);
            (void)gguf_get_i32(&g, key, &i);
            (void)gguf_get_f32(&g, key, &f);
            (void)gguf_get_bool(&g, key, &b);
            if (gguf_get_str(&g, key, &s) == 0) free(s);
        }
        for (uint64_t t = 0; t < g.n_tensors; t++) {
            const GgufTensor *gt = &g.tensors[t];
            FUZZ_ASSERT((const uint8_t *)gt->data >= g.map + g.data_offset);
            FUZZ_ASSERT((const uint8_t *)gt->data + gt->nbytes <= g.map + g.size);
            if (gt->nbytes) { /* touch the first and last byte: ASan checks the range is mapped */
                volatile uint8_t x = ((const uint8_t *)gt->data)[0];
                x ^= ((const uint8_t *)gt->data)[gt->nbytes - 1];
                (void)x;
            }
            /* every block type salign runs decodes any bytes (first row, bounded): no UB on odd
             * scales (NaN, inf, subnormal), no read past the row */
            const int dt = sa_dtype_from_ggml(gt->type);
            if (dt >= 0 && gt->ne[0] > 0 && gt->ne[0] <= 4096) {
                const size_t rb = sa_row_bytes((SaDtype)dt, gt->ne[0]);
                if (rb && rb <= gt->nbytes) {
                    float *row = malloc((size_t)gt->ne[0] * sizeof *row);
                    if (row) {
                        sa_dequantize_row((SaDtype)dt, gt->data, row, gt->ne[0]);
                        free(row);
                    }
                }
            }
        }
        SaTokSpec spec;
        if (gguf_tok_spec(&g, &spec) == 0) {
            SaTokenizer *tk = sa_tok_new(&spec);
            if (tk) {
                int32_t *ids = NULL;
                int n = 0, cap = 0;
                static const char text[] = "Hello <s> world\xff</s>";
                (void)sa_tok_encode(tk, text, sizeof text - 1, 1, 1, &ids, &n, &cap);
                free(ids);
                sa_tok_free(tk);
            }
            sa_tok_spec_free(&spec);
        } else {
            FUZZ_ASSERT(sa_errmsg()[0] != 0);
        }
        gguf_close(&g);
    } else {
        FUZZ_ASSERT(sa_errmsg()[0] != 0);
    }
    SaConvSource src;
    if (sa_import_gguf(path, &src) == 0) {
        (void)sa_conv_check(&src);
        for (int t = 0; t < src.n_tensors; t++) (void)sa_conv_out_dtype(&src, &src.tensors[t], SA_CONV_Q4_0);
        sa_conv_free(&src);
    }
    Salm img;
    if (sa_open_gguf_as_salm(path, SA_LOAD_READ_4K, &img) == 0) {
        FUZZ_ASSERT(salm_verify(&img) == 0); /* the image's crcs are its own */
        salm_close(&img);
    } else {
        FUZZ_ASSERT(sa_errmsg()[0] != 0 && img.base == NULL);
    }
    sa_err_clear();
    return 0;
}
