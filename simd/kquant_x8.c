/* kquant_x8.c - the 8-row interleaved K-quant layouts (kernels.h: BlockQ4_Kx8, BlockQ6_Kx8):
 * packing one super-block column of 8 rows, unpacking it again, and the scalar reference GEMMs
 * on the packed layout, which every table's gemm_x8 must equal bit for bit.
 *
 * The references read the packed layout directly (not by unpacking), so tests/test_kernels.c
 * comparing them with sa_ref_dot_q4_K / sa_ref_dot_q6_K on ggml's layout checks the layout the
 * SIMD kernels decode, and the float arithmetic is written as in those dots:
 *     Q4_K: sum = sum + (a.d*d * isum - a.d*dmin * imin)       Q6_K: sum = sum + a.d*d * isum
 * (no contraction to FMA: C11 mode, -ffp-contract=off). */
#include <string.h>

#include "kernels.h"

/* ---- Q4_K ---- */

void sa_pack_q4_Kx8(const BlockQ4_K *rows[8], BlockQ4_Kx8 *out) {
    memset(out->sch, 0, sizeof out->sch);
    for (int i = 0; i < 8; i++) {
        const BlockQ4_K *r = rows[i];
        out->d[i] = r->d;
        out->dmin[i] = r->dmin;
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            sa_kq_scale_min(j, r->scales, &sc, &mn);
            out->scl[32 * (j / 4) + 16 * (i / 4) + 4 * (j % 4) + i % 4] = (uint8_t)((sc & 15) | (mn & 15) << 4);
            const int hb = (sc >> 4) | (mn >> 4) << 2;
            out->sch[16 * (i / 4) + 4 * (j % 4) + i % 4] |= (uint8_t)(hb << (j < 4 ? 0 : 4));
        }
        for (int p = 0; p < 4; p++)
            for (int k = 0; k < 8; k++) memcpy(out->qs + 256 * p + 32 * k + 4 * i, r->qs + 32 * p + 4 * k, 4);
    }
}

/* sc and mn of sub-block j of row i, from the packed scale bytes */
static inline void x8_scale_min(const BlockQ4_Kx8 *w, int i, int j, int *sc, int *mn) {
    const int lo = w->scl[32 * (j / 4) + 16 * (i / 4) + 4 * (j % 4) + i % 4];
    const int hi = w->sch[16 * (i / 4) + 4 * (j % 4) + i % 4] >> (j < 4 ? 0 : 4);
    *sc = (lo & 15) | (hi & 3) << 4;
    *mn = (lo >> 4) | (hi >> 2 & 3) << 4;
}

/* ggml's 12-byte scale packing (dtype.h, the inverse of sa_kq_scale_min) */
void sa_unpack_q4_Kx8(const BlockQ4_Kx8 *in, int i, BlockQ4_K *out) {
    out->d = in->d[i];
    out->dmin = in->dmin[i];
    memset(out->scales, 0, sizeof out->scales);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        x8_scale_min(in, i, j, &sc, &mn);
        if (j < 4) {
            out->scales[j] |= (uint8_t)sc;
            out->scales[j + 4] |= (uint8_t)mn;
        } else {
            out->scales[j + 4] = (uint8_t)((sc & 15) | (mn & 15) << 4);
            out->scales[j - 4] |= (uint8_t)((sc >> 4) << 6);
            out->scales[j] |= (uint8_t)((mn >> 4) << 6);
        }
    }
    for (int p = 0; p < 4; p++)
        for (int k = 0; k < 8; k++) memcpy(out->qs + 32 * p + 4 * k, in->qs + 256 * p + 32 * k + 4 * i, 4);
}

void sa_ref_gemm_q4_Kx8(int nb, int ng, const void *wv, const void *av, int T, float *y, size_t ldy) {
    for (int g = 0; g < ng; g++) {
        const BlockQ4_Kx8 *w = (const BlockQ4_Kx8 *)wv + (size_t)g * nb;
        for (int t = 0; t < T; t++) {
            const BlockQ8_K *a = (const BlockQ8_K *)av + (size_t)t * nb;
            for (int i = 0; i < 8; i++) {
                float sum = 0.0f;
                for (int b = 0; b < nb; b++) {
                    int32_t isum = 0, imin = 0;
                    for (int j = 0; j < 8; j++) {
                        int sc, mn;
                        x8_scale_min(&w[b], i, j, &sc, &mn);
                        const int p = j / 2, shift = 4 * (j & 1);
                        int32_t s = 0;
                        for (int k = 0; k < 8; k++)
                            for (int c = 0; c < 4; c++)
                                s += (w[b].qs[256 * p + 32 * k + 4 * i + c] >> shift & 15) * a[b].qs[32 * j + 4 * k + c];
                        isum += sc * s;
                        imin += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
                    }
                    const float dd = a[b].d * sa_fp16_lut(w[b].d[i]), dm = a[b].d * sa_fp16_lut(w[b].dmin[i]);
                    sum = sum + (dd * (float)isum - dm * (float)imin);
                }
                y[(size_t)t * ldy + 8 * g + i] = sum;
            }
        }
    }
}

