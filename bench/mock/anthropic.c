/* anthropic.c - the Anthropic surface: POST /v1/messages (JSON or SSE stream), same token rules as the others. */
#include <stdio.h>
#include <string.h>

#include "mock.h"

static h2o_iovec_t render_error(h2o_mem_pool_t *pool, int status, const char *code, const char *message)
{
    const char *type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 429 ? "rate_limit_error"
                       : status == 503 ? "overloaded_error"
                       : status >= 500 ? "api_error"
                                       : "invalid_request_error";

    return mj_pool_printf(pool, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}\n", type, message);
}

static const char *stop_reason(const mock_completion_t *llm)
{
    return llm->truncated ? "max_tokens" : "end_turn";
}

/* stream: message_start, content_block_start, one content_block_delta per piece, content_block_stop, message_delta,
 * message_stop */
static void plan(mock_exchange_t *ex)
{
    const mock_completion_t *llm = &ex->llm;
    char head[512], tail[512];
    int head_len, tail_len;

    if (llm->stream) {
        ex->nevents = llm->chunks + 5;
        ex->cut_at = 2 + llm->chunks / 2;
        return;
    }
    head_len = snprintf(head, sizeof(head),
                        "{\"id\":\"msg_mock_%llu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"%.*s\","
                        "\"content\":[{\"type\":\"text\",\"text\":\"",
                        (unsigned long long)llm->id, (int)llm->model.len, llm->model.base);
    tail_len = snprintf(tail, sizeof(tail),
                        "\"}],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":%llu,"
                        "\"output_tokens\":%llu,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}\n",
                        stop_reason(llm), (unsigned long long)llm->prompt_tokens,
                        (unsigned long long)llm->completion_tokens);
    ex->body = completion_body(ex, head, (size_t)head_len, tail, (size_t)tail_len);
}

static h2o_iovec_t render_event(mock_exchange_t *ex, size_t index)
{
    mock_completion_t *llm = &ex->llm;
    char *buf = ex->scratch;
    size_t size = sizeof(ex->scratch);
    int n;

    if (index == 0) {
        n = snprintf(buf, size,
                     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_%llu\","
                     "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"%.*s\",\"content\":[],\"stop_reason\":null,"
                     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":%llu,\"output_tokens\":1,"
                     "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}\n\n",
                     (unsigned long long)llm->id, (int)llm->model.len, llm->model.base,
                     (unsigned long long)llm->prompt_tokens);
    } else if (index == 1) {
        n = snprintf(buf, size,
                     "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                     "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    } else if (index < 2 + llm->chunks) {
        n = snprintf(buf, size,
                     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                     "\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n",
                     completion_piece(index - 2));
        ex->tokens_sent += 2;
    } else if (index == 2 + llm->chunks) {
        n = snprintf(buf, size, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    } else if (index == 3 + llm->chunks) {
        n = snprintf(buf, size,
                     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                     "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%llu}}\n\n",
                     stop_reason(llm), (unsigned long long)llm->completion_tokens);
    } else {
        n = snprintf(buf, size, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }
    return h2o_iovec_init(buf, (size_t)n);
}

static const mock_surface_t anthropic_surface = {render_error, completion_parse_chat, plan, render_event};

void anthropic_messages(h2o_req_t *req)
{
    completion_handle(req, &anthropic_surface);
}
