/* generate.c - the token loop of both models, with copy-speculation (see generate.h). */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

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
    SaGenTokenFn on_token;
    void *token_ctx;
    const int *cancel;
    SaBuf *text;  /* raw decoded output, or NULL */
    const int32_t *draft; /* NULL: plain decoding */
    int n_draft;
    int draft_on_request; /* unused until the callback arms it */
    SaGenForceFn force;
    void *force_ctx;
    /* results */
    int n, full, evals, drafted, accepted, passes;
    int stopped; /* the stop callback's nonzero value */
    int armed;   /* the callback asked for the draft (SA_GEN_COPY_DRAFT) */
    int draft_live; /* the draft is in use (from the start, or since it was armed) */
    int cancelled;
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
    const char *s = g->piece.data ? g->piece.data : "";
    if (g->text) sa_buf_append(g->text, s, g->piece.len);
    g->prev = id;
    if (g->on_token) g->stopped = g->on_token(g->token_ctx, id, s, g->piece.len, g->n);
    if (g->stopped == SA_GEN_COPY_DRAFT) {
        g->stopped = 0;
        /* only while the draft waits for it: a verification batch never runs before */
        g->armed = g->draft && g->draft_on_request && !g->draft_live;
    }
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
static int gen_sample(Gen *g, const float *logits, int d, int *ok) {
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

/* gen_sample, or the forced token once the sampler has run (its cost is part of what a forced
 * benchmark measures) */
static int gen_choose(Gen *g, const float *logits, int d, int *ok) {
    const int t = gen_sample(g, logits, d, ok);
    if (t < 0 || !g->force) return t;
    const int32_t f = g->force(g->force_ctx, g->n, g->draft, g->n_draft);
    *ok = d >= 0 && f == d;
    return f;
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
            if (g->n == g->cap || g->stopped) { rc = 2; j++; break; }
            continue;
        }
        /* rejected: tj is the token at this position */
        rc = 0;
        if (sa_tok_is_eog(g->tok, tj)) rc = 2;
        else if (gen_emit(g, tj)) return -1;
        else {
            *last = tj;
            *dp = gen_resync(g, *dp + 1, *dp + 1);
            if (g->n == g->cap || g->stopped) rc = 2;
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
    g->draft_live = g->draft && !g->draft_on_request;
    int dp = g->draft_live && g->n_draft > 0 ? 0 : -1; /* next draft position */
    sa_sampler_reset(g->smp);
    while (g->n < g->cap && !g->full) {
        if (sa_cancelled(g->cancel)) {
            g->cancelled = 1;
            break;
        }
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
        if (g->n == g->cap || g->stopped) break;
        if (g->armed) { /* the output starts copying the draft now */
            dp = g->n_draft > 0 ? 0 : -1;
            g->armed = 0;
            g->draft_live = 1;
        } else if (g->draft && g->draft_live) {
            dp = ok ? dp + 1 : gen_resync(g, dp + 1, d0 >= 0 ? dp + 1 : -1);
        }
        if (dp >= g->n_draft) dp = -1;
        /* `last` is emitted, not evaluated: evaluate it together with the next proposals while
         * the draft has any (a rejected proposal's replacement starts the next batch rather than
         * taking a forward pass of its own), alone otherwise */
        int pending = 1;
        while (pending && dp >= 0) {
            if (sa_cancelled(g->cancel)) { /* `last` is generated; leaving it unevaluated is what a stop does too */
                g->cancelled = 1;
                return 0;
            }
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

int sa_cancelled(const int *cancel) { return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) != 0; }

int sa_gen(SaCtx *c, SaSampler *s, const SaTokenizer *tok, const SaGenParams *gp, SaGenStats *st) {
    Gen g = {.c = c, .smp = s, .tok = tok, .cap = gp->cap, .on_token = gp->on_token, .token_ctx = gp->token_ctx,
             .cancel = gp->cancel, .text = gp->text, .draft = gp->draft, .n_draft = gp->draft ? gp->n_draft : 0,
             .draft_on_request = gp->draft_on_request, .force = gp->force, .force_ctx = gp->force_ctx};
    int rc = gen_run(&g);
    if (rc == 0 && gp->ids) memcpy(gp->ids, g.gen, (size_t)g.n * sizeof(int32_t));
    if (st) {
        const SaGenStatus status = g.cancelled ? SA_GEN_CANCELLED
                                   : g.stopped ? SA_GEN_STOPPED
                                   : g.full    ? SA_GEN_CONTEXT_FULL
                                   : g.n >= g.cap ? SA_GEN_MAX_TOKENS
                                                  : SA_GEN_END;
        *st = (SaGenStats){.n = g.n, .evals = g.evals, .drafted = g.drafted, .accepted = g.accepted, .full = g.full,
                           .passes = g.passes, .status = status, .stop_code = g.stopped};
    }
    gen_free(&g);
    return rc;
}

int sa_generate(SaCtx *c, SaSampler *s, const SaTokenizer *tok, int cap, const int32_t *draft, int n_draft, int32_t *ids,
                SaBuf *text, SaGenStats *st) {
    SaGenParams gp = {.cap = cap, .draft = draft, .n_draft = n_draft, .ids = ids, .text = text};
    return sa_gen(c, s, tok, &gp, st);
}
