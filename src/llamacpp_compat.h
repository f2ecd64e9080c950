/* llamacpp_compat.h - verification mode: llama.cpp's CPU arithmetic, bit for bit.
 *
 * Greedy decoding amplifies last-bit differences: when one activation lands on the other side of
 * a Q8_0 rounding boundary, the logits move by ~1e-3, and at a near-tie of the two best tokens
 * the argmax changes. So a run that is correct to float precision can still part from llama.cpp's
 * greedy ids (stories260K-q4_0 does, at step 78). This mode redoes, in portable scalar C, the exact
 * sequence of float operations of llama.cpp's CPU backend on x86-64 with AVX2+FMA+F16C (no
 * AVX-512): node-llama-cpp 3.21.1 / llama.cpp 80fb11a, decoding one token per llama_decode with
 * its default flash attention and F16 KV cache. Every intermediate tensor of stories260K-q4_0
 * then equals llama.cpp's bit for bit (compared through llama.cpp's eval callback), and so do the
 * 200 greedy ids. What it reproduces, per op:
 *   RMSNorm       sum of float squares in double; (x * scale) * w
 *   activations   Q8_0 with d = amax/127, id = 127/amax, round half to even
 *   Q4_0 matrix   rows % 8 == 0 (repacked 8x8 GEMV): one FMA chain over blocks per row;
 *                 otherwise and Q8_0 (vec_dot): 8 lanes of 4 products, FMA chains, AVX2 hsum
 *   F16 / F32     activation rounded to f16 for F16; 4x8 FMA lanes, AVX reduce, tail in double
 *   RoPE          theta = pos * theta_scale^i by repeated products; rotation contracted to FMA
 *   attention     flash attention: q rounded to f16, online softmax with libm expf, V accumulated
 *                 in an f16 vector, divided at the end by multiplying with 1/S
 *   SwiGLU        ggml_v_expf (AVX2 polynomial) for groups of 8, libm expf for the tail
 * Compared bit for bit (every logit of 200 teacher-forced steps) on stories260K F32, Q8_0 and
 * Q4_0. Qwen2 biases and half-split RoPE follow the same ggml ops but were not compared.
 * Slow (scalar, one thread) and for verification only; default off. A batch is evaluated one
 * token at a time (llama.cpp's batched prompt kernels, tinyBLAS and tiled attention, differ).
 * Not reproduced either: llama.cpp's split-KV attention (512+ cache cells: past 256 positions),
 * and its AVX-512 or ARM kernels, which sum in other orders. llama.cpp itself gives other greedy
 * ids for stories260K-q4_0 with flash attention off (from step 78). */
#ifndef SALIGN_LLAMACPP_COMPAT_H
#define SALIGN_LLAMACPP_COMPAT_H

#include <stdint.h>

#include "kv.h"
#include "model.h"

/* 0 if the model and cache type can run in this mode, else -1 + sa_err naming what cannot. */
int sa_llamacpp_compat_check(const SaModel *m, SaDtype kv_type);
/* Evaluate T tokens at positions kv->n.. one at a time, appending to the f16 cache (kv->n
 * advances); logits of the last out_rows tokens go to logits[out_rows][n_vocab]. 0 or -1. */
int sa_llamacpp_forward(const SaModel *m, SaKv *kv, const int32_t *tokens, int T, int out_rows, float *logits);

#endif
