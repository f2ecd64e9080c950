/* serve.c - `salign serve`: the engine behind an OpenAI-compatible HTTP API (libmicrohttpd).
 *
 * Threads: libmicrohttpd runs one thread per connection; one worker thread owns the engine (both
 * models, all compute threads) and runs one request at a time from a FIFO queue of --queue
 * waiting requests (a full queue is a 503). A request is a Job shared by its connection thread and
 * the worker: the worker appends response bytes (SSE chunks or the whole JSON) under the job's
 * lock; the connection thread sends them. While it waits, the connection thread polls its socket,
 * so a client that goes away sets the job's cancel flag, which the engine reads between tokens.
 *
 * Limits (a slow or hostile client cannot hold the engine): the body is read completely before the
 * request is queued, within --timeout seconds in all and at most --body-limit bytes (413); an idle
 * connection is closed after --timeout; at most 64 connections; JSON nesting, message count and
 * stop strings are bounded in serve_req.c. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "annotator.h"
#include "common.h"
#include "engine_opts.h"
#include "flags.h"
#include "serve_page.h"
#include "serve_req.h"


/* ---- jobs and the queue ------------------------------------------------------------------ */

typedef struct Job {
    SaServeReq req;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    SaBuf out;      /* response bytes not yet taken by the connection */
    size_t out_off;
    int done;       /* the worker has written everything */
    int cancel;     /* read by the engine between tokens */
    int refs;       /* the connection and the queue/worker */
    int status;     /* non-streaming: the HTTP status of out */
    struct Job *next;
    /* the answer as streamed: stop strings are looked for in it */
    SaBuf answer;
    size_t shown;
    int stop_hit;
    int n_sent_rounds;
    SaAlignTrace *tr;
    char id[48];
    long created;
} Job;

typedef struct {
    SaEngineOpts *o;
    SaEngineSet set;
    const char *host, *api_key;
    int port, queue_max, timeout_s, loopback;
    size_t body_limit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    Job *head, *tail;
    int n_waiting;
    Job *running;
    int ready, stopping, load_failed;
    unsigned long long n_req;
    char *page;
    size_t page_len;
    char csp[512];
    char model_name[64], up_name[256], al_name[256];
} Server;

static Server g_srv;

