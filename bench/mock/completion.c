/* completion.c - the request flow shared by completion-style surfaces (auth, body scan, fault, deterministic token plan)
 * and the fixed content they all produce.
 *
 * Token rules: prompt_tokens = max(1, request body bytes / 4); the completion is `chunks` pieces of two words, each
 * counted as two tokens, and when an output cap (max_tokens, max_output_tokens, maxOutputTokens) is given only cap / 2
 * pieces are produced. */
#include <string.h>
#include <time.h>

#include "mock.h"

static const char *const pieces[] = {
    "Hello from ", "the mock ", "upstream provider. ", "Tokens come ", "in pairs ", "for exact ", "billing reconciliation. ",
    "Have fun! ",
};
#define NUM_PIECES (sizeof(pieces) / sizeof(pieces[0]))

static const char filler[] = "lorem ipsum dolor sit amet ";

static uint64_t last_id;

const char *completion_piece(uint64_t i)
{
    return pieces[i % NUM_PIECES];
}

size_t completion_text_len(const mock_completion_t *llm)
{
    size_t cycle = 0, len = 0;

    for (size_t i = 0; i != NUM_PIECES; ++i) {
        cycle += strlen(pieces[i]);
        if (i < llm->chunks % NUM_PIECES)
            len += strlen(pieces[i]);
    }
    return len + (size_t)(llm->chunks / NUM_PIECES) * cycle;
}

char *completion_write_text(const mock_completion_t *llm, char *dst)
{
    for (uint64_t i = 0; i != llm->chunks; ++i) {
        size_t n = strlen(completion_piece(i));
        memcpy(dst, completion_piece(i), n);
        dst += n;
    }
    return dst;
}

h2o_iovec_t completion_body(mock_exchange_t *ex, const char *head, size_t head_len, const char *tail, size_t tail_len)
{
    size_t len = head_len + completion_text_len(&ex->llm) + tail_len, pad = 0;
    char *body, *p;

    if (ex->knobs.body_bytes > len)
        pad = ex->knobs.body_bytes - len;

    p = body = h2o_mem_alloc_pool(&ex->req->pool, len + pad);
    memcpy(p, head, head_len);
    p = completion_write_text(&ex->llm, p + head_len);
    for (size_t left = pad, n; left != 0; left -= n, p += n) {
        n = left < sizeof(filler) - 1 ? left : sizeof(filler) - 1;
        memcpy(p, filler, n);
    }
    memcpy(p, tail, tail_len);
    return h2o_iovec_init(body, len + pad);
}

/* ---- request body ---------------------------------------------------------------------------------------------------- */

int completion_set_model(mock_completion_t *llm, const mj_value_t *value)
{
    if (value->type != MJ_STRING || value->len == 0 || value->len > COMPLETION_MAX_MODEL_LEN)
        return -1;
    llm->model = h2o_iovec_init(value->base, value->len);
    return 0;
}

int completion_set_stream(mock_completion_t *llm, const mj_value_t *value)
{
    llm->stream = value->type == MJ_TRUE;
    return value->type == MJ_TRUE || value->type == MJ_FALSE || value->type == MJ_NULL ? 0 : -1;
}

int completion_set_cap(mock_completion_t *llm, const mj_value_t *value)
{
    int64_t n;

    if (value->type == MJ_NULL)
        return 0;
    if (mj_int(value, &n) != 0 || n < 0)
        return -1;
    if (llm->max_tokens < 0 || n < llm->max_tokens)
        llm->max_tokens = n;
    return 0;
}

struct chat_body {
    mock_completion_t *llm;
    const char *error;
};

static void on_stream_option(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct chat_body *st = ctx;
    if (mj_key_is(key, "include_usage"))
        st->llm->include_usage = value->type == MJ_TRUE;
}

static void on_chat_member(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct chat_body *st = ctx;

    if (mj_key_is(key, "model")) {
        if (completion_set_model(st->llm, value) != 0)
            st->error = "model must be a non-empty string of at most 256 bytes";
    } else if (mj_key_is(key, "stream")) {
        if (completion_set_stream(st->llm, value) != 0)
            st->error = "stream must be a boolean";
    } else if (mj_key_is(key, "stream_options")) {
        if (value->type == MJ_OBJECT)
            mj_each_member(value->base, value->len, on_stream_option, st);
    } else if (mj_key_is(key, "max_tokens") || mj_key_is(key, "max_completion_tokens")) {
        if (completion_set_cap(st->llm, value) != 0)
            st->error = "max_tokens must be a non-negative integer";
    }
}

const char *completion_parse_chat(mock_exchange_t *ex)
{
    struct chat_body st = {&ex->llm, NULL};

    if (mj_each_member(ex->req->entity.base, ex->req->entity.len, on_chat_member, &st) != 0)
        return COMPLETION_BAD_JSON;
    return st.error;
}

static void plan_tokens(mock_exchange_t *ex)
{
    mock_completion_t *llm = &ex->llm;
    size_t body_len = ex->req->entity.len;

    llm->chunks = ex->knobs.chunks;
    if (llm->max_tokens >= 0 && llm->chunks > (uint64_t)llm->max_tokens / 2) {
        llm->chunks = (uint64_t)llm->max_tokens / 2;
        llm->truncated = 1;
    }
    llm->prompt_tokens = body_len / 4 > 1 ? body_len / 4 : 1;
    llm->completion_tokens = llm->chunks * 2;
    llm->id = ++last_id;
    llm->created = (int64_t)time(NULL);
}

void completion_handle(h2o_req_t *req, const mock_surface_t *surface)
{
    mock_exchange_t *ex = exchange_new(req, surface);
    const char *error;

    if (ex == NULL)
        return;
    if (ex->key.len == 0) {
        exchange_reject(ex, 401, NULL,
                        "You didn't provide an API key (Authorization: Bearer, x-api-key, x-goog-api-key or ?key=).");
        return;
    }
    if ((error = surface->parse(ex)) == NULL && ex->llm.model.base == NULL)
        error = "you must provide a model parameter";
    if (error != NULL) {
        exchange_reject(ex, 400, NULL, error);
        return;
    }
    stats_model(&ex->acct, ex->llm.model);
    if (exchange_apply_fault(ex))
        return;
    plan_tokens(ex);
    surface->plan(ex);
    if (ex->llm.stream)
        stats_stream(&ex->acct);
    exchange_serve(ex, ex->llm.stream ? "text/event-stream" : "application/json");
}
