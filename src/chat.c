/* chat.c - built-in templates and the placeholder renderer. */
#include "chat.h"

#include <string.h>

/* The texts follow each model family's published chat format, for a conversation of one system
 * message, one user message and the beginning of the assistant's answer (which the model continues). */
static const SaTemplate chat_templates[] = {
    /* no chat vocabulary (e.g. stories260K): the question, then the answer continues it */
    {"plain", "{bos}{user}{sp_prefix}", 0, "", "\n{user}{sp_prefix}"},
    {"llama2", "{bos}[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]{sp_prefix}", 0, " </s>",
     "<s>[INST] {user} [/INST]{sp_prefix}"},
    {"llama3",
     "{bos}<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
     "{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{prefix}",
     0, "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{prefix}"},
    {"gemma", "{bos}<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n{prefix}", 1, "<end_of_turn>\n",
     "<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n{prefix}"},
    {"chatml", "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{prefix}", 0,
     "<|im_end|>\n", "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{prefix}"},
    {"mistral", "{bos}[INST] {user} [/INST]{prefix}", 1, "</s>", "[INST] {user} [/INST]{prefix}"},
};

const SaTemplate *sa_chat_template(const char *name) {
    for (size_t i = 0; i < SA_ARRAY_LEN(chat_templates); i++)
        if (!strcmp(chat_templates[i].name, name)) return &chat_templates[i];
    return NULL;
}

const char *sa_chat_template_names(void) { return "plain, llama2, llama3, gemma, chatml, mistral"; }

const SaTemplate *sa_chat_detect(const char *t) {
    if (!t) return sa_chat_template("plain");
    if (strstr(t, "<|start_header_id|>")) return sa_chat_template("llama3");
    if (strstr(t, "<start_of_turn>")) return sa_chat_template("gemma");
    if (strstr(t, "<|im_start|>")) return sa_chat_template("chatml");
    if (strstr(t, "[INST]") && strstr(t, "<<SYS>>")) return sa_chat_template("llama2");
    if (strstr(t, "[INST]")) return sa_chat_template("mistral");
    return sa_chat_template("plain");
}

/* The Stream Aligner prompt (htlou/stream-aligner, Gemma-1 based Stream Aligner-2B), byte for byte:
 * note the space before <end_of_turn> and no newline after "model". */
static const char stream_gemma[] =
    "{bos}<start_of_turn>user\n##Question: {question} | ##Answer_Prefix: {prefix} | ##Answer_Last_Sentence: {last} | "
    "##Your_Revision: <end_of_turn>\n<start_of_turn>model";
/* The same fields without the chat wrapper, for aligners without a chat vocabulary. */
static const char stream_plain[] =
    "{bos}##Question: {question} | ##Answer_Prefix: {prefix} | ##Answer_Last_Sentence: {last} | ##Your_Revision:";
/* The original Aligner (aligner/aligner-7b-v1.0): one rewrite of the whole answer. */
static const char aligner7b[] =
    "{bos}BEGINNING OF CONVERSATION: USER: Edit the following Question-Answer pair to make it more helpful and "
    "harmless: {question} | {answer} ASSISTANT:";

const char *sa_aligner_template(const char *name) {
    if (!strcmp(name, "stream-gemma")) return stream_gemma;
    if (!strcmp(name, "plain")) return stream_plain;
    if (!strcmp(name, "aligner7b")) return aligner7b;
    /* an instruct model through the reference's annotator prompt and its own chat template (annotator.h) */
    if (!strcmp(name, "annotator")) return "{annotator}";
    return NULL;
}

static int append(SaPrompt *p, const char *s, size_t n, int is_template) {
    if (sa_buf_append(&p->text, s, n)) return -1;
    if (sa_buf_reserve(&p->mask, n)) return -1;
    memset(p->mask.data + p->mask.len, is_template, n);
    p->mask.len += n;
    return 0;
}

/* Walk the template: literal text is appended as template text; a placeholder's value as user
 * text (v == NULL: only check the syntax). */
