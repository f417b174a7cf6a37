/* The lean upstream backend: keep-alive HTTP/1.1 on h2o's own sockets (evloop) for http:// and
 * https:// upstreams, numeric hosts or names. Unix sockets and URLs with user info go to libcurl
 * (upstream_backend.h).
 *
 * - Origins (scheme + host + port, upstream_origin.c) hold the addresses: numeric hosts parsed,
 *   names resolved off the loop thread and cached. Each keeps a LIFO pool of idle connections; at
 *   most max_connections idle ones in all, each closed after POOL_IDLE_MS or as soon as the
 *   server closes it or sends anything.
 * - A new connection tries the origin's addresses in turn, from the one that last worked, until
 *   one connects; https:// then runs h2o's TLS handshake with the host as SNI name, verified as
 *   upstream_tls.c describes. The connect timeout bounds the whole setup of a transfer's
 *   connection: waiting for the first lookup, every TCP attempt and the handshake.
 * - A request is one writev: the head (built into the transfer's buffer) and the body in place.
 * - The response is read into the socket's own input buffer (taken from the worker's recycling
 *   prototype, worker/buffers.h, and given back to it once every byte is consumed, so idle
 *   connections hold none), parsed by
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

#include "common/log.h"
#include "worker/buffers.h"
#include "worker/h1wire.h"
#include "worker/upstream_origin.h"
#include "worker/upstream_tls.h"

#define POOL_IDLE_MS 60000 /* an idle keep-alive connection is closed after this long */
#define HEAD_INLINE 512    /* request heads up to this size need no allocation */

typedef struct h1_xfer h1_xfer_t;

typedef struct h1_conn {
    h2o_socket_t *sock;
    tg_h1_client_t *client;
    tg_origin_t *origin;
    h1_xfer_t *xfer; /* the exchange it carries; NULL while idle */
    h2o_linklist_t idle_link; /* in origin->idle, the most recently used at the tail */
    h2o_timeout_entry_t timer; /* the idle deadline in the pool */
    size_t addr;               /* the origin's address it connected to */
    uint8_t connecting;        /* TCP connect or TLS handshake under way */
    uint8_t writing; /* the request's write has not completed */
    uint8_t reused;  /* it carried an exchange before this one */
    uint8_t ended;   /* the peer closed it or it failed: nothing more will arrive */
} h1_conn_t;

struct h1_xfer {
    tg_xfer_t base; /* lean = 1 */
    tg_h1_client_t *client;
    tg_origin_t *origin;
    h1_conn_t *conn;
    const tg_xfer_handlers_t *h;
    void *ud;
    const char *body;
    size_t body_len;
    char *head; /* the request head: head_inline or allocated */
    size_t head_len;
    h2o_timeout_t *connect_list, *idle_list;
    h2o_timeout_entry_t timer; /* first-byte deadline, then idle deadline; zero timeout for a failure at start */
    h2o_timeout_entry_t connect_timer; /* while a new connection is set up for it (lookup, TCP, TLS) */
    h2o_linklist_t wait_link;          /* in origin->waiters while the first lookup runs */
    size_t tries;                      /* addresses tried for the connection being set up */
    tg_h1_response_t resp;
    size_t ready; /* framed body bytes at the front of the input not yet taken by on_body */
    const char *fail_msg; /* a failure at start, reported from the zero timeout */
    uint8_t got_bytes, retried, paused, cancelled, in_cb;
    h1_xfer_t *next; /* free list */
    char head_inline[HEAD_INLINE];
    char msg[256]; /* a failure's words, naming the upstream (outside the part cleared per transfer) */
};

struct tg_h1_client {
    h2o_context_t *ctx;
    tg_timeouts_t *timeouts;
    h2o_timeout_t *pool_list;
    tg_origins_t origins;
    SSL_CTX *ssl_ctx; /* for https:// origins */
    size_t active;   /* transfers started and not ended */
    size_t idle;     /* connections in the pools */
    size_t max_idle;
    h1_xfer_t *free_list;
};

static void on_read(h2o_socket_t *sock, const char *err);
static void process(h1_xfer_t *x);
static void connect_next(h1_xfer_t *x);

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
static h1_conn_t *conn_from_pool(tg_h1_client_t *c, tg_origin_t *o)
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

