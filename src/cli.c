/* cli.c - the salign command line: one binary, subcommands.
 *
 *   salign generate -m MODEL [-p PROMPT] [-n N] [sampling flags] [-t THREADS] [-c CTX] [--ids]
 *   salign tokenize (-m MODEL | --tokenizer FILE) [--no-bos] [--jsonl] [--special]
 *   salign info MODEL [--verify] [--kernels SPEC]
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
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "../simd/kernels.h"
#include "aligner.h"
#include "annotator.h"
#include "chat.h"
#include "common.h"
#include "context.h"
#include "engine_opts.h"
#include "flags.h"
#include "eval.h"
#include "gguf.h"
#include "judge.h"
#include "mathcheck.h"
#include "kselect.h"
#include "parallel.h"
#include "model.h"
#include "report.h"
#include "sampler.h"
#include "tokenizer.h"

typedef struct {
    const char *model;
    int threads;
    int n_ctx;
    int load_mode;
    SaDtype kv_type;
} CommonOpts;

/* Flags shared by the model-running subcommands. Returns 1 if argv[*i] was one, 0 if not,
 * -1 on a bad value. */
static int common_flag(CommonOpts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        o->model = v;
    } else {
        return sa_runtime_flag(&o->threads, &o->n_ctx, &o->load_mode, &o->kv_type, argc, argv, i);
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
    return sa_load_model_logged(o->model, o->load_mode, m);
}

int sa_cmd_bench_spec(int argc, char **argv); /* bench_spec.c */
int sa_cmd_bench_align(int argc, char **argv); /* bench_align.c */
static int generate_chat(CommonOpts *co, const char *prompt, int n_predict, const SaSamplerParams *sp, const char *tmpl,
                         const char *system);

/* ---- generate -------------------------------------------------------------------------- */

/* The streamed answer goes to stdout piece by piece; out_mid_line says its last byte was not a
 * newline. Before anything is said on stderr the line is ended (end_out_line) when the two streams
 * land in one place - a terminal, or one file or pipe as with `2>&1` - so the stderr line starts on
 * its own line; a stdout of its own keeps the model's bytes exactly. */
static int out_mid_line;

static int write_out(const char *p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) return sa_err("stdout: write failed");
    if (n) out_mid_line = p[n - 1] != '\n';
    fflush(stdout);
    return 0;
}

