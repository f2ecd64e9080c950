/* repack.c - the 8-row interleaved layout of quantized weight matrices (simd/kernels.h): the
 * in-place repacking done at load, and reading a row or block back whatever the layout.
 *
 * The repacked kernels produce 8 rows per pass with one shared activation load and no
 * horizontal sums, which is what lets decode run at memory speed instead of being bound by the
 * unpacking arithmetic (src/matmul.c runs them). */
#include "repack.h"

#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "common.h"
#include "parallel.h"

/* Q4_0/Q8_0 (BlockQ4_0x8, BlockQ8_0x8) and Q4_K/Q6_K (BlockQ4_Kx8, BlockQ6_Kx8: a Q4_K_M file is
 * these two; with the one-row reference kernels its 1B decode ran at 0.7 t/s, with the x8 tiles at
 * ~25 t/s on Zen 5, tools/bench/RESULTS.md). The K-quants need whole super-blocks per row. */
int sa_dtype_is_kx8(SaDtype t) { return t == SA_Q4_K || t == SA_Q6_K; }
int sa_mat_packable(const SaMat *W) {
    if (W->rows < 8 || W->packed) return 0;
    if (W->dtype == SA_Q4_0 || W->dtype == SA_Q8_0) return W->cols % 32 == 0;
    return sa_dtype_is_kx8(W->dtype) && W->cols % QK_K == 0;
}

/* Rewrite the 8 rows at p (8 * row_bytes, contiguous) as nb interleaved blocks (nb: blocks of
 * the type per row); tmp holds a copy. */
static void pack_group(SaDtype dt, uint8_t *p, size_t row_bytes, int nb, uint8_t *tmp) {
    memcpy(tmp, p, 8 * row_bytes);
    if (dt == SA_Q4_K) {
        const BlockQ4_K *src[8];
        for (int b = 0; b < nb; b++) {
            for (int i = 0; i < 8; i++) src[i] = (const BlockQ4_K *)(tmp + i * row_bytes) + b;
            sa_pack_q4_Kx8(src, (BlockQ4_Kx8 *)p + b);
        }
    } else if (dt == SA_Q6_K) {
        const BlockQ6_K *src[8];
        for (int b = 0; b < nb; b++) {
            for (int i = 0; i < 8; i++) src[i] = (const BlockQ6_K *)(tmp + i * row_bytes) + b;
            sa_pack_q6_Kx8(src, (BlockQ6_Kx8 *)p + b);
        }
    } else if (dt == SA_Q4_0) {
        BlockQ4_0x8 *out = (BlockQ4_0x8 *)p;
        for (int i = 0; i < 8; i++) {
            const BlockQ4_0 *src = (const BlockQ4_0 *)(tmp + i * row_bytes);
            for (int b = 0; b < nb; b++) {
                out[b].d[i] = src[b].d;
                for (int k = 0; k < 4; k++) memcpy(out[b].qs + 32 * k + 4 * i, src[b].qs + 4 * k, 4);
            }
        }
    } else {
        BlockQ8_0x8 *out = (BlockQ8_0x8 *)p;
        for (int i = 0; i < 8; i++) {
            const BlockQ8_0 *src = (const BlockQ8_0 *)(tmp + i * row_bytes);
            for (int b = 0; b < nb; b++) {
                out[b].d[i] = src[b].d;
                for (int k = 0; k < 8; k++) memcpy(out[b].qs + 32 * k + 4 * i, src[b].qs + 4 * k, 4);
            }
        }
    }
}

typedef struct {
    SaMat *W;
    uint8_t *tmp; /* one 8-row copy per thread */
} PackJob;

#define PACK_GROUPS_PER_UNIT 16

static void pack_unit(void *ctx, int u, int thread) {
    const PackJob *j = ctx;
    const SaMat *W = j->W;
    const int groups = W->rows / 8, g0 = u * PACK_GROUPS_PER_UNIT, g1 = SA_MIN(groups, g0 + PACK_GROUPS_PER_UNIT);
    uint8_t *base = (uint8_t *)(uintptr_t)W->data; /* the loader's own writable copy */
    for (int g = g0; g < g1; g++)
        pack_group(W->dtype, base + (size_t)g * 8 * W->row_bytes, W->row_bytes, W->cols / sa_dtype_tr(W->dtype)->block,
                   j->tmp + (size_t)thread * 8 * W->row_bytes);
}

