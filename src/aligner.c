/* aligner.c - the Stream Aligner loop and the none/aligner modes (see aligner.h). */
#include "aligner.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

struct SaEngine {
    const SaModel *up_m, *al_m;
    SaCtx *up, *al;
    SaSampler up_s, al_s;
    int32_t *ids;
    int n_ids, cap_ids;
};

/* Reference schedule: each round the upstream generates up to this many tokens. */
#define REF_MAX_TOKENS 2048

void sa_align_default_params(SaAlignParams *p) {
    memset(p, 0, sizeof *p);
    p->mode = SA_MODE_STREAM;
    /* the reference implementation's sampling for both models */
    p->up_sp = (SaSamplerParams){.temp = 0.7f, .top_k = 40, .top_p = 0.95f, .freq_penalty = 1.2f, .seed = 0};
    p->al_sp = p->up_sp;
    p->system = "You are a helpful assistant.";
    p->up_tmpl = sa_chat_template("plain");
    p->al_tmpl = sa_aligner_template("stream-gemma");
    p->al_mode_tmpl = sa_aligner_template("aligner7b");
    p->split = SA_SPLIT_REFERENCE;
    p->max_sentences = 64;
    p->max_sentence_tokens = 256;
    p->max_answer_tokens = 1024;
    p->speculate = 1;
}

static long long mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

SaEngine *sa_engine_new(const SaModel *up, const SaModel *al, int n_ctx, SaDtype kv_type) {
    SaCtxParams pu, pa;
    sa_ctx_default_params(up, &pu);
    if (n_ctx > 0) pu.n_ctx = n_ctx;
    pu.kv_type = kv_type;
    size_t need = sa_ctx_bytes(up, &pu);
    if (al) {
        sa_ctx_default_params(al, &pa);
        if (n_ctx > 0) pa.n_ctx = n_ctx;
        pa.kv_type = kv_type;
        need += sa_ctx_bytes(al, &pa);
    }
    /* the weights are already in memory; the contexts must fit in what is left */
    long long avail = mem_available();
    if (avail >= 0 && (long long)need > avail) {
        sa_err("the two contexts need %.1f MiB but only %.1f MiB of memory is available (use -c to shrink them)",
               need / 1048576.0, avail / 1048576.0);
        return NULL;
    }
    SaEngine *e = sa_calloc(1, sizeof *e);
    if (!e) return NULL;
    e->up_m = up;
    e->al_m = al;
    if (!(e->up = sa_ctx_new(up, &pu)) || (al && !(e->al = sa_ctx_new(al, &pa)))) {
        sa_engine_free(e);
        return NULL;
    }
    return e;
}

void sa_engine_free(SaEngine *e) {
    if (!e) return;
    sa_ctx_free(e->up);
    sa_ctx_free(e->al);
    sa_sampler_free(&e->up_s);
    sa_sampler_free(&e->al_s);
    free(e->ids);
    free(e);
}

SaCtx *sa_engine_ctx(SaEngine *e, int aligner) { return aligner ? e->al : e->up; }

void sa_align_trace_free(SaAlignTrace *t) {
    for (int i = 0; i < t->n_rounds; i++) {
        free(t->rounds[i].original);
        free(t->rounds[i].correction);
    }
    free(t->rounds);
    free(t->question);
    free(t->answer);
    memset(t, 0, sizeof *t);
}

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct {
    const SaAlignParams *p;
    double t0;
    SaAlignTrace *tr;
} Run;

