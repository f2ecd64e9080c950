/* kernels.h - the table of compute kernels, one implementation per instruction set.
 *
 * scalar.c is the reference every other table is tested against (tests/test_kernels.c).
 * dispatch.c picks the best table the running CPU supports (cpuid on x86, hwcaps on aarch64);
 * the environment variable SALIGN_ISA=scalar|avx2|avx512|neon|neon_dotprod forces one (for tests
 * and benchmarks). On aarch64 "neon" is plain ARMv8.0 NEON and "neon_dotprod" adds SDOT for the
 * int8 dots (listed only when the CPU reports dotprod).
 *
 * All "dot" kernels take n = number of elements (a multiple of 32 for the quantized types).
 * Quantized weights are multiplied with activations quantized to Q8_0 once per matmul. */
#ifndef SALIGN_KERNELS_H
#define SALIGN_KERNELS_H

#include <stdint.h>

#include "../src/dtype.h"

typedef struct {
    const char *name; /* "scalar", "avx2", "avx512", "neon", "neon_dotprod" */

    /* activation quantization (ggml's quantize_row_q8_0 semantics; the result must be
     * identical to the scalar reference for finite inputs) */
    void (*quantize_q8_0)(const float *x, BlockQ8_0 *y, int n);

    /* one weight row . one activation row. Weight bytes may be anything; activation bytes
     * must be in [-127, 127] as quantize_q8_0 produces them (the x86 tables move the weight's
     * sign onto the activation, and -(-128) does not fit in an int8). */
    float (*dot_q8_0)(int n, const BlockQ8_0 *w, const BlockQ8_0 *a);
    float (*dot_q4_0)(int n, const BlockQ4_0 *w, const BlockQ8_0 *a);
    float (*dot_f16)(int n, const uint16_t *w, const float *a);
    float (*dot_bf16)(int n, const uint16_t *w, const float *a);
    float (*dot_f32)(int n, const float *w, const float *a);

    /* y[i] += a * x[i]   (attention value accumulation) */
    void (*axpy_f32)(int n, float a, const float *x, float *y);
    /* y[i] += a * x[i] with x in f16 (f16 KV cache) */
    void (*axpy_f16)(int n, float a, const uint16_t *x, float *y);
    /* conversions used by the KV cache */
    void (*f32_to_f16)(int n, const float *x, uint16_t *y);
} SaKernels;

/* Available tables; NULL entries are not compiled in or not supported by this CPU. */
extern const SaKernels sa_kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const SaKernels sa_kernels_avx2;
extern const SaKernels sa_kernels_avx512;
#endif
#if defined(__aarch64__)
extern const SaKernels sa_kernels_neon;
extern const SaKernels sa_kernels_neon_dotprod;
#endif

/* The selected table (never NULL after sa_kernels_init). */
extern const SaKernels *sa_k;

/* Pick the best table (or SALIGN_ISA). Safe to call more than once. */
void sa_kernels_init(void);
/* All tables this CPU can run, best last; returns the count (at most 8). */
int sa_kernels_available(const SaKernels **out, int max);
/* Force a table by name; returns 0 on success, -1 if unknown or unsupported. */
int sa_kernels_select(const char *name);

#endif
