/* matmul.c - the matrix products of the forward pass.
 *
 * Quantized weights (Q4_0, Q8_0, Q4_K, Q6_K) are repacked at load time, in place, into 8-row interleaved
 * groups (src/repack.c; simd/kernels.h explains the layout): the kernels then produce 8 rows per pass with
 * one shared activation load and no horizontal sums, which is what lets decode run at memory
 * speed instead of being bound by the unpacking arithmetic. Activations are quantized to the
 * weight type's activation type (Q8_0, Q8_K, ...) once per matmul (plus per-block sums for Q4_0).
 *
 * Threads come from the pool (src/parallel.c, sa_parallel). Work units are runs of groups (>= 64 KiB of
 * weights: long sequential streams; whole 64-byte lines of Y: no false sharing) times a chunk
 * of tokens. Decode (T = 1) and small batches (T <= SA_PF_MAX_T: speculative verification)
 * stream every weight once, prefetching, in one or two long runs per thread. Prefill: the
 * kernels take 2-8 tokens per weight pass, and tokens are processed in chunks whose quantized
 * activations stay in L2 while the weights stream past. F32 weights use OpenBLAS sgemm, and F16/BF16 weights are
 * widened to f32 a slab of rows at a time for it.
 *
 * Rows beyond the last full group of 8 (and matrices that are not repacked: mmapped files)
 * use the one-row dot kernels. Either way a row's value depends only on its own data, never on
 * the thread count or the batch size. */
#include "matmul.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "../simd/kernels.h"
#include "common.h"
#include "parallel.h"
#ifdef SALIGN_BLAS
#include <cblas.h>
#endif

#ifdef SALIGN_BLAS
/* Whether OpenBLAS can get its working buffer (128 MiB on these CPUs; it retries forever when it
 * cannot). Unlimited: always. Limited: once a probe reservation of twice that succeeded, OpenBLAS
 * has kept its buffer since, so later calls are safe too. */
