/* The libcurl backend of the upstream client: curl's multi_socket interface driven by the
 * worker's h2o event loop (see shared libh2o-libcurl notes for why each detail is as it is).
 *
 * - Every curl socket is wrapped once in an h2o socket with H2O_SOCKET_FLAG_DONT_READ, so h2o
 *   only reports readiness and curl does the reading. Sockets curl opens itself through
 *   OPENSOCKETFUNCTION keep their wrapper for the socket's whole life (no epoll churn between
 *   keep-alive requests); other sockets curl asks us to poll get a wrapper until POLL_REMOVE.
 * - curl's 0 ms timer runs from ctx->zero_timeout; other timeouts are a deadline that bounds
 *   the loop's wait (tg_curl_wait_ms / _tick).
 * - Completed transfers are reaped outside curl's callbacks; a cancel requested from inside a
 *   callback is deferred to the zero timeout. Easy handles are recycled through a free list. */
#include "worker/upstream_backend.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/upstream_tls.h"

typedef struct fd_entry {
    h2o_socket_t *sock;
    uint8_t want;     /* CURL_POLL_* bits curl asked for */
    uint8_t wpending; /* a write notification is armed */
    uint8_t owned;    /* opened through OPENSOCKETFUNCTION: wrapper lives until CLOSESOCKETFUNCTION */
} fd_entry_t;

typedef struct curl_xfer curl_xfer_t;

struct curl_xfer {
    tg_xfer_t base; /* lean = 0 */
    tg_curl_client_t *client;
    CURL *easy;
    struct curl_slist *headers;
    const tg_xfer_handlers_t *h;
    void *ud;
    int status;
    int head_done;
    int cancelled; /* by tg_xfer_cancel: no callback follows */
    int aborting;  /* a handler asked to abort: on_done follows with TG_XFER_EABORTED */
    int paused;
    curl_xfer_t *next; /* free list / deferred list */
    h2o_timeout_entry_t timer; /* first-byte deadline until the headers arrive, then the idle deadline */
    h2o_timeout_t *idle_list;  /* the idle timeout's list, re-armed on every piece of body; NULL: none */
    /* response headers of the current exchange */
    char hbuf[8192];
    size_t hlen;
    tg_xfer_header_t hdrs[64];
    size_t nhdrs;
};

struct tg_curl_client {
    h2o_context_t *ctx;
    CURLM *multi;
    fd_entry_t *fds;
    size_t nfds;
    uint64_t deadline_ms; /* 0 = none */
    h2o_timeout_entry_t zero_entry;
    int in_curl;   /* > 0 while inside a curl call (callbacks may run) */
    size_t active; /* transfers started and not reaped */
    curl_xfer_t *free_list;
    curl_xfer_t *deferred; /* cancelled inside callbacks, to remove later */
    tg_timeouts_t *timeouts; /* the client's deadline lists */
    char *ca_file;           /* upstream.ca_file, or NULL */
};

static void reap(tg_curl_client_t *c);

/* (Re)starts X's deadline on LIST; NULL stops it. */
static void arm(curl_xfer_t *x, h2o_timeout_t *list)
{
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    if (list)
        h2o_timeout_link(x->client->ctx->loop, list, &x->timer);
}

static fd_entry_t *entry_for(tg_curl_client_t *c, int fd)
{
    if ((size_t)fd >= c->nfds) {
        size_t n = c->nfds ? c->nfds : 256;
        while (n <= (size_t)fd)
            n *= 2;
        fd_entry_t *p = realloc(c->fds, n * sizeof(*p));
        if (!p)
            return NULL;
        memset(p + c->nfds, 0, (n - c->nfds) * sizeof(*p));
        c->fds = p;
        c->nfds = n;
    }
    return &c->fds[fd];
}

static void socket_action(tg_curl_client_t *c, curl_socket_t fd, int ev)
{
    int running;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, ev, &running);
    c->in_curl--;
    reap(c);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    tg_curl_client_t *c = sock->data;
    socket_action(c, h2o_socket_get_fd(sock), CURL_CSELECT_IN | (err ? CURL_CSELECT_ERR : 0));
}

