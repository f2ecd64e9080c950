/* matmul.h - Y = X . W^T for a weight matrix of any dtype, split over OpenMP threads. */
#ifndef SALIGN_MATMUL_H
#define SALIGN_MATMUL_H

#include "model.h"

/* Bytes of scratch sa_matmul needs for T rows of `cols` activations (converted copy of X). */
size_t sa_matmul_scratch_bytes(int T, int cols);

/* Y[t*ldy + r] = sum_c X[t*cols + c] * W[r][c] for t < T, r < W->rows.
 * Quantized weights: X is converted once (into scratch) to the weight's activation type
 * (sa_dtype_traits[].vec_dot_type: Q8_0 for Q8_0/Q4_0) and every row uses integer dots. */
void sa_matmul(const SaMat *W, const float *X, int T, float *Y, int ldy, void *scratch);

/* Repack a Q4_0/Q8_0 matrix's rows (Q4_K/Q6_K: rows of whole super-blocks), in place, into 8-row
 * interleaved groups (simd/kernels.h) and set W->packed; rows after the last full group stay as
 * they are. Other dtypes, matrices
 * already packed, or fewer than 8 rows: nothing to do. W->data must be writable memory owned by
 * the caller (the loader's copy of the file, not a read-only mapping). 0 or -1 + sa_err. */
int sa_mat_pack(SaMat *W);
/* Repack every matrix of a model (tied output included); called by sa_model_load when the file
 * was read into memory. SALIGN_NOPACK=1 in the environment turns it off (for comparisons). */
int sa_model_pack(SaModel *m);
/* Row r of W as f32, whatever its dtype and layout (embedding lookup). */
void sa_mat_row(const SaMat *W, int r, float *out);
/* Block b of row r of a Q4_0 / Q8_0 matrix in ggml's layout, whether or not W was repacked. */
BlockQ4_0 sa_mat_block_q4_0(const SaMat *W, int r, int b);
BlockQ8_0 sa_mat_block_q8_0(const SaMat *W, int r, int b);

/* Run fn(ctx, unit, thread) for every unit in [0, n_units) on up to nth threads (at most
 * sa_get_threads(); the caller is thread 0, the others come from a pool that spins, yields,
 * then sleeps between jobs). Units are handed out one at a time from a shared counter, so a
 * thread that is preempted delays the job by one unit. Returns when every unit has run. Not
 * reentrant: call it from one thread at a time, never from inside fn. */
typedef void (*SaTaskFn)(void *ctx, int unit, int thread);
void sa_parallel(int nth, int n_units, SaTaskFn fn, void *ctx);

/* Number of threads used by kernels (OpenMP); set once from -t. */
void sa_set_threads(int n);

/* Call first thing in main(). Under an address-space limit (ulimit -v) OpenBLAS's threads each
 * retry a 128 MiB buffer allocation forever - at start-up, before main(), and again at exit when
 * they are joined - so such a process is re-executed once with OPENBLAS_NUM_THREADS=1 (no worker
 * threads), and BLAS is then called only when its buffer fits (the own kernels serve otherwise).
 * Returns only if no re-exec was needed (or it failed). */
void sa_blas_process_init(char **argv);
int sa_get_threads(void);

#endif
