/* bench_align.c - salign bench-align: what the aligned answer costs against the upstream's answer alone.
 *
 *   salign bench-align --upstream UP --aligner AL [-n SENTENCES] [--sentence-tokens N] [--edit-every N]
 *                      [-p QUESTION] [-r REPS] [-t THREADS] [-c N] [--kv-type T] [--json]
 *
 * Random-weight models of real shapes (tools/bench/bench.sh makes an 8B-shaped Q4_0 upstream and a
 * 1B-shaped aligner) have the cost of the real ones but write nothing sentence-like, so both models'
 * tokens are forced (generate.h's SaGenForceFn; the forward passes and the sampler run in full):
 *   - the upstream writes the same sentence of whole words ending in '.', about --sentence-tokens
 *     tokens long, -n times, then its end-of-sequence token;
 *   - copy: the aligner's rewrite is its draft (the upstream's sentence in the aligner's vocabulary,
 *     verified by copy-speculation), then end-of-sequence;
 *   - edit: the same with every --edit-every-th draft token replaced (5: 20% edited), so
 *     speculation is rejected there and the upstream re-reads the changed tail of its prefix.
 * The unaligned answer is the upstream alone (mode none) writing the same -n sentences. Each
 * repetition runs the three cases in turn (pairing them in time: these machines drift by 10-20%
 * over minutes); the table gives per case the median wall time, its ratio to the unaligned answer
 * (median of the per-repetition ratios), the time to the first visible answer byte and the token
 * evaluations of each model. */
#include "bench_align.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../simd/kernels.h"
#include "common.h"
#include "engine_opts.h"
#include "flags.h"
#include "parallel.h"

/* plain lowercase words (nothing a splitter could take for a boundary) */
static const char *const words[] = {"The",   "small",    "river", "carries", "water", "past",   "the",    "old",
                                    "mill",  "and",      "on",    "through", "green", "fields", "where",  "children",
                                    "play",  "every",    "long",  "summer",  "day",   "while",  "their",  "parents",
                                    "work",  "nearby",   "in",    "town"};

typedef struct {
    SaBenchAlignCase c;
    int32_t *sent; /* the forced sentence, upstream vocabulary */
    int n_sent, cap_sent;
    int sentences, started, edit_every;
    int32_t up_eos, al_eos, repl[2];
} Force;

/* " The small river ... ." with words added until it has at least `want` tokens */
static int build_sentence(const SaTokenizer *tok, int want, Force *f) {
    SaBuf text = {0};
    int rc = -1;
    for (int w = 0; w < 1024 && rc; w++) {
        sa_buf_append(&text, " ", 1);
        sa_buf_append(&text, words[w % SA_ARRAY_LEN(words)], strlen(words[w % SA_ARRAY_LEN(words)]));
        const size_t len = text.len;
        sa_buf_append(&text, ".", 1);
        f->n_sent = 0;
        if (sa_tok_encode(tok, text.data, text.len, 0, 0, &f->sent, &f->n_sent, &f->cap_sent) < 0) break;
        text.len = len;
        /* SentencePiece's dummy prefix makes the leading space a piece of its own ("▁", "▁The"):
         * dropped, or every sentence would start with two spaces */
        SaBuf piece = {0};
        while (f->n_sent > 1 && !sa_tok_decode(tok, f->sent[f->n_sent - 1], f->sent[0], 0, &piece) && piece.len &&
               strspn(piece.data, " ") == piece.len) {
            memmove(f->sent, f->sent + 1, (size_t)--f->n_sent * sizeof *f->sent);
            piece.len = 0;
        }
        sa_buf_free(&piece);
        if (f->n_sent >= want) rc = 0;
    }
    sa_buf_free(&text);
    if (rc && !strcmp(sa_errmsg(), "unknown error")) sa_err("bench-align: could not build a sentence of %d tokens", want);
    return rc;
}

/* the last token of a word's encoding (a leading-space piece in both BPE and SentencePiece) */
static int last_token(const SaTokenizer *tok, const char *word, int32_t *out) {
    int32_t *ids = NULL;
    int n = 0, cap = 0;
    if (sa_tok_encode(tok, word, strlen(word), 0, 0, &ids, &n, &cap) < 0 || n < 1) {
        free(ids);
        return -1;
    }
    *out = ids[n - 1];
    free(ids);
    return 0;
}

static int eos_of(const SaModel *m, const char *role, int32_t *out) {
    *out = sa_tok_spec(m->tok)->eos_id;
    if (*out < 0 || !sa_tok_is_eog(m->tok, *out)) return sa_err("bench-align: the %s model has no end-of-sequence token", role);
    return 0;
}

