/* The worker process: h2o server on the listeners the master bound, the upstream client on the
 * same loop, and the drain at shutdown. */
#include "worker/worker.h"

#include <curl/curl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/put.h"
#include "shm/credit.h"
#include "worker/buffers.h"
#include "worker/proxy.h"
#include "worker/settle.h"

tg_worker_t *tg_w;

void tg_worker_request_id(char *out)
{
    char *p = tg_put_mem(out, "req_", 4); /* req_ + 16 + 12 hex digits: 32 bytes and the NUL */
    p = tg_put_hex_pad(p, tg_w->rid_prefix, 16);
    p = tg_put_hex_pad(p, ++tg_w->rid_counter, 12);
    *p = '\0';
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    h2o_accept_ctx_t *actx = listener->data;
    for (int i = 0; i < 16; i++) { /* accept a few per wakeup: fewer loop iterations under load */
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            return;
        h2o_buffer_set_prototype(&sock->input, &tg_buffer_prototype); /* the client's requests: recycled, worker/buffers.h */
        h2o_accept(actx, sock);
    }
}

static void setup_server(tg_worker_t *w)
{
    h2o_config_init(&w->config);
    w->config.max_request_entity_size = w->cfg->server.max_request_body;
    w->config.http2.max_concurrent_requests_per_connection = 100;
    w->config.server_name = h2o_iovec_init(H2O_STRLIT("tollgate"));
    h2o_hostconf_t *host = h2o_config_register_host(&w->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = tg_proxy_on_req;
    h2o_context_init(&w->ctx, h2o_evloop_create(), &w->config);
}

static void open_listeners(tg_worker_t *w)
{
    size_t n = w->args->n_listeners;
    w->accept_ctxs = calloc(n, sizeof(*w->accept_ctxs));
    w->listen_socks = calloc(n, sizeof(*w->listen_socks));
    for (size_t i = 0; i < n; i++) {
        h2o_accept_ctx_t *a = &w->accept_ctxs[i];
        a->ctx = &w->ctx;
        a->hosts = w->config.hosts;
        a->ssl_ctx = w->args->listeners[i].ssl_ctx;
        w->listen_socks[i] = h2o_evloop_socket_create(w->ctx.loop, w->args->listeners[i].fd, H2O_SOCKET_FLAG_DONT_READ);
        w->listen_socks[i]->data = a;
        h2o_socket_read_start(w->listen_socks[i], on_accept);
    }
}

static void close_listeners(tg_worker_t *w)
{
    for (size_t i = 0; i < w->args->n_listeners; i++) {
        if (!w->listen_socks[i])
            continue;
        h2o_socket_read_stop(w->listen_socks[i]);
        h2o_socket_close(w->listen_socks[i]); /* closes this process's copy of the listening fd */
        w->listen_socks[i] = NULL;
    }
}

static void run_loop(tg_worker_t *w)
{
    int draining = 0;
    uint64_t drain_deadline = 0;
    for (;;) {
        int32_t wait = tg_upstream_client_wait_ms(w->client);
        if (wait > 100)
            wait = 100; /* wake regularly for the backlog and the stop flag */
        h2o_evloop_run(w->ctx.loop, wait);
        tg_upstream_client_tick(w->client);
        tg_log_flush(); /* this iteration's access lines in one write */
        tg_log_reopen_if_requested();
        tg_credit_maybe_reap(w->arena, tg_now_ms()); /* reservations of dead processes, also when idle */
        if (w->backlog)
            tg_settle_flush_backlog();
        if (*w->args->stop && !draining) {
            draining = 1;
            drain_deadline = tg_mono_ns() / 1000000u + w->cfg->server.drain_timeout_ms;
            close_listeners(w);
            h2o_context_request_shutdown(&w->ctx);
            tg_info("draining: %zu request(s) in flight", w->inflight);
        }
        if (draining) {
            int idle = w->inflight == 0 && tg_upstream_client_active(w->client) == 0;
            if (idle || tg_mono_ns() / 1000000u >= drain_deadline) {
                if (!idle)
                    tg_warn("drain timeout: %zu request(s) still in flight are cut", w->inflight);
                break;
            }
        }
    }
    /* whatever the ring could not take yet must not be lost: wait for room a little longer */
    for (int i = 0; i < 500 && tg_settle_flush_backlog() > 0; i++)
        usleep(10000);
    if (w->backlog_len)
        tg_error("%zu usage record(s) could not be written: the ring stayed full; their requests are billed by "
                 "estimate once this worker has exited (orphans)",
                 w->backlog_len);
}

int tg_worker_run(const tg_worker_args_t *args)
{
    static tg_worker_t worker;
    tg_worker_t *w = &worker;
    memset(w, 0, sizeof(*w));
    tg_w = w;
    w->args = args;
    w->cfg = args->cfg;
    w->arena = args->arena;
    if (RAND_bytes((unsigned char *)&w->rid_prefix, sizeof(w->rid_prefix)) != 1)
        w->rid_prefix = ((uint64_t)getpid() << 32) ^ tg_mono_ns();
    w->secrets = calloc(w->arena->hdr->max_upstreams, sizeof(*w->secrets));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !w->secrets) {
        tg_error("cannot initialise the upstream client");
        return 1;
    }
    setup_server(w);
    tg_upstream_options_t upstream = {
        .max_connections = w->cfg->upstream.max_connections,
        .kind = w->cfg->upstream.client ? TG_UPSTREAM_CURL : TG_UPSTREAM_AUTO,
        .ca_file = w->cfg->upstream.ca_file,
    };
    w->client = tg_upstream_client_create(&w->ctx, &upstream);
    if (!w->client) {
        tg_error("cannot create the upstream client");
        return 1;
    }
    open_listeners(w);
    tg_info("worker %d serving", args->index);
    run_loop(w);
    tg_log_flush(); /* no access line is lost at exit */
    tg_info("worker %d stopped", args->index);
    return 0;
}
