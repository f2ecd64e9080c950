/* perplexity.c - `salign perplexity`: perplexity of a text file, and the KL divergence of a model's
 * next-token distributions against a reference run's, measured as llama.cpp's llama-perplexity
 * measures them (its default mode), so the numbers of the two programs can be compared.
 *
 *   salign perplexity -m MODEL -f TEXT [-c 512] [-b N] [--chunks N] [-t T] [--kv-type T]
 *                     [--kl-divergence-base FILE [--kl-divergence]]
 *
 * Method. The file is read whole (one trailing newline dropped) and tokenized as a whole, with
 * BOS in front when the model's tokenizer adds one, and no special-token parsing. The tokens are
 * cut into consecutive windows ("chunks") of -c tokens; a text that gives fewer than 2 windows is
 * refused. Each window is evaluated from an empty cache, with its first token replaced by BOS
 * (when the tokenizer adds one). Only the second half is scored: the logits at positions
 * c/2 .. c-2 predict the window's tokens c/2+1 .. c-1 (c-1-c/2 tokens per window), so every
 * scored token has at least c/2 tokens of context. nll = -log softmax(logits)[next token];
 * PPL = exp(mean nll) after each window ("[1]x,[2]y,..." on stdout), and the final
 * "Final estimate: PPL = x +/- y", where y = PPL * sqrt((mean(nll^2) - mean(nll)^2) / (n-1)).
 *
 * -b is the number of tokens per forward pass (llama.cpp's n_batch, default 2048); a window is
 * one sequence here, so values above -c are capped at -c. Positions before c/2 are evaluated
 * without logits; the last token of a window is never evaluated (nothing scores its prediction).
 *
 * KL divergence (--kl-divergence-base FILE). Without --kl-divergence the run also writes the
 * reference file, in llama.cpp's layout (little-endian):
 *   "_logits_", uint32 n_ctx, int32 n_vocab, int32 n_chunk, int32 tokens[n_chunk * n_ctx],
 *   then for every chunk, for each of its n_ctx-1-n_ctx/2 scored positions, one row of
 *   nv = 2*ceil(n_vocab/2) + 4 uint16: float scale, float min_log_prob (4 uint16), then the
 *   n_vocab log-probabilities as uint16 q with log p = scale*q + min_log_prob (padding 0).
 *   The log-probabilities are kept over a range of at most 16 below the most likely token's:
 *   lo = max(min logit, max logit - 16), scale = (max - lo)/65535, q = round((l - lo)/scale)
 *   (0 at or below lo); min_log_prob = lo - max - log(sum exp(l - max)).
 * With --kl-divergence the tokens come from FILE (-f is optional; when given, its tokens must be
 * FILE's), and the model is compared at every scored position with the reference:
 *   KLD = sum over tokens whose reference log p > -16 of p_ref (log p_ref - log p),
 *   Δp = p(next token) - p_ref(next token), same top = argmax p == argmax p_ref,
 * printed per chunk and summarized at the end as llama-perplexity does (means with their
 * standard errors, KLD and Δp percentiles, ln(PPL ratio) with the covariance of the two nll).
 *
 * stdout carries the results; model loading, sizes and timings go to stderr, and a progress line
 * too when stderr is a terminal. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "common.h"
#include "context.h"
#include "engine_opts.h"
#include "flags.h"
#include "parallel.h"
#include "model.h"
#include "outfile.h"
#include "tokenizer.h"

int sa_cmd_perplexity(int argc, char **argv);

#define KLD_MAGIC "_logits_"
#define LOGP_RANGE 16.0f /* log-probabilities kept below the maximum, as llama.cpp keeps them */

typedef struct {
    const char *model, *text, *base;
    int threads, n_ctx, n_batch, n_chunks, load_mode, kld;
    SaDtype kv_type;
} PplOpts;

/* ---- per-position arithmetic (run on sa_parallel's threads, one unit per scored position) ---- */

