/* chat_cli.c - `salign chat`: an interactive terminal chat on the engine. Every turn is sent as the
 * whole conversation (sa_align_run_messages), so the models' caches keep the earlier turns and each
 * turn evaluates only what is new. Commands: /mode stream|aligner|none, /original on|off, /reset,
 * /help, /quit. Ctrl-C cancels the answer being written (the engine's cancel flag, read between
 * tokens), not the program. Line editing and history come from libedit on a terminal; standard
 * input that is not a terminal is read line by line. */
#include <editline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "engine_opts.h"
#include "flags.h"

static int g_cancel;             /* the engine's cancel flag */
static int g_running;            /* an answer is being written */
static volatile sig_atomic_t g_interrupted; /* Ctrl-C at the prompt */

static void on_sigint(int sig) {
    (void)sig;
    if (__atomic_load_n(&g_running, __ATOMIC_RELAXED)) __atomic_store_n(&g_cancel, 1, __ATOMIC_RELAXED);
    else g_interrupted = 1;
}

typedef struct {
    int show_original, show_reasoning, tty;
} ChatOut;

static void chat_out(void *ctx, SaOutKind kind, const char *text, size_t n) {
    ChatOut *o = ctx;
    if (kind == SA_OUT_ANSWER) {
        fwrite(text, 1, n, stdout);
    } else if (kind == SA_OUT_ORIGINAL && o->show_original) { /* the upstream's sentence, dimmed on a terminal, before its correction */
        if (o->tty) printf("\n\x1b[2m%.*s\x1b[0m\n", (int)n, text);
        else printf("\n[original] %.*s\n", (int)n, text);
    } else if (kind == SA_OUT_REASONING && o->show_reasoning) { /* the annotator's thinking, as align shows it: stderr */
        fflush(stdout);
        if (isatty(STDERR_FILENO)) fprintf(stderr, "\x1b[2m%.*s\x1b[0m", (int)n, text);
        else fwrite(text, 1, n, stderr);
        fflush(stderr);
    }
    fflush(stdout);
}

typedef struct {
    SaMessage *m;
    int n, cap;
} History;

static int history_add(History *h, SaRole role, const char *text) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        SaMessage *m = sa_realloc(h->m, (size_t)cap * sizeof *m);
        if (!m) return -1;
        h->m = m;
        h->cap = cap;
    }
    char *t = sa_strdup(text);
    if (!t) return -1;
    h->m[h->n++] = (SaMessage){role, t};
    return 0;
}

static void history_pop(History *h) { free((char *)h->m[--h->n].content); }

static void history_clear(History *h) {
    while (h->n) history_pop(h);
}


/* A line of input without its newline (malloc'd), or NULL at the end of input. */
static char *read_line(int tty, const char *prompt) {
    if (tty) {
        char *l = readline(prompt);
        if (l && *l) add_history(l);
        return l;
    }
    char *l = NULL;
    size_t cap = 0;
    ssize_t n = getline(&l, &cap, stdin);
    if (n < 0) {
        free(l);
        return NULL;
    }
    while (n > 0 && (l[n - 1] == '\n' || l[n - 1] == '\r')) l[--n] = 0;
    return l;
}

static void help(void) {
    printf("commands: /mode stream|aligner|none, /original on|off, /reset (a new conversation), /quit; "
           "Ctrl-C stops an answer\n");
}

