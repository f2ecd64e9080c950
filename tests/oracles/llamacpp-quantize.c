/* llamacpp-quantize.c - llama.cpp's own quantizer (llama_model_quantize: what `llama-quantize`
 * calls, file-type rules and all, no --pure, no importance matrix) as a test tool.
 *
 * Built by tests/run-archs.sh against the prebuilt libllama of node-llama-cpp 3.21.1 (the same
 * package and release the logits oracle runs), with llama.h and the ggml headers taken from the
 * llama.cpp source bundle that package ships: nothing is compiled from llama.cpp itself.
 *
 * Usage: llamacpp-quantize IN.gguf OUT.gguf FTYPE [pure]   (FTYPE: Q4_K_M, Q6_K, Q4_0, ... as below;
 *        "pure": every matrix in FTYPE's base type, as llama-quantize --pure)
 * Exit status 0 on success. */
#include <stdio.h>
#include <string.h>

#include "llama.h"

static const struct {
    const char *name;
    enum llama_ftype ftype;
} ftypes[] = {
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},     {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},
    {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},     {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},     {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},
    {"Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S}, {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M}, {"Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L},
    {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S},
    {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},     {"IQ4_NL", LLAMA_FTYPE_MOSTLY_IQ4_NL},
    {"IQ4_XS", LLAMA_FTYPE_MOSTLY_IQ4_XS},
};

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "pure"))) {
        fprintf(stderr, "usage: llamacpp-quantize IN.gguf OUT.gguf FTYPE [pure]\n");
        return 2;
    }
    int found = -1;
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (!strcmp(ftypes[i].name, argv[3])) found = (int)i;
    if (found < 0) {
        fprintf(stderr, "llamacpp-quantize: unknown file type %s\n", argv[3]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_quantize_params p = llama_model_quantize_default_params();
    p.ftype = ftypes[found].ftype;
    p.nthread = 1;
    p.pure = argc == 5;
    const uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
    llama_backend_free();
    if (rc) fprintf(stderr, "llamacpp-quantize: %s -> %s (%s) failed (%u)\n", argv[1], argv[2], argv[3], rc);
    return rc ? 1 : 0;
}
