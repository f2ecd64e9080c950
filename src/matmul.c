/* matmul.c - the matrix products of the forward pass.
 *
 * Decode (T = 1) is bound by memory bandwidth: each weight byte is read once, rows are split
 * evenly over threads in contiguous ranges (no false sharing on Y: each thread writes its own
 * range). Prefill with f32 weights goes to OpenBLAS sgemm; quantized weights use the integer
 * dot kernels with the activations quantized to Q8_0 once per matmul. */
#include "matmul.h"

#include <omp.h>
#include <string.h>

#include "../simd/kernels.h"
#ifdef SALIGN_BLAS
#include <cblas.h>
#endif

static int g_threads = 1;

void sa_set_threads(int n) {
    g_threads = n > 0 ? n : 1;
    omp_set_num_threads(g_threads);
#ifdef SALIGN_BLAS
    openblas_set_num_threads(g_threads);
#endif
}

int sa_get_threads(void) { return g_threads; }

size_t sa_matmul_scratch_bytes(int T, int cols) {
    return (size_t)T * (size_t)(cols / QK8_0 + 1) * sizeof(BlockQ8_0) + 64;
}

/* Rows per thread are rounded to a multiple of 16 so no two threads share a cache line of Y. */
static void row_range(int rows, int ith, int nth, int *r0, int *r1) {
    int per = (rows + nth - 1) / nth;
    per = (per + 15) & ~15;
    *r0 = SA_MIN(rows, ith * per);
    *r1 = SA_MIN(rows, *r0 + per);
}

void sa_matmul(const SaMat *W, const float *X, int T, float *Y, int ldy, void *scratch) {
    const int cols = W->cols, rows = W->rows;
    const SaKernels *k = sa_k;
#ifdef SALIGN_BLAS
    if (W->dtype == SA_F32 && T >= 8) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, cols, 1.0f, X, cols, W->data, cols, 0.0f, Y, ldy);
        return;
    }
#endif
    BlockQ8_0 *xq = scratch;
    const int nb = cols / QK8_0;
    if (W->dtype == SA_Q8_0 || W->dtype == SA_Q4_0) {
        /* quantize each activation row once, in parallel over rows of X */
#pragma omp parallel for schedule(static) if (T > 1)
        for (int t = 0; t < T; t++) k->quantize_q8_0(X + (size_t)t * cols, xq + (size_t)t * nb, cols);
    }
    const int nth = rows >= 64 ? g_threads : 1;
#pragma omp parallel num_threads(nth)
    {
        int r0, r1;
        row_range(rows, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        const uint8_t *base = W->data;
        for (int r = r0; r < r1; r++) {
            const void *w = base + (size_t)r * W->row_bytes;
            for (int t = 0; t < T; t++) {
                float v;
                switch (W->dtype) {
                case SA_Q8_0: v = k->dot_q8_0(cols, w, xq + (size_t)t * nb); break;
                case SA_Q4_0: v = k->dot_q4_0(cols, w, xq + (size_t)t * nb); break;
                case SA_F16: v = k->dot_f16(cols, w, X + (size_t)t * cols); break;
                case SA_BF16: v = k->dot_bf16(cols, w, X + (size_t)t * cols); break;
                default: v = k->dot_f32(cols, w, X + (size_t)t * cols); break;
                }
                Y[(size_t)t * ldy + r] = v;
            }
        }
    }
}
