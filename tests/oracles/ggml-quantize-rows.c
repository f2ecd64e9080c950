/* ggml-quantize-rows.c - ggml's own quantizer on given rows: ggml_quantize_chunk, the call
 * llama-quantize makes for every tensor, as a test tool; with IMX.f32 (N_PER_ROW importance values,
 * one per column) weighted by them, as llama-quantize --imatrix.
 *
 * Built by tests/run-archs.sh against the prebuilt libggml-base of node-llama-cpp 3.21.1 with the
 * ggml headers of the llama.cpp source bundle the same package ships (as llamacpp-quantize.c).
 * tests/test_archs.c (archs_model_ftypes_quantizer_edges) writes rows a model's weights rarely hold
 * (all zero, constant, one spike, tiny, huge, exact ties) and compares our quantizers' bytes.
 *
 * Usage: ggml-quantize-rows GGML_TYPE_ID N_PER_ROW IN.f32 OUT [IMX.f32]
 *        IN.f32: rows of N_PER_ROW little-endian floats; OUT: the quantized rows. Exit 0 on success. */
#include <stdio.h>
#include <stdlib.h>

#include "ggml.h"

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: ggml-quantize-rows GGML_TYPE_ID N_PER_ROW IN.f32 OUT [IMX.f32]\n");
        return 2;
    }
    const int type = atoi(argv[1]);
    const long n = atol(argv[2]);
    if (type < 0 || type >= GGML_TYPE_COUNT || n <= 0 || n % ggml_blck_size((enum ggml_type)type)) {
        fprintf(stderr, "ggml-quantize-rows: bad type %s or row length %s\n", argv[1], argv[2]);
        return 2;
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f) return 1;
    fseek(f, 0, SEEK_END);
    const long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    const long rows = bytes / 4 / n;
    float *x = malloc((size_t)bytes + 4);
    const size_t rb = ggml_row_size((enum ggml_type)type, n);
    void *q = malloc(rb * (size_t)rows + 1);
    if (!x || !q || rows < 1 || fread(x, 4, (size_t)(rows * n), f) != (size_t)(rows * n)) return 1;
    fclose(f);
    float *imx = NULL;
    if (argc == 6) {
        imx = malloc(4 * (size_t)n);
        FILE *g = fopen(argv[5], "rb");
        if (!imx || !g || fread(imx, 4, (size_t)n, g) != (size_t)n) return 1;
        fclose(g);
    }
    const size_t got = ggml_quantize_chunk((enum ggml_type)type, x, q, 0, rows, n, imx);
    FILE *o = fopen(argv[4], "wb");
    if (!o || fwrite(q, 1, got, o) != got || fclose(o)) return 1;
    free(x);
    free(q);
    free(imx);
    return 0;
}
