/* kernels.h - the table of compute kernels, one implementation per instruction set.
 *
 * scalar.c is the reference every other table is tested against (tests/test_kernels.c).
 * dispatch.c picks the best table the running CPU supports (cpuid on x86, hwcaps on aarch64), and
 * can compose sa_k op by op from several tables (per-operation selection, at the end of this file;
 * src/kselect.c chooses);
 * the environment variable SALIGN_ISA=scalar|avx2|avx512|neon|neon_dotprod forces one (for tests
 * and benchmarks; the test binaries also know "avx512_emu", simd/avx512.c emulated with SIMDe for
 * CPUs without AVX-512). On aarch64 "neon" is plain ARMv8.0 NEON and "neon_dotprod" adds SDOT for the
 * int8 dots (listed only when the CPU reports dotprod).
 *
 * All "dot" kernels take n = number of elements (a multiple of 32 for the quantized types).
 * Quantized weights are multiplied with activations quantized to Q8_0 once per matmul. */
#ifndef SALIGN_KERNELS_H
#define SALIGN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../src/dtype.h"

/* ---- 8-row interleaved weight layouts (repacked at model load, src/repack.c) ----
 * Eight consecutive rows of a Q4_0 / Q8_0 matrix stored block column by block column: for
 * block column b, the 8 rows' fp16 scales, then their quants in 4-byte chunks, row-interleaved:
 *     qs[k*32 + i*4 + j] = quant byte 4k+j of row i's block b      (i < 8, j < 4)
 * So one 32-byte load holds 4 bytes of each of the 8 rows, one 32-bit lane per row: an int8
 * dot of those bytes with 4 broadcast activation bytes leaves each row's partial sum in its own
 * lane (maddubs/madd on x86, sdot on NEON), and the 8 rows' results come out as one vector with
 * no horizontal reductions. The activation bytes are loaded once for 8 rows. */
typedef struct {
    uint16_t d[8];
    uint8_t qs[8 * QK4_0 / 2]; /* 4 chunks (k < 4) of 8 rows x 4 bytes */
} BlockQ4_0x8;
typedef struct {
    uint16_t d[8];
    int8_t qs[8 * QK8_0]; /* 8 chunks (k < 8) of 8 rows x 4 bytes */
} BlockQ8_0x8;
_Static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0), "Q4_0x8 repacks 8 blocks in place");
_Static_assert(sizeof(BlockQ8_0x8) == 8 * sizeof(BlockQ8_0), "Q8_0x8 repacks 8 blocks in place");

/* Decode reads every weight once, straight from memory, and the GEMV loops are compute-heavy
 * enough that the hardware prefetcher alone keeps too few lines in flight: a Q4_0 GEMV over
 * 1 GiB read at ~75% of a plain read loop's bandwidth on Zen 3 with AVX2, ~90-97% with
 * prefetches 16-64 KiB ahead (1-2 KiB ahead did not help). The decode kernels call this once
 * per block they read: it prefetches the `bytes` at SA_PF_AHEAD past `cur`, never at or past
 * `end`, the end of the caller's run of groups (another thread may be reading what follows). */
#define SA_PF_AHEAD 32768
/* The distance the decode kernels prefetch at (bytes; 0: no software prefetch). It is a variable
 * because the best one depends on the machine, not only on the core: on the Zen 5 VM of issue
 * #23 one day 32 KiB took a 2048 x 8192 Q4_0 GEMV from 16.6 to 29-31.5 GB/s, while on another
 * host of the same CPU model (2026-12-04, membw 32 GB/s) 32 KiB read at 18.9 / 16.3 GB/s (K =
 * 2048 / 8192), no prefetch at 22.5-24.7 / 22.8-23.5 and 4 KiB at 25.3 / 24.1. So src/kselect.c
 * times a few distances on the model's own matrices once per CPU, binary and model shape and sets
 * it (cached with the kernel choices; SALIGN_PF_AHEAD=BYTES forces one). SA_PF_AHEAD is the value
 * until then. */
