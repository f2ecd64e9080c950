/* bench.c - `salign bench`: prompt-processing and generation speed, in llama-bench's terms.
 *
 *   salign bench -m MODEL [-m MODEL2 ...] [-p 512] [-n 128] [-t 1,2] [-r 3] [-b 512] [--mmap|--no-hugepages]
 *                [--kv-type f16|f32|q8_0] [--kernels SPEC] [--cpu-time] [--json]
 *   salign bench --int8-peak [-t 1,2] [--json]
 *
 * -p, -n, -t and -b take comma-separated lists; every combination is run. As in llama-bench:
 * "ppN" evaluates N random tokens from an empty cache as batches of -b tokens (t/s = N / time);
 * "tgN" evaluates N random tokens one at a time from an empty cache (t/s = N / time); each test
 * runs once unmeasured (warm-up), then -r times; t/s is the mean over the repetitions ± their
 * sample standard deviation. The table goes to stdout (or one JSON array with --json); loading
 * messages go to stderr. --json adds "macs_per_token": the weight multiply-adds of one token's
 * transformer blocks (the output matrix runs for the last token of a batch only), so prefill t/s
 * can be set against the int8 peak.
 *
 * --cpu-time: t/s by the process's CPU time instead of wall time. With one thread that is the speed
 * while the thread runs: A/B comparisons of kernels on a machine shared with other work (the memory
 * bandwidth stays shared). With more threads the pool's spinning counts too: not meaningful.
 *
 * --int8-peak (no model): the int8 multiply-add peak of the kernel table in use (simd/peak.c), per
 * thread count: every thread runs the table's dot-product instruction on independent registers
 * for about 0.1 s; best of 5, by CPU time (and by wall time). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../simd/kernels.h"
#include "../simd/peak.h"
#include "common.h"
#include "context.h"
#include "engine_opts.h"
#include "kselect.h"
#include "parallel.h"
#include "model.h"

int sa_cmd_bench(int argc, char **argv);

#define MAX_LIST 16
#define MAX_MODELS 8

typedef struct {
    int v[MAX_LIST];
    int n;
} IntList;

static int parse_list(const char *flag, const char *s, int lo, int hi, IntList *out) {
    out->n = 0;
    if (!s || !*s) return sa_err("%s: missing value", flag);
    const char *p = s;
    while (*p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < lo || x > hi || (*end && *end != ',') || out->n == MAX_LIST)
            return sa_err("%s: expected a comma-separated list of integers in [%d, %d], got '%s'", flag, lo, hi, s);
        out->v[out->n++] = (int)x;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Model description like llama-bench's "llama 1B Q4_0": architecture, size class from the
 * parameter count, and the dtype holding most of the matrix bytes. */
