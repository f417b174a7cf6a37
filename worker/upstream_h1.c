/* The lean upstream backend: keep-alive HTTP/1.1 on h2o's own sockets (evloop) for plain
 * http:// upstreams whose host is a numeric address or localhost, the benchmark's and many
 * self-hosted deployments' hot path. Everything else goes to libcurl (upstream_backend.h).
 *
 * - Origins ("host:port") are resolved once, without DNS: numeric hosts only, "localhost" is
 *   127.0.0.1. Each keeps a LIFO pool of idle connections; at most max_connections idle ones in
 *   all, each closed after POOL_IDLE_MS or as soon as the server closes it or sends anything.
 * - A request is one writev: the head (built into the transfer's buffer) and the body in place.
 * - The response is read into the socket's own input buffer (h2o allocates it from a recycling
 *   pool and frees it once every byte is consumed, so idle streams hold none), parsed by
 *   h1wire.c, and handed to on_body straight from that buffer. TG_XFER_PAUSE stops reading; the
 *   framed bytes stay at the buffer's front and are offered again on resume.
 * - A reused connection that ends before any byte of the answer is replaced by a fresh one,
 *   once; nothing is retried after a byte of the answer arrived.
 * - Transfers are recycled through a free list: no allocation per request. */
#include "worker/upstream_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "worker/h1wire.h"

#define POOL_IDLE_MS 60000 /* an idle keep-alive connection is closed after this long */
#define HEAD_INLINE 512    /* request heads up to this size need no allocation */

typedef struct h1_xfer h1_xfer_t;

typedef struct h1_origin {
    char *authority; /* "host:port" as in the URL: the pool's key and the Host header */
    size_t authority_len;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    h2o_linklist_t idle; /* idle connections; the most recently used at the tail */
} h1_origin_t;

typedef struct h1_conn {
    h2o_socket_t *sock;
    tg_h1_client_t *client;
    h1_origin_t *origin;
    h1_xfer_t *xfer; /* the exchange it carries; NULL while idle */
    h2o_linklist_t idle_link;
    h2o_timeout_entry_t timer; /* the connect deadline while connecting, then the idle deadline in the pool */
    uint8_t connecting;
    uint8_t writing; /* the request's write has not completed */
    uint8_t reused;  /* it carried an exchange before this one */
    uint8_t ended;   /* the peer closed it or it failed: nothing more will arrive */
} h1_conn_t;

struct h1_xfer {
    tg_xfer_t base; /* lean = 1 */
    tg_h1_client_t *client;
    h1_origin_t *origin;
    h1_conn_t *conn;
    const tg_xfer_handlers_t *h;
    void *ud;
    const char *body;
    size_t body_len;
    char *head; /* the request head: head_inline or allocated */
    size_t head_len;
    h2o_timeout_t *connect_list, *idle_list;
    h2o_timeout_entry_t timer; /* first-byte deadline, then idle deadline; zero timeout for a failure at start */
    tg_h1_response_t resp;
    size_t ready; /* framed body bytes at the front of the input not yet taken by on_body */
    const char *fail_msg; /* a failure at start, reported from the zero timeout */
    uint8_t got_bytes, retried, paused, cancelled, in_cb;
    h1_xfer_t *next; /* free list */
    char head_inline[HEAD_INLINE];
};

struct tg_h1_client {
    h2o_context_t *ctx;
    tg_timeouts_t *timeouts;
    h2o_timeout_t *pool_list;
    h1_origin_t **origins;
    size_t n_origins;
    size_t active;   /* transfers started and not ended */
    size_t idle;     /* connections in the pools */
    size_t max_idle;
    h1_xfer_t *free_list;
};

static void on_read(h2o_socket_t *sock, const char *err);
static void process(h1_xfer_t *x);

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_close(h1_conn_t *k)
{
    if (h2o_linklist_is_linked(&k->idle_link)) {
        h2o_linklist_unlink(&k->idle_link);
        k->client->idle--;
    }
    if (h2o_timeout_is_linked(&k->timer))
        h2o_timeout_unlink(&k->timer);
    h2o_socket_close(k->sock);
    free(k);
}

