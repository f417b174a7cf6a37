/* responses.c - the OpenAI Responses surface: POST /v1/responses (JSON, or SSE with named events), same token rules as
 * the others. max_output_tokens is the cap; a capped response is "incomplete". Errors have the OpenAI shape. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mock.h"

/* room for all of an event but its text: event name, ids, model (at most 256 bytes), numbers */
#define EVENT_ROOM 2048

/* ---- request body ---------------------------------------------------------------------------------------------------- */

struct body {
    mock_completion_t *llm;
    const char *error;
};

static void on_member(void *ctx, h2o_iovec_t key, const mj_value_t *value)
{
    struct body *st = ctx;

    if (mj_key_is(key, "model")) {
        if (completion_set_model(st->llm, value) != 0)
            st->error = "model must be a non-empty string of at most 256 bytes";
    } else if (mj_key_is(key, "stream")) {
        if (completion_set_stream(st->llm, value) != 0)
            st->error = "stream must be a boolean";
    } else if (mj_key_is(key, "max_output_tokens")) {
        if (completion_set_cap(st->llm, value) != 0)
            st->error = "max_output_tokens must be a non-negative integer";
    }
}

static const char *parse(mock_exchange_t *ex)
{
    struct body st = {&ex->llm, NULL};

    if (mj_each_member(ex->req->entity.base, ex->req->entity.len, on_member, &st) != 0)
        return COMPLETION_BAD_JSON;
    return st.error;
}

/* ---- the response object, piece by piece ------------------------------------------------------------------------------ */

typedef struct out {
    char *p, *end; /* end leaves room for the NUL vsnprintf writes */
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...)
{
    va_list args;
    int n;

    va_start(args, fmt);
    n = vsnprintf(o->p, (size_t)(o->end - o->p) + 1, fmt, args);
    va_end(args);
    if (n > 0)
        o->p += (size_t)n < (size_t)(o->end - o->p) ? (size_t)n : (size_t)(o->end - o->p);
}

static void put_text(out_t *o, const mock_completion_t *llm)
{
    if (completion_text_len(llm) <= (size_t)(o->end - o->p))
        o->p = completion_write_text(llm, o->p);
}

static const char *final_status(const mock_completion_t *llm)
{
    return llm->truncated ? "incomplete" : "completed";
}

/* {"id":..,"object":"response",...,"output":[ */
static void response_open(out_t *o, const mock_completion_t *llm, const char *status)
{
    put(o, "{\"id\":\"resp_mock_%llu\",\"object\":\"response\",\"created_at\":%lld,\"status\":\"%s\",\"model\":\"%.*s\","
           "\"output\":[",
        (unsigned long long)llm->id, (long long)llm->created, status, (int)llm->model.len, llm->model.base);
}

/* ],"usage":..,"incomplete_details":..} (usage and details are null while in progress) */
static void response_close(out_t *o, const mock_completion_t *llm, int done)
{
    if (!done) {
        put(o, "],\"usage\":null,\"incomplete_details\":null}");
        return;
    }
    put(o,
        "],\"usage\":{\"input_tokens\":%llu,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":%llu,"
        "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":%llu},\"incomplete_details\":%s}",
        (unsigned long long)llm->prompt_tokens, (unsigned long long)llm->completion_tokens,
        (unsigned long long)(llm->prompt_tokens + llm->completion_tokens),
        llm->truncated ? "{\"reason\":\"max_output_tokens\"}" : "null");
}

/* the message output item up to its content array, closed by put(o, "]}") */
static void item_open(out_t *o, const mock_completion_t *llm, const char *status)
{
    put(o, "{\"type\":\"message\",\"id\":\"msg_mock_%llu\",\"status\":\"%s\",\"role\":\"assistant\",\"content\":[",
        (unsigned long long)llm->id, status);
}

/* the output_text content part, with the whole text or empty */
static void part(out_t *o, const mock_completion_t *llm, int with_text)
{
    put(o, "{\"type\":\"output_text\",\"text\":\"");
    if (with_text)
        put_text(o, llm);
    put(o, "\",\"annotations\":[]}");
}

