/* import_salm.c - a .salm as a conversion source, so salign-quantize re-quantizes its own files
 * (e.g. f16 -> q4_0) as it does a GGUF: the same hyperparameters, vocabulary, templates and tensors,
 * read through the runtime's reader (crcs checked: a damaged file is not converted). */
#include <stdlib.h>
#include <string.h>

#include "../../src/common.h"
#include "../../src/hparams.h"
#include "../../src/salm.h"
#include "import.h"

static void owner_free(void *p) {
    salm_close(p);
    free(p);
}

int sa_import_salm(const char *path, SaConvSource *src) {
    memset(src, 0, sizeof *src);
    src->kind = ".salm";
    Salm *s = sa_calloc(1, sizeof *s);
    if (!s) return -1;
    if (salm_open(s, path, SA_LOAD_MMAP)) {
        free(s);
        return -1;
    }
    src->owner = s;
    src->owner_free = owner_free;
    if (!(src->path = sa_strdup(path)) || salm_verify(s) || sa_hparams_read(s, &src->hp) || sa_tok_spec_read(s, &src->tok))
        goto fail;
    const char *ct = salm_get_str(s, SA_CONV_KEY_CHAT_TEMPLATE), *at = salm_get_str(s, SA_CONV_KEY_ALIGNER_TEMPLATE);
    if ((ct && !(src->chat_template = sa_strdup(ct))) || (at && !(src->aligner_template = sa_strdup(at)))) goto fail;
    for (int i = 0; i < s->n_tensors; i++) {
        const SalmTensor *t = &s->tensors[i];
        if (!sa_conv_add(src, t->name, t->dtype, t->n_dims, t->ne, t->data, t->nbytes)) goto fail;
    }
    return 0;
fail:
    sa_conv_free(src);
    return -1;
}
