/* test_stream_naive.c - the Stream Aligner loop against a naive loop (#19 item 4).
 *
 * The reference below runs the stream schedule the way the paper's code does: every round it
 * renders both prompts from the question and the corrections so far, evaluates each one from
 * scratch in a fresh context (nothing reused), and decodes plainly (no speculation), greedily. The
 * production loop (`salign align --json`, and the engine in-process for its caches) reuses every KV
 * cache prefix and speculates that the aligner copies the sentence. With greedy sampling both must
 * give the same answer, the same per-round originals and corrections, and the production loop must
 * evaluate, per round and per model, exactly (prompt tokens - the prefix its cache shares with the
 * prompt), where the reference predicts the cache's contents on its own (the previous prompt plus
 * the tokens generated and fed back). After every round the upstream's cache must hold the
 * tokenization of template(question, corrections so far) followed by this round's sentence only:
 * nothing of an earlier original sentence survives the rollback. `--no-speculate` must give the
 * same trace as the default, speculation counters and timings aside.
 *
 * Models: the bundled stories260K (upstream) and demo aligner (tools/demo.sh), which rewrites
 * unkind words and deletes verbatim repeats, so corrections differ from the originals (rewrites,
 * deletions) and speculation meets rejections. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/aligner.h"
#include "../src/common.h"
#include "test.h"

#define UP_PATH "weights/stories260K.salm"
#define AL_PATH "weights/demo-aligner.salm"
#define MAX_ROUNDS 64

typedef struct {
    const char *question; /* no single quotes: it goes into a shell command */
    float freq_penalty;   /* both models */
    int max_sentences;
    int max_tokens;       /* 0: no cap */
    const char *splitter;
} Cfg;

/* Story openings that give rewrites (sad -> happy, scared -> brave, with speculation rejecting
 * drafted tokens), deletions of repeated sentences, both splitters, the align default penalty
 * (1.2) and the demo's (0), and a run cut by --max-tokens mid-sentence. */
static const Cfg g_cfgs[] = {
    {"Once upon a time", 0.0f, 14, 0, "reference"},
    {"Jill loved to draw pictures.", 0.0f, 13, 0, "reference"},
    {"Tom was sad.", 1.2f, 12, 0, "reference"},
    {"Lily was scared of the dark.", 1.2f, 10, 0, "smart"},
    {"Once upon a time", 1.2f, 40, 150, "reference"},
};

typedef struct {
    char *original, *correction;
    int up_prompt, up_reused, up_decoded, up_gen_evaluated;
    int al_prompt, al_reused, al_decoded, al_gen_evaluated, al_truncated;
    /* what the production caches must hold after the round: the upstream's whole cache; the
     * aligner's prompt and its generated tokens (speculation may leave the last one evaluated) */
    int32_t *up_cache;
    int n_up_cache;
    int32_t *al_ids; /* prompt ids, then the generated ids */
    int n_al_prompt, n_al_gen;
} RefRound;

typedef struct {
    RefRound r[MAX_ROUNDS];
    int n;
    char *answer;
    const char *stop;
    int unfinished;
    float min_margin; /* the smallest gap between the chosen and the next logit over all choices */
} RefRun;

