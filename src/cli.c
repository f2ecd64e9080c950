/* cli.c - the salign command line: one binary, subcommands.
 *
 *   salign generate -m MODEL [-p PROMPT] [-n N] [sampling flags] [-t THREADS] [-c CTX] [--ids]
 *   salign tokenize (-m MODEL | --tokenizer FILE) [--no-bos] [--jsonl] [--special]
 *   salign info MODEL [--verify]
 *
 * Contract: stdout carries only the product (generated text, ids, info); logs and timings go
 * to stderr. Every user error ends in one line "salign: <flag or file>: <problem>" and exit 1. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "../simd/kernels.h"
#include "aligner.h"
#include "chat.h"
#include "common.h"
#include "context.h"
#include "gguf.h"
#include "matmul.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

static int die(void) {
    fprintf(stderr, "salign: %s\n", sa_errmsg());
    return 1;
}

/* ---- flag parsing ---------------------------------------------------------------------- */

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi)
        return sa_err("%s: expected an integer in [%ld, %ld], got '%s'", flag, lo, hi, v ? v : "");
    *out = (int)x;
    return 0;
}

static int parse_u64(const char *flag, const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || v[0] == '-') return sa_err("%s: expected a non-negative integer, got '%s'", flag, v ? v : "");
    *out = x;
    return 0;
}

static int parse_float(const char *flag, const char *v, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float x = v ? strtof(v, &end) : 0;
    if (!v || !*v || *end || errno || !isfinite(x) || x < lo || x > hi)
        return sa_err("%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, v ? v : "");
    *out = x;
    return 0;
}

/* Return the value of a flag that takes one, advancing *i; NULL + sa_err if it is missing. */
static const char *flag_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        sa_err("%s: missing value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

typedef struct {
    const char *model;
    int threads;
    int n_ctx;
    int use_mmap;
    SaDtype kv_type;
} CommonOpts;

/* Flags shared by the model-running subcommands. Returns 1 if argv[*i] was one, 0 if not,
 * -1 on a bad value. */
static int common_flag(CommonOpts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = flag_value(argc, argv, i))) return -1;
        o->model = v;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = flag_value(argc, argv, i)) || parse_int(a, v, 1, 1024, &o->threads)) return -1;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (!(v = flag_value(argc, argv, i)) || parse_int(a, v, 1, 1 << 22, &o->n_ctx)) return -1;
    } else if (!strcmp(a, "--mmap")) {
        o->use_mmap = 1;
    } else if (!strcmp(a, "--kv-type")) {
        if (!(v = flag_value(argc, argv, i))) return -1;
        if (!strcmp(v, "f16")) o->kv_type = SA_F16;
        else if (!strcmp(v, "f32")) o->kv_type = SA_F32;
        else return sa_err("--kv-type: expected f16 or f32, got '%s'", v);
    } else {
        return 0;
    }
    return 1;
}

static void common_init(CommonOpts *o) {
    memset(o, 0, sizeof *o);
    o->kv_type = SA_F16;
    o->threads = omp_get_num_procs();
}

static int load_model(const CommonOpts *o, SaModel *m) {
    if (!o->model) return sa_err("-m: a model file is required");
    double t0 = sa_time_ms();
    SaLoadOpts lo = {.use_mmap = o->use_mmap};
    if (sa_model_load(m, o->model, &lo)) return -1;
    fprintf(stderr, "salign: loaded %s (%s, %d layers, %.1f MiB) in %.0f ms, %d threads, kernels %s\n", o->model,
            sa_arch_name(m->hp.arch), m->hp.n_layer, sa_model_weight_bytes(m) / 1048576.0, sa_time_ms() - t0,
            o->threads, sa_k->name);
    return 0;
}

typedef struct AlignOpts AlignOpts;
static int run_align(AlignOpts *o);
static int generate_chat(CommonOpts *co, const char *prompt, int n_predict, const SaSamplerParams *sp, const char *tmpl,
                         const char *system);

