/* aligner.h - the Stream Aligner engine: an upstream model and an aligner model in one process.
 *
 * stream mode (the paper's loop, live): the upstream writes one sentence; the aligner rewrites it
 * given the question and the corrected prefix; the rewrite replaces the sentence and the upstream
 * continues from the corrected prefix. Each model keeps the token sequence its KV cache holds and
 * every new prompt reuses the longest common prefix, so no token is evaluated twice unless its
 * context changed. none mode: the upstream alone. aligner mode: the original Aligner - the whole
 * answer first, then one rewrite. */
#ifndef SALIGN_ALIGNER_H
#define SALIGN_ALIGNER_H

#include "chat.h"
#include "context.h"
#include "generate.h"
#include "sampler.h"
#include "sentence.h"

typedef struct SaEngine SaEngine;

typedef enum { SA_MODE_STREAM = 0, SA_MODE_ALIGNER = 1, SA_MODE_NONE = 2 } SaAlignMode;
/* "stream", "aligner", "none": the one spelling of the modes (flags, JSON, traces, results) */
const char *sa_mode_name(SaAlignMode m);
/* The mode named by the first len bytes of s, or -1. */
int sa_mode_from_name(const char *s, size_t len);

/* What a piece of streamed text is. */
typedef enum {
    SA_OUT_ANSWER = 0,   /* part of the final answer (corrections in stream mode) */
    SA_OUT_ORIGINAL = 1, /* the upstream's sentence (stream) or whole answer (aligner mode), once complete */
    SA_OUT_REASONING = 2, /* annotator aligner: what it writes before CORRECTION: [[ (never part of the answer) */
} SaOutKind;

typedef void (*SaOutFn)(void *ctx, SaOutKind kind, const char *text, size_t n);

/* Why an answer ended (sa_stop_name gives the words the JSON trace and eval's records carry). */
typedef enum {
    SA_STOP_END_OF_TURN = 0, /* the upstream ended its answer */
    SA_STOP_MAX_TOKENS,      /* --max-tokens (or the none/aligner modes' answer cap) */
    SA_STOP_MAX_SENTENCES,   /* --max-sentences rounds */
    SA_STOP_CONTEXT_FULL,    /* a model's context has no room left */
    SA_STOP_EMPTY_SENTENCE,  /* the upstream produced no sentence */
    SA_STOP_CANCELLED,       /* the params' cancel flag was set (a client went away, Ctrl-C) */
    SA_STOP_ALIGNER_END,     /* "aligner end": the annotator aligner answered EOS: [[TRUE]] (unless ignore_aligner_eos) */
} SaStop;
const char *sa_stop_name(SaStop s);

/* A conversation: system messages, then user and assistant turns ending with a user turn
 * (consecutive messages of one role are joined with a blank line). */
typedef enum { SA_ROLE_SYSTEM = 0, SA_ROLE_USER, SA_ROLE_ASSISTANT } SaRole;
typedef struct {
    SaRole role;
    const char *content;
} SaMessage;

typedef struct {
    SaAlignMode mode;
    SaSamplerParams up_sp, al_sp;
    const char *system;          /* upstream system prompt */
    const SaTemplate *up_tmpl;   /* upstream chat template */
    const char *al_tmpl;         /* Stream Aligner prompt template (placeholders: question, prefix, last), or
                                    SA_ANNOTATOR_TEMPLATE: an instruct model through the annotator prompt (annotator.h) */
    const SaTemplate *al_chat;   /* annotator kind: the aligner's own chat template (default plain) */
    const char *al_system, *al_user; /* annotator kind: system prompt and user template (NULL: the reference's) */
    int ignore_aligner_eos;      /* annotator kind: EOS: [[TRUE]] does not end the answer (the reference's behaviour) */
    const char *al_mode_tmpl;    /* aligner-mode template (placeholders: question, answer) */
    SaSplitMode split;
    int max_sentences;           /* default 64 */
    int max_tokens;              /* cap on upstream tokens generated in total; 0 = none */
    int max_sentence_tokens;     /* cap on upstream tokens for one sentence (default 256) */
    int max_correction_tokens;   /* 0 = 2 x the sentence's tokens (aligner vocabulary) + 32; annotator kind (reasoning,
                                    markers and verdict included): 0 = 4 x the sentence's tokens + 256 */
    int max_answer_tokens;       /* none/aligner modes: answer length cap (default 1024) */
    int speculate;               /* copy-speculative aligner decoding (default on) */
    const int *cancel;           /* may be NULL; set (atomically, from any thread) to stop the run within a token:
                                    the answer so far is kept, stop = SA_STOP_CANCELLED */
    SaOutFn out;
    void *out_ctx;
    /* called after each completed round (tests check the caches here); may be NULL */
    void (*on_round)(void *ctx, struct SaEngine *e, int round);
    void *round_ctx;
    /* benchmarks only (salign bench-align): the upstream's and the aligner's tokens forced instead of
     * sampled (generate.h's SaGenForceFn); NULL = sampled */
    SaGenForceFn up_force, al_force;
    void *force_ctx;
} SaAlignParams;