static int out_shares_stderr(void) {
    if (isatty(STDOUT_FILENO)) return 1;
    struct stat a, b;
    return fstat(STDOUT_FILENO, &a) == 0 && fstat(STDERR_FILENO, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void end_out_line(void) {
    if (out_mid_line && out_shares_stderr()) {
        putchar('\n');
        fflush(stdout);
    }
    out_mid_line = 0;
}

/* generate's output: each token's text (or id) as it comes. */
typedef struct {
    int print_ids, failed;
    SaBuf *text;
} GenOut;

static int generate_token(void *ctx, int32_t id, const char *piece, size_t n, int n_gen) {
    GenOut *g = ctx;
    if (g->print_ids) {
        printf(n_gen > 1 ? " %d" : "%d", id);
        fflush(stdout);
        return 0;
    }
    if (write_out(piece, n)) {
        g->failed = 1;
        return 1;
    }
    sa_buf_append(g->text, piece, n);
    return 0;
}

/* generate without --chat: BOS + the prompt as plain text, continued token by token. */
static int generate_plain(const CommonOpts *co, const char *prompt, int n_predict, int print_ids, int llamacpp_compat,
                          const SaSamplerParams *sp_in) {
    const SaSamplerParams sp = *sp_in;
    sa_set_threads(co->threads);
    SaModel m;
    if (load_model(co, &m)) return sa_die();
    sa_warn_ctx_beyond_training(&m, co->model, co->n_ctx);
    int rc = 1;
    SaCtx *ctx = NULL;
    SaSampler smp = {0};
    int32_t *ids = NULL;
    int n_ids = 0, cap = 0;
    SaBuf text = {0};
    const SaTokSpec *ts = sa_tok_spec(m.tok);

    SaCtxParams cp;
    sa_ctx_default_params(&m, &cp);
    if (co->n_ctx) cp.n_ctx = co->n_ctx;
    cp.kv_type = co->kv_type;
    if (llamacpp_compat) cp.llamacpp_compat = 1;
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
    sa_buf_append(&text, prompt, strlen(prompt));
    if (sp.temp > 0) fprintf(stderr, "salign: seed %llu\n", (unsigned long long)sp.seed); /* to repeat the run */
    double t0 = sa_time_ms();
    if (sa_ctx_prompt(ctx, ids, n_ids)) goto out;
    double t1 = sa_time_ms();
    /* the engine's token loop; at most what the context can still hold (-n -1 asks for "all") */
    GenOut go = {.print_ids = print_ids, .text = &text};
    SaGenParams gp = {.cap = (int)SA_MIN((long)n_predict, (long)cp.n_ctx - n_ids + 1), .on_token = generate_token, .token_ctx = &go};
    SaGenStats st;
    if (sa_gen(ctx, &smp, m.tok, &gp, &st) || go.failed) goto out;
    const int n_gen = st.n;
    /* stopped for want of room: the loop's own status, or the cap that room set */
    if (st.status == SA_GEN_CONTEXT_FULL || (st.status == SA_GEN_MAX_TOKENS && n_gen < n_predict)) {
        end_out_line();
        fprintf(stderr, "salign: context full (%d tokens): stopping\n", cp.n_ctx);
    }
    double t2 = sa_time_ms();
    if (print_ids) printf("\n");
    else end_out_line();
    /* the prompt too: the model continues it, so its last sentence may be the one cut short */
    if (!print_ids && n_gen == n_predict && n_gen > 0 &&
        sa_sentence_unfinished(text.data ? text.data : "", text.len, SA_SPLIT_REFERENCE))
        fprintf(stderr, "salign: stopped at -n %d in the middle of a sentence\n", n_predict);
    fprintf(stderr, "salign: prompt %d tokens in %.1f ms (%.1f t/s), generated %d tokens in %.1f ms (%.1f t/s)\n", n_ids,
            t1 - t0, n_ids * 1000.0 / (t1 - t0 + 1e-9), n_gen, t2 - t1, n_gen * 1000.0 / (t2 - t1 + 1e-9));
    rc = 0;
out:
    if (rc) sa_die();
    free(ids);
    sa_buf_free(&text);
    sa_sampler_free(&smp);
    sa_ctx_free(ctx);
    sa_model_free(&m);
    return rc;
}

static int cmd_generate(int argc, char **argv) {
    CommonOpts co;
    common_init(&co);
    const char *prompt_flag = NULL, *prompt_val = NULL, *chat_tmpl = NULL, *system = NULL;
    int n_predict = 256, print_ids = 0, chat = 0, llamacpp_compat = 0;
    SaSamplerParams sp = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .freq_penalty = 0.0f};
    sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = common_flag(&co, argc, argv, &i);
        if (r < 0) return sa_die();
        if (r) continue;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(v = sa_flag_value(argc, argv, &i))) return sa_die();
            prompt_flag = a; /* read once the flags are all valid */
            prompt_val = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, -1, INT_MAX, &n_predict)) return sa_die();
            if (n_predict < 0) n_predict = INT_MAX; /* -1: until end of turn or a full context, as llama.cpp */
        } else if (!strcmp(a, "--temp")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_float(a, v, 0, 100, &sp.temp)) return sa_die();
        } else if (!strcmp(a, "--top-k")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 0, INT_MAX, &sp.top_k)) return sa_die();
        } else if (!strcmp(a, "--top-p")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_float(a, v, 0, 1, &sp.top_p)) return sa_die();
        } else if (!strcmp(a, "--frequency-penalty")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_float(a, v, -10, 10, &sp.freq_penalty)) return sa_die();
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_float(a, v, 0, 10, &sp.repeat_penalty)) return sa_die();
        } else if (!strcmp(a, "--presence-penalty")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_float(a, v, -10, 10, &sp.presence_penalty)) return sa_die();
        } else if (!strcmp(a, "--min-p")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_float(a, v, 0, 1, &sp.min_p)) return sa_die();
        } else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_u64(a, v, &sp.seed)) return sa_die();
        } else if (!strcmp(a, "--ids")) {
            print_ids = 1;
        } else if (!strcmp(a, "--llamacpp-compat")) {
            llamacpp_compat = 1;
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--chat-template")) {
            if (!(chat_tmpl = sa_flag_value(argc, argv, &i))) return sa_die();
        } else if (!strcmp(a, "--system")) {
            if (!(system = sa_flag_value(argc, argv, &i))) return sa_die();
        } else {
            sa_err("%s: unknown flag for 'generate' (see salign --help)", a);
            return sa_die();
        }
    }
    if (chat) {
        if (print_ids || llamacpp_compat) {
            sa_err("%s: not available with --chat%s", print_ids ? "--ids" : "--llamacpp-compat",
                   print_ids ? "" : " (the environment variable SALIGN_LLAMACPP_COMPAT=1 is)");
            return sa_die();
        }
    } else if (chat_tmpl || system) {
        sa_err("%s: only with --chat", chat_tmpl ? "--chat-template" : "--system");
        return sa_die();
    }
    char *prompt = prompt_flag ? sa_flag_text(prompt_flag, prompt_val, prompt_flag[1] == 'f' || !strcmp(prompt_flag, "--file"))
                               : sa_strdup("");
    if (!prompt) return sa_die();
    const int rc = chat ? generate_chat(&co, prompt, n_predict, &sp, chat_tmpl, system)
                        : generate_plain(&co, prompt, n_predict, print_ids, llamacpp_compat, &sp);
    free(prompt);
    return rc;
}