static void ref_free(RefRun *rr) {
    for (int i = 0; i < rr->n; i++) {
        free(rr->r[i].original);
        free(rr->r[i].correction);
        free(rr->r[i].up_cache);
        free(rr->r[i].al_ids);
    }
    free(rr->answer);
    memset(rr, 0, sizeof *rr);
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static char *trimmed(const char *s, size_t n) {
    size_t a = 0;
    while (a < n && is_ws(s[a])) a++;
    while (n > a && is_ws(s[n - 1])) n--;
    return sa_strndup(s + a, n - a);
}

/* Greedy choice with the frequency penalty over the tokens generated so far this generation. */
static int greedy(const float *logits, int n_vocab, const int *counts, float pen, float *min_margin) {
    int best = -1;
    float bv = -INFINITY, second = -INFINITY;
    for (int i = 0; i < n_vocab; i++) {
        const float v = counts[i] ? logits[i] - pen * (float)counts[i] : logits[i];
        if (!isfinite(v)) continue;
        if (best < 0 || v > bv) {
            second = bv;
            best = i;
            bv = v;
        } else if (v > second) {
            second = v;
        }
    }
    if (best >= 0 && bv - second < *min_margin) *min_margin = bv - second;
    return best;
}

static int append_ids(int32_t **ids, int *n, int *cap, const int32_t *add, int k) {
    if (*n + k > *cap) {
        *cap = (*n + k) * 2 + 16;
        int32_t *p = realloc(*ids, (size_t)*cap * sizeof(int32_t));
        if (!p) return -1;
        *ids = p;
    }
    memcpy(*ids + *n, add, (size_t)k * sizeof(int32_t));
    *n += k;
    return 0;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* A fresh context holding exactly `ids`, evaluated as one batch from position 0. */
static SaCtx *fresh_ctx(const SaModel *m, const int32_t *ids, int n) {
    SaCtxParams cp;
    sa_ctx_default_params(m, &cp);
    if (n >= cp.n_ctx) {
        test_fail(__FILE__, __LINE__, "the naive loop's prompt (%d tokens) does not fit %d positions: pick a shorter run", n,
                  cp.n_ctx);
        return NULL;
    }
    SaCtx *c = sa_ctx_new(m, &cp);
    if (c && sa_ctx_eval(c, ids, n, 0)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        sa_ctx_free(c);
        return NULL;
    }
    return c;
}

/* The naive loop. Returns 0, or -1 after recording a failure. */
static int ref_run(const SaModel *up, const SaModel *al, const Cfg *cfg, RefRun *rr) {
    memset(rr, 0, sizeof *rr);
    rr->min_margin = INFINITY;
    rr->stop = "max sentences";
    const SaSplitMode split = (SaSplitMode)sa_split_mode_from_name(cfg->splitter);
    const SaTemplate *up_tmpl = sa_chat_detect(up->chat_template);
    SaAlignParams defaults; /* the max-sentence-tokens cap and the system prompt as align has them */
    sa_align_default_params(&defaults);
    int *counts = calloc((size_t)SA_MAX(up->hp.n_vocab, al->hp.n_vocab), sizeof(int));
    SaBuf prefix = {0}, gen = {0}, piece = {0};
    sa_buf_append(&prefix, "", 0);
    int32_t *up_cache = NULL, *p_ids = NULL, *a_ids = NULL, *draft = NULL;
    int n_up_cache = 0, cap_up_cache = 0, n_p = 0, cap_p = 0, n_a = 0, cap_a = 0, n_draft = 0, cap_draft = 0;
    int32_t *al_cache = NULL;
    int n_al_cache = 0, cap_al_cache = 0;
    int rc = -1, total_up = 0;
    for (int round = 0; round < cfg->max_sentences; round++) {
        if (round >= MAX_ROUNDS) { test_fail(__FILE__, __LINE__, "more than %d rounds", MAX_ROUNDS); goto out; }
        RefRound *r = &rr->r[rr->n];
        memset(r, 0, sizeof *r);
        /* 1. the upstream's prompt, rendered and evaluated from scratch */
        SaPrompt pr;
        n_p = 0;
        if (sa_chat_render(up_tmpl, defaults.system, cfg->question, prefix.data, &pr) ||
            sa_prompt_tokenize(&pr, up->tok, &p_ids, &n_p, &cap_p)) {
            sa_prompt_free(&pr);
            test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
            goto out;
        }
        sa_prompt_free(&pr);
        /* what the production cache shares with this prompt (at least one token is evaluated: its logits) */
        r->up_prompt = n_p;
        r->up_reused = SA_MIN(common_prefix(up_cache, n_up_cache, p_ids, n_p), n_p - 1);
        n_up_cache = 0;
        if (append_ids(&up_cache, &n_up_cache, &cap_up_cache, p_ids, n_p)) goto out;
        SaCtx *c = fresh_ctx(up, p_ids, n_p);
        if (!c) goto out;
        memset(counts, 0, (size_t)up->hp.n_vocab * sizeof(int));
        gen.len = 0;
        int prev = p_ids[n_p - 1], found = 0, ended = 0, final = 0;
        SaSentence sent;
        for (;;) {
            const int id = greedy(sa_ctx_logits(c, -1), up->hp.n_vocab, counts, cfg->freq_penalty, &rr->min_margin);
            if (sa_tok_is_eog(up->tok, id)) {
                final = ended = 1;
                rr->stop = "end of turn";
                break;
            }
            counts[id]++;
            r->up_decoded++;
            total_up++;
            piece.len = 0;
            sa_tok_decode(up->tok, prev, id, 0, &piece);
            sa_buf_append(&gen, piece.data ? piece.data : "", piece.len);
            prev = id;
            if (sa_sentence_find(gen.data, gen.len, 0, split, &sent)) {
                found = 1;
                break;
            }
            if (r->up_decoded >= defaults.max_sentence_tokens) {
                final = 1;
                break;
            }
            if (cfg->max_tokens > 0 && total_up >= cfg->max_tokens) {
                final = ended = 1;
                rr->stop = "max tokens";
                break;
            }
            if (sa_ctx_pos(c) >= sa_ctx_n_ctx(c)) {
                test_fail(__FILE__, __LINE__, "the naive loop reached the end of the upstream's context: pick a shorter run");
                sa_ctx_free(c);
                goto out;
            }
            if (sa_ctx_eval(c, (const int32_t *)&id, 1, 0)) { test_fail(__FILE__, __LINE__, "%s", sa_errmsg()); sa_ctx_free(c); goto out; }
            const int32_t t = id;
            if (append_ids(&up_cache, &n_up_cache, &cap_up_cache, &t, 1)) { sa_ctx_free(c); goto out; }
            r->up_gen_evaluated++;
        }
        sa_ctx_free(c);
        if (final) {
            found = sa_sentence_find(gen.data ? gen.data : "", gen.len, 1, split, &sent);
            /* only the first sentence is used: with text after it the upstream is asked again */
            if (found && ended && !strcmp(rr->stop, "end of turn")) {
                size_t rest = sent.end;
                while (rest < gen.len && is_ws(gen.data[rest])) rest++;
                if (rest < gen.len) {
                    ended = 0;
                    rr->stop = "max sentences";
                }
            }
        }
        if (!found) {
            if (!ended) rr->stop = "empty sentence";
            break;
        }
        rr->n++;
        r->original = sa_strndup(gen.data + sent.start, sent.end - sent.start);
        r->up_cache = malloc((size_t)n_up_cache * sizeof(int32_t));
        memcpy(r->up_cache, up_cache, (size_t)n_up_cache * sizeof(int32_t));
        r->n_up_cache = n_up_cache;

        /* 2. the aligner's prompt, rendered and evaluated from scratch; plain greedy decoding */
        SaTemplateVars v = {.question = cfg->question, .prefix = prefix.data, .last = r->original};
        n_a = 0;
        if (sa_template_render(al->aligner_template, &v, &pr) || sa_prompt_tokenize(&pr, al->tok, &a_ids, &n_a, &cap_a)) {
            sa_prompt_free(&pr);
            test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
            goto out;
        }
        sa_prompt_free(&pr);
        r->al_prompt = n_a;
        r->al_reused = SA_MIN(common_prefix(al_cache, n_al_cache, a_ids, n_a), n_a - 1);
        n_al_cache = 0;
        if (append_ids(&al_cache, &n_al_cache, &cap_al_cache, a_ids, n_a)) goto out;
        /* the correction's token cap: twice the sentence's tokens in the aligner's vocabulary + 32 */
        n_draft = 0;
        if (sa_tok_encode(al->tok, r->original, strlen(r->original), 0, 0, &draft, &n_draft, &cap_draft) < 0) goto out;
        const int cap = 2 * n_draft + 32;
        if (!(c = fresh_ctx(al, a_ids, n_a))) goto out;
        memset(counts, 0, (size_t)al->hp.n_vocab * sizeof(int));
        gen.len = 0;
        prev = a_ids[n_a - 1];
        int eog = 0;
        while (r->al_decoded < cap) {
            const int id = greedy(sa_ctx_logits(c, -1), al->hp.n_vocab, counts, cfg->freq_penalty, &rr->min_margin);
            if (sa_tok_is_eog(al->tok, id)) { eog = 1; break; }
            counts[id]++;
            const int32_t t = id;
            if (append_ids(&al_cache, &n_al_cache, &cap_al_cache, &t, 1)) { sa_ctx_free(c); goto out; }
            r->al_decoded++;
            piece.len = 0;
            sa_tok_decode(al->tok, prev, id, 0, &piece);
            sa_buf_append(&gen, piece.data ? piece.data : "", piece.len);
            prev = id;
            if (r->al_decoded == cap) break;
            if (sa_ctx_eval(c, &t, 1, 0)) { test_fail(__FILE__, __LINE__, "%s", sa_errmsg()); sa_ctx_free(c); goto out; }
            r->al_gen_evaluated++;
        }
        sa_ctx_free(c);
        r->al_truncated = !eog && r->al_decoded >= cap;
        r->n_al_prompt = n_a;
        r->n_al_gen = r->al_decoded;
        r->al_ids = malloc((size_t)n_al_cache * sizeof(int32_t));
        memcpy(r->al_ids, al_cache, (size_t)n_al_cache * sizeof(int32_t));
        /* the aligner's cache holds the prompt and the generated tokens fed back */
        n_al_cache = n_a + r->al_gen_evaluated;
        r->correction = trimmed(gen.data ? gen.data : "", gen.len);

        /* 3. the correction replaces the sentence (an empty one deletes it) */
        if (r->correction[0]) {
            if (prefix.len) sa_buf_append(&prefix, " ", 1);
            sa_buf_append(&prefix, r->correction, strlen(r->correction));
        }
        if (ended) break;
    }
    rr->answer = sa_strdup(prefix.data);
    if (!strcmp(rr->stop, "max tokens") && rr->n > 0) {
        const char *last = rr->r[rr->n - 1].original;
        rr->unfinished = sa_sentence_unfinished(last, strlen(last), split);
    }
    rc = 0;
out:
    free(counts);
    sa_buf_free(&prefix);
    sa_buf_free(&gen);
    sa_buf_free(&piece);
    free(up_cache);
    free(al_cache);
    free(p_ids);
    free(a_ids);
    free(draft);
    return rc;
}

/* ---- the production loop through the CLI ---- */

static cJSON *cli_trace(const Cfg *cfg, int speculate) {
    char cmd[1024], mt[32] = "";
    if (cfg->max_tokens > 0) snprintf(mt, sizeof mt, " --max-tokens %d", cfg->max_tokens);
    snprintf(cmd, sizeof cmd,
             "bin/salign align --upstream " UP_PATH " --aligner " AL_PATH " -p '%s' --temp 0 --frequency-penalty %g "
             "--max-sentences %d%s --splitter %s --seed 7 -t 1 --json%s 2>&1 >%s",
             cfg->question, cfg->freq_penalty, cfg->max_sentences, mt, cfg->splitter, speculate ? "" : " --no-speculate",
             test_tmp("align.json"));
    int st;
    char *err = test_run(cmd, &st);
    char *js = sa_read_file(test_tmp("align.json"), NULL);
    cJSON *o = st == 0 && js ? cJSON_Parse(js) : NULL;
    CHECKF(o != NULL, "%s: exit %d, %s", cmd, st, err);
    free(err);
    free(js);
    return o;
}

static int jint(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valueint : cJSON_IsBool(v) ? cJSON_IsTrue(v) : -999999;
}
static const char *jstr(const cJSON *o, const char *k) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
    return s ? s : "(missing)";
}

#define CMP_INT(what, got, want)                                                                                   \
    CHECKF((got) == (want), "%s, %s, round %d: %s %d, the naive loop's %d", cfg->question, label, i, what, got, want)

/* Compare one CLI trace with the naive loop's run. */
static void check_trace(const Cfg *cfg, const char *label, const cJSON *o, const RefRun *rr, int speculate) {
    CHECKF(!strcmp(jstr(o, "answer"), rr->answer), "%s, %s: answer\n  \"%s\"\n  the naive loop's\n  \"%s\"", cfg->question,
           label, jstr(o, "answer"), rr->answer);
    CHECKF(!strcmp(jstr(o, "stop"), rr->stop), "%s, %s: stop \"%s\", the naive loop's \"%s\"", cfg->question, label,
           jstr(o, "stop"), rr->stop);
    CHECKF(jint(o, "unfinished") == rr->unfinished, "%s, %s: unfinished %d, the naive loop's %d", cfg->question, label,
           jint(o, "unfinished"), rr->unfinished);
    const cJSON *ss = cJSON_GetObjectItem(o, "sentences");
    CHECKF(cJSON_GetArraySize(ss) == rr->n, "%s, %s: %d rounds, the naive loop's %d", cfg->question, label,
           cJSON_GetArraySize(ss), rr->n);
    long long evals = 0;
    for (int i = 0; i < rr->n && i < cJSON_GetArraySize(ss); i++) {
        const cJSON *s = cJSON_GetArrayItem(ss, i);
        const RefRound *r = &rr->r[i];
        CHECKF(!strcmp(jstr(s, "original"), r->original), "%s, %s, round %d: original \"%s\", the naive loop's \"%s\"",
               cfg->question, label, i, jstr(s, "original"), r->original);
        CHECKF(!strcmp(jstr(s, "correction"), r->correction), "%s, %s, round %d: correction \"%s\", the naive loop's \"%s\"",
               cfg->question, label, i, jstr(s, "correction"), r->correction);
        CMP_INT("upstream prompt tokens", jint(s, "upstream_prompt_tokens"), r->up_prompt);
        CMP_INT("upstream prompt tokens reused", jint(s, "upstream_prompt_reused"), r->up_reused);
        CMP_INT("upstream prompt tokens evaluated", jint(s, "upstream_prompt_evaluated"), r->up_prompt - r->up_reused);
        CMP_INT("upstream tokens decoded", jint(s, "upstream_decoded"), r->up_decoded);
        CMP_INT("upstream generated tokens evaluated", jint(s, "upstream_generated_evaluated"), r->up_gen_evaluated);
        CMP_INT("aligner prompt tokens", jint(s, "aligner_prompt_tokens"), r->al_prompt);
        CMP_INT("aligner prompt tokens reused", jint(s, "aligner_prompt_reused"), r->al_reused);
        CMP_INT("aligner prompt tokens evaluated", jint(s, "aligner_prompt_evaluated"), r->al_prompt - r->al_reused);
        CMP_INT("aligner tokens decoded", jint(s, "aligner_decoded"), r->al_decoded);
        CMP_INT("correction truncated", jint(s, "correction_truncated"), r->al_truncated);
        if (!speculate) {
            CMP_INT("aligner generated tokens evaluated", jint(s, "aligner_generated_evaluated"), r->al_gen_evaluated);
            CMP_INT("tokens drafted", jint(s, "drafted"), 0);
        }
        evals += (r->up_prompt - r->up_reused) + r->up_gen_evaluated + (r->al_prompt - r->al_reused);
        evals += speculate ? jint(s, "aligner_generated_evaluated") : r->al_gen_evaluated;
    }
    /* the run's total is the rounds' sum: nothing is evaluated outside them */
    const cJSON *te = cJSON_GetObjectItem(o, "token_evaluations");
    CHECKF(cJSON_IsNumber(te) && (long long)te->valuedouble == evals, "%s, %s: token_evaluations %.0f, the rounds' sum %lld",
           cfg->question, label, cJSON_IsNumber(te) ? te->valuedouble : -1.0, evals);
}

/* The trace without what legitimately differs between speculating and not (timings, draft counts). */
static char *comparable(const cJSON *o) {
    cJSON *c = cJSON_Duplicate(o, 1);
    static const char *top[] = {"first_visible_ms", "total_ms", "token_evaluations"};
    static const char *per[] = {"upstream_ms", "aligner_ms", "drafted", "accepted", "rejected", "aligner_generated_evaluated"};
    for (size_t k = 0; k < SA_ARRAY_LEN(top); k++) cJSON_DeleteItemFromObject(c, top[k]);
    cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(c, "sentences")) {
        for (size_t k = 0; k < SA_ARRAY_LEN(per); k++) cJSON_DeleteItemFromObject(s, per[k]);
    }
    char *js = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return js;
}

