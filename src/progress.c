/* progress.c - progress on stderr for eval and judge (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "common.h"

void sa_progress_init(SaProgress *p, const char *cmd, const char *unit, long total, int mode) {
    *p = (SaProgress){.cmd = cmd, .unit = unit, .tty = isatty(STDERR_FILENO), .total = total};
    p->on = mode != 0;
    if (mode == 1) p->tty = 0;
    p->t0 = p->last_line = sa_time_ms();
}

static void fmt_dur(char *b, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(b, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, n, "%ld:%02ld", t / 60, t % 60);
}

void sa_progress_draw(SaProgress *p, int final) {
    if (!p->on) return;
    const double now = sa_time_ms();
    if (!final && now - (p->tty ? p->last_draw : p->last_line) < (p->tty ? 100 : 10000)) return;
    p->last_draw = p->last_line = now;
    const double el = (now - p->t0) / 1000;
    char eta[32], ela[32];
    fmt_dur(eta, sizeof eta, p->done ? el / p->done * (p->total - p->done) : -1);
    fmt_dur(ela, sizeof ela, el);
    const double tps = p->run_ms > 0 ? p->tokens / (p->run_ms / 1000) : 0;
    const int now_what = !final && p->what;
    if (p->tty) {
        char bar[31];
        int fill = p->total ? (int)(30 * p->done / p->total) : 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r\x1b[K[%s] %ld/%ld %s  %s  ETA %s  %.1f tok/s", bar, p->done, p->total, p->unit, ela, eta, tps);
        if (now_what) fprintf(stderr, "  %s id %.24s", p->what, p->id ? p->id : "");
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "salign: %s: %ld/%ld %s done (%.0f%%), %s elapsed, ETA %s, %.1f tok/s%s%s%s%.40s\n", p->cmd, p->done,
                p->total, p->unit, p->total ? 100.0 * p->done / p->total : 100.0, ela, eta, tps, now_what ? ", now " : "",
                now_what ? p->what : "", now_what ? " on id " : "", now_what && p->id ? p->id : "");
    }
    fflush(stderr);
}
