/* The request path (architecture.md, "A request's path"): dispatch, authenticate, scan the body,
 * pick an upstream key, relay, capture usage, settle. */
#include "worker/proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/json_scan.h"
#include "common/keyhash.h"
#include "common/log.h"
#include "master/config.h"
#include "shm/accounts.h"
#include "worker/abuse.h"
#include "worker/admit.h"
#include "worker/endpoint.h"
#include "worker/relay.h"
#include "worker/route.h"
#include "worker/settle.h"
#include "worker/translate.h"
#include "worker/usage_read.h"
#include "worker/worker.h"

#define MAX_ATTEMPTS 4 /* upstream keys tried for one request before the failure is shown */
#define MAX_LEVELS 8   /* levels one request may fall over to */

/* Per-request state of a proxied model call, in the request pool. */
typedef struct tg_call {
    tg_relay_t *relay;
    uint32_t slot; /* caller's account slot */
    tg_usage_t u;
    char method[8];
    char client_ip[64];
    size_t body_len;
    unsigned injected_usage : 1; /* tollgate asked for stream usage: hide that extra chunk */
    unsigned usage_seen : 1;
    uint64_t text_chars; /* generated text relayed so far, for an estimate if the client leaves */
    uint64_t owner_id;
    int32_t level;
    h2o_iovec_t body;   /* what goes upstream, kept for every attempt */
    uint32_t route_slot; /* upstream key of the current attempt */
    uint32_t tried[MAX_ATTEMPTS];
    unsigned n_tried;
    int32_t levels[MAX_LEVELS]; /* levels already exhausted, for SWITCH_OVER */
    unsigned n_levels;
    const tg_endpoint_t *ep;
    h2o_iovec_t content_type; /* of a multipart body, passed on with its boundary */
    const char *headers[7];
    h2o_iovec_t client_body; /* the client's body (model mapped), the source of every translation */
    tg_translation_t tr;     /* the current attempt's translation, if its key speaks another surface */
    const char *refusal;     /* why the first key could not take the request (translation refused it) */
    tg_admit_t *adm; /* the admission: reservation, limits charged, price (worker/admit.h) */
} tg_call_t;

void tg_client_ip(h2o_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    out[0] = '\0';
    if (len == 0)
        snprintf(out, cap, "unknown");
    else if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
    else
        snprintf(out, cap, "local");
}

static void add_cors(h2o_req_t *req)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-origin"), 0, NULL, H2O_STRLIT("*"));
}

/* Finds and reads usage in a JSON object; returns 1 when found. */
static int capture_usage(tg_call_t *c, const char *p, size_t n)
{
    if (!tg_usage_read(&c->u, p, n))
        return 0;
    c->usage_seen = 1;
    return 1;
}

static int on_event(tg_relay_t *r, const char *ev, size_t len)
{
    tg_call_t *c = r->owner;
    const char *data;
    size_t n;
    int relay_as_is = tg_translate_event(&c->tr, r, ev, len);
    if (relay_as_is <= 0)
        return 0; /* translated (or refused): the upstream's own event is not shown */
    if (tg_sse_data(ev, len, &data, &n) != 0 || n == 0 || data[0] != '{')
        return 1;
    c->text_chars += tg_usage_event_text(data, n);
    if (memmem(data, n, "\"usage\"", 7) == NULL)
        return 1;
    if (!capture_usage(c, data, n))
        return 1;
    if (c->injected_usage) { /* the usage-only chunk the client did not ask for */
        tg_json_span_t choices;
        if (tg_json_get(data, n, "choices", &choices) == 1 && choices.type == TG_JSON_ARRAY && choices.len == 2)
            return 0;
    }
    return 1;
}