typedef struct {
    const float *logits; /* rows of n_vocab */
    int n_vocab;
    const int32_t *next; /* the token each row predicts */
    double *nll;         /* out: -log p(next) */
    uint16_t *rows;      /* reference file rows to fill (nv each), or NULL */
    int nv;
    /* --kl-divergence */
    const uint16_t *base; /* reference rows (nv each) */
    double *nll_base;
    float *kld, *dp;
    uint8_t *same;
} RowJob;

/* max logit, its first index and log(sum exp(l - max)) */
static void row_stats(const float *l, int n, float *max, int *imax, double *lse) {
    float mx = l[0];
    int im = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > mx) mx = l[i], im = i;
    double s = 0;
    for (int i = 0; i < n; i++) s += expf(l[i] - mx);
    *max = mx;
    *imax = im;
    *lse = log(s);
}

static void row_nll(void *ctx, int r, int thread) {
    RowJob *j = ctx;
    const float *l = j->logits + (size_t)r * j->n_vocab;
    float mx;
    int im;
    double lse;
    row_stats(l, j->n_vocab, &mx, &im, &lse);
    j->nll[r] = mx + lse - l[j->next[r]];
    if (!j->rows) return;
    /* the reference row: log-probabilities as 16-bit steps over [lo, max] */
    float lo = l[0];
    for (int i = 1; i < j->n_vocab; i++) lo = fminf(lo, l[i]);
    lo = fmaxf(lo, mx - LOGP_RANGE);
    const float scale = (mx - lo) / 65535.0f, min_logp = (float)(lo - mx - lse);
    uint16_t *q = j->rows + (size_t)r * j->nv;
    memcpy(q, &scale, sizeof scale);
    memcpy(q + 2, &min_logp, sizeof min_logp);
    q += 4;
    memset(q, 0, (size_t)(j->nv - 4) * sizeof *q);
    if (scale > 0) {
        const float inv = 1.0f / scale;
        for (int i = 0; i < j->n_vocab; i++) {
            if (l[i] <= lo) continue;
            long v = lrintf(inv * (l[i] - lo));
            q[i] = (uint16_t)(v > 65535 ? 65535 : v);
        }
    }
}

static void row_kld(void *ctx, int r, int thread) {
    RowJob *j = ctx;
    const int n = j->n_vocab, tok = j->next[r];
    const float *l = j->logits + (size_t)r * n;
    float mx;
    int im;
    double lse;
    row_stats(l, n, &mx, &im, &lse);
    const uint16_t *b = j->base + (size_t)r * j->nv;
    float scale, min_logp;
    memcpy(&scale, b, sizeof scale);
    memcpy(&min_logp, b + 2, sizeof min_logp);
    b += 4;
    const double nll = mx + lse - l[tok];
    const double nll_base = -(scale * b[tok] + min_logp);
    const double norm = mx + lse; /* log p_i = l_i - norm */
    double kld = 0;
    int ib = 0;
    float best = -INFINITY;
    for (int i = 0; i < n; i++) {
        const float lpb = scale * b[i] + min_logp;
        if (lpb > best) best = lpb, ib = i;
        if (lpb > -LOGP_RANGE) kld += expf(lpb) * (lpb - (l[i] - norm));
    }
    j->nll[r] = nll;
    j->nll_base[r] = nll_base;
    j->kld[r] = (float)kld;
    j->dp[r] = (float)(exp(-nll) - exp(-nll_base));
    j->same[r] = im == ib;
}

/* ---- the windows ------------------------------------------------------------------------- */

typedef struct {
    const PplOpts *o;
    SaModel *m;
    SaCtx *ctx;
    int n_ctx, first, n_scored, n_vocab, nv, bos, n_logits;
    int32_t *win;
    double *nll, *nll_base;
    float *kld, *dp;    /* all scored positions (--kl-divergence) */
    uint8_t *same;
    uint16_t *rows;     /* one chunk's reference rows (writing or reading) */
} Run;

