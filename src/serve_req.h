/* serve_req.h - one OpenAI-style request of `salign serve`, parsed and checked: the body of
 * POST /v1/chat/completions (messages) or /v1/completions (prompt). Everything a client can send
 * is bounded here (nesting depth, message count, stop strings, numeric ranges), so what reaches the
 * engine is well-formed; a bad request gives an HTTP status and OpenAI's error fields. No I/O. */
#ifndef SALIGN_SERVE_REQ_H
#define SALIGN_SERVE_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "aligner.h"

#define SA_SERVE_MAX_DEPTH 32      /* JSON nesting */
#define SA_SERVE_MAX_MESSAGES 256
#define SA_SERVE_MAX_STOP 4        /* as OpenAI */
#define SA_SERVE_MAX_STOP_LEN 256  /* bytes per stop string */

typedef struct {
    int chat;             /* messages (chat) or a raw prompt (completions) */
    SaMessage *msgs;      /* contents owned */
    int n_msgs;
    int stream, include_usage;
    int max_tokens;       /* 0: the server's setting */
    int has_temp, has_top_p, has_top_k, has_seed, has_freq;
    float temp, top_p, freq_penalty;
    int top_k;
    uint64_t seed;
    char *stop[SA_SERVE_MAX_STOP];
    int n_stop;
    int mode;             /* SaAlignMode, or -1: the server's --mode */
    int show_original;    /* salign.show_original: each sentence's original and correction in the stream */
} SaServeReq;

typedef struct {
    int status;           /* HTTP status, 400 */
    char message[320];
    const char *type;     /* "invalid_request_error" */
    const char *param;    /* the offending field, or NULL */
    const char *code;     /* or NULL */
} SaServeErr;

/* 0, or -1 with *err filled (r is then empty). */
int sa_serve_req_parse(const char *body, size_t n, int chat, SaServeReq *r, SaServeErr *err);
void sa_serve_req_free(SaServeReq *r);

#endif
