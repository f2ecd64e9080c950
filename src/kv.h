/* kv.h - the key/value cache of one sequence, and the token ids it holds.
 *
 * Layout per layer: K and V as [n_ctx][n_head_kv * head_dim], F16 (default), F32 or Q8_0. A Q8_0
 * row is kv_dim / 32 blocks of 34 bytes (ggml's layout: an fp16 scale, 32 int8), 34/64 of the F16
 * row; kv_dim must be a multiple of 32 for it, and rows are quantized when written.
 * Truncating to a position is O(1): positions past `n` are simply overwritten later. The cache
 * also remembers which token sits at each position so a new prompt can reuse the longest
 * common prefix (src/context.c). */
#ifndef SALIGN_KV_H
#define SALIGN_KV_H

#include <stdint.h>

#include "dtype.h"

typedef struct {
    SaDtype dtype; /* SA_F16, SA_F32 or SA_Q8_0 */
    int n_layer, n_ctx, kv_dim;
    size_t row_bytes; /* bytes per position (all KV heads of one layer) */
    uint8_t *k, *v;
    int32_t *tokens; /* tokens[i] = id at position i, for i < n */
    int n;           /* positions filled */
    /* counters (reported by the aligner trace): positions evaluated and positions reused */
    uint64_t n_evaluated, n_reused;
} SaKv;

int sa_kv_init(SaKv *kv, int n_layer, int n_ctx, int kv_dim, SaDtype dtype);
void sa_kv_free(SaKv *kv);
/* Bytes of K and V together (0 for a type the cache cannot hold). */
size_t sa_kv_bytes(int n_layer, int n_ctx, int kv_dim, SaDtype dtype);
/* Bytes of one cache row of kv_dim values (Q8_0: rounded up to whole blocks). */
size_t sa_kv_row_bytes(int kv_dim, SaDtype dtype);
static inline void *sa_kv_k(const SaKv *kv, int layer, int pos) {
    return kv->k + ((size_t)layer * kv->n_ctx + pos) * kv->row_bytes;
}
static inline void *sa_kv_v(const SaKv *kv, int layer, int pos) {
    return kv->v + ((size_t)layer * kv->n_ctx + pos) * kv->row_bytes;
}
/* Forget everything from position pos on. */
void sa_kv_truncate(SaKv *kv, int pos);

#endif
