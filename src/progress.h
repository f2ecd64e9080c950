/* progress.h - the progress display of long batch commands (eval, judge) on stderr: on a terminal a
 * bar (done/total, elapsed, ETA, tokens/s, what runs now), redrawn at most every 100 ms; otherwise a
 * plain line every 10 s and at the end. */
#ifndef SALIGN_PROGRESS_H
#define SALIGN_PROGRESS_H

typedef struct {
    const char *cmd;  /* "eval": the plain lines start "salign: eval: " */
    const char *unit; /* "runs" */
    int tty, on;
    double t0, last_draw, last_line, run_ms; /* run_ms: time spent generating (for tokens/s) */
    long done, total, errors;
    long long tokens;
    const char *what, *id; /* what runs now ("stream", "safety stream:none AB") and on which id; NULL: nothing */
} SaProgress;

/* mode: -1 auto (bar on a terminal), 0 off, 1 plain lines. */
void sa_progress_init(SaProgress *p, const char *cmd, const char *unit, long total, int mode);
/* Draw if the throttle allows it (always when final). */
void sa_progress_draw(SaProgress *p, int final);

#endif
