/* test_kernels.c - every SIMD kernel table this CPU supports, against the scalar reference,
 * plus the scalar fp16 conversions against an independent (slow, obviously correct) reference.
 *
 * What "equal" means per kernel (see simd/kernels.h):
 *   quantize_q8_0, f32_to_f16     bit-identical (memcmp), on random rows, exact rounding ties,
 *                                 every fp16 rounding midpoint, NaN/inf/subnormal patterns;
 *   dot_q8_0, dot_q4_0            exact: blocks with fp16 scales of exactly 1.0 and values small
 *                                 enough that every partial sum is an integer below 2^24, so any
 *                                 float accumulation order gives the integer dot exactly; with real
 *                                 scales, NMSE against the reference;
 *   float dots and axpy           NMSE < 1e-7 per length (only the summation order differs).
 * Buffers get guard elements around them to catch tail loops that read or write too far. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "../src/common.h"
#include "test.h"

/* ---- deterministic random numbers (splitmix64): failures reproduce ---- */

static uint64_t g_rng;
static void rng_seed(uint64_t s) { g_rng = s; }
static uint64_t rng_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t rng_u32(void) { return (uint32_t)(rng_u64() >> 32); }
static int rng_int(int lo, int hi) { return lo + (int)(rng_u64() % (uint64_t)(hi - lo + 1)); }
static double rng_unif(void) { return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0); } /* [0,1) */
static float rng_normal(void) {
    double u = rng_unif(), v = rng_unif();
    return (float)(sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v));
}

/* ---- the tables under test ---- */

/* The AVX-512 table emulated with SIMDe (simd/avx512.c built with -DSALIGN_SIMDE; the Makefile
 * links it into the test binaries when libsimde-dev is installed): tested below like the native
 * tables, on any CPU with AVX2 (what SIMDe runs it on). NULL when not linked or without AVX2. */
#if defined(__x86_64__) || defined(_M_X64)
extern const SaKernels sa_kernels_avx512_emu __attribute__((weak));
#endif
static const SaKernels *emu_table(void) {
#if defined(__x86_64__) || defined(_M_X64)
    const SaKernels *all[8];
    const int n = sa_kernels_available(all, 8);
    for (int i = 0; i < n; i++)
        if (all[i] == &sa_kernels_avx2 && &sa_kernels_avx512_emu) return &sa_kernels_avx512_emu;
#endif
    return NULL;
}

/* Every table this CPU can run except the reference itself, and the emulated AVX-512 one. */
static int simd_tables(const SaKernels **t) {
    const SaKernels *all[8];
    int n = sa_kernels_available(all, 8), m = 0;
    for (int i = 0; i < n; i++)
        if (all[i] != &sa_kernels_scalar) t[m++] = all[i];
    if (emu_table() && m < 8) t[m++] = emu_table();
    return m;
}

#define GET_TABLES(tabs, nt)                                                \
    const SaKernels *tabs[8];                                               \
    const int nt = simd_tables(tabs);                                       \
    if (nt == 0) {                                                          \
        test_skip("no SIMD kernel table for this CPU (scalar only)");       \
        return;                                                             \
    }

static const SaKernels *const ref = &sa_kernels_scalar;

/* Lengths for float kernels: every n up to 70 (all tail shapes of 4/8/16/32-wide loops), the
 * sizes around powers of two, and a few random ones up to 4096. */
static int float_lengths(int *len) {
    int m = 0;
    for (int i = 1; i <= 70; i++) len[m++] = i;
    static const int extra[] = {95,  96,   97,   127,  128,  129,  255,  256,  257,  511,  512, 513,
                                999, 1000, 1023, 1024, 1025, 2047, 2048, 2049, 3001, 4095, 4096};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) len[m++] = extra[i];
    for (int i = 0; i < 12; i++) len[m++] = rng_int(71, 4096);
    return m;
}
#define MAX_LENGTHS 128
#define MAXN 4096
#define GUARD 32

/* ---- independent fp16 reference ---- */