/* ---- generate -------------------------------------------------------------------------- */

static int write_out(const char *p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) return sa_err("stdout: write failed");
    fflush(stdout);
    return 0;
}

static int cmd_generate(int argc, char **argv) {
    CommonOpts co;
    common_init(&co);
    const char *prompt = "", *chat_tmpl = NULL, *system = NULL;
    int n_predict = 256, print_ids = 0, chat = 0;
    SaSamplerParams sp = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .freq_penalty = 0.0f};
    sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = common_flag(&co, argc, argv, &i);
        if (r < 0) return die();
        if (r) continue;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(v = flag_value(argc, argv, &i))) return die();
            prompt = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_int(a, v, 0, INT_MAX, &n_predict)) return die();
        } else if (!strcmp(a, "--temp")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_float(a, v, 0, 100, &sp.temp)) return die();
        } else if (!strcmp(a, "--top-k")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_int(a, v, 0, INT_MAX, &sp.top_k)) return die();
        } else if (!strcmp(a, "--top-p")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_float(a, v, 0, 1, &sp.top_p)) return die();
        } else if (!strcmp(a, "--frequency-penalty")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_float(a, v, -10, 10, &sp.freq_penalty)) return die();
        } else if (!strcmp(a, "--seed")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_u64(a, v, &sp.seed)) return die();
        } else if (!strcmp(a, "--ids")) {
            print_ids = 1;
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--chat-template")) {
            if (!(chat_tmpl = flag_value(argc, argv, &i))) return die();
        } else if (!strcmp(a, "--system")) {
            if (!(system = flag_value(argc, argv, &i))) return die();
        } else {
            sa_err("%s: unknown flag for 'generate' (see salign --help)", a);
            return die();
        }
    }
    if (chat) {
        if (print_ids) {
            sa_err("--ids: not available with --chat");
            return die();
        }
        return generate_chat(&co, prompt, n_predict, &sp, chat_tmpl, system);
    }
    if (chat_tmpl || system) {
        sa_err("%s: only with --chat", chat_tmpl ? "--chat-template" : "--system");
        return die();
    }
    sa_set_threads(co.threads);
    SaModel m;
    if (load_model(&co, &m)) return die();
    int rc = 1;
    SaCtx *ctx = NULL;
    SaSampler smp = {0};
    int32_t *ids = NULL;
    int n_ids = 0, cap = 0;
    SaBuf piece = {0};
    const SaTokSpec *ts = sa_tok_spec(m.tok);

    SaCtxParams cp;
    sa_ctx_default_params(&m, &cp);
    if (co.n_ctx) cp.n_ctx = co.n_ctx;
    cp.kv_type = co.kv_type;
    if (!(ctx = sa_ctx_new(&m, &cp))) goto out;
    if (sa_sampler_init(&smp, &sp, m.hp.n_vocab)) goto out;
    /* like llama2.c: the sequence always starts with BOS; the prompt is user text */
    if (ts->bos_id >= 0) {
        ids = sa_malloc(16 * sizeof(int32_t));
        if (!ids) goto out;
        cap = 16;
        ids[n_ids++] = ts->bos_id;
    }
    if (*prompt && sa_tok_encode(m.tok, prompt, strlen(prompt), 0, 0, &ids, &n_ids, &cap) < 0) goto out;
    if (n_ids == 0) {
        sa_err("-p: the prompt is empty and the model has no BOS token to start from");
        goto out;
    }
    if (n_ids >= cp.n_ctx) {
        sa_err("-p: the prompt has %d tokens, the context only %d (use -c)", n_ids, cp.n_ctx);
        goto out;
    }
    double t0 = sa_time_ms();
    if (sa_ctx_prompt(ctx, ids, n_ids)) goto out;
    double t1 = sa_time_ms();
    int prev = ids[n_ids - 1], n_gen = 0;
    for (; n_gen < n_predict; n_gen++) {
        int tok = sa_sample(&smp, sa_ctx_logits(ctx, -1));
        if (tok < 0) goto out;
        if (sa_tok_is_eog(m.tok, tok)) break;
        sa_sampler_accept(&smp, tok);
        if (print_ids) {
            printf(n_gen ? " %d" : "%d", tok);
            fflush(stdout);
        } else {
            piece.len = 0;
            if (sa_tok_decode(m.tok, prev, tok, 0, &piece)) goto out;
            if (write_out(piece.data, piece.len)) goto out;
        }
        prev = tok;
        if (n_gen + 1 < n_predict) {
            if (sa_ctx_pos(ctx) >= cp.n_ctx) {
                fprintf(stderr, "\nsalign: context full (%d tokens): stopping\n", cp.n_ctx);
                n_gen++;
                break;
            }
            if (sa_ctx_eval(ctx, &tok, 1, 0)) goto out;
        }
    }
    double t2 = sa_time_ms();
    if (print_ids || isatty(STDOUT_FILENO)) printf("\n");
    fprintf(stderr, "salign: prompt %d tokens in %.1f ms (%.1f t/s), generated %d tokens in %.1f ms (%.1f t/s)\n", n_ids,
            t1 - t0, n_ids * 1000.0 / (t1 - t0 + 1e-9), n_gen, t2 - t1, n_gen * 1000.0 / (t2 - t1 + 1e-9));
    rc = 0;