extern size_t sa_pf_ahead;
/* SALIGN_PF_AHEAD=BYTES: 1 and the distance in *dist when it is set, else 0 */
int sa_pf_ahead_env(size_t *dist);
/* Batches of up to this many tokens (speculative verification, short corrections) are still
 * bound by reading the weights rather than by arithmetic: the GEMMs prefetch for them too, on
 * their first pass over each group, and matmul.c gives each thread long runs as for decode. */
#define SA_PF_MAX_T 8
/* The page lead: besides the lines `dist` ahead, the decode kernels prefetch the first line of
 * each 4 KiB page sa_pf_lead x dist ahead, once per page. Why: on the Zen 5 VMs of issue #23 a
 * stream that reaches a new 4 KiB page waits for the hardware prefetcher to start on it again,
 * and one early touch of the page starts it. Measured there (session 14, one process, variants
 * alternated, CPU time, a 16-layer 1B-shaped set of Q4_0 matrices, 547 MB, huge pages): the
 * decode GEMV at 8 KiB read 26.6-27.6 GB/s without the lead, 36.0-38.7 with it at 2x-8x the
 * distance (the multiple hardly matters); a plain read loop 24-29 GB/s, 34-41 with lines 8 KiB
 * and a lead 32 KiB ahead; the lead alone, without the lines at `dist`, no faster than none. 0 turns it off
 * (SALIGN_PF_LEAD=0, for comparisons). A multiple of dist keeps the lead inside the caller's own
 * stream in the multi-stream tiles (sa_pf_dist makes dist a whole number of tile spans). */
#define SA_PF_LEAD 4
extern unsigned sa_pf_lead;
#define SA_PF_PAGE ((uintptr_t)4096)
/* One prefetch that the compiler keeps: gcc 12 -O2 deleted a __builtin_prefetch as dead code
 * when it sat alone under the lead's condition in an inlined function (seen in the object code;
 * -O3 and clang kept it), so the lead issues the instruction itself. */
static inline void sa_prefetch_line(const void *p) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 (%0)" : : "r"(p));
#elif defined(__aarch64__)
    __asm__ volatile("prfm pldl1keep, [%0]" : : "r"(p));
#else
    __builtin_prefetch(p, 0, 3);
#endif
}
/* The lead of the block [cur, cur + bytes) is the first page start at or after f = cur + lead
 * (lead = sa_pf_lead x dist), prefetched when it lies before f + bytes and before `end`: the
 * blocks of a stream tile it, so each page start gets exactly one lead prefetch. Returns the
 * byte offset of that page start from cur, or 0 when the block has none (tests replay it). */
static inline size_t sa_pf_lead_off(const void *cur, size_t dist, size_t bytes, const char *end) {
    if (!sa_pf_lead || !dist) return 0;
    const size_t lead = dist * sa_pf_lead, skip = (size_t)(-((uintptr_t)cur + lead)) & (SA_PF_PAGE - 1);
    return skip < bytes && (const char *)cur + lead + skip < end ? lead + skip : 0;
}
static inline void sa_prefetch_lead(const void *cur, size_t dist, size_t bytes, const char *end) {
    const size_t off = sa_pf_lead_off(cur, dist, bytes, end);
    if (off) sa_prefetch_line((const char *)cur + off);
}
static inline void sa_prefetch_at(const void *cur, size_t dist, size_t bytes, const char *end) {
    if (!dist) return;
    const char *p = (const char *)cur + dist;
    for (size_t o = 0; o < bytes; o += 64)
        if (p + o < end) __builtin_prefetch(p + o, 0, 3);
    sa_prefetch_lead(cur, dist, bytes, end);
}
static inline void sa_prefetch_ahead(const void *cur, size_t bytes, const char *end) {
    sa_prefetch_at(cur, sa_pf_ahead, bytes, end);
}
/* The prefetch distance of a tile that reads n consecutive groups side by side (n streams,
 * `stride` = one group's bytes apart, each advancing one block per step), each stream
 * prefetching ahead of its own position. A plain distance is wrong for n > 1: when the
 * stride exceeds it (Q4_0 at K = 8192: 36 KiB), stream 0's target lands behind where stream 1
 * already reads, and the next tile's later streams are never prefetched in time (issue #23: a
 * 2048 x 8192 Q4_0 GEMV read at 16.6 GB/s with the plain distance, 29-31.5 GB/s with this). So the
 * distance is rounded up to a whole number of tile spans: each stream prefetches its own
 * position in a later tile pass, never between or behind the other streams.
 * tests/test_kernels.c (kernels_prefetch_streams) checks it for every matrix shape of the
 * synthetic presets. */
