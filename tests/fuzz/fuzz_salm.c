/* fuzz_salm.c - the .salm reader (src/salm.c), the hyperparameter and tokenizer keys
 * (src/hparams.c) and the model binding (src/model.c) on arbitrary bytes, both loading paths
 * (read into memory, mmap). Seeds: tests/fuzz/corpus/salm. */
#include "../../src/common.h"
#include "../../src/hparams.h"
#include "../../src/model.h"
#include "../../src/salm.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(0, data, size);
    for (int load_mode = 0; load_mode < 2; load_mode++) {
        Salm s;
        if (salm_open(&s, path, load_mode) != 0) {
            FUZZ_ASSERT(sa_errmsg()[0] != 0);
            salm_close(&s); /* must be harmless after a failed open */
            continue;
        }
        for (int t = 0; t < s.n_tensors; t++) {
            const SalmTensor *st = &s.tensors[t];
            FUZZ_ASSERT((const uint8_t *)st->data >= s.base + s.data_offset);
            FUZZ_ASSERT((const uint8_t *)st->data + st->nbytes <= s.base + s.size);
            FUZZ_ASSERT(salm_tensor(&s, st->name) == st);
        }
        (void)salm_verify(&s);
        SaHparams h;
        (void)sa_hparams_read(&s, &h);
        SaTokSpec spec;
        if (sa_tok_spec_read(&s, &spec) == 0) {
            SaTokenizer *tk = sa_tok_new(&spec);
            sa_tok_free(tk);
            sa_tok_spec_free(&spec);
        }
        salm_close(&s);
    }
    /* the whole load as salign does it (binding tensors to the architecture, repacking rows) */
    SaModel m;
    SaLoadOpts lo = {0};
    lo.load_mode = size & 1;
    if (sa_model_load(&m, path, &lo) == 0) sa_model_free(&m);
    sa_err_clear();
    return 0;
}