out:
    if (rc) die();
    free(ids);
    sa_buf_free(&piece);
    sa_sampler_free(&smp);
    sa_ctx_free(ctx);
    sa_model_free(&m);
    return rc;
}

/* ---- tokenize -------------------------------------------------------------------------- */

/* Load a tokenizer from a .salm, a GGUF (vocab-only is fine), a llama2.c tokenizer.bin, or an HF
 * tokenizer.json (named *.json or starting with '{'; tokenizer_config.json beside it is read too). */
static SaTokenizer *load_tokenizer_file(const char *path) {
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        sa_err("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    SaTokSpec spec;
    int rc;
    size_t plen = strlen(path);
    if ((got >= 1 && magic[0] == '{') || (plen >= 5 && !strcmp(path + plen - 5, ".json"))) {
        rc = sa_tok_spec_from_hf(path, &spec);
    } else if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        Gguf g;
        if (gguf_open(&g, path)) return NULL;
        rc = gguf_tok_spec(&g, &spec);
        gguf_close(&g);
    } else if (got == 4 && !memcmp(magic, SALM_MAGIC, 4)) {
        Salm s;
        if (salm_open(&s, path, 1)) return NULL;
        rc = sa_tok_spec_read(&s, &spec);
        salm_close(&s);
    } else {
        rc = sa_tok_spec_from_llama2c(path, &spec);
    }
    if (rc) return NULL;
    SaTokenizer *t = sa_tok_new(&spec);
    sa_tok_spec_free(&spec);
    if (!t) sa_err_prefix("%s: ", path);
    return t;
}