/* ---- Q6_K ---- */

void sa_pack_q6_Kx8(const BlockQ6_K *rows[8], BlockQ6_Kx8 *out) {
    for (int i = 0; i < 8; i++) {
        const BlockQ6_K *r = rows[i];
        out->d[i] = r->d;
        for (int s = 0; s < 16; s++) out->sc[32 * (s / 4) + 16 * (i / 4) + 4 * (s % 4) + i % 4] = r->scales[s];
        for (int h = 0; h < 2; h++)
            for (int c = 0; c < 8; c++) {
                memcpy(out->ql + 64 * (8 * h + c) + 4 * i, r->ql + 64 * h + 4 * c, 4);
                memcpy(out->ql + 64 * (8 * h + c) + 32 + 4 * i, r->ql + 64 * h + 32 + 4 * c, 4);
                memcpy(out->qh + 32 * (8 * h + c) + 4 * i, r->qh + 32 * h + 4 * c, 4);
            }
    }
}

void sa_unpack_q6_Kx8(const BlockQ6_Kx8 *in, int i, BlockQ6_K *out) {
    out->d = in->d[i];
    for (int s = 0; s < 16; s++) out->scales[s] = in->sc[32 * (s / 4) + 16 * (i / 4) + 4 * (s % 4) + i % 4];
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 8; c++) {
            memcpy(out->ql + 64 * h + 4 * c, in->ql + 64 * (8 * h + c) + 4 * i, 4);
            memcpy(out->ql + 64 * h + 32 + 4 * c, in->ql + 64 * (8 * h + c) + 32 + 4 * i, 4);
            memcpy(out->qh + 32 * h + 4 * c, in->qh + 32 * (8 * h + c) + 4 * i, 4);
        }
}

void sa_ref_gemm_q6_Kx8(int nb, int ng, const void *wv, const void *av, int T, float *y, size_t ldy) {
    for (int g = 0; g < ng; g++) {
        const BlockQ6_Kx8 *w = (const BlockQ6_Kx8 *)wv + (size_t)g * nb;
        for (int t = 0; t < T; t++) {
            const BlockQ8_K *a = (const BlockQ8_K *)av + (size_t)t * nb;
            for (int i = 0; i < 8; i++) {
                float sum = 0.0f;
                for (int b = 0; b < nb; b++) {
                    int32_t s[16] = {0};
                    for (int h = 0; h < 2; h++)
                        for (int c = 0; c < 8; c++)
                            for (int e = 0; e < 4; e++) {
                                const int A = w[b].ql[64 * (8 * h + c) + 4 * i + e];
                                const int B = w[b].ql[64 * (8 * h + c) + 32 + 4 * i + e];
                                const int H = w[b].qh[32 * (8 * h + c) + 4 * i + e];
                                const int l = 4 * c + e; /* weight l of the half, and l+32, l+64, l+96 */
                                const int8_t *x = a[b].qs + 128 * h;
                                s[8 * h + l / 16] += (((A & 15) | (H & 3) << 4) - 32) * x[l];
                                s[8 * h + 2 + l / 16] += (((B & 15) | (H >> 2 & 3) << 4) - 32) * x[l + 32];
                                s[8 * h + 4 + l / 16] += (((A >> 4) | (H >> 4 & 3) << 4) - 32) * x[l + 64];
                                s[8 * h + 6 + l / 16] += (((B >> 4) | (H >> 6) << 4) - 32) * x[l + 96];
                            }
                    int32_t isum = 0;
                    for (int q = 0; q < 16; q++) isum += w[b].sc[32 * (q / 4) + 16 * (i / 4) + 4 * (q % 4) + i % 4] * s[q];
                    sum = sum + (a[b].d * sa_fp16_lut(w[b].d[i])) * (float)isum;
                }
                y[(size_t)t * ldy + 8 * g + i] = sum;
            }
        }
    }
}
