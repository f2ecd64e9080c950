/* dtype.h - element types, quantized block layouts and conversions.
 *
 * Block layouts are byte-identical to ggml's so GGUF blocks can be copied unchanged
 * and our quantizers can be checked bit for bit against llama-quantize. */
#ifndef SALIGN_DTYPE_H
#define SALIGN_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Numeric values are part of the .salm format (weights/FORMAT.md): never renumber. */
typedef enum {
    SA_F32 = 0,
    SA_F16 = 1,
    SA_BF16 = 2,
    SA_Q8_0 = 3,
    SA_Q4_0 = 4,
    SA_Q4_1 = 5,
    SA_Q5_0 = 6,
    SA_Q5_1 = 7,
    SA_Q4_K = 8,
    SA_Q5_K = 9,
    SA_Q6_K = 10,
    SA_Q8_K = 11, /* activations of the K-quants only: never stored */
    SA_Q8_1 = 12, /* activations of Q4_1 / Q5_1 only: never stored */
    SA_Q2_K = 13,
    SA_Q3_K = 14,
    SA_IQ4_NL = 15,
    SA_IQ4_XS = 16,
    SA_DTYPE_COUNT
} SaDtype;

#define QK8_0 32
#define QK4_0 32
#define QK_K 256 /* elements of a K-quant super-block */

/* Q8_0: a half-precision scale then 32 signed bytes: x = d * q. */
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} BlockQ8_0;

/* Q4_0: a half-precision scale then 16 bytes holding 32 nibbles: x = d * (q - 8).
 * Element j (j < 16) is the low nibble of qs[j], element j+16 the high nibble. */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
} BlockQ4_0;

/* Q4_1: scale and minimum, then 32 nibbles laid out as Q4_0's: x = d * q + m. */
typedef struct {
    uint16_t d, m;
    uint8_t qs[16];
} BlockQ4_1;

/* Q5_0: x = d * (q - 16) with q = low nibble (as Q4_0) | bit j of the little-endian qh << 4. */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} BlockQ5_0;

/* Q5_1: Q5_0's quants with a minimum: x = d * q + m. */
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} BlockQ5_1;

/* Q8_1 (activations for Q4_1 / Q5_1): Q8_0 plus s = fp16(d * sum of the quants). */
typedef struct {
    uint16_t d, s;
    int8_t qs[32];
} BlockQ8_1;

/* Q4_K: 256 weights in 8 sub-blocks of 32, each with a 6-bit scale sc and min mn packed in
 * scales[12] (sub-block j < 4: sc = scales[j] & 63, mn = scales[j+4] & 63; j >= 4: the low 4
 * bits in scales[j+4] (sc low nibble, mn high nibble), the top 2 in bits 6-7 of scales[j-4] (sc)
 * and scales[j] (mn)): x = d * sc * q - dmin * mn. qs: 64 weights per 32 bytes, the first 32 in
 * the low nibbles, the next 32 in the high ones. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
} BlockQ4_K;

/* Q5_K: Q4_K plus a fifth bit: weight 64*p + l (l < 32) takes bit 2p of qh[l], weight
 * 64*p + 32 + l bit 2p+1. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} BlockQ5_K;

/* Q6_K: 16 sub-blocks of 16 with signed 8-bit scales: x = d * scales[j] * (q - 32). Per half
 * of 128 weights h, l < 32: weights l, l+32, l+64, l+96 take the low nibbles of ql[64h+l],
 * ql[64h+32+l], the high nibbles of the same two, and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[32h+l]. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} BlockQ6_K;

/* Q8_K (activations for the K-quants): a float scale, 256 quants and the sum of each 16. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} BlockQ8_K;

/* Q2_K: 16 sub-blocks of 16, each with a 4-bit scale (low nibble of scales[j]) and a 4-bit min
 * (high nibble): x = d * sc * q - dmin * mn, q in 0..3. Per half of 128 weights h, l < 32:
 * weights l, l+32, l+64, l+96 of the half take bit pairs 0-1, 2-3, 4-5, 6-7 of qs[32h+l]. */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
} BlockQ2_K;

/* Q3_K: 16 sub-blocks of 16 with 6-bit signed scales sc (stored + 32): for sub-block j the low 4
 * bits are the low (j < 8) or high (j >= 8) nibble of scales[j % 8], the top 2 bits are bits
 * 2(j/4), 2(j/4)+1 of scales[8 + j%4]. x = d * (sc - 32) * q, q in -4..3: the low two bits as
 * Q2_K's qs, minus 4 unless bit e/32 of hmask[e % 32] is set (weight e of the block). */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} BlockQ3_K;

/* IQ4_NL: Q4_0's layout with a non-linear level table: x = d * sa_iq4nl_values[q]. */
#define QK4_NL 32
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
} BlockIQ4_NL;

