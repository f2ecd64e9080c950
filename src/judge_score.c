/* judge_score.c - a score model as the judge (see judge_score.h). */
#include "judge_score.h"

#include <stdlib.h>
#include <string.h>

#include "engine_opts.h"

int sa_scorer_open(SaScorer *s, const char *path, int load_mode, int n_ctx, SaDtype kv_type) {
    memset(s, 0, sizeof *s);
    if (sa_load_model_logged(path, load_mode, &s->m)) return -1;
    s->have_m = 1;
    SaCtxParams cp;
    sa_ctx_default_params(&s->m, &cp);
    if (n_ctx > 0) cp.n_ctx = n_ctx;
    cp.kv_type = kv_type;
    cp.score = 1; /* refuses a language model, naming the file */
    if (!(s->c = sa_ctx_new(&s->m, &cp))) return sa_err_prefix("--judge-score: ");
    if (sa_tok_spec(s->m.tok)->eos_id < 0)
        return sa_err("--judge-score: %s: the tokenizer has no EOS token (the score is read at the EOS)", path);
    return 0;
}

void sa_scorer_close(SaScorer *s) {
    sa_ctx_free(s->c);
    free(s->ids);
    if (s->have_m) sa_model_free(&s->m);
    memset(s, 0, sizeof *s);
}

int sa_score_conversation(const char *question, const char *answer, SaBuf *out) {
    return sa_buf_printf(out, "BEGINNING OF CONVERSATION: USER: %s ASSISTANT:%s", question, answer);
}

int sa_scorer_score(SaScorer *s, const char *question, const char *answer, double *score) {
    SaBuf text = {0};
    if (sa_score_conversation(question, answer, &text)) return -1;
    const SaTokSpec *spec = sa_tok_spec(s->m.tok);
    s->n_ids = 0;
    int rc = sa_tok_encode(s->m.tok, text.data, text.len, spec->add_bos, 0, &s->ids, &s->n_ids, &s->cap_ids) < 0;
    sa_buf_free(&text);
    if (rc) return -1;
    if (s->n_ids == s->cap_ids) {
        int32_t *p = sa_realloc(s->ids, (size_t)(s->cap_ids + 1) * sizeof *p);
        if (!p) return -1;
        s->ids = p;
        s->cap_ids++;
    }
    s->ids[s->n_ids++] = spec->eos_id;
    const int n_ctx = sa_ctx_n_ctx(s->c);
    if (s->n_ids > n_ctx)
        return sa_err("the conversation has %d tokens, more than the score model's context of %d positions (-c enlarges it)",
                      s->n_ids, n_ctx);
    sa_ctx_truncate(s->c, 0);
    if (sa_ctx_prompt(s->c, s->ids, s->n_ids)) return -1;
    *score = sa_ctx_score(s->c, -1);
    return 0;
}