/* Evaluate window w (n_ctx tokens), calling fn on the scored rows; results land at row offset
 * `at` of the output arrays, and rows of the reference at rows[0..n_scored). */
static int run_window(Run *R, const int32_t *w, size_t at, SaTaskFn fn) {
    memcpy(R->win, w, (size_t)R->n_ctx * sizeof *R->win);
    if (R->bos >= 0) R->win[0] = R->bos;
    sa_ctx_truncate(R->ctx, 0);
    const int end = R->n_ctx - 1; /* the last token is never evaluated */
    int pos = 0;
    while (pos < end) {
        const int scored = pos >= R->first;
        const int n = scored ? SA_MIN(end - pos, R->n_logits) : SA_MIN(R->first - pos, R->o->n_batch);
        if (sa_ctx_eval(R->ctx, R->win + pos, n, scored)) return -1;
        if (scored) {
            const int r0 = pos - R->first;
            RowJob j = {.logits = sa_ctx_logits(R->ctx, 0), .n_vocab = R->n_vocab, .next = R->win + pos + 1,
                        .nll = R->nll + at + r0, .nv = R->nv};
            if (R->rows && fn == row_nll) j.rows = R->rows + (size_t)r0 * R->nv;
            if (fn == row_kld) {
                j.base = R->rows + (size_t)r0 * R->nv;
                j.nll_base = R->nll_base + at + r0;
                j.kld = R->kld + at + r0;
                j.dp = R->dp + at + r0;
                j.same = R->same + at + r0;
            }
            sa_parallel(sa_get_threads(), n, fn, &j);
        }
        pos += n;
    }
    return 0;
}

/* ---- statistics -------------------------------------------------------------------------- */

typedef struct {
    double mean, err;
} MeanErr;