/* IQ4_XS: 8 sub-blocks of 32 in IQ4_NL's level table, each with a 6-bit scale ls (low 4 bits:
 * nibble j%2 of scales_l[j/2], top 2: bits 2j, 2j+1 of scales_h): x = d * (ls - 32) * value[q];
 * qs[16j .. 16j+15] hold sub-block j as an IQ4_NL block holds its 32 weights. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} BlockIQ4_XS;

/* The 16 levels of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl). */
extern const int8_t sa_iq4nl_values[16];

_Static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block must be 34 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block must be 18 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block must be 20 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block must be 22 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block must be 24 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ8_1) == 36, "Q8_1 block must be 36 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block must be 144 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block must be 176 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block must be 210 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block must be 292 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ2_K) == 84 && offsetof(BlockQ2_K, d) == 80, "Q2_K block (ggml layout)");
_Static_assert(sizeof(BlockQ3_K) == 110 && offsetof(BlockQ3_K, scales) == 96 && offsetof(BlockQ3_K, d) == 108,
               "Q3_K block (ggml layout)");
_Static_assert(sizeof(BlockIQ4_NL) == 18, "IQ4_NL block must be 18 bytes (ggml layout)");
_Static_assert(sizeof(BlockIQ4_XS) == 136 && offsetof(BlockIQ4_XS, qs) == 8, "IQ4_XS block (ggml layout)");
_Static_assert(offsetof(BlockQ6_K, d) == 208 && offsetof(BlockQ5_K, qs) == 48 && offsetof(BlockQ4_K, qs) == 16,
               "K-quant field offsets (ggml layout)");
_Static_assert(offsetof(BlockQ5_0, qs) == 6 && offsetof(BlockQ5_1, qs) == 8 && offsetof(BlockQ8_K, bsums) == 260,
               "block field offsets (ggml layout)");

/* One row per dtype, indexed by SaDtype: everything the loader, converter and matmul need to
 * know about a type (the kernels per instruction set are in simd/kernels.h, SaKernels.type[]).
 * Adding a type = adding its block struct, a row here, and its kernels there. */
typedef void (*SaToFloatFn)(const void *src, float *dst, int64_t n);
typedef void (*SaFromFloatFn)(const float *src, void *dst, int64_t n);

enum {
    SA_DT_WEIGHT = 1, /* may be stored in .salm and multiplied (activation-only types are not) */
};

typedef struct {
    const char *name;   /* ggml's spelling: "f32", "q4_0", "q4_K", ... */
    int block;          /* elements per block (1 for plain types) */
    size_t block_bytes; /* bytes per block */
    int ggml_type;      /* the type's id in GGUF files (ggml's enum ggml_type) */
    unsigned flags;     /* SA_DT_* */
    /* activations are converted to this type (SaKernels.type[].from_float) for a dot with a
     * weight row of this type: f32 for the float types, Q8_0 for Q8_0/Q4_0 */
    int vec_dot_type;
    SaToFloatFn to_float;     /* dequantize n elements (a whole number of blocks) */
    SaFromFloatFn from_float; /* reference quantizer (ggml's quantize_row_*_ref); NULL: none */
} SaDtypeTraits;

extern const SaDtypeTraits sa_dtype_traits[SA_DTYPE_COUNT];

static inline int sa_dtype_valid(uint32_t t) { return t < SA_DTYPE_COUNT; }
static inline const SaDtypeTraits *sa_dtype_tr(SaDtype t) { return &sa_dtype_traits[t]; }
const char *sa_dtype_name(SaDtype t);
/* Parse a name of the table ("f32", "q8_0", ...); returns -1 if unknown. */
int sa_dtype_from_name(const char *name);
/* The SaDtype of a GGUF tensor type id, or -1 if salign has no row for it. */
int sa_dtype_from_ggml(uint32_t ggml_type);
/* Bytes for one row of n elements; 0 if n is not a multiple of the block size. */
size_t sa_row_bytes(SaDtype t, int64_t n);

/* ---- scalar half / bfloat16 conversions (exact, round-to-nearest-even) ---- */
static inline float sa_fp32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t sa_fp32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float sa_fp16_to_fp32(uint16_t h);
uint16_t sa_fp32_to_fp16(float f);
static inline float sa_bf16_to_fp32(uint16_t h) { return sa_fp32_from_bits((uint32_t)h << 16); }
uint16_t sa_fp32_to_bf16(float f);

/* Lookup table of all 65536 fp16 values, filled by sa_dtype_init() (called by the kernel dispatcher). */
extern float sa_fp16_table[65536];
void sa_dtype_init(void);
static inline float sa_fp16_lut(uint16_t h) { return sa_fp16_table[h]; }

