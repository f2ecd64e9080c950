/* serve_req.c - parse and check one request of `salign serve` (see serve_req.h). */
#include "serve_req.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int fail(SaServeErr *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(SaServeErr *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = 400;
    e->type = "invalid_request_error";
    e->param = param;
    e->code = NULL;
    return -1;
}

/* cJSON parses recursively; bound the nesting before it does (brackets outside strings). */
static int depth_ok(const char *s, size_t n) {
    int d = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++d > SA_SERVE_MAX_DEPTH) return 0;
        } else if (c == ']' || c == '}') {
            d--;
        }
    }
    return 1;
}

/* A number field within [lo, hi]; absent or null: *has stays 0. */
static int num_field(const cJSON *o, const char *k, double lo, double hi, int integer, double *v, int *has, SaServeErr *e) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x || cJSON_IsNull(x)) return 0;
    if (!cJSON_IsNumber(x)) return fail(e, k, "'%s' must be a number", k);
    const double d = x->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) return fail(e, k, "'%s' must be between %g and %g", k, lo, hi);
    if (integer && d != floor(d)) return fail(e, k, "'%s' must be an integer", k);
    *v = d;
    *has = 1;
    return 0;
}

static int bool_field(const cJSON *o, const char *k, int *v, SaServeErr *e) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x || cJSON_IsNull(x)) return 0;
    if (!cJSON_IsBool(x)) return fail(e, k, "'%s' must be true or false", k);
    *v = cJSON_IsTrue(x);
    return 0;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts (joined). */
static char *content_text(const cJSON *c, SaServeErr *e) {
    if (cJSON_IsString(c)) return sa_strdup(c->valuestring);
    if (!cJSON_IsArray(c)) {
        fail(e, "messages", "a message's 'content' must be a string or an array of text parts");
        return NULL;
    }
    SaBuf b = {0};
    sa_buf_append(&b, "", 0);
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            sa_buf_free(&b);
            fail(e, "messages", "only text content parts are supported");
            return NULL;
        }
        sa_buf_append(&b, text->valuestring, strlen(text->valuestring));
    }
    return b.data;
}

static int parse_messages(const cJSON *root, SaServeReq *r, SaServeErr *e) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!ms) return fail(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(ms)) return fail(e, "messages", "'messages' must be an array");
    const int n = cJSON_GetArraySize(ms);
    if (n == 0) return fail(e, "messages", "'messages' must not be empty");
    if (n > SA_SERVE_MAX_MESSAGES) return fail(e, "messages", "at most %d messages", SA_SERVE_MAX_MESSAGES);
    r->msgs = sa_calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return fail(e, NULL, "out of memory");
    int last = -1;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        if (!cJSON_IsObject(m)) return fail(e, "messages", "messages[%d] must be an object", r->n_msgs);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role)) return fail(e, "messages", "messages[%d].role must be a string", r->n_msgs);
        SaRole ro;
        if (!strcmp(role->valuestring, "system") || !strcmp(role->valuestring, "developer")) ro = SA_ROLE_SYSTEM;
        else if (!strcmp(role->valuestring, "user")) ro = SA_ROLE_USER;
        else if (!strcmp(role->valuestring, "assistant")) ro = SA_ROLE_ASSISTANT;
        else return fail(e, "messages", "messages[%d].role: '%.40s' is not supported (system, user, assistant)", r->n_msgs,
                         role->valuestring);
        if (!content) return fail(e, "messages", "messages[%d].content is required", r->n_msgs);
        char *text = content_text(content, e);
        if (!text) return -1;
        r->msgs[r->n_msgs].role = ro;
        r->msgs[r->n_msgs++].content = text;
        if (ro != SA_ROLE_SYSTEM) {
            if (last < 0 && ro != SA_ROLE_USER) return fail(e, "messages", "the conversation must start with a user message");
            last = (int)ro;
        }
    }
    if (last != SA_ROLE_USER) return fail(e, "messages", "the last message must be a user message");
    /* system messages may come anywhere (they make the system prompt); the question is the last user turn */
    int q_at = r->n_msgs - 1;
    while (r->msgs[q_at].role != SA_ROLE_USER) q_at--;
    const char *q = r->msgs[q_at].content;
    if (!q[strspn(q, " \t\r\n")]) return fail(e, "messages", "the last user message is empty");
    return 0;
}

