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
    SA_DTYPE_COUNT
} SaDtype;

#define QK8_0 32
#define QK4_0 32

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

_Static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block must be 34 bytes (ggml layout)");
_Static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block must be 18 bytes (ggml layout)");

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
void sa_quantize_row_q4_0(const float *x, BlockQ4_0 *y, int64_t n);
/* Dequantize one row of n elements of any dtype to f32. */
void sa_dequantize_row(SaDtype t, const void *src, float *dst, int64_t n);
/* Quantize/convert n f32 values to dtype t (n must be a block multiple for q types); t must
 * have a quantizer (sa_dtype_traits[t].from_float != NULL). */
void sa_quantize_row(SaDtype t, const float *src, void *dst, int64_t n);

#endif