/* Value of a half as a double, straight from the IEEE definition. */
static double ref_f16_value(uint16_t h) {
    const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v;
    if (e == 0) v = ldexp(m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static double g_half_pos[0x7C00]; /* values of the finite non-negative halves, increasing */

static void init_half_values(void) {
    for (int h = 0; h < 0x7C00; h++) g_half_pos[h] = ref_f16_value((uint16_t)h);
}

/* float -> half by searching the sorted finite halves, round to nearest, ties to the even
 * (low bit clear) half; the midpoint of two halves is exact in double. NaN becomes the
 * canonical quiet NaN with the sign, which is what the runtime's converters promise. */
static uint16_t ref_f32_to_f16(float f) {
    const uint16_t sign = (uint16_t)((sa_fp32_to_bits(f) >> 16) & 0x8000);
    if (isnan(f)) return sign | 0x7E00;
    const double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7C00; /* 65520 is the midpoint of 65504 and 2^16, odd below */
    int lo = 0, hi = 0x7BFF;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (g_half_pos[mid] <= a) lo = mid;
        else hi = mid - 1;
    }
    const double up = lo == 0x7BFF ? 65536.0 : g_half_pos[lo + 1];
    const double m = (g_half_pos[lo] + up) / 2;
    if (a > m || (a == m && (lo & 1))) lo++;
    return sign | (uint16_t)lo;
}

/* ---- tests ---- */

TEST(kernels_tables) {
    const SaKernels *all[8];
    const int n = sa_kernels_available(all, 8);
    CHECK(n >= 1 && all[0] == &sa_kernels_scalar);
    const SaKernels *compiled[] = {
#if defined(__x86_64__) || defined(_M_X64)
        &sa_kernels_avx2, &sa_kernels_avx512,
#endif
#if defined(__aarch64__)
        &sa_kernels_neon, &sa_kernels_neon_dotprod,
#endif
        &sa_kernels_scalar};
    for (size_t c = 0; c + 1 < sizeof compiled / sizeof compiled[0]; c++) {
        int avail = 0;
        for (int i = 0; i < n; i++) avail |= all[i] == compiled[c];
        printf("    kernel table %-13s %s\n", compiled[c]->name,
               avail ? "tested against scalar" : "not supported by this CPU: not tested");
    }
#if defined(__x86_64__) || defined(_M_X64)
    printf("    kernel table %-13s %s\n", "avx512_emu",
           emu_table()               ? "(simd/avx512.c on SIMDe) tested against scalar"
           : &sa_kernels_avx512_emu ? "needs AVX2: not tested"
                                    : "not built (libsimde-dev not installed): not tested");
#endif
    /* every member is filled in */
    for (int i = 0; i <= n; i++) {
        const SaKernels *k = i < n ? all[i] : emu_table();
        if (!k) continue;
        CHECKF(k->name && k->quantize_q8_0 && k->dot_q8_0 && k->dot_q4_0 && k->dot_f16 &&
                   k->dot_bf16 && k->dot_f32 && k->axpy_f32 && k->axpy_f16 && k->f32_to_f16 && k->gemm_q4_0x8 &&
                   k->gemm_q8_0x8 && k->attn_scores_f16 && k->attn_values_f16 && k->attn_scores_q8_0 &&
                   k->attn_values_q8_0 && k->exp_sub_sum && k->silu_mul,
               "table %s has a NULL member", k->name ? k->name : "?");
        /* the per-dtype entries: every weight type has a dot and a gemm, and every type some
         * weight type dots with (and the KV cache types) can be converted to */
        for (int t = 0; t < SA_DTYPE_COUNT; t++) {
            const SaDtypeTraits *tr = sa_dtype_tr((SaDtype)t);
            if (tr->flags & SA_DT_WEIGHT) {
                CHECKF(k->type[t].dot && k->type[t].gemm, "table %s: no dot/gemm for %s", k->name, tr->name);
                CHECKF(k->type[tr->vec_dot_type].from_float, "table %s: no from_float for %s (activations of %s)",
                       k->name, sa_dtype_name((SaDtype)tr->vec_dot_type), tr->name);
            }
        }
        CHECK(k->type[SA_F16].from_float && k->type[SA_Q8_0].from_float && k->type[SA_F32].from_float);
    }
    /* selection by name, then back to what was selected before */
    const SaKernels *saved = sa_k;
    CHECK(sa_kernels_select("scalar") == 0 && sa_k == &sa_kernels_scalar);
    CHECK(sa_kernels_select(all[n - 1]->name) == 0 && sa_k == all[n - 1]);
    CHECK(sa_kernels_select("no-such-isa") == -1 && sa_k == all[n - 1]);
    sa_k = saved;
}

/* One block of 32 floats in one of several shapes, including exact rounding ties. */
static void fill_q8_block(float *x, int kind) {
    switch (kind) {
    case 0: { /* normal data at a random magnitude, 1e-6 .. 1e6 */
        const float s = (float)pow(10.0, rng_unif() * 12.0 - 6.0);
        for (int j = 0; j < 32; j++) x[j] = rng_normal() * s;
    } break;
    case 1: { /* every value an exact tie k + 0.5 after scaling: the max is 127 * 2^e, so
                 d = 2^e and 1/d are exact and x/d lands exactly on the half */
        const float s = ldexpf(1.0f, rng_int(-20, 20));
        for (int j = 0; j < 32; j++) x[j] = ((float)rng_int(-127, 126) + 0.5f) * s;
        x[rng_int(0, 31)] = (rng_u32() & 1 ? 127.0f : -127.0f) * s;
    } break;
    case 2: { /* integers and halves mixed, small magnitude */
        for (int j = 0; j < 32; j++) x[j] = (float)rng_int(-254, 254) * 0.5f;
    } break;
    case 3: /* all zero: d = 0 */
        for (int j = 0; j < 32; j++) x[j] = 0.0f;
        break;
    case 4: /* one non-zero value (negative or positive), rest signed zeros */
        for (int j = 0; j < 32; j++) x[j] = (j & 1) ? -0.0f : 0.0f;
        x[rng_int(0, 31)] = rng_normal();
        break;
    default: /* uniform, including values a hair below .5 after scaling */
        for (int j = 0; j < 32; j++) x[j] = (float)(rng_unif() * 2.0 - 1.0) * 3.0f;
        break;
    }
}

TEST(kernels_quantize_q8_0) {
    GET_TABLES(tabs, nt);
    rng_seed(1);
    float *x = malloc((MAXN + 1) * sizeof *x);
    BlockQ8_0 *yr = malloc((MAXN / 32 + 1) * sizeof *yr), *yt = malloc((MAXN / 32 + 1) * sizeof *yt);
    for (int t = 0; t < nt; t++) {
        int bad = 0;
        for (int row = 0; row < 600 && bad < 5; row++) {
            const int nb = row < 128 ? row + 1 : rng_int(1, MAXN / 32);
            const int off = row & 1; /* also run from a pointer that is not 8-byte aligned */
            for (int b = 0; b < nb; b++) fill_q8_block(x + off + b * 32, rng_int(0, 5));
            memset(yr, 0xA5, (size_t)(nb + 1) * sizeof *yr);
            memset(yt, 0xA5, (size_t)(nb + 1) * sizeof *yt);
            ref->quantize_q8_0(x + off, yr, nb * 32);
            tabs[t]->quantize_q8_0(x + off, yt, nb * 32);
            /* includes the guard block after the row */
            if (memcmp(yr, yt, (size_t)(nb + 1) * sizeof *yr) != 0) {
                int b = 0;
                while (b <= nb && memcmp(&yr[b], &yt[b], sizeof *yr) == 0) b++;
                CHECKF(0, "%s quantize_q8_0 differs from scalar: row %d, %d blocks, first at block %d",
                       tabs[t]->name, row, nb, b);
                bad++;
            }
        }
    }
    free(x);
    free(yr);
    free(yt);
}

/* Exact integer dots. Scales are fp16 1.0 (0x3C00), and the value ranges keep the sum of
 * |products| below 2^24, so every partial sum in any order is an exactly representable integer:
 * the float result must equal the integer dot, bit for bit, for the reference and every table. */
TEST(kernels_dot_q8_0_exact) {
    GET_TABLES(tabs, nt);
    rng_seed(2);
    BlockQ8_0 *w = malloc(MAXN / 32 * sizeof *w), *a = malloc(MAXN / 32 * sizeof *a);
    for (int nb = 1; nb <= MAXN / 32; nb++) {
        for (int rep = 0; rep < 2; rep++) {
            /* full range up to 1024 elements (1024 * 128 * 127 < 2^24), then half range */
            const int wl = nb <= 32 ? -128 : -64, wh = nb <= 32 ? 127 : 64, am = nb <= 32 ? 127 : 63;
            int64_t exact = 0;
            for (int b = 0; b < nb; b++) {
                w[b].d = a[b].d = 0x3C00;
                for (int j = 0; j < 32; j++) {
                    w[b].qs[j] = (int8_t)rng_int(wl, wh);
                    a[b].qs[j] = (int8_t)rng_int(-am, am);
                    exact += (int64_t)w[b].qs[j] * a[b].qs[j];
                }
            }
            const float want = (float)exact;
            const float r = ref->dot_q8_0(nb * 32, w, a);
            CHECKF(r == want, "scalar dot_q8_0 n=%d: %.1f, exact %lld", nb * 32, r, (long long)exact);
            for (int t = 0; t < nt; t++) {
                const float s = tabs[t]->dot_q8_0(nb * 32, w, a);
                CHECKF(s == want, "%s dot_q8_0 n=%d: %.1f, exact %lld", tabs[t]->name, nb * 32, s,
                       (long long)exact);
            }
        }
    }
    /* extremes: weight -128 (|w| = 128 must not be read as -128) against +-127, and 127 * -127;
     * 512 elements keep the sum below 2^24 */
    static const int8_t ext[][2] = {{-128, 127}, {-128, -127}, {127, -127}, {127, 127}, {-128, 0}};
    for (size_t e = 0; e < sizeof ext / sizeof ext[0]; e++) {
        for (int nb = 1; nb <= 16; nb += 5) {
            for (int b = 0; b < nb; b++) {
                w[b].d = a[b].d = 0x3C00;
                memset(w[b].qs, (uint8_t)ext[e][0], 32);
                memset(a[b].qs, (uint8_t)ext[e][1], 32);
            }
            const float want = (float)((int64_t)nb * 32 * ext[e][0] * ext[e][1]);
            CHECK(ref->dot_q8_0(nb * 32, w, a) == want);
            for (int t = 0; t < nt; t++) {
                const float s = tabs[t]->dot_q8_0(nb * 32, w, a);
                CHECKF(s == want, "%s dot_q8_0 all %d x %d, n=%d: %.1f, want %.1f", tabs[t]->name,
                       ext[e][0], ext[e][1], nb * 32, s, want);
            }
        }
    }
    free(w);
    free(a);
}

TEST(kernels_dot_q4_0_exact) {
    GET_TABLES(tabs, nt);
    rng_seed(3);
    BlockQ4_0 *w = malloc(MAXN / 32 * sizeof *w);
    BlockQ8_0 *a = malloc(MAXN / 32 * sizeof *a);
    /* |q - 8| <= 8 and |a| <= 127: 4096 * 8 * 127 < 2^24 at full range */
    for (int nb = 1; nb <= MAXN / 32; nb++) {
        for (int rep = 0; rep < 2; rep++) {
            int64_t exact = 0;
            for (int b = 0; b < nb; b++) {
                w[b].d = a[b].d = 0x3C00;
                for (int j = 0; j < 16; j++) w[b].qs[j] = (uint8_t)rng_u32();
                for (int j = 0; j < 32; j++) a[b].qs[j] = (int8_t)rng_int(-127, 127);
                if (rep == 1 && b == 0) { /* nibble extremes: 0 (-8) and 15 (+7) */
                    memset(w[b].qs, 0x0F, 8);
                    memset(w[b].qs + 8, 0xF0, 8);
                }
                for (int j = 0; j < 16; j++) {
                    exact += (int64_t)((w[b].qs[j] & 0x0F) - 8) * a[b].qs[j];
                    exact += (int64_t)((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
                }
            }
            const float want = (float)exact;
            const float r = ref->dot_q4_0(nb * 32, w, a);
            CHECKF(r == want, "scalar dot_q4_0 n=%d: %.1f, exact %lld", nb * 32, r, (long long)exact);
            for (int t = 0; t < nt; t++) {
                const float s = tabs[t]->dot_q4_0(nb * 32, w, a);
                CHECKF(s == want, "%s dot_q4_0 n=%d: %.1f, exact %lld", tabs[t]->name, nb * 32, s,
                       (long long)exact);
            }
        }
    }
    free(w);
    free(a);
}

/* Quantized dots on real quantized data (arbitrary fp16 scales): only the float summation
 * order may differ from the reference. */
TEST(kernels_dot_quant_scaled) {
    GET_TABLES(tabs, nt);
    rng_seed(4);
    enum { TRIALS = 8 };
    float *x = malloc(MAXN * sizeof *x);
    BlockQ8_0 *w8 = malloc(TRIALS * MAXN / 32 * sizeof *w8), *a8 = malloc(TRIALS * MAXN / 32 * sizeof *a8);
    BlockQ4_0 *w4 = malloc(TRIALS * MAXN / 32 * sizeof *w4);
    float r8[TRIALS], r4[TRIALS], s8[TRIALS], s4[TRIALS];
    for (int nb = 1; nb <= MAXN / 32; nb += (nb < 40 ? 1 : 7)) {
        const int n = nb * 32;
        for (int k = 0; k < TRIALS; k++) {
            const float ws = (float)pow(10.0, rng_unif() * 4.0 - 3.0); /* 1e-3 .. 10 */
            for (int i = 0; i < n; i++) x[i] = rng_normal() * ws;
            sa_quantize_row_q8_0(x, w8 + k * nb, n);
            sa_quantize_row_q4_0(x, w4 + k * nb, n);
            for (int i = 0; i < n; i++) x[i] = rng_normal() * 4.0f;
            sa_quantize_row_q8_0(x, a8 + k * nb, n);
            r8[k] = ref->dot_q8_0(n, w8 + k * nb, a8 + k * nb);
            r4[k] = ref->dot_q4_0(n, w4 + k * nb, a8 + k * nb);
        }
        for (int t = 0; t < nt; t++) {
            for (int k = 0; k < TRIALS; k++) {
                s8[k] = tabs[t]->dot_q8_0(n, w8 + k * nb, a8 + k * nb);
                s4[k] = tabs[t]->dot_q4_0(n, w4 + k * nb, a8 + k * nb);
            }
            const double e8 = test_nmse(s8, r8, TRIALS), e4 = test_nmse(s4, r4, TRIALS);
            CHECKF(e8 < 1e-7, "%s dot_q8_0 n=%d: nmse %g", tabs[t]->name, n, e8);
            CHECKF(e4 < 1e-7, "%s dot_q4_0 n=%d: nmse %g", tabs[t]->name, n, e4);
        }
    }
    free(x);
    free(w8);
    free(a8);
    free(w4);
}

TEST(kernels_dot_float) {
    GET_TABLES(tabs, nt);
    rng_seed(5);
    enum { TRIALS = 8 };
    int len[MAX_LENGTHS];
    const int nl = float_lengths(len);
    float *w32 = malloc(TRIALS * (MAXN + 4) * sizeof *w32), *a = malloc(TRIALS * (MAXN + 4) * sizeof *a);
    uint16_t *w16 = malloc(TRIALS * (MAXN + 4) * sizeof *w16), *wb = malloc(TRIALS * (MAXN + 4) * sizeof *wb);
    for (int i = 0; i < TRIALS * (MAXN + 4); i++) {
        w32[i] = rng_normal();
        a[i] = rng_normal();
        w16[i] = sa_fp32_to_fp16(w32[i]);
        wb[i] = sa_fp32_to_bf16(w32[i]);
    }
    for (int l = 0; l < nl; l++) {
        const int n = len[l];
        int off[TRIALS];
        float r32[TRIALS], r16[TRIALS], rb[TRIALS], s32[TRIALS], s16[TRIALS], sb[TRIALS];
        for (int k = 0; k < TRIALS; k++) {
            off[k] = k * (MAXN + 4) + (k & 3); /* every alignment mod 16 bytes */
            r32[k] = ref->dot_f32(n, w32 + off[k], a + off[k]);
            r16[k] = ref->dot_f16(n, w16 + off[k], a + off[k]);
            rb[k] = ref->dot_bf16(n, wb + off[k], a + off[k]);
        }
        for (int t = 0; t < nt; t++) {
            for (int k = 0; k < TRIALS; k++) {
                s32[k] = tabs[t]->dot_f32(n, w32 + off[k], a + off[k]);
                s16[k] = tabs[t]->dot_f16(n, w16 + off[k], a + off[k]);
                sb[k] = tabs[t]->dot_bf16(n, wb + off[k], a + off[k]);
            }
            const double e32 = test_nmse(s32, r32, TRIALS), e16 = test_nmse(s16, r16, TRIALS),
                         eb = test_nmse(sb, rb, TRIALS);
            CHECKF(e32 < 1e-7, "%s dot_f32 n=%d: nmse %g", tabs[t]->name, n, e32);
            CHECKF(e16 < 1e-7, "%s dot_f16 n=%d: nmse %g", tabs[t]->name, n, e16);
            CHECKF(eb < 1e-7, "%s dot_bf16 n=%d: nmse %g", tabs[t]->name, n, eb);
        }
    }
    free(w32);
    free(a);
    free(w16);
    free(wb);
}

TEST(kernels_axpy) {
    GET_TABLES(tabs, nt);
    rng_seed(6);
    int len[MAX_LENGTHS];
    const int nl = float_lengths(len);
    float *x = malloc((MAXN + 4) * sizeof *x), *y0 = malloc((MAXN + 4) * sizeof *y0);
    uint16_t *x16 = malloc((MAXN + 4) * sizeof *x16);
    float *yr = malloc((MAXN + 2 * GUARD) * sizeof *yr), *yt = malloc((MAXN + 2 * GUARD) * sizeof *yt);
    for (int i = 0; i < MAXN + 4; i++) {
        x[i] = rng_normal();
        x16[i] = sa_fp32_to_fp16(rng_normal());
        y0[i] = rng_normal();
    }
    for (int l = 0; l < nl; l++) {
        const int n = len[l], off = l & 3;
        const float alpha = rng_normal();
        for (int f16 = 0; f16 < 2; f16++) {
            /* guards: GUARD floats before and after y hold a marker that must survive */
            for (int i = 0; i < n + 2 * GUARD; i++) yr[i] = -12345.0f;
            memcpy(yr + GUARD, y0 + off, (size_t)n * sizeof *yr);
            if (f16) ref->axpy_f16(n, alpha, x16 + off, yr + GUARD);
            else ref->axpy_f32(n, alpha, x + off, yr + GUARD);
            for (int t = 0; t < nt; t++) {
                for (int i = 0; i < n + 2 * GUARD; i++) yt[i] = -12345.0f;
                memcpy(yt + GUARD, y0 + off, (size_t)n * sizeof *yt);
                if (f16) tabs[t]->axpy_f16(n, alpha, x16 + off, yt + GUARD);
                else tabs[t]->axpy_f32(n, alpha, x + off, yt + GUARD);
                const double e = test_nmse(yt + GUARD, yr + GUARD, n);
                CHECKF(e < 1e-7, "%s axpy_%s n=%d: nmse %g", tabs[t]->name, f16 ? "f16" : "f32", n, e);
                int guard_ok = 1;
                for (int i = 0; i < GUARD; i++)
                    guard_ok &= yt[i] == -12345.0f && yt[GUARD + n + i] == -12345.0f;
                CHECKF(guard_ok, "%s axpy_%s n=%d writes outside y", tabs[t]->name, f16 ? "f16" : "f32", n);
            }
        }
    }
    free(x);
    free(y0);
    free(x16);
    free(yr);
    free(yt);
}

/* Inputs that exercise fp16 rounding everywhere: for every finite half, the half itself, the
 * exact midpoint to the next half and the floats on either side of it (both signs), then
 * random bit patterns (NaNs with payloads, infinities, subnormals, overflow), then random
 * values spread over the half range by exponent. Returns the count. */
static size_t f16_conversion_inputs(float *v, size_t cap) {
    size_t m = 0;
    for (int h = 0; h < 0x7C00; h++) {
        const double lo = g_half_pos[h], hi = h == 0x7BFF ? 65536.0 : g_half_pos[h + 1];
        const float mid = (float)((lo + hi) / 2); /* 12 significant bits: exact in float */
        const float c[4] = {(float)lo, mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 4; k++) {
            v[m++] = c[k];
            v[m++] = -c[k];
        }
    }
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65519.996f,
                                    65520.0f, 1e30f, -1e30f, 1e-30f, 1.4e-45f, 5.9604645e-08f,
                                    2.9802322e-08f, 2.9802326e-08f, 6.1035156e-05f, 6.1035152e-05f};
    for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) v[m++] = special[k];
    const size_t nrand = (cap - m) / 2;
    for (size_t k = 0; k < nrand; k++) v[m++] = sa_fp32_from_bits(rng_u32());
    while (m < cap) { /* |v| in [2^-27, 2^17): subnormal halves through overflow */
        const float s = ldexpf((float)(1.0 + rng_unif()), rng_int(-27, 16));
        v[m++] = (rng_u32() & 1) ? -s : s;
    }
    return m;
}

TEST(kernels_fp16_scalar_exhaustive) {
    init_half_values();
    /* decode: every one of the 65536 halves, bit for bit against the IEEE definition */
    int bad = 0;
    for (uint32_t h = 0; h < 65536 && bad < 10; h++) {
        const float f = sa_fp16_to_fp32((uint16_t)h);
        const double want = ref_f16_value((uint16_t)h);
        uint32_t got_bits = sa_fp32_to_bits(f), want_bits;
        if (isnan(want)) /* NaN: the payload moves to the top of the f32 mantissa */
            want_bits = ((h & 0x8000u) << 16) | 0x7F800000u | ((h & 0x3FFu) << 13);
        else
            want_bits = sa_fp32_to_bits((float)want);
        if (got_bits != want_bits || sa_fp32_to_bits(sa_fp16_lut((uint16_t)h)) != want_bits) {
            CHECKF(0, "sa_fp16_to_fp32(0x%04x) = 0x%08x (table 0x%08x), want 0x%08x", h, got_bits,
                   sa_fp32_to_bits(sa_fp16_lut((uint16_t)h)), want_bits);
            bad++;
        }
        /* and back: every non-NaN half round-trips; NaN comes back as the canonical quiet NaN */
        const uint16_t back = sa_fp32_to_fp16(f);
        const uint16_t want_back = isnan(want) ? (uint16_t)((h & 0x8000) | 0x7E00) : (uint16_t)h;
        if (back != want_back) {
            CHECKF(0, "sa_fp32_to_fp16(sa_fp16_to_fp32(0x%04x)) = 0x%04x", h, back);
            bad++;
        }
    }
    /* a few known values */
    static const struct { float f; uint16_t h; } known[] = {
        {1.0f, 0x3C00},        {-2.0f, 0xC000},        {0.1f, 0x2E66},         {65504.0f, 0x7BFF},
        {65519.99f, 0x7BFF},   {65520.0f, 0x7C00},     {5.9604645e-08f, 0x0001}, {2.9802322e-08f, 0x0000},
        {8.940697e-08f, 0x0002}, {1.4901161e-07f, 0x0002}, {6.1035156e-05f, 0x0400}, {-0.0f, 0x8000},
        {1e-8f, 0x0000},       {INFINITY, 0x7C00},    {-INFINITY, 0xFC00},    {NAN, 0x7E00}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        CHECKF(sa_fp32_to_fp16(known[k].f) == known[k].h, "sa_fp32_to_fp16(%g) = 0x%04x, want 0x%04x",
               known[k].f, sa_fp32_to_fp16(known[k].f), known[k].h);
    /* encode: every rounding midpoint and a few million random floats against the search */
    rng_seed(7);
    const size_t cap = 3u << 20;
    float *v = malloc(cap * sizeof *v);
    const size_t m = f16_conversion_inputs(v, cap);
    bad = 0;
    for (size_t i = 0; i < m && bad < 10; i++) {
        const uint16_t got = sa_fp32_to_fp16(v[i]), want = ref_f32_to_f16(v[i]);
        if (got != want) {
            CHECKF(0, "sa_fp32_to_fp16(%a [0x%08x]) = 0x%04x, want 0x%04x", v[i], sa_fp32_to_bits(v[i]),
                   got, want);
            bad++;
        }
    }
    free(v);
}

/* The tables' conversions use the hardware (F16C vcvtps2ph/vcvtph2ps, NEON fcvtn/fcvtl): they
 * must agree with the scalar code bit for bit on the same inputs. */
TEST(kernels_f32_to_f16) {
    GET_TABLES(tabs, nt);
    init_half_values();
    rng_seed(8);
    const size_t cap = 3u << 20;
    float *v = malloc(cap * sizeof *v);
    uint16_t *hr = malloc((cap + 2 * GUARD) * sizeof *hr), *ht = malloc((cap + 2 * GUARD) * sizeof *ht);
    const size_t m = f16_conversion_inputs(v, cap);
    ref->f32_to_f16((int)m, v, hr);
    for (int t = 0; t < nt; t++) {
        tabs[t]->f32_to_f16((int)m, v, ht);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < m; i++)
            if (ht[i] != hr[i] && !bad++) first = i;
        CHECKF(bad == 0, "%s f32_to_f16: %zu of %zu differ, first %a [0x%08x] -> 0x%04x, scalar 0x%04x",
               tabs[t]->name, bad, m, v[first], sa_fp32_to_bits(v[first]), ht[first], hr[first]);
        /* every tail length, from odd offsets, with guards on both sides */
        for (int n = 0; n <= 100; n++) {
            const int off = n % 5;
            for (int i = 0; i < n + 2 * GUARD; i++) ht[i] = 0xBEEF;
            tabs[t]->f32_to_f16(n, v + 1000 + off, ht + GUARD);
            int ok = memcmp(ht + GUARD, hr + 1000 + off, (size_t)n * sizeof *ht) == 0;
            for (int i = 0; i < GUARD; i++) ok &= ht[i] == 0xBEEF && ht[GUARD + n + i] == 0xBEEF;
            CHECKF(ok, "%s f32_to_f16 n=%d: wrong result or writes outside y", tabs[t]->name, n);
        }
    }
    /* decode through the tables: axpy_f16 with a = 1 onto y = -0.0 is exact (x + -0 = x, even for
     * x = +-0), so it shows the hardware half -> float conversion of all 65536 halves */
    uint16_t *all = malloc(65536 * sizeof *all);
    float *y = malloc(65536 * sizeof *y);
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    for (int t = 0; t < nt; t++) {
        for (int i = 0; i < 65536; i++) y[i] = -0.0f;
        tabs[t]->axpy_f16(65536, 1.0f, all, y);
        int bad = 0;
        for (uint32_t h = 0; h < 65536 && bad < 5; h++) {
            const float want = sa_fp16_to_fp32((uint16_t)h);
            const int ok = isnan(want) ? isnan(y[h]) : sa_fp32_to_bits(y[h]) == sa_fp32_to_bits(want);
            if (!ok) {
                CHECKF(0, "%s: half 0x%04x decodes to 0x%08x, scalar 0x%08x", tabs[t]->name, h,
                       sa_fp32_to_bits(y[h]), sa_fp32_to_bits(want));
                bad++;
            }
        }
    }
    free(all);
    free(y);
    free(v);
    free(hr);
    free(ht);
}

/* ---- 8-row interleaved GEMM (gemm_q4_0x8, gemm_q8_0x8) ---- */

/* The test's own packer, written from the layout description in kernels.h (not shared with
 * src/repack.c, so a wrong packer there cannot hide a wrong kernel here). */
static void test_pack_q4(const BlockQ4_0 *rows, int nb, BlockQ4_0x8 *out) {
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 8; i++) {
            out[b].d[i] = rows[(size_t)i * nb + b].d;
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 4; j++) out[b].qs[k * 32 + i * 4 + j] = rows[(size_t)i * nb + b].qs[4 * k + j];
        }
}
static void test_pack_q8(const BlockQ8_0 *rows, int nb, BlockQ8_0x8 *out) {
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 8; i++) {
            out[b].d[i] = rows[(size_t)i * nb + b].d;
            for (int k = 0; k < 8; k++)
                for (int j = 0; j < 4; j++) out[b].qs[k * 32 + i * 4 + j] = rows[(size_t)i * nb + b].qs[4 * k + j];
        }
}


