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
#include "common/put.h"
#include "master/config.h"
#include "shm/accounts.h"
#include "shm/matcher.h"
#include "worker/abuse.h"
#include "worker/admit.h"
#include "worker/endpoint.h"
#include "worker/freelist.h"
#include "worker/relay.h"
#include "worker/route.h"
#include "worker/run_seen.h"
#include "worker/run_usage.h"
#include "worker/settle.h"
#include "worker/translate.h"
#include "worker/usage_read.h"
#include "worker/worker.h"

#define MAX_ATTEMPTS 6 /* upstream keys tried for one request before the failure is shown */
#define MAX_LEVELS 16  /* levels one model of a request may fall over to */
#define MAX_MODELS 4   /* models one request may fall over to (ModelFailover) */
#define FREE_CALLS_MAX 256 /* call objects kept for reuse by one worker */

/* Fail-over stages for one model (api-compat 7.4, 7.7): SWITCH_OVER levels, then Gear drift. */
enum { STAGE_SWITCH = 0, STAGE_DRIFT, STAGE_DONE };

/* Per-request state of a proxied call, from the worker's free list (g_calls): owned by its relay,
 * which may outlive the request (client_abort: finish) and gives it back in on_free. */
typedef struct tg_call {
    tg_relay_t *relay;
    uint32_t slot; /* caller's account slot */
    tg_usage_t u;
    char method[8];
    char client_ip[64];
    size_t body_len;
    unsigned injected_usage : 1; /* tollgate asked for stream usage: hide that extra chunk */
    unsigned has_stream_options : 1; /* the client's body names stream_options (seen by scan_request) */
    unsigned usage_seen : 1;
    uint64_t text_chars; /* generated text relayed so far, for an estimate if the client leaves */
    uint64_t owner_id;
    int32_t level;
    h2o_iovec_t body;   /* what goes upstream, kept for every attempt */
    uint32_t route_slot; /* upstream key of the current attempt */
    uint32_t tried[MAX_ATTEMPTS];
    unsigned n_tried;
    int32_t levels[MAX_LEVELS]; /* levels of the current model already exhausted */
    unsigned n_levels;
    int stage;           /* STAGE_* of the current model */
    int32_t drift_next;  /* the next level Gear drift considers */
    int32_t acct_level;  /* the account's Level, Gear and AllowLevels */
    int32_t gear;
    uint64_t allow_levels;
    char models[MAX_MODELS][TG_MODEL_MAX]; /* models already failed over from (ModelFailover) */
    unsigned n_models;
    unsigned unmetered : 1; /* the endpoint reports no usage per request (files, threads) */
    unsigned stream_run_seen : 1; /* stream_run holds the finished run a `thread.run.*` event showed */
    tg_run_t stream_run;
    const tg_endpoint_t *ep;
    const char *path;         /* upstream path (stateful endpoints: the client's, with its query) */
    h2o_iovec_t content_type; /* of a multipart body, passed on with its boundary */
    const char *headers[9];
    h2o_iovec_t client_body; /* the client's body (model mapped), the source of every translation */
    tg_translation_t tr;     /* the current attempt's translation, if its key speaks another surface */
    const char *refusal;     /* why the first key could not take the request (translation refused it) */
    tg_admit_t *adm; /* the admission: reservation, limits charged, price (worker/admit.h) */
    tg_admit_t admission;
} tg_call_t;

/* Call objects given back, for the next requests (one event loop per worker process). */
static tg_freelist_t g_calls = TG_FREELIST_INIT(tg_call_t, FREE_CALLS_MAX);

