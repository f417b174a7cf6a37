/* Upstream → client relay: response start, buffering or SSE relay, back-pressure, client abort. */
#include "worker/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/log.h"
#include "worker/abuse.h"
#include "worker/buffers.h"
#include "worker/freelist.h"
#include "worker/worker.h"

#define RELAY_PAUSE_BYTES (1u << 20)  /* pause the upstream when this much waits for the client */
#define RELAY_MAX_BODY (64u << 20)    /* a non-stream answer larger than this is refused */
#define RELAY_MAX_EVENT (4u << 20)
#define FREE_RELAYS_MAX 256 /* relays kept for reuse by one worker */

/* Relays given back, for the next requests (one event loop per worker process). */
static tg_freelist_t g_relays = TG_FREELIST_INIT(tg_relay_t, FREE_RELAYS_MAX);

static void finish_once(tg_relay_t *r, h2o_iovec_t body)
{
    if (r->finished)
        return;
    r->finished = 1;
    if (r->hooks->on_finish)
        r->hooks->on_finish(r, body);
}

static void flush(tg_relay_t *r)
{
    if (!r->req || r->sending || r->final_sent)
        return;
    h2o_iovec_t buf = h2o_doublebuffer_prepare(&r->db, &r->recv, SIZE_MAX);
    int final = r->upstream_done && r->recv->size == 0;
    if (buf.len == 0 && !final)
        return;
    if (final) {
        finish_once(r, h2o_iovec_init(NULL, 0));
        r->final_sent = 1;
    } else {
        r->sending = 1;
    }
    h2o_send(r->req, &buf, buf.len ? 1 : 0, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void resume(tg_relay_t *r)
{
    if (r->xfer && r->paused) {
        r->paused = 0;
        tg_xfer_resume(r->xfer);
    }
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    tg_relay_t *r = H2O_STRUCT_FROM_MEMBER(tg_relay_t, gen, gen);
    r->sending = 0;
    if (r->db.bytes_inflight)
        h2o_doublebuffer_consume(&r->db);
    flush(r);
    if (r->recv->size < RELAY_PAUSE_BYTES)
        resume(r);
}

static void relay_free(tg_relay_t *r)
{
    if (r->hooks->on_free)
        r->hooks->on_free(r);
    h2o_doublebuffer_dispose(&r->db);
    h2o_buffer_dispose(&r->recv);
    tg_sse_dispose(&r->sse);
    free(r->xreq_copy);
    tg_freelist_put(&g_relays, r);
    tg_w->inflight--;
}

/* The client left (or its request ended): cancel the transfer, or detach and read on. */
static void client_left(tg_relay_t *r)
{
    if (r->left)
        return;
    r->left = 1;
    if (r->xfer && !r->started)
        tg_abuse_cancelled(r->conn_id); /* the client gave up before any answer */
    if (r->xfer && r->finish_on_abort && !r->retrying && (r->status == 0 || (r->status >= 200 && r->status < 300))) {
        r->req = NULL;
        r->detached = 1;
        r->aborted = 1;
        if (r->streaming) /* events waiting for the client: nobody reads them any more */
            h2o_buffer_consume(&r->recv, r->recv->size);
        resume(r);
        return;
    }
    if (r->xfer) {
        tg_xfer_cancel(r->xfer);
        r->xfer = NULL;
        r->aborted = 1;
        r->error = TG_XFER_EABORTED;
    }
    finish_once(r, h2o_iovec_init(NULL, 0));
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    client_left(H2O_STRUCT_FROM_MEMBER(tg_relay_t, gen, gen));
}

/* The request is being freed (a pool reference holds the relay). */
static void on_req_dispose(void *p)
{
    tg_relay_t *r = *(tg_relay_t **)p;
    client_left(r);
    r->req = NULL;
    if (!r->detached)
        relay_free(r);
}

static const char *const g_dropped_headers[] = {"content-length", "transfer-encoding", "connection", "keep-alive",
                                                "date", "server", "set-cookie", "alt-svc", "strict-transport-security"};

static int header_dropped(h2o_iovec_t name)
{
    for (size_t i = 0; i < sizeof(g_dropped_headers) / sizeof(g_dropped_headers[0]); i++)
        if (h2o_memis(name.base, name.len, g_dropped_headers[i], strlen(g_dropped_headers[i])))
            return 1;
    return 0;
}

static int header_relayed(const tg_relay_t *r, h2o_iovec_t name)
{
    if (header_dropped(name))
        return 0;
    if (r->forward_all_headers)
        return 1;
    /* the provider's x-ratelimit-* headers describe tollgate's key, not the caller's limits
     * (tollgate sends its own): they are not relayed */
    return h2o_memis(name.base, name.len, H2O_STRLIT("content-type")) ||
           h2o_memis(name.base, name.len, H2O_STRLIT("retry-after"));
}

static int is_event_stream(const tg_xfer_header_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("content-type")))
            return h[i].value.len >= 17 && strncasecmp(h[i].value.base, "text/event-stream", 17) == 0;
    return 0;
}

