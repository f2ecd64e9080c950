/* matmul.c - the matrix products of the forward pass.
 *
 * Quantized weights (Q4_0, Q8_0, Q4_K, Q6_K) are repacked at load time, in place, into 8-row interleaved
 * groups (simd/kernels.h explains the layout): the kernels then produce 8 rows per pass with
 * one shared activation load and no horizontal sums, which is what lets decode run at memory
 * speed instead of being bound by the unpacking arithmetic. Activations are quantized to the
 * weight type's activation type (Q8_0, Q8_K, ...) once per matmul (plus per-block sums for Q4_0).
 *
 * Threads come from the pool below (sa_parallel). Work units are runs of groups (>= 64 KiB of
 * weights: long sequential streams; whole 64-byte lines of Y: no false sharing) times a chunk
 * of tokens. Decode (T = 1) and small batches (T <= SA_PF_MAX_T: speculative verification)
 * stream every weight once, prefetching, in one or two long runs per thread. Prefill: the
 * kernels take 2-6 tokens per weight pass, and tokens are processed in chunks whose quantized
 * activations stay in L2 while the weights stream past. F32 weights use OpenBLAS sgemm, and F16/BF16 weights are
 * widened to f32 a slab of rows at a time for it.
 *
 * Rows beyond the last full group of 8 (and matrices that are not repacked: mmapped files)
 * use the one-row dot kernels. Either way a row's value depends only on its own data, never on
 * the thread count or the batch size. */
#include "matmul.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../simd/kernels.h"
#include "common.h"
#ifdef SALIGN_BLAS
#include <cblas.h>
#endif

/* ---- the thread pool ----
 * One parallel step per matmul (and per attention block) is tens of microseconds of work for a
 * 1B model at decode, so waking threads must cost well under a microsecond; and on these small
 * shared VMs the other vCPU is often busy with another process: a waiter that only spins (what
 * libgomp does by default) then burns its time slice while the thread it waits for is not
 * running, and a 2-thread decode ran 5x slower than 1 thread in our measurements.
 *
 * So: idle workers spin briefly, then sched_yield() (lets a preempted peer run), then sleep on a
 * condition variable. Work is handed out unit by unit from an atomic counter. And the caller
 * never waits for a worker that has not started: a worker must *join* the job (a CAS on one
 * word holding the job's generation, a "closed" bit and the count of joined workers); when the
 * caller runs out of units it closes the job and waits only for the workers that joined, which
 * are each finishing one unit. A worker that was not scheduled in time simply misses the job,
 * and the step runs at one-thread speed instead of stalling. The caller of sa_parallel is
 * thread 0. */

#define POOL_MAX 64
#define JOB_ACTIVE 0xFFFFFFFFull /* joined workers still running */
#define JOB_CLOSED (1ull << 32)  /* no more joins */
#define JOB_GEN_SHIFT 33         /* the job's generation above */

typedef struct {
    pthread_t tid[POOL_MAX];
    int n_workers;             /* threads besides the caller */
    _Atomic uint64_t job;      /* generation << 33 | closed << 32 | joined-and-running count */
    atomic_int next;           /* next unit to run */
    atomic_int sleepers;       /* workers blocked on cv */
    int n_units, nth;          /* current job: units, threads allowed (caller included) */
    uint64_t start_gen;        /* generation when the newest workers were created */
    SaTaskFn fn;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} Pool;

static Pool g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static int g_threads = 1;

/* Busy-wait iterations before yielding, and yields before sleeping. The spin covers the gap
 * between two matmuls of a decode step (a norm, a rope: a few microseconds). */
#define SPIN_ITERS 20000
#define YIELD_ITERS 100

static void run_units(Pool *p, int self) {
    for (;;) {
        const int u = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (u >= p->n_units) break;
        p->fn(p->ctx, u, self);
    }
}

static inline uint64_t job_gen(uint64_t w) { return w >> JOB_GEN_SHIFT; }

