/* engine_opts.c - the options of the commands that run the two models (align, eval), and the
 * loading of models, templates and the engine from them (see engine_opts.h). */
#include "engine_opts.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "annotator.h"
#include "chat.h"
#include "common.h"
#include "flags.h"
#include "kselect.h"
#include "parallel.h"
#include "../simd/kernels.h"

/* ---- engine options ---------------------------------------------------------------------- */

void sa_engine_opts_init(SaEngineOpts *o) {
    memset(o, 0, sizeof *o);
    o->threads = omp_get_num_procs();
    o->kv_type = SA_F16;
    sa_align_default_params(&o->ap);
}

void sa_engine_opts_free(SaEngineOpts *o) {
    free(o->al_tmpl);
    free(o->al_mode_tmpl);
    free(o->al_system);
    free(o->al_user);
    o->al_tmpl = o->al_mode_tmpl = o->al_system = o->al_user = NULL;
}

/* A template given as a built-in name or a file. */
static char *template_arg(const char *flag, const char *v) {
    const char *builtin = sa_aligner_template(v);
    if (builtin) return sa_strdup(builtin);
    size_t len;
    char *t = sa_read_file(v, &len);
    if (!t) {
        sa_err("%s: '%s' is neither a built-in template (stream-gemma, plain, aligner7b, annotator) nor a readable file", flag, v);
        return NULL;
    }
    if (!t[strspn(t, " \t\r\n")]) {
        sa_err("%s: %s: the template is empty", flag, v);
        free(t);
        return NULL;
    }
    if (sa_template_check(t)) {
        sa_err_prefix("%s: %s: ", flag, v);
        free(t);
        return NULL;
    }
    return t;
}

/* --aligner-system / --aligner-user FILE: the annotator's own prompt, in the reference's format. */
static char *annotator_prompt_arg(const char *flag, const char *v, int user) {
    size_t len;
    char *t = sa_read_file(v, &len);
    if (!t) {
        sa_err_prefix("%s: ", flag);
        return NULL;
    }
    if (strlen(t) != len || !t[strspn(t, " \t\r\n")]) {
        sa_err("%s: %s: %s", flag, v, strlen(t) != len ? "the file holds a NUL byte" : "the prompt is empty");
        free(t);
        return NULL;
    }
    if (user && sa_annotator_check_user(t)) {
        sa_err_prefix("%s: %s: ", flag, v);
        free(t);
        return NULL;
    }
    return t;
}

/* --temp etc. set both models; --upstream-temp / --aligner-temp one of them. */
static int sampling_flag(SaSamplerParams *up, SaSamplerParams *al, int argc, char **argv, int *i) {
    const char *a = argv[*i], *name, *v;
    SaSamplerParams *targets[2] = {up, al};
    int n_t = 2;
    if (!strcmp(a, "-s")) { /* llama.cpp's short form of --seed */
        name = "seed";
    } else if (!strncmp(a, "--upstream-", 11)) {
        name = a + 11;
        n_t = 1;
    } else if (!strncmp(a, "--aligner-", 10)) {
        name = a + 10;
        targets[0] = al;
        n_t = 1;
    } else if (!strncmp(a, "--", 2)) {
        name = a + 2;
    } else {
        return 0;
    }
    static const char *names[] = {"temp", "top-p", "frequency-penalty", "top-k", "seed", "repeat-penalty", "presence-penalty",
                                  "min-p"};
    int k = -1;
    for (int j = 0; j < (int)SA_ARRAY_LEN(names); j++)
        if (!strcmp(name, names[j])) k = j;
    if (k < 0) return 0;
    if (!(v = sa_flag_value(argc, argv, i))) return -1;
    for (int t = 0; t < n_t; t++) {
        SaSamplerParams *sp = targets[t];
        int rc = k == 0   ? sa_flag_float(a, v, 0, 100, &sp->temp)
                 : k == 1 ? sa_flag_float(a, v, 0, 1, &sp->top_p)
                 : k == 2 ? sa_flag_float(a, v, -10, 10, &sp->freq_penalty)
                 : k == 3 ? sa_flag_int(a, v, 0, INT_MAX, &sp->top_k)
                 : k == 4 ? sa_flag_u64(a, v, &sp->seed)
                 : k == 5 ? sa_flag_float(a, v, 0, 10, &sp->repeat_penalty)
                 : k == 6 ? sa_flag_float(a, v, -10, 10, &sp->presence_penalty)
                          : sa_flag_float(a, v, 0, 1, &sp->min_p);
        if (rc) return -1;
    }
    return 1;
}

int sa_sampling_flag(SaSamplerParams *sp, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strncmp(a, "--upstream-", 11) || !strncmp(a, "--aligner-", 10)) return 0;
    return sampling_flag(sp, sp, argc, argv, i);
}

