/* gemini.c - the Gemini surface: POST /v1beta/models/{model}:generateContent (JSON) and
 * :streamGenerateContent?alt=sse (SSE), same token rules as the others. The model comes from the path and
 * generationConfig.maxOutputTokens is the cap. Errors have Gemini's shape. */
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define STREAM_ACTION "streamGenerateContent"

static h2o_iovec_t render_error(h2o_mem_pool_t *pool, int status, const char *code, const char *message)
{
    const char *name = status == 401   ? "UNAUTHENTICATED"
                       : status == 403 ? "PERMISSION_DENIED"
                       : status == 404 ? "NOT_FOUND"
                       : status == 429 ? "RESOURCE_EXHAUSTED"
                       : status == 503 ? "UNAVAILABLE"
                       : status >= 500 ? "INTERNAL"
                                       : "INVALID_ARGUMENT";

    return mj_pool_printf(pool, "{\"error\":{\"code\":%d,\"message\":\"%s\",\"status\":\"%s\"}}\n", status, message, name);
}

/* ---- request: path, query and body ------------------------------------------------------------------------------------ */

struct body {
    mock_completion_t *llm;
    const char *error;
    int has_contents;
};

static void on_generation_config(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct body *st = ctx;

    if ((mj_key_is(key, "maxOutputTokens") || mj_key_is(key, "max_output_tokens")) &&
        completion_set_cap(st->llm, value) != 0)
        st->error = "generationConfig.maxOutputTokens must be a non-negative integer";
}

static void on_member(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct body *st = ctx;

    if (mj_key_is(key, "contents")) {
        if (value->type != MJ_ARRAY)
            st->error = "contents must be an array";
        st->has_contents = 1;
    } else if (mj_key_is(key, "generationConfig") || mj_key_is(key, "generation_config")) {
        if (value->type == MJ_OBJECT)
            mj_each_member(value->base, value->len, on_generation_config, st);
        else if (value->type != MJ_NULL)
            st->error = "generationConfig must be an object";
    }
}

/* the route guarantees the path is /v1beta/models/{model}:{action}, the model without '/' */
static const char *parse_path(mock_exchange_t *ex)
{
    h2o_iovec_t path = ex->req->path_normalized, alt;
    const char *colon = path.base + path.len, *model;
    mj_buf_t escaped = {0};

    while (*--colon != ':')
        ;
    for (model = colon; model[-1] != '/'; --model)
        ;
    if (h2o_memis(colon + 1, (size_t)(path.base + path.len - colon - 1), H2O_STRLIT(STREAM_ACTION))) {
        alt = query_param(ex->req, H2O_STRLIT("alt"));
        if (!h2o_memis(alt.base, alt.len, H2O_STRLIT("sse")))
            return "tollgate-mock streams only with alt=sse (streamGenerateContent?alt=sse)";
        ex->llm.stream = 1;
    }
    mj_string(&escaped, model, (size_t)(colon - model), 0);
    if (escaped.len - 2 <= COMPLETION_MAX_MODEL_LEN)
        ex->llm.model = h2o_strdup(&ex->req->pool, escaped.base + 1, escaped.len - 2);
    mj_free(&escaped);
    return ex->llm.model.base == NULL ? "the model name in the path must be at most 256 bytes" : NULL;
}

static const char *parse(mock_exchange_t *ex)
{
    struct body st = {&ex->llm, NULL, 0};
    const char *error;

    if ((error = parse_path(ex)) != NULL)
        return error;
    if (mj_each_member(ex->req->entity.base, ex->req->entity.len, on_member, &st) != 0)
        return COMPLETION_BAD_JSON;
    if (st.error == NULL && !st.has_contents)
        return "contents is required";
    return st.error;
}

/* ---- plan and stream events ------------------------------------------------------------------------------------------- */

static const char *finish_reason(const mock_completion_t *llm)
{
    return llm->truncated ? "MAX_TOKENS" : "STOP";
}

static int usage_json(char *buf, size_t size, const mock_completion_t *llm, uint64_t candidates_tokens)
{
    return snprintf(buf, size,
                    "\"usageMetadata\":{\"promptTokenCount\":%llu,\"candidatesTokenCount\":%llu,\"totalTokenCount\":%llu},"
                    "\"modelVersion\":\"%.*s\"}",
                    (unsigned long long)llm->prompt_tokens, (unsigned long long)candidates_tokens,
                    (unsigned long long)(llm->prompt_tokens + candidates_tokens), (int)llm->model.len, llm->model.base);
}

/* stream: one event per piece (a single empty one when there are no pieces), the last with finishReason */
static void plan(mock_exchange_t *ex)
{
    const mock_completion_t *llm = &ex->llm;
    static const char head[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"";
    char tail[1024];
    int tail_len;

    if (llm->stream) {
        ex->nevents = llm->chunks != 0 ? llm->chunks : 1;
        ex->cut_at = llm->chunks / 2;
        return;
    }
    tail_len = snprintf(tail, sizeof(tail), "\"}],\"role\":\"model\"},\"finishReason\":\"%s\",\"index\":0}],",
                        finish_reason(llm));
    tail_len += usage_json(tail + tail_len, sizeof(tail) - (size_t)tail_len, llm, llm->completion_tokens);
    tail_len += snprintf(tail + tail_len, sizeof(tail) - (size_t)tail_len, "\n");
    ex->body = completion_body(ex, head, sizeof(head) - 1, tail, (size_t)tail_len);
}

static h2o_iovec_t render_event(mock_exchange_t *ex, size_t index)
{
    const mock_completion_t *llm = &ex->llm;
    char *buf = ex->scratch;
    size_t size = sizeof(ex->scratch);
    int last = index == ex->nevents - 1, n;
    uint64_t so_far = llm->chunks != 0 ? (index + 1) * 2 : 0;

    ex->tokens_sent = so_far;
    n = snprintf(buf, size, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%s\"}],\"role\":\"model\"},%s%s%s"
                            "\"index\":0}],",
                 llm->chunks != 0 ? completion_piece(index) : "", last ? "\"finishReason\":\"" : "",
                 last ? finish_reason(llm) : "", last ? "\"," : "");
    n += usage_json(buf + n, size - (size_t)n, llm, so_far);
    n += snprintf(buf + n, size - (size_t)n, "\r\n\r\n");
    return h2o_iovec_init(buf, (size_t)n);
}

const mock_surface_t gemini_surface = {render_error, parse, plan, render_event};

void gemini_generate(h2o_req_t *req)
{
    completion_handle(req, &gemini_surface);
}