static inline size_t sa_pf_dist(int n, size_t stride) {
    if (n <= 1 || !sa_pf_ahead) return sa_pf_ahead;
    const size_t span = (size_t)n * stride;
    return (sa_pf_ahead + span - 1) / span * span;
}

/* The same activations grouped 8 tokens to a block (Q4_0 batches, T > SA_PF_MAX_T): tile j
 * (tokens 8j..8j+7), block b is x8[j*nb + b], its 8 tokens' quants, scales (as floats) and
 * -8 * quant sums side by side. A tile of 8 tokens then reads one stream at constant offsets:
 * with 8 separate tokens' q/d/s8 pointers the AVX-512 Q4_0 tile ran out of general registers and
 * moved pointers through xmm registers on every token (10-22% slower, 2048-8192-wide matrices,
 * Zen 5). Tokens past T in the last tile are all zero. */
typedef struct {
    int8_t qs[8][32];
    float d[8];
    int32_t ns8[8];
} SaQ8x8;
_Static_assert(sizeof(SaQ8x8) == 320, "SaQ8x8: 5 cache lines, no padding");

/* Activations for the interleaved GEMMs: T rows of nb Q8_0 blocks, and per block its scale as
 * a float and 8 * the sum of its quants (sa_q8_act_extras computes both), so the inner loops
 * broadcast them straight from memory. Row t, block b is at index t*nb + b of all three.
 * x8: NULL, or the same T tokens as SaQ8x8 tiles (this view's token 0 starts tile 0); a kernel
 * may read either. */
typedef struct {
    const BlockQ8_0 *q;
    const float *d;
    const int32_t *s8; /* used by the x86 Q4_0 kernels and AVX-512's Q8_0 (see gemm_q4_0x8) */
    const SaQ8x8 *x8;
} SaQ8Act;
void sa_q8_act_extras(const BlockQ8_0 *q, int n_blocks, float *d, int32_t *s8);
/* Token t's nb blocks (q, d, s8 as in SaQ8Act) into their tile slots of x8; q == NULL zeroes the slots. */
void sa_q8_act_x8_put(const BlockQ8_0 *q, const float *d, const int32_t *s8, int nb, int t, SaQ8x8 *x8);

/* ---- per-dtype kernels (ggml's type_traits_cpu): SaKernels.type[t] for SaDtype t ----
 * from_float: convert one f32 activation row of n values to t; set for every type that is some
 *             weight type's activation type (sa_dtype_traits[w].vec_dot_type: f32, q8_0, ...),
 *             and for the KV cache types (f16, q8_0, f32).
 * dot:        one weight row of type t . one activation row already converted to t's activation
 *             type; n = elements (a multiple of t's block).
 * gemm:       rows x tokens on ggml's row layout (matrices that are not repacked, and the rows
 *             after the last 8-row group of those that are):
 *                 y[tk*ldy + r] = dot(row r, activation row tk)        r < rows, tk < T
 *             with weight row r at w + r*wstride bytes, activation row tk at a + tk*astride bytes.
 *             Decode is T = 1. The value of each (row, token) must equal what `dot` of the same
 *             table gives, so a row never depends on the batch size.
 * Every weight type has dot and gemm in every table. A table with no faster version of its own
 * names the scalar reference (sa_ref_*), which says so where the table is defined. */