/* Minimal JSON string literal decoding for --jsonl input lines ("..." with escapes). */
static int json_string(const char *s, SaBuf *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s++ != '"') return sa_err("expected a JSON string");
    for (;;) {
        unsigned char ch = (unsigned char)*s++;
        if (ch == 0) return sa_err("unterminated JSON string");
        if (ch == '"') break;
        if (ch < 0x20) return sa_err("control character in JSON string");
        if (ch != '\\') {
            sa_buf_append(out, &ch, 1);
            continue;
        }
        char e = *s++;
        const char *simple = "\"\\/bfnrt", *map = "\"\\/\b\f\n\r\t";
        const char *pos = e ? strchr(simple, e) : NULL;
        if (pos) {
            sa_buf_append(out, &map[pos - simple], 1);
            continue;
        }
        if (e != 'u') return sa_err("bad escape in JSON string");
        unsigned cp = 0;
        for (int k = 0; k < 4; k++) {
            char h = *s++;
            int v = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (v < 0) return sa_err("bad \\u escape in JSON string");
            cp = cp * 16 + (unsigned)v;
        }
        if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u') { /* surrogate pair */
            unsigned lo = 0;
            int ok = 1;
            for (int k = 0; k < 4; k++) {
                char h = s[2 + k];
                int v = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (v < 0) ok = 0;
                lo = lo * 16 + (unsigned)(v < 0 ? 0 : v);
            }
            if (ok && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
        }
        unsigned char u[4];
        int n;
        if (cp < 0x80) { u[0] = (unsigned char)cp; n = 1; }
        else if (cp < 0x800) { u[0] = 0xC0 | (cp >> 6); u[1] = 0x80 | (cp & 0x3F); n = 2; }
        else if (cp < 0x10000) { u[0] = 0xE0 | (cp >> 12); u[1] = 0x80 | ((cp >> 6) & 0x3F); u[2] = 0x80 | (cp & 0x3F); n = 3; }
        else { u[0] = 0xF0 | (cp >> 18); u[1] = 0x80 | ((cp >> 12) & 0x3F); u[2] = 0x80 | ((cp >> 6) & 0x3F); u[3] = 0x80 | (cp & 0x3F); n = 4; }
        sa_buf_append(out, u, (size_t)n);
    }
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    if (*s) return sa_err("trailing characters after the JSON string");
    return 0;
}

static int print_ids_line(const int32_t *ids, int n, int json) {
    if (json) putchar('[');
    for (int i = 0; i < n; i++) printf("%s%d", i ? (json ? "," : " ") : "", ids[i]);
    if (json) putchar(']');
    putchar('\n');
    return 0;
}

static int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *tokfile = NULL;
    int no_bos = 0, jsonl = 0, special = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(v = flag_value(argc, argv, &i))) return die();
            model = v;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(v = flag_value(argc, argv, &i))) return die();
            tokfile = v;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else {
            sa_err("%s: unknown flag for 'tokenize'", a);
            return die();
        }
    }
    if (!!model == !!tokfile) {
        sa_err("tokenize: give exactly one of -m MODEL or --tokenizer FILE");
        return die();
    }
    SaTokenizer *tok = load_tokenizer_file(model ? model : tokfile);
    if (!tok) return die();
    const int add_bos = !no_bos && sa_tok_spec(tok)->add_bos && sa_tok_spec(tok)->bos_id >= 0;
    int rc = 1, cap = 0, n = 0;
    int32_t *ids = NULL;
    SaBuf text = {0};
    if (jsonl) {
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        long lineno = 0;
        while ((len = getline(&line, &lcap, stdin)) >= 0) {
            lineno++;
            text.len = 0;
            if (len == 0 || (len == 1 && line[0] == '\n')) continue;
            if (json_string(line, &text)) {
                sa_err_prefix("stdin line %ld: ", lineno);
                free(line);
                goto out;
            }
            n = 0;
            if (sa_tok_encode(tok, text.data ? text.data : "", text.len, add_bos, special, &ids, &n, &cap) < 0) {
                free(line);
                goto out;
            }
            print_ids_line(ids, n, 1);
        }
        free(line);
    } else {
        char tmp[65536];
        size_t got;
        while ((got = fread(tmp, 1, sizeof tmp, stdin)) > 0) sa_buf_append(&text, tmp, got);
        if (sa_tok_encode(tok, text.data ? text.data : "", text.len, add_bos, special, &ids, &n, &cap) < 0) goto out;
        print_ids_line(ids, n, 0);
    }
    rc = 0;
out:
    if (rc) die();
    free(ids);
    sa_buf_free(&text);
    sa_tok_free(tok);
    return rc;
}

/* ---- info ------------------------------------------------------------------------------ */

