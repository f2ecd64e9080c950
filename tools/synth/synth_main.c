/* synth_main.c - salign-synth: write a random-weight model (tools/synth/synth.h) as an HF directory
 * and/or a GGUF. Every failure is one line "salign-synth: <flag or file>: <problem>", exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common.h"
#include "synth.h"

static const char usage[] =
    "usage: salign-synth --arch ARCH --hidden N --layers N --heads N --kv-heads N --ff N\n"
    "                    --vocab-from TOKENIZER_DIR --hf OUTDIR [--gguf OUT.gguf] [options]\n"
    "       salign-synth --preset NAME --vocab-from TOKENIZER_DIR --hf OUTDIR [--gguf OUT.gguf] [options]\n"
    "\n"
    "Write a model with random weights and real shapes: a Hugging Face directory (config.json,\n"
    "safetensors, the tokenizer files copied from TOKENIZER_DIR) and/or a GGUF in llama.cpp's\n"
    "conventions. Both hold the same model.\n"
    "\n"
    "  --arch A            llama, mistral, qwen2, gemma, gemma2\n"
    "  --hidden, --layers, --heads, --kv-heads, --ff N   the shape\n"
    "  --head-dim N        head size (default hidden / heads)\n"
    "  --vocab N           pad the vocabulary to N tokens (default: the tokenizer's size)\n"
    "  --seed S            random seed (default 1)\n"
    "  --dtype T           safetensors dtype: f32 (default), bf16, f16\n"
    "  --tied | --untied   share the output matrix with the embedding (default: Gemma tied)\n"
    "  --score             llama only, --hf only: a score model (safe-rlhf's LlamaForScore, as PKU-Alignment's\n"
    "                      beaver reward/cost models): score_head instead of lm_head; --score-bias: with a bias\n"
    "  --rope-scaling S    none (default), llama3 (Llama 3.2: factor 32, 1, 4, 8192), linear\n"
    "  --rope-factor F     factor for linear scaling\n"
    "  --rope-theta F      RoPE base (default per architecture)\n"
    "  --sliding-window N  Gemma 2 window (default 4096)\n"
    "  --ctx N             max_position_embeddings (default per architecture)\n"
    "  --shards N          split the safetensors into N files with an index (default 1)\n"
    "  --logit-std F       spread of the logits (default 4)\n"
    "  --block-scale F     scale what each block adds to the residual (o_proj/down_proj, Gemma 2's\n"
    "                      post-norms; default 1)\n"
    "  --hf DIR            write the HF directory\n"
    "  --gguf FILE         write the GGUF; --gguf-type f32 (default), f16, q8_0, q4_0\n"
    "  --preset NAME       the shape of a published model (flags after it override):\n"
    "                      llama-3.2-1b, llama-2-7b, mistral-7b, qwen2.5-0.5b, gemma-2b, gemma-2-2b\n";

typedef struct {
    const char *name;
    int arch, hidden, layers, heads, kv_heads, ff, head_dim, tied, rope_scaling, window;
    float theta;
} Preset;

static const Preset presets[] = {
    {"llama-3.2-1b", SYN_LLAMA, 2048, 16, 32, 8, 8192, 64, 1, 1, 0, 500000.0f},
    {"llama-2-7b", SYN_LLAMA, 4096, 32, 32, 32, 11008, 128, 0, 0, 0, 10000.0f},
    {"mistral-7b", SYN_MISTRAL, 4096, 32, 32, 8, 14336, 128, 0, 0, 0, 1000000.0f},
    {"qwen2.5-0.5b", SYN_QWEN2, 896, 24, 14, 2, 4864, 64, 1, 0, 0, 1000000.0f},
    {"gemma-2b", SYN_GEMMA, 2048, 18, 8, 1, 16384, 256, 1, 0, 0, 10000.0f},
    {"gemma-2-2b", SYN_GEMMA2, 2304, 26, 8, 4, 9216, 256, 1, 0, 4096, 10000.0f},
};

static int fail(const char *fmt, const char *a) {
    char msg[SA_ERR_MAX + 256];
    snprintf(msg, sizeof msg, fmt, a);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "salign-synth: %s\n", msg);
    return 1;
}

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        char b[128];
        snprintf(b, sizeof b, "%s: \"%%s\" is not an integer from %ld to %ld", flag, lo, hi);
        return fail(b, v);
    }
    *out = (int)x;
    return 0;
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x > 0) || x > 1e30) {
        char b[96];
        snprintf(b, sizeof b, "%s: \"%%s\" is not a positive number", flag);
        return fail(b, v);
    }
    *out = (float)x;
    return 0;
}

int main(int argc, char **argv) {
    SaSynthSpec sp = {0};
    sp.arch = -1;
    sp.seed = 1;
    sp.dtype = SA_F32;
    sp.tied = -1;
    const char *hf = NULL, *gguf = NULL, *gguf_type = "f32";
    int seen_shape = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--tied") || !strcmp(a, "--untied")) {
            sp.tied = a[2] == 't';
            continue;
        }
        if (!strcmp(a, "--score") || !strcmp(a, "--score-bias")) {
            sp.score = a[7] ? 2 : 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) return fail("%s: unexpected argument (see --help)", a);
        if (i + 1 >= argc) return fail("%s: missing value", a);
        const char *v = argv[++i];
        int x;
        if (!strcmp(a, "--preset")) {
            const Preset *p = NULL;
            for (size_t k = 0; k < SA_ARRAY_LEN(presets); k++)
                if (!strcmp(v, presets[k].name)) p = &presets[k];
            if (!p) return fail("--preset: unknown preset \"%s\" (see --help)", v);
            if (seen_shape) return fail("--preset: must come before the shape flags it sets (%s)", v);
            sp.arch = p->arch;
            sp.hidden = p->hidden;
            sp.layers = p->layers;
            sp.heads = p->heads;
            sp.kv_heads = p->kv_heads;
            sp.ff = p->ff;
            sp.head_dim = p->head_dim;
            sp.tied = p->tied;
            sp.rope_scaling = p->rope_scaling;
            sp.sliding_window = p->window;
            sp.rope_theta = p->theta;
            continue;
        }
        seen_shape = 1;
        if (!strcmp(a, "--arch")) {
            if ((sp.arch = sa_synth_arch_from_name(v)) < 0)
                return fail("--arch: unknown architecture \"%s\" (llama, mistral, qwen2, gemma, gemma2)", v);
        } else if (!strcmp(a, "--hidden")) {
            if (parse_int(a, v, 1, 1 << 16, &sp.hidden)) return 1;
        } else if (!strcmp(a, "--layers")) {
            if (parse_int(a, v, 1, 1024, &sp.layers)) return 1;
        } else if (!strcmp(a, "--heads")) {
            if (parse_int(a, v, 1, 1024, &sp.heads)) return 1;
        } else if (!strcmp(a, "--kv-heads")) {
            if (parse_int(a, v, 1, 1024, &sp.kv_heads)) return 1;
        } else if (!strcmp(a, "--ff")) {
            if (parse_int(a, v, 1, 1 << 20, &sp.ff)) return 1;
        } else if (!strcmp(a, "--head-dim")) {
            if (parse_int(a, v, 2, 4096, &sp.head_dim)) return 1;
        } else if (!strcmp(a, "--vocab")) {
            if (parse_int(a, v, 1, 1 << 24, &sp.vocab)) return 1;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &x)) return 1;
            sp.seed = (uint64_t)x;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f32")) sp.dtype = SA_F32;
            else if (!strcmp(v, "bf16")) sp.dtype = SA_BF16;
            else if (!strcmp(v, "f16")) sp.dtype = SA_F16;
            else return fail("--dtype: \"%s\" is not f32, bf16 or f16", v);
        } else if (!strcmp(a, "--rope-scaling")) {
            if (!strcmp(v, "none")) sp.rope_scaling = 0;
            else if (!strcmp(v, "llama3")) sp.rope_scaling = 1;
            else if (!strcmp(v, "linear")) sp.rope_scaling = 2;
            else return fail("--rope-scaling: \"%s\" is not none, llama3 or linear", v);
        } else if (!strcmp(a, "--rope-factor")) {
            if (parse_float(a, v, &sp.rope_factor)) return 1;
        } else if (!strcmp(a, "--rope-theta")) {
            if (parse_float(a, v, &sp.rope_theta)) return 1;
        } else if (!strcmp(a, "--block-scale")) {
            if (parse_float(a, v, &sp.block_scale)) return 1;
        } else if (!strcmp(a, "--logit-std")) {
            if (parse_float(a, v, &sp.logit_std)) return 1;
        } else if (!strcmp(a, "--sliding-window")) {
            if (parse_int(a, v, 1, 1 << 30, &sp.sliding_window)) return 1;
        } else if (!strcmp(a, "--ctx")) {
            if (parse_int(a, v, 1, 1 << 30, &sp.ctx)) return 1;
        } else if (!strcmp(a, "--shards")) {
            if (parse_int(a, v, 1, 999, &sp.shards)) return 1;
        } else if (!strcmp(a, "--vocab-from")) {
            sp.vocab_from = v;
        } else if (!strcmp(a, "--hf")) {
            hf = v;
        } else if (!strcmp(a, "--gguf")) {
            gguf = v;
        } else if (!strcmp(a, "--gguf-type")) {
            gguf_type = v;
        } else {
            return fail("%s: unknown option (see --help)", a);
        }
    }
    if (sp.arch < 0) return fail("--arch: missing (or give --preset)%s", "");
    if (!sp.hidden || !sp.layers || !sp.heads || !sp.kv_heads || !sp.ff)
        return fail("missing shape: --hidden, --layers, --heads, --kv-heads and --ff are needed%s", "");
    if (!hf && !gguf) return fail("nothing to write: give --hf DIR and/or --gguf FILE%s", "");
    if (sp.rope_scaling == 2 && !(sp.rope_factor > 0)) return fail("--rope-factor: needed with --rope-scaling linear%s", "");
    SaDtype gt;
    if (!strcmp(gguf_type, "f32")) gt = SA_F32;
    else if (!strcmp(gguf_type, "f16")) gt = SA_F16;
    else if (!strcmp(gguf_type, "q8_0")) gt = SA_Q8_0;
    else if (!strcmp(gguf_type, "q4_0")) gt = SA_Q4_0;
    else return fail("--gguf-type: \"%s\" is not f32, f16, q8_0 or q4_0", gguf_type);

    SaSynth *s = sa_synth_new(&sp);
    if (!s) return fail("%s", sa_errmsg());
    int rc = 0;
    if (hf && sa_synth_write_hf(s, hf)) rc = fail("%s", sa_errmsg());
    if (!rc && gguf && sa_synth_write_gguf(s, gguf, gt)) rc = fail("%s", sa_errmsg());
    sa_synth_free(s);
    return rc;
}
