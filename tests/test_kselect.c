/* test_kselect.c - per-op kernel selection (src/kselect.c, simd/dispatch.c):
 *   - with a stubbed clock that makes one candidate table faster for decode and the other for
 *     prefill, calibration picks exactly those, and sa_matmul's output is bit-identical to the
 *     scalar reference's either way (decode T = 1, a small batch, prefill);
 *   - the choice is cached (a second run of the same shape times nothing and keeps it, even when
 *     the clock would now say otherwise), a corrupt cache file is ignored (timed again, no crash),
 *     and a cache folder that cannot be created just means timing every time;
 *   - --kernels: bad specs are refused naming the flag, OP=TABLE forces one op;
 *   - the decode prefetch distance: the faster one by the stubbed clock is chosen, a tie keeps
 *     SA_PF_AHEAD, the choice is cached, --kernels prefetch=BYTES and SALIGN_PF_AHEAD force one,
 *     and the output is bit-identical at every candidate distance.
 * The candidates are two real SIMD tables with different GEMMs when the CPU has them (avx2 and
 * avx512, or the emulated avx512), else two stand-in tables calling the reference. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../simd/kernels.h"
#include "../src/common.h"
#include "../src/kselect.h"
#include "../src/matmul.h"
#include "../src/parallel.h"
#include "test.h"

#if defined(__x86_64__)
extern const SaKernels sa_kernels_avx512_emu __attribute__((weak));
#endif

static void stand_in_q4_a(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    sa_ref_gemm_q4_0x8(nb, ng, w, a, T, y, ldy);
}
static void stand_in_q4_b(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy) {
    sa_ref_gemm_q4_0x8(nb, ng, w, a, T, y, ldy);
}
static SaKernels g_stand_a, g_stand_b;

/* tables[0] the reference, [1] and [2] two candidates whose gemm_q4_0x8 differ */
static void pick_tables(const SaKernels **t) {
    const SaKernels *avail[10];
    int n = sa_kernels_available(avail, 8);
#if defined(__x86_64__)
    if (&sa_kernels_avx512_emu && n == 2 && !strcmp(avail[1]->name, "avx2")) avail[n++] = &sa_kernels_avx512_emu;
#endif
    t[0] = &sa_kernels_scalar;
    for (int i = 1; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (avail[i]->gemm_q4_0x8 != avail[j]->gemm_q4_0x8 && avail[i]->gemm_q4_0x8 != sa_kernels_scalar.gemm_q4_0x8 &&
                avail[j]->gemm_q4_0x8 != sa_kernels_scalar.gemm_q4_0x8) {
                t[1] = avail[i];
                t[2] = avail[j];
                return;
            }
    g_stand_a = g_stand_b = sa_kernels_scalar;
    g_stand_a.name = "stand_in_a";
    g_stand_b.name = "stand_in_b";
    g_stand_a.gemm_q4_0x8 = stand_in_q4_a;
    g_stand_b.gemm_q4_0x8 = stand_in_q4_b;
    t[1] = &g_stand_a;
    t[2] = &g_stand_b;
}

/* The stubbed clock: every reading advances by the cost of what serves gemm_q4_0x8 now, so a
 * measurement (two readings) costs what its last reading says. */
static const SaKernels *g_tabs[3];
static SaKernelOp g_op;
static double g_cost_dec[3], g_cost_pre[3], g_now;
static int g_readings;
static double stub_clock(void) {
    g_readings++;
    for (int i = 1; i < 3; i++) {
        if (sa_kernel_op_fn(&g_op, SA_KC_DECODE) == sa_kernel_fn(g_tabs[i], &g_op)) g_now += g_cost_dec[i];
        if (sa_kernel_op_fn(&g_op, SA_KC_PREFILL) == sa_kernel_fn(g_tabs[i], &g_op)) g_now += g_cost_pre[i];
    }
    return g_now;
}

static void costs(double dec_a, double dec_b, double pre_a, double pre_b) {
    g_cost_dec[1] = dec_a, g_cost_dec[2] = dec_b, g_cost_pre[1] = pre_a, g_cost_pre[2] = pre_b;
    g_readings = 0;
}

/* sa_matmul of W under the current selection equals the scalar table's, bit for bit */
static int same_as_reference(const SaMat *W, const float *X, int T) {
    const size_t ny = (size_t)T * W->rows;
    float *y = malloc(ny * sizeof *y), *yr = malloc(ny * sizeof *yr);
    void *scratch = sa_aligned_alloc(sa_matmul_scratch_bytes(T, W->cols));
    sa_matmul(W, X, T, y, W->rows, scratch);
    const SaKernels *saved = sa_k;
    sa_k = &sa_kernels_scalar;
    sa_matmul(W, X, T, yr, W->rows, scratch);
    sa_k = saved;
    const int same = memcmp(y, yr, ny * sizeof *y) == 0;
    free(y), free(yr), free(scratch);
    return same;
}

static int decided(const SaKernels *dec, const SaKernels *pre) {
    return sa_kernel_op_fn(&g_op, SA_KC_DECODE) == sa_kernel_fn(dec, &g_op) &&
           sa_kernel_op_fn(&g_op, SA_KC_PREFILL) == sa_kernel_fn(pre, &g_op);
}

/* nm packed Q4_0 matrices of random weights (list[m] = &W[m]) and random activations for tmax
 * tokens (returned, malloc'd) */
static float *q4_mats(SaMat *W, const SaMat **list, int nm, int rows, int cols, int tmax, uint32_t r) {
    float *row = malloc((size_t)cols * sizeof *row), *X = malloc((size_t)tmax * cols * sizeof *X);
    for (int m = 0; m < nm; m++) {
        W[m] = (SaMat){.dtype = SA_Q4_0, .rows = rows, .cols = cols, .row_bytes = sa_row_bytes(SA_Q4_0, cols)};
        uint8_t *d = malloc(W[m].row_bytes * rows);
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < cols; c++) row[c] = (float)((int)((r = r * 1664525u + 1013904223u) >> 20) - 2048) / 512;
            sa_quantize_row(SA_Q4_0, row, d + i * W[m].row_bytes, cols);
        }
        W[m].data = d;
        CHECK(sa_mat_pack(&W[m]) == 0 && W[m].packed);
        list[m] = &W[m];
    }
    for (int i = 0; i < tmax * cols; i++) X[i] = (float)((int)((r = r * 1664525u + 1013904223u) >> 20) - 2048) / 300;
    free(row);
    return X;
}