static int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int verify = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--verify")) verify = 1;
        else if (argv[i][0] == '-') {
            sa_err("%s: unknown flag for 'info'", argv[i]);
            return die();
        } else if (path) {
            sa_err("%s: info takes one model file", argv[i]);
            return die();
        } else path = argv[i];
    }
    if (!path) {
        sa_err("info: a model file is required");
        return die();
    }
    SaModel m;
    SaLoadOpts lo = {.use_mmap = 1};
    if (sa_model_load(&m, path, &lo)) return die();
    const SaHparams *h = &m.hp;
    const SaTokSpec *ts = sa_tok_spec(m.tok);
    printf("file:          %s (.salm v%d, %zu bytes)\n", path, SALM_VERSION, m.file.size);
    printf("architecture:  %s\n", sa_arch_name(h->arch));
    printf("n_vocab %d, n_embd %d, n_layer %d, n_head %d, n_head_kv %d, head_dim %d, n_ff %d, n_ctx_train %d\n",
           h->n_vocab, h->n_embd, h->n_layer, h->n_head, h->n_head_kv, h->head_dim, h->n_ff, h->n_ctx_train);
    printf("norm_eps %g, rope_theta %g, rope pairing %s, activation %s, tied output %s, qkv bias %s\n", h->norm_eps,
           h->rope_theta, h->rope_pairing == SA_ROPE_HALF ? "half-split" : "adjacent",
           h->act == SA_ACT_GELU_TANH ? "gelu-tanh" : "silu", h->tied_output ? "yes" : "no", h->qkv_bias ? "yes" : "no");
    if (h->rope_scaling) printf("rope scaling %d factor %g\n", (int)h->rope_scaling, h->rope_factor);
    if (h->embd_scale || h->attn_softcap || h->final_softcap || h->sliding_window || h->query_scale)
        printf("embd_scale %g, attn_softcap %g, final_softcap %g, sliding_window %d, query_scale %g\n", h->embd_scale,
               h->attn_softcap, h->final_softcap, h->sliding_window, h->query_scale);
    printf("tokenizer:     %s, %d tokens, bos %d, eos %d, eot %d, unk %d, add_bos %d, add_space_prefix %d%s%s\n",
           ts->model == SA_TOK_BPE ? "bpe" : "spm", ts->n_vocab, ts->bos_id, ts->eos_id, ts->eot_id, ts->unk_id,
           ts->add_bos, ts->add_space_prefix, ts->pre ? ", pre " : "", ts->pre ? ts->pre : "");
    printf("chat template: %s\n", m.chat_template ? "yes" : "none");
    if (m.aligner_template) printf("aligner template: yes\n");
    printf("tensors:       %d, %.2f MiB\n", m.file.n_tensors, sa_model_weight_bytes(&m) / 1048576.0);
    for (int i = 0; i < m.file.n_tensors; i++) {
        const SalmTensor *t = &m.file.tensors[i];
        char shape[96];
        int o = snprintf(shape, sizeof shape, "[%lld", (long long)t->ne[0]);
        for (int d = 1; d < t->n_dims; d++) o += snprintf(shape + o, sizeof shape - (size_t)o, ", %lld", (long long)t->ne[d]);
        snprintf(shape + o, sizeof shape - (size_t)o, "]");
        printf("  %-32s %-5s %-16s %10llu bytes  crc32 %08x\n", t->name, sa_dtype_name(t->dtype), shape,
               (unsigned long long)t->nbytes, t->crc32);
    }
    int rc = 0;
    if (verify) {
        if (salm_verify(&m.file)) rc = die();
        else printf("verify:        all %d tensor checksums match\n", m.file.n_tensors);
    }
    sa_model_free(&m);
    return rc;
}


/* ---- align ----------------------------------------------------------------------------- */

/* Sampling flags: --temp etc. set both models, --upstream-temp / --aligner-temp one of them.
 * Returns 1 if argv[*i] was one, 0 if not, -1 on a bad value. */