/* The test's own SaQ8x8 (kernels.h's description): token t's block b in tile t / 8, slot t % 8,
 * with -s8; the slots after T hold garbage, which no kernel may let into y. */
static void test_group_x8(const BlockQ8_0 *a, const float *ad, const int32_t *as, int nb, int T, SaQ8x8 *x8) {
    for (int t = 0; t < (T + 7) / 8 * 8; t++)
        for (int b = 0; b < nb; b++) {
            SaQ8x8 *x = &x8[(size_t)(t / 8) * nb + b];
            for (int j = 0; j < 32; j++) x->qs[t % 8][j] = t < T ? a[(size_t)t * nb + b].qs[j] : (int8_t)rng_int(-128, 127);
            x->d[t % 8] = t < T ? ad[(size_t)t * nb + b] : NAN;
            x->ns8[t % 8] = t < T ? -as[(size_t)t * nb + b] : rng_int(-100000, 100000);
        }
}

/* Every table gives the scalar reference's floats bit for bit (kernels.h), for every token
 * count 1..17 (all tile remainders, with and without the SaQ8x8 grouping) and block counts
 * 1..160, on real quantized data and on extreme quants (nibbles 0/15, weight -128, activations
 * +-127); and the reference equals the one-row scalar dots exactly (same formula). Y is written
 * only at y[t*ldy + i], i < 8. */