static int parse_stop(const cJSON *root, SaServeReq *r, SaServeErr *e) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!s || cJSON_IsNull(s)) return 0;
    const cJSON *one = s;
    if (cJSON_IsArray(s)) {
        if (cJSON_GetArraySize(s) > SA_SERVE_MAX_STOP) return fail(e, "stop", "at most %d stop strings", SA_SERVE_MAX_STOP);
        cJSON_ArrayForEach(one, s) {
            if (!cJSON_IsString(one)) return fail(e, "stop", "'stop' must be a string or an array of strings");
            if (!one->valuestring[0] || strlen(one->valuestring) > SA_SERVE_MAX_STOP_LEN)
                return fail(e, "stop", "stop strings must have 1 to %d bytes", SA_SERVE_MAX_STOP_LEN);
            r->stop[r->n_stop++] = sa_strdup(one->valuestring);
        }
        return 0;
    }
    if (!cJSON_IsString(s)) return fail(e, "stop", "'stop' must be a string or an array of strings");
    if (!s->valuestring[0] || strlen(s->valuestring) > SA_SERVE_MAX_STOP_LEN)
        return fail(e, "stop", "stop strings must have 1 to %d bytes", SA_SERVE_MAX_STOP_LEN);
    r->stop[r->n_stop++] = sa_strdup(s->valuestring);
    return 0;
}

static int parse(const cJSON *root, int chat, SaServeReq *r, SaServeErr *e) {
    if (!cJSON_IsObject(root)) return fail(e, NULL, "the body must be a JSON object");
    r->chat = chat;
    r->mode = -1;
    if (chat) {
        if (parse_messages(root, r, e)) return -1;
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (!p) return fail(e, "prompt", "'prompt' is required");
        if (!cJSON_IsString(p)) return fail(e, "prompt", "'prompt' must be a string");
        if (!p->valuestring[strspn(p->valuestring, " \t\r\n")]) return fail(e, "prompt", "'prompt' is empty");
        r->msgs = sa_calloc(1, sizeof *r->msgs);
        if (!r->msgs) return fail(e, NULL, "out of memory");
        r->msgs[0] = (SaMessage){SA_ROLE_USER, sa_strdup(p->valuestring)};
        r->n_msgs = 1;
    }
    double v = 0;
    int has = 0;
    if (bool_field(root, "stream", &r->stream, e)) return -1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return fail(e, "stream_options", "'stream_options' must be an object");
        if (bool_field(so, "include_usage", &r->include_usage, e)) return -1;
    }
    /* max_completion_tokens is the newer name; either caps the answer */
    static const char *caps[] = {"max_tokens", "max_completion_tokens"};
    for (int k = 0; k < 2; k++) {
        has = 0;
        if (num_field(root, caps[k], 1, 1 << 20, 1, &v, &has, e)) return -1;
        if (has) r->max_tokens = (int)v;
    }
    if (num_field(root, "temperature", 0, 2, 0, &v, &r->has_temp, e)) return -1;
    r->temp = (float)v;
    if (r->has_temp == 0) r->temp = 0;
    if (num_field(root, "top_p", 0, 1, 0, &v, &r->has_top_p, e)) return -1;
    if (r->has_top_p) r->top_p = (float)v;
    if (num_field(root, "top_k", 0, 1 << 20, 1, &v, &r->has_top_k, e)) return -1;
    if (r->has_top_k) r->top_k = (int)v;
    if (num_field(root, "frequency_penalty", -2, 2, 0, &v, &r->has_freq, e)) return -1;
    if (r->has_freq) r->freq_penalty = (float)v;
    /* integers a double holds exactly */
    if (num_field(root, "seed", 0, 9007199254740992.0, 1, &v, &r->has_seed, e)) return -1;
    if (r->has_seed) r->seed = (uint64_t)v;
    has = 0;
    if (num_field(root, "n", 1, 1, 1, &v, &has, e)) return fail(e, "n", "only n = 1 is supported");
    if (parse_stop(root, r, e)) return -1;
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(root, "salign");
    if (ext && !cJSON_IsNull(ext)) {
        if (!cJSON_IsObject(ext)) return fail(e, "salign", "'salign' must be an object");
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(ext, "mode");
        if (mode && !cJSON_IsNull(mode)) {
            if (!cJSON_IsString(mode)) return fail(e, "salign.mode", "'salign.mode' must be stream, aligner or none");
            if (!strcmp(mode->valuestring, "stream")) r->mode = SA_MODE_STREAM;
            else if (!strcmp(mode->valuestring, "aligner")) r->mode = SA_MODE_ALIGNER;
            else if (!strcmp(mode->valuestring, "none")) r->mode = SA_MODE_NONE;
            else return fail(e, "salign.mode", "'salign.mode' must be stream, aligner or none");
        }
        if (bool_field(ext, "show_original", &r->show_original, e)) return -1;
    }
    return 0;
}

int sa_serve_req_parse(const char *body, size_t n, int chat, SaServeReq *r, SaServeErr *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    if (!depth_ok(body, n)) return fail(e, NULL, "the JSON nests deeper than %d levels", SA_SERVE_MAX_DEPTH);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    if (!root) return fail(e, NULL, "the body is not valid JSON (near byte %zu)", end && end >= body ? (size_t)(end - body) : 0);
    int rc = parse(root, chat, r, e);
    cJSON_Delete(root);
    if (rc) sa_serve_req_free(r);
    return rc;
}

void sa_serve_req_free(SaServeReq *r) {
    for (int i = 0; i < r->n_msgs; i++) free((char *)r->msgs[i].content);
    free(r->msgs);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}