/* ---- tokenize -------------------------------------------------------------------------- */

/* Load a tokenizer from a .salm, a GGUF (vocab-only is fine), a llama2.c tokenizer.bin, or an HF
 * tokenizer.json (named *.json or starting with '{'; tokenizer_config.json beside it is read too). */
/* llama2.c checkpoints start with 7 int32s: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
 * (negative: unshared classifier), seq_len; a tokenizer.bin with its max token length and a float. */
static int looks_like_llama2c_checkpoint(const char *path) {
    int32_t h[7];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const int got = fread(h, sizeof h, 1, f) == 1;
    fclose(f);
    if (!got) return 0;
    const int32_t vocab = h[5] < 0 ? -h[5] : h[5];
    for (int i = 0; i < 7; i++)
        if ((i == 5 ? vocab : h[i]) <= 0 || (i == 5 ? vocab : h[i]) > (1 << 20)) return 0;
    return h[0] % h[3] == 0 && h[3] % h[4] == 0;
}

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
        if (rc && looks_like_llama2c_checkpoint(path))
            sa_err("%s: a llama2.c model checkpoint, not a tokenizer: give its tokenizer.bin, or convert the model: "
                   "salign-quantize %s OUT.salm --type q8_0 --tokenizer tokenizer.bin", path, path);
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
            if (!(v = sa_flag_value(argc, argv, &i))) return sa_die();
            model = v;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!(v = sa_flag_value(argc, argv, &i))) return sa_die();
            tokfile = v;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else {
            sa_err("%s: unknown flag for 'tokenize'", a);
            return sa_die();
        }
    }
    if (!!model == !!tokfile) {
        sa_err("tokenize: give exactly one of -m MODEL or --tokenizer FILE");
        return sa_die();
    }
    SaTokenizer *tok = load_tokenizer_file(model ? model : tokfile);
    if (!tok) return sa_die();
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
    if (rc) sa_die();
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
        else if (!strcmp(argv[i], "--kernels")) {
            if (i + 1 == argc) return sa_err("--kernels: missing value"), sa_die();
            if (sa_kselect_flag(argv[++i])) return sa_die();
        } else if (argv[i][0] == '-') {
            sa_err("%s: unknown flag for 'info'", argv[i]);
            return sa_die();
        } else if (path) {
            sa_err("%s: info takes one model file", argv[i]);
            return sa_die();
        } else path = argv[i];
    }
    if (!path) {
        sa_err("info: a model file is required");
        return sa_die();
    }
    SaModel m;
    /* checked while loading: a GGUF's in-memory image is repacked for the kernels right after */
    SaLoadOpts lo = {.load_mode = SA_LOAD_MMAP, .verify = verify};
    if (sa_model_load(&m, path, &lo)) return sa_die();
    const SaHparams *h = &m.hp;
    const SaTokSpec *ts = sa_tok_spec(m.tok);
    if (m.file.converted)
        printf("file:          %s (GGUF, converted in memory to a .salm v%d image of %zu bytes)\n", path, SALM_VERSION,
               m.file.size);
    else
        printf("file:          %s (.salm v%d, %zu bytes)\n", path, SALM_VERSION, m.file.size);
    printf("architecture:  %s\n", sa_arch_name(h->arch));
    printf("n_vocab %d, n_embd %d, n_layer %d, n_head %d, n_head_kv %d, head_dim %d, n_ff %d, n_ctx_train %d\n",
           h->n_vocab, h->n_embd, h->n_layer, h->n_head, h->n_head_kv, h->head_dim, h->n_ff, h->n_ctx_train);
    printf("norm_eps %g, rope_theta %g, rope pairing %s, activation %s, tied output %s, qkv bias %s\n", h->norm_eps,
           h->rope_theta, h->rope_pairing == SA_ROPE_HALF ? "half-split" : "adjacent",
           h->act == SA_ACT_GELU_TANH ? "gelu-tanh" : "silu", h->tied_output ? "yes" : "no", h->qkv_bias ? "yes" : "no");
    if (h->score_head)
        printf("score model:   a one-output score head (score.weight%s) instead of the output matrix: scores, no logits\n",
               h->score_bias ? " + score.bias" : "");
    if (h->rope_scaling) printf("rope scaling %d factor %g\n", (int)h->rope_scaling, h->rope_factor);
    if (h->embd_scale || h->attn_softcap || h->final_softcap || h->sliding_window || h->query_scale)
        printf("embd_scale %g, attn_softcap %g, final_softcap %g, sliding_window %d, query_scale %g\n", h->embd_scale,
               h->attn_softcap, h->final_softcap, h->sliding_window, h->query_scale);
    printf("tokenizer:     %s, %d tokens, bos %d, eos %d, eot %d, unk %d, add_bos %d, add_space_prefix %d%s%s\n",
           ts->model == SA_TOK_BPE ? "bpe" : "spm", ts->n_vocab, ts->bos_id, ts->eos_id, ts->eot_id, ts->unk_id,
           ts->add_bos, ts->add_space_prefix, ts->pre ? ", pre " : "", ts->pre ? ts->pre : "");
    printf("chat template: %s\n", m.chat_template ? "yes" : "none");
    if (m.aligner_template) printf("aligner template: %s\n", sa_annotator_is(m.aligner_template) ? "annotator (an instruct model through the reference's annotator prompt)" : "yes");
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
    if (verify) printf("verify:        all %d tensor checksums match\n", m.file.n_tensors);
    sa_kselect_print(stdout, &m);
    sa_model_free(&m);
    return 0;
}