/* ---- the production loop in-process: its caches after every round ---- */

typedef struct {
    const Cfg *cfg;
    const RefRun *rr;
    int rounds, bad;
} CacheCheck;

static void check_caches(void *ctx, SaEngine *e, int round) {
    CacheCheck *cc = ctx;
    const Cfg *cfg = cc->cfg;
    cc->rounds = round + 1;
    if (round >= cc->rr->n) { cc->bad++; return; }
    const RefRound *r = &cc->rr->r[round];
    const SaKv *ku = sa_ctx_kv(sa_engine_ctx(e, 0)), *ka = sa_ctx_kv(sa_engine_ctx(e, 1));
    /* upstream: tokenize(template(question, corrections so far)) and this round's sentence tokens
     * fed back, nothing else */
    const int ok_up = ku->n == r->n_up_cache && !memcmp(ku->tokens, r->up_cache, (size_t)r->n_up_cache * sizeof(int32_t));
    if (!ok_up) {
        const int at = common_prefix(ku->tokens, ku->n, r->up_cache, r->n_up_cache);
        CHECKF(0, "%s, round %d: the upstream's cache holds %d tokens, the naive loop's prompt (%d tokens: the question and "
                  "the corrections so far) + sentence %d; first difference at %d",
               cfg->question, round, ku->n, r->up_prompt, r->n_up_cache, at);
        cc->bad++;
    }
    /* aligner: its prompt and the correction's tokens (the last one fed back or not) */
    const int m = ka->n - r->n_al_prompt;
    const int ok_al = (m == r->al_gen_evaluated || m == r->n_al_gen) &&
                      !memcmp(ka->tokens, r->al_ids, (size_t)ka->n * sizeof(int32_t));
    if (!ok_al) {
        CHECKF(0, "%s, round %d: the aligner's cache holds %d tokens, the naive loop's prompt %d + correction %d; first "
                  "difference at %d",
               cfg->question, round, ka->n, r->n_al_prompt, r->n_al_gen,
               common_prefix(ka->tokens, ka->n, r->al_ids, r->n_al_prompt + r->n_al_gen));
        cc->bad++;
    }
}