TEST(kernels_gemm_x8) {
    rng_seed(9);
    const SaKernels *all[8];
    int nall = sa_kernels_available(all, 8);
    if (emu_table() && nall < 8) all[nall++] = emu_table();
    enum { MAXNB = 160, MAXT = 17, MAXG = 3, LDY = 8 * MAXG + 3 };
    float *x = malloc(MAXNB * 32 * sizeof *x);
    BlockQ4_0 *w4 = malloc(8 * MAXG * MAXNB * sizeof *w4);
    BlockQ8_0 *w8 = malloc(8 * MAXG * MAXNB * sizeof *w8), *a = malloc(MAXT * MAXNB * sizeof *a);
    BlockQ4_0x8 *p4 = malloc(MAXG * MAXNB * sizeof *p4);
    BlockQ8_0x8 *p8 = malloc(MAXG * MAXNB * sizeof *p8);
    int32_t *as = malloc(MAXT * MAXNB * sizeof *as);
    float *ad = malloc(MAXT * MAXNB * sizeof *ad);
    SaQ8x8 *x8 = malloc((MAXT + 7) / 8 * MAXNB * sizeof *x8);
    const SaQ8Act act = {a, ad, as, NULL}, act_x8 = {a, ad, as, x8};
    float yr4[MAXT * LDY], yr8[MAXT * LDY], yt[MAXT * LDY];
    for (int trial = 0; trial < 150; trial++) {
        /* every token count 1..17 (all tile remainders) with 1, 2 and 3 groups (the pair tiles
         * and an odd group after them) */
        const int nb = trial < 51 ? trial % 8 + 1 : rng_int(1, MAXNB), T = trial % MAXT + 1, ng = trial / MAXT % 3 + 1;
        const int rows = 8 * ng, extreme = trial % 5 == 4;
        for (int i = 0; i < rows; i++) {
            const float ws = (float)pow(10.0, rng_unif() * 4.0 - 3.0);
            for (int e = 0; e < nb * 32; e++) x[e] = rng_normal() * ws;
            sa_quantize_row_q4_0(x, w4 + (size_t)i * nb, nb * 32);
            sa_quantize_row_q8_0(x, w8 + (size_t)i * nb, nb * 32);
            if (extreme) {
                for (int b = 0; b < nb; b++) {
                    memset(w4[(size_t)i * nb + b].qs, (i & 1) ? 0xFF : 0x00, 16);
                    memset(w8[(size_t)i * nb + b].qs, (i & 1) ? 127 : -128, 32);
                }
            }
        }
        for (int t = 0; t < T; t++) {
            for (int e = 0; e < nb * 32; e++) x[e] = rng_normal() * 3.0f;
            sa_quantize_row_q8_0(x, a + (size_t)t * nb, nb * 32);
            if (extreme)
                for (int b = 0; b < nb; b++) memset(a[(size_t)t * nb + b].qs, (t & 1) ? 127 : -127, 32);
        }
        /* the extras by hand: the scale as a float, 8 * the quant sum */
        for (int b = 0; b < T * nb; b++) {
            int v = 0;
            for (int j = 0; j < 32; j++) v += a[b].qs[j];
            as[b] = 8 * v;
            ad[b] = sa_fp16_to_fp32(a[b].d);
        }
        test_group_x8(a, ad, as, nb, T, x8);
        for (int g = 0; g < ng; g++) {
            test_pack_q4(w4 + (size_t)g * 8 * nb, nb, p4 + (size_t)g * nb);
            test_pack_q8(w8 + (size_t)g * 8 * nb, nb, p8 + (size_t)g * nb);
        }
        for (int e = 0; e < MAXT * LDY; e++) yr4[e] = yr8[e] = -777.0f;
        ref->gemm_q4_0x8(nb, ng, p4, &act, T, yr4, LDY);
        ref->gemm_q8_0x8(nb, ng, p8, &act, T, yr8, LDY);
        /* the reference against the one-row scalar dots: same arithmetic, same floats */
        int same = 1;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < rows; i++) {
                const float d4 = ref->dot_q4_0(nb * 32, w4 + (size_t)i * nb, a + (size_t)t * nb);
                const float d8 = ref->dot_q8_0(nb * 32, w8 + (size_t)i * nb, a + (size_t)t * nb);
                same &= memcmp(&d4, &yr4[t * LDY + i], 4) == 0 && memcmp(&d8, &yr8[t * LDY + i], 4) == 0;
            }
        CHECKF(same, "scalar gemm_x8 differs from the scalar dots: nb=%d T=%d ng=%d", nb, T, ng);
        for (int ti = 0; ti < nall; ti++) {
            const SaKernels *k = all[ti];
            for (int q = 0; q < 4; q++) { /* Q4_0, Q8_0; without, then with the SaQ8x8 grouping */
                const SaQ8Act *ac = q < 2 ? &act : &act_x8;
                for (int e = 0; e < MAXT * LDY; e++) yt[e] = -777.0f;
                if (q % 2 == 0) k->gemm_q4_0x8(nb, ng, p4, ac, T, yt, LDY);
                else k->gemm_q8_0x8(nb, ng, p8, ac, T, yt, LDY);
                const float *yr = q % 2 == 0 ? yr4 : yr8;
                int bad = -1;
                for (int e = 0; e < MAXT * LDY && bad < 0; e++) {
                    const int inside = e / LDY < T && e % LDY < rows;
                    if (inside ? memcmp(&yt[e], &yr[e], 4) != 0 : yt[e] != -777.0f) bad = e;
                }
                CHECKF(bad < 0, "%s gemm_%s_x8%s nb=%d T=%d ng=%d%s: y[%d] = %.9g, scalar %.9g", k->name, q % 2 ? "q8_0" : "q4_0",
                       q < 2 ? "" : " (SaQ8x8)", nb, T, ng, extreme ? " (extreme quants)" : "", bad, bad >= 0 ? yt[bad] : 0.0,
                       bad >= 0 ? yr[bad] : 0.0);
            }
        }
    }
    /* sa_q8_act_extras computes the same extras */
    {
        BlockQ8_0 q[5];
        float d[5];
        int32_t s8[5];
        for (int e = 0; e < 160; e++) x[e] = rng_normal();
        sa_quantize_row_q8_0(x, q, 160);
        sa_q8_act_extras(q, 5, d, s8);
        for (int b = 0; b < 5; b++) {
            int v = 0;
            for (int j = 0; j < 32; j++) v += q[b].qs[j];
            CHECK(s8[b] == 8 * v && d[b] == sa_fp16_to_fp32(q[b].d));
        }
        /* and sa_q8_act_x8_put groups them as the test's builder does, zeros after the last token */
        BlockQ8_0 q3[15];
        float d3[15];
        int32_t s3[15];
        for (int e = 0; e < 3 * 160; e++) x[e] = rng_normal();
        for (int t = 0; t < 3; t++) sa_quantize_row_q8_0(x + 160 * t, q3 + 5 * t, 160);
        sa_q8_act_extras(q3, 15, d3, s3);
        SaQ8x8 got[5], want[5];
        memset(got, 0x5A, sizeof got);
        for (int t = 0; t < 3; t++) sa_q8_act_x8_put(q3 + 5 * t, d3 + 5 * t, s3 + 5 * t, 5, t, got);
        for (int t = 3; t < 8; t++) sa_q8_act_x8_put(NULL, NULL, NULL, 5, t, got);
        test_group_x8(q3, d3, s3, 5, 3, want);
        int same = 1;
        for (int b = 0; b < 5; b++)
            for (int t = 0; t < 8; t++) {
                const int z = t >= 3; /* the padding: zero quants, scale and sum */
                for (int j = 0; j < 32; j++) same &= got[b].qs[t][j] == (z ? 0 : want[b].qs[t][j]);
                same &= z ? got[b].d[t] == 0.0f && got[b].ns8[t] == 0 : got[b].d[t] == want[b].d[t] && got[b].ns8[t] == want[b].ns8[t];
            }
        CHECK(same);
    }
    free(x);
    free(w4);
    free(w8);
    free(a);
    free(p4);
    free(p8);
    free(as);
    free(ad);
    free(x8);
}

/* ---- decode prefetch addresses (kernels.h: sa_prefetch_at, sa_pf_dist) ----
 * The decode and small-batch GEMMs read a run of consecutive groups (matmul.c gives each thread
 * one or two runs) in passes of n groups side by side: n = 1 for every table's decode GEMV and
 * AVX2's Q8_0 tiles, n = 2 for the pair tiles (AVX-512's batches, AVX2's Q4_0 batches; an odd
 * last group alone). Per block column b each stream of a pass prefetches, as the kernels do,
 *     sa_prefetch_at(stream + b, sa_pf_dist(n, group bytes), block bytes, end of run)
 * This replays those addresses for every matrix of the synthetic presets (tools/synth: the five
 * architectures) in Q4_0 and Q8_0, split into runs as for 1 and 2 threads, and checks that
 *   - no prefetch target falls behind a read position of any stream of the same pass (issue
 *     #23: a fixed 32 KiB per stream put group g's targets behind group g+1's reads when a
 *     group is longer than that, Q4_0 at K = 8192, and g+1 was never prefetched in time);
 *   - nothing at or past the run's end is prefetched (another thread reads what follows);
 *   - every line at least one prefetch distance past the run's start is prefetched before the
 *     pass that reads it. */
typedef struct {
    const char *name;
    int hidden, heads, kv_heads, head_dim, ff, vocab;
} PfPreset;

/* Replays one run of ng groups that starts at base (its page alignment matters to the page lead);
 * returns 0 or fills msg. lead_pages marks the 4 KiB pages of the run that got a lead prefetch. */
