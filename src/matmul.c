/* matmul.c - the matrix products of the forward pass.
 *
 * Quantized weights (Q4_0, Q8_0) are repacked at load time, in place, into 8-row interleaved
 * groups (simd/kernels.h explains the layout): the kernels then produce 8 rows per pass with
 * one shared activation load and no horizontal sums, which is what lets decode run at memory
 * speed instead of being bound by the unpacking arithmetic. Activations are quantized to Q8_0
 * once per matmul (plus per-block sums for Q4_0).
 *
 * Decode (T = 1): each thread streams its own contiguous range of groups (no false sharing: the
 * ranges are whole 64-byte lines of Y). Prefill (T > 1): the same kernels take up to 4 tokens
 * per weight pass; tokens are processed in chunks whose quantized activations stay in L2, and
 * each chunk reuses the thread's weight range. F32 weights use OpenBLAS sgemm, and F16/BF16
 * weights are widened to f32 a slab of rows at a time for it.
 *
 * Rows beyond the last full group of 8 (and matrices that are not repacked: mmapped files)
 * use the one-row dot kernels. Either way a row's value depends only on its own data, never on
 * the thread count or the batch size. */
#include "matmul.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "common.h"
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

/* The quantized activations, then their per-block sums (int16), each 64-byte aligned. */
static size_t xq_bytes(int T, int cols) { return ((size_t)T * (size_t)(cols / QK8_0 + 1) * sizeof(BlockQ8_0) + 63) & ~(size_t)63; }

size_t sa_matmul_scratch_bytes(int T, int cols) {
    return xq_bytes(T, cols) + (size_t)T * (size_t)(cols / QK8_0 + 1) * sizeof(int16_t) + 64;
}

/* ---- repacking ---- */

static int packable(const SaMat *W) {
    return (W->dtype == SA_Q4_0 || W->dtype == SA_Q8_0) && W->rows >= 8 && W->cols % 32 == 0 && !W->packed;
}

/* Rewrite the 8 rows at p (8 * row_bytes, contiguous) as nb interleaved blocks; tmp holds a copy. */
static void pack_group(SaDtype dt, uint8_t *p, size_t row_bytes, int nb, uint8_t *tmp) {
    memcpy(tmp, p, 8 * row_bytes);
    if (dt == SA_Q4_0) {
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

int sa_mat_pack(SaMat *W) {
    if (!packable(W)) return 0;
    const int groups = W->rows / 8, nb = W->cols / QK8_0;
    uint8_t *base = (uint8_t *)(uintptr_t)W->data; /* the loader's own writable copy */
    int fail = 0;
#pragma omp parallel if (groups >= 64)
    {
        uint8_t *tmp = malloc(8 * W->row_bytes);
        if (!tmp) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int g = 0; g < groups; g++)
            if (tmp) pack_group(W->dtype, base + (size_t)g * 8 * W->row_bytes, W->row_bytes, nb, tmp);
        free(tmp);
    }
    if (fail) return sa_err("out of memory repacking a %d x %d matrix", W->rows, W->cols);
    W->packed = 1;
    return 0;
}

int sa_model_pack(SaModel *m) {
    const char *e = getenv("SALIGN_NOPACK");
    if (e && *e && strcmp(e, "0") != 0) return 0;
    const int tied = m->output.data == m->tok_embd.data;
    if (sa_mat_pack(&m->tok_embd)) return -1;
    if (tied) m->output = m->tok_embd;
    else if (sa_mat_pack(&m->output)) return -1;
    for (int l = 0; l < m->hp.n_layer; l++) {
        SaLayer *L = &m->layers[l];
        SaMat *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < SA_ARRAY_LEN(all); i++)
            if (sa_mat_pack(all[i])) return -1;
    }
    return 0;
}