/* mean of v over n values and its standard error (0 with 10 values or fewer) */
static MeanErr mean_err(double sum, double sum2, size_t n) {
    MeanErr r = {0, 0};
    if (n < 1) return r;
    r.mean = sum / (double)n;
    double var = sum2 / (double)n - r.mean * r.mean;
    r.err = var > 0 && n > 10 ? sqrt(var / (double)(n - 1)) : 0;
    return r;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* linear interpolation between the sorted values around fraction*(n-1) */
static float percentile(const float *v, size_t n, double fraction) {
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    double p = fraction * (double)(n - 1);
    size_t i = (size_t)p;
    p -= (double)i;
    return (float)((1 - p) * v[i] + p * v[SA_MIN(i + 1, n - 1)]);
}

static float median(const float *v, size_t n) { return n % 2 ? v[n / 2] : 0.5f * (v[n / 2] + v[n / 2 - 1]); }

/* ---- progress (stderr, terminal only) ---------------------------------------------------- */

static void progress(int done, int total, double t0, const char *extra) {
    if (!isatty(STDERR_FILENO)) return;
    const double el = (sa_time_ms() - t0) / 1000.0, per = el / done, eta = per * (total - done);
    fprintf(stderr, "\r\033[Ksalign: perplexity: chunk %d/%d, %.2f s per chunk, ETA %d:%02d%s", done, total, per,
            (int)(eta / 60), (int)eta % 60, extra);
    fflush(stderr);
}

static void progress_end(void) {
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[K");
}

/* ---- the reference file ------------------------------------------------------------------ */

typedef struct {
    FILE *f;
    uint32_t n_ctx;
    int32_t n_vocab, n_chunk;
    int32_t *tokens;
} BaseFile;

static int base_open(const char *path, const SaModel *m, BaseFile *b) {
    memset(b, 0, sizeof *b);
    if (!(b->f = fopen(path, "rb"))) return sa_err("--kl-divergence-base: %s: cannot open: %s", path, strerror(errno));
    char magic[8];
    struct stat st;
    if (fread(magic, 1, 8, b->f) != 8 || memcmp(magic, KLD_MAGIC, 8) || fread(&b->n_ctx, 4, 1, b->f) != 1 ||
        fread(&b->n_vocab, 4, 1, b->f) != 1 || fread(&b->n_chunk, 4, 1, b->f) != 1)
        return sa_err("--kl-divergence-base: %s: not a reference log-probability file (made by --kl-divergence-base "
                      "without --kl-divergence)",
                      path);
    if (b->n_ctx < 4 || b->n_ctx > (1u << 22) || b->n_chunk < 1 || b->n_vocab < 1)
        return sa_err("--kl-divergence-base: %s: bad header (n_ctx %u, n_vocab %d, chunks %d)", path, b->n_ctx,
                      b->n_vocab, b->n_chunk);
    if (b->n_vocab != m->hp.n_vocab)
        return sa_err("--kl-divergence-base: %s: made with a vocabulary of %d tokens, this model has %d", path,
                      b->n_vocab, m->hp.n_vocab);
    const uint64_t nv = 2 * (((uint64_t)b->n_vocab + 1) / 2) + 4, n_tok = (uint64_t)b->n_ctx * b->n_chunk;
    const uint64_t want = 20 + 4 * n_tok + (uint64_t)b->n_chunk * (b->n_ctx - 1 - b->n_ctx / 2) * nv * 2;
    if (fstat(fileno(b->f), &st) || (uint64_t)st.st_size != want)
        return sa_err("--kl-divergence-base: %s: %lld bytes, its header says %llu (truncated or not this format)", path,
                      (long long)st.st_size, (unsigned long long)want);
    if (!(b->tokens = sa_malloc(n_tok * sizeof *b->tokens))) return -1;
    if (fread(b->tokens, sizeof *b->tokens, n_tok, b->f) != n_tok)
        return sa_err("--kl-divergence-base: %s: read error", path);
    for (uint64_t i = 0; i < n_tok; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= b->n_vocab)
            return sa_err("--kl-divergence-base: %s: token %lld is %d, outside the vocabulary", path, (long long)i,
                          b->tokens[i]);
    return 0;
}

static void base_close(BaseFile *b) {
    if (b->f) fclose(b->f);
    free(b->tokens);
    memset(b, 0, sizeof *b);
}

/* ---- the command ------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f, "usage: salign perplexity -m MODEL -f TEXT [-c 512] [-b 2048] [--chunks N] [-t THREADS]\n"
               "                         [--kv-type f16|f32|q8_0] [--mmap|--no-hugepages]\n"
               "                         [--kl-divergence-base FILE [--kl-divergence]]\n"
               "  perplexity over windows of -c tokens (the second half of each scored), as llama-perplexity;\n"
               "  --kl-divergence-base FILE alone also saves the run's log-probabilities to FILE;\n"
               "  with --kl-divergence, MODEL is compared with that reference run (tokens from FILE).\n");
}

static int parse(PplOpts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->threads = omp_get_num_procs();
    o->kv_type = SA_F16;
    o->n_batch = 2048;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_runtime_flag(&o->threads, &o->n_ctx, &o->load_mode, &o->kv_type, argc, argv, &i);
        if (r < 0) return -1;
        if (r) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model = sa_flag_value(argc, argv, &i))) return -1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(o->text = sa_flag_value(argc, argv, &i))) return -1;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, 1 << 22, &o->n_batch)) return -1;
        } else if (!strcmp(a, "--chunks")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, INT_MAX, &o->n_chunks)) return -1;
        } else if (!strcmp(a, "--kl-divergence-base")) {
            if (!(o->base = sa_flag_value(argc, argv, &i))) return -1;
        } else if (!strcmp(a, "--kl-divergence")) {
            o->kld = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else {
            return sa_err("%s: unknown flag for 'perplexity' (see salign perplexity --help)", a);
        }
    }
    if (!o->model) return sa_err("-m: a model file is required");
    if (o->kld && !o->base) return sa_err("--kl-divergence: needs --kl-divergence-base FILE (a reference run's output)");
    if (!o->kld && !o->text) return sa_err("-f: a text file is required");
    return 0;
}

/* The text's tokens as llama-perplexity takes them: the whole file minus one trailing newline,
 * BOS first when the tokenizer adds one, no special tokens. */
static int tokenize_text(const char *path, const SaModel *m, int32_t **ids, int *n) {
    size_t len;
    char *text = sa_read_file(path, &len);
    if (!text) return sa_err_prefix("-f: ");
    if (len && text[len - 1] == '\n') len--;
    const SaTokSpec *ts = sa_tok_spec(m->tok);
    int cap = 0;
    *ids = NULL;
    *n = 0;
    int rc = sa_tok_encode(m->tok, text, len, ts->add_bos && ts->bos_id >= 0, 0, ids, n, &cap) < 0 ? -1 : 0;
    free(text);
    if (rc) sa_err_prefix("-f: %s: ", path);
    return rc;
}

static void print_ppl_header(void) {
    printf("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS"
           "            Same top p\n");
}

/* Running sums of --kl-divergence over the first n scored positions. */
typedef struct {
    double nll, nll2, nllb, nllb2, nll_nllb, kld, kld2, dp, dp2, dp4;
    size_t same, n;
} KldSums;

static void kld_add(KldSums *s, const Run *R, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        const double a = R->nll[i], b = R->nll_base[i], k = R->kld[i], d = R->dp[i];
        s->nll += a, s->nll2 += a * a, s->nllb += b, s->nllb2 += b * b, s->nll_nllb += a * b;
        s->kld += k, s->kld2 += k * k, s->dp += d, s->dp2 += d * d, s->dp4 += d * d * d * d;
        s->same += R->same[i];
        s->n++;
    }
}

static double cov(double sa, double sb, double sab, size_t n) {
    if (n < 10) return 0;
    return (sab / (double)n - (sa / (double)n) * (sb / (double)n)) / (double)(n - 1);
}

typedef struct {
    MeanErr lp, lpb, kld, dp2, top;
    double ratio, ratio_err, rms, rms_err, cov;
} KldStats;

static KldStats kld_stats(const KldSums *s) {
    KldStats k;
    k.lp = mean_err(s->nll, s->nll2, s->n);
    k.lpb = mean_err(s->nllb, s->nllb2, s->n);
    k.cov = cov(s->nll, s->nllb, s->nll_nllb, s->n);
    k.ratio = k.lp.mean - k.lpb.mean;
    const double rv = k.lp.err * k.lp.err + k.lpb.err * k.lpb.err - 2 * k.cov;
    k.ratio_err = rv > 0 ? sqrt(rv) : 0;
    k.kld = mean_err(s->kld, s->kld2, s->n);
    k.dp2 = mean_err(s->dp2, s->dp4, s->n);
    k.rms = sqrt(k.dp2.mean);
    k.rms_err = k.rms > 0 ? 0.5 / k.rms * k.dp2.err : 0;
    k.top.mean = s->n ? (double)s->same / (double)s->n : 0;
    k.top.err = s->n > 1 ? sqrt(k.top.mean * (1 - k.top.mean) / (double)(s->n - 1)) : 0;
    return k;
}

static void kld_summary(const KldSums *s, float *kld, float *dp, size_t n) {
    const KldStats k = kld_stats(s);
    const double ppl = exp(k.lp.mean), pplb = exp(k.lpb.mean);
    const double ppl_err = ppl * k.lp.err, pplb_err = pplb * k.lpb.err;
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", ppl, ppl_err);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", pplb, pplb_err);
    const double den = k.lp.err * k.lpb.err;
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", den > 0 ? 100.0 * k.cov / den : 0.0);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", k.ratio, k.ratio_err);
    const double ratio = exp(k.ratio);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", ratio, ratio * k.ratio_err);
    const double dv = ppl_err * ppl_err + pplb_err * pplb_err - 2 * ppl * pplb * k.cov;
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n\n", ppl - pplb, dv > 0 ? sqrt(dv) : 0.0);

    qsort(kld, n, sizeof *kld, cmp_float);
    qsort(dp, n, sizeof *dp, cmp_float);
    static const double kq[] = {0.999, 0.99, 0.95, 0.90};
    static const double kql[] = {0.10, 0.05, 0.01, 0.001};
    printf("====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", k.kld.mean, k.kld.err);
    printf("Maximum KLD: %10.6f\n", kld[n - 1]);
    for (int i = 0; i < 4; i++) printf("%4.1f%%   KLD: %10.6f\n", 100 * kq[i], percentile(kld, n, kq[i]));
    printf("Median  KLD: %10.6f\n", median(kld, n));
    for (int i = 0; i < 4; i++) printf("%4.1f%%   KLD: %10.6f\n", 100 * kql[i], percentile(kld, n, kql[i]));
    printf("Minimum KLD: %10.6f\n\n", kld[0]);

    static const double pq[] = {0.999, 0.99, 0.95, 0.90, 0.75};
    static const double pql[] = {0.25, 0.10, 0.05, 0.01, 0.001};
    const MeanErr d = mean_err(s->dp, s->dp2, s->n);
    printf("====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * d.mean, 100 * d.err);
    printf("Maximum Δp: %6.3f%%\n", 100.0 * dp[n - 1]);
    for (int i = 0; i < 5; i++) printf("%4.1f%%   Δp: %6.3f%%\n", 100 * pq[i], 100.0 * percentile(dp, n, pq[i]));
    printf("Median  Δp: %6.3f%%\n", 100.0 * median(dp, n));
    for (int i = 0; i < 5; i++) printf("%4.1f%%   Δp: %6.3f%%\n", 100 * pql[i], 100.0 * percentile(dp, n, pql[i]));
    printf("Minimum Δp: %6.3f%%\n", 100.0 * dp[0]);
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * k.rms, 100 * k.rms_err);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100 * k.top.mean, 100 * k.top.err);
}

