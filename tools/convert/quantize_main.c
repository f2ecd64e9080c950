/* quantize_main.c - salign-quantize: convert an HF directory, a GGUF, a .salm or a llama2.c model to .salm.
 *
 * Every failure is one line "salign-quantize: <file or flag>: <problem>" on stderr and exit
 * status 1; the library functions return the message, only this file prints it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../../src/common.h"
#include "../../src/dtype.h"
#include "../../src/parallel.h"
#include "import.h"
#include "../../src/chat.h"

static const char usage[] =
    "usage: salign-quantize INPUT OUTPUT.salm --type TYPE [--pure] [--tensor-type NAME=TYPE]... [-t N]\n"
    "                       [--tokenizer tokenizer.bin] [-q]\n"
    "\n"
    "Convert a model to salign's .salm format.\n"
    "\n"
    "INPUT is one of:\n"
    "  a Hugging Face model directory: config.json, model.safetensors (or shards listed in\n"
    "    model.safetensors.index.json; BF16, F16 or F32), tokenizer.json, tokenizer_config.json;\n"
    "    LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM\n"
    "  a GGUF file (llama, qwen2, gemma, gemma2; tensors F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,\n"
    "    Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL or IQ4_XS: every file type llama-quantize makes from Q2_K\n"
    "    to Q8_0 without the IQ1/IQ2/IQ3 types)\n"
    "  a .salm (re-quantize it: e.g. f16 -> q4_0)\n"
    "  a llama2.c checkpoint (.bin, versions 0, 1 and 2); needs --tokenizer\n"
    "\n"
    "options:\n"
    "  --type T          output type of the weight matrices:\n"
    "                      f32, f16    plain floats\n"
    "                      keep        the input's own types, quantized blocks copied unchanged\n"
    "                      q4_k_m q4_k_s q5_k_m q5_k_s q6_k q3_k_m q3_k_l q3_k_s q2_k iq4_xs iq4_nl\n"
    "                      q4_0 q4_1 q5_0 q5_1 q8_0\n"
    "                                  llama.cpp's file types, tensor for tensor the types and bytes\n"
    "                                  llama-quantize writes: the classifier gets q6_k, attn_v and\n"
    "                                  ffn_down more bits in some layers, rows that do not fit a\n"
    "                                  type's blocks the next smaller block (see README)\n"
    "                    Norms and biases stay f32.\n"
    "  --pure            every matrix in the file type's base type (no per-tensor rules)\n"
    "  --tensor-type NAME=TYPE\n"
    "                    tensors whose name matches the regular expression NAME (anywhere in the\n"
    "                    name, e.g. attn_v or blk\\.[0-3]\\.ffn_down) get TYPE (q8_0, q6_K, f16, ...);\n"
    "                    repeatable, the first match wins (llama-quantize's option)\n"
    "  --imatrix FILE    importance matrix (llama-imatrix's GGUF or .dat file): weighted quantization,\n"
    "                    the same bytes as llama-quantize --imatrix FILE\n"
    "  -t, --threads N   quantize with N threads (default: all cores)\n"
    "  --tokenizer FILE  llama2.c tokenizer.bin (for .bin checkpoints)\n"
    "  --aligner-template stream-gemma|plain|aligner7b|annotator|FILE\n"
    "                    store the Stream Aligner prompt template in the model (for aligner models)\n"
    "  -q, --quiet       no progress output\n"
    "  -h, --help        this text\n";

/* The message is one line: any control character from a file name or file contents that
 * slipped through becomes '?'. */