static int blas_fits(void) {
    static atomic_int ok;
    if (atomic_load(&ok)) return 1;
    if (sa_addr_space_limited()) {
        const size_t need = (size_t)256 << 20;
        void *p = mmap(NULL, need, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return 0;
        munmap(p, need);
    }
    atomic_store(&ok, 1);
    return 1;
}
#endif

/* Scratch: the activations converted to the weight's activation type (sized for the widest
 * block type, whichever the matrix needs), then per Q8_0 block its scale as a float and 8 * its
 * quant sum (SaQ8Act, for the repacked kernels), then for Q4_0 batches the same grouped 8 tokens
 * to a block (SaQ8x8), each part 64-byte aligned. */
static size_t act_row_cap(int cols) {
    size_t m = 0;
    for (int t = 0; t < SA_DTYPE_COUNT; t++) {
        const SaDtypeTraits *tr = sa_dtype_tr((SaDtype)t);
        if (tr->block > 1) m = SA_MAX(m, (size_t)(cols / tr->block + 1) * tr->block_bytes);
    }
    return m;
}
static size_t xq_bytes(int T, int cols) { return ((size_t)T * act_row_cap(cols) + 63) & ~(size_t)63; }
static size_t xf_bytes(int T, int cols) { return ((size_t)T * (size_t)(cols / QK8_0 + 1) * sizeof(float) + 63) & ~(size_t)63; }

static size_t x8_bytes(int T, int cols) { return (size_t)(T + 7) / 8 * (size_t)(cols / QK8_0) * sizeof(SaQ8x8); }

size_t sa_matmul_scratch_bytes(int T, int cols) { return xq_bytes(T, cols) + 2 * xf_bytes(T, cols) + x8_bytes(T, cols) + 64; }

/* ---- products ---- */

/* Below this many multiply-adds one thread is faster than waking the others (handing out a
 * job costs about a microsecond; 2^17 int8 MACs take a few on one core). */
#define PAR_MIN_WORK (1 << 17)

#define BLAS_MIN_WORK (1u << 22)

static int threads_for(size_t work) { return work >= PAR_MIN_WORK ? sa_get_threads() : 1; }

/* Rows r0..r1 (plain layout) times all T tokens: the weight type's gemm entry. `a`: activation
 * row 0 in the type's activation type, rows `astride` bytes apart. */
static void dot_rows(const SaMat *W, const void *a, size_t astride, int r0, int r1, int T, float *Y, int ldy) {
    if (r1 <= r0) return;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r0 * W->row_bytes;
    sa_kernels_for(T)->type[W->dtype].gemm(W->cols, r1 - r0, w, W->row_bytes, a, astride, T, Y + r0, (size_t)ldy);
}

/* Tokens per chunk for the packed kernels: the chunk's quantized activations (and extras)
 * should stay in L2 (~256 KiB budget) while the weights stream past them. A multiple of 24,
 * so the kernels' token tiles (2, 4, 6 or 8 tokens per pass) divide it and every chunk starts
 * an SaQ8x8 tile. */
static int token_chunk(int cols, size_t astride, int T) {
    const size_t per_token = astride + (size_t)(cols / QK8_0) * 2 * sizeof(float);
    int tb = (int)((256u << 10) / per_token) / 24 * 24;
    if (tb < 24) tb = 24;
    return SA_MIN(tb, T);
}

/* One job of sa_parallel: the matmul's arguments and how its work is cut into units. */
typedef struct {
    const SaMat *W;
    const void *a;     /* activation row 0 in the weight's activation type */
    size_t astride;    /* bytes between activation rows */
    const SaQ8Act *act;
    float *Y;
    int T, ldy;
    int tb, n_gu, gper, groups; /* packed: token chunk, group runs */
    int rows_per_unit;           /* plain */
    int tail_unit;               /* packed: index of the unit for the rows after the last group (-1: none) */
} MatJob;

/* Units are (token chunk, run of groups), token chunk major, handed out one at a time: a unit
 * is a whole number of 64-byte lines of Y (an even number of groups) and a long sequential
 * stream of weights: at least ~64 KiB for prefill, half a thread's share for decode. */
static void packed_unit(void *ctx, int u, int thread) {
    (void)thread;
    const MatJob *j = ctx;
    const SaMat *W = j->W;
    if (u == j->tail_unit) {
        dot_rows(W, j->a, j->astride, j->groups * 8, W->rows, j->T, j->Y, j->ldy);
        return;
    }
    const SaKernels *k = sa_kernels_for(j->T); /* decode and prefill may be served by different tables */
    const int t0 = (u / j->n_gu) * j->tb, n = SA_MIN(j->tb, j->T - t0);
    const int g0 = (u % j->n_gu) * j->gper, g1 = SA_MIN(j->groups, g0 + j->gper);
    if (sa_dtype_is_kx8(W->dtype)) {
        const int nb = W->cols / QK_K;
        const void *wg = (const uint8_t *)W->data + (size_t)g0 * 8 * W->row_bytes;
        k->type[W->dtype].gemm_x8(nb, g1 - g0, wg, (const uint8_t *)j->a + (size_t)t0 * j->astride, n,
                                  j->Y + (size_t)t0 * j->ldy + 8 * g0, (size_t)j->ldy);
        return;
    }
    const int nb = W->cols / QK8_0;
    const size_t o = (size_t)t0 * nb;
    const SaQ8Act a = {j->act->q + o, j->act->d + o, j->act->s8 + o, j->act->x8 ? j->act->x8 + (size_t)t0 / 8 * nb : NULL};
    float *y = j->Y + (size_t)t0 * j->ldy + 8 * g0;
    const void *wg = (const uint8_t *)W->data + (size_t)g0 * 8 * W->row_bytes;
    if (W->dtype == SA_Q4_0) k->gemm_q4_0x8(nb, g1 - g0, wg, &a, n, y, (size_t)j->ldy);
    else k->gemm_q8_0x8(nb, g1 - g0, wg, &a, n, y, (size_t)j->ldy);
}

static void matmul_packed(const SaMat *W, const SaQ8Act *act, size_t astride, int T, float *Y, int ldy) {
    const int groups = W->rows / 8;
    const size_t group_bytes = 8 * W->row_bytes;
    const int nth = threads_for((size_t)W->rows * W->cols * T);
    MatJob j = {.W = W, .a = act->q, .astride = astride, .act = act, .Y = Y, .T = T, .ldy = ldy, .groups = groups};
    j.tb = token_chunk(W->cols, astride, T);
    const int n_tu = (T + j.tb - 1) / j.tb;
    int gper;
    if (T <= SA_PF_MAX_T) {
        /* decode and small batches: every weight byte is read once from memory, and the
         * kernels prefetch far ahead within their run of groups, so runs must be long: two per
         * thread (a preempted thread's second run is taken by another), one on one thread. Runs
         * of 64 KiB ran the 1B model 15-20% slower: each run starts with a cold stream. */
        gper = nth == 1 ? groups : (groups + 2 * nth - 1) / (2 * nth);
    } else {
        gper = (int)SA_MAX(2, (64u << 10) / group_bytes);
        gper = SA_MIN(gper, SA_MAX(2, groups / (4 * nth))); /* at least ~4 units per thread */
    }
    j.gper = (gper + 1) & ~1;
    j.n_gu = (groups + j.gper - 1) / j.gper;
    const int tail = groups * 8 < W->rows; /* rows after the last full group: one extra unit */
    j.tail_unit = tail ? n_tu * j.n_gu : -1;
    sa_parallel(nth, n_tu * j.n_gu + tail, packed_unit, &j);
}

static void plain_unit(void *ctx, int u, int thread) {
    (void)thread;
    const MatJob *j = ctx;
    const int r0 = u * j->rows_per_unit, r1 = SA_MIN(j->W->rows, r0 + j->rows_per_unit);
    dot_rows(j->W, j->a, j->astride, r0, r1, j->T, j->Y, j->ldy);
}

typedef struct {
    const SaMat *W;
    const float *X;
    void *xq;          /* converted activations, rows `arow` bytes apart */
    size_t arow;
    float *xd;
    int32_t *xs;
    SaQ8x8 *x8; /* NULL: not wanted */
    float *wf;
    int r0, T;
} PrepJob;

/* Convert activation rows to the weight's activation type (and the extras for the packed
 * Q8_0-activation kernels): one row per unit, or one SaQ8x8 tile of 8 rows when grouping, so
 * that no two threads write the same tile's lines (per-row units put the grouping at 2.3% of a
 * 2-thread 1B prefill, against 0.6% on one thread). */
static void quant_unit(void *ctx, int u, int thread) {
    (void)thread;
    const PrepJob *j = ctx;
    const int cols = j->W->cols, nb = cols / QK8_0;
    const int t0 = j->x8 ? 8 * u : u, t1 = j->x8 ? SA_MIN(j->T, t0 + 8) : u + 1;
    for (int t = t0; t < t1; t++) {
        void *q = (uint8_t *)j->xq + (size_t)t * j->arow;
        sa_k->type[sa_dtype_tr(j->W->dtype)->vec_dot_type].from_float(j->X + (size_t)t * cols, q, cols);
        if (j->W->packed && !sa_dtype_is_kx8(j->W->dtype)) sa_q8_act_extras(q, nb, j->xd + (size_t)t * nb, j->xs + (size_t)t * nb);
        if (j->x8) sa_q8_act_x8_put(q, j->xd + (size_t)t * nb, j->xs + (size_t)t * nb, nb, t, j->x8);
    }
    for (int t = t1; j->x8 && t % 8; t++) sa_q8_act_x8_put(NULL, NULL, NULL, nb, t, j->x8); /* the last tile's padding */
}

#ifdef SALIGN_BLAS
static void widen_unit(void *ctx, int r, int thread) {
    (void)thread;
    const PrepJob *j = ctx;
    const SaMat *W = j->W;
    sa_dequantize_row(W->dtype, (const uint8_t *)W->data + (size_t)(j->r0 + r) * W->row_bytes, j->wf + (size_t)r * W->cols,
                      W->cols);
}

/* F16/BF16 weights for a batch: widen a slab of rows to f32 (parallel), then sgemm on it. The
 * widening is O(rows * cols), the product O(rows * cols * T), so for T >= 8 the sgemm wins. */
static int matmul_widen_sgemm(const SaMat *W, const float *X, int T, float *Y, int ldy) {
    const int cols = W->cols;
    const int slab = SA_MAX(64, (int)((2u << 20) / ((size_t)cols * sizeof(float)))) & ~15;
    float *wf = malloc((size_t)slab * cols * sizeof(float));
    if (!wf) return -1;
    for (int r0 = 0; r0 < W->rows; r0 += slab) {
        const int n = SA_MIN(slab, W->rows - r0);
        PrepJob j = {.W = W, .wf = wf, .r0 = r0};
        sa_parallel(threads_for((size_t)n * cols), n, widen_unit, &j);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, cols, 1.0f, X, cols, wf, cols, 0.0f, Y + r0, ldy);
    }
    free(wf);
    return 0;
}
#endif