/* ---- align ----------------------------------------------------------------------------- */

typedef struct {
    int show_original, show_reasoning, tty, json;
} OutCtx;

static void align_out(void *ctx, SaOutKind kind, const char *text, size_t n) {
    OutCtx *o = ctx;
    if (kind == SA_OUT_ANSWER) {
        if (!o->json) write_out(text, n);
        return;
    }
    if (kind == SA_OUT_REASONING) { /* the annotator's thinking: never on stdout, which holds the answer */
        if (!o->show_reasoning) return;
        fflush(stdout);
        if (isatty(STDERR_FILENO)) fprintf(stderr, "\x1b[2m%.*s\x1b[0m", (int)n, text);
        else fwrite(text, 1, n, stderr);
        fflush(stderr);
        return;
    }
    if (!o->show_original) return;
    if (o->tty && !o->json) { /* dimmed, on its own line, before the correction */
        printf("\n\x1b[2m%.*s\x1b[0m\n", (int)n, text);
        fflush(stdout);
    } else {
        end_out_line();
        fprintf(stderr, "original: %.*s\n", (int)n, text);
    }
}

/* Run one question through the engine (align, and generate --chat as align's none mode). cap_flag:
 * the flag that set the token cap, for the message when the answer was cut mid-sentence. */
static int run_align(SaEngineOpts *o, const char *question, int json, int show_original, int show_reasoning,
                     const char *cap_flag) {
    SaEngineSet set;
    SaAlignTrace tr = {0};
    int rc = 1;
    if (sa_engine_set_open(o, o->ap.mode != SA_MODE_NONE, &set)) {
        sa_engine_opts_free(o);
        return sa_die();
    }
    /* a sampled run can only be repeated with its seeds: say them (also in --json) */
    const int al_samples = o->ap.mode != SA_MODE_NONE && o->ap.al_sp.temp > 0;
    if (o->ap.up_sp.temp > 0 || al_samples) {
        fprintf(stderr, "salign: seed: upstream %llu", (unsigned long long)o->ap.up_sp.seed);
        if (o->ap.mode != SA_MODE_NONE) fprintf(stderr, ", aligner %llu", (unsigned long long)o->ap.al_sp.seed);
        fprintf(stderr, "\n");
    }
    OutCtx oc = {.show_original = show_original, .show_reasoning = show_reasoning, .tty = isatty(STDOUT_FILENO), .json = json};
    SaAlignParams ap = set.ap;
    ap.out = align_out;
    ap.out_ctx = &oc;
    if (sa_align_run(set.e, question, &ap, &tr)) goto out;
    if (json) {
        char *js = sa_align_trace_json(&tr, o->ap.mode);
        if (js) printf("%s\n", js);
        free(js);
    }
    end_out_line();
    if (tr.stop_reason == SA_STOP_CONTEXT_FULL) fprintf(stderr, "salign: stopped: the context is full (use -c to enlarge it)\n");
    int cut = 0;
    for (int r = 0; r < tr.n_rounds; r++) cut += tr.rounds[r].al_truncated;
    if (cut)
        fprintf(stderr, "salign: %d correction(s) cut at the token cap (--max-correction-tokens %d%s)\n", cut,
                o->ap.max_correction_tokens,
                o->ap.max_correction_tokens > 0       ? ""
                : sa_annotator_is(set.ap.al_tmpl) ? ": 4 x the sentence + 256"
                                                      : ": twice the sentence + 32");
    /* the annotator kind's sentences that did not get a clean correction, by status */
    int n_status[5] = {0};
    for (int r = 0; r < tr.n_rounds; r++)
        if (tr.rounds[r].annotated && (unsigned)tr.rounds[r].al_status < 5) n_status[tr.rounds[r].al_status]++;
    for (int k = SA_ANN_KEPT; k <= SA_ANN_UNCLOSED; k++)
        if (n_status[k])
            fprintf(stderr, "salign: %d sentence(s) %s: %s\n", n_status[k], sa_ann_status_name((SaAnnStatus)k),
                    k == SA_ANN_KEPT    ? "no CORRECTION: [[...]] before the aligner stopped, the original is kept"
                    : k == SA_ANN_EMPTY ? "an empty correction, the original is kept"
                    : k == SA_ANN_MULTI ? "the correction's first sentence is kept"
                                        : "no closing ]], what the aligner wrote is kept");
    if (tr.unfinished)
        fprintf(stderr, "salign: stopped at %s %d in the middle of a sentence\n", cap_flag,
                o->ap.mode == SA_MODE_STREAM ? o->ap.max_tokens : o->ap.max_answer_tokens);
    fprintf(stderr, "salign: %d sentence(s), first visible token after %.0f ms, total %.0f ms, stop: %s\n", tr.n_rounds,
            tr.first_visible_ms, tr.total_ms, tr.stop);
    rc = 0;
out:
    if (rc) sa_die();
    sa_align_trace_free(&tr);
    sa_engine_set_close(&set);
    sa_engine_opts_free(o);
    return rc;
}