static void inprocess_check(SaModel *up, SaModel *al, const Cfg *cfg, const RefRun *rr) {
    SaEngine *e = sa_engine_new(up, al, 0, SA_F16);
    if (!e) { CHECKF(0, "%s", sa_errmsg()); return; }
    SaAlignParams p;
    sa_align_default_params(&p);
    p.up_sp.temp = p.al_sp.temp = 0;
    p.up_sp.freq_penalty = p.al_sp.freq_penalty = cfg->freq_penalty;
    p.up_tmpl = sa_chat_detect(up->chat_template);
    p.al_tmpl = al->aligner_template;
    p.split = (SaSplitMode)sa_split_mode_from_name(cfg->splitter);
    p.max_sentences = cfg->max_sentences;
    p.max_tokens = cfg->max_tokens;
    CacheCheck cc = {cfg, rr, 0, 0};
    p.on_round = check_caches;
    p.round_ctx = &cc;
    SaAlignTrace tr;
    CHECKF(sa_align_run(e, cfg->question, &p, &tr) == 0, "%s", sa_errmsg());
    CHECKF(cc.rounds == rr->n, "%s: in-process %d rounds, the naive loop's %d", cfg->question, cc.rounds, rr->n);
    CHECKF(tr.answer && !strcmp(tr.answer, rr->answer), "%s: in-process answer differs from the naive loop's", cfg->question);
    sa_align_trace_free(&tr);
    sa_engine_free(e);
}