static void arm_write(tg_curl_client_t *c, int fd);

static void on_writable(h2o_socket_t *sock, const char *err)
{
    tg_curl_client_t *c = sock->data;
    int fd = h2o_socket_get_fd(sock);
    c->fds[fd].wpending = 0;
    socket_action(c, fd, CURL_CSELECT_OUT | (err ? CURL_CSELECT_ERR : 0));
    if ((size_t)fd < c->nfds && c->fds[fd].sock && (c->fds[fd].want & CURL_POLL_OUT))
        arm_write(c, fd);
}

static void arm_write(tg_curl_client_t *c, int fd)
{
    fd_entry_t *e = &c->fds[fd];
    if (!e->wpending && e->sock) {
        e->wpending = 1;
        h2o_socket_notify_write(e->sock, on_writable);
    }
}

static void wrap(tg_curl_client_t *c, fd_entry_t *e, int fd)
{
    e->sock = h2o_evloop_socket_create(c->ctx->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    e->sock->data = c;
}

/* Detaches the h2o wrapper from FD without closing FD. */
static void unwrap(fd_entry_t *e)
{
    if (!e->sock)
        return;
    e->sock->_cb.write = NULL; /* a pending write notification must not survive the export */
    h2o_socket_export_t info;
    if (h2o_socket_export(e->sock, &info) == 0 && info.input)
        h2o_buffer_dispose(&info.input);
    e->sock = NULL;
    e->wpending = 0;
    e->want = 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    tg_curl_client_t *c = userp;
    fd_entry_t *e = entry_for(c, fd);
    if (!e)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        if (e->owned) {
            if (e->sock && (e->want & CURL_POLL_IN))
                h2o_socket_read_stop(e->sock);
            e->want = 0; /* a pending write notification fires once and is ignored */
        } else {
            unwrap(e);
        }
        return 0;
    }
    if (!e->sock)
        wrap(c, e, fd);
    if ((what & CURL_POLL_IN) && !(e->want & CURL_POLL_IN))
        h2o_socket_read_start(e->sock, on_readable);
    else if (!(what & CURL_POLL_IN) && (e->want & CURL_POLL_IN))
        h2o_socket_read_stop(e->sock);
    e->want = (uint8_t)what;
    if (what & CURL_POLL_OUT)
        arm_write(c, fd);
    return 0;
}

static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    tg_curl_client_t *c = userp;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    fd_entry_t *e = entry_for(c, fd);
    if (!e) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    memset(e, 0, sizeof(*e));
    e->owned = 1;
    return fd;
}

static int on_close_socket(void *userp, curl_socket_t fd)
{
    tg_curl_client_t *c = userp;
    if ((size_t)fd < c->nfds) {
        unwrap(&c->fds[fd]);
        c->fds[fd].owned = 0;
    }
    return close(fd);
}

static void on_zero_timeout(h2o_timeout_entry_t *entry)
{
    tg_curl_client_t *c = H2O_STRUCT_FROM_MEMBER(tg_curl_client_t, zero_entry, entry);
    socket_action(c, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    tg_curl_client_t *c = userp;
    if (h2o_timeout_is_linked(&c->zero_entry))
        h2o_timeout_unlink(&c->zero_entry);
    c->deadline_ms = 0;
    if (timeout_ms == 0)
        h2o_timeout_link(c->ctx->loop, &c->ctx->zero_timeout, &c->zero_entry);
    else if (timeout_ms > 0)
        c->deadline_ms = h2o_now(c->ctx->loop) + (uint64_t)timeout_ms;
    return 0;
}

/* https:// with upstream.ca_file: its CAs join the ones curl loaded (the system store), as in the
 * lean backend; CURLOPT_CAINFO would replace the system bundle instead. */
static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userp)
{
    tg_curl_client_t *c = userp;
    char err[256];
    if (tg_tls_add_ca_file(ssl_ctx, c->ca_file, err, sizeof(err)) != 0) {
        tg_warn("%s", err);
        return CURLE_SSL_CACERT_BADFILE;
    }
    return CURLE_OK;
}