static void describe(const SaModel *m, char *name, size_t cap, double *params, double *bytes, double *macs) {
    uint64_t by_type[SA_DTYPE_COUNT] = {0};
    double p = 0, b = 0, mm = 0;
    for (int i = 0; i < m->file.n_tensors; i++) {
        const SalmTensor *t = &m->file.tensors[i];
        double ne = 1;
        for (int d = 0; d < t->n_dims; d++) ne *= (double)t->ne[d];
        p += ne;
        b += (double)t->nbytes;
        if (t->n_dims == 2) by_type[t->dtype] += t->nbytes;
        if (t->n_dims == 2 && !strncmp(t->name, "blk.", 4)) mm += ne;
    }
    *macs = mm;
    int best = 0;
    for (int d = 1; d < SA_DTYPE_COUNT; d++)
        if (by_type[d] > by_type[best]) best = d;
    char size[32];
    if (p >= 1e9) snprintf(size, sizeof size, "%.0fB", p / 1e9);
    else if (p >= 1e6) snprintf(size, sizeof size, "%.0fM", p / 1e6);
    else snprintf(size, sizeof size, "%.0fK", p / 1e3);
    char dt[16];
    snprintf(dt, sizeof dt, "%s", sa_dtype_name((SaDtype)best));
    for (char *c = dt; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    snprintf(name, cap, "%s %s %s", sa_arch_name(m->hp.arch), size, dt);
    *params = p;
    *bytes = b;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static int rand_token(int n_vocab) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (int)(g_rng % (uint64_t)n_vocab);
}

static int g_cpu_time; /* --cpu-time: runs timed by the process's CPU time */

static double process_cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* One measured run; returns seconds (wall, or CPU with --cpu-time) or < 0 on error. */
static double run_test(SaCtx *c, const SaModel *m, int n_prompt, int n_gen, int n_batch) {
    sa_ctx_truncate(c, 0);
    int32_t *toks = malloc((size_t)SA_MAX(n_prompt, 1) * sizeof *toks);
    if (!toks) return -1;
    for (int i = 0; i < n_prompt; i++) toks[i] = rand_token(m->hp.n_vocab);
    const double t0 = g_cpu_time ? process_cpu_ms() : sa_time_ms();
    int rc = 0;
    for (int i = 0; i < n_prompt && !rc; i += n_batch) rc = sa_ctx_eval(c, toks + i, SA_MIN(n_batch, n_prompt - i), 0);
    for (int i = 0; i < n_gen && !rc; i++) {
        int32_t t = rand_token(m->hp.n_vocab);
        rc = sa_ctx_eval(c, &t, 1, 0);
    }
    const double dt = ((g_cpu_time ? process_cpu_ms() : sa_time_ms()) - t0) / 1000.0;
    free(toks);
    return rc ? -1 : dt;
}

typedef struct {
    char model[64];
    double size, params, macs;
    int threads, n_prompt, n_gen;
    double mean, sd;
    double samples[64];
    int n_samples;
} Result;

static void print_header(void) {
    printf("| %-22s | %10s | %8s | %-12s | %7s | %8s | %16s |\n", "model", "size", "params", "backend", "threads", "test",
           "t/s");
    printf("| %.*s | %.*s: | %.*s: | %.*s | %.*s: | %.*s: | %.*s: |\n", 22, "------------------------------", 9,
           "----------", 7, "--------", 12, "------------", 6, "-------", 7, "--------", 15, "----------------");
}

static void print_row(const Result *r) {
    char size[32], params[32], test[32], ts[48], backend[32];
    snprintf(size, sizeof size, "%.2f %s", r->size >= 1073741824.0 ? r->size / 1073741824.0 : r->size / 1048576.0,
             r->size >= 1073741824.0 ? "GiB" : "MiB");
    if (r->params >= 1e9) snprintf(params, sizeof params, "%.2f B", r->params / 1e9);
    else snprintf(params, sizeof params, "%.2f M", r->params / 1e6);
    if (r->n_prompt && r->n_gen) snprintf(test, sizeof test, "pp%d+tg%d", r->n_prompt, r->n_gen);
    else if (r->n_prompt) snprintf(test, sizeof test, "pp%d", r->n_prompt);
    else snprintf(test, sizeof test, "tg%d", r->n_gen);
    snprintf(ts, sizeof ts, "%.2f ± %.2f", r->mean, r->sd);
    snprintf(backend, sizeof backend, "CPU %s", sa_k->name);
    printf("| %-22s | %10s | %8s | %-12s | %7d | %8s | %16s |\n", r->model, size, params, backend, r->threads, test, ts);
    fflush(stdout);
}

static SaDtype g_kv_type = SA_F16; /* --kv-type: the KV cache of every test */

static void print_json(const Result *rs, int n) {
    printf("[\n");
    for (int i = 0; i < n; i++) {
        const Result *r = &rs[i];
        printf("  {\"model\": \"%s\", \"size\": %.0f, \"params\": %.0f, \"backend\": \"CPU\", \"isa\": \"%s\", "
               "\"type_kv\": \"%s\", \"threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"avg_ts\": %.4f, \"stddev_ts\": %.4f, "
               "\"macs_per_token\": %.0f, \"samples_ts\": [",
               r->model, r->size, r->params, sa_k->name, sa_dtype_name(g_kv_type), r->threads, r->n_prompt, r->n_gen,
               r->mean, r->sd, r->macs);
        for (int s = 0; s < r->n_samples; s++) printf("%s%.4f", s ? ", " : "", r->samples[s]);
        printf("]}%s\n", i + 1 < n ? "," : "");
    }
    printf("]\n");
}

/* --int8-peak: GMAC/s of the table's int8 instruction with 1..n threads (see simd/peak.h). By each
 * thread's CPU time: on a shared machine the wall time mostly measures the other processes; the CPU
 * time still includes what a busy sibling hyperthread takes from the core. */
static int int8_peak(const IntList *th, int json) {
    /* a table composed op by op is named "base+other": the base table's instruction */
    char table[32];
    snprintf(table, sizeof table, "%.*s", (int)strcspn(sa_k->name, "+"), sa_k->name);
    const char *what = sa_i8_peak_what(table);
    if (!what) return sa_err("--int8-peak: the %s kernel table has no int8 multiply-add instruction", table);
    int sink = 0;
    /* iterations for ~0.1 s on one thread, from a short calibration run */
    long iters = 1 << 16;
    for (;;) {
        const double t0 = sa_time_ms();
        sa_i8_peak_run(table, iters, &sink);
        const double ms = sa_time_ms() - t0;
        if (ms > 20 || iters > (1L << 30)) {
            iters = (long)(iters * (100.0 / SA_MAX(ms, 1e-3)));
            break;
        }
        iters *= 4;
    }
    if (json) printf("[\n");
    for (int ti = 0; ti < th->n; ti++) {
        const int n = th->v[ti];
        double best = 0, best_wall = 0;
        for (int rep = 0; rep < 5; rep++) {
            long long macs = 0;
            double rate = 0; /* sum over threads of multiply-adds / that thread's CPU time */
            const double t0 = sa_time_ms();
#pragma omp parallel num_threads(n) reduction(+ : macs, rate)
            {
                int s;
                const double c0 = sa_thread_cpu_ms();
                const long long m = sa_i8_peak_run(table, iters, &s);
                rate += m / ((sa_thread_cpu_ms() - c0) * 1e6);
                macs += m;
#pragma omp atomic
                sink ^= s;
            }
            best_wall = SA_MAX(best_wall, macs / ((sa_time_ms() - t0) * 1e6));
            best = SA_MAX(best, rate);
        }
        if (json)
            printf("  {\"isa\": \"%s\", \"instruction\": \"%s\", \"threads\": %d, \"gmacs\": %.1f, \"gmacs_wall\": %.1f, "
                   "\"sink\": %d}%s\n",
                   table, what, n, best, best_wall, sink & 1, ti + 1 < th->n ? "," : "");
        else
            printf("int8 peak, %s table (%s): %d thread%s %.1f GMAC/s = %.2f TOPS by CPU time (%.1f GMAC/s by wall time); best of 5\n",
                   table, what, n, n > 1 ? "s" : "", best, 2 * best / 1000, best_wall);
    }
    if (json) printf("]\n");
    return 0;
}

static int usage_error(void) {
    fprintf(stderr, "salign: %s\n", sa_errmsg());
    return 1;
}

int sa_cmd_bench(int argc, char **argv) {
    const char *models[MAX_MODELS];
    int n_models = 0, reps = 3, json = 0, load_mode = 0, peak = 0;
    IntList pp = {{512}, 1}, tg = {{128}, 1}, th = {{1, 2}, 2}, nb = {{512}, 1};
    g_kv_type = SA_F16;
    g_cpu_time = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!v) return sa_err("%s: missing value", a), usage_error();
            if (n_models == MAX_MODELS) return sa_err("-m: at most %d models", MAX_MODELS), usage_error();
            models[n_models++] = v;
            i++;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (parse_list(a, v, 0, 1 << 16, &pp)) return usage_error();
            i++;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (parse_list(a, v, 0, 1 << 16, &tg)) return usage_error();
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (parse_list(a, v, 1, 1024, &th)) return usage_error();
            i++;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (parse_list(a, v, 1, 1 << 16, &nb)) return usage_error();
            i++;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            IntList r;
            if (parse_list(a, v, 1, 64, &r) || r.n != 1) return sa_err("%s: expected one count in [1, 64]", a), usage_error();
            reps = r.v[0];
            i++;
        } else if (!strcmp(a, "--json") || !strcmp(a, "-o")) {
            if (!strcmp(a, "-o")) {
                if (!v || strcmp(v, "json")) return sa_err("-o: only 'json' is supported"), usage_error();
                i++;
            }
            json = 1;
        } else if (!strcmp(a, "--int8-peak")) {
            peak = 1;
        } else if (!strcmp(a, "--cpu-time")) {
            g_cpu_time = 1;
        } else if (!strcmp(a, "--mmap")) {
            load_mode = SA_LOAD_MMAP;
        } else if (!strcmp(a, "--no-hugepages")) {
            load_mode = SA_LOAD_READ_4K;
        } else if (!strcmp(a, "--no-verify")) {
            sa_model_set_verify_policy(SA_VERIFY_NEVER);
        } else if (!strcmp(a, "--kv-type") || !strcmp(a, "--kernels")) {
            int t0 = 0, c0 = 0, m0 = 0;
            if (sa_runtime_flag(&t0, &c0, &m0, &g_kv_type, argc, argv, &i) < 0) return usage_error();
        } else {
            sa_err("%s: unknown flag for 'bench' (flags: -m -p -n -t -r -b --kv-type --kernels --mmap --no-hugepages --no-verify --json --int8-peak --cpu-time)", a);
            return usage_error();
        }
    }
    if (peak) return int8_peak(&th, json) ? usage_error() : 0;
    if (!n_models) return sa_err("-m: a model file is required"), usage_error();

    Result *res = calloc((size_t)n_models * th.n * nb.n * (pp.n + tg.n), sizeof *res);
    int n_res = 0, rc = 0;
    if (!res) return usage_error();
    for (int mi = 0; mi < n_models && !rc; mi++) {
        SaModel m;
        const double t0 = sa_time_ms();
        SaLoadOpts lo = {.load_mode = load_mode};
        if (sa_model_load(&m, models[mi], &lo)) {
            rc = usage_error();
            break;
        }
        sa_kselect_model(&m);
        fprintf(stderr, "salign bench: loaded %s in %.0f ms, kernels %s, KV cache %s\n", models[mi], sa_time_ms() - t0,
                sa_k->name, sa_dtype_name(g_kv_type));
        sa_kselect_print(stderr, &m);
        if (!json && mi == 0) print_header(); /* not before: a bad first file prints no table */
        char name[64];
        double params, bytes, macs;
        describe(&m, name, sizeof name, &params, &bytes, &macs);
        for (int ti = 0; ti < th.n && !rc; ti++) {
            sa_set_threads(th.v[ti]);
            for (int bi = 0; bi < nb.n && !rc; bi++) {
                /* the prompt tests, then the generation tests, as llama-bench orders them */
                for (int kind = 0; kind < 2 && !rc; kind++) {
                    const IntList *L = kind == 0 ? &pp : &tg;
                    for (int li = 0; li < L->n && !rc; li++) {
                        const int n_prompt = kind == 0 ? L->v[li] : 0, n_gen = kind == 1 ? L->v[li] : 0;
                        if (n_prompt + n_gen == 0) continue;
                        SaCtxParams cp;
                        sa_ctx_default_params(&m, &cp);
                        cp.n_ctx = SA_MAX(n_prompt + n_gen, 16);
                        cp.n_batch = SA_MAX(1, SA_MIN(nb.v[bi], SA_MAX(n_prompt, 1)));
                        cp.n_logits = 1;
                        cp.kv_type = g_kv_type;
                        SaCtx *c = sa_ctx_new(&m, &cp);
                        if (!c) {
                            rc = usage_error();
                            break;
                        }
                        Result *r = &res[n_res++];
                        snprintf(r->model, sizeof r->model, "%s", name);
                        r->size = bytes;
                        r->params = params;
                        r->macs = macs;
                        r->threads = th.v[ti];
                        r->n_prompt = n_prompt;
                        r->n_gen = n_gen;
                        /* warm-up: caches, page faults of the scratch, thread start */
                        if (run_test(c, &m, n_prompt ? SA_MIN(n_prompt, cp.n_batch) : 0, n_gen ? 1 : 0, cp.n_batch) < 0) {
                            sa_ctx_free(c);
                            rc = usage_error();
                            break;
                        }
                        double sum = 0, sq = 0;
                        for (int rep = 0; rep < reps; rep++) {
                            const double s = run_test(c, &m, n_prompt, n_gen, cp.n_batch);
                            if (s < 0) {
                                rc = usage_error();
                                break;
                            }
                            const double tps = (n_prompt + n_gen) / s;
                            r->samples[r->n_samples++] = tps;
                            sum += tps;
                            sq += tps * tps;
                        }
                        sa_ctx_free(c);
                        if (rc) break;
                        r->mean = sum / reps;
                        r->sd = reps > 1 ? sqrt(fmax(0.0, (sq - sum * sum / reps) / (reps - 1))) : 0.0;
                        if (!json) print_row(r);
                    }
                }
            }
        }
        sa_model_free(&m);
    }
    if (!rc && json) print_json(res, n_res);
    free(res);
    return rc;
}
