/* test_engine.c - the engine as a library: the generation routine's statuses and stop callback,
 * the cancel flag, and conversations that reuse the cached turns (src/generate.c, src/aligner.c). */
#include <stdlib.h>
#include <string.h>

#include "../src/aligner.h"
#include "../src/chat.h"
#include "test.h"

static int load(SaModel *m, const char *path) {
    if (sa_model_load(m, path, NULL)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return -1;
    }
    return 0;
}

static int prompt(SaCtx *c, const SaModel *m, const char *text) {
    int32_t *ids = NULL;
    int n = 0, cap = 0;
    if (sa_tok_encode(m->tok, text, strlen(text), 1, 0, &ids, &n, &cap) < 0 || sa_ctx_prompt(c, ids, n)) {
        free(ids);
        return -1;
    }
    free(ids);
    return n;
}

typedef struct {
    int stop_at;    /* return 7 at this token count */
    int cancel_at;  /* set *cancel at this token count */
    int *cancel;
    int calls;
} TokCheck;

static int on_token(void *ctx, int32_t id, const char *piece, size_t n, int n_gen) {
    TokCheck *t = ctx;
    t->calls++;
    if (t->cancel_at && n_gen == t->cancel_at) __atomic_store_n(t->cancel, 1, __ATOMIC_RELAXED);
    return t->stop_at && n_gen == t->stop_at ? 7 : 0;
}

TEST(gen_statuses_stop_and_cancel) {
    SaModel m;
    if (load(&m, "weights/stories260K.salm")) return;
    SaCtxParams cp;
    sa_ctx_default_params(&m, &cp);
    SaCtx *c = sa_ctx_new(&m, &cp);
    SaSampler s;
    SaSamplerParams sp = {.temp = 0, .top_p = 1};
    CHECK(sa_sampler_init(&s, &sp, m.hp.n_vocab) == 0);
    /* the reference: 40 greedy tokens with no callback */
    int32_t ref[40], out[40];
    SaGenStats st;
    CHECK(prompt(c, &m, "Once upon a time") > 0);
    const int pos0 = sa_ctx_pos(c);
    SaGenParams gp = {.cap = 40, .ids = ref};
    CHECK(sa_gen(c, &s, m.tok, &gp, &st) == 0);
    CHECK_EQ_INT(st.status, SA_GEN_MAX_TOKENS);
    CHECK_EQ_INT(st.n, 40);
    /* a stop callback ends the run at its token, with its code; the token is not evaluated */
    sa_ctx_truncate(c, pos0 - 1);
    CHECK(prompt(c, &m, "Once upon a time") > 0);
    int cancel = 0;
    TokCheck tc = {.stop_at = 5, .cancel = &cancel};
    gp = (SaGenParams){.cap = 40, .ids = out, .on_token = on_token, .token_ctx = &tc};
    CHECK(sa_gen(c, &s, m.tok, &gp, &st) == 0);
    CHECK_EQ_INT(st.status, SA_GEN_STOPPED);
    CHECK_EQ_INT(st.stop_code, 7);
    CHECK_EQ_INT(st.n, 5);
    CHECK_EQ_INT(tc.calls, 5);
    CHECK(!memcmp(out, ref, 5 * sizeof(int32_t)));
    CHECK_EQ_INT(sa_ctx_pos(c), pos0 + 4);
    /* the cancel flag, set by anyone between tokens, ends it before the next token */
    sa_ctx_truncate(c, pos0 - 1);
    CHECK(prompt(c, &m, "Once upon a time") > 0);
    tc = (TokCheck){.cancel_at = 3, .cancel = &cancel};
    gp = (SaGenParams){.cap = 40, .ids = out, .on_token = on_token, .token_ctx = &tc, .cancel = &cancel};
    CHECK(sa_gen(c, &s, m.tok, &gp, &st) == 0);
    CHECK_EQ_INT(st.status, SA_GEN_CANCELLED);
    CHECK_EQ_INT(st.n, 3);
    CHECK(!memcmp(out, ref, 3 * sizeof(int32_t)));
    sa_ctx_free(c);
    /* a context with room for the prompt and 6 more tokens */
    cp.n_ctx = pos0 + 6;
    c = sa_ctx_new(&m, &cp);
    CHECK(prompt(c, &m, "Once upon a time") > 0);
    gp = (SaGenParams){.cap = 40, .ids = out};
    CHECK(sa_gen(c, &s, m.tok, &gp, &st) == 0);
    CHECK_EQ_INT(st.status, SA_GEN_CONTEXT_FULL);
    CHECK(st.full);
    CHECK_EQ_INT(st.n, 7); /* 6 evaluated, the 7th sampled from the last logits */
    CHECK(!memcmp(out, ref, 7 * sizeof(int32_t)));
    sa_ctx_free(c);
    sa_sampler_free(&s);
    sa_model_free(&m);
}

