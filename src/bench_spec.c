/* bench_spec.c - salign bench-spec: how much copy-speculation saves the aligner.
 *
 * The aligner's correction is timed with and without the upstream's sentence as a draft, in the
 * two cases the Speculative issue names: the correction equals the draft (the aligner copies), and
 * about 20% of the draft's tokens differ (an edit). With random weights nothing "copies" by
 * itself, so the correction is defined as the model's own greedy output: the copy case drafts
 * exactly that output, the edit case that output with every fifth token replaced. Greedy decoding
 * makes the generated text identical in all runs, which the command checks. A third case is the
 * annotator aligner kind's (src/annotator.h): the model first writes reasoning, which nothing can
 * draft, and the draft starts only once it opens the correction; here the first third of the output
 * stands for the reasoning and the rest is copied.
 *
 *   salign bench-spec -m MODEL [-n TOKENS] [-p PROMPT] [-r REPS] [-t THREADS] [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aligner.h"
#include "common.h"
#include "engine_opts.h"
#include "flags.h"
#include "parallel.h"

typedef struct {
    double ms_min, ms_sum;
    SaGenStats st;
} Timing;

/* The annotator case's stand-in for "CORRECTION: [[ has been written": the draft starts at token arm_at. */
static int arm_at_token(void *ctx, int32_t id, const char *piece, size_t n_piece, int n_gen) {
    (void)id;
    (void)piece;
    (void)n_piece;
    return n_gen == *(const int *)ctx ? SA_GEN_COPY_DRAFT : 0;
}

/* One timed generation after re-establishing the prompt (not timed: it is the same in all cases).
 * arm_at > 0: the draft is used from that output token on (the annotator case). */
static int timed(SaCtx *c, SaSampler *s, const SaModel *m, const int32_t *prompt, int n_prompt, int n, const int32_t *draft,
                 int n_draft, int arm_at, int32_t *out, Timing *t) {
    sa_ctx_truncate(c, 0);
    if (sa_ctx_eval(c, prompt, n_prompt, 0)) return -1;
    SaGenParams gp = {.cap = n, .draft = draft, .n_draft = n_draft, .ids = out};
    if (arm_at > 0) {
        gp.draft_on_request = 1;
        gp.on_token = arm_at_token;
        gp.token_ctx = &arm_at;
    }
    double t0 = sa_time_ms();
    if (sa_gen(c, s, m->tok, &gp, &t->st)) return -1;
    const double ms = sa_time_ms() - t0;
    t->ms_sum += ms;
    if (t->ms_min == 0 || ms < t->ms_min) t->ms_min = ms;
    return 0;
}