static void on_finish(tg_relay_t *r, h2o_iovec_t body)
{
    tg_call_t *c = r->owner;
    tg_usage_t *u = &c->u;
    uint64_t translated_chars;
    if (tg_translate_usage(&c->tr, u, &translated_chars))
        c->usage_seen = 1;
    if (c->tr.stream)
        c->text_chars = translated_chars;
    if (body.len && r->status >= 200 && r->status < 300)
        capture_usage(c, body.base, body.len);
    u->status = (uint32_t)(r->status ? r->status : 502);
    if (r->aborted)
        u->flags |= TG_USAGE_ABORTED;
    int ok = r->status >= 200 && r->status < 300;
    if (ok && (r->aborted || !c->usage_seen)) {
        /* the upstream's own report is missing or cut short: bill the prompt it reported (or
         * one token per 4 bytes of request) and the text relayed so far (one token per 4 chars) */
        uint64_t est_completion = (c->text_chars + 3) / 4;
        if (!c->usage_seen || u->prompt_tokens == 0)
            u->prompt_tokens = (c->body_len + 3) / 4;
        if (est_completion > u->completion_tokens)
            u->completion_tokens = est_completion;
        u->flags |= TG_USAGE_ESTIMATED;
    }
    uint64_t now = tg_mono_ns();
    u->latency_ms = (uint32_t)((now - r->t0_ns) / 1000000u);
    u->ttfb_ms = r->ttfb_ns ? (uint32_t)((r->ttfb_ns - r->t0_ns) / 1000000u) : 0;
    u->ts_ms = tg_now_ms();
    tg_flight_record_ts(tg_w->arena, &c->adm->hold, u->ts_ms); /* an orphan billed if this process dies takes this key */
    u->cost_nanos = tg_admit_finish(tg_admit_worker(), c->adm, u->prompt_tokens, u->completion_tokens, u->cached_tokens);
    if (r->req && !r->started) {
        char *cost = h2o_mem_alloc_pool(&r->req->pool, 32);
        size_t n = tg_admit_dollars(cost, u->cost_nanos);
        h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, H2O_STRLIT("x-tollgate-cost"), 0, NULL, cost, n);
    }
    tg_credit_bill_t bill = tg_admit_bill(c->adm);
    tg_settle_bill(c->slot, u, c->method, c->client_ip, &bill);
}

static int on_failure(tg_relay_t *r, int status, int err, const tg_xfer_header_t *h, size_t n);
static int on_head_ok(tg_relay_t *r);
static h2o_iovec_t on_transform(tg_relay_t *r, h2o_iovec_t body)
{
    tg_call_t *c = r->owner;
    return tg_translate_body(&c->tr, r->req, r->status, body);
}

static void on_stream_end(tg_relay_t *r)
{
    tg_call_t *c = r->owner;
    tg_translate_stream_end(&c->tr, r);
}

static const tg_relay_hooks_t g_call_hooks = {on_event, on_finish, on_failure, on_head_ok, on_transform, on_stream_end};

/* Authenticates the caller: the account slot, or -1 after answering 401. */
static int64_t authenticate(h2o_req_t *req, tg_account_settings_t *acct)
{
    const char *key;
    size_t len;
    if (tg_http_api_key(req, &key, &len) != 0) {
        tg_http_error(req, 401, "invalid_request_error", "invalid_api_key",
                      "missing API key: send Authorization: Bearer <key> or x-api-key");
        return -1;
    }
    uint8_t hash[32];
    tg_key_hash(key, len, hash);
    int64_t slot = tg_account_lookup(tg_w->arena, hash);
    if (slot < 0 || tg_account_read(tg_w->arena, (uint32_t)slot, acct) != 0) {
        tg_http_error(req, 401, "invalid_request_error", "invalid_api_key", "invalid API key");
        return -1;
    }
    if (!(acct->flags & TG_ACCT_ENABLED)) {
        tg_http_error(req, 401, "invalid_request_error", "account_disabled", "this account is disabled");
        return -1;
    }
    if (acct->flags & TG_ACCT_SUSPENDED) {
        tg_http_error(req, 429, "insufficient_quota", "insufficient_quota", "this account is suspended");
        return -1;
    }
    return slot;
}

/* Builds the upstream body: for OpenAI streams without stream_options, ask for the usage chunk. */
static h2o_iovec_t upstream_body(h2o_req_t *req, tg_call_t *c, int stream)
{
    h2o_iovec_t body = req->entity;
    if (!stream)
        return body;
    tg_json_span_t opts;
    if (tg_json_get(body.base, body.len, "stream_options", &opts) == 1) {
        return body; /* the client chose; its own usage chunk passes through */
    }
    const char *brace = memchr(body.base, '{', body.len);
    size_t head = (size_t)(brace - body.base) + 1;
    static const char inject[] = "\"stream_options\":{\"include_usage\":true},";
    /* an empty object `{}` would leave a trailing comma: scan guaranteed a member (model) exists */
    char *p = h2o_mem_alloc_pool(&req->pool, body.len + sizeof(inject));
    memcpy(p, body.base, head);
    memcpy(p + head, inject, sizeof(inject) - 1);
    memcpy(p + head + sizeof(inject) - 1, body.base + head, body.len - head);
    c->injected_usage = 1;
    return h2o_iovec_init(p, body.len + sizeof(inject) - 1);
}