static int sampling_flag(SaSamplerParams *up, SaSamplerParams *al, int argc, char **argv, int *i) {
    const char *a = argv[*i], *name = a, *v;
    SaSamplerParams *targets[2] = {up, al};
    int n_t = 2;
    if (!strncmp(a, "--upstream-", 11)) { name = a + 11; targets[0] = up; n_t = 1; }
    else if (!strncmp(a, "--aligner-", 10)) { name = a + 10; targets[0] = al; n_t = 1; }
    else if (!strncmp(a, "--", 2)) name = a + 2;
    else return 0;
    if (!strcmp(name, "temp") || !strcmp(name, "top-p") || !strcmp(name, "frequency-penalty") || !strcmp(name, "top-k") ||
        !strcmp(name, "seed")) {
        if (!(v = flag_value(argc, argv, i))) return -1;
        for (int k = 0; k < n_t; k++) {
            SaSamplerParams *sp = targets[k];
            if (!strcmp(name, "temp") && parse_float(a, v, 0, 100, &sp->temp)) return -1;
            if (!strcmp(name, "top-p") && parse_float(a, v, 0, 1, &sp->top_p)) return -1;
            if (!strcmp(name, "frequency-penalty") && parse_float(a, v, -10, 10, &sp->freq_penalty)) return -1;
            if (!strcmp(name, "top-k") && parse_int(a, v, 0, INT_MAX, &sp->top_k)) return -1;
            if (!strcmp(name, "seed") && parse_u64(a, v, &sp->seed)) return -1;
        }
        return 1;
    }
    return 0;
}

typedef struct {
    int show_original, tty, json;
} OutCtx;

static void align_out(void *ctx, SaOutKind kind, const char *text, size_t n) {
    OutCtx *o = ctx;
    if (kind == SA_OUT_ANSWER) {
        if (!o->json) write_out(text, n);
        return;
    }
    if (!o->show_original) return;
    if (o->tty && !o->json) { /* dimmed, on its own line, before the correction */
        printf("\n\x1b[2m%.*s\x1b[0m\n", (int)n, text);
        fflush(stdout);
    } else {
        fprintf(stderr, "original: %.*s\n", (int)n, text);
    }
}

/* Read a template given as a built-in name or a file. */
static char *template_arg(const char *flag, const char *v) {
    const char *builtin = sa_aligner_template(v);
    if (builtin) return sa_strdup(builtin);
    size_t len;
    char *t = sa_read_file(v, &len);
    if (!t) {
        sa_err("%s: '%s' is neither a built-in template (stream-gemma, plain, aligner7b) nor a readable file", flag, v);
        return NULL;
    }
    if (sa_template_check(t)) {
        sa_err_prefix("%s: %s: ", flag, v);
        free(t);
        return NULL;
    }
    return t;
}

/* Shared by `align` and `generate --chat`. */
struct AlignOpts {
    CommonOpts co;
    const char *upstream, *aligner, *question, *chat_tmpl;
    char *al_tmpl, *al_mode_tmpl;
    int json, show_original;
    SaAlignParams ap;
};

