/* test_matmul.c - sa_matmul (src/matmul.c) against a naive reference, for every weight dtype,
 * repacked and plain layouts, odd row counts, token counts 1..33 and 1 or 2 threads.
 *
 *   - against a double-precision reference computed from the same inputs: for quantized weights
 *     the reference uses the activations quantized exactly as the runtime does (the kernels'
 *     quantizer is bit-identical to sa_quantize_act_q8_0), so only float rounding differs;
 *   - repacked Q4_0/Q8_0 (sa_mat_pack) gives bit-identical rows to the plain layout's scalar
 *     formula, whatever the thread count and whatever the batch size: token t of a batch equals
 *     the same token alone (what keeps batched and sequential decoding in step);
 *   - sa_mat_row reads a repacked row back exactly. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "../src/common.h"
#include "../src/matmul.h"
#include "../src/parallel.h"
#include "test.h"

static uint64_t g_rng = 12345;
static double unif(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}
static float normal(void) {
    const double u = unif(), v = unif();
    return (float)(sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v));
}

typedef struct {
    SaMat W;
    void *data;
    float *deq; /* rows x cols, the weights as the kernels see them */
} TestMat;

static void mat_make(TestMat *m, SaDtype dt, int rows, int cols) {
    m->W = (SaMat){.dtype = dt, .rows = rows, .cols = cols, .row_bytes = sa_row_bytes(dt, cols)};
    m->data = malloc(m->W.row_bytes * rows);
    m->deq = malloc((size_t)rows * cols * sizeof(float));
    float *row = malloc((size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        const float s = (float)(0.01 + unif());
        for (int c = 0; c < cols; c++) row[c] = normal() * s;
        uint8_t *dst = (uint8_t *)m->data + (size_t)r * m->W.row_bytes;
        sa_quantize_row(dt, row, dst, cols);
        sa_dequantize_row(dt, dst, m->deq + (size_t)r * cols, cols);
    }
    m->W.data = m->data;
    free(row);
}

static void mat_free(TestMat *m) {
    free(m->data);
    free(m->deq);
}

/* Y_ref[t][r] in double from the weights as stored and X as the kernels consume it. */
static void reference(const TestMat *m, const float *X, int T, double *Y) {
    const int rows = m->W.rows, cols = m->W.cols;
    const SaDtype vt = (SaDtype)sa_dtype_tr(m->W.dtype)->vec_dot_type; /* Q8_0, Q8_1, Q8_K or f32 */
    const int quant = vt != SA_F32;
    float *xs = malloc((size_t)cols * sizeof(float));
    void *q = malloc(sa_row_bytes(vt, cols) + 64);
    for (int t = 0; t < T; t++) {
        if (quant) {
            /* activations as the matmul quantizes them (Q8_0: ggml's CPU rounding, not the weights') */
            if (vt == SA_Q8_0) sa_quantize_act_q8_0(X + (size_t)t * cols, q, cols);
            else sa_quantize_row(vt, X + (size_t)t * cols, q, cols);
            sa_dequantize_row(vt, q, xs, cols);
        } else {
            memcpy(xs, X + (size_t)t * cols, (size_t)cols * sizeof(float));
        }
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double)m->deq[(size_t)r * cols + c] * xs[c];
            Y[(size_t)t * rows + r] = s;
        }
    }
    free(xs);
    free(q);
}