static int32_t force_up(void *ctx, int n, const int32_t *draft, int n_draft) {
    Force *f = ctx;
    (void)draft;
    (void)n_draft;
    if (f->c == SA_BA_UNALIGNED) return n >= f->sentences * f->n_sent ? f->up_eos : f->sent[n % f->n_sent];
    /* stream mode: one generation per sentence, whose token n_sent is the look-ahead the splitter
     * needs (the next sentence's first token, rolled back by the loop) */
    if (n == 0 && ++f->started > f->sentences) return f->up_eos;
    return f->sent[n % f->n_sent];
}

static int32_t force_al(void *ctx, int n, const int32_t *draft, int n_draft) {
    Force *f = ctx;
    if (n >= n_draft) return f->al_eos;
    if (f->c == SA_BA_EDIT && n % f->edit_every == f->edit_every / 2) return draft[n] == f->repl[0] ? f->repl[1] : f->repl[0];
    return draft[n];
}

int sa_bench_align_sentence_tokens(const SaModel *up, const SaBenchAlignShape *sh) {
    Force f = {0};
    const int rc = build_sentence(up->tok, sh->sentence_tokens, &f);
    free(f.sent);
    return rc ? -1 : f.n_sent;
}

int sa_bench_align_run(SaEngine *e, const SaModel *up, const SaModel *al, const SaAlignParams *base,
                       const SaBenchAlignShape *sh, SaBenchAlignCase c, const char *question, SaAlignTrace *tr) {
    memset(tr, 0, sizeof *tr);
    if (c != SA_BA_UNALIGNED && !al) return sa_err("bench-align: the aligned cases need an aligner model");
    Force f = {.c = c, .sentences = sh->sentences, .edit_every = SA_MAX(1, sh->edit_every)};
    int rc = -1;
    if (build_sentence(up->tok, sh->sentence_tokens, &f) || eos_of(up, "upstream", &f.up_eos)) goto out;
    if (c != SA_BA_UNALIGNED &&
        (eos_of(al, "aligner", &f.al_eos) || last_token(al->tok, " big", &f.repl[0]) || last_token(al->tok, " small", &f.repl[1])))
        goto out;
    SaAlignParams p = *base;
    p.mode = c == SA_BA_UNALIGNED ? SA_MODE_NONE : SA_MODE_STREAM;
    p.up_force = force_up;
    p.al_force = force_al;
    p.force_ctx = &f;
    p.speculate = 1;              /* the copy is verified against the draft, as in use */
    p.max_sentences = sh->sentences + 1; /* the last round only reads the upstream's end-of-sequence */
    p.max_tokens = 0;
    p.max_sentence_tokens = f.n_sent + 8;
    p.max_answer_tokens = sh->sentences * f.n_sent + 1;
    p.max_correction_tokens = 0;
    p.cancel = NULL;
    p.out = NULL;
    p.on_round = NULL;
    sa_engine_reset(e);
    rc = sa_align_run(e, question, &p, tr);
out:
    free(f.sent);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------ */

int sa_cmd_bench_align(int argc, char **argv);

typedef struct {
    double ms[64], first[64];
    long long up_evals, al_evals;
    int drafted, accepted, rounds;
} CaseStats;

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[64];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void collect(const SaAlignTrace *tr, CaseStats *cs, int rep) {
    cs->ms[rep] = tr->total_ms;
    cs->first[rep] = tr->first_visible_ms;
    cs->up_evals = cs->al_evals = 0;
    cs->drafted = cs->accepted = 0;
    for (int i = 0; i < tr->n_rounds; i++) {
        const SaRoundTrace *r = &tr->rounds[i];
        cs->up_evals += r->up_evaluated + r->up_gen_evaluated;
        cs->al_evals += r->al_evaluated + r->al_gen_evaluated;
        cs->drafted += r->al_drafted;
        cs->accepted += r->al_accepted;
    }
    cs->rounds = tr->n_rounds;
}

int sa_cmd_bench_align(int argc, char **argv) {
    SaEngineOpts o;
    sa_engine_opts_init(&o);
    SaBenchAlignShape sh = {.sentences = 4, .sentence_tokens = 25, .edit_every = 5};
    const char *question = "Explain how a bicycle stays upright while it moves.";
    int reps = 3, json = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_runtime_flag(&o.threads, &o.n_ctx, &o.load_mode, &o.kv_type, argc, argv, &i);
        if (r < 0) goto bad;
        if (r) continue;
        if (!strcmp(a, "--upstream")) {
            if (!(o.upstream = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "--aligner")) {
            if (!(o.aligner = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(question = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "-n")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, 64, &sh.sentences)) goto bad;
        } else if (!strcmp(a, "--sentence-tokens")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 2, 200, &sh.sentence_tokens)) goto bad;
        } else if (!strcmp(a, "--edit-every")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 2, 100, &sh.edit_every)) goto bad;
        } else if (!strcmp(a, "-r")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, 64, &reps)) goto bad;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            sa_err("%s: unknown flag for 'bench-align' (usage: bench-align --upstream UP --aligner AL [-n SENTENCES] "
                   "[--sentence-tokens N] [--edit-every N] [-p QUESTION] [-r REPS] [-t THREADS] [-c N] [--json])", a);
            goto bad;
        }
    }
    /* the answer and both prompts: a few hundred positions; the models' defaults would allocate
     * thousands (an 8B KV cache of 4096 positions is 512 MiB) */
    if (o.n_ctx <= 0) o.n_ctx = SA_MAX(512, 2 * sh.sentences * (sh.sentence_tokens + 8) + 256);
    SaEngineSet set;
    if (sa_engine_set_open(&o, 1, &set)) goto bad;
    const SaModel *al = set.shared ? &set.up : &set.al;
    static const char *const names[] = {"unaligned (upstream alone)", "aligned, aligner copies", "aligned, aligner edits"};
    CaseStats cs[3];
    memset(cs, 0, sizeof cs);
    double ratio[2][64];
    int rc = 1;
    const int n_sent = sa_bench_align_sentence_tokens(&set.up, &sh);
    SaAlignTrace tr;
    /* warm-up (thread start, page faults of the scratch buffers): one short aligned answer */
    SaBenchAlignShape warm = sh;
    warm.sentences = 1;
    if (n_sent < 0 || sa_bench_align_run(set.e, &set.up, al, &set.ap, &warm, SA_BA_COPY, question, &tr)) goto out;
    sa_align_trace_free(&tr);
    for (int rep = 0; rep < reps; rep++) {
        for (int c = 0; c < 3; c++) {
            if (sa_bench_align_run(set.e, &set.up, al, &set.ap, &sh, (SaBenchAlignCase)c, question, &tr)) goto out;
            collect(&tr, &cs[c], rep);
            const int want_rounds = c == SA_BA_UNALIGNED ? 1 : sh.sentences;
            if (tr.n_rounds != want_rounds) {
                sa_align_trace_free(&tr);
                sa_err("bench-align: %s: %d rounds instead of %d (the forced sentences did not split as built)", names[c],
                       cs[c].rounds, want_rounds);
                goto out;
            }
            sa_align_trace_free(&tr);
        }
        ratio[0][rep] = cs[1].ms[rep] / cs[0].ms[rep];
        ratio[1][rep] = cs[2].ms[rep] / cs[0].ms[rep];
    }
    if (json) {
        printf("{\"upstream\":\"%s\",\"aligner\":\"%s\",\"sentences\":%d,\"sentence_tokens\":%d,\"edit_every\":%d,\"reps\":%d,"
               "\"threads\":%d,\"kernels\":\"%s\"",
               o.upstream, o.aligner, sh.sentences, n_sent, sh.edit_every, reps, sa_get_threads(), sa_k->name);
        static const char *const keys[] = {"unaligned", "copy", "edit"};
        for (int c = 0; c < 3; c++)
            printf(",\"%s\":{\"ms\":%.1f,\"first_visible_ms\":%.1f,\"upstream_evals\":%lld,\"aligner_evals\":%lld,"
                   "\"drafted\":%d,\"accepted\":%d,\"ratio\":%.4f}",
                   keys[c], median(cs[c].ms, reps), median(cs[c].first, reps), cs[c].up_evals, cs[c].al_evals,
                   cs[c].drafted, cs[c].accepted, c ? median(ratio[c - 1], reps) : 1.0);
        printf("}\n");
    } else {
        printf("| answer | wall ms | / unaligned | first visible ms | upstream token evals | aligner token evals | "
               "aligner accepted/drafted |\n|---|---|---|---|---|---|---|\n");
        for (int c = 0; c < 3; c++) {
            char rr[48] = "1.00x";
            if (c) {
                double lo = ratio[c - 1][0], hi = lo;
                for (int r = 1; r < reps; r++) lo = SA_MIN(lo, ratio[c - 1][r]), hi = SA_MAX(hi, ratio[c - 1][r]);
                if (reps > 1) snprintf(rr, sizeof rr, "%.2fx [%.2f-%.2f]", median(ratio[c - 1], reps), lo, hi);
                else snprintf(rr, sizeof rr, "%.2fx", median(ratio[c - 1], reps));
            }
            printf("| %s | %.0f | %s | %.0f | %lld | %lld | ", names[c], median(cs[c].ms, reps), rr, median(cs[c].first, reps),
                   cs[c].up_evals, cs[c].al_evals);
            if (c) printf("%d/%d |\n", cs[c].accepted, cs[c].drafted);
            else printf("- |\n");
        }
        printf("%d sentences of %d upstream tokens; medians of %d paired repetitions (ratio: per repetition, median "
               "[range]); %d threads, kernels %s\n",
               sh.sentences, n_sent, reps, sa_get_threads(), sa_k->name);
    }
    rc = 0;
out:
    if (rc) sa_die();
    sa_engine_set_close(&set);
    sa_engine_opts_free(&o);
    return rc;
bad:
    sa_engine_opts_free(&o);
    return sa_die();
}