static int pf_replay_run(const char *base, int nb, size_t bs, int ng, int n, uint32_t *first, uint8_t *lead_pages, char *msg,
                         size_t cap) {
    const size_t gbytes = (size_t)nb * bs, end = (size_t)ng * gbytes, lines = (end + 63) / 64;
    const size_t page0 = (uintptr_t)base / SA_PF_PAGE, pages = ((uintptr_t)base + end) / SA_PF_PAGE - page0 + 1;
    size_t leads = 0, lead_dist = 0;
    for (size_t l = 0; l < lines; l++) first[l] = UINT32_MAX;
    memset(lead_pages, 0, pages);
    uint32_t step = 0;
    for (int g = 0; g < ng; g += n) {
        const int ns = g + n <= ng ? n : ng - g; /* streams in this pass */
        const size_t dist = sa_pf_dist(ns, gbytes);
        if (dist * sa_pf_lead > lead_dist) lead_dist = dist * sa_pf_lead;
        for (int b = 0; b < nb; b++, step++) {
            size_t maxread = 0;
            for (int s = 0; s < ns; s++) {
                const size_t r = (size_t)(g + s) * gbytes + (size_t)b * bs;
                if (r > maxread) maxread = r;
                /* the reads of this step: their lines must have been prefetched earlier */
                for (size_t l = r / 64; l <= (r + bs - 1) / 64; l++)
                    if (l * 64 >= dist + 64 && first[l] >= step) {
                        snprintf(msg, cap, "n=%d, group %d block %d (byte %zu of %zu): not prefetched before it is read", n,
                                 g + s, b, l * 64, end);
                        return -1;
                    }
            }
            for (int s = 0; s < ns; s++) {
                const size_t r = (size_t)(g + s) * gbytes + (size_t)b * bs;
                for (size_t o = 0; o < bs; o += 64) { /* sa_prefetch_at's loop, its clamp included */
                    const size_t t = r + dist + o;
                    if (t >= end) continue;
                    if (t < maxread) {
                        snprintf(msg, cap, "n=%d, group %d block %d: prefetch at byte %zu is behind another stream's read at %zu",
                                 n, g + s, b, t, maxread);
                        return -1;
                    }
                    if (first[t / 64] == UINT32_MAX) first[t / 64] = step;
                }
                /* the page lead (sa_prefetch_lead): a page start of this run, inside the stream's
                 * own later passes like the lines above, each page once */
                const size_t off = sa_pf_lead_off(base + r, dist, bs, base + end);
                if (!off) continue;
                const size_t t = r + off;
                if (t >= end || ((uintptr_t)base + t) % SA_PF_PAGE || t < maxread) {
                    snprintf(msg, cap, "n=%d, group %d block %d: page lead at byte %zu (run end %zu, reads at %zu)", n, g + s, b,
                             t, end, maxread);
                    return -1;
                }
                lead_pages[((uintptr_t)base + t) / SA_PF_PAGE - page0] = 1;
                leads++;
            }
        }
    }
    /* every page start at least the longest lead past the run's start is led (a pass's lead
     * covers its streams' groups one lead later; an odd last group leads at the shorter
     * one-stream distance, so some pages are led twice, which costs one prefetch) */
    for (size_t pg = page0 + 1; pg < page0 + pages; pg++) {
        const size_t t = pg * SA_PF_PAGE - (uintptr_t)base;
        if (t >= lead_dist && t < end && !lead_pages[pg - page0]) {
            snprintf(msg, cap, "n=%d: page at byte %zu of %zu never led (%zu leads)", n, t, end, leads);
            return -1;
        }
    }
    return 0;
}

TEST(kernels_prefetch_streams) {
    static const PfPreset presets[] = {
        /* tools/synth/synth_main.c's presets; vocabularies of the published models */
        {"llama-3.2-1b", 2048, 32, 8, 64, 8192, 128256},  {"llama-2-7b", 4096, 32, 32, 128, 11008, 32000},
        {"mistral-7b", 4096, 32, 8, 128, 14336, 32000},    {"qwen2.5-0.5b", 896, 14, 2, 64, 4864, 151936},
        {"gemma-2b", 2048, 8, 1, 256, 16384, 256000},      {"gemma-2-2b", 2304, 8, 4, 256, 9216, 256000},
    };
    /* runs longer than this replay their first groups only (same parity): the addresses are
     * translation-invariant and periodic per pass, and every distance is at most one pass or
     * 32 KiB, so longer runs repeat what these show */
    enum { MAXG = 64 };
    const size_t maxrun = (size_t)(MAXG + 1) * 512 * sizeof(BlockQ8_0x8);
    uint32_t *first = malloc((maxrun / 64 + 2) * sizeof *first);
    uint8_t *lead_pages = malloc(maxrun / SA_PF_PAGE + 2);
    char *buf = aligned_alloc(SA_PF_PAGE, maxrun + SA_PF_PAGE); /* the runs' addresses (never read) */
    const unsigned old_lead = sa_pf_lead;
    sa_pf_lead = SA_PF_LEAD;
    int checked = 0, failed = 0;
    char msg[256];
    for (size_t pi = 0; pi < SA_ARRAY_LEN(presets); pi++) {
        const PfPreset *P = &presets[pi];
        const int q = P->heads * P->head_dim, kv = P->kv_heads * P->head_dim;
        const struct {
            const char *name;
            int rows, cols;
        } mats[] = {{"wq", q, P->hidden}, {"wk/wv", kv, P->hidden}, {"wo", P->hidden, q}, {"gate/up", P->ff, P->hidden},
                    {"down", P->hidden, P->ff}, {"output", P->vocab, P->hidden}};
        for (size_t mi = 0; mi < SA_ARRAY_LEN(mats); mi++) {
            const int groups = mats[mi].rows / 8, nb = mats[mi].cols / 32;
            for (int type = 0; type < 2; type++) {
                const size_t bs = type == 0 ? sizeof(BlockQ4_0x8) : sizeof(BlockQ8_0x8);
                for (int nth = 1; nth <= 2; nth++) {
                    /* matmul.c's decode runs: one per thread, or two per thread, an even number of groups */
                    int gper = nth == 1 ? groups : (groups + 2 * nth - 1) / (2 * nth);
                    gper = (gper + 1) & ~1;
                    for (int g0 = 0; g0 < groups; g0 += gper) {
                        int len = SA_MIN(gper, groups - g0);
                        if (len > MAXG) len = MAXG + (len & 1);
                        for (int n = 1; n <= 2; n++) {
                            checked++;
                            const char *base = buf + (n == 1 ? 0 : 192); /* page-aligned runs and others */
                            if (pf_replay_run(base, nb, bs, len, n, first, lead_pages, msg, sizeof msg) && ++failed <= 8)
                                CHECKF(0, "%s %s (%d x %d) %s, %d thread(s), run of %d groups: %s", P->name, mats[mi].name,
                                       mats[mi].rows, mats[mi].cols, type ? "Q8_0" : "Q4_0", nth, len, msg);
                        }
                    }
                }
            }
        }
    }
    CHECKF(failed == 0, "%d of %d runs replayed had a misplaced prefetch (the first 8 shown)", failed, checked);
    CHECK(checked > 100);
    sa_pf_lead = old_lead;
    free(first);
    free(lead_pages);
    free(buf);
}

/* ---- attention and elementwise kernels ---- */

TEST(kernels_attention_f16) {
    GET_TABLES(tabs, nt);
    rng_seed(10);
    static const int hds[] = {1, 3, 7, 8, 9, 16, 31, 32, 33, 63, 64, 80, 96, 128, 256};
    static const int ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 100, 333};
    enum { MAXHD = 256, MAXNP = 333, PAD = 5 };
    uint16_t *kv = malloc((size_t)MAXNP * (3 * MAXHD + PAD) * sizeof *kv);
    float *q = malloc(MAXHD * sizeof *q), *p = malloc(MAXNP * sizeof *p);
    float *sr = malloc(MAXNP * sizeof *sr), *st = malloc(MAXNP * sizeof *st);
    float *o0 = malloc((MAXHD + GUARD) * sizeof *o0), *or_ = malloc((MAXHD + GUARD) * sizeof *or_),
          *ot = malloc((MAXHD + GUARD) * sizeof *ot);
    for (size_t hi = 0; hi < SA_ARRAY_LEN(hds); hi++) {
        for (size_t ni = 0; ni < SA_ARRAY_LEN(ns); ni++) {
            const int hd = hds[hi], n = ns[ni];
            const size_t stride = (size_t)3 * hd + PAD; /* rows of a wider cache, odd offsets */
            for (size_t e = 0; e < (size_t)n * stride; e++) kv[e] = sa_fp32_to_fp16(rng_normal());
            for (int i = 0; i < hd; i++) q[i] = rng_normal();
            for (int j = 0; j < n; j++) p[j] = (float)rng_unif();
            for (int i = 0; i < hd + GUARD; i++) o0[i] = i < hd ? rng_normal() : -4321.0f;
            const uint16_t *base = kv + hd + 1;
            ref->attn_scores_f16(hd, n, base, stride, q, sr);
            memcpy(or_, o0, (hd + GUARD) * sizeof *o0);
            ref->attn_values_f16(hd, n, base, stride, p, or_);
            for (int t = 0; t < nt; t++) {
                for (int j = 0; j < n; j++) st[j] = -1.0f;
                tabs[t]->attn_scores_f16(hd, n, base, stride, q, st);
                const double es = test_nmse(st, sr, n);
                CHECKF(es < 1e-7, "%s attn_scores_f16 hd=%d n=%d: nmse %g", tabs[t]->name, hd, n, es);
                memcpy(ot, o0, (hd + GUARD) * sizeof *o0);
                tabs[t]->attn_values_f16(hd, n, base, stride, p, ot);
                const double ev = test_nmse(ot, or_, hd);
                CHECKF(ev < 1e-7, "%s attn_values_f16 hd=%d n=%d: nmse %g", tabs[t]->name, hd, n, ev);
                int guard_ok = 1;
                for (int i = hd; i < hd + GUARD; i++) guard_ok &= ot[i] == -4321.0f;
                CHECKF(guard_ok, "%s attn_values_f16 hd=%d writes past the head", tabs[t]->name, hd);
            }
        }
    }
    free(kv);
    free(q);
    free(p);
    free(sr);
    free(st);
    free(o0);
    free(or_);
    free(ot);
}

/* Attention over a Q8_0 cache: rows of `stride` blocks, the head's hd values starting at value
 * `off` of the first block (heads inside a block, straddling blocks, block-aligned). Real data
 * (random scales, quants from quantize_q8_0 of normal values): NMSE < 1e-7 against the reference.
 * Integer data (scales 1.0, small integer q and p): every partial sum is an integer below 2^24,
 * so every summation order is exact and the tables must agree bit for bit. */