TEST(chat_turns_extend_the_first_turn) {
    static const char *names[] = {"plain", "llama2", "llama3", "gemma", "chatml", "mistral"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const SaTemplate *t = sa_chat_template(names[k]);
        SaPrompt one, two;
        const char *turns[] = {"Q1", "A1", "Q2"};
        CHECK(sa_chat_render(t, "S", "Q1", "A1", &one) == 0);
        CHECK(sa_chat_render_turns(t, "S", turns, 3, "", &two) == 0);
        /* the conversation's prompt starts with the first turn's prompt with its answer */
        CHECKF(two.text.len > one.text.len && !memcmp(two.text.data, one.text.data, one.text.len) &&
                   !memcmp(two.mask.data, one.mask.data, one.mask.len) && two.bos == one.bos,
               "%s: %.*s", names[k], (int)two.text.len, two.text.data);
        /* user text stays user text; Q2 appears once, as user text */
        const char *q2 = strstr(two.text.data + one.text.len, "Q2");
        CHECKF(q2 && two.mask.data[q2 - two.text.data] == 0, "%s", names[k]);
        CHECK_EQ_INT(two.mask.len, two.text.len);
        sa_prompt_free(&one);
        sa_prompt_free(&two);
        CHECK(sa_chat_render_turns(t, "S", turns, 2, "", &two) != 0); /* must end with a user turn */
    }
}

static void cancel_on_answer(void *ctx, SaOutKind kind, const char *text, size_t n) {
    if (kind == SA_OUT_ANSWER) __atomic_store_n((int *)ctx, 1, __ATOMIC_RELAXED);
}

TEST(engine_conversation_and_cancel) {
    SaModel up, al;
    if (load(&up, "weights/stories260K.salm") || load(&al, "weights/demo-aligner.salm")) return;
    SaEngine *e = sa_engine_new(&up, &al, 0, SA_F16), *fresh = sa_engine_new(&up, &al, 0, SA_F16);
    CHECK(e && fresh);
    SaAlignParams p;
    sa_align_default_params(&p);
    p.up_sp.temp = p.al_sp.temp = 0;
    p.al_tmpl = sa_aligner_template("plain");
    p.max_tokens = 40;
    p.max_answer_tokens = 40;
    for (int mode = 0; mode < 3; mode++) {
        p.mode = (SaAlignMode)mode;
        sa_engine_reset(e);
        SaAlignTrace t1, t2, t2f;
        SaMessage m1[] = {{SA_ROLE_USER, "Lily had a red ball."}};
        CHECK(sa_align_run_messages(e, m1, 1, &p, &t1) == 0);
        CHECK(t1.answer[0] != 0);
        SaMessage m2[] = {{SA_ROLE_SYSTEM, "ignored by the plain template"},
                          {SA_ROLE_USER, "Lily had a red ball."},
                          {SA_ROLE_ASSISTANT, t1.answer},
                          {SA_ROLE_USER, "Tom wanted to play."}};
        CHECK(sa_align_run_messages(e, m2, 4, &p, &t2) == 0);
        sa_engine_reset(fresh);
        CHECK(sa_align_run_messages(fresh, m2, 4, &p, &t2f) == 0);
        /* the cached conversation gives the same answer as a fresh engine, evaluating only the new
         * part: the first turn's prompt is reused, the new turn is the most that is evaluated */
        CHECK_EQ_STR(t2.answer, t2f.answer);
        CHECK_EQ_STR(t2.question, "Tom wanted to play.");
        const SaRoundTrace *r = &t2.rounds[0], *rf = &t2f.rounds[0];
        CHECK_EQ_INT(r->up_prompt, rf->up_prompt);
        CHECK_EQ_INT(rf->up_reused, 0);
        CHECKF(r->up_reused >= t1.rounds[0].up_prompt, "mode %d: reused %d of %d, turn 1's prompt %d", mode, r->up_reused,
               r->up_prompt, t1.rounds[0].up_prompt);
        CHECK(t2.our_evals < t2f.our_evals);
        sa_align_trace_free(&t1);
        sa_align_trace_free(&t2);
        sa_align_trace_free(&t2f);
        /* cancelled at the first visible byte: the run stops with that status and a prefix of the answer */
        int cancel = 0;
        SaAlignParams pc = p;
        pc.cancel = &cancel;
        pc.out = cancel_on_answer;
        pc.out_ctx = &cancel;
        SaAlignTrace tc, tf;
        sa_engine_reset(e);
        CHECK(sa_align_run_messages(e, m1, 1, &pc, &tc) == 0);
        sa_engine_reset(e);
        CHECK(sa_align_run_messages(e, m1, 1, &p, &tf) == 0);
        CHECKF(tc.stop_reason == SA_STOP_CANCELLED, "mode %d: stop %s", mode, tc.stop);
        CHECKF(strlen(tc.answer) <= strlen(tf.answer) && !strncmp(tc.answer, tf.answer, strlen(tc.answer)),
               "mode %d: '%s' is not a prefix of '%s'", mode, tc.answer, tf.answer);
        CHECK(strlen(tc.answer) < strlen(tf.answer) || mode == SA_MODE_ALIGNER);
        sa_align_trace_free(&tc);
        sa_align_trace_free(&tf);
    }
    /* conversations that cannot be rendered are refused with a message */
    SaAlignTrace t;
    SaMessage bad[] = {{SA_ROLE_ASSISTANT, "hi"}, {SA_ROLE_USER, "q"}};
    CHECK(sa_align_run_messages(e, bad, 2, &p, &t) != 0 && strstr(sa_errmsg(), "messages"));
    sa_align_trace_free(&t);
    CHECK(sa_align_run_messages(e, bad, 1, &p, &t) != 0 && strstr(sa_errmsg(), "messages"));
    sa_align_trace_free(&t);
    sa_engine_free(e);
    sa_engine_free(fresh);
    sa_model_free(&up);
    sa_model_free(&al);
}