static void start_response(tg_relay_t *r, size_t content_length)
{
    h2o_req_t *req = r->req;
    req->res.status = r->status;
    req->res.reason = tg_http_reason(r->status);
    req->res.content_length = content_length;
    r->started = 1;
    h2o_start_response(req, &r->gen);
}

/* Seconds of a Retry-After header given in seconds, or 0. */
static uint32_t retry_after(const tg_xfer_header_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("retry-after"))) {
            uint32_t v = 0;
            for (size_t j = 0; j < h[i].value.len && h[i].value.base[j] >= '0' && h[i].value.base[j] <= '9'; j++)
                v = v * 10 + (uint32_t)(h[i].value.base[j] - '0');
            return v;
        }
    return 0;
}

static int retryable(int status)
{
    return status == 429 || status >= 500 || status == 401 || status == 403;
}

static int on_head(void *ud, int status, const tg_xfer_header_t *h, size_t n)
{
    tg_relay_t *r = ud;
    if (!r->req && !r->detached)
        return -1;
    if (r->detached) { /* the client left while waiting: read a good answer for its usage */
        r->status = status;
        r->ttfb_ns = tg_mono_ns();
        if (status < 200 || status >= 300)
            return -1; /* nothing to bill */
        if (r->hooks->on_success)
            r->hooks->on_success(r);
        r->streaming = is_event_stream(h, n);
        return 0;
    }
    if (retryable(status) && r->hooks->on_failure) {
        r->retrying = 1; /* decided in on_done, outside curl: abandon this answer unread */
        r->retry_status = status;
        r->retry_after_s = retry_after(h, n);
        return -1;
    }
    r->status = status;
    r->ttfb_ns = tg_mono_ns();
    if (r->hooks->on_success)
        r->hooks->on_success(r);
    for (size_t i = 0; i < n; i++) /* copied: the transfer's header buffer is reused after it ends */
        if (header_relayed(r, h[i].name)) {
            h2o_iovec_t name = h2o_strdup(&r->req->pool, h[i].name.base, h[i].name.len);
            h2o_iovec_t value = h2o_strdup(&r->req->pool, h[i].value.base, h[i].value.len);
            h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name.base, name.len, 1, NULL, value.base, value.len);
        }
    if (status >= 200 && status < 300 && is_event_stream(h, n)) {
        r->streaming = 1;
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
        start_response(r, SIZE_MAX);
        r->sending = 1; /* flush the headers now: the client sees the stream open before the first event */
        h2o_send(r->req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
    }
    return 0;
}

void tg_relay_emit(tg_relay_t *r, const char *p, size_t n)
{
    if (r->detached) { /* nobody to send it to */
        r->events++;
        return;
    }
    h2o_iovec_t dst = h2o_buffer_reserve(&r->recv, n);
    memcpy(dst.base, p, n);
    r->recv->size += n;
    r->events++;
}