int sa_runtime_flag(int *threads, int *n_ctx, int *load_mode, SaDtype *kv_type, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = sa_flag_value(argc, argv, i)) || sa_flag_int(a, v, 1, 1024, threads)) return -1;
        /* more threads than cores only makes the spinning pool fight itself */
        const int cores = omp_get_num_procs();
        if (*threads > cores) {
            fprintf(stderr, "salign: %s %d: this process may use %d core(s); using %d threads\n", a, *threads, cores, cores);
            *threads = cores;
        }
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (!(v = sa_flag_value(argc, argv, i)) || sa_flag_int(a, v, 1, 1 << 22, n_ctx)) return -1;
    } else if (!strcmp(a, "--mmap")) {
        *load_mode = SA_LOAD_MMAP;
    } else if (!strcmp(a, "--no-hugepages")) {
        *load_mode = SA_LOAD_READ_4K;
    } else if (!strcmp(a, "--no-verify")) { /* process-wide, like the thread count */
        sa_model_set_verify_policy(SA_VERIFY_NEVER);
    } else if (!strcmp(a, "--kernels")) { /* process-wide, like the thread count */
        if (!(v = sa_flag_value(argc, argv, i)) || sa_kselect_flag(v)) return -1;
    } else if (!strcmp(a, "--kv-type")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        if (!strcmp(v, "f16")) *kv_type = SA_F16;
        else if (!strcmp(v, "f32")) *kv_type = SA_F32;
        else if (!strcmp(v, "q8_0")) *kv_type = SA_Q8_0;
        else return sa_err("--kv-type: expected f16, f32 or q8_0, got '%s'", v);
    } else {
        return 0;
    }
    return 1;
}

int sa_engine_opts_flag(SaEngineOpts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    SaAlignParams *ap = &o->ap;
    int r = sampling_flag(&ap->up_sp, &ap->al_sp, argc, argv, i);
    if (r) return r;
    if ((r = sa_runtime_flag(&o->threads, &o->n_ctx, &o->load_mode, &o->kv_type, argc, argv, i))) return r;
    if (!strcmp(a, "--upstream")) {
        if (!(o->upstream = sa_flag_value(argc, argv, i))) return -1;
    } else if (!strcmp(a, "--aligner")) {
        if (!(o->aligner = sa_flag_value(argc, argv, i))) return -1;
    } else if (!strcmp(a, "--system")) {
        if (!(ap->system = sa_flag_value(argc, argv, i))) return -1;
    } else if (!strcmp(a, "--chat-template")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        if (!sa_chat_template(v)) return sa_err("--chat-template: unknown template '%s' (known: %s)", v, sa_chat_template_names());
        o->chat_tmpl = v;
    } else if (!strcmp(a, "--aligner-template") || !strcmp(a, "--aligner-mode-template")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        char *t = template_arg(a, v);
        if (!t) return -1;
        char **slot = !strcmp(a, "--aligner-template") ? &o->al_tmpl : &o->al_mode_tmpl;
        free(*slot);
        *slot = t;
    } else if (!strcmp(a, "--aligner-chat-template")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        if (!sa_chat_template(v)) return sa_err("%s: unknown template '%s' (known: %s)", a, v, sa_chat_template_names());
        o->al_chat_tmpl = v;
    } else if (!strcmp(a, "--aligner-system") || !strcmp(a, "--aligner-user")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        const int user = !strcmp(a, "--aligner-user");
        char *t = annotator_prompt_arg(a, v, user);
        if (!t) return -1;
        char **slot = user ? &o->al_user : &o->al_system;
        free(*slot);
        *slot = t;
    } else if (!strcmp(a, "--ignore-aligner-eos")) {
        ap->ignore_aligner_eos = 1;
    } else if (!strcmp(a, "--splitter")) {
        if (!(v = sa_flag_value(argc, argv, i))) return -1;
        int m = sa_split_mode_from_name(v);
        if (m < 0) return sa_err("--splitter: expected reference or smart, got '%s'", v);
        ap->split = (SaSplitMode)m;
    } else if (!strcmp(a, "--max-sentences")) {
        if (!(v = sa_flag_value(argc, argv, i)) || sa_flag_int(a, v, 1, 1 << 20, &ap->max_sentences)) return -1;
    } else if (!strcmp(a, "--max-tokens")) {
        if (!(v = sa_flag_value(argc, argv, i)) || sa_flag_int(a, v, 1, INT_MAX, &ap->max_tokens)) return -1;
        ap->max_answer_tokens = ap->max_tokens; /* as align: one cap for every mode */
    } else if (!strcmp(a, "--max-sentence-tokens")) {
        if (!(v = sa_flag_value(argc, argv, i)) || sa_flag_int(a, v, 1, 1 << 20, &ap->max_sentence_tokens)) return -1;
    } else if (!strcmp(a, "--max-correction-tokens")) {
        if (!(v = sa_flag_value(argc, argv, i)) || sa_flag_int(a, v, 1, 1 << 20, &ap->max_correction_tokens)) return -1;
    } else if (!strcmp(a, "--no-speculate")) {
        ap->speculate = 0;
    } else {
        return 0;
    }
    return 1;
}

