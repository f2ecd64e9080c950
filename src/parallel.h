/* parallel.h - the thread count (-t) and the pool that splits one step's work over threads. */
#ifndef SALIGN_PARALLEL_H
#define SALIGN_PARALLEL_H

/* Run fn(ctx, unit, thread) for every unit in [0, n_units) on up to nth threads (at most
 * sa_get_threads(); the caller is thread 0, the others come from a pool that spins, yields,
 * then sleeps between jobs). Units are handed out one at a time from a shared counter, so a
 * thread that is preempted delays the job by one unit. Returns when every unit has run. Not
 * reentrant: call it from one thread at a time, never from inside fn. */
typedef void (*SaTaskFn)(void *ctx, int unit, int thread);
void sa_parallel(int nth, int n_units, SaTaskFn fn, void *ctx);

/* Number of threads used by kernels (the pool, OpenMP and OpenBLAS); set once from -t. */
void sa_set_threads(int n);
int sa_get_threads(void);

/* Call first thing in main(). Under an address-space limit (ulimit -v) OpenBLAS's threads each
 * retry a 128 MiB buffer allocation forever - at start-up, before main(), and again at exit when
 * they are joined - so such a process is re-executed once with OPENBLAS_NUM_THREADS=1 (no worker
 * threads), and BLAS is then called only when its buffer fits (the own kernels serve otherwise).
 * Returns only if no re-exec was needed (or it failed). */
void sa_blas_process_init(char **argv);
/* 1 when the process runs under a finite address-space limit (BLAS is then kept to one thread and
 * called only when its buffer fits; see sa_blas_process_init). */
int sa_addr_space_limited(void);

#endif