TEST(kernels_attention_q8_0) {
    GET_TABLES(tabs, nt);
    rng_seed(11);
    static const struct { int hd, off; } shapes[] = {
        {1, 0},   {3, 5},   {7, 25},  {8, 0},  {8, 8},  {8, 24},  {16, 16}, {20, 12}, {31, 1},  {32, 0},
        {32, 16}, {33, 0},  {48, 16}, {64, 0}, {64, 8}, {80, 16}, {96, 0},  {128, 0}, {256, 0}, {100, 31},
    };
    static const int ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 100, 333};
    enum { MAXHD = 256, MAXNP = 333, MAXSTRIDE = MAXHD / QK8_0 + 4 };
    BlockQ8_0 *kv = malloc((size_t)MAXNP * MAXSTRIDE * sizeof *kv);
    float *row = malloc((size_t)MAXSTRIDE * QK8_0 * sizeof *row);
    float *q = malloc(MAXHD * sizeof *q), *p = malloc(MAXNP * sizeof *p);
    float *sr = malloc(MAXNP * sizeof *sr), *st = malloc(MAXNP * sizeof *st);
    float *o0 = malloc((MAXHD + GUARD) * sizeof *o0), *or_ = malloc((MAXHD + GUARD) * sizeof *or_),
          *ot = malloc((MAXHD + GUARD) * sizeof *ot);
    for (int exact = 0; exact < 2; exact++) {
        for (size_t si = 0; si < SA_ARRAY_LEN(shapes); si++) {
            for (size_t ni = 0; ni < SA_ARRAY_LEN(ns); ni++) {
                const int hd = shapes[si].hd, off = shapes[si].off, n = ns[ni];
                /* the head's blocks plus one more on each side: rows of a wider cache */
                const int used = (off + hd + QK8_0 - 1) / QK8_0;
                const size_t stride = (size_t)used + 2;
                for (int j = 0; j < n; j++) {
                    BlockQ8_0 *r = kv + (size_t)j * stride;
                    if (exact) {
                        for (size_t b = 0; b < stride; b++) {
                            r[b].d = 0x3C00; /* 1.0 */
                            for (int i = 0; i < QK8_0; i++) r[b].qs[i] = (int8_t)rng_int(-127, 127);
                        }
                    } else {
                        for (size_t i = 0; i < stride * QK8_0; i++) row[i] = rng_normal() * (float)(1 + (i / QK8_0) % 3);
                        ref->quantize_q8_0(row, r, (int)(stride * QK8_0));
                    }
                }
                for (int i = 0; i < hd; i++) q[i] = exact ? (float)rng_int(-8, 8) : rng_normal();
                for (int j = 0; j < n; j++) p[j] = exact ? (float)rng_int(0, 3) : (float)rng_unif();
                for (int i = 0; i < hd + GUARD; i++) o0[i] = i < hd ? (exact ? (float)rng_int(-50, 50) : rng_normal()) : -4321.0f;
                const BlockQ8_0 *base = kv + 1;
                ref->attn_scores_q8_0(hd, n, base, stride, off, q, sr);
                memcpy(or_, o0, (hd + GUARD) * sizeof *o0);
                ref->attn_values_q8_0(hd, n, base, stride, off, p, or_);
                for (int t = 0; t < nt; t++) {
                    for (int j = 0; j < n; j++) st[j] = -1.0f;
                    tabs[t]->attn_scores_q8_0(hd, n, base, stride, off, q, st);
                    memcpy(ot, o0, (hd + GUARD) * sizeof *o0);
                    tabs[t]->attn_values_q8_0(hd, n, base, stride, off, p, ot);
                    if (exact) {
                        CHECKF(!memcmp(st, sr, (size_t)n * sizeof *st), "%s attn_scores_q8_0 hd=%d off=%d n=%d: not exact",
                               tabs[t]->name, hd, off, n);
                        CHECKF(!memcmp(ot, or_, (size_t)hd * sizeof *ot), "%s attn_values_q8_0 hd=%d off=%d n=%d: not exact",
                               tabs[t]->name, hd, off, n);
                    } else {
                        const double es = test_nmse(st, sr, n), ev = test_nmse(ot, or_, hd);
                        CHECKF(es < 1e-7, "%s attn_scores_q8_0 hd=%d off=%d n=%d: nmse %g", tabs[t]->name, hd, off, n, es);
                        CHECKF(ev < 1e-7, "%s attn_values_q8_0 hd=%d off=%d n=%d: nmse %g", tabs[t]->name, hd, off, n, ev);
                    }
                    int guard_ok = 1;
                    for (int i = hd; i < hd + GUARD; i++) guard_ok &= ot[i] == -4321.0f;
                    CHECKF(guard_ok, "%s attn_values_q8_0 hd=%d off=%d writes past the head", tabs[t]->name, hd, off);
                }
            }
        }
    }
    /* the reference itself against a plain dequantize-then-dot (exact integer data above makes
     * this a check of the block/offset addressing) */
    {
        const int hd = 20, off = 20, n = 3;
        const size_t stride = 3;
        for (size_t b = 0; b < n * stride; b++) {
            kv[b].d = sa_fp32_to_fp16(0.5f);
            for (int i = 0; i < QK8_0; i++) kv[b].qs[i] = (int8_t)rng_int(-127, 127);
        }
        for (int i = 0; i < hd; i++) q[i] = (float)rng_int(-4, 4);
        ref->attn_scores_q8_0(hd, n, kv, stride, off, q, sr);
        int ok = 1;
        for (int j = 0; j < n; j++) {
            double want = 0;
            for (int i = 0; i < hd; i++) {
                const int e = off + i;
                want += 0.5 * kv[j * stride + e / 32].qs[e % 32] * q[i];
            }
            ok &= sr[j] == (float)want;
        }
        CHECKF(ok, "scalar attn_scores_q8_0 addresses the wrong values");
    }
    free(kv);
    free(row);
    free(q);
    free(p);
    free(sr);
    free(st);
    free(o0);
    free(or_);
    free(ot);
}

/* Relative error of the SIMD exp against expf, per element: a few ulp. */
static int close_rel(float a, float b, float rel) {
    if (a == b) return 1;
    if (fabsf(b) < 1e-30f) return fabsf(a - b) < 1e-30f; /* flushed underflow */
    return fabsf(a - b) <= rel * fabsf(b);
}

TEST(kernels_exp_silu) {
    GET_TABLES(tabs, nt);
    rng_seed(11);
    enum { N = 4099 };
    float *x = malloc(N * sizeof *x), *xr = malloc(N * sizeof *xr), *xt = malloc(N * sizeof *xt);
    float *u = malloc(N * sizeof *u);
    for (int i = 0; i < N; i++) {
        x[i] = (float)(rng_unif() * 120.0 - 100.0); /* -100 .. 20; minus m = 20 below: -120 .. 0 */
        u[i] = rng_normal();
    }
    x[5] = 20.0f; /* the maximum: exp(0) = 1 exactly */
    for (int t = 0; t < nt; t++) {
        for (int n = 0; n <= N; n += n < 40 ? 1 : 409) {
            memcpy(xr, x, (size_t)n * sizeof *x);
            memcpy(xt, x, (size_t)n * sizeof *x);
            const float sr = ref->exp_sub_sum(n, xr, 20.0f), st = tabs[t]->exp_sub_sum(n, xt, 20.0f);
            int bad = -1;
            for (int i = 0; i < n && bad < 0; i++)
                if (!close_rel(xt[i], xr[i], 5e-7f)) bad = i;
            CHECKF(bad < 0, "%s exp_sub_sum n=%d: exp(%g) = %.9g, expf %.9g", tabs[t]->name, n, bad >= 0 ? x[bad] - 20.0 : 0.0,
                   bad >= 0 ? xt[bad] : 0.0, bad >= 0 ? xr[bad] : 0.0);
            CHECKF(close_rel(st, sr, 1e-5f), "%s exp_sub_sum n=%d: sum %.9g, reference %.9g", tabs[t]->name, n, st, sr);
            if (n > 5) CHECK(xt[5] == 1.0f);
        }
        /* silu(g) * u over -90 .. 90 */
        for (int i = 0; i < N; i++) xr[i] = xt[i] = (float)(rng_unif() * 180.0 - 90.0);
        ref->silu_mul(N, xr, u);
        tabs[t]->silu_mul(N, xt, u);
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++)
            if (!close_rel(xt[i], xr[i], 1e-6f)) bad = i;
        CHECKF(bad < 0, "%s silu_mul: element %d = %.9g, reference %.9g", tabs[t]->name, bad, bad >= 0 ? xt[bad] : 0.0,
               bad >= 0 ? xr[bad] : 0.0);
    }
    free(x);
    free(xr);
    free(xt);
    free(u);
}

/* exp_sub_sum and silu_mul at the edges: every tail length with guards after the row, a dense
 * sweep of the whole softmax range (-87.3 .. 0) against expf, the special arguments (below
 * ln FLT_MIN = -87.34 must give 0 or expf's tiny value, never garbage; -inf gives 0; a large m),
 * and silu over huge, tiny and signed-zero inputs. */
TEST(kernels_exp_silu_edges) {
    GET_TABLES(tabs, nt);
    rng_seed(12);
    enum { N = 1 << 16 };
    float *x = malloc((N + GUARD) * sizeof *x), *xr = malloc((N + GUARD) * sizeof *xr),
          *xt = malloc((N + GUARD) * sizeof *xt), *u = malloc(N * sizeof *u);
    static const float special[] = {0.0f,      -0.0f,     -1e-30f,  -1e-8f,    -0.5f,     -0.6931472f, -1.0f,
                                    -10.0f,    -43.6f,    -80.0f,   -87.0f,    -87.3f,    -87.33f,     -87.3365f,
                                    -87.3366f, -87.34f,   -87.5f,   -88.0f,    -95.0f,    -103.2789f,  -103.98f,
                                    -104.0f,   -110.0f,   -150.0f,  -1000.0f,  -1e30f,    -INFINITY,   -3.4e38f};
    for (int t = 0; t < nt; t++) {
        /* special arguments, as x - m with m = 0 and with a large m */
        for (int mi = 0; mi < 2; mi++) {
            const float m = mi ? 1000.0f : 0.0f;
            const int ns = (int)SA_ARRAY_LEN(special);
            for (int i = 0; i < ns; i++) xt[i] = special[i] + m;
            tabs[t]->exp_sub_sum(ns, xt, m);
            for (int i = 0; i < ns; i++) {
                const float arg = (special[i] + m) - m; /* what the kernel sees after rounding */
                const float want = expf(arg);
                const int ok = isfinite(xt[i]) && xt[i] >= 0.0f && close_rel(xt[i], want, 5e-7f) &&
                               (arg >= -87.34f || xt[i] <= 1.17549435e-38f);
                CHECKF(ok, "%s exp_sub_sum: exp(%g) (m = %g) = %.9g, expf %.9g", tabs[t]->name, arg, m, xt[i], want);
            }
        }
        /* every tail length 0..40 (and a few longer), guards after the row untouched */
        for (int n = 0; n <= 70; n++) {
            for (int i = 0; i < n + GUARD; i++) {
                x[i] = i < n ? (float)(rng_unif() * 100.0 - 95.0) : 777.0f;
                u[i < n ? i : 0] = rng_normal();
            }
            memcpy(xr, x, (size_t)(n + GUARD) * sizeof *x);
            memcpy(xt, x, (size_t)(n + GUARD) * sizeof *x);
            const float sr = ref->exp_sub_sum(n, xr, 5.0f), st = tabs[t]->exp_sub_sum(n, xt, 5.0f);
            int bad = -1, guard = 1;
            for (int i = 0; i < n && bad < 0; i++)
                if (!close_rel(xt[i], xr[i], 5e-7f)) bad = i;
            for (int i = n; i < n + GUARD; i++) guard &= xt[i] == 777.0f;
            CHECKF(bad < 0 && guard && close_rel(st, sr, 1e-5f),
                   "%s exp_sub_sum n=%d: %s (sum %.9g, reference %.9g)", tabs[t]->name, n,
                   bad >= 0 ? "an element differs" : guard ? "the sum differs" : "writes past x[n]", st, sr);
            /* silu on the same lengths */
            for (int i = 0; i < n + GUARD; i++) xr[i] = xt[i] = i < n ? (float)(rng_unif() * 40.0 - 20.0) : 777.0f;
            ref->silu_mul(n, xr, u);
            tabs[t]->silu_mul(n, xt, u);
            bad = -1, guard = 1;
            for (int i = 0; i < n && bad < 0; i++)
                if (!close_rel(xt[i], xr[i], 1e-6f)) bad = i;
            for (int i = n; i < n + GUARD; i++) guard &= xt[i] == 777.0f;
            CHECKF(bad < 0 && guard, "%s silu_mul n=%d: %s", tabs[t]->name, n,
                   bad >= 0 ? "an element differs" : "writes past g[n]");
        }
        /* dense sweep of the softmax range: N evenly spaced arguments in [-87.3, 0] */
        for (int i = 0; i < N; i++) x[i] = xt[i] = (float)(-87.3 * i / (N - 1));
        tabs[t]->exp_sub_sum(N, xt, 0.0f);
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++)
            if (!close_rel(xt[i], expf(x[i]), 5e-7f)) bad = i;
        CHECKF(bad < 0, "%s exp_sub_sum sweep: exp(%.9g) = %.9g, expf %.9g", tabs[t]->name, bad >= 0 ? x[bad] : 0.0,
               bad >= 0 ? xt[bad] : 0.0, bad >= 0 ? expf(x[bad]) : 0.0);
        /* silu: signed zeros, tiny, large and huge gates */
        static const float gs[] = {0.0f,   -0.0f,  1e-30f, -1e-30f, 1e-6f,  -1e-6f,  0.5f,   -0.5f,
                                   20.0f,  -20.0f, 87.0f,  -87.0f,  88.5f,  -88.5f,  89.0f,  -89.0f,
                                   100.0f, -100.0f, 1e10f, -1e10f,  3e38f,  -3e38f};
        const int ng = (int)SA_ARRAY_LEN(gs);
        for (int i = 0; i < ng; i++) {
            xr[i] = xt[i] = gs[i];
            u[i] = i & 1 ? -1.5f : 1.0f;
        }
        ref->silu_mul(ng, xr, u);
        tabs[t]->silu_mul(ng, xt, u);
        for (int i = 0; i < ng; i++)
            CHECKF(close_rel(xt[i], xr[i], 1e-6f), "%s silu_mul(%g) * %g = %.9g, reference %.9g", tabs[t]->name, gs[i],
                   u[i], xt[i], xr[i]);
    }
    free(x);
    free(xr);
    free(xt);
    free(u);
}