/* Gives the input buffer back to the recycle list once nothing is left in it (chunk framing can
 * leave it empty but held): the next answer takes it again without malloc. */
static void drop_empty_input(h1_conn_t *k)
{
    if (k->sock->input->size == 0 && k->sock->input->bytes != NULL) {
        h2o_buffer_dispose(&k->sock->input);
        h2o_buffer_init(&k->sock->input, &tg_buffer_prototype);
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
    if (h2o_timeout_is_linked(&x->connect_timer))
        h2o_timeout_unlink(&x->connect_timer);
    if (h2o_linklist_is_linked(&x->wait_link))
        h2o_linklist_unlink(&x->wait_link);
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

/* Ends X's connection setup as failed: the connection in the making is closed. */
static void connect_failed(h1_xfer_t *x, int err, const char *fmt, const char *why)
{
    h1_conn_t *k = x->conn;
    if (k) {
        x->conn = NULL;
        conn_close(k);
    }
    snprintf(x->msg, sizeof(x->msg), fmt, x->origin->key, why);
    finish(x, err, x->msg);
}

/* The connection is set up: the request goes out. */
static void conn_ready(h1_xfer_t *x)
{
    h1_conn_t *k = x->conn;
    k->connecting = 0;
    x->origin->preferred = k->addr;
    if (h2o_timeout_is_linked(&x->connect_timer))
        h2o_timeout_unlink(&x->connect_timer);
    send_request(x);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    h1_conn_t *k = sock->data;
    h1_xfer_t *x = k->xfer;
    if ((err = tg_tls_handshake_error(err)) != NULL) {
        tg_warn("upstream %s: TLS handshake failed: %s", x->origin->key, err);
        connect_failed(x, TG_XFER_ECONNECT, "TLS handshake with %s failed: %s", err);
        return;
    }
    tg_debug("upstream %s: %s %s, session %s", x->origin->key, h2o_socket_get_ssl_protocol_version(sock),
             h2o_socket_get_ssl_cipher(sock), h2o_socket_get_ssl_session_reused(sock) ? "resumed" : "new");
    conn_ready(x);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    h1_conn_t *k = sock->data;
    h1_xfer_t *x = k->xfer;
    if (err) {
        x->conn = NULL;
        conn_close(k);
        if (x->tries < x->origin->n_addrs) { /* the next address */
            connect_next(x);
            return;
        }
        snprintf(x->msg, sizeof(x->msg), "could not connect to %s: %s", x->origin->key, err);
        finish(x, TG_XFER_ECONNECT, x->msg);
        return;
    }
    if (x->origin->tls) {
        h2o_socket_ssl_handshake(sock, k->client->ssl_ctx, x->origin->host, on_handshake);
        return;
    }
    conn_ready(x);
}

static void on_pool_timer(h2o_timeout_entry_t *entry)
{
    conn_close(H2O_STRUCT_FROM_MEMBER(h1_conn_t, timer, entry)); /* idle in the pool for too long */
}

static void on_connect_deadline(h2o_timeout_entry_t *entry)
{
    h1_xfer_t *x = H2O_STRUCT_FROM_MEMBER(h1_xfer_t, connect_timer, entry);
    connect_failed(x, TG_XFER_ETIMEOUT,
                   x->conn ? "could not connect to %s before the connect timeout%s"
                           : "could not resolve %s before the connect timeout%s", "");
}

/* Opens a connection for X to the origin's next untried address, reporting a failure through
 * on_done when no address is left. */
static void connect_next(h1_xfer_t *x)
{
    tg_h1_client_t *c = x->client;
    tg_origin_t *o = x->origin;
    while (x->tries < o->n_addrs) {
        size_t i = (o->preferred + x->tries++) % o->n_addrs;
        h1_conn_t *k = calloc(1, sizeof(*k));
        if (!k)
            break;
        k->sock = h2o_socket_connect(c->ctx->loop, (struct sockaddr *)&o->addrs[i], o->addrlens[i], on_connect);
        if (!k->sock) {
            free(k);
            continue;
        }
        h2o_buffer_set_prototype(&k->sock->input, &tg_buffer_prototype); /* still empty: no bytes held yet */
        k->sock->data = k;
        k->client = c;
        k->origin = o;
        k->addr = i;
        k->connecting = 1;
        k->xfer = x;
        k->timer.cb = on_pool_timer;
        x->conn = k;
        return;
    }
    snprintf(x->msg, sizeof(x->msg), "could not connect to %s", o->key);
    fail_later(x, x->msg);
}

/* Sets up a fresh connection for X: the connect deadline starts, and the addresses are tried
 * once the origin has some. */
static void conn_open(h1_xfer_t *x)
{
    x->tries = 0;
    if (x->connect_list) {
        if (h2o_timeout_is_linked(&x->connect_timer))
            h2o_timeout_unlink(&x->connect_timer);
        h2o_timeout_link(x->client->ctx->loop, x->connect_list, &x->connect_timer);
    }
    int ready = tg_origin_ready(x->origin);
    if (ready > 0) {
        connect_next(x);
    } else if (ready == 0) {
        h2o_linklist_insert(&x->origin->waiters, &x->wait_link);
    } else {
        snprintf(x->msg, sizeof(x->msg), "could not resolve %s: %s", x->origin->key, x->origin->error);
        fail_later(x, x->msg);
    }
}

/* The origin's lookup ended: the transfers waiting for it connect, or fail with the reason. */
static void on_resolved(tg_origin_t *o, const char *err)
{
    while (!h2o_linklist_is_empty(&o->waiters)) {
        h1_xfer_t *x = H2O_STRUCT_FROM_MEMBER(h1_xfer_t, wait_link, o->waiters.next);
        h2o_linklist_unlink(&x->wait_link);
        if (err)
            connect_failed(x, TG_XFER_ECONNECT, "could not resolve %s: %s", err);
        else
            connect_next(x);
    }
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
        conn_open(x);
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
    if (!x) { /* idle: the server closed it, or sent something nobody asked for (TLS may wake it with neither) */
        if (err || sock->input->size)
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

/* ---- the interface -------------------------------------------------------------------------- */

int tg_h1_accepts(const tg_xfer_request_t *req, h2o_url_t *url)
{
    if (req->unix_socket || (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0))
        return -1;
    if (h2o_url_parse(req->url, SIZE_MAX, url) != 0 ||
        (url->scheme != &H2O_URL_SCHEME_HTTP && url->scheme != &H2O_URL_SCHEME_HTTPS) || url->host.len == 0)
        return -1;
    if (memchr(url->authority.base, '@', url->authority.len))
        return -1; /* user info: libcurl turns it into Basic authentication */
    return 0;
}

tg_h1_client_t *tg_h1_create(h2o_context_t *ctx, uint32_t max_connections, tg_timeouts_t *timeouts, const char *ca_file)
{
    tg_h1_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    char err[256];
    if ((c->ssl_ctx = tg_tls_client_ctx_create(ca_file, err, sizeof(err))) == NULL) {
        tg_error("%s", err);
        free(c);
        return NULL;
    }
    c->ctx = ctx;
    c->timeouts = timeouts;
    c->pool_list = tg_timeouts_get(timeouts, POOL_IDLE_MS);
    c->max_idle = max_connections;
    c->origins.ctx = ctx;
    c->origins.on_resolved = on_resolved;
    return c;
}

void tg_h1_destroy(tg_h1_client_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->origins.n; i++) {
        tg_origin_t *o = c->origins.v[i];
        while (!h2o_linklist_is_empty(&o->idle))
            conn_close(H2O_STRUCT_FROM_MEMBER(h1_conn_t, idle_link, o->idle.next));
    }
    tg_origins_dispose(&c->origins);
    tg_tls_client_ctx_free(c->ssl_ctx);
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
    tg_origin_t *o = tg_origin_get(&c->origins, url);
    if (!o)
        return NULL;
    h1_xfer_t *x = c->free_list;
    if (x)
        c->free_list = x->next;
    else if ((x = malloc(sizeof(*x))) == NULL)
        return NULL;
    memset(x, 0, offsetof(h1_xfer_t, head_inline));
    x->base.lean = 1;
    x->connect_timer.cb = on_connect_deadline;
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
    } else {
        conn_open(x);
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