static void *worker(void *arg) {
    Pool *p = &g_pool;
    const int self = (int)(intptr_t)arg; /* 1 .. n_workers */
    uint64_t seen = p->start_gen;
    for (;;) {
        uint64_t w;
        int spins = 0;
        while (job_gen(w = atomic_load_explicit(&p->job, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ITERS) continue;
            if (spins < SPIN_ITERS + YIELD_ITERS) {
                sched_yield();
                continue;
            }
            atomic_fetch_add(&p->sleepers, 1);
            pthread_mutex_lock(&p->mu);
            while (job_gen(w = atomic_load(&p->job)) == seen) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            break;
        }
        seen = job_gen(w);
        /* join the job unless it was closed (or replaced) meanwhile */
        int joined = 0;
        while (!(w & JOB_CLOSED) && job_gen(w) == seen) {
            if (atomic_compare_exchange_weak(&p->job, &w, w + 1)) {
                joined = 1;
                break;
            }
        }
        if (!joined) continue;
        if (self < p->nth) run_units(p, self);
        atomic_fetch_sub_explicit(&p->job, 1, memory_order_release);
    }
    return NULL;
}

static void pool_grow(int n_workers) {
    Pool *p = &g_pool;
    p->start_gen = job_gen(atomic_load(&p->job)); /* pthread_create orders this before the thread runs */
    while (p->n_workers < n_workers && p->n_workers < POOL_MAX - 1) {
        if (pthread_create(&p->tid[p->n_workers], NULL, worker, (void *)(intptr_t)(p->n_workers + 1)) != 0) break;
        pthread_detach(p->tid[p->n_workers]);
        p->n_workers++;
    }
}

void sa_parallel(int nth, int n_units, SaTaskFn fn, void *ctx) {
    Pool *p = &g_pool;
    if (nth > g_threads) nth = g_threads;
    if (nth > n_units) nth = n_units;
    if (nth > 1 && p->n_workers < nth - 1) pool_grow(nth - 1);
    if (nth > p->n_workers + 1) nth = p->n_workers + 1;
    if (nth <= 1) {
        for (int u = 0; u < n_units; u++) fn(ctx, u, 0);
        return;
    }
    /* the previous job is closed with no worker inside: its fields are free to rewrite */
    p->fn = fn;
    p->ctx = ctx;
    p->n_units = n_units;
    p->nth = nth;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    const uint64_t gen = job_gen(atomic_load(&p->job)) + 1;
    atomic_store(&p->job, gen << JOB_GEN_SHIFT); /* publish (seq_cst: before reading sleepers) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_units(p, 0);
    /* every unit is taken: close the job and wait for the workers that joined it */
    atomic_fetch_or(&p->job, JOB_CLOSED);
    for (int spins = 0; atomic_load_explicit(&p->job, memory_order_acquire) & JOB_ACTIVE;)
        if (++spins > 2000) sched_yield(); /* a joined worker was preempted: let it run */
}

#ifdef SALIGN_BLAS
/* 1 when the process runs under a finite address-space limit (BLAS is then kept to one thread and
 * called only when its buffer fits; see sa_blas_process_init). */
static int as_limited(void) {
    struct rlimit rl;
    return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

#endif

void sa_blas_process_init(char **argv) {
#ifdef SALIGN_BLAS
    if (!as_limited() || getenv("OPENBLAS_NUM_THREADS")) return;
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
#else
    (void)argv;
#endif
}

#ifdef SALIGN_BLAS
/* Whether OpenBLAS can get its working buffer (128 MiB on these CPUs; it retries forever when it
 * cannot). Unlimited: always. Limited: once a probe reservation of twice that succeeded, OpenBLAS
 * has kept its buffer since, so later calls are safe too. */
static int blas_fits(void) {
    static atomic_int ok;
    if (atomic_load(&ok)) return 1;
    if (as_limited()) {
        const size_t need = (size_t)256 << 20;
        void *p = mmap(NULL, need, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return 0;
        munmap(p, need);
    }
    atomic_store(&ok, 1);
    return 1;
}
#endif

void sa_set_threads(int n) {
    g_threads = n > 0 ? SA_MIN(n, POOL_MAX) : 1;
    omp_set_num_threads(g_threads);
#ifdef SALIGN_BLAS
    /* under an address-space limit every extra OpenBLAS thread is another 128 MiB buffer */
    openblas_set_num_threads(as_limited() ? 1 : g_threads);
#endif
}

int sa_get_threads(void) { return g_threads; }

/* Scratch: the activations converted to the weight's activation type (sized for the widest
 * block type, whichever the matrix needs), then per Q8_0 block its scale as a float and 8 * its
 * quant sum (SaQ8Act, for the repacked kernels), each part 64-byte aligned. */
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

size_t sa_matmul_scratch_bytes(int T, int cols) { return xq_bytes(T, cols) + 2 * xf_bytes(T, cols) + 64; }

/* ---- repacking ---- */

/* Q4_0/Q8_0 (BlockQ4_0x8, BlockQ8_0x8) and Q4_K/Q6_K (BlockQ4_Kx8, BlockQ6_Kx8: a Q4_K_M file is
 * these two; with the one-row reference kernels its 1B decode ran at 0.7 t/s, with the x8 tiles at
 * ~25 t/s on Zen 5, tools/bench/RESULTS.md). The K-quants need whole super-blocks per row. */
static int is_kx8(SaDtype t) { return t == SA_Q4_K || t == SA_Q6_K; }
static int packable(const SaMat *W) {
    if (W->rows < 8 || W->packed) return 0;
    if (W->dtype == SA_Q4_0 || W->dtype == SA_Q8_0) return W->cols % 32 == 0;
    return is_kx8(W->dtype) && W->cols % QK_K == 0;
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
    if (!packable(W)) return 0;
    const int nth = sa_get_threads();
    PackJob j = {W, malloc((size_t)nth * 8 * W->row_bytes)};
    if (!j.tmp) return sa_err("out of memory repacking a %d x %d matrix", W->rows, W->cols);
    const int units = (W->rows / 8 + PACK_GROUPS_PER_UNIT - 1) / PACK_GROUPS_PER_UNIT;
    sa_parallel(W->rows >= 1024 ? nth : 1, units, pack_unit, &j);
    free(j.tmp);
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
    if (is_kx8(W->dtype)) { /* one super-block at a time, back in ggml's layout */
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

/* ---- products ---- */

/* Below this many multiply-adds one thread is faster than waking the others (handing out a
 * job costs about a microsecond; 2^17 int8 MACs take a few on one core). */
#define PAR_MIN_WORK (1 << 17)

#define BLAS_MIN_WORK (1u << 22)

static int threads_for(size_t work) { return work >= PAR_MIN_WORK ? g_threads : 1; }

/* Rows r0..r1 (plain layout) times all T tokens: the weight type's gemm entry. `a`: activation
 * row 0 in the type's activation type, rows `astride` bytes apart. */
static void dot_rows(const SaMat *W, const void *a, size_t astride, int r0, int r1, int T, float *Y, int ldy) {
    if (r1 <= r0) return;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r0 * W->row_bytes;
    sa_k->type[W->dtype].gemm(W->cols, r1 - r0, w, W->row_bytes, a, astride, T, Y + r0, (size_t)ldy);
}

/* Tokens per chunk for the packed kernels: the chunk's quantized activations (and extras)
 * should stay in L2 (~256 KiB budget) while the weights stream past them. A multiple of 12,
 * so the kernels' token tiles (2, 4 or 6 tokens per pass) divide it. */
static int token_chunk(int cols, size_t astride, int T) {
    const size_t per_token = astride + (size_t)(cols / QK8_0) * 2 * sizeof(float);
    int tb = (int)((256u << 10) / per_token) / 12 * 12;
    if (tb < 12) tb = 12;
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
    const SaKernels *k = sa_k;
    const int t0 = (u / j->n_gu) * j->tb, n = SA_MIN(j->tb, j->T - t0);
    const int g0 = (u % j->n_gu) * j->gper, g1 = SA_MIN(j->groups, g0 + j->gper);
    if (is_kx8(W->dtype)) {
        const int nb = W->cols / QK_K;
        const void *wg = (const uint8_t *)W->data + (size_t)g0 * 8 * W->row_bytes;
        k->type[W->dtype].gemm_x8(nb, g1 - g0, wg, (const uint8_t *)j->a + (size_t)t0 * j->astride, n,
                                  j->Y + (size_t)t0 * j->ldy + 8 * g0, (size_t)j->ldy);
        return;
    }
    const int nb = W->cols / QK8_0;
    const size_t o = (size_t)t0 * nb;
    const SaQ8Act a = {j->act->q + o, j->act->d + o, j->act->s8 + o};
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
    float *wf;
    int r0, T;
} PrepJob;

/* Convert one activation row to the weight's activation type (and the extras for the packed
 * Q8_0-activation kernels). */
static void quant_unit(void *ctx, int t, int thread) {
    (void)thread;
    const PrepJob *j = ctx;
    const int cols = j->W->cols, nb = cols / QK8_0;
    void *q = (uint8_t *)j->xq + (size_t)t * j->arow;
    sa_k->type[sa_dtype_tr(j->W->dtype)->vec_dot_type].from_float(j->X + (size_t)t * cols, q, cols);
    if (j->W->packed && !is_kx8(j->W->dtype)) sa_q8_act_extras(q, nb, j->xd + (size_t)t * nb, j->xs + (size_t)t * nb);
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
        const int small = (size_t)rows * cols * T < BLAS_MIN_WORK && g_threads > 1 && !as_limited();
        if (small) openblas_set_num_threads(1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, cols, 1.0f, X, cols, W->data, cols, 0.0f, Y, ldy);
        if (small) openblas_set_num_threads(g_threads);
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
    const SaQ8Act act = {xq, xd, xs};
    if (vt != SA_F32) {
        PrepJob pj = {.W = W, .X = X, .xq = xq, .arow = arow, .xd = xd, .xs = xs};
        sa_parallel(threads_for((size_t)T * cols * 64), T, quant_unit, &pj);
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