/* ---- reference quantizers: exactly ggml's quantize_row_*_ref ---- */
void sa_quantize_row_q8_0(const float *x, BlockQ8_0 *y, int64_t n);
/* the activations' Q8_0 (ggml-cpu's SIMD quantize_row_q8_0: 127/amax, ties to even) */
void sa_quantize_act_q8_0(const float *x, BlockQ8_0 *y, int64_t n);
void sa_quantize_row_q4_0(const float *x, BlockQ4_0 *y, int64_t n);
/* src/quants.c: the other block types (ggml's quantize_row_*_ref, dequantize_row_*) */
void sa_quantize_row_q4_1(const float *x, BlockQ4_1 *y, int64_t n);
void sa_quantize_row_q5_0(const float *x, BlockQ5_0 *y, int64_t n);
void sa_quantize_row_q5_1(const float *x, BlockQ5_1 *y, int64_t n);
void sa_quantize_row_q8_1(const float *x, BlockQ8_1 *y, int64_t n);
void sa_quantize_row_q4_K(const float *x, BlockQ4_K *y, int64_t n);
void sa_quantize_row_q5_K(const float *x, BlockQ5_K *y, int64_t n);
void sa_quantize_row_q6_K(const float *x, BlockQ6_K *y, int64_t n);
void sa_quantize_row_q8_K(const float *x, BlockQ8_K *y, int64_t n);
void sa_dequantize_q4_1(const void *src, float *dst, int64_t n);
void sa_dequantize_q5_0(const void *src, float *dst, int64_t n);
void sa_dequantize_q5_1(const void *src, float *dst, int64_t n);
void sa_dequantize_q8_1(const void *src, float *dst, int64_t n);
void sa_dequantize_q4_K(const void *src, float *dst, int64_t n);
void sa_dequantize_q5_K(const void *src, float *dst, int64_t n);
void sa_dequantize_q6_K(const void *src, float *dst, int64_t n);
void sa_dequantize_q8_K(const void *src, float *dst, int64_t n);
/* Q2_K, Q3_K: ggml's quantize_row_q2_K_ref / q3_K_ref (what llama-quantize runs for them without an
 * importance matrix); IQ4_NL, IQ4_XS: ggml's scale search with 7 tries each side (what
 * llama-quantize runs for them with or without one; the _ref of IQ4_NL tries none). */
void sa_quantize_row_q2_K(const float *x, BlockQ2_K *y, int64_t n);
void sa_quantize_row_q3_K(const float *x, BlockQ3_K *y, int64_t n);
void sa_quantize_row_iq4_nl(const float *x, BlockIQ4_NL *y, int64_t n);
void sa_quantize_row_iq4_xs(const float *x, BlockIQ4_XS *y, int64_t n);
void sa_dequantize_q2_K(const void *src, float *dst, int64_t n);
void sa_dequantize_q3_K(const void *src, float *dst, int64_t n);
void sa_dequantize_iq4_nl(const void *src, float *dst, int64_t n);
void sa_dequantize_iq4_xs(const void *src, float *dst, int64_t n);
/* One row of n values (whole blocks) of Q4_0..Q5_1, Q2_K..Q6_K, IQ4_NL or IQ4_XS as llama-quantize
 * makes it: imx NULL gives exactly the sa_quantize_row_* above; with imx (n importance values, one
 * per column, llama-quantize --imatrix) ggml's weighted quantize_row_*_impl. -1 for other types. */
int sa_quantize_row_w(SaDtype t, const float *x, void *dst, int64_t n, const float *imx);
/* The 6-bit scale (0..63, stored + 32) of sub-block j (< 16) of a Q3_K block's scales[12]. */
static inline int sa_q3k_scale(int j, const uint8_t *s) {
    const int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
    return lo | (s[8 + j % 4] >> (2 * (j / 4)) & 3) << 4;
}
/* The 6-bit scale (0..63, stored + 32) of sub-block j (< 8) of an IQ4_XS block. */
static inline int sa_iq4xs_scale(int j, const BlockIQ4_XS *b) {
    return (b->scales_l[j / 2] >> (4 * (j % 2)) & 15) | (b->scales_h >> (2 * j) & 3) << 4;
}
/* The 6-bit scale and min of sub-block j (< 8) of a Q4_K / Q5_K block's scales[12]. */
static inline void sa_kq_scale_min(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}
/* Dequantize one row of n elements of any dtype to f32. */
void sa_dequantize_row(SaDtype t, const void *src, float *dst, int64_t n);
/* Quantize/convert n f32 values to dtype t (n must be a block multiple for q types); t must
 * have a quantizer (sa_dtype_traits[t].from_float != NULL). */
void sa_quantize_row(SaDtype t, const float *src, void *dst, int64_t n);

#endif