typedef float (*SaVecDotFn)(int n, const void *w, const void *a);
typedef void (*SaRowGemmFn)(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T, float *y,
                            size_t ldy);
typedef void (*SaActFromFloatFn)(const float *x, void *y, int n);
/* gemm_x8: ng consecutive 8-row interleaved groups of a repacked matrix (the types with an
 *             x8 layout below: Q4_K, Q6_K) times T activation rows of nb blocks each, in the
 *             type's activation type (Q8_K), row t at a + t*nb blocks:
 *                 y[t*ldy + 8*g + i] = dot(row i of group g, activation row t)
 *             bit for bit what the scalar `dot` of the row in ggml's layout gives (the integer
 *             sums per super-block are exact; the float part is the reference's, per lane), so
 *             repacking never changes a result. NULL for types that are not repacked. */
typedef void (*SaX8GemmFn)(int nb, int ng, const void *w, const void *a, int T, float *y, size_t ldy);
typedef struct {
    SaActFromFloatFn from_float;
    SaVecDotFn dot;
    SaRowGemmFn gemm;
    SaX8GemmFn gemm_x8;
} SaTypeKernels;

/* The generic gemm over a table's own `dot` (what a table uses until it has a tiled one):
 * `static SA_GEMM_FROM_DOT(name, dot)` defines the function `name`. */
#define SA_GEMM_FROM_DOT(name, dotfn)                                                                             \
    void name(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T, float *y,      \
              size_t ldy) {                                                                                        \
        for (int r = 0; r < rows; r++)                                                                             \
            for (int tk = 0; tk < T; tk++)                                                                         \
                y[(size_t)tk * ldy + r] =                                                                          \
                    dotfn(n, (const uint8_t *)w + (size_t)r * wstride, (const uint8_t *)a + (size_t)tk * astride); \
    }
/* The per-dtype entries of the five original types, built from a table's typed kernels (which
 * stay: the tests and the attention call them directly). SA_BASE_TYPE_DEFS defines the adapters
 * (names prefixed with P), SA_BASE_TYPE_ROWS(P) lists them in the table's .type initializer. */