void sa_matmul(const SaMat *W, const float *X, int T, float *Y, int ldy, void *scratch) {
    const int cols = W->cols, rows = W->rows;
#ifdef SALIGN_BLAS
    /* sgemm for a batch of float weights; a tiny product on one thread (OpenBLAS's threading
     * costs more than it saves there: stories260K prefill ran 2x slower with 2 threads) */
    if (W->dtype == SA_F32 && T >= 8 && blas_fits()) {
        const int small = (size_t)rows * cols * T < BLAS_MIN_WORK && sa_get_threads() > 1 && !sa_addr_space_limited();
        if (small) openblas_set_num_threads(1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, cols, 1.0f, X, cols, W->data, cols, 0.0f, Y, ldy);
        if (small) openblas_set_num_threads(sa_get_threads());
        return;
    }
    if ((W->dtype == SA_F16 || W->dtype == SA_BF16) && T >= 8 && (size_t)rows * cols * T >= BLAS_MIN_WORK &&
        blas_fits() && matmul_widen_sgemm(W, X, T, Y, ldy) == 0)
        return;
#endif
    /* activations: used as they are for the float types; else converted once per row into
     * scratch (in parallel for a batch) */
    const SaDtype vt = (SaDtype)sa_dtype_tr(W->dtype)->vec_dot_type;
    const size_t arow = vt == SA_F32 ? (size_t)cols * sizeof(float) : sa_row_bytes(vt, cols);
    void *xq = scratch;
    float *xd = (float *)((uint8_t *)scratch + xq_bytes(T, cols));
    int32_t *xs = (int32_t *)((uint8_t *)xd + xf_bytes(T, cols));
    /* Q4_0 batches: also grouped 8 tokens to a block, while each token's blocks are in cache
     * (SaQ8x8: the AVX-512 tile reads it; the copy costs less than the quantization) */
    SaQ8x8 *x8 = W->packed && W->dtype == SA_Q4_0 && T > SA_PF_MAX_T ? (SaQ8x8 *)((uint8_t *)xs + xf_bytes(T, cols)) : NULL;
    const SaQ8Act act = {xq, xd, xs, x8};
    if (vt != SA_F32) {
        PrepJob pj = {.W = W, .X = X, .xq = xq, .arow = arow, .xd = xd, .xs = xs, .x8 = x8, .T = T};
        sa_parallel(threads_for((size_t)T * cols * 64), x8 ? (T + 7) / 8 : T, quant_unit, &pj);
    }
    if (W->packed) {
        matmul_packed(W, &act, arow, T, Y, ldy);
        return;
    }
    const int nth = threads_for((size_t)rows * cols * T);
    /* whole 64-byte lines of Y per unit, about 4 units per thread */
    const int rpu = SA_MAX(16, ((rows + 4 * nth - 1) / (4 * nth) + 15) & ~15);
    MatJob j = {.W = W, .a = vt == SA_F32 ? (const void *)X : xq, .astride = arow, .Y = Y, .T = T, .ldy = ldy,
                .rows_per_unit = rpu};
    sa_parallel(nth, (rows + rpu - 1) / rpu, plain_unit, &j);
}
