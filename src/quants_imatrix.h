/* quants_imatrix.h - quantizing as llama-quantize --imatrix does (ggml's quantize_row_*_impl with
 * quant_weights, byte for byte); the quantizers are src/quants.c's sa_quantize_row_w. */
#ifndef SALIGN_QUANTS_IMATRIX_H
#define SALIGN_QUANTS_IMATRIX_H

#include <stdint.h>

#include "dtype.h"

/* 1 if t has a weighted quantizer here (or, like Q8_0 and the float types, ignores the weights
 * in llama.cpp too). */
int sa_quantize_row_imatrix_supported(SaDtype t);
/* Quantize one row of n values (a whole number of blocks) to t as llama-quantize does, weighting
 * column j by imx[j] (n finite values); imx NULL: without an importance matrix (the reference
 * quantizers, except IQ4_NL / IQ4_XS, which llama-quantize quantizes with their x^2-weighted search). */
void sa_quantize_row_imatrix(SaDtype t, const float *x, void *dst, int64_t n, const float *imx);

/* The same for Q2_K, Q3_K, IQ4_NL, IQ4_XS addressed by their GGUF type id (10, 11, 20, 23): 0, or -1
 * for another type (and for Q2_K / Q3_K with imx NULL: sa_quantize_row_q2_K / _q3_K are those). */
int sa_quantize_row_imatrix_gg(int ggml_type, const float *x, void *dst, int64_t n, const float *imx);

#endif
