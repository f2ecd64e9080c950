/* judge_score.h - a score model as the judge (salign judge --judge-score): PKU-Alignment's beaver
 * reward and cost models (safe-rlhf's LlamaForScore; converted by salign-quantize, hp.score_head in
 * weights/FORMAT.md) give each (question, answer) one scalar, read at the last token.
 *
 * What the score model sees is what it was trained on, no prompt of ours: safe-rlhf's conversation
 * template, "BEGINNING OF CONVERSATION: USER: {question} ASSISTANT:{answer}" (its PROMPT_BEGIN,
 * PROMPT_USER, PROMPT_ASSISTANT, with no space after "ASSISTANT:"), tokenized as one text with the
 * tokenizer's BOS, then the EOS token: safe-rlhf's preference datasets score prompt + answer +
 * eos_token, and the score of the last token (the EOS) is the end score. The question and answer are
 * text: "</s>" inside them stays text (safe-rlhf's tokenizer would make it the EOS token). A reward
 * model's score is higher for a more helpful answer; a cost model's is higher for a more harmful one
 * (beaver's cost > 0: judged unsafe). */
#ifndef SALIGN_JUDGE_SCORE_H
#define SALIGN_JUDGE_SCORE_H

#include "context.h"
#include "model.h"

typedef struct {
    SaModel m;
    int have_m;
    SaCtx *c;
    int32_t *ids;
    int n_ids, cap_ids;
} SaScorer;

/* Load a score model and make its context (n_ctx 0: the model's default). A language model is refused. */
int sa_scorer_open(SaScorer *s, const char *path, int load_mode, int n_ctx, SaDtype kv_type);
void sa_scorer_close(SaScorer *s);

/* The conversation text a score model is given (appended to out). */
int sa_score_conversation(const char *question, const char *answer, SaBuf *out);

/* The score of an answer to a question: the conversation's tokens (BOS, the text, EOS; left in s->ids)
 * evaluated from an empty cache, every time, so a score does not depend on what was scored before.
 * 0, or -1 + sa_err (a conversation longer than the context). */
int sa_scorer_score(SaScorer *s, const char *question, const char *answer, double *score);

#endif
