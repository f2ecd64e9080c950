/* matmul.h - Y = X . W^T for a weight matrix of any dtype, split over the pool's threads (parallel.h). */
#ifndef SALIGN_MATMUL_H
#define SALIGN_MATMUL_H

#include "repack.h"

/* Bytes of scratch sa_matmul needs for T rows of `cols` activations (converted copy of X). */
size_t sa_matmul_scratch_bytes(int T, int cols);

/* Y[t*ldy + r] = sum_c X[t*cols + c] * W[r][c] for t < T, r < W->rows.
 * Quantized weights: X is converted once (into scratch) to the weight's activation type
 * (sa_dtype_traits[].vec_dot_type: Q8_0 for Q8_0/Q4_0) and every row uses integer dots. */
void sa_matmul(const SaMat *W, const float *X, int T, float *Y, int ldy, void *scratch);

#endif