TEST(kselect_calibration_cache_and_flag) {
    pick_tables(g_tabs);
    SaKernelOp ops[400];
    const int n_ops = sa_kernel_ops(ops, 400);
    for (int i = 0; i < n_ops; i++)
        if (!strcmp(ops[i].name, "gemm_q4_0x8")) g_op = ops[i];
    CHECK(g_op.matrix && g_op.exact);
    const char *old_xdg = getenv("XDG_CACHE_HOME");
    char *saved_xdg = old_xdg ? sa_strdup(old_xdg) : NULL;
    setenv("XDG_CACHE_HOME", test_tmpdir(), 1);
    char cache[4200];
    CHECK(sa_user_cache_path("kernels", cache, sizeof cache, 1));
    unlink(cache);

    /* three packed Q4_0 matrices and activations */
    enum { ROWS = 64, COLS = 256, NM = 3, TMAX = 20 };
    SaMat W[NM];
    const SaMat *list[NM];
    float *X = q4_mats(W, list, NM, ROWS, COLS, TMAX, 7);
    const SaKernels *A = g_tabs[1], *B = g_tabs[2];

    /* A faster for decode, B for prefill; then the other way round (another shape: not cached) */
    for (int flip = 0; flip < 2; flip++) {
        sa_kselect_testing(g_tabs, 3, stub_clock);
        if (!flip) costs(1, 3, 3, 1);
        else costs(3, 1, 1, 3);
        sa_kselect_mats(list, NM, flip ? "test-shape-b" : "test-shape-a");
        CHECKF(g_readings > 0, "flip %d: nothing was timed", flip);
        CHECKF(sa_kernels_composed(), "flip %d: sa_k is not the composed table", flip);
        CHECKF(decided(flip ? B : A, flip ? A : B), "flip %d: decode/prefill not the faster %s/%s", flip,
               (flip ? B : A)->name, (flip ? A : B)->name);
        for (int T = 1; T <= TMAX; T += 9) CHECKF(same_as_reference(&W[0], X, T), "flip %d T=%d: output differs", flip, T);
    }

    /* the same shape again: cached, nothing timed, the cached choice kept against the clock */
    sa_kselect_testing(g_tabs, 3, stub_clock);
    costs(3, 1, 1, 3);
    sa_kselect_mats(list, NM, "test-shape-a");
    CHECKF(g_readings == 0, "cached shape timed again (%d readings)", g_readings);
    CHECK(decided(A, B));

    /* a corrupt cache: ignored (timed again), then usable again */
    FILE *f = fopen(cache, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("garbage\n\x01\x02\xff\tdecode\n", f);
        for (int i = 0; i < 300; i++) fputc('x', f); /* a long line without a newline: a torn write */
        fclose(f);
    }
    sa_kselect_testing(g_tabs, 3, stub_clock);
    costs(3, 1, 1, 3);
    sa_kselect_mats(list, NM, "test-shape-a");
    CHECKF(g_readings > 0 && decided(B, A), "corrupt cache: %d readings", g_readings);
    sa_kselect_testing(g_tabs, 3, stub_clock);
    costs(1, 3, 3, 1);
    sa_kselect_mats(list, NM, "test-shape-a");
    CHECKF(g_readings == 0 && decided(B, A), "after a corrupt cache: %d readings", g_readings);

    /* no usable cache folder: timed every time, no failure */
    setenv("XDG_CACHE_HOME", "/proc/no-such-folder", 1);
    for (int k = 0; k < 2; k++) {
        sa_kselect_testing(g_tabs, 3, stub_clock);
        costs(1, 3, 3, 1);
        sa_kselect_mats(list, NM, "test-shape-c");
        CHECKF(g_readings > 0 && decided(A, B), "no cache folder, run %d: %d readings", k, g_readings);
    }

    /* --kernels */
    sa_kselect_testing(g_tabs, 3, stub_clock);
    CHECK(sa_kselect_flag("no-such-table") == -1 && strstr(sa_errmsg(), "--kernels"));
    CHECK(sa_kselect_flag("gemm_q4_0x8") == -1);
    CHECK(sa_kselect_flag("no_such_op=scalar") == -1 && strstr(sa_errmsg(), "no_such_op"));
    CHECK(sa_kselect_flag("decode:gemm_q4_0x8=nope") == -1 && strstr(sa_errmsg(), "nope"));
    char spec[96];
    snprintf(spec, sizeof spec, "decode:gemm_q4_0x8=%s", B->name);
    CHECK(sa_kselect_flag(spec) == 0);
    costs(1, 3, 3, 1); /* the clock prefers A for decode: the flag wins */
    sa_kselect_mats(list, NM, "test-shape-c");
    CHECKF(decided(B, B), "--kernels %s not applied", spec);
    CHECK(same_as_reference(&W[0], X, 1));

    sa_kselect_testing(NULL, 0, NULL);
    sa_kernels_init();
    if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(saved_xdg);
    for (int m = 0; m < NM; m++) free((void *)W[m].data);
    free(X);
}

