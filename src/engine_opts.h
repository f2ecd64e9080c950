/* engine_opts.h - options shared by the commands that run an upstream and an aligner (align, eval,
 * generate --chat): flag parsing, and building the models, templates and engine from them. */
#ifndef SALIGN_ENGINE_OPTS_H
#define SALIGN_ENGINE_OPTS_H

#include "aligner.h"
#include "model.h"

/* ---- engine options, shared by the commands that run both models ---------------------------- */

/* Flags of every model-running command: -t, -c, --mmap, --no-hugepages, --kv-type, --kernels. Returns 1 if argv[*i] was
 * one (advancing *i past its value), 0 if not, -1 + sa_err on a bad value. */
int sa_runtime_flag(int *threads, int *n_ctx, int *load_mode, SaDtype *kv_type, int argc, char **argv, int *i);
/* The sampling flags of a one-model command (--temp, --top-k, --top-p, --frequency-penalty, --seed).
 * Returns 1, 0 or -1 as sa_runtime_flag. */
int sa_sampling_flag(SaSamplerParams *sp, int argc, char **argv, int *i);
/* Load a model and log one line about it (file, architecture, size, load time, kernels) on stderr. */
int sa_load_model_logged(const char *path, int load_mode, SaModel *m);
/* One stderr line when -c asks for more positions than the model was trained on. */
void sa_warn_ctx_beyond_training(const SaModel *m, const char *path, int n_ctx);

typedef struct {
    int threads, n_ctx, load_mode;
    SaDtype kv_type;
    const char *upstream, *aligner, *chat_tmpl;
    const char *al_chat_tmpl;     /* --aligner-chat-template (annotator kind), NULL: the aligner model's own */
    char *al_tmpl, *al_mode_tmpl; /* owned: built-in template text or a file's contents */
    char *al_system, *al_user;    /* owned: --aligner-system / --aligner-user files' contents */
    SaAlignParams ap;
} SaEngineOpts;

void sa_engine_opts_init(SaEngineOpts *o);
void sa_engine_opts_free(SaEngineOpts *o);
/* One flag of align/eval's engine and sampling flags (-t, -c, --mmap, --no-hugepages, --kv-type, --upstream,
 * --aligner, --temp/--top-k/--top-p/--frequency-penalty/--seed and their --upstream-/--aligner-
 * forms, --system, --chat-template, --aligner-template, --aligner-mode-template, --splitter,
 * --max-sentences, --max-tokens, --max-sentence-tokens, --max-correction-tokens, --no-speculate, and the
 * annotator kind's --aligner-chat-template, --aligner-system, --aligner-user, --ignore-aligner-eos).
 * Returns 1 if argv[*i] was one (advancing *i past its value), 0 if not, -1 + sa_err on a bad value. */
int sa_engine_opts_flag(SaEngineOpts *o, int argc, char **argv, int *i);

/* --mode's value into *mode; -1 + sa_err naming the flag when it is not stream, aligner or none. */
int sa_mode_flag(const char *v, SaAlignMode *mode);
/* The models the options' mode needs (an upstream; an aligner unless --mode none): 0, or -1 + sa_err
 * naming the missing flag. Checked before anything loads. */
int sa_engine_opts_need_models(const SaEngineOpts *o);

/* The models and the engine built from the options. */
typedef struct {
    SaModel up, al;
    int have_up, have_al, shared; /* shared: the same file plays both roles and is loaded once */
    SaEngine *e;
    /* the run settings resolved from the options (user flags) and the models (their chat and
     * aligner templates): what every run of align, eval, serve and chat starts from */
    SaAlignParams ap;
} SaEngineSet;

/* Load the upstream (and the aligner when need_aligner), resolve the run settings (s->ap: the
 * templates picked as align does) and create the engine; o is not changed. Logs one line per
 * model to stderr. 0 or -1 + sa_err. */
int sa_engine_set_open(SaEngineOpts *o, int need_aligner, SaEngineSet *s);
void sa_engine_set_close(SaEngineSet *s);

#endif
