/* The persister's HTTP API: what a handler gets, and the route table that maps a method and a
 * path to it. server.c owns the socket and authentication; each endpoint group lives in its own
 * api_*.c file and adds its lines to the table in routes.c. Handlers run on the persister's
 * thread, may read and write the store, and must send exactly one response before returning. */
#ifndef TG_STORE_API_H
#define TG_STORE_API_H

#include <h2o.h>
#include <jansson.h>
#include <rocksdb/c.h>
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

/* ---- api_util.c: what every handler shares ---- */

/** Answers an error in the shape of api-compat 7.11; the type follows the status (400
 * invalid_request_error, 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 409 conflict_error, 5xx api_error). CODE may be NULL. */
void tg_api_error(tg_api_req_t *r, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** The request body as a JSON object (new reference). An empty body is {}. Malformed JSON, a
 * non-object, or invalid UTF-8 is answered with 400 and NULL is returned. */
json_t *tg_api_body(tg_api_req_t *r);
/** Query parameter NAME, percent-decoded into OUT (CAP bytes). 1 found, 0 absent, -1 too long. */
int tg_api_query(tg_api_req_t *r, const char *name, char *out, size_t cap);
/** Like tg_api_query for the first of two names (e.g. "u" and "user"). */
int tg_api_query2(tg_api_req_t *r, const char *a, const char *b, char *out, size_t cap);
/** The caller's address: X-Forwarded-For as set by the worker, else "local". */
const char *tg_api_client_ip(tg_api_req_t *r, char *buf, size_t cap);
/** Adds a response header (before sending). */
void tg_api_header(tg_api_req_t *r, const char *name, const char *value);

/** 1 when REC is root or an owner (root's direct child): may use the Admin API. */
int tg_api_is_admin(const json_t *rec);
/** 1 when ANC is a strict ancestor of REC (DNA prefix, api-compat 7.1). */
int tg_api_is_ancestor(const json_t *anc, const json_t *rec);
/** 1 when REC is ANC or below it. */
int tg_api_in_subtree(const json_t *anc, const json_t *rec);
/** Settled spend of account ID not yet drained (arena `spent` + `reserved`). */
int64_t tg_api_inflight(tg_api_req_t *r, uint64_t id);
/** What account REC may still spend: its balance less what is settled or reserved in the arena. */
int64_t tg_api_available(tg_api_req_t *r, const json_t *rec);
/** Owner config value KEY of account REC's owner as a number (dollars etc.), or DEF. */
double tg_api_owner_number(tg_api_req_t *r, const json_t *rec, const char *key, double def);
/** Management gate (api-compat 1.3): admin accounts always; others need a balance above the
 * owner's USER_API_BALANCE. Answers 401 and returns -1 when refused. */
int tg_api_require_manage(tg_api_req_t *r);
/** Admin gate (7.12): root and owners. Answers 403 and returns -1 when refused. */
int tg_api_require_admin(tg_api_req_t *r);

/** The public view of an account record (api-compat 1.2): PascalCase, money in dollars, cards as
 * {amount, balance, granted_at, expires_at, reference}, SecretKey "***", internal fields left out.
 * INFLIGHT (nano-dollars) is subtracted from Balance. New reference. */
json_t *tg_api_account_view(const json_t *rec, int64_t inflight);
/** The balance shown for REC: its cards less Overdraft and INFLIGHT; root shows only its cards. */
int64_t tg_api_shown_balance(const json_t *rec, int64_t inflight);
/** Cards of REC in dollars (new reference). */
json_t *tg_api_cards_view(const json_t *rec);
/** Nano-dollars → a JSON number of dollars. */
json_t *tg_api_money(int64_t nanos);

/** Appends an audit entry (audit CF) to BATCH: the caller as operator, TARGET (may be NULL),
 * ACTION, DETAILS (reference stolen; secrets must already be masked), source IP, time. */
void tg_api_audit(tg_api_req_t *r, rocksdb_writebatch_t *batch, const char *action, const json_t *target, json_t *details);

/* Handlers (one group per file). */
void tg_api_healthz(tg_api_req_t *r);          /* api_health.c */
void tg_api_metrics(tg_api_req_t *r);          /* metrics.c */
void tg_api_dashboard_status(tg_api_req_t *r); /* api_dashboard.c */
void tg_api_dashboard_info(tg_api_req_t *r);
void tg_api_dashboard_live(tg_api_req_t *r);
void tg_api_dashboard_bill(tg_api_req_t *r);
void tg_api_dashboard_logs(tg_api_req_t *r);
void tg_api_dashboard_news(tg_api_req_t *r);
void tg_api_dashboard_conf(tg_api_req_t *r);
void tg_api_dashboard_models(tg_api_req_t *r);
void tg_api_dashboard_billing_usage(tg_api_req_t *r);
void tg_api_dashboard_requests(tg_api_req_t *r);
void tg_api_users_get(tg_api_req_t *r); /* api_manage.c */
void tg_api_dna_get(tg_api_req_t *r);
void tg_api_users_create(tg_api_req_t *r);
void tg_api_users_update(tg_api_req_t *r);
void tg_api_users_delete(tg_api_req_t *r);
void tg_api_bill(tg_api_req_t *r);
void tg_api_self_rotate(tg_api_req_t *r);
void tg_api_root_rotate(tg_api_req_t *r);
void tg_api_keys_get(tg_api_req_t *r); /* api_admin.c */
void tg_api_keys_create(tg_api_req_t *r);
void tg_api_keys_update(tg_api_req_t *r);
void tg_api_keys_delete(tg_api_req_t *r);
void tg_api_conf_get(tg_api_req_t *r);
void tg_api_conf_post(tg_api_req_t *r);
void tg_api_config_get(tg_api_req_t *r);
void tg_api_config_put(tg_api_req_t *r);
void tg_api_config_delete(tg_api_req_t *r);
void tg_api_info(tg_api_req_t *r);
void tg_api_news_post(tg_api_req_t *r);
void tg_api_news_delete(tg_api_req_t *r);
void tg_api_gkey(tg_api_req_t *r);
void tg_api_logs(tg_api_req_t *r);
void tg_api_pages(tg_api_req_t *r); /* api_pages.c: GET /manage/..., /admin/... (static files) */

#endif