static double nmse_d(const float *y, const double *ref, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += (y[i] - ref[i]) * (y[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

/* Run W x X with `threads` threads; Y is T x ldy with ldy = rows + 3 (a padded stride). */
static float *run(const SaMat *W, const float *X, int T, int threads) {
    const int ldy = W->rows + 3;
    float *Y = malloc((size_t)T * ldy * sizeof(float));
    for (int i = 0; i < T * ldy; i++) Y[i] = -999.0f;
    void *scratch = sa_aligned_alloc(sa_matmul_scratch_bytes(T, W->cols));
    sa_set_threads(threads);
    sa_matmul(W, X, T, Y, ldy, scratch);
    sa_set_threads(1);
    free(scratch);
    /* the padding between rows of Y is never written */
    for (int t = 0; t < T; t++)
        for (int j = W->rows; j < ldy; j++)
            if (Y[(size_t)t * ldy + j] != -999.0f) {
                test_fail(__FILE__, __LINE__, "sa_matmul wrote outside its %d rows (t=%d, col %d)", W->rows, t, j);
                return Y;
            }
    return Y;
}

static void check_shape(SaDtype dt, int rows, int cols, int T) {
    TestMat m;
    mat_make(&m, dt, rows, cols);
    const int quant = sa_dtype_tr(dt)->block > 1;
    const int packs = (dt == SA_Q4_0 || dt == SA_Q8_0 || ((dt == SA_Q4_K || dt == SA_Q6_K) && cols % QK_K == 0)) && rows >= 8;
    float *X = malloc((size_t)T * cols * sizeof(float));
    for (int i = 0; i < T * cols; i++) X[i] = normal();
    double *ref = malloc((size_t)T * rows * sizeof(double));
    reference(&m, X, T, ref);
    const int ldy = rows + 3;
    float *yp = malloc((size_t)T * rows * sizeof(float));
    for (int pack = 0; pack < 2; pack++) {
        const char *lay = pack ? "packed" : "plain";
        if (pack) {
            CHECK(sa_mat_pack(&m.W) == 0);
            CHECKF(m.W.packed == packs, "%s %dx%d: packed = %d", sa_dtype_name(dt), rows, cols, m.W.packed);
        }
        float *Y[2];
        for (int th = 1; th <= 2; th++) {
            Y[th - 1] = run(&m.W, X, T, th);
            for (int t = 0; t < T; t++)
                memcpy(yp + (size_t)t * rows, Y[th - 1] + (size_t)t * ldy, (size_t)rows * sizeof(float));
            const double e = nmse_d(yp, ref, T * rows);
            /* Q8_1 activations (Q4_1, Q5_1) carry d * (their quant sum) rounded to fp16, which the
             * dequantized activations do not show: allow that rounding */
            CHECKF(e < (sa_dtype_tr(dt)->vec_dot_type == SA_Q8_1 ? 1e-5 : 1e-9), "%s %s %dx%d T=%d threads=%d: NMSE %g against the double reference", sa_dtype_name(dt), lay, rows,
                   cols, T, th, e);
        }
        /* threads change nothing but speed (the float types' sgemm path is OpenBLAS's business) */
        if (quant || T < 8)
            CHECKF(memcmp(Y[0], Y[1], (size_t)T * ldy * sizeof(float)) == 0, "%s %s %dx%d T=%d: 2 threads differ from 1",
                   sa_dtype_name(dt), lay, rows, cols, T);
        /* batch invariance: a token alone gives the same floats as inside the batch */
        if (quant) {
            for (int t = 0; t < T; t += SA_MAX(1, T / 3)) {
                float *Y1 = run(&m.W, X + (size_t)t * cols, 1, 1);
                CHECKF(memcmp(Y1, Y[0] + (size_t)t * ldy, (size_t)rows * sizeof(float)) == 0,
                       "%s %s %dx%d: token %d of a batch of %d differs from the same token alone", sa_dtype_name(dt), lay,
                       rows, cols, t, T);
                free(Y1);
            }
        }
        free(Y[0]);
        free(Y[1]);
    }
    /* rows read back through any layout */
    float *row = malloc((size_t)cols * sizeof(float));
    int ok = 1;
    for (int r = 0; r < rows; r++) {
        sa_mat_row(&m.W, r, row);
        ok &= memcmp(row, m.deq + (size_t)r * cols, (size_t)cols * sizeof(float)) == 0;
    }
    CHECKF(ok, "%s %dx%d: sa_mat_row differs from the original rows", sa_dtype_name(dt), rows, cols);
    free(row);
    free(yp);
    free(ref);
    free(X);
    mat_free(&m);
}

TEST(matmul_against_reference) {
    static const SaDtype types[] = {SA_Q4_0, SA_Q8_0, SA_F16, SA_BF16, SA_F32};
    static const int rows[] = {1, 7, 8, 13, 16, 40, 100, 264};
    static const int cols[] = {32, 96, 320, 2048};
    static const int Ts[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 33};
    int n = 0;
    for (size_t ti = 0; ti < SA_ARRAY_LEN(types); ti++)
        for (size_t ri = 0; ri < SA_ARRAY_LEN(rows); ri++)
            for (size_t ci = 0; ci < SA_ARRAY_LEN(cols); ci++) {
                /* all token counts on small shapes, a rotating few on the big ones */
                for (size_t k = 0; k < SA_ARRAY_LEN(Ts); k++) {
                    if (cols[ci] * rows[ri] > 4000 && (k + ri + ci) % 4) continue;
                    check_shape(types[ti], rows[ri], cols[ci], Ts[k]);
                    n++;
                }
            }
    printf("    %d shapes x {plain, packed} x {1, 2 threads}\n", n);
}

/* The other block types: Q4_K / Q6_K repacked into x8 groups (kernels.h), the rest on the row
 * kernels; the same checks (double reference, threads, batch invariance, sa_mat_row back). */
TEST(matmul_block_types) {
    static const SaDtype types[] = {SA_Q4_K, SA_Q6_K, SA_Q5_K, SA_Q4_1, SA_Q5_0, SA_Q5_1, SA_Q2_K, SA_Q3_K, SA_IQ4_NL, SA_IQ4_XS};
    static const int rows[] = {7, 8, 24, 40};
    static const int cols[] = {256, 512, 2048};
    static const int Ts[] = {1, 2, 3, 5, 9, 13};
    int n = 0;
    for (size_t ti = 0; ti < SA_ARRAY_LEN(types); ti++)
        for (size_t ri = 0; ri < SA_ARRAY_LEN(rows); ri++)
            for (size_t ci = 0; ci < SA_ARRAY_LEN(cols); ci++)
                for (size_t k = 0; k < SA_ARRAY_LEN(Ts); k++) {
                    if ((k + ri + ci) % 3) continue;
                    check_shape(types[ti], rows[ri], cols[ci], Ts[k]);
                    n++;
                }
    check_shape(SA_Q4_K, 1000, 512, 70); /* many work units, prefill-sized */
    check_shape(SA_Q6_K, 264, 1024, 33);
    check_shape(SA_Q3_K, 100, 512, 70); /* past the 64 tokens of a low-bit GEMM pass (simd/lowbit_x86.h) */
    printf("    %d shapes x {plain, packed} x {1, 2 threads}\n", n + 3);
}

/* A large packed matrix split over threads in many work units, prefill-sized T. */
TEST(matmul_packed_large) {
    check_shape(SA_Q4_0, 1000, 512, 70);
    check_shape(SA_Q8_0, 1000, 512, 70);
    check_shape(SA_Q4_0, 4096, 256, 1);
    /* K = 8192: token chunks of 24 (units from token 24 and 48 start inside the grouped
     * SaQ8x8 activations), the last 22 tokens, 9 groups (an odd one after the pairs) */
    check_shape(SA_Q4_0, 72, 8192, 70);
}

/* ---- the thread pool ---- */

typedef struct {
    _Atomic int *count;
    _Atomic int *by_thread;
    int nth;
} PoolCheck;

static void pool_unit(void *ctx, int u, int thread) {
    PoolCheck *p = ctx;
    p->count[u]++; /* each unit runs once: no other thread touches this element */
    if (thread >= 0 && thread < 8) p->by_thread[thread]++;
}

/* Every unit runs exactly once per job and thread ids stay below the job's thread count,
 * across many back-to-back jobs and changing thread counts (the pool grows; workers beyond a
 * job's count sit it out); a job with fewer units than threads, and one with none. */
TEST(matmul_thread_pool) {
    enum { MAXU = 257 };
    _Atomic int count[MAXU], by_thread[8];
    static const int threads[] = {1, 2, 3, 2, 4, 1, 2};
    int ok = 1;
    for (size_t ti = 0; ti < SA_ARRAY_LEN(threads); ti++) {
        sa_set_threads(threads[ti]);
        for (int job = 0; job < 100 && ok; job++) {
            const int units = job % 7 == 0 ? job % 3 : 1 + (job * 37) % MAXU;
            for (int u = 0; u < MAXU; u++) count[u] = 0;
            for (int t = 0; t < 8; t++) by_thread[t] = 0;
            PoolCheck p = {count, by_thread, threads[ti]};
            sa_parallel(threads[ti], units, pool_unit, &p);
            for (int u = 0; u < MAXU; u++) ok &= count[u] == (u < units);
            for (int t = threads[ti]; t < 8; t++) ok &= by_thread[t] == 0;
            CHECKF(ok, "threads %d, job %d (%d units): a unit ran %s, or a thread id was out of range", threads[ti], job,
                   units, "not exactly once");
        }
    }
    sa_set_threads(1);
}