int sa_cmd_perplexity(int argc, char **argv) {
    PplOpts o;
    if (parse(&o, argc, argv)) return sa_die();
    sa_set_threads(o.threads);
    SaModel m;
    if (sa_load_model_logged(o.model, o.load_mode, &m)) return sa_die();
    int rc = 1, n_tok = 0;
    int32_t *tokens = NULL;
    const int32_t *chunk_tokens = NULL;
    BaseFile base = {0};
    SaOutFile out = {.fd = -1};
    Run R = {.o = &o, .m = &m};
    const SaTokSpec *ts = sa_tok_spec(m.tok);
    const char *text_name = o.text;

    if (o.kld) {
        if (base_open(o.base, &m, &base)) goto out;
        if (o.n_ctx && (uint32_t)o.n_ctx != base.n_ctx) {
            sa_err("-c: %s was made with -c %u", o.base, base.n_ctx);
            goto out;
        }
        R.n_ctx = (int)base.n_ctx;
        chunk_tokens = base.tokens;
        if (o.text) {
            if (tokenize_text(o.text, &m, &tokens, &n_tok)) goto out;
            const size_t need = (size_t)base.n_ctx * base.n_chunk;
            if ((size_t)n_tok < need || memcmp(tokens, base.tokens, need * sizeof *tokens)) {
                sa_err("-f: %s does not give the tokens saved in %s (another text or another tokenizer)", o.text, o.base);
                goto out;
            }
        }
        text_name = o.base;
    } else {
        R.n_ctx = o.n_ctx ? o.n_ctx : 512;
        if (R.n_ctx < 4) {
            sa_err("-c: %d is too small (at least 4)", R.n_ctx);
            goto out;
        }
    }
    if (m.hp.n_ctx_train > 0 && R.n_ctx > m.hp.n_ctx_train) {
        sa_err("-c: %d is larger than the model's training context (%d)", R.n_ctx, m.hp.n_ctx_train);
        goto out;
    }
    int n_chunk;
    if (o.kld) {
        n_chunk = base.n_chunk;
    } else {
        if (tokenize_text(o.text, &m, &tokens, &n_tok)) goto out;
        if (n_tok < 2 * R.n_ctx) {
            sa_err("-c: %s gives %d tokens, fewer than the 2 windows of -c %d tokens needed (%d); use a smaller -c or "
                   "a longer text",
                   o.text, n_tok, R.n_ctx, 2 * R.n_ctx);
            goto out;
        }
        n_chunk = n_tok / R.n_ctx;
        chunk_tokens = tokens;
    }
    if (o.n_chunks > 0 && o.n_chunks < n_chunk) n_chunk = o.n_chunks;

    R.first = R.n_ctx / 2;
    R.n_scored = R.n_ctx - 1 - R.first;
    R.n_vocab = m.hp.n_vocab;
    R.nv = 2 * ((R.n_vocab + 1) / 2) + 4;
    R.bos = ts->add_bos && ts->bos_id >= 0 ? ts->bos_id : -1;
    const int n_batch = SA_MIN(o.n_batch, R.n_ctx);
    R.n_logits = SA_MIN(n_batch, R.n_scored);
    SaCtxParams cp;
    sa_ctx_default_params(&m, &cp);
    cp.n_ctx = R.n_ctx;
    cp.n_batch = n_batch;
    cp.n_logits = R.n_logits;
    cp.kv_type = o.kv_type;
    if (!(R.ctx = sa_ctx_new(&m, &cp))) goto out;
    const size_t n_all = (size_t)n_chunk * R.n_scored;
    R.win = sa_malloc((size_t)R.n_ctx * sizeof *R.win);
    R.nll = sa_malloc(n_all * sizeof *R.nll);
    if (!R.win || !R.nll) goto out;
    if (o.base) {
        R.rows = sa_malloc((size_t)R.n_scored * R.nv * sizeof *R.rows);
        if (!R.rows) goto out;
    }
    if (o.kld) {
        R.nll_base = sa_malloc(n_all * sizeof *R.nll_base);
        R.kld = sa_malloc(n_all * sizeof *R.kld);
        R.dp = sa_malloc(n_all * sizeof *R.dp);
        R.same = sa_malloc(n_all);
        if (!R.nll_base || !R.kld || !R.dp || !R.same) goto out;
    } else if (o.base) {
        /* written whole or not at all (temporary file, renamed at the end); never over an input */
        const char *const inputs[] = {o.model, o.text, NULL};
        if (sa_outfile_open(&out, o.base, inputs)) {
            sa_err_prefix("--kl-divergence-base: ");
            goto out;
        }
        char head[20];
        const uint32_t c = (uint32_t)R.n_ctx;
        const int32_t nvoc = R.n_vocab, nch = n_chunk;
        memcpy(head, KLD_MAGIC, 8);
        memcpy(head + 8, &c, 4);
        memcpy(head + 12, &nvoc, 4);
        memcpy(head + 16, &nch, 4);
        if (sa_write_all(out.fd, head, sizeof head, o.base) ||
            sa_write_all(out.fd, tokens, (size_t)n_chunk * R.n_ctx * sizeof *tokens, o.base)) {
            sa_err_prefix("--kl-divergence-base: ");
            goto out;
        }
    }

    fprintf(stderr,
            "salign: perplexity: %s: %d chunks of %d tokens (%d scored each), %d tokens per pass, %d threads%s%s\n",
            text_name, n_chunk, R.n_ctx, R.n_scored, n_batch, sa_get_threads(), o.base && !o.kld ? ", saving to " : "",
            o.base && !o.kld ? o.base : "");
    /* values go to stdout per chunk; when stdout and stderr are both terminals they wait for the
       end, so the progress line does not overwrite them */
    const int defer = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
    SaBuf line = {0};
    KldSums sums = {0};
    double nll = 0, nll2 = 0;
    size_t count = 0;
    const double t0 = sa_time_ms();
    if (o.kld) {
        print_ppl_header();
        fflush(stdout);
    }
    for (int c = 0; c < n_chunk; c++) {
        const size_t at = (size_t)c * R.n_scored;
        if (o.kld && fread(R.rows, sizeof *R.rows, (size_t)R.n_scored * R.nv, base.f) != (size_t)R.n_scored * R.nv) {
            sa_err("--kl-divergence-base: %s: read error in chunk %d", o.base, c + 1);
            goto out_line;
        }
        if (run_window(&R, chunk_tokens + (size_t)c * R.n_ctx, at, o.kld ? row_kld : row_nll)) goto out_line;
        char extra[64] = "";
        if (o.kld) {
            kld_add(&sums, &R, at, at + R.n_scored);
            const KldStats k = kld_stats(&sums);
            const double ppl = exp(k.lp.mean);
            progress_end();
            printf("%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
                   c + 1, ppl, ppl * k.lp.err, k.ratio, k.ratio_err, k.kld.mean, k.kld.err, 100 * k.rms, 100 * k.rms_err,
                   100 * k.top.mean, 100 * k.top.err);
            fflush(stdout);
        } else {
            for (size_t i = at; i < at + R.n_scored; i++) nll += R.nll[i], nll2 += R.nll[i] * R.nll[i];
            count += R.n_scored;
            const double ppl = exp(nll / (double)count);
            if (out.fd >= 0 && sa_write_all(out.fd, R.rows, (size_t)R.n_scored * R.nv * sizeof *R.rows, o.base)) {
                sa_err_prefix("--kl-divergence-base: ");
                goto out_line;
            }
            if (defer) {
                if (sa_buf_printf(&line, "[%d]%.4f,", c + 1, ppl)) goto out_line;
                snprintf(extra, sizeof extra, ", PPL %.4f", ppl);
            } else {
                printf("[%d]%.4f,", c + 1, ppl);
                fflush(stdout);
            }
        }
        progress(c + 1, n_chunk, t0, extra);
    }
    progress_end();
    const double t1 = sa_time_ms();
    if (o.kld) {
        printf("\n");
        if (sums.n >= 100) kld_summary(&sums, R.kld, R.dp, sums.n);
        else printf("(%zu scored tokens: too few for the statistics, which need 100)\n", sums.n);
    } else {
        if (defer && line.len) fwrite(line.data, 1, line.len, stdout);
        printf("\n");
        const double mean = nll / (double)count, ppl = exp(mean);
        const double var = nll2 / (double)count - mean * mean;
        printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, var > 0 && count > 1 ? ppl * sqrt(var / (double)(count - 1)) : 0.0);
        if (out.fd >= 0 && sa_outfile_commit(&out)) {
            sa_err_prefix("--kl-divergence-base: ");
            goto out_line;
        }
    }
    fflush(stdout);
    fprintf(stderr, "salign: perplexity: %d chunks in %.2f s (%.1f tokens/s evaluated)\n", n_chunk, (t1 - t0) / 1000.0,
            (double)n_chunk * (R.n_ctx - 1) * 1000.0 / (t1 - t0 + 1e-9));
    rc = 0;
out_line:
    progress_end();
    sa_buf_free(&line);
out:
    sa_outfile_abort(&out); /* after a commit: nothing left to do */
    base_close(&base);
    free(tokens);
    free(R.win);
    free(R.nll);
    free(R.nll_base);
    free(R.kld);
    free(R.dp);
    free(R.same);
    free(R.rows);
    sa_ctx_free(R.ctx);
    sa_model_free(&m);
    return rc ? sa_die() : 0;
}
