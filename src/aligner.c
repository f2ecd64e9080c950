/* aligner.c - the Stream Aligner loop and the none/aligner modes (see aligner.h). */
#include "aligner.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annotator.h"
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
        free(t->rounds[i].reasoning);
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
    const char *system;   /* the system prompt in effect */
    const char **turns;   /* user, assistant, ..., user */
    int n_turns;
    const char *question; /* the last user turn: the aligner's question */
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

/* Evaluate a prompt with prefix reuse; report what was evaluated and reused.
 * prompt_eval's results: 0, PROMPT_FULL (the prompt does not fit: the stream loop ends the answer
 * there once it has one; a message is left), PROMPT_CANCELLED (the cancel flag was set between two
 * batches), or -1 (an error, with a message). */
enum { PROMPT_FULL = 1, PROMPT_CANCELLED = 2 };

/* Tokens per step of a long prompt when the run can be cancelled: the context's own batch size
 * (512 by default), so the steps are the batches sa_ctx_prompt would run anyway. A long
 * conversation on a big model takes seconds to read; a client that leaves should not wait for it. */
#define PROMPT_STEP 512

static int prompt_eval(SaCtx *c, const int32_t *ids, int n, int *evaluated, int *reused, const int *cancel) {
    const SaKv *kv = sa_ctx_kv(c);
    const uint64_t e0 = kv->n_evaluated, r0 = kv->n_reused;
    if (n >= sa_ctx_n_ctx(c)) {
        sa_err("context full: the prompt has %d tokens, the context %d (use -c to enlarge it)", n, sa_ctx_n_ctx(c));
        return PROMPT_FULL;
    }
    if (sa_cancelled(cancel)) return PROMPT_CANCELLED;
    /* the cached prefix is kept by the first call; the rest is appended step by step */
    int common = 0;
    while (common < kv->n && common < n && kv->tokens[common] == ids[common]) common++;
    int done = cancel ? SA_MIN(n, common + PROMPT_STEP) : n;
    if (sa_ctx_prompt(c, ids, done)) return -1;
    while (done < n) {
        if (sa_cancelled(cancel)) return PROMPT_CANCELLED;
        const int k = SA_MIN(PROMPT_STEP, n - done);
        if (sa_ctx_eval(c, ids + done, k, 0)) return -1;
        done += k;
    }
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

/* Streams generated tokens into a Trim (the on_token callback of the answers that are shown). */
static int trim_token(void *ctx, int32_t id, const char *piece, size_t n, int n_gen) {
    (void)id;
    (void)n_gen;
    trim_push(ctx, piece, n);
    return 0;
}

/* Sample tokens after the prompt now in c, until end of generation or `cap` tokens, streaming
 * trimmed text into t (no draft: plain decoding). Returns the number of tokens generated, or -1;
 * *st tells why it ended. */
static int generate_trimmed(Run *run, SaCtx *c, SaSampler *smp, const SaTokenizer *tok, int cap, Trim *t, SaGenStats *st,
                            int *evals) {
    SaGenParams gp = {.cap = cap, .on_token = trim_token, .token_ctx = t, .cancel = run->p->cancel,
                      .force = run->p->up_force, .force_ctx = run->p->force_ctx};
    int rc = sa_gen(c, smp, tok, &gp, st);
    if (rc) sa_err_prefix("upstream: ");
    *evals += st->evals;
    return rc ? -1 : st->n;
}

/* The aligner's rewrite of `text`, speculating that it copies it: the draft is text in the
 * aligner's own vocabulary (the two models may tokenize differently). */
static int align_generate(SaEngine *e, Run *run, const char *text, int cap, Trim *t, SaGenStats *st, SaRoundTrace *rt) {
    const SaAlignParams *p = run->p;
    SaGenParams gp = {.cap = cap, .on_token = trim_token, .token_ctx = t, .cancel = p->cancel, .force = p->al_force,
                      .force_ctx = p->force_ctx};
    int32_t *draft = NULL;
    int n_draft = 0, cap_draft = 0;
    if (sa_tok_encode(e->al_m->tok, text, strlen(text), 0, 0, &draft, &n_draft, &cap_draft) < 0) return -1;
    /* default length cap: twice the sentence's tokens (in the aligner's vocabulary) + 32 */
    if (gp.cap <= 0) gp.cap = 2 * n_draft + 32;
    if (p->speculate && n_draft > 0) {
        gp.draft = draft;
        gp.n_draft = n_draft;
    }
    int rc = sa_gen(e->al, &e->al_s, e->al_m->tok, &gp, st);
    if (rc) sa_err_prefix("aligner: "); /* which model failed (e.g. NaN logits from broken weights) */
    rt->al_truncated = rc == 0 && st->status == SA_GEN_MAX_TOKENS;
    rt->al_gen_evaluated += st->evals;
    rt->al_drafted += st->drafted;
    rt->al_accepted += st->accepted;
    free(draft);
    return rc ? -1 : st->n;
}

/* ---- the annotator kind: an instruct model through the reference's annotator prompt ------------- */

/* The parser (annotator.h) fed token by token: reasoning goes out as SA_OUT_REASONING, the text
 * inside CORRECTION: [[ ]] streams through the Trim as the answer, and decoding stops once the
 * verdict is known (at ]] when it is not wanted). */
enum { ANN_DONE = 1, ANN_OOM };
typedef struct {
    Run *run;
    SaAnnParse ps;
    Trim *t;
    size_t reason_shown, corr_shown;
} Annot;

static void annot_show(Annot *a) {
    const char *all = a->ps.all.data;
    if (a->ps.reason_end > a->reason_shown) {
        emit(a->run, SA_OUT_REASONING, all + a->reason_shown, a->ps.reason_end - a->reason_shown);
        a->reason_shown = a->ps.reason_end;
    }
    if (a->ps.state == SA_ANN_REASONING) return;
    if (a->corr_shown < a->ps.corr_start) a->corr_shown = a->ps.corr_start;
    if (a->ps.corr_end > a->corr_shown) {
        trim_push(a->t, all + a->corr_shown, a->ps.corr_end - a->corr_shown);
        a->corr_shown = a->ps.corr_end;
    }
}

static int annot_token(void *ctx, int32_t id, const char *piece, size_t n, int n_gen) {
    Annot *a = ctx;
    (void)id;
    (void)n_gen;
    const SaAnnState was = a->ps.state;
    if (sa_ann_feed(&a->ps, piece, n)) return ANN_OOM;
    annot_show(a);
    if (a->ps.state == SA_ANN_DONE) return ANN_DONE;
    /* from here the output is expected to copy the upstream's sentence, then ]] */
    return was == SA_ANN_REASONING && a->ps.state != SA_ANN_REASONING ? SA_GEN_COPY_DRAFT : 0;
}

/* The annotator's answer for the round's sentence (its prompt is evaluated): streams the correction,
 * fills the round's correction, status, verdict and reasoning. A failed answer (no correction, an
 * empty one) keeps the original, which is then shown in its place. Returns tokens generated, or -1. */
static int annotate_generate(SaEngine *e, Run *run, int cap, Trim *t, SaGenStats *st, SaRoundTrace *rt) {
    const SaAlignParams *p = run->p;
    Annot a = {.run = run, .t = t};
    sa_ann_init(&a.ps, p->split, p->ignore_aligner_eos);
    SaGenParams gp = {.cap = cap, .on_token = annot_token, .token_ctx = &a, .cancel = p->cancel};
    /* the draft: the sentence and the closing brackets, in the aligner's vocabulary */
    SaBuf d = {0};
    int32_t *draft = NULL;
    int n_draft = 0, cap_draft = 0, rc = -1;
    if (sa_buf_printf(&d, "%s]]", rt->original) ||
        sa_tok_encode(e->al_m->tok, d.data, d.len, 0, 0, &draft, &n_draft, &cap_draft) < 0)
        goto out;
    /* room for reasoning, the markers and the verdict besides the sentence */
    if (gp.cap <= 0) gp.cap = 4 * n_draft + 256;
    if (p->speculate && n_draft > 0) {
        gp.draft = draft;
        gp.n_draft = n_draft;
        gp.draft_on_request = 1;
    }
    rc = sa_gen(e->al, &e->al_s, e->al_m->tok, &gp, st);
    if (rc) sa_err_prefix("aligner: ");
    if (rc == 0 && st->status == SA_GEN_STOPPED && st->stop_code == ANN_OOM) rc = -1;
    if (rc) goto out;
    rt->annotated = 1;
    rt->al_truncated = st->status == SA_GEN_MAX_TOKENS;
    rt->al_gen_evaluated += st->evals;
    rt->al_drafted += st->drafted;
    rt->al_accepted += st->accepted;
    rt->al_eos = a.ps.eos;
    SaAnnStatus status;
    char *text = NULL;
    rc = -1;
    if (sa_ann_finish(&a.ps, &status, &text)) goto out;
    if (st->status != SA_GEN_CANCELLED) annot_show(&a); /* what the end released */
    rt->al_status = (int)status;
    size_t r0 = 0, r1 = a.ps.reason_end;
    while (r0 < r1 && is_ws(a.ps.all.data[r0])) r0++;
    while (r1 > r0 && is_ws(a.ps.all.data[r1 - 1])) r1--;
    if (r1 > r0 && !(rt->reasoning = sa_strndup(a.ps.all.data + r0, r1 - r0))) {
        free(text);
        goto out;
    }
    /* nothing usable: the original stands, and is shown (unless the run was cancelled: the answer then ends
     * with what was shown) */
    if ((status == SA_ANN_KEPT || status == SA_ANN_EMPTY) && st->status != SA_GEN_CANCELLED) {
        free(text);
        text = sa_strdup(rt->original);
        if (text) trim_push(t, text, strlen(text));
    }
    rt->correction = text;
    rc = text ? st->n : -1;
out:
    sa_ann_free(&a.ps);
    sa_buf_free(&d);
    free(draft);
    return rc;
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

/* The upstream's prompt: the conversation, then the start of the answer. */
static int render_upstream(SaEngine *e, Run *run, const char *prefix) {
    SaPrompt pr;
    if (sa_chat_render_turns(run->p->up_tmpl, run->system, run->turns, run->n_turns, prefix, &pr)) return -1;
    return render_tokens(e, e->up_m->tok, &pr);
}

static SaStop stop_of(SaGenStatus s) {
    return s == SA_GEN_CONTEXT_FULL ? SA_STOP_CONTEXT_FULL
           : s == SA_GEN_CANCELLED  ? SA_STOP_CANCELLED
           : s == SA_GEN_END        ? SA_STOP_END_OF_TURN
                                    : SA_STOP_MAX_TOKENS;
}

/* none mode, and the first half of aligner mode: the upstream answers alone. */
static int upstream_answer(SaEngine *e, Run *run, int stream_out, char **answer, SaRoundTrace *rt) {
    const SaAlignParams *p = run->p;
    if (render_upstream(e, run, "")) return -1;
    double t0 = sa_time_ms();
    rt->up_prompt = e->n_ids;
    const int prc = prompt_eval(e->up, e->ids, e->n_ids, &rt->up_evaluated, &rt->up_reused, p->cancel);
    if (prc == PROMPT_CANCELLED) {
        run->tr->stop_reason = SA_STOP_CANCELLED;
        *answer = sa_strdup("");
        return *answer ? 0 : -1;
    }
    if (prc == PROMPT_FULL) run->tr->stop_reason = SA_STOP_CONTEXT_FULL; /* a status callers can test */
    if (prc) return -1;
    Trim t = {.run = run, .quiet = !stream_out};
    SaGenStats st;
    int n = generate_trimmed(run, e->up, &e->up_s, e->up_m->tok, p->max_answer_tokens, &t, &st, &rt->up_gen_evaluated);
    rt->up_ms = sa_time_ms() - t0;
    if (n < 0) {
        sa_buf_free(&t.all);
        return -1;
    }
    rt->up_decoded = n;
    *answer = trim_result(&t);
    sa_buf_free(&t.all);
    run->tr->stop_reason = stop_of(st.status);
    return *answer ? 0 : -1;
}

/* ---- the stream loop ---------------------------------------------------------------------- */

/* The upstream sentence's stop callback: the sentence splitter and the token caps. */
enum { SENT_FOUND = 1, SENT_CAP, SENT_MAX_TOKENS };
typedef struct {
    const SaAlignParams *p;
    SaBuf *gen;
    SaSentence *sent;
    int total0; /* upstream tokens of the earlier rounds */
} SentStop;

static int sentence_stop(void *ctx, int32_t id, const char *piece, size_t n, int n_gen) {
    SentStop *s = ctx;
    (void)id;
    sa_buf_append(s->gen, piece, n);
    if (sa_sentence_find(s->gen->data, s->gen->len, 0, s->p->split, s->sent)) return SENT_FOUND;
    if (n_gen >= s->p->max_sentence_tokens) return SENT_CAP; /* a sentence that never ends: take what there is */
    if (s->p->max_tokens > 0 && s->total0 + n_gen >= s->p->max_tokens) return SENT_MAX_TOKENS;
    return 0;
}

/* One upstream sentence: generate from the current prompt until the splitter reports a complete
 * sentence or the stream ends. *ended: the upstream finished (EOS/EOT, token caps, context,
 * cancel); the reason is then in the trace. */
static int upstream_sentence(SaEngine *e, Run *run, SaBuf *gen, SaSentence *sent, int *found, int *ended, int *decoded,
                             int *evals, int *total_up) {
    const SaAlignParams *p = run->p;
    *found = 0;
    gen->len = 0;
    SentStop ss = {.p = p, .gen = gen, .sent = sent, .total0 = *total_up};
    SaGenParams gp = {.cap = p->max_sentence_tokens, .on_token = sentence_stop, .token_ctx = &ss, .cancel = p->cancel,
                      .force = p->up_force, .force_ctx = p->force_ctx};
    SaGenStats st;
    if (sa_gen(e->up, &e->up_s, e->up_m->tok, &gp, &st)) {
        sa_err_prefix("upstream: ");
        return -1;
    }
    *decoded += st.n;
    *total_up += st.n;
    *evals += st.evals;
    if (st.status == SA_GEN_STOPPED && st.stop_code == SENT_FOUND) {
        *found = 1;
        return 0;
    }
    /* the stream ended (or a sentence ran to its cap): the last sentence is whatever there is */
    if (!(st.status == SA_GEN_STOPPED && st.stop_code == SENT_CAP)) {
        *ended = 1;
        run->tr->stop_reason = st.status == SA_GEN_STOPPED ? SA_STOP_MAX_TOKENS : stop_of(st.status);
    }
    if (st.status == SA_GEN_CANCELLED) return 0; /* nothing more is shown */
    *found = sa_sentence_find(gen->data ? gen->data : "", gen->len, 1, p->split, sent);
    /* the stream ended, but only the first sentence is used: the upstream regenerates the rest
     * from the corrected prefix, so it has not really ended yet */
    if (*found && *ended && run->tr->stop_reason == SA_STOP_END_OF_TURN) {
        size_t rest = sent->end;
        while (rest < gen->len && is_ws(gen->data[rest])) rest++;
        if (rest < gen->len) {
            *ended = 0;
            run->tr->stop_reason = SA_STOP_MAX_SENTENCES;
        }
    }
    return 0;
}

static int stream_loop(SaEngine *e, Run *run) {
    const SaAlignParams *p = run->p;
    SaAlignTrace *tr = run->tr;
    SaBuf prefix = {0}, gen = {0};
    int rc = -1, total_up = 0;
    sa_buf_append(&prefix, "", 0);
    tr->stop_reason = SA_STOP_MAX_SENTENCES;
    for (int round = 0; round < p->max_sentences; round++) {
        if (sa_cancelled(p->cancel)) {
            tr->stop_reason = SA_STOP_CANCELLED;
            break;
        }
        SaRoundTrace *rt = new_round(tr);
        if (!rt) goto out;
        /* 1. upstream: prompt = chat(conversation, corrected prefix); reuse what the cache holds */
        double t0 = sa_time_ms();
        if (render_upstream(e, run, prefix.data)) goto out;
        rt->up_prompt = e->n_ids;
        const int up_rc = prompt_eval(e->up, e->ids, e->n_ids, &rt->up_evaluated, &rt->up_reused, p->cancel);
        if (up_rc == PROMPT_CANCELLED) {
            tr->stop_reason = SA_STOP_CANCELLED;
            tr->n_rounds--;
            rc = 0;
            goto out;
        }
        if (up_rc == PROMPT_FULL && prefix.len) { /* the answer so far is the answer */
            tr->stop_reason = SA_STOP_CONTEXT_FULL;
            tr->n_rounds--;
            rc = 0;
        }
        if (up_rc == PROMPT_FULL) tr->stop_reason = SA_STOP_CONTEXT_FULL;
        if (up_rc) goto out; /* with nothing answered yet, a full context is an error */
        SaSentence sent;
        int found = 0, ended = 0;
        if (upstream_sentence(e, run, &gen, &sent, &found, &ended, &rt->up_decoded, &rt->up_gen_evaluated, &total_up)) goto out;
        rt->up_ms = sa_time_ms() - t0;
        if (!found) {
            if (!ended) tr->stop_reason = SA_STOP_EMPTY_SENTENCE;
            tr->n_rounds--;
            break;
        }
        rt->original = sa_strndup(gen.data + sent.start, sent.end - sent.start);
        if (!rt->original) goto out;
        emit(run, SA_OUT_ORIGINAL, rt->original, strlen(rt->original));

        /* 2. aligner: rewrite the sentence given the question and the corrected prefix */
        t0 = sa_time_ms();
        SaPrompt pr;
        SaTemplateVars v = {.question = run->question, .prefix = prefix.data, .last = rt->original};
        const int annot = sa_annotator_is(p->al_tmpl);
        const int rr = annot ? sa_annotator_render(p->al_chat ? p->al_chat : sa_chat_template("plain"),
                                                   p->al_system ? p->al_system : sa_annotator_system(),
                                                   p->al_user ? p->al_user : sa_annotator_user(), run->question,
                                                   prefix.data, rt->original, &pr)
                             : sa_template_render(p->al_tmpl, &v, &pr);
        if (rr || render_tokens(e, e->al_m->tok, &pr)) goto out;
        rt->al_prompt = e->n_ids;
        const int al_rc = prompt_eval(e->al, e->ids, e->n_ids, &rt->al_evaluated, &rt->al_reused, p->cancel);
        if (al_rc == PROMPT_CANCELLED) { /* the round's sentence stays in the trace, uncorrected */
            tr->stop_reason = SA_STOP_CANCELLED;
            rc = 0;
            goto out;
        }
        if (al_rc == PROMPT_FULL) tr->stop_reason = SA_STOP_CONTEXT_FULL;
        if (al_rc == PROMPT_FULL && prefix.len) rc = 0;
        if (al_rc) goto out;
        const int cap = p->max_correction_tokens; /* <= 0: from the sentence's length (align_generate) */
        Trim t = {.run = run, .sep = prefix.len ? " " : ""};
        SaGenStats st;
        rt->al_decoded = annot ? annotate_generate(e, run, cap, &t, &st, rt) : align_generate(e, run, rt->original, cap, &t, &st, rt);
        rt->al_ms = sa_time_ms() - t0;
        if (rt->al_decoded < 0) {
            sa_buf_free(&t.all);
            goto out;
        }
        if (!annot) rt->correction = trim_result(&t);
        sa_buf_free(&t.all);
        if (!rt->correction) goto out;
        /* 3. the correction replaces the sentence (an empty correction deletes it) */
        if (rt->correction[0]) {
            if (prefix.len) sa_buf_append(&prefix, " ", 1);
            sa_buf_append(&prefix, rt->correction, strlen(rt->correction));
        }
        if (p->on_round) p->on_round(p->round_ctx, e, round);
        if (st.status == SA_GEN_CONTEXT_FULL || st.status == SA_GEN_CANCELLED) {
            tr->stop_reason = stop_of(st.status);
            break;
        }
        if (ended) break;
        /* better than the reference, which computes the verdict and ignores it */
        if (annot && rt->al_eos == 1 && !p->ignore_aligner_eos) {
            tr->stop_reason = SA_STOP_ALIGNER_END;
            break;
        }
    }
    rc = 0;
out:
    tr->answer = sa_strdup(prefix.data ? prefix.data : "");
    sa_buf_free(&prefix);
    sa_buf_free(&gen);
    return rc;
}

static const char *const mode_names[] = {"stream", "aligner", "none"};

const char *sa_mode_name(SaAlignMode m) { return (unsigned)m < SA_ARRAY_LEN(mode_names) ? mode_names[m] : "?"; }

int sa_mode_from_name(const char *s, size_t len) {
    for (int m = 0; m < (int)SA_ARRAY_LEN(mode_names); m++)
        if (strlen(mode_names[m]) == len && !strncmp(s, mode_names[m], len)) return m;
    return -1;
}

const char *sa_stop_name(SaStop s) {
    static const char *names[] = {"end of turn", "max tokens",    "max sentences", "context full",
                                  "empty sentence", "cancelled", "aligner end"};
    return (unsigned)s < SA_ARRAY_LEN(names) ? names[s] : "?";
}

void sa_engine_reset(SaEngine *e) {
    sa_ctx_truncate(e->up, 0);
    if (e->al) sa_ctx_truncate(e->al, 0);
}

/* Turns from messages: system ones joined into *system, consecutive ones of a role joined. */
static int build_turns(Run *run, const SaMessage *msgs, int n, SaBuf *sys, SaBuf **turns) {
    int nt = 0, last_role = -1;
    *turns = sa_calloc((size_t)(n > 0 ? n : 1), sizeof(SaBuf));
    if (!*turns) return -1;
    for (int i = 0; i < n; i++) {
        const char *text = msgs[i].content ? msgs[i].content : "";
        if (msgs[i].role == SA_ROLE_SYSTEM) {
            if (sys->len) sa_buf_append(sys, "\n\n", 2);
            sa_buf_append(sys, text, strlen(text));
            continue;
        }
        if ((int)msgs[i].role != last_role) {
            if (nt == 0 && msgs[i].role != SA_ROLE_USER)
                return sa_err("messages: the conversation must start with a user message");
            nt++;
            last_role = (int)msgs[i].role;
        } else {
            sa_buf_append(&(*turns)[nt - 1], "\n\n", 2);
        }
        sa_buf_append(&(*turns)[nt - 1], text, strlen(text));
    }
    if (nt == 0 || last_role != SA_ROLE_USER) return sa_err("messages: the last message must be a user message");
    run->n_turns = nt;
    run->turns = sa_malloc((size_t)nt * sizeof(char *));
    if (!run->turns) return -1;
    for (int i = 0; i < nt; i++) {
        sa_buf_append(&(*turns)[i], "", 0);
        run->turns[i] = (*turns)[i].data;
    }
    run->question = run->turns[nt - 1];
    return 0;
}

int sa_align_prompt_tokens(const SaEngine *e, const SaMessage *msgs, int n_msgs, const SaAlignParams *p) {
    Run run = {.p = p};
    SaBuf sys = {0}, *turns = NULL;
    int n = -1;
    if (build_turns(&run, msgs, n_msgs, &sys, &turns) == 0) {
        SaPrompt pr;
        int32_t *ids = NULL;
        int cap = 0;
        n = 0;
        if (sa_chat_render_turns(p->up_tmpl, sys.len ? sys.data : p->system, run.turns, run.n_turns, "", &pr) ||
            sa_prompt_tokenize(&pr, e->up_m->tok, &ids, &n, &cap))
            n = -1;
        sa_prompt_free(&pr);
        free(ids);
    }
    for (int i = 0; turns && i < n_msgs; i++) sa_buf_free(&turns[i]);
    free(turns);
    free(run.turns);
    sa_buf_free(&sys);
    return n;
}

int sa_align_run(SaEngine *e, const char *question, const SaAlignParams *p, SaAlignTrace *tr) {
    SaMessage m = {SA_ROLE_USER, question};
    return sa_align_run_messages(e, &m, 1, p, tr);
}

int sa_align_run_messages(SaEngine *e, const SaMessage *msgs, int n_msgs, const SaAlignParams *p, SaAlignTrace *tr) {
    memset(tr, 0, sizeof *tr);
    tr->stop = sa_stop_name(SA_STOP_END_OF_TURN);
    if (p->mode != SA_MODE_NONE && !e->al) return sa_err("mode needs an aligner model");
    Run run = {.p = p, .t0 = sa_time_ms(), .tr = tr};
    SaBuf sys = {0}, *turns = NULL;
    int rc = build_turns(&run, msgs, n_msgs, &sys, &turns);
    run.system = sys.len ? sys.data : p->system;
    if (rc == 0) rc = init_samplers(e, p);
    if (rc) goto done;
    tr->first_visible_ms = -1;
    tr->up_seed = p->up_sp.seed;
    tr->al_seed = p->al_sp.seed;
    tr->question = sa_strdup(run.question);
    const SaKv *ku = sa_ctx_kv(e->up), *ka = e->al ? sa_ctx_kv(e->al) : NULL;
    const uint64_t eu0 = ku->n_evaluated, ea0 = ka ? ka->n_evaluated : 0;
    if (p->mode == SA_MODE_STREAM) {
        rc = stream_loop(e, &run);
    } else {
        SaRoundTrace *rt = new_round(tr);
        if (!rt) {
            rc = -1;
            goto done;
        }
        tr->stop_reason = SA_STOP_END_OF_TURN;
        rc = upstream_answer(e, &run, p->mode == SA_MODE_NONE, &rt->original, rt);
        if (rc == 0 && p->mode == SA_MODE_NONE) {
            tr->answer = sa_strdup(rt->original);
        } else if (rc == 0 && tr->stop_reason == SA_STOP_CANCELLED) {
            tr->answer = sa_strdup("");
        } else if (rc == 0) {
            emit(&run, SA_OUT_ORIGINAL, rt->original, strlen(rt->original));
            double t0 = sa_time_ms();
            SaTemplateVars v = {.question = run.question, .answer = rt->original};
            SaPrompt pr;
            int prc = -1;
            if (sa_template_render(p->al_mode_tmpl, &v, &pr) || render_tokens(e, e->al_m->tok, &pr) ||
                (prc = prompt_eval(e->al, e->ids, e->n_ids, &rt->al_evaluated, &rt->al_reused, p->cancel))) {
                if (prc == PROMPT_FULL) tr->stop_reason = SA_STOP_CONTEXT_FULL;
                if (prc == PROMPT_CANCELLED) tr->stop_reason = SA_STOP_CANCELLED;
                else rc = -1;
            } else {
                rt->al_prompt = e->n_ids;
                Trim t = {.run = &run};
                SaGenStats st;
                rt->al_decoded = align_generate(e, &run, rt->original, p->max_answer_tokens, &t, &st, rt);
                rt->al_ms = sa_time_ms() - t0;
                rt->correction = rt->al_decoded >= 0 ? trim_result(&t) : NULL;
                tr->answer = sa_strdup(rt->correction ? rt->correction : "");
                sa_buf_free(&t.all);
                if (rt->al_decoded < 0) rc = -1;
                else if (st.status == SA_GEN_CANCELLED) tr->stop_reason = SA_STOP_CANCELLED;
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
    if (rc == 0 && tr->stop_reason == SA_STOP_CONTEXT_FULL && !tr->answer[0])
        rc = sa_err("context full (upstream %d, aligner %d positions) before anything was answered (use -c to enlarge it)",
                    sa_ctx_n_ctx(e->up), e->al ? sa_ctx_n_ctx(e->al) : 0);
    /* the upstream's text, not the answer: a correction may well complete the cut sentence */
    if (rc == 0 && tr->n_rounds > 0 && tr->stop_reason == SA_STOP_MAX_TOKENS) {
        const char *last = tr->rounds[tr->n_rounds - 1].original;
        tr->unfinished = last && sa_sentence_unfinished(last, strlen(last), p->split);
    }
done:
    tr->stop = sa_stop_name(tr->stop_reason);
    if (!tr->answer) tr->answer = sa_strdup("");
    for (int i = 0; turns && i < n_msgs; i++) sa_buf_free(&turns[i]);
    free(turns);
    free(run.turns);
    sa_buf_free(&sys);
    return rc;
}

/* ---- JSON trace --------------------------------------------------------------------------- */

static void add_str(cJSON *o, const char *k, const char *v) {
    char *c = sa_utf8_clean(v ? v : "");
    cJSON_AddStringToObject(o, k, c);
    free(c);
}

char *sa_align_trace_json(const SaAlignTrace *t, SaAlignMode mode) {
    cJSON *o = cJSON_CreateObject();
    add_str(o, "mode", sa_mode_name(mode));
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
        if (r->annotated) { /* the annotator kind: what became of the sentence, and why */
            add_str(s, "status", sa_ann_status_name((SaAnnStatus)r->al_status));
            if (r->al_eos < 0) cJSON_AddNullToObject(s, "eos");
            else cJSON_AddBoolToObject(s, "eos", r->al_eos);
            add_str(s, "reasoning", r->reasoning);
        }
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