static int relay_event(void *ud, const char *ev, size_t len)
{
    tg_relay_t *r = ud;
    if (r->hooks->on_event && !r->hooks->on_event(r, ev, len))
        return 0;
    tg_relay_emit(r, ev, len);
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    tg_relay_t *r = ud;
    if (!r->req && !r->detached)
        return -1;
    if (r->streaming) {
        if (r->recv->size >= RELAY_PAUSE_BYTES) {
            r->paused = 1;
            return TG_XFER_PAUSE;
        }
        if (tg_sse_feed(&r->sse, p, n, RELAY_MAX_EVENT, relay_event, r) != 0)
            return -1;
        flush(r);
        return 0;
    }
    if (r->recv->size + n > RELAY_MAX_BODY)
        return -1;
    h2o_iovec_t dst = h2o_buffer_reserve(&r->recv, n);
    memcpy(dst.base, p, n);
    r->recv->size += n;
    return 0;
}

static void answer_error(tg_relay_t *r)
{
    const char *msg = "the upstream could not be reached";
    int status = 502;
    if (r->error == TG_XFER_ETIMEOUT) {
        status = 504;
        msg = "the upstream did not answer in time";
    } else if (r->error == TG_XFER_EABORTED) {
        msg = "the upstream answer was too large or malformed";
    }
    r->status = status;
    finish_once(r, h2o_iovec_init(NULL, 0));
    tg_http_error(r->req, status, "upstream_error", "upstream_unavailable", msg);
}

/* The answer of a detached relay ended: bill it and free the relay. */
static void done_detached(tg_relay_t *r, int err)
{
    r->upstream_done = 1;
    r->error = err;
    r->drained = err == 0;
    h2o_iovec_t body = h2o_iovec_init(NULL, 0);
    if (!r->streaming && !err)
        body = h2o_iovec_init(r->recv->bytes, r->recv->size);
    finish_once(r, body);
    relay_free(r);
}

static void on_done(void *ud, int err, const char *message)
{
    tg_relay_t *r = ud;
    r->xfer = NULL;
    r->paused = 0;
    if (r->detached) {
        done_detached(r, err);
        return;
    }
    if (r->req && (r->retrying || (err && r->status == 0 && r->hooks->on_failure))) {
        int status = r->retrying ? r->retry_status : 0;
        r->retrying = 0;
        r->error = r->retry_status ? 0 : err;
        tg_xfer_header_t ra;
        char secs[16];
        int nh = 0;
        if (r->retry_after_s) {
            int len = snprintf(secs, sizeof(secs), "%u", r->retry_after_s);
            ra.name = h2o_iovec_init(H2O_STRLIT("retry-after"));
            ra.value = h2o_iovec_init(secs, (size_t)len);
            nh = 1;
        }
        r->retry_status = 0;
        r->retry_after_s = 0;
        h2o_buffer_consume(&r->recv, r->recv->size);
        if (r->hooks->on_failure(r, status, status ? 0 : err, &ra, (size_t)nh))
            return; /* another attempt is under way */
        if (status) { /* no attempt left: answer with the upstream's status, in tollgate's words */
            r->status = status;
            finish_once(r, h2o_iovec_init(NULL, 0));
            if (nh)
                h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                               h2o_strdup(&r->req->pool, secs, SIZE_MAX).base, strlen(secs));
            tg_http_error(r->req, status == 401 || status == 403 ? 502 : status, "upstream_error", "upstream_error",
                          status == 429 ? "the upstream is rate limiting every available key; retry later"
                                        : "the upstream failed on every available key");
            return;
        }
    }
    r->upstream_done = 1;
    r->error = err;
    if (!r->req)
        return;
    if (err)
        tg_debug("upstream exchange ended: %s", message);
    if (r->streaming) {
        if (tg_sse_pending(&r->sse) && !r->hooks->on_stream_end) { /* a truncated last event: pass it on as it is */
            h2o_iovec_t dst = h2o_buffer_reserve(&r->recv, r->sse.partial->size);
            memcpy(dst.base, r->sse.partial->bytes, r->sse.partial->size);
            r->recv->size += r->sse.partial->size;
            h2o_buffer_consume(&r->sse.partial, r->sse.partial->size);
        }
        if (r->hooks->on_stream_end)
            r->hooks->on_stream_end(r);
        flush(r);
        return;
    }
    if (err && r->status == 0) {
        answer_error(r);
        return;
    }
    if (err) { /* failed mid-body: what arrived is not a whole answer */
        r->status = 0;
        answer_error(r);
        return;
    }
    h2o_iovec_t body = h2o_iovec_init(r->recv->bytes, r->recv->size);
    if (r->hooks->transform)
        body = r->hooks->transform(r, body);
    finish_once(r, body);
    start_response(r, body.len);
    r->final_sent = 1;
    h2o_send(r->req, &body, 1, H2O_SEND_STATE_FINAL);
}