/* generate --chat: the upstream alone through its chat template - exactly align's none mode. */
static int generate_chat(CommonOpts *co, const char *prompt, int n_predict, const SaSamplerParams *sp, const char *tmpl,
                         const char *system) {
    SaEngineOpts o;
    sa_engine_opts_init(&o);
    o.threads = co->threads;
    o.n_ctx = co->n_ctx;
    o.load_mode = co->load_mode;
    o.kv_type = co->kv_type;
    o.upstream = co->model;
    o.chat_tmpl = tmpl;
    if (tmpl && !sa_chat_template(tmpl)) {
        sa_err("--chat-template: unknown template '%s' (known: %s)", tmpl, sa_chat_template_names());
        return sa_die();
    }
    o.ap.mode = SA_MODE_NONE;
    o.ap.up_sp = *sp;
    o.ap.max_answer_tokens = n_predict;
    if (system) o.ap.system = system;
    if (!co->model) {
        sa_err("-m: a model file is required");
        return sa_die();
    }
    return run_align(&o, prompt, 0, 0, 0, "-n");
}

static int cmd_align(int argc, char **argv) {
    SaEngineOpts o;
    sa_engine_opts_init(&o);
    /* unseeded runs are seeded from the clock; --seed / --upstream-seed / --aligner-seed fix them */
    o.ap.up_sp.seed = o.ap.al_sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    const char *question = NULL, *question_flag = NULL;
    int json = 0, show_original = 0, show_reasoning = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_engine_opts_flag(&o, argc, argv, &i);
        if (r < 0) goto bad;
        if (r) continue;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(question = sa_flag_value(argc, argv, &i))) goto bad;
            question_flag = a; /* read once the flags are all valid */
        } else if (!strcmp(a, "--mode")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_mode_flag(v, &o.ap.mode)) goto bad;
        } else if (!strcmp(a, "--show-original")) {
            show_original = 1;
        } else if (!strcmp(a, "--show-reasoning")) {
            show_reasoning = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            sa_err("%s: unknown flag for 'align' (see salign --help)", a);
            goto bad;
        }
    }
    if (!question) {
        sa_err("-p: a question is required (-p TEXT, -p - for standard input, or -f FILE)");
        goto bad;
    }
    char *text = sa_flag_text(question_flag, question, question_flag[1] == 'f' || !strcmp(question_flag, "--file"));
    if (!text) goto bad;
    if (!text[strspn(text, " \t\r\n")]) { /* as eval refuses an empty question */
        sa_err("%s: the question is empty", question_flag);
        free(text);
        goto bad;
    }
    const int rc = run_align(&o, text, json, show_original, show_reasoning, "--max-tokens");
    free(text);
    return rc;