static void job_unref(Job *j) {
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    sa_serve_req_free(&j->req);
    sa_buf_free(&j->out);
    sa_buf_free(&j->answer);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Append response bytes (caller holds no lock). */
static void job_write(Job *j, const char *s, size_t n) {
    pthread_mutex_lock(&j->mu);
    sa_buf_append(&j->out, s, n);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_sse(Job *j, cJSON *o) {
    char *js = cJSON_PrintUnformatted(o);
    if (!js) return;
    SaBuf b = {0};
    sa_buf_printf(&b, "data: %s\n\n", js);
    job_write(j, b.data, b.len);
    sa_buf_free(&b);
    free(js);
}

static void job_finish(Job *j) {
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* ---- OpenAI objects ------------------------------------------------------------------------ */

static void add_clean(cJSON *o, const char *k, const char *s, size_t n) {
    char *t = sa_strndup(s ? s : "", s ? n : 0);
    char *c = t ? sa_utf8_clean(t) : NULL;
    cJSON_AddStringToObject(o, k, c ? c : "");
    free(c);
    free(t);
}

static cJSON *error_obj(const char *message, const char *type, const char *param, const char *code) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    add_clean(e, "message", message, strlen(message));
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    return o;
}

/* A chunk of the stream: one choice with a delta (chat) or a text (completions). */
static cJSON *chunk(Job *j, const char *text, size_t n, int role, const char *finish) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->req.chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", g_srv.model_name);
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (j->req.chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (text) add_clean(d, "content", text, n);
    } else {
        add_clean(c, "text", text ? text : "", text ? n : 0);
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(ch, c);
    /* OpenAI: when the stream ends with a usage chunk, every other chunk has "usage": null */
    if (j->req.include_usage) cJSON_AddNullToObject(o, "usage");
    return o;
}

/* Bytes of s[0..n) that end on a complete UTF-8 character (the rest waits for the next piece). */
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n, k = 0;
    while (i > 0 && k < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, k++;
    if (i == 0) return n;
    const unsigned char lead = (unsigned char)s[i - 1];
    const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > k + 1 && lead >= 0xC0 ? i - 1 : n;
}

/* Stream what of the answer is safe to show: up to a stop string (which ends the run), holding
 * back a possible start of one and an incomplete character unless final. */
static void flush_answer(Job *j, int final) {
    if (j->stop_hit) return;
    const char *a = j->answer.data ? j->answer.data : "";
    size_t end = j->answer.len, hold = 0;
    for (int k = 0; k < j->req.n_stop; k++) {
        const size_t sl = strlen(j->req.stop[k]);
        const size_t from = j->shown >= sl ? j->shown - sl + 1 : 0;
        const char *hit = memmem(a + from, j->answer.len - from, j->req.stop[k], sl);
        if (hit && (size_t)(hit - a) < end) {
            end = (size_t)(hit - a);
            j->stop_hit = 1;
        }
        if (sl - 1 > hold) hold = sl - 1;
    }
    if (j->stop_hit) {
        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED); /* the engine stops; finish_reason "stop" */
    } else if (!final) {
        end = end > hold ? end - hold : 0;
        if (end < j->shown) end = j->shown;
        end = j->shown + utf8_complete(a + j->shown, end - j->shown);
    }
    if (end <= j->shown) return;
    if (j->req.stream) {
        cJSON *c = chunk(j, a + j->shown, end - j->shown, 0, NULL);
        job_sse(j, c);
        cJSON_Delete(c);
    }
    j->shown = end;
}

static void on_out(void *ctx, SaOutKind kind, const char *text, size_t n) {
    Job *j = ctx;
    if (kind != SA_OUT_ANSWER || j->stop_hit) return;
    sa_buf_append(&j->answer, text, n);
    flush_answer(j, 0);
}

/* salign.show_original: each completed round's original and correction, in an extension field. */
static void send_round(Job *j, const SaRoundTrace *r, int i) {
    cJSON *c = chunk(j, NULL, 0, 0, NULL);
    cJSON *x = cJSON_AddObjectToObject(c, "salign");
    cJSON_AddNumberToObject(x, "sentence", i);
    add_clean(x, "original", r->original, r->original ? strlen(r->original) : 0);
    add_clean(x, "correction", r->correction, r->correction ? strlen(r->correction) : 0);
    if (r->annotated) { /* the annotator aligner kind: what became of the sentence, and its reasoning */
        const char *st = sa_ann_status_name((SaAnnStatus)r->al_status);
        add_clean(x, "status", st, strlen(st));
        if (r->al_eos >= 0) cJSON_AddBoolToObject(x, "eos", r->al_eos);
        add_clean(x, "reasoning", r->reasoning, r->reasoning ? strlen(r->reasoning) : 0);
    }
    job_sse(j, c);
    cJSON_Delete(c);
}

static void on_round(void *ctx, SaEngine *e, int round) {
    Job *j = ctx;
    (void)e;
    if (!j->req.stream || !j->req.show_original || round >= j->tr->n_rounds) return;
    send_round(j, &j->tr->rounds[round], round);
    j->n_sent_rounds = round + 1;
}

/* OpenAI's usage: the prompt as the upstream read it first, and the tokens generated that make the
 * answer - the upstream's in none mode, the aligner's (its corrections) in the others. */
static cJSON *usage_obj(const SaAlignTrace *tr, SaAlignMode mode) {
    cJSON *u = cJSON_CreateObject();
    int p = tr->n_rounds > 0 ? tr->rounds[0].up_prompt : 0, c = 0;
    for (int i = 0; i < tr->n_rounds; i++) c += mode == SA_MODE_NONE ? tr->rounds[i].up_decoded : tr->rounds[i].al_decoded;
    cJSON_AddNumberToObject(u, "prompt_tokens", p);
    cJSON_AddNumberToObject(u, "completion_tokens", c);
    cJSON_AddNumberToObject(u, "total_tokens", p + c);
    return u;
}

static const char *finish_reason(const Job *j, const SaAlignTrace *tr) {
    if (j->stop_hit) return "stop";
    return tr->stop_reason == SA_STOP_MAX_TOKENS || tr->stop_reason == SA_STOP_CONTEXT_FULL ? "length" : "stop";
}

/* ---- the worker ---------------------------------------------------------------------------- */

static uint64_t next_seed(void) {
    static uint64_t s;
    if (!s) s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    return z ^ (z >> 27);
}

static void run_job(Job *j) {
    Server *S = &g_srv;
    SaServeReq *q = &j->req;
    SaAlignParams ap = S->set.ap;
    if (q->mode >= 0) ap.mode = (SaAlignMode)q->mode;
    if (q->has_temp) ap.up_sp.temp = ap.al_sp.temp = q->temp;
    if (q->has_top_p) ap.up_sp.top_p = ap.al_sp.top_p = q->top_p;
    if (q->has_top_k) ap.up_sp.top_k = ap.al_sp.top_k = q->top_k;
    if (q->has_freq) ap.up_sp.freq_penalty = ap.al_sp.freq_penalty = q->freq_penalty;
    if (q->has_seed) ap.up_sp.seed = ap.al_sp.seed = q->seed;
    else if (!S->o->ap.up_sp.seed) ap.up_sp.seed = ap.al_sp.seed = next_seed();
    if (q->max_tokens > 0) ap.max_tokens = ap.max_answer_tokens = q->max_tokens;
    if (!q->chat) ap.up_tmpl = sa_chat_template("plain"); /* a raw prompt: the answer continues it */
    SaAlignTrace tr;
    memset(&tr, 0, sizeof tr);
    j->tr = &tr;
    ap.cancel = &j->cancel;
    ap.out = on_out;
    ap.out_ctx = j;
    ap.on_round = on_round;
    ap.round_ctx = j;
    if (ap.mode != SA_MODE_NONE && !S->set.e) ap.mode = SA_MODE_NONE;
    sa_err_clear();
    const int rc = sa_align_run_messages(S->set.e, q->msgs, q->n_msgs, &ap, &tr);
    if (rc) {
        /* nothing is cached that the next request could trust half-way */
        sa_engine_reset(S->set.e);
        const int ctx = tr.stop_reason == SA_STOP_CONTEXT_FULL;
        cJSON *e = error_obj(sa_errmsg(), ctx ? "invalid_request_error" : "server_error", ctx ? "messages" : NULL,
                             ctx ? "context_length_exceeded" : NULL);
        if (q->stream) job_sse(j, e);
        else {
            char *js = cJSON_PrintUnformatted(e);
            j->status = ctx ? 400 : 500;
            if (js) job_write(j, js, strlen(js));
            free(js);
        }
        cJSON_Delete(e);
        fprintf(stderr, "salign serve: %s: %s\n", j->id, sa_errmsg());
    } else if (tr.stop_reason == SA_STOP_CANCELLED && !j->stop_hit) {
        fprintf(stderr, "salign serve: %s: cancelled (the client went away) after %.0f ms\n", j->id, tr.total_ms);
    } else {
        flush_answer(j, 1);
        const char *answer = j->answer.data ? j->answer.data : "";
        /* the answer as shown: up to a stop string */
        char *shown = sa_strndup(answer, j->shown);
        if (q->stream) {
            if (q->show_original)
                for (int i = j->n_sent_rounds; i < tr.n_rounds; i++) send_round(j, &tr.rounds[i], i);
            cJSON *c = chunk(j, NULL, 0, 0, finish_reason(j, &tr));
            cJSON *x = cJSON_AddObjectToObject(c, "salign");
            cJSON_AddStringToObject(x, "stop", tr.stop);
            cJSON_AddNumberToObject(x, "sentences", tr.n_rounds);
            cJSON_AddNumberToObject(x, "first_visible_ms", tr.first_visible_ms);
            cJSON_AddNumberToObject(x, "total_ms", tr.total_ms);
            job_sse(j, c);
            cJSON_Delete(c);
            if (q->include_usage) {
                cJSON *u = cJSON_CreateObject();
                cJSON_AddStringToObject(u, "id", j->id);
                cJSON_AddStringToObject(u, "object", q->chat ? "chat.completion.chunk" : "text_completion");
                cJSON_AddNumberToObject(u, "created", (double)j->created);
                cJSON_AddStringToObject(u, "model", S->model_name);
                cJSON_AddArrayToObject(u, "choices");
                cJSON_AddItemToObject(u, "usage", usage_obj(&tr, ap.mode));
                job_sse(j, u);
                cJSON_Delete(u);
            }
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", j->id);
            cJSON_AddStringToObject(o, "object", q->chat ? "chat.completion" : "text_completion");
            cJSON_AddNumberToObject(o, "created", (double)j->created);
            cJSON_AddStringToObject(o, "model", S->model_name);
            cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
            cJSON_AddNumberToObject(c, "index", 0);
            if (q->chat) {
                cJSON *m = cJSON_AddObjectToObject(c, "message");
                cJSON_AddStringToObject(m, "role", "assistant");
                add_clean(m, "content", shown, j->shown);
            } else {
                add_clean(c, "text", shown, j->shown);
            }
            cJSON_AddNullToObject(c, "logprobs");
            cJSON_AddStringToObject(c, "finish_reason", finish_reason(j, &tr));
            cJSON_AddItemToArray(ch, c);
            cJSON_AddItemToObject(o, "usage", usage_obj(&tr, ap.mode));
            /* the same trace as align --json */
            char *tj = sa_align_trace_json(&tr, ap.mode);
            cJSON *t = tj ? cJSON_Parse(tj) : NULL;
            free(tj);
            if (t) cJSON_AddItemToObject(o, "salign", t);
            char *js = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            j->status = 200;
            if (js) job_write(j, js, strlen(js));
            free(js);
        }
        fprintf(stderr, "salign serve: %s: %d sentence(s), %.0f ms, stop: %s%s\n", j->id, tr.n_rounds, tr.total_ms, tr.stop,
                j->stop_hit ? " (a stop string)" : "");
        free(shown);
    }
    /* a stream that failed ends with its error chunk (no [DONE]: clients take it as a complete answer) */
    if (q->stream && !rc) job_write(j, "data: [DONE]\n\n", 14);
    j->tr = NULL;
    sa_align_trace_free(&tr);
}

/* Test hooks (tests/run-serve.sh): milliseconds to wait before loading the models, and before each
 * run, so that "loading" and a full queue can be observed on models that load and answer in
 * milliseconds. */
static void test_delay(const char *env) {
    const char *v = getenv(env);
    const long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms > 0 && ms < 600000) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *worker(void *arg) {
    Server *S = arg;
    const int need_al = S->o->aligner != NULL;
    test_delay("SALIGN_SERVE_TEST_LOAD_MS");
    if (sa_engine_set_open(S->o, need_al, &S->set)) {
        fprintf(stderr, "salign: %s\n", sa_errmsg());
        pthread_mutex_lock(&S->mu);
        S->load_failed = 1;
        pthread_mutex_unlock(&S->mu);
        kill(getpid(), SIGTERM); /* the main thread stops the server */
        return NULL;
    }
    pthread_mutex_lock(&S->mu);
    S->ready = 1;
    pthread_mutex_unlock(&S->mu);
    fprintf(stderr, "salign serve: ready on http://%s:%d/\n", S->host, S->port);
    for (;;) {
        pthread_mutex_lock(&S->mu);
        while (!S->head && !S->stopping) pthread_cond_wait(&S->cv, &S->mu);
        Job *j = S->head;
        if (!j) { /* stopping and nothing left */
            pthread_mutex_unlock(&S->mu);
            break;
        }
        S->head = j->next;
        if (!S->head) S->tail = NULL;
        S->n_waiting--;
        S->running = j;
        const int stopping = S->stopping;
        pthread_mutex_unlock(&S->mu);
        if (stopping) __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
        if (!__atomic_load_n(&j->cancel, __ATOMIC_RELAXED)) test_delay("SALIGN_SERVE_TEST_RUN_MS");
        if (!__atomic_load_n(&j->cancel, __ATOMIC_RELAXED)) run_job(j);
        job_finish(j);
        pthread_mutex_lock(&S->mu);
        S->running = NULL;
        pthread_mutex_unlock(&S->mu);
        job_unref(j);
    }
    return NULL;
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

typedef struct {
    SaBuf body;
    double t0;
    int too_big, started;
} ConnState;

/* The request deadline. libmicrohttpd closes a connection that is idle for --timeout, but a client
 * that sends a byte a second is never idle: a watchdog closes every connection whose request (its
 * headers and body) has not fully arrived --timeout seconds after the connection opened or its
 * previous response was sent. Connections whose request is being answered are left alone. */
typedef struct Watch {
    int fd;
    double t0;
    int busy;
    struct Watch *prev, *next;
} Watch;
static pthread_mutex_t g_watch_mu = PTHREAD_MUTEX_INITIALIZER;
static Watch g_watch = {.prev = &g_watch, .next = &g_watch};

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        Watch *w = sa_calloc(1, sizeof *w);
        if (!w || !ci) {
            free(w);
            return;
        }
        w->fd = ci->connect_fd;
        w->t0 = sa_time_ms();
        pthread_mutex_lock(&g_watch_mu);
        w->next = g_watch.next;
        w->prev = &g_watch;
        g_watch.next->prev = w;
        g_watch.next = w;
        pthread_mutex_unlock(&g_watch_mu);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        Watch *w = *socket_context;
        pthread_mutex_lock(&g_watch_mu);
        w->prev->next = w->next;
        w->next->prev = w->prev;
        pthread_mutex_unlock(&g_watch_mu);
        free(w);
        *socket_context = NULL;
    }
}