void tg_client_ip(h2o_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    out[0] = '\0';
    if (len == 0)
        snprintf(out, cap, "unknown");
    else if (ss.ss_family == AF_INET && cap >= 16)
        *tg_put_ipv4(out, (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr) = '\0';
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

static int read_event(tg_relay_t *r, const char *ev, size_t len)
{
    tg_call_t *c = r->owner;
    const char *data;
    size_t n;
    int relay_as_is = tg_translate_event(&c->tr, r, ev, len);
    if (relay_as_is <= 0)
        return 0; /* translated (or refused): the upstream's own event is not shown */
    if (c->ep->runs && !c->stream_run_seen && tg_sse_data(ev, len, &data, &n) == 0 && n && data[0] == '{')
        c->stream_run_seen = (unsigned)tg_run_terminal(data, n, &c->stream_run); /* thread.run.completed and the like */
    if (c->unmetered || tg_sse_data(ev, len, &data, &n) != 0 || n == 0 || data[0] != '{')
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

/* Each event, once read: the flight entry follows the answer (billed so if this process dies). */
static int on_event(tg_relay_t *r, const char *ev, size_t len)
{
    int rc = read_event(r, ev, len);
    tg_call_t *c = r->owner;
    if (!c->unmetered)
        tg_settle_progress(&c->adm->hold, &c->tr, &c->u, c->usage_seen, c->text_chars);
    return rc;
}

/* The price of RUN's model for C's owner; 0 (billed 0, logged) when it has none: the run is done,
 * so it cannot be refused any more (docs/proxy.md, "Assistants runs"). */
static int run_price(tg_call_t *c, const tg_run_t *run, tg_price_t *price)
{
    if (tg_admit_price_of(tg_admit_worker(), c->owner_id, run->model, strlen(run->model), price))
        return 1;
    tg_warn("run %s used the model %s, which has no price: billed 0", run->id, run->model);
    return 0;
}

/* Assistants: the finished runs of a good answer (BODY, or the run event of a stream) are billed
 * from their own usage at their model's price (docs/proxy.md); runs this worker recorded before
 * are left off (worker/run_seen.h). The first goes on this call's record; returns how many are
 * left (RUNS[1..] get records of their own, after this one). */
static size_t take_runs(tg_call_t *c, tg_relay_t *r, h2o_iovec_t body, tg_run_t *runs)
{
    size_t n = 0;
    if (!c->ep->runs || r->status < 200 || r->status >= 300)
        return 0;
    if (c->stream_run_seen) {
        runs[0] = c->stream_run;
        n = 1;
    } else if (body.len) {
        n = tg_run_scan(body.base, body.len, runs, TG_RUNS_MAX);
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!tg_run_seen_or_note(runs[i].id))
            runs[kept++] = runs[i];
    n = kept;
    if (n == 0)
        return 0;
    tg_usage_t *u = &c->u;
    memcpy(u->run_id, runs[0].id, sizeof(u->run_id));
    memcpy(u->model, runs[0].model, sizeof(u->model));
    u->prompt_tokens = runs[0].prompt_tokens;
    u->completion_tokens = runs[0].completion_tokens;
    c->adm->priced = run_price(c, &runs[0], &c->adm->price);
    return n;
}

/* The records of RUNS[1..N) (a list answer): U's fields, the run's own, request id U's + "-i". */
static void record_more_runs(tg_call_t *c, const tg_usage_t *u, const tg_run_t *runs, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        tg_usage_t x = *u;
        int len = snprintf(x.request_id, sizeof(x.request_id), "%.32s-%u", u->request_id, (unsigned)(i % 1000u));
        if (len < 0 || (size_t)len >= sizeof(x.request_id)) /* never: request ids are 32 characters */
            continue;
        memcpy(x.run_id, runs[i].id, sizeof(x.run_id));
        memcpy(x.model, runs[i].model, sizeof(x.model));
        x.prompt_tokens = runs[i].prompt_tokens;
        x.completion_tokens = runs[i].completion_tokens;
        x.cached_tokens = 0;
        tg_price_t price;
        x.cost_nanos = run_price(c, &runs[i], &price) ? tg_cost_nanos(&price, x.prompt_tokens, x.completion_tokens, 0,
                                                                       c->adm->rates_ppm, c->adm->factor_ppm)
                                                      : 0;
        tg_settle(c->slot, &x, c->method, c->client_ip);
    }
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
    if (body.len && r->status >= 200 && r->status < 300 && !c->unmetered)
        capture_usage(c, body.base, body.len);
    tg_run_t runs[TG_RUNS_MAX];
    size_t n_runs = take_runs(c, r, body, runs);
    u->status = (uint32_t)(r->status ? r->status : 502);
    if (r->aborted)
        u->flags |= TG_USAGE_ABORTED;
    int ok = r->status >= 200 && r->status < 300;
    if (ok && !c->unmetered && (!c->usage_seen || (r->aborted && !r->drained))) {
        /* the upstream's own report is missing or cut short: bill the prompt it reported (or
         * one token per 4 bytes of request) and the text relayed so far (one token per 4 chars);
         * a relay that read on after the client left (client_abort: finish) has the real report */
        uint64_t est_completion = tg_usage_text_tokens(c->text_chars);
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
    record_more_runs(c, u, runs, n_runs);
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

static void on_free(tg_relay_t *r)
{
    tg_call_t *c = r->owner;
    tg_translate_free(&c->tr);
    tg_freelist_put(&g_calls, c);
}

static const tg_relay_hooks_t g_call_hooks = {on_event, on_finish, on_failure, on_head_ok, on_transform, on_stream_end, on_free};

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

/* Builds the upstream body from BODY: for OpenAI streams without stream_options (as
 * scan_request found), ask for the usage chunk. */
static h2o_iovec_t upstream_body(h2o_req_t *req, tg_call_t *c, h2o_iovec_t body, int stream)
{
    if (!stream || c->has_stream_options)
        return body; /* the client chose; its own usage chunk passes through */
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

/* A + SEP + B, NUL-terminated, in one allocation of its exact size from POOL. */
static const char *pool_join(h2o_mem_pool_t *pool, const char *a, size_t alen, const char *sep, const char *b, size_t blen)
{
    size_t slen = strlen(sep);
    char *s = h2o_mem_alloc_pool(pool, alen + slen + blen + 1);
    char *p = tg_put_mem(s, a, alen);
    p = tg_put_mem(p, sep, slen);
    *tg_put_mem(p, b, blen) = '\0';
    return s;
}

static const char *upstream_url(h2o_req_t *req, const char *base, const char *path)
{
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    if (blen >= 3 && memcmp(base + blen - 3, "/v1", 3) == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    return pool_join(&req->pool, base, blen, "", path, strlen(path));
}

/* The header line "NAME: VALUE" from REQ's pool. */
static const char *header_line(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    return pool_join(&req->pool, name, strlen(name), ": ", value, len);
}

/* Writes "NAME: value" of the client's header NAME (or DEFAULT when absent and not NULL) into
 * *OUT; returns 1 when a line was written. */
static size_t copy_client_header(h2o_req_t *req, const char *name, const char *def, const char **out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        *out = header_line(req, name, v.base, v.len);
        return 1;
    }
    if (!def)
        return 0;
    *out = header_line(req, name, def, strlen(def));
    return 1;
}

static int level_seen(const tg_call_t *c, int32_t level)
{
    for (unsigned i = 0; i < c->n_levels; i++)
        if (c->levels[i] == level)
            return 1;
    return 0;
}

/* The level to try once C->level is exhausted, for the current model: the level SWITCH_OVER
 * names (each level once, a cycle stops), then, when the account's Gear > 0, the levels its
 * AllowLevels allows in ascending order (unrestricted: any level, -1). 0 when none is left. */
static int32_t next_level(tg_call_t *c)
{
    if (c->n_levels >= MAX_LEVELS)
        return 0;
    c->levels[c->n_levels++] = c->level;
    if (c->stage == STAGE_SWITCH) {
        int32_t next = c->level > 0 ? tg_admit_switch_over(tg_admit_worker(), c->owner_id, c->level) : 0;
        if (next > 0 && !level_seen(c, next))
            return next;
        c->stage = STAGE_DRIFT;
        c->drift_next = 1;
    }
    if (c->stage == STAGE_DRIFT && c->gear > 0) {
        if (c->allow_levels == 0) {
            c->stage = STAGE_DONE;
            return -1;
        }
        while (c->drift_next <= 63) {
            int32_t l = c->drift_next++;
            if (tg_levels_allow(c->allow_levels, l) && !level_seen(c, l))
                return l;
        }
    }
    c->stage = STAGE_DONE;
    return 0;
}

/* ModelFailover: moves C to the backup of its model, routed from the backup's own level through
 * the same stages. 0, or -1 when there is none (or the body carries no model to rewrite). */
static int fail_over_model(tg_call_t *c)
{
    h2o_req_t *req = c->relay->req;
    if (!req || c->ep->multipart || c->unmetered || c->adm->model_len == 0 || c->n_models >= MAX_MODELS)
        return -1;
    memcpy(c->models[c->n_models++], c->adm->model, c->adm->model_len + 1);
    const char *seen[MAX_MODELS];
    for (unsigned i = 0; i < c->n_models; i++)
        seen[i] = c->models[i];
    tg_json_span_t m;
    int32_t level;
    if (tg_json_get(c->client_body.base, c->client_body.len, "model", &m) != 1 || m.type != TG_JSON_STRING ||
        tg_admit_failover(tg_admit_worker(), c->owner_id, c->slot, c->acct_level, c->adm, seen, c->n_models, &level) != 0)
        return -1;
    tg_debug("request %s falls over to the model %s at level %d", c->u.request_id, c->adm->model, level);
    c->client_body = tg_admit_body(&req->pool, c->client_body, &m, c->adm);
    c->body = c->ep->api == TG_API_CHAT ? upstream_body(req, c, c->client_body, (c->u.flags & TG_USAGE_STREAM) != 0)
                                        : c->client_body;
    memcpy(c->u.model, c->adm->model, c->adm->model_len + 1);
    c->level = level;
    c->n_levels = 0;
    c->stage = STAGE_SWITCH;
    return 0;
}

/* The next key for C, in the fail-over order of api-compat 7.4 and 7.7: the keys of the level
 * round-robin, the levels of SWITCH_OVER, Gear/AllowLevels drift, then the same for each model
 * of ModelFailover. Keys already tried are skipped. Stateful endpoints take the pinned key of
 * the first level that has one. */
static int pick_key(tg_call_t *c, tg_route_t *route)
{
    uint32_t protocols = tg_translate_protocols(c->ep);
    for (;;) {
        if (tg_route_pick(c->owner_id, c->level, protocols, c->tried, c->n_tried, c->ep->stateful, route) == 0)
            return 0;
        int32_t next = next_level(c);
        if (next != 0)
            c->level = next;
        else if (fail_over_model(c) != 0)
            return -1;
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
    const char *path = c->path, *why = NULL;
    if (tg_translate_attempt(req, &c->tr, c->ep, route.settings.protocol, (c->u.flags & TG_USAGE_STREAM) != 0,
                             c->u.model, &body, &path, &why) != 0) {
        if (!c->relay->started && c->n_tried == 1) /* the first key cannot take it: say why */
            c->refusal = why;
        return -1;
    }
    if (!c->tr.active)
        body = c->body; /* as the client sent it (with the usage request tollgate may add) */
    size_t nh = 0;
    size_t secret_len = strlen(route.secret);
    if (route.settings.protocol == TG_PROTO_ANTHROPIC)
        c->headers[nh++] = header_line(req, "x-api-key", route.secret, secret_len);
    else if (route.settings.protocol == TG_PROTO_GEMINI)
        c->headers[nh++] = header_line(req, "x-goog-api-key", route.secret, secret_len);
    else
        c->headers[nh++] = pool_join(&req->pool, H2O_STRLIT("Authorization: Bearer"), " ", route.secret, secret_len);
    if (c->ep->multipart || (c->ep->stateful && c->content_type.len))
        c->headers[nh++] = header_line(req, "Content-Type", c->content_type.base, c->content_type.len);
    else if (!c->ep->stateful)
        c->headers[nh++] = "Content-Type: application/json";
    c->headers[nh++] = (c->u.flags & TG_USAGE_STREAM) ? "Accept: text/event-stream" : "Accept: */*";
    if (route.settings.protocol == TG_PROTO_ANTHROPIC || (c->ep->api == TG_API_MESSAGES && !c->tr.active)) {
        nh += copy_client_header(req, "anthropic-version", "2023-06-01", &c->headers[nh]);
        nh += copy_client_header(req, "anthropic-beta", NULL, &c->headers[nh]);
    }
    if (c->ep->stateful) /* OpenAI-Beta: assistants=v2 */
        nh += copy_client_header(req, "openai-beta", NULL, &c->headers[nh]);
    c->headers[nh++] = header_line(req, "x-request-id", c->u.request_id, strlen(c->u.request_id));

    tg_xfer_request_t x = {0};
    x.url = upstream_url(req, route.settings.url, path);
    x.method = c->method;
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
    if (r->attempts >= MAX_ATTEMPTS || c->ep->stateful) /* a stateful call has one key: its pin */
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
 * returns -1 when the body is malformed or the model is missing. A stateful endpoint's body may
 * be empty (GET, DELETE), JSON or multipart, and names a model only when it wants one. */
static int scan_request(h2o_req_t *req, const tg_endpoint_t *ep, h2o_iovec_t *model, int *is_stream,
                        int *has_stream_options, h2o_iovec_t *ctype)
{
    *model = h2o_iovec_init("", 0);
    *is_stream = 0;
    *has_stream_options = 0;
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    *ctype = ct >= 0 ? req->headers.entries[ct].value : h2o_iovec_init("", 0);
    int multipart = ctype->len >= 19 && strncasecmp(ctype->base, "multipart/form-data", 19) == 0;
    if (ep->stateful && req->entity.len == 0)
        return 0;
    if (ep->multipart || (ep->stateful && multipart)) {
        if (!multipart) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", "Content-Type: multipart/form-data is required");
            return -1;
        }
        if (tg_multipart_model(req->entity, *ctype, model) != 0 && !ep->model_optional) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", "model: a form field is required");
            return -1;
        }
    } else {
        static const char *const keys[] = {"model", "stream", "stream_options"};
        tg_json_span_t v[3], m = {0};
        int found = tg_json_get_many(req->entity.base, req->entity.len, keys, 3, v); /* one pass for all */
        int has_model = found < 0 ? -1 : v[0].type != TG_JSON_NONE;
        if (has_model > 0)
            m = v[0];
        if (has_model < 0) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_json", "the request body is not a valid JSON object");
            return -1;
        }
        if (has_model && m.type == TG_JSON_STRING)
            *model = h2o_iovec_init(m.p, m.len);
        else if (!ep->model_optional || (has_model && m.type != TG_JSON_NULL)) {
            tg_http_error(req, 400, "invalid_request_error", "invalid_request", "model: a non-empty string is required");
            return -1;
        }
        *is_stream = v[1].type == TG_JSON_TRUE;
        *has_stream_options = v[2].type != TG_JSON_NONE;
    }
    if (model->len >= TG_MODEL_MAX || (model->len == 0 && !ep->model_optional)) {
        tg_http_error(req, 400, "invalid_request_error", "invalid_request",
                      model->len ? "model: the name is too long" : "model: a non-empty string is required");
        return -1;
    }
    return 0;
}

/* 1 when REQ's method is one EP serves: POST, and for stateful endpoints GET and DELETE too. */
static int method_allowed(h2o_req_t *req, const tg_endpoint_t *ep)
{
    h2o_iovec_t m = req->method;
    return h2o_memis(m.base, m.len, H2O_STRLIT("POST")) ||
           (ep->stateful && (h2o_memis(m.base, m.len, H2O_STRLIT("GET")) || h2o_memis(m.base, m.len, H2O_STRLIT("DELETE"))));
}

/* The upstream path of a stateful call: the client's normalised path and its query string. */
static const char *stateful_path(h2o_req_t *req)
{
    size_t q = req->query_at;
    if (q == SIZE_MAX || q >= req->path.len)
        return tg_pool_fmt(&req->pool, "%.*s", (int)req->path_normalized.len, req->path_normalized.base);
    return tg_pool_fmt(&req->pool, "%.*s%.*s", (int)req->path_normalized.len, req->path_normalized.base,
                       (int)(req->path.len - q), req->path.base + q);
}

static int proxy_model(h2o_req_t *req, const tg_endpoint_t *ep)
{
    tg_account_settings_t acct;
    int64_t slot = authenticate(req, &acct);
    if (slot < 0)
        return 0;
    if (!method_allowed(req, ep)) {
        tg_http_error(req, 405, "invalid_request_error", "method_not_allowed",
                      ep->stateful ? "use GET, POST or DELETE for this path" : "use POST for this path");
        return 0;
    }
    h2o_iovec_t model, ctype = {NULL, 0};
    int is_stream, has_stream_options;
    if (scan_request(req, ep, &model, &is_stream, &has_stream_options, &ctype) != 0)
        return 0;
    if (!tg_settle_ring_has_room()) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        tg_http_error(req, 503, "server_error", "usage_ring_full", "the gateway is saturated; retry shortly");
        return 0;
    }
    tg_call_t *c = tg_freelist_get(&g_calls);
    if (!c) {
        tg_http_error(req, 503, "server_error", "server_busy", "out of memory; retry shortly");
        return 0;
    }
    /* lists, mapping, price, limits, credit (worker/admit.h); settled in on_finish */
    tg_admit_t *adm = &c->admission;
    struct sockaddr_storage peer;
    char rid[TG_REQUEST_ID_MAX];
    tg_worker_request_id(rid);
    int multipart_body = ep->multipart || (ep->stateful && ctype.len >= 19 && strncasecmp(ctype.base, "multipart/", 10) == 0);
    tg_admit_req_t in = {(uint32_t)slot, &acct, req->path_normalized.base, req->path_normalized.len, model.base, model.len,
                         0, NULL, req->entity.len,
                         multipart_body || req->entity.len == 0 ? 0 : tg_admit_max_tokens(req->entity.base, req->entity.len),
                         rid, is_stream, ep->stateful, ep->runs};
    tg_admit_peer(req, &peer, &in);
    tg_admit_refusal_t why;
    if (tg_admit(tg_admit_worker(), &in, adm, &why) != 0) {
        tg_freelist_put(&g_calls, c);
        add_cors(req);
        tg_admit_refuse(req, &why);
        return 0;
    }
    if (adm->mapped && !multipart_body) { /* the upstream gets the mapped model */
        tg_json_span_t span = {model.base, model.len, TG_JSON_STRING};
        req->entity = tg_admit_body(&req->pool, req->entity, &span, adm);
    }
    tg_admit_headers(req, adm);

    c->adm = adm;
    c->slot = (uint32_t)slot;
    c->ep = ep;
    c->path = ep->stateful ? stateful_path(req) : ep->upstream_path;
    c->unmetered = ep->stateful;
    c->content_type = ctype;
    c->owner_id = acct.owner_id;
    c->level = ep->stateful ? acct.level : adm->level; /* stateful: one pin per account, whatever model is named */
    c->acct_level = acct.level;
    c->gear = acct.gear;
    c->allow_levels = acct.allow_levels;
    c->body_len = req->entity.len;
    c->has_stream_options = (unsigned)has_stream_options;
    tg_copy_cut(c->method, sizeof(c->method), req->method.base, req->method.len);
    tg_client_ip(req, c->client_ip, sizeof(c->client_ip));
    tg_usage_t *u = &c->u;
    memcpy(u->request_id, rid, strlen(rid) + 1);
    u->account_id = acct.id;
    memcpy(u->model, adm->model, adm->model_len + 1); /* the model billed (after ModelMapper) */
    tg_copy_cut(u->path, sizeof(u->path), req->path_normalized.base, req->path_normalized.len);
    if (is_stream)
        u->flags |= TG_USAGE_STREAM;

    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, u->request_id,
                          strlen(u->request_id));
    add_cors(req);
    c->relay = tg_relay_create(req, &g_call_hooks, c); /* owns C from here on */
    c->relay->finish_on_abort = tg_w->cfg->upstream.client_abort == TG_CLIENT_ABORT_FINISH;
    c->client_body = req->entity;
    c->body = ep->api == TG_API_CHAT ? upstream_body(req, c, req->entity, is_stream) : req->entity;
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