int sa_cmd_bench_spec(int argc, char **argv) {
    const char *model = NULL, *prompt = "Please rewrite the following sentence so that it is kind and helpful:";
    int n = 64, reps = 3, threads = 0, n_ctx = 0, load_mode = 0, json = 0;
    SaDtype kv = SA_F16;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_runtime_flag(&threads, &n_ctx, &load_mode, &kv, argc, argv, &i);
        if (r < 0) return sa_die();
        if (r) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = sa_flag_value(argc, argv, &i))) return sa_die();
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = sa_flag_value(argc, argv, &i))) return sa_die();
        } else if (!strcmp(a, "-n")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 2, 63, &n)) return sa_die();
        } else if (!strcmp(a, "-r")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, 100, &reps)) return sa_die();
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            sa_err("%s: unknown flag for 'bench-spec' (usage: bench-spec -m MODEL [-n TOKENS] [-p PROMPT] [-r REPS] [-t THREADS] [--json])", a);
            return sa_die();
        }
    }
    if (!model) {
        sa_err("-m: a model file is required");
        return sa_die();
    }
    if (threads > 0) sa_set_threads(threads);
    SaModel m;
    if (sa_load_model_logged(model, load_mode, &m)) return sa_die();
    int rc = 1;
    SaCtxParams cp;
    sa_ctx_default_params(&m, &cp);
    cp.kv_type = kv;
    cp.n_ctx = n_ctx > 0 ? n_ctx : 512;
    SaCtx *c = sa_ctx_new(&m, &cp);
    SaSampler s = {0};
    SaSamplerParams sp = {.temp = 0};
    int32_t *ids = NULL, ref[64], out[64], edit[64];
    int n_ids = 0, cap = 0;
    Timing plain = {0}, copy = {0}, edited = {0}, annot = {0};
    if (!c || sa_sampler_init(&s, &sp, m.hp.n_vocab)) goto done;
    if (sa_tok_encode(m.tok, prompt, strlen(prompt), sa_tok_spec(m.tok)->bos_id >= 0, 0, &ids, &n_ids, &cap) < 0) goto done;
    /* the reference correction: the model's own greedy output (EOS is suppressed by the length) */
    Timing warm = {0};
    if (timed(c, &s, &m, ids, n_ids, n, NULL, 0, 0, ref, &warm)) goto done;
    const int nr = warm.st.n, arm = SA_MAX(1, nr / 3);
    for (int i = 0; i < nr; i++) edit[i] = i % 5 == 2 ? (ref[i] + 1 + i) % m.hp.n_vocab : ref[i];
    for (int r = 0; r < reps; r++) {
        if (timed(c, &s, &m, ids, n_ids, n, NULL, 0, 0, out, &plain) || memcmp(out, ref, (size_t)nr * 4)) goto mismatch;
        if (timed(c, &s, &m, ids, n_ids, n, ref, nr, 0, out, &copy) || memcmp(out, ref, (size_t)nr * 4)) goto mismatch;
        if (timed(c, &s, &m, ids, n_ids, n, edit, nr, 0, out, &edited) || memcmp(out, ref, (size_t)nr * 4)) goto mismatch;
        if (timed(c, &s, &m, ids, n_ids, n, ref + arm, nr - arm, arm, out, &annot) || memcmp(out, ref, (size_t)nr * 4))
            goto mismatch;
    }
    if (json) {
        printf("{\"model\":\"%s\",\"tokens\":%d,\"reps\":%d,\"threads\":%d,\"plain_ms\":%.2f,\"copy_ms\":%.2f,\"edit_ms\":%.2f,"
               "\"copy_speedup\":%.3f,\"edit_speedup\":%.3f,\"copy_accepted\":%d,\"copy_drafted\":%d,"
               "\"edit_accepted\":%d,\"edit_drafted\":%d,\"plain_passes\":%d,\"copy_passes\":%d,\"edit_passes\":%d,"
               "\"annotator_ms\":%.2f,\"annotator_speedup\":%.3f,\"annotator_accepted\":%d,\"annotator_drafted\":%d,"
               "\"annotator_passes\":%d}\n",
               model, nr, reps, sa_get_threads(), plain.ms_min, copy.ms_min, edited.ms_min, plain.ms_min / copy.ms_min,
               plain.ms_min / edited.ms_min, copy.st.accepted, copy.st.drafted, edited.st.accepted, edited.st.drafted,
               plain.st.passes, copy.st.passes, edited.st.passes, annot.ms_min, plain.ms_min / annot.ms_min, annot.st.accepted,
               annot.st.drafted, annot.st.passes);
    } else {
        printf("| case | draft | accepted/drafted | tokens evaluated | forward passes | best ms | vs plain |\n"
               "|---|---|---|---|---|---|---|\n");
        printf("| plain decoding | none | - | %d | %d | %.1f | 1.00x |\n", plain.st.evals, plain.st.passes, plain.ms_min);
        printf("| copy | the output itself | %d/%d | %d | %d | %.1f | %.2fx |\n", copy.st.accepted, copy.st.drafted,
               copy.st.evals, copy.st.passes, copy.ms_min, plain.ms_min / copy.ms_min);
        printf("| edit | 20%% of tokens replaced | %d/%d | %d | %d | %.1f | %.2fx |\n", edited.st.accepted, edited.st.drafted,
               edited.st.evals, edited.st.passes, edited.ms_min, plain.ms_min / edited.ms_min);
        printf("| annotator | the output after its first third (reasoning) | %d/%d | %d | %d | %.1f | %.2fx |\n", annot.st.accepted,
               annot.st.drafted, annot.st.evals, annot.st.passes, annot.ms_min, plain.ms_min / annot.ms_min);
        printf("%s, %d tokens, best of %d, %d threads; the output is identical in all cases\n", model, nr, reps, sa_get_threads());
    }
    rc = 0;
    goto done;
mismatch:
    if (!strcmp(sa_errmsg(), "unknown error")) sa_err("speculative output differs from plain decoding: a bug");
done:
    if (rc) sa_die();
    free(ids);
    sa_sampler_free(&s);
    sa_ctx_free(c);
    sa_model_free(&m);
    return rc;
}