static void emit(Run *r, SaOutKind kind, const char *s, size_t n) {
    if (!n) return;
    if (kind == SA_OUT_ANSWER && r->tr->first_visible_ms < 0) r->tr->first_visible_ms = sa_time_ms() - r->t0;
    if (r->p->out) r->p->out(r->p->out_ctx, kind, s, n);
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Streams a model's output trimmed: leading whitespace dropped, trailing whitespace held back
 * until something follows it; `sep` is emitted before the first visible byte. */
typedef struct {
    Run *run;
    SaBuf all;     /* everything decoded */
    size_t shown;  /* bytes of `all` already emitted (or skipped as leading whitespace) */
    int started;
    const char *sep;
    int quiet;     /* collect only (the aligner mode's upstream answer is not shown as it is written) */
} Trim;

static void trim_push(Trim *t, const char *s, size_t n) {
    sa_buf_append(&t->all, s, n);
    if (t->quiet) return;
    size_t end = t->all.len;
    while (end > t->shown && is_ws(t->all.data[end - 1])) end--; /* hold trailing whitespace */
    if (!t->started) {
        while (t->shown < end && is_ws(t->all.data[t->shown])) t->shown++;
        if (t->shown == end) return;
        t->started = 1;
        if (t->sep && *t->sep) emit(t->run, SA_OUT_ANSWER, t->sep, strlen(t->sep));
    }
    emit(t->run, SA_OUT_ANSWER, t->all.data + t->shown, end - t->shown);
    t->shown = end;
}

/* The trimmed text (malloc'd). */
static char *trim_result(const Trim *t) {
    size_t a = 0, b = t->all.len;
    while (a < b && is_ws(t->all.data[a])) a++;
    while (b > a && is_ws(t->all.data[b - 1])) b--;
    return sa_strndup(t->all.data ? t->all.data + a : "", b - a);
}

/* Evaluate a prompt with prefix reuse; report what was evaluated and reused. */
/* prompt_eval's results: 0, PROMPT_FULL (the prompt does not fit: the stream loop ends the answer
 * there once it has one), or -1 (an error). Both nonzero results leave a message. */
enum { PROMPT_FULL = 1 };

static int prompt_eval(SaCtx *c, const int32_t *ids, int n, int *evaluated, int *reused) {
    const SaKv *kv = sa_ctx_kv(c);
    const uint64_t e0 = kv->n_evaluated, r0 = kv->n_reused;
    if (n >= sa_ctx_n_ctx(c)) {
        sa_err("context full: the prompt has %d tokens, the context %d (use -c to enlarge it)", n, sa_ctx_n_ctx(c));
        return PROMPT_FULL;
    }
    if (sa_ctx_prompt(c, ids, n)) return -1;
    *evaluated = (int)(kv->n_evaluated - e0);
    *reused = (int)(kv->n_reused - r0);
    return 0;
}

static int render_tokens(SaEngine *e, const SaTokenizer *tok, SaPrompt *pr) {
    e->n_ids = 0;
    int rc = sa_prompt_tokenize(pr, tok, &e->ids, &e->n_ids, &e->cap_ids);
    sa_prompt_free(pr);
    return rc;
}

/* Token generation after a prompt, with optional copy-speculation.
 *
 * Invariant: sa_ctx_logits(c, -1) are the next-token logits of the last token in the cache.
 * Plain decoding samples one token from them, emits it and evaluates it. With a draft (the
 * upstream's sentence in the aligner's vocabulary), draft tokens are verified instead: the first
 * against the current logits, the rest after one batched evaluation of the proposal (all logits
 * kept). A draft token d is accepted with probability p(d) under the sampler's final distribution
 * (greedy: iff it is the argmax); on rejection the token is drawn from p with d removed and
 * renormalised - the standard speculative-sampling rule for a deterministic draft, so the output
 * distribution equals plain sampling. The frequency penalty is part of p and counts the tokens
 * accepted so far, exactly as in plain decoding. After a rejection the cache is rolled back to the
 * accepted prefix, the draft re-synchronised by finding the last generated tokens in it, and the
 * replacement token evaluated in the same batch as the next proposals (a small batch costs about
 * one token's forward pass: reading the weights dominates). */
typedef struct {
    SaCtx *c;
    SaSampler *smp;
    const SaTokenizer *tok;
    int cap;
    Trim *t;      /* trimmed streaming output, or NULL */
    SaBuf *text;  /* raw decoded output, or NULL */
    const int32_t *draft; /* NULL: plain decoding */
    int n_draft;
    /* results */
    int n, full, evals, drafted, accepted, passes;
    /* state */
    SaBuf piece;
    int prev;
    int32_t *gen;
    float *probs;
    int k; /* adaptive draft length */
} Gen;

#define SPEC_K_MIN 2
#define SPEC_K_MAX 32

/* Emit a generated token (decode + stream). */
static int gen_emit(Gen *g, int id) {
    sa_sampler_accept(g->smp, id);
    g->gen[g->n++] = id;
    g->piece.len = 0;
    if (sa_tok_decode(g->tok, g->prev, id, 0, &g->piece)) return -1;
    if (g->t) trim_push(g->t, g->piece.data ? g->piece.data : "", g->piece.len);
    if (g->text) sa_buf_append(g->text, g->piece.data ? g->piece.data : "", g->piece.len);
    g->prev = id;
    return 0;
}

/* Evaluate tokens (appending to the cache); sets full instead when the context has no room. */
static int gen_eval(Gen *g, const int32_t *ids, int n, int all) {
    if (sa_ctx_pos(g->c) + n > sa_ctx_n_ctx(g->c)) {
        g->full = 1;
        return 0;
    }
    if (sa_ctx_eval(g->c, ids, n, all)) return -1;
    g->evals += n;
    g->passes++;
    return 0;
}

/* Decide the token at the current position given a proposal d (-1: none). Returns the chosen
 * token; *ok tells whether d was accepted. */
static int gen_choose(Gen *g, const float *logits, int d, int *ok) {
    *ok = 0;
    if (d < 0) return sa_sample(g->smp, logits);
    if (sa_sampler_dist(g->smp, logits, g->probs)) return -1;
    const int V = g->smp->n_vocab;
    const float pd = g->probs[d];
    if (pd > 0.0f && (pd >= 1.0f || sa_sampler_uniform(g->smp) < pd)) {
        *ok = 1;
        return d;
    }
    /* rejected: draw from the rest of the distribution */
    double z = 0;
    for (int i = 0; i < V; i++) z += i == d ? 0 : g->probs[i];
    if (z <= 0) return sa_err("speculative decoding: empty residual distribution");
    const double u = sa_sampler_uniform(g->smp) * z;
    double cum = 0;
    int last = -1;
    for (int i = 0; i < V; i++) {
        if (i == d || g->probs[i] <= 0) continue;
        cum += g->probs[i];
        last = i;
        if (u < cum) return i;
    }
    return last;
}

/* Where in the draft do we continue after the tokens generated so far? Match the longest suffix
 * (up to 4 tokens) of what was generated against the draft; continue after the match closest to
 * `hint`. Without a match, `subst` (>= 0: the position after a rejected draft token) guesses a
 * one-for-one substitution - the most common edit - and continues there; verification makes a
 * wrong guess cost only the wasted draft tokens. -1: decode plainly until a match appears. */
static int gen_resync(const Gen *g, int hint, int subst) {
    for (int m = SA_MIN(4, g->n); m >= 1; m--) {
        int best = -1;
        for (int p = m - 1; p < g->n_draft; p++) {
            int k = 0;
            while (k < m && g->draft[p - k] == g->gen[g->n - 1 - k]) k++;
            if (k < m) continue;
            if (best < 0 || abs(p + 1 - hint) < abs(best - hint)) best = p + 1;
        }
        if (best >= 0) return best < g->n_draft ? best : -1;
    }
    return subst >= 0 && subst < g->n_draft ? subst : -1;
}

/* Verify up to g->k draft tokens from dp on after the emitted but not yet evaluated token `last`:
 * one batched evaluation of [last, proposals], then each proposal against the logits before it.
 * Returns 1 when every proposal was accepted (the cache then ends with them and the last logits
 * are current), 0 when one was rejected (the cache is rolled back to the accepted prefix, the
 * sampled replacement emitted and left in *last, still to evaluate), 2 at the end (EOG, cap, full
 * context), -1 on error. */
static int gen_verify(Gen *g, int32_t *last, int *dp) {
    int k = SA_MIN(g->k, SA_MIN(g->n_draft - *dp, g->cap - g->n));
    k = SA_MIN(k, 63);
    int32_t batch[64];
    batch[0] = *last;
    memcpy(batch + 1, g->draft + *dp, (size_t)k * sizeof(int32_t));
    const int pos0 = sa_ctx_pos(g->c);
    if (gen_eval(g, batch, k + 1, 1)) return -1;
    if (g->full) return 2;
    int j = 0, rc = 1;
    for (; j < k; j++) {
        int acc;
        const int tj = gen_choose(g, sa_ctx_logits(g->c, j), batch[j + 1], &acc);
        if (tj < 0) return -1;
        g->drafted++;
        g->accepted += acc;
        if (acc) {
            if (gen_emit(g, tj)) return -1;
            ++*dp;
            if (g->n == g->cap) { rc = 2; j++; break; }
            continue;
        }
        /* rejected: tj is the token at this position */
        rc = 0;
        if (sa_tok_is_eog(g->tok, tj)) rc = 2;
        else if (gen_emit(g, tj)) return -1;
        else {
            *last = tj;
            *dp = gen_resync(g, *dp + 1, *dp + 1);
            if (g->n == g->cap) rc = 2;
        }
        break;
    }
    /* keep [last, the accepted proposals] */
    if (sa_ctx_pos(g->c) > pos0 + 1 + j) sa_ctx_truncate(g->c, pos0 + 1 + j);
    /* adapt: grow after a fully accepted batch, shrink to what was accepted otherwise */
    g->k = j == k ? SA_MIN(2 * g->k, SPEC_K_MAX) : SA_MAX(SPEC_K_MIN, j + 1);
    return rc;
}

static int gen_run(Gen *g) {
    const SaKv *kv = sa_ctx_kv(g->c);
    g->prev = kv->n > 0 ? kv->tokens[kv->n - 1] : -1;
    g->gen = sa_malloc((size_t)(g->cap + 1) * sizeof(int32_t));
    g->probs = g->draft ? sa_malloc((size_t)g->smp->n_vocab * sizeof(float)) : NULL;
    if (!g->gen || (g->draft && !g->probs)) return -1;
    g->k = SPEC_K_MAX / 2;
    int dp = g->draft && g->n_draft > 0 ? 0 : -1; /* next draft position */
    sa_sampler_reset(g->smp);
    while (g->n < g->cap && !g->full) {
        /* the next token from the current logits, checked against the draft's when there is one */
        const int d0 = dp >= 0 ? g->draft[dp] : -1;
        int ok;
        int32_t last = gen_choose(g, sa_ctx_logits(g->c, -1), d0, &ok);
        if (last < 0) return -1;
        if (d0 >= 0) {
            g->drafted++;
            g->accepted += ok;
        }
        if (sa_tok_is_eog(g->tok, last)) break;
        if (gen_emit(g, last)) return -1;
        if (g->n == g->cap) break;
        if (g->draft) dp = ok ? dp + 1 : gen_resync(g, dp + 1, d0 >= 0 ? dp + 1 : -1);
        if (dp >= g->n_draft) dp = -1;
        /* `last` is emitted, not evaluated: evaluate it together with the next proposals while
         * the draft has any (a rejected proposal's replacement starts the next batch rather than
         * taking a forward pass of its own), alone otherwise */
        int pending = 1;
        while (pending && dp >= 0) {
            const int rc = gen_verify(g, &last, &dp);
            if (rc < 0) return -1;
            if (rc == 2) return 0;
            pending = rc == 0;
            if (dp >= g->n_draft) dp = -1;
        }
        if (pending && gen_eval(g, &last, 1, 0)) return -1;
    }
    return 0;
}

static void gen_free(Gen *g) {
    sa_buf_free(&g->piece);
    free(g->gen);
    free(g->probs);
}

int sa_generate(SaCtx *c, SaSampler *s, const SaTokenizer *tok, int cap, const int32_t *draft, int n_draft, int32_t *ids,
                SaBuf *text, SaGenStats *st) {
    Gen g = {.c = c, .smp = s, .tok = tok, .cap = cap, .text = text, .draft = draft, .n_draft = draft ? n_draft : 0};
    int rc = gen_run(&g);
    if (rc == 0 && ids) memcpy(ids, g.gen, (size_t)g.n * sizeof(int32_t));
    if (st) *st = (SaGenStats){g.n, g.evals, g.drafted, g.accepted, g.full, g.passes};
    gen_free(&g);
    return rc;
}

/* Sample tokens after the prompt now in c, until end of generation or `cap` tokens, streaming
 * trimmed text into t (no draft: plain decoding). Returns the number of tokens generated, or -1.
 * *full is set when the context filled up; *evals counts tokens fed through the model. */
static int generate_trimmed(SaCtx *c, SaSampler *smp, const SaTokenizer *tok, int cap, Trim *t, int *full, int *evals) {
    Gen g = {.c = c, .smp = smp, .tok = tok, .cap = cap, .t = t};
    int rc = gen_run(&g);
    *full = g.full;
    *evals += g.evals;
    gen_free(&g);
    return rc ? -1 : g.n;
}

/* The aligner's rewrite of `text`, speculating that it copies it: the draft is text in the
 * aligner's own vocabulary (the two models may tokenize differently). */
static int align_generate(SaEngine *e, const SaAlignParams *p, const char *text, int cap, Trim *t, int *full,
                          SaRoundTrace *rt) {
    Gen g = {.c = e->al, .smp = &e->al_s, .tok = e->al_m->tok, .cap = cap, .t = t};
    int32_t *draft = NULL;
    int n_draft = 0, cap_draft = 0;
    if (sa_tok_encode(e->al_m->tok, text, strlen(text), 0, 0, &draft, &n_draft, &cap_draft) < 0) return -1;
    /* default length cap: twice the sentence's tokens (in the aligner's vocabulary) + 32 */
    if (g.cap <= 0) g.cap = 2 * n_draft + 32;
    if (p->speculate && n_draft > 0) {
        g.draft = draft;
        g.n_draft = n_draft;
    }
    int rc = gen_run(&g);
    *full = g.full;
    rt->al_truncated = rc == 0 && !g.full && g.n >= g.cap;
    rt->al_gen_evaluated += g.evals;
    rt->al_drafted += g.drafted;
    rt->al_accepted += g.accepted;
    gen_free(&g);
    free(draft);
    return rc ? -1 : g.n;
}

static SaRoundTrace *new_round(SaAlignTrace *tr) {
    SaRoundTrace *r = sa_realloc(tr->rounds, (size_t)(tr->n_rounds + 1) * sizeof *r);
    if (!r) return NULL;
    tr->rounds = r;
    memset(&r[tr->n_rounds], 0, sizeof *r);
    return &r[tr->n_rounds++];
}

static int init_samplers(SaEngine *e, const SaAlignParams *p) {
    sa_sampler_free(&e->up_s);
    sa_sampler_free(&e->al_s);
    if (sa_sampler_init(&e->up_s, &p->up_sp, e->up_m->hp.n_vocab)) return -1;
    if (e->al_m && sa_sampler_init(&e->al_s, &p->al_sp, e->al_m->hp.n_vocab)) return -1;
    return 0;
}

/* none mode, and the first half of aligner mode: the upstream answers alone. */
static int upstream_answer(SaEngine *e, const char *question, Run *run, int stream_out, char **answer, SaRoundTrace *rt) {
    const SaAlignParams *p = run->p;
    SaPrompt pr;
    if (sa_chat_render(p->up_tmpl, p->system, question, "", &pr)) return -1;
    if (render_tokens(e, e->up_m->tok, &pr)) return -1;
    double t0 = sa_time_ms();
    rt->up_prompt = e->n_ids;
    if (prompt_eval(e->up, e->ids, e->n_ids, &rt->up_evaluated, &rt->up_reused)) return -1;
    Trim t = {.run = run, .quiet = !stream_out};
    int full = 0;
    int n = generate_trimmed(e->up, &e->up_s, e->up_m->tok, p->max_answer_tokens, &t, &full, &rt->up_gen_evaluated);
    rt->up_ms = sa_time_ms() - t0;
    if (n < 0) {
        sa_buf_free(&t.all);
        return -1;
    }
    rt->up_decoded = n;
    *answer = trim_result(&t);
    sa_buf_free(&t.all);
    if (full) run->tr->stop = "context full";
    else if (n >= p->max_answer_tokens) run->tr->stop = "max tokens";
    return *answer ? 0 : -1;
}

/* ---- the stream loop ---------------------------------------------------------------------- */

/* One upstream sentence: generate from the current prompt until the splitter reports a complete
 * sentence or the stream ends. *ended: the upstream finished (EOS/EOT, token caps, context). */
static int upstream_sentence(SaEngine *e, Run *run, SaBuf *gen, SaSentence *sent, int *found, int *ended, int *decoded,
                             int *evals, int *total_up) {
    const SaAlignParams *p = run->p;
    const SaTokenizer *tok = e->up_m->tok;
    SaBuf piece = {0};
    const SaKv *kv = sa_ctx_kv(e->up);
    int prev = kv->n > 0 ? kv->tokens[kv->n - 1] : -1;
    int final = 0;
    *found = 0;
    gen->len = 0;
    sa_sampler_reset(&e->up_s);
    for (;;) {
        const int id = sa_sample(&e->up_s, sa_ctx_logits(e->up, -1));
        if (id < 0) goto fail;
        if (sa_tok_is_eog(tok, id)) {
            final = 1;
            *ended = 1;
            run->tr->stop = "end of turn";
            break;
        }
        sa_sampler_accept(&e->up_s, id);
        (*decoded)++;
        (*total_up)++;
        piece.len = 0;
        if (sa_tok_decode(tok, prev, id, 0, &piece)) goto fail;
        sa_buf_append(gen, piece.data ? piece.data : "", piece.len);
        prev = id;
        if (sa_sentence_find(gen->data, gen->len, 0, p->split, sent)) {
            *found = 1;
            break;
        }
        if (*decoded >= p->max_sentence_tokens) {
            final = 1; /* a sentence that never ends: take what there is */
            break;
        }
        if (p->max_tokens > 0 && *total_up >= p->max_tokens) {
            final = 1;
            *ended = 1;
            run->tr->stop = "max tokens";
            break;
        }
        if (sa_ctx_pos(e->up) >= sa_ctx_n_ctx(e->up)) {
            final = 1;
            *ended = 1;
            run->tr->stop = "context full";
            break;
        }
        if (sa_ctx_eval(e->up, &id, 1, 0)) goto fail;
        (*evals)++;
    }
    if (final) {
        *found = sa_sentence_find(gen->data ? gen->data : "", gen->len, 1, p->split, sent);
        /* the stream ended, but only the first sentence is used: the upstream regenerates the rest
         * from the corrected prefix, so it has not really ended yet */
        if (*found && *ended && !strcmp(run->tr->stop, "end of turn")) {
            size_t rest = sent->end;
            while (rest < gen->len && is_ws(gen->data[rest])) rest++;
            if (rest < gen->len) {
                *ended = 0;
                run->tr->stop = "max sentences";
            }
        }
    }
    sa_buf_free(&piece);
    return 0;
fail:
    sa_buf_free(&piece);
    return -1;
}

static int stream_loop(SaEngine *e, const char *question, Run *run) {
    const SaAlignParams *p = run->p;
    SaAlignTrace *tr = run->tr;
    SaBuf prefix = {0}, gen = {0};
    int rc = -1, total_up = 0;
    sa_buf_append(&prefix, "", 0);
    tr->stop = "max sentences";
    for (int round = 0; round < p->max_sentences; round++) {
        SaRoundTrace *rt = new_round(tr);
        if (!rt) goto out;
        /* 1. upstream: prompt = chat(question, corrected prefix); reuse what the cache holds */
        double t0 = sa_time_ms();
        SaPrompt pr;
        if (sa_chat_render(p->up_tmpl, p->system, question, prefix.data, &pr) || render_tokens(e, e->up_m->tok, &pr)) goto out;
        rt->up_prompt = e->n_ids;
        const int up_rc = prompt_eval(e->up, e->ids, e->n_ids, &rt->up_evaluated, &rt->up_reused);
        if (up_rc == PROMPT_FULL && prefix.len) { /* the answer so far is the answer */
            tr->stop = "context full";
            tr->n_rounds--;
            rc = 0;
        }
        if (up_rc) goto out; /* with nothing answered yet, a full context is an error */
        SaSentence sent;
        int found = 0, ended = 0;
        if (upstream_sentence(e, run, &gen, &sent, &found, &ended, &rt->up_decoded, &rt->up_gen_evaluated, &total_up)) goto out;
        rt->up_ms = sa_time_ms() - t0;
        if (!found) {
            if (!ended) tr->stop = "empty sentence";
            tr->n_rounds--;
            break;
        }
        rt->original = sa_strndup(gen.data + sent.start, sent.end - sent.start);
        if (!rt->original) goto out;
        emit(run, SA_OUT_ORIGINAL, rt->original, strlen(rt->original));

        /* 2. aligner: rewrite the sentence given the question and the corrected prefix */
        t0 = sa_time_ms();
        SaTemplateVars v = {.question = question, .prefix = prefix.data, .last = rt->original};
        if (sa_template_render(p->al_tmpl, &v, &pr) || render_tokens(e, e->al_m->tok, &pr)) goto out;
        rt->al_prompt = e->n_ids;
        const int al_rc = prompt_eval(e->al, e->ids, e->n_ids, &rt->al_evaluated, &rt->al_reused);
        if (al_rc == PROMPT_FULL && prefix.len) {
            tr->stop = "context full";
            rc = 0;
        }
        if (al_rc) goto out;
        const int cap = p->max_correction_tokens; /* <= 0: from the sentence's length (align_generate) */
        Trim t = {.run = run, .sep = prefix.len ? " " : ""};
        int full = 0;
        rt->al_decoded = align_generate(e, p, rt->original, cap, &t, &full, rt);
        rt->al_ms = sa_time_ms() - t0;
        if (rt->al_decoded < 0) {
            sa_buf_free(&t.all);
            goto out;
        }
        rt->correction = trim_result(&t);
        sa_buf_free(&t.all);
        if (!rt->correction) goto out;
        /* 3. the correction replaces the sentence (an empty correction deletes it) */
        if (rt->correction[0]) {
            if (prefix.len) sa_buf_append(&prefix, " ", 1);
            sa_buf_append(&prefix, rt->correction, strlen(rt->correction));
        }
        if (p->on_round) p->on_round(p->round_ctx, e, round);
        if (full) {
            tr->stop = "context full";
            break;
        }
        if (ended) break;
    }
    rc = 0;
out:
    tr->answer = sa_strdup(prefix.data ? prefix.data : "");
    sa_buf_free(&prefix);
    sa_buf_free(&gen);
    return rc;
}

int sa_align_run(SaEngine *e, const char *question, const SaAlignParams *p, SaAlignTrace *tr) {
    memset(tr, 0, sizeof *tr);
    if (p->mode != SA_MODE_NONE && !e->al) return sa_err("mode needs an aligner model");
    if (init_samplers(e, p)) return -1;
    Run run = {.p = p, .t0 = sa_time_ms(), .tr = tr};
    tr->first_visible_ms = -1;
    tr->up_seed = p->up_sp.seed;
    tr->al_seed = p->al_sp.seed;
    tr->question = sa_strdup(question);
    const SaKv *ku = sa_ctx_kv(e->up), *ka = e->al ? sa_ctx_kv(e->al) : NULL;
    const uint64_t eu0 = ku->n_evaluated, ea0 = ka ? ka->n_evaluated : 0;
    int rc = 0;
    if (p->mode == SA_MODE_STREAM) {
        rc = stream_loop(e, question, &run);
    } else {
        SaRoundTrace *rt = new_round(tr);
        if (!rt) return -1;
        tr->stop = "end of turn";
        rc = upstream_answer(e, question, &run, p->mode == SA_MODE_NONE, &rt->original, rt);
        if (rc == 0 && p->mode == SA_MODE_NONE) {
            tr->answer = sa_strdup(rt->original);
        } else if (rc == 0) {
            emit(&run, SA_OUT_ORIGINAL, rt->original, strlen(rt->original));
            double t0 = sa_time_ms();
            SaTemplateVars v = {.question = question, .answer = rt->original};
            SaPrompt pr;
            if (sa_template_render(p->al_mode_tmpl, &v, &pr) || render_tokens(e, e->al_m->tok, &pr) ||
                prompt_eval(e->al, e->ids, e->n_ids, &rt->al_evaluated, &rt->al_reused)) {
                rc = -1;
            } else {
                rt->al_prompt = e->n_ids;
                Trim t = {.run = &run};
                int full = 0;
                rt->al_decoded = align_generate(e, p, rt->original, p->max_answer_tokens, &t, &full, rt);
                rt->al_ms = sa_time_ms() - t0;
                rt->correction = rt->al_decoded >= 0 ? trim_result(&t) : NULL;
                tr->answer = sa_strdup(rt->correction ? rt->correction : "");
                sa_buf_free(&t.all);
                if (rt->al_decoded < 0) rc = -1;
            }
        }
    }
    tr->total_ms = sa_time_ms() - run.t0;
    tr->our_evals = (long long)(ku->n_evaluated - eu0) + (ka ? (long long)(ka->n_evaluated - ea0) : 0);
    for (int i = 0; i < tr->n_rounds; i++) {
        const SaRoundTrace *r = &tr->rounds[i];
        tr->ref_evals += r->up_prompt + (p->mode == SA_MODE_STREAM ? REF_MAX_TOKENS : r->up_decoded) + r->al_prompt + r->al_decoded;
    }
    if (!tr->answer) tr->answer = sa_strdup("");
    /* in every mode alike: a run the context cut off before it produced anything failed */
    if (rc == 0 && !strcmp(tr->stop, "context full") && !tr->answer[0])
        rc = sa_err("context full (upstream %d, aligner %d positions) before anything was answered (use -c to enlarge it)",
                    sa_ctx_n_ctx(e->up), e->al ? sa_ctx_n_ctx(e->al) : 0);
    /* the upstream's text, not the answer: a correction may well complete the cut sentence */
    if (rc == 0 && tr->n_rounds > 0 && !strcmp(tr->stop, "max tokens")) {
        const char *last = tr->rounds[tr->n_rounds - 1].original;
        tr->unfinished = last && sa_sentence_unfinished(last, strlen(last), p->split);
    }
    return rc;
}

/* ---- JSON trace --------------------------------------------------------------------------- */

/* JSON strings must be valid UTF-8: invalid bytes become U+FFFD. */
static char *utf8_clean(const char *s) {
    SaBuf b = {0};
    size_t n = strlen(s), i = 0;
    while (i < n) {
        size_t ok = sa_utf8_valid_prefix(s + i, n - i);
        sa_buf_append(&b, s + i, ok);
        i += ok;
        if (i < n) {
            sa_buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (!b.data) return sa_strdup("");
    return b.data;
}

static void add_str(cJSON *o, const char *k, const char *v) {
    char *c = utf8_clean(v ? v : "");
    cJSON_AddStringToObject(o, k, c);
    free(c);
}

char *sa_align_trace_json(const SaAlignTrace *t, SaAlignMode mode) {
    static const char *modes[] = {"stream", "aligner", "none"};
    cJSON *o = cJSON_CreateObject();
    add_str(o, "mode", modes[mode]);
    add_str(o, "question", t->question);
    add_str(o, "answer", t->answer);
    cJSON *arr = cJSON_AddArrayToObject(o, "sentences");
    for (int i = 0; i < t->n_rounds; i++) {
        const SaRoundTrace *r = &t->rounds[i];
        cJSON *s = cJSON_CreateObject();
        add_str(s, "original", r->original);
        add_str(s, "correction", r->correction);
        cJSON_AddNumberToObject(s, "upstream_prompt_tokens", r->up_prompt);
        cJSON_AddNumberToObject(s, "upstream_prompt_evaluated", r->up_evaluated);
        cJSON_AddNumberToObject(s, "upstream_prompt_reused", r->up_reused);
        cJSON_AddNumberToObject(s, "upstream_decoded", r->up_decoded);
        cJSON_AddNumberToObject(s, "aligner_prompt_tokens", r->al_prompt);
        cJSON_AddNumberToObject(s, "aligner_prompt_evaluated", r->al_evaluated);
        cJSON_AddNumberToObject(s, "aligner_prompt_reused", r->al_reused);
        cJSON_AddNumberToObject(s, "aligner_decoded", r->al_decoded);
        cJSON_AddNumberToObject(s, "upstream_generated_evaluated", r->up_gen_evaluated);
        cJSON_AddNumberToObject(s, "aligner_generated_evaluated", r->al_gen_evaluated);
        cJSON_AddNumberToObject(s, "drafted", r->al_drafted);
        cJSON_AddNumberToObject(s, "accepted", r->al_accepted);
        cJSON_AddNumberToObject(s, "rejected", r->al_drafted - r->al_accepted);
        cJSON_AddBoolToObject(s, "correction_truncated", r->al_truncated);
        cJSON_AddNumberToObject(s, "upstream_ms", r->up_ms);
        cJSON_AddNumberToObject(s, "aligner_ms", r->al_ms);
        cJSON_AddItemToArray(arr, s);
    }
    cJSON_AddNumberToObject(o, "first_visible_ms", t->first_visible_ms);
    cJSON_AddNumberToObject(o, "total_ms", t->total_ms);
    add_str(o, "stop", t->stop);
    cJSON_AddBoolToObject(o, "unfinished", t->unfinished);
    /* as strings: a JSON number loses integers above 2^53 */
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)t->up_seed);
    add_str(o, "upstream_seed", seed);
    if (mode != SA_MODE_NONE) {
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)t->al_seed);
        add_str(o, "aligner_seed", seed);
    }
    cJSON_AddNumberToObject(o, "token_evaluations", (double)t->our_evals);
    cJSON_AddNumberToObject(o, "reference_token_evaluations", (double)t->ref_evals);
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return js;
}
