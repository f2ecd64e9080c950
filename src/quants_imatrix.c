/* quants_imatrix.c - the quantizer entry llama-quantize's --imatrix path uses: each weight's error
 * counts in proportion to how strongly its input column was activated on the calibration text
 * (the imatrix value of that column), so the scale searches favour the columns that matter.
 *
 * The quantizers themselves are src/quants.c's (and dtype.c's Q4_0): one per type, taking the
 * importance values or NULL (sa_quantize_row_w), so the weighted and the reference path share
 * their block packing and scale encoding and keep ggml's separate searches where they differ.
 * This file only says which types take the weights and routes the rest to the plain quantizers. */
#include "quants_imatrix.h"

#include "common.h"

enum { GG_Q2_K = 10, GG_Q3_K = 11, GG_IQ4_NL = 20, GG_IQ4_XS = 23 };

int sa_quantize_row_imatrix_gg(int ggml_type, const float *x, void *dst, int64_t n, const float *imx) {
    if (ggml_type != GG_Q2_K && ggml_type != GG_Q3_K && ggml_type != GG_IQ4_NL && ggml_type != GG_IQ4_XS) return -1;
    if (!imx && ggml_type != GG_IQ4_NL && ggml_type != GG_IQ4_XS) return -1;
    const int t = sa_dtype_from_ggml((uint32_t)ggml_type);
    return t < 0 ? -1 : sa_quantize_row_w((SaDtype)t, x, dst, n, imx);
}

int sa_quantize_row_imatrix_supported(SaDtype t) {
    switch (t) {
    case SA_Q4_0: case SA_Q4_1: case SA_Q5_0: case SA_Q5_1: case SA_Q4_K: case SA_Q5_K: case SA_Q6_K:
    case SA_Q2_K: case SA_Q3_K: case SA_IQ4_NL: case SA_IQ4_XS:
    case SA_Q8_0: /* ggml's Q8_0 quantizer ignores the importance matrix */
    case SA_F32: case SA_F16: case SA_BF16:
        return 1;
    default:
        return 0;
    }
}

void sa_quantize_row_imatrix(SaDtype t, const float *x, void *dst, int64_t n, const float *imx) {
    /* imx NULL: the reference quantizers (IQ4_NL / IQ4_XS's being the x^2-weighted search
     * llama-quantize runs without an importance matrix) */
    if (sa_quantize_row_w(t, x, dst, n, imx)) sa_quantize_row(t, x, dst, n);
}