/* The block types beyond Q8_0 / Q4_0 (Q4_1 ... Q6_K, Q2_K, Q3_K, IQ4_NL, IQ4_XS): on weights and
 * activations quantized by the reference quantizers, the scalar dot equals the double dot of
 * the dequantized rows up to float rounding (so its integer scale and min bookkeeping is right),
 * and every table's dot, gemm (one token and a batch) and activation conversion give the scalar
 * reference's values bit for bit (the sums are integer per block; the float combination is the
 * reference's). */
/* The weight types beyond Q8_0 / Q4_0 (kernels.h: "block types beyond Q8_0 / Q4_0"), for the tests below */
static const SaDtype block_types[] = {SA_Q4_1, SA_Q5_0, SA_Q5_1, SA_Q4_K, SA_Q5_K, SA_Q6_K,
                                      SA_Q2_K, SA_Q3_K, SA_IQ4_NL, SA_IQ4_XS};

TEST(kernels_block_types) {
    const SaKernels *tabs[8];
    const int nt = simd_tables(tabs);
    /* R: two 8-row groups and one more row; 10 tokens: past the NEON GEMMs' runs of 8 (kquant_neon.h) */
    enum { N = 2048, R = 17, TT = 10 };
    float *w = malloc((size_t)R * N * sizeof *w), *x = malloc((size_t)TT * N * sizeof *x);
    float *wd = malloc(N * sizeof *wd), *xd = malloc(N * sizeof *xd), *y = malloc((size_t)TT * R * sizeof *y);
    uint8_t *wq = malloc((size_t)R * N * 2), *aq = malloc((size_t)TT * N * 2), *aq2 = malloc((size_t)TT * N * 2);
    rng_seed(16);
    for (size_t t = 0; t < SA_ARRAY_LEN(block_types); t++) {
        const SaDtype dt = block_types[t];
        const SaDtypeTraits *tr = sa_dtype_tr(dt);
        const SaDtype vt = (SaDtype)tr->vec_dot_type;
        for (int n = tr->block; n <= N; n *= 2) {
            const size_t wrow = sa_row_bytes(dt, n), arow = sa_row_bytes(vt, n);
            for (int i = 0; i < R * n; i++) w[i] = rng_normal() * (i % 97 == 0 ? 8.0f : 1.0f);
            for (int i = 0; i < TT * n; i++) x[i] = rng_normal() + (i % 5 == 0 ? 0.5f : 0.0f);
            for (int r = 0; r < R; r++) sa_quantize_row(dt, w + (size_t)r * n, wq + r * wrow, n);
            for (int k = 0; k < TT; k++) ref->type[vt].from_float(x + (size_t)k * n, aq + k * arow, n);
            for (int r = 0; r < R; r++) {
                sa_dequantize_row(dt, wq + r * wrow, wd, n);
                sa_dequantize_row(vt, aq, xd, n);
                double exact = 0, mag = 0;
                for (int i = 0; i < n; i++) {
                    exact += (double)wd[i] * xd[i];
                    mag += fabs((double)wd[i] * xd[i]);
                }
                const float got = ref->type[dt].dot(n, wq + r * wrow, aq);
                /* Q8_1 carries d * (sum of its quants) rounded to fp16 (as ggml's), and Q4_1 / Q5_1
                 * multiply it by their minimum (both are the second fp16 of the block): allow
                 * that rounding, |m * s| / 1024 per block */
                double tol = 1e-5 * mag + 1e-6;
                if (vt == SA_Q8_1)
                    for (int b = 0; b < n / 32; b++) {
                        uint16_t m, s;
                        memcpy(&m, wq + r * wrow + b * tr->block_bytes + 2, 2);
                        memcpy(&s, aq + b * sizeof(BlockQ8_1) + 2, 2);
                        tol += fabs((double)sa_fp16_to_fp32(m) * sa_fp16_to_fp32(s)) / 1024;
                    }
                CHECKF(fabs(got - exact) <= tol, "scalar %s n=%d row %d: %.7g, dequantized %.7g", tr->name, n, r, got,
                       exact);
            }
            for (int k = 0; k < nt; k++) {
                for (int a = 0; a < TT; a++) tabs[k]->type[vt].from_float(x + (size_t)a * n, aq2 + a * arow, n);
                CHECKF(memcmp(aq, aq2, TT * arow) == 0, "%s: %s activations differ from the reference", tabs[k]->name,
                       sa_dtype_name(vt));
                /* decode (one token) and a batch; tokens past T must stay untouched */
                for (int T = 1; T <= TT; T += TT - 1) {
                    for (int i = 0; i < TT * R; i++) y[i] = -7.0f;
                    tabs[k]->type[dt].gemm(n, R, wq, wrow, aq, arow, T, y, R);
                    for (int r = 0; r < R; r++)
                        for (int a = 0; a < TT; a++) {
                            const float want = a < T ? ref->type[dt].dot(n, wq + r * wrow, aq + a * arow) : -7.0f;
                            const float d = a < T ? tabs[k]->type[dt].dot(n, wq + r * wrow, aq + a * arow) : -7.0f;
                            CHECKF(d == want && y[a * R + r] == want,
                                   "%s %s n=%d T=%d row %d token %d: dot %.9g gemm %.9g, ref %.9g", tabs[k]->name,
                                   tr->name, n, T, r, a, d, y[a * R + r], want);
                        }
                }
            }
        }
    }
    if (nt == 0) printf("    no SIMD table on this CPU: the scalar reference alone checked\n");
    free(w), free(x), free(wd), free(xd), free(y), free(wq), free(aq), free(aq2);
}

/* Every table's row GEMMs on a prefill-sized batch: 70 tokens, past the 64 that the x86 low-bit
 * GEMMs take per pass (simd/lowbit_x86.h: LB_TC) and not a multiple of their 8-token groups; every
 * value equals the reference dot bit for bit, the padding between y's rows stays untouched. */
TEST(kernels_block_types_long_batch) {
    const SaKernels *tabs[8];
    const int nt = simd_tables(tabs);
    enum { N = 512, R = 3, T = 70, LDY = R + 2 };
    float *w = malloc((size_t)R * N * sizeof *w), *x = malloc((size_t)T * N * sizeof *x);
    float *y = malloc((size_t)T * LDY * sizeof *y);
    uint8_t *wq = malloc((size_t)R * N * 2), *aq = malloc((size_t)T * N * 2);
    rng_seed(70);
    for (size_t ti = 0; ti < SA_ARRAY_LEN(block_types); ti++) {
        const SaDtype dt = block_types[ti];
        const SaDtypeTraits *tr = sa_dtype_tr(dt);
        const SaDtype vt = (SaDtype)tr->vec_dot_type;
        const size_t wrow = sa_row_bytes(dt, N), arow = sa_row_bytes(vt, N);
        for (int i = 0; i < R * N; i++) w[i] = rng_normal();
        for (int i = 0; i < T * N; i++) x[i] = rng_normal();
        for (int r = 0; r < R; r++) sa_quantize_row(dt, w + (size_t)r * N, wq + r * wrow, N);
        for (int a = 0; a < T; a++) ref->type[vt].from_float(x + (size_t)a * N, aq + a * arow, N);
        for (int k = 0; k < nt; k++) {
            for (int i = 0; i < T * LDY; i++) y[i] = -7.0f;
            tabs[k]->type[dt].gemm(N, R, wq, wrow, aq, arow, T, y, LDY);
            int bad = 0;
            for (int a = 0; a < T && !bad; a++)
                for (int r = 0; r < LDY && !bad; r++) {
                    const float want = r < R ? ref->type[dt].dot(N, wq + r * wrow, aq + a * arow) : -7.0f;
                    bad = y[a * LDY + r] != want;
                    CHECKF(!bad, "%s %s T=%d row %d token %d: gemm %.9g, want %.9g", tabs[k]->name, tr->name, T, r, a,
                           y[a * LDY + r], want);
                }
        }
    }
    if (nt == 0) printf("    no SIMD table on this CPU: nothing to compare\n");
    free(w), free(x), free(y), free(wq), free(aq);
}

/* The fp16 fields of a weight block of type t (offsets into the block); its other bytes may hold
 * any bits. */
static int block_halves(SaDtype t, size_t off[2]) {
    switch (t) {
    case SA_Q4_1: off[0] = offsetof(BlockQ4_1, d), off[1] = offsetof(BlockQ4_1, m); return 2;
    case SA_Q5_0: off[0] = offsetof(BlockQ5_0, d); return 1;
    case SA_Q5_1: off[0] = offsetof(BlockQ5_1, d), off[1] = offsetof(BlockQ5_1, m); return 2;
    case SA_Q4_K: off[0] = offsetof(BlockQ4_K, d), off[1] = offsetof(BlockQ4_K, dmin); return 2;
    case SA_Q5_K: off[0] = offsetof(BlockQ5_K, d), off[1] = offsetof(BlockQ5_K, dmin); return 2;
    case SA_Q6_K: off[0] = offsetof(BlockQ6_K, d); return 1;
    case SA_Q2_K: off[0] = offsetof(BlockQ2_K, d), off[1] = offsetof(BlockQ2_K, dmin); return 2;
    case SA_Q3_K: off[0] = offsetof(BlockQ3_K, d); return 1;
    case SA_IQ4_NL: off[0] = offsetof(BlockIQ4_NL, d); return 1;
    case SA_IQ4_XS: off[0] = offsetof(BlockIQ4_XS, d); return 1;
    default: return 0;
    }
}

/* The same types on weight blocks of random bytes (every level, high bit and scale pattern,
 * the largest ones included, which a quantizer seldom writes) with activations at +-127: every
 * table's dot and gemm (one token, a batch) equal the scalar reference bit for bit. */
