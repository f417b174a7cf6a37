/* assistants.c - the OpenAI Assistants surface (beta, `OpenAI-Beta: assistants=v2` required): threads
 * (POST /v1/threads, GET and DELETE /v1/threads/{id}), messages (POST and GET /v1/threads/{id}/messages) and runs
 * (POST /v1/threads/{id}/runs, POST /v1/threads/runs (thread and run), GET /v1/threads/{id}/runs and
 * /v1/threads/{id}/runs/{run_id}). A run is queued when created and completes the first time it is retrieved or listed (or at
 * once when created with "stream": true, answered as `thread.run.*` events): it then adds the assistant's reply to the
 * thread and reports its usage, on every later answer too. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"

#define TEXT_MAX 65536

/* The OpenAI-Beta header must name assistants=v2, as at the real provider. 1 when it does; else answers 400. */
static int beta_ok(mock_exchange_t *ex)
{
    ssize_t i = h2o_find_header_by_str(&ex->req->headers, H2O_STRLIT("openai-beta"), -1);
    if (i != -1 && memmem(ex->req->headers.entries[i].value.base, ex->req->headers.entries[i].value.len,
                          H2O_STRLIT("assistants=v2")) != NULL)
        return 1;
    exchange_reject(ex, 400, "invalid_beta",
                    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by "
                    "setting the header 'OpenAI-Beta: assistants=v2'.");
    return 0;
}

/* A new exchange for an Assistants call: NULL when it was answered already (bad knob, fault, no beta header). */
static mock_exchange_t *begin(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);
    if (ex == NULL || exchange_apply_fault(ex) || !beta_ok(ex))
        return NULL;
    return ex;
}

static void render_thread(mj_buf_t *out, const mock_obj_t *t)
{
    mj_printf(out, "{\"id\":\"%s\",\"object\":\"thread\",\"created_at\":%lld,\"metadata\":{},\"tool_resources\":{}}", t->id,
              (long long)t->created);
}

static void render_message(mj_buf_t *out, const mock_obj_t *m)
{
    mj_printf(out,
              "{\"id\":\"%s\",\"object\":\"thread.message\",\"created_at\":%lld,\"assistant_id\":%s,\"thread_id\":\"%s\","
              "\"run_id\":",
              m->id, (long long)m->created, m->c != NULL ? m->c : "null", m->parent);
    if (m->ref[0] != '\0')
        mj_printf(out, "\"%s\"", m->ref);
    else
        mj_printf(out, "null");
    mj_printf(out,
              ",\"status\":\"completed\",\"incomplete_details\":null,\"completed_at\":%lld,\"incomplete_at\":null,"
              "\"role\":%s,\"content\":[{\"type\":\"text\",\"text\":{\"value\":%s,\"annotations\":[]}}],"
              "\"attachments\":[],\"metadata\":{}}",
              (long long)m->created, m->a, m->b);
}

static void render_run(mj_buf_t *out, const mock_obj_t *r)
{
    mj_printf(out,
              "{\"id\":\"%s\",\"object\":\"thread.run\",\"created_at\":%lld,\"assistant_id\":%s,\"thread_id\":\"%s\","
              "\"status\":\"%s\",\"started_at\":",
              r->id, (long long)r->created, r->a, r->parent, r->completed ? "completed" : "queued");
    if (r->completed)
        mj_printf(out, "%lld", (long long)r->created);
    else
        mj_printf(out, "null");
    if (r->completed)
        mj_printf(out, ",\"expires_at\":null");
    else
        mj_printf(out, ",\"expires_at\":%lld", (long long)r->created + 600);
    mj_printf(out, ",\"cancelled_at\":null,\"failed_at\":null,\"completed_at\":");
    if (r->completed)
        mj_printf(out, "%lld", (long long)time(NULL));
    else
        mj_printf(out, "null");
    mj_printf(out,
              ",\"required_action\":null,\"last_error\":null,\"model\":%s,\"instructions\":\"You are a helpful "
              "assistant.\",\"tools\":[],\"tool_resources\":{},\"metadata\":{},\"temperature\":1.0,\"top_p\":1.0,"
              "\"max_prompt_tokens\":null,\"max_completion_tokens\":null,\"truncation_strategy\":{\"type\":\"auto\","
              "\"last_messages\":null},\"incomplete_details\":null,\"response_format\":\"auto\",\"tool_choice\":\"auto\","
              "\"parallel_tool_calls\":true,\"usage\":",
              r->b);
    if (r->completed)
        mj_printf(out, "{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"total_tokens\":%llu}}",
                  (unsigned long long)r->prompt_tokens, (unsigned long long)r->completion_tokens,
                  (unsigned long long)(r->prompt_tokens + r->completion_tokens));
    else
        mj_printf(out, "null}");
}

