/* Inside the upstream client: the two backends behind upstream.h and what they share. upstream.c
 * implements the public interface and sends each exchange to one backend: the lean HTTP/1.1
 * client (upstream_h1.c) for http:// and https:// to any host, libcurl (upstream_curl.c) for the
 * rest (unix sockets, URLs with user info) or when the configuration asks for curl everywhere. */
#ifndef TG_UPSTREAM_BACKEND_H
#define TG_UPSTREAM_BACKEND_H

#include "worker/upstream.h"

/* Every backend's transfer starts with this, so cancel and resume reach the right backend. */
struct tg_xfer {
    uint8_t lean; /* 1: upstream_h1.c, 0: upstream_curl.c */
};

/* h2o 2.2.5 timeouts have fixed durations: one list per duration in use, shared by the backends. */
typedef struct tg_timeouts {
    h2o_loop_t *loop;
    struct {
        uint32_t ms;
        h2o_timeout_t timeout;
    } lists[8];
    size_t n;
} tg_timeouts_t;

/** The list of duration MS (created on first use), or NULL for 0 or when every list is taken
 *  (the configuration has three durations, so that does not happen). */
h2o_timeout_t *tg_timeouts_get(tg_timeouts_t *t, uint32_t ms);

/* libcurl (upstream_curl.c) */
typedef struct tg_curl_client tg_curl_client_t;
/** CA_FILE: NULL, or PEM CA certificates trusted besides the system store (upstream.ca_file). */
tg_curl_client_t *tg_curl_create(h2o_context_t *ctx, uint32_t max_connections, tg_timeouts_t *timeouts, const char *ca_file);
void tg_curl_destroy(tg_curl_client_t *c);
int32_t tg_curl_wait_ms(tg_curl_client_t *c);
void tg_curl_tick(tg_curl_client_t *c);
size_t tg_curl_active(tg_curl_client_t *c);
tg_xfer_t *tg_curl_start(tg_curl_client_t *c, const tg_xfer_request_t *req, const tg_xfer_handlers_t *h, void *ud);
void tg_curl_cancel(tg_xfer_t *x);
void tg_curl_resume(tg_xfer_t *x);

/* the lean HTTP/1.1 client (upstream_h1.c) */
typedef struct tg_h1_client tg_h1_client_t;
/** CA_FILE as for tg_curl_create; NULL (with the reason logged) when it cannot be loaded. */
tg_h1_client_t *tg_h1_create(h2o_context_t *ctx, uint32_t max_connections, tg_timeouts_t *timeouts, const char *ca_file);
void tg_h1_destroy(tg_h1_client_t *c);
size_t tg_h1_active(tg_h1_client_t *c);
/** 0 when the lean client carries REQ (http:// or https://, no unix socket, no user info in the
 *  URL) with *URL parsed from it; -1 otherwise. */
int tg_h1_accepts(const tg_xfer_request_t *req, h2o_url_t *url);
tg_xfer_t *tg_h1_start(tg_h1_client_t *c, const h2o_url_t *url, const tg_xfer_request_t *req,
                       const tg_xfer_handlers_t *h, void *ud);
void tg_h1_cancel(tg_xfer_t *x);
void tg_h1_resume(tg_xfer_t *x);

#endif