/* Puts K back into its origin's pool when REUSABLE and there is room, else closes it. */
static void conn_release(h1_conn_t *k, int reusable)
{
    tg_h1_client_t *c = k->client;
    k->xfer = NULL;
    if (!reusable || k->ended || k->writing || k->sock->input->size != 0 || c->idle >= c->max_idle) {
        conn_close(k);
        return;
    }
    if (!h2o_socket_is_reading(k->sock))
        h2o_socket_read_start(k->sock, on_read); /* an idle connection watches for the server closing it */
    k->reused = 1;
    h2o_linklist_insert(&k->origin->idle, &k->idle_link);
    c->idle++;
    if (c->pool_list)
        h2o_timeout_link(c->ctx->loop, c->pool_list, &k->timer);
}

/* Takes the most recently used idle connection of O, or NULL. */
static h1_conn_t *conn_from_pool(tg_h1_client_t *c, h1_origin_t *o)
{
    if (h2o_linklist_is_empty(&o->idle))
        return NULL;
    h1_conn_t *k = H2O_STRUCT_FROM_MEMBER(h1_conn_t, idle_link, o->idle.prev);
    h2o_linklist_unlink(&k->idle_link);
    c->idle--;
    if (h2o_timeout_is_linked(&k->timer))
        h2o_timeout_unlink(&k->timer);
    return k;
}

/* Frees the input buffer once nothing is left in it (chunk framing can leave it empty but held). */
static void drop_empty_input(h1_conn_t *k)
{
    if (k->sock->input->size == 0 && k->sock->input->bytes != NULL) {
        h2o_buffer_dispose(&k->sock->input);
        h2o_buffer_init(&k->sock->input, &h2o_socket_buffer_prototype);
    }
}

/* ---- transfers ------------------------------------------------------------------------------ */

static void on_deadline(h2o_timeout_entry_t *entry);

/* (Re)starts X's deadline on LIST; NULL stops it. */
static void arm(h1_xfer_t *x, h2o_timeout_t *list)
{
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    x->timer.cb = on_deadline;
    if (list)
        h2o_timeout_link(x->client->ctx->loop, list, &x->timer);
}

/* Ends X: its connection goes back to the pool when the answer was whole and ERR is 0, else it is
 * closed; X is recycled; on_done follows unless X was cancelled. */
static void finish(h1_xfer_t *x, int err, const char *msg)
{
    tg_h1_client_t *c = x->client;
    h1_conn_t *k = x->conn;
    x->conn = NULL;
    if (k)
        conn_release(k, err == 0 && x->resp.state == TG_H1_DONE && x->ready == 0 && x->resp.keep_alive);
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    if (x->head != x->head_inline)
        free(x->head);
    x->head = NULL;
    const tg_xfer_handlers_t *h = x->h;
    void *ud = x->ud;
    int report = !x->cancelled;
    x->next = c->free_list;
    c->free_list = x;
    c->active--;
    if (report)
        h->on_done(ud, err, msg); /* last: it may start the next transfer on the same connection */
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    h1_xfer_t *x = H2O_STRUCT_FROM_MEMBER(h1_xfer_t, timer, entry);
    finish(x, TG_XFER_ETIMEOUT, x->resp.state == TG_H1_HEAD ? "no response headers before the first-byte timeout"
                                                             : "the upstream went quiet for longer than the idle timeout");
}

static void on_failed_start(h2o_timeout_entry_t *entry)
{
    h1_xfer_t *x = H2O_STRUCT_FROM_MEMBER(h1_xfer_t, timer, entry);
    finish(x, TG_XFER_ECONNECT, x->fail_msg);
}

/* Reports a failure from the zero timeout: tg_xfer_start's caller hears of it through on_done. */
static void fail_later(h1_xfer_t *x, const char *msg)
{
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    x->fail_msg = msg;
    x->timer.cb = on_failed_start;
    h2o_timeout_link(x->client->ctx->loop, &x->client->ctx->zero_timeout, &x->timer);
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    h1_conn_t *k = sock->data;
    k->writing = 0;
    if (err && k->xfer) {
        k->ended = 1;
        if (!k->xfer->paused)
            process(k->xfer);
    }
}