int sa_mat_pack(SaMat *W) {
    if (!sa_mat_packable(W)) return 0;
    const int nth = sa_get_threads();
    PackJob j = {W, malloc((size_t)nth * 8 * W->row_bytes)};
    if (!j.tmp) return sa_err("out of memory repacking a %d x %d matrix", W->rows, W->cols);
    const int units = (W->rows / 8 + PACK_GROUPS_PER_UNIT - 1) / PACK_GROUPS_PER_UNIT;
    sa_parallel(W->rows >= 1024 ? nth : 1, units, pack_unit, &j);
    free(j.tmp);
    W->packed = 1;
    return 0;
}

/* Rows after the last full group of 8, and matrices never repacked, keep ggml's row layout. */
static int row_is_plain(const SaMat *W, int r) { return !W->packed || r >= W->rows / 8 * 8; }

BlockQ4_0 sa_mat_block_q4_0(const SaMat *W, int r, int b) {
    const uint8_t *base = W->data;
    if (row_is_plain(W, r)) return ((const BlockQ4_0 *)(base + (size_t)r * W->row_bytes))[b];
    const BlockQ4_0x8 *G = (const BlockQ4_0x8 *)(base + (size_t)(r / 8) * 8 * W->row_bytes) + b;
    const int i = r % 8;
    BlockQ4_0 blk = {.d = G->d[i]};
    for (int k = 0; k < 4; k++) memcpy(blk.qs + 4 * k, G->qs + 32 * k + 4 * i, 4);
    return blk;
}

BlockQ8_0 sa_mat_block_q8_0(const SaMat *W, int r, int b) {
    const uint8_t *base = W->data;
    if (row_is_plain(W, r)) return ((const BlockQ8_0 *)(base + (size_t)r * W->row_bytes))[b];
    const BlockQ8_0x8 *G = (const BlockQ8_0x8 *)(base + (size_t)(r / 8) * 8 * W->row_bytes) + b;
    const int i = r % 8;
    BlockQ8_0 blk = {.d = G->d[i]};
    for (int k = 0; k < 8; k++) memcpy(blk.qs + 4 * k, G->qs + 32 * k + 4 * i, 4);
    return blk;
}

void sa_mat_row(const SaMat *W, int r, float *out) {
    if (row_is_plain(W, r)) {
        sa_dequantize_row(W->dtype, (const uint8_t *)W->data + (size_t)r * W->row_bytes, out, W->cols);
        return;
    }
    if (sa_dtype_is_kx8(W->dtype)) { /* one super-block at a time, back in ggml's layout */
        const uint8_t *G = (const uint8_t *)W->data + (size_t)(r / 8) * 8 * W->row_bytes;
        for (int b = 0; b < W->cols / QK_K; b++) {
            if (W->dtype == SA_Q4_K) {
                BlockQ4_K blk;
                sa_unpack_q4_Kx8((const BlockQ4_Kx8 *)G + b, r % 8, &blk);
                sa_dequantize_row(SA_Q4_K, &blk, out + b * QK_K, QK_K);
            } else {
                BlockQ6_K blk;
                sa_unpack_q6_Kx8((const BlockQ6_Kx8 *)G + b, r % 8, &blk);
                sa_dequantize_row(SA_Q6_K, &blk, out + b * QK_K, QK_K);
            }
        }
        return;
    }
    for (int b = 0; b < W->cols / QK8_0; b++) {
        if (W->dtype == SA_Q4_0) {
            const BlockQ4_0 blk = sa_mat_block_q4_0(W, r, b);
            sa_dequantize_row(SA_Q4_0, &blk, out + b * QK4_0, QK4_0);
        } else {
            const BlockQ8_0 blk = sa_mat_block_q8_0(W, r, b);
            sa_dequantize_row(SA_Q8_0, &blk, out + b * QK8_0, QK8_0);
        }
    }
}
