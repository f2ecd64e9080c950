/* kernbench.c - one weight type's dot kernels, table against table, on one thread.
 *
 *   make build/bench-bin/kernbench
 *   build/bench-bin/kernbench TYPE [ROWS COLS T REPS]     default 8192 4096 1 9
 *
 * Times what sa_matmul runs for a matrix that is not repacked (the type's `gemm` entry over all
 * rows, after converting the T activation rows with the table's `from_float`), for every kernel
 * table this CPU runs (scalar, avx2, avx512), in CPU time (CLOCK_THREAD_CPUTIME_ID: a shared
 * machine's preemption is not counted), the tables alternated within each repetition so that a
 * change in the machine's load hits them alike; prints the best repetition of each as weight
 * GB/s (T = 1: the decode GEMV, read from memory when the matrix is larger than the L3) and
 * as multiply-adds per ns, and the ratio to the first table. The weights are a quantized block
 * of 64 random rows repeated: the speed does not depend on the values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../simd/kernels.h"
#include "../../src/dtype.h"

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: kernbench TYPE [ROWS COLS T REPS]\n");
        return 1;
    }
    sa_kernels_init();
    int dt = -1;
    for (int t = 0; t < SA_DTYPE_COUNT; t++)
        if (sa_dtype_name((SaDtype)t) && strcmp(sa_dtype_name((SaDtype)t), argv[1]) == 0) dt = t;
    if (dt < 0 || !sa_dtype_tr((SaDtype)dt)->from_float) {
        fprintf(stderr, "kernbench: %s: not a quantizable type\n", argv[1]);
        return 1;
    }
    const int rows = argc > 2 ? atoi(argv[2]) : 8192, cols = argc > 3 ? atoi(argv[3]) : 4096;
    const int T = argc > 4 ? atoi(argv[4]) : 1, reps = argc > 5 ? atoi(argv[5]) : 9;
    const SaDtype vt = (SaDtype)sa_dtype_tr((SaDtype)dt)->vec_dot_type;
    const size_t wrow = sa_row_bytes((SaDtype)dt, cols), arow = sa_row_bytes(vt, cols);
    if (rows < 64 || cols % 256 || T < 1 || reps < 1 || !wrow) {
        fprintf(stderr, "kernbench: ROWS >= 64, COLS a multiple of 256, T >= 1\n");
        return 1;
    }
    uint8_t *w = malloc((size_t)rows * wrow), *a = malloc((size_t)T * arow);
    float *x = malloc((size_t)T * cols * sizeof *x), *y = malloc((size_t)T * rows * sizeof *y);
    float *tmp = malloc((size_t)cols * sizeof *tmp);
    if (!w || !a || !x || !y || !tmp) return 1;
    unsigned s = 1;
    for (int r = 0; r < 64; r++) {
        for (int i = 0; i < cols; i++) tmp[i] = frand(&s);
        sa_quantize_row((SaDtype)dt, tmp, w + (size_t)r * wrow, cols);
    }
    for (int r = 64; r < rows; r++) memcpy(w + (size_t)r * wrow, w + (size_t)(r % 64) * wrow, wrow);
    for (size_t i = 0; i < (size_t)T * cols; i++) x[i] = frand(&s);

    const SaKernels *tab[8];
    const int nt = sa_kernels_available(tab, 8);
    double best[8];
    for (int k = 0; k < nt; k++) best[k] = 1e30;
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < nt; k++) {
            const SaTypeKernels *K = &tab[k]->type[dt];
            const double t0 = cpu_s();
            for (int t = 0; t < T; t++) tab[k]->type[vt].from_float(x + (size_t)t * cols, a + (size_t)t * arow, cols);
            K->gemm(cols, rows, w, wrow, a, arow, T, y, (size_t)rows);
            const double dt_s = cpu_s() - t0;
            if (dt_s < best[k]) best[k] = dt_s;
        }
    printf("%s %d x %d, T = %d, best of %d (CPU time, one thread):\n", argv[1], rows, cols, T, reps);
    for (int k = 0; k < nt; k++)
        printf("  %-8s %8.3f ms  %6.2f GB/s  %7.2f MAC/ns  %5.2fx\n", tab[k]->name, best[k] * 1e3,
               (double)rows * wrow / best[k] * 1e-9, (double)rows * cols * T / best[k] * 1e-9, best[0] / best[k]);
    free(w), free(a), free(x), free(y), free(tmp);
    return 0;
}
