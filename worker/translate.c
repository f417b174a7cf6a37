/* Translation glue (see translate.h). */
#include "worker/translate.h"

#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/json_scan.h"
#include "master/config.h"

static int client_surface(const tg_endpoint_t *ep, tg_surface_t *out)
{
    switch (ep->api) {
    case TG_API_CHAT: *out = TG_SURFACE_CHAT; return 0;
    case TG_API_RESPONSES: *out = TG_SURFACE_RESPONSES; return 0;
    case TG_API_MESSAGES: *out = TG_SURFACE_MESSAGES; return 0;
    default: return -1;
    }
}

/* The surface a key of PROTOCOL speaks for a client on FROM. */
static tg_surface_t upstream_surface(int protocol, tg_surface_t from)
{
    switch (protocol) {
    case TG_PROTO_ANTHROPIC: return TG_SURFACE_MESSAGES;
    case TG_PROTO_GEMINI: return TG_SURFACE_GEMINI;
    case TG_PROTO_ROUTER: return from; /* another unified gateway takes every surface natively */
    default: return from == TG_SURFACE_RESPONSES ? TG_SURFACE_RESPONSES : TG_SURFACE_CHAT;
    }
}

uint32_t tg_translate_protocols(const tg_endpoint_t *ep)
{
    tg_surface_t from;
    if (client_surface(ep, &from) != 0)
        return ep->protocols;
    uint32_t mask = 0;
    for (int p = 0; p < TG_PROTO_COUNT; p++) {
        tg_surface_t to = upstream_surface(p, from);
        if (to == from || tg_proto_supported(from, to))
            mask |= 1u << p;
    }
    return mask;
}

void tg_translate_free(tg_translation_t *t)
{
    if (t->stream) {
        tg_proto_stream_free(t->stream);
        t->stream = NULL;
    }
}

/* The client's stream_options.include_usage. */
static int wants_usage(h2o_iovec_t body)
{
    tg_json_span_t opts, inc;
    return tg_json_get(body.base, body.len, "stream_options", &opts) == 1 && opts.type == TG_JSON_OBJECT &&
           tg_json_get(opts.p, opts.len, "include_usage", &inc) == 1 && inc.type == TG_JSON_TRUE;
}

int tg_translate_attempt(h2o_req_t *req, tg_translation_t *t, const tg_endpoint_t *ep, int protocol, int stream,
                         const char *model, h2o_iovec_t *body, const char **path, const char **err)
{
    tg_translate_free(t); /* a previous attempt's translator */
    t->active = 0;
    if (client_surface(ep, &t->from) != 0)
        return 0;
    t->to = upstream_surface(protocol, t->from);
    t->model = model;
    if (t->from == t->to)
        return 0;
    t->active = 1;
    t->client_wants_usage = t->from == TG_SURFACE_CHAT && wants_usage(*body);
    tg_proto_request_t out;
    char *msg = NULL;
    if (tg_proto_request(t->from, t->to, body->base, body->len, model, stream, &out, &msg) != 0) {
        *err = tg_pool_fmt(&req->pool, "%s", msg ? msg : "the request cannot be translated for this upstream");
        free(msg);
        return -1;
    }
    *body = h2o_strdup(&req->pool, out.body, out.len);
    *path = tg_pool_fmt(&req->pool, "%s", out.path);
    free(out.body);
    if (stream)
        t->stream = tg_proto_stream_new(t->from, t->to, model, t->client_wants_usage);
    return 0;
}

static void emit(void *ud, const char *ev, size_t len)
{
    tg_relay_emit(ud, ev, len);
}

int tg_translate_event(tg_translation_t *t, tg_relay_t *r, const char *ev, size_t len)
{
    if (!t->active || !t->stream)
        return 1;
    return tg_proto_stream_event(t->stream, ev, len, emit, r) == 0 ? 0 : -1;
}

void tg_translate_stream_end(tg_translation_t *t, tg_relay_t *r)
{
    if (t->active && t->stream)
        tg_proto_stream_end(t->stream, emit, r);
}

h2o_iovec_t tg_translate_body(tg_translation_t *t, h2o_req_t *req, int status, h2o_iovec_t body)
{
    if (!t->active)
        return body;
    char *out = NULL, *err = NULL;
    size_t n = 0;
    int rc;
    if (status >= 200 && status < 300) {
        tg_proto_usage_t usage;
        rc = tg_proto_response(t->from, t->to, body.base, body.len, t->model, &out, &n, &usage, &err);
    } else {
        rc = tg_proto_error(t->from, t->to, status, body.base, body.len, &out, &n);
    }
    free(err);
    if (rc != 0 || !out)
        return body;
    h2o_iovec_t copy = h2o_strdup(&req->pool, out, n);
    free(out);
    return copy;
}

int tg_translate_usage(const tg_translation_t *t, tg_usage_t *u, uint64_t *text_chars)
{
    if (!t->active || !t->stream)
        return 0;
    tg_proto_usage_t pu;
    tg_proto_stream_usage(t->stream, &pu);
    *text_chars = tg_proto_stream_text_chars(t->stream);
    if (!pu.seen)
        return 0;
    u->prompt_tokens = pu.prompt_tokens;
    u->completion_tokens = pu.completion_tokens;
    u->cached_tokens = pu.cached_tokens;
    return 1;
}