static int run_align(AlignOpts *o) {
    int rc = 1;
    SaModel up = {0}, al = {0};
    int have_al = 0;
    SaEngine *e = NULL;
    SaAlignTrace tr = {0};
    sa_set_threads(o->co.threads);
    CommonOpts c = o->co;
    c.model = o->upstream;
    if (!o->upstream) {
        sa_err("--upstream: an upstream model is required");
        return die();
    }
    if (o->ap.mode != SA_MODE_NONE && !o->aligner) {
        sa_err("--aligner: an aligner model is required for --mode %s", o->ap.mode == SA_MODE_STREAM ? "stream" : "aligner");
        return die();
    }
    if (load_model(&c, &up)) return die();
    if (o->ap.mode != SA_MODE_NONE) {
        c.model = o->aligner;
        if (load_model(&c, &al)) goto out;
        have_al = 1;
    }
    if (o->chat_tmpl) {
        o->ap.up_tmpl = sa_chat_template(o->chat_tmpl);
        if (!o->ap.up_tmpl) {
            sa_err("--chat-template: unknown template '%s' (known: %s)", o->chat_tmpl, sa_chat_template_names());
            goto out;
        }
    } else {
        o->ap.up_tmpl = sa_chat_detect(up.chat_template);
    }
    if (have_al) {
        if (o->al_tmpl) o->ap.al_tmpl = o->al_tmpl;
        else if (al.aligner_template) o->ap.al_tmpl = al.aligner_template;
        else o->ap.al_tmpl = sa_aligner_template(sa_tok_find(al.tok, "<start_of_turn>") >= 0 ? "stream-gemma" : "plain");
        if (o->al_mode_tmpl) o->ap.al_mode_tmpl = o->al_mode_tmpl;
    }
    if (!(e = sa_engine_new(&up, have_al ? &al : NULL, o->co.n_ctx, o->co.kv_type))) goto out;
    OutCtx oc = {.show_original = o->show_original, .tty = isatty(STDOUT_FILENO), .json = o->json};
    o->ap.out = align_out;
    o->ap.out_ctx = &oc;
    if (sa_align_run(e, o->question, &o->ap, &tr)) goto out;
    if (o->json) {
        char *js = sa_align_trace_json(&tr, o->ap.mode);
        if (js) printf("%s\n", js);
        free(js);
    } else if (oc.tty) {
        printf("\n");
    }
    if (!strcmp(tr.stop, "context full")) fprintf(stderr, "salign: stopped: the context is full (use -c to enlarge it)\n");
    fprintf(stderr, "salign: %d sentence(s), first visible token after %.0f ms, total %.0f ms, stop: %s\n", tr.n_rounds,
            tr.first_visible_ms, tr.total_ms, tr.stop);
    rc = 0;
out:
    if (rc) die();
    sa_align_trace_free(&tr);
    sa_engine_free(e);
    if (have_al) sa_model_free(&al);
    sa_model_free(&up);
    free(o->al_tmpl);
    free(o->al_mode_tmpl);
    return rc;
}

/* generate --chat: the upstream alone through its chat template - exactly align's none mode. */
static int generate_chat(CommonOpts *co, const char *prompt, int n_predict, const SaSamplerParams *sp, const char *tmpl,
                         const char *system) {
    AlignOpts o;
    memset(&o, 0, sizeof o);
    o.co = *co;
    sa_align_default_params(&o.ap);
    o.ap.mode = SA_MODE_NONE;
    o.ap.up_sp = *sp;
    o.ap.max_answer_tokens = n_predict;
    if (system) o.ap.system = system;
    o.upstream = co->model;
    o.question = prompt;
    o.chat_tmpl = tmpl;
    return run_align(&o);
}