TEST(kernels_block_types_any_bits) {
    const SaKernels *tabs[8];
    const int nt = simd_tables(tabs);
    enum { N = 512, R = 17, TT = 3 };
    float x[TT * N], y[TT * R];
    uint8_t *wq = malloc((size_t)R * N * 2), *aq = malloc((size_t)TT * N * 2);
    rng_seed(1616);
    for (size_t ti = 0; ti < SA_ARRAY_LEN(block_types); ti++) {
        const SaDtype dt = block_types[ti];
        const SaDtypeTraits *tr = sa_dtype_tr(dt);
        const SaDtype vt = (SaDtype)tr->vec_dot_type;
        const size_t wrow = sa_row_bytes(dt, N), arow = sa_row_bytes(vt, N);
        size_t off[2];
        const int nh = block_halves(dt, off);
        CHECKF(nh > 0, "%s: no fp16 fields listed", tr->name);
        for (size_t i = 0; i < R * wrow; i++) wq[i] = (uint8_t)rng_u32();
        for (size_t b = 0; b < R * wrow / tr->block_bytes; b++)
            for (int h = 0; h < nh; h++) { /* finite scales of either sign, 2^-4 .. 2^-2 */
                const uint16_t v = (uint16_t)(0x2C00 + (rng_u32() & 0x7FF) + (rng_u32() & 1 ? 0x8000 : 0));
                memcpy(wq + b * tr->block_bytes + off[h], &v, 2);
            }
        for (int i = 0; i < TT * N; i++) x[i] = rng_u32() & 1 ? 1.0f : -1.0f;
        for (int a = 0; a < TT; a++) ref->type[vt].from_float(x + a * N, aq + a * arow, N);
        for (int k = 0; k < nt; k++)
            for (int T = 1; T <= TT; T += TT - 1) {
                tabs[k]->type[dt].gemm(N, R, wq, wrow, aq, arow, T, y, R);
                for (int r = 0; r < R; r++)
                    for (int a = 0; a < T; a++) {
                        const float want = ref->type[dt].dot(N, wq + r * wrow, aq + a * arow);
                        const float d = tabs[k]->type[dt].dot(N, wq + r * wrow, aq + a * arow);
                        CHECKF(d == want && y[a * R + r] == want, "%s %s T=%d row %d token %d: dot %.9g gemm %.9g, ref %.9g",
                               tabs[k]->name, tr->name, T, r, a, d, y[a * R + r], want);
                    }
            }
    }
    if (nt == 0) test_skip("no SIMD kernel table for this CPU (scalar only)");
    free(wq), free(aq);
}

/* The repacked K-quant GEMMs (kernels.h: BlockQ4_Kx8, BlockQ6_Kx8, gemm_x8):
 *   - packing then unpacking gives back ggml's blocks byte for byte;
 *   - the scalar reference on the packed layout equals the one-row reference dot on ggml's
 *     layout, bit for bit (so the layout is decoded right);
 *   - every table's gemm_x8 equals that, bit for bit, for token counts 1..14 (all tile
 *     remainders, small batches and prefill batches past SA_PF_MAX_T), 1..3 groups (pair tiles
 *     and an odd group after them), 1..5 super-blocks, on quantized random data and on extremes
 *     (all levels at their maximum with the largest scales and activations +-127: the int16
 *     partial sums at their bounds), and writes nothing outside its outputs. */
TEST(kernels_gemm_kx8) {
    rng_seed(23);
    const SaKernels *all[8];
    int nall = sa_kernels_available(all, 8);
    if (emu_table() && nall < 8) all[nall++] = emu_table();
    enum { MAXNB = 5, MAXT = 14, MAXG = 3, LDY = 8 * MAXG + 3, N = MAXNB * QK_K };
    float *x = malloc(N * sizeof *x);
    uint8_t *wq = malloc((size_t)8 * MAXG * MAXNB * sizeof(BlockQ6_K)), *wp = malloc((size_t)8 * MAXG * MAXNB * sizeof(BlockQ6_K));
    BlockQ8_K *a = malloc((size_t)MAXT * MAXNB * sizeof *a);
    float yr[MAXT * LDY], yt[MAXT * LDY];
    static const SaDtype types[] = {SA_Q4_K, SA_Q6_K};
    for (int trial = 0; trial < 168; trial++) {
        const SaDtype dt = types[trial % 2];
        const size_t bb = sa_dtype_tr(dt)->block_bytes;
        const int T = trial / 2 % MAXT + 1, ng = trial / 28 % MAXG + 1, nb = rng_int(1, MAXNB), extreme = trial % 7 == 6;
        const int rows = 8 * ng, n = nb * QK_K;
        const size_t rb = (size_t)nb * bb;
        for (int r = 0; r < rows; r++) {
            const float ws = (float)pow(10.0, rng_unif() * 4.0 - 3.0);
            for (int e = 0; e < n; e++) x[e] = rng_normal() * ws + (r % 3 == 0 ? ws : 0.0f);
            sa_quantize_row(dt, x, wq + r * rb, n);
            if (extreme)
                for (int b = 0; b < nb; b++) {
                    uint8_t *blk = wq + r * rb + b * bb;
                    if (dt == SA_Q4_K) { /* sc = mn = 63, every nibble 15 */
                        BlockQ4_K *q = (BlockQ4_K *)blk;
                        memset(q->scales, 0xFF, sizeof q->scales);
                        memset(q->qs, 0xFF, sizeof q->qs);
                    } else { /* every level 63, scales -128 or 127 */
                        BlockQ6_K *q = (BlockQ6_K *)blk;
                        memset(q->ql, 0xFF, sizeof q->ql);
                        memset(q->qh, 0xFF, sizeof q->qh);
                        for (int s = 0; s < 16; s++) q->scales[s] = (int8_t)(((r + s) & 1) ? 127 : -128);
                    }
                }
        }
        for (int t = 0; t < T; t++) {
            for (int e = 0; e < n; e++) x[e] = rng_normal() * 2.0f;
            if (extreme)
                for (int e = 0; e < n; e++) x[e] = (t & 1) ? 1.0f : -1.0f; /* every quant +-127 */
            sa_quantize_row_q8_K(x, a + (size_t)t * nb, n);
        }
        /* pack, and unpack again */
        memcpy(wp, wq, rows * rb);
        int same = 1;
        for (int g = 0; g < ng; g++)
            for (int b = 0; b < nb; b++) {
                uint8_t *dst = wp + (size_t)g * 8 * rb + b * 8 * bb;
                if (dt == SA_Q4_K) {
                    const BlockQ4_K *src[8];
                    for (int i = 0; i < 8; i++) src[i] = (const BlockQ4_K *)(wq + (8 * g + i) * rb) + b;
                    sa_pack_q4_Kx8(src, (BlockQ4_Kx8 *)dst);
                    for (int i = 0; i < 8; i++) {
                        BlockQ4_K u;
                        sa_unpack_q4_Kx8((const BlockQ4_Kx8 *)dst, i, &u);
                        same &= memcmp(&u, src[i], sizeof u) == 0;
                    }
                } else {
                    const BlockQ6_K *src[8];
                    for (int i = 0; i < 8; i++) src[i] = (const BlockQ6_K *)(wq + (8 * g + i) * rb) + b;
                    sa_pack_q6_Kx8(src, (BlockQ6_Kx8 *)dst);
                    for (int i = 0; i < 8; i++) {
                        BlockQ6_K u;
                        sa_unpack_q6_Kx8((const BlockQ6_Kx8 *)dst, i, &u);
                        same &= memcmp(&u, src[i], sizeof u) == 0;
                    }
                }
            }
        CHECKF(same, "%s x8: unpacking a packed block does not give the block back (nb=%d)", sa_dtype_name(dt), nb);
        /* the packed reference against the one-row reference dots */
        for (int e = 0; e < MAXT * LDY; e++) yr[e] = -777.0f;
        ref->type[dt].gemm_x8(nb, ng, wp, a, T, yr, LDY);
        same = 1;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < rows; r++) {
                const float d = ref->type[dt].dot(n, wq + r * rb, a + (size_t)t * nb);
                same &= memcmp(&d, &yr[t * LDY + r], 4) == 0;
            }
        CHECKF(same, "scalar %s gemm_x8 differs from the scalar dots: nb=%d T=%d ng=%d%s", sa_dtype_name(dt), nb, T, ng,
               extreme ? " (extreme)" : "");
        for (int ti = 0; ti < nall; ti++) {
            const SaKernels *k = all[ti];
            CHECKF(k->type[dt].gemm_x8 != NULL, "table %s: no gemm_x8 for %s", k->name, sa_dtype_name(dt));
            if (!k->type[dt].gemm_x8) continue;
            for (int e = 0; e < MAXT * LDY; e++) yt[e] = -777.0f;
            k->type[dt].gemm_x8(nb, ng, wp, a, T, yt, LDY);
            int bad = -1;
            for (int e = 0; e < MAXT * LDY && bad < 0; e++) {
                const int inside = e / LDY < T && e % LDY < rows;
                if (inside ? memcmp(&yt[e], &yr[e], 4) != 0 : yt[e] != -777.0f) bad = e;
            }
            CHECKF(bad < 0, "%s gemm_%s_x8 nb=%d T=%d ng=%d%s: y[%d] = %.9g, scalar %.9g", k->name, sa_dtype_name(dt), nb, T,
                   ng, extreme ? " (extreme)" : "", bad, bad >= 0 ? yt[bad] : 0.0, bad >= 0 ? yr[bad] : 0.0);
        }
    }
    free(x), free(wq), free(wp), free(a);
}

/* Q8_K activations: every table's conversion is byte-identical to the reference on rows with
 * exact rounding ties (x * iscale = k + 0.5), a largest magnitude that occurs twice with both
 * signs (the first one sets the sign of the scale), all-zero and single-value blocks, tiny and
 * huge magnitudes. */
TEST(kernels_quantize_q8_K) {
    const SaKernels *all[8];
    int nall = sa_kernels_available(all, 8);
    if (emu_table() && nall < 8) all[nall++] = emu_table();
    rng_seed(24);
    enum { NB = 4, N = NB * QK_K };
    float *x = malloc(N * sizeof *x);
    BlockQ8_K r[NB], t[NB];
    for (int trial = 0; trial < 200; trial++) {
        const int kind = trial % 6;
        const float scale = (float)pow(10.0, rng_unif() * 8.0 - 4.0);
        for (int e = 0; e < N; e++) x[e] = rng_normal() * scale;
        for (int b = 0; b < NB; b++) {
            float *xb = x + b * QK_K;
            if (kind == 1) { /* ties: max 127 -> iscale -1 (mx = -127), values k + 0.5 */
                for (int e = 0; e < QK_K; e++) xb[e] = (float)rng_int(-126, 125) + 0.5f;
                xb[rng_int(0, QK_K - 1)] = -127.0f;
            } else if (kind == 2) { /* the largest magnitude twice, both signs, either order */
                const int i = rng_int(0, QK_K / 2 - 1), j = rng_int(QK_K / 2, QK_K - 1);
                xb[i] = (trial & 8) ? 5.0f * scale : -5.0f * scale;
                xb[j] = -xb[i];
            } else if (kind == 3) {
                memset(xb, 0, QK_K * sizeof *xb);
                if (b & 1) xb[rng_int(0, QK_K - 1)] = (trial & 16) ? -scale : scale;
            } else if (kind == 4) {
                for (int e = 0; e < QK_K; e++) xb[e] = (float)rng_int(-3, 3) * 1e-30f;
            }
        }
        sa_quantize_row_q8_K(x, r, N);
        for (int ti = 0; ti < nall; ti++) {
            memset(t, 0x5A, sizeof t);
            all[ti]->type[SA_Q8_K].from_float(x, t, N);
            CHECKF(memcmp(r, t, sizeof r) == 0, "%s quantize_q8_K differs from the reference (trial %d, kind %d)",
                   all[ti]->name, trial, kind);
        }
    }
    free(x);
}
