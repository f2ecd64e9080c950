/* judge.h - salign judge: the reference's pairwise judge (judge_protocol.h) on a local model, and the
 * math answer check (mathcheck.h), over the results of salign eval.
 *
 *   salign judge --judge J.salm --in RESULTS.jsonl --out JUDGED.jsonl --tasks safety,utility[,math]
 *                [--pairs stream:none,aligner:none] [--swap] [--verdict-only] [--math-judge] [--shard I/N]
 *                [--resume|--no-resume] [--limit N] [--solution-field NAME] [--max-tokens N]
 *                [--chat-template NAME] [-t N] [-c N] [--kv-type T] [--mmap] [--no-hugepages]
 *                [--temp T] [--top-k K] [--top-p P] [--frequency-penalty F] [--seed S]
 *
 * One line per (id, task, pair, order) - math: per (id, mode), and with --math-judge one more per
 * (id, mode) with task "math_judge" - in JUDGED, written with one write()
 * and fsync'ed (results_file.h): resumable after kill -9, shardable by record (--shard I/N takes the
 * records whose index among the results' ids is I mod N). Each judgement starts from the same cache
 * state (the task's fixed prompt prefix, evaluated alone) with a seed derived from --seed and the line's
 * key, so a resumed or sharded run writes what an uninterrupted one writes. */
#ifndef SALIGN_JUDGE_H
#define SALIGN_JUDGE_H

#include "chat.h"
#include "context.h"
#include "judge_protocol.h"

/* The judge's chat prompt of one comparison: the task's system prompt and its user template filled
 * with the question and the answers in positions A and B, in the judge model's chat template
 * (plain: the system prompt, a blank line, the user message), followed by `prefix` as the start of the
 * judge's answer. user (optional) receives the user message alone. 0 or -1 + sa_err. */
int sa_judge_render(const SaJudgeTask *t, const SaTemplate *tmpl, const char *question, const char *response_a,
                    const char *response_b, const char *prefix, SaPrompt *out, SaBuf *user);

/* The math judge's chat prompt (--math-judge; salign's own prompt, see judge_protocol.h) of one answer
 * against the record's solution. 0 or -1 + sa_err. */
int sa_judge_math_render(const SaTemplate *tmpl, const char *question, const char *solution, const char *answer,
                         SaPrompt *out, SaBuf *user);

/* The template a judge uses: --chat-template NAME, else the model's own (plain keeps the system prompt). */
const SaTemplate *sa_judge_template(const char *name, const char *model_chat_template);

int sa_cmd_judge(int argc, char **argv);

#endif