static int cmd_align(int argc, char **argv) {
    AlignOpts o;
    memset(&o, 0, sizeof o);
    common_init(&o.co);
    sa_align_default_params(&o.ap);
    o.ap.up_sp.seed = o.ap.al_sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = common_flag(&o.co, argc, argv, &i);
        if (r == 0) r = sampling_flag(&o.ap.up_sp, &o.ap.al_sp, argc, argv, &i);
        if (r < 0) return die();
        if (r) continue;
        if (!strcmp(a, "--upstream")) {
            if (!(o.upstream = flag_value(argc, argv, &i))) return die();
        } else if (!strcmp(a, "--aligner")) {
            if (!(o.aligner = flag_value(argc, argv, &i))) return die();
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(o.question = flag_value(argc, argv, &i))) return die();
        } else if (!strcmp(a, "--mode")) {
            if (!(v = flag_value(argc, argv, &i))) return die();
            if (!strcmp(v, "stream")) o.ap.mode = SA_MODE_STREAM;
            else if (!strcmp(v, "aligner")) o.ap.mode = SA_MODE_ALIGNER;
            else if (!strcmp(v, "none")) o.ap.mode = SA_MODE_NONE;
            else { sa_err("--mode: expected stream, aligner or none, got '%s'", v); return die(); }
        } else if (!strcmp(a, "--system")) {
            if (!(o.ap.system = flag_value(argc, argv, &i))) return die();
        } else if (!strcmp(a, "--chat-template")) {
            if (!(o.chat_tmpl = flag_value(argc, argv, &i))) return die();
        } else if (!strcmp(a, "--aligner-template") || !strcmp(a, "--aligner-mode-template")) {
            if (!(v = flag_value(argc, argv, &i))) return die();
            char *t = template_arg(a, v);
            if (!t) return die();
            char **slot = !strcmp(a, "--aligner-template") ? &o.al_tmpl : &o.al_mode_tmpl;
            free(*slot);
            *slot = t;
        } else if (!strcmp(a, "--splitter")) {
            if (!(v = flag_value(argc, argv, &i))) return die();
            int m = sa_split_mode_from_name(v);
            if (m < 0) { sa_err("--splitter: expected reference or smart, got '%s'", v); return die(); }
            o.ap.split = (SaSplitMode)m;
        } else if (!strcmp(a, "--max-sentences")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_int(a, v, 1, 1 << 20, &o.ap.max_sentences)) return die();
        } else if (!strcmp(a, "--max-tokens")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_int(a, v, 1, INT_MAX, &o.ap.max_tokens)) return die();
            o.ap.max_answer_tokens = o.ap.max_tokens;
        } else if (!strcmp(a, "--max-sentence-tokens")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_int(a, v, 1, 1 << 20, &o.ap.max_sentence_tokens)) return die();
        } else if (!strcmp(a, "--max-correction-tokens")) {
            if (!(v = flag_value(argc, argv, &i)) || parse_int(a, v, 1, 1 << 20, &o.ap.max_correction_tokens)) return die();
        } else if (!strcmp(a, "--show-original")) {
            o.show_original = 1;
        } else if (!strcmp(a, "--no-speculate")) {
            o.ap.speculate = 0;
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else {
            sa_err("%s: unknown flag for 'align' (see salign --help)", a);
            return die();
        }
    }
    if (!o.question) {
        sa_err("-p: a question is required");
        return die();
    }
    return run_align(&o);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: salign COMMAND [flags]\n"
            "  generate -m MODEL [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P]\n"
            "           [--frequency-penalty F] [--seed S] [-t THREADS] [-c CTX] [--kv-type f16|f32] [--mmap] [--ids]\n"
            "           [--chat [--chat-template NAME] [--system S]]\n"
            "  tokenize (-m MODEL | --tokenizer FILE) [--no-bos] [--jsonl] [--special]   text on stdin\n"
            "  info MODEL [--verify]\n"
            "  align --upstream U.salm --aligner A.salm -p QUESTION [--mode stream|aligner|none]\n"
            "        [--system S] [--chat-template NAME] [--aligner-template NAME|FILE] [--splitter reference|smart]\n"
            "        [--max-sentences N] [--max-tokens N] [--max-correction-tokens N] [--show-original] [--json]\n"
            "        [--no-speculate]\n"
            "        [--temp T] [--top-k K] [--top-p P] [--frequency-penalty F] [--seed S] (both models, or\n"
            "        --upstream-temp, --aligner-temp, ... for one) [-t THREADS] [-c CTX]\n");
}

int sa_cmd_bench(int argc, char **argv); /* src/bench.c */

int main(int argc, char **argv) {
    sa_kernels_init();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return sa_cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "align")) return cmd_align(argc - 2, argv + 2);
    sa_err("%s: unknown command (see salign --help)", cmd);
    return die();
}