bad:
    sa_engine_opts_free(&o);
    return sa_die();
}

/* ---- main ------------------------------------------------------------------------------ */

static const char usage_text[] =
            "usage: salign COMMAND [flags]\n"
            "  generate -m|--model MODEL [-p|--prompt PROMPT|-p -|-f|--file FILE] [-n|--n-predict N|-1] [--temp T]\n"
            "           [--top-k K] [--top-p P]\n"
            "           [--frequency-penalty F] [--repeat-penalty R] [--presence-penalty P] [--min-p M] [--seed|-s S] [-t THREADS] [-c CTX] [--kv-type f16|f32|q8_0] [--mmap|--no-hugepages] [--ids]\n"
            "           [--llamacpp-compat]   (verification: llama.cpp's x86 CPU arithmetic bit for bit)\n"
            "           [--chat [--chat-template NAME] [--system S]]\n"
            "  tokenize (-m MODEL | --tokenizer FILE) [--no-bos] [--jsonl] [--special]   text on stdin\n"
            "  info MODEL [--verify] [--kernels SPEC]   (SPEC: auto, calibrate, a table, or [decode:|prefill:]OP=TABLE,...\n"
            "       and prefetch=BYTES; info lists the kernel ops a run of MODEL uses, which table serves each and\n"
            "       the decode prefetch distance)\n"
            "  align --upstream U --aligner A (-p QUESTION|-p -|-f FILE) [--mode stream|aligner|none]\n"
            "        [--system S] [--chat-template NAME] [--aligner-template NAME|FILE] [--splitter reference|smart]\n"
            "        [--max-sentences N] [--max-tokens N] [--max-correction-tokens N] [--show-original] [--json]\n"
            "        [--max-sentence-tokens N] [--aligner-mode-template NAME|FILE] [--no-speculate]\n"
            "        [--aligner-template annotator [--aligner-chat-template NAME] [--aligner-system FILE]\n"
            "         [--aligner-user FILE] [--ignore-aligner-eos] [--show-reasoning]]   any instruct model as the aligner\n"
            "        [--temp T] [--top-k K] [--top-p P] [--min-p M] [--frequency-penalty F] [--presence-penalty P]\n"
            "        [--repeat-penalty R] [--seed|-s S] (both models, or\n"
            "        --upstream-temp, --aligner-temp, ... for one) [-t THREADS] [-c CTX] [--kv-type f16|f32|q8_0]\n"
            "  serve --upstream U [--aligner A] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--queue 8]\n"
            "        [--mode stream|aligner|none] [--timeout 10] [--body-limit KIB] [align's engine and sampling flags]\n"
            "        OpenAI-compatible HTTP API (POST /v1/chat/completions, /v1/completions; GET /v1/models,\n"
            "        /health) and a chat page at /\n"
            "  chat --upstream U [--aligner A] [--mode stream|aligner|none] [--show-original] [--show-reasoning]\n"
            "       [align's engine and sampling flags]   interactive: /mode M, /original on|off, /reset, /quit;\n"
            "       Ctrl-C stops an answer\n"
            "  eval --upstream U --aligner A --in DATA.jsonl[.gz] --out RESULTS.jsonl [--modes none,aligner,stream]\n"
            "       [--field NAME] [--shard I/N] [--limit N] [--no-resume] [align's engine and sampling flags]\n"
            "  eval-merge OUT.jsonl SHARD.jsonl... [--in DATA.jsonl] [--modes LIST] [--force]\n"
            "  report RESULTS.jsonl [--judged JUDGED.jsonl] [-o FILE] [--format html|md]\n"
            "  math-check < PAIRS.jsonl   ({\"answer\", \"solution\"} per line -> {\"correct\", ...} per line)\n"
            "  judge --judge J --in RESULTS.jsonl --out JUDGED.jsonl --tasks safety,utility[,math] [--pairs stream:none,...]\n"
            "        [--swap] [--verdict-only] [--shard I/N] [--no-resume] [-t N] [-c N] [--temp T] ... (salign judge --help)\n"
            "  bench -m MODEL [-p|--n-prompt 512] [-n|--n-gen 128] [-t 1,2] [-r|--repetitions 3] [-b|--batch-size 512]\n"
            "        [--kv-type f16|f32|q8_0] [--kernels SPEC] [--mmap|--no-hugepages] [--no-verify] [--cpu-time] [--json|-o json]   speed\n"
            "        | bench --int8-peak [-t 1,2] [--json]   the kernel table's int8 multiply-add peak (prefill's roof)\n"
            "  bench-spec -m MODEL [-n TOKENS] [-r REPS] [-t THREADS] [--kv-type T] [--json]   copy-speculation speed-up\n"
            "  bench-align --upstream UP --aligner AL [-n SENTENCES] [--sentence-tokens 25] [--edit-every 5] [-p QUESTION]\n"
            "        [-r REPS] [-t THREADS] [-c N] [--json]   the aligned answer's time / the unaligned one's (forced tokens)\n"
            "  perplexity -m MODEL -f TEXT [-c 512] [-b N] [--chunks N] [-t T] [--kl-divergence-base FILE [--kl-divergence]]\n"
            "MODEL, U and A: a .salm (salign-quantize), or a GGUF, converted in memory at each start.\n"
            "Each command also takes --help (or: salign help COMMAND); salign --version.\n";