void sa_mat_row(const SaMat *W, int r, float *out) {
    const uint8_t *base = W->data;
    if (!W->packed || r >= W->rows / 8 * 8) {
        sa_dequantize_row(W->dtype, base + (size_t)r * W->row_bytes, out, W->cols);
        return;
    }
    const int nb = W->cols / QK8_0, i = r % 8;
    const uint8_t *g = base + (size_t)(r / 8) * 8 * W->row_bytes;
    for (int b = 0; b < nb; b++) {
        if (W->dtype == SA_Q4_0) {
            const BlockQ4_0x8 *G = (const BlockQ4_0x8 *)g + b;
            BlockQ4_0 blk = {.d = G->d[i]};
            for (int k = 0; k < 4; k++) memcpy(blk.qs + 4 * k, G->qs + 32 * k + 4 * i, 4);
            sa_dequantize_row(SA_Q4_0, &blk, out + b * QK4_0, QK4_0);
        } else {
            const BlockQ8_0x8 *G = (const BlockQ8_0x8 *)g + b;
            BlockQ8_0 blk = {.d = G->d[i]};
            for (int k = 0; k < 8; k++) memcpy(blk.qs + 4 * k, G->qs + 32 * k + 4 * i, 4);
            sa_dequantize_row(SA_Q8_0, &blk, out + b * QK8_0, QK8_0);
        }
    }
}

/* ---- products ---- */

/* Rows per thread are rounded to a multiple of 16 so no two threads share a cache line of Y. */
static void row_range(int rows, int ith, int nth, int *r0, int *r1) {
    int per = (rows + nth - 1) / nth;
    per = (per + 15) & ~15;
    *r0 = SA_MIN(rows, ith * per);
    *r1 = SA_MIN(rows, *r0 + per);
}

/* Below this many multiply-adds one thread is faster than waking the others (a parallel
 * region costs a few microseconds; 2^17 int8 MACs take about that long on one core). */
#define PAR_MIN_WORK (1 << 17)

static int threads_for(size_t work) { return work >= PAR_MIN_WORK ? g_threads : 1; }

/* Rows r0..r1 (plain layout) times all T tokens with the one-row dot kernels. */
static void dot_rows(const SaMat *W, const float *X, const BlockQ8_0 *xq, int r0, int r1, int T, float *Y, int ldy) {
    const SaKernels *k = sa_k;
    const int cols = W->cols, nb = cols / QK8_0;
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

/* Tokens per chunk for the packed kernels: the chunk's quantized activations (and sums) should
 * stay in L2 (~256 KiB budget) while the thread's weight range streams past them. A multiple
 * of 4 (the kernels' token tile). */
static int token_chunk(int nb, int T) {
    const size_t per_token = (size_t)nb * (sizeof(BlockQ8_0) + sizeof(int16_t));
    int tb = (int)((256u << 10) / per_token) & ~3;
    if (tb < 4) tb = 4;
    return SA_MIN(tb, T);
}

/* Work is handed out in units of (token chunk, run of groups) from a shared counter
 * (schedule(dynamic)): on these small shared VMs a core is often busy with something else for a
 * while, and a static split would make every matmul wait for the slow half. A unit is at least
 * ~64 KiB of weights (long sequential streams for the prefetcher, few counter updates) and a
 * whole number of 64-byte lines of Y (an even number of groups). */
static void matmul_packed(const SaMat *W, const BlockQ8_0 *xq, const int16_t *xs, int T, float *Y, int ldy) {
    const SaKernels *k = sa_k;
    const int nb = W->cols / QK8_0, groups = W->rows / 8;
    const size_t group_bytes = 8 * W->row_bytes;
    const uint8_t *base = W->data;
    const int nth = threads_for((size_t)W->rows * W->cols * T);
    const int tb = token_chunk(nb, T), n_tu = (T + tb - 1) / tb;
    int gper = (int)SA_MAX(2, (64u << 10) / group_bytes);
    gper = SA_MIN(gper, SA_MAX(2, groups / (4 * nth))); /* at least ~4 units per thread */
    gper = (gper + 1) & ~1;
    const int n_gu = (groups + gper - 1) / gper;
    const int tail = groups * 8 < W->rows; /* rows after the last full group: one extra unit */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth) if (nth > 1)
    for (int u = 0; u < n_tu * n_gu + tail; u++) {
        if (u == n_tu * n_gu) {
            dot_rows(W, NULL, xq, groups * 8, W->rows, T, Y, ldy);
            continue;
        }
        const int t0 = (u / n_gu) * tb, n = SA_MIN(tb, T - t0);
        const int g0 = (u % n_gu) * gper, g1 = SA_MIN(groups, g0 + gper);
        const BlockQ8_0 *a = xq + (size_t)t0 * nb;
        const int16_t *as = xs + (size_t)t0 * nb;
        float *y = Y + (size_t)t0 * ldy;
        for (int g = g0; g < g1; g++) {
            const void *wg = base + (size_t)g * group_bytes;
            if (W->dtype == SA_Q4_0) k->gemm_q4_0x8(nb, wg, a, as, n, y + 8 * g, (size_t)ldy);
            else k->gemm_q8_0x8(nb, wg, a, n, y + 8 * g, (size_t)ldy);
        }
    }
}