int sa_load_model_logged(const char *path, int load_mode, SaModel *m) {
    double t0 = sa_time_ms();
    SaLoadOpts lo = {.load_mode = load_mode};
    if (sa_model_load(m, path, &lo)) return -1;
    sa_kselect_model(m); /* per-op kernels: cached, or timed on this model's matrices (tens of ms, once) */
    fprintf(stderr, "salign: loaded %s (%s, %d layers, %.1f MiB) in %.0f ms, %d threads, kernels %s\n", path,
            sa_arch_name(m->hp.arch), m->hp.n_layer, sa_model_weight_bytes(m) / 1048576.0, sa_time_ms() - t0,
            sa_get_threads(), sa_k->name);
    return 0;
}

void sa_warn_ctx_beyond_training(const SaModel *m, const char *path, int n_ctx) {
    if (n_ctx > 0 && m->hp.n_ctx_train > 0 && n_ctx > m->hp.n_ctx_train)
        fprintf(stderr, "salign: -c %d: %s was trained on %d positions; expect worse output beyond them\n", n_ctx, path,
                m->hp.n_ctx_train);
}

int sa_mode_flag(const char *v, SaAlignMode *mode) {
    const int m = sa_mode_from_name(v, strlen(v));
    if (m < 0) return sa_err("--mode: expected stream, aligner or none, got '%s'", v);
    *mode = (SaAlignMode)m;
    return 0;
}

int sa_engine_opts_need_models(const SaEngineOpts *o) {
    if (!o->upstream) return sa_err("--upstream: an upstream model is required");
    if (!o->aligner && o->ap.mode != SA_MODE_NONE)
        return sa_err("--aligner: an aligner model is required for the %s mode (or --mode none)", sa_mode_name(o->ap.mode));
    return 0;
}

int sa_engine_set_open(SaEngineOpts *o, int need_aligner, SaEngineSet *s) {
    memset(s, 0, sizeof *s);
    if (!o->upstream) return sa_err("--upstream: an upstream model is required");
    if (need_aligner && !o->aligner) return sa_err("--aligner: an aligner model is required for the aligner and stream modes");
    /* an own annotator prompt makes sense for the annotator kind only, and selects it */
    if ((o->al_system || o->al_user) && o->al_tmpl && !sa_annotator_is(o->al_tmpl))
        return sa_err("%s: the annotator prompt needs --aligner-template annotator, not another template",
                      o->al_system ? "--aligner-system" : "--aligner-user");
    sa_set_threads(o->threads);
    if (sa_load_model_logged(o->upstream, o->load_mode, &s->up)) return -1;
    s->have_up = 1;
    sa_warn_ctx_beyond_training(&s->up, o->upstream, o->n_ctx);
    if (need_aligner) {
        /* models are read-only after loading: one copy can serve as both */
        if (!strcmp(o->aligner, o->upstream)) {
            s->shared = 1;
        } else {
            if (sa_load_model_logged(o->aligner, o->load_mode, &s->al)) goto fail;
            s->have_al = 1;
            sa_warn_ctx_beyond_training(&s->al, o->aligner, o->n_ctx);
        }
    }
    const SaModel *al = s->shared ? &s->up : s->have_al ? &s->al : NULL;
    /* the one place where options and models become run settings */
    s->ap = o->ap;
    s->ap.up_tmpl = o->chat_tmpl ? sa_chat_template(o->chat_tmpl) : sa_chat_detect(s->up.chat_template);
    if (al) {
        if (o->al_tmpl) s->ap.al_tmpl = o->al_tmpl;
        else if (o->al_system || o->al_user) s->ap.al_tmpl = SA_ANNOTATOR_TEMPLATE;
        else if (al->aligner_template) s->ap.al_tmpl = al->aligner_template;
        else s->ap.al_tmpl = sa_aligner_template(sa_tok_find(al->tok, "<start_of_turn>") >= 0 ? "stream-gemma" : "plain");
        if (o->al_mode_tmpl) s->ap.al_mode_tmpl = o->al_mode_tmpl;
        /* the annotator kind speaks to the aligner through the aligner's own chat template */
        s->ap.al_chat = o->al_chat_tmpl ? sa_chat_template(o->al_chat_tmpl) : sa_chat_detect(al->chat_template);
        s->ap.al_system = o->al_system;
        s->ap.al_user = o->al_user;
    }
    if (!(s->e = sa_engine_new(&s->up, al, o->n_ctx, o->kv_type))) goto fail;
    return 0;
fail:
    sa_engine_set_close(s);
    return -1;
}

void sa_engine_set_close(SaEngineSet *s) {
    sa_engine_free(s->e);
    if (s->have_al) sa_model_free(&s->al);
    if (s->have_up) sa_model_free(&s->up);
    memset(s, 0, sizeof *s);
}