/* busy: the request has arrived (1), or its response was sent and the next one may come (0). */
static void watch_set(struct MHD_Connection *c, int busy) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    Watch *w = ci ? ci->socket_context : NULL;
    if (!w) return;
    pthread_mutex_lock(&g_watch_mu);
    w->busy = busy;
    w->t0 = sa_time_ms();
    pthread_mutex_unlock(&g_watch_mu);
}

static void *watchdog(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&g_srv.stopping, __ATOMIC_RELAXED)) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        const double now = sa_time_ms();
        pthread_mutex_lock(&g_watch_mu);
        for (Watch *w = g_watch.next; w != &g_watch; w = w->next)
            if (!w->busy && now - w->t0 > g_srv.timeout_s * 1000.0) {
                /* its thread sees the error and closes it (libmicrohttpd reports the close only after
                 * closing the socket, so a just-closed fd could in principle be another's by now; the
                 * window is the few microseconds between the two, on a connection already late) */
                shutdown(w->fd, SHUT_RDWR);
                w->busy = 1;
            }
        pthread_mutex_unlock(&g_watch_mu);
    }
    return NULL;
}

static enum MHD_Result send_bytes(struct MHD_Connection *c, int status, const char *type, const char *s, size_t n,
                                  const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)s, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, cJSON *o, const char *retry_after) {
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!js) return MHD_NO;
    enum MHD_Result r = send_bytes(c, status, "application/json", js, strlen(js), retry_after);
    free(js);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg, const char *type, const char *param,
                                  const char *code, const char *retry_after) {
    return send_json(c, status, error_obj(msg, type, param, code), retry_after);
}

