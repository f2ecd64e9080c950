/* dispatch.c - choose the kernel table for the running CPU.
 *
 * x86-64: one binary for every CPU; avx2.c and avx512.c are compiled with their own -m flags
 * and only called after cpuid (and xgetbv: the OS must save the wide registers) says so.
 * aarch64: NEON is baseline; dotprod/i8mm are probed through getauxval(AT_HWCAP). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

const SaKernels *sa_k = &sa_kernels_scalar;

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    if ((xgetbv0() & 6) != 6) return 0; /* XMM and YMM state enabled by the OS */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}

static int cpu_has_avx512(void) {
    unsigned a, b, c, d;
    if (!cpu_has_avx2()) return 0;
    if ((xgetbv0() & 0xE6) != 0xE6) return 0; /* opmask and ZMM state enabled */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    return f && bw && vl && vnni;
}
#endif

#if defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) /* older libc headers lack it; the value is the kernel ABI */
#endif
static int cpu_has_dotprod(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
#elif defined(__APPLE__)
static int cpu_has_dotprod(void) { return 1; } /* every Apple silicon core has it */
#else
static int cpu_has_dotprod(void) { return 0; } /* no portable probe: keep the safe table */
#endif
#endif

int sa_kernels_available(const SaKernels **out, int max) {
    int n = 0;
    if (n < max) out[n++] = &sa_kernels_scalar;
#if defined(__x86_64__)
    if (cpu_has_avx2() && n < max) out[n++] = &sa_kernels_avx2;
    if (cpu_has_avx512() && n < max) out[n++] = &sa_kernels_avx512;
#endif
#if defined(__aarch64__)
    if (n < max) out[n++] = &sa_kernels_neon;
    if (cpu_has_dotprod() && n < max) out[n++] = &sa_kernels_neon_dotprod;
#endif
    return n;
}

#if defined(__x86_64__)
/* The AVX-512 table emulated with SIMDe (simd/avx512.c built with -DSALIGN_SIMDE): linked only into
 * the test binaries (Makefile), never picked by itself; SALIGN_ISA=avx512_emu forces it there (on a
 * CPU with AVX2, which the emulation runs on). Elsewhere this weak reference is NULL. */
extern const SaKernels sa_kernels_avx512_emu __attribute__((weak));
#endif

int sa_kernels_select(const char *name) {
    const SaKernels *t[8];
    int n = sa_kernels_available(t, 8);
    for (int i = 0; i < n; i++) {
        if (strcmp(t[i]->name, name) == 0) {
            sa_k = t[i];
            return 0;
        }
    }
#if defined(__x86_64__)
    if (&sa_kernels_avx512_emu && cpu_has_avx2() && strcmp(name, sa_kernels_avx512_emu.name) == 0) {
        sa_k = &sa_kernels_avx512_emu;
        return 0;
    }
#endif
    return -1;
}

size_t sa_pf_ahead = SA_PF_AHEAD;
unsigned sa_pf_lead = SA_PF_LEAD;

int sa_pf_ahead_env(size_t *dist) {
    const char *pf = getenv("SALIGN_PF_AHEAD");
    if (!pf || !*pf) return 0;
    *dist = (size_t)strtoull(pf, NULL, 10);
    return 1;
}

void sa_kernels_init(void) {
    sa_dtype_init();
    const SaKernels *t[8];
    int n = sa_kernels_available(t, 8);
    sa_k = t[n - 1];
    const char *force = getenv("SALIGN_ISA");
    if (force && *force) sa_kernels_select(force); /* unknown names keep the best table */
    sa_pf_ahead_env(&sa_pf_ahead); /* src/kselect.c leaves a forced distance alone */
    const char *lead = getenv("SALIGN_PF_LEAD");
    if (lead && *lead) { /* a multiple of the distance, at most 64 */
        const unsigned long v = strtoul(lead, NULL, 10);
        sa_pf_lead = v > 64 ? 64 : (unsigned)v;
    }
}

/* ---- per-operation selection (kernels.h) ---- */

static SaKernels g_composed, g_composed_decode;
static char g_composed_name[64];

/* The ops outside type[]: whether each is bit-identical in every table (kernels.h's contracts,
 * checked by tests/test_kernels.c with memcmp) or only to float rounding (NMSE-tested). */
#define TOP_OP(f, ex, mat) {#f, offsetof(SaKernels, f), ex, mat}
static const SaKernelOp top_ops[] = {
    TOP_OP(quantize_q8_0, 1, 0),    TOP_OP(dot_q8_0, 0, 0),          TOP_OP(dot_q4_0, 0, 0),
    TOP_OP(dot_f16, 0, 0),          TOP_OP(dot_bf16, 0, 0),          TOP_OP(dot_f32, 0, 0),
    TOP_OP(axpy_f32, 0, 0),         TOP_OP(axpy_f16, 0, 0),          TOP_OP(f32_to_f16, 1, 0),
    TOP_OP(gemm_q4_0x8, 1, 1),      TOP_OP(gemm_q8_0x8, 1, 1),       TOP_OP(attn_scores_f16, 0, 0),
    TOP_OP(attn_values_f16, 0, 0),  TOP_OP(attn_scores_q8_0, 0, 0),  TOP_OP(attn_values_q8_0, 0, 0),
    TOP_OP(exp_sub_sum, 0, 0),      TOP_OP(silu_mul, 0, 0),
};

/* type[t]'s entries: from_float is byte-identical for every type; dot and gemm are for the block
 * types beyond the five original ones (their integer sums per block are exact and the float
 * steps the reference's: kernels_block_types), but not for F32/F16/BF16 (float sums) nor for
 * Q8_0/Q4_0 (their one-row dots sum in a table's own order: NMSE-tested); gemm_x8 always is. */
static int type_dot_exact(SaDtype t) {
    return t != SA_F32 && t != SA_F16 && t != SA_BF16 && t != SA_Q8_0 && t != SA_Q4_0;
}

int sa_kernel_ops(SaKernelOp *out, int max) {
    int n = 0;
    for (size_t i = 0; i < sizeof top_ops / sizeof top_ops[0] && n < max; i++) out[n++] = top_ops[i];
    const SaKernels *t[8];
    const int nt = sa_kernels_available(t, 8);
    static const struct { const char *name; size_t off; int matrix; } fields[] = {
        {"from_float", offsetof(SaTypeKernels, from_float), 0},
        {"dot", offsetof(SaTypeKernels, dot), 0},
        {"gemm", offsetof(SaTypeKernels, gemm), 1},
        {"gemm_x8", offsetof(SaTypeKernels, gemm_x8), 1},
    };
    for (int d = 0; d < SA_DTYPE_COUNT; d++)
        for (size_t f = 0; f < sizeof fields / sizeof fields[0] && n < max; f++) {
            SaKernelOp op = {.off = offsetof(SaKernels, type) + (size_t)d * sizeof(SaTypeKernels) + fields[f].off,
                             .exact = f == 0 || f == 3 || type_dot_exact((SaDtype)d), .matrix = fields[f].matrix};
            int any = 0;
            for (int k = 0; k < nt; k++) any |= sa_kernel_fn(t[k], &op) != NULL;
            if (!any) continue;
            snprintf(op.name, sizeof op.name, "%s.%s", sa_dtype_name((SaDtype)d), fields[f].name);
            out[n++] = op;
        }
    return n;
}

SaAnyFn sa_kernel_fn(const SaKernels *t, const SaKernelOp *op) {
    SaAnyFn f;
    memcpy(&f, (const char *)t + op->off, sizeof f);
    return f;
}

void sa_kernels_compose(const SaKernels *base) {
    g_composed = *base;
    g_composed_decode = *base;
    sa_kernels_compose_name(base->name);
    g_composed.name = g_composed_decode.name = g_composed_name;
    sa_k = &g_composed;
}

void sa_kernels_compose_name(const char *name) { snprintf(g_composed_name, sizeof g_composed_name, "%s", name); }

void sa_kernels_set_op(const SaKernelOp *op, SaKernelClass c, const SaKernels *from) {
    if (sa_k != &g_composed) return;
    const SaAnyFn f = sa_kernel_fn(from, op);
    if (!op->matrix) c = SA_KC_BOTH; /* one choice for the ops that do not multiply weights */
    if (c & SA_KC_PREFILL) memcpy((char *)&g_composed + op->off, &f, sizeof f);
    if (c & SA_KC_DECODE) memcpy((char *)&g_composed_decode + op->off, &f, sizeof f);
}

SaAnyFn sa_kernel_op_fn(const SaKernelOp *op, SaKernelClass c) {
    if (sa_k != &g_composed) return NULL;
    return sa_kernel_fn(op->matrix && c == SA_KC_DECODE ? &g_composed_decode : &g_composed, op);
}

int sa_kernels_composed(void) { return sa_k == &g_composed; }

const SaKernels *sa_kernels_for(int T) {
    return T <= SA_PF_MAX_T && sa_k == &g_composed ? &g_composed_decode : sa_k;
}
