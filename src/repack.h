/* repack.h - a weight matrix, and the 8-row interleaved layout its quantized rows are repacked
 * into at load (simd/kernels.h describes the layouts). */
#ifndef SALIGN_REPACK_H
#define SALIGN_REPACK_H

#include <stddef.h>

#include "dtype.h"

/* A weight matrix: `rows` rows of `cols` elements (GGUF ne[0] = cols, ne[1] = rows). */
typedef struct {
    const void *data;
    SaDtype dtype;
    int cols, rows;
    size_t row_bytes;
    int packed; /* rows repacked in place into 8-row interleaved groups (sa_mat_pack) */
} SaMat;

/* Repack a Q4_0/Q8_0 matrix's rows (Q4_K/Q6_K: rows of whole super-blocks), in place, into 8-row
 * interleaved groups (simd/kernels.h) and set W->packed; rows after the last full group stay as
 * they are. Other dtypes, matrices
 * already packed, or fewer than 8 rows: nothing to do. W->data must be writable memory owned by
 * the caller (the loader's copy of the file, not a read-only mapping). 0 or -1 + sa_err. */
int sa_mat_pack(SaMat *W);
/* 1 when sa_mat_pack would repack W (its dtype has an 8-row layout, it has 8 rows or more, is
 * not packed yet and its rows are whole blocks of that layout). */
int sa_mat_packable(const SaMat *W);
/* 1 for the K-quant types repacked as x8 super-blocks (Q4_K, Q6_K: their own gemm_x8 kernels). */
int sa_dtype_is_kx8(SaDtype t);
/* Row r of W as f32, whatever its dtype and layout (embedding lookup). */
void sa_mat_row(const SaMat *W, int r, float *out);
/* Block b of row r of a Q4_0 / Q8_0 matrix in ggml's layout, whether or not W was repacked. */
BlockQ4_0 sa_mat_block_q4_0(const SaMat *W, int r, int b);
BlockQ8_0 sa_mat_block_q8_0(const SaMat *W, int r, int b);

#endif