static const char *upstream_url(h2o_req_t *req, const char *base, const char *path)
{
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    if (blen >= 3 && memcmp(base + blen - 3, "/v1", 3) == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    return tg_pool_fmt(&req->pool, "%.*s%s", (int)blen, base, path);
}

/* Writes "NAME: value" of the client's header NAME (or DEFAULT when absent and not NULL) into
 * *OUT; returns 1 when a line was written. */
static size_t copy_client_header(h2o_req_t *req, const char *name, const char *def, const char **out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        *out = tg_pool_fmt(&req->pool, "%s: %.*s", name, (int)v.len, v.base);
        return 1;
    }
    if (!def)
        return 0;
    *out = tg_pool_fmt(&req->pool, "%s: %s", name, def);
    return 1;
}

/* The next key for C, in the fail-over order of api-compat 7.4: the keys of the current level
 * round-robin, then the levels SWITCH_OVER names (each once, a cycle stops), then any level of
 * the owner's pool. Keys already tried are skipped. */
static int pick_key(tg_call_t *c, tg_route_t *route)
{
    uint32_t protocols = tg_translate_protocols(c->ep);
    for (;;) {
        if (tg_route_pick(c->owner_id, c->level, protocols, c->tried, c->n_tried, route) == 0)
            return 0;
        if (c->level < 0 || c->n_levels >= MAX_LEVELS)
            return -1;
        c->levels[c->n_levels++] = c->level;
        int32_t next = tg_admit_switch_over(tg_admit_worker(), c->owner_id, c->level);
        for (unsigned i = 0; i < c->n_levels && next > 0; i++)
            if (c->levels[i] == next)
                next = 0; /* a cycle: each level once */
        c->level = next > 0 ? next : -1; /* -1: any level of the pool, last */
    }
}

/* Picks a key for C and starts one upstream exchange. 0, or -1 when no usable key is left. */
static int start_attempt(tg_call_t *c)
{
    h2o_req_t *req = c->relay->req;
    tg_route_t route;
    if (pick_key(c, &route) != 0)
        return -1;
    c->tried[c->n_tried++] = route.slot;
    c->u.upstream_id = route.settings.id;
    h2o_iovec_t body = c->client_body;
    const char *path = c->ep->upstream_path, *why = NULL;
    if (tg_translate_attempt(req, &c->tr, c->ep, route.settings.protocol, (c->u.flags & TG_USAGE_STREAM) != 0,
                             c->u.model, &body, &path, &why) != 0) {
        if (!c->relay->started && c->n_tried == 1) /* the first key cannot take it: say why */
            c->refusal = why;
        return -1;
    }
    if (!c->tr.active)
        body = c->body; /* as the client sent it (with the usage request tollgate may add) */
    size_t nh = 0;
    if (route.settings.protocol == TG_PROTO_ANTHROPIC)
        c->headers[nh++] = tg_pool_fmt(&req->pool, "x-api-key: %s", route.secret);
    else if (route.settings.protocol == TG_PROTO_GEMINI)
        c->headers[nh++] = tg_pool_fmt(&req->pool, "x-goog-api-key: %s", route.secret);
    else
        c->headers[nh++] = tg_pool_fmt(&req->pool, "Authorization: Bearer %s", route.secret);
    if (c->ep->multipart)
        c->headers[nh++] = tg_pool_fmt(&req->pool, "Content-Type: %.*s", (int)c->content_type.len, c->content_type.base);
    else
        c->headers[nh++] = "Content-Type: application/json";
    c->headers[nh++] = (c->u.flags & TG_USAGE_STREAM) ? "Accept: text/event-stream" : "Accept: */*";
    if (route.settings.protocol == TG_PROTO_ANTHROPIC || (c->ep->api == TG_API_MESSAGES && !c->tr.active)) {
        nh += copy_client_header(req, "anthropic-version", "2023-06-01", &c->headers[nh]);
        nh += copy_client_header(req, "anthropic-beta", NULL, &c->headers[nh]);
    }
    c->headers[nh++] = tg_pool_fmt(&req->pool, "x-request-id: %s", c->u.request_id);

    tg_xfer_request_t x = {0};
    x.url = upstream_url(req, route.settings.url, path);
    x.method = "POST";
    x.body = body.base;
    x.body_len = body.len;
    x.headers = c->headers;
    x.n_headers = nh;
    x.connect_timeout_ms = tg_w->cfg->upstream.connect_timeout_ms;
    x.first_byte_timeout_ms = tg_w->cfg->upstream.first_byte_timeout_ms;
    x.idle_timeout_ms = tg_w->cfg->upstream.idle_timeout_ms;
    c->route_slot = route.slot;
    tg_flight_dispatched(tg_w->arena, &c->adm->hold, route.settings.id); /* from here on it is billed, whatever happens */
    return tg_relay_start(c->relay, &x);
}

