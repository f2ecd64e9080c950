/* kv.c - allocation and truncation of the KV cache. */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

size_t sa_kv_row_bytes(int kv_dim, SaDtype dtype) {
    switch (dtype) {
    case SA_F32: return (size_t)kv_dim * 4;
    case SA_F16: return (size_t)kv_dim * 2;
    case SA_Q8_0: return ((size_t)kv_dim + QK8_0 - 1) / QK8_0 * sizeof(BlockQ8_0);
    default: return 0;
    }
}

size_t sa_kv_bytes(int n_layer, int n_ctx, int kv_dim, SaDtype dtype) {
    return 2 * (size_t)n_layer * (size_t)n_ctx * sa_kv_row_bytes(kv_dim, dtype);
}

int sa_kv_init(SaKv *kv, int n_layer, int n_ctx, int kv_dim, SaDtype dtype) {
    memset(kv, 0, sizeof *kv);
    if (dtype != SA_F16 && dtype != SA_F32 && dtype != SA_Q8_0) return sa_err("KV cache type must be f16, f32 or q8_0");
    if (dtype == SA_Q8_0 && kv_dim % QK8_0)
        return sa_err("--kv-type q8_0: a KV row of %d values is not a multiple of the Q8_0 block (%d); use --kv-type f16",
                      kv_dim, QK8_0);
    kv->dtype = dtype;
    kv->row_bytes = sa_kv_row_bytes(kv_dim, dtype);
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    kv->kv_dim = kv_dim;
    size_t half = sa_kv_bytes(n_layer, n_ctx, kv_dim, dtype) / 2;
    /* stop at the first failure, so the message is that allocation's, and name the total */
    kv->k = sa_aligned_alloc(half);
    kv->v = kv->k ? sa_aligned_alloc(half) : NULL;
    kv->tokens = kv->v ? sa_malloc((size_t)n_ctx * sizeof(int32_t)) : NULL;
    if (!kv->tokens) {
        sa_kv_free(kv);
        return sa_err_prefix("KV cache for %d positions needs %.1f MiB: ", n_ctx, 2.0 * half / 1048576.0);
    }
    return 0;
}

void sa_kv_free(SaKv *kv) {
    free(kv->k);
    free(kv->v);
    free(kv->tokens);
    memset(kv, 0, sizeof *kv);
}

void sa_kv_truncate(SaKv *kv, int pos) {
    if (pos < 0) pos = 0;
    if (pos < kv->n) kv->n = pos;
}
