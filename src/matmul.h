/* matmul.h - Y = X . W^T for a weight matrix of any dtype, split over OpenMP threads. */
#ifndef SALIGN_MATMUL_H
#define SALIGN_MATMUL_H

#include "model.h"

/* Bytes of scratch sa_matmul needs for T rows of `cols` activations (quantized copy of X). */
size_t sa_matmul_scratch_bytes(int T, int cols);

/* Y[t*ldy + r] = sum_c X[t*cols + c] * W[r][c] for t < T, r < W->rows.
 * Quantized weights: X is quantized to Q8_0 once (into scratch) and every row uses integer dots. */
void sa_matmul(const SaMat *W, const float *X, int T, float *Y, int ldy, void *scratch);

/* Number of threads used by kernels (OpenMP); set once from -t. */
void sa_set_threads(int n);
int sa_get_threads(void);

#endif
