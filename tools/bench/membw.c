/* membw.c - read bandwidth of this machine's memory, the roofline of decoding.
 *
 *   membw [MiB] [threads...]      default: 1024 MiB buffer, 1 and 2 threads
 *
 * Each thread sums its own contiguous slice of an anonymous buffer (far larger than the L3),
 * the way the decode GEMV reads weights: one pass, sequential, read-only. Measured twice: with
 * ordinary 4 KiB pages and with transparent huge pages (madvise(MADV_HUGEPAGE); fewer TLB
 * misses: ~25% more read bandwidth on these VMs). Prints one line per thread count and page
 * size: "threads N: X.X GB/s (best of 7 x 2 loops, ... 4k pages)" (GB = 1e9 bytes), then the same by each
 * thread's CPU time, "cpu-time threads N: ..." (the bandwidth while the threads run: on a machine
 * shared with other work, the roof that `salign bench --cpu-time` is compared with). Built by
 * bench.sh with -O2 -march=native -fopenmp; the loop is plain C that the compiler vectorizes. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../../simd/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The decode kernels' own prefetch (simd/kernels.h, sa_prefetch_at: lines `dist` ahead plus the
 * page lead), so the prefetching loop below reads as they do; the lead's multiple is theirs. */
unsigned sa_pf_lead = SA_PF_LEAD;

/* 8 independent 64-bit lanes keep several loads in flight; xor is cheap enough to never be
 * the bottleneck. With `prefetch`, the loop also prefetches as the decode kernels do, 8 KiB
 * ahead (and its page lead 32 KiB ahead). On the Zen 5 VMs the page lead makes even this loop
 * read 20-40% faster, so the roof is the better of the two loops: decode must not look closer to
 * it than it is. */
static uint64_t read_slice(const uint64_t *p, size_t n, int prefetch) {
    uint64_t a[8] = {0};
    const char *end = (const char *)(p + n);
    for (size_t i = 0; i + 8 <= n; i += 8) {
        if (prefetch) sa_prefetch_at(p + i, 8192, 64, end);
        for (int k = 0; k < 8; k++) a[k] ^= p[i + k];
    }
    uint64_t s = 0;
    for (int k = 0; k < 8; k++) s ^= a[k];
    return s;
}

static void measure(const uint64_t *buf, size_t n, const int *tl, int nthr, size_t mib, const char *pages) {
    volatile uint64_t sink = 0;
    for (int ti = 0; ti < nthr; ti++) {
        const int th = tl[ti];
        double best = 1e30, best_cpu = 0;
        for (int rep = 0; rep < 14; rep++) { /* the plain and the prefetching loop in turn */
            double rate = 0; /* sum over threads of bytes / that thread's CPU time */
            const double t0 = now();
#pragma omp parallel num_threads(th) reduction(+ : rate)
            {
                const int id = omp_get_thread_num(), nt = omp_get_num_threads();
                const size_t per = (n / nt) & ~(size_t)7;
                const double c0 = thread_cpu();
                const uint64_t s = read_slice(buf + (size_t)id * per, per, rep & 1);
                rate += (double)per * 8 / (thread_cpu() - c0);
#pragma omp atomic
                sink ^= s;
            }
            const double dt = now() - t0;
            if (dt < best) best = dt;
            if (rate > best_cpu) best_cpu = rate;
        }
        printf("threads %d: %.1f GB/s (best of 7 x 2 loops, %zu MiB, %s pages)\n", th, (double)n * 8 / best / 1e9, mib, pages);
        printf("cpu-time threads %d: %.1f GB/s (best of 7 x 2 loops, %zu MiB, %s pages)\n", th, best_cpu / 1e9, mib, pages);
    }
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    if (mib < 64) mib = 64;
    const size_t n = mib * 1048576 / 8;
    int tl[16], nthr = 0;
    for (int i = 2; i < argc && nthr < 16; i++) tl[nthr++] = atoi(argv[i]);
    if (!nthr) {
        tl[0] = 1;
        tl[1] = 2;
        nthr = 2;
    }
    for (int huge = 0; huge < 2; huge++) {
        uint64_t *buf = aligned_alloc(2u << 20, n * 8);
        if (!buf) return fprintf(stderr, "membw: out of memory\n"), 1;
        if (huge) madvise(buf, n * 8, MADV_HUGEPAGE);
        else madvise(buf, n * 8, MADV_NOHUGEPAGE);
        for (size_t i = 0; i < n; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
        measure(buf, n, tl, nthr, mib, huge ? "2M" : "4k");
        free(buf);
    }
    return 0;
}
