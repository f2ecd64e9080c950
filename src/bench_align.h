/* bench_align.h - the aligned answer's cost (salign bench-align): one answer of the Stream Aligner
 * loop against the upstream's answer alone, with both models' tokens forced so that random-weight
 * models of real shapes behave like a trained pair (see bench_align.c). */
#ifndef SALIGN_BENCH_ALIGN_H
#define SALIGN_BENCH_ALIGN_H

#include "aligner.h"

typedef enum {
    SA_BA_UNALIGNED = 0, /* the upstream alone (mode none) */
    SA_BA_COPY,          /* stream mode, the aligner's rewrite copies its draft (the upstream's sentence) */
    SA_BA_EDIT,          /* stream mode, the rewrite replaces every edit_every-th token of the draft */
} SaBenchAlignCase;

typedef struct {
    int sentences;       /* the answer's length in sentences */
    int sentence_tokens; /* upstream tokens per sentence, its final '.' included (at least; whole words) */
    int edit_every;      /* SA_BA_EDIT: every edit_every-th draft token replaced (5: 20%) */
} SaBenchAlignShape;

/* One forced answer to `question` on e (made from up and al; al may be NULL for SA_BA_UNALIGNED)
 * with base's settings (templates, splitter, sampling: the sampler still runs, so it costs what it
 * would); the caches are emptied first. Fills *tr (free with sa_align_trace_free). 0, or -1 + sa_err. */
int sa_bench_align_run(SaEngine *e, const SaModel *up, const SaModel *al, const SaAlignParams *base,
                       const SaBenchAlignShape *sh, SaBenchAlignCase c, const char *question, SaAlignTrace *tr);

/* The forced sentence's upstream token count for sh (whole words reach sh->sentence_tokens), or -1. */
int sa_bench_align_sentence_tokens(const SaModel *up, const SaBenchAlignShape *sh);

#endif
