/* dispatch.c - choose the kernel table for the running CPU.
 *
 * x86-64: one binary for every CPU; avx2.c and avx512.c are compiled with their own -m flags
 * and only called after cpuid (and xgetbv: the OS must save the wide registers) says so.
 * aarch64: NEON is baseline; dotprod/i8mm are probed through getauxval(AT_HWCAP). */
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

void sa_kernels_init(void) {
    sa_dtype_init();
    const SaKernels *t[8];
    int n = sa_kernels_available(t, 8);
    sa_k = t[n - 1];
    const char *force = getenv("SALIGN_ISA");
    if (force && *force) sa_kernels_select(force); /* unknown names keep the best table */
}
