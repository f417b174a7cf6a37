/* openai.c - the OpenAI surface: POST /v1/chat/completions (JSON or SSE stream) and GET /v1/models. */
#include <stdio.h>
#include <string.h>

#include "mock.h"

static const char models_json[] =
    "{\"object\":\"list\",\"data\":["
    "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"gpt-4.1-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"o3-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}"
    "]}\n";

h2o_iovec_t openai_render_error(h2o_mem_pool_t *pool, int status, const char *code, const char *message)
{
    const char *type = status == 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error";

    return mj_pool_printf(pool, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":%s%s%s}}\n", message, type,
                          code ? "\"" : "", code ? code : "null", code ? "\"" : "");
}

static const char *finish_reason(const mock_completion_t *llm)
{
    return llm->truncated ? "length" : "stop";
}

static int usage_json(char *buf, size_t size, const mock_completion_t *llm)
{
    return snprintf(buf, size,
                    "\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"total_tokens\":%llu,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":0}}",
                    (unsigned long long)llm->prompt_tokens, (unsigned long long)llm->completion_tokens,
                    (unsigned long long)(llm->prompt_tokens + llm->completion_tokens));
}

/* stream: role event, one event per piece, finish event, [usage event], [DONE] */
static void plan(mock_exchange_t *ex)
{
    const mock_completion_t *llm = &ex->llm;
    char head[512], tail[512];
    int head_len, tail_len;

    if (llm->stream) {
        ex->nevents = llm->chunks + 3 + (llm->include_usage ? 1 : 0);
        ex->cut_at = 1 + llm->chunks / 2;
        return;
    }
    head_len = snprintf(head, sizeof(head),
                        "{\"id\":\"chatcmpl-mock-%llu\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":\"%.*s\","
                        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
                        (unsigned long long)llm->id, (long long)llm->created, (int)llm->model.len, llm->model.base);
    tail_len = snprintf(tail, sizeof(tail), "\"},\"finish_reason\":\"%s\"}],", finish_reason(llm));
    tail_len += usage_json(tail + tail_len, sizeof(tail) - (size_t)tail_len, llm);
    tail_len += snprintf(tail + tail_len, sizeof(tail) - (size_t)tail_len, "}\n");
    ex->body = completion_body(ex, head, (size_t)head_len, tail, (size_t)tail_len);
}

static h2o_iovec_t render_event(mock_exchange_t *ex, size_t index)
{
    mock_completion_t *llm = &ex->llm;
    char *buf = ex->scratch;
    size_t size = sizeof(ex->scratch);
    int n;

    if (index == ex->nevents - 1)
        return h2o_iovec_init(H2O_STRLIT("data: [DONE]\n\n"));

    n = snprintf(buf, size,
                 "data: {\"id\":\"chatcmpl-mock-%llu\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                 "\"model\":\"%.*s\",\"choices\":",
                 (unsigned long long)llm->id, (long long)llm->created, (int)llm->model.len, llm->model.base);
    if (index == 0) {
        n += snprintf(buf + n, size - (size_t)n,
                      "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]");
    } else if (index <= llm->chunks) {
        n += snprintf(buf + n, size - (size_t)n, "[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]",
                      completion_piece(index - 1));
        ex->tokens_sent += 2;
    } else if (index == llm->chunks + 1) {
        n += snprintf(buf + n, size - (size_t)n, "[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]",
                      finish_reason(llm));
    } else { /* the usage event */
        n += snprintf(buf + n, size - (size_t)n, "[],");
        n += usage_json(buf + n, size - (size_t)n, llm);
    }
    n += snprintf(buf + n, size - (size_t)n, "}\n\n");
    return h2o_iovec_init(buf, (size_t)n);
}

const mock_surface_t openai_surface = {openai_render_error, completion_parse_chat, plan, render_event};

void openai_chat(h2o_req_t *req)
{
    completion_handle(req, &openai_surface);
}

void openai_models(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);

    if (ex == NULL || exchange_apply_fault(ex))
        return;
    ex->body = h2o_iovec_init(models_json, sizeof(models_json) - 1);
    exchange_serve(ex, "application/json");
}
