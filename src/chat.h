/* chat.h - prompt templates: the upstream's chat templates and the aligner's prompt templates.
 *
 * A template is text with placeholders. Everything outside placeholders is template text (it may
 * contain special tokens such as <start_of_turn>); every substituted value is user text and can
 * never become a control token. {bos} (only at the very start) means the BOS token.
 *
 * Placeholders: {system} {user} {prefix} {sp_prefix} (" " + prefix, or nothing when the prefix is
 * empty) {question} {last} {answer}. */
#ifndef SALIGN_CHAT_H
#define SALIGN_CHAT_H

#include "common.h"
#include "tokenizer.h"

typedef struct {
    const char *name;
    const char *text;
    int merge_system; /* no system role: a system prompt is prepended to the user message (plain drops it) */
    /* conversations: `turn_end` follows an earlier answer, `next` renders each later user turn and
     * the start of its answer (placeholders {user}, {prefix}, {sp_prefix}) */
    const char *turn_end, *next;
} SaTemplate;

/* Upstream chat templates: plain, llama2, llama3, gemma, chatml, mistral. */
const SaTemplate *sa_chat_template(const char *name);
/* Recognise a model's own chat template text (HF chat_template / GGUF tokenizer.chat_template);
 * NULL text or an unknown one gives "plain". */
const SaTemplate *sa_chat_detect(const char *chat_template_text);
/* Aligner prompt templates: stream-gemma, plain, aligner7b, annotator ("{annotator}": the annotator
 * kind, src/annotator.h). NULL if unknown. */
const char *sa_aligner_template(const char *name);
/* Comma-separated names, for messages. */
const char *sa_chat_template_names(void);

typedef struct {
    const char *system, *user, *prefix, *question, *last, *answer;
} SaTemplateVars;

/* A rendered prompt: the text, a per-byte mask (1 = template text), and whether BOS comes first. */
typedef struct {
    SaBuf text;
    SaBuf mask;
    int bos;
} SaPrompt;

/* Render a template. Unknown placeholders and a {bos} that is not at the start are errors. */
int sa_template_render(const char *tmpl, const SaTemplateVars *v, SaPrompt *out);
/* Check a template's syntax without rendering (for --aligner-template FILE at conversion). */
int sa_template_check(const char *tmpl);
/* Render the upstream chat: system, user message, and the start of the assistant's answer. */
int sa_chat_render(const SaTemplate *t, const char *system, const char *user, const char *prefix, SaPrompt *out);
/* Render a conversation: turns[0..n_turns) alternate user, assistant, ..., user (n_turns odd), then
 * the start of the assistant's answer `prefix`. The first turn renders exactly as sa_chat_render
 * with the first answer as its prefix, so a conversation's prompt extends the previous request's
 * (the KV cache keeps it). */
int sa_chat_render_turns(const SaTemplate *t, const char *system, const char *const *turns, int n_turns, const char *prefix,
                         SaPrompt *out);
/* Tokenize a rendered prompt (special tokens only from template bytes). Appends to *ids. */
int sa_prompt_tokenize(const SaPrompt *p, const SaTokenizer *tok, int32_t **ids, int *n, int *cap);
void sa_prompt_free(SaPrompt *p);

#endif
