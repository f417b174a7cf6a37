/* reqlog.c - the per-request log kept with --log-requests: one entry per upstream request once it is over (its
 * x-request-id, outcome, whether it streamed, and its tokens), listed by GET /_mock/requests and emptied by
 * POST /_mock/reset. Lets a test reconcile, request by request, what the mock served against what a gateway billed. */
#include <stdlib.h>
#include <string.h>

#include "mock.h"

typedef struct entry {
    char request_id[MOCK_REQUEST_ID_MAX];
    mock_outcome_t outcome;
    int stream;
    uint64_t prompt_tokens, completion_tokens, partial_completion_tokens;
} entry_t;

static entry_t *entries;
static size_t count, cap;

static const char *outcome_name(mock_outcome_t outcome)
{
    switch (outcome) {
    case OUTCOME_SERVED: return "served";
    case OUTCOME_FAULT: return "fault";
    case OUTCOME_REJECTED: return "rejected";
    case OUTCOME_ABORTED: return "aborted";
    default: return "pending";
    }
}

void reqlog_add(const mock_exchange_t *ex)
{
    if (!mock_log_requests || ex->acct.generation != stats_generation())
        return;
    if (count == cap) {
        size_t next = cap ? cap * 2 : 1024;
        entry_t *grown = realloc(entries, next * sizeof(*entries));
        if (grown == NULL)
            return; /* out of memory: the log is incomplete, the counters are not */
        entries = grown;
        cap = next;
    }
    entry_t *e = &entries[count++];
    memcpy(e->request_id, ex->request_id, sizeof(e->request_id));
    e->outcome = ex->outcome;
    e->stream = ex->llm.stream;
    e->prompt_tokens = ex->outcome == OUTCOME_SERVED ? ex->llm.prompt_tokens : 0;
    e->completion_tokens = ex->outcome == OUTCOME_SERVED ? ex->llm.completion_tokens : 0;
    e->partial_completion_tokens = ex->outcome == OUTCOME_SERVED ? 0 : ex->tokens_sent;
}

void reqlog_clear(void)
{
    count = 0;
}

void reqlog_handle_get(h2o_req_t *req)
{
    mj_buf_t out = {0};

    mj_printf(&out, "{\"enabled\":%s,\"requests\":[", mock_log_requests ? "true" : "false");
    for (size_t i = 0; i != count; ++i) {
        const entry_t *e = &entries[i];
        mj_printf(&out, "%s{\"request_id\":", i ? "," : "");
        mj_string(&out, e->request_id, strlen(e->request_id), 0);
        mj_printf(&out,
                  ",\"outcome\":\"%s\",\"stream\":%s,\"prompt_tokens\":%llu,\"completion_tokens\":%llu,"
                  "\"partial_completion_tokens\":%llu}",
                  outcome_name(e->outcome), e->stream ? "true" : "false", (unsigned long long)e->prompt_tokens,
                  (unsigned long long)e->completion_tokens, (unsigned long long)e->partial_completion_tokens);
    }
    mj_printf(&out, "]}\n");
    respond(req, 200, "application/json", h2o_iovec_init(out.base, out.len));
    mj_free(&out);
}