tg_curl_client_t *tg_curl_create(h2o_context_t *ctx, uint32_t max_connections, tg_timeouts_t *timeouts, const char *ca_file)
{
    tg_curl_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (ca_file && (c->ca_file = strdup(ca_file)) == NULL) {
        free(c);
        return NULL;
    }
    c->ctx = ctx;
    c->timeouts = timeouts;
    c->multi = curl_multi_init();
    c->zero_entry.cb = on_zero_timeout;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
    return c;
}

int32_t tg_curl_wait_ms(tg_curl_client_t *c)
{
    if (!c->deadline_ms)
        return INT32_MAX;
    uint64_t now = h2o_now(c->ctx->loop);
    return c->deadline_ms > now ? (int32_t)(c->deadline_ms - now) : 0;
}

void tg_curl_tick(tg_curl_client_t *c)
{
    if (c->deadline_ms && h2o_now(c->ctx->loop) >= c->deadline_ms) {
        c->deadline_ms = 0;
        socket_action(c, CURL_SOCKET_TIMEOUT, 0);
    }
}

size_t tg_curl_active(tg_curl_client_t *c)
{
    return c->active;
}

static void recycle(tg_curl_client_t *c, curl_xfer_t *x)
{
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    curl_multi_remove_handle(c->multi, x->easy);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    x->next = c->free_list;
    c->free_list = x;
    c->active--;
}

static int map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return TG_XFER_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST: return TG_XFER_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT: return TG_XFER_ETIMEOUT;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK: return TG_XFER_EABORTED;
    default: return TG_XFER_EIO;
    }
}

/* Removes finished and deferred-cancelled transfers; called only outside curl callbacks. */
static void reap(tg_curl_client_t *c)
{
    if (c->in_curl)
        return;
    while (c->deferred) {
        curl_xfer_t *x = c->deferred;
        c->deferred = x->next;
        recycle(c, x);
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_xfer_t *x;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = x->aborting ? CURLE_ABORTED_BY_CALLBACK : m->data.result;
        if (x->cancelled)
            continue; /* already queued on the deferred list */
        const tg_xfer_handlers_t *h = x->h;
        void *ud = x->ud;
        recycle(c, x);
        h->on_done(ud, map_error(rc), curl_easy_strerror(rc));
    }
}

static size_t on_header_line(char *p, size_t size, size_t n, void *userdata)
{
    curl_xfer_t *x = userdata;
    size_t len = size * n;
    if (x->cancelled || x->aborting)
        return 0;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new status line: start over (e.g. after 100) */
        x->hlen = 0;
        x->nhdrs = 0;
        x->head_done = 0;
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? atoi(sp + 1) : (int)code;
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) { /* blank line: headers complete */
        if (x->status >= 100 && x->status < 200)
            return len;
        x->head_done = 1;
        arm(x, x->idle_list);
        if (x->h->on_head(x->ud, x->status, x->hdrs, x->nhdrs) != 0) {
            x->aborting = 1;
            return 0;
        }
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || x->nhdrs == sizeof(x->hdrs) / sizeof(x->hdrs[0]) || x->hlen + len > sizeof(x->hbuf))
        return len; /* keep what fits; oversize headers are dropped, not fatal */
    char *dst = x->hbuf + x->hlen;
    size_t nlen = (size_t)(colon - p);
    for (size_t i = 0; i < nlen; i++)
        dst[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    memcpy(dst + nlen, v, (size_t)(end - v));
    x->hdrs[x->nhdrs].name = h2o_iovec_init(dst, nlen);
    x->hdrs[x->nhdrs].value = h2o_iovec_init(dst + nlen, (size_t)(end - v));
    x->nhdrs++;
    x->hlen += nlen + (size_t)(end - v);
    return len;
}

static size_t on_body_bytes(char *p, size_t size, size_t n, void *userdata)
{
    curl_xfer_t *x = userdata;
    size_t len = size * n;
    if (x->cancelled || x->aborting)
        return 0;
    arm(x, x->idle_list); /* something arrived: the idle deadline starts again */
    int rc = x->h->on_body(x->ud, p, len);
    if (rc == TG_XFER_PAUSE) {
        x->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc < 0) {
        x->aborting = 1;
        return 0;
    }
    return len;
}