static int on_failure(tg_relay_t *r, int status, int err, const tg_xfer_header_t *h, size_t n)
{
    tg_call_t *c = r->owner;
    uint32_t retry_after = 0;
    for (size_t i = 0; i < n; i++)
        retry_after = (uint32_t)atoi(h[i].value.base);
    tg_route_failed(c->route_slot, status, retry_after);
    tg_debug("upstream key in slot %u failed (%d, %d); attempt %u", c->route_slot, status, err, r->attempts);
    if (r->attempts >= MAX_ATTEMPTS)
        return 0;
    return start_attempt(c) == 0;
}

static int on_head_ok(tg_relay_t *r)
{
    tg_call_t *c = r->owner;
    tg_route_succeeded(c->route_slot);
    return 0;
}

/* Finds the request's model (JSON member or multipart field) and stream flag; answers 400 and
 * returns -1 when the body is malformed or the model is missing. */
static int scan_request(h2o_req_t *req, const tg_endpoint_t *ep, h2o_iovec_t *model, int *is_stream, h2o_iovec_t *ctype)
{
    *model = h2o_iovec_init("", 0);
    *is_stream = 0;
    if (ep->multipart) {
        ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
        *ctype = i >= 0 ? req->headers.entries[i].value : h2o_iovec_init("", 0);
        if (ctype->len < 19 || strncasecmp(ctype->base, "multipart/form-data", 19) != 0) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", "Content-Type: multipart/form-data is required");
            return -1;
        }
        if (tg_multipart_model(req->entity, *ctype, model) != 0 && !ep->model_optional) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", "model: a form field is required");
            return -1;
        }
    } else {
        tg_json_span_t m, stream;
        int has_model = tg_json_get(req->entity.base, req->entity.len, "model", &m);
        if (has_model < 0) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_json", "the request body is not a valid JSON object");
            return -1;
        }
        if (has_model && m.type == TG_JSON_STRING)
            *model = h2o_iovec_init(m.p, m.len);
        else if (!ep->model_optional || has_model) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", "model: a non-empty string is required");
            return -1;
        }
        *is_stream = tg_json_get(req->entity.base, req->entity.len, "stream", &stream) == 1 && stream.type == TG_JSON_TRUE;
    }
    if (model->len >= TG_MODEL_MAX || (model->len == 0 && !ep->model_optional)) {
        tg_http_error(req, 400, "invalid_request_error", "invalid_request",
                      model->len ? "model: the name is too long" : "model: a non-empty string is required");
        return -1;
    }
    return 0;
}

