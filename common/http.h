/* Small HTTP helpers shared by the worker and the persister (both serve requests through libh2o):
 * reading the caller's API key, and answering in tollgate's JSON error shape
 * {"error":{"message","type","code"},"message"} (api-compat.md 7.11). */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include <h2o.h>
#include <stddef.h>

/** Finds the caller's key in `Authorization: Bearer K`, bare `Authorization: K`, or `x-api-key: K`.
 * Returns 0 and sets KEY/LEN (pointing into the request), or -1 when none is present. */
int tg_http_api_key(h2o_req_t *req, const char **key, size_t *len);
/** Sends a JSON error response; MESSAGE is JSON-escaped. TYPE e.g. "invalid_request_error", CODE may be NULL. */
void tg_http_error(h2o_req_t *req, int status, const char *type, const char *code, const char *message);
/** Sends BODY (LEN bytes) as application/json with STATUS. The body is copied into the request pool. */
void tg_http_json(h2o_req_t *req, int status, const char *body, size_t len);
/** Appends S JSON-escaped (without quotes) to BUF; returns the new length, never writing past CAP. */
size_t tg_json_escape(char *buf, size_t len, size_t cap, const char *s, size_t slen);
/** Reason phrase for a status code. */
const char *tg_http_reason(int status);



/** printf into memory from POOL (freed with the request). */
char *tg_pool_fmt(h2o_mem_pool_t *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