int sa_cmd_chat(int argc, char **argv) {
    SaEngineOpts o;
    sa_engine_opts_init(&o);
    o.ap.up_sp.seed = o.ap.al_sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    int show_original = 0, show_reasoning = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_engine_opts_flag(&o, argc, argv, &i);
        if (r < 0) goto bad;
        if (r) continue;
        if (!strcmp(a, "--mode")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_mode_flag(v, &o.ap.mode)) goto bad;
        } else if (!strcmp(a, "--show-original")) {
            show_original = 1;
        } else if (!strcmp(a, "--show-reasoning")) {
            show_reasoning = 1;
        } else {
            sa_err("%s: unknown flag for 'chat' (see salign chat --help)", a);
            goto bad;
        }
    }
    if (sa_engine_opts_need_models(&o)) goto bad;
    SaEngineSet set;
    if (sa_engine_set_open(&o, o.aligner != NULL, &set)) goto bad;
    const int tty_in = isatty(STDIN_FILENO);
    /* The terminal's own modes, read before the line editor first switches it to raw mode. An answer
     * runs with them put back, so that Ctrl-C is a signal (ISIG) and not a byte queued for the next
     * prompt: tests/run-chat.sh saw a Ctrl-C sent while an answer was printing go unseen, with no
     * echo, as if the editor had left the terminal raw. */
    struct termios cooked;
    const int have_cooked = tty_in && tcgetattr(STDIN_FILENO, &cooked) == 0;
    ChatOut co = {.show_original = show_original, .show_reasoning = show_reasoning, .tty = isatty(STDOUT_FILENO)};
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a read at the prompt returns */
    if (tty_in) {
        printf("salign chat, mode %s. ", sa_mode_name(o.ap.mode));
        help();
    }
    SaAlignParams ap = set.ap;
    ap.out = chat_out;
    ap.out_ctx = &co;
    ap.cancel = &g_cancel;
    History h = {0};
    int rc = 0;
    for (;;) {
        g_interrupted = 0;
        char *line = read_line(tty_in, "> ");
        if (!line) {
            if (g_interrupted) { /* Ctrl-C at the prompt: a fresh prompt; Ctrl-D or /quit ends */
                printf("\n");
                clearerr(stdin);
                continue;
            }
            break;
        }
        const char *l = line + strspn(line, " \t");
        if (!*l) {
            free(line);
            continue;
        }
        if (*l == '/') {
            char cmd[16] = "", arg[16] = "";
            sscanf(l, "/%15s %15s", cmd, arg);
            if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit")) {
                free(line);
                break;
            } else if (!strcmp(cmd, "mode")) {
                const int m = !strcmp(arg, "stream") ? SA_MODE_STREAM : !strcmp(arg, "aligner") ? SA_MODE_ALIGNER
                              : !strcmp(arg, "none")  ? SA_MODE_NONE
                                                      : -1;
                if (m < 0) printf("/mode: expected stream, aligner or none\n");
                else if (m != SA_MODE_NONE && !o.aligner) printf("/mode %s: no aligner was loaded (--aligner)\n", arg);
                else {
                    ap.mode = (SaAlignMode)m;
                    printf("mode %s\n", arg);
                }
            } else if (!strcmp(cmd, "original")) {
                if (strcmp(arg, "on") && strcmp(arg, "off")) printf("/original: expected on or off\n");
                else {
                    co.show_original = !strcmp(arg, "on");
                    printf("original sentences %s\n", arg);
                }
            } else if (!strcmp(cmd, "reset")) {
                history_clear(&h);
                sa_engine_reset(set.e);
                printf("a new conversation\n");
            } else if (!strcmp(cmd, "help")) {
                help();
            } else {
                printf("/%s: unknown command; ", cmd);
                help();
            }
            fflush(stdout);
            free(line);
            continue;
        }
        if (history_add(&h, SA_ROLE_USER, l)) {
            free(line);
            rc = 1;
            break;
        }
        free(line);
        if (have_cooked) tcsetattr(STDIN_FILENO, TCSADRAIN, &cooked);
        __atomic_store_n(&g_cancel, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&g_running, 1, __ATOMIC_RELAXED);
        SaAlignTrace tr;
        const int failed = sa_align_run_messages(set.e, h.m, h.n, &ap, &tr) != 0;
        __atomic_store_n(&g_running, 0, __ATOMIC_RELAXED);
        printf("\n");
        if (failed) {
            /* e.g. the conversation no longer fits the context: say so, keep the program */
            printf("[error: %s; /reset starts a new conversation]\n", sa_errmsg());
            history_pop(&h);
            sa_engine_reset(set.e);
        } else if (tr.stop_reason == SA_STOP_CANCELLED) {
            printf("[cancelled: this turn is left out of the conversation]\n");
            history_pop(&h);
        } else {
            if (co.tty) printf("\x1b[2m");
            printf("(%s: %d sentence(s), %.0f ms, stop: %s)", sa_mode_name(ap.mode), tr.n_rounds, tr.total_ms, tr.stop);
            printf(co.tty ? "\x1b[0m\n" : "\n");
            if (history_add(&h, SA_ROLE_ASSISTANT, tr.answer)) rc = 1;
        }
        fflush(stdout);
        sa_align_trace_free(&tr);
        if (rc) break;
    }
    history_clear(&h);
    free(h.m);
    sa_engine_set_close(&set);
    sa_engine_opts_free(&o);
    return rc;
bad:
    sa_engine_opts_free(&o);
    return sa_die();
}