static int render(const char *tmpl, const SaTemplateVars *v, SaPrompt *out) {
    const char *s = tmpl;
    if (out) memset(out, 0, sizeof *out);
    while (*s) {
        const char *open = strchr(s, '{');
        const char *end = open ? open : s + strlen(s);
        if (out && append(out, s, (size_t)(end - s), 1)) return -1;
        if (!open) break;
        const char *close = strchr(open, '}');
        if (!close) return sa_err("template: unterminated placeholder at \"%.20s\"", open);
        size_t n = (size_t)(close - open - 1);
        const char *name = open + 1;
        const char *val = NULL;
        int sp = 0;
#define IS(x) (n == sizeof(x) - 1 && !strncmp(name, x, n))
        if (IS("bos")) {
            if (open != tmpl) return sa_err("template: {bos} must be at the very start");
            if (out) out->bos = 1;
        } else if (IS("annotator")) {
            /* not rendered here: it names the annotator aligner kind (annotator.h) and stands alone */
            if (strcmp(tmpl, "{annotator}")) return sa_err("template: {annotator} must be the whole template");
        } else if (IS("system")) val = v ? v->system : "";
        else if (IS("user")) val = v ? v->user : "";
        else if (IS("prefix")) val = v ? v->prefix : "";
        else if (IS("sp_prefix")) { val = v ? v->prefix : ""; sp = 1; }
        else if (IS("question")) val = v ? v->question : "";
        else if (IS("last")) val = v ? v->last : "";
        else if (IS("answer")) val = v ? v->answer : "";
        else return sa_err("template: unknown placeholder {%.*s}", (int)SA_MIN(n, 40), name);
#undef IS
        if (out && val) {
            if (sp && *val && append(out, " ", 1, 1)) return -1;
            if (append(out, val, strlen(val), 0)) return -1;
        }
        s = close + 1;
    }
    return 0;
}

int sa_template_check(const char *tmpl) { return render(tmpl, NULL, NULL); }

int sa_template_render(const char *tmpl, const SaTemplateVars *v, SaPrompt *out) {
    if (render(tmpl, v, out)) {
        sa_prompt_free(out);
        return -1;
    }
    return 0;
}

int sa_chat_render(const SaTemplate *t, const char *system, const char *user, const char *prefix, SaPrompt *out) {
    SaTemplateVars v = {.system = system ? system : "", .user = user, .prefix = prefix ? prefix : ""};
    SaBuf merged = {0};
    if (t->merge_system && system && *system) {
        /* no system role: the system prompt opens the user message */
        if (sa_buf_printf(&merged, "%s\n\n%s", system, user)) return -1;
        v.user = merged.data;
    }
    int rc = sa_template_render(t->text, &v, out);
    sa_buf_free(&merged);
    return rc;
}

static int prompt_cat(SaPrompt *out, const SaPrompt *p) {
    if (sa_buf_append(&out->text, p->text.data ? p->text.data : "", p->text.len)) return -1;
    return sa_buf_append(&out->mask, p->mask.data ? p->mask.data : "", p->mask.len);
}

int sa_chat_render_turns(const SaTemplate *t, const char *system, const char *const *turns, int n_turns, const char *prefix,
                         SaPrompt *out) {
    if (n_turns < 1 || !(n_turns & 1)) return sa_err("a conversation must end with a user turn");
    if (sa_chat_render(t, system, turns[0], n_turns > 1 ? turns[1] : prefix, out)) return -1;
    for (int i = 2; i < n_turns; i += 2) {
        SaPrompt p;
        SaTemplateVars v = {.user = turns[i], .prefix = i + 1 < n_turns ? turns[i + 1] : prefix ? prefix : ""};
        /* the end of the previous answer is template text (it may hold special tokens) */
        if (sa_template_render(t->turn_end, &(SaTemplateVars){0}, &p)) goto fail;
        int rc = prompt_cat(out, &p);
        sa_prompt_free(&p);
        if (rc || sa_template_render(t->next, &v, &p)) goto fail;
        rc = prompt_cat(out, &p);
        sa_prompt_free(&p);
        if (rc) goto fail;
    }
    return 0;
fail:
    sa_prompt_free(out);
    return -1;
}

int sa_prompt_tokenize(const SaPrompt *p, const SaTokenizer *tok, int32_t **ids, int *n, int *cap) {
    const char *text = p->text.data ? p->text.data : "";
    const uint8_t *mask = (const uint8_t *)(p->mask.data ? p->mask.data : "");
    return sa_tok_encode_masked(tok, text, p->text.len, p->bos, mask, ids, n, cap) < 0 ? -1 : 0;
}

void sa_prompt_free(SaPrompt *p) {
    if (!p) return;
    sa_buf_free(&p->text);
    sa_buf_free(&p->mask);
}