static void send_request(h1_xfer_t *x)
{
    h1_conn_t *k = x->conn;
    h2o_iovec_t iov[2] = {h2o_iovec_init(x->head, x->head_len), h2o_iovec_init(x->body, x->body_len)};
    k->writing = 1;
    h2o_socket_write(k->sock, iov, x->body_len ? 2 : 1, on_write_done);
    if (!h2o_socket_is_reading(k->sock))
        h2o_socket_read_start(k->sock, on_read);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    h1_conn_t *k = sock->data;
    h1_xfer_t *x = k->xfer;
    k->connecting = 0;
    if (h2o_timeout_is_linked(&k->timer))
        h2o_timeout_unlink(&k->timer);
    if (err) {
        x->conn = NULL;
        conn_close(k);
        finish(x, TG_XFER_ECONNECT, "could not connect to the upstream");
        return;
    }
    send_request(x);
}

static void on_conn_timer(h2o_timeout_entry_t *entry)
{
    h1_conn_t *k = H2O_STRUCT_FROM_MEMBER(h1_conn_t, timer, entry);
    h1_xfer_t *x = k->xfer;
    if (!k->connecting || !x) { /* idle in the pool for too long */
        conn_close(k);
        return;
    }
    x->conn = NULL;
    conn_close(k);
    finish(x, TG_XFER_ETIMEOUT, "could not connect to the upstream before the connect timeout");
}

/* Opens a fresh connection for X; -1 when the socket cannot even be created. */
static int conn_open(h1_xfer_t *x)
{
    tg_h1_client_t *c = x->client;
    h1_conn_t *k = calloc(1, sizeof(*k));
    if (!k)
        return -1;
    k->sock = h2o_socket_connect(c->ctx->loop, (struct sockaddr *)&x->origin->addr, x->origin->addrlen, on_connect);
    if (!k->sock) {
        free(k);
        return -1;
    }
    k->sock->data = k;
    k->client = c;
    k->origin = x->origin;
    k->connecting = 1;
    k->xfer = x;
    k->timer.cb = on_conn_timer;
    if (x->connect_list)
        h2o_timeout_link(c->ctx->loop, x->connect_list, &k->timer);
    x->conn = k;
    return 0;
}

/* The connection ended with nothing more to read: X is retried on a fresh connection (a stale
 * kept one that sent nothing), or ends, well when the body was framed by the connection's end. */
static void on_ended(h1_xfer_t *x)
{
    h1_conn_t *k = x->conn;
    if (!x->got_bytes && k->reused && !x->retried) {
        x->conn = NULL;
        conn_close(k);
        x->retried = 1;
        if (conn_open(x) != 0)
            finish(x, TG_XFER_ECONNECT, "could not connect to the upstream");
        return;
    }
    if (x->resp.state != TG_H1_HEAD && tg_h1_at_eof(&x->resp) == 0) {
        finish(x, 0, NULL);
        return;
    }
    finish(x, TG_XFER_EIO, x->got_bytes ? "the upstream closed the connection before the response ended"
                                        : "the upstream closed the connection without answering");
}

/* Runs X's exchange over the bytes its connection holds, calling the handlers; stops when more
 * bytes are needed, when on_body pauses, or when X ended. */
