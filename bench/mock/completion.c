/* completion.c - the request flow shared by completion-style surfaces (auth, body scan, fault, deterministic token plan)
 * and the fixed content they all produce.
 *
 * Token rules: prompt_tokens = max(1, request body bytes / 4); the completion is `chunks` pieces of two words, each
 * counted as two tokens, and when max_tokens is given only max_tokens / 2 pieces are produced. */
#include <string.h>
#include <time.h>

#include "mock.h"

#define MAX_MODEL_LEN 256

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

h2o_iovec_t completion_body(mock_exchange_t *ex, const char *head, size_t head_len, const char *tail, size_t tail_len)
{
    size_t text_len = 0, len, pad = 0;
    char *body, *p;

    for (uint64_t i = 0; i != ex->llm.chunks; ++i)
        text_len += strlen(completion_piece(i));
    len = head_len + text_len + tail_len;
    if (ex->knobs.body_bytes > len)
        pad = ex->knobs.body_bytes - len;

    p = body = h2o_mem_alloc_pool(&ex->req->pool, len + pad);
    memcpy(p, head, head_len);
    p += head_len;
    for (uint64_t i = 0; i != ex->llm.chunks; ++i) {
        size_t n = strlen(completion_piece(i));
        memcpy(p, completion_piece(i), n);
        p += n;
    }
    for (size_t left = pad, n; left != 0; left -= n, p += n) {
        n = left < sizeof(filler) - 1 ? left : sizeof(filler) - 1;
        memcpy(p, filler, n);
    }
    memcpy(p, tail, tail_len);
    return h2o_iovec_init(body, len + pad);
}

/* ---- request body ---------------------------------------------------------------------------------------------------- */

struct parse_state {
    mock_completion_t *llm;
    const char *error;
};

static void on_stream_option(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct parse_state *st = ctx;
    if (mj_key_is(key, "include_usage"))
        st->llm->include_usage = value->type == MJ_TRUE;
}

static void set_max_tokens(struct parse_state *st, const mj_value_t *value)
{
    int64_t n;

    if (value->type == MJ_NULL)
        return;
    if (mj_int(value, &n) != 0 || n < 0) {
        st->error = "max_tokens must be a non-negative integer";
        return;
    }
    if (st->llm->max_tokens < 0 || n < st->llm->max_tokens)
        st->llm->max_tokens = n;
}

static void on_member(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct parse_state *st = ctx;

    if (mj_key_is(key, "model")) {
        if (value->type != MJ_STRING || value->len == 0 || value->len > MAX_MODEL_LEN)
            st->error = "model must be a non-empty string of at most 256 bytes";
        else
            st->llm->model = h2o_iovec_init(value->base, value->len);
    } else if (mj_key_is(key, "stream")) {
        if (value->type != MJ_TRUE && value->type != MJ_FALSE && value->type != MJ_NULL)
            st->error = "stream must be a boolean";
        st->llm->stream = value->type == MJ_TRUE;
    } else if (mj_key_is(key, "stream_options")) {
        if (value->type == MJ_OBJECT)
            mj_each_member(value->base, value->len, on_stream_option, st);
    } else if (mj_key_is(key, "max_tokens") || mj_key_is(key, "max_completion_tokens")) {
        set_max_tokens(st, value);
    }
}

/* fills ex->llm from the request body; returns an error message or NULL */
static const char *parse_body(mock_exchange_t *ex)
{
    struct parse_state st = {&ex->llm, NULL};

    if (mj_each_member(ex->req->entity.base, ex->req->entity.len, on_member, &st) != 0)
        return "We could not parse the JSON body of your request (expected a JSON object).";
    if (st.error == NULL && ex->llm.model.base == NULL)
        return "you must provide a model parameter";
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
        exchange_reject(ex, 401, NULL, "You didn't provide an API key (Authorization: Bearer ... or x-api-key).");
        return;
    }
    if ((error = parse_body(ex)) != NULL) {
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