static void usage(FILE *f) { fputs(usage_text, f); }

/* COMMAND's block of the usage text: its line and the continuation lines below it. */
static int usage_of(const char *cmd) {
    char head[64];
    snprintf(head, sizeof head, "\n  %s ", cmd);
    const char *p = strstr(usage_text, head);
    if (!p) return 0;
    p++;
    const char *e = p;
    do e = strchr(e, '\n') + 1;
    while (!strncmp(e, "    ", 4) || (e[0] == ' ' && e[1] == ' ' && e[2] == ' '));
    printf("usage: salign%.*s", (int)(e - p - 1), p + 1);
    if (!strcmp(cmd, "generate") || !strcmp(cmd, "align") || !strcmp(cmd, "bench-spec") || !strcmp(cmd, "bench-align"))
        fputs("MODEL: a .salm or a GGUF; also: -t/--threads N, -c/--ctx-size N, --mmap, --no-hugepages, --no-verify,\n"
              "--kernels SPEC (which table serves each kernel op: auto, calibrate, TABLE, OP=TABLE, prefetch=BYTES; see\n"
              "salign info).\n",
              stdout);
    return 1;
}

static int version(void) {
    printf("salign %s\nbuilt with compiler %s, %s; kernel tables on this CPU:", SALIGN_VERSION, __VERSION__,
#ifdef SALIGN_BLAS
           "OpenBLAS"
#else
           "no BLAS"
#endif
    );
    const SaKernels *t[8];
    const int n = sa_kernels_available(t, 8);
    for (int i = 0; i < n; i++) printf(" %s", t[i]->name);
    printf(" (in use: %s)\n", sa_k->name);
    return 0;
}