static const tg_xfer_handlers_t g_handlers = {on_head, on_body, on_done};

tg_relay_t *tg_relay_create(h2o_req_t *req, const tg_relay_hooks_t *hooks, void *owner)
{
    tg_relay_t *r = tg_freelist_get(&g_relays);
    if (!r)
        h2o_fatal("no memory");
    tg_relay_t **holder = h2o_mem_alloc_shared(&req->pool, sizeof(*holder), on_req_dispose);
    *holder = r;
    r->req = req;
    r->conn_id = req->conn->id;
    r->hooks = hooks;
    r->owner = owner;
    r->gen.proceed = on_proceed;
    r->gen.stop = on_stop;
    r->t0_ns = tg_mono_ns();
    h2o_buffer_init(&r->recv, &tg_buffer_prototype);
    h2o_doublebuffer_init(&r->db, &tg_buffer_prototype); /* the two swap buffers: one prototype for both */
    tg_sse_init(&r->sse);
    tg_w->inflight++;
    return r;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *str_put(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    *p += n;
    return *p - n;
}

/* Copies XREQ's strings into one malloc'd block owned by R (the previous attempt's block goes:
 * its transfer has ended), so that the transfer can outlive the request. */
static void own_request(tg_relay_t *r, tg_xfer_request_t *x)
{
    size_t n = sizeof(char *) * x->n_headers + str_size(x->url) + str_size(x->unix_socket) + str_size(x->method) + x->body_len;
    for (size_t i = 0; i < x->n_headers; i++)
        n += str_size(x->headers[i]);
    char *block = malloc(n ? n : 1);
    if (!block)
        h2o_fatal("no memory");
    const char **headers = (const char **)block;
    char *p = block + sizeof(char *) * x->n_headers;
    for (size_t i = 0; i < x->n_headers; i++)
        headers[i] = str_put(&p, x->headers[i]);
    x->headers = headers;
    x->url = str_put(&p, x->url);
    x->unix_socket = str_put(&p, x->unix_socket);
    x->method = str_put(&p, x->method);
    if (x->body_len) {
        memcpy(p, x->body, x->body_len);
        x->body = p;
    }
    free(r->xreq_copy);
    r->xreq_copy = block;
}

int tg_relay_start(tg_relay_t *r, const tg_xfer_request_t *xreq)
{
    r->attempts++;
    r->status = 0;
    r->ttfb_ns = 0;
    tg_xfer_request_t x = *xreq;
    if (r->finish_on_abort)
        own_request(r, &x);
    r->xfer = tg_xfer_start(tg_w->client, &x, &g_handlers, r);
    if (r->xfer)
        return 0;
    r->error = TG_XFER_ECONNECT;
    answer_error(r);
    return -1;
}
