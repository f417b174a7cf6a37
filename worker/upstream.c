/* The upstream client's public interface (upstream.h): sends each exchange to the lean HTTP/1.1
 * backend when it can carry it and the configuration allows it, else to libcurl. */
#include "worker/upstream_backend.h"

#include <stdlib.h>

#include "common/log.h"

struct tg_upstream_client {
    tg_timeouts_t timeouts;
    tg_curl_client_t *curl;
    tg_h1_client_t *h1; /* NULL: libcurl carries everything */
};

h2o_timeout_t *tg_timeouts_get(tg_timeouts_t *t, uint32_t ms)
{
    if (ms == 0)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (t->lists[i].ms == ms)
            return &t->lists[i].timeout;
    if (t->n == sizeof(t->lists) / sizeof(t->lists[0]))
        return NULL;
    t->lists[t->n].ms = ms;
    h2o_timeout_init(t->loop, &t->lists[t->n].timeout, ms);
    return &t->lists[t->n++].timeout;
}

tg_upstream_client_t *tg_upstream_client_create(h2o_context_t *ctx, const tg_upstream_options_t *opts)
{
    tg_upstream_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->timeouts.loop = ctx->loop;
    c->curl = tg_curl_create(ctx, opts->max_connections, &c->timeouts, opts->ca_file);
    if (opts->kind == TG_UPSTREAM_AUTO)
        c->h1 = tg_h1_create(ctx, opts->max_connections, &c->timeouts, opts->ca_file);
    if (!c->curl || (opts->kind == TG_UPSTREAM_AUTO && !c->h1)) {
        tg_upstream_client_destroy(c);
        return NULL;
    }
    tg_info("upstream client: %s", c->h1 ? "lean HTTP/1.1 for http:// and https://, libcurl for the rest"
                                         : "libcurl for every exchange (upstream.client: curl)");
    return c;
}

void tg_upstream_client_destroy(tg_upstream_client_t *c)
{
    if (!c)
        return;
    tg_h1_destroy(c->h1);
    tg_curl_destroy(c->curl);
    free(c);
}

int32_t tg_upstream_client_wait_ms(tg_upstream_client_t *c)
{
    return tg_curl_wait_ms(c->curl); /* the lean backend's deadlines are h2o timeouts: the loop knows them */
}

void tg_upstream_client_tick(tg_upstream_client_t *c)
{
    tg_curl_tick(c->curl);
}

size_t tg_upstream_client_active(tg_upstream_client_t *c)
{
    return tg_curl_active(c->curl) + (c->h1 ? tg_h1_active(c->h1) : 0);
}

tg_xfer_t *tg_xfer_start(tg_upstream_client_t *c, const tg_xfer_request_t *req, const tg_xfer_handlers_t *h, void *ud)
{
    h2o_url_t url;
    if (c->h1 && tg_h1_accepts(req, &url) == 0)
        return tg_h1_start(c->h1, &url, req, h, ud);
    return tg_curl_start(c->curl, req, h, ud);
}

void tg_xfer_cancel(tg_xfer_t *x)
{
    if (x->lean)
        tg_h1_cancel(x);
    else
        tg_curl_cancel(x);
}

void tg_xfer_resume(tg_xfer_t *x)
{
    if (x->lean)
        tg_h1_resume(x);
    else
        tg_curl_resume(x);
}
