/* chat_cli.c - `salign chat`: an interactive terminal chat on the engine. Every turn is sent as the
 * whole conversation (sa_align_run_messages), so the models' caches keep the earlier turns and each
 * turn evaluates only what is new. Commands: /mode stream|aligner|none, /original on|off, /reset,
 * /help, /quit. Ctrl-C cancels the answer being written (the engine's cancel flag, read between
 * tokens), not the program. Line editing and history come from libedit on a terminal; standard
 * input that is not a terminal is read line by line. */
#include <editline/readline.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "common.h"
#include "engine_opts.h"
#include "flags.h"

/* Ctrl-C since the last prompt was set up: the engine's cancel flag during an answer, "a fresh prompt"
 * while a line is read. One flag, cleared before the prompt and never in between, so that a Ctrl-C
 * pressed just after Enter (before the answer starts) still cancels that answer. */
static int g_cancel;
/* A self-pipe: the handler writes a byte, and the line editor's reader (chat_getc) waits on it beside
 * the terminal. A flag alone is not enough: the signal may come while the editor is not blocked in
 * read() (echoing a pasted line, switching the terminal's mode), and the kernel's Ctrl-C has thrown
 * away the queued input, so the next read() waits for ever. Also, the process has an OpenBLAS thread,
 * and libedit re-raises the signal with kill() while the main thread still blocks it, so our handler
 * may run on that thread only after libedit's read() has already returned EINTR. Both were seen with
 * tests/run-chat.sh on a loaded machine: no fresh prompt (gdb: readline() in read(), the flag set),
 * or the chat quitting (3 of 20 tries; none with OPENBLAS_NUM_THREADS=1). */
static int g_wake[2] = {-1, -1};

static void on_sigint(int sig) {
    (void)sig;
    const int e = errno;
    __atomic_store_n(&g_cancel, 1, __ATOMIC_SEQ_CST);
    if (g_wake[1] >= 0 && write(g_wake[1], "", 1) < 0) { /* full: a byte is already waiting */
    }
    errno = e;
}

static int interrupted(void) { return __atomic_load_n(&g_cancel, __ATOMIC_SEQ_CST) != 0; }

static void wake_drain(void) {
    char b[64];
    while (g_wake[0] >= 0 && read(g_wake[0], b, sizeof b) > 0) {
    }
}

/* The line editor's reader (rl_getc_function): one character, decoded in the current locale as
 * libedit's own reader does (an invalid byte is dropped), or EOF at the end of input or on Ctrl-C;
 * readline() then returns NULL. */
static int chat_getc(FILE *f) {
    const int fd = fileno(f);
    char b[MB_LEN_MAX];
    size_t n = 0;
    for (;;) {
        if (interrupted()) return EOF;
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = g_wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue; /* the flag is read above; another signal (SIGWINCH) goes on */
            return EOF;
        }
        if (p[1].revents) {
            if (interrupted()) return EOF;
            wake_drain(); /* a byte from before the flag was cleared */
        }
        if (!p[0].revents) continue;
        const ssize_t r = read(fd, b + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return EOF;
        n++;
        wchar_t wc;
        mbstate_t st;
        memset(&st, 0, sizeof st);
        const size_t k = mbrtowc(&wc, b, n, &st);
        if (k == (size_t)-2 && n < sizeof b) continue; /* the rest of a multibyte character */
        if (k == (size_t)-1 || k == (size_t)-2) {
            n = 0;
            continue;
        }
        return (int)wc;
    }
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
    if (tty_in) {
        if (pipe2(g_wake, O_CLOEXEC | O_NONBLOCK)) {
            sa_err("chat: pipe: %s", strerror(errno));
            sa_engine_set_close(&set);
            goto bad;
        }
        rl_getc_function = chat_getc;
    }
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: getline() on a pipe returns */
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
        __atomic_store_n(&g_cancel, 0, __ATOMIC_SEQ_CST);
        wake_drain(); /* after the clear: a Ctrl-C from now on leaves the flag set */
        char *line = read_line(tty_in, "> ");
        if (!line) {
            if (interrupted()) { /* Ctrl-C at the prompt: a fresh prompt; Ctrl-D or /quit ends */
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
        SaAlignTrace tr;
        const int failed = sa_align_run_messages(set.e, h.m, h.n, &ap, &tr) != 0;
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
    if (g_wake[0] >= 0) {
        signal(SIGINT, SIG_DFL);
        close(g_wake[0]);
        close(g_wake[1]);
        g_wake[0] = g_wake[1] = -1;
    }
    sa_engine_opts_free(&o);
    return rc;
bad:
    sa_engine_opts_free(&o);
    return sa_die();
}