/* The upstream sent no headers, or nothing more, in time: end the exchange as a timeout. */
static void on_timeout(h2o_timeout_entry_t *entry)
{
    curl_xfer_t *x = H2O_STRUCT_FROM_MEMBER(curl_xfer_t, timer, entry);
    tg_curl_client_t *c = x->client;
    const tg_xfer_handlers_t *h = x->h;
    void *ud = x->ud;
    int before_head = !x->head_done;
    recycle(c, x);
    h->on_done(ud, TG_XFER_ETIMEOUT, before_head ? "no response headers before the first-byte timeout"
                                                 : "the upstream went quiet for longer than the idle timeout");
}

tg_xfer_t *tg_curl_start(tg_curl_client_t *c, const tg_xfer_request_t *req, const tg_xfer_handlers_t *h, void *ud)
{
    curl_xfer_t *x = c->free_list;
    if (x) {
        c->free_list = x->next;
        curl_easy_reset(x->easy);
    } else {
        if ((x = calloc(1, sizeof(*x))) == NULL)
            return NULL;
        if ((x->easy = curl_easy_init()) == NULL) {
            free(x);
            return NULL;
        }
    }
    CURL *e = x->easy;
    x->client = c;
    x->h = h;
    x->ud = ud;
    x->status = 0;
    x->head_done = x->cancelled = x->aborting = x->paused = 0;
    x->hlen = x->nhdrs = 0;
    x->next = NULL;
    x->headers = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < req->n_headers; i++)
        x->headers = curl_slist_append(x->headers, req->headers[i]);

    curl_easy_setopt(e, CURLOPT_URL, req->url);
    if (req->unix_socket)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (c->ca_file) {
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, c);
    }
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body_len || strcmp(req->method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        }
    }
    c->in_curl++;
    CURLMcode mc = curl_multi_add_handle(c->multi, e);
    c->in_curl--;
    if (mc != CURLM_OK) {
        curl_slist_free_all(x->headers);
        x->headers = NULL;
        x->next = c->free_list;
        c->free_list = x;
        return NULL;
    }
    c->active++;
    x->timer.cb = on_timeout;
    x->idle_list = tg_timeouts_get(c->timeouts, req->idle_timeout_ms);
    arm(x, req->first_byte_timeout_ms ? tg_timeouts_get(c->timeouts, req->first_byte_timeout_ms) : x->idle_list);
    return &x->base;
}

void tg_curl_cancel(tg_xfer_t *xfer)
{
    curl_xfer_t *x = (curl_xfer_t *)xfer;
    tg_curl_client_t *c = x->client;
    if (x->cancelled)
        return;
    x->cancelled = 1;
    arm(x, NULL); /* no deadline may fire for a cancelled exchange */
    if (c->in_curl) {
        x->next = c->deferred;
        c->deferred = x;
        if (!h2o_timeout_is_linked(&c->zero_entry))
            h2o_timeout_link(c->ctx->loop, &c->ctx->zero_timeout, &c->zero_entry);
        return;
    }
    recycle(c, x);
}

void tg_curl_resume(tg_xfer_t *xfer)
{
    curl_xfer_t *x = (curl_xfer_t *)xfer;
    if (!x->paused || x->cancelled)
        return;
    x->paused = 0;
    tg_curl_client_t *c = x->client;
    c->in_curl++;
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
    c->in_curl--;
    reap(c);
}

void tg_curl_destroy(tg_curl_client_t *c)
{
    if (!c)
        return;
    while (c->free_list) {
        curl_xfer_t *x = c->free_list;
        c->free_list = x->next;
        curl_easy_cleanup(x->easy);
        free(x);
    }
    curl_multi_cleanup(c->multi);
    for (size_t i = 0; i < c->nfds; i++)
        unwrap(&c->fds[i]);
    free(c->fds);
    free(c->ca_file);
    free(c);
}