int sa_cmd_bench(int argc, char **argv); /* src/bench.c */
int sa_cmd_perplexity(int argc, char **argv); /* src/perplexity.c */
int sa_cmd_serve(int argc, char **argv);      /* src/serve.c */
int sa_cmd_chat(int argc, char **argv);       /* src/chat_cli.c */

/* The commands without a --help of their own answer it (and -h) with their usage block. */
static int dispatch(const char *cmd, int argc, char **argv) {
    static const char *plain[] = {"generate", "tokenize", "info", "align", "bench", "bench-spec", "bench-align", "serve", "chat"};
    for (size_t k = 0; k < SA_ARRAY_LEN(plain); k++)
        if (!strcmp(cmd, plain[k]))
            for (int i = 0; i < argc; i++)
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage_of(cmd) ? 0 : 1;
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "bench")) return sa_cmd_bench(argc, argv);
    if (!strcmp(cmd, "align")) return cmd_align(argc, argv);
    if (!strcmp(cmd, "bench-spec")) return sa_cmd_bench_spec(argc, argv);
    if (!strcmp(cmd, "bench-align")) return sa_cmd_bench_align(argc, argv);
    if (!strcmp(cmd, "eval")) return sa_cmd_eval(argc, argv);
    if (!strcmp(cmd, "eval-merge")) return sa_cmd_eval_merge(argc, argv);
    if (!strcmp(cmd, "report")) return sa_cmd_report(argc, argv);
    if (!strcmp(cmd, "math-check")) return sa_cmd_math_check(argc, argv);
    if (!strcmp(cmd, "judge")) return sa_cmd_judge(argc, argv);
    if (!strcmp(cmd, "perplexity")) return sa_cmd_perplexity(argc, argv);
    if (!strcmp(cmd, "serve")) return sa_cmd_serve(argc, argv);
    if (!strcmp(cmd, "chat")) return sa_cmd_chat(argc, argv);
    sa_err("%s: unknown command (see salign --help)", cmd);
    return sa_die();
}

int main(int argc, char **argv) {
    sa_blas_process_init(argv);
    sa_kernels_init();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version")) return version();
    if (!strcmp(argv[1], "help")) { /* salign help COMMAND = salign COMMAND --help */
        if (argc != 3) {
            usage(stdout);
            return argc == 2 ? 0 : 1;
        }
        char *help[] = {(char *)"--help", NULL};
        return dispatch(argv[2], 1, help);
    }
    return dispatch(argv[1], argc - 2, argv + 2);
}