void sa_align_default_params(SaAlignParams *p);

typedef struct {
    char *original, *correction;
    int up_decoded;       /* upstream tokens sampled this round (incl. rolled-back look-ahead) */
    int up_evaluated;     /* upstream prompt tokens evaluated this round (the rest was reused) */
    int up_reused;        /* upstream prompt tokens reused from the cache */
    int up_prompt;        /* upstream prompt length this round */
    int al_evaluated, al_reused, al_prompt;
    int al_decoded;       /* aligner tokens generated */
    int up_gen_evaluated, al_gen_evaluated; /* generated tokens fed back through the model */
    int al_drafted, al_accepted; /* speculation: draft tokens verified, and accepted */
    int al_truncated;     /* the correction reached its token cap before the aligner ended it */
    int annotated;        /* annotator kind: the fields below are set */
    int al_status;        /* SaAnnStatus (annotator.h): ok, kept original, empty, multi-sentence, unclosed */
    int al_eos;           /* the verdict: -1 none, 0 FALSE, 1 TRUE */
    char *reasoning;      /* what the annotator wrote before CORRECTION: [[ (trimmed), or NULL */
    double up_ms, al_ms;
} SaRoundTrace;

typedef struct {
    char *question;
    char *answer;
    SaRoundTrace *rounds;
    int n_rounds;
    double first_visible_ms; /* time to the first byte of the answer */
    double total_ms;
    SaStop stop_reason;      /* why it stopped; SA_STOP_CONTEXT_FULL also when a run failed because a prompt did
                                not fit (nothing answered yet) */
    const char *stop;        /* sa_stop_name(stop_reason) */
    int unfinished;          /* stopped at max tokens with the upstream's last sentence cut short */
    uint64_t up_seed, al_seed; /* the samplers' seeds, so a sampled run can be repeated */
    long long ref_evals;     /* token evaluations the reference schedule would have spent */
    long long our_evals;     /* token evaluations we spent (both models, prompts + generation) */
} SaAlignTrace;

void sa_align_trace_free(SaAlignTrace *t);
/* One JSON object (no newline) describing the run. */
char *sa_align_trace_json(const SaAlignTrace *t, SaAlignMode mode);


/* Both contexts are created here; checks that they fit in memory first. aligner may be NULL for
 * mode none. n_ctx 0 = each model's default. */
SaEngine *sa_engine_new(const SaModel *upstream, const SaModel *aligner, int n_ctx, SaDtype kv_type);
void sa_engine_free(SaEngine *e);
SaCtx *sa_engine_ctx(SaEngine *e, int aligner);

/* One question (a conversation of one user turn with p->system). */
int sa_align_run(SaEngine *e, const char *question, const SaAlignParams *p, SaAlignTrace *out);
/* A conversation: the upstream sees every turn through its chat template (a system message replaces
 * p->system), so a request that extends the previous one reuses its cached tokens and evaluates only
 * the new part; the aligner sees the last user turn as the question. */
int sa_align_run_messages(SaEngine *e, const SaMessage *msgs, int n_msgs, const SaAlignParams *p, SaAlignTrace *out);
/* The upstream's first prompt for a conversation, in tokens (-1 + sa_err when it cannot be rendered):
 * reads only the tokenizer, so another thread may ask while a run is in progress. */
int sa_align_prompt_tokens(const SaEngine *e, const SaMessage *msgs, int n_msgs, const SaAlignParams *p);
/* Empty both models' caches (the next run depends on nothing that ran before it). */
void sa_engine_reset(SaEngine *e);

#endif
