/* kv.h - the key/value cache of one sequence, and the token ids it holds.
 *
 * Layout per layer: K and V as [n_ctx][n_head_kv * head_dim], F16 (default) or F32.
 * Truncating to a position is O(1): positions past `n` are simply overwritten later. The cache
 * also remembers which token sits at each position so a new prompt can reuse the longest
 * common prefix (src/context.c). */
#ifndef SALIGN_KV_H
#define SALIGN_KV_H

#include <stdint.h>

#include "dtype.h"

typedef struct {
    SaDtype dtype; /* SA_F16 or SA_F32 */
    int n_layer, n_ctx, kv_dim;
    size_t elt; /* bytes per element */
    uint8_t *k, *v;
    int32_t *tokens; /* tokens[i] = id at position i, for i < n */
    int n;           /* positions filled */
    /* counters (reported by the aligner trace): positions evaluated and positions reused */
    uint64_t n_evaluated, n_reused;
} SaKv;

int sa_kv_init(SaKv *kv, int n_layer, int n_ctx, int kv_dim, SaDtype dtype);
void sa_kv_free(SaKv *kv);
size_t sa_kv_bytes(int n_layer, int n_ctx, int kv_dim, SaDtype dtype);
static inline void *sa_kv_k(const SaKv *kv, int layer, int pos) {
    return kv->k + (((size_t)layer * kv->n_ctx + pos) * kv->kv_dim) * kv->elt;
}
static inline void *sa_kv_v(const SaKv *kv, int layer, int pos) {
    return kv->v + (((size_t)layer * kv->n_ctx + pos) * kv->kv_dim) * kv->elt;
}
/* Forget everything from position pos on. */
void sa_kv_truncate(SaKv *kv, int pos);

#endif
