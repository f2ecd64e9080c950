/* logits.c - salign's logits for a token sequence, so export.py can compare them with PyTorch's.
 *   logits MODEL.salm < ids (whitespace-separated)  ->  stdout: n x n_vocab float32 (one row per token)
 * F32 KV cache, one eval of all tokens at positions 0..n-1. Built by export.py against build/libsalign.a. */
#include <stdio.h>
#include <stdlib.h>

#include "../../simd/kernels.h"
#include "../../src/common.h"
#include "../../src/context.h"
#include "../../src/parallel.h"
#include "../../src/model.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: logits MODEL.salm < ids\n");
        return 2;
    }
    int32_t ids[4096];
    int n = 0;
    while (n < 4096 && scanf("%d", &ids[n]) == 1) n++;
    sa_kernels_init();
    sa_set_threads(1);
    SaModel m;
    SaLoadOpts lo = {0};
    if (n < 1 || sa_model_load(&m, argv[1], &lo)) {
        fprintf(stderr, "logits: %s\n", n < 1 ? "no ids" : sa_errmsg());
        return 1;
    }
    SaCtxParams p;
    sa_ctx_default_params(&m, &p);
    p.kv_type = SA_F32;
    if (p.n_ctx < n) p.n_ctx = n;
    if (p.n_batch < n) p.n_batch = n;
    p.n_logits = n;
    SaCtx *c = sa_ctx_new(&m, &p);
    if (!c || sa_ctx_eval(c, ids, n, 1)) {
        fprintf(stderr, "logits: %s\n", sa_errmsg());
        return 1;
    }
    for (int i = 0; i < n; i++) fwrite(sa_ctx_logits(c, i), sizeof(float), (size_t)m.hp.n_vocab, stdout);
    sa_ctx_free(c);
    sa_model_free(&m);
    return 0;
}