TEST(engine_long_prompt_in_cancellable_steps) {
    SaModel up, al;
    if (load(&up, "weights/stories260K.salm") || load(&al, "weights/demo-aligner.salm")) return;
    SaEngine *e = sa_engine_new(&up, &al, 2048, SA_F16);
    CHECK(e != NULL);
    SaAlignParams p;
    sa_align_default_params(&p);
    p.up_sp.temp = p.al_sp.temp = 0;
    p.al_tmpl = sa_aligner_template("plain");
    p.max_tokens = 30;
    p.mode = SA_MODE_NONE;
    /* a question of ~1,300 tokens: read in 512-token steps when the run can be cancelled */
    SaBuf q = {0};
    for (int i = 0; i < 130; i++) sa_buf_append(&q, "Tom saw a big dog. ", 19);
    sa_buf_append(&q, "", 0);
    SaMessage m = {SA_ROLE_USER, q.data};
    SaAlignTrace plain, stepped, none;
    CHECK(sa_align_run_messages(e, &m, 1, &p, &plain) == 0);
    CHECK(plain.rounds[0].up_prompt > 1024);
    int cancel = 0;
    SaAlignParams pc = p;
    pc.cancel = &cancel;
    sa_engine_reset(e);
    CHECK(sa_align_run_messages(e, &m, 1, &pc, &stepped) == 0);
    /* the same answer and the same work, the counts included */
    CHECK_EQ_STR(stepped.answer, plain.answer);
    CHECK_EQ_INT(stepped.rounds[0].up_evaluated, plain.rounds[0].up_evaluated);
    CHECK_EQ_INT(stepped.our_evals, plain.our_evals);
    /* cancelled before the prompt: nothing is evaluated, the status says so */
    cancel = 1;
    sa_engine_reset(e);
    CHECK(sa_align_run_messages(e, &m, 1, &pc, &none) == 0);
    CHECK_EQ_INT(none.stop_reason, SA_STOP_CANCELLED);
    CHECK_EQ_INT(none.our_evals, 0);
    CHECK_EQ_STR(none.answer, "");
    sa_align_trace_free(&plain);
    sa_align_trace_free(&stepped);
    sa_align_trace_free(&none);
    sa_buf_free(&q);
    sa_engine_free(e);
    sa_model_free(&up);
    sa_model_free(&al);
}
