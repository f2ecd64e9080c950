/* parallel.c - the thread count and the pool that runs each parallel step (sa_parallel).
 *
 * Everything that splits work over threads goes through here: the matmuls, the attention, the
 * repacking at load. The thread count set by -t also sizes OpenMP and OpenBLAS's own threads. */
#include "parallel.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

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

int sa_addr_space_limited(void) {
    struct rlimit rl;
    return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

void sa_blas_process_init(char **argv) {
#ifdef SALIGN_BLAS
    if (!sa_addr_space_limited() || getenv("OPENBLAS_NUM_THREADS")) return;
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
#else
    (void)argv;
#endif
}

void sa_set_threads(int n) {
    g_threads = n > 0 ? SA_MIN(n, POOL_MAX) : 1;
    omp_set_num_threads(g_threads);
#ifdef SALIGN_BLAS
    /* under an address-space limit every extra OpenBLAS thread is another 128 MiB buffer */
    openblas_set_num_threads(sa_addr_space_limited() ? 1 : g_threads);
#endif
}

int sa_get_threads(void) { return g_threads; }
