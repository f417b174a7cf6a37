/* The persister's HTTP API: what a handler gets, and the route table that maps a method and a
 * path to it. server.c owns the socket and authentication; each endpoint group lives in its own
 * api_*.c file and adds its lines to the table in routes.c. Handlers run on the persister's
 * thread, may read and write the store, and must send exactly one response before returning. */
#ifndef TG_STORE_API_H
#define TG_STORE_API_H

#include <h2o.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/arena-t.h"
#include "store/store.h"

typedef struct tg_route tg_route_t;

typedef struct tg_api_req {
    h2o_req_t *req;
    tg_store_t *store;
    tg_arena_t *arena;
    const tg_route_t *route;
    h2o_iovec_t rest; /* path after the route's own path: "" or "/..." (TG_ROUTE_SUBTREE), no query */
    /* TG_ROUTE_AUTH only: the caller's account record (borrowed, valid until the handler returns) */
    uint64_t caller_id;
    json_t *caller;
} tg_api_req_t;

typedef void (*tg_api_fn)(tg_api_req_t *r);

#define TG_ROUTE_AUTH 0x1u    /* needs a valid key of an enabled account; r->caller is set */
#define TG_ROUTE_SUBTREE 0x2u /* PATH also matches PATH/anything (e.g. /x-users/{id}) */

struct tg_route {
    const char *method; /* "GET", ...; NULL = any */
    const char *path;   /* exact path, without query */
    unsigned flags;     /* TG_ROUTE_* */
    tg_api_fn fn;
};

/** The route for METHOD and PATH (normalized, no query), or NULL. When NULL, *PATH_KNOWN says
 * whether some other method serves that path (405 rather than 404). */
const tg_route_t *tg_api_route_find(h2o_iovec_t method, h2o_iovec_t path, int *path_known, h2o_iovec_t *rest);

/** Sends BODY (a JSON value, reference stolen) with STATUS. */
void tg_api_send(tg_api_req_t *r, int status, json_t *body);

/* Handlers (one group per file). */
void tg_api_healthz(tg_api_req_t *r);          /* api_health.c */
void tg_api_dashboard_status(tg_api_req_t *r); /* api_dashboard.c */

#endif