static void whole_response(out_t *o, const mock_completion_t *llm)
{
    response_open(o, llm, final_status(llm));
    item_open(o, llm, final_status(llm));
    part(o, llm, 1);
    put(o, "]}");
    response_close(o, llm, 1);
}

/* ---- plan and stream events ------------------------------------------------------------------------------------------- */

/* stream event kinds; DELTA repeats once per piece */
enum { CREATED, IN_PROGRESS, ITEM_ADDED, PART_ADDED, DELTA, TEXT_DONE, PART_DONE, ITEM_DONE, COMPLETED, NUM_KINDS };

static const char *const event_names[NUM_KINDS] = {
    "response.created",           "response.in_progress",       "response.output_item.added",
    "response.content_part.added", "response.output_text.delta", "response.output_text.done",
    "response.content_part.done",  "response.output_item.done",  "response.completed",
};

static void plan(mock_exchange_t *ex)
{
    const mock_completion_t *llm = &ex->llm;
    char head[1024], tail[1024];
    out_t h = {head, head + sizeof(head) - 1}, t = {tail, tail + sizeof(tail) - 1};

    if (llm->stream) {
        ex->nevents = llm->chunks + NUM_KINDS - 1;
        ex->cut_at = DELTA + llm->chunks / 2;
        return;
    }
    response_open(&h, llm, final_status(llm));
    item_open(&h, llm, final_status(llm));
    put(&h, "{\"type\":\"output_text\",\"text\":\"");
    put(&t, "\",\"annotations\":[]}]}");
    response_close(&t, llm, 1);
    put(&t, "\n");
    ex->body = completion_body(ex, head, (size_t)(h.p - head), tail, (size_t)(t.p - tail));
}

static h2o_iovec_t render_event(mock_exchange_t *ex, size_t index)
{
    const mock_completion_t *llm = &ex->llm;
    int kind = index < DELTA ? (int)index : index < DELTA + llm->chunks ? DELTA : (int)(index - llm->chunks) + 1;
    int with_text = kind >= TEXT_DONE;
    size_t size = with_text ? EVENT_ROOM + completion_text_len(llm) : sizeof(ex->scratch);
    char *buf = exchange_event_buffer(ex, size);
    out_t o = {buf, buf + size - 1};
    const char *name = kind == COMPLETED && llm->truncated ? "response.incomplete" : event_names[kind];

    put(&o, "event: %s\ndata: {\"type\":\"%s\",", name, name);
    if (kind >= PART_ADDED && kind <= PART_DONE)
        put(&o, "\"item_id\":\"msg_mock_%llu\",\"output_index\":0,\"content_index\":0,", (unsigned long long)llm->id);
    switch (kind) {
    case CREATED:
    case IN_PROGRESS:
        put(&o, "\"response\":");
        response_open(&o, llm, "in_progress");
        response_close(&o, llm, 0);
        break;
    case ITEM_ADDED:
    case ITEM_DONE:
        put(&o, "\"output_index\":0,\"item\":");
        item_open(&o, llm, kind == ITEM_ADDED ? "in_progress" : final_status(llm));
        if (kind == ITEM_DONE)
            part(&o, llm, 1);
        put(&o, "]}");
        break;
    case PART_ADDED:
    case PART_DONE:
        put(&o, "\"part\":");
        part(&o, llm, kind == PART_DONE);
        break;
    case DELTA:
        put(&o, "\"delta\":\"%s\"", completion_piece(index - DELTA));
        ex->tokens_sent += 2;
        break;
    case TEXT_DONE:
        put(&o, "\"text\":\"");
        put_text(&o, llm);
        put(&o, "\"");
        break;
    default: /* COMPLETED */
        put(&o, "\"response\":");
        whole_response(&o, llm);
        break;
    }
    put(&o, ",\"sequence_number\":%zu}\n\n", index);
    return h2o_iovec_init(buf, (size_t)(o.p - buf));
}

static const mock_surface_t responses_surface = {openai_render_error, parse, plan, render_event};

void responses_create(h2o_req_t *req)
{
    completion_handle(req, &responses_surface);
}