#define SA_BASE_TYPE_DEFS(P, QUANT_Q8_0, DOT_Q8_0, DOT_Q4_0, DOT_F16, DOT_BF16, DOT_F32, F32_TO_F16)                \
    static void P##_act_q8_0(const float *x, void *y, int n) { QUANT_Q8_0(x, (BlockQ8_0 *)y, n); }                \
    static void P##_act_f16(const float *x, void *y, int n) { F32_TO_F16(n, x, (uint16_t *)y); }                  \
    static float P##_dot_q8_0(int n, const void *w, const void *a) { return DOT_Q8_0(n, w, a); }                  \
    static float P##_dot_q4_0(int n, const void *w, const void *a) { return DOT_Q4_0(n, w, a); }                  \
    static float P##_dot_f16(int n, const void *w, const void *a) { return DOT_F16(n, w, a); }                    \
    static float P##_dot_bf16(int n, const void *w, const void *a) { return DOT_BF16(n, w, a); }                  \
    static float P##_dot_f32(int n, const void *w, const void *a) { return DOT_F32(n, w, a); }                    \
    static SA_GEMM_FROM_DOT(P##_gemm_q8_0, P##_dot_q8_0) static SA_GEMM_FROM_DOT(P##_gemm_q4_0, P##_dot_q4_0)      \
    static SA_GEMM_FROM_DOT(P##_gemm_f16, P##_dot_f16) static SA_GEMM_FROM_DOT(P##_gemm_bf16, P##_dot_bf16)        \
    static SA_GEMM_FROM_DOT(P##_gemm_f32, P##_dot_f32)
#define SA_BASE_TYPE_ROWS(P)                                                   \
    [SA_F32] = {sa_act_f32, P##_dot_f32, P##_gemm_f32},                        \
    [SA_F16] = {P##_act_f16, P##_dot_f16, P##_gemm_f16},                       \
    [SA_BF16] = {NULL, P##_dot_bf16, P##_gemm_bf16},                           \
    [SA_Q8_0] = {P##_act_q8_0, P##_dot_q8_0, P##_gemm_q8_0},                   \
    [SA_Q4_0] = {NULL, P##_dot_q4_0, P##_gemm_q4_0}
/* f32 activations for f32 "conversion" (the f32 KV cache): a copy */
void sa_act_f32(const float *x, void *y, int n);

/* ---- block types beyond Q8_0 / Q4_0 ----
 * Their scalar reference kernels (simd/scalar.c), which a table without a faster version of a
 * type names in its row: SA_REF_TYPE_ROW(t) for one weight type, SA_REF_ACT_ROW(t) for an
 * activation type (Q8_K: the K-quants and IQ4_XS, Q8_1: Q4_1 / Q5_1), SA_REF_TYPE_ROWS_ALL for all
 * (with SA_REF_TYPE_ROWS_LOWBIT). */
#define SA_REF_TYPES(X) X(q4_1) X(q5_0) X(q5_1) X(q4_K) X(q5_K) X(q6_K) X(q2_K) X(q3_K) X(iq4_nl) X(iq4_xs)
#define SA_REF_DECL(t)                                          \
    float sa_ref_dot_##t(int n, const void *w, const void *a); \
    void sa_ref_gemm_##t(int n, int rows, const void *w, size_t wstride, const void *a, size_t astride, int T, float *y, \
                         size_t ldy);
SA_REF_TYPES(SA_REF_DECL)
/* The scalar rows of Q2_K, Q3_K, IQ4_XS (activations Q8_K) and IQ4_NL (Q8_0), which every table
 * lists beside SA_REF_TYPE_ROWS_ALL unless it has its own (the x86 tables: lowbit_x86.h) */
#define SA_REF_TYPE_ROWS_LOWBIT                                                                               \
    [SA_Q2_K] = {NULL, sa_ref_dot_q2_K, sa_ref_gemm_q2_K}, [SA_Q3_K] = {NULL, sa_ref_dot_q3_K, sa_ref_gemm_q3_K}, \
    [SA_IQ4_NL] = {NULL, sa_ref_dot_iq4_nl, sa_ref_gemm_iq4_nl}, [SA_IQ4_XS] = {NULL, sa_ref_dot_iq4_xs, sa_ref_gemm_iq4_xs}
void sa_ref_act_q8_1(const float *x, void *y, int n);
void sa_ref_act_q8_K(const float *x, void *y, int n);
#define SA_REF_KERNELS(t) {NULL, sa_ref_dot_##t, sa_ref_gemm_##t}
#define SA_REF_ACT_ROW_Q8_K [SA_Q8_K] = {sa_ref_act_q8_K, NULL, NULL}
#define SA_REF_ACT_ROW_Q8_1 [SA_Q8_1] = {sa_ref_act_q8_1, NULL, NULL}
/* the repacked types' rows: the one-row reference kernels plus the reference x8 GEMM */
#define SA_REF_ROW_Q4_K [SA_Q4_K] = {NULL, sa_ref_dot_q4_K, sa_ref_gemm_q4_K, sa_ref_gemm_q4_Kx8}
#define SA_REF_ROW_Q6_K [SA_Q6_K] = {NULL, sa_ref_dot_q6_K, sa_ref_gemm_q6_K, sa_ref_gemm_q6_Kx8}
/* every reference row except Q4_K, Q6_K and Q8_K (the types a table with its own K-quant kernels
 * fills in itself) */
#define SA_REF_TYPE_ROWS_NOT_KX8                                                                                \
    [SA_Q4_1] = SA_REF_KERNELS(q4_1), [SA_Q5_0] = SA_REF_KERNELS(q5_0), [SA_Q5_1] = SA_REF_KERNELS(q5_1),       \
    [SA_Q5_K] = SA_REF_KERNELS(q5_K), SA_REF_ACT_ROW_Q8_1
#define SA_REF_TYPE_ROWS_ALL SA_REF_TYPE_ROWS_NOT_KX8, SA_REF_ROW_Q4_K, SA_REF_ROW_Q6_K, SA_REF_ACT_ROW_Q8_K

/* ---- 8-row interleaved K-quant layouts (repacked at load like Q4_0x8, src/repack.c) ----
 * Same idea as BlockQ4_0x8: per super-block column, the 8 rows' quants in 4-byte chunks, one
 * 32-bit lane per row, so an int8 dot leaves each row's partial sum in its own lane. The 6-bit
 * scales are rearranged (same bits, same bytes in total) so that a byte shuffle puts each row's
 * scale next to its partial sums. In place: 8 ggml blocks become one x8 block of the same size.
 *
 * Q4_K x8 (row i < 8, sub-block j < 8 of 32 weights, sc/mn its 6-bit scale and min):
 *   d[i], dmin[i]                      the rows' fp16 super-block scales
 *   scl[32*(j/4) + 16*(i/4) + 4*(j%4) + i%4] = (sc & 15) | (mn & 15) << 4
 *   sch[16*(i/4) + 4*(j%4) + i%4], j < 4  = sc_j >> 4 | (mn_j >> 4) << 2 | (sc_j+4 >> 4) << 4 | (mn_j+4 >> 4) << 6
 *   qs[256*p + 32*k + 4*i + c] = ggml qs[32*p + 4*k + c] of row i   (p < 4: sub-blocks 2p and 2p+1
 *                                 in the low and high nibbles; k < 8, c < 4)
 * Q6_K x8 (sub-block s < 16 of 16 weights; half h < 2, chunk c < 8 as in dtype.h):
 *   d[i]
 *   sc[32*(s/4) + 16*(i/4) + 4*(s%4) + i%4] = scales[s] of row i
 *   ql[64*(8h+c) + 4*i + e]      = ggml ql[64h + 4c + e]        (e < 4)
 *   ql[64*(8h+c) + 32 + 4*i + e] = ggml ql[64h + 32 + 4c + e]
 *   qh[32*(8h+c) + 4*i + e]      = ggml qh[32h + 4c + e] */
typedef struct {
    uint16_t d[8], dmin[8];
    uint8_t scl[64];
    uint8_t sch[32];
    uint8_t qs[8 * QK_K / 2];
} BlockQ4_Kx8;
typedef struct {
    uint16_t d[8];
    int8_t sc[8 * QK_K / 16];
    uint8_t ql[8 * QK_K / 2];
    uint8_t qh[8 * QK_K / 4];
} BlockQ6_Kx8;
_Static_assert(sizeof(BlockQ4_Kx8) == 8 * sizeof(BlockQ4_K), "Q4_Kx8 repacks 8 blocks in place");
_Static_assert(sizeof(BlockQ6_Kx8) == 8 * sizeof(BlockQ6_K), "Q6_Kx8 repacks 8 blocks in place");
/* the reference x8 GEMMs (simd/scalar.c): what every table's gemm_x8 must equal */
void sa_ref_gemm_q4_Kx8(int nb, int ng, const void *w, const void *a, int T, float *y, size_t ldy);
void sa_ref_gemm_q6_Kx8(int nb, int ng, const void *w, const void *a, int T, float *y, size_t ldy);
/* One x8 block <-> the 8 ggml blocks it holds (src/repack.c repacks with these; tests too). */
void sa_pack_q4_Kx8(const BlockQ4_K *rows[8], BlockQ4_Kx8 *out);
void sa_unpack_q4_Kx8(const BlockQ4_Kx8 *in, int i, BlockQ4_K *out);
void sa_pack_q6_Kx8(const BlockQ6_K *rows[8], BlockQ6_Kx8 *out);
void sa_unpack_q6_Kx8(const BlockQ6_Kx8 *in, int i, BlockQ6_K *out);

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

    /* ng consecutive 8-row interleaved groups (group g at w + g*nb) times T activation rows
     * (decode: T = 1; prefill: T > 1):
     *     y[t*ldy + 8*g + i] = dot(row i of group g, activation row t)     i < 8, g < ng, t < T
     * nb = blocks per row; activation row t is a->q + t*nb (Q8_0, quants in [-127, 127]).
     * The x86 Q4_0 kernels multiply the unsigned nibbles (0..15) and subtract a->s8 (8 * the
     * block's quant sum) instead of re-centering every nibble.
     * Exactly the scalar reference's result, bit for bit, in every table: per row and token the
     * integer block dots are exact and the float sum runs over the blocks in order as
     *     sum = sum + (float)idot_b * (d_w,b * d_a,b)   (no FMA, single rounding each step)
     * so a row's value never depends on the table, the thread split or the batch size. */
    void (*gemm_q4_0x8)(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy);
    void (*gemm_q8_0x8)(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy);

    /* Attention over an f16 KV cache whose rows j = 0..n-1 start at k + j*stride (elements),
     * head size hd (any value):
     *     scores:  s[j] = dot(q, k_j)                  (to float rounding; NMSE-tested)
     *     values:  out[i] += sum_j p[j] * v_j[i]       (i < hd)
     * One call covers a whole (query, head) pair, so the row conversion and the sums stay in
     * registers instead of one function call and one horizontal sum per position. */
    void (*attn_scores_f16)(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s);
    void (*attn_values_f16)(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out);
    /* The same over a Q8_0 KV cache (--kv-type q8_0): each cache row is a run of Q8_0 blocks,
     * rows j = 0..n-1 start at k + j*stride (blocks), and the head's hd values start at value
     * `off` (0..31) of the row's first block k[j*stride]; they may span blocks (hd % 32 == 0 and
     * off == 0 is the fast path; heads smaller than a block share its scale with their neighbours).
     * q and out stay in float: the keys and values are dequantized on the fly (d * q is exact in
     * float), so the only error against the f16 cache is the cache's own rounding:
     *     scores:  s[j] = dot(q, dequant(k_j))         (to float rounding; NMSE-tested)
     *     values:  out[i] += sum_j p[j] * dequant(v_j)[i] */
    void (*attn_scores_q8_0)(int hd, int n, const BlockQ8_0 *k, size_t stride, int off, const float *q, float *s);
    void (*attn_values_q8_0)(int hd, int n, const BlockQ8_0 *v, size_t stride, int off, const float *p, float *out);
    /* x[i] = exp(x[i] - m) for i < n, returning their sum (softmax numerators); the SIMD
     * versions are within a few ulp of expf. Arguments below about -87.3 give 0. */
    float (*exp_sub_sum)(int n, float *x, float m);
    /* g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i]   (SwiGLU) */
    void (*silu_mul)(int n, float *g, const float *u);

    /* per-dtype entries, indexed by SaDtype (SaTypeKernels above) */
    SaTypeKernels type[SA_DTYPE_COUNT];
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

/* The scalar reference versions of the interleaved GEMMs, shared by tables that have no faster
 * version of their own yet. */
void sa_ref_gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy);
void sa_ref_gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy);
void sa_ref_attn_scores_f16(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s);
void sa_ref_attn_values_f16(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out);
void sa_ref_attn_scores_q8_0(int hd, int n, const BlockQ8_0 *k, size_t stride, int off, const float *q, float *s);
void sa_ref_attn_values_q8_0(int hd, int n, const BlockQ8_0 *v, size_t stride, int off, const float *p, float *out);
float sa_ref_exp_sub_sum(int n, float *x, float m);
void sa_ref_silu_mul(int n, float *g, const float *u);
/* The AVX2 versions; the AVX-512 table uses the Q8_0 attention ones (every AVX-512 CPU has AVX2). */
#if defined(__x86_64__) || defined(_M_X64)
void sa_avx2_attn_scores_f16(int hd, int n, const uint16_t *k, size_t stride, const float *q, float *s);
void sa_avx2_attn_values_f16(int hd, int n, const uint16_t *v, size_t stride, const float *p, float *out);
void sa_avx2_attn_scores_q8_0(int hd, int n, const BlockQ8_0 *k, size_t stride, int off, const float *q, float *s);
void sa_avx2_attn_values_q8_0(int hd, int n, const BlockQ8_0 *v, size_t stride, int off, const float *p, float *out);
float sa_avx2_exp_sub_sum(int n, float *x, float m);
void sa_avx2_silu_mul(int n, float *g, const float *u);
void sa_avx2_gemm_q4_0x8(int nb, int ng, const BlockQ4_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy);
void sa_avx2_gemm_q8_0x8(int nb, int ng, const BlockQ8_0x8 *w, const SaQ8Act *a, int T, float *y, size_t ldy);
#endif

/* The selected table (never NULL after sa_kernels_init). */
extern const SaKernels *sa_k;

/* Pick the best table (or SALIGN_ISA). Safe to call more than once. */
void sa_kernels_init(void);
/* All tables this CPU can run, best last; returns the count (at most 8). */
int sa_kernels_available(const SaKernels **out, int max);
/* Force a table by name; returns 0 on success, -1 if unknown or unsupported. */
int sa_kernels_select(const char *name);

/* ---- per-operation selection ----
 * sa_k need not be one instruction set's table: sa_kernels_compose makes it a table of its own
 * whose entries (ops) are then chosen one by one among the tables (src/kselect.c decides which),
 * and whose weight-matrix ops have a second choice for decode and small batches
 * (T <= SA_PF_MAX_T: bound by reading the weights) apart from prefill (bound by arithmetic): on
 * a Zen 5 core the AVX2 decode tiles read faster than AVX-512's while AVX-512's prefill tiles
 * compute twice as fast (issue #23). Code that runs a weight matrix asks sa_kernels_for(T). */
typedef enum { SA_KC_DECODE = 1, SA_KC_PREFILL = 2, SA_KC_BOTH = 3 } SaKernelClass;
typedef struct {
    char name[24]; /* "gemm_q4_0x8", "attn_scores_f16", "q4_K.gemm_x8", "q8_K.from_float" */
    size_t off;    /* the function pointer's offset in SaKernels */
    int exact;     /* bit-identical to the scalar reference in every table (tests/test_kernels.c checks
                      it with memcmp): choosing among tables never changes an output */
    int matrix;    /* multiplies a weight matrix: chosen apart for decode and prefill */
} SaKernelOp;
/* Every op of the tables (the type[] entries that some table this CPU runs has); returns the count. */
int sa_kernel_ops(SaKernelOp *out, int max);
/* The op's entry in table t (NULL: t has none) */
typedef void (*SaAnyFn)(void);
SaAnyFn sa_kernel_fn(const SaKernels *t, const SaKernelOp *op);
/* sa_k becomes the composed table: a copy of base for every op and class (named as base until
 * sa_kernels_compose_name names it after the tables it mixes, "avx512+avx2"). */
void sa_kernels_compose(const SaKernels *base);
void sa_kernels_compose_name(const char *name);
/* In the composed table (no effect otherwise): the op, for the given classes, is table from's. */
void sa_kernels_set_op(const SaKernelOp *op, SaKernelClass c, const SaKernels *from);
/* 1 while sa_k is the composed table */
int sa_kernels_composed(void);
/* The composed table's entry of op for one class (NULL when sa_k is not the composed table). */
SaAnyFn sa_kernel_op_fn(const SaKernelOp *op, SaKernelClass c);
/* The table to run a weight matrix against T activation rows with: the composed table's decode
 * choices when T <= SA_PF_MAX_T, else sa_k (also whenever sa_k is one table: SALIGN_ISA, tests). */
const SaKernels *sa_kernels_for(int T);

#endif
