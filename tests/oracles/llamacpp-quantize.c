/* llamacpp-quantize.c - llama.cpp's own quantizer (llama_model_quantize: what `llama-quantize`
 * calls, file-type rules and all, no --pure, no importance matrix) as a test tool.
 *
 * Built by tests/run-archs.sh against the prebuilt libllama of node-llama-cpp 3.21.1 (the same
 * package and release the logits oracle runs), with llama.h and the ggml headers taken from the
 * llama.cpp source bundle that package ships: nothing is compiled from llama.cpp itself.
 *
 * Usage: llamacpp-quantize IN.gguf OUT.gguf FTYPE [pure] [tt=PATTERN=TYPE]... [imatrix=FILE]
 *        FTYPE: Q4_K_M, Q6_K, Q4_0, ... as below; "pure": every matrix in FTYPE's base type, as
 *        llama-quantize --pure; tt=: a tensor type override, as llama-quantize --tensor-type
 *        PATTERN=TYPE (TYPE in ggml's spelling, e.g. q8_0); imatrix=FILE: an importance matrix, GGUF
 *        (read with ggml's GGUF reader) or .dat, normalised as llama-quantize's --imatrix does
 *        (GGUF: in_sum2 / round(count), 1 where the count is 0; .dat: value / ncall when ncall > 0)
 *        llamacpp-quantize --types FILE.gguf: print "NAME GGML_TYPE_ID FILE_OFFSET BYTES" for every tensor of FILE
 *        (ggml's own GGUF reader: it knows every type)
 * Exit status 0 on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
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

static int print_types(const char *path) {
    struct gguf_init_params ip = {true, NULL};
    struct gguf_context *g = gguf_init_from_file(path, ip);
    if (!g) {
        fprintf(stderr, "llamacpp-quantize: cannot read %s\n", path);
        return 1;
    }
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++)
        printf("%s %d %llu %llu\n", gguf_get_tensor_name(g, i), (int)gguf_get_tensor_type(g, i),
               (unsigned long long)(gguf_get_data_offset(g) + gguf_get_tensor_offset(g, i)),
               (unsigned long long)gguf_get_tensor_size(g, i));
    gguf_free(g);
    return 0;
}

/* The entries of an importance matrix, terminated by a NULL name; NULL on failure. */
static struct llama_model_imatrix_data *load_imatrix(const char *path) {
    struct llama_model_imatrix_data *im = calloc(4096, sizeof *im);
    int n = 0;
    struct ggml_context *ctx = NULL;
    struct gguf_init_params ip = {false, &ctx};
    struct gguf_context *g = gguf_init_from_file(path, ip);
    if (g) {
        for (struct ggml_tensor *t = ggml_get_first_tensor(ctx); t && n < 4095; t = ggml_get_next_tensor(ctx, t)) {
            const char *name = ggml_get_name(t);
            const size_t len = strlen(name);
            if (len <= 8 || strcmp(name + len - 8, ".in_sum2")) continue;
            char cname[300];
            snprintf(cname, sizeof cname, "%.*s.counts", (int)(len - 8), name);
            struct ggml_tensor *c = ggml_get_first_tensor(ctx);
            while (c && strcmp(ggml_get_name(c), cname)) c = ggml_get_next_tensor(ctx, c);
            if (!c) return NULL;
            const int64_t nval = ggml_nelements(t), ncounts = ggml_nelements(c), ne0 = nval / ncounts;
            float *v = malloc((size_t)nval * sizeof *v);
            for (int64_t k = 0; k < ncounts; k++) {
                const float cnt = (float)lroundf(((const float *)c->data)[k]);
                for (int64_t j = 0; j < ne0; j++) v[k * ne0 + j] = cnt > 0 ? ((const float *)t->data)[k * ne0 + j] / cnt : 1.0f;
            }
            char *nm = malloc(len - 7);
            memcpy(nm, name, len - 8);
            nm[len - 8] = 0;
            im[n].name = nm;
            im[n].data = v;
            im[n++].size = (size_t)nval;
        }
        gguf_free(g);
        return im;
    }
    FILE *f = fopen(path, "rb");
    int32_t count = 0;
    if (!f || fread(&count, 4, 1, f) != 1 || count < 1 || count > 4095) return NULL;
    for (int i = 0; i < count; i++) {
        int32_t len = 0, ncall = 0, nval = 0;
        if (fread(&len, 4, 1, f) != 1 || len < 1 || len > 1000) return NULL;
        char *nm = calloc((size_t)len + 1, 1);
        if (fread(nm, 1, (size_t)len, f) != (size_t)len || fread(&ncall, 4, 1, f) != 1 || fread(&nval, 4, 1, f) != 1 || nval < 1)
            return NULL;
        float *v = malloc((size_t)nval * sizeof *v);
        if (fread(v, 4, (size_t)nval, f) != (size_t)nval) return NULL;
        if (ncall > 0)
            for (int j = 0; j < nval; j++) v[j] = v[j] / (float)(int64_t)ncall;
        im[n].name = nm;
        im[n].data = v;
        im[n++].size = (size_t)nval;
    }
    fclose(f);
    return im;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--types")) return print_types(argv[2]);
    struct llama_model_tensor_override tt[17];
    char patterns[16][128];
    int n_tt = 0, pure = 0, bad = argc < 4;
    struct llama_model_imatrix_data *imatrix = NULL;
    for (int i = 4; i < argc && !bad; i++) {
        const char *eq = !strncmp(argv[i], "tt=", 3) ? strchr(argv[i] + 3, '=') : NULL;
        if (!strcmp(argv[i], "pure")) pure = 1;
        else if (!strncmp(argv[i], "imatrix=", 8)) {
            imatrix = load_imatrix(argv[i] + 8);
            if (!imatrix) {
                fprintf(stderr, "llamacpp-quantize: cannot read the importance matrix %s\n", argv[i] + 8);
                return 1;
            }
        }
        else if (eq && n_tt < 16 && (size_t)(eq - argv[i] - 3) < sizeof patterns[0]) {
            memcpy(patterns[n_tt], argv[i] + 3, (size_t)(eq - argv[i] - 3));
            patterns[n_tt][eq - argv[i] - 3] = 0;
            int t = -1;
            for (int k = 0; k < GGML_TYPE_COUNT; k++)
                if (ggml_type_name((enum ggml_type)k) && !strcmp(ggml_type_name((enum ggml_type)k), eq + 1)) t = k;
            if (t < 0) bad = 1;
            tt[n_tt].pattern = patterns[n_tt];
            tt[n_tt++].type = (enum ggml_type)t;
        } else bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: llamacpp-quantize IN.gguf OUT.gguf FTYPE [pure] [tt=PATTERN=TYPE]... [imatrix=FILE]\n");
        return 2;
    }
    tt[n_tt].pattern = NULL;
    tt[n_tt].type = GGML_TYPE_COUNT;
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
    p.pure = pure;
    if (n_tt) p.tt_overrides = tt;
    if (imatrix && imatrix[0].name) p.imatrix = imatrix;
    const uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
    llama_backend_free();
    if (rc) fprintf(stderr, "llamacpp-quantize: %s -> %s (%s) failed (%u)\n", argv[1], argv[2], argv[3], rc);
    return rc ? 1 : 0;
}