static void process(h1_xfer_t *x)
{
    h1_conn_t *k = x->conn;
    for (;;) {
        h2o_buffer_t *in = k->sock->input;
        if (x->resp.state == TG_H1_HEAD) {
            if (in->size == 0) {
                if (k->ended)
                    on_ended(x);
                return;
            }
            tg_xfer_header_t hdrs[TG_H1_MAX_HEADERS];
            size_t n;
            const char *why = NULL;
            int len = tg_h1_parse_head(&x->resp, in->bytes, in->size, hdrs, &n, &why);
            if (len == 0) {
                if (k->ended)
                    on_ended(x);
                return;
            }
            if (len < 0) {
                finish(x, TG_XFER_EIO, why);
                return;
            }
            if (x->resp.state == TG_H1_HEAD) { /* 1xx: skipped */
                h2o_buffer_consume(&k->sock->input, (size_t)len);
                continue;
            }
            arm(x, x->idle_list);
            x->in_cb = 1;
            int rc = x->h->on_head(x->ud, x->resp.status, hdrs, n);
            x->in_cb = 0;
            h2o_buffer_consume(&k->sock->input, (size_t)len);
            if (x->cancelled || rc != 0) {
                finish(x, x->cancelled ? 0 : TG_XFER_EABORTED, "the response handler refused the answer");
                return;
            }
            continue;
        }
        if (x->ready == 0 && x->resp.state != TG_H1_DONE) {
            if (in->size == 0) {
                if (k->ended)
                    on_ended(x);
                return;
            }
            size_t len = in->size, body;
            int rc = tg_h1_frame_body(&x->resp, in->bytes, &len, &body);
            if (rc < 0) {
                finish(x, TG_XFER_EIO, "the upstream sent a malformed chunked body");
                return;
            }
            in->size = len;
            x->ready = body;
            if (body == 0) {
                drop_empty_input(k);
                if (rc == 0) {
                    if (k->ended)
                        on_ended(x);
                    return;
                }
            }
        }
        if (x->ready) {
            x->in_cb = 1;
            int rc = x->h->on_body(x->ud, k->sock->input->bytes, x->ready);
            x->in_cb = 0;
            if (rc == 0) {
                h2o_buffer_consume(&k->sock->input, x->ready);
                x->ready = 0;
            }
            if (x->cancelled || rc < 0) {
                finish(x, x->cancelled ? 0 : TG_XFER_EABORTED, "the body handler refused the answer");
                return;
            }
            if (rc == TG_XFER_PAUSE) {
                x->paused = 1;
                h2o_socket_read_stop(k->sock);
                return;
            }
            continue;
        }
        finish(x, 0, NULL); /* TG_H1_DONE with every byte taken */
        return;
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    h1_conn_t *k = sock->data;
    h1_xfer_t *x = k->xfer;
    if (!x) { /* idle: the server closed it, or sent something nobody asked for */
        conn_close(k);
        return;
    }
    if (sock->bytes_read) {
        x->got_bytes = 1;
        if (x->resp.state != TG_H1_HEAD)
            arm(x, x->idle_list); /* something arrived: the idle deadline starts again */
    }
    if (err)
        k->ended = 1;
    process(x);
}

/* ---- origins -------------------------------------------------------------------------------- */

/* Fills O's address from a numeric HOST (or localhost) and PORT; -1 when HOST is neither. */
static int resolve_numeric(h2o_iovec_t host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    char name[INET6_ADDRSTRLEN];
    if (host.len == 0 || host.len >= sizeof(name))
        return -1;
    memcpy(name, host.base, host.len);
    name[host.len] = '\0';
    if (strcasecmp(name, "localhost") == 0)
        strcpy(name, "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, name, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, name, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof(*v6);
        return 0;
    }
    return -1;
}

int tg_h1_accepts(const tg_xfer_request_t *req, h2o_url_t *url)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (req->unix_socket || strncmp(req->url, "http://", 7) != 0)
        return -1;
    if (h2o_url_parse(req->url, SIZE_MAX, url) != 0 || url->scheme != &H2O_URL_SCHEME_HTTP)
        return -1;
    if (memchr(url->authority.base, '@', url->authority.len))
        return -1; /* user info: libcurl turns it into Basic authentication */
    return resolve_numeric(url->host, h2o_url_get_port(url), &ss, &len);
}