static int proxy_model(h2o_req_t *req, const tg_endpoint_t *ep)
{
    tg_account_settings_t acct;
    int64_t slot = authenticate(req, &acct);
    if (slot < 0)
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        tg_http_error(req, 405, "invalid_request_error", "method_not_allowed", "use POST for this path");
        return 0;
    }
    h2o_iovec_t model, ctype = {NULL, 0};
    int is_stream;
    if (scan_request(req, ep, &model, &is_stream, &ctype) != 0)
        return 0;
    if (!tg_settle_ring_has_room()) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        tg_http_error(req, 503, "server_error", "usage_ring_full", "the gateway is saturated; retry shortly");
        return 0;
    }
    /* lists, mapping, price, limits, credit (worker/admit.h); settled in on_finish */
    tg_admit_t *adm = h2o_mem_alloc_pool(&req->pool, sizeof(*adm));
    struct sockaddr_storage peer;
    char rid[TG_REQUEST_ID_MAX];
    tg_worker_request_id(rid);
    tg_admit_req_t in = {(uint32_t)slot, &acct, req->path_normalized.base, req->path_normalized.len, model.base, model.len,
                         0, NULL, req->entity.len, ep->multipart ? 0 : tg_admit_max_tokens(req->entity.base, req->entity.len),
                         rid, is_stream};
    tg_admit_peer(req, &peer, &in);
    tg_admit_refusal_t why;
    if (tg_admit(tg_admit_worker(), &in, adm, &why) != 0) {
        add_cors(req);
        tg_admit_refuse(req, &why);
        return 0;
    }
    if (adm->mapped && !ep->multipart) { /* the upstream gets the mapped model */
        tg_json_span_t span = {model.base, model.len, TG_JSON_STRING};
        req->entity = tg_admit_body(&req->pool, req->entity, &span, adm);
    }
    tg_admit_headers(req, adm);

    tg_call_t *c = h2o_mem_alloc_pool(&req->pool, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->adm = adm;
    c->slot = (uint32_t)slot;
    c->ep = ep;
    c->content_type = ctype;
    c->owner_id = acct.owner_id;
    c->level = adm->level;
    c->body_len = req->entity.len;
    snprintf(c->method, sizeof(c->method), "%.*s", (int)req->method.len, req->method.base);
    tg_client_ip(req, c->client_ip, sizeof(c->client_ip));
    tg_usage_t *u = &c->u;
    memcpy(u->request_id, rid, strlen(rid) + 1);
    u->account_id = acct.id;
    memcpy(u->model, adm->model, adm->model_len + 1); /* the model billed (after ModelMapper) */
    snprintf(u->path, sizeof(u->path), "%.*s", (int)req->path_normalized.len, req->path_normalized.base);
    if (is_stream)
        u->flags |= TG_USAGE_STREAM;

    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, u->request_id,
                          strlen(u->request_id));
    add_cors(req);
    c->relay = tg_relay_create(req, &g_call_hooks, c);
    c->client_body = req->entity;
    c->body = ep->api == TG_API_CHAT ? upstream_body(req, c, is_stream) : req->entity;
    if (start_attempt(c) != 0) {
        c->relay->status = c->refusal ? 400 : 503;
        if (c->refusal)
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", c->refusal);
        else
            tg_http_error(req, 503, "upstream_error", "no_upstream_key", "no upstream key is available for this account");
    }
    return 0;
}

static int serve_health(h2o_req_t *req)
{
    int ready = atomic_load(&tg_w->arena->hdr->persister_ready) == 1;
    if (ready)
        tg_http_json(req, 200, H2O_STRLIT("{\"status\":\"ok\"}"));
    else
        tg_http_error(req, 503, "server_error", "starting", "the persister is not ready yet");
    return 0;
}

static int serve_preflight(h2o_req_t *req)
{
    add_cors(req);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"), 0, NULL,
                          H2O_STRLIT("GET, POST, PUT, DELETE, OPTIONS"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-headers"), 0, NULL,
                          H2O_STRLIT("Authorization, Content-Type, x-api-key, anthropic-version"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0, NULL,
                          H2O_STRLIT("86400"));
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_send_inline(req, "", 0);
    return 0;
}

static int path_is(h2o_iovec_t path, const char *p)
{
    return h2o_memis(path.base, path.len, p, strlen(p));
}

static int path_has_prefix(h2o_iovec_t path, const char *p)
{
    size_t n = strlen(p);
    return path.len >= n && memcmp(path.base, p, n) == 0;
}

static int is_management(h2o_iovec_t path)
{
    return path_has_prefix(path, "/x-") || path_has_prefix(path, "/dashboard/") || path_has_prefix(path, "/admin") ||
           path_has_prefix(path, "/manage") || path_is(path, "/metrics") || path_is(path, "/v1/models") ||
           path_is(path, "/models");
}

int tg_proxy_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    if (tg_abuse_request(req) != 0) {
        tg_http_error(req, 429, "rate_limit_exceeded", "connection_abuse", "this connection cancels most of its requests");
        return 0;
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")))
        return serve_preflight(req);
    if (path_is(path, "/healthz"))
        return serve_health(req);
    const tg_endpoint_t *ep = tg_endpoint_find(path);
    if (ep)
        return proxy_model(req, ep);
    if (is_management(path)) {
        add_cors(req);
        return tg_forward_on_req(req);
    }
    add_cors(req);
    tg_http_error(req, 404, "invalid_request_error", "not_found", "unknown path");
    return 0;
}
