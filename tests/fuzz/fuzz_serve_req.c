/* fuzz_serve_req.c - the request parser of `salign serve` (src/serve_req.c) on arbitrary bytes, as
 * both endpoints read them: either a request or a 4xx error with OpenAI's fields, never a crash;
 * what it accepts is within the limits the engine relies on. Seeds: tests/fuzz/corpus/serve_req. */
#include "../../src/serve_req.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int chat = 0; chat < 2; chat++) {
        SaServeReq r;
        SaServeErr e;
        if (sa_serve_req_parse((const char *)data, size, chat, &r, &e) == 0) {
            FUZZ_ASSERT(r.n_msgs >= 1 && r.n_msgs <= SA_SERVE_MAX_MESSAGES);
            /* the last turn that is not a system message is a non-blank user message */
            int q = r.n_msgs - 1;
            while (q > 0 && r.msgs[q].role == SA_ROLE_SYSTEM) q--;
            FUZZ_ASSERT(r.msgs[q].role == SA_ROLE_USER && r.msgs[q].content[strspn(r.msgs[q].content, " \t\r\n")]);
            for (int i = 0; i < r.n_msgs; i++) FUZZ_ASSERT(r.msgs[i].content != NULL);
            FUZZ_ASSERT(r.n_stop >= 0 && r.n_stop <= SA_SERVE_MAX_STOP);
            for (int i = 0; i < r.n_stop; i++) FUZZ_ASSERT(r.stop[i][0] && strlen(r.stop[i]) <= SA_SERVE_MAX_STOP_LEN);
            FUZZ_ASSERT(r.max_tokens >= 0 && r.mode >= -1 && r.mode <= 2);
            FUZZ_ASSERT(!r.has_temp || (r.temp >= 0 && r.temp <= 2));
            sa_serve_req_free(&r);
        } else {
            FUZZ_ASSERT(e.status >= 400 && e.status < 500 && e.message[0] && e.type);
        }
    }
    return 0;
}