/* The prefetch test's clock: a reading costs 1 at the fast distance, 3 at any other. */
static size_t g_fast_pf;
static double pf_clock(void) {
    g_readings++;
    return g_now += sa_pf_ahead == g_fast_pf ? 1 : 3;
}

TEST(kselect_prefetch_distance) {
    pick_tables(g_tabs);
    const char *old_xdg = getenv("XDG_CACHE_HOME"), *old_pf = getenv("SALIGN_PF_AHEAD");
    char *saved_xdg = old_xdg ? sa_strdup(old_xdg) : NULL, *saved_pf = old_pf ? sa_strdup(old_pf) : NULL;
    unsetenv("SALIGN_PF_AHEAD");
    setenv("XDG_CACHE_HOME", test_tmpdir(), 1);
    char cache[4200];
    CHECK(sa_user_cache_path("kernels", cache, sizeof cache, 1));
    unlink(cache);

    /* two packed Q4_0 matrices of 4 groups of 16 blocks, activations for T <= 9 */
    enum { ROWS = 32, COLS = 512, NM = 2, TMAX = 9 };
    SaMat W[NM];
    const SaMat *list[NM];
    float *X = q4_mats(W, list, NM, ROWS, COLS, TMAX, 11);

    /* the faster distance wins: 8 KiB for one shape, none for another */
    const size_t fast[] = {8192, 0};
    for (int k = 0; k < 2; k++) {
        sa_kselect_testing(g_tabs, 3, pf_clock);
        g_fast_pf = fast[k];
        g_readings = 0;
        sa_pf_ahead = 12345;
        sa_kselect_mats(list, NM, k ? "pf-shape-b" : "pf-shape-a");
        CHECKF(g_readings > 0 && sa_pf_ahead == fast[k], "shape %d: distance %zu, wanted %zu (%d readings)", k, sa_pf_ahead,
               fast[k], g_readings);
    }
    /* a tie keeps the default */
    sa_kselect_testing(g_tabs, 3, pf_clock);
    g_fast_pf = 1;
    sa_kselect_mats(list, NM, "pf-shape-c");
    CHECKF(sa_pf_ahead == SA_PF_AHEAD, "a tie chose %zu", sa_pf_ahead);
    /* cached: nothing timed, the cached distance kept against the clock */
    sa_kselect_testing(g_tabs, 3, pf_clock);
    g_fast_pf = 65536;
    g_readings = 0;
    sa_kselect_mats(list, NM, "pf-shape-a");
    CHECKF(g_readings == 0 && sa_pf_ahead == 8192, "cached: %d readings, distance %zu", g_readings, sa_pf_ahead);
    /* forced by the flag, then by the environment: nothing timed for the distance */
    sa_kselect_testing(g_tabs, 3, pf_clock);
    CHECK(sa_kselect_flag("prefetch=abc") == -1 && strstr(sa_errmsg(), "--kernels") && strstr(sa_errmsg(), "prefetch"));
    CHECK(sa_kselect_flag("prefetch=-1") == -1);
    CHECK(sa_kselect_flag("prefetch=99999999999") == -1);
    CHECK(sa_kselect_flag("prefetch=4096") == 0);
    sa_kselect_mats(list, NM, "pf-shape-d");
    CHECKF(sa_pf_ahead == 4096, "--kernels prefetch=4096 gave %zu", sa_pf_ahead);
    sa_kselect_testing(g_tabs, 3, pf_clock);
    setenv("SALIGN_PF_AHEAD", "12288", 1);
    sa_kselect_mats(list, NM, "pf-shape-e");
    CHECKF(sa_pf_ahead == 12288, "SALIGN_PF_AHEAD=12288 gave %zu", sa_pf_ahead);
    unsetenv("SALIGN_PF_AHEAD");

    /* the output does not depend on the distance */
    static const size_t dists[] = {0, 64, 4096, 8192, 32768, 65536, 1 << 20};
    for (size_t k = 0; k < SA_ARRAY_LEN(dists); k++) {
        sa_pf_ahead = dists[k];
        for (int T = 1; T <= TMAX; T += 4)
            for (int m = 0; m < NM; m++) CHECKF(same_as_reference(&W[m], X, T), "distance %zu T=%d: output differs", dists[k], T);
    }

    sa_kselect_testing(NULL, 0, NULL);
    sa_kernels_init();
    sa_pf_ahead = SA_PF_AHEAD;
    if (saved_pf) setenv("SALIGN_PF_AHEAD", saved_pf, 1), sa_pf_ahead = (size_t)strtoull(saved_pf, NULL, 10);
    if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(saved_xdg), free(saved_pf);
    for (int m = 0; m < NM; m++) free((void *)W[m].data);
    free(X);
}
