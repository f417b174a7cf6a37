/* The upstream client interface: one HTTP exchange with a provider (or with the persister over
 * its unix socket), driven by the worker's event loop without blocking. Two backends sit behind
 * it (upstream_backend.h): a lean keep-alive HTTP/1.1 client on h2o's sockets (upstream_h1.c) for
 * http:// and https://, and libcurl's multi interface (upstream_curl.c) for the rest.
 *
 * Callbacks run inside the event loop. on_head and on_body may be called from inside a backend;
 * they should not start transfers (the proxy defers that); cancelling from them is safe. on_done
 * is called outside the backend's own bookkeeping, exactly once, unless the transfer was
 * cancelled; it may start the next transfer. */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_xfer tg_xfer_t;
typedef struct tg_upstream_client tg_upstream_client_t;

#define TG_XFER_PAUSE 1

typedef struct tg_xfer_header {
    h2o_iovec_t name; /* lower-case */
    h2o_iovec_t value;
} tg_xfer_header_t;

typedef struct tg_xfer_handlers {
    /** The status line and every header arrived. Return 0 to go on, -1 to abort the transfer. */
    int (*on_head)(void *ud, int status, const tg_xfer_header_t *headers, size_t n);
    /** Body bytes. Return 0, TG_XFER_PAUSE (the same bytes come again after tg_xfer_resume), or -1 to abort. */
    int (*on_body)(void *ud, const char *p, size_t n);
    /** The exchange ended: ERR is 0 on success, else a TG_XFER_E* code with a message. */
    void (*on_done)(void *ud, int err, const char *message);
} tg_xfer_handlers_t;

enum { TG_XFER_OK = 0, TG_XFER_ECONNECT, TG_XFER_ETIMEOUT, TG_XFER_EIO, TG_XFER_EABORTED };

typedef struct tg_xfer_request {
    const char *url;
    const char *unix_socket; /* NULL, or a unix socket path to connect to instead of the URL's host */
    const char *method;      /* "GET", "POST", ... */
    const char *body;
    size_t body_len;
    const char *const *headers; /* "Name: value" lines */
    size_t n_headers;
    uint32_t connect_timeout_ms;
    uint32_t first_byte_timeout_ms; /* abort when the response headers have not arrived by then (0 = none) */
    uint32_t idle_timeout_ms;       /* abort when nothing arrives for this long once the answer started */
} tg_xfer_request_t;

/* upstream.client in the configuration */
typedef enum {
    TG_UPSTREAM_AUTO = 0, /* the lean HTTP/1.1 backend where it applies, libcurl elsewhere */
    TG_UPSTREAM_CURL = 1  /* libcurl for every exchange */
} tg_upstream_kind_t;

typedef struct tg_upstream_options {
    uint32_t max_connections; /* bounds the idle keep-alive connections each backend keeps */
    tg_upstream_kind_t kind;
    const char *ca_file; /* NULL, or PEM CA certificates both backends trust besides the system store */
} tg_upstream_options_t;

/** Creates the client on CTX's loop (worker start); NULL (with the reason logged) on failure. */
tg_upstream_client_t *tg_upstream_client_create(h2o_context_t *ctx, const tg_upstream_options_t *opts);
void tg_upstream_client_destroy(tg_upstream_client_t *c);
/** Milliseconds until the client needs the loop to wake up for its timers (INT32_MAX when none). */
int32_t tg_upstream_client_wait_ms(tg_upstream_client_t *c);
/** Runs expired timers; call after each loop iteration. */
void tg_upstream_client_tick(tg_upstream_client_t *c);
/** Number of transfers in progress. */
size_t tg_upstream_client_active(tg_upstream_client_t *c);

/** Starts an exchange; REQ's strings must stay valid until on_done or cancel. NULL on failure. */
tg_xfer_t *tg_xfer_start(tg_upstream_client_t *c, const tg_xfer_request_t *req, const tg_xfer_handlers_t *h, void *ud);
/** Stops an exchange at once; no callback follows. Safe to call from on_head/on_body (deferred). */
void tg_xfer_cancel(tg_xfer_t *x);
/** Resumes a transfer that on_body paused. */
void tg_xfer_resume(tg_xfer_t *x);

#endif
