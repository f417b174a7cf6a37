/* The persister's HTTP server (server.h): libh2o set up as in h2o's examples/libh2o/simple.c, one
 * catch-all handler that routes through routes.c and authenticates callers for TG_ROUTE_AUTH
 * routes (key → SHA-256 → keyhash CF → account record; unknown or disabled → 401). The listener
 * is a unix socket, so only local processes with file access (the workers) reach it. */
#include "store/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/http.h"
#include "common/log.h"
#include "store/account_rec.h"
#include "store/api.h"
#include "store/record.h"
#include "store/store-i.h"

struct tg_server {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    char *socket_path;
    tg_store_t *store;
    tg_arena_t *arena;
};

typedef struct api_handler {
    h2o_handler_t super;
    tg_server_t *srv;
} api_handler_t;

/* A server whose connections outlived tg_server_close: kept reachable until exit (see server.h). */
static tg_server_t *g_parked;

void tg_api_send(tg_api_req_t *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    if (text == NULL) {
        tg_http_error(r->req, 500, "api_error", NULL, "could not build the response");
        return;
    }
    tg_http_json(r->req, status, text, strlen(text));
    free(text);
}

static void unauthorized(h2o_req_t *req, const char *message)
{
    tg_http_error(req, 401, "invalid_request_error", "invalid_api_key", message);
}

/* Sets r->caller from the request's API key; on failure answers 401 and returns -1. The key is
 * never echoed or logged. */
static int authenticate(tg_api_req_t *r)
{
    const char *key;
    size_t len;
    if (tg_http_api_key(r->req, &key, &len) != 0) {
        unauthorized(r->req, "missing API key: send Authorization: Bearer sk-Xvs...");
        return -1;
    }
    json_t *acct = tg_acctrec_by_key(r->store, key, len);
    if (acct == NULL) {
        unauthorized(r->req, "invalid API key");
        return -1;
    }
    if (!tg_rec_bool(acct, "Status", 1)) {
        json_decref(acct);
        unauthorized(r->req, "this API key's account is disabled");
        return -1;
    }
    r->caller = acct;
    r->caller_id = tg_rec_u64(acct, "ID", 0);
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    tg_server_t *srv = ((api_handler_t *)self)->srv;
    tg_api_req_t r = {.req = req, .store = srv->store, .arena = srv->arena};
    int path_known;
    r.route = tg_api_route_find(req->method, req->path_normalized, &path_known, &r.rest);
    if (r.route == NULL) {
        if (path_known)
            tg_http_error(req, 405, "invalid_request_error", "method_not_allowed", "this method is not allowed on this path");
        else
            tg_http_error(req, 404, "invalid_request_error", "not_found", "no such endpoint");
        return 0;
    }
    if (!((r.route->flags & TG_ROUTE_AUTH) && authenticate(&r) != 0))
        r.route->fn(&r);
    json_decref(r.caller);
    int cls = req->res.status / 100;
    srv->store->stats.api_requests[cls >= 1 && cls <= 5 ? cls : 0]++;
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    tg_server_t *srv = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) { /* a burst, without starving the rest of the loop */
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(&srv->accept_ctx, sock);
    }
}

/* Binds and listens on PATH with mode 0600, replacing a stale socket file. Returns the fd or -1. */
static int listen_unix(const char *path, char **err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return tg_store_fail(err, "socket path %s is too long (at most %zu bytes)", path, sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return tg_store_fail(err, "socket path %s exists and is not a socket", path);
        if (unlink(path) != 0)
            return tg_store_fail(err, "cannot remove the stale socket %s: %s", path, strerror(errno));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tg_store_fail(err, "socket: %s", strerror(errno));
    mode_t old = umask(0177); /* the socket file is born 0600: no window where others could connect */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int berr = errno;
    umask(old);
    if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, SOMAXCONN) != 0) {
        if (rc != 0)
            errno = berr;
        tg_store_fail(err, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        if (rc == 0)
            unlink(path);
        return -1;
    }
    return fd;
}

int tg_server_open(tg_server_t **out, const char *socket_path, tg_store_t *store, tg_arena_t *arena, char **err)
{
    *out = NULL;
    tg_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL || (srv->socket_path = strdup(socket_path)) == NULL) {
        free(srv);
        return tg_store_fail(err, "out of memory");
    }
    int fd = listen_unix(socket_path, err);
    if (fd < 0) {
        free(srv->socket_path);
        free(srv);
        return -1;
    }
    srv->store = store;
    srv->arena = arena;
    h2o_config_init(&srv->config);
    srv->config.max_request_entity_size = TG_SERVER_MAX_BODY;
    h2o_hostconf_t *host = h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    api_handler_t *handler = (api_handler_t *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->srv = srv;
    h2o_context_init(&srv->ctx, h2o_evloop_create(), &srv->config);
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->config.hosts;
    srv->listener = h2o_evloop_socket_create(srv->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    srv->listener->data = srv;
    h2o_socket_read_start(srv->listener, on_accept);
    tg_info("persister: listening on %s", socket_path);
    *out = srv;
    return 0;
}

h2o_evloop_t *tg_server_loop(tg_server_t *srv)
{
    return srv->ctx.loop;
}

void tg_server_stop_accepting(tg_server_t *srv)
{
    if (srv->listener == NULL)
        return;
    h2o_socket_read_stop(srv->listener);
    h2o_socket_close(srv->listener);
    srv->listener = NULL;
    unlink(srv->socket_path);
    h2o_context_request_shutdown(&srv->ctx); /* keep-alive connections close after their current response */
}

int tg_server_idle(tg_server_t *srv)
{
    return h2o_linklist_is_empty(&srv->ctx.http1._conns) && h2o_linklist_is_empty(&srv->ctx.http2._conns);
}

void tg_server_close(tg_server_t *srv)
{
    if (srv == NULL)
        return;
    tg_server_stop_accepting(srv);
    h2o_evloop_run(srv->ctx.loop, 0); /* lets the closed listener be reclaimed */
    if (!tg_server_idle(srv)) {
        tg_info("persister: client connections still open at exit; leaving them to the kernel");
        g_parked = srv;
        return;
    }
    /* request_shutdown armed HTTP/2's graceful-shutdown timer; with no connection left it has
     * nothing to do, and h2o_context_dispose() asserts that every timeout list is empty. */
    if (h2o_timeout_is_linked(&srv->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&srv->ctx.http2._graceful_shutdown_timeout);
    h2o_evloop_t *loop = srv->ctx.loop;
    h2o_multithread_queue_t *queue = srv->ctx.queue;
    h2o_context_dispose(&srv->ctx);
    h2o_evloop_destroy(loop);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR < 3
    free(queue); /* 2.2.x's h2o_multithread_destroy_queue() closes the queue's pipe but leaks the struct */
#else
    (void)queue;
#endif
    h2o_config_dispose(&srv->config);
    free(srv->socket_path);
    free(srv);
}