TEST(stream_loop_matches_naive_loop) {
    SaModel up, al;
    if (sa_model_load(&up, UP_PATH, NULL)) { CHECKF(0, "%s", sa_errmsg()); return; }
    if (sa_model_load(&al, AL_PATH, NULL)) { CHECKF(0, "%s", sa_errmsg()); sa_model_free(&up); return; }
    CHECKF(al.aligner_template != NULL, AL_PATH " carries no aligner template");
    int rewritten = 0, deleted = 0, rejected = 0, reused_up = 0, reused_al = 0;
    float min_margin = INFINITY;
    for (size_t k = 0; k < SA_ARRAY_LEN(g_cfgs) && al.aligner_template; k++) {
        const Cfg *cfg = &g_cfgs[k];
        RefRun rr;
        if (ref_run(&up, &al, cfg, &rr)) { ref_free(&rr); continue; }
        min_margin = SA_MIN(min_margin, rr.min_margin);
        CHECKF(rr.n >= 3, "%s: only %d rounds", cfg->question, rr.n);
        for (int i = 0; i < rr.n; i++) {
            rewritten += rr.r[i].correction[0] && strcmp(rr.r[i].correction, rr.r[i].original);
            deleted += !rr.r[i].correction[0];
            reused_up += i > 0 && rr.r[i].up_reused > 0;
            reused_al += i > 0 && rr.r[i].al_reused > 0;
        }
        cJSON *spec = cli_trace(cfg, 1), *plain = cli_trace(cfg, 0);
        if (spec) check_trace(cfg, "align", spec, &rr, 1);
        if (plain) check_trace(cfg, "align --no-speculate", plain, &rr, 0);
        if (spec && plain) {
            char *a = comparable(spec), *b = comparable(plain);
            CHECKF(!strcmp(a, b), "%s: align and align --no-speculate traces differ:\n  %s\n  %s", cfg->question, a, b);
            free(a);
            free(b);
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItem(spec, "sentences")) rejected += jint(s, "rejected");
        }
        cJSON_Delete(spec);
        cJSON_Delete(plain);
        inprocess_check(&up, &al, cfg, &rr);
        ref_free(&rr);
    }
    /* the runs exercise what the comparison is about: rewrites, deletions, rejected drafts, reuse */
    CHECKF(rewritten >= 2 && deleted >= 2 && rejected >= 2, "rewrites %d, deletions %d, rejected draft tokens %d", rewritten,
           deleted, rejected);
    CHECKF(reused_up > 10 && reused_al > 10, "rounds reusing the upstream's cache %d, the aligner's %d", reused_up, reused_al);
    printf("    naive loop: %d rewrites, %d deletions, %d rejected draft tokens; smallest greedy margin %.3g\n", rewritten,
           deleted, rejected, min_margin);
    sa_model_free(&up);
    sa_model_free(&al);
}