static int fail(const char *fmt, const char *a, const char *b) {
    char msg[SA_ERR_MAX + 256];
    snprintf(msg, sizeof msg, fmt, a, b);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "salign-quantize: %s\n", msg);
    return 1;
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* --tensor-type NAME=TYPE: NAME a non-empty pattern, TYPE a weight type this build can write
 * (ggml's spelling, any case). 0, or 1 after printing the message. */
static int parse_override(const char *v, SaTypeOverride *o) {
    const char *eq = strchr(v, '=');
    if (!eq) return fail("--tensor-type %s: expected NAME=TYPE", v, NULL);
    if (eq == v) return fail("--tensor-type %s: missing the tensor name before '='", v, NULL);
    int d = -1;
    for (int t = 0; t < SA_DTYPE_COUNT; t++)
        if ((sa_dtype_traits[t].flags & SA_DT_WEIGHT) && sa_dtype_traits[t].from_float && strcasecmp(sa_dtype_traits[t].name, eq + 1) == 0)
            d = t;
    if (d < 0) return fail("--tensor-type %s: unknown or unsupported type \"%s\"", v, eq + 1);
    o->pattern = sa_malloc((size_t)(eq - v) + 1);
    if (!o->pattern) return fail("%s", sa_errmsg(), NULL);
    memcpy(o->pattern, v, (size_t)(eq - v));
    o->pattern[eq - v] = 0;
    o->type = sa_dtype_traits[d].ggml_type;
    return 0;
}

int main(int argc, char **argv) {
    sa_blas_process_init(argv);
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    const char *type_name = NULL, *tokenizer = NULL, *al_tmpl = NULL, *imatrix_path = NULL;
    int quiet = 0, pure = 0, threads = 0, n_over = 0;
    SaTypeOverride over[64];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--type") == 0 || strcmp(a, "--tokenizer") == 0) {
            if (i + 1 >= argc) return fail("%s: missing value", a, NULL);
            if (a[2] == 't' && a[3] == 'y') type_name = argv[++i];
            else tokenizer = argv[++i];
        } else if (strcmp(a, "--imatrix") == 0) {
            if (i + 1 >= argc) return fail("%s: missing value", a, NULL);
            imatrix_path = argv[++i];
        } else if (strcmp(a, "--pure") == 0) {
            pure = 1;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc) return fail("%s: missing value", a, NULL);
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 1024) return fail("%s: \"%s\" is not a thread count (1 to 1024)", a, argv[i]);
            threads = (int)v;
        } else if (strcmp(a, "--tensor-type") == 0 || strncmp(a, "--tensor-type=", 14) == 0) {
            const char *v = a[13] == '=' ? a + 14 : NULL;
            if (!v) {
                if (i + 1 >= argc) return fail("%s: missing value", a, NULL);
                v = argv[++i];
            }
            if (n_over == (int)(sizeof over / sizeof over[0])) return fail("--tensor-type: more than %s overrides", "64", NULL);
            if (parse_override(v, &over[n_over])) return 1;
            n_over++;
        } else if (strcmp(a, "--aligner-template") == 0) {
            if (i + 1 >= argc) return fail("%s: missing value", a, NULL);
            al_tmpl = argv[++i];
        } else if (strncmp(a, "--type=", 7) == 0) {
            type_name = a + 7;
        } else if (strncmp(a, "--tokenizer=", 12) == 0) {
            tokenizer = a + 12;
        } else if (a[0] == '-' && a[1] != 0) {
            return fail("%s: unknown option (see --help)", a, NULL);
        } else {
            if (npos == 2) return fail("%s: unexpected argument (INPUT and OUTPUT are already given)", a, NULL);
            pos[npos++] = a;
        }
    }
    if (npos < 2) return fail("%s (see --help)", npos == 0 ? "missing INPUT and OUTPUT" : "missing OUTPUT", NULL);
    if (!type_name) return fail("--type: missing (q4_k_m, q8_0, f16, keep, ...: see --help)", NULL, NULL);
    int type = sa_conv_type_from_name(type_name);
    if (type < 0) return fail("--type: unknown type \"%s\" (see --help)", type_name, NULL);
    if (!sa_conv_type_available((SaConvType)type))
        return fail("--type %s: this build has no quantizer yet for a type this file type uses", type_name, NULL);
    const char *in = pos[0], *out = pos[1];

    struct stat st, so;
    if (stat(in, &st) != 0) return fail("%s: cannot open: no such file or directory", in, NULL);
    if (stat(out, &so) == 0) {
        if (S_ISDIR(so.st_mode)) return fail("%s: is a directory", out, NULL);
        if (so.st_dev == st.st_dev && so.st_ino == st.st_ino) return fail("%s: is the input file", out, NULL);
    }

    /* Detect the input: a directory is a Hugging Face model, a GGUF has its magic, llama2.c
     * checkpoints have the .bin extension (they have no magic). */
    char magic[4] = {0};
    size_t got = 0;
    if (!S_ISDIR(st.st_mode)) {
        FILE *f = fopen(in, "rb");
        if (!f) return fail("%s: cannot open", in, NULL);
        got = fread(magic, 1, 4, f);
        fclose(f);
    }
    SaConvSource src;
    int rc;
    if (S_ISDIR(st.st_mode)) {
        if (tokenizer) return fail("--tokenizer: only used with llama2.c checkpoints (an HF directory has tokenizer.json)", NULL, NULL);
        rc = sa_import_hf(in, &src);
    } else if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        if (tokenizer) return fail("--tokenizer: only used with llama2.c checkpoints (a GGUF has its own vocabulary)", NULL, NULL);
        rc = sa_import_gguf(in, &src);
    } else if (got == 4 && memcmp(magic, SALM_MAGIC, 4) == 0) {
        if (tokenizer) return fail("--tokenizer: only used with llama2.c checkpoints (a .salm has its own vocabulary)", NULL, NULL);
        rc = sa_import_salm(in, &src);
    } else if (has_suffix(in, ".bin")) {
        if (!tokenizer) return fail("%s: a llama2.c checkpoint needs --tokenizer tokenizer.bin", in, NULL);
        rc = sa_import_llama2c(in, tokenizer, &src);
    } else {
        return fail("%s: unrecognised input (expected an HF model directory, a GGUF file, a .salm or a llama2.c .bin checkpoint)", in, NULL);
    }
    if (rc) return fail("%s", sa_errmsg(), NULL);
    if (al_tmpl) {
        /* a built-in name or a file holding the template text (placeholders: see src/chat.h) */
        const char *builtin = sa_aligner_template(al_tmpl);
        src.aligner_template = builtin ? sa_strdup(builtin) : sa_read_file(al_tmpl, NULL);
        if (!src.aligner_template || sa_template_check(src.aligner_template)) {
            sa_conv_free(&src);
            return fail("--aligner-template: %s", sa_errmsg(), NULL);
        }
    }

    SaImatrix im = {0};
    if (imatrix_path && sa_imatrix_load(imatrix_path, &im)) {
        sa_conv_free(&src);
        return fail("--imatrix: %s", sa_errmsg(), NULL);
    }
    SaConvOptions opt = {.type = (SaConvType)type, .quiet = quiet, .pure = pure, .overrides = over,
                         .n_overrides = n_over, .threads = threads, .imatrix = imatrix_path ? &im : NULL};
    rc = sa_conv_write(&src, out, &opt);
    sa_conv_free(&src);
    sa_imatrix_free(&im);
    for (int k = 0; k < n_over; k++) free(over[k].pattern);
    if (rc) return fail("%s", sa_errmsg(), NULL);
    return 0;
}