/* Constant-time comparison of the Authorization header with "Bearer KEY" (no early exit on the
 * first differing byte or on a length difference). The scheme name is case-insensitive (RFC 9110
 * 11.1: "bearer KEY" is the same credential); the key is compared byte for byte. */
static int auth_ok(struct MHD_Connection *c) {
    if (!g_srv.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h) return 0;
    const char *want = g_srv.api_key;
    const size_t hn = strlen(h), kn = strlen(want);
    unsigned diff = (unsigned)(hn != kn + 7);
    static const char bearer[] = "Bearer ";
    for (size_t i = 0; i < kn + 7; i++) {
        unsigned char a = i < hn ? (unsigned char)h[i] : 0;
        const unsigned char b = i < 7 ? (unsigned char)bearer[i] : (unsigned char)want[i - 7];
        if (i < 7) a = (unsigned char)toupper(a) == (unsigned char)toupper(b) ? b : a; /* the scheme */
        diff |= (unsigned)(a ^ b);
    }
    return diff == 0;
}

/* Bound to the loopback interface, a request must name it: a web page elsewhere that points a name
 * of its own at 127.0.0.1 (DNS rebinding) is refused. */
static int host_ok(struct MHD_Connection *c) {
    if (!g_srv.loopback) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!h) return 0;
    static const char *ok[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t k = 0; k < SA_ARRAY_LEN(ok); k++) {
        const size_t n = strlen(ok[k]);
        if (!strncmp(h, ok[k], n) && (h[n] == 0 || h[n] == ':')) return 1;
    }
    return 0;
}