static h1_origin_t *origin_for(tg_h1_client_t *c, const h2o_url_t *url)
{
    for (size_t i = 0; i < c->n_origins; i++) {
        h1_origin_t *o = c->origins[i];
        if (o->authority_len == url->authority.len && memcmp(o->authority, url->authority.base, o->authority_len) == 0)
            return o;
    }
    h1_origin_t **grown = realloc(c->origins, (c->n_origins + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    c->origins = grown;
    h1_origin_t *o = calloc(1, sizeof(*o));
    if (!o || !(o->authority = malloc(url->authority.len + 1))) {
        free(o);
        return NULL;
    }
    if (resolve_numeric(url->host, h2o_url_get_port(url), &o->addr, &o->addrlen) != 0) {
        free(o->authority);
        free(o);
        return NULL;
    }
    memcpy(o->authority, url->authority.base, url->authority.len);
    o->authority[url->authority.len] = '\0';
    o->authority_len = url->authority.len;
    h2o_linklist_init_anchor(&o->idle);
    c->origins[c->n_origins++] = o;
    return o;
}

/* ---- the interface -------------------------------------------------------------------------- */

tg_h1_client_t *tg_h1_create(h2o_context_t *ctx, uint32_t max_connections, tg_timeouts_t *timeouts)
{
    tg_h1_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ctx = ctx;
    c->timeouts = timeouts;
    c->pool_list = tg_timeouts_get(timeouts, POOL_IDLE_MS);
    c->max_idle = max_connections;
    return c;
}

void tg_h1_destroy(tg_h1_client_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_origins; i++) {
        h1_origin_t *o = c->origins[i];
        while (!h2o_linklist_is_empty(&o->idle))
            conn_close(H2O_STRUCT_FROM_MEMBER(h1_conn_t, idle_link, o->idle.next));
        free(o->authority);
        free(o);
    }
    free(c->origins);
    while (c->free_list) {
        h1_xfer_t *x = c->free_list;
        c->free_list = x->next;
        free(x);
    }
    free(c);
}

size_t tg_h1_active(tg_h1_client_t *c)
{
    return c->active;
}

tg_xfer_t *tg_h1_start(tg_h1_client_t *c, const h2o_url_t *url, const tg_xfer_request_t *req,
                       const tg_xfer_handlers_t *h, void *ud)
{
    h1_origin_t *o = origin_for(c, url);
    if (!o)
        return NULL;
    h1_xfer_t *x = c->free_list;
    if (x)
        c->free_list = x->next;
    else if ((x = malloc(sizeof(*x))) == NULL)
        return NULL;
    memset(x, 0, offsetof(h1_xfer_t, head_inline));
    x->base.lean = 1;
    x->client = c;
    x->origin = o;
    x->h = h;
    x->ud = ud;
    x->body = req->body;
    x->body_len = req->body_len;
    tg_h1_response_init(&x->resp, strcmp(req->method, "HEAD") == 0);
    int with_length = req->body_len || strcmp(req->method, "POST") == 0;
    x->head = x->head_inline;
    x->head_len = tg_h1_request_head(x->head, HEAD_INLINE, req->method, url->path.base, url->path.len, o->authority,
                                     o->authority_len, req->headers, req->n_headers, with_length, req->body_len);
    if (x->head_len > HEAD_INLINE) {
        if ((x->head = malloc(x->head_len)) == NULL) {
            x->next = c->free_list;
            c->free_list = x;
            return NULL;
        }
        tg_h1_request_head(x->head, x->head_len, req->method, url->path.base, url->path.len, o->authority,
                           o->authority_len, req->headers, req->n_headers, with_length, req->body_len);
    }
    x->connect_list = tg_timeouts_get(c->timeouts, req->connect_timeout_ms);
    x->idle_list = tg_timeouts_get(c->timeouts, req->idle_timeout_ms);
    c->active++;
    arm(x, req->first_byte_timeout_ms ? tg_timeouts_get(c->timeouts, req->first_byte_timeout_ms) : x->idle_list);
    h1_conn_t *k = conn_from_pool(c, o);
    if (k) {
        k->xfer = x;
        x->conn = k;
        send_request(x);
    } else if (conn_open(x) != 0) {
        fail_later(x, "could not connect to the upstream");
    }
    return &x->base;
}

void tg_h1_cancel(tg_xfer_t *xfer)
{
    h1_xfer_t *x = (h1_xfer_t *)xfer;
    if (x->cancelled)
        return;
    x->cancelled = 1;
    if (!x->in_cb) /* else the handler's caller ends it once the handler returns */
        finish(x, 0, NULL);
}

void tg_h1_resume(tg_xfer_t *xfer)
{
    h1_xfer_t *x = (h1_xfer_t *)xfer;
    if (!x->paused || x->cancelled)
        return;
    x->paused = 0;
    h2o_socket_read_start(x->conn->sock, on_read);
    process(x);
}
