/* fuzz_safetensors.c - the safetensors reader (tools/convert/safetensors.c) and the Hugging Face folder
 * importer (tools/convert/import_hf.c: config.json + model.safetensors) on arbitrary bytes.
 * Input starting with '{': config.json FUZZ_SEP model.safetensors, imported as an HF folder
 * whose tokenizer.json is the fixed tests/fuzz/data/hf-tokenizer.json. Anything else: a
 * safetensors file, parsed in memory. Seeds: tests/fuzz/corpus/safetensors. */
#include "../../src/common.h"
#include "../../tools/convert/import.h"
#include "../../tools/convert/safetensors.h"
#include "fuzz.h"

static void check_parsed(const SafeTensors *st, const uint8_t *data, size_t size) {
    for (int i = 0; i < st->n_tensors; i++) {
        const StTensor *t = &st->tensors[i];
        FUZZ_ASSERT(t->n_dims >= 0 && t->n_dims <= ST_MAX_DIMS);
        FUZZ_ASSERT((const uint8_t *)t->data >= data && (const uint8_t *)t->data + t->nbytes <= data + size);
        FUZZ_ASSERT(st_find(st, t->name) != NULL);
        if (t->nbytes) {
            volatile uint8_t x = ((const uint8_t *)t->data)[0];
            x ^= ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)x;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int have_tokenizer;
    if (!have_tokenizer) {
        size_t n;
        char *tj = sa_read_file("tests/fuzz/data/hf-tokenizer.json", &n);
        if (!tj) {
            fprintf(stderr, "fuzz_safetensors: %s (run from the repository root)\n", sa_errmsg());
            abort();
        }
        fuzz_dir_file("tokenizer.json", (const uint8_t *)tj, n);
        free(tj);
        have_tokenizer = 1;
    }
    if (size && data[0] == '{') {
        size_t cut = fuzz_split(data, size);
        fuzz_dir_file("config.json", data, cut);
        size_t rest = cut < size ? size - cut - FUZZ_SEP_LEN : 0;
        fuzz_dir_file("model.safetensors", data + size - rest, rest);
        SaConvSource src;
        if (sa_import_hf(fuzz_dir(), &src) == 0) {
            (void)sa_conv_check(&src);
            sa_conv_free(&src);
        } else {
            FUZZ_ASSERT(sa_errmsg()[0] != 0);
        }
    } else {
        /* a private copy exactly as large as the input, so ASan sees any read past its end */
        uint8_t *copy = malloc(size ? size : 1);
        if (!copy) abort();
        if (size) memcpy(copy, data, size);
        SafeTensors st;
        if (st_parse(&st, "fuzz.safetensors", copy, size) == 0) check_parsed(&st, copy, size);
        else FUZZ_ASSERT(sa_errmsg()[0] != 0);
        st_close(&st);
        free(copy);
    }
    sa_err_clear();
    return 0;
}
