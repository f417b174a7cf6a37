/* Management paths are served by the persister; a worker forwards them over the persister's unix
 * socket, so one base URL serves the proxy, the APIs and the pages. The client's address is
 * passed in X-Forwarded-For (set here, never taken from the client). */
#include <stdio.h>
#include <string.h>

#include "common/http.h"
#include "worker/proxy.h"
#include "worker/relay.h"
#include "worker/worker.h"

static const tg_relay_hooks_t g_forward_hooks = {0};

static const char *copy_header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    return tg_pool_fmt(&req->pool, "%s: %.*s", name, (int)v.len, v.base);
}

int tg_forward_on_req(h2o_req_t *req)
{
    tg_relay_t *r = tg_relay_create(req, &g_forward_hooks, NULL);
    r->forward_all_headers = 1;
    char ip[64];
    tg_client_ip(req, ip, sizeof(ip));
    const char **headers = h2o_mem_alloc_pool(&req->pool, sizeof(char *) * 6);
    size_t n = 0;
    const char *h;
    static const char *const passed[] = {"authorization", "x-api-key", "content-type"};
    for (size_t k = 0; k < sizeof(passed) / sizeof(passed[0]); k++)
        if ((h = copy_header(req, passed[k])) != NULL)
            headers[n++] = h;
    headers[n++] = tg_pool_fmt(&req->pool, "X-Forwarded-For: %s", ip);

    tg_xfer_request_t x = {0};
    x.url = tg_pool_fmt(&req->pool, "http://persister%.*s", (int)req->path.len, req->path.base);
    x.unix_socket = tg_w->args->persister_socket;
    x.method = h2o_strdup(&req->pool, req->method.base, req->method.len).base;
    x.body = req->entity.base;
    x.body_len = req->entity.len;
    x.headers = headers;
    x.n_headers = n;
    x.connect_timeout_ms = 2000;
    x.first_byte_timeout_ms = 30000;
    x.idle_timeout_ms = 30000;
    tg_relay_start(r, &x);
    return 0;
}