#ifdef SALIGN_BLAS
/* F16/BF16 weights for a batch: widen a slab of rows to f32 (parallel), then sgemm on it. The
 * widening is O(rows * cols), the product O(rows * cols * T), so for T >= 8 the sgemm wins. */
static int matmul_widen_sgemm(const SaMat *W, const float *X, int T, float *Y, int ldy) {
    const int cols = W->cols;
    const int slab = SA_MAX(64, (int)((2u << 20) / ((size_t)cols * sizeof(float)))) & ~15;
    float *wf = malloc((size_t)slab * cols * sizeof(float));
    if (!wf) return -1;
    const uint8_t *base = W->data;
    for (int r0 = 0; r0 < W->rows; r0 += slab) {
        const int n = SA_MIN(slab, W->rows - r0);
#pragma omp parallel for schedule(static) if (n * (size_t)cols >= PAR_MIN_WORK)
        for (int r = 0; r < n; r++) sa_dequantize_row(W->dtype, base + (size_t)(r0 + r) * W->row_bytes, wf + (size_t)r * cols, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, cols, 1.0f, X, cols, wf, cols, 0.0f, Y + r0, ldy);
    }
    free(wf);
    return 0;
}
#endif

void sa_matmul(const SaMat *W, const float *X, int T, float *Y, int ldy, void *scratch) {
    const int cols = W->cols, rows = W->rows;
    const SaKernels *k = sa_k;
#ifdef SALIGN_BLAS
    if (W->dtype == SA_F32 && T >= 8) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, cols, 1.0f, X, cols, W->data, cols, 0.0f, Y, ldy);
        return;
    }
    if ((W->dtype == SA_F16 || W->dtype == SA_BF16) && T >= 8 && matmul_widen_sgemm(W, X, T, Y, ldy) == 0) return;
#endif
    BlockQ8_0 *xq = scratch;
    int16_t *xs = (int16_t *)((uint8_t *)scratch + xq_bytes(T, cols));
    const int nb = cols / QK8_0;
    if (W->dtype == SA_Q8_0 || W->dtype == SA_Q4_0) {
        /* quantize each activation row once, in parallel over rows of X */
#pragma omp parallel for schedule(static) if (T >= 16)
        for (int t = 0; t < T; t++) {
            BlockQ8_0 *q = xq + (size_t)t * nb;
            k->quantize_q8_0(X + (size_t)t * cols, q, cols);
            if (W->packed && W->dtype == SA_Q4_0) {
                for (int b = 0; b < nb; b++) {
                    int s = 0;
                    for (int j = 0; j < QK8_0; j++) s += q[b].qs[j];
                    xs[(size_t)t * nb + b] = (int16_t)s; /* |s| <= 32 * 127 */
                }
            }
        }
    }
    if (W->packed) {
        matmul_packed(W, xq, xs, T, Y, ldy);
        return;
    }
    const int nth = threads_for((size_t)rows * cols * T);
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int r0, r1;
        row_range(rows, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        dot_rows(W, X, xq, r0, r1, T, Y, ldy);
    }
}