/* The client closed its end (checked while the connection thread waits for the engine). */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    char b;
    return recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Wait (the job's lock held) up to 50 ms for the worker. */
static void job_wait(Job *j) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

typedef struct {
    Job *job;
    struct MHD_Connection *con;
    double last; /* when bytes were last handed to libmicrohttpd */
} Stream;

/* An SSE comment (clients skip it): sent while a stream waits (queued, or a long sentence), because
 * libmicrohttpd closes a connection that sends nothing for --timeout seconds - without it, a stream
 * that waited longer than that was cut after its first chunk and its run cancelled. A client that
 * stops reading still times out: its socket buffer fills and nothing more is sent. */
static const char keep_alive[] = ": keep-alive\n\n";

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    Stream *s = cls;
    Job *j = s->job;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->out.len > j->out_off) {
            size_t n = SA_MIN(max, j->out.len - j->out_off);
            memcpy(buf, j->out.data + j->out_off, n);
            j->out_off += n;
            pthread_mutex_unlock(&j->mu);
            s->last = sa_time_ms();
            return (ssize_t)n;
        }
        if (j->done) {
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (sa_time_ms() - s->last > g_srv.timeout_s * 500.0 && max >= sizeof keep_alive - 1) {
            pthread_mutex_unlock(&j->mu);
            memcpy(buf, keep_alive, sizeof keep_alive - 1);
            s->last = sa_time_ms();
            return (ssize_t)(sizeof keep_alive - 1);
        }
        job_wait(j);
        if (!j->done && j->out.len == j->out_off && client_gone(s->con)) {
            __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls) {
    Stream *s = cls;
    __atomic_store_n(&s->job->cancel, 1, __ATOMIC_RELAXED); /* harmless once done */
    job_unref(s->job);
    free(s);
}

static Job *job_new(int chat) {
    Job *j = sa_calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2;
    pthread_mutex_lock(&g_srv.mu);
    snprintf(j->id, sizeof j->id, "%s-salign-%llu", chat ? "chatcmpl" : "cmpl", ++g_srv.n_req);
    pthread_mutex_unlock(&g_srv.mu);
    j->created = (long)time(NULL);
    return j;
}

static enum MHD_Result handle_completion(struct MHD_Connection *c, ConnState *cs, int chat) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    /* the media type itself, then parameters (";charset=utf-8") or nothing: not a prefix match, which
     * would take "application/jsonx" */
    if (!ct || strncasecmp(ct, "application/json", 16) || (ct[16] && ct[16] != ';' && ct[16] != ' ' && ct[16] != '\t'))
        return send_error(c, 415, "the body must be application/json", "invalid_request_error", NULL, NULL, NULL);
    Job *j = job_new(chat);
    if (!j) return send_error(c, 500, "out of memory", "server_error", NULL, NULL, NULL);
    SaServeErr err;
    if (sa_serve_req_parse(cs->body.data ? cs->body.data : "", cs->body.len, chat, &j->req, &err)) {
        j->refs = 1;
        job_unref(j);
        return send_error(c, err.status, err.message, err.type, err.param, err.code, NULL);
    }
    /* a conversation the context cannot hold is refused before any streaming (the tokenizer is
     * read-only: counting here does not disturb the run in progress) */
    pthread_mutex_lock(&g_srv.mu);
    const int loaded = g_srv.ready;
    pthread_mutex_unlock(&g_srv.mu);
    if (loaded) {
        SaAlignParams ap = g_srv.set.ap;
        if (!chat) ap.up_tmpl = sa_chat_template("plain");
        const int n = sa_align_prompt_tokens(g_srv.set.e, j->req.msgs, j->req.n_msgs, &ap);
        const int n_ctx = sa_ctx_n_ctx(sa_engine_ctx(g_srv.set.e, 0));
        if (n < 0 || n >= n_ctx) {
            char msg[200];
            if (n >= 0) snprintf(msg, sizeof msg, "the conversation has %d tokens; the context holds %d", n, n_ctx);
            j->refs = 1;
            job_unref(j);
            return send_error(c, 400, n < 0 ? sa_errmsg() : msg, "invalid_request_error", chat ? "messages" : "prompt",
                              n < 0 ? NULL : "context_length_exceeded", NULL);
        }
    }
    /* the role first, as OpenAI does (written before the worker can write anything): the client
     * sees the stream start while the request waits its turn */
    if (j->req.stream && chat) {
        cJSON *first = chunk(j, "", 0, 1, NULL);
        job_sse(j, first);
        cJSON_Delete(first);
    }
    /* queue it, or refuse: one runs, --queue wait */
    Server *S = &g_srv;
    pthread_mutex_lock(&S->mu);
    /* one runs and --queue wait: a job counts as waiting until the worker takes it, so the idle
     * capacity is queue_max + 1 (else --queue 0 refused every request, even on an idle server) */
    const int ready = S->ready, full = S->n_waiting + (S->running != NULL) > S->queue_max, stopping = S->stopping;
    if (ready && !full && !stopping) {
        if (S->tail) S->tail->next = j;
        else S->head = j;
        S->tail = j;
        S->n_waiting++;
        pthread_cond_signal(&S->cv);
    }
    pthread_mutex_unlock(&S->mu);
    if (!ready || full || stopping) {
        j->refs = 1;
        job_unref(j);
        return send_error(c, 503,
                          !ready     ? "the models are loading"
                          : stopping ? "the server is shutting down"
                                     : "the server is busy: the queue is full, retry later",
                          "server_error", NULL, !ready ? "loading" : "queue_full", "1");
    }
    if (j->req.stream) {
        Stream *s = sa_calloc(1, sizeof *s);
        if (!s) {
            __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
            job_unref(j);
            return MHD_NO;
        }
        s->job = j;
        s->con = c;
        s->last = sa_time_ms();
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
        if (!r) {
            stream_free(s);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    /* non-streaming: wait for the whole answer, watching the client */
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        job_wait(j);
        if (!j->done && client_gone(c)) {
            __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
            pthread_mutex_unlock(&j->mu);
            job_unref(j);
            return MHD_NO;
        }
    }
    pthread_mutex_unlock(&j->mu);
    enum MHD_Result ret;
    if (j->status) ret = send_bytes(c, j->status, "application/json", j->out.data ? j->out.data : "", j->out.len, NULL);
    else ret = MHD_NO; /* cancelled by the shutdown */
    job_unref(j);
    return ret;
}

static enum MHD_Result handle_models(struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", g_srv.model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "salign");
    cJSON *x = cJSON_AddObjectToObject(m, "salign");
    cJSON_AddStringToObject(x, "upstream", g_srv.up_name);
    if (g_srv.al_name[0]) cJSON_AddStringToObject(x, "aligner", g_srv.al_name);
    cJSON_AddStringToObject(x, "mode", sa_mode_name(g_srv.o->ap.mode));
    cJSON_AddItemToArray(d, m);
    return send_json(c, 200, o, NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                               const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls;
    (void)version;
    ConnState *cs = *con_cls;
    const int post = !strcmp(method, "POST");
    if (!cs) {
        cs = sa_calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        cs->t0 = sa_time_ms();
        *con_cls = cs;
        /* decided on the headers alone, before any body is read */
        if (!host_ok(c)) return send_error(c, 403, "the Host header does not name this server", "invalid_request_error", NULL, NULL, NULL);
        const int chat = !strcmp(url, "/v1/chat/completions"), compl = !strcmp(url, "/v1/completions");
        if (!strcmp(url, "/health") || !strcmp(url, "/v1/models") || !strcmp(url, "/")) {
            if (strcmp(method, "GET") && strcmp(method, "HEAD"))
                return send_error(c, 405, "method not allowed", "invalid_request_error", NULL, NULL, NULL);
        } else if (chat || compl) {
            if (!post) return send_error(c, 405, "method not allowed: use POST", "invalid_request_error", NULL, NULL, NULL);
        } else {
            return send_error(c, 404, "not found", "invalid_request_error", NULL, NULL, NULL);
        }
        if (!strncmp(url, "/v1/", 4) && !auth_ok(c))
            return send_error(c, 401, "a valid API key is required (Authorization: Bearer KEY)", "invalid_request_error", NULL,
                              "invalid_api_key", NULL);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > g_srv.body_limit)
            return send_error(c, 413, "the request body is too large", "invalid_request_error", NULL, NULL, NULL);
        return MHD_YES;
    }
    if (*upload_size) {
        if (sa_time_ms() - cs->t0 > g_srv.timeout_s * 1000.0) /* a slow client does not keep its thread */
            return send_error(c, 408, "the request took too long to arrive", "invalid_request_error", NULL, NULL, NULL);
        if (cs->body.len + *upload_size > g_srv.body_limit) {
            *upload_size = 0;
            return send_error(c, 413, "the request body is too large", "invalid_request_error", NULL, NULL, NULL);
        }
        sa_buf_append(&cs->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    watch_set(c, 1); /* the request has arrived: its answer may take as long as it takes */
    if (!strcmp(url, "/health")) {
        pthread_mutex_lock(&g_srv.mu);
        const int ready = g_srv.ready;
        pthread_mutex_unlock(&g_srv.mu);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", ready ? "ok" : "loading");
        return send_json(c, ready ? 200 : 503, o, ready ? NULL : "1");
    }
    if (!strcmp(url, "/v1/models")) return handle_models(c);
    if (!strcmp(url, "/")) {
        struct MHD_Response *r = MHD_create_response_from_buffer(g_srv.page_len, g_srv.page, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Content-Security-Policy", g_srv.csp);
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    return handle_completion(c, cs, !strcmp(url, "/v1/chat/completions"));
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)toe;
    watch_set(c, 0); /* the next request on this connection has --timeout to arrive */
    ConnState *cs = *con_cls;
    if (!cs) return;
    sa_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    (void)fmt;
    (void)ap; /* libmicrohttpd's own messages (a client that closed early) are not the user's problem */
}

/* ---- the command --------------------------------------------------------------------------- */

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int sa_cmd_serve(int argc, char **argv) {
    Server *S = &g_srv;
    SaEngineOpts o;
    sa_engine_opts_init(&o);
    memset(S, 0, sizeof *S);
    S->o = &o;
    S->host = "127.0.0.1";
    S->port = 8080;
    S->queue_max = 8;
    S->timeout_s = 10;
    S->body_limit = 1 << 20;
    int seeded = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = sa_engine_opts_flag(&o, argc, argv, &i);
        if (r < 0) goto bad;
        if (r) {
            if (strstr(a, "seed") || !strcmp(a, "-s")) seeded = 1;
            continue;
        }
        if (!strcmp(a, "--host")) {
            if (!(S->host = sa_flag_value(argc, argv, &i))) goto bad;
        } else if (!strcmp(a, "--port")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 0, 65535, &S->port)) goto bad;
        } else if (!strcmp(a, "--api-key")) {
            if (!(S->api_key = sa_flag_value(argc, argv, &i))) goto bad;
            if (!S->api_key[0]) {
                sa_err("--api-key: the key is empty");
                goto bad;
            }
        } else if (!strcmp(a, "--queue")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 0, 4096, &S->queue_max)) goto bad;
        } else if (!strcmp(a, "--timeout")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, 3600, &S->timeout_s)) goto bad;
        } else if (!strcmp(a, "--body-limit")) {
            int kib;
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_flag_int(a, v, 1, 1 << 20, &kib)) goto bad;
            S->body_limit = (size_t)kib << 10;
        } else if (!strcmp(a, "--mode")) {
            if (!(v = sa_flag_value(argc, argv, &i)) || sa_mode_flag(v, &o.ap.mode)) goto bad;
        } else {
            sa_err("%s: unknown flag for 'serve' (see salign serve --help)", a);
            goto bad;
        }
    }
    if (sa_engine_opts_need_models(&o)) goto bad;
    /* unseeded: each request draws its own seeds (a request's "seed" fixes them) */
    if (!seeded) o.ap.up_sp.seed = o.ap.al_sp.seed = 0;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S->port)};
    if (!strcmp(S->host, "localhost")) S->host = "127.0.0.1";
    if (inet_pton(AF_INET, S->host, &sin.sin_addr) != 1) {
        sa_err("--host: '%s' is not an IPv4 address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)", S->host);
        goto bad;
    }
    S->loopback = (ntohl(sin.sin_addr.s_addr) >> 24) == 127;
    if (!S->loopback && !S->api_key)
        fprintf(stderr, "salign serve: warning: listening on %s without --api-key: anyone who can reach this address "
                        "can use the models\n", S->host);
    snprintf(S->up_name, sizeof S->up_name, "%s", base_name(o.upstream));
    if (o.aligner) snprintf(S->al_name, sizeof S->al_name, "%s", base_name(o.aligner));
    snprintf(S->model_name, sizeof S->model_name, "salign");
    char sh[64], st[64];
    const char *page = sa_serve_page(&S->page_len, sh, st);
    S->page = (char *)page;
    snprintf(S->csp, sizeof S->csp,
             "default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; connect-src 'self'; img-src 'none'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             sh, st);
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->cv, NULL);
    /* every thread inherits this mask; the main thread takes the signals with sigwait */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)S->port,
                         NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)S->timeout_s, MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, notify_conn,
                         NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, MHD_OPTION_END);
    if (!d) {
        sa_err("--host %s --port %d: cannot listen there (%s)", S->host, S->port, strerror(errno));
        goto bad;
    }
    if (S->port == 0) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        if (di) S->port = di->port;
    }
    fprintf(stderr, "salign serve: listening on http://%s:%d/ (loading the models)\n", S->host, S->port);
    pthread_t w, wd;
    if (pthread_create(&wd, NULL, watchdog, NULL)) {
        MHD_stop_daemon(d);
        sa_err("cannot start the watchdog thread");
        goto bad;
    }
    if (pthread_create(&w, NULL, worker, S)) {
        __atomic_store_n(&S->stopping, 1, __ATOMIC_RELAXED);
        pthread_join(wd, NULL);
        MHD_stop_daemon(d);
        sa_err("cannot start the worker thread");
        goto bad;
    }
    int sig = 0;
    sigwait(&set, &sig);
    while (sig == SIGPIPE) sigwait(&set, &sig);
    /* stop: no new requests; the running one and the waiting ones are cancelled */
    pthread_mutex_lock(&S->mu);
    __atomic_store_n(&S->stopping, 1, __ATOMIC_RELAXED);
    const int failed = S->load_failed;
    if (S->running) __atomic_store_n(&S->running->cancel, 1, __ATOMIC_RELAXED);
    for (Job *j = S->head; j; j = j->next) __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&S->cv);
    pthread_mutex_unlock(&S->mu);
    if (!failed) fprintf(stderr, "salign serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pthread_join(w, NULL);
    pthread_join(wd, NULL);
    MHD_stop_daemon(d);
    sa_engine_set_close(&S->set);
    sa_engine_opts_free(&o);
    return failed ? 1 : 0;
bad:
    sa_engine_opts_free(&o);
    return sa_die();
}
