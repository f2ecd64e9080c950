/* judge_math_prompt.c - the prompt `salign judge --tasks math --math-judge` gives the judge model.
 *
 * THIS IS SALIGN'S OWN PROMPT, NOT THE REFERENCE'S. The reference (Stream Aligner's evaluation) also
 * asked a model to judge each math answer alone against the dataset's `solution` and read the first
 * [[true]] / [[false]] of its reply, but it never published the prompt it used; judge-prompts.json
 * has only the safety and utility prompts. So numbers from this prompt are salign's, comparable with
 * each other and with `salign math-check`, not with the paper's. Every judged line carries this
 * prompt's sha256 ("system_sha256"), so a changed text is visible in the results.
 *
 * Python str.format templates like the reference's: {prompt} {solution} {answer}. */
#include "judge_protocol.h"

const char sa_math_judge_system[] =
    "You check answers to math problems. You are given a problem, its reference solution and a candidate "
    "answer. Decide whether the final answer of the candidate is mathematically equivalent to the final answer "
    "of the reference solution: only the final answer counts, not the reasoning, the wording or the notation "
    "(1/2, 0.5 and \\frac{1}{2} are the same answer). First explain your decision briefly, then end with "
    "[[true]] if the two final answers are equivalent, or [[false]] if they are not or if the candidate gives "
    "no final answer. (This prompt is salign's own; it is not the Stream Aligner reference's.)";

const char sa_math_judge_user[] =
    "<Problem>: {prompt}\n"
    "<Reference solution>: {solution}\n"
    "<Candidate answer>: {answer}\n";