/* The thread named by path segment 2 (/v1/threads/{id}...), or NULL after answering 404. */
static mock_obj_t *thread_of(mock_exchange_t *ex)
{
    return obj_at_path(ex, OBJ_THREAD, 2, NULL, "thread");
}

/* ---- body members -------------------------------------------------------------------------------------------------- */

typedef struct fields {
    mj_value_t role, content, assistant_id, model, stream;
    int has_role, has_content, has_assistant, has_model, has_stream;
} fields_t;

static void on_member(void *ctx, h2o_iovec_t key, const mj_value_t *v)
{
    fields_t *f = ctx;
    if (mj_key_is(key, "role"))
        f->role = *v, f->has_role = 1;
    else if (mj_key_is(key, "content"))
        f->content = *v, f->has_content = 1;
    else if (mj_key_is(key, "assistant_id"))
        f->assistant_id = *v, f->has_assistant = 1;
    else if (mj_key_is(key, "model"))
        f->model = *v, f->has_model = 1;
    else if (mj_key_is(key, "stream"))
        f->stream = *v, f->has_stream = 1;
}

/* Reads the JSON body (an empty one is an empty object); 0, or -1 after answering 400. */
static int read_body(mock_exchange_t *ex, fields_t *f)
{
    memset(f, 0, sizeof(*f));
    if (ex->req->entity.len == 0)
        return 0;
    if (mj_each_member(ex->req->entity.base, ex->req->entity.len, on_member, f) != 0) {
        exchange_reject(ex, 400, NULL, COMPLETION_BAD_JSON);
        return -1;
    }
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------------------------------------ */

void threads_create(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    fields_t f;
    if (ex == NULL || read_body(ex, &f) != 0)
        return;
    serve_obj(ex, render_thread, obj_new(OBJ_THREAD, ex->key, "thread_mock", NULL));
}

void threads_retrieve(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t;
    if (ex == NULL || (t = thread_of(ex)) == NULL)
        return;
    serve_obj(ex, render_thread, t);
}

void threads_delete(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t, *o;
    if (ex == NULL || (t = thread_of(ex)) == NULL)
        return;
    mj_buf_t out = {0};
    mj_printf(&out, "{\"id\":\"%s\",\"object\":\"thread.deleted\",\"deleted\":true}\n", t->id);
    for (mock_obj_kind_t k = OBJ_MESSAGE; k <= OBJ_RUN; ++k)
        while ((o = obj_next(NULL, k, ex->key, t->id)) != NULL)
            obj_delete(o);
    obj_delete(t);
    serve_json(ex, &out);
}

void messages_create(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t;
    fields_t f;
    if (ex == NULL || (t = thread_of(ex)) == NULL || read_body(ex, &f) != 0)
        return;
    if (!f.has_role || f.role.type != MJ_STRING ||
        !(h2o_memis(f.role.base, f.role.len, H2O_STRLIT("user")) || h2o_memis(f.role.base, f.role.len, H2O_STRLIT("assistant")))) {
        exchange_reject(ex, 400, NULL, "Invalid value for 'role': expected 'user' or 'assistant'.");
        return;
    }
    if (!f.has_content || f.content.type != MJ_STRING || f.content.len > TEXT_MAX) {
        exchange_reject(ex, 400, NULL, "Invalid 'content': the mock takes a string of text.");
        return;
    }
    mock_obj_t *m = obj_new(OBJ_MESSAGE, ex->key, "msg_thr_mock", t->id);
    obj_set_text(&m->a, f.role.base, f.role.len, 1);
    obj_set_text(&m->b, f.content.base, f.content.len, 1);
    serve_obj(ex, render_message, m);
}

void messages_list(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t;
    if (ex == NULL || (t = thread_of(ex)) == NULL)
        return;
    serve_objs(ex, OBJ_MESSAGE, t->id, render_message, NULL, NULL);
}

/* The run completes: the assistant's reply (the deterministic completion text of its pieces) joins the thread. */
static void complete_run(mock_exchange_t *ex, mock_obj_t *t, mock_obj_t *r)
{
    if (r->completed)
        return;
    r->completed = 1;
    mj_buf_t text = {0};
    for (uint64_t i = 0; i != r->completion_tokens / 2; ++i)
        mj_printf(&text, "%s", completion_piece(i));
    mock_obj_t *m = obj_new(OBJ_MESSAGE, ex->key, "msg_thr_mock", t->id);
    obj_set_text(&m->a, H2O_STRLIT("assistant"), 0);
    obj_set_text(&m->b, text.base != NULL ? text.base : "", text.len, 0);
    m->c = strdup(r->a);
    snprintf(m->ref, sizeof(m->ref), "%s", r->id);
    mj_free(&text);
}

/* Creates a run of thread T from the body F (answered 400 and NULL when it is not one the mock takes). */
static mock_obj_t *new_run(mock_exchange_t *ex, mock_obj_t *t, const fields_t *f)
{
    if (!f->has_assistant || f->assistant_id.type != MJ_STRING || f->assistant_id.len == 0 || f->assistant_id.len > 256) {
        exchange_reject(ex, 400, NULL, "Missing required parameter: 'assistant_id'.");
        return NULL;
    }
    if (f->has_model && (f->model.type != MJ_STRING || f->model.len > COMPLETION_MAX_MODEL_LEN)) {
        exchange_reject(ex, 400, NULL, "Invalid value for 'model'.");
        return NULL;
    }
    mock_obj_t *r = obj_new(OBJ_RUN, ex->key, "run_mock", t->id);
    obj_set_text(&r->a, f->assistant_id.base, f->assistant_id.len, 1);
    if (f->has_model)
        obj_set_text(&r->b, f->model.base, f->model.len, 1);
    else
        obj_set_text(&r->b, H2O_STRLIT("gpt-4o-mini"), 0);
    /* usage: the thread's text (1 token per 4 bytes, at least 1) in, chunks pieces of 2 tokens out */
    size_t bytes = 0;
    for (mock_obj_t *m = obj_next(NULL, OBJ_MESSAGE, ex->key, t->id); m != NULL; m = obj_next(m, OBJ_MESSAGE, ex->key, t->id))
        bytes += strlen(m->b) - 2;
    r->prompt_tokens = bytes / 4 > 0 ? bytes / 4 : 1;
    r->completion_tokens = ex->knobs.chunks * 2;
    return r;
}

/* Answers the new run R: its object, or with "stream": true the events of its whole life (created, completed, done). */
static void serve_run(mock_exchange_t *ex, mock_obj_t *t, mock_obj_t *r, const fields_t *f)
{
    if (!(f->has_stream && f->stream.type == MJ_TRUE)) {
        serve_obj(ex, render_run, r);
        return;
    }
    mj_buf_t out = {0};
    mj_printf(&out, "event: thread.run.created\ndata: ");
    render_run(&out, r);
    complete_run(ex, t, r);
    mj_printf(&out, "\n\nevent: thread.run.completed\ndata: ");
    render_run(&out, r);
    mj_printf(&out, "\n\nevent: done\ndata: [DONE]\n\n");
    ex->body = h2o_strdup(&ex->req->pool, out.base, out.len);
    mj_free(&out);
    exchange_serve(ex, "text/event-stream");
}

void runs_create(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t, *r;
    fields_t f;
    if (ex == NULL || (t = thread_of(ex)) == NULL || read_body(ex, &f) != 0 || (r = new_run(ex, t, &f)) == NULL)
        return;
    serve_run(ex, t, r, &f);
}

/* POST /v1/threads/runs: a new (empty) thread and a run of it. */
void threads_create_and_run(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *r;
    fields_t f;
    if (ex == NULL || read_body(ex, &f) != 0)
        return;
    mock_obj_t *t = obj_new(OBJ_THREAD, ex->key, "thread_mock", NULL);
    if ((r = new_run(ex, t, &f)) == NULL)
        return;
    serve_run(ex, t, r, &f);
}

/* Listed, a run completes (CTX: its thread): every run is shown. */
static int completed_run(mock_exchange_t *ex, mock_obj_t *r, void *ctx)
{
    complete_run(ex, ctx, r);
    return 1;
}

void runs_list(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t;
    if (ex == NULL || (t = thread_of(ex)) == NULL)
        return;
    serve_objs(ex, OBJ_RUN, t->id, render_run, completed_run, t);
}

void runs_retrieve(h2o_req_t *req)
{
    mock_exchange_t *ex = begin(req);
    mock_obj_t *t, *r;
    if (ex == NULL || (t = thread_of(ex)) == NULL || (r = obj_at_path(ex, OBJ_RUN, 4, t->id, "run")) == NULL)
        return;
    complete_run(ex, t, r);
    serve_obj(ex, render_run, r);
}
